// SPDX-License-Identifier: MIT
/*
 * Tests for proto/topic.c and proto/payload.c: the MQTT side of the wire
 * contract (docs/protocol.md section 2). Each vector is named after the
 * section it tests: 2.1 topics, 2.2 envelope, 2.3 gateway status, 2.4
 * wearable status, 2.5 aggregates, 2.6 pain, 2.7 alert, 2.8 alert ack,
 * 2.9 config, 2.10 config state, 2.11 error, 2.12 FHIR.
 *
 *   test-payload              run the tests
 *   test-payload --emit DIR   write the example payloads (the builder vectors
 *                             marked emit) to DIR/<kind>-<n>.json, for
 *                             tests/validate-schemas.py
 *
 * The clinic examples in tests/data/clinic are read from TEST_SRCDIR
 * (default: the current directory, i.e. run from the top of the tree).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-glib/json-glib.h>

#include "payload.h"
#include "topic.h"
#include "wearable.h"

#ifndef TEST_SRCDIR
#define TEST_SRCDIR "."
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Vectors start from a default initializer and override some fields
 * (".score = 11" after the defaults), and leave trailing fields out (zero):
 * that is the point of the tables. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Winitializer-overrides"
#pragma clang diagnostic ignored "-Wmissing-field-initializers"
#elif defined(__GNUC__)
#pragma GCC diagnostic ignored "-Woverride-init"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif

/* payload.h mirrors wearable.h: the same numbers, so a cast is enough */
_Static_assert((int) RL_TIME_UNSYNCED == (int) WB_TIME_UNSYNCED, "time quality");
_Static_assert((int) RL_TIME_SYNCED == (int) WB_TIME_SYNCED, "time quality");
_Static_assert((int) RL_TIME_HOLDOVER == (int) WB_TIME_HOLDOVER, "time quality");
_Static_assert((int) RL_PAIN_BREATHLESSNESS == (int) WB_PAIN_BREATHLESS, "flag");
_Static_assert((int) RL_PAIN_CHEST_PAIN == (int) WB_PAIN_CHEST, "flag");
_Static_assert((int) RL_PAIN_CALF_PAIN_SWELLING == (int) WB_PAIN_CALF, "flag");
_Static_assert((int) RL_PAIN_FEVER == (int) WB_PAIN_FEVER, "flag");
_Static_assert((int) RL_PAIN_BLEEDING == (int) WB_PAIN_BLEEDING, "flag");
_Static_assert((int) RL_PAIN_MEDICATION_TAKEN == (int) WB_PAIN_MEDICATION, "flag");
_Static_assert((int) RL_PAIN_ONE_SIDED == (int) WB_PAIN_ONE_SIDED, "flag");
_Static_assert(RL_PAIN_RED_FLAGS == WB_PAIN_RED_FLAGS, "red flags");
_Static_assert(RL_PAIN_FLAGS_KNOWN == WB_PAIN_FLAGS_KNOWN, "known flags");
_Static_assert(RL_PAIN_SCORE_MAX == WB_PAIN_SCORE_MAX, "score");

/* ---- fixtures ------------------------------------------------------------ */

#define GW	"gw-7f3a"
#define PT	"pt-0042"
#define WR	"belt_1"
#define ID64	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define MSG1	"3f1c2a9e-8b7d-4c6e-9f10-2a3b4c5d6e7f"
#define MSG2	"9b2e4c1a-5d3f-4e8a-b7c6-1f2e3d4c5b6a"
#define MSG3	"0d8f6e2b-3c4a-4b5d-8e9f-6a7b8c9d0e1f"
#define MSG4	"7c4d2e1f-6a5b-4c3d-9e8f-1a2b3c4d5e6f"

#define SEC	INT64_C(1000000)
#define T0	(INT64_C(1714552200) * SEC + 123456)	/* 2024-05-01T08:30:00.123456Z */
#define T0_S	"2024-05-01T08:30:00.123Z"
#define MIN0	(INT64_C(1714552140) * SEC)		/* 2024-05-01T08:29:00Z */
#define DAY0	(INT64_C(1714514400) * SEC)		/* 2024-04-30T22:00:00Z */
#define DAY1	(INT64_C(1714600800) * SEC)		/* 2024-05-01T22:00:00Z */

/* 280 and 281 characters; 280 two-byte characters */
#define S10	"0123456789"
#define S50	S10 S10 S10 S10 S10
#define S280	S50 S50 S50 S50 S50 S10 S10 S10
#define E1	"\xc3\xa9"
#define E10	E1 E1 E1 E1 E1 E1 E1 E1 E1 E1
#define E50	E10 E10 E10 E10 E10
#define E280	E50 E50 E50 E50 E50 E10 E10 E10

static const struct rl_envelope ENV = {
	.msg_id = MSG1, .event_time_us = T0, .time_quality = RL_TIME_SYNCED,
	.received_at_us = T0 + 250000, .gateway_id = GW, .patient_id = PT,
};
static const struct rl_envelope ENV_GW = {	/* no patient */
	.msg_id = MSG4, .event_time_us = T0, .time_quality = RL_TIME_SYNCED,
	.received_at_us = T0, .gateway_id = GW,
};
static const struct rl_envelope ENV_EST = {	/* re-stamped time */
	.msg_id = MSG3, .event_time_us = T0 - 90 * SEC,
	.time_quality = RL_TIME_ESTIMATED, .received_at_us = T0,
	.gateway_id = GW, .patient_id = PT,
};

/* ---- JSON helpers (tests only) ------------------------------------------- */

/* RFC 6901 JSON Pointer into root; NULL if absent */
static JsonNode *ptr_get(JsonNode *root, const char *ptr)
{
	g_auto(GStrv) parts = NULL;
	JsonNode *n = root;

	if (ptr[0] == '\0')
		return root;
	parts = g_strsplit(ptr + 1, "/", -1);
	for (size_t i = 0; parts[i]; i++) {
		if (JSON_NODE_HOLDS_OBJECT(n)) {
			JsonObject *o = json_node_get_object(n);

			if (!json_object_has_member(o, parts[i]))
				return NULL;
			n = json_object_get_member(o, parts[i]);
		} else if (JSON_NODE_HOLDS_ARRAY(n)) {
			JsonArray *a = json_node_get_array(n);
			guint idx = (guint) atoi(parts[i]);

			if (idx >= json_array_get_length(a))
				return NULL;
			n = json_array_get_element(a, idx);
		} else {
			return NULL;
		}
	}
	return n;
}

static bool same_json(JsonNode *a, JsonNode *b)
{
	if (json_node_get_node_type(a) != json_node_get_node_type(b))
		return false;
	if (JSON_NODE_HOLDS_VALUE(a) &&
	    json_node_get_value_type(a) != json_node_get_value_type(b))
		return false;
	return json_node_equal(a, b);
}

/* the value at ptr equals json (NULL: ptr is absent) */
static void assert_json_at(JsonNode *root, const char *ptr, const char *json)
{
	g_autoptr(JsonParser) p = json_parser_new();
	JsonNode *got = ptr_get(root, ptr);

	if (!json) {
		if (got)
			fail_msg("%s: present, expected absent", ptr);
		return;
	}
	if (!got)
		fail_msg("%s: missing, expected %s", ptr, json);
	assert_true(json_parser_load_from_data(p, json, -1, NULL));
	if (!same_json(got, json_parser_get_root(p))) {
		g_autofree gchar *s = json_to_string(got, FALSE);

		fail_msg("%s: got %s, expected %s", ptr, s, json);
	}
}

static JsonNode *parse_json(const char *s)
{
	g_autoptr(JsonParser) p = json_parser_new();
	g_autoptr(GError) err = NULL;

	if (!json_parser_load_from_data(p, s, -1, &err))
		fail_msg("not JSON (%s): %s", err->message, s);
	return json_node_copy(json_parser_get_root(p));
}

static void assert_error(const GError *err, int code, const char *sub)
{
	if (!err)
		fail_msg("no error, expected code %d '%s'", code, sub);
	assert_true(err->domain == RL_PAYLOAD_ERROR);
	if (err->code != code || (sub && !strstr(err->message, sub)))
		fail_msg("error %d '%s', expected %d containing '%s'",
			 err->code, err->message, code, sub ? sub : "");
}

/* ==== 2.1 topics ========================================================== */

struct topic_build_vec {
	const char *name;
	enum rl_topic_kind kind;
	struct rl_topic_ids ids;
	size_t size;		/* buffer size; 0: RL_TOPIC_BUF_SIZE */
	int rc;			/* 0: success with want */
	const char *want;
};

#define IDS	{ GW, PT, WR }
static const struct topic_build_vec topic_build_vecs[] = {
	{ "2.1-build-gateway-status", RL_TOPIC_GATEWAY_STATUS, IDS, 0, 0,
	  "rehablink/v1/" GW "/status" },
	{ "2.1-build-wearable-status", RL_TOPIC_WEARABLE_STATUS, IDS, 0, 0,
	  "rehablink/v1/" GW "/wearable/" WR "/status" },
	{ "2.1-build-aggregate-minute", RL_TOPIC_AGGREGATE_MINUTE, IDS, 0, 0,
	  "rehablink/v1/" GW "/patient/" PT "/aggregate/minute" },
	{ "2.1-build-aggregate-day", RL_TOPIC_AGGREGATE_DAY, IDS, 0, 0,
	  "rehablink/v1/" GW "/patient/" PT "/aggregate/day" },
	{ "2.1-build-pain", RL_TOPIC_PAIN, IDS, 0, 0,
	  "rehablink/v1/" GW "/patient/" PT "/pain" },
	{ "2.1-build-alert", RL_TOPIC_ALERT, IDS, 0, 0,
	  "rehablink/v1/" GW "/patient/" PT "/alert" },
	{ "2.1-build-fhir-observation", RL_TOPIC_FHIR_OBSERVATION, IDS, 0, 0,
	  "rehablink/v1/" GW "/patient/" PT "/fhir/observation" },
	{ "2.1-build-alert-ack", RL_TOPIC_ALERT_ACK, IDS, 0, 0,
	  "rehablink/v1/" GW "/cmd/alert-ack" },
	{ "2.1-build-config", RL_TOPIC_CONFIG, IDS, 0, 0,
	  "rehablink/v1/" GW "/cmd/config" },
	{ "2.1-build-config-state", RL_TOPIC_CONFIG_STATE, IDS, 0, 0,
	  "rehablink/v1/" GW "/config/state" },
	{ "2.1-build-error", RL_TOPIC_ERROR, IDS, 0, 0,
	  "rehablink/v1/" GW "/cmd/error" },
	{ "2.1-build-id-64-chars", RL_TOPIC_GATEWAY_STATUS, { ID64 }, 0, 0,
	  "rehablink/v1/" ID64 "/status" },
	{ "2.1-build-longest-topic", RL_TOPIC_FHIR_OBSERVATION,
	  { ID64, ID64 }, RL_TOPIC_BUF_SIZE, 0,
	  "rehablink/v1/" ID64 "/patient/" ID64 "/fhir/observation" },
	{ "2.1-build-unused-ids-ignored", RL_TOPIC_GATEWAY_STATUS,
	  { GW, "bad/patient", "bad+alias" }, 0, 0,
	  "rehablink/v1/" GW "/status" },
	{ "2.1-build-gateway-id-65-chars", RL_TOPIC_GATEWAY_STATUS,
	  { ID64 "a" }, 0, -EINVAL },
	{ "2.1-build-gateway-id-plus", RL_TOPIC_GATEWAY_STATUS, { "gw+1" }, 0,
	  -EINVAL },
	{ "2.1-build-gateway-id-hash", RL_TOPIC_GATEWAY_STATUS, { "#" }, 0,
	  -EINVAL },
	{ "2.1-build-gateway-id-slash", RL_TOPIC_GATEWAY_STATUS, { "gw/1" }, 0,
	  -EINVAL },
	{ "2.1-build-gateway-id-empty", RL_TOPIC_GATEWAY_STATUS, { "" }, 0,
	  -EINVAL },
	{ "2.1-build-gateway-id-null", RL_TOPIC_GATEWAY_STATUS, { NULL }, 0,
	  -EINVAL },
	{ "2.1-build-gateway-id-space", RL_TOPIC_GATEWAY_STATUS, { "gw 1" }, 0,
	  -EINVAL },
	{ "2.1-build-gateway-id-dot", RL_TOPIC_GATEWAY_STATUS, { "gw.1" }, 0,
	  -EINVAL },
	{ "2.1-build-gateway-id-non-ascii", RL_TOPIC_GATEWAY_STATUS,
	  { "gw" E1 }, 0, -EINVAL },
	{ "2.1-build-patient-missing", RL_TOPIC_PAIN, { GW, NULL }, 0, -EINVAL },
	{ "2.1-build-patient-wildcard", RL_TOPIC_ALERT, { GW, "+" }, 0, -EINVAL },
	{ "2.1-build-patient-65-chars", RL_TOPIC_AGGREGATE_DAY,
	  { GW, ID64 "b" }, 0, -EINVAL },
	{ "2.1-build-wearable-missing", RL_TOPIC_WEARABLE_STATUS, { GW, PT },
	  0, -EINVAL },
	{ "2.1-build-wearable-hash", RL_TOPIC_WEARABLE_STATUS,
	  { GW, PT, "w#" }, 0, -EINVAL },
	{ "2.1-build-unknown-kind", (enum rl_topic_kind) 99, IDS, 0, -EINVAL },
	{ "2.1-build-buffer-too-small", RL_TOPIC_PAIN, IDS,
	  sizeof("rehablink/v1/" GW "/patient/" PT "/pain") - 1, -ENOBUFS },
	{ "2.1-build-buffer-exact", RL_TOPIC_PAIN, IDS,
	  sizeof("rehablink/v1/" GW "/patient/" PT "/pain"), 0,
	  "rehablink/v1/" GW "/patient/" PT "/pain" },
	{ "2.1-build-buffer-one", RL_TOPIC_PAIN, IDS, 1, -ENOBUFS },
};

static void test_topic_build(void **state)
{
	const struct topic_build_vec *v = *state;
	size_t size = v->size ? v->size : RL_TOPIC_BUF_SIZE;
	char buf[RL_TOPIC_BUF_SIZE + 16];
	ssize_t rc;

	memset(buf, 'X', sizeof(buf));
	rc = rl_topic_build(v->kind, &v->ids, buf, size);
	/* never a byte past size */
	for (size_t i = size; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 'X');
	if (v->rc) {
		assert_int_equal(rc, v->rc);
		return;
	}
	assert_int_equal(rc, strlen(v->want));
	assert_string_equal(buf, v->want);
}

struct topic_parse_vec {
	const char *name;
	const char *topic;
	size_t len;		/* 0: strlen(topic) */
	int rc;
	enum rl_topic_kind kind;
	const char *gw, *pt, *wr;
	const char *reason;	/* expected error reason (substring) */
};

