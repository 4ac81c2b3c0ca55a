/* SPDX-License-Identifier: MIT */
/*
 * gateway/aggregate.c: minute and day windows from records, with scripted
 * time and explicit time zones (tzdata: Europe/Berlin, America/Santiago,
 * UTC).
 *
 * Every window emitted in any test is held to the ranges the payload
 * builders enforce (proto/payload.c, check_aggregate) and to the
 * posture seconds adding up to the window (docs/protocol.md 2.5).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <glib.h>

#include "aggregate.h"
#include "wearable.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SEC(x) ((int64_t) (x) * G_USEC_PER_SEC)
#define T0 INT64_C(1714521600)		/* 2024-05-01T00:00:00Z */
#define DAY INT64_C(86400)
#define GRACE 5				/* s, the default */
#define WEARABLE "w1"

/* ---- fixture: an aggregator recording what it emits ---- */

struct fx {
	struct gw_agg_config cfg;
	GTimeZone *tz;
	GwAgg *agg;
	GPtrArray *out;			/* struct gw_agg_window, copies */
	uint32_t seq;
};

/* The builders' ranges (payload.c check_aggregate and the day fields). */
static void check_window(const struct gw_agg_window *w)
{
	const struct rl_aggregate *a = &w->day.agg;
	const struct rl_posture_seconds *p = &a->posture_s;
	int64_t len;

	assert_ptr_equal(a->aggregate_id, w->aggregate_id);
	assert_int_equal(a->revision, 0);
	assert_true(strlen(w->aggregate_id) >= 1 && strlen(w->aggregate_id) <= 128);
	for (const char *c = w->aggregate_id; *c; c++)
		assert_true(g_ascii_isalnum(*c) || strchr("_.:-", *c));
	assert_true(a->start_us >= 0 && a->end_us > a->start_us);
	assert_int_equal((a->end_us - a->start_us) % G_USEC_PER_SEC, 0);
	len = (a->end_us - a->start_us) / G_USEC_PER_SEC;
	if (w->kind == GW_AGG_MINUTE) {
		assert_int_equal(len, 60);
		assert_int_equal(a->start_us % SEC(60), 0);
		assert_null(w->day.local_date);
	} else {
		assert_true(len >= 23 * 3600 && len <= 25 * 3600);
		assert_ptr_equal(w->day.local_date, w->local_date);
		assert_int_equal(strlen(w->local_date), 10);
		assert_true(w->day.utc_offset_min >= -840 && w->day.utc_offset_min <= 840);
		assert_true(w->day.post_op_day == RL_NONE ||
			    (w->day.post_op_day >= 0 && w->day.post_op_day <= 3650));
	}
	assert_true(a->steps >= 0 && a->steps <= 5 * len);
	assert_true(a->walking_minutes >= 0 && a->walking_minutes <= (len + 59) / 60);
	assert_true(a->cadence_spm == RL_NONE ||
		    (a->cadence_spm >= 0 && a->cadence_spm <= 300));
	assert_true((a->cadence_spm == RL_NONE) == (a->walking_minutes == 0));
	assert_true(p->upright >= 0 && p->upright <= len);
	assert_true(p->flexed >= 0 && p->flexed <= len);
	assert_true(p->reclined >= 0 && p->reclined <= len);
	assert_true(p->lying >= 0 && p->lying <= len);
	assert_true(p->unknown >= 0 && p->unknown <= len);
	assert_int_equal(p->upright + p->flexed + p->reclined + p->lying + p->unknown, len);
	assert_true(a->flexed_over_30_s >= 0 && a->flexed_over_30_s <= len);
	assert_true(a->flexed_over_60_s >= 0 && a->flexed_over_60_s <= a->flexed_over_30_s);
	assert_true(a->longest_still_s >= 0 && a->longest_still_s <= len);
	assert_true(a->records >= 0 && a->records <= INT32_MAX);
	assert_false(wb_seq_after(w->first_seq, w->last_seq));
}

static void on_emit(const struct gw_agg_window *w, void *user_data)
{
	struct fx *f = user_data;
	struct gw_agg_window *c;

	check_window(w);
	c = g_memdup2(w, sizeof *w);
	c->day.agg.aggregate_id = c->aggregate_id;
	if (w->day.local_date)
		c->day.local_date = c->local_date;
	g_ptr_array_add(f->out, c);
}

static const struct gw_agg_ops ops = { .emit = on_emit };

/* Defaults, the zone named; change f->cfg, then fx_start. */
static void fx_init(struct fx *f, const char *tz)
{
	memset(f, 0, sizeof *f);
	gw_agg_config_init(&f->cfg);
	f->tz = g_time_zone_new_identifier(tz);
	assert_non_null(f->tz);
	f->cfg.tz = f->tz;
	f->out = g_ptr_array_new_with_free_func(g_free);
	f->seq = 100;
}

static void fx_start(struct fx *f)
{
	f->agg = gw_agg_new(WEARABLE, &f->cfg, &ops, f);
	assert_non_null(f->agg);
}

static void fx_fini(struct fx *f)
{
	g_clear_pointer(&f->agg, gw_agg_free);
	g_clear_pointer(&f->out, g_ptr_array_unref);
	g_clear_pointer(&f->tz, g_time_zone_unref);
}

static struct wb_record posture(uint32_t seq, enum wb_posture_class cls,
				int flexion, unsigned int dur)
{
	struct wb_record r = {
		.type = WB_RECORD_POSTURE, .version = WB_RECORD_VERSION, .seq = seq,
		.time_quality = WB_TIME_SYNCED,
	};

	r.u.posture.cls = cls;
	r.u.posture.flexion_ddeg = (int16_t) flexion;
	r.u.posture.duration_s = (uint16_t) dur;
	return r;
}

static struct wb_record steps(uint32_t seq, unsigned int n, unsigned int dur)
{
	struct wb_record r = {
		.type = WB_RECORD_STEPS, .version = WB_RECORD_VERSION, .seq = seq,
		.time_quality = WB_TIME_SYNCED,
	};

	r.u.steps.steps = (uint16_t) n;
	r.u.steps.duration_s = (uint16_t) dur;
	return r;
}

static struct wb_record point(uint32_t seq, enum wb_record_type type)
{
	struct wb_record r = {
		.type = type, .version = WB_RECORD_VERSION, .seq = seq,
		.time_quality = WB_TIME_SYNCED,
	};

	if (type == WB_RECORD_PAIN)
		r.u.pain.score = 4;
	else
		r.u.status.battery_pct = 80;
	return r;
}

/* event at t (s), now in s */
static void add_at(struct fx *f, struct wb_record r, int64_t t, int64_t now)
{
	gw_agg_add(f->agg, &r, SEC(t), RL_TIME_SYNCED, SEC(now));
}

static void add_p(struct fx *f, int64_t t, enum wb_posture_class cls, int flexion,
		  unsigned int dur, int64_t now)
{
	add_at(f, posture(f->seq++, cls, flexion, dur), t, now);
}

static void add_s(struct fx *f, int64_t t, unsigned int n, unsigned int dur, int64_t now)
{
	add_at(f, steps(f->seq++, n, dur), t, now);
}

/* the last emission of the window starting at start_s, and how many */
static const struct gw_agg_window *find(const struct fx *f, enum gw_agg_kind kind,
					int64_t start_s, int *ret_count)
{
	const struct gw_agg_window *last = NULL;
	int n = 0;

	for (guint i = 0; i < f->out->len; i++) {
		const struct gw_agg_window *w = g_ptr_array_index(f->out, i);

		if (w->kind == kind && w->day.agg.start_us == SEC(start_s)) {
			last = w;
			n++;
		}
	}
	if (ret_count)
		*ret_count = n;
	return last;
}

static const struct gw_agg_window *find_one(const struct fx *f, enum gw_agg_kind kind,
					    int64_t start_s)
{
	int n;
	const struct gw_agg_window *w = find(f, kind, start_s, &n);

	assert_int_equal(n, 1);
	return w;
}

