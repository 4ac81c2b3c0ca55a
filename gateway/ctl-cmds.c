/* SPDX-License-Identifier: MIT */
/*
 * rehablinkctl: the commands that show one answer of the control API
 * (status, devices, alerts, queue) or ask for one action (pair, forget,
 * test-alert, reload). --json prints the daemon's JSON unchanged.
 */
#include <stdio.h>
#include <string.h>

#include "ctl-common.h"

static bool no_args(int argc, char **argv, int *rc)
{
	if (argc > 1) {
		*rc = ctl_usage_error("%s: unexpected argument '%s'", argv[0], argv[1]);
		return false;
	}
	return true;
}

/* "2 s ago" or "never" */
static char *ago(JsonObject *o, const char *age_key, const char *at_key, double now)
{
	double v;
	g_autofree char *a = NULL;

	if (ctl_num(o, age_key, &v) || (ctl_num(o, at_key, &v) && ((v = now - v), true))) {
		a = ctl_age(v);
		return g_strdup_printf("%s ago", a);
	}
	return g_strdup("never");
}

/* ---- the wearables table (status, devices) ---- */

static void wearables_table(struct ctl *c, GString *out, JsonArray *ws, bool wide)
{
	int aw = 8;	/* "WEARABLE" */
	guint n = ws ? json_array_get_length(ws) : 0;

	for (guint i = 0; i < n; i++) {
		const char *alias = ctl_str(ctl_node_obj(json_array_get_element(ws, i)), "alias");

		if (alias && (int)strlen(alias) > aw)
			aw = MIN((int)strlen(alias), 14);
	}
	g_string_append(out, ctl_col(c, CTL_BOLD));
	ctl_pad(out, "WEARABLE", aw + 1);
	ctl_pad(out, "ADDRESS", 18);
	ctl_pad(out, "LINK", 13);
	ctl_pad(out, "BATT", 5);
	ctl_pad(out, "LAST RECORD", 12);
	g_string_append(out, wide ? "FRESH RECORDS LAST SEQ" : "FRESH");
	g_string_append_printf(out, "%s\n", ctl_col(c, CTL_RESET));
	if (n == 0)
		g_string_append(out, "(no wearables configured)\n");
	for (guint i = 0; i < n; i++) {
		JsonObject *w = ctl_node_obj(json_array_get_element(ws, i));
		const char *state = ctl_str(w, "state");
		bool fresh = ctl_bool(w, "fresh", false);
		bool connected = ctl_bool(w, "connected", false);
		double v;
		g_autofree char *batt = NULL;
		g_autofree char *last = ago(w, "last_record_age_s", "last_record_at", c->now);
		g_autofree char *link = g_strdup(state ? state : connected ? "connected" : "?");

		batt = ctl_num(w, "battery_pct", &v) ? g_strdup_printf("%.0f%%", v) : g_strdup("-");
		ctl_pad(out, ctl_str(w, "alias"), aw + 1);
		ctl_pad(out, ctl_str(w, "address"), 18);
		g_string_append(out, ctl_col(c, strcmp(link, "live") == 0 ||
						 strcmp(link, "streaming") == 0 ? CTL_GREEN
					       : strcmp(link, "disabled") == 0 ||
						 strcmp(link, "needs-repair") == 0 ? CTL_RED
					       : CTL_YELLOW));
		ctl_pad(out, link, 12);
		g_string_append_printf(out, "%s ", ctl_col(c, CTL_RESET));
		g_string_append(out, ctl_col(c, ctl_num(w, "battery_pct", &v) && v < 15 ? CTL_YELLOW
					       : CTL_RESET));
		ctl_pad(out, batt, 4);
		g_string_append_printf(out, "%s ", ctl_col(c, CTL_RESET));
		ctl_pad(out, last, 12);
		g_string_append_printf(out, "%s%s%s", ctl_col(c, fresh ? CTL_GREEN : CTL_RED),
				       fresh ? "yes" : "NO ", ctl_col(c, CTL_RESET));
		if (wide) {
			g_autofree char *recs = ctl_num(w, "records", &v)
				? g_strdup_printf("%.0f", v) : g_strdup("-");
			g_autofree char *seq = ctl_num(w, "last_seq", &v)
				? g_strdup_printf("%.0f", v) : g_strdup("-");

			g_string_append(out, "   ");
			ctl_pad(out, recs, 8);
			g_string_append(out, seq);
		}
		g_string_append_c(out, '\n');
		if (wide && ctl_str(w, "last_error"))
			g_string_append_printf(out, "%*s%slast error: %s%s\n", aw + 1, "",
					       ctl_col(c, CTL_DIM), ctl_str(w, "last_error"),
					       ctl_col(c, CTL_RESET));
	}
}

