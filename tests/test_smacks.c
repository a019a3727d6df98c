/* test_smacks.c: stream management counters, copies and timing. */
#include <stdint.h>
#include <string.h>

#include "smacks.h"
#include "tap.h"

static void send_n(struct smacks *sm, int n, const char *what)
{
	for (int i = 0; i < n; i++)
		smacks_sent(sm, what, strlen(what));
}

static void test_counting(void)
{
	struct smacks sm = {0};
	struct smacks_item *it;

	ok(smacks_sent(&sm, "<x/>", 4) == 0 && sm.queued == 0,
	   "nothing is kept before <enable/>");
	smacks_enable(&sm);
	send_n(&sm, 3, "<message/>");
	ok(sm.queued == 3 && sm.out == 3, "three stanzas sent, three copies");
	ok(smacks_acked(&sm, 2) == 0 && sm.queued == 1 && sm.head->h == 3,
	   "<a h='2'/> drops the two oldest");
	ok(smacks_acked(&sm, 5) == -1 && sm.queued == 1,
	   "an answer counting more than was sent is refused");
	ok(smacks_acked(&sm, 3) == 0 && sm.queued == 0 && !sm.head && !sm.tail,
	   "the last answer empties the queue");
	smacks_received(&sm);
	smacks_received(&sm);
	ok(sm.in == 2, "incoming stanzas are counted");
	ok(smacks_enabled(&sm, "abc", "a@b/c") == 0 && sm.in == 0 &&
	   strcmp(sm.id, "abc") == 0,
	   "<enabled/> starts the incoming count and keeps the resumption id");
	send_n(&sm, 2, "<presence/>");
	smacks_lost(&sm);
	ok(!sm.counting && sm.queued == 2 && sm.id,
	   "a lost stream keeps its copies and id for resumption");
	ok(smacks_sent(&sm, "<x/>", 4) == 0 && sm.queued == 2,
	   "nothing is counted while the stream is down");
	ok(smacks_resumed(&sm, 4) == 0 && sm.queued == 1 && sm.head->h == 5 &&
	   sm.counting,
	   "<resumed h='4'/> drops what the server had; one is to send again");
	smacks_lost(&sm);
	smacks_forget(&sm);
	smacks_enable(&sm);
	int n = 0;
	smacks_each(&sm, it)
		n++;
	ok(!sm.id && n == 1 && sm.head->h == 1 && sm.out == 1,
	   "a replaced stream numbers the copies left anew");
	smacks_clear(&sm);
	ok(!sm.head && !sm.id && sm.queued == 0, "clear frees everything");
}

static void test_wrap(void)
{
	struct smacks sm = {0};

	smacks_enable(&sm);
	sm.out = sm.out_acked = UINT32_MAX - 1;
	send_n(&sm, 3, "<message/>");
	ok(sm.out == 1, "the count wraps at 2^32");
	ok(smacks_acked(&sm, 0) == 0 && sm.queued == 1,
	   "an answer across the wrap drops the right copies");
	ok(smacks_acked(&sm, UINT32_MAX) == -1,
	   "an answer from before the last one is refused");
	smacks_clear(&sm);
}

