/* test_avatar.c: image hashes, type sniffing, the sealed cache, the
 * placeholder. */
#include <stdlib.h>
#include <string.h>

#include "avatar.h"
#include "seal.h"
#include "tap.h"

#define HASH "da39a3ee5e6b4b0d3255bfef95601890afd80709"

static const struct {
	const char *name;
	const char *text;
	const char *want; /* NULL: refused */
} hashes[] = {
    {"reads 40 lower-case hex digits", HASH, HASH},
    {"reads upper-case hex digits as lower-case",
     "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709", HASH},
    {"reads mixed case", "Da39a3ee5e6b4b0d3255bfef95601890afd80709", HASH},
    {"refuses 39 digits", "da39a3ee5e6b4b0d3255bfef95601890afd8070", NULL},
    {"refuses 41 digits", HASH "0", NULL},
    {"refuses nothing", "", NULL},
    {"refuses a g", "ga39a3ee5e6b4b0d3255bfef95601890afd80709", NULL},
    {"refuses a dot-dot path", "../../../../../../../../../../etc/passwd",
     NULL},
    {"refuses percent escapes", "%2e%2e%2fa3ee5e6b4b0d3255bfef95601890afd8",
     NULL},
    {"refuses a slash inside", "da39a3ee5e6b4b0d3255/bfef95601890afd80709",
     NULL},
    {"refuses a trailing slash", "da39a3ee5e6b4b0d3255bfef95601890afd8070/",
     NULL},
    {"refuses a space", "da39a3ee5e6b4b0d3255 fef95601890afd80709", NULL},
    {"refuses a query string", "da39a3ee5e6b4b0d3255bfef95601890a?x=0709",
     NULL},
    {"refuses a 0x prefix", "0xda39a3ee5e6b4b0d3255bfef95601890afd807", NULL},
};

static void test_hash_parse(void)
{
	char hex[AVATAR_HASH_HEX + 1];

	for (size_t i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++) {
		int r = avatar_hash_parse(hashes[i].text,
					  strlen(hashes[i].text), hex);
		ok(hashes[i].want ? r == 0 && strcmp(hex, hashes[i].want) == 0
				  : r == -1,
		   "%s", hashes[i].name);
	}
	/* The length is the caller's: a NUL inside must not end the hash early.
	 */
	char nul[AVATAR_HASH_HEX] = HASH;
	nul[20] = '\0';
	ok(avatar_hash_parse(nul, sizeof(nul), hex) == -1,
	   "refuses a NUL inside");
	ok(avatar_hash_parse(HASH, 39, hex) == -1,
	   "refuses 39 digits of a longer string (the length counts)");
}

