/* SPDX-License-Identifier: MIT */
/*
 * The fake bluetoothd (sim-fakebus.h, docs/simulator.md sections 3-5).
 *
 * Hand-written GDBusInterfaceVTables on one GDBusConnection; our own
 * ObjectManager at "/", so that InterfacesAdded/Removed carry exactly
 * what bluetoothd sends and notifications are raw PropertiesChanged
 * signals (never coalesced, never dropped for an equal value).
 *
 * Time: simulated µs = base + (monotonic - t0) * speed (+ Advance). One
 * tick every 20 ms runs every wearable up to now, then the notification
 * pump sends what they queued.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib-unix.h>

#include "sim-fakebus.h"
#include "sim.h"
#include "wearable.h"

#define G_LOG_DOMAIN_FB          "gw-fakebus"
#define fb_debug(...)            g_log(G_LOG_DOMAIN_FB, G_LOG_LEVEL_DEBUG, __VA_ARGS__)
#define fb_info(...)             g_log(G_LOG_DOMAIN_FB, G_LOG_LEVEL_INFO, __VA_ARGS__)
#define fb_warn(...)             g_log(G_LOG_DOMAIN_FB, G_LOG_LEVEL_MESSAGE, __VA_ARGS__)

#define BLUEZ_NAME               "org.bluez"
#define ERR                      "org.bluez.Error."
#define CTL_ERR                  GW_FAKEBUS_CONTROL_IFACE ".Error."
#define IFACE_ADAPTER            "org.bluez.Adapter1"
#define IFACE_DEVICE             "org.bluez.Device1"
#define IFACE_SERVICE            "org.bluez.GattService1"
#define IFACE_CHAR               "org.bluez.GattCharacteristic1"
#define IFACE_DESC               "org.bluez.GattDescriptor1"
#define IFACE_AGENT_MANAGER      "org.bluez.AgentManager1"
#define IFACE_AGENT              "org.bluez.Agent1"
#define IFACE_OM                 "org.freedesktop.DBus.ObjectManager"
#define IFACE_PROPS              "org.freedesktop.DBus.Properties"
#define IFACE_INTROSPECTABLE     "org.freedesktop.DBus.Introspectable"
#define UUID_CCC                 "00002902-0000-1000-8000-00805f9b34fb"
#define UUID_HEART_RATE          "0000180d-0000-1000-8000-00805f9b34fb"
#define TICK_MS                  20
#define PUMP_BUDGET              256
#define MAX_DEVICES              16
#define FIRST_HANDLE             0x000c

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

static const char introspection_xml[] =
	"<node>"
	" <interface name='org.freedesktop.DBus.ObjectManager'>"
	"  <method name='GetManagedObjects'>"
	"   <arg name='objects' type='a{oa{sa{sv}}}' direction='out'/>"
	"  </method>"
	"  <signal name='InterfacesAdded'>"
	"   <arg name='object' type='o'/><arg name='interfaces' type='a{sa{sv}}'/>"
	"  </signal>"
	"  <signal name='InterfacesRemoved'>"
	"   <arg name='object' type='o'/><arg name='interfaces' type='as'/>"
	"  </signal>"
	" </interface>"
	" <interface name='org.bluez.AgentManager1'>"
	"  <method name='RegisterAgent'>"
	"   <arg name='agent' type='o' direction='in'/>"
	"   <arg name='capability' type='s' direction='in'/>"
	"  </method>"
	"  <method name='UnregisterAgent'>"
	"   <arg name='agent' type='o' direction='in'/>"
	"  </method>"
	"  <method name='RequestDefaultAgent'>"
	"   <arg name='agent' type='o' direction='in'/>"
	"  </method>"
	" </interface>"
	" <interface name='org.bluez.Adapter1'>"
	"  <method name='StartDiscovery'/>"
	"  <method name='SetDiscoveryFilter'>"
	"   <arg name='properties' type='a{sv}' direction='in'/>"
	"  </method>"
	"  <method name='StopDiscovery'/>"
	"  <method name='RemoveDevice'>"
	"   <arg name='device' type='o' direction='in'/>"
	"  </method>"
	"  <method name='GetDiscoveryFilters'>"
	"   <arg name='filters' type='as' direction='out'/>"
	"  </method>"
	"  <property name='Address' type='s' access='read'/>"
	"  <property name='AddressType' type='s' access='read'/>"
	"  <property name='Name' type='s' access='read'/>"
	"  <property name='Alias' type='s' access='readwrite'/>"
	"  <property name='Class' type='u' access='read'/>"
	"  <property name='Powered' type='b' access='readwrite'/>"
	"  <property name='PowerState' type='s' access='read'/>"
	"  <property name='Discoverable' type='b' access='readwrite'/>"
	"  <property name='DiscoverableTimeout' type='u' access='readwrite'/>"
	"  <property name='Pairable' type='b' access='readwrite'/>"
	"  <property name='PairableTimeout' type='u' access='readwrite'/>"
	"  <property name='Discovering' type='b' access='read'/>"
	"  <property name='UUIDs' type='as' access='read'/>"
	"  <property name='Modalias' type='s' access='read'/>"
	"  <property name='Roles' type='as' access='read'/>"
	" </interface>"
	" <interface name='org.bluez.Device1'>"
	"  <method name='Disconnect'/>"
	"  <method name='Connect'/>"
	"  <method name='ConnectProfile'><arg name='UUID' type='s' direction='in'/></method>"
	"  <method name='DisconnectProfile'><arg name='UUID' type='s' direction='in'/></method>"
	"  <method name='Pair'/>"
	"  <method name='CancelPairing'/>"
	"  <property name='Address' type='s' access='read'/>"
	"  <property name='AddressType' type='s' access='read'/>"
	"  <property name='Name' type='s' access='read'/>"
	"  <property name='Alias' type='s' access='readwrite'/>"
	"  <property name='Appearance' type='q' access='read'/>"
	"  <property name='Icon' type='s' access='read'/>"
	"  <property name='Paired' type='b' access='read'/>"
	"  <property name='Bonded' type='b' access='read'/>"
	"  <property name='Trusted' type='b' access='readwrite'/>"
	"  <property name='Blocked' type='b' access='readwrite'/>"
	"  <property name='LegacyPairing' type='b' access='read'/>"
	"  <property name='RSSI' type='n' access='read'/>"
	"  <property name='Connected' type='b' access='read'/>"
	"  <property name='UUIDs' type='as' access='read'/>"
	"  <property name='Adapter' type='o' access='read'/>"
	"  <property name='ServicesResolved' type='b' access='read'/>"
	"  <property name='AdvertisingFlags' type='ay' access='read'/>"
	" </interface>"
	" <interface name='org.bluez.GattService1'>"
	"  <property name='UUID' type='s' access='read'/>"
	"  <property name='Device' type='o' access='read'/>"
	"  <property name='Primary' type='b' access='read'/>"
	"  <property name='Includes' type='ao' access='read'/>"
	" </interface>"
	" <interface name='org.bluez.GattCharacteristic1'>"
	"  <method name='ReadValue'>"
	"   <arg name='options' type='a{sv}' direction='in'/>"
	"   <arg name='value' type='ay' direction='out'/>"
	"  </method>"
	"  <method name='WriteValue'>"
	"   <arg name='value' type='ay' direction='in'/>"
	"   <arg name='options' type='a{sv}' direction='in'/>"
	"  </method>"
	"  <method name='AcquireWrite'>"
	"   <arg name='options' type='a{sv}' direction='in'/>"
	"   <arg name='fd' type='h' direction='out'/>"
	"   <arg name='mtu' type='q' direction='out'/>"
	"  </method>"
	"  <method name='AcquireNotify'>"
	"   <arg name='options' type='a{sv}' direction='in'/>"
	"   <arg name='fd' type='h' direction='out'/>"
	"   <arg name='mtu' type='q' direction='out'/>"
	"  </method>"
	"  <method name='StartNotify'/>"
	"  <method name='StopNotify'/>"
	"  <property name='UUID' type='s' access='read'/>"
	"  <property name='Service' type='o' access='read'/>"
	"  <property name='Value' type='ay' access='read'/>"
	"  <property name='Notifying' type='b' access='read'/>"
	"  <property name='Flags' type='as' access='read'/>"
	"  <property name='MTU' type='q' access='read'/>"
	" </interface>"
	" <interface name='org.bluez.GattDescriptor1'>"
	"  <method name='ReadValue'>"
	"   <arg name='options' type='a{sv}' direction='in'/>"
	"   <arg name='value' type='ay' direction='out'/>"
	"  </method>"
	"  <method name='WriteValue'>"
	"   <arg name='value' type='ay' direction='in'/>"
	"   <arg name='options' type='a{sv}' direction='in'/>"
	"  </method>"
	"  <property name='UUID' type='s' access='read'/>"
	"  <property name='Characteristic' type='o' access='read'/>"
	"  <property name='Value' type='ay' access='read'/>"
	" </interface>"
	" <interface name='org.rehablink.FakeBluez1'>"
	"  <method name='Inject'>"
	"   <arg name='fault' type='s' direction='in'/>"
	"   <arg name='args' type='a{sv}' direction='in'/>"
	"  </method>"
	"  <method name='Clear'><arg name='fault' type='s' direction='in'/></method>"
	"  <method name='GetCounters'>"
	"   <arg name='address' type='s' direction='in'/>"
	"   <arg name='counters' type='a{sv}' direction='out'/>"
	"  </method>"
	"  <method name='ListDevices'><arg name='addresses' type='as' direction='out'/></method>"
	"  <method name='Apply'>"
	"   <arg name='address' type='s' direction='in'/>"
	"   <arg name='statement' type='s' direction='in'/>"
	"   <arg name='last_seq' type='u' direction='out'/>"
	"  </method>"
	"  <method name='Advance'><arg name='seconds' type='d' direction='in'/></method>"
	"  <method name='SetSpeed'><arg name='factor' type='d' direction='in'/></method>"
	"  <method name='GetTime'><arg name='time_us' type='x' direction='out'/></method>"
	"  <method name='Save'/>"
	"  <method name='Exit'><arg name='code' type='i' direction='in'/></method>"
	" </interface>"
	"</node>";

/* ---- Types ------------------------------------------------------------------ */

enum gatt_cache {
	GATT_CACHE_ALWAYS,
	GATT_CACHE_YES,
	GATT_CACHE_NO,
};

enum fault_kind {
	FAULT_CONNECT_IN_PROGRESS,
	FAULT_CONNECT_ABORT,
	FAULT_CONNECT_NOT_READY,
	FAULT_CONNECT_FAILED,
	FAULT_CONNECT_AUTH,
	FAULT_CONNECT_TIMEOUT,
	FAULT_KEY_MISSING,
	FAULT_LINK_LOSS,
	FAULT_SERVICES_UNRESOLVED,
	FAULT_CHAR_MISSING,
	FAULT_CHAR_FLAGS,
	FAULT_MALFORMED,
	FAULT_ADAPTER_POWER_OFF,
	FAULT_ADAPTER_POWER_ON,
	FAULT_ADAPTER_REMOVE,
	FAULT_ADAPTER_ADD,
	FAULT_BLUETOOTHD_EXIT,
	FAULT_BLUETOOTHD_RESTART,
	FAULT_STRANGER,
	FAULT_OUT_OF_RANGE,
	FAULT_HCP_BUSY,
	FAULT_HCP_STORAGE_ERROR,
	FAULT_PAIR_REJECT,
};

static const char *const fault_names[] = {
	[FAULT_CONNECT_IN_PROGRESS] = "connect-in-progress",
	[FAULT_CONNECT_ABORT] = "connect-abort",
	[FAULT_CONNECT_NOT_READY] = "connect-not-ready",
	[FAULT_CONNECT_FAILED] = "connect-failed",
	[FAULT_CONNECT_AUTH] = "connect-auth",
	[FAULT_CONNECT_TIMEOUT] = "connect-timeout",
	[FAULT_KEY_MISSING] = "key-missing",
	[FAULT_LINK_LOSS] = "link-loss",
	[FAULT_SERVICES_UNRESOLVED] = "services-unresolved",
	[FAULT_CHAR_MISSING] = "char-missing",
	[FAULT_CHAR_FLAGS] = "char-flags",
	[FAULT_MALFORMED] = "malformed",
	[FAULT_ADAPTER_POWER_OFF] = "adapter-power-off",
	[FAULT_ADAPTER_POWER_ON] = "adapter-power-on",
	[FAULT_ADAPTER_REMOVE] = "adapter-remove",
	[FAULT_ADAPTER_ADD] = "adapter-add",
	[FAULT_BLUETOOTHD_EXIT] = "bluetoothd-exit",
	[FAULT_BLUETOOTHD_RESTART] = "bluetoothd-restart",
	[FAULT_STRANGER] = "stranger",
	[FAULT_OUT_OF_RANGE] = "out-of-range",
	[FAULT_HCP_BUSY] = "hcp-busy",
	[FAULT_HCP_STORAGE_ERROR] = "hcp-storage-error",
	[FAULT_PAIR_REJECT] = "pair-reject",
};

struct fault {
	enum fault_kind kind;
	char *device;		/* NULL: every wearable */
	unsigned int count;	/* left; 0 = until cleared */
	bool until_power_cycle;
	unsigned int delay_ms;
	unsigned int after;
	char *message;
	int ch;			/* enum gw_sim_char or -1 */
	unsigned int flags;	/* char-flags */
	char *malformed_kind;
};

struct fb_counters {
	unsigned int connects, connects_ok, disconnects, pairs;
	unsigned int notifications, records_sent, history_records_sent;
	unsigned int reads, writes, start_notify, malformed_sent;
};

struct fb_dev;

struct fb_chr {
	struct fb_dev *dev;
	enum gw_sim_char ch;
	char *path;
	char *desc_path;
	unsigned int flags;	/* as exported */
	bool exported;
	guint reg_id;
	guint desc_reg_id;
	GHashTable *sessions;	/* unique name of a StartNotify client */
	GByteArray *value;
};

struct fb_svc {
	struct fb_dev *dev;
	enum gw_sim_service s;
	char *path;
	bool exported;
	guint reg_id;
};

typedef struct gw_fakebus GwFakeBus;

struct fb_dev {
	GwFakeBus *fb;
	char *address;
	char *path;
	char *name;
	char *alias;
	bool random_address;
	bool stranger;
	char **adv_uuids;
	int rssi_base;
	int16_t rssi;
	bool seen;		/* RSSI valid */
	GwSim *sim;		/* NULL for a stranger */
	bool exported;
	bool temporary;
	guint reg_id;
	bool connected, resolved, paired, bonded, trusted, blocked;
	bool uuids_resolved;
	int64_t last_seen_us;	/* monotonic */
	bool gatt_exported;
	struct fb_svc svcs[GW_SIM_SERVICE_COUNT];
	struct fb_chr chrs[GW_SIM_CHAR_COUNT];
	bool chr_missing[GW_SIM_CHAR_COUNT];
	unsigned int chr_flags[GW_SIM_CHAR_COUNT];	/* 0: the profile's */
	GDBusMethodInvocation *connect_inv;
	GSource *connect_src;
	GDBusMethodInvocation *pair_inv;
	GSource *pair_src;
	GCancellable *agent_cancel;
	bool pair_connected;	/* Pair made the link: a failure drops it */
	GPtrArray *held;	/* Connects never answered (connect-timeout) */
	uint64_t link_records;
	bool linkloss_armed;
	uint64_t linkloss_at;
	struct fb_counters c;
};

struct fb_client {
	GwFakeBus *fb;
	char *name;
	guint watch;
	bool discovering;
	bool has_filter;
	char **uuids;
	bool bredr_only;
	bool has_rssi;
	int16_t rssi;
	char *pattern;
	char *agent_path;
	char *agent_cap;
};

struct gw_fakebus {
	const struct gw_fakebus_options *o;
	FILE *record_log;	/* --record-log: every record made, a line each */
	GMainLoop *loop;
	int exit_code;
	char *bus_address;
	GDBusConnection *conn;
	guint own_id;
	bool name_owned;
	bool ready_printed;
	GDBusNodeInfo *node;
	GDBusInterfaceInfo *if_om, *if_am, *if_adapter, *if_device, *if_service,
		*if_char, *if_desc, *if_ctl;
	guint reg_om, reg_am, reg_adapter, reg_ctl;

	/* adapter */
	char *adapter_path;
	bool adapter_present;
	bool adapter_exported;
	bool powered;
	char *adapter_alias;
	bool discoverable, pairable;
	guint32 discoverable_timeout, pairable_timeout;
	bool discovering;

	GPtrArray *devs;	/* struct fb_dev *: wearables, then strangers */
	GHashTable *clients;	/* unique name -> struct fb_client */
	char *default_agent;	/* unique name of the default agent's client */
	GList *faults;		/* struct fault * */
	enum gatt_cache gatt_cache;
	unsigned int mtu;

	/* time */
	int64_t t0_mono;
	int64_t base_sim_us;
	double speed;
	GSource *tick_src;
	GSource *pump_src;
	int64_t last_save_mono;
	int64_t last_rssi_mono;
	uint64_t rng;
};

/* ---- Small helpers ---------------------------------------------------------------- */

