/*
 * test_config.c: config_init(), config_load() and config_dump() against
 * temporary files, and the shipped conf/talkproxy.conf.sample. Cases are
 * tables of files, each named by a sentence.
 */
#include "config.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NKEYS 43 /* fields in struct config */

/* Expands "{unit*n}" into n copies of unit, for long lines. */
static size_t expand(const char *in, char *out, size_t outlen)
{
	size_t n = 0;

	while (*in) {
		const char *star = *in == '{' ? strchr(in, '*') : NULL;
		char *end;
		long times;

		if (!star) {
			if (n + 1 >= outlen)
				abort();
			out[n++] = *in++;
			continue;
		}
		times = strtol(star + 1, &end, 10);
		for (long i = 0; i < times; i++) {
			size_t unit = (size_t)(star - in - 1);

			if (n + unit >= outlen)
				abort();
			memcpy(out + n, in + 1, unit);
			n += unit;
		}
		in = end + 1; /* past '}' */
	}
	out[n] = '\0';
	return n;
}

/* Writes len bytes of text to a new file; its name goes to path. */
static void write_temp(const char *text, size_t len, char path[64])
{
	int fd;

	snprintf(path, 64, "/tmp/test_config.XXXXXX");
	fd = mkstemp(path);
	if (fd == -1 || write(fd, text, len) != (ssize_t)len || close(fd))
		abort();
}

/*
 * Loads text (expanded, or len raw bytes) over cfg. The error goes to rest
 * without the temporary file name, which starts every message.
 */
static int load_text(struct config *cfg, const char *text, size_t len,
		     char *rest, size_t restlen)
{
	static char buf[8192];
	char path[64], err[512];
	int rc;

	if (len)
		memcpy(buf, text, len);
	else
		len = expand(text, buf, sizeof(buf));
	write_temp(buf, len, path);
	rc = config_load(cfg, path, err, sizeof(err));
	unlink(path);
	snprintf(rest, restlen, "%s",
		 strncmp(err, path, strlen(path)) ? err : err + strlen(path));
	return rc;
}

/* Sets a string field the way config_load() does, so memcmp() compares. */
static void set_str(char field[CONFIG_STR_MAX], const char *value)
{
	memset(field, 0, CONFIG_STR_MAX);
	strcpy(field, value);
}

/* The defaults as config.h documents them, written out independently. */
static void expected_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	set_str(c->redis_host, "127.0.0.1");
	c->redis_port = 6379;
	c->redis_timeout_ms = 2000;
	c->http_max_body = 65536;
	c->http_max_message = 10000;
	c->http_request_timeout_ms = 10000;
	c->http_login_timeout_ms = 30000;
	c->http_login_window = 300;
	c->http_login_per_address = 30;
	c->http_login_failures_per_jid = 10;
	c->daemon_max_sessions = 900;
	c->xmpp_connect_port = 0;
	set_str(c->xmpp_resource, "talkproxy");
	c->xmpp_connect_timeout_ms = 20000;
	c->xmpp_avatar_max_bytes = 262144;
	c->xmpp_max_connecting = 8;
	c->idle_away_after = 900;
	c->idle_xa_after = 900;
	c->idle_logout_after = 5400;
	c->queue_max_items = 1000;
	c->queue_max_age = 604800;
	set_str(c->push_vapid_subject, "mailto:postmaster@localhost");
	c->push_connect_timeout_ms = 5000;
	c->push_timeout_ms = 15000;
	c->push_retries = 5;
	c->push_retry_max = 600;
	c->push_ttl = 86400;
	c->push_max_pending = 10000;
	set_str(c->log_level, "info");
}

static void test_defaults(void)
{
	struct config got, want;

	memset(&got, 0x5a, sizeof(got));
	config_init(&got);
	expected_defaults(&want);
	ok(!memcmp(&got, &want, sizeof(got)),
	   "config_init sets every default config.h documents");
}

struct load_case {
	const char *name;
	const char *text;
	/* What the text changes in the defaults; NULL: nothing. */
	void (*edit)(struct config *);
};

