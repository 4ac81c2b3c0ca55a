/* SPDX-License-Identifier: MIT */
/*
 * Tests of the wearable simulator core (gateway/sim.c): flash ring,
 * state file, scenario parser, history control point server, clock,
 * and the records of a simulated day. Bytes the simulator sends are
 * checked through the proto/ decoders. Section numbers refer to
 * docs/protocol-gatt.md; scenario rules to docs/simulator.md.
 *
 * Run from the top of the tree (the scenarios are read from
 * tests/data/scenarios; SIM_SCENARIO_DIR overrides).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "helpers.h"
#include "sim.h"
#include "wearable.h"

#define S (GW_SIM_US_PER_S)
#define MIN_US (60 * S)
#define H (3600 * S)

/* ---- helpers ------------------------------------------------------------------ */

static const char *scenario_dir(void)
{
	const char *d = g_getenv("SIM_SCENARIO_DIR");

	return d ? d : "tests/data/scenarios";
}

static GwSimScenario *parse_ok(const char *text)
{
	g_autoptr(GError) error = NULL;
	GwSimScenario *sc = NULL;
	int rc = gw_sim_scenario_parse(text, strlen(text), "t.txt", &sc, &error);

	if (rc != 0)
		fail_msg("parse: %s", error->message);
	assert_non_null(sc);
	return sc;
}

static GwSim *sim_new(const char *text, uint32_t capacity, const char *state)
{
	g_autoptr(GwSimScenario) sc = parse_ok(text);
	g_autoptr(GError) error = NULL;
	struct gw_sim_config cfg = { .capacity = capacity, .state_path = state,
				     .seed = 7 };
	GwSim *sim = gw_sim_new(&cfg, sc, 0, &error);

	if (!sim)
		fail_msg("gw_sim_new: %s", error->message);
	return sim;
}

static void advance(GwSim *sim, int64_t t)
{
	g_autoptr(GError) error = NULL;

	if (!gw_sim_advance(sim, t, &error))
		fail_msg("advance: %s", error->message);
}

static struct gw_sim_stats stats(const GwSim *sim)
{
	struct gw_sim_stats st;

	gw_sim_get_stats(sim, &st);
	return st;
}

static unsigned int count_type(const GwSim *sim, enum wb_record_type t)
{
	struct gw_sim_stats st = stats(sim);
	struct wb_record rec;
	unsigned int n = 0;

	for (uint32_t i = 0; i < st.stored; i++) {
		assert_true(gw_sim_get_record(sim, i, &rec));
		n += rec.type == t;
	}
	return n;
}

/* Drains the tx queue; returns how many values went to ch. */
static unsigned int drain(GwSim *sim, enum gw_sim_char ch)
{
	struct gw_sim_tx tx;
	unsigned int n = 0;

	while (gw_sim_pop_tx(sim, &tx))
		n += tx.ch == ch;
	return n;
}

static void connect_hcp(GwSim *sim, unsigned int mtu)
{
	gw_sim_connect(sim, mtu);
	gw_sim_set_notify(sim, GW_SIM_CHAR_HISTORY_CP, true);
	gw_sim_set_notify(sim, GW_SIM_CHAR_HISTORY_DATA, true);
}

static int hcp(GwSim *sim, const char *hex)
{
	uint8_t buf[16];
	size_t n = test_hex(hex, buf, sizeof(buf));

	return gw_sim_write(sim, GW_SIM_CHAR_HISTORY_CP, buf, n);
}

/* What a report (or any request) sent: the records on History data, and
 * the last control point response. */
struct hcp_result {
	GArray *seqs;			/* uint32_t */
	unsigned int batches;
	size_t max_batch_len;
	unsigned int responses;
	struct wb_hcp_response rsp;	/* the last one */
	uint8_t raw[16];
	size_t raw_len;
	int rsp_rc;
};

static void hcp_result_clear(struct hcp_result *r)
{
	g_clear_pointer(&r->seqs, g_array_unref);
}

static struct hcp_result collect(GwSim *sim, unsigned int max_values)
{
	struct hcp_result r = { .seqs = g_array_new(FALSE, FALSE, sizeof(uint32_t)),
				.rsp_rc = -ENODATA };
	struct gw_sim_tx tx;

	for (unsigned int i = 0; i < max_values && gw_sim_pop_tx(sim, &tx); i++) {
		if (tx.ch == GW_SIM_CHAR_HISTORY_DATA) {
			struct wb_record recs[WB_BATCH_MAX];
			struct wb_err err = { 0 };
			int n = wb_batch_decode(tx.data, tx.len, recs, WB_BATCH_MAX, &err);

			if (n < 0)
				fail_msg("history batch: %s at %zu (%s)", wb_strerror(n),
					 err.offset, err.field ? err.field : "?");
			assert_int_equal(n, tx.records);
			for (int k = 0; k < n; k++)
				g_array_append_val(r.seqs, recs[k].seq);
			r.batches++;
			r.max_batch_len = MAX(r.max_batch_len, tx.len);
		} else if (tx.ch == GW_SIM_CHAR_HISTORY_CP) {
			r.responses++;
			memcpy(r.raw, tx.data, MIN(tx.len, sizeof(r.raw)));
			r.raw_len = tx.len;
			r.rsp_rc = wb_hcp_response_decode(tx.data, tx.len, &r.rsp, NULL);
		}
	}
	return r;
}

static void assert_code(const struct hcp_result *r, enum wb_hcp_opcode req,
			enum wb_hcp_code code)
{
	assert_int_equal(r->rsp_rc, 0);
	assert_int_equal(r->rsp.opcode, WB_HCP_RESPONSE_CODE);
	assert_int_equal(r->rsp.request, req);
	assert_int_equal(r->rsp.code, code);
}

/* An hour of records: 60 posture, 60 steps, 2 status (boot + hourly). */
static const char hour_text[] = "at 00:00 upright 1h\n";

static char *tmpdir_new(void)
{
	g_autoptr(GError) error = NULL;
	char *d = g_dir_make_tmp("test-sim-XXXXXX", &error);

	if (!d)
		fail_msg("tmpdir: %s", error->message);
	return d;
}

