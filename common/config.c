/*
 * config.c: the table of configuration keys and its three uses: defaults,
 * loading (inih does the INI syntax, this file the keys and values) and the
 * dump. What a value means is left to the modules that read struct config.
 */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum config_type { CONFIG_STR, CONFIG_INT };

struct config_key {
	const char *section;
	const char *key;
	enum config_type type;
	size_t offset;
	const char *def_str;	    /* CONFIG_STR */
	const char *const *choices; /* CONFIG_STR: NULL or the allowed values */
	int def_int, min, max;	    /* CONFIG_INT */
	const char *doc;
};

static const char *const config_log_levels[] = {"error", "warning", "info",
						"debug", NULL};

/* 0, or a compile error when cond is false: checks a row inside the table. */
#define CONFIG_ASSERT0(cond) (0 * sizeof(char[(cond) ? 1 : -1]))
#define CONFIG_FIELD(f) (((struct config *)0)->f)

/* Rows read better as a table than as clang-format would wrap them. */
/* clang-format off */
/*
 * A row names its field once: the INI section and key are the field name
 * split at its first underscore, so the file, the struct and the dump cannot
 * drift apart. The offset also checks that the field has the row's type.
 */
#define CONFIG_S(s, k, def, choice, text)                                      \
	{#s, #k, CONFIG_STR,                                                   \
	 offsetof(struct config, s##_##k) +                                    \
		 CONFIG_ASSERT0(sizeof(CONFIG_FIELD(s##_##k)) == CONFIG_STR_MAX), \
	 def, choice, 0, 0, 0, text}
#define CONFIG_I(s, k, def, lo, hi, text)                                      \
	{#s, #k, CONFIG_INT,                                                   \
	 offsetof(struct config, s##_##k) +                                    \
		 CONFIG_ASSERT0(_Generic(CONFIG_FIELD(s##_##k), int : 1,       \
					 default : 0)),                        \
	 NULL, NULL, def, lo, hi, text}

/* Rows of one section stay together: config_dump() groups by adjacency. */
static const struct config_key config_keys[] = {
	CONFIG_S(redis, host, "127.0.0.1", NULL,
		 "Redis host name or address"),
	CONFIG_I(redis, port, 6379, 1, 65535, "Redis TCP port"),
	CONFIG_S(redis, socket, "", NULL,
		 "Redis unix socket path; when set, host and port are unused"),
	CONFIG_I(redis, timeout_ms, 2000, 10, 60000,
		 "Redis connect and command timeout, milliseconds"),

	CONFIG_S(http, base_path, "", NULL,
		 "URL path the API is mounted under, e.g. /talkproxy"),
	CONFIG_S(http, public_url, "", NULL,
		 "Base URL told to clients; empty = derive it from each request"),
	CONFIG_I(http, max_body, 65536, 1024, 1048576,
		 "Largest request body the handler reads, bytes"),
	CONFIG_I(http, max_message, 10000, 1, 65536,
		 "Largest chat message body, bytes"),
	CONFIG_I(http, request_timeout_ms, 10000, 100, 120000,
		 "How long the handler waits for the daemon, milliseconds"),
	CONFIG_I(http, login_timeout_ms, 30000, 1000, 120000,
		 "How long the handler waits for a login, milliseconds"),
	CONFIG_I(http, login_window, 300, 1, 86400,
		 "Seconds over which login attempts are counted"),
	CONFIG_I(http, login_per_address, 30, 1, 1000000,
		 "Login attempts one client address may make per window"),
	CONFIG_I(http, login_failures_per_jid, 10, 1, 1000000,
		 "Failed logins one JID may have per window before it waits"),

	CONFIG_S(daemon, id, "", NULL,
		 "Daemon instance id; empty = a random one at each start"),
	CONFIG_I(daemon, max_sessions, 900, 1, 1000,
		 "Most XMPP sessions this daemon holds at once"),
	CONFIG_S(daemon, key_file, "", NULL,
		 "File holding the master key that seals session records"),

	CONFIG_S(xmpp, connect_host, "", NULL,
		 "Connect every session to this host; empty = each JID's domain"),
	CONFIG_I(xmpp, connect_port, 0, 0, 65535,
		 "XMPP server port; 0 = from DNS SRV records, or 5222"),
	CONFIG_S(xmpp, cafile, "", NULL,
		 "CA certificates file; empty = the system store"),
	CONFIG_S(xmpp, capath, "", NULL,
		 "Directory of hashed CA certificates; empty = none"),
	CONFIG_S(xmpp, resource, "talkproxy", NULL,
		 "Resource used when a login names none"),
	CONFIG_I(xmpp, connect_timeout_ms, 20000, 1000, 120000,
		 "XMPP connect and login timeout, milliseconds"),
	CONFIG_I(xmpp, avatar_max_bytes, 262144, 1024, 1048576,
		 "Largest contact photo fetched, cached and served, bytes"),
	CONFIG_I(xmpp, max_connecting, 8, 1, 1000,
		 "Streams set up (TLS, SASL) at once; more logins wait their turn"),

	CONFIG_I(idle, away_after, 900, 1, 86400,
		 "Seconds without client activity before presence goes away"),
	CONFIG_I(idle, xa_after, 900, 1, 86400,
		 "Seconds in away before presence goes xa"),
	CONFIG_I(idle, logout_after, 5400, 1, 604800,
		 "Seconds in xa before the session ends"),

	CONFIG_I(queue, max_items, 1000, 10, 100000,
		 "Most incoming messages kept per session; the oldest go first"),
	CONFIG_I(queue, max_age, 604800, 1, 7776000,
		 "Seconds an unacknowledged incoming message is kept"),

	CONFIG_S(push, vapid_key, "", NULL,
		 "VAPID private key file (talkproxy-keygen vapid); empty = no webpush"),
	CONFIG_S(push, vapid_subject, "mailto:postmaster@localhost", NULL,
		 "Contact sent to Web Push services: a mailto: or https: URI"),
	CONFIG_S(push, webhook_key, "", NULL,
		 "Webhook signing key file (talkproxy-keygen webhook); empty = no webhook"),
	CONFIG_S(push, cafile, "", NULL,
		 "CA certificates for push endpoints; empty = the system store"),
	CONFIG_I(push, allow_http, 0, 0, 1,
		 "1 = accept http:// push URLs (never in production)"),
	CONFIG_I(push, allow_loopback, 0, 0, 1,
		 "1 = allow push to loopback addresses (tests only)"),
	CONFIG_I(push, connect_timeout_ms, 5000, 100, 60000,
		 "Push connect timeout, milliseconds"),
	CONFIG_I(push, timeout_ms, 15000, 100, 120000,
		 "Whole push request time limit, milliseconds"),
	CONFIG_I(push, retries, 5, 0, 20,
		 "Attempts after the first when a push service answers 429/5xx"),
	CONFIG_I(push, retry_max, 600, 1, 86400,
		 "Longest wait before a retry, seconds (Retry-After beyond it gives up)"),
	CONFIG_I(push, ttl, 86400, 0, 2419200,
		 "Web Push TTL: how long the push service keeps a push, seconds"),
	CONFIG_I(push, max_pending, 10000, 10, 1000000,
		 "Most pushes waiting or in flight; beyond it a push is skipped (the message stays queued)"),

	CONFIG_S(log, level, "info", config_log_levels,
		 "Least severe level written"),
	CONFIG_S(log, file, "", NULL, "Log file; empty = stderr"),
};
/* clang-format on */

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/*
 * A field added to struct config without a row would silently keep zero and
 * never be read; these counts make that a compile error here instead.
 */
#define CONFIG_NSTR 16
#define CONFIG_NINT 27
_Static_assert(sizeof(struct config) ==
		   CONFIG_NSTR * CONFIG_STR_MAX + CONFIG_NINT * sizeof(int),
	       "struct config changed: update config_keys[] and the counts");
_Static_assert(CONFIG_NKEYS == CONFIG_NSTR + CONFIG_NINT,
	       "config_keys[] must have one row per field of struct config");

/* State of one config_load(): cfg is a copy, committed only on success. */
struct config_parse {
	struct config cfg;
	const char *path;
	FILE *f;
	int line;	/* physical line the reader returned last */
	int long_line;	/* the line cut at inih's buffer size, or 0 */
	int max_line;	/* longest line inih takes, without newline */
	int read_errno; /* errno of a failed read, or 0 */
	int err_line;	/* line of the error in err, 0 for none/file */
	int failed;
	char *err;
	size_t errlen;
	unsigned char seen[CONFIG_NKEYS];
};

static char *config_str(struct config *cfg, const struct config_key *k)
{
	return (char *)cfg + k->offset;
}

static int *config_int(struct config *cfg, const struct config_key *k)
{
	return (int *)(void *)((char *)cfg + k->offset);
}

static const char *config_str_c(const struct config *cfg,
				const struct config_key *k)
{
	return (const char *)cfg + k->offset;
}

static int config_int_c(const struct config *cfg, const struct config_key *k)
{
	return *(const int *)(const void *)((const char *)cfg + k->offset);
}

/* Clears the whole field so structs compare equal with memcmp(). */
static void config_set_raw(struct config *cfg, const struct config_key *k,
			   const char *value)
{
	char *dst = config_str(cfg, k);

	memset(dst, 0, CONFIG_STR_MAX);
	memcpy(dst, value, strlen(value));
}

void config_init(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];

		if (k->type == CONFIG_STR)
			config_set_raw(cfg, k, k->def_str);
		else
			*config_int(cfg, k) = k->def_int;
	}
}

/*
 * Keeps the error on the earliest line, as "PATH:LINE: reason" (or
 * "PATH: reason" for line 0, the file as a whole). A later message for the
 * same line replaces the earlier one: it names the key where the first could
 * not. Returns 0, inih's "handler failed".
 */
__attribute__((format(printf, 3, 4))) static int
config_fail(struct config_parse *p, int line, const char *fmt, ...)
{
	char reason[CONFIG_STR_MAX + 128];
	va_list ap;

	if (p->failed && line > p->err_line)
		return 0;
	p->failed = 1;
	p->err_line = line;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (!p->err || p->errlen == 0)
		return 0;
	if (line > 0)
		snprintf(p->err, p->errlen, "%s:%d: %s", p->path, line, reason);
	else
		snprintf(p->err, p->errlen, "%s: %s", p->path, reason);
	return 0;
}

static void config_skip_line(FILE *f)
{
	int c;

	while ((c = getc(f)) != EOF && c != '\n')
		;
}

static int config_is_comment(const char *line)
{
	line += strspn(line, " \t\r\f\v");
	return *line == '#' || *line == ';';
}

/*
 * inih's reader: one physical line per call, so inih's line numbers and
 * ours agree. inih's buffer is short (200 bytes in Debian's build) and it
 * would parse the cut-off tail of a longer line as a line of its own, so the
 * tail is skipped here and the line reported instead. A NUL would end the
 * line early for inih and hide the rest, so it is an error too.
 */
static char *config_read_line(char *buf, int size, void *stream)
{
	struct config_parse *p = stream;
	int c = EOF, n = 0;

	while (n < size - 1 && (c = getc(p->f)) != EOF) {
		buf[n++] = (char)c;
		if (c == '\n')
			break;
	}
	if (c == EOF && ferror(p->f) && !p->read_errno)
		p->read_errno = errno ? errno : EIO;
	if (n == 0)
		return NULL;
	buf[n] = '\0';
	p->line++;
	p->max_line = size - 1;
	if (memchr(buf, '\0', (size_t)n))
		config_fail(p, p->line, "contains a NUL byte");
	if (c == '\n' || c == EOF)
		return buf;
	/* The buffer is full; a newline next means the line itself fit. */
	c = getc(p->f);
	if (c == '\n' || c == EOF)
		return buf;
	config_skip_line(p->f);
	if (!config_is_comment(buf)) {
		p->long_line = p->line;
		config_fail(p, p->line, "line longer than %d bytes",
			    p->max_line);
	}
	return buf;
}

static const struct config_key *config_find(const char *section,
					    const char *key)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];

		if (!strcmp(k->section, section) && !strcmp(k->key, key))
			return k;
	}
	return NULL;
}

static int config_section_known(const char *section)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		if (!strcmp(config_keys[i].section, section))
			return 1;
	}
	return 0;
}

