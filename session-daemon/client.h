/*
 * client.h: the daemon's XMPP side, and the only user of libstrophe. One
 * struct client_ctx runs every connection in one event loop owned by one
 * thread; a struct client is one user's stream. Incoming stanzas become
 * plain calls on struct client_events, so nothing else sees a stanza.
 */
#ifndef TALKPROXY_CLIENT_H
#define TALKPROXY_CLIENT_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct roster_presence;
struct client_ctx;
struct client;

enum client_error {
	CLIENT_OK,
	CLIENT_ERR_AUTH,     /* the server refused the credentials */
	CLIENT_ERR_TLS,      /* the server's certificate did not verify */
	CLIENT_ERR_NETWORK,  /* no connection, or it broke */
	CLIENT_ERR_CONFLICT, /* another login took our resource */
	CLIENT_ERR_STREAM,   /* the server ended the stream with an error */
	CLIENT_ERR_LIMIT     /* out of descriptors or memory here */
};
const char *client_strerror(enum client_error e);

struct client_message {
	const char *from; /* full JID as sent */
	const char *id;   /* may be NULL */
	const char *type; /* "chat", "normal", ... */
	const char *body; /* may be NULL (a bare chat state) */
	const char *state; /* XEP-0085 state or NULL */
	const char *stamp; /* XEP-0203 delay stamp (sent earlier) or NULL */
	int nostore;       /* XEP-0334 no-store hint or google:nosave: OTR */
	const char *receipt; /* XEP-0184: id of our message it acknowledges */
	int want_receipt;    /* XEP-0184: the sender asks for a receipt */
};

struct query_result;

struct client_events {
	/* The stream is up: bound, roster loaded, initial presence sent. */
	void (*online)(void *ud, const char *bound_jid);
	/* The stream went down; was_online says whether online() came first. */
	void (*offline)(void *ud, enum client_error err, int was_online);
	void (*roster_item)(void *ud, const char *jid, const char *name,
			    const char *subscription, const char *const *groups,
			    size_t ngroups);
	void (*roster_remove)(void *ud, const char *jid);
	/* p == NULL: from went unavailable. */
	void (*presence)(void *ud, const char *from,
			 const struct roster_presence *p);
	void (*message)(void *ud, const struct client_message *m);
	/* The reply (result or error) to an iq sent with want_reply. */
	void (*iq_reply)(void *ud, const char *id, const char *xml);
	/* type: "subscribe", "subscribed", "unsubscribe" or "unsubscribed"
	 * from the bare JID from; status may be NULL. */
	void (*subscription)(void *ud, const char *from, const char *type,
			     const char *status);
	/* The answer to a query.h request sent under id. */
	void (*query)(void *ud, const char *id, const struct query_result *r);
	/* What client_resumption() says moved on (the server's stanzas were
	 * acknowledged, or it offered resumption): worth writing down for a
	 * successor. May be NULL. */
	void (*resumable)(void *ud);
};

/* Returns NULL (logged) on failure. */
struct client_ctx *client_ctx_new(const struct config *cfg);
void client_ctx_free(struct client_ctx *cx);
/* Runs the event loop once, waiting at most timeout_ms for the network
 * (the streams' sockets and the watched descriptor). */
void client_ctx_run_once(struct client_ctx *cx, unsigned long timeout_ms);
/*
 * Adds fd, not a stream's, to what the wait watches for input, so that
 * one thread sleeps on both. Closing fd removes it. 0 or -1 (logged).
 */
int client_ctx_watch(struct client_ctx *cx, int fd);
/* Whether the watched descriptor had input in the last run. */
int client_ctx_watched_ready(const struct client_ctx *cx);

/*
 * A new, unconnected client for jid (bare) with resource. token_mech NULL:
 * secret is the password (SCRAM, or PLAIN where the server offers no
 * SCRAM); else secret is an OAuth token for SASL token_mech ("X-OAUTH2",
 * "OAUTHBEARER", or "" for the server's offer). Either way the stream is
 * negotiated here, in libstrophe's raw mode. The secret is copied and
 * wiped on free. Returns NULL on allocation failure.
 */
