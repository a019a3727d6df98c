/*
 * trivial_fcgi.c: the baselines of figure 1 (bench/api/run.py). A FastCGI
 * responder that does the least a JSON API handler can do: read the body,
 * answer 200 with a small JSON object. With -p PORT it also makes the one
 * Redis round trip of talkproxy's architecture per request: PUBLISH the
 * request id on a channel, where bench-responder answers, and BLPOP the
 * reply list, on one connection kept for the process's life, as
 * talkproxy-fcgi does.
 *
 *   bench-trivial-fcgi                   (a) no Redis
 *   bench-trivial-fcgi -p 6379 [-h 127.0.0.1] [-C channel]   (b)
 *
 * Spawned by lighttpd's mod_fastcgi (the listening socket is descriptor 0).
 */
#include "benchbus.h"

#include <fcgiapp.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BODY_MAX 65536
#define WAIT_S "5"

static redisContext *rc;
static struct benchbus_where where = BENCHBUS_WHERE_DEFAULT;

static int redis_up(void)
{
	struct timeval tv = {2, 0};

	if (rc && !rc->err)
		return 0;
	redisFree(rc);
	rc = redisConnectWithTimeout(where.host, where.port, tv);
	if (!rc || rc->err) {
		fprintf(stderr, "bench-trivial-fcgi: redis %s:%d: %s\n",
			where.host, where.port, rc ? rc->errstr : "out of memory");
		redisFree(rc);
		rc = NULL;
		return -1;
	}
	/* Longer than the BLPOP wait, or hiredis gives up first. */
	tv.tv_sec = 10;
	redisSetTimeout(rc, tv);
	return 0;
}

/* One PUBLISH -> responder -> BLPOP round trip. 0, or -1 (no answer). */
static int round_trip(const char *rid)
{
	char key[96];
	redisReply *r;
	int ok;

	if (redis_up() == -1)
		return -1;
	r = redisCommand(rc, "PUBLISH %s %s", where.chan, rid);
	ok = r && r->type == REDIS_REPLY_INTEGER && r->integer > 0;
	freeReplyObject(r);
	if (!ok)
		return -1;
	snprintf(key, sizeof(key), "bench:reply:%s", rid);
	r = redisCommand(rc, "BLPOP %s " WAIT_S, key);
	ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2;
	freeReplyObject(r);
	return ok ? 0 : -1;
}

static void answer(FCGX_Request *req, int status, const char *rid)
{
	FCGX_FPrintF(req->out,
		     "Status: %d %s\r\n"
		     "Content-Type: application/json\r\n"
		     "Cache-Control: no-store\r\n\r\n"
		     "{\"id\":\"%s\"}\n",
		     status, status == 200 ? "OK" : "Service Unavailable", rid);
}

static void serve(FCGX_Request *req, char *buf, unsigned long n)
{
	char rid[64];
	long len = 0;
	int got;

	while (len <= BODY_MAX &&
	       (got = FCGX_GetStr(buf + len, (int)(BODY_MAX + 1 - len),
				  req->in)) > 0)
		len += got;
	snprintf(rid, sizeof(rid), "%ld-%lu", (long)getpid(), n);
	if (len > BODY_MAX || (where.port && round_trip(rid) == -1))
		answer(req, 503, rid);
	else
		answer(req, 200, rid);
}

int main(int argc, char **argv)
{
	static char buf[BODY_MAX + 2];
	FCGX_Request req;
	unsigned long n = 0;
	int opt;

	while ((opt = getopt(argc, argv, BENCHBUS_OPTIONS)) != -1) {
		if (!benchbus_option(&where, opt, optarg)) {
			fprintf(stderr, "usage: bench-trivial-fcgi [-p redis-port "
					"[-h host] [-C channel]]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
		return 1;
	if (where.port)
		redis_up(); /* retried per request when it fails */
	while (FCGX_Accept_r(&req) == 0) {
		serve(&req, buf, n++);
		/* As talkproxy-fcgi does: no lingering close once the body
		 * was read to its end. */
		if (FCGX_HasSeenEOF(req.in))
			FCGX_Detach(&req);
		FCGX_Finish_r(&req);
	}
	redisFree(rc);
	return 0;
}
