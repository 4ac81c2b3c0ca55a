/* SPDX-License-Identifier: MIT */
/*
 * vm-central: a small LE central on bluetoothd's D-Bus API that checks
 * rehablink-sim --backend bluez over real kernel Bluetooth (the ble-vm of
 * ../shared/ble-vm). It does what the gateway will do, step by step, and
 * prints "PASS <step>: ..." or "FAIL <step>: ..." for each, then
 * "RESULT: PASS" or "RESULT: FAIL" (exit 0 / 1):
 *
 *   adapter, agent         hci0 powered, a NoInputNoOutput Agent1 as default
 *   discover               LE discovery (restarted every 1.5 s: btvirt sends
 *                          one advertising report per scan enable) until a
 *                          device advertising the rehablink service shows
 *   pair, connect          Device1.Pair (Just Works), Connect, ServicesResolved
 *   layout                 every service and characteristic by UUID, flags
 *   time                   Current Time written (UTC, external reference)
 *   features, battery, devinfo   read and decoded with proto/wearable.c
 *   subscribe              StartNotify on the record and control characteristics
 *   history, delete        REPORT RECORDS ALL -> History data batches ->
 *                          RESPONSE_CODE; DELETE up to the last seq
 *   live, pain             live records and a pain report by indication
 *   link-loss              waits (up to --link-loss-timeout) for the link
 *                          to drop: when guest.sh sees "PASS pain" it sends
 *                          the simulator out of range, which powers its
 *                          adapter off (and on again 5 s later)
 *   reconnect              Connect again until it works, ServicesResolved
 *                          (a link that does not resolve in 10 s is dropped
 *                          and tried again)
 *   resync, live-again     REPORT RECORDS AFTER the last stored seq; no gap
 *                          and no duplicate over every seq seen; live again
 *   others                 no other device was ever connected
 *
 * Usage: vm-central [--adapter hci0] [--timeout S] [--link-loss-timeout S]
 *                   [--no-link-loss] [-v]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gio/gio.h>

#include "wearable.h"

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

#define BLUEZ			"org.bluez"
#define ADAPTER_IFACE		"org.bluez.Adapter1"
#define DEVICE_IFACE		"org.bluez.Device1"
#define SERVICE_IFACE		"org.bluez.GattService1"
#define CHAR_IFACE		"org.bluez.GattCharacteristic1"
#define AGENT_MGR_IFACE		"org.bluez.AgentManager1"
#define AGENT_IFACE		"org.bluez.Agent1"
#define PROPS_IFACE		"org.freedesktop.DBus.Properties"
#define OM_IFACE		"org.freedesktop.DBus.ObjectManager"
#define AGENT_PATH		"/org/rehablink/vmcentral/agent"

/* ---- the profile as the central expects it ---------------------------------- */

enum role {
	R_POSTURE, R_STEPS, R_PAIN, R_HCP, R_HDATA, R_FEATURES, R_STATUS,
	R_BATTERY, R_MANUFACTURER, R_MODEL, R_SERIAL, R_HWREV, R_FWREV,
	R_SWREV, R_TIME,
};
#define ROLE_COUNT (R_TIME + 1)

struct role_info {
	const char *name;
	const char *uuid;
	const char *flags;	/* required, '+' separated */
};

static const struct role_info roles[ROLE_COUNT] = {
	[R_POSTURE] = { "posture", WB_UUID_POSTURE, "notify" },
	[R_STEPS] = { "steps", WB_UUID_STEPS, "notify" },
	[R_PAIN] = { "pain", WB_UUID_PAIN, "indicate" },
	[R_HCP] = { "history-cp", WB_UUID_HISTORY_CP, "write+indicate" },
	[R_HDATA] = { "history-data", WB_UUID_HISTORY_DATA, "notify" },
	[R_FEATURES] = { "features", WB_UUID_FEATURES, "read+notify" },
	[R_STATUS] = { "status", WB_UUID_STATUS, "read+notify" },
	[R_BATTERY] = { "battery", WB_UUID_BATTERY_LEVEL, "read" },
	[R_MANUFACTURER] = { "manufacturer", WB_UUID_MANUFACTURER, "read" },
	[R_MODEL] = { "model", WB_UUID_MODEL_NUMBER, "read" },
	[R_SERIAL] = { "serial", WB_UUID_SERIAL_NUMBER, "read" },
	[R_HWREV] = { "hardware-rev", WB_UUID_HARDWARE_REV, "read" },
	[R_FWREV] = { "firmware-rev", WB_UUID_FIRMWARE_REV, "read" },
	[R_SWREV] = { "software-rev", WB_UUID_SOFTWARE_REV, "read" },
	[R_TIME] = { "current-time", WB_UUID_CURRENT_TIME, "read+write" },
};

static const char *const services[] = {
	WB_UUID_SERVICE, WB_UUID_BATTERY_SERVICE, WB_UUID_DEVINFO_SERVICE,
	WB_UUID_CTS_SERVICE,
};

/* ---- state ------------------------------------------------------------------- */

static struct {
	GDBusConnection *bus;
	GMainContext *ctx;
	char *adapter_path;
	char *dev_path;			/* the simulator */
	char *chr_path[ROLE_COUNT];
	int64_t t0;
	bool verbose;
	unsigned int timeout_s;
	unsigned int link_loss_timeout_s;
	bool link_loss;
	unsigned int failures;

	bool connected;			/* the simulator's Connected */
	GHashTable *others;		/* other device paths seen -> name */
	GHashTable *others_connected;	/* other device paths ever connected */

	/* what arrived */
	GHashTable *seqs;		/* every seq seen, history or live */
	GHashTable *sync_seqs;		/* seqs of the running report */
	unsigned int history_records, history_batches, history_dups;
	uint32_t history_min, history_max;
	bool collecting_history;
	unsigned int live_records;	/* posture/steps/status notifications */
	unsigned int pain_records;
	unsigned int bad_values;
	struct wb_hcp_response last_rsp;
	unsigned int responses;
	unsigned int ev_disconnects;
} S;

