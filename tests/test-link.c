/* SPDX-License-Identifier: MIT */
/*
 * gateway/link.c: the per-wearable state machine, with scripted time, a
 * recording fake for its ops and a fake wearable that speaks the history
 * control point in real bytes (tests/fakes/fake-ble-ops.c).
 *
 * Every transition any test makes is checked against the table of legal
 * ones, and the last test checks that the tests made each of them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ble-types.h"
#include "link.h"
#include "wearable.h"
#include "fakes/fake-ble-ops.h"

#define ADDR "AA:BB:CC:DD:EE:01"
#define MS(x) ((int64_t) (x) * 1000)
#define SEC(x) ((int64_t) (x) * 1000000)
#define T0 SEC(100)
#define N_STATES GW_LINK_STATE_COUNT

/* ---- the transition table ---- */

enum { X = 1, R = 2 };		/* allowed; allowed and must be covered */
static const struct { enum gw_link_state from, to; int kind; } transitions[] = {
	{ GW_LINK_STATE_WAITING_ADAPTER, GW_LINK_STATE_SCANNING, R },
	{ GW_LINK_STATE_WAITING_ADAPTER, GW_LINK_STATE_CONNECTING, R },
	{ GW_LINK_STATE_WAITING_ADAPTER, GW_LINK_STATE_DISABLED, X },
	{ GW_LINK_STATE_SCANNING, GW_LINK_STATE_CONNECTING, R },
	{ GW_LINK_STATE_SCANNING, GW_LINK_STATE_WAITING_ADAPTER, R },
	{ GW_LINK_STATE_SCANNING, GW_LINK_STATE_RESOLVING, R },
	{ GW_LINK_STATE_SCANNING, GW_LINK_STATE_DISABLED, X },
	{ GW_LINK_STATE_CONNECTING, GW_LINK_STATE_RESOLVING, R },
	{ GW_LINK_STATE_CONNECTING, GW_LINK_STATE_CHECKING_LAYOUT, R },
	{ GW_LINK_STATE_CONNECTING, GW_LINK_STATE_DISCONNECTING, R },
	{ GW_LINK_STATE_CONNECTING, GW_LINK_STATE_BACKOFF, R },
	{ GW_LINK_STATE_CONNECTING, GW_LINK_STATE_WAITING_ADAPTER, R },
	{ GW_LINK_STATE_CONNECTING, GW_LINK_STATE_NEEDS_REPAIR, R },
	{ GW_LINK_STATE_CONNECTING, GW_LINK_STATE_DISABLED, X },
	{ GW_LINK_STATE_RESOLVING, GW_LINK_STATE_CHECKING_LAYOUT, R },
	{ GW_LINK_STATE_CHECKING_LAYOUT, GW_LINK_STATE_SETTING_TIME, R },
	{ GW_LINK_STATE_CHECKING_LAYOUT, GW_LINK_STATE_READING_INFO, R },
	{ GW_LINK_STATE_SETTING_TIME, GW_LINK_STATE_READING_INFO, R },
	{ GW_LINK_STATE_READING_INFO, GW_LINK_STATE_SUBSCRIBING, R },
	{ GW_LINK_STATE_SUBSCRIBING, GW_LINK_STATE_SYNCING, R },
	{ GW_LINK_STATE_SUBSCRIBING, GW_LINK_STATE_LIVE, R },
	{ GW_LINK_STATE_SYNCING, GW_LINK_STATE_LIVE, R },
	{ GW_LINK_STATE_LIVE, GW_LINK_STATE_SYNCING, R },
	{ GW_LINK_STATE_DISCONNECTING, GW_LINK_STATE_BACKOFF, R },
	{ GW_LINK_STATE_DISCONNECTING, GW_LINK_STATE_WAITING_ADAPTER, X },
	{ GW_LINK_STATE_DISCONNECTING, GW_LINK_STATE_DISABLED, X },
	{ GW_LINK_STATE_BACKOFF, GW_LINK_STATE_SCANNING, R },
	{ GW_LINK_STATE_BACKOFF, GW_LINK_STATE_CONNECTING, R },
	{ GW_LINK_STATE_BACKOFF, GW_LINK_STATE_WAITING_ADAPTER, X },
	{ GW_LINK_STATE_BACKOFF, GW_LINK_STATE_RESOLVING, X },
	{ GW_LINK_STATE_BACKOFF, GW_LINK_STATE_DISABLED, X },
	{ GW_LINK_STATE_NEEDS_REPAIR, GW_LINK_STATE_SCANNING, R },
	{ GW_LINK_STATE_NEEDS_REPAIR, GW_LINK_STATE_CONNECTING, X },
	{ GW_LINK_STATE_NEEDS_REPAIR, GW_LINK_STATE_WAITING_ADAPTER, X },
	{ GW_LINK_STATE_DISABLED, GW_LINK_STATE_SCANNING, X },
	{ GW_LINK_STATE_DISABLED, GW_LINK_STATE_CONNECTING, R },
	{ GW_LINK_STATE_DISABLED, GW_LINK_STATE_WAITING_ADAPTER, X },
	/* from every connected state (RESOLVING .. LIVE), see below */
};

/* What any connected state may do: the link drops or fails, the adapter
 * goes, the bond is lost, the user disables it, Service Changed. */
static const struct { enum gw_link_state to; int kind; } from_connected[] = {
	{ GW_LINK_STATE_DISCONNECTING, X },
	{ GW_LINK_STATE_BACKOFF, X },
	{ GW_LINK_STATE_WAITING_ADAPTER, X },
	{ GW_LINK_STATE_NEEDS_REPAIR, X },
	{ GW_LINK_STATE_DISABLED, X },
	{ GW_LINK_STATE_RESOLVING, X },
	{ GW_LINK_STATE_CHECKING_LAYOUT, X },
};

/* the ones of those the tests must show */
static const struct { enum gw_link_state from, to; } required_connected[] = {
	{ GW_LINK_STATE_RESOLVING, GW_LINK_STATE_DISCONNECTING },
	{ GW_LINK_STATE_CHECKING_LAYOUT, GW_LINK_STATE_DISCONNECTING },
	{ GW_LINK_STATE_SETTING_TIME, GW_LINK_STATE_DISCONNECTING },
	{ GW_LINK_STATE_READING_INFO, GW_LINK_STATE_DISCONNECTING },
	{ GW_LINK_STATE_READING_INFO, GW_LINK_STATE_NEEDS_REPAIR },
	{ GW_LINK_STATE_SUBSCRIBING, GW_LINK_STATE_DISCONNECTING },
	{ GW_LINK_STATE_SUBSCRIBING, GW_LINK_STATE_NEEDS_REPAIR },
	{ GW_LINK_STATE_SYNCING, GW_LINK_STATE_BACKOFF },
	{ GW_LINK_STATE_SYNCING, GW_LINK_STATE_DISCONNECTING },
	{ GW_LINK_STATE_LIVE, GW_LINK_STATE_BACKOFF },
	{ GW_LINK_STATE_LIVE, GW_LINK_STATE_DISCONNECTING },
	{ GW_LINK_STATE_LIVE, GW_LINK_STATE_WAITING_ADAPTER },
	{ GW_LINK_STATE_LIVE, GW_LINK_STATE_DISABLED },
	{ GW_LINK_STATE_LIVE, GW_LINK_STATE_RESOLVING },
	{ GW_LINK_STATE_LIVE, GW_LINK_STATE_CHECKING_LAYOUT },
};

static int allowed[N_STATES][N_STATES];
static unsigned int covered[N_STATES][N_STATES];

static bool is_connected_state(enum gw_link_state s)
{
	return s >= GW_LINK_STATE_RESOLVING && s <= GW_LINK_STATE_LIVE;
}

static void build_table(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(transitions); i++)
		allowed[transitions[i].from][transitions[i].to] = transitions[i].kind;
	for (int s = 0; s < N_STATES; s++) {
		if (!is_connected_state(s))
			continue;
		for (size_t i = 0; i < G_N_ELEMENTS(from_connected); i++)
			if (!allowed[s][from_connected[i].to])
				allowed[s][from_connected[i].to] = from_connected[i].kind;
	}
	for (size_t i = 0; i < G_N_ELEMENTS(required_connected); i++)
		allowed[required_connected[i].from][required_connected[i].to] = R;
}

static void check_transition(struct fake_ble *f, const char *dev, enum gw_link_state o,
			     enum gw_link_state n)
{
	(void) f;
	(void) dev;
	if (!allowed[o][n])
		fail_msg("illegal transition %s -> %s", gw_link_state_name(o),
			 gw_link_state_name(n));
	covered[o][n]++;
}

/* ---- the harness ---- */

struct h {
	struct fake_ble f;
	struct fake_wearable w;
	struct gw_link_config cfg;
	GwLink *link;
};

static int setup(void **state)
{
	struct h *h = g_new0(struct h, 1);

	fake_ble_init(&h->f);
	fake_wearable_init(&h->w, ADDR, 1);
	fake_ble_add_wearable(&h->f, &h->w);
	gw_link_config_init(&h->cfg);
	h->f.now = T0;
	h->f.on_state = check_transition;
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	struct h *h = *state;

	gw_link_free(h->link);
	fake_wearable_fini(&h->w);
	fake_ble_fini(&h->f);
	g_free(h);
	return 0;
}

static void h_link(struct h *h)
{
	struct gw_link_ops ops = fake_ble_link_ops();

	h->link = gw_link_new(ADDR, &h->cfg, &ops, &h->f);
	assert_non_null(h->link);
	fake_ble_set_target(&h->f, &fake_link_target, h->link);
}

static enum gw_link_state st(const struct h *h)
{
	return gw_link_get_state(h->link);
}

#define assert_state(h, s)							\
	do {									\
		enum gw_link_state got_ = st(h);				\
		if (got_ != (s))						\
			fail_msg("state %s, expected %s", gw_link_state_name(got_), \
				 gw_link_state_name(s));			\
	} while (0)

static struct gw_link_stats stats(const struct h *h)
{
	struct gw_link_stats s;

	gw_link_get_stats(h->link, h->f.now, &s);
	return s;
}

static void tick_to(struct h *h, int64_t t)
{
	assert_true(t >= h->f.now);
	h->f.now = t;
	gw_link_tick(h->link, t);
	fake_ble_pump(&h->f);
}

static int64_t deadline(const struct h *h)
{
	return gw_link_next_deadline(h->link);
}

/* Jumps to the next deadline. */
static void next(struct h *h)
{
	int64_t d = deadline(h);

	assert_true(d != GW_LINK_NO_DEADLINE);
	tick_to(h, d > h->f.now ? d : h->f.now);
}

static void start(struct h *h)
{
	gw_link_adapter_ready(h->link, true, h->f.now);
	gw_link_device_seen(h->link, -60, h->f.now);
	fake_ble_pump(&h->f);
}

static void go_live(struct h *h)
{
	start(h);
	assert_state(h, GW_LINK_STATE_LIVE);
}

/* Runs time forward (deadlines, advertisements while scanning, commits
 * when auto) until the link is live with everything stored and deleted,
 * or `limit` of simulated time passes. */
