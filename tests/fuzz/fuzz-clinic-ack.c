// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: rl_payload_parse_alert_ack() (docs/protocol.md 2.8).
 *
 * Invariants: the parser accepts or returns an RL_PAYLOAD_ERROR with a
 * clinic-facing code (bad_json, bad_schema, bad_value) and a "$..." path;
 * what it accepts, the builder rebuilds and the parser reads back the same
 * (times to the millisecond); no leaks (LeakSanitizer).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iproto \
 *     tests/fuzz/fuzz-clinic-ack.c proto/payload.c proto/topic.c \
 *     $(pkg-config --cflags --libs json-glib-1.0) -o fuzz-clinic-ack
 *   ./fuzz-clinic-ack -dict=tests/fuzz/json.dict tests/fuzz/corpus/clinic-ack
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_auto(RlAlertAck) ack = { 0 };
	g_auto(RlAlertAck) again = { 0 };
	g_autoptr(GError) err = NULL;
	g_autofree gchar *json = NULL;
	g_autofree gchar *msg_id = NULL;

	/* the gateway reads the msg_id of whatever it rejects */
	msg_id = rl_payload_peek_msg_id((const char *) data, size);
	check(!msg_id || rl_payload_uuid_validate(msg_id) == 0);

	if (!rl_payload_parse_alert_ack((const char *) data, size, &ack, &err)) {
		check(err && err->domain == RL_PAYLOAD_ERROR);
		check(err->code == RL_PAYLOAD_ERROR_BAD_JSON ||
		      err->code == RL_PAYLOAD_ERROR_BAD_SCHEMA ||
		      err->code == RL_PAYLOAD_ERROR_BAD_VALUE);
		check(err->message[0] == '$');
		check(strlen(err->message) <= RL_DETAIL_MAX);
		check(g_utf8_validate(err->message, -1, NULL));
		check(!ack.msg_id && !ack.alert_id && !ack.note);
		return 0;
	}
	check(!err);
	check(msg_id && strcmp(msg_id, ack.msg_id) == 0);

	json = rl_payload_build_alert_ack(&ack, NULL);
	check(json != NULL);
	check(rl_payload_parse_alert_ack(json, strlen(json), &again, NULL));
	check(strcmp(again.msg_id, ack.msg_id) == 0);
	check(strcmp(again.gateway_id, ack.gateway_id) == 0);
	check(strcmp(again.alert_id, ack.alert_id) == 0);
	check(strcmp(again.by, ack.by) == 0);
	check(str_eq(again.note, ack.note));
	check(again.action == ack.action);
	check(again.at_us == ack.at_us - ack.at_us % 1000);
	check(again.event_time_us ==
	      ack.event_time_us - ack.event_time_us % 1000);
	return 0;
}
