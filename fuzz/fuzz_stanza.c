/*
 * fuzz_stanza.c: what the XMPP server sends, through the daemon's real
 * handlers: client.c's stream negotiation (features, STARTTLS, SASL with
 * scram.c or sasl.c, XEP-0198 with smacks.c, bind, session), its roster,
 * message, presence and iq handlers, query.c's readers of vCard photos
 * (avatar.c), XEP-0215 and jingleinfo answers, then the session's sinks:
 * roster.c, and inbox.c turning a client_message into a payload
 * (payload.c), sealed and stored (fakebus.c for Redis).
 *
 * There is no network. fuzz.am links this harness with -Wl,--wrap for the
 * few libstrophe calls that touch one (connect, disconnect, TLS, handler
 * registration) and for seal_random_id, so that:
 * - handlers client.c registers land in a table here, and each stanza is
 *   dispatched as libstrophe's handler_fire_stanza() does (id handlers,
 *   then ns/name/type matches; user handlers at once, as in raw mode,
 *   where every stream runs; 0 = one-shot);
 * - iq ids are a counter, 00000000000000000000000000000001 and up, so an
 *   input can answer the daemon's own requests.
 *
 * Input: records separated by NUL bytes.
 *   Record 1, the login: "P" (password: SCRAM, or PLAIN where only that
 *     is offered) or "T<mechanism>\t<token>" (mechanism X-OAUTH2,
 *     OAUTHBEARER, or empty for the server's offer).
 *   Every other record: one stanza as the server sends it; or, starting
 *     with '>', the XML of a client's rawiq call (client_send_iq).
 * Ids in order: client.c binds (id 1), asks for a session if the server
 * needs one, then the roster, then with the roster's
 * answer the server's disco#info; once online the harness asks bob's
 * vCard, XEP-0215 services, jingleinfo, a roster set and a ping rawiq,
 * which take the next five ids. FUZZ_TRACE=1 prints the session's events.
 */
#include <jansson.h>
#include <strings.h>
#include <strophe.h>

#include "avatar.h"
#include "client.h"
#include "config.h"
#include "envelope.h"
#include "fakebus.h"
#include "fuzz.h"
#include "inbox.h"
#include "jid.h"
#include "log.h"
#include "payload.h"
#include "query.h"
#include "roster.h"
#include "seal.h"
#include "wire.h"

#define FUZZ_JID "alice@example.com"
#define FUZZ_RESOURCE "phone"
#define FUZZ_CONTACT "bob@example.com"

/* ---- the fake stream under client.c (see the --wrap list in fuzz.am) ---- */

struct fuzz_handler {
	struct fuzz_handler *next;
	xmpp_handler fn;
	char *ns, *name, *type, *id; /* id set: an id handler */
	void *ud;
	int enabled; /* added before the current stanza's dispatch */
	int dead;    /* deleted or one-shot and fired */
};

static struct {
	struct fuzz_handler *handlers;
	xmpp_conn_handler conn_cb;
	void *conn_ud;
	xmpp_conn_t *conn;
	int connected, authenticated, closing;
	unsigned long ids;
} fs;

void __wrap_xmpp_handler_add(xmpp_conn_t *conn, xmpp_handler handler,
			     const char *ns, const char *name, const char *type,
			     void *userdata);
void __wrap_xmpp_handler_delete(xmpp_conn_t *conn, xmpp_handler handler);
void __wrap_xmpp_id_handler_add(xmpp_conn_t *conn, xmpp_handler handler,
				const char *id, void *userdata);
void __wrap_xmpp_id_handler_delete(xmpp_conn_t *conn, xmpp_handler handler,
				   const char *id);
int __wrap_xmpp_connect_raw(xmpp_conn_t *conn, const char *altdomain,
			    unsigned short altport, xmpp_conn_handler callback,
			    void *userdata);
void __wrap_xmpp_disconnect(xmpp_conn_t *conn);
int __wrap_xmpp_conn_tls_start(xmpp_conn_t *conn);
int __wrap_xmpp_conn_open_stream_default(xmpp_conn_t *conn);
void __wrap_seal_random_id(char out[WIRE_ID_HEX + 1]);