static void edit_port_and_host(struct config *c)
{
	c->redis_port = 6380;
	set_str(c->xmpp_connect_host, "xmpp.example.org");
}

static void edit_bounds(struct config *c)
{
	c->redis_port = 65535;
	c->xmpp_connect_port = 0;
	c->idle_logout_after = 604800;
	c->http_max_body = 1024;
}

static void edit_empty_host(struct config *c) { set_str(c->redis_host, ""); }

static void edit_level(struct config *c) { set_str(c->log_level, "debug"); }

static void edit_socket_199(struct config *c)
{
	memset(c->redis_socket, 'x', 190);
}

static void edit_url(struct config *c)
{
	set_str(c->http_public_url, "https://example.com/tp?a=b;c#d");
}

/* Rows read better as a table than as clang-format would wrap them. */
/* clang-format off */
static const struct load_case load_cases[] = {
	{"loads an empty file as the defaults", "", NULL},
	{"loads only comments and blank lines as the defaults",
	 "# a comment\n; another\n\n   \n[redis]\n# inside\n", NULL},
	{"loads values over the defaults and keeps the others",
	 "[redis]\nport = 6380\n[xmpp]\nconnect_host = xmpp.example.org\n",
	 edit_port_and_host},
	{"strips spaces and an inline '; comment' around a value",
	 "[redis]\n  port   =   6380   ; the test port\n[xmpp]\nconnect_host "
	 "= xmpp.example.org\n",
	 edit_port_and_host},
	{"accepts each integer at its bounds",
	 "[redis]\nport = 65535\n[xmpp]\nconnect_port = 0\n[idle]\nlogout_"
	 "after = 604800\n[http]\nmax_body = 1024\n",
	 edit_bounds},
	{"accepts an empty value for a string", "[redis]\nhost =\n",
	 edit_empty_host},
	{"accepts a section given twice",
	 "[redis]\nport = 6380\n[xmpp]\n[redis]\n[xmpp]\nconnect_host = "
	 "xmpp.example.org\n",
	 edit_port_and_host},
	{"accepts CRLF line ends", "[log]\r\nlevel = debug\r\n", edit_level},
	{"accepts a last line without a newline", "[log]\nlevel = debug",
	 edit_level},
	{"accepts a line of exactly 199 bytes", "[redis]\nsocket = {x*190}\n",
	 edit_socket_199},
	{"ignores a comment line longer than inih's buffer",
	 "# {c*400}\n[log]\nlevel = debug\n", edit_level},
	{"keeps '=', ';' and '#' inside a value",
	 "[http]\npublic_url = https://example.com/tp?a=b;c#d\n", edit_url},
};
/* clang-format on */

static void test_load(void)
{
	for (size_t i = 0; i < sizeof(load_cases) / sizeof(load_cases[0]);
	     i++) {
		const struct load_case *c = &load_cases[i];
		struct config got, want;
		char err[512];
		int rc;

		config_init(&got);
		config_init(&want);
		if (c->edit)
			c->edit(&want);
		rc = load_text(&got, c->text, 0, err, sizeof(err));
		ok(rc == 0 && !memcmp(&got, &want, sizeof(got)), "%s", c->name);
		if (rc)
			printf("#   error: %s\n", err);
	}
}

struct error_case {
	const char *name;
	const char *text;
	size_t len;	  /* 0: expand text; else text is len raw bytes */
	const char *want; /* the message after the file name */
	int prefix;	  /* want is only the start of the message */
};

/* Raw bytes, for a file holding a NUL. */
#define RAW(s) s, sizeof(s) - 1

