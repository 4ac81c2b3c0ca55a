// SPDX-License-Identifier: MIT
/*
 * GwControl: the control API on the system bus (docs/control-api.md). A
 * thin shell: each method calls the gateway's query (gateway-query.c) and
 * answers its JSON as a string; errors become
 * org.rehablink.Gateway1.Error.{InvalidArgument,NotFound,Failed}.
 */
#define G_LOG_DOMAIN "control"

#include <math.h>
#include <string.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>

#include "control.h"
#include "log.h"

#define ERR_PREFIX GW_CONTROL_IFACE ".Error."

static const char introspection[] =
	"<node>"
	" <interface name='" GW_CONTROL_IFACE "'>"
	"  <method name='GetStatus'><arg name='json' type='s' direction='out'/></method>"
	"  <method name='ListDevices'><arg name='json' type='s' direction='out'/></method>"
	"  <method name='ListAlerts'>"
	"   <arg name='include_closed' type='b' direction='in'/>"
	"   <arg name='json' type='s' direction='out'/></method>"
	"  <method name='GetAlert'>"
	"   <arg name='alert_id' type='s' direction='in'/>"
	"   <arg name='json' type='s' direction='out'/></method>"
	"  <method name='GetQueue'><arg name='json' type='s' direction='out'/></method>"
	"  <method name='GetData'>"
	"   <arg name='alias' type='s' direction='in'/>"
	"   <arg name='since' type='d' direction='in'/>"
	"   <arg name='json' type='s' direction='out'/></method>"
	"  <method name='Export'>"
	"   <arg name='fd' type='h' direction='in'/>"
	"   <arg name='format' type='s' direction='in'/>"
	"   <arg name='since' type='d' direction='in'/>"
	"   <arg name='json' type='s' direction='out'/></method>"
	"  <method name='Pair'>"
	"   <arg name='address' type='s' direction='in'/>"
	"   <arg name='json' type='s' direction='out'/></method>"
	"  <method name='Forget'>"
	"   <arg name='address' type='s' direction='in'/>"
	"   <arg name='json' type='s' direction='out'/></method>"
	"  <method name='TestAlert'><arg name='json' type='s' direction='out'/></method>"
	"  <method name='Reload'><arg name='json' type='s' direction='out'/></method>"
	"  <method name='CheckStore'><arg name='json' type='s' direction='out'/></method>"
	" </interface>"
	"</node>";

struct gw_control {
	GwGateway *gw;
	struct gw_control_config cfg;
	GDBusConnection *conn;
	GDBusNodeInfo *info;
	guint reg_id;
	guint own_id;
	guint restart_idle;
};

void gw_control_config_init(struct gw_control_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
}

static void reply_node(GDBusMethodInvocation *inv, JsonNode *n, GError *error)
{
	const char *name = ERR_PREFIX "Failed";
	g_autofree char *text = NULL;

	if (n) {
		text = json_to_string(n, FALSE);
		json_node_unref(n);
		g_dbus_method_invocation_return_value(inv, g_variant_new("(s)", text));
		return;
	}
	if (error && error->domain == G_IO_ERROR && error->code == G_IO_ERROR_NOT_FOUND)
		name = ERR_PREFIX "NotFound";
	else if (error && error->domain == G_IO_ERROR &&
		 error->code == G_IO_ERROR_INVALID_ARGUMENT)
		name = ERR_PREFIX "InvalidArgument";
	g_dbus_method_invocation_return_dbus_error(inv, name, error ? error->message : "failed");
	g_clear_error(&error);
}

/* The status the gateway knows, with the last warnings and errors the
 * daemon logged. */
static JsonNode *status(GwControl *c)
{
	JsonNode *n = gw_gateway_status_json(c->gw);

	json_object_set_member(json_node_get_object(n), "errors", gw_log_recent());
	return n;
}

static gboolean restart_cb(gpointer ud)
{
	GwControl *c = ud;

	c->restart_idle = 0;
	c->cfg.restart(c->cfg.user_data);
	return G_SOURCE_REMOVE;
}

static void pair(GwControl *c, GDBusMethodInvocation *inv, GVariant *params, bool add)
{
	const char *address = NULL;
	GError *error = NULL;
	bool changed = false;
	JsonNode *n;

	g_variant_get(params, "(&s)", &address);
	n = gw_gateway_pair(c->gw, address, add, &changed, &error);
	if (n && changed) {
		g_message("control: a wearable was %s; restarting to apply it",
			  add ? "paired" : "forgotten");
		if (c->cfg.restart && !c->restart_idle)
			/* after the answer went out */
			c->restart_idle = g_timeout_add(200, restart_cb, c);
	}
	reply_node(inv, n, error);
}

/* A time from the bus: Unix seconds, finite, within what int64 us holds. */
static bool since_ok(GDBusMethodInvocation *inv, double since)
{
	if (isfinite(since) && since >= -9.0e12 && since <= 9.0e12)
		return true;
	g_dbus_method_invocation_return_dbus_error(inv, ERR_PREFIX "InvalidArgument",
						   "since: not a time (Unix seconds)");
	return false;
}

