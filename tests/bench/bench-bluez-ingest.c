/* SPDX-License-Identifier: MIT */
/*
 * Notifications ingested through the gateway's BlueZ adapter (GwBluez,
 * gateway/bluez.c), to set against the D-Bus ceiling of
 * bench-dbus-ceiling measured in the same run: the same 20-byte
 * PropertiesChanged stream, but received by GwBluez's ObjectManager client
 * and delivered through its value() op, as the gateway gets it.
 *
 * A child process (forked before anything touches GDBus) plays a minimal
 * bluetoothd on the bus in DBUS_SYSTEM_BUS_ADDRESS: it owns org.bluez,
 * answers GetManagedObjects with one powered adapter, one connected device
 * with services resolved and the posture characteristic, accepts any other
 * call, and on a byte from the parent emits the notifications.
 *
 * Prints "bluez_ingest_per_s <n>".
 */
#include <gio/gio.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bluez.h"
#include "wearable.h"

#define ADAPTER "/org/bluez/hci0"
#define DEVICE ADAPTER "/dev_AA_BB_CC_DD_EE_01"
#define SERVICE DEVICE "/service000c"
#define CHAR SERVICE "/char000d"

static const char introspection[] =
	"<node>"
	" <interface name='org.freedesktop.DBus.ObjectManager'>"
	"  <method name='GetManagedObjects'>"
	"   <arg name='objects' type='a{oa{sa{sv}}}' direction='out'/>"
	"  </method>"
	" </interface>"
	"</node>";

static GVariant *managed_objects(void)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a{oa{sa{sv}}}"));
	g_variant_builder_add_parsed(&b, "{%o, {'org.bluez.Adapter1': {"
		"'Address': <'00:AA:01:00:00:00'>, 'Name': <'bench'>, 'Alias': <'bench'>,"
		"'Powered': <true>, 'Discovering': <false>}}}", ADAPTER);
	g_variant_builder_add_parsed(&b, "{%o, {'org.bluez.Device1': {"
		"'Address': <'AA:BB:CC:DD:EE:01'>, 'AddressType': <'random'>,"
		"'Adapter': <objectpath %o>, 'Connected': <true>, 'ServicesResolved': <true>,"
		"'Paired': <true>, 'Bonded': <true>, 'Trusted': <true>, 'RSSI': <int16 -60>,"
		"'UUIDs': <[%s]>}}}", DEVICE, ADAPTER, WB_UUID_SERVICE);
	g_variant_builder_add_parsed(&b, "{%o, {'org.bluez.GattService1': {"
		"'UUID': <%s>, 'Device': <objectpath %o>, 'Primary': <true>}}}",
		SERVICE, WB_UUID_SERVICE, DEVICE);
	g_variant_builder_add_parsed(&b, "{%o, {'org.bluez.GattCharacteristic1': {"
		"'UUID': <%s>, 'Service': <objectpath %o>, 'Value': <@ay []>,"
		"'Notifying': <true>, 'Flags': <['notify']>}}}",
		CHAR, WB_UUID_POSTURE, SERVICE);
	return g_variant_builder_end(&b);
}

static void method_cb(GDBusConnection *c, const char *sender, const char *path,
		      const char *iface, const char *method, GVariant *params,
		      GDBusMethodInvocation *inv, gpointer user_data)
{
	(void) c; (void) sender; (void) path; (void) iface; (void) params;
	(void) user_data;
	if (g_strcmp0(method, "GetManagedObjects") == 0)
		g_dbus_method_invocation_return_value(inv,
			g_variant_new_tuple((GVariant *[]) { managed_objects() }, 1));
	else
		g_dbus_method_invocation_return_value(inv, NULL);
}

static guint64 total;
static int go_fd;
static GMainLoop *child_loop;

static gboolean emit_cb(GIOChannel *ch, GIOCondition cond, gpointer user_data)
{
	GDBusConnection *c = user_data;
	guint8 val[20] = { 1, 1 };
	char go;

	(void) ch; (void) cond;
	if (read(go_fd, &go, 1) != 1) {
		g_main_loop_quit(child_loop);
		return G_SOURCE_REMOVE;
	}
	for (guint64 i = 0; i < total; i++) {
		GVariantBuilder b;

		val[2] = (guint8) i;
		g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
		g_variant_builder_add(&b, "{sv}", "Value",
			g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, val, sizeof(val), 1));
		g_dbus_connection_emit_signal(c, NULL, CHAR,
			"org.freedesktop.DBus.Properties", "PropertiesChanged",
			g_variant_new("(sa{sv}as)", "org.bluez.GattCharacteristic1", &b, NULL),
			NULL);
		if ((i & 255) == 255)
			g_dbus_connection_flush_sync(c, NULL, NULL);
	}
	g_dbus_connection_flush_sync(c, NULL, NULL);
	return G_SOURCE_CONTINUE;
}

