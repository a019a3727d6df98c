/*
 * fuzz_pushaddr.c: whether a push endpoint may be contacted. The URL a
 * client registers goes through inbox_call_register (which calls
 * pushaddr_check_url); the address curl is about to connect to goes
 * through pushaddr_opensocket / pushaddr_refusal, here for every spelling
 * the C library reads as an address (inet_pton, inet_aton's shorthands,
 * getaddrinfo's numeric forms) and for raw address bytes, with the
 * properties the SSRF defence rests on checked on each.
 *
 * Input: one flags byte (bits 0-1: the registration's kind), then the URL
 * or address text; its first 16 bytes also serve as raw address bytes.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "envelope.h"
#include "fakebus.h"
#include "fuzz.h"
#include "inbox.h"
#include "log.h"
#include "pushaddr.h"
#include "seal.h"

/* A valid P-256 point (the generator) and a 16-byte auth secret. */
#define FUZZ_P256DH                                                            \
	"BGsX0fLhLEJH-Lzm5WOkQPJ3A32BLeszoPShOUXYmMKWT-NC4v4af5uO5-tKfA-eFiv" \
	"OM1drMV7Oy7ZAaDe_UfU"
#define FUZZ_AUTH "AAAAAAAAAAAAAAAAAAAAAA"

static const char fuzz_sid[WIRE_ID_HEX + 1] = "0123456789abcdef0123456789abcdef";
static struct config fuzz_cfg;
static struct inbox_env fuzz_env;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fakebus_harness_init("fuzz_pushaddr", &fuzz_cfg, &fuzz_env);
	return 0;
}

static const char *fuzz_v4(const uint8_t a[4], int loopback)
{
	struct sockaddr_in in = {.sin_family = AF_INET};

	memcpy(&in.sin_addr, a, 4);
	return pushaddr_refusal((const struct sockaddr *)&in, sizeof(in),
				loopback);
}

static const char *fuzz_v6(const uint8_t a[16], int loopback)
{
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};

	memcpy(&in6.sin6_addr, a, 16);
	return pushaddr_refusal((const struct sockaddr *)&in6, sizeof(in6),
				loopback);
}

/* What curl's open-socket callback does with the address: refused ones
 * never get a socket, and only outgoing connections are judged. */
static void fuzz_opensocket(const struct sockaddr *sa, socklen_t len)
{
	/* curl hands over its struct with room for any address after it. */
	union {
		struct curl_sockaddr ca;
		char room[sizeof(struct curl_sockaddr) +
			  sizeof(struct sockaddr_storage)];
	} u;
	int loopback = 0;
	curl_socket_t fd;

	memset(&u, 0, sizeof(u));
	u.ca.family = sa->sa_family;
	u.ca.socktype = SOCK_STREAM;
	u.ca.addrlen = (unsigned)len;
	memcpy(&u.ca.addr, sa, len);
	fd = pushaddr_opensocket(&loopback, CURLSOCKTYPE_ACCEPT, &u.ca);
	FUZZ_ASSERT(fd == CURL_SOCKET_BAD, "only outgoing sockets are opened");
	fd = pushaddr_opensocket(&loopback, CURLSOCKTYPE_IPCXN, &u.ca);
	if (pushaddr_refusal(sa, len, 0))
		FUZZ_ASSERT(fd == CURL_SOCKET_BAD, "a refused address gets no socket");
	else if (fd != CURL_SOCKET_BAD)
		close(fd);
	u.ca.family = sa->sa_family == AF_INET ? AF_INET6 : AF_INET;
	fd = pushaddr_opensocket(&loopback, CURLSOCKTYPE_IPCXN, &u.ca);
	FUZZ_ASSERT(fd == CURL_SOCKET_BAD,
		    "a socket of another family than the address is refused");
}

/*
 * An IPv4 address and every IPv6 form that embeds it: the mapped form is
 * the same address to the kernel, so it must be judged the same; a relay
 * form (IPv4-compatible, 6to4, NAT64) reaches it from elsewhere, so it
 * must be refused whenever the address is, loopback allowed or not.
 */
static void fuzz_embeddings(const uint8_t a[4])
{
	const char *r0 = fuzz_v4(a, 0), *r1 = fuzz_v4(a, 1);
	static const uint8_t zero1[4] = {0, 0, 0, 1};
	uint8_t m[16];

	FUZZ_ASSERT(!r1 || r0, "allowing loopback only ever allows more");
	memset(m, 0, sizeof(m));
	m[10] = m[11] = 0xff;
	memcpy(m + 12, a, 4);
	FUZZ_ASSERT(!fuzz_v6(m, 0) == !r0 && !fuzz_v6(m, 1) == !r1,
		    "::ffff:a.b.c.d is judged as a.b.c.d");
	if (!r0)
		return;
	/* ::0.0.0.0 and ::0.0.0.1 are :: and ::1, ranges of their own. */
	memset(m, 0, sizeof(m));
	memcpy(m + 12, a, 4);
	if (memcmp(a, zero1, 3) != 0 || a[3] > 1)
		FUZZ_ASSERT(fuzz_v6(m, 0) && fuzz_v6(m, 1),
			    "::a.b.c.d is refused when a.b.c.d is");
	memset(m, 0, sizeof(m));
	m[0] = 0x20, m[1] = 0x02;
	memcpy(m + 2, a, 4);
	m[15] = 1;
	FUZZ_ASSERT(fuzz_v6(m, 0) && fuzz_v6(m, 1),
		    "6to4 2002:AABB:CCDD:: is refused when its IPv4 is");
	memset(m, 0, sizeof(m));
	m[1] = 0x64, m[2] = 0xff, m[3] = 0x9b;
	memcpy(m + 12, a, 4);
	FUZZ_ASSERT(fuzz_v6(m, 0) && fuzz_v6(m, 1),
		    "NAT64 64:ff9b::a.b.c.d is refused when a.b.c.d is");
	/* RFC 6052 /48 layout in the local-use prefix: bytes 6, 7, 9, 10. */
	memset(m, 0, sizeof(m));
	m[1] = 0x64, m[2] = 0xff, m[3] = 0x9b, m[5] = 1;
	m[6] = a[0], m[7] = a[1], m[9] = a[2], m[10] = a[3];
	FUZZ_ASSERT(fuzz_v6(m, 0) && fuzz_v6(m, 1),
		    "NAT64 64:ff9b:1:AABB:0CC:DD00:: is refused when its IPv4 is");
}

