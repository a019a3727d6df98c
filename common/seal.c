/* seal.c: the project's only user of libsodium (see seal.h). */
#include "seal.h"

#include <sodium.h>
#include <string.h>

_Static_assert(SEAL_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
	       "seal keys are XChaCha20-Poly1305 keys");
_Static_assert(SEAL_OVERHEAD == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES +
				       crypto_aead_xchacha20poly1305_ietf_ABYTES,
	       "overhead is nonce plus tag");

#define SEAL_NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES

int seal_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

void seal_random_id(char out[WIRE_ID_HEX + 1])
{
	unsigned char raw[WIRE_ID_BYTES];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(out, WIRE_ID_HEX + 1, raw, sizeof(raw));
}

void seal_new_token(char out[WIRE_TOKEN_B64 + 1])
{
	unsigned char raw[WIRE_TOKEN_BYTES];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(out, WIRE_TOKEN_B64 + 1, raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
}

int seal_token_wellformed(const char *s, size_t len)
{
	unsigned char raw[WIRE_TOKEN_BYTES];
	size_t n = 0;
	const char *end = NULL;

	if (len != WIRE_TOKEN_B64)
		return 0;
	if (sodium_base642bin(raw, sizeof(raw), s, len, NULL, &n, &end,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return 0;
	sodium_memzero(raw, sizeof(raw));
	return n == WIRE_TOKEN_BYTES && end == s + len;
}

void seal_token_hash(const char *token, size_t len,
		     char out[WIRE_TOKEN_HASH_HEX + 1])
{
	unsigned char h[WIRE_TOKEN_HASH_BYTES];

	crypto_generichash(h, sizeof(h), (const unsigned char *)token, len,
			   NULL, 0);
	sodium_bin2hex(out, WIRE_TOKEN_HASH_HEX + 1, h, sizeof(h));
}

void seal_box(uint8_t *out, const uint8_t *msg, size_t len, const char *ad,
	      const uint8_t key[SEAL_KEY_BYTES])
{
	randombytes_buf(out, SEAL_NONCE);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
		out + SEAL_NONCE, NULL, msg, len, (const unsigned char *)ad,
		strlen(ad), NULL, out, key);
}

int seal_open(uint8_t *out, const uint8_t *blob, size_t blob_len,
	      const char *ad, const uint8_t key[SEAL_KEY_BYTES])
{
	if (blob_len < SEAL_OVERHEAD)
		return -1;
	return crypto_aead_xchacha20poly1305_ietf_decrypt(
		       out, NULL, NULL, blob + SEAL_NONCE,
		       blob_len - SEAL_NONCE, (const unsigned char *)ad,
		       strlen(ad), blob, key) == 0
		       ? 0
		       : -1;
}

void seal_digest2(uint8_t out[32], const uint8_t key[SEAL_KEY_BYTES],
		  const char *a, const char *b)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, key, SEAL_KEY_BYTES, 32);
	crypto_generichash_update(&st, (const unsigned char *)a, strlen(a) + 1);
	crypto_generichash_update(&st, (const unsigned char *)b, strlen(b));
	crypto_generichash_final(&st, out, 32);
	sodium_memzero(&st, sizeof(st));
}

void seal_random(void *buf, size_t len)
{
	randombytes_buf(buf, len);
}

void seal_wipe(void *p, size_t len)
{
	sodium_memzero(p, len);
}

int seal_equal(const void *a, const void *b, size_t len)
{
	return sodium_memcmp(a, b, len) == 0;
}