static const struct gw_agg_window *find_date(const struct fx *f, const char *date,
					     int *ret_count)
{
	const struct gw_agg_window *last = NULL;
	int n = 0;

	for (guint i = 0; i < f->out->len; i++) {
		const struct gw_agg_window *w = g_ptr_array_index(f->out, i);

		if (w->kind == GW_AGG_DAY && strcmp(w->local_date, date) == 0) {
			last = w;
			n++;
		}
	}
	*ret_count = n;
	return last;
}

/* ---- one minute: table ---- */

struct spec {
	enum wb_record_type type;	/* 0 ends the list */
	int at;				/* s after the minute's start */
	int a, b;			/* posture: class, flexion; steps: count */
	unsigned int dur;
};

struct expect {
	int64_t steps, walking;
	int cadence;
	int64_t up, fl, rec, ly, unk, f30, f60, still, records;
	uint64_t overlaps;
};

static const struct {
	const char *name;
	struct spec recs[4];
	struct expect e;
} minute_cases[] = {
	{ "pain and status: records only",
	  { { WB_RECORD_PAIN, 5, 0, 0, 0 }, { WB_RECORD_STATUS, 50, 0, 0, 0 } },
	  { 0, 0, RL_NONE, 0, 0, 0, 0, 60, 0, 0, 0, 2, 0 } },
	{ "10 steps: a walking minute",
	  { { WB_RECORD_STEPS, 0, 10, 0, 60 } },
	  { 10, 1, 10, 0, 0, 0, 0, 60, 0, 0, 0, 1, 0 } },
	{ "9 steps: not walking",
	  { { WB_RECORD_STEPS, 0, 9, 0, 60 } },
	  { 9, 0, RL_NONE, 0, 0, 0, 0, 60, 0, 0, 0, 1, 0 } },
	{ "three classes",
	  { { WB_RECORD_POSTURE, 0, WB_POSTURE_UPRIGHT, 100, 20 },
	    { WB_RECORD_POSTURE, 20, WB_POSTURE_FLEXED, 450, 10 },
	    { WB_RECORD_POSTURE, 30, WB_POSTURE_LYING, 0, 30 } },
	  { 0, 0, RL_NONE, 20, 10, 0, 30, 0, 10, 0, 30, 3, 0 } },
	{ "steps break the still bout",
	  { { WB_RECORD_POSTURE, 0, WB_POSTURE_UPRIGHT, 0, 60 },
	    { WB_RECORD_STEPS, 20, 12, 0, 10 } },
	  { 12, 1, 12, 60, 0, 0, 0, 0, 0, 0, 30, 2, 0 } },
	{ "a record of 0 steps does not",
	  { { WB_RECORD_POSTURE, 0, WB_POSTURE_RECLINED, 0, 60 },
	    { WB_RECORD_STEPS, 10, 0, 0, 30 } },
	  { 0, 0, RL_NONE, 0, 0, 60, 0, 0, 0, 0, 60, 2, 0 } },
	{ "a gap breaks the bout and counts as unknown",
	  { { WB_RECORD_POSTURE, 0, WB_POSTURE_UPRIGHT, 0, 15 },
	    { WB_RECORD_POSTURE, 20, WB_POSTURE_UPRIGHT, 0, 25 } },
	  { 0, 0, RL_NONE, 40, 0, 0, 0, 20, 0, 0, 25, 2, 0 } },
	{ "a flexion change within a class does not",
	  { { WB_RECORD_POSTURE, 0, WB_POSTURE_FLEXED, 200, 30 },
	    { WB_RECORD_POSTURE, 30, WB_POSTURE_FLEXED, 650, 30 } },
	  { 0, 0, RL_NONE, 0, 60, 0, 0, 0, 30, 30, 60, 2, 0 } },
	{ "class unknown is covered, counted unknown",
	  { { WB_RECORD_POSTURE, 0, WB_POSTURE_UNKNOWN, 0, 60 } },
	  { 0, 0, RL_NONE, 0, 0, 0, 0, 60, 0, 0, 60, 1, 0 } },
	{ "overlapping posture: one reading per second",
	  { { WB_RECORD_POSTURE, 0, WB_POSTURE_UPRIGHT, 0, 60 },
	    { WB_RECORD_POSTURE, 30, WB_POSTURE_FLEXED, 700, 30 } },
	  { 0, 0, RL_NONE, 30, 30, 0, 0, 0, 30, 30, 30, 2, 1 } },
	{ "... whatever the order they come in",
	  { { WB_RECORD_POSTURE, 30, WB_POSTURE_FLEXED, 700, 30 },
	    { WB_RECORD_POSTURE, 0, WB_POSTURE_UPRIGHT, 0, 60 } },
	  { 0, 0, RL_NONE, 30, 30, 0, 0, 0, 30, 30, 30, 2, 1 } },
	{ "overlapping steps: capped at 5/s and 300/min",
	  { { WB_RECORD_STEPS, 0, 300, 0, 60 }, { WB_RECORD_STEPS, 0, 300, 0, 60 } },
	  { 300, 1, 300, 0, 0, 0, 0, 60, 0, 0, 0, 2, 1 } },
	{ "a record running on counts in the next minute, not as a record",
	  { { WB_RECORD_POSTURE, 50, WB_POSTURE_LYING, 0, 20 } },
	  { 0, 0, RL_NONE, 0, 0, 0, 10, 50, 0, 0, 10, 1, 0 } },
};

static void test_minute_sums(void **state)
{
	(void) state;
	for (size_t i = 0; i < ARRAY_SIZE(minute_cases); i++) {
		const struct expect *e = &minute_cases[i].e;
		struct fx f;
		const struct gw_agg_window *w;
		const struct rl_aggregate *a;
		int64_t start = T0 + 60 * (int64_t) i;
		char id[GW_AGG_ID_MAX];
		int n;

		fx_init(&f, "UTC");
		fx_start(&f);
		for (const struct spec *s = minute_cases[i].recs; s->type; s++) {
			struct wb_record r;

			switch (s->type) {
			case WB_RECORD_POSTURE:
				r = posture(f.seq++, (enum wb_posture_class) s->a, s->b, s->dur);
				break;
			case WB_RECORD_STEPS:
				r = steps(f.seq++, (unsigned int) s->a, s->dur);
				break;
			case WB_RECORD_PAIN:
			case WB_RECORD_STATUS:
				r = point(f.seq++, s->type);
				break;
			default:
				fail();
			}
			add_at(&f, r, start + s->at, start + s->at);
		}
		gw_agg_tick(f.agg, SEC(start + 60 + GRACE) + 1);
		w = find(&f, GW_AGG_MINUTE, start, &n);
		print_message("# %s\n", minute_cases[i].name);
		assert_int_equal(n, 1);
		a = &w->day.agg;
		g_snprintf(id, sizeof id, "w1:minute:%" G_GINT64_FORMAT, start);
		assert_string_equal(w->aggregate_id, id);
		assert_int_equal(a->steps, e->steps);
		assert_int_equal(a->walking_minutes, e->walking);
		assert_int_equal(a->cadence_spm, e->cadence);
		assert_int_equal(a->posture_s.upright, e->up);
		assert_int_equal(a->posture_s.flexed, e->fl);
		assert_int_equal(a->posture_s.reclined, e->rec);
		assert_int_equal(a->posture_s.lying, e->ly);
		assert_int_equal(a->posture_s.unknown, e->unk);
		assert_int_equal(a->flexed_over_30_s, e->f30);
		assert_int_equal(a->flexed_over_60_s, e->f60);
		assert_int_equal(a->longest_still_s, e->still);
		assert_int_equal(a->records, e->records);
		assert_int_equal(gw_agg_get_stats(f.agg).overlaps, e->overlaps);
		assert_int_equal(w->quality, RL_TIME_SYNCED);
		assert_false(w->revised);
		assert_int_equal(w->first_seq, 100);
		assert_int_equal(w->last_seq, f.seq - 1);
		fx_fini(&f);
	}
}

/* ---- splitting ---- */

/* A 3600 s steps record starting mid-minute touches 61 minute windows:
 * the parts add up exactly and each is within one step of its share. */