static double now_s(void)
{
	return (double) (g_get_monotonic_time() - S.t0) / 1e6;
}

static void say(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void say(const char *fmt, ...)
{
	va_list ap;

	printf("[central %6.2fs] ", now_s());
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void step(bool ok, const char *name, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void step(bool ok, const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("[central %6.2fs] %s %s: ", now_s(), ok ? "PASS" : "FAIL", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (!ok)
		S.failures++;
}

static gboolean wake_cb(void *data)
{
	(void) data;
	return G_SOURCE_CONTINUE;
}

/* Runs the main context until pred() or timeout_ms; returns pred(). */
static bool pump_until(bool (*pred)(void *), void *data, unsigned int timeout_ms)
{
	int64_t end = g_get_monotonic_time() + (int64_t) timeout_ms * 1000;

	while (!pred(data)) {
		if (g_get_monotonic_time() >= end)
			return false;
		/* wake up at least every 50 ms to check the deadline */
		GSource *t = g_timeout_source_new(50);

		g_source_set_callback(t, wake_cb, NULL, NULL);
		g_source_attach(t, S.ctx);
		g_main_context_iteration(S.ctx, TRUE);
		g_source_destroy(t);
		g_source_unref(t);
	}
	return true;
}

static bool never(void *data)
{
	(void) data;
	return false;
}

static void pump_for(unsigned int ms)
{
	pump_until(never, NULL, ms);
}

/* ---- D-Bus calls that keep the loop running (agent, signals) --------------- */

struct call {
	bool done;
	bool abandoned;			/* the caller gave up: free on reply */
	GVariant *ret;
	GError *err;
};

static void call_ready(GObject *src, GAsyncResult *res, void *data)
{
	struct call *c = data;

	c->ret = g_dbus_connection_call_finish(G_DBUS_CONNECTION(src), res,
					       &c->err);
	c->done = true;
	if (c->abandoned) {
		g_clear_pointer(&c->ret, g_variant_unref);
		g_clear_error(&c->err);
		g_free(c);
	}
}

static bool call_done(void *data)
{
	return ((struct call *) data)->done;
}

static GVariant *call(const char *path, const char *iface, const char *method,
		      GVariant *params, const GVariantType *rtype,
		      unsigned int timeout_ms, GError **error)
{
	struct call *c = g_new0(struct call, 1);
	GVariant *ret;

	g_dbus_connection_call(S.bus, BLUEZ, path, iface, method, params, rtype,
			       G_DBUS_CALL_FLAGS_NO_AUTO_START, (int) timeout_ms,
			       NULL, call_ready, c);
	pump_until(call_done, c, timeout_ms + 5000);
	if (!c->done) {
		c->abandoned = true;
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
			    "%s.%s: no reply", iface, method);
		return NULL;
	}
	ret = c->ret;
	if (!ret && !c->err)
		g_set_error(&c->err, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "%s.%s failed", iface, method);
	if (c->err)
		g_propagate_error(error, c->err);
	g_free(c);
	return ret;
}

static bool set_prop(const char *path, const char *iface, const char *prop,
		     GVariant *v, GError **error)
{
	g_autoptr(GVariant) r = call(path, PROPS_IFACE, "Set",
				     g_variant_new("(ssv)", iface, prop, v),
				     NULL, 10000, error);
	return r != NULL;
}

static GVariant *get_prop(const char *path, const char *iface,
			  const char *prop)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GVariant) r = call(path, PROPS_IFACE, "Get",
				     g_variant_new("(ss)", iface, prop),
				     G_VARIANT_TYPE("(v)"), 10000, &err);
	GVariant *v = NULL;

	if (r)
		g_variant_get(r, "(v)", &v);
	return v;
}

static bool get_bool(const char *path, const char *iface, const char *prop)
{
	g_autoptr(GVariant) v = get_prop(path, iface, prop);

	return v && g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN) &&
	       g_variant_get_boolean(v);
}

static GVariant *managed_objects(void)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GVariant) r = call("/", OM_IFACE, "GetManagedObjects", NULL,
				     G_VARIANT_TYPE("(a{oa{sa{sv}}})"), 10000,
				     &err);

	if (!r) {
		say("GetManagedObjects: %s", err->message);
		return NULL;
	}
	return g_variant_get_child_value(r, 0);
}

static char *remote_error(const GError *err)
{
	char *name = g_dbus_error_get_remote_error(err);

	return name ? name : g_strdup("");
}

/* ---- the agent --------------------------------------------------------------- */

static const char agent_xml[] =
	"<node><interface name='org.bluez.Agent1'>"
	"<method name='Release'/>"
	"<method name='RequestPinCode'><arg type='o' direction='in'/><arg type='s' direction='out'/></method>"
	"<method name='DisplayPinCode'><arg type='o' direction='in'/><arg type='s' direction='in'/></method>"
	"<method name='RequestPasskey'><arg type='o' direction='in'/><arg type='u' direction='out'/></method>"
	"<method name='DisplayPasskey'><arg type='o' direction='in'/><arg type='u' direction='in'/><arg type='q' direction='in'/></method>"
	"<method name='RequestConfirmation'><arg type='o' direction='in'/><arg type='u' direction='in'/></method>"
	"<method name='RequestAuthorization'><arg type='o' direction='in'/></method>"
	"<method name='AuthorizeService'><arg type='o' direction='in'/><arg type='s' direction='in'/></method>"
	"<method name='Cancel'/>"
	"</interface></node>";