static void export(GwControl *c, GDBusMethodInvocation *inv, GVariant *params)
{
	GDBusMessage *msg = g_dbus_method_invocation_get_message(inv);
	GUnixFDList *fds = g_dbus_message_get_unix_fd_list(msg);
	const char *format = NULL;
	GError *error = NULL;
	gint32 h = -1;
	double since = 0;
	int fd;
	JsonNode *n;

	g_variant_get(params, "(h&sd)", &h, &format, &since);
	if (!since_ok(inv, since))
		return;
	if (!fds || h < 0 || h >= g_unix_fd_list_get_length(fds)) {
		g_dbus_method_invocation_return_dbus_error(inv, ERR_PREFIX "InvalidArgument",
							   "fd: no file descriptor passed");
		return;
	}
	fd = g_unix_fd_list_get(fds, h, &error);
	if (fd < 0) {
		reply_node(inv, NULL, error);
		return;
	}
	n = gw_gateway_export(c->gw, fd, format, (int64_t)(since * G_USEC_PER_SEC), &error);
	close(fd);
	reply_node(inv, n, error);
}

static void method_call(GDBusConnection *conn, const char *sender, const char *path,
			const char *iface, const char *method, GVariant *params,
			GDBusMethodInvocation *inv, gpointer ud)
{
	GwControl *c = ud;
	GError *error = NULL;

	(void)conn;
	(void)path;
	(void)iface;
	g_debug("control: %s from %s", method, sender);
	if (strcmp(method, "GetStatus") == 0) {
		reply_node(inv, status(c), NULL);
	} else if (strcmp(method, "ListDevices") == 0) {
		reply_node(inv, gw_gateway_devices_json(c->gw), NULL);
	} else if (strcmp(method, "ListAlerts") == 0) {
		gboolean all = FALSE;

		g_variant_get(params, "(b)", &all);
		reply_node(inv, gw_gateway_alerts_json(c->gw, all), NULL);
	} else if (strcmp(method, "GetAlert") == 0) {
		const char *id = NULL;

		g_variant_get(params, "(&s)", &id);
		JsonNode *n = gw_gateway_alert_json(c->gw, id, &error);

		reply_node(inv, n, error);
	} else if (strcmp(method, "GetQueue") == 0) {
		JsonNode *n = gw_gateway_queue_json(c->gw, &error);

		reply_node(inv, n, error);
	} else if (strcmp(method, "GetData") == 0) {
		const char *alias = NULL;
		double since = 0;

		JsonNode *n;

		g_variant_get(params, "(&sd)", &alias, &since);
		if (!since_ok(inv, since))
			return;
		/* the call before the reply: argument order is unspecified */
		n = gw_gateway_data_json(c->gw, alias, (int64_t)(since * G_USEC_PER_SEC), &error);
		reply_node(inv, n, error);
	} else if (strcmp(method, "Export") == 0) {
		export(c, inv, params);
	} else if (strcmp(method, "Pair") == 0 || strcmp(method, "Forget") == 0) {
		pair(c, inv, params, method[0] == 'P');
	} else if (strcmp(method, "TestAlert") == 0) {
		JsonNode *n;

		g_message("control: a test alert was asked for");
		n = gw_gateway_test_alert(c->gw, &error);
		reply_node(inv, n, error);
	} else if (strcmp(method, "Reload") == 0) {
		g_autofree char *answer = c->cfg.reload ? c->cfg.reload(c->cfg.user_data) : NULL;

		if (!answer)
			g_dbus_method_invocation_return_dbus_error(inv, ERR_PREFIX "Failed",
								   "reload is not available");
		else
			g_dbus_method_invocation_return_value(inv, g_variant_new("(s)", answer));
	} else if (strcmp(method, "CheckStore") == 0) {
		reply_node(inv, gw_gateway_check_store(c->gw), NULL);
	} else {
		g_dbus_method_invocation_return_dbus_error(inv, "org.freedesktop.DBus.Error.UnknownMethod",
							   method);
	}
}

static const GDBusInterfaceVTable vtable = { method_call, NULL, NULL, { 0 } };

static void name_lost(GDBusConnection *conn, const char *name, gpointer ud)
{
	(void)ud;
	if (conn)
		g_warning("control: the bus name %s could not be owned (another rehablinkd, or "
			  "the D-Bus policy); rehablinkctl cannot reach this daemon", name);
}

static void name_acquired(GDBusConnection *conn, const char *name, gpointer ud)
{
	(void)conn;
	(void)ud;
	g_info("control: %s on the bus", name);
}

GwControl *gw_control_new(GwGateway *gw, const struct gw_control_config *cfg, GError **error)
{
	g_autoptr(GwControl) c = g_new0(GwControl, 1);

	c->gw = gw;
	c->cfg = *cfg;
	c->conn = cfg->conn ? g_object_ref(cfg->conn) : g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, error);
	if (!c->conn)
		return NULL;
	c->info = g_dbus_node_info_new_for_xml(introspection, error);
	if (!c->info)
		return NULL;
	c->reg_id = g_dbus_connection_register_object(c->conn, GW_CONTROL_PATH,
						      c->info->interfaces[0], &vtable, c, NULL,
						      error);
	if (!c->reg_id)
		return NULL;
	c->own_id = g_bus_own_name_on_connection(c->conn,
						 cfg->bus_name ? cfg->bus_name : GW_CONTROL_NAME,
						 G_BUS_NAME_OWNER_FLAGS_NONE, name_acquired,
						 name_lost, NULL, NULL);
	return g_steal_pointer(&c);
}

void gw_control_free(GwControl *c)
{
	if (!c)
		return;
	if (c->restart_idle)
		g_source_remove(c->restart_idle);
	if (c->own_id)
		g_bus_unown_name(c->own_id);
	if (c->reg_id)
		g_dbus_connection_unregister_object(c->conn, c->reg_id);
	g_clear_pointer(&c->info, g_dbus_node_info_unref);
	g_clear_object(&c->conn);
	g_free(c);
}