static void rm_rf(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *n;

	while (d && (n = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(dir, n, NULL);

		if (g_file_test(p, G_FILE_TEST_IS_DIR))
			rm_rf(p);
		else
			g_unlink(p);
	}
	g_rmdir(dir);
}

/* ---- flash ring ------------------------------------------------------------------ */

static void test_ring_basic(void **state)
{
	g_autoptr(GwSim) sim = sim_new(hour_text, 0, NULL);
	struct gw_sim_stats st;
	struct wb_record rec;

	(void) state;
	advance(sim, 0);
	st = stats(sim);
	assert_int_equal(st.stored, 1);		/* the power-up status */
	assert_true(gw_sim_get_record(sim, 0, &rec));
	assert_int_equal(rec.type, WB_RECORD_STATUS);
	assert_int_equal(rec.seq, 1);
	advance(sim, H);
	st = stats(sim);
	assert_int_equal(count_type(sim, WB_RECORD_POSTURE), 60);
	assert_int_equal(count_type(sim, WB_RECORD_STEPS), 60);
	assert_int_equal(count_type(sim, WB_RECORD_STATUS), 2);
	assert_int_equal(st.stored, 122);
	assert_int_equal(st.first_seq, 1);
	assert_int_equal(st.last_seq, 122);
	assert_int_equal(st.next_seq, 123);
	for (uint32_t i = 0; i < st.stored; i++) {
		assert_true(gw_sim_get_record(sim, i, &rec));
		assert_int_equal(rec.seq, i + 1);
		assert_int_equal(wb_record_validate(&rec, NULL), 0);
	}
	assert_false(gw_sim_get_record(sim, st.stored, &rec));
}

static void test_ring_wrap_overwrite(void **state)
{
	g_autoptr(GwSim) sim = sim_new(hour_text, 50, NULL);
	struct gw_sim_stats st;
	struct wb_record rec;
	struct wb_features f;

	(void) state;
	advance(sim, H);
	st = stats(sim);
	assert_int_equal(st.capacity, 50);
	assert_int_equal(st.stored, 50);
	assert_true(st.overwritten > 70);
	assert_int_equal(st.last_seq, st.first_seq + 49);
	assert_true(st.status_flags & WB_STATUS_STORAGE_FULL);
	for (uint32_t i = 0; i < 50; i++) {
		assert_true(gw_sim_get_record(sim, i, &rec));
		assert_int_equal(rec.seq, st.first_seq + i);
	}
	/* the status record after the first overwrite says so */
	bool seen_full = false;
	for (uint32_t i = 0; i < 50; i++) {
		assert_true(gw_sim_get_record(sim, i, &rec));
		if (rec.type == WB_RECORD_STATUS &&
		    (rec.u.status.flags & WB_STATUS_STORAGE_FULL)) {
			seen_full = true;
			assert_int_equal(rec.u.status.storage_pct, 100);
		}
	}
	assert_true(seen_full || count_type(sim, WB_RECORD_STATUS) == 0);
	gw_sim_get_features(sim, &f);
	assert_int_equal(f.stored, 50);
	assert_int_equal(wb_features_fill_pct(&f), 100);

	/* a delete frees space: the flag clears */
	connect_hcp(sim, 247);
	char req[32];
	snprintf(req, sizeof(req), "03 02 %02x %02x %02x %02x",
		 (st.first_seq + 9) & 0xff, ((st.first_seq + 9) >> 8) & 0xff,
		 ((st.first_seq + 9) >> 16) & 0xff, (st.first_seq + 9) >> 24);
	assert_int_equal(hcp(sim, req), 0);
	struct hcp_result r = collect(sim, 100);
	assert_code(&r, WB_HCP_DELETE_RECORDS, WB_HCP_SUCCESS);
	assert_int_equal(r.rsp.count, 10);
	hcp_result_clear(&r);
	st = stats(sim);
	assert_false(st.status_flags & WB_STATUS_STORAGE_FULL);
	assert_int_equal(st.stored, 41);	/* 40 + a status record saying so */
}

/* ---- state file ----------------------------------------------------------------- */

static void test_state_restart_no_reuse(void **state)
{
	g_autofree char *dir = tmpdir_new();
	g_autofree char *path = g_build_filename(dir, "w.state", NULL);
	g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
	g_autoptr(GError) error = NULL;
	struct gw_sim_stats st;
	uint32_t used_before_crash, saved_last;

	(void) state;
	{
		g_autoptr(GwSim) sim = sim_new(hour_text, 0, path);

		advance(sim, 30 * MIN_US);
		assert_true(g_file_test(path, G_FILE_TEST_EXISTS));	/* reservation */
		assert_true(gw_sim_save(sim, &error));
		saved_last = stats(sim).last_seq;
		advance(sim, H);	/* more records, no save: then a crash */
		used_before_crash = stats(sim).last_seq;
		assert_true(used_before_crash > saved_last);
		assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
	}
	{
		g_autoptr(GwSim) sim = sim_new(hour_text, 0, path);

		st = stats(sim);
		/* the flash as saved, the counter beyond anything used */
		assert_int_equal(st.last_seq, saved_last);
		assert_int_equal(st.stored, saved_last);
		assert_true(wb_seq_after(st.next_seq, used_before_crash));
		assert_int_equal(gw_sim_get_time(sim), 30 * MIN_US);
		advance(sim, 2 * H);
		st = stats(sim);
		struct wb_record rec;
		assert_true(gw_sim_get_record(sim, saved_last, &rec));
		assert_true(wb_seq_after(rec.seq, used_before_crash));
		/* a clean shutdown keeps the exact counter */
		assert_true(gw_sim_save_final(sim, &error));
	}
	{
		g_autoptr(GwSim) sim = sim_new(hour_text, 0, path);
		struct gw_sim_stats st2 = stats(sim);

		assert_int_equal(st2.next_seq, st.next_seq);
		assert_int_equal(st2.stored, st.stored);
		assert_int_equal(st2.last_seq, st.last_seq);
		assert_int_equal(gw_sim_get_time(sim), 2 * H);
	}
	rm_rf(dir);
}

static void test_state_atomic_and_corrupt(void **state)
{
	g_autofree char *dir = tmpdir_new();
	g_autofree char *path = g_build_filename(dir, "w.state", NULL);
	g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
	g_autofree char *before = NULL, *after = NULL;
	g_autoptr(GwSimScenario) sc = parse_ok(hour_text);
	g_autoptr(GError) error = NULL;
	gsize blen, alen;
	struct gw_sim_config cfg = { .state_path = path };

	(void) state;
	{
		g_autoptr(GwSim) sim = sim_new(hour_text, 0, path);

		advance(sim, H);
		assert_true(gw_sim_save(sim, &error));
		assert_true(g_file_get_contents(path, &before, &blen, NULL));
		/* a write that cannot happen leaves the old file whole */
		assert_int_equal(g_mkdir(tmp, 0700), 0);
		advance(sim, 2 * H);
		assert_false(gw_sim_save(sim, &error));
		assert_true(g_error_matches(error, GW_SIM_ERROR, GW_SIM_ERROR_IO));
		assert_non_null(strstr(error->message, "w.state.tmp"));
		g_clear_error(&error);
		assert_true(g_file_get_contents(path, &after, &alen, NULL));
		assert_int_equal(alen, blen);
		assert_memory_equal(after, before, blen);
		g_rmdir(tmp);
	}
	/* a flipped byte, a torn tail, a foreign file: refused with the path */
	before[blen / 2] ^= 0x40;
	assert_true(g_file_set_contents(path, before, (gssize) blen, NULL));
	assert_null(gw_sim_new(&cfg, sc, 0, &error));
	assert_true(g_error_matches(error, GW_SIM_ERROR, GW_SIM_ERROR_STATE));
	assert_non_null(strstr(error->message, "checksum"));
	assert_non_null(strstr(error->message, path));
	g_clear_error(&error);
	before[blen / 2] ^= 0x40;
	assert_true(g_file_set_contents(path, before, (gssize) blen - 7, NULL));
	assert_null(gw_sim_new(&cfg, sc, 0, &error));
	assert_true(g_error_matches(error, GW_SIM_ERROR, GW_SIM_ERROR_STATE));
	g_clear_error(&error);
	assert_true(g_file_set_contents(path, "hello", 5, NULL));
	assert_null(gw_sim_new(&cfg, sc, 0, &error));
	assert_non_null(strstr(error->message, "not a simulator state file"));
	g_clear_error(&error);
	/* a capacity that does not match the file */
	assert_true(g_file_set_contents(path, before, (gssize) blen, NULL));
	cfg.capacity = 99;
	assert_null(gw_sim_new(&cfg, sc, 0, &error));
	assert_non_null(strstr(error->message, "capacity"));
	rm_rf(dir);
}

/* ---- scenario parser ----------------------------------------------------------- */

static void test_scenario_files(void **state)
{
	static const char *const files[] = { "recovery-day-3.txt", "quiet-day.txt",
					     "busy.txt" };

	(void) state;
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		g_autofree char *p = g_build_filename(scenario_dir(), files[i], NULL);
		g_autoptr(GError) error = NULL;
		g_autoptr(GwSimScenario) sc = gw_sim_scenario_load(p, &error);

		if (!sc)
			fail_msg("%s: %s", p, error->message);
		assert_int_equal(gw_sim_scenario_get_end(sc), 24 * H);
		assert_true(gw_sim_scenario_get_n_events(sc) > 5);
	}
	g_autofree char *p = g_build_filename(scenario_dir(), "recovery-day-3.txt", NULL);
	g_autoptr(GwSimScenario) sc = gw_sim_scenario_load(p, NULL);
	assert_int_equal(gw_sim_scenario_get_first_day(sc), 3);
	g_autoptr(GError) error = NULL;
	assert_null(gw_sim_scenario_load("/nonexistent/x.txt", &error));
	assert_non_null(strstr(error->message, "x.txt"));
}

