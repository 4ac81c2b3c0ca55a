/* SPDX-License-Identifier: MIT */
/*
 * The D-Bus notification ceiling of this machine: how many BlueZ-shaped
 * notifications (PropertiesChanged on org.bluez.GattCharacteristic1,
 * "Value" = 20 bytes) one process can emit and a bare GDBus subscriber can
 * receive through the bus in DBUS_SYSTEM_BUS_ADDRESS (a private
 * dbus-daemon started by tests/bench/run.sh). Every other ingest number is
 * reported as a fraction of this one, measured in the same run.
 *
 * Prints one line: "dbus_ceiling_per_s <n>".
 */
#include <gio/gio.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define PATH "/org/bluez/hci0/dev_AA_BB_CC_DD_EE_01/service000c/char000d"

static guint64 received;
static guint64 wanted;
static GMainLoop *loop;

static void value_cb(GDBusConnection *c, const char *sender, const char *path,
		     const char *iface, const char *signal, GVariant *params,
		     gpointer user_data)
{
	(void) c; (void) sender; (void) path; (void) iface; (void) signal;
	(void) user_data;
	g_autoptr(GVariant) changed = g_variant_get_child_value(params, 1);
	g_autoptr(GVariant) v = g_variant_lookup_value(changed, "Value",
						       G_VARIANT_TYPE_BYTESTRING);
	if (v && ++received == wanted)
		g_main_loop_quit(loop);
}

/* runs in a child forked before the parent touched GDBus (a fork after
 * GDBus started its worker thread would inherit a dead singleton); waits
 * for one byte on go_fd, written once the subscriber's match is in place */
static int emitter(guint64 n, int go_fd)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GDBusConnection) c = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
	guint8 val[20] = { 1, 1 };
	char go;

	if (read(go_fd, &go, 1) != 1)
		return 1;
	if (!c) {
		fprintf(stderr, "emitter: %s\n", error->message);
		return 1;
	}
	for (guint64 i = 0; i < n; i++) {
		GVariantBuilder b;

		val[2] = (guint8) i;
		g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
		g_variant_builder_add(&b, "{sv}", "Value",
			g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, val, sizeof(val), 1));
		g_dbus_connection_emit_signal(c, NULL, PATH,
			"org.freedesktop.DBus.Properties", "PropertiesChanged",
			g_variant_new("(sa{sv}as)", "org.bluez.GattCharacteristic1", &b, NULL),
			NULL);
		/* keep the socket from growing without bound, as a real
		 * bluetoothd paced by the radio would */
		if ((i & 255) == 255)
			g_dbus_connection_flush_sync(c, NULL, NULL);
	}
	g_dbus_connection_flush_sync(c, NULL, NULL);
	return 0;
}

static gboolean timeout_cb(gpointer user_data)
{
	(void) user_data;
	g_main_loop_quit(loop);
	return G_SOURCE_REMOVE;
}

int main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	int go[2];

	wanted = argc > 1 ? g_ascii_strtoull(argv[1], NULL, 10) : 100000;
	if (pipe(go) < 0)
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		close(go[1]);
		_exit(emitter(wanted, go[0]));
	}
	close(go[0]);

	g_autoptr(GDBusConnection) c = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);

	if (!c) {
		fprintf(stderr, "bench-dbus-ceiling: %s\n", error->message);
		return 1;
	}
	g_dbus_connection_signal_subscribe(c, NULL, "org.freedesktop.DBus.Properties",
		"PropertiesChanged", NULL, "org.bluez.GattCharacteristic1",
		G_DBUS_SIGNAL_FLAGS_NONE, value_cb, NULL, NULL);
	/* make sure the match rule is installed before the emitter starts */
	g_dbus_connection_call_sync(c, "org.freedesktop.DBus", "/org/freedesktop/DBus",
		"org.freedesktop.DBus", "GetId", NULL, NULL, 0, -1, NULL, NULL);

	loop = g_main_loop_new(NULL, FALSE);
	gint64 t0 = g_get_monotonic_time();
	if (write(go[1], "g", 1) != 1)
		return 1;
	close(go[1]);
	g_timeout_add_seconds(120, timeout_cb, NULL);
	g_main_loop_run(loop);
	gint64 t1 = g_get_monotonic_time();
	int status = 0;
	waitpid(pid, &status, 0);
	g_main_loop_unref(loop);
	if (received != wanted) {
		fprintf(stderr, "bench-dbus-ceiling: received %" G_GUINT64_FORMAT
			" of %" G_GUINT64_FORMAT "\n", received, wanted);
		return 1;
	}
	printf("dbus_ceiling_per_s %.0f\n", (double) received * 1e6 / (double) (t1 - t0));
	return 0;
}