static void settle(struct h *h, int64_t limit)
{
	int64_t end = h->f.now + limit;

	for (int i = 0; i < 100000; i++) {
		int64_t d;

		fake_ble_pump(&h->f);
		if (st(h) == GW_LINK_STATE_SCANNING) {
			gw_link_device_seen(h->link, -60, h->f.now);
			continue;
		}
		if (st(h) == GW_LINK_STATE_LIVE && h->w.flash->len == 0 &&
		    fake_pending_handovers(&h->f) == 0 && g_queue_is_empty(&h->w.outbox))
			return;
		d = deadline(h);
		if (d == GW_LINK_NO_DEADLINE || d > end)
			fail_msg("did not settle: state %s, flash %u, pending %zu",
				 gw_link_state_name(st(h)), h->w.flash->len,
				 fake_pending_handovers(&h->f));
		tick_to(h, d > h->f.now ? d : h->f.now);
	}
	fail_msg("settle: too many steps");
}

static const struct fake_call *last_hcp(const struct h *h)
{
	for (size_t i = fake_ncalls(&h->f); i-- > 0;) {
		const struct fake_call *c = fake_call_at(&h->f, i);

		if (c->op == FOP_WRITE && c->ch == GW_CHAR_HISTORY_CP)
			return c;
	}
	return NULL;
}

static size_t count_hcp(const struct h *h, enum wb_hcp_opcode op)
{
	size_t n = 0;

	for (size_t i = 0; i < fake_ncalls(&h->f); i++) {
		const struct fake_call *c = fake_call_at(&h->f, i);

		if (c->op == FOP_WRITE && c->ch == GW_CHAR_HISTORY_CP && c->bytes[0] == op)
			n++;
	}
	return n;
}

static void assert_bytes(const struct fake_call *c, const uint8_t *want, size_t n)
{
	if (!c) {
		fail_msg("no such call");
		return;
	}
	assert_int_equal(c->len, n);
	assert_memory_equal(c->bytes, want, n);
}

/* every seq in from..to (serial order) reached the store exactly once (the
 * fake store fails the test on a second time) */
static void assert_stored_range(const struct h *h, uint32_t from, uint32_t to)
{
	for (uint32_t s = from;; s++) {
		if (!fake_stored(&h->f, ADDR, s))
			fail_msg("seq %u never reached the store", s);
		if (s == to)
			break;
	}
}

static int64_t backoff_delay(const struct h *h)
{
	struct gw_link_stats s = stats(h);

	assert_int_equal(s.state, GW_LINK_STATE_BACKOFF);
	return s.retry_at - h->f.now;
}

/* ---- basics ---- */

static void test_starts_waiting_for_adapter(void **state)
{
	struct h *h = *state;

	h_link(h);
	assert_state(h, GW_LINK_STATE_WAITING_ADAPTER);
	assert_int_equal(deadline(h), GW_LINK_NO_DEADLINE);
	gw_link_device_seen(h->link, -50, h->f.now);
	assert_state(h, GW_LINK_STATE_WAITING_ADAPTER);
	assert_int_equal(fake_count(&h->f, FOP_CONNECT), 0);
	assert_string_equal(gw_link_get_address(h->link), ADDR);
	/* seen before the adapter was ready: connect at once */
	gw_link_adapter_ready(h->link, true, h->f.now);
	assert_state(h, GW_LINK_STATE_CONNECTING);
	assert_int_equal(fake_count(&h->f, FOP_CONNECT), 1);
}

static void test_scans_until_seen(void **state)
{
	struct h *h = *state;

	h_link(h);
	gw_link_adapter_ready(h->link, true, h->f.now);
	assert_state(h, GW_LINK_STATE_SCANNING);
	assert_int_equal(deadline(h), h->f.now + h->cfg.scan_timeout_us);
	assert_int_equal(fake_count(&h->f, FOP_CONNECT), 0);
	tick_to(h, h->f.now + SEC(10));
	assert_state(h, GW_LINK_STATE_SCANNING);
	gw_link_device_seen(h->link, -70, h->f.now);
	assert_state(h, GW_LINK_STATE_CONNECTING);
	assert_int_equal(stats(h).rssi, -70);
	assert_int_equal(deadline(h), h->f.now + h->cfg.connect_timeout_us);
}

static void test_scan_timeout_tries_direct_connect(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->w.answer_connect = false;
	gw_link_adapter_ready(h->link, true, h->f.now);
	next(h);
	assert_state(h, GW_LINK_STATE_CONNECTING);
	assert_int_equal(stats(h).scan_timeouts, 1);
	/* the object is gone: rescan */
	gw_link_connect_done(h->link, GW_BLE_ERR_DOES_NOT_EXIST, h->f.now);
	assert_state(h, GW_LINK_STATE_BACKOFF);
	next(h);
	assert_state(h, GW_LINK_STATE_SCANNING);
}

static const enum gw_link_state setup_states[] = {
	GW_LINK_STATE_SCANNING, GW_LINK_STATE_CONNECTING, GW_LINK_STATE_RESOLVING,
	GW_LINK_STATE_CHECKING_LAYOUT, GW_LINK_STATE_SETTING_TIME,
	GW_LINK_STATE_READING_INFO, GW_LINK_STATE_SUBSCRIBING, GW_LINK_STATE_SYNCING,
	GW_LINK_STATE_LIVE,
};

static void test_full_setup_order(void **state)
{
	struct h *h = *state;
	static const enum gw_char reads[] = {
		GW_CHAR_FEATURES, GW_CHAR_BATTERY, GW_CHAR_MANUFACTURER, GW_CHAR_MODEL,
		GW_CHAR_SERIAL, GW_CHAR_FIRMWARE,
	};
	static const enum gw_char notifies[] = {
		GW_CHAR_PAIN, GW_CHAR_POSTURE, GW_CHAR_STEPS, GW_CHAR_STATUS,
		GW_CHAR_HISTORY_DATA, GW_CHAR_HISTORY_CP, GW_CHAR_BATTERY,
	};
	size_t ri = 0, ni = 0, si = 0;
	struct gw_link_stats s;

	h_link(h);
	gw_link_clock(h->link, true, SEC(1700000000), h->f.now);
	h->f.auto_commit = true;
	go_live(h);

	for (size_t i = 0; i < fake_ncalls(&h->f); i++) {
		const struct fake_call *c = fake_call_at(&h->f, i);

		if (c->op == FOP_READ) {
			assert_true(ri < G_N_ELEMENTS(reads));
			assert_int_equal(c->ch, reads[ri++]);
		} else if (c->op == FOP_NOTIFY) {
			assert_true(ni < G_N_ELEMENTS(notifies));
			assert_int_equal(c->ch, notifies[ni++]);
			assert_int_equal(ri, G_N_ELEMENTS(reads));	/* after the reads */
		} else if (c->op == FOP_STATE &&
			   (enum gw_link_state) c->a != GW_LINK_STATE_WAITING_ADAPTER) {
			assert_true(si + 1 < G_N_ELEMENTS(setup_states));
			assert_int_equal(c->a, setup_states[si]);
			assert_int_equal(c->b, setup_states[si + 1]);
			si++;
		} else if (c->op == FOP_WRITE && c->ch == GW_CHAR_CURRENT_TIME) {
			assert_int_equal(ri, 0);	/* time before the reads */
		}
	}
	assert_int_equal(ri, G_N_ELEMENTS(reads));
	assert_int_equal(ni, G_N_ELEMENTS(notifies));
	assert_int_equal(si, G_N_ELEMENTS(setup_states) - 1);
	assert_true(h->w.time_written);

	/* what the rest of the daemon hears */
	assert_int_equal(fake_last(&h->f, FOP_BATTERY, ADDR)->a, 87);
	assert_int_equal(fake_count(&h->f, FOP_INFO), 4);
	assert_string_equal(fake_last(&h->f, FOP_INFO, ADDR)->str, "1.3.0");
	assert_int_equal(fake_count(&h->f, FOP_FEATURES), 1);

	s = stats(h);
	assert_true(s.connected);
	assert_int_equal(s.connections, 1);
	assert_int_equal(s.reconnects, 0);
	assert_int_equal(s.connect_attempts, 1);
	assert_true(s.history_synced);
	assert_int_equal(s.time_writes, 1);
	assert_int_equal(s.last_error, GW_BLE_OK);
	assert_int_equal(s.last_error_time, GW_LINK_NEVER);
	tick_to(h, h->f.now + SEC(5));
	assert_int_equal(stats(h).connected_us, SEC(5));
}

/* the wall clock the gateway had becomes the wearable's Current Time */
static void test_time_written_value(void **state)
{
	struct h *h = *state;
	struct wb_current_time t;
	int64_t unix_s;

	h_link(h);
	/* 2023-11-14 22:13:20.5 UTC */
	gw_link_clock(h->link, true, SEC(1700000000) + MS(500), h->f.now);
	h->f.mute_op = FOP_WRITE;
	h->f.mute_ch = GW_CHAR_CURRENT_TIME;
	start(h);
	assert_state(h, GW_LINK_STATE_SETTING_TIME);
	assert_int_equal(wb_current_time_decode(fake_last(&h->f, FOP_WRITE, ADDR)->bytes,
						WB_CURRENT_TIME_LEN, &t, NULL), 0);
	assert_int_equal(wb_current_time_to_unix(&t, &unix_s), 0);
	assert_int_equal(unix_s, 1700000000);
	assert_int_equal(t.fractions256, 128);
	assert_int_equal(t.adjust_reason & 0x02, 0x02);	/* external reference */
	/* a refused write does not stop the link */
	gw_link_write_done(h->link, GW_CHAR_CURRENT_TIME, GW_BLE_ERR_FAILED, h->f.now);
	assert_state(h, GW_LINK_STATE_READING_INFO);
}

static void test_time_only_when_synced(void **state)
{
	struct h *h = *state;
	size_t n;

	h_link(h);
	h->f.auto_commit = true;
	go_live(h);
	assert_false(h->w.time_written);
	assert_int_equal(covered[GW_LINK_STATE_CHECKING_LAYOUT][GW_LINK_STATE_READING_INFO] > 0,
			 true);
	/* unsynced again: still nothing */
	gw_link_clock(h->link, false, SEC(1700000000), h->f.now);
	fake_ble_pump(&h->f);
	assert_false(h->w.time_written);
	/* NTP synced while live: written once, then every time_resync_us */
	gw_link_clock(h->link, true, SEC(1700000000), h->f.now);
	fake_ble_pump(&h->f);
	assert_true(h->w.time_written);
	n = fake_count(&h->f, FOP_WRITE);
	gw_link_clock(h->link, true, SEC(1700000001), h->f.now + 1);
	fake_ble_pump(&h->f);
	assert_int_equal(fake_count(&h->f, FOP_WRITE), n);
	assert_int_equal(stats(h).time_writes, 1);
	for (int i = 0; i < 2000 && stats(h).time_writes < 2; i++)
		next(h);
	assert_int_equal(stats(h).time_writes, 2);
	assert_true(h->f.now >= T0 + h->cfg.time_resync_us);
	/* and the clock lost its sync: no more writes */
	gw_link_clock(h->link, false, SEC(1700000000), h->f.now);
	for (int i = 0; i < 3000 && h->f.now < T0 + 3 * h->cfg.time_resync_us; i++)
		next(h);
	assert_int_equal(stats(h).time_writes, 2);
}

static void test_time_not_written_if_wearable_refuses(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->w.feature_flags &= (uint8_t) ~WB_FEATURE_TIME_SET;
	gw_link_clock(h->link, true, SEC(1700000000), h->f.now);
	h->f.auto_commit = true;
	go_live(h);
	/* the first connection does not know yet and writes */
	assert_int_equal(stats(h).time_writes, 1);
	fake_wearable_drop_link(&h->f, &h->w);
	h->w.time_written = false;
	settle(h, SEC(60));
	assert_false(h->w.time_written);
	assert_int_equal(stats(h).time_writes, 1);
}

