/* test_payload.c: payload JSON, body cutting and the push size bound. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"
#include "tap.h"

static json_t *parse(const char *text)
{
	return text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
}

static void test_fields(void)
{
	struct payload_msg m = {.from = "bob@x", .resource = "phone",
				.name = "Bob \"B\"", .type = "chat", .id = "i1",
				.body = "hi <b>&", .state = "active",
				.stamp = "2026-01-02T03:04:05Z", .otr = 1};
	char *text = payload_json(&m, 0);
	json_t *o = parse(text);

	ok(o != NULL, "the payload is valid JSON");
	ok(json_integer_value(json_object_get(o, "v")) == 1, "it carries version 1");
	ok(strcmp(json_string_value(json_object_get(o, "name")), "Bob \"B\"") == 0,
	   "a quote in the name survives");
	ok(strcmp(json_string_value(json_object_get(o, "body")), "hi <b>&") == 0,
	   "the body is passed as is");
	ok(strcmp(json_string_value(json_object_get(o, "time")),
		  "2026-01-02T03:04:05Z") == 0,
	   "a well-formed delay stamp is the time");
	ok(json_is_true(json_object_get(o, "otr")), "otr is set");
	ok(!json_object_get(o, "truncated"), "a whole body is not marked truncated");
	json_decref(o);
	free(text);

	m.stamp = "yesterday, I think";
	m.resource = NULL;
	m.name = NULL;
	o = parse(text = payload_json(&m, 0));
	const char *t = json_string_value(json_object_get(o, "time"));
	ok(t && strlen(t) == 24 && t[23] == 'Z', "a malformed stamp is replaced by now");
	ok(!json_object_get(o, "name") && !json_object_get(o, "resource"),
	   "absent name and resource are left out");
	json_decref(o);
	free(text);
}

static void test_cut(void)
{
	/* "é" is two bytes: a cut at 3 must not split the second one. */
	struct payload_msg m = {.from = "a@b", .type = "chat", .body = "\xc3\xa9\xc3\xa9"};
	char *text = payload_json(&m, 3);
	json_t *o = parse(text);

	ok(o && strcmp(json_string_value(json_object_get(o, "body")), "\xc3\xa9") == 0,
	   "a cut body ends on a UTF-8 boundary");
	ok(o && json_is_true(json_object_get(o, "truncated")), "and is marked truncated");
	json_decref(o);
	free(text);
}

static void test_push_bound(void)
{
	uint8_t key[SEAL_KEY_BYTES];
	size_t n = 60000;
	char *body = malloc(n + 1);

	seal_random(key, sizeof(key));
	/* Control characters grow six-fold when escaped in JSON. */
	for (size_t i = 0; i < n; i++)
		body[i] = (char)(i % 2 ? 0x01 : 'x');
	body[n] = '\0';
	struct payload_msg m = {.from = "a@b", .type = "chat", .body = body};
	char *json = payload_json(&m, 0), *b64;
	uint8_t *item = NULL;
	size_t len = 0;

	ok(json && payload_seal(json, key, &item, &len) == 0,
	   "the 60 KB message seals whole as a queue item");
	b64 = payload_push(&m, key, item, len);
	ok(b64 && strlen(b64) <= PAYLOAD_PUSH_MAX,
	   "a 60 KB body of escapes still gives a push payload within %d bytes",
	   PAYLOAD_PUSH_MAX);
	free(b64);
	free(item);
	free(json);
	m.body = "short";
	b64 = payload_push(&m, key, NULL, 0);
	ok(b64 && strlen(b64) < 400, "a short message gives a short payload");
	free(b64);
	json = payload_json(&m, 0);
	item = NULL;
	len = 0;
	ok(json && payload_seal(json, key, &item, &len) == 0,
	   "the short message seals as a queue item");
	b64 = payload_push(&m, key, item, len);
	char *whole = seal_base64(item, len, SEAL_B64);
	ok(b64 && whole && strcmp(b64, whole) == 0,
	   "a queue item that fits is the push payload as it is");
	free(whole);
	free(b64);
	free(item);
	free(json);
	free(body);
}

int main(void)
{
	if (seal_init() == -1)
		return 1;
	test_fields();
	test_cut();
	test_push_bound();
	return tap_done();
}
