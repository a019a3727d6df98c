/* check.c: request body checks driven by the API's field tables (check.h). */
#include "check.h"

#include <expat.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bus.h"
#include "jid.h"

void *check_fail(struct check_error *err, int status, const char *code,
		 const char *field, const char *fmt, ...)
{
	va_list ap;

	err->status = status;
	err->code = code;
	err->field = field;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return NULL;
}

static int check_depth(json_t *v, int depth)
{
	const char *k;
	json_t *c;
	size_t i;

	if (depth > CHECK_MAX_DEPTH)
		return -1;
	if (json_is_object(v)) {
		json_object_foreach(v, k, c) if (check_depth(c, depth + 1) == -1)
			return -1;
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, c) if (check_depth(c, depth + 1) == -1)
			return -1;
	}
	return 0;
}

static json_t *check_parse(const char *body, size_t len,
			   struct check_error *err)
{
	json_error_t je;
	/* DECODE_ANY so that a bare string or number is named for what it
	 * is (not_object) rather than as a syntax error. */
	json_t *o = json_loadb(body, len,
			       JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);

	if (!o) {
		switch (json_error_code(&je)) {
		case json_error_invalid_utf8:
			return check_fail(err, 400, "bad_utf8", NULL,
					  "the body is not valid UTF-8");
		case json_error_duplicate_key:
			return check_fail(err, 400, "duplicate_key", NULL,
					  "a member appears twice (line %d)",
					  je.line);
		case json_error_null_character:
			return check_fail(err, 400, "control_char", NULL,
					  "strings may not contain NUL");
		default:
			return check_fail(err, 400, "bad_json", NULL,
					  "the body is not valid JSON (line %d, "
					  "column %d)",
					  je.line, je.column);
		}
	}
	if (!json_is_object(o)) {
		json_decref(o);
		return check_fail(err, 400, "not_object", NULL,
				  "the body must be a JSON object");
	}
	if (check_depth(o, 1) == -1) {
		json_decref(o);
		return check_fail(err, 400, "too_deep", NULL,
				  "the body nests more than %d levels",
				  CHECK_MAX_DEPTH);
	}
	return o;
}

/* Returns the first forbidden control character's offset, or -1. */
static long check_controls(const char *s, size_t len, int text)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (text && (c == '\n' || c == '\t'))
			continue;
		if (c < 0x20 || c == 0x7f)
			return (long)i;
	}
	return -1;
}

static int check_enum(const char *s, const char *const *values)
{
	for (; *values; values++)
		if (strcmp(s, *values) == 0)
			return 1;
	return 0;
}

static void *check_string(json_t *v, const struct check_field *f,
			  size_t text_max, struct check_error *err)
{
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	size_t max = f->max ? f->max : text_max;
	const char *why = NULL;

	if (len == 0 && !f->allow_empty)
		return check_fail(err, 400, "empty", f->name, "%s is empty",
				  f->name);
	if (len > max)
		return check_fail(err, 400, "too_long", f->name,
				  "%s is longer than %zu bytes", f->name, max);
	if (check_controls(s, len,
			   f->kind == CHECK_TEXT || f->kind == CHECK_IQ) >= 0)
		return check_fail(err, 400, "control_char", f->name,
				  "%s contains a control character", f->name);
	if (f->kind == CHECK_ACCOUNT)
		why = jid_check_account(s, len, JID_BARE);
	else if (f->kind == CHECK_JID)
		why = jid_check(s, len, JID_ANY);
	else if (f->kind == CHECK_RESOURCE &&
		 (strchr(s, ' ') == s || len > JID_PART_MAX))
		why = "bad resource";
	if (why)
		return check_fail(err, 400, "bad_jid", f->name, "%s: %s",
				  f->name, why);
	if (f->kind == CHECK_ENUM && !check_enum(s, f->values))
		return check_fail(err, 400, "bad_value", f->name,
				  "%s is not one of the allowed values",
				  f->name);
	return v;
}

/* What expat saw of a rawiq document. */
struct check_xml {
	XML_Parser p;
	int depth;
	int root_is_iq;
	const char *why; /* set: refused */
};

static void check_xml_start(void *ud, const XML_Char *name,
			    const XML_Char **attrs)
{
	struct check_xml *x = ud;
	/* Namespaces are resolved: "ns name" or a bare name. */
	const char *local = strrchr(name, ' ');

	(void)attrs;
	local = local ? local + 1 : name;
	if (x->depth++ == 0)
		x->root_is_iq = strcmp(local, "iq") == 0 &&
				(local == name ||
				 strncmp(name, "jabber:client ", 14) == 0);
}

static void check_xml_end(void *ud, const XML_Char *name)
{
	(void)name;
	((struct check_xml *)ud)->depth--;
}

/* A DOCTYPE could declare entities that expand without bound: refuse. */
static void check_xml_doctype(void *ud, const XML_Char *name,
			      const XML_Char *sysid, const XML_Char *pubid,
			      int internal)
{
	struct check_xml *x = ud;

	(void)name;
	(void)sysid;
	(void)pubid;
	(void)internal;
	x->why = "a DOCTYPE is not allowed";
	XML_StopParser(x->p, XML_FALSE);
}

/* NULL when s is exactly one well-formed <iq/> (expat refuses a second
 * root element or text after it), else the reason. */
static const char *check_iq_xml(const char *s, size_t len)
{
	struct check_xml x = {0};

	x.p = XML_ParserCreateNS("UTF-8", ' ');
	if (!x.p)
		return "out of memory";
	XML_SetUserData(x.p, &x);
	XML_SetElementHandler(x.p, check_xml_start, check_xml_end);
	XML_SetStartDoctypeDeclHandler(x.p, check_xml_doctype);
	if (XML_Parse(x.p, s, (int)len, XML_TRUE) != XML_STATUS_OK && !x.why)
		x.why = XML_ErrorString(XML_GetErrorCode(x.p));
	if (!x.why && !x.root_is_iq)
		x.why = "the element is not an iq";
	XML_ParserFree(x.p);
	return x.why;
}

