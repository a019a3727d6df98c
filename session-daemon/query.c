/* query.c: iqs the daemon asks on the user's behalf (query.h). */
#include "query.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>

#include "client.h"
#include "seal.h"

#define QUERY_NS_VCARD "vcard-temp"
#define QUERY_NS_EXTDISCO "urn:xmpp:extdisco:2"
#define QUERY_NS_JINGLEINFO "google:jingleinfo"
#define QUERY_NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

/* An iq of type with one empty child <name xmlns=ns/>, to `to` (or none). */
static xmpp_stanza_t *query_iq(xmpp_ctx_t *ctx, const char *type,
			       const char *to, const char *name,
			       const char *ns, xmpp_stanza_t **child)
{
	xmpp_stanza_t *iq = xmpp_iq_new(ctx, type, NULL);
	xmpp_stanza_t *ch = NULL;

	if (iq && (!to || xmpp_stanza_set_to(iq, to) == XMPP_EOK))
		ch = client_add_child(ctx, iq, name, ns, NULL);
	if (!ch) {
		xmpp_stanza_release(iq);
		return NULL;
	}
	if (child)
		*child = ch;
	return iq;
}

static int query_send(struct client *c, xmpp_stanza_t *iq,
		      char id[WIRE_ID_HEX + 1], client_iq_handler handler)
{
	int r;

	if (!iq)
		return -1;
	seal_random_id(id);
	r = client_send_query(c, iq, id, handler);
	xmpp_stanza_release(iq);
	return r;
}

/* The condition of an error reply, or NULL when st is a result. */
static const char *query_error(xmpp_stanza_t *st)
{
	const char *type = xmpp_stanza_get_type(st);
	xmpp_stanza_t *err;

	if (type && strcmp(type, "result") == 0)
		return NULL;
	err = xmpp_stanza_get_child_by_name(st, "error");
	for (xmpp_stanza_t *ch = err ? xmpp_stanza_get_children(err) : NULL; ch;
	     ch = xmpp_stanza_get_next(ch)) {
		const char *ns = xmpp_stanza_get_ns(ch);
		if (ns && strcmp(ns, QUERY_NS_STANZAS) == 0 &&
		    xmpp_stanza_get_name(ch))
			return xmpp_stanza_get_name(ch);
	}
	return "undefined-condition";
}

/* Only answers count: another stanza reusing the id is not one. */
static int query_is_reply(xmpp_stanza_t *st)
{
	const char *name = xmpp_stanza_get_name(st);
	const char *type = xmpp_stanza_get_type(st);

	return name && strcmp(name, "iq") == 0 && type &&
	       (strcmp(type, "result") == 0 || strcmp(type, "error") == 0);
}

/* ---- vCard photos ---- */

static void query_sha1_hex(const uint8_t *data, size_t len,
			   char out[AVATAR_HASH_HEX + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	out[0] = '\0';
	if (EVP_Digest(data, len, md, &n, EVP_sha1(), NULL) != 1 ||
	    n != AVATAR_HASH_BYTES)
		return;
	for (unsigned int i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Decodes BINVAL (base64 folded over lines) into r. Returns the error. */
static const char *query_photo_decode(const char *text, uint8_t **data,
				      struct query_result *r)
{
	size_t n = strlen(text), k = 0;
	char *packed = malloc(n + 1);
	long len;

	if (!packed)
		return "resource-constraint";
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)text[i]))
			packed[k++] = text[i];
	packed[k] = '\0';
	if (k / 4 * 3 > AVATAR_MAX_BYTES + 2) {
		free(packed);
		return "too-large";
	}
	*data = malloc(k / 4 * 3 + 3);
	len = *data ? seal_unbase64(*data, k / 4 * 3 + 3, packed, SEAL_B64)
		    : -1;
	free(packed);
	if (len <= 0 || (size_t)len > AVATAR_MAX_BYTES)
		return len <= 0 ? "no-photo" : "too-large";
	if (!(r->photo_type = avatar_sniff(*data, (size_t)len)))
		return "unsupported-type";
	r->photo = *data;
	r->photo_len = (size_t)len;
	query_sha1_hex(r->photo, r->photo_len, r->photo_hash);
	return NULL;
}