/* ---- status ---- */

static void row(struct ctl *c, GString *out, const char *label, const char *fmt, ...)
	G_GNUC_PRINTF(4, 5);
static void row(struct ctl *c, GString *out, const char *label, const char *fmt, ...)
{
	va_list ap;
	g_autofree char *text = NULL;
	g_autofree char *cut = NULL;

	va_start(ap, fmt);
	text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	cut = ctl_cut(c, text, c->cols - 14);
	g_string_append_printf(out, "%s", ctl_col(c, CTL_BOLD));
	ctl_pad(out, label, 13);
	g_string_append_printf(out, "%s %s\n", ctl_col(c, CTL_RESET), cut);
}

static void problem(GPtrArray *problems, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void problem(GPtrArray *problems, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_ptr_array_add(problems, g_strdup_vprintf(fmt, ap));
	va_end(ap);
}

int ctl_cmd_status(struct ctl *c, int argc, char **argv)
{
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GString) out = g_string_new(NULL);
	JsonObject *s, *o;
	JsonArray *ws, *errors;
	int rc;
	double v, w;

	if (!ctl_parse_command(c, "status", "One screen: what the gateway is doing and "
			       "what is wrong.", NULL, &argc, &argv) || !no_args(argc, argv, &rc))
		return CTL_EXIT_USAGE;
	root = ctl_call(c, "GetStatus", NULL, &rc);
	if (!root)
		return rc;
	s = ctl_node_obj(root);

	/* what counts as wrong: the same things doctor fails or warns on */
	o = ctl_obj(s, "adapter");
	if (!ctl_bool(ctl_obj(s, "bluetoothd"), "running", true))
		problem(problems, "bluetoothd not running");
	else if (!ctl_bool(o, "present", true))
		problem(problems, "no Bluetooth adapter");
	else if (!ctl_bool(o, "powered", true))
		problem(problems, "adapter not powered");
	ws = ctl_arr(s, "wearables");
	for (guint i = 0; ws && i < json_array_get_length(ws); i++) {
		JsonObject *we = ctl_node_obj(json_array_get_element(ws, i));

		if (!ctl_bool(we, "fresh", true)) {
			g_autofree char *a = ago(we, "last_record_age_s", "last_record_at", c->now);

			problem(problems, "%s silent (last record %s)", ctl_str(we, "alias"), a);
		}
	}
	o = ctl_obj(s, "broker");
	if (o && !ctl_bool(o, "connected", false))
		problem(problems, "broker not connected");
	o = ctl_obj(s, "outbox");
	if (ctl_num(o, "oldest_age_s", &v) && v > 600) {
		g_autofree char *a = ctl_age(v);

		problem(problems, "outbox not draining (oldest %s)", a);
	}
	o = ctl_obj(s, "store");
	if (ctl_str(o, "state") && strcmp(ctl_str(o, "state"), "over_budget") == 0)
		problem(problems, "store over its budget");
	if (ctl_str(o, "state") && strcmp(ctl_str(o, "state"), "corrupt_moved_aside") == 0)
		problem(problems, "store was corrupt, moved aside");
	if (!ctl_bool(ctl_obj(s, "clock"), "synced", true))
		problem(problems, "clock not synchronised");

	if (c->json) {
		ctl_print_json(root);
		return problems->len ? CTL_EXIT_PROBLEM : CTL_EXIT_OK;
	}

	{
		g_autofree char *up = ctl_age(ctl_num_or(s, "uptime_s", 0));

		row(c, out, "rehablinkd", "%s, gateway %s, pid %.0f, up %s%s",
		    ctl_str(s, "version") ? ctl_str(s, "version") : "?",
		    ctl_str(s, "gateway_id") ? ctl_str(s, "gateway_id") : "?",
		    ctl_num_or(s, "pid", 0), up,
		    ctl_bool(s, "personal_info", false) ? ", personal info shown" : "");
	}
	o = ctl_obj(s, "adapter");
	row(c, out, "adapter", "%s: %s, %s",
	    ctl_str(o, "name") && g_str_has_prefix(ctl_str(o, "name"), "hci")
	    ? ctl_str(o, "name") : "the first",
	    ctl_bool(o, "present", false) ? "present" : "ABSENT",
	    ctl_bool(o, "powered", false) ? "powered" : "NOT POWERED");
	row(c, out, "bluetoothd", "%s",
	    ctl_bool(ctl_obj(s, "bluetoothd"), "running", false) ? "running" : "NOT RUNNING");
	o = ctl_obj(s, "broker");
	{
		g_autofree char *since = NULL;
		const char *uri = ctl_str(o, "uri") ? ctl_str(o, "uri") : "?";

		if (ctl_bool(o, "connected", false)) {
			since = ctl_num(o, "since", &v) ? ctl_age(c->now - v) : g_strdup("?");
			row(c, out, "broker", "%s connected for %s (%.0f connects, %.0f failed)",
			    uri, since, ctl_num_or(o, "connects", 0),
			    ctl_num_or(o, "connect_failures", 0));
		} else {
			row(c, out, "broker", "%s NOT CONNECTED (%.0f connects, %.0f failed)",
			    uri, ctl_num_or(o, "connects", 0), ctl_num_or(o, "connect_failures", 0));
		}
		if (ctl_str(o, "last_error"))
			row(c, out, "", "last error: %s", ctl_str(o, "last_error"));
	}
	o = ctl_obj(s, "outbox");
	{
		g_autofree char *oldest = ctl_num(o, "oldest_age_s", &v) ? ctl_age(v) : NULL;

		row(c, out, "outbox", "%.0f messages%s%s, %.0f in flight",
		    ctl_num_or(o, "depth", 0), oldest ? ", oldest " : "", oldest ? oldest : "",
		    ctl_num_or(o, "in_flight", 0));
	}
	o = ctl_obj(s, "alerts");
	row(c, out, "alerts", "%.0f open, %.0f unacknowledged%s", ctl_num_or(o, "open", 0),
	    ctl_num_or(o, "unacknowledged", 0),
	    ctl_num_or(o, "open", 0) > 0 ? " (rehablinkctl alerts)" : "");
	o = ctl_obj(s, "clock");
	row(c, out, "clock", "%s (mode %s)",
	    ctl_bool(o, "synced", false) ? "synchronised" : "NOT SYNCHRONISED",
	    ctl_str(o, "mode") ? ctl_str(o, "mode") : "?");
	o = ctl_obj(s, "store");
	{
		g_autofree char *size = ctl_bytes(ctl_num_or(o, "size_bytes", 0));
		g_autofree char *budget = ctl_num(o, "budget_bytes", &v) && v > 0 ? ctl_bytes(v) : NULL;
		g_autofree char *fr = ctl_num(o, "free_bytes", &w) ? ctl_bytes(w) : NULL;

		if (budget)
			row(c, out, "store", "%s of %s (%.1f %%), %s%s%s", size, budget,
			    100 * ctl_num_or(o, "fill", 0), ctl_str(o, "state") ? ctl_str(o, "state") : "?",
			    fr ? "; disk free " : "", fr ? fr : "");
		else
			row(c, out, "store", "%s, no budget, %s%s%s", size,
			    ctl_str(o, "state") ? ctl_str(o, "state") : "?",
			    fr ? "; disk free " : "", fr ? fr : "");
		if (ctl_str(o, "corrupt_aside"))
			row(c, out, "", "corrupt store moved aside to %s", ctl_str(o, "corrupt_aside"));
	}
	o = ctl_obj(s, "counters");
	if (o)
		row(c, out, "counters", "%.0f records, %.0f published (%.0f failed), "
		    "%.0f clinic rejected, %.0f shed", ctl_num_or(o, "records_stored", 0),
		    ctl_num_or(o, "messages_published", 0), ctl_num_or(o, "publish_failures", 0),
		    ctl_num_or(o, "clinic_rejected", 0), ctl_num_or(o, "shed_records", 0));
	g_string_append_c(out, '\n');
	wearables_table(c, out, ws, false);

	errors = ctl_arr(s, "errors");
	if (errors && json_array_get_length(errors) > 0) {
		guint n = json_array_get_length(errors);

		g_string_append_printf(out, "\n%slast errors%s\n", ctl_col(c, CTL_BOLD),
				       ctl_col(c, CTL_RESET));
		for (guint i = n > 5 ? n - 5 : 0; i < n; i++) {
			JsonObject *e = ctl_node_obj(json_array_get_element(errors, i));
			g_autofree char *at = ctl_num(e, "at", &v) ? ctl_clock(c, v) : g_strdup("?");
			g_autofree char *line = g_strdup_printf("%s  %-8s %s", at,
				ctl_str(e, "where") ? ctl_str(e, "where") : "",
				ctl_str(e, "message") ? ctl_str(e, "message") : "");
			g_autofree char *cut = ctl_cut(c, line, c->cols - 3);

			g_string_append_printf(out, "  %s\n", cut);
		}
	}
	g_string_append_c(out, '\n');
	if (problems->len == 0) {
		g_string_append_printf(out, "%sno problems%s\n", ctl_col(c, CTL_GREEN),
				       ctl_col(c, CTL_RESET));
	} else {
		g_string_append_printf(out, "%s%u problem%s:%s", ctl_col(c, CTL_RED), problems->len,
				       problems->len > 1 ? "s" : "", ctl_col(c, CTL_RESET));
		for (guint i = 0; i < problems->len; i++)
			g_string_append_printf(out, "%s %s", i ? ";" : "",
					       (char *)problems->pdata[i]);
		g_string_append(out, "\n(rehablinkctl doctor explains each)\n");
	}
	fputs(out->str, stdout);
	return problems->len ? CTL_EXIT_PROBLEM : CTL_EXIT_OK;
}

