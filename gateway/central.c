/* SPDX-License-Identifier: MIT */
/*
 * The BLE central (see central.h): links for the allowlisted wearables,
 * adapter tracking, discovery policy and the adapter recovery ladder.
 *
 * Every public call handles its event, then runs central_update(), which
 * compares what is wanted (links told the adapter is ready, discovery
 * running, a slot given to a waiting link, a power cycle) with what was
 * done and queues the difference. The central's own actions are queued
 * and run at the end of the outermost call, like the links' (link.c), and
 * the update is repeated until it has nothing more to do, so an op that
 * answers synchronously (a fake adapter) is handled like a later event.
 */
#include <string.h>

#include "central.h"

#define T_OFF GW_LINK_NO_DEADLINE
#define IGNORED_CAP 256

#define MS(x) ((int64_t) (x) * 1000)
#define SEC(x) ((int64_t) (x) * 1000000)

enum cycle_phase {
	CYCLE_NONE = 0,
	CYCLE_OFF_SENT,		/* Powered=false asked, waiting to see it */
	CYCLE_HOLD,		/* off: waiting power_off_hold_us */
	CYCLE_ON_SENT,		/* Powered=true asked, waiting to see it */
};

enum caction_kind {
	CA_START_DISCOVERY,
	CA_STOP_DISCOVERY,
	CA_SET_POWERED,
	CA_ADAPTER_CHANGED,
	CA_RECOVERY,
};

struct caction {
	enum caction_kind kind;
	int a, b;
};

struct entry {
	GwCentral *c;
	GwLink *link;
	char *address;		/* upper case */
	int64_t seen_at;
};

struct gw_central {
	struct gw_central_config cfg;
	char *service_uuid;
	struct gw_central_ops ops;
	void *user_data;

	GPtrArray *entries;	/* struct entry, allowlist order */
	GHashTable *by_addr;	/* upper-case address -> struct entry */

	/* what bluez.c reported */
	bool bluez;
	bool present;
	bool powered;

	enum gw_central_adapter adapter;	/* last reported */
	bool links_ready;			/* last told to the links */
	enum cycle_phase cycle;
	int64_t t_power;			/* the cycle phase's deadline */
	int64_t t_power_on;			/* adapter off: next Powered=true */
	GArray *cycles;				/* int64_t times of recent power cycles */
	int64_t wedged_until;
	unsigned int failure_run;

	bool discovering;
	int64_t want_since;			/* discovery wanted without a break since */
	int64_t t_restart;
	int64_t disc_retry_at;
	int64_t last_found;

	guint rr;				/* round robin for connect slots */
	GHashTable *ignored;
	GHashTable *ignored_wearables;

	GQueue actions;
	unsigned int depth;
	bool dirty;				/* a link changed under an op: update again */
	int64_t now;				/* of the outermost call */

	struct gw_central_stats st;		/* counters */
};

void gw_central_config_init(struct gw_central_config *cfg)
{
	g_return_if_fail(cfg != NULL);

	memset(cfg, 0, sizeof(*cfg));
	gw_link_config_init(&cfg->link);
	cfg->service_uuid = NULL;
	cfg->discovery_restart_us = SEC(60);
	cfg->discovery_retry_us = SEC(5);
	cfg->max_connecting = 1;
	cfg->wedge_failures = 6;
	cfg->nothing_found_us = SEC(15 * 60);
	cfg->power_cycle_budget = 3;
	cfg->power_cycle_window_us = SEC(3600);
	cfg->power_off_hold_us = SEC(2);
	cfg->power_timeout_us = SEC(10);
	cfg->power_on_retry_us = SEC(30);
	cfg->wedged_backoff_us = SEC(3600);
}

/* ---- queued actions ---- */

static void queue_c(GwCentral *c, enum caction_kind kind, int a, int b)
{
	struct caction *x = g_new0(struct caction, 1);

	x->kind = kind;
	x->a = a;
	x->b = b;
	g_queue_push_tail(&c->actions, x);
}

static void run_caction(GwCentral *c, const struct caction *x)
{
	const struct gw_central_ops *o = &c->ops;

	switch (x->kind) {
	case CA_START_DISCOVERY:
		if (o->start_discovery)
			o->start_discovery(c->service_uuid, c->user_data);
		break;
	case CA_STOP_DISCOVERY:
		if (o->stop_discovery)
			o->stop_discovery(c->user_data);
		break;
	case CA_SET_POWERED:
		if (o->set_powered)
			o->set_powered(x->a != 0, c->user_data);
		break;
	case CA_ADAPTER_CHANGED:
		if (o->adapter_changed)
			o->adapter_changed((enum gw_central_adapter) x->a,
					   (enum gw_central_adapter) x->b, c->user_data);
		break;
	case CA_RECOVERY:
		if (o->recovery)
			o->recovery((enum gw_central_recovery) x->a, c->user_data);
		break;
	}
}