static void test_devinfo_read_once(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->f.auto_commit = true;
	h->w.devinfo[GW_CHAR_SERIAL] = NULL;	/* refused: NOT_SUPPORTED */
	go_live(h);
	assert_int_equal(fake_count(&h->f, FOP_INFO), 3);
	assert_int_equal(fake_count_dev(&h->f, FOP_READ, ADDR), 6);
	fake_clear_calls(&h->f);
	fake_wearable_drop_link(&h->f, &h->w);
	settle(h, SEC(60));
	/* again: features, battery, and the one that failed */
	assert_int_equal(fake_count(&h->f, FOP_READ), 3);
	assert_int_equal(fake_last(&h->f, FOP_READ, ADDR)->ch, GW_CHAR_SERIAL);
	assert_int_equal(stats(h).reconnects, 1);
}

static void test_event_orders(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->w.answer_connect = false;
	h->f.auto_commit = true;
	start(h);
	assert_state(h, GW_LINK_STATE_CONNECTING);
	/* everything before Connect() returns: layout first */
	gw_link_services_resolved(h->link, true, h->f.now);
	gw_link_gatt_layout(h->link, (const struct gw_gatt_char *) (void *) h->w.layout->data,
			    h->w.layout->len, h->f.now);
	assert_state(h, GW_LINK_STATE_CONNECTING);
	h->w.connected = true;
	gw_link_connect_done(h->link, GW_BLE_OK, h->f.now);
	fake_ble_pump(&h->f);
	assert_state(h, GW_LINK_STATE_LIVE);
	assert_int_equal(covered[GW_LINK_STATE_CONNECTING][GW_LINK_STATE_CHECKING_LAYOUT] > 0,
			 true);
	/* a late Connect() reply changes nothing */
	gw_link_connect_done(h->link, GW_BLE_OK, h->f.now);
	gw_link_connected_changed(h->link, true, h->f.now);
	assert_state(h, GW_LINK_STATE_LIVE);
	/* stale answers for states long left are ignored */
	gw_link_read_done(h->link, GW_CHAR_FEATURES, GW_BLE_ERR_AUTH, NULL, 0, h->f.now);
	gw_link_notify_started(h->link, GW_CHAR_PAIN, GW_BLE_ERR_AUTH, h->f.now);
	assert_state(h, GW_LINK_STATE_LIVE);
}

static void test_bluez_reconnects_by_itself(void **state)
{
	struct h *h = *state;

	h_link(h);
	gw_link_adapter_ready(h->link, true, h->f.now);
	assert_state(h, GW_LINK_STATE_SCANNING);
	gw_link_connected_changed(h->link, true, h->f.now);
	assert_state(h, GW_LINK_STATE_RESOLVING);
	assert_int_equal(deadline(h), h->f.now + h->cfg.resolve_timeout_us);
}

static void test_adapter_lost_and_back(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->f.auto_commit = true;
	go_live(h);
	gw_link_adapter_ready(h->link, false, h->f.now);
	assert_state(h, GW_LINK_STATE_WAITING_ADAPTER);
	assert_int_equal(deadline(h), GW_LINK_NO_DEADLINE);
	assert_false(stats(h).connected);
	h->w.connected = false;
	tick_to(h, h->f.now + SEC(3600));
	assert_state(h, GW_LINK_STATE_WAITING_ADAPTER);
	gw_link_adapter_ready(h->link, true, h->f.now);
	assert_state(h, GW_LINK_STATE_SCANNING);	/* the advert is an hour old */
	gw_link_adapter_ready(h->link, false, h->f.now);
	assert_state(h, GW_LINK_STATE_WAITING_ADAPTER);
	gw_link_adapter_ready(h->link, true, h->f.now);
	settle(h, SEC(10));
	assert_int_equal(stats(h).connections, 2);
}

static void test_disable_enable(void **state)
{
	struct h *h = *state;
	uint8_t buf[64];
	struct wb_record r;
	ssize_t n;

	h_link(h);
	h->f.auto_commit = true;
	go_live(h);
	gw_link_set_enabled(h->link, false, h->f.now);
	assert_state(h, GW_LINK_STATE_DISABLED);
	assert_int_equal(fake_last(&h->f, FOP_DISCONNECT, ADDR) != NULL, true);
	assert_int_equal(deadline(h), GW_LINK_NO_DEADLINE);
	fake_ble_pump(&h->f);
	/* nothing is taken while disabled */
	fake_record(&r, WB_RECORD_PAIN, 50);
	n = wb_batch_encode(&r, 1, buf, sizeof(buf));
	gw_link_value(h->link, GW_CHAR_PAIN, buf, (size_t) n, h->f.now);
	assert_int_equal(stats(h).records_stored, 0);
	gw_link_device_seen(h->link, -50, h->f.now);
	gw_link_connected_changed(h->link, true, h->f.now);	/* BlueZ reconnected: refused */
	assert_state(h, GW_LINK_STATE_DISABLED);
	assert_int_equal(fake_count(&h->f, FOP_DISCONNECT), 2);
	gw_link_connected_changed(h->link, false, h->f.now);
	gw_link_set_enabled(h->link, true, h->f.now);
	assert_state(h, GW_LINK_STATE_CONNECTING);
	settle(h, SEC(10));
}

/* ---- error classes ---- */

struct err_vec {
	const char *name;
	enum gw_ble_err err;
	bool disconnect;		/* Disconnect() first */
	bool clear;			/* then remove_device_cache */
	enum gw_link_state after;	/* right after the error */
	int64_t base;
	double jitter;
};

static const struct err_vec err_vecs[] = {
	{ "connect-in-progress", GW_BLE_ERR_IN_PROGRESS, true, true, GW_LINK_STATE_BACKOFF,
	  SEC(2), 0.2 },
	{ "connect-abort-by-local", GW_BLE_ERR_ABORT_BY_LOCAL, false, false,
	  GW_LINK_STATE_DISCONNECTING, MS(250), 0.25 },
	{ "connect-not-ready", GW_BLE_ERR_NOT_READY, false, false,
	  GW_LINK_STATE_WAITING_ADAPTER, SEC(2), 0.2 },
	{ "connect-failed", GW_BLE_ERR_FAILED, true, false, GW_LINK_STATE_BACKOFF, SEC(1), 0.2 },
	{ "connect-auth", GW_BLE_ERR_AUTH, true, false, GW_LINK_STATE_NEEDS_REPAIR, 0, 0 },
	{ "connect-timeout", GW_BLE_ERR_TIMEOUT, true, false, GW_LINK_STATE_BACKOFF, SEC(2), 0.2 },
	{ "connect-not-connected", GW_BLE_ERR_NOT_CONNECTED, false, false,
	  GW_LINK_STATE_BACKOFF, MS(500), 0.2 },
	{ "connect-does-not-exist", GW_BLE_ERR_DOES_NOT_EXIST, false, false,
	  GW_LINK_STATE_BACKOFF, SEC(1), 0.2 },
	{ "connect-not-supported", GW_BLE_ERR_NOT_SUPPORTED, true, false,
	  GW_LINK_STATE_BACKOFF, SEC(60), 0.1 },
	{ "connect-bluez-gone", GW_BLE_ERR_BLUEZ_GONE, false, false,
	  GW_LINK_STATE_WAITING_ADAPTER, SEC(1), 0.2 },
};

static void test_connect_error(void **state)
{
	struct h *h = *state;
	const struct err_vec *v = NULL;
	struct gw_link_stats s;
	long idis, iclr;
	int64_t t_err, d;

	/* the vector rides in the harness: the group passes it through
	 * initial_state, which setup replaced */
	v = (const struct err_vec *) h->f.target_data;
	h->f.target_data = NULL;
	h_link(h);
	h->w.connect_err = v->err;
	fake_ble_random_push(&h->f, 0x80000000u);	/* u = 0.5: no jitter */
	start(h);
	t_err = h->f.now;
	assert_state(h, v->after);

	s = stats(h);
	assert_int_equal(s.last_error, v->err);
	assert_int_equal(s.last_error_time, t_err);
	assert_int_equal(s.errors[v->err], 1);
	assert_int_equal(s.consecutive[v->err], 1);
	assert_int_equal(fake_last(&h->f, FOP_ERROR, ADDR)->a, v->err);
	assert_int_equal(fake_last(&h->f, FOP_ERROR, ADDR)->b, GW_LINK_STATE_CONNECTING);

	idis = fake_find(&h->f, FOP_DISCONNECT, ADDR, 0);
	iclr = fake_find(&h->f, FOP_REMOVE_CACHE, ADDR, 0);
	assert_int_equal(idis >= 0, v->disconnect);
	assert_int_equal(iclr >= 0, v->clear);
	if (v->clear)
		assert_true(idis < iclr);	/* disconnect first, then the cache */

	switch (v->after) {
	case GW_LINK_STATE_BACKOFF:
		d = backoff_delay(h);
		assert_int_equal(d, v->base);
		break;
	case GW_LINK_STATE_DISCONNECTING:
		/* abort-by-local: no retry before the disconnect event */
		assert_int_equal(deadline(h), h->f.now + h->cfg.disconnect_timeout_us);
		tick_to(h, h->f.now + MS(100));
		assert_state(h, GW_LINK_STATE_DISCONNECTING);
		assert_int_equal(fake_count(&h->f, FOP_CONNECT), 1);
		gw_link_connected_changed(h->link, false, h->f.now);
		assert_int_equal(backoff_delay(h), v->base);
		break;
	case GW_LINK_STATE_WAITING_ADAPTER:
		/* the central still says ready: retry after the delay */
		assert_int_equal(deadline(h), t_err + v->base);
		break;
	case GW_LINK_STATE_NEEDS_REPAIR:
		assert_int_equal(fake_last(&h->f, FOP_REPAIR, ADDR)->a, GW_LINK_REPAIR_BOND_LOST);
		assert_int_equal(deadline(h), GW_LINK_NO_DEADLINE);
		return;
	case GW_LINK_STATE_SCANNING:
	case GW_LINK_STATE_CONNECTING:
	case GW_LINK_STATE_RESOLVING:
	case GW_LINK_STATE_CHECKING_LAYOUT:
	case GW_LINK_STATE_SETTING_TIME:
	case GW_LINK_STATE_READING_INFO:
	case GW_LINK_STATE_SUBSCRIBING:
	case GW_LINK_STATE_SYNCING:
	case GW_LINK_STATE_LIVE:
	case GW_LINK_STATE_DISABLED:
		fail_msg("unexpected");
		break;
	}

	/* the retry, and it works */
	h->w.connect_err = GW_BLE_OK;
	h->f.auto_commit = true;
	settle(h, SEC(600));
	s = stats(h);
	assert_int_equal(s.connect_attempts, 2);
	assert_int_equal(s.last_error, v->err);	/* kept for the doctor */
	/* stable for a minute: the run is forgotten */
	tick_to(h, h->f.now + h->cfg.stable_us);
	assert_int_equal(stats(h).consecutive[v->err], 0);
	assert_int_equal(stats(h).errors[v->err], 1);
}

static int setup_vec(void **state)
{
	const void *v = *state;

	setup(state);
	/* carried to the test in a field it does not use before h_link */
	((struct h *) *state)->f.target_data = (void *) v;
	return 0;
}

