/*
 * push.c: the push thread (push.h). It alone touches libcurl: one multi
 * handle carries every request, so endpoints share one connection pool and
 * a slow endpoint holds only its own transfers. Each kind is a few rows of
 * per-request operations (body, headers, reading the answer); the generic
 * code around them does retries, time limits, results and logging.
 */
#include "push.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "config.h"
#include "log.h"
#include "payload.h"
#include "pushaddr.h"
#include "seal.h"

#define PUSH_ANSWER_MAX (16 * 1024) /* response body bytes read at most */
#define PUSH_POLL_MAX_MS 1000
/* One slow or busy endpoint must not take every connection. */
#define PUSH_HOST_CONNECTIONS 8L
#define PUSH_TOTAL_CONNECTIONS 64L
/* MPNS takes 3 KB of payload; these keep a toast well under it. */
#define PUSH_TOAST_TITLE_MAX 100
#define PUSH_TOAST_TEXT_MAX 200
#define PUSH_USER_AGENT "talkproxy/" PACKAGE_VERSION
#define PUSH_WHY_MAX 160

/* ---- kinds ---- */

static const char *const push_kind_names[] = {
    [PUSH_WEBPUSH] = "webpush",
    [PUSH_WEBHOOK] = "webhook",
    [PUSH_MPNS] = "mpns",
};

int push_kind_parse(const char *name, enum push_kind *kind)
{
	for (size_t i = 0;
	     i < sizeof(push_kind_names) / sizeof(*push_kind_names); i++)
		if (strcmp(name, push_kind_names[i]) == 0) {
			*kind = (enum push_kind)i;
			return 0;
		}
	return -1;
}

const char *push_kind_name(enum push_kind kind)
{
	return (unsigned)kind <= PUSH_MPNS ? push_kind_names[kind] : "?";
}

/* ---- state ---- */

/* What one request is: a kind's main request or an MPNS fallback. */
enum push_role {
	PUSH_R_WEBPUSH,
	PUSH_R_WEBHOOK,
	PUSH_R_RAW,
	PUSH_R_TOAST,
	PUSH_R_TILE,
	PUSH_R_SECONDARY,
};

/* The raw request plus the toast, tile and secondary tile behind it. */
#define PUSH_REQS 4

/* How an answer (or its absence) is taken. */
enum push_verdict {
	PUSH_V_OK,
	PUSH_V_GONE,
	PUSH_V_FAIL,
	PUSH_V_RETRY,
	PUSH_V_FALLBACK, /* MPNS raw suppressed: send toast/tile instead */
};

struct push_task;
struct push_req;

/* Headers being built for one attempt; the first failure sticks. */
struct push_hdrs {
	struct curl_slist *list;
	int failed;
};

/* One kind of request: a row of push_roles[]. */
struct push_role_ops {
	const char *name; /* in log lines */
	const char *content_type;
	const char *(*body)(const struct push_task *t, struct push_req *r);
	const char *(*headers)(struct push *p, struct push_req *r,
			       struct push_hdrs *h);
	enum push_verdict (*answer)(const struct push_req *r);
	const char *mpns_target; /* X-WindowsPhone-Target, NULL for raw */
	int mpns_class;		 /* X-NotificationClass for PUSH_NOW; 0: none */
};

/* One HTTP request and its attempts. Owned by its task. */
struct push_req {
	struct push_task *task;
	enum push_role role;
	CURL *easy;		    /* from the first attempt to the end */
	struct curl_slist *headers; /* this attempt's */
	char *body;		    /* built once, sent on every attempt */
	size_t body_len;
	int attempts;
	int in_multi;
	int64_t due_ms; /* while waiting in push.waiting */
	struct push_req *next_due;
	/* The current attempt's answer. */
	long status;
	size_t received;
	int oversize;
	const char *refusal; /* pushaddr's reason for a refused address */
	char retry_after[64];
	char notif_status[32];
	char why[PUSH_WHY_MAX]; /* the attempt's result in words, for logs */
};

/* One push_send() call. Owned by the inbox, then by the push thread. */
struct push_task {
	struct push *p;
	char sid[WIRE_ID_HEX + 1];
	enum push_kind kind;
	enum push_class cls;
	char *url;
	char host[256]; /* the only part of url that may be logged */
	uint8_t p256dh[WEBPUSH_KEY_BYTES];
	uint8_t auth[WEBPUSH_AUTH_BYTES];
	char *type, *sealed;
	int toast, tile, secondary_tile, from_has_tile, unread, unread_from;
	char *from, *title, *text;
	struct push_req req[PUSH_REQS];
	int nreq;
	int open; /* requests not finished */
	int attempts;
	enum push_outcome outcome;
	long status;
	int64_t queued_ms;
	struct push_task *prev, *next; /* inbox (next only), then live */
};

struct push {
	struct config cfg; /* a copy: the thread never reads the caller's */
	struct webpush_vapid *vapid;
	uint8_t webhook_sk[SEAL_SIGN_SECRET_BYTES];
	int have_webhook, curl_ready;
	CURLM *multi;
	pthread_t thread;
	atomic_int stop;

	pthread_mutex_t lock; /* guards the fields up to the next comment */
	struct push_task *inbox, **inbox_tail;
	struct push_result *results, **results_tail;
	int pending;	       /* accepted tasks not finished */
	unsigned long skipped; /* refused since the queue last had room */

