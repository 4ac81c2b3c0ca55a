/* SPDX-License-Identifier: MIT */
/*
 * The per-wearable link state machine (see link.h). Pure: events and the
 * time come in as calls, actions leave through the ops table.
 *
 * Actions are queued while an event is handled and run when the outermost
 * gw_link_* call finishes, so an op that feeds an event back at once (a
 * store committing synchronously) never sees the link half-way through a
 * transition, and the actions keep the order they were decided in.
 *
 * The durable seq S only moves in two ways, both of which leave every
 * record the wearable holds up to S committed in the store:
 *  - contiguously: records carry "+1 per record of any type" seqs
 *    (protocol 1.3), so once S+1 is committed S becomes S+1;
 *  - by a verified report: REPORT RECORDS AFTER S answered "success, last
 *    L" after exactly the announced number of records ending at L arrived,
 *    and nothing up to L is still waiting for its commit.
 * Deletes are only ever written for seqs up to S.
 */
#include <string.h>

#include "link.h"

enum link_timer {
	T_STATE,		/* the current state's wait */
	T_HCP,			/* a history control point write, or its response */
	T_GATT,			/* a Current Time write while live */
	T_STABLE,		/* connected long enough to forget past errors */
	T_DELETE,		/* live: periodic delete up to S */
	T_SYNC_RETRY,		/* live: retry a failed sync */
	T_GAP,			/* live: a hole after S for too long */
	T_TIME,			/* live: rewrite Current Time */
	T_COUNT
};
#define T_OFF GW_LINK_NO_DEADLINE

enum hcp_op {
	HCP_NONE = 0,
	HCP_REPORT,
	HCP_REPORT_TAIL,	/* answered "success", records still on their way */
	HCP_DELETE,
	HCP_ABORT,
};

/* ---- a set of u32 seqs as sorted ranges, in serial-number order ---- */

struct seq_range {
	uint32_t first;
	uint32_t count;		/* >= 1 */
};

struct seqset {
	GArray *r;		/* struct seq_range, sorted, neither overlapping nor adjacent */
};

static void seqset_init(struct seqset *s)
{
	s->r = g_array_new(FALSE, FALSE, sizeof(struct seq_range));
}

static void seqset_fini(struct seqset *s)
{
	g_clear_pointer(&s->r, g_array_unref);
}

static struct seq_range *seqset_at(const struct seqset *s, guint i)
{
	return &g_array_index(s->r, struct seq_range, i);
}

static bool seqset_contains(const struct seqset *s, uint32_t seq)
{
	for (guint i = 0; i < s->r->len; i++) {
		const struct seq_range *r = seqset_at(s, i);

		if ((uint32_t) (seq - r->first) < r->count)
			return true;
	}
	return false;
}

static void seqset_add(struct seqset *s, uint32_t seq)
{
	guint i;

	if (seqset_contains(s, seq))
		return;
	for (i = 0; i < s->r->len; i++)
		if (wb_seq_after(seqset_at(s, i)->first, seq))
			break;

	bool join_prev = i > 0 &&
		(uint32_t) (seqset_at(s, i - 1)->first + seqset_at(s, i - 1)->count) == seq;
	bool join_next = i < s->r->len && (uint32_t) (seq + 1) == seqset_at(s, i)->first;

	if (join_prev && join_next) {
		seqset_at(s, i - 1)->count += 1 + seqset_at(s, i)->count;
		g_array_remove_index(s->r, i);
	} else if (join_prev) {
		seqset_at(s, i - 1)->count++;
	} else if (join_next) {
		seqset_at(s, i)->first = seq;
		seqset_at(s, i)->count++;
	} else {
		struct seq_range nr = { seq, 1 };

		g_array_insert_val(s->r, i, nr);
	}
}

static void seqset_remove(struct seqset *s, uint32_t seq)
{
	for (guint i = 0; i < s->r->len; i++) {
		struct seq_range *r = seqset_at(s, i);
		uint32_t off = seq - r->first;

		if (off >= r->count)
			continue;
		if (r->count == 1) {
			g_array_remove_index(s->r, i);
		} else if (off == 0) {
			r->first++;
			r->count--;
		} else if (off == r->count - 1) {
			r->count--;
		} else {
			struct seq_range tail = { seq + 1, r->count - off - 1 };

			r->count = off;
			g_array_insert_val(s->r, i + 1, tail);
		}
		return;
	}
}

/* Drops every seq that is not after `seq`. */
static void seqset_remove_upto(struct seqset *s, uint32_t seq)
{
	while (s->r->len > 0) {
		struct seq_range *r = seqset_at(s, 0);
		uint32_t last = r->first + r->count - 1;

		if (!wb_seq_after(last, seq)) {
			g_array_remove_index(s->r, 0);
			continue;
		}
		if (!wb_seq_after(r->first, seq)) {
			uint32_t cut = seq - r->first + 1;

			r->first += cut;
			r->count -= cut;
		}
		break;
	}
}

/* ---- queued actions ---- */

enum action_kind {
	A_CONNECT,
	A_DISCONNECT,
	A_REMOVE_CACHE,
	A_READ,
	A_WRITE,
	A_NOTIFY,
	A_STORE,
	A_STATE,
	A_ERROR,
	A_REPAIR,
	A_INFO,
	A_BATTERY,
	A_FEATURES,
	A_MALFORMED,
};

struct action {
	enum action_kind kind;
	enum gw_char ch;
	int a, b;
	size_t len;
	uint8_t bytes[16];
	struct wb_record *recs;
	char *str;
	struct wb_features f;
	struct wb_err werr;
};

static void action_free(gpointer p)
{
	struct action *a = p;

	g_free(a->recs);
	g_free(a->str);
	g_free(a);
}

/* One store_records() call whose commit has not arrived yet. */
struct handover {
	size_t n;
	uint32_t seqs[];
};

struct gw_link {
	char *address;
	struct gw_link_config cfg;
	struct gw_link_ops ops;
	void *user_data;

	enum gw_link_state state;
	int64_t timer[T_COUNT];
	uint64_t rng;
	GQueue actions;
	unsigned int depth;

	/* adapter and advertisements */
	bool adapter_ready;
	int64_t seen_at;
	int rssi;
	bool connect_wanted;	/* may_connect() said no; waiting in SCANNING */

	/* the connection */
	bool connected;
	bool resolved;
	bool saw_disconnect;	/* Connected=false since this attempt's Connect() */
	bool ever_connected;
	int64_t connected_since;
	int64_t connected_total;

	/* GATT layout: the last one reported, and what it allows */
	GArray *layout;		/* struct gw_gatt_char */
	bool have_layout;
	bool have_char[GW_CHAR_COUNT];
	unsigned int props[GW_CHAR_COUNT];
	unsigned int layout_fail_run;

	/* set-up steps: index into the state's list, and the char waited on */
	int step;
	enum gw_char pending;
	bool info_done[GW_CHAR_COUNT];	/* device information is read once */

	/* DISCONNECTING: what follows the disconnect */
	bool clear_after_disconnect;
	int64_t delay_after_disconnect;

	/* the gateway's clock */
	bool clock_synced;
	int64_t wall_offset;	/* unix us - monotonic us */
	int64_t time_written_at;
	bool time_write_busy;

	struct wb_features features;
	bool have_features;

	/* the durable path */
	bool have_durable;
	uint32_t durable;		/* S */
	bool have_deleted;
	uint32_t deleted;
	struct seqset seen;		/* after S, handed over (pending or committed) */
	struct seqset committed;	/* after S, committed */
	GQueue handovers;		/* struct handover, oldest first */
	uint64_t pending_records;
	bool have_target;		/* a verified report's last seq ... */
	uint32_t target;		/* ... waiting for the commits up to it */

	/* the history control point procedure */
	enum hcp_op hcp;
	bool hcp_acked;
	unsigned int hcp_writes;	/* outstanding writes: replies come in order */
	uint32_t hcp_operand;
	uint32_t report_count;
	bool report_have_last;
	uint32_t report_last;
	uint32_t tail_count;		/* HCP_REPORT_TAIL: what the answer announced */
	uint32_t tail_last;
	bool history_synced;
	unsigned int sync_run;
	bool sync_due;
	bool report_stale;		/* the store lost what this report handed over */
	bool delete_due;

	unsigned int run[GW_BLE_ERR_COUNT];
	struct gw_link_stats st;	/* the counters; the rest is filled on read */
};

/* ---- defaults ---- */

#define MS(x) ((int64_t) (x) * 1000)
#define SEC(x) ((int64_t) (x) * 1000000)

/*
 * Why these numbers (bleak-retry-connector and bluetooth-auto-recovery
 * were the models, see reference/anchors-features.md):
 * - IN_PROGRESS: BlueZ holds a stale connection attempt; it times out on
 *   its own only after minutes, so clear it first, then retry patiently.
 * - ABORT_BY_LOCAL: usually succeeds at once, but only after BlueZ has
 *   finished tearing the aborted attempt down (the disconnect event).
 * - NOT_READY and BLUEZ_GONE: nothing to do until the adapter is back.
 * - AUTH: the bond is gone; pairing again silently would hide a swapped or
 *   reset wearable, so a human decides.
 * - NOT_SUPPORTED: the wearable does not speak the profile; retrying fast
 *   only drains its battery.
 */
