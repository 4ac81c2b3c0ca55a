/* SPDX-License-Identifier: MIT */
/*
 * rehablinkctl: the control API client, JSON accessors, text helpers and
 * command-line values shared by the commands (ctl-common.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-common.h"

/* ---- the control API ---- */

GDBusConnection *ctl_bus(struct ctl *c, GError **error)
{
	if (!c->bus && !c->bus_error)
		c->bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &c->bus_error);
	if (!c->bus) {
		g_propagate_error(error, g_error_copy(c->bus_error));
		return NULL;
	}
	return c->bus;
}

JsonNode *ctl_call_full(struct ctl *c, const char *method, GVariant *params,
			GUnixFDList *fds, int timeout_ms, GError **error)
{
	GDBusConnection *bus = ctl_bus(c, error);
	g_autoptr(GVariant) ret = NULL;
	const char *text = NULL;
	JsonNode *node;

	if (!bus) {
		if (params)
			g_variant_unref(g_variant_ref_sink(params));
		return NULL;
	}
	ret = g_dbus_connection_call_with_unix_fd_list_sync(bus, CTL_NAME, CTL_PATH, CTL_IFACE,
							    method, params, G_VARIANT_TYPE("(s)"),
							    G_DBUS_CALL_FLAGS_NO_AUTO_START,
							    timeout_ms > 0 ? timeout_ms : c->timeout_ms,
							    fds, NULL, NULL, error);
	if (!ret)
		return NULL;
	g_variant_get(ret, "(&s)", &text);
	node = json_from_string(text, error);
	if (!node) {
		g_prefix_error(error, "%s answered no JSON: ", method);
		return NULL;
	}
	return node;
}

static bool unreachable_name(const char *name)
{
	static const char *const names[] = {
		"org.freedesktop.DBus.Error.ServiceUnknown",
		"org.freedesktop.DBus.Error.NameHasNoOwner",
		"org.freedesktop.DBus.Error.AccessDenied",
		"org.freedesktop.DBus.Error.NoReply",
		"org.freedesktop.DBus.Error.Timeout",
		"org.freedesktop.DBus.Error.TimedOut",
		"org.freedesktop.DBus.Error.Disconnected",
		"org.freedesktop.DBus.Error.NoServer",
		"org.freedesktop.DBus.Error.FileNotFound",
		"org.freedesktop.DBus.Error.LimitsExceeded",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

int ctl_error_exit(const GError *error)
{
	g_autofree char *remote = NULL;

	if (!error)
		return CTL_EXIT_REFUSED;
	if (g_dbus_error_is_remote_error(error)) {
		remote = g_dbus_error_get_remote_error(error);
		return unreachable_name(remote) ? CTL_EXIT_UNREACHABLE : CTL_EXIT_REFUSED;
	}
	if (error->domain == G_DBUS_ERROR) {
		switch (error->code) {
		case G_DBUS_ERROR_SERVICE_UNKNOWN:
		case G_DBUS_ERROR_NAME_HAS_NO_OWNER:
		case G_DBUS_ERROR_ACCESS_DENIED:
		case G_DBUS_ERROR_NO_REPLY:
		case G_DBUS_ERROR_TIMEOUT:
		case G_DBUS_ERROR_TIMED_OUT:
		case G_DBUS_ERROR_DISCONNECTED:
		case G_DBUS_ERROR_NO_SERVER:
		case G_DBUS_ERROR_FILE_NOT_FOUND:
			return CTL_EXIT_UNREACHABLE;
		default:
			return CTL_EXIT_REFUSED;
		}
	}
	if (error->domain == G_IO_ERROR)	/* the bus itself, a local timeout */
		return CTL_EXIT_UNREACHABLE;
	return CTL_EXIT_REFUSED;	/* a bad JSON answer */
}

static char *error_name(const GError *error)
{
	if (g_dbus_error_is_remote_error(error))
		return g_dbus_error_get_remote_error(error);
	if (error->domain == G_DBUS_ERROR)
		return g_dbus_error_encode_gerror(error);
	if (error->domain == G_IO_ERROR && error->code == G_IO_ERROR_TIMED_OUT)
		return g_strdup("timeout");
	if (error->domain == G_IO_ERROR)
		return g_strdup("bus");
	return g_strdup("bad-answer");
}

int ctl_fail(struct ctl *c, const char *method, const GError *error)
{
	int rc = ctl_error_exit(error);
	g_autofree char *name = error_name(error);
	g_autoptr(GError) copy = g_error_copy(error);
	const char *hint = NULL;

	g_dbus_error_strip_remote_error(copy);
	if (rc == CTL_EXIT_UNREACHABLE) {
		if (strstr(name, "AccessDenied"))
			hint = "the D-Bus policy refused: run as root or as a member of the group rehablink";
		else
			hint = "is rehablinkd running? systemctl status rehablink; "
			       "journalctl -u rehablink -n 50";
	}
	fprintf(stderr, "rehablinkctl: %s: %s%s%s\n",
		rc == CTL_EXIT_UNREACHABLE ? "rehablinkd not reachable" : method,
		copy->message, hint ? "\nhint: " : "", hint ? hint : "");
	if (c->json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		g_autoptr(JsonNode) root = NULL;

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "error");
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "method");
		json_builder_add_string_value(b, method);
		json_builder_set_member_name(b, "name");
		json_builder_add_string_value(b, name);
		json_builder_set_member_name(b, "message");
		json_builder_add_string_value(b, copy->message);
		json_builder_set_member_name(b, "exit");
		json_builder_add_int_value(b, rc);
		json_builder_end_object(b);
		json_builder_end_object(b);
		root = json_builder_get_root(b);
		ctl_print_json(root);
	}
	return rc;
}