	/* The push thread's alone. */
	struct push_task *live;	  /* taken from the inbox, not finished */
	struct push_req *waiting; /* requests to start, by due time */
	int perform_failing, poll_failing;
};

static int64_t push_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- bodies ---- */

/* {"v":1,"type":...,"payload":...}: what Web Push encrypts and webhooks get. */
static char *push_payload_json(const struct push_task *t)
{
	json_t *o = json_pack("{s:i, s:s, s:s}", "v", 1, "type", t->type,
			      "payload", t->sealed);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

static const char *push_body_webpush(const struct push_task *t,
				     struct push_req *r)
{
	char *plain = push_payload_json(t);
	uint8_t *out;
	int rc;

	if (!plain)
		return "cannot build the payload";
	rc = webpush_encrypt((const uint8_t *)plain, strlen(plain), t->p256dh,
			     t->auth, &out, &r->body_len);
	free(plain);
	if (rc == -1)
		return "cannot encrypt the payload";
	r->body = (char *)out;
	return NULL;
}

static const char *push_body_webhook(const struct push_task *t,
				     struct push_req *r)
{
	r->body = push_payload_json(t);
	if (!r->body)
		return "cannot build the payload";
	r->body_len = strlen(r->body);
	return NULL;
}

static const char *push_body_raw(const struct push_task *t, struct push_req *r)
{
	if (asprintf(&r->body, "msg:%s", t->sealed) < 0) {
		r->body = NULL;
		return "out of memory";
	}
	r->body_len = strlen(r->body);
	return NULL;
}

/*
 * Writes up to max bytes of s escaped for XML text and attribute values.
 * Control characters XML 1.0 forbids become spaces: MPNS would refuse the
 * whole notification over one.
 */
static void push_xml(FILE *f, const char *s, size_t max)
{
	static const char special[] = "&<>\"'";
	static const char *const entity[] = {"&amp;", "&lt;", "&gt;", "&quot;",
					     "&apos;"};
	size_t n;

	_Static_assert(sizeof(special) - 1 == sizeof(entity) / sizeof(*entity),
		       "one entity per special character");
	s = s ? s : "";
	n = payload_utf8_cut(s, max);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *hit = strchr(special, c); /* c is never NUL here */

		if (hit)
			fputs(entity[hit - special], f);
		else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
			fputc(' ', f);
		else
			fputc(c, f);
	}
}

#define PUSH_XML_HEAD                                                          \
	"<?xml version=\"1.0\" encoding=\"utf-8\"?>"                           \
	"<wp:Notification xmlns:wp=\"WPNotification\">"
#define PUSH_XML_TAIL "</wp:Notification>"

/* Closes a memstream into r's body, or frees what it held on any error. */
static const char *push_xml_end(FILE *f, struct push_req *r)
{
	int bad = ferror(f);

	if (fclose(f) != 0 || bad) {
		free(r->body);
		r->body = NULL;
		return "out of memory";
	}
	return NULL;
}

static const char *push_body_toast(const struct push_task *t,
				   struct push_req *r)
{
	char *from = curl_easy_escape(NULL, t->from ? t->from : "", 0);
	FILE *f = from ? open_memstream(&r->body, &r->body_len) : NULL;

	if (!f) {
		curl_free(from);
		return "out of memory";
	}
	fputs(PUSH_XML_HEAD "<wp:Toast><wp:Text1>", f);
	push_xml(f, t->title, PUSH_TOAST_TITLE_MAX);
	fputs("</wp:Text1><wp:Text2>", f);
	push_xml(f, t->text, PUSH_TOAST_TEXT_MAX);
	fputs("</wp:Text2><wp:Param>/ChatPage.xaml?from=", f);
	push_xml(f, from, SIZE_MAX - 1);
	fputs("</wp:Param></wp:Toast>" PUSH_XML_TAIL, f);
	curl_free(from);
	return push_xml_end(f, r);
}

/* The application tile, or the sender's secondary tile. */
static const char *push_body_tile(const struct push_task *t, struct push_req *r)
{
	FILE *f = open_memstream(&r->body, &r->body_len);

	if (!f)
		return "out of memory";
	fputs(PUSH_XML_HEAD, f);
	if (r->role == PUSH_R_SECONDARY) {
		/* The Id is the tile's own URI, as the app pinned it. */
		fputs("<wp:Tile Id=\"/ChatPage.xaml?from=", f);
		push_xml(f, t->from, SIZE_MAX - 1);
		fprintf(f, "\"><wp:Count>%d</wp:Count>", t->unread_from);
	} else {
		fprintf(f, "<wp:Tile><wp:Count>%d</wp:Count>", t->unread);
	}
	fputs("</wp:Tile>" PUSH_XML_TAIL, f);
	return push_xml_end(f, r);
}

/* ---- headers ---- */