static void *check_members(json_t *o, const struct check_field *fields,
			   size_t text_max, const char *prefix,
			   struct check_error *err);

static void *check_list(json_t *v, const struct check_field *f,
			struct check_error *err)
{
	size_t i;
	json_t *item;

	if (!json_is_array(v))
		return check_fail(err, 400, "wrong_type", f->name,
				  "%s must be an array of JIDs", f->name);
	if (json_array_size(v) > f->max)
		return check_fail(err, 400, "too_long", f->name,
				  "%s has more than %zu entries", f->name,
				  f->max);
	json_array_foreach(v, i, item)
	{
		if (!json_is_string(item))
			return check_fail(err, 400, "wrong_type", f->name,
					  "%s must hold strings", f->name);
		const char *why = jid_check(json_string_value(item),
					    json_string_length(item), JID_BARE);
		if (why)
			return check_fail(err, 400, "bad_jid", f->name,
					  "%s[%zu]: %s", f->name, i, why);
	}
	return v;
}

static void *check_field(json_t *v, const struct check_field *f,
			 size_t text_max, struct check_error *err);

/* A list of items of one kind (sub[0]); a failure names the list and, in
 * the message, the item's index. */
static void *check_items(json_t *v, const struct check_field *f,
			 size_t text_max, struct check_error *err)
{
	char why[sizeof(err->message)];
	json_t *item;
	size_t i;

	if (!json_is_array(v))
		return check_fail(err, 400, "wrong_type", f->name,
				  "%s must be an array", f->name);
	if (json_array_size(v) > f->max)
		return check_fail(err, 400, "too_long", f->name,
				  "%s has more than %zu entries", f->name,
				  f->max);
	json_array_foreach(v, i, item)
	{
		if (check_field(item, f->sub, text_max, err))
			continue;
		memcpy(why, err->message, sizeof(why));
		return check_fail(err, err->status, err->code, f->name,
				  "%s[%zu]: %.150s", f->name, i, why);
	}
	return v;
}

static void *check_field(json_t *v, const struct check_field *f,
			 size_t text_max, struct check_error *err)
{
	if (f->kind == CHECK_LIST)
		return check_items(v, f, text_max, err);
	if (f->kind == CHECK_BOOL) {
		if (!json_is_boolean(v))
			return check_fail(err, 400, "wrong_type", f->name,
					  "%s must be true or false", f->name);
		return v;
	}
	if (f->kind == CHECK_JID_LIST)
		return check_list(v, f, err);
	if (f->kind == CHECK_OBJECT) {
		if (!json_is_object(v))
			return check_fail(err, 400, "wrong_type", f->name,
					  "%s must be an object", f->name);
		return check_members(v, f->sub, text_max, f->name, err) ? v
									 : NULL;
	}
	if (!json_is_string(v))
		return check_fail(err, 400, "wrong_type", f->name,
				  "%s must be a string", f->name);
	if (!check_string(v, f, text_max, err))
		return NULL;
	if (f->kind == CHECK_IQ) {
		const char *why = check_iq_xml(json_string_value(v),
					       json_string_length(v));
		if (why)
			return check_fail(err, 400, "bad_xml", f->name,
					  "%s is not one well-formed iq: %s",
					  f->name, why);
	}
	if (f->kind == CHECK_CURSOR && !bus_cursor_valid(json_string_value(v)))
		return check_fail(err, 400, "bad_value", f->name,
				  "%s is not a cursor this server gave out",
				  f->name);
	return v;
}

static const struct check_field *check_lookup(const struct check_field *fields,
					      const char *name)
{
	for (; fields->name; fields++)
		if (strcmp(fields->name, name) == 0)
			return fields;
	return NULL;
}

/* Names the member at fault as "prefix.name" (or name) when it fits whole:
 * cutting it could split a UTF-8 sequence. */
static const char *check_name(struct check_error *err, const char *prefix,
			      const char *name)
{
	int n = snprintf(err->field_buf, sizeof(err->field_buf), "%s%s%s",
			 prefix ? prefix : "", prefix ? "." : "", name);

	return n >= 0 && (size_t)n < sizeof(err->field_buf) ? err->field_buf
							    : NULL;
}

/* Checks the members of o against fields; o on success, else NULL. */
static void *check_members(json_t *o, const struct check_field *fields,
			   size_t text_max, const char *prefix,
			   struct check_error *err)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v)
	{
		const struct check_field *f = check_lookup(fields, k);
		if (!f && !prefix && strcmp(k, "token") == 0)
			continue; /* the session token: checked by the caller */
		if (!f)
			return check_fail(err, 400, "unknown_field",
					  check_name(err, prefix, k),
					  "the body has a member this call does "
					  "not take");
		if (!check_field(v, f, text_max, err)) {
			if (prefix && err->field == f->name)
				err->field = check_name(err, prefix, f->name);
			return NULL;
		}
	}
	for (const struct check_field *f = fields; f->name; f++)
		if (f->required && !json_object_get(o, f->name))
			return check_fail(err, 400, "missing_field",
					  check_name(err, prefix, f->name),
					  "%s is required", f->name);
	return o;
}

json_t *check_body(const char *body, size_t len,
		   const struct check_field *fields, size_t text_max,
		   struct check_error *err)
{
	json_t *o = check_parse(body, len, err);

	if (o && !check_members(o, fields, text_max, NULL, err)) {
		json_decref(o);
		return NULL;
	}
	return o;
}