/* clang-format off */
static const struct error_case error_cases[] = {
	{"rejects an unknown section", "[nosuch]\nkey = 1\n", 0,
	 ":2: key 'nosuch.key': unknown section [nosuch]", 0},
	{"rejects an unknown key in a known section", "[redis]\nhots = x\n", 0,
	 ":2: key 'redis.hots': unknown key", 0},
	{"rejects a key of another section", "[http]\nport = 80\n", 0,
	 ":2: key 'http.port': unknown key", 0},
	{"rejects a key outside any section", "host = x\n", 0,
	 ":1: key 'host': outside any [section]", 0},
	{"rejects key names in another case", "[Redis]\nPort = 1\n", 0,
	 ":2: key 'Redis.Port': unknown section [Redis]", 0},
	{"rejects a word for an integer", "[redis]\nport = abc\n", 0,
	 ":2: key 'redis.port': 'abc' is not an integer", 0},
	{"rejects text after an integer", "[redis]\nport = 12x\n", 0,
	 ":2: key 'redis.port': '12x' is not an integer", 0},
	{"rejects an empty integer", "[redis]\nport =\n", 0,
	 ":2: key 'redis.port': '' is not an integer", 0},
	{"rejects a hexadecimal integer", "[redis]\nport = 0x10\n", 0,
	 ":2: key 'redis.port': '0x10' is not an integer", 0},
	{"rejects a fraction", "[idle]\naway_after = 1.5\n", 0,
	 ":2: key 'idle.away_after': '1.5' is not an integer", 0},
	{"rejects an integer below its minimum", "[redis]\nport = 0\n", 0,
	 ":2: key 'redis.port': 0 is out of range 1..65535", 0},
	{"rejects an integer above its maximum", "[redis]\nport = 65536\n", 0,
	 ":2: key 'redis.port': 65536 is out of range 1..65535", 0},
	{"rejects a negative integer", "[daemon]\nmax_sessions = -1\n", 0,
	 ":2: key 'daemon.max_sessions': -1 is out of range 1..1000", 0},
	{"rejects more sessions than select() allows",
	 "[daemon]\nmax_sessions = 1001\n", 0,
	 ":2: key 'daemon.max_sessions': 1001 is out of range 1..1000", 0},
	{"rejects an integer too large for a long",
	 "[http]\nmax_body = 99999999999999999999999\n", 0,
	 ":2: key 'http.max_body': 99999999999999999999999 is out of range "
	 "1024..1048576",
	 0},
	{"rejects an integer that would wrap an int",
	 "[http]\nmax_body = 4294968320\n", 0,
	 ":2: key 'http.max_body': 4294968320 is out of range 1024..1048576",
	 0},
	/* Debian's inih cuts lines at 199 bytes, before the 255 limit. */
	{"rejects a string value of 256 bytes", "[xmpp]\ncafile = {x*256}\n", 0,
	 ":2: key 'xmpp.cafile': line longer than", 1},
	{"rejects a line longer than inih's buffer, naming its key",
	 "[redis]\nsocket = {x*191}\n", 0,
	 ":2: key 'redis.socket': line longer than 199 bytes", 0},
	{"rejects a long line that is not a key",
	 "[redis]\n{x*300}\nport = 1\n", 0, ":2: line longer than 199 bytes",
	 0},
	{"does not read the tail of a long line as a line of its own",
	 "[redis]\nsocket = {x*300}port = 2\n", 0,
	 ":2: key 'redis.socket': line longer than 199 bytes", 0},
	{"rejects a log level that is not one of the four",
	 "[log]\nlevel = verbose\n", 0,
	 ":2: key 'log.level': 'verbose' is not one of "
	 "error|warning|info|debug",
	 0},
	{"rejects a log level in capitals", "[log]\nlevel = INFO\n", 0,
	 ":2: key 'log.level': 'INFO' is not one of error|warning|info|debug",
	 0},
	{"rejects a line that is not key = value", "[redis]\njunk\n", 0,
	 ":2: syntax error: expected [section] or key = value", 0},
	{"rejects an unclosed section header", "[redis\nport = 1\n", 0,
	 ":1: syntax error: expected [section] or key = value", 0},
	{"rejects a key set twice", "[redis]\nport = 1\nport = 2\n", 0,
	 ":3: key 'redis.port': set twice (an indented line continues the key "
	 "above)",
	 0},
	{"rejects an indented line, which inih reads as a continuation",
	 "[redis]\nhost = a\n  b\n", 0,
	 ":3: key 'redis.host': set twice (an indented line continues the key "
	 "above)",
	 0},
	{"rejects a NUL byte", RAW("[redis]\nhost = a\0b\n"),
	 ":2: contains a NUL byte", 0},
	{"reports the first of several errors",
	 "[redis]\nport = x\nhots = 1\n[nosuch]\n", 0,
	 ":2: key 'redis.port': 'x' is not an integer", 0},
	{"reports a syntax error before a later bad value",
	 "[redis]\njunk\nport = x\n", 0,
	 ":2: syntax error: expected [section] or key = value", 0},
	{"reports a bad value before a later syntax error",
	 "[redis]\nport = x\njunk\n", 0,
	 ":2: key 'redis.port': 'x' is not an integer", 0},
	{"counts lines correctly after a long comment line",
	 "# {c*400}\n[redis]\nport = x\n", 0,
	 ":3: key 'redis.port': 'x' is not an integer", 0},
};
/* clang-format on */