static void test_scenario_good_forms(void **state)
{
	static const char text[] =
		"# comment line\r\n"
		"\n"
		"   day 2   # trailing comment\n"
		"date 2024-02-29\n"
		"clock synced\n"
		"capacity 100\n"
		"posture-period 30s\n"
		"steps-period 1m\n"
		"battery 50\n"
		"battery-drain 0.5\n"
		"charge-rate 30\n"
		"default propped flexion -40.5 tilt 2 jitter 0\n"
		"seq-start 0xfffffff0\n"
		"seed 42\n"
		"at 00:00:00 lying 1h30m\n"
		"at +1h30m walk 90s cadence 0 class flexed\n"
		"at 24:00 pain 0\n"
		"day 4\n"
		"at 01:00 pain 10 flags breathlessness,chest,calf,fever,bleeding,medication,one-sided\n"
		"every 15m from 02:00 to 03:00 sensor-fault 1m\n"
		"at 05:00 charge 1h rate 50\n"
		"at 06:00 battery 100\n"
		"at 07:00 reboot\n"
		"at 08:00 out-of-range 1d\n"
		"end 23:59:59\n";
	g_autoptr(GwSimScenario) sc = parse_ok(text);

	(void) state;
	assert_int_equal(gw_sim_scenario_get_first_day(sc), 2);
	assert_int_equal(gw_sim_scenario_get_end(sc), 2 * 24 * H + 86399 * S);
	assert_int_equal(gw_sim_scenario_get_n_events(sc), 3 + 1 + 4 + 4);

	g_autoptr(GwSim) sim = sim_new(text, 0, NULL);
	struct wb_record rec;
	advance(sim, 0);
	assert_true(gw_sim_get_record(sim, 0, &rec));
	assert_int_equal(rec.seq, 0xfffffff0u);
	assert_int_equal(rec.time_quality, WB_TIME_SYNCED);
	/* 2024-02-29T00:00:00Z */
	assert_int_equal(rec.time, (uint32_t) (INT64_C(1709164800) - WB_EPOCH_UNIX));
	assert_int_equal(rec.u.status.battery_pct, 50);
}

struct bad_vec {
	const char *name;
	const char *text;
	const char *msg;	/* the whole message */
};

static const struct bad_vec bad_vecs[] = {
	{ "unknown-posture", "day 3\n\nat 08:00 slouch 10m\n",
	  "t.txt:3: unknown posture or event 'slouch'" },
	{ "unknown-statement", "jump 3\n", "t.txt:1: unknown statement 'jump'" },
	{ "event-without-at", "walk 10m\n",
	  "t.txt:1: 'walk' needs a time: 'at HH:MM walk ...'" },
	{ "bad-hour", "at 25:00 pain 3\n",
	  "t.txt:1: bad time '25:00': want HH:MM[:SS] or +DUR" },
	{ "bad-minute", "\nat 08:60 pain 3\n",
	  "t.txt:2: bad time '08:60': want HH:MM[:SS] or +DUR" },
	{ "24-not-zero", "at 24:01 pain 3\n",
	  "t.txt:1: bad time '24:01': want HH:MM[:SS] or +DUR" },
	{ "bad-duration", "at 08:00 walk 10x\n", "t.txt:1: bad duration '10x'" },
	{ "zero-duration", "at 08:00 lying 0m\n", "t.txt:1: bad duration '0m'" },
	{ "duration-no-unit", "at 08:00 lying 10\n", "t.txt:1: bad duration '10'" },
	{ "no-duration", "at 08:00 lying\n", "t.txt:1: 'lying' needs a duration" },
	{ "at-short", "at 08:00\n", "t.txt:1: want 'at TIME WHAT'" },
	{ "days-decrease", "day 3\nday 2\n", "t.txt:2: day 2 after day 3: days only increase" },
	{ "day-too-big", "day 9999\n", "t.txt:1: day '9999': want a day number 0..3650" },
	{ "setting-twice", "capacity 5\ncapacity 6\n", "t.txt:2: 'capacity' given twice" },
	{ "capacity-zero", "capacity 0\n", "t.txt:1: capacity '0': want records 1..10000000" },
	{ "period-too-long", "posture-period 2h\n",
	  "t.txt:1: posture-period '2h': want a duration 1s..1h" },
	{ "pain-11", "at 08:00 pain 11\n", "t.txt:1: pain score '11': want 0..10" },
	{ "pain-flag", "at 08:00 pain 5 flags chest,dizzy\n",
	  "t.txt:1: unknown pain flag 'dizzy'" },
	{ "pain-junk", "at 08:00 pain 5 now\n",
	  "t.txt:1: after the pain score: want 'flags F,F,...', got 'now'" },
	{ "battery-101", "battery 101\n", "t.txt:1: battery '101': want percent 0..100" },
	{ "event-battery", "at 09:00 battery x\n", "t.txt:1: battery 'x': want percent 0..100" },
	{ "flexion-range", "at 08:00 flexed 1h flexion 181\n",
	  "t.txt:1: flexion '181': want degrees -180..180" },
	{ "tilt-range", "at 08:00 flexed 1h tilt -95\n",
	  "t.txt:1: tilt '-95': want degrees -90..90" },
	{ "cadence-range", "at 08:00 walk 1h cadence 300\n",
	  "t.txt:1: cadence '300': want steps per minute 0..250" },
	{ "cadence-not-walk", "at 08:00 upright 1h cadence 30\n",
	  "t.txt:1: unknown option 'cadence'" },
	{ "option-no-value", "at 08:00 walk 1h flexion\n", "t.txt:1: 'flexion' needs a value" },
	{ "class-bad", "at 08:00 walk 1h class lying\n",
	  "t.txt:1: class 'lying': want upright or flexed" },
	{ "date-bad", "date 2026-02-30\n", "t.txt:1: date '2026-02-30' does not exist" },
	{ "date-form", "date 26-2-3\n", "t.txt:1: date '26-2-3': want YYYY-MM-DD (1970..2100)" },
	{ "clock-bad", "clock maybe\n", "t.txt:1: want 'clock synced' or 'clock unsynced'" },
	{ "seq-start-big", "seq-start 4294967296\n",
	  "t.txt:1: seq-start '4294967296': want 0..4294967295" },
	{ "drain-bad", "battery-drain -1\n",
	  "t.txt:1: battery-drain '-1': want percent per hour 0..100" },
	{ "default-bad", "default walk\n", "t.txt:1: unknown posture 'walk'" },
	{ "every-form", "every 1h at 08:00 pain 1\n",
	  "t.txt:1: want 'every DUR from TIME to TIME WHAT'" },
	{ "every-backwards", "every 1h from 10:00 to 09:00 pain 1\n",
	  "t.txt:1: every: the end '09:00' is not after the start" },
	{ "every-too-many", "every 1s from 00:00 to +2d pain 1\n",
	  "t.txt:1: too many events (limit 100000)" },
	{ "charge-form", "at 08:00 charge 1h speed 3\n",
	  "t.txt:1: charge: want 'charge DUR [rate R]'" },
	{ "oor-extra", "at 08:00 out-of-range 1h now\n",
	  "t.txt:1: 'out-of-range' takes only a duration" },
	{ "reboot-args", "at 08:00 reboot now\n", "t.txt:1: reboot takes no arguments" },
	{ "nul-byte", "day 3\nat 08:00 pa\0in 3\n", "t.txt:2: NUL byte in the line" },
	{ "end-zero", "end 00:00\n",
	  "t.txt:1: end '00:00': want HH:MM[:SS] or +DUR after the start" },
	{ "escaped", "at 08:00 \xff\xfe 1h\n", "t.txt:1: unknown posture or event '\\377\\376'" },
};

static void test_scenario_bad(void **state)
{
	const struct bad_vec *v = *state;
	g_autoptr(GError) error = NULL;
	GwSimScenario *sc = (GwSimScenario *) 0x1;
	size_t len = strlen(v->text);

	if (strcmp(v->name, "nul-byte") == 0)
		len = 22;
	assert_int_equal(gw_sim_scenario_parse(v->text, len, "t.txt", &sc, &error), -EINVAL);
	assert_ptr_equal(sc, (GwSimScenario *) 0x1);	/* untouched */
	assert_non_null(error);
	assert_true(g_error_matches(error, GW_SIM_ERROR, GW_SIM_ERROR_SCENARIO));
	assert_string_equal(error->message, v->msg);
}

