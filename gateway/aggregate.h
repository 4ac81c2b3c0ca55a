/* SPDX-License-Identifier: MIT */
/*
 * The aggregator: one wearable's records into per-minute windows and
 * per-day summaries (docs/architecture.md, "Aggregation"). Pure: records
 * and the time come in as calls, finished windows leave through ops.
 *
 * Every record comes with its event time on the wall clock (Unix us) and
 * the quality of that time; records whose time cannot be placed (an
 * unsynchronised wearable while the gateway's clock is unsynchronised too)
 * are held back by the caller until they can, never stamped here.
 *
 * A posture or steps record covers [event, event + duration_s); a record
 * straddling a window boundary is split proportionally (steps rounded so
 * the parts add up to the whole). Pain and status records count towards
 * `records` only.
 *
 * Windows. Minute windows are [k*60 s, (k+1)*60 s) in UTC. Day windows are
 * the patient's local days, from local midnight to the next local midnight
 * in the configured time zone (23 or 25 h across a DST change), with the
 * local date and the UTC offset at the start.
 *
 * Emission. A window is emitted once the wall clock (now) passes its end
 * plus close_grace_us. A record arriving later for a window already
 * emitted (a history sync after the link was lost) updates the window and
 * emits it again with all its records: the caller gives it the next
 * revision under the same aggregate id. Windows stay in memory for
 * revise_horizon_us after their end; a record older than that is counted
 * in stats.too_late and not aggregated (its raw row stays in the store).
 *
 * Metrics per window (struct rl_aggregate):
 *  - steps: the sum;
 *  - walking_minutes: minutes of the window (UTC minutes) with at least
 *    walking_min_steps steps;
 *  - cadence_spm: steps in walking minutes / walking minutes, rounded,
 *    RL_NONE if none;
 *  - posture_s: seconds per posture class (from posture records);
 *  - flexed_over_30_s / _60_s: posture seconds with flexion above
 *    flexed_30_ddeg / flexed_60_ddeg (strictly above);
 *  - longest_still_s: the longest run of seconds covered by posture
 *    records, in the window, with no steps in it and no change of posture
 *    class (a day's longest bout may span minutes);
 *  - records: records of any type with an event time in the window.
 */
#ifndef REHABLINK_GATEWAY_AGGREGATE_H
#define REHABLINK_GATEWAY_AGGREGATE_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "payload.h"
#include "wearable.h"

enum gw_agg_kind {
	GW_AGG_MINUTE,
	GW_AGG_DAY,
};

struct gw_agg_config {
	int64_t close_grace_us;		/* default 5 s */
	int64_t revise_horizon_us;	/* default 72 h */
	int flexed_30_ddeg;		/* default 300 */
	int flexed_60_ddeg;		/* default 600 */
	int walking_min_steps;		/* default 10 per minute */
	GTimeZone *tz;			/* borrowed; NULL: the system's local zone */
	bool have_surgery_date;		/* for post_op_day, else RL_NONE */
	int surgery_year, surgery_month, surgery_day;	/* local date */
};
void gw_agg_config_init(struct gw_agg_config *cfg);

#define GW_AGG_ID_MAX 96

/* What leaves: valid during the emit call. */
struct gw_agg_window {
	enum gw_agg_kind kind;
	char aggregate_id[GW_AGG_ID_MAX];	/* "<wearable>:minute:<start unix s>"
						 * or "<wearable>:day:<YYYY-MM-DD>" */
	struct rl_aggregate_day day;	/* day.agg for both kinds;
					 * agg.aggregate_id points above,
					 * agg.revision is 0 (the caller's);
					 * the day fields only for GW_AGG_DAY */
	char local_date[11];		/* day.local_date points here */
	enum rl_time_quality quality;	/* the worst of its records' times */
	bool revised;			/* emitted before: a late record came */
	/* the seqs it holds, serial order, for the store's mark_aggregated */
	uint32_t first_seq, last_seq;
};

struct gw_agg_ops {
	void (*emit)(const struct gw_agg_window *w, void *user_data);
};

struct gw_agg_stats {
	uint64_t records;		/* aggregated */
	uint64_t too_late;		/* older than the horizon */
	uint64_t duplicates;		/* a seq already aggregated */
	uint64_t overlaps;		/* records covering seconds another
					 * record of their type covers: capped */
	uint64_t emitted;
	uint64_t revisions;
	unsigned int open_windows;	/* in memory */
};

typedef struct gw_agg GwAgg;

/* wearable: the id used in aggregate ids ([A-Za-z0-9_-], up to 64). */
GwAgg *gw_agg_new(const char *wearable, const struct gw_agg_config *cfg,
		  const struct gw_agg_ops *ops, void *user_data);
void gw_agg_free(GwAgg *agg);			/* NULL-safe */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwAgg, gw_agg_free)

/* One record with its event time (wall, Unix us) and its quality. A seq
 * already aggregated is ignored (counted). Emits what is due at now. */
void gw_agg_add(GwAgg *agg, const struct wb_record *rec, int64_t event_us,
		enum rl_time_quality quality, int64_t now_us);
/* Emits the windows due at now; forgets those past the horizon. */
void gw_agg_tick(GwAgg *agg, int64_t now_us);
/* When gw_agg_tick next has something to do, or INT64_MAX. */
int64_t gw_agg_next_deadline(const GwAgg *agg);
/* Emits every window with records not yet emitted, whatever the time
 * (shutdown, tests). */
void gw_agg_flush(GwAgg *agg, int64_t now_us);
/* The lowest seq (wrapped to 32 bits) that an aggregator rebuilt after a
 * restart would need to be fed again: the first seq of the oldest window
 * it still holds (every window it holds may still be revised by a late
 * record, and is then emitted again whole, so all its records are
 * needed), else one past the highest seq aggregated. FALSE when it has
 * aggregated nothing. Records before it may be marked aggregated in the
 * store; marking by the windows emitted instead (a day window's last seq)
 * let a rebuild re-create a still revisable window from part of its
 * records. */
bool gw_agg_needed_seq(const GwAgg *agg, uint32_t *ret);
struct gw_agg_stats gw_agg_get_stats(const GwAgg *agg);

#endif
