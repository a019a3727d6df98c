/* session.c: sessions and the API calls that act on them (session.h). */
#include "session.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avatar.h"
#include "bus.h"
#include "client.h"
#include "config.h"
#include "envelope.h"
#include "inbox.h"
#include "jid.h"
#include "log.h"
#include "park.h"
#include "push.h"
#include "query.h"
#include "record.h"
#include "sasl.h"
#include "roster.h"
#include "seal.h"
#include "tokenmap.h"
#include "wire.h"

/* Each login that reuses a session adds a token; the oldest goes first. */
#define SESSION_TOKENS 8
/* Logins waiting for the same stream to come up. */
#define SESSION_WAITERS 4
/* iqs waiting for their reply (calls and avatar fetches), and how long
 * they may. */
#define SESSION_IQ_WAITERS 16
#define SESSION_IQ_WAIT_MS 30000
/* Avatar hashes known to be cached, so each is fetched once. */
#define SESSION_AVATARS_KNOWN 1024
/* Messages sent lately, by client id: the handlers' route script refuses
 * ids whose idempotency key exists, and this catches the retries that
 * passed it before that key was written. Far more than a pass holds. */
#define SESSION_SENT_IDS 1024
#define SESSION_BACKOFF_MIN_MS 1000
#define SESSION_BACKOFF_MAX_MS 60000
#define SESSION_LEASE_MS 30000
#define SESSION_CLAIM_MS 60000
/* How often to look for sessions whose daemon is gone. */
#define SESSION_ADOPT_MS 15000
#define SESSION_ADOPT_STEP_MS 100
/*
 * A stream that once worked ends only after this many refused logins in a
 * row: a server that refuses for a while (its account store restarting)
 * is survived, a changed password is not retried for long.
 */
#define SESSION_AUTH_RETRIES 15 /* about ten minutes of backoff */
/* Records that did not open, remembered so they are logged once. */
#define SESSION_BAD_RECORDS 64
/* Unread counts change with every message: saved at most this often. */
#define SESSION_SAVE_DELAY_MS 1000
/* Every session's timers are looked at this often, not on every pass of
 * the loop: under load a pass per request made the walk over 900
 * sessions cost more than the request. */
#define SESSION_WALK_MS 50
/* Message requests that may wait per session; past it they are refused.
 * Each handler has one request in flight, so this is far above need. */
#define SESSION_PARK_MAX 1024

enum session_state {
	SESSION_CONNECTING, /* first login, no answer yet */
	SESSION_ONLINE,
	SESSION_RECONNECTING, /* was online; the stream broke */
	SESSION_CLOSING,      /* logged out; waiting for the stream to end */
	SESSION_DEAD          /* to be freed by the next tick */
};

enum session_idle { SESSION_ACTIVE, SESSION_AUTO_AWAY, SESSION_AUTO_XA };

struct session_waiter {
	char rid[WIRE_ID_HEX + 1];
	uint8_t rk[SEAL_KEY_BYTES];
	char token[WIRE_TOKEN_B64 + 1];
	int64_t deadline_ms;
};

enum session_wait_kind {
	SESSION_WAIT_RAWIQ,
	SESSION_WAIT_PHOTO,
	SESSION_WAIT_JINGLE,
	SESSION_WAIT_CONTACT,
	SESSION_WAIT_AVATAR /* nobody waits: a fetch for the cache */
};

/* An iq waiting for its reply, and the call that waits for it (if any). */
struct session_iqwait {
	enum session_wait_kind kind;
	int answers; /* rid and rk belong to a waiting call */
	char rid[WIRE_ID_HEX + 1];
	uint8_t rk[SEAL_KEY_BYTES];
	char id[CLIENT_IQ_ID_MAX + 1];
	int64_t deadline_ms;
	char hash[AVATAR_HASH_HEX + 1]; /* SESSION_WAIT_AVATAR: as announced */
};

struct session {
	struct session_table *t;
	struct session *next;
	enum session_state state;
	char sid[WIRE_ID_HEX + 1];
	/* Strings sized to their content, not to their limits: three
	 * maximal arrays made up half of a session's memory. */
	char *jid; /* bare */
	char *resource;
	char *bound; /* the full JID the server bound, NULL before */
	uint8_t cred[32]; /* keyed digest of jid and password or token */
	char *password;   /* password or token, for reconnects; wiped */
	int token_login;  /* password is an OAuth token for mech */
	char mech[16];    /* "X-OAUTH2", "OAUTHBEARER", "" the server's offer */
	struct client *client;
	struct roster *roster;
	struct inbox *inbox;
	struct session_waiter waiters[SESSION_WAITERS];
	size_t nwaiters;
	/* SESSION_IQ_WAITERS of them, allocated when the first is needed:
	 * most sessions never wait for an iq. */
	struct session_iqwait *iqwaits;
	size_t niqwaits;
	char th[SESSION_TOKENS][WIRE_TOKEN_HASH_HEX + 1];
	size_t ntokens;
	int64_t reconnect_at_ms;
	int backoff_ms;
	int64_t active_ms; /* last client request */
	enum session_idle idle;
	char show[16];
	char *status; /* never NULL */
	int auth_failures; /* in a row, while reconnecting */
	int dirty; /* the record in Redis is older than this */
	int64_t saved_ms;
	int negotiating;   /* connecting: TLS and SASL not done yet */
	int connect_later; /* a login waiting for a free negotiation slot */
	size_t parked;     /* its message requests waiting (park.h) */
};

struct session_table {
	const struct config *cfg;
	struct client_ctx *cx;
	struct bus *bus;
	struct inbox_env env;
	const char *daemon_id;
	struct session *head;
	struct tokenmap *tokens; /* token hash -> session */
	size_t count;
	uint8_t cred_key[SEAL_KEY_BYTES];
	uint8_t master[SEAL_KEY_BYTES];
	int64_t lease_renew_ms;
	int64_t adopt_ms;
	int64_t adopt_step_ms;
	long long adopt_cursor; /* 0: no pass under way */
	int adopted_once;       /* the first, whole pass is done */
	char bad[SESSION_BAD_RECORDS][WIRE_ID_HEX + 1];
	size_t nbad;
	char avatars[SESSION_AVATARS_KNOWN][AVATAR_HASH_HEX + 1];
	size_t avatar_next;
	uint64_t sent_ids[SESSION_SENT_IDS]; /* digests of session and id */
	size_t sent_next;
	uint8_t sent_key[SEAL_KEY_BYTES];
	size_t negotiating; /* sessions whose stream is being set up */
	int64_t walk_due_ms; /* next walk over every session's timers */
	int walk_now;        /* a negotiation slot freed: walk at once */
	struct park *park;   /* message requests waiting for their stream */
	int unparking;       /* the request handled comes from the park */
};

/* One request being answered. */
struct session_req {
	struct session_table *t;
	struct envelope env;
	const char *raw; /* the request as it came, for parking */
	size_t raw_len;
	int answered;
};

static int64_t session_now(void)
{
	return envelope_now_ms();
}

static void session_reply_to(struct session_table *t, const char *rid,
			     const uint8_t *rk, int status, json_t *body_take)
{
	size_t len = 0;
	char *msg = envelope_encode_reply(rid, rk, status, body_take, &len);

	if (!msg || bus_reply(t->bus, rid, msg, len) == -1)
		log_error("reply to %s lost", rid);
	free(msg);
	json_decref(body_take);
}

static void session_reply(struct session_req *r, int status, json_t *body)
{
	session_reply_to(r->t, r->env.rid, r->env.rk, status, body);
	r->answered = 1;
}

static void session_fail_to(struct session_table *t, const char *rid,
			    const uint8_t *rk, int status, const char *code,
			    const char *message)
{
	session_reply_to(t, rid, rk, status,
			 envelope_error(code, message, NULL));
}

static void session_fail(struct session_req *r, int status, const char *code,
			 const char *message)
{
	session_fail_to(r->t, r->env.rid, r->env.rk, status, code, message);
	r->answered = 1;
}

/* ---- tokens and ownership in Redis ---- */

/* Adds token hash th to s, in the table's map too. 0, or -1 (no memory). */
static int session_add_th(struct session *s, const char *th)
{
	if (s->ntokens == SESSION_TOKENS || tokenmap_put(s->t->tokens, th, s) == -1)
		return -1;
	memcpy(s->th[s->ntokens++], th, WIRE_TOKEN_HASH_HEX + 1);
	return 0;
}

static void session_drop_th(struct session *s, size_t i)
{
	tokenmap_del(s->t->tokens, s->th[i], s);
	memmove(s->th[i], s->th[i + 1], sizeof(s->th[0]) * (s->ntokens - i - 1));
	s->ntokens--;
}

static int session_store_token(struct session *s, const char *token)
{
	char key[128], th[WIRE_TOKEN_HASH_HEX + 1];

	seal_token_hash(token, strlen(token), th);
	if (s->ntokens == SESSION_TOKENS) {
		bus_del(s->t->bus, bus_key(key, sizeof(key),
					   WIRE_KEY_TOKEN_PREFIX, s->th[0]));
		session_drop_th(s, 0);
	}
	if (session_add_th(s, th) == -1)
		return -1;
	if (bus_set(s->t->bus, bus_key(key, sizeof(key), WIRE_KEY_TOKEN_PREFIX, th),
		    s->sid, strlen(s->sid), 0) == -1) {
		session_drop_th(s, s->ntokens - 1);
		return -1;
	}
	return 0;
}

