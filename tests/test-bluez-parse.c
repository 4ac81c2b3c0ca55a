// SPDX-License-Identifier: MIT
/*
 * gateway/bluez-parse.c without a bus: property dicts built with
 * g_variant_new_parsed() as BlueZ 5.66 sends them (doc/org.bluez.*.rst),
 * malformed ones, every row of the error table, addresses and paths.
 * One cmocka test per vector, named after what it covers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <gio/gio.h>

#include "bluez-parse.h"
#include "helpers.h"
#include "wearable.h"

#define A1 "AA:BB:CC:DD:EE:01"

/* ---- error table ------------------------------------------------------- */

struct err_vec {
	const char *name;	/* test name */
	const char *dbus;	/* D-Bus error name */
	const char *message;
	enum gw_ble_err want;
};

/* Every row of the table in bluez-parse.c, and what falls outside it. */
static const struct err_vec err_vecs[] = {
	{ "err/in-progress", GW_BLUEZ_ERROR_IN_PROGRESS, "In Progress", GW_BLE_ERR_IN_PROGRESS },
	{ "err/failed-abort-by-local", GW_BLUEZ_ERROR_FAILED, "le-connection-abort-by-local",
	  GW_BLE_ERR_ABORT_BY_LOCAL },
	{ "err/failed-abort-by-local-in-text", GW_BLUEZ_ERROR_FAILED,
	  "Connect failed: le-connection-abort-by-local (0x3e)", GW_BLE_ERR_ABORT_BY_LOCAL },
	{ "err/failed-other", GW_BLUEZ_ERROR_FAILED, "Software caused connection abort",
	  GW_BLE_ERR_FAILED },
	{ "err/failed-no-message", GW_BLUEZ_ERROR_FAILED, NULL, GW_BLE_ERR_FAILED },
	{ "err/failed-att", GW_BLUEZ_ERROR_FAILED, "Operation failed with ATT error: 0xfd",
	  GW_BLE_ERR_FAILED },
	{ "err/failed-key-missing", GW_BLUEZ_ERROR_FAILED, "Key Missing", GW_BLE_ERR_AUTH },
	{ "err/failed-pin-or-key-missing", GW_BLUEZ_ERROR_FAILED, "PIN or Key Missing",
	  GW_BLE_ERR_AUTH },
	{ "err/connection-attempt-failed", GW_BLUEZ_ERROR_CONNECTION_ATTEMPT_FAILED,
	  "Page Timeout", GW_BLE_ERR_FAILED },
	{ "err/not-ready", GW_BLUEZ_ERROR_NOT_READY, "Resource Not Ready", GW_BLE_ERR_NOT_READY },
	{ "err/auth-failed", GW_BLUEZ_ERROR_AUTH_FAILED, "Authentication Failed", GW_BLE_ERR_AUTH },
	{ "err/auth-rejected", GW_BLUEZ_ERROR_AUTH_REJECTED, "Authentication Rejected",
	  GW_BLE_ERR_AUTH },
	{ "err/auth-canceled", GW_BLUEZ_ERROR_AUTH_CANCELED, "Authentication Canceled",
	  GW_BLE_ERR_AUTH },
	{ "err/auth-timeout", GW_BLUEZ_ERROR_AUTH_TIMEOUT, "Authentication Timeout",
	  GW_BLE_ERR_AUTH },
	{ "err/not-connected", GW_BLUEZ_ERROR_NOT_CONNECTED, "Not Connected",
	  GW_BLE_ERR_NOT_CONNECTED },
	{ "err/does-not-exist", GW_BLUEZ_ERROR_DOES_NOT_EXIST, "Does Not Exist",
	  GW_BLE_ERR_DOES_NOT_EXIST },
	{ "err/dbus-unknown-object", GW_DBUS_ERROR_UNKNOWN_OBJECT, "No such object path",
	  GW_BLE_ERR_DOES_NOT_EXIST },
	{ "err/dbus-unknown-method", GW_DBUS_ERROR_UNKNOWN_METHOD, "No such method",
	  GW_BLE_ERR_DOES_NOT_EXIST },
	{ "err/dbus-unknown-interface", GW_DBUS_ERROR_UNKNOWN_INTERFACE, "No such interface",
	  GW_BLE_ERR_DOES_NOT_EXIST },
	{ "err/not-supported", GW_BLUEZ_ERROR_NOT_SUPPORTED, "Operation is not supported",
	  GW_BLE_ERR_NOT_SUPPORTED },
	{ "err/not-permitted", GW_BLUEZ_ERROR_NOT_PERMITTED, "Read not permitted",
	  GW_BLE_ERR_NOT_SUPPORTED },
	{ "err/not-authorized", GW_BLUEZ_ERROR_NOT_AUTHORIZED, "Operation Not Authorized",
	  GW_BLE_ERR_NOT_SUPPORTED },
	{ "err/invalid-arguments", GW_BLUEZ_ERROR_INVALID_ARGUMENTS, "Invalid Length",
	  GW_BLE_ERR_NOT_SUPPORTED },
	{ "err/invalid-value-length", GW_BLUEZ_ERROR_INVALID_VALUE_LENGTH, "Invalid Length",
	  GW_BLE_ERR_NOT_SUPPORTED },
	{ "err/invalid-offset", GW_BLUEZ_ERROR_INVALID_OFFSET, "Invalid offset",
	  GW_BLE_ERR_NOT_SUPPORTED },
	{ "err/dbus-no-reply", GW_DBUS_ERROR_NO_REPLY, "Did not receive a reply",
	  GW_BLE_ERR_TIMEOUT },
	{ "err/dbus-no-reply-recipient-gone", GW_DBUS_ERROR_NO_REPLY,
	  "Message recipient disconnected from message bus without replying",
	  GW_BLE_ERR_BLUEZ_GONE },
	{ "err/dbus-timeout", GW_DBUS_ERROR_TIMEOUT, "Timeout", GW_BLE_ERR_TIMEOUT },
	{ "err/dbus-timed-out", GW_DBUS_ERROR_TIMED_OUT, "Timed out", GW_BLE_ERR_TIMEOUT },
	{ "err/dbus-service-unknown", GW_DBUS_ERROR_SERVICE_UNKNOWN,
	  "The name org.bluez was not provided by any .service files", GW_BLE_ERR_BLUEZ_GONE },
	{ "err/dbus-name-has-no-owner", GW_DBUS_ERROR_NAME_HAS_NO_OWNER, "No owner",
	  GW_BLE_ERR_BLUEZ_GONE },
	{ "err/dbus-disconnected", GW_DBUS_ERROR_DISCONNECTED, "Disconnected",
	  GW_BLE_ERR_BLUEZ_GONE },
	{ "err/unlisted-already-connected", GW_BLUEZ_ERROR_ALREADY_CONNECTED, "Already Connected",
	  GW_BLE_ERR_FAILED },
	{ "err/unlisted-name", "com.example.Error.Whatever", "x", GW_BLE_ERR_FAILED },
	/* "Key Missing" names the class whatever the name */
	{ "err/key-missing-other-name", "org.bluez.Error.ConnectionAttemptFailed",
	  "PIN or Key Missing", GW_BLE_ERR_AUTH },
	/* a message substring alone does not make InProgress Failed */
	{ "err/in-progress-abort-text", GW_BLUEZ_ERROR_IN_PROGRESS,
	  "le-connection-abort-by-local", GW_BLE_ERR_IN_PROGRESS },
};