static uint64_t fb_rand(GwFakeBus *fb)
{
	uint64_t x = (fb->rng += UINT64_C(0x9e3779b97f4a7c15));

	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static void reply_error(GDBusMethodInvocation *inv, const char *name,
			const char *msg)
{
	g_autofree char *full = g_strconcat(ERR, name, NULL);

	fb_debug("  -> error %s: %s", full, msg);
	g_dbus_method_invocation_return_dbus_error(inv, full, msg);
}

static void reply_ok(GDBusMethodInvocation *inv)
{
	g_dbus_method_invocation_return_value(inv, NULL);
}

static GSource *timeout_new(unsigned int ms, GSourceFunc fn, gpointer data)
{
	GSource *s = g_timeout_source_new(ms);

	g_source_set_callback(s, fn, data, NULL);
	g_source_attach(s, NULL);
	return s;
}

static void source_clear(GSource **s)
{
	if (*s) {
		g_source_destroy(*s);
		g_source_unref(*s);
		*s = NULL;
	}
}

static int64_t sim_now(const GwFakeBus *fb)
{
	return fb->base_sim_us +
	       (int64_t) ((double) (g_get_monotonic_time() - fb->t0_mono) * fb->speed);
}

static bool bus_up(const GwFakeBus *fb)
{
	return fb->conn && fb->name_owned;
}

static void emit_signal(GwFakeBus *fb, const char *path, const char *iface,
			const char *name, GVariant *args)
{
	g_autoptr(GError) error = NULL;

	g_variant_ref_sink(args);
	if (bus_up(fb) &&
	    !g_dbus_connection_emit_signal(fb->conn, NULL, path, iface, name,
					   args, &error))
		fb_warn("emit %s.%s on %s: %s", iface, name, path, error->message);
	g_variant_unref(args);
}

/* PropertiesChanged with one property (value NULL: invalidated). */
static void emit_prop(GwFakeBus *fb, const char *path, const char *iface,
		      const char *prop, GVariant *value)
{
	GVariantBuilder changed, inval;

	g_variant_builder_init(&changed, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_init(&inval, G_VARIANT_TYPE("as"));
	if (value)
		g_variant_builder_add(&changed, "{sv}", prop, value);
	else
		g_variant_builder_add(&inval, "s", prop);
	fb_debug("signal %s %s.%s", path, iface, prop);
	emit_signal(fb, path, IFACE_PROPS, "PropertiesChanged",
		    g_variant_new("(sa{sv}as)", iface, &changed, &inval));
}

static GVariant *bytes_variant(const uint8_t *p, size_t n)
{
	return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, p, n, 1);
}

static GVariant *props_lookup(GVariant *dict, const char *prop, GError **error)
{
	GVariant *v = g_variant_lookup_value(dict, prop, NULL);

	if (!v)
		g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
			    "No such property '%s'", prop);
	return v;
}

static struct fb_dev *dev_by_address(GwFakeBus *fb, const char *addr)
{
	for (guint i = 0; i < fb->devs->len; i++) {
		struct fb_dev *d = fb->devs->pdata[i];

		if (g_ascii_strcasecmp(d->address, addr) == 0)
			return d;
	}
	return NULL;
}

static bool dev_in_range(const struct fb_dev *d)
{
	return d->stranger || gw_sim_in_range(d->sim);
}

/* ---- Faults -------------------------------------------------------------------------- */

static void fault_free(struct fault *f)
{
	if (!f)
		return;
	g_free(f->device);
	g_free(f->message);
	g_free(f->malformed_kind);
	g_free(f);
}

static bool fault_matches(const struct fault *f, enum fault_kind k,
			  const struct fb_dev *d)
{
	return f->kind == k &&
	       (!f->device || (d && g_ascii_strcasecmp(f->device, d->address) == 0));
}

/* The first active fault of kind k for d, without consuming it. */
static struct fault *fault_peek(GwFakeBus *fb, enum fault_kind k,
				const struct fb_dev *d)
{
	for (GList *l = fb->faults; l; l = l->next)
		if (fault_matches(l->data, k, d))
			return l->data;
	return NULL;
}

/* Consumes one firing of f (removes it when its count runs out). */
static void fault_fire(GwFakeBus *fb, struct fault *f)
{
	if (f->count == 0)
		return;
	if (--f->count == 0) {
		fb->faults = g_list_remove(fb->faults, f);
		fault_free(f);
	}
}

/* Takes a firing of kind k for d: true (and *ret copied, if non-NULL)
 * if one was active. */
static bool fault_take(GwFakeBus *fb, enum fault_kind k, const struct fb_dev *d,
		       struct fault *ret)
{
	struct fault *f = fault_peek(fb, k, d);

	if (!f)
		return false;
	if (ret) {
		*ret = *f;
		ret->device = ret->message = ret->malformed_kind = NULL;
	}
	fb_info("fault %s fires on %s", fault_names[k], d ? d->address : "adapter");
	fault_fire(fb, f);
	return true;
}

/* ---- Object paths and properties ---------------------------------------------------- */

static const char *const flag_names[] = { "read", "write", "write-without-response",
					  "notify", "indicate" };

static GVariant *flags_variant(unsigned int flags)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("as"));
	if (flags & GW_SIM_PROP_READ)
		g_variant_builder_add(&b, "s", "read");
	if (flags & GW_SIM_PROP_WRITE_NO_RSP)
		g_variant_builder_add(&b, "s", "write-without-response");
	if (flags & GW_SIM_PROP_WRITE)
		g_variant_builder_add(&b, "s", "write");
	if (flags & GW_SIM_PROP_NOTIFY)
		g_variant_builder_add(&b, "s", "notify");
	if (flags & GW_SIM_PROP_INDICATE)
		g_variant_builder_add(&b, "s", "indicate");
	return g_variant_builder_end(&b);
}

/* "read+notify" -> props; false on an unknown word. */
static bool parse_flags(const char *s, unsigned int *ret)
{
	g_auto(GStrv) w = g_strsplit_set(s, "+,", -1);
	unsigned int f = 0;

	for (char **p = w; *p; p++) {
		bool ok = false;

		for (size_t i = 0; i < ARRAY_SIZE(flag_names); i++) {
			if (strcmp(*p, flag_names[i]) == 0) {
				static const unsigned int bits[] = {
					GW_SIM_PROP_READ, GW_SIM_PROP_WRITE,
					GW_SIM_PROP_WRITE_NO_RSP, GW_SIM_PROP_NOTIFY,
					GW_SIM_PROP_INDICATE,
				};
				f |= bits[i];
				ok = true;
			}
		}
		if (!ok && **p)
			return false;
	}
	*ret = f;
	return true;
}

static unsigned int chr_wanted_flags(const struct fb_dev *d, enum gw_sim_char ch)
{
	return d->chr_flags[ch] ? d->chr_flags[ch] : gw_sim_char_props(ch);
}

static GVariant *adapter_props(GwFakeBus *fb)
{
	GVariantBuilder b;
	const char *roles[] = { "central", "peripheral", NULL };

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&b, "{sv}", "Address",
			      g_variant_new_string(fb->o->adapter_address ? fb->o->adapter_address :
						   "00:1A:7D:DA:71:13"));
	g_variant_builder_add(&b, "{sv}", "AddressType", g_variant_new_string("public"));
	g_variant_builder_add(&b, "{sv}", "Name", g_variant_new_string("rehablink-fake"));
	g_variant_builder_add(&b, "{sv}", "Alias",
			      g_variant_new_string(fb->adapter_alias ? fb->adapter_alias :
							       "rehablink-fake"));
	g_variant_builder_add(&b, "{sv}", "Class", g_variant_new_uint32(0));
	g_variant_builder_add(&b, "{sv}", "Powered", g_variant_new_boolean(fb->powered));
	g_variant_builder_add(&b, "{sv}", "PowerState",
			      g_variant_new_string(fb->powered ? "on" : "off"));
	g_variant_builder_add(&b, "{sv}", "Discoverable", g_variant_new_boolean(fb->discoverable));
	g_variant_builder_add(&b, "{sv}", "DiscoverableTimeout",
			      g_variant_new_uint32(fb->discoverable_timeout));
	g_variant_builder_add(&b, "{sv}", "Pairable", g_variant_new_boolean(fb->pairable));
	g_variant_builder_add(&b, "{sv}", "PairableTimeout",
			      g_variant_new_uint32(fb->pairable_timeout));
	g_variant_builder_add(&b, "{sv}", "Discovering", g_variant_new_boolean(fb->discovering));
	g_variant_builder_add(&b, "{sv}", "UUIDs", g_variant_new_strv(NULL, 0));
	g_variant_builder_add(&b, "{sv}", "Modalias", g_variant_new_string("usb:v1D6Bp0246d0542"));
	g_variant_builder_add(&b, "{sv}", "Roles", g_variant_new_strv(roles, -1));
	return g_variant_builder_end(&b);
}

static GVariant *device_uuids(const struct fb_dev *d)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("as"));
	if (d->uuids_resolved && !d->stranger) {
		for (unsigned int s = 0; s < GW_SIM_SERVICE_COUNT; s++)
			g_variant_builder_add(&b, "s",
					      gw_sim_service_uuid((enum gw_sim_service) s));
	} else {
		for (char **u = d->adv_uuids; u && *u; u++)
			g_variant_builder_add(&b, "s", *u);
	}
	return g_variant_builder_end(&b);
}

static GVariant *device_props(struct fb_dev *d)
{
	GVariantBuilder b;
	static const uint8_t adv_flags[] = { 0x06 };

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&b, "{sv}", "Address", g_variant_new_string(d->address));
	g_variant_builder_add(&b, "{sv}", "AddressType",
			      g_variant_new_string(d->random_address ? "random" : "public"));
	g_variant_builder_add(&b, "{sv}", "Name", g_variant_new_string(d->name));
	g_variant_builder_add(&b, "{sv}", "Alias",
			      g_variant_new_string(d->alias ? d->alias : d->name));
	g_variant_builder_add(&b, "{sv}", "Appearance",
			      g_variant_new_uint16(d->stranger ? 0x0340 : 0x0540));
	g_variant_builder_add(&b, "{sv}", "Icon",
			      g_variant_new_string(d->stranger ? "unknown" : "input-tablet"));
	g_variant_builder_add(&b, "{sv}", "Paired", g_variant_new_boolean(d->paired));
	g_variant_builder_add(&b, "{sv}", "Bonded", g_variant_new_boolean(d->bonded));
	g_variant_builder_add(&b, "{sv}", "Trusted", g_variant_new_boolean(d->trusted));
	g_variant_builder_add(&b, "{sv}", "Blocked", g_variant_new_boolean(d->blocked));
	g_variant_builder_add(&b, "{sv}", "LegacyPairing", g_variant_new_boolean(FALSE));
	if (d->seen)
		g_variant_builder_add(&b, "{sv}", "RSSI", g_variant_new_int16(d->rssi));
	g_variant_builder_add(&b, "{sv}", "Connected", g_variant_new_boolean(d->connected));
	g_variant_builder_add(&b, "{sv}", "UUIDs", device_uuids(d));
	g_variant_builder_add(&b, "{sv}", "Adapter",
			      g_variant_new_object_path(d->fb->adapter_path));
	g_variant_builder_add(&b, "{sv}", "ServicesResolved", g_variant_new_boolean(d->resolved));
	g_variant_builder_add(&b, "{sv}", "AdvertisingFlags",
			      bytes_variant(adv_flags, sizeof(adv_flags)));
	return g_variant_builder_end(&b);
}

static GVariant *service_props(struct fb_svc *s)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&b, "{sv}", "UUID", g_variant_new_string(gw_sim_service_uuid(s->s)));
	g_variant_builder_add(&b, "{sv}", "Device", g_variant_new_object_path(s->dev->path));
	g_variant_builder_add(&b, "{sv}", "Primary", g_variant_new_boolean(TRUE));
	g_variant_builder_add(&b, "{sv}", "Includes", g_variant_new_objv(NULL, 0));
	return g_variant_builder_end(&b);
}

static GVariant *char_props(struct fb_chr *c)
{
	GVariantBuilder b;
	const struct fb_svc *s = &c->dev->svcs[gw_sim_char_service(c->ch)];

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&b, "{sv}", "UUID", g_variant_new_string(gw_sim_char_uuid(c->ch)));
	g_variant_builder_add(&b, "{sv}", "Service", g_variant_new_object_path(s->path));
	g_variant_builder_add(&b, "{sv}", "Value", bytes_variant(c->value->data, c->value->len));
	if (c->flags & (GW_SIM_PROP_NOTIFY | GW_SIM_PROP_INDICATE))
		g_variant_builder_add(&b, "{sv}", "Notifying",
				      g_variant_new_boolean(g_hash_table_size(c->sessions) > 0));
	g_variant_builder_add(&b, "{sv}", "Flags", flags_variant(c->flags));
	g_variant_builder_add(&b, "{sv}", "MTU", g_variant_new_uint16((guint16) c->dev->fb->mtu));
	return g_variant_builder_end(&b);
}

static void ccc_value(const struct fb_chr *c, uint8_t v[2])
{
	bool on = g_hash_table_size(c->sessions) > 0;

	v[0] = on ? ((c->flags & GW_SIM_PROP_NOTIFY) ? 1 : 2) : 0;
	v[1] = 0;
}

static GVariant *desc_props(struct fb_chr *c)
{
	GVariantBuilder b;
	uint8_t v[2];

	ccc_value(c, v);
	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&b, "{sv}", "UUID", g_variant_new_string(UUID_CCC));
	g_variant_builder_add(&b, "{sv}", "Characteristic", g_variant_new_object_path(c->path));
	g_variant_builder_add(&b, "{sv}", "Value", bytes_variant(v, 2));
	return g_variant_builder_end(&b);
}

static bool chr_has_ccc(const struct fb_chr *c)
{
	return c->flags & (GW_SIM_PROP_NOTIFY | GW_SIM_PROP_INDICATE);
}

/* {iface: props} of one object, with the two standard interfaces first as
 * bluetoothd lists them. */
static GVariant *ifaces_dict(const char *iface, GVariant *props)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sa{sv}}"));
	g_variant_builder_add(&b, "{s@a{sv}}", IFACE_INTROSPECTABLE,
			      g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0));
	g_variant_builder_add(&b, "{s@a{sv}}", iface, props);
	g_variant_builder_add(&b, "{s@a{sv}}", IFACE_PROPS,
			      g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0));
	return g_variant_builder_end(&b);
}

static void emit_added(GwFakeBus *fb, const char *path, const char *iface,
		       GVariant *props)
{
	fb_debug("InterfacesAdded %s %s", path, iface);
	emit_signal(fb, "/", IFACE_OM, "InterfacesAdded",
		    g_variant_new("(o@a{sa{sv}})", path, ifaces_dict(iface, props)));
}

static void emit_removed(GwFakeBus *fb, const char *path, const char *iface)
{
	const char *ifaces[] = { IFACE_INTROSPECTABLE, iface, IFACE_PROPS, NULL };

	fb_debug("InterfacesRemoved %s %s", path, iface);
	emit_signal(fb, "/", IFACE_OM, "InterfacesRemoved",
		    g_variant_new("(o^as)", path, ifaces));
}

/* ---- Object registration ------------------------------------------------------------ */

static void om_method(GDBusConnection *, const char *, const char *, const char *,
		      const char *, GVariant *, GDBusMethodInvocation *, gpointer);
static void am_method(GDBusConnection *, const char *, const char *, const char *,
		      const char *, GVariant *, GDBusMethodInvocation *, gpointer);
static void adapter_method(GDBusConnection *, const char *, const char *, const char *,
			   const char *, GVariant *, GDBusMethodInvocation *, gpointer);
static GVariant *adapter_get(GDBusConnection *, const char *, const char *, const char *,
			     const char *, GError **, gpointer);
static gboolean adapter_set(GDBusConnection *, const char *, const char *, const char *,
			    const char *, GVariant *, GError **, gpointer);
static void device_method(GDBusConnection *, const char *, const char *, const char *,
			  const char *, GVariant *, GDBusMethodInvocation *, gpointer);
static GVariant *device_get(GDBusConnection *, const char *, const char *, const char *,
			    const char *, GError **, gpointer);
static gboolean device_set(GDBusConnection *, const char *, const char *, const char *,
			   const char *, GVariant *, GError **, gpointer);
static GVariant *service_get(GDBusConnection *, const char *, const char *, const char *,
			     const char *, GError **, gpointer);
static void char_method(GDBusConnection *, const char *, const char *, const char *,
			const char *, GVariant *, GDBusMethodInvocation *, gpointer);
static GVariant *char_get(GDBusConnection *, const char *, const char *, const char *,
			  const char *, GError **, gpointer);
static void desc_method(GDBusConnection *, const char *, const char *, const char *,
			const char *, GVariant *, GDBusMethodInvocation *, gpointer);
static GVariant *desc_get(GDBusConnection *, const char *, const char *, const char *,
			  const char *, GError **, gpointer);
static void ctl_method(GDBusConnection *, const char *, const char *, const char *,
		       const char *, GVariant *, GDBusMethodInvocation *, gpointer);

static const GDBusInterfaceVTable om_vtable = { .method_call = om_method };
static const GDBusInterfaceVTable am_vtable = { .method_call = am_method };
static const GDBusInterfaceVTable adapter_vtable = {
	.method_call = adapter_method, .get_property = adapter_get, .set_property = adapter_set,
};
static const GDBusInterfaceVTable device_vtable = {
	.method_call = device_method, .get_property = device_get, .set_property = device_set,
};
static const GDBusInterfaceVTable service_vtable = { .get_property = service_get };
static const GDBusInterfaceVTable char_vtable = {
	.method_call = char_method, .get_property = char_get,
};
static const GDBusInterfaceVTable desc_vtable = {
	.method_call = desc_method, .get_property = desc_get,
};
static const GDBusInterfaceVTable ctl_vtable = { .method_call = ctl_method };

