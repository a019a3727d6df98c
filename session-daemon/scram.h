/*
 * scram.h: the client side of SASL SCRAM (RFC 5802, RFC 7677) with SHA-1,
 * SHA-256 and SHA-512, computed with OpenSSL's libcrypto: libstrophe's own
 * SHA-1 made the 4096-round PBKDF2 the largest cost of a login. Only builds
 * and checks the messages; client.c carries them in <auth>, <challenge>,
 * <response> and <success>, each as the base64 text of the element.
 *
 * No channel binding: the -PLUS mechanisms are never picked and the gs2
 * header is "n,," (no authorization identity). No SASLprep either: the user
 * name and password are used as given, as libstrophe does, so a password
 * outside ASCII works only when the server stored it in the same form.
 */
#ifndef TALKPROXY_SCRAM_H
#define TALKPROXY_SCRAM_H

#include <stddef.h>

#define SCRAM_SHA1 "SCRAM-SHA-1"
#define SCRAM_SHA256 "SCRAM-SHA-256"
#define SCRAM_SHA512 "SCRAM-SHA-512"

/* The longest user name, password or fixed nonce scram_new() takes, in
 * bytes (a JID's localpart is at most 1023, RFC 7622 3.3.1). */
#define SCRAM_MAX_TEXT 1023

/* One exchange: created per login, freed (and wiped) after it. */
struct scram;

/* 1 when mech (a SASL mechanism name, or NULL) is one this module runs. */
int scram_supports(const char *mech);

/*
 * The strongest SCRAM mechanism among offered[0..n) (SHA-512, then SHA-256,
 * then SHA-1), as one of the SCRAM_* constants, or NULL when none is.
 */
const char *scram_pick(const char *const *offered, size_t n);

/*
 * Starts an exchange for mech as user (the SASL authcid: the JID's
 * localpart) with password. nonce is NULL for a fresh client nonce (24
 * random bytes as base64), or a fixed one for tests: printable ASCII
 * without ','. All three strings are copied. Returns NULL when mech is not
 * supported, user is empty, a string is too long or a nonce malformed, or
 * memory runs out.
 */
struct scram *scram_new(const char *mech, const char *user,
			const char *password, const char *nonce);

/* The client-first message as base64 (malloc'd, caller frees), for
 * <auth>, or NULL when memory runs out. */
char *scram_client_first(struct scram *s);

/*
 * Given the server-first message (the base64 text of <challenge>), the
 * client-final message as base64 (malloc'd; it carries the proof, so the
 * caller wipes and frees it), for <response>. NULL when the challenge is
 * malformed or refused (see scram.c), libcrypto fails, or this was already
 * called: the exchange is then over. The password is wiped either way.
 */
char *scram_client_final(struct scram *s, const char *server_first_b64);

/*
 * Checks the server-final message (the base64 text of <success>, or of a
 * last <challenge>): 0 when it proves the server knows the password (v=
 * carries the expected ServerSignature), -1 otherwise, including an e=
 * error and a call before scram_client_final() succeeded.
 */
int scram_verify_server(struct scram *s, const char *server_final_b64);

/* Wipes every secret s holds and frees it. NULL is fine. */
void scram_free(struct scram *s);

#endif