static void test_error_name(void **state)
{
	const struct err_vec *v = *state;

	assert_int_equal(gw_bluez_error_from_name(v->dbus, v->message), v->want);
}

/* The same row through the GError GDBus makes of the reply. */
static void test_error_gerror(void **state)
{
	const struct err_vec *v = *state;
	g_autoptr(GError) error = g_dbus_error_new_for_dbus_error(v->dbus,
								 v->message ? v->message : "");
	g_autofree char *name = NULL;
	g_autofree char *message = NULL;

	assert_int_equal(gw_bluez_error_from_gerror(error, &name, &message), v->want);
	assert_string_equal(name, v->dbus);
	assert_string_equal(message, v->message ? v->message : "");
	/* the outputs are optional */
	assert_int_equal(gw_bluez_error_from_gerror(error, NULL, NULL), v->want);
}

static void test_error_null_name(void **state)
{
	(void)state;
	assert_int_equal(gw_bluez_error_from_name(NULL, NULL), GW_BLE_ERR_FAILED);
	assert_int_equal(gw_bluez_error_from_name(NULL, "whatever"), GW_BLE_ERR_FAILED);
	assert_int_equal(gw_bluez_error_from_name(NULL, "Key Missing"), GW_BLE_ERR_AUTH);
}

struct local_vec {
	const char *name;
	GQuark (*domain)(void);
	int code;
	enum gw_ble_err want;
	const char *want_dbus;	/* NULL: a local error has no D-Bus name */
};

static GQuark dbus_error_quark(void)
{
	return G_DBUS_ERROR;
}

static const struct local_vec local_vecs[] = {
	/* our own per-call timeout (g_dbus_connection_call timeout_msec) */
	{ "err/local-timed-out", g_io_error_quark, G_IO_ERROR_TIMED_OUT, GW_BLE_ERR_TIMEOUT, NULL },
	{ "err/local-closed", g_io_error_quark, G_IO_ERROR_CLOSED, GW_BLE_ERR_BLUEZ_GONE, NULL },
	{ "err/local-failed", g_io_error_quark, G_IO_ERROR_FAILED, GW_BLE_ERR_FAILED, NULL },
	{ "err/local-invalid-argument", g_io_error_quark, G_IO_ERROR_INVALID_ARGUMENT,
	  GW_BLE_ERR_FAILED, NULL },
	{ "err/local-file-error", g_file_error_quark, G_FILE_ERROR_NOENT, GW_BLE_ERR_FAILED, NULL },
	/* GDBus's own domain, as it maps well-known bus errors */
	{ "err/gdbus-service-unknown", dbus_error_quark, G_DBUS_ERROR_SERVICE_UNKNOWN,
	  GW_BLE_ERR_BLUEZ_GONE, GW_DBUS_ERROR_SERVICE_UNKNOWN },
	{ "err/gdbus-no-reply", dbus_error_quark, G_DBUS_ERROR_NO_REPLY, GW_BLE_ERR_TIMEOUT,
	  GW_DBUS_ERROR_NO_REPLY },
	{ "err/gdbus-unknown-object", dbus_error_quark, G_DBUS_ERROR_UNKNOWN_OBJECT,
	  GW_BLE_ERR_DOES_NOT_EXIST, GW_DBUS_ERROR_UNKNOWN_OBJECT },
	{ "err/gdbus-name-has-no-owner", dbus_error_quark, G_DBUS_ERROR_NAME_HAS_NO_OWNER,
	  GW_BLE_ERR_BLUEZ_GONE, GW_DBUS_ERROR_NAME_HAS_NO_OWNER },
};

static void test_error_local(void **state)
{
	const struct local_vec *v = *state;
	g_autoptr(GError) error = g_error_new(v->domain(), v->code, "local %d", v->code);
	g_autofree char *name = NULL;
	g_autofree char *message = NULL;

	assert_int_equal(gw_bluez_error_from_gerror(error, &name, &message), v->want);
	if (v->want_dbus)
		assert_string_equal(name, v->want_dbus);
	else
		assert_null(name);
	assert_non_null(message);
}

static void test_error_none(void **state)
{
	char *name = (char *)"untouched";
	char *message = (char *)"untouched";

	(void)state;
	assert_int_equal(gw_bluez_error_from_gerror(NULL, &name, &message), GW_BLE_OK);
	assert_null(name);
	assert_null(message);
}

/* ---- Device1 ----------------------------------------------------------- */

struct dev_vec {
	const char *name;
	const char *props;	/* g_variant_new_parsed text; NULL: a NULL variant */
	int code;		/* -1 success, else enum gw_bluez_parse_error */
	struct {
		const char *address;
		bool random, has_rssi;
		int16_t rssi;
		unsigned int n_uuids;
		const char *uuid0;
		const char *dev_name;
		bool connected, resolved, paired, has_bonded, bonded, trusted, blocked;
	} want;
};

/* A Device1 as BlueZ 5.66 exports a connected, bonded LE wearable. */
#define DEV_FULL \
	"{'Address': <'aa:bb:cc:dd:ee:01'>, 'AddressType': <'random'>," \
	" 'Name': <'RehabLink-01'>, 'Alias': <'RehabLink-01'>, 'Appearance': <uint16 0>," \
	" 'Paired': <true>, 'Bonded': <true>, 'Trusted': <true>, 'Blocked': <false>," \
	" 'LegacyPairing': <false>, 'RSSI': <int16 -61>, 'Connected': <true>," \
	" 'UUIDs': <['00001800-0000-1000-8000-00805f9b34fb', 'A7C10000-5E2B-4C8F-9D3A-1B6E0F2C4D58']>," \
	" 'Adapter': <objectpath '/org/bluez/hci0'>, 'ServicesResolved': <true>," \
	" 'AdvertisingFlags': <[byte 0x06]>," \
	" 'ManufacturerData': <@a{qv} {0x0059: <[byte 1, 2]>}>," \
	" 'ServiceData': <@a{sv} {}>}"