static const struct gw_link_policy default_policy[GW_BLE_ERR_COUNT] = {
	[GW_BLE_OK] = { 0, 0, 1.0, 0.0, GW_LINK_ACTION_NONE },
	[GW_BLE_ERR_IN_PROGRESS] = { SEC(2), SEC(60), 2.0, 0.2, GW_LINK_ACTION_CLEAR_STALE },
	[GW_BLE_ERR_ABORT_BY_LOCAL] = { MS(250), SEC(4), 2.0, 0.25,
					GW_LINK_ACTION_WAIT_DISCONNECT },
	[GW_BLE_ERR_NOT_READY] = { SEC(2), SEC(30), 2.0, 0.2, GW_LINK_ACTION_WAIT_ADAPTER },
	[GW_BLE_ERR_FAILED] = { SEC(1), SEC(300), 2.0, 0.2, GW_LINK_ACTION_DISCONNECT },
	[GW_BLE_ERR_AUTH] = { 0, 0, 1.0, 0.0, GW_LINK_ACTION_REPAIR },
	[GW_BLE_ERR_TIMEOUT] = { SEC(2), SEC(120), 2.0, 0.2, GW_LINK_ACTION_DISCONNECT },
	[GW_BLE_ERR_NOT_CONNECTED] = { MS(500), SEC(60), 2.0, 0.2, GW_LINK_ACTION_NONE },
	[GW_BLE_ERR_DOES_NOT_EXIST] = { SEC(1), SEC(60), 2.0, 0.2, GW_LINK_ACTION_RESCAN },
	[GW_BLE_ERR_NOT_SUPPORTED] = { SEC(60), SEC(3600), 2.0, 0.1,
				       GW_LINK_ACTION_DISCONNECT },
	[GW_BLE_ERR_BLUEZ_GONE] = { SEC(1), SEC(30), 2.0, 0.2, GW_LINK_ACTION_WAIT_ADAPTER },
};

void gw_link_config_init(struct gw_link_config *cfg)
{
	g_return_if_fail(cfg != NULL);

	memset(cfg, 0, sizeof(*cfg));
	memcpy(cfg->policy, default_policy, sizeof(default_policy));
	cfg->sync_retry = (struct gw_link_policy) { SEC(5), SEC(600), 2.0, 0.2,
						    GW_LINK_ACTION_NONE };
	cfg->connect_timeout_us = SEC(30);
	cfg->resolve_timeout_us = SEC(30);
	cfg->layout_timeout_us = SEC(5);
	cfg->gatt_timeout_us = SEC(10);
	cfg->disconnect_timeout_us = SEC(5);
	cfg->hcp_timeout_us = SEC(30);
	cfg->commit_timeout_us = SEC(30);
	cfg->scan_timeout_us = SEC(300);
	cfg->seen_fresh_us = SEC(30);
	cfg->stable_us = SEC(60);
	cfg->live_delete_interval_us = SEC(60);
	cfg->gap_grace_us = SEC(30);
	cfg->time_resync_us = SEC(12 * 3600);
	cfg->layout_retry_us = SEC(1);
	cfg->layout_cache_drops = 2;
	cfg->seed = 0x5eedf00dULL;
}

/* ---- small helpers ---- */

static struct action *queue_action(GwLink *link, enum action_kind kind)
{
	struct action *a = g_new0(struct action, 1);

	a->kind = kind;
	g_queue_push_tail(&link->actions, a);
	return a;
}

static void queue_char(GwLink *link, enum action_kind kind, enum gw_char ch)
{
	queue_action(link, kind)->ch = ch;
}

static void queue_write(GwLink *link, enum gw_char ch, const uint8_t *val, size_t len)
{
	struct action *a = queue_action(link, A_WRITE);

	g_assert(len <= sizeof(a->bytes));
	a->ch = ch;
	a->len = len;
	memcpy(a->bytes, val, len);
}

static void run_action(GwLink *link, const struct action *a)
{
	const struct gw_link_ops *o = &link->ops;
	const char *d = link->address;
	void *u = link->user_data;

	switch (a->kind) {
	case A_CONNECT:
		if (o->connect)
			o->connect(d, u);
		break;
	case A_DISCONNECT:
		if (o->disconnect)
			o->disconnect(d, u);
		break;
	case A_REMOVE_CACHE:
		if (o->remove_device_cache)
			o->remove_device_cache(d, u);
		break;
	case A_READ:
		if (o->read_char)
			o->read_char(d, a->ch, u);
		break;
	case A_WRITE:
		if (o->write_char)
			o->write_char(d, a->ch, a->bytes, a->len, u);
		break;
	case A_NOTIFY:
		if (o->start_notify)
			o->start_notify(d, a->ch, u);
		break;
	case A_STORE:
		if (o->store_records)
			o->store_records(d, a->recs, a->len, u);
		break;
	case A_STATE:
		if (o->state_changed)
			o->state_changed(d, (enum gw_link_state) a->a,
					 (enum gw_link_state) a->b, u);
		break;
	case A_ERROR:
		if (o->error)
			o->error(d, (enum gw_ble_err) a->a, (enum gw_link_state) a->b, u);
		break;
	case A_REPAIR:
		if (o->needs_repair)
			o->needs_repair(d, (enum gw_link_repair) a->a, u);
		break;
	case A_INFO:
		if (o->device_info)
			o->device_info(d, a->ch, a->str, u);
		break;
	case A_BATTERY:
		if (o->battery)
			o->battery(d, (unsigned int) a->a, u);
		break;
	case A_FEATURES:
		if (o->features)
			o->features(d, &a->f, u);
		break;
	case A_MALFORMED:
		if (o->malformed)
			o->malformed(d, a->ch, a->a, &a->werr, u);
		break;
	}
}

static void link_enter(GwLink *link)
{
	link->depth++;
}

/* Runs the queued actions once the outermost call is done. An op that
 * calls back into the link queues more; they run in this same loop. */
static void link_leave(GwLink *link)
{
	struct action *a;

	if (--link->depth > 0)
		return;
	while ((a = g_queue_pop_head(&link->actions))) {
		link->depth++;
		run_action(link, a);
		link->depth--;
		action_free(a);
	}
}

static void timer_set(GwLink *link, enum link_timer t, int64_t at)
{
	link->timer[t] = at;
}

static void timer_off(GwLink *link, enum link_timer t)
{
	link->timer[t] = T_OFF;
}

static void set_state(GwLink *link, enum gw_link_state s)
{
	struct action *a;

	timer_off(link, T_STATE);
	if (link->state == s)
		return;
	a = queue_action(link, A_STATE);
	a->a = link->state;
	a->b = s;
	link->state = s;
}

static uint32_t link_random(GwLink *link)
{
	uint64_t x;

	if (link->ops.random)
		return link->ops.random(link->user_data);
	/* xorshift64*: tiny, and the same sequence everywhere */
	x = link->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	link->rng = x;
	return (uint32_t) ((x * UINT64_C(0x2545F4914F6CDD1D)) >> 32);
}

static int64_t policy_delay(GwLink *link, const struct gw_link_policy *p, unsigned int n)
{
	double d = (double) p->base_us;
	double max = (double) p->max_us;

	for (unsigned int i = 1; i < n && i < 64 && d < max; i++)
		d *= p->multiplier;
	if (d > max)
		d = max;
	if (p->jitter > 0) {
		double u = link_random(link) / 4294967296.0;

		d *= 1.0 + p->jitter * (2.0 * u - 1.0);
	}
	return d > 0 ? (int64_t) d : 0;
}

static bool seen_fresh(const GwLink *link, int64_t now)
{
	return link->seen_at != GW_LINK_NEVER &&
	       now - link->seen_at <= link->cfg.seen_fresh_us;
}

/* Errors on an optional step (Current Time, battery, device information)
 * that refuse only that step; anything else says the link itself is in
 * trouble and goes through the policy. */
static bool error_skippable(enum gw_ble_err err)
{
	switch (err) {
	case GW_BLE_ERR_FAILED:
	case GW_BLE_ERR_NOT_SUPPORTED:
		return true;
	case GW_BLE_OK:
	case GW_BLE_ERR_IN_PROGRESS:
	case GW_BLE_ERR_ABORT_BY_LOCAL:
	case GW_BLE_ERR_NOT_READY:
	case GW_BLE_ERR_AUTH:
	case GW_BLE_ERR_TIMEOUT:
	case GW_BLE_ERR_NOT_CONNECTED:
	case GW_BLE_ERR_DOES_NOT_EXIST:
	case GW_BLE_ERR_BLUEZ_GONE:
		return false;
	}
	return false;
}

static void report_malformed(GwLink *link, enum gw_char ch, int err,
			     const struct wb_err *werr)
{
	struct action *a = queue_action(link, A_MALFORMED);

	link->st.malformed++;
	a->ch = ch;
	a->a = err;
	a->werr = *werr;
}

/* ---- forward declarations of the transitions ---- */

static void link_scan(GwLink *link, int64_t now);
static void link_fail(GwLink *link, enum gw_ble_err err, int64_t now);
static void enter_setting_time(GwLink *link, int64_t now);
static void enter_reading_info(GwLink *link, int64_t now);
static void enter_subscribing(GwLink *link, int64_t now);
static void enter_sync(GwLink *link, int64_t now);
static void enter_live(GwLink *link, int64_t now);
static void live_schedule(GwLink *link, int64_t now);

/* ---- connection bookkeeping ---- */

static void live_timers_off(GwLink *link)
{
	timer_off(link, T_HCP);
	timer_off(link, T_GATT);
	timer_off(link, T_DELETE);
	timer_off(link, T_SYNC_RETRY);
	timer_off(link, T_GAP);
	timer_off(link, T_TIME);
	link->hcp = HCP_NONE;
	link->time_write_busy = false;
	link->sync_due = false;
	link->delete_due = false;
}

static void connection_up(GwLink *link, int64_t now)
{
	if (link->connected)
		return;
	link->connected = true;
	link->connected_since = now;
	link->st.connections++;
	if (link->ever_connected)
		link->st.reconnects++;
	link->ever_connected = true;
	timer_set(link, T_STABLE, now + link->cfg.stable_us);
}

