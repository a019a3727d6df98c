/* api.c: the API table and what the handler does with each call (api.h). */
#include "api.h"

#include <stdint.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "avatar.h"
#include "bus.h"
#include "check.h"
#include "config.h"
#include "envelope.h"
#include "jid.h"
#include "log.h"
#include "seal.h"
#include "wire.h"

enum api_kind {
	API_LOGIN,   /* no session yet: any daemon may take it */
	API_SESSION, /* goes to the daemon that owns the token's session */
	API_HEALTH,  /* answered by the handler itself */
	API_IMAGE    /* path is a prefix; answered by the handler from Redis */
};

struct api_call {
	const char *path;
	const char *method;
	enum api_kind kind;
	const struct check_field *fields;
	/* A rule across fields the table cannot say: 0, or -1 with resp set. */
	int (*rule)(json_t *body, struct api_response *resp);
	/* Reworks the daemon's answer (any status) before it goes out. */
	void (*answer)(const struct config *cfg, const struct api_request *req,
		       struct api_response *resp);
	/* The body's "id" names the request: one sent already is answered
	 * here, without the daemon (bus_route). */
	int idempotent;
};

#define API_IMAGES "/images/"
/* The longest base64 text of a photo the handler decodes. */
#define API_PHOTO_B64_MAX (4 * ((AVATAR_MAX_BYTES + 2) / 3))

static const char *const api_shows[] = {"available", "away", "xa",
					"dnd",	     "chat", "invisible",
					"unavailable", NULL};
static const char *const api_states[] = {"active",   "composing", "paused",
					 "inactive", "gone",	  NULL};

static const struct check_field api_no_fields[] = {{0}};

static const char *const api_mechanisms[] = {"X-OAUTH2", "OAUTHBEARER",
					     NULL};

/* A password or an OAuth token (api_login_ok). This "token" is the
 * credential for the XMPP server, not a session token of ours. */
static const struct check_field api_login_fields[] = {
	{"jid", CHECK_ACCOUNT, 1, JID_MAX, NULL, 0, NULL},
	{"password", CHECK_LINE, 0, 1023, NULL, 0, NULL},
	{"token", CHECK_LINE, 0, 4096, NULL, 0, NULL},
	{"mechanism", CHECK_ENUM, 0, 16, api_mechanisms, 0, NULL},
	{"resource", CHECK_RESOURCE, 0, JID_PART_MAX, NULL, 0, NULL},
	{0}};

static const struct check_field api_message_fields[] = {
	{"to", CHECK_JID, 1, JID_MAX, NULL, 0, NULL},
	{"body", CHECK_TEXT, 0, 0, NULL, 0, NULL},
	{"id", CHECK_LINE, 0, 128, NULL, 0, NULL},
	{"state", CHECK_ENUM, 0, 16, api_states, 0, NULL},
	{0}};

static const struct check_field api_presence_fields[] = {
	{"show", CHECK_ENUM, 1, 16, api_shows, 0, NULL},
	{"status", CHECK_TEXT, 0, WIRE_STATUS_BYTES, NULL, 1, NULL},
	{0}};

static const char *const api_push_kinds[] = {"webpush", "webhook", "mpns",
					     NULL};

static const struct check_field api_webpush_keys[] = {
	{"p256dh", CHECK_LINE, 1, 128, NULL, 0, NULL},
	{"auth", CHECK_LINE, 1, 64, NULL, 0, NULL},
	{0}};

/* url "" withdraws the registration; the daemon checks the URL's shape
 * (pushaddr.h) and the address at connect time. */
static const struct check_field api_register_fields[] = {
	{"url", CHECK_LINE, 1, 2048, NULL, 1, NULL},
	{"kind", CHECK_ENUM, 0, 16, api_push_kinds, 0, NULL},
	{"tiles", CHECK_JID_LIST, 0, 32, NULL, 0, NULL},
	{"keys", CHECK_OBJECT, 0, 0, NULL, 0, api_webpush_keys},
	{0}};