static const struct dev_vec dev_vecs[] = {
	{ "device/bluez-5.66-connected-bonded", DEV_FULL, -1,
	  { A1, true, true, -61, 2, "00001800-0000-1000-8000-00805f9b34fb", "RehabLink-01",
	    true, true, true, true, true, true, false } },
	{ "device/discovered-minimal", "{'Address': <'" A1 "'>}", -1,
	  { A1, false, false, 0, 0, NULL, NULL, false, false, false, false, false, false, false } },
	{ "device/public-no-bonded-property",
	  "{'Address': <'" A1 "'>, 'AddressType': <'public'>, 'Paired': <true>, 'RSSI': <int16 0>}", -1,
	  { A1, false, true, 0, 0, NULL, NULL, false, false, true, false, false, false, false } },
	{ "device/uuid-lower-cased",
	  "{'Address': <'" A1 "'>, 'UUIDs': <['A7C10000-5E2B-4C8F-9D3A-1B6E0F2C4D58']>}", -1,
	  { A1, false, false, 0, 1, WB_UUID_SERVICE, NULL, false, false, false, false, false, false,
	    false } },
	{ "device/blocked", "{'Address': <'" A1 "'>, 'Blocked': <true>}", -1,
	  { A1, false, false, 0, 0, NULL, NULL, false, false, false, false, false, false, true } },
	{ "device/missing-address", "{'Connected': <true>}", GW_BLUEZ_PARSE_ERROR_MISSING, { 0 } },
	{ "device/empty-dict", "@a{sv} {}", GW_BLUEZ_PARSE_ERROR_MISSING, { 0 } },
	{ "device/address-not-string", "{'Address': <42>}", GW_BLUEZ_PARSE_ERROR_TYPE, { 0 } },
	{ "device/address-short", "{'Address': <'AA:BB:CC:DD:EE'>}", GW_BLUEZ_PARSE_ERROR_VALUE,
	  { 0 } },
	{ "device/address-dashes", "{'Address': <'AA-BB-CC-DD-EE-01'>}",
	  GW_BLUEZ_PARSE_ERROR_VALUE, { 0 } },
	{ "device/address-not-hex", "{'Address': <'AA:BB:CC:DD:EE:0G'>}",
	  GW_BLUEZ_PARSE_ERROR_VALUE, { 0 } },
	{ "device/rssi-int32", "{'Address': <'" A1 "'>, 'RSSI': <-60>}", GW_BLUEZ_PARSE_ERROR_TYPE,
	  { 0 } },
	{ "device/connected-string", "{'Address': <'" A1 "'>, 'Connected': <'yes'>}",
	  GW_BLUEZ_PARSE_ERROR_TYPE, { 0 } },
	{ "device/resolved-int", "{'Address': <'" A1 "'>, 'ServicesResolved': <1>}",
	  GW_BLUEZ_PARSE_ERROR_TYPE, { 0 } },
	{ "device/bonded-string", "{'Address': <'" A1 "'>, 'Bonded': <'true'>}",
	  GW_BLUEZ_PARSE_ERROR_TYPE, { 0 } },
	{ "device/uuids-string", "{'Address': <'" A1 "'>, 'UUIDs': <'" WB_UUID_SERVICE "'>}",
	  GW_BLUEZ_PARSE_ERROR_TYPE, { 0 } },
	{ "device/uuids-object-paths", "{'Address': <'" A1 "'>, 'UUIDs': <[objectpath '/a']>}",
	  GW_BLUEZ_PARSE_ERROR_TYPE, { 0 } },
	{ "device/uuid-16-bit", "{'Address': <'" A1 "'>, 'UUIDs': <['180f']>}",
	  GW_BLUEZ_PARSE_ERROR_VALUE, { 0 } },
	{ "device/name-bytes", "{'Address': <'" A1 "'>, 'Name': <b'abc'>}",
	  GW_BLUEZ_PARSE_ERROR_TYPE, { 0 } },
	{ "device/address-type-bool", "{'Address': <'" A1 "'>, 'AddressType': <true>}",
	  GW_BLUEZ_PARSE_ERROR_TYPE, { 0 } },
	{ "device/not-a-dict", "[1, 2, 3]", GW_BLUEZ_PARSE_ERROR_NOT_DICT, { 0 } },
	{ "device/dict-of-strings", "{'Address': '" A1 "'}", GW_BLUEZ_PARSE_ERROR_NOT_DICT, { 0 } },
	{ "device/tuple", "('Address', <'" A1 "'>)", GW_BLUEZ_PARSE_ERROR_NOT_DICT, { 0 } },
	{ "device/null", NULL, GW_BLUEZ_PARSE_ERROR_NOT_DICT, { 0 } },
};

static GVariant *parse_props(const char *text)
{
	GError *error = NULL;
	GVariant *v;

	if (!text)
		return NULL;
	/* a reference of our own, not a floating one */
	v = g_variant_parse(NULL, text, NULL, NULL, &error);
	if (!v)
		fail_msg("vector does not parse: %s", error->message);
	return v;
}

static void test_device(void **state)
{
	const struct dev_vec *v = *state;
	g_autoptr(GVariant) props = parse_props(v->props);
	g_autoptr(GError) error = NULL;
	struct gw_bluez_device dev;
	gboolean ok;

	test_fill(&dev, sizeof(dev));
	ok = gw_bluez_parse_device(props, &dev, &error);
	if (v->code >= 0) {
		assert_false(ok);
		assert_true(g_error_matches(error, GW_BLUEZ_PARSE_ERROR, v->code));
		assert_non_null(error->message);
		assert_true(test_is_pattern(&dev, sizeof(dev)));
		return;
	}
	assert_true(ok);
	assert_null(error);
	assert_string_equal(dev.address, v->want.address);
	assert_int_equal(dev.address_random, v->want.random);
	assert_int_equal(dev.has_rssi, v->want.has_rssi);
	if (v->want.has_rssi)
		assert_int_equal(dev.rssi, v->want.rssi);
	assert_non_null(dev.uuids);
	assert_int_equal(g_strv_length(dev.uuids), v->want.n_uuids);
	if (v->want.uuid0)
		assert_string_equal(dev.uuids[0], v->want.uuid0);
	if (v->want.dev_name)
		assert_string_equal(dev.name, v->want.dev_name);
	else
		assert_null(dev.name);
	assert_int_equal(dev.connected, v->want.connected);
	assert_int_equal(dev.services_resolved, v->want.resolved);
	assert_int_equal(dev.paired, v->want.paired);
	assert_int_equal(dev.has_bonded, v->want.has_bonded);
	assert_int_equal(dev.bonded, v->want.bonded);
	assert_int_equal(dev.trusted, v->want.trusted);
	assert_int_equal(dev.blocked, v->want.blocked);
	gw_bluez_device_clear(&dev);
	assert_null(dev.uuids);
	assert_null(dev.name);
	gw_bluez_device_clear(&dev);	/* idempotent */
	gw_bluez_device_clear(NULL);
}

