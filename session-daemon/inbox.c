/* inbox.c: incoming messages, the sealed queue and pushes (inbox.h). */
#include "inbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "client.h"
#include "config.h"
#include "envelope.h"
#include "jid.h"
#include "log.h"
#include "payload.h"
#include "pushaddr.h"
#include "seal.h"

/* Senders with their own unread count (MPNS secondary tiles). */
#define INBOX_SENDERS 64
#define INBOX_TILES 32
/* Contacts whose conversation is off the record. */
#define INBOX_OTR 256
/* Sealed items of one session not stored yet: those of this loop pass,
 * or those kept while Redis is down. */
#define INBOX_PENDING_MAX 200
/* One messagequeue answer: at most this many items and about this many
 * bytes, so it crosses Redis and the handler comfortably. */
#define INBOX_READ_ITEMS 100
/* Receipts owed for messages the phone has not acknowledged yet. */
#define INBOX_RECEIPTS 64
#define INBOX_READ_BYTES (256 * 1024)

struct inbox_reg {
	struct push_target target; /* target.url points to url */
	char *url;
	char url_key[sizeof(WIRE_KEY_PUSH_PREFIX) + WIRE_TOKEN_HASH_HEX];
	char *tiles[INBOX_TILES];
	size_t ntiles;
};

/* Allocated per sender: a fixed JID buffer would cost 3 KiB each in every
 * session, used or not. */
struct inbox_sender {
	char *jid;
	int unread;
};

/* A message Redis did not take yet, with what its push needs. */
struct inbox_pending {
	struct inbox_pending *next;
	uint8_t *item;
	size_t len;
	char dedup[64];
	const char *kind; /* static: the payload's kind, the push's type */
	int counts;       /* a chat message: counts as unread */
	enum push_class cls;
	char *push_b64;
	char *from, *title, *text; /* text NULL: never a visible notification */
	char *receipt_to, *receipt_id; /* XEP-0184 receipt owed once acked */
};

/* A receipt to send when the phone acknowledges queue item qid. */
struct inbox_receipt {
	char qid[BUS_QID_MAX];
	char *to, *id;
};

struct inbox {
	struct inbox_env *env;
	char sid[WIRE_ID_HEX + 1];
	uint8_t key[SEAL_KEY_BYTES];
	int registered;
	struct inbox_reg reg;
	int toast, tile, secondary_tile;
	int unread;
	/* INBOX_SENDERS of them, allocated with the first unread message. */
	struct inbox_sender *senders;
	size_t nsenders;
	/* In arrival order; stored by inbox_flush() while on env->staged. */
	struct inbox_pending *pending, **pending_tail;
	size_t npending;
	int staged;
	struct inbox *staged_next;
	char **otr; /* INBOX_OTR bare JIDs, allocated on first use */
	size_t notr;
	struct inbox_receipt *receipts; /* INBOX_RECEIPTS, on first use */
	size_t nreceipts;
	char acked[BUS_QID_MAX]; /* the last cursor the phone acknowledged */
};

struct inbox *inbox_new(struct inbox_env *env, const char *sid)
{
	struct inbox *ib = calloc(1, sizeof(*ib));

	if (!ib)
		return NULL;
	ib->env = env;
	ib->pending_tail = &ib->pending;
	snprintf(ib->sid, sizeof(ib->sid), "%s", sid);
	seal_random(ib->key, sizeof(ib->key));
	ib->toast = ib->tile = ib->secondary_tile = 1;
	return ib;
}

static void inbox_reg_free(struct inbox_reg *reg)
{
	free(reg->url);
	for (size_t i = 0; i < reg->ntiles; i++)
		free(reg->tiles[i]);
	seal_wipe(reg, sizeof(*reg));
}

static void inbox_reg_clear(struct inbox *ib)
{
	inbox_reg_free(&ib->reg);
	ib->registered = 0;
}

static void inbox_pending_free(struct inbox_pending *p)
{
	free(p->item);
	free(p->push_b64);
	free(p->from);
	if (p->text)
		seal_wipe(p->text, strlen(p->text));
	free(p->text);
	free(p->title);
	free(p->receipt_to);
	free(p->receipt_id);
	free(p);
}

static void inbox_receipt_free(struct inbox_receipt *r)
{
	free(r->to);
	free(r->id);
	r->to = r->id = NULL;
}

/* ---- items not stored yet ---- */