static void test_timing(void)
{
	struct smacks sm = {0};
	int wait = 1000;

	smacks_enable(&sm);
	ok(smacks_due(&sm, 10, &wait) == 0 && !smacks_waiting(&sm),
	   "nothing to do on a quiet stream");
	smacks_received(&sm);
	smacks_asked(&sm);
	ok(smacks_due(&sm, 1000, &wait) == SMACKS_ANSWER,
	   "a request long after the last answer is answered at once");
	ok(smacks_answer(&sm, 1000) == 1 && !smacks_waiting(&sm),
	   "the answer carries the count");
	smacks_received(&sm);
	smacks_asked(&sm);
	wait = 1000;
	ok(smacks_due(&sm, 1040, &wait) == 0 && wait == SMACKS_ACK_GAP_MS - 40,
	   "the next request waits for the gap, and says how long");
	ok(smacks_due(&sm, 1000 + SMACKS_ACK_GAP_MS, &wait) == SMACKS_ANSWER,
	   "and is answered when it has passed");
	for (int i = 0; i < SMACKS_ACK_BATCH; i++)
		smacks_received(&sm);
	ok(smacks_due(&sm, 1041, &wait) == SMACKS_ANSWER,
	   "a full batch is answered before the gap");
	smacks_answer(&sm, 1041);
	send_n(&sm, 1, "<message/>");
	wait = 1000;
	ok(smacks_due(&sm, 1041, &wait) == SMACKS_ASK && smacks_waiting(&sm),
	   "a copy waiting: we ask");
	smacks_ask(&sm, 1041);
	ok(smacks_due(&sm, 5000, &wait) == 0 && !smacks_waiting(&sm),
	   "not again while our request is open");
	smacks_acked(&sm, 1);
	send_n(&sm, 1, "<message/>");
	wait = 1000;
	ok(smacks_due(&sm, 1100, &wait) == 0 &&
	   wait == SMACKS_ASK_GAP_MS - 59,
	   "the next request waits for its own gap");
	send_n(&sm, SMACKS_ASK_BATCH, "<message/>");
	ok(smacks_due(&sm, 1100, &wait) == SMACKS_ASK,
	   "a full batch is asked for before the gap");
	smacks_clear(&sm);
}

static void test_limits(void)
{
	struct smacks sm = {0};
	int r = 0;
	uint32_t h;

	smacks_enable(&sm);
	for (int i = 0; i < SMACKS_QUEUE_MAX && r == 0; i++)
		r = smacks_sent(&sm, "<m/>", 4);
	ok(r == 0 && smacks_sent(&sm, "<m/>", 4) == -1,
	   "past SMACKS_QUEUE_MAX unacknowledged copies the stream is refused");
	smacks_off(&sm);
	ok(sm.queued == 0 && !sm.counting, "off drops the copies");
	ok(smacks_parse_h("4294967295", &h) == 0 && h == UINT32_MAX,
	   "h parses up to 2^32-1");
	ok(smacks_parse_h("4294967296", &h) == -1 &&
	   smacks_parse_h("-1", &h) == -1 && smacks_parse_h("", &h) == -1 &&
	   smacks_parse_h("12x", &h) == -1 && smacks_parse_h(NULL, &h) == -1,
	   "h refuses overflow, signs, junk and absence");
}

/* A stream left by another process (a restart): resumed from its record. */
static void test_adopt(void)
{
	struct smacks sm = {0};

	ok(smacks_adopt(&sm, "prev", "a@b/c", 7) == 0 && sm.in == 7 &&
	   sm.in_acked == 7 && !sm.counting && strcmp(sm.id, "prev") == 0 &&
	   strcmp(sm.bound, "a@b/c") == 0,
	   "an adopted stream starts from the count it was left at");
	ok(smacks_resumed(&sm, 40) == 0 && sm.out == 40 && sm.out_acked == 40 &&
	   sm.queued == 0 && sm.counting && !sm.adopted,
	   "<resumed/> is taken at its word: no copies were inherited");
	send_n(&sm, 2, "<message/>");
	ok(sm.head->h == 41 && smacks_acked(&sm, 42) == 0 && sm.queued == 0,
	   "what is sent next counts on from the server's number");
	smacks_received(&sm);
	ok(sm.in == 8, "incoming stanzas count on from the adopted number");
	ok(smacks_resumed(&sm, 50) == -1,
	   "a later resumption checks the server's count again");
	smacks_lost(&sm);
	ok(smacks_adopt(&sm, "other", "a@b/d", 1) == 0 && sm.adopted &&
	   strcmp(sm.id, "other") == 0 && sm.queued == 0,
	   "adopting replaces what was there");
	smacks_forget(&sm);
	ok(!sm.adopted && !sm.id, "forgetting (<failed/>) ends the adoption");
	smacks_clear(&sm);
}

int main(void)
{
	test_counting();
	test_adopt();
	test_wrap();
	test_timing();
	test_limits();
	return tap_done();
}
