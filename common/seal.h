/*
 * seal.h: every use of libsodium: random identifiers and session tokens,
 * token hashing, and sealing records with a key (XChaCha20-Poly1305, with
 * the record's Redis key as associated data so a blob cannot be moved).
 * The handler uses only the hashing and random parts: it holds no key.
 */
#ifndef TALKPROXY_SEAL_H
#define TALKPROXY_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define SEAL_KEY_BYTES 32
/* Sealed blob = nonce (24) || ciphertext || tag (16). */
#define SEAL_OVERHEAD (24 + 16)

/* Returns 0, or -1 when libsodium cannot initialise. Call once at start. */
int seal_init(void);

/* Writes WIRE_ID_HEX random hex digits and a NUL into out. */
void seal_random_id(char out[WIRE_ID_HEX + 1]);

/* Writes a fresh 256-bit token as base64url (WIRE_TOKEN_B64 chars + NUL). */
void seal_new_token(char out[WIRE_TOKEN_B64 + 1]);

/*
 * Returns 1 when s (length len) has the shape of a token: exactly
 * WIRE_TOKEN_B64 base64url characters that decode to WIRE_TOKEN_BYTES.
 */
int seal_token_wellformed(const char *s, size_t len);

/* BLAKE2b-256 of the token text, as lower-case hex (64 chars + NUL). */
void seal_token_hash(const char *token, size_t len,
		     char out[WIRE_TOKEN_HASH_HEX + 1]);

/*
 * Seals msg with key, binding it to ad (the Redis key it is stored under).
 * out must hold len + SEAL_OVERHEAD bytes. Never fails.
 */
void seal_box(uint8_t *out, const uint8_t *msg, size_t len, const char *ad,
	      const uint8_t key[SEAL_KEY_BYTES]);

/*
 * Opens a blob made by seal_box() into out (blob_len - SEAL_OVERHEAD bytes).
 * Returns 0, or -1 when the blob is short, forged, or sealed for another ad.
 */
int seal_open(uint8_t *out, const uint8_t *blob, size_t blob_len,
	      const char *ad, const uint8_t key[SEAL_KEY_BYTES]);

/*
 * Keyed BLAKE2b-256 of a and b (with a separator, so ("ab","c") and
 * ("a","bc") differ), for comparing credentials without keeping them.
 */
void seal_digest2(uint8_t out[32], const uint8_t key[SEAL_KEY_BYTES],
		  const char *a, const char *b);

/*
 * Secret key files (the master key, the webhook signing seed): 32 random
 * bytes as one line of base64, in a file only its owner may read
 * (keyfile.h). Both return 0, or -1 after logging why; what names the key.
 */
int seal_keyfile_create(const char *path, const char *what);
int seal_keyfile_load(const char *path, const char *what,
		      uint8_t key[SEAL_KEY_BYTES]);

/* Ed25519 signatures from a 32-byte seed (a key file's secret). */
#define SEAL_SIGN_PUBLIC_BYTES 32
#define SEAL_SIGN_SECRET_BYTES 64
#define SEAL_SIGN_BYTES 64
void seal_sign_public(uint8_t pk[SEAL_SIGN_PUBLIC_BYTES],
		      const uint8_t seed[SEAL_KEY_BYTES]);
/* Expands seed once into the secret key seal_sign() takes: deriving it
 * per signature doubled a webhook push's signing cost. */
void seal_sign_secret(uint8_t sk[SEAL_SIGN_SECRET_BYTES],
		      const uint8_t seed[SEAL_KEY_BYTES]);
void seal_sign(uint8_t sig[SEAL_SIGN_BYTES], const void *msg, size_t len,
	       const uint8_t sk[SEAL_SIGN_SECRET_BYTES]);

enum seal_b64 { SEAL_B64, SEAL_B64URL /* unpadded */ };
/* base64 of len bytes as a malloc'd string (caller frees), or NULL. */
char *seal_base64(const void *in, size_t len, enum seal_b64 variant);
/* Decodes exactly; returns the byte count, or -1 when text is not base64
 * of the variant or does not fit outlen. */
long seal_unbase64(uint8_t *out, size_t outlen, const char *text,
		   enum seal_b64 variant);

/* Fills buf with len random bytes. */
void seal_random(void *buf, size_t len);

/* Zeroes secrets in a way the compiler may not drop. */
void seal_wipe(void *p, size_t len);

/* Constant-time equality of two byte strings of the same length. */
int seal_equal(const void *a, const void *b, size_t len);

#endif
