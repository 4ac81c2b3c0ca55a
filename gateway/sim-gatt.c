/* SPDX-License-Identifier: MIT */
/*
 * The simulated wearable as a real BLE peripheral through bluetoothd's
 * GattManager1 and LEAdvertisingManager1 (BlueZ 5.66). See sim-gatt.h.
 *
 * What bluetoothd does with an external GATT application, and what this
 * file relies on (src/gatt-database.c, src/advertising.c of 5.66):
 * - RegisterApplication calls GetManagedObjects on the application root
 *   (so the call must be asynchronous: we answer it from the same loop).
 * - ReadValue gets the options "device", "mtu", "link" and, for a Read
 *   Blob, "offset": the reply is the value *from* that offset.
 * - A CCC write of 1 or 2 by the first subscriber calls StartNotify; the
 *   last unsubscribe calls StopNotify. For a bonded central the CCC state
 *   survives a disconnection, so StartNotify is not called again on
 *   reconnection: we keep our own notify flags and hand them to the
 *   simulator on every new link (gw_sim_connect clears its own).
 * - Every PropertiesChanged(Value) on a characteristic is one notification
 *   or indication to each subscribed, connected central; for indications
 *   bluetoothd calls Confirm when the central confirmed.
 * - Characteristic flags: "encrypt-read"/"encrypt-write" exist, there is
 *   no "encrypt-notify" (an unknown flag fails the registration), and the
 *   CCC descriptors bluetoothd adds are always writable: notifications can
 *   be subscribed to without encryption.
 * - D-Bus errors become ATT errors: Failed 0x80, NotPermitted read/write
 *   not permitted, InvalidOffset 0x07, InvalidValueLength 0x0D, anything
 *   else 0x0E (unlikely).
 * - bluetoothd's property changes (Device1 Connected) are emitted from an
 *   idle handler: a ReadValue from a new link can arrive before the
 *   Connected signal. Its "device" option counts as the link being up.
 * - A central's Just Works pairing is authorised on our side by
 *   bluetoothd's *default* agent (RequestAuthorization): without one the
 *   pairing fails, hence our own NoInputNoOutput agent.
 * - Out of range: the advertisement goes first, then the power. Powering
 *   off while still advertising let a bonded central (BlueZ reconnects
 *   those by itself) connect again between the kernel's disconnect-all and
 *   the controller reset, and keep that link for ever under btvirt.
 * - bluetoothd 5.66 does not store CCC states across its own restart: our
 *   notify flags are dropped with it.
 * Proven under ../shared/ble-vm (tests/ble-vm/check.sh).
 */
#define G_LOG_DOMAIN "gw-sim-gatt"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <gio/gio.h>
#include <glib-unix.h>

#include "sim-gatt.h"
#include "wearable.h"

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

#define BURST_DEFAULT		8
#define INTERVAL_DEFAULT_MS	10
#define RETRY_MS		2000	/* after a failed registration */
#define CALL_TIMEOUT_MS		30000
#define MTU_DEFAULT		23

#define BLUEZ_ERROR		"org.bluez.Error."
#define BLUEZ_ALREADY_EXISTS	BLUEZ_ERROR "AlreadyExists"

static const char introspection_xml[] =
	"<node>"
	"  <interface name='org.freedesktop.DBus.ObjectManager'>"
	"    <method name='GetManagedObjects'>"
	"      <arg name='objects' type='a{oa{sa{sv}}}' direction='out'/>"
	"    </method>"
	"    <signal name='InterfacesAdded'>"
	"      <arg name='object' type='o'/>"
	"      <arg name='interfaces' type='a{sa{sv}}'/>"
	"    </signal>"
	"    <signal name='InterfacesRemoved'>"
	"      <arg name='object' type='o'/>"
	"      <arg name='interfaces' type='as'/>"
	"    </signal>"
	"  </interface>"
	"  <interface name='org.bluez.GattService1'>"
	"    <property name='UUID' type='s' access='read'/>"
	"    <property name='Primary' type='b' access='read'/>"
	"  </interface>"
	"  <interface name='org.bluez.GattCharacteristic1'>"
	"    <method name='ReadValue'>"
	"      <arg name='options' type='a{sv}' direction='in'/>"
	"      <arg name='value' type='ay' direction='out'/>"
	"    </method>"
	"    <method name='WriteValue'>"
	"      <arg name='value' type='ay' direction='in'/>"
	"      <arg name='options' type='a{sv}' direction='in'/>"
	"    </method>"
	"    <method name='StartNotify'/>"
	"    <method name='StopNotify'/>"
	"    <method name='Confirm'/>"
	"    <property name='UUID' type='s' access='read'/>"
	"    <property name='Service' type='o' access='read'/>"
	"    <property name='Flags' type='as' access='read'/>"
	"  </interface>"
	"  <interface name='org.bluez.Agent1'>"
	"    <method name='Release'/>"
	"    <method name='RequestPinCode'>"
	"      <arg type='o' direction='in'/><arg type='s' direction='out'/>"
	"    </method>"
	"    <method name='DisplayPinCode'>"
	"      <arg type='o' direction='in'/><arg type='s' direction='in'/>"
	"    </method>"
	"    <method name='RequestPasskey'>"
	"      <arg type='o' direction='in'/><arg type='u' direction='out'/>"
	"    </method>"
	"    <method name='DisplayPasskey'>"
	"      <arg type='o' direction='in'/><arg type='u' direction='in'/>"
	"      <arg type='q' direction='in'/>"
	"    </method>"
	"    <method name='RequestConfirmation'>"
	"      <arg type='o' direction='in'/><arg type='u' direction='in'/>"
	"    </method>"
	"    <method name='RequestAuthorization'>"
	"      <arg type='o' direction='in'/>"
	"    </method>"
	"    <method name='AuthorizeService'>"
	"      <arg type='o' direction='in'/><arg type='s' direction='in'/>"
	"    </method>"
	"    <method name='Cancel'/>"
	"  </interface>"
	"  <interface name='org.bluez.LEAdvertisement1'>"
	"    <method name='Release'/>"
	"    <property name='Type' type='s' access='read'/>"
	"    <property name='ServiceUUIDs' type='as' access='read'/>"
	"    <property name='LocalName' type='s' access='read'/>"
	"    <property name='Discoverable' type='b' access='read'/>"
	"  </interface>"
	"</node>";

/* user_data of an exported object */
struct obj_ref {
	GwSimGatt *g;
	unsigned int index;	/* enum gw_sim_service or enum gw_sim_char */
};

struct gw_sim_gatt {
	GDBusConnection *bus;
	GwSim *sim;				/* borrowed */
	GCancellable *cancel;			/* calls to this bluetoothd instance */
	GDBusNodeInfo *node;

	char *adapter;				/* "hci1" */
	char *adapter_path;			/* "/org/bluez/hci1" */
	char *device_prefix;			/* "/org/bluez/hci1/" */
	char *root;				/* application root (ObjectManager) */
	char *adv_path;
	char *agent_path;
	char *local_name;
	char *svc_path[GW_SIM_SERVICE_COUNT];
	char *chr_path[GW_SIM_CHAR_COUNT];
	struct obj_ref svc_ref[GW_SIM_SERVICE_COUNT];
	struct obj_ref chr_ref[GW_SIM_CHAR_COUNT];
	struct obj_ref root_ref;
	GArray *reg_ids;			/* guint object registrations */

	bool follow_range;
	bool encrypt;
	bool agent;
	bool agent_default;
	unsigned int burst;
	unsigned int interval_ms;
	bool started;

	guint name_watch;
	guint sub_added;
	guint sub_removed;
	guint sub_adapter;
	guint sub_device;

	/* what we know of bluetoothd and the adapter */
	bool bluez_up;
	bool have_adapter;			/* Adapter1 */
	bool have_gatt_mgr;
	bool have_adv_mgr;
	bool powered;

	bool app_registered;
	bool app_pending;
	bool adv_registered;
	bool adv_pending;
	bool adv_refresh;			/* re-register after a power cycle */
	GSource *retry;

	/* power wanted by the radio range, applied when the adapter is there */
	bool range_known;
	bool in_range;
	bool power_dirty;
	bool power_want;
	GSource *power_retry;

	/* links */
	GHashTable *links;			/* device path -> NULL */
	bool sim_linked;
	bool dropping;				/* the core dropped the link */
	bool notifying[GW_SIM_CHAR_COUNT];	/* StartNotify without StopNotify */

