/*
 * inbox.h: what happens to a session's incoming messages. Each is sealed
 * with the user's key and stored in the session's queue in Redis, and only
 * then pushed to where the client registered. The items of one loop pass,
 * over every session, are stored together by inbox_flush(), in one round
 * trip: the server counts a stanza delivered once we acknowledge it, so
 * the loop flushes before it sends any acknowledgement (the next pass's
 * start) and before a session record counts the stanzas handled. Owns
 * the user key, the push registration, the notification choices and the
 * unread counts; answers the calls about them (key, register,
 * notifications, messagequeue).
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

/* What every inbox of a daemon shares; outlives the inboxes. */
struct inbox_env {
	const struct config *cfg;
	struct bus *bus;
	struct push *push;    /* NULL: pushes are not sent */
	struct inbox *staged; /* inbox.c's: those with items to store */
};

/* A new inbox with a fresh user key, or NULL when memory ran out. */
struct inbox *inbox_new(struct inbox_env *env, const char *sid);
/* Stores what every inbox received since the last flush, then pushes it;
 * what Redis did not take stays in memory (inbox_tick). */
void inbox_flush(struct inbox_env *env);
/* Stores what is pending, wipes the key and frees. Redis is otherwise
 * left as it is (see inbox_delete). */
void inbox_free(struct inbox *ib);
/* The session ended: deletes its queue, with what was not stored yet,
 * and gives up its push URL. */
void inbox_delete(struct inbox *ib);

/*
 * Takes an incoming message, chat state or receipt (from_name: the
 * sender's roster name or NULL) to be stored and pushed by the next
 * inbox_flush(); only messages with a body count as unread and may
 * become visible notifications. Duplicates of a message id already stored
 * are dropped. receipt_ok: the sender may learn of delivery (it sees our
 * presence), so a receipt it asks for is sent once the phone acknowledges
 * the item (inbox_take_receipts). When Redis
 * is down the sealed item is kept here and tried again (inbox_tick()).
 * Returns 0, or -1 (logged) when it could not even be kept.
 */
int inbox_message(struct inbox *ib, const struct client_message *m,
		  const char *from_name, enum push_class cls, int receipt_ok);
/* The same for a contact's subscription request (status: its text). */
int inbox_subscription(struct inbox *ib, const char *from, const char *name,
		       const char *status, enum push_class cls);
/* Calls send for each receipt owed for an item the phone acknowledged. */
void inbox_take_receipts(struct inbox *ib,
			 void (*send)(void *ud, const char *to, const char *id),
			 void *ud);
/* What Redis refused goes to the next inbox_flush() again. */
void inbox_tick(struct inbox *ib);
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