static char *fuzz_dup(const char *s)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		abort();
	return d;
}

static void fuzz_add(xmpp_handler fn, const char *ns, const char *name,
		     const char *type, const char *id, void *ud)
{
	struct fuzz_handler *h = calloc(1, sizeof(*h)), **tail = &fs.handlers;

	/* libstrophe ignores a second registration of the same handler. */
	for (struct fuzz_handler *o = fs.handlers; o; o = o->next)
		if (!o->dead && o->fn == fn && !o->id == !id &&
		    (!id || strcmp(o->id, id) == 0)) {
			free(h);
			return;
		}
	if (!h)
		abort();
	h->fn = fn;
	h->ns = fuzz_dup(ns);
	h->name = fuzz_dup(name);
	h->type = fuzz_dup(type);
	h->id = fuzz_dup(id);
	h->ud = ud;
	while (*tail)
		tail = &(*tail)->next;
	*tail = h;
}

void __wrap_xmpp_handler_add(xmpp_conn_t *conn, xmpp_handler handler,
			     const char *ns, const char *name, const char *type,
			     void *userdata)
{
	(void)conn;
	fuzz_add(handler, ns, name, type, NULL, userdata);
}

void __wrap_xmpp_id_handler_add(xmpp_conn_t *conn, xmpp_handler handler,
				const char *id, void *userdata)
{
	(void)conn;
	fuzz_add(handler, NULL, NULL, NULL, id, userdata);
}

void __wrap_xmpp_handler_delete(xmpp_conn_t *conn, xmpp_handler handler)
{
	(void)conn;
	for (struct fuzz_handler *h = fs.handlers; h; h = h->next)
		if (!h->id && h->fn == handler)
			h->dead = 1;
}

void __wrap_xmpp_id_handler_delete(xmpp_conn_t *conn, xmpp_handler handler,
				   const char *id)
{
	(void)conn;
	for (struct fuzz_handler *h = fs.handlers; h; h = h->next)
		if (h->id && h->fn == handler && strcmp(h->id, id) == 0)
			h->dead = 1;
}

static int fuzz_connect(xmpp_conn_t *conn, xmpp_conn_handler cb, void *ud)
{
	fs.conn = conn;
	fs.conn_cb = cb;
	fs.conn_ud = ud;
	fs.connected = 1;
	return XMPP_EOK;
}

int __wrap_xmpp_connect_raw(xmpp_conn_t *conn, const char *altdomain,
			    unsigned short altport, xmpp_conn_handler callback,
			    void *userdata)
{
	(void)altdomain;
	(void)altport;
	return fuzz_connect(conn, callback, userdata);
}

/* The stream closes once the current stanza is handled. */
void __wrap_xmpp_disconnect(xmpp_conn_t *conn)
{
	(void)conn;
	if (fs.connected)
		fs.closing = 1;
}

int __wrap_xmpp_conn_tls_start(xmpp_conn_t *conn)
{
	(void)conn;
	return XMPP_EOK;
}

int __wrap_xmpp_conn_open_stream_default(xmpp_conn_t *conn)
{
	(void)conn;
	return XMPP_EOK;
}

void __wrap_seal_random_id(char out[WIRE_ID_HEX + 1])
{
	snprintf(out, WIRE_ID_HEX + 1, "%032lx", ++fs.ids);
}

static int fuzz_matches(const struct fuzz_handler *h, xmpp_stanza_t *st)
{
	const char *ns = xmpp_stanza_get_ns(st);
	const char *name = xmpp_stanza_get_name(st);
	const char *type = xmpp_stanza_get_type(st);

	return (!h->ns || (ns && strcmp(ns, h->ns) == 0) ||
		xmpp_stanza_get_child_by_ns(st, h->ns)) &&
	       (!h->name || (name && strcmp(name, h->name) == 0)) &&
	       (!h->type || (type && strcmp(type, h->type) == 0));
}

static void fuzz_sweep(void);

