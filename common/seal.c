/* seal.c: the project's only user of libsodium (see seal.h). */
#include "seal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyfile.h"
#include "log.h"

_Static_assert(SEAL_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
	       "seal keys are XChaCha20-Poly1305 keys");
_Static_assert(SEAL_SIGN_BYTES == crypto_sign_BYTES &&
		       SEAL_SIGN_PUBLIC_BYTES == crypto_sign_PUBLICKEYBYTES &&
		       SEAL_KEY_BYTES == crypto_sign_SEEDBYTES,
	       "signing keys come from a key file's seed");
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

static int seal_variant(enum seal_b64 v)
{
	return v == SEAL_B64URL ? sodium_base64_VARIANT_URLSAFE_NO_PADDING
				: sodium_base64_VARIANT_ORIGINAL;
}

char *seal_base64(const void *in, size_t len, enum seal_b64 variant)
{
	int v = seal_variant(variant);
	size_t n = sodium_base64_encoded_len(len, v);
	char *out = malloc(n);

	if (out)
		sodium_bin2base64(out, n, in, len, v);
	return out;
}

long seal_unbase64(uint8_t *out, size_t outlen, const char *text,
		   enum seal_b64 variant)
{
	size_t n = 0, tlen = strlen(text);
	const char *end = NULL;

	if (sodium_base642bin(out, outlen, text, tlen, NULL, &n, &end,
			      seal_variant(variant)) != 0 ||
	    end != text + tlen)
		return -1;
	return (long)n;
}

int seal_keyfile_create(const char *path, const char *what)
{
	uint8_t key[SEAL_KEY_BYTES];
	char line[sodium_base64_ENCODED_LEN(SEAL_KEY_BYTES,
					    sodium_base64_VARIANT_ORIGINAL) + 1];
	int fd = keyfile_create(path, what), ok;

	if (fd == -1)
		return -1;
	randombytes_buf(key, sizeof(key));
	sodium_bin2base64(line, sizeof(line), key, sizeof(key),
			  sodium_base64_VARIANT_ORIGINAL);
	strcat(line, "\n");
	ok = write(fd, line, strlen(line)) == (ssize_t)strlen(line) &&
	     fsync(fd) == 0;
	if (close(fd) != 0)
		ok = 0;
	sodium_memzero(key, sizeof(key));
	sodium_memzero(line, sizeof(line));
	if (!ok) {
		log_error("cannot write %s %s: %m", what, path);
		unlink(path);
		return -1;
	}
	return 0;
}

int seal_keyfile_load(const char *path, const char *what,
		      uint8_t key[SEAL_KEY_BYTES])
{
	char text[128];
	int fd = keyfile_open_private(path, what);
	ssize_t n;
	long got = -1;

	if (fd == -1)
		return -1;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n > 0) {
		text[n] = '\0';
		text[strcspn(text, "\r\n")] = '\0';
		got = seal_unbase64(key, SEAL_KEY_BYTES, text, SEAL_B64);
	}
	sodium_memzero(text, sizeof(text));
	if (got != SEAL_KEY_BYTES) {
		log_error("%s %s does not hold one base64 line of %d bytes",
			  what, path, SEAL_KEY_BYTES);
		sodium_memzero(key, SEAL_KEY_BYTES);
		return -1;
	}
	return 0;
}

void seal_sign_public(uint8_t pk[SEAL_SIGN_PUBLIC_BYTES],
		      const uint8_t seed[SEAL_KEY_BYTES])
{
	uint8_t sk[crypto_sign_SECRETKEYBYTES];

	crypto_sign_seed_keypair(pk, sk, seed);
	sodium_memzero(sk, sizeof(sk));
}

void seal_sign_secret(uint8_t sk[SEAL_SIGN_SECRET_BYTES],
		      const uint8_t seed[SEAL_KEY_BYTES])
{
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];

	crypto_sign_seed_keypair(pk, sk, seed);
}

void seal_sign(uint8_t sig[SEAL_SIGN_BYTES], const void *msg, size_t len,
	       const uint8_t sk[SEAL_SIGN_SECRET_BYTES])
{
	crypto_sign_detached(sig, NULL, msg, len, sk);
}