static void test_scenario_limits(void **state)
{
	g_autoptr(GString) s = g_string_new(NULL);
	g_autoptr(GError) error = NULL;
	GwSimScenario *sc = NULL;

	(void) state;
	g_string_append(s, "at 08:00 pain 3 ");
	while (s->len < 1100)
		g_string_append(s, "xxxxxxxxxx");
	assert_int_equal(gw_sim_scenario_parse(s->str, s->len, NULL, &sc, &error), -EINVAL);
	assert_string_equal(error->message, "scenario:1: line longer than 1024 bytes");
	g_clear_error(&error);
	g_string_assign(s, "at 08:00 lying 1h");
	for (int i = 0; i < 70; i++)
		g_string_append(s, " x");
	assert_int_equal(gw_sim_scenario_parse(s->str, s->len, NULL, &sc, &error), -EINVAL);
	assert_string_equal(error->message, "scenario:1: more than 64 words");
	g_clear_error(&error);
	/* empty and NULL input: a valid empty scenario */
	assert_int_equal(gw_sim_scenario_parse("", 0, NULL, &sc, &error), 0);
	gw_sim_scenario_unref(sc);
	sc = NULL;
	assert_int_equal(gw_sim_scenario_parse(NULL, 5, NULL, &sc, &error), 0);
	gw_sim_scenario_unref(sc);
}

/* Random token soup: the parser answers something and never crashes. */
static void test_scenario_random(void **state)
{
	static const char *const toks[] = {
		"at", "every", "from", "to", "day", "08:00", "+1h", "24:00", "25:61",
		"walk", "lying", "pain", "flags", "chest,calf", "battery", "charge",
		"rate", "1h", "0s", "99999999999d", "-5", "1.5", "flexion", "cadence",
		"#", "\n", "\r\n", "\t", "reboot", "end", "seed", "0x", "capacity",
		"out-of-range", "sensor-fault", "default", "class", "flexed", "\xc3",
	};
	struct test_rng rng;
	unsigned int ok = 0, bad = 0;

	(void) state;
	test_rng_seed(&rng, 1);
	for (int i = 0; i < 5000; i++) {
		g_autoptr(GString) s = g_string_new(NULL);
		g_autoptr(GError) error = NULL;
		GwSimScenario *sc = NULL;
		unsigned int n = test_rng_range(&rng, 0, 40);

		for (unsigned int k = 0; k < n; k++) {
			g_string_append(s, toks[test_rng_range(&rng, 0, ARRAY_SIZE(toks) - 1)]);
			g_string_append_c(s, test_rng_range(&rng, 0, 3) ? ' ' : '\n');
		}
		if (test_rng_range(&rng, 0, 9) == 0)
			g_string_append_c(s, (char) test_rng_range(&rng, 0, 255));
		if (gw_sim_scenario_parse(s->str, s->len, "r", &sc, &error) == 0) {
			assert_non_null(sc);
			assert_null(error);
			gw_sim_scenario_unref(sc);
			ok++;
		} else {
			assert_null(sc);
			assert_non_null(error);
			assert_true(g_str_has_prefix(error->message, "r:"));
			assert_true(g_utf8_validate(error->message, -1, NULL));
			bad++;
		}
	}
	assert_true(ok > 0 && bad > 0);
}

/* ---- history control point (1.9) ---------------------------------------------------- */

static void test_hcp_ccc_and_length(void **state)
{
	g_autoptr(GwSim) sim = sim_new(hour_text, 0, NULL);

	(void) state;
	advance(sim, H);
	gw_sim_connect(sim, 247);
	assert_int_equal(hcp(sim, "02 00"), GW_SIM_ATT_CCC_IMPROPER);
	gw_sim_set_notify(sim, GW_SIM_CHAR_HISTORY_CP, true);
	/* a report needs History data subscribed too */
	assert_int_equal(hcp(sim, "02 00"), GW_SIM_ATT_CCC_IMPROPER);
	assert_int_equal(gw_sim_write(sim, GW_SIM_CHAR_HISTORY_CP, NULL, 0),
			 GW_SIM_ATT_INVALID_LENGTH);
	/* other characteristics are not writable */
	assert_int_equal(gw_sim_write(sim, GW_SIM_CHAR_FEATURES, (const uint8_t *) "x", 1),
			 GW_SIM_ATT_WRITE_NOT_PERMITTED);
}

static void test_hcp_count(void **state)
{
	g_autoptr(GwSim) sim = sim_new(hour_text, 0, NULL);
	struct hcp_result r;

	(void) state;
	advance(sim, H);
	connect_hcp(sim, 247);
	assert_int_equal(hcp(sim, "01 00"), 0);
	r = collect(sim, 10);
	assert_int_equal(r.rsp_rc, 0);
	assert_int_equal(r.rsp.opcode, WB_HCP_COUNT_RESPONSE);
	assert_int_equal(r.rsp.count, 122);
	hcp_result_clear(&r);
	assert_int_equal(hcp(sim, "01 01 64 00 00 00"), 0);	/* after 100 */
	r = collect(sim, 10);
	assert_int_equal(r.rsp.count, 22);
	hcp_result_clear(&r);
	assert_int_equal(hcp(sim, "01 01 7a 00 00 00"), 0);	/* after 122: none */
	r = collect(sim, 10);
	assert_int_equal(r.rsp.opcode, WB_HCP_COUNT_RESPONSE);
	assert_int_equal(r.rsp.count, 0);
	hcp_result_clear(&r);
}

static void test_hcp_report(void **state)
{
	unsigned int mtu = (unsigned int) (uintptr_t) *state;
	g_autoptr(GwSim) sim = sim_new(hour_text, 0, NULL);
	struct hcp_result r;

	advance(sim, H);
	connect_hcp(sim, mtu);
	assert_int_equal(hcp(sim, "02 00"), 0);
	assert_true(gw_sim_has_tx(sim));
	r = collect(sim, 100000);
	assert_int_equal(r.seqs->len, 122);
	for (guint i = 0; i < r.seqs->len; i++)
		assert_int_equal(g_array_index(r.seqs, uint32_t, i), i + 1);
	/* packed to the MTU (20 bytes at 23 hold no batch: one record each) */
	if (mtu > 23)
		assert_true(r.max_batch_len <= mtu - 3);
	else
		assert_int_equal(r.batches, 122);
	assert_int_equal(r.responses, 1);
	assert_code(&r, WB_HCP_REPORT_RECORDS, WB_HCP_SUCCESS);
	assert_int_equal(r.rsp.count, 122);
	assert_int_equal(r.rsp.last_seq, 122);
	assert_false(gw_sim_has_tx(sim));
	hcp_result_clear(&r);

	/* after N: from N+1 */
	assert_int_equal(hcp(sim, "02 01 78 00 00 00"), 0);	/* after 120 */
	r = collect(sim, 1000);
	assert_int_equal(r.seqs->len, 2);
	assert_int_equal(g_array_index(r.seqs, uint32_t, 0), 121);
	assert_code(&r, WB_HCP_REPORT_RECORDS, WB_HCP_SUCCESS);
	assert_int_equal(r.rsp.count, 2);
	assert_int_equal(r.rsp.last_seq, 122);
	hcp_result_clear(&r);

	/* after the newest: no records */
	assert_int_equal(hcp(sim, "02 01 7a 00 00 00"), 0);
	r = collect(sim, 1000);
	assert_int_equal(r.seqs->len, 0);
	assert_code(&r, WB_HCP_REPORT_RECORDS, WB_HCP_NO_RECORDS);
	assert_int_equal(r.rsp.count, 0);
	hcp_result_clear(&r);
}

