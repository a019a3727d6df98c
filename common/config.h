/*
 * config.h: the one configuration file both programs read (INI syntax,
 * parsed by inih). One table in config.c declares every key with its type,
 * default, bounds and documentation; parsing, defaults and config_dump()
 * all come from it. Unknown keys and out-of-range values are errors.
 */
#ifndef TALKPROXY_CONFIG_H
#define TALKPROXY_CONFIG_H

#include <stdio.h>

#define CONFIG_STR_MAX 256

struct config {
	/* [redis] */
	char redis_host[CONFIG_STR_MAX];   /* default "127.0.0.1" */
	int redis_port;                    /* default 6379, 1..65535 */
	char redis_socket[CONFIG_STR_MAX]; /* unix socket; overrides host/port when set */
	int redis_timeout_ms;              /* connect/command timeout, default 2000, 10..60000 */

	/* [http] (the FastCGI handler) */
	char http_base_path[CONFIG_STR_MAX];  /* where the API is mounted, default "" */
	char http_public_url[CONFIG_STR_MAX]; /* base URL told to clients; default "" = derive from request */
	int http_max_body;                    /* bytes, default 65536, 1024..1048576 */
	int http_max_message;                 /* message body bytes, default 10000, 1..65536 */
	int http_request_timeout_ms;          /* wait for the daemon, default 10000, 100..120000 */
	int http_login_timeout_ms;            /* wait for a login, default 30000, 1000..120000 */
	int http_login_window;          /* seconds, default 300, 1..86400 */
	int http_login_per_address;     /* default 30, 1..1000000 */
	int http_login_failures_per_jid; /* default 10, 1..1000000 */

	/* [daemon] */
	char daemon_id[CONFIG_STR_MAX]; /* instance id; default "" = random at start */
	int daemon_max_sessions;        /* default 900, 1..1000 */
	char daemon_key_file[CONFIG_STR_MAX]; /* master key, default "" */

	/* [xmpp] */
	char xmpp_connect_host[CONFIG_STR_MAX]; /* default "" = resolve each JID's domain */
	int xmpp_connect_port;                  /* default 0 = 5222 / SRV, 0..65535 */
	char xmpp_cafile[CONFIG_STR_MAX];       /* default "" = system store */
	char xmpp_capath[CONFIG_STR_MAX];       /* default "" */
	char xmpp_resource[CONFIG_STR_MAX];     /* default resource, default "talkproxy" */
	int xmpp_connect_timeout_ms;            /* default 20000, 1000..120000 */
	int xmpp_avatar_max_bytes;              /* default 262144, 1024..1048576 */
	int xmpp_max_connecting;                /* default 8, 1..1000 */

	/* [idle] seconds */
	int idle_away_after;   /* default 900, 1..86400 */
	int idle_xa_after;     /* default 900, 1..86400 */
	int idle_logout_after; /* default 5400, 1..604800 */

	/* [queue] incoming messages kept for the client (sealed) */
	int queue_max_items; /* default 1000, 10..100000 */
	int queue_max_age;   /* seconds, default 604800, 1..7776000 */

	/* [push] */
	char push_vapid_key[CONFIG_STR_MAX];     /* VAPID private key (PEM); "" = no webpush */
	char push_vapid_subject[CONFIG_STR_MAX]; /* mailto:/https: contact, default "mailto:postmaster@localhost" */
	char push_webhook_key[CONFIG_STR_MAX];   /* webhook signing key file; "" = no webhook */
	char push_cafile[CONFIG_STR_MAX];        /* CA file for push endpoints; "" = system store */
	int push_allow_http;        /* 0/1, default 0 */
	int push_allow_loopback;    /* 0/1, default 0: tests only */
	int push_connect_timeout_ms; /* default 5000, 100..60000 */
	int push_timeout_ms;        /* whole request, default 15000, 100..120000 */
	int push_retries;           /* attempts after the first, default 5, 0..20 */
	int push_retry_max;         /* longest wait between attempts, s, default 600, 1..86400 */
	int push_ttl;               /* Web Push TTL, s, default 86400, 0..2419200 */
	int push_max_pending;       /* pushes waiting or in flight, default 10000, 10..1000000 */

	/* [log] */
	char log_level[CONFIG_STR_MAX]; /* error|warning|info|debug, default "info" */
	char log_file[CONFIG_STR_MAX];  /* default "" = stderr */
};

/* Fills every field with its default. */
void config_init(struct config *cfg);

/*
 * Reads path over the defaults already in cfg. Returns 0, or -1 with a
 * message naming the file, line and key in err (size errlen).
 */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/* Writes the effective configuration as INI, every key, with its doc line. */
void config_dump(const struct config *cfg, FILE *out);

#endif