static void test_split_steps_across_minutes(void **state)
{
	static const unsigned int counts[] = { 1, 7, 59, 299, 1000, 3599, 18000 };

	(void) state;
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
		struct fx f;
		int64_t sum = 0, start = T0 + 3600 + 30;

		fx_init(&f, "UTC");
		fx_start(&f);
		add_s(&f, start, counts[i], 3600, start);
		gw_agg_flush(f.agg, SEC(start));
		assert_int_equal(f.out->len, 61 + 1);
		for (int m = 0; m < 61; m++) {
			int64_t ws = T0 + 3600 + 60 * m;
			const struct gw_agg_window *w = find_one(&f, GW_AGG_MINUTE, ws);
			int64_t secs = MIN(ws + 60, start + 3600) - MAX(ws, start);
			double share = (double) counts[i] * (double) secs / 3600.0;

			assert_true((double) w->day.agg.steps > share - 1.0);
			assert_true((double) w->day.agg.steps < share + 1.0);
			assert_int_equal(w->day.agg.records, m == 0 ? 1 : 0);
			assert_int_equal(w->first_seq, 100);
			assert_int_equal(w->last_seq, 100);
			sum += w->day.agg.steps;
		}
		assert_int_equal(sum, counts[i]);
		assert_int_equal(find_one(&f, GW_AGG_DAY, T0)->day.agg.steps, counts[i]);
		fx_fini(&f);
	}
}

static void test_split_posture_across_minutes(void **state)
{
	struct fx f;
	const struct gw_agg_window *w0, *w1;

	(void) state;
	fx_init(&f, "UTC");
	fx_start(&f);
	add_p(&f, T0 + 57, WB_POSTURE_FLEXED, 650, 7, T0 + 64);
	add_s(&f, T0 + 57, 7, 7, T0 + 64);
	gw_agg_tick(f.agg, SEC(T0 + 120 + GRACE) + 1);
	w0 = find_one(&f, GW_AGG_MINUTE, T0);
	w1 = find_one(&f, GW_AGG_MINUTE, T0 + 60);
	assert_int_equal(w0->day.agg.posture_s.flexed, 3);
	assert_int_equal(w1->day.agg.posture_s.flexed, 4);
	assert_int_equal(w0->day.agg.flexed_over_60_s, 3);
	assert_int_equal(w1->day.agg.flexed_over_60_s, 4);
	assert_int_equal(w0->day.agg.steps, 3);	/* floor(7 * 3 / 7) */
	assert_int_equal(w1->day.agg.steps, 4);
	assert_int_equal(w0->day.agg.records, 2);
	assert_int_equal(w1->day.agg.records, 0);
	assert_int_equal(w1->first_seq, 100);
	assert_int_equal(w1->last_seq, 101);
	fx_fini(&f);
}

/* A record across local midnight: in UTC, and in Berlin (CEST, +02:00). */
static void test_split_across_days(void **state)
{
	static const struct {
		const char *tz;
		int64_t midnight;	/* the second day's start */
		const char *d1, *d2;
	} cases[] = {
		{ "UTC", T0, "2024-04-30", "2024-05-01" },
		{ "Europe/Berlin", T0 - 2 * 3600, "2024-04-30", "2024-05-01" },
		{ "America/Santiago", T0 + 4 * 3600, "2024-04-30", "2024-05-01" },
	};

	(void) state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct fx f;
		const struct gw_agg_window *a, *b;
		int64_t t = cases[i].midnight - 30;
		int n;

		fx_init(&f, cases[i].tz);
		fx_start(&f);
		add_p(&f, t, WB_POSTURE_UPRIGHT, 0, 120, t);
		add_s(&f, t, 100, 120, t);
		gw_agg_flush(f.agg, SEC(t));
		a = find_date(&f, cases[i].d1, &n);
		assert_int_equal(n, 1);
		b = find_date(&f, cases[i].d2, &n);
		assert_int_equal(n, 1);
		assert_int_equal(a->day.agg.end_us, SEC(cases[i].midnight));
		assert_int_equal(b->day.agg.start_us, SEC(cases[i].midnight));
		assert_int_equal(a->day.agg.posture_s.upright, 30);
		assert_int_equal(b->day.agg.posture_s.upright, 90);
		assert_int_equal(a->day.agg.steps, 25);
		assert_int_equal(b->day.agg.steps, 75);
		assert_int_equal(a->day.agg.records, 2);
		assert_int_equal(b->day.agg.records, 0);
		assert_int_equal(b->first_seq, 100);
		assert_int_equal(b->last_seq, 101);
		/* the minutes stay UTC minutes: 30 s + 60 s + 30 s */
		assert_int_equal(find_one(&f, GW_AGG_MINUTE, t - 30)->day.agg.posture_s.upright, 30);
		assert_int_equal(find_one(&f, GW_AGG_MINUTE, t + 30)->day.agg.posture_s.upright, 60);
		assert_int_equal(find_one(&f, GW_AGG_MINUTE, t + 90)->day.agg.posture_s.upright, 30);
		assert_int_equal(find_one(&f, GW_AGG_MINUTE, t + 90)->day.agg.records, 0);
		fx_fini(&f);
	}
}

/* ---- walking minutes and cadence over a day ---- */

static void test_walking_and_cadence(void **state)
{
	static const struct {
		int per_min[6];		/* steps in consecutive minutes, -1 ends */
		int64_t walking;
		int cadence;
	} cases[] = {
		{ { 12, 9, 30, 0, 10, 11 }, 4, 16 },	/* 63 / 4 = 15.75 */
		{ { 10, 11, -1 }, 2, 11 },		/* 10.5 rounds up */
		{ { 9, 9, 9, -1 }, 0, RL_NONE },
		{ { 300, 300, 10, -1 }, 3, 203 },	/* 610 / 3 */
	};

	(void) state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct fx f;
		const struct gw_agg_window *d;
		int64_t start = T0 + 8 * 3600;

		fx_init(&f, "UTC");
		fx_start(&f);
		for (int m = 0; m < 6 && cases[i].per_min[m] >= 0; m++) {
			int64_t t = start + 60 * m;

			add_s(&f, t, (unsigned int) cases[i].per_min[m], 60, t + 60);
		}
		gw_agg_flush(f.agg, SEC(start + 600));
		d = find_one(&f, GW_AGG_DAY, T0);
		assert_int_equal(d->day.agg.walking_minutes, cases[i].walking);
		assert_int_equal(d->day.agg.cadence_spm, cases[i].cadence);
		for (int m = 0; m < 6 && cases[i].per_min[m] >= 0; m++) {
			const struct gw_agg_window *w = find_one(&f, GW_AGG_MINUTE,
								 start + 60 * m);
			bool walk = cases[i].per_min[m] >= 10;

			assert_int_equal(w->day.agg.steps, cases[i].per_min[m]);
			assert_int_equal(w->day.agg.walking_minutes, walk ? 1 : 0);
			assert_int_equal(w->day.agg.cadence_spm,
					 walk ? cases[i].per_min[m] : RL_NONE);
		}
		fx_fini(&f);
	}
}

/* Walking minutes are UTC minutes: 20 steps from :30 to :30 are 10 + 10. */
static void test_walking_minutes_are_utc_minutes(void **state)
{
	struct fx f;
	const struct gw_agg_window *d;

	(void) state;
	fx_init(&f, "UTC");
	f.cfg.walking_min_steps = 10;
	fx_start(&f);
	add_s(&f, T0 + 30, 20, 60, T0 + 90);
	gw_agg_flush(f.agg, SEC(T0 + 90));
	d = find_one(&f, GW_AGG_DAY, T0);
	assert_int_equal(d->day.agg.steps, 20);
	assert_int_equal(d->day.agg.walking_minutes, 2);
	assert_int_equal(d->day.agg.cadence_spm, 10);
	fx_fini(&f);

	/* a higher threshold: neither minute walks */
	fx_init(&f, "UTC");
	f.cfg.walking_min_steps = 11;
	fx_start(&f);
	add_s(&f, T0 + 30, 20, 60, T0 + 90);
	gw_agg_flush(f.agg, SEC(T0 + 90));
	d = find_one(&f, GW_AGG_DAY, T0);
	assert_int_equal(d->day.agg.walking_minutes, 0);
	assert_int_equal(d->day.agg.cadence_spm, RL_NONE);
	fx_fini(&f);
}

