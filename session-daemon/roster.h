/*
 * roster.h: one session's contacts and the live presence of each of their
 * resources, kept as the JSON the API answers with. Knows nothing of XMPP
 * stanzas: the client module feeds it plain values.
 */
#ifndef TALKPROXY_ROSTER_H
#define TALKPROXY_ROSTER_H

#include <jansson.h>
#include <stddef.h>

struct roster;

struct roster_presence {
	const char *show;   /* "available", "away", "xa", "dnd", "chat" */
	const char *status; /* may be NULL */
	const char *caps;   /* "node#ver" or NULL */
	const char *photo;  /* XEP-0153 avatar hash, "" for none, NULL: unsaid */
};

/* Subscription requests kept at once; more are refused (and logged). */
#define ROSTER_REQUESTS_MAX 256

/* Returns NULL on allocation failure. */
struct roster *roster_new(void);
void roster_free(struct roster *r);

/* Adds or replaces a contact (bare JID); keeps its live sessions. 0 or -1. */
int roster_set(struct roster *r, const char *jid, const char *name,
	       const char *subscription, const char *const *groups,
	       size_t ngroups);
void roster_remove(struct roster *r, const char *jid);

/*
 * Records presence of a contact's resource (p == NULL: it went offline).
 * Presence of JIDs not in the roster is ignored. Returns 0 or -1.
 */
int roster_presence(struct roster *r, const char *full_jid,
		    const struct roster_presence *p);
/* Forgets every resource's presence (our stream went down). */
void roster_clear_presence(struct roster *r);

/* The contact's name, or NULL when it has none or is not a contact.
 * Borrowed until the roster next changes. */
const char *roster_name(const struct roster *r, const char *bare);

/* The contact object (API form) of bare, borrowed, or NULL. */
json_t *roster_get(const struct roster *r, const char *bare);
/* "none", "to", "from", "both", or NULL when bare is not a contact. */
const char *roster_subscription(const struct roster *r, const char *bare);

/*
 * Incoming subscription requests waiting for the user's answer. add
 * returns 1 when jid is new, 0 when it was already waiting, -1 when the
 * list is full or memory ran out.
 */
int roster_request_add(struct roster *r, const char *jid, const char *status);
void roster_request_remove(struct roster *r, const char *jid);
/* The API's "requests" array: [{jid, status}]; new reference or NULL. */
json_t *roster_requests(const struct roster *r);

/* The API's "contacts" array; a new reference, or NULL. */
json_t *roster_contacts(const struct roster *r);

#endif
