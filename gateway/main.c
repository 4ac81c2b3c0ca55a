// SPDX-License-Identifier: MIT
/*
 * rehablinkd: options, config, logging, loop, signals, wiring, shutdown.
 *
 *   options (GOption) -> log (gateway/log.c) -> config (gateway/config.c)
 *   -> GwGateway -> GwControl -> sd_notify READY=1 -> the main loop
 *
 * SIGTERM, SIGINT: a graceful stop (commit, the offline status, disconnect).
 * SIGHUP, and the control API's Reload(): the config file is read again;
 * with any error nothing is applied, else the reloadable keys are applied
 * (gw_gateway_reconfigure, the log level) and the changed restart-only
 * keys are named. systemd: READY=1, STATUS= every few seconds, WATCHDOG=1
 * at half the watchdog interval, RELOADING=1 around a reload, STOPPING=1.
 *
 * Exit codes: 0 a clean stop (and --version, a good --check-config), 1 a
 * config or start-up error, 2 a bad command line.
 */
#define G_LOG_DOMAIN "rehablinkd"

#include <errno.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "config.h"
#include "control.h"
#include "gateway.h"
#include "log.h"

#ifndef REHABLINK_VERSION
#define REHABLINK_VERSION "0.0.0"	/* the Makefile sets it */
#endif

#define STATUS_INTERVAL_S 5
#define STOP_TIMEOUT_MS 3000

static char *arg_config = NULL;
static gboolean arg_version = FALSE;
static gboolean arg_check = FALSE;
static gboolean arg_foreground = FALSE;
static gboolean arg_personal = FALSE;
static bool arg_level_set = false;
static GLogLevelFlags arg_level = G_LOG_LEVEL_MESSAGE;

static gboolean parse_level(const char *name, const char *value, gpointer data, GError **error)
{
	(void)name;
	(void)data;
	if (!gw_log_level_parse(value, &arg_level)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "--log-level: \"%s\" is not one of error, warning, message, info, debug",
			    value);
		return FALSE;
	}
	arg_level_set = true;
	return TRUE;
}

static const GOptionEntry entries[] = {
	{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &arg_config, "The config file", "FILE" },
	{ "check-config", 0, 0, G_OPTION_ARG_NONE, &arg_check,
	  "Check the config file, print what is wrong, exit 0 (good) or 1", NULL },
	{ "foreground", 'f', 0, G_OPTION_ARG_NONE, &arg_foreground,
	  "Stay in the foreground (the default; for symmetry with other daemons)", NULL },
	{ "log-level", 'l', 0, G_OPTION_ARG_CALLBACK, (gpointer)parse_level,
	  "The least severe level logged: error, warning, message, info or debug "
	  "(overrides [log] level)", "LEVEL" },
	{ "log-personal-info", 0, 0, G_OPTION_ARG_NONE, &arg_personal,
	  "Log full device addresses (and show them and the patient id in the control API)",
	  NULL },
	{ "version", 'V', 0, G_OPTION_ARG_NONE, &arg_version, "Print the version and exit", NULL },
	{ NULL }
};

struct daemon {
	GMainLoop *loop;
	GwGateway *gw;
	GwControl *control;
	struct gw_gateway_config base;	/* what no key sets */
	GwConfig *started;		/* the config started with: restart-only keys */
	GwConfig *applied;		/* the last one applied (may be started) */
	char *status;			/* the last STATUS= sent */
	bool restart;			/* the loop quit for a restart */
};

static int usage(GOptionContext *oc, const char *what)
{
	g_autofree char *help = g_option_context_get_help(oc, TRUE, NULL);

	fprintf(stderr, "rehablinkd: %s\n\n%s", what, help);
	return 2;
}

static void apply_level(const GwConfig *cfg)
{
	GLogLevelFlags l = G_LOG_LEVEL_MESSAGE;

	if (arg_level_set)
		l = arg_level;
	else if (cfg->log_level)
		gw_log_level_parse(cfg->log_level, &l);
	gw_log_set_level(l);
}

/* ---- sd_notify -------------------------------------------------------------- */

static char *status_text(struct daemon *d)
{
	struct gw_gateway_stats st;
	size_t n = d->started->gw.n_wearables;

	gw_gateway_get_stats(d->gw, &st);
	return g_strdup_printf("%zu wearable%s, broker %s, %u in flight, %" G_GUINT64_FORMAT
			       " published, %" G_GUINT64_FORMAT " records stored, clock %s%s",
			       n, n == 1 ? "" : "s", st.connected ? "connected" : "not connected",
			       st.in_flight, st.messages_published, st.records_stored,
			       st.clock_synced ? "synchronised" : "not synchronised",
			       st.store_corrupt_aside ? ", store was corrupt (moved aside)" : "");
}

static void notify_status(struct daemon *d, const char *extra)
{
	g_autofree char *s = status_text(d);

	if (!extra && g_strcmp0(s, d->status) == 0)
		return;
	sd_notifyf(0, "%sSTATUS=%s", extra ? extra : "", s);
	g_free(d->status);
	d->status = g_steal_pointer(&s);
}

