/* SPDX-License-Identifier: MIT */
/*
 * make demo, until rehablinkd exists: both wire contracts at work.
 *
 * Plays a wearable through day 3 after surgery (lying, hunched walks, pain
 * rising from 3 to 8, a red flag), encodes its records exactly as it would
 * notify them over BLE (proto/wearable.c, batches packed to a 244-byte ATT
 * payload), decodes and validates them as the gateway does, and renders
 * what the clinic receives (proto/topic.c, proto/payload.c): pain reports,
 * per-minute aggregates of one walk, the day summary, a FHIR observation,
 * statuses, and alerts. The alert decision here is a placeholder (score >= 7
 * or any red flag); the escalation engine replaces it.
 *
 * Writes one line per MQTT message to --messages: topic TAB retained|- TAB json.
 */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "payload.h"
#include "topic.h"
#include "wearable.h"

#define GATEWAY  "gw-demo-01"
#define PATIENT  "p-7f3a"
#define WEARABLE "w-trunk-1"
#define MTU_PAYLOAD 244

/* 2026-11-24 00:00 UTC: day 3 after a surgery on the 21st */
#define DAY0_UNIX INT64_C(1795478400)

static FILE *messages;
static unsigned int msg_counter;

static void msg_id(char buf[37])
{
	/* deterministic, so a demo run is reproducible */
	snprintf(buf, 37, "6a1c0000-0000-4000-8000-%012x", ++msg_counter);
}

static void emit(enum rl_topic_kind kind, const char *json)
{
	struct rl_topic_ids ids = { GATEWAY, PATIENT, WEARABLE };
	char topic[RL_TOPIC_BUF_SIZE];

	if (rl_topic_build(kind, &ids, topic, sizeof(topic)) < 0)
		g_error("topic for %s", rl_topic_kind_name(kind));
	fprintf(messages, "%s\t%s\t%s\n", topic,
		rl_topic_kind_is_retained(kind) ? "retained" : "-", json);
}

/* error is read only after the builder ran (an argument would be
 * evaluated in unspecified order against the builder's call) */
static void must(gchar *json, GError **error, enum rl_topic_kind kind)
{
	if (!json)
		g_error("building %s: %s", rl_topic_kind_name(kind),
			*error ? (*error)->message : "no error set");
	emit(kind, json);
	g_free(json);
}

/* ---- the wearable: one day of records ----------------------------------- */

static struct wb_record recs[4096];
static size_t n_recs;
static uint32_t next_seq = 41000;	/* survives reboots: day 3 starts high */

static struct wb_record *add(enum wb_record_type type, int64_t unix_s)
{
	struct wb_record *r = &recs[n_recs++];

	memset(r, 0, sizeof(*r));
	r->type = type;
	r->version = WB_RECORD_VERSION;
	r->seq = next_seq++;
	r->time = (uint32_t) (unix_s - WB_EPOCH_UNIX);
	r->time_quality = WB_TIME_SYNCED;
	return r;
}

static void posture(int64_t t, enum wb_posture_class c, int flex_ddeg)
{
	struct wb_record *r = add(WB_RECORD_POSTURE, t);

	r->u.posture.cls = c;
	r->u.posture.flexion_ddeg = (int16_t) flex_ddeg;
	r->u.posture.tilt_ddeg = 15;
	r->u.posture.duration_s = 60;
}

static void steps(int64_t t, int n)
{
	struct wb_record *r = add(WB_RECORD_STEPS, t);

	r->u.steps.steps = (uint16_t) n;
	r->u.steps.duration_s = 60;
}

static void pain(int64_t t, int score, unsigned int flags)
{
	struct wb_record *r = add(WB_RECORD_PAIN, t);

	r->u.pain.score = (uint8_t) score;
	r->u.pain.flags = (uint16_t) flags;
}

static const struct {
	int minute, score;
	unsigned int flags;
} pains[] = {
	{ 8 * 60, 3, 0 },
	{ 11 * 60, 4, WB_PAIN_MEDICATION },
	{ 15 * 60, 6, WB_PAIN_MEDICATION },
	{ 17 * 60 + 20, 8, 0 },
	{ 20 * 60 + 10, 7, WB_PAIN_CALF | WB_PAIN_ONE_SIDED },
};

