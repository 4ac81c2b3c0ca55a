// SPDX-License-Identifier: MIT
/*
 * What the control API reads from a running gateway and the few things it
 * asks of it (docs/control-api.md): each answer is a JSON tree built from
 * the gateway's state, the store and the links. Device addresses are
 * masked unless the gateway runs with log_personal.
 */
#define G_LOG_DOMAIN "gw"

#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <gio/gunixoutputstream.h>

#include "gateway-private.h"

static double secs(int64_t us)
{
	return (double)us / G_USEC_PER_SEC;
}

static void member_time(JsonBuilder *b, const char *name, int64_t wall)
{
	json_builder_set_member_name(b, name);
	if (wall == RL_TIME_NONE || wall == INT64_MIN || wall <= 0)
		json_builder_add_null_value(b);
	else
		json_builder_add_double_value(b, secs(wall));
}

static void member_str(JsonBuilder *b, const char *name, const char *v)
{
	json_builder_set_member_name(b, name);
	if (v)
		json_builder_add_string_value(b, v);
	else
		json_builder_add_null_value(b);
}

static void member_int(JsonBuilder *b, const char *name, int64_t v)
{
	json_builder_set_member_name(b, name);
	json_builder_add_int_value(b, v);
}

static void member_bool(JsonBuilder *b, const char *name, bool v)
{
	json_builder_set_member_name(b, name);
	json_builder_add_boolean_value(b, v);
}

static void member_double(JsonBuilder *b, const char *name, double v)
{
	json_builder_set_member_name(b, name);
	json_builder_add_double_value(b, v);
}

/* XX:XX:XX:XX:EE:FF unless personal information may be shown */
static void mask_address(const GwGateway *gw, const char *address, char *out, size_t size)
{
	if (gw->cfg.log_personal || strlen(address) != 17)
		g_strlcpy(out, address, size);
	else
		g_snprintf(out, size, "XX:XX:XX:XX:%s", address + 12);
}

static GwLink *link_of(GwGateway *gw, const struct wearable *w)
{
	GwCentral *c = gw->ble ? gw_ble_get_central(gw->ble) : NULL;

	return c ? gw_central_get_link(c, w->address) : NULL;
}

static void add_device(JsonBuilder *b, GwGateway *gw, struct wearable *w, int64_t now)
{
	GwLink *link = link_of(gw, w);
	struct gw_link_stats ls = { .state = GW_LINK_STATE_DISABLED };
	char addr[32];
	int64_t fresh_us = (int64_t)gw_rules_get_config(gw->rules)->no_data_min * 60 * G_USEC_PER_SEC;
	/* freshness on the monotonic clock: right with a wrong wall clock */
	int64_t age = w->last_rx_mono_us ? g_get_monotonic_time() - w->last_rx_mono_us : -1;

	if (link)
		gw_link_get_stats(link, g_get_monotonic_time(), &ls);
	mask_address(gw, w->address, addr, sizeof(addr));
	json_builder_begin_object(b);
	member_str(b, "alias", w->alias);
	member_str(b, "address", addr);
	member_bool(b, "paired_here", (size_t)(w - gw->w) >= gw->n_w_config);
	member_str(b, "state", gw_link_state_name(link ? ls.state : GW_LINK_STATE_DISABLED));
	member_bool(b, "connected", ls.connected);
	json_builder_set_member_name(b, "battery_pct");
	if (w->battery == RL_NONE)
		json_builder_add_null_value(b);
	else
		json_builder_add_int_value(b, w->battery);
	member_time(b, "last_record_at", age < 0 ? RL_TIME_NONE : now - age);
	json_builder_set_member_name(b, "last_record_age_s");
	if (age < 0)
		json_builder_add_null_value(b);
	else
		json_builder_add_double_value(b, secs(age));
	/* nothing yet since start: silent only once the no-data time has
	 * passed since the start, as the no-data alarm sees it */
	member_bool(b, "fresh", age >= 0 ? age <= fresh_us
					 : g_get_monotonic_time() - gw->started_mono_us <= fresh_us);
	json_builder_set_member_name(b, "last_seq");
	if (w->last_seq == RL_NONE)
		json_builder_add_null_value(b);
	else
		json_builder_add_int_value(b, w->last_seq);
	member_int(b, "records", (int64_t)gw_store_record_count(gw->store, w->id));
	member_int(b, "malformed", (int64_t)ls.malformed);
	member_int(b, "syncs_completed", ls.syncs_completed);
	member_int(b, "syncs_failed", ls.syncs_failed);
	member_int(b, "reconnects", ls.reconnects);
	member_str(b, "last_error", ls.last_error == GW_BLE_OK ? NULL : gw_ble_err_name(ls.last_error));
	json_builder_end_object(b);
}