	GSource *drain;
	uint64_t sent;
	uint64_t confirmed;
};

static void reconcile(GwSimGatt *g);
static void unregister_adv(GwSimGatt *g);

/* ---- small helpers ----------------------------------------------------------- */

static bool char_secure(enum gw_sim_char ch)
{
	switch (gw_sim_char_service(ch)) {
	case GW_SIM_SERVICE_REHABLINK:
	case GW_SIM_SERVICE_CTS:
		return true;
	case GW_SIM_SERVICE_BATTERY:
	case GW_SIM_SERVICE_DEVINFO:
		return false;
	}
	return false;
}

static GVariant *char_flags(const GwSimGatt *g, enum gw_sim_char ch)
{
	unsigned int p = gw_sim_char_props(ch);
	bool enc = g->encrypt && char_secure(ch);
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("as"));
	if (p & GW_SIM_PROP_READ)
		g_variant_builder_add(&b, "s", enc ? "encrypt-read" : "read");
	if (p & GW_SIM_PROP_WRITE)
		g_variant_builder_add(&b, "s", enc ? "encrypt-write" : "write");
	if (p & GW_SIM_PROP_WRITE_NO_RSP)
		g_variant_builder_add(&b, "s", "write-without-response");
	if (p & GW_SIM_PROP_NOTIFY)
		g_variant_builder_add(&b, "s", "notify");
	if (p & GW_SIM_PROP_INDICATE)
		g_variant_builder_add(&b, "s", "indicate");
	return g_variant_builder_end(&b);
}

/* An ATT error code of the simulator as the D-Bus error bluetoothd turns
 * back into (nearly) that code. */
static const char *att_error_name(int att)
{
	switch (att) {
	case GW_SIM_ATT_READ_NOT_PERMITTED:
	case GW_SIM_ATT_WRITE_NOT_PERMITTED:
		return BLUEZ_ERROR "NotPermitted";
	case GW_SIM_ATT_INVALID_OFFSET:
		return BLUEZ_ERROR "InvalidOffset";
	case GW_SIM_ATT_INVALID_LENGTH:
		return BLUEZ_ERROR "InvalidValueLength";
	default:
		/* 0x80 exactly; others (0xFD) cannot be expressed: also 0x80 */
		return BLUEZ_ERROR "Failed";
	}
}

static void clear_source(GSource **s)
{
	if (*s) {
		g_source_destroy(*s);
		g_source_unref(*s);
		*s = NULL;
	}
}

static GSource *add_timeout(unsigned int ms, GSourceFunc fn, void *data)
{
	GSource *s = g_timeout_source_new(ms);

	g_source_set_callback(s, fn, data, NULL);
	g_source_attach(s, NULL);
	return s;
}

static bool has_iface(GVariant *ifaces, const char *iface)
{
	g_autoptr(GVariant) v = g_variant_lookup_value(ifaces, iface, NULL);

	return v != NULL;
}

static bool is_our_device(const GwSimGatt *g, const char *path)
{
	return path && g_str_has_prefix(path, g->device_prefix) &&
	       !strchr(path + strlen(g->device_prefix), '/');
}

/* true for a reply error that only says we were cancelled */
static bool cancelled(const GError *err)
{
	return g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static bool remote_error_is(const GError *err, const char *name)
{
	g_autofree char *remote = NULL;

	if (!g_dbus_error_is_remote_error(err))
		return false;
	remote = g_dbus_error_get_remote_error(err);
	return g_strcmp0(remote, name) == 0;
}

/* ---- link to the simulator ----------------------------------------------------- */

static void drain_stop(GwSimGatt *g)
{
	clear_source(&g->drain);
}

/* A central is connected: so is the simulator, at the default MTU until
 * a request tells the real one. Subscriptions kept by bluetoothd for a
 * bonded central are handed over again (gw_sim_connect clears its own). */
static void link_up(GwSimGatt *g)
{
	if (g->sim_linked || g->dropping || !gw_sim_in_range(g->sim))
		return;
	gw_sim_connect(g->sim, MTU_DEFAULT);
	g->sim_linked = true;
	for (unsigned int ch = 0; ch < GW_SIM_CHAR_COUNT; ch++)
		if (g->notifying[ch])
			gw_sim_set_notify(g->sim, ch, true);
	g_message("%s: central linked", g->adapter);
	gw_sim_gatt_kick(g);
}

static void link_down(GwSimGatt *g)
{
	drain_stop(g);
	if (!g->sim_linked)
		return;
	gw_sim_disconnect(g->sim);
	g->sim_linked = false;
	g_message("%s: central gone", g->adapter);
}

static void device_connected(GwSimGatt *g, const char *path, bool connected)
{
	if (!is_our_device(g, path))
		return;
	if (connected) {
		if (!g_hash_table_add(g->links, g_strdup(path)))
			return;
		g_debug("%s: %s connected", g->adapter, path);
		link_up(g);
		return;
	}
	if (!g_hash_table_remove(g->links, path))
		return;
	g_debug("%s: %s disconnected", g->adapter, path);
	if (g_hash_table_size(g->links) == 0) {
		g->dropping = false;
		link_down(g);
	}
}

static void all_links_down(GwSimGatt *g)
{
	g_hash_table_remove_all(g->links);
	g->dropping = false;
	link_down(g);
}

static void disconnect_ready(GObject *src, GAsyncResult *res, void *data)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GVariant) ret = NULL;

	(void) data;
	ret = g_dbus_connection_call_finish(G_DBUS_CONNECTION(src), res, &err);
	if (!ret && !cancelled(err))
		g_message("Disconnect: %s", err->message);
}

/* The core dropped the link (a reboot, out of range): so does the radio.
 * Out of range with follow_range, powering the adapter off does it. */
static void core_dropped_link(GwSimGatt *g)
{
	GHashTableIter it;
	const char *path;

	drain_stop(g);
	g->sim_linked = false;
	if (g_hash_table_size(g->links) == 0)
		return;
	g->dropping = true;
	if (g->follow_range && !gw_sim_in_range(g->sim))
		return;
	g_message("%s: the wearable dropped the link", g->adapter);
	g_hash_table_iter_init(&it, g->links);
	while (g_hash_table_iter_next(&it, (void **) &path, NULL))
		g_dbus_connection_call(g->bus, GW_SIM_GATT_BLUEZ_NAME, path,
				       GW_SIM_GATT_DEVICE_IFACE, "Disconnect",
				       NULL, NULL,
				       G_DBUS_CALL_FLAGS_NO_AUTO_START,
				       CALL_TIMEOUT_MS, g->cancel,
				       disconnect_ready, NULL);
}

/* An ATT request from bluetoothd: its options say which link and MTU. */
static void request_seen(GwSimGatt *g, GVariant *options)
{
	const char *dev = NULL;
	guint16 mtu = 0;

	if (options) {
		g_variant_lookup(options, "device", "&o", &dev);
		g_variant_lookup(options, "mtu", "q", &mtu);
	}
	if (dev && is_our_device(g, dev))
		g_hash_table_add(g->links, g_strdup(dev));
	link_up(g);
	if (g->sim_linked && mtu >= MTU_DEFAULT &&
	    mtu != gw_sim_get_mtu(g->sim)) {
		gw_sim_set_mtu(g->sim, mtu);
		g_message("%s: ATT MTU %u", g->adapter, mtu);
	}
}

/* ---- sending ------------------------------------------------------------------- */

static void emit_value(GwSimGatt *g, enum gw_sim_char ch, const uint8_t *val,
		       size_t len)
{
	g_autoptr(GError) err = NULL;
	GVariantBuilder changed;

	g_variant_builder_init(&changed, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&changed, "{sv}", "Value",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE,
							val, len, 1));
	if (!g_dbus_connection_emit_signal(g->bus, NULL, g->chr_path[ch],
					   GW_SIM_GATT_PROPS_IFACE,
					   "PropertiesChanged",
					   g_variant_new("(sa{sv}as)",
							 GW_SIM_GATT_CHAR_IFACE,
							 &changed, NULL),
					   &err)) {
		g_message("%s: %s: emit: %s", g->adapter,
			  gw_sim_char_name(ch), err->message);
		return;
	}
	g->sent++;
}

/* Sends up to burst values; false when the queue is empty. */
static bool drain_some(GwSimGatt *g)
{
	for (unsigned int i = 0; i < g->burst; i++) {
		struct gw_sim_tx tx;

		if (!gw_sim_pop_tx(g->sim, &tx))
			return false;
		g_debug("%s: send %s, %zu bytes, %u records", g->adapter,
			gw_sim_char_name(tx.ch), tx.len, tx.records);
		emit_value(g, tx.ch, tx.data, tx.len);
	}
	return gw_sim_has_tx(g->sim);
}