/* Puts ib on the list inbox_flush() stores, once. */
static void inbox_stage(struct inbox *ib)
{
	if (ib->staged || !ib->pending)
		return;
	ib->staged = 1;
	ib->staged_next = ib->env->staged;
	ib->env->staged = ib;
}

static void inbox_drop_pending(struct inbox *ib)
{
	struct inbox **pp = &ib->env->staged;

	if (ib->staged) {
		while (*pp != ib)
			pp = &(*pp)->staged_next;
		*pp = ib->staged_next;
		ib->staged = 0;
	}
	while (ib->pending) {
		struct inbox_pending *p = ib->pending;
		ib->pending = p->next;
		inbox_pending_free(p);
	}
	ib->pending_tail = &ib->pending;
	ib->npending = 0;
}

static int inbox_add_sender(struct inbox *ib, const char *jid, int unread)
{
	struct inbox_sender *s;

	if (ib->nsenders == INBOX_SENDERS)
		return -1;
	if (!ib->senders &&
	    !(ib->senders = calloc(INBOX_SENDERS, sizeof(*ib->senders))))
		return -1;
	s = &ib->senders[ib->nsenders];
	if (!(s->jid = strdup(jid)))
		return -1;
	s->unread = unread;
	ib->nsenders++;
	return 0;
}

static void inbox_clear_senders(struct inbox *ib)
{
	for (size_t i = 0; i < ib->nsenders; i++)
		free(ib->senders[i].jid);
	ib->nsenders = 0;
}

void inbox_free(struct inbox *ib)
{
	if (!ib)
		return;
	/* The server counts them delivered: store them while we can. */
	if (ib->pending)
		inbox_flush(ib->env);
	if (ib->npending)
		log_error("session %s: %zu incoming items not stored, lost",
			  ib->sid, ib->npending);
	inbox_drop_pending(ib);
	inbox_reg_clear(ib);
	for (size_t i = 0; i < ib->notr; i++)
		free(ib->otr[i]);
	for (size_t i = 0; i < ib->nreceipts; i++)
		inbox_receipt_free(&ib->receipts[i]);
	free(ib->receipts);
	free(ib->otr);
	inbox_clear_senders(ib);
	free(ib->senders);
	seal_wipe(ib->key, sizeof(ib->key));
	free(ib);
}

int inbox_otr(const struct inbox *ib, const char *jid)
{
	for (size_t i = 0; i < ib->notr; i++)
		if (strcmp(ib->otr[i], jid) == 0)
			return 1;
	return 0;
}

/* Turns OTR with jid on or off. 0, or -1 when the list is full. */
static int inbox_set_otr(struct inbox *ib, const char *jid, int on)
{
	for (size_t i = 0; i < ib->notr; i++) {
		if (strcmp(ib->otr[i], jid) != 0)
			continue;
		if (!on) {
			free(ib->otr[i]);
			ib->otr[i] = ib->otr[--ib->notr];
		}
		return 0;
	}
	if (!on)
		return 0;
	if (!ib->otr && !(ib->otr = calloc(INBOX_OTR, sizeof(*ib->otr))))
		return -1;
	if (ib->notr == INBOX_OTR || !(ib->otr[ib->notr] = strdup(jid)))
		return -1;
	ib->notr++;
	return 0;
}

/* Gives the URL back in Redis, unless another session took it since. */
static void inbox_unregister(struct inbox *ib)
{
	if (ib->registered &&
	    bus_del_if(ib->env->bus, ib->reg.url_key, ib->sid) == -1)
		log_warn("session %s: push URL record not removed", ib->sid);
	inbox_reg_clear(ib);
}

void inbox_delete(struct inbox *ib)
{
	/* Their queue goes: storing them would only bring it back. */
	inbox_drop_pending(ib);
	inbox_unregister(ib);
	if (bus_queue_delete(ib->env->bus, ib->sid) == -1)
		log_warn("session %s: queue not deleted; it expires", ib->sid);
}

void inbox_push_gone(struct inbox *ib, const char *url)
{
	if (!ib->registered || strcmp(ib->reg.url, url) != 0)
		return;
	log_info("session %s: push service says the registration is gone; "
		 "dropping it",
		 ib->sid);
	inbox_unregister(ib);
}

void inbox_push_taken(struct inbox *ib)
{
	if (!ib->registered)
		return;
	log_info("session %s: push URL registered by another session; "
		 "dropping it",
		 ib->sid);
	inbox_reg_clear(ib);
}