JsonNode *gw_gateway_devices_json(GwGateway *gw)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	int64_t now = gw_gateway_wall_us();

	json_builder_begin_array(b);
	for (size_t i = 0; i < gw->n_w; i++)
		add_device(b, gw, &gw->w[i], now);
	json_builder_end_array(b);
	return json_builder_get_root(b);
}

static const char *store_state(GwGateway *gw, uint64_t size, uint64_t budget)
{
	if (gw->st.store_corrupt_aside)
		return "corrupt_moved_aside";
	if (budget && size >= budget)
		return "over_budget";
	if (budget && size >= budget - budget / 10)
		return "near_budget";
	return "ok";
}

JsonNode *gw_gateway_status_json(GwGateway *gw)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	int64_t now = gw_gateway_wall_us();
	int64_t up_us = g_get_monotonic_time() - gw->started_mono_us;
	GwCentral *c = gw->ble ? gw_ble_get_central(gw->ble) : NULL;
	enum gw_central_adapter ad = c ? gw_central_get_adapter(c) : GW_CENTRAL_ADAPTER_NO_BLUEZ;
	struct gw_outbox_stats os;
	uint64_t size = gw_store_size(gw->store), budget = gw_store_budget(gw->store);
	g_autofree char *db = g_build_filename(gw->state_dir, "rehablink.db", NULL);
	struct statvfs vfs;
	unsigned int open_n = 0, unacked = 0;

	gw_store_outbox_stats(gw->store, &os);
	for (guint i = 0; i < gw_rules_n_alerts(gw->rules); i++) {
		const struct gw_rules_alert *a = gw_rules_alert_nth(gw->rules, i);

		open_n += a->state != GW_RULES_RESOLVED;
		unacked += a->state == GW_RULES_OPEN;
	}
	json_builder_begin_object(b);
	member_str(b, "version", gw->version);
	member_str(b, "gateway_id", gw->gateway_id);
	member_int(b, "pid", getpid());
	member_time(b, "started_at", now - up_us);
	member_double(b, "uptime_s", secs(up_us));
	member_bool(b, "personal_info", gw->cfg.log_personal);

	json_builder_set_member_name(b, "adapter");
	json_builder_begin_object(b);
	member_str(b, "name", gw->adapter && *gw->adapter ? gw->adapter : "(first)");
	member_str(b, "state", gw_central_adapter_name(ad));
	member_bool(b, "present", ad >= GW_CENTRAL_ADAPTER_OFF);
	member_bool(b, "powered", ad == GW_CENTRAL_ADAPTER_READY);
	json_builder_end_object(b);

	json_builder_set_member_name(b, "bluetoothd");
	json_builder_begin_object(b);
	member_bool(b, "running", ad != GW_CENTRAL_ADAPTER_NO_BLUEZ);
	json_builder_end_object(b);

	json_builder_set_member_name(b, "wearables");
	json_builder_begin_array(b);
	for (size_t i = 0; i < gw->n_w; i++)
		add_device(b, gw, &gw->w[i], now);
	json_builder_end_array(b);

	json_builder_set_member_name(b, "broker");
	json_builder_begin_object(b);
	member_str(b, "uri", gw->uri);
	if (gw->up) {
		struct gw_uplink_stats us = gw_uplink_get_stats(gw->up);

		member_bool(b, "connected", gw_uplink_is_connected(gw->up));
		member_time(b, "since", us.connected_since_us
					? now - (g_get_monotonic_time() - us.connected_since_us)
					: RL_TIME_NONE);
		member_int(b, "mqtt_version", gw_uplink_mqtt_version(gw->up));
		member_str(b, "last_error", us.last_error[0] ? us.last_error : NULL);
		member_int(b, "connects", (int64_t)us.connects);
		member_int(b, "connect_failures", (int64_t)us.connect_failures);
	} else {
		member_bool(b, "connected", false);
		member_str(b, "last_error", "no broker configured");
	}
	json_builder_end_object(b);

	json_builder_set_member_name(b, "outbox");
	json_builder_begin_object(b);
	member_int(b, "depth", (int64_t)os.depth);
	json_builder_set_member_name(b, "oldest_age_s");
	if (os.depth && os.oldest_created_us != INT64_MIN)
		json_builder_add_double_value(b, secs(MAX(now - os.oldest_created_us, 0)));
	else
		json_builder_add_null_value(b);
	member_int(b, "in_flight", g_hash_table_size(gw->in_flight));
	json_builder_end_object(b);

	json_builder_set_member_name(b, "alerts");
	json_builder_begin_object(b);
	member_int(b, "open", open_n);
	member_int(b, "unacknowledged", unacked);
	json_builder_end_object(b);

	json_builder_set_member_name(b, "clock");
	json_builder_begin_object(b);
	member_bool(b, "synced", gw->clock_synced);
	member_str(b, "mode", gw_clock_mode_name(gw->cfg.clock_mode));
	member_int(b, "steps", (int64_t)gw->st.clock_steps);
	json_builder_set_member_name(b, "last_step_s");
	if (gw->st.clock_steps)
		json_builder_add_double_value(b, secs(gw->st.last_clock_step_us));
	else
		json_builder_add_null_value(b);
	json_builder_end_object(b);

	json_builder_set_member_name(b, "store");
	json_builder_begin_object(b);
	member_str(b, "path", db);
	member_int(b, "size_bytes", (int64_t)size);
	member_int(b, "budget_bytes", (int64_t)budget);
	member_double(b, "fill", budget ? (double)size / (double)budget : 0.0);
	member_str(b, "state", store_state(gw, size, budget));
	member_str(b, "corrupt_aside", gw->st.store_corrupt_aside);
	json_builder_set_member_name(b, "free_bytes");
	if (statvfs(gw->state_dir, &vfs) == 0)
		json_builder_add_int_value(b, (int64_t)((uint64_t)vfs.f_bavail * vfs.f_frsize));
	else
		json_builder_add_null_value(b);
	json_builder_end_object(b);

	json_builder_set_member_name(b, "counters");
	json_builder_begin_object(b);
	member_int(b, "records_stored", (int64_t)gw->st.records_stored);
	member_int(b, "pain_reports", (int64_t)gw->st.pain_reports);
	member_int(b, "messages_published", (int64_t)gw->st.messages_published);
	member_int(b, "publish_failures", (int64_t)gw->st.publish_failures);
	member_int(b, "commits", (int64_t)gw->st.commits);
	member_int(b, "commit_failures", (int64_t)gw->st.commit_failures);
	member_int(b, "clinic_accepted", (int64_t)gw->st.clinic_accepted);
	member_int(b, "clinic_rejected", (int64_t)gw->st.clinic_rejected);
	member_int(b, "alerts_raised", (int64_t)gw->st.alerts_raised);
	member_int(b, "fallbacks_run", (int64_t)gw->st.fallbacks_run);
	member_int(b, "shed_records", (int64_t)gw->st.shed_records);
	member_int(b, "shed_telemetry", (int64_t)gw->st.shed_telemetry);
	json_builder_end_object(b);
	json_builder_end_object(b);
	return json_builder_get_root(b);
}