static gboolean drain_cb(void *data)
{
	GwSimGatt *g = data;

	if (g->sim_linked && drain_some(g))
		return G_SOURCE_CONTINUE;
	g_source_unref(g->drain);
	g->drain = NULL;
	return G_SOURCE_REMOVE;
}

/* ---- adapter power follows the radio range --------------------------------- */

static void apply_power(GwSimGatt *g);

static gboolean power_retry_cb(void *data)
{
	GwSimGatt *g = data;

	g_source_unref(g->power_retry);
	g->power_retry = NULL;
	apply_power(g);
	return G_SOURCE_REMOVE;
}

static void set_powered_ready(GObject *src, GAsyncResult *res, void *data)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GVariant) ret = NULL;
	GwSimGatt *g;

	ret = g_dbus_connection_call_finish(G_DBUS_CONNECTION(src), res, &err);
	if (!ret && cancelled(err))
		return;
	g = data;
	if (!ret && remote_error_is(err, BLUEZ_ERROR "Busy")) {
		/* bluetoothd is switching it itself (AutoEnable at start):
		 * look again later */
		g_debug("%s: setting Powered: busy, again later", g->adapter);
		g->power_dirty = true;
		if (!g->power_retry)
			g->power_retry = add_timeout(RETRY_MS / 2,
						     power_retry_cb, g);
	} else if (!ret) {
		g_message("%s: setting Powered: %s", g->adapter, err->message);
	}
}

/* Whether to advertise: not while out of range. */
static bool radio_wanted(const GwSimGatt *g)
{
	return !g->range_known || g->in_range;
}

static void apply_power(GwSimGatt *g)
{
	if (!g->power_dirty || !g->bluez_up || !g->have_adapter)
		return;
	if (!g->power_want && g->powered &&
	    (g->adv_registered || g->adv_pending)) {
		/* Silence first, then power off: a central that reconnects
		 * between the kernel's disconnect-all and its reset keeps a
		 * link to nothing (for ever with btvirt, which has no
		 * supervision timeout). Called again once unregistered. */
		if (!g->adv_pending)
			unregister_adv(g);
		return;
	}
	g->power_dirty = false;
	if (g->power_want == g->powered)
		return;
	g_debug("%s: Powered %s", g->adapter, g->power_want ? "on" : "off");
	g_dbus_connection_call(g->bus, GW_SIM_GATT_BLUEZ_NAME, g->adapter_path,
			       GW_SIM_GATT_PROPS_IFACE, "Set",
			       g_variant_new("(ssv)", GW_SIM_GATT_ADAPTER_IFACE,
					     "Powered",
					     g_variant_new_boolean(g->power_want)),
			       NULL, G_DBUS_CALL_FLAGS_NO_AUTO_START,
			       CALL_TIMEOUT_MS, g->cancel, set_powered_ready, g);
}

static void follow_range(GwSimGatt *g)
{
	bool in = gw_sim_in_range(g->sim);

	if (g->range_known && in == g->in_range)
		return;
	g->range_known = true;
	g->in_range = in;
	if (g->follow_range) {
		g_message("%s: %s range: the adapter goes %s", g->adapter,
			  in ? "in" : "out of", in ? "on" : "off");
		g->power_want = in;
		g->power_dirty = true;
		apply_power(g);
		return;
	}
	/* the adapter stays on: only the advertisement comes and goes (the
	 * link is dropped by core_dropped_link) */
	g_message("%s: %s range: advertising %s", g->adapter,
		  in ? "in" : "out of", in ? "again" : "stops");
	if (!in && g->adv_registered && !g->adv_pending && g->bluez_up)
		unregister_adv(g);
	else
		reconcile(g);
}

void gw_sim_gatt_kick(GwSimGatt *g)
{
	g_return_if_fail(g);

	if (!g->started)
		return;
	if (g->sim_linked && !gw_sim_is_connected(g->sim))
		core_dropped_link(g);
	follow_range(g);
	if (!g->sim_linked || g->drain || !gw_sim_has_tx(g->sim))
		return;
	if (drain_some(g))
		g->drain = add_timeout(g->interval_ms, drain_cb, g);
}

/* ---- registration with bluetoothd ------------------------------------------------ */

static gboolean retry_cb(void *data)
{
	GwSimGatt *g = data;

	g_source_unref(g->retry);
	g->retry = NULL;
	reconcile(g);
	return G_SOURCE_REMOVE;
}

static void schedule_retry(GwSimGatt *g)
{
	if (!g->retry)
		g->retry = add_timeout(RETRY_MS, retry_cb, g);
}

static void register_app_ready(GObject *src, GAsyncResult *res, void *data)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GVariant) ret = NULL;
	GwSimGatt *g;

	ret = g_dbus_connection_call_finish(G_DBUS_CONNECTION(src), res, &err);
	if (!ret && cancelled(err))
		return;
	g = data;
	g->app_pending = false;
	if (ret || remote_error_is(err, BLUEZ_ALREADY_EXISTS)) {
		g->app_registered = true;
		g_message("%s: GATT application registered", g->adapter);
	} else {
		g_message("%s: RegisterApplication: %s", g->adapter,
			  err->message);
		schedule_retry(g);
	}
	reconcile(g);
}

static void register_adv_ready(GObject *src, GAsyncResult *res, void *data)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GVariant) ret = NULL;
	GwSimGatt *g;

	ret = g_dbus_connection_call_finish(G_DBUS_CONNECTION(src), res, &err);
	if (!ret && cancelled(err))
		return;
	g = data;
	g->adv_pending = false;
	if (ret || remote_error_is(err, BLUEZ_ALREADY_EXISTS)) {
		g->adv_registered = true;
		g_message("%s: advertisement registered", g->adapter);
	} else {
		g_message("%s: RegisterAdvertisement: %s", g->adapter,
			  err->message);
		schedule_retry(g);
	}
	reconcile(g);
}

static void unregister_adv_ready(GObject *src, GAsyncResult *res, void *data)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GVariant) ret = NULL;
	GwSimGatt *g;

	ret = g_dbus_connection_call_finish(G_DBUS_CONNECTION(src), res, &err);
	if (!ret && cancelled(err))
		return;
	g = data;
	g->adv_pending = false;
	g->adv_registered = false;
	if (!ret)
		g_debug("%s: UnregisterAdvertisement: %s", g->adapter,
			err->message);
	else
		g_message("%s: advertisement unregistered", g->adapter);
	reconcile(g);
}

static void bluez_call(GwSimGatt *g, const char *iface, const char *method,
		       GVariant *params, GAsyncReadyCallback cb)
{
	g_dbus_connection_call(g->bus, GW_SIM_GATT_BLUEZ_NAME, g->adapter_path,
			       iface, method, params, NULL,
			       G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS,
			       g->cancel, cb, g);
}

static void unregister_adv(GwSimGatt *g)
{
	g->adv_refresh = false;
	g->adv_pending = true;
	g_debug("%s: UnregisterAdvertisement %s", g->adapter, g->adv_path);
	bluez_call(g, GW_SIM_GATT_ADV_MANAGER_IFACE, "UnregisterAdvertisement",
		   g_variant_new("(o)", g->adv_path), unregister_adv_ready);
}

/* Brings the registrations to what the adapter's state asks for. */
static void reconcile(GwSimGatt *g)
{
	if (!g->started || !g->bluez_up || !g->have_adapter)
		return;
	apply_power(g);
	if (g->have_gatt_mgr && !g->app_registered && !g->app_pending &&
	    !g->retry) {
		g->app_pending = true;
		g_debug("%s: RegisterApplication %s", g->adapter, g->root);
		bluez_call(g, GW_SIM_GATT_MANAGER_IFACE, "RegisterApplication",
			   g_variant_new("(oa{sv})", g->root, NULL),
			   register_app_ready);
	}
	if (!g->have_adv_mgr || !g->powered || g->adv_pending || g->retry ||
	    !radio_wanted(g))
		return;
	if (g->adv_refresh && g->adv_registered) {
		/* powered back on: register anew, whatever bluetoothd kept */
		unregister_adv(g);
		return;
	}
	g->adv_refresh = false;
	if (!g->adv_registered) {
		g->adv_pending = true;
		g_debug("%s: RegisterAdvertisement %s", g->adapter,
			g->adv_path);
		bluez_call(g, GW_SIM_GATT_ADV_MANAGER_IFACE,
			   "RegisterAdvertisement",
			   g_variant_new("(oa{sv})", g->adv_path, NULL),
			   register_adv_ready);
	}
}