/* ---- incoming messages ---- */

static int inbox_count_sender(struct inbox *ib, const char *from)
{
	size_t i;

	ib->unread++;
	for (i = 0; i < ib->nsenders; i++)
		if (strcmp(ib->senders[i].jid, from) == 0)
			return ++ib->senders[i].unread;
	/* Past the cap, or without memory: counted in the total only. */
	inbox_add_sender(ib, from, 1);
	return 1;
}

static int inbox_has_tile(const struct inbox *ib, const char *from)
{
	for (size_t i = 0; i < ib->reg.ntiles; i++)
		if (strcmp(ib->reg.tiles[i], from) == 0)
			return 1;
	return 0;
}

static void inbox_push(struct inbox *ib, const struct inbox_pending *p,
		       enum push_class cls, int unread_from)
{
	int visible = p->text != NULL;
	struct push_job job = {
		.sid = ib->sid,
		.type = p->kind,
		.sealed = p->push_b64,
		.cls = cls,
		/* Typing and receipts go as raw pushes or not at all. */
		.toast = visible && ib->toast,
		.tile = visible && ib->tile,
		.secondary_tile = visible && ib->secondary_tile,
		.from = p->from,
		.title = p->title,
		.text = p->text,
		.unread = ib->unread,
		.unread_from = unread_from,
		.from_has_tile = inbox_has_tile(ib, p->from),
	};

	if (!ib->env->push || !p->push_b64)
		return;
	push_send(ib->env->push, &ib->reg.target, &job);
}

/* Remembers the receipt p's sender asked for, until qid is acked. */
static void inbox_owe_receipt(struct inbox *ib, const char *qid,
			      struct inbox_pending *p)
{
	struct inbox_receipt *r;

	if (!ib->receipts &&
	    !(ib->receipts = calloc(INBOX_RECEIPTS, sizeof(*ib->receipts)))) {
		log_warn("session %s: receipt for %s not kept: out of memory",
			 ib->sid, p->receipt_to);
		return;
	}
	if (ib->nreceipts == INBOX_RECEIPTS) {
		/* The oldest is dropped: its sender sees no receipt. */
		inbox_receipt_free(&ib->receipts[0]);
		memmove(ib->receipts, ib->receipts + 1,
			(INBOX_RECEIPTS - 1) * sizeof(ib->receipts[0]));
		ib->nreceipts--;
	}
	r = &ib->receipts[ib->nreceipts++];
	snprintf(r->qid, sizeof(r->qid), "%s", qid);
	r->to = p->receipt_to;
	r->id = p->receipt_id;
	p->receipt_to = p->receipt_id = NULL;
}

/* What Redis said of p: stored (and pushed now), a duplicate, or not
 * taken. Returns 1 when p is done with, 0 when it stays pending. */
static int inbox_stored(struct inbox *ib, struct inbox_pending *p,
			const struct bus_qadded *res)
{
	if (res->r == -1)
		return 0;
	if (res->r == 0) {
		log_info("session %s: duplicate %s from %s dropped", ib->sid,
			 p->kind, p->from);
		return 1;
	}
	log_debug("session %s: %s stored as %s", ib->sid, p->kind, res->id);
	int unread_from = p->counts ? inbox_count_sender(ib, p->from) : 0;
	if (p->receipt_to)
		inbox_owe_receipt(ib, res->id, p);
	if (ib->registered && !res->push_ok)
		inbox_push_taken(ib);
	if (ib->registered)
		inbox_push(ib, p, p->cls, unread_from);
	return 1;
}

/* Takes ib's answers, one per pending item in order; what Redis did not
 * take stays pending, in order, for the next try. Returns how many. */
static size_t inbox_take_answers(struct inbox *ib,
				 const struct bus_qadded *out)
{
	struct inbox_pending **pp = &ib->pending;
	size_t n = ib->npending, kept = 0;

	for (size_t i = 0; i < n; i++) {
		struct inbox_pending *p = *pp;
		if (!inbox_stored(ib, p, &out[i])) {
			pp = &p->next;
			kept++;
			continue;
		}
		*pp = p->next;
		inbox_pending_free(p);
	}
	ib->pending_tail = pp;
	ib->npending = kept;
	if (kept)
		log_warn("session %s: Redis did not take %zu items; kept in "
			 "memory",
			 ib->sid, kept);
	return n;
}