static void push_hdr(struct push_hdrs *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends a header line; the first failure sticks in h->failed. */
static void push_hdr(struct push_hdrs *h, const char *fmt, ...)
{
	struct curl_slist *n;
	char *line;
	va_list ap;
	int len;

	if (h->failed)
		return;
	va_start(ap, fmt);
	len = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (len < 0) {
		h->failed = 1;
		return;
	}
	n = curl_slist_append(h->list, line);
	free(line);
	if (n)
		h->list = n;
	else
		h->failed = 1;
}

static const char *push_hdr_webpush(struct push *p, struct push_req *r,
				    struct push_hdrs *h)
{
	static const char *const urgency[] = {
	    [PUSH_NOW] = "high", [PUSH_SOON] = "normal", [PUSH_LATER] = "low"};
	const struct push_task *t = r->task;
	char *vapid;

	if (!p->vapid)
		return "no VAPID key configured";
	/* Made per attempt: the token expires, and retries can be hours. */
	vapid = webpush_vapid_header(p->vapid, t->url,
				     p->cfg.push_vapid_subject, time(NULL));
	if (!vapid)
		return "cannot sign the VAPID token";
	push_hdr(h, "TTL: %d", p->cfg.push_ttl);
	push_hdr(h, "Urgency: %s", urgency[t->cls]);
	push_hdr(h, "Content-Encoding: aes128gcm");
	push_hdr(h, "Authorization: %s", vapid);
	free(vapid);
	return NULL;
}

/* Signs "<timestamp>.<body>": a receiver can refuse stale replays. */
static const char *push_hdr_webhook(struct push *p, struct push_req *r,
				    struct push_hdrs *h)
{
	uint8_t sig[SEAL_SIGN_BYTES];
	char ts[32], *msg, *b64;
	int n = snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));

	if (!p->have_webhook)
		return "no webhook signing key configured";
	msg = malloc((size_t)n + 1 + r->body_len);
	if (!msg)
		return "out of memory";
	memcpy(msg, ts, (size_t)n);
	msg[n] = '.';
	memcpy(msg + n + 1, r->body, r->body_len);
	seal_sign(sig, msg, (size_t)n + 1 + r->body_len, p->webhook_sk);
	free(msg);
	b64 = seal_base64(sig, sizeof(sig), SEAL_B64URL);
	if (!b64)
		return "out of memory";
	push_hdr(h, "X-Talkproxy-Timestamp: %s", ts);
	push_hdr(h, "X-Talkproxy-Signature: ed25519=%s", b64);
	free(b64);
	return NULL;
}

/* ---- answers ---- */

static enum push_verdict push_answer_http(const struct push_req *r)
{
	if (r->status >= 200 && r->status < 300)
		return PUSH_V_OK;
	if (r->status == 404 || r->status == 410)
		return PUSH_V_GONE;
	if (r->status == 429 || r->status >= 500)
		return PUSH_V_RETRY;
	/* 401/403 (VAPID refused), 413 (too large), a redirect we do not
	 * follow: sending the same again would get the same answer. */
	return PUSH_V_FAIL;
}

static enum push_verdict push_answer_mpns(const struct push_req *r)
{
	const char *s = r->notif_status;

	if (r->status == 200 && strcmp(s, "Received") == 0)
		return PUSH_V_OK;
	if (r->status == 200 && strcmp(s, "Suppressed") == 0)
		/* A suppressed toast or tile: the user turned it off on the
		 * phone; nothing to retry and nothing left to fall back to. */
		return r->role == PUSH_R_RAW ? PUSH_V_FALLBACK : PUSH_V_OK;
	if (r->status == 200 && strcmp(s, "QueueFull") == 0)
		return PUSH_V_RETRY;
	if (r->status == 404)
		return PUSH_V_GONE;
	if (r->status == 429 || r->status >= 500)
		return PUSH_V_RETRY;
	/* 200 Dropped, 400, 401, 405, 406 (daily limit), 412 (inactive). */
	return PUSH_V_FAIL;
}

/* ---- the table of requests ---- */

/* clang-format off */
static const struct push_role_ops push_roles[] = {
	[PUSH_R_WEBPUSH] = {"webpush", "application/octet-stream",
		push_body_webpush, push_hdr_webpush, push_answer_http, NULL, 0},
	[PUSH_R_WEBHOOK] = {"webhook", "application/json",
		push_body_webhook, push_hdr_webhook, push_answer_http, NULL, 0},
	[PUSH_R_RAW] = {"mpns raw", "text/plain",
		push_body_raw, NULL, push_answer_mpns, NULL, 3},
	[PUSH_R_TOAST] = {"mpns toast", "text/xml",
		push_body_toast, NULL, push_answer_mpns, "toast", 2},
	[PUSH_R_TILE] = {"mpns tile", "text/xml",
		push_body_tile, NULL, push_answer_mpns, "token", 1},
	[PUSH_R_SECONDARY] = {"mpns secondary tile", "text/xml",
		push_body_tile, NULL, push_answer_mpns, "token", 1},
};
/* clang-format on */

static const enum push_role push_first_role[] = {
    [PUSH_WEBPUSH] = PUSH_R_WEBPUSH,
    [PUSH_WEBHOOK] = PUSH_R_WEBHOOK,
    [PUSH_MPNS] = PUSH_R_RAW,
};

/* ---- one request ---- */

static size_t push_on_body(char *buf, size_t size, size_t n, void *arg)
{
	struct push_req *r = arg;

	(void)buf;
	r->received += size * n;
	if (r->received > PUSH_ANSWER_MAX) {
		r->oversize = 1;
		return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
	}
	return size * n;
}