/* ---- the per-link ops: forward with the central's user_data ---- */

static GwCentral *ec(void *ud)
{
	return ((struct entry *) ud)->c;
}

static void w_connect(const char *dev, void *ud)
{
	GwCentral *c = ec(ud);

	if (c->ops.link.connect)
		c->ops.link.connect(dev, c->user_data);
}

static void w_disconnect(const char *dev, void *ud)
{
	GwCentral *c = ec(ud);

	if (c->ops.link.disconnect)
		c->ops.link.disconnect(dev, c->user_data);
}

static void w_remove_device_cache(const char *dev, void *ud)
{
	GwCentral *c = ec(ud);

	if (c->ops.link.remove_device_cache)
		c->ops.link.remove_device_cache(dev, c->user_data);
}

static void w_read_char(const char *dev, enum gw_char ch, void *ud)
{
	GwCentral *c = ec(ud);

	if (c->ops.link.read_char)
		c->ops.link.read_char(dev, ch, c->user_data);
}

static void w_write_char(const char *dev, enum gw_char ch, const uint8_t *val, size_t len,
			 void *ud)
{
	GwCentral *c = ec(ud);

	if (c->ops.link.write_char)
		c->ops.link.write_char(dev, ch, val, len, c->user_data);
}

static void w_start_notify(const char *dev, enum gw_char ch, void *ud)
{
	GwCentral *c = ec(ud);

	if (c->ops.link.start_notify)
		c->ops.link.start_notify(dev, ch, c->user_data);
}

static void w_store_records(const char *dev, const struct wb_record *recs, size_t n,
			    void *ud)
{
	GwCentral *c = ec(ud);

	if (c->ops.link.store_records)
		c->ops.link.store_records(dev, recs, n, c->user_data);
}

static void w_state_changed(const char *dev, enum gw_link_state old_state,
			    enum gw_link_state new_state, void *ud)
{
	GwCentral *c = ec(ud);

	/* a connection came up: the adapter works */
	if (new_state == GW_LINK_STATE_RESOLVING)
		c->failure_run = 0;
	/* a slot may have freed, discovery may be wanted or not */
	c->dirty = true;
	if (c->ops.link.state_changed)
		c->ops.link.state_changed(dev, old_state, new_state, c->user_data);
}

static bool any_link_up(const GwCentral *c);

static void w_error(const char *dev, enum gw_ble_err err, enum gw_link_state in_state,
		    void *ud)
{
	struct entry *e = ud;
	GwCentral *c = e->c;

	/* Only failures of a wearable that is advertising point at the
	 * adapter: one out of range fails too, and that says nothing. Nor
	 * do failures while another link works: that one proves the
	 * adapter is fine. */
	if ((err == GW_BLE_ERR_IN_PROGRESS || err == GW_BLE_ERR_TIMEOUT ||
	     err == GW_BLE_ERR_FAILED) && e->seen_at != GW_LINK_NEVER &&
	    c->now - e->seen_at <= c->cfg.link.seen_fresh_us && !any_link_up(c)) {
		c->failure_run++;
		c->dirty = true;
	}
	if (c->ops.link.error)
		c->ops.link.error(dev, err, in_state, c->user_data);
}

static void w_needs_repair(const char *dev, enum gw_link_repair why, void *ud)
{
	GwCentral *c = ec(ud);

	if (c->ops.link.needs_repair)
		c->ops.link.needs_repair(dev, why, c->user_data);
}

static void w_device_info(const char *dev, enum gw_char which, const char *value, void *ud)
{
	GwCentral *c = ec(ud);

	if (c->ops.link.device_info)
		c->ops.link.device_info(dev, which, value, c->user_data);
}

static void w_battery(const char *dev, unsigned int pct, void *ud)
{
	GwCentral *c = ec(ud);

	if (c->ops.link.battery)
		c->ops.link.battery(dev, pct, c->user_data);
}

static void w_features(const char *dev, const struct wb_features *f, void *ud)
{
	GwCentral *c = ec(ud);

	if (c->ops.link.features)
		c->ops.link.features(dev, f, c->user_data);
}

