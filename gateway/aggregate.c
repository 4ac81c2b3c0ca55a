/* SPDX-License-Identifier: MIT */
/*
 * The aggregator (see aggregate.h). Pure: records and the time come in as
 * calls, finished windows leave through ops->emit.
 *
 * Time grid. Everything is counted in whole UTC seconds: a record whose
 * event time is t us covers the seconds [floor(t / 1 s), + duration_s).
 * Pain and status records cover no second; they only count in `records`
 * (and in the seq range and quality) of the windows holding their event.
 *
 * Each window keeps one byte per second of its length (allocated at its
 * first posture or steps record) and, for its UTC minutes, the steps
 * counted in each. A minute window is 60 bytes, a day window 82800 to
 * 90000; nothing is kept per record except the dedupe set.
 *  - A posture record sets, for each of its seconds in the window, the
 *    class and whether the flexion is strictly above flexed_30_ddeg and
 *    flexed_60_ddeg (the latter only together with the former). Posture
 *    records that overlap (a second already covered) keep one reading per
 *    second, chosen independently of the arrival order: the higher
 *    flexion band, then the higher class code. Such a record counts in
 *    stats.overlaps, and every posture figure stays within the window.
 *  - A steps record of S steps over d seconds gives the part [a, b) of it
 *    (offsets from its start) floor(S * b / d) - floor(S * a / d) steps,
 *    cut at every window and UTC minute boundary, so the parts add up to S
 *    exactly. Steps are taken as spread evenly over the record: when S > 0
 *    every second it covers is "moving". Overlapping steps records add up
 *    (counted in stats.overlaps); the window's steps are capped at 5 per
 *    second and the cadence at 300 when emitted.
 *
 * Metrics, from those seconds (a second is "covered" when a posture
 * record covers it):
 *  - posture_s: covered seconds per class; `unknown` is the rest of the
 *    window (class unknown, or not covered), so the five add up to the
 *    window length (docs/protocol.md 2.5);
 *  - flexed_over_30_s / _60_s: covered seconds above the thresholds;
 *  - walking_minutes: UTC minutes (the parts inside the window, for a day
 *    starting off the minute) with at least walking_min_steps steps;
 *    cadence_spm: their steps / their count, rounded half up;
 *  - longest_still_s: the longest run of consecutive seconds in the
 *    window that are all covered, all of the same class, and none moving.
 *    An uncovered second, a moving second or a change of class ends a
 *    run; a change of flexion within a class does not. A day window's run
 *    crosses minute boundaries freely.
 *
 * Windows. Minute windows are UTC minutes. A day window is the maximal
 * run of seconds having the same local date in the configured zone: from
 * the first instant of that date (local midnight, or the first local time
 * that exists when midnight is skipped) to the first instant of the next
 * date, found by a binary search over GTimeZone's offsets, so a 23 h or
 * 25 h DST day and an ambiguous midnight come out right. utc_offset_min is
 * the offset at the day's start.
 *
 * Emission. A window with changes not yet emitted ("dirty") is emitted
 * once now is strictly past both its end + close_grace_us and the time its
 * first unemitted record came + close_grace_us. The second condition only
 * matters for late records: a history sync delivering a thousand records
 * into an emitted window yields one revision per close_grace, not a
 * thousand. A window emitted before goes out again whole, revised = true.
 *
 * Horizon. A window is forgotten once now is strictly past its end +
 * revise_horizon_us. A record is too late when now is strictly past the
 * earliest end among the windows holding its event time (its minute, its
 * day) + revise_horizon_us: it would otherwise touch a forgotten window
 * and re-create it with only part of its contents. Such records are
 * counted (stats.too_late) and dropped whole, as are records with an event
 * time outside 0..RL_TIME_MAX - 2 days (they cannot be placed).
 *
 * Dedupe. Seqs are unwrapped into 64 bits (serial arithmetic against the
 * highest seen) and kept as sorted, merged ranges; each range remembers
 * the latest forget time of the windows its records touched and goes once
 * that has passed (a record that old is too late anyway). Records with
 * "+1 per record" seqs arriving in order make a single range.
 *
 * The ops must not call back into the aggregator from emit.
 */