/* Copies the printable value of header line "name: value" into out. */
static void push_header_value(const char *line, size_t len, const char *name,
			      char *out, size_t outlen)
{
	size_t nl = strlen(name), i, j = 0;

	if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
		return;
	for (i = nl + 1; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	while (i < len && j + 1 < outlen && line[i] >= 0x20 && line[i] < 0x7f)
		out[j++] = line[i++];
	while (j > 0 && out[j - 1] == ' ')
		j--;
	out[j] = '\0';
}

static size_t push_on_header(char *line, size_t size, size_t n, void *arg)
{
	struct push_req *r = arg;
	size_t len = size * n;

	/* A status line starts a response: forget an interim 1xx one's. */
	if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		r->retry_after[0] = r->notif_status[0] = '\0';
		return len;
	}
	push_header_value(line, len, "Retry-After", r->retry_after,
			  sizeof(r->retry_after));
	push_header_value(line, len, "X-NotificationStatus", r->notif_status,
			  sizeof(r->notif_status));
	return len;
}

/*
 * pushaddr_opensocket() judges the address; asking pushaddr_refusal()
 * first keeps the reason, so a refused endpoint is named in the log and
 * not retried (the same DNS answer would be refused again).
 */
static curl_socket_t push_opensocket(void *arg, curlsocktype purpose,
				     struct curl_sockaddr *a)
{
	struct push_req *r = arg;
	const int *loop = &r->task->p->cfg.push_allow_loopback;
	const char *why = NULL;

	if (purpose == CURLSOCKTYPE_IPCXN && a->addr.sa_family == a->family)
		why = pushaddr_refusal(&a->addr, a->addrlen, *loop);
	if (why)
		r->refusal = why;
	return pushaddr_opensocket((void *)loop, purpose, a);
}

/* Sets every option of r's handle; the one place they are checked. */
static const char *push_easy_options(struct push *p, struct push_req *r,
				     struct curl_slist *headers)
{
	const char *protocols = p->cfg.push_allow_http ? "http,https" : "https";
	CURL *e = r->easy;
	int rc = 0;

	rc |= curl_easy_setopt(e, CURLOPT_URL, r->task->url);
	rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	rc |= curl_easy_setopt(e, CURLOPT_POST, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
	rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
			       (curl_off_t)r->body_len);
	rc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	rc |= curl_easy_setopt(e, CURLOPT_USERAGENT, PUSH_USER_AGENT);
	/* pushaddr.h: the address check holds only with these four. */
	rc |= curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, push_opensocket);
	rc |= curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r);
	rc |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, protocols);
	rc |= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
	rc |= curl_easy_setopt(e, CURLOPT_PROXY, "");
	rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			       (long)p->cfg.push_connect_timeout_ms);
	rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
			       (long)p->cfg.push_timeout_ms);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, push_on_body);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	rc |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, push_on_header);
	rc |= curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	if (p->cfg.push_cafile[0])
		rc |= curl_easy_setopt(e, CURLOPT_CAINFO, p->cfg.push_cafile);
#if LIBCURL_VERSION_NUM >= 0x075700
	/* Abandoning a transfer must not wait for its DNS thread: push_stop()
	 * is bounded. The resolver thread cleans up after itself. */
	rc |= curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
#endif
	return rc == 0 ? NULL : "curl refused an option";
}

/* Headers every request has, then the role's. */
static const char *push_headers(struct push *p, struct push_req *r,
				struct push_hdrs *h)
{
	const struct push_role_ops *ops = &push_roles[r->role];
	const char *why;

	push_hdr(h, "Content-Type: %s", ops->content_type);
	/* No "Expect: 100-continue" round trip before a small body. */
	push_hdr(h, "Expect:");
	/* The immediate class, or the one delivered within 450 s or 900 s. */
	if (ops->mpns_class)
		push_hdr(h, "X-NotificationClass: %d",
			 ops->mpns_class + 10 * (int)r->task->cls);
	if (ops->mpns_target)
		push_hdr(h, "X-WindowsPhone-Target: %s", ops->mpns_target);
	why = ops->headers ? ops->headers(p, r, h) : NULL;
	if (!why && h->failed)
		why = "out of memory";
	return why;
}

/* What the first attempt needs once: the body and the handle. */
static const char *push_req_prepare(struct push_req *r)
{
	const char *why = push_roles[r->role].body(r->task, r);

	if (why)
		return why;
	r->easy = curl_easy_init();
	return r->easy ? NULL : "out of memory";
}

/* Frees what a finished (or abandoned) request holds. */
static void push_req_clear(struct push *p, struct push_req *r)
{
	if (r->in_multi)
		curl_multi_remove_handle(p->multi, r->easy);
	r->in_multi = 0;
	curl_easy_cleanup(r->easy);
	r->easy = NULL;
	curl_slist_free_all(r->headers);
	r->headers = NULL;
	free(r->body);
	r->body = NULL;
}

/* ---- jobs ---- */

static void push_task_free(struct push_task *t)
{
	if (!t)
		return;
	free(t->url);
	free(t->type);
	free(t->sealed);
	free(t->from);
	free(t->title);
	free(t->text);
	free(t);
}