/* bluetoothd or the adapter went away: nothing of ours is registered. */
static void forget_bluez(GwSimGatt *g)
{
	g_cancellable_cancel(g->cancel);
	g_clear_object(&g->cancel);
	g->cancel = g_cancellable_new();
	clear_source(&g->retry);
	clear_source(&g->power_retry);
	g->app_registered = g->app_pending = false;
	g->adv_registered = g->adv_pending = g->adv_refresh = false;
	/* its CCC states went with it (5.66 does not store them) */
	memset(g->notifying, 0, sizeof(g->notifying));
	all_links_down(g);
}

static void set_powered(GwSimGatt *g, bool on)
{
	if (on == g->powered)
		return;
	g->powered = on;
	g_message("%s: adapter powered %s", g->adapter, on ? "on" : "off");
	if (!on) {
		if (g->adv_registered)
			g->adv_refresh = true;
		all_links_down(g);
	}
	reconcile(g);
}

/* One object's interfaces, from GetManagedObjects or InterfacesAdded. */
static void object_added(GwSimGatt *g, const char *path, GVariant *ifaces)
{
	g_autoptr(GVariant) props = NULL;

	if (g_strcmp0(path, g->adapter_path) == 0) {
		bool was = g->have_adapter;
		gboolean on = FALSE;

		props = g_variant_lookup_value(ifaces, GW_SIM_GATT_ADAPTER_IFACE,
					       G_VARIANT_TYPE_VARDICT);
		if (props) {
			g->have_adapter = true;
			g_variant_lookup(props, "Powered", "b", &on);
		}
		if (has_iface(ifaces, GW_SIM_GATT_MANAGER_IFACE))
			g->have_gatt_mgr = true;
		if (has_iface(ifaces, GW_SIM_GATT_ADV_MANAGER_IFACE))
			g->have_adv_mgr = true;
		if (!was && g->have_adapter) {
			g_message("%s: adapter present", g->adapter);
			/* a (re)appearing adapter: apply the range again */
			if (g->follow_range && g->range_known) {
				g->power_want = g->in_range;
				g->power_dirty = true;
			}
		}
		if (props)
			set_powered(g, on);
		reconcile(g);
		return;
	}
	if (!is_our_device(g, path))
		return;
	props = g_variant_lookup_value(ifaces, GW_SIM_GATT_DEVICE_IFACE,
				       G_VARIANT_TYPE_VARDICT);
	if (props) {
		gboolean conn = FALSE;

		g_variant_lookup(props, "Connected", "b", &conn);
		device_connected(g, path, conn);
	}
}

static void object_removed(GwSimGatt *g, const char *path,
			   const char *const *ifaces)
{
	if (g_strcmp0(path, g->adapter_path) == 0) {
		for (; *ifaces; ifaces++) {
			if (!strcmp(*ifaces, GW_SIM_GATT_ADAPTER_IFACE))
				g->have_adapter = false;
			else if (!strcmp(*ifaces, GW_SIM_GATT_MANAGER_IFACE))
				g->have_gatt_mgr = false;
			else if (!strcmp(*ifaces, GW_SIM_GATT_ADV_MANAGER_IFACE))
				g->have_adv_mgr = false;
		}
		if (!g->have_adapter) {
			g_message("%s: adapter gone", g->adapter);
			g->powered = false;
			forget_bluez(g);
		}
		return;
	}
	for (; *ifaces; ifaces++)
		if (!strcmp(*ifaces, GW_SIM_GATT_DEVICE_IFACE))
			device_connected(g, path, false);
}

static void interfaces_added_cb(GDBusConnection *bus, const char *sender,
				const char *path, const char *iface,
				const char *signal, GVariant *params,
				void *data)
{
	GwSimGatt *g = data;
	const char *obj;
	g_autoptr(GVariant) ifaces = NULL;

	(void) bus; (void) sender; (void) path; (void) iface; (void) signal;
	if (!g_variant_is_of_type(params, G_VARIANT_TYPE("(oa{sa{sv}})")))
		return;
	g_variant_get(params, "(&o@a{sa{sv}})", &obj, &ifaces);
	object_added(g, obj, ifaces);
}

static void interfaces_removed_cb(GDBusConnection *bus, const char *sender,
				  const char *path, const char *iface,
				  const char *signal, GVariant *params,
				  void *data)
{
	GwSimGatt *g = data;
	const char *obj;
	g_autofree const char **ifaces = NULL;

	(void) bus; (void) sender; (void) path; (void) iface; (void) signal;
	if (!g_variant_is_of_type(params, G_VARIANT_TYPE("(oas)")))
		return;
	g_variant_get(params, "(&o^a&s)", &obj, &ifaces);
	object_removed(g, obj, ifaces);
}

static void props_changed_cb(GDBusConnection *bus, const char *sender,
			     const char *path, const char *iface,
			     const char *signal, GVariant *params, void *data)
{
	GwSimGatt *g = data;
	const char *which;
	g_autoptr(GVariant) changed = NULL;
	gboolean b;

	(void) bus; (void) sender; (void) iface; (void) signal;
	if (!g_variant_is_of_type(params, G_VARIANT_TYPE("(sa{sv}as)")))
		return;
	g_variant_get(params, "(&s@a{sv}*)", &which, &changed, NULL);
	if (!strcmp(which, GW_SIM_GATT_ADAPTER_IFACE)) {
		if (g_strcmp0(path, g->adapter_path) == 0 &&
		    g_variant_lookup(changed, "Powered", "b", &b))
			set_powered(g, b);
	} else if (!strcmp(which, GW_SIM_GATT_DEVICE_IFACE)) {
		if (g_variant_lookup(changed, "Connected", "b", &b))
			device_connected(g, path, b);
	}
}

static void get_objects_ready(GObject *src, GAsyncResult *res, void *data)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GVariant) ret = NULL;
	g_autoptr(GVariant) objs = NULL;
	GwSimGatt *g;
	GVariantIter it;
	const char *path;
	GVariant *ifaces;

	ret = g_dbus_connection_call_finish(G_DBUS_CONNECTION(src), res, &err);
	if (!ret && cancelled(err))
		return;
	g = data;
	if (!ret) {
		g_message("%s: GetManagedObjects: %s", g->adapter, err->message);
		return;
	}
	objs = g_variant_get_child_value(ret, 0);
	/* the adapter first, so that its devices find it known */
	g_variant_iter_init(&it, objs);
	while (g_variant_iter_loop(&it, "{&o@a{sa{sv}}}", &path, &ifaces))
		if (g_strcmp0(path, g->adapter_path) == 0)
			object_added(g, path, ifaces);
	if (!g->have_adapter)
		g_message("%s: no such adapter (yet)", g->adapter);
	g_variant_iter_init(&it, objs);
	while (g_variant_iter_loop(&it, "{&o@a{sa{sv}}}", &path, &ifaces))
		if (g_strcmp0(path, g->adapter_path) != 0)
			object_added(g, path, ifaces);
	reconcile(g);
}

static void agent_default_ready(GObject *src, GAsyncResult *res, void *data)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GVariant) ret = NULL;
	GwSimGatt *g;

	ret = g_dbus_connection_call_finish(G_DBUS_CONNECTION(src), res, &err);
	if (!ret && cancelled(err))
		return;
	g = data;
	if (!ret)
		g_message("%s: RequestDefaultAgent: %s", g->adapter,
			  err->message);
}

static void agent_register_ready(GObject *src, GAsyncResult *res, void *data)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GVariant) ret = NULL;
	GwSimGatt *g;

	ret = g_dbus_connection_call_finish(G_DBUS_CONNECTION(src), res, &err);
	if (!ret && cancelled(err))
		return;
	g = data;
	if (!ret && !remote_error_is(err, BLUEZ_ALREADY_EXISTS)) {
		g_message("%s: RegisterAgent: %s", g->adapter, err->message);
		return;
	}
	g_debug("%s: pairing agent registered (NoInputNoOutput)", g->adapter);
	if (g->agent_default)
		g_dbus_connection_call(g->bus, GW_SIM_GATT_BLUEZ_NAME,
				       "/org/bluez", GW_SIM_GATT_AGENT_MGR_IFACE,
				       "RequestDefaultAgent",
				       g_variant_new("(o)", g->agent_path),
				       NULL, G_DBUS_CALL_FLAGS_NO_AUTO_START,
				       CALL_TIMEOUT_MS, g->cancel,
				       agent_default_ready, g);
}

