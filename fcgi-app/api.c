/* api.c: the API table and what the handler does with each call (api.h). */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
	API_HEALTH   /* answered by the handler itself */
};

struct api_call {
	const char *path;
	const char *method;
	enum api_kind kind;
	const struct check_field *fields;
};

static const char *const api_shows[] = {"available", "away", "xa",
					"dnd",	     "chat", "invisible",
					"unavailable", NULL};
static const char *const api_states[] = {"active",   "composing", "paused",
					 "inactive", "gone",	  NULL};

static const struct check_field api_no_fields[] = {{NULL}};

static const struct check_field api_login_fields[] = {
	{"jid", CHECK_ACCOUNT, 1, JID_MAX, NULL, 0, NULL},
	{"password", CHECK_LINE, 1, 1023, NULL, 0, NULL},
	{"resource", CHECK_RESOURCE, 0, JID_PART_MAX, NULL, 0, NULL},
	{NULL}};

static const struct check_field api_message_fields[] = {
	{"to", CHECK_JID, 1, JID_MAX, NULL, 0, NULL},
	{"body", CHECK_TEXT, 0, 0, NULL, 0, NULL},
	{"id", CHECK_LINE, 0, 128, NULL, 0, NULL},
	{"state", CHECK_ENUM, 0, 16, api_states, 0, NULL},
	{NULL}};

static const struct check_field api_presence_fields[] = {
	{"show", CHECK_ENUM, 1, 16, api_shows, 0, NULL},
	{"status", CHECK_TEXT, 0, 1024, NULL, 1, NULL},
	{NULL}};

static const char *const api_push_kinds[] = {"webpush", "webhook", "mpns",
					     NULL};

static const struct check_field api_webpush_keys[] = {
	{"p256dh", CHECK_LINE, 1, 128, NULL, 0, NULL},
	{"auth", CHECK_LINE, 1, 64, NULL, 0, NULL},
	{NULL}};

/* url "" withdraws the registration; the daemon checks the URL's shape
 * (pushaddr.h) and the address at connect time. */
static const struct check_field api_register_fields[] = {
	{"url", CHECK_LINE, 1, 2048, NULL, 1, NULL},
	{"kind", CHECK_ENUM, 0, 16, api_push_kinds, 0, NULL},
	{"tiles", CHECK_JID_LIST, 0, 32, NULL, 0, NULL},
	{"keys", CHECK_OBJECT, 0, 0, NULL, 0, api_webpush_keys},
	{NULL}};

static const struct check_field api_notifications_fields[] = {
	{"toast", CHECK_BOOL, 0, 0, NULL, 0, NULL},
	{"tile", CHECK_BOOL, 0, 0, NULL, 0, NULL},
	{"secondarytile", CHECK_BOOL, 0, 0, NULL, 0, NULL},
	{NULL}};

static const struct check_field api_messagequeue_fields[] = {
	{"ack", CHECK_CURSOR, 0, 48, NULL, 0, NULL},
	{NULL}};

static const struct check_field api_otr_fields[] = {
	{"jid", CHECK_JID, 1, JID_MAX, NULL, 0, NULL},
	{"enabled", CHECK_BOOL, 1, 0, NULL, 0, NULL},
	{NULL}};

/* Stack traces keep their newlines and tabs (CHECK_TEXT). */
static const struct check_field api_crashreport_fields[] = {
	{"exception", CHECK_TEXT, 1, WIRE_CRASHREPORT_BYTES, NULL, 0, NULL},
	{NULL}};

static const struct check_field api_rawiq_fields[] = {
	{"xml", CHECK_IQ, 1, 16384, NULL, 0, NULL},
	{"wait", CHECK_BOOL, 0, 0, NULL, 0, NULL},
	{NULL}};

static const struct api_call api_calls[] = {
	{"/v1/login", "POST", API_LOGIN, api_login_fields},
	{"/v1/logout", "POST", API_SESSION, api_no_fields},
	{"/v1/message", "POST", API_SESSION, api_message_fields},
	{"/v1/presence", "POST", API_SESSION, api_presence_fields},
	{"/v1/roster", "POST", API_SESSION, api_no_fields},
	{"/v1/key", "POST", API_SESSION, api_no_fields},
	{"/v1/register", "POST", API_SESSION, api_register_fields},
	{"/v1/notifications", "POST", API_SESSION, api_notifications_fields},
	{"/v1/messagequeue", "POST", API_SESSION, api_messagequeue_fields},
	{"/v1/otr", "POST", API_SESSION, api_otr_fields},
	{"/v1/crashreport", "POST", API_SESSION, api_crashreport_fields},
	{"/v1/rawiq", "POST", API_SESSION, api_rawiq_fields},
	{"/health", "GET", API_HEALTH, NULL},
};

void api_response_clear(struct api_response *resp)
{
	json_decref(resp->body);
	resp->body = NULL;
}

static void api_error(struct api_response *resp, int status, const char *code,
		      const char *field, const char *message)
{
	json_decref(resp->body);
	resp->status = status;
	resp->body = envelope_error(code, message, field);
}

const struct api_call *api_route(const char *path, const char *method,
				 struct api_response *resp)
{
	for (size_t i = 0; i < sizeof(api_calls) / sizeof(api_calls[0]); i++) {
		const struct api_call *c = &api_calls[i];
		if (strcmp(path, c->path) != 0)
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

int api_precheck(const struct api_call *call, const struct config *cfg,
		 const struct api_request *req, struct api_response *resp)
{
	if (call->kind == API_HEALTH)
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

/* Publishes the envelope; returns 0 when a daemon took it, else fills resp. */
static int api_send(const struct api_call *call, struct bus *b,
		    const struct envelope *env, struct api_response *resp)
{
	char *msg = envelope_encode_request(env);
	long long receivers = 0;
	enum bus_route r;

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
		r = bus_route(b, env->th, msg, strlen(msg));
	free(msg);
	switch (r) {
	case BUS_ROUTE_SENT:
		return 0;
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
	if (call->kind == API_LOGIN && resp->status == 200 && resp->body)
		json_object_set_new(resp->body, "url", api_base_url(cfg, req));
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
	/* Token login (SASL X-OAUTH2/OAUTHBEARER) is not offered yet. */
	if (call->kind == API_LOGIN && json_object_get(env.body, "token")) {
		api_error(resp, 400, "unknown_field", "token",
			  "login takes a password");
		goto out;
	}
	if (strcmp(call->path, "/v1/message") == 0 &&
	    api_message_ok(env.body, resp) == -1)
		goto out;
	if (!(b = api_bus(cfg, bus))) {
		api_error(resp, 503, "redis_unavailable", NULL,
			  "the message bus is unavailable; try again shortly");
		goto out;
	}
	api_forward(call, cfg, b, req, &env, resp);
out:
	envelope_clear(&env);
}