static void push_schedule(struct push *p, struct push_req *r, int64_t due)
{
	struct push_req **pp = &p->waiting;

	/* Same due times keep their order: a job's requests go out in turn. */
	while (*pp && (*pp)->due_ms <= due)
		pp = &(*pp)->next_due;
	r->due_ms = due;
	r->next_due = *pp;
	*pp = r;
}

static void push_req_add(struct push *p, struct push_task *t,
			 enum push_role role)
{
	struct push_req *r = &t->req[t->nreq++];

	r->task = t;
	r->role = role;
	t->open++;
	push_schedule(p, r, push_now_ms());
}

/* Raw notifications suppressed: what the user chose to see instead. */
static void push_mpns_fallback(struct push *p, struct push_task *t)
{
	if (t->toast)
		push_req_add(p, t, PUSH_R_TOAST);
	if (t->tile)
		push_req_add(p, t, PUSH_R_TILE);
	if (t->secondary_tile && t->from_has_tile)
		push_req_add(p, t, PUSH_R_SECONDARY);
	_Static_assert(PUSH_REQS == 4, "raw plus three fallbacks");
}

static const char *const push_outcome_names[] = {
    [PUSH_DELIVERED] = "delivered",
    [PUSH_GONE] = "gone",
    [PUSH_FAILED] = "failed",
};

/* Hands the outcome to the loop thread and frees the task. */
static void push_task_finish(struct push *p, struct push_task *t)
{
	struct push_result *res = calloc(1, sizeof(*res));

	/* One line per push at info would be a write per message; what
	 * went wrong is what an admin needs to see. */
	log_msg(t->outcome == PUSH_DELIVERED && t->attempts == 1 ? LOG_DEBUG
								 : LOG_INFO,
	       "push %s %s to %s: %s (status %ld, attempts %d, %lld ms)",
	       t->sid, push_kind_name(t->kind), t->host,
	       push_outcome_names[t->outcome], t->status, t->attempts,
	       (long long)(push_now_ms() - t->queued_ms));
	if (res) {
		memcpy(res->sid, t->sid, sizeof(res->sid));
		res->url = t->url; /* moved: the task is freed below */
		t->url = NULL;
		res->outcome = t->outcome;
		res->status = (int)t->status;
	} else {
		log_error("out of memory: the result of push %s is lost",
			  t->sid);
	}
	pthread_mutex_lock(&p->lock);
	if (res) {
		*p->results_tail = res;
		p->results_tail = &res->next;
	}
	p->pending--;
	pthread_mutex_unlock(&p->lock);
	if (t->prev)
		t->prev->next = t->next;
	else
		p->live = t->next;
	if (t->next)
		t->next->prev = t->prev;
	push_task_free(t);
}

/*
 * Ends request r with verdict (never RETRY) and folds it into its job:
 * gone beats failed beats delivered. r may be freed on return.
 */
static void push_req_end(struct push *p, struct push_req *r,
			 enum push_verdict verdict, const char *note)
{
	struct push_task *t = r->task;

	if (verdict == PUSH_V_FAIL)
		log_warn("push %s %s to %s: failed after %d attempt%s: %s%s",
			 t->sid, push_roles[r->role].name, t->host, r->attempts,
			 r->attempts == 1 ? "" : "s", r->why, note);
	if (verdict == PUSH_V_FALLBACK) {
		push_mpns_fallback(p, t);
		verdict = PUSH_V_OK;
	}
	if (verdict == PUSH_V_GONE) {
		t->outcome = PUSH_GONE;
		t->status = r->status;
	} else if (verdict == PUSH_V_FAIL && t->outcome != PUSH_GONE) {
		t->outcome = PUSH_FAILED;
		t->status = r->status;
	} else if (verdict == PUSH_V_OK && t->outcome == PUSH_DELIVERED) {
		t->status = r->status;
	}
	push_req_clear(p, r);
	if (--t->open == 0)
		push_task_finish(p, t);
}

/*
 * Starts r's next attempt with fresh headers (a VAPID token or a webhook
 * signature carries the time) and the last attempt's answer forgotten.
 */
static void push_attempt(struct push *p, struct push_req *r)
{
	struct push_hdrs h = {NULL, 0};
	const char *why = r->easy ? NULL : push_req_prepare(r);

	if (!why)
		why = push_headers(p, r, &h);
	if (!why)
		why = push_easy_options(p, r, h.list);
	if (why) {
		curl_slist_free_all(h.list);
		snprintf(r->why, sizeof(r->why), "cannot build the request: %s",
			 why);
		push_req_end(p, r, PUSH_V_FAIL, "");
		return;
	}
	curl_slist_free_all(r->headers); /* curl now uses h.list */
	r->headers = h.list;
	r->status = 0;
	r->received = 0;
	r->oversize = 0;
	r->refusal = NULL;
	r->retry_after[0] = r->notif_status[0] = '\0';
	r->attempts++;
	r->task->attempts++;
	if (curl_multi_add_handle(p->multi, r->easy) != CURLM_OK) {
		snprintf(r->why, sizeof(r->why), "curl refused the transfer");
		push_req_end(p, r, PUSH_V_FAIL, "");
		return;
	}
	r->in_multi = 1;
}

/* ---- answers and retries ---- */