static void inbox_qadd(const struct inbox *ib, const struct inbox_pending *p,
		       struct bus_qadd *a)
{
	const struct config *cfg = ib->env->cfg;

	*a = (struct bus_qadd){
		.sid = ib->sid,
		.item = p->item,
		.len = p->len,
		.dedup = p->dedup[0] ? p->dedup : NULL,
		.push_key = ib->registered ? ib->reg.url_key : NULL,
		.max_items = cfg->queue_max_items,
		.max_age_ms = cfg->queue_max_age * 1000LL,
	};
}

void inbox_flush(struct inbox_env *env)
{
	struct inbox *ib, *next;
	size_t n = 0, i = 0;

	/* A staged inbox has items: an empty list is the only empty batch. */
	if (!env->staged)
		return;
	for (ib = env->staged; ib; ib = ib->staged_next)
		n += ib->npending;
	struct bus_qadd *a = calloc(n, sizeof(*a));
	struct bus_qadded *out = calloc(n, sizeof(*out));
	if (!a || !out) {
		log_error("out of memory storing %zu incoming items; they wait "
			  "for the next pass",
			  n);
		free(a);
		free(out);
		return;
	}
	for (ib = env->staged; ib; ib = ib->staged_next)
		for (struct inbox_pending *p = ib->pending; p; p = p->next)
			inbox_qadd(ib, p, &a[i++]);
	bus_queue_add(env->bus, a, n, out);
	log_debug("%zu incoming items stored in one round trip", n);
	/* Off the list before pushing, so that nothing below sees it half
	 * taken. */
	ib = env->staged;
	env->staged = NULL;
	for (i = 0; ib; ib = next) {
		next = ib->staged_next;
		ib->staged = 0;
		i += inbox_take_answers(ib, out + i);
	}
	free(a);
	free(out);
}

/* Seals pm as a queue item with what its push needs; text is the line a
 * visible notification shows (NULL: it is never shown). */
static struct inbox_pending *inbox_prepare(struct inbox *ib,
					   const struct payload_msg *pm,
					   const char *text)
{
	struct inbox_pending *p = calloc(1, sizeof(*p));
	char *json = p ? payload_json(pm, 0) : NULL;
	int ok = json && payload_seal(json, ib->key, &p->item, &p->len) == 0;

	if (json)
		seal_wipe(json, strlen(json));
	free(json);
	if (ok && ib->registered) {
		p->push_b64 = payload_push(pm, ib->key, p->item, p->len);
		if (text) {
			p->title = strdup(pm->name ? pm->name : pm->from);
			p->text = strdup(text);
		}
	}
	if (ok && !(p->from = strdup(pm->from)))
		ok = 0;
	if (!ok && p) {
		inbox_pending_free(p);
		return NULL;
	}
	p->kind = pm->kind;
	return p;
}

/* The id as the server's duplicate key: keyed, so Redis learns nothing. */
static void inbox_dedup(struct inbox *ib, const char *bare, const char *id,
			char out[64])
{
	uint8_t d[32];
	char *b64;

	out[0] = '\0';
	if (!id || !*id)
		return;
	seal_digest2(d, ib->key, bare, id);
	if ((b64 = seal_base64(d, sizeof(d), SEAL_B64URL))) {
		snprintf(out, 64, "%s", b64);
		free(b64);
	}
}

/* Keeps p to be stored with the loop pass's others (inbox_flush());
 * takes p. */
static int inbox_keep(struct inbox *ib, struct inbox_pending *p,
		      enum push_class cls)
{
	p->cls = cls;
	if (ib->npending == INBOX_PENDING_MAX)
		inbox_flush(ib->env); /* a long pass, or Redis is down */
	if (ib->npending == INBOX_PENDING_MAX) {
		log_error("session %s: Redis is down and %d items wait; "
			  "%s from %s lost",
			  ib->sid, INBOX_PENDING_MAX, p->kind, p->from);
		inbox_pending_free(p);
		return -1;
	}
	*ib->pending_tail = p;
	ib->pending_tail = &p->next;
	ib->npending++;
	inbox_stage(ib);
	return 0;
}

/* Keeps what a receipt needs: the full JID that asked, and the id. */
static int inbox_want_receipt(struct inbox_pending *p,
			      const struct client_message *m)
{
	p->receipt_to = strdup(m->from);
	p->receipt_id = strdup(m->id);
	return p->receipt_to && p->receipt_id ? 0 : -1;
}

