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
	unsigned int in_flight;
	bool connected;
	bool clock_synced;
	const char *store_corrupt_aside;	/* NULL, or where a corrupt store went */
};
void gw_gateway_get_stats(GwGateway *gw, struct gw_gateway_stats *ret);
/* Every escalation latency measured, us, in order (borrowed). */
const GArray *gw_gateway_escalation_latencies(GwGateway *gw);

#endif
