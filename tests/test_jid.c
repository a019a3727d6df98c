/*
 * test_jid.c: jid_check(), jid_check_account(), jid_bare() and
 * jid_resource_ptr() against tables of cases, each named by a sentence.
 */
#include "jid.h"
#include "tap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum check_fn { CHECK, ACCOUNT };

struct check_case {
	const char *name;
	const char *in; /* "{unit*n}" stands for n copies of unit */
	size_t len;	/* 0: expand in; else in is len raw bytes */
	enum jid_kind kind;
	enum check_fn fn;
	const char *want; /* NULL: valid; else the reason expected */
};

/* Raw bytes, for inputs holding a NUL. */
#define RAW(s) s, sizeof(s) - 1

/* Rows read better as a table than as clang-format would wrap them. */
/* clang-format off */
static const struct check_case check_cases[] = {
	/* Valid JIDs. */
	{"accepts a bare JID", "user@example.com", 0, JID_ANY, CHECK, NULL},
	{"accepts a bare JID where a bare one is required", "user@example.com",
	 0, JID_BARE, CHECK, NULL},
	{"accepts a full JID where a full one is required",
	 "user@example.com/phone", 0, JID_FULL, CHECK, NULL},
	{"accepts a domain alone", "example.com", 0, JID_ANY, CHECK, NULL},
	{"accepts a domain with a resource", "example.com/r", 0, JID_FULL,
	 CHECK, NULL},
	{"accepts a UTF-8 localpart and IDN domain",
	 "j\xc3\xbcrgen@m\xc3\xbcnchen.de", 0, JID_BARE, CHECK, NULL},
	{"accepts a CJK localpart", "\xe7\x94\xa8\xe6\x88\xb7@example.com", 0,
	 JID_ANY, CHECK, NULL},
	{"accepts a four-byte UTF-8 resource",
	 "user@example.com/\xf0\x9f\x8e\x89", 0, JID_FULL, CHECK, NULL},
	{"accepts a resource holding '@' and '/'", "user@example.com/a@b/c/d",
	 0, JID_FULL, CHECK, NULL},
	{"accepts an '@' after the first '/' as part of the resource",
	 "example.com/a@b", 0, JID_FULL, CHECK, NULL},
	{"accepts spaces in the resource", "user@example.com/my phone", 0,
	 JID_FULL, CHECK, NULL},
	{"accepts a domain with a trailing dot", "user@example.com.", 0,
	 JID_BARE, CHECK, NULL},
	{"accepts an IPv6 literal domain", "user@[::1]", 0, JID_BARE, CHECK,
	 NULL},
	{"accepts an IPv4 address as domain", "user@127.0.0.1/r", 0, JID_FULL,
	 CHECK, NULL},
	{"accepts a hyphen and digits in the domain", "u@xn--mnchen-3ya.de", 0,
	 JID_ANY, CHECK, NULL},

	/* Limits: 1023 bytes per part, 63 per label. */
	{"accepts a localpart of 1023 bytes", "{a*1023}@example.com", 0,
	 JID_ANY, CHECK, NULL},
	{"rejects a localpart of 1024 bytes", "{a*1024}@example.com", 0,
	 JID_ANY, CHECK, "localpart too long"},
	{"counts bytes, not characters: 1023 bytes of UTF-8 pass",
	 "{\xc3\xa9*511}x@example.com", 0, JID_ANY, CHECK, NULL},
	{"counts bytes, not characters: 1024 bytes of UTF-8 fail",
	 "{\xc3\xa9*512}@example.com", 0, JID_ANY, CHECK,
	 "localpart too long"},
	{"accepts a domainpart of 1023 bytes", "u@{a.*511}a", 0, JID_ANY, CHECK,
	 NULL},
	{"rejects a domainpart of 1024 bytes", "u@{a.*511}ab", 0, JID_ANY,
	 CHECK, "domainpart too long"},
	{"accepts a domainpart of 1023 bytes ending in its dot", "u@{ab.*341}",
	 0, JID_ANY, CHECK, NULL},
	{"rejects 1023 bytes of domain plus a trailing dot", "u@{a.*512}", 0,
	 JID_ANY, CHECK, "domainpart too long"},
	{"accepts a domain label of 63 bytes", "u@{a*63}.com", 0, JID_ANY,
	 CHECK, NULL},
	{"rejects a domain label of 64 bytes", "u@{a*64}.com", 0, JID_ANY,
	 CHECK, "domain label too long"},
	{"accepts a resourcepart of 1023 bytes", "u@example.com/{r*1023}", 0,
	 JID_FULL, CHECK, NULL},
	{"rejects a resourcepart of 1024 bytes", "u@example.com/{r*1024}", 0,
	 JID_FULL, CHECK, "resourcepart too long"},
	{"accepts a JID of JID_MAX bytes, every part at its limit",
	 "{l*1023}@{a.*511}a/{r*1023}", 0, JID_FULL, CHECK, NULL},
	{"rejects an input longer than JID_MAX before looking at it",
	 "{l*1023}@{a.*511}a/{r*1024}", 0, JID_FULL, CHECK, "JID too long"},

	/* Characters RFC 7622 forbids in a localpart, and whitespace. */
	{"rejects a double quote in the localpart", "a\"b@example.com", 0,
	 JID_ANY, CHECK, "localpart contains a forbidden character"},
	{"rejects an ampersand in the localpart", "a&b@example.com", 0,
	 JID_ANY, CHECK, "localpart contains a forbidden character"},
	{"rejects an apostrophe in the localpart", "a'b@example.com", 0,
	 JID_ANY, CHECK, "localpart contains a forbidden character"},
	{"rejects a colon in the localpart", "a:b@example.com", 0, JID_ANY,
	 CHECK, "localpart contains a forbidden character"},
	{"rejects a less-than sign in the localpart", "a<b@example.com", 0,
	 JID_ANY, CHECK, "localpart contains a forbidden character"},
	{"rejects a greater-than sign in the localpart", "a>b@example.com", 0,
	 JID_ANY, CHECK, "localpart contains a forbidden character"},
	{"rejects a space in the localpart", "a b@example.com", 0, JID_ANY,
	 CHECK, "localpart contains whitespace"},
	{"rejects a no-break space in the localpart", "a\xc2\xa0"
						      "b@example.com",
	 0, JID_ANY, CHECK, "localpart contains whitespace"},
	{"rejects a second '@', which lands in the domainpart",
	 "a@b@example.com", 0, JID_ANY, CHECK,
	 "domainpart contains a forbidden character"},
	{"rejects a space in the domainpart", "u@exa mple.com", 0, JID_ANY,
	 CHECK, "domainpart contains whitespace"},
	{"rejects an ideographic space in the domainpart",
	 "u@example\xe3\x80\x80.com", 0, JID_ANY, CHECK,
	 "domainpart contains whitespace"},
	{"rejects a port after the domain", "u@example.com:5222", 0, JID_ANY,
	 CHECK, "domainpart contains a forbidden character"},
	{"rejects an underscore in the domain (not a host name)",
	 "u@my_host.example", 0, JID_ANY, CHECK,
	 "domainpart contains a forbidden character"},

	/* Bad UTF-8, anywhere. */
	{"rejects a lone continuation byte", "\x80@example.com", 0, JID_ANY,
	 CHECK, "invalid UTF-8"},
	{"rejects a truncated two-byte sequence", "a\xc3@example.com", 0,
	 JID_ANY, CHECK, "invalid UTF-8"},
	{"rejects a sequence cut by the end of input", "u@example.com/\xe2\x82",
	 0, JID_FULL, CHECK, "invalid UTF-8"},
	{"rejects an overlong two-byte '/'", "a\xc0\xaf"
					     "b@example.com",
	 0, JID_ANY, CHECK, "invalid UTF-8"},
	{"rejects an overlong three-byte sequence", "a\xe0\x80\xaf@example.com",
	 0, JID_ANY, CHECK, "invalid UTF-8"},
	{"rejects an overlong four-byte sequence",
	 "a\xf0\x80\x80\xaf@example.com", 0, JID_ANY, CHECK, "invalid UTF-8"},
	{"rejects a UTF-16 surrogate", "a\xed\xa0\x80@example.com", 0, JID_ANY,
	 CHECK, "invalid UTF-8"},
	{"rejects a code point above U+10FFFF", "a\xf4\x90\x80\x80@example.com",
	 0, JID_ANY, CHECK, "invalid UTF-8"},
	{"rejects a 0xFF byte", "u@example.com/\xff", 0, JID_FULL, CHECK,
	 "invalid UTF-8"},
	{"rejects invalid UTF-8 in the domainpart", "u@ex\xe9mple.com", 0,
	 JID_ANY, CHECK, "invalid UTF-8"},

	/* NUL and controls, anywhere. */
	{"rejects a NUL in the localpart", RAW("a\0b@example.com"), JID_ANY,
	 CHECK, "contains a NUL byte"},
	{"rejects a NUL in the resourcepart", RAW("u@example.com/a\0b"),
	 JID_FULL, CHECK, "contains a NUL byte"},
	{"rejects a tab in the resourcepart", "u@example.com/a\tb", 0,
	 JID_FULL, CHECK, "contains a control character"},
	{"rejects a newline in the localpart", "a\nb@example.com", 0, JID_ANY,
	 CHECK, "contains a control character"},
	{"rejects DEL in the domainpart", "u@exa\x7fmple.com", 0, JID_ANY,
	 CHECK, "contains a control character"},
	{"rejects a C1 control (U+0085) in the resourcepart",
	 "u@example.com/a\xc2\x85", 0, JID_FULL, CHECK,
	 "contains a control character"},

	/* Empty parts. */
	{"rejects empty input", "", 0, JID_ANY, CHECK, "empty JID"},
	{"rejects an empty localpart", "@example.com", 0, JID_ANY, CHECK,
	 "localpart empty"},
	{"rejects an empty domainpart after a localpart", "user@", 0, JID_ANY,
	 CHECK, "domainpart empty"},
	{"rejects an empty resourcepart", "example.com/", 0, JID_ANY, CHECK,
	 "resourcepart empty"},
	{"rejects an empty domainpart before a resource", "user@/r", 0, JID_ANY,
	 CHECK, "domainpart empty"},
	{"rejects a resource alone", "/r", 0, JID_ANY, CHECK,
	 "domainpart empty"},
	{"rejects a domain that is only a dot", "user@.", 0, JID_ANY, CHECK,
	 "domainpart empty"},
	{"rejects an empty label inside the domain", "user@a..b", 0, JID_ANY,
	 CHECK, "domain label empty"},
	{"rejects a leading dot in the domain", "user@.example.com", 0, JID_ANY,
	 CHECK, "domain label empty"},
	{"rejects two trailing dots", "user@example.com..", 0, JID_ANY, CHECK,
	 "domain label empty"},

	/* IPv6 literals. */
	{"rejects a bad IPv6 literal", "user@[::g]", 0, JID_ANY, CHECK,
	 "bad IPv6 literal"},
	{"rejects an unclosed IPv6 literal", "user@[::1", 0, JID_ANY, CHECK,
	 "bad IPv6 literal"},
	{"rejects empty brackets", "user@[]", 0, JID_ANY, CHECK,
	 "bad IPv6 literal"},
	{"rejects an IPv4 address in brackets", "user@[127.0.0.1]", 0, JID_ANY,
	 CHECK, "bad IPv6 literal"},
	{"rejects a stray closing bracket", "user@example.com]", 0, JID_ANY,
	 CHECK, "domainpart contains a forbidden character"},

	/* Bare and full. */
	{"rejects a full JID where a bare one is required",
	 "user@example.com/r", 0, JID_BARE, CHECK, "resource not allowed"},
	{"rejects a bare JID where a full one is required", "user@example.com",
	 0, JID_FULL, CHECK, "resource required"},
	{"rejects a domain alone where a full JID is required", "example.com",
	 0, JID_FULL, CHECK, "resource required"},
	{"reports a bad part before a kind mismatch", "a b@example.com/r", 0,
	 JID_BARE, CHECK, "localpart contains whitespace"},
	{"checks only len bytes of a longer buffer", "user@example.com/r", 16,
	 JID_BARE, CHECK, NULL},

	/* Accounts need a localpart. */
	{"accepts an account JID with a localpart", "user@example.com", 0,
	 JID_BARE, ACCOUNT, NULL},
	{"accepts an account JID with a resource where any kind is allowed",
	 "user@example.com/r", 0, JID_ANY, ACCOUNT, NULL},
	{"rejects an account JID without a localpart", "example.com", 0,
	 JID_BARE, ACCOUNT, "localpart required"},
	{"rejects an account JID with a resource where bare is required",
	 "user@example.com/r", 0, JID_BARE, ACCOUNT, "resource not allowed"},
	{"rejects an account JID that is invalid anyway", "user@", 0, JID_ANY,
	 ACCOUNT, "domainpart empty"},
};
/* clang-format on */

