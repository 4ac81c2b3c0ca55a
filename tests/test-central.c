/* SPDX-License-Identifier: MIT */
/*
 * gateway/central.c: several wearables at once, the allowlist, the
 * adapter's life (bluetoothd gone and back, adapter off, removed),
 * discovery and its restart period, serialised connection attempts, and
 * the power-cycle ladder with its budget. Time is scripted; the wearables
 * and the store are the fakes of tests/fakes/fake-ble-ops.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ble-types.h"
#include "central.h"
#include "link.h"
#include "wearable.h"
#include "fakes/fake-ble-ops.h"

#define MS(x) ((int64_t) (x) * 1000)
#define SEC(x) ((int64_t) (x) * 1000000)
#define T0 SEC(1000)
#define NW 4

static const char *const addrs[NW] = {
	"AA:BB:CC:00:00:01", "AA:BB:CC:00:00:02", "AA:BB:CC:00:00:03", "AA:BB:CC:00:00:04",
};
/* the allowlist as a config file may spell it */
static const char *const allow[NW] = {
	"aa:bb:cc:00:00:01", "AA:BB:CC:00:00:02", "aa:BB:cc:00:00:03", "AA:BB:CC:00:00:04",
};
#define STRANGER "11:22:33:44:55:66"

/* ---- the central as the pump's target ---- */

static void ct_connect_done(void *t, const char *dev, enum gw_ble_err err, int64_t now)
{
	gw_central_connect_done(t, dev, err, now);
}

static void ct_connected(void *t, const char *dev, bool on, int64_t now)
{
	gw_central_connected_changed(t, dev, on, now);
}

static void ct_resolved(void *t, const char *dev, bool on, int64_t now)
{
	gw_central_services_resolved(t, dev, on, now);
}

static void ct_layout(void *t, const char *dev, const struct gw_gatt_char *chars, size_t n,
		      int64_t now)
{
	gw_central_gatt_layout(t, dev, chars, n, now);
}

static void ct_read_done(void *t, const char *dev, enum gw_char ch, enum gw_ble_err err,
			 const uint8_t *val, size_t len, int64_t now)
{
	gw_central_read_done(t, dev, ch, err, val, len, now);
}

static void ct_write_done(void *t, const char *dev, enum gw_char ch, enum gw_ble_err err,
			  int64_t now)
{
	gw_central_write_done(t, dev, ch, err, now);
}

static void ct_notify_started(void *t, const char *dev, enum gw_char ch, enum gw_ble_err err,
			      int64_t now)
{
	gw_central_notify_started(t, dev, ch, err, now);
}

static void ct_value(void *t, const char *dev, enum gw_char ch, const uint8_t *val,
		     size_t len, int64_t now)
{
	gw_central_value(t, dev, ch, val, len, now);
}

static void ct_committed(void *t, const char *dev, uint32_t seq, int64_t now)
{
	gw_central_store_committed(t, dev, seq, now);
}

static void ct_powered(void *t, bool on, int64_t now)
{
	gw_central_adapter(t, true, on, now);
}

static const struct fake_target central_target = {
	.connect_done = ct_connect_done,
	.connected = ct_connected,
	.resolved = ct_resolved,
	.layout = ct_layout,
	.read_done = ct_read_done,
	.write_done = ct_write_done,
	.notify_started = ct_notify_started,
	.value = ct_value,
	.committed = ct_committed,
	.powered = ct_powered,
};

/* ---- the harness ---- */

struct h {
	struct fake_ble f;
	struct fake_wearable w[NW];
	bool in_range[NW];
	struct gw_central_config cfg;
	GwCentral *c;
	unsigned int max_connecting_seen;
};

static struct h *cur;	/* for the state hook */

static void on_state(struct fake_ble *f, const char *dev, enum gw_link_state o,
		     enum gw_link_state n)
{
	unsigned int connecting = 0;

	(void) f;
	(void) dev;
	(void) o;
	(void) n;
	if (!cur || !cur->c)
		return;
	for (size_t i = 0; i < gw_central_n_links(cur->c); i++)
		if (gw_link_get_state(gw_central_link_at(cur->c, i)) == GW_LINK_STATE_CONNECTING)
			connecting++;
	if (connecting > cur->max_connecting_seen)
		cur->max_connecting_seen = connecting;
}

