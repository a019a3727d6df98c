/* test_check.c: request bodies against a field table, case by case. */
#include <string.h>

#include "check.h"
#include "tap.h"

static const char *const states[] = {"active", "composing", NULL};
static const struct check_field keys[] = {
	{"p256dh", CHECK_LINE, 1, 8, NULL, 0, NULL},
	{"auth", CHECK_LINE, 0, 8, NULL, 0, NULL},
	{0}};
static const struct check_field group[] = {
	{"a group", CHECK_LINE, 1, 8, NULL, 0, NULL},
	{0}};
static const struct check_field fields[] = {
	{"to", CHECK_JID, 1, 3071, NULL, 0, NULL},
	{"body", CHECK_TEXT, 0, 0, NULL, 0, NULL},
	{"id", CHECK_LINE, 0, 8, NULL, 0, NULL},
	{"state", CHECK_ENUM, 0, 16, states, 0, NULL},
	{"status", CHECK_TEXT, 0, 64, NULL, 1, NULL},
	{"toast", CHECK_BOOL, 0, 0, NULL, 0, NULL},
	{"ack", CHECK_CURSOR, 0, 48, NULL, 0, NULL},
	{"tiles", CHECK_JID_LIST, 0, 2, NULL, 0, NULL},
	{"keys", CHECK_OBJECT, 0, 0, NULL, 0, keys},
	{"xml", CHECK_IQ, 0, 200, NULL, 0, NULL},
	{"groups", CHECK_LIST, 0, 3, NULL, 0, group},
	{0}};

/* A call that takes "token" as its own field (login's OAuth token). */
static const struct check_field token_fields[] = {
	{"token", CHECK_LINE, 0, 8, NULL, 0, NULL},
	{0}};

struct check_case {
	const char *name;
	const char *body;
	int status; /* 0: accepted */
	const char *code;
	const char *field;
};

