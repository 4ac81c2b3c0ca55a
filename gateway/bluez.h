/* SPDX-License-Identifier: MIT */
/*
 * GwBluez: the gateway's client of bluetoothd (BlueZ 5.66 D-Bus API).
 *
 * An adapter in the sense of docs/architecture.md: it translates, never
 * decides. It follows the owner of org.bluez on the bus it is given
 * (never auto-starting it), tracks one adapter with its devices, GATT
 * services and characteristics through the ObjectManager at "/", carries
 * out commands asynchronously and reports everything through
 * struct gw_bluez_ops. Which device to connect, when to retry, what a
 * layout must look like and which device may bond are the core's
 * decisions: the only policy input here is the ops->allowed callback the
 * pairing agent asks.
 *
 * This header is also the one place where BlueZ's D-Bus names are spelled.
 */
#ifndef REHABLINK_GATEWAY_BLUEZ_H
#define REHABLINK_GATEWAY_BLUEZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gio/gio.h>

#include "ble-types.h"

/* ---- D-Bus names ----------------------------------------------------------- */

#define GW_BLUEZ_BUS_NAME		"org.bluez"
#define GW_BLUEZ_MANAGER_PATH		"/"		/* ObjectManager */
#define GW_BLUEZ_AGENT_MANAGER_PATH	"/org/bluez"
#define GW_BLUEZ_ADAPTER_IFACE		"org.bluez.Adapter1"
#define GW_BLUEZ_DEVICE_IFACE		"org.bluez.Device1"
#define GW_BLUEZ_GATT_SERVICE_IFACE	"org.bluez.GattService1"
#define GW_BLUEZ_GATT_CHAR_IFACE	"org.bluez.GattCharacteristic1"
#define GW_BLUEZ_AGENT_MANAGER_IFACE	"org.bluez.AgentManager1"
#define GW_BLUEZ_AGENT_IFACE		"org.bluez.Agent1"
#define GW_DBUS_PROPERTIES_IFACE	"org.freedesktop.DBus.Properties"

/* Our Agent1 object and its IO capability: LE Secure Connections
 * "Just Works" only. */
#define GW_BLUEZ_AGENT_PATH		"/org/rehablink/agent"
#define GW_BLUEZ_AGENT_CAPABILITY	"NoInputNoOutput"

/* The object path of the first adapter is <prefix>/hci0; a device is
 * <adapter>/dev_AA_BB_CC_DD_EE_FF, its GATT objects live below it. */
#define GW_BLUEZ_DEVICE_PREFIX		"dev_"