/*
 * Seconds Retry-After asks for: delta-seconds or an HTTP-date; -1 when
 * absent or unreadable (then our own backoff applies).
 */
static long push_retry_after(const char *v)
{
	char *end;
	long s;

	if (v[0] >= '0' && v[0] <= '9') {
		errno = 0;
		s = strtol(v, &end, 10);
		if (errno == ERANGE)
			return LONG_MAX;
		return *end == '\0' ? s : -1;
	}
	if (v[0] != '\0') {
		time_t when = curl_getdate(v, NULL), now = time(NULL);

		if (when != -1)
			return when > now ? (long)(when - now) : 0;
	}
	return -1;
}

/* 1 s, 2 s, 4 s, ... for retry 1, 2, 3, ..., each ±20%, at most cap_s. */
static int64_t push_backoff_ms(int retry, int cap_s)
{
	int64_t cap = (int64_t)cap_s * 1000, ms = 1000;
	uint32_t rnd;

	for (int i = 1; i < retry && ms < cap; i++)
		ms *= 2;
	/* Jitter: endpoints that failed together do not retry together. */
	seal_random(&rnd, sizeof(rnd));
	ms = ms * (800 + (int64_t)(rnd % 401)) / 1000;
	return ms < cap ? ms : cap;
}

static void push_retry(struct push *p, struct push_req *r)
{
	long asked = push_retry_after(r->retry_after);
	int64_t wait;

	if (r->attempts > p->cfg.push_retries) {
		push_req_end(p, r, PUSH_V_FAIL, " (retries spent)");
		return;
	}
	if (asked > p->cfg.push_retry_max) {
		push_req_end(p, r, PUSH_V_FAIL,
			     " (Retry-After beyond push.retry_max)");
		return;
	}
	wait = asked >= 0 ? (int64_t)asked * 1000
			  : push_backoff_ms(r->attempts, p->cfg.push_retry_max);
	log_debug("push %s %s to %s: retrying in %lld ms", r->task->sid,
		  push_roles[r->role].name, r->task->host, (long long)wait);
	push_schedule(p, r, push_now_ms() + wait);
}

/* Transport failures worth another attempt: the next one may get through. */
static int push_transient(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_WEIRD_SERVER_REPLY:
	/* An answer that is not HTTP (libcurl takes it for HTTP/0.9, which
	 * it refuses): a broken or overloaded front end. Registered URLs are
	 * https (or http when allowed), so no scheme is unsupported here. */
	case CURLE_UNSUPPORTED_PROTOCOL:
		return 1;
	default:
		return 0;
	}
}

/* Reads the finished attempt of r (result rc) into a verdict and r->why. */
static enum push_verdict push_judge(struct push_req *r, CURLcode rc)
{
	const char *s = r->notif_status;

	/* An oversized answer still told its status; the rest is noise. */
	if (rc != CURLE_OK &&
	    !(rc == CURLE_WRITE_ERROR && r->oversize && r->status > 0)) {
		if (r->refusal) {
			snprintf(r->why, sizeof(r->why), "address refused: %s",
				 r->refusal);
			return PUSH_V_FAIL;
		}
		snprintf(r->why, sizeof(r->why), "%s", curl_easy_strerror(rc));
		return push_transient(rc) ? PUSH_V_RETRY : PUSH_V_FAIL;
	}
	snprintf(r->why, sizeof(r->why), "HTTP %ld%s%s", r->status,
		 s[0] ? " " : "", s);
	return push_roles[r->role].answer(r);
}

static void push_answer(struct push *p, struct push_req *r, CURLcode rc)
{
	enum push_verdict v;

	curl_multi_remove_handle(p->multi, r->easy);
	r->in_multi = 0;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
	v = push_judge(r, rc);
	log_debug("push %s %s to %s: attempt %d: %s", r->task->sid,
		  push_roles[r->role].name, r->task->host, r->attempts, r->why);
	if (v == PUSH_V_RETRY)
		push_retry(p, r);
	else
		push_req_end(p, r, v, "");
}

/* ---- the thread ---- */

static void push_take_inbox(struct push *p)
{
	struct push_task *t, *next;

	pthread_mutex_lock(&p->lock);
	t = p->inbox;
	p->inbox = NULL;
	p->inbox_tail = &p->inbox;
	pthread_mutex_unlock(&p->lock);
	for (; t; t = next) {
		next = t->next;
		t->prev = NULL;
		t->next = p->live;
		if (p->live)
			p->live->prev = t;
		p->live = t;
		push_req_add(p, t, push_first_role[t->kind]);
	}
}

static void push_start_due(struct push *p)
{
	int64_t now = push_now_ms();

	while (p->waiting && p->waiting->due_ms <= now) {
		struct push_req *r = p->waiting;

		p->waiting = r->next_due;
		push_attempt(p, r);
	}
}

static void push_collect(struct push *p)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(p->multi, &left))) {
		char *priv = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		/* m dies when push_answer() removes the handle: pass the code.
		 */
		push_answer(p, (struct push_req *)(void *)priv, m->data.result);
	}
}

/* Until the next retry is due, at most PUSH_POLL_MAX_MS. */
static int push_poll_ms(const struct push *p)
{
	int64_t wait = PUSH_POLL_MAX_MS;

	if (p->waiting) {
		int64_t due = p->waiting->due_ms - push_now_ms();

		wait = due < 0 ? 0 : due < wait ? due : wait;
	}
	return (int)wait;
}