static void agent_method(GDBusConnection *bus, const char *sender,
			 const char *path, const char *iface,
			 const char *method, GVariant *params,
			 GDBusMethodInvocation *inv, void *data)
{
	(void) bus; (void) sender; (void) path; (void) iface; (void) data;
	g_autofree char *args = g_variant_print(params, FALSE);

	say("agent: %s %s", method, args);
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

static bool agent_register(GError **error)
{
	g_autoptr(GDBusNodeInfo) node = g_dbus_node_info_new_for_xml(agent_xml,
								     error);
	g_autoptr(GVariant) r = NULL;

	if (!node)
		return false;
	if (!g_dbus_connection_register_object(S.bus, AGENT_PATH,
					       node->interfaces[0],
					       &agent_vtable, NULL, NULL, error))
		return false;
	r = call("/org/bluez", AGENT_MGR_IFACE, "RegisterAgent",
		 g_variant_new("(os)", AGENT_PATH, "NoInputNoOutput"), NULL,
		 10000, error);
	if (!r)
		return false;
	g_clear_pointer(&r, g_variant_unref);
	r = call("/org/bluez", AGENT_MGR_IFACE, "RequestDefaultAgent",
		 g_variant_new("(o)", AGENT_PATH), NULL, 10000, error);
	return r != NULL;
}

/* ---- values arriving ----------------------------------------------------------- */

static int role_of_path(const char *path)
{
	for (int r = 0; r < ROLE_COUNT; r++)
		if (S.chr_path[r] && !strcmp(S.chr_path[r], path))
			return r;
	return -1;
}

static void seq_seen(uint32_t seq, bool history)
{
	gpointer key = GUINT_TO_POINTER(seq);

	if (history) {
		/* a live preview of the record before is no duplicate; the
		 * same seq twice in one report is */
		if (!g_hash_table_add(S.sync_seqs, key))
			S.history_dups++;
		if (!S.history_records || wb_seq_after(S.history_min, seq))
			S.history_min = seq;
		if (!S.history_records || wb_seq_after(seq, S.history_max))
			S.history_max = seq;
		S.history_records++;
	}
	g_hash_table_add(S.seqs, key);
}

static void got_batch(int role, const uint8_t *val, size_t len)
{
	struct wb_batch_iter it;
	struct wb_record rec;
	struct wb_err e = { 0 };
	int rc;

	rc = wb_batch_init(&it, val, len, &e);
	if (rc < 0)
		goto bad;
	while ((rc = wb_batch_next(&it, &rec, &e)) == 1) {
		bool history = role == R_HDATA;

		seq_seen(rec.seq, history);
		if (role == R_PAIN) {
			S.pain_records++;
			say("pain indication: seq %" PRIu32 " score %u flags 0x%04x",
			    rec.seq, rec.u.pain.score, rec.u.pain.flags);
		} else if (!history) {
			S.live_records++;
			if (S.verbose || S.live_records <= 3)
				say("live %s: seq %" PRIu32 " time %" PRIu32
				    " (%s)", wb_record_type_name(rec.type),
				    rec.seq, rec.time,
				    wb_time_quality_name(rec.time_quality));
		}
	}
	if (rc == 0) {
		if (role == R_HDATA)
			S.history_batches++;
		return;
	}
bad:
	S.bad_values++;
	say("bad value on %s: %s at byte %zu (%s)", roles[role].name,
	    wb_strerror(rc), e.offset, e.field ? e.field : "?");
}

static void got_value(int role, const uint8_t *val, size_t len)
{
	struct wb_hcp_response rsp;
	struct wb_err e = { 0 };
	int rc;

	switch ((enum role) role) {
	case R_POSTURE:
	case R_STEPS:
	case R_PAIN:
	case R_HDATA:
	case R_STATUS:
		got_batch(role, val, len);
		return;
	case R_HCP:
		rc = wb_hcp_response_decode(val, len, &rsp, &e);
		if (rc < 0) {
			S.bad_values++;
			say("bad control point response: %s", wb_strerror(rc));
			return;
		}
		S.last_rsp = rsp;
		S.responses++;
		if (rsp.opcode == WB_HCP_RESPONSE_CODE)
			say("control point: RESPONSE_CODE request 0x%02x %s "
			    "count %" PRIu32 " last seq %" PRIu32, rsp.request,
			    wb_hcp_code_name(rsp.code), rsp.count, rsp.last_seq);
		else
			say("control point: COUNT_RESPONSE %" PRIu32, rsp.count);
		return;
	case R_FEATURES:
	case R_BATTERY:
	case R_MANUFACTURER:
	case R_MODEL:
	case R_SERIAL:
	case R_HWREV:
	case R_FWREV:
	case R_SWREV:
	case R_TIME:
		if (S.verbose)
			say("notification on %s (%zu bytes)", roles[role].name,
			    len);
		return;
	}
}

static void props_changed_cb(GDBusConnection *bus, const char *sender,
			     const char *path, const char *iface,
			     const char *signal, GVariant *params, void *data)
{
	const char *which;
	g_autoptr(GVariant) changed = NULL;
	g_autoptr(GVariant) value = NULL;
	gboolean b;

	(void) bus; (void) sender; (void) iface; (void) signal; (void) data;
	if (!g_variant_is_of_type(params, G_VARIANT_TYPE("(sa{sv}as)")))
		return;
	g_variant_get(params, "(&s@a{sv}*)", &which, &changed, NULL);
	if (!strcmp(which, CHAR_IFACE)) {
		int role = role_of_path(path);
		const uint8_t *val;
		gsize len;

		value = g_variant_lookup_value(changed, "Value",
					       G_VARIANT_TYPE_BYTESTRING);
		if (role < 0 || !value)
			return;
		val = g_variant_get_fixed_array(value, &len, 1);
		got_value(role, val, len);
	} else if (!strcmp(which, DEVICE_IFACE) &&
		   g_variant_lookup(changed, "Connected", "b", &b)) {
		/* only our adapter's devices: the peripheral's adapter in
		 * the same bluetoothd has one for us */
		if (!g_str_has_prefix(path, S.adapter_path) ||
		    path[strlen(S.adapter_path)] != '/')
			return;
		if (S.dev_path && !strcmp(path, S.dev_path)) {
			if (S.connected && !b)
				S.ev_disconnects++;
			S.connected = b;
			say("simulator %s", b ? "connected" : "disconnected");
		} else if (b) {
			g_hash_table_add(S.others_connected, g_strdup(path));
			say("OTHER DEVICE CONNECTED: %s", path);
		}
	}
}

/* ---- steps --------------------------------------------------------------------- */

static bool has_uuid(GVariant *dev, const char *uuid)
{
	g_autofree const char **uuids = NULL;

	if (!g_variant_lookup(dev, "UUIDs", "^a&s", &uuids))
		return false;
	for (const char **u = uuids; *u; u++)
		if (!g_ascii_strcasecmp(*u, uuid))
			return true;
	return false;
}

static bool find_sim(void)
{
	g_autoptr(GVariant) objs = managed_objects();
	g_autofree char *prefix = g_strdup_printf("%s/", S.adapter_path);
	GVariantIter it;
	const char *path;
	GVariant *ifaces;

	if (!objs)
		return false;
	g_variant_iter_init(&it, objs);
	while (g_variant_iter_loop(&it, "{&o@a{sa{sv}}}", &path, &ifaces)) {
		g_autoptr(GVariant) dev = NULL;
		const char *name = NULL, *addr = "?";

		if (!g_str_has_prefix(path, prefix))
			continue;
		dev = g_variant_lookup_value(ifaces, DEVICE_IFACE,
					     G_VARIANT_TYPE_VARDICT);
		if (!dev)
			continue;
		g_variant_lookup(dev, "Name", "&s", &name);
		g_variant_lookup(dev, "Address", "&s", &addr);
		if (has_uuid(dev, WB_UUID_SERVICE)) {
			if (!S.dev_path) {
				S.dev_path = g_strdup(path);
				say("found %s name '%s'", addr,
				    name ? name : "");
			}
		} else if (!g_hash_table_contains(S.others, path)) {
			g_hash_table_insert(S.others, g_strdup(path),
				g_strdup_printf("%s '%s'", addr,
						name ? name : ""));
			say("other device %s name '%s' (not ours: ignored)",
			    addr, name ? name : "");
		}
	}
	return S.dev_path != NULL;
}

static bool discover(void)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GVariant) r = NULL;
	GVariantBuilder f;
	int64_t end = g_get_monotonic_time() + (int64_t) S.timeout_s * 1000000;
	unsigned int restarts = 0;

	g_variant_builder_init(&f, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&f, "{sv}", "Transport",
			      g_variant_new_string("le"));
	r = call(S.adapter_path, ADAPTER_IFACE, "SetDiscoveryFilter",
		 g_variant_new("(a{sv})", &f), NULL, 10000, &err);
	if (!r) {
		step(false, "discover", "SetDiscoveryFilter: %s", err->message);
		return false;
	}
	for (;;) {
		g_clear_pointer(&r, g_variant_unref);
		g_clear_error(&err);
		r = call(S.adapter_path, ADAPTER_IFACE, "StartDiscovery", NULL,
			 NULL, 10000, &err);
		if (!r)
			say("StartDiscovery: %s", err->message);
		for (int i = 0; i < 3; i++) {	/* 1.5 s a scan */
			pump_for(500);
			if (find_sim())
				goto found;
		}
		if (g_get_monotonic_time() > end)
			break;
		g_clear_pointer(&r, g_variant_unref);
		g_clear_error(&err);
		r = call(S.adapter_path, ADAPTER_IFACE, "StopDiscovery", NULL,
			 NULL, 10000, &err);
		restarts++;
	}
	step(false, "discover", "no device with the rehablink service in %us "
	     "(%u restarts)", S.timeout_s, restarts);
	return false;
