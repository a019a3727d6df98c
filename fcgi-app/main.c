/*
 * main.c: talkproxy-fcgi, the FastCGI responder. The only file that knows
 * libfcgi: it turns each FastCGI request into a struct api_request, reads
 * the body under the size cap, and writes the answer (JSON, or an image's
 * bytes). Stateless: every request stands alone, so the web server may kill
 * or restart it any time.
 */
#include <errno.h>
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "bus.h"
#include "config.h"
#include "envelope.h"
#include "log.h"
#include "seal.h"

static volatile sig_atomic_t fcgi_stop;

static void fcgi_on_term(int sig)
{
	(void)sig;
	fcgi_stop = 1;
	/* libfcgi retries an interrupted accept() unless told a shutdown is
	 * pending; it only sets a flag, so it is safe in a handler. */
	FCGX_ShutdownPending();
}

static const char *fcgi_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

/*
 * Bytes that came from other people (contacts' photos): a browser must
 * take them for the image type we sniffed and nothing else, and run
 * nothing in them even when opened directly.
 */
static void fcgi_write_bytes(FCGX_Request *r, const struct api_response *resp)
{
	char head[512];

	snprintf(head, sizeof(head),
		 "Content-Type: %s\r\n"
		 "Content-Length: %zu\r\n"
		 "X-Content-Type-Options: nosniff\r\n"
		 "Content-Security-Policy: default-src 'none'\r\n"
		 "Cache-Control: %s\r\n\r\n",
		 resp->type, resp->data_len,
		 resp->cache_control ? resp->cache_control : "no-store");
	FCGX_PutS(head, r->out);
	FCGX_PutStr((const char *)resp->data, (int)resp->data_len, r->out);
}

static void fcgi_write_json(FCGX_Request *r, const struct api_response *resp)
{
	char *text = resp->body ? json_dumps(resp->body, JSON_COMPACT) : NULL;

	FCGX_FPrintF(r->out, "Content-Type: application/json\r\n"
			     "Cache-Control: no-store\r\n\r\n%s\n",
		     text ? text : "{}");
	free(text);
}

static void fcgi_write(FCGX_Request *r, const struct api_response *resp)
{
	FCGX_FPrintF(r->out, "Status: %d %s\r\n", resp->status,
		     fcgi_reason(resp->status));
	if (resp->allow)
		FCGX_FPrintF(r->out, "Allow: %s\r\n", resp->allow);
	if (resp->retry_after > 0)
		FCGX_FPrintF(r->out, "Retry-After: %lld\r\n", resp->retry_after);
	if (resp->type)
		fcgi_write_bytes(r, resp);
	else
		fcgi_write_json(r, resp);
}

/*
 * Reads the body. Never reads more than max + 1 bytes, so an oversized
 * body without a Content-Length is refused without being buffered whole.
 * Returns the length, or -1 when it is over max.
 */
static long fcgi_read_body(FCGX_Request *r, char *buf, long max)
{
	long n = 0;
	int got;

	while (n <= max &&
	       (got = FCGX_GetStr(buf + n, (int)(max + 1 - n), r->in)) > 0)
		n += got;
	return n > max ? -1 : n;
}

/* Reads the body into buf as req's body; 0, or -1 with a 413 in resp. */
static int fcgi_body(FCGX_Request *r, const struct config *cfg, char *buf,
		     struct api_request *req, struct api_response *resp)
{
	long n = fcgi_read_body(r, buf, cfg->http_max_body);

	if (n < 0) {
		resp->status = 413;
		resp->body = envelope_error(
			"body_too_large",
			"the request body is larger than this server takes", NULL);
		return -1;
	}
	buf[n] = '\0';
	req->body = buf;
	req->body_len = (size_t)n;
	return 0;
}

static const char *fcgi_param(FCGX_Request *r, const char *name)
{
	return FCGX_GetParam(name, r->envp);
}