/* exponential, capped, and the jitter within d*(1-j) .. d*(1+j) */
static void test_backoff_growth_and_jitter(void **state)
{
	struct h *h = *state;
	const struct gw_link_policy *p = &h->cfg.policy[GW_BLE_ERR_FAILED];
	uint32_t scripted[] = { 0, 0xffffffffu, 0x80000000u };

	h_link(h);
	h->w.connect_err = GW_BLE_ERR_FAILED;
	for (unsigned int n = 1; n <= 14; n++) {
		double d = (double) p->base_us;
		int64_t got;

		for (unsigned int i = 1; i < n; i++)
			d = d * p->multiplier;
		if (d > (double) p->max_us)
			d = (double) p->max_us;
		if (n <= G_N_ELEMENTS(scripted))
			fake_ble_random_push(&h->f, scripted[n - 1]);
		if (n == 1)
			start(h);
		else
			next(h);
		if (st(h) == GW_LINK_STATE_SCANNING) {
			gw_link_device_seen(h->link, -60, h->f.now);
			fake_ble_pump(&h->f);
		}
		got = backoff_delay(h);
		assert_int_equal(stats(h).consecutive[GW_BLE_ERR_FAILED], n);
		if (n == 1)
			assert_int_equal(got, (int64_t) (d * (1.0 - p->jitter)));
		else if (n == 2)
			assert_true(got >= (int64_t) (d * (1.0 + p->jitter)) - 1 &&
				    got <= (int64_t) (d * (1.0 + p->jitter)));
		else if (n == 3)
			assert_int_equal(got, (int64_t) d);
		assert_true(got >= (int64_t) (d * (1.0 - p->jitter)));
		assert_true(got <= (int64_t) (d * (1.0 + p->jitter)));
	}
	/* capped at max (300 s) */
	assert_true(backoff_delay(h) <= (int64_t) (p->max_us * (1.0 + p->jitter)));
	assert_true(backoff_delay(h) >= (int64_t) (p->max_us * (1.0 - p->jitter)));
}

/* without ops->random, the seed decides: same seed, same delays */
static void test_jitter_seeded(void **state)
{
	struct h *h = *state;
	struct gw_link_ops ops = fake_ble_link_ops();
	int64_t d1[8], d2[8];

	ops.random = NULL;
	ops.state_changed = NULL;
	for (int round = 0; round < 2; round++) {
		struct fake_ble f;
		GwLink *l;

		fake_ble_init(&f);
		l = gw_link_new(ADDR, &h->cfg, &ops, &f);
		gw_link_adapter_ready(l, true, 0);
		for (int i = 0; i < 8; i++) {
			struct gw_link_stats s;
			int64_t now = (int64_t) i * SEC(1000);

			gw_link_device_seen(l, -60, now);
			if (gw_link_get_state(l) == GW_LINK_STATE_SCANNING)
				gw_link_tick(l, now);
			assert_int_equal(gw_link_get_state(l), GW_LINK_STATE_CONNECTING);
			gw_link_connect_done(l, GW_BLE_ERR_TIMEOUT, now);
			gw_link_get_stats(l, now, &s);
			(round ? d2 : d1)[i] = s.retry_at - now;
			gw_link_tick(l, s.retry_at);
		}
		gw_link_free(l);
		fake_ble_fini(&f);
	}
	assert_memory_equal(d1, d2, sizeof(d1));
	/* and it does jitter */
	assert_true(d1[0] != SEC(2) || d1[1] != SEC(4));
}

/* IN_PROGRESS: the stale state is cleared on the first only, then patience */
static void test_in_progress_clears_first_only(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->w.connect_err = GW_BLE_ERR_IN_PROGRESS;
	start(h);
	assert_int_equal(fake_count(&h->f, FOP_REMOVE_CACHE), 1);
	assert_int_equal(h->w.cache_drops, 1);
	for (int i = 0; i < 4; i++) {
		next(h);
		if (st(h) == GW_LINK_STATE_SCANNING) {
			gw_link_device_seen(h->link, -60, h->f.now);
			fake_ble_pump(&h->f);
		}
	}
	assert_int_equal(stats(h).consecutive[GW_BLE_ERR_IN_PROGRESS], 5);
	assert_int_equal(fake_count(&h->f, FOP_REMOVE_CACHE), 1);
	assert_int_equal(fake_count(&h->f, FOP_DISCONNECT), 5);
	assert_int_equal(stats(h).cache_clears, 1);
}

/* abort-by-local when the link was up: wait for the event, no Disconnect() */
static void test_abort_by_local_variants(void **state)
{
	struct h *h = *state;
	int64_t t;

	h_link(h);
	h->w.answer_connect = false;
	start(h);
	/* (a) the disconnect event came before the error: retry right away */
	gw_link_connected_changed(h->link, true, h->f.now);
	gw_link_connected_changed(h->link, false, h->f.now);
	assert_state(h, GW_LINK_STATE_BACKOFF);	/* link lost while resolving */
	next(h);
	assert_state(h, GW_LINK_STATE_CONNECTING);
	gw_link_connected_changed(h->link, false, h->f.now);	/* before Connect() returns */
	assert_state(h, GW_LINK_STATE_CONNECTING);
	gw_link_connect_done(h->link, GW_BLE_ERR_ABORT_BY_LOCAL, h->f.now);
	assert_state(h, GW_LINK_STATE_BACKOFF);
	assert_int_equal(fake_count(&h->f, FOP_DISCONNECT), 0);
	/* (b) no event at all: the timeout ends the wait */
	next(h);
	assert_state(h, GW_LINK_STATE_CONNECTING);
	gw_link_connect_done(h->link, GW_BLE_ERR_ABORT_BY_LOCAL, h->f.now);
	assert_state(h, GW_LINK_STATE_DISCONNECTING);
	t = h->f.now;
	next(h);
	assert_int_equal(h->f.now, t + h->cfg.disconnect_timeout_us);
	assert_state(h, GW_LINK_STATE_BACKOFF);
	assert_int_equal(fake_count(&h->f, FOP_DISCONNECT), 0);
	assert_int_equal(stats(h).consecutive[GW_BLE_ERR_ABORT_BY_LOCAL], 2);
}

static void test_not_ready_waits_for_adapter(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->w.connect_err = GW_BLE_ERR_NOT_READY;
	start(h);
	assert_state(h, GW_LINK_STATE_WAITING_ADAPTER);
	/* the adapter is really off: the delay passes, the link keeps waiting */
	gw_link_adapter_ready(h->link, false, h->f.now);
	assert_int_equal(deadline(h), GW_LINK_NO_DEADLINE);
	h->w.connect_err = GW_BLE_OK;
	h->f.auto_commit = true;
	gw_link_adapter_ready(h->link, true, h->f.now);
	fake_ble_pump(&h->f);
	assert_state(h, GW_LINK_STATE_LIVE);
}

static void test_auth_needs_repair_never_reconnects(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->f.auto_commit = true;
	go_live(h);
	fake_wearable_drop_link(&h->f, &h->w);
	h->f.mute_op = FOP_NOTIFY;
	h->f.mute_ch = GW_CHAR_PAIN;
	for (int i = 0; i < 50 && st(h) != GW_LINK_STATE_SUBSCRIBING; i++) {
		if (st(h) == GW_LINK_STATE_SCANNING)
			gw_link_device_seen(h->link, -60, h->f.now);
		else
			next(h);
		fake_ble_pump(&h->f);
	}
	assert_state(h, GW_LINK_STATE_SUBSCRIBING);
	/* the pain indication needs encryption; the bond is gone */
	gw_link_notify_started(h->link, GW_CHAR_PAIN, GW_BLE_ERR_AUTH, h->f.now);
	fake_ble_pump(&h->f);
	assert_state(h, GW_LINK_STATE_NEEDS_REPAIR);
	assert_int_equal(fake_count(&h->f, FOP_REPAIR), 1);
	assert_int_equal(deadline(h), GW_LINK_NO_DEADLINE);
	assert_false(h->w.connected);

	/* a day of adverts: never a connect, never a pairing */
	{
		size_t connects = fake_count(&h->f, FOP_CONNECT);

		for (int i = 0; i < 24; i++) {
			h->f.now += SEC(3600);
			gw_link_device_seen(h->link, -40, h->f.now);
			gw_link_tick(h->link, h->f.now);
			gw_link_adapter_ready(h->link, false, h->f.now);
			gw_link_adapter_ready(h->link, true, h->f.now);
		}
		fake_ble_pump(&h->f);
		assert_int_equal(fake_count(&h->f, FOP_CONNECT), connects);
		assert_state(h, GW_LINK_STATE_NEEDS_REPAIR);
	}
	/* a human paired it again, an hour later */
	h->f.mute_op = -1;
	h->f.now += SEC(3600);
	gw_link_repaired(h->link, false, h->f.now);
	assert_state(h, GW_LINK_STATE_SCANNING);
	gw_link_device_seen(h->link, -60, h->f.now);
	fake_ble_pump(&h->f);
	assert_state(h, GW_LINK_STATE_LIVE);
}

static void test_auth_in_each_step(void **state)
{
	struct h *h = *state;
	static const struct { enum fake_op op; enum gw_char ch; } steps[] = {
		{ FOP_WRITE, GW_CHAR_CURRENT_TIME },
		{ FOP_READ, GW_CHAR_FEATURES },
		{ FOP_READ, GW_CHAR_BATTERY },
		{ FOP_READ, GW_CHAR_MODEL },
		{ FOP_NOTIFY, GW_CHAR_HISTORY_CP },
		{ FOP_WRITE, GW_CHAR_HISTORY_CP },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(steps); i++) {
		const struct fake_call *c;

		gw_link_free(h->link);
		fake_clear_calls(&h->f);
		h->w.connected = false;
		h_link(h);
		gw_link_clock(h->link, true, SEC(1700000000), h->f.now);
		h->f.mute_op = steps[i].op;
		h->f.mute_ch = steps[i].ch;
		start(h);
		c = fake_last(&h->f, steps[i].op, ADDR);
		assert_non_null(c);
		assert_int_equal(c->ch, steps[i].ch);
		if (steps[i].op == FOP_WRITE)
			gw_link_write_done(h->link, steps[i].ch, GW_BLE_ERR_AUTH, h->f.now);
		else if (steps[i].op == FOP_READ)
			gw_link_read_done(h->link, steps[i].ch, GW_BLE_ERR_AUTH, NULL, 0, h->f.now);
		else
			gw_link_notify_started(h->link, steps[i].ch, GW_BLE_ERR_AUTH, h->f.now);
		assert_state(h, GW_LINK_STATE_NEEDS_REPAIR);
		assert_int_equal(fake_last(&h->f, FOP_REPAIR, ADDR)->a, GW_LINK_REPAIR_BOND_LOST);
	}
	h->f.mute_op = -1;
}

/* optional steps: a refusal skips them, anything else fails the link */
static void test_optional_step_errors(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->f.mute_op = FOP_READ;
	h->f.mute_ch = GW_CHAR_BATTERY;
	start(h);
	assert_state(h, GW_LINK_STATE_READING_INFO);
	gw_link_read_done(h->link, GW_CHAR_BATTERY, GW_BLE_ERR_FAILED, NULL, 0, h->f.now);
	fake_ble_pump(&h->f);
	assert_int_equal(fake_count(&h->f, FOP_BATTERY), 0);
	assert_int_equal(stats(h).errors[GW_BLE_ERR_FAILED], 0);
	h->f.mute_op = -1;
	fake_ble_pump(&h->f);

	/* features are not optional */
	gw_link_free(h->link);
	fake_clear_calls(&h->f);
	h->w.connected = false;
	h_link(h);
	h->f.mute_op = FOP_READ;
	h->f.mute_ch = GW_CHAR_FEATURES;
	start(h);
	gw_link_read_done(h->link, GW_CHAR_FEATURES, GW_BLE_ERR_FAILED, NULL, 0, h->f.now);
	assert_state(h, GW_LINK_STATE_DISCONNECTING);
	assert_int_equal(stats(h).last_error, GW_BLE_ERR_FAILED);
	h->f.mute_op = -1;
	fake_ble_pump(&h->f);
	assert_state(h, GW_LINK_STATE_BACKOFF);

	/* a timeout on an optional step is a link problem */
	gw_link_free(h->link);
	fake_clear_calls(&h->f);
	h->w.connected = false;
	h_link(h);
	h->f.mute_op = FOP_READ;
	h->f.mute_ch = GW_CHAR_MODEL;
	start(h);
	gw_link_read_done(h->link, GW_CHAR_MODEL, GW_BLE_ERR_TIMEOUT, NULL, 0, h->f.now);
	assert_int_equal(stats(h).last_error, GW_BLE_ERR_TIMEOUT);
	h->f.mute_op = -1;
	fake_ble_pump(&h->f);
	assert_state(h, GW_LINK_STATE_BACKOFF);
}