JsonNode *ctl_call(struct ctl *c, const char *method, GVariant *params, int *ret_exit)
{
	g_autoptr(GError) error = NULL;
	JsonNode *n = ctl_call_full(c, method, params, NULL, 0, &error);

	if (!n)
		*ret_exit = ctl_fail(c, method, error);
	else
		*ret_exit = CTL_EXIT_OK;
	return n;
}

gboolean ctl_name_has_owner(struct ctl *c, const char *name, gboolean *ret_has, GError **error)
{
	GDBusConnection *bus = ctl_bus(c, error);
	g_autoptr(GVariant) ret = NULL;

	if (!bus)
		return FALSE;
	ret = g_dbus_connection_call_sync(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
					  "org.freedesktop.DBus", "NameHasOwner",
					  g_variant_new("(s)", name), G_VARIANT_TYPE("(b)"),
					  G_DBUS_CALL_FLAGS_NONE, c->timeout_ms, NULL, error);
	if (!ret)
		return FALSE;
	g_variant_get(ret, "(b)", ret_has);
	return TRUE;
}

void ctl_print_json(JsonNode *node)
{
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autofree char *text = NULL;

	json_generator_set_pretty(gen, TRUE);
	json_generator_set_indent(gen, 2);
	json_generator_set_root(gen, node);
	text = json_generator_to_data(gen, NULL);
	printf("%s\n", text);
}

/* ---- JSON accessors ---- */

static JsonNode *member(JsonObject *o, const char *key)
{
	return o && json_object_has_member(o, key) ? json_object_get_member(o, key) : NULL;
}

JsonObject *ctl_node_obj(JsonNode *n)
{
	return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

JsonArray *ctl_node_arr(JsonNode *n)
{
	return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

JsonObject *ctl_obj(JsonObject *o, const char *key)
{
	return ctl_node_obj(member(o, key));
}

JsonArray *ctl_arr(JsonObject *o, const char *key)
{
	return ctl_node_arr(member(o, key));
}

const char *ctl_str(JsonObject *o, const char *key)
{
	JsonNode *n = member(o, key);

	return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
		? json_node_get_string(n) : NULL;
}

bool ctl_num(JsonObject *o, const char *key, double *ret)
{
	JsonNode *n = member(o, key);
	GType t;

	if (!n || !JSON_NODE_HOLDS_VALUE(n))
		return false;
	t = json_node_get_value_type(n);
	if (t == G_TYPE_INT64)
		*ret = (double)json_node_get_int(n);
	else if (t == G_TYPE_DOUBLE)
		*ret = json_node_get_double(n);
	else
		return false;
	return true;
}

double ctl_num_or(JsonObject *o, const char *key, double def)
{
	double v;

	return ctl_num(o, key, &v) ? v : def;
}

bool ctl_has_bool(JsonObject *o, const char *key, bool *ret)
{
	JsonNode *n = member(o, key);

	if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)
		return false;
	*ret = json_node_get_boolean(n);
	return true;
}

bool ctl_bool(JsonObject *o, const char *key, bool def)
{
	bool v;

	return ctl_has_bool(o, key, &v) ? v : def;
}

/* ---- text ---- */

const char *ctl_col(const struct ctl *c, enum ctl_color col)
{
	if (!c->color)
		return "";
	switch (col) {
	case CTL_RESET: return "\033[0m";
	case CTL_BOLD: return "\033[1m";
	case CTL_DIM: return "\033[2m";
	case CTL_RED: return "\033[1;31m";
	case CTL_GREEN: return "\033[32m";
	case CTL_YELLOW: return "\033[33m";
	}
	return "";
}

char *ctl_age(double s)
{
	if (!isfinite(s))
		return g_strdup("?");
	if (s < 0)
		s = 0;
	if (s < 120)
		return g_strdup_printf("%.0f s", ctl_floor(s));
	if (s < 120 * 60)
		return g_strdup_printf("%.0f min", ctl_floor(s / 60));
	if (s < 48 * 3600)
		return g_strdup_printf("%.0f h", ctl_floor(s / 3600));
	return g_strdup_printf("%.0f d", ctl_floor(s / 86400));
}

char *ctl_duration(double s)
{
	long v = ctl_lround(s < 0 ? 0 : s);

	if (v < 60)
		return g_strdup_printf("%ld s", v);
	if (v < 3600)
		return g_strdup_printf("%ld min", v / 60);
	return g_strdup_printf("%ld h %02ld min", v / 3600, (v % 3600) / 60);
}

char *ctl_bytes(double b)
{
	if (b < 1024)
		return g_strdup_printf("%.0f B", b);
	if (b < 1024 * 1024)
		return g_strdup_printf("%.1f KiB", b / 1024);
	if (b < 1024.0 * 1024 * 1024)
		return g_strdup_printf("%.1f MiB", b / (1024 * 1024));
	return g_strdup_printf("%.1f GiB", b / (1024.0 * 1024 * 1024));
}

char *ctl_clock(const struct ctl *c, double t)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local((gint64)ctl_floor(t));
	g_autoptr(GDateTime) now = g_date_time_new_from_unix_local((gint64)ctl_floor(c->now));

	if (!dt || !now)
		return g_strdup("?");
	if (g_date_time_get_year(dt) == g_date_time_get_year(now) &&
	    g_date_time_get_day_of_year(dt) == g_date_time_get_day_of_year(now))
		return g_date_time_format(dt, "%H:%M:%S");
	return g_date_time_format(dt, "%Y-%m-%d %H:%M");
}