static int setup(void **state)
{
	struct h *h = g_new0(struct h, 1);

	fake_ble_init(&h->f);
	for (int i = 0; i < NW; i++) {
		fake_wearable_init(&h->w[i], addrs[i], 1);
		fake_ble_add_wearable(&h->f, &h->w[i]);
		h->in_range[i] = true;
	}
	gw_central_config_init(&h->cfg);
	h->cfg.allowlist = allow;
	h->cfg.n_allowlist = NW;
	h->f.now = T0;
	h->f.answer_power = true;
	h->f.auto_commit = true;
	h->f.on_state = on_state;
	cur = h;
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	struct h *h = *state;

	gw_central_free(h->c);
	for (int i = 0; i < NW; i++)
		fake_wearable_fini(&h->w[i]);
	fake_ble_fini(&h->f);
	cur = NULL;
	g_free(h);
	return 0;
}

static void h_central(struct h *h)
{
	struct gw_central_ops ops = fake_ble_central_ops();

	h->c = gw_central_new(&h->cfg, &ops, &h->f);
	assert_non_null(h->c);
	fake_ble_set_target(&h->f, &central_target, h->c);
}

static GwLink *lk(const struct h *h, int i)
{
	return gw_central_get_link(h->c, addrs[i]);
}

static enum gw_link_state lst(const struct h *h, int i)
{
	return gw_link_get_state(lk(h, i));
}

static struct gw_link_stats lstats(const struct h *h, int i)
{
	struct gw_link_stats s;

	gw_link_get_stats(lk(h, i), h->f.now, &s);
	return s;
}

static struct gw_central_stats cstats(const struct h *h)
{
	struct gw_central_stats s;

	gw_central_get_stats(h->c, h->f.now, &s);
	return s;
}

static void adapter_up(struct h *h)
{
	gw_central_bluez_present(h->c, true, h->f.now);
	gw_central_adapter(h->c, true, true, h->f.now);
	fake_ble_pump(&h->f);
}

/* advertisements from every wearable in range that the central waits for */
static void advertise(struct h *h)
{
	for (int i = 0; i < NW; i++) {
		enum gw_link_state s;

		if (!h->in_range[i])
			continue;
		s = lst(h, i);
		if (s == GW_LINK_STATE_SCANNING || s == GW_LINK_STATE_BACKOFF)
			gw_central_device_found(h->c, addrs[i], -55, NULL, h->f.now);
	}
	fake_ble_pump(&h->f);
}

/* Gone: it neither advertises nor answers a direct connection attempt. */
static void out_of_range(struct h *h, int i)
{
	h->in_range[i] = false;
	h->w[i].connect_err = GW_BLE_ERR_TIMEOUT;
}

static void tick_to(struct h *h, int64_t t)
{
	if (t > h->f.now)
		h->f.now = t;
	gw_central_tick(h->c, h->f.now);
	fake_ble_pump(&h->f);
}

static void next(struct h *h)
{
	int64_t d = gw_central_next_deadline(h->c);

	assert_true(d != GW_LINK_NO_DEADLINE);
	tick_to(h, d);
}

static bool all_live(const struct h *h)
{
	for (int i = 0; i < NW; i++) {
		if (!h->in_range[i])
			continue;
		if (lst(h, i) != GW_LINK_STATE_LIVE || h->w[i].flash->len != 0)
			return false;
	}
	return fake_pending_handovers(&h->f) == 0;
}

/* Advertises and runs time until every in-range wearable is live and
 * emptied, or fails after `limit`. */
static void settle(struct h *h, int64_t limit)
{
	int64_t end = h->f.now + limit;

	for (int i = 0; i < 20000; i++) {
		int64_t d;

		advertise(h);
		if (all_live(h))
			return;
		d = gw_central_next_deadline(h->c);
		if (d == GW_LINK_NO_DEADLINE || d > end)
			break;
		tick_to(h, d);
	}
	for (int i = 0; i < NW; i++)
		print_error("%s: %s, flash %u\n", addrs[i], gw_link_state_name(lst(h, i)),
			    h->w[i].flash->len);
	fail_msg("did not settle");
}

static void assert_stored(const struct h *h, int i, uint32_t from, uint32_t to)
{
	for (uint32_t s = from;; s++) {
		if (!fake_stored(&h->f, addrs[i], s))
			fail_msg("%s: seq %u never stored", addrs[i], s);
		if (s == to)
			break;
	}
	assert_int_equal(fake_stored_count(&h->f, addrs[i]), to - from + 1);
}

/* ---- tests ---- */

static void test_starts_without_bluez(void **state)
{
	struct h *h = *state;

	h_central(h);
	assert_int_equal(gw_central_get_adapter(h->c), GW_CENTRAL_ADAPTER_NO_BLUEZ);
	assert_int_equal(gw_central_n_links(h->c), NW);
	for (int i = 0; i < NW; i++) {
		assert_non_null(lk(h, i));
		assert_ptr_equal(lk(h, i), gw_central_link_at(h->c, (size_t) i));
		assert_int_equal(lst(h, i), GW_LINK_STATE_WAITING_ADAPTER);
	}
	assert_null(gw_central_link_at(h->c, NW));
	gw_central_device_found(h->c, addrs[0], -40, NULL, h->f.now);
	fake_ble_pump(&h->f);
	assert_int_equal(fake_count(&h->f, FOP_CONNECT), 0);
	assert_int_equal(fake_count(&h->f, FOP_START_DISCOVERY), 0);
	assert_int_equal(gw_central_next_deadline(h->c), GW_LINK_NO_DEADLINE);
}

