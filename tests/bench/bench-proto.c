/* SPDX-License-Identifier: MIT */
/*
 * Codec and payload rates, for the table in docs/performance.md, where
 * tests/bench/report.py sets them against the ceilings measured in the
 * same run. Each measure runs for about half a second of CPU time.
 * Prints "key value" lines.
 */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "payload.h"
#include "wearable.h"

#define RUN_US 500000

static volatile uint64_t sink;

typedef void (*bench_fn)(void);

/* calls fn in growing rounds until RUN_US passed; returns calls per second */
static double rate(bench_fn fn)
{
	uint64_t calls = 0, round = 64;
	gint64 t0 = g_get_monotonic_time(), t;

	do {
		for (uint64_t i = 0; i < round; i++)
			fn();
		calls += round;
		round *= 2;
		t = g_get_monotonic_time();
	} while (t - t0 < RUN_US);
	return (double) calls * 1e6 / (double) (t - t0);
}

static uint8_t batch[WB_ATT_MAX_VALUE];
static size_t batch_len;
static struct wb_record four[4];

static void decode_batch(void)
{
	struct wb_record out[4];
	int n = wb_batch_decode(batch, batch_len, out, 4, NULL);

	sink += (uint64_t) n + out[0].seq;
}

static void decode_record(void)
{
	struct wb_record r;
	size_t used;

	if (wb_record_decode(batch + WB_BATCH_HEADER_LEN,
			     batch_len - WB_BATCH_HEADER_LEN, &r, &used, NULL) == 0)
		sink += r.seq;
}

static void encode_batch(void)
{
	uint8_t buf[WB_ATT_MAX_VALUE];

	four[0].seq++;
	sink += (uint64_t) wb_batch_encode(four, 4, buf, sizeof(buf));
}

static const struct rl_envelope env = {
	.msg_id = "0f8b3a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
	.event_time_us = INT64_C(1795478400000000), .time_quality = RL_TIME_SYNCED,
	.received_at_us = INT64_C(1795478400850000), .gateway_id = "gw-bench",
	.patient_id = "p-bench",
};

static void build_pain(void)
{
	struct rl_pain p = { "w-1", 41234, 8, RL_PAIN_MEDICATION_TAKEN };
	gchar *json = rl_payload_build_pain(&p, &env, NULL);

	sink += strlen(json);
	g_free(json);
}

static void build_aggregate(void)
{
	struct rl_aggregate a = {
		.aggregate_id = "p-bench:minute:1795478400", .revision = 1,
		.start_us = env.event_time_us, .end_us = env.event_time_us + 60000000,
		.steps = 62, .walking_minutes = 1, .cadence_spm = 62,
		.posture_s = { .flexed = 60 }, .flexed_over_30_s = 60, .records = 2,
	};
	gchar *json = rl_payload_build_aggregate_minute(&a, &env, NULL);

	sink += strlen(json);
	g_free(json);
}

static struct rl_pain_point pains[24];

static void build_alert(void)
{
	struct rl_alert_trigger trig = { "score", 8 };
	struct rl_alert a = {
		.alert_id = "severe_pain:p-bench:1", .notification = 1,
		.rule = "severe_pain", .tier = RL_ALERT_URGENT, .state = RL_ALERT_OPEN,
		.raised_at_us = env.received_at_us, .trigger = &trig, .n_trigger = 1,
		.context = { pains, 24, 1200, 800, 1430, 71, 1 },
	};
	gchar *json = rl_payload_build_alert(&a, &env, NULL);

	sink += strlen(json);
	g_free(json);
}

static gchar *ack_json;

static void parse_ack(void)
{
	struct rl_alert_ack ack;

	if (rl_payload_parse_alert_ack(ack_json, strlen(ack_json), &ack, NULL)) {
		sink += strlen(ack.alert_id);
		rl_alert_ack_clear(&ack);
	}
}

int main(void)
{
	for (int i = 0; i < 4; i++) {
		four[i] = (struct wb_record) {
			.type = WB_RECORD_POSTURE, .version = WB_RECORD_VERSION,
			.seq = 1000 + (uint32_t) i, .time = 800000000,
			.time_quality = WB_TIME_SYNCED,
			.u.posture = { 350, 15, WB_POSTURE_FLEXED, 60 },
		};
	}
	four[3].type = WB_RECORD_PAIN;
	four[3].u.pain = (struct wb_pain) { 8, WB_PAIN_MEDICATION };
	ssize_t n = wb_batch_encode(four, 4, batch, sizeof(batch));
	if (n < 0)
		return 1;
	batch_len = (size_t) n;
	for (int i = 0; i < 24; i++)
		pains[i] = (struct rl_pain_point) { env.event_time_us - (24 - i) * INT64_C(3600000000), i % 11 };
	struct rl_alert_ack ack = {
		.msg_id = (char *) "9c0e1f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a",
		.event_time_us = env.event_time_us, .gateway_id = (char *) "gw-bench",
		.alert_id = (char *) "severe_pain:p-bench:1", .by = (char *) "dr-k",
		.at_us = env.event_time_us, .note = (char *) "called the patient",
		.action = RL_ACK_ACKNOWLEDGE,
	};
	ack_json = rl_payload_build_alert_ack(&ack, NULL);
	if (!ack_json)
		return 1;

	printf("wb_batch_decode_per_s %.0f\n", rate(decode_batch));
	printf("wb_record_decode_per_s %.0f\n", rate(decode_record));
	printf("wb_batch_encode_per_s %.0f\n", rate(encode_batch));
	printf("payload_pain_per_s %.0f\n", rate(build_pain));
	printf("payload_aggregate_per_s %.0f\n", rate(build_aggregate));
	printf("payload_alert_per_s %.0f\n", rate(build_alert));
	printf("payload_ack_parse_per_s %.0f\n", rate(parse_ack));
	g_free(ack_json);
	return 0;
}