/* ---- timeouts at every wait ---- */

struct wait_vec {
	const char *name;
	int mute_op;			/* the answer that never comes */
	int mute_ch;
	enum gw_link_state waiting;	/* where it waits */
	bool synced;			/* gateway clock (for the time write) */
};

static const struct wait_vec wait_vecs[] = {
	{ "timeout-connect", FOP_CONNECT, -1, GW_LINK_STATE_CONNECTING, false },
	{ "timeout-time-write", FOP_WRITE, GW_CHAR_CURRENT_TIME, GW_LINK_STATE_SETTING_TIME, true },
	{ "timeout-read-features", FOP_READ, GW_CHAR_FEATURES, GW_LINK_STATE_READING_INFO, false },
	{ "timeout-read-serial", FOP_READ, GW_CHAR_SERIAL, GW_LINK_STATE_READING_INFO, false },
	{ "timeout-notify-status", FOP_NOTIFY, GW_CHAR_STATUS, GW_LINK_STATE_SUBSCRIBING, false },
	{ "timeout-hcp-write", FOP_WRITE, GW_CHAR_HISTORY_CP, GW_LINK_STATE_SYNCING, false },
};

static void test_wait_timeout(void **state)
{
	struct h *h = *state;
	const struct wait_vec *v = h->f.target_data;
	struct gw_link_stats s;
	int64_t t;

	h->f.target_data = NULL;
	h_link(h);
	h->f.mute_op = v->mute_op;
	h->f.mute_ch = v->mute_ch;
	if (v->synced)
		gw_link_clock(h->link, true, SEC(1700000000), h->f.now);
	fake_wearable_make(&h->w, 3);
	start(h);
	assert_state(h, v->waiting);
	t = h->f.now;
	next(h);
	s = stats(h);
	assert_int_equal(s.last_error, GW_BLE_ERR_TIMEOUT);
	assert_int_equal(h->f.now - t, v->mute_op == FOP_CONNECT ? h->cfg.connect_timeout_us
			 : h->cfg.gatt_timeout_us);
	/* TIMEOUT: Disconnect() (cancelling a pending Connect()), then back off */
	assert_true(fake_last(&h->f, FOP_DISCONNECT, ADDR) != NULL);
	assert_state(h, GW_LINK_STATE_BACKOFF);
	h->f.mute_op = -1;
	h->f.auto_commit = true;
	settle(h, SEC(60));
	assert_stored_range(h, 1, 3);
}

static void test_timeout_resolving_and_layout(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->w.answer_connect = false;
	start(h);
	h->w.connected = true;
	gw_link_connect_done(h->link, GW_BLE_OK, h->f.now);
	assert_state(h, GW_LINK_STATE_RESOLVING);
	next(h);
	assert_int_equal(stats(h).last_error, GW_BLE_ERR_TIMEOUT);
	assert_state(h, GW_LINK_STATE_BACKOFF);	/* the fake dropped the link at once */
	gw_link_device_seen(h->link, -60, h->f.now);
	next(h);
	assert_state(h, GW_LINK_STATE_CONNECTING);
	h->w.connected = true;
	gw_link_connected_changed(h->link, true, h->f.now);
	gw_link_services_resolved(h->link, true, h->f.now);
	assert_state(h, GW_LINK_STATE_CHECKING_LAYOUT);
	assert_int_equal(deadline(h), h->f.now + h->cfg.layout_timeout_us);
	next(h);
	assert_int_equal(stats(h).errors[GW_BLE_ERR_TIMEOUT], 2);
	assert_int_equal(covered[GW_LINK_STATE_CHECKING_LAYOUT][GW_LINK_STATE_DISCONNECTING] > 0,
			 true);
}

static void test_timeout_hcp_response_and_report_silence(void **state)
{
	struct h *h = *state;
	int64_t t;

	h_link(h);
	fake_wearable_make(&h->w, 12);
	h->w.batch_records = 3;
	h->w.stall_after = 2;	/* two batches, then the wearable goes quiet */
	start(h);
	assert_state(h, GW_LINK_STATE_SYNCING);
	t = h->f.now;
	next(h);
	assert_int_equal(h->f.now - t, h->cfg.hcp_timeout_us);
	assert_int_equal(stats(h).last_error, GW_BLE_ERR_TIMEOUT);
	assert_int_equal(covered[GW_LINK_STATE_SYNCING][GW_LINK_STATE_DISCONNECTING] > 0, true);
	/* nothing durable moved past what the wearable held, nothing deleted */
	assert_true(stats(h).have_durable_seq);
	assert_int_equal(stats(h).durable_seq, 0);
	assert_int_equal(count_hcp(h, WB_HCP_DELETE_RECORDS), 0);
	h->f.auto_commit = true;
	settle(h, SEC(120));
	assert_stored_range(h, 1, 12);
	assert_int_equal(stats(h).durable_seq, 12);
}

static void test_timeout_disconnect_wait(void **state)
{
	struct h *h = *state;
	int64_t t;

	h_link(h);
	h->f.auto_commit = true;
	gw_link_set_durable_seq(h->link, 0);
	go_live(h);
	/* a TIMEOUT in live (the delete's answer) disconnects and waits for
	 * the event */
	fake_wearable_make(&h->w, 1);
	fake_wearable_push_live(&h->w, 1, 1, false);
	fake_ble_pump(&h->f);
	assert_int_equal(stats(h).durable_seq, 1);
	h->f.mute_op = FOP_WRITE;
	h->f.mute_ch = GW_CHAR_HISTORY_CP;
	assert_int_equal(count_hcp(h, WB_HCP_DELETE_RECORDS), 1);	/* up to 0 */
	for (int i = 0; i < 100 && count_hcp(h, WB_HCP_DELETE_RECORDS) == 1; i++)
		next(h);
	assert_int_equal(count_hcp(h, WB_HCP_DELETE_RECORDS), 2);
	t = h->f.now;
	h->f.mute_op = FOP_DISCONNECT;
	h->f.mute_ch = -1;
	next(h);
	assert_int_equal(h->f.now - t, h->cfg.gatt_timeout_us);
	assert_state(h, GW_LINK_STATE_DISCONNECTING);
	t = h->f.now;
	next(h);
	assert_int_equal(h->f.now - t, h->cfg.disconnect_timeout_us);
	assert_state(h, GW_LINK_STATE_BACKOFF);
	assert_int_equal(covered[GW_LINK_STATE_LIVE][GW_LINK_STATE_DISCONNECTING] > 0, true);
}

/* ---- the GATT layout ---- */

static void test_layout_invalid_drops_cache_with_budget(void **state)
{
	struct h *h = *state;
	struct gw_link_stats s;

	h_link(h);
	h->f.auto_commit = true;
	fake_wearable_layout_remove(&h->w, GW_CHAR_HISTORY_CP);
	start(h);
	/* disconnect, then the cache (only once disconnected), reconnect soon */
	assert_state(h, GW_LINK_STATE_BACKOFF);
	assert_true(fake_find(&h->f, FOP_DISCONNECT, ADDR, 0) <
		    fake_find(&h->f, FOP_REMOVE_CACHE, ADDR, 0));
	assert_int_equal(h->w.cache_drops, 1);
	assert_int_equal(backoff_delay(h), h->cfg.layout_retry_us);
	assert_int_equal(stats(h).last_error, GW_BLE_ERR_NOT_SUPPORTED);
	next(h);	/* still bad: the second drop */
	assert_int_equal(h->w.cache_drops, 2);
	next(h);	/* budget spent: the long NOT_SUPPORTED backoff, no drop */
	s = stats(h);
	assert_int_equal(h->w.cache_drops, 2);
	assert_int_equal(s.layouts_invalid, 3);
	assert_int_equal(s.consecutive[GW_BLE_ERR_NOT_SUPPORTED], 1);
	assert_true(backoff_delay(h) >= (int64_t) (SEC(60) * 0.9));
	/* the firmware got fixed */
	fake_wearable_full_layout(&h->w);
	settle(h, SEC(120));
	assert_int_equal(stats(h).cache_clears, 2);
}

static void test_layout_stale_then_good(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->f.auto_commit = true;
	/* a stale cache: pain lost its indicate flag */
	fake_wearable_layout_set_props(&h->w, GW_CHAR_PAIN, GW_PROP_NOTIFY);
	start(h);
	assert_int_equal(h->w.cache_drops, 1);
	fake_wearable_full_layout(&h->w);	/* discovered afresh */
	settle(h, SEC(10));
	assert_int_equal(h->w.cache_drops, 1);
	assert_int_equal(stats(h).layouts_invalid, 1);
}

static void test_layout_duplicate_role_invalid(void **state)
{
	struct h *h = *state;

	h_link(h);
	fake_wearable_layout_add(&h->w, GW_CHAR_POSTURE, GW_PROP_NOTIFY);
	start(h);
	assert_int_equal(stats(h).layouts_invalid, 1);
	assert_int_equal(h->w.cache_drops, 1);
}

static void test_layout_optional_missing(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->f.auto_commit = true;
	gw_link_clock(h->link, true, SEC(1700000000), h->f.now);
	fake_wearable_layout_remove(&h->w, GW_CHAR_CURRENT_TIME);
	fake_wearable_layout_remove(&h->w, GW_CHAR_MANUFACTURER);
	fake_wearable_layout_remove(&h->w, GW_CHAR_SERIAL);
	fake_wearable_layout_set_props(&h->w, GW_CHAR_BATTERY, GW_PROP_READ);
	fake_wearable_layout_set_props(&h->w, GW_CHAR_MODEL, 0);	/* unusable: ignored */
	go_live(h);
	assert_false(h->w.time_written);
	assert_int_equal(fake_count(&h->f, FOP_READ), 3);	/* features, battery, firmware */
	for (size_t i = 0; i < fake_ncalls(&h->f); i++) {
		const struct fake_call *c = fake_call_at(&h->f, i);

		if (c->op == FOP_NOTIFY)
			assert_int_not_equal(c->ch, GW_CHAR_BATTERY);
	}
	assert_int_equal(stats(h).layouts_invalid, 0);
}

