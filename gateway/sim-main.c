/* SPDX-License-Identifier: MIT */
/*
 * rehablink-sim: the wearable simulator (docs/simulator.md).
 *
 *   rehablink-sim --list [--scenario FILE] [--until TIME]
 *   rehablink-sim [--backend fake] [--scenario FILE] [--state FILE] [--speed F] ...
 *
 * --backend fake is the fake bluetoothd of gateway/sim-fakebus.c (the
 * same server as tests/fakes/fake-bluetoothd); --backend bluez is a real
 * peripheral through bluetoothd's GattManager1 and LEAdvertisingManager1
 * (gateway/sim-gatt.c).
 */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "sim-gatt.h"
#include "sim-fakebus.h"
#include "sim.h"
#include "wearable.h"

static char *arg_backend;
static char *arg_state;
static char *arg_until;
static gboolean arg_list;
static char *arg_name;
static gboolean arg_insecure;
static gboolean arg_no_agent;
static gboolean arg_no_default_agent;
static gboolean arg_no_follow_range;
static gboolean arg_stdin;

static const GOptionEntry sim_entries[] = {
	{ "backend", 'b', 0, G_OPTION_ARG_STRING, &arg_backend,
	  "fake (a fake bluetoothd on DBUS_SYSTEM_BUS_ADDRESS, the default) or bluez", "NAME" },
	{ "state", 0, 0, G_OPTION_ARG_FILENAME, &arg_state,
	  "state file of the one wearable (AA:BB:CC:DD:EE:01)", "FILE" },
	{ "list", 'l', 0, G_OPTION_ARG_NONE, &arg_list,
	  "print the records the scenario makes, then exit", NULL },
	{ "until", 0, 0, G_OPTION_ARG_STRING, &arg_until,
	  "how far --list runs: HH:MM[:SS] of the first day or +DUR (default: the end)", "TIME" },
	{ "name", 0, 0, G_OPTION_ARG_STRING, &arg_name,
	  "bluez: the advertised local name", "NAME" },
	{ "insecure", 0, 0, G_OPTION_ARG_NONE, &arg_insecure,
	  "bluez: plain read/write flags, no encryption needed", NULL },
	{ "no-agent", 0, 0, G_OPTION_ARG_NONE, &arg_no_agent,
	  "bluez: register no just-works pairing agent", NULL },
	{ "no-default-agent", 0, 0, G_OPTION_ARG_NONE, &arg_no_default_agent,
	  "bluez: register the agent, but not as bluetoothd's default", NULL },
	{ "no-follow-range", 0, 0, G_OPTION_ARG_NONE, &arg_no_follow_range,
	  "bluez: keep the adapter powered while the wearable is out of range", NULL },
	{ "stdin", 0, 0, G_OPTION_ARG_NONE, &arg_stdin,
	  "bluez: apply one scenario event per stdin line (\"pain 8 flags chest\")", NULL },
	G_OPTION_ENTRY_NULL,
};

static void format_time(const struct wb_record *rec, char *buf, size_t size)
{
	switch (rec->time_quality) {
	case WB_TIME_UNSYNCED:
		snprintf(buf, size, "up %3u:%02u:%02u ", rec->time / 3600,
			 rec->time / 60 % 60, rec->time % 60);
		return;
	case WB_TIME_SYNCED:
	case WB_TIME_HOLDOVER: {
		g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(
			(gint64) rec->time + WB_EPOCH_UNIX);
		g_autofree char *s = dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S") : NULL;

		snprintf(buf, size, "%s%s", s ? s : "?",
			 rec->time_quality == WB_TIME_HOLDOVER ? "H" : "Z");
		return;
	}
	}
	snprintf(buf, size, "?");
}

