/* sasl.c: token SASL mechanisms, and PLAIN (sasl.h). */
#include "sasl.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seal.h"

int sasl_is_token_mech(const char *name)
{
	return strcmp(name, SASL_OAUTHBEARER) == 0 ||
	       strcmp(name, SASL_XOAUTH2) == 0;
}

int sasl_offered(const char *mech, const char *const *offered, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (offered[i] && strcmp(offered[i], mech) == 0)
			return 1;
	return 0;
}

const char *sasl_pick(const char *want, const char *const *offered,
		      size_t n)
{
	static const char *const prefs[] = {SASL_OAUTHBEARER, SASL_XOAUTH2};

	if (want)
		return sasl_is_token_mech(want) && sasl_offered(want, offered, n)
			       ? want
			       : NULL;
	for (size_t i = 0; i < sizeof(prefs) / sizeof(prefs[0]); i++)
		if (sasl_offered(prefs[i], offered, n))
			return prefs[i];
	return NULL;
}

char *sasl_initial_response(const char *mech, const char *who,
			    const char *secret)
{
	size_t len = strlen(who) + strlen(secret) + 32;
	char *msg = malloc(len), *b64 = NULL;
	int n = -1;

	if (!msg)
		return NULL;
	/* PLAIN (RFC 4616): authzid NUL authcid NUL password; X-OAUTH2 the
	 * same with the bare JID and the token. OAUTHBEARER (RFC 7628 3.1):
	 * gs2 header, then kvpairs. */
	if (strcmp(mech, SASL_XOAUTH2) == 0 || strcmp(mech, SASL_PLAIN) == 0) {
		n = snprintf(msg, len, "%c%s%c%s", 0, who, 0, secret);
	} else if (strcmp(mech, SASL_OAUTHBEARER) == 0) {
		n = snprintf(msg, len, "n,,\001auth=Bearer %s\001\001", secret);
	}
	if (n > 0 && (size_t)n < len)
		b64 = seal_base64(msg, (size_t)n, SEAL_B64);
	seal_wipe(msg, len);
	free(msg);
	return b64;
}