/* tp:cred:<digest>, naming the session logins with these credentials
 * share, whichever daemon holds it. */
static char *session_cred_key(const uint8_t cred[32], char *key, size_t len)
{
	char hex[65];

	for (size_t i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", cred[i]);
	return bus_key(key, len, WIRE_KEY_CRED_PREFIX, hex);
}

static int session_store_owner(struct session *s)
{
	char key[160];
	const char *id = s->t->daemon_id;

	if (bus_set(s->t->bus, session_cred_key(s->cred, key, sizeof(key)),
		    s->sid, strlen(s->sid), 0) == -1)
		return -1;
	return bus_set(s->t->bus,
		       bus_key(key, sizeof(key), WIRE_KEY_OWNER_PREFIX, s->sid),
		       id, strlen(id), 0);
}

/* Forgets every token and the owner record: the session is gone. */
static void session_unstore(struct session *s)
{
	char key[160];

	while (s->ntokens) {
		bus_del(s->t->bus, bus_key(key, sizeof(key), WIRE_KEY_TOKEN_PREFIX,
					   s->th[s->ntokens - 1]));
		session_drop_th(s, s->ntokens - 1);
	}
	bus_del(s->t->bus, bus_key(key, sizeof(key), WIRE_KEY_OWNER_PREFIX, s->sid));
	bus_del_if(s->t->bus, session_cred_key(s->cred, key, sizeof(key)), s->sid);
}

static struct session *session_by_token(struct session_table *t,
					const char *th)
{
	struct session *s = tokenmap_get(t->tokens, th);

	return s && s->state != SESSION_DEAD ? s : NULL;
}

/* The full JID to show: the bound one, or the account before binding. */
static const char *session_bound(const struct session *s)
{
	return s->bound ? s->bound : s->jid;
}

/* ---- the sealed record ---- */

/* What a successor needs to resume the stream instead of binding anew
 * (client.h); NULL when the server would not resume it. */
static json_t *session_export_stream(const struct session *s)
{
	const char *id, *bound;
	uint32_t in;

	client_resumption(s->client, &id, &bound, &in);
	if (!id)
		return NULL;
	return json_pack("{s:s, s:s, s:I}", "id", id, "bound", bound, "h",
			 (json_int_t)in);
}

static json_t *session_export(const struct session *s)
{
	json_t *tokens = json_array();
	json_t *inbox = inbox_export(s->inbox);
	json_t *stream = session_export_stream(s);
	json_t *o = NULL;

	for (size_t i = 0; tokens && i < s->ntokens; i++)
		json_array_append_new(tokens, json_string(s->th[i]));
	if (tokens && inbox)
		o = json_pack("{s:i, s:s, s:s, s:s, s:O, s:s, s:s, s:O}", "v", 1,
			      "jid", s->jid, "password", s->password,
			      "resource", s->resource, "tokens", tokens, "show",
			      s->show, "status", s->status, "inbox", inbox);
	if (o && ((s->token_login &&
		   json_object_set_new(o, "mechanism", json_string(s->mech)) == -1) ||
		  (stream && json_object_set(o, "stream", stream) == -1))) {
		json_decref(o);
		o = NULL;
	}
	json_decref(stream);
	json_decref(tokens);
	json_decref(inbox);
	return o;
}

/* Writes the session's record now; a failure (logged) leaves it dirty
 * for later. */
static int session_save(struct session *s)
{
	/* The record counts the stanzas handled (the stream to resume):
	 * what they brought is stored first. */
	inbox_flush(&s->t->env);
	json_t *o = session_export(s);
	int r = o ? record_save(s->t->bus, s->t->master, s->sid, o) : -1;

	if (!o)
		log_error("session %s: record not saved: out of memory", s->sid);
	json_decref(o);
	s->dirty = r == -1;
	s->saved_ms = session_now();
	return r;
}

/* ---- session life ---- */

/* Answers the calls still waiting for iqs (the stream went, or time ran
 * out); with now 0, every one. */
static void session_fail_iqs(struct session *s, int64_t now, int status,
			     const char *code, const char *message)
{
	size_t kept = 0;

	for (size_t i = 0; i < s->niqwaits; i++) {
		struct session_iqwait *w = &s->iqwaits[i];
		if (now && w->deadline_ms > now) {
			s->iqwaits[kept++] = *w;
			continue;
		}
		if (w->answers)
			session_fail_to(s->t, w->rid, w->rk, status, code,
					message);
		if (s->client)
			client_forget_iq(s->client, w->id);
		seal_wipe(w->rk, sizeof(w->rk));
	}
	s->niqwaits = kept;
}

static void session_end(struct session *s, const char *why)
{
	if (s->state == SESSION_DEAD)
		return;
	log_info("session %s (%s) ends: %s", s->sid, s->jid, why);
	session_fail_iqs(s, 0, 503, "session_offline", "the session ended");
	session_unstore(s);
	inbox_delete(s->inbox);
	if (record_delete(s->t->bus, s->sid) == -1)
		log_warn("session %s: record not deleted", s->sid);
	s->dirty = 0;
	for (size_t i = 0; i < s->nwaiters; i++)
		session_fail_to(s->t, s->waiters[i].rid, s->waiters[i].rk, 503, "session_offline",
				"the session ended");
	s->nwaiters = 0;
	if (s->client && (s->state == SESSION_ONLINE ||
			  s->state == SESSION_CONNECTING ||
			  s->state == SESSION_RECONNECTING)) {
		s->state = SESSION_CLOSING;
		client_disconnect(s->client);
	} else {
		s->state = SESSION_DEAD;
	}
}

/*
 * libstrophe runs each TLS handshake and SASL step inside its event loop,
 * so every stream being set up stalls all the others for a few ms when its
 * turn comes. At most xmpp.max_connecting streams negotiate at once: a
 * login storm then delays other sessions by a bounded amount, and the
 * logins themselves are no slower (the work is serial anyway).
 */
static int session_connect(struct session *s)
{
	struct session_table *t = s->t;

	if (t->negotiating >= (size_t)t->cfg->xmpp_max_connecting) {
		s->connect_later = 1;
		return 0;
	}
	s->connect_later = 0;
	if (client_connect(s->client) == -1)
		return -1;
	s->negotiating = 1;
	t->negotiating++;
	return 0;
}

/* The stream is up, or failed: its negotiation slot is free. */
static void session_negotiated(struct session *s)
{
	if (!s->negotiating)
		return;
	s->negotiating = 0;
	s->t->negotiating--;
	s->t->walk_now = 1; /* the next waiting login may start */
}

static void session_free(struct session *s)
{
	while (s->ntokens)
		session_drop_th(s, s->ntokens - 1);
	session_negotiated(s);
	free(s->iqwaits);
	free(s->bound);
	if (s->parked)
		park_forget(s->t->park, s);
	client_free(s->client);
	roster_free(s->roster);
	inbox_free(s->inbox);
	if (s->password) {
		seal_wipe(s->password, strlen(s->password));
		free(s->password);
	}
	seal_wipe(s->cred, sizeof(s->cred));
	free(s->jid);
	free(s->resource);
	free(s->status);
	free(s);
}

/* -1: out of memory, the old status kept. */
static int session_set_status(struct session *s, const char *status)
{
	char *copy = strndup(status, WIRE_STATUS_BYTES);

	if (!copy)
		return -1;
	free(s->status);
	s->status = copy;
	return 0;
}

/* Answers every waiting login now that the stream is up. */
static void session_answer_logins(struct session *s)
{
	for (size_t i = 0; i < s->nwaiters; i++) {
		struct session_waiter *w = &s->waiters[i];
		if (session_store_token(s, w->token) == -1) {
			session_fail_to(s->t, w->rid, w->rk, 503, "redis_unavailable",
					"the session could not be stored");
		} else {
			/* Saved before the answer: a token the client holds
			 * must survive a daemon crash. */
			if (session_save(s) == -1)
				log_warn("session %s: token given before the "
					 "record was saved",
					 s->sid);
			session_reply_to(s->t, w->rid, w->rk, 200,
					 json_pack("{s:s, s:s}", "token", w->token,
						   "jid", session_bound(s)));
		}
		seal_wipe(w->token, sizeof(w->token));
	}
	s->nwaiters = 0;
}

static void session_on_online(void *ud, const char *bound)
{
	struct session *s = ud;

	session_negotiated(s);
	char *copy = strdup(bound ? bound : s->jid);
	if (copy) {
		free(s->bound);
		s->bound = copy;
	}
	if (s->state == SESSION_CLOSING) {
		client_disconnect(s->client);
		return;
	}
	if (session_store_owner(s) == -1)
		log_error("session %s: owner record not written", s->sid);
	log_info("session %s online as %s", s->sid, session_bound(s));
	s->state = SESSION_ONLINE;
	s->backoff_ms = 0;
	s->auth_failures = 0;
	/* A reconnect restores the presence the user had chosen. */
	if (strcmp(s->show, "available") != 0 || s->status[0])
		client_send_presence(s->client, s->show, s->status);
	session_answer_logins(s);
	if (s->ntokens == 0)
		session_end(s, "no token could be stored");
}

static void session_login_failed(struct session *s, enum client_error err)
{
	int status = 502;
	const char *code = "xmpp_error";

	if (err == CLIENT_ERR_AUTH) {
		status = 401;
		code = "auth_failed";
	} else if (err == CLIENT_ERR_LIMIT) {
		status = 503;
		code = "daemon_full";
	}
	for (size_t i = 0; i < s->nwaiters; i++)
		session_fail_to(s->t, s->waiters[i].rid, s->waiters[i].rk, status, code,
				client_strerror(err));
	s->nwaiters = 0;
	s->state = SESSION_DEAD;
}

static void session_schedule_reconnect(struct session *s)
{
	uint32_t jitter;

	s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : SESSION_BACKOFF_MIN_MS;
	if (s->backoff_ms > SESSION_BACKOFF_MAX_MS)
		s->backoff_ms = SESSION_BACKOFF_MAX_MS;
	/* Jitter spreads a whole daemon's reconnects after a server restart. */
	seal_random(&jitter, sizeof(jitter));
	s->reconnect_at_ms = session_now() + s->backoff_ms / 2 +
			     jitter % (uint32_t)(s->backoff_ms / 2 + 1);
	s->state = SESSION_RECONNECTING;
}

static void session_on_offline(void *ud, enum client_error err, int was_online)
{
	struct session *s = ud;

	session_negotiated(s);
	roster_clear_presence(s->roster);
	session_fail_iqs(s, 0, 503, "session_offline",
			 "the XMPP stream went down before the reply");
	if (s->state == SESSION_CLOSING || s->state == SESSION_DEAD) {
		s->state = SESSION_DEAD;
		return;
	}
	if (s->state == SESSION_CONNECTING) {
		log_info("session %s (%s): login failed: %s", s->sid, s->jid,
			 client_strerror(err));
		session_login_failed(s, err);
		return;
	}
	log_warn("session %s (%s): stream down (%s)%s", s->sid, s->jid,
		 client_strerror(err), was_online ? "" : " while reconnecting");
	if (err == CLIENT_ERR_AUTH && ++s->auth_failures >= SESSION_AUTH_RETRIES) {
		session_end(s, "the server no longer accepts the credentials");
		s->state = SESSION_DEAD;
		return;
	}
	session_schedule_reconnect(s);
}

static void session_on_roster_item(void *ud, const char *jid, const char *name,
				   const char *sub, const char *const *groups,
				   size_t n)
{
	struct session *s = ud;

	if (roster_set(s->roster, jid, name, sub, groups, n) == -1)
		log_error("session %s: roster entry dropped (memory)", s->sid);
}

static void session_on_roster_remove(void *ud, const char *jid)
{
	roster_remove(((struct session *)ud)->roster, jid);
}

/* Reserves a waiter for an iq's reply; r NULL: no call waits for it. The
 * caller fills w->id, sends, then commits. NULL when all are taken. */
static struct session_iqwait *session_wait(struct session *s,
					   const struct session_req *r,
					   enum session_wait_kind kind)
{
	struct session_iqwait *w;

	if (s->niqwaits == SESSION_IQ_WAITERS)
		return NULL;
	if (!s->iqwaits &&
	    !(s->iqwaits = calloc(SESSION_IQ_WAITERS, sizeof(*s->iqwaits))))
		return NULL;
	w = &s->iqwaits[s->niqwaits];
	memset(w, 0, sizeof(*w));
	w->kind = kind;
	w->deadline_ms = session_now() + SESSION_IQ_WAIT_MS;
	if (r) {
		w->answers = 1;
		memcpy(w->rid, r->env.rid, sizeof(w->rid));
		memcpy(w->rk, r->env.rk, sizeof(w->rk));
		if (r->env.deadline_ms < w->deadline_ms)
			w->deadline_ms = r->env.deadline_ms;
	}
	return w;
}

/* The iq went out: its waiter counts, and the call is answered later. */
static void session_wait_commit(struct session *s, struct session_req *r)
{
	s->niqwaits++;
	if (r)
		r->answered = 1;
}

/* Takes the waiter for id out of the table. 0, or -1 when none waits. */
static int session_wait_take(struct session *s, const char *id,
			     struct session_iqwait *out)
{
	for (size_t i = 0; i < s->niqwaits; i++) {
		if (strcmp(s->iqwaits[i].id, id) != 0)
			continue;
		*out = s->iqwaits[i];
		s->iqwaits[i] = s->iqwaits[--s->niqwaits];
		return 0;
	}
	return -1;
}

/* ---- avatars ---- */

static int session_avatar_known(const struct session_table *t,
				const char *hex)
{
	for (size_t i = 0; i < SESSION_AVATARS_KNOWN; i++)
		if (strcmp(t->avatars[i], hex) == 0)
			return 1;
	return 0;
}

static void session_avatar_note(struct session_table *t, const char *hex)
{
	if (session_avatar_known(t, hex))
		return;
	snprintf(t->avatars[t->avatar_next], AVATAR_HASH_HEX + 1, "%s", hex);
	t->avatar_next = (t->avatar_next + 1) % SESSION_AVATARS_KNOWN;
}

/* Seals a fetched photo into the cache under its own SHA-1. */
static void session_avatar_put(struct session_table *t,
			       const struct query_result *res)
{
	char key[AVATAR_KEY_MAX];
	uint8_t *blob = NULL;
	size_t len = 0;

	if (!res->photo_hash[0] ||
	    res->photo_len > (size_t)t->cfg->xmpp_avatar_max_bytes)
		return;
	if (avatar_seal(res->photo_hash, res->photo, res->photo_len, &blob,
			&len) == -1) {
		log_error("avatar %s not cached: out of memory", res->photo_hash);
		return;
	}
	avatar_redis_key(res->photo_hash, key);
	if (bus_set(t->bus, key, blob, len, WIRE_AVATAR_TTL_S * 1000LL) == 0)
		session_avatar_note(t, res->photo_hash);
	free(blob);
}

/* A contact announced avatar hash (XEP-0153): fetch it unless cached. */
static void session_avatar_want(struct session *s, const char *from,
				const char *hash)
{
	struct session_table *t = s->t;
	char hex[AVATAR_HASH_HEX + 1], key[AVATAR_KEY_MAX], bare[JID_MAX + 1];

	if (!hash || avatar_hash_parse(hash, strlen(hash), hex) == -1 ||
	    session_avatar_known(t, hex) ||
	    jid_bare(from, bare, sizeof(bare)) == -1)
		return;
	for (size_t i = 0; i < s->niqwaits; i++)
		if (strcmp(s->iqwaits[i].hash, hex) == 0)
			return; /* already being fetched */
	avatar_redis_key(hex, key);
	int cached = bus_expire(t->bus, key, WIRE_AVATAR_TTL_S);
	if (cached == 1)
		session_avatar_note(t, hex);
	if (cached != 0)
		return;
	struct session_iqwait *w = session_wait(s, NULL, SESSION_WAIT_AVATAR);
	if (!w || query_vcard(s->client, bare, w->id) == -1)
		return;
	snprintf(w->hash, sizeof(w->hash), "%s", hex);
	session_wait_commit(s, NULL);
}

static void session_avatar_fetched(struct session *s,
				   const struct session_iqwait *w,
				   const struct query_result *res)
{
	/* Remembered either way: a contact announcing a hash its vCard does
	 * not match is not asked again and again. */
	session_avatar_note(s->t, w->hash);
	if (res->error) {
		log_info("session %s: avatar %s not fetched: %s", s->sid,
			 w->hash, res->error);
		return;
	}
	if (strcmp(res->photo_hash, w->hash) != 0)
		log_info("session %s: avatar announced as %s is %s", s->sid,
			 w->hash, res->photo_hash);
	session_avatar_put(s->t, res);
}

static void session_on_presence(void *ud, const char *from,
				const struct roster_presence *p)
{
	struct session *s = ud;

	if (roster_presence(s->roster, from, p) == -1)
		log_debug("session %s: presence from a malformed JID", s->sid);
	else if (p && p->photo && *p->photo)
		session_avatar_want(s, from, p->photo);
}

/* How soon the phone must hear of a message, from the user's presence. */
static enum push_class session_push_class(const struct session *s)
{
	if (s->idle == SESSION_AUTO_XA || strcmp(s->show, "xa") == 0)
		return PUSH_LATER;
	if (s->idle == SESSION_AUTO_AWAY || strcmp(s->show, "away") == 0 ||
	    strcmp(s->show, "dnd") == 0)
		return PUSH_SOON;
	return PUSH_NOW;
}

static void session_on_message(void *ud, const struct client_message *m)
{
	struct session *s = ud;
	char bare[JID_MAX + 1];

	if (jid_bare(m->from, bare, sizeof(bare)) == -1)
		return;
	/* Bodies never reach the log; ids let an admin follow a message.
	 * Debug: at info, a line per message cost more than its sealing. */
	log_debug("session %s: message from %s id=%s type=%s%s%s%s", s->sid,
		 bare, m->id ? m->id : "-", m->type,
		 m->body ? " with body" : "", m->state ? " state=" : "",
		 m->state ? m->state : "");
	/* Stored before this returns: libstrophe then tells the server the
	 * stanza was handled, and the server keeps no copy. */
	/* Receipts only go to contacts who may see our presence
	 * (XEP-0184 8: they would otherwise learn we are online). */
	const char *sub = roster_subscription(s->roster, bare);
	int receipt_ok = sub && (strcmp(sub, "from") == 0 ||
				 strcmp(sub, "both") == 0);
	inbox_message(s->inbox, m, roster_name(s->roster, bare),
		      session_push_class(s), receipt_ok);
	if (m->body)
		s->dirty = 1; /* unread counts */
}

static void session_on_subscription(void *ud, const char *from,
				    const char *type, const char *status)
{
	struct session *s = ud;

	log_info("session %s: %s from %s", s->sid, type, from);
	if (strcmp(type, "unsubscribe") == 0) {
		/* A withdrawn request is no longer the user's to answer. */
		roster_request_remove(s->roster, from);
		return;
	}
	if (strcmp(type, "subscribe") != 0)
		return; /* the roster push that follows says the rest */
	int added = roster_request_add(s->roster, from, status);
	if (added == -1)
		log_warn("session %s: subscription request from %s not kept: "
			 "too many wait",
			 s->sid, from);
	if (added == 1)
		inbox_subscription(s->inbox, from, roster_name(s->roster, from),
				   status, session_push_class(s));
}

static void session_on_iq_reply(void *ud, const char *id, const char *xml)
{
	struct session *s = ud;
	struct session_iqwait w;

	if (session_wait_take(s, id, &w) == -1)
		return;
	session_reply_to(s->t, w.rid, w.rk, 200,
			 json_pack("{s:s, s:s}", "id", id, "xml", xml));
	seal_wipe(w.rk, sizeof(w.rk));
}

/* ---- answers to the daemon's own iqs ---- */

static void session_answer_photo(struct session *s,
				 const struct session_iqwait *w,
				 const struct query_result *res)
{
	const char *err = res->error;

	if (!err && res->photo_len > (size_t)s->t->cfg->xmpp_avatar_max_bytes)
		err = "too-large";
	if (!err) {
		char *b64 = seal_base64(res->photo, res->photo_len, SEAL_B64);
		session_avatar_put(s->t, res);
		if (b64)
			session_reply_to(s->t, w->rid, w->rk, 200,
					 json_pack("{s:s, s:s, s:s}", "type",
						   res->photo_type, "data", b64,
						   "hash", res->photo_hash));
		else
			session_fail_to(s->t, w->rid, w->rk, 503, "overloaded",
					"out of memory");
		free(b64);
	} else if (strcmp(err, "too-large") == 0) {
		session_fail_to(s->t, w->rid, w->rk, 502, "photo_too_large",
				"the contact's photo is larger than this "
				"server relays");
	} else if (strcmp(err, "unsupported-type") == 0) {
		session_fail_to(s->t, w->rid, w->rk, 502, "photo_unsupported",
				"the contact's photo is not a PNG, JPEG, GIF "
				"or WebP image");
	} else if (strcmp(err, "no-photo") == 0 ||
		   strcmp(err, "item-not-found") == 0 ||
		   strcmp(err, "service-unavailable") == 0) {
		session_fail_to(s->t, w->rid, w->rk, 404, "no_photo",
				"that contact has no photo");
	} else {
		session_fail_to(s->t, w->rid, w->rk, 502, "xmpp_error",
				"the XMPP server refused the vCard request");
	}
}

/* XEP-0215 first; a server without it may offer google:jingleinfo; a
 * server with neither offers no servers, which is an answer too. */
static void session_answer_jingle(struct session *s,
				  const struct session_iqwait *w,
				  const struct query_result *res)
{
	if (res->error && res->kind == QUERY_SERVICES) {
		struct session_iqwait *next =
			session_wait(s, NULL, SESSION_WAIT_JINGLE);
		if (next && query_jingleinfo(s->client, next->id) == 0) {
			char id[sizeof(next->id)];
			memcpy(id, next->id, sizeof(id));
			*next = *w;
			memcpy(next->id, id, sizeof(id));
			session_wait_commit(s, NULL);
			return;
		}
	}
	json_t *servers = res->error ? json_array() : json_incref(res->servers);
	session_reply_to(s->t, w->rid, w->rk, 200,
			 json_pack("{s:o}", "servers", servers));
}

static void session_answer_contact(struct session *s,
				   const struct session_iqwait *w,
				   const struct query_result *res)
{
	if (!res->error)
		session_reply_to(s->t, w->rid, w->rk, 200, json_object());
	else
		session_fail_to(s->t, w->rid, w->rk, 502, "xmpp_error",
				"the XMPP server refused the roster change");
}

static void session_on_query(void *ud, const char *id,
			     const struct query_result *res)
{
	struct session *s = ud;
	struct session_iqwait w;

	if (session_wait_take(s, id, &w) == -1)
		return;
	switch (w.kind) {
	case SESSION_WAIT_AVATAR:
		session_avatar_fetched(s, &w, res);
		break;
	case SESSION_WAIT_PHOTO:
		session_answer_photo(s, &w, res);
		break;
	case SESSION_WAIT_JINGLE:
		session_answer_jingle(s, &w, res);
		break;
	case SESSION_WAIT_CONTACT:
		session_answer_contact(s, &w, res);
		break;
	case SESSION_WAIT_RAWIQ:
		break; /* answered by session_on_iq_reply */
	}
	seal_wipe(w.rk, sizeof(w.rk));
}

/* Written with this pass's commands, not SESSION_SAVE_DELAY_MS later: a
 * successor after a crash must not offer the server a count below the
 * one we acknowledged, which Prosody answers by closing the new stream. */
static void session_on_resumable(void *ud)
{
	struct session *s = ud;

	if (s->state == SESSION_ONLINE && s->ntokens)
		session_save(s);
	else
		s->dirty = 1;
}

static const struct client_events session_events = {
	.online = session_on_online,
	.offline = session_on_offline,
	.roster_item = session_on_roster_item,
	.roster_remove = session_on_roster_remove,
	.presence = session_on_presence,
	.message = session_on_message,
	.iq_reply = session_on_iq_reply,
	.subscription = session_on_subscription,
	.query = session_on_query,
	.resumable = session_on_resumable,
};

/* ---- calls ---- */

static int session_add_waiter(struct session *s, const struct envelope *env,
			      char token[WIRE_TOKEN_B64 + 1])
{
	if (s->nwaiters == SESSION_WAITERS)
		return -1;
	struct session_waiter *w = &s->waiters[s->nwaiters++];
	memcpy(w->rid, env->rid, sizeof(w->rid));
	memcpy(w->rk, env->rk, sizeof(w->rk));
	memcpy(w->token, token, sizeof(w->token));
	w->deadline_ms = env->deadline_ms;
	return 0;
}

/* A live session with the same account, password and resource. */
static struct session *session_find_login(struct session_table *t,
					  const char *jid, const uint8_t *cred,
					  const char *resource)
{
	for (struct session *s = t->head; s; s = s->next)
		if ((s->state == SESSION_ONLINE ||
		     s->state == SESSION_CONNECTING ||
		     s->state == SESSION_RECONNECTING) &&
		    strcmp(s->jid, jid) == 0 && seal_equal(s->cred, cred, 32) &&
		    (!resource || strcmp(s->resource, resource) == 0))
			return s;
	return NULL;
}

static void session_reuse(struct session_req *r, struct session *s)
{
	char token[WIRE_TOKEN_B64 + 1];

	seal_new_token(token);
	s->active_ms = session_now();
	if (s->state != SESSION_ONLINE) {
		if (session_add_waiter(s, &r->env, token) == -1)
			session_fail(r, 503, "busy", "too many logins at once");
		r->answered = 1;
	} else if (session_store_token(s, token) == -1 || session_save(s) == -1) {
		session_fail(r, 503, "redis_unavailable", "cannot store token");
	} else {
		log_info("session %s: login reuses the stream", s->sid);
		session_reply(r, 200, json_pack("{s:s, s:s}", "token", token,
						"jid", session_bound(s)));
	}
	seal_wipe(token, sizeof(token));
}

/* What a login or a record names to log in with. */
struct session_cred {
	const char *jid;
	const char *secret; /* password, or token when mech is set */
	const char *mech;   /* NULL: password login */
	const char *resource;
};

/* Equal logins share a session; a token never matches a password. */
static void session_cred_digest(const struct session_table *t,
				const struct session_cred *c, uint8_t out[32])
{
	char who[JID_MAX + 16];

	snprintf(who, sizeof(who), "%s%s", c->mech ? "oauth:" : "", c->jid);
	seal_digest2(out, t->cred_key, who, c->secret);
}

/* A session with its client, not yet connecting. sid NULL: a new one. */
static struct session *session_new(struct session_table *t, const char *sid,
				   const struct session_cred *c)
{
	const char *jid = c->jid, *resource = c->resource;
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->t = t;
	if (sid)
		snprintf(s->sid, sizeof(s->sid), "%s", sid);
	else
		seal_random_id(s->sid);
	s->jid = strdup(jid);
	s->resource = strdup(resource);
	s->status = strdup("");
	snprintf(s->show, sizeof(s->show), "available");
	session_cred_digest(t, c, s->cred);
	s->token_login = c->mech != NULL;
	snprintf(s->mech, sizeof(s->mech), "%s", c->mech ? c->mech : "");
	s->password = strdup(c->secret);
	s->roster = roster_new();
	s->inbox = inbox_new(&t->env, s->sid);
	s->client = s->password && s->roster && s->inbox && s->jid &&
			    s->resource && s->status
			    ? client_new(t->cx, jid, c->secret, resource,
					 c->mech, &session_events, s)
			    : NULL;
	if (!s->client) {
		session_free(s);
		return NULL;
	}
	s->active_ms = session_now();
	s->state = SESSION_CONNECTING;
	s->next = t->head;
	t->head = s;
	t->count++;
	t->lease_renew_ms = 0; /* the lease carries the load: now */
	return s;
}

struct session_room {
	struct session_table *t;
	char own[128];
	int found;
};

static void session_room_one(void *ud, const char *key)
{
	struct session_room *room = ud;
	char load[64];
	size_t count = 0, max = 0;

	if (room->found || strcmp(key, room->own) == 0 ||
	    bus_get(room->t->bus, key, load, sizeof(load)) != 1)
		return;
	if (sscanf(load, "%zu %zu", &count, &max) == 2 && count < max)
		room->found = 1;
}

/* 1 when another live daemon (by its lease) has room for a session. */
static int session_room_elsewhere(struct session_table *t)
{
	struct session_room room = {.t = t};
	long long cursor = 0;

	bus_key(room.own, sizeof(room.own), WIRE_KEY_ALIVE_PREFIX, t->daemon_id);
	for (int i = 0; i < 1000 && !room.found; i++) {
		cursor = bus_scan(t->bus, cursor, WIRE_KEY_ALIVE_PREFIX "*",
				  session_room_one, &room);
		if (cursor <= 0)
			break;
	}
	return room.found;
}

/* 1 when a session with these credentials lives on another daemon that
 * is alive (the same test adoption uses). */
static int session_held_elsewhere(struct session_table *t,
				  const uint8_t cred[32])
{
	char key[160], sid[WIRE_ID_HEX + 1], owner[128];

	if (bus_get(t->bus, session_cred_key(cred, key, sizeof(key)), sid,
		    sizeof(sid)) != 1 ||
	    bus_get(t->bus, bus_key(key, sizeof(key), WIRE_KEY_OWNER_PREFIX, sid),
		    owner, sizeof(owner)) != 1 ||
	    strcmp(owner, t->daemon_id) == 0)
		return 0;
	return record_owner_alive(t->bus, owner);
}

/* Another daemon may already be answering this login. */
static int session_claim(struct session_req *r)
{
	char key[128];
	int got = bus_set_nx(r->t->bus,
			     bus_key(key, sizeof(key), WIRE_KEY_CLAIM_PREFIX,
				     r->env.rid),
			     r->t->daemon_id, SESSION_CLAIM_MS);

	if (got == -1)
		session_fail(r, 503, "redis_unavailable", "cannot claim login");
	return got == 1 ? 0 : -1;
}

/* The login's credentials: a password, or a token (+ mechanism). */
static int session_login_cred(struct session_req *r, struct session_cred *c)
{
	const char *password = NULL, *token = NULL;

	c->mech = NULL;
	c->resource = NULL;
	if (json_unpack(r->env.body, "{s:s, s?:s, s?:s, s?:s, s?:s}", "jid",
			&c->jid, "password", &password, "token", &token,
			"mechanism", &c->mech, "resource", &c->resource) == -1 ||
	    !password == !token) {
		session_fail(r, 400, "bad_request",
			     "login needs jid and a password or a token");
		return -1;
	}
	c->secret = password ? password : token;
	if (token && !c->mech)
		c->mech = "";
	if (c->mech && *c->mech && !sasl_is_token_mech(c->mech)) {
		session_reply(r, 400, envelope_error("bad_value", "unknown mechanism",
						     "mechanism"));
		return -1;
	}
	return 0;
}

static void session_call_login(struct session_req *r, struct session *unused)
{
	struct session_table *t = r->t;
	struct session_cred c;
	char token[WIRE_TOKEN_B64 + 1];
	uint8_t cred[32];

	(void)unused;
	if (session_login_cred(r, &c) == -1)
		return;
	session_cred_digest(t, &c, cred);
	struct session *s = session_find_login(t, c.jid, cred, c.resource);
	/* Every daemon hears each login: one whose session lives elsewhere,
	 * or that is full while another has room, is left to the other. */
	int elsewhere = !s && session_held_elsewhere(t, cred);
	seal_wipe(cred, sizeof(cred));
	if (elsewhere || (!s && t->count >= (size_t)t->cfg->daemon_max_sessions &&
			  session_room_elsewhere(t))) {
		r->answered = 1;
		return;
	}
	if (session_claim(r) == -1)
		return;
	if (s) {
		session_reuse(r, s);
		return;
	}
	if (t->count >= (size_t)t->cfg->daemon_max_sessions) {
		session_fail(r, 503, "daemon_full",
			     "this daemon carries all the sessions it can");
		return;
	}
	if (!c.resource)
		c.resource = t->cfg->xmpp_resource;
	if (!(s = session_new(t, NULL, &c))) {
		session_fail(r, 503, "overloaded", "cannot start a session");
		return;
	}
	if (session_connect(s) == -1) {
		s->state = SESSION_DEAD;
		session_fail(r, 502, "xmpp_error",
			     "cannot reach the XMPP server of that domain");
		return;
	}
	seal_new_token(token);
	session_add_waiter(s, &r->env, token);
	seal_wipe(token, sizeof(token));
	r->answered = 1;
	log_info("session %s: connecting %s%s", s->sid, c.jid,
		 c.mech ? " with a token" : "");
}

static void session_call_logout(struct session_req *r, struct session *s)
{
	session_end(s, "logout");
	session_reply(r, 200, json_object());
}

/* Calls that need the stream answer 503 while it reconnects. */
static int session_offline(struct session_req *r, const struct session *s)
{
	if (s->state == SESSION_ONLINE)
		return 0;
	session_fail(r, 503, "session_offline",
		     "the XMPP stream is reconnecting; try again");
	return 1;
}

static uint64_t session_sent_digest(const struct session *s, const char *id)
{
	uint8_t d[32];
	uint64_t v;

	seal_digest2(d, s->t->sent_key, s->sid, id);
	memcpy(&v, d, sizeof(v));
	return v;
}

/* A retry of a message this daemon sent lately. */
static int session_sent_before(const struct session *s, const char *id)
{
	uint64_t v = session_sent_digest(s, id);

	for (size_t i = 0; i < SESSION_SENT_IDS; i++)
		if (s->t->sent_ids[i] == v)
			return 1;
	return 0;
}

/*
 * Remembers a sent message's client id, here and in Redis for a day, so
 * that a retry gets the first answer and is not sent again. Written after
 * the send: a daemon killed in between lets a retry send it twice rather
 * than never (receivers deduplicate by id).
 */
static void session_note_sent(struct session *s, const char *id)
{
	struct session_table *t = s->t;
	char key[WIRE_ID_HEX + 256];

	t->sent_ids[t->sent_next] = session_sent_digest(s, id);
	t->sent_next = (t->sent_next + 1) % SESSION_SENT_IDS;
	snprintf(key, sizeof(key), "%s%s:%s", WIRE_KEY_IDEM_PREFIX, s->sid, id);
	if (bus_set_ahead(t->bus, key, "1", 1, WIRE_IDEM_TTL_S * 1000LL) == -1)
		log_error("session %s: message id not remembered", s->sid);
}

/*
 * The server is behind on s's stream, or earlier messages of s wait: the
 * request waits its turn (park.h). Returns 1 when parked (answered once
 * handled again) or refused.
 */
static int session_must_wait(struct session_req *r, struct session *s)
{
	if ((!s->parked || r->t->unparking) && !client_congested(s->client))
		return 0;
	if (s->parked >= SESSION_PARK_MAX ||
	    park_put(r->t->park, s, r->env.deadline_ms, r->raw, r->raw_len) == -1) {
		session_fail(r, 503, "overloaded",
			     "the XMPP server is behind on this session; try again");
		return 1;
	}
	s->parked++;
	r->answered = 1;
	return 1;
}

static void session_call_message(struct session_req *r, struct session *s)
{
	const char *to, *body = NULL, *id = NULL, *state = NULL;
	char gen[WIRE_ID_HEX + 1];

	if (json_unpack(r->env.body, "{s:s, s?:s, s?:s, s?:s}", "to", &to,
			"body", &body, "id", &id, "state", &state) == -1) {
		session_fail(r, 400, "bad_request", "message needs to");
		return;
	}
	if (session_offline(r, s))
		return;
	if (id && session_sent_before(s, id)) {
		session_reply(r, 200, json_pack("{s:s}", "id", id));
		return;
	}
	if (session_must_wait(r, s))
		return;
	const char *mid = id ? id : (seal_random_id(gen), gen);
	char bare[JID_MAX + 1];
	int otr = jid_bare(to, bare, sizeof(bare)) == 0 && inbox_otr(s->inbox, bare);
	if (client_send_message(s->client, to, mid, body, state, otr) == -1) {
		session_fail(r, 502, "xmpp_error", "the message was not sent");
		return;
	}
	if (id)
		session_note_sent(s, id);
	session_reply(r, 200, json_pack("{s:s}", "id", mid));
}

static void session_call_presence(struct session_req *r, struct session *s)
{
	const char *show, *status = "";

	if (json_unpack(r->env.body, "{s:s, s?:s}", "show", &show, "status",
			&status) == -1) {
		session_fail(r, 400, "bad_request", "presence needs show");
		return;
	}
	if (session_set_status(s, status) == -1) {
		session_fail(r, 503, "overloaded", "out of memory");
		return;
	}
	snprintf(s->show, sizeof(s->show), "%s", show);
	s->idle = SESSION_ACTIVE;
	if (s->state == SESSION_ONLINE &&
	    client_send_presence(s->client, s->show, s->status) == -1) {
		session_fail(r, 502, "xmpp_error", "presence was not sent");
		return;
	}
	/* While reconnecting, the new presence goes out once back online. */
	s->dirty = 1;
	session_reply(r, 200, json_object());
}

static void session_call_roster(struct session_req *r, struct session *s)
{
	json_t *contacts = roster_contacts(s->roster);

	if (!contacts) {
		session_fail(r, 503, "overloaded", "out of memory");
		return;
	}
	json_t *requests = roster_requests(s->roster);
	if (!requests) {
		json_decref(contacts);
		session_fail(r, 503, "overloaded", "out of memory");
		return;
	}
	session_reply(r, 200, json_pack("{s:o, s:o}", "contacts", contacts,
					"requests", requests));
}

/* The bare JID of the call's "jid", or NULL after answering 400. */
static const char *session_contact_jid(struct session_req *r,
				       const struct session *s,
				       char bare[JID_MAX + 1])
{
	const char *jid = json_string_value(json_object_get(r->env.body, "jid"));

	if (!jid || jid_bare(jid, bare, JID_MAX + 1) == -1) {
		session_reply(r, 400, envelope_error("bad_jid", "not a JID", "jid"));
		return NULL;
	}
	if (strcmp(bare, s->jid) == 0) {
		session_reply(r, 400, envelope_error("bad_jid",
						     "that is your own JID", "jid"));
		return NULL;
	}
	return bare;
}

static void session_call_photo(struct session_req *r, struct session *s)
{
	char bare[JID_MAX + 1];
	struct session_iqwait *w;

	if (!session_contact_jid(r, s, bare) || session_offline(r, s))
		return;
	if (!(w = session_wait(s, r, SESSION_WAIT_PHOTO))) {
		session_fail(r, 503, "busy", "too many requests wait for replies");
		return;
	}
	if (query_vcard(s->client, bare, w->id) == -1) {
		session_fail(r, 502, "xmpp_error", "the vCard request was not sent");
		return;
	}
	session_wait_commit(s, r);
}

static void session_call_jingle(struct session_req *r, struct session *s)
{
	struct session_iqwait *w;

	if (session_offline(r, s))
		return;
	if (!(w = session_wait(s, r, SESSION_WAIT_JINGLE))) {
		session_fail(r, 503, "busy", "too many requests wait for replies");
		return;
	}
	if (query_services(s->client, w->id) == -1) {
		session_fail(r, 502, "xmpp_error", "the request was not sent");
		return;
	}
	session_wait_commit(s, r);
}

/* Approving asks back too: IM users expect a mutual contact. */
static void session_contact_answer(struct session_req *r, struct session *s,
				   const char *bare, int approve)
{
	const char *sub = roster_subscription(s->roster, bare);
	int have = sub && (strcmp(sub, "to") == 0 || strcmp(sub, "both") == 0);
	int ok = client_send_subscription(s->client, bare,
					  approve ? "subscribed"
						  : "unsubscribed") == 0;

	if (ok && approve && !have)
		ok = client_send_subscription(s->client, bare, "subscribe") == 0;
	roster_request_remove(s->roster, bare);
	if (ok)
		session_reply(r, 200, json_object());
	else
		session_fail(r, 502, "xmpp_error", "the answer was not sent");
}

/* The strings of a JSON array (checked by the handler), at most max. */
static size_t session_strings(json_t *a, const char **v, size_t max)
{
	size_t n = 0, i;
	json_t *e;

	json_array_foreach(a, i, e) if (n < max && json_is_string(e))
		v[n++] = json_string_value(e);
	return n;
}

/* rename and regroup keep what they do not change; both need a contact. */
static int session_contact_keep(struct session_req *r, json_t *old,
				const char *action, const char **name,
				json_t **groups)
{
	int rename = strcmp(action, "rename") == 0;

	if (!old) {
		session_fail(r, 404, "not_in_roster", "that JID is not a contact");
		return -1;
	}
	if (rename ? !*name : !json_is_array(*groups)) {
		session_reply(r, 400, envelope_error(
			"missing_field", "rename needs name, regroup groups",
			rename ? "name" : "groups"));
		return -1;
	}
	if (rename)
		*groups = json_object_get(old, "groups");
	else
		*name = json_string_value(json_object_get(old, "name"));
	return 0;
}

static void session_contact_roster(struct session_req *r, struct session *s,
				   const char *bare, const char *action)
{
	json_t *old = roster_get(s->roster, bare);
	const char *name = json_string_value(json_object_get(r->env.body, "name"));
	json_t *groups = json_object_get(r->env.body, "groups");
	int remove = strcmp(action, "remove") == 0;
	const char *gv[32];
	struct session_iqwait *w;

	if (remove && !old) {
		session_fail(r, 404, "not_in_roster", "that JID is not a contact");
		return;
	}
	if (!remove && strcmp(action, "add") != 0 &&
	    session_contact_keep(r, old, action, &name, &groups) == -1)
		return;
	if (!(w = session_wait(s, r, SESSION_WAIT_CONTACT))) {
		session_fail(r, 503, "busy", "too many requests wait for replies");
		return;
	}
	if (query_roster_set(s->client, bare, name, gv,
			     session_strings(groups, gv, 32), remove,
			     w->id) == -1) {
		session_fail(r, 502, "xmpp_error", "the roster change was not sent");
		return;
	}
	/* The server handles the roster set first, then the request. */
	if (strcmp(action, "add") == 0)
		client_send_subscription(s->client, bare, "subscribe");
	if (remove)
		roster_request_remove(s->roster, bare);
	session_wait_commit(s, r);
}

static void session_call_contact(struct session_req *r, struct session *s)
{
	static const char *const actions[] = {"add",	 "remove", "approve",
					      "deny", "rename", "regroup"};
	const char *action =
		json_string_value(json_object_get(r->env.body, "action"));
	char bare[JID_MAX + 1];
	size_t i = 0;

	while (action && i < 6 && strcmp(action, actions[i]) != 0)
		i++;
	if (i == 6 || !action) {
		session_reply(r, 400, envelope_error("bad_value", "unknown action",
						     "action"));
		return;
	}
	if (!session_contact_jid(r, s, bare) || session_offline(r, s))
		return;
	if (i == 2 || i == 3)
		session_contact_answer(r, s, bare, i == 2);
	else
		session_contact_roster(r, s, bare, action);
}

/* Answers with what an inbox call returned. */
static void session_answer(struct session_req *r, int status, json_t *answer)
{
	if (!answer)
		session_fail(r, 503, "overloaded", "out of memory");
	else
		session_reply(r, status, answer);
}

static struct session *session_by_sid(struct session_table *t,
				      const char *sid)
{
	for (struct session *s = t->head; s; s = s->next)
		if (s->state != SESSION_DEAD && strcmp(s->sid, sid) == 0)
			return s;
	return NULL;
}

static void session_call_register(struct session_req *r, struct session *s)
{
	char taken_from[WIRE_ID_HEX + 1];
	json_t *answer = NULL;
	int status = inbox_call_register(s->inbox, r->env.body, &answer,
					 taken_from);

	if (taken_from[0]) {
		/* A session of another daemon notices when it next pushes. */
		struct session *old = session_by_sid(r->t, taken_from);
		if (old)
			inbox_push_taken(old->inbox);
	}
	if (status == 200 && answer) {
		json_object_set_new(answer, "jid", json_string(session_bound(s)));
		session_save(s);
	}
	session_answer(r, status, answer);
}

/* Kept for the admin in a capped list; never logged (it may quote text). */
static void session_call_crashreport(struct session_req *r, struct session *s)
{
	const char *text = json_string_value(json_object_get(r->env.body,
							     "exception"));
	json_t *o;
	char *dump;

	if (!text) {
		session_fail(r, 400, "bad_request", "crashreport needs exception");
		return;
	}
	o = json_pack("{s:I, s:s, s:s}", "time_ms", (json_int_t)session_now(),
		      "jid", s->jid, "exception", text);
	dump = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!dump || bus_push_capped(r->t->bus, WIRE_KEY_CRASHREPORTS, dump,
				     strlen(dump), WIRE_CRASHREPORTS_MAX) == -1)
		session_fail(r, 503, "redis_unavailable", "not stored; try again");
	else
		session_reply(r, 200, json_object());
	free(dump);
	log_info("session %s: crash report stored", s->sid);
}

