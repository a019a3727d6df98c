/*
 * bare_login.c: the yardstick for issue 6 figure 3. N XMPP logins made by
 * a bare libstrophe client in one process and one xmpp_ctx, the way
 * talkproxyd makes them (TLS required, SASL, bind, roster request, initial
 * presence), with no talkproxy code around them. Prints one JSON line:
 * seconds from the first connect until every session is online, and the
 * process's RSS growth per session.
 *
 *   bare_login -p PORT -n N [-H 127.0.0.1] [-d localhost] [-o first]
 *              [-u bench] [-w bench-pw] [-C capath] [-F cafile]
 *              [-c concurrent] [-t timeout_s] [-s hold_s] [-L]
 *
 * Users are <-u><%05d of first..first+N-1>@<-d>. Neither -C nor -F:
 * libstrophe's default (the system's default CA file and directory). The
 * environment reaches OpenSSL as usual (SSL_CERT_FILE, SSL_CERT_DIR).
 * libstrophe 0.12 calls SSL_CTX_set_default_verify_paths() on every
 * connection, whatever -C/-F say, and so parses the whole default CA
 * bundle each time; -L sets SSL_CERT_FILE=/dev/null first, as talkproxyd
 * does, so only the hashed directories are used, lazily.
 * -c bounds the connections negotiating at once (default: all N at once,
 * as the daemon does when N logins arrive together). -s holds the
 * sessions that many seconds after the line is printed (for smaps).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getopt, clock_gettime under -std=c11 */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BARE_MAX 1000

struct bare {
	xmpp_conn_t *conn;
	int started, online, failed;
	double t_online;
};

static struct bare bare_conns[BARE_MAX];
static int bare_online, bare_failed;

static double bare_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long bare_rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	fclose(f);
	return kib;
}

static double bare_cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		return -1;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int bare_on_roster(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	struct bare *b = ud;
	xmpp_ctx_t *ctx = xmpp_conn_get_context(conn);
	xmpp_stanza_t *pres = xmpp_presence_new(ctx);

	(void)st;
	if (pres) {
		xmpp_send(conn, pres);
		xmpp_stanza_release(pres);
	}
	if (!b->online && !b->failed) {
		b->online = 1;
		b->t_online = bare_now();
		bare_online++;
	}
	return 0;
}

static void bare_on_conn(xmpp_conn_t *conn, xmpp_conn_event_t event,
			 int error, xmpp_stream_error_t *se, void *ud)
{
	struct bare *b = ud;
	xmpp_ctx_t *ctx = xmpp_conn_get_context(conn);
	char id[32];

	(void)error;
	(void)se;
	if (event == XMPP_CONN_CONNECT) {
		xmpp_stanza_t *iq, *q;
		snprintf(id, sizeof(id), "r%ld", (long)(b - bare_conns));
		iq = xmpp_iq_new(ctx, "get", id);
		q = xmpp_stanza_new(ctx);
		if (!iq || !q) {
			xmpp_stanza_release(iq);
			xmpp_stanza_release(q);
			xmpp_disconnect(conn);
			return;
		}
		xmpp_stanza_set_name(q, "query");
		xmpp_stanza_set_ns(q, XMPP_NS_ROSTER);
		xmpp_stanza_add_child(iq, q);
		xmpp_stanza_release(q);
		xmpp_id_handler_add(conn, bare_on_roster, id, b);
		xmpp_send(conn, iq);
		xmpp_stanza_release(iq);
		return;
	}
	if (event == XMPP_CONN_DISCONNECT || event == XMPP_CONN_FAIL) {
		if (!b->failed) {
			b->failed = 1;
			bare_failed++;
			if (b->online) {
				b->online = 0;
				bare_online--;
			}
		}
	}
}