static void test_adapter_comes_up(void **state)
{
	struct h *h = *state;
	const struct fake_call *c;

	h_central(h);
	gw_central_bluez_present(h->c, true, h->f.now);
	assert_int_equal(gw_central_get_adapter(h->c), GW_CENTRAL_ADAPTER_ABSENT);
	gw_central_adapter(h->c, true, false, h->f.now);
	assert_int_equal(gw_central_get_adapter(h->c), GW_CENTRAL_ADAPTER_OFF);
	assert_int_equal(fake_count(&h->f, FOP_START_DISCOVERY), 0);
	assert_int_equal(lst(h, 0), GW_LINK_STATE_WAITING_ADAPTER);
	/* BlueZ's AutoEnable gets a moment; then we power it on ourselves */
	h->f.answer_power = false;
	next(h);
	assert_int_equal(h->f.now, T0 + h->cfg.power_timeout_us);
	c = fake_last(&h->f, FOP_SET_POWERED, NULL);
	assert_non_null(c);
	assert_int_equal(c->a, 1);
	assert_int_equal(fake_last(&h->f, FOP_RECOVERY, NULL)->a, GW_CENTRAL_RECOVERY_POWER_ON);
	next(h);	/* still off: again, after power_on_retry_us */
	assert_int_equal(fake_count(&h->f, FOP_SET_POWERED), 2);
	gw_central_adapter(h->c, true, true, h->f.now);
	assert_int_equal(gw_central_get_adapter(h->c), GW_CENTRAL_ADAPTER_READY);
	for (int i = 0; i < NW; i++)
		assert_int_equal(lst(h, i), GW_LINK_STATE_SCANNING);
	c = fake_last(&h->f, FOP_START_DISCOVERY, NULL);
	assert_non_null(c);
	assert_string_equal(c->str, WB_UUID_SERVICE);
	assert_true(cstats(h).discovering);
	/* every adapter change was reported, in order */
	c = fake_call_at(&h->f, (size_t) fake_find(&h->f, FOP_ADAPTER_CHANGED, NULL, 0));
	assert_int_equal(c->a, GW_CENTRAL_ADAPTER_NO_BLUEZ);
	assert_int_equal(c->b, GW_CENTRAL_ADAPTER_ABSENT);
	assert_int_equal(fake_last(&h->f, FOP_ADAPTER_CHANGED, NULL)->b,
			 GW_CENTRAL_ADAPTER_READY);
	assert_int_equal(fake_count(&h->f, FOP_ADAPTER_CHANGED), 3);
}

static void test_discovery_restart_period(void **state)
{
	struct h *h = *state;

	h_central(h);
	adapter_up(h);
	assert_int_equal(fake_count(&h->f, FOP_START_DISCOVERY), 1);
	for (int k = 1; k <= 3; k++) {
		next(h);
		assert_int_equal(h->f.now, T0 + k * h->cfg.discovery_restart_us);
		assert_int_equal(fake_count(&h->f, FOP_STOP_DISCOVERY), (size_t) k);
		assert_int_equal(fake_count(&h->f, FOP_START_DISCOVERY), (size_t) k + 1);
		/* stop, then start */
		assert_true(fake_find(&h->f, FOP_STOP_DISCOVERY, NULL, 0) <
			    (long) fake_ncalls(&h->f) - 1);
		assert_int_equal(fake_call_at(&h->f, fake_ncalls(&h->f) - 1)->op,
				 FOP_START_DISCOVERY);
	}
	assert_int_equal(cstats(h).discovery_restarts, 3);
	/* everyone found and connected: discovery stops and stays stopped */
	settle(h, SEC(60));
	assert_false(cstats(h).discovering);
	assert_int_equal(fake_last(&h->f, FOP_STOP_DISCOVERY, NULL) >
			 fake_last(&h->f, FOP_START_DISCOVERY, NULL), true);
	{
		size_t starts = fake_count(&h->f, FOP_START_DISCOVERY);

		tick_to(h, h->f.now + SEC(600));
		assert_int_equal(fake_count(&h->f, FOP_START_DISCOVERY), starts);
	}
	/* one goes out of range: discovery again */
	out_of_range(h, 2);
	fake_wearable_drop_link(&h->f, &h->w[2]);
	for (int i = 0; i < 5 && !cstats(h).discovering; i++)
		next(h);
	assert_true(cstats(h).discovering);
}