/* ---- devices ---- */

int ctl_cmd_devices(struct ctl *c, int argc, char **argv)
{
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	int rc;

	if (!ctl_parse_command(c, "devices", "The wearables: link state, battery, last record, "
			       "freshness, records stored.", NULL, &argc, &argv) ||
	    !no_args(argc, argv, &rc))
		return CTL_EXIT_USAGE;
	root = ctl_call(c, "ListDevices", NULL, &rc);
	if (!root)
		return rc;
	if (c->json) {
		ctl_print_json(root);
		return CTL_EXIT_OK;
	}
	wearables_table(c, out, ctl_node_arr(root), true);
	fputs(out->str, stdout);
	return CTL_EXIT_OK;
}

/* ---- alerts ---- */

static const char *tier_color(struct ctl *c, const char *tier)
{
	if (!tier)
		return ctl_col(c, CTL_RESET);
	if (strcmp(tier, "emergency") == 0 || strcmp(tier, "urgent") == 0)
		return ctl_col(c, CTL_RED);
	if (strcmp(tier, "routine") == 0)
		return ctl_col(c, CTL_YELLOW);
	return ctl_col(c, CTL_RESET);
}

/* A time member that may be Unix seconds or an RFC 3339 string. */
static bool time_member(JsonObject *o, const char *key, double *ret)
{
	const char *s = ctl_str(o, key);

	if (ctl_num(o, key, ret))
		return true;
	if (s) {
		g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601(s, NULL);

		if (dt) {
			*ret = (double)g_date_time_to_unix(dt) + g_date_time_get_microsecond(dt) / 1e6;
			return true;
		}
	}
	return false;
}

