/*
 * pushaddr.c: whether a push endpoint may be contacted. URLs are parsed by
 * libcurl's URL API, the same parser that later sends the push, and its parts
 * are checked here; addresses are judged against one table of ranges per
 * family. Sending pushes and setting up the curl handle are push's.
 */
#include "pushaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- URLs ---- */

/* Parts a stored URL must not have, and why. */
/* clang-format off */
static const struct {
	CURLUPart part;
	const char *reason;
} absent_parts[] = {
	{CURLUPART_USER, "userinfo not allowed"},
	{CURLUPART_PASSWORD, "userinfo not allowed"},
	{CURLUPART_OPTIONS, "userinfo not allowed"},
	{CURLUPART_FRAGMENT, "fragment not allowed"},
	/* A zone names an interface of this host: never a public server. */
	{CURLUPART_ZONEID, "IPv6 zone id not allowed"},
};
/* clang-format on */

static const char *text_refusal(const char *url)
{
	const unsigned char *p = (const unsigned char *)url;

	if (strnlen(url, PUSHADDR_URL_MAX + 1) > PUSHADDR_URL_MAX)
		return "URL too long";
	for (; *p != '\0'; p++) {
		if (*p <= 0x20 || *p == 0x7f)
			return "whitespace or control character in URL";
		/* Endpoints are ASCII; a client can percent-encode the rest. */
		if (*p >= 0x80)
			return "non-ASCII character in URL";
		/* curl drops an empty fragment silently: look at the text. */
		if (*p == '#')
			return "fragment not allowed";
	}
	return NULL;
}

/*
 * curl also takes "https:/host" and "https:///host" for "https://host"; the
 * text must start the one way a reader would take it.
 */
static const char *prefix_refusal(const char *url, int allow_http)
{
	size_t n;

	if (strncasecmp(url, "https://", 8) == 0)
		n = 8;
	else if (strncasecmp(url, "http://", 7) == 0 && allow_http)
		n = 7;
	else if (strncasecmp(url, "http://", 7) == 0)
		return "http not allowed, only https";
	else
		return allow_http ? "scheme must be https or http"
				  : "scheme must be https";
	if (url[n] == '/' || url[n] == '\\')
		return "too many slashes after the scheme";
	return NULL;
}

static const char *set_refusal(CURLUcode rc)
{
	switch (rc) {
	case CURLUE_BAD_PORT_NUMBER:
		return "bad port";
	case CURLUE_NO_HOST:
		return "no host";
	case CURLUE_UNSUPPORTED_SCHEME:
		return "unsupported scheme";
	case CURLUE_OUT_OF_MEMORY:
		return "out of memory";
	default:
		return "malformed URL";
	}
}

static int part_present(CURLU *u, CURLUPart part)
{
	char *s = NULL;
	CURLUcode rc = curl_url_get(u, part, &s, 0);

	curl_free(s);
	return rc == CURLUE_OK;
}

/* The parsed scheme, not only the text's prefix, is what curl will use. */
static const char *scheme_refusal(CURLU *u, int allow_http)
{
	char *s = NULL;
	const char *why = "scheme must be https";

	if (curl_url_get(u, CURLUPART_SCHEME, &s, 0) != CURLUE_OK)
		return why;
	if (strcmp(s, "https") == 0 || (allow_http && strcmp(s, "http") == 0))
		why = NULL;
	curl_free(s);
	return why;
}