static const struct topic_parse_vec topic_parse_vecs[] = {
	{ "2.1-parse-gateway-status", "rehablink/v1/" GW "/status", 0, 0,
	  RL_TOPIC_GATEWAY_STATUS, GW, "", "" },
	{ "2.1-parse-wearable-status", "rehablink/v1/" GW "/wearable/" WR
	  "/status", 0, 0, RL_TOPIC_WEARABLE_STATUS, GW, "", WR },
	{ "2.1-parse-aggregate-minute", "rehablink/v1/" GW "/patient/" PT
	  "/aggregate/minute", 0, 0, RL_TOPIC_AGGREGATE_MINUTE, GW, PT, "" },
	{ "2.1-parse-aggregate-day", "rehablink/v1/" GW "/patient/" PT
	  "/aggregate/day", 0, 0, RL_TOPIC_AGGREGATE_DAY, GW, PT, "" },
	{ "2.1-parse-pain", "rehablink/v1/" GW "/patient/" PT "/pain", 0, 0,
	  RL_TOPIC_PAIN, GW, PT, "" },
	{ "2.1-parse-alert", "rehablink/v1/" GW "/patient/" PT "/alert", 0, 0,
	  RL_TOPIC_ALERT, GW, PT, "" },
	{ "2.1-parse-fhir-observation", "rehablink/v1/" GW "/patient/" PT
	  "/fhir/observation", 0, 0, RL_TOPIC_FHIR_OBSERVATION, GW, PT, "" },
	{ "2.1-parse-alert-ack", "rehablink/v1/" GW "/cmd/alert-ack", 0, 0,
	  RL_TOPIC_ALERT_ACK, GW, "", "" },
	{ "2.1-parse-config", "rehablink/v1/" GW "/cmd/config", 0, 0,
	  RL_TOPIC_CONFIG, GW, "", "" },
	{ "2.1-parse-config-state", "rehablink/v1/" GW "/config/state", 0, 0,
	  RL_TOPIC_CONFIG_STATE, GW, "", "" },
	{ "2.1-parse-error", "rehablink/v1/" GW "/cmd/error", 0, 0,
	  RL_TOPIC_ERROR, GW, "", "" },
	{ "2.1-parse-longest", "rehablink/v1/" ID64 "/patient/" ID64
	  "/fhir/observation", 0, 0, RL_TOPIC_FHIR_OBSERVATION, ID64, ID64, "" },
	{ "2.1-parse-not-nul-terminated", "rehablink/v1/" GW "/cmd/configXYZ",
	  sizeof("rehablink/v1/" GW "/cmd/config") - 1, 0, RL_TOPIC_CONFIG,
	  GW, "", "" },
	{ "2.1-parse-empty", "", 0, -EINVAL, .reason = "empty" },
	{ "2.1-parse-embedded-nul", "rehablink/v1/gw\0x/status",
	  sizeof("rehablink/v1/gw\0x/status") - 1, -EINVAL,
	  .reason = "NUL" },
	{ "2.1-parse-wildcard-plus", "rehablink/v1/+/status", 0, -EINVAL,
	  .reason = "wildcard" },
	{ "2.1-parse-wildcard-hash", "rehablink/v1/" GW "/#", 0, -EINVAL,
	  .reason = "wildcard" },
	{ "2.1-parse-wildcard-in-id", "rehablink/v1/g+w/status", 0, -EINVAL,
	  .reason = "wildcard" },
	{ "2.1-parse-trailing-slash", "rehablink/v1/" GW "/status/", 0,
	  -EINVAL, .reason = "empty level" },
	{ "2.1-parse-empty-gateway", "rehablink/v1//status", 0, -EINVAL,
	  .reason = "empty level" },
	{ "2.1-parse-leading-slash", "/rehablink/v1/" GW "/status", 0, -EINVAL,
	  .reason = "not a rehablink topic" },
	{ "2.1-parse-other-root", "sys/v1/" GW "/status", 0, -EINVAL,
	  .reason = "not a rehablink topic" },
	{ "2.1-parse-root-only", "rehablink", 0, -EINVAL,
	  .reason = "not a rehablink topic" },
	{ "2.1-parse-no-version", "rehablink/", 0, -EINVAL,
	  .reason = "empty level" },
	{ "2.1-parse-version-2", "rehablink/v2/" GW "/status", 0,
	  -EPROTONOSUPPORT, .reason = "version" },
	{ "2.1-parse-version-10", "rehablink/v10/" GW "/status", 0,
	  -EPROTONOSUPPORT, .reason = "version" },
	{ "2.1-parse-version-bad", "rehablink/vx/" GW "/status", 0, -EINVAL,
	  .reason = "bad version" },
	{ "2.1-parse-version-leading-zero", "rehablink/v01/" GW "/status", 0,
	  -EINVAL, .reason = "bad version" },
	{ "2.1-parse-no-gateway", "rehablink/v1", 0, -EINVAL,
	  .reason = "no gateway" },
	{ "2.1-parse-gateway-only", "rehablink/v1/" GW, 0, -EOPNOTSUPP,
	  .reason = "unknown topic" },
	{ "2.1-parse-gateway-bad-char", "rehablink/v1/gw.1/status", 0, -EINVAL,
	  .reason = "gateway id" },
	{ "2.1-parse-gateway-65-chars", "rehablink/v1/" ID64 "a/status", 0,
	  -EINVAL, .reason = "gateway id" },
	{ "2.1-parse-patient-bad-char", "rehablink/v1/" GW "/patient/p:1/pain",
	  0, -EINVAL, .reason = "patient id" },
	{ "2.1-parse-wearable-bad-char", "rehablink/v1/" GW "/wearable/"
	  "w" E1 "/status", 0, -EINVAL, .reason = "wearable alias" },
	{ "2.1-parse-unknown-kind", "rehablink/v1/" GW "/telemetry", 0,
	  -EOPNOTSUPP, .reason = "unknown topic" },
	{ "2.1-parse-unknown-command", "rehablink/v1/" GW "/cmd/reboot", 0,
	  -EOPNOTSUPP, .reason = "unknown topic" },
	{ "2.1-parse-unknown-patient-kind", "rehablink/v1/" GW "/patient/" PT
	  "/aggregate/hour", 0, -EOPNOTSUPP, .reason = "unknown topic" },
	{ "2.1-parse-patient-no-kind", "rehablink/v1/" GW "/patient/" PT, 0,
	  -EOPNOTSUPP, .reason = "unknown topic" },
	{ "2.1-parse-wearable-extra-level", "rehablink/v1/" GW "/wearable/" WR
	  "/status/x", 0, -EOPNOTSUPP, .reason = "unknown topic" },
	{ "2.1-parse-status-extra-level", "rehablink/v1/" GW "/status/x", 0,
	  -EOPNOTSUPP, .reason = "unknown topic" },
	{ "2.1-parse-many-levels", "rehablink/v1/" GW "/a/b/c/d/e/f/g/h/i", 0,
	  -EOPNOTSUPP, .reason = "unknown topic" },
	{ "2.1-parse-too-long", "rehablink/v1/" ID64 "/patient/" ID64
	  "/fhir/observationX", 0, -EINVAL, .reason = "too long" },
	{ "2.1-parse-case-sensitive", "Rehablink/v1/" GW "/status", 0, -EINVAL,
	  .reason = "not a rehablink topic" },
};

static void test_topic_parse(void **state)
{
	const struct topic_parse_vec *v = *state;
	size_t len = v->len ? v->len : strlen(v->topic);
	struct rl_topic t, before;
	struct rl_topic_err err = { 0 };
	int rc;

	memset(&t, 0x5a, sizeof(t));
	before = t;
	rc = rl_topic_parse(v->topic, len, &t, &err);
	assert_int_equal(rc, v->rc);
	if (rc) {
		/* output untouched, reason given */
		assert_memory_equal(&t, &before, sizeof(t));
		assert_non_null(err.reason);
		if (!strstr(err.reason, v->reason))
			fail_msg("reason '%s', expected '%s'", err.reason,
				 v->reason);
		assert_true(err.offset <= len);
		assert_non_null(rl_topic_strerror(rc));
		return;
	}
	assert_int_equal(t.kind, v->kind);
	assert_string_equal(t.gateway, v->gw);
	assert_string_equal(t.patient, v->pt);
	assert_string_equal(t.wearable, v->wr);
	/* the error struct is optional */
	assert_int_equal(rl_topic_parse(v->topic, len, &t, NULL), 0);
}

/* every kind: build, then parse back to the same kind and ids */
static void test_topic_round_trip(void **state)
{
	const struct rl_topic_ids ids = { ID64, "P-1", "W_2" };

	(void) state;
	for (int k = 0; k < RL_TOPIC_KIND_COUNT; k++) {
		char buf[RL_TOPIC_BUF_SIZE];
		struct rl_topic t;
		ssize_t n = rl_topic_build((enum rl_topic_kind) k, &ids, buf,
					   sizeof(buf));

		assert_true(n > 0);
		assert_int_equal(rl_topic_parse(buf, (size_t) n, &t, NULL), 0);
		assert_int_equal(t.kind, k);
		assert_string_equal(t.gateway, ID64);
		assert_string_equal(t.patient,
				    rl_topic_kind_has_patient(t.kind) ? "P-1" : "");
		assert_string_equal(t.wearable,
				    k == RL_TOPIC_WEARABLE_STATUS ? "W_2" : "");
	}
}

struct filter_vec {
	const char *name;
	bool dashboard;
	const char *gw;
	size_t size;		/* 0: RL_TOPIC_BUF_SIZE */
	int rc;
	const char *want;
};

static const struct filter_vec filter_vecs[] = {
	{ "2.1-filter-gateway-commands", false, GW, 0, 0,
	  "rehablink/v1/" GW "/cmd/+" },
	{ "2.1-filter-dashboard-all", true, NULL, 0, 0, "rehablink/v1/+/#" },
	{ "2.1-filter-dashboard-one-gateway", true, GW, 0, 0,
	  "rehablink/v1/" GW "/#" },
	{ "2.1-filter-commands-null-id", false, NULL, 0, -EINVAL },
	{ "2.1-filter-commands-wildcard-id", false, "+", 0, -EINVAL },
	{ "2.1-filter-dashboard-bad-id", true, "a/b", 0, -EINVAL },
	{ "2.1-filter-buffer-too-small", true, NULL,
	  sizeof("rehablink/v1/+/#") - 1, -ENOBUFS },
	{ "2.1-filter-buffer-exact", true, NULL, sizeof("rehablink/v1/+/#"), 0,
	  "rehablink/v1/+/#" },
};

static void test_filter(void **state)
{
	const struct filter_vec *v = *state;
	size_t size = v->size ? v->size : RL_TOPIC_BUF_SIZE;
	char buf[RL_TOPIC_BUF_SIZE + 8];
	ssize_t rc;

	memset(buf, 'X', sizeof(buf));
	rc = v->dashboard ? rl_topic_filter_dashboard(v->gw, buf, size) :
	     rl_topic_filter_commands(v->gw, buf, size);
	for (size_t i = size; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 'X');
	if (v->rc) {
		assert_int_equal(rc, v->rc);
		return;
	}
	assert_int_equal(rc, strlen(v->want));
	assert_string_equal(buf, v->want);
}

static void test_kind_properties(void **state)
{
	(void) state;
	for (int k = 0; k < RL_TOPIC_KIND_COUNT; k++) {
		enum rl_topic_kind kind = (enum rl_topic_kind) k;

		assert_non_null(rl_topic_kind_name(kind));
		assert_int_equal(rl_topic_kind_qos(kind), 1);
		for (int j = 0; j < k; j++)
			assert_string_not_equal(rl_topic_kind_name(kind),
						rl_topic_kind_name((enum rl_topic_kind) j));
		/* commands are never retained and never expire on our side */
		if (rl_topic_kind_is_command(kind)) {
			assert_false(rl_topic_kind_is_retained(kind));
			assert_int_equal(rl_topic_kind_expiry_s(kind), 0);
		}
		/* retained messages do not expire */
		if (rl_topic_kind_is_retained(kind))
			assert_int_equal(rl_topic_kind_expiry_s(kind), 0);
	}
	assert_true(rl_topic_kind_is_retained(RL_TOPIC_GATEWAY_STATUS));
	assert_true(rl_topic_kind_is_retained(RL_TOPIC_WEARABLE_STATUS));
	assert_true(rl_topic_kind_is_retained(RL_TOPIC_CONFIG_STATE));
	assert_false(rl_topic_kind_is_retained(RL_TOPIC_ALERT));
	assert_true(rl_topic_kind_is_command(RL_TOPIC_ALERT_ACK));
	assert_true(rl_topic_kind_is_command(RL_TOPIC_CONFIG));
	assert_false(rl_topic_kind_is_command(RL_TOPIC_ERROR));
	assert_int_equal(rl_topic_kind_expiry_s(RL_TOPIC_AGGREGATE_MINUTE),
			 7 * 24 * 3600);
	assert_int_equal(rl_topic_kind_expiry_s(RL_TOPIC_AGGREGATE_DAY),
			 7 * 24 * 3600);
	assert_int_equal(rl_topic_kind_expiry_s(RL_TOPIC_PAIN), 0);
	assert_int_equal(rl_topic_kind_expiry_s(RL_TOPIC_ALERT), 0);
	assert_string_equal(rl_topic_kind_name(RL_TOPIC_ALERT_ACK), "alert_ack");
	assert_null(rl_topic_kind_name((enum rl_topic_kind) 42));
	assert_int_equal(rl_topic_kind_qos((enum rl_topic_kind) 42), 0);
	assert_false(rl_topic_kind_is_command((enum rl_topic_kind) -1));
	assert_int_equal(rl_topic_id_validate_n("ab\0cd", 5), -EINVAL);
	assert_int_equal(rl_topic_id_validate_n("ab", 2), 0);
	assert_int_equal(rl_topic_id_validate_n(NULL, 2), -EINVAL);
	assert_int_equal(rl_topic_id_validate(ID64), 0);
	assert_int_equal(rl_topic_id_validate(ID64 "a"), -EINVAL);
	assert_int_equal(rl_topic_build(RL_TOPIC_PAIN, NULL, NULL, 0), -EINVAL);
	{
		const struct rl_topic_ids ids = IDS;

		assert_int_equal(rl_topic_build(RL_TOPIC_PAIN, &ids, NULL, 0),
				 -ENOBUFS);
	}
}

/* ==== 2.2 envelope: times, ids ============================================ */

struct time_fmt_vec {
	const char *name;
	int64_t t_us;
	const char *want;	/* NULL: refused */
};

static const struct time_fmt_vec time_fmt_vecs[] = {
	{ "2.2-time-format-epoch", 0, "1970-01-01T00:00:00.000Z" },
	{ "2.2-time-format-ms-truncated", T0, T0_S },
	{ "2.2-time-format-999ms", 999999, "1970-01-01T00:00:00.999Z" },
	{ "2.2-time-format-leap-day", INT64_C(951782400) * SEC,
	  "2000-02-29T00:00:00.000Z" },
	{ "2.2-time-format-max", RL_TIME_MAX, "9999-12-31T23:59:59.999Z" },
	{ "2.2-time-format-negative", -1, NULL },
	{ "2.2-time-format-beyond-max", RL_TIME_MAX + 1, NULL },
	{ "2.2-time-format-none", RL_TIME_NONE, NULL },
};

static void test_time_format(void **state)
{
	const struct time_fmt_vec *v = *state;
	g_autofree gchar *s = rl_payload_format_time(v->t_us);

	if (!v->want) {
		assert_null(s);
		return;
	}
	assert_non_null(s);
	assert_string_equal(s, v->want);
}

struct time_parse_vec {
	const char *name;
	const char *s;
	bool ok;
	int64_t want;
};

static const struct time_parse_vec time_parse_vecs[] = {
	{ "2.2-time-parse-ms", T0_S, true, T0 - 456 },
	{ "2.2-time-parse-no-fraction", "2024-05-01T08:30:00Z", true,
	  INT64_C(1714552200) * SEC },
	{ "2.2-time-parse-one-digit", "2024-05-01T08:30:00.5Z", true,
	  INT64_C(1714552200) * SEC + 500000 },
	{ "2.2-time-parse-nine-digits", "2024-05-01T08:30:00.123456789Z", true,
	  INT64_C(1714552200) * SEC + 123456 },
	{ "2.2-time-parse-offset-plus", "2024-05-01T10:30:00+02:00", true,
	  INT64_C(1714552200) * SEC },
	{ "2.2-time-parse-offset-minus", "2024-05-01T03:00:00-05:30", true,
	  INT64_C(1714552200) * SEC },
	{ "2.2-time-parse-lowercase", "2024-05-01t08:30:00z", true,
	  INT64_C(1714552200) * SEC },
	{ "2.2-time-parse-leap-day", "2024-02-29T00:00:00Z", true,
	  INT64_C(1709164800) * SEC },
	{ "2.2-time-parse-epoch", "1970-01-01T00:00:00Z", true, 0 },
	{ "2.2-time-parse-max", "9999-12-31T23:59:59.999999Z", true,
	  RL_TIME_MAX },
	{ "2.2-time-parse-ten-digits", "2024-05-01T08:30:00.1234567890Z",
	  false },
	{ "2.2-time-parse-empty-fraction", "2024-05-01T08:30:00.Z", false },
	{ "2.2-time-parse-no-offset", "2024-05-01T08:30:00", false },
	{ "2.2-time-parse-space", "2024-05-01 08:30:00Z", false },
	{ "2.2-time-parse-leap-second", "2016-12-31T23:59:60Z", false },
	{ "2.2-time-parse-feb-29-non-leap", "2023-02-29T00:00:00Z", false },
	{ "2.2-time-parse-feb-30", "2024-02-30T00:00:00Z", false },
	{ "2.2-time-parse-month-13", "2024-13-01T00:00:00Z", false },
	{ "2.2-time-parse-hour-24", "2024-05-01T24:00:00Z", false },
	{ "2.2-time-parse-offset-24", "2024-05-01T08:30:00+24:00", false },
	{ "2.2-time-parse-offset-short", "2024-05-01T08:30:00+02", false },
	{ "2.2-time-parse-before-1970", "1969-12-31T23:59:59Z", false },
	{ "2.2-time-parse-year-0", "0000-01-01T00:00:00Z", false },
	{ "2.2-time-parse-basic-format", "20240501T083000Z", false },
	{ "2.2-time-parse-trailing", "2024-05-01T08:30:00Zx", false },
	{ "2.2-time-parse-date-only", "2024-05-01", false },
	{ "2.2-time-parse-sign-in-year", "+024-05-01T08:30:00Z", false },
	{ "2.2-time-parse-words", "yesterday", false },
	{ "2.2-time-parse-empty", "", false },
};