static guint reg(GwFakeBus *fb, const char *path, GDBusInterfaceInfo *info,
		 const GDBusInterfaceVTable *vt, gpointer data)
{
	g_autoptr(GError) error = NULL;
	guint id;

	if (!fb->conn)
		return 0;
	id = g_dbus_connection_register_object(fb->conn, path, info, vt, data,
					       NULL, &error);
	if (!id)
		fb_warn("register %s %s: %s", path, info->name, error->message);
	return id;
}

static void unreg(GwFakeBus *fb, guint *id)
{
	if (*id && fb->conn)
		g_dbus_connection_unregister_object(fb->conn, *id);
	*id = 0;
}

static void chr_export(struct fb_chr *c)
{
	GwFakeBus *fb = c->dev->fb;

	if (c->exported)
		return;
	c->flags = chr_wanted_flags(c->dev, c->ch);
	c->exported = true;
	c->reg_id = reg(fb, c->path, fb->if_char, &char_vtable, c);
	emit_added(fb, c->path, IFACE_CHAR, char_props(c));
	if (chr_has_ccc(c)) {
		c->desc_reg_id = reg(fb, c->desc_path, fb->if_desc, &desc_vtable, c);
		emit_added(fb, c->desc_path, IFACE_DESC, desc_props(c));
	}
}

/* Removes the characteristic object; its notification sessions end. */
static void chr_unexport(struct fb_chr *c, bool signal)
{
	GwFakeBus *fb = c->dev->fb;

	if (!c->exported)
		return;
	if (c->desc_reg_id || (signal && chr_has_ccc(c))) {
		unreg(fb, &c->desc_reg_id);
		if (signal)
			emit_removed(fb, c->desc_path, IFACE_DESC);
	}
	unreg(fb, &c->reg_id);
	if (signal)
		emit_removed(fb, c->path, IFACE_CHAR);
	c->exported = false;
	g_hash_table_remove_all(c->sessions);
	if (c->dev->sim)
		gw_sim_set_notify(c->dev->sim, c->ch, false);
}

/* Makes the exported GATT objects match the wearable's layout now. */
static void gatt_sync(struct fb_dev *d)
{
	GwFakeBus *fb = d->fb;

	if (d->stranger)
		return;
	for (unsigned int s = 0; s < GW_SIM_SERVICE_COUNT; s++) {
		struct fb_svc *sv = &d->svcs[s];

		if (sv->exported)
			continue;
		sv->exported = true;
		sv->reg_id = reg(fb, sv->path, fb->if_service, &service_vtable, sv);
		emit_added(fb, sv->path, IFACE_SERVICE, service_props(sv));
	}
	for (unsigned int i = 0; i < GW_SIM_CHAR_COUNT; i++) {
		struct fb_chr *c = &d->chrs[i];
		bool want = !d->chr_missing[i];

		if (c->exported && (!want || c->flags != chr_wanted_flags(d, c->ch)))
			chr_unexport(c, true);
		if (want && !c->exported)
			chr_export(c);
	}
	d->gatt_exported = true;
}

static void gatt_unexport(struct fb_dev *d, bool signal)
{
	if (!d->gatt_exported)
		return;
	for (int i = GW_SIM_CHAR_COUNT - 1; i >= 0; i--)
		chr_unexport(&d->chrs[i], signal);
	for (int s = GW_SIM_SERVICE_COUNT - 1; s >= 0; s--) {
		struct fb_svc *sv = &d->svcs[s];

		if (!sv->exported)
			continue;
		unreg(d->fb, &sv->reg_id);
		if (signal)
			emit_removed(d->fb, sv->path, IFACE_SERVICE);
		sv->exported = false;
	}
	d->gatt_exported = false;
}

static void device_export(struct fb_dev *d)
{
	GwFakeBus *fb = d->fb;

	if (d->exported || !fb->adapter_exported)
		return;
	d->exported = true;
	d->reg_id = reg(fb, d->path, fb->if_device, &device_vtable, d);
	emit_added(fb, d->path, IFACE_DEVICE, device_props(d));
	fb_info("device %s appeared", d->address);
}

static void device_unexport(struct fb_dev *d, bool signal)
{
	if (!d->exported)
		return;
	gatt_unexport(d, signal);
	unreg(d->fb, &d->reg_id);
	if (signal)
		emit_removed(d->fb, d->path, IFACE_DEVICE);
	d->exported = false;
	d->seen = false;
	d->uuids_resolved = false;
	fb_info("device %s removed", d->address);
}

static void dev_prop(struct fb_dev *d, const char *prop, GVariant *v)
{
	if (d->exported)
		emit_prop(d->fb, d->path, IFACE_DEVICE, prop, v);
	else if (v)
		g_variant_unref(g_variant_ref_sink(v));
}

static void adapter_prop(GwFakeBus *fb, const char *prop, GVariant *v)
{
	if (fb->adapter_exported)
		emit_prop(fb, fb->adapter_path, IFACE_ADAPTER, prop, v);
	else if (v)
		g_variant_unref(g_variant_ref_sink(v));
}

/* ---- Links ---------------------------------------------------------------------------- */

static bool keep_gatt(const struct fb_dev *d)
{
	switch (d->fb->gatt_cache) {
	case GATT_CACHE_ALWAYS:
		return true;
	case GATT_CACHE_YES:
		return d->paired;
	case GATT_CACHE_NO:
		return false;
	}
	return true;
}

static void set_paired(struct fb_dev *d, bool on)
{
	if (d->paired != on) {
		d->paired = on;
		dev_prop(d, "Paired", g_variant_new_boolean(on));
	}
	if (d->bonded != on) {
		d->bonded = on;
		dev_prop(d, "Bonded", g_variant_new_boolean(on));
	}
	if (on)
		d->temporary = false;
}

static void finish_connect(struct fb_dev *d, const char *err, const char *msg)
{
	GDBusMethodInvocation *inv = g_steal_pointer(&d->connect_inv);

	if (!inv)
		return;
	if (err) {
		reply_error(inv, err, msg);
	} else {
		d->c.connects_ok++;
		reply_ok(inv);
	}
}

static void link_down(struct fb_dev *d, const char *why);

static void finish_pair(struct fb_dev *d, const char *err, const char *msg)
{
	GDBusMethodInvocation *inv = g_steal_pointer(&d->pair_inv);
	bool drop = err && d->pair_connected;

	source_clear(&d->pair_src);
	if (d->agent_cancel) {
		g_cancellable_cancel(d->agent_cancel);
		g_clear_object(&d->agent_cancel);
	}
	d->pair_connected = false;
	if (inv) {
		if (err)
			reply_error(inv, err, msg);
		else
			reply_ok(inv);
	}
	if (drop)
		link_down(d, "pairing failed");
}

/*
 * The link is down (Disconnect, link loss, power off, out of range, a
 * wearable reboot): ServicesResolved false, Connected false, then the
 * GATT objects go unless the cache keeps them.
 */
static void link_down(struct fb_dev *d, const char *why)
{
	bool was = d->connected;

	source_clear(&d->connect_src);
	finish_connect(d, "Failed", "le-connection-abort-by-local");
	d->pair_connected = false;	/* we are dropping it already */
	finish_pair(d, "AuthenticationCanceled", "Authentication Canceled");
	d->linkloss_armed = false;
	if (d->sim)
		gw_sim_disconnect(d->sim);
	if (!was)
		return;
	fb_info("device %s: link down (%s)", d->address, why);
	d->c.disconnects++;
	if (d->resolved) {
		d->resolved = false;
		dev_prop(d, "ServicesResolved", g_variant_new_boolean(FALSE));
	}
	d->connected = false;
	dev_prop(d, "Connected", g_variant_new_boolean(FALSE));
	if (!keep_gatt(d))
		gatt_unexport(d, true);
}

static void arm_link_loss(struct fb_dev *d)
{
	struct fault *f = fault_peek(d->fb, FAULT_LINK_LOSS, d);

	d->linkloss_armed = f != NULL;
	if (f)
		d->linkloss_at = d->link_records + f->after;
}

static void check_link_loss(struct fb_dev *d)
{
	struct fault *f;

	if (!d->linkloss_armed || !d->connected || d->link_records < d->linkloss_at)
		return;
	f = fault_peek(d->fb, FAULT_LINK_LOSS, d);
	if (f) {
		fb_info("fault link-loss fires on %s after %" PRIu64 " records",
			d->address, d->link_records);
		fault_fire(d->fb, f);
	}
	link_down(d, "link-loss fault");
}

static void resolve_done(struct fb_dev *d)
{
	gatt_sync(d);
	for (unsigned int i = 0; i < GW_SIM_CHAR_COUNT; i++) {
		struct fb_chr *c = &d->chrs[i];

		/* sessions kept by the cache are re-enabled, as BlueZ does */
		if (c->exported && g_hash_table_size(c->sessions) > 0)
			gw_sim_set_notify(d->sim, c->ch, true);
	}
	d->resolved = true;
	dev_prop(d, "ServicesResolved", g_variant_new_boolean(TRUE));
	if (!d->uuids_resolved) {
		d->uuids_resolved = true;
		dev_prop(d, "UUIDs", device_uuids(d));
	}
	arm_link_loss(d);
	finish_connect(d, NULL, NULL);
}

static gboolean resolve_cb(gpointer data)
{
	struct fb_dev *d = data;

	g_source_unref(g_steal_pointer(&d->connect_src));
	resolve_done(d);
	return G_SOURCE_REMOVE;
}

static void link_up(struct fb_dev *d)
{
	d->connected = true;
	d->temporary = false;
	d->link_records = 0;
	gw_sim_connect(d->sim, d->fb->mtu);
	dev_prop(d, "Connected", g_variant_new_boolean(TRUE));
	fb_info("device %s: connected", d->address);
}

static gboolean connected_cb(gpointer data)
{
	struct fb_dev *d = data;

	g_source_unref(g_steal_pointer(&d->connect_src));
	if (!dev_in_range(d)) {
		finish_connect(d, "Failed", "le-connection-abort-by-local");
		return G_SOURCE_REMOVE;
	}
	link_up(d);
	/*
	 * As bluetoothd 5.66 does (seen under ble-vm): with no GATT database
	 * cached yet, Connect is answered once the link is up and the services
	 * resolve afterwards; with the objects cached, after ServicesResolved.
	 */
	if (!d->gatt_exported)
		finish_connect(d, NULL, NULL);
	if (fault_take(d->fb, FAULT_SERVICES_UNRESOLVED, d, NULL))
		return G_SOURCE_REMOVE;	/* ServicesResolved never comes */
	d->connect_src = timeout_new((guint) d->fb->o->resolve_delay_ms, resolve_cb, d);
	return G_SOURCE_REMOVE;
}

static gboolean page_timeout_cb(gpointer data)
{
	struct fb_dev *d = data;

	g_source_unref(g_steal_pointer(&d->connect_src));
	finish_connect(d, "Failed", "le-connection-abort-by-local");
	return G_SOURCE_REMOVE;
}

struct abort_ctx {
	GwFakeBus *fb;
	char *address;
};

static gboolean abort_disconnect_cb(gpointer data)
{
	struct abort_ctx *a = data;
	struct fb_dev *d = dev_by_address(a->fb, a->address);

	if (d && d->connected && !d->resolved && !d->connect_inv)
		link_down(d, "connect-abort fault");
	g_free(a->address);
	g_free(a);
	return G_SOURCE_REMOVE;
}

static void device_connect(struct fb_dev *d, GDBusMethodInvocation *inv)
{
	GwFakeBus *fb = d->fb;
	struct fault f, *pf;

	d->c.connects++;
	if (!fb->powered)
		return reply_error(inv, "NotReady", "Resource Not Ready");
	if (d->connect_inv || d->pair_inv)
		return reply_error(inv, "InProgress", "In Progress");
	if (d->connected && d->resolved) {
		d->c.connects_ok++;
		return reply_ok(inv);
	}
	if (d->connected)
		return reply_error(inv, "InProgress", "In Progress");
	if (d->stranger) {
		d->connect_inv = inv;
		d->connect_src = timeout_new((guint) fb->o->page_timeout_ms,
					     page_timeout_cb, d);
		return;
	}
	if (fault_take(fb, FAULT_KEY_MISSING, d, NULL) ||
	    fault_take(fb, FAULT_CONNECT_AUTH, d, NULL))
		return reply_error(inv, "AuthenticationFailed", "Authentication Failed");
	if (fault_take(fb, FAULT_CONNECT_IN_PROGRESS, d, NULL))
		return reply_error(inv, "InProgress", "In Progress");
	if (fault_take(fb, FAULT_CONNECT_NOT_READY, d, NULL))
		return reply_error(inv, "NotReady", "Resource Not Ready");
	pf = fault_peek(fb, FAULT_CONNECT_FAILED, d);
	if (pf) {
		g_autofree char *msg = g_strdup(pf->message ? pf->message :
						"Software caused connection abort");

		fault_take(fb, FAULT_CONNECT_FAILED, d, NULL);
		return reply_error(inv, "Failed", msg);
	}
	if (fault_take(fb, FAULT_CONNECT_TIMEOUT, d, NULL)) {
		g_ptr_array_add(d->held, inv);	/* never answered */
		return;
	}
	if (fault_take(fb, FAULT_CONNECT_ABORT, d, &f)) {
		struct abort_ctx *a = g_new0(struct abort_ctx, 1);

		link_up(d);
		reply_error(inv, "Failed", "le-connection-abort-by-local");
		a->fb = fb;
		a->address = g_strdup(d->address);
		g_timeout_add(f.delay_ms, abort_disconnect_cb, a);
		return;
	}
	d->connect_inv = inv;
	if (!dev_in_range(d))
		d->connect_src = timeout_new((guint) fb->o->page_timeout_ms,
					     page_timeout_cb, d);
	else
		d->connect_src = timeout_new((guint) fb->o->connect_delay_ms,
					     connected_cb, d);
}

/* ---- Agents and pairing -------------------------------------------------------------- */

static struct fb_client *client_get(GwFakeBus *fb, const char *name);

static void pair_complete(struct fb_dev *d)
{
	set_paired(d, true);
	if (d->connected && !d->resolved && !d->connect_inv) {
		/* Pair connected the device: BlueZ resolves services too */
		resolve_done(d);
	}
	finish_pair(d, NULL, NULL);
}

static gboolean pair_done_cb(gpointer data)
{
	struct fb_dev *d = data;

	g_source_unref(g_steal_pointer(&d->pair_src));
	pair_complete(d);
	return G_SOURCE_REMOVE;
}

struct agent_call {
	GwFakeBus *fb;
	char *address;
};

static void agent_confirm_ready(GObject *src, GAsyncResult *res, gpointer data)
{
	struct agent_call *a = data;
	g_autoptr(GError) error = NULL;
	GVariant *r = g_dbus_connection_call_finish(G_DBUS_CONNECTION(src), res, &error);
	struct fb_dev *d;

	if (r)
		g_variant_unref(r);

	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		g_free(a->address);
		g_free(a);
		return;
	}
	d = dev_by_address(a->fb, a->address);
	g_free(a->address);
	g_free(a);
	if (!d || !d->pair_inv)
		return;
	g_clear_object(&d->agent_cancel);
	if (error) {
		g_autofree char *remote = g_dbus_error_get_remote_error(error);

		fb_info("agent refused pairing %s: %s", d->address, error->message);
		if (remote && g_str_has_suffix(remote, "Canceled"))
			finish_pair(d, "AuthenticationCanceled", "Authentication Canceled");
		else
			finish_pair(d, "AuthenticationRejected", "Authentication Rejected");
		return;
	}
	pair_complete(d);
}

static void device_pair(struct fb_dev *d, GDBusMethodInvocation *inv)
{
	GwFakeBus *fb = d->fb;
	const char *sender = g_dbus_method_invocation_get_sender(inv);
	struct fb_client *cl = NULL;

	d->c.pairs++;
	if (!fb->powered)
		return reply_error(inv, "NotReady", "Resource Not Ready");
	if (d->pair_inv)
		return reply_error(inv, "InProgress", "In Progress");
	if (d->paired)
		return reply_error(inv, "AlreadyExists", "Already Exists");
	if (!d->stranger && fault_peek(fb, FAULT_KEY_MISSING, d))
		return reply_error(inv, "AuthenticationFailed", "Authentication Failed");
	if (fault_take(fb, FAULT_PAIR_REJECT, d, NULL))
		return reply_error(inv, "AuthenticationRejected", "Authentication Rejected");
	if (d->stranger || !dev_in_range(d))
		return reply_error(inv, "ConnectionAttemptFailed", "Page Timeout");
	d->pair_inv = inv;
	if (!d->connected) {
		link_up(d);
		d->pair_connected = true;
	}
	if (sender && g_hash_table_contains(fb->clients, sender))
		cl = client_get(fb, sender);
	if ((!cl || !cl->agent_path) && fb->default_agent)
		cl = g_hash_table_lookup(fb->clients, fb->default_agent);
	if (cl && cl->agent_path && g_strcmp0(cl->agent_cap, "NoInputNoOutput") != 0) {
		struct agent_call *a = g_new0(struct agent_call, 1);

		a->fb = fb;
		a->address = g_strdup(d->address);
		d->agent_cancel = g_cancellable_new();
		g_dbus_connection_call(fb->conn, cl->name, cl->agent_path, IFACE_AGENT,
				       "RequestConfirmation",
				       g_variant_new("(ou)", d->path, 123456u), NULL,
				       G_DBUS_CALL_FLAGS_NONE, 30000, d->agent_cancel,
				       agent_confirm_ready, a);
		return;
	}
	d->pair_src = timeout_new(30, pair_done_cb, d);
}

