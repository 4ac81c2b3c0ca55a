/* SPDX-License-Identifier: MIT */
/*
 * GwGateway: the one wiring of the durable path (docs/architecture.md):
 *
 *   GwBle (links, history sync) --sink--> GwStore (records, cursor; one
 *   transaction) --> aggregators (pure) --> outbox rows --> forwarder -->
 *   GwUplink (paho) --PUBACK--> outbox row deleted
 *
 * and back: clinic commands from the uplink are parsed, rejected with an
 * error message (counted) or applied.
 *
 * Commits. One store transaction; the gateway commits it from one place
 * (commit_now): when GwBle asks (its batching, at once for a pain report),
 * every commit_interval_ms for the gateway's own writes, and on stop. A
 * failed commit tells GwBle everything since the last commit is gone (the
 * wearables keep it).
 *
 * Forwarding. The outbox drains in priority order (alerts, pain, status,
 * telemetry), never more than the uplink's window in paho; telemetry may
 * use all but alert_slots of the window and at most backlog_rate messages
 * a second, so an alert never waits behind a backlog. A row is deleted
 * only on PUBACK; a publish that failed is sent again after the reconnect.
 */
#ifndef REHABLINK_GATEWAY_GATEWAY_H
#define REHABLINK_GATEWAY_GATEWAY_H

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "aggregate.h"
#include "central.h"
#include "clock.h"
#include "rules.h"
#include "uplink.h"

struct gw_gateway_config {
	const char *gateway_id;		/* topic id */
	const char *patient_id;		/* pseudonymous topic id */
	const char *version;
	const char *state_dir;		/* the store: <state_dir>/rehablink.db */
	const char *const *wearables;	/* addresses */
	const char *const *aliases;	/* per wearable: its topic id; NULL:
					 * "w1", "w2", ... */
	size_t n_wearables;
	const char *adapter;
	enum gw_clock_mode clock_mode;
	bool log_personal;
	uint64_t store_budget_bytes;	/* 0: none */
	unsigned int commit_interval_ms;	/* telemetry batching, default 300000 */
	unsigned int backlog_rate;	/* telemetry messages a second, 0: no limit;
					 * default 1000 */
	unsigned int alert_slots;	/* window kept for alerts and pain, default 4 */
	unsigned int status_interval_s;	/* gateway status, default 300 */
	struct gw_uplink_config uplink;	/* client_id and the will are filled in */
	struct gw_agg_config agg;
	struct gw_rules_config rules;	/* the escalation rules (docs/escalation.md) */
	const char *fallback_command;	/* run (sh -c) when an alert is not
					 * acknowledged or the clinic is not
					 * reachable; NULL: none */
	GDBusConnection *conn;		/* bluetoothd's bus; NULL: the system bus */
	const struct gw_central_config *central;	/* NULL: defaults */
};
void gw_gateway_config_init(struct gw_gateway_config *cfg);

typedef struct gw_gateway GwGateway;

GwGateway *gw_gateway_new(const struct gw_gateway_config *cfg, GError **error);
/* Stops gracefully: commits, publishes the offline status (waiting for
 * its PUBACK at most timeout_ms), disconnects. */
void gw_gateway_stop(GwGateway *gw, unsigned int timeout_ms);
void gw_gateway_free(GwGateway *gw);	/* NULL-safe; stops first if running */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwGateway, gw_gateway_free)

/* Applies what can change while the daemon runs (SIGHUP, Reload()):
 * rules, fallback_command, store_budget_bytes, commit_interval_ms,
 * backlog_rate, status_interval_s. Everything else in cfg is ignored
 * (main.c tells the user which keys need a restart). */
void gw_gateway_reconfigure(GwGateway *gw, const struct gw_gateway_config *cfg);

/* ---- what the control API reads (gateway-query.c; the shapes are in
 * docs/control-api.md). Each returns a new JSON tree, or NULL with error
 * set: G_IO_ERROR_NOT_FOUND (no such alert or wearable),
 * G_IO_ERROR_INVALID_ARGUMENT, or another code when it failed. */
JsonNode *gw_gateway_status_json(GwGateway *gw);
JsonNode *gw_gateway_devices_json(GwGateway *gw);
JsonNode *gw_gateway_alerts_json(GwGateway *gw, bool include_closed);
JsonNode *gw_gateway_alert_json(GwGateway *gw, const char *alert_id, GError **error);
JsonNode *gw_gateway_queue_json(GwGateway *gw, GError **error);
/* alias "": the first wearable */
JsonNode *gw_gateway_data_json(GwGateway *gw, const char *alias, int64_t since_us,
			       GError **error);
/* Writes the records received since since_us to fd as "csv" or "json"
 * (one object a line); answers {"records","bytes"}. */
JsonNode *gw_gateway_export(GwGateway *gw, int fd, const char *format, int64_t since_us,
			    GError **error);
/* Adds (pair) or removes a wearable paired over the control API, kept in
 * the store; *ret_changed says the list changed: the caller restarts the
 * gateway so its links follow (the set of links is fixed while running). */
JsonNode *gw_gateway_pair(GwGateway *gw, const char *address, bool pair, bool *ret_changed,
			  GError **error);
JsonNode *gw_gateway_test_alert(GwGateway *gw, GError **error);
JsonNode *gw_gateway_check_store(GwGateway *gw);

struct gw_gateway_stats {
	uint64_t records_stored;
	uint64_t pain_reports;
	uint64_t aggregates_queued;
	uint64_t messages_queued;
	uint64_t messages_published;
	uint64_t publish_failures;
	uint64_t commits;
	uint64_t commit_failures;
	uint64_t clinic_accepted;
	uint64_t clinic_rejected;
	uint64_t alerts_raised;
	uint64_t alert_notifications;
	uint64_t fallbacks_run;
	/* the escalation path's latency: a pain report arriving (its record
	 * handed to the store) to the PUBACK of the alert it raised, us */
	uint64_t escalations_timed;
	int64_t escalation_us_sum;
	int64_t escalation_us_max;
	uint64_t shed_records;
	uint64_t shed_telemetry;
	uint64_t clock_steps;		/* wall clock steps of more than 2 s seen */
	int64_t last_clock_step_us;
	unsigned int in_flight;
	bool connected;
	bool clock_synced;
	const char *store_corrupt_aside;	/* NULL, or where a corrupt store went */
};
void gw_gateway_get_stats(GwGateway *gw, struct gw_gateway_stats *ret);
/* Wearables served: the config's and those added with Pair. */
size_t gw_gateway_n_wearables(const GwGateway *gw);
/* Every escalation latency measured, us, in order (borrowed). */
const GArray *gw_gateway_escalation_latencies(GwGateway *gw);

#endif