static void simulate_day(void)
{
	size_t next_pain = 0;

	for (int m = 0; m < 24 * 60; m++) {
		int64_t t = DAY0_UNIX + m * 60;
		int h = m / 60;
		/* walks: 09:00, 12:30, 16:00, 19:00, 10 min each, hunched */
		bool walking = (m >= 540 && m < 550) || (m >= 750 && m < 760) ||
			       (m >= 960 && m < 970) || (m >= 1140 && m < 1150);

		if (walking) {
			posture(t, WB_POSTURE_FLEXED, 350 + (m % 7) * 30);
			steps(t, 55 + (m % 5) * 4);
		} else if (h < 7 || h >= 22) {
			posture(t, WB_POSTURE_LYING, 870);
		} else if (h % 3 == 0) {
			posture(t, WB_POSTURE_UPRIGHT, 80);
		} else {
			posture(t, WB_POSTURE_RECLINED, -250);
		}
		/* the patient enters a report: it takes the next seq */
		if (next_pain < G_N_ELEMENTS(pains) && pains[next_pain].minute == m) {
			pain(t + 20, pains[next_pain].score, pains[next_pain].flags);
			next_pain++;
		}
	}
}

/* ---- the gateway: decode, then render ------------------------------------ */

struct day {
	int flexed_s_by_minute[24 * 60];	/* seconds flexed > 30 deg */
	enum wb_posture_class still_cls;
	int64_t still_run, longest_still;
	int64_t steps, walking_min, flexed30, flexed60, records;
	struct rl_posture_seconds ps;
	struct rl_pain_point pain_pts[16];
	size_t n_pains;
};

static void envelope(struct rl_envelope *env, char id[37], int64_t t_us)
{
	msg_id(id);
	*env = (struct rl_envelope) {
		.msg_id = id, .event_time_us = t_us, .time_quality = RL_TIME_SYNCED,
		.received_at_us = t_us + 850000, .gateway_id = GATEWAY,
		.patient_id = PATIENT,
	};
}

static int64_t flexed_last_2h(const struct day *d, int64_t t_us)
{
	int64_t end = (t_us / 1000000 - DAY0_UNIX) / 60, sum = 0;

	for (int64_t m = end - 120; m < end; m++)
		if (m >= 0 && m < 24 * 60)
			sum += d->flexed_s_by_minute[m];
	return sum;
}

static void publish_pain(const struct wb_record *r, struct day *d, int64_t *alerts)
{
	char id[37];
	struct rl_envelope env;
	int64_t t_us = ((int64_t) r->time + WB_EPOCH_UNIX) * 1000000;
	GError *error = NULL;
	struct rl_pain p = { WEARABLE, r->seq, r->u.pain.score, r->u.pain.flags };

	envelope(&env, id, t_us);
	must(rl_payload_build_pain(&p, &env, &error), &error, RL_TOPIC_PAIN);
	d->pain_pts[d->n_pains++] = (struct rl_pain_point) { t_us, r->u.pain.score };

	char source_id[64];
	snprintf(source_id, sizeof(source_id), "%s:%u", WEARABLE, r->seq);
	struct rl_fhir_observation obs = { .kind = RL_FHIR_PAIN, .source_id = source_id,
					   .effective_us = t_us, .value = r->u.pain.score };
	envelope(&env, id, t_us);
	must(rl_payload_build_fhir_observation(&obs, &env, &error), &error,
	     RL_TOPIC_FHIR_OBSERVATION);

	bool red = r->u.pain.flags & WB_PAIN_RED_FLAGS;
	if (!red && r->u.pain.score < 7)
		return;
	/* placeholder decision: the escalation engine (issue 5) replaces it */
	char alert_id[64];
	snprintf(alert_id, sizeof(alert_id), "%s:%s:%" G_GINT64_FORMAT,
		 red ? "red_flag" : "severe_pain", PATIENT, ++*alerts);
	struct rl_alert_trigger trig[2] = {
		{ "score", r->u.pain.score },
		{ "red_flags", (double) (r->u.pain.flags & WB_PAIN_RED_FLAGS) },
	};
	struct rl_alert a = {
		.alert_id = alert_id, .notification = 1,
		.rule = red ? "red_flag" : "severe_pain",
		.tier = red ? RL_ALERT_EMERGENCY : RL_ALERT_URGENT,
		.state = RL_ALERT_OPEN, .raised_at_us = t_us + 850000,
		.trigger = trig, .n_trigger = red ? 2 : 1,
		.context = {
			.pain_24h = d->pain_pts, .n_pain_24h = d->n_pains,
			.flexed_s_2h = flexed_last_2h(d, t_us), .steps_today = d->steps,
			/* the demo has no day before */
			.steps_yesterday = RL_NONE, .battery_pct = 71, .data_age_s = 1,
		},
	};
	envelope(&env, id, t_us);
	must(rl_payload_build_alert(&a, &env, &error), &error, RL_TOPIC_ALERT);
	printf("  gateway: pain %d%s at seq %u -> %s alert\n", r->u.pain.score,
	       red ? " with a red flag" : "", r->seq, rl_alert_tier_name(a.tier));
}

