/* SPDX-License-Identifier: MIT */
/*
 * GwBle: the wiring of the BLE path (docs/architecture.md, "one wiring
 * file"). It owns a GwBluez (the D-Bus adapter, gateway/bluez.h), a
 * GwCentral (the pure core, gateway/central.h) and one GwJournal per
 * allowlisted wearable (gateway/journal.h), and only translates:
 *
 *   GwBluez events   -> gw_central_* events (now = g_get_monotonic_time())
 *   GwCentral ops    -> gw_bluez_* commands
 *   store_records    -> gw_journal_append, then one batched gw_journal_sync
 *                       (a short timeout source), then
 *                       gw_central_store_committed / _store_failed
 *   time             -> ONE GSource whose ready time is
 *                       gw_central_next_deadline(), dispatching
 *                       gw_central_tick()
 *
 * remove_device_cache (link.h: drop the GATT cache, never a bond): BlueZ
 * has no D-Bus call that drops only the GATT cache, so a device that is
 * paired or bonded gets Disconnect() only (its cache stays: removing the
 * device object would remove the bond), and a device that is neither gets
 * Adapter1.RemoveDevice() (object and cache go; it comes back on the next
 * discovery).
 *
 * Logs under G_LOG_DOMAIN "gw-ble": state changes and errors with
 * g_message (injected and field faults are not bugs, so no g_warning
 * except for a journal that cannot be written), addresses masked unless
 * log_personal.
 */
#ifndef REHABLINK_GATEWAY_BLE_H
#define REHABLINK_GATEWAY_BLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gio/gio.h>

#include "central.h"
#include "journal.h"

/* Where records go instead of the journals (the SQLite store, wired by
 * the daemon). Every call is on the main loop's thread. */
struct gw_ble_sink {
	/* Queues records of one wearable (already deduplicated by the link)
	 * in the owner's open transaction. FALSE: not stored (the link is
	 * told at the next commit, and the wearable keeps them). */
	gboolean (*append)(const char *address, const struct wb_record *recs, size_t n,
			   void *user_data, GError **error);
	/* Ends the owner's transaction durably. FALSE: everything appended
	 * since the last commit is gone. */
	gboolean (*commit)(void *user_data, GError **error);
	/* The link's no-gap durable seq moved: keep it (with the next
	 * commit); and read it back when GwBle starts. */
	void (*set_cursor)(const char *address, uint32_t seq, void *user_data);
	bool (*get_cursor)(const char *address, uint32_t *ret_seq, void *user_data);
	void *user_data;
};

struct gw_ble_config {
	const char *adapter;		/* "hci0"; NULL or "": the first one */
	const char *const *allowlist;	/* wearable addresses (any case), copied */
	size_t n_allowlist;
	const char *state_dir;		/* journals: <state_dir>/<AABBCCDDEEFF>.journal;
					 * unused with a sink */
	const struct gw_ble_sink *sink;	/* NULL: the journals; copied */
	bool log_personal;		/* full addresses in the log */
	bool clock_synced;		/* the system clock is NTP-synchronised
					 * (default true) */
	GDBusConnection *conn;		/* NULL: the system bus (honours
					 * DBUS_SYSTEM_BUS_ADDRESS) */
	/* the core's tuning; NULL: gw_central_config_init() defaults. The
	 * allowlist fields in it are ignored (the one above wins). */
	const struct gw_central_config *central;
	unsigned int sync_delay_ms;	/* journal sync / sink commit batching;
					 * default 20; a pain record commits
					 * at once */
	unsigned int connect_timeout_ms; /* GwBluez; 0: its default */
	unsigned int call_timeout_ms;	/* GwBluez; 0: its default */
	/* called after records were made durable and the core told, with
	 * how many records the handovers of this batch carried and the seq
	 * committed; for tests and counters. May be NULL. */
	void (*records_stored)(const char *address, size_t n_records,
			       uint32_t committed_seq, void *user_data);
	void *user_data;
};

typedef struct gw_ble GwBle;

/* Fills the defaults: clock_synced true, sync_delay_ms 20, the rest 0. */
void gw_ble_config_init(struct gw_ble_config *cfg);

/* Opens the journals (and loads each wearable's durable seq into the
 * core), then connects to bluetoothd's bus. Fails on an empty allowlist,
 * an invalid address, a journal that cannot be opened or a bus that
 * cannot be reached. */
GwBle *gw_ble_new(const struct gw_ble_config *cfg, GError **error);
/* NULL-safe; syncs what the journals still hold. */
void gw_ble_free(GwBle *ble);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwBle, gw_ble_free)

/* Borrowed, for readers (link states and stats, adapter state). Feed no
 * events through it. */
GwCentral *gw_ble_get_central(const GwBle *ble);
/* Borrowed; NULL if the address is not allowlisted. */
GwJournal *gw_ble_get_journal(const GwBle *ble, const char *address);
/* With a sink: the owner committed its transaction itself (which holds
 * what was appended): the links learn it now. */
void gw_ble_sink_committed(GwBle *ble);
/* With a sink: the owner's commit failed: everything appended since the
 * last commit is gone, the links are told so (the wearables keep it). */
void gw_ble_sink_lost(GwBle *ble);
/* Tell the core the clock changed synchronisation. */
void gw_ble_set_clock_synced(GwBle *ble, bool synced);
/* Asks bluetoothd to remove a device (Adapter1.RemoveDevice: the object,
 * its bond and GATT cache), for a wearable the gateway forgets. */
void gw_ble_remove_device(GwBle *ble, const char *address);

#endif