static void session_call_rawiq(struct session_req *r, struct session *s)
{
	const char *xml = json_string_value(json_object_get(r->env.body, "xml"));
	int wait = json_is_true(json_object_get(r->env.body, "wait"));
	char id[CLIENT_IQ_ID_MAX + 1];
	const char *why = NULL;

	if (!xml) {
		session_fail(r, 400, "bad_request", "rawiq needs xml");
		return;
	}
	if (session_offline(r, s))
		return;
	struct session_iqwait *w = wait ? session_wait(s, r, SESSION_WAIT_RAWIQ)
					: NULL;
	if (wait && !w) {
		session_fail(r, 503, "busy", "too many iqs waiting for replies");
		return;
	}
	int sent = client_send_iq(s->client, xml, wait, id, &why);
	if (sent == -2) {
		session_reply(r, 400, envelope_error("bad_xml", why, "xml"));
		return;
	}
	if (sent == -1) {
		session_fail(r, 502, "xmpp_error", "the iq was not sent");
		return;
	}
	if (!wait) {
		session_reply(r, 200, json_pack("{s:s}", "id", id));
		return;
	}
	snprintf(w->id, sizeof(w->id), "%s", id);
	session_wait_commit(s, r);
}

/* Calls the inbox answers by itself: fn gives status and answer. */
typedef int (*session_inbox_fn)(struct inbox *ib, json_t *req, json_t **answer);

