// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: rl_payload_parse_config() (docs/protocol.md 2.9).
 *
 * Invariants: the parser accepts or returns an RL_PAYLOAD_ERROR with a
 * clinic-facing code and a "$..." path; what it accepts has at most 64
 * valid keys, and both the config builder and the config_state builder
 * (which echoes the settings) accept it; the rebuilt message parses back to
 * the same entries; no leaks (LeakSanitizer).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iproto \
 *     tests/fuzz/fuzz-clinic-config.c proto/payload.c proto/topic.c \
 *     $(pkg-config --cflags --libs json-glib-1.0) -o fuzz-clinic-config
 *   ./fuzz-clinic-config -dict=tests/fuzz/json.dict tests/fuzz/corpus/clinic-config
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

static bool value_eq(const struct rl_config_value *a,
		     const struct rl_config_value *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case RL_CONFIG_BOOL:
		return a->u.b == b->u.b;
	case RL_CONFIG_INT:
		return a->u.i == b->u.i;
	case RL_CONFIG_DOUBLE:
		return a->u.d == b->u.d;
	case RL_CONFIG_STRING:
		return strcmp(a->u.s, b->u.s) == 0;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_auto(RlConfigMsg) msg = { 0 };
	g_auto(RlConfigMsg) again = { 0 };
	g_autoptr(GError) err = NULL;
	g_autofree gchar *json = NULL;
	g_autofree gchar *state = NULL;
	struct rl_config_state cs = { 0 };
	const struct rl_envelope env = {
		.msg_id = "00000000-0000-4000-8000-000000000000",
		.event_time_us = 0, .time_quality = RL_TIME_SYNCED,
		.received_at_us = 0, .gateway_id = "gw",
	};

	if (!rl_payload_parse_config((const char *) data, size, &msg, &err)) {
		check(err && err->domain == RL_PAYLOAD_ERROR);
		check(err->code == RL_PAYLOAD_ERROR_BAD_JSON ||
		      err->code == RL_PAYLOAD_ERROR_BAD_SCHEMA ||
		      err->code == RL_PAYLOAD_ERROR_BAD_VALUE);
		check(err->message[0] == '$');
		check(strlen(err->message) <= RL_DETAIL_MAX);
		check(g_utf8_validate(err->message, -1, NULL));
		check(!msg.msg_id && !msg.entries && msg.n_entries == 0);
		return 0;
	}
	check(!err);
	check(msg.n_entries <= RL_CONFIG_MAX_ENTRIES);
	for (size_t i = 0; i < msg.n_entries; i++)
		check(rl_payload_config_key_validate(msg.entries[i].key) == 0);

	json = rl_payload_build_config(&msg, NULL);
	check(json != NULL);
	check(rl_payload_parse_config(json, strlen(json), &again, NULL));
	check(strcmp(again.msg_id, msg.msg_id) == 0);
	check(again.n_entries == msg.n_entries);
	for (size_t i = 0; i < msg.n_entries; i++) {
		check(strcmp(again.entries[i].key, msg.entries[i].key) == 0);
		check(value_eq(&again.entries[i].value, &msg.entries[i].value));
	}

	cs.config_msg_id = msg.msg_id;
	cs.settings = msg.entries;
	cs.n_settings = msg.n_entries;
	state = rl_payload_build_config_state(&cs, &env, NULL);
	check(state != NULL);
	return 0;
}