/* ---- flexion thresholds: strictly above ---- */

static void test_flexed_thresholds(void **state)
{
	static const struct {
		int flexion;
		int64_t over30, over60;
	} cases[] = {
		{ 299, 0, 0 }, { 300, 0, 0 }, { 301, 40, 0 }, { 599, 40, 0 },
		{ 600, 40, 0 }, { 601, 40, 40 }, { 1800, 40, 40 }, { -900, 0, 0 },
	};
	struct fx f;
	int64_t sum30 = 0, sum60 = 0;

	(void) state;
	fx_init(&f, "UTC");
	fx_start(&f);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int64_t t = T0 + 60 * (int64_t) i;

		add_p(&f, t + 10, WB_POSTURE_FLEXED, cases[i].flexion, 40, t + 50);
	}
	gw_agg_flush(f.agg, SEC(T0 + 3600));
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct gw_agg_window *w =
			find_one(&f, GW_AGG_MINUTE, T0 + 60 * (int64_t) i);

		assert_int_equal(w->day.agg.posture_s.flexed, 40);
		assert_int_equal(w->day.agg.flexed_over_30_s, cases[i].over30);
		assert_int_equal(w->day.agg.flexed_over_60_s, cases[i].over60);
		sum30 += cases[i].over30;
		sum60 += cases[i].over60;
	}
	assert_int_equal(find_one(&f, GW_AGG_DAY, T0)->day.agg.flexed_over_30_s, sum30);
	assert_int_equal(find_one(&f, GW_AGG_DAY, T0)->day.agg.flexed_over_60_s, sum60);
	fx_fini(&f);

	/* configured thresholds */
	fx_init(&f, "UTC");
	f.cfg.flexed_30_ddeg = 200;
	f.cfg.flexed_60_ddeg = 400;
	fx_start(&f);
	add_p(&f, T0, WB_POSTURE_FLEXED, 201, 30, T0 + 30);
	add_p(&f, T0 + 30, WB_POSTURE_FLEXED, 401, 30, T0 + 60);
	gw_agg_flush(f.agg, SEC(T0 + 60));
	assert_int_equal(find_one(&f, GW_AGG_MINUTE, T0)->day.agg.flexed_over_30_s, 60);
	assert_int_equal(find_one(&f, GW_AGG_MINUTE, T0)->day.agg.flexed_over_60_s, 30);
	fx_fini(&f);
}

/* ---- the longest still bout of a day spans minutes ---- */

static void test_longest_still_day(void **state)
{
	struct fx f;
	const struct gw_agg_window *d;
	int64_t h8 = T0 + 8 * 3600;

	(void) state;
	fx_init(&f, "UTC");
	fx_start(&f);
	/* upright 08:00-11:00 in three hour records, 20 steps at 09:00 */
	for (int i = 0; i < 3; i++)
		add_p(&f, h8 + 3600 * i, WB_POSTURE_UPRIGHT, 0, 3600, h8);
	add_s(&f, h8 + 3600, 20, 60, h8);
	/* lying 12:00-14:00, then reclined 14:00-14:30: a class change */
	add_p(&f, h8 + 4 * 3600, WB_POSTURE_LYING, 0, 3600, h8);
	add_p(&f, h8 + 5 * 3600, WB_POSTURE_LYING, 0, 3600, h8);
	add_p(&f, h8 + 6 * 3600, WB_POSTURE_RECLINED, 0, 1800, h8);
	gw_agg_flush(f.agg, SEC(h8));
	d = find_one(&f, GW_AGG_DAY, T0);
	/* 08:00-09:00 3600, 09:01-11:00 7140, 12:00-14:00 7200, then 1800 */
	assert_int_equal(d->day.agg.longest_still_s, 7200);
	assert_int_equal(d->day.agg.posture_s.upright, 3 * 3600);
	assert_int_equal(d->day.agg.posture_s.lying, 2 * 3600);
	assert_int_equal(d->day.agg.posture_s.reclined, 1800);
	assert_int_equal(d->day.agg.posture_s.unknown, DAY - 5 * 3600 - 1800);
	assert_int_equal(find_one(&f, GW_AGG_MINUTE, h8 + 3600)->day.agg.longest_still_s, 0);
	assert_int_equal(find_one(&f, GW_AGG_MINUTE, h8 + 3660)->day.agg.longest_still_s, 60);
	fx_fini(&f);

	/* without the steps, the morning bout is the longest: 3 h */
	fx_init(&f, "UTC");
	fx_start(&f);
	for (int i = 0; i < 3; i++)
		add_p(&f, h8 + 3600 * i, WB_POSTURE_UPRIGHT, 0, 3600, h8);
	add_s(&f, h8 + 3600, 0, 60, h8);
	gw_agg_flush(f.agg, SEC(h8));
	assert_int_equal(find_one(&f, GW_AGG_DAY, T0)->day.agg.longest_still_s, 3 * 3600);
	fx_fini(&f);
}

/* ---- emission timing ---- */

static void test_emission_timing(void **state)
{
	struct fx f;
	const struct gw_agg_window *w;
	struct gw_agg_stats st;

	(void) state;
	fx_init(&f, "UTC");
	fx_start(&f);
	assert_int_equal(gw_agg_next_deadline(f.agg), INT64_MAX);
	add_s(&f, T0 + 10, 5, 10, T0 + 20);
	assert_int_equal(gw_agg_next_deadline(f.agg), SEC(T0 + 60 + GRACE) + 1);
	/* a record for the minute within the grace is in its first emission */
	add_s(&f, T0 + 50, 7, 10, T0 + 64);
	gw_agg_tick(f.agg, SEC(T0 + 60 + GRACE));
	assert_int_equal(f.out->len, 0);
	gw_agg_tick(f.agg, SEC(T0 + 60 + GRACE) + 1);
	assert_int_equal(f.out->len, 1);
	w = find_one(&f, GW_AGG_MINUTE, T0);
	assert_int_equal(w->day.agg.steps, 12);
	assert_false(w->revised);
	assert_int_equal(w->first_seq, 100);
	assert_int_equal(w->last_seq, 101);
	/* next: the day's emission, before the minute's forgetting */
	assert_int_equal(gw_agg_next_deadline(f.agg), SEC(T0 + DAY + GRACE) + 1);
	gw_agg_tick(f.agg, SEC(T0 + DAY + GRACE));
	assert_int_equal(f.out->len, 1);
	gw_agg_tick(f.agg, SEC(T0 + DAY + GRACE) + 1);
	assert_int_equal(f.out->len, 2);
	w = find_one(&f, GW_AGG_DAY, T0);
	assert_string_equal(w->aggregate_id, "w1:day:2024-05-01");
	assert_string_equal(w->local_date, "2024-05-01");
	assert_int_equal(w->day.agg.steps, 12);
	assert_int_equal(w->day.utc_offset_min, 0);
	assert_int_equal(w->day.post_op_day, RL_NONE);
	/* then forgetting, at the end + 72 h */
	assert_int_equal(gw_agg_next_deadline(f.agg), SEC(T0 + 60 + 72 * 3600) + 1);
	st = gw_agg_get_stats(f.agg);
	assert_int_equal(st.open_windows, 2);
	assert_int_equal(st.emitted, 2);
	gw_agg_tick(f.agg, SEC(T0 + 60 + 72 * 3600) + 1);
	assert_int_equal(gw_agg_get_stats(f.agg).open_windows, 1);
	gw_agg_tick(f.agg, SEC(T0 + DAY + 72 * 3600) + 1);
	assert_int_equal(gw_agg_get_stats(f.agg).open_windows, 0);
	assert_int_equal(gw_agg_next_deadline(f.agg), INT64_MAX);
	assert_int_equal(f.out->len, 2);
	fx_fini(&f);
}

/* ---- late records: a revision with everything ---- */