static void connection_down(GwLink *link, int64_t now)
{
	if (link->connected)
		link->connected_total += now - link->connected_since;
	link->connected = false;
	link->resolved = false;
	link->have_layout = false;
	g_array_set_size(link->layout, 0);
	link->hcp_writes = 0;
	link->history_synced = false;
	timer_off(link, T_STABLE);
	live_timers_off(link);
}

static void link_try_connect(GwLink *link, int64_t now)
{
	if (!link->adapter_ready) {
		set_state(link, GW_LINK_STATE_WAITING_ADAPTER);
		return;
	}
	if (link->ops.may_connect && !link->ops.may_connect(link->address, link->user_data)) {
		link->connect_wanted = true;
		set_state(link, GW_LINK_STATE_SCANNING);
		timer_set(link, T_STATE, now + link->cfg.scan_timeout_us);
		return;
	}
	link->connect_wanted = false;
	link->saw_disconnect = false;
	link->st.connect_attempts++;
	set_state(link, GW_LINK_STATE_CONNECTING);
	timer_set(link, T_STATE, now + link->cfg.connect_timeout_us);
	queue_action(link, A_CONNECT);
}

/* Connect at once if the wearable advertised lately, else wait for it. */
static void link_scan(GwLink *link, int64_t now)
{
	if (!link->adapter_ready) {
		set_state(link, GW_LINK_STATE_WAITING_ADAPTER);
		return;
	}
	if (seen_fresh(link, now)) {
		link_try_connect(link, now);
		return;
	}
	link->connect_wanted = false;
	set_state(link, GW_LINK_STATE_SCANNING);
	timer_set(link, T_STATE, now + link->cfg.scan_timeout_us);
}

static void enter_backoff(GwLink *link, int64_t now, int64_t delay)
{
	set_state(link, GW_LINK_STATE_BACKOFF);
	timer_set(link, T_STATE, now + delay);
}

static void disconnect_complete(GwLink *link, int64_t now)
{
	connection_down(link, now);
	if (link->clear_after_disconnect) {
		/* only now: BlueZ cannot drop the GATT cache of a connected device */
		link->clear_after_disconnect = false;
		link->st.cache_clears++;
		queue_action(link, A_REMOVE_CACHE);
	}
	enter_backoff(link, now, link->delay_after_disconnect);
}

/*
 * call: send Disconnect() (which also cancels a pending Connect()).
 * wait_event: wait for the disconnect event even if we never saw the
 * connection (the abort-by-local case).
 */
static void begin_disconnect(GwLink *link, int64_t now, bool call, bool clear,
			     int64_t delay, bool wait_event)
{
	link->hcp = HCP_NONE;
	link->clear_after_disconnect = clear;
	link->delay_after_disconnect = delay;
	if (link->connected || wait_event) {
		set_state(link, GW_LINK_STATE_DISCONNECTING);
		timer_set(link, T_STATE, now + link->cfg.disconnect_timeout_us);
		if (call)
			queue_action(link, A_DISCONNECT);
		return;
	}
	if (call)
		queue_action(link, A_DISCONNECT);
	disconnect_complete(link, now);
}

static void enter_repair(GwLink *link, int64_t now, enum gw_link_repair why)
{
	bool was = link->connected || link->state == GW_LINK_STATE_CONNECTING;

	connection_down(link, now);
	for (int t = 0; t < T_COUNT; t++)
		timer_off(link, t);
	set_state(link, GW_LINK_STATE_NEEDS_REPAIR);
	if (was)
		queue_action(link, A_DISCONNECT);
	queue_action(link, A_REPAIR)->a = why;
}

static void record_error(GwLink *link, enum gw_ble_err err, int64_t now)
{
	struct action *a = queue_action(link, A_ERROR);

	a->a = err;
	a->b = link->state;
	link->st.last_error = err;
	link->st.last_error_time = now;
	link->st.errors[err]++;
}

/* Classifies and applies the class's policy. */
static void link_fail(GwLink *link, enum gw_ble_err err, int64_t now)
{
	const struct gw_link_policy *pol;
	int64_t delay;

	g_return_if_fail(err > GW_BLE_OK && err < GW_BLE_ERR_COUNT);

	record_error(link, err, now);
	link->run[err]++;
	/* nothing of the connection may fire any more: a late T_HCP would
	 * count a second error, a late T_STABLE forgive this one */
	live_timers_off(link);
	timer_off(link, T_STABLE);
	pol = &link->cfg.policy[err];
	delay = policy_delay(link, pol, link->run[err]);

	switch (pol->action) {
	case GW_LINK_ACTION_REPAIR:
		enter_repair(link, now, GW_LINK_REPAIR_BOND_LOST);
		break;
	case GW_LINK_ACTION_WAIT_ADAPTER: {
		/* usually the adapter took the connection with it; if it did
		 * not, do not leave one behind */
		bool was = link->connected;

		connection_down(link, now);
		set_state(link, GW_LINK_STATE_WAITING_ADAPTER);
		timer_set(link, T_STATE, now + delay);
		if (was)
			queue_action(link, A_DISCONNECT);
		break;
	}
	case GW_LINK_ACTION_NONE:
		begin_disconnect(link, now, link->connected, false, delay, false);
		break;
	case GW_LINK_ACTION_DISCONNECT:
		begin_disconnect(link, now, true, false, delay, false);
		break;
	case GW_LINK_ACTION_CLEAR_STALE:
		/* clearing every time would cost a full GATT discovery per
		 * retry; once per run is what un-wedges BlueZ */
		begin_disconnect(link, now, true, link->run[err] == 1, delay, false);
		break;
	case GW_LINK_ACTION_WAIT_DISCONNECT:
		begin_disconnect(link, now, false, false, delay, !link->saw_disconnect);
		break;
	case GW_LINK_ACTION_RESCAN:
		link->seen_at = GW_LINK_NEVER;
		begin_disconnect(link, now, link->connected, false, delay, false);
		break;
	}
}

/* ---- set-up: resolve, layout, time, info, subscribe ---- */

static void validate_layout(GwLink *link, int64_t now);

static void enter_checking_layout(GwLink *link, int64_t now)
{
	set_state(link, GW_LINK_STATE_CHECKING_LAYOUT);
	if (link->have_layout) {
		validate_layout(link, now);
		return;
	}
	timer_set(link, T_STATE, now + link->cfg.layout_timeout_us);
}

static void enter_resolving(GwLink *link, int64_t now)
{
	connection_up(link, now);
	if (link->resolved || link->have_layout) {
		enter_checking_layout(link, now);
		return;
	}
	set_state(link, GW_LINK_STATE_RESOLVING);
	timer_set(link, T_STATE, now + link->cfg.resolve_timeout_us);
}

static void layout_invalid(GwLink *link, int64_t now)
{
	link->st.layouts_invalid++;
	link->layout_fail_run++;
	if (link->layout_fail_run > link->cfg.layout_cache_drops) {
		link_fail(link, GW_BLE_ERR_NOT_SUPPORTED, now);
		return;
	}
	/* a stale or half-exported cache (bluez#191, #1489): drop it and let
	 * BlueZ discover the services again on the next connection */
	record_error(link, GW_BLE_ERR_NOT_SUPPORTED, now);
	begin_disconnect(link, now, true, true, link->cfg.layout_retry_us, false);
}

static void validate_layout(GwLink *link, int64_t now)
{
	unsigned int props[GW_CHAR_COUNT] = { 0 };
	unsigned int count[GW_CHAR_COUNT] = { 0 };
	bool ok = true;

	for (guint i = 0; i < link->layout->len; i++) {
		const struct gw_gatt_char *c =
			&g_array_index(link->layout, struct gw_gatt_char, i);

		if (c->role < 0 || c->role >= GW_CHAR_COUNT)
			continue;	/* not ours: other services are fine */
		count[c->role]++;
		props[c->role] |= c->props;
	}
	for (int r = 0; r < GW_CHAR_COUNT; r++) {
		unsigned int req = gw_char_required_props(r);
		/* two characteristics with one role: we could not tell which
		 * one carries the data */
		bool usable = count[r] == 1 && (props[r] & req) == req;

		if (count[r] > 1 || (gw_char_mandatory(r) && !usable))
			ok = false;
		link->have_char[r] = usable;
		link->props[r] = props[r];
	}
	if (!ok) {
		layout_invalid(link, now);
		return;
	}
	link->layout_fail_run = 0;
	enter_setting_time(link, now);
}

static bool encode_time(const GwLink *link, int64_t now, uint8_t *buf, size_t size,
			size_t *ret_len)
{
	int64_t unix_us = now + link->wall_offset;
	struct wb_current_time t;
	ssize_t n;

	if (unix_us < 0 || wb_current_time_from_unix(unix_us / 1000000, &t) < 0)
		return false;
	t.fractions256 = (uint8_t) ((unix_us % 1000000) * 256 / 1000000);
	n = wb_current_time_encode(&t, buf, size);
	if (n < 0)
		return false;
	*ret_len = (size_t) n;
	return true;
}

static bool time_allowed(const GwLink *link)
{
	/* a gateway with a wrong clock must never set the wearable's
	 * (protocol 1.2); a wearable that said it takes no time is left alone */
	if (!link->clock_synced || !link->have_char[GW_CHAR_CURRENT_TIME])
		return false;
	return !link->have_features || (link->features.flags & WB_FEATURE_TIME_SET);
}

static void enter_setting_time(GwLink *link, int64_t now)
{
	uint8_t buf[16];
	size_t len;

	if (!time_allowed(link) || !encode_time(link, now, buf, sizeof(buf), &len)) {
		enter_reading_info(link, now);
		return;
	}
	set_state(link, GW_LINK_STATE_SETTING_TIME);
	link->pending = GW_CHAR_CURRENT_TIME;
	timer_set(link, T_STATE, now + link->cfg.gatt_timeout_us);
	queue_write(link, GW_CHAR_CURRENT_TIME, buf, len);
}