static void test_device_copy(void **state)
{
	g_autoptr(GVariant) props = parse_props(DEV_FULL);
	struct gw_bluez_device a, b;

	(void)state;
	assert_true(gw_bluez_parse_device(props, &a, NULL));
	gw_bluez_device_copy(&b, &a);
	assert_ptr_not_equal(a.uuids, b.uuids);
	assert_ptr_not_equal(a.name, b.name);
	gw_bluez_device_clear(&a);
	assert_string_equal(b.address, A1);
	assert_string_equal(b.name, "RehabLink-01");
	assert_int_equal(g_strv_length(b.uuids), 2);
	gw_bluez_device_clear(&b);
}

/* ---- Adapter1 ---------------------------------------------------------- */

struct adapter_vec {
	const char *name;
	const char *path;
	const char *props;
	int code;
	struct {
		const char *name, *address;
		bool powered, discovering;
	} want;
};

static const struct adapter_vec adapter_vecs[] = {
	{ "adapter/bluez-5.66-powered", "/org/bluez/hci0",
	  "{'Address': <'00:1a:7d:da:71:13'>, 'AddressType': <'public'>, 'Name': <'gw'>,"
	  " 'Alias': <'gw'>, 'Class': <uint32 0>, 'Powered': <true>, 'PowerState': <'on'>,"
	  " 'Discoverable': <false>, 'Pairable': <true>, 'DiscoverableTimeout': <uint32 180>,"
	  " 'PairableTimeout': <uint32 0>, 'Discovering': <true>, 'UUIDs': <@as []>,"
	  " 'Modalias': <'usb:v1D6Bp0246d0542'>, 'Roles': <['central', 'peripheral']>}", -1,
	  { "hci0", "00:1A:7D:DA:71:13", true, true } },
	{ "adapter/unpowered-no-discovering", "/org/bluez/hci1",
	  "{'Address': <'00:1A:7D:DA:71:14'>, 'Powered': <false>}", -1,
	  { "hci1", "00:1A:7D:DA:71:14", false, false } },
	{ "adapter/missing-powered", "/org/bluez/hci0", "{'Address': <'00:1A:7D:DA:71:13'>}",
	  GW_BLUEZ_PARSE_ERROR_MISSING, { 0 } },
	{ "adapter/missing-address", "/org/bluez/hci0", "{'Powered': <true>}",
	  GW_BLUEZ_PARSE_ERROR_MISSING, { 0 } },
	{ "adapter/powered-string", "/org/bluez/hci0",
	  "{'Address': <'00:1A:7D:DA:71:13'>, 'Powered': <'on'>}", GW_BLUEZ_PARSE_ERROR_TYPE,
	  { 0 } },
	{ "adapter/discovering-int", "/org/bluez/hci0",
	  "{'Address': <'00:1A:7D:DA:71:13'>, 'Powered': <true>, 'Discovering': <uint32 1>}",
	  GW_BLUEZ_PARSE_ERROR_TYPE, { 0 } },
	{ "adapter/address-bad", "/org/bluez/hci0", "{'Address': <'hci0'>, 'Powered': <true>}",
	  GW_BLUEZ_PARSE_ERROR_VALUE, { 0 } },
	{ "adapter/path-not-object-path", "hci0",
	  "{'Address': <'00:1A:7D:DA:71:13'>, 'Powered': <true>}", GW_BLUEZ_PARSE_ERROR_VALUE,
	  { 0 } },
	{ "adapter/path-root", "/", "{'Address': <'00:1A:7D:DA:71:13'>, 'Powered': <true>}",
	  GW_BLUEZ_PARSE_ERROR_VALUE, { 0 } },
	{ "adapter/path-name-too-long", "/org/bluez/hci0123456789012345678901234567890",
	  "{'Address': <'00:1A:7D:DA:71:13'>, 'Powered': <true>}", GW_BLUEZ_PARSE_ERROR_VALUE,
	  { 0 } },
	{ "adapter/not-a-dict", "/org/bluez/hci0", "<true>", GW_BLUEZ_PARSE_ERROR_NOT_DICT, { 0 } },
};

static void test_adapter(void **state)
{
	const struct adapter_vec *v = *state;
	g_autoptr(GVariant) props = parse_props(v->props);
	g_autoptr(GError) error = NULL;
	struct gw_bluez_adapter ad;
	gboolean ok;

	test_fill(&ad, sizeof(ad));
	ok = gw_bluez_parse_adapter(v->path, props, &ad, &error);
	if (v->code >= 0) {
		assert_false(ok);
		assert_true(g_error_matches(error, GW_BLUEZ_PARSE_ERROR, v->code));
		assert_true(test_is_pattern(&ad, sizeof(ad)));
		return;
	}
	assert_true(ok);
	assert_true(ad.present);
	assert_string_equal(ad.name, v->want.name);
	assert_string_equal(ad.address, v->want.address);
	assert_int_equal(ad.powered, v->want.powered);
	assert_int_equal(ad.discovering, v->want.discovering);
}

/* ---- GattCharacteristic1 and GattService1 ------------------------------ */

struct char_vec {
	const char *name;
	const char *props;
	int code;
	struct {
		int role;
		const char *uuid;
		unsigned int props;
		bool notifying;
		const char *service;
	} want;
};

#define CHAR_PROPS(uuid, flags) \
	"{'UUID': <'" uuid "'>, 'Service': <objectpath '/org/bluez/hci0/dev_AA_BB_CC_DD_EE_01/service000c'>," \
	" 'Value': <@ay []>, 'Notifying': <false>, 'Flags': <" flags ">, 'MTU': <uint16 247>}"
#define SVC "/org/bluez/hci0/dev_AA_BB_CC_DD_EE_01/service000c"