/* Service Changed while live: resolve, validate and subscribe again */
static void test_services_changed_while_live(void **state)
{
	struct h *h = *state;
	size_t notifies;

	h_link(h);
	h->f.auto_commit = true;
	go_live(h);
	notifies = fake_count(&h->f, FOP_NOTIFY);
	gw_link_services_resolved(h->link, false, h->f.now);
	assert_state(h, GW_LINK_STATE_RESOLVING);
	gw_link_services_resolved(h->link, true, h->f.now);
	assert_state(h, GW_LINK_STATE_CHECKING_LAYOUT);
	gw_link_gatt_layout(h->link, (const struct gw_gatt_char *) (void *) h->w.layout->data,
			    h->w.layout->len, h->f.now);
	fake_ble_pump(&h->f);
	assert_state(h, GW_LINK_STATE_LIVE);
	assert_int_equal(fake_count(&h->f, FOP_NOTIFY), 2 * notifies);
	/* a new layout without the resolve dance: the same */
	gw_link_gatt_layout(h->link, (const struct gw_gatt_char *) (void *) h->w.layout->data,
			    h->w.layout->len, h->f.now);
	fake_ble_pump(&h->f);
	assert_state(h, GW_LINK_STATE_LIVE);
	assert_int_equal(fake_count(&h->f, FOP_NOTIFY), 3 * notifies);
	assert_int_equal(stats(h).connections, 1);
}

/* ---- the history sync handshake ---- */

static void test_sync_handshake_bytes(void **state)
{
	struct h *h = *state;
	static const uint8_t report_after_0[] = { 0x02, 0x01, 0x00, 0x00, 0x00, 0x00 };
	static const uint8_t delete_10[] = { 0x03, 0x02, 0x0a, 0x00, 0x00, 0x00 };
	struct gw_link_stats s;

	h_link(h);
	fake_wearable_make(&h->w, 10);
	start(h);
	/* a wearable never seen: everything it holds, i.e. after first - 1 */
	assert_false(h->w.last_report_all);
	assert_bytes(last_hcp(h), report_after_0, sizeof(report_after_0));
	assert_state(h, GW_LINK_STATE_SYNCING);
	assert_stored_range(h, 1, 10);
	assert_int_equal(fake_count(&h->f, FOP_STORE), 3);	/* batches of 4, 4, 2 */
	/* stored but not committed: no delete */
	assert_int_equal(count_hcp(h, WB_HCP_DELETE_RECORDS), 0);
	assert_int_equal(h->w.flash->len, 10);
	s = stats(h);
	assert_int_equal(s.durable_seq, 0);
	assert_int_equal(s.pending_records, 10);
	assert_int_equal(s.records_stored, 10);

	fake_commit_one(&h->f);
	fake_commit_one(&h->f);
	fake_ble_pump(&h->f);
	assert_int_equal(stats(h).durable_seq, 8);	/* contiguously */
	assert_int_equal(count_hcp(h, WB_HCP_DELETE_RECORDS), 0);
	fake_commit_one(&h->f);
	fake_ble_pump(&h->f);
	/* every record up to L committed: delete up to L */
	assert_bytes(last_hcp(h), delete_10, sizeof(delete_10));
	assert_state(h, GW_LINK_STATE_LIVE);
	assert_int_equal(h->w.flash->len, 0);
	s = stats(h);
	assert_true(s.have_durable_seq);
	assert_int_equal(s.durable_seq, 10);
	assert_true(s.have_deleted_seq);
	assert_int_equal(s.deleted_seq, 10);
	assert_int_equal(s.records_committed, 10);
	assert_int_equal(s.syncs_completed, 1);
	assert_int_equal(s.deletes, 1);
	assert_int_equal(s.duplicates_dropped, 0);
}

static void test_sync_after_durable_seq(void **state)
{
	struct h *h = *state;
	static const uint8_t report_after_5[] = { 0x02, 0x01, 0x05, 0x00, 0x00, 0x00 };

	h_link(h);
	h->f.auto_commit = true;
	fake_wearable_make(&h->w, 10);		/* 1..10, of which 1..5 were stored */
	fake_store_preload(&h->f, ADDR, 1, 5);
	gw_link_set_durable_seq(h->link, 5);
	gw_link_set_durable_seq(h->link, 3);	/* never backwards */
	go_live(h);
	assert_bytes(fake_call_at(&h->f, (size_t) fake_find(&h->f, FOP_WRITE, ADDR, 0)),
		     report_after_5, sizeof(report_after_5));
	assert_int_equal(stats(h).records_stored, 5);
	assert_stored_range(h, 1, 10);
	assert_int_equal(h->w.flash->len, 0);
	assert_int_equal(stats(h).durable_seq, 10);
}

static void test_sync_no_records(void **state)
{
	struct h *h = *state;

	h_link(h);
	gw_link_set_durable_seq(h->link, 0);
	go_live(h);
	assert_int_equal(fake_count(&h->f, FOP_STORE), 0);
	assert_true(stats(h).history_synced);
	/* the wearable's deletion state is unknown after a restart: told once */
	assert_int_equal(count_hcp(h, WB_HCP_DELETE_RECORDS), 1);
	assert_true(stats(h).have_deleted_seq);
}

static void test_sync_unsupported_is_live_only(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->w.feature_flags &= (uint8_t) ~WB_FEATURE_HISTORY;
	fake_wearable_make(&h->w, 3);
	go_live(h);
	assert_int_equal(count_hcp(h, WB_HCP_REPORT_RECORDS), 0);
	assert_false(stats(h).history_synced);
	assert_int_equal(covered[GW_LINK_STATE_SUBSCRIBING][GW_LINK_STATE_LIVE] > 0, true);
}

/* The store is slow: the link goes live and deletes once the commits come. */
static void test_delete_waits_for_commit(void **state)
{
	struct h *h = *state;
	size_t deletes;

	h_link(h);
	fake_wearable_make(&h->w, 6);
	start(h);
	assert_state(h, GW_LINK_STATE_SYNCING);
	next(h);		/* the commit wait ends */
	assert_state(h, GW_LINK_STATE_LIVE);
	assert_true(stats(h).history_synced);
	for (int i = 0; i < 5; i++)
		next(h);	/* live delete timer: S has not moved */
	assert_int_equal(count_hcp(h, WB_HCP_DELETE_RECORDS), 0);
	assert_int_equal(stats(h).durable_seq, 0);
	fake_commit_all(&h->f);
	fake_ble_pump(&h->f);
	assert_int_equal(stats(h).durable_seq, 6);
	deletes = count_hcp(h, WB_HCP_DELETE_RECORDS);
	assert_int_equal(deletes, 0);	/* at the next period */
	next(h);
	assert_int_equal(count_hcp(h, WB_HCP_DELETE_RECORDS), 1);
	assert_int_equal(h->w.flash->len, 0);
	for (int i = 0; i < 3; i++)
		next(h);	/* nothing new: no more deletes */
	assert_int_equal(count_hcp(h, WB_HCP_DELETE_RECORDS), 1);
}

/* Live records while the history streams: each seq reaches the store once. */
static void test_live_during_sync_dedup(void **state)
{
	struct h *h = *state;
	struct gw_link_stats s;

	h_link(h);
	fake_wearable_make(&h->w, 10);
	h->w.batch_records = 2;
	h->w.hold_values = true;
	start(h);
	assert_state(h, GW_LINK_STATE_SYNCING);
	/* two batches of history, then live copies of 3..6 and new 11..12 */
	fake_wearable_deliver_one(&h->f, &h->w);
	fake_wearable_deliver_one(&h->f, &h->w);
	fake_wearable_make(&h->w, 2);
	fake_wearable_push_live(&h->w, 3, 4, true);
	fake_wearable_push_live(&h->w, 11, 2, true);
	h->w.hold_values = false;
	fake_ble_pump(&h->f);
	/* commits arrive during the rest */
	fake_commit_all(&h->f);
	fake_ble_pump(&h->f);
	assert_state(h, GW_LINK_STATE_LIVE);
	assert_stored_range(h, 1, 12);
	s = stats(h);
	assert_int_equal(s.records_stored, 12);
	assert_int_equal(s.duplicates_dropped, 4);	/* 5, 6 from history; 3, 4 live */
	/* S went past L = 10 with the committed live records */
	assert_int_equal(s.durable_seq, 12);
	assert_int_equal(h->w.flash->len, 0);
}

/*
 * The wearable holds 1..N; the link drops after k values (history batches,
 * responses, live values) for every k; live records keep coming. In the
 * end the store has every seq exactly once and the flash is empty.
 */
static void run_link_loss(struct h *h, int k, bool commit_late, uint32_t first)
{
	const unsigned int n = 14;
	uint32_t last;

	fake_wearable_make(&h->w, n);
	h->w.batch_records = 3;
	h->w.lose_link_after = k;
	h->f.auto_commit = !commit_late;
	start(h);
	/* a live record made while the first sync runs */
	last = fake_wearable_make(&h->w, 1);
	if (h->w.connected)
		fake_wearable_push_live(&h->w, last, 1, false);
	fake_ble_pump(&h->f);
	/* 5 batches and the report's answer: any k before that cuts the sync */
	if (k <= 5)
		assert_int_not_equal(st(h), GW_LINK_STATE_LIVE);
	if (commit_late) {
		/* the commits come only after the reconnection */
		h->f.auto_commit = true;
	}
	settle(h, SEC(3600));
	assert_stored_range(h, first, last);
	assert_int_equal(fake_stored_count(&h->f, ADDR), n + 1);
	assert_int_equal(stats(h).durable_seq, last);
	assert_int_equal(h->w.flash->len, 0);
	if (k <= 5)
		assert_true(stats(h).reconnects >= 1);
}

static void test_link_lost_at_each_step(void **state)
{
	struct h *h = *state;

	/* n records in batches of 3 = 5 batches + report response + delete
	 * response + the live one: k past that means no loss */
	for (int late = 0; late < 2; late++) {
		for (int k = 0; k <= 9; k++) {
			teardown(state);
			setup(state);
			h = *state;
			h_link(h);
			run_link_loss(h, k, late, 1);
		}
	}
}

static void test_link_lost_at_each_step_wrapping(void **state)
{
	struct h *h = *state;

	for (int k = 0; k <= 9; k++) {
		teardown(state);
		setup(state);
		h = *state;
		fake_wearable_fini(&h->w);
		fake_wearable_init(&h->w, ADDR, 0xfffffff9u);
		h_link(h);
		gw_link_set_durable_seq(h->link, 0xfffffff8u);
		run_link_loss(h, k, k % 2, 0xfffffff9u);
	}
}

/* the link drops between the delete write and its answer, or before the
 * report request is acknowledged */
static void test_link_lost_around_writes(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->f.auto_commit = true;
	fake_wearable_make(&h->w, 5);
	h->f.mute_op = FOP_WRITE;
	h->f.mute_ch = GW_CHAR_HISTORY_CP;
	start(h);
	assert_state(h, GW_LINK_STATE_SYNCING);
	fake_wearable_drop_link(&h->f, &h->w);
	assert_int_equal(covered[GW_LINK_STATE_SYNCING][GW_LINK_STATE_BACKOFF] > 0, true);
	h->f.mute_op = -1;
	/* next time the delete goes out but its answer never arrives */
	h->w.lose_link_after = 3;	/* 2 batches + report response */
	settle(h, SEC(600));
	assert_stored_range(h, 1, 5);
	assert_int_equal(h->w.deletes, 2);	/* the first one's answer was lost */
	assert_int_equal(stats(h).reconnects, 2);
}

/* BlueZ may deliver the indication before the write's reply; a late reply
 * belongs to the old procedure, not to the next one. */