/* ---- alerts ---- */

static void add_alert_summary(JsonBuilder *b, const struct gw_rules_alert *a)
{
	json_builder_begin_object(b);
	member_str(b, "alert_id", a->alert_id);
	member_str(b, "rule", a->rule);
	member_str(b, "tier", gw_rules_tier_name(a->tier));
	member_str(b, "state", gw_rules_state_name(a->state));
	member_str(b, "subject", a->wearable[0] ? a->wearable : a->patient[0] ? "patient" : "gateway");
	member_time(b, "raised_at", a->raised_at_us);
	member_int(b, "notifications", a->notification);
	member_int(b, "delivered", a->delivered);
	member_time(b, "acknowledged_at", a->has_ack ? a->ack_at_us : RL_TIME_NONE);
	member_time(b, "resolved_at",
		    a->resolved_at_us == GW_RULES_NEVER ? RL_TIME_NONE : a->resolved_at_us);
	json_builder_end_object(b);
}

JsonNode *gw_gateway_alerts_json(GwGateway *gw, bool include_closed)
{
	g_autoptr(JsonBuilder) b = json_builder_new();

	json_builder_begin_array(b);
	for (guint i = 0; i < gw_rules_n_alerts(gw->rules); i++) {
		const struct gw_rules_alert *a = gw_rules_alert_nth(gw->rules, i);

		if (include_closed || a->state != GW_RULES_RESOLVED)
			add_alert_summary(b, a);
	}
	json_builder_end_array(b);
	return json_builder_get_root(b);
}