static int config_fail_unknown(struct config_parse *p, const char *section,
			       const char *key)
{
	if (!*section)
		return config_fail(p, p->line,
				   "key '%s': outside any [section]", key);
	if (!config_section_known(section))
		return config_fail(p, p->line,
				   "key '%s.%s': unknown section [%s]", section,
				   key, section);
	return config_fail(p, p->line, "key '%s.%s': unknown key", section,
			   key);
}

#define config_fail_key(p, k, fmt, ...)                                        \
	config_fail((p), (p)->line, "key '%s.%s': " fmt, (k)->section,         \
		    (k)->key, __VA_ARGS__)

static int config_set_int(struct config_parse *p, const struct config_key *k,
			  const char *value)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (end == value || *end != '\0')
		return config_fail_key(p, k, "'%s' is not an integer", value);
	if (errno == ERANGE || v < k->min || v > k->max)
		return config_fail_key(p, k, "%s is out of range %d..%d", value,
				       k->min, k->max);
	*config_int(&p->cfg, k) = (int)v;
	return 1;
}

static int config_choice_ok(const struct config_key *k, const char *value)
{
	if (!k->choices)
		return 1;
	for (const char *const *c = k->choices; *c; c++) {
		if (!strcmp(*c, value))
			return 1;
	}
	return 0;
}

