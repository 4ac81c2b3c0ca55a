/* SPDX-License-Identifier: MIT */
/*
 * GwSimGatt: the simulated wearable as a real BLE peripheral, through
 * bluetoothd's (BlueZ 5.66) GattManager1 and LEAdvertisingManager1.
 *
 * It exports a GATT application on the bus it is given (the system bus for
 * bluetoothd) below /org/rehablink/sim/<adapter>: an ObjectManager at the
 * root, the rehablink service (primary) with its seven characteristics,
 * Battery 0x180F, Device Information 0x180A and Current Time 0x1805, and
 * an LEAdvertisement1 ("peripheral", the rehablink service UUID, the local
 * name). It registers both with the chosen adapter, and again whenever
 * bluetoothd comes back on the bus, the adapter reappears or it is powered
 * back on.
 *
 * An adapter in the sense of docs/architecture.md: it translates between
 * bluetoothd and the simulator core (gateway/sim.h), never decides.
 * ReadValue/WriteValue become gw_sim_read/gw_sim_write, StartNotify and
 * StopNotify gw_sim_set_notify, a central's Device1 Connected gw_sim_connect
 * and gw_sim_disconnect, and what gw_sim_pop_tx hands out becomes one raw
 * PropertiesChanged(Value) signal per notification or indication, paced.
 * The simulator's radio range is followed with the adapter's power: out of
 * range powers the adapter off (a real link loss for the central), back in
 * range powers it on (see gw_sim_gatt_set_follow_range).
 *
 * Time is not ours: the caller advances the GwSim and then calls
 * gw_sim_gatt_kick. gw_sim_gatt_run is the whole `rehablink-sim --backend
 * bluez` with its own clock, for sim-main.c.
 *
 * Log domain "gw-sim-gatt" (G_MESSAGES_DEBUG=gw-sim-gatt for details).
 */
#ifndef REHABLINK_GATEWAY_SIM_GATT_H
#define REHABLINK_GATEWAY_SIM_GATT_H

#include <stdbool.h>
#include <stdint.h>

#include <gio/gio.h>

#include "sim.h"

/* D-Bus names of the peripheral side (the central's are in bluez.h). */
#define GW_SIM_GATT_BLUEZ_NAME		"org.bluez"
#define GW_SIM_GATT_MANAGER_IFACE	"org.bluez.GattManager1"
#define GW_SIM_GATT_ADV_MANAGER_IFACE	"org.bluez.LEAdvertisingManager1"
#define GW_SIM_GATT_SERVICE_IFACE	"org.bluez.GattService1"
#define GW_SIM_GATT_CHAR_IFACE		"org.bluez.GattCharacteristic1"
#define GW_SIM_GATT_ADV_IFACE		"org.bluez.LEAdvertisement1"
#define GW_SIM_GATT_AGENT_IFACE		"org.bluez.Agent1"
#define GW_SIM_GATT_AGENT_MGR_IFACE	"org.bluez.AgentManager1"
#define GW_SIM_GATT_ADAPTER_IFACE	"org.bluez.Adapter1"
#define GW_SIM_GATT_DEVICE_IFACE	"org.bluez.Device1"
#define GW_SIM_GATT_OM_IFACE		"org.freedesktop.DBus.ObjectManager"
#define GW_SIM_GATT_PROPS_IFACE		"org.freedesktop.DBus.Properties"

/* Object paths: <root>/<adapter>, .../serviceN/charM, .../advertisement */
#define GW_SIM_GATT_PATH_ROOT		"/org/rehablink/sim"
#define GW_SIM_GATT_LOCAL_NAME		"rehablink-sim"

typedef struct gw_sim_gatt GwSimGatt;

/* What the backend is doing, for logs and tests. */
enum gw_sim_gatt_state {
	GW_SIM_GATT_STATE_IDLE,		/* not started */
	GW_SIM_GATT_STATE_NO_BLUEZ,	/* org.bluez has no owner */
	GW_SIM_GATT_STATE_NO_ADAPTER,	/* bluetoothd runs, the adapter is missing */
	GW_SIM_GATT_STATE_UNPOWERED,	/* the adapter is off */
	GW_SIM_GATT_STATE_REGISTERING,	/* RegisterApplication/Advertisement pending */
	GW_SIM_GATT_STATE_ADVERTISING,	/* registered, no central connected */
	GW_SIM_GATT_STATE_CONNECTED,	/* a central is connected */
};