static int alerts_list(struct ctl *c, bool all)
{
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	JsonArray *a;
	int rc;
	guint n;

	root = ctl_call(c, "ListAlerts", g_variant_new("(b)", all), &rc);
	if (!root)
		return rc;
	if (c->json) {
		ctl_print_json(root);
		return CTL_EXIT_OK;
	}
	a = ctl_node_arr(root);
	n = a ? json_array_get_length(a) : 0;
	if (n == 0) {
		printf("no %salerts\n", all ? "" : "open ");
		return CTL_EXIT_OK;
	}
	g_string_append(out, ctl_col(c, CTL_BOLD));
	ctl_pad(out, "TIER", 14);
	ctl_pad(out, "RULE", 18);
	ctl_pad(out, "STATE", 14);
	ctl_pad(out, "SUBJECT", 9);
	ctl_pad(out, "RAISED", 11);
	g_string_append_printf(out, "NOTIF%s\n", ctl_col(c, CTL_RESET));
	for (guint i = 0; i < n; i++) {
		JsonObject *al = ctl_node_obj(json_array_get_element(a, i));
		const char *tier = ctl_str(al, "tier");
		double v;
		g_autofree char *raised = NULL;

		if (time_member(al, "raised_at", &v)) {
			g_autofree char *age = ctl_age(c->now - v);

			raised = g_strdup_printf("%s ago", age);
		}
		g_string_append(out, tier_color(c, tier));
		ctl_pad(out, tier, 13);
		g_string_append_printf(out, "%s ", ctl_col(c, CTL_RESET));
		ctl_pad(out, ctl_str(al, "rule"), 18);
		ctl_pad(out, ctl_str(al, "state"), 14);
		ctl_pad(out, ctl_str(al, "subject"), 9);
		ctl_pad(out, raised ? raised : "?", 11);
		g_string_append_printf(out, "%.0f\n", ctl_num_or(al, "notifications", 0));
		g_string_append_printf(out, "  %sid %s", ctl_col(c, CTL_DIM),
				       ctl_str(al, "alert_id") ? ctl_str(al, "alert_id") : "?");
		if (time_member(al, "acknowledged_at", &v)) {
			g_autofree char *t = ctl_clock(c, v);

			g_string_append_printf(out, ", acknowledged %s", t);
		}
		if (time_member(al, "resolved_at", &v)) {
			g_autofree char *t = ctl_clock(c, v);

			g_string_append_printf(out, ", resolved %s", t);
		}
		g_string_append_printf(out, "%s\n", ctl_col(c, CTL_RESET));
	}
	fputs(out->str, stdout);
	return CTL_EXIT_OK;
}