/* Errors BlueZ documents (org.bluez.Error.*), and the bus's own. */
#define GW_BLUEZ_ERROR_PREFIX			"org.bluez.Error."
#define GW_BLUEZ_ERROR_IN_PROGRESS		"org.bluez.Error.InProgress"
#define GW_BLUEZ_ERROR_FAILED			"org.bluez.Error.Failed"
#define GW_BLUEZ_ERROR_NOT_READY		"org.bluez.Error.NotReady"
#define GW_BLUEZ_ERROR_NOT_CONNECTED		"org.bluez.Error.NotConnected"
#define GW_BLUEZ_ERROR_ALREADY_CONNECTED	"org.bluez.Error.AlreadyConnected"
#define GW_BLUEZ_ERROR_ALREADY_EXISTS		"org.bluez.Error.AlreadyExists"
#define GW_BLUEZ_ERROR_DOES_NOT_EXIST		"org.bluez.Error.DoesNotExist"
#define GW_BLUEZ_ERROR_NOT_SUPPORTED		"org.bluez.Error.NotSupported"
#define GW_BLUEZ_ERROR_NOT_PERMITTED		"org.bluez.Error.NotPermitted"
#define GW_BLUEZ_ERROR_NOT_AUTHORIZED		"org.bluez.Error.NotAuthorized"
#define GW_BLUEZ_ERROR_NOT_AVAILABLE		"org.bluez.Error.NotAvailable"
#define GW_BLUEZ_ERROR_INVALID_ARGUMENTS	"org.bluez.Error.InvalidArguments"
#define GW_BLUEZ_ERROR_INVALID_VALUE_LENGTH	"org.bluez.Error.InvalidValueLength"
#define GW_BLUEZ_ERROR_INVALID_OFFSET		"org.bluez.Error.InvalidOffset"
#define GW_BLUEZ_ERROR_AUTH_FAILED		"org.bluez.Error.AuthenticationFailed"
#define GW_BLUEZ_ERROR_AUTH_REJECTED		"org.bluez.Error.AuthenticationRejected"
#define GW_BLUEZ_ERROR_AUTH_CANCELED		"org.bluez.Error.AuthenticationCanceled"
#define GW_BLUEZ_ERROR_AUTH_TIMEOUT		"org.bluez.Error.AuthenticationTimeout"
#define GW_BLUEZ_ERROR_CONNECTION_ATTEMPT_FAILED "org.bluez.Error.ConnectionAttemptFailed"
#define GW_BLUEZ_ERROR_REJECTED			"org.bluez.Error.Rejected"	/* agent replies */
#define GW_BLUEZ_ERROR_CANCELED			"org.bluez.Error.Canceled"
/* substrings of org.bluez.Error.Failed messages */
#define GW_BLUEZ_MSG_ABORT_BY_LOCAL		"le-connection-abort-by-local"
#define GW_BLUEZ_MSG_KEY_MISSING		"Key Missing"	/* also "PIN or Key Missing" */
/* substring of dbus-daemon's NoReply when the callee left the bus */
#define GW_DBUS_MSG_RECIPIENT_GONE		"disconnected from message bus"

#define GW_DBUS_ERROR_NO_REPLY			"org.freedesktop.DBus.Error.NoReply"
#define GW_DBUS_ERROR_TIMEOUT			"org.freedesktop.DBus.Error.Timeout"
#define GW_DBUS_ERROR_TIMED_OUT			"org.freedesktop.DBus.Error.TimedOut"
#define GW_DBUS_ERROR_SERVICE_UNKNOWN		"org.freedesktop.DBus.Error.ServiceUnknown"
#define GW_DBUS_ERROR_NAME_HAS_NO_OWNER		"org.freedesktop.DBus.Error.NameHasNoOwner"
#define GW_DBUS_ERROR_DISCONNECTED		"org.freedesktop.DBus.Error.Disconnected"
#define GW_DBUS_ERROR_UNKNOWN_OBJECT		"org.freedesktop.DBus.Error.UnknownObject"
#define GW_DBUS_ERROR_UNKNOWN_METHOD		"org.freedesktop.DBus.Error.UnknownMethod"
#define GW_DBUS_ERROR_UNKNOWN_INTERFACE		"org.freedesktop.DBus.Error.UnknownInterface"
#define GW_DBUS_ERROR_UNKNOWN_PROPERTY		"org.freedesktop.DBus.Error.UnknownProperty"

/* ---- values reported ----------------------------------------------------- */

#define GW_BLUEZ_ADDR_SIZE	18	/* "AA:BB:CC:DD:EE:FF" + NUL */
#define GW_BLUEZ_UUID_SIZE	37	/* 128-bit, "0000180f-0000-1000-8000-00805f9b34fb" + NUL */
#define GW_BLUEZ_NAME_SIZE	32	/* adapter name, "hci0" */

/* The adapter the configuration names (or the first one). */
struct gw_bluez_adapter {
	bool present;
	bool powered;
	bool discovering;
	char name[GW_BLUEZ_NAME_SIZE];		/* "hci0"; "" when absent */
	char address[GW_BLUEZ_ADDR_SIZE];	/* upper case; "" when absent */
};

/* A remote device on that adapter, keyed by its Address property (upper
 * case). Strings and uuids are borrowed for the duration of a callback;
 * copy what you keep. */
