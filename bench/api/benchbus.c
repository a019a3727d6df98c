/* benchbus.c: the responders' shared Redis side (benchbus.h). */
#include "benchbus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int benchbus_option(struct benchbus_where *w, int opt, const char *arg)
{
	switch (opt) {
	case 'h': w->host = arg; return 1;
	case 'p': w->port = atoi(arg); return 1;
	case 'C': w->chan = arg; return 1;
	default: return 0;
	}
}

redisContext *benchbus_connect(const char *prog, const char *host, int port)
{
	struct timeval tv = {2, 0};
	redisContext *c = redisConnectWithTimeout(host, port, tv);

	if (!c || c->err) {
		fprintf(stderr, "%s: redis %s:%d: %s\n", prog, host, port,
			c ? c->errstr : "out of memory");
		exit(1);
	}
	return c;
}

redisContext *benchbus_subscribe(const char *prog, const char *host, int port,
				 const char *chan)
{
	redisContext *c = benchbus_connect(prog, host, port);
	redisReply *r = redisCommand(c, "SUBSCRIBE %s", chan);

	if (!r) {
		fprintf(stderr, "%s: SUBSCRIBE failed\n", prog);
		exit(1);
	}
	freeReplyObject(r);
	printf("subscribed %s\n", chan);
	fflush(stdout);
	return c;
}

/* The request id of a pub/sub "message" reply, or NULL. */
static const char *benchbus_request_id(const redisReply *r)
{
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "message") == 0 &&
	    r->element[2]->type == REDIS_REPLY_STRING)
		return r->element[2]->str;
	return NULL;
}

int benchbus_answer(redisContext *pc, redisReply **batch, int n,
		    int (*each)(void *ud, const char *rid), void *ud)
{
	redisReply *r;
	int queued = 0;

	for (int i = 0; i < n; i++) {
		const char *rid = benchbus_request_id(batch[i]);
		if (!rid)
			continue;
		if (each && each(ud, rid) == -1)
			return -1;
		redisAppendCommand(pc, "LPUSH bench:reply:%s {\"status\":200}", rid);
		redisAppendCommand(pc, "EXPIRE bench:reply:%s 60", rid);
		queued += 2;
	}
	for (int i = 0; i < queued; i++) {
		if (redisGetReply(pc, (void **)&r) != REDIS_OK)
			return -1;
		freeReplyObject(r);
	}
	return 0;
}