static void show_object_line(struct ctl *c, GString *out, const char *label, JsonObject *o)
{
	g_autoptr(GString) line = g_string_new(NULL);
	GList *members;

	if (!o)
		return;
	members = json_object_get_members(o);
	for (GList *l = members; l; l = l->next) {
		JsonNode *n = json_object_get_member(o, l->data);
		g_autofree char *v = NULL;

		if (JSON_NODE_HOLDS_ARRAY(n) || JSON_NODE_HOLDS_OBJECT(n)) {
			g_autoptr(JsonGenerator) g = json_generator_new();

			json_generator_set_root(g, n);
			v = json_generator_to_data(g, NULL);
		} else if (JSON_NODE_HOLDS_NULL(n)) {
			v = g_strdup("-");
		} else if (json_node_get_value_type(n) == G_TYPE_STRING) {
			v = g_strdup(json_node_get_string(n));
		} else if (json_node_get_value_type(n) == G_TYPE_BOOLEAN) {
			v = g_strdup(json_node_get_boolean(n) ? "true" : "false");
		} else {
			v = g_strdup_printf("%g", json_node_get_double(n));
		}
		g_string_append_printf(line, "%s%s %s", line->len ? ", " : "", (char *)l->data, v);
	}
	g_list_free(members);
	{
		g_autofree char *cut = ctl_cut(c, line->str, c->cols - 14);

		g_string_append_printf(out, "%s", ctl_col(c, CTL_BOLD));
		ctl_pad(out, label, 13);
		g_string_append_printf(out, "%s %s\n", ctl_col(c, CTL_RESET), cut);
	}
}