#include <string.h>

#include "aggregate.h"

#define USEC G_USEC_PER_SEC
#define DAY_SEARCH_S (27 * 3600)	/* longer than any local day */
#define TIME_LIMIT_US (RL_TIME_MAX - INT64_C(2) * 86400 * USEC)

/* one second of a window */
enum {
	C_CLASS = 0x07,		/* posture class + 1; 0: not covered */
	C_FLEX30 = 0x08,
	C_FLEX60 = 0x10,
	C_POSTURE = 0x1f,	/* all of the above: one reading */
	C_STEPS = 0x20,		/* covered by a steps record */
	C_MOVING = 0x40,	/* ... with steps in it */
};

struct window {
	enum gw_agg_kind kind;
	int64_t start_s, end_s;		/* [start, end), Unix seconds */
	int64_t first_min;		/* UTC minute of start_s */
	guint n_min;			/* UTC minutes the window touches */
	guint8 *cell;			/* end_s - start_s seconds, or NULL */
	int64_t *min_steps;		/* n_min, or NULL */
	int64_t steps;
	int64_t records;
	int worst;			/* quality rank, see quality_rank() */
	bool has_seq;
	int64_t first_seq, last_seq;	/* unwrapped */
	bool dirty;			/* changes not emitted */
	bool emitted;
	int64_t dirty_at;		/* now when it became dirty */
	int64_t deadline;		/* the key in GwAgg.due */
	/* day windows */
	int64_t local_day;		/* days since 1970-01-01, local */
	int utc_offset_min;
	int post_op_day;
	char local_date[11];
	char id[GW_AGG_ID_MAX];
};

struct seq_range {
	int64_t first, last;		/* unwrapped, inclusive */
	int64_t expire_us;		/* forget after this */
};

struct day_bounds {
	int64_t start_s, end_s;
	int64_t local_day;
	int offset_s;			/* at start */
};

struct gw_agg {
	char *wearable;
	struct gw_agg_config cfg;
	GTimeZone *tz;
	struct gw_agg_ops ops;
	void *user_data;
	GHashTable *minutes;		/* &start_s -> struct window, owns them */
	GPtrArray *days;		/* struct window, owns them */
	GTree *due;			/* every window, by deadline */
	GArray *seqs;			/* struct seq_range, sorted, disjoint,
					 * not adjacent */
	bool have_ref;
	int64_t ref;			/* highest unwrapped seq aggregated */
	int64_t now;
	guint32 epoch_julian;		/* GDate's julian day of 1970-01-01 */
	bool in_emit;
	struct gw_agg_stats st;
};