/* Implicit pairing, as BlueZ raises the security level when the wearable
 * answers "insufficient authentication" on an encrypted characteristic. */
static void ensure_encrypted(struct fb_chr *c)
{
	if (gw_sim_char_service(c->ch) == GW_SIM_SERVICE_REHABLINK ||
	    c->ch == GW_SIM_CHAR_CURRENT_TIME)
		set_paired(c->dev, true);
}

/* ---- Clients (bus peers with state here) --------------------------------------------- */

static void client_free(struct fb_client *cl)
{
	if (!cl)
		return;
	if (cl->watch)
		g_bus_unwatch_name(cl->watch);
	g_free(cl->name);
	g_strfreev(cl->uuids);
	g_free(cl->pattern);
	g_free(cl->agent_path);
	g_free(cl->agent_cap);
	g_free(cl);
}

static void update_discovering(GwFakeBus *fb);

static void client_vanished(GDBusConnection *conn, const char *name, gpointer data)
{
	GwFakeBus *fb = data;

	(void) conn;
	fb_info("client %s left the bus", name);
	for (guint i = 0; i < fb->devs->len; i++) {
		struct fb_dev *d = fb->devs->pdata[i];

		for (unsigned int k = 0; k < GW_SIM_CHAR_COUNT; k++) {
			struct fb_chr *c = &d->chrs[k];

			if (!g_hash_table_remove(c->sessions, name) ||
			    g_hash_table_size(c->sessions) > 0)
				continue;
			if (c->exported)
				emit_prop(fb, c->path, IFACE_CHAR, "Notifying",
					  g_variant_new_boolean(FALSE));
			if (d->sim)
				gw_sim_set_notify(d->sim, c->ch, false);
		}
	}
	if (g_strcmp0(fb->default_agent, name) == 0)
		g_clear_pointer(&fb->default_agent, g_free);
	g_hash_table_remove(fb->clients, name);
	update_discovering(fb);
}

static struct fb_client *client_get(GwFakeBus *fb, const char *name)
{
	struct fb_client *cl = g_hash_table_lookup(fb->clients, name);

	if (cl)
		return cl;
	cl = g_new0(struct fb_client, 1);
	cl->fb = fb;
	cl->name = g_strdup(name);
	g_hash_table_insert(fb->clients, cl->name, cl);
	cl->watch = g_bus_watch_name_on_connection(fb->conn, name,
						   G_BUS_NAME_WATCHER_FLAGS_NONE,
						   NULL, client_vanished, fb, NULL);
	return cl;
}

/* ---- Discovery ------------------------------------------------------------------------ */

static bool filter_match(const struct fb_client *cl, const struct fb_dev *d)
{
	if (!cl->has_filter)
		return true;
	if (cl->bredr_only)
		return false;
	if (cl->has_rssi && d->rssi_base < cl->rssi)
		return false;
	if (cl->pattern && *cl->pattern &&
	    !g_str_has_prefix(d->address, cl->pattern) &&
	    !g_str_has_prefix(d->name, cl->pattern))
		return false;
	if (cl->uuids && cl->uuids[0]) {
		for (char **u = cl->uuids; *u; u++)
			for (char **a = d->adv_uuids; a && *a; a++)
				if (g_ascii_strcasecmp(*u, *a) == 0)
					return true;
		return false;
	}
	return true;
}

static bool dev_visible(GwFakeBus *fb, const struct fb_dev *d)
{
	GHashTableIter it;
	gpointer v;

	if (!fb->discovering || !fb->powered || !dev_in_range(d))
		return false;
	g_hash_table_iter_init(&it, fb->clients);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		const struct fb_client *cl = v;

		if (cl->discovering && filter_match(cl, d))
			return true;
	}
	return false;
}

/* Devices appear while discovered; RSSI follows what is seen. */
static void discovery_scan(GwFakeBus *fb, bool rssi_update)
{
	int64_t now = g_get_monotonic_time();

	for (guint i = 0; i < fb->devs->len; i++) {
		struct fb_dev *d = fb->devs->pdata[i];
		bool vis = fb->adapter_exported && dev_visible(fb, d);

		if (vis) {
			int16_t rssi = (int16_t) (d->rssi_base +
						  (int) (fb_rand(fb) % 9) - 4);

			d->last_seen_us = now;
			if (!d->exported) {
				d->temporary = !d->paired;
				d->rssi = rssi;
				d->seen = true;
				device_export(d);
			} else if (!d->seen || rssi_update) {
				d->seen = true;
				d->rssi = rssi;
				dev_prop(d, "RSSI", g_variant_new_int16(rssi));
			}
		} else if (d->seen && !d->connected) {
			d->seen = false;
			dev_prop(d, "RSSI", NULL);
		}
		if (d->exported && d->temporary && !d->connected && !d->paired &&
		    !d->trusted && !vis && fb->o->temporary_timeout_s > 0 &&
		    now - d->last_seen_us > (int64_t) fb->o->temporary_timeout_s *
						    G_USEC_PER_SEC)
			device_unexport(d, true);
	}
}

static void update_discovering(GwFakeBus *fb)
{
	GHashTableIter it;
	gpointer v;
	bool any = false;

	g_hash_table_iter_init(&it, fb->clients);
	while (g_hash_table_iter_next(&it, NULL, &v))
		any |= ((struct fb_client *) v)->discovering;
	any = any && fb->powered;
	if (any != fb->discovering) {
		fb->discovering = any;
		adapter_prop(fb, "Discovering", g_variant_new_boolean(any));
	}
	discovery_scan(fb, false);
}

/* ---- Adapter ------------------------------------------------------------------------ */

static void adapter_power(GwFakeBus *fb, bool on)
{
	if (fb->powered == on)
		return;
	fb_info("adapter powered %s", on ? "on" : "off");
	if (!on) {
		GHashTableIter it;
		gpointer v;

		for (guint i = 0; i < fb->devs->len; i++) {
			struct fb_dev *d = fb->devs->pdata[i];

			source_clear(&d->connect_src);
			link_down(d, "adapter powered off");
		}
		g_hash_table_iter_init(&it, fb->clients);
		while (g_hash_table_iter_next(&it, NULL, &v))
			((struct fb_client *) v)->discovering = false;
		fb->powered = false;
		update_discovering(fb);
		adapter_prop(fb, "PowerState", g_variant_new_string("off"));
		adapter_prop(fb, "Powered", g_variant_new_boolean(FALSE));
		return;
	}
	fb->powered = true;
	/* a power cycle clears a wedged controller */
	for (GList *l = fb->faults; l;) {
		struct fault *f = l->data;

		l = l->next;
		if (f->until_power_cycle) {
			fb->faults = g_list_remove(fb->faults, f);
			fault_free(f);
		}
	}
	adapter_prop(fb, "PowerState", g_variant_new_string("on"));
	adapter_prop(fb, "Powered", g_variant_new_boolean(TRUE));
}

static void adapter_export(GwFakeBus *fb)
{
	if (fb->adapter_exported || !fb->conn)
		return;
	fb->adapter_exported = true;
	fb->reg_adapter = reg(fb, fb->adapter_path, fb->if_adapter, &adapter_vtable, fb);
	emit_added(fb, fb->adapter_path, IFACE_ADAPTER, adapter_props(fb));
	for (guint i = 0; i < fb->devs->len; i++) {
		struct fb_dev *d = fb->devs->pdata[i];

		if (d->paired)
			device_export(d);
	}
}

static void adapter_unexport(GwFakeBus *fb, bool signal)
{
	if (!fb->adapter_exported)
		return;
	for (guint i = 0; i < fb->devs->len; i++) {
		struct fb_dev *d = fb->devs->pdata[i];

		link_down(d, "adapter removed");
		device_unexport(d, signal);
	}
	unreg(fb, &fb->reg_adapter);
	if (signal)
		emit_removed(fb, fb->adapter_path, IFACE_ADAPTER);
	fb->adapter_exported = false;
}

/* ---- D-Bus handlers: ObjectManager, AgentManager1 ------------------------------------- */

static void om_add(GVariantBuilder *b, const char *path, const char *iface,
		   GVariant *props)
{
	g_variant_builder_add(b, "{o@a{sa{sv}}}", path, ifaces_dict(iface, props));
}

static void om_method(GDBusConnection *conn, const char *sender, const char *path,
		      const char *iface, const char *method, GVariant *params,
		      GDBusMethodInvocation *inv, gpointer data)
{
	GwFakeBus *fb = data;
	GVariantBuilder b;

	(void) conn; (void) sender; (void) path; (void) iface; (void) method; (void) params;
	g_variant_builder_init(&b, G_VARIANT_TYPE("a{oa{sa{sv}}}"));
	om_add(&b, "/org/bluez", IFACE_AGENT_MANAGER,
	       g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0));
	if (fb->adapter_exported)
		om_add(&b, fb->adapter_path, IFACE_ADAPTER, adapter_props(fb));
	for (guint i = 0; i < fb->devs->len; i++) {
		struct fb_dev *d = fb->devs->pdata[i];

		if (!d->exported)
			continue;
		om_add(&b, d->path, IFACE_DEVICE, device_props(d));
		for (unsigned int s = 0; s < GW_SIM_SERVICE_COUNT; s++)
			if (d->svcs[s].exported)
				om_add(&b, d->svcs[s].path, IFACE_SERVICE,
				       service_props(&d->svcs[s]));
		for (unsigned int k = 0; k < GW_SIM_CHAR_COUNT; k++) {
			struct fb_chr *c = &d->chrs[k];

			if (!c->exported)
				continue;
			om_add(&b, c->path, IFACE_CHAR, char_props(c));
			if (chr_has_ccc(c))
				om_add(&b, c->desc_path, IFACE_DESC, desc_props(c));
		}
	}
	g_dbus_method_invocation_return_value(inv, g_variant_new("(a{oa{sa{sv}}})", &b));
}

static bool valid_capability(const char *cap)
{
	static const char *const caps[] = { "", "DisplayOnly", "DisplayYesNo",
					    "KeyboardOnly", "NoInputNoOutput",
					    "KeyboardDisplay" };

	for (size_t i = 0; i < ARRAY_SIZE(caps); i++)
		if (strcmp(caps[i], cap) == 0)
			return true;
	return false;
}

static void am_method(GDBusConnection *conn, const char *sender, const char *path,
		      const char *iface, const char *method, GVariant *params,
		      GDBusMethodInvocation *inv, gpointer data)
{
	GwFakeBus *fb = data;
	struct fb_client *cl = g_hash_table_lookup(fb->clients, sender);
	const char *agent = NULL, *cap = NULL;

	(void) conn; (void) path; (void) iface;
	fb_debug("%s AgentManager1.%s", sender, method);
	if (strcmp(method, "RegisterAgent") == 0) {
		g_variant_get(params, "(&o&s)", &agent, &cap);
		if (!valid_capability(cap))
			return reply_error(inv, "InvalidArguments",
					   "Invalid arguments in method call");
		if (cl && cl->agent_path)
			return reply_error(inv, "AlreadyExists", "Already Exists");
		cl = client_get(fb, sender);
		cl->agent_path = g_strdup(agent);
		cl->agent_cap = g_strdup(*cap ? cap : "KeyboardDisplay");
		return reply_ok(inv);
	}
	g_variant_get(params, "(&o)", &agent);
	if (!cl || g_strcmp0(cl->agent_path, agent) != 0)
		return reply_error(inv, "DoesNotExist", "No agent registered");
	if (strcmp(method, "RequestDefaultAgent") == 0) {
		g_free(fb->default_agent);
		fb->default_agent = g_strdup(sender);
		return reply_ok(inv);
	}
	/* UnregisterAgent */
	g_clear_pointer(&cl->agent_path, g_free);
	g_clear_pointer(&cl->agent_cap, g_free);
	if (g_strcmp0(fb->default_agent, sender) == 0)
		g_clear_pointer(&fb->default_agent, g_free);
	reply_ok(inv);
}

/* ---- D-Bus handlers: Adapter1 ------------------------------------------------------------ */

static void adapter_set_filter(GwFakeBus *fb, struct fb_client *cl, GVariant *dict,
			       GDBusMethodInvocation *inv)
{
	GVariantIter it;
	const char *key;
	GVariant *v;
	g_auto(GStrv) uuids = NULL;
	g_autofree char *pattern = NULL;
	bool bredr = false, has_rssi = false;
	int16_t rssi = 0;

	g_variant_iter_init(&it, dict);
	while (g_variant_iter_next(&it, "{&sv}", &key, &v)) {
		g_autoptr(GVariant) val = v;

		if (strcmp(key, "UUIDs") == 0 && g_variant_is_of_type(val, G_VARIANT_TYPE("as"))) {
			g_strfreev(uuids);
			uuids = g_variant_dup_strv(val, NULL);
		} else if (strcmp(key, "Transport") == 0 &&
			   g_variant_is_of_type(val, G_VARIANT_TYPE_STRING)) {
			const char *t = g_variant_get_string(val, NULL);

			if (strcmp(t, "bredr") == 0)
				bredr = true;
			else if (strcmp(t, "le") != 0 && strcmp(t, "auto") != 0)
				return reply_error(inv, "InvalidArguments",
						   "Invalid arguments in method call");
		} else if (strcmp(key, "RSSI") == 0 &&
			   g_variant_is_of_type(val, G_VARIANT_TYPE_INT16)) {
			has_rssi = true;
			rssi = g_variant_get_int16(val);
		} else if (strcmp(key, "Pattern") == 0 &&
			   g_variant_is_of_type(val, G_VARIANT_TYPE_STRING)) {
			g_free(pattern);
			pattern = g_variant_dup_string(val, NULL);
		} else if ((strcmp(key, "Pathloss") == 0 &&
			    g_variant_is_of_type(val, G_VARIANT_TYPE_UINT16)) ||
			   ((strcmp(key, "DuplicateData") == 0 ||
			     strcmp(key, "Discoverable") == 0) &&
			    g_variant_is_of_type(val, G_VARIANT_TYPE_BOOLEAN))) {
			/* accepted, no effect here */
		} else {
			return reply_error(inv, "InvalidArguments",
					   "Invalid arguments in method call");
		}
	}
	g_strfreev(cl->uuids);
	g_free(cl->pattern);
	cl->has_filter = g_variant_n_children(dict) > 0;
	cl->uuids = g_steal_pointer(&uuids);
	cl->pattern = g_steal_pointer(&pattern);
	cl->bredr_only = bredr;
	cl->has_rssi = has_rssi;
	cl->rssi = rssi;
	reply_ok(inv);
	discovery_scan(fb, false);
}

static void adapter_method(GDBusConnection *conn, const char *sender, const char *path,
			   const char *iface, const char *method, GVariant *params,
			   GDBusMethodInvocation *inv, gpointer data)
{
	GwFakeBus *fb = data;
	struct fb_client *cl = g_hash_table_lookup(fb->clients, sender);

	(void) conn; (void) path; (void) iface;
	fb_debug("%s Adapter1.%s", sender, method);
	if (strcmp(method, "StartDiscovery") == 0) {
		if (!fb->powered)
			return reply_error(inv, "NotReady", "Resource Not Ready");
		cl = client_get(fb, sender);
		if (cl->discovering)
			return reply_error(inv, "InProgress", "Operation already in progress");
		cl->discovering = true;
		reply_ok(inv);
		update_discovering(fb);
		return;
	}
	if (strcmp(method, "StopDiscovery") == 0) {
		if (!fb->powered)
			return reply_error(inv, "NotReady", "Resource Not Ready");
		if (!cl || !cl->discovering)
			return reply_error(inv, "Failed", "No discovery started");
		cl->discovering = false;
		reply_ok(inv);
		update_discovering(fb);
		return;
	}
	if (strcmp(method, "SetDiscoveryFilter") == 0) {
		g_autoptr(GVariant) dict = g_variant_get_child_value(params, 0);

		if (!fb->powered)
			return reply_error(inv, "NotReady", "Resource Not Ready");
		adapter_set_filter(fb, client_get(fb, sender), dict, inv);
		return;
	}
	if (strcmp(method, "GetDiscoveryFilters") == 0) {
		const char *f[] = { "UUIDs", "RSSI", "Pathloss", "Transport",
				    "DuplicateData", "Discoverable", "Pattern", NULL };

		g_dbus_method_invocation_return_value(inv, g_variant_new("(^as)", f));
		return;
	}
	if (strcmp(method, "RemoveDevice") == 0) {
		const char *dpath;

		g_variant_get(params, "(&o)", &dpath);
		for (guint i = 0; i < fb->devs->len; i++) {
			struct fb_dev *d = fb->devs->pdata[i];

			if (!d->exported || strcmp(d->path, dpath) != 0)
				continue;
			link_down(d, "RemoveDevice");
			set_paired(d, false);
			d->trusted = false;
			device_unexport(d, true);
			return reply_ok(inv);
		}
		return reply_error(inv, "DoesNotExist", "Does Not Exist");
	}
	g_dbus_method_invocation_return_dbus_error(inv, "org.freedesktop.DBus.Error.UnknownMethod",
						   "Unknown method");
}

