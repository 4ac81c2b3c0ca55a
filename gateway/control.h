/* SPDX-License-Identifier: MIT */
/*
 * GwControl: rehablinkd's control API on the system D-Bus
 * (docs/control-api.md): the name org.rehablink.Gateway, the object
 * /org/rehablink/Gateway, the interface org.rehablink.Gateway1. Every
 * method answers one JSON document; rehablinkctl is its client.
 */
#ifndef REHABLINK_GATEWAY_CONTROL_H
#define REHABLINK_GATEWAY_CONTROL_H

#include <gio/gio.h>
#include <stdbool.h>

#include "gateway.h"

#define GW_CONTROL_NAME "org.rehablink.Gateway"
#define GW_CONTROL_PATH "/org/rehablink/Gateway"
#define GW_CONTROL_IFACE "org.rehablink.Gateway1"

struct gw_control_config {
	GDBusConnection *conn;		/* NULL: the system bus (honours
					 * DBUS_SYSTEM_BUS_ADDRESS) */
	const char *bus_name;		/* NULL: GW_CONTROL_NAME */
	/* Reload(): re-reads the config and answers
	 * {"ok","applied","needs_restart","errors"} as JSON (g_free'd by
	 * the caller). NULL: Reload() fails. */
	char *(*reload)(void *user_data);
	/* Pair()/Forget() changed the wearables: restart the gateway (after
	 * the answer went out). NULL: the change waits for a restart. */
	void (*restart)(void *user_data);
	void *user_data;
};
void gw_control_config_init(struct gw_control_config *cfg);

typedef struct gw_control GwControl;

/* Exports the object and asks for the name; a name that cannot be owned
 * is logged (the daemon runs on without its control API). */
GwControl *gw_control_new(GwGateway *gw, const struct gw_control_config *cfg,
			  GError **error);
void gw_control_free(GwControl *c);	/* NULL-safe */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwControl, gw_control_free)

#endif
