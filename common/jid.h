/*
 * jid.h: JID syntax checks (RFC 7622) for untrusted input, and splitting a
 * JID into its parts. No stringprep tables: this checks the byte limits of
 * each part, UTF-8 validity, and the characters RFC 7622 forbids.
 */
#ifndef TALKPROXY_JID_H
#define TALKPROXY_JID_H

#include <stddef.h>

#define JID_PART_MAX 1023 /* bytes, each of local, domain, resource */
#define JID_MAX (3 * JID_PART_MAX + 2)

enum jid_kind {
	JID_ANY,  /* bare or full */
	JID_BARE, /* no resource allowed */
	JID_FULL  /* resource required */
};

/*
 * Returns NULL when s (length len, not necessarily NUL-terminated) is a
 * valid JID of the given kind, or a short static reason such as
 * "localpart too long" otherwise. A JID for a user account (login) must also
 * have a localpart: see jid_check_account().
 */
const char *jid_check(const char *s, size_t len, enum jid_kind kind);
/* As jid_check(kind = JID_ANY or JID_BARE) and also requires a localpart. */
const char *jid_check_account(const char *s, size_t len, enum jid_kind kind);

/*
 * Copies the bare JID (local@domain or domain) of s into out (size outlen,
 * NUL-terminated). Returns 0, or -1 when it does not fit. s must already
 * have passed jid_check().
 */
int jid_bare(const char *s, char *out, size_t outlen);
/* Returns a pointer to the resource inside s, or NULL when s has none. */
const char *jid_resource_ptr(const char *s);

#endif