struct gw_bluez_device {
	char address[GW_BLUEZ_ADDR_SIZE];
	bool address_random;		/* AddressType "random" */
	bool has_rssi;			/* RSSI is only present while seen by a scan */
	int16_t rssi;
	char **uuids;			/* NULL-terminated, lower case 128-bit; never NULL */
	char *name;			/* Name property, NULL when absent */
	bool connected;
	bool services_resolved;
	bool paired;
	bool has_bonded;		/* BlueZ exports Bonded (newer than Paired) */
	bool bonded;
	bool trusted;
	bool blocked;
};

/* One remote characteristic of a resolved device, as in its layout. */
struct gw_bluez_gatt_char {
	int role;				/* enum gw_char, or -1 when not ours */
	char uuid[GW_BLUEZ_UUID_SIZE];		/* lower case */
	char service_uuid[GW_BLUEZ_UUID_SIZE];	/* "" when the service is unknown */
	unsigned int props;			/* enum gw_char_prop bits */
};

enum gw_bluez_op {
	GW_BLUEZ_OP_SET_POWERED,	/* Adapter1.Powered */
	GW_BLUEZ_OP_START_DISCOVERY,	/* Adapter1.SetDiscoveryFilter + StartDiscovery */
	GW_BLUEZ_OP_STOP_DISCOVERY,	/* Adapter1.StopDiscovery */
	GW_BLUEZ_OP_REMOVE_DEVICE,	/* Adapter1.RemoveDevice */
	GW_BLUEZ_OP_CONNECT,		/* Device1.Connect */
	GW_BLUEZ_OP_DISCONNECT,		/* Device1.Disconnect */
	GW_BLUEZ_OP_PAIR,		/* Device1.Pair */
	GW_BLUEZ_OP_SET_TRUSTED,	/* Device1.Trusted */
	GW_BLUEZ_OP_READ,		/* GattCharacteristic1.ReadValue({}) */
	GW_BLUEZ_OP_WRITE,		/* GattCharacteristic1.WriteValue(v, {"type": "request"}) */
	GW_BLUEZ_OP_START_NOTIFY,	/* GattCharacteristic1.StartNotify */
	GW_BLUEZ_OP_STOP_NOTIFY,	/* GattCharacteristic1.StopNotify */
};
#define GW_BLUEZ_OP_COUNT	(GW_BLUEZ_OP_STOP_NOTIFY + 1)

/* How one command ended. Everything is borrowed for the callback. */
struct gw_bluez_result {
	enum gw_bluez_op op;
	const char *address;	/* device operations; NULL for adapter ones */
	int ch;			/* enum gw_char for READ, WRITE, START/STOP_NOTIFY; else -1 */
	enum gw_ble_err err;	/* GW_BLE_OK on success */
	const char *dbus_error;	/* D-Bus error name, NULL on success or a local error */
	const char *message;	/* error text for logs, NULL on success; device
				 * addresses in it are masked unless
				 * log_personal */
	const uint8_t *value;	/* READ: the value read */
	size_t len;
};

/*
 * Events out. Every member may be NULL. Callbacks run on the main
 * context that was the thread default when gw_bluez_new() ran; they may
 * issue commands and may call gw_bluez_free() (nothing is reported after
 * that).
 */
struct gw_bluez_ops {
	/* bluetoothd has an owner on the bus and its objects are enumerated
	 * (true), or it left (false; reported once at start too if it is
	 * absent then). Before false, every device is reported removed and
	 * the adapter absent. */
	void (*bluez_present)(bool present, void *user_data);
	/* the configured adapter appeared, vanished or changed */
	void (*adapter_changed)(const struct gw_bluez_adapter *adapter, void *user_data);
	/* a device on that adapter appeared or any of its Device1 properties
	 * changed */
	void (*device_changed)(const struct gw_bluez_device *dev, void *user_data);
	void (*device_removed)(const char *address, void *user_data);
	/* the device's characteristics, sorted by object path (that is, by
	 * handle): after device_changed reports ServicesResolved true, and
	 * again whenever a characteristic appears or vanishes while it is */
	void (*layout)(const char *address, const struct gw_bluez_gatt_char *chars,
		       size_t n, void *user_data);
	/* every PropertiesChanged carrying "Value" of one of our
	 * characteristics: notifications and indications, in order, equal
	 * values included. BlueZ also updates Value after a successful
	 * ReadValue, so a read is reported here too. */
	void (*value)(const char *address, enum gw_char ch, const uint8_t *val,
		      size_t len, void *user_data);
	/* exactly once per command (never after gw_bluez_free) */
	void (*call_done)(const struct gw_bluez_result *res, void *user_data);
	/* the core's allowlist, asked by the pairing agent; NULL allows none */
	bool (*allowed)(const char *address, void *user_data);
};

