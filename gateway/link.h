/* SPDX-License-Identifier: MIT */
/*
 * The per-wearable link: connect, validate the GATT layout, set the time,
 * read features/battery/device information, subscribe, sync the history
 * and stay live, with a retry policy per error class.
 *
 * Pure: no I/O, no clock, no main loop, no logging. Every event carries
 * `now`, the monotonic time in microseconds; actions leave through
 * struct gw_link_ops. The caller arms one timer at gw_link_next_deadline()
 * and calls gw_link_tick() when it expires. Ops may be called from inside
 * any gw_link_* call, always as the last thing the link does in a step, so
 * an op may feed the next event back synchronously (a store that commits
 * at once, a fake). An op must not free the link.
 *
 * The durable path (docs/protocol-gatt.md 1.9): records reach the store
 * through ops->store_records, each seq at most once; the wearable is told
 * to delete up to N only when every record up to N is committed
 * (gw_link_store_committed); a lost link resumes after the last durable seq.
 */
#ifndef REHABLINK_GATEWAY_LINK_H
#define REHABLINK_GATEWAY_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "ble-types.h"
#include "wearable.h"

#define GW_LINK_NO_DEADLINE      INT64_MAX
/* last_seen and similar times before the first event */
#define GW_LINK_NEVER            INT64_MIN

enum gw_link_state {
	GW_LINK_STATE_WAITING_ADAPTER = 0,	/* bluetoothd or the adapter is not there yet */
	GW_LINK_STATE_SCANNING,		/* waiting for an advertisement (or a connect slot) */
	GW_LINK_STATE_CONNECTING,	/* Device1.Connect() in flight */
	GW_LINK_STATE_RESOLVING,	/* connected, waiting for ServicesResolved */
	GW_LINK_STATE_CHECKING_LAYOUT,	/* waiting for / validating the characteristics */
	GW_LINK_STATE_SETTING_TIME,	/* writing Current Time (clock synchronised only) */
	GW_LINK_STATE_READING_INFO,	/* features, battery, device information */
	GW_LINK_STATE_SUBSCRIBING,	/* StartNotify, one characteristic at a time */
	GW_LINK_STATE_SYNCING,		/* history control point procedure */
	GW_LINK_STATE_LIVE,		/* receiving live records */
	GW_LINK_STATE_DISCONNECTING,	/* waiting for the disconnect event before retrying */
	GW_LINK_STATE_BACKOFF,		/* waiting to retry */
	GW_LINK_STATE_NEEDS_REPAIR,	/* bond lost: a human must pair again */
	GW_LINK_STATE_DISABLED,
};
#define GW_LINK_STATE_COUNT      (GW_LINK_STATE_DISABLED + 1)

/* What the link does first when an error of a class happens. */
enum gw_link_action {
	GW_LINK_ACTION_NONE = 0,	/* back off, then retry (disconnecting first if connected) */
	GW_LINK_ACTION_DISCONNECT,	/* Disconnect() (also cancels a pending Connect), wait, back off */
	GW_LINK_ACTION_CLEAR_STALE,	/* first error of a run: Disconnect(), wait, then
					 * remove_device_cache(); later ones: as DISCONNECT */
	GW_LINK_ACTION_WAIT_DISCONNECT,	/* no Disconnect(): wait for the disconnect event BlueZ
					 * sends after the abort (or a timeout), then back off */
	GW_LINK_ACTION_WAIT_ADAPTER,	/* wait until the adapter is ready; retry after the
					 * delay if the central still says it is */
	GW_LINK_ACTION_RESCAN,		/* the device object is gone: back off, then wait for
					 * an advertisement */
	GW_LINK_ACTION_REPAIR,		/* stop and report needs_repair; never re-pair silently */
};

/* Retry policy of one error class. The n-th consecutive error waits
 * d = min(max_us, base_us * multiplier^(n-1)), spread uniformly over
 * d * (1 - jitter) .. d * (1 + jitter). */
struct gw_link_policy {
	int64_t base_us;
	int64_t max_us;
	double multiplier;
	double jitter;			/* 0..1 */
	enum gw_link_action action;
};