static void account(const struct wb_record *r, struct day *d)
{
	d->records++;
	switch (r->type) {
	case WB_RECORD_POSTURE: {
		int64_t s = r->u.posture.duration_s;
		int f = r->u.posture.flexion_ddeg;

		switch (r->u.posture.cls) {
		case WB_POSTURE_UPRIGHT: d->ps.upright += s; break;
		case WB_POSTURE_FLEXED: d->ps.flexed += s; break;
		case WB_POSTURE_RECLINED: d->ps.reclined += s; break;
		case WB_POSTURE_LYING: d->ps.lying += s; break;
		case WB_POSTURE_UNKNOWN: d->ps.unknown += s; break;
		}
		if (r->u.posture.cls != WB_POSTURE_LYING && f > 300) {
			int64_t minute = ((int64_t) r->time + WB_EPOCH_UNIX - DAY0_UNIX) / 60;

			d->flexed30 += s;
			if (minute >= 0 && minute < 24 * 60)
				d->flexed_s_by_minute[minute] += (int) s;
		}
		/* a still bout: the same resting class, no steps */
		if (r->u.posture.cls == d->still_cls && r->u.posture.cls != WB_POSTURE_FLEXED)
			d->still_run += s;
		else
			d->still_run = r->u.posture.cls == WB_POSTURE_FLEXED ? 0 : s;
		d->still_cls = r->u.posture.cls;
		if (d->still_run > d->longest_still)
			d->longest_still = d->still_run;
		if (r->u.posture.cls != WB_POSTURE_LYING && f > 600)
			d->flexed60 += s;
		break;
	}
	case WB_RECORD_STEPS:
		d->steps += r->u.steps.steps;
		if (r->u.steps.steps > 0) {
			d->walking_min++;
			d->still_run = 0;
		}
		break;
	case WB_RECORD_PAIN:
	case WB_RECORD_STATUS:
		break;
	}
}

