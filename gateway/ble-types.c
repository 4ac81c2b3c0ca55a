/* SPDX-License-Identifier: MIT */
/*
 * The tables behind gateway/ble-types.h: names, UUIDs and what the
 * profile (docs/protocol-gatt.md 1.1) requires of each characteristic.
 */
#include <stddef.h>
#include <strings.h>

#include "ble-types.h"
#include "wearable.h"

const char *gw_ble_err_name(enum gw_ble_err e)
{
	switch (e) {
	case GW_BLE_OK:
		return "ok";
	case GW_BLE_ERR_IN_PROGRESS:
		return "in-progress";
	case GW_BLE_ERR_ABORT_BY_LOCAL:
		return "abort-by-local";
	case GW_BLE_ERR_NOT_READY:
		return "not-ready";
	case GW_BLE_ERR_FAILED:
		return "failed";
	case GW_BLE_ERR_AUTH:
		return "auth";
	case GW_BLE_ERR_TIMEOUT:
		return "timeout";
	case GW_BLE_ERR_NOT_CONNECTED:
		return "not-connected";
	case GW_BLE_ERR_DOES_NOT_EXIST:
		return "does-not-exist";
	case GW_BLE_ERR_NOT_SUPPORTED:
		return "not-supported";
	case GW_BLE_ERR_BLUEZ_GONE:
		return "bluez-gone";
	}
	return "invalid";
}

struct char_info {
	const char *name;
	const char *uuid;
	unsigned int props;
	bool mandatory;
};

/*
 * Indexed by enum gw_char. Properties are the minimum the gateway needs,
 * not everything the profile lists: Features may also notify and Battery
 * may notify, but the gateway only reads them, so a wearable without those
 * flags is still usable. Current Time is optional because the Features
 * flag WB_FEATURE_TIME_SET says a wearable may not accept time writes;
 * the Device Information strings are optional in the profile.
 */
static const struct char_info chars[GW_CHAR_COUNT] = {
	[GW_CHAR_POSTURE] = { "posture", WB_UUID_POSTURE, GW_PROP_NOTIFY, true },
	[GW_CHAR_STEPS] = { "steps", WB_UUID_STEPS, GW_PROP_NOTIFY, true },
	[GW_CHAR_PAIN] = { "pain", WB_UUID_PAIN, GW_PROP_INDICATE, true },
	[GW_CHAR_HISTORY_CP] = { "history-cp", WB_UUID_HISTORY_CP,
				 GW_PROP_WRITE | GW_PROP_INDICATE, true },
	[GW_CHAR_HISTORY_DATA] = { "history-data", WB_UUID_HISTORY_DATA,
				   GW_PROP_NOTIFY, true },
	[GW_CHAR_FEATURES] = { "features", WB_UUID_FEATURES, GW_PROP_READ, true },
	[GW_CHAR_STATUS] = { "status", WB_UUID_STATUS,
			     GW_PROP_READ | GW_PROP_NOTIFY, true },
	[GW_CHAR_BATTERY] = { "battery", WB_UUID_BATTERY_LEVEL, GW_PROP_READ, true },
	[GW_CHAR_CURRENT_TIME] = { "current-time", WB_UUID_CURRENT_TIME,
				   GW_PROP_WRITE, false },
	[GW_CHAR_MANUFACTURER] = { "manufacturer", WB_UUID_MANUFACTURER,
				   GW_PROP_READ, false },
	[GW_CHAR_MODEL] = { "model", WB_UUID_MODEL_NUMBER, GW_PROP_READ, false },
	[GW_CHAR_SERIAL] = { "serial", WB_UUID_SERIAL_NUMBER, GW_PROP_READ, false },
	[GW_CHAR_FIRMWARE] = { "firmware", WB_UUID_FIRMWARE_REV, GW_PROP_READ, false },
};

static const struct char_info *char_info(enum gw_char c)
{
	/* an enum may hold any int: the callers pass values from D-Bus maps */
	if ((int) c < 0 || (int) c >= GW_CHAR_COUNT)
		return NULL;
	return &chars[c];
}

const char *gw_char_name(enum gw_char c)
{
	const struct char_info *ci = char_info(c);

	return ci ? ci->name : "invalid";
}

const char *gw_char_uuid(enum gw_char c)
{
	const struct char_info *ci = char_info(c);

	return ci ? ci->uuid : NULL;
}

unsigned int gw_char_required_props(enum gw_char c)
{
	const struct char_info *ci = char_info(c);

	return ci ? ci->props : 0;
}

bool gw_char_mandatory(enum gw_char c)
{
	const struct char_info *ci = char_info(c);

	return ci ? ci->mandatory : false;
}

int gw_char_from_uuid(const char *uuid)
{
	if (!uuid)
		return -1;
	/* BlueZ reports lower case, but a config or a test may not */
	for (int i = 0; i < GW_CHAR_COUNT; i++)
		if (strcasecmp(uuid, chars[i].uuid) == 0)
			return i;
	return -1;
}