static void test_indication_before_write_reply(void **state)
{
	struct h *h = *state;
	struct wb_hcp_response rsp = { WB_HCP_RESPONSE_CODE, WB_HCP_REPORT_RECORDS,
				       WB_HCP_NO_RECORDS, 0, 0 };
	uint8_t buf[16];
	ssize_t n;

	h_link(h);
	gw_link_set_durable_seq(h->link, 0);
	h->f.mute_op = FOP_WRITE;
	h->f.mute_ch = GW_CHAR_HISTORY_CP;
	start(h);
	assert_state(h, GW_LINK_STATE_SYNCING);
	n = wb_hcp_response_encode(&rsp, buf, sizeof(buf));
	gw_link_value(h->link, GW_CHAR_HISTORY_CP, buf, (size_t) n, h->f.now);
	/* no records after 0; the wearable's deletion state is unknown: delete */
	assert_int_equal(count_hcp(h, WB_HCP_DELETE_RECORDS), 1);
	/* the report's reply, late and failed: not the delete's */
	gw_link_write_done(h->link, GW_CHAR_HISTORY_CP, GW_BLE_ERR_FAILED, h->f.now);
	assert_state(h, GW_LINK_STATE_SYNCING);
	assert_int_equal(stats(h).syncs_failed, 0);
	gw_link_write_done(h->link, GW_CHAR_HISTORY_CP, GW_BLE_OK, h->f.now);
	/* acknowledged: now the response timeout runs, not the write's */
	assert_int_equal(deadline(h), h->f.now + h->cfg.hcp_timeout_us);
	rsp.request = WB_HCP_DELETE_RECORDS;
	n = wb_hcp_response_encode(&rsp, buf, sizeof(buf));
	gw_link_value(h->link, GW_CHAR_HISTORY_CP, buf, (size_t) n, h->f.now);
	assert_state(h, GW_LINK_STATE_LIVE);
	assert_true(stats(h).have_deleted_seq);
	assert_int_equal(stats(h).syncs_completed, 1);
}

static void test_seq_wraparound(void **state)
{
	struct h *h = *state;
	static const uint8_t report_after[] = { 0x02, 0x01, 0xfa, 0xff, 0xff, 0xff };
	static const uint8_t delete_up_to_5[] = { 0x03, 0x02, 0x05, 0x00, 0x00, 0x00 };

	fake_wearable_fini(&h->w);
	fake_wearable_init(&h->w, ADDR, 0xfffffff8u);
	h_link(h);
	h->f.auto_commit = true;
	fake_wearable_make(&h->w, 14);		/* 0xfffffff8 .. 5 */
	fake_store_preload(&h->f, ADDR, 0xfffffff8u, 0xfffffffau);
	gw_link_set_durable_seq(h->link, 0xfffffffau);
	go_live(h);
	assert_bytes(fake_call_at(&h->f, (size_t) fake_find(&h->f, FOP_WRITE, ADDR, 0)),
		     report_after, sizeof(report_after));
	assert_bytes(last_hcp(h), delete_up_to_5, sizeof(delete_up_to_5));
	assert_stored_range(h, 0xfffffffbu, 5);
	assert_int_equal(stats(h).records_stored, 11);
	assert_int_equal(stats(h).durable_seq, 5);
	/* live across nothing new, then more */
	fake_wearable_make(&h->w, 3);
	fake_wearable_push_live(&h->w, 6, 3, false);
	fake_ble_pump(&h->f);
	assert_int_equal(stats(h).durable_seq, 8);
}

static void test_malformed_live_counted_link_kept(void **state)
{
	struct h *h = *state;
	static const uint8_t garbage[] = { 0x01, 0x01, 0x09, 0x01 };
	const struct fake_call *m;
	uint32_t s;

	h_link(h);
	h->f.auto_commit = true;
	go_live(h);
	fake_wearable_push_value(&h->w, GW_CHAR_POSTURE, garbage, sizeof(garbage), false);
	fake_wearable_push_value(&h->w, GW_CHAR_BATTERY, garbage, 2, false);
	s = fake_wearable_make(&h->w, 2);
	fake_wearable_push_live(&h->w, s, 2, false);
	fake_ble_pump(&h->f);
	assert_state(h, GW_LINK_STATE_LIVE);
	assert_int_equal(stats(h).malformed, 2);
	m = fake_last(&h->f, FOP_MALFORMED, ADDR);
	assert_int_equal(m->ch, GW_CHAR_BATTERY);
	m = fake_call_at(&h->f, (size_t) fake_find(&h->f, FOP_MALFORMED, ADDR, 0));
	assert_int_equal(m->ch, GW_CHAR_POSTURE);
	assert_true(m->a < 0);
	assert_stored_range(h, s, s + 1);
	assert_int_equal(stats(h).connections, 1);
	assert_int_equal(stats(h).last_error, GW_BLE_OK);
}

/* A malformed history batch aborts the attempt; the retry stores it all. */
static void test_malformed_history_aborts_and_retries(void **state)
{
	struct h *h = *state;
	static const uint8_t abort_req[] = { 0x04, 0x00 };
	struct gw_link_stats s;

	h_link(h);
	h->f.auto_commit = true;
	fake_wearable_make(&h->w, 9);
	h->w.batch_records = 3;
	h->w.corrupt_next_history = true;
	start(h);
	assert_bytes(last_hcp(h), abort_req, sizeof(abort_req));
	assert_int_equal(h->w.aborts, 1);
	assert_state(h, GW_LINK_STATE_LIVE);	/* the link stays */
	s = stats(h);
	assert_int_equal(s.syncs_failed, 1);
	assert_int_equal(s.malformed, 1);
	assert_int_equal(fake_last(&h->f, FOP_MALFORMED, ADDR)->ch, GW_CHAR_HISTORY_DATA);
	assert_int_equal(count_hcp(h, WB_HCP_DELETE_RECORDS), 0);
	settle(h, SEC(60));
	assert_stored_range(h, 1, 9);
	assert_int_equal(count_hcp(h, WB_HCP_REPORT_RECORDS), 2);
	assert_int_equal(stats(h).connections, 1);
}

static void test_malformed_hcp_response(void **state)
{
	struct h *h = *state;
	static const uint8_t bad[] = { 0x11, 0x02, 0x7f };

	h_link(h);
	h->f.auto_commit = true;
	fake_wearable_make(&h->w, 2);
	h->w.hold_values = true;
	start(h);
	fake_wearable_push_value(&h->w, GW_CHAR_HISTORY_CP, bad, sizeof(bad), true);
	h->w.hold_values = false;
	fake_ble_pump(&h->f);
	assert_int_equal(h->w.aborts, 1);
	assert_int_equal(fake_last(&h->f, FOP_MALFORMED, ADDR)->ch, GW_CHAR_HISTORY_CP);
	settle(h, SEC(60));
	assert_stored_range(h, 1, 2);
}

static void test_busy_report_aborts_then_retries(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->f.auto_commit = true;
	fake_wearable_make(&h->w, 4);
	h->w.busy_next_report = true;
	start(h);
	assert_int_equal(h->w.aborts, 1);
	assert_state(h, GW_LINK_STATE_LIVE);
	assert_int_equal(stats(h).syncs_failed, 1);
	assert_true(deadline(h) <= h->f.now + (int64_t) (h->cfg.sync_retry.base_us * 1.2));
	settle(h, SEC(60));
	assert_stored_range(h, 1, 4);
}

/* A history notification lost on the way: "success" does not match what
 * arrived, so S does not jump over the hole. */
static void test_report_count_mismatch(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->f.auto_commit = true;
	fake_wearable_make(&h->w, 9);
	h->w.batch_records = 3;
	h->w.drop_report_record = true;	/* 1..3 never arrive */
	start(h);
	/* answered: the missing batches get the GATT timeout to come */
	assert_state(h, GW_LINK_STATE_SYNCING);
	assert_int_equal(deadline(h), h->f.now + h->cfg.gatt_timeout_us);
	next(h);
	assert_state(h, GW_LINK_STATE_LIVE);
	assert_int_equal(stats(h).syncs_failed, 1);
	assert_int_equal(stats(h).durable_seq, 0);	/* 1 is missing: S stays */
	assert_int_equal(count_hcp(h, WB_HCP_DELETE_RECORDS), 0);
	settle(h, SEC(60));
	assert_stored_range(h, 1, 9);
	assert_int_equal(stats(h).duplicates_dropped, 6);
}

/* Real bluetoothd sends queued indications before queued notifications,
 * so the report's answer can overtake its last batch: the link waits for
 * the batch, and the sync succeeds without a retry. */
static void test_report_answer_overtakes_batch(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->f.auto_commit = true;
	fake_wearable_make(&h->w, 9);
	h->w.batch_records = 3;
	h->w.answer_before_last = true;
	start(h);
	assert_state(h, GW_LINK_STATE_LIVE);
	assert_int_equal(stats(h).syncs_failed, 0);
	assert_int_equal(stats(h).syncs_completed, 1);
	assert_int_equal(stats(h).durable_seq, 9);
	assert_stored_range(h, 1, 9);
	assert_int_equal(h->w.flash->len, 0);
	assert_int_equal(h->w.reports, 1);
}

/* A wearable never synced loses a notification in the middle of its first
 * report: S still moves up to the hole, and the retry asks only for what
 * follows it, so a link that keeps losing some notifications still makes
 * progress (seen on real BlueZ under emulation). */
static void test_report_loss_new_wearable_progresses(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->f.auto_commit = true;
	fake_wearable_make(&h->w, 9);
	h->w.batch_records = 3;
	h->w.drop_report_record = true;
	h->w.drop_report_skip = 1;	/* 4..6 never arrive */
	start(h);
	next(h);		/* the wait for the missing batch */
	assert_state(h, GW_LINK_STATE_LIVE);
	assert_int_equal(stats(h).syncs_failed, 1);
	assert_int_equal(stats(h).durable_seq, 3);
	assert_int_equal(count_hcp(h, WB_HCP_DELETE_RECORDS), 0);
	settle(h, SEC(60));
	assert_false(h->w.last_report_all);
	assert_int_equal(h->w.last_report_after, 3);
	assert_stored_range(h, 1, 9);
	assert_int_equal(stats(h).durable_seq, 9);
	assert_int_equal(stats(h).duplicates_dropped, 3);
	assert_int_equal(h->w.flash->len, 0);
}

/* A hole in the live seqs is filled by a catch-up sync after the grace. */
static void test_live_gap_catch_up(void **state)
{
	struct h *h = *state;
	struct gw_link_stats s;
	uint32_t first;

	h_link(h);
	h->f.auto_commit = true;
	fake_wearable_make(&h->w, 3);
	go_live(h);
	first = fake_wearable_make(&h->w, 4);	/* 4..7; 5 gets lost */
	fake_wearable_push_live(&h->w, first, 1, false);
	fake_wearable_push_live(&h->w, first + 2, 2, false);
	fake_ble_pump(&h->f);
	s = stats(h);
	assert_int_equal(s.durable_seq, 4);
	assert_int_equal(deadline(h), h->f.now + h->cfg.gap_grace_us);
	next(h);
	assert_int_equal(count_hcp(h, WB_HCP_REPORT_RECORDS), 2);
	assert_int_equal(h->w.last_report_after, 4);
	s = stats(h);
	assert_int_equal(s.durable_seq, 7);
	assert_stored_range(h, 1, 7);
	assert_int_equal(h->w.flash->len, 0);
	assert_int_equal(covered[GW_LINK_STATE_LIVE][GW_LINK_STATE_SYNCING] > 0, true);
}

