// SPDX-License-Identifier: MIT
/* Clock synchronisation, boot id and record placement (see clock.h). */
#include <stdio.h>
#include <string.h>
#include <sys/timex.h>

#include "clock.h"

static const char *const mode_names[] = {
	[GW_CLOCK_AUTO] = "auto",
	[GW_CLOCK_SYNCED] = "synced",
	[GW_CLOCK_UNSYNCED] = "unsynced",
};

bool gw_clock_mode_parse(const char *s, enum gw_clock_mode *ret)
{
	for (size_t i = 0; s && i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
		if (strcmp(s, mode_names[i]) == 0) {
			*ret = (enum gw_clock_mode)i;
			return true;
		}
	return false;
}

const char *gw_clock_mode_name(enum gw_clock_mode m)
{
	return (unsigned)m < sizeof(mode_names) / sizeof(mode_names[0]) ? mode_names[m] : "invalid";
}

bool gw_clock_synced(enum gw_clock_mode mode)
{
	struct timex tx;
	int state;

	switch (mode) {
	case GW_CLOCK_SYNCED:
		return true;
	case GW_CLOCK_UNSYNCED:
		return false;
	case GW_CLOCK_AUTO:
		break;
	}
	memset(&tx, 0, sizeof(tx));	/* modes 0: read only */
	state = adjtimex(&tx);
	return state != -1 && state != TIME_ERROR && !(tx.status & STA_UNSYNC);
}

void gw_clock_boot_id(char buf[GW_BOOT_ID_SIZE])
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, GW_BOOT_ID_SIZE - 1, f);
		fclose(f);
	}
	if (n != GW_BOOT_ID_SIZE - 1) {
		snprintf(buf, GW_BOOT_ID_SIZE, "unknown");
		return;
	}
	buf[n] = '\0';
}

bool gw_clock_ref_update(struct gw_clock_ref *ref, const struct wb_record *rec)
{
	int64_t wall_us, old_offset, offset;
	bool changed;

	if (rec->type != WB_RECORD_STATUS || rec->time_quality == WB_TIME_UNSYNCED)
		return false;
	if (ref->valid && !wb_seq_after(rec->seq, ref->seq))
		return false;	/* an older status: the newer mapping stays */
	wall_us = (WB_EPOCH_UNIX + (int64_t)rec->time) * 1000000;
	/* power-up time on the wall clock, before and now */
	offset = wall_us - (int64_t)rec->u.status.uptime_s * 1000000;
	old_offset = ref->wall_us - (int64_t)ref->uptime_s * 1000000;
	changed = !ref->valid || offset - old_offset > 2000000 || old_offset - offset > 2000000;
	ref->valid = true;
	ref->seq = rec->seq;
	ref->uptime_s = rec->u.status.uptime_s;
	ref->wall_us = wall_us;
	return changed;
}

bool gw_clock_place(const struct gw_clock_ref *ref, const struct wb_record *rec,
		    int64_t *ret_us, enum rl_time_quality *ret_quality)
{
	switch (rec->time_quality) {
	case WB_TIME_SYNCED:
	case WB_TIME_HOLDOVER:
		*ret_us = (WB_EPOCH_UNIX + (int64_t)rec->time) * 1000000;
		*ret_quality = rec->time_quality == WB_TIME_SYNCED ? RL_TIME_SYNCED : RL_TIME_HOLDOVER;
		return true;
	case WB_TIME_UNSYNCED:
		break;
	}
	if (!ref->valid || rec->time > ref->uptime_s + 7u * 86400u)
		return false;	/* none, or beyond a week after it: another power-up */
	*ret_us = ref->wall_us - ((int64_t)ref->uptime_s - (int64_t)rec->time) * 1000000;
	*ret_quality = RL_TIME_ESTIMATED;
	return *ret_us >= 0;
}
