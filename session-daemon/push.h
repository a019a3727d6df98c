/*
 * push.h: delivering pushes to the services phones listen to. One push
 * thread owns libcurl (a multi handle: concurrent requests, connection
 * reuse, hard time limits); the loop thread hands it jobs with push_send()
 * and collects outcomes with push_take_results(), never waiting on the
 * network. A push that cannot be delivered is only given up: the message
 * it announces stays in the session's sealed queue.
 */
#ifndef TALKPROXY_PUSH_H
#define TALKPROXY_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include "webpush.h"
#include "wire.h"

struct config;
struct push;

enum push_kind { PUSH_WEBPUSH, PUSH_WEBHOOK, PUSH_MPNS };

/* Returns 0 and sets *kind for "webpush", "webhook" or "mpns", else -1. */
int push_kind_parse(const char *name, enum push_kind *kind);
const char *push_kind_name(enum push_kind kind);

/*
 * How soon the phone needs it, from the user's presence: MPNS picks the
 * immediate, 450 s or 900 s class; Web Push the Urgency header.
 */
enum push_class { PUSH_NOW, PUSH_SOON /* away */, PUSH_LATER /* xa */ };

/* Where one session's pushes go (its registration). */
struct push_target {
	enum push_kind kind;
	const char *url; /* checked by pushaddr_check_url() already */
	uint8_t p256dh[WEBPUSH_KEY_BYTES]; /* webpush only */
	uint8_t auth[WEBPUSH_AUTH_BYTES];  /* webpush only */
};

/* One thing to tell the phone. Every pointer is borrowed by push_send(). */
struct push_job {
	const char *sid;    /* the session, reported back in the result */
	const char *type;   /* "message", ... : the payload's "type" */
	const char *sealed; /* base64 of the payload sealed with the user key */
	enum push_class cls;
	/* MPNS only, when the phone suppresses raw notifications: */
	int toast, tile, secondary_tile; /* the user's notification choices */
	const char *from;  /* sender's bare JID */
	const char *title; /* sender's name (toast Text1) */
	const char *text;  /* message text, or "(OTR)" (toast Text2) */
	int unread;        /* unread messages in all (tile count) */
	int unread_from;   /* unread from this sender (secondary tile) */
	int from_has_tile; /* the sender is one of the registration's tiles */
};

/*
 * Starts the push thread. Loads the VAPID key and the webhook signing key
 * named by cfg (when set); cfg is copied. Returns NULL (logged) when a
 * named key cannot be loaded, a VAPID key is set but push.vapid_subject is
 * not a mailto: or https: URI, or libcurl or the thread cannot start.
 */
struct push *push_start(const struct config *cfg);
/*
 * Stops the thread (bounded: in-flight requests are abandoned, no result
 * is reported for them) and frees p, with any results not taken. Accepts
 * NULL. No push_send() may run concurrently or after.
 */
void push_stop(struct push *p);

/* 1 when pushes of this kind can be sent (its key is configured). */
int push_kind_available(const struct push *p, enum push_kind kind);
/* The VAPID public key clients need (applicationServerKey), or NULL. */
const char *push_vapid_public(const struct push *p);

/*
 * Queues job for target; everything is copied. Safe from any thread.
 * Returns 0, or -1 (logged) when max_pending pushes are already waiting,
 * memory ran out, or the job is malformed (a sid longer than WIRE_ID_HEX,
 * a NULL url/type/sealed, a URL that does not parse): the message stays
 * queued for the client to fetch. from, title and text may be NULL.
 */
int push_send(struct push *p, const struct push_target *target,
	      const struct push_job *job);

enum push_outcome {
	PUSH_DELIVERED, /* the service accepted it */
	PUSH_GONE,      /* 404/410: the registration is dead; drop it */
	PUSH_FAILED     /* gave up (retries spent, refused address, 4xx) */
};

struct push_result {
	char sid[WIRE_ID_HEX + 1];
	char *url; /* the target's URL, owned by the result */
	enum push_outcome outcome;
	int status; /* last HTTP status, 0 when none */
	struct push_result *next;
};

/* Takes every finished job's result (a list), or NULL. Any thread. */
struct push_result *push_take_results(struct push *p);
void push_result_free(struct push_result *r);

#endif