int inbox_message(struct inbox *ib, const struct client_message *m,
		  const char *from_name, enum push_class cls, int receipt_ok)
{
	char bare[JID_MAX + 1];

	if (jid_bare(m->from, bare, sizeof(bare)) == -1)
		return 0;
	struct payload_msg pm;
	payload_from_message(&pm, m, bare, from_name,
			     m->nostore || inbox_otr(ib, bare));
	struct inbox_pending *p = inbox_prepare(
		ib, &pm, m->body ? (pm.otr ? "(OTR)" : m->body) : NULL);
	if (!p || (receipt_ok && m->body && m->want_receipt && m->id &&
		   inbox_want_receipt(p, m) == -1)) {
		log_error("session %s: %s from %s lost: out of memory",
			  ib->sid, pm.kind, bare);
		if (p)
			inbox_pending_free(p);
		return -1;
	}
	p->counts = m->body != NULL;
	/* Only messages are deduplicated: states and receipts repeat ids. */
	if (m->body)
		inbox_dedup(ib, bare, m->id, p->dedup);
	return inbox_keep(ib, p, cls);
}

int inbox_subscription(struct inbox *ib, const char *from, const char *name,
		       const char *status, enum push_class cls)
{
	struct payload_msg pm = {
		.kind = "subscribe",
		.from = from,
		.name = name,
		.type = "subscribe",
		.status = status,
	};
	struct inbox_pending *p =
		inbox_prepare(ib, &pm, "wants to add you as a contact");

	if (!p) {
		log_error("session %s: subscription request from %s lost: "
			  "out of memory",
			  ib->sid, from);
		return -1;
	}
	return inbox_keep(ib, p, cls);
}

/* Stream ids "ms-seq" in order: 1 when a <= b. */
static int inbox_qid_le(const char *a, const char *b)
{
	unsigned long long am = 0, as = 0, bm = 0, bs = 0;

	if (sscanf(a, "%llu-%llu", &am, &as) != 2 ||
	    sscanf(b, "%llu-%llu", &bm, &bs) != 2)
		return 0;
	return am < bm || (am == bm && as <= bs);
}

void inbox_take_receipts(struct inbox *ib,
			 void (*send)(void *ud, const char *to, const char *id),
			 void *ud)
{
	size_t kept = 0;

	for (size_t i = 0; i < ib->nreceipts; i++) {
		struct inbox_receipt *r = &ib->receipts[i];
		if (!ib->acked[0] || !inbox_qid_le(r->qid, ib->acked)) {
			ib->receipts[kept++] = *r;
			continue;
		}
		send(ud, r->to, r->id);
		inbox_receipt_free(r);
	}
	ib->nreceipts = kept;
}

void inbox_tick(struct inbox *ib)
{
	inbox_stage(ib);
}

/* ---- calls ---- */

static int inbox_fail(json_t **answer, int status, const char *code,
		      const char *field, const char *message)
{
	*answer = envelope_error(code, message, field);
	return status;
}

int inbox_call_key(struct inbox *ib, json_t *req, json_t **answer)
{
	char *b64 = seal_base64(ib->key, sizeof(ib->key), SEAL_B64);
	const char *vapid =
		ib->env->push ? push_vapid_public(ib->env->push) : NULL;

	(void)req;
	if (!b64)
		return inbox_fail(answer, 503, "overloaded", NULL,
				  "out of memory");
	*answer = json_pack("{s:s, s:s, s:s*}", "key", b64, "cipher",
			    "xchacha20poly1305-ietf", "vapid", vapid);
	seal_wipe(b64, strlen(b64));
	free(b64);
	return 200;
}

/* Reads keys.p256dh and keys.auth of a webpush registration. */
static int inbox_webpush_keys(struct inbox_reg *reg, json_t *keys,
			      json_t **answer)
{
	const char *p256dh = json_string_value(json_object_get(keys, "p256dh"));
	const char *auth = json_string_value(json_object_get(keys, "auth"));

	if (!p256dh || !auth)
		return inbox_fail(answer, 400, "missing_field", "keys",
				  "webpush needs keys.p256dh and keys.auth");
	if (webpush_decode_key(p256dh, reg->target.p256dh,
			       WEBPUSH_KEY_BYTES) == -1 ||
	    !webpush_key_valid(reg->target.p256dh))
		return inbox_fail(answer, 400, "bad_value", "keys.p256dh",
				  "p256dh is not a base64url P-256 public key");
	if (webpush_decode_key(auth, reg->target.auth, WEBPUSH_AUTH_BYTES) == -1)
		return inbox_fail(answer, 400, "bad_value", "keys.auth",
				  "auth is not 16 bytes of base64url");
	return 0;
}