static const struct char_vec char_vecs[] = {
	{ "char/posture-notify", CHAR_PROPS(WB_UUID_POSTURE, "['notify']"), -1,
	  { GW_CHAR_POSTURE, WB_UUID_POSTURE, GW_PROP_NOTIFY, false, SVC } },
	{ "char/pain-indicate", CHAR_PROPS(WB_UUID_PAIN, "['indicate']"), -1,
	  { GW_CHAR_PAIN, WB_UUID_PAIN, GW_PROP_INDICATE, false, SVC } },
	{ "char/history-cp-write-indicate", CHAR_PROPS(WB_UUID_HISTORY_CP, "['write', 'indicate']"),
	  -1, { GW_CHAR_HISTORY_CP, WB_UUID_HISTORY_CP, GW_PROP_WRITE | GW_PROP_INDICATE, false,
		SVC } },
	{ "char/features-read-notify", CHAR_PROPS(WB_UUID_FEATURES, "['read', 'notify']"), -1,
	  { GW_CHAR_FEATURES, WB_UUID_FEATURES, GW_PROP_READ | GW_PROP_NOTIFY, false, SVC } },
	{ "char/battery-upper-case-uuid",
	  CHAR_PROPS("00002A19-0000-1000-8000-00805F9B34FB", "['read', 'notify']"), -1,
	  { GW_CHAR_BATTERY, WB_UUID_BATTERY_LEVEL, GW_PROP_READ | GW_PROP_NOTIFY, false, SVC } },
	{ "char/current-time", CHAR_PROPS(WB_UUID_CURRENT_TIME, "['read', 'write', 'notify']"), -1,
	  { GW_CHAR_CURRENT_TIME, WB_UUID_CURRENT_TIME, GW_PROP_READ | GW_PROP_WRITE | GW_PROP_NOTIFY,
	    false, SVC } },
	{ "char/all-flags-and-extras",
	  CHAR_PROPS(WB_UUID_STATUS, "['broadcast', 'read', 'write-without-response', 'write',"
		     " 'notify', 'indicate', 'authenticated-signed-writes', 'extended-properties',"
		     " 'reliable-write', 'encrypt-read', 'authorize']"), -1,
	  { GW_CHAR_STATUS, WB_UUID_STATUS,
	    GW_PROP_READ | GW_PROP_WRITE | GW_PROP_WRITE_NO_RSP | GW_PROP_NOTIFY | GW_PROP_INDICATE,
	    false, SVC } },
	{ "char/no-flags", CHAR_PROPS(WB_UUID_STEPS, "@as []"), -1,
	  { GW_CHAR_STEPS, WB_UUID_STEPS, 0, false, SVC } },
	{ "char/hardware-rev-not-ours", CHAR_PROPS(WB_UUID_HARDWARE_REV, "['read']"), -1,
	  { -1, WB_UUID_HARDWARE_REV, GW_PROP_READ, false, SVC } },
	{ "char/notifying-no-service",
	  "{'UUID': <'" WB_UUID_POSTURE "'>, 'Flags': <['notify']>, 'Notifying': <true>}", -1,
	  { GW_CHAR_POSTURE, WB_UUID_POSTURE, GW_PROP_NOTIFY, true, NULL } },
	{ "char/missing-uuid", "{'Flags': <['read']>}", GW_BLUEZ_PARSE_ERROR_MISSING, { 0 } },
	{ "char/missing-flags", "{'UUID': <'" WB_UUID_POSTURE "'>}", GW_BLUEZ_PARSE_ERROR_MISSING,
	  { 0 } },
	{ "char/uuid-16-bit", "{'UUID': <'2a19'>, 'Flags': <['read']>}", GW_BLUEZ_PARSE_ERROR_VALUE,
	  { 0 } },
	{ "char/uuid-int", "{'UUID': <uint16 0x2a19>, 'Flags': <['read']>}",
	  GW_BLUEZ_PARSE_ERROR_TYPE, { 0 } },
	{ "char/flags-string", "{'UUID': <'" WB_UUID_POSTURE "'>, 'Flags': <'notify'>}",
	  GW_BLUEZ_PARSE_ERROR_TYPE, { 0 } },
	{ "char/flags-bytes", "{'UUID': <'" WB_UUID_POSTURE "'>, 'Flags': <[byte 0x10]>}",
	  GW_BLUEZ_PARSE_ERROR_TYPE, { 0 } },
	{ "char/service-string",
	  "{'UUID': <'" WB_UUID_POSTURE "'>, 'Flags': <['notify']>, 'Service': <'" SVC "'>}",
	  GW_BLUEZ_PARSE_ERROR_TYPE, { 0 } },
	{ "char/notifying-string",
	  "{'UUID': <'" WB_UUID_POSTURE "'>, 'Flags': <['notify']>, 'Notifying': <'no'>}",
	  GW_BLUEZ_PARSE_ERROR_TYPE, { 0 } },
	{ "char/not-a-dict", "@a{ss} {}", GW_BLUEZ_PARSE_ERROR_NOT_DICT, { 0 } },
};

static void test_char(void **state)
{
	const struct char_vec *v = *state;
	g_autoptr(GVariant) props = parse_props(v->props);
	g_autoptr(GError) error = NULL;
	g_autofree char *service = NULL;
	struct gw_bluez_gatt_char ch;
	bool notifying = false;
	gboolean ok;

	test_fill(&ch, sizeof(ch));
	ok = gw_bluez_parse_char(props, &ch, &notifying, &service, &error);
	if (v->code >= 0) {
		assert_false(ok);
		assert_true(g_error_matches(error, GW_BLUEZ_PARSE_ERROR, v->code));
		assert_true(test_is_pattern(&ch, sizeof(ch)));
		assert_null(service);
		return;
	}
	assert_true(ok);
	assert_int_equal(ch.role, v->want.role);
	assert_string_equal(ch.uuid, v->want.uuid);
	assert_string_equal(ch.service_uuid, "");
	assert_int_equal(ch.props, v->want.props);
	assert_int_equal(notifying, v->want.notifying);
	if (v->want.service)
		assert_string_equal(service, v->want.service);
	else
		assert_null(service);
	/* the optional outputs may be NULL */
	assert_true(gw_bluez_parse_char(props, &ch, NULL, NULL, NULL));
}