struct session_call {
	const char *name;
	void (*fn)(struct session_req *r, struct session *s);
	int needs_session;
	session_inbox_fn inbox;
	int changes_record; /* a 200 means the record must be saved */
	void (*after)(struct session *s); /* after a 200 */
};

static void session_send_receipt(void *ud, const char *to, const char *id)
{
	struct session *s = ud;

	if (client_send_receipt(s->client, to, id) == -1)
		log_warn("session %s: receipt for %s not sent", s->sid, to);
}

/* The phone has the messages it acknowledged: their senders may know. */
static void session_send_receipts(struct session *s)
{
	if (s->state == SESSION_ONLINE)
		inbox_take_receipts(s->inbox, session_send_receipt, s);
}

static const struct session_call session_calls[] = {
	{"login", session_call_login, 0, NULL, 0, NULL},
	{"logout", session_call_logout, 1, NULL, 0, NULL},
	{"message", session_call_message, 1, NULL, 0, NULL},
	{"presence", session_call_presence, 1, NULL, 0, NULL},
	{"roster", session_call_roster, 1, NULL, 0, NULL},
	{"register", session_call_register, 1, NULL, 0, NULL},
	{"crashreport", session_call_crashreport, 1, NULL, 0, NULL},
	{"rawiq", session_call_rawiq, 1, NULL, 0, NULL},
	{"photo", session_call_photo, 1, NULL, 0, NULL},
	{"jingle", session_call_jingle, 1, NULL, 0, NULL},
	{"contact", session_call_contact, 1, NULL, 0, NULL},
	{"key", NULL, 1, inbox_call_key, 0, NULL},
	{"notifications", NULL, 1, inbox_call_notifications, 1, NULL},
	/* An ack resets the unread counts and sends the receipts owed. */
	{"messagequeue", NULL, 1, inbox_call_messagequeue, 1,
	 session_send_receipts},
	{"otr", NULL, 1, inbox_call_otr, 1, NULL},
};