static int64_t sat_add(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	if (b < 0 && a < INT64_MIN - b)
		return INT64_MIN;
	return a + b;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* 0 best .. 3 worst */
static int quality_rank(enum rl_time_quality q)
{
	switch (q) {
	case RL_TIME_SYNCED:
		return 0;
	case RL_TIME_HOLDOVER:
		return 1;
	case RL_TIME_ESTIMATED:
		return 2;
	case RL_TIME_UNSYNCED:
		return 3;
	}
	return 3;
}

void gw_agg_config_init(struct gw_agg_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->close_grace_us = 5 * USEC;
	cfg->revise_horizon_us = INT64_C(72) * 3600 * USEC;
	cfg->flexed_30_ddeg = 300;
	cfg->flexed_60_ddeg = 600;
	cfg->walking_min_steps = 10;
}

/* ---- the dedupe set ---- */

/* the number of ranges whose first is <= u */
static guint seqs_upper(const GArray *a, int64_t u)
{
	guint lo = 0, hi = a->len;

	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;

		if (g_array_index(a, struct seq_range, mid).first <= u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool seqs_contains(const GwAgg *agg, int64_t u)
{
	guint i = seqs_upper(agg->seqs, u);

	return i > 0 && g_array_index(agg->seqs, struct seq_range, i - 1).last >= u;
}

/* u is not in the set */
static void seqs_add(GwAgg *agg, int64_t u, int64_t expire_us)
{
	GArray *a = agg->seqs;
	guint i = seqs_upper(a, u);
	struct seq_range *prev = i > 0 ? &g_array_index(a, struct seq_range, i - 1) : NULL;
	struct seq_range *next = i < a->len ? &g_array_index(a, struct seq_range, i) : NULL;
	bool join_prev = prev && prev->last + 1 == u;
	bool join_next = next && next->first == u + 1;

	if (join_prev && join_next) {
		prev->last = next->last;
		prev->expire_us = MAX(MAX(prev->expire_us, next->expire_us), expire_us);
		g_array_remove_index(a, i);
	} else if (join_prev) {
		prev->last = u;
		prev->expire_us = MAX(prev->expire_us, expire_us);
	} else if (join_next) {
		next->first = u;
		next->expire_us = MAX(next->expire_us, expire_us);
	} else {
		struct seq_range r = { .first = u, .last = u, .expire_us = expire_us };

		g_array_insert_val(a, i, r);
	}
}

static void seqs_expire(GwAgg *agg)
{
	GArray *a = agg->seqs;
	guint j = 0;

	for (guint i = 0; i < a->len; i++) {
		struct seq_range r = g_array_index(a, struct seq_range, i);

		if (agg->now > r.expire_us)
			continue;
		g_array_index(a, struct seq_range, j++) = r;
	}
	g_array_set_size(a, j);
}

/* seq as a 64-bit number, in serial order around the highest seen */
static int64_t seq_unwrap(const GwAgg *agg, uint32_t seq)
{
	uint32_t diff;

	if (!agg->have_ref)
		return (int64_t) seq + (INT64_C(1) << 32);
	diff = seq - (uint32_t) agg->ref;
	return agg->ref + (diff < UINT32_C(0x80000000) ? (int64_t) diff
			   : (int64_t) diff - (INT64_C(1) << 32));
}

/* ---- windows ---- */

static gint due_cmp(gconstpointer a, gconstpointer b)
{
	const struct window *x = a, *y = b;

	if (x->deadline != y->deadline)
		return x->deadline < y->deadline ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind == GW_AGG_MINUTE ? -1 : 1;
	if (x->start_s != y->start_s)
		return x->start_s < y->start_s ? -1 : 1;
	return 0;
}

static void window_free(gpointer p)
{
	struct window *w = p;

	g_free(w->cell);
	g_free(w->min_steps);
	g_free(w);
}

static void set_deadline(GwAgg *agg, struct window *w, int64_t deadline)
{
	g_tree_remove(agg->due, w);
	w->deadline = deadline;
	g_tree_insert(agg->due, w, w);
}

static struct window *window_new(GwAgg *agg, enum gw_agg_kind kind,
				 int64_t start_s, int64_t end_s)
{
	struct window *w = g_new0(struct window, 1);

	w->kind = kind;
	w->start_s = start_s;
	w->end_s = end_s;
	w->first_min = floor_div(start_s, 60);
	w->n_min = (guint) (floor_div(end_s - 1, 60) - w->first_min + 1);
	w->post_op_day = RL_NONE;
	/* no record yet: the first one makes it dirty */
	w->deadline = sat_add(sat_add(end_s * USEC, agg->cfg.revise_horizon_us), 1);
	g_tree_insert(agg->due, w, w);
	agg->st.open_windows++;
	return w;
}

static void window_forget(GwAgg *agg, struct window *w)
{
	g_tree_remove(agg->due, w);
	agg->st.open_windows--;
	if (w->kind == GW_AGG_MINUTE)
		g_hash_table_remove(agg->minutes, &w->start_s);
	else
		g_ptr_array_remove_fast(agg->days, w);
}

static struct window *minute_get(GwAgg *agg, int64_t start_s)
{
	struct window *w = g_hash_table_lookup(agg->minutes, &start_s);

	if (!w) {
		w = window_new(agg, GW_AGG_MINUTE, start_s, start_s + 60);
		g_snprintf(w->id, sizeof w->id, "%s:minute:%" G_GINT64_FORMAT,
			   agg->wearable, start_s);
		g_hash_table_insert(agg->minutes, &w->start_s, w);
	}
	return w;
}

static int tz_offset(const GwAgg *agg, int64_t t)
{
	gint i = g_time_zone_find_interval(agg->tz, G_TIME_TYPE_UNIVERSAL, t);

	return (int) g_time_zone_get_offset(agg->tz, i);
}

static int64_t local_day(const GwAgg *agg, int64_t t)
{
	return floor_div(t + tz_offset(agg, t), 86400);
}

/* The local day holding instant t: the maximal run of seconds around t
 * with t's local date (local dates only move forward). */
static void day_compute(const GwAgg *agg, int64_t t, struct day_bounds *b)
{
	int64_t d = local_day(agg, t);
	int64_t lo = t - DAY_SEARCH_S, hi = t;

	/* the first second with a date >= d */
	while (hi - lo > 1) {
		int64_t mid = lo + (hi - lo) / 2;

		if (local_day(agg, mid) >= d)
			hi = mid;
		else
			lo = mid;
	}
	b->start_s = hi;
	/* the first second with a date > d */
	lo = t;
	hi = t + DAY_SEARCH_S;
	while (hi - lo > 1) {
		int64_t mid = lo + (hi - lo) / 2;

		if (local_day(agg, mid) > d)
			hi = mid;
		else
			lo = mid;
	}
	b->end_s = hi;
	b->local_day = d;
	b->offset_s = tz_offset(agg, b->start_s);
}

static struct window *day_lookup(const GwAgg *agg, int64_t t)
{
	for (guint i = 0; i < agg->days->len; i++) {
		struct window *w = g_ptr_array_index(agg->days, i);

		if (w->start_s <= t && t < w->end_s)
			return w;
	}
	return NULL;
}

static struct window *day_create(GwAgg *agg, const struct day_bounds *b)
{
	struct window *w = window_new(agg, GW_AGG_DAY, b->start_s, b->end_s);
	GDate date;

	g_date_clear(&date, 1);
	g_date_set_julian(&date, (guint32) (agg->epoch_julian + b->local_day));
	g_snprintf(w->local_date, sizeof w->local_date, "%04u-%02u-%02u",
		   (unsigned int) g_date_get_year(&date),
		   (unsigned int) g_date_get_month(&date),
		   (unsigned int) g_date_get_day(&date));
	g_snprintf(w->id, sizeof w->id, "%s:day:%s", agg->wearable, w->local_date);
	w->local_day = b->local_day;
	w->utc_offset_min = CLAMP(b->offset_s / 60, -840, 840);
	if (agg->cfg.have_surgery_date &&
	    g_date_valid_dmy((GDateDay) agg->cfg.surgery_day,
			     (GDateMonth) agg->cfg.surgery_month,
			     (GDateYear) agg->cfg.surgery_year)) {
		GDate surgery;
		int64_t n;

		g_date_clear(&surgery, 1);
		g_date_set_dmy(&surgery, (GDateDay) agg->cfg.surgery_day,
			       (GDateMonth) agg->cfg.surgery_month,
			       (GDateYear) agg->cfg.surgery_year);
		n = (int64_t) g_date_get_julian(&date) -
		    (int64_t) g_date_get_julian(&surgery);
		/* before the surgery, or past the contract's 10 years */
		w->post_op_day = n >= 0 && n <= 3650 ? (int) n : RL_NONE;
	}
	g_ptr_array_add(agg->days, w);
	return w;
}

static struct window *day_get(GwAgg *agg, int64_t t)
{
	struct window *w = day_lookup(agg, t);
	struct day_bounds b;

	if (w)
		return w;
	day_compute(agg, t, &b);
	return day_create(agg, &b);
}

/* ---- adding ---- */

static void mark_dirty(GwAgg *agg, struct window *w)
{
	if (w->dirty)
		return;
	w->dirty = true;
	w->dirty_at = agg->now;
	set_deadline(agg, w, sat_add(sat_add(MAX(w->end_s * USEC, w->dirty_at),
					      agg->cfg.close_grace_us), 1));
}

static guint8 posture_cell(const GwAgg *agg, const struct wb_posture *p)
{
	unsigned int cls = (unsigned int) p->cls;
	guint8 c;

	if (cls > WB_POSTURE_CLASS_MAX)
		cls = WB_POSTURE_UNKNOWN;
	c = (guint8) (cls + 1);
	if (p->flexion_ddeg > agg->cfg.flexed_30_ddeg) {
		c |= C_FLEX30;
		if (p->flexion_ddeg > agg->cfg.flexed_60_ddeg)
			c |= C_FLEX60;
	}
	return c;
}

/* steps of a record of `steps` over d s in its part [a, b) (offsets) */
static int64_t steps_part(int64_t steps, int64_t d, int64_t a, int64_t b)
{
	return steps * b / d - steps * a / d;
}

/* Applies the record's part inside w; true if it overlapped a second
 * already covered by a record of its type. */
static bool window_apply(GwAgg *agg, struct window *w, const struct wb_record *rec,
			 int64_t s0, int64_t d, int64_t useq,
			 enum rl_time_quality quality)
{
	int64_t a = MAX(s0, w->start_s), b = MIN(s0 + d, w->end_s);
	int64_t len = w->end_s - w->start_s;
	bool overlap = false;
	int rank = quality_rank(quality);

	if (w->start_s <= s0 && s0 < w->end_s)
		w->records++;
	if (!w->has_seq || rank > w->worst)
		w->worst = rank;
	if (!w->has_seq || useq < w->first_seq)
		w->first_seq = useq;
	if (!w->has_seq || useq > w->last_seq)
		w->last_seq = useq;
	w->has_seq = true;
	mark_dirty(agg, w);
	if (a >= b)
		return false;

	switch (rec->type) {
	case WB_RECORD_POSTURE: {
		guint8 c = posture_cell(agg, &rec->u.posture);

		if (!w->cell)
			w->cell = g_malloc0((gsize) len);
		for (int64_t s = a; s < b; s++) {
			guint8 *p = &w->cell[s - w->start_s];
			guint8 old = *p & C_POSTURE;

			if (old)
				overlap = true;
			*p = (guint8) ((*p & ~C_POSTURE) | MAX(old, c));
		}
		break;
	}
	case WB_RECORD_STEPS: {
		int64_t steps = rec->u.steps.steps;
		guint8 c = (guint8) (C_STEPS | (steps > 0 ? C_MOVING : 0));

		if (!w->cell)
			w->cell = g_malloc0((gsize) len);
		if (!w->min_steps)
			w->min_steps = g_new0(int64_t, w->n_min);
		for (int64_t s = a; s < b; s++) {
			guint8 *p = &w->cell[s - w->start_s];

			if (*p & C_STEPS)
				overlap = true;
			*p |= c;
		}
		/* cut at the UTC minutes */
		for (int64_t x = a; x < b;) {
			int64_t m = floor_div(x, 60);
			int64_t y = MIN(b, (m + 1) * 60);
			int64_t part = steps_part(steps, d, x - s0, y - s0);

			w->min_steps[m - w->first_min] += part;
			w->steps += part;
			x = y;
		}
		break;
	}
	case WB_RECORD_PAIN:
	case WB_RECORD_STATUS:
		break;
	}
	return overlap;
}

static int64_t record_duration(const struct wb_record *rec)
{
	switch (rec->type) {
	case WB_RECORD_POSTURE:
		return CLAMP(rec->u.posture.duration_s, WB_PERIOD_MIN_S, WB_PERIOD_MAX_S);
	case WB_RECORD_STEPS:
		return CLAMP(rec->u.steps.duration_s, WB_PERIOD_MIN_S, WB_PERIOD_MAX_S);
	case WB_RECORD_PAIN:
	case WB_RECORD_STATUS:
		return 0;
	}
	return 0;
}

static void add_record(GwAgg *agg, const struct wb_record *rec, int64_t event_us,
		       enum rl_time_quality quality)
{
	int64_t horizon = agg->cfg.revise_horizon_us;
	int64_t s0, d, span, useq, last_end_s = 0;
	struct window *day;
	struct day_bounds b;
	bool overlap = false;

	if (event_us < 0 || event_us > TIME_LIMIT_US) {
		agg->st.too_late++;
		return;
	}
	s0 = event_us / USEC;
	d = record_duration(rec);
	span = MAX(d, 1);

	/* too late: a window holding its event would be forgotten */
	if (agg->now > sat_add((floor_div(s0, 60) + 1) * 60 * USEC, horizon)) {
		agg->st.too_late++;
		return;
	}
	day = day_lookup(agg, s0);
	if (day) {
		b.start_s = day->start_s;
		b.end_s = day->end_s;
	} else {
		day_compute(agg, s0, &b);
	}
	if (agg->now > sat_add(b.end_s * USEC, horizon)) {
		agg->st.too_late++;
		return;
	}

	useq = seq_unwrap(agg, rec->seq);
	if (seqs_contains(agg, useq)) {
		agg->st.duplicates++;
		return;
	}
	if (!day)
		day = day_create(agg, &b);

	for (int64_t m = floor_div(s0, 60) * 60; m < s0 + span; m += 60) {
		struct window *w = minute_get(agg, m);

		overlap |= window_apply(agg, w, rec, s0, d, useq, quality);
		last_end_s = MAX(last_end_s, w->end_s);
	}
	for (;;) {
		overlap |= window_apply(agg, day, rec, s0, d, useq, quality);
		last_end_s = MAX(last_end_s, day->end_s);
		if (day->end_s >= s0 + span)
			break;
		day = day_get(agg, day->end_s);
	}

	seqs_add(agg, useq, sat_add(last_end_s * USEC, horizon));
	if (!agg->have_ref || useq > agg->ref) {
		agg->ref = useq;
		agg->have_ref = true;
	}
	agg->st.records++;
	if (overlap)
		agg->st.overlaps++;
}

/* ---- emitting ---- */

static enum rl_time_quality rank_quality(int rank)
{
	static const enum rl_time_quality q[] = {
		RL_TIME_SYNCED, RL_TIME_HOLDOVER, RL_TIME_ESTIMATED, RL_TIME_UNSYNCED,
	};

	return q[CLAMP(rank, 0, 3)];
}

static void window_fill(const GwAgg *agg, const struct window *w,
			struct gw_agg_window *out)
{
	struct rl_aggregate *a = &out->day.agg;
	int64_t len = w->end_s - w->start_s;
	int64_t cls_s[WB_POSTURE_CLASS_MAX + 2] = { 0 };
	int64_t walking = 0, walk_steps = 0, run = 0, best = 0;
	int run_cls = 0;

	memset(out, 0, sizeof *out);
	out->kind = w->kind;
	memcpy(out->aggregate_id, w->id, sizeof out->aggregate_id);
	a->aggregate_id = out->aggregate_id;
	a->revision = 0;
	a->start_us = w->start_s * USEC;
	a->end_us = w->end_s * USEC;
	a->records = MIN(w->records, (int64_t) INT32_MAX);
	a->steps = MIN(w->steps, len * WB_STEPS_MAX_PER_S);

	for (int64_t i = 0; w->cell && i < len; i++) {
		guint8 c = w->cell[i];
		int cls = c & C_CLASS;

		cls_s[cls]++;
		if (cls && (c & C_FLEX30))
			a->flexed_over_30_s++;
		if (cls && (c & C_FLEX60))
			a->flexed_over_60_s++;
		if (!cls || (c & C_MOVING)) {
			run = 0;
			run_cls = 0;
		} else if (cls == run_cls) {
			run++;
		} else {
			run = 1;
			run_cls = cls;
		}
		best = MAX(best, run);
	}
	a->posture_s.upright = cls_s[WB_POSTURE_UPRIGHT + 1];
	a->posture_s.flexed = cls_s[WB_POSTURE_FLEXED + 1];
	a->posture_s.reclined = cls_s[WB_POSTURE_RECLINED + 1];
	a->posture_s.lying = cls_s[WB_POSTURE_LYING + 1];
	a->posture_s.unknown = len - a->posture_s.upright - a->posture_s.flexed -
			       a->posture_s.reclined - a->posture_s.lying;
	a->longest_still_s = best;

	for (guint i = 0; w->min_steps && i < w->n_min; i++) {
		if (w->min_steps[i] >= MAX(agg->cfg.walking_min_steps, 1)) {
			walking++;
			walk_steps += w->min_steps[i];
		}
	}
	a->walking_minutes = MIN(walking, (len + 59) / 60);
	a->cadence_spm = walking ? (int) MIN((walk_steps + walking / 2) / walking,
					     (int64_t) 300) : RL_NONE;

	out->day.post_op_day = RL_NONE;
	if (w->kind == GW_AGG_DAY) {
		memcpy(out->local_date, w->local_date, sizeof out->local_date);
		out->day.local_date = out->local_date;
		out->day.utc_offset_min = w->utc_offset_min;
		out->day.post_op_day = w->post_op_day;
	}
	out->quality = rank_quality(w->worst);
	out->revised = w->emitted;
	out->first_seq = (uint32_t) w->first_seq;
	out->last_seq = (uint32_t) w->last_seq;
}

static void window_emit(GwAgg *agg, struct window *w)
{
	struct gw_agg_window out;

	window_fill(agg, w, &out);
	w->dirty = false;
	w->emitted = true;
	set_deadline(agg, w, sat_add(sat_add(w->end_s * USEC,
					      agg->cfg.revise_horizon_us), 1));
	agg->st.emitted++;
	if (out.revised)
		agg->st.revisions++;
	if (agg->ops.emit) {
		agg->in_emit = true;
		agg->ops.emit(&out, agg->user_data);
		agg->in_emit = false;
	}
}

static void run_due(GwAgg *agg)
{
	bool forgot = false;

	for (;;) {
		GTreeNode *n = g_tree_node_first(agg->due);
		struct window *w;

		if (!n)
			break;
		w = g_tree_node_key(n);
		if (w->deadline > agg->now)
			break;
		if (w->dirty) {
			window_emit(agg, w);
		} else {
			window_forget(agg, w);
			forgot = true;
		}
	}
	if (forgot)
		seqs_expire(agg);
}

/* ---- the API ---- */

static bool wearable_valid(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!g_ascii_isalnum(s[n]) && s[n] != '_' && s[n] != '-')
			return false;
	return n >= 1 && n <= 64;
}

GwAgg *gw_agg_new(const char *wearable, const struct gw_agg_config *cfg,
		  const struct gw_agg_ops *ops, void *user_data)
{
	GwAgg *agg;
	GDate epoch;

	g_return_val_if_fail(wearable && wearable_valid(wearable), NULL);
	agg = g_new0(GwAgg, 1);
	agg->wearable = g_strdup(wearable);
	if (cfg)
		agg->cfg = *cfg;
	else
		gw_agg_config_init(&agg->cfg);
	agg->cfg.close_grace_us = MAX(agg->cfg.close_grace_us, 0);
	agg->cfg.revise_horizon_us = MAX(agg->cfg.revise_horizon_us, 0);
	agg->tz = agg->cfg.tz ? g_time_zone_ref(agg->cfg.tz) : g_time_zone_new_local();
	agg->cfg.tz = agg->tz;
	if (ops)
		agg->ops = *ops;
	agg->user_data = user_data;
	agg->minutes = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
					     window_free);
	agg->days = g_ptr_array_new_with_free_func(window_free);
	agg->due = g_tree_new(due_cmp);
	agg->seqs = g_array_new(FALSE, FALSE, sizeof(struct seq_range));
	agg->now = INT64_MIN;
	g_date_clear(&epoch, 1);
	g_date_set_dmy(&epoch, 1, G_DATE_JANUARY, 1970);
	agg->epoch_julian = g_date_get_julian(&epoch);
	return agg;
}

void gw_agg_free(GwAgg *agg)
{
	if (!agg)
		return;
	/* the tree first: it only refers to the windows */
	g_clear_pointer(&agg->due, g_tree_destroy);
	g_clear_pointer(&agg->minutes, g_hash_table_unref);
	g_clear_pointer(&agg->days, g_ptr_array_unref);
	g_clear_pointer(&agg->seqs, g_array_unref);
	g_clear_pointer(&agg->tz, g_time_zone_unref);
	g_free(agg->wearable);
	g_free(agg);
}

void gw_agg_add(GwAgg *agg, const struct wb_record *rec, int64_t event_us,
		enum rl_time_quality quality, int64_t now_us)
{
	g_return_if_fail(agg && rec);
	g_return_if_fail(!agg->in_emit);
	agg->now = MAX(agg->now, now_us);
	add_record(agg, rec, event_us, quality);
	run_due(agg);
}

void gw_agg_tick(GwAgg *agg, int64_t now_us)
{
	g_return_if_fail(agg);
	g_return_if_fail(!agg->in_emit);
	agg->now = MAX(agg->now, now_us);
	run_due(agg);
}

int64_t gw_agg_next_deadline(const GwAgg *agg)
{
	GTreeNode *n;

	g_return_val_if_fail(agg, INT64_MAX);
	n = g_tree_node_first(agg->due);
	return n ? ((const struct window *) g_tree_node_key(n))->deadline : INT64_MAX;
}

static gboolean collect_dirty(gpointer key, gpointer value, gpointer user_data)
{
	struct window *w = value;

	(void) key;
	if (w->dirty)
		g_ptr_array_add(user_data, w);
	return FALSE;
}

void gw_agg_flush(GwAgg *agg, int64_t now_us)
{
	g_autoptr(GPtrArray) dirty = g_ptr_array_new();

	g_return_if_fail(agg);
	g_return_if_fail(!agg->in_emit);
	agg->now = MAX(agg->now, now_us);
	run_due(agg);
	/* what is left dirty is not due yet: in deadline order */
	g_tree_foreach(agg->due, collect_dirty, dirty);
	for (guint i = 0; i < dirty->len; i++)
		window_emit(agg, g_ptr_array_index(dirty, i));
}

static void lowest_seq(const struct window *w, bool *found, int64_t *low)
{
	if (w->has_seq && (!*found || w->first_seq < *low)) {
		*low = w->first_seq;
		*found = true;
	}
}

bool gw_agg_needed_seq(const GwAgg *agg, uint32_t *ret)
{
	GHashTableIter it;
	gpointer value;
	bool found = false;
	int64_t low = 0;

	g_return_val_if_fail(agg && ret, false);
	g_hash_table_iter_init(&it, agg->minutes);
	while (g_hash_table_iter_next(&it, NULL, &value))
		lowest_seq(value, &found, &low);
	for (guint i = 0; i < agg->days->len; i++)
		lowest_seq(g_ptr_array_index(agg->days, i), &found, &low);
	if (!found) {
		if (!agg->have_ref)
			return false;
		low = agg->ref + 1;
	}
	*ret = (uint32_t) low;
	return true;
}

struct gw_agg_stats gw_agg_get_stats(const GwAgg *agg)
{
	struct gw_agg_stats st = { 0 };

	g_return_val_if_fail(agg, st);
	return agg->st;
}
