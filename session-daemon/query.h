/*
 * query.h: the iqs the daemon sends on the user's behalf and reads the
 * answers of: a contact's vCard photo (XEP-0054), the server's STUN/TURN
 * services (XEP-0215, or google:jingleinfo), and roster changes (RFC 6121
 * 2.3-2.5). Each request goes out under an id; its answer comes back as
 * the client's query() event with a struct query_result. Loop thread only.
 */
#ifndef TALKPROXY_QUERY_H
#define TALKPROXY_QUERY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "avatar.h"
#include "wire.h"

struct client;
struct _xmpp_stanza_t;

enum query_kind { QUERY_VCARD, QUERY_SERVICES, QUERY_JINGLEINFO, QUERY_ROSTER };

struct query_result {
	enum query_kind kind;
	/*
	 * NULL on success; else the XMPP error condition ("item-not-found",
	 * ...), or "no-photo" (a vCard without a usable photo), "too-large"
	 * (over AVATAR_MAX_BYTES) or "unsupported-type" (not PNG, JPEG, GIF
	 * or WebP).
	 */
	const char *error;
	/* QUERY_VCARD */
	const uint8_t *photo;
	size_t photo_len;
	const char *photo_type;
	char photo_hash[AVATAR_HASH_HEX + 1]; /* SHA-1, lower-case hex */
	/* QUERY_SERVICES, QUERY_JINGLEINFO: [{host, port, transport, type,
	 * username?, password?, expires?}], borrowed */
	json_t *servers;
};

/* Each sends its iq and fills id; 0, or -1 when the stream is down or
 * memory ran out. */
int query_vcard(struct client *c, const char *bare_jid,
		char id[WIRE_ID_HEX + 1]);
int query_services(struct client *c, char id[WIRE_ID_HEX + 1]);
int query_jingleinfo(struct client *c, char id[WIRE_ID_HEX + 1]);
/* remove: subscription='remove'; else sets name (NULL: none) and groups. */
int query_roster_set(struct client *c, const char *jid, const char *name,
		     const char *const *groups, size_t ngroups, int remove,
		     char id[WIRE_ID_HEX + 1]);

/* The parsers, for tests: the servers in a <services/> (XEP-0215) or a
 * google:jingleinfo <query/> element; a new array, or NULL. */
json_t *query_parse_services(struct _xmpp_stanza_t *services);
json_t *query_parse_jingleinfo(struct _xmpp_stanza_t *query);

#endif