static void test_errors(void)
{
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]);
	     i++) {
		const struct error_case *c = &error_cases[i];
		struct config got, want;
		char err[512];
		int rc, pass;

		config_init(&got);
		config_init(&want);
		rc = load_text(&got, c->text, c->len, err, sizeof(err));
		pass = rc == -1 && !memcmp(&got, &want, sizeof(got)) &&
		       (c->prefix ? !strncmp(err, c->want, strlen(c->want))
				  : !strcmp(err, c->want));
		ok(pass, "%s", c->name);
		if (!pass)
			printf("#   rc %d, error: %s\n", rc, err);
	}
}

static void test_file_errors(void)
{
	struct config cfg, want;
	char err[512], path[64];
	int rc;

	config_init(&cfg);
	config_init(&want);
	rc = config_load(&cfg, "/nonexistent/talkproxy.conf", err, sizeof(err));
	ok(rc == -1 && !strcmp(err, "/nonexistent/talkproxy.conf: cannot "
				    "open: No such file or directory"),
	   "reports a missing file with its name and the system's reason");
	rc = config_load(&cfg, "/tmp", err, sizeof(err));
	ok(rc == -1 && !strcmp(err, "/tmp: cannot read: Is a directory"),
	   "reports a directory as unreadable");
	ok(!memcmp(&cfg, &want, sizeof(cfg)),
	   "leaves the configuration alone when the file cannot be read");

	write_temp("[redis]\nport = 1\nhots = 2\n", 26, path);
	rc = config_load(&cfg, path, err, 10);
	ok(rc == -1 && strlen(err) == 9, "cuts a long message to errlen");
	ok(config_load(&cfg, path, NULL, 0) == -1,
	   "fails without a buffer for the message");
	ok(!memcmp(&cfg, &want, sizeof(cfg)),
	   "keeps no value from a file that fails to load");
	unlink(path);
}

/* Dumps cfg to a new file (name in path) and loads it over the defaults. */
static int dump_and_load(const struct config *cfg, struct config *back,
			 char path[64])
{
	char err[512];
	FILE *f;

	write_temp("", 0, path);
	f = fopen(path, "w");
	if (!f)
		abort();
	config_dump(cfg, f);
	fclose(f);
	config_init(back);
	if (config_load(back, path, err, sizeof(err)) == -1) {
		printf("#   %s\n", err);
		return -1;
	}
	return 0;
}