static int fake_bluez(int fd, int ready_fd)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GDBusConnection) c = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
	static const GDBusInterfaceVTable vt = { method_cb, NULL, NULL, { 0 } };

	if (!c)
		return 1;
	g_autoptr(GDBusNodeInfo) node = g_dbus_node_info_new_for_xml(introspection, NULL);
	g_dbus_connection_register_object(c, "/", node->interfaces[0], &vt, NULL, NULL, NULL);
	/* the agent registration GwBluez makes at start */
	g_autoptr(GDBusNodeInfo) anynode = g_dbus_node_info_new_for_xml(
		"<node><interface name='org.bluez.AgentManager1'>"
		"<method name='RegisterAgent'><arg type='o' direction='in'/><arg type='s' direction='in'/></method>"
		"<method name='RequestDefaultAgent'><arg type='o' direction='in'/></method>"
		"<method name='UnregisterAgent'><arg type='o' direction='in'/></method>"
		"</interface></node>", NULL);
	g_dbus_connection_register_object(c, "/org/bluez", anynode->interfaces[0], &vt,
					  NULL, NULL, NULL);
	if (g_bus_own_name_on_connection(c, "org.bluez", G_BUS_NAME_OWNER_FLAGS_NONE,
					 NULL, NULL, NULL, NULL) == 0)
		return 1;
	/* make sure the name is ours before the parent looks */
	g_dbus_connection_call_sync(c, "org.freedesktop.DBus", "/org/freedesktop/DBus",
		"org.freedesktop.DBus", "GetId", NULL, NULL, 0, -1, NULL, NULL);
	child_loop = g_main_loop_new(NULL, FALSE);
	go_fd = fd;
	GIOChannel *ch = g_io_channel_unix_new(fd);
	g_io_add_watch(ch, G_IO_IN | G_IO_HUP, emit_cb, c);
	if (write(ready_fd, "r", 1) != 1)
		return 1;
	close(ready_fd);
	g_main_loop_run(child_loop);
	g_io_channel_unref(ch);
	g_main_loop_unref(child_loop);
	return 0;
}

/* ---- the gateway side -------------------------------------------------- */

static guint64 received;
static bool have_layout;
static GMainLoop *loop;

static void layout_cb(const char *address, const struct gw_bluez_gatt_char *chars,
		      size_t n, void *user_data)
{
	(void) address; (void) chars; (void) user_data;
	if (n > 0) {
		have_layout = true;
		g_main_loop_quit(loop);
	}
}

static void value_cb(const char *address, enum gw_char ch, const uint8_t *val,
		     size_t len, void *user_data)
{
	(void) address; (void) ch; (void) val; (void) len; (void) user_data;
	if (++received == total)
		g_main_loop_quit(loop);
}

static gboolean timeout_cb(gpointer user_data)
{
	(void) user_data;
	g_main_loop_quit(loop);
	return G_SOURCE_REMOVE;
}

int main(int argc, char **argv)
{
	int go[2], ready[2];
	char r;

	total = argc > 1 ? g_ascii_strtoull(argv[1], NULL, 10) : 100000;
	if (pipe(go) < 0 || pipe(ready) < 0)
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		close(go[1]);
		close(ready[0]);
		_exit(fake_bluez(go[0], ready[1]));
	}
	close(go[0]);
	close(ready[1]);
	if (read(ready[0], &r, 1) != 1) {
		fprintf(stderr, "bench-bluez-ingest: the fake did not start\n");
		return 1;
	}

	struct gw_bluez_config cfg = { .adapter = "hci0" };
	struct gw_bluez_ops ops = { .layout = layout_cb, .value = value_cb };
	g_autoptr(GError) error = NULL;
	loop = g_main_loop_new(NULL, FALSE);
	g_autoptr(GwBluez) bz = gw_bluez_new(NULL, &cfg, &ops, NULL, &error);
	if (!bz) {
		fprintf(stderr, "bench-bluez-ingest: %s\n", error->message);
		return 1;
	}
	guint t = g_timeout_add_seconds(20, timeout_cb, NULL);
	g_main_loop_run(loop);
	g_source_remove(t);
	if (!have_layout) {
		fprintf(stderr, "bench-bluez-ingest: no layout from the fake\n");
		kill(pid, SIGTERM);
		return 1;
	}

	gint64 t0 = g_get_monotonic_time();
	if (write(go[1], "g", 1) != 1)
		return 1;
	g_timeout_add_seconds(120, timeout_cb, NULL);
	g_main_loop_run(loop);
	gint64 t1 = g_get_monotonic_time();
	close(go[1]);
	int status;
	waitpid(pid, &status, 0);
	if (received != total) {
		fprintf(stderr, "bench-bluez-ingest: received %" G_GUINT64_FORMAT " of %"
			G_GUINT64_FORMAT "\n", received, total);
		return 1;
	}
	printf("bluez_ingest_per_s %.0f\n", (double) received * 1e6 / (double) (t1 - t0));
	g_main_loop_unref(loop);
	return 0;
}