/* Just Works needs an agent on the peripheral's side too: bluetoothd asks
 * the default agent to authorise an incoming pairing. */
static void agent_register(GwSimGatt *g)
{
	if (!g->agent)
		return;
	g_dbus_connection_call(g->bus, GW_SIM_GATT_BLUEZ_NAME, "/org/bluez",
			       GW_SIM_GATT_AGENT_MGR_IFACE, "RegisterAgent",
			       g_variant_new("(os)", g->agent_path,
					     "NoInputNoOutput"),
			       NULL, G_DBUS_CALL_FLAGS_NO_AUTO_START,
			       CALL_TIMEOUT_MS, g->cancel, agent_register_ready,
			       g);
}

static void bluez_appeared_cb(GDBusConnection *bus, const char *name,
			      const char *owner, void *data)
{
	GwSimGatt *g = data;

	(void) name;
	g_message("%s: bluetoothd on the bus (%s)", g->adapter, owner);
	forget_bluez(g);
	g->bluez_up = true;
	g->have_adapter = g->have_gatt_mgr = g->have_adv_mgr = false;
	g->powered = false;
	agent_register(g);
	g_dbus_connection_call(bus, GW_SIM_GATT_BLUEZ_NAME, "/",
			       GW_SIM_GATT_OM_IFACE, "GetManagedObjects", NULL,
			       G_VARIANT_TYPE("(a{oa{sa{sv}}})"),
			       G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS,
			       g->cancel, get_objects_ready, g);
}

static void bluez_vanished_cb(GDBusConnection *bus, const char *name,
			      void *data)
{
	GwSimGatt *g = data;

	(void) bus; (void) name;
	if (g->bluez_up)
		g_message("%s: bluetoothd left the bus", g->adapter);
	g->bluez_up = false;
	g->have_adapter = g->have_gatt_mgr = g->have_adv_mgr = false;
	g->powered = false;
	forget_bluez(g);
}

/* ---- exported objects ------------------------------------------------------------ */

static GVariant *service_props(const GwSimGatt *g, enum gw_sim_service s)
{
	GVariantBuilder b;

	(void) g;
	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&b, "{sv}", "UUID",
			      g_variant_new_string(gw_sim_service_uuid(s)));
	g_variant_builder_add(&b, "{sv}", "Primary",
			      g_variant_new_boolean(TRUE));
	return g_variant_builder_end(&b);
}

static GVariant *char_props(const GwSimGatt *g, enum gw_sim_char ch)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&b, "{sv}", "UUID",
			      g_variant_new_string(gw_sim_char_uuid(ch)));
	g_variant_builder_add(&b, "{sv}", "Service",
			      g_variant_new_object_path(
				g->svc_path[gw_sim_char_service(ch)]));
	g_variant_builder_add(&b, "{sv}", "Flags", char_flags(g, ch));
	return g_variant_builder_end(&b);
}

static GVariant *managed_objects(const GwSimGatt *g)
{
	GVariantBuilder objs;

	g_variant_builder_init(&objs, G_VARIANT_TYPE("a{oa{sa{sv}}}"));
	for (unsigned int s = 0; s < GW_SIM_SERVICE_COUNT; s++) {
		g_variant_builder_open(&objs, G_VARIANT_TYPE("{oa{sa{sv}}}"));
		g_variant_builder_add(&objs, "o", g->svc_path[s]);
		g_variant_builder_open(&objs, G_VARIANT_TYPE("a{sa{sv}}"));
		g_variant_builder_add(&objs, "{s@a{sv}}",
				      GW_SIM_GATT_SERVICE_IFACE,
				      service_props(g, s));
		g_variant_builder_close(&objs);
		g_variant_builder_close(&objs);
	}
	for (unsigned int ch = 0; ch < GW_SIM_CHAR_COUNT; ch++) {
		g_variant_builder_open(&objs, G_VARIANT_TYPE("{oa{sa{sv}}}"));
		g_variant_builder_add(&objs, "o", g->chr_path[ch]);
		g_variant_builder_open(&objs, G_VARIANT_TYPE("a{sa{sv}}"));
		g_variant_builder_add(&objs, "{s@a{sv}}", GW_SIM_GATT_CHAR_IFACE,
				      char_props(g, ch));
		g_variant_builder_close(&objs);
		g_variant_builder_close(&objs);
	}
	return g_variant_builder_end(&objs);
}

static void root_method(GDBusConnection *bus, const char *sender,
			const char *path, const char *iface,
			const char *method, GVariant *params,
			GDBusMethodInvocation *inv, void *data)
{
	struct obj_ref *ref = data;

	(void) bus; (void) sender; (void) path; (void) iface; (void) params;
	if (strcmp(method, "GetManagedObjects") == 0) {
		g_dbus_method_invocation_return_value(inv,
			g_variant_new("(@a{oa{sa{sv}}})",
				      managed_objects(ref->g)));
		return;
	}
	g_dbus_method_invocation_return_dbus_error(inv,
		"org.freedesktop.DBus.Error.UnknownMethod", method);
}

static GVariant *service_get(GDBusConnection *bus, const char *sender,
			     const char *path, const char *iface,
			     const char *prop, GError **error, void *data)
{
	struct obj_ref *ref = data;
	g_autoptr(GVariant) all = service_props(ref->g, ref->index);
	GVariant *v = g_variant_lookup_value(all, prop, NULL);

	(void) bus; (void) sender; (void) path; (void) iface;
	if (!v)
		g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY,
			    "no property %s", prop);
	return v;
}

static GVariant *char_get(GDBusConnection *bus, const char *sender,
			  const char *path, const char *iface,
			  const char *prop, GError **error, void *data)
{
	struct obj_ref *ref = data;
	g_autoptr(GVariant) all = char_props(ref->g, ref->index);
	GVariant *v = g_variant_lookup_value(all, prop, NULL);

	(void) bus; (void) sender; (void) path; (void) iface;
	if (!v)
		g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY,
			    "no property %s", prop);
	return v;
}

static void char_read(GwSimGatt *g, enum gw_sim_char ch, GVariant *params,
		      GDBusMethodInvocation *inv)
{
	g_autoptr(GVariant) opts = NULL;
	uint8_t buf[WB_ATT_MAX_VALUE];
	size_t len = 0;
	guint16 offset = 0;
	int rc;

	g_variant_get(params, "(@a{sv})", &opts);
	g_variant_lookup(opts, "offset", "q", &offset);
	request_seen(g, opts);
	rc = gw_sim_read(g->sim, ch, buf, sizeof(buf), &len);
	if (rc) {
		g_debug("%s: read %s: ATT error 0x%02x", g->adapter,
			gw_sim_char_name(ch), (unsigned int) rc);
		g_dbus_method_invocation_return_dbus_error(inv,
			att_error_name(rc), "ATT error");
		return;
	}
	if (offset > len) {
		g_dbus_method_invocation_return_dbus_error(inv,
			att_error_name(GW_SIM_ATT_INVALID_OFFSET),
			"Invalid offset");
		return;
	}
	g_debug("%s: read %s: %zu bytes from %u", g->adapter,
		gw_sim_char_name(ch), len, offset);
	g_dbus_method_invocation_return_value(inv,
		g_variant_new("(@ay)",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE,
							buf + offset,
							len - offset, 1)));
}

static void char_write(GwSimGatt *g, enum gw_sim_char ch, GVariant *params,
		       GDBusMethodInvocation *inv)
{
	g_autoptr(GVariant) value = NULL;
	g_autoptr(GVariant) opts = NULL;
	const uint8_t *val;
	const char *type = NULL;
	guint16 offset = 0;
	gsize len = 0;
	int rc;

	g_variant_get(params, "(@ay@a{sv})", &value, &opts);
	g_variant_lookup(opts, "offset", "q", &offset);
	g_variant_lookup(opts, "type", "&s", &type);
	if (type && strcmp(type, "request") != 0 &&
	    !(gw_sim_char_props(ch) & GW_SIM_PROP_WRITE_NO_RSP)) {
		g_dbus_method_invocation_return_dbus_error(inv,
			BLUEZ_ERROR "NotSupported", "Write type not supported");
		return;
	}
	if (offset) {
		g_dbus_method_invocation_return_dbus_error(inv,
			att_error_name(GW_SIM_ATT_INVALID_OFFSET),
			"Invalid offset");
		return;
	}
	request_seen(g, opts);
	val = g_variant_get_fixed_array(value, &len, 1);
	rc = gw_sim_write(g->sim, ch, val, len);
	g_debug("%s: write %s: %zu bytes: ATT 0x%02x", g->adapter,
		gw_sim_char_name(ch), (size_t) len, (unsigned int) rc);
	if (rc)
		g_dbus_method_invocation_return_dbus_error(inv,
			att_error_name(rc), "ATT error");
	else
		g_dbus_method_invocation_return_value(inv, NULL);
	/* the answers go after the write response */
	gw_sim_gatt_kick(g);
}