static void test_time_parse(void **state)
{
	const struct time_parse_vec *v = *state;
	int64_t t = 42;

	assert_int_equal(rl_payload_parse_time(v->s, &t), v->ok);
	if (v->ok)
		assert_int_equal(t, v->want);
	else
		assert_int_equal(t, 42);
}

struct uuid_vec {
	const char *name;
	const char *s;
	int rc;
};

static const struct uuid_vec uuid_vecs[] = {
	{ "2.2-uuid-lower", MSG1, 0 },
	{ "2.2-uuid-upper", "3F1C2A9E-8B7D-4C6E-9F10-2A3B4C5D6E7F", 0 },
	{ "2.2-uuid-nil", "00000000-0000-0000-0000-000000000000", 0 },
	{ "2.2-uuid-no-hyphens", "3f1c2a9e8b7d4c6e9f102a3b4c5d6e7f", -EINVAL },
	{ "2.2-uuid-braces", "{3f1c2a9e-8b7d-4c6e-9f10-2a3b4c5d6e7f}", -EINVAL },
	{ "2.2-uuid-short", "3f1c2a9e-8b7d-4c6e-9f10-2a3b4c5d6e7", -EINVAL },
	{ "2.2-uuid-long", MSG1 "0", -EINVAL },
	{ "2.2-uuid-non-hex", "3f1c2a9e-8b7d-4c6e-9f10-2a3b4c5d6e7g", -EINVAL },
	{ "2.2-uuid-hyphen-moved", "3f1c2a9e8-b7d-4c6e-9f10-2a3b4c5d6e7f",
	  -EINVAL },
	{ "2.2-uuid-empty", "", -EINVAL },
	{ "2.2-uuid-null", NULL, -EINVAL },
};

static void test_uuid(void **state)
{
	const struct uuid_vec *v = *state;

	assert_int_equal(rl_payload_uuid_validate(v->s), v->rc);
}

/* ==== 2.3 - 2.12 builders ================================================= */

struct expect {
	const char *ptr;	/* RFC 6901 pointer */
	const char *json;	/* expected value; NULL: absent */
};

struct build_vec {
	const char *name;
	enum rl_topic_kind kind;
	gchar *(*build)(const void *in, const struct rl_envelope *env,
			GError **error);
	const void *in;
	const struct rl_envelope *env;
	const char *err;	/* expected error path; NULL: success */
	bool emit;		/* an example for the schema test */
	struct expect expect[24];
};

struct will_in {
	const char *version;
	bool clock_synced;
	int wearables;
};

static gchar *b_gateway_status(const void *in, const struct rl_envelope *env,
			       GError **e)
{
	return rl_payload_build_gateway_status(in, env, e);
}

static gchar *b_will(const void *in, const struct rl_envelope *env, GError **e)
{
	const struct will_in *w = in;

	return rl_payload_build_gateway_will(w->version, w->clock_synced,
					     w->wearables, env, e);
}

static gchar *b_wearable_status(const void *in, const struct rl_envelope *env,
				GError **e)
{
	return rl_payload_build_wearable_status(in, env, e);
}

static gchar *b_minute(const void *in, const struct rl_envelope *env,
		       GError **e)
{
	return rl_payload_build_aggregate_minute(in, env, e);
}

static gchar *b_day(const void *in, const struct rl_envelope *env, GError **e)
{
	return rl_payload_build_aggregate_day(in, env, e);
}

static gchar *b_pain(const void *in, const struct rl_envelope *env, GError **e)
{
	return rl_payload_build_pain(in, env, e);
}

static gchar *b_alert(const void *in, const struct rl_envelope *env, GError **e)
{
	return rl_payload_build_alert(in, env, e);
}

static gchar *b_ack(const void *in, const struct rl_envelope *env, GError **e)
{
	(void) env;
	return rl_payload_build_alert_ack(in, e);
}

static gchar *b_config(const void *in, const struct rl_envelope *env,
		       GError **e)
{
	(void) env;
	return rl_payload_build_config(in, e);
}

static gchar *b_config_state(const void *in, const struct rl_envelope *env,
			     GError **e)
{
	return rl_payload_build_config_state(in, env, e);
}

static gchar *b_error(const void *in, const struct rl_envelope *env, GError **e)
{
	return rl_payload_build_error(in, env, e);
}

static gchar *b_fhir(const void *in, const struct rl_envelope *env, GError **e)
{
	return rl_payload_build_fhir_observation(in, env, e);
}

/* -- 2.3 -- */
static const struct rl_gateway_status gs_online = {
	.state = RL_GATEWAY_ONLINE, .version = "0.1.0", .uptime_s = 3600,
	.clock_synced = true, .outbox_depth = 12, .oldest_age_s = 4,
	.wearables = 1,
};
#define GS(...) (&(const struct rl_gateway_status){ .state = RL_GATEWAY_ONLINE, \
	.version = "0.1.0", .uptime_s = 1, .outbox_depth = 0, \
	.oldest_age_s = RL_NONE, .wearables = 1, __VA_ARGS__ })

/* -- 2.4 -- */
#define WS(...) (&(const struct rl_wearable_status){ .alias = WR, \
	.link = RL_LINK_LIVE, .battery_pct = 87, .last_seen_us = T0, \
	.freshness_s = 2, .last_seq = 48213, .storage_pct = 3, __VA_ARGS__ })

/* -- 2.5 -- */
#define AGG_MINUTE .aggregate_id = "pt-0042:m:2024-05-01T08:29Z", \
	.revision = 1, .start_us = MIN0, .end_us = MIN0 + 60 * SEC, \
	.steps = 84, .walking_minutes = 1, .cadence_spm = 96, \
	.posture_s = { .upright = 48, .flexed = 12 }, \
	.flexed_over_30_s = 12, .flexed_over_60_s = 3, .longest_still_s = 20, \
	.records = 7
#define MINUTE(...) (&(const struct rl_aggregate){ AGG_MINUTE, __VA_ARGS__ })
#define AGG_DAY .aggregate_id = "pt-0042:d:2024-05-01", .revision = 1, \
	.start_us = DAY0, .end_us = DAY1, .steps = 3120, \
	.walking_minutes = 41, .cadence_spm = 88, \
	.posture_s = { .upright = 14400, .flexed = 5400, .reclined = 21600, \
		       .lying = 36000, .unknown = 9000 }, \
	.flexed_over_30_s = 5400, .flexed_over_60_s = 900, \
	.longest_still_s = 6300, .records = 2016
#define DAY(...) (&(const struct rl_aggregate_day){ .agg = { AGG_DAY }, \
	.post_op_day = 6, .local_date = "2024-05-01", .utc_offset_min = 120, \
	__VA_ARGS__ })

/* -- 2.6 -- */
#define PAIN(...) (&(const struct rl_pain){ .wearable = WR, .seq = 48213, \
	.score = 3, __VA_ARGS__ })

/* -- 2.7 -- */
static const struct rl_alert_trigger trig_severe[] = {
	{ "score", 8 }, { "threshold", 7 },
};
static const struct rl_alert_trigger trig_rise[] = {
	{ "median_24h", 4.5 }, { "rise", 3 }, { "score", 7.25 },
};
static const struct rl_alert_trigger trig_nan[] = { { "score", NAN } };
static const struct rl_alert_trigger trig_dup[] = {
	{ "score", 1 }, { "score", 2 },
};
static const struct rl_alert_trigger trig_upper[] = { { "Score", 1 } };
static const struct rl_alert_trigger trig_huge[] = { { "score", 1e16 } };
static const struct rl_pain_point pain3[] = {
	{ T0 - 7 * 3600 * SEC, 4 }, { T0 - 3 * 3600 * SEC, 6 }, { T0, 8 },
};
static const struct rl_pain_point pain_bad[] = {
	{ T0 - 3600 * SEC, 4 }, { T0, 11 },
};
static const struct rl_alert_ack_info ack_info = {
	.by = "clin-17", .at_us = T0 + 15 * 60 * SEC,
	.note = "Called the patient; posture advice, review tomorrow.",
};
#define CONTEXT .context = { .pain_24h = pain3, .n_pain_24h = 3, \
	.flexed_s_2h = 2400, .steps_today = 1240, .steps_yesterday = 2980, \
	.battery_pct = 87, .data_age_s = 4 }
#define ALERT(...) (&(const struct rl_alert){ .alert_id = "al-7f3a-000123", \
	.notification = 1, .rule = "pain.severe", .tier = RL_ALERT_URGENT, \
	.state = RL_ALERT_OPEN, .raised_at_us = T0, .trigger = trig_severe, \
	.n_trigger = 2, CONTEXT, __VA_ARGS__ })

/* -- 2.8 / 2.9 builders (clinic side) -- */
#define ACK(...) (&(const struct rl_alert_ack){ .msg_id = MSG2, \
	.event_time_us = T0 + 16 * 60 * SEC, .gateway_id = GW, \
	.alert_id = "al-7f3a-000123", .by = "clin-17", \
	.at_us = T0 + 15 * 60 * SEC, .action = RL_ACK_ACKNOWLEDGE, __VA_ARGS__ })
static struct rl_config_entry settings5[] = {
	{ "rules.severe_pain_score", { RL_CONFIG_INT, { .i = 7 } } },
	{ "rules.renotify_min", { RL_CONFIG_INT, { .i = 15 } } },
	{ "fhir.enabled", { RL_CONFIG_BOOL, { .b = true } } },
	{ "rules.rise_factor", { RL_CONFIG_DOUBLE, { .d = 1.5 } } },
	{ "site.label", { RL_CONFIG_STRING, { .s = "ward-3" } } },
};
static struct rl_config_entry settings_bad_key[] = {
	{ "Rules.X", { RL_CONFIG_INT, { .i = 7 } } },
};
static struct rl_config_entry settings_dup[] = {
	{ "a", { RL_CONFIG_INT, { .i = 1 } } },
	{ "a", { RL_CONFIG_INT, { .i = 2 } } },
};
static struct rl_config_entry settings_long[] = {
	{ "a", { RL_CONFIG_STRING, { .s = S280 } } },
};
static struct rl_config_entry settings_limits[] = {
	{ "a", { RL_CONFIG_DOUBLE, { .d = 1e-4 } } },
	{ "b", { RL_CONFIG_DOUBLE, { .d = 1e15 } } },
	{ "c", { RL_CONFIG_DOUBLE, { .d = -1e15 } } },
	{ "d", { RL_CONFIG_DOUBLE, { .d = 0 } } },
	{ "e", { RL_CONFIG_INT, { .i = INT64_MIN } } },
};
static struct rl_config_entry settings_1e22[] = {
	{ "a", { RL_CONFIG_DOUBLE, { .d = 1e22 } } },
};
static struct rl_config_entry settings_tiny[] = {
	{ "a", { RL_CONFIG_DOUBLE, { .d = 1e-5 } } },
};
static struct rl_config_entry settings_inf[] = {
	{ "a", { RL_CONFIG_DOUBLE, { .d = INFINITY } } },
};
#define CONFIG(...) (&(const struct rl_config_msg){ .msg_id = MSG3, \
	.event_time_us = T0, .gateway_id = GW, .entries = settings5, \
	.n_entries = 5, __VA_ARGS__ })

/* -- 2.10 -- */
static const struct rl_config_rejection rejected2[] = {
	{ "rules.bogus", "unknown setting" },
	{ "rules.severe_pain_score", "7.5 is not an integer in 1..10" },
};
static const struct rl_config_rejection rejected_bad_key[] = {
	{ "rules/x", "unknown setting" },
};
static const struct rl_config_rejection rejected_empty_reason[] = {
	{ "rules.x", "" },
};
#define CS(...) (&(const struct rl_config_state){ .config_msg_id = MSG3, \
	.settings = settings5, .n_settings = 5, .rejected = rejected2, \
	.n_rejected = 2, __VA_ARGS__ })

/* -- 2.11 -- */
#define ERR(...) (&(const struct rl_error_report){ .has_topic_kind = true, \
	.topic_kind = RL_TOPIC_ALERT_ACK, .rejected_msg_id = MSG2, \
	.code = RL_PAYLOAD_ERROR_BAD_VALUE, \
	.detail = "$.at: not an RFC 3339 time", __VA_ARGS__ })

/* -- 2.12 -- */
#define FHIR_PAIN(...) (&(const struct rl_fhir_observation){ \
	.kind = RL_FHIR_PAIN, .source_id = WR ":48213", .effective_us = T0, \
	.value = 8, __VA_ARGS__ })
#define FHIR_STEPS(...) (&(const struct rl_fhir_observation){ \
	.kind = RL_FHIR_DAILY_STEPS, .source_id = "pt-0042:d:2024-05-01", \
	.effective_us = DAY0, \
	.effective_end_us = DAY1, .value = 3120, __VA_ARGS__ })

static const struct rl_envelope ENV_BAD_MSGID = {
	.msg_id = "1234", .event_time_us = T0, .received_at_us = T0,
	.gateway_id = GW, .patient_id = PT,
};
static const struct rl_envelope ENV_BAD_TIME = {
	.msg_id = MSG1, .event_time_us = -1, .received_at_us = T0,
	.gateway_id = GW, .patient_id = PT,
};
static const struct rl_envelope ENV_BAD_RECEIVED = {
	.msg_id = MSG1, .event_time_us = T0, .received_at_us = RL_TIME_MAX + 1,
	.gateway_id = GW, .patient_id = PT,
};
static const struct rl_envelope ENV_BAD_TQ = {
	.msg_id = MSG1, .event_time_us = T0, .received_at_us = T0,
	.time_quality = (enum rl_time_quality) 4, .gateway_id = GW,
	.patient_id = PT,
};
static const struct rl_envelope ENV_BAD_GW = {
	.msg_id = MSG1, .event_time_us = T0, .received_at_us = T0,
	.gateway_id = "gw/1", .patient_id = PT,
};
static const struct rl_envelope ENV_BAD_PATIENT = {
	.msg_id = MSG1, .event_time_us = T0, .received_at_us = T0,
	.gateway_id = GW, .patient_id = "Jane Doe",
};