static const struct check_field api_notifications_fields[] = {
	{"toast", CHECK_BOOL, 0, 0, NULL, 0, NULL},
	{"tile", CHECK_BOOL, 0, 0, NULL, 0, NULL},
	{"secondarytile", CHECK_BOOL, 0, 0, NULL, 0, NULL},
	{0}};

static const struct check_field api_messagequeue_fields[] = {
	{"ack", CHECK_CURSOR, 0, 48, NULL, 0, NULL},
	{0}};

static const struct check_field api_otr_fields[] = {
	{"jid", CHECK_JID, 1, JID_MAX, NULL, 0, NULL},
	{"enabled", CHECK_BOOL, 1, 0, NULL, 0, NULL},
	{0}};

/* Stack traces keep their newlines and tabs (CHECK_TEXT). */
static const struct check_field api_crashreport_fields[] = {
	{"exception", CHECK_TEXT, 1, WIRE_CRASHREPORT_BYTES, NULL, 0, NULL},
	{0}};

static const struct check_field api_rawiq_fields[] = {
	{"xml", CHECK_IQ, 1, 16384, NULL, 0, NULL},
	{"wait", CHECK_BOOL, 0, 0, NULL, 0, NULL},
	{0}};

static const struct check_field api_photo_fields[] = {
	{"jid", CHECK_JID, 1, JID_MAX, NULL, 0, NULL},
	{0}};

static const char *const api_contact_actions[] = {
	"add", "remove", "approve", "deny", "rename", "regroup", NULL};

static const struct check_field api_group[] = {
	{"a group", CHECK_LINE, 1, 1023, NULL, 0, NULL},
	{0}};

/* name "" clears the contact's name; which fields an action needs is
 * api_contact_ok's. */
static const struct check_field api_contact_fields[] = {
	{"jid", CHECK_JID, 1, JID_MAX, NULL, 0, NULL},
	{"action", CHECK_ENUM, 1, 16, api_contact_actions, 0, NULL},
	{"name", CHECK_LINE, 0, 1023, NULL, 1, NULL},
	{"groups", CHECK_LIST, 0, 32, NULL, 0, api_group},
	{0}};

static int api_login_ok(json_t *body, struct api_response *resp);
static int api_message_ok(json_t *body, struct api_response *resp);
static int api_contact_ok(json_t *body, struct api_response *resp);
static void api_login_answer(const struct config *cfg,
			     const struct api_request *req,
			     struct api_response *resp);
static void api_photo_answer(const struct config *cfg,
			     const struct api_request *req,
			     struct api_response *resp);

static const struct api_call api_calls[] = {
	{"/v1/login", "POST", API_LOGIN, api_login_fields, api_login_ok,
	 api_login_answer, 0},
	{"/v1/logout", "POST", API_SESSION, api_no_fields, NULL, NULL, 0},
	{"/v1/message", "POST", API_SESSION, api_message_fields, api_message_ok,
	 NULL, 1},
	{"/v1/presence", "POST", API_SESSION, api_presence_fields, NULL, NULL, 0},
	{"/v1/roster", "POST", API_SESSION, api_no_fields, NULL, NULL, 0},
	{"/v1/key", "POST", API_SESSION, api_no_fields, NULL, NULL, 0},
	{"/v1/register", "POST", API_SESSION, api_register_fields, NULL, NULL, 0},
	{"/v1/notifications", "POST", API_SESSION, api_notifications_fields,
	 NULL, NULL, 0},
	{"/v1/messagequeue", "POST", API_SESSION, api_messagequeue_fields, NULL,
	 NULL, 0},
	{"/v1/otr", "POST", API_SESSION, api_otr_fields, NULL, NULL, 0},
	{"/v1/crashreport", "POST", API_SESSION, api_crashreport_fields, NULL,
	 NULL, 0},
	{"/v1/rawiq", "POST", API_SESSION, api_rawiq_fields, NULL, NULL, 0},
	{"/v1/photo", "POST", API_SESSION, api_photo_fields, NULL,
	 api_photo_answer, 0},
	{"/v1/jingle", "POST", API_SESSION, api_no_fields, NULL, NULL, 0},
	{"/v1/contact", "POST", API_SESSION, api_contact_fields, api_contact_ok,
	 NULL, 0},
	{"/health", "GET", API_HEALTH, NULL, NULL, NULL, 0},
	{API_IMAGES, "GET", API_IMAGE, NULL, NULL, NULL, 0},
};

