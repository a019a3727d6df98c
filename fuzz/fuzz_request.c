/*
 * fuzz_request.c: the handler's path from an HTTP request to a validated
 * call: api_route, api_precheck, the body read cap, and api_handle, which
 * runs check_body with the call's field table, the token check and the
 * call's cross-field rule. Redis is configured at a socket that cannot
 * exist, so api_handle stops where it would forward (503) and nothing
 * needs a server.
 *
 * Input: the FastCGI parameters main.c reads, one per line, then the body:
 *   REQUEST_METHOD \n REQUEST_URI \n CONTENT_TYPE \n HTTP_AUTHORIZATION \n
 *   body...
 * A missing line is an absent parameter; CONTENT_LENGTH is the body's.
 */
#include <jansson.h>

#include "api.h"
#include "config.h"
#include "envelope.h"
#include "fuzz.h"
#include "log.h"
#include "seal.h"

static struct config fuzz_cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	config_init(&fuzz_cfg);
	/* A path no Redis listens on: bus_open() fails at once, offline. */
	snprintf(fuzz_cfg.redis_socket, sizeof(fuzz_cfg.redis_socket), "%s",
		 "/nonexistent/talkproxy-fuzz/redis.sock");
	fuzz_cfg.redis_timeout_ms = 10;
	log_open("fuzz_request", "error", "/dev/null");
	if (seal_init() == -1)
		abort();
	return 0;
}

/* What every answer must be: an HTTP status, and for an error the API's
 * error object (GET /health answers its own object). No request can
 * succeed without the daemon. */
static void fuzz_check_answer(const char *path,
			      const struct api_response *resp)
{
	json_t *err = json_object_get(resp->body, "error");

	FUZZ_ASSERT(resp->status >= 400 && resp->status <= 599,
		    "an answer without the daemon is an error status");
	FUZZ_ASSERT(resp->type == NULL && resp->data == NULL,
		    "an error is JSON, not bytes");
	FUZZ_ASSERT((json_is_string(json_object_get(err, "code")) &&
		     json_is_string(json_object_get(err, "message"))) ||
			    (strcmp(path, "/health") == 0 &&
			     json_is_string(json_object_get(resp->body, "redis"))),
		    "an error names its code and message");
	FUZZ_ASSERT(resp->status != 405 || resp->allow,
		    "a 405 names what is allowed");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_response resp = {0};
	struct api_request req = {0};
	struct bus *bus = NULL;
	char path[512], *body = NULL, *text;
	char *method = fuzz_take(&data, &size, '\n');
	char *uri = fuzz_take(&data, &size, '\n');
	char *ctype = fuzz_take(&data, &size, '\n');
	char *auth = fuzz_take(&data, &size, '\n');

	/* As main.c's fcgi_path() with the default base path "". */
	snprintf(path, sizeof(path), "%.*s",
		 uri ? (int)strcspn(uri, "?") : 1, uri ? uri : "/");
	req.path = path;
	req.method = method;
	req.content_type = ctype;
	req.content_length = (long)size;
	req.authorization = auth;
	req.remote_addr = "192.0.2.1";
	req.host = "proxy.example";
	req.scheme = "https";
	req.body = "";
	const struct api_call *call =
		api_route(path, method ? method : "", &resp);
	if (call && api_precheck(call, &fuzz_cfg, &req, &resp) == 0) {
		if (api_takes_body(call) && size > (size_t)fuzz_cfg.http_max_body) {
			/* main.c's read cap: refused before api_handle. */
			api_response_clear(&resp);
			resp.status = 413;
			resp.body = envelope_error("body_too_large",
						   "over max_body", NULL);
		} else {
			/* main.c reads into a buffer and NUL-terminates it. */
			body = fuzz_strndup(data, size);
			req.body = body;
			req.body_len = size;
			api_handle(call, &fuzz_cfg, &bus, &req, &resp);
		}
	}
	FUZZ_ASSERT(bus == NULL, "no Redis connection can have opened");
	fuzz_check_answer(path, &resp);
	/* What main.c writes out. */
	text = json_dumps(resp.body, JSON_COMPACT);
	FUZZ_ASSERT(text != NULL, "the answer serialises");
	free(text);
	api_response_clear(&resp);
	free(body);
	free(method);
	free(uri);
	free(ctype);
	free(auth);
	return 0;
}