struct client *client_new(struct client_ctx *cx, const char *jid,
			  const char *secret, const char *resource,
			  const char *token_mech,
			  const struct client_events *ev, void *ud);
/* Starts connecting; the result arrives as online() or offline(). */
int client_connect(struct client *c);
/* Sends unavailable presence and closes the stream; offline() follows. */
void client_disconnect(struct client *c);
/* Frees without firing events. Safe outside libstrophe callbacks only. */
void client_free(struct client *c);
int client_is_online(const struct client *c);
/* The server is behind on the stream: it leaves many stanzas
 * unacknowledged (or unwritten); senders should wait (park.h). */
int client_congested(const struct client *c);

/*
 * Handing a stream to another process (XEP-0198 resumption across a
 * restart): client_resumption() gives what the successor needs, *id NULL
 * when the server would not resume this stream; in is the count
 * of the server's stanzas handled so far. The successor calls
 * client_adopt_stream() before client_connect(): after SASL it resumes
 * that stream instead of binding a new one, so contacts see no one leave
 * and what the server queued meanwhile arrives; if the server forgot the
 * stream, it binds a new one as usual. -1 on allocation failure.
 */
void client_resumption(const struct client *c, const char **id,
		       const char **bound, uint32_t *in);
int client_adopt_stream(struct client *c, const char *id, const char *bound,
			uint32_t in);
/* Everything sent has reached the server and it has acknowledged it:
 * the stream may be left without losing a stanza. */
int client_settled(const struct client *c);

/* Each returns 0, or -1 when the stream is not up or memory ran out. */
/* nostore: off the record: XEP-0334 no-store hints, and google:nosave when
 * the server advertises it. */
int client_send_message(struct client *c, const char *to, const char *id,
			const char *body, const char *state, int nostore);
int client_send_presence(struct client *c, const char *show,
			 const char *status);
/* A XEP-0184 receipt for message id, to the full JID that sent it. */
int client_send_receipt(struct client *c, const char *to, const char *id);
/* Presence of type subscribe, subscribed, unsubscribe or unsubscribed. */
int client_send_subscription(struct client *c, const char *to,
			     const char *type);

#define CLIENT_IQ_ID_MAX 128
/*
 * Sends one iq given as XML text (the handler checked it is one well-formed
 * <iq/>). Its from is dropped, so the server stamps our own; its type must be
 * get or set. id gets its id: the client's, or a fresh one. With want_reply
 * the reply arrives as iq_reply(). Returns 0; -1 when the stream is down,
 * or -2 with *why set when the XML is not a get/set iq we may send.
 */
int client_send_iq(struct client *c, const char *xml, int want_reply,
		   char id[CLIENT_IQ_ID_MAX + 1], const char **why);
/* Stops waiting for the reply to id (a rawiq or a query.h request). */
void client_forget_iq(struct client *c, const char *id);

/*
 * For query.c, which builds and reads the iqs the daemon asks itself: sends
 * iq (a libstrophe stanza; its id is set) and calls handler with its reply.
 * Returns 0, or -1 when the stream is down.
 */
struct _xmpp_conn_t;
struct _xmpp_stanza_t;
struct _xmpp_ctx_t;
typedef int (*client_iq_handler)(struct _xmpp_conn_t *conn,
				 struct _xmpp_stanza_t *st, void *ud);
struct _xmpp_ctx_t *client_strophe_ctx(struct client *c);
/* Adds <name xmlns=ns>text</name> to parent (ns and text may be NULL).
 * Returns the child, owned by parent, or NULL. */
struct _xmpp_stanza_t *client_add_child(struct _xmpp_ctx_t *ctx,
					struct _xmpp_stanza_t *parent,
					const char *name, const char *ns,
					const char *text);
int client_send_query(struct client *c, struct _xmpp_stanza_t *iq,
		      const char *id, client_iq_handler handler);
/* The events and their userdata, for query.c's handlers. */
void client_deliver_query(struct client *c, const char *id,
			  const struct query_result *r);
/* The JID the connection logs in as (bare/resource), borrowed. */
const char *client_jid(const struct client *c);

#endif
