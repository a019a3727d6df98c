/* test_seal.c: tokens, token hashes, sealed blobs and key files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "seal.h"
#include "tap.h"

static void test_tokens(void)
{
	char a[WIRE_TOKEN_B64 + 1], b[WIRE_TOKEN_B64 + 1];
	char ha[WIRE_TOKEN_HASH_HEX + 1], hb[WIRE_TOKEN_HASH_HEX + 1];

	seal_new_token(a);
	seal_new_token(b);
	ok(strlen(a) == WIRE_TOKEN_B64, "a token is 43 base64url characters");
	ok(strcmp(a, b) != 0, "two tokens differ");
	ok(seal_token_wellformed(a, strlen(a)), "a fresh token is well-formed");
	ok(!seal_token_wellformed(a, strlen(a) - 1), "refuses a token one character short");
	a[5] = '+';
	ok(!seal_token_wellformed(a, strlen(a)), "refuses a token with a non-base64url character");
	ok(!seal_token_wellformed("", 0), "refuses an empty token");
	seal_token_hash(b, strlen(b), ha);
	seal_token_hash(b, strlen(b), hb);
	ok(strlen(ha) == WIRE_TOKEN_HASH_HEX && strcmp(ha, hb) == 0,
	   "hashes a token to the same 64 hex digits every time");
	ok(strstr(ha, b) == NULL, "the hash does not contain the token");
}

static void test_ids(void)
{
	char a[WIRE_ID_HEX + 1], b[WIRE_ID_HEX + 1];

	seal_random_id(a);
	seal_random_id(b);
	ok(strlen(a) == WIRE_ID_HEX && strspn(a, "0123456789abcdef") == WIRE_ID_HEX,
	   "an id is 32 lower-case hex digits");
	ok(strcmp(a, b) != 0, "two ids differ");
}

static void test_boxes(void)
{
	uint8_t key[SEAL_KEY_BYTES], other[SEAL_KEY_BYTES];
	const char *msg = "the record";
	uint8_t blob[64], out[64];
	size_t n = strlen(msg);

	seal_random(key, sizeof(key));
	seal_random(other, sizeof(other));
	seal_box(blob, (const uint8_t *)msg, n, "tp:session:a", key);
	ok(memmem(blob, n + SEAL_OVERHEAD, msg, n) == NULL,
	   "a sealed blob does not contain its plaintext");
	ok(seal_open(out, blob, n + SEAL_OVERHEAD, "tp:session:a", key) == 0 &&
		   memcmp(out, msg, n) == 0,
	   "opens a blob with its key and Redis key");
	ok(seal_open(out, blob, n + SEAL_OVERHEAD, "tp:session:b", key) == -1,
	   "rejects a blob moved to another Redis key");
	ok(seal_open(out, blob, n + SEAL_OVERHEAD, "tp:session:a", other) == -1,
	   "rejects a blob sealed for another key");
	blob[30] ^= 1;
	ok(seal_open(out, blob, n + SEAL_OVERHEAD, "tp:session:a", key) == -1,
	   "rejects a blob with one bit flipped");
	ok(seal_open(out, blob, SEAL_OVERHEAD - 1, "tp:session:a", key) == -1,
	   "rejects a blob shorter than its overhead");
}

static void test_digest(void)
{
	uint8_t key[SEAL_KEY_BYTES], a[32], b[32];

	seal_random(key, sizeof(key));
	seal_digest2(a, key, "ab", "c");
	seal_digest2(b, key, "a", "bc");
	ok(!seal_equal(a, b, 32), "a digest tells where one part ends");
	seal_digest2(b, key, "ab", "c");
	ok(seal_equal(a, b, 32), "the same parts give the same digest");
}

static void test_keyfiles(void)
{
	char dir[] = "/tmp/tp-seal-XXXXXX", path[64];
	uint8_t a[SEAL_KEY_BYTES], b[SEAL_KEY_BYTES];

	if (!mkdtemp(dir)) {
		ok(0, "a temporary directory");
		return;
	}
	snprintf(path, sizeof(path), "%s/k", dir);
	ok(seal_keyfile_create(path, "test key") == 0, "creates a key file");
	ok(seal_keyfile_create(path, "test key") == -1, "never over an existing one");
	ok(seal_keyfile_load(path, "test key", a) == 0 &&
		   seal_keyfile_load(path, "test key", b) == 0 &&
		   memcmp(a, b, sizeof(a)) == 0,
	   "loads the same key twice");
	chmod(path, 0640);
	ok(seal_keyfile_load(path, "test key", a) == -1,
	   "refuses a key file the group may read");
	chmod(path, 0604);
	ok(seal_keyfile_load(path, "test key", a) == -1,
	   "refuses a key file others may read");
	chmod(path, 0600);
	FILE *f = fopen(path, "w");
	fputs("c2hvcnQ=\n", f);
	fclose(f);
	ok(seal_keyfile_load(path, "test key", a) == -1,
	   "refuses a key file that holds too few bytes");
	unlink(path);
	rmdir(dir);
}

static void test_base64(void)
{
	uint8_t out[8];
	char *s = seal_base64("\xfb\xff", 2, SEAL_B64URL);

	ok(s && strcmp(s, "-_8") == 0, "base64url without padding");
	free(s);
	s = seal_base64("\xfb\xff", 2, SEAL_B64);
	ok(s && strcmp(s, "+/8=") == 0, "standard base64 with padding");
	free(s);
	ok(seal_unbase64(out, sizeof(out), "+/8=", SEAL_B64) == 2 && out[0] == 0xfb,
	   "decodes standard base64");
	ok(seal_unbase64(out, sizeof(out), "+/8=x", SEAL_B64) == -1,
	   "refuses trailing garbage");
	ok(seal_unbase64(out, 1, "+/8=", SEAL_B64) == -1, "refuses what does not fit");
}

int main(void)
{
	if (seal_init() == -1)
		return 1;
	test_tokens();
	test_ids();
	test_boxes();
	test_digest();
	test_keyfiles();
	test_base64();
	return tap_done();
}