found:
	/* a little longer, so that a neighbour shows up too */
	pump_for(1000);
	find_sim();
	g_clear_pointer(&r, g_variant_unref);
	g_clear_error(&err);
	r = call(S.adapter_path, ADAPTER_IFACE, "StopDiscovery", NULL, NULL,
		 10000, &err);
	step(true, "discover", "%s after %u discovery restarts; %u other "
	     "device(s) seen", S.dev_path, restarts,
	     g_hash_table_size(S.others));
	return true;
}

static bool resolved(void *data)
{
	(void) data;
	return S.connected && get_bool(S.dev_path, DEVICE_IFACE,
				       "ServicesResolved");
}

static bool resolved_or_gone(void *data)
{
	(void) data;
	return !S.connected || resolved(NULL);
}

static bool disconnected(void *data)
{
	(void) data;
	return !S.connected;
}

/*
 * Connects (or finds the link up: Pair leaves it up, and BlueZ reconnects a
 * bonded device by itself) and waits for ServicesResolved. A link that
 * does not resolve in 10 s is dropped and tried again, as a gateway must:
 * btvirt keeps a link whose peer controller was reset (it has no
 * supervision timeout), so a connection made while the peripheral powers
 * off stays up, silent, for ever.
 */
static bool connect_sim(const char *name, unsigned int total_s)
{
	int64_t t = g_get_monotonic_time();
	int64_t end = t + (int64_t) total_s * 1000000;
	unsigned int attempts = 0, drops = 0;

	for (;;) {
		g_autoptr(GError) err = NULL;
		g_autoptr(GVariant) r = NULL;

		if (g_get_monotonic_time() > end) {
			step(false, name, "not connected and resolved in %us "
			     "(%u Connect calls, %u stale links dropped)",
			     total_s, attempts, drops);
			return false;
		}
		S.connected = get_bool(S.dev_path, DEVICE_IFACE, "Connected");
		if (S.connected) {
			if (pump_until(resolved_or_gone, NULL, 10000) &&
			    S.connected)
				break;
			if (!S.connected)
				continue;
			say("connected but services not resolved in 10s: "
			    "disconnecting");
			drops++;
			r = call(S.dev_path, DEVICE_IFACE, "Disconnect", NULL,
				 NULL, 10000, &err);
			pump_until(disconnected, NULL, 5000);
			continue;
		}
		attempts++;
		r = call(S.dev_path, DEVICE_IFACE, "Connect", NULL, NULL, 15000,
			 &err);
		if (!r) {
			say("Connect: %s", err->message);
			pump_for(1000);
		}
	}
	step(true, name, "connected and resolved in %.2fs (%u Connect "
	     "call%s, %u stale link%s dropped)",
	     (double) (g_get_monotonic_time() - t) / 1e6, attempts,
	     attempts == 1 ? "" : "s", drops, drops == 1 ? "" : "s");
	return true;
}

