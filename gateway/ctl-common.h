/* SPDX-License-Identifier: MIT */
/*
 * rehablinkctl: what the command files share. The client of the control
 * API (docs/control-api.md): one call, one JSON answer; the exit codes;
 * JSON accessors that never warn on a missing or null member; text
 * helpers for an 80-column terminal (ages, sizes, colour, padding of
 * UTF-8 text, the block characters of the charts).
 */
#ifndef REHABLINK_GATEWAY_CTL_COMMON_H
#define REHABLINK_GATEWAY_CTL_COMMON_H

#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>

#define CTL_NAME "org.rehablink.Gateway"
#define CTL_PATH "/org/rehablink/Gateway"
#define CTL_IFACE "org.rehablink.Gateway1"
#define CTL_DEFAULT_CONFIG "/etc/rehablink/rehablink.conf"
#define CTL_DEFAULT_STATE_DIR "/var/lib/rehablink"

/* docs/control-api.md, "Exit codes of rehablinkctl" */
enum ctl_exit {
	CTL_EXIT_OK = 0,
	CTL_EXIT_PROBLEM = 1,
	CTL_EXIT_USAGE = 2,
	CTL_EXIT_UNREACHABLE = 3,
	CTL_EXIT_REFUSED = 4,
};

enum ctl_color {
	CTL_RESET,
	CTL_BOLD,
	CTL_DIM,
	CTL_RED,
	CTL_GREEN,
	CTL_YELLOW,
};

struct ctl {
	bool json;
	bool color;		/* stdout is a tty and not --no-color */
	bool utf8;		/* the locale's charset is UTF-8 */
	const char *config_path;
	int timeout_ms;
	int cols;		/* terminal width (80 when not a tty) */
	double now;		/* wall clock, Unix seconds, at start */
	GDBusConnection *bus;
	GError *bus_error;
};

/* ---- the control API ---- */

/* The system bus (DBUS_SYSTEM_BUS_ADDRESS honoured), connected once. */
GDBusConnection *ctl_bus(struct ctl *c, GError **error);
/* Calls METHOD on rehablinkd with the timeout; the answer's JSON parsed.
 * fds: passed with the call (Export). timeout_ms <= 0: c->timeout_ms. */
JsonNode *ctl_call_full(struct ctl *c, const char *method, GVariant *params,
			GUnixFDList *fds, int timeout_ms, GError **error);
/* The exit code an error of ctl_call_full() means: 3 (unreachable: no
 * bus, no owner, the policy refused, no answer) or 4 (refused/failed). */
int ctl_error_exit(const GError *error);
/* Prints the error of a failed call (stderr; with --json also a JSON
 * document {"error": {...}} on stdout) and returns its exit code. */
int ctl_fail(struct ctl *c, const char *method, const GError *error);
/* ctl_call_full(), and on error ctl_fail(): NULL and *ret_exit set. */
JsonNode *ctl_call(struct ctl *c, const char *method, GVariant *params,
		   int *ret_exit);
/* Has NAME an owner on the bus? FALSE with error when the bus fails. */
gboolean ctl_name_has_owner(struct ctl *c, const char *name, gboolean *ret_has,
			    GError **error);
/* Prints a node as one JSON document (pretty) on stdout. */
void ctl_print_json(JsonNode *node);
/* Prints a usage error on stderr; returns CTL_EXIT_USAGE. */
int ctl_usage_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* ---- JSON accessors: NULL-safe, never warn ---- */

JsonObject *ctl_obj(JsonObject *o, const char *key);	/* NULL: missing */
JsonArray *ctl_arr(JsonObject *o, const char *key);
const char *ctl_str(JsonObject *o, const char *key);	/* NULL: missing/null */
bool ctl_num(JsonObject *o, const char *key, double *ret);	/* false: missing/null */
double ctl_num_or(JsonObject *o, const char *key, double def);
bool ctl_bool(JsonObject *o, const char *key, bool def);
bool ctl_has_bool(JsonObject *o, const char *key, bool *ret);
JsonObject *ctl_node_obj(JsonNode *n);	/* NULL unless an object */
JsonArray *ctl_node_arr(JsonNode *n);

