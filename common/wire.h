/*
 * wire.h: everything the handler and the daemon must agree on: the protocol
 * version, the Redis channel and key names, identifier sizes and limits.
 * A change here that alters meaning bumps WIRE_VERSION; a peer speaking
 * another version is refused (see envelope_decode_request()).
 */
#ifndef TALKPROXY_WIRE_H
#define TALKPROXY_WIRE_H

#define WIRE_VERSION 2

/* Request ids and session ids: 16 random bytes as lower-case hex. */
#define WIRE_ID_BYTES 16
#define WIRE_ID_HEX (WIRE_ID_BYTES * 2)
/* Session tokens: 32 random bytes, base64url without padding, shown once. */
#define WIRE_TOKEN_BYTES 32
#define WIRE_TOKEN_B64 43
/* Redis only ever sees BLAKE2b-256 of a token, as hex. */
#define WIRE_TOKEN_HASH_BYTES 32
#define WIRE_TOKEN_HASH_HEX (WIRE_TOKEN_HASH_BYTES * 2)

_Static_assert(WIRE_TOKEN_BYTES * 8 >= 256, "tokens carry 256 bits");
_Static_assert(WIRE_TOKEN_B64 == (WIRE_TOKEN_BYTES * 4 + 2) / 3,
               "token text length matches its bytes");

/* Channels: every daemon listens on the login channel and on its own. */
#define WIRE_CHAN_LOGIN "tp:login"
#define WIRE_CHAN_DAEMON_PREFIX "tp:daemon:"

/* Keys. Values named "sealed" are only readable by a daemon. */
#define WIRE_KEY_TOKEN_PREFIX "tp:token:" /* + token hash -> session id */
#define WIRE_KEY_OWNER_PREFIX "tp:owner:" /* + session id -> daemon id */
#define WIRE_KEY_REPLY_PREFIX "tp:reply:" /* + request id -> list of 1 reply */
#define WIRE_KEY_CLAIM_PREFIX "tp:claim:" /* + login request id -> daemon id */
#define WIRE_KEY_IDEM_PREFIX "tp:idem:"   /* + session id ":" client id */
#define WIRE_KEY_ALIVE_PREFIX "tp:alive:" /* + daemon id, lease with TTL */
#define WIRE_KEY_SESSION_PREFIX "tp:session:" /* + session id -> sealed record */
#define WIRE_KEY_QUEUE_PREFIX "tp:queue:" /* + session id -> stream of sealed items */
#define WIRE_KEY_QDROP_PREFIX "tp:qdrop:" /* + session id -> items dropped */
#define WIRE_KEY_SEEN_PREFIX "tp:seen:"   /* + session id ":" message digest */
#define WIRE_KEY_CRASHREPORTS "tp:crashreports" /* list, newest first */
#define WIRE_CRASHREPORTS_MAX 1000
#define WIRE_CRASHREPORT_BYTES 16384
/* A presence status: the handler refuses longer, the daemon keeps no more. */
#define WIRE_STATUS_BYTES 1024
#define WIRE_KEY_PUSH_PREFIX "tp:push:"   /* + digest of a push URL -> session id */
#define WIRE_KEY_CRED_PREFIX "tp:cred:" /* + keyed digest of JID and secret -> session id */
#define WIRE_KEY_RATE_PREFIX "tp:rate:" /* + "addr:"|"jid:" + digest -> count */
#define WIRE_KEY_AVATAR_PREFIX "tp:avatar:" /* + digest of an image hash -> sealed image */
/* Avatars are kept this long after their last fetch. */
#define WIRE_AVATAR_TTL_S (30 * 24 * 3600)

/* How long an unclaimed reply list lives when its handler has gone. */
#define WIRE_REPLY_TTL_S 60
/* How long a client's message id is remembered for idempotency. */
#define WIRE_IDEM_TTL_S (24 * 3600)

/* How long an incoming message id is remembered against duplicates. */
#define WIRE_SEEN_TTL_S (7 * 24 * 3600)

/* Longest names and ids that cross the bus. */
#define WIRE_CALL_MAX 31
#define WIRE_DAEMON_ID_MAX 64
#define WIRE_PEER_MAX 63

#endif