static void test_discovery_failure_retried(void **state)
{
	struct h *h = *state;

	h_central(h);
	adapter_up(h);
	gw_central_discovery_result(h->c, GW_BLE_ERR_IN_PROGRESS, h->f.now);	/* fine */
	assert_true(cstats(h).discovering);
	gw_central_discovery_result(h->c, GW_BLE_ERR_FAILED, h->f.now);
	assert_false(cstats(h).discovering);
	assert_int_equal(cstats(h).discovery_failures, 1);
	assert_int_equal(gw_central_next_deadline(h->c), h->f.now + h->cfg.discovery_retry_us);
	next(h);
	assert_true(cstats(h).discovering);
	assert_int_equal(fake_count(&h->f, FOP_START_DISCOVERY), 2);
}

static void test_allowlist_only(void **state)
{
	struct h *h = *state;
	const char *const uuids[] = { "0000180f-0000-1000-8000-00805f9b34fb",
				      "A7C10000-5E2B-4C8F-9D3A-1B6E0F2C4D58", NULL };
	uint8_t junk[] = { 1, 2, 3 };
	struct gw_central_stats s;

	h_central(h);
	adapter_up(h);
	for (int k = 0; k < 5; k++)
		gw_central_device_found(h->c, STRANGER, -30, uuids, h->f.now);
	gw_central_device_found(h->c, "11:22:33:44:55:77", -30, NULL, h->f.now);
	/* and events for it go nowhere */
	gw_central_connect_done(h->c, STRANGER, GW_BLE_OK, h->f.now);
	gw_central_connected_changed(h->c, STRANGER, true, h->f.now);
	gw_central_value(h->c, STRANGER, GW_CHAR_PAIN, junk, sizeof(junk), h->f.now);
	gw_central_device_removed(h->c, STRANGER, h->f.now);
	fake_ble_pump(&h->f);
	assert_int_equal(fake_count(&h->f, FOP_CONNECT), 0);
	assert_int_equal(fake_count(&h->f, FOP_STORE), 0);
	assert_int_equal(fake_count(&h->f, FOP_MALFORMED), 0);
	assert_null(gw_central_get_link(h->c, STRANGER));
	s = cstats(h);
	assert_int_equal(s.ignored_adverts, 6);
	assert_int_equal(s.ignored_devices, 2);
	assert_int_equal(s.ignored_wearables, 1);
	/* but the lower-case allowlist entry matches BlueZ's upper case */
	gw_central_device_found(h->c, "AA:BB:CC:00:00:01", -50, NULL, h->f.now);
	fake_ble_pump(&h->f);
	assert_int_equal(fake_count(&h->f, FOP_CONNECT), 1);
	assert_string_equal(fake_last(&h->f, FOP_CONNECT, NULL)->dev, addrs[0]);
	assert_non_null(gw_central_get_link(h->c, "aa:bb:cc:00:00:01"));
}

/* Connect() calls go one at a time; the rest wait their turn in SCANNING. */
static void test_connects_serialised(void **state)
{
	struct h *h = *state;

	h_central(h);
	for (int i = 0; i < NW; i++)
		h->w[i].answer_connect = false;
	adapter_up(h);
	advertise(h);
	assert_int_equal(fake_count(&h->f, FOP_CONNECT), 1);
	assert_int_equal(lst(h, 0), GW_LINK_STATE_CONNECTING);
	for (int i = 1; i < NW; i++) {
		assert_int_equal(lst(h, i), GW_LINK_STATE_SCANNING);
		assert_true(gw_link_wants_connect(lk(h, i)));
	}
	/* discovery keeps running only for those not seen lately */
	assert_false(cstats(h).discovering);
	/* each connection done frees the slot for the next */
	for (int i = 0; i < NW; i++) {
		const struct fake_call *c = fake_last(&h->f, FOP_CONNECT, NULL);

		assert_string_equal(c->dev, addrs[i]);
		h->w[i].answer_connect = true;
		h->w[i].connected = true;
		gw_central_connected_changed(h->c, addrs[i], true, h->f.now);
		gw_central_connect_done(h->c, addrs[i], GW_BLE_OK, h->f.now);
		gw_central_services_resolved(h->c, addrs[i], true, h->f.now);
		gw_central_gatt_layout(h->c, addrs[i],
				       (const struct gw_gatt_char *) (void *) h->w[i].layout->data,
				       h->w[i].layout->len, h->f.now);
		assert_int_equal(fake_count(&h->f, FOP_CONNECT), (size_t) (i + 2 > NW ? NW : i + 2));
	}
	fake_ble_pump(&h->f);
	for (int i = 0; i < NW; i++)
		assert_int_equal(lst(h, i), GW_LINK_STATE_LIVE);
	assert_int_equal(h->max_connecting_seen, 1);
}

