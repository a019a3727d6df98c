/* avatar.c: the sealed avatar cache's names, keys and formats (avatar.h). */
#include "avatar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seal.h"

const uint8_t avatar_placeholder[] = {
	0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d,
	0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,
	0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00,
	0x0b, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x60, 0x00, 0x02, 0x00,
	0x00, 0x05, 0x00, 0x01, 0xe9, 0xfa, 0xdc, 0xd8, 0x00, 0x00, 0x00, 0x00,
	0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
const size_t avatar_placeholder_len = sizeof(avatar_placeholder);

/* A public context for the derivations: secrecy comes from the hash. */
static const uint8_t avatar_context[SEAL_KEY_BYTES] = "talkproxy avatar cache v1";

int avatar_hash_parse(const char *text, size_t len,
		      char hex[AVATAR_HASH_HEX + 1])
{
	static const char digits[] = "0123456789abcdef";

	if (len != AVATAR_HASH_HEX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!c || !strchr(digits, c))
			return -1;
		hex[i] = c;
	}
	hex[len] = '\0';
	return 0;
}

void avatar_redis_key(const char *hex, char out[AVATAR_KEY_MAX])
{
	uint8_t d[32];
	char dhex[65];

	seal_digest2(d, avatar_context, "name", hex);
	for (size_t i = 0; i < sizeof(d); i++)
		snprintf(dhex + 2 * i, 3, "%02x", d[i]);
	snprintf(out, AVATAR_KEY_MAX, "%s%s", WIRE_KEY_AVATAR_PREFIX, dhex);
}

const char *avatar_sniff(const uint8_t *d, size_t n)
{
	if (n >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0)
		return "image/png";
	if (n >= 3 && memcmp(d, "\xff\xd8\xff", 3) == 0)
		return "image/jpeg";
	if (n >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0))
		return "image/gif";
	if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0)
		return "image/webp";
	return NULL;
}

static void avatar_key(const char *hex, uint8_t key[SEAL_KEY_BYTES])
{
	seal_digest2(key, avatar_context, "key", hex);
}

int avatar_seal(const char *hex, const uint8_t *data, size_t len,
		uint8_t **out, size_t *outlen)
{
	uint8_t key[SEAL_KEY_BYTES];
	char name[AVATAR_KEY_MAX];

	if (len > AVATAR_MAX_BYTES || !(*out = malloc(len + SEAL_OVERHEAD)))
		return -1;
	avatar_key(hex, key);
	avatar_redis_key(hex, name);
	seal_box(*out, data, len, name, key);
	seal_wipe(key, sizeof(key));
	*outlen = len + SEAL_OVERHEAD;
	return 0;
}

int avatar_open(const char *hex, const uint8_t *blob, size_t len,
		uint8_t **data, size_t *dlen, const char **type)
{
	uint8_t key[SEAL_KEY_BYTES];
	char name[AVATAR_KEY_MAX];
	int r = -1;

	if (len < SEAL_OVERHEAD || len - SEAL_OVERHEAD > AVATAR_MAX_BYTES ||
	    !(*data = malloc(len - SEAL_OVERHEAD + 1)))
		return -1;
	avatar_key(hex, key);
	avatar_redis_key(hex, name);
	*dlen = len - SEAL_OVERHEAD;
	if (seal_open(*data, blob, len, name, key) == 0 &&
	    (*type = avatar_sniff(*data, *dlen)))
		r = 0;
	seal_wipe(key, sizeof(key));
	if (r == -1) {
		free(*data);
		*data = NULL;
	}
	return r;
}