static GVariant *adapter_get(GDBusConnection *conn, const char *sender, const char *path,
			     const char *iface, const char *prop, GError **error,
			     gpointer data)
{
	g_autoptr(GVariant) all = adapter_props(data);

	(void) conn; (void) sender; (void) path; (void) iface;
	g_variant_ref_sink(all);
	return props_lookup(all, prop, error);
}

static gboolean adapter_set(GDBusConnection *conn, const char *sender, const char *path,
			    const char *iface, const char *prop, GVariant *value,
			    GError **error, gpointer data)
{
	GwFakeBus *fb = data;

	(void) conn; (void) path; (void) iface;
	fb_debug("%s Set Adapter1.%s", sender, prop);
	if (strcmp(prop, "Powered") == 0) {
		adapter_power(fb, g_variant_get_boolean(value));
	} else if (strcmp(prop, "Alias") == 0) {
		g_free(fb->adapter_alias);
		fb->adapter_alias = g_variant_dup_string(value, NULL);
		adapter_prop(fb, "Alias", g_variant_new_string(fb->adapter_alias));
	} else if (strcmp(prop, "Discoverable") == 0 || strcmp(prop, "Pairable") == 0) {
		bool on = g_variant_get_boolean(value);

		if (!fb->powered) {
			g_dbus_error_set_dbus_error(error, ERR "NotReady", "Resource Not Ready", NULL);
			return FALSE;
		}
		if (prop[0] == 'D')
			fb->discoverable = on;
		else
			fb->pairable = on;
		adapter_prop(fb, prop, g_variant_new_boolean(on));
	} else if (strcmp(prop, "DiscoverableTimeout") == 0 ||
		   strcmp(prop, "PairableTimeout") == 0) {
		guint32 v = g_variant_get_uint32(value);

		if (prop[0] == 'D')
			fb->discoverable_timeout = v;
		else
			fb->pairable_timeout = v;
		adapter_prop(fb, prop, g_variant_new_uint32(v));
	} else {
		g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_PROPERTY_READ_ONLY,
			    "Property '%s' is not writable", prop);
		return FALSE;
	}
	return TRUE;
}

/* ---- D-Bus handlers: Device1 ------------------------------------------------------------ */

static void device_method(GDBusConnection *conn, const char *sender, const char *path,
			  const char *iface, const char *method, GVariant *params,
			  GDBusMethodInvocation *inv, gpointer data)
{
	struct fb_dev *d = data;

	(void) conn; (void) path; (void) iface; (void) params;
	fb_debug("%s Device1.%s %s", sender, method, d->address);
	if (strcmp(method, "Connect") == 0)
		return device_connect(d, inv);
	if (strcmp(method, "Disconnect") == 0) {
		if (!d->connected && (d->connect_inv || d->pair_inv)) {
			link_down(d, "Disconnect during Connect");
			return reply_ok(inv);
		}
		if (!d->connected)
			return reply_error(inv, "NotConnected", "Not Connected");
		link_down(d, "Disconnect");
		return reply_ok(inv);
	}
	if (strcmp(method, "Pair") == 0)
		return device_pair(d, inv);
	if (strcmp(method, "CancelPairing") == 0) {
		if (!d->pair_inv)
			return reply_error(inv, "DoesNotExist", "Does Not Exist");
		finish_pair(d, "AuthenticationCanceled", "Authentication Canceled");
		return reply_ok(inv);
	}
	/* ConnectProfile, DisconnectProfile */
	reply_error(inv, "NotSupported", "Operation is not supported");
}

static GVariant *device_get(GDBusConnection *conn, const char *sender, const char *path,
			    const char *iface, const char *prop, GError **error,
			    gpointer data)
{
	g_autoptr(GVariant) all = device_props(data);

	(void) conn; (void) sender; (void) path; (void) iface;
	g_variant_ref_sink(all);
	return props_lookup(all, prop, error);
}

static gboolean device_set(GDBusConnection *conn, const char *sender, const char *path,
			   const char *iface, const char *prop, GVariant *value,
			   GError **error, gpointer data)
{
	struct fb_dev *d = data;

	(void) conn; (void) sender; (void) path; (void) iface;
	if (strcmp(prop, "Trusted") == 0) {
		d->trusted = g_variant_get_boolean(value);
		if (d->trusted)
			d->temporary = false;
		dev_prop(d, prop, g_variant_new_boolean(d->trusted));
	} else if (strcmp(prop, "Blocked") == 0) {
		d->blocked = g_variant_get_boolean(value);
		if (d->blocked)
			link_down(d, "blocked");
		dev_prop(d, prop, g_variant_new_boolean(d->blocked));
	} else if (strcmp(prop, "Alias") == 0) {
		const char *a = g_variant_get_string(value, NULL);

		g_free(d->alias);
		d->alias = *a ? g_strdup(a) : NULL;
		dev_prop(d, prop, g_variant_new_string(d->alias ? d->alias : d->name));
	} else {
		g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_PROPERTY_READ_ONLY,
			    "Property '%s' is not writable", prop);
		return FALSE;
	}
	return TRUE;
}

/* ---- D-Bus handlers: GATT ------------------------------------------------------------- */

static GVariant *service_get(GDBusConnection *conn, const char *sender, const char *path,
			     const char *iface, const char *prop, GError **error,
			     gpointer data)
{
	g_autoptr(GVariant) all = service_props(data);

	(void) conn; (void) sender; (void) path; (void) iface;
	g_variant_ref_sink(all);
	return props_lookup(all, prop, error);
}

static GVariant *char_get(GDBusConnection *conn, const char *sender, const char *path,
			  const char *iface, const char *prop, GError **error,
			  gpointer data)
{
	g_autoptr(GVariant) all = char_props(data);

	(void) conn; (void) sender; (void) path; (void) iface;
	g_variant_ref_sink(all);
	return props_lookup(all, prop, error);
}

static GVariant *desc_get(GDBusConnection *conn, const char *sender, const char *path,
			  const char *iface, const char *prop, GError **error,
			  gpointer data)
{
	g_autoptr(GVariant) all = desc_props(data);

	(void) conn; (void) sender; (void) path; (void) iface;
	g_variant_ref_sink(all);
	return props_lookup(all, prop, error);
}

static void reply_att_error(GDBusMethodInvocation *inv, int att)
{
	g_autofree char *msg = NULL;

	switch (att) {
	case GW_SIM_ATT_READ_NOT_PERMITTED:
		return reply_error(inv, "NotPermitted", "Read not permitted");
	case GW_SIM_ATT_WRITE_NOT_PERMITTED:
		return reply_error(inv, "NotPermitted", "Write not permitted");
	case GW_SIM_ATT_INVALID_OFFSET:
		return reply_error(inv, "InvalidArguments", "Invalid offset");
	case GW_SIM_ATT_INVALID_LENGTH:
		return reply_error(inv, "InvalidArguments", "Invalid Length");
	default:
		msg = g_strdup_printf("Operation failed with ATT error: 0x%02x", att);
		return reply_error(inv, "Failed", msg);
	}
}

static bool gatt_ready(struct fb_chr *c, GDBusMethodInvocation *inv)
{
	if (!c->dev->connected || !c->exported) {
		reply_error(inv, "Failed", "Not connected");
		return false;
	}
	return true;
}

static void chr_set_value(struct fb_chr *c, const uint8_t *p, size_t n)
{
	g_byte_array_set_size(c->value, 0);
	g_byte_array_append(c->value, p, (guint) n);
}

static void char_method(GDBusConnection *conn, const char *sender, const char *path,
			const char *iface, const char *method, GVariant *params,
			GDBusMethodInvocation *inv, gpointer data)
{
	struct fb_chr *c = data;
	struct fb_dev *d = c->dev;
	GwFakeBus *fb = d->fb;

	(void) conn; (void) path; (void) iface;
	fb_debug("%s GattCharacteristic1.%s %s %s", sender, method, d->address,
		 gw_sim_char_name(c->ch));
	if (strcmp(method, "ReadValue") == 0) {
		g_autoptr(GVariant) opts = g_variant_get_child_value(params, 0);
		uint8_t buf[WB_ATT_MAX_VALUE];
		size_t len = 0;
		guint16 offset = 0;
		int att;

		d->c.reads++;
		g_variant_lookup(opts, "offset", "q", &offset);
		if (!gatt_ready(c, inv))
			return;
		if (!(c->flags & GW_SIM_PROP_READ))
			return reply_att_error(inv, GW_SIM_ATT_READ_NOT_PERMITTED);
		ensure_encrypted(c);
		att = gw_sim_read(d->sim, c->ch, buf, sizeof(buf), &len);
		if (att)
			return reply_att_error(inv, att);
		if (offset > len)
			return reply_att_error(inv, GW_SIM_ATT_INVALID_OFFSET);
		if (offset == 0) {
			chr_set_value(c, buf, len);
			emit_prop(fb, c->path, IFACE_CHAR, "Value", bytes_variant(buf, len));
		}
		g_dbus_method_invocation_return_value(inv,
			g_variant_new("(@ay)", bytes_variant(buf + offset, len - offset)));
		return;
	}
	if (strcmp(method, "WriteValue") == 0) {
		g_autoptr(GVariant) val = g_variant_get_child_value(params, 0);
		g_autoptr(GVariant) opts = g_variant_get_child_value(params, 1);
		const char *type = NULL;
		gsize len;
		const uint8_t *p = g_variant_get_fixed_array(val, &len, 1);
		guint16 offset = 0;
		int att;

		d->c.writes++;
		g_variant_lookup(opts, "type", "&s", &type);
		g_variant_lookup(opts, "offset", "q", &offset);
		if (!gatt_ready(c, inv))
			return;
		if (type && strcmp(type, "command") == 0) {
			if (!(c->flags & GW_SIM_PROP_WRITE_NO_RSP))
				return reply_error(inv, "NotSupported", "Operation is not supported");
		} else if (!(c->flags & GW_SIM_PROP_WRITE)) {
			return reply_error(inv, "NotSupported", "Operation is not supported");
		}
		if (offset != 0)
			return reply_att_error(inv, GW_SIM_ATT_INVALID_OFFSET);
		if (len > WB_ATT_MAX_VALUE)
			return reply_att_error(inv, GW_SIM_ATT_INVALID_LENGTH);
		ensure_encrypted(c);
		att = gw_sim_write(d->sim, c->ch, p, len);
		if (att)
			return reply_att_error(inv, att);
		reply_ok(inv);
		return;
	}
	if (strcmp(method, "StartNotify") == 0) {
		d->c.start_notify++;
		if (!(c->flags & (GW_SIM_PROP_NOTIFY | GW_SIM_PROP_INDICATE)))
			return reply_error(inv, "NotSupported", "Operation is not supported");
		if (!gatt_ready(c, inv))
			return;
		ensure_encrypted(c);
		if (!g_hash_table_contains(c->sessions, sender)) {
			client_get(fb, sender);
			g_hash_table_add(c->sessions, g_strdup(sender));
			if (g_hash_table_size(c->sessions) == 1) {
				gw_sim_set_notify(d->sim, c->ch, true);
				emit_prop(fb, c->path, IFACE_CHAR, "Notifying",
					  g_variant_new_boolean(TRUE));
			}
		}
		return reply_ok(inv);
	}
	if (strcmp(method, "StopNotify") == 0) {
		if (!g_hash_table_remove(c->sessions, sender))
			return reply_error(inv, "Failed", "No notify session started");
		if (g_hash_table_size(c->sessions) == 0) {
			gw_sim_set_notify(d->sim, c->ch, false);
			emit_prop(fb, c->path, IFACE_CHAR, "Notifying",
				  g_variant_new_boolean(FALSE));
		}
		return reply_ok(inv);
	}
	/* AcquireWrite, AcquireNotify */
	reply_error(inv, "NotSupported", "Operation is not supported");
}

static void desc_method(GDBusConnection *conn, const char *sender, const char *path,
			const char *iface, const char *method, GVariant *params,
			GDBusMethodInvocation *inv, gpointer data)
{
	struct fb_chr *c = data;
	uint8_t v[2];

	(void) conn; (void) sender; (void) path; (void) iface; (void) params;
	if (!gatt_ready(c, inv))
		return;
	if (strcmp(method, "ReadValue") == 0) {
		ccc_value(c, v);
		g_dbus_method_invocation_return_value(inv,
			g_variant_new("(@ay)", bytes_variant(v, 2)));
		return;
	}
	/* BlueZ owns the CCC: it is written through StartNotify only */
	reply_error(inv, "NotPermitted", "Write not permitted");
}

/* ---- Notifications ------------------------------------------------------------------- */

static void send_value(struct fb_dev *d, enum gw_sim_char ch, const uint8_t *p,
		       size_t n, unsigned int records)
{
	struct fb_chr *c = &d->chrs[ch];

	if (!c->exported)
		return;
	chr_set_value(c, p, n);
	emit_prop(d->fb, c->path, IFACE_CHAR, "Value", bytes_variant(p, n));
	d->c.notifications++;
	d->c.records_sent += records;
	if (ch == GW_SIM_CHAR_HISTORY_DATA)
		d->c.history_records_sent += records;
	d->link_records += records;
}

static bool pump_once(GwFakeBus *fb)
{
	bool more = false;

	for (guint i = 0; i < fb->devs->len; i++) {
		struct fb_dev *d = fb->devs->pdata[i];
		struct gw_sim_tx tx;

		if (!d->sim || !d->connected)
			continue;
		for (unsigned int k = 0; k < PUMP_BUDGET && d->connected &&
					 gw_sim_pop_tx(d->sim, &tx); k++) {
			send_value(d, tx.ch, tx.data, tx.len, tx.records);
			check_link_loss(d);
		}
		more |= d->connected && gw_sim_has_tx(d->sim);
	}
	return more;
}

static gboolean pump_cb(gpointer data)
{
	GwFakeBus *fb = data;

	if (pump_once(fb))
		return G_SOURCE_CONTINUE;
	g_source_unref(g_steal_pointer(&fb->pump_src));
	return G_SOURCE_REMOVE;
}

static void pump_kick(GwFakeBus *fb)
{
	if (fb->pump_src)
		return;
	fb->pump_src = g_idle_source_new();
	g_source_set_priority(fb->pump_src, G_PRIORITY_DEFAULT_IDLE);
	g_source_set_callback(fb->pump_src, pump_cb, fb, NULL);
	g_source_attach(fb->pump_src, NULL);
}

/* A malformed value of the requested kind. */
static size_t malformed_value(GwFakeBus *fb, struct fb_dev *d, const char *kind,
			      uint8_t *buf, size_t size)
{
	struct wb_record rec = { .type = WB_RECORD_PAIN, .version = WB_RECORD_VERSION };
	struct gw_sim_stats st;
	ssize_t n;

	gw_sim_get_stats(d->sim, &st);
	rec.seq = st.last_seq;
	rec.u.pain.score = 5;
	n = wb_batch_encode(&rec, 1, buf, size);
	if (n < 0)
		return 0;
	if (!kind || strcmp(kind, "random") == 0) {
		size_t len = 1 + fb_rand(fb) % 20;

		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t) fb_rand(fb);
		return len;
	}
	if (strcmp(kind, "truncated") == 0)
		return (size_t) n - 3;
	if (strcmp(kind, "bad-version") == 0) {
		buf[0] = 2;
		return (size_t) n;
	}
	if (strcmp(kind, "reserved-bits") == 0) {
		buf[n - 1] |= 0x80;	/* pain flags bit 15 */
		return (size_t) n;
	}
	return 0;	/* empty */
}

static void inject_malformed(GwFakeBus *fb, struct fb_dev *d)
{
	struct fault *f;

	while ((f = fault_peek(fb, FAULT_MALFORMED, d))) {
		struct fb_chr *c = &d->chrs[f->ch];
		uint8_t buf[64];
		size_t n;

		if (!d->connected || !c->exported || g_hash_table_size(c->sessions) == 0)
			return;
		n = malformed_value(fb, d, f->malformed_kind, buf, sizeof(buf));
		fb_info("fault malformed (%s) on %s %s", f->malformed_kind ?
			f->malformed_kind : "random", d->address, gw_sim_char_name(c->ch));
		send_value(d, c->ch, buf, n, 0);
		d->c.malformed_sent++;
		if (f->count == 0)
			return;	/* until cleared: one a tick */
		fault_fire(fb, f);
	}
}

/* ---- The tick -------------------------------------------------------------------------- */

static void save_all(GwFakeBus *fb, bool final)
{
	for (guint i = 0; i < fb->devs->len; i++) {
		struct fb_dev *d = fb->devs->pdata[i];
		g_autoptr(GError) error = NULL;

		if (!d->sim || (!final && !gw_sim_is_dirty(d->sim)))
			continue;
		if (!(final ? gw_sim_save_final(d->sim, &error) :
			      gw_sim_save(d->sim, &error)))
			fb_warn("%s: %s", d->address, error->message);
	}
}

static void run_sims(GwFakeBus *fb)
{
	int64_t now = sim_now(fb);

	for (guint i = 0; i < fb->devs->len; i++) {
		struct fb_dev *d = fb->devs->pdata[i];
		g_autoptr(GError) error = NULL;

		if (!d->sim)
			continue;
		if (!gw_sim_advance(d->sim, now, &error))
			fb_warn("%s: %s", d->address, error->message);
		if (d->connected && !gw_sim_is_connected(d->sim))
			link_down(d, gw_sim_in_range(d->sim) ? "wearable rebooted" :
							       "out of range");
		inject_malformed(fb, d);
	}
}