static void test_live_periodic_delete(void **state)
{
	struct h *h = *state;
	int64_t t;

	h_link(h);
	h->f.auto_commit = true;
	gw_link_set_durable_seq(h->link, 0);
	go_live(h);
	t = h->f.now;
	for (int minute = 0; minute < 3; minute++) {
		uint32_t s = fake_wearable_make(&h->w, 5);

		fake_wearable_push_live(&h->w, s, 5, false);
		fake_ble_pump(&h->f);
		assert_int_equal(h->w.flash->len, 5);
		for (int i = 0; i < 100 && h->w.flash->len > 0; i++)
			next(h);
		assert_int_equal(h->w.flash->len, 0);
		assert_true(h->f.now - t <= h->cfg.live_delete_interval_us * (minute + 1));
	}
	assert_int_equal(stats(h).deleted_seq, 15);
	assert_int_equal(stats(h).deletes, 4);	/* the sync's own, then three */
}

static void test_store_failed_resyncs(void **state)
{
	struct h *h = *state;
	uint32_t s;

	h_link(h);
	h->f.auto_commit = true;
	go_live(h);
	h->f.auto_commit = false;
	s = fake_wearable_make(&h->w, 3);
	fake_wearable_push_live(&h->w, s, 3, false);
	fake_ble_pump(&h->f);
	assert_int_equal(stats(h).pending_records, 3);
	/* the disk is full: the store loses what was not committed */
	fake_store_drop_pending(&h->f);
	gw_link_store_failed(h->link, h->f.now);
	assert_int_equal(stats(h).pending_records, 0);
	/* at once, not after the gap grace */
	assert_int_equal(count_hcp(h, WB_HCP_REPORT_RECORDS), 2);
	h->f.auto_commit = true;
	fake_ble_pump(&h->f);
	settle(h, SEC(60));
	assert_stored_range(h, s, s + 2);
	assert_int_equal(count_hcp(h, WB_HCP_REPORT_RECORDS), 2);
	/* a commit for something forgotten is ignored */
	gw_link_store_committed(h->link, 999, h->f.now);
}

/* The disk fills while a report streams: the batches handed over before
 * the failure are gone from the store, yet the report's answer still
 * matches what arrived. S must not jump over them (the wearable would
 * delete records never stored): the link syncs again after S. */
static void test_store_failed_during_report(void **state)
{
	struct h *h = *state;

	h_link(h);
	gw_link_set_durable_seq(h->link, 0);
	fake_wearable_make(&h->w, 9);
	h->w.batch_records = 3;
	h->w.hold_values = true;
	start(h);
	assert_state(h, GW_LINK_STATE_SYNCING);
	fake_wearable_deliver_one(&h->f, &h->w);	/* 1..3 handed over */
	fake_ble_pump(&h->f);
	assert_int_equal(stats(h).pending_records, 3);
	/* the commit fails: 1..3 are not in the store */
	fake_store_drop_pending(&h->f);
	gw_link_store_failed(h->link, h->f.now);
	/* the rest of the report (4..9 and "success, 9 records, last 9") */
	h->w.hold_values = false;
	fake_ble_pump(&h->f);
	fake_commit_all(&h->f);
	fake_ble_pump(&h->f);
	/* (the fake wearable fails the test on a delete past a seq not
	 * committed) */
	assert_true(count_hcp(h, WB_HCP_REPORT_RECORDS) >= 2);
	h->f.auto_commit = true;
	settle(h, SEC(600));
	assert_stored_range(h, 1, 9);
	assert_int_equal(stats(h).durable_seq, 9);
	assert_int_equal(h->w.flash->len, 0);
}

/* The disk fills while the link waits for the commits of a verified
 * report: what it waited for is gone, so it syncs again at once instead
 * of sitting in SYNCING until the commit timeout. */
static void test_store_failed_waiting_for_commit(void **state)
{
	struct h *h = *state;

	h_link(h);
	gw_link_set_durable_seq(h->link, 0);
	fake_wearable_make(&h->w, 6);
	start(h);
	assert_state(h, GW_LINK_STATE_SYNCING);	/* 1..6 arrived, answer verified */
	assert_int_equal(stats(h).pending_records, 6);
	fake_store_drop_pending(&h->f);
	gw_link_store_failed(h->link, h->f.now);
	fake_ble_pump(&h->f);
	/* asked again after S at once, not after commit_timeout */
	assert_int_equal(count_hcp(h, WB_HCP_REPORT_RECORDS), 2);
	assert_int_equal(h->w.last_report_after, 0);
	h->f.auto_commit = true;
	fake_ble_pump(&h->f);
	settle(h, SEC(60));
	assert_stored_range(h, 1, 6);
	assert_int_equal(stats(h).durable_seq, 6);
}

static void test_store_commits_synchronously(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->f.sync_commit = true;
	fake_wearable_make(&h->w, 20);
	go_live(h);
	assert_stored_range(h, 1, 20);
	assert_int_equal(h->w.flash->len, 0);
	assert_int_equal(stats(h).durable_seq, 20);
}

static void test_seq_regressed_needs_repair(void **state)
{
	struct h *h = *state;

	h_link(h);
	h->f.auto_commit = true;
	fake_wearable_make(&h->w, 3);	/* last seq 3 */
	gw_link_set_durable_seq(h->link, 1000);
	start(h);
	assert_state(h, GW_LINK_STATE_NEEDS_REPAIR);
	assert_int_equal(fake_last(&h->f, FOP_REPAIR, ADDR)->a, GW_LINK_REPAIR_SEQ_REGRESSED);
	assert_int_equal(fake_count(&h->f, FOP_STORE), 0);
	/* a new identity: start from nothing */
	gw_link_repaired(h->link, true, h->f.now);
	fake_ble_pump(&h->f);
	assert_state(h, GW_LINK_STATE_LIVE);
	assert_false(h->w.last_report_all);
	assert_int_equal(h->w.last_report_after, 0);
	assert_stored_range(h, 1, 3);
}

static void test_names(void **state)
{
	(void) state;
	for (int s = 0; s < GW_LINK_STATE_COUNT; s++)
		assert_string_not_equal(gw_link_state_name(s), "invalid");
	assert_string_equal(gw_link_state_name(GW_LINK_STATE_COUNT), "invalid");
	for (int a = GW_LINK_ACTION_NONE; a <= GW_LINK_ACTION_REPAIR; a++)
		assert_string_not_equal(gw_link_action_name(a), "invalid");
	assert_string_equal(gw_link_repair_name(GW_LINK_REPAIR_SEQ_REGRESSED), "seq-regressed");
	for (int e = 0; e < GW_BLE_ERR_COUNT; e++)
		assert_string_not_equal(gw_ble_err_name(e), "invalid");
	for (int c = 0; c < GW_CHAR_COUNT; c++) {
		assert_string_not_equal(gw_char_name(c), "invalid");
		assert_int_equal(gw_char_from_uuid(gw_char_uuid(c)), c);
		assert_int_not_equal(gw_char_required_props(c), 0);
	}
	assert_int_equal(gw_char_from_uuid("A7C10003-5E2B-4C8F-9D3A-1B6E0F2C4D58"), GW_CHAR_PAIN);
	assert_int_equal(gw_char_from_uuid("0000180f-0000-1000-8000-00805f9b34fb"), -1);
	assert_int_equal(gw_char_from_uuid(NULL), -1);
	assert_null(gw_char_uuid(GW_CHAR_COUNT));
	assert_true(gw_char_mandatory(GW_CHAR_PAIN));
	assert_false(gw_char_mandatory(GW_CHAR_SERIAL));
	assert_int_equal(gw_char_required_props(GW_CHAR_HISTORY_CP),
			 GW_PROP_WRITE | GW_PROP_INDICATE);
	gw_link_free(NULL);
}

/* last: every transition the table requires was made by some test above */
static void test_zz_transition_coverage(void **state)
{
	int missing = 0;

	(void) state;
	for (int a = 0; a < N_STATES; a++)
		for (int b = 0; b < N_STATES; b++)
			if (allowed[a][b] == R && covered[a][b] == 0) {
				print_error("not covered: %s -> %s\n", gw_link_state_name(a),
					    gw_link_state_name(b));
				missing++;
			}
	assert_int_equal(missing, 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	struct CMUnitTest errs[G_N_ELEMENTS(err_vecs)];
	struct CMUnitTest waits[G_N_ELEMENTS(wait_vecs)];
	const struct CMUnitTest tests[] = {
		T(test_starts_waiting_for_adapter),
		T(test_scans_until_seen),
		T(test_scan_timeout_tries_direct_connect),
		T(test_full_setup_order),
		T(test_time_written_value),
		T(test_time_only_when_synced),
		T(test_time_not_written_if_wearable_refuses),
		T(test_devinfo_read_once),
		T(test_event_orders),
		T(test_bluez_reconnects_by_itself),
		T(test_adapter_lost_and_back),
		T(test_disable_enable),
		T(test_backoff_growth_and_jitter),
		T(test_jitter_seeded),
		T(test_in_progress_clears_first_only),
		T(test_abort_by_local_variants),
		T(test_not_ready_waits_for_adapter),
		T(test_auth_needs_repair_never_reconnects),
		T(test_auth_in_each_step),
		T(test_optional_step_errors),
		T(test_timeout_resolving_and_layout),
		T(test_timeout_hcp_response_and_report_silence),
		T(test_timeout_disconnect_wait),
		T(test_layout_invalid_drops_cache_with_budget),
		T(test_layout_stale_then_good),
		T(test_layout_duplicate_role_invalid),
		T(test_layout_optional_missing),
		T(test_services_changed_while_live),
		T(test_sync_handshake_bytes),
		T(test_sync_after_durable_seq),
		T(test_sync_no_records),
		T(test_sync_unsupported_is_live_only),
		T(test_delete_waits_for_commit),
		T(test_live_during_sync_dedup),
		T(test_link_lost_at_each_step),
		T(test_link_lost_at_each_step_wrapping),
		T(test_link_lost_around_writes),
		T(test_indication_before_write_reply),
		T(test_seq_wraparound),
		T(test_malformed_live_counted_link_kept),
		T(test_malformed_history_aborts_and_retries),
		T(test_malformed_hcp_response),
		T(test_busy_report_aborts_then_retries),
		T(test_report_count_mismatch),
		T(test_report_loss_new_wearable_progresses),
		T(test_report_answer_overtakes_batch),
		T(test_live_gap_catch_up),
		T(test_live_periodic_delete),
		T(test_store_failed_resyncs),
		T(test_store_failed_during_report),
		T(test_store_failed_waiting_for_commit),
		T(test_store_commits_synchronously),
		T(test_seq_regressed_needs_repair),
		T(test_names),
	};
	const struct CMUnitTest last[] = {
		cmocka_unit_test(test_zz_transition_coverage),
	};
	int fails = 0;

	build_table();
	for (size_t i = 0; i < G_N_ELEMENTS(err_vecs); i++)
		errs[i] = (struct CMUnitTest) { .name = err_vecs[i].name,
						.test_func = test_connect_error,
						.setup_func = setup_vec,
						.teardown_func = teardown,
						.initial_state = (void *) &err_vecs[i] };
	for (size_t i = 0; i < G_N_ELEMENTS(wait_vecs); i++)
		waits[i] = (struct CMUnitTest) { .name = wait_vecs[i].name,
						 .test_func = test_wait_timeout,
						 .setup_func = setup_vec,
						 .teardown_func = teardown,
						 .initial_state = (void *) &wait_vecs[i] };
	fails += cmocka_run_group_tests_name("link", tests, NULL, NULL);
	fails += cmocka_run_group_tests_name("link/errors", errs, NULL, NULL);
	fails += cmocka_run_group_tests_name("link/timeouts", waits, NULL, NULL);
	fails += cmocka_run_group_tests_name("link/transitions", last, NULL, NULL);
	return fails;
}