/* curl accepts port 0; a push server never listens there. */
static const char *port_refusal(CURLU *u)
{
	char *port = NULL, *end;
	const char *why = NULL;
	long n;
	CURLUcode rc = curl_url_get(u, CURLUPART_PORT, &port, 0);

	if (rc == CURLUE_NO_PORT)
		return NULL;
	if (rc != CURLUE_OK)
		return "bad port";
	n = strtol(port, &end, 10);
	if (port[0] < '0' || port[0] > '9' || *end != '\0' || n < 1 ||
	    n > 65535)
		why = "port out of range";
	curl_free(port);
	return why;
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int is_hex(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_ldh(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c == '-';
}

/*
 * A last label that reads as a number makes the name a malformed IPv4
 * literal ("1.2.3.256", "0x"); resolvers disagree on those, so refuse them.
 */
static int is_numeric_label(const char *p, size_t n)
{
	int (*is_numeral)(int) = is_digit;
	size_t i = 0;

	if (n >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		is_numeral = is_hex;
		i = 2;
	}
	for (; i < n; i++)
		if (!is_numeral((unsigned char)p[i]))
			return 0;
	return 1;
}

static const char *label_refusal(const char *p, size_t n)
{
	size_t i;

	if (n == 0)
		return "empty label in host name";
	if (n > 63)
		return "host name label too long";
	if (p[0] == '-' || p[n - 1] == '-')
		return "host name label starts or ends with '-'";
	for (i = 0; i < n; i++)
		if (!is_ldh((unsigned char)p[i]))
			return "bad character in host name";
	return NULL;
}

static const char *dns_name_refusal(const char *name)
{
	size_t len = strlen(name);
	const char *p = name, *end, *dot, *why;

	if (len > 0 && name[len - 1] == '.') /* fully qualified */
		len--;
	if (len == 0)
		return "no host";
	if (len > 253)
		return "host name too long";
	end = name + len;
	for (;;) {
		dot = memchr(p, '.', (size_t)(end - p));
		if (dot == NULL)
			break;
		if ((why = label_refusal(p, (size_t)(dot - p))) != NULL)
			return why;
		p = dot + 1;
	}
	if ((why = label_refusal(p, (size_t)(end - p))) != NULL)
		return why;
	if (is_numeric_label(p, (size_t)(end - p)))
		return "host looks like a malformed IPv4 address";
	return NULL;
}

/* curl keeps the brackets and has already split off any zone id. */
static const char *ipv6_literal_refusal(const char *host)
{
	size_t n = strlen(host);
	char inner[INET6_ADDRSTRLEN];
	struct in6_addr a;

	if (n < 3 || host[n - 1] != ']' || n - 2 >= sizeof(inner))
		return "bad IPv6 literal";
	memcpy(inner, host + 1, n - 2);
	inner[n - 2] = '\0';
	return inet_pton(AF_INET6, inner, &a) == 1 ? NULL : "bad IPv6 literal";
}

static const char *host_refusal(CURLU *u)
{
	char *host = NULL;
	const char *why;
	struct in_addr a;

	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		return "no host";
	/* curl has already rewritten "127.1", "0x7f.1"... as dotted quads. */
	if (host[0] == '[')
		why = ipv6_literal_refusal(host);
	else if (inet_pton(AF_INET, host, &a) == 1)
		why = NULL;
	else
		why = dns_name_refusal(host);
	curl_free(host);
	return why;
}

static const char *parts_refusal(CURLU *u, const char *url, int allow_http)
{
	const char *why;
	CURLUcode rc;
	size_t i;

	/* No CURLU_NON_SUPPORT_SCHEME, no default scheme: curl must know it. */
	if ((rc = curl_url_set(u, CURLUPART_URL, url, 0)) != CURLUE_OK)
		return set_refusal(rc);
	if ((why = scheme_refusal(u, allow_http)) != NULL)
		return why;
	for (i = 0; i < ARRAY_LEN(absent_parts); i++)
		if (part_present(u, absent_parts[i].part))
			return absent_parts[i].reason;
	if ((why = port_refusal(u)) != NULL)
		return why;
	return host_refusal(u);
}

static const char *url_refusal(const char *url, int allow_http)
{
	const char *why;
	CURLU *u;

	if (url == NULL)
		return "no URL";
	if ((why = text_refusal(url)) != NULL)
		return why;
	if ((why = prefix_refusal(url, allow_http)) != NULL)
		return why;
	if ((u = curl_url()) == NULL)
		return "out of memory";
	why = parts_refusal(u, url, allow_http);
	curl_url_cleanup(u);
	return why;
}

int pushaddr_check_url(const char *url, int allow_http, char *why,
		       size_t whylen)
{
	const char *reason = url_refusal(url, allow_http);

	if (reason == NULL)
		return 0;
	if (why != NULL && whylen > 0)
		snprintf(why, whylen, "%s", reason);
	return -1;
}

/* ---- Addresses ---- */

/* What an address inside a range is. */
enum verdict {
	ALLOW,	  /* global unicast */
	REFUSE,	  /* never a push server */
	LOOPBACK, /* this host: refused unless loopback is allowed */
	MAPPED,	  /* the kernel connects to the IPv4 address at `at` */
	EMBEDDED, /* IPv4 at `at`, reached through a relay, never this host */
	NAT64	  /* RFC 6052: where the IPv4 address sits depends on the
		     translator's prefix length */
};

struct range {
	unsigned char net[16]; /* network byte order; IPv4 uses 4 bytes */
	unsigned char plen;    /* prefix length in bits */
	unsigned char verdict;
	unsigned char at; /* MAPPED, EMBEDDED: byte offset of the IPv4 */
	const char *name; /* the reason given when refused */
};

_Static_assert(sizeof(((struct range *)0)->net) == sizeof(struct in6_addr),
	       "a range holds an IPv6 prefix");

/* An IPv6 prefix written as 16-bit groups. */
/* clang-format off */
#define W(x) (unsigned char)(((x) >> 8) & 0xff), (unsigned char)((x) & 0xff)
/* clang-format on */

/*
 * The longest matching prefix decides, so rows may nest in any order and
 * the /0 row is the default. RFC 6890 and the IANA special-purpose
 * registries name these ranges.
 */
/* clang-format off */
static const struct range v4_ranges[] = {
	{{0}, 0, ALLOW, 0, "global unicast"},
	{{0}, 8, REFUSE, 0, "\"this network\" (0.0.0.0/8)"},
	{{10}, 8, REFUSE, 0, "private-use (10.0.0.0/8)"},
	{{100, 64}, 10, REFUSE, 0, "shared address space (100.64.0.0/10)"},
	{{127}, 8, LOOPBACK, 0, "loopback (127.0.0.0/8)"},
	{{169, 254}, 16, REFUSE, 0, "link-local (169.254.0.0/16)"},
	{{172, 16}, 12, REFUSE, 0, "private-use (172.16.0.0/12)"},
	{{192, 0, 0}, 24, REFUSE, 0, "IETF protocol assignments (192.0.0.0/24)"},
	{{192, 0, 2}, 24, REFUSE, 0, "documentation (192.0.2.0/24)"},
	{{192, 88, 99}, 24, REFUSE, 0, "6to4 relay anycast (192.88.99.0/24)"},
	{{192, 168}, 16, REFUSE, 0, "private-use (192.168.0.0/16)"},
	{{198, 18}, 15, REFUSE, 0, "benchmarking (198.18.0.0/15)"},
	{{198, 51, 100}, 24, REFUSE, 0, "documentation (198.51.100.0/24)"},
	{{203, 0, 113}, 24, REFUSE, 0, "documentation (203.0.113.0/24)"},
	{{224}, 4, REFUSE, 0, "multicast (224.0.0.0/4)"},
	{{240}, 4, REFUSE, 0, "reserved (240.0.0.0/4)"},
	{{255, 255, 255, 255}, 32, REFUSE, 0,
	 "limited broadcast (255.255.255.255/32)"},
};
/* clang-format on */

/*
 * IANA allocates global unicast only from 2000::/3, so everything outside it
 * is refused by default and the rows outside it exist for their embedded
 * IPv4 address or to name the reason.
 */
/* clang-format off */
static const struct range v6_ranges[] = {
	{{0}, 0, REFUSE, 0, "not global unicast (outside 2000::/3)"},
	{{W(0x2000)}, 3, ALLOW, 0, "global unicast"},
	{{0}, 128, REFUSE, 0, "unspecified (::/128)"},
	{{[15] = 1}, 128, LOOPBACK, 0, "loopback (::1/128)"},
	{{W(0), W(0), W(0), W(0), W(0), W(0xffff)}, 96, MAPPED, 12,
	 "IPv4-mapped (::ffff:0:0/96)"},
	{{0}, 96, EMBEDDED, 12, "IPv4-compatible (::/96)"},
	{{W(0x64), W(0xff9b)}, 96, NAT64, 0, "NAT64 (64:ff9b::/96)"},
	{{W(0x64), W(0xff9b), W(1)}, 48, NAT64, 0,
	 "local-use NAT64 (64:ff9b:1::/48)"},
	{{W(0x100)}, 64, REFUSE, 0, "discard-only (100::/64)"},
	{{W(0x2001)}, 32, REFUSE, 0, "Teredo (2001::/32)"},
	{{W(0x2001), W(2)}, 48, REFUSE, 0, "benchmarking (2001:2::/48)"},
	{{W(0x2001), W(0x10)}, 28, REFUSE, 0, "ORCHID (2001:10::/28)"},
	{{W(0x2001), W(0x20)}, 28, REFUSE, 0, "ORCHIDv2 (2001:20::/28)"},
	{{W(0x2001), W(0xdb8)}, 32, REFUSE, 0, "documentation (2001:db8::/32)"},
	{{W(0x2002)}, 16, EMBEDDED, 2, "6to4 (2002::/16)"},
	{{W(0x3fff)}, 20, REFUSE, 0, "documentation (3fff::/20)"},
	{{W(0xfc00)}, 7, REFUSE, 0, "unique local (fc00::/7)"},
	{{W(0xfe80)}, 10, REFUSE, 0, "link-local (fe80::/10)"},
	{{W(0xfec0)}, 10, REFUSE, 0, "site-local (fec0::/10)"},
	{{W(0xff00)}, 8, REFUSE, 0, "multicast (ff00::/8)"},
};
/* clang-format on */

/*
 * RFC 6052 section 2.2: for each prefix length, the bytes holding the IPv4
 * address and the first byte of the suffix, which must be zero. Byte 8 (the
 * "u" octet) is zero too, except in the /96 layout where it is prefix.
 */
/* clang-format off */
static const struct {
	unsigned char plen;
	unsigned char at[4];
	unsigned char suffix;
} rfc6052_layouts[] = {
	{32, {4, 5, 6, 7}, 9},
	{40, {5, 6, 7, 9}, 10},
	{48, {6, 7, 9, 10}, 11},
	{56, {7, 9, 10, 11}, 12},
	{64, {9, 10, 11, 12}, 13},
	{96, {12, 13, 14, 15}, 16},
};
/* clang-format on */

static const char *v4_refusal(const unsigned char *a, int allow_loopback);

static int in_prefix(const unsigned char *a, const struct range *r)
{
	size_t full = r->plen / 8;
	unsigned bits = r->plen % 8;
	unsigned char mask = (unsigned char)(0xff << (8 - bits));

	if (memcmp(a, r->net, full) != 0)
		return 0;
	return bits == 0 || (a[full] & mask) == r->net[full];
}

/* Never NULL: every table has a /0 row. */
static const struct range *range_find(const struct range *t, size_t n,
				      const unsigned char *a)
{
	const struct range *best = NULL;
	size_t i;

	for (i = 0; i < n; i++)
		if (in_prefix(a, &t[i]) &&
		    (best == NULL || t[i].plen > best->plen))
			best = &t[i];
	return best;
}

static int layout_fits(size_t i, const unsigned char *a, unsigned plen)
{
	size_t j;

	/* A shorter layout would put IPv4 bits inside the fixed prefix. */
	if (rfc6052_layouts[i].plen < plen)
		return 0;
	if (rfc6052_layouts[i].plen < 96 && a[8] != 0)
		return 0;
	for (j = rfc6052_layouts[i].suffix; j < 16; j++)
		if (a[j] != 0)
			return 0;
	return 1;
}

/*
 * The address does not say which prefix length the translator uses, so
 * every layout the address fits is read, and any refused reading refuses
 * it: otherwise 10.0.0.1 in the /64 layout would pass as its /96 reading,
 * 1.0.0.0. The /96 layout always fits.
 */
static const char *nat64_refusal(const unsigned char *a, unsigned plen)
{
	unsigned char v4[4];
	const char *why;
	size_t i, j;

	for (i = 0; i < ARRAY_LEN(rfc6052_layouts); i++) {
		if (!layout_fits(i, a, plen))
			continue;
		for (j = 0; j < 4; j++)
			v4[j] = a[rfc6052_layouts[i].at[j]];
		if ((why = v4_refusal(v4, 0)) != NULL)
			return why;
	}
	return NULL;
}

static const char *judge(const struct range *r, const unsigned char *a,
			 int allow_loopback)
{
	switch (r->verdict) {
	case ALLOW:
		return NULL;
	case LOOPBACK:
		return allow_loopback ? NULL : r->name;
	case MAPPED:
		return v4_refusal(a + r->at, allow_loopback);
	case EMBEDDED:
		return v4_refusal(a + r->at, 0);
	case NAT64:
		return nat64_refusal(a, r->plen);
	default:
		return r->name;
	}
}

/* v4_ranges has no embedding rows, so this recursion is one level deep. */
static const char *v4_refusal(const unsigned char *a, int allow_loopback)
{
	return judge(range_find(v4_ranges, ARRAY_LEN(v4_ranges), a), a,
		     allow_loopback);
}

static const char *v6_refusal(const unsigned char *a, int allow_loopback)
{
	return judge(range_find(v6_ranges, ARRAY_LEN(v6_ranges), a), a,
		     allow_loopback);
}

const char *pushaddr_refusal(const struct sockaddr *sa, socklen_t len,
			     int allow_loopback)
{
	struct sockaddr_in in;
	struct sockaddr_in6 in6;

	/* Copies, because sa may be any struct sockaddr underneath. */
	if (sa != NULL && sa->sa_family == AF_INET && len >= sizeof(in)) {
		memcpy(&in, sa, sizeof(in));
		return v4_refusal((const unsigned char *)&in.sin_addr,
				  allow_loopback);
	}
	if (sa != NULL && sa->sa_family == AF_INET6 && len >= sizeof(in6)) {
		memcpy(&in6, sa, sizeof(in6));
		return v6_refusal(in6.sin6_addr.s6_addr, allow_loopback);
	}
	return "not an IPv4 or IPv6 address";
}

int pushaddr_allowed(const struct sockaddr *sa, socklen_t len,
		     int allow_loopback)
{
	return pushaddr_refusal(sa, len, allow_loopback) == NULL;
}

curl_socket_t pushaddr_opensocket(void *clientp, curlsocktype purpose,
				  struct curl_sockaddr *address)
{
	const int *allow_loopback = clientp;
	int loop = allow_loopback != NULL && *allow_loopback;

	/* Only outgoing connections are ours to judge; refuse anything else. */
	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	/* The socket's family must be the one of the address judged. */
	if (address->addr.sa_family != address->family ||
	    !pushaddr_allowed(&address->addr, address->addrlen, loop))
		return CURL_SOCKET_BAD;
	return socket(address->family, address->socktype, address->protocol);
}
