/* roster.c: contacts and their resources' presence (roster.h). */
#include "roster.h"

#include <stdlib.h>
#include <string.h>

#include "jid.h"

struct roster {
	json_t *contacts; /* bare JID -> contact object in API form */
	json_t *requests; /* bare JID -> {jid, status}: asked to subscribe */
};

struct roster *roster_new(void)
{
	struct roster *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->contacts = json_object();
	r->requests = json_object();
	if (!r->contacts || !r->requests) {
		roster_free(r);
		return NULL;
	}
	return r;
}

void roster_free(struct roster *r)
{
	if (!r)
		return;
	json_decref(r->contacts);
	json_decref(r->requests);
	free(r);
}

int roster_set(struct roster *r, const char *jid, const char *name,
	       const char *subscription, const char *const *groups,
	       size_t ngroups)
{
	json_t *old = json_object_get(r->contacts, jid);
	json_t *sessions = old ? json_object_get(old, "sessions") : NULL;
	json_t *photo = old ? json_object_get(old, "photo") : NULL;
	json_t *g = json_array();

	for (size_t i = 0; g && i < ngroups; i++)
		json_array_append_new(g, json_string(groups[i]));
	json_t *c = json_pack("{s:s, s:s?, s:s, s:o, s:O?, s:o}", "jid", jid,
			      "name", name, "subscription",
			      subscription ? subscription : "none", "groups",
			      g ? g : json_array(), "photo", photo, "sessions",
			      sessions ? json_incref(sessions) : json_object());
	if (!c)
		return -1;
	return json_object_set_new(r->contacts, jid, c);
}

void roster_remove(struct roster *r, const char *jid)
{
	json_object_del(r->contacts, jid);
}

int roster_presence(struct roster *r, const char *full_jid,
		    const struct roster_presence *p)
{
	char bare[JID_MAX + 1];

	if (jid_bare(full_jid, bare, sizeof(bare)) == -1)
		return -1;
	json_t *contact = json_object_get(r->contacts, bare);
	json_t *sessions = json_object_get(contact, "sessions");
	if (!sessions)
		return 0;
	/* XEP-0153: an empty hash says there is no avatar. */
	if (p && p->photo)
		json_object_set_new(contact, "photo", *p->photo
				    ? json_string(p->photo) : json_null());
	if (!p) {
		json_object_del(sessions, full_jid); /* absent is fine */
		return 0;
	}
	json_t *s = json_pack("{s:s, s:s?, s:s?}", "show", p->show, "status",
			      p->status, "caps", p->caps);
	if (!s)
		return -1;
	/* Null members say "not set" rather than disappearing. */
	if (!p->status)
		json_object_set_new(s, "status", json_null());
	if (!p->caps)
		json_object_set_new(s, "caps", json_null());
	return json_object_set_new(sessions, full_jid, s);
}

void roster_clear_presence(struct roster *r)
{
	const char *k;
	json_t *c;

	json_object_foreach(r->contacts, k, c)
		json_object_clear(json_object_get(c, "sessions"));
}

/* The values of o, in a new array (NULL: out of memory). */
static json_t *roster_values(json_t *o)
{
	json_t *a = json_array();
	const char *k;
	json_t *v;

	if (!a)
		return NULL;
	json_object_foreach(o, k, v) json_array_append(a, v);
	return a;
}

json_t *roster_contacts(const struct roster *r)
{
	return roster_values(r->contacts);
}

const char *roster_name(const struct roster *r, const char *bare)
{
	const char *name = json_string_value(
		json_object_get(json_object_get(r->contacts, bare), "name"));

	return name && *name ? name : NULL;
}

json_t *roster_get(const struct roster *r, const char *bare)
{
	return json_object_get(r->contacts, bare);
}

const char *roster_subscription(const struct roster *r, const char *bare)
{
	return json_string_value(json_object_get(roster_get(r, bare),
						 "subscription"));
}

int roster_request_add(struct roster *r, const char *jid, const char *status)
{
	if (json_object_get(r->requests, jid))
		return 0;
	if (json_object_size(r->requests) >= ROSTER_REQUESTS_MAX)
		return -1;
	json_t *q = json_pack("{s:s, s:s?}", "jid", jid, "status", status);
	if (!q || json_object_set_new(r->requests, jid, q) == -1)
		return -1;
	return 1;
}

void roster_request_remove(struct roster *r, const char *jid)
{
	json_object_del(r->requests, jid);
}

json_t *roster_requests(const struct roster *r)
{
	return roster_values(r->requests);
}
