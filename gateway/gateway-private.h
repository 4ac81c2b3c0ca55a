/* SPDX-License-Identifier: MIT */
/*
 * GwGateway's state, shared by gateway.c (the wiring) and gateway-query.c
 * (what the control API reads). Nothing else includes this.
 */
#ifndef REHABLINK_GATEWAY_GATEWAY_PRIVATE_H
#define REHABLINK_GATEWAY_GATEWAY_PRIVATE_H

#include "gateway.h"

#include "ble.h"
#include "bluez.h"
#include "bluez-parse.h"
#include "payload.h"
#include "rules.h"
#include "store.h"
#include "topic.h"

struct wearable {
	GwGateway *gw;
	char address[GW_BLUEZ_ADDR_SIZE];
	char id[16];		/* AABBCCDDEEFF: the store's key */
	char *alias;		/* topic id */
	GwAgg *agg;
	struct gw_clock_ref ref;
	enum gw_link_state last_state;
	int battery;		/* RL_NONE until read */
	int64_t last_seen_us;	/* wall, RL_TIME_NONE */
	int64_t last_rx_mono_us;	/* monotonic, 0: nothing yet since start */
	int64_t newest_event_us;
	int64_t last_seq;	/* RL_NONE */
	/* records the clock could not place yet: the lowest seq among them */
	bool has_unplaced;
	uint32_t unplaced_seq;
	/* the store's aggregation watermark as last marked (has_marked) */
	bool has_marked;
	uint32_t marked_seq;
};

struct gw_gateway {
	struct gw_gateway_config cfg;	/* strings copied below */
	char *gateway_id, *patient_id, *version;
	char *state_dir, *adapter, *uri;	/* copies, for the control API */
	GwStore *store;
	GwBle *ble;
	GwUplink *up;
	struct wearable *w;
	size_t n_w;
	size_t n_w_config;		/* the first n_w_config come from the config,
					 * the rest were paired (GW_PAIRED_KEY) */
	char boot_id[GW_BOOT_ID_SIZE];
	bool clock_synced;
	int64_t started_mono_us;

	/* forwarding */
	GHashTable *in_flight;		/* outbox id (int64) -> 1 */
	unsigned int in_flight_telemetry;
	GHashTable *in_flight_prio;	/* id -> priority */
	double tokens;
	int64_t tokens_at_us;
	GSource *drain_later;
	bool draining;
	bool birth_sent;
	int64_t committed_id;		/* rows up to this id are committed (ids
					 * only grow); INT64_MAX: all of them. Only
					 * committed rows are published, so a crash
					 * cannot publish a row under an id it then
					 * forgets (an aggregate re-emitted after a
					 * restart would get a new id) */

	/* periodic */
	guint commit_timer;
	guint tick_timer;
	guint status_timer;
	guint budget_timer;
	bool dirty;			/* own writes since the last commit */
	bool agg_stale;			/* a commit failed: rebuild the aggregators
					 * at the next one that succeeds */
	GPtrArray *replies;		/* struct reply: answers to clinic messages
					 * not committed yet (gateway.c) */
	guint reply_retry;		/* a commit for them after a failed one */

	/* the last will, built once */
	char *will_topic;
	char *will_payload;
	char *cmd_filter;
	const char *subs[2];

	struct gw_gateway_stats st;
	bool stopped;

	/* escalation */
	GwRules *rules;
	char *fallback_command;
	GHashTable *alert_rows;		/* outbox id -> struct alert_row */
	GHashTable *pain_arrival;	/* alert_id -> mono us of the pain that raised it */
	GArray *latencies;		/* int64 us */
	int64_t clock_offset_us;	/* wall - monotonic, to see steps */
	int64_t mono_pain_us;		/* the pain report being evaluated */
	GHashTable *minutes;		/* "alias:minute" -> struct minute_ctx */
	int64_t minutes_pruned_mono_us;	/* when tick_cb last pruned them */
	GTimeZone *tz_local;
};

struct alert_row {
	char alert_id[GW_RULES_ID_MAX];
	uint32_t notification;
};

/* where Pair() keeps the addresses it added: device state */
#define GW_PAIRED_OWNER "gateway"
#define GW_PAIRED_KEY "paired"

/* gateway.c, for gateway-query.c */
int64_t gw_gateway_wall_us(void);
int64_t gw_gateway_rules_now(GwGateway *gw);	/* wall_us, a clock step told to the rules first */
void gw_gateway_commit_soon(GwGateway *gw);
void gw_gateway_strip_colons(const char *address, char *out, size_t size);

#endif
