/*
 * test_pushaddr.c: pushaddr_check_url(), pushaddr_refusal() and
 * pushaddr_opensocket() against tables of cases, each named by a sentence.
 * Nothing leaves the host: names resolved are literals or in /etc/hosts,
 * and the connect-time test talks to a listener of its own on 127.0.0.1.
 */
#include "pushaddr.h"
#include "tap.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- URLs ---- */

struct url_case {
	const char *name;
	const char *url;
	int allow_http;
	const char *want; /* NULL: accepted; else part of the reason */
};

#define A16 "aaaaaaaaaaaaaaaa"
#define A63 A16 A16 A16 "aaaaaaaaaaaaaaa"

/* clang-format off */
static const struct url_case url_cases[] = {
	/* Accepted. */
	{"accepts an https URL with a path", "https://push.example.com/wpush/v2/abc", 0, NULL},
	{"accepts a port, a path and a query", "https://push.example.com:8443/p?token=abc&x=1", 0, NULL},
	{"accepts an upper-case scheme and host", "HTTPS://Push.Example.COM/x", 0, NULL},
	{"accepts a URL without a path", "https://example.com", 0, NULL},
	{"accepts a query without a path", "https://example.com?x=1", 0, NULL},
	{"accepts a fully qualified name with its trailing dot", "https://example.com./p", 0, NULL},
	{"accepts a punycode host", "https://xn--mnchen-3ya.de/p", 0, NULL},
	{"accepts a percent-encoded path", "https://example.com/p%20q", 0, NULL},
	{"accepts an IPv4 literal", "https://93.184.216.34/p", 0, NULL},
	{"accepts a bracketed IPv6 literal with a port", "https://[2606:2800:220:1::1]:443/p", 0, NULL},
	{"accepts port 1", "https://example.com:1/", 0, NULL},
	{"accepts port 65535", "https://example.com:65535/", 0, NULL},
	{"accepts an empty port, which means the default", "https://example.com:/", 0, NULL},
	{"accepts a 63-byte label", "https://" A63 ".example/", 0, NULL},
	{"accepts http when http is allowed", "http://example.com/p", 1, NULL},
	{"accepts https when http is allowed", "https://example.com/p", 1, NULL},
	{"leaves a loopback literal to the connect-time check", "https://127.0.0.1/", 0, NULL},
	{"leaves 127.1, which curl rewrites as 127.0.0.1, to connect time", "https://127.1/", 0, NULL},
	{"leaves localhost to the connect-time check", "https://localhost/", 0, NULL},

	/* Schemes. */
	{"refuses http unless allowed", "http://example.com/", 0, "http not allowed"},
	{"refuses ftp", "ftp://example.com/", 0, "scheme must be https"},
	{"refuses ftp even when http is allowed", "ftp://example.com/", 1, "scheme must be https or http"},
	{"refuses file", "file:///etc/passwd", 0, "scheme must be https"},
	{"refuses javascript", "javascript:alert(1)", 0, "scheme must be https"},
	{"refuses data", "data:text/plain,hi", 0, "scheme must be https"},
	{"refuses gopher", "gopher://example.com/", 0, "scheme must be https"},
	{"refuses wss", "wss://example.com/", 0, "scheme must be https"},
	{"refuses a URL without a scheme", "example.com/p", 0, "scheme must be https"},
	{"refuses a scheme-relative URL", "//example.com/p", 0, "scheme must be https"},
	{"refuses https with one slash, which curl would take", "https:/example.com/", 0, "scheme must be https"},
	{"refuses https without slashes", "https:example.com", 0, "scheme must be https"},
	{"refuses https with three slashes, which curl would take", "https:///example.com/", 0, "too many slashes"},
	{"refuses a backslash after the scheme", "https://\\example.com/", 0, "too many slashes"},
	{"refuses an empty string", "", 0, "scheme must be https"},

	/* Userinfo. */
	{"refuses a user name", "https://user@example.com/", 0, "userinfo"},
	{"refuses a user name and password", "https://user:pw@example.com/", 0, "userinfo"},
	{"refuses an empty user name", "https://@example.com/", 0, "userinfo"},
	{"refuses an empty user name and password", "https://:@example.com/", 0, "userinfo"},
	{"refuses a backslash that hides the real host in userinfo", "https://example.com\\@evil.example/", 0, "userinfo"},
	{"refuses an encoded '@' in the host", "https://evil.example%40example.com/", 0, "malformed URL"},

	/* Hosts. */
	{"refuses a URL without a host", "https://", 0, "no host"},
	{"refuses a URL with only a port", "https://:443/", 0, "no host"},
	{"refuses a URL with only a query", "https://?q", 0, "no host"},
	{"refuses an IPv6 zone id written %25", "https://[fe80::1%25eth0]/", 0, "zone id"},
	{"refuses an IPv6 zone id written bare", "https://[fe80::1%eth0]/", 0, "zone id"},
	{"refuses an unclosed IPv6 literal", "https://[::1/", 0, "malformed URL"},
	{"refuses an IPv4 address in brackets", "https://[127.0.0.1]/", 0, "malformed URL"},
	{"refuses an IPvFuture literal", "https://[v1.x]/", 0, "malformed URL"},
	{"refuses an empty label", "https://a..example/", 0, "empty label"},
	{"refuses a label starting with '-'", "https://-a.example/", 0, "'-'"},
	{"refuses a label ending with '-'", "https://a-.example/", 0, "'-'"},
	{"refuses an underscore in the host", "https://exa_mple.com/", 0, "bad character"},
	{"refuses a 64-byte label", "https://" A63 "a.example/", 0, "label too long"},
	{"refuses a name of 254 bytes", "https://" A63 "." A63 "." A63 "." A63 "a/", 0, "host name too long"},
	{"refuses a dotted quad with a byte over 255", "https://1.2.3.256/", 0, "malformed IPv4"},
	{"refuses five numeric labels", "https://1.2.3.4.5/", 0, "malformed IPv4"},
	{"refuses a name ending in a hex number", "https://a.b.0x7f/", 0, "malformed IPv4"},
	{"refuses a bare 0x", "https://0x/", 0, "malformed IPv4"},

	/* Ports. */
	{"refuses port 0", "https://example.com:0/", 0, "port out of range"},
	{"refuses port 65536", "https://example.com:65536/", 0, "bad port"},
	{"refuses port 99999", "https://example.com:99999/", 0, "bad port"},
	{"refuses a negative port", "https://example.com:-1/", 0, "bad port"},
	{"refuses a named port", "https://example.com:https/", 0, "bad port"},
	{"refuses a port with trailing letters", "https://example.com:443x/", 0, "bad port"},

	/* Fragments and characters. */
	{"refuses a fragment", "https://example.com/p#x", 0, "fragment"},
	{"refuses an empty fragment, which curl drops", "https://example.com/p#", 0, "fragment"},
	{"refuses a space in the host", "https://exa mple.com/", 0, "whitespace"},
	{"refuses a leading space", " https://example.com/", 0, "whitespace"},
	{"refuses a tab in the path", "https://example.com/a\tb", 0, "whitespace"},
	{"refuses CR LF, which could inject a header", "https://example.com/\r\nHost: evil", 0, "control"},
	{"refuses a control byte", "https://example.com/\x01", 0, "control"},
	{"refuses DEL", "https://example.com/\x7f", 0, "control"},
	{"refuses non-ASCII bytes in the host", "https://m\xc3\xbcnchen.de/", 0, "non-ASCII"},
	{"refuses non-ASCII bytes in the path", "https://example.com/\xc3\xa9", 0, "non-ASCII"},
};
/* clang-format on */

