// SPDX-License-Identifier: MIT
/*
 * GwBle: GwBluez <-> GwCentral <-> GwJournal (see ble.h). Thin: every
 * function translates one event or one op; the decisions are the core's.
 */
#define G_LOG_DOMAIN "gw-ble"

#include <errno.h>
#include <string.h>

#include "ble.h"

#include "bluez.h"
#include "bluez-parse.h"

#define DEFAULT_SYNC_DELAY_MS 20
#define SYNC_MAX_PENDING 4096	/* records handed over and not yet committed */

struct wearable {
	GwBle *ble;
	char address[GW_BLUEZ_ADDR_SIZE];
	GwJournal *journal;
	bool dirty;		/* handovers appended, not synced */
	bool failed;		/* an append failed since the last sync */
	uint32_t last_seq;	/* last record of the newest handover */
	size_t pending_records;	/* records in the handovers since the last sync */
};

/* what was last fed to the core for a device */
struct devstate {
	bool connected;
	bool resolved;
};

struct gw_ble {
	struct gw_ble_config cfg;	/* strings not kept: see below */
	bool log_personal;
	bool clock_synced;
	GwCentral *central;
	GwBluez *bz;
	struct wearable *w;
	size_t n_w;
	GHashTable *devs;		/* address -> struct devstate */
	GSource *timer;			/* ready time = next deadline */
	GSource *sync;			/* batched journal sync */
	bool sync_now;			/* sync is due at once */
	size_t uncommitted;		/* records handed to the sink since its
					 * last commit */
	bool commit_failed;		/* a commit made inside a handover failed:
					 * the next flush tells the links so */
	bool in_tick;
	bool have_sink;
	struct gw_ble_sink sink;
};

/* ---- helpers ---------------------------------------------------------------- */

static int64_t now_us(void)
{
	return g_get_monotonic_time();
}

static const char *mask(const GwBle *b, const char *address, char buf[GW_BLUEZ_ADDR_SIZE])
{
	return gw_bluez_address_mask(address, b->log_personal, buf);
}

static struct wearable *wearable_get(const GwBle *b, const char *address)
{
	for (size_t i = 0; i < b->n_w; i++)
		if (g_ascii_strcasecmp(b->w[i].address, address) == 0)
			return &b->w[i];
	return NULL;
}

/* Re-arms the one timer at the core's next deadline. Called after every
 * event fed to the core. */
static void rearm(GwBle *b)
{
	int64_t d;

	if (!b->timer || b->in_tick)
		return;
	d = gw_central_next_deadline(b->central);
	g_source_set_ready_time(b->timer, d == GW_LINK_NO_DEADLINE ? -1 : d);
}

/* ---- the timer source -------------------------------------------------------- */

struct ble_timer {
	GSource source;
	GwBle *ble;
};