static const struct check_case cases[] = {
	{"accepts a minimal body", "{\"to\":\"a@b\"}", 0, NULL, NULL},
	{"accepts every field", "{\"to\":\"a@b/r\",\"body\":\"hi\\nthere\\t!\","
	 "\"id\":\"x1\",\"state\":\"active\",\"status\":\"\",\"toast\":true}", 0, NULL, NULL},
	{"accepts a token member", "{\"to\":\"a@b\",\"token\":\"t\"}", 0, NULL, NULL},
	{"refuses broken JSON", "{\"to\":", 400, "bad_json", NULL},
	{"refuses an empty body", "", 400, "bad_json", NULL},
	{"refuses invalid UTF-8", "{\"to\":\"a@b\",\"body\":\"\xff\"}", 400, "bad_utf8", NULL},
	{"refuses a duplicate key", "{\"to\":\"a@b\",\"to\":\"c@d\"}", 400, "duplicate_key", NULL},
	{"refuses an array body", "[1]", 400, "not_object", NULL},
	{"refuses a string body", "\"x\"", 400, "not_object", NULL},
	{"refuses a number body", "5", 400, "not_object", NULL},
	{"refuses a carriage return in text", "{\"to\":\"a@b\",\"body\":\"a\\rb\"}",
	 400, "control_char", "body"},
	{"refuses nesting deeper than eight levels",
	 "{\"a\":[[[[[[[[1]]]]]]]]}", 400, "too_deep", NULL},
	{"refuses a missing required field", "{\"body\":\"x\"}", 400, "missing_field", "to"},
	{"refuses a number where a string goes", "{\"to\":5}", 400, "wrong_type", "to"},
	{"refuses null where a string goes", "{\"to\":null}", 400, "wrong_type", "to"},
	{"refuses a string where a boolean goes", "{\"to\":\"a@b\",\"toast\":\"yes\"}",
	 400, "wrong_type", "toast"},
	{"refuses an unknown member, naming it", "{\"to\":\"a@b\",\"color\":1}", 400, "unknown_field", "color"},
	{"refuses an unknown member too long to quote",
	 "{\"to\":\"a@b\",\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\":1}",
	 400, "unknown_field", NULL},
	{"refuses an empty required string", "{\"to\":\"\"}", 400, "empty", "to"},
	{"refuses an id over its limit", "{\"to\":\"a@b\",\"id\":\"123456789\"}", 400, "too_long", "id"},
	{"refuses a body over the caller's text limit",
	 "{\"to\":\"a@b\",\"body\":\"0123456789abcdefX\"}", 400, "too_long", "body"},
	{"refuses a control character in a line", "{\"to\":\"a@b\",\"id\":\"a\\u0001\"}",
	 400, "control_char", "id"},
	{"refuses a newline in a line", "{\"to\":\"a@b\",\"id\":\"a\\nb\"}", 400, "control_char", "id"},
	{"refuses an escape character in text", "{\"to\":\"a@b\",\"body\":\"\\u001b[31m\"}",
	 400, "control_char", "body"},
	{"refuses an escaped NUL", "{\"to\":\"a@b\",\"body\":\"a\\u0000b\"}", 400, "control_char", NULL},
	{"refuses a JID without a domain", "{\"to\":\"a@\"}", 400, "bad_jid", "to"},
	{"refuses a JID with a space", "{\"to\":\"a b@c\"}", 400, "bad_jid", "to"},
	{"refuses a value not in the enumeration", "{\"to\":\"a@b\",\"state\":\"typing\"}",
	 400, "bad_value", "state"},
	{"accepts an empty status where it is allowed", "{\"to\":\"a@b\",\"status\":\"\"}", 0, NULL, NULL},
	{"accepts a cursor", "{\"to\":\"a@b\",\"ack\":\"1700000000000-0\"}", 0, NULL, NULL},
	{"refuses a cursor without its sequence", "{\"to\":\"a@b\",\"ack\":\"1700000000000\"}",
	 400, "bad_value", "ack"},
	{"refuses a cursor with a sign", "{\"to\":\"a@b\",\"ack\":\"-1-0\"}", 400, "bad_value", "ack"},
	{"refuses a cursor with 21 digits", "{\"to\":\"a@b\",\"ack\":\"123456789012345678901-0\"}",
	 400, "bad_value", "ack"},
	{"refuses a numeric cursor", "{\"to\":\"a@b\",\"ack\":1}", 400, "wrong_type", "ack"},
	{"accepts a list of JIDs", "{\"to\":\"a@b\",\"tiles\":[\"c@d\",\"e@f\"]}", 0, NULL, NULL},
	{"accepts an empty list", "{\"to\":\"a@b\",\"tiles\":[]}", 0, NULL, NULL},
	{"refuses a list over its count", "{\"to\":\"a@b\",\"tiles\":[\"c@d\",\"e@f\",\"g@h\"]}",
	 400, "too_long", "tiles"},
	{"refuses a full JID in a list of bare JIDs", "{\"to\":\"a@b\",\"tiles\":[\"c@d/r\"]}",
	 400, "bad_jid", "tiles"},
	{"refuses a number in a list", "{\"to\":\"a@b\",\"tiles\":[1]}", 400, "wrong_type", "tiles"},
	{"refuses a string where a list goes", "{\"to\":\"a@b\",\"tiles\":\"c@d\"}",
	 400, "wrong_type", "tiles"},
	{"accepts a nested object", "{\"to\":\"a@b\",\"keys\":{\"p256dh\":\"x\"}}", 0, NULL, NULL},
	{"names a nested member that is missing", "{\"to\":\"a@b\",\"keys\":{}}",
	 400, "missing_field", "keys.p256dh"},
	{"names a nested member that is too long", "{\"to\":\"a@b\",\"keys\":{\"p256dh\":\"123456789\"}}",
	 400, "too_long", "keys.p256dh"},
	{"names a nested member it does not take", "{\"to\":\"a@b\",\"keys\":{\"p256dh\":\"x\",\"z\":1}}",
	 400, "unknown_field", "keys.z"},
	{"refuses a token inside a nested object", "{\"to\":\"a@b\",\"keys\":{\"p256dh\":\"x\",\"token\":\"t\"}}",
	 400, "unknown_field", "keys.token"},
	{"accepts one iq", "{\"to\":\"a@b\",\"xml\":\"<iq type='get'><q xmlns='x'/></iq>\"}", 0, NULL, NULL},
	{"accepts one iq in jabber:client with newlines",
	 "{\"to\":\"a@b\",\"xml\":\"<iq xmlns='jabber:client' type='get'>\\n <q/>\\n</iq>\"}", 0, NULL, NULL},
	{"refuses two iqs", "{\"to\":\"a@b\",\"xml\":\"<iq/><iq/>\"}", 400, "bad_xml", "xml"},
	{"refuses a presence", "{\"to\":\"a@b\",\"xml\":\"<presence/>\"}", 400, "bad_xml", "xml"},
	{"refuses an iq of another namespace", "{\"to\":\"a@b\",\"xml\":\"<iq xmlns='y'/>\"}",
	 400, "bad_xml", "xml"},
	{"refuses a DOCTYPE", "{\"to\":\"a@b\",\"xml\":\"<!DOCTYPE iq><iq/>\"}", 400, "bad_xml", "xml"},
	{"refuses an unclosed iq", "{\"to\":\"a@b\",\"xml\":\"<iq>\"}", 400, "bad_xml", "xml"},
	{"refuses text only", "{\"to\":\"a@b\",\"xml\":\"iq\"}", 400, "bad_xml", "xml"},
	{"refuses an undeclared prefix", "{\"to\":\"a@b\",\"xml\":\"<p:iq/>\"}", 400, "bad_xml", "xml"},
	{"refuses an array where an object goes", "{\"to\":\"a@b\",\"keys\":[]}", 400, "wrong_type", "keys"},
	{"accepts a list of lines", "{\"to\":\"a@b\",\"groups\":[\"Friends\",\"W\u00f6rk\"]}", 0, NULL, NULL},
	{"accepts an empty list of lines", "{\"to\":\"a@b\",\"groups\":[]}", 0, NULL, NULL},
	{"accepts a line of exactly its limit in a list", "{\"to\":\"a@b\",\"groups\":[\"12345678\"]}",
	 0, NULL, NULL},
	{"refuses a string where a list of lines goes", "{\"to\":\"a@b\",\"groups\":\"Friends\"}",
	 400, "wrong_type", "groups"},
	{"refuses an object where a list of lines goes", "{\"to\":\"a@b\",\"groups\":{}}",
	 400, "wrong_type", "groups"},
	{"refuses a list of lines over its count", "{\"to\":\"a@b\",\"groups\":[\"a\",\"b\",\"c\",\"d\"]}",
	 400, "too_long", "groups"},
	{"refuses a number in a list of lines, naming the list", "{\"to\":\"a@b\",\"groups\":[\"a\",1]}",
	 400, "wrong_type", "groups"},
	{"refuses null in a list of lines", "{\"to\":\"a@b\",\"groups\":[null]}", 400, "wrong_type", "groups"},
	{"refuses a nested list in a list of lines", "{\"to\":\"a@b\",\"groups\":[[\"a\"]]}",
	 400, "wrong_type", "groups"},
	{"refuses an empty line in a list", "{\"to\":\"a@b\",\"groups\":[\"a\",\"\"]}", 400, "empty", "groups"},
	{"refuses a line over its limit in a list", "{\"to\":\"a@b\",\"groups\":[\"123456789\"]}",
	 400, "too_long", "groups"},
	{"refuses a control character in a list of lines", "{\"to\":\"a@b\",\"groups\":[\"a\\u0007\"]}",
	 400, "control_char", "groups"},
	{"refuses a newline in a list of lines", "{\"to\":\"a@b\",\"groups\":[\"a\\nb\"]}",
	 400, "control_char", "groups"},
	{"refuses a delete character in a list of lines", "{\"to\":\"a@b\",\"groups\":[\"a\\u007f\"]}",
	 400, "control_char", "groups"},
};

