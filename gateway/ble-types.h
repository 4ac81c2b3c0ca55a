/* SPDX-License-Identifier: MIT */
/*
 * Types shared by the BlueZ adapter (gateway/bluez.c, which produces them
 * from D-Bus) and the pure BLE core (gateway/link.c, central.c, which
 * decides on them). No GLib, no I/O: plain values.
 */
#ifndef REHABLINK_GATEWAY_BLE_TYPES_H
#define REHABLINK_GATEWAY_BLE_TYPES_H

#include <stdbool.h>
#include <stdint.h>

/* The error taxonomy of BLE operations. Each class has its own retry
 * policy in the core (backoff, jitter, what to clear first). The adapter
 * maps D-Bus errors to a class in one table (bluez-parse.c). */
enum gw_ble_err {
	GW_BLE_OK = 0,
	GW_BLE_ERR_IN_PROGRESS,		/* org.bluez.Error.InProgress: stale BlueZ state */
	GW_BLE_ERR_ABORT_BY_LOCAL,	/* Failed "le-connection-abort-by-local": retry after the disconnect event */
	GW_BLE_ERR_NOT_READY,		/* org.bluez.Error.NotReady: adapter not powered */
	GW_BLE_ERR_FAILED,		/* org.bluez.Error.Failed and other transient failures */
	GW_BLE_ERR_AUTH,		/* AuthenticationFailed/Rejected/Canceled, key missing: bond lost */
	GW_BLE_ERR_TIMEOUT,		/* no reply in time (ours or D-Bus NoReply/Timeout) */
	GW_BLE_ERR_NOT_CONNECTED,	/* the link went away under the call */
	GW_BLE_ERR_DOES_NOT_EXIST,	/* the object vanished (UnknownObject, DoesNotExist) */
	GW_BLE_ERR_NOT_SUPPORTED,	/* NotSupported, NotPermitted: a profile problem, not transient */
	GW_BLE_ERR_BLUEZ_GONE,		/* bluetoothd left the bus */
};
#define GW_BLE_ERR_COUNT         (GW_BLE_ERR_BLUEZ_GONE + 1)

/* The characteristics the gateway uses, by role; the UUIDs are in
 * proto/wearable.h. */
enum gw_char {
	GW_CHAR_POSTURE = 0,
	GW_CHAR_STEPS,
	GW_CHAR_PAIN,
	GW_CHAR_HISTORY_CP,
	GW_CHAR_HISTORY_DATA,
	GW_CHAR_FEATURES,
	GW_CHAR_STATUS,
	GW_CHAR_BATTERY,
	GW_CHAR_CURRENT_TIME,
	GW_CHAR_MANUFACTURER,
	GW_CHAR_MODEL,
	GW_CHAR_SERIAL,
	GW_CHAR_FIRMWARE,
};
#define GW_CHAR_COUNT            (GW_CHAR_FIRMWARE + 1)

/* GATT characteristic property flags, as in BlueZ's "Flags" property. */
enum gw_char_prop {
	GW_PROP_READ = 1u << 0,
	GW_PROP_WRITE = 1u << 1,		/* write with response */
	GW_PROP_WRITE_NO_RSP = 1u << 2,
	GW_PROP_NOTIFY = 1u << 3,
	GW_PROP_INDICATE = 1u << 4,
};

const char *gw_ble_err_name(enum gw_ble_err e);
const char *gw_char_name(enum gw_char c);
/* The characteristic's UUID (lower case, 128-bit form) and the properties
 * the profile requires of it; returns NULL for an invalid value. */
const char *gw_char_uuid(enum gw_char c);
unsigned int gw_char_required_props(enum gw_char c);
/* true if the profile needs the characteristic (false: optional, e.g. the
 * Device Information strings) */
bool gw_char_mandatory(enum gw_char c);
/* Maps a UUID (any case, 128-bit form) to its role; -1 if not ours. */
int gw_char_from_uuid(const char *uuid);

#endif