static gboolean tick_cb(gpointer data)
{
	GwFakeBus *fb = data;
	int64_t mono = g_get_monotonic_time();
	bool rssi = mono - fb->last_rssi_mono >= G_USEC_PER_SEC;

	run_sims(fb);
	if (bus_up(fb)) {
		discovery_scan(fb, rssi);
		if (rssi)
			fb->last_rssi_mono = mono;
		if (pump_once(fb))
			pump_kick(fb);
	}
	if (mono - fb->last_save_mono >= (int64_t) fb->o->save_interval_ms * 1000) {
		fb->last_save_mono = mono;
		save_all(fb, false);
	}
	return G_SOURCE_CONTINUE;
}

/* ---- Bus connection lifecycle ------------------------------------------------------------ */

static void bus_register_static(GwFakeBus *fb)
{
	fb->reg_om = reg(fb, "/", fb->if_om, &om_vtable, fb);
	fb->reg_am = reg(fb, "/org/bluez", fb->if_am, &am_vtable, fb);
	if (!fb->o->no_control)
		fb->reg_ctl = reg(fb, GW_FAKEBUS_CONTROL_PATH, fb->if_ctl, &ctl_vtable, fb);
	if (fb->adapter_present)
		adapter_export(fb);
}

static void name_acquired_cb(GDBusConnection *conn, const char *name, gpointer data)
{
	GwFakeBus *fb = data;

	(void) conn;
	fb->name_owned = true;
	fb_info("owning %s", name);
	if (fb->o->print_ready && !fb->ready_printed) {
		fb->ready_printed = true;
		printf("READY\n");
		fflush(stdout);
	}
}

static void name_lost_cb(GDBusConnection *conn, const char *name, gpointer data)
{
	GwFakeBus *fb = data;

	if (!conn || !fb->conn || conn != fb->conn)
		return;	/* our own release during a restart */
	g_printerr("fake-bluetoothd: lost or could not own %s\n", name);
	fb->exit_code = GW_FAKEBUS_EXIT_BUS;
	g_main_loop_quit(fb->loop);
}

static void conn_closed_cb(GDBusConnection *conn, gboolean remote, GError *error,
			   gpointer data)
{
	GwFakeBus *fb = data;

	if (conn != fb->conn)
		return;
	g_printerr("fake-bluetoothd: bus connection closed%s%s\n",
		   error ? ": " : "", error ? error->message : "");
	(void) remote;
	fb->exit_code = GW_FAKEBUS_EXIT_BUS;
	g_main_loop_quit(fb->loop);
}

static bool bus_connect(GwFakeBus *fb, GError **error)
{
	fb->conn = g_dbus_connection_new_for_address_sync(
		fb->bus_address,
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, error);
	if (!fb->conn)
		return false;
	g_dbus_connection_set_exit_on_close(fb->conn, FALSE);
	g_signal_connect(fb->conn, "closed", G_CALLBACK(conn_closed_cb), fb);
	bus_register_static(fb);
	fb->own_id = g_bus_own_name_on_connection(fb->conn, BLUEZ_NAME,
						  G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
						  name_acquired_cb, name_lost_cb,
						  fb, NULL);
	return true;
}

/* Drops every bit of bluetoothd state a restart loses. */
static void bus_drop_state(GwFakeBus *fb)
{
	for (guint i = 0; i < fb->devs->len; i++) {
		struct fb_dev *d = fb->devs->pdata[i];

		link_down(d, "bluetoothd stopped");
		g_ptr_array_foreach(d->held, (GFunc) (void (*)(void)) g_object_unref, NULL);
		g_ptr_array_set_size(d->held, 0);
		for (unsigned int k = 0; k < GW_SIM_CHAR_COUNT; k++)
			g_hash_table_remove_all(d->chrs[k].sessions);
		device_unexport(d, false);
		d->exported = false;
		if (!d->paired)
			d->temporary = true;
	}
	adapter_unexport(fb, false);
	g_hash_table_remove_all(fb->clients);
	g_clear_pointer(&fb->default_agent, g_free);
	if (fb->discovering)
		fb->discovering = false;
}

static void bus_disconnect(GwFakeBus *fb)
{
	GDBusConnection *conn = g_steal_pointer(&fb->conn);

	if (!conn)
		return;
	fb->name_owned = false;	/* a dying bluetoothd sends nothing more */
	fb->conn = conn;	/* unregister on it */
	bus_drop_state(fb);
	unreg(fb, &fb->reg_om);
	unreg(fb, &fb->reg_am);
	unreg(fb, &fb->reg_ctl);
	if (fb->own_id)
		g_bus_unown_name(fb->own_id);
	fb->own_id = 0;
	fb->name_owned = false;
	fb->conn = NULL;
	g_dbus_connection_flush_sync(conn, NULL, NULL);
	g_dbus_connection_close_sync(conn, NULL, NULL);
	g_object_unref(conn);
}

static gboolean restart_up_cb(gpointer data)
{
	GwFakeBus *fb = data;
	g_autoptr(GError) error = NULL;

	fb_info("bluetoothd-restart: coming back");
	if (!bus_connect(fb, &error)) {
		g_printerr("fake-bluetoothd: %s\n", error->message);
		fb->exit_code = GW_FAKEBUS_EXIT_BUS;
		g_main_loop_quit(fb->loop);
	}
	return G_SOURCE_REMOVE;
}

struct exit_ctx {
	GwFakeBus *fb;
	int code;
};

static gboolean exit_cb(gpointer data)
{
	struct exit_ctx *e = data;

	e->fb->exit_code = e->code;
	g_main_loop_quit(e->fb->loop);
	g_free(e);
	return G_SOURCE_REMOVE;
}

/* ---- Fault injection ---------------------------------------------------------------------- */

static bool arg_uint(GVariant *args, const char *key, unsigned int *ret)
{
	g_autoptr(GVariant) v = g_variant_lookup_value(args, key, NULL);

	if (!v)
		return false;
	if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32))
		*ret = g_variant_get_uint32(v);
	else if (g_variant_is_of_type(v, G_VARIANT_TYPE_INT32))
		*ret = (unsigned int) MAX(0, g_variant_get_int32(v));
	else if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64))
		*ret = (unsigned int) MIN(g_variant_get_uint64(v), G_MAXUINT);
	else if (g_variant_is_of_type(v, G_VARIANT_TYPE_INT64))
		*ret = (unsigned int) CLAMP(g_variant_get_int64(v), 0, G_MAXUINT);
	else if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT16))
		*ret = g_variant_get_uint16(v);
	else if (g_variant_is_of_type(v, G_VARIANT_TYPE_BYTE))
		*ret = g_variant_get_byte(v);
	else if (g_variant_is_of_type(v, G_VARIANT_TYPE_DOUBLE))
		*ret = (unsigned int) CLAMP(g_variant_get_double(v), 0, G_MAXUINT);
	else if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)) {
		guint64 u;

		if (!g_ascii_string_to_unsigned(g_variant_get_string(v, NULL), 10, 0,
						G_MAXUINT, &u, NULL))
			return false;
		*ret = (unsigned int) u;
	} else
		return false;
	return true;
}

static char *arg_str(GVariant *args, const char *key)
{
	g_autoptr(GVariant) v = g_variant_lookup_value(args, key, NULL);

	if (!v)
		return NULL;
	if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING))
		return g_variant_dup_string(v, NULL);
	if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING_ARRAY)) {
		g_autofree const char **sv = g_variant_get_strv(v, NULL);

		return g_strjoinv("+", (char **) sv);
	}
	return NULL;
}

static bool arg_bool(GVariant *args, const char *key)
{
	g_autoptr(GVariant) v = g_variant_lookup_value(args, key, NULL);
	unsigned int u = 0;

	if (v && g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN))
		return g_variant_get_boolean(v);
	if (v && g_variant_is_of_type(v, G_VARIANT_TYPE_STRING))
		return strcmp(g_variant_get_string(v, NULL), "true") == 0 ||
		       strcmp(g_variant_get_string(v, NULL), "1") == 0;
	return arg_uint(args, key, &u) && u;
}

static struct fb_dev *stranger_add(GwFakeBus *fb, const char *address,
				   const char *name, const char *uuids);

/* Applies or stores a fault. Returns false with error set if it is bad. */
static bool fault_inject(GwFakeBus *fb, const char *name, GVariant *args,
			 GError **error)
{
	g_autofree char *device = arg_str(args, "device");
	struct fb_dev *dev = NULL;
	struct fault *f;
	int kind = -1;
	unsigned int u;

	for (size_t i = 0; i < ARRAY_SIZE(fault_names); i++)
		if (strcmp(fault_names[i], name) == 0)
			kind = (int) i;
	if (kind < 0) {
		g_dbus_error_set_dbus_error(error, CTL_ERR "UnknownFault",
					    "unknown fault", "'%s': ", name);
		return false;
	}
	if (device && *device) {
		dev = dev_by_address(fb, device);
		if (!dev || dev->stranger) {
			g_dbus_error_set_dbus_error(error, CTL_ERR "InvalidArgs",
						    "no such wearable", "%s: device '%s': ",
						    name, device);
			return false;
		}
	}
	fb_info("inject %s%s%s", name, device ? " on " : "", device ? device : "");
	f = g_new0(struct fault, 1);
	f->kind = (enum fault_kind) kind;
	f->device = dev ? g_strdup(dev->address) : NULL;
	f->count = 1;
	f->ch = -1;
	f->delay_ms = 100;
	arg_uint(args, "count", &f->count);
	arg_uint(args, "delay-ms", &f->delay_ms);
	arg_uint(args, "after", &f->after);
	f->until_power_cycle = arg_bool(args, "until-power-cycle");
	f->message = arg_str(args, "message");
	f->malformed_kind = arg_str(args, "kind");

	switch (f->kind) {
	case FAULT_CONNECT_IN_PROGRESS:
		if (f->until_power_cycle)
			f->count = 0;
		break;
	case FAULT_CONNECT_ABORT:
	case FAULT_CONNECT_NOT_READY:
	case FAULT_CONNECT_FAILED:
	case FAULT_CONNECT_AUTH:
	case FAULT_CONNECT_TIMEOUT:
	case FAULT_SERVICES_UNRESOLVED:
	case FAULT_PAIR_REJECT:
		break;
	case FAULT_KEY_MISSING:
		if (!arg_uint(args, "count", &f->count))
			f->count = 0;
		break;
	case FAULT_LINK_LOSS:
		fb->faults = g_list_append(fb->faults, f);
		for (guint i = 0; i < fb->devs->len; i++) {
			struct fb_dev *d = fb->devs->pdata[i];

			if (d->sim && d->connected && d->resolved &&
			    fault_matches(f, FAULT_LINK_LOSS, d)) {
				arm_link_loss(d);
				check_link_loss(d);
				/* a fault that fired at once (after=0) is freed
				 * by check_link_loss: stop using it */
				if (!g_list_find(fb->faults, f))
					break;
			}
		}
		return true;
	case FAULT_CHAR_MISSING:
	case FAULT_CHAR_FLAGS: {
		g_autofree char *cn = arg_str(args, "char");
		g_autofree char *fl = arg_str(args, "flags");
		unsigned int flags = 0;

		f->ch = cn ? gw_sim_char_from_name(cn) : -1;
		if (f->ch < 0 || (f->kind == FAULT_CHAR_FLAGS &&
				  (!fl || !parse_flags(fl, &flags) || flags == 0))) {
			g_dbus_error_set_dbus_error(error, CTL_ERR "InvalidArgs",
						    "want char=NAME (and flags=a+b)", "%s: ", name);
			fault_free(f);
			return false;
		}
		for (guint i = 0; i < fb->devs->len; i++) {
			struct fb_dev *d = fb->devs->pdata[i];

			if (!d->sim || (dev && d != dev))
				continue;
			if (f->kind == FAULT_CHAR_MISSING)
				d->chr_missing[f->ch] = true;
			else
				d->chr_flags[f->ch] = flags;
			if (d->connected && d->resolved)
				gatt_sync(d);	/* as after a Service Changed */
		}
		fault_free(f);
		return true;
	}
	case FAULT_MALFORMED: {
		g_autofree char *cn = arg_str(args, "char");
		static const char *const kinds[] = { "random", "truncated", "bad-version",
						     "reserved-bits", "empty" };
		bool ok = !f->malformed_kind;

		f->ch = cn ? gw_sim_char_from_name(cn) : GW_SIM_CHAR_POSTURE;
		for (size_t i = 0; i < ARRAY_SIZE(kinds) && !ok; i++)
			ok = strcmp(kinds[i], f->malformed_kind) == 0;
		if (f->ch < 0 || !ok) {
			g_dbus_error_set_dbus_error(error, CTL_ERR "InvalidArgs",
						    "want char=NAME and kind=random|truncated|"
						    "bad-version|reserved-bits|empty", "%s: ", name);
			fault_free(f);
			return false;
		}
		break;
	}
	case FAULT_ADAPTER_POWER_OFF:
	case FAULT_ADAPTER_POWER_ON:
		adapter_power(fb, f->kind == FAULT_ADAPTER_POWER_ON);
		fault_free(f);
		return true;
	case FAULT_ADAPTER_REMOVE:
		fb->adapter_present = false;
		adapter_unexport(fb, true);
		fault_free(f);
		return true;
	case FAULT_ADAPTER_ADD:
		fb->adapter_present = true;
		fb->powered = true;
		adapter_export(fb);
		fault_free(f);
		return true;
	case FAULT_BLUETOOTHD_EXIT: {
		struct exit_ctx *e = g_new0(struct exit_ctx, 1);

		e->fb = fb;
		e->code = 1;
		if (arg_uint(args, "code", &u))
			e->code = (int) u;
		u = 0;
		arg_uint(args, "delay-ms", &u);
		g_timeout_add(u, exit_cb, e);
		fault_free(f);
		return true;
	}
	case FAULT_BLUETOOTHD_RESTART: {
		unsigned int down = 1000;

		arg_uint(args, "down-ms", &down);
		fault_free(f);
		fb_info("bluetoothd-restart: going down for %u ms", down);
		bus_disconnect(fb);
		g_timeout_add(down, restart_up_cb, fb);
		return true;
	}
	case FAULT_STRANGER: {
		g_autofree char *addr = arg_str(args, "address");
		g_autofree char *sname = arg_str(args, "name");
		g_autofree char *uuids = arg_str(args, "uuids");

		fault_free(f);
		if (addr && !g_regex_match_simple("^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$",
						  addr, 0, 0)) {
			g_dbus_error_set_dbus_error(error, CTL_ERR "InvalidArgs",
						    "bad address", NULL);
			return false;
		}
		stranger_add(fb, addr ? addr : "11:22:33:44:55:66", sname, uuids);
		discovery_scan(fb, false);
		return true;
	}
	case FAULT_OUT_OF_RANGE: {
		unsigned int ms = 0;

		arg_uint(args, "ms", &ms);
		for (guint i = 0; i < fb->devs->len; i++) {
			struct fb_dev *d = fb->devs->pdata[i];

			if (!d->sim || (dev && d != dev))
				continue;
			gw_sim_set_out_of_range(d->sim, ms ? sim_now(fb) +
					       (int64_t) ((double) ms * 1000.0 * fb->speed) :
					       INT64_MAX);
			if (d->connected && !gw_sim_is_connected(d->sim))
				link_down(d, "out of range");
		}
		fault_free(f);
		return true;
	}
	case FAULT_HCP_BUSY:
	case FAULT_HCP_STORAGE_ERROR:
		for (guint i = 0; i < fb->devs->len; i++) {
			struct fb_dev *d = fb->devs->pdata[i];

			if (!d->sim || (dev && d != dev))
				continue;
			if (f->kind == FAULT_HCP_BUSY)
				__gw_sim_set_hcp_busy(d->sim, MAX(f->count, 1u));
			else
				__gw_sim_set_hcp_storage_error(d->sim, MAX(f->count, 1u));
		}
		fault_free(f);
		return true;
	}
	fb->faults = g_list_append(fb->faults, f);
	return true;
}

static void fault_clear(GwFakeBus *fb, const char *name)
{
	bool all = !name || !*name;

	for (GList *l = fb->faults; l;) {
		struct fault *f = l->data;

		l = l->next;
		if (!all && strcmp(fault_names[f->kind], name) != 0)
			continue;
		fb->faults = g_list_remove(fb->faults, f);
		fault_free(f);
	}
	for (guint i = 0; i < fb->devs->len; i++) {
		struct fb_dev *d = fb->devs->pdata[i];
		bool layout = false;

		if (all || strcmp(name, "connect-timeout") == 0) {
			/* each reply consumes the invocation */
			for (guint k = 0; k < d->held->len; k++)
				reply_error(d->held->pdata[k], "Failed", "Timeout was reached");
			g_ptr_array_set_size(d->held, 0);
		}
		if (!d->sim)
			continue;
		if (all || strcmp(name, "char-missing") == 0) {
			memset(d->chr_missing, 0, sizeof(d->chr_missing));
			layout = true;
		}
		if (all || strcmp(name, "char-flags") == 0) {
			memset(d->chr_flags, 0, sizeof(d->chr_flags));
			layout = true;
		}
		if (layout && d->connected && d->resolved)
			gatt_sync(d);
		if (all || strcmp(name, "out-of-range") == 0)
			gw_sim_set_out_of_range(d->sim, 0);
		if (all || strcmp(name, "hcp-busy") == 0)
			__gw_sim_set_hcp_busy(d->sim, 0);
		if (all || strcmp(name, "hcp-storage-error") == 0)
			__gw_sim_set_hcp_storage_error(d->sim, 0);
	}
}