static const struct build_vec build_vecs[] = {
	/* 2.2 envelope, through the pain and gateway status builders */
	{ "2.2-envelope-fields", RL_TOPIC_PAIN, b_pain, PAIN(), &ENV, .expect = {
		{ "/schema", "\"rehablink/pain/1\"" },
		{ "/msg_id", "\"" MSG1 "\"" },
		{ "/event_time", "\"" T0_S "\"" },
		{ "/time_quality", "\"synced\"" },
		{ "/received_at", "\"2024-05-01T08:30:00.373Z\"" },
		{ "/gateway_id", "\"" GW "\"" },
		{ "/patient_id", "\"" PT "\"" } } },
	{ "2.2-envelope-estimated-time", RL_TOPIC_PAIN, b_pain, PAIN(),
	  &ENV_EST, .emit = true, .expect = {
		{ "/time_quality", "\"estimated\"" },
		{ "/event_time", "\"2024-05-01T08:28:30.123Z\"" } } },
	{ "2.2-envelope-no-patient-for-gateway-kinds", RL_TOPIC_GATEWAY_STATUS,
	  b_gateway_status, &gs_online, &ENV, .expect = {
		{ "/patient_id", NULL } } },
	{ "2.2-envelope-missing", RL_TOPIC_PAIN, b_pain, PAIN(), NULL,
	  "$: no envelope" },
	{ "2.2-envelope-bad-msg-id", RL_TOPIC_PAIN, b_pain, PAIN(),
	  &ENV_BAD_MSGID, "$.msg_id" },
	{ "2.2-envelope-bad-event-time", RL_TOPIC_PAIN, b_pain, PAIN(),
	  &ENV_BAD_TIME, "$.event_time" },
	{ "2.2-envelope-bad-received-at", RL_TOPIC_PAIN, b_pain, PAIN(),
	  &ENV_BAD_RECEIVED, "$.received_at" },
	{ "2.2-envelope-bad-time-quality", RL_TOPIC_PAIN, b_pain, PAIN(),
	  &ENV_BAD_TQ, "$.time_quality" },
	{ "2.2-envelope-bad-gateway-id", RL_TOPIC_GATEWAY_STATUS,
	  b_gateway_status, &gs_online, &ENV_BAD_GW, "$.gateway_id" },
	{ "2.2-envelope-patient-name-refused", RL_TOPIC_PAIN, b_pain, PAIN(),
	  &ENV_BAD_PATIENT, "$.patient_id" },
	{ "2.2-envelope-patient-missing", RL_TOPIC_PAIN, b_pain, PAIN(),
	  &ENV_GW, "$.patient_id" },

	/* 2.3 */
	{ "2.3-gateway-status-online", RL_TOPIC_GATEWAY_STATUS,
	  b_gateway_status, &gs_online, &ENV_GW, .emit = true, .expect = {
		{ "/state", "\"online\"" }, { "/version", "\"0.1.0\"" },
		{ "/uptime_s", "3600" }, { "/clock_synced", "true" },
		{ "/outbox_depth", "12" }, { "/oldest_age_s", "4" },
		{ "/wearables", "1" }, { "/patient_id", NULL } } },
	{ "2.3-gateway-status-empty-outbox", RL_TOPIC_GATEWAY_STATUS,
	  b_gateway_status, GS(.clock_synced = false), &ENV_GW, .emit = true,
	  .expect = { { "/oldest_age_s", "null" }, { "/outbox_depth", "0" },
		      { "/clock_synced", "false" } } },
	{ "2.3-gateway-will", RL_TOPIC_GATEWAY_STATUS, b_will,
	  &(const struct will_in){ "0.1.0", true, 1 }, &ENV_GW, .emit = true,
	  .expect = { { "/state", "\"offline\"" }, { "/uptime_s", "null" },
		      { "/outbox_depth", "null" }, { "/oldest_age_s", "null" },
		      { "/wearables", "1" } } },
	{ "2.3-gateway-status-offline-clean", RL_TOPIC_GATEWAY_STATUS,
	  b_gateway_status, GS(.state = RL_GATEWAY_OFFLINE), &ENV_GW,
	  .expect = { { "/state", "\"offline\"" }, { "/uptime_s", "1" } } },
	{ "2.3-gateway-status-bad-version", RL_TOPIC_GATEWAY_STATUS,
	  b_gateway_status, GS(.version = "0.1 beta"), &ENV_GW, "$.version" },
	{ "2.3-gateway-status-no-version", RL_TOPIC_GATEWAY_STATUS,
	  b_gateway_status, GS(.version = NULL), &ENV_GW, "$.version" },
	{ "2.3-gateway-status-negative-uptime", RL_TOPIC_GATEWAY_STATUS,
	  b_gateway_status, GS(.uptime_s = -5), &ENV_GW, "$.uptime_s" },
	{ "2.3-gateway-status-negative-wearables", RL_TOPIC_GATEWAY_STATUS,
	  b_gateway_status, GS(.wearables = -1), &ENV_GW, "$.wearables" },
	{ "2.3-gateway-status-bad-state", RL_TOPIC_GATEWAY_STATUS,
	  b_gateway_status, GS(.state = (enum rl_gateway_state) 7), &ENV_GW,
	  "$.state" },
	{ "2.3-gateway-status-null", RL_TOPIC_GATEWAY_STATUS, b_gateway_status,
	  NULL, &ENV_GW, "$: no gateway status" },

	/* 2.4 */
	{ "2.4-wearable-status-live", RL_TOPIC_WEARABLE_STATUS,
	  b_wearable_status, WS(), &ENV, .emit = true, .expect = {
		{ "/wearable", "\"" WR "\"" }, { "/link", "\"live\"" },
		{ "/battery_pct", "87" }, { "/last_seen", "\"" T0_S "\"" },
		{ "/freshness_s", "2" }, { "/last_seq", "48213" },
		{ "/storage_pct", "3" }, { "/patient_id", "\"" PT "\"" } } },
	{ "2.4-wearable-status-needs-repair-nulls", RL_TOPIC_WEARABLE_STATUS,
	  b_wearable_status, WS(.link = RL_LINK_NEEDS_REPAIR,
				.battery_pct = RL_NONE,
				.last_seen_us = RL_TIME_NONE,
				.freshness_s = RL_NONE, .last_seq = RL_NONE,
				.storage_pct = RL_NONE),
	  &ENV_GW, .emit = true, .expect = {
		{ "/link", "\"needs-repair\"" }, { "/battery_pct", "null" },
		{ "/last_seen", "null" }, { "/freshness_s", "null" },
		{ "/last_seq", "null" }, { "/storage_pct", "null" },
		{ "/patient_id", "null" } } },
	{ "2.4-wearable-status-disconnected", RL_TOPIC_WEARABLE_STATUS,
	  b_wearable_status, WS(.link = RL_LINK_DISCONNECTED,
				.freshness_s = 86400, .last_seq = 4294967295),
	  &ENV, .emit = true, .expect = {
		{ "/link", "\"disconnected\"" },
		{ "/last_seq", "4294967295" } } },
	{ "2.4-wearable-status-syncing", RL_TOPIC_WEARABLE_STATUS,
	  b_wearable_status, WS(.link = RL_LINK_SYNCING), &ENV, .expect = {
		{ "/link", "\"syncing\"" } } },
	{ "2.4-wearable-status-connected", RL_TOPIC_WEARABLE_STATUS,
	  b_wearable_status, WS(.link = RL_LINK_CONNECTED), &ENV, .expect = {
		{ "/link", "\"connected\"" } } },
	{ "2.4-wearable-status-battery-101", RL_TOPIC_WEARABLE_STATUS,
	  b_wearable_status, WS(.battery_pct = 101), &ENV, "$.battery_pct" },
	{ "2.4-wearable-status-seq-33-bits", RL_TOPIC_WEARABLE_STATUS,
	  b_wearable_status, WS(.last_seq = INT64_C(4294967296)), &ENV,
	  "$.last_seq" },
	{ "2.4-wearable-status-bad-alias", RL_TOPIC_WEARABLE_STATUS,
	  b_wearable_status, WS(.alias = "belt/1"), &ENV, "$.wearable" },
	{ "2.4-wearable-status-bad-link", RL_TOPIC_WEARABLE_STATUS,
	  b_wearable_status, WS(.link = (enum rl_link_state) 9), &ENV,
	  "$.link" },
	{ "2.4-wearable-status-bad-last-seen", RL_TOPIC_WEARABLE_STATUS,
	  b_wearable_status, WS(.last_seen_us = -5), &ENV, "$.last_seen" },
	{ "2.4-wearable-status-storage-200", RL_TOPIC_WEARABLE_STATUS,
	  b_wearable_status, WS(.storage_pct = 200), &ENV, "$.storage_pct" },
	{ "2.4-wearable-status-bad-patient", RL_TOPIC_WEARABLE_STATUS,
	  b_wearable_status, WS(), &ENV_BAD_PATIENT, "$.patient_id" },

	/* 2.5 */
	{ "2.5-aggregate-minute-walking", RL_TOPIC_AGGREGATE_MINUTE, b_minute,
	  MINUTE(), &ENV, .emit = true, .expect = {
		{ "/schema", "\"rehablink/aggregate_minute/1\"" },
		{ "/aggregate_id", "\"pt-0042:m:2024-05-01T08:29Z\"" },
		{ "/revision", "1" },
		{ "/start", "\"2024-05-01T08:29:00.000Z\"" },
		{ "/end", "\"2024-05-01T08:30:00.000Z\"" },
		{ "/steps", "84" }, { "/walking_minutes", "1" },
		{ "/cadence_spm", "96" },
		{ "/posture_s", "{\"upright\":48,\"flexed\":12,\"reclined\":0,"
				"\"lying\":0,\"unknown\":0}" },
		{ "/flexed_over_30_s", "12" }, { "/flexed_over_60_s", "3" },
		{ "/longest_still_s", "20" }, { "/records", "7" } } },
	{ "2.5-aggregate-minute-revision-still", RL_TOPIC_AGGREGATE_MINUTE,
	  b_minute, MINUTE(.revision = 2, .steps = 0, .walking_minutes = 0,
			   .cadence_spm = RL_NONE,
			   .posture_s = { .lying = 60 }, .flexed_over_30_s = 0,
			   .flexed_over_60_s = 0, .longest_still_s = 60),
	  &ENV, .emit = true, .expect = {
		{ "/revision", "2" }, { "/cadence_spm", "null" },
		{ "/posture_s/lying", "60" } } },
	{ "2.5-aggregate-minute-empty-window", RL_TOPIC_AGGREGATE_MINUTE,
	  b_minute, MINUTE(.end_us = MIN0), &ENV, "$.end" },
	{ "2.5-aggregate-minute-61-s", RL_TOPIC_AGGREGATE_MINUTE, b_minute,
	  MINUTE(.end_us = MIN0 + 61 * SEC), &ENV, "$.end" },
	{ "2.5-aggregate-minute-fractional-window", RL_TOPIC_AGGREGATE_MINUTE,
	  b_minute, MINUTE(.end_us = MIN0 + 30 * SEC + 1), &ENV, "$.end" },
	{ "2.5-aggregate-minute-301-steps", RL_TOPIC_AGGREGATE_MINUTE,
	  b_minute, MINUTE(.steps = 301), &ENV, "$.steps" },
	{ "2.5-aggregate-minute-flexed-60-over-30", RL_TOPIC_AGGREGATE_MINUTE,
	  b_minute, MINUTE(.flexed_over_60_s = 13), &ENV, "$.flexed_over_60_s" },
	{ "2.5-aggregate-minute-revision-0", RL_TOPIC_AGGREGATE_MINUTE,
	  b_minute, MINUTE(.revision = 0), &ENV, "$.revision" },
	{ "2.5-aggregate-minute-lying-61", RL_TOPIC_AGGREGATE_MINUTE, b_minute,
	  MINUTE(.posture_s = { .lying = 61 }), &ENV, "$.posture_s.lying" },
	{ "2.5-aggregate-minute-cadence-301", RL_TOPIC_AGGREGATE_MINUTE,
	  b_minute, MINUTE(.cadence_spm = 301), &ENV, "$.cadence_spm" },
	{ "2.5-aggregate-minute-bad-id", RL_TOPIC_AGGREGATE_MINUTE, b_minute,
	  MINUTE(.aggregate_id = "a b"), &ENV, "$.aggregate_id" },
	{ "2.5-aggregate-minute-negative-start", RL_TOPIC_AGGREGATE_MINUTE,
	  b_minute, MINUTE(.start_us = -60 * SEC, .end_us = 0), &ENV,
	  "$.start" },
	{ "2.5-aggregate-minute-null", RL_TOPIC_AGGREGATE_MINUTE, b_minute,
	  NULL, &ENV, "$: no aggregate" },
	{ "2.5-aggregate-day", RL_TOPIC_AGGREGATE_DAY, b_day, DAY(), &ENV,
	  .emit = true, .expect = {
		{ "/schema", "\"rehablink/aggregate_day/1\"" },
		{ "/start", "\"2024-04-30T22:00:00.000Z\"" },
		{ "/end", "\"2024-05-01T22:00:00.000Z\"" },
		{ "/steps", "3120" }, { "/walking_minutes", "41" },
		{ "/posture_s/reclined", "21600" },
		{ "/post_op_day", "6" }, { "/local_date", "\"2024-05-01\"" },
		{ "/utc_offset", "\"+02:00\"" } } },
	{ "2.5-aggregate-day-negative-offset", RL_TOPIC_AGGREGATE_DAY, b_day,
	  DAY(.post_op_day = RL_NONE, .utc_offset_min = -330), &ENV,
	  .emit = true, .expect = {
		{ "/post_op_day", "null" }, { "/utc_offset", "\"-05:30\"" } } },
	{ "2.5-aggregate-day-dst-25-h", RL_TOPIC_AGGREGATE_DAY, b_day,
	  DAY(.agg = { AGG_DAY, .end_us = DAY1 + 3600 * SEC }), &ENV,
	  .expect = { { "/end", "\"2024-05-01T23:00:00.000Z\"" } } },
	{ "2.5-aggregate-day-27-h", RL_TOPIC_AGGREGATE_DAY, b_day,
	  DAY(.agg = { AGG_DAY, .end_us = DAY1 + 3 * 3600 * SEC }), &ENV,
	  "$.end" },
	{ "2.5-aggregate-day-feb-30", RL_TOPIC_AGGREGATE_DAY, b_day,
	  DAY(.local_date = "2024-02-30"), &ENV, "$.local_date" },
	{ "2.5-aggregate-day-short-date", RL_TOPIC_AGGREGATE_DAY, b_day,
	  DAY(.local_date = "2024-5-1"), &ENV, "$.local_date" },
	{ "2.5-aggregate-day-offset-15-h", RL_TOPIC_AGGREGATE_DAY, b_day,
	  DAY(.utc_offset_min = 900), &ENV, "$.utc_offset" },
	{ "2.5-aggregate-day-post-op-minus-2", RL_TOPIC_AGGREGATE_DAY, b_day,
	  DAY(.post_op_day = -2), &ENV, "$.post_op_day" },
	{ "2.5-aggregate-day-null", RL_TOPIC_AGGREGATE_DAY, b_day, NULL, &ENV,
	  "$: no day aggregate" },

	/* 2.6 */
	{ "2.6-pain-red-flag", RL_TOPIC_PAIN, b_pain,
	  PAIN(.score = 8, .flags = RL_PAIN_CHEST_PAIN | RL_PAIN_BREATHLESSNESS |
	       RL_PAIN_MEDICATION_TAKEN), &ENV, .emit = true, .expect = {
		{ "/wearable", "\"" WR "\"" }, { "/seq", "48213" },
		{ "/score", "8" },
		{ "/flags", "[\"breathlessness\",\"chest_pain\","
			    "\"medication_taken\"]" },
		{ "/red_flag", "true" } } },
	{ "2.6-pain-no-flags", RL_TOPIC_PAIN, b_pain, PAIN(), &ENV,
	  .emit = true, .expect = {
		{ "/score", "3" }, { "/flags", "[]" },
		{ "/red_flag", "false" } } },
	{ "2.6-pain-all-flags", RL_TOPIC_PAIN, b_pain,
	  PAIN(.score = 10, .flags = RL_PAIN_FLAGS_KNOWN, .seq = 4294967295u),
	  &ENV, .emit = true, .expect = {
		{ "/flags", "[\"breathlessness\",\"chest_pain\","
			    "\"calf_pain_swelling\",\"fever\",\"bleeding\","
			    "\"medication_taken\",\"one_sided\"]" },
		{ "/seq", "4294967295" } } },
	{ "2.6-pain-not-red-flag", RL_TOPIC_PAIN, b_pain,
	  PAIN(.score = 0, .flags = RL_PAIN_ONE_SIDED | RL_PAIN_MEDICATION_TAKEN),
	  &ENV, .expect = {
		{ "/flags", "[\"medication_taken\",\"one_sided\"]" },
		{ "/red_flag", "false" } } },
	{ "2.6-pain-each-red-flag", RL_TOPIC_PAIN, b_pain,
	  PAIN(.flags = RL_PAIN_BLEEDING), &ENV, .expect = {
		{ "/red_flag", "true" } } },
	{ "2.6-pain-score-11", RL_TOPIC_PAIN, b_pain, PAIN(.score = 11), &ENV,
	  "$.score: 11 out of range 0..10" },
	{ "2.6-pain-score-negative", RL_TOPIC_PAIN, b_pain, PAIN(.score = -1),
	  &ENV, "$.score" },
	{ "2.6-pain-unknown-flag", RL_TOPIC_PAIN, b_pain, PAIN(.flags = 0x80),
	  &ENV, "$.flags" },
	{ "2.6-pain-bad-wearable", RL_TOPIC_PAIN, b_pain,
	  PAIN(.wearable = ""), &ENV, "$.wearable" },
	{ "2.6-pain-null", RL_TOPIC_PAIN, b_pain, NULL, &ENV, "$: no pain" },

	/* 2.7 */
	{ "2.7-alert-open-urgent", RL_TOPIC_ALERT, b_alert, ALERT(), &ENV,
	  .emit = true, .expect = {
		{ "/alert_id", "\"al-7f3a-000123\"" },
		{ "/notification", "1" }, { "/rule", "\"pain.severe\"" },
		{ "/tier", "\"urgent\"" }, { "/state", "\"open\"" },
		{ "/raised_at", "\"" T0_S "\"" },
		{ "/trigger", "{\"score\":8,\"threshold\":7}" },
		{ "/context/pain_24h/0/time", "\"2024-05-01T01:30:00.123Z\"" },
		{ "/context/pain_24h/2/score", "8" },
		{ "/context/flexed_s_2h", "2400" },
		{ "/context/steps_today", "1240" },
		{ "/context/steps_yesterday", "2980" },
		{ "/context/battery_pct", "87" },
		{ "/context/data_age_s", "4" },
		{ "/ack", "null" } } },
	{ "2.7-alert-acknowledged", RL_TOPIC_ALERT, b_alert,
	  ALERT(.notification = 3, .state = RL_ALERT_ACKNOWLEDGED,
		.ack = &ack_info), &ENV, .emit = true, .expect = {
		{ "/notification", "3" }, { "/state", "\"acknowledged\"" },
		{ "/ack/by", "\"clin-17\"" },
		{ "/ack/at", "\"2024-05-01T08:45:00.123Z\"" },
		{ "/ack/note", "\"Called the patient; posture advice, review "
			       "tomorrow.\"" } } },
	{ "2.7-alert-resolved-fractional-trigger", RL_TOPIC_ALERT, b_alert,
	  ALERT(.notification = 2, .rule = "pain.rise_over_median",
		.tier = RL_ALERT_ROUTINE, .state = RL_ALERT_RESOLVED,
		.trigger = trig_rise, .n_trigger = 3), &ENV, .emit = true,
	  .expect = {
		{ "/state", "\"resolved\"" }, { "/tier", "\"routine\"" },
		{ "/trigger/median_24h", "4.5" }, { "/trigger/rise", "3" },
		{ "/trigger/score", "7.25" }, { "/ack", "null" } } },
	{ "2.7-alert-emergency-no-context", RL_TOPIC_ALERT, b_alert,
	  ALERT(.rule = "pain.red_flag", .tier = RL_ALERT_EMERGENCY,
		.context = { .flexed_s_2h = RL_NONE, .steps_today = RL_NONE,
			     .steps_yesterday = RL_NONE, .battery_pct = RL_NONE,
			     .data_age_s = RL_NONE }),
	  &ENV, .emit = true, .expect = {
		{ "/tier", "\"emergency\"" },
		{ "/context", "{\"pain_24h\":[],\"flexed_s_2h\":null,"
			      "\"steps_today\":null,\"steps_yesterday\":null,"
			      "\"battery_pct\":null,\"data_age_s\":null}" } } },
	{ "2.7-alert-informational-resolved-with-ack", RL_TOPIC_ALERT, b_alert,
	  ALERT(.tier = RL_ALERT_INFORMATIONAL, .state = RL_ALERT_RESOLVED,
		.ack = &(const struct rl_alert_ack_info){ "clin-2", T0, NULL }),
	  &ENV, .emit = true, .expect = {
		{ "/tier", "\"informational\"" }, { "/ack/note", "null" } } },
	{ "2.7-alert-open-with-ack", RL_TOPIC_ALERT, b_alert,
	  ALERT(.ack = &ack_info), &ENV, "$.ack: must be null" },
	{ "2.7-alert-acknowledged-without-ack", RL_TOPIC_ALERT, b_alert,
	  ALERT(.state = RL_ALERT_ACKNOWLEDGED), &ENV, "$.ack: required" },
	{ "2.7-alert-nan-trigger", RL_TOPIC_ALERT, b_alert,
	  ALERT(.trigger = trig_nan, .n_trigger = 1), &ENV,
	  "$.trigger.score: not finite" },
	{ "2.7-alert-trigger-1e16", RL_TOPIC_ALERT, b_alert,
	  ALERT(.trigger = trig_huge, .n_trigger = 1), &ENV,
	  "$.trigger.score" },
	{ "2.7-alert-no-trigger", RL_TOPIC_ALERT, b_alert,
	  ALERT(.n_trigger = 0), &ENV, "$.trigger" },
	{ "2.7-alert-17-triggers", RL_TOPIC_ALERT, b_alert,
	  ALERT(.n_trigger = 17), &ENV, "$.trigger" },
	{ "2.7-alert-duplicate-trigger", RL_TOPIC_ALERT, b_alert,
	  ALERT(.trigger = trig_dup, .n_trigger = 2), &ENV,
	  "$.trigger.score: given twice" },
	{ "2.7-alert-trigger-name-upper", RL_TOPIC_ALERT, b_alert,
	  ALERT(.trigger = trig_upper, .n_trigger = 1), &ENV, "$.trigger[0]" },
	{ "2.7-alert-bad-rule", RL_TOPIC_ALERT, b_alert,
	  ALERT(.rule = "Pain Severe"), &ENV, "$.rule" },
	{ "2.7-alert-bad-tier", RL_TOPIC_ALERT, b_alert,
	  ALERT(.tier = (enum rl_alert_tier) 9), &ENV, "$.tier" },
	{ "2.7-alert-bad-state", RL_TOPIC_ALERT, b_alert,
	  ALERT(.state = (enum rl_alert_state) 9), &ENV, "$.state" },
	{ "2.7-alert-notification-0", RL_TOPIC_ALERT, b_alert,
	  ALERT(.notification = 0), &ENV, "$.notification" },
	{ "2.7-alert-bad-alert-id", RL_TOPIC_ALERT, b_alert,
	  ALERT(.alert_id = "al/1"), &ENV, "$.alert_id" },
	{ "2.7-alert-pain-point-score-11", RL_TOPIC_ALERT, b_alert,
	  ALERT(.context = { .pain_24h = pain_bad, .n_pain_24h = 2,
			     .flexed_s_2h = RL_NONE, .steps_today = RL_NONE,
			     .steps_yesterday = RL_NONE, .battery_pct = RL_NONE,
			     .data_age_s = RL_NONE }),
	  &ENV, "$.context.pain_24h[1].score" },
	{ "2.7-alert-flexed-over-2h", RL_TOPIC_ALERT, b_alert,
	  ALERT(.context = { .flexed_s_2h = 7201, .steps_today = RL_NONE,
			     .steps_yesterday = RL_NONE, .battery_pct = RL_NONE,
			     .data_age_s = RL_NONE }),
	  &ENV, "$.context.flexed_s_2h" },
	{ "2.7-alert-note-281", RL_TOPIC_ALERT, b_alert,
	  ALERT(.state = RL_ALERT_ACKNOWLEDGED,
		.ack = &(const struct rl_alert_ack_info){ "c", T0, S280 "x" }),
	  &ENV, "$.ack.note" },
	{ "2.7-alert-note-280-multibyte", RL_TOPIC_ALERT, b_alert,
	  ALERT(.state = RL_ALERT_ACKNOWLEDGED,
		.ack = &(const struct rl_alert_ack_info){ "c", T0, E280 }),
	  &ENV, .expect = { { "/ack/note", "\"" E280 "\"" } } },
	{ "2.7-alert-ack-bad-by", RL_TOPIC_ALERT, b_alert,
	  ALERT(.state = RL_ALERT_ACKNOWLEDGED,
		.ack = &(const struct rl_alert_ack_info){ "Dr Who", T0, NULL }),
	  &ENV, "$.ack.by" },
	{ "2.7-alert-null", RL_TOPIC_ALERT, b_alert, NULL, &ENV, "$: no alert" },

	/* 2.8 builder (clinic side; the parser is tested below) */
	{ "2.8-alert-ack-build-acknowledge", RL_TOPIC_ALERT_ACK, b_ack,
	  ACK(.note = "Called the patient."), NULL, .emit = true, .expect = {
		{ "/schema", "\"rehablink/alert_ack/1\"" },
		{ "/msg_id", "\"" MSG2 "\"" },
		{ "/event_time", "\"2024-05-01T08:46:00.123Z\"" },
		{ "/gateway_id", "\"" GW "\"" },
		{ "/alert_id", "\"al-7f3a-000123\"" },
		{ "/by", "\"clin-17\"" },
		{ "/at", "\"2024-05-01T08:45:00.123Z\"" },
		{ "/note", "\"Called the patient.\"" },
		{ "/action", "\"acknowledge\"" },
		{ "/time_quality", NULL }, { "/received_at", NULL } } },
	{ "2.8-alert-ack-build-resolve", RL_TOPIC_ALERT_ACK, b_ack,
	  ACK(.action = RL_ACK_RESOLVE), NULL, .emit = true, .expect = {
		{ "/action", "\"resolve\"" }, { "/note", NULL } } },
	{ "2.8-alert-ack-build-note-281", RL_TOPIC_ALERT_ACK, b_ack,
	  ACK(.note = S280 "x"), NULL, "$.note" },
	{ "2.8-alert-ack-build-bad-by", RL_TOPIC_ALERT_ACK, b_ack,
	  ACK(.by = "dr.who"), NULL, "$.by" },
	{ "2.8-alert-ack-build-bad-action", RL_TOPIC_ALERT_ACK, b_ack,
	  ACK(.action = (enum rl_ack_action) 5), NULL, "$.action" },
	{ "2.8-alert-ack-build-bad-msg-id", RL_TOPIC_ALERT_ACK, b_ack,
	  ACK(.msg_id = "x"), NULL, "$.msg_id" },

	/* 2.9 builder */
	{ "2.9-config-build", RL_TOPIC_CONFIG, b_config, CONFIG(), NULL,
	  .emit = true, .expect = {
		{ "/schema", "\"rehablink/config/1\"" },
		{ "/settings", "{\"rules.severe_pain_score\":7,"
			       "\"rules.renotify_min\":15,"
			       "\"fhir.enabled\":true,"
			       "\"rules.rise_factor\":1.5,"
			       "\"site.label\":\"ward-3\"}" } } },
	{ "2.9-config-build-empty", RL_TOPIC_CONFIG, b_config,
	  CONFIG(.entries = NULL, .n_entries = 0), NULL, .emit = true,
	  .expect = { { "/settings", "{}" } } },
	{ "2.9-config-build-bad-key", RL_TOPIC_CONFIG, b_config,
	  CONFIG(.entries = settings_bad_key, .n_entries = 1), NULL,
	  "$.settings: key 0" },
	{ "2.9-config-build-duplicate-key", RL_TOPIC_CONFIG, b_config,
	  CONFIG(.entries = settings_dup, .n_entries = 2), NULL,
	  "$.settings.a: given twice" },
	{ "2.9-config-build-string-280", RL_TOPIC_CONFIG, b_config,
	  CONFIG(.entries = settings_long, .n_entries = 1), NULL,
	  "$.settings.a: not UTF-8" },
	{ "2.9-config-build-infinity", RL_TOPIC_CONFIG, b_config,
	  CONFIG(.entries = settings_inf, .n_entries = 1), NULL,
	  "$.settings.a: not finite" },
	{ "2.9-config-build-number-limits", RL_TOPIC_CONFIG, b_config,
	  CONFIG(.entries = settings_limits, .n_entries = 5), NULL,
	  .expect = { { "/settings/a", "0.0001" },
		      { "/settings/b", "1000000000000000.0" },
		      { "/settings/c", "-1000000000000000.0" },
		      { "/settings/d", "0.0" },
		      { "/settings/e", "-9223372036854775808" } } },
	{ "2.9-config-build-double-1e22", RL_TOPIC_CONFIG, b_config,
	  CONFIG(.entries = settings_1e22, .n_entries = 1), NULL,
	  "$.settings.a: not finite, or out of range" },
	{ "2.9-config-build-double-tiny", RL_TOPIC_CONFIG, b_config,
	  CONFIG(.entries = settings_tiny, .n_entries = 1), NULL,
	  "$.settings.a" },
	{ "2.9-config-build-65-entries", RL_TOPIC_CONFIG, b_config,
	  CONFIG(.n_entries = 65), NULL, "$.settings: more than 64" },

	/* 2.10 */
	{ "2.10-config-state-with-rejections", RL_TOPIC_CONFIG_STATE,
	  b_config_state, CS(), &ENV_GW, .emit = true, .expect = {
		{ "/config_msg_id", "\"" MSG3 "\"" },
		{ "/settings/rules.severe_pain_score", "7" },
		{ "/settings/fhir.enabled", "true" },
		{ "/settings/rules.rise_factor", "1.5" },
		{ "/settings/site.label", "\"ward-3\"" },
		{ "/rejected/0", "{\"key\":\"rules.bogus\","
				 "\"reason\":\"unknown setting\"}" },
		{ "/rejected/1/key", "\"rules.severe_pain_score\"" },
		{ "/patient_id", NULL } } },
	{ "2.10-config-state-defaults", RL_TOPIC_CONFIG_STATE, b_config_state,
	  CS(.config_msg_id = NULL, .settings = NULL, .n_settings = 0,
	     .rejected = NULL, .n_rejected = 0), &ENV_GW, .emit = true,
	  .expect = { { "/config_msg_id", "null" }, { "/settings", "{}" },
		      { "/rejected", "[]" } } },
	{ "2.10-config-state-bad-msg-id", RL_TOPIC_CONFIG_STATE,
	  b_config_state, CS(.config_msg_id = "x"), &ENV_GW,
	  "$.config_msg_id" },
	{ "2.10-config-state-bad-rejected-key", RL_TOPIC_CONFIG_STATE,
	  b_config_state, CS(.rejected = rejected_bad_key, .n_rejected = 1),
	  &ENV_GW, "$.rejected[0].key" },
	{ "2.10-config-state-empty-reason", RL_TOPIC_CONFIG_STATE,
	  b_config_state, CS(.rejected = rejected_empty_reason,
			     .n_rejected = 1), &ENV_GW, "$.rejected[0].reason" },
	{ "2.10-config-state-duplicate-setting", RL_TOPIC_CONFIG_STATE,
	  b_config_state, CS(.settings = settings_dup, .n_settings = 2),
	  &ENV_GW, "$.settings.a: given twice" },
	{ "2.10-config-state-double-1e22", RL_TOPIC_CONFIG_STATE,
	  b_config_state, CS(.settings = settings_1e22, .n_settings = 1),
	  &ENV_GW, "$.settings.a" },
	{ "2.10-config-state-null", RL_TOPIC_CONFIG_STATE, b_config_state,
	  NULL, &ENV_GW, "$: no config state" },

	/* 2.11 */
	{ "2.11-error-bad-value", RL_TOPIC_ERROR, b_error, ERR(), &ENV_GW,
	  .emit = true, .expect = {
		{ "/topic_kind", "\"alert_ack\"" },
		{ "/rejected_msg_id", "\"" MSG2 "\"" },
		{ "/code", "\"bad_value\"" },
		{ "/detail", "\"$.at: not an RFC 3339 time\"" },
		{ "/patient_id", NULL } } },
	{ "2.11-error-unknown-command", RL_TOPIC_ERROR, b_error,
	  ERR(.has_topic_kind = false, .rejected_msg_id = NULL,
	      .code = RL_PAYLOAD_ERROR_BAD_TOPIC,
	      .detail = "unknown command topic level 'reboot'"),
	  &ENV_GW, .emit = true, .expect = {
		{ "/topic_kind", "null" }, { "/rejected_msg_id", "null" },
		{ "/code", "\"bad_topic\"" } } },
	{ "2.11-error-bad-json-config", RL_TOPIC_ERROR, b_error,
	  ERR(.topic_kind = RL_TOPIC_CONFIG, .rejected_msg_id = NULL,
	      .code = RL_PAYLOAD_ERROR_BAD_JSON,
	      .detail = "$: unexpected character at offset 0"),
	  &ENV_GW, .emit = true, .expect = {
		{ "/topic_kind", "\"config\"" }, { "/code", "\"bad_json\"" } } },
	{ "2.11-error-unknown-alert", RL_TOPIC_ERROR, b_error,
	  ERR(.code = RL_PAYLOAD_ERROR_UNKNOWN_ALERT,
	      .detail = "$.alert_id: no such alert"), &ENV_GW, .emit = true,
	  .expect = { { "/code", "\"unknown_alert\"" } } },
	{ "2.11-error-bad-schema", RL_TOPIC_ERROR, b_error,
	  ERR(.code = RL_PAYLOAD_ERROR_BAD_SCHEMA,
	      .detail = "$.alert_id: missing"), &ENV_GW,
	  .expect = { { "/code", "\"bad_schema\"" } } },
	{ "2.11-error-code-invalid", RL_TOPIC_ERROR, b_error,
	  ERR(.code = RL_PAYLOAD_ERROR_INVALID), &ENV_GW, "$.code" },
	{ "2.11-error-not-a-command-kind", RL_TOPIC_ERROR, b_error,
	  ERR(.topic_kind = RL_TOPIC_PAIN), &ENV_GW, "$.topic_kind" },
	{ "2.11-error-empty-detail", RL_TOPIC_ERROR, b_error,
	  ERR(.detail = ""), &ENV_GW, "$.detail" },
	{ "2.11-error-detail-513", RL_TOPIC_ERROR, b_error,
	  ERR(.detail = S280 S280), &ENV_GW, "$.detail" },
	{ "2.11-error-detail-bad-utf8", RL_TOPIC_ERROR, b_error,
	  ERR(.detail = "bad \xff"), &ENV_GW, "$.detail" },
	{ "2.11-error-bad-rejected-msg-id", RL_TOPIC_ERROR, b_error,
	  ERR(.rejected_msg_id = "nope"), &ENV_GW, "$.rejected_msg_id" },

	/* 2.12 */
	{ "2.12-fhir-pain", RL_TOPIC_FHIR_OBSERVATION, b_fhir, FHIR_PAIN(),
	  &ENV, .emit = true, .expect = {
		{ "/schema", "\"rehablink/fhir_observation/1\"" },
		{ "/patient_id", "\"" PT "\"" },
		{ "/resource/resourceType", "\"Observation\"" },
		{ "/resource/status", "\"final\"" },
		{ "/resource/identifier/0",
		  "{\"system\":\"urn:rehablink:observation\","
		  "\"value\":\"" GW ":" WR ":48213\"}" },
		{ "/resource/category/0/coding/0/code", "\"survey\"" },
		{ "/resource/code/coding/0/system", "\"http://loinc.org\"" },
		{ "/resource/code/coding/0/code", "\"72514-3\"" },
		{ "/resource/code/coding/0/display",
		  "\"Pain severity - 0-10 verbal numeric rating [Score] - "
		  "Reported\"" },
		{ "/resource/subject", "{\"identifier\":{\"value\":\"" PT
				       "\"}}" },
		{ "/resource/effectiveDateTime", "\"" T0_S "\"" },
		{ "/resource/valueInteger", "8" },
		{ "/resource/valueQuantity", NULL } } },
	{ "2.12-fhir-daily-steps", RL_TOPIC_FHIR_OBSERVATION, b_fhir,
	  FHIR_STEPS(), &ENV, .emit = true, .expect = {
		{ "/resource/identifier/0/value",
		  "\"" GW ":pt-0042:d:2024-05-01\"" },
		{ "/resource/category/0/coding/0/code", "\"activity\"" },
		{ "/resource/code/coding/0/code", "\"41950-7\"" },
		{ "/resource/code/coding/0/display",
		  "\"Number of steps in 24 hour Measured\"" },
		{ "/resource/effectivePeriod",
		  "{\"start\":\"2024-04-30T22:00:00.000Z\","
		  "\"end\":\"2024-05-01T22:00:00.000Z\"}" },
		{ "/resource/valueQuantity",
		  "{\"value\":3120,\"unit\":\"steps/day\","
		  "\"system\":\"http://unitsofmeasure.org\",\"code\":\"/d\"}" },
		{ "/resource/valueInteger", NULL },
		{ "/resource/effectiveDateTime", NULL } } },
	{ "2.12-fhir-pain-11", RL_TOPIC_FHIR_OBSERVATION, b_fhir,
	  FHIR_PAIN(.value = 11), &ENV, "$.resource.valueInteger" },
	{ "2.12-fhir-steps-negative", RL_TOPIC_FHIR_OBSERVATION, b_fhir,
	  FHIR_STEPS(.value = -1), &ENV, "$.resource.valueQuantity.value" },
	{ "2.12-fhir-steps-end-before-start", RL_TOPIC_FHIR_OBSERVATION, b_fhir,
	  FHIR_STEPS(.effective_end_us = DAY0), &ENV,
	  "$.resource.effectivePeriod" },
	{ "2.12-fhir-bad-kind", RL_TOPIC_FHIR_OBSERVATION, b_fhir,
	  FHIR_PAIN(.kind = (enum rl_fhir_kind) 5), &ENV, "$.resource: kind" },
	{ "2.12-fhir-bad-source-id", RL_TOPIC_FHIR_OBSERVATION, b_fhir,
	  FHIR_PAIN(.source_id = "belt 1/48213"), &ENV,
	  "$.resource.identifier[0].value" },
	{ "2.12-fhir-no-source-id", RL_TOPIC_FHIR_OBSERVATION, b_fhir,
	  FHIR_STEPS(.source_id = NULL), &ENV,
	  "$.resource.identifier[0].value" },
	{ "2.12-fhir-no-patient", RL_TOPIC_FHIR_OBSERVATION, b_fhir,
	  FHIR_PAIN(), &ENV_GW, "$.patient_id" },
};

