/* SPDX-License-Identifier: MIT */
/*
 * The wearable simulator core (docs/simulator.md).
 *
 * Pure: no D-Bus, no clock, no timers. Time comes in as an argument
 * (simulated microseconds since 00:00 of the scenario's first day) and the
 * caller advances it as fast as it likes. File I/O happens only in the
 * state file functions (gw_sim_new with a state path, gw_sim_save, and the
 * sequence reservation they make).
 *
 * A GwSim is one wearable: a flash ring of encoded records with sequence
 * numbers that survive restarts, a clock (unsynced until a Current Time
 * write), a battery, and the GATT server side of the rehablink profile.
 * What it sends is queued per characteristic; the backend (the fake
 * bluetoothd, or a real peripheral) pops it with gw_sim_pop_tx and sends
 * it as a notification or indication.
 */
#ifndef REHABLINK_GATEWAY_SIM_H
#define REHABLINK_GATEWAY_SIM_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wearable.h"

#define GW_SIM_ERROR (gw_sim_error_quark())
GQuark gw_sim_error_quark(void);

enum gw_sim_error {
	GW_SIM_ERROR_SCENARIO,		/* a scenario that does not parse */
	GW_SIM_ERROR_STATE,		/* a state file that is not ours or corrupt */
	GW_SIM_ERROR_IO,		/* reading or writing a file failed */
	GW_SIM_ERROR_INVALID,		/* a bad argument (config, statement) */
};

#define GW_SIM_US_PER_S          INT64_C(1000000)
#define GW_SIM_DAY_S             INT64_C(86400)

/* ---- Characteristics the wearable serves ---------------------------------- */

enum gw_sim_char {
	GW_SIM_CHAR_POSTURE = 0,
	GW_SIM_CHAR_STEPS,
	GW_SIM_CHAR_PAIN,
	GW_SIM_CHAR_HISTORY_CP,
	GW_SIM_CHAR_HISTORY_DATA,
	GW_SIM_CHAR_FEATURES,
	GW_SIM_CHAR_STATUS,
	GW_SIM_CHAR_BATTERY,
	GW_SIM_CHAR_MANUFACTURER,
	GW_SIM_CHAR_MODEL,
	GW_SIM_CHAR_SERIAL,
	GW_SIM_CHAR_HARDWARE_REV,
	GW_SIM_CHAR_FIRMWARE_REV,
	GW_SIM_CHAR_SOFTWARE_REV,
	GW_SIM_CHAR_CURRENT_TIME,
};
#define GW_SIM_CHAR_COUNT        (GW_SIM_CHAR_CURRENT_TIME + 1)

/* Characteristic properties, as the GATT declaration has them. */
enum gw_sim_prop {
	GW_SIM_PROP_READ = 1u << 0,
	GW_SIM_PROP_WRITE = 1u << 1,
	GW_SIM_PROP_WRITE_NO_RSP = 1u << 2,
	GW_SIM_PROP_NOTIFY = 1u << 3,
	GW_SIM_PROP_INDICATE = 1u << 4,
};

enum gw_sim_service {
	GW_SIM_SERVICE_REHABLINK = 0,
	GW_SIM_SERVICE_BATTERY,
	GW_SIM_SERVICE_DEVINFO,
	GW_SIM_SERVICE_CTS,
};
#define GW_SIM_SERVICE_COUNT     (GW_SIM_SERVICE_CTS + 1)

/* Short name ("history-cp"), UUID, properties and service of a
 * characteristic; NULL / 0 for an invalid value. */
const char *gw_sim_char_name(enum gw_sim_char c);
const char *gw_sim_char_uuid(enum gw_sim_char c);
unsigned int gw_sim_char_props(enum gw_sim_char c);
enum gw_sim_service gw_sim_char_service(enum gw_sim_char c);
const char *gw_sim_service_uuid(enum gw_sim_service s);
/* The characteristic named name; -1 if none. */
int gw_sim_char_from_name(const char *name);

/* ATT error codes the server answers with (Core 5.3 Vol 3 Part F 3.4.1.1,
 * CSS Part B 1.2). 0 is success. */
#define GW_SIM_ATT_READ_NOT_PERMITTED   0x02
#define GW_SIM_ATT_WRITE_NOT_PERMITTED  0x03
#define GW_SIM_ATT_INVALID_OFFSET       0x07
#define GW_SIM_ATT_INVALID_LENGTH       0x0d
#define GW_SIM_ATT_VALUE_NOT_ALLOWED    0x80	/* CTS: data field ignored */
#define GW_SIM_ATT_CCC_IMPROPER         0xfd