static void w_malformed(const char *dev, enum gw_char ch, int err,
			const struct wb_err *where, void *ud)
{
	GwCentral *c = ec(ud);

	if (c->ops.link.malformed)
		c->ops.link.malformed(dev, ch, err, where, c->user_data);
}

static uint32_t w_random(void *ud)
{
	GwCentral *c = ec(ud);

	return c->ops.link.random(c->user_data);
}

static bool adapter_usable(const GwCentral *c)
{
	return c->bluez && c->present && c->powered && c->cycle == CYCLE_NONE;
}

static unsigned int count_connecting(const GwCentral *c, const struct entry *except)
{
	unsigned int n = 0;

	for (guint i = 0; i < c->entries->len; i++) {
		const struct entry *e = g_ptr_array_index(c->entries, i);

		if (e != except && gw_link_get_state(e->link) == GW_LINK_STATE_CONNECTING)
			n++;
	}
	return n;
}

static bool w_may_connect(const char *dev, void *ud)
{
	struct entry *e = ud;
	GwCentral *c = e->c;

	(void) dev;
	return adapter_usable(c) && count_connecting(c, e) < c->cfg.max_connecting;
}

/* ---- helpers ---- */

static struct entry *lookup(const GwCentral *c, const char *address)
{
	g_autofree char *key = NULL;

	if (!address)
		return NULL;
	key = g_ascii_strup(address, -1);
	return g_hash_table_lookup(c->by_addr, key);
}

static bool seen_fresh(const GwCentral *c, const struct entry *e, int64_t now)
{
	return e->seen_at != GW_LINK_NEVER && now - e->seen_at <= c->cfg.link.seen_fresh_us;
}

static bool link_up(enum gw_link_state s)
{
	switch (s) {
	case GW_LINK_STATE_RESOLVING:
	case GW_LINK_STATE_CHECKING_LAYOUT:
	case GW_LINK_STATE_SETTING_TIME:
	case GW_LINK_STATE_READING_INFO:
	case GW_LINK_STATE_SUBSCRIBING:
	case GW_LINK_STATE_SYNCING:
	case GW_LINK_STATE_LIVE:
		return true;
	case GW_LINK_STATE_WAITING_ADAPTER:
	case GW_LINK_STATE_SCANNING:
	case GW_LINK_STATE_CONNECTING:
	case GW_LINK_STATE_DISCONNECTING:
	case GW_LINK_STATE_BACKOFF:
	case GW_LINK_STATE_NEEDS_REPAIR:
	case GW_LINK_STATE_DISABLED:
		return false;
	}
	return false;
}

/* A connected wearable proves the adapter works: the ladder never power
 * cycles under a good link for the sake of a misbehaving one. */
static bool any_link_up(const GwCentral *c)
{
	for (guint i = 0; i < c->entries->len; i++) {
		const struct entry *e = g_ptr_array_index(c->entries, i);

		if (link_up(gw_link_get_state(e->link)))
			return true;
	}
	return false;
}

/* Waiting for an advertisement, or about to. */
static bool missing(const GwCentral *c, const struct entry *e, int64_t now)
{
	enum gw_link_state s = gw_link_get_state(e->link);

	return (s == GW_LINK_STATE_SCANNING || s == GW_LINK_STATE_BACKOFF) &&
	       !seen_fresh(c, e, now);
}

static bool discovery_wanted(const GwCentral *c, int64_t now)
{
	if (!adapter_usable(c))
		return false;
	for (guint i = 0; i < c->entries->len; i++)
		if (missing(c, g_ptr_array_index(c->entries, i), now))
			return true;
	return false;
}

static enum gw_central_adapter compute_adapter(const GwCentral *c)
{
	if (!c->bluez)
		return GW_CENTRAL_ADAPTER_NO_BLUEZ;
	if (!c->present)
		return GW_CENTRAL_ADAPTER_ABSENT;
	if (c->cycle != CYCLE_NONE)
		return GW_CENTRAL_ADAPTER_CYCLING;
	return c->powered ? GW_CENTRAL_ADAPTER_READY : GW_CENTRAL_ADAPTER_OFF;
}