static int alerts_show(struct ctl *c, const char *id)
{
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	JsonObject *a, *ack;
	JsonArray *audit;
	int rc;
	double v;

	root = ctl_call(c, "GetAlert", g_variant_new("(s)", id), &rc);
	if (!root)
		return rc;
	if (c->json) {
		ctl_print_json(root);
		return CTL_EXIT_OK;
	}
	a = ctl_node_obj(root);
	g_string_append_printf(out, "%s", ctl_col(c, CTL_BOLD));
	ctl_pad(out, "alert", 13);
	g_string_append_printf(out, "%s %s\n", ctl_col(c, CTL_RESET), ctl_str(a, "alert_id"));
	g_string_append_printf(out, "%s", ctl_col(c, CTL_BOLD));
	ctl_pad(out, "tier", 13);
	g_string_append_printf(out, "%s %s%s%s, rule %s, %s, notification %.0f\n",
			       ctl_col(c, CTL_RESET), tier_color(c, ctl_str(a, "tier")),
			       ctl_str(a, "tier") ? ctl_str(a, "tier") : "?", ctl_col(c, CTL_RESET),
			       ctl_str(a, "rule") ? ctl_str(a, "rule") : "?",
			       ctl_str(a, "state") ? ctl_str(a, "state") : "?",
			       ctl_num_or(a, "notification", ctl_num_or(a, "notifications", 0)));
	if (time_member(a, "raised_at", &v)) {
		g_autofree char *t = ctl_clock(c, v);
		g_autofree char *age = ctl_age(c->now - v);

		g_string_append_printf(out, "%s", ctl_col(c, CTL_BOLD));
		ctl_pad(out, "raised", 13);
		g_string_append_printf(out, "%s %s (%s ago)%s%s\n", ctl_col(c, CTL_RESET), t, age,
				       ctl_str(a, "time_quality") ? ", time " : "",
				       ctl_str(a, "time_quality") ? ctl_str(a, "time_quality") : "");
	}
	show_object_line(c, out, "trigger", ctl_obj(a, "trigger"));
	show_object_line(c, out, "context", ctl_obj(a, "context"));
	ack = ctl_obj(a, "ack");
	if (ack)
		show_object_line(c, out, "ack", ack);
	audit = ctl_arr(a, "audit");
	g_string_append_printf(out, "\n%saudit%s\n", ctl_col(c, CTL_BOLD), ctl_col(c, CTL_RESET));
	if (!audit || json_array_get_length(audit) == 0)
		g_string_append(out, "  (none)\n");
	for (guint i = 0; audit && i < json_array_get_length(audit); i++) {
		JsonObject *e = ctl_node_obj(json_array_get_element(audit, i));
		g_autofree char *t = time_member(e, "at", &v) ? ctl_clock(c, v) : g_strdup("?");
		g_autofree char *line = g_strdup_printf("%s  %-10s %s", t,
			ctl_str(e, "event") ? ctl_str(e, "event") : "?",
			ctl_str(e, "detail") ? ctl_str(e, "detail") : "");
		g_autofree char *cut = ctl_cut(c, line, c->cols - 3);

		g_string_append_printf(out, "  %s\n", cut);
	}
	fputs(out->str, stdout);
	return CTL_EXIT_OK;
}

int ctl_cmd_alerts(struct ctl *c, int argc, char **argv)
{
	gboolean all = FALSE;
	const GOptionEntry entries[] = {
		{ "all", 'a', 0, G_OPTION_ARG_NONE, &all, "Closed alerts too", NULL },
		{ NULL }
	};

	if (!ctl_parse_command(c, "alerts [list [--all] | show ALERT_ID]",
			       "Open alerts (--all: closed ones too), or one alert with its audit trail.",
			       entries, &argc, &argv))
		return CTL_EXIT_USAGE;
	if (argc == 1 || (argc == 2 && strcmp(argv[1], "list") == 0))
		return alerts_list(c, all);
	if (strcmp(argv[1], "show") == 0) {
		if (argc != 3)
			return ctl_usage_error("alerts show: one ALERT_ID expected");
		if (all)
			return ctl_usage_error("alerts show: --all is for alerts list");
		return alerts_show(c, argv[2]);
	}
	if (strcmp(argv[1], "list") == 0)
		return ctl_usage_error("alerts list: unexpected argument '%s'", argv[2]);
	return ctl_usage_error("alerts: unknown subcommand '%s' (list, show)", argv[1]);
}

/* ---- queue ---- */