static void config_choices_text(const struct config_key *k, char *out,
				size_t outlen)
{
	size_t n = 0;

	out[0] = '\0';
	for (const char *const *c = k->choices; *c && n < outlen; c++)
		n += (size_t)snprintf(out + n, outlen - n, "%s%s",
				      c == k->choices ? "" : "|", *c);
}

static int config_set_str(struct config_parse *p, const struct config_key *k,
			  const char *value)
{
	char choices[128];

	if (strlen(value) > CONFIG_STR_MAX - 1)
		return config_fail_key(p, k, "longer than %d bytes",
				       CONFIG_STR_MAX - 1);
	if (!config_choice_ok(k, value)) {
		config_choices_text(k, choices, sizeof(choices));
		return config_fail_key(p, k, "'%s' is not one of %s", value,
				       choices);
	}
	config_set_raw(&p->cfg, k, value);
	return 1;
}

/* inih's handler: called once per key = value line, returns 0 on error. */
static int config_handle(void *user, const char *section, const char *key,
			 const char *value)
{
	struct config_parse *p = user;
	const struct config_key *k = config_find(section, key);
	size_t i;

	if (!k)
		return config_fail_unknown(p, section, key);
	if (p->long_line == p->line)
		return config_fail_key(p, k, "line longer than %d bytes",
				       p->max_line);
	/*
	 * inih reports an indented line as a continuation of the key above,
	 * with the same key again; refusing repeats keeps such a line from
	 * silently replacing the value.
	 */
	i = (size_t)(k - config_keys);
	if (p->seen[i])
		return config_fail_key(p, k, "%s",
				       "set twice (an indented line continues "
				       "the key above)");
	p->seen[i] = 1;
	if (k->type == CONFIG_INT)
		return config_set_int(p, k, value);
	return config_set_str(p, k, value);
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct config_parse p;
	int r;

	memset(&p, 0, sizeof(p));
	p.cfg = *cfg;
	p.path = path;
	p.err = err;
	p.errlen = errlen;
	if (err && errlen)
		err[0] = '\0';
	/*
	 * ini_parse() would open the file itself, but its handler gets no line
	 * number in Debian's build and it splits over-long lines: reading
	 * through config_read_line() fixes both.
	 */
	p.f = fopen(path, "r");
	if (!p.f) {
		config_fail(&p, 0, "cannot open: %s", strerror(errno));
		return -1;
	}
	r = ini_parse_stream(config_read_line, &p, config_handle, &p);
	fclose(p.f);
	if (p.read_errno)
		config_fail(&p, 0, "cannot read: %s", strerror(p.read_errno));
	else if (r < 0)
		config_fail(&p, 0, "cannot parse (inih error %d)", r);
	else if (r > 0 && (!p.failed || r < p.err_line))
		config_fail(&p, r,
			    "syntax error: expected [section] or key = "
			    "value");
	if (p.failed)
		return -1;
	*cfg = p.cfg;
	return 0;
}