/* ---- Scenarios ----------------------------------------------------------- */

typedef struct gw_sim_scenario GwSimScenario;

/*
 * Parses a scenario from text[len] (any bytes; NUL is an error, not an
 * end). filename names it in error messages ("day3.txt:7: unknown posture
 * 'slouch'"); NULL means "scenario". Returns 0 and a new scenario in
 * *ret_sc, or -EINVAL with error set (GW_SIM_ERROR_SCENARIO) and *ret_sc
 * untouched. Never crashes and never leaks, whatever the input.
 */
int gw_sim_scenario_parse(const char *text, size_t len, const char *filename,
			  GwSimScenario **ret_sc, GError **error);
/* Reads and parses a file. */
GwSimScenario *gw_sim_scenario_load(const char *path, GError **error);
/* The built-in quiet day (used when no scenario is given). */
GwSimScenario *gw_sim_scenario_new_default(void);
GwSimScenario *gw_sim_scenario_ref(GwSimScenario *sc);
void gw_sim_scenario_unref(GwSimScenario *sc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwSimScenario, gw_sim_scenario_unref)

/* Where the scenario ends (µs since the first day's 00:00). */
int64_t gw_sim_scenario_get_end(const GwSimScenario *sc);
/* The post-operative day number of the first day. */
unsigned int gw_sim_scenario_get_first_day(const GwSimScenario *sc);
/* Number of events after expansion of `every`. */
size_t gw_sim_scenario_get_n_events(const GwSimScenario *sc);
/* Parses a time of day "HH:MM[:SS]" or "+DUR" (relative to 0) into µs. */
gboolean gw_sim_parse_time(const char *s, int64_t *ret_us);

/* ---- The wearable ---------------------------------------------------------- */

typedef struct gw_sim GwSim;

struct gw_sim_config {
	const char *state_path;	/* NULL: flash in memory only */
	uint32_t capacity;	/* 0: the scenario's */
	uint64_t seed;		/* used when the scenario sets none */
	const char *serial;	/* Device Information serial; NULL: "RL-SIM-0001" */
	/* called with every record the wearable makes, after it is in flash
	 * (fake-bluetoothd's --record-log); may be NULL */
	void (*on_record)(const struct wb_record *rec, void *user_data);
	void *on_record_data;
};

/*
 * Creates a wearable at simulated time now_us, powered up at 00:00 of the
 * first day (so records from there to now_us are made by the first
 * gw_sim_advance). With a state path that exists, the flash, the sequence
 * counter, the clock and the battery are restored from it and the time
 * continues from the saved time if that is later (see gw_sim_get_time).
 * Takes a reference on sc.
 */
GwSim *gw_sim_new(const struct gw_sim_config *cfg, GwSimScenario *sc,
		  int64_t now_us, GError **error);
void gw_sim_free(GwSim *sim);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwSim, gw_sim_free)

/*
 * Writes the state file atomically (tmp + fsync + rename + fsync of the
 * directory). A no-op without a state path. The file keeps a sequence
 * reservation: numbers up to it may be in use without a save, so a
 * wearable restarted from this file (after a crash) starts after it and
 * never reuses a number. gw_sim_save_final writes the exact next number
 * instead (a clean shutdown: no gap on restart); the wearable may go on
 * after it, and then reserves again before its next record.
 */
gboolean gw_sim_save(GwSim *sim, GError **error);
gboolean gw_sim_save_final(GwSim *sim, GError **error);
/* true if something changed since the last save. */
bool gw_sim_is_dirty(const GwSim *sim);

/*
 * Runs the wearable up to now_us (ignored if not later than its time):
 * scenario events, records, battery, status. New records go to the flash
 * and, while connected and subscribed, to the tx queue. May write the
 * state file (sequence reservation); fails only if that failed (here or
 * in a gw_sim_write since), after doing all the rest.
 *
 * The wearable drops the link itself when it reboots or goes out of
 * range: the backend sees gw_sim_is_connected() turn false after
 * gw_sim_advance or gw_sim_apply, and tears its side down.
 */
gboolean gw_sim_advance(GwSim *sim, int64_t now_us, GError **error);
int64_t gw_sim_get_time(const GwSim *sim);

/* Applies one scenario event now ("pain 8 flags chest", "reboot",
 * "battery 20", "out-of-range 10m", "walk 5m"...). */