static void test_url_cases(void)
{
	char why[128];
	size_t i;

	for (i = 0; i < ARRAY_LEN(url_cases); i++) {
		const struct url_case *c = &url_cases[i];
		int r;

		why[0] = '\0';
		r = pushaddr_check_url(c->url, c->allow_http, why, sizeof(why));
		if (c->want == NULL)
			ok(r == 0, "%s (got \"%s\")", c->name, why);
		else
			ok(r == -1 && strstr(why, c->want) != NULL,
			   "%s (got \"%s\")", c->name, why);
	}
}

/* Lengths are built, not written out. */
/* clang-format off */
static const struct {
	const char *name;
	size_t len;
	int want;
} len_cases[] = {
	{"accepts a URL of exactly 2048 bytes", PUSHADDR_URL_MAX, 0},
	{"refuses a URL of 2049 bytes", PUSHADDR_URL_MAX + 1, -1},
	{"refuses a URL of 64 KiB", 65536, -1},
};
/* clang-format on */

static void test_len_cases(void)
{
	const char *head = "https://example.com/";
	size_t i, n = strlen(head);

	for (i = 0; i < ARRAY_LEN(len_cases); i++) {
		char *url = malloc(len_cases[i].len + 1);
		char why[64] = "";

		if (url == NULL)
			abort();
		memcpy(url, head, n);
		memset(url + n, 'a', len_cases[i].len - n);
		url[len_cases[i].len] = '\0';
		ok(pushaddr_check_url(url, 0, why, sizeof(why)) ==
		       len_cases[i].want,
		   "%s (got \"%s\")", len_cases[i].name, why);
		free(url);
	}
}