static const enum gw_char info_chars[] = {
	GW_CHAR_FEATURES, GW_CHAR_BATTERY, GW_CHAR_MANUFACTURER, GW_CHAR_MODEL,
	GW_CHAR_SERIAL, GW_CHAR_FIRMWARE,
};

static bool is_devinfo(enum gw_char ch)
{
	return ch == GW_CHAR_MANUFACTURER || ch == GW_CHAR_MODEL ||
	       ch == GW_CHAR_SERIAL || ch == GW_CHAR_FIRMWARE;
}

static void next_read(GwLink *link, int64_t now)
{
	for (link->step++; link->step < (int) G_N_ELEMENTS(info_chars); link->step++) {
		enum gw_char ch = info_chars[link->step];

		if (!link->have_char[ch] || (is_devinfo(ch) && link->info_done[ch]))
			continue;
		link->pending = ch;
		timer_set(link, T_STATE, now + link->cfg.gatt_timeout_us);
		queue_char(link, A_READ, ch);
		return;
	}
	enter_subscribing(link, now);
}

static void enter_reading_info(GwLink *link, int64_t now)
{
	set_state(link, GW_LINK_STATE_READING_INFO);
	link->step = -1;
	next_read(link, now);
}

/* Pain first: it is the one that cannot wait. */
static const enum gw_char notify_chars[] = {
	GW_CHAR_PAIN, GW_CHAR_POSTURE, GW_CHAR_STEPS, GW_CHAR_STATUS,
	GW_CHAR_HISTORY_DATA, GW_CHAR_HISTORY_CP, GW_CHAR_BATTERY,
};

static void next_notify(GwLink *link, int64_t now)
{
	for (link->step++; link->step < (int) G_N_ELEMENTS(notify_chars); link->step++) {
		enum gw_char ch = notify_chars[link->step];

		if (!link->have_char[ch])
			continue;
		/* Battery Level notify is optional in the profile */
		if (ch == GW_CHAR_BATTERY &&
		    !(link->props[ch] & (GW_PROP_NOTIFY | GW_PROP_INDICATE)))
			continue;
		link->pending = ch;
		timer_set(link, T_STATE, now + link->cfg.gatt_timeout_us);
		queue_char(link, A_NOTIFY, ch);
		return;
	}
	enter_sync(link, now);
}

static void enter_subscribing(GwLink *link, int64_t now)
{
	set_state(link, GW_LINK_STATE_SUBSCRIBING);
	link->step = -1;
	next_notify(link, now);
}

/* ---- the durable seq ---- */

static void advance_contiguous(GwLink *link)
{
	if (!link->have_durable)
		return;
	while (link->committed.r->len > 0) {
		struct seq_range *r = seqset_at(&link->committed, 0);

		if (r->first != (uint32_t) (link->durable + 1))
			break;
		link->durable = r->first + r->count - 1;
		g_array_remove_index(link->committed.r, 0);
	}
	seqset_remove_upto(&link->seen, link->durable);
}

static void advance_durable(GwLink *link, uint32_t seq)
{
	if (link->have_durable && !wb_seq_after(seq, link->durable))
		return;
	link->have_durable = true;
	link->durable = seq;
	seqset_remove_upto(&link->seen, seq);
	seqset_remove_upto(&link->committed, seq);
	advance_contiguous(link);
}

static bool is_dup(const GwLink *link, uint32_t seq)
{
	if (link->have_durable && !wb_seq_after(seq, link->durable))
		return true;
	return seqset_contains(&link->seen, seq);
}

static void ingest(GwLink *link, const struct wb_record *recs, size_t n)
{
	struct wb_record fresh[WB_BATCH_MAX];
	struct handover *h;
	struct action *a;
	size_t k = 0;

	for (size_t i = 0; i < n && k < G_N_ELEMENTS(fresh); i++) {
		if (is_dup(link, recs[i].seq)) {
			link->st.duplicates_dropped++;
			continue;
		}
		seqset_add(&link->seen, recs[i].seq);
		fresh[k++] = recs[i];
	}
	if (k == 0)
		return;
	h = g_malloc(sizeof(*h) + k * sizeof(h->seqs[0]));
	h->n = k;
	for (size_t i = 0; i < k; i++)
		h->seqs[i] = fresh[i].seq;
	g_queue_push_tail(&link->handovers, h);
	link->pending_records += k;
	link->st.records_stored += k;
	a = queue_action(link, A_STORE);
	a->recs = g_memdup2(fresh, k * sizeof(fresh[0]));
	a->len = k;
}

static bool delete_needed(const GwLink *link)
{
	return link->have_durable &&
	       (!link->have_deleted || wb_seq_after(link->durable, link->deleted));
}

/* A hole after S (a lost or malformed live record, or records the
 * wearable sent before we subscribed) holds S back; only the history can
 * fill it, so after a grace period a catch-up sync runs. */
static void update_gap(GwLink *link, int64_t now)
{
	bool gap;

	if (link->state != GW_LINK_STATE_LIVE || link->timer[T_SYNC_RETRY] != T_OFF ||
	    !link->have_features || !(link->features.flags & WB_FEATURE_HISTORY))
		return;
	if (link->seen.r->len == 0 || link->have_target)
		gap = false;	/* nothing, or only the store to wait for */
	else if (!link->have_durable)
		gap = true;
	else
		gap = !seqset_contains(&link->seen, link->durable + 1);
	if (!gap)
		timer_off(link, T_GAP);
	else if (link->timer[T_GAP] == T_OFF)
		timer_set(link, T_GAP, now + link->cfg.gap_grace_us);
}

/* ---- history control point ---- */

static void hcp_start(GwLink *link, int64_t now, enum hcp_op op,
		      enum wb_hcp_opcode opcode, enum wb_hcp_filter filter, uint32_t seq)
{
	struct wb_hcp_request req = { opcode, filter, seq };
	uint8_t buf[16];
	ssize_t n = wb_hcp_request_encode(&req, buf, sizeof(buf));

	g_return_if_fail(n > 0);
	link->hcp = op;
	link->hcp_acked = false;
	link->hcp_operand = seq;
	link->hcp_writes++;
	timer_set(link, T_HCP, now + link->cfg.gatt_timeout_us);
	queue_write(link, GW_CHAR_HISTORY_CP, buf, (size_t) n);
}

static void start_report(GwLink *link, int64_t now)
{
	link->sync_due = false;
	link->report_stale = false;
	timer_off(link, T_SYNC_RETRY);
	timer_off(link, T_GAP);
	set_state(link, GW_LINK_STATE_SYNCING);
	link->st.syncs_started++;
	link->report_count = 0;
	link->report_have_last = false;
	if (link->have_durable)
		hcp_start(link, now, HCP_REPORT, WB_HCP_REPORT_RECORDS, WB_HCP_AFTER_SEQ,
			  link->durable);
	else
		hcp_start(link, now, HCP_REPORT, WB_HCP_REPORT_RECORDS, WB_HCP_ALL, 0);
}

static void start_delete(GwLink *link, int64_t now)
{
	link->delete_due = false;
	hcp_start(link, now, HCP_DELETE, WB_HCP_DELETE_RECORDS, WB_HCP_UP_TO_SEQ,
		  link->durable);
}

static void start_abort(GwLink *link, int64_t now)
{
	hcp_start(link, now, HCP_ABORT, WB_HCP_ABORT, WB_HCP_ALL, 0);
}

static void sync_complete(GwLink *link, int64_t now)
{
	link->hcp = HCP_NONE;
	timer_off(link, T_HCP);
	link->history_synced = true;
	link->sync_run = 0;
	link->st.syncs_completed++;
	enter_live(link, now);
}

static void sync_finish_or_delete(GwLink *link, int64_t now)
{
	timer_off(link, T_STATE);	/* the commit wait is over */
	if (delete_needed(link)) {
		start_delete(link, now);
		return;
	}
	sync_complete(link, now);
}

/* The attempt failed but the link is fine: stay live, retry later. */
static void sync_failed(GwLink *link, int64_t now)
{
	link->hcp = HCP_NONE;
	timer_off(link, T_HCP);
	link->st.syncs_failed++;
	link->sync_run++;
	timer_set(link, T_SYNC_RETRY,
		  now + policy_delay(link, &link->cfg.sync_retry, link->sync_run));
	enter_live(link, now);
}

/* a..b (a not after b) lies in one range of s */
static bool seqset_covers(const struct seqset *s, uint32_t a, uint32_t b)
{
	for (guint i = 0; i < s->r->len; i++) {
		const struct seq_range *r = seqset_at(s, i);
		uint32_t off_a = a - r->first;
		uint32_t off_b = b - r->first;

		if (off_a < r->count && off_b < r->count && off_a <= off_b)
			return true;
	}
	return false;
}

/*
 * Is anything up to seq handed over but not committed? committed is a
 * subset of seen and both keep maximal ranges, so a stretch of seen is all
 * committed exactly when one committed range holds it: this costs the
 * number of ranges, not of pending records (a 24 h backlog is 86400).
 */
static bool pending_upto(const GwLink *link, uint32_t seq)
{
	for (guint i = 0; i < link->seen.r->len; i++) {
		const struct seq_range *r = seqset_at(&link->seen, i);
		uint32_t last = r->first + r->count - 1;

		if (wb_seq_after(r->first, seq))
			break;
		if (!seqset_covers(&link->committed, r->first,
				   wb_seq_after(last, seq) ? seq : last))
			return true;
	}
	return false;
}

/* A verified report said everything up to `target` was sent: once none of
 * it waits for a commit, S may jump there. */
static void check_target(GwLink *link, int64_t now)
{
	if (!link->have_target || pending_upto(link, link->target))
		return;
	link->have_target = false;
	advance_durable(link, link->target);
	if (link->state == GW_LINK_STATE_SYNCING && link->hcp == HCP_NONE)
		sync_finish_or_delete(link, now);
}