static void config_dump_doc(const struct config_key *k, FILE *out)
{
	char choices[128];

	if (k->type == CONFIG_INT) {
		fprintf(out, "# %s (default %d, %d..%d)\n", k->doc, k->def_int,
			k->min, k->max);
	} else if (k->choices) {
		config_choices_text(k, choices, sizeof(choices));
		fprintf(out, "# %s (default %s, one of %s)\n", k->doc,
			k->def_str, choices);
	} else {
		fprintf(out, "# %s (default %s)\n", k->doc,
			*k->def_str ? k->def_str : "empty");
	}
}

/*
 * Values go out bare: inih strips the spaces around a value and has no
 * quoting, so every value config_load() can produce reads back unchanged.
 */
void config_dump(const struct config *cfg, FILE *out)
{
	const char *section = NULL;

	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];

		if (!section || strcmp(section, k->section)) {
			fprintf(out, "%s[%s]\n", section ? "\n" : "",
				k->section);
			section = k->section;
		}
		config_dump_doc(k, out);
		if (k->type == CONFIG_INT)
			fprintf(out, "%s = %d\n", k->key, config_int_c(cfg, k));
		else if (*config_str_c(cfg, k))
			fprintf(out, "%s = %s\n", k->key, config_str_c(cfg, k));
		else
			fprintf(out, "%s =\n", k->key);
	}
}