/*
 * Expands "{unit*n}" groups. The result is an exact-size heap copy without
 * a terminating NUL, so ASan catches a read past len.
 */
static char *expand(const struct check_case *c, size_t *len)
{
	static char buf[4 * JID_MAX];
	const char *s = c->in;
	size_t n = 0;
	char *out;

	if (c->len) {
		memcpy(buf, s, c->len);
		n = c->len;
	}
	while (!c->len && *s) {
		const char *star = *s == '{' ? strchr(s, '*') : NULL;
		char *end;
		long times;

		if (!star) {
			buf[n++] = *s++;
			continue;
		}
		times = strtol(star + 1, &end, 10);
		for (long i = 0; i < times; i++) {
			memcpy(buf + n, s + 1, (size_t)(star - s - 1));
			n += (size_t)(star - s - 1);
		}
		s = end + 1; /* past '}' */
	}
	out = malloc(n ? n : 1);
	if (!out)
		abort();
	memcpy(out, buf, n);
	*len = n;
	return out;
}

static void test_check(void)
{
	for (size_t i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]);
	     i++) {
		const struct check_case *c = &check_cases[i];
		size_t len;
		char *in = expand(c, &len);
		const char *got = c->fn == ACCOUNT
				      ? jid_check_account(in, len, c->kind)
				      : jid_check(in, len, c->kind);

		int pass = c->want ? got && !strcmp(got, c->want) : !got;

		ok(pass, "%s", c->name);
		if (!pass)
			printf("#   got: %s\n", got ? got : "valid");
		free(in);
	}
}

