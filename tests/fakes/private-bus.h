/* SPDX-License-Identifier: MIT */
/*
 * A private dbus-daemon and child processes for the bus tests and benches
 * (test-bluez, test-ble, bench-ble): start the bus, connect to it, spawn a
 * fake with its output in a log file, stop and reap children. Errors come
 * back as GError so a cmocka test can fail_msg and a bench can exit.
 */
#ifndef REHABLINK_TESTS_PRIVATE_BUS_H
#define REHABLINK_TESTS_PRIVATE_BUS_H

#include <gio/gio.h>
#include <stdbool.h>

/* GSpawnChildSetupFunc: user_data is the log path (const char *); the
 * child's stdout and stderr are appended to it, and it dies with us. */
void pb_child_setup(gpointer log_path);

/* Waits up to ms for the child to exit (then SIGKILL); returns its wait
 * status and sets *pid to 0. */
int pb_child_reap(GPid *pid, unsigned int ms);
/* Sends sig (if *pid > 0) and reaps. */
void pb_child_stop(GPid *pid, int sig);
/* true if the child is gone (reaped now, or *pid already 0). */
bool pb_child_exited(GPid *pid);

/* Starts `dbus-daemon --session` listening on dir/bus, its log in
 * dir/dbus-daemon.log; returns its address (g_free) and its pid. */
char *pb_bus_start(const char *dir, unsigned int timeout_ms, GPid *ret_pid,
		   GError **error);
/* A new connection to the bus at address. */
GDBusConnection *pb_bus_connect(const char *address, GError **error);
bool pb_name_has_owner(GDBusConnection *c, const char *name);

#endif
