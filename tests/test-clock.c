// SPDX-License-Identifier: MIT
/* gateway/clock: modes, boot id, and placing records on the wall clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"

#define SEC INT64_C(1000000)

static struct wb_record rec(uint32_t seq, uint32_t t, enum wb_time_quality q)
{
	struct wb_record r;

	memset(&r, 0, sizeof(r));
	r.type = WB_RECORD_STEPS;
	r.version = 1;
	r.seq = seq;
	r.time = t;
	r.time_quality = q;
	r.u.steps.steps = 10;
	r.u.steps.duration_s = 60;
	return r;
}

static void test_modes(void **state)
{
	enum gw_clock_mode m = GW_CLOCK_AUTO;

	(void)state;
	assert_true(gw_clock_mode_parse("synced", &m));
	assert_int_equal(m, GW_CLOCK_SYNCED);
	assert_true(gw_clock_synced(m));
	assert_true(gw_clock_mode_parse("unsynced", &m));
	assert_false(gw_clock_synced(m));
	assert_true(gw_clock_mode_parse("auto", &m));
	assert_int_equal(m, GW_CLOCK_AUTO);
	m = GW_CLOCK_SYNCED;
	assert_false(gw_clock_mode_parse("Synced", &m));
	assert_false(gw_clock_mode_parse("", &m));
	assert_false(gw_clock_mode_parse(NULL, &m));
	assert_int_equal(m, GW_CLOCK_SYNCED);	/* untouched on error */
	assert_string_equal(gw_clock_mode_name(GW_CLOCK_UNSYNCED), "unsynced");
	assert_string_equal(gw_clock_mode_name((enum gw_clock_mode)7), "invalid");
}

static void test_boot_id(void **state)
{
	char a[GW_BOOT_ID_SIZE], b[GW_BOOT_ID_SIZE];

	(void)state;
	gw_clock_boot_id(a);
	gw_clock_boot_id(b);
	assert_string_equal(a, b);
	/* a UUID on Linux */
	assert_int_equal(strlen(a), 36);
	assert_int_equal(a[8], '-');
	assert_int_equal(a[23], '-');
}

/* The wearable's own clock, synced or in holdover: its time, its quality. */
static void test_place_wearable_time(void **state)
{
	struct gw_clock_ref ref = { 0 };
	struct wb_record r = rec(1, 1000, WB_TIME_SYNCED);
	enum rl_time_quality q;
	int64_t t;

	(void)state;
	assert_true(gw_clock_place(&ref, &r, &t, &q));
	assert_int_equal(t, (WB_EPOCH_UNIX + 1000) * SEC);
	assert_int_equal(q, RL_TIME_SYNCED);
	r.time_quality = WB_TIME_HOLDOVER;
	assert_true(gw_clock_place(&ref, &r, &t, &q));
	assert_int_equal(q, RL_TIME_HOLDOVER);
}

static struct wb_record status(uint32_t seq, uint32_t t, enum wb_time_quality q, uint32_t up)
{
	struct wb_record r = rec(seq, t, q);

	r.type = WB_RECORD_STATUS;
	r.u.status.battery_pct = 50;
	r.u.status.uptime_s = up;
	return r;
}

/* Relative time: nothing without a reference; only a status record with a
 * set clock teaches one, and it maps uptime to wall time exactly. */
static void test_place_relative_through_status(void **state)
{
	struct gw_clock_ref ref = { 0 };
	struct wb_record r = rec(1, 500, WB_TIME_UNSYNCED);
	struct wb_record st;
	enum rl_time_quality q = RL_TIME_SYNCED;
	int64_t t = 42;

	(void)state;
	assert_false(gw_clock_place(&ref, &r, &t, &q));
	assert_int_equal(t, 42);
	/* records never teach, nor does an unsynced status */
	assert_false(gw_clock_ref_update(&ref, &r));
	st = status(2, 900, WB_TIME_UNSYNCED, 900);
	assert_false(gw_clock_ref_update(&ref, &st));
	assert_false(ref.valid);
	/* the clock was set at uptime 1000: status at uptime 1100, wall T */
	st = status(3, 800000000, WB_TIME_SYNCED, 1100);
	assert_true(gw_clock_ref_update(&ref, &st));
	assert_true(gw_clock_place(&ref, &r, &t, &q));
	assert_int_equal(t, (WB_EPOCH_UNIX + 800000000 - 600) * SEC);
	assert_int_equal(q, RL_TIME_ESTIMATED);
	/* the same mapping again: no change reported */
	st = status(4, 800000060, WB_TIME_HOLDOVER, 1160);
	assert_false(gw_clock_ref_update(&ref, &st));
	/* an older status never replaces a newer one */
	st = status(1, 1, WB_TIME_SYNCED, 5);
	assert_false(gw_clock_ref_update(&ref, &st));
	assert_int_equal(ref.seq, 4);
	/* far beyond the reference: another power-up, not placed */
	r = rec(9, 1160 + 8 * 86400, WB_TIME_UNSYNCED);
	assert_false(gw_clock_place(&ref, &r, &t, &q));
}

/* A restart (uptime back to a few seconds, clock set again): a new
 * mapping, reported as a change. */
static void test_ref_restart(void **state)
{
	struct gw_clock_ref ref = { 0 };
	struct wb_record st = status(10, 800000000, WB_TIME_SYNCED, 1000);
	struct wb_record r = rec(12, 5, WB_TIME_UNSYNCED);
	enum rl_time_quality q;
	int64_t t;

	(void)state;
	assert_true(gw_clock_ref_update(&ref, &st));
	st = status(13, 800003600, WB_TIME_SYNCED, 20);
	assert_true(gw_clock_ref_update(&ref, &st));
	assert_true(gw_clock_place(&ref, &r, &t, &q));
	assert_int_equal(t, (WB_EPOCH_UNIX + 800003600 - 15) * SEC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_boot_id),
		cmocka_unit_test(test_place_wearable_time),
		cmocka_unit_test(test_place_relative_through_status),
		cmocka_unit_test(test_ref_restart),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