static void fuzz_sockaddr(const struct sockaddr *sa, socklen_t len)
{
	const char *r0 = pushaddr_refusal(sa, len, 0);
	const char *r1 = pushaddr_refusal(sa, len, 1);

	FUZZ_ASSERT(!r1 || r0, "allowing loopback only ever allows more");
	FUZZ_ASSERT(pushaddr_allowed(sa, len, 0) == !r0,
		    "pushaddr_allowed agrees with pushaddr_refusal");
	FUZZ_ASSERT(pushaddr_refusal(sa, len - 1, 1) != NULL,
		    "a short address is refused");
	if (sa->sa_family == AF_INET)
		fuzz_embeddings((const uint8_t *)&((const struct sockaddr_in *)sa)
					->sin_addr);
	fuzz_opensocket(sa, len);
}

/* Every way the C library reads text as an address. */
static void fuzz_spellings(const char *s)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST,
				 .ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	struct sockaddr_in in = {.sin_family = AF_INET};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};

	if (inet_pton(AF_INET, s, &in.sin_addr) == 1)
		fuzz_sockaddr((struct sockaddr *)&in, sizeof(in));
	if (inet_aton(s, &in.sin_addr) == 1)
		fuzz_sockaddr((struct sockaddr *)&in, sizeof(in));
	if (inet_pton(AF_INET6, s, &in6.sin6_addr) == 1)
		fuzz_sockaddr((struct sockaddr *)&in6, sizeof(in6));
	if (getaddrinfo(s, NULL, &hints, &res) == 0) {
		for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
			fuzz_sockaddr(ai->ai_addr, ai->ai_addrlen);
		freeaddrinfo(res);
	}
}

/* The registration call, as the daemon runs it on a checked body. */
static void fuzz_register(const char *url, unsigned kind_bits, int refused)
{
	static const char *const kinds[] = {"webpush", "webhook", "mpns", "apns"};
	const char *kind = kinds[kind_bits & 3];
	char taken[WIRE_ID_HEX + 1];
	struct inbox *ib = inbox_new(&fuzz_env, fuzz_sid);
	json_t *answer = NULL, *req = json_pack("{s:s, s:s}", "kind", kind,
						"url", url);
	int status;

	if (!ib)
		abort();
	if (!req) { /* not UTF-8: check_body refuses it before the bus */
		inbox_free(ib);
		return;
	}
	if (strcmp(kind, "webpush") == 0)
		json_object_set_new(req, "keys",
				    json_pack("{s:s, s:s}", "p256dh", FUZZ_P256DH,
					      "auth", FUZZ_AUTH));
	status = inbox_call_register(ib, req, &answer, taken);
	const char *code = json_string_value(
		json_object_get(json_object_get(answer, "error"), "code"));
	if (!*url) {
		FUZZ_ASSERT(status == 200, "an empty url withdraws");
	} else if (kind_bits % 4 != 3) {
		/* No push thread here: a good URL ends at kind_unavailable. */
		FUZZ_ASSERT(status == 400 && code, "a registration is refused");
		FUZZ_ASSERT((strcmp(code, "bad_url") == 0) == refused,
			    "register refuses exactly the URLs "
			    "pushaddr_check_url refuses");
	}
	json_decref(answer);
	json_decref(req);
	inbox_free(ib);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why0[128] = "", why1[128] = "";
	unsigned flags;
	char *s;
	int r0, r1;

	if (size == 0)
		return 0;
	flags = data[0];
	s = fuzz_strndup(data + 1, size - 1);
	r0 = pushaddr_check_url(s, 0, why0, sizeof(why0));
	r1 = pushaddr_check_url(s, 1, why1, sizeof(why1));
	FUZZ_ASSERT((r0 == 0) == (why0[0] == '\0') &&
			    (r1 == 0) == (why1[0] == '\0'),
		    "a refusal says why, an acceptance says nothing");
	FUZZ_ASSERT(r0 == -1 || r1 == 0, "allowing http only ever allows more");
	FUZZ_ASSERT(r0 == -1 || strncasecmp(s, "https://", 8) == 0,
		    "an accepted URL is https");
	FUZZ_ASSERT(r1 == -1 || strncasecmp(s, "https://", 8) == 0 ||
			    strncasecmp(s, "http://", 7) == 0,
		    "an accepted URL is http or https");
	fuzz_spellings(s);
	fuzz_register(s, flags, r0 == -1);
	if (size - 1 >= 16) { /* the text's bytes as an address */
		struct sockaddr_in in = {.sin_family = AF_INET};
		struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
		memcpy(&in.sin_addr, data + 1, 4);
		memcpy(&in6.sin6_addr, data + 1, 16);
		fuzz_sockaddr((struct sockaddr *)&in, sizeof(in));
		fuzz_sockaddr((struct sockaddr *)&in6, sizeof(in6));
	}
	free(s);
	return 0;
}