/* Every role's UUID maps back to its role, in any case. */
static void test_char_roles(void **state)
{
	(void)state;
	for (int c = 0; c < GW_CHAR_COUNT; c++) {
		g_autofree char *upper = g_ascii_strup(gw_char_uuid((enum gw_char)c), -1);
		g_autofree char *text = g_strdup_printf("{'UUID': <'%s'>, 'Flags': <['read']>}", upper);
		g_autoptr(GVariant) props = parse_props(text);
		struct gw_bluez_gatt_char ch;

		assert_true(gw_bluez_parse_char(props, &ch, NULL, NULL, NULL));
		assert_int_equal(ch.role, c);
		assert_string_equal(ch.uuid, gw_char_uuid((enum gw_char)c));
	}
}

static void test_flags(void **state)
{
	const char *none[] = { NULL };
	const char *unknown[] = { "secure-read", "x-notify", "", NULL };
	const char *dup[] = { "read", "read", "indicate", NULL };

	(void)state;
	assert_int_equal(gw_bluez_parse_flags(NULL), 0);
	assert_int_equal(gw_bluez_parse_flags(none), 0);
	assert_int_equal(gw_bluez_parse_flags(unknown), 0);
	assert_int_equal(gw_bluez_parse_flags(dup), GW_PROP_READ | GW_PROP_INDICATE);
}

static void test_service(void **state)
{
	g_autoptr(GVariant) ok = parse_props(
		"{'UUID': <'0000180F-0000-1000-8000-00805F9B34FB'>, 'Primary': <true>,"
		" 'Device': <objectpath '/org/bluez/hci0/dev_AA_BB_CC_DD_EE_01'>, 'Includes': <@ao []>}");
	g_autoptr(GVariant) missing = parse_props("{'Primary': <true>}");
	g_autoptr(GVariant) bad = parse_props("{'UUID': <'battery'>}");
	g_autoptr(GVariant) type = parse_props("{'UUID': <true>}");
	char uuid[GW_BLUEZ_UUID_SIZE];
	GError *error = NULL;

	(void)state;
	assert_true(gw_bluez_parse_service(ok, uuid, NULL));
	assert_string_equal(uuid, WB_UUID_BATTERY_SERVICE);
	test_fill(uuid, sizeof(uuid));
	assert_false(gw_bluez_parse_service(missing, uuid, &error));
	assert_true(g_error_matches(error, GW_BLUEZ_PARSE_ERROR, GW_BLUEZ_PARSE_ERROR_MISSING));
	g_clear_error(&error);
	assert_false(gw_bluez_parse_service(bad, uuid, &error));
	assert_true(g_error_matches(error, GW_BLUEZ_PARSE_ERROR, GW_BLUEZ_PARSE_ERROR_VALUE));
	g_clear_error(&error);
	assert_false(gw_bluez_parse_service(type, uuid, &error));
	assert_true(g_error_matches(error, GW_BLUEZ_PARSE_ERROR, GW_BLUEZ_PARSE_ERROR_TYPE));
	g_clear_error(&error);
	assert_false(gw_bluez_parse_service(NULL, uuid, &error));
	assert_true(g_error_matches(error, GW_BLUEZ_PARSE_ERROR, GW_BLUEZ_PARSE_ERROR_NOT_DICT));
	g_clear_error(&error);
	assert_true(test_is_pattern(uuid, sizeof(uuid)));
}

/* ---- Value bytes --------------------------------------------------------- */

struct bytes_vec {
	const char *name;
	const char *dict;
	bool found;
	const char *hex;
};

static const struct bytes_vec bytes_vecs[] = {
	{ "value/notification", "{'Value': <[byte 0x01, 0x02, 0xff]>}", true, "01 02 ff" },
	{ "value/with-notifying", "{'Notifying': <true>, 'Value': <[byte 0x00, 0x00]>}", true, "00 00" },
	{ "value/empty", "{'Value': <@ay []>}", true, "" },
	{ "value/absent", "{'Notifying': <true>}", false, NULL },
	{ "value/as-string", "{'Value': <'abc'>}", false, NULL },
	{ "value/as-int-array", "{'Value': <[1, 2]>}", false, NULL },
	{ "value/not-a-dict", "[byte 1, 2]", false, NULL },
};

static void test_bytes(void **state)
{
	const struct bytes_vec *v = *state;
	g_autoptr(GVariant) dict = parse_props(v->dict);
	g_autoptr(GVariant) held = NULL;
	const uint8_t *data = NULL;
	size_t len = 99;
	uint8_t want[64];
	size_t n;

	held = gw_bluez_lookup_bytes(dict, "Value", &data, &len);
	if (!v->found) {
		assert_null(held);
		return;
	}
	assert_non_null(held);
	n = test_hex(v->hex, want, sizeof(want));
	assert_int_equal(len, n);
	if (n)
		assert_memory_equal(data, want, n);
	else
		assert_null(data);
}

static void test_bytes_null(void **state)
{
	const uint8_t *data;
	size_t len;

	(void)state;
	assert_null(gw_bluez_lookup_bytes(NULL, "Value", &data, &len));
}

/* ---- addresses, UUIDs, paths --------------------------------------------- */

struct addr_vec {
	const char *name;
	const char *in;
	const char *norm;	/* NULL: invalid */
	bool valid;		/* already canonical */
	const char *masked;
};

static const struct addr_vec addr_vecs[] = {
	{ "address/canonical", "AA:BB:CC:DD:EE:01", "AA:BB:CC:DD:EE:01", true, "XX:XX:XX:XX:EE:01" },
	{ "address/lower-case", "aa:bb:cc:dd:ee:0f", "AA:BB:CC:DD:EE:0F", false,
	  "XX:XX:XX:XX:EE:0F" },
	{ "address/mixed-case", "00:1a:7D:dA:71:13", "00:1A:7D:DA:71:13", false,
	  "XX:XX:XX:XX:71:13" },
	{ "address/dashes", "AA-BB-CC-DD-EE-01", NULL, false, "XX:XX:XX:XX:XX:XX" },
	{ "address/underscores", "AA_BB_CC_DD_EE_01", NULL, false, "XX:XX:XX:XX:XX:XX" },
	{ "address/short", "AA:BB:CC:DD:EE:1", NULL, false, "XX:XX:XX:XX:XX:XX" },
	{ "address/long", "AA:BB:CC:DD:EE:011", NULL, false, "XX:XX:XX:XX:XX:XX" },
	{ "address/five-bytes", "AA:BB:CC:DD:EE", NULL, false, "XX:XX:XX:XX:XX:XX" },
	{ "address/not-hex", "AA:BB:CC:DD:EE:0G", NULL, false, "XX:XX:XX:XX:XX:XX" },
	{ "address/no-separators", "AABBCCDDEE01ABCDE", NULL, false, "XX:XX:XX:XX:XX:XX" },
	{ "address/empty", "", NULL, false, "XX:XX:XX:XX:XX:XX" },
	{ "address/null", NULL, NULL, false, "XX:XX:XX:XX:XX:XX" },
};