static void test_url_edges(void)
{
	char why[8] = "x";

	ok(pushaddr_check_url(NULL, 0, why, sizeof(why)) == -1,
	   "refuses a NULL URL");
	ok(pushaddr_check_url("ftp://x/", 0, NULL, 0) == -1,
	   "refuses without a reason buffer");
	ok(pushaddr_check_url("ftp://x/", 0, why, sizeof(why)) == -1 &&
	       strlen(why) == sizeof(why) - 1,
	   "truncates the reason to the buffer");
}

/* ---- Addresses ---- */

struct addr_case {
	const char *name;
	const char *addr;
	int allow_loopback;
	const char *want; /* NULL: allowed; else part of the reason */
};

/* clang-format off */
#define FIRST(range, a) {"refuses " a ", the first of " range, a, 0, range}
#define LAST(range, a) {"refuses " a ", the last of " range, a, 0, range}
#define BELOW(range, a) {"allows " a ", just below " range, a, 0, NULL}
#define ABOVE(range, a) {"allows " a ", just above " range, a, 0, NULL}
#define OUTSIDE "outside 2000::/3"
#define FFFF6 "ffff:ffff:ffff:ffff:ffff:ffff"
/* clang-format on */

/* clang-format off */
static const struct addr_case addr_cases[] = {
	{"allows 8.8.8.8", "8.8.8.8", 0, NULL},
	{"allows 1.1.1.1", "1.1.1.1", 0, NULL},
	{"allows 93.184.216.34", "93.184.216.34", 0, NULL},

	FIRST("0.0.0.0/8", "0.0.0.0"), LAST("0.0.0.0/8", "0.255.255.255"),
	ABOVE("0.0.0.0/8", "1.0.0.0"),
	BELOW("10.0.0.0/8", "9.255.255.255"), FIRST("10.0.0.0/8", "10.0.0.0"),
	LAST("10.0.0.0/8", "10.255.255.255"), ABOVE("10.0.0.0/8", "11.0.0.0"),
	BELOW("100.64.0.0/10", "100.63.255.255"), FIRST("100.64.0.0/10", "100.64.0.0"),
	LAST("100.64.0.0/10", "100.127.255.255"), ABOVE("100.64.0.0/10", "100.128.0.0"),
	BELOW("127.0.0.0/8", "126.255.255.255"), FIRST("127.0.0.0/8", "127.0.0.0"),
	LAST("127.0.0.0/8", "127.255.255.255"), ABOVE("127.0.0.0/8", "128.0.0.0"),
	BELOW("169.254.0.0/16", "169.253.255.255"), FIRST("169.254.0.0/16", "169.254.0.0"),
	LAST("169.254.0.0/16", "169.254.255.255"), ABOVE("169.254.0.0/16", "169.255.0.0"),
	BELOW("172.16.0.0/12", "172.15.255.255"), FIRST("172.16.0.0/12", "172.16.0.0"),
	LAST("172.16.0.0/12", "172.31.255.255"), ABOVE("172.16.0.0/12", "172.32.0.0"),
	BELOW("192.0.0.0/24", "191.255.255.255"), FIRST("192.0.0.0/24", "192.0.0.0"),
	LAST("192.0.0.0/24", "192.0.0.255"), ABOVE("192.0.0.0/24", "192.0.1.0"),
	BELOW("192.0.2.0/24", "192.0.1.255"), FIRST("192.0.2.0/24", "192.0.2.0"),
	LAST("192.0.2.0/24", "192.0.2.255"), ABOVE("192.0.2.0/24", "192.0.3.0"),
	BELOW("192.88.99.0/24", "192.88.98.255"), FIRST("192.88.99.0/24", "192.88.99.0"),
	LAST("192.88.99.0/24", "192.88.99.255"), ABOVE("192.88.99.0/24", "192.88.100.0"),
	BELOW("192.168.0.0/16", "192.167.255.255"), FIRST("192.168.0.0/16", "192.168.0.0"),
	LAST("192.168.0.0/16", "192.168.255.255"), ABOVE("192.168.0.0/16", "192.169.0.0"),
	BELOW("198.18.0.0/15", "198.17.255.255"), FIRST("198.18.0.0/15", "198.18.0.0"),
	LAST("198.18.0.0/15", "198.19.255.255"), ABOVE("198.18.0.0/15", "198.20.0.0"),
	BELOW("198.51.100.0/24", "198.51.99.255"), FIRST("198.51.100.0/24", "198.51.100.0"),
	LAST("198.51.100.0/24", "198.51.100.255"), ABOVE("198.51.100.0/24", "198.51.101.0"),
	BELOW("203.0.113.0/24", "203.0.112.255"), FIRST("203.0.113.0/24", "203.0.113.0"),
	LAST("203.0.113.0/24", "203.0.113.255"), ABOVE("203.0.113.0/24", "203.0.114.0"),
	BELOW("224.0.0.0/4", "223.255.255.255"), FIRST("224.0.0.0/4", "224.0.0.0"),
	LAST("224.0.0.0/4", "239.255.255.255"),
	FIRST("240.0.0.0/4", "240.0.0.0"), LAST("240.0.0.0/4", "255.255.255.254"),
	FIRST("255.255.255.255/32", "255.255.255.255"),
	{"refuses the cloud metadata address", "169.254.169.254", 0, "169.254.0.0/16"},

	/* allow_loopback opens loopback and nothing else. */
	{"allows 127.0.0.1 when loopback is allowed", "127.0.0.1", 1, NULL},
	{"allows 127.255.255.255 when loopback is allowed", "127.255.255.255", 1, NULL},
	{"still refuses 10.0.0.1 when loopback is allowed", "10.0.0.1", 1, "10.0.0.0/8"},
	{"still refuses 0.0.0.0 when loopback is allowed", "0.0.0.0", 1, "0.0.0.0/8"},
	{"still refuses 169.254.169.254 when loopback is allowed", "169.254.169.254", 1, "169.254.0.0/16"},

	/* IPv6: global unicast is 2000::/3. */
	{"allows a public IPv6 address", "2606:4700:4700::1111", 0, NULL},
	{"allows another public IPv6 address", "2a00:1450:4001:80b::200e", 0, NULL},
	{"refuses 1fff:ffff:..., just below 2000::/3", "1fff:" FFFF6 ":ffff", 0, OUTSIDE},
	{"allows 2000::, the first of 2000::/3", "2000::", 0, NULL},
	{"allows 3fff:ffff:..., the last of 2000::/3", "3fff:" FFFF6 ":ffff", 0, NULL},
	{"refuses 4000::, just above 2000::/3", "4000::", 0, OUTSIDE},
	{"refuses ::", "::", 0, "::/128"},
	{"refuses ::", "::", 1, "::/128"},
	{"refuses ::1", "::1", 0, "::1/128"},
	{"allows ::1 when loopback is allowed", "::1", 1, NULL},

	/* v4-mapped: the kernel connects to the IPv4 address. */
	{"allows ::ffff:8.8.8.8", "::ffff:8.8.8.8", 0, NULL},
	{"refuses ::ffff:10.0.0.1", "::ffff:10.0.0.1", 0, "10.0.0.0/8"},
	{"refuses ::ffff:172.16.0.1", "::ffff:172.16.0.1", 0, "172.16.0.0/12"},
	{"refuses ::ffff:192.168.1.1", "::ffff:192.168.1.1", 0, "192.168.0.0/16"},
	{"refuses ::ffff:169.254.169.254", "::ffff:169.254.169.254", 0, "169.254.0.0/16"},
	{"refuses ::ffff:127.0.0.1", "::ffff:127.0.0.1", 0, "127.0.0.0/8"},
	{"allows ::ffff:127.0.0.1 when loopback is allowed", "::ffff:127.0.0.1", 1, NULL},
	{"refuses ::ffff:0.0.0.0, the first v4-mapped", "::ffff:0.0.0.0", 0, "0.0.0.0/8"},
	{"refuses ::ffff:255.255.255.255, the last v4-mapped", "::ffff:255.255.255.255", 0, "255.255.255.255/32"},
	{"refuses ::fffe:ffff:ffff, just below ::ffff:0:0/96", "::fffe:ffff:ffff", 0, OUTSIDE},
	{"refuses ::1:0:0:0, just above ::ffff:0:0/96", "::1:0:0:0", 0, OUTSIDE},
	{"refuses SIIT ::ffff:0:127.0.0.1, outside every mapping", "::ffff:0:127.0.0.1", 1, OUTSIDE},

	/* v4-compatible: judged by the IPv4 address, never this host. */
	{"allows ::8.8.8.8", "::8.8.8.8", 0, NULL},
	{"refuses ::10.0.0.1", "::10.0.0.1", 0, "10.0.0.0/8"},
	{"refuses ::192.168.1.1", "::192.168.1.1", 0, "192.168.0.0/16"},
	{"refuses ::2, which embeds 0.0.0.2", "::2", 0, "0.0.0.0/8"},
	{"refuses ::127.0.0.1 even when loopback is allowed", "::127.0.0.1", 1, "127.0.0.0/8"},
	{"refuses ::1:0:0, just above ::/96", "::1:0:0", 0, OUTSIDE},

	/* NAT64 well-known prefix. */
	{"allows 64:ff9b::8.8.8.8", "64:ff9b::8.8.8.8", 0, NULL},
	{"refuses 64:ff9b::10.0.0.1", "64:ff9b::10.0.0.1", 0, "10.0.0.0/8"},
	{"refuses 64:ff9b::c0a8:101 (192.168.1.1)", "64:ff9b::c0a8:101", 0, "192.168.0.0/16"},
	{"refuses 64:ff9b::a9fe:a9fe (169.254.169.254)", "64:ff9b::a9fe:a9fe", 0, "169.254.0.0/16"},
	{"refuses 64:ff9b::127.0.0.1 even when loopback is allowed", "64:ff9b::127.0.0.1", 1, "127.0.0.0/8"},
	{"refuses 64:ff9b::1:0:0, just above 64:ff9b::/96", "64:ff9b::1:0:0", 0, OUTSIDE},
	{"refuses 64:ff9a:ffff:..., just below 64:ff9b::/96", "64:ff9a:" FFFF6, 0, OUTSIDE},

	/* NAT64 local-use prefix: every RFC 6052 layout that fits. */
	{"allows 64:ff9b:1::8.8.8.8", "64:ff9b:1::8.8.8.8", 0, NULL},
	{"allows 8.8.8.8 under a site's /96 inside 64:ff9b:1::/48", "64:ff9b:1:1234:5678:9abc:808:808", 0, NULL},
	{"allows 8.0.0.0 under a site's /96 whose u octet is set", "64:ff9b:1:0:10a:0:800:0", 0, NULL},
	{"refuses 64:ff9b:1::10.0.0.1", "64:ff9b:1::10.0.0.1", 0, "10.0.0.0/8"},
	{"refuses 10.0.0.1 in the /48 layout", "64:ff9b:1:a00:0:100::", 0, "10.0.0.0/8"},
	{"refuses 10.0.0.1 in the /56 layout", "64:ff9b:1:ab0a:0:1::", 0, "10.0.0.0/8"},
	{"refuses 10.0.0.1 in the /64 layout, whose /96 reading is public", "64:ff9b:1:1234:a:0:100:0", 0, "10.0.0.0/8"},
	{"refuses 64:ff9b:1::127.0.0.1 even when loopback is allowed", "64:ff9b:1::127.0.0.1", 1, "127.0.0.0/8"},
	{"refuses 64:ff9b:2::, just above 64:ff9b:1::/48", "64:ff9b:2::808:808", 0, OUTSIDE},

	/* 6to4. */
	{"allows 2001:ffff:..., just below 2002::/16", "2001:ffff:" FFFF6, 0, NULL},
	{"allows 2002:808:808::, 6to4 for 8.8.8.8", "2002:808:808::1", 0, NULL},
	{"refuses 2002::, 6to4 for 0.0.0.0", "2002::", 0, "0.0.0.0/8"},
	{"refuses 2002:ffff:ffff::, 6to4 for 255.255.255.255", "2002:" FFFF6 ":ffff", 0, "255.255.255.255/32"},
	{"refuses 2002:a00:1::, 6to4 for 10.0.0.1", "2002:a00:1::", 0, "10.0.0.0/8"},
	{"refuses 2002:c0a8:101::, 6to4 for 192.168.1.1", "2002:c0a8:101::", 0, "192.168.0.0/16"},
	{"refuses 2002:7f00:1:: even when loopback is allowed", "2002:7f00:1::", 1, "127.0.0.0/8"},
	{"allows 2003::, just above 2002::/16", "2003::", 0, NULL},

	/* Refused IPv6 ranges inside 2000::/3. */
	BELOW("2001::/32", "2000:" FFFF6 ":ffff"), FIRST("2001::/32", "2001::"),
	LAST("2001::/32", "2001:0:" FFFF6), ABOVE("2001::/32", "2001:1::"),
	BELOW("2001:2::/48", "2001:1:" FFFF6), FIRST("2001:2::/48", "2001:2::"),
	LAST("2001:2::/48", "2001:2:0:ffff:ffff:ffff:ffff:ffff"), ABOVE("2001:2::/48", "2001:2:1::"),
	BELOW("2001:10::/28", "2001:f:" FFFF6), FIRST("2001:10::/28", "2001:10::"),
	LAST("2001:10::/28", "2001:1f:" FFFF6),
	FIRST("2001:20::/28", "2001:20::"), LAST("2001:20::/28", "2001:2f:" FFFF6),
	ABOVE("2001:20::/28", "2001:30::"),
	BELOW("2001:db8::/32", "2001:db7:" FFFF6), FIRST("2001:db8::/32", "2001:db8::"),
	LAST("2001:db8::/32", "2001:db8:" FFFF6), ABOVE("2001:db8::/32", "2001:db9::"),
	BELOW("3fff::/20", "3ffe:" FFFF6 ":ffff"), FIRST("3fff::/20", "3fff::"),
	LAST("3fff::/20", "3fff:fff:" FFFF6), ABOVE("3fff::/20", "3fff:1000::"),

	/* Refused IPv6 ranges outside 2000::/3, named for the log. */
	FIRST("100::/64", "100::"), LAST("100::/64", "100::ffff:ffff:ffff:ffff"),
	{"refuses 100:0:0:1::, just above 100::/64", "100:0:0:1::", 0, OUTSIDE},
	{"refuses fbff:ffff:..., just below fc00::/7", "fbff:" FFFF6 ":ffff", 0, OUTSIDE},
	FIRST("fc00::/7", "fc00::"), LAST("fc00::/7", "fdff:" FFFF6 ":ffff"),
	{"refuses fd00::1, a typical unique local address", "fd00::1", 0, "fc00::/7"},
	{"refuses fe7f:ffff:..., just below fe80::/10", "fe7f:" FFFF6 ":ffff", 0, OUTSIDE},
	FIRST("fe80::/10", "fe80::"), LAST("fe80::/10", "febf:" FFFF6 ":ffff"),
	FIRST("fec0::/10", "fec0::"), LAST("fec0::/10", "feff:" FFFF6 ":ffff"),
	FIRST("ff00::/8", "ff00::"), LAST("ff00::/8", "ffff:" FFFF6 ":ffff"),
	{"refuses ff02::1, all nodes", "ff02::1", 0, "ff00::/8"},
	{"refuses fe80::1 even when loopback is allowed", "fe80::1", 1, "fe80::/10"},
};
/* clang-format on */