/* "name:key=value,key=value" (lists with '+') as Inject's a{sv}. */
static GVariant *fault_spec_args(const char *spec, char **ret_name)
{
	const char *colon = strchr(spec, ':');
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	*ret_name = colon ? g_strndup(spec, (gsize) (colon - spec)) : g_strdup(spec);
	if (colon) {
		g_auto(GStrv) kv = g_strsplit(colon + 1, ",", -1);

		for (char **p = kv; *p; p++) {
			char *eq = strchr(*p, '=');

			if (!eq || eq == *p)
				continue;
			*eq = '\0';
			g_variant_builder_add(&b, "{sv}", *p, g_variant_new_string(eq + 1));
		}
	}
	return g_variant_ref_sink(g_variant_builder_end(&b));
}

/* ---- The control interface ------------------------------------------------------------- */

static void counters_add(GVariantBuilder *b, const char *k, GVariant *v)
{
	g_variant_builder_add(b, "{sv}", k, v);
}

static GVariant *counters(GwFakeBus *fb, struct fb_dev *only)
{
	struct fb_counters c = { 0 };
	struct gw_sim_stats st = { 0 }, s1;
	uint64_t generated = 0, overwritten = 0, deleted = 0, deletes = 0, hcp = 0,
		 time_writes = 0, stored = 0, capacity = 0;
	GVariantBuilder b;

	for (guint i = 0; i < fb->devs->len; i++) {
		struct fb_dev *d = fb->devs->pdata[i];

		if ((only && d != only) || (!only && d->stranger))
			continue;
		c.connects += d->c.connects;
		c.connects_ok += d->c.connects_ok;
		c.disconnects += d->c.disconnects;
		c.pairs += d->c.pairs;
		c.notifications += d->c.notifications;
		c.records_sent += d->c.records_sent;
		c.history_records_sent += d->c.history_records_sent;
		c.reads += d->c.reads;
		c.writes += d->c.writes;
		c.start_notify += d->c.start_notify;
		c.malformed_sent += d->c.malformed_sent;
		if (!d->sim)
			continue;
		gw_sim_get_stats(d->sim, &s1);
		generated += s1.generated;
		overwritten += s1.overwritten;
		deleted += s1.deleted;
		deletes += s1.deletes;
		hcp += s1.hcp_requests;
		time_writes += s1.time_writes;
		stored += s1.stored;
		capacity += s1.capacity;
		st = s1;
	}
	g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
	counters_add(&b, "connects", g_variant_new_uint32(c.connects));
	counters_add(&b, "connects-ok", g_variant_new_uint32(c.connects_ok));
	counters_add(&b, "disconnects", g_variant_new_uint32(c.disconnects));
	counters_add(&b, "pairs", g_variant_new_uint32(c.pairs));
	counters_add(&b, "notifications", g_variant_new_uint32(c.notifications));
	counters_add(&b, "records-sent", g_variant_new_uint32(c.records_sent));
	counters_add(&b, "history-records-sent", g_variant_new_uint32(c.history_records_sent));
	counters_add(&b, "reads", g_variant_new_uint32(c.reads));
	counters_add(&b, "writes", g_variant_new_uint32(c.writes));
	counters_add(&b, "start-notify", g_variant_new_uint32(c.start_notify));
	counters_add(&b, "malformed-sent", g_variant_new_uint32(c.malformed_sent));
	counters_add(&b, "hcp-requests", g_variant_new_uint32((guint32) hcp));
	counters_add(&b, "deletes", g_variant_new_uint32((guint32) deletes));
	counters_add(&b, "deleted", g_variant_new_uint32((guint32) deleted));
	counters_add(&b, "time-writes", g_variant_new_uint32((guint32) time_writes));
	counters_add(&b, "generated", g_variant_new_uint32((guint32) generated));
	counters_add(&b, "overwritten", g_variant_new_uint32((guint32) overwritten));
	counters_add(&b, "stored", g_variant_new_uint32((guint32) stored));
	counters_add(&b, "capacity", g_variant_new_uint32((guint32) capacity));
	if (only) {
		counters_add(&b, "connected", g_variant_new_boolean(only->connected));
		counters_add(&b, "services-resolved", g_variant_new_boolean(only->resolved));
		counters_add(&b, "paired", g_variant_new_boolean(only->paired));
		counters_add(&b, "in-range", g_variant_new_boolean(dev_in_range(only)));
	}
	if (only && only->sim) {
		counters_add(&b, "first-seq", g_variant_new_uint32(st.first_seq));
		counters_add(&b, "last-seq", g_variant_new_uint32(st.last_seq));
		counters_add(&b, "next-seq", g_variant_new_uint32(st.next_seq));
		counters_add(&b, "battery", g_variant_new_byte((guint8) st.battery_pct));
		counters_add(&b, "time-quality",
			     g_variant_new_string(wb_time_quality_name(st.time_quality)));
	}
	return g_variant_builder_end(&b);
}

static void ctl_method(GDBusConnection *conn, const char *sender, const char *path,
		       const char *iface, const char *method, GVariant *params,
		       GDBusMethodInvocation *inv, gpointer data)
{
	GwFakeBus *fb = data;

	(void) conn; (void) path; (void) iface;
	fb_debug("%s FakeBluez1.%s", sender, method);
	if (strcmp(method, "Inject") == 0) {
		const char *name;
		g_autoptr(GVariant) args = NULL;
		g_autoptr(GError) error = NULL;

		g_variant_get(params, "(&s@a{sv})", &name, &args);
		if (strcmp(name, "bluetoothd-restart") == 0) {
			/* answer first: the connection is about to close */
			reply_ok(inv);
			g_dbus_connection_flush_sync(fb->conn, NULL, NULL);
			if (!fault_inject(fb, name, args, &error))
				fb_warn("%s", error->message);
			return;
		}
		if (!fault_inject(fb, name, args, &error))
			return g_dbus_method_invocation_return_gerror(inv, error);
		reply_ok(inv);
		if (bus_up(fb) && pump_once(fb))
			pump_kick(fb);
		return;
	}
	if (strcmp(method, "Clear") == 0) {
		const char *name;

		g_variant_get(params, "(&s)", &name);
		fault_clear(fb, name);
		return reply_ok(inv);
	}
	if (strcmp(method, "GetCounters") == 0) {
		const char *addr;
		struct fb_dev *d = NULL;

		g_variant_get(params, "(&s)", &addr);
		if (*addr && !(d = dev_by_address(fb, addr)))
			return g_dbus_method_invocation_return_dbus_error(
				inv, CTL_ERR "InvalidArgs", "no such device");
		g_dbus_method_invocation_return_value(inv,
			g_variant_new("(@a{sv})", counters(fb, d)));
		return;
	}
	if (strcmp(method, "ListDevices") == 0) {
		GVariantBuilder b;

		g_variant_builder_init(&b, G_VARIANT_TYPE("as"));
		for (guint i = 0; i < fb->devs->len; i++)
			g_variant_builder_add(&b, "s",
					      ((struct fb_dev *) fb->devs->pdata[i])->address);
		g_dbus_method_invocation_return_value(inv, g_variant_new("(as)", &b));
		return;
	}
	if (strcmp(method, "Apply") == 0) {
		const char *addr, *stmt;
		uint32_t last = 0;

		g_variant_get(params, "(&s&s)", &addr, &stmt);
		run_sims(fb);
		for (guint i = 0; i < fb->devs->len; i++) {
			struct fb_dev *d = fb->devs->pdata[i];
			g_autoptr(GError) error = NULL;
			struct gw_sim_stats st;

			if (!d->sim || (*addr && g_ascii_strcasecmp(addr, d->address) != 0))
				continue;
			if (!gw_sim_apply(d->sim, stmt, &error))
				return g_dbus_method_invocation_return_dbus_error(
					inv, CTL_ERR "InvalidArgs", error->message);
			if (d->connected && !gw_sim_is_connected(d->sim))
				link_down(d, "wearable rebooted or out of range");
			gw_sim_get_stats(d->sim, &st);
			last = st.last_seq;
		}
		g_dbus_method_invocation_return_value(inv, g_variant_new("(u)", last));
		if (bus_up(fb) && pump_once(fb))
			pump_kick(fb);
		return;
	}
	if (strcmp(method, "Advance") == 0 || strcmp(method, "SetSpeed") == 0) {
		double v;

		g_variant_get(params, "(d)", &v);
		if (!(v >= 0 && v <= 1e9))
			return g_dbus_method_invocation_return_dbus_error(
				inv, CTL_ERR "InvalidArgs", "out of range");
		fb->base_sim_us = sim_now(fb);
		fb->t0_mono = g_get_monotonic_time();
		if (method[0] == 'A')
			fb->base_sim_us += (int64_t) (v * 1e6);
		else
			fb->speed = v;
		run_sims(fb);
		if (pump_once(fb))
			pump_kick(fb);
		return reply_ok(inv);
	}
	if (strcmp(method, "GetTime") == 0) {
		g_dbus_method_invocation_return_value(inv, g_variant_new("(x)", sim_now(fb)));
		return;
	}
	if (strcmp(method, "Save") == 0) {
		save_all(fb, false);
		return reply_ok(inv);
	}
	if (strcmp(method, "Exit") == 0) {
		struct exit_ctx *e = g_new0(struct exit_ctx, 1);
		int code;

		g_variant_get(params, "(i)", &code);
		e->fb = fb;
		e->code = code;
		reply_ok(inv);
		g_idle_add(exit_cb, e);
		return;
	}
	g_dbus_method_invocation_return_dbus_error(inv, "org.freedesktop.DBus.Error.UnknownMethod",
						   "Unknown method");
}

/* ---- Devices -------------------------------------------------------------------------- */

static void dev_free(struct fb_dev *d)
{
	if (!d)
		return;
	source_clear(&d->connect_src);
	source_clear(&d->pair_src);
	if (d->agent_cancel) {
		g_cancellable_cancel(d->agent_cancel);
		g_clear_object(&d->agent_cancel);
	}
	g_clear_object(&d->connect_inv);
	g_clear_object(&d->pair_inv);
	if (d->held) {
		g_ptr_array_foreach(d->held, (GFunc) (void (*)(void)) g_object_unref, NULL);
		g_clear_pointer(&d->held, g_ptr_array_unref);
	}
	for (unsigned int i = 0; i < GW_SIM_CHAR_COUNT; i++) {
		g_free(d->chrs[i].path);
		g_free(d->chrs[i].desc_path);
		g_clear_pointer(&d->chrs[i].sessions, g_hash_table_unref);
		g_clear_pointer(&d->chrs[i].value, g_byte_array_unref);
	}
	for (unsigned int s = 0; s < GW_SIM_SERVICE_COUNT; s++)
		g_free(d->svcs[s].path);
	g_clear_pointer(&d->sim, gw_sim_free);
	g_free(d->address);
	g_free(d->path);
	g_free(d->name);
	g_free(d->alias);
	g_strfreev(d->adv_uuids);
	g_free(d);
}

static struct fb_dev *dev_new(GwFakeBus *fb, const char *address)
{
	struct fb_dev *d = g_new0(struct fb_dev, 1);
	g_autofree char *up = g_ascii_strup(address, -1);
	g_autofree char *under = g_strdup(up);
	unsigned int h = FIRST_HANDLE;

	for (char *p = under; *p; p++)
		if (*p == ':')
			*p = '_';
	d->fb = fb;
	d->address = g_steal_pointer(&up);
	d->path = g_strdup_printf("%s/dev_%s", fb->adapter_path, under);
	d->random_address = true;
	d->rssi_base = -60;
	d->temporary = true;
	d->held = g_ptr_array_new();	/* owned; unreffed unanswered in dev_free */
	/* handles as a real GATT server lays them out: service, then per
	 * characteristic its declaration, value and CCC */
	for (unsigned int s = 0; s < GW_SIM_SERVICE_COUNT; s++) {
		struct fb_svc *sv = &d->svcs[s];

		sv->dev = d;
		sv->s = (enum gw_sim_service) s;
		sv->path = g_strdup_printf("%s/service%04x", d->path, h++);
		for (unsigned int i = 0; i < GW_SIM_CHAR_COUNT; i++) {
			struct fb_chr *c = &d->chrs[i];

			if (gw_sim_char_service((enum gw_sim_char) i) != sv->s)
				continue;
			c->dev = d;
			c->ch = (enum gw_sim_char) i;
			c->path = g_strdup_printf("%s/char%04x", sv->path, h);
			h += 2;
			if (gw_sim_char_props(c->ch) & (GW_SIM_PROP_NOTIFY | GW_SIM_PROP_INDICATE))
				c->desc_path = g_strdup_printf("%s/desc%04x", c->path, h++);
			else
				c->desc_path = g_strdup_printf("%s/desc%04x", c->path, 0xffffu);
			c->sessions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
			c->value = g_byte_array_new();
		}
	}
	g_ptr_array_add(fb->devs, d);
	return d;
}

static struct fb_dev *stranger_add(GwFakeBus *fb, const char *address,
				   const char *name, const char *uuids)
{
	struct fb_dev *d = dev_by_address(fb, address);

	if (d)
		return d;
	d = dev_new(fb, address);
	d->stranger = true;
	d->random_address = false;
	d->rssi_base = -70;
	d->name = g_strdup(name ? name : "Polar H10 1234");
	d->adv_uuids = uuids ? g_strsplit(uuids, "+", -1) :
			       g_strsplit(UUID_HEART_RATE, "+", -1);
	return d;
}

/* ADDRESS[,scenario=FILE][,state=FILE][,name=NAME][,address-type=T][,paired]
 * [,rssi=N][,capacity=N] */
struct dev_spec {
	char *address;
	char *scenario;
	char *state;
	char *name;
	bool public_address;
	bool paired;
	int rssi;
	unsigned int capacity;
};

static void dev_spec_clear(struct dev_spec *s)
{
	g_free(s->address);
	g_free(s->scenario);
	g_free(s->state);
	g_free(s->name);
}

static bool valid_address(const char *a)
{
	return g_regex_match_simple("^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$", a, 0, 0);
}

static bool parse_dev_spec(const char *spec, struct dev_spec *s, GError **error)
{
	g_auto(GStrv) parts = g_strsplit(spec, ",", -1);

	memset(s, 0, sizeof(*s));
	s->rssi = -60;
	if (!parts[0] || !valid_address(parts[0])) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "--device '%s': want ADDRESS[,key=value...]", spec);
		return false;
	}
	s->address = g_strdup(parts[0]);
	for (char **p = parts + 1; *p; p++) {
		char *eq = strchr(*p, '=');
		const char *v = eq ? eq + 1 : "";

		if (eq)
			*eq = '\0';
		if (strcmp(*p, "scenario") == 0 && eq) {
			g_free(s->scenario);
			s->scenario = g_strdup(v);
		} else if (strcmp(*p, "state") == 0 && eq) {
			g_free(s->state);
			s->state = g_strdup(v);
		} else if (strcmp(*p, "name") == 0 && eq) {
			g_free(s->name);
			s->name = g_strdup(v);
		} else if (strcmp(*p, "address-type") == 0 &&
			   (strcmp(v, "public") == 0 || strcmp(v, "random") == 0)) {
			s->public_address = v[0] == 'p';
		} else if (strcmp(*p, "paired") == 0 && !eq) {
			s->paired = true;
		} else if (strcmp(*p, "rssi") == 0 && eq) {
			gint64 r;

			if (!g_ascii_string_to_signed(v, 10, -127, 20, &r, NULL))
				goto bad;
			s->rssi = (int) r;
		} else if (strcmp(*p, "capacity") == 0 && eq) {
			guint64 c;

			if (!g_ascii_string_to_unsigned(v, 10, 1, 10000000, &c, NULL))
				goto bad;
			s->capacity = (unsigned int) c;
		} else {
			goto bad;
		}
	}
	return true;
bad:
	g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
		    "--device '%s': bad or unknown key '%s'", spec, parts[0]);
	dev_spec_clear(s);
	return false;
}

static GwSimScenario *scenario_cached(GHashTable *cache, const char *path,
				      GError **error)
{
	GwSimScenario *sc;

	if (!path) {
		sc = g_hash_table_lookup(cache, "");
		if (!sc) {
			sc = gw_sim_scenario_new_default();
			g_hash_table_insert(cache, g_strdup(""), sc);
		}
		return sc;
	}
	sc = g_hash_table_lookup(cache, path);
	if (sc)
		return sc;
	sc = gw_sim_scenario_load(path, error);
	if (sc)
		g_hash_table_insert(cache, g_strdup(path), sc);
	return sc;
}

/* --record-log: one line per record a wearable makes, after it is in its
 * flash: "ADDRESS SEQ TYPE TIME QUALITY V1 V2" (TYPE 1 posture, V1 its
 * duration, V2 its class; 2 steps, duration, steps; 3 pain, score, flags;
 * 4 status, uptime, flags). Appended, so a restarted fake continues it. */