/* handler_fire_stanza(): id handlers first, then the others. */
static void fuzz_fire(xmpp_stanza_t *st)
{
	const char *id = xmpp_stanza_get_id(st);
	struct fuzz_handler *h;

	for (h = fs.handlers; h; h = h->next)
		h->enabled = 1;
	for (int pass = 0; pass < 2; pass++)
		for (h = fs.handlers; h; h = h->next) {
			if (h->dead || !h->enabled || !fs.authenticated ||
			    (pass == 0) != (h->id != NULL))
				continue;
			if (pass == 0 ? !id || strcmp(id, h->id) != 0
				      : !fuzz_matches(h, st))
				continue;
			if (h->fn(fs.conn, st, h->ud) == 0)
				h->dead = 1;
		}
	fuzz_sweep();
}

/* Frees the handlers deleted or fired once. */
static void fuzz_sweep(void)
{
	struct fuzz_handler *h, **p;

	for (p = &fs.handlers; *p;) {
		h = *p;
		if (!h->dead) {
			p = &h->next;
			continue;
		}
		*p = h->next;
		free(h->ns);
		free(h->name);
		free(h->type);
		free(h->id);
		free(h);
	}
}

static void fuzz_stream_reset(void)
{
	for (struct fuzz_handler *h = fs.handlers; h; h = h->next)
		h->dead = 1;
	fuzz_sweep();
	memset(&fs, 0, sizeof(fs));
}

/* ---- the session's side: what session.c does with each event ---- */

static const char fuzz_sid[WIRE_ID_HEX + 1] = "0123456789abcdef0123456789abcdef";
static const uint8_t fuzz_key[SEAL_KEY_BYTES] = "fuzz user key for payloads 32 b";
static const char fuzz_rid[WIRE_ID_HEX + 1] = "00112233445566778899aabbccddeeff";
static struct config fuzz_cfg;
static struct inbox_env fuzz_env;
static struct client_ctx *fuzz_cx;

static struct {
	struct roster *roster;
	struct inbox *inbox;
	int online, went_online, offline;
} ss;

/* FUZZ_TRACE=1 in the environment: each event on stderr, to check what
 * a seed reaches. */
static int fuzz_trace;
#define TRACE(...)                                                             \
	do {                                                                   \
		if (fuzz_trace)                                                \
			fprintf(stderr, "  event: " __VA_ARGS__);              \
	} while (0)

/* A registered webpush endpoint, so every message also gets its push
 * payload built (env.push is NULL: nothing is sent). */
static const char fuzz_inbox_record[] =
	"{\"key\":\"ZnV6eiB1c2VyIGtleSBmb3IgcGF5bG9hZHMgMzIgYgA=\","
	"\"toast\":true,\"tile\":true,\"secondarytile\":true,\"unread\":0,"
	"\"senders\":{},\"otr\":[\"otr@example.com\"],"
	"\"reg\":{\"kind\":\"webpush\",\"url\":\"https://push.example.com/p/1\","
	"\"p256dh\":\"BGsX0fLhLEJH-Lzm5WOkQPJ3A32BLeszoPShOUXYmMKWT-NC4v4af5uO5"
	"-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU\",\"auth\":\"AAAAAAAAAAAAAAAAAAAAAA\","
	"\"tiles\":[\"bob@example.com\"]}}";

/* The sealed answer the daemon would put on the bus, opened again as the
 * handler opens it. */
static void fuzz_reply(int status, json_t *body)
{
	uint8_t rk[SEAL_KEY_BYTES] = "fuzz reply key, 32 bytes long!!";
	size_t len = 0;
	char *blob = envelope_encode_reply(fuzz_rid, rk, status, body, &len);
	json_t *back = NULL;
	int st = 0;

	FUZZ_ASSERT(blob, "a reply encodes");
	FUZZ_ASSERT(envelope_decode_reply(blob, len, fuzz_rid, rk, &st, &back) ==
				0 && st == status,
		    "a reply decodes");
	json_decref(back);
	json_decref(body);
	free(blob);
}

/*
 * payload.c on the message as inbox_message() maps it: the JSON parses
 * and keeps the body; the push form fits PAYLOAD_PUSH_MAX and, opened
 * with the user key, holds a prefix of the body cut on a UTF-8 boundary.
 */
