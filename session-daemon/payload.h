/*
 * payload.h: what the phone receives about an incoming message. The
 * payload is a small JSON object sealed with the user's key (seal_box,
 * XChaCha20-Poly1305, no associated data) and sent as base64; README
 * "Payloads" is the contract phone developers implement against.
 */
#ifndef TALKPROXY_PAYLOAD_H
#define TALKPROXY_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "seal.h"

/* Largest sealed push payload in base64: "msg:" + it fits MPNS's 3 KB, and
 * Web Push's 4096-byte record with room for the wrapper. */
#define PAYLOAD_PUSH_MAX 2800

struct payload_msg {
	const char *kind;     /* "message" (NULL), "chatstate", "receipt",
			       * "subscribe" */
	const char *from;     /* sender's bare JID */
	const char *resource; /* sender's resource, or NULL */
	const char *name;     /* sender's roster name, or NULL */
	const char *type;     /* XMPP message type */
	const char *id;       /* XMPP message id, or NULL */
	const char *body;     /* or NULL: a bare chat state */
	const char *state;    /* XEP-0085 chat state, or NULL */
	const char *stamp;    /* when it was sent (XEP-0203), or NULL = now */
	const char *receipt;  /* "receipt": id of the message delivered */
	const char *status;   /* "subscribe": the request's text, or NULL */
	int otr;              /* the sender asked that it not be stored */
};

struct client_message;

/*
 * The payload of an incoming message, chat state or receipt: kind from
 * what m carries, from = bare (the sender's bare JID), name its roster
 * name or NULL, otr when the conversation is off the record. Every string
 * is borrowed from m and the arguments.
 */
void payload_from_message(struct payload_msg *pm,
			  const struct client_message *m, const char *bare,
			  const char *name, int otr);

/* Length of s cut to at most max bytes, never inside a UTF-8 sequence. */
size_t payload_utf8_cut(const char *s, size_t max);

/*
 * The payload as compact JSON text (malloc'd, caller frees), or NULL when
 * memory ran out. body_max, when not 0, cuts the body to at most that many
 * bytes on a UTF-8 boundary and marks the payload "truncated".
 */
char *payload_json(const struct payload_msg *m, size_t body_max);

/* Seals text with key: *out gets malloc'd bytes (*outlen). 0 or -1. */
int payload_seal(const char *text, const uint8_t key[SEAL_KEY_BYTES],
		 uint8_t **out, size_t *outlen);

/*
 * The payload for a push: sealed, base64, at most PAYLOAD_PUSH_MAX chars,
 * cutting the body as needed (the full message waits in the queue).
 * item (len bytes, or NULL): m already sealed whole with key (the queue
 * item), taken as it is when it fits. Returns a malloc'd string, or NULL.
 */
char *payload_push(const struct payload_msg *m,
		   const uint8_t key[SEAL_KEY_BYTES], const uint8_t *item,
		   size_t len);

#endif