static void test_address(void **state)
{
	const struct addr_vec *v = *state;
	char out[GW_BLUEZ_ADDR_SIZE];
	char buf[GW_BLUEZ_ADDR_SIZE];

	test_fill(out, sizeof(out));
	assert_int_equal(gw_bluez_address_normalize(v->in, out), v->norm != NULL);
	if (v->norm)
		assert_string_equal(out, v->norm);
	else
		assert_true(test_is_pattern(out, sizeof(out)));
	assert_int_equal(gw_bluez_address_valid(v->in), v->valid);
	assert_string_equal(gw_bluez_address_mask(v->in, false, buf), v->masked);
	assert_string_equal(gw_bluez_address_mask(v->in, true, buf),
			    v->norm ? v->norm : "XX:XX:XX:XX:XX:XX");
}

struct redact_vec {
	const char *name;
	const char *in;
	const char *out;
};

static const struct redact_vec redact_vecs[] = {
	{ "redact/object-path",
	  "No such object path '/org/bluez/hci0/dev_AA_BB_CC_DD_EE_99/service000c'",
	  "No such object path '/org/bluez/hci0/dev_XX_XX_XX_XX_EE_99/service000c'" },
	{ "redact/address", "device aa:bb:cc:dd:ee:01 gone", "device XX:XX:XX:XX:ee:01 gone" },
	{ "redact/two", "A1:B2:C3:D4:E5:F6,11:22:33:44:55:66",
	  "XX:XX:XX:XX:E5:F6,XX:XX:XX:XX:55:66" },
	{ "redact/whole-string", "AA:BB:CC:DD:EE:01", "XX:XX:XX:XX:EE:01" },
	{ "redact/mixed-separators", "AA:BB_CC:DD:EE:01", "AA:BB_CC:DD:EE:01" },
	{ "redact/longer-hex-run", "0AA:BB:CC:DD:EE:01", "0AA:BB:CC:DD:EE:01" },
	{ "redact/uuid-untouched", WB_UUID_SERVICE, WB_UUID_SERVICE },
	{ "redact/att-error", "Operation failed with ATT error: 0xfd",
	  "Operation failed with ATT error: 0xfd" },
	{ "redact/short", "AA:BB:CC:DD:EE", "AA:BB:CC:DD:EE" },
	{ "redact/empty", "", "" },
};

static void test_redact(void **state)
{
	const struct redact_vec *v = *state;
	g_autofree char *masked = gw_bluez_redact(v->in, false);
	g_autofree char *personal = gw_bluez_redact(v->in, true);

	assert_string_equal(masked, v->out);
	assert_string_equal(personal, v->in);
}

static void test_redact_null(void **state)
{
	(void)state;
	assert_null(gw_bluez_redact(NULL, false));
	assert_null(gw_bluez_redact(NULL, true));
}

static void test_uuid(void **state)
{
	char out[GW_BLUEZ_UUID_SIZE];

	(void)state;
	assert_true(gw_bluez_uuid_normalize("A7C10000-5E2B-4C8F-9D3A-1B6E0F2C4D58", out));
	assert_string_equal(out, WB_UUID_SERVICE);
	assert_true(gw_bluez_uuid_normalize(WB_UUID_BATTERY_LEVEL, out));
	assert_string_equal(out, WB_UUID_BATTERY_LEVEL);
	test_fill(out, sizeof(out));
	assert_false(gw_bluez_uuid_normalize("2a19", out));
	assert_false(gw_bluez_uuid_normalize("a7c10000-5e2b-4c8f-9d3a-1b6e0f2c4d5", out));
	assert_false(gw_bluez_uuid_normalize("a7c10000-5e2b-4c8f-9d3a-1b6e0f2c4d588", out));
	assert_false(gw_bluez_uuid_normalize("a7c10000_5e2b_4c8f_9d3a_1b6e0f2c4d58", out));
	assert_false(gw_bluez_uuid_normalize("a7c1000-05e2b-4c8f-9d3a-1b6e0f2c4d58", out));
	assert_false(gw_bluez_uuid_normalize("z7c10000-5e2b-4c8f-9d3a-1b6e0f2c4d58", out));
	assert_false(gw_bluez_uuid_normalize("", out));
	assert_false(gw_bluez_uuid_normalize(NULL, out));
	assert_true(test_is_pattern(out, sizeof(out)));
}

struct path_vec {
	const char *name;
	const char *path;
	const char *address;	/* NULL: not a device path */
	size_t dev_len;
};

#define DEVP "/org/bluez/hci0/dev_AA_BB_CC_DD_EE_01"

static const struct path_vec path_vecs[] = {
	{ "path/device", DEVP, A1, sizeof(DEVP) - 1 },
	{ "path/service", DEVP "/service000c", A1, sizeof(DEVP) - 1 },
	{ "path/characteristic", DEVP "/service000c/char000d", A1, sizeof(DEVP) - 1 },
	{ "path/descriptor", DEVP "/service000c/char000d/desc000f", A1, sizeof(DEVP) - 1 },
	{ "path/lower-case-hex", "/org/bluez/hci0/dev_aa_bb_cc_dd_ee_0f", "AA:BB:CC:DD:EE:0F",
	  sizeof("/org/bluez/hci0/dev_aa_bb_cc_dd_ee_0f") - 1 },
	{ "path/other-prefix", "/x/dev_00_11_22_33_44_55", "00:11:22:33:44:55",
	  sizeof("/x/dev_00_11_22_33_44_55") - 1 },
	{ "path/adapter", "/org/bluez/hci0", NULL, 0 },
	{ "path/agent-manager", "/org/bluez", NULL, 0 },
	{ "path/root", "/", NULL, 0 },
	{ "path/short-address", "/org/bluez/hci0/dev_AA_BB_CC_DD_EE", NULL, 0 },
	{ "path/long-address", "/org/bluez/hci0/dev_AA_BB_CC_DD_EE_01_02", NULL, 0 },
	{ "path/bad-hex", "/org/bluez/hci0/dev_AA_BB_CC_DD_EE_0X", NULL, 0 },
	{ "path/colons", "/org/bluez/hci0/dev_AA:BB:CC:DD:EE:01", NULL, 0 },
	{ "path/no-prefix", "/org/bluez/hci0/AA_BB_CC_DD_EE_01_xxxx", NULL, 0 },
	{ "path/not-object-path", "org/bluez/hci0/dev_AA_BB_CC_DD_EE_01", NULL, 0 },
	{ "path/trailing-slash", DEVP "/", NULL, 0 },
	{ "path/null", NULL, NULL, 0 },
};