static void session_call_inbox(struct session_req *r, struct session *s,
			       const struct session_call *call)
{
	json_t *answer = NULL;
	int status = call->inbox(s->inbox, r->env.body, &answer);

	if (status == 200 && call->changes_record)
		s->dirty = 1;
	if (status == 200 && call->after)
		call->after(s);
	session_answer(r, status, answer);
}

/* A client request ends the idle timers' effect. */
static void session_touch(struct session *s)
{
	s->active_ms = session_now();
	if (s->idle != SESSION_ACTIVE && s->state == SESSION_ONLINE)
		client_send_presence(s->client, s->show, s->status);
	s->idle = SESSION_ACTIVE;
}

static void session_dispatch(struct session_req *r)
{
	const struct session_call *call = NULL;
	struct session *s = NULL;

	for (size_t i = 0; i < sizeof(session_calls) / sizeof(session_calls[0]); i++)
		if (strcmp(session_calls[i].name, r->env.call) == 0)
			call = &session_calls[i];
	if (!call) {
		session_fail(r, 404, "not_found", "no such call");
		return;
	}
	if (call->needs_session) {
		s = session_by_token(r->t, r->env.th);
		if (!s) {
			session_fail(r, 401, "unknown_token",
				     "this token is unknown or was logged out");
			return;
		}
		session_touch(s);
	}
	if (call->inbox)
		session_call_inbox(r, s, call);
	else
		call->fn(r, s);
}