static const struct {
	const char *name;
	const char *data;
	size_t len;
	const char *want;
} sniffs[] = {
    {"sniffs PNG", "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16, "image/png"},
    {"sniffs JPEG", "\xff\xd8\xff\xe0\0\x10JFIF", 10, "image/jpeg"},
    {"sniffs GIF87a", "GIF87a\1\0\1\0", 10, "image/gif"},
    {"sniffs GIF89a", "GIF89a\1\0\1\0", 10, "image/gif"},
    {"sniffs WebP", "RIFF\x24\0\0\0WEBPVP8 ", 16, "image/webp"},
    {"refuses SVG (it can carry script)",
     "<svg xmlns=\"http://www.w3.org/2000/svg\"><script/></svg>", 55, NULL},
    {"refuses SVG behind an XML declaration", "<?xml version=\"1.0\"?><svg/>",
     27, NULL},
    {"refuses HTML", "<!DOCTYPE html><html>", 21, NULL},
    {"refuses a RIFF that is not WebP", "RIFF\x24\0\0\0WAVEfmt ", 16, NULL},
    {"refuses a PNG signature cut short", "\x89PNG\r\n\x1a", 7, NULL},
    {"refuses a JPEG start cut short", "\xff\xd8", 2, NULL},
    {"refuses GIF88a", "GIF88a\1\0\1\0", 10, NULL},
    {"refuses nothing", "", 0, NULL},
};

static void test_sniff(void)
{
	for (size_t i = 0; i < sizeof(sniffs) / sizeof(sniffs[0]); i++) {
		const char *got = avatar_sniff((const uint8_t *)sniffs[i].data,
					       sniffs[i].len);
		ok(sniffs[i].want ? got && strcmp(got, sniffs[i].want) == 0
				  : got == NULL,
		   "%s (got %s)", sniffs[i].name, got ? got : "NULL");
	}
}

static void test_seal(void)
{
	const char *other = "0000000000000000000000000000000000000001";
	char key[AVATAR_KEY_MAX], key2[AVATAR_KEY_MAX];
	const char *type = NULL;
	uint8_t *blob = NULL, *data = NULL;
	size_t blen = 0, dlen = 0;

	avatar_redis_key(HASH, key);
	avatar_redis_key(other, key2);
	ok(strncmp(key, WIRE_KEY_AVATAR_PREFIX,
		   strlen(WIRE_KEY_AVATAR_PREFIX)) == 0 &&
	       strlen(key) == strlen(WIRE_KEY_AVATAR_PREFIX) + 64 &&
	       strspn(key + strlen(WIRE_KEY_AVATAR_PREFIX),
		      "0123456789abcdef") == 64,
	   "the Redis key is the prefix and 64 hex digits (%s)", key);
	ok(strstr(key, HASH) == NULL, "the Redis key does not show the hash");
	ok(strcmp(key, key2) != 0, "two hashes have two Redis keys");

	int sealed = avatar_seal(HASH, avatar_placeholder,
				 avatar_placeholder_len, &blob, &blen) == 0;
	ok(sealed && blen == avatar_placeholder_len + SEAL_OVERHEAD,
	   "seals an image with the overhead of one box");
	if (!sealed)
		return;
	ok(memmem(blob, blen, "IHDR", 4) == NULL,
	   "the sealed blob does not show the image");
	ok(avatar_open(HASH, blob, blen, &data, &dlen, &type) == 0 &&
	       dlen == avatar_placeholder_len &&
	       memcmp(data, avatar_placeholder, dlen) == 0 &&
	       strcmp(type, "image/png") == 0,
	   "opens it again with its hash, typed image/png");
	free(data);
	data = NULL;
	ok(avatar_open(other, blob, blen, &data, &dlen, &type) == -1 &&
	       data == NULL,
	   "refuses to open it with another hash");
	ok(avatar_open(HASH, blob, SEAL_OVERHEAD - 1, &data, &dlen, &type) ==
		   -1 &&
	       data == NULL,
	   "refuses a blob shorter than the overhead");
	blob[blen - 1] ^= 1;
	ok(avatar_open(HASH, blob, blen, &data, &dlen, &type) == -1 &&
	       data == NULL,
	   "refuses a blob with one bit flipped");
	free(blob);

	static const char svg[] = "<svg xmlns='http://www.w3.org/2000/svg'/>";
	blob = NULL;
	ok(avatar_seal(HASH, (const uint8_t *)svg, sizeof(svg) - 1, &blob,
		       &blen) == 0 &&
	       avatar_open(HASH, blob, blen, &data, &dlen, &type) == -1 &&
	       data == NULL,
	   "refuses to open a sealed SVG: only raster images are served");
	free(blob);

	uint8_t *big = calloc(1, AVATAR_MAX_BYTES + 1);
	blob = NULL;
	ok(big &&
	       avatar_seal(HASH, big, AVATAR_MAX_BYTES + 1, &blob, &blen) == -1,
	   "refuses to seal more than AVATAR_MAX_BYTES");
	free(blob);
	free(big);
}

static unsigned long be32(const uint8_t *p)
{
	return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 |
	       (unsigned long)p[2] << 8 | p[3];
}

static void test_placeholder(void)
{
	const uint8_t *p = avatar_placeholder;
	size_t n = avatar_placeholder_len;

	ok(n > 33 && avatar_sniff(p, n) &&
	       strcmp(avatar_sniff(p, n), "image/png") == 0,
	   "the placeholder is a PNG");
	ok(n > 33 && be32(p + 8) == 13 && memcmp(p + 12, "IHDR", 4) == 0,
	   "the placeholder starts with its IHDR chunk");
	ok(n > 33 && be32(p + 16) == 1 && be32(p + 20) == 1,
	   "the placeholder is 1x1 (IHDR width and height 1)");
	ok(n >= 12 && memcmp(p + n - 8, "IEND", 4) == 0,
	   "the placeholder ends with IEND");
}

int main(void)
{
	if (seal_init() == -1)
		return 1;
	test_hash_parse();
	test_sniff();
	test_seal();
	test_placeholder();
	return tap_done();
}