static void publish_walk_minutes(void)
{
	/* the 09:00 walk as per-minute aggregates (window = one minute) */
	for (int m = 540; m < 550; m++) {
		int64_t start = (DAY0_UNIX + m * 60) * 1000000;
		char agg_id[64], id[37];
		struct rl_envelope env;
		GError *error = NULL;
		int n = 55 + (m % 5) * 4;

		snprintf(agg_id, sizeof(agg_id), "%s:minute:%" G_GINT64_FORMAT,
			 PATIENT, start / 1000000);
		struct rl_aggregate a = {
			.aggregate_id = agg_id, .revision = 1, .start_us = start,
			.end_us = start + 60000000, .steps = n, .walking_minutes = 1,
			.cadence_spm = n, .posture_s = { .flexed = 60 },
			.flexed_over_30_s = 60, .flexed_over_60_s = 0,
			.longest_still_s = 0, .records = 2,
		};
		envelope(&env, id, start + 60000000);
		must(rl_payload_build_aggregate_minute(&a, &env, &error), &error,
		     RL_TOPIC_AGGREGATE_MINUTE);
	}
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	GOptionEntry entries[] = {
		{ "messages", 0, 0, G_OPTION_ARG_FILENAME, &path, "write MQTT messages here", "FILE" },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	g_autoptr(GOptionContext) ctx = g_option_context_new("- rehablink protocol demo");
	g_autoptr(GError) error = NULL;

	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &error) || !path) {
		fprintf(stderr, "protodemo: %s\n", error ? error->message : "--messages FILE needed");
		return 2;
	}
	messages = fopen(path, "w");
	if (!messages) {
		fprintf(stderr, "protodemo: %s: %s\n", path, g_strerror(errno));
		return 1;
	}

	simulate_day();
	printf("wearable: day 3 after surgery, %zu records (seq %u..%u)\n", n_recs,
	       recs[0].seq, recs[n_recs - 1].seq);

	/* over the air: batches as big as one 244-byte notification allows */
	uint8_t air[MTU_PAYLOAD];
	size_t sent = 0, notifications = 0, bytes = 0;
	struct day d = { 0 };
	int64_t alerts = 0;
	while (sent < n_recs) {
		size_t k = wb_batch_fit(&recs[sent], n_recs - sent, sizeof(air));
		if (k > WB_BATCH_MAX)
			k = WB_BATCH_MAX;
		ssize_t len = wb_batch_encode(&recs[sent], k, air, sizeof(air));
		if (len < 0)
			g_error("encode: %s", wb_strerror((int) len));
		notifications++;
		bytes += (size_t) len;

		/* the gateway's side of the air */
		struct wb_batch_iter it;
		struct wb_record r;
		struct wb_err err;
		int rc;
		if (wb_batch_init(&it, air, (size_t) len, &err) < 0)
			g_error("batch header");
		while ((rc = wb_batch_next(&it, &r, &err)) == 1) {
			if (!wb_record_equal(&r, &recs[sent + it.index - 1]))
				g_error("record %u differs after the air", r.seq);
			account(&r, &d);
			if (r.type == WB_RECORD_PAIN)
				publish_pain(&r, &d, &alerts);
		}
		if (rc < 0)
			g_error("decode: %s at byte %zu (%s)", wb_strerror(rc), err.offset, err.field);
		sent += k;
	}
	printf("air: %zu notifications, %zu bytes, every record decoded equal to what was sent\n",
	       notifications, bytes);

	/* a malformed notification: rejected with what and where */
	uint8_t bad[32];
	size_t last_pain = n_recs - 1;
	while (recs[last_pain].type != WB_RECORD_PAIN)
		last_pain--;
	ssize_t blen = wb_batch_encode(&recs[last_pain], 1, bad, sizeof(bad));
	bad[WB_BATCH_HEADER_LEN + WB_RECORD_HEADER_LEN] = 11;	/* pain score 11 */
	struct wb_record r;
	struct wb_err err;
	int rc = wb_batch_decode(bad, (size_t) blen, &r, 1, &err);
	if (rc != -ERANGE)
		g_error("a pain score of 11 was not rejected");
	printf("gateway: a corrupted notification is rejected: %s, field %s at byte %zu\n",
	       wb_strerror(rc), err.field, err.offset);

	publish_walk_minutes();

	char id[37], agg_id[64];
	struct rl_envelope env;
	GError *e = NULL;
	snprintf(agg_id, sizeof(agg_id), "%s:day:2026-11-24", PATIENT);
	struct rl_aggregate_day day = {
		.agg = {
			.aggregate_id = agg_id, .revision = 1,
			.start_us = DAY0_UNIX * 1000000,
			.end_us = (DAY0_UNIX + 86400) * 1000000, .steps = d.steps,
			.walking_minutes = d.walking_min,
			.cadence_spm = d.walking_min ? (int) (d.steps / d.walking_min) : RL_NONE,
			.posture_s = d.ps, .flexed_over_30_s = d.flexed30,
			.flexed_over_60_s = d.flexed60, .longest_still_s = d.longest_still,
			.records = d.records,
		},
		.post_op_day = 3, .local_date = "2026-11-24", .utc_offset_min = 60,
	};
	envelope(&env, id, (DAY0_UNIX + 86400) * 1000000);
	must(rl_payload_build_aggregate_day(&day, &env, &e), &e, RL_TOPIC_AGGREGATE_DAY);

	struct rl_fhir_observation obs = {
		.kind = RL_FHIR_DAILY_STEPS, .source_id = agg_id,
		.effective_us = DAY0_UNIX * 1000000,
		.effective_end_us = (DAY0_UNIX + 86400) * 1000000, .value = d.steps,
	};
	envelope(&env, id, (DAY0_UNIX + 86400) * 1000000);
	must(rl_payload_build_fhir_observation(&obs, &env, &e), &e, RL_TOPIC_FHIR_OBSERVATION);

	struct rl_wearable_status ws = {
		.alias = WEARABLE, .link = RL_LINK_LIVE, .battery_pct = 71,
		.last_seen_us = (DAY0_UNIX + 86400) * 1000000, .freshness_s = 1,
		.last_seq = recs[n_recs - 1].seq, .storage_pct = 3,
	};
	envelope(&env, id, (DAY0_UNIX + 86400) * 1000000);
	must(rl_payload_build_wearable_status(&ws, &env, &e), &e, RL_TOPIC_WEARABLE_STATUS);

	struct rl_gateway_status gs = {
		.state = RL_GATEWAY_ONLINE, .version = "0.1.0", .uptime_s = 86400,
		.clock_synced = true, .outbox_depth = 0, .oldest_age_s = RL_NONE,
		.wearables = 1,
	};
	envelope(&env, id, (DAY0_UNIX + 86400) * 1000000);
	must(rl_payload_build_gateway_status(&gs, &env, &e), &e, RL_TOPIC_GATEWAY_STATUS);

	printf("gateway: day summary: %" G_GINT64_FORMAT " steps, %" G_GINT64_FORMAT
	       " walking minutes, %" G_GINT64_FORMAT " min flexed > 30 deg, %" G_GINT64_FORMAT
	       " alerts\n", d.steps, d.walking_min, d.flexed30 / 60, alerts);
	printf("gateway: %u MQTT messages for the clinic\n", msg_counter);
	fclose(messages);
	return 0;
}