void session_table_handle(struct session_table *t, const char *msg,
			  size_t len)
{
	struct session_req r = {.t = t, .raw = msg, .raw_len = len};
	char err[128];

	if (envelope_decode_request(msg, len, &r.env, err, sizeof(err)) == -1) {
		log_error("dropped a request from the bus: %s", err);
		return;
	}
	if (r.env.deadline_ms < session_now()) {
		log_info("%s %s: dropped, its caller gave up", r.env.call, r.env.rid);
	} else {
		session_dispatch(&r);
		if (!r.answered)
			log_error("%s %s: no answer given", r.env.call, r.env.rid);
	}
	envelope_clear(&r.env);
}

/* ---- timers ---- */

static void session_idle(struct session *s, int64_t now)
{
	const struct config *cfg = s->t->cfg;
	int64_t quiet = (now - s->active_ms) / 1000;
	int chosen_away = strcmp(s->show, "available") != 0 &&
			  strcmp(s->show, "chat") != 0;

	if (quiet >= (int64_t)cfg->idle_away_after + cfg->idle_xa_after +
			     cfg->idle_logout_after) {
		session_end(s, "idle");
	} else if (quiet >= (int64_t)cfg->idle_away_after + cfg->idle_xa_after &&
		   s->idle != SESSION_AUTO_XA) {
		s->idle = SESSION_AUTO_XA;
		if (strcmp(s->show, "invisible") != 0 &&
		    strcmp(s->show, "unavailable") != 0)
			client_send_presence(s->client, "xa", s->status);
	} else if (quiet >= cfg->idle_away_after && s->idle == SESSION_ACTIVE) {
		s->idle = SESSION_AUTO_AWAY;
		if (!chosen_away)
			client_send_presence(s->client, "away", s->status);
	}
}

