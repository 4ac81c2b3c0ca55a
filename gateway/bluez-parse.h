/* SPDX-License-Identifier: MIT */
/*
 * Pure helpers of the BlueZ adapter: no bus, no state, no logging.
 *
 * - property dicts (a{sv}, as in InterfacesAdded, GetManagedObjects and
 *   a proxy's cache) to the structs of bluez.h; a dict that is not a{sv},
 *   lacks a mandatory key or has a known key of the wrong type is rejected
 *   with a GW_BLUEZ_PARSE_ERROR saying which key, and the output is left
 *   untouched;
 * - the one table from D-Bus errors to enum gw_ble_err;
 * - device addresses: validation, normalisation, object paths, masking.
 */
#ifndef REHABLINK_GATEWAY_BLUEZ_PARSE_H
#define REHABLINK_GATEWAY_BLUEZ_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "ble-types.h"
#include "bluez.h"

#define GW_BLUEZ_PARSE_ERROR (gw_bluez_parse_error_quark())
GQuark gw_bluez_parse_error_quark(void);

enum gw_bluez_parse_error {
	GW_BLUEZ_PARSE_ERROR_NOT_DICT,	/* NULL or not a{sv} */
	GW_BLUEZ_PARSE_ERROR_MISSING,	/* a mandatory key is absent */
	GW_BLUEZ_PARSE_ERROR_TYPE,	/* a known key has the wrong type */
	GW_BLUEZ_PARSE_ERROR_VALUE,	/* right type, invalid value (address, UUID, path) */
};

/* Adapter1 properties: Address and Powered are mandatory, Discovering
 * optional. path is the adapter's object path; its last component is the
 * name ("hci0"). ret->present is set. */
gboolean gw_bluez_parse_adapter(const char *path, GVariant *props,
				struct gw_bluez_adapter *ret, GError **error);

/* Device1 properties: Address is mandatory; AddressType, Name, RSSI,
 * UUIDs, Paired, Bonded, Connected, Trusted, Blocked, ServicesResolved
 * optional (false/absent when missing). On success *ret owns uuids and
 * name: release with gw_bluez_device_clear(). */
gboolean gw_bluez_parse_device(GVariant *props, struct gw_bluez_device *ret,
			       GError **error);
void gw_bluez_device_clear(struct gw_bluez_device *dev);	/* NULL-safe, idempotent */
void gw_bluez_device_copy(struct gw_bluez_device *dst, const struct gw_bluez_device *src);

/* GattCharacteristic1 properties: UUID and Flags mandatory; Notifying
 * and Service optional. role comes from gw_char_from_uuid();
 * service_uuid is left "" (the service is another object).
 * ret_notifying and ret_service may be NULL; *ret_service is newly
 * allocated (NULL when absent). */
gboolean gw_bluez_parse_char(GVariant *props, struct gw_bluez_gatt_char *ret,
			     bool *ret_notifying, char **ret_service,
			     GError **error);
/* GattService1 properties: UUID mandatory. */
gboolean gw_bluez_parse_service(GVariant *props, char ret_uuid[GW_BLUEZ_UUID_SIZE],
				GError **error);
/* Flags strings to enum gw_char_prop bits; unknown flags are ignored. */
unsigned int gw_bluez_parse_flags(const char *const *flags);

/*
 * A byte-array property in a dict (e.g. "Value" in PropertiesChanged).
 * Returns a new reference the data points into (unref when done), or
 * NULL when the key is absent or not "ay". An empty array gives
 * *ret_data NULL and *ret_len 0.
 */
GVariant *gw_bluez_lookup_bytes(GVariant *dict, const char *key,
				const uint8_t **ret_data, size_t *ret_len);

/* ---- errors ----------------------------------------------------------- */

/* name: a D-Bus error name (NULL: GW_BLE_ERR_FAILED); message may be
 * NULL. The table is in bluez-parse.c, first match wins. */
enum gw_ble_err gw_bluez_error_from_name(const char *name, const char *message);
/*
 * A GError from g_dbus_connection_call_finish() and friends. NULL error
 * gives GW_BLE_OK. On an error, *ret_name (if not NULL) gets the D-Bus
 * error name or NULL for a local error (our own timeout:
 * G_IO_ERROR_TIMED_OUT), *ret_message the message without GDBus's
 * "GDBus.Error:name: " prefix. Both are newly allocated.
 */
enum gw_ble_err gw_bluez_error_from_gerror(const GError *error, char **ret_name,
					   char **ret_message);

const char *gw_bluez_op_name(enum gw_bluez_op op);

/* ---- addresses, UUIDs and object paths --------------------------------- */

/* "AA:BB:CC:DD:EE:FF" exactly (upper case hex, colons). */
bool gw_bluez_address_valid(const char *s);
/* Any-case hex pairs separated by ':' to upper case; false (and ret
 * untouched) when s is not an address. */
bool gw_bluez_address_normalize(const char *s, char ret[GW_BLUEZ_ADDR_SIZE]);
/* 8-4-4-4-12 hex digits, to lower case; false (ret untouched) otherwise. */
bool gw_bluez_uuid_normalize(const char *s, char ret[GW_BLUEZ_UUID_SIZE]);

/* "<adapter_path>/dev_AA_BB_CC_DD_EE_FF", or NULL for an invalid address
 * or adapter path. */
char *gw_bluez_device_path(const char *adapter_path, const char *address);
/*
 * Finds the "dev_XX_XX_XX_XX_XX_XX" component of a device object path or
 * of any object below it (services, characteristics). On success writes
 * the address (upper case) and the length of the device's own path (the
 * prefix up to that component); either output may be NULL.
 */
bool gw_bluez_path_device(const char *path, char ret_address[GW_BLUEZ_ADDR_SIZE],
			  size_t *ret_dev_path_len);
/* true if path is strictly below parent ("/a/b" is below "/a"). */
bool gw_bluez_path_is_below(const char *path, const char *parent);
/* The last component of an object path ("hci0" of "/org/bluez/hci0");
 * NULL when path is not an object path. Borrowed from path. */
const char *gw_bluez_path_basename(const char *path);

/* For logs: "XX:XX:XX:XX:EE:01" keeps the last two bytes, or the whole
 * address when personal is true. Anything not an address gives
 * "XX:XX:XX:XX:XX:XX". Returns buf. */
const char *gw_bluez_address_mask(const char *address, bool personal,
				  char buf[GW_BLUEZ_ADDR_SIZE]);
/* For logs: a copy of text (NULL gives NULL) in which every device
 * address, "AA:BB:CC:DD:EE:01" or as in object paths "AA_BB_CC_DD_EE_01",
 * keeps only its last two bytes ("XX:XX:XX:XX:EE:01", "XX_XX_XX_XX_EE_01");
 * an unchanged copy when personal is true. */
char *gw_bluez_redact(const char *text, bool personal);

#endif