void api_response_clear(struct api_response *resp)
{
	json_decref(resp->body);
	free(resp->data);
	resp->body = NULL;
	resp->data = NULL;
	resp->data_len = 0;
	resp->type = NULL;
	resp->cache_control = NULL;
}

/* Replaces whatever resp held by an error: errors are always JSON. */
static void api_error(struct api_response *resp, int status, const char *code,
		      const char *field, const char *message)
{
	api_response_clear(resp);
	resp->status = status;
	resp->body = envelope_error(code, message, field);
}

/* Replaces whatever resp held by the bytes data (taken over). */
static void api_bytes_take(struct api_response *resp, const char *type,
			   uint8_t *data, size_t len, const char *cache_control)
{
	api_response_clear(resp);
	resp->status = 200;
	resp->type = type;
	resp->data = data;
	resp->data_len = len;
	resp->cache_control = cache_control;
}

const struct api_call *api_route(const char *path, const char *method,
				 struct api_response *resp)
{
	for (size_t i = 0; i < sizeof(api_calls) / sizeof(api_calls[0]); i++) {
		const struct api_call *c = &api_calls[i];
		int hit = c->kind == API_IMAGE
				  ? strncmp(path, c->path, strlen(c->path)) == 0
				  : strcmp(path, c->path) == 0;
		if (!hit)
			continue;
		if (strcmp(method, c->method) == 0)
			return c;
		resp->allow = c->method;
		api_error(resp, 405, "method_not_allowed", NULL,
			  strcmp(c->method, "GET") == 0
				  ? "this resource only answers GET"
				  : "this call only accepts POST");
		return NULL;
	}
	api_error(resp, 404, "not_found", NULL, "no such endpoint");
	return NULL;
}