static void session_tick_one(struct session *s, int64_t now)
{
	if (s->state == SESSION_CONNECTING && s->nwaiters &&
	    s->waiters[0].deadline_ms < now) {
		log_info("session %s: login timed out", s->sid);
		session_login_failed(s, CLIENT_ERR_NETWORK);
		/* A login still waiting for its turn has no stream to close. */
		s->state = s->connect_later ? SESSION_DEAD : SESSION_CLOSING;
		client_disconnect(s->client);
	} else if (s->state == SESSION_CONNECTING && s->connect_later) {
		if (session_connect(s) == -1) {
			session_login_failed(s, CLIENT_ERR_NETWORK);
			s->state = SESSION_DEAD;
		}
	} else if (s->state == SESSION_RECONNECTING && now >= s->reconnect_at_ms &&
		   s->t->negotiating < (size_t)s->t->cfg->xmpp_max_connecting) {
		log_info("session %s: reconnecting", s->sid);
		s->reconnect_at_ms = now + SESSION_BACKOFF_MAX_MS;
		if (session_connect(s) == -1)
			session_schedule_reconnect(s);
	} else if (s->state == SESSION_ONLINE) {
		session_idle(s, now);
	}
	if (s->niqwaits)
		session_fail_iqs(s, now, 504, "timeout",
				 "no reply to the iq in time");
	if (s->state != SESSION_DEAD)
		inbox_tick(s->inbox);
	if (s->dirty && s->state != SESSION_DEAD && s->state != SESSION_CLOSING &&
	    s->ntokens && now - s->saved_ms >= SESSION_SAVE_DELAY_MS)
		session_save(s);
}

/* ---- restoring sessions from their records ---- */

/* The stream the previous daemon left, to be resumed (absent: none). */
static int session_restore_stream(struct session *s, const json_t *stream)
{
	const char *id, *bound;
	json_int_t in;

	if (!stream)
		return 0;
	if (json_unpack((json_t *)stream, "{s:s, s:s, s:I}", "id", &id, "bound",
			&bound, "h", &in) == -1 ||
	    in < 0 || in > UINT32_MAX)
		return -1;
	return client_adopt_stream(s->client, id, bound, (uint32_t)in);
}