static void fuzz_payload(const struct client_message *m, const char *bare)
{
	struct payload_msg pm;
	payload_from_message(&pm, m, bare, NULL, m->nostore);
	char *text = payload_json(&pm, 0);
	char *push = payload_push(&pm, fuzz_key, NULL, 0); /* the cut path */
	json_t *o = text ? json_loads(text, 0, NULL) : NULL;

	const char *whole = json_string_value(json_object_get(o, "body"));
	FUZZ_ASSERT(o, "the payload is JSON");
	FUZZ_ASSERT(!m->body || (whole && strcmp(whole, m->body) == 0),
		    "the payload holds the whole body");
	json_decref(o);
	free(text);
	if (push) {
		size_t n = strlen(push);
		uint8_t *sealed = malloc(n), *plain = malloc(n + 1);
		long len;

		FUZZ_ASSERT(n <= PAYLOAD_PUSH_MAX, "a push payload fits");
		FUZZ_ASSERT(sealed && plain, "memory");
		len = seal_unbase64(sealed, n, push, SEAL_B64);
		FUZZ_ASSERT(len >= SEAL_OVERHEAD &&
				    seal_open(plain, sealed, (size_t)len, "",
					      fuzz_key) == 0,
			    "a push payload opens with the user key");
		plain[len - SEAL_OVERHEAD] = '\0';
		o = json_loads((char *)plain, 0, NULL);
		FUZZ_ASSERT(o, "an opened push payload is JSON");
		const char *body = json_string_value(json_object_get(o, "body"));
		int cut = json_is_true(json_object_get(o, "truncated"));
		FUZZ_ASSERT(!m->body == !body, "a push keeps the body, maybe cut");
		if (body) {
			size_t bl = strlen(body);
			FUZZ_ASSERT(strncmp(body, m->body, bl) == 0 &&
					    (bl < strlen(m->body)) == cut,
				    "a cut body is a prefix, marked truncated");
			FUZZ_ASSERT(((unsigned char)m->body[bl] & 0xC0) != 0x80,
				    "a body is cut on a UTF-8 boundary");
		}
		json_decref(o);
		free(sealed);
		free(plain);
		free(push);
	}
}

static void ev_online(void *ud, const char *bound)
{
	(void)ud;
	TRACE("online as %s\n", bound ? bound : "(null)");
	ss.online = ss.went_online = 1;
}

static void ev_offline(void *ud, enum client_error err, int was_online)
{
	(void)ud;
	TRACE("offline: %s\n", client_strerror(err));
	FUZZ_ASSERT(!was_online == !ss.online, "offline says if it was online");
	ss.online = 0;
	ss.offline = 1;
	roster_clear_presence(ss.roster);
}

static void ev_roster_item(void *ud, const char *jid, const char *name,
			   const char *sub, const char *const *groups, size_t n)
{
	(void)ud;
	FUZZ_ASSERT(jid && n <= 32, "a roster item has a JID, few groups");
	TRACE("roster item %s (%zu groups)\n", jid, n);
	roster_set(ss.roster, jid, name, sub, groups, n);
}

static void ev_roster_remove(void *ud, const char *jid)
{
	(void)ud;
	TRACE("roster remove %s\n", jid);
	roster_remove(ss.roster, jid);
}

static void ev_presence(void *ud, const char *from,
			const struct roster_presence *p)
{
	char hex[AVATAR_HASH_HEX + 1];

	(void)ud;
	FUZZ_ASSERT(from && (!p || p->show), "a presence has a sender and show");
	TRACE("presence from %s: %s%s%s\n", from, p ? p->show : "unavailable",
	      p && p->photo ? " photo " : "", p && p->photo ? p->photo : "");
	if (roster_presence(ss.roster, from, p) == 0 && p && p->photo &&
	    *p->photo && avatar_hash_parse(p->photo, strlen(p->photo), hex) == 0)
		FUZZ_ASSERT(strlen(hex) == AVATAR_HASH_HEX, "a hash is 40 digits");
}