/* Fills ss from a numeric address; returns its length, 0 if not numeric. */
static socklen_t sockaddr_from(const char *text, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		return sizeof(*in);
	}
	if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		return sizeof(*in6);
	}
	return 0;
}

static void test_addr_cases(void)
{
	struct sockaddr_storage ss;
	size_t i;

	for (i = 0; i < ARRAY_LEN(addr_cases); i++) {
		const struct addr_case *c = &addr_cases[i];
		socklen_t len = sockaddr_from(c->addr, &ss);
		const char *why = pushaddr_refusal((struct sockaddr *)&ss, len,
						   c->allow_loopback);

		if (len == 0)
			ok(0, "%s (not an address: %s)", c->name, c->addr);
		else if (c->want == NULL)
			ok(why == NULL, "%s (got \"%s\")", c->name,
			   why ? why : "allowed");
		else
			ok(why != NULL && strstr(why, c->want) != NULL &&
			       pushaddr_allowed((struct sockaddr *)&ss, len,
						c->allow_loopback) == 0,
			   "%s (got \"%s\")", c->name, why ? why : "allowed");
	}
}

static void test_addr_families(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_un un;

	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	ok(!pushaddr_allowed((struct sockaddr *)&un, sizeof(un), 1),
	   "refuses a Unix socket address");
	ok(!pushaddr_allowed(NULL, 0, 1), "refuses a NULL address");
	sockaddr_from("8.8.8.8", &ss);
	ok(!pushaddr_allowed((struct sockaddr *)&ss,
			     sizeof(struct sockaddr_in) - 1, 0),
	   "refuses an IPv4 address shorter than sockaddr_in");
	sockaddr_from("2606:4700:4700::1111", &ss);
	ok(!pushaddr_allowed((struct sockaddr *)&ss, sizeof(struct sockaddr_in),
			     0),
	   "refuses an IPv6 address shorter than sockaddr_in6");
	ok(pushaddr_allowed((struct sockaddr *)&ss, sizeof(ss), 0),
	   "allows an IPv6 address in a sockaddr_storage");
}