static int list_records(const char *scenario_path, const char *until)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GwSimScenario) sc = NULL;
	g_autoptr(GwSim) sim = NULL;
	struct gw_sim_config cfg = { .seed = 1 };
	struct gw_sim_stats st;
	int64_t end, secs;

	sc = scenario_path ? gw_sim_scenario_load(scenario_path, &error) :
			     gw_sim_scenario_new_default();
	if (!sc) {
		g_printerr("rehablink-sim: %s\n", error->message);
		return 2;
	}
	end = gw_sim_scenario_get_end(sc);
	if (until && !gw_sim_parse_time(until, &end)) {
		g_printerr("rehablink-sim: --until '%s': want HH:MM[:SS] or +DUR\n", until);
		return 2;
	}
	/* a flash big enough for everything the run makes: posture and
	 * steps at 1 s at most, status about hourly, events */
	secs = end / GW_SIM_US_PER_S;
	cfg.capacity = (uint32_t) MIN(INT64_C(10000000),
				      2 * secs + secs / 600 + 2 *
				      (int64_t) gw_sim_scenario_get_n_events(sc) + 64);
	sim = gw_sim_new(&cfg, sc, 0, &error);
	if (!sim || !gw_sim_advance(sim, end, &error)) {
		g_printerr("rehablink-sim: %s\n", error->message);
		return 2;
	}
	gw_sim_get_stats(sim, &st);
	printf("# %s: day %u, %u records until %s\n",
	       scenario_path ? scenario_path : "built-in scenario",
	       gw_sim_scenario_get_first_day(sc), st.stored, until ? until : "the end");
	for (uint32_t i = 0; i < st.stored; i++) {
		struct wb_record rec;
		g_autofree char *text = NULL;
		char when[40];

		if (!gw_sim_get_record(sim, i, &rec))
			continue;
		format_time(&rec, when, sizeof(when));
		text = gw_sim_record_to_string(&rec);
		printf("seq %8u  %s  %s\n", rec.seq, when, text);
	}
	if (st.overwritten)
		printf("# %" G_GUINT64_FORMAT " records overwritten (flash full)\n",
		       st.overwritten);
	return 0;
}

int main(int argc, char **argv)
{
	g_autoptr(GOptionContext) ctx = NULL;
	g_autoptr(GError) error = NULL;
	struct gw_fakebus_options o;
	int code = 2;

	setlocale(LC_ALL, "");
	gw_fakebus_options_init(&o);
	ctx = g_option_context_new("- the rehablink wearable simulator");
	g_option_context_set_summary(ctx,
		"Plays a wearable through a scenario (docs/simulator.md). --backend fake\n"
		"serves it as a fake bluetoothd on the bus in DBUS_SYSTEM_BUS_ADDRESS, with\n"
		"every fake-bluetoothd option below; --list prints its records.");
	g_option_context_add_main_entries(ctx, sim_entries, NULL);
	gw_fakebus_add_options(ctx, &o);
	if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
		g_printerr("rehablink-sim: %s\n", error->message);
		goto out;
	}
	if (argc > 1) {
		g_printerr("rehablink-sim: unexpected argument '%s'\n", argv[1]);
		goto out;
	}
	if (arg_list) {
		code = list_records(o.scenario, arg_until);
		goto out;
	}
	if (arg_backend && strcmp(arg_backend, "bluez") == 0) {
		struct gw_sim_gatt_run_opts p = {
			.adapter = o.adapter,
			.scenario_path = o.scenario,
			.state_path = arg_state,
			.local_name = arg_name,
			.speed = o.speed,
			.seed = (uint64_t) o.seed,
			.no_follow_range = arg_no_follow_range,
			.no_encrypt = arg_insecure,
			.no_agent = arg_no_agent,
			.no_default_agent = arg_no_default_agent,
			.print_ready = o.print_ready,
			.stdin_control = arg_stdin,
		};

		if (o.start && !gw_sim_parse_time(o.start, &p.start_us)) {
			g_printerr("rehablink-sim: --start '%s': want HH:MM[:SS] or +DUR\n",
				   o.start);
			goto out;
		}
		if (o.verbose)
			g_setenv("G_MESSAGES_DEBUG", "gw-sim-gatt", TRUE);
		code = gw_sim_gatt_run(&p);
		goto out;
	}
	if (arg_backend && strcmp(arg_backend, "fake") != 0) {
		g_printerr("rehablink-sim: --backend '%s': want fake or bluez\n", arg_backend);
		goto out;
	}
	if (arg_state) {
		g_autofree char *spec = NULL;
		guint n = o.device_specs ? g_strv_length(o.device_specs) : 0;

		if (n > 0 || o.devices > 1) {
			g_printerr("rehablink-sim: --state is for one wearable; "
				   "use --device ADDRESS,state=FILE for more\n");
			goto out;
		}
		spec = g_strdup_printf("AA:BB:CC:DD:EE:01,state=%s", arg_state);
		o.device_specs = g_new0(char *, 2);
		o.device_specs[0] = g_steal_pointer(&spec);
		o.devices = 0;
	}
	code = gw_fakebus_run(&o);
out:
	gw_fakebus_options_clear(&o);
	g_free(arg_backend);
	g_free(arg_state);
	g_free(arg_until);
	g_free(arg_name);
	return code;
}
