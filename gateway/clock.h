/* SPDX-License-Identifier: MIT */
/*
 * Time for a gateway whose clock may be wrong at boot (docs/architecture.md,
 * "Time"). Two parts:
 *
 *  - the system's view: is the wall clock synchronised (adjtimex(2): the
 *    kernel clears STA_UNSYNC once NTP disciplines it), and the boot id
 *    that makes CLOCK_MONOTONIC stamps comparable;
 *  - a pure rule placing a wearable record on the wall clock, with the
 *    quality of the result. Nothing is ever stamped from an unsynchronised
 *    clock: a record that cannot be placed is kept (unaggregated) and
 *    placed later, once the clock is synchronised.
 */
#ifndef REHABLINK_GATEWAY_CLOCK_H
#define REHABLINK_GATEWAY_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "payload.h"
#include "wearable.h"

enum gw_clock_mode {
	GW_CLOCK_AUTO,		/* ask the kernel */
	GW_CLOCK_SYNCED,	/* trust the clock (no NTP on purpose: a lab) */
	GW_CLOCK_UNSYNCED,	/* never trust it */
};
/* "auto", "synced", "unsynced"; false if s is none of them. */
bool gw_clock_mode_parse(const char *s, enum gw_clock_mode *ret);
const char *gw_clock_mode_name(enum gw_clock_mode m);

/* Is the wall clock synchronised, under mode. */
bool gw_clock_synced(enum gw_clock_mode mode);

#define GW_BOOT_ID_SIZE 37
/* The kernel's boot id (a UUID), or "unknown" if it cannot be read. */
void gw_clock_boot_id(char buf[GW_BOOT_ID_SIZE]);

/*
 * Placing records of one wearable. A wearable whose own clock is set
 * (time quality synced or holdover) gives its time: WB_EPOCH_UNIX + time
 * seconds, with its quality. A wearable whose clock is not set stamps its
 * records with seconds since its power-up. Its status records carry that
 * uptime too, so a status record stamped with a set clock maps the two
 * exactly: relative time u is wall time (status time - (status uptime -
 * u)), quality "estimated" (the wearable's clock may have drifted since).
 * Arrival times are never used: history arrives long after it happened.
 * A status record with a smaller uptime than the reference's and a later
 * seq means the wearable restarted: the mapping is replaced (records of
 * the earlier power-up stay unplaced).
 */
struct gw_clock_ref {
	bool valid;
	uint32_t seq;		/* the status record it came from */
	uint32_t uptime_s;	/* its uptime */
	int64_t wall_us;	/* its wall time */
};

/* Learns from a record (only synced or holdover status records teach);
 * true if the reference changed. */
bool gw_clock_ref_update(struct gw_clock_ref *ref, const struct wb_record *rec);
/* true and the event time and quality, or false: cannot be placed now. */
bool gw_clock_place(const struct gw_clock_ref *ref, const struct wb_record *rec,
		    int64_t *ret_us, enum rl_time_quality *ret_quality);

#endif