/* ---- Every spelling, resolved as curl would ---- */

struct spelling_case {
	const char *host;
	int loopback; /* allowed when allow_loopback is set */
};

/* clang-format off */
static const struct spelling_case spelling_cases[] = {
	/* Loopback through the IPv4 stack of this host. */
	{"127.1", 1},
	{"0x7f.1", 1},
	{"0177.0.0.1", 1},
	{"2130706433", 1},
	{"017700000001", 1},
	{"127.000.000.001", 1},
	{"0x7f000001", 1},
	{"0x7F.0x0.0x0.0x1", 1},
	{"127.0.1", 1},
	{"127.255.255.254", 1},
	{"localhost", 1},
	{"[::1]", 1},
	{"0:0:0:0:0:0:0:1", 1},
	{"::ffff:127.0.0.1", 1},
	{"::ffff:7f00:1", 1},
	{"0:0:0:0:0:ffff:7f00:0001", 1},
	{"[::ffff:127.0.0.1]", 1},
	/* Loopback only through a relay or translator: never allowed. */
	{"::127.0.0.1", 0},
	{"64:ff9b::7f00:1", 0},
	{"64:ff9b::127.0.0.1", 0},
	{"64:ff9b:1::7f00:1", 0},
	{"2002:7f00:1::", 0},
	/* Private, link-local, unspecified: never allowed. */
	{"10.1", 0},
	{"012.0.0.1", 0},
	{"0xa000001", 0},
	{"167772161", 0},
	{"0xc0.0xa8.1.1", 0},
	{"3232235777", 0},
	{"0xa9fea9fe", 0},
	{"0251.0376.0251.0376", 0},
	{"0", 0},
	{"0.0.0.0", 0},
	{"::", 0},
	{"::ffff:10.0.0.1", 0},
	{"::ffff:a00:1", 0},
	{"64:ff9b::a00:1", 0},
	{"2002:a00:1::", 0},
	{"fe80::1%1", 0},
	{"fd00::1", 0},
};
/* clang-format on */

