/*
 * sasl.h: the SASL mechanisms that log in with an OAuth token instead of a
 * password, which libstrophe does not speak: X-OAUTH2 (Google's, also
 * ejabberd's) and OAUTHBEARER (RFC 7628); and PLAIN, the same message
 * as X-OAUTH2, for a password where the server offers no SCRAM. Only
 * builds and picks; client.c runs the exchange over libstrophe's raw
 * connection mode.
 */
#ifndef TALKPROXY_SASL_H
#define TALKPROXY_SASL_H

#include <stddef.h>

/* The token mechanisms, in the order of preference when the client lets
 * the server's offer decide. */
#define SASL_OAUTHBEARER "OAUTHBEARER"
#define SASL_XOAUTH2 "X-OAUTH2"
/* For a password where the server offers no SCRAM (scram.h). */
#define SASL_PLAIN "PLAIN"

/* 1 when name is a token mechanism this module builds. */
int sasl_is_token_mech(const char *name);
/* 1 when mech is among offered[0..n). */
int sasl_offered(const char *mech, const char *const *offered, size_t n);

/*
 * The mechanism to use: want (when not NULL) if the server offers it,
 * else the preferred token mechanism among offered[0..n). NULL when none.
 */
const char *sasl_pick(const char *want, const char *const *offered,
		      size_t n);

/*
 * The initial response for mech as base64 (malloc'd, caller wipes and
 * frees), or NULL: for a token mechanism who is the bare JID and secret
 * the token; for SASL_PLAIN who is the localpart and secret the password.
 * No authorization identity is sent: the server derives who logs in from
 * the credentials, and the daemon checks the JID it binds (some servers
 * honour any authzid).
 */
char *sasl_initial_response(const char *mech, const char *who,
			    const char *secret);

#endif