/* A connection attempt that hangs holds the slot only until its timeout. */
static void test_slot_freed_by_timeout(void **state)
{
	struct h *h = *state;

	h_central(h);
	h->w[0].answer_connect = false;
	adapter_up(h);
	advertise(h);
	assert_int_equal(lst(h, 0), GW_LINK_STATE_CONNECTING);
	assert_int_equal(lst(h, 1), GW_LINK_STATE_SCANNING);
	next(h);	/* the connect timeout */
	assert_int_equal(h->f.now, T0 + h->cfg.link.connect_timeout_us);
	assert_int_equal(lstats(h, 0).last_error, GW_BLE_ERR_TIMEOUT);
	h->w[0].answer_connect = true;
	settle(h, SEC(120));
	assert_int_equal(h->max_connecting_seen, 1);
}

static void test_four_wearables_interleaved(void **state)
{
	struct h *h = *state;

	h_central(h);
	for (int i = 0; i < NW; i++) {
		fake_wearable_make(&h->w[i], 10 + 7 * (unsigned int) i);
		h->w[i].batch_records = 1 + (unsigned int) i;
	}
	gw_central_set_durable_seq(h->c, addrs[3], 4);
	fake_store_preload(&h->f, addrs[3], 1, 4);
	gw_central_clock(h->c, true, SEC(1700000000), h->f.now);
	adapter_up(h);
	settle(h, SEC(120));
	for (int i = 0; i < 3; i++)
		assert_stored(h, i, 1, 10 + 7 * (uint32_t) i);
	assert_stored(h, 3, 1, 31);
	assert_int_equal(lstats(h, 3).records_stored, 27);
	for (int i = 0; i < NW; i++)
		assert_true(h->w[i].time_written);

	/* live records from all four, interleaved, with one lost link */
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < NW; i++) {
			uint32_t s = fake_wearable_make(&h->w[i], 2);

			fake_wearable_push_live(&h->w[i], s, 2, false);
		}
		if (round == 2)
			h->w[1].lose_link_after = 1;
		fake_ble_pump(&h->f);
	}
	settle(h, SEC(600));
	for (int i = 0; i < 3; i++)
		assert_stored(h, i, 1, 20 + 7 * (uint32_t) i);
	assert_stored(h, 3, 1, 41);
	assert_int_equal(lstats(h, 1).reconnects, 1);
	assert_int_equal(lstats(h, 0).reconnects, 0);
	assert_int_equal(h->max_connecting_seen, 1);
	assert_int_equal(cstats(h).power_cycles, 0);
}

/* One wearable keeps failing while advertising; one sends garbage; the
 * others are not disturbed, and no power cycle hits them. */
static void test_misbehaving_one_isolated(void **state)
{
	struct h *h = *state;
	static const uint8_t garbage[] = { 0x01, 0x05, 0xff };

	h_central(h);
	for (int i = 0; i < NW; i++)
		fake_wearable_make(&h->w[i], 6);
	h->w[2].connect_err = GW_BLE_ERR_FAILED;
	h->in_range[2] = false;	/* excluded from "settled" */
	adapter_up(h);
	gw_central_device_found(h->c, addrs[2], -50, NULL, h->f.now);
	settle(h, SEC(120));
	for (int k = 0; k < 30; k++) {
		/* it advertises all the time and fails every time */
		gw_central_device_found(h->c, addrs[2], -50, NULL, h->f.now);
		for (int i = 0; i < NW; i++) {
			if (i == 2)
				continue;
			uint32_t s = fake_wearable_make(&h->w[i], 1);

			fake_wearable_push_live(&h->w[i], s, 1, false);
			if (i == 3)
				fake_wearable_push_value(&h->w[3], GW_CHAR_STEPS, garbage,
							 sizeof(garbage), false);
		}
		fake_ble_pump(&h->f);
		next(h);
	}
	settle(h, SEC(600));
	assert_true(lstats(h, 2).errors[GW_BLE_ERR_FAILED] >= 6);
	assert_int_equal(lstats(h, 2).connections, 0);
	/* good links up: its failures do not count against the adapter */
	assert_true(cstats(h).failure_run < h->cfg.wedge_failures);
	assert_int_equal(cstats(h).power_cycles, 0);
	for (int i = 0; i < NW; i++) {
		if (i == 2)
			continue;
		assert_int_equal(lstats(h, i).connections, 1);
		assert_int_equal(lstats(h, i).errors[GW_BLE_ERR_FAILED], 0);
		assert_stored(h, i, 1, 36);
	}
	assert_int_equal(lstats(h, 3).malformed, 30);
	assert_int_equal(fake_count_dev(&h->f, FOP_STORE, addrs[2]), 0);
}