/* Trust "sent up to L" only if exactly what was announced arrived: a
 * notification lost between bluetoothd and us would otherwise become a
 * silent gap below S. */
static void report_verify(GwLink *link, uint32_t count, uint32_t last, int64_t now)
{
	link->hcp = HCP_NONE;
	timer_off(link, T_HCP);
	if (link->report_stale) {
		/* "sent up to L" is true, but part of it died with a failed
		 * commit and is no longer seen as waiting: trusting L would
		 * move S over records never stored. Ask again after S. */
		link->report_stale = false;
		enter_live(link, now);	/* sync_due: a new report at once */
		return;
	}
	if (!link->report_have_last || link->report_count != count ||
	    link->report_last != last) {
		sync_failed(link, now);
		return;
	}
	link->have_target = true;
	link->target = last;
	timer_set(link, T_STATE, now + link->cfg.commit_timeout_us);
	check_target(link, now);
}

static void report_done(GwLink *link, const struct wb_hcp_response *rsp, int64_t now)
{
	link->hcp = HCP_NONE;
	timer_off(link, T_HCP);

	switch (rsp->code) {
	case WB_HCP_SUCCESS:
		/* bluetoothd sends queued indications before queued
		 * notifications (src/shared/att.c), so the answer can
		 * overtake the last history batches: wait for them */
		if (link->report_count < rsp->count) {
			link->hcp = HCP_REPORT_TAIL;
			link->tail_count = rsp->count;
			link->tail_last = rsp->last_seq;
			timer_set(link, T_HCP, now + link->cfg.gatt_timeout_us);
			return;
		}
		report_verify(link, rsp->count, rsp->last_seq, now);
		return;
	case WB_HCP_NO_RECORDS:
		sync_finish_or_delete(link, now);
		return;
	case WB_HCP_BUSY:
		/* a procedure left over from an earlier connection */
		start_abort(link, now);
		return;
	case WB_HCP_OPCODE_NOT_SUPPORTED:
	case WB_HCP_INVALID_FILTER:
	case WB_HCP_ABORTED:
	case WB_HCP_ABORT_FAILED:
	case WB_HCP_STORAGE_ERROR:
		sync_failed(link, now);
		return;
	}
	sync_failed(link, now);
}

static void delete_over(GwLink *link, int64_t now)
{
	if (link->state == GW_LINK_STATE_SYNCING)
		sync_complete(link, now);
	else
		live_schedule(link, now);
}

static void delete_done(GwLink *link, const struct wb_hcp_response *rsp, int64_t now)
{
	link->hcp = HCP_NONE;
	timer_off(link, T_HCP);
	if (rsp->code == WB_HCP_SUCCESS || rsp->code == WB_HCP_NO_RECORDS) {
		link->have_deleted = true;
		link->deleted = link->hcp_operand;
		link->st.deletes++;
	}
	/* on failure the live delete timer tries again */
	delete_over(link, now);
}

static void hcp_procedure_failed(GwLink *link, int64_t now)
{
	enum hcp_op op = link->hcp;

	link->hcp = HCP_NONE;
	timer_off(link, T_HCP);
	switch (op) {
	case HCP_REPORT:
	case HCP_REPORT_TAIL:
	case HCP_ABORT:
		sync_failed(link, now);
		break;
	case HCP_DELETE:
		delete_over(link, now);
		break;
	case HCP_NONE:
		break;
	}
}

static void hcp_response(GwLink *link, const uint8_t *val, size_t len, int64_t now)
{
	struct wb_hcp_response rsp;
	struct wb_err werr = { 0, -1, NULL };
	int r = wb_hcp_response_decode(val, len, &rsp, &werr);

	if (r < 0) {
		report_malformed(link, GW_CHAR_HISTORY_CP, r, &werr);
		if (link->hcp == HCP_REPORT)
			start_abort(link, now);	/* we cannot tell whether it ended */
		else if (link->hcp == HCP_REPORT_TAIL)
			return;		/* it ended; the tail timer decides */
		else
			hcp_procedure_failed(link, now);
		return;
	}
	if (rsp.opcode != WB_HCP_RESPONSE_CODE)
		return;		/* COUNT_RESPONSE: we never ask */

	switch (link->hcp) {
	case HCP_REPORT:
		if (rsp.request == WB_HCP_REPORT_RECORDS)
			report_done(link, &rsp, now);
		break;
	case HCP_DELETE:
		if (rsp.request == WB_HCP_DELETE_RECORDS)
			delete_done(link, &rsp, now);
		break;
	case HCP_REPORT_TAIL:
		break;		/* answered already */
	case HCP_ABORT:
		/* the report ends "aborted" (or "success" if it won the race),
		 * then the abort itself is answered */
		if (rsp.request == WB_HCP_ABORT)
			hcp_procedure_failed(link, now);
		break;
	case HCP_NONE:
		break;
	}
}

static void hcp_write_done(GwLink *link, enum gw_ble_err err, int64_t now)
{
	if (link->hcp_writes > 0)
		link->hcp_writes--;
	if (link->state != GW_LINK_STATE_SYNCING && link->state != GW_LINK_STATE_LIVE)
		return;
	/* the reply to an older write (its procedure already answered) */
	if (link->hcp == HCP_NONE || link->hcp_acked || link->hcp_writes > 0)
		return;
	if (err != GW_BLE_OK) {
		if (error_skippable(err))
			hcp_procedure_failed(link, now);
		else
			link_fail(link, err, now);
		return;
	}
	link->hcp_acked = true;
	timer_set(link, T_HCP, now + link->cfg.hcp_timeout_us);
}

/* ---- live ---- */

static void live_write_time(GwLink *link, int64_t now)
{
	uint8_t buf[16];
	size_t len;

	if (link->time_write_busy || !time_allowed(link) ||
	    !encode_time(link, now, buf, sizeof(buf), &len))
		return;
	link->time_write_busy = true;
	timer_off(link, T_TIME);
	timer_set(link, T_GATT, now + link->cfg.gatt_timeout_us);
	queue_write(link, GW_CHAR_CURRENT_TIME, buf, len);
}

static void time_written(GwLink *link, int64_t now)
{
	link->time_written_at = now;
	link->st.time_writes++;
	if (link->state == GW_LINK_STATE_LIVE || link->state == GW_LINK_STATE_SYNCING)
		timer_set(link, T_TIME, now + link->cfg.time_resync_us);
}

static void live_schedule(GwLink *link, int64_t now)
{
	if (link->state != GW_LINK_STATE_LIVE || link->hcp != HCP_NONE)
		return;
	if (link->sync_due) {
		start_report(link, now);
		return;
	}
	if (link->delete_due) {
		link->delete_due = false;
		if (delete_needed(link))
			start_delete(link, now);
	}
}

static void enter_live(GwLink *link, int64_t now)
{
	set_state(link, GW_LINK_STATE_LIVE);
	if (link->timer[T_DELETE] == T_OFF)
		timer_set(link, T_DELETE, now + link->cfg.live_delete_interval_us);
	if (!link->time_write_busy && link->timer[T_TIME] == T_OFF && time_allowed(link)) {
		bool this_connection = link->time_written_at != GW_LINK_NEVER &&
				       link->time_written_at >= link->connected_since;

		timer_set(link, T_TIME, this_connection ?
			  link->time_written_at + link->cfg.time_resync_us : now);
	}
	update_gap(link, now);
	live_schedule(link, now);
}

static void enter_sync(GwLink *link, int64_t now)
{
	if (!link->have_features || !(link->features.flags & WB_FEATURE_HISTORY)) {
		/* no history: live only, nothing is ever deleted */
		enter_live(link, now);
		return;
	}
	start_report(link, now);
}

/* ---- values ---- */

static void live_batch(GwLink *link, enum gw_char ch, const uint8_t *val, size_t len,
		       int64_t now)
{
	struct wb_record recs[WB_BATCH_MAX];
	struct wb_err werr = { 0, -1, NULL };
	int n = wb_batch_decode(val, len, recs, G_N_ELEMENTS(recs), &werr);

	if (n < 0) {
		/* counted and reported; the record is still in the wearable's
		 * flash and S stops before it */
		report_malformed(link, ch, n, &werr);
		return;
	}
	ingest(link, recs, (size_t) n);
	update_gap(link, now);
}

static void history_batch(GwLink *link, const uint8_t *val, size_t len, int64_t now)
{
	struct wb_record recs[WB_BATCH_MAX];
	struct wb_err werr = { 0, -1, NULL };
	int n = wb_batch_decode(val, len, recs, G_N_ELEMENTS(recs), &werr);

	if (n < 0) {
		report_malformed(link, GW_CHAR_HISTORY_DATA, n, &werr);
		if (link->hcp == HCP_REPORT)
			start_abort(link, now);
		else if (link->hcp == HCP_REPORT_TAIL)
			sync_failed(link, now);	/* a hole: the count cannot match */
		return;
	}
	if (link->hcp == HCP_REPORT || link->hcp == HCP_REPORT_TAIL) {
		link->report_count += (uint32_t) n;
		link->report_have_last = true;
		link->report_last = recs[n - 1].seq;
		if (link->hcp == HCP_REPORT)
			timer_set(link, T_HCP, now + link->cfg.hcp_timeout_us);
	}
	ingest(link, recs, (size_t) n);
	if (link->hcp == HCP_REPORT_TAIL && link->report_count >= link->tail_count)
		report_verify(link, link->tail_count, link->tail_last, now);
	update_gap(link, now);
}

