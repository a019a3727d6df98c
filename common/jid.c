/*
 * jid.c: RFC 7622 syntax checks of untrusted JIDs, and splitting one into
 * its parts. Byte limits, UTF-8 and the characters the RFC forbids are
 * checked here; PRECIS mapping and IDNA tables are left to the XMPP server.
 */
#include "jid.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#define JID_LABEL_MAX 63 /* bytes in one DNS label */

struct jid_parts {
	const char *local; /* NULL when there is no '@' */
	const char *domain;
	const char *res; /* NULL when there is no '/' */
	size_t local_len, domain_len, res_len;
};

enum jid_char { JID_CHAR_OK, JID_CHAR_SPACE, JID_CHAR_FORBIDDEN };

/*
 * UTF-8 lead bytes by sequence length (2, 3, 4): the payload bits they
 * carry and the least code point such a sequence may encode. C0, C1 and
 * F5..FF can only start overlong or out-of-range forms and are left out.
 */
/* clang-format off */
static const struct {
	unsigned char lo, hi, bits;
	uint32_t min;
} jid_utf8_leads[] = {
	{0xC2, 0xDF, 0x1F, 0x80},
	{0xE0, 0xEF, 0x0F, 0x800},
	{0xF0, 0xF4, 0x07, 0x10000},
};
/* clang-format on */

/*
 * Decodes the UTF-8 sequence at s (n bytes left) into *cp. Returns its
 * length, or 0 for a bad lead or continuation byte, a truncated sequence,
 * an overlong form, a surrogate or a code point above U+10FFFF.
 */