/* The path below the configured base, without the query string. */
static void fcgi_path(FCGX_Request *r, const struct config *cfg, char *out,
		      size_t outlen)
{
	const char *uri = fcgi_param(r, "REQUEST_URI");
	size_t base = strlen(cfg->http_base_path);

	if (!uri || strncmp(uri, cfg->http_base_path, base) != 0) {
		snprintf(out, outlen, "/");
		return;
	}
	uri += base;
	snprintf(out, outlen, "%.*s", (int)strcspn(uri, "?"), uri);
}

static void fcgi_request(FCGX_Request *r, const struct config *cfg,
			 struct bus **bus, char *buf)
{
	struct api_response resp = {0};
	struct api_request req = {0};
	char path[512];
	const char *cl = fcgi_param(r, "CONTENT_LENGTH");
	const char *https = fcgi_param(r, "HTTPS");

	fcgi_path(r, cfg, path, sizeof(path));
	req.path = path;
	req.method = fcgi_param(r, "REQUEST_METHOD");
	req.content_type = fcgi_param(r, "CONTENT_TYPE");
	req.content_length = cl && *cl ? strtol(cl, NULL, 10) : -1;
	req.authorization = fcgi_param(r, "HTTP_AUTHORIZATION");
	req.remote_addr = fcgi_param(r, "REMOTE_ADDR");
	req.host = fcgi_param(r, "HTTP_HOST");
	req.scheme = https && strcmp(https, "on") == 0 ? "https" : "http";
	req.body = "";
	const struct api_call *call = api_route(path, req.method ? req.method : "",
						&resp);
	/* A GET resource's body is never read: it would only cost time. */
	if (call && api_precheck(call, cfg, &req, &resp) == 0 &&
	    (!api_takes_body(call) || fcgi_body(r, cfg, buf, &req, &resp) == 0))
		api_handle(call, cfg, bus, &req, &resp);
	fcgi_write(r, &resp);
	api_response_clear(&resp);
}

/*
 * libfcgi closes a connection by shutting down its side and waiting for
 * the web server to close first, so that unread input cannot turn the
 * close into a reset that would cost the answer. Once the input was read
 * to its end there is nothing left to reset over, and the wait only keeps
 * this process from its next request.
 */
static void fcgi_finish(FCGX_Request *r)
{
	if (FCGX_HasSeenEOF(r->in))
		FCGX_Detach(r);
	FCGX_Finish_r(r);
}

static int fcgi_setup(int argc, char **argv, struct config *cfg)
{
	const char *path = getenv("TALKPROXY_CONF");
	char err[512];
	int opt;

	while ((opt = getopt(argc, argv, "c:")) != -1) {
		if (opt != 'c') {
			fprintf(stderr, "usage: talkproxy-fcgi [-c config]\n");
			return -1;
		}
		path = optarg;
	}
	config_init(cfg);
	if (path && config_load(cfg, path, err, sizeof(err)) == -1) {
		fprintf(stderr, "talkproxy-fcgi: %s\n", err);
		return -1;
	}
	if (log_open("talkproxy-fcgi", cfg->log_level, cfg->log_file) == -1 ||
	    seal_init() == -1)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = fcgi_on_term};
	static struct config cfg;
	struct bus *bus = NULL;
	FCGX_Request r;

	if (fcgi_setup(argc, argv, &cfg) == -1)
		return 1;
	/*
	 * No SA_RESTART: a TERM while waiting in accept() ends the wait. During
	 * a request TERM is blocked instead, because libfcgi does not retry a
	 * read() or write() a signal interrupts: the answer would be cut short
	 * (with its 200 already sent). It is delivered once the request is
	 * finished, and the loop ends.
	 */
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	char *buf = malloc((size_t)cfg.http_max_body + 2);
	if (!buf || FCGX_Init() != 0 || FCGX_InitRequest(&r, 0, 0) != 0)
		log_fatal("cannot set up the FastCGI request");
	bus = bus_open(&cfg); /* may fail: retried on each request */
	while (!fcgi_stop && FCGX_Accept_r(&r) == 0) {
		sigprocmask(SIG_BLOCK, &term, NULL);
		fcgi_request(&r, &cfg, &bus, buf);
		fcgi_finish(&r);
		sigprocmask(SIG_UNBLOCK, &term, NULL);
	}
	bus_close(bus);
	free(buf);
	return 0;
}