static bool handle_features(GwLink *link, const uint8_t *val, size_t len, int64_t now,
			    bool from_read)
{
	struct wb_features f;
	struct wb_err werr = { 0, -1, NULL };
	int r = wb_features_decode(val, len, &f, &werr);
	struct action *a;

	if (r < 0) {
		report_malformed(link, GW_CHAR_FEATURES, r, &werr);
		if (from_read)
			link_fail(link, GW_BLE_ERR_NOT_SUPPORTED, now);
		return false;
	}
	if (link->have_durable && wb_seq_after(link->durable, f.last_seq)) {
		/* seqs never go back on one wearable (protocol 1.11): this is
		 * a reset one, and everything it sends would be dropped as a
		 * duplicate */
		enter_repair(link, now, GW_LINK_REPAIR_SEQ_REGRESSED);
		return false;
	}
	link->features = f;
	link->have_features = true;
	if (!link->have_durable && (f.flags & WB_FEATURE_HISTORY)) {
		/* A wearable never synced: nothing before what it holds can
		 * still be fetched, so S starts just below that. From there a
		 * report that loses a notification still moves S contiguously
		 * and the next REPORT AFTER S fetches the rest; REPORT ALL
		 * would have to arrive whole to count. */
		advance_durable(link, f.stored > 0 ? (uint32_t) (f.first_seq - 1) : f.last_seq);
		link->have_deleted = true;
		link->deleted = link->durable;
	}
	a = queue_action(link, A_FEATURES);
	a->f = f;
	return true;
}

static void handle_battery(GwLink *link, const uint8_t *val, size_t len)
{
	struct wb_err werr = { 0, -1, NULL };
	uint8_t pct;
	int r = wb_battery_decode(val, len, &pct, &werr);

	if (r < 0) {
		report_malformed(link, GW_CHAR_BATTERY, r, &werr);
		return;
	}
	queue_action(link, A_BATTERY)->a = pct;
}

static void handle_devinfo(GwLink *link, enum gw_char ch, const uint8_t *val, size_t len)
{
	char buf[WB_DEVINFO_MAX + 1];
	struct wb_err werr = { 0, -1, NULL };
	int r = wb_devinfo_string_decode(val, len, buf, sizeof(buf), &werr);
	struct action *a;

	/* read once either way: a malformed string will not improve */
	link->info_done[ch] = true;
	if (r < 0) {
		report_malformed(link, ch, r, &werr);
		return;
	}
	a = queue_action(link, A_INFO);
	a->ch = ch;
	a->str = g_strdup(buf);
}

/* ---- public: lifetime ---- */

GwLink *gw_link_new(const char *address, const struct gw_link_config *cfg,
		    const struct gw_link_ops *ops, void *user_data)
{
	GwLink *link;

	g_return_val_if_fail(address != NULL, NULL);

	link = g_new0(GwLink, 1);
	link->address = g_strdup(address);
	if (cfg)
		link->cfg = *cfg;
	else
		gw_link_config_init(&link->cfg);
	if (ops)
		link->ops = *ops;
	link->user_data = user_data;
	link->state = GW_LINK_STATE_WAITING_ADAPTER;
	for (int t = 0; t < T_COUNT; t++)
		link->timer[t] = T_OFF;
	link->rng = link->cfg.seed ? link->cfg.seed : UINT64_C(0x9e3779b97f4a7c15);
	g_queue_init(&link->actions);
	g_queue_init(&link->handovers);
	link->seen_at = GW_LINK_NEVER;
	link->connected_since = GW_LINK_NEVER;
	link->time_written_at = GW_LINK_NEVER;
	link->layout = g_array_new(FALSE, FALSE, sizeof(struct gw_gatt_char));
	seqset_init(&link->seen);
	seqset_init(&link->committed);
	link->st.last_error = GW_BLE_OK;
	link->st.last_error_time = GW_LINK_NEVER;
	return link;
}

void gw_link_free(GwLink *link)
{
	if (!link)
		return;
	g_queue_clear_full(&link->actions, action_free);
	g_queue_clear_full(&link->handovers, g_free);
	seqset_fini(&link->seen);
	seqset_fini(&link->committed);
	g_clear_pointer(&link->layout, g_array_unref);
	g_free(link->address);
	g_free(link);
}

void gw_link_set_durable_seq(GwLink *link, uint32_t seq)
{
	g_return_if_fail(link != NULL);
	advance_durable(link, seq);
}

/* ---- public: events ---- */

void gw_link_adapter_ready(GwLink *link, bool ready, int64_t now)
{
	g_return_if_fail(link != NULL);
	link_enter(link);
	link->adapter_ready = ready;
	switch (link->state) {
	case GW_LINK_STATE_NEEDS_REPAIR:
	case GW_LINK_STATE_DISABLED:
		break;
	case GW_LINK_STATE_WAITING_ADAPTER:
		if (ready)
			link_scan(link, now);
		else
			timer_off(link, T_STATE);	/* no retry until it is back */
		break;
	case GW_LINK_STATE_SCANNING:
	case GW_LINK_STATE_CONNECTING:
	case GW_LINK_STATE_RESOLVING:
	case GW_LINK_STATE_CHECKING_LAYOUT:
	case GW_LINK_STATE_SETTING_TIME:
	case GW_LINK_STATE_READING_INFO:
	case GW_LINK_STATE_SUBSCRIBING:
	case GW_LINK_STATE_SYNCING:
	case GW_LINK_STATE_LIVE:
	case GW_LINK_STATE_DISCONNECTING:
	case GW_LINK_STATE_BACKOFF:
		if (!ready) {
			/* the adapter took every connection with it */
			connection_down(link, now);
			link->clear_after_disconnect = false;
			set_state(link, GW_LINK_STATE_WAITING_ADAPTER);
		}
		break;
	}
	link_leave(link);
}

void gw_link_device_seen(GwLink *link, int rssi, int64_t now)
{
	g_return_if_fail(link != NULL);
	link_enter(link);
	link->seen_at = now;
	link->rssi = rssi;
	if (link->state == GW_LINK_STATE_SCANNING)
		link_try_connect(link, now);
	link_leave(link);
}

void gw_link_device_lost(GwLink *link, int64_t now)
{
	g_return_if_fail(link != NULL);
	link_enter(link);
	link->seen_at = GW_LINK_NEVER;
	switch (link->state) {
	case GW_LINK_STATE_CONNECTING:
	case GW_LINK_STATE_RESOLVING:
	case GW_LINK_STATE_CHECKING_LAYOUT:
	case GW_LINK_STATE_SETTING_TIME:
	case GW_LINK_STATE_READING_INFO:
	case GW_LINK_STATE_SUBSCRIBING:
	case GW_LINK_STATE_SYNCING:
	case GW_LINK_STATE_LIVE:
		connection_down(link, now);	/* no object, no connection */
		link_fail(link, GW_BLE_ERR_DOES_NOT_EXIST, now);
		break;
	case GW_LINK_STATE_DISCONNECTING:
		/* no disconnect event will come for a vanished object */
		disconnect_complete(link, now);
		break;
	case GW_LINK_STATE_WAITING_ADAPTER:
	case GW_LINK_STATE_SCANNING:
	case GW_LINK_STATE_BACKOFF:
	case GW_LINK_STATE_NEEDS_REPAIR:
	case GW_LINK_STATE_DISABLED:
		break;
	}
	link_leave(link);
}

void gw_link_connect_done(GwLink *link, enum gw_ble_err err, int64_t now)
{
	g_return_if_fail(link != NULL);
	link_enter(link);
	if (link->state == GW_LINK_STATE_CONNECTING) {
		if (err != GW_BLE_OK)
			link_fail(link, err, now);
		else if (link->saw_disconnect && !link->connected)
			link_fail(link, GW_BLE_ERR_NOT_CONNECTED, now);
		else
			enter_resolving(link, now);
	} else if (link->state == GW_LINK_STATE_RESOLVING && err != GW_BLE_OK) {
		/* Connected=true came first, then Connect() failed anyway */
		link_fail(link, err, now);
	}
	link_leave(link);
}

void gw_link_connected_changed(GwLink *link, bool connected, int64_t now)
{
	g_return_if_fail(link != NULL);
	link_enter(link);
	if (connected) {
		switch (link->state) {
		case GW_LINK_STATE_CONNECTING:
		case GW_LINK_STATE_SCANNING:
		case GW_LINK_STATE_BACKOFF:
			/* ours, or BlueZ reconnected a bonded device by itself:
			 * either way, use it */
			enter_resolving(link, now);
			break;
		case GW_LINK_STATE_NEEDS_REPAIR:
		case GW_LINK_STATE_DISABLED:
			queue_action(link, A_DISCONNECT);
			break;
		case GW_LINK_STATE_WAITING_ADAPTER:
		case GW_LINK_STATE_RESOLVING:
		case GW_LINK_STATE_CHECKING_LAYOUT:
		case GW_LINK_STATE_SETTING_TIME:
		case GW_LINK_STATE_READING_INFO:
		case GW_LINK_STATE_SUBSCRIBING:
		case GW_LINK_STATE_SYNCING:
		case GW_LINK_STATE_LIVE:
		case GW_LINK_STATE_DISCONNECTING:
			break;
		}
		link_leave(link);
		return;
	}

	link->saw_disconnect = true;
	switch (link->state) {
	case GW_LINK_STATE_CONNECTING:
		/* Connect() still has to return; its error names the class
		 * (abort-by-local comes this way) */
		connection_down(link, now);
		break;
	case GW_LINK_STATE_RESOLVING:
	case GW_LINK_STATE_CHECKING_LAYOUT:
	case GW_LINK_STATE_SETTING_TIME:
	case GW_LINK_STATE_READING_INFO:
	case GW_LINK_STATE_SUBSCRIBING:
	case GW_LINK_STATE_SYNCING:
	case GW_LINK_STATE_LIVE:
		connection_down(link, now);
		link_fail(link, GW_BLE_ERR_NOT_CONNECTED, now);
		break;
	case GW_LINK_STATE_DISCONNECTING:
		disconnect_complete(link, now);
		break;
	case GW_LINK_STATE_WAITING_ADAPTER:
	case GW_LINK_STATE_SCANNING:
	case GW_LINK_STATE_BACKOFF:
	case GW_LINK_STATE_NEEDS_REPAIR:
	case GW_LINK_STATE_DISABLED:
		connection_down(link, now);
		break;
	}
	link_leave(link);
}