static void test_late_record_revises(void **state)
{
	struct fx f;
	const struct gw_agg_window *w;
	struct gw_agg_stats st;
	int n;

	(void) state;
	fx_init(&f, "UTC");
	fx_start(&f);
	add_s(&f, T0 + 10, 5, 10, T0 + 20);
	gw_agg_tick(f.agg, SEC(T0 + 70));
	assert_int_equal(f.out->len, 1);

	/* a history sync, 10 minutes on: two records for the emitted minute */
	add_p(&f, T0 + 20, WB_POSTURE_UPRIGHT, 0, 30, T0 + 600);
	assert_int_equal(f.out->len, 1);	/* not at once: after a grace */
	assert_int_equal(gw_agg_next_deadline(f.agg), SEC(T0 + 600 + GRACE) + 1);
	add_s(&f, T0 + 40, 3, 10, T0 + 602);
	assert_int_equal(gw_agg_next_deadline(f.agg), SEC(T0 + 600 + GRACE) + 1);
	/* and one for a minute never emitted */
	add_p(&f, T0 + 130, WB_POSTURE_LYING, 0, 5, T0 + 603);
	gw_agg_tick(f.agg, SEC(T0 + 600 + GRACE));
	assert_int_equal(f.out->len, 1);
	gw_agg_tick(f.agg, SEC(T0 + 600 + GRACE) + 1);
	assert_int_equal(f.out->len, 2);
	/* the new minute: a grace after its first record */
	gw_agg_tick(f.agg, SEC(T0 + 603 + GRACE));
	assert_int_equal(f.out->len, 2);
	gw_agg_tick(f.agg, SEC(T0 + 603 + GRACE) + 1);
	assert_int_equal(f.out->len, 3);

	w = find(&f, GW_AGG_MINUTE, T0, &n);
	assert_int_equal(n, 2);
	assert_true(w->revised);
	assert_int_equal(w->day.agg.steps, 8);
	assert_int_equal(w->day.agg.posture_s.upright, 30);
	assert_int_equal(w->day.agg.longest_still_s, 20);	/* 20..39 */
	assert_int_equal(w->day.agg.records, 3);
	assert_int_equal(w->first_seq, 100);
	assert_int_equal(w->last_seq, 102);
	w = find_one(&f, GW_AGG_MINUTE, T0 + 120);
	assert_false(w->revised);
	assert_int_equal(w->first_seq, 103);

	st = gw_agg_get_stats(f.agg);
	assert_int_equal(st.emitted, 3);
	assert_int_equal(st.revisions, 1);
	assert_int_equal(st.records, 4);
	/* the day, not yet emitted, has all of it once */
	gw_agg_flush(f.agg, SEC(T0 + 700));
	w = find_one(&f, GW_AGG_DAY, T0);
	assert_false(w->revised);
	assert_int_equal(w->day.agg.records, 4);
	assert_int_equal(w->day.agg.steps, 8);
	fx_fini(&f);
}

/* ---- beyond the horizon ---- */

static void test_too_late(void **state)
{
	struct fx f;
	struct gw_agg_stats st;
	struct wb_record r;
	int n;

	(void) state;
	fx_init(&f, "UTC");
	f.cfg.revise_horizon_us = SEC(3600);
	fx_start(&f);
	add_s(&f, T0 + 10, 5, 10, T0 + 20);
	gw_agg_tick(f.agg, SEC(T0 + 70));
	assert_int_equal(f.out->len, 1);

	/* at the minute's end + horizon exactly: still revisable */
	r = steps(f.seq++, 2, 10);
	gw_agg_add(f.agg, &r, SEC(T0 + 30), RL_TIME_SYNCED, SEC(T0 + 60 + 3600));
	/* a microsecond later: too late, counted, not aggregated */
	r = steps(f.seq++, 4, 10);
	gw_agg_add(f.agg, &r, SEC(T0 + 40), RL_TIME_SYNCED, SEC(T0 + 60 + 3600) + 1);
	/* as is a time that cannot be placed */
	r = steps(f.seq++, 4, 10);
	gw_agg_add(f.agg, &r, -SEC(1), RL_TIME_SYNCED, SEC(T0 + 60 + 3600) + 1);
	/* a later minute of the same day is still open */
	r = steps(f.seq++, 4, 10);
	gw_agg_add(f.agg, &r, SEC(T0 + 600), RL_TIME_SYNCED, SEC(T0 + 60 + 3600) + 1);
	st = gw_agg_get_stats(f.agg);
	assert_int_equal(st.too_late, 2);
	assert_int_equal(st.records, 3);

	/* the revision goes out a grace later, then the minute is forgotten */
	gw_agg_tick(f.agg, SEC(T0 + 60 + 3600 + GRACE) + 1);
	assert_int_equal(find(&f, GW_AGG_MINUTE, T0, &n)->day.agg.steps, 7);
	assert_int_equal(n, 2);
	assert_true(find(&f, GW_AGG_MINUTE, T0, NULL)->revised);
	st = gw_agg_get_stats(f.agg);
	assert_int_equal(st.open_windows, 2);	/* minute T0 + 600 and the day */

	/* never re-created: a record for it now is too late */
	r = steps(f.seq++, 4, 10);
	gw_agg_add(f.agg, &r, SEC(T0 + 50), RL_TIME_SYNCED, SEC(T0 + 60 + 3600 + GRACE) + 1);
	assert_int_equal(gw_agg_get_stats(f.agg).too_late, 3);
	gw_agg_flush(f.agg, SEC(T0 + 4000));
	find(&f, GW_AGG_MINUTE, T0, &n);
	assert_int_equal(n, 2);
	assert_int_equal(find_one(&f, GW_AGG_MINUTE, T0 + 600)->day.agg.steps, 4);
	/* the day has what was in time */
	assert_int_equal(find_one(&f, GW_AGG_DAY, T0)->day.agg.steps, 11);
	gw_agg_tick(f.agg, SEC(T0 + DAY + 3600) + 1);
	assert_int_equal(gw_agg_get_stats(f.agg).open_windows, 0);
	assert_int_equal(gw_agg_next_deadline(f.agg), INT64_MAX);
	fx_fini(&f);
}

/* ---- duplicates ---- */

static void test_duplicate_seq(void **state)
{
	static const uint32_t seqs[] = { 0xfffffffe, 0xffffffff, 0, 1 };
	struct fx f;
	const struct gw_agg_window *w;
	struct gw_agg_stats st;

	(void) state;
	fx_init(&f, "UTC");
	f.cfg.revise_horizon_us = SEC(3600);
	fx_start(&f);
	for (size_t i = 0; i < ARRAY_SIZE(seqs); i++)
		add_at(&f, steps(seqs[i], 3, 1), T0 + 10 + (int64_t) i, T0 + 20);
	/* again, the same and at another time: both ignored */
	add_at(&f, steps(0xffffffff, 3, 1), T0 + 11, T0 + 21);
	add_at(&f, steps(0, 50, 10), T0 + 30, T0 + 21);
	st = gw_agg_get_stats(f.agg);
	assert_int_equal(st.records, 4);
	assert_int_equal(st.duplicates, 2);
	gw_agg_tick(f.agg, SEC(T0 + 70));
	w = find_one(&f, GW_AGG_MINUTE, T0);
	assert_int_equal(w->day.agg.steps, 12);
	assert_int_equal(w->day.agg.records, 4);
	/* serial order across the wrap */
	assert_int_equal(w->first_seq, 0xfffffffe);
	assert_int_equal(w->last_seq, 1);
	/* a duplicate of an emitted window does not revise it */
	add_at(&f, steps(1, 3, 1), T0 + 13, T0 + 80);
	gw_agg_tick(f.agg, SEC(T0 + 200));
	assert_int_equal(f.out->len, 1);
	assert_int_equal(gw_agg_get_stats(f.agg).duplicates, 3);
	assert_int_equal(gw_agg_get_stats(f.agg).revisions, 0);

	/* the seqs are forgotten with their windows: all of them gone, seq 1
	 * at a time still open counts again */
	gw_agg_tick(f.agg, SEC(T0 + DAY + 3600) + 1);
	assert_int_equal(gw_agg_get_stats(f.agg).open_windows, 0);
	add_at(&f, steps(1, 3, 1), T0 + DAY + 3600, T0 + DAY + 3600);
	st = gw_agg_get_stats(f.agg);
	assert_int_equal(st.records, 5);
	assert_int_equal(st.duplicates, 3);
	fx_fini(&f);
}