/* Every field away from its default, strings with awkward characters. */
static void all_changed(struct config *c)
{
	config_init(c);
	set_str(c->redis_host, "redis.internal");
	c->redis_port = 1;
	set_str(c->redis_socket, "/run/redis/redis server.sock");
	c->redis_timeout_ms = 60000;
	set_str(c->http_base_path, "/talk proxy");
	set_str(c->http_public_url, "https://example.com/tp?a=b;c#d");
	c->http_max_body = 1048576;
	c->http_max_message = 1;
	c->http_request_timeout_ms = 100;
	c->http_login_timeout_ms = 120000;
	set_str(c->daemon_id, "d\xc3\xa9mon-1");
	c->daemon_max_sessions = 1000;
	set_str(c->daemon_key_file, "/etc/talkproxy/master.key");
	set_str(c->xmpp_connect_host, "[::1]");
	c->xmpp_connect_port = 65535;
	set_str(c->xmpp_cafile, "#not-a-comment.pem");
	set_str(c->xmpp_capath, "/etc/ssl/my;certs");
	set_str(c->xmpp_resource, "a = b");
	c->xmpp_connect_timeout_ms = 1000;
	c->idle_away_after = 1;
	c->idle_xa_after = 86400;
	c->idle_logout_after = 604800;
	set_str(c->log_level, "error");
	set_str(c->log_file, "/var/log/talkproxy.log");
}

/* Reads the lines of path that are neither blank nor comments. */
static size_t setting_lines(const char *path, char lines[][300], size_t max)
{
	char line[300];
	size_t n = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	while (n < max && fgets(line, sizeof(line), f)) {
		if (line[0] == '#' || line[0] == ';' || line[0] == '\n')
			continue;
		snprintf(lines[n++], 300, "%s", line);
	}
	fclose(f);
	return n;
}

static int doc_above_every_key(const char *path, int *keys)
{
	char prev[300] = "", line[300];
	int good = 1;
	FILE *f = fopen(path, "r");

	*keys = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] != '#' && strstr(line, " =")) {
			(*keys)++;
			good &= !strncmp(prev, "# ", 2);
		}
		snprintf(prev, sizeof(prev), "%s", line);
	}
	fclose(f);
	return good;
}

static void test_dump(void)
{
	struct config cfg, back;
	char path[64];
	int keys;

	config_init(&cfg);
	ok(dump_and_load(&cfg, &back, path) == 0 &&
	       !memcmp(&cfg, &back, sizeof(cfg)),
	   "the dump of the defaults loads back as the defaults");
	ok(doc_above_every_key(path, &keys),
	   "the dump has a '# ' doc line above every key");
	ok(keys == NKEYS, "the dump writes all %d keys (wrote %d)", NKEYS,
	   keys);
	unlink(path);

	all_changed(&cfg);
	ok(dump_and_load(&cfg, &back, path) == 0 &&
	       !memcmp(&cfg, &back, sizeof(cfg)),
	   "the dump of a value changed in every key loads back identically");
	unlink(path);
}

static void test_sample(void)
{
	const char *srcdir = getenv("TP_SRCDIR");
	char path[512], err[512], dumped[64];
	char want[NKEYS + 8][300], got[NKEYS + 8][300];
	struct config cfg, defaults;
	size_t nwant, ngot;
	int loaded, same;

	if (srcdir)
		snprintf(path, sizeof(path), "%s/conf/talkproxy.conf.sample",
			 srcdir);
	else
		snprintf(path, sizeof(path), "conf/talkproxy.conf.sample");
	config_init(&cfg);
	config_init(&defaults);
	loaded = config_load(&cfg, path, err, sizeof(err)) == 0;
	ok(loaded, "conf/talkproxy.conf.sample loads");
	if (!loaded)
		printf("#   %s\n", err);
	ok(loaded && !memcmp(&cfg, &defaults, sizeof(cfg)),
	   "the sample sets every key to its default");

	dump_and_load(&defaults, &cfg, dumped);
	nwant = setting_lines(dumped, want, NKEYS + 8);
	ngot = setting_lines(path, got, NKEYS + 8);
	same = nwant == ngot && nwant > NKEYS;
	for (size_t i = 0; same && i < nwant; i++)
		same = !strcmp(want[i], got[i]);
	ok(same, "the sample has the dump's sections and keys, in order");
	unlink(dumped);
}

int main(void)
{
	test_defaults();
	test_load();
	test_errors();
	test_file_errors();
	test_dump();
	test_sample();
	return tap_done();
}