static void check_ack_round_trip(const char *json, const struct rl_alert_ack *in)
{
	g_auto(RlAlertAck) ack = { 0 };
	g_autoptr(GError) err = NULL;

	if (!rl_payload_parse_alert_ack(json, strlen(json), &ack, &err))
		fail_msg("round trip: %s", err->message);
	assert_string_equal(ack.msg_id, in->msg_id);
	assert_int_equal(ack.event_time_us / 1000, in->event_time_us / 1000);
	assert_string_equal(ack.gateway_id, in->gateway_id);
	assert_string_equal(ack.alert_id, in->alert_id);
	assert_string_equal(ack.by, in->by);
	assert_int_equal(ack.at_us / 1000, in->at_us / 1000);
	if (in->note)
		assert_string_equal(ack.note, in->note);
	else
		assert_null(ack.note);
	assert_int_equal(ack.action, in->action);
}

static void check_config_round_trip(const char *json,
				    const struct rl_config_msg *in)
{
	g_auto(RlConfigMsg) msg = { 0 };
	g_autoptr(GError) err = NULL;

	if (!rl_payload_parse_config(json, strlen(json), &msg, &err))
		fail_msg("round trip: %s", err->message);
	assert_string_equal(msg.msg_id, in->msg_id);
	assert_int_equal(msg.n_entries, in->n_entries);
	for (size_t i = 0; i < in->n_entries; i++) {
		const struct rl_config_value *a = &msg.entries[i].value;
		const struct rl_config_value *b = &in->entries[i].value;

		assert_string_equal(msg.entries[i].key, in->entries[i].key);
		assert_int_equal(a->type, b->type);
		switch (a->type) {
		case RL_CONFIG_BOOL:
			assert_int_equal(a->u.b, b->u.b);
			break;
		case RL_CONFIG_INT:
			assert_int_equal(a->u.i, b->u.i);
			break;
		case RL_CONFIG_DOUBLE:
			assert_true(a->u.d == b->u.d);
			break;
		case RL_CONFIG_STRING:
			assert_string_equal(a->u.s, b->u.s);
			break;
		}
	}
}