/* Resolves like curl: brackets off, any family, no AI_ADDRCONFIG. */
static struct addrinfo *resolve(const char *host)
{
	struct addrinfo hints, *res = NULL;
	char name[64];
	size_t n = strlen(host);

	if (host[0] == '[' && n >= 2 && n - 2 < sizeof(name)) {
		memcpy(name, host + 1, n - 2);
		name[n - 2] = '\0';
	} else {
		snprintf(name, sizeof(name), "%s", host);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(name, NULL, &hints, &res) != 0)
		return NULL;
	return res;
}

static void show_resolved(const char *host, const struct addrinfo *res)
{
	char text[INET6_ADDRSTRLEN];
	const void *a;

	printf("# %s resolves to", host);
	for (; res != NULL; res = res->ai_next) {
		if (res->ai_family == AF_INET)
			a = &((struct sockaddr_in *)res->ai_addr)->sin_addr;
		else
			a = &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
		printf(" %s", inet_ntop(res->ai_family, a, text, sizeof(text)));
	}
	printf("\n");
}

/* Returns how many of res are refused; *n counts them all. */
static int count_refused(const struct addrinfo *res, int allow_loopback, int *n)
{
	int refused = 0;

	for (*n = 0; res != NULL; res = res->ai_next, (*n)++)
		refused += !pushaddr_allowed(res->ai_addr, res->ai_addrlen,
					     allow_loopback);
	return refused;
}