static void char_notify(GwSimGatt *g, enum gw_sim_char ch, bool on,
			GDBusMethodInvocation *inv)
{
	if (!(gw_sim_char_props(ch) & (GW_SIM_PROP_NOTIFY |
				       GW_SIM_PROP_INDICATE))) {
		g_dbus_method_invocation_return_dbus_error(inv,
			BLUEZ_ERROR "NotSupported", "Notify not supported");
		return;
	}
	g->notifying[ch] = on;
	g_debug("%s: %s notify %s", g->adapter, gw_sim_char_name(ch),
		on ? "on" : "off");
	if (!g->sim_linked)
		request_seen(g, NULL);	/* hands the flags over */
	else
		gw_sim_set_notify(g->sim, ch, on);
	g_dbus_method_invocation_return_value(inv, NULL);
	gw_sim_gatt_kick(g);
}

static void char_method(GDBusConnection *bus, const char *sender,
			const char *path, const char *iface,
			const char *method, GVariant *params,
			GDBusMethodInvocation *inv, void *data)
{
	struct obj_ref *ref = data;
	GwSimGatt *g = ref->g;
	enum gw_sim_char ch = ref->index;

	(void) bus; (void) sender; (void) path; (void) iface;
	if (!strcmp(method, "ReadValue")) {
		char_read(g, ch, params, inv);
	} else if (!strcmp(method, "WriteValue")) {
		char_write(g, ch, params, inv);
	} else if (!strcmp(method, "StartNotify")) {
		char_notify(g, ch, true, inv);
	} else if (!strcmp(method, "StopNotify")) {
		char_notify(g, ch, false, inv);
	} else if (!strcmp(method, "Confirm")) {
		g->confirmed++;
		g_debug("%s: %s indication confirmed", g->adapter,
			gw_sim_char_name(ch));
		g_dbus_method_invocation_return_value(inv, NULL);
	} else {
		g_dbus_method_invocation_return_dbus_error(inv,
			"org.freedesktop.DBus.Error.UnknownMethod", method);
	}
}

static GVariant *adv_get(GDBusConnection *bus, const char *sender,
			 const char *path, const char *iface,
			 const char *prop, GError **error, void *data)
{
	struct obj_ref *ref = data;
	const char *uuids[] = { WB_UUID_SERVICE, NULL };

	(void) bus; (void) sender; (void) path; (void) iface;
	if (!strcmp(prop, "Type"))
		return g_variant_new_string("peripheral");
	if (!strcmp(prop, "ServiceUUIDs"))
		return g_variant_new_strv(uuids, -1);
	if (!strcmp(prop, "LocalName"))
		return g_variant_new_string(ref->g->local_name);
	if (!strcmp(prop, "Discoverable"))
		return g_variant_new_boolean(TRUE);
	g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY,
		    "no property %s", prop);
	return NULL;
}

static void adv_method(GDBusConnection *bus, const char *sender,
		       const char *path, const char *iface, const char *method,
		       GVariant *params, GDBusMethodInvocation *inv, void *data)
{
	struct obj_ref *ref = data;
	GwSimGatt *g = ref->g;

	(void) bus; (void) sender; (void) path; (void) iface; (void) params;
	if (strcmp(method, "Release") != 0) {
		g_dbus_method_invocation_return_dbus_error(inv,
			"org.freedesktop.DBus.Error.UnknownMethod", method);
		return;
	}
	g_message("%s: advertisement released by bluetoothd", g->adapter);
	g->adv_registered = false;
	g_dbus_method_invocation_return_value(inv, NULL);
	schedule_retry(g);
}

/* The simulator accepts every pairing: it is a bench tool. */
static void agent_method(GDBusConnection *bus, const char *sender,
			 const char *path, const char *iface,
			 const char *method, GVariant *params,
			 GDBusMethodInvocation *inv, void *data)
{
	struct obj_ref *ref = data;
	g_autoptr(GVariant) first = NULL;
	const char *dev = NULL;

	(void) bus; (void) sender; (void) path; (void) iface;
	if (g_variant_n_children(params) > 0)
		first = g_variant_get_child_value(params, 0);
	if (first && g_variant_is_of_type(first, G_VARIANT_TYPE_OBJECT_PATH))
		dev = g_variant_get_string(first, NULL);
	g_message("%s: agent: %s%s%s", ref->g->adapter, method,
		  dev ? " " : "", dev ? dev : "");
	if (!strcmp(method, "RequestPinCode"))
		g_dbus_method_invocation_return_value(inv,
			g_variant_new("(s)", "000000"));
	else if (!strcmp(method, "RequestPasskey"))
		g_dbus_method_invocation_return_value(inv,
			g_variant_new("(u)", 0));
	else
		g_dbus_method_invocation_return_value(inv, NULL);
}

static const GDBusInterfaceVTable agent_vtable = { agent_method, NULL, NULL, { 0 } };
static const GDBusInterfaceVTable root_vtable = { root_method, NULL, NULL, { 0 } };
static const GDBusInterfaceVTable service_vtable = { NULL, service_get, NULL, { 0 } };
static const GDBusInterfaceVTable char_vtable = { char_method, char_get, NULL, { 0 } };
static const GDBusInterfaceVTable adv_vtable = { adv_method, adv_get, NULL, { 0 } };

static bool export(GwSimGatt *g, const char *path, const char *iface,
		   const GDBusInterfaceVTable *vt, struct obj_ref *ref,
		   GError **error)
{
	GDBusInterfaceInfo *info = g_dbus_node_info_lookup_interface(g->node,
								     iface);
	guint id = g_dbus_connection_register_object(g->bus, path, info, vt,
						     ref, NULL, error);

	if (!id) {
		g_prefix_error(error, "exporting %s: ", path);
		return false;
	}
	g_array_append_val(g->reg_ids, id);
	return true;
}

static bool export_all(GwSimGatt *g, GError **error)
{
	g->root_ref = (struct obj_ref) { g, 0 };
	if (!export(g, g->root, GW_SIM_GATT_OM_IFACE, &root_vtable,
		    &g->root_ref, error))
		return false;
	for (unsigned int s = 0; s < GW_SIM_SERVICE_COUNT; s++) {
		g->svc_ref[s] = (struct obj_ref) { g, s };
		if (!export(g, g->svc_path[s], GW_SIM_GATT_SERVICE_IFACE,
			    &service_vtable, &g->svc_ref[s], error))
			return false;
	}
	for (unsigned int ch = 0; ch < GW_SIM_CHAR_COUNT; ch++) {
		g->chr_ref[ch] = (struct obj_ref) { g, ch };
		if (!export(g, g->chr_path[ch], GW_SIM_GATT_CHAR_IFACE,
			    &char_vtable, &g->chr_ref[ch], error))
			return false;
	}
	if (!export(g, g->agent_path, GW_SIM_GATT_AGENT_IFACE, &agent_vtable,
		    &g->root_ref, error))
		return false;
	return export(g, g->adv_path, GW_SIM_GATT_ADV_IFACE, &adv_vtable,
		      &g->root_ref, error);
}

/* ---- public ---------------------------------------------------------------------- */

GwSimGatt *gw_sim_gatt_new(GDBusConnection *bus, GwSim *sim)
{
	GwSimGatt *g;

	g_return_val_if_fail(sim, NULL);

	g = g_new0(GwSimGatt, 1);
	g->bus = bus ? g_object_ref(bus) : NULL;
	g->sim = sim;
	g->cancel = g_cancellable_new();
	g->reg_ids = g_array_new(FALSE, FALSE, sizeof(guint));
	g->links = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g->local_name = g_strdup(GW_SIM_GATT_LOCAL_NAME);
	g->follow_range = true;
	g->encrypt = true;
	g->agent = true;
	g->agent_default = true;
	g->burst = BURST_DEFAULT;
	g->interval_ms = INTERVAL_DEFAULT_MS;
	return g;
}