/* Records in reverse order and with gaps: ranges merge both ways. */
static void test_duplicate_out_of_order(void **state)
{
	struct fx f;
	struct gw_agg_stats st;

	(void) state;
	fx_init(&f, "UTC");
	fx_start(&f);
	for (uint32_t s = 20; s >= 1; s -= 2)	/* 20, 18, .. 2 */
		add_at(&f, steps(s, 1, 1), T0 + s, T0);
	for (uint32_t s = 1; s <= 21; s += 2)	/* 1, 3, .. 21: fills */
		add_at(&f, steps(s, 1, 1), T0 + s, T0);
	for (uint32_t s = 1; s <= 21; s++)
		add_at(&f, steps(s, 1, 1), T0 + s, T0);
	st = gw_agg_get_stats(f.agg);
	assert_int_equal(st.records, 21);
	assert_int_equal(st.duplicates, 21);
	gw_agg_flush(f.agg, SEC(T0));
	assert_int_equal(find_one(&f, GW_AGG_MINUTE, T0)->day.agg.steps, 21);
	assert_int_equal(find_one(&f, GW_AGG_MINUTE, T0)->first_seq, 1);
	assert_int_equal(find_one(&f, GW_AGG_MINUTE, T0)->last_seq, 21);
	fx_fini(&f);
}

/* ---- local days: DST ---- */

static void test_dst_days(void **state)
{
	static const struct {
		const char *tz, *date;
		int64_t start;		/* Unix s */
		int hours;
		int offset_min;
	} cases[] = {
		{ "Europe/Berlin", "2024-03-30", 1711753200, 24, 60 },
		{ "Europe/Berlin", "2024-03-31", 1711839600, 23, 60 },	/* spring forward */
		{ "Europe/Berlin", "2024-04-01", 1711922400, 24, 120 },
		{ "Europe/Berlin", "2024-10-27", 1729980000, 25, 120 },	/* fall back */
		{ "Europe/Berlin", "2024-10-28", 1730070000, 24, 60 },
		/* midnight repeated (23:00 twice) and skipped (00:00 -> 01:00) */
		{ "America/Santiago", "2024-04-06", 1712372400, 25, -180 },
		{ "America/Santiago", "2024-09-08", 1725768000, 23, -180 },
		{ "UTC", "2024-05-01", T0, 24, 0 },
	};

	(void) state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct fx f;
		const struct gw_agg_window *d;
		int64_t len = 3600 * (int64_t) cases[i].hours;
		int64_t end = cases[i].start + len;
		char id[GW_AGG_ID_MAX];
		int n;

		fx_init(&f, cases[i].tz);
		fx_start(&f);
		/* the whole day in hour records, steps in its first and last minute */
		for (int h = 0; h < cases[i].hours; h++)
			add_p(&f, cases[i].start + 3600 * h, WB_POSTURE_UPRIGHT, 0,
			      3600, cases[i].start);
		add_s(&f, cases[i].start, 30, 60, cases[i].start);
		add_s(&f, end - 60, 60, 60, cases[i].start);
		gw_agg_tick(f.agg, SEC(end + GRACE) + 1);
		print_message("# %s %s\n", cases[i].tz, cases[i].date);
		d = find_date(&f, cases[i].date, &n);
		assert_int_equal(n, 1);
		assert_int_equal(d->day.agg.start_us, SEC(cases[i].start));
		assert_int_equal(d->day.agg.end_us, SEC(end));
		assert_int_equal(d->day.utc_offset_min, cases[i].offset_min);
		g_snprintf(id, sizeof id, "w1:day:%s", cases[i].date);
		assert_string_equal(d->aggregate_id, id);
		assert_int_equal(d->day.agg.posture_s.upright, len);
		assert_int_equal(d->day.agg.posture_s.unknown, 0);
		assert_int_equal(d->day.agg.longest_still_s, len - 120);
		assert_int_equal(d->day.agg.steps, 90);
		assert_int_equal(d->day.agg.walking_minutes, 2);
		assert_int_equal(d->day.agg.cadence_spm, 45);
		assert_int_equal(d->day.agg.records, cases[i].hours + 2);
		/* nothing spilled into a neighbouring day */
		n = 0;
		for (guint k = 0; k < f.out->len; k++)
			n += ((struct gw_agg_window *) g_ptr_array_index(f.out, k))->kind ==
			     GW_AGG_DAY;
		assert_int_equal(n, 1);
		/* every minute of it, and minutes only */
		assert_int_equal(f.out->len, 1 + (guint) (len / 60));
		fx_fini(&f);
	}
}

/* ---- a day of 1 Hz posture, steps every minute, live ---- */

static enum wb_posture_class class_at_hour(int h)
{
	if (h < 7 || h >= 22)
		return WB_POSTURE_LYING;
	if (h >= 12 && h < 14)
		return WB_POSTURE_RECLINED;
	if (h >= 14 && h < 16)
		return WB_POSTURE_FLEXED;
	return WB_POSTURE_UPRIGHT;
}

static bool walking_hour(int h)
{
	return (h >= 7 && h < 12) || (h >= 16 && h < 22);
}

static void test_day_of_1hz(void **state)
{
	struct fx f;
	const int64_t start = 1714514400;	/* 2024-05-01 00:00 +02:00 */
	int64_t steps_total = 0, walking = 0, walk_steps = 0;
	int64_t sum_steps = 0, sum_walking = 0, sum_up = 0, sum_f30 = 0;
	int64_t t_begin = g_get_monotonic_time();
	const struct gw_agg_window *d;
	struct gw_agg_stats st;
	unsigned int max_open = 0;
	uint32_t first_seq;

	(void) state;
	fx_init(&f, "Europe/Berlin");
	f.cfg.revise_horizon_us = SEC(600);
	f.cfg.have_surgery_date = true;
	f.cfg.surgery_year = 2024;
	f.cfg.surgery_month = 4;
	f.cfg.surgery_day = 28;
	fx_start(&f);
	first_seq = f.seq;
	for (int64_t i = 0; i < DAY; i++) {
		int h = (int) (i / 3600);

		add_p(&f, start + i, class_at_hour(h), (int) (i % 900), 1, start + i + 1);
		if (i % 60 == 59) {
			int64_t m = i / 60;
			unsigned int n = walking_hour(h) ? (unsigned int) (m % 25) : 0;

			add_s(&f, start + i - 59, n, 60, start + i + 1);
			steps_total += n;
			if (n >= 10) {
				walking++;
				walk_steps += n;
			}
		}
		if (i % 3600 == 0)
			max_open = MAX(max_open, gw_agg_get_stats(f.agg).open_windows);
	}
	gw_agg_tick(f.agg, SEC(start + DAY + GRACE) + 1);
	print_message("# %d records: %" G_GINT64_FORMAT " ms\n", (int) (DAY + DAY / 60),
		      (g_get_monotonic_time() - t_begin) / 1000);

	st = gw_agg_get_stats(f.agg);
	assert_int_equal(st.records, DAY + DAY / 60);
	assert_int_equal(st.too_late + st.duplicates + st.overlaps + st.revisions, 0);
	assert_int_equal(st.emitted, DAY / 60 + 1);
	assert_true(max_open <= 15);

	d = find_one(&f, GW_AGG_DAY, start);
	assert_string_equal(d->local_date, "2024-05-01");
	assert_int_equal(d->day.utc_offset_min, 120);
	assert_int_equal(d->day.post_op_day, 3);
	assert_int_equal(d->day.agg.records, DAY + DAY / 60);
	assert_int_equal(d->day.agg.posture_s.lying, 9 * 3600);
	assert_int_equal(d->day.agg.posture_s.upright, 11 * 3600);
	assert_int_equal(d->day.agg.posture_s.reclined, 2 * 3600);
	assert_int_equal(d->day.agg.posture_s.flexed, 2 * 3600);
	assert_int_equal(d->day.agg.posture_s.unknown, 0);
	assert_int_equal(d->day.agg.flexed_over_30_s, 96 * 599);	/* 301..899 */
	assert_int_equal(d->day.agg.flexed_over_60_s, 96 * 299);	/* 601..899 */
	assert_int_equal(d->day.agg.steps, steps_total);
	assert_int_equal(d->day.agg.walking_minutes, walking);
	assert_int_equal(d->day.agg.cadence_spm, (walk_steps + walking / 2) / walking);
	assert_int_equal(d->day.agg.longest_still_s, 7 * 3600);	/* the night */
	assert_int_equal(d->quality, RL_TIME_SYNCED);
	assert_int_equal(d->first_seq, first_seq);
	assert_int_equal(d->last_seq, f.seq - 1);

	/* the minutes add up to the day */
	for (guint k = 0; k < f.out->len; k++) {
		const struct gw_agg_window *w = g_ptr_array_index(f.out, k);

		if (w->kind != GW_AGG_MINUTE)
			continue;
		assert_false(w->revised);
		assert_int_equal(w->day.agg.records, 60 + 1);
		sum_steps += w->day.agg.steps;
		sum_walking += w->day.agg.walking_minutes;
		sum_up += w->day.agg.posture_s.upright;
		sum_f30 += w->day.agg.flexed_over_30_s;
	}
	assert_int_equal(sum_steps, steps_total);
	assert_int_equal(sum_walking, walking);
	assert_int_equal(sum_up, 11 * 3600);
	assert_int_equal(sum_f30, 96 * 599);
	fx_fini(&f);
}