static void test_hcp_busy_and_abort(void **state)
{
	g_autoptr(GwSim) sim = sim_new(hour_text, 0, NULL);
	struct hcp_result r;

	(void) state;
	advance(sim, H);
	connect_hcp(sim, 23);
	/* abort with nothing running */
	assert_int_equal(hcp(sim, "04 00"), 0);
	r = collect(sim, 10);
	assert_code(&r, WB_HCP_ABORT, WB_HCP_ABORT_FAILED);
	hcp_result_clear(&r);

	assert_int_equal(hcp(sim, "02 00"), 0);
	r = collect(sim, 5);	/* 5 records at MTU 23 */
	assert_int_equal(r.seqs->len, 5);
	hcp_result_clear(&r);
	/* one procedure at a time: everything but ABORT is busy */
	assert_int_equal(hcp(sim, "01 00"), 0);
	assert_int_equal(hcp(sim, "02 00"), 0);
	assert_int_equal(hcp(sim, "03 02 05 00 00 00"), 0);
	struct gw_sim_tx tx;
	for (int i = 0; i < 3; i++) {
		struct wb_hcp_response rsp;

		assert_true(gw_sim_pop_tx(sim, &tx));
		assert_int_equal(tx.ch, GW_SIM_CHAR_HISTORY_CP);
		assert_int_equal(wb_hcp_response_decode(tx.data, tx.len, &rsp, NULL), 0);
		assert_int_equal(rsp.code, WB_HCP_BUSY);
		assert_int_equal(rsp.request, i + 1);
	}
	assert_int_equal(stats(sim).stored, 122);	/* nothing deleted */
	r = collect(sim, 3);
	assert_int_equal(r.seqs->len, 3);	/* the report goes on */
	hcp_result_clear(&r);
	assert_int_equal(hcp(sim, "04 00"), 0);
	assert_true(gw_sim_pop_tx(sim, &tx));
	struct wb_hcp_response rsp;
	assert_int_equal(wb_hcp_response_decode(tx.data, tx.len, &rsp, NULL), 0);
	assert_int_equal(rsp.request, WB_HCP_REPORT_RECORDS);
	assert_int_equal(rsp.code, WB_HCP_ABORTED);
	assert_int_equal(rsp.count, 8);
	assert_int_equal(rsp.last_seq, 8);
	assert_true(gw_sim_pop_tx(sim, &tx));
	assert_int_equal(wb_hcp_response_decode(tx.data, tx.len, &rsp, NULL), 0);
	assert_int_equal(rsp.request, WB_HCP_ABORT);
	assert_int_equal(rsp.code, WB_HCP_SUCCESS);
	assert_false(gw_sim_pop_tx(sim, &tx));
	assert_false(stats(sim).report_running);
}

static void test_hcp_delete(void **state)
{
	g_autoptr(GwSim) sim = sim_new(hour_text, 0, NULL);
	struct hcp_result r;
	struct wb_features f;

	(void) state;
	advance(sim, H);
	connect_hcp(sim, 247);
	assert_int_equal(hcp(sim, "03 02 64 00 00 00"), 0);	/* up to 100 */
	r = collect(sim, 10);
	assert_code(&r, WB_HCP_DELETE_RECORDS, WB_HCP_SUCCESS);
	assert_int_equal(r.rsp.count, 100);
	assert_int_equal(r.rsp.last_seq, 100);
	hcp_result_clear(&r);
	gw_sim_get_features(sim, &f);
	assert_int_equal(f.stored, 22);
	assert_int_equal(f.first_seq, 101);
	assert_int_equal(f.last_seq, 122);
	/* again: nothing up to 100 is left */
	assert_int_equal(hcp(sim, "03 02 64 00 00 00"), 0);
	r = collect(sim, 10);
	assert_code(&r, WB_HCP_DELETE_RECORDS, WB_HCP_NO_RECORDS);
	assert_int_equal(r.rsp.count, 0);
	hcp_result_clear(&r);
	/* N far before the oldest (serial order): nothing */
	assert_int_equal(hcp(sim, "03 02 00 00 00 90"), 0);
	r = collect(sim, 10);
	assert_code(&r, WB_HCP_DELETE_RECORDS, WB_HCP_NO_RECORDS);
	hcp_result_clear(&r);
	/* all: the feature's last_seq stays */
	assert_int_equal(hcp(sim, "03 02 ff 00 00 00"), 0);
	r = collect(sim, 10);
	assert_code(&r, WB_HCP_DELETE_RECORDS, WB_HCP_SUCCESS);
	assert_int_equal(r.rsp.count, 22);
	hcp_result_clear(&r);
	gw_sim_get_features(sim, &f);
	assert_int_equal(f.stored, 0);
	assert_int_equal(f.last_seq, 122);
	assert_int_equal(stats(sim).deleted, 122);
	assert_int_equal(stats(sim).deletes, 4);
	assert_int_equal(hcp(sim, "02 00"), 0);
	r = collect(sim, 10);
	assert_code(&r, WB_HCP_REPORT_RECORDS, WB_HCP_NO_RECORDS);
	hcp_result_clear(&r);
}

struct hcp_err_vec {
	const char *name;
	const char *req;
	int att;		/* the write's answer */
	uint8_t request;	/* the response's request byte */
	enum wb_hcp_code code;
	int decode_rc;		/* of the response by wb_hcp_response_decode */
};

static const struct hcp_err_vec hcp_err_vecs[] = {
	{ "1.9-report-up-to-is-invalid", "02 02 01 00 00 00", 0, 2, WB_HCP_INVALID_FILTER, 0 },
	{ "1.9-delete-all-is-invalid", "03 00", 0, 3, WB_HCP_INVALID_FILTER, 0 },
	{ "1.9-abort-with-operand", "04 01 01 00 00 00", 0, 4, WB_HCP_INVALID_FILTER, 0 },
	{ "1.9-unknown-filter", "01 07", 0, 1, WB_HCP_INVALID_FILTER, 0 },
	{ "1.9-short-operand", "02 01 01 00", 0, 2, WB_HCP_INVALID_FILTER, 0 },
	{ "1.9-trailing-byte", "01 00 00", 0, 1, WB_HCP_INVALID_FILTER, 0 },
	{ "1.9-opcode-only", "02", 0, 2, WB_HCP_INVALID_FILTER, 0 },
	/* RACP echoes an unknown opcode; our decoder has no name for it */
	{ "1.9-unknown-opcode", "7f 00", 0, 0x7f, WB_HCP_OPCODE_NOT_SUPPORTED, -EOPNOTSUPP },
	{ "1.9-response-opcode-as-request", "10 00", 0, 0x10, WB_HCP_OPCODE_NOT_SUPPORTED,
	  -EOPNOTSUPP },
	{ "1.9-opcode-zero", "00", 0, 0, WB_HCP_OPCODE_NOT_SUPPORTED, -EOPNOTSUPP },
};

static void test_hcp_errors(void **state)
{
	const struct hcp_err_vec *v = *state;
	g_autoptr(GwSim) sim = sim_new(hour_text, 0, NULL);
	struct hcp_result r;

	advance(sim, H);
	connect_hcp(sim, 247);
	assert_int_equal(hcp(sim, v->req), v->att);
	r = collect(sim, 10);
	assert_int_equal(r.responses, 1);
	assert_int_equal(r.raw_len, 11);
	assert_int_equal(r.raw[0], WB_HCP_RESPONSE_CODE);
	assert_int_equal(r.raw[1], v->request);
	assert_int_equal(r.raw[2], v->code);
	assert_int_equal(r.rsp_rc, v->decode_rc);
	assert_int_equal(r.seqs->len, 0);
	hcp_result_clear(&r);
	assert_int_equal(stats(sim).stored, 122);
}

static void test_hcp_seams(void **state)
{
	g_autoptr(GwSim) sim = sim_new(hour_text, 0, NULL);
	struct hcp_result r;

	(void) state;
	advance(sim, H);
	connect_hcp(sim, 247);
	__gw_sim_set_hcp_busy(sim, 1);
	assert_int_equal(hcp(sim, "01 00"), 0);
	r = collect(sim, 10);
	assert_code(&r, WB_HCP_REPORT_COUNT, WB_HCP_BUSY);
	hcp_result_clear(&r);
	__gw_sim_set_hcp_storage_error(sim, 2);
	assert_int_equal(hcp(sim, "02 00"), 0);
	r = collect(sim, 10);
	assert_code(&r, WB_HCP_REPORT_RECORDS, WB_HCP_STORAGE_ERROR);
	hcp_result_clear(&r);
	assert_int_equal(hcp(sim, "03 02 05 00 00 00"), 0);
	r = collect(sim, 10);
	assert_code(&r, WB_HCP_DELETE_RECORDS, WB_HCP_STORAGE_ERROR);
	hcp_result_clear(&r);
	assert_int_equal(stats(sim).stored, 122);
	assert_int_equal(hcp(sim, "01 00"), 0);	/* back to normal */
	r = collect(sim, 10);
	assert_int_equal(r.rsp.opcode, WB_HCP_COUNT_RESPONSE);
	hcp_result_clear(&r);
}