static gboolean status_cb(gpointer ud)
{
	notify_status(ud, NULL);
	return G_SOURCE_CONTINUE;
}

static gboolean watchdog_cb(gpointer ud)
{
	(void)ud;
	sd_notify(0, "WATCHDOG=1");
	return G_SOURCE_CONTINUE;
}

/* ---- reload ----------------------------------------------------------------- */

static void add_strings(JsonBuilder *b, const char *member, GPtrArray *a)
{
	json_builder_set_member_name(b, member);
	json_builder_begin_array(b);
	for (guint i = 0; a && i < a->len; i++)
		json_builder_add_string_value(b, a->pdata[i]);
	json_builder_end_array(b);
}

static char *joined(GPtrArray *a)
{
	g_autoptr(GString) s = g_string_new(NULL);

	for (guint i = 0; i < a->len; i++)
		g_string_append_printf(s, "%s%s", i ? ", " : "", (const char *)a->pdata[i]);
	return g_strdup(s->str);
}

/* The uplink's own checks (plaintext off loopback, TLS files), so that
 * --check-config and a reload refuse what the start would. */
static void check_uplink(GwConfig *c)
{
	g_autoptr(GError) e = NULL;

	if (gw_config_ok(c) && c->gw.uplink.uri && !gw_uplink_config_check(&c->gw.uplink, &e))
		g_ptr_array_add(c->errors, g_strdup_printf("%s: [mqtt]: %s", c->file, e->message));
}

/*
 * Re-reads the config file: SIGHUP and the control API's Reload(). With
 * any error nothing is applied; else the changed reloadable keys are
 * applied and the changed restart-only keys (against the config the daemon
 * started with: they stay pending until a restart) are named. Answers
 * {"ok","applied","needs_restart","errors"} (g_free).
 */
static char *reload_json(void *user_data)
{
	struct daemon *d = user_data;
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(GPtrArray) applied = NULL, needs_restart = NULL;
	g_autoptr(GPtrArray) unused_rel = NULL, unused_res = NULL;
	GwConfig *n;
	bool ok;

	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" G_GINT64_FORMAT "\nSTATUS=reloading %s",
		   g_get_monotonic_time(), arg_config);
	n = gw_config_load_file(arg_config, &d->base);
	check_uplink(n);
	ok = gw_config_ok(n);
	if (!ok) {
		for (guint i = 0; i < n->errors->len; i++)
			g_warning("reload: %s", (const char *)n->errors->pdata[i]);
		g_warning("reload: %s: %u error(s): nothing applied", arg_config, n->errors->len);
		applied = g_ptr_array_new();
		needs_restart = g_ptr_array_new();
	} else {
		for (guint i = 0; i < n->warnings->len; i++)
			g_warning("reload: %s", (const char *)n->warnings->pdata[i]);
		gw_config_diff(d->applied, n, &applied, &unused_res);
		gw_config_diff(d->started, n, &unused_rel, &needs_restart);
		if (applied->len) {
			g_autofree char *s = joined(applied);

			gw_gateway_reconfigure(d->gw, &n->gw);
			apply_level(n);
			g_message("reload: applied: %s", s);
			if (arg_level_set && g_ptr_array_find_with_equal_func(applied, "log.level",
									      g_str_equal, NULL))
				g_message("reload: log.level: --log-level %s overrides it",
					  gw_log_level_name(arg_level));
		} else {
			g_message("reload: no reloadable key changed");
		}
		if (needs_restart->len) {
			g_autofree char *s = joined(needs_restart);

			g_message("reload: changed, needs a restart: %s", s);
		}
		if (d->applied != d->started)
			gw_config_free(d->applied);
		d->applied = n;
	}

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "ok");
	json_builder_add_boolean_value(b, ok);
	add_strings(b, "applied", applied);
	add_strings(b, "needs_restart", needs_restart);
	add_strings(b, "errors", n->errors);
	json_builder_end_object(b);
	if (!ok)
		gw_config_free(n);
	root = json_builder_get_root(b);
	notify_status(d, "READY=1\n");
	return json_to_string(root, FALSE);
}

/* ---- main ------------------------------------------------------------------- */

/* Pair()/Forget() changed the wearables: the gateway is made again (from
 * the main loop, after the answer went out). */
static void restart_hook(void *user_data)
{
	struct daemon *d = user_data;

	d->restart = true;
	g_main_loop_quit(d->loop);
}

/* The gateway on d->started, and its control API. */
static bool start(struct daemon *d, GError **error)
{
	struct gw_control_config ccfg;
	g_autoptr(GError) e = NULL;

	d->gw = gw_gateway_new(&d->started->gw, error);
	if (!d->gw)
		return false;
	gw_control_config_init(&ccfg);
	ccfg.reload = reload_json;
	ccfg.restart = restart_hook;
	ccfg.user_data = d;
	d->control = gw_control_new(d->gw, &ccfg, &e);
	if (!d->control)
		g_warning("control API: %s (running without it)", e->message);
	return true;
}