/* Creates the backend for sim on bus (NULL: the system bus, connected at
 * start). sim is borrowed and must outlive the backend. */
GwSimGatt *gw_sim_gatt_new(GDBusConnection *bus, GwSim *sim);
/* NULL-safe: unexports everything, unregisters from bluetoothd (best
 * effort, not waited for), disconnects the simulator. */
void gw_sim_gatt_free(GwSimGatt *g);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwSimGatt, gw_sim_gatt_free)

/* Before start. Local name of the advertisement (default
 * GW_SIM_GATT_LOCAL_NAME); whether the adapter is powered off while the
 * simulator is out of range and on again when it is back (default true;
 * either way the advertisement stops first and the link is dropped);
 * how many values to send per pacing tick and the tick (default 8 values
 * per 10 ms). */
void gw_sim_gatt_set_local_name(GwSimGatt *g, const char *name);
void gw_sim_gatt_set_follow_range(GwSimGatt *g, bool follow);
/* Whether the rehablink and Current Time characteristics ask for an
 * encrypted link ("encrypt-read"/"encrypt-write"; default true). BlueZ
 * has no "encrypt-notify": subscribing never needs encryption. */
void gw_sim_gatt_set_encrypt(GwSimGatt *g, bool encrypt);
/* A NoInputNoOutput Agent1 that accepts every pairing (default on), made
 * bluetoothd's default agent (default on; the last to ask wins, and a
 * gateway's agent in the same bluetoothd serves just as well). Without
 * any agent bluetoothd rejects the Just Works pairing a central starts. */
void gw_sim_gatt_set_agent(GwSimGatt *g, bool agent, bool make_default);
void gw_sim_gatt_set_pacing(GwSimGatt *g, unsigned int burst,
			    unsigned int interval_ms);

/* Exports the objects and starts following org.bluez and the adapter
 * ("hci1"); registration happens asynchronously once bluetoothd and the
 * adapter are there. Fails (GW_SIM_ERROR_INVALID or a GIO error) for a
 * bad adapter name, no bus, or objects that cannot be exported. */
gboolean gw_sim_gatt_start(GwSimGatt *g, const char *adapter, GError **error);

/* Sends what the simulator queued (gw_sim_pop_tx), paced, and follows its
 * radio range with the adapter's power. Call after gw_sim_advance and
 * gw_sim_apply. */
void gw_sim_gatt_kick(GwSimGatt *g);

enum gw_sim_gatt_state gw_sim_gatt_get_state(const GwSimGatt *g);
const char *gw_sim_gatt_state_name(enum gw_sim_gatt_state s);
/* Notifications and indications emitted so far, and indications the
 * central confirmed (Confirm calls from bluetoothd). */
uint64_t gw_sim_gatt_get_sent(const GwSimGatt *g);
uint64_t gw_sim_gatt_get_confirmed(const GwSimGatt *g);

/* ---- rehablink-sim --backend bluez ----------------------------------------- */

struct gw_sim_gatt_run_opts {
	const char *adapter;		/* NULL: "hci0" */
	const char *scenario_path;	/* NULL: the built-in quiet day */
	const char *state_path;		/* NULL: flash in memory only */
	const char *serial;		/* NULL: the core's default */
	const char *local_name;		/* NULL: GW_SIM_GATT_LOCAL_NAME */
	double speed;			/* simulated s per real s; <= 0: 1 */
	int64_t start_us;		/* simulated start time (see gw_sim_new) */
	uint64_t seed;
	uint32_t capacity;		/* 0: the scenario's */
	bool no_follow_range;		/* out of range: stop advertising only */
	bool no_encrypt;		/* plain "read"/"write" flags */
	bool no_agent;			/* register no pairing agent */
	bool no_default_agent;		/* register it, but not as the default */
	bool print_ready;		/* print READY once registered */
	bool stdin_control;		/* apply a statement per stdin line */
};

/* Runs the simulator as a BLE peripheral on the system bus until SIGINT or
 * SIGTERM: advances it in real time times speed, sends its values, saves
 * its state file every second when dirty and at exit. With stdin_control,
 * each line of stdin is a scenario event applied at once (gw_sim_apply:
 * "pain 8 flags chest", "out-of-range 5m", "reboot"). Returns the process
 * exit status: 0, 2 for bad options, 3 when the bus or the objects fail,
 * 1 for a state file error. */
int gw_sim_gatt_run(const struct gw_sim_gatt_run_opts *opts);

#endif