/* When the silent-discovery rung would fire, or T_OFF. */
static int64_t silent_deadline(const GwCentral *c)
{
	int64_t from;

	if (!c->discovering || c->want_since == GW_LINK_NEVER || any_link_up(c))
		return T_OFF;
	from = c->last_found != GW_LINK_NEVER && c->last_found > c->want_since ?
	       c->last_found : c->want_since;
	from += c->cfg.nothing_found_us;
	if (c->wedged_until != GW_LINK_NEVER && c->wedged_until > from)
		from = c->wedged_until;
	return from;
}

static void power_cycle(GwCentral *c, int64_t now, enum gw_central_recovery why)
{
	guint keep = 0;

	if (!adapter_usable(c) || any_link_up(c))
		return;
	if (c->wedged_until != GW_LINK_NEVER && now < c->wedged_until)
		return;
	c->wedged_until = GW_LINK_NEVER;

	for (guint i = 0; i < c->cycles->len; i++) {
		int64_t t = g_array_index(c->cycles, int64_t, i);

		if (now - t < c->cfg.power_cycle_window_us)
			g_array_index(c->cycles, int64_t, keep++) = t;
	}
	g_array_set_size(c->cycles, keep);
	c->failure_run = 0;

	if (c->cycles->len >= c->cfg.power_cycle_budget) {
		/* cycling more would only keep the radio off; a human, or a
		 * reboot, has to look at it */
		c->wedged_until = now + c->cfg.wedged_backoff_us;
		c->want_since = now;
		queue_c(c, CA_RECOVERY, GW_CENTRAL_RECOVERY_WEDGED, 0);
		return;
	}
	g_array_append_val(c->cycles, now);
	c->st.power_cycles++;
	c->cycle = CYCLE_OFF_SENT;
	c->t_power = now + c->cfg.power_timeout_us;
	queue_c(c, CA_RECOVERY, why, 0);
	queue_c(c, CA_SET_POWERED, 0, 0);
}

static void kick_waiting(GwCentral *c, int64_t now)
{
	guint n = c->entries->len;

	if (n == 0 || !adapter_usable(c))
		return;
	for (guint k = 0; k < n; k++) {
		guint i = (c->rr + k) % n;
		struct entry *e = g_ptr_array_index(c->entries, i);

		if (count_connecting(c, NULL) >= c->cfg.max_connecting)
			return;
		if (!gw_link_wants_connect(e->link))
			continue;
		gw_link_kick(e->link, now);
		if (gw_link_get_state(e->link) == GW_LINK_STATE_CONNECTING)
			c->rr = (i + 1) % n;
	}
}

static void central_update(GwCentral *c, int64_t now)
{
	enum gw_central_adapter a = compute_adapter(c);
	bool ready = a == GW_CENTRAL_ADAPTER_READY;
	bool want;

	if (a != c->adapter) {
		queue_c(c, CA_ADAPTER_CHANGED, c->adapter, a);
		c->adapter = a;
	}

	if (a == GW_CENTRAL_ADAPTER_OFF) {
		if (c->t_power_on == T_OFF)
			c->t_power_on = now + c->cfg.power_timeout_us;
	} else {
		c->t_power_on = T_OFF;
	}

	if (!ready) {
		/* BlueZ drops discovery with the adapter */
		c->discovering = false;
		c->t_restart = T_OFF;
		c->want_since = GW_LINK_NEVER;
	}
	if (ready != c->links_ready) {
		c->links_ready = ready;
		for (guint i = 0; i < c->entries->len; i++) {
			struct entry *e = g_ptr_array_index(c->entries, i);

			gw_link_adapter_ready(e->link, ready, now);
		}
	}

	kick_waiting(c, now);

	want = discovery_wanted(c, now);
	if (want) {
		if (c->want_since == GW_LINK_NEVER)
			c->want_since = now;
		if (!c->discovering && now >= c->disc_retry_at) {
			c->discovering = true;
			c->st.discovery_starts++;
			c->t_restart = now + c->cfg.discovery_restart_us;
			queue_c(c, CA_START_DISCOVERY, 0, 0);
		}
	} else {
		c->want_since = GW_LINK_NEVER;
		if (c->discovering) {
			c->discovering = false;
			c->t_restart = T_OFF;
			queue_c(c, CA_STOP_DISCOVERY, 0, 0);
		}
	}

	if (ready && c->failure_run >= c->cfg.wedge_failures)
		power_cycle(c, now, GW_CENTRAL_RECOVERY_CYCLE_FAILURES);
	else if (ready && silent_deadline(c) <= now)
		power_cycle(c, now, GW_CENTRAL_RECOVERY_CYCLE_SILENT);
}