/* 1.11: after N and up to N in serial order, across the wrap */
static void test_hcp_wrap(void **state)
{
	g_autoptr(GwSim) sim = sim_new("seq-start 0xfffffff8\nat 00:00 upright 1h\n", 0, NULL);
	struct hcp_result r;

	(void) state;
	advance(sim, 10 * MIN_US);	/* 1 + 10 + 10 records: 0xfffffff8 .. 0x0c */
	assert_int_equal(stats(sim).last_seq, 0x0c);
	connect_hcp(sim, 247);
	assert_int_equal(hcp(sim, "02 01 fd ff ff ff"), 0);	/* after 0xfffffffd */
	r = collect(sim, 1000);
	assert_int_equal(r.seqs->len, 15);
	assert_int_equal(g_array_index(r.seqs, uint32_t, 0), 0xfffffffeu);
	assert_int_equal(g_array_index(r.seqs, uint32_t, 2), 0);
	assert_code(&r, WB_HCP_REPORT_RECORDS, WB_HCP_SUCCESS);
	assert_int_equal(r.rsp.last_seq, 0x0c);
	hcp_result_clear(&r);
	assert_int_equal(hcp(sim, "03 02 02 00 00 00"), 0);	/* up to 2 */
	r = collect(sim, 10);
	assert_code(&r, WB_HCP_DELETE_RECORDS, WB_HCP_SUCCESS);
	assert_int_equal(r.rsp.count, 11);
	assert_int_equal(r.rsp.last_seq, 2);
	hcp_result_clear(&r);
	assert_int_equal(stats(sim).first_seq, 3);
	assert_int_equal(hcp(sim, "01 01 ff ff ff ff"), 0);	/* after 0xffffffff */
	r = collect(sim, 10);
	assert_int_equal(r.rsp.count, 10);
	hcp_result_clear(&r);
}

static void test_hcp_link_loss_mid_report(void **state)
{
	g_autoptr(GwSim) sim = sim_new(hour_text, 0, NULL);
	struct hcp_result r;

	(void) state;
	advance(sim, H);
	connect_hcp(sim, 23);
	assert_int_equal(hcp(sim, "02 00"), 0);
	r = collect(sim, 10);
	hcp_result_clear(&r);
	gw_sim_disconnect(sim);
	assert_false(gw_sim_has_tx(sim));
	assert_false(stats(sim).report_running);
	/* the next link: everything is still there, after the last stored */
	connect_hcp(sim, 247);
	assert_int_equal(hcp(sim, "02 01 05 00 00 00"), 0);
	r = collect(sim, 1000);
	assert_int_equal(r.seqs->len, 117);
	assert_int_equal(g_array_index(r.seqs, uint32_t, 0), 6);
	hcp_result_clear(&r);
}

/* ---- live notifications, reads ------------------------------------------------------ */

static void test_live(void **state)
{
	g_autoptr(GwSim) sim = sim_new("at 00:00 walk 1h cadence 60\nat 00:30 pain 4\n", 0, NULL);
	struct gw_sim_tx tx;
	unsigned int posture = 0, steps = 0, pain = 0, status = 0;

	(void) state;
	advance(sim, 10 * MIN_US);
	assert_false(gw_sim_pop_tx(sim, &tx));	/* not connected */
	gw_sim_connect(sim, 247);
	gw_sim_set_notify(sim, GW_SIM_CHAR_POSTURE, true);
	gw_sim_set_notify(sim, GW_SIM_CHAR_PAIN, true);
	gw_sim_set_notify(sim, GW_SIM_CHAR_FEATURES, false);
	advance(sim, 40 * MIN_US);
	while (gw_sim_pop_tx(sim, &tx)) {
		struct wb_record rec;

		assert_int_equal(wb_batch_decode(tx.data, tx.len, &rec, 1, NULL), 1);
		assert_int_equal(tx.records, 1);
		posture += tx.ch == GW_SIM_CHAR_POSTURE && rec.type == WB_RECORD_POSTURE;
		pain += tx.ch == GW_SIM_CHAR_PAIN && rec.type == WB_RECORD_PAIN;
		steps += tx.ch == GW_SIM_CHAR_STEPS;
		status += tx.ch == GW_SIM_CHAR_STATUS;
		if (rec.type == WB_RECORD_PAIN)
			assert_int_equal(rec.u.pain.score, 4);
	}
	assert_int_equal(posture, 30);
	assert_int_equal(pain, 1);
	assert_int_equal(steps, 0);	/* not subscribed */
	assert_int_equal(status, 0);
	/* subscriptions end with the link */
	gw_sim_disconnect(sim);
	gw_sim_connect(sim, 247);
	assert_false(gw_sim_get_notify(sim, GW_SIM_CHAR_POSTURE));
	advance(sim, 50 * MIN_US);
	assert_int_equal(drain(sim, GW_SIM_CHAR_POSTURE), 0);
	gw_sim_set_notify(sim, GW_SIM_CHAR_BATTERY, true);
	gw_sim_set_notify(sim, GW_SIM_CHAR_STEPS, true);
	assert_true(gw_sim_apply(sim, "battery 42", NULL));
	assert_true(gw_sim_pop_tx(sim, &tx));
	assert_int_equal(tx.ch, GW_SIM_CHAR_BATTERY);
	assert_int_equal(tx.len, 1);
	assert_int_equal(tx.data[0], 42);
	advance(sim, 51 * MIN_US);
	assert_int_equal(drain(sim, GW_SIM_CHAR_STEPS), 1);
}

