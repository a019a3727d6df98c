/*
 * envelope.h: the JSON messages that cross the bus. A request carries the
 * call name, a request id (its reply list), a deadline, the caller's token
 * hash and the validated body; a reply carries an HTTP status and a body.
 * Both carry WIRE_VERSION and a peer with another version is refused.
 */
#ifndef TALKPROXY_ENVELOPE_H
#define TALKPROXY_ENVELOPE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "seal.h"
#include "wire.h"

struct envelope {
	char call[WIRE_CALL_MAX + 1];
	char rid[WIRE_ID_HEX + 1];
	char th[WIRE_TOKEN_HASH_HEX + 1]; /* "" when there is no session yet */
	char peer[WIRE_PEER_MAX + 1];     /* client address, for logs and limits */
	int64_t deadline_ms;              /* wall clock; past it, drop the work */
	json_t *body;                     /* owned; a JSON object */
	/* The reply key, fresh per request. The request crosses pub/sub only,
	 * which Redis never writes to disk; the reply waits in a list, which
	 * it does (AOF), so the reply is sealed with this key: a token or a
	 * user key in a reply never reaches Redis's files in clear. */
	uint8_t rk[SEAL_KEY_BYTES];
};

void envelope_init(struct envelope *e);
/* Releases the body and wipes the reply key; the struct may be reused
 * after envelope_init(). */
void envelope_clear(struct envelope *e);

/* Returns a malloc'd NUL-terminated string the caller frees, or NULL. */
char *envelope_encode_request(const struct envelope *e);

/*
 * Fills e from buf. Returns 0, or -1 with a reason in err (size errlen)
 * when buf is not a request of WIRE_VERSION with every field well-formed.
 */
int envelope_decode_request(const char *buf, size_t len, struct envelope *e,
			    char *err, size_t errlen);

/*
 * The reply to request rid, sealed with its reply key rk (body borrowed).
 * Returns malloc'd bytes (*len of them) the caller frees, or NULL.
 */
char *envelope_encode_reply(const char *rid, const uint8_t rk[SEAL_KEY_BYTES],
			    int status, const json_t *body, size_t *len);

/*
 * Opens and decodes the reply to request rid. Returns 0 and the status and
 * a new reference to the body (the caller decrefs), or -1 when buf is not
 * a reply of WIRE_VERSION sealed with rk for rid.
 */
int envelope_decode_reply(const char *buf, size_t len, const char *rid,
			  const uint8_t rk[SEAL_KEY_BYTES], int *status,
			  json_t **body);

/*
 * The API's error object: {"error": {"code", "message", "field"?}}.
 * field may be NULL. Returns a new reference, or NULL on allocation failure.
 */
json_t *envelope_error(const char *code, const char *message,
		       const char *field);

/* Milliseconds since the epoch, for deadlines that cross processes. */
int64_t envelope_now_ms(void);

#endif