static void central_enter(GwCentral *c, int64_t now)
{
	if (c->depth++ == 0)
		c->now = now;
}

static void central_leave(GwCentral *c, int64_t now)
{
	struct caction *x;

	if (c->depth > 1) {
		c->depth--;
		c->dirty = true;
		return;
	}
	/* until nothing changes: an action's synchronous answer, or a link
	 * moving under an op, may want another step */
	for (int guard = 0; guard < 32; guard++) {
		c->dirty = false;
		central_update(c, now);
		if (g_queue_is_empty(&c->actions) && !c->dirty)
			break;
		while ((x = g_queue_pop_head(&c->actions))) {
			run_caction(c, x);
			g_free(x);
		}
	}
	c->depth--;
}

static void entry_free(gpointer p)
{
	struct entry *e = p;

	gw_link_free(e->link);
	g_free(e->address);
	g_free(e);
}

/* ---- public: lifetime ---- */

GwCentral *gw_central_new(const struct gw_central_config *cfg,
			  const struct gw_central_ops *ops, void *user_data)
{
	g_autoptr(GwCentral) c = g_new0(GwCentral, 1);
	struct gw_link_ops lops = {
		.connect = w_connect,
		.disconnect = w_disconnect,
		.remove_device_cache = w_remove_device_cache,
		.read_char = w_read_char,
		.write_char = w_write_char,
		.start_notify = w_start_notify,
		.store_records = w_store_records,
		.state_changed = w_state_changed,
		.error = w_error,
		.needs_repair = w_needs_repair,
		.device_info = w_device_info,
		.battery = w_battery,
		.features = w_features,
		.malformed = w_malformed,
		.random = NULL,
		.may_connect = w_may_connect,
	};

	g_queue_init(&c->actions);
	c->entries = g_ptr_array_new_with_free_func(entry_free);
	c->by_addr = g_hash_table_new(g_str_hash, g_str_equal);
	c->ignored = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	c->ignored_wearables = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	c->cycles = g_array_new(FALSE, FALSE, sizeof(int64_t));
	if (cfg)
		c->cfg = *cfg;
	else
		gw_central_config_init(&c->cfg);
	c->cfg.allowlist = NULL;	/* copied below, not kept */
	if (c->cfg.max_connecting == 0)
		c->cfg.max_connecting = 1;
	c->service_uuid = g_strdup(cfg && cfg->service_uuid ? cfg->service_uuid
				   : WB_UUID_SERVICE);
	c->cfg.service_uuid = c->service_uuid;
	if (ops)
		c->ops = *ops;
	c->user_data = user_data;
	if (c->ops.link.random)
		lops.random = w_random;

	c->adapter = GW_CENTRAL_ADAPTER_NO_BLUEZ;
	c->t_power = T_OFF;
	c->t_power_on = T_OFF;
	c->t_restart = T_OFF;
	c->disc_retry_at = INT64_MIN;
	c->want_since = GW_LINK_NEVER;
	c->last_found = GW_LINK_NEVER;
	c->wedged_until = GW_LINK_NEVER;

	for (size_t i = 0; cfg && i < cfg->n_allowlist; i++) {
		struct gw_link_config lc = c->cfg.link;
		struct entry *e;

		g_return_val_if_fail(cfg->allowlist && cfg->allowlist[i], NULL);
		e = g_new0(struct entry, 1);
		e->c = c;
		e->address = g_ascii_strup(cfg->allowlist[i], -1);
		e->seen_at = GW_LINK_NEVER;
		if (g_hash_table_contains(c->by_addr, e->address)) {
			entry_free(e);
			continue;	/* listed twice */
		}
		/* each link its own jitter sequence: links that failed
		 * together must not retry together */
		lc.seed = c->cfg.link.seed + (i + 1) * UINT64_C(0x9e3779b97f4a7c15);
		e->link = gw_link_new(e->address, &lc, &lops, e);
		g_ptr_array_add(c->entries, e);
		g_hash_table_insert(c->by_addr, e->address, e);
	}
	return g_steal_pointer(&c);
}

void gw_central_free(GwCentral *c)
{
	if (!c)
		return;
	g_queue_clear_full(&c->actions, g_free);
	g_clear_pointer(&c->by_addr, g_hash_table_unref);
	g_clear_pointer(&c->entries, g_ptr_array_unref);
	g_clear_pointer(&c->ignored, g_hash_table_unref);
	g_clear_pointer(&c->ignored_wearables, g_hash_table_unref);
	g_clear_pointer(&c->cycles, g_array_unref);
	g_free(c->service_uuid);
	g_free(c);
}