static gboolean timer_dispatch(GSource *src, GSourceFunc cb, gpointer user_data)
{
	GwBle *b = ((struct ble_timer *)src)->ble;

	(void)cb;
	(void)user_data;
	g_source_set_ready_time(src, -1);
	b->in_tick = true;
	gw_central_tick(b->central, now_us());
	b->in_tick = false;
	rearm(b);
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs timer_funcs = {
	.dispatch = timer_dispatch,
};

/* ---- journals ------------------------------------------------------------------ */

/* Keeps the link's no-gap durable seq beside the journal, so a restarted
 * gateway resumes the sync there and not at the highest seq held (a live
 * record may be stored before the history under it). */
static void persist_cursor(GwBle *b, struct wearable *w)
{
	GwLink *link = gw_central_get_link(b->central, w->address);
	struct gw_link_stats st;
	g_autoptr(GError) error = NULL;
	char buf[GW_BLUEZ_ADDR_SIZE];

	if (!link)
		return;
	gw_link_get_stats(link, now_us(), &st);
	if (!st.have_durable_seq)
		return;
	if (b->have_sink)
		b->sink.set_cursor(w->address, st.durable_seq, b->sink.user_data);
	else if (!gw_journal_set_cursor(w->journal, st.durable_seq, &error))
		g_warning("%s: %s", mask(b, w->address, buf), error->message);
}

static gboolean wearable_sync(GwBle *b, struct wearable *w, GError **error)
{
	if (b->have_sink)
		return TRUE;	/* the one commit is made before */
	return gw_journal_sync(w->journal, error);
}

/* Tells the links what the last commit (ok or not) did to what they
 * handed over. */
static void flush(GwBle *b, bool commit_ok)
{
	commit_ok = commit_ok && !b->commit_failed;
	b->commit_failed = false;
	b->uncommitted = 0;
	for (size_t i = 0; i < b->n_w; i++) {
		struct wearable *w = &b->w[i];
		g_autoptr(GError) error = NULL;
		char buf[GW_BLUEZ_ADDR_SIZE];
		uint32_t seq;
		size_t n;

		if (!w->dirty)
			continue;
		w->dirty = false;
		n = w->pending_records;
		w->pending_records = 0;
		if (!commit_ok || !wearable_sync(b, w, &error) || w->failed) {
			if (error)
				g_warning("%s: journal: %s", mask(b, w->address, buf),
					  error->message);
			w->failed = false;
			gw_central_store_failed(b->central, w->address, now_us());
			continue;
		}
		/* link.h: the seq of the last record of the newest committed
		 * handover (a handover of duplicates only moves nothing in the
		 * journal, but must still be acknowledged) */
		seq = w->last_seq;
		gw_central_store_committed(b->central, w->address, seq, now_us());
		persist_cursor(b, w);
		if (b->cfg.records_stored)
			b->cfg.records_stored(w->address, n, seq, b->cfg.user_data);
	}
	rearm(b);
}

static void sync_cancel(GwBle *b)
{
	if (b->sync) {
		g_source_destroy(b->sync);
		g_clear_pointer(&b->sync, g_source_unref);
	}
}

static gboolean sync_cb(gpointer user_data)
{
	GwBle *b = user_data;
	g_autoptr(GError) error = NULL;
	bool ok = true;

	g_clear_pointer(&b->sync, g_source_unref);
	if (b->have_sink && !b->sink.commit(b->sink.user_data, &error)) {
		g_warning("store: %s", error->message);
		ok = false;
	}
	flush(b, ok);
	return G_SOURCE_REMOVE;
}

static void sync_schedule(GwBle *b, bool now)
{
	/* a sync due at once stays: made again by each handover of a busy
	 * sync, it never came before the next D-Bus signal */
	if (b->sync && (!now || b->sync_now))
		return;
	sync_cancel(b);
	b->sync_now = now;
	b->sync = g_timeout_source_new(now ? 0 : b->cfg.sync_delay_ms);
	if (now)	/* before the D-Bus signals queued meanwhile */
		g_source_set_priority(b->sync, G_PRIORITY_HIGH);
	g_source_set_callback(b->sync, sync_cb, b, NULL);
	g_source_attach(b->sync, NULL);
}

void gw_ble_sink_committed(GwBle *b)
{
	g_return_if_fail(b != NULL && b->have_sink);
	sync_cancel(b);
	flush(b, true);
}

void gw_ble_sink_lost(GwBle *b)
{
	g_return_if_fail(b != NULL && b->have_sink);
	sync_cancel(b);
	flush(b, false);
}

/* ---- GwCentral ops -> GwBluez commands ---------------------------------------- */

static void op_connect(const char *dev, void *ud)
{
	GwBle *b = ud;

	if (!b->bz)
		return;	/* stopping: gw_ble_free() commits after the bus is gone */
	gw_bluez_connect(b->bz, dev);
}

static void op_disconnect(const char *dev, void *ud)
{
	GwBle *b = ud;

	if (!b->bz)
		return;	/* stopping: gw_ble_free() commits after the bus is gone */
	gw_bluez_disconnect(b->bz, dev);
}

/* See ble.h: never remove a bond. */
static void op_remove_device_cache(const char *dev, void *ud)
{
	GwBle *b = ud;

	if (!b->bz)
		return;	/* stopping: gw_ble_free() commits after the bus is gone */
	const struct gw_bluez_device *d = gw_bluez_get_device(b->bz, dev);
	char buf[GW_BLUEZ_ADDR_SIZE];

	if (!d) {
		g_debug("%s: no device object: no cache to drop", mask(b, dev, buf));
		return;
	}
	if (d->paired || d->bonded) {
		g_message("%s: bonded: GATT cache kept (removing the device would drop the bond), "
			  "disconnect only", mask(b, dev, buf));
		if (d->connected)
			gw_bluez_disconnect(b->bz, dev);
		return;
	}
	g_message("%s: removing the device object and its GATT cache", mask(b, dev, buf));
	gw_bluez_remove_device(b->bz, dev);
}

static void op_read_char(const char *dev, enum gw_char ch, void *ud)
{
	GwBle *b = ud;

	if (!b->bz)
		return;	/* stopping: gw_ble_free() commits after the bus is gone */
	gw_bluez_read(b->bz, dev, ch);
}

static void op_write_char(const char *dev, enum gw_char ch, const uint8_t *val, size_t len,
			  void *ud)
{
	GwBle *b = ud;

	if (!b->bz)
		return;	/* stopping: gw_ble_free() commits after the bus is gone */
	gw_bluez_write(b->bz, dev, ch, val, len);
}

static void op_start_notify(const char *dev, enum gw_char ch, void *ud)
{
	GwBle *b = ud;

	if (!b->bz)
		return;	/* stopping: gw_ble_free() commits after the bus is gone */
	gw_bluez_start_notify(b->bz, dev, ch);
}

static void op_store_records(const char *dev, const struct wb_record *recs, size_t n, void *ud)
{
	GwBle *b = ud;
	struct wearable *w = wearable_get(b, dev);
	g_autoptr(GError) error = NULL;
	char buf[GW_BLUEZ_ADDR_SIZE];

	bool pain = false;

	if (!w || n == 0)
		return;
	if (b->have_sink ? !b->sink.append(w->address, recs, n, b->sink.user_data, &error)
			 : gw_journal_append(w->journal, recs, n, &error) < 0) {
		/* the core is told from the sync source, never from inside its op */
		g_warning("%s: store: %s", mask(b, dev, buf), error->message);
		w->failed = true;
	}
	for (size_t i = 0; i < n; i++)
		pain |= recs[i].type == WB_RECORD_PAIN;
	w->dirty = true;
	w->last_seq = recs[n - 1].seq;
	w->pending_records += n;
	b->uncommitted += n;
	/* A history sync commits every SYNC_MAX_PENDING records, here: the
	 * store keeps the open transaction's writes in memory until its
	 * commit, and a sync source would run only after the main loop's
	 * pass over every D-Bus signal queued meanwhile (a day's sync at the
	 * bus ceiling was one commit: 12 MB of store ops, 49 MB RSS). The
	 * links are told at the next flush, never from inside their op. */
	if (b->have_sink && b->uncommitted >= SYNC_MAX_PENDING) {
		g_autoptr(GError) cerr = NULL;

		if (!b->sink.commit(b->sink.user_data, &cerr)) {
			g_warning("store: %s", cerr->message);
			b->commit_failed = true;
		}
		b->uncommitted = 0;
		pain = true;	/* flush soon */
	}
	/* a pain report is durable before the wearable hears of it, and
	 * before anything else waits on it: no batching */
	sync_schedule(b, pain);
}

static void op_state_changed(const char *dev, enum gw_link_state old_state,
			     enum gw_link_state new_state, void *ud)
{
	GwBle *b = ud;
	char buf[GW_BLUEZ_ADDR_SIZE];

	g_message("%s: %s -> %s", mask(b, dev, buf), gw_link_state_name(old_state),
		  gw_link_state_name(new_state));
	/* a verified report can move the durable seq without a new commit
	 * (its response came after the last one); it ends the sync, so the
	 * state changes: keep the cursor up to date then too */
	struct wearable *w = wearable_get(b, dev);
	if (w)
		persist_cursor(b, w);
}

static void op_error(const char *dev, enum gw_ble_err err, enum gw_link_state in_state,
		     void *ud)
{
	GwBle *b = ud;
	char buf[GW_BLUEZ_ADDR_SIZE];

	g_message("%s: error %s in %s", mask(b, dev, buf), gw_ble_err_name(err),
		  gw_link_state_name(in_state));
}

static void op_needs_repair(const char *dev, enum gw_link_repair why, void *ud)
{
	GwBle *b = ud;
	char buf[GW_BLUEZ_ADDR_SIZE];

	g_message("%s: needs repair (%s): not reconnecting until paired again",
		  mask(b, dev, buf), gw_link_repair_name(why));
}

static void op_battery(const char *dev, unsigned int pct, void *ud)
{
	GwBle *b = ud;
	char buf[GW_BLUEZ_ADDR_SIZE];

	g_debug("%s: battery %u%%", mask(b, dev, buf), pct);
}

static void op_malformed(const char *dev, enum gw_char ch, int err, const struct wb_err *where,
			 void *ud)
{
	GwBle *b = ud;
	char buf[GW_BLUEZ_ADDR_SIZE];

	(void)where;
	g_message("%s: malformed %s value: %s", mask(b, dev, buf), gw_char_name(ch),
		  g_strerror(err < 0 ? -err : err));
}

static void op_start_discovery(const char *service_uuid, void *ud)
{
	GwBle *b = ud;

	if (!b->bz)
		return;	/* stopping: gw_ble_free() commits after the bus is gone */
	(void)service_uuid;	/* GwBluez was configured with the same filter */
	gw_bluez_start_discovery(b->bz);
}

static void op_stop_discovery(void *ud)
{
	GwBle *b = ud;

	if (!b->bz)
		return;	/* stopping: gw_ble_free() commits after the bus is gone */
	gw_bluez_stop_discovery(b->bz);
}

static void op_set_powered(bool powered, void *ud)
{
	GwBle *b = ud;

	if (!b->bz)
		return;	/* stopping: gw_ble_free() commits after the bus is gone */
	g_message("adapter: Powered=%s", powered ? "true" : "false");
	gw_bluez_set_powered(b->bz, powered);
}

static void op_adapter_changed(enum gw_central_adapter old_state,
			       enum gw_central_adapter new_state, void *ud)
{
	(void)ud;
	g_message("adapter: %s -> %s", gw_central_adapter_name(old_state),
		  gw_central_adapter_name(new_state));
}

static void op_recovery(enum gw_central_recovery what, void *ud)
{
	(void)ud;
	g_message("adapter recovery: %s", gw_central_recovery_name(what));
}

static const struct gw_central_ops central_ops = {
	.link = {
		.connect = op_connect,
		.disconnect = op_disconnect,
		.remove_device_cache = op_remove_device_cache,
		.read_char = op_read_char,
		.write_char = op_write_char,
		.start_notify = op_start_notify,
		.store_records = op_store_records,
		.state_changed = op_state_changed,
		.error = op_error,
		.needs_repair = op_needs_repair,
		.battery = op_battery,
		.malformed = op_malformed,
	},
	.start_discovery = op_start_discovery,
	.stop_discovery = op_stop_discovery,
	.set_powered = op_set_powered,
	.adapter_changed = op_adapter_changed,
	.recovery = op_recovery,
};

/* ---- GwBluez events -> GwCentral events ----------------------------------------- */

static void ev_bluez_present(bool present, void *ud)
{
	GwBle *b = ud;

	g_message("bluetoothd %s", present ? "present" : "gone");
	if (!present)
		g_hash_table_remove_all(b->devs);
	gw_central_bluez_present(b->central, present, now_us());
	rearm(b);
}

static void ev_adapter_changed(const struct gw_bluez_adapter *ad, void *ud)
{
	GwBle *b = ud;

	gw_central_adapter(b->central, ad->present, ad->powered, now_us());
	rearm(b);
}

static void ev_device_changed(const struct gw_bluez_device *dev, void *ud)
{
	GwBle *b = ud;
	struct devstate *st = g_hash_table_lookup(b->devs, dev->address);
	int64_t now = now_us();

	if (!st) {
		st = g_new0(struct devstate, 1);
		g_hash_table_insert(b->devs, g_strdup(dev->address), st);
	}
	/* RSSI is only exported while a scan sees the device: an advertisement */
	if (dev->has_rssi)
		gw_central_device_found(b->central, dev->address, dev->rssi,
					(const char *const *)dev->uuids, now);
	/* up: connected, then resolved; down: unresolved, then disconnected */
	if (dev->connected && !st->connected) {
		st->connected = true;
		gw_central_connected_changed(b->central, dev->address, true, now);
	}
	if (dev->services_resolved != st->resolved) {
		st->resolved = dev->services_resolved;
		gw_central_services_resolved(b->central, dev->address, st->resolved, now);
	}
	if (!dev->connected && st->connected) {
		st->connected = false;
		gw_central_connected_changed(b->central, dev->address, false, now);
	}
	rearm(b);
}

static void ev_device_removed(const char *address, void *ud)
{
	GwBle *b = ud;

	g_hash_table_remove(b->devs, address);
	gw_central_device_removed(b->central, address, now_us());
	rearm(b);
}

static void ev_layout(const char *address, const struct gw_bluez_gatt_char *chars, size_t n,
		      void *ud)
{
	GwBle *b = ud;
	g_autofree struct gw_gatt_char *core = g_new0(struct gw_gatt_char, n + 1);

	for (size_t i = 0; i < n; i++) {
		core[i].role = chars[i].role;
		core[i].props = chars[i].props;
	}
	gw_central_gatt_layout(b->central, address, core, n, now_us());
	rearm(b);
}

static void ev_value(const char *address, enum gw_char ch, const uint8_t *val, size_t len,
		     void *ud)
{
	GwBle *b = ud;

	gw_central_value(b->central, address, ch, val, len, now_us());
	rearm(b);
}

static void ev_call_done(const struct gw_bluez_result *r, void *ud)
{
	GwBle *b = ud;
	char buf[GW_BLUEZ_ADDR_SIZE];
	int64_t now = now_us();
	const char *who = r->address ? mask(b, r->address, buf) : "adapter";

	if (r->err != GW_BLE_OK)
		g_message("%s: %s: %s (%s: %s)", who, gw_bluez_op_name(r->op),
			  gw_ble_err_name(r->err), r->dbus_error ? r->dbus_error : "local",
			  r->message ? r->message : "");
	switch (r->op) {
	case GW_BLUEZ_OP_START_DISCOVERY:
		gw_central_discovery_result(b->central, r->err, now);
		break;
	case GW_BLUEZ_OP_CONNECT:
		gw_central_connect_done(b->central, r->address, r->err, now);
		break;
	case GW_BLUEZ_OP_READ:
		gw_central_read_done(b->central, r->address, (enum gw_char)r->ch, r->err,
				     r->value, r->len, now);
		break;
	case GW_BLUEZ_OP_WRITE:
		gw_central_write_done(b->central, r->address, (enum gw_char)r->ch, r->err, now);
		break;
	case GW_BLUEZ_OP_START_NOTIFY:
		gw_central_notify_started(b->central, r->address, (enum gw_char)r->ch, r->err,
					  now);
		break;
	/* the core learns these from the property changes they cause */
	case GW_BLUEZ_OP_SET_POWERED:
	case GW_BLUEZ_OP_STOP_DISCOVERY:
	case GW_BLUEZ_OP_REMOVE_DEVICE:
	case GW_BLUEZ_OP_DISCONNECT:
	case GW_BLUEZ_OP_PAIR:
	case GW_BLUEZ_OP_SET_TRUSTED:
	case GW_BLUEZ_OP_STOP_NOTIFY:
		break;
	}
	rearm(b);
}

static bool ev_allowed(const char *address, void *ud)
{
	GwBle *b = ud;

	return wearable_get(b, address) != NULL;
}

static const struct gw_bluez_ops bluez_ops = {
	.bluez_present = ev_bluez_present,
	.adapter_changed = ev_adapter_changed,
	.device_changed = ev_device_changed,
	.device_removed = ev_device_removed,
	.layout = ev_layout,
	.value = ev_value,
	.call_done = ev_call_done,
	.allowed = ev_allowed,
};

/* ---- life cycle ------------------------------------------------------------------- */

void gw_ble_config_init(struct gw_ble_config *cfg)
{
	g_return_if_fail(cfg != NULL);
	memset(cfg, 0, sizeof(*cfg));
	cfg->clock_synced = true;
	cfg->sync_delay_ms = DEFAULT_SYNC_DELAY_MS;
}

GwBle *gw_ble_new(const struct gw_ble_config *cfg, GError **error)
{
	g_autoptr(GwBle) b = NULL;
	g_autofree const char **addrs = NULL;
	struct gw_central_config ccfg;
	struct gw_bluez_config bcfg = { 0 };
	int64_t now = now_us();

	g_return_val_if_fail(cfg != NULL, NULL);
	if (cfg->n_allowlist == 0 || !cfg->allowlist || (!cfg->state_dir && !cfg->sink)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "ble: %s", !cfg->state_dir ? "no state directory" : "empty allowlist");
		return NULL;
	}
	b = g_new0(GwBle, 1);
	b->cfg = *cfg;
	b->cfg.allowlist = NULL;
	b->cfg.state_dir = NULL;
	b->cfg.adapter = NULL;
	b->cfg.central = NULL;
	b->cfg.conn = NULL;
	if (!b->cfg.sync_delay_ms)
		b->cfg.sync_delay_ms = DEFAULT_SYNC_DELAY_MS;
	b->log_personal = cfg->log_personal;
	b->clock_synced = cfg->clock_synced;
	if (cfg->sink) {
		b->have_sink = true;
		b->sink = *cfg->sink;
	}
	b->devs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	b->w = g_new0(struct wearable, cfg->n_allowlist);
	addrs = g_new0(const char *, cfg->n_allowlist + 1);
	for (size_t i = 0; i < cfg->n_allowlist; i++) {
		struct wearable *w = &b->w[i];
		g_autofree char *name = NULL;

		if (!cfg->allowlist[i] ||
		    !gw_bluez_address_normalize(cfg->allowlist[i], w->address)) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
				    "ble: allowlist entry %zu is not an address", i);
			return NULL;
		}
		w->ble = b;
		b->n_w = i + 1;		/* so a half-built object frees what it has */
		name = g_strdup(w->address);
		g_strdelimit(name, ":", '_');
		{
			/* AA_BB.. -> AABB.. (the fake's state-file style) */
			char *s = name, *d = name;

			for (; *s; s++)
				if (*s != '_')
					*d++ = *s;
			*d = '\0';
		}
		if (!b->have_sink)
			w->journal = gw_journal_open(cfg->state_dir, name, error);
		if (!b->have_sink && !w->journal) {
			g_prefix_error(error, "ble: ");
			return NULL;
		}
		addrs[i] = w->address;
	}

	if (cfg->central)
		ccfg = *cfg->central;
	else
		gw_central_config_init(&ccfg);
	ccfg.allowlist = addrs;
	ccfg.n_allowlist = cfg->n_allowlist;
	b->central = gw_central_new(&ccfg, &central_ops, b);
	if (!b->central) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "ble: invalid core configuration");
		return NULL;
	}
	for (size_t i = 0; i < b->n_w; i++) {
		uint32_t seq;

		if (b->have_sink ? b->sink.get_cursor(b->w[i].address, &seq, b->sink.user_data)
				 : gw_journal_get_cursor(b->w[i].journal, &seq))
			gw_central_set_durable_seq(b->central, b->w[i].address, seq);
	}
	gw_central_clock(b->central, b->clock_synced, g_get_real_time(), now);

	b->timer = g_source_new(&timer_funcs, sizeof(struct ble_timer));
	((struct ble_timer *)b->timer)->ble = b;
	g_source_set_name(b->timer, "gw-ble timer");
	g_source_attach(b->timer, NULL);
	rearm(b);

	bcfg.adapter = cfg->adapter;
	bcfg.service_uuid = ccfg.service_uuid;
	bcfg.log_personal = cfg->log_personal;
	bcfg.connect_timeout_ms = cfg->connect_timeout_ms;
	bcfg.call_timeout_ms = cfg->call_timeout_ms;
	b->bz = gw_bluez_new(cfg->conn, &bcfg, &bluez_ops, b, error);
	if (!b->bz) {
		g_prefix_error(error, "ble: ");
		return NULL;
	}
	return g_steal_pointer(&b);
}