/* ---- text ---- */

const char *ctl_col(const struct ctl *c, enum ctl_color col);
/* "12 s", "4 min", "3 h", "2 d" */
char *ctl_age(double seconds);
/* "45 s", "12 min", "2 h 05 min" */
char *ctl_duration(double seconds);
/* "512 B", "1.0 MiB" */
char *ctl_bytes(double bytes);
/* A Unix time as local time: "14:03:22" today, else "2026-11-27 14:03". */
char *ctl_clock(const struct ctl *c, double t);
/* Appends s padded (or cut with an ellipsis) to width display columns. */
void ctl_pad(GString *out, const char *s, int width);
/* s cut to width display columns, with an ellipsis when cut. */
char *ctl_cut(const struct ctl *c, const char *s, int width);
/* The eighths of a block, 0..8 (" " .. full block); ASCII: " " or "#". */
const char *ctl_block(const struct ctl *c, int eighths);
/* A vertical block of height eighths 0..8 for column charts. */
const char *ctl_vblock(const struct ctl *c, int eighths);

/* rounding without libm (the Makefile links no -lm); the casts are
 * defined only inside long long's range, so beyond +-2^62 (far past any
 * time, size or count shown) the value is clamped first */
#define CTL_ROUND_LIMIT 4.6e18
static inline double ctl_clamp(double x)
{
	return x != x ? 0 : x > CTL_ROUND_LIMIT ? CTL_ROUND_LIMIT
		     : x < -CTL_ROUND_LIMIT ? -CTL_ROUND_LIMIT : x;
}
static inline long ctl_lround(double x)
{
	x = ctl_clamp(x);
	return (long)(long long)(x >= 0 ? x + 0.5 : x - 0.5);
}
static inline double ctl_floor(double x)
{
	double t;

	x = ctl_clamp(x);
	t = (double)(long long)x;
	return t > x ? t - 1 : t;
}
static inline double ctl_ceil(double x)
{
	double t;

	x = ctl_clamp(x);
	t = (double)(long long)x;
	return t < x ? t + 1 : t;
}

/* ---- command-line values ---- */

/* TIME: Unix seconds, ISO 8601, or relative (-2h, -30m, -3d, -45s,
 * combinable: -1h30m). */
/* Unix seconds up to CTL_TIME_MAX (year 2286 and then some: the daemon
 * takes times in microseconds in an int64) */
#define CTL_TIME_MAX 9.0e12
gboolean ctl_parse_time(const char *s, double now, double *ret, GError **error);
/* ADDRESS: six hex bytes separated by ':'. */
bool ctl_valid_address(const char *s);

/* ---- the commands ---- */

int ctl_cmd_status(struct ctl *c, int argc, char **argv);
int ctl_cmd_devices(struct ctl *c, int argc, char **argv);
int ctl_cmd_alerts(struct ctl *c, int argc, char **argv);
int ctl_cmd_queue(struct ctl *c, int argc, char **argv);
int ctl_cmd_data(struct ctl *c, int argc, char **argv);
int ctl_cmd_doctor(struct ctl *c, int argc, char **argv);
int ctl_cmd_export(struct ctl *c, int argc, char **argv);
int ctl_cmd_pair(struct ctl *c, int argc, char **argv);
int ctl_cmd_forget(struct ctl *c, int argc, char **argv);
int ctl_cmd_test_alert(struct ctl *c, int argc, char **argv);
int ctl_cmd_reload(struct ctl *c, int argc, char **argv);

/* Parses a command's own options (entries may be NULL) together with the
 * global ones, so that `rehablinkctl status --json` works too. Returns
 * false (a usage error printed) on a bad command line; argc/argv keep
 * the command name in argv[0] and the positional arguments. */
bool ctl_parse_command(struct ctl *c, const char *usage, const char *summary,
		       const GOptionEntry *entries, int *argc, char ***argv);

#endif