/* "application/json" with optional parameters such as charset. */
static int api_is_json(const char *ct)
{
	size_t n = strlen("application/json");

	if (!ct || strncasecmp(ct, "application/json", n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

int api_takes_body(const struct api_call *call)
{
	return call->kind == API_LOGIN || call->kind == API_SESSION;
}

int api_precheck(const struct api_call *call, const struct config *cfg,
		 const struct api_request *req, struct api_response *resp)
{
	if (!api_takes_body(call))
		return 0;
	if (req->content_length > cfg->http_max_body) {
		api_error(resp, 413, "body_too_large", NULL,
			  "the request body is larger than this server takes");
		return -1;
	}
	if (!api_is_json(req->content_type)) {
		api_error(resp, 415, "unsupported_media_type", NULL,
			  "send the body as application/json");
		return -1;
	}
	return 0;
}

/* Opens the bus on first use and after Redis was lost at start-up. */
static struct bus *api_bus(const struct config *cfg, struct bus **bus)
{
	if (!*bus)
		*bus = bus_open(cfg);
	return *bus;
}

static void api_health(const struct config *cfg, struct bus **bus,
		       struct api_response *resp)
{
	struct bus *b = api_bus(cfg, bus);
	int redis_ok = b && bus_ping(b) == 0;
	long long daemons = redis_ok ? bus_numsub(b, WIRE_CHAN_LOGIN) : 0;

	resp->status = redis_ok && daemons > 0 ? 200 : 503;
	resp->body = json_pack("{s:s, s:I}", "redis", redis_ok ? "ok" : "down",
			       "daemons", (json_int_t)(daemons < 0 ? 0 : daemons));
}

/*
 * Finds the session token: "Authorization: Bearer <token>", or the body's
 * "token" member as the original protocol sent it. Removes it from the body
 * so no token travels on the bus. Returns 0 with th filled, or -1.
 */
static int api_token_hash(const struct api_request *req, json_t *body,
			  char th[WIRE_TOKEN_HASH_HEX + 1],
			  struct api_response *resp)
{
	const char *tok = NULL;
	size_t len = 0;
	json_t *jt = json_object_get(body, "token");

	if (req->authorization && *req->authorization) {
		if (strncasecmp(req->authorization, "Bearer ", 7) == 0) {
			tok = req->authorization + 7;
			len = strlen(tok);
		}
	} else if (json_is_string(jt)) {
		tok = json_string_value(jt);
		len = json_string_length(jt);
	} else if (!jt) {
		api_error(resp, 401, "missing_token", NULL,
			  "log in first and send the token as "
			  "Authorization: Bearer");
		return -1;
	}
	if (!tok || !seal_token_wellformed(tok, len)) {
		api_error(resp, 401, "bad_token", NULL,
			  "the token is not one this server issues");
		return -1;
	}
	seal_token_hash(tok, len, th);
	json_object_del(body, "token");
	return 0;
}

/* The base URL clients use next: configured, or what they reached. */
static json_t *api_base_url(const struct config *cfg,
			    const struct api_request *req)
{
	char url[CONFIG_STR_MAX * 2 + 16];

	if (cfg->http_public_url[0])
		return json_string(cfg->http_public_url);
	snprintf(url, sizeof(url), "%s://%s%s", req->scheme,
		 req->host ? req->host : "localhost", cfg->http_base_path);
	return json_string(url);
}

/* Publishes the envelope; returns 0 when a daemon took it, else fills resp
 * (an error, or the answer to a message id sent before). */
static int api_send(const struct api_call *call, struct bus *b,
		    const struct envelope *env, struct api_response *resp)
{
	char *msg = envelope_encode_request(env);
	long long receivers = 0;
	enum bus_route r;
	const char *idem = call->idempotent
				   ? json_string_value(json_object_get(env->body, "id"))
				   : NULL;

	if (!msg) {
		api_error(resp, 503, "overloaded", NULL, "out of memory");
		return -1;
	}
	if (call->kind == API_LOGIN)
		r = bus_publish(b, WIRE_CHAN_LOGIN, msg, strlen(msg), &receivers) ==
				    -1
			    ? BUS_ROUTE_ERROR
			    : receivers > 0 ? BUS_ROUTE_SENT
					    : BUS_ROUTE_NO_DAEMON;
	else
		r = bus_route(b, env->th, idem, msg, strlen(msg));
	free(msg);
	switch (r) {
	case BUS_ROUTE_SENT:
		return 0;
	case BUS_ROUTE_DUPLICATE:
		/* The answer the first request got. */
		api_response_clear(resp);
		resp->status = 200;
		resp->body = json_pack("{s:s}", "id", idem);
		return -1;
	case BUS_ROUTE_NO_TOKEN:
		api_error(resp, 401, "unknown_token", NULL,
			  "this token is unknown or was logged out");
		return -1;
	case BUS_ROUTE_NO_OWNER:
	case BUS_ROUTE_NO_DAEMON:
		api_error(resp, 503, "no_daemon", NULL,
			  "no session daemon is running; try again shortly");
		return -1;
	case BUS_ROUTE_ERROR:
		break;
	}
	api_error(resp, 503, "redis_unavailable", NULL,
		  "the message bus is unavailable; try again shortly");
	return -1;
}

static void api_wait(struct bus *b, const struct envelope *env, int timeout_ms,
		     struct api_response *resp)
{
	char *reply = NULL;
	size_t len = 0;
	int r = bus_wait_reply(b, env->rid, timeout_ms, &reply, &len);

	if (r == 0) {
		log_warn("%s %s: no answer from the daemon in %d ms", env->call,
			 env->rid, timeout_ms);
		api_error(resp, 504, "timeout",
			  NULL, "the session daemon did not answer in time");
	} else if (r < 0) {
		api_error(resp, 503, "redis_unavailable", NULL,
			  "the message bus is unavailable; try again shortly");
	} else if (envelope_decode_reply(reply, len, env->rid, env->rk,
					 &resp->status, &resp->body) == -1) {
		log_error("%s %s: malformed reply from the daemon", env->call,
			  env->rid);
		api_error(resp, 502, "bad_reply", NULL,
			  "the session daemon answered nonsense");
	}
	free(reply);
}

static void api_forward(const struct api_call *call, const struct config *cfg,
			struct bus *b, const struct api_request *req,
			struct envelope *env, struct api_response *resp)
{
	int timeout = call->kind == API_LOGIN ? cfg->http_login_timeout_ms
					      : cfg->http_request_timeout_ms;

	snprintf(env->call, sizeof(env->call), "%s", call->path + 4);
	seal_random_id(env->rid);
	seal_random(env->rk, sizeof(env->rk));
	snprintf(env->peer, sizeof(env->peer), "%s",
		 req->remote_addr ? req->remote_addr : "");
	env->deadline_ms = envelope_now_ms() + timeout;
	if (api_send(call, b, env, resp) == -1)
		return;
	api_wait(b, env, timeout, resp);
	if (call->answer)
		call->answer(cfg, req, resp);
}

static void api_login_answer(const struct config *cfg,
			     const struct api_request *req,
			     struct api_response *resp)
{
	if (resp->status == 200 && resp->body)
		json_object_set_new(resp->body, "url", api_base_url(cfg, req));
}

/*
 * The photo crosses the bus as base64 in JSON; the client gets the bytes.
 * They are served only as what they are (sniffed), and only when that is
 * what the daemon named: a vCard may claim anything.
 */
static void api_photo_answer(const struct config *cfg,
			     const struct api_request *req,
			     struct api_response *resp)
{
	const char *type = NULL, *b64 = NULL, *sniffed = NULL;
	uint8_t *data = NULL;
	size_t cap;
	long n = -1;

	(void)cfg;
	(void)req;
	if (resp->status != 200)
		return; /* errors pass through as the daemon wrote them */
	if (json_unpack(resp->body, "{s:s, s:s}", "type", &type, "data",
			&b64) == 0 &&
	    strlen(b64) <= API_PHOTO_B64_MAX) {
		cap = strlen(b64) / 4 * 3 + 3;
		if (!(data = malloc(cap))) {
			api_error(resp, 503, "overloaded", NULL,
				  "out of memory");
			return;
		}
		n = seal_unbase64(data, cap, b64, SEAL_B64);
	}
	if (n > 0)
		sniffed = avatar_sniff(data, (size_t)n);
	if (!sniffed || strcmp(sniffed, type) != 0) {
		free(data);
		log_error("photo: the daemon's answer is not an image of the "
			  "type it names");
		api_error(resp, 502, "bad_reply", NULL,
			  "the session daemon answered nonsense");
		return;
	}
	api_bytes_take(resp, sniffed, data, (size_t)n, "private, no-store");
}

/* Exactly one credential; a mechanism only names how a token is used. */
static int api_login_ok(json_t *body, struct api_response *resp)
{
	int password = json_object_get(body, "password") != NULL;
	int token = json_object_get(body, "token") != NULL;

	if (password && token)
		api_error(resp, 400, "conflicting_fields", "token",
			  "log in with a password or a token, not both");
	else if (!password && !token)
		api_error(resp, 400, "missing_field", "password",
			  "login needs a password or a token");
	else if (!token && json_object_get(body, "mechanism"))
		api_error(resp, 400, "unexpected_field", "mechanism",
			  "a mechanism goes with a token, not a password");
	else
		return 0;
	return -1;
}

/* A message needs something to say: a body, a chat state, or both. */
static int api_message_ok(json_t *body, struct api_response *resp)
{
	if (json_object_get(body, "body") || json_object_get(body, "state"))
		return 0;
	api_error(resp, 400, "missing_field", "body",
		  "a message needs a body or a state");
	return -1;
}

/* rename and regroup change one thing, which must be there; the other
 * actions take what they are given (add: an optional name and groups). */
static int api_contact_ok(json_t *body, struct api_response *resp)
{
	/* Never NULL: the table makes action a required enum. */
	const char *action = json_string_value(json_object_get(body, "action"));

	if (strcmp(action, "rename") == 0 && !json_object_get(body, "name")) {
		api_error(resp, 400, "missing_field", "name",
			  "rename needs a name (\"\" clears it)");
		return -1;
	}
	if (strcmp(action, "regroup") == 0 &&
	    !json_object_get(body, "groups")) {
		api_error(resp, 400, "missing_field", "groups",
			  "regroup needs groups ([] removes every group)");
		return -1;
	}
	return 0;
}

/* The 1x1 PNG for hashes the cache does not hold (copied: resp owns data). */
static void api_placeholder(struct api_response *resp)
{
	uint8_t *data = malloc(avatar_placeholder_len);

	if (!data) {
		api_error(resp, 503, "overloaded", NULL, "out of memory");
		return;
	}
	memcpy(data, avatar_placeholder, avatar_placeholder_len);
	api_bytes_take(resp, "image/png", data, avatar_placeholder_len,
		       "public, max-age=300");
}

/*
 * GET {base}/images/<sha1>: a cached avatar, straight from Redis. The hash
 * is the only key to the image (avatar.h), so it is never logged. Unknown
 * hashes get the placeholder, briefly cached: the daemon may fetch the
 * image soon.
 */
static void api_image(const struct config *cfg, struct bus **bus,
		      const struct api_request *req, struct api_response *resp)
{
	const char *rest = req->path + strlen(API_IMAGES);
	char hex[AVATAR_HASH_HEX + 1], key[AVATAR_KEY_MAX];
	struct bus *b = NULL;
	void *blob = NULL;
	size_t len = 0, dlen = 0;
	uint8_t *data = NULL;
	const char *type = NULL;
	int found = -1;

	if (avatar_hash_parse(rest, strlen(rest), hex) == -1) {
		api_error(resp, 400, "bad_hash", NULL,
			  "an image is named by the 40 hex digits of its "
			  "SHA-1");
		return;
	}
	avatar_redis_key(hex, key);
	if ((b = api_bus(cfg, bus)))
		found = bus_get_bin(b, key, &blob, &len);
	if (found == -1) {
		api_error(resp, 503, "redis_unavailable", NULL,
			  "the image cache is unavailable; try again shortly");
		return;
	}
	if (found == 1 &&
	    avatar_open(hex, blob, len, &data, &dlen, &type) == 0) {
		free(blob);
		api_bytes_take(resp, type, data, dlen,
			       "public, max-age=604800, immutable");
		return;
	}
	if (found == 1)
		log_warn("avatar %s does not open: answering the placeholder",
			 key);
	free(blob);
	api_placeholder(resp);
}

/* The Redis key counting logins for kind ("addr", "jid") and who: a
 * digest, so Redis lists neither addresses nor accounts. */
static void api_rate_key(const char *kind, const char *who, char *out,
			 size_t outlen)
{
	char lower[JID_MAX + 64], digest[WIRE_TOKEN_HASH_HEX + 1];
	size_t n = 0;

	for (; who[n] && n < sizeof(lower) - 1; n++)
		lower[n] = (char)tolower((unsigned char)who[n]);
	lower[n] = '\0';
	seal_token_hash(lower, n, digest);
	snprintf(out, outlen, "%s%s:%s", WIRE_KEY_RATE_PREFIX, kind, digest);
}

static int api_too_many(struct api_response *resp, long long ttl,
			const char *message)
{
	api_error(resp, 429, "rate_limited", NULL, message);
	resp->retry_after = ttl > 0 ? ttl : 1;
	return -1;
}

/*
 * Password guessing through the proxy: every attempt counts against the
 * client's address, and each refused one against the JID (counted after
 * the answer, in api_login_counted). 0, or -1 with a 429 (or 503) set.
 */
static int api_login_allowed(const struct config *cfg, struct bus *b,
			     const struct api_request *req, json_t *body,
			     struct api_response *resp)
{
	const char *jid = json_string_value(json_object_get(body, "jid"));
	char key[sizeof(WIRE_KEY_RATE_PREFIX) + WIRE_TOKEN_HASH_HEX + 8];
	long long n = 0, ttl = 0;

	if (req->remote_addr && *req->remote_addr) {
		api_rate_key("addr", req->remote_addr, key, sizeof(key));
		if (bus_count(b, key, 1, cfg->http_login_window, &n, &ttl) == -1)
			goto redis;
		if (n > cfg->http_login_per_address)
			return api_too_many(resp, ttl,
					    "too many logins from this address; "
					    "wait and try again");
	}
	api_rate_key("jid", jid, key, sizeof(key));
	if (bus_count(b, key, 0, cfg->http_login_window, &n, &ttl) == -1)
		goto redis;
	if (n >= cfg->http_login_failures_per_jid)
		return api_too_many(resp, ttl,
				    "too many failed logins for this account; "
				    "wait and try again");
	return 0;
redis:
	api_error(resp, 503, "redis_unavailable", NULL,
		  "the message bus is unavailable; try again shortly");
	return -1;
}

/* A refused login counts against its JID. */
static void api_login_counted(const struct config *cfg, struct bus *b,
			      json_t *body, const struct api_response *resp)
{
	char key[sizeof(WIRE_KEY_RATE_PREFIX) + WIRE_TOKEN_HASH_HEX + 8];
	long long n, ttl;

	if (resp->status != 401)
		return;
	api_rate_key("jid", json_string_value(json_object_get(body, "jid")), key,
		     sizeof(key));
	if (bus_count(b, key, 1, cfg->http_login_window, &n, &ttl) == -1)
		log_warn("a refused login was not counted (Redis)");
}

void api_handle(const struct api_call *call, const struct config *cfg,
		struct bus **bus, const struct api_request *req,
		struct api_response *resp)
{
	struct check_error cerr;
	struct envelope env;
	struct bus *b;

	if (call->kind == API_HEALTH) {
		api_health(cfg, bus, resp);
		return;
	}
	if (call->kind == API_IMAGE) {
		api_image(cfg, bus, req, resp);
		return;
	}
	envelope_init(&env);
	env.body = check_body(req->body, req->body_len, call->fields,
			      (size_t)cfg->http_max_message, &cerr);
	if (!env.body) {
		api_error(resp, cerr.status, cerr.code, cerr.field,
			  cerr.message);
		return;
	}
	if (call->kind == API_SESSION &&
	    api_token_hash(req, env.body, env.th, resp) == -1)
		goto out;
	if (call->rule && call->rule(env.body, resp) == -1)
		goto out;
	if (!(b = api_bus(cfg, bus))) {
		api_error(resp, 503, "redis_unavailable", NULL,
			  "the message bus is unavailable; try again shortly");
		goto out;
	}
	if (call->kind == API_LOGIN &&
	    api_login_allowed(cfg, b, req, env.body, resp) == -1)
		goto out;
	api_forward(call, cfg, b, req, &env, resp);
	if (call->kind == API_LOGIN)
		api_login_counted(cfg, b, env.body, resp);
out:
	envelope_clear(&env);
}
