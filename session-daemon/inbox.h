/*
 * inbox.h: what happens to a session's incoming messages. Each is sealed
 * with the user's key and stored in the session's queue in Redis before
 * the XMPP handler returns (the server counts it delivered then), and only
 * then pushed to where the client registered. Owns the user key, the push
 * registration, the notification choices and the unread counts; answers
 * the calls about them (key, register, notifications, messagequeue).
 * Loop thread only.
 */
#ifndef TALKPROXY_INBOX_H
#define TALKPROXY_INBOX_H

#include <jansson.h>

#include "push.h"

struct config;
struct bus;
struct client_message;
struct inbox;

/* What every inbox of a daemon shares; borrowed, outlives the inboxes. */
struct inbox_env {
	const struct config *cfg;
	struct bus *bus;
	struct push *push; /* NULL: pushes are not sent */
};

/* A new inbox with a fresh user key, or NULL when memory ran out. */
struct inbox *inbox_new(const struct inbox_env *env, const char *sid);
/* Wipes the key and frees. Redis is left as it is (see inbox_delete). */
void inbox_free(struct inbox *ib);
/* The session ended: deletes its queue and gives up its push URL. */
void inbox_delete(struct inbox *ib);

/*
 * Stores an incoming message, chat state or receipt (from_name: the
 * sender's roster name or NULL), then pushes it; only messages with a body
 * count as unread and may become visible notifications. Duplicates of a
 * message id already stored are dropped. receipt_ok: the sender may learn
 * of delivery (it sees our presence), so a receipt it asks for is sent
 * once the phone acknowledges the item (inbox_take_receipts). When Redis
 * is down the sealed item is kept here and stored by inbox_tick().
 * Returns 0, or -1 (logged) when it could not even be kept.
 */
int inbox_message(struct inbox *ib, const struct client_message *m,
		  const char *from_name, enum push_class cls, int receipt_ok);
/* Stores and pushes a contact's subscription request (status: its text). */
int inbox_subscription(struct inbox *ib, const char *from, const char *name,
		       const char *status, enum push_class cls);
/* Calls send for each receipt owed for an item the phone acknowledged. */
void inbox_take_receipts(struct inbox *ib,
			 void (*send)(void *ud, const char *to, const char *id),
			 void *ud);
/* Retries storing what Redis refused. */
void inbox_tick(struct inbox *ib, enum push_class cls);
/* The push service said url is gone: forget it, if still registered. */
void inbox_push_gone(struct inbox *ib, const char *url);
/* Another session registered our URL: forget it without touching Redis. */
void inbox_push_taken(struct inbox *ib);

/* 1 when the conversation with bare JID jid is off the record. */
int inbox_otr(const struct inbox *ib, const char *jid);

/*
 * The inbox's part of the session record: the user key, the registration,
 * the notification choices and the unread counts. A new object holding
 * secrets: the caller seals it (session record) and drops it at once.
 */
json_t *inbox_export(const struct inbox *ib);
/* Restores what inbox_export() wrote. Returns 0, or -1 when malformed. */
int inbox_import(struct inbox *ib, json_t *o);

/*
 * The calls. Each reads the checked request body and returns an HTTP
 * status with *answer set to the answer body (or an error body).
 * inbox_register sets taken_from to the session that held the URL before
 * (or "") so the caller can tell it.
 */
int inbox_call_key(struct inbox *ib, json_t *req, json_t **answer);
int inbox_call_register(struct inbox *ib, json_t *req, json_t **answer,
			char taken_from[WIRE_ID_HEX + 1]);
int inbox_call_notifications(struct inbox *ib, json_t *req, json_t **answer);
int inbox_call_messagequeue(struct inbox *ib, json_t *req, json_t **answer);
int inbox_call_otr(struct inbox *ib, json_t *req, json_t **answer);

#endif
