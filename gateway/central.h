/* SPDX-License-Identifier: MIT */
/*
 * The BLE central: one GwLink per allowlisted wearable, the adapter's
 * health, discovery, and the recovery ladder for a wedged adapter.
 *
 * Pure like link.h: events and `now` (monotonic microseconds) come in as
 * calls, actions leave through struct gw_central_ops. A device that is not
 * on the allowlist is never connected: its advertisements are counted and
 * dropped. Per-device events are dispatched to the link by address
 * (compared case-insensitively); events for other addresses are ignored.
 *
 * Discovery (with a service-UUID filter) runs while any wanted wearable is
 * missing, and is restarted every discovery_restart_us because BlueZ
 * discovery goes stale. Connection attempts are serialised (max_connecting)
 * because controllers abort concurrent LE connection attempts
 * (le-connection-abort-by-local).
 *
 * Recovery ladder: wedge_failures consecutive IN_PROGRESS/TIMEOUT/FAILED
 * errors from wearables that were advertising (no connection succeeding in
 * between), or discovery hearing no device at all for nothing_found_us,
 * power-cycles the adapter (Powered=false, hold, Powered=true); at most
 * power_cycle_budget cycles per power_cycle_window_us, then the adapter is
 * reported wedged and left alone for wedged_backoff_us.
 */
#ifndef REHABLINK_GATEWAY_CENTRAL_H
#define REHABLINK_GATEWAY_CENTRAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "ble-types.h"
#include "link.h"

enum gw_central_adapter {
	GW_CENTRAL_ADAPTER_NO_BLUEZ = 0,	/* org.bluez has no owner */
	GW_CENTRAL_ADAPTER_ABSENT,		/* bluetoothd, but not the adapter */
	GW_CENTRAL_ADAPTER_OFF,			/* present, not powered */
	GW_CENTRAL_ADAPTER_READY,		/* present and powered */
	GW_CENTRAL_ADAPTER_CYCLING,		/* our power cycle is running */
};

/* What the recovery ladder did, for the log and the doctor. */
enum gw_central_recovery {
	GW_CENTRAL_RECOVERY_CYCLE_FAILURES = 0,	/* power cycle: links kept failing */
	GW_CENTRAL_RECOVERY_CYCLE_SILENT,	/* power cycle: discovery heard nothing */
	GW_CENTRAL_RECOVERY_WEDGED,		/* budget spent: backing off */
	GW_CENTRAL_RECOVERY_POWER_ON,		/* the adapter was off: Powered=true */
};

struct gw_central_config {
	const char *const *allowlist;	/* wearable addresses, copied */
	size_t n_allowlist;
	struct gw_link_config link;	/* for every link; each gets its own seed */
	const char *service_uuid;	/* discovery filter; NULL: WB_UUID_SERVICE */
	int64_t discovery_restart_us;
	int64_t discovery_retry_us;	/* after StartDiscovery failed */
	unsigned int max_connecting;	/* concurrent Connect() calls, >= 1 */
	unsigned int wedge_failures;
	int64_t nothing_found_us;
	unsigned int power_cycle_budget;
	int64_t power_cycle_window_us;
	int64_t power_off_hold_us;	/* how long the adapter stays off */
	int64_t power_timeout_us;	/* for each Powered change to show */
	int64_t power_on_retry_us;	/* adapter present but off: Powered=true this often */
	int64_t wedged_backoff_us;
};

/* link: the per-wearable ops, called with dev = the wearable's address
 * and the central's user_data; link.may_connect is ignored (the central
 * decides). All optional. */
struct gw_central_ops {
	struct gw_link_ops link;
	void (*start_discovery)(const char *service_uuid, void *user_data);
	void (*stop_discovery)(void *user_data);
	void (*set_powered)(bool powered, void *user_data);
	void (*adapter_changed)(enum gw_central_adapter old_state,
				enum gw_central_adapter new_state, void *user_data);
	void (*recovery)(enum gw_central_recovery what, void *user_data);
};