static bool pair(void)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GVariant) r = NULL;
	int64_t t = g_get_monotonic_time();

	if (get_bool(S.dev_path, DEVICE_IFACE, "Paired")) {
		/* bonded before (a bluetoothd restart keeps the keys): a
		 * gateway connects, it does not pair again */
		step(true, "pair", "already bonded");
		return true;
	}
	r = call(S.dev_path, DEVICE_IFACE, "Pair", NULL, NULL, 30000, &err);
	if (!r) {
		g_autofree char *name = remote_error(err);

		if (strcmp(name, "org.bluez.Error.AlreadyExists") != 0) {
			step(false, "pair", "%s", err->message);
			return false;
		}
	}
	if (!get_bool(S.dev_path, DEVICE_IFACE, "Paired")) {
		step(false, "pair", "Pair returned but Paired is false");
		return false;
	}
	step(true, "pair", "bonded (Just Works, NoInputNoOutput) in %.2fs",
	     (double) (g_get_monotonic_time() - t) / 1e6);
	return true;
}

static bool flags_have(GVariant *flags, const char *want)
{
	g_auto(GStrv) need = g_strsplit(want, "+", -1);
	g_autofree const char **have = g_variant_get_strv(flags, NULL);

	for (char **n = need; *n; n++) {
		bool ok = false;

		for (const char **h = have; *h && !ok; h++)
			/* the central sees "read"; "encrypt-read" would also do */
			ok = !strcmp(*h, *n) || g_str_has_suffix(*h, *n);
		if (!ok)
			return false;
	}
	return true;
}

static bool layout(void)
{
	g_autoptr(GVariant) objs = managed_objects();
	g_autofree char *prefix = g_strdup_printf("%s/", S.dev_path);
	bool svc_ok[ARRAY_SIZE(services)] = { false };
	GString *missing = g_string_new(NULL);
	g_autofree char *miss = NULL;
	GVariantIter it;
	const char *path;
	GVariant *ifaces;
	unsigned int nchr = 0;

	for (int r = 0; r < ROLE_COUNT; r++)
		g_clear_pointer(&S.chr_path[r], g_free);
	if (!objs) {
		g_string_free(missing, TRUE);
		step(false, "layout", "GetManagedObjects failed");
		return false;
	}
	g_variant_iter_init(&it, objs);
	while (g_variant_iter_loop(&it, "{&o@a{sa{sv}}}", &path, &ifaces)) {
		g_autoptr(GVariant) svc = NULL;
		g_autoptr(GVariant) chr = NULL;
		g_autoptr(GVariant) flags = NULL;
		const char *uuid = NULL;

		if (!g_str_has_prefix(path, prefix))
			continue;
		svc = g_variant_lookup_value(ifaces, SERVICE_IFACE,
					     G_VARIANT_TYPE_VARDICT);
		if (svc && g_variant_lookup(svc, "UUID", "&s", &uuid))
			for (size_t i = 0; i < ARRAY_SIZE(services); i++)
				if (!g_ascii_strcasecmp(uuid, services[i]))
					svc_ok[i] = true;
		chr = g_variant_lookup_value(ifaces, CHAR_IFACE,
					     G_VARIANT_TYPE_VARDICT);
		if (!chr || !g_variant_lookup(chr, "UUID", "&s", &uuid))
			continue;
		flags = g_variant_lookup_value(chr, "Flags",
					       G_VARIANT_TYPE_STRING_ARRAY);
		for (int r = 0; r < ROLE_COUNT; r++) {
			if (g_ascii_strcasecmp(uuid, roles[r].uuid))
				continue;
			if (!flags || !flags_have(flags, roles[r].flags)) {
				g_autofree char *f = flags ?
					g_variant_print(flags, FALSE) : NULL;

				say("%s: flags %s lack %s", roles[r].name,
				    f ? f : "none", roles[r].flags);
				continue;
			}
			S.chr_path[r] = g_strdup(path);
			nchr++;
			if (S.verbose) {
				g_autofree char *f = g_variant_print(flags,
								     FALSE);
				say("%-13s %s %s", roles[r].name, path, f);
			}
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(services); i++)
		if (!svc_ok[i])
			g_string_append_printf(missing, " service %s",
					       services[i]);
	for (int r = 0; r < ROLE_COUNT; r++)
		if (!S.chr_path[r])
			g_string_append_printf(missing, " %s", roles[r].name);
	miss = g_string_free(missing, FALSE);
	if (*miss) {
		step(false, "layout", "missing or wrong:%s", miss);
		return false;
	}
	step(true, "layout", "4 services, %u characteristics found by UUID "
	     "with their flags", nchr);
	return true;
}

static bool read_char(int role, uint8_t *buf, size_t size, size_t *ret_len,
		      GError **error)
{
	g_autoptr(GVariant) r = call(S.chr_path[role], CHAR_IFACE, "ReadValue",
				     g_variant_new("(a{sv})", NULL),
				     G_VARIANT_TYPE("(ay)"), 15000, error);
	g_autoptr(GVariant) v = NULL;
	const uint8_t *val;
	gsize len;

	if (!r)
		return false;
	v = g_variant_get_child_value(r, 0);
	val = g_variant_get_fixed_array(v, &len, 1);
	*ret_len = MIN(len, size);
	memcpy(buf, val, *ret_len);
	return true;
}

static bool write_char(int role, const uint8_t *val, size_t len,
		       GError **error)
{
	GVariantBuilder o;
	g_autoptr(GVariant) r = NULL;

	g_variant_builder_init(&o, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&o, "{sv}", "type",
			      g_variant_new_string("request"));
	r = call(S.chr_path[role], CHAR_IFACE, "WriteValue",
		 g_variant_new("(@aya{sv})",
			       g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE,
							 val, len, 1), &o),
		 NULL, 15000, error);
	return r != NULL;
}