static int query_on_vcard(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	struct query_result r = {.kind = QUERY_VCARD};
	xmpp_stanza_t *v = xmpp_stanza_get_child_by_ns(st, QUERY_NS_VCARD);
	xmpp_stanza_t *photo = v ? xmpp_stanza_get_child_by_name(v, "PHOTO")
				 : NULL;
	xmpp_stanza_t *bin = photo ? xmpp_stanza_get_child_by_name(photo, "BINVAL")
				   : NULL;
	char *text;
	uint8_t *data = NULL;

	(void)conn;
	if (!query_is_reply(st))
		return 1;
	text = bin ? xmpp_stanza_get_text(bin) : NULL;
	if (!(r.error = query_error(st)))
		r.error = text ? query_photo_decode(text, &data, &r) : "no-photo";
	client_deliver_query(ud, xmpp_stanza_get_id(st), &r);
	if (text)
		xmpp_free(client_strophe_ctx(ud), text);
	free(data);
	return 0;
}

int query_vcard(struct client *c, const char *bare_jid,
		char id[WIRE_ID_HEX + 1])
{
	return query_send(c,
			  query_iq(client_strophe_ctx(c), "get", bare_jid,
				   "vCard", QUERY_NS_VCARD, NULL),
			  id, query_on_vcard);
}

/* ---- STUN/TURN services ---- */

/* Copies attribute attr of el into o under key, when present. */
static void query_copy_attr(json_t *o, const char *key, xmpp_stanza_t *el,
			    const char *attr)
{
	const char *v = xmpp_stanza_get_attribute(el, attr);

	if (v && *v)
		json_object_set_new(o, key, json_string(v));
}

/* A port attribute as a number; 0 when absent or not a port. */
static int query_port(const char *v)
{
	char *end;
	long p = v ? strtol(v, &end, 10) : 0;

	return v && *v && !*end && p > 0 && p < 65536 ? (int)p : 0;
}

static json_t *query_server(const char *host, int port, const char *transport,
			    const char *type)
{
	return json_pack("{s:s, s:i, s:s, s:s}", "host", host, "port", port,
			 "transport", transport, "type", type);
}

json_t *query_parse_services(xmpp_stanza_t *services)
{
	json_t *a = json_array();

	for (xmpp_stanza_t *s = xmpp_stanza_get_children(services); a && s;
	     s = xmpp_stanza_get_next(s)) {
		const char *name = xmpp_stanza_get_name(s);
		const char *host = xmpp_stanza_get_attribute(s, "host");
		const char *type = xmpp_stanza_get_attribute(s, "type");
		const char *transport = xmpp_stanza_get_attribute(s, "transport");
		if (!name || strcmp(name, "service") != 0 || !host || !type)
			continue;
		json_t *o = query_server(
			host, query_port(xmpp_stanza_get_attribute(s, "port")),
			transport ? transport : "udp", type);
		if (!o)
			continue;
		query_copy_attr(o, "username", s, "username");
		query_copy_attr(o, "password", s, "password");
		query_copy_attr(o, "expires", s, "expires");
		json_array_append_new(a, o);
	}
	return a;
}

/* One google:jingleinfo <server/>: a port per transport it names. */
static void query_jingle_server(json_t *a, xmpp_stanza_t *srv,
				const char *type, const char *token)
{
	static const char *const attrs[][2] = {
		{"udp", "udp"}, {"tcp", "tcp"}, {"tcpssl", "tls"}};
	const char *host = xmpp_stanza_get_attribute(srv, "host");

	for (size_t i = 0; host && i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		int port = query_port(xmpp_stanza_get_attribute(srv, attrs[i][0]));
		json_t *o = port ? query_server(host, port, attrs[i][1], type)
				 : NULL;
		if (o && token)
			json_object_set_new(o, "token", json_string(token));
		if (o)
			json_array_append_new(a, o);
	}
}