/* ---- quality: the worst ---- */

static void test_quality_worst(void **state)
{
	static const struct {
		enum rl_time_quality q[4];
		size_t n;
		enum rl_time_quality worst;
	} cases[] = {
		{ { RL_TIME_SYNCED }, 1, RL_TIME_SYNCED },
		{ { RL_TIME_SYNCED, RL_TIME_HOLDOVER, RL_TIME_SYNCED }, 3, RL_TIME_HOLDOVER },
		{ { RL_TIME_ESTIMATED, RL_TIME_HOLDOVER }, 2, RL_TIME_ESTIMATED },
		{ { RL_TIME_SYNCED, RL_TIME_UNSYNCED, RL_TIME_ESTIMATED }, 3, RL_TIME_UNSYNCED },
		{ { RL_TIME_UNSYNCED, RL_TIME_SYNCED }, 2, RL_TIME_UNSYNCED },
	};

	(void) state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct fx f;

		fx_init(&f, "UTC");
		fx_start(&f);
		for (size_t k = 0; k < cases[i].n; k++) {
			struct wb_record r = posture(f.seq++, WB_POSTURE_UPRIGHT, 0, 5);

			gw_agg_add(f.agg, &r, SEC(T0 + 5 * (int64_t) k), cases[i].q[k],
				   SEC(T0 + 30));
		}
		/* a record of another minute does not change this one */
		gw_agg_add(f.agg, &(struct wb_record) { .type = WB_RECORD_PAIN,
							.seq = f.seq++ },
			   SEC(T0 + 90), RL_TIME_UNSYNCED, SEC(T0 + 30));
		gw_agg_flush(f.agg, SEC(T0 + 100));
		assert_int_equal(find_one(&f, GW_AGG_MINUTE, T0)->quality, cases[i].worst);
		assert_int_equal(find_one(&f, GW_AGG_MINUTE, T0 + 60)->quality,
				 RL_TIME_UNSYNCED);
		assert_int_equal(find_one(&f, GW_AGG_DAY, T0)->quality, RL_TIME_UNSYNCED);
		fx_fini(&f);
	}
}

/* ---- post-op day ---- */

static void test_post_op_day(void **state)
{
	static const struct {
		bool have;
		int y, m, d;
		int expect, next;	/* 1 May, 2 May */
	} cases[] = {
		{ false, 2024, 5, 1, RL_NONE, RL_NONE },
		{ true, 2024, 5, 1, 0, 1 },
		{ true, 2024, 4, 25, 6, 7 },
		{ true, 2023, 5, 1, 366, 367 },		/* across 29 February */
		{ true, 2014, 5, 5, 3649, 3650 },
		{ true, 2014, 5, 1, RL_NONE, RL_NONE },	/* beyond 3650 */
		{ true, 2024, 5, 2, RL_NONE, 0 },	/* before the surgery */
		{ true, 2024, 5, 9, RL_NONE, RL_NONE },
		{ true, 2024, 2, 30, RL_NONE, RL_NONE },	/* not a date */
	};

	(void) state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct fx f;

		fx_init(&f, "Europe/Berlin");
		f.cfg.have_surgery_date = cases[i].have;
		f.cfg.surgery_year = cases[i].y;
		f.cfg.surgery_month = cases[i].m;
		f.cfg.surgery_day = cases[i].d;
		fx_start(&f);
		/* 23:30 UTC on 1 May is 01:30 on 2 May in Berlin */
		add_p(&f, T0 + 3600, WB_POSTURE_LYING, 0, 60, T0);
		add_p(&f, T0 + DAY - 1800, WB_POSTURE_LYING, 0, 60, T0);
		gw_agg_flush(f.agg, SEC(T0));
		{
			int n;
			const struct gw_agg_window *w = find_date(&f, "2024-05-01", &n);

			assert_int_equal(n, 1);
			assert_int_equal(w->day.post_op_day, cases[i].expect);
			w = find_date(&f, "2024-05-02", &n);
			assert_int_equal(n, 1);
			assert_int_equal(w->day.post_op_day, cases[i].next);
		}
		fx_fini(&f);
	}
}

/* ---- flush ---- */

static void test_flush(void **state)
{
	struct fx f;
	const struct gw_agg_window *w;

	(void) state;
	fx_init(&f, "UTC");
	fx_start(&f);
	gw_agg_flush(f.agg, SEC(T0));
	assert_int_equal(f.out->len, 0);
	add_p(&f, T0 + 10, WB_POSTURE_UPRIGHT, 0, 5, T0 + 15);
	gw_agg_flush(f.agg, SEC(T0 + 16));
	assert_int_equal(f.out->len, 2);	/* the open minute and day */
	assert_false(find_one(&f, GW_AGG_MINUTE, T0)->revised);
	assert_false(find_one(&f, GW_AGG_DAY, T0)->revised);
	gw_agg_flush(f.agg, SEC(T0 + 17));
	assert_int_equal(f.out->len, 2);	/* nothing new */

	add_p(&f, T0 + 20, WB_POSTURE_UPRIGHT, 0, 5, T0 + 25);
	gw_agg_flush(f.agg, SEC(T0 + 26));
	assert_int_equal(f.out->len, 4);
	w = find(&f, GW_AGG_MINUTE, T0, NULL);
	assert_true(w->revised);
	assert_int_equal(w->day.agg.posture_s.upright, 10);
	assert_int_equal(w->day.agg.longest_still_s, 5);
	assert_true(find(&f, GW_AGG_DAY, T0, NULL)->revised);
	/* the ends pass: nothing dirty, nothing to emit */
	gw_agg_tick(f.agg, SEC(T0 + DAY + GRACE) + 1);
	assert_int_equal(f.out->len, 4);
	assert_int_equal(gw_agg_get_stats(f.agg).revisions, 2);
	gw_agg_free(NULL);
	fx_fini(&f);
}

/* The system zone when none is configured: a window comes out whole. */
static void test_local_zone_default(void **state)
{
	struct gw_agg_config cfg;
	struct fx f;
	g_autoptr(GwAgg) agg = NULL;

	(void) state;
	fx_init(&f, "UTC");
	gw_agg_config_init(&cfg);
	assert_null(cfg.tz);
	assert_int_equal(cfg.close_grace_us, SEC(5));
	assert_int_equal(cfg.revise_horizon_us, SEC(72 * 3600));
	assert_int_equal(cfg.flexed_30_ddeg, 300);
	assert_int_equal(cfg.flexed_60_ddeg, 600);
	assert_int_equal(cfg.walking_min_steps, 10);
	agg = gw_agg_new("pt-0042_a", &cfg, &ops, &f);
	{
		struct wb_record r = posture(1, WB_POSTURE_UPRIGHT, 0, 10);

		gw_agg_add(agg, &r, SEC(T0), RL_TIME_SYNCED, SEC(T0));
	}
	gw_agg_flush(agg, SEC(T0));
	assert_int_equal(f.out->len, 2);
	fx_fini(&f);
}

