/*
 * avatar.h: the avatar cache both programs share. The daemon stores the
 * images contacts announce by SHA-1 (XEP-0153); the handler serves them at
 * GET {base}/images/<sha1>. Each image is sealed under a key derived from
 * its own hash, in a Redis key named by another digest of it: whoever
 * knows the hash (a contact of its owner) can read it, a Redis dump alone
 * shows neither the images nor which hashes they belong to.
 */
#ifndef TALKPROXY_AVATAR_H
#define TALKPROXY_AVATAR_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define AVATAR_HASH_BYTES 20 /* SHA-1 */
#define AVATAR_HASH_HEX 40
/* Largest image kept or served; the daemon's avatar_max_bytes is below. */
#define AVATAR_MAX_BYTES (1024 * 1024)
#define AVATAR_KEY_MAX (sizeof(WIRE_KEY_AVATAR_PREFIX) + 64)

/* The 1x1 transparent PNG answered for unknown hashes. */
extern const uint8_t avatar_placeholder[];
extern const size_t avatar_placeholder_len;

/*
 * Reads exactly 40 hex digits (either case) into the lower-case hex form.
 * Returns 0, or -1 for anything else (path tricks included).
 */
int avatar_hash_parse(const char *text, size_t len,
		      char hex[AVATAR_HASH_HEX + 1]);

/* The Redis key holding the image with this (lower-case hex) hash. */
void avatar_redis_key(const char *hex, char out[AVATAR_KEY_MAX]);

/*
 * The image type from the data's first bytes: "image/png", "image/jpeg",
 * "image/gif" or "image/webp"; NULL for anything else (SVG can carry
 * script, so only these raster formats are served).
 */
const char *avatar_sniff(const uint8_t *data, size_t len);

/* Seals data (at most AVATAR_MAX_BYTES) for hex's Redis key: malloc'd blob
 * in *out, or -1 when too large or out of memory. */
int avatar_seal(const char *hex, const uint8_t *data, size_t len,
		uint8_t **out, size_t *outlen);

/*
 * Opens a blob avatar_seal() made for hex: *data (malloc'd) and its type.
 * Returns 0, or -1 when it does not open or is not an image we serve.
 */
int avatar_open(const char *hex, const uint8_t *blob, size_t len,
		uint8_t **data, size_t *dlen, const char **type);

#endif