/* A multi call's failure, logged once per spell, not once a pass. */
static void push_multi_check(CURLMcode mc, const char *what, int *failing)
{
	if (mc != CURLM_OK && !*failing)
		log_error("push: %s: %s", what, curl_multi_strerror(mc));
	*failing = mc != CURLM_OK;
}

/* Drives the transfers, then waits for a socket, a due retry or a wake-up. */
static void push_perform_and_wait(struct push *p)
{
	int running;
	CURLMcode mc;

	mc = curl_multi_perform(p->multi, &running);
	push_multi_check(mc, "curl_multi_perform", &p->perform_failing);
	push_collect(p);
	/* push_send() and push_stop() end this wait with a wake-up. */
	if (atomic_load(&p->stop))
		return;
	mc = curl_multi_poll(p->multi, NULL, 0, push_poll_ms(p), NULL);
	push_multi_check(mc, "curl_multi_poll", &p->poll_failing);
	if (mc != CURLM_OK) /* poll did not wait: do not spin */
		nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
}

/* Abandons every job still held by the thread (push_stop()). */
static void push_drop_live(struct push *p)
{
	while (p->live) {
		struct push_task *t = p->live;

		p->live = t->next;
		for (int i = 0; i < t->nreq; i++)
			push_req_clear(p, &t->req[i]);
		push_task_free(t);
	}
	p->waiting = NULL;
}

static void *push_main(void *arg)
{
	struct push *p = arg;

	while (!atomic_load(&p->stop)) {
		push_take_inbox(p);
		push_start_due(p);
		push_perform_and_wait(p);
	}
	push_drop_live(p);
	return NULL;
}

/* ---- the loop thread's side ---- */

static const char *push_copy(const char *s, char **out)
{
	*out = s ? strdup(s) : NULL;
	return s && !*out ? "out of memory" : NULL;
}

/* Writes url's host (the one part safe to log) into out. */
static int push_host(const char *url, char *out, size_t outlen)
{
	CURLU *u = curl_url();
	char *host = NULL;
	int rc = -1;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		snprintf(out, outlen, "%s", host);
		rc = 0;
	}
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

/* A task holding copies of everything target and job point to. */
static struct push_task *push_task_new(struct push *p,
				       const struct push_target *target,
				       const struct push_job *job)
{
	struct push_task *t = calloc(1, sizeof(*t));
	const char *why = t ? NULL : "out of memory";

	if (!why)
		why = push_copy(target->url, &t->url);
	if (!why)
		why = push_copy(job->type, &t->type);
	if (!why)
		why = push_copy(job->sealed, &t->sealed);
	if (!why)
		why = push_copy(job->from, &t->from);
	if (!why)
		why = push_copy(job->title, &t->title);
	if (!why)
		why = push_copy(job->text, &t->text);
	if (!why && push_host(t->url, t->host, sizeof(t->host)) == -1)
		why = "its URL does not parse";
	if (why) {
		log_error("push for session %s not queued: %s", job->sid, why);
		push_task_free(t);
		return NULL;
	}
	t->p = p;
	memcpy(t->sid, job->sid, strlen(job->sid) + 1); /* length checked */
	t->kind = target->kind;
	t->cls = job->cls;
	memcpy(t->p256dh, target->p256dh, sizeof(t->p256dh));
	memcpy(t->auth, target->auth, sizeof(t->auth));
	t->toast = job->toast;
	t->tile = job->tile;
	t->secondary_tile = job->secondary_tile;
	t->from_has_tile = job->from_has_tile;
	t->unread = job->unread;
	t->unread_from = job->unread_from;
	t->queued_ms = push_now_ms();
	return t;
}

/* Callers' mistakes, refused before anything is copied. */
static const char *push_job_invalid(const struct push_target *target,
				    const struct push_job *job)
{
	if (!job->sid || strnlen(job->sid, WIRE_ID_HEX + 1) > WIRE_ID_HEX)
		return "bad session id";
	if ((unsigned)target->kind > PUSH_MPNS ||
	    (unsigned)job->cls > PUSH_LATER)
		return "bad kind or class";
	if (!target->url || !job->type || !job->sealed)
		return "URL, type or payload missing";
	return NULL;
}

int push_send(struct push *p, const struct push_target *target,
	      const struct push_job *job)
{
	const char *why = push_job_invalid(target, job);
	struct push_task *t;
	unsigned long skipped;
	int was_empty;

	if (why) {
		log_error("push not queued: %s", why);
		return -1;
	}
	if (!(t = push_task_new(p, target, job)))
		return -1;
	pthread_mutex_lock(&p->lock);
	if (p->pending >= p->cfg.push_max_pending) {
		skipped = ++p->skipped;
		pthread_mutex_unlock(&p->lock);
		if (skipped == 1)
			log_warn(
			    "push queue full (%d pending): skipping pushes "
			    "until it drains; their messages stay queued",
			    p->cfg.push_max_pending);
		push_task_free(t);
		return -1;
	}
	skipped = p->skipped;
	p->skipped = 0;
	p->pending++;
	was_empty = !p->inbox;
	*p->inbox_tail = t;
	p->inbox_tail = &t->next;
	pthread_mutex_unlock(&p->lock);
	if (skipped)
		log_info("push queue has room again (%lu pushes skipped)",
			 skipped);
	/* A non-empty inbox has had its wake-up, and the thread takes the
	 * whole of it: one write per burst, not one per push. */
	if (was_empty)
		curl_multi_wakeup(p->multi);
	return 0;
}

