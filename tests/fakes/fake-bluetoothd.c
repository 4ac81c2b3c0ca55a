/* SPDX-License-Identifier: MIT */
/*
 * fake-bluetoothd: a fake BlueZ on the system bus (DBUS_SYSTEM_BUS_ADDRESS,
 * a private dbus-daemon in tests), backed by simulated wearables. The
 * server is gateway/sim-fakebus.c, shared with `rehablink-sim --backend
 * fake`; the manual is docs/simulator.md.
 */
#include <locale.h>
#include <stdio.h>

#include <glib.h>

#include "sim-fakebus.h"

int main(int argc, char **argv)
{
	g_autoptr(GOptionContext) ctx = NULL;
	g_autoptr(GError) error = NULL;
	struct gw_fakebus_options o;
	int code;

	setlocale(LC_ALL, "");
	gw_fakebus_options_init(&o);
	ctx = g_option_context_new("- a fake bluetoothd serving simulated rehablink wearables");
	g_option_context_set_summary(ctx,
		"Owns org.bluez on the bus in DBUS_SYSTEM_BUS_ADDRESS and speaks the part of\n"
		"BlueZ 5.66's D-Bus API a gateway uses; faults through org.rehablink.FakeBluez1\n"
		"at /org/rehablink/fake. See docs/simulator.md.");
	gw_fakebus_add_options(ctx, &o);
	if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
		g_printerr("fake-bluetoothd: %s\n", error->message);
		gw_fakebus_options_clear(&o);
		return GW_FAKEBUS_EXIT_USAGE;
	}
	if (argc > 1) {
		g_printerr("fake-bluetoothd: unexpected argument '%s'\n", argv[1]);
		gw_fakebus_options_clear(&o);
		return GW_FAKEBUS_EXIT_USAGE;
	}
	code = gw_fakebus_run(&o);
	gw_fakebus_options_clear(&o);
	return code;
}