static void ev_message(void *ud, const struct client_message *m)
{
	char bare[JID_MAX + 1];

	(void)ud;
	FUZZ_ASSERT(m->from && m->type && (m->body || m->state || m->receipt),
		    "a message has a sender and something to say");
	TRACE("message from %s type %s%s%s%s\n", m->from, m->type,
	      m->body ? " body" : "", m->state ? " state" : "",
	      m->receipt ? " receipt" : "");
	if (jid_bare(m->from, bare, sizeof(bare)) == -1)
		return;
	const char *sub = roster_subscription(ss.roster, bare);
	int receipt_ok = sub && (strcmp(sub, "from") == 0 ||
				 strcmp(sub, "both") == 0);
	inbox_message(ss.inbox, m, roster_name(ss.roster, bare), PUSH_NOW,
		      receipt_ok);
	fuzz_payload(m, bare);
}

static void ev_iq_reply(void *ud, const char *id, const char *xml)
{
	(void)ud;
	FUZZ_ASSERT(id && xml, "an iq reply has its id and text");
	TRACE("iq reply %s\n", id);
	fuzz_reply(200, json_pack("{s:s, s:s}", "id", id, "xml", xml));
}

static void ev_subscription(void *ud, const char *from, const char *type,
			    const char *status)
{
	(void)ud;
	TRACE("subscription %s from %s\n", type, from);
	if (strcmp(type, "unsubscribe") == 0)
		roster_request_remove(ss.roster, from);
	else if (strcmp(type, "subscribe") == 0 &&
		 roster_request_add(ss.roster, from, status) == 1)
		inbox_subscription(ss.inbox, from, roster_name(ss.roster, from),
				   status, PUSH_NOW);
}

static void ev_query(void *ud, const char *id, const struct query_result *r)
{
	uint8_t *blob = NULL, *data = NULL;
	size_t len = 0, dlen = 0;
	const char *type = NULL;
	char *b64;

	(void)ud;
	FUZZ_ASSERT(id, "a query answer has its id");
	TRACE("query %d answer %s: %s\n", (int)r->kind, id,
	      r->error ? r->error : "ok");
	if (r->error)
		return;
	switch (r->kind) {
	case QUERY_VCARD:
		FUZZ_ASSERT(r->photo && r->photo_len <= AVATAR_MAX_BYTES &&
				    r->photo_type &&
				    avatar_sniff(r->photo, r->photo_len) &&
				    strcmp(avatar_sniff(r->photo, r->photo_len),
					   r->photo_type) == 0 &&
				    strlen(r->photo_hash) == AVATAR_HASH_HEX,
			    "a photo is an image of the type named, with its hash");
		/* session_avatar_put(), then the handler's GET /images/. */
		FUZZ_ASSERT(avatar_seal(r->photo_hash, r->photo, r->photo_len,
					&blob, &len) == 0 &&
				    avatar_open(r->photo_hash, blob, len, &data,
						&dlen, &type) == 0 &&
				    dlen == r->photo_len &&
				    memcmp(data, r->photo, dlen) == 0 &&
				    strcmp(type, r->photo_type) == 0,
			    "a cached photo opens as itself");
		b64 = seal_base64(r->photo, r->photo_len, SEAL_B64);
		fuzz_reply(200, json_pack("{s:s, s:s, s:s}", "type",
					  r->photo_type, "data", b64, "hash",
					  r->photo_hash));
		free(b64);
		free(blob);
		free(data);
		break;
	case QUERY_SERVICES:
	case QUERY_JINGLEINFO:
		FUZZ_ASSERT(json_is_array(r->servers), "servers are a list");
		for (size_t i = 0; i < json_array_size(r->servers); i++) {
			json_t *s = json_array_get(r->servers, i);
			json_int_t port =
				json_integer_value(json_object_get(s, "port"));
			FUZZ_ASSERT(json_is_string(json_object_get(s, "host")) &&
					    port >= 0 && port <= 65535,
				    "a server has a host and a port");
		}
		fuzz_reply(200, json_pack("{s:O}", "servers", r->servers));
		break;
	case QUERY_ROSTER:
		break;
	}
}

