/*
 * main.c: talkproxyd, the session daemon. One loop thread owns libstrophe
 * and the request subscription: wait for the streams or a request, run
 * the XMPP event loop once, handle the requests, run the session timers,
 * repeat. (The push thread, push.h, sends notifications beside it.)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bus.h"
#include "client.h"
#include "config.h"
#include "listener.h"
#include "log.h"
#include "push.h"
#include "seal.h"
#include "session.h"
#include "wire.h"

/* How long the loop may sleep when nothing happens. A request wakes it at
 * once (listener.h); this only bounds timer granularity and idle CPU. */
#define DAEMON_IDLE_WAIT_MS 1000
#define DAEMON_SHUTDOWN_MS 3000

static volatile sig_atomic_t daemon_stop;

static void daemon_on_term(int sig)
{
	(void)sig;
	daemon_stop = 1;
}

/*
 * libstrophe's select() corrupts memory at descriptor FD_SETSIZE: cap the
 * process below it, so running out is a clean EMFILE, never a crash.
 */
static void daemon_cap_descriptors(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > FD_SETSIZE) {
		rl.rlim_cur = FD_SETSIZE;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_fatal("cannot cap descriptors at %d: %m", FD_SETSIZE);
	}
}

static void daemon_setup(int argc, char **argv, struct config *cfg)
{
	const char *path = NULL;
	char err[512];
	int opt, dump = 0;

	while ((opt = getopt(argc, argv, "c:d")) != -1) {
		if (opt == 'c')
			path = optarg;
		else if (opt == 'd')
			dump = 1;
		else
			log_fatal("usage: talkproxyd -c config [-d]");
	}
	config_init(cfg);
	if (!path)
		log_fatal("usage: talkproxyd -c config [-d]");
	if (config_load(cfg, path, err, sizeof(err)) == -1)
		log_fatal("%s", err);
	if (dump) {
		config_dump(cfg, stdout);
		exit(0);
	}
	if (log_open("talkproxyd", cfg->log_level, cfg->log_file) == -1)
		log_fatal("cannot open the log");
	if (seal_init() == -1)
		log_fatal("libsodium failed to initialise");
	if (!cfg->daemon_id[0])
		seal_random_id(cfg->daemon_id);
	daemon_cap_descriptors();
}

static void daemon_signals(void)
{
	struct sigaction sa = {.sa_handler = daemon_on_term};
	sigset_t set;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static void daemon_request(void *arg, const char *msg, size_t len)
{
	session_table_handle(arg, msg, len);
}

/* One turn of the loop; returns how long the next may wait. */
static unsigned long daemon_pass(struct listener *l, struct client_ctx *cx,
				 struct session_table *t, unsigned long wait_ms)
{
	unsigned long next = DAEMON_IDLE_WAIT_MS;

	client_ctx_run_once(cx, wait_ms);
	if (l)
		next = listener_pass(l, daemon_request, t, next);
	session_table_tick(t);
	/* The pass's replies go out together, before the next wait. */
	session_table_flush(t);
	return next;
}

/* Streams are left for the successor to resume, or closed (session.h);
 * either takes a moment of the loop. */
static void daemon_shutdown(struct client_ctx *cx, struct session_table *t)
{
	for (int waited = 0;; waited += 50) {
		int last = waited >= DAEMON_SHUTDOWN_MS;
		size_t open = session_table_hand_off(t, last);
		session_table_flush(t); /* the records it wrote */
		if (open == 0 || last)
			break;
		daemon_pass(NULL, cx, t, 50);
	}
}

int main(int argc, char **argv)
{
	static struct config cfg;
	char channel[sizeof(WIRE_CHAN_DAEMON_PREFIX) + CONFIG_STR_MAX];

	daemon_setup(argc, argv, &cfg);
	struct bus *bus = bus_open(&cfg);
	struct client_ctx *cx = client_ctx_new(&cfg);
	struct push *push = push_start(&cfg);
	if (!bus || !cx || !push)
		log_fatal("cannot start: see the errors above");
	struct session_table *t =
		session_table_new(&cfg, cx, bus, push, cfg.daemon_id);
	snprintf(channel, sizeof(channel), "%s%s", WIRE_CHAN_DAEMON_PREFIX,
		 cfg.daemon_id);
	daemon_signals();
	if (!t)
		log_fatal("cannot start: see the errors above");
	struct listener *l = listener_new(&cfg, cx, channel);
	if (!l)
		log_fatal("cannot start: out of memory");
	log_info("talkproxyd %s started as %s (at most %d sessions)",
		 PACKAGE_VERSION, cfg.daemon_id, cfg.daemon_max_sessions);
	/* Adopt and start reconnecting orphaned sessions now, not after the
	 * first idle wait. */
	session_table_tick(t);
	for (unsigned long wait = 0; !daemon_stop;)
		wait = daemon_pass(l, cx, t, wait);
	log_info("stopping: handing off %zu sessions", session_table_count(t));
	listener_free(l);
	daemon_shutdown(cx, t);
	session_table_free(t);
	push_stop(push);
	client_ctx_free(cx);
	bus_close(bus);
	log_info("stopped");
	log_close();
	return 0;
}