void gw_link_services_resolved(GwLink *link, bool resolved, int64_t now)
{
	g_return_if_fail(link != NULL);
	link_enter(link);
	link->resolved = resolved;
	switch (link->state) {
	case GW_LINK_STATE_RESOLVING:
		if (resolved)
			enter_checking_layout(link, now);
		break;
	case GW_LINK_STATE_CHECKING_LAYOUT:
	case GW_LINK_STATE_SETTING_TIME:
	case GW_LINK_STATE_READING_INFO:
	case GW_LINK_STATE_SUBSCRIBING:
	case GW_LINK_STATE_SYNCING:
	case GW_LINK_STATE_LIVE:
		if (!resolved) {
			/* Service Changed: BlueZ discovers again and the
			 * characteristic objects (and our subscriptions) are
			 * new; start over from the layout */
			live_timers_off(link);
			link->have_layout = false;
			g_array_set_size(link->layout, 0);
			set_state(link, GW_LINK_STATE_RESOLVING);
			timer_set(link, T_STATE, now + link->cfg.resolve_timeout_us);
		}
		break;
	case GW_LINK_STATE_WAITING_ADAPTER:
	case GW_LINK_STATE_SCANNING:
	case GW_LINK_STATE_CONNECTING:
	case GW_LINK_STATE_DISCONNECTING:
	case GW_LINK_STATE_BACKOFF:
	case GW_LINK_STATE_NEEDS_REPAIR:
	case GW_LINK_STATE_DISABLED:
		break;
	}
	link_leave(link);
}

void gw_link_gatt_layout(GwLink *link, const struct gw_gatt_char *chars, size_t n,
			 int64_t now)
{
	g_return_if_fail(link != NULL);
	g_return_if_fail(chars != NULL || n == 0);
	link_enter(link);
	g_array_set_size(link->layout, 0);
	g_array_append_vals(link->layout, chars, (guint) n);
	link->have_layout = true;
	switch (link->state) {
	case GW_LINK_STATE_RESOLVING:
		link->resolved = true;	/* a layout means BlueZ resolved */
		enter_checking_layout(link, now);
		break;
	case GW_LINK_STATE_CHECKING_LAYOUT:
		validate_layout(link, now);
		break;
	case GW_LINK_STATE_SETTING_TIME:
	case GW_LINK_STATE_READING_INFO:
	case GW_LINK_STATE_SUBSCRIBING:
	case GW_LINK_STATE_SYNCING:
	case GW_LINK_STATE_LIVE:
		/* new objects: validate and subscribe again */
		live_timers_off(link);
		enter_checking_layout(link, now);
		break;
	case GW_LINK_STATE_WAITING_ADAPTER:
	case GW_LINK_STATE_SCANNING:
	case GW_LINK_STATE_CONNECTING:
	case GW_LINK_STATE_DISCONNECTING:
	case GW_LINK_STATE_BACKOFF:
	case GW_LINK_STATE_NEEDS_REPAIR:
	case GW_LINK_STATE_DISABLED:
		break;		/* kept for when the link gets there */
	}
	link_leave(link);
}

void gw_link_read_done(GwLink *link, enum gw_char ch, enum gw_ble_err err,
		       const uint8_t *val, size_t len, int64_t now)
{
	g_return_if_fail(link != NULL);
	link_enter(link);
	if (link->state != GW_LINK_STATE_READING_INFO || ch != link->pending)
		goto out;	/* late: a state we already left */
	if (err != GW_BLE_OK) {
		/* features are what the sync needs; the rest is nice to have */
		if (ch == GW_CHAR_FEATURES || !error_skippable(err))
			link_fail(link, err, now);
		else
			next_read(link, now);
		goto out;
	}
	if (!val && len > 0)
		len = 0;
	switch (ch) {
	case GW_CHAR_FEATURES:
		if (!handle_features(link, val, len, now, true))
			goto out;
		break;
	case GW_CHAR_BATTERY:
		handle_battery(link, val, len);
		break;
	case GW_CHAR_MANUFACTURER:
	case GW_CHAR_MODEL:
	case GW_CHAR_SERIAL:
	case GW_CHAR_FIRMWARE:
		handle_devinfo(link, ch, val, len);
		break;
	case GW_CHAR_POSTURE:
	case GW_CHAR_STEPS:
	case GW_CHAR_PAIN:
	case GW_CHAR_HISTORY_CP:
	case GW_CHAR_HISTORY_DATA:
	case GW_CHAR_STATUS:
	case GW_CHAR_CURRENT_TIME:
		break;
	}
	next_read(link, now);
out:
	link_leave(link);
}

void gw_link_write_done(GwLink *link, enum gw_char ch, enum gw_ble_err err, int64_t now)
{
	g_return_if_fail(link != NULL);
	link_enter(link);
	if (ch == GW_CHAR_HISTORY_CP) {
		hcp_write_done(link, err, now);
	} else if (ch == GW_CHAR_CURRENT_TIME) {
		if (link->state == GW_LINK_STATE_SETTING_TIME &&
		    link->pending == GW_CHAR_CURRENT_TIME) {
			if (err == GW_BLE_OK)
				time_written(link, now);
			if (err != GW_BLE_OK && !error_skippable(err))
				link_fail(link, err, now);
			else
				enter_reading_info(link, now);
		} else if (link->time_write_busy) {
			link->time_write_busy = false;
			timer_off(link, T_GATT);
			if (err == GW_BLE_OK)
				time_written(link, now);
			else if (!error_skippable(err))
				link_fail(link, err, now);
			else
				timer_set(link, T_TIME, now + link->cfg.time_resync_us);
		}
	}
	link_leave(link);
}

void gw_link_notify_started(GwLink *link, enum gw_char ch, enum gw_ble_err err,
			    int64_t now)
{
	g_return_if_fail(link != NULL);
	link_enter(link);
	if (link->state == GW_LINK_STATE_SUBSCRIBING && ch == link->pending) {
		if (err == GW_BLE_OK)
			next_notify(link, now);
		else if (ch == GW_CHAR_BATTERY && error_skippable(err))
			next_notify(link, now);
		else
			link_fail(link, err, now);
	}
	link_leave(link);
}

void gw_link_value(GwLink *link, enum gw_char ch, const uint8_t *val, size_t len,
		   int64_t now)
{
	g_return_if_fail(link != NULL);
	link_enter(link);
	if (link->state == GW_LINK_STATE_NEEDS_REPAIR || link->state == GW_LINK_STATE_DISABLED)
		goto out;
	if (!val)
		len = 0;
	switch (ch) {
	case GW_CHAR_POSTURE:
	case GW_CHAR_STEPS:
	case GW_CHAR_PAIN:
	case GW_CHAR_STATUS:
		live_batch(link, ch, val, len, now);
		break;
	case GW_CHAR_HISTORY_DATA:
		history_batch(link, val, len, now);
		break;
	case GW_CHAR_HISTORY_CP:
		hcp_response(link, val, len, now);
		break;
	case GW_CHAR_BATTERY:
		handle_battery(link, val, len);
		break;
	case GW_CHAR_FEATURES:
		handle_features(link, val, len, now, false);
		break;
	case GW_CHAR_CURRENT_TIME:
	case GW_CHAR_MANUFACTURER:
	case GW_CHAR_MODEL:
	case GW_CHAR_SERIAL:
	case GW_CHAR_FIRMWARE:
		break;
	}
out:
	link_leave(link);
}

void gw_link_store_committed(GwLink *link, uint32_t up_to_seq, int64_t now)
{
	GList *l;
	bool found = false;

	g_return_if_fail(link != NULL);
	link_enter(link);
	for (l = link->handovers.head; l && !found; l = l->next) {
		const struct handover *h = l->data;

		found = h->seqs[h->n - 1] == up_to_seq;
	}
	if (!found)
		goto out;	/* not ours, or forgotten by store_failed */
	for (;;) {
		struct handover *h = g_queue_pop_head(&link->handovers);
		bool last = h->seqs[h->n - 1] == up_to_seq;

		for (size_t i = 0; i < h->n; i++)
			if (!link->have_durable || wb_seq_after(h->seqs[i], link->durable))
				seqset_add(&link->committed, h->seqs[i]);
		link->st.records_committed += h->n;
		link->pending_records -= h->n;
		g_free(h);
		if (last)
			break;
	}
	advance_contiguous(link);
	check_target(link, now);
	update_gap(link, now);
out:
	link_leave(link);
}

void gw_link_store_failed(GwLink *link, int64_t now)
{
	struct handover *h;

	g_return_if_fail(link != NULL);
	link_enter(link);
	/* forgotten seqs are no longer duplicates: the history brings them
	 * again, and S cannot pass them until they are committed */
	while ((h = g_queue_pop_head(&link->handovers))) {
		for (size_t i = 0; i < h->n; i++)
			seqset_remove(&link->seen, h->seqs[i]);
		link->pending_records -= h->n;
		g_free(h);
	}
	link->have_target = false;
	if (link->state == GW_LINK_STATE_LIVE && link->timer[T_SYNC_RETRY] == T_OFF) {
		link->sync_due = true;
		live_schedule(link, now);
	} else if (link->state == GW_LINK_STATE_SYNCING) {
		/* A report streaming now cannot prove S any more (report_verify);
		 * one waiting for its commits waits for nothing: either way
		 * the history is asked again after S, not after the commit
		 * timeout. A delete in flight is up to S: it finishes first. */
		link->sync_due = true;
		if (link->hcp == HCP_REPORT || link->hcp == HCP_REPORT_TAIL)
			link->report_stale = true;
		else if (link->hcp == HCP_NONE)
			enter_live(link, now);
	}
	link_leave(link);
}