void gw_ble_remove_device(GwBle *b, const char *address)
{
	g_return_if_fail(b != NULL && address != NULL);
	if (b->bz)
		gw_bluez_remove_device(b->bz, address);
}

void gw_ble_free(GwBle *b)
{
	if (!b)
		return;
	/* first: no more events (and no call_done) after this */
	g_clear_pointer(&b->bz, gw_bluez_free);
	sync_cancel(b);
	if (b->have_sink && b->central) {
		g_autoptr(GError) error = NULL;

		flush(b, b->sink.commit(b->sink.user_data, &error));
		if (error)
			g_warning("store: %s", error->message);
		for (size_t i = 0; i < b->n_w; i++)
			persist_cursor(b, &b->w[i]);
	}
	for (size_t i = 0; i < b->n_w; i++) {
		struct wearable *w = &b->w[i];

		if (w->journal && w->dirty) {
			g_autoptr(GError) error = NULL;

			if (!gw_journal_sync(w->journal, &error))
				g_warning("journal: %s", error->message);
		}
		if (w->journal && b->central)
			persist_cursor(b, w);
		g_clear_pointer(&w->journal, gw_journal_free);
	}
	if (b->timer) {
		g_source_destroy(b->timer);
		g_clear_pointer(&b->timer, g_source_unref);
	}
	g_clear_pointer(&b->central, gw_central_free);
	g_clear_pointer(&b->devs, g_hash_table_unref);
	g_free(b->w);
	g_free(b);
}

GwCentral *gw_ble_get_central(const GwBle *b)
{
	g_return_val_if_fail(b != NULL, NULL);
	return b->central;
}

GwJournal *gw_ble_get_journal(const GwBle *b, const char *address)
{
	struct wearable *w;

	g_return_val_if_fail(b != NULL && address != NULL, NULL);
	w = wearable_get(b, address);
	return w ? w->journal : NULL;
}

void gw_ble_set_clock_synced(GwBle *b, bool synced)
{
	g_return_if_fail(b != NULL);
	b->clock_synced = synced;
	gw_central_clock(b->central, synced, g_get_real_time(), now_us());
	rearm(b);
}