struct gw_link_config {
	struct gw_link_policy policy[GW_BLE_ERR_COUNT];	/* GW_BLE_OK's entry is unused */
	/* a failed history sync (bad response, busy, count mismatch) while
	 * the link stays up: retried on the same connection */
	struct gw_link_policy sync_retry;
	int64_t connect_timeout_us;	/* Connect() to connected */
	int64_t resolve_timeout_us;	/* connected to ServicesResolved */
	int64_t layout_timeout_us;	/* ServicesResolved to gw_link_gatt_layout() */
	int64_t gatt_timeout_us;	/* each read, write and StartNotify */
	int64_t disconnect_timeout_us;	/* waiting for the disconnect event */
	int64_t hcp_timeout_us;		/* a history control point response; during a
					 * report, the silence between two batches */
	int64_t commit_timeout_us;	/* report done to store commit; then the link goes
					 * live and deletes once the commit arrives */
	int64_t scan_timeout_us;	/* no advertisement: try a direct connect anyway */
	int64_t seen_fresh_us;		/* an advertisement this recent allows connecting at once */
	int64_t stable_us;		/* connected this long: consecutive error counts reset */
	int64_t live_delete_interval_us; /* while live: delete up to the durable seq this often */
	int64_t gap_grace_us;		/* a hole in the live seqs this old starts a catch-up sync */
	int64_t time_resync_us;		/* while live: rewrite Current Time this often */
	int64_t layout_retry_us;	/* delay before reconnecting after a cache drop */
	unsigned int layout_cache_drops; /* cache drops for a bad layout before giving up
					  * (NOT_SUPPORTED policy); resets on a good layout */
	uint64_t seed;			/* jitter PRNG seed when ops->random is NULL */
};

/* Why a link stopped in NEEDS_REPAIR. */
enum gw_link_repair {
	GW_LINK_REPAIR_BOND_LOST = 0,	/* authentication failed or key missing */
	GW_LINK_REPAIR_SEQ_REGRESSED,	/* the wearable's last seq is before our durable
					 * seq: a reset wearable; its records would be
					 * dropped as duplicates */
};

/* One characteristic found on the device (gw_link_gatt_layout). */
struct gw_gatt_char {
	int role;			/* enum gw_char, or -1 for a UUID that is not ours */
	unsigned int props;		/* enum gw_char_prop */
};

/* Every op gets the device address the link was created with. All are
 * optional (NULL: not called), except that a link without connect,
 * read_char, write_char, start_notify and store_records cannot work. */
struct gw_link_ops {
	void (*connect)(const char *dev, void *user_data);
	void (*disconnect)(const char *dev, void *user_data);
	/* Drop BlueZ's stale state for dev: its GATT cache (and the device
	 * object of a device that is not bonded). Must never remove a bond. */
	void (*remove_device_cache)(const char *dev, void *user_data);
	void (*read_char)(const char *dev, enum gw_char ch, void *user_data);
	void (*write_char)(const char *dev, enum gw_char ch, const uint8_t *val,
			   size_t len, void *user_data);
	void (*start_notify)(const char *dev, enum gw_char ch, void *user_data);
	/* Asynchronous durability. recs[n] (n >= 1) is one handover, valid
	 * during the call. The store commits handovers in the order it got
	 * them and then calls gw_link_store_committed() with the seq of the
	 * last record of the newest committed handover (or
	 * gw_link_store_failed() if it cannot). */
	void (*store_records)(const char *dev, const struct wb_record *recs,
			      size_t n, void *user_data);
	void (*state_changed)(const char *dev, enum gw_link_state old_state,
			      enum gw_link_state new_state, void *user_data);
	/* an error was classified and its policy applied (for logs and the
	 * central's adapter health accounting) */
	void (*error)(const char *dev, enum gw_ble_err err,
		      enum gw_link_state in_state, void *user_data);
	void (*needs_repair)(const char *dev, enum gw_link_repair why, void *user_data);
	void (*device_info)(const char *dev, enum gw_char which, const char *value,
			    void *user_data);
	void (*battery)(const char *dev, unsigned int pct, void *user_data);
	void (*features)(const char *dev, const struct wb_features *f, void *user_data);
	/* a value that did not decode; the link stays up */
	void (*malformed)(const char *dev, enum gw_char ch, int err,
			  const struct wb_err *where, void *user_data);
	/* uniform 32-bit random numbers for jitter; NULL: a PRNG seeded with
	 * config.seed */
	uint32_t (*random)(void *user_data);
	/* May this link start a Connect() now? NULL: always. When false the
	 * link waits in SCANNING until gw_link_kick(). The central uses it to
	 * serialise connection attempts. */
	bool (*may_connect)(const char *dev, void *user_data);
};