static void test_spellings(void)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(spelling_cases); i++) {
		const struct spelling_case *c = &spelling_cases[i];
		struct addrinfo *res = resolve(c->host);
		int n, refused;

		if (res == NULL) {
			/* Nothing resolved is nothing to connect to. */
			ok(1, "# SKIP glibc does not resolve %s", c->host);
			ok(1, "# SKIP glibc does not resolve %s", c->host);
			continue;
		}
		show_resolved(c->host, res);
		refused = count_refused(res, 0, &n);
		ok(refused == n, "refuses every address %s resolves to",
		   c->host);
		refused = count_refused(res, 1, &n);
		if (c->loopback)
			ok(refused == 0,
			   "allows every address %s resolves to when loopback "
			   "is allowed",
			   c->host);
		else
			ok(refused == n,
			   "still refuses every address %s resolves to when "
			   "loopback is allowed",
			   c->host);
		freeaddrinfo(res);
	}
}

/* ---- Connect time, through curl ---- */

struct server {
	int fd;
	int accepted;
};

static int listen_loopback(unsigned *port)
{
	struct sockaddr_in in;
	socklen_t len = sizeof(in);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&in, sizeof(in)) == -1 ||
	    listen(fd, 8) == -1 ||
	    getsockname(fd, (struct sockaddr *)&in, &len) == -1) {
		perror("listener");
		exit(1);
	}
	*port = ntohs(in.sin_port);
	return fd;
}