static bool write_time(void)
{
	g_autoptr(GError) err = NULL;
	struct wb_current_time ct;
	uint8_t buf[WB_CURRENT_TIME_LEN];
	ssize_t n;

	if (wb_current_time_from_unix((int64_t) time(NULL), &ct) < 0 ||
	    (n = wb_current_time_encode(&ct, buf, sizeof(buf))) < 0) {
		step(false, "time", "cannot encode the time");
		return false;
	}
	if (!write_char(R_TIME, buf, (size_t) n, &err)) {
		step(false, "time", "%s", err->message);
		return false;
	}
	step(true, "time", "Current Time written: %04u-%02u-%02u %02u:%02u:%02u UTC",
	     ct.year, ct.month, ct.day, ct.hours, ct.minutes, ct.seconds);
	return true;
}

static bool read_features(struct wb_features *f, const char *name)
{
	g_autoptr(GError) err = NULL;
	uint8_t buf[WB_ATT_MAX_VALUE];
	size_t len;
	int rc;

	if (!read_char(R_FEATURES, buf, sizeof(buf), &len, &err)) {
		step(false, name, "%s", err->message);
		return false;
	}
	rc = wb_features_decode(buf, len, f, NULL);
	if (rc < 0) {
		step(false, name, "%s", wb_strerror(rc));
		return false;
	}
	step(true, name, "protocol %u flags 0x%02x capacity %" PRIu32
	     " stored %" PRIu32 " seq %" PRIu32 "..%" PRIu32,
	     f->protocol_version, f->flags, f->capacity, f->stored,
	     f->first_seq, f->last_seq);
	return true;
}

static bool read_battery_devinfo(void)
{
	static const int strs[] = { R_MANUFACTURER, R_MODEL, R_SERIAL, R_HWREV,
				    R_FWREV, R_SWREV };
	g_autoptr(GError) err = NULL;
	uint8_t buf[WB_ATT_MAX_VALUE];
	char s[WB_DEVINFO_MAX + 1];
	GString *info = g_string_new(NULL);
	g_autofree char *infos = NULL;
	size_t len;
	uint8_t pct;
	int rc = 0;

	if (!read_char(R_BATTERY, buf, sizeof(buf), &len, &err) ||
	    (rc = wb_battery_decode(buf, len, &pct, NULL)) < 0) {
		step(false, "battery", "%s", err ? err->message : wb_strerror(rc));
		g_string_free(info, TRUE);
		return false;
	}
	step(true, "battery", "%u%%", pct);
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++) {
		g_clear_error(&err);
		if (!read_char(strs[i], buf, sizeof(buf), &len, &err) ||
		    (rc = wb_devinfo_string_decode(buf, len, s, sizeof(s),
						   NULL)) < 0) {
			step(false, "devinfo", "%s: %s", roles[strs[i]].name,
			     err ? err->message : wb_strerror(rc));
			g_string_free(info, TRUE);
			return false;
		}
		g_string_append_printf(info, "%s%s='%s'", i ? " " : "",
				       roles[strs[i]].name, s);
	}
	infos = g_string_free(info, FALSE);
	step(true, "devinfo", "%s", infos);
	return true;
}

static bool subscribe(void)
{
	static const int subs[] = { R_POSTURE, R_STEPS, R_PAIN, R_STATUS,
				    R_HCP, R_HDATA };
	GString *done = g_string_new(NULL);
	g_autofree char *dones = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		g_autoptr(GError) err = NULL;
		g_autoptr(GVariant) r = call(S.chr_path[subs[i]], CHAR_IFACE,
					     "StartNotify", NULL, NULL, 15000,
					     &err);

		if (!r) {
			g_autofree char *name = remote_error(err);

			/* BlueZ keeps a session across a reconnection */
			if (strcmp(name, "org.bluez.Error.InProgress") &&
			    strcmp(name, "org.bluez.Error.NotPermitted")) {
				step(false, "subscribe", "%s: %s",
				     roles[subs[i]].name, err->message);
				g_string_free(done, TRUE);
				return false;
			}
		}
		g_string_append_printf(done, " %s", roles[subs[i]].name);
	}
	dones = g_string_free(done, FALSE);
	pump_for(200);
	step(true, "subscribe", "StartNotify on%s", dones);
	return true;
}

struct rsp_wait {
	unsigned int responses;		/* S.responses before the request */
};

static bool rsp_arrived(void *data)
{
	struct rsp_wait *w = data;

	return S.responses > w->responses &&
	       S.last_rsp.opcode == WB_HCP_RESPONSE_CODE;
}

struct count_wait {
	unsigned int want;
};

static bool history_complete(void *data)
{
	struct count_wait *w = data;

	return S.history_records >= w->want;
}