struct bare_case {
	const char *name;
	const char *in;
	size_t outlen; /* 0: room enough */
	int want_rc;
	const char *want;
};

/* clang-format off */
static const struct bare_case bare_cases[] = {
	{"jid_bare drops the resource of a full JID", "user@example.com/phone",
	 0, 0, "user@example.com"},
	{"jid_bare keeps a bare JID as it is", "user@example.com", 0, 0,
	 "user@example.com"},
	{"jid_bare keeps a domain alone", "example.com/r", 0, 0,
	 "example.com"},
	{"jid_bare ends at the first '/', not at an '@' after it",
	 "example.com/a@b/c", 0, 0, "example.com"},
	{"jid_bare strips the domain's trailing dot", "user@example.com./r", 0,
	 0, "user@example.com"},
	{"jid_bare keeps an IPv6 literal", "user@[::1]/r", 0, 0, "user@[::1]"},
	{"jid_bare fits a buffer of exactly the length plus NUL",
	 "user@example.com/r", 17, 0, "user@example.com"},
	{"jid_bare fails, leaving an empty string, one byte short",
	 "user@example.com/r", 16, -1, ""},
	{"jid_bare fails on a one-byte buffer", "user@example.com", 1, -1, ""},
};
/* clang-format on */

static void test_bare(void)
{
	for (size_t i = 0; i < sizeof(bare_cases) / sizeof(bare_cases[0]);
	     i++) {
		const struct bare_case *c = &bare_cases[i];
		char out[64];
		size_t outlen = c->outlen ? c->outlen : sizeof(out);
		int rc;

		memset(out, 'x', sizeof(out));
		rc = jid_bare(c->in, out, outlen);
		ok(rc == c->want_rc && !strcmp(out, c->want), "%s", c->name);
	}
	ok(jid_bare("a@b", NULL, 0) == -1,
	   "jid_bare writes nothing to a buffer of size 0");
}