/* ---- what a rebuilt aggregator needs (gw_agg_needed_seq) ---- */

struct logged {
	struct wb_record r;
	int64_t t;			/* event, s */
};

struct rebuilt {
	GPtrArray *out;
};

static void on_emit_rebuilt(const struct gw_agg_window *w, void *user_data)
{
	struct rebuilt *b = user_data;
	struct gw_agg_window *c = g_memdup2(w, sizeof *w);

	c->day.agg.aggregate_id = c->aggregate_id;
	g_ptr_array_add(b->out, c);
}

static const struct gw_agg_ops rebuilt_ops = { .emit = on_emit_rebuilt };

/* A restart at now: a fresh aggregator fed, in seq order (as the store
 * replays), the logged records from need on, and one fed all of them;
 * every window the first emits must equal the second's (no window comes
 * out of a rebuild with part of its records). Returns how many it emitted. */
static guint check_rebuild(const struct fx *f, const struct logged *log, size_t n,
			   uint32_t need, int64_t now)
{
	struct rebuilt part = { g_ptr_array_new_with_free_func(g_free) };
	struct rebuilt all = { g_ptr_array_new_with_free_func(g_free) };
	GwAgg *a = gw_agg_new(WEARABLE, &f->cfg, &rebuilt_ops, &part);
	GwAgg *b = gw_agg_new(WEARABLE, &f->cfg, &rebuilt_ops, &all);
	guint emitted;

	for (size_t i = 0; i < n; i++) {
		if (!wb_seq_after(need, log[i].r.seq))
			gw_agg_add(a, &log[i].r, SEC(log[i].t), RL_TIME_SYNCED, SEC(now));
		gw_agg_add(b, &log[i].r, SEC(log[i].t), RL_TIME_SYNCED, SEC(now));
	}
	gw_agg_flush(a, SEC(now));
	gw_agg_flush(b, SEC(now));
	for (guint i = 0; i < part.out->len; i++) {
		const struct gw_agg_window *p = g_ptr_array_index(part.out, i);
		const struct gw_agg_window *q = NULL;

		for (guint j = 0; j < all.out->len && !q; j++) {
			const struct gw_agg_window *c = g_ptr_array_index(all.out, j);

			if (strcmp(c->aggregate_id, p->aggregate_id) == 0)
				q = c;
		}
		assert_non_null(q);
		assert_int_equal(p->day.agg.records, q->day.agg.records);
		assert_int_equal(p->day.agg.steps, q->day.agg.steps);
		assert_int_equal(p->day.agg.posture_s.upright, q->day.agg.posture_s.upright);
	}
	emitted = part.out->len;
	gw_agg_free(a);
	gw_agg_free(b);
	g_ptr_array_unref(part.out);
	g_ptr_array_unref(all.out);
	return emitted;
}

static void log_add(struct fx *f, struct logged *log, size_t *n, struct wb_record r,
		    int64_t t, int64_t now)
{
	log[*n].r = r;
	log[*n].t = t;
	(*n)++;
	add_at(f, r, t, now);
}

static int cmp_logged(const void *a, const void *b)
{
	const struct logged *x = a, *y = b;

	return x->r.seq == y->r.seq ? 0 : wb_seq_after(x->r.seq, y->r.seq) ? 1 : -1;
}

static void test_needed_seq(void **state)
{
	static const uint32_t bases[] = { 100, UINT32_C(0xfffffff0) };

	(void) state;
	for (size_t b = 0; b < ARRAY_SIZE(bases); b++) {
		struct logged log[16];
		size_t n = 0;
		struct fx f;
		uint32_t need = 0, base = bases[b];
		int64_t end = T0 + DAY;

		fx_init(&f, "UTC");
		f.seq = base;
		fx_start(&f);
		assert_false(gw_agg_needed_seq(f.agg, &need));

		/* live: three minutes of day D, late in the day */
		for (int m = 0; m < 3; m++)
			log_add(&f, log, &n, posture(f.seq++, WB_POSTURE_UPRIGHT, 0, 60),
				end - 180 + 60 * m, end - 180 + 60 * m + 61);
		log_add(&f, log, &n, steps(f.seq++, 40, 60), end - 120, end - 58);
		assert_true(gw_agg_needed_seq(f.agg, &need));
		assert_int_equal(need, base);
		/* past midnight: the day and its minutes are emitted, but all
		 * stay revisable for the horizon, so a rebuild needs all */
		log_add(&f, log, &n, posture(f.seq++, WB_POSTURE_LYING, 0, 60), end, end + 61);
		gw_agg_tick(f.agg, SEC(end + 62));
		assert_non_null(find(&f, GW_AGG_DAY, T0, NULL));
		assert_true(gw_agg_needed_seq(f.agg, &need));
		assert_int_equal(need, base);
		qsort(log, n, sizeof log[0], cmp_logged);
		/* a restart, then a late record (history sync) for 23:58 of D:
		 * marking by the day's last seq (base + 3), a rebuild fed only
		 * from base + 4 re-created 23:58 from the late record alone */
		log[n].r = steps(f.seq++, 7, 10);
		log[n].t = end - 120 + 30;
		n++;
		assert_true(check_rebuild(&f, log, n, need, end + 3600) >= 3);
		add_at(&f, log[n - 1].r, log[n - 1].t, end + 3600);
		assert_true(gw_agg_needed_seq(f.agg, &need));
		assert_int_equal(need, base);
		/* a record with a seq before every other, aggregated last */
		log[n].r = point(base - 1, WB_RECORD_STATUS);
		log[n].t = end + 90;
		n++;
		add_at(&f, log[n - 1].r, log[n - 1].t, end + 3601);
		assert_true(gw_agg_needed_seq(f.agg, &need));
		assert_int_equal(need, base - 1);
		qsort(log, n, sizeof log[0], cmp_logged);
		assert_true(check_rebuild(&f, log, n, need, end + 3700) >= 4);

		/* D's windows forgotten after the horizon: only D + 1's first
		 * minute is still held, its first seq the status record's */
		gw_agg_tick(f.agg, SEC(end + 72 * 3600) + 1);
		assert_true(gw_agg_needed_seq(f.agg, &need));
		assert_int_equal(need, base - 1);
		gw_agg_tick(f.agg, SEC(end + DAY + 72 * 3600) + 1);
		/* nothing held: one past the highest seq aggregated */
		assert_true(gw_agg_needed_seq(f.agg, &need));
		assert_int_equal(need, base + 6);
		fx_fini(&f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minute_sums),
		cmocka_unit_test(test_split_steps_across_minutes),
		cmocka_unit_test(test_split_posture_across_minutes),
		cmocka_unit_test(test_split_across_days),
		cmocka_unit_test(test_walking_and_cadence),
		cmocka_unit_test(test_walking_minutes_are_utc_minutes),
		cmocka_unit_test(test_flexed_thresholds),
		cmocka_unit_test(test_longest_still_day),
		cmocka_unit_test(test_emission_timing),
		cmocka_unit_test(test_late_record_revises),
		cmocka_unit_test(test_too_late),
		cmocka_unit_test(test_duplicate_seq),
		cmocka_unit_test(test_duplicate_out_of_order),
		cmocka_unit_test(test_dst_days),
		cmocka_unit_test(test_day_of_1hz),
		cmocka_unit_test(test_quality_worst),
		cmocka_unit_test(test_post_op_day),
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_local_zone_default),
		cmocka_unit_test(test_needed_seq),
	};
	return cmocka_run_group_tests_name("gateway/aggregate", tests, NULL, NULL);
}