gboolean gw_sim_apply(GwSim *sim, const char *statement, GError **error);
/* Power loss at the current time (as the scenario's reboot). */
void gw_sim_reboot(GwSim *sim);
/* Forces the wearable out of range until until_us (INT64_MAX: until
 * gw_sim_set_out_of_range(sim, 0)), 0 to end it. */
void gw_sim_set_out_of_range(GwSim *sim, int64_t until_us);
/* In radio range now (scenario out-of-range intervals and the override). */
bool gw_sim_in_range(const GwSim *sim);

/* ---- The link -------------------------------------------------------------- */

/* A central connected with that ATT MTU (23..517). Subscriptions start
 * off; the backend re-enables them (gw_sim_set_notify) if its stack keeps
 * them across connections. */
void gw_sim_connect(GwSim *sim, unsigned int mtu);
/* The link is gone: a running report is dropped (no response), the tx
 * queue emptied, subscriptions cleared. */
void gw_sim_disconnect(GwSim *sim);
bool gw_sim_is_connected(const GwSim *sim);
unsigned int gw_sim_get_mtu(const GwSim *sim);
/* The MTU of the current link changed (or became known). */
void gw_sim_set_mtu(GwSim *sim, unsigned int mtu);
/* The central wrote the CCC of ch (notifications or indications). */
void gw_sim_set_notify(GwSim *sim, enum gw_sim_char ch, bool on);
bool gw_sim_get_notify(const GwSim *sim, enum gw_sim_char ch);

/* Reads the value of ch into buf[size]. Returns 0 with *ret_len set, or
 * an ATT error code (> 0). */
int gw_sim_read(GwSim *sim, enum gw_sim_char ch, uint8_t *buf, size_t size,
		size_t *ret_len);
/* A write (with response) to ch. Returns 0 or an ATT error code; the
 * answers (history control point responses, history data) are queued. */
int gw_sim_write(GwSim *sim, enum gw_sim_char ch, const uint8_t *val,
		 size_t len);

/* One value to send. */
struct gw_sim_tx {
	enum gw_sim_char ch;
	unsigned int records;	/* records it carries (0 for responses) */
	size_t len;
	uint8_t data[WB_ATT_MAX_VALUE];
};
/* Takes the next value to send: queued values first (live records,
 * control point responses), then the next batch of a running report,
 * packed to MTU-3 bytes, then the report's final response. false when
 * there is nothing to send. Only values of subscribed characteristics
 * are ever queued. */
bool gw_sim_pop_tx(GwSim *sim, struct gw_sim_tx *ret_tx);
/* true if gw_sim_pop_tx would return something. */
bool gw_sim_has_tx(const GwSim *sim);

/* Test and fault seams: the next n control point requests are answered
 * busy / storage error. */
void __gw_sim_set_hcp_busy(GwSim *sim, unsigned int n);
void __gw_sim_set_hcp_storage_error(GwSim *sim, unsigned int n);

/* ---- Inspection ------------------------------------------------------------ */

struct gw_sim_stats {
	uint32_t capacity;
	uint32_t stored;
	uint32_t first_seq;	/* 0 when stored == 0 */
	uint32_t last_seq;	/* newest written, 0 before the first */
	uint32_t next_seq;
	uint64_t generated;	/* records made by this process */
	uint64_t overwritten;	/* lost to a full flash, this process */
	uint64_t deleted;	/* by DELETE requests */
	uint64_t deletes;	/* DELETE requests */
	uint64_t hcp_requests;
	uint64_t history_sent;	/* records sent on History data */
	uint64_t time_writes;
	unsigned int battery_pct;
	unsigned int status_flags;	/* enum wb_status_flag */
	enum wb_time_quality time_quality;
	uint32_t uptime_s;
	int64_t time_us;
	bool report_running;
};
void gw_sim_get_stats(const GwSim *sim, struct gw_sim_stats *ret_stats);
/* The features value the wearable would serve now. */
void gw_sim_get_features(const GwSim *sim, struct wb_features *ret_f);
/* Record i (0 = oldest) of the flash; false if out of range. */
bool gw_sim_get_record(const GwSim *sim, uint32_t i, struct wb_record *ret_rec);
/* The wearable's clock now: seconds in its own timescale (enum
 * wb_time_quality) and the quality. */
uint32_t gw_sim_get_clock(const GwSim *sim, enum wb_time_quality *ret_q);

/* One line of text for a record ("posture  lying flexion -84.6 ..."),
 * for --list and logs. */
char *gw_sim_record_to_string(const struct wb_record *rec);

#endif