struct resource_case {
	const char *name;
	const char *in;
	const char *want; /* NULL: no resource */
};

/* clang-format off */
static const struct resource_case resource_cases[] = {
	{"jid_resource_ptr finds the resource", "user@example.com/phone",
	 "phone"},
	{"jid_resource_ptr returns NULL for a bare JID", "user@example.com",
	 NULL},
	{"jid_resource_ptr keeps '/' inside the resource", "u@example.com/a/b",
	 "a/b"},
	{"jid_resource_ptr keeps '@' inside the resource", "example.com/a@b",
	 "a@b"},
};
/* clang-format on */

static void test_resource(void)
{
	const char *full = "user@example.com/phone";

	for (size_t i = 0;
	     i < sizeof(resource_cases) / sizeof(resource_cases[0]); i++) {
		const struct resource_case *c = &resource_cases[i];
		const char *got = jid_resource_ptr(c->in);

		if (c->want)
			ok(got && !strcmp(got, c->want), "%s", c->name);
		else
			ok(!got, "%s", c->name);
	}
	ok(jid_resource_ptr(full) == full + 17,
	   "jid_resource_ptr points into its argument");
}

/* Encodes cp in len bytes of UTF-8, overlong when len is more than needed. */
static size_t encode(uint32_t cp, size_t len, unsigned char *out)
{
	static const unsigned char lead[] = {0, 0, 0xC0, 0xE0, 0xF0};

	for (size_t i = len - 1; i > 0; i--, cp >>= 6)
		out[i] = (unsigned char)(0x80 | (cp & 0x3F));
	out[0] = (unsigned char)(len == 1 ? cp : lead[len] | cp);
	return len;
}