static void bare_usage(void)
{
	fprintf(stderr,
		"usage: bare_login -p PORT -n N [-H host] [-d domain] [-o first] "
		"[-u prefix] [-w password] [-C capath] [-F cafile] "
		"[-c concurrent] [-t timeout_s] [-s hold_s] [-L]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *domain = "localhost", *prefix = "bench";
	const char *password = "bench-pw", *capath = NULL, *cafile = NULL;
	int port = 0, n = 0, first = 0, concurrent = 0, timeout_s = 300;
	int hold_s = 0, lazy = 0, opt, started = 0;
	char jid[256];

	while ((opt = getopt(argc, argv, "H:p:d:n:o:u:w:C:F:c:t:s:L")) != -1) {
		switch (opt) {
		case 'H': host = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'd': domain = optarg; break;
		case 'n': n = atoi(optarg); break;
		case 'o': first = atoi(optarg); break;
		case 'u': prefix = optarg; break;
		case 'w': password = optarg; break;
		case 'C': capath = optarg; break;
		case 'F': cafile = optarg; break;
		case 'c': concurrent = atoi(optarg); break;
		case 't': timeout_s = atoi(optarg); break;
		case 's': hold_s = atoi(optarg); break;
		case 'L': lazy = 1; break;
		default: bare_usage();
		}
	}
	if (port <= 0 || port > 65535 || n <= 0 || n > BARE_MAX || first < 0 ||
	    timeout_s <= 0 || hold_s < 0)
		bare_usage();
	if (concurrent <= 0 || concurrent > n)
		concurrent = n;

	if (lazy && setenv("SSL_CERT_FILE", "/dev/null", 1) == -1) {
		perror("bare_login: setenv");
		return 1;
	}
	xmpp_initialize();
	xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);
	if (!ctx) {
		fprintf(stderr, "bare_login: no xmpp context\n");
		return 1;
	}
	for (int i = 0; i < n; i++) {
		xmpp_conn_t *c = xmpp_conn_new(ctx);
		if (!c) {
			fprintf(stderr, "bare_login: no connection %d\n", i);
			return 1;
		}
		snprintf(jid, sizeof(jid), "%s%05d@%s/bare", prefix, first + i,
			 domain);
		xmpp_conn_set_jid(c, jid);
		xmpp_conn_set_pass(c, password);
		xmpp_conn_set_flags(c, XMPP_CONN_FLAG_MANDATORY_TLS);
		if (cafile)
			xmpp_conn_set_cafile(c, cafile);
		if (capath)
			xmpp_conn_set_capath(c, capath);
		bare_conns[i].conn = c;
	}
	long rss0 = bare_rss_kib();
	double cpu0 = bare_cpu_s();
	double t0 = bare_now(), deadline = t0 + timeout_s;

	/* Bounded: at most timeout_s seconds, however the server behaves. */
	while (bare_online + bare_failed < n && bare_now() < deadline) {
		while (started < n &&
		       started - (bare_online + bare_failed) < concurrent) {
			struct bare *b = &bare_conns[started++];
			b->started = 1;
			if (xmpp_connect_client(b->conn, host,
						(unsigned short)port, bare_on_conn,
						b) != XMPP_EOK) {
				b->failed = 1;
				bare_failed++;
			}
		}
		xmpp_run_once(ctx, 50);
	}
	double t1 = bare_now();
	double cpu1 = bare_cpu_s();
	long rss1 = bare_rss_kib();
	printf("{\"n\": %d, \"online\": %d, \"failed\": %d, \"seconds\": %.3f, "
	       "\"rss_before_kib\": %ld, \"rss_after_kib\": %ld, "
	       "\"kib_per_session\": %.1f, \"cpu_ms_per_login\": %.2f, "
	       "\"pid\": %ld}\n",
	       n, bare_online, bare_failed, t1 - t0, rss0, rss1,
	       (double)(rss1 - rss0) / n, (cpu1 - cpu0) * 1000.0 / n,
	       (long)getpid());
	fflush(stdout);
	for (double end = bare_now() + hold_s; bare_now() < end;)
		xmpp_run_once(ctx, 100);
	for (int i = 0; i < n; i++)
		if (!xmpp_conn_is_disconnected(bare_conns[i].conn))
			xmpp_disconnect(bare_conns[i].conn);
	for (int i = 0; i < 40; i++) /* up to about 2 s of goodbyes */
		xmpp_run_once(ctx, 50);
	for (int i = 0; i < n; i++)
		xmpp_conn_release(bare_conns[i].conn);
	xmpp_ctx_free(ctx);
	xmpp_shutdown();
	return bare_online == n ? 0 : 1;
}