int ctl_cmd_queue(struct ctl *c, int argc, char **argv)
{
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	JsonObject *q, *by;
	JsonArray *head;
	int rc;
	double v;

	if (!ctl_parse_command(c, "queue", "The outbox: depth, oldest message, by kind, "
			       "the head in drain order.", NULL, &argc, &argv) ||
	    !no_args(argc, argv, &rc))
		return CTL_EXIT_USAGE;
	root = ctl_call(c, "GetQueue", NULL, &rc);
	if (!root)
		return rc;
	if (c->json) {
		ctl_print_json(root);
		return CTL_EXIT_OK;
	}
	q = ctl_node_obj(root);
	{
		g_autofree char *oldest = ctl_num(q, "oldest_age_s", &v) ? ctl_age(v) : g_strdup("-");

		row(c, out, "depth", "%.0f messages, oldest %s", ctl_num_or(q, "depth", 0), oldest);
		row(c, out, "in flight", "%.0f of a window of %.0f", ctl_num_or(q, "in_flight", 0),
		    ctl_num_or(q, "window", 0));
	}
	by = ctl_obj(q, "by_kind");
	if (by) {
		g_autoptr(GString) kinds = g_string_new(NULL);
		GList *members = json_object_get_members(by);

		for (GList *l = members; l; l = l->next)
			g_string_append_printf(kinds, "%s%s %.0f", kinds->len ? ", " : "",
					       (char *)l->data, ctl_num_or(by, l->data, 0));
		g_list_free(members);
		row(c, out, "by kind", "%s", kinds->len ? kinds->str : "-");
	}
	head = ctl_arr(q, "head");
	if (head && json_array_get_length(head) > 0) {
		g_string_append_printf(out, "\n%s", ctl_col(c, CTL_BOLD));
		ctl_pad(out, "ID", 10);
		ctl_pad(out, "KIND", 18);
		ctl_pad(out, "PRIO", 5);
		ctl_pad(out, "AGE", 8);
		ctl_pad(out, "TRIES", 6);
		g_string_append_printf(out, "TOPIC%s\n", ctl_col(c, CTL_RESET));
		for (guint i = 0; i < json_array_get_length(head); i++) {
			JsonObject *m = ctl_node_obj(json_array_get_element(head, i));
			g_autofree char *id = g_strdup_printf("%.0f", ctl_num_or(m, "id", 0));
			g_autofree char *prio = g_strdup_printf("%.0f", ctl_num_or(m, "priority", 0));
			g_autofree char *age = ctl_num(m, "age_s", &v) ? ctl_age(v) : g_strdup("-");
			g_autofree char *tries = g_strdup_printf("%.0f", ctl_num_or(m, "attempts", 0));
			g_autofree char *topic = ctl_cut(c, ctl_str(m, "topic"), c->cols - 48);

			ctl_pad(out, id, 10);
			ctl_pad(out, ctl_str(m, "kind"), 18);
			ctl_pad(out, prio, 5);
			ctl_pad(out, age, 8);
			ctl_pad(out, tries, 6);
			g_string_append_printf(out, "%s\n", topic);
		}
	}
	fputs(out->str, stdout);
	return CTL_EXIT_OK;
}

/* ---- pair, forget ---- */

static int pair_forget(struct ctl *c, int argc, char **argv, const char *method,
		       const char *summary)
{
	g_autoptr(JsonNode) root = NULL;
	g_autofree char *usage = g_strdup_printf("%s ADDRESS", argv[0]);
	JsonObject *o;
	int rc;

	if (!ctl_parse_command(c, usage, summary, NULL, &argc, &argv))
		return CTL_EXIT_USAGE;
	if (argc != 2)
		return ctl_usage_error("%s: one ADDRESS expected (AA:BB:CC:DD:EE:FF)", argv[0]);
	if (!ctl_valid_address(argv[1]))
		return ctl_usage_error("%s: '%s' is not a Bluetooth address (AA:BB:CC:DD:EE:FF)",
				       argv[0], argv[1]);
	root = ctl_call(c, method, g_variant_new("(s)", argv[1]), &rc);
	if (!root)
		return rc;
	if (c->json) {
		ctl_print_json(root);
		return CTL_EXIT_OK;
	}
	o = ctl_node_obj(root);
	printf("%s%s%s: %s%s%s\n", ctl_str(o, "alias") ? ctl_str(o, "alias") : "",
	       ctl_str(o, "alias") ? " " : "",
	       ctl_str(o, "address") ? ctl_str(o, "address") : argv[1],
	       ctl_bool(o, "changed", false) ? (strcmp(method, "Pair") == 0 ? "paired" : "forgotten")
					     : "no change",
	       ctl_str(o, "detail") ? ": " : "", ctl_str(o, "detail") ? ctl_str(o, "detail") : "");
	return CTL_EXIT_OK;
}