static void test_bluez_gone_and_back(void **state)
{
	struct h *h = *state;

	h_central(h);
	for (int i = 0; i < NW; i++)
		fake_wearable_make(&h->w[i], 5);
	adapter_up(h);
	settle(h, SEC(60));
	/* bluetoothd crashes: the links go with it */
	gw_central_bluez_present(h->c, false, h->f.now);
	for (int i = 0; i < NW; i++) {
		h->w[i].connected = false;
		g_queue_clear_full(&h->w[i].outbox, g_free);
		g_queue_init(&h->w[i].outbox);
		assert_int_equal(lst(h, i), GW_LINK_STATE_WAITING_ADAPTER);
	}
	assert_int_equal(gw_central_get_adapter(h->c), GW_CENTRAL_ADAPTER_NO_BLUEZ);
	assert_false(cstats(h).discovering);
	/* records keep being made meanwhile */
	for (int i = 0; i < NW; i++)
		fake_wearable_make(&h->w[i], 3);
	tick_to(h, h->f.now + SEC(120));
	assert_int_equal(gw_central_next_deadline(h->c), GW_LINK_NO_DEADLINE);
	/* back: it restarts everything */
	gw_central_bluez_present(h->c, true, h->f.now);
	assert_int_equal(lst(h, 0), GW_LINK_STATE_WAITING_ADAPTER);
	gw_central_adapter(h->c, true, true, h->f.now);
	assert_true(cstats(h).discovering);
	settle(h, SEC(60));
	for (int i = 0; i < NW; i++) {
		assert_stored(h, i, 1, 8);
		assert_int_equal(lstats(h, i).connections, 2);
	}
}

static void test_adapter_removed_and_back(void **state)
{
	struct h *h = *state;

	h_central(h);
	adapter_up(h);
	settle(h, SEC(60));
	gw_central_adapter(h->c, false, false, h->f.now);
	assert_int_equal(gw_central_get_adapter(h->c), GW_CENTRAL_ADAPTER_ABSENT);
	for (int i = 0; i < NW; i++) {
		h->w[i].connected = false;
		assert_int_equal(lst(h, i), GW_LINK_STATE_WAITING_ADAPTER);
	}
	/* absent: no power-on attempts, nothing at all */
	assert_int_equal(gw_central_next_deadline(h->c), GW_LINK_NO_DEADLINE);
	gw_central_adapter(h->c, true, true, h->f.now + SEC(5));
	h->f.now += SEC(5);
	settle(h, SEC(60));
}

/* Failures of advertising wearables, nothing connected: power cycle. */
static void test_power_cycle_on_failures(void **state)
{
	struct h *h = *state;
	long ioff, ion;

	h->cfg.n_allowlist = 2;
	h_central(h);
	h->in_range[2] = h->in_range[3] = false;	/* not on the list */
	h->w[0].connect_err = GW_BLE_ERR_IN_PROGRESS;
	h->w[1].connect_err = GW_BLE_ERR_TIMEOUT;
	adapter_up(h);
	for (int k = 0; k < 40 && cstats(h).power_cycles == 0; k++) {
		advertise(h);
		next(h);
	}
	assert_int_equal(cstats(h).power_cycles, 1);
	assert_int_equal(fake_last(&h->f, FOP_RECOVERY, NULL)->a,
			 GW_CENTRAL_RECOVERY_CYCLE_FAILURES);
	ioff = fake_find(&h->f, FOP_SET_POWERED, NULL, 0);
	assert_true(ioff >= 0);
	assert_int_equal(fake_call_at(&h->f, (size_t) ioff)->a, 0);
	/* off, the links wait; the hold; on */
	assert_int_equal(gw_central_get_adapter(h->c), GW_CENTRAL_ADAPTER_CYCLING);
	assert_int_equal(lst(h, 0), GW_LINK_STATE_WAITING_ADAPTER);
	/* the power cycle is what un-wedges it */
	h->w[0].connect_err = GW_BLE_OK;
	h->w[1].connect_err = GW_BLE_OK;
	next(h);
	ion = fake_find(&h->f, FOP_SET_POWERED, NULL, (size_t) ioff + 1);
	assert_true(ion > ioff);
	assert_int_equal(fake_call_at(&h->f, (size_t) ion)->a, 1);
	assert_int_equal(fake_call_at(&h->f, (size_t) ion)->at -
			 fake_call_at(&h->f, (size_t) ioff)->at, h->cfg.power_off_hold_us);
	assert_int_equal(gw_central_get_adapter(h->c), GW_CENTRAL_ADAPTER_READY);
	assert_int_equal(cstats(h).failure_run, 0);
	settle(h, SEC(300));
	assert_int_equal(cstats(h).power_cycles, 1);
}