static const struct check_case token_cases[] = {
	{"checks a token the call declares: accepts one within its limit",
	 "{\"token\":\"12345678\"}", 0, NULL, NULL},
	{"checks a token the call declares: refuses one over its limit",
	 "{\"token\":\"123456789\"}", 400, "too_long", "token"},
	{"checks a token the call declares: refuses an empty one", "{\"token\":\"\"}",
	 400, "empty", "token"},
	{"checks a token the call declares: refuses a number", "{\"token\":5}",
	 400, "wrong_type", "token"},
	{"checks a token the call declares: refuses a control character",
	 "{\"token\":\"a\\tb\"}", 400, "control_char", "token"},
};

static void run(const struct check_case *c, size_t n,
		const struct check_field *table)
{
	for (size_t i = 0; i < n; i++) {
		struct check_error err = {0};
		json_t *o = check_body(c[i].body, strlen(c[i].body), table, 16,
				       &err);
		if (!c[i].status) {
			ok(o != NULL, "%s", c[i].name);
			if (!o)
				printf("#   got %s: %s\n", err.code, err.message);
		} else {
			ok(!o && err.status == c[i].status &&
				   strcmp(err.code, c[i].code) == 0 &&
				   (c[i].field ? err.field &&
							 strcmp(err.field, c[i].field) == 0
					       : err.field == NULL),
			   "%s (got %d %s %s)", c[i].name, err.status,
			   err.code ? err.code : "-", err.field ? err.field : "-");
		}
		json_decref(o);
	}
}

static void test_list_message(void)
{
	struct check_error err = {0};
	const char *body = "{\"to\":\"a@b\",\"groups\":[\"a\",\"\"]}";

	ok(!check_body(body, strlen(body), fields, 16, &err) &&
		   strcmp(err.message, "groups[1]: a group is empty") == 0,
	   "names the list item at fault by its index (got \"%s\")",
	   err.message);
}

int main(void)
{
	run(cases, sizeof(cases) / sizeof(cases[0]), fields);
	run(token_cases, sizeof(token_cases) / sizeof(token_cases[0]),
	    token_fields);
	test_list_message();
	return tap_done();
}