static void audit_cb(int64_t at_us, const char *event, const char *detail, void *ud)
{
	JsonBuilder *b = ud;

	json_builder_begin_object(b);
	member_time(b, "at", at_us);
	member_str(b, "event", event);
	member_str(b, "detail", detail);
	json_builder_end_object(b);
}

JsonNode *gw_gateway_alert_json(GwGateway *gw, const char *alert_id, GError **error)
{
	const struct gw_rules_alert *a = gw_rules_find(gw->rules, alert_id);
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonNode) sum = NULL;
	JsonObject *o;

	if (!a) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no alert %s", alert_id);
		return NULL;
	}
	json_builder_begin_array(b);
	add_alert_summary(b, a);
	json_builder_end_array(b);
	sum = json_builder_get_root(b);
	o = json_array_get_object_element(json_node_get_array(sum), 0);
	json_object_set_string_member(o, "patient", a->patient[0] && gw->cfg.log_personal ? a->patient
							: a->patient[0] ? "(hidden)" : "");
	{
		g_autoptr(JsonBuilder) tb = json_builder_new();

		json_builder_begin_object(tb);
		for (unsigned int i = 0; i < a->n_trigger; i++)
			member_double(tb, a->trigger[i].name, a->trigger[i].value);
		json_builder_end_object(tb);
		json_object_set_member(o, "trigger", json_builder_get_root(tb));
	}
	json_object_set_int_member(o, "fallback_runs", a->fallback_runs);
	{
		g_autoptr(JsonBuilder) ab = json_builder_new();

		json_builder_begin_array(ab);
		if (!gw_store_audit_foreach(gw->store, a->alert_id, audit_cb, ab, error))
			return NULL;
		json_builder_end_array(ab);
		json_object_set_member(o, "audit", json_builder_get_root(ab));
	}
	return json_node_ref(json_array_get_element(json_node_get_array(sum), 0));
}

/* ---- the queue ---- */

JsonNode *gw_gateway_queue_json(GwGateway *gw, GError **error)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(GHashTable) kinds = gw_store_outbox_kinds(gw->store, error);
	g_autoptr(GPtrArray) head = g_ptr_array_new_with_free_func((GDestroyNotify)gw_outbox_msg_free);
	struct gw_outbox_stats os;
	int64_t now = gw_gateway_wall_us();
	GHashTableIter it;
	gpointer k, v;

	if (!kinds || !gw_store_outbox_peek(gw->store, 20, NULL, head, error))
		return NULL;
	gw_store_outbox_stats(gw->store, &os);
	json_builder_begin_object(b);
	member_int(b, "depth", (int64_t)os.depth);
	json_builder_set_member_name(b, "oldest_age_s");
	if (os.depth && os.oldest_created_us != INT64_MIN)
		json_builder_add_double_value(b, secs(MAX(now - os.oldest_created_us, 0)));
	else
		json_builder_add_null_value(b);
	member_int(b, "in_flight", g_hash_table_size(gw->in_flight));
	member_int(b, "window", gw->up ? gw_uplink_window(gw->up) : 0);
	member_int(b, "backlog_rate", gw->cfg.backlog_rate);
	member_bool(b, "connected", gw->up && gw_uplink_is_connected(gw->up));
	json_builder_set_member_name(b, "by_kind");
	json_builder_begin_object(b);
	g_hash_table_iter_init(&it, kinds);
	while (g_hash_table_iter_next(&it, &k, &v))
		member_int(b, k, GPOINTER_TO_UINT(v));
	json_builder_end_object(b);
	json_builder_set_member_name(b, "head");
	json_builder_begin_array(b);
	for (guint i = 0; i < head->len; i++) {
		const struct gw_outbox_msg *m = head->pdata[i];

		json_builder_begin_object(b);
		member_int(b, "id", m->id);
		member_str(b, "kind", m->kind);
		member_int(b, "priority", m->priority);
		member_double(b, "age_s", secs(MAX(now - m->created_us, 0)));
		member_int(b, "attempts", m->attempts);
		member_bool(b, "in_flight", g_hash_table_contains(gw->in_flight, &m->id));
		member_str(b, "topic", m->topic);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	json_builder_end_object(b);
	return json_builder_get_root(b);
}

