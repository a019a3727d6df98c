/*
 * check.h: strict checking of a request body against a call's field table,
 * before anything reaches Redis. Each failure names its HTTP status, a
 * machine code from the API's list and, where one field is at fault, it.
 */
#ifndef TALKPROXY_CHECK_H
#define TALKPROXY_CHECK_H

#include <jansson.h>
#include <stddef.h>

#define CHECK_MAX_DEPTH 8

enum check_kind {
	CHECK_LINE,    /* string, no control characters */
	CHECK_TEXT,    /* string, control characters but \t and \n refused */
	CHECK_ACCOUNT, /* bare JID with a localpart */
	CHECK_JID,     /* bare or full JID */
	CHECK_RESOURCE,
	CHECK_ENUM, /* one of values[] */
	CHECK_BOOL,
	CHECK_CURSOR,   /* a queue cursor (bus_cursor_valid) */
	CHECK_JID_LIST, /* array of at most max bare JIDs */
	CHECK_LIST,     /* array of at most max items, each checked against
			   sub[0]; errors name the list */
	CHECK_OBJECT,   /* object checked against sub[]; errors name "f.sub" */
	CHECK_IQ        /* text that is exactly one well-formed <iq/> element */
};

struct check_field {
	const char *name;
	enum check_kind kind;
	int required;
	size_t max;                 /* bytes; 0 = the caller's text limit */
	const char *const *values;  /* CHECK_ENUM: NULL-terminated */
	int allow_empty;
	const struct check_field *sub; /* CHECK_OBJECT; CHECK_LIST: the item */
};

struct check_error {
	int status;
	const char *code;  /* static */
	const char *field; /* the table's name, field_buf, or NULL */
	char field_buf[64];
	char message[192];
};

/*
 * Parses and checks body against fields (terminated by a {NULL} row); the
 * member "token" is always allowed (the original protocol's way to send
 * the session token) unless fields has a row for it, which then checks it.
 * text_max caps fields whose max is 0. Returns the object (new reference,
 * caller decrefs), or NULL with err filled in.
 */
json_t *check_body(const char *body, size_t len,
		   const struct check_field *fields, size_t text_max,
		   struct check_error *err);

/* Fills err; returns NULL so callers can `return check_fail(...)`. */
void *check_fail(struct check_error *err, int status, const char *code,
		 const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#endif