/* A wearable out of range fails too; that is not the adapter's fault. */
static void test_no_cycle_for_absent_wearable(void **state)
{
	struct h *h = *state;

	h->cfg.n_allowlist = 1;
	h->cfg.nothing_found_us = SEC(24 * 3600);
	h_central(h);
	h->in_range[1] = h->in_range[2] = h->in_range[3] = false;	/* not listed */
	adapter_up(h);
	settle(h, SEC(60));
	/* the patient walks out with it: only scan-timeout direct connects
	 * now, all failing, long after its last advertisement */
	out_of_range(h, 0);
	fake_wearable_drop_link(&h->f, &h->w[0]);
	for (int k = 0; k < 60; k++)
		next(h);
	assert_true(lstats(h, 0).errors[GW_BLE_ERR_TIMEOUT] >= 6);
	assert_int_equal(cstats(h).power_cycles, 0);
	assert_true(cstats(h).failure_run < h->cfg.wedge_failures);
}

static void test_power_cycle_budget(void **state)
{
	struct h *h = *state;
	int64_t t_first = 0;
	size_t offs;

	h->cfg.n_allowlist = 1;
	h->cfg.wedge_failures = 2;
	h_central(h);
	h->in_range[1] = h->in_range[2] = h->in_range[3] = false;
	h->w[0].connect_err = GW_BLE_ERR_FAILED;
	adapter_up(h);
	for (int k = 0; k < 400 && fake_count(&h->f, FOP_RECOVERY) < 4; k++) {
		advertise(h);
		next(h);
		if (t_first == 0 && cstats(h).power_cycles == 1)
			t_first = h->f.now;
	}
	/* three cycles, then "wedged" */
	assert_int_equal(cstats(h).power_cycles, 3);
	assert_int_equal(fake_last(&h->f, FOP_RECOVERY, NULL)->a, GW_CENTRAL_RECOVERY_WEDGED);
	assert_true(cstats(h).wedged);
	assert_true(h->f.now - t_first < h->cfg.power_cycle_window_us);
	assert_int_equal(cstats(h).power_cycles_in_window, 3);
	offs = 0;
	for (size_t i = 0; i < fake_ncalls(&h->f); i++)
		if (fake_call_at(&h->f, i)->op == FOP_SET_POWERED &&
		    fake_call_at(&h->f, i)->a == 0)
			offs++;
	assert_int_equal(offs, 3);
	/* it backs off for long: failures go on, no cycle */
	{
		int64_t until = cstats(h).wedged_until;

		assert_int_equal(until, h->f.now + h->cfg.wedged_backoff_us);
		for (int k = 0; k < 400 && h->f.now < until - SEC(60); k++) {
			advertise(h);
			next(h);
		}
		assert_int_equal(cstats(h).power_cycles, 3);
		/* then the ladder is there again */
		for (int k = 0; k < 400 && cstats(h).power_cycles == 3; k++) {
			advertise(h);
			next(h);
		}
		assert_int_equal(cstats(h).power_cycles, 4);
		assert_true(h->f.now >= until);
		assert_false(cstats(h).wedged);
	}
}

/* Discovery running, nobody connected, not one advertisement for long. */
static void test_power_cycle_silent_discovery(void **state)
{
	struct h *h = *state;
	int64_t t;

	h->cfg.nothing_found_us = SEC(600);
	h_central(h);
	for (int i = 0; i < NW; i++)
		out_of_range(h, i);
	adapter_up(h);
	t = h->f.now;
	for (int k = 0; k < 100 && cstats(h).power_cycles == 0; k++)
		next(h);
	assert_int_equal(cstats(h).power_cycles, 1);
	assert_int_equal(fake_last(&h->f, FOP_RECOVERY, NULL)->a,
			 GW_CENTRAL_RECOVERY_CYCLE_SILENT);
	assert_int_equal(fake_last(&h->f, FOP_RECOVERY, NULL)->at - t, SEC(600));

	/* any advertisement (even a stranger's) shows discovery works */
	t = h->f.now;
	for (int k = 0; k < 100 && h->f.now < t + SEC(3000); k++) {
		gw_central_device_found(h->c, STRANGER, -80, NULL, h->f.now);
		tick_to(h, h->f.now + SEC(300));
	}
	assert_int_equal(cstats(h).power_cycles, 1);
	assert_true(cstats(h).last_found >= t);
}