/* ---- public: adapter events ---- */

void gw_central_bluez_present(GwCentral *c, bool present, int64_t now)
{
	g_return_if_fail(c != NULL);
	central_enter(c, now);
	c->bluez = present;
	if (!present) {
		/* whatever bluetoothd had is gone with it; when it comes back
		 * the adapter is reported afresh */
		c->present = false;
		c->powered = false;
		c->cycle = CYCLE_NONE;
		c->t_power = T_OFF;
		c->failure_run = 0;
	}
	central_leave(c, now);
}

void gw_central_adapter(GwCentral *c, bool present, bool powered, int64_t now)
{
	g_return_if_fail(c != NULL);
	central_enter(c, now);
	c->present = present;
	c->powered = present && powered;
	if (!present) {
		c->cycle = CYCLE_NONE;
		c->t_power = T_OFF;
	} else if (c->cycle == CYCLE_OFF_SENT && !c->powered) {
		c->cycle = CYCLE_HOLD;
		c->t_power = now + c->cfg.power_off_hold_us;
	} else if (c->cycle == CYCLE_ON_SENT && c->powered) {
		c->cycle = CYCLE_NONE;
		c->t_power = T_OFF;
	}
	central_leave(c, now);
}

void gw_central_discovery_result(GwCentral *c, enum gw_ble_err err, int64_t now)
{
	g_return_if_fail(c != NULL);
	central_enter(c, now);
	if (err != GW_BLE_OK && err != GW_BLE_ERR_IN_PROGRESS && c->discovering) {
		c->discovering = false;
		c->t_restart = T_OFF;
		c->st.discovery_failures++;
		c->disc_retry_at = now + c->cfg.discovery_retry_us;
	}
	central_leave(c, now);
}

static bool has_uuid(const char *const *uuids, const char *uuid)
{
	for (size_t i = 0; uuids && uuids[i]; i++)
		if (g_ascii_strcasecmp(uuids[i], uuid) == 0)
			return true;
	return false;
}

void gw_central_device_found(GwCentral *c, const char *address, int rssi,
			     const char *const *uuids, int64_t now)
{
	struct entry *e;

	g_return_if_fail(c != NULL && address != NULL);
	central_enter(c, now);
	c->last_found = now;
	e = lookup(c, address);
	if (e) {
		e->seen_at = now;
		gw_link_device_seen(e->link, rssi, now);
	} else {
		/* never connected: counted so the doctor can say "an
		 * unenrolled wearable is nearby" */
		c->st.ignored_adverts++;
		if (g_hash_table_size(c->ignored) < IGNORED_CAP)
			g_hash_table_add(c->ignored, g_ascii_strup(address, -1));
		if (has_uuid(uuids, c->service_uuid) &&
		    g_hash_table_size(c->ignored_wearables) < IGNORED_CAP)
			g_hash_table_add(c->ignored_wearables, g_ascii_strup(address, -1));
	}
	central_leave(c, now);
}

void gw_central_device_removed(GwCentral *c, const char *address, int64_t now)
{
	struct entry *e;

	g_return_if_fail(c != NULL);
	central_enter(c, now);
	e = lookup(c, address);
	if (e) {
		e->seen_at = GW_LINK_NEVER;
		gw_link_device_lost(e->link, now);
	}
	central_leave(c, now);
}

/* ---- public: per-device events ---- */

#define DISPATCH(c, address, now, call)				\
	do {							\
		struct entry *e_;				\
		g_return_if_fail((c) != NULL);			\
		central_enter((c), (now));			\
		e_ = lookup((c), (address));			\
		if (e_) {					\
			GwLink *l_ = e_->link;			\
			call;					\
		}						\
		central_leave((c), (now));			\
	} while (0)

void gw_central_connect_done(GwCentral *c, const char *address, enum gw_ble_err err,
			     int64_t now)
{
	DISPATCH(c, address, now, gw_link_connect_done(l_, err, now));
}

void gw_central_connected_changed(GwCentral *c, const char *address, bool connected,
				  int64_t now)
{
	DISPATCH(c, address, now, gw_link_connected_changed(l_, connected, now));
}

void gw_central_services_resolved(GwCentral *c, const char *address, bool resolved,
				  int64_t now)
{
	DISPATCH(c, address, now, gw_link_services_resolved(l_, resolved, now));
}