static void test_build(void **state)
{
	const struct build_vec *v = *state;
	g_autoptr(GError) err = NULL;
	g_autofree gchar *json = v->build(v->in, v->env, &err);
	g_autofree gchar *again = NULL;
	g_autofree gchar *schema = NULL;
	g_autoptr(JsonNode) root = NULL;

	if (v->err) {
		assert_null(json);
		assert_error(err, RL_PAYLOAD_ERROR_INVALID, v->err);
		/* the error path names a member: it starts with "$" */
		assert_int_equal(err->message[0], '$');
		return;
	}
	if (!json)
		fail_msg("build failed: %s", err ? err->message : "(no error)");
	assert_null(err);

	/* deterministic */
	again = v->build(v->in, v->env, NULL);
	assert_string_equal(json, again);

	root = parse_json(json);
	assert_true(JSON_NODE_HOLDS_OBJECT(root));
	schema = g_strdup_printf("\"rehablink/%s/1\"", rl_topic_kind_name(v->kind));
	assert_json_at(root, "/schema", schema);
	if (!rl_topic_kind_is_command(v->kind)) {
		g_autofree gchar *msg = g_strdup_printf("\"%s\"", v->env->msg_id);
		g_autofree gchar *gw = g_strdup_printf("\"%s\"", v->env->gateway_id);
		g_autofree gchar *tq = g_strdup_printf("\"%s\"",
			rl_time_quality_name(v->env->time_quality));
		g_autofree gchar *t = rl_payload_format_time(v->env->event_time_us);
		g_autofree gchar *r = rl_payload_format_time(v->env->received_at_us);
		g_autofree gchar *tj = g_strdup_printf("\"%s\"", t);
		g_autofree gchar *rj = g_strdup_printf("\"%s\"", r);

		assert_json_at(root, "/msg_id", msg);
		assert_json_at(root, "/gateway_id", gw);
		assert_json_at(root, "/time_quality", tq);
		assert_json_at(root, "/event_time", tj);
		assert_json_at(root, "/received_at", rj);
		if (rl_topic_kind_has_patient(v->kind)) {
			g_autofree gchar *pt = g_strdup_printf("\"%s\"",
							       v->env->patient_id);

			assert_json_at(root, "/patient_id", pt);
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(v->expect) && v->expect[i].ptr; i++)
		assert_json_at(root, v->expect[i].ptr, v->expect[i].json);

	if (v->kind == RL_TOPIC_ALERT_ACK)
		check_ack_round_trip(json, v->in);
	if (v->kind == RL_TOPIC_CONFIG)
		check_config_round_trip(json, v->in);
}

/* --emit DIR: the builder vectors marked emit, one file each */
static int emit(const char *dir)
{
	int count[RL_TOPIC_KIND_COUNT] = { 0 };
	int written = 0;

	if (g_mkdir_with_parents(dir, 0755) < 0) {
		fprintf(stderr, "%s: cannot create\n", dir);
		return 1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(build_vecs); i++) {
		const struct build_vec *v = &build_vecs[i];
		g_autoptr(GError) err = NULL;
		g_autofree gchar *json = NULL;
		g_autofree gchar *path = NULL;
		g_autoptr(JsonNode) root = NULL;
		g_autoptr(JsonGenerator) gen = json_generator_new();
		g_autofree gchar *pretty = NULL;

		if (!v->emit)
			continue;
		json = v->build(v->in, v->env, &err);
		if (!json) {
			fprintf(stderr, "%s: %s\n", v->name, err->message);
			return 1;
		}
		/* pretty-printed for people; same content */
		root = parse_json(json);
		json_generator_set_root(gen, root);
		json_generator_set_pretty(gen, TRUE);
		pretty = json_generator_to_data(gen, NULL);
		path = g_strdup_printf("%s/%s-%d.json", dir,
				       rl_topic_kind_name(v->kind),
				       ++count[v->kind]);
		if (!g_file_set_contents(path, pretty, -1, &err)) {
			fprintf(stderr, "%s: %s\n", path, err->message);
			return 1;
		}
		written++;
	}
	printf("wrote %d payloads to %s\n", written, dir);
	return 0;
}

/* ==== 2.8 / 2.9 parsers =================================================== */

#define ACK_BASE "{\"schema\":\"rehablink/alert_ack/1\"," \
	"\"msg_id\":\"" MSG2 "\"," \
	"\"event_time\":\"2024-05-01T08:45:00.000Z\"," \
	"\"gateway_id\":\"" GW "\"," \
	"\"alert_id\":\"al-7f3a-000123\"," \
	"\"by\":\"clin-17\"," \
	"\"at\":\"2024-05-01T08:44:30.250Z\"," \
	"\"note\":\"Called the patient.\"," \
	"\"action\":\"acknowledge\"}"
#define ACK_AT		(INT64_C(1714553070) * SEC + 250000)

#define CONFIG_BASE "{\"schema\":\"rehablink/config/1\"," \
	"\"msg_id\":\"" MSG3 "\"," \
	"\"event_time\":\"2024-05-01T09:00:00Z\"," \
	"\"gateway_id\":\"" GW "\"," \
	"\"settings\":{\"rules.severe_pain_score\":7," \
	"\"rules.rise_factor\":1.5,\"fhir.enabled\":true," \
	"\"site.label\":\"ward-3\"}}"

#define OK (-1)

struct parse_vec {
	const char *name;
	const char *raw;	/* the whole message; NULL: base + change */
	size_t raw_len;		/* 0: strlen(raw) */
	const char *member;	/* member of base to change */
	const char *value;	/* its new value as JSON; NULL: remove it */
	size_t pad;		/* > 0: value is a string of pad 'x' */
	int n_settings;		/* > 0: settings of n entries "kN": 1 */
	const char *append;	/* text inserted before base's closing '}' */
	int code;		/* OK or an rl_payload_error_code */
	const char *err;	/* substring of the error message */
	/* on success (ack) */
	const char *note;	/* expected note; NULL: NULL */
	enum rl_ack_action action;
	int64_t at_us;		/* 0: ACK_AT */
	/* on success (config) */
	int n_entries;		/* expected entries; -1: don't check */
};

static gchar *make_message(const char *base, const struct parse_vec *v,
			   size_t *ret_len)
{
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(JsonGenerator) gen = json_generator_new();
	JsonObject *obj;
	gchar *out;

	if (v->raw) {
		*ret_len = v->raw_len ? v->raw_len : strlen(v->raw);
		return g_memdup2(v->raw, *ret_len ? *ret_len : 1);
	}
	root = parse_json(base);
	obj = json_node_get_object(root);
	if (v->member && v->pad) {
		gchar *s = g_malloc(v->pad + 1);

		memset(s, 'x', v->pad);
		s[v->pad] = '\0';
		json_object_set_string_member(obj, v->member, s);
		g_free(s);
	} else if (v->member && v->n_settings) {
		JsonObject *set = json_object_new();

		for (int i = 0; i < v->n_settings; i++) {
			g_autofree gchar *k = g_strdup_printf("k%d", i);

			json_object_set_int_member(set, k, 1);
		}
		json_object_set_object_member(obj, v->member, set);
	} else if (v->member && v->value) {
		json_object_set_member(obj, v->member, parse_json(v->value));
	} else if (v->member) {
		json_object_remove_member(obj, v->member);
	}
	json_generator_set_root(gen, root);
	out = json_generator_to_data(gen, NULL);
	if (v->append) {
		size_t n = strlen(out);
		gchar *joined;

		assert_int_equal(out[n - 1], '}');
		out[n - 1] = '\0';
		joined = g_strconcat(out, v->append, "}", NULL);
		g_free(out);
		out = joined;
	}
	*ret_len = strlen(out);
	return out;
}

static const struct parse_vec ack_vecs[] = {
	{ "2.8-alert-ack-good", .code = OK, .note = "Called the patient." },
	{ "2.8-alert-ack-resolve", .member = "action", .value = "\"resolve\"",
	  .code = OK, .note = "Called the patient.", .action = RL_ACK_RESOLVE },
	{ "2.8-alert-ack-note-null", .member = "note", .value = "null",
	  .code = OK },
	{ "2.8-alert-ack-note-absent", .member = "note", .code = OK },
	{ "2.8-alert-ack-note-empty", .member = "note", .value = "\"\"",
	  .code = OK, .note = "" },
	{ "2.8-alert-ack-note-280", .member = "note", .value = "\"" S280 "\"",
	  .code = OK, .note = S280 },
	{ "2.8-alert-ack-note-280-multibyte", .member = "note",
	  .value = "\"" E280 "\"", .code = OK, .note = E280 },
	{ "2.8-alert-ack-at-with-offset", .member = "at",
	  .value = "\"2024-05-01T10:44:30.250+02:00\"", .code = OK,
	  .note = "Called the patient." },
	{ "2.8-alert-ack-at-lowercase", .member = "at",
	  .value = "\"2024-05-01t08:44:30.250z\"", .code = OK,
	  .note = "Called the patient." },
	{ "2.8-alert-ack-at-no-fraction", .member = "at",
	  .value = "\"2024-05-01T08:44:30Z\"", .code = OK,
	  .note = "Called the patient.", .at_us = INT64_C(1714553070) * SEC },
	{ "2.8-alert-ack-uppercase-uuid", .member = "msg_id",
	  .value = "\"9B2E4C1A-5D3F-4E8A-B7C6-1F2E3D4C5B6A\"", .code = OK,
	  .note = "Called the patient." },
	{ "2.8-alert-ack-alert-id-128", .member = "alert_id",
	  .value = "\"" S50 S50 "0123456789012345678901234567\"", .code = OK,
	  .note = "Called the patient." },
	{ "2.8-alert-ack-duplicate-key-last-wins",
	  .append = ",\"action\":\"resolve\"", .code = OK,
	  .note = "Called the patient.", .action = RL_ACK_RESOLVE },
	{ "2.8-alert-ack-whitespace", .raw = " \n\t{ \"schema\" : "
	  "\"rehablink/alert_ack/1\" ,\r\n \"msg_id\":\"" MSG2 "\", "
	  "\"event_time\":\"2024-05-01T08:45:00Z\", \"gateway_id\":\"" GW "\","
	  "\"alert_id\":\"a\",\"by\":\"b\",\"at\":\"2024-05-01T08:44:30.250Z\","
	  "\"action\":\"acknowledge\" }\n", .code = OK },
	{ "2.8-alert-ack-escapes-in-note", .raw = "{\"schema\":"
	  "\"rehablink/alert_ack/1\",\"msg_id\":\"" MSG2 "\",\"event_time\":"
	  "\"2024-05-01T08:45:00Z\",\"gateway_id\":\"" GW "\",\"alert_id\":"
	  "\"a\",\"by\":\"b\",\"at\":\"2024-05-01T08:44:30.250Z\",\"note\":"
	  "\"tab\\tquote\\\" \\u00e9 \\ud83d\\ude00 \\/\",\"action\":"
	  "\"acknowledge\"}", .code = OK,
	  .note = "tab\tquote\" " E1 " \xf0\x9f\x98\x80 /" },

	{ "2.8-alert-ack-empty", .raw = "", .code = RL_PAYLOAD_ERROR_BAD_JSON,
	  .err = "$: empty" },
	{ "2.8-alert-ack-bad-json", .raw = "{\"schema\":",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "$: unexpected end" },
	{ "2.8-alert-ack-not-json", .raw = "acknowledge al-1",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "unexpected character" },
	{ "2.8-alert-ack-not-object-array", .raw = "[1,2]",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$: not an object" },
	{ "2.8-alert-ack-not-object-string", .raw = "\"ack\"",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$: not an object" },
	{ "2.8-alert-ack-not-object-null", .raw = "null",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$: not an object" },
	{ "2.8-alert-ack-not-object-number", .raw = "42",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$: not an object" },
	{ "2.8-alert-ack-empty-object", .raw = "{}",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.schema: missing" },
	{ "2.8-alert-ack-missing-schema", .member = "schema",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.schema: missing" },
	{ "2.8-alert-ack-missing-msg-id", .member = "msg_id",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.msg_id: missing" },
	{ "2.8-alert-ack-missing-event-time", .member = "event_time",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.event_time: missing" },
	{ "2.8-alert-ack-missing-gateway-id", .member = "gateway_id",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.gateway_id: missing" },
	{ "2.8-alert-ack-missing-alert-id", .member = "alert_id",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.alert_id: missing" },
	{ "2.8-alert-ack-missing-by", .member = "by",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.by: missing" },
	{ "2.8-alert-ack-missing-at", .member = "at",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.at: missing" },
	{ "2.8-alert-ack-missing-action", .member = "action",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.action: missing" },
	{ "2.8-alert-ack-schema-not-string", .member = "schema", .value = "1",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.schema: not a string" },
	{ "2.8-alert-ack-msg-id-object", .member = "msg_id", .value = "{}",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.msg_id: not a string" },
	{ "2.8-alert-ack-alert-id-number", .member = "alert_id",
	  .value = "123", .code = RL_PAYLOAD_ERROR_BAD_SCHEMA,
	  .err = "$.alert_id: not a string" },
	{ "2.8-alert-ack-alert-id-null", .member = "alert_id", .value = "null",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.alert_id: not a string" },
	{ "2.8-alert-ack-by-bool", .member = "by", .value = "true",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.by: not a string" },
	{ "2.8-alert-ack-at-number", .member = "at", .value = "1714553070",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.at: not a string" },
	{ "2.8-alert-ack-note-number", .member = "note", .value = "5",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.note: not a string" },
	{ "2.8-alert-ack-action-array", .member = "action",
	  .value = "[\"acknowledge\"]", .code = RL_PAYLOAD_ERROR_BAD_SCHEMA,
	  .err = "$.action: not a string" },
	{ "2.8-alert-ack-unknown-version", .member = "schema",
	  .value = "\"rehablink/alert_ack/2\"",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA,
	  .err = "$.schema: unsupported version" },
	{ "2.8-alert-ack-wrong-kind", .member = "schema",
	  .value = "\"rehablink/config/1\"", .code = RL_PAYLOAD_ERROR_BAD_SCHEMA,
	  .err = "$.schema: wrong kind" },
	{ "2.8-alert-ack-unknown-member", .member = "priority", .value = "1",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.priority: unknown member" },
	{ "2.8-alert-ack-unknown-member-escaped",
	  .append = ",\"we\\\"ird\\n\":1", .code = RL_PAYLOAD_ERROR_BAD_SCHEMA,
	  .err = "$[\"we\\\"ird\\n\"]: unknown member" },
	{ "2.8-alert-ack-envelope-time-quality-refused",
	  .member = "time_quality", .value = "\"synced\"",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA,
	  .err = "$.time_quality: unknown member" },
	{ "2.8-alert-ack-bad-msg-id", .member = "msg_id",
	  .value = "\"not-a-uuid\"", .code = RL_PAYLOAD_ERROR_BAD_VALUE,
	  .err = "$.msg_id: not a UUID" },
	{ "2.8-alert-ack-bad-gateway-id", .member = "gateway_id",
	  .value = "\"gw/1\"", .code = RL_PAYLOAD_ERROR_BAD_VALUE,
	  .err = "$.gateway_id: not an id" },
	{ "2.8-alert-ack-bad-alert-id", .member = "alert_id",
	  .value = "\"al 1\"", .code = RL_PAYLOAD_ERROR_BAD_VALUE,
	  .err = "$.alert_id: not a token" },
	{ "2.8-alert-ack-empty-alert-id", .member = "alert_id",
	  .value = "\"\"", .code = RL_PAYLOAD_ERROR_BAD_VALUE,
	  .err = "$.alert_id" },
	{ "2.8-alert-ack-alert-id-129", .member = "alert_id",
	  .value = "\"" S50 S50 "01234567890123456789012345678\"",
	  .code = RL_PAYLOAD_ERROR_BAD_VALUE, .err = "$.alert_id" },
	{ "2.8-alert-ack-bad-by", .member = "by", .value = "\"dr.who\"",
	  .code = RL_PAYLOAD_ERROR_BAD_VALUE, .err = "$.by: not an id" },
	{ "2.8-alert-ack-bad-action", .member = "action", .value = "\"ack\"",
	  .code = RL_PAYLOAD_ERROR_BAD_VALUE, .err = "$.action" },
	{ "2.8-alert-ack-action-case", .member = "action",
	  .value = "\"Acknowledge\"", .code = RL_PAYLOAD_ERROR_BAD_VALUE,
	  .err = "$.action" },
	{ "2.8-alert-ack-note-281", .member = "note",
	  .value = "\"" S280 "x\"", .code = RL_PAYLOAD_ERROR_BAD_VALUE,
	  .err = "$.note: more than 280 characters" },
	{ "2.8-alert-ack-note-281-multibyte", .member = "note",
	  .value = "\"" E280 E1 "\"", .code = RL_PAYLOAD_ERROR_BAD_VALUE,
	  .err = "$.note" },
	{ "2.8-alert-ack-bad-time", .member = "at", .value = "\"yesterday\"",
	  .code = RL_PAYLOAD_ERROR_BAD_VALUE, .err = "$.at: not an RFC 3339 time" },
	{ "2.8-alert-ack-feb-30", .member = "at",
	  .value = "\"2024-02-30T10:00:00Z\"", .code = RL_PAYLOAD_ERROR_BAD_VALUE,
	  .err = "$.at" },
	{ "2.8-alert-ack-time-no-offset", .member = "event_time",
	  .value = "\"2024-05-01T08:45:00\"", .code = RL_PAYLOAD_ERROR_BAD_VALUE,
	  .err = "$.event_time: not an RFC 3339 time" },
	{ "2.8-alert-ack-time-before-1970", .member = "at",
	  .value = "\"1969-12-31T23:59:59Z\"", .code = RL_PAYLOAD_ERROR_BAD_VALUE,
	  .err = "$.at" },
	{ "2.8-alert-ack-embedded-nul",
	  .raw = "{\"schema\":\"rehablink/alert_ack/1\"\0,\"x\":1}",
	  .raw_len = sizeof("{\"schema\":\"rehablink/alert_ack/1\"\0,\"x\":1}") - 1,
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "NUL byte at offset 33" },
	{ "2.8-alert-ack-trailing-nul", .raw = ACK_BASE "\0",
	  .raw_len = sizeof(ACK_BASE), .code = RL_PAYLOAD_ERROR_BAD_JSON,
	  .err = "NUL byte" },
	{ "2.8-alert-ack-nul-escape", .member = "note", .append = NULL,
	  .raw = "{\"note\":\"a\\u0000b\"}", .code = RL_PAYLOAD_ERROR_BAD_JSON,
	  .err = "\\u0000" },
	{ "2.8-alert-ack-invalid-utf8", .raw = "{\"note\":\"\xff\"}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "invalid UTF-8 at offset 9" },
	{ "2.8-alert-ack-overlong-utf8", .raw = "{\"note\":\"\xc0\xaf\"}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "invalid UTF-8" },
	{ "2.8-alert-ack-lone-surrogate", .raw = "{\"note\":\"\\ud800\"}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "surrogate" },
	{ "2.8-alert-ack-lone-low-surrogate", .raw = "{\"note\":\"\\udc00x\"}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "surrogate" },
	{ "2.8-alert-ack-bad-escape", .raw = "{\"note\":\"\\x41\"}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "bad escape" },
	{ "2.8-alert-ack-control-char", .raw = "{\"note\":\"a\nb\"}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "control character" },
	{ "2.8-alert-ack-single-quotes", .raw = "{'schema':'x'}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "member name" },
	{ "2.8-alert-ack-bare-name", .raw = "{schema:1}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "member name" },
	{ "2.8-alert-ack-hex-number", .raw = "{\"a\":0x10}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON },
	{ "2.8-alert-ack-leading-zero", .raw = "{\"a\":01}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "leading zero" },
	{ "2.8-alert-ack-bare-fraction", .raw = "{\"a\":.5}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "unexpected character" },
	{ "2.8-alert-ack-trailing-dot", .raw = "{\"a\":1.}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "bad fraction" },
	{ "2.8-alert-ack-bad-exponent", .raw = "{\"a\":1e}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "bad exponent" },
	{ "2.8-alert-ack-plus-number", .raw = "{\"a\":+1}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "unexpected character" },
	{ "2.8-alert-ack-nan", .raw = "{\"a\":NaN}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON },
	{ "2.8-alert-ack-bad-literal", .raw = "{\"a\":tru}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON },
	{ "2.8-alert-ack-trailing-comma", .raw = "{\"a\":1,}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "member name" },
	{ "2.8-alert-ack-missing-colon", .raw = "{\"a\" 1}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "':'" },
	{ "2.8-alert-ack-comment", .raw = "{/* c */\"a\":1}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON },
	{ "2.8-alert-ack-trailing-data", .raw = ACK_BASE " x",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "data after" },
	{ "2.8-alert-ack-two-objects", .raw = "{}{}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "data after" },
	{ "2.8-alert-ack-bom", .raw = "\xef\xbb\xbf" ACK_BASE,
	  .code = RL_PAYLOAD_ERROR_BAD_JSON },
	{ "2.8-alert-ack-too-deep", .raw = "{\"a\":[[[[[[[[1]]]]]]]]}",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON, .err = "nesting too deep" },
	{ "2.8-alert-ack-deep-ok-then-schema", .raw = "{\"a\":[[[[[[1]]]]]]}",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.schema: missing" },
	{ "2.8-alert-ack-integer-overflow", .raw = "{\"a\":99999999999999999999}",
	  .code = RL_PAYLOAD_ERROR_BAD_VALUE, .err = "integer beyond 64 bits" },
	{ "2.8-alert-ack-too-large", .member = "note", .pad = 5000,
	  .code = RL_PAYLOAD_ERROR_BAD_VALUE, .err = "more than 4096" },
};

static const struct parse_vec config_vecs[] = {
	{ "2.9-config-good", .code = OK, .n_entries = 4 },
	{ "2.9-config-empty-settings", .member = "settings", .value = "{}",
	  .code = OK, .n_entries = 0 },
	{ "2.9-config-64-entries", .member = "settings", .n_settings = 64,
	  .code = OK, .n_entries = 64 },
	{ "2.9-config-string-256", .member = "settings",
	  .value = "{\"s\":\"" S50 S50 S50 S50 S50 "012345\"}", .code = OK,
	  .n_entries = 1 },
	{ "2.9-config-key-64", .member = "settings",
	  .value = "{\"" ID64 "\":1}", .code = OK, .n_entries = 1 },
	{ "2.9-config-numbers", .member = "settings",
	  .value = "{\"a\":-9223372036854775808,\"b\":9223372036854775807,"
		   "\"c\":1e3,\"d\":-0.5,\"e\":0,\"f\":1E-2}",
	  .code = OK, .n_entries = 6 },
	{ "2.9-config-duplicate-key-last-wins",
	  .raw = "{\"schema\":\"rehablink/config/1\",\"msg_id\":\"" MSG3 "\","
		 "\"event_time\":\"2024-05-01T09:00:00Z\",\"gateway_id\":\"" GW
		 "\",\"settings\":{\"a\":1,\"b\":2,\"a\":3}}",
	  .code = OK, .n_entries = 2 },

	{ "2.9-config-bad-json", .raw = "{\"settings\":{",
	  .code = RL_PAYLOAD_ERROR_BAD_JSON },
	{ "2.9-config-not-object", .raw = "[\"rules.x\",1]",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$: not an object" },
	{ "2.9-config-missing-settings", .member = "settings",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.settings: missing" },
	{ "2.9-config-missing-msg-id", .member = "msg_id",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.msg_id: missing" },
	{ "2.9-config-settings-array", .member = "settings", .value = "[1]",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.settings: not an object" },
	{ "2.9-config-settings-null", .member = "settings", .value = "null",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.settings: not an object" },
	{ "2.9-config-null-value", .member = "settings",
	  .value = "{\"rules.x\":null}", .code = RL_PAYLOAD_ERROR_BAD_SCHEMA,
	  .err = "$.settings.rules.x: null" },
	{ "2.9-config-object-value", .member = "settings",
	  .value = "{\"rules\":{\"x\":1}}", .code = RL_PAYLOAD_ERROR_BAD_SCHEMA,
	  .err = "$.settings.rules: not a boolean, number or string" },
	{ "2.9-config-array-value", .member = "settings",
	  .value = "{\"rules.x\":[1]}", .code = RL_PAYLOAD_ERROR_BAD_SCHEMA,
	  .err = "$.settings.rules.x" },
	{ "2.9-config-key-uppercase", .member = "settings",
	  .value = "{\"Rules.X\":1}", .code = RL_PAYLOAD_ERROR_BAD_VALUE,
	  .err = "$.settings.Rules.X: key not" },
	{ "2.9-config-key-space", .member = "settings",
	  .value = "{\"rules x\":1}", .code = RL_PAYLOAD_ERROR_BAD_VALUE,
	  .err = "$.settings[\"rules x\"]: key not" },
	{ "2.9-config-key-empty", .member = "settings", .value = "{\"\":1}",
	  .code = RL_PAYLOAD_ERROR_BAD_VALUE, .err = "key not" },
	{ "2.9-config-key-65", .member = "settings",
	  .value = "{\"" ID64 "a\":1}", .code = RL_PAYLOAD_ERROR_BAD_VALUE,
	  .err = "key not" },
	{ "2.9-config-65-entries", .member = "settings", .n_settings = 65,
	  .code = RL_PAYLOAD_ERROR_BAD_VALUE, .err = "more than 64 entries" },
	{ "2.9-config-string-257", .member = "settings",
	  .value = "{\"s\":\"" S50 S50 S50 S50 S50 "0123456\"}",
	  .code = RL_PAYLOAD_ERROR_BAD_VALUE, .err = "$.settings.s: string longer" },
	{ "2.9-config-infinity", .raw = "{\"schema\":\"rehablink/config/1\","
	  "\"msg_id\":\"" MSG3 "\",\"event_time\":\"2024-05-01T09:00:00Z\","
	  "\"gateway_id\":\"" GW "\",\"settings\":{\"x\":1e999}}",
	  .code = RL_PAYLOAD_ERROR_BAD_VALUE, .err = "$.settings.x: number out" },
	{ "2.9-config-double-1e22", .raw = "{\"schema\":\"rehablink/config/1\","
	  "\"msg_id\":\"" MSG3 "\",\"event_time\":\"2024-05-01T09:00:00Z\","
	  "\"gateway_id\":\"" GW "\",\"settings\":{\"x\":1e22}}",
	  .code = RL_PAYLOAD_ERROR_BAD_VALUE,
	  .err = "$.settings.x: number out of range" },
	{ "2.9-config-double-tiny", .member = "settings",
	  .value = "{\"x\":0.00001}", .code = RL_PAYLOAD_ERROR_BAD_VALUE,
	  .err = "$.settings.x: number out of range" },
	{ "2.9-config-double-limits", .member = "settings",
	  .value = "{\"a\":0.0001,\"b\":1e15,\"c\":-1000000000000000.0,"
		   "\"d\":0.0,\"e\":-0.0}", .code = OK, .n_entries = 5 },
	{ "2.9-config-integer-overflow", .raw = "{\"schema\":"
	  "\"rehablink/config/1\",\"settings\":{\"x\":-9223372036854775809}}",
	  .code = RL_PAYLOAD_ERROR_BAD_VALUE, .err = "integer beyond 64 bits" },
	{ "2.9-config-unknown-version", .member = "schema",
	  .value = "\"rehablink/config/2\"", .code = RL_PAYLOAD_ERROR_BAD_SCHEMA,
	  .err = "$.schema: unsupported version" },
	{ "2.9-config-ack-schema", .member = "schema",
	  .value = "\"rehablink/alert_ack/1\"",
	  .code = RL_PAYLOAD_ERROR_BAD_SCHEMA, .err = "$.schema: wrong kind" },
	{ "2.9-config-unknown-member", .member = "apply_at",
	  .value = "\"now\"", .code = RL_PAYLOAD_ERROR_BAD_SCHEMA,
	  .err = "$.apply_at: unknown member" },
	{ "2.9-config-bad-event-time", .member = "event_time",
	  .value = "\"2024-05-01\"", .code = RL_PAYLOAD_ERROR_BAD_VALUE,
	  .err = "$.event_time: not an RFC 3339 time" },
	{ "2.9-config-embedded-nul", .raw = CONFIG_BASE "\0",
	  .raw_len = sizeof(CONFIG_BASE), .code = RL_PAYLOAD_ERROR_BAD_JSON,
	  .err = "NUL byte" },
	{ "2.9-config-too-large", .member = "zz", .pad = 70000,
	  .code = RL_PAYLOAD_ERROR_BAD_VALUE, .err = "more than 65536" },
};

static void test_parse_ack(void **state)
{
	const struct parse_vec *v = *state;
	g_auto(RlAlertAck) ack = { 0 };
	g_autoptr(GError) err = NULL;
	size_t len;
	g_autofree gchar *msg = make_message(ACK_BASE, v, &len);
	gboolean ok = rl_payload_parse_alert_ack(msg, len, &ack, &err);

	if (v->code != OK) {
		assert_false(ok);
		assert_error(err, v->code, v->err);
		/* nothing written on failure */
		assert_null(ack.msg_id);
		assert_null(ack.alert_id);
		return;
	}
	if (!ok)
		fail_msg("rejected: %s", err->message);
	assert_int_equal(g_ascii_strcasecmp(ack.msg_id, MSG2), 0);
	assert_string_equal(ack.gateway_id, GW);
	assert_int_equal(ack.action, v->action);
	if (!v->raw) {
		assert_int_equal(ack.at_us, v->at_us ? v->at_us : ACK_AT);
		assert_int_equal(ack.event_time_us,
				 INT64_C(1714553100) * SEC);
		assert_string_equal(ack.by, "clin-17");
	}
	if (v->note)
		assert_string_equal(ack.note, v->note);
	else
		assert_null(ack.note);
}

static void test_parse_config(void **state)
{
	const struct parse_vec *v = *state;
	g_auto(RlConfigMsg) cfg = { 0 };
	g_autoptr(GError) err = NULL;
	size_t len;
	g_autofree gchar *msg = make_message(CONFIG_BASE, v, &len);
	gboolean ok = rl_payload_parse_config(msg, len, &cfg, &err);

	if (v->code != OK) {
		assert_false(ok);
		assert_error(err, v->code, v->err);
		assert_null(cfg.msg_id);
		assert_null(cfg.entries);
		return;
	}
	if (!ok)
		fail_msg("rejected: %s", err->message);
	assert_string_equal(cfg.msg_id, MSG3);
	assert_string_equal(cfg.gateway_id, GW);
	assert_int_equal(cfg.event_time_us, INT64_C(1714554000) * SEC);
	assert_int_equal(cfg.n_entries, v->n_entries);
	for (size_t i = 0; i < cfg.n_entries; i++)
		assert_int_equal(rl_payload_config_key_validate(cfg.entries[i].key),
				 0);
}

/* the base config message: entries in order with their types */
static void test_config_types(void **state)
{
	g_auto(RlConfigMsg) cfg = { 0 };

	(void) state;
	assert_true(rl_payload_parse_config(CONFIG_BASE, strlen(CONFIG_BASE),
					    &cfg, NULL));
	assert_int_equal(cfg.n_entries, 4);
	assert_string_equal(cfg.entries[0].key, "rules.severe_pain_score");
	assert_int_equal(cfg.entries[0].value.type, RL_CONFIG_INT);
	assert_int_equal(cfg.entries[0].value.u.i, 7);
	assert_string_equal(cfg.entries[1].key, "rules.rise_factor");
	assert_int_equal(cfg.entries[1].value.type, RL_CONFIG_DOUBLE);
	assert_true(cfg.entries[1].value.u.d == 1.5);
	assert_string_equal(cfg.entries[2].key, "fhir.enabled");
	assert_int_equal(cfg.entries[2].value.type, RL_CONFIG_BOOL);
	assert_true(cfg.entries[2].value.u.b);
	assert_string_equal(cfg.entries[3].key, "site.label");
	assert_int_equal(cfg.entries[3].value.type, RL_CONFIG_STRING);
	assert_string_equal(cfg.entries[3].value.u.s, "ward-3");
	/* clear is idempotent */
	rl_config_msg_clear(&cfg);
	rl_config_msg_clear(&cfg);
	rl_config_msg_clear(NULL);
	rl_alert_ack_clear(NULL);
}

/* A string value with control characters (valid JSON, escaped) is
 * accepted, and the config and config_state built from it are valid JSON
 * holding it escaped: json-glib writes \x01..\x1f (but \b \f \n \r \t)
 * raw, and the builders' own check refused that (fuzz-clinic-config). */
static void test_config_control_chars(void **state)
{
	static const char msg[] =
		"{\"schema\":\"rehablink/config/1\","
		"\"msg_id\":\"0d8f6e2b-3c4a-4b5d-8e9f-6a7b8c9d0e1f\","
		"\"event_time\":\"2024-05-01T09:00:00Z\",\"gateway_id\":\"gw-7f3a\","
		"\"settings\":{\"site.label\":\"\\u00e9\\u001f\\u0001x\\n\"}}";
	g_auto(RlConfigMsg) cfg = { 0 };
	g_auto(RlConfigMsg) again = { 0 };
	g_autoptr(GError) err = NULL;
	g_autofree gchar *json = NULL;
	g_autofree gchar *state_json = NULL;
	struct rl_config_state cs = { 0 };
	const struct rl_envelope env = {
		.msg_id = "00000000-0000-4000-8000-000000000000",
		.event_time_us = 0, .time_quality = RL_TIME_SYNCED,
		.received_at_us = 0, .gateway_id = "gw",
	};

	(void) state;
	assert_true(rl_payload_parse_config(msg, strlen(msg), &cfg, NULL));
	assert_string_equal(cfg.entries[0].value.u.s, "\xc3\xa9\x1f\x01x\n");
	json = rl_payload_build_config(&cfg, &err);
	assert_non_null(json);
	assert_non_null(strstr(json, "\\u001f\\u0001x\\n"));
	assert_true(rl_payload_parse_config(json, strlen(json), &again, NULL));
	assert_string_equal(again.entries[0].value.u.s, cfg.entries[0].value.u.s);
	cs.config_msg_id = cfg.msg_id;
	cs.settings = cfg.entries;
	cs.n_settings = cfg.n_entries;
	state_json = rl_payload_build_config_state(&cs, &env, &err);
	assert_non_null(state_json);
	for (const char *p = state_json; *p; p++)
		assert_true((unsigned char) *p >= 0x20);
}

/* duplicate keys: the last value counts, in the first one's place */
static void test_config_duplicate(void **state)
{
	static const char msg[] = "{\"schema\":\"rehablink/config/1\","
		"\"msg_id\":\"" MSG3 "\",\"event_time\":\"2024-05-01T09:00:00Z\","
		"\"gateway_id\":\"" GW "\",\"settings\":{\"a\":1,\"b\":2,\"a\":3}}";
	g_auto(RlConfigMsg) cfg = { 0 };

	(void) state;
	assert_true(rl_payload_parse_config(msg, sizeof(msg) - 1, &cfg, NULL));
	assert_int_equal(cfg.n_entries, 2);
	assert_string_equal(cfg.entries[0].key, "a");
	assert_int_equal(cfg.entries[0].value.u.i, 3);
	assert_string_equal(cfg.entries[1].key, "b");
}

/* every proper prefix of a good message is refused, as bad JSON */
static void test_truncated(void **state)
{
	const bool config = *state != NULL;
	const char *base = config ? CONFIG_BASE : ACK_BASE;
	size_t n = strlen(base);

	for (size_t len = 0; len < n; len++) {
		g_autoptr(GError) err = NULL;
		/* a copy of exactly len bytes, so ASan sees any overread */
		g_autofree gchar *copy = g_memdup2(base, len ? len : 1);
		gboolean ok;

		if (config) {
			g_auto(RlConfigMsg) cfg = { 0 };

			ok = rl_payload_parse_config(copy, len, &cfg, &err);
		} else {
			g_auto(RlAlertAck) ack = { 0 };

			ok = rl_payload_parse_alert_ack(copy, len, &ack, &err);
		}
		if (ok)
			fail_msg("prefix of %zu bytes accepted", len);
		assert_error(err, RL_PAYLOAD_ERROR_BAD_JSON, NULL);
	}
}

struct peek_vec {
	const char *name;
	const char *data;
	size_t len;		/* 0: strlen */
	const char *want;	/* NULL: none */
};

static const struct peek_vec peek_vecs[] = {
	{ "2.11-peek-msg-id-good-ack", ACK_BASE, 0, MSG2 },
	{ "2.11-peek-msg-id-bad-ack", "{\"msg_id\":\"" MSG1 "\",\"at\":5}", 0,
	  MSG1 },
	{ "2.11-peek-msg-id-not-uuid", "{\"msg_id\":\"42\"}", 0, NULL },
	{ "2.11-peek-msg-id-number", "{\"msg_id\":42}", 0, NULL },
	{ "2.11-peek-msg-id-absent", "{\"id\":\"" MSG1 "\"}", 0, NULL },
	{ "2.11-peek-msg-id-array", "[\"" MSG1 "\"]", 0, NULL },
	{ "2.11-peek-msg-id-bad-json", "{\"msg_id\":\"" MSG1 "\"", 0, NULL },
	{ "2.11-peek-msg-id-nul", "{\"msg_id\":\"" MSG1 "\"}\0",
	  sizeof("{\"msg_id\":\"" MSG1 "\"}\0") - 1, NULL },
	{ "2.11-peek-msg-id-empty", "", 0, NULL },
};

static void test_peek(void **state)
{
	const struct peek_vec *v = *state;
	g_autofree gchar *id = rl_payload_peek_msg_id(v->data,
						      v->len ? v->len :
						      strlen(v->data));

	if (v->want)
		assert_string_equal(id, v->want);
	else
		assert_null(id);
}

static void test_names(void **state)
{
	(void) state;
	assert_string_equal(rl_payload_error_code_name(RL_PAYLOAD_ERROR_BAD_JSON),
			    "bad_json");
	assert_string_equal(rl_payload_error_code_name(RL_PAYLOAD_ERROR_BAD_SCHEMA),
			    "bad_schema");
	assert_string_equal(rl_payload_error_code_name(RL_PAYLOAD_ERROR_BAD_VALUE),
			    "bad_value");
	assert_string_equal(rl_payload_error_code_name(RL_PAYLOAD_ERROR_UNKNOWN_ALERT),
			    "unknown_alert");
	assert_string_equal(rl_payload_error_code_name(RL_PAYLOAD_ERROR_BAD_TOPIC),
			    "bad_topic");
	assert_null(rl_payload_error_code_name(RL_PAYLOAD_ERROR_INVALID));
	assert_null(rl_payload_error_code_name((enum rl_payload_error_code) 77));
	assert_string_equal(rl_time_quality_name(RL_TIME_HOLDOVER), "holdover");
	assert_string_equal(rl_time_quality_name(RL_TIME_UNSYNCED), "unsynced");
	assert_null(rl_time_quality_name((enum rl_time_quality) 4));
	assert_string_equal(rl_pain_flag_name(RL_PAIN_CALF_PAIN_SWELLING),
			    "calf_pain_swelling");
	assert_null(rl_pain_flag_name(0));
	assert_null(rl_pain_flag_name(3));
	assert_null(rl_pain_flag_name(0x80));
	assert_string_equal(rl_link_state_name(RL_LINK_NEEDS_REPAIR),
			    "needs-repair");
	assert_string_equal(rl_alert_tier_name(RL_ALERT_EMERGENCY), "emergency");
	assert_string_equal(rl_alert_state_name(RL_ALERT_ACKNOWLEDGED),
			    "acknowledged");
	assert_string_equal(rl_ack_action_name(RL_ACK_RESOLVE), "resolve");
	assert_int_equal(rl_payload_config_key_validate("rules.severe_pain_score"),
			 0);
	assert_int_equal(rl_payload_config_key_validate("rules-x"), -EINVAL);
	assert_int_equal(rl_payload_config_key_validate(NULL), -EINVAL);
}

/* tests/data/clinic: <kind>--valid-N.json parse, <kind>--invalid-N.json fail */
static void test_clinic_examples(void **state)
{
	const char *dirname = TEST_SRCDIR "/tests/data/clinic";
	g_autoptr(GError) err = NULL;
	g_autoptr(GDir) dir = g_dir_open(dirname, 0, &err);
	const char *name;
	int seen = 0;

	(void) state;
	if (!dir)
		fail_msg("%s", err->message);
	while ((name = g_dir_read_name(dir))) {
		g_autofree gchar *path = g_build_filename(dirname, name, NULL);
		g_autofree gchar *data = NULL;
		g_autoptr(GError) perr = NULL;
		bool valid = strstr(name, "--valid-") != NULL;
		gsize len;
		gboolean ok = FALSE;

		if (!g_str_has_suffix(name, ".json"))
			continue;
		assert_true(g_file_get_contents(path, &data, &len, NULL));
		if (g_str_has_prefix(name, "alert_ack--")) {
			g_auto(RlAlertAck) ack = { 0 };

			ok = rl_payload_parse_alert_ack(data, len, &ack, &perr);
		} else if (g_str_has_prefix(name, "config--")) {
			g_auto(RlConfigMsg) cfg = { 0 };

			ok = rl_payload_parse_config(data, len, &cfg, &perr);
		} else {
			fail_msg("%s: not an alert_ack or config example", name);
		}
		if (valid && !ok)
			fail_msg("%s: rejected: %s", name, perr->message);
		if (!valid && ok)
			fail_msg("%s: accepted", name);
		seen++;
	}
	assert_true(seen >= 8);
}

/* ==== main ================================================================ */

#define GROUP(title, vecs, fn) do {					\
	struct CMUnitTest t_[ARRAY_SIZE(vecs)];				\
	for (size_t i_ = 0; i_ < ARRAY_SIZE(vecs); i_++)		\
		t_[i_] = (struct CMUnitTest){ .name = (vecs)[i_].name,	\
			.test_func = (fn),				\
			.initial_state = (void *) &(vecs)[i_] };	\
	failed += _cmocka_run_group_tests(title, t_, ARRAY_SIZE(t_),	\
					  NULL, NULL);			\
} while (0)

int main(int argc, char **argv)
{
	static const int config_flag = 1;
	const struct CMUnitTest misc[] = {
		{ "2.1-round-trip-every-kind", test_topic_round_trip, NULL, NULL,
		  NULL },
		{ "2.1-kind-properties", test_kind_properties, NULL, NULL, NULL },
		{ "2.2-2.11-names-and-codes", test_names, NULL, NULL, NULL },
		{ "2.9-config-types-in-order", test_config_types, NULL, NULL,
		  NULL },
		{ "2.9-config-control-characters-escaped",
		  test_config_control_chars, NULL, NULL, NULL },
		{ "2.9-config-duplicate-key-keeps-first-place",
		  test_config_duplicate, NULL, NULL, NULL },
		{ "2.8-alert-ack-truncated-every-prefix", test_truncated, NULL,
		  NULL, NULL },
		{ "2.9-config-truncated-every-prefix", test_truncated, NULL,
		  NULL, (void *) &config_flag },
		{ "2.8-2.9-clinic-examples", test_clinic_examples, NULL, NULL,
		  NULL },
	};
	int failed = 0;

	if (argc == 3 && strcmp(argv[1], "--emit") == 0)
		return emit(argv[2]);
	if (argc != 1) {
		fprintf(stderr, "usage: %s [--emit DIR]\n", argv[0]);
		return 2;
	}

	GROUP("2.1 topics: build", topic_build_vecs, test_topic_build);
	GROUP("2.1 topics: parse", topic_parse_vecs, test_topic_parse);
	GROUP("2.1 topics: filters", filter_vecs, test_filter);
	GROUP("2.2 envelope: time format", time_fmt_vecs, test_time_format);
	GROUP("2.2 envelope: time parse", time_parse_vecs, test_time_parse);
	GROUP("2.2 envelope: uuid", uuid_vecs, test_uuid);
	GROUP("2.2-2.12 builders", build_vecs, test_build);
	GROUP("2.8 alert ack parser", ack_vecs, test_parse_ack);
	GROUP("2.9 config parser", config_vecs, test_parse_config);
	GROUP("2.11 peek msg_id", peek_vecs, test_peek);
	failed += cmocka_run_group_tests_name("misc", misc, NULL, NULL);
	return failed ? 1 : 0;
}