struct gw_link_stats {
	enum gw_link_state state;
	enum gw_ble_err last_error;		/* GW_BLE_OK: none yet */
	int64_t last_error_time;		/* GW_LINK_NEVER: none yet */
	unsigned int errors[GW_BLE_ERR_COUNT];	/* per class, since creation */
	unsigned int consecutive[GW_BLE_ERR_COUNT]; /* per class, the current run */
	int64_t retry_at;			/* end of the backoff, or GW_LINK_NO_DEADLINE */
	unsigned int connect_attempts;
	unsigned int connections;		/* successful */
	unsigned int reconnects;		/* connections after the first */
	unsigned int cache_clears;		/* remove_device_cache() calls */
	unsigned int layouts_invalid;
	unsigned int scan_timeouts;
	bool connected;
	int64_t connected_us;			/* total time connected, up to `now` */
	int64_t last_seen;			/* last advertisement, or GW_LINK_NEVER */
	int rssi;
	bool have_durable_seq;
	uint32_t durable_seq;			/* every record up to it is committed */
	bool have_deleted_seq;
	uint32_t deleted_seq;			/* the wearable confirmed deleting up to it */
	bool history_synced;			/* a sync completed on this connection */
	uint64_t records_stored;		/* handed to store_records */
	uint64_t records_committed;
	uint64_t duplicates_dropped;
	uint64_t malformed;
	uint64_t pending_records;		/* handed over, not committed */
	unsigned int syncs_started;
	unsigned int syncs_completed;
	unsigned int syncs_failed;
	unsigned int deletes;			/* deletes the wearable confirmed */
	unsigned int time_writes;
};

typedef struct gw_link GwLink;

/* Fills cfg with the defaults (the policy table is in link.c). */
void gw_link_config_init(struct gw_link_config *cfg);

/* cfg NULL: defaults. Starts in WAITING_ADAPTER. ops is copied. */
GwLink *gw_link_new(const char *address, const struct gw_link_config *cfg,
		    const struct gw_link_ops *ops, void *user_data);
void gw_link_free(GwLink *link);			/* NULL-safe */

/* The last seq the store holds for this wearable, loaded at start-up;
 * without it the first sync asks for ALL records. Only moves forward. */
void gw_link_set_durable_seq(GwLink *link, uint32_t seq);

/* ---- events from the central / the BlueZ adapter ---- */
void gw_link_adapter_ready(GwLink *link, bool ready, int64_t now);
void gw_link_device_seen(GwLink *link, int rssi, int64_t now);	/* an advertisement */
void gw_link_device_lost(GwLink *link, int64_t now);		/* object removed */
void gw_link_connect_done(GwLink *link, enum gw_ble_err err, int64_t now);
void gw_link_connected_changed(GwLink *link, bool connected, int64_t now);
void gw_link_services_resolved(GwLink *link, bool resolved, int64_t now);
/* The characteristics found on the device, after ServicesResolved; the
 * array is copied. */
void gw_link_gatt_layout(GwLink *link, const struct gw_gatt_char *chars, size_t n,
			 int64_t now);
void gw_link_read_done(GwLink *link, enum gw_char ch, enum gw_ble_err err,
		       const uint8_t *val, size_t len, int64_t now);
void gw_link_write_done(GwLink *link, enum gw_char ch, enum gw_ble_err err,
			int64_t now);
void gw_link_notify_started(GwLink *link, enum gw_char ch, enum gw_ble_err err,
			    int64_t now);
/* A notification or indication value. */
void gw_link_value(GwLink *link, enum gw_char ch, const uint8_t *val, size_t len,
		   int64_t now);

/* ---- events from the store ---- */
void gw_link_store_committed(GwLink *link, uint32_t up_to_seq, int64_t now);
/* The store dropped every handover not yet committed: they are forgotten
 * (they will come again from the wearable's history). */
void gw_link_store_failed(GwLink *link, int64_t now);

/* ---- the gateway's wall clock ---- */
/* synced: whether the system clock is synchronised (NTP); unix_us: the
 * wall time at `now`, used for Current Time writes. */
void gw_link_clock(GwLink *link, bool synced, int64_t unix_us, int64_t now);

/* ---- control ---- */
/* Leave NEEDS_REPAIR after a human paired the wearable again.
 * new_identity: the wearable was reset, forget its durable seq. */
void gw_link_repaired(GwLink *link, bool new_identity, int64_t now);
void gw_link_set_enabled(GwLink *link, bool enabled, int64_t now);
/* A link waiting for a connect slot (may_connect said no) asks again. */
void gw_link_kick(GwLink *link, int64_t now);

void gw_link_tick(GwLink *link, int64_t now);
int64_t gw_link_next_deadline(const GwLink *link);	/* GW_LINK_NO_DEADLINE if none */

/* ---- reading ---- */
enum gw_link_state gw_link_get_state(const GwLink *link);
const char *gw_link_get_address(const GwLink *link);
/* now: to count the current connection's time */
void gw_link_get_stats(const GwLink *link, int64_t now, struct gw_link_stats *ret);
/* true while waiting for a connect slot (may_connect said no) */
bool gw_link_wants_connect(const GwLink *link);
const char *gw_link_state_name(enum gw_link_state s);
const char *gw_link_action_name(enum gw_link_action a);
const char *gw_link_repair_name(enum gw_link_repair r);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwLink, gw_link_free)

#endif
