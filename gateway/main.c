// SPDX-License-Identifier: MIT
/*
 * rehablinkd: options, config, loop, signals, wiring, shutdown.
 *
 * The config file is a GKeyFile read through one table of keys with their
 * types, ranges and defaults (config/rehablink.conf documents each).
 */
#define G_LOG_DOMAIN "rehablinkd"

#include <errno.h>
#include <glib-unix.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "gateway.h"

#ifndef REHABLINK_VERSION
#define REHABLINK_VERSION "0.4.0"
#endif

static char *arg_config = NULL;
static gboolean arg_version = FALSE;
static gboolean arg_check = FALSE;
static gboolean arg_foreground = FALSE;
static gboolean arg_personal = FALSE;

static const GOptionEntry entries[] = {
	{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &arg_config, "The config file", "FILE" },
	{ "check-config", 0, 0, G_OPTION_ARG_NONE, &arg_check, "Check the config and exit", NULL },
	{ "foreground", 'f', 0, G_OPTION_ARG_NONE, &arg_foreground,
	  "Stay in the foreground (the default; for symmetry with other daemons)", NULL },
	{ "log-personal-info", 0, 0, G_OPTION_ARG_NONE, &arg_personal,
	  "Log full device addresses", NULL },
	{ "version", 0, 0, G_OPTION_ARG_NONE, &arg_version, "Print the version and exit", NULL },
	{ NULL }
};

/* ---- the config: one table ------------------------------------------------- */

enum key_type { K_STR, K_INT, K_BOOL, K_LIST };

struct key {
	const char *group, *name;
	enum key_type type;
	int64_t min, max;		/* K_INT */
	const char *def;		/* default as text, NULL: none */
	bool required;
};

static const struct key keys[] = {
	{ "gateway", "id", K_STR, 0, 0, NULL, true },
	{ "gateway", "patient", K_STR, 0, 0, NULL, true },
	{ "gateway", "state_dir", K_STR, 0, 0, "/var/lib/rehablink", false },
	{ "gateway", "clock", K_STR, 0, 0, "auto", false },
	{ "gateway", "surgery_date", K_STR, 0, 0, NULL, false },
	{ "escalation", "fallback_command", K_STR, 0, 0, NULL, false },
	{ "ble", "adapter", K_STR, 0, 0, "", false },
	{ "ble", "wearables", K_LIST, 0, 0, NULL, true },
	{ "ble", "aliases", K_LIST, 0, 0, NULL, false },
	{ "mqtt", "uri", K_STR, 0, 0, NULL, true },
	{ "mqtt", "ca_file", K_STR, 0, 0, NULL, false },
	{ "mqtt", "cert_file", K_STR, 0, 0, NULL, false },
	{ "mqtt", "key_file", K_STR, 0, 0, NULL, false },
	{ "mqtt", "username", K_STR, 0, 0, NULL, false },
	{ "mqtt", "password", K_STR, 0, 0, NULL, false },
	{ "mqtt", "allow_plaintext", K_BOOL, 0, 0, "false", false },
	{ "mqtt", "keepalive_s", K_INT, 1, 20, "15", false },
	{ "mqtt", "version", K_INT, 4, 5, "5", false },
	{ "mqtt", "window", K_INT, 1, 1024, "32", false },
	{ "mqtt", "backlog_rate", K_INT, 0, 100000, "1000", false },
	{ "store", "budget_mb", K_INT, 0, 1 << 20, "512", false },
	{ "store", "commit_interval_ms", K_INT, 10, 3600000, "300000", false },
};