static void test_path(void **state)
{
	const struct path_vec *v = *state;
	char addr[GW_BLUEZ_ADDR_SIZE];
	size_t len = 12345;

	test_fill(addr, sizeof(addr));
	assert_int_equal(gw_bluez_path_device(v->path, addr, &len), v->address != NULL);
	if (!v->address) {
		assert_true(test_is_pattern(addr, sizeof(addr)));
		assert_int_equal(len, 12345);
		return;
	}
	assert_string_equal(addr, v->address);
	assert_int_equal(len, v->dev_len);
	assert_true(gw_bluez_path_device(v->path, NULL, NULL));
}

static void test_device_path(void **state)
{
	g_autofree char *p1 = gw_bluez_device_path("/org/bluez/hci0", "aa:bb:cc:dd:ee:01");
	g_autofree char *p2 = gw_bluez_device_path("/", A1);
	g_autofree char *p3 = gw_bluez_device_path("/org/bluez/hci0", "AA:BB:CC:DD:EE");
	g_autofree char *p4 = gw_bluez_device_path("hci0", A1);
	g_autofree char *p5 = gw_bluez_device_path(NULL, A1);
	char addr[GW_BLUEZ_ADDR_SIZE];

	(void)state;
	assert_string_equal(p1, DEVP);
	assert_string_equal(p2, "/dev_AA_BB_CC_DD_EE_01");
	assert_null(p3);
	assert_null(p4);
	assert_null(p5);
	/* round trip */
	assert_true(gw_bluez_path_device(p1, addr, NULL));
	assert_string_equal(addr, A1);
}

static void test_path_helpers(void **state)
{
	(void)state;
	assert_true(gw_bluez_path_is_below(DEVP, "/org/bluez/hci0"));
	assert_true(gw_bluez_path_is_below(DEVP "/service000c", "/org/bluez/hci0"));
	assert_true(gw_bluez_path_is_below("/org", "/"));
	assert_false(gw_bluez_path_is_below("/", "/"));
	assert_false(gw_bluez_path_is_below("/org/bluez/hci0", "/org/bluez/hci0"));
	assert_false(gw_bluez_path_is_below("/org/bluez/hci01/dev_AA_BB_CC_DD_EE_01",
					    "/org/bluez/hci0"));
	assert_false(gw_bluez_path_is_below("/org/bluez/hci0/", "/org/bluez/hci0"));
	assert_false(gw_bluez_path_is_below(NULL, "/"));
	assert_false(gw_bluez_path_is_below("/a", NULL));

	assert_string_equal(gw_bluez_path_basename("/org/bluez/hci0"), "hci0");
	assert_string_equal(gw_bluez_path_basename("/hci1"), "hci1");
	assert_string_equal(gw_bluez_path_basename("/"), "");
	assert_null(gw_bluez_path_basename("hci0"));
	assert_null(gw_bluez_path_basename("/org/"));
	assert_null(gw_bluez_path_basename(NULL));
}

static void test_op_names(void **state)
{
	(void)state;
	for (int i = 0; i < GW_BLUEZ_OP_COUNT; i++) {
		const char *name = gw_bluez_op_name((enum gw_bluez_op)i);

		assert_string_not_equal(name, "unknown");
		for (int j = 0; j < i; j++)
			assert_string_not_equal(name, gw_bluez_op_name((enum gw_bluez_op)j));
	}
	assert_string_equal(gw_bluez_op_name((enum gw_bluez_op)GW_BLUEZ_OP_COUNT), "unknown");
}

/* ---- main ------------------------------------------------------------------- */

#define ADD_VECS(tests, n, vecs, fn)						\
	for (size_t i = 0; i < G_N_ELEMENTS(vecs); i++)				\
		tests[n++] = (struct CMUnitTest){ .name = vecs[i].name,		\
						  .test_func = fn,		\
						  .initial_state = (void *)&vecs[i] }
#define ADD(tests, n, fn)							\
	tests[n++] = (struct CMUnitTest){ .name = #fn, .test_func = fn }

static const char *intern_free(char *s)
{
	const char *r = g_intern_string(s);

	g_free(s);
	return r;
}

int main(void)
{
	static struct CMUnitTest tests[2 * G_N_ELEMENTS(err_vecs) + G_N_ELEMENTS(local_vecs) +
				       G_N_ELEMENTS(dev_vecs) + G_N_ELEMENTS(adapter_vecs) +
				       G_N_ELEMENTS(char_vecs) + G_N_ELEMENTS(bytes_vecs) +
				       G_N_ELEMENTS(addr_vecs) + G_N_ELEMENTS(path_vecs) +
				       G_N_ELEMENTS(redact_vecs) + 16];
	size_t n = 0;

	ADD_VECS(tests, n, err_vecs, test_error_name);
	for (size_t i = 0; i < G_N_ELEMENTS(err_vecs); i++)
		tests[n++] = (struct CMUnitTest){ .name = intern_free(
			g_strconcat(err_vecs[i].name, "/gerror", NULL)),
			.test_func = test_error_gerror, .initial_state = (void *)&err_vecs[i] };
	ADD_VECS(tests, n, local_vecs, test_error_local);
	ADD(tests, n, test_error_null_name);
	ADD(tests, n, test_error_none);
	ADD_VECS(tests, n, dev_vecs, test_device);
	ADD(tests, n, test_device_copy);
	ADD_VECS(tests, n, adapter_vecs, test_adapter);
	ADD_VECS(tests, n, char_vecs, test_char);
	ADD(tests, n, test_char_roles);
	ADD(tests, n, test_flags);
	ADD(tests, n, test_service);
	ADD_VECS(tests, n, bytes_vecs, test_bytes);
	ADD(tests, n, test_bytes_null);
	ADD_VECS(tests, n, addr_vecs, test_address);
	ADD(tests, n, test_uuid);
	ADD_VECS(tests, n, redact_vecs, test_redact);
	ADD(tests, n, test_redact_null);
	ADD_VECS(tests, n, path_vecs, test_path);
	ADD(tests, n, test_device_path);
	ADD(tests, n, test_path_helpers);
	ADD(tests, n, test_op_names);
	g_assert(n <= G_N_ELEMENTS(tests));
	return _cmocka_run_group_tests("gateway/bluez-parse", tests, n, NULL, NULL);
}
