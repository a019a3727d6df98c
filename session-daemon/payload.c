/* payload.c: incoming messages as sealed payloads (payload.h). */
#include "payload.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "envelope.h"

/* A server's delay stamp is passed on only when it looks like one. */
static int payload_stamp_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 20 && n <= 35 && strspn(s, "0123456789-T:.Z+") == n;
}

static void payload_now(char out[64])
{
	long long ms = envelope_now_ms();
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

size_t payload_utf8_cut(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

void payload_from_message(struct payload_msg *pm,
			  const struct client_message *m, const char *bare,
			  const char *name, int otr)
{
	const char *slash = strchr(m->from, '/');

	*pm = (struct payload_msg){
		.kind = m->body      ? "message"
			: m->receipt ? "receipt"
				     : "chatstate",
		.from = bare,
		.resource = slash ? slash + 1 : NULL,
		.name = name,
		.type = m->type,
		.id = m->id,
		.body = m->body,
		.state = m->state,
		.stamp = m->stamp,
		.receipt = m->body ? NULL : m->receipt,
		.otr = otr,
	};
}

static int payload_set(json_t *o, const char *k, const char *v)
{
	return v ? json_object_set_new(o, k, json_string(v)) : 0;
}

char *payload_json(const struct payload_msg *m, size_t body_max)
{
	char now[64];
	json_t *o = json_object();
	char *text = NULL;
	int bad = !o;

	if (m->stamp && payload_stamp_ok(m->stamp))
		snprintf(now, sizeof(now), "%s", m->stamp);
	else
		payload_now(now);
	bad |= json_object_set_new(o, "v", json_integer(1)) |
	       payload_set(o, "kind", m->kind ? m->kind : "message") |
	       payload_set(o, "from", m->from) |
	       payload_set(o, "resource", m->resource) |
	       payload_set(o, "name", m->name) |
	       payload_set(o, "type", m->type) | payload_set(o, "id", m->id) |
	       payload_set(o, "state", m->state) |
	       payload_set(o, "receipt", m->receipt) |
	       payload_set(o, "status", m->status) |
	       payload_set(o, "time", now) |
	       json_object_set_new(o, "otr", json_boolean(m->otr));
	if (m->body) {
		size_t n = body_max ? payload_utf8_cut(m->body, body_max)
				    : strlen(m->body);
		bad |= json_object_set_new(o, "body",
					   json_stringn(m->body, n));
		if (n < strlen(m->body))
			bad |= json_object_set_new(o, "truncated", json_true());
	}
	if (!bad)
		text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

int payload_seal(const char *text, const uint8_t key[SEAL_KEY_BYTES],
		 uint8_t **out, size_t *outlen)
{
	size_t len = strlen(text);

	*out = malloc(len + SEAL_OVERHEAD);
	if (!*out)
		return -1;
	seal_box(*out, (const uint8_t *)text, len, "", key);
	*outlen = len + SEAL_OVERHEAD;
	return 0;
}

static char *payload_sealed_b64(const struct payload_msg *m, size_t body_max,
				const uint8_t key[SEAL_KEY_BYTES])
{
	char *text = payload_json(m, body_max), *b64 = NULL;
	uint8_t *sealed;
	size_t len;

	if (text && payload_seal(text, key, &sealed, &len) == 0) {
		b64 = seal_base64(sealed, len, SEAL_B64);
		free(sealed);
	}
	if (text)
		seal_wipe(text, strlen(text));
	free(text);
	return b64;
}

char *payload_push(const struct payload_msg *m,
		   const uint8_t key[SEAL_KEY_BYTES], const uint8_t *item,
		   size_t len)
{
	/* JSON escaping can grow a body up to six times: halve until it fits
	 * rather than guess. A few rounds at most. */
	size_t body_max = 0;

	/* Most messages fit whole: no second JSON and sealing of the same. */
	if (item && (len + 2) / 3 * 4 <= PAYLOAD_PUSH_MAX)
		return seal_base64(item, len, SEAL_B64);

	for (int round = 0; round < 16; round++) {
		char *b64 = payload_sealed_b64(m, body_max, key);
		if (!b64 || strlen(b64) <= PAYLOAD_PUSH_MAX)
			return b64;
		free(b64);
		size_t have = m->body ? strlen(m->body) : 0;
		body_max = (body_max ? body_max : (have < 2048 ? have : 2048)) / 2;
		if (body_max == 0 && round > 0)
			break;
	}
	return NULL;
}