/* ---- recent data ---- */

static struct wearable *wearable_by_alias(GwGateway *gw, const char *alias)
{
	if (!alias || !*alias)
		return gw->n_w ? &gw->w[0] : NULL;
	for (size_t i = 0; i < gw->n_w; i++)
		if (strcmp(gw->w[i].alias, alias) == 0)
			return &gw->w[i];
	return NULL;
}

struct data_ctx {
	JsonArray *minutes, *days;
};

/* The stored values (gateway.c agg_values) under the payloads' names. */
static void data_cb(const struct gw_store_aggregate *a, void *ud)
{
	struct data_ctx *dc = ud;
	g_autoptr(JsonParser) p = json_parser_new();
	JsonObject *v, *o, *posture;
	JsonArray *pa, *fa;
	g_autofree char *start = rl_payload_format_time(a->start_us);
	g_autofree char *end = rl_payload_format_time(a->end_us);
	static const char *const classes[] = { "upright", "flexed", "reclined", "lying", "unknown" };

	if (!json_parser_load_from_data(p, a->json, -1, NULL) ||
	    !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p)))
		return;
	v = json_node_get_object(json_parser_get_root(p));
	pa = json_object_get_array_member(v, "posture");
	fa = json_object_get_array_member(v, "flexed");
	if (!pa || json_array_get_length(pa) != 5 || !fa || json_array_get_length(fa) != 2)
		return;
	o = json_object_new();
	json_object_set_string_member(o, "aggregate_id", a->aggregate_id);
	json_object_set_int_member(o, "revision", a->revision);
	json_object_set_string_member(o, "start", start);
	json_object_set_string_member(o, "end", end);
	json_object_set_int_member(o, "steps", json_object_get_int_member(v, "steps"));
	json_object_set_int_member(o, "walking_minutes", json_object_get_int_member(v, "walking_minutes"));
	json_object_set_int_member(o, "cadence_spm", json_object_get_int_member(v, "cadence"));
	posture = json_object_new();
	for (guint i = 0; i < 5; i++)
		json_object_set_int_member(posture, classes[i], json_array_get_int_element(pa, i));
	json_object_set_object_member(o, "posture_s", posture);
	json_object_set_int_member(o, "flexed_over_30_s", json_array_get_int_element(fa, 0));
	json_object_set_int_member(o, "flexed_over_60_s", json_array_get_int_element(fa, 1));
	json_object_set_int_member(o, "longest_still_s", json_object_get_int_member(v, "still"));
	json_object_set_int_member(o, "records", json_object_get_int_member(v, "records"));
	if (a->kind == GW_AGG_DAY) {
		/* the window starts at the local midnight of its day */
		g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local(a->start_us / G_USEC_PER_SEC);
		g_autofree char *date = dt ? g_date_time_format(dt, "%Y-%m-%d") : NULL;

		if (date)
			json_object_set_string_member(o, "local_date", date);
	}
	json_array_add_object_element(a->kind == GW_AGG_DAY ? dc->days : dc->minutes, o);
}

JsonNode *gw_gateway_data_json(GwGateway *gw, const char *alias, int64_t since_us, GError **error)
{
	struct wearable *w = wearable_by_alias(gw, alias);
	g_autoptr(JsonObject) o = json_object_new();
	struct data_ctx dc = { json_array_new(), json_array_new() };
	JsonNode *n;

	json_object_set_array_member(o, "minutes", dc.minutes);
	json_object_set_array_member(o, "days", dc.days);
	if (!w) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no wearable %s", alias);
		return NULL;
	}
	json_object_set_string_member(o, "alias", w->alias);
	if (!gw_store_foreach_aggregate(gw->store, w->id, since_us, data_cb, &dc, error))
		return NULL;
	n = json_node_new(JSON_NODE_OBJECT);
	json_node_set_object(n, o);
	return n;
}

/* ---- export ---- */

struct export_ctx {
	GwGateway *gw;
	GOutputStream *out;
	bool csv;
	uint64_t records, bytes;
	GError *error;
};

static const char *record_type_name(enum wb_record_type t)
{
	switch (t) {
	case WB_RECORD_POSTURE:
		return "posture";
	case WB_RECORD_STEPS:
		return "steps";
	case WB_RECORD_PAIN:
		return "pain";
	case WB_RECORD_STATUS:
		return "status";
	}
	return "unknown";
}