static const struct client_events fuzz_events = {
	.online = ev_online,
	.offline = ev_offline,
	.roster_item = ev_roster_item,
	.roster_remove = ev_roster_remove,
	.presence = ev_presence,
	.message = ev_message,
	.iq_reply = ev_iq_reply,
	.subscription = ev_subscription,
	.query = ev_query,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fakebus_harness_init("fuzz_stanza", &fuzz_cfg, &fuzz_env);
	if (!(fuzz_cx = client_ctx_new(&fuzz_cfg)))
		abort();
	fuzz_trace = getenv("FUZZ_TRACE") != NULL;
	return 0;
}

/* What the session asks once online, each answerable by its id. */
static void fuzz_ask(struct client *c)
{
	static const char *const groups[] = {"Friends"};
	char id[CLIENT_IQ_ID_MAX + 1];
	const char *why = NULL;

	query_vcard(c, FUZZ_CONTACT, id);
	query_services(c, id);
	query_jingleinfo(c, id);
	query_roster_set(c, FUZZ_CONTACT, "Bob", groups, 1, 0, id);
	client_send_iq(c, "<iq type='get' to='example.com'>"
			  "<ping xmlns='urn:xmpp:ping'/></iq>",
		       1, id, &why);
}

/* A stanza from the server, or '>' and a client's rawiq. */
static void fuzz_record(struct client *c, const char *rec)
{
	char id[CLIENT_IQ_ID_MAX + 1];
	const char *why = NULL;
	xmpp_stanza_t *st;

	if (rec[0] == '>') {
		int r = client_send_iq(c, rec + 1, 1, id, &why);
		FUZZ_ASSERT(r != -2 || why, "a refused iq says why");
		FUZZ_ASSERT(r != 0 || (strlen(id) > 0 &&
				       strlen(id) <= CLIENT_IQ_ID_MAX),
			    "a sent iq has an id");
		return;
	}
	if (!(st = xmpp_stanza_new_from_string(client_strophe_ctx(c), rec)))
		return;
	fuzz_fire(st);
	xmpp_stanza_release(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *login = fuzz_take(&data, &size, '\0');
	const char *mech = NULL, *secret;
	struct client *c;

	if (!login)
		return 0;
	memset(&fs, 0, sizeof(fs));
	memset(&ss, 0, sizeof(ss));
	fakebus_reset(fuzz_env.bus);
	json_t *rec = json_loads(fuzz_inbox_record, 0, NULL);
	if (!(ss.roster = roster_new()) ||
	    !(ss.inbox = inbox_new(&fuzz_env, fuzz_sid)) ||
	    inbox_import(ss.inbox, rec) == -1)
		abort();
	json_decref(rec);
	if (login[0] == 'T') {
		/* The API's limits: a token of 1..4096 bytes. */
		char *tab = strchr(login + 1, '\t');
		mech = tab ? login + 1 : "";
		if (tab)
			*tab = '\0';
		secret = tab ? tab + 1 : login + 1;
		if (!*secret || strlen(secret) > 4096)
			secret = "ya29.token";
	} else {
		secret = "alice-pw";
	}
	c = client_new(fuzz_cx, FUZZ_JID, secret, FUZZ_RESOURCE, mech,
		       &fuzz_events, NULL);
	FUZZ_ASSERT(c && client_connect(c) == 0 && fs.conn_cb,
		    "a client starts connecting");
	fs.authenticated = 1;
	fs.conn_cb(fs.conn, XMPP_CONN_RAW_CONNECT, 0, NULL, fs.conn_ud);
	for (char *r; !ss.offline && (r = fuzz_take(&data, &size, '\0'));
	     free(r)) {
		if (!fs.closing)
			fuzz_record(c, r);
		inbox_flush(&fuzz_env); /* as the loop does after a pass */
		if (ss.went_online && !fs.closing) {
			ss.went_online = 0;
			fuzz_ask(c);
		}
		if (fs.closing) {
			/* The server answers our </stream:stream>. */
			fs.connected = 0;
			fs.conn_cb(fs.conn, XMPP_CONN_DISCONNECT, 0, NULL,
				   fs.conn_ud);
		}
	}
	client_free(c);
	fuzz_stream_reset();
	inbox_free(ss.inbox);
	roster_free(ss.roster);
	free(login);
	return 0;
}