int ctl_cmd_pair(struct ctl *c, int argc, char **argv)
{
	return pair_forget(c, argc, argv, "Pair",
			   "Adds a wearable: pairs and trusts it, keeps it across restarts, syncs it.");
}

int ctl_cmd_forget(struct ctl *c, int argc, char **argv)
{
	return pair_forget(c, argc, argv, "Forget",
			   "Stops syncing a wearable and removes it from bluetoothd; its data stays. "
			   "Wearables of the config file are edited there.");
}

/* ---- test-alert, reload ---- */

int ctl_cmd_test_alert(struct ctl *c, int argc, char **argv)
{
	g_autoptr(JsonNode) root = NULL;
	int rc;

	if (!ctl_parse_command(c, "test-alert", "Raises an informational alert (rule test) "
			       "through store, audit, outbox and broker, for the clinic to see.",
			       NULL, &argc, &argv) || !no_args(argc, argv, &rc))
		return CTL_EXIT_USAGE;
	root = ctl_call(c, "TestAlert", NULL, &rc);
	if (!root)
		return rc;
	if (c->json) {
		ctl_print_json(root);
		return CTL_EXIT_OK;
	}
	printf("test alert %s raised: the clinic should see it within seconds\n"
	       "(rehablinkctl alerts show %s; rehablinkctl queue if it does not arrive)\n",
	       ctl_str(ctl_node_obj(root), "alert_id"), ctl_str(ctl_node_obj(root), "alert_id"));
	return CTL_EXIT_OK;
}

static void print_list(const char *label, JsonArray *a)
{
	guint n = a ? json_array_get_length(a) : 0;

	printf("%-14s", label);
	if (n == 0)
		printf(" -");
	for (guint i = 0; i < n; i++) {
		JsonNode *e = json_array_get_element(a, i);

		printf("%s %s", i ? "," : "",
		       JSON_NODE_HOLDS_VALUE(e) && json_node_get_value_type(e) == G_TYPE_STRING
		       ? json_node_get_string(e) : "?");
	}
	printf("\n");
}

int ctl_cmd_reload(struct ctl *c, int argc, char **argv)
{
	g_autoptr(JsonNode) root = NULL;
	JsonObject *o;
	int rc;
	bool ok;

	if (!ctl_parse_command(c, "reload", "Reads the config file again (as SIGHUP); "
			       "on errors nothing is applied.", NULL, &argc, &argv) ||
	    !no_args(argc, argv, &rc))
		return CTL_EXIT_USAGE;
	root = ctl_call(c, "Reload", NULL, &rc);
	if (!root)
		return rc;
	o = ctl_node_obj(root);
	ok = ctl_bool(o, "ok", false);
	if (c->json) {
		ctl_print_json(root);
		return ok ? CTL_EXIT_OK : CTL_EXIT_PROBLEM;
	}
	printf("%s%s%s\n", ctl_col(c, ok ? CTL_GREEN : CTL_RED),
	       ok ? "reloaded" : "NOT reloaded: the config has errors, nothing applied",
	       ctl_col(c, CTL_RESET));
	print_list("applied", ctl_arr(o, "applied"));
	print_list("needs restart", ctl_arr(o, "needs_restart"));
	if (!ok || (ctl_arr(o, "errors") && json_array_get_length(ctl_arr(o, "errors"))))
		print_list("errors", ctl_arr(o, "errors"));
	return ok ? CTL_EXIT_OK : CTL_EXIT_PROBLEM;
}
