/* SPDX-License-Identifier: MIT */
/*
 * The fake bluetoothd: owns org.bluez on the system bus
 * (DBUS_SYSTEM_BUS_ADDRESS, a private dbus-daemon in tests) and serves
 * simulated wearables (gateway/sim.h) through the part of BlueZ 5.66's
 * D-Bus API a gateway uses, with fault injection through
 * org.rehablink.FakeBluez1 at /org/rehablink/fake. docs/simulator.md,
 * sections 3 to 5, is its manual.
 *
 * Shared by `fake-bluetoothd` (tests/fakes/fake-bluetoothd.c) and
 * `rehablink-sim --backend fake` (gateway/sim-main.c): both parse the
 * same options and call gw_fakebus_run.
 */
#ifndef REHABLINK_GATEWAY_SIM_FAKEBUS_H
#define REHABLINK_GATEWAY_SIM_FAKEBUS_H

#include <glib.h>

#define GW_FAKEBUS_CONTROL_PATH  "/org/rehablink/fake"
#define GW_FAKEBUS_CONTROL_IFACE "org.rehablink.FakeBluez1"

/* Exit codes of gw_fakebus_run besides a requested one. */
#define GW_FAKEBUS_EXIT_OK       0
#define GW_FAKEBUS_EXIT_USAGE    2
#define GW_FAKEBUS_EXIT_BUS      3

struct gw_fakebus_options {
	gint devices;
	gchar **device_specs;
	gchar *scenario;
	gchar *state_dir;
	gdouble speed;
	gchar *start;
	gchar *adapter;
	gchar *adapter_address;
	gboolean no_adapter;
	gint adapter_delay_ms;
	gboolean unpowered;
	gboolean paired;
	gint mtu;
	gchar *gatt_cache;
	gint connect_delay_ms;
	gint resolve_delay_ms;
	gint page_timeout_ms;
	gint temporary_timeout_s;
	gchar **strangers;
	gchar **faults;
	gint64 seed;
	gint save_interval_ms;
	gchar *record_log;
	gboolean control;
	gboolean no_control;
	gboolean print_ready;
	gboolean verbose;
};

/* Fills in the defaults. */
void gw_fakebus_options_init(struct gw_fakebus_options *o);
/* Frees what GOption allocated in o. */
void gw_fakebus_options_clear(struct gw_fakebus_options *o);
/* Adds the options (section 1 of docs/simulator.md) to ctx's main group. */
void gw_fakebus_add_options(GOptionContext *ctx, struct gw_fakebus_options *o);

/* Runs the fake until SIGINT/SIGTERM, an Exit call or a fatal bus error;
 * returns the process exit code. */
int gw_fakebus_run(const struct gw_fakebus_options *o);

#endif