static gboolean on_stop(gpointer ud)
{
	struct daemon *d = ud;

	g_message("stop requested");
	g_main_loop_quit(d->loop);
	return G_SOURCE_CONTINUE;
}

static gboolean on_hup(gpointer ud)
{
	g_free(reload_json(ud));
	return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
	g_autoptr(GOptionContext) oc = g_option_context_new("- the rehablink bedside gateway");
	g_autoptr(GError) error = NULL;
	g_autofree char *findings = NULL;
	struct daemon d = { 0 };
	guint status_timer = 0, watchdog_timer = 0;
	uint64_t wd_usec = 0;
	int rc = 0;
	bool ok;

	g_option_context_add_main_entries(oc, entries, NULL);
	g_option_context_set_description(oc,
		"Exit status: 0 a clean stop, 1 a config or start-up error, 2 a bad command "
		"line.\nSIGHUP reloads the config file; SIGTERM stops.\n");
	if (!g_option_context_parse(oc, &argc, &argv, &error))
		return usage(oc, error->message);
	if (argc > 1) {
		g_autofree char *what = g_strdup_printf("unexpected argument '%s'", argv[1]);

		return usage(oc, what);
	}
	if (arg_version) {
		printf("rehablinkd %s\n", REHABLINK_VERSION);
		return 0;
	}
	if (!arg_config)
		return usage(oc, "--config FILE is required");

	gw_log_init();
	gw_log_set_personal(arg_personal);
	gw_log_set_level(arg_level_set ? arg_level : G_LOG_LEVEL_MESSAGE);
	gw_gateway_config_init(&d.base);
	d.base.version = REHABLINK_VERSION;
	d.base.log_personal = arg_personal;
	d.started = d.applied = gw_config_load_file(arg_config, &d.base);
	check_uplink(d.started);
	ok = gw_config_ok(d.started);
	findings = gw_config_findings(d.started);
	if (arg_check) {
		fputs(findings, stdout);
		printf("%s: %s (%u error(s), %u warning(s))\n", arg_config,
		       ok ? "ok" : "not valid", d.started->errors->len, d.started->warnings->len);
		gw_config_free(d.started);
		return ok ? 0 : 1;
	}
	if (!ok) {
		fputs(findings, stderr);
		fprintf(stderr, "rehablinkd: %s: not started (%u error(s))\n", arg_config,
			d.started->errors->len);
		gw_config_free(d.started);
		return 1;
	}
	apply_level(d.started);
	for (guint i = 0; i < d.started->warnings->len; i++)
		g_warning("%s", (const char *)d.started->warnings->pdata[i]);

	d.loop = g_main_loop_new(NULL, FALSE);
	g_unix_signal_add(SIGTERM, on_stop, &d);
	g_unix_signal_add(SIGINT, on_stop, &d);
	g_unix_signal_add(SIGHUP, on_hup, &d);
	for (;;) {
		if (!start(&d, &error)) {
			g_warning("not started: %s", error->message);
			sd_notifyf(0, "STATUS=not started: %s", error->message);
			rc = 1;
			break;
		}
		if (!status_timer)
			status_timer = g_timeout_add_seconds(STATUS_INTERVAL_S, status_cb, &d);
		if (!watchdog_timer && sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
			watchdog_timer = g_timeout_add((guint)MAX(wd_usec / 2000, 1), watchdog_cb,
						       &d);
			sd_notify(0, "WATCHDOG=1");
		}
		g_message("running (gateway %s, %zu wearable(s), log level %s%s)",
			  d.started->gw.gateway_id, gw_gateway_n_wearables(d.gw),
			  gw_log_level_name(gw_log_get_level()),
			  arg_personal ? ", personal info logged" : "");
		notify_status(&d, "READY=1\n");
		g_main_loop_run(d.loop);

		if (!d.restart)
			sd_notify(0, "STOPPING=1\nSTATUS=stopping");
		g_message(d.restart ? "restarting the gateway" : "stopping");
		gw_control_free(g_steal_pointer(&d.control));
		gw_gateway_stop(d.gw, STOP_TIMEOUT_MS);
		g_clear_pointer(&d.gw, gw_gateway_free);
		if (!d.restart)
			break;
		/* the last good config now takes effect in full */
		d.restart = false;
		if (d.applied != d.started) {
			gw_config_free(d.started);
			d.started = d.applied;
		}
	}
	if (status_timer)
		g_source_remove(status_timer);
	if (watchdog_timer)
		g_source_remove(watchdog_timer);
	g_main_loop_unref(d.loop);
	if (d.applied != d.started)
		gw_config_free(d.applied);
	gw_config_free(d.started);
	g_free(d.status);
	if (rc == 0)
		g_message("stopped");
	return rc;
}