static size_t jid_utf8(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len = 0, i;
	uint32_t c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	for (i = 0; i < 3 && !len; i++) {
		if (s[0] >= jid_utf8_leads[i].lo &&
		    s[0] <= jid_utf8_leads[i].hi)
			len = i + 2;
	}
	if (len == 0 || n < len)
		return 0;
	c = s[0] & jid_utf8_leads[len - 2].bits;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3F);
	}
	if (c < jid_utf8_leads[len - 2].min || c > 0x10FFFF ||
	    (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return len;
}

/* C0 and C1 controls and DEL: PRECIS disallows them in every part. */
static int jid_is_control(uint32_t c)
{
	return c < 0x20 || (c >= 0x7F && c <= 0x9F);
}

/* Unicode White_Space that is not a control (those are refused anyway). */
static int jid_is_space(uint32_t c)
{
	return c == 0x20 || c == 0xA0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
	       c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Checks the whole input once, so the parts can be decoded blindly. */
static const char *jid_check_text(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t c;

	for (size_t i = 0, n; i < len; i += n) {
		n = jid_utf8(u + i, len - i, &c);
		if (n == 0)
			return "invalid UTF-8";
		if (c == 0)
			return "contains a NUL byte";
		if (jid_is_control(c))
			return "contains a control character";
	}
	return NULL;
}

/* RFC 7622 §3.3.1: these ASCII characters may not appear in a localpart. */
static enum jid_char jid_local_char(uint32_t c)
{
	if (jid_is_space(c))
		return JID_CHAR_SPACE;
	if (c != 0 && c < 0x80 && strchr("\"&'/:<>@", (int)c))
		return JID_CHAR_FORBIDDEN;
	return JID_CHAR_OK;
}

/*
 * RFC 7622 §3.2: a domainpart is made of IDNA labels, whose ASCII is letters,
 * digits and hyphens (dots separate them). Other code points are passed on
 * for the server's IDNA check.
 */
static enum jid_char jid_domain_char(uint32_t c)
{
	if (jid_is_space(c))
		return JID_CHAR_SPACE;
	if (c >= 0x80 || c == '-' || c == '.' || (c >= '0' && c <= '9') ||
	    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return JID_CHAR_OK;
	return JID_CHAR_FORBIDDEN;
}

/* The first character of s that classify() does not accept, or OK. */
static enum jid_char jid_scan(const char *s, size_t len,
			      enum jid_char (*classify)(uint32_t))
{
	const unsigned char *u = (const unsigned char *)s;
	enum jid_char r;
	uint32_t c;

	for (size_t i = 0, n; i < len; i += n) {
		n = jid_utf8(u + i, len - i, &c);
		r = classify(c);
		if (r != JID_CHAR_OK)
			return r;
	}
	return JID_CHAR_OK;
}

/*
 * RFC 7622 §3.1: the resourcepart starts at the first '/', and only what
 * comes before it is split at its first '@'. So in "example.com/a@b" the
 * '@' belongs to the resource, which may hold any '@' and '/'.
 */
static void jid_split(const char *s, size_t len, struct jid_parts *p)
{
	const char *slash = memchr(s, '/', len);
	size_t head = slash ? (size_t)(slash - s) : len;
	const char *at = memchr(s, '@', head);

	memset(p, 0, sizeof(*p));
	p->domain = s;
	p->domain_len = head;
	if (at) {
		p->local = s;
		p->local_len = (size_t)(at - s);
		p->domain = at + 1;
		p->domain_len = head - p->local_len - 1;
	}
	if (slash) {
		p->res = slash + 1;
		p->res_len = len - head - 1;
	}
}

static const char *jid_check_local(const char *s, size_t len)
{
	if (len == 0)
		return "localpart empty";
	if (len > JID_PART_MAX)
		return "localpart too long";
	switch (jid_scan(s, len, jid_local_char)) {
	case JID_CHAR_SPACE:
		return "localpart contains whitespace";
	case JID_CHAR_FORBIDDEN:
		return "localpart contains a forbidden character";
	case JID_CHAR_OK:
		break;
	}
	return NULL;
}

/* "[" IPv6 "]" (RFC 7622 §3.2.1 via RFC 3986 IP-literal). */
static const char *jid_check_ip6(const char *s, size_t len)
{
	char text[INET6_ADDRSTRLEN];
	unsigned char addr[16];

	if (len < 2 || s[len - 1] != ']' || len - 2 >= sizeof(text))
		return "bad IPv6 literal";
	memcpy(text, s + 1, len - 2);
	text[len - 2] = '\0';
	if (inet_pton(AF_INET6, text, addr) != 1)
		return "bad IPv6 literal";
	return NULL;
}

static const char *jid_check_labels(const char *s, size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.')
			continue;
		if (i == start)
			return "domain label empty";
		if (i - start > JID_LABEL_MAX)
			return "domain label too long";
		start = i + 1;
	}
	return NULL;
}

static const char *jid_check_domain(const char *s, size_t len)
{
	/*
	 * The limit counts a trailing dot, so that no valid JID is longer
	 * than JID_MAX and callers may size buffers by it.
	 */
	if (len > JID_PART_MAX)
		return "domainpart too long";
	if (len > 0 && s[0] == '[')
		return jid_check_ip6(s, len);
	/* RFC 7622 §3.2: a final dot is not part of the name. */
	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0)
		return "domainpart empty";
	switch (jid_scan(s, len, jid_domain_char)) {
	case JID_CHAR_SPACE:
		return "domainpart contains whitespace";
	case JID_CHAR_FORBIDDEN:
		return "domainpart contains a forbidden character";
	case JID_CHAR_OK:
		break;
	}
	return jid_check_labels(s, len);
}

/*
 * A resourcepart is free-form text (RFC 7622 §3.4): spaces, '@' and '/' are
 * fine, and controls and bad UTF-8 were refused for the whole input.
 */
static const char *jid_check_resource(size_t len)
{
	if (len == 0)
		return "resourcepart empty";
	if (len > JID_PART_MAX)
		return "resourcepart too long";
	return NULL;
}

static const char *jid_check_parts(const struct jid_parts *p,
				   enum jid_kind kind)
{
	const char *why = NULL;

	if (p->local)
		why = jid_check_local(p->local, p->local_len);
	if (!why)
		why = jid_check_domain(p->domain, p->domain_len);
	if (!why && p->res)
		why = jid_check_resource(p->res_len);
	if (!why && kind == JID_BARE && p->res)
		why = "resource not allowed";
	if (!why && kind == JID_FULL && !p->res)
		why = "resource required";
	return why;
}

const char *jid_check(const char *s, size_t len, enum jid_kind kind)
{
	struct jid_parts p;
	const char *why;

	if (!s || len == 0)
		return "empty JID";
	/* Before any scan: the input is untrusted and may be huge. */
	if (len > JID_MAX)
		return "JID too long";
	why = jid_check_text(s, len);
	if (why)
		return why;
	jid_split(s, len, &p);
	return jid_check_parts(&p, kind);
}

const char *jid_check_account(const char *s, size_t len, enum jid_kind kind)
{
	struct jid_parts p;
	const char *why = jid_check(s, len, kind);

	if (why)
		return why;
	jid_split(s, len, &p);
	return p.local ? NULL : "localpart required";
}

/*
 * RFC 7622 §3.2 has the trailing dot of a domain stripped before JIDs are
 * compared, and the bare JID is what sessions are compared by, so it goes.
 */
int jid_bare(const char *s, char *out, size_t outlen)
{
	size_t n = strcspn(s, "/");

	if (n > 1 && s[n - 1] == '.')
		n--;
	if (n >= outlen) {
		if (outlen > 0)
			out[0] = '\0';
		return -1;
	}
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

const char *jid_resource_ptr(const char *s)
{
	const char *slash = strchr(s, '/');

	return slash ? slash + 1 : NULL;
}