void gw_sim_gatt_set_local_name(GwSimGatt *g, const char *name)
{
	g_return_if_fail(g && name && !g->started);
	g_free(g->local_name);
	g->local_name = g_strdup(name);
}

void gw_sim_gatt_set_follow_range(GwSimGatt *g, bool follow)
{
	g_return_if_fail(g && !g->started);
	g->follow_range = follow;
}

void gw_sim_gatt_set_encrypt(GwSimGatt *g, bool encrypt)
{
	g_return_if_fail(g && !g->started);
	g->encrypt = encrypt;
}

void gw_sim_gatt_set_agent(GwSimGatt *g, bool agent, bool make_default)
{
	g_return_if_fail(g && !g->started);
	g->agent = agent;
	g->agent_default = agent && make_default;
}

void gw_sim_gatt_set_pacing(GwSimGatt *g, unsigned int burst,
			    unsigned int interval_ms)
{
	g_return_if_fail(g && !g->started);
	g->burst = burst ? burst : BURST_DEFAULT;
	g->interval_ms = interval_ms ? interval_ms : INTERVAL_DEFAULT_MS;
}

static bool adapter_name_valid(const char *s)
{
	if (!s || !*s || strlen(s) > 32)
		return false;
	for (; *s; s++)
		if (!g_ascii_isalnum(*s) && *s != '_')
			return false;
	return true;
}

gboolean gw_sim_gatt_start(GwSimGatt *g, const char *adapter, GError **error)
{
	g_return_val_if_fail(g && !g->started, FALSE);

	if (!adapter_name_valid(adapter)) {
		g_set_error(error, GW_SIM_ERROR, GW_SIM_ERROR_INVALID,
			    "bad adapter name '%s'", adapter ? adapter : "");
		return FALSE;
	}
	if (!g->bus) {
		g->bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, error);
		if (!g->bus) {
			g_prefix_error(error, "system bus: ");
			return FALSE;
		}
	}
	g->adapter = g_strdup(adapter);
	g->adapter_path = g_strdup_printf("/org/bluez/%s", adapter);
	g->device_prefix = g_strdup_printf("%s/", g->adapter_path);
	g->root = g_strdup_printf(GW_SIM_GATT_PATH_ROOT "/%s", adapter);
	g->adv_path = g_strdup_printf("%s/advertisement0", g->root);
	g->agent_path = g_strdup_printf("%s/agent", g->root);
	for (unsigned int s = 0; s < GW_SIM_SERVICE_COUNT; s++)
		g->svc_path[s] = g_strdup_printf("%s/service%u", g->root, s);
	for (unsigned int ch = 0; ch < GW_SIM_CHAR_COUNT; ch++)
		g->chr_path[ch] = g_strdup_printf("%s/char%u",
			g->svc_path[gw_sim_char_service(ch)], ch);

	g->node = g_dbus_node_info_new_for_xml(introspection_xml, error);
	if (!g->node)
		return FALSE;
	if (!export_all(g, error))
		return FALSE;

	g->sub_added = g_dbus_connection_signal_subscribe(g->bus,
		GW_SIM_GATT_BLUEZ_NAME, GW_SIM_GATT_OM_IFACE, "InterfacesAdded",
		"/", NULL, G_DBUS_SIGNAL_FLAGS_NONE, interfaces_added_cb, g,
		NULL);
	g->sub_removed = g_dbus_connection_signal_subscribe(g->bus,
		GW_SIM_GATT_BLUEZ_NAME, GW_SIM_GATT_OM_IFACE,
		"InterfacesRemoved", "/", NULL, G_DBUS_SIGNAL_FLAGS_NONE,
		interfaces_removed_cb, g, NULL);
	g->sub_adapter = g_dbus_connection_signal_subscribe(g->bus,
		GW_SIM_GATT_BLUEZ_NAME, GW_SIM_GATT_PROPS_IFACE,
		"PropertiesChanged", g->adapter_path,
		GW_SIM_GATT_ADAPTER_IFACE, G_DBUS_SIGNAL_FLAGS_NONE,
		props_changed_cb, g, NULL);
	g->sub_device = g_dbus_connection_signal_subscribe(g->bus,
		GW_SIM_GATT_BLUEZ_NAME, GW_SIM_GATT_PROPS_IFACE,
		"PropertiesChanged", NULL, GW_SIM_GATT_DEVICE_IFACE,
		G_DBUS_SIGNAL_FLAGS_NONE, props_changed_cb, g, NULL);
	g->started = true;
	g->name_watch = g_bus_watch_name_on_connection(g->bus,
		GW_SIM_GATT_BLUEZ_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
		bluez_appeared_cb, bluez_vanished_cb, g, NULL);
	follow_range(g);
	g_message("%s: GATT application at %s, advertising '%s'%s", adapter,
		  g->root, g->local_name,
		  g->encrypt ? "" : " (no encryption required)");
	return TRUE;
}

void gw_sim_gatt_free(GwSimGatt *g)
{
	if (!g)
		return;
	if (g->cancel)
		g_cancellable_cancel(g->cancel);
	if (g->bus && g->bluez_up && g->app_registered)
		g_dbus_connection_call(g->bus, GW_SIM_GATT_BLUEZ_NAME,
				       g->adapter_path,
				       GW_SIM_GATT_MANAGER_IFACE,
				       "UnregisterApplication",
				       g_variant_new("(o)", g->root), NULL,
				       G_DBUS_CALL_FLAGS_NO_AUTO_START, -1,
				       NULL, NULL, NULL);
	if (g->bus && g->bluez_up && g->adv_registered)
		g_dbus_connection_call(g->bus, GW_SIM_GATT_BLUEZ_NAME,
				       g->adapter_path,
				       GW_SIM_GATT_ADV_MANAGER_IFACE,
				       "UnregisterAdvertisement",
				       g_variant_new("(o)", g->adv_path), NULL,
				       G_DBUS_CALL_FLAGS_NO_AUTO_START, -1,
				       NULL, NULL, NULL);
	if (g->name_watch)
		g_bus_unwatch_name(g->name_watch);
	if (g->bus) {
		guint *subs[] = { &g->sub_added, &g->sub_removed,
				  &g->sub_adapter, &g->sub_device };

		for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
			if (*subs[i])
				g_dbus_connection_signal_unsubscribe(g->bus,
								     *subs[i]);
		for (guint i = 0; i < g->reg_ids->len; i++)
			g_dbus_connection_unregister_object(g->bus,
				g_array_index(g->reg_ids, guint, i));
	}
	clear_source(&g->retry);
	clear_source(&g->power_retry);
	clear_source(&g->drain);
	if (g->sim_linked)
		gw_sim_disconnect(g->sim);
	g_array_unref(g->reg_ids);
	g_hash_table_unref(g->links);
	g_clear_pointer(&g->node, g_dbus_node_info_unref);
	g_clear_object(&g->cancel);
	g_clear_object(&g->bus);
	for (unsigned int s = 0; s < GW_SIM_SERVICE_COUNT; s++)
		g_free(g->svc_path[s]);
	for (unsigned int ch = 0; ch < GW_SIM_CHAR_COUNT; ch++)
		g_free(g->chr_path[ch]);
	g_free(g->adapter);
	g_free(g->adapter_path);
	g_free(g->device_prefix);
	g_free(g->root);
	g_free(g->adv_path);
	g_free(g->agent_path);
	g_free(g->local_name);
	g_free(g);
}

enum gw_sim_gatt_state gw_sim_gatt_get_state(const GwSimGatt *g)
{
	g_return_val_if_fail(g, GW_SIM_GATT_STATE_IDLE);

	if (!g->started)
		return GW_SIM_GATT_STATE_IDLE;
	if (!g->bluez_up)
		return GW_SIM_GATT_STATE_NO_BLUEZ;
	if (!g->have_adapter)
		return GW_SIM_GATT_STATE_NO_ADAPTER;
	if (!g->powered)
		return GW_SIM_GATT_STATE_UNPOWERED;
	if (g_hash_table_size(g->links) > 0)
		return GW_SIM_GATT_STATE_CONNECTED;
	if (g->app_registered && g->adv_registered)
		return GW_SIM_GATT_STATE_ADVERTISING;
	return GW_SIM_GATT_STATE_REGISTERING;
}

