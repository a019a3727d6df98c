/* envelope.c: encoding and strict decoding of bus messages (envelope.h). */
#include "envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void envelope_init(struct envelope *e)
{
	memset(e, 0, sizeof(*e));
}

void envelope_clear(struct envelope *e)
{
	json_decref(e->body);
	e->body = NULL;
	seal_wipe(e->rk, sizeof(e->rk));
}

int64_t envelope_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *envelope_encode_request(const struct envelope *e)
{
	char *rk = seal_base64(e->rk, sizeof(e->rk), SEAL_B64URL);
	json_t *o = rk ? json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:s, s:o}",
				   "v", WIRE_VERSION, "call", e->call, "rid",
				   e->rid, "th", e->th, "peer", e->peer,
				   "deadline", (json_int_t)e->deadline_ms, "rk",
				   rk, "body",
				   e->body ? json_incref(e->body)
					   : json_object())
		       : NULL;
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	if (rk)
		seal_wipe(rk, strlen(rk));
	free(rk);
	json_decref(o);
	return s;
}

static int envelope_rk(json_t *o, uint8_t rk[SEAL_KEY_BYTES])
{
	const char *s = json_string_value(json_object_get(o, "rk"));

	return s && seal_unbase64(rk, SEAL_KEY_BYTES, s, SEAL_B64URL) ==
			    SEAL_KEY_BYTES
		       ? 0
		       : -1;
}

/* Copies a string member of at most max bytes into out; -1 when absent. */
static int envelope_copy(json_t *o, const char *name, char *out, size_t max)
{
	json_t *v = json_object_get(o, name);

	if (!json_is_string(v) || json_string_length(v) > max)
		return -1;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int envelope_version_ok(json_t *o)
{
	json_t *v = json_object_get(o, "v");

	return json_is_integer(v) && json_integer_value(v) == WIRE_VERSION;
}

int envelope_decode_request(const char *buf, size_t len, struct envelope *e,
			    char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *why = NULL;

	envelope_init(e);
	if (!json_is_object(o))
		why = "not a JSON object";
	else if (!envelope_version_ok(o))
		why = "wrong protocol version";
	else if (envelope_copy(o, "call", e->call, WIRE_CALL_MAX) == -1 ||
		 envelope_copy(o, "rid", e->rid, WIRE_ID_HEX) == -1 ||
		 strlen(e->rid) != WIRE_ID_HEX ||
		 envelope_copy(o, "th", e->th, WIRE_TOKEN_HASH_HEX) == -1 ||
		 envelope_copy(o, "peer", e->peer, WIRE_PEER_MAX) == -1)
		why = "bad call, rid, th or peer";
	else if (!json_is_integer(json_object_get(o, "deadline")))
		why = "bad deadline";
	else if (envelope_rk(o, e->rk) == -1)
		why = "bad reply key";
	else if (!json_is_object(json_object_get(o, "body")))
		why = "body is not an object";
	if (why) {
		snprintf(err, errlen, "%s", why);
		json_decref(o);
		return -1;
	}
	e->deadline_ms = json_integer_value(json_object_get(o, "deadline"));
	e->body = json_incref(json_object_get(o, "body"));
	json_decref(o);
	return 0;
}

/* The reply list's key: binds a sealed reply to its request. */
static void envelope_reply_ad(char *out, size_t outlen, const char *rid)
{
	snprintf(out, outlen, "%s%s", WIRE_KEY_REPLY_PREFIX, rid);
}

char *envelope_encode_reply(const char *rid, const uint8_t rk[SEAL_KEY_BYTES],
			    int status, const json_t *body, size_t *len)
{
	char ad[sizeof(WIRE_KEY_REPLY_PREFIX) + WIRE_ID_HEX];
	json_t *o = json_pack("{s:i, s:s, s:i, s:o}", "v", WIRE_VERSION, "rid",
			      rid, "status", status, "body",
			      body ? json_incref((json_t *)body) : json_object());
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	char *blob = NULL;
	size_t n = text ? strlen(text) : 0;

	json_decref(o);
	if (text && (blob = malloc(n + SEAL_OVERHEAD))) {
		envelope_reply_ad(ad, sizeof(ad), rid);
		seal_box((uint8_t *)blob, (const uint8_t *)text, n, ad, rk);
		*len = n + SEAL_OVERHEAD;
	}
	if (text)
		seal_wipe(text, n);
	free(text);
	return blob;
}

int envelope_decode_reply(const char *buf, size_t len, const char *rid,
			  const uint8_t rk[SEAL_KEY_BYTES], int *status,
			  json_t **body)
{
	char ad[sizeof(WIRE_KEY_REPLY_PREFIX) + WIRE_ID_HEX];
	char *text = len >= SEAL_OVERHEAD ? malloc(len - SEAL_OVERHEAD + 1) : NULL;
	json_t *o = NULL;
	int r = -1;

	envelope_reply_ad(ad, sizeof(ad), rid);
	if (text && seal_open((uint8_t *)text, (const uint8_t *)buf, len, ad,
			      rk) == 0)
		o = json_loadb(text, len - SEAL_OVERHEAD, JSON_REJECT_DUPLICATES,
			       NULL);
	if (text)
		seal_wipe(text, len - SEAL_OVERHEAD);
	free(text);
	json_t *st = json_object_get(o, "status");
	json_t *b = json_object_get(o, "body");
	if (json_is_object(o) && envelope_version_ok(o) &&
	    json_is_integer(st) && json_integer_value(st) >= 100 &&
	    json_integer_value(st) <= 599 && json_is_object(b)) {
		*status = (int)json_integer_value(st);
		*body = json_incref(b);
		r = 0;
	}
	json_decref(o);
	return r;
}

json_t *envelope_error(const char *code, const char *message,
		       const char *field)
{
	json_t *inner = json_pack("{s:s, s:s}", "code", code, "message",
				  message);

	if (!inner)
		return NULL;
	if (field)
		json_object_set_new(inner, "field", json_string(field));
	return json_pack("{s:o}", "error", inner);
}