/* The record's own fields as a JSON object text. */
static char *record_values(const struct wb_record *r)
{
	switch (r->type) {
	case WB_RECORD_POSTURE:
		return g_strdup_printf("{\"flexion_ddeg\":%d,\"tilt_ddeg\":%d,\"class\":%d,"
				       "\"duration_s\":%u}", r->u.posture.flexion_ddeg,
				       r->u.posture.tilt_ddeg, (int)r->u.posture.cls,
				       (unsigned int)r->u.posture.duration_s);
	case WB_RECORD_STEPS:
		return g_strdup_printf("{\"steps\":%u,\"duration_s\":%u}",
				       (unsigned int)r->u.steps.steps,
				       (unsigned int)r->u.steps.duration_s);
	case WB_RECORD_PAIN:
		return g_strdup_printf("{\"score\":%u,\"flags\":%u}", (unsigned int)r->u.pain.score,
				       (unsigned int)r->u.pain.flags);
	case WB_RECORD_STATUS:
		return g_strdup_printf("{\"battery_pct\":%u,\"storage_pct\":%u,\"flags\":%u,"
				       "\"uptime_s\":%u}", (unsigned int)r->u.status.battery_pct,
				       (unsigned int)r->u.status.storage_pct,
				       (unsigned int)r->u.status.flags,
				       (unsigned int)r->u.status.uptime_s);
	}
	return g_strdup("{}");
}

static void export_cb(const char *wearable, const struct gw_store_record *r, void *ud)
{
	struct export_ctx *ec = ud;
	GwGateway *gw = ec->gw;
	const char *alias = wearable;
	g_autofree char *values = record_values(&r->rec);
	g_autofree char *received = rl_payload_format_time(r->stamp.received_us);
	g_autofree char *event = NULL;
	g_autofree char *line = NULL;
	enum rl_time_quality q = RL_TIME_UNSYNCED;
	int64_t t;
	gsize n;

	if (ec->error)
		return;
	for (size_t i = 0; i < gw->n_w; i++)
		if (strcmp(gw->w[i].id, wearable) == 0) {
			alias = gw->w[i].alias;
			if (gw_clock_place(&gw->w[i].ref, &r->rec, &t, &q))
				event = rl_payload_format_time(t);
		}
	if (ec->csv) {
		g_autofree char *quoted = NULL;
		GString *qs = g_string_new("\"");

		for (const char *c = values; *c; c++) {
			if (*c == '"')
				g_string_append_c(qs, '"');
			g_string_append_c(qs, *c);
		}
		g_string_append_c(qs, '"');
		quoted = g_string_free(qs, FALSE);
		line = g_strdup_printf("%s,%u,%s,%s,%s,%s,%s\n", alias, (unsigned int)r->rec.seq,
				       record_type_name(r->rec.type), event ? event : "",
				       received, event ? rl_time_quality_name(q) : "unplaced", quoted);
	} else {
		line = g_strdup_printf("{\"wearable\":\"%s\",\"seq\":%u,\"type\":\"%s\","
				       "\"event_time\":%s%s%s,\"received_at\":\"%s\","
				       "\"time_quality\":\"%s\",\"values\":%s}\n",
				       alias, (unsigned int)r->rec.seq, record_type_name(r->rec.type),
				       event ? "\"" : "", event ? event : "null", event ? "\"" : "",
				       received, event ? rl_time_quality_name(q) : "unplaced", values);
	}
	if (!g_output_stream_write_all(ec->out, line, strlen(line), &n, NULL, &ec->error))
		return;
	ec->records++;
	ec->bytes += n;
}

JsonNode *gw_gateway_export(GwGateway *gw, int fd, const char *format, int64_t since_us,
			    GError **error)
{
	struct export_ctx ec = { gw, NULL, false, 0, 0, NULL };
	g_autoptr(GOutputStream) out = NULL;
	g_autoptr(JsonBuilder) b = json_builder_new();
	static const char header[] = "wearable,seq,type,event_time,received_at,time_quality,values\n";

	if (g_strcmp0(format, "csv") == 0) {
		ec.csv = true;
	} else if (g_strcmp0(format, "json") != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "format \"%s\": csv or json", format);
		return NULL;
	}
	out = g_unix_output_stream_new(fd, FALSE);
	ec.out = out;
	if (ec.csv) {
		if (!g_output_stream_write_all(out, header, sizeof(header) - 1, NULL, NULL, error))
			return NULL;
		ec.bytes += sizeof(header) - 1;
	}
	if (!gw_store_foreach_record_since(gw->store, since_us, -1, export_cb, &ec, error)) {
		g_clear_error(&ec.error);
		return NULL;
	}
	if (ec.error) {
		g_propagate_error(error, ec.error);
		return NULL;
	}
	json_builder_begin_object(b);
	member_int(b, "records", (int64_t)ec.records);
	member_int(b, "bytes", (int64_t)ec.bytes);
	json_builder_end_object(b);
	return json_builder_get_root(b);
}