struct gw_central_stats {
	enum gw_central_adapter adapter;
	bool discovering;
	unsigned int discovery_starts;
	unsigned int discovery_restarts;	/* periodic stop + start */
	unsigned int discovery_failures;
	unsigned int power_cycles;		/* since creation */
	unsigned int power_cycles_in_window;
	bool wedged;
	int64_t wedged_until;			/* GW_LINK_NEVER if not wedged */
	unsigned int failure_run;		/* towards wedge_failures */
	int64_t last_found;			/* any advertisement, GW_LINK_NEVER */
	uint64_t ignored_adverts;		/* from devices not on the allowlist */
	unsigned int ignored_devices;		/* distinct, capped at 256 */
	unsigned int ignored_wearables;		/* distinct, advertising our service */
	unsigned int links;
};

typedef struct gw_central GwCentral;

void gw_central_config_init(struct gw_central_config *cfg);

/* Starts with bluetoothd absent; every link waits for the adapter. */
GwCentral *gw_central_new(const struct gw_central_config *cfg,
			  const struct gw_central_ops *ops, void *user_data);
void gw_central_free(GwCentral *c);			/* NULL-safe */

/* ---- adapter events ---- */
void gw_central_bluez_present(GwCentral *c, bool present, int64_t now);
void gw_central_adapter(GwCentral *c, bool present, bool powered, int64_t now);
/* StartDiscovery's reply; IN_PROGRESS (already discovering) counts as ok */
void gw_central_discovery_result(GwCentral *c, enum gw_ble_err err, int64_t now);
/* An advertisement (or a new device object with an RSSI). uuids: its
 * advertised service UUIDs, NULL-terminated, may be NULL. */
void gw_central_device_found(GwCentral *c, const char *address, int rssi,
			     const char *const *uuids, int64_t now);
void gw_central_device_removed(GwCentral *c, const char *address, int64_t now);

/* ---- per-device events, dispatched to the link (see link.h) ---- */
void gw_central_connect_done(GwCentral *c, const char *address, enum gw_ble_err err,
			     int64_t now);
void gw_central_connected_changed(GwCentral *c, const char *address, bool connected,
				  int64_t now);
void gw_central_services_resolved(GwCentral *c, const char *address, bool resolved,
				  int64_t now);
void gw_central_gatt_layout(GwCentral *c, const char *address,
			    const struct gw_gatt_char *chars, size_t n, int64_t now);
void gw_central_read_done(GwCentral *c, const char *address, enum gw_char ch,
			  enum gw_ble_err err, const uint8_t *val, size_t len, int64_t now);
void gw_central_write_done(GwCentral *c, const char *address, enum gw_char ch,
			   enum gw_ble_err err, int64_t now);
void gw_central_notify_started(GwCentral *c, const char *address, enum gw_char ch,
			       enum gw_ble_err err, int64_t now);
void gw_central_value(GwCentral *c, const char *address, enum gw_char ch,
		      const uint8_t *val, size_t len, int64_t now);
void gw_central_store_committed(GwCentral *c, const char *address, uint32_t up_to_seq,
				int64_t now);
void gw_central_store_failed(GwCentral *c, const char *address, int64_t now);

/* ---- the rest of the daemon ---- */
void gw_central_clock(GwCentral *c, bool synced, int64_t unix_us, int64_t now);
void gw_central_set_durable_seq(GwCentral *c, const char *address, uint32_t seq);
void gw_central_repaired(GwCentral *c, const char *address, bool new_identity,
			 int64_t now);
void gw_central_set_enabled(GwCentral *c, const char *address, bool enabled,
			    int64_t now);

void gw_central_tick(GwCentral *c, int64_t now);
int64_t gw_central_next_deadline(const GwCentral *c);	/* GW_LINK_NO_DEADLINE if none */

/* ---- reading ---- */
/* Borrowed; NULL if the address is not allowlisted. Read with
 * gw_link_get_state()/gw_link_get_stats(); feed events through the
 * central so its accounting sees them. */
GwLink *gw_central_get_link(const GwCentral *c, const char *address);
size_t gw_central_n_links(const GwCentral *c);
GwLink *gw_central_link_at(const GwCentral *c, size_t i);	/* allowlist order */
enum gw_central_adapter gw_central_get_adapter(const GwCentral *c);
void gw_central_get_stats(const GwCentral *c, int64_t now, struct gw_central_stats *ret);
const char *gw_central_adapter_name(enum gw_central_adapter a);
const char *gw_central_recovery_name(enum gw_central_recovery r);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwCentral, gw_central_free)

#endif