struct push_result *push_take_results(struct push *p)
{
	struct push_result *r;

	pthread_mutex_lock(&p->lock);
	r = p->results;
	p->results = NULL;
	p->results_tail = &p->results;
	pthread_mutex_unlock(&p->lock);
	return r;
}

void push_result_free(struct push_result *r)
{
	while (r) {
		struct push_result *next = r->next;

		free(r->url);
		free(r);
		r = next;
	}
}

int push_kind_available(const struct push *p, enum push_kind kind)
{
	switch (kind) {
	case PUSH_WEBPUSH:
		return p->vapid != NULL;
	case PUSH_WEBHOOK:
		return p->have_webhook;
	case PUSH_MPNS:
		return 1;
	}
	return 0;
}

const char *push_vapid_public(const struct push *p)
{
	return p->vapid ? webpush_vapid_public(p->vapid) : NULL;
}

/* ---- start and stop ---- */

static int push_load_keys(struct push *p)
{
	const char *subject = p->cfg.push_vapid_subject;
	uint8_t pk[SEAL_SIGN_PUBLIC_BYTES], seed[SEAL_KEY_BYTES];
	char *pk64;

	if (p->cfg.push_vapid_key[0]) {
		/* RFC 8292 §2.1: services may refuse a token without one. */
		if (strncmp(subject, "mailto:", 7) != 0 &&
		    strncmp(subject, "https:", 6) != 0) {
			log_error("push.vapid_subject must start with mailto: "
				  "or https:");
			return -1;
		}
		if (!(p->vapid = webpush_vapid_load(p->cfg.push_vapid_key)))
			return -1;
	}
	if (p->cfg.push_webhook_key[0]) {
		if (seal_keyfile_load(p->cfg.push_webhook_key,
				      "webhook signing key", seed) == -1)
			return -1;
		p->have_webhook = 1;
		seal_sign_secret(p->webhook_sk, seed);
		/* App servers verify with this; it is public. */
		seal_sign_public(pk, seed);
		seal_wipe(seed, sizeof(seed));
		if ((pk64 = seal_base64(pk, sizeof(pk), SEAL_B64URL)))
			log_info("webhook pushes signed by ed25519 key %s",
				 pk64);
		free(pk64);
	}
	return 0;
}

static int push_multi_new(struct push *p)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("push: cannot initialise libcurl");
		return -1;
	}
	p->curl_ready = 1;
	if (!(p->multi = curl_multi_init()) ||
	    curl_multi_setopt(p->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
			      PUSH_HOST_CONNECTIONS) != CURLM_OK ||
	    curl_multi_setopt(p->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
			      PUSH_TOTAL_CONNECTIONS) != CURLM_OK ||
	    /* libcurl keeps 4 idle connections per request in flight: after
	     * each burst it closed the rest and the next burst paid new TLS
	     * handshakes. Idle ones still close after CURLOPT_MAXAGE_CONN. */
	    curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS,
			      PUSH_TOTAL_CONNECTIONS) != CURLM_OK) {
		log_error("push: cannot set up a curl multi handle");
		return -1;
	}
	return 0;
}

/*
 * The thread starts with the loop thread's signals blocked (it inherits
 * the mask in force at pthread_create), so SIGTERM always lands on the
 * loop thread and ends its wait, even in the thread's first instant.
 */
static int push_thread_start(struct push *p)
{
	sigset_t block, old;
	int rc;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	rc = pthread_create(&p->thread, NULL, push_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_error("cannot start the push thread: %s", strerror(rc));
		return -1;
	}
	return 0;
}

/* Frees everything but a running thread; p may be half built. */
static void push_free(struct push *p)
{
	struct push_task *t, *next;

	for (t = p->inbox; t; t = next) {
		next = t->next;
		push_task_free(t);
	}
	push_result_free(p->results);
	curl_multi_cleanup(p->multi);
	if (p->curl_ready)
		curl_global_cleanup();
	webpush_vapid_free(p->vapid);
	seal_wipe(p->webhook_sk, sizeof(p->webhook_sk));
	pthread_mutex_destroy(&p->lock);
	free(p);
}

struct push *push_start(const struct config *cfg)
{
	struct push *p = calloc(1, sizeof(*p));

	if (!p) {
		log_error("out of memory starting the push thread");
		return NULL;
	}
	p->cfg = *cfg;
	p->inbox_tail = &p->inbox;
	p->results_tail = &p->results;
	pthread_mutex_init(&p->lock, NULL);
	if (push_load_keys(p) == -1 || push_multi_new(p) == -1 ||
	    push_thread_start(p) == -1) {
		push_free(p);
		return NULL;
	}
	return p;
}

void push_stop(struct push *p)
{
	if (!p)
		return;
	atomic_store(&p->stop, 1);
	curl_multi_wakeup(p->multi);
	pthread_join(p->thread, NULL);
	push_free(p);
}