static int display_width(const char *s)
{
	return g_utf8_validate(s, -1, NULL) ? (int)g_utf8_strlen(s, -1) : (int)strlen(s);
}

void ctl_pad(GString *out, const char *s, int width)
{
	int w;

	s = s ? s : "";
	w = display_width(s);
	if (w > width && width > 1 && g_utf8_validate(s, -1, NULL)) {
		const char *end = g_utf8_offset_to_pointer(s, width - 1);

		g_string_append_len(out, s, end - s);
		g_string_append(out, "~");
		return;
	}
	g_string_append(out, s);
	for (; w < width; w++)
		g_string_append_c(out, ' ');
}

char *ctl_cut(const struct ctl *c, const char *s, int width)
{
	const char *end;
	GString *out;

	s = s ? s : "";
	if (!g_utf8_validate(s, -1, NULL) || (int)g_utf8_strlen(s, -1) <= width || width < 2)
		return g_strdup(s);
	end = g_utf8_offset_to_pointer(s, width - 1);
	out = g_string_new_len(s, end - s);
	g_string_append(out, c->utf8 ? "\u2026" : "~");
	return g_string_free(out, FALSE);
}

const char *ctl_block(const struct ctl *c, int e)
{
	static const char *const utf8[] = {
		" ", "\u258f", "\u258e", "\u258d", "\u258c", "\u258b", "\u258a", "\u2589", "\u2588",
	};

	e = CLAMP(e, 0, 8);
	if (!c->utf8)
		return e >= 4 ? "#" : " ";
	return utf8[e];
}

const char *ctl_vblock(const struct ctl *c, int e)
{
	static const char *const utf8[] = {
		" ", "\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588",
	};

	e = CLAMP(e, 0, 8);
	if (!c->utf8)
		return e >= 6 ? "#" : e >= 3 ? "+" : e >= 1 ? "." : " ";
	return utf8[e];
}

/* ---- command-line values ---- */

static gboolean parse_relative(const char *s, double now, double *ret)
{
	double total = 0;
	int sign = *s == '-' ? -1 : 1;

	s++;
	if (!*s)
		return FALSE;
	while (*s) {
		char *end;
		double v = g_ascii_strtod(s, &end);
		double unit;

		if (end == s || v < 0)
			return FALSE;
		switch (*end) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		case 'w': unit = 7 * 86400; break;
		default: return FALSE;
		}
		total += v * unit;
		s = end + 1;
	}
	if (!isfinite(total) || total > CTL_TIME_MAX)
		return FALSE;
	*ret = now + sign * total;
	return TRUE;
}

gboolean ctl_parse_time(const char *s, double now, double *ret, GError **error)
{
	g_autoptr(GTimeZone) local = g_time_zone_new_local();
	g_autoptr(GDateTime) dt = NULL;
	char *end;

	if (s && (*s == '-' || *s == '+') && parse_relative(s, now, ret))
		return TRUE;
	if (s && g_ascii_isdigit(*s)) {
		double v = g_ascii_strtod(s, &end);

		if (*end == '\0' && isfinite(v) && v <= CTL_TIME_MAX) {
			*ret = v;
			return TRUE;
		}
		dt = g_date_time_new_from_iso8601(s, local);
		if (!dt && strlen(s) == 10) {	/* a date: its local midnight */
			g_autofree char *full = g_strconcat(s, "T00:00:00", NULL);

			dt = g_date_time_new_from_iso8601(full, local);
		}
		if (dt) {
			*ret = (double)g_date_time_to_unix(dt) +
			       g_date_time_get_microsecond(dt) / 1e6;
			return TRUE;
		}
	}
	g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
		    "bad TIME '%s': Unix seconds, ISO 8601 (2026-11-27T10:00:00Z) "
		    "or relative (-2h, -30m, -3d)", s ? s : "");
	return FALSE;
}

bool ctl_valid_address(const char *s)
{
	if (!s || strlen(s) != 17)
		return false;
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2 ? s[i] != ':' : !g_ascii_isxdigit(s[i]))
			return false;
	}
	return true;
}
