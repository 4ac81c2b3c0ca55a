/* SPDX-License-Identifier: MIT */
/*
 * rehablinkctl: the field-diagnostics CLI of rehablinkd (docs/control-api.md).
 *
 *   rehablinkctl [--json] [--config FILE] [--timeout SECONDS] [--no-color]
 *                COMMAND [ARGS]
 *
 * main(): the global options (GOption, stopping at the command), the
 * command table, and each command's own options parsed together with the
 * global ones (ctl_parse_command), so that they may follow the command.
 */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "ctl-common.h"

#ifndef REHABLINK_VERSION
#define REHABLINK_VERSION "0.0.0"	/* the Makefile sets it */
#endif

/* the global options: one set of variables, parsed in main() and again
 * after the command */
static gboolean arg_json;
static gboolean arg_no_color;
static gboolean arg_version;
static char *arg_config;
static double arg_timeout = 10.0;

static const GOptionEntry global_entries[] = {
	{ "json", 0, 0, G_OPTION_ARG_NONE, &arg_json,
	  "Print one JSON document (the daemon's answer unchanged)", NULL },
	{ "config", 0, 0, G_OPTION_ARG_FILENAME, &arg_config,
	  "rehablinkd's config file, read by doctor (default " CTL_DEFAULT_CONFIG ")", "FILE" },
	{ "timeout", 0, 0, G_OPTION_ARG_DOUBLE, &arg_timeout,
	  "Timeout of each call and connection attempt (default 10)", "SECONDS" },
	{ "no-color", 0, 0, G_OPTION_ARG_NONE, &arg_no_color,
	  "No colour, even on a terminal", NULL },
	{ NULL }
};

static const GOptionEntry main_entries[] = {
	{ "version", 0, 0, G_OPTION_ARG_NONE, &arg_version, "Print the version and exit", NULL },
	{ NULL }
};

struct command {
	const char *name;
	int (*run)(struct ctl *c, int argc, char **argv);
	const char *help;
};

static const struct command commands[] = {
	{ "status", ctl_cmd_status, "one screen: adapter, wearables, broker, outbox, alerts, clock, disk, errors" },
	{ "devices", ctl_cmd_devices, "the wearables: link, battery, last record, freshness" },
	{ "alerts", ctl_cmd_alerts, "[list] [--all] | show ALERT_ID: open alerts, one with its audit" },
	{ "queue", ctl_cmd_queue, "the outbox: depth, oldest, by kind, head" },
	{ "data", ctl_cmd_data, "[--wearable ALIAS] [--since TIME]: posture and steps charts" },
	{ "doctor", ctl_cmd_doctor, "checks, each with a verdict and a hint" },
	{ "export", ctl_cmd_export, "[--format csv|json] [--since TIME] [--output FILE]" },
	{ "pair", ctl_cmd_pair, "ADDRESS: add a wearable" },
	{ "forget", ctl_cmd_forget, "ADDRESS: stop syncing a wearable (its data stays)" },
	{ "test-alert", ctl_cmd_test_alert, "raise a test alert through the whole path to the clinic" },
	{ "reload", ctl_cmd_reload, "read the config file again (as SIGHUP)" },
};

static char *commands_text(void)
{
	GString *s = g_string_new("Commands:\n");

	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
		g_string_append_printf(s, "  %-11s %s\n", commands[i].name, commands[i].help);
	g_string_append(s,
		"\nTIME: Unix seconds, ISO 8601 (2026-11-27T10:00:00Z) or relative\n"
		"(-2h, -30m, -3d); default 24 h ago.\n"
		"\nExit status: 0 ok, 1 a problem found, 2 usage, 3 rehablinkd not\n"
		"reachable, 4 rehablinkd refused or failed the request.");
	return g_string_free(s, FALSE);
}

int ctl_usage_error(const char *fmt, ...)
{
	va_list ap;
	g_autofree char *msg = NULL;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	fprintf(stderr, "rehablinkctl: %s\n"
		"usage: rehablinkctl [--json] [--config FILE] [--timeout SECONDS] "
		"[--no-color] COMMAND [ARGS]\n"
		"       rehablinkctl --help   (the commands; COMMAND --help for each)\n", msg);
	return CTL_EXIT_USAGE;
}

static bool apply_globals(struct ctl *c)
{
	const char *term = getenv("TERM");

	if (!(arg_timeout > 0 && arg_timeout <= 3600)) {
		ctl_usage_error("--timeout: %g is not in 0 < SECONDS <= 3600", arg_timeout);
		return false;
	}
	c->json = arg_json;
	c->config_path = arg_config ? arg_config : CTL_DEFAULT_CONFIG;
	c->timeout_ms = (int)(arg_timeout * 1000.0 + 0.5);
	if (c->timeout_ms < 1)
		c->timeout_ms = 1;
	c->color = !arg_no_color && isatty(STDOUT_FILENO) && !getenv("NO_COLOR") &&
		   !(term && strcmp(term, "dumb") == 0);
	return true;
}

bool ctl_parse_command(struct ctl *c, const char *usage, const char *summary,
		       const GOptionEntry *entries, int *argc, char ***argv)
{
	g_autoptr(GOptionContext) ctx = g_option_context_new(usage);
	g_autoptr(GError) error = NULL;

	if (entries)
		g_option_context_add_main_entries(ctx, entries, NULL);
	g_option_context_add_main_entries(ctx, global_entries, NULL);
	if (summary)
		g_option_context_set_summary(ctx, summary);
	if (!g_option_context_parse(ctx, argc, argv, &error)) {
		ctl_usage_error("%s: %s", (*argv)[0], error->message);
		return false;
	}
	return apply_globals(c);
}

static int terminal_cols(void)
{
	struct winsize ws;
	const char *env = getenv("COLUMNS");

	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	if (env && atoi(env) >= 40)
		return atoi(env);
	return 80;
}

int main(int argc, char **argv)
{
	g_autoptr(GOptionContext) ctx = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *desc = commands_text();
	struct ctl c = { 0 };
	int rc;

	setlocale(LC_ALL, "");
	g_set_prgname("rehablinkctl");
	c.utf8 = g_get_charset(NULL);
	c.cols = terminal_cols();
	c.now = (double)g_get_real_time() / 1e6;

	ctx = g_option_context_new("COMMAND [ARGS]");
	g_option_context_set_summary(ctx, "Field diagnostics of rehablinkd, the bedside gateway.");
	g_option_context_set_description(ctx, desc);
	g_option_context_add_main_entries(ctx, main_entries, NULL);
	g_option_context_add_main_entries(ctx, global_entries, NULL);
	g_option_context_set_strict_posix(ctx, TRUE);	/* stop at the command */
	if (!g_option_context_parse(ctx, &argc, &argv, &error))
		return ctl_usage_error("%s", error->message);
	if (arg_version) {
		printf("rehablinkctl %s\n", REHABLINK_VERSION);
		return CTL_EXIT_OK;
	}
	if (argc < 2)
		return ctl_usage_error("no command given");
	if (!apply_globals(&c))
		return CTL_EXIT_USAGE;

	rc = -1;
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
		if (strcmp(argv[1], commands[i].name) == 0) {
			rc = commands[i].run(&c, argc - 1, argv + 1);
			break;
		}
	}
	if (rc < 0)
		rc = ctl_usage_error("unknown command '%s'", argv[1]);
	g_clear_object(&c.bus);
	g_clear_error(&c.bus_error);
	g_free(arg_config);
	return rc;
}