void gw_central_gatt_layout(GwCentral *c, const char *address,
			    const struct gw_gatt_char *chars, size_t n, int64_t now)
{
	DISPATCH(c, address, now, gw_link_gatt_layout(l_, chars, n, now));
}

void gw_central_read_done(GwCentral *c, const char *address, enum gw_char ch,
			  enum gw_ble_err err, const uint8_t *val, size_t len, int64_t now)
{
	DISPATCH(c, address, now, gw_link_read_done(l_, ch, err, val, len, now));
}

void gw_central_write_done(GwCentral *c, const char *address, enum gw_char ch,
			   enum gw_ble_err err, int64_t now)
{
	DISPATCH(c, address, now, gw_link_write_done(l_, ch, err, now));
}

void gw_central_notify_started(GwCentral *c, const char *address, enum gw_char ch,
			       enum gw_ble_err err, int64_t now)
{
	DISPATCH(c, address, now, gw_link_notify_started(l_, ch, err, now));
}

void gw_central_value(GwCentral *c, const char *address, enum gw_char ch,
		      const uint8_t *val, size_t len, int64_t now)
{
	DISPATCH(c, address, now, gw_link_value(l_, ch, val, len, now));
}

void gw_central_store_committed(GwCentral *c, const char *address, uint32_t up_to_seq,
				int64_t now)
{
	DISPATCH(c, address, now, gw_link_store_committed(l_, up_to_seq, now));
}

void gw_central_store_failed(GwCentral *c, const char *address, int64_t now)
{
	DISPATCH(c, address, now, gw_link_store_failed(l_, now));
}

void gw_central_repaired(GwCentral *c, const char *address, bool new_identity,
			 int64_t now)
{
	DISPATCH(c, address, now, gw_link_repaired(l_, new_identity, now));
}

void gw_central_set_enabled(GwCentral *c, const char *address, bool enabled, int64_t now)
{
	DISPATCH(c, address, now, gw_link_set_enabled(l_, enabled, now));
}

void gw_central_set_durable_seq(GwCentral *c, const char *address, uint32_t seq)
{
	struct entry *e;

	g_return_if_fail(c != NULL);
	e = lookup(c, address);
	if (e)
		gw_link_set_durable_seq(e->link, seq);
}

void gw_central_clock(GwCentral *c, bool synced, int64_t unix_us, int64_t now)
{
	g_return_if_fail(c != NULL);
	central_enter(c, now);
	for (guint i = 0; i < c->entries->len; i++) {
		struct entry *e = g_ptr_array_index(c->entries, i);

		gw_link_clock(e->link, synced, unix_us, now);
	}
	central_leave(c, now);
}

/* ---- public: time ---- */

void gw_central_tick(GwCentral *c, int64_t now)
{
	g_return_if_fail(c != NULL);
	central_enter(c, now);

	if (c->t_restart <= now) {
		c->t_restart = T_OFF;
		if (c->discovering) {
			/* BlueZ's discovery goes stale (stops reporting a
			 * device it already knows): start it afresh */
			c->st.discovery_restarts++;
			c->t_restart = now + c->cfg.discovery_restart_us;
			queue_c(c, CA_STOP_DISCOVERY, 0, 0);
			queue_c(c, CA_START_DISCOVERY, 0, 0);
		}
	}
	if (c->t_power <= now) {
		c->t_power = T_OFF;
		switch (c->cycle) {
		case CYCLE_OFF_SENT:	/* never saw it go off: power on anyway */
		case CYCLE_HOLD:
			c->cycle = CYCLE_ON_SENT;
			c->t_power = now + c->cfg.power_timeout_us;
			queue_c(c, CA_SET_POWERED, 1, 0);
			break;
		case CYCLE_ON_SENT:	/* the power-on retry takes over */
			c->cycle = CYCLE_NONE;
			break;
		case CYCLE_NONE:
			break;
		}
	}
	if (c->t_power_on <= now) {
		c->t_power_on = now + c->cfg.power_on_retry_us;
		queue_c(c, CA_RECOVERY, GW_CENTRAL_RECOVERY_POWER_ON, 0);
		queue_c(c, CA_SET_POWERED, 1, 0);
	}
	for (guint i = 0; i < c->entries->len; i++) {
		struct entry *e = g_ptr_array_index(c->entries, i);

		if (gw_link_next_deadline(e->link) <= now)
			gw_link_tick(e->link, now);
	}
	central_leave(c, now);
}

