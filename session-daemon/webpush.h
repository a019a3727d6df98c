/*
 * webpush.h: the cryptography of Web Push: RFC 8291 message encryption
 * (one RFC 8188 "aes128gcm" record) and RFC 8292 VAPID authorization.
 * Of the push path, only this module touches OpenSSL's libcrypto (scram.c
 * is the other user, for logins). Sending the request, its
 * headers other than Authorization, and retries belong to the push module.
 */
#ifndef TALKPROXY_WEBPUSH_H
#define TALKPROXY_WEBPUSH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* An uncompressed P-256 point (0x04 || X || Y): a client's p256dh. */
#define WEBPUSH_KEY_BYTES 65
/* A client's auth secret. */
#define WEBPUSH_AUTH_BYTES 16
/* Salt (16) || record size (4) || key id length (1) || sender key (65). */
#define WEBPUSH_HEADER_BYTES (16 + 4 + 1 + WEBPUSH_KEY_BYTES)
/* What a body adds to its message: header, delimiter (1), GCM tag (16). */
#define WEBPUSH_OVERHEAD (WEBPUSH_HEADER_BYTES + 1 + 16)
/* Push services need accept only 4096 bytes of body (RFC 8291 §4). */
#define WEBPUSH_MAX_PLAIN (4096 - WEBPUSH_OVERHEAD)

/*
 * Encrypts plain (len bytes, at most WEBPUSH_MAX_PLAIN; plain may be NULL
 * when len is 0) for the subscription keys ua_public and auth, with a fresh
 * salt and sender key each call. On success *out is a malloc'd body of
 * len + WEBPUSH_OVERHEAD bytes, freed by the caller, and 0 is returned.
 * Returns -1 (logged, *out untouched) when the plaintext is too long,
 * ua_public is not a point on P-256, or libcrypto fails.
 */
int webpush_encrypt(const uint8_t *plain, size_t len,
		    const uint8_t ua_public[WEBPUSH_KEY_BYTES],
		    const uint8_t auth[WEBPUSH_AUTH_BYTES], uint8_t **out,
		    size_t *outlen);

/*
 * Decodes a subscription key sent by a client (base64url, '=' padding
 * optional) into exactly want bytes of out. Returns 0, or -1 without
 * logging (this is client input) when the text has a character outside
 * base64url, misplaced padding, or does not decode to want bytes.
 */
int webpush_decode_key(const char *b64url, uint8_t *out, size_t want);

/* 1 when pub is an uncompressed point on P-256 (a usable p256dh). */
int webpush_key_valid(const uint8_t pub[WEBPUSH_KEY_BYTES]);

/*
 * The VAPID signing key: a P-256 private key and its public half. Once
 * loaded it is only read, so threads may share one.
 */
struct webpush_vapid;

/*
 * Loads a P-256 private key (PEM, PKCS#8 or SEC1, unencrypted) from
 * pem_path. Returns NULL (logged) when the file is missing, is not a
 * regular file, can be read or written by group or others, or holds
 * anything but an unencrypted P-256 key. Free with webpush_vapid_free().
 */
struct webpush_vapid *webpush_vapid_load(const char *pem_path);

/*
 * Creates pem_path (mode 0600, never over an existing file or link) holding
 * a fresh P-256 private key in PKCS#8 PEM. Returns 0, or -1 (logged; no
 * partial file is left behind).
 */
int webpush_vapid_generate(const char *pem_path);

/* Accepts NULL. */
void webpush_vapid_free(struct webpush_vapid *v);

/*
 * The public key as unpadded base64url of the uncompressed point: what a
 * client passes as applicationServerKey. Borrowed: lives as long as v.
 */
const char *webpush_vapid_public(const struct webpush_vapid *v);

/*
 * Builds the Authorization header value "vapid t=<JWT>, k=<public key>"
 * for a push to endpoint_url. The JWT (ES256) carries aud = the origin of
 * endpoint_url, exp = now + 12 hours, sub = subject, which must start with
 * "mailto:" or "https:". Returns a malloc'd string freed by the caller, or
 * NULL (logged) when the URL has no scheme://host, the subject is not a
 * contact URI, or signing fails.
 */
char *webpush_vapid_header(const struct webpush_vapid *v,
			   const char *endpoint_url, const char *subject,
			   time_t now);

#endif