static int inbox_tiles(struct inbox_reg *reg, json_t *tiles, json_t **answer)
{
	size_t i;
	json_t *t;
	char bare[JID_MAX + 1];

	json_array_foreach(tiles, i, t)
	{
		if (jid_bare(json_string_value(t), bare, sizeof(bare)) == -1)
			return inbox_fail(answer, 400, "bad_jid", "tiles",
					  "tiles holds a malformed JID");
		if (!(reg->tiles[reg->ntiles++] = strdup(bare)))
			return inbox_fail(answer, 503, "overloaded", NULL,
					  "out of memory");
	}
	return 0;
}

/* Builds a registration from the request into reg; 0 or an HTTP status. */
static int inbox_parse_reg(struct inbox *ib, json_t *req,
			   struct inbox_reg *reg, json_t **answer)
{
	const struct config *cfg = ib->env->cfg;
	const char *url = json_string_value(json_object_get(req, "url"));
	const char *kind = json_string_value(json_object_get(req, "kind"));
	json_t *keys = json_object_get(req, "keys");
	json_t *tiles = json_object_get(req, "tiles");
	char why[128], th[WIRE_TOKEN_HASH_HEX + 1];
	int r;

	if (!kind)
		return inbox_fail(answer, 400, "missing_field", "kind",
				  "kind is required with a url");
	if (push_kind_parse(kind, &reg->target.kind) == -1)
		return inbox_fail(answer, 400, "bad_value", "kind",
				  "kind is webpush, webhook or mpns");
	if (pushaddr_check_url(url, cfg->push_allow_http, why, sizeof(why)) ==
	    -1)
		return inbox_fail(answer, 400, "bad_url", "url", why);
	if (reg->target.kind == PUSH_WEBPUSH &&
	    (r = inbox_webpush_keys(reg, keys, answer)) != 0)
		return r;
	if (reg->target.kind != PUSH_WEBPUSH && keys)
		return inbox_fail(answer, 400, "unknown_field", "keys",
				  "keys belong to webpush registrations");
	if (tiles && (r = inbox_tiles(reg, tiles, answer)) != 0)
		return r;
	if (!ib->env->push || !push_kind_available(ib->env->push,
						    reg->target.kind))
		return inbox_fail(answer, 400, "kind_unavailable", "kind",
				  "this server is not set up for that kind");
	if (!(reg->url = strdup(url)))
		return inbox_fail(answer, 503, "overloaded", NULL,
				  "out of memory");
	reg->target.url = reg->url;
	seal_token_hash(url, strlen(url), th);
	bus_key(reg->url_key, sizeof(reg->url_key), WIRE_KEY_PUSH_PREFIX, th);
	return 0;
}

int inbox_call_register(struct inbox *ib, json_t *req, json_t **answer,
			char taken_from[WIRE_ID_HEX + 1])
{
	const char *url = json_string_value(json_object_get(req, "url"));
	struct inbox_reg reg = {0};
	char old[WIRE_ID_HEX + 1];
	int r;

	taken_from[0] = '\0';
	if (url && !*url) { /* "" withdraws the registration */
		inbox_unregister(ib);
		*answer = json_object();
		return 200;
	}
	if ((r = inbox_parse_reg(ib, req, &reg, answer)) != 0) {
		inbox_reg_free(&reg);
		return r;
	}
	/* The URL is one phone: whoever registered it before loses it. */
	if (bus_getset(ib->env->bus, reg.url_key, ib->sid, old, sizeof(old)) ==
	    -1) {
		inbox_reg_free(&reg);
		return inbox_fail(answer, 503, "redis_unavailable", NULL,
				  "the registration could not be stored");
	}
	if (ib->registered && strcmp(ib->reg.url_key, reg.url_key) != 0)
		inbox_unregister(ib);
	else
		inbox_reg_clear(ib);
	ib->reg = reg;
	ib->reg.target.url = ib->reg.url;
	ib->registered = 1;
	if (old[0] && strcmp(old, ib->sid) != 0)
		snprintf(taken_from, WIRE_ID_HEX + 1, "%s", old);
	log_info("session %s: pushes go to a %s endpoint", ib->sid,
		 push_kind_name(reg.target.kind));
	*answer = json_object();
	return 200;
}