/* REPORT RECORDS (ALL or AFTER seq); the records carried end up in S. */
static bool history_sync(const char *name, bool all, uint32_t after,
			 uint32_t *ret_last)
{
	struct wb_hcp_request req = { .opcode = WB_HCP_REPORT_RECORDS,
				      .filter = all ? WB_HCP_ALL :
						      WB_HCP_AFTER_SEQ,
				      .seq = all ? 0 : after };
	struct rsp_wait w = { S.responses };
	struct count_wait cw;
	g_autoptr(GError) err = NULL;
	uint8_t buf[8];
	ssize_t n = wb_hcp_request_encode(&req, buf, sizeof(buf));
	int64_t t = g_get_monotonic_time();
	uint32_t expect;

	S.history_records = S.history_batches = S.history_dups = 0;
	g_hash_table_remove_all(S.sync_seqs);
	S.collecting_history = true;
	if (n < 0 || !write_char(R_HCP, buf, (size_t) n, &err)) {
		step(false, name, "write: %s", err ? err->message : "encode");
		return false;
	}
	if (!pump_until(rsp_arrived, &w, 60000)) {
		step(false, name, "no RESPONSE_CODE in 60s (%u records in %u "
		     "batches so far)", S.history_records, S.history_batches);
		return false;
	}
	/* notifications and the indication travel separate queues (and,
	 * with EATT, channels): allow the last batches to catch up */
	cw.want = S.last_rsp.count;
	pump_until(history_complete, &cw, 5000);
	S.collecting_history = false;
	if (S.last_rsp.request != WB_HCP_REPORT_RECORDS ||
	    S.last_rsp.code != WB_HCP_SUCCESS) {
		step(false, name, "response: request 0x%02x code %s",
		     S.last_rsp.request, wb_hcp_code_name(S.last_rsp.code));
		return false;
	}
	expect = wb_seq_distance(S.history_max, S.history_min) + 1;
	if (S.history_records != S.last_rsp.count || S.history_dups ||
	    S.history_records != expect ||
	    S.history_max != S.last_rsp.last_seq ||
	    (!all && S.history_min != after + 1)) {
		step(false, name, "%u records (seq %" PRIu32 "..%" PRIu32
		     ", %u duplicates) but the response says %" PRIu32
		     " up to %" PRIu32, S.history_records, S.history_min,
		     S.history_max, S.history_dups, S.last_rsp.count,
		     S.last_rsp.last_seq);
		return false;
	}
	*ret_last = S.last_rsp.last_seq;
	step(true, name, "%u records seq %" PRIu32 "..%" PRIu32 " in %u "
	     "History data batches, RESPONSE_CODE success, %.2fs",
	     S.history_records, S.history_min, S.history_max,
	     S.history_batches, (double) (g_get_monotonic_time() - t) / 1e6);
	return true;
}

static bool delete_upto(const char *name, uint32_t last)
{
	struct wb_hcp_request req = { .opcode = WB_HCP_DELETE_RECORDS,
				      .filter = WB_HCP_UP_TO_SEQ,
				      .seq = last };
	struct rsp_wait w = { S.responses };
	g_autoptr(GError) err = NULL;
	uint8_t buf[8];
	ssize_t n = wb_hcp_request_encode(&req, buf, sizeof(buf));

	if (n < 0 || !write_char(R_HCP, buf, (size_t) n, &err)) {
		step(false, name, "write: %s", err ? err->message : "encode");
		return false;
	}
	if (!pump_until(rsp_arrived, &w, 30000)) {
		step(false, name, "no RESPONSE_CODE in 30s");
		return false;
	}
	if (S.last_rsp.request != WB_HCP_DELETE_RECORDS ||
	    S.last_rsp.code != WB_HCP_SUCCESS) {
		step(false, name, "response: request 0x%02x code %s",
		     S.last_rsp.request, wb_hcp_code_name(S.last_rsp.code));
		return false;
	}
	step(true, name, "records up to seq %" PRIu32 " deleted (%" PRIu32
	     " records)", last, S.last_rsp.count);
	return true;
}

struct live_wait {
	unsigned int live, pain;
};

static bool live_arrived(void *data)
{
	struct live_wait *w = data;

	return S.live_records >= w->live && S.pain_records >= w->pain;
}

static bool wait_live(const char *name, unsigned int n, unsigned int pain,
		      unsigned int timeout_s)
{
	struct live_wait w = { S.live_records + n, S.pain_records + pain };
	int64_t t = g_get_monotonic_time();

	if (!pump_until(live_arrived, &w, timeout_s * 1000)) {
		step(false, name, "got %u of %u live records and %u of %u pain "
		     "reports in %us", S.live_records - (w.live - n), n,
		     S.pain_records - (w.pain - pain), pain, timeout_s);
		return false;
	}
	if (pain)
		step(true, name, "a pain report by indication in %.2fs",
		     (double) (g_get_monotonic_time() - t) / 1e6);
	else
		step(true, name, "%u live record(s) by notification in %.2fs",
		     n, (double) (g_get_monotonic_time() - t) / 1e6);
	return true;
}

static bool no_gaps(uint32_t from, uint32_t to)
{
	unsigned int missing = 0;
	uint32_t first_missing = 0;

	for (uint32_t s = from; s != to + 1; s++)
		if (!g_hash_table_contains(S.seqs, GUINT_TO_POINTER(s))) {
			if (!missing++)
				first_missing = s;
		}
	if (missing) {
		step(false, "no-gap", "%u seq(s) never received between %" PRIu32
		     " and %" PRIu32 ", first %" PRIu32, missing, from, to,
		     first_missing);
		return false;
	}
	step(true, "no-gap", "every seq %" PRIu32 "..%" PRIu32 " received "
	     "(history and live, deduplicated by seq)", from, to);
	return true;
}