/* Accepts and closes anything pending; returns how many there were. */
static int drain(int fd)
{
	struct pollfd p = {fd, POLLIN, 0};
	int n = 0;

	while (poll(&p, 1, 0) == 1) {
		int c = accept(fd, NULL, NULL);

		if (c == -1)
			break;
		close(c);
		n++;
	}
	return n;
}

/* Reads one request head, bounded by time and size. */
static void read_head(int c)
{
	char buf[4096];
	size_t got = 0;
	struct pollfd p = {c, POLLIN, 0};

	while (got < sizeof(buf) - 1 && poll(&p, 1, 2000) == 1) {
		ssize_t r = read(c, buf + got, sizeof(buf) - 1 - got);

		if (r <= 0)
			break;
		got += (size_t)r;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL)
			break;
	}
}

/* Serves one 204 within five seconds. */
static void *serve_one(void *arg)
{
	static const char reply[] = "HTTP/1.1 204 No Content\r\n"
				    "Content-Length: 0\r\n"
				    "Connection: close\r\n\r\n";
	struct server *s = arg;
	struct pollfd p = {s->fd, POLLIN, 0};
	int c;

	if (poll(&p, 1, 5000) != 1 || (c = accept(s->fd, NULL, NULL)) == -1)
		return NULL;
	s->accepted = 1;
	read_head(c);
	if (write(c, reply, sizeof(reply) - 1) < 0)
		perror("write");
	close(c);
	return NULL;
}

/* A push-like transfer: the options pushaddr.h asks push to set. */
static CURLcode fetch(const char *url, int *allow_loopback, long *code)
{
	CURL *h = curl_easy_init();
	CURLcode rc;

	if (h == NULL)
		abort();
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, pushaddr_opensocket);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, allow_loopback);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	rc = curl_easy_perform(h);
	*code = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, code);
	curl_easy_cleanup(h);
	return rc;
}

/* clang-format off */
static const struct {
	const char *name;
	const char *host;
} refused_connects[] = {
	{"127.0.0.1", "127.0.0.1"},
	{"0x7f.1, curl's other spelling of 127.0.0.1", "0x7f.1"},
	{"2130706433, a decimal 127.0.0.1", "2130706433"},
	{"localhost", "localhost"},
	{"[::ffff:127.0.0.1]", "[::ffff:127.0.0.1]"},
};
/* clang-format on */

static void test_connect_refused(int fd, unsigned port)
{
	int allow_loopback = 0;
	char url[128];
	long code;
	size_t i;

	for (i = 0; i < ARRAY_LEN(refused_connects); i++) {
		CURLcode rc;

		snprintf(url, sizeof(url), "http://%s:%u/push",
			 refused_connects[i].host, port);
		rc = fetch(url, &allow_loopback, &code);
		ok(rc == CURLE_COULDNT_CONNECT,
		   "curl fails to connect to %s when the socket is refused "
		   "(got %d: %s)",
		   refused_connects[i].name, (int)rc, curl_easy_strerror(rc));
		ok(drain(fd) == 0, "the listener sees no connection for %s",
		   refused_connects[i].name);
	}
}

static void test_connect_allowed(int fd, unsigned port)
{
	struct server s = {fd, 0};
	int allow_loopback = 1;
	pthread_t t;
	char url[128];
	long code;
	CURLcode rc;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/push", port);
	if (pthread_create(&t, NULL, serve_one, &s) != 0)
		abort();
	rc = fetch(url, &allow_loopback, &code);
	pthread_join(t, NULL);
	ok(s.accepted, "the listener accepts 127.0.0.1 when loopback is "
		       "allowed");
	ok(rc == CURLE_OK && code == 204,
	   "curl gets the 204 when loopback is allowed (got %d, %ld)", (int)rc,
	   code);
}

int main(void)
{
	unsigned port;
	int fd;

	test_url_cases();
	test_len_cases();
	test_url_edges();
	test_addr_cases();
	test_addr_families();
	test_spellings();

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		abort();
	fd = listen_loopback(&port);
	test_connect_refused(fd, port);
	test_connect_allowed(fd, port);
	close(fd);
	curl_global_cleanup();
	return tap_done();
}