json_t *query_parse_jingleinfo(xmpp_stanza_t *query)
{
	json_t *a = json_array();
	xmpp_stanza_t *stun = xmpp_stanza_get_child_by_name(query, "stun");
	xmpp_stanza_t *relay = xmpp_stanza_get_child_by_name(query, "relay");
	xmpp_stanza_t *tok = relay ? xmpp_stanza_get_child_by_name(relay, "token")
				   : NULL;
	char *token = tok ? xmpp_stanza_get_text(tok) : NULL;
	xmpp_stanza_t *parents[] = {stun, relay};
	const char *types[] = {"stun", "relay"};

	for (size_t p = 0; a && p < 2; p++)
		for (xmpp_stanza_t *s = parents[p] ? xmpp_stanza_get_children(parents[p])
						   : NULL;
		     s; s = xmpp_stanza_get_next(s))
			if (xmpp_stanza_get_name(s) &&
			    strcmp(xmpp_stanza_get_name(s), "server") == 0)
				query_jingle_server(a, s, types[p],
						    p ? token : NULL);
	if (token)
		xmpp_free(xmpp_stanza_get_context(query), token);
	return a;
}

static int query_on_servers(xmpp_stanza_t *st, void *ud, enum query_kind kind,
			    const char *ns)
{
	struct query_result r = {.kind = kind};
	xmpp_stanza_t *el = xmpp_stanza_get_child_by_ns(st, ns);

	if (!query_is_reply(st))
		return 1;
	/* A result without the element says nothing: as if not offered. */
	if (!(r.error = query_error(st)) && !el)
		r.error = "service-unavailable";
	if (!r.error) {
		r.servers = kind == QUERY_SERVICES ? query_parse_services(el)
						   : query_parse_jingleinfo(el);
		if (!r.servers)
			r.error = "resource-constraint";
	}
	client_deliver_query(ud, xmpp_stanza_get_id(st), &r);
	json_decref(r.servers);
	return 0;
}

static int query_on_services(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	(void)conn;
	return query_on_servers(st, ud, QUERY_SERVICES, QUERY_NS_EXTDISCO);
}

static int query_on_jingleinfo(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	(void)conn;
	return query_on_servers(st, ud, QUERY_JINGLEINFO, QUERY_NS_JINGLEINFO);
}

/* The server (XEP-0215) or the account itself (jingleinfo) is asked. */
static int query_own(struct client *c, int domain_only, const char *name,
		     const char *ns, char id[WIRE_ID_HEX + 1],
		     client_iq_handler handler)
{
	xmpp_ctx_t *ctx = client_strophe_ctx(c);
	char *to = domain_only ? xmpp_jid_domain(ctx, client_jid(c))
			       : xmpp_jid_bare(ctx, client_jid(c));
	int r = to ? query_send(c, query_iq(ctx, "get", to, name, ns, NULL), id,
				handler)
		   : -1;

	xmpp_free(ctx, to);
	return r;
}

int query_services(struct client *c, char id[WIRE_ID_HEX + 1])
{
	return query_own(c, 1, "services", QUERY_NS_EXTDISCO, id,
			 query_on_services);
}

int query_jingleinfo(struct client *c, char id[WIRE_ID_HEX + 1])
{
	return query_own(c, 0, "query", QUERY_NS_JINGLEINFO, id,
			 query_on_jingleinfo);
}

/* ---- roster changes ---- */

static int query_on_roster(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	struct query_result r = {.kind = QUERY_ROSTER};

	(void)conn;
	if (!query_is_reply(st))
		return 1;
	r.error = query_error(st);
	client_deliver_query(ud, xmpp_stanza_get_id(st), &r);
	return 0;
}

int query_roster_set(struct client *c, const char *jid, const char *name,
		     const char *const *groups, size_t ngroups, int remove,
		     char id[WIRE_ID_HEX + 1])
{
	xmpp_ctx_t *ctx = client_strophe_ctx(c);
	xmpp_stanza_t *q = NULL, *item = NULL;
	xmpp_stanza_t *iq = query_iq(ctx, "set", NULL, "query", XMPP_NS_ROSTER,
				     &q);
	int ok = iq && (item = client_add_child(ctx, q, "item", NULL, NULL)) &&
		 xmpp_stanza_set_attribute(item, "jid", jid) == XMPP_EOK;

	if (ok && remove)
		ok = xmpp_stanza_set_attribute(item, "subscription", "remove") ==
		     XMPP_EOK;
	if (ok && !remove && name && *name)
		ok = xmpp_stanza_set_attribute(item, "name", name) == XMPP_EOK;
	for (size_t i = 0; ok && !remove && i < ngroups; i++)
		ok = client_add_child(ctx, item, "group", NULL, groups[i]) != NULL;
	if (!ok) {
		xmpp_stanza_release(iq);
		return -1;
	}
	return query_send(c, iq, id, query_on_roster);
}