static bool others_ignored(void)
{
	GHashTableIter it;
	const char *path, *desc;
	GString *names = g_string_new(NULL);
	g_autofree char *all = NULL;
	unsigned int n = 0;

	g_hash_table_iter_init(&it, S.others);
	while (g_hash_table_iter_next(&it, (void **) &path, (void **) &desc)) {
		if (get_bool(path, DEVICE_IFACE, "Connected"))
			g_hash_table_add(S.others_connected, g_strdup(path));
		g_string_append_printf(names, "%s%s", n++ ? ", " : "", desc);
	}
	all = g_string_free(names, FALSE);
	if (g_hash_table_size(S.others_connected)) {
		step(false, "others", "%u other device(s) were connected",
		     g_hash_table_size(S.others_connected));
		return false;
	}
	step(true, "others", "%u other device(s) seen, never connected%s%s",
	     n, n ? ": " : "", all);
	return true;
}

/* ---- main ---------------------------------------------------------------------- */

static bool run(void)
{
	g_autoptr(GError) err = NULL;
	struct wb_features f;
	uint32_t first_seq, last = 0, last2 = 0;

	if (!get_bool(S.adapter_path, ADAPTER_IFACE, "Powered") &&
	    !set_prop(S.adapter_path, ADAPTER_IFACE, "Powered",
		      g_variant_new_boolean(TRUE), &err)) {
		step(false, "adapter", "%s: %s", S.adapter_path, err->message);
		return false;
	}
	step(true, "adapter", "%s powered", S.adapter_path);
	if (!agent_register(&err)) {
		step(false, "agent", "%s", err->message);
		return false;
	}
	step(true, "agent", "NoInputNoOutput agent is the default");

	if (!discover() || !pair() || !connect_sim("connect", 30) ||
	    !layout() || !write_time() || !read_features(&f, "features") ||
	    !read_battery_devinfo() || !subscribe())
		return false;
	first_seq = f.first_seq;
	if (!history_sync("history", true, 0, &last) ||
	    !delete_upto("delete", last))
		return false;
	if (!wait_live("live", 3, 0, 30) || !wait_live("pain", 0, 1, 40))
		return false;

	if (S.link_loss) {
		int64_t t = g_get_monotonic_time();

		say("waiting for the peripheral to drop the link");
		if (!pump_until(disconnected, NULL,
				S.link_loss_timeout_s * 1000)) {
			step(false, "link-loss", "still connected after %us",
			     S.link_loss_timeout_s);
			return false;
		}
		step(true, "link-loss", "link dropped after %.2fs",
		     (double) (g_get_monotonic_time() - t) / 1e6);
		if (!connect_sim("reconnect", 60) || !layout() ||
		    !read_features(&f, "features-again") || !subscribe() ||
		    !history_sync("resync", false, last, &last2) ||
		    !delete_upto("delete-again", last2) ||
		    !wait_live("live-again", 2, 0, 30))
			return false;
	}
	if (!no_gaps(first_seq, S.link_loss ? last2 : last))
		return false;
	if (S.bad_values) {
		step(false, "values", "%u values did not decode", S.bad_values);
		return false;
	}
	return others_ignored();
}

int main(int argc, char **argv)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GOptionContext) oc = NULL;
	g_autofree char *adapter = NULL;
	gint timeout = 45, ll_timeout = 60;
	gboolean no_link_loss = FALSE, verbose = FALSE;
	GOptionEntry entries[] = {
		{ "adapter", 'a', 0, G_OPTION_ARG_STRING, &adapter,
		  "central adapter (hci0)", "NAME" },
		{ "timeout", 't', 0, G_OPTION_ARG_INT, &timeout,
		  "discovery timeout, s (45)", "S" },
		{ "link-loss-timeout", 0, 0, G_OPTION_ARG_INT, &ll_timeout,
		  "how long to wait for the link loss, s (60)", "S" },
		{ "no-link-loss", 0, 0, G_OPTION_ARG_NONE, &no_link_loss,
		  "skip the link loss and reconnection steps", NULL },
		{ "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose,
		  "print every value", NULL },
		G_OPTION_ENTRY_NULL
	};
	bool ok;

	oc = g_option_context_new("- check rehablink-sim over real BlueZ");
	g_option_context_add_main_entries(oc, entries, NULL);
	if (!g_option_context_parse(oc, &argc, &argv, &err)) {
		g_printerr("vm-central: %s\n", err->message);
		return 2;
	}
	S.t0 = g_get_monotonic_time();
	S.ctx = g_main_context_default();
	S.adapter_path = g_strdup_printf("/org/bluez/%s",
					 adapter ? adapter : "hci0");
	S.timeout_s = timeout > 0 ? (unsigned int) timeout : 45;
	S.link_loss_timeout_s = ll_timeout > 0 ? (unsigned int) ll_timeout : 60;
	S.link_loss = !no_link_loss;
	S.verbose = verbose;
	S.others = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	S.others_connected = g_hash_table_new_full(g_str_hash, g_str_equal,
						   g_free, NULL);
	S.seqs = g_hash_table_new(NULL, NULL);
	S.sync_seqs = g_hash_table_new(NULL, NULL);

	S.bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &err);
	if (!S.bus) {
		step(false, "bus", "%s", err->message);
		puts("RESULT: FAIL");
		return 1;
	}
	g_dbus_connection_signal_subscribe(S.bus, BLUEZ, PROPS_IFACE,
					   "PropertiesChanged", NULL, NULL,
					   G_DBUS_SIGNAL_FLAGS_NONE,
					   props_changed_cb, NULL, NULL);
	ok = run() && S.failures == 0;
	if (S.dev_path && S.connected) {
		g_autoptr(GError) e2 = NULL;
		g_autoptr(GVariant) r = NULL;

		r = call(S.dev_path, DEVICE_IFACE, "Disconnect", NULL, NULL,
			 10000, &e2);
		if (!r)
			say("Disconnect: %s", e2->message);
	}
	say("%u live records, %u pain reports, %u seqs seen in all",
	    S.live_records, S.pain_records, g_hash_table_size(S.seqs));
	printf("RESULT: %s\n", ok ? "PASS" : "FAIL");
	fflush(stdout);
	return ok ? 0 : 1;
}