/* ---- pair and forget ---- */

JsonNode *gw_gateway_pair(GwGateway *gw, const char *address, bool pair, bool *ret_changed,
			  GError **error)
{
	char a[GW_BLUEZ_ADDR_SIZE], shown[32];
	g_autofree char *v = gw_store_device_get(gw->store, GW_PAIRED_OWNER, GW_PAIRED_KEY);
	g_auto(GStrv) list = v && *v ? g_strsplit(v, ";", -1) : g_new0(char *, 1);
	g_autoptr(GPtrArray) keep = g_ptr_array_new();
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autofree char *joined = NULL;
	const char *detail;
	bool listed = false, in_config = false;

	*ret_changed = false;
	if (!address || !gw_bluez_address_normalize(address, a)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "\"%s\" is not a Bluetooth address (AA:BB:CC:DD:EE:FF)", address ? address : "");
		return NULL;
	}
	for (size_t i = 0; i < gw->n_w_config; i++)
		in_config |= strcmp(gw->w[i].address, a) == 0;
	for (size_t i = 0; list[i]; i++) {
		if (g_ascii_strcasecmp(list[i], a) == 0)
			listed = true;
		else
			g_ptr_array_add(keep, list[i]);
	}
	if (!pair && in_config) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "the wearable is in the config file ([ble] wearables): remove it there "
			    "and reload");
		return NULL;
	}
	if (pair && (in_config || listed)) {
		detail = "already a wearable of this gateway";
	} else if (!pair && !listed) {
		detail = "not a wearable of this gateway";
	} else {
		if (pair)
			g_ptr_array_add(keep, a);
		g_ptr_array_add(keep, NULL);
		joined = g_strjoinv(";", (char **)keep->pdata);
		if (!gw_store_device_set(gw->store, GW_PAIRED_OWNER, GW_PAIRED_KEY,
					 *joined ? joined : NULL, error))
			return NULL;
		gw->dirty = true;
		gw_gateway_commit_soon(gw);
		*ret_changed = true;
		if (!pair && gw->ble)
			gw_ble_remove_device(gw->ble, a);	/* its bond too */
		detail = pair ? "kept; rehablinkd restarts in place to start syncing it"
			      : "removed; rehablinkd restarts in place to stop syncing it";
	}
	mask_address(gw, a, shown, sizeof(shown));
	json_builder_begin_object(b);
	member_str(b, "address", shown);
	member_bool(b, "changed", *ret_changed);
	member_str(b, "detail", detail);
	json_builder_end_object(b);
	return json_builder_get_root(b);
}

/* ---- test alert, store check ---- */

JsonNode *gw_gateway_test_alert(GwGateway *gw, GError **error)
{
	char id[GW_RULES_ID_MAX];
	g_autoptr(JsonBuilder) b = json_builder_new();

	if (gw_rules_test_alert(gw->rules, gw_gateway_rules_now(gw), id) != GW_RULES_OK) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "the rules engine refused");
		return NULL;
	}
	json_builder_begin_object(b);
	member_str(b, "alert_id", id);
	json_builder_end_object(b);
	return json_builder_get_root(b);
}

JsonNode *gw_gateway_check_store(GwGateway *gw)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(GError) e = NULL;
	g_autofree char *res = NULL;
	int64_t t0 = g_get_monotonic_time();
	bool ok = gw_store_check(gw->store, &res, &e);

	json_builder_begin_object(b);
	member_bool(b, "ok", ok);
	member_str(b, "result", ok ? res : e->message);
	member_double(b, "seconds", secs(g_get_monotonic_time() - t0));
	json_builder_end_object(b);
	return json_builder_get_root(b);
}

size_t gw_gateway_n_wearables(const GwGateway *gw)
{
	g_return_val_if_fail(gw != NULL, 0);
	return gw->n_w;
}