static void record_logged(const struct wb_record *rec, void *ud)
{
	const struct fb_dev *d = ud;
	unsigned int v1 = 0, v2 = 0;

	if (!d->fb->record_log)
		return;
	switch (rec->type) {
	case WB_RECORD_POSTURE:
		v1 = rec->u.posture.duration_s;
		v2 = rec->u.posture.cls;
		break;
	case WB_RECORD_STEPS:
		v1 = rec->u.steps.duration_s;
		v2 = rec->u.steps.steps;
		break;
	case WB_RECORD_PAIN:
		v1 = rec->u.pain.score;
		v2 = rec->u.pain.flags;
		break;
	case WB_RECORD_STATUS:
		v1 = rec->u.status.uptime_s;
		v2 = rec->u.status.flags;
		break;
	}
	fprintf(d->fb->record_log, "%s %u %u %u %u %u %u\n", d->address, rec->seq,
		(unsigned int) rec->type, rec->time, (unsigned int) rec->time_quality, v1, v2);
	fflush(d->fb->record_log);
}

static bool wearable_add(GwFakeBus *fb, const struct dev_spec *s, GHashTable *cache,
			 int64_t start_us, unsigned int index, GError **error)
{
	const struct gw_fakebus_options *o = fb->o;
	GwSimScenario *sc = scenario_cached(cache, s->scenario ? s->scenario : o->scenario,
					    error);
	g_autofree char *state = NULL;
	g_autofree char *serial = NULL;
	struct gw_sim_config cfg = { 0 };
	struct fb_dev *d;

	if (!sc)
		return false;
	if (dev_by_address(fb, s->address)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "device %s given twice", s->address);
		return false;
	}
	if (s->state) {
		state = g_strdup(s->state);
	} else if (o->state_dir) {
		g_autofree char *hex = g_strdup(s->address);
		char *w = hex;

		for (const char *r = s->address; *r; r++)
			if (*r != ':')
				*w++ = g_ascii_toupper(*r);
		*w = '\0';
		state = g_strdup_printf("%s/%s.state", o->state_dir, hex);
	}
	serial = g_strdup_printf("RL-SIM-%04u", index + 1);
	cfg.state_path = state;
	cfg.capacity = s->capacity;
	cfg.seed = (uint64_t) o->seed + index;
	cfg.serial = serial;
	d = dev_new(fb, s->address);
	cfg.on_record = record_logged;
	cfg.on_record_data = d;
	d->sim = gw_sim_new(&cfg, sc, start_us, error);
	if (!d->sim) {
		g_ptr_array_remove(fb->devs, d);
		dev_free(d);
		return false;
	}
	d->name = s->name ? g_strdup(s->name) : g_strdup_printf("RehabLink-%02u", index + 1);
	d->random_address = !s->public_address;
	d->rssi_base = s->rssi;
	d->adv_uuids = g_strsplit(WB_UUID_SERVICE, "+", -1);
	if (s->paired || o->paired) {
		d->paired = d->bonded = true;
		d->temporary = false;
	}
	return true;
}

/* ---- Options and run ------------------------------------------------------------------- */

void gw_fakebus_options_init(struct gw_fakebus_options *o)
{
	memset(o, 0, sizeof(*o));
	o->devices = 0;
	o->speed = 1.0;
	o->mtu = 247;
	o->connect_delay_ms = 30;
	o->resolve_delay_ms = 20;
	o->page_timeout_ms = 2000;
	o->temporary_timeout_s = 30;
	o->seed = 1;
	o->save_interval_ms = 1000;
}

void gw_fakebus_options_clear(struct gw_fakebus_options *o)
{
	g_clear_pointer(&o->device_specs, g_strfreev);
	g_clear_pointer(&o->scenario, g_free);
	g_clear_pointer(&o->state_dir, g_free);
	g_clear_pointer(&o->start, g_free);
	g_clear_pointer(&o->adapter, g_free);
	g_clear_pointer(&o->adapter_address, g_free);
	g_clear_pointer(&o->gatt_cache, g_free);
	g_clear_pointer(&o->strangers, g_strfreev);
	g_clear_pointer(&o->faults, g_strfreev);
	g_clear_pointer(&o->record_log, g_free);
}

void gw_fakebus_add_options(GOptionContext *ctx, struct gw_fakebus_options *o)
{
	const GOptionEntry entries[] = {
		{ "devices", 0, 0, G_OPTION_ARG_INT, &o->devices,
		  "N simulated wearables AA:BB:CC:DD:EE:01.. (1..16)", "N" },
		{ "device", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->device_specs,
		  "one wearable: ADDRESS[,scenario=FILE][,state=FILE][,name=NAME]"
		  "[,address-type=random|public][,paired][,rssi=N][,capacity=N]", "SPEC" },
		{ "scenario", 0, 0, G_OPTION_ARG_FILENAME, &o->scenario,
		  "scenario file (default: a built-in quiet day)", "FILE" },
		{ "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &o->state_dir,
		  "state files DIR/<ADDRESS>.state", "DIR" },
		{ "speed", 0, 0, G_OPTION_ARG_DOUBLE, &o->speed,
		  "simulated seconds per real second (default 1)", "F" },
		{ "start", 0, 0, G_OPTION_ARG_STRING, &o->start,
		  "simulated time at start, HH:MM[:SS] or +DUR (default 00:00)", "TIME" },
		{ "adapter", 0, 0, G_OPTION_ARG_STRING, &o->adapter,
		  "adapter name (default hci0)", "NAME" },
		{ "adapter-address", 0, 0, G_OPTION_ARG_STRING, &o->adapter_address,
		  "adapter address", "ADDR" },
		{ "no-adapter", 0, 0, G_OPTION_ARG_NONE, &o->no_adapter,
		  "start without an adapter (fault adapter-add brings it)", NULL },
		{ "adapter-delay", 0, 0, G_OPTION_ARG_INT, &o->adapter_delay_ms,
		  "add the adapter MS after start", "MS" },
		{ "unpowered", 0, 0, G_OPTION_ARG_NONE, &o->unpowered,
		  "the adapter starts powered off", NULL },
		{ "paired", 0, 0, G_OPTION_ARG_NONE, &o->paired,
		  "every wearable starts paired and bonded", NULL },
		{ "mtu", 0, 0, G_OPTION_ARG_INT, &o->mtu, "ATT MTU (23..517, default 247)", "N" },
		{ "gatt-cache", 0, 0, G_OPTION_ARG_STRING, &o->gatt_cache,
		  "always|yes|no, as [GATT] Cache in main.conf (default always)", "MODE" },
		{ "connect-delay", 0, 0, G_OPTION_ARG_INT, &o->connect_delay_ms,
		  "ms from Connect to Connected (default 30)", "MS" },
		{ "resolve-delay", 0, 0, G_OPTION_ARG_INT, &o->resolve_delay_ms,
		  "ms from Connected to ServicesResolved (default 20)", "MS" },
		{ "page-timeout", 0, 0, G_OPTION_ARG_INT, &o->page_timeout_ms,
		  "ms before Connect to an absent device fails (default 2000)", "MS" },
		{ "temporary-timeout", 0, 0, G_OPTION_ARG_INT, &o->temporary_timeout_s,
		  "s before unseen temporary devices go (default 30, 0 never)", "S" },
		{ "stranger", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->strangers,
		  "an unrelated device advertising nearby", "ADDRESS" },
		{ "fault", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->faults,
		  "inject a fault at start: NAME[:key=value,...]", "SPEC" },
		{ "seed", 0, 0, G_OPTION_ARG_INT64, &o->seed, "random seed (default 1)", "N" },
		{ "record-log", 0, 0, G_OPTION_ARG_FILENAME, &o->record_log,
		  "append a line per record made to FILE (tests/faults)", "FILE" },
		{ "save-interval", 0, 0, G_OPTION_ARG_INT, &o->save_interval_ms,
		  "ms between state file writes (default 1000)", "MS" },
		{ "control", 0, 0, G_OPTION_ARG_NONE, &o->control,
		  "export org.rehablink.FakeBluez1 (the default)", NULL },
		{ "no-control", 0, 0, G_OPTION_ARG_NONE, &o->no_control,
		  "do not export the control interface", NULL },
		{ "print-ready", 0, 0, G_OPTION_ARG_NONE, &o->print_ready,
		  "print READY once org.bluez is owned", NULL },
		{ "verbose", 'v', 0, G_OPTION_ARG_NONE, &o->verbose,
		  "log every call and signal", NULL },
		G_OPTION_ENTRY_NULL,
	};

	g_option_context_add_main_entries(ctx, entries, NULL);
}

static gboolean signal_cb(gpointer data)
{
	GwFakeBus *fb = data;

	fb->exit_code = GW_FAKEBUS_EXIT_OK;
	g_main_loop_quit(fb->loop);
	return G_SOURCE_CONTINUE;
}

static gboolean adapter_delay_cb(gpointer data)
{
	GwFakeBus *fb = data;

	fb->adapter_present = true;
	adapter_export(fb);
	return G_SOURCE_REMOVE;
}

static bool fb_setup(GwFakeBus *fb, GError **error)
{
	const struct gw_fakebus_options *o = fb->o;
	g_autoptr(GHashTable) cache = g_hash_table_new_full(
		g_str_hash, g_str_equal, g_free, (GDestroyNotify) gw_sim_scenario_unref);
	int64_t start_us = 0;
	unsigned int index = 0;

	if (o->start && !gw_sim_parse_time(o->start, &start_us)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "--start '%s': want HH:MM[:SS] or +DUR", o->start);
		return false;
	}
	if (!(o->speed >= 0.0 && o->speed <= 1e9)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "--speed %g out of range", o->speed);
		return false;
	}
	if (o->mtu < 23 || o->mtu > 517) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "--mtu %d: want 23..517", o->mtu);
		return false;
	}
	if (!o->gatt_cache || strcmp(o->gatt_cache, "always") == 0) {
		fb->gatt_cache = GATT_CACHE_ALWAYS;
	} else if (strcmp(o->gatt_cache, "yes") == 0) {
		fb->gatt_cache = GATT_CACHE_YES;
	} else if (strcmp(o->gatt_cache, "no") == 0) {
		fb->gatt_cache = GATT_CACHE_NO;
	} else {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "--gatt-cache '%s': want always, yes or no", o->gatt_cache);
		return false;
	}
	if (o->devices < 0 || o->devices > MAX_DEVICES ||
	    (o->device_specs && g_strv_length(o->device_specs) > MAX_DEVICES)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "at most %d wearables", MAX_DEVICES);
		return false;
	}
	fb->mtu = (unsigned int) o->mtu;
	fb->speed = o->speed;
	fb->adapter_path = g_strdup_printf("/org/bluez/%s", o->adapter ? o->adapter : "hci0");
	fb->adapter_present = !o->no_adapter && o->adapter_delay_ms <= 0;
	fb->powered = !o->unpowered;
	fb->pairable = true;
	fb->discoverable_timeout = 180;
	fb->rng = (uint64_t) o->seed;

	for (char **s = o->device_specs; s && *s; s++) {
		struct dev_spec ds;
		bool ok;

		if (!parse_dev_spec(*s, &ds, error))
			return false;
		ok = wearable_add(fb, &ds, cache, start_us, index++, error);
		dev_spec_clear(&ds);
		if (!ok)
			return false;
	}
	for (int i = 0; i < o->devices || (index == 0 && i == 0); i++) {
		struct dev_spec ds = { .rssi = -60 };
		bool ok;

		ds.address = g_strdup_printf("AA:BB:CC:DD:EE:%02X", i + 1);
		ok = wearable_add(fb, &ds, cache, start_us, index++, error);
		dev_spec_clear(&ds);
		if (!ok)
			return false;
	}
	for (char **s = o->strangers; s && *s; s++) {
		if (!valid_address(*s)) {
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "--stranger '%s': want an address", *s);
			return false;
		}
		stranger_add(fb, *s, NULL, NULL);
	}
	/* a state file further on wins: continue where it stopped */
	for (guint i = 0; i < fb->devs->len; i++) {
		struct fb_dev *d = fb->devs->pdata[i];

		if (d->sim)
			start_us = MAX(start_us, gw_sim_get_time(d->sim));
	}
	fb->base_sim_us = start_us;
	fb->t0_mono = g_get_monotonic_time();
	run_sims(fb);
	for (char **s = o->faults; s && *s; s++) {
		g_autofree char *name = NULL;
		g_autoptr(GVariant) args = fault_spec_args(*s, &name);

		if (!fault_inject(fb, name, args, error)) {
			g_prefix_error(error, "--fault: ");
			return false;
		}
	}
	return true;
}

int gw_fakebus_run(const struct gw_fakebus_options *o)
{
	g_autoptr(GError) error = NULL;
	GwFakeBus fbs = { 0 };
	GwFakeBus *fb = &fbs;
	guint sig_int, sig_term;
	int code;

	fb->o = o;
	if (o->verbose) {
		const char *dbg = g_getenv("G_MESSAGES_DEBUG");
		g_autofree char *v = g_strconcat(dbg ? dbg : "", dbg ? " " : "",
						 G_LOG_DOMAIN_FB, NULL);

		g_setenv("G_MESSAGES_DEBUG", v, TRUE);
	}
	fb->devs = g_ptr_array_new_with_free_func((GDestroyNotify) dev_free);
	fb->clients = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					    (GDestroyNotify) client_free);
	fb->exit_code = GW_FAKEBUS_EXIT_OK;
	fb->node = g_dbus_node_info_new_for_xml(introspection_xml, &error);
	if (!fb->node)
		g_error("introspection XML: %s", error->message);
	fb->if_om = g_dbus_node_info_lookup_interface(fb->node, IFACE_OM);
	fb->if_am = g_dbus_node_info_lookup_interface(fb->node, IFACE_AGENT_MANAGER);
	fb->if_adapter = g_dbus_node_info_lookup_interface(fb->node, IFACE_ADAPTER);
	fb->if_device = g_dbus_node_info_lookup_interface(fb->node, IFACE_DEVICE);
	fb->if_service = g_dbus_node_info_lookup_interface(fb->node, IFACE_SERVICE);
	fb->if_char = g_dbus_node_info_lookup_interface(fb->node, IFACE_CHAR);
	fb->if_desc = g_dbus_node_info_lookup_interface(fb->node, IFACE_DESC);
	fb->if_ctl = g_dbus_node_info_lookup_interface(fb->node, GW_FAKEBUS_CONTROL_IFACE);
	fb->loop = g_main_loop_new(NULL, FALSE);

	fb->bus_address = g_dbus_address_get_for_bus_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
	if (!fb->bus_address) {
		g_printerr("fake-bluetoothd: system bus address: %s\n", error->message);
		code = GW_FAKEBUS_EXIT_BUS;
		goto out;
	}
	if (o->record_log) {
		fb->record_log = fopen(o->record_log, "a");
		if (!fb->record_log) {
			g_printerr("fake-bluetoothd: --record-log %s: %s\n", o->record_log,
				   g_strerror(errno));
			code = GW_FAKEBUS_EXIT_USAGE;
			goto out;
		}
	}
	if (!fb_setup(fb, &error)) {
		g_printerr("fake-bluetoothd: %s\n", error->message);
		code = GW_FAKEBUS_EXIT_USAGE;	/* options, scenarios, state files */
		goto out;
	}
	g_clear_error(&error);
	if (!bus_connect(fb, &error)) {
		g_printerr("fake-bluetoothd: bus %s: %s\n", fb->bus_address, error->message);
		code = GW_FAKEBUS_EXIT_BUS;
		goto out;
	}
	if (o->adapter_delay_ms > 0)
		g_timeout_add((guint) o->adapter_delay_ms, adapter_delay_cb, fb);
	fb->tick_src = timeout_new(TICK_MS, tick_cb, fb);
	sig_int = g_unix_signal_add(SIGINT, signal_cb, fb);
	sig_term = g_unix_signal_add(SIGTERM, signal_cb, fb);
	g_main_loop_run(fb->loop);
	g_source_remove(sig_int);
	g_source_remove(sig_term);
	code = fb->exit_code;
	save_all(fb, true);
	if (fb->conn)
		g_dbus_connection_flush_sync(fb->conn, NULL, NULL);
out:
	source_clear(&fb->tick_src);
	source_clear(&fb->pump_src);
	for (guint i = 0; fb->devs && i < fb->devs->len; i++) {
		struct fb_dev *d = fb->devs->pdata[i];

		source_clear(&d->connect_src);
		finish_connect(d, "Failed", "le-connection-abort-by-local");
		finish_pair(d, "AuthenticationCanceled", "Authentication Canceled");
	}
	g_hash_table_remove_all(fb->clients);
	if (fb->own_id)
		g_bus_unown_name(fb->own_id);
	if (fb->conn) {
		g_dbus_connection_close_sync(fb->conn, NULL, NULL);
		g_clear_object(&fb->conn);
	}
	g_clear_pointer(&fb->devs, g_ptr_array_unref);
	g_clear_pointer(&fb->clients, g_hash_table_unref);
	if (fb->record_log)
		fclose(fb->record_log);
	g_list_free_full(fb->faults, (GDestroyNotify) fault_free);
	g_clear_pointer(&fb->node, g_dbus_node_info_unref);
	g_clear_pointer(&fb->loop, g_main_loop_unref);
	g_free(fb->adapter_path);
	g_free(fb->adapter_alias);
	g_free(fb->default_agent);
	g_free(fb->bus_address);
	return code;
}