int inbox_call_notifications(struct inbox *ib, json_t *req, json_t **answer)
{
	json_t *v;

	if ((v = json_object_get(req, "toast")))
		ib->toast = json_is_true(v);
	if ((v = json_object_get(req, "tile")))
		ib->tile = json_is_true(v);
	if ((v = json_object_get(req, "secondarytile")))
		ib->secondary_tile = json_is_true(v);
	*answer = json_pack("{s:b, s:b, s:b}", "toast", ib->toast, "tile",
			    ib->tile, "secondarytile", ib->secondary_tile);
	return 200;
}

int inbox_call_otr(struct inbox *ib, json_t *req, json_t **answer)
{
	const char *jid = json_string_value(json_object_get(req, "jid"));
	json_t *enabled = json_object_get(req, "enabled");
	char bare[JID_MAX + 1];

	if (!jid || jid_bare(jid, bare, sizeof(bare)) == -1)
		return inbox_fail(answer, 400, "bad_jid", "jid",
				  "jid is not a JID");
	if (inbox_set_otr(ib, bare, json_is_true(enabled)) == -1)
		return inbox_fail(answer, 400, "too_many", "jid",
				  "off the record with too many contacts");
	*answer = json_pack("{s:s, s:b}", "jid", bare, "enabled",
			    inbox_otr(ib, bare));
	return 200;
}

/* The client has read up to the cursor: its badges start again. */
static void inbox_reset_unread(struct inbox *ib)
{
	ib->unread = 0;
	inbox_clear_senders(ib);
}

static json_t *inbox_items_json(const struct bus_qitem *items, long n,
				long *used)
{
	json_t *a = json_array();
	size_t bytes = 0;
	long i;

	for (i = 0; a && i < n && i < INBOX_READ_ITEMS && bytes < INBOX_READ_BYTES;
	     i++) {
		char *b64 = seal_base64(items[i].data, items[i].len, SEAL_B64);
		if (!b64 || json_array_append_new(a, json_string(b64)) == -1) {
			free(b64);
			json_decref(a);
			return NULL;
		}
		bytes += strlen(b64);
		free(b64);
	}
	*used = i;
	return a;
}

int inbox_call_messagequeue(struct inbox *ib, json_t *req, json_t **answer)
{
	const char *ack = json_string_value(json_object_get(req, "ack"));
	struct bus_qitem *items = NULL;
	long long dropped = 0;
	long n, used = 0;

	if (ack && !bus_cursor_valid(ack))
		return inbox_fail(answer, 400, "bad_value", "ack",
				  "ack is a cursor from a previous answer");
	if (ack && bus_queue_ack(ib->env->bus, ib->sid, ack) == -1)
		return inbox_fail(answer, 503, "redis_unavailable", NULL,
				  "the queue cannot be read now; try again");
	if (ack) {
		inbox_reset_unread(ib);
		snprintf(ib->acked, sizeof(ib->acked), "%s", ack);
	}
	n = bus_queue_read(ib->env->bus, ib->sid, ack ? ack : "0",
			   INBOX_READ_ITEMS + 1, /* one more tells "more" */
			   ib->env->cfg->queue_max_age * 1000LL, &items,
			   &dropped);
	if (n == -1)
		return inbox_fail(answer, 503, "redis_unavailable", NULL,
				  "the queue cannot be read now; try again");
	json_t *msgs = inbox_items_json(items, n, &used);
	const char *cursor = used ? items[used - 1].id : ack;
	*answer = msgs ? json_pack("{s:o, s:s?, s:I, s:b}", "messages", msgs,
				   "cursor", cursor, "dropped",
				   (json_int_t)dropped, "more",
				   used < n)
		       : NULL;
	bus_qitems_free(items, (size_t)(n > 0 ? n : 0));
	if (!*answer)
		return inbox_fail(answer, 503, "overloaded", NULL,
				  "out of memory");
	return 200;
}

/* ---- the session record's part ---- */