static void test_reads(void **state)
{
	g_autoptr(GwSim) sim = sim_new(hour_text, 0, NULL);
	uint8_t buf[WB_ATT_MAX_VALUE];
	size_t len = 0;
	struct wb_features f;
	struct wb_record rec;
	uint8_t pct;
	char s[WB_DEVINFO_MAX + 1];
	struct wb_current_time ct;

	(void) state;
	advance(sim, H);
	assert_int_equal(gw_sim_read(sim, GW_SIM_CHAR_FEATURES, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, WB_FEATURES_LEN);
	assert_int_equal(wb_features_decode(buf, len, &f, NULL), 0);
	assert_int_equal(f.protocol_version, WB_PROTOCOL_VERSION);
	assert_int_equal(f.flags, WB_FEATURE_FLAGS_KNOWN);
	assert_int_equal(f.posture_period_s, 60);
	assert_int_equal(f.capacity, 4096);
	assert_int_equal(f.stored, 122);
	assert_int_equal(f.first_seq, 1);
	assert_int_equal(f.last_seq, 122);
	assert_int_equal(gw_sim_read(sim, GW_SIM_CHAR_STATUS, buf, sizeof(buf), &len), 0);
	assert_int_equal(wb_batch_decode(buf, len, &rec, 1, NULL), 1);
	assert_int_equal(rec.type, WB_RECORD_STATUS);
	assert_int_equal(rec.u.status.uptime_s, 3600);
	assert_int_equal(gw_sim_read(sim, GW_SIM_CHAR_BATTERY, buf, sizeof(buf), &len), 0);
	assert_int_equal(wb_battery_decode(buf, len, &pct, NULL), 0);
	assert_int_equal(pct, 99);
	for (int c = GW_SIM_CHAR_MANUFACTURER; c <= GW_SIM_CHAR_SOFTWARE_REV; c++) {
		assert_int_equal(gw_sim_read(sim, (enum gw_sim_char) c, buf, sizeof(buf), &len), 0);
		assert_int_equal(wb_devinfo_string_decode(buf, len, s, sizeof(s), NULL), 0);
		assert_true(strlen(s) > 0);
	}
	assert_int_equal(gw_sim_read(sim, GW_SIM_CHAR_SERIAL, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, 11);
	assert_memory_equal(buf, "RL-SIM-0001", 11);
	assert_int_equal(gw_sim_read(sim, GW_SIM_CHAR_CURRENT_TIME, buf, sizeof(buf), &len), 0);
	assert_int_equal(wb_current_time_decode(buf, len, &ct, NULL), 0);
	assert_int_equal(ct.year, 2000);
	assert_int_equal(ct.hours, 1);
	for (int c = GW_SIM_CHAR_POSTURE; c <= GW_SIM_CHAR_HISTORY_DATA; c++)
		assert_int_equal(gw_sim_read(sim, (enum gw_sim_char) c, buf, sizeof(buf), &len),
				 GW_SIM_ATT_READ_NOT_PERMITTED);
	/* the table */
	assert_string_equal(gw_sim_char_name(GW_SIM_CHAR_HISTORY_CP), "history-cp");
	assert_int_equal(gw_sim_char_from_name("history-cp"), GW_SIM_CHAR_HISTORY_CP);
	assert_int_equal(gw_sim_char_from_name("nope"), -1);
	assert_string_equal(gw_sim_char_uuid(GW_SIM_CHAR_PAIN), WB_UUID_PAIN);
	assert_int_equal(gw_sim_char_props(GW_SIM_CHAR_PAIN), GW_SIM_PROP_INDICATE);
	assert_null(gw_sim_char_name((enum gw_sim_char) 99));
}

/* ---- clock (1.2) ---------------------------------------------------------------------- */

static void write_time(GwSim *sim, int64_t unix_s, int want)
{
	struct wb_current_time ct;
	uint8_t buf[WB_CURRENT_TIME_LEN];

	assert_int_equal(wb_current_time_from_unix(unix_s, &ct), 0);
	assert_int_equal(wb_current_time_encode(&ct, buf, sizeof(buf)), WB_CURRENT_TIME_LEN);
	assert_int_equal(gw_sim_write(sim, GW_SIM_CHAR_CURRENT_TIME, buf, sizeof(buf)), want);
}

static struct wb_record last_record(const GwSim *sim)
{
	struct wb_record rec;

	assert_true(gw_sim_get_record(sim, stats(sim).stored - 1, &rec));
	return rec;
}

static void test_clock(void **state)
{
	g_autoptr(GwSim) sim = sim_new("at 00:00 upright 3d\n", 0, NULL);
	const int64_t set = INT64_C(1772582400);	/* 2026-03-04T00:00:00Z */
	enum wb_time_quality q;
	struct wb_record rec;
	uint8_t bad[WB_CURRENT_TIME_LEN] = { 0 };

	(void) state;
	advance(sim, H);
	rec = last_record(sim);
	assert_int_equal(rec.time_quality, WB_TIME_UNSYNCED);
	assert_int_equal(gw_sim_get_clock(sim, &q), 3600);
	assert_int_equal(q, WB_TIME_UNSYNCED);
	/* a posture record covers the minute before it was made */
	assert_true(gw_sim_get_record(sim, stats(sim).stored - 3, &rec));
	assert_int_equal(rec.type, WB_RECORD_POSTURE);
	assert_int_equal(rec.time, 3540);

	write_time(sim, set, 0);
	assert_int_equal(stats(sim).time_writes, 1);
	assert_int_equal(gw_sim_get_clock(sim, &q), (uint32_t) (set - WB_EPOCH_UNIX));
	assert_int_equal(q, WB_TIME_SYNCED);
	advance(sim, H + 60 * S);
	rec = last_record(sim);
	assert_int_equal(rec.time_quality, WB_TIME_SYNCED);
	assert_int_equal(rec.time, (uint32_t) (set - WB_EPOCH_UNIX));	/* 60 s later, minus 60 */
	/* 24 h after the write it is holdover */
	advance(sim, 25 * H);
	assert_int_equal(gw_sim_get_clock(sim, &q), (uint32_t) (set - WB_EPOCH_UNIX + 24 * 3600));
	assert_int_equal(q, WB_TIME_SYNCED);
	advance(sim, 25 * H + S);
	(void) gw_sim_get_clock(sim, &q);
	assert_int_equal(q, WB_TIME_HOLDOVER);
	rec = last_record(sim);
	advance(sim, 26 * H);
	rec = last_record(sim);
	assert_int_equal(rec.time_quality, WB_TIME_HOLDOVER);
	/* bad writes */
	assert_int_equal(gw_sim_write(sim, GW_SIM_CHAR_CURRENT_TIME, bad, 9),
			 GW_SIM_ATT_INVALID_LENGTH);
	assert_int_equal(gw_sim_write(sim, GW_SIM_CHAR_CURRENT_TIME, bad, sizeof(bad)),
			 GW_SIM_ATT_VALUE_NOT_ALLOWED);
	write_time(sim, INT64_C(900000000), GW_SIM_ATT_VALUE_NOT_ALLOWED);	/* 1998 */
	/* a power loss: unsynced, uptime from 0, clock lost until set */
	gw_sim_connect(sim, 247);
	gw_sim_reboot(sim);
	assert_false(gw_sim_is_connected(sim));
	rec = last_record(sim);
	assert_int_equal(rec.type, WB_RECORD_STATUS);
	assert_int_equal(rec.time_quality, WB_TIME_UNSYNCED);
	assert_int_equal(rec.time, 0);
	assert_int_equal(rec.u.status.uptime_s, 0);
	assert_true(rec.u.status.flags & WB_STATUS_CLOCK_LOST);
	advance(sim, 27 * H);
	assert_int_equal(gw_sim_get_clock(sim, &q), 3600);
	assert_int_equal(q, WB_TIME_UNSYNCED);
	write_time(sim, set + 3 * 86400, 0);
	rec = last_record(sim);
	assert_int_equal(rec.type, WB_RECORD_STATUS);
	assert_false(rec.u.status.flags & WB_STATUS_CLOCK_LOST);
	assert_int_equal(rec.time_quality, WB_TIME_SYNCED);
}

/* ---- a simulated day ------------------------------------------------------------------ */

static struct wb_record record_at(const GwSim *sim, enum wb_record_type t, uint32_t time)
{
	struct gw_sim_stats st = stats(sim);
	struct wb_record rec;

	for (uint32_t i = 0; i < st.stored; i++) {
		assert_true(gw_sim_get_record(sim, i, &rec));
		if (rec.type == t && rec.time == time)
			return rec;
	}
	fail_msg("no %s record at %u", wb_record_type_name(t), time);
	return rec;
}

static void test_day_recovery(void **state)
{
	g_autofree char *p = g_build_filename(scenario_dir(), "recovery-day-3.txt", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GwSimScenario) sc = gw_sim_scenario_load(p, &error);
	struct gw_sim_config cfg = { .seed = 3 };
	g_autoptr(GwSim) sim = NULL;
	static const struct {
		uint32_t time;
		uint8_t score;
		uint16_t flags;
	} pains[] = {
		{ 7 * 3600 + 15 * 60, 3, 0 },
		{ 10 * 3600 + 30 * 60, 4, WB_PAIN_MEDICATION },
		{ 12 * 3600 + 30 * 60, 5, 0 },
		{ 14 * 3600, 6, WB_PAIN_MEDICATION },
		{ 17 * 3600 + 30 * 60, 8, WB_PAIN_BREATHLESS },
		{ 18 * 3600, 8, WB_PAIN_BREATHLESS | WB_PAIN_ONE_SIDED },
		{ 21 * 3600 + 30 * 60, 7, WB_PAIN_MEDICATION },
	};
	struct wb_record rec;
	unsigned int red = 0;

	(void) state;
	assert_non_null(sc);
	sim = gw_sim_new(&cfg, sc, 0, &error);
	assert_non_null(sim);
	/* out of range from 15:00 for two hours */
	advance(sim, 15 * H - S);
	assert_true(gw_sim_in_range(sim));
	gw_sim_connect(sim, 247);
	advance(sim, 15 * H);
	assert_false(gw_sim_in_range(sim));
	assert_false(gw_sim_is_connected(sim));		/* the link dropped */
	advance(sim, 17 * H - S);
	assert_false(gw_sim_in_range(sim));
	advance(sim, 17 * H);
	assert_true(gw_sim_in_range(sim));
	advance(sim, gw_sim_scenario_get_end(sc));

	assert_int_equal(count_type(sim, WB_RECORD_POSTURE), 1440);
	assert_int_equal(count_type(sim, WB_RECORD_STEPS), 1440);
	assert_int_equal(count_type(sim, WB_RECORD_PAIN), ARRAY_SIZE(pains));
	assert_true(count_type(sim, WB_RECORD_STATUS) >= 24);
	for (size_t i = 0; i < ARRAY_SIZE(pains); i++) {
		rec = record_at(sim, WB_RECORD_PAIN, pains[i].time);
		assert_int_equal(rec.u.pain.score, pains[i].score);
		assert_int_equal(rec.u.pain.flags, pains[i].flags);
		red += (rec.u.pain.flags & WB_PAIN_RED_FLAGS) != 0;
	}
	assert_int_equal(red, 2);
	/* the posture record for a minute is stamped with its start */
	rec = record_at(sim, WB_RECORD_POSTURE, 2 * 3600);
	assert_int_equal(rec.u.posture.cls, WB_POSTURE_LYING);
	assert_true(rec.u.posture.flexion_ddeg >= -820 && rec.u.posture.flexion_ddeg <= -780);
	rec = record_at(sim, WB_RECORD_POSTURE, 7 * 3600 + 5 * 60);	/* hunched walk */
	assert_int_equal(rec.u.posture.cls, WB_POSTURE_FLEXED);
	assert_true(rec.u.posture.flexion_ddeg >= 300 && rec.u.posture.flexion_ddeg <= 340);
	rec = record_at(sim, WB_RECORD_STEPS, 7 * 3600 + 5 * 60);
	assert_true(rec.u.steps.steps >= 52 && rec.u.steps.steps <= 58);	/* 55 ± 5 % */
	rec = record_at(sim, WB_RECORD_STEPS, 2 * 3600);
	assert_int_equal(rec.u.steps.steps, 0);
	rec = record_at(sim, WB_RECORD_POSTURE, 13 * 3600 + 10 * 60);	/* lying wins */
	assert_int_equal(rec.u.posture.cls, WB_POSTURE_LYING);
	rec = record_at(sim, WB_RECORD_POSTURE, 10 * 3600);	/* the default */
	assert_int_equal(rec.u.posture.cls, WB_POSTURE_RECLINED);
	rec = record_at(sim, WB_RECORD_POSTURE, 3 * 3600 + 12 * 60);	/* inside lying */
	assert_int_equal(rec.u.posture.cls, WB_POSTURE_UPRIGHT);
	rec = record_at(sim, WB_RECORD_POSTURE, 3 * 3600 + 15 * 60);	/* lying resumes */
	assert_int_equal(rec.u.posture.cls, WB_POSTURE_LYING);
	rec = record_at(sim, WB_RECORD_STATUS, 20 * 3600);		/* on the charger */
	assert_true(rec.u.status.flags & WB_STATUS_CHARGING);
	rec = record_at(sim, WB_RECORD_STATUS, 21 * 3600);
	assert_false(rec.u.status.flags & WB_STATUS_CHARGING);
	/* 80 % drained at 1.5 %/h for 20 h, then +20 %, then 3 h more */
	assert_int_equal(stats(sim).battery_pct, 80 - 30 + 20 - 4 - 1);
	/* the same scenario and seed make the same records */
	{
		g_autoptr(GwSim) again = gw_sim_new(&cfg, sc, 0, &error);
		struct gw_sim_stats st = stats(sim);

		for (int64_t t = H; t <= gw_sim_scenario_get_end(sc); t += 7 * H)
			advance(again, t);
		advance(again, gw_sim_scenario_get_end(sc));
		assert_int_equal(stats(again).stored, st.stored);
		for (uint32_t i = 0; i < st.stored; i++) {
			struct wb_record a, b;

			assert_true(gw_sim_get_record(sim, i, &a));
			assert_true(gw_sim_get_record(again, i, &b));
			assert_true(wb_record_equal(&a, &b));
		}
	}
}

static void test_day_busy(void **state)
{
	g_autofree char *p = g_build_filename(scenario_dir(), "busy.txt", NULL);
	g_autoptr(GwSimScenario) sc = gw_sim_scenario_load(p, NULL);
	g_autoptr(GwSim) sim = NULL;

	(void) state;
	assert_non_null(sc);
	sim = gw_sim_new(NULL, sc, 0, NULL);
	advance(sim, gw_sim_scenario_get_end(sc));
	assert_int_equal(count_type(sim, WB_RECORD_POSTURE), 86400);
	assert_int_equal(count_type(sim, WB_RECORD_STEPS), 86400);
	assert_int_equal(count_type(sim, WB_RECORD_PAIN), 14);
	assert_int_equal(stats(sim).overwritten, 0);
}

static void test_apply(void **state)
{
	g_autoptr(GwSim) sim = sim_new(hour_text, 0, NULL);
	g_autoptr(GError) error = NULL;
	struct wb_record rec;
	g_autofree char *text = NULL;

	(void) state;
	advance(sim, 10 * MIN_US);
	assert_true(gw_sim_apply(sim, "pain 9 flags chest,medication", &error));
	rec = last_record(sim);
	assert_int_equal(rec.type, WB_RECORD_PAIN);
	assert_int_equal(rec.time, 600);
	text = gw_sim_record_to_string(&rec);
	assert_string_equal(text, "pain     9 flags chest,medication RED FLAG");
	assert_false(gw_sim_apply(sim, "pain 12", &error));
	assert_true(g_error_matches(error, GW_SIM_ERROR, GW_SIM_ERROR_INVALID));
	g_clear_error(&error);
	assert_false(gw_sim_apply(sim, "   ", &error));
	g_clear_error(&error);
	/* a walk now: steps in the next minutes */
	assert_true(gw_sim_apply(sim, "walk 5m cadence 100", NULL));
	advance(sim, 12 * MIN_US);
	rec = last_record(sim);
	assert_int_equal(rec.type, WB_RECORD_STEPS);
	assert_true(rec.u.steps.steps >= 95 && rec.u.steps.steps <= 105);
	/* out of range drops the link until it ends */
	gw_sim_connect(sim, 247);
	assert_true(gw_sim_apply(sim, "out-of-range 10m", NULL));
	assert_false(gw_sim_is_connected(sim));
	assert_false(gw_sim_in_range(sim));
	advance(sim, 23 * MIN_US);
	assert_true(gw_sim_in_range(sim));
	gw_sim_set_out_of_range(sim, INT64_MAX);
	assert_false(gw_sim_in_range(sim));
	gw_sim_set_out_of_range(sim, 0);
	assert_true(gw_sim_in_range(sim));
}

int main(void)
{
	static const unsigned int mtus[] = { 23, 24, 100, 247, 517 };
	GPtrArray *t = g_ptr_array_new_with_free_func(g_free);
	struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_ring_basic),
		cmocka_unit_test(test_ring_wrap_overwrite),
		cmocka_unit_test(test_state_restart_no_reuse),
		cmocka_unit_test(test_state_atomic_and_corrupt),
		cmocka_unit_test(test_scenario_files),
		cmocka_unit_test(test_scenario_good_forms),
		cmocka_unit_test(test_scenario_limits),
		cmocka_unit_test(test_scenario_random),
		cmocka_unit_test(test_hcp_ccc_and_length),
		cmocka_unit_test(test_hcp_count),
		cmocka_unit_test(test_hcp_busy_and_abort),
		cmocka_unit_test(test_hcp_delete),
		cmocka_unit_test(test_hcp_seams),
		cmocka_unit_test(test_hcp_wrap),
		cmocka_unit_test(test_hcp_link_loss_mid_report),
		cmocka_unit_test(test_live),
		cmocka_unit_test(test_reads),
		cmocka_unit_test(test_clock),
		cmocka_unit_test(test_day_recovery),
		cmocka_unit_test(test_day_busy),
		cmocka_unit_test(test_apply),
	};
	size_t n = ARRAY_SIZE(fixed) + ARRAY_SIZE(bad_vecs) + ARRAY_SIZE(hcp_err_vecs) +
		   ARRAY_SIZE(mtus);
	struct CMUnitTest *tests = g_new0(struct CMUnitTest, n);
	size_t k = 0;
	int rc;

	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		tests[k++] = fixed[i];
	for (size_t i = 0; i < ARRAY_SIZE(bad_vecs); i++) {
		char *name = g_strdup_printf("scenario-bad-%s", bad_vecs[i].name);

		g_ptr_array_add(t, name);
		tests[k++] = (struct CMUnitTest){ .name = name, .test_func = test_scenario_bad,
						  .initial_state = (void *) &bad_vecs[i] };
	}
	for (size_t i = 0; i < ARRAY_SIZE(hcp_err_vecs); i++)
		tests[k++] = (struct CMUnitTest){ .name = hcp_err_vecs[i].name,
						  .test_func = test_hcp_errors,
						  .initial_state = (void *) &hcp_err_vecs[i] };
	for (size_t i = 0; i < ARRAY_SIZE(mtus); i++) {
		char *name = g_strdup_printf("1.9-report-all-mtu-%u", mtus[i]);

		g_ptr_array_add(t, name);
		tests[k++] = (struct CMUnitTest){ .name = name, .test_func = test_hcp_report,
						  .initial_state = (void *) (uintptr_t) mtus[i] };
	}
	rc = _cmocka_run_group_tests("gateway/sim", tests, k, NULL, NULL);
	g_free(tests);
	g_ptr_array_unref(t);
	return rc;
}