struct gw_bluez_config {
	const char *adapter;		/* "hci0"; NULL or "" takes the first one */
	const char *service_uuid;	/* discovery filter; NULL: WB_UUID_SERVICE */
	const char *agent_path;		/* NULL: GW_BLUEZ_AGENT_PATH */
	unsigned int connect_timeout_ms; /* Connect; 0: 20000 */
	unsigned int pair_timeout_ms;	/* Pair; 0: 30000 */
	unsigned int call_timeout_ms;	/* everything else; 0: 10000 */
	bool log_personal;		/* log full device addresses */
};

typedef struct gw_bluez GwBluez;

/*
 * conn: the bus bluetoothd is on; NULL takes the system bus
 * (DBUS_SYSTEM_BUS_ADDRESS is honoured by GIO). The Agent1 object is
 * exported at once; everything else follows the owner of org.bluez.
 * Fails only if the bus cannot be reached or the agent path is taken.
 */
GwBluez *gw_bluez_new(GDBusConnection *conn, const struct gw_bluez_config *cfg,
		      const struct gw_bluez_ops *ops, void *user_data,
		      GError **error);
/* NULL-safe; cancels every call in flight (their call_done never comes)
 * and unregisters the agent. */
void gw_bluez_free(GwBluez *bz);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwBluez, gw_bluez_free)

/* Current state, for diagnostics and tests (borrowed, may change at the
 * next main-loop iteration). */
bool gw_bluez_is_present(const GwBluez *bz);
bool gw_bluez_agent_registered(const GwBluez *bz);
const struct gw_bluez_adapter *gw_bluez_get_adapter(const GwBluez *bz);
const struct gw_bluez_device *gw_bluez_get_device(const GwBluez *bz, const char *address);

/*
 * Commands. Each ends with exactly one ops->call_done, never from inside
 * the call itself. Without bluetoothd the result is GW_BLE_ERR_BLUEZ_GONE,
 * without the adapter GW_BLE_ERR_NOT_READY, for a characteristic the
 * device has not resolved (or an invalid address) GW_BLE_ERR_DOES_NOT_EXIST;
 * everything else is BlueZ's answer through the error table of
 * bluez-parse.c, or GW_BLE_ERR_TIMEOUT after the configured time.
 */
void gw_bluez_set_powered(GwBluez *bz, bool powered);
void gw_bluez_start_discovery(GwBluez *bz);
void gw_bluez_stop_discovery(GwBluez *bz);
void gw_bluez_remove_device(GwBluez *bz, const char *address);
void gw_bluez_connect(GwBluez *bz, const char *address);
void gw_bluez_disconnect(GwBluez *bz, const char *address);
void gw_bluez_pair(GwBluez *bz, const char *address);
void gw_bluez_set_trusted(GwBluez *bz, const char *address, bool trusted);
void gw_bluez_read(GwBluez *bz, const char *address, enum gw_char ch);
void gw_bluez_write(GwBluez *bz, const char *address, enum gw_char ch,
		    const uint8_t *val, size_t len);
void gw_bluez_start_notify(GwBluez *bz, const char *address, enum gw_char ch);
void gw_bluez_stop_notify(GwBluez *bz, const char *address, enum gw_char ch);

#endif