static json_t *inbox_export_reg(const struct inbox *ib)
{
	const struct inbox_reg *reg = &ib->reg;
	json_t *tiles = json_array();
	char *p256dh = seal_base64(reg->target.p256dh, WEBPUSH_KEY_BYTES,
				   SEAL_B64URL);
	char *auth = seal_base64(reg->target.auth, WEBPUSH_AUTH_BYTES,
				 SEAL_B64URL);
	json_t *o = NULL;

	for (size_t i = 0; tiles && i < reg->ntiles; i++)
		json_array_append_new(tiles, json_string(reg->tiles[i]));
	if (tiles && p256dh && auth)
		o = json_pack("{s:s, s:s, s:s, s:s, s:O}", "kind",
			      push_kind_name(reg->target.kind), "url", reg->url,
			      "p256dh", p256dh, "auth", auth, "tiles", tiles);
	json_decref(tiles);
	free(p256dh);
	free(auth);
	return o;
}

json_t *inbox_export(const struct inbox *ib)
{
	char *key = seal_base64(ib->key, sizeof(ib->key), SEAL_B64);
	json_t *senders = json_object();
	json_t *o = NULL;

	for (size_t i = 0; senders && i < ib->nsenders; i++)
		json_object_set_new(senders, ib->senders[i].jid,
				    json_integer(ib->senders[i].unread));
	json_t *otr = json_array();
	for (size_t i = 0; otr && i < ib->notr; i++)
		json_array_append_new(otr, json_string(ib->otr[i]));
	if (key && senders && otr)
		o = json_pack("{s:s, s:b, s:b, s:b, s:i, s:O, s:O}", "key", key,
			      "toast", ib->toast, "tile", ib->tile,
			      "secondarytile", ib->secondary_tile, "unread",
			      ib->unread, "senders", senders, "otr", otr);
	json_decref(otr);
	if (o && ib->registered &&
	    json_object_set_new(o, "reg", inbox_export_reg(ib)) == -1) {
		json_decref(o);
		o = NULL;
	}
	if (key)
		seal_wipe(key, strlen(key));
	free(key);
	json_decref(senders);
	return o;
}

static int inbox_import_reg(struct inbox *ib, json_t *r)
{
	const char *kind, *url, *p256dh, *auth;
	json_t *tiles, *t;
	struct inbox_reg reg = {0};
	size_t i;

	if (json_unpack(r, "{s:s, s:s, s:s, s:s, s:o}", "kind", &kind, "url",
			&url, "p256dh", &p256dh, "auth", &auth, "tiles",
			&tiles) == -1 ||
	    push_kind_parse(kind, &reg.target.kind) == -1 ||
	    webpush_decode_key(p256dh, reg.target.p256dh, WEBPUSH_KEY_BYTES) ==
		    -1 ||
	    webpush_decode_key(auth, reg.target.auth, WEBPUSH_AUTH_BYTES) == -1 ||
	    !(reg.url = strdup(url)))
		return -1;
	json_array_foreach(tiles, i, t)
	{
		if (i < INBOX_TILES && json_is_string(t) &&
		    (reg.tiles[reg.ntiles] = strdup(json_string_value(t))))
			reg.ntiles++;
	}
	char th[WIRE_TOKEN_HASH_HEX + 1];
	seal_token_hash(url, strlen(url), th);
	bus_key(reg.url_key, sizeof(reg.url_key), WIRE_KEY_PUSH_PREFIX, th);
	inbox_reg_clear(ib);
	ib->reg = reg;
	ib->reg.target.url = ib->reg.url;
	ib->registered = 1;
	return 0;
}

int inbox_import(struct inbox *ib, json_t *o)
{
	const char *key, *jid;
	json_t *senders, *reg = NULL, *otr = NULL, *n;
	size_t i;

	if (json_unpack(o, "{s:s, s:b, s:b, s:b, s:i, s:o, s?:o, s?:o}", "key",
			&key, "toast", &ib->toast, "tile", &ib->tile,
			"secondarytile", &ib->secondary_tile, "unread",
			&ib->unread, "senders", &senders, "reg", &reg, "otr",
			&otr) == -1 ||
	    seal_unbase64(ib->key, sizeof(ib->key), key, SEAL_B64) !=
		    (long)sizeof(ib->key))
		return -1;
	inbox_clear_senders(ib);
	json_object_foreach(senders, jid, n)
	{
		if (inbox_add_sender(ib, jid, (int)json_integer_value(n)) == -1)
			break;
	}
	json_array_foreach(otr, i, n)
	{
		if (json_is_string(n))
			inbox_set_otr(ib, json_string_value(n), 1);
	}
	return reg ? inbox_import_reg(ib, reg) : 0;
}
