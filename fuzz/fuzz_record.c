/*
 * fuzz_record.c: restoring a session from its sealed record, as a daemon
 * adopting an orphan does: record_load (seal_open with the master key and
 * the record's Redis key, then the JSON parse), the session's unpacking of
 * the record, and inbox_import of its inbox part. Redis is fakebus.c.
 * Whatever restores must survive inbox_export -> record_save ->
 * record_load -> inbox_import unchanged.
 *
 * Input: one mode byte, then the bytes:
 *   even: the blob as Redis would hold it under tp:session:<sid>;
 *   odd:  the record's plaintext, sealed here with the master key, so the
 *         JSON side is reached (a record comes from our own daemon, so
 *         this is what a bug there, or an older version, could write).
 */
#include <jansson.h>

#include "config.h"
#include "fakebus.h"
#include "fuzz.h"
#include "inbox.h"
#include "log.h"
#include "record.h"
#include "seal.h"
#include "wire.h"

static const char fuzz_sid[WIRE_ID_HEX + 1] = "0123456789abcdef0123456789abcdef";
static const uint8_t fuzz_master[SEAL_KEY_BYTES] = "fuzz master key, 32 bytes long!";
static struct config fuzz_cfg;
static struct inbox_env fuzz_env;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fakebus_harness_init("fuzz_record", &fuzz_cfg, &fuzz_env);
	return 0;
}

/*
 * The record's own fields, unpacked with session.c's formats (its
 * session_restore() and session_restore_fields() are static): the
 * credentials, then tokens, presence and the inbox. Returns the inbox
 * part (borrowed from o) or NULL when the daemon would refuse the record.
 * (The token list the daemon reads after the inbox is plain strings.)
 */
static json_t *fuzz_session_fields(json_t *o)
{
	const char *jid, *secret, *resource, *mech = NULL, *show, *status;
	json_t *tokens, *inbox;

	if (json_unpack(o, "{s:s, s:s, s:s, s?:s}", "jid", &jid, "password",
			&secret, "resource", &resource, "mechanism",
			&mech) == -1 ||
	    json_unpack(o, "{s:o, s:s, s:s, s:o}", "tokens", &tokens, "show",
			&show, "status", &status, "inbox", &inbox) == -1)
		return NULL;
	return inbox;
}

/* The round trip a restored session makes when it is saved again. */
static void fuzz_resave(struct inbox *ib)
{
	json_t *exported = inbox_export(ib), *rec, *back;
	struct inbox *ib2 = inbox_new(&fuzz_env, fuzz_sid);
	json_t *exported2;

	FUZZ_ASSERT(exported && ib2, "a restored inbox exports");
	rec = json_pack("{s:O}", "inbox", exported);
	FUZZ_ASSERT(rec && record_save(fuzz_env.bus, fuzz_master, fuzz_sid,
				       rec) == 0,
		    "a record saves");
	back = record_load(fuzz_env.bus, fuzz_master, fuzz_sid);
	FUZZ_ASSERT(back, "a saved record loads");
	FUZZ_ASSERT(inbox_import(ib2, json_object_get(back, "inbox")) == 0,
		    "an exported inbox imports");
	exported2 = inbox_export(ib2);
	FUZZ_ASSERT(json_equal(exported, exported2),
		    "an inbox survives export and import unchanged");
	json_decref(exported2);
	json_decref(back);
	json_decref(rec);
	json_decref(exported);
	inbox_free(ib2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char key[sizeof(WIRE_KEY_SESSION_PREFIX) + WIRE_ID_HEX];
	struct inbox *ib;
	json_t *o, *inbox;
	uint8_t *blob;

	if (size == 0)
		return 0;
	fakebus_reset(fuzz_env.bus);
	bus_key(key, sizeof(key), WIRE_KEY_SESSION_PREFIX, fuzz_sid);
	if (data[0] % 2 == 0) {
		fakebus_put(fuzz_env.bus, key, data + 1, size - 1);
	} else {
		if (!(blob = malloc(size - 1 + SEAL_OVERHEAD)))
			abort();
		seal_box(blob, data + 1, size - 1, key, fuzz_master);
		fakebus_put(fuzz_env.bus, key, blob, size - 1 + SEAL_OVERHEAD);
		free(blob);
	}
	if (!(o = record_load(fuzz_env.bus, fuzz_master, fuzz_sid)))
		return 0;
	if ((inbox = fuzz_session_fields(o))) {
		if (!(ib = inbox_new(&fuzz_env, fuzz_sid)))
			abort();
		if (inbox_import(ib, inbox) == 0)
			fuzz_resave(ib);
		inbox_free(ib);
	}
	json_decref(o);
	return 0;
}