/* Checks "u@d/" + cp encoded in len bytes; 1 when the verdict is want. */
static int resource_verdict(uint32_t cp, size_t len, int want_valid)
{
	unsigned char buf[16] = "u@d/";
	size_t n = 4 + encode(cp, len, buf + 4);
	const char *why = jid_check((const char *)buf, n, JID_FULL);

	return want_valid ? !why : why && !strcmp(why, "invalid UTF-8");
}

static size_t utf8_len(uint32_t cp)
{
	return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* Every code point, against an encoder written independently above. */
static void test_utf8_exhaustive(void)
{
	int good = 1;

	for (uint32_t cp = 0xA0; cp <= 0x10FFFF; cp++) {
		if (cp < 0xD800 || cp > 0xDFFF)
			good &= resource_verdict(cp, utf8_len(cp), 1);
	}
	ok(good, "accepts every Unicode scalar value above the controls");
	good = 1;
	for (uint32_t cp = 0xD800; cp <= 0xDFFF; cp++)
		good &= resource_verdict(cp, 3, 0);
	ok(good, "rejects every UTF-16 surrogate");
	good = 1;
	for (uint32_t cp = 0; cp < 0x10000; cp++) {
		for (size_t len = utf8_len(cp) + 1; len <= 4; len++)
			good &= resource_verdict(cp, len, 0);
	}
	ok(good, "rejects every overlong form of every code point");
	good = 1;
	for (uint32_t cp = 0x110000; cp <= 0x1FFFFF; cp++)
		good &= resource_verdict(cp, 4, 0);
	ok(good, "rejects every four-byte form above U+10FFFF");
}

int main(void)
{
	test_check();
	test_utf8_exhaustive();
	test_bare();
	test_resource();
	return tap_done();
}