const char *gw_sim_gatt_state_name(enum gw_sim_gatt_state s)
{
	switch (s) {
	case GW_SIM_GATT_STATE_IDLE:
		return "idle";
	case GW_SIM_GATT_STATE_NO_BLUEZ:
		return "no-bluez";
	case GW_SIM_GATT_STATE_NO_ADAPTER:
		return "no-adapter";
	case GW_SIM_GATT_STATE_UNPOWERED:
		return "unpowered";
	case GW_SIM_GATT_STATE_REGISTERING:
		return "registering";
	case GW_SIM_GATT_STATE_ADVERTISING:
		return "advertising";
	case GW_SIM_GATT_STATE_CONNECTED:
		return "connected";
	}
	return "?";
}

uint64_t gw_sim_gatt_get_sent(const GwSimGatt *g)
{
	g_return_val_if_fail(g, 0);
	return g->sent;
}

uint64_t gw_sim_gatt_get_confirmed(const GwSimGatt *g)
{
	g_return_val_if_fail(g, 0);
	return g->confirmed;
}

/* ---- rehablink-sim --backend bluez ----------------------------------------------- */

#define TICK_MS			50
#define SAVE_MS			1000

struct run {
	GMainLoop *loop;
	GwSim *sim;
	GwSimGatt *g;
	double speed;
	int64_t real0;			/* monotonic µs at start */
	int64_t sim0;			/* simulated µs at start */
	int64_t last_save;
	bool print_ready;
	bool ready_printed;
	int status;
	enum gw_sim_gatt_state last_state;
	guint tick;
	guint stdin_watch;
};

static const char *errmsg(const GError *err)
{
	return err ? err->message : "unknown error";
}

static gboolean run_tick_cb(void *data)
{
	struct run *r = data;
	int64_t now = g_get_monotonic_time();
	int64_t t = r->sim0 + (int64_t) ((double) (now - r->real0) * r->speed);
	g_autoptr(GError) err = NULL;
	enum gw_sim_gatt_state st;

	if (!gw_sim_advance(r->sim, t, &err)) {
		g_printerr("rehablink-sim: %s\n", err->message);
		r->status = 1;
		r->tick = 0;
		g_main_loop_quit(r->loop);
		return G_SOURCE_REMOVE;
	}
	gw_sim_gatt_kick(r->g);
	if (now - r->last_save >= SAVE_MS * 1000 && gw_sim_is_dirty(r->sim)) {
		r->last_save = now;
		if (!gw_sim_save(r->sim, &err)) {
			g_printerr("rehablink-sim: %s\n", err->message);
			g_clear_error(&err);
		}
	}
	st = gw_sim_gatt_get_state(r->g);
	if (st != r->last_state) {
		g_message("state %s", gw_sim_gatt_state_name(st));
		r->last_state = st;
	}
	if (r->print_ready && !r->ready_printed &&
	    st == GW_SIM_GATT_STATE_ADVERTISING) {
		r->ready_printed = true;
		printf("READY\n");
		fflush(stdout);
	}
	return G_SOURCE_CONTINUE;
}

/* One statement a line on stdin ("pain 8 flags chest", "out-of-range 5m",
 * "reboot"): applied now, as the fake's Apply does. */
static gboolean run_stdin_cb(GIOChannel *ch, GIOCondition cond, void *data)
{
	struct run *r = data;
	g_autofree char *line = NULL;
	g_autoptr(GError) err = NULL;
	gsize len = 0;
	GIOStatus st;

	(void) cond;
	st = g_io_channel_read_line(ch, &line, &len, NULL, &err);
	if (st == G_IO_STATUS_AGAIN)
		return G_SOURCE_CONTINUE;
	if (st != G_IO_STATUS_NORMAL) {
		r->stdin_watch = 0;
		return G_SOURCE_REMOVE;
	}
	g_strstrip(line);
	if (!*line || *line == '#')
		return G_SOURCE_CONTINUE;
	if (gw_sim_apply(r->sim, line, &err)) {
		g_message("applied '%s'", line);
		gw_sim_gatt_kick(r->g);
	} else {
		g_printerr("rehablink-sim: stdin: %s\n", err->message);
	}
	return G_SOURCE_CONTINUE;
}

static gboolean run_quit_cb(void *data)
{
	struct run *r = data;

	g_main_loop_quit(r->loop);
	return G_SOURCE_CONTINUE;
}

int gw_sim_gatt_run(const struct gw_sim_gatt_run_opts *opts)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GwSimScenario) sc = NULL;
	g_autoptr(GwSim) sim = NULL;
	g_autoptr(GwSimGatt) g = NULL;
	g_autoptr(GDBusConnection) bus = NULL;
	g_autoptr(GMainLoop) loop = NULL;
	struct gw_sim_config cfg = { 0 };
	struct run r = { 0 };
	guint sigint, sigterm;

	g_return_val_if_fail(opts, 2);

	sc = opts->scenario_path ? gw_sim_scenario_load(opts->scenario_path,
							&err)
				 : gw_sim_scenario_new_default();
	if (!sc) {
		g_printerr("rehablink-sim: %s\n", errmsg(err));
		return 2;
	}
	cfg.state_path = opts->state_path;
	cfg.capacity = opts->capacity;
	cfg.seed = opts->seed;
	cfg.serial = opts->serial;
	sim = gw_sim_new(&cfg, sc, opts->start_us, &err);
	if (!sim) {
		g_printerr("rehablink-sim: %s\n", errmsg(err));
		return 1;
	}
	bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &err);
	if (!bus) {
		g_printerr("rehablink-sim: system bus: %s\n", errmsg(err));
		return 3;
	}
	g = gw_sim_gatt_new(bus, sim);
	if (opts->local_name)
		gw_sim_gatt_set_local_name(g, opts->local_name);
	gw_sim_gatt_set_follow_range(g, !opts->no_follow_range);
	gw_sim_gatt_set_encrypt(g, !opts->no_encrypt);
	gw_sim_gatt_set_agent(g, !opts->no_agent, !opts->no_default_agent);
	if (!gw_sim_gatt_start(g, opts->adapter ? opts->adapter : "hci0",
			       &err)) {
		g_printerr("rehablink-sim: %s\n", errmsg(err));
		return g_error_matches(err, GW_SIM_ERROR, GW_SIM_ERROR_INVALID)
			? 2 : 3;
	}

	loop = g_main_loop_new(NULL, FALSE);
	r.loop = loop;
	r.sim = sim;
	r.g = g;
	r.speed = opts->speed > 0 ? opts->speed : 1.0;
	r.real0 = g_get_monotonic_time();
	r.last_save = r.real0;
	/* the first advance makes the records up to the start; a state file
	 * that is further on wins (a restarted simulator continues) */
	r.sim0 = MAX(opts->start_us, gw_sim_get_time(sim));
	r.print_ready = opts->print_ready;
	r.last_state = GW_SIM_GATT_STATE_IDLE;

	sigint = g_unix_signal_add(SIGINT, run_quit_cb, &r);
	sigterm = g_unix_signal_add(SIGTERM, run_quit_cb, &r);
	r.tick = g_timeout_add(TICK_MS, run_tick_cb, &r);
	if (opts->stdin_control) {
		GIOChannel *in = g_io_channel_unix_new(0);

		r.stdin_watch = g_io_add_watch(in, G_IO_IN | G_IO_HUP |
					       G_IO_ERR, run_stdin_cb, &r);
		g_io_channel_unref(in);
	}
	g_main_loop_run(loop);
	if (r.tick)
		g_source_remove(r.tick);
	if (r.stdin_watch)
		g_source_remove(r.stdin_watch);
	g_source_remove(sigint);
	g_source_remove(sigterm);

	if (!gw_sim_save(sim, &err)) {
		g_printerr("rehablink-sim: %s\n", errmsg(err));
		if (!r.status)
			r.status = 1;
	}
	{
		struct gw_sim_stats st;

		gw_sim_get_stats(sim, &st);
		g_message("exit: %u records stored (seq %u..%u), %" G_GUINT64_FORMAT
			  " values sent, %" G_GUINT64_FORMAT
			  " indications confirmed", st.stored, st.first_seq,
			  st.last_seq, gw_sim_gatt_get_sent(g),
			  gw_sim_gatt_get_confirmed(g));
	}
	/* let the unregister calls of gw_sim_gatt_free leave */
	g_clear_pointer(&g, gw_sim_gatt_free);
	g_dbus_connection_flush_sync(bus, NULL, NULL);
	return r.status;
}
