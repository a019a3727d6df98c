/*
 * fuzz_envelope.c: the bus envelopes on both sides. The daemon decodes
 * requests the handler published (envelope_decode_request); the handler
 * opens and decodes replies the daemon sealed with the request's reply key
 * (envelope_decode_reply). Whatever decodes must survive a round trip
 * through the encoder unchanged.
 *
 * Input: one mode byte, then the bytes:
 *   '0' (and every byte = 0 mod 3): a request as published, JSON text;
 *   '1' (1 mod 3): a reply blob as Redis holds it (sealed);
 *   '2' (2 mod 3): a reply's plaintext, sealed here with the fixed reply
 *       key for the fixed request id, so the decoder's JSON side is
 *       reached (a forger without the key cannot get there; a daemon bug
 *       or a leaked key could).
 */
#include <jansson.h>

#include "envelope.h"
#include "fuzz.h"
#include "seal.h"
#include "wire.h"

static const char fuzz_rid[WIRE_ID_HEX + 1] = "00112233445566778899aabbccddeeff";
static const char fuzz_other_rid[WIRE_ID_HEX + 1] =
	"ffeeddccbbaa99887766554433221100";
static const uint8_t fuzz_rk[SEAL_KEY_BYTES] = "fuzz reply key, 32 bytes long!!";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (seal_init() == -1)
		abort();
	return 0;
}

static void fuzz_request(const char *buf, size_t len)
{
	struct envelope e, again;
	char err[128];
	char *text;

	if (envelope_decode_request(buf, len, &e, err, sizeof(err)) == -1) {
		FUZZ_ASSERT(err[0] != '\0', "a refusal says why");
		envelope_clear(&e);
		return;
	}
	FUZZ_ASSERT(strlen(e.rid) == WIRE_ID_HEX, "a request id has its size");
	FUZZ_ASSERT(json_is_object(e.body), "the body is an object");
	text = envelope_encode_request(&e);
	FUZZ_ASSERT(text != NULL, "a decoded request encodes");
	FUZZ_ASSERT(envelope_decode_request(text, strlen(text), &again, err,
					    sizeof(err)) == 0,
		    "an encoded request decodes");
	FUZZ_ASSERT(strcmp(e.call, again.call) == 0 &&
			    strcmp(e.rid, again.rid) == 0 &&
			    strcmp(e.th, again.th) == 0 &&
			    strcmp(e.peer, again.peer) == 0 &&
			    e.deadline_ms == again.deadline_ms &&
			    memcmp(e.rk, again.rk, sizeof(e.rk)) == 0 &&
			    json_equal(e.body, again.body),
		    "a request survives encoding unchanged");
	free(text);
	envelope_clear(&again);
	envelope_clear(&e);
}

static void fuzz_reply(const char *blob, size_t len)
{
	int status = 0;
	json_t *body = NULL;
	size_t len2 = 0;
	char *again;

	if (envelope_decode_reply(blob, len, fuzz_rid, fuzz_rk, &status,
				  &body) == -1)
		return;
	FUZZ_ASSERT(status >= 100 && status <= 599, "a status is HTTP's");
	FUZZ_ASSERT(json_is_object(body), "a reply body is an object");
	/* Bound to its request: the same blob is no reply to another. */
	int status2 = 0;
	json_t *body2 = NULL;
	FUZZ_ASSERT(envelope_decode_reply(blob, len, fuzz_other_rid, fuzz_rk,
					  &status2, &body2) == -1,
		    "a reply opens only for its own request id");
	again = envelope_encode_reply(fuzz_rid, fuzz_rk, status, body, &len2);
	FUZZ_ASSERT(again != NULL, "a decoded reply encodes");
	FUZZ_ASSERT(envelope_decode_reply(again, len2, fuzz_rid, fuzz_rk,
					  &status2, &body2) == 0 &&
			    status2 == status && json_equal(body, body2),
		    "a reply survives encoding unchanged");
	json_decref(body2);
	json_decref(body);
	free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char ad[sizeof(WIRE_KEY_REPLY_PREFIX) + WIRE_ID_HEX];
	uint8_t *blob;

	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		fuzz_request((const char *)data + 1, size - 1);
		break;
	case 1:
		fuzz_reply((const char *)data + 1, size - 1);
		break;
	default:
		/* Sealed as envelope_encode_reply() seals: the reply list's
		 * key as associated data. */
		if (!(blob = malloc(size - 1 + SEAL_OVERHEAD)))
			abort();
		snprintf(ad, sizeof(ad), "%s%s", WIRE_KEY_REPLY_PREFIX, fuzz_rid);
		seal_box(blob, data + 1, size - 1, ad, fuzz_rk);
		fuzz_reply((const char *)blob, size - 1 + SEAL_OVERHEAD);
		free(blob);
		break;
	}
	return 0;
}