static void test_no_silent_cycle_while_a_link_is_up(void **state)
{
	struct h *h = *state;

	h->cfg.nothing_found_us = SEC(600);
	h_central(h);
	out_of_range(h, 1);
	out_of_range(h, 2);
	out_of_range(h, 3);
	adapter_up(h);
	settle(h, SEC(60));
	assert_int_equal(lst(h, 0), GW_LINK_STATE_LIVE);
	assert_true(cstats(h).discovering);	/* three are missing */
	for (int k = 0; k < 300 && h->f.now < T0 + SEC(7200); k++)
		next(h);
	assert_true(h->f.now >= T0 + SEC(7200));
	assert_int_equal(cstats(h).power_cycles, 0);
	assert_true(cstats(h).discovery_restarts >= 100);
}

static void test_needs_repair_through_central(void **state)
{
	struct h *h = *state;

	h_central(h);
	h->w[1].connect_err = GW_BLE_ERR_AUTH;
	adapter_up(h);
	advertise(h);
	h->in_range[1] = false;
	settle(h, SEC(60));
	assert_int_equal(lst(h, 1), GW_LINK_STATE_NEEDS_REPAIR);
	assert_string_equal(fake_last(&h->f, FOP_REPAIR, NULL)->dev, addrs[1]);
	assert_int_equal(lstats(h, 1).last_error, GW_BLE_ERR_AUTH);
	tick_to(h, h->f.now + SEC(3600));
	gw_central_device_found(h->c, addrs[1], -40, NULL, h->f.now);
	fake_ble_pump(&h->f);
	assert_int_equal(fake_count_dev(&h->f, FOP_CONNECT, addrs[1]), 1);
	/* paired again by the technician */
	h->w[1].connect_err = GW_BLE_OK;
	h->in_range[1] = true;
	gw_central_repaired(h->c, addrs[1], false, h->f.now);
	settle(h, SEC(60));
	/* and disabled */
	gw_central_set_enabled(h->c, addrs[1], false, h->f.now);
	fake_ble_pump(&h->f);
	assert_int_equal(lst(h, 1), GW_LINK_STATE_DISABLED);
	gw_central_set_enabled(h->c, addrs[1], true, h->f.now);
	settle(h, SEC(60));
}

static void test_store_events_through_central(void **state)
{
	struct h *h = *state;
	uint32_t s;

	h_central(h);
	adapter_up(h);
	settle(h, SEC(60));
	h->f.auto_commit = false;
	s = fake_wearable_make(&h->w[0], 2);
	fake_wearable_push_live(&h->w[0], s, 2, false);
	fake_ble_pump(&h->f);
	fake_store_drop_pending(&h->f);
	gw_central_store_failed(h->c, addrs[0], h->f.now);
	h->f.auto_commit = true;
	settle(h, SEC(60));
	assert_stored(h, 0, 1, 2);
}

static void test_names_and_free(void **state)
{
	(void) state;
	for (int a = GW_CENTRAL_ADAPTER_NO_BLUEZ; a <= GW_CENTRAL_ADAPTER_CYCLING; a++)
		assert_string_not_equal(gw_central_adapter_name(a), "invalid");
	for (int r = GW_CENTRAL_RECOVERY_CYCLE_FAILURES; r <= GW_CENTRAL_RECOVERY_POWER_ON; r++)
		assert_string_not_equal(gw_central_recovery_name(r), "invalid");
	gw_central_free(NULL);
	{
		g_autoptr(GwCentral) c = gw_central_new(NULL, NULL, NULL);

		assert_int_equal(gw_central_n_links(c), 0);
		gw_central_bluez_present(c, true, 0);
		gw_central_adapter(c, true, true, 0);
		gw_central_tick(c, SEC(100));
		assert_int_equal(gw_central_get_adapter(c), GW_CENTRAL_ADAPTER_READY);
	}
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_starts_without_bluez),
		T(test_adapter_comes_up),
		T(test_discovery_restart_period),
		T(test_discovery_failure_retried),
		T(test_allowlist_only),
		T(test_connects_serialised),
		T(test_slot_freed_by_timeout),
		T(test_four_wearables_interleaved),
		T(test_misbehaving_one_isolated),
		T(test_bluez_gone_and_back),
		T(test_adapter_removed_and_back),
		T(test_power_cycle_on_failures),
		T(test_no_cycle_for_absent_wearable),
		T(test_power_cycle_budget),
		T(test_power_cycle_silent_discovery),
		T(test_no_silent_cycle_while_a_link_is_up),
		T(test_needs_repair_through_central),
		T(test_store_events_through_central),
		T(test_names_and_free),
	};

	return cmocka_run_group_tests_name("central", tests, NULL, NULL);
}
