/* test_query.c: STUN/TURN server lists read from XEP-0215 and
 * google:jingleinfo answers. */
#include <jansson.h>
#include <string.h>
#include <strophe.h>

#include "query.h"
#include "tap.h"

static json_t *parse(xmpp_ctx_t *ctx, const char *xml, int jingleinfo)
{
	xmpp_stanza_t *st = xmpp_stanza_new_from_string(ctx, xml);
	json_t *a = NULL;

	if (st)
		a = jingleinfo ? query_parse_jingleinfo(st)
			       : query_parse_services(st);
	xmpp_stanza_release(st);
	return a;
}

static const char *str(json_t *a, size_t i, const char *k)
{
	return json_string_value(json_object_get(json_array_get(a, i), k));
}

static json_int_t num(json_t *a, size_t i, const char *k)
{
	return json_integer_value(json_object_get(json_array_get(a, i), k));
}

static void test_extdisco(xmpp_ctx_t *ctx)
{
	/* XEP-0215 example 2, with one broken entry added. */
	json_t *a = parse(ctx,
		"<services xmlns='urn:xmpp:extdisco:2'>"
		"<service host='stun.shakespeare.lit' port='9998' transport='udp' type='stun'/>"
		"<service host='turn.shakespeare.lit' password='pw' port='9999'"
		" transport='tcp' type='turn' username='u' expires='2026-01-01T00:00:00Z'/>"
		"<service port='1' type='stun'/>"
		"<service host='h' type='turn' port='99999'/>"
		"</services>", 0);

	ok(json_array_size(a) == 3, "services without a host are skipped");
	ok(strcmp(str(a, 0, "host"), "stun.shakespeare.lit") == 0 &&
		   num(a, 0, "port") == 9998 &&
		   strcmp(str(a, 0, "transport"), "udp") == 0 &&
		   strcmp(str(a, 0, "type"), "stun") == 0,
	   "a STUN service: host, port, transport, type");
	ok(strcmp(str(a, 1, "username"), "u") == 0 &&
		   strcmp(str(a, 1, "password"), "pw") == 0 &&
		   strcmp(str(a, 1, "expires"), "2026-01-01T00:00:00Z") == 0,
	   "a TURN service keeps its credentials and expiry");
	ok(num(a, 2, "port") == 0 && strcmp(str(a, 2, "transport"), "udp") == 0,
	   "an impossible port reads as 0, a missing transport as udp");
	json_decref(a);
}

static void test_jingleinfo(xmpp_ctx_t *ctx)
{
	json_t *a = parse(ctx,
		"<query xmlns='google:jingleinfo'>"
		"<stun><server host='stun.l.google.com' udp='19302'/></stun>"
		"<relay><token>T0K</token>"
		"<server host='relay.google.com' udp='19295' tcp='19294' tcpssl='443'/>"
		"</relay></query>", 1);

	ok(json_array_size(a) == 4, "one STUN server and a relay on three transports");
	ok(strcmp(str(a, 0, "type"), "stun") == 0 && num(a, 0, "port") == 19302,
	   "the STUN server and its UDP port");
	ok(strcmp(str(a, 3, "transport"), "tls") == 0 && num(a, 3, "port") == 443 &&
		   strcmp(str(a, 3, "token"), "T0K") == 0,
	   "relay over TLS with the relay token");
	ok(json_object_get(json_array_get(a, 0), "token") == NULL,
	   "the token belongs to the relay only");
	json_decref(a);
}

int main(void)
{
	xmpp_initialize();
	xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);

	test_extdisco(ctx);
	test_jingleinfo(ctx);
	xmpp_ctx_free(ctx);
	xmpp_shutdown();
	return tap_done();
}