void gw_link_clock(GwLink *link, bool synced, int64_t unix_us, int64_t now)
{
	g_return_if_fail(link != NULL);
	link_enter(link);
	link->clock_synced = synced;
	link->wall_offset = unix_us - now;
	if (!synced) {
		timer_off(link, T_TIME);
	} else if ((link->state == GW_LINK_STATE_LIVE || link->state == GW_LINK_STATE_SYNCING) &&
		   (link->time_written_at == GW_LINK_NEVER ||
		    link->time_written_at < link->connected_since)) {
		/* the clock became good while connected: set the wearable now */
		live_write_time(link, now);
	}
	link_leave(link);
}

/* ---- public: control ---- */

void gw_link_repaired(GwLink *link, bool new_identity, int64_t now)
{
	g_return_if_fail(link != NULL);
	link_enter(link);
	if (link->state != GW_LINK_STATE_NEEDS_REPAIR)
		goto out;
	memset(link->run, 0, sizeof(link->run));
	link->layout_fail_run = 0;
	if (new_identity) {
		link->have_durable = false;
		link->have_deleted = false;
		link->have_target = false;
		link->have_features = false;
		g_array_set_size(link->seen.r, 0);
		g_array_set_size(link->committed.r, 0);
		memset(link->info_done, 0, sizeof(link->info_done));
	}
	link_scan(link, now);
out:
	link_leave(link);
}

void gw_link_set_enabled(GwLink *link, bool enabled, int64_t now)
{
	g_return_if_fail(link != NULL);
	link_enter(link);
	if (!enabled && link->state != GW_LINK_STATE_DISABLED) {
		bool was = link->connected || link->state == GW_LINK_STATE_CONNECTING;

		connection_down(link, now);
		for (int t = 0; t < T_COUNT; t++)
			timer_off(link, t);
		set_state(link, GW_LINK_STATE_DISABLED);
		if (was)
			queue_action(link, A_DISCONNECT);
	} else if (enabled && link->state == GW_LINK_STATE_DISABLED) {
		memset(link->run, 0, sizeof(link->run));
		link_scan(link, now);
	}
	link_leave(link);
}

void gw_link_kick(GwLink *link, int64_t now)
{
	g_return_if_fail(link != NULL);
	link_enter(link);
	if (link->state == GW_LINK_STATE_SCANNING && link->connect_wanted)
		link_try_connect(link, now);
	link_leave(link);
}

static void state_timeout(GwLink *link, int64_t now)
{
	switch (link->state) {
	case GW_LINK_STATE_WAITING_ADAPTER:
		if (link->adapter_ready)
			link_scan(link, now);
		break;
	case GW_LINK_STATE_SCANNING:
		/* no advertisement for long: a bonded wearable may still take a
		 * direct connection (and if its object is gone, the error says so) */
		link->st.scan_timeouts++;
		link_try_connect(link, now);
		break;
	case GW_LINK_STATE_CONNECTING:
	case GW_LINK_STATE_RESOLVING:
	case GW_LINK_STATE_CHECKING_LAYOUT:
	case GW_LINK_STATE_SETTING_TIME:
	case GW_LINK_STATE_READING_INFO:
	case GW_LINK_STATE_SUBSCRIBING:
		link_fail(link, GW_BLE_ERR_TIMEOUT, now);
		break;
	case GW_LINK_STATE_SYNCING:
		/* the store is slow, not the link: go live, S moves and the
		 * live delete runs once the commits arrive */
		sync_complete(link, now);
		break;
	case GW_LINK_STATE_DISCONNECTING:
		disconnect_complete(link, now);
		break;
	case GW_LINK_STATE_BACKOFF:
		link_scan(link, now);
		break;
	case GW_LINK_STATE_LIVE:
	case GW_LINK_STATE_NEEDS_REPAIR:
	case GW_LINK_STATE_DISABLED:
		break;
	}
}

static void timer_fired(GwLink *link, enum link_timer t, int64_t now)
{
	switch (t) {
	case T_STATE:
		state_timeout(link, now);
		break;
	case T_HCP:
		if (link->hcp == HCP_REPORT_TAIL) {
			sync_failed(link, now);	/* the rest was lost: retry after S */
			break;
		}
		link_fail(link, GW_BLE_ERR_TIMEOUT, now);
		break;
	case T_GATT:
		link_fail(link, GW_BLE_ERR_TIMEOUT, now);
		break;
	case T_STABLE:
		memset(link->run, 0, sizeof(link->run));
		break;
	case T_DELETE:
		timer_set(link, T_DELETE, now + link->cfg.live_delete_interval_us);
		if (delete_needed(link)) {
			link->delete_due = true;
			live_schedule(link, now);
		}
		break;
	case T_SYNC_RETRY:
		link->sync_due = true;
		live_schedule(link, now);
		break;
	case T_GAP:
		link->sync_due = true;
		live_schedule(link, now);
		break;
	case T_TIME:
		live_write_time(link, now);
		break;
	case T_COUNT:
		break;
	}
}

void gw_link_tick(GwLink *link, int64_t now)
{
	g_return_if_fail(link != NULL);
	link_enter(link);
	/* earliest first; a handler may arm a timer that is already due (a
	 * zero backoff), so loop, with a bound against a zero-delay cycle */
	for (int guard = 0; guard < 64; guard++) {
		int first = -1;

		for (int t = 0; t < T_COUNT; t++)
			if (link->timer[t] <= now &&
			    (first < 0 || link->timer[t] < link->timer[first]))
				first = t;
		if (first < 0)
			break;
		timer_off(link, first);
		timer_fired(link, first, now);
	}
	link_leave(link);
}

int64_t gw_link_next_deadline(const GwLink *link)
{
	int64_t d = GW_LINK_NO_DEADLINE;

	g_return_val_if_fail(link != NULL, GW_LINK_NO_DEADLINE);
	for (int t = 0; t < T_COUNT; t++)
		if (link->timer[t] < d)
			d = link->timer[t];
	return d;
}

/* ---- public: reading ---- */

enum gw_link_state gw_link_get_state(const GwLink *link)
{
	g_return_val_if_fail(link != NULL, GW_LINK_STATE_DISABLED);
	return link->state;
}

const char *gw_link_get_address(const GwLink *link)
{
	g_return_val_if_fail(link != NULL, NULL);
	return link->address;
}

bool gw_link_wants_connect(const GwLink *link)
{
	g_return_val_if_fail(link != NULL, false);
	return link->state == GW_LINK_STATE_SCANNING && link->connect_wanted;
}

void gw_link_get_stats(const GwLink *link, int64_t now, struct gw_link_stats *ret)
{
	g_return_if_fail(link != NULL && ret != NULL);
	*ret = link->st;
	ret->state = link->state;
	memcpy(ret->consecutive, link->run, sizeof(ret->consecutive));
	ret->retry_at = link->state == GW_LINK_STATE_BACKOFF ?
			link->timer[T_STATE] : GW_LINK_NO_DEADLINE;
	ret->connected = link->connected;
	ret->connected_us = link->connected_total +
			    (link->connected ? now - link->connected_since : 0);
	ret->last_seen = link->seen_at;
	ret->rssi = link->rssi;
	ret->have_durable_seq = link->have_durable;
	ret->durable_seq = link->durable;
	ret->have_deleted_seq = link->have_deleted;
	ret->deleted_seq = link->deleted;
	ret->history_synced = link->history_synced;
	ret->pending_records = link->pending_records;
}

const char *gw_link_state_name(enum gw_link_state s)
{
	switch (s) {
	case GW_LINK_STATE_WAITING_ADAPTER:
		return "waiting-adapter";
	case GW_LINK_STATE_SCANNING:
		return "scanning";
	case GW_LINK_STATE_CONNECTING:
		return "connecting";
	case GW_LINK_STATE_RESOLVING:
		return "resolving";
	case GW_LINK_STATE_CHECKING_LAYOUT:
		return "checking-layout";
	case GW_LINK_STATE_SETTING_TIME:
		return "setting-time";
	case GW_LINK_STATE_READING_INFO:
		return "reading-info";
	case GW_LINK_STATE_SUBSCRIBING:
		return "subscribing";
	case GW_LINK_STATE_SYNCING:
		return "syncing";
	case GW_LINK_STATE_LIVE:
		return "live";
	case GW_LINK_STATE_DISCONNECTING:
		return "disconnecting";
	case GW_LINK_STATE_BACKOFF:
		return "backoff";
	case GW_LINK_STATE_NEEDS_REPAIR:
		return "needs-repair";
	case GW_LINK_STATE_DISABLED:
		return "disabled";
	}
	return "invalid";
}

const char *gw_link_action_name(enum gw_link_action a)
{
	switch (a) {
	case GW_LINK_ACTION_NONE:
		return "none";
	case GW_LINK_ACTION_DISCONNECT:
		return "disconnect";
	case GW_LINK_ACTION_CLEAR_STALE:
		return "clear-stale";
	case GW_LINK_ACTION_WAIT_DISCONNECT:
		return "wait-disconnect";
	case GW_LINK_ACTION_WAIT_ADAPTER:
		return "wait-adapter";
	case GW_LINK_ACTION_RESCAN:
		return "rescan";
	case GW_LINK_ACTION_REPAIR:
		return "repair";
	}
	return "invalid";
}

const char *gw_link_repair_name(enum gw_link_repair r)
{
	switch (r) {
	case GW_LINK_REPAIR_BOND_LOST:
		return "bond-lost";
	case GW_LINK_REPAIR_SEQ_REGRESSED:
		return "seq-regressed";
	}
	return "invalid";
}