int64_t gw_central_next_deadline(const GwCentral *c)
{
	int64_t d = T_OFF;
	int64_t t;

	g_return_val_if_fail(c != NULL, T_OFF);
	if (c->t_restart < d)
		d = c->t_restart;
	if (c->t_power < d)
		d = c->t_power;
	if (c->t_power_on < d)
		d = c->t_power_on;
	/* discovery wanted but held back after a failure */
	if (!c->discovering && c->disc_retry_at != INT64_MIN && c->disc_retry_at < d &&
	    discovery_wanted(c, c->disc_retry_at))
		d = c->disc_retry_at;
	t = silent_deadline(c);
	if (t < d)
		d = t;
	for (guint i = 0; i < c->entries->len; i++) {
		const struct entry *e = g_ptr_array_index(c->entries, i);

		enum gw_link_state s = gw_link_get_state(e->link);

		t = gw_link_next_deadline(e->link);
		if (t < d)
			d = t;
		/* a waiting link counts as missing once its last advertisement
		 * is stale: that edge starts discovery */
		if (!c->discovering && adapter_usable(c) && e->seen_at != GW_LINK_NEVER &&
		    (s == GW_LINK_STATE_SCANNING || s == GW_LINK_STATE_BACKOFF)) {
			t = e->seen_at + c->cfg.link.seen_fresh_us + 1;
			if (c->disc_retry_at != INT64_MIN && t < c->disc_retry_at)
				t = c->disc_retry_at;
			if (t > c->now && t < d)
				d = t;
		}
	}
	return d;
}

/* ---- public: reading ---- */

GwLink *gw_central_get_link(const GwCentral *c, const char *address)
{
	struct entry *e;

	g_return_val_if_fail(c != NULL, NULL);
	e = lookup(c, address);
	return e ? e->link : NULL;
}

size_t gw_central_n_links(const GwCentral *c)
{
	g_return_val_if_fail(c != NULL, 0);
	return c->entries->len;
}

GwLink *gw_central_link_at(const GwCentral *c, size_t i)
{
	g_return_val_if_fail(c != NULL, NULL);
	if (i >= c->entries->len)
		return NULL;
	return ((struct entry *) g_ptr_array_index(c->entries, i))->link;
}

enum gw_central_adapter gw_central_get_adapter(const GwCentral *c)
{
	g_return_val_if_fail(c != NULL, GW_CENTRAL_ADAPTER_NO_BLUEZ);
	return c->adapter;
}

void gw_central_get_stats(const GwCentral *c, int64_t now, struct gw_central_stats *ret)
{
	unsigned int in_window = 0;

	g_return_if_fail(c != NULL && ret != NULL);
	*ret = c->st;
	for (guint i = 0; i < c->cycles->len; i++)
		if (now - g_array_index(c->cycles, int64_t, i) < c->cfg.power_cycle_window_us)
			in_window++;
	ret->adapter = c->adapter;
	ret->discovering = c->discovering;
	ret->power_cycles_in_window = in_window;
	ret->wedged = c->wedged_until != GW_LINK_NEVER && now < c->wedged_until;
	ret->wedged_until = ret->wedged ? c->wedged_until : GW_LINK_NEVER;
	ret->failure_run = c->failure_run;
	ret->last_found = c->last_found;
	ret->ignored_devices = g_hash_table_size(c->ignored);
	ret->ignored_wearables = g_hash_table_size(c->ignored_wearables);
	ret->links = c->entries->len;
}

const char *gw_central_adapter_name(enum gw_central_adapter a)
{
	switch (a) {
	case GW_CENTRAL_ADAPTER_NO_BLUEZ:
		return "no-bluez";
	case GW_CENTRAL_ADAPTER_ABSENT:
		return "absent";
	case GW_CENTRAL_ADAPTER_OFF:
		return "off";
	case GW_CENTRAL_ADAPTER_READY:
		return "ready";
	case GW_CENTRAL_ADAPTER_CYCLING:
		return "cycling";
	}
	return "invalid";
}

const char *gw_central_recovery_name(enum gw_central_recovery r)
{
	switch (r) {
	case GW_CENTRAL_RECOVERY_CYCLE_FAILURES:
		return "power-cycle-failures";
	case GW_CENTRAL_RECOVERY_CYCLE_SILENT:
		return "power-cycle-silent";
	case GW_CENTRAL_RECOVERY_WEDGED:
		return "wedged";
	case GW_CENTRAL_RECOVERY_POWER_ON:
		return "power-on";
	}
	return "invalid";
}