static int session_restore_fields(struct session *s, json_t *o)
{
	json_t *tokens, *inbox, *th;
	const char *show, *status;
	size_t i;

	if (json_unpack(o, "{s:o, s:s, s:s, s:o}", "tokens", &tokens, "show",
			&show, "status", &status, "inbox", &inbox) == -1 ||
	    inbox_import(s->inbox, inbox) == -1)
		return -1;
	if (session_set_status(s, status) == -1)
		return -1;
	snprintf(s->show, sizeof(s->show), "%s", show);
	json_array_foreach(tokens, i, th)
	{
		const char *h = json_string_value(th);
		if (h && strlen(h) == WIRE_TOKEN_HASH_HEX)
			session_add_th(s, h); /* a full or failed map: skipped */
	}
	if (!s->ntokens)
		return -1;
	return session_restore_stream(s, json_object_get(o, "stream"));
}

static struct session *session_restore(struct session_table *t,
				       const char *sid, json_t *o)
{
	struct session_cred c = {0};
	struct session *s;

	if (json_unpack(o, "{s:s, s:s, s:s, s?:s}", "jid", &c.jid, "password",
			&c.secret, "resource", &c.resource, "mechanism",
			&c.mech) == -1)
		return NULL;
	if (!(s = session_new(t, sid, &c)))
		return NULL;
	if (session_restore_fields(s, o) == -1) {
		s->state = SESSION_DEAD;
		return NULL;
	}
	/* Back as a stream that broke: calls answer, messages wait for the
	 * connection the first tick opens. */
	s->state = SESSION_RECONNECTING;
	s->reconnect_at_ms = 0; /* due in the tick that restored it */
	return s;
}

static void session_adopt(void *ud, const char *sid)
{
	struct session_table *t = ud;
	json_t *o;

	if (session_by_sid(t, sid))
		return;
	for (size_t i = 0; i < t->nbad; i++)
		if (strcmp(t->bad[i], sid) == 0)
			return;
	if (t->count >= (size_t)t->cfg->daemon_max_sessions) {
		log_warn("session %s not restored: this daemon is full", sid);
		return;
	}
	if (!(o = record_load(t->bus, t->master, sid))) {
		/* Left in Redis for an admin to look at; not tried again. */
		if (t->nbad < SESSION_BAD_RECORDS)
			memcpy(t->bad[t->nbad++], sid, WIRE_ID_HEX + 1);
		return;
	}
	if (session_restore(t, sid, o))
		log_info("session %s restored from its record", sid);
	else
		log_error("session %s: record malformed; not restored", sid);
	json_decref(o);
}

/*
 * Every SESSION_ADOPT_MS a pass over all records, one SCAN step every
 * SESSION_ADOPT_STEP_MS so that no pass holds the loop (thousands of
 * records took a few hundred ms at once). The first pass after start
 * runs whole: restoring sessions comes before anything else.
 */
static void session_adopt_orphans(struct session_table *t, int64_t now)
{
	long n = 0;

	if (!t->adopt_cursor) {
		if (now < t->adopt_ms)
			return;
		t->adopt_ms = now + SESSION_ADOPT_MS;
	} else if (now < t->adopt_step_ms) {
		return;
	}
	t->adopt_step_ms = now + SESSION_ADOPT_STEP_MS;
	if (!t->adopted_once) {
		n = record_adopt_orphans(t->bus, t->daemon_id, session_adopt, t);
		t->adopted_once = n != -1;
	} else {
		n = record_adopt_step(t->bus, t->daemon_id, &t->adopt_cursor,
				      session_adopt, t);
	}
	if (n > 0)
		log_info("adopted %ld sessions whose daemon is gone", n);
}

/* The push thread's verdicts that change a session: dead registrations. */
static void session_push_results(struct session_table *t)
{
	struct push_result *res =
		t->env.push ? push_take_results(t->env.push) : NULL;

	for (struct push_result *p = res; p; p = p->next) {
		struct session *s;
		if (p->outcome == PUSH_GONE && (s = session_by_sid(t, p->sid)))
			inbox_push_gone(s->inbox, p->url);
	}
	push_result_free(res);
}

static void session_renew_lease(struct session_table *t, int64_t now)
{
	char key[128];

	if (now < t->lease_renew_ms)
		return;
	char load[64];
	int n;

	t->lease_renew_ms = now + SESSION_LEASE_MS / 3;
	bus_key(key, sizeof(key), WIRE_KEY_ALIVE_PREFIX, t->daemon_id);
	/* The load rides on the lease: a full daemon looks for room here. */
	n = snprintf(load, sizeof(load), "%zu %d", t->count,
		     t->cfg->daemon_max_sessions);
	if (bus_set(t->bus, key, load, (size_t)n, SESSION_LEASE_MS) == -1)
		log_warn("daemon lease not renewed");
}

/* A parked request may go when its stream has room, or is down (the
 * request is then answered as any that finds it down). */
static int session_unpark_ready(void *arg, void *owner)
{
	const struct session *s = owner;

	(void)arg;
	return s->state != SESSION_ONLINE || !client_congested(s->client);
}

static void session_unpark_take(void *arg, void *owner, const char *msg,
				size_t len)
{
	struct session_table *t = arg;
	struct session *s = owner;

	if (s)
		s->parked--;
	t->unparking = 1;
	session_table_handle(t, msg, len);
	t->unparking = 0;
}

void session_table_tick(struct session_table *t)
{
	int64_t now = session_now();
	struct session **pp = &t->head;

	if (park_any(t->park))
		park_run(t->park, now, session_unpark_ready, session_unpark_take, t);
	session_renew_lease(t, now);
	session_adopt_orphans(t, now);
	session_push_results(t);
	if (now < t->walk_due_ms && !t->walk_now)
		return;
	t->walk_due_ms = now + SESSION_WALK_MS;
	t->walk_now = 0;
	while (*pp) {
		struct session *s = *pp;
		session_tick_one(s, now);
		if (s->state == SESSION_DEAD) {
			*pp = s->next;
			t->count--;
			t->lease_renew_ms = 0;
			session_free(s);
		} else {
			pp = &s->next;
		}
	}
}

struct session_table *session_table_new(const struct config *cfg,
					struct client_ctx *cx, struct bus *bus,
					struct push *push,
					const char *daemon_id)
{
	struct session_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->cfg = cfg;
	t->cx = cx;
	t->bus = bus;
	t->env = (struct inbox_env){.cfg = cfg, .bus = bus, .push = push};
	t->daemon_id = daemon_id;
	if (!(t->tokens = tokenmap_new()) || !(t->park = park_new())) {
		session_table_free(t);
		return NULL;
	}
	if (!cfg->daemon_key_file[0]) {
		log_error("daemon.key_file is not set: create the master key "
			  "with talkproxy-keygen master FILE");
		session_table_free(t);
		return NULL;
	}
	if (seal_keyfile_load(cfg->daemon_key_file, "master key", t->master) ==
	    -1) {
		session_table_free(t);
		return NULL;
	}
	/* Every daemon sharing the master key computes the same credential
	 * digests, so one can tell a login belongs to another's session. */
	seal_digest2(t->cred_key, t->master, "talkproxy credential digest", "");
	seal_random(t->sent_key, sizeof(t->sent_key));
	return t;
}

/*
 * One session at shutdown: a stream the server would resume is left to
 * the successor once the server has what was sent on it (or at the last
 * call), its record written with what resumption needs; freeing it then
 * drops the connection without ending the stream, and the server keeps it
 * for its hibernation time. Any other stream is closed: contacts see the
 * user leave, and the successor logs in anew.
 */
static void session_hand_off(struct session *s, int last)
{
	const char *id, *bound;
	uint32_t in;

	if (s->state == SESSION_RECONNECTING) {
		s->state = SESSION_DEAD;
		return;
	}
	if (s->state != SESSION_ONLINE && s->state != SESSION_CONNECTING)
		return;
	client_resumption(s->client, &id, &bound, &in);
	if (s->state == SESSION_CONNECTING || !id || !s->ntokens) {
		s->state = SESSION_CLOSING;
		client_disconnect(s->client);
		return;
	}
	if (!last && !client_settled(s->client))
		return;
	session_save(s); /* a failure is logged: the successor binds anew */
	s->state = SESSION_DEAD;
}

size_t session_table_hand_off(struct session_table *t, int last)
{
	size_t open = 0;

	for (struct session *s = t->head; s; s = s->next) {
		session_hand_off(s, last);
		if (s->state == SESSION_CLOSING || s->state == SESSION_ONLINE)
			open++;
	}
	return open;
}

int session_table_flush(struct session_table *t)
{
	inbox_flush(&t->env);
	return bus_flush(t->bus);
}

void session_table_free(struct session_table *t)
{
	if (!t)
		return;
	while (t->head) {
		struct session *s = t->head;
		t->head = s->next;
		session_free(s);
	}
	tokenmap_free(t->tokens);
	park_free(t->park);
	seal_wipe(t->cred_key, sizeof(t->cred_key));
	seal_wipe(t->sent_key, sizeof(t->sent_key));
	seal_wipe(t->master, sizeof(t->master));
	free(t);
}

size_t session_table_count(const struct session_table *t)
{
	return t->count;
}