static const struct key *key_find(const char *group, const char *name)
{
	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
		if (strcmp(keys[i].group, group) == 0 && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* Checks every key against the table; errors name file, group, key and
 * what is wrong. Unknown keys are warned about. */
static bool config_check(GKeyFile *kf, const char *file, GString *out)
{
	g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
	bool ok = true;

	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
		const struct key *k = &keys[i];
		g_autoptr(GError) e = NULL;
		g_autofree char *v = g_key_file_get_value(kf, k->group, k->name, NULL);

		if (!v) {
			if (k->required) {
				g_string_append_printf(out, "%s: [%s] %s: missing (required)\n", file,
						       k->group, k->name);
				ok = false;
			}
			continue;
		}
		if (k->type == K_INT) {
			gint64 x = g_key_file_get_int64(kf, k->group, k->name, &e);

			if (e || x < k->min || x > k->max) {
				g_string_append_printf(out, "%s: [%s] %s: \"%s\" is not an integer "
						       "%" G_GINT64_FORMAT "..%" G_GINT64_FORMAT "\n",
						       file, k->group, k->name, v, k->min, k->max);
				ok = false;
			}
		} else if (k->type == K_BOOL) {
			g_key_file_get_boolean(kf, k->group, k->name, &e);
			if (e) {
				g_string_append_printf(out, "%s: [%s] %s: \"%s\" is not true or false\n",
						       file, k->group, k->name, v);
				ok = false;
			}
		}
	}
	for (size_t g = 0; groups && groups[g]; g++) {
		g_auto(GStrv) names = g_key_file_get_keys(kf, groups[g], NULL, NULL);

		if (strcmp(groups[g], "rules") == 0)
			continue;	/* the engine's own table: rules_load */
		for (size_t n = 0; names && names[n]; n++)
			if (!key_find(groups[g], names[n]))
				g_string_append_printf(out, "%s: [%s] %s: unknown key (ignored)\n", file,
						       groups[g], names[n]);
	}
	return ok;
}

/* [rules]: every key through the engine's table (docs/escalation.md). */
static bool rules_load(GKeyFile *kf, const char *file, struct gw_rules_config *rc, GString *out)
{
	g_auto(GStrv) names = g_key_file_get_keys(kf, "rules", NULL, NULL);
	g_autoptr(GError) e = NULL;
	bool ok = true;

	gw_rules_config_init(rc);
	for (size_t n = 0; names && names[n]; n++) {
		g_autofree char *key = g_strconcat("rules.", names[n], NULL);
		g_autofree char *v = g_key_file_get_string(kf, "rules", names[n], NULL);
		g_autoptr(GError) ke = NULL;

		if (!v || !gw_rules_config_set(rc, key, v, &ke)) {
			g_string_append_printf(out, "%s: [rules] %s: %s\n", file, names[n],
					       ke ? ke->message : "not a string");
			ok = false;
		}
	}
	if (ok && !gw_rules_config_validate(rc, &e)) {
		g_string_append_printf(out, "%s: [rules]: %s\n", file, e->message);
		ok = false;
	}
	return ok;
}

static bool surgery_date(GKeyFile *kf, const char *file, struct gw_agg_config *agg, GString *out)
{
	g_autofree char *v = g_key_file_get_string(kf, "gateway", "surgery_date", NULL);
	unsigned int y, m, d;
	char extra;

	if (!v)
		return true;
	if (sscanf(v, "%4u-%2u-%2u%c", &y, &m, &d, &extra) != 3 ||
	    !g_date_valid_dmy((GDateDay)d, (GDateMonth)m, (GDateYear)y)) {
		g_string_append_printf(out, "%s: [gateway] surgery_date: \"%s\" is not a date "
				       "YYYY-MM-DD\n", file, v);
		return false;
	}
	agg->have_surgery_date = true;
	agg->surgery_year = (int)y;
	agg->surgery_month = (int)m;
	agg->surgery_day = (int)d;
	return true;
}

static char *get_str(GKeyFile *kf, const char *group, const char *name)
{
	const struct key *k = key_find(group, name);
	char *v = g_key_file_get_string(kf, group, name, NULL);

	if (!v && k && k->def)
		v = g_strdup(k->def);
	if (v && !*v) {
		g_free(v);
		v = NULL;
	}
	return v;
}

static int64_t get_int(GKeyFile *kf, const char *group, const char *name)
{
	const struct key *k = key_find(group, name);
	g_autoptr(GError) e = NULL;
	gint64 v = g_key_file_get_int64(kf, group, name, &e);

	return e ? g_ascii_strtoll(k->def, NULL, 10) : v;
}

/* ---- main ------------------------------------------------------------------ */

static gboolean on_signal(gpointer ud)
{
	g_main_loop_quit(ud);
	return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
	g_autoptr(GOptionContext) oc = g_option_context_new("- the rehablink bedside gateway");
	g_autoptr(GError) error = NULL;
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GString) findings = g_string_new(NULL);
	g_autoptr(GMainLoop) loop = NULL;
	g_autoptr(GwGateway) gw = NULL;
	struct gw_gateway_config cfg;
	g_autofree char *id = NULL, *patient = NULL, *state = NULL, *clock = NULL, *adapter = NULL;
	g_autofree char *fallback = NULL;
	g_autofree char *uri = NULL, *ca = NULL, *cert = NULL, *key = NULL, *user = NULL, *pass = NULL;
	g_auto(GStrv) wearables = NULL, aliases = NULL;
	gsize n_w = 0, n_a = 0;
	bool ok;

	g_option_context_add_main_entries(oc, entries, NULL);
	if (!g_option_context_parse(oc, &argc, &argv, &error)) {
		fprintf(stderr, "rehablinkd: %s\n", error->message);
		return 2;
	}
	if (arg_version) {
		printf("rehablinkd %s\n", REHABLINK_VERSION);
		return 0;
	}
	if (!arg_config) {
		fprintf(stderr, "rehablinkd: --config FILE is required\n");
		return 2;
	}
	if (!g_key_file_load_from_file(kf, arg_config, G_KEY_FILE_NONE, &error)) {
		fprintf(stderr, "rehablinkd: %s: %s\n", arg_config, error->message);
		return 1;
	}
	gw_gateway_config_init(&cfg);
	ok = config_check(kf, arg_config, findings);
	ok &= rules_load(kf, arg_config, &cfg.rules, findings);
	ok &= surgery_date(kf, arg_config, &cfg.agg, findings);
	if (findings->len)
		fputs(findings->str, stderr);
	if (arg_check)
		return ok ? 0 : 1;
	if (!ok)
		return 1;

	id = get_str(kf, "gateway", "id");
	fallback = get_str(kf, "escalation", "fallback_command");
	cfg.fallback_command = fallback;
	patient = get_str(kf, "gateway", "patient");
	state = get_str(kf, "gateway", "state_dir");
	clock = get_str(kf, "gateway", "clock");
	adapter = get_str(kf, "ble", "adapter");
	wearables = g_key_file_get_string_list(kf, "ble", "wearables", &n_w, NULL);
	aliases = g_key_file_get_string_list(kf, "ble", "aliases", &n_a, NULL);
	uri = get_str(kf, "mqtt", "uri");
	ca = get_str(kf, "mqtt", "ca_file");
	cert = get_str(kf, "mqtt", "cert_file");
	key = get_str(kf, "mqtt", "key_file");
	user = get_str(kf, "mqtt", "username");
	pass = get_str(kf, "mqtt", "password");
	if (!gw_clock_mode_parse(clock, &cfg.clock_mode)) {
		fprintf(stderr, "rehablinkd: %s: [gateway] clock: \"%s\" is not auto, synced or "
			"unsynced\n", arg_config, clock);
		return 1;
	}
	if (aliases && n_a != n_w) {
		fprintf(stderr, "rehablinkd: %s: [ble] aliases: %zu aliases for %zu wearables\n",
			arg_config, (size_t)n_a, (size_t)n_w);
		return 1;
	}
	cfg.gateway_id = id;
	cfg.patient_id = patient;
	cfg.version = REHABLINK_VERSION;
	cfg.state_dir = state;
	cfg.wearables = (const char *const *)wearables;
	cfg.aliases = (const char *const *)aliases;
	cfg.n_wearables = n_w;
	cfg.adapter = adapter;
	cfg.log_personal = arg_personal;
	cfg.store_budget_bytes = (uint64_t)get_int(kf, "store", "budget_mb") << 20;
	cfg.commit_interval_ms = (unsigned int)get_int(kf, "store", "commit_interval_ms");
	cfg.backlog_rate = (unsigned int)get_int(kf, "mqtt", "backlog_rate");
	cfg.uplink.uri = uri;
	cfg.uplink.ca_file = ca;
	cfg.uplink.cert_file = cert;
	cfg.uplink.key_file = key;
	cfg.uplink.username = user;
	cfg.uplink.password = pass;
	cfg.uplink.allow_plaintext = g_key_file_get_boolean(kf, "mqtt", "allow_plaintext", NULL);
	cfg.uplink.keepalive_s = (int)get_int(kf, "mqtt", "keepalive_s");
	cfg.uplink.mqtt_version = (int)get_int(kf, "mqtt", "version");
	cfg.uplink.window = (unsigned int)get_int(kf, "mqtt", "window");

	loop = g_main_loop_new(NULL, FALSE);
	gw = gw_gateway_new(&cfg, &error);
	if (!gw) {
		fprintf(stderr, "rehablinkd: %s\n", error->message);
		return 1;
	}
	g_unix_signal_add(SIGTERM, on_signal, loop);
	g_unix_signal_add(SIGINT, on_signal, loop);
	sd_notify(0, "READY=1\nSTATUS=running");
	g_message("running (gateway %s, %zu wearable(s))", id, (size_t)n_w);
	g_main_loop_run(loop);
	sd_notify(0, "STOPPING=1");
	g_message("stopping");
	gw_gateway_stop(gw, 3000);
	return 0;
}
