// SPDX-License-Identifier: MIT
/*
 * GwGateway: GwBle -> GwStore -> aggregators -> outbox -> GwUplink (see
 * gateway.h). Translates and carries out; the decisions that are policy
 * (what drains next) are small and stated where they are made.
 */
#define G_LOG_DOMAIN "gw"

#include <errno.h>
#include <string.h>

#include "gateway-private.h"

#define DEFAULT_COMMIT_MS 300000
#define DEFAULT_BACKLOG_RATE 1000
#define DEFAULT_ALERT_SLOTS 4
#define DEFAULT_STATUS_S 300
#define BUDGET_CHECK_S 60
#define BIRTH_TAG 0		/* outbox ids start at 1 */

/* ---- helpers ---------------------------------------------------------------- */

static int64_t wall_us(void)
{
	return g_get_real_time();
}

/* The wall clock for the rules. A step (NTP after a boot with a wrong
 * clock, a technician) is told to the engine first, once, before anything
 * is judged against the new time: otherwise a forward step looks like
 * hours without data or broker, and a backward one would be shifted twice. */
static int64_t rules_now(GwGateway *gw)
{
	int64_t now = wall_us();
	int64_t offset = now - g_get_monotonic_time();
	int64_t d = offset - gw->clock_offset_us;

	gw->clock_offset_us = offset;
	if (d > 2 * G_USEC_PER_SEC || d < -2 * G_USEC_PER_SEC) {
		g_message("clock: stepped by %+" G_GINT64_FORMAT " s", d / G_USEC_PER_SEC);
		gw->st.clock_steps++;
		gw->st.last_clock_step_us = d;
		gw_rules_clock_step(gw->rules, d, now);
	}
	return now;
}

static struct wearable *wearable_by_address(GwGateway *gw, const char *address)
{
	for (size_t i = 0; i < gw->n_w; i++)
		if (g_ascii_strcasecmp(gw->w[i].address, address) == 0)
			return &gw->w[i];
	return NULL;
}

static void env_init(GwGateway *gw, struct rl_envelope *env, const char *msg_id,
		     int64_t event_us, enum rl_time_quality q)
{
	int64_t now = wall_us();

	memset(env, 0, sizeof(*env));
	env->msg_id = msg_id;
	env->event_time_us = event_us == RL_TIME_NONE ? now : event_us;
	env->time_quality = q;
	env->received_at_us = now;
	env->gateway_id = gw->gateway_id;
	env->patient_id = gw->patient_id;
}

static enum rl_time_quality own_quality(GwGateway *gw)
{
	return gw->clock_synced ? RL_TIME_SYNCED : RL_TIME_UNSYNCED;
}

static void commit_now(GwGateway *gw);
static void drain(GwGateway *gw);

/* ---- the outbox ------------------------------------------------------------- */

static int kind_prio(enum rl_topic_kind kind)
{
	switch (kind) {
	case RL_TOPIC_ALERT:
		return GW_PRIO_ALERT;
	case RL_TOPIC_PAIN:
		return GW_PRIO_PAIN;
	case RL_TOPIC_GATEWAY_STATUS:
	case RL_TOPIC_CONFIG_STATE:
	case RL_TOPIC_ERROR:
		return GW_PRIO_STATUS;
	case RL_TOPIC_WEARABLE_STATUS:
	case RL_TOPIC_AGGREGATE_MINUTE:
	case RL_TOPIC_AGGREGATE_DAY:
	case RL_TOPIC_FHIR_OBSERVATION:
	case RL_TOPIC_ALERT_ACK:
	case RL_TOPIC_CONFIG:
		break;
	}
	return GW_PRIO_TELEMETRY;
}

/* Queues a built payload (taking it). FALSE if the store refused it. */
static gboolean enqueue_id(GwGateway *gw, enum rl_topic_kind kind, const char *wearable_alias,
			   const char *msg_id, char *payload, int64_t *ret_id, GError **error)
{
	struct rl_topic_ids ids = { gw->gateway_id, gw->patient_id, wearable_alias };
	char topic[RL_TOPIC_BUF_SIZE];
	struct gw_outbox_msg m = { 0 };
	gboolean ok;

	if (rl_topic_build(kind, &ids, topic, sizeof(topic)) < 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "outbox: no topic for %s", rl_topic_kind_name(kind));
		g_free(payload);
		return FALSE;
	}
	m.msg_id = (char *)msg_id;
	m.kind = (char *)rl_topic_kind_name(kind);
	m.priority = kind_prio(kind);
	m.topic = topic;
	m.payload = payload;
	m.payload_len = strlen(payload);
	m.qos = rl_topic_kind_qos(kind);
	m.retain = rl_topic_kind_is_retained(kind);
	m.expiry_s = rl_topic_kind_expiry_s(kind);
	m.created_us = wall_us();
	ok = gw_store_outbox_put(gw->store, &m, error);
	g_free(payload);
	if (!ok)
		return FALSE;
	if (m.id <= gw->committed_id)
		gw->committed_id = m.id - 1;	/* the first of this transaction */
	if (ret_id)
		*ret_id = m.id;
	gw->st.messages_queued++;
	gw->dirty = true;
	return TRUE;
}

static gboolean enqueue(GwGateway *gw, enum rl_topic_kind kind, const char *wearable_alias,
			const char *msg_id, char *payload, GError **error)
{
	return enqueue_id(gw, kind, wearable_alias, msg_id, payload, NULL, error);
}

static void enqueue_or_warn(GwGateway *gw, enum rl_topic_kind kind, const char *alias,
			    const char *msg_id, char *payload, GError *build_error)
{
	g_autoptr(GError) error = NULL;

	if (!payload) {
		g_warning("%s: not built: %s", rl_topic_kind_name(kind),
			  build_error ? build_error->message : "?");
		return;
	}
	if (!enqueue(gw, kind, alias, msg_id, payload, &error))
		g_warning("%s: not queued: %s", rl_topic_kind_name(kind), error->message);
}

/* Answers to clinic messages (cmd/error, the config state answering a
 * config message). The broker forgot the clinic's message when paho took
 * it, so nothing would ever ask again: an answer rolled back with a failed
 * commit (a full disk) or refused by the store is kept here and queued
 * again, under the same msg_id, until a commit holding it succeeds. */
struct reply {
	enum rl_topic_kind kind;
	char *msg_id;
	char *payload;
	bool in_txn;			/* in the open transaction */
};

static void reply_free(gpointer p)
{
	struct reply *r = p;

	g_free(r->msg_id);
	g_free(r->payload);
	g_free(r);
}

static void reply_put(GwGateway *gw, struct reply *r)
{
	g_autoptr(GError) error = NULL;

	r->in_txn = enqueue(gw, r->kind, NULL, r->msg_id, g_strdup(r->payload), &error);
	if (!r->in_txn)
		g_warning("%s: not queued now, kept for the next commit: %s",
			  rl_topic_kind_name(r->kind), error->message);
	gw->dirty = true;
}

static void queue_reply(GwGateway *gw, enum rl_topic_kind kind, const char *msg_id,
			char *payload, GError *build_error)
{
	struct reply *r;

	if (!payload) {
		g_warning("%s: not built: %s", rl_topic_kind_name(kind),
			  build_error ? build_error->message : "?");
		return;
	}
	r = g_new0(struct reply, 1);
	r->kind = kind;
	r->msg_id = g_strdup(msg_id);
	r->payload = payload;
	g_ptr_array_add(gw->replies, r);
	reply_put(gw, r);
}

static gboolean reply_retry_cb(gpointer ud)
{
	GwGateway *gw = ud;

	gw->reply_retry = 0;
	commit_now(gw);
	return G_SOURCE_REMOVE;
}

/* After a commit: the replies it held are durable; the others go into the
 * next transaction (after a failed one, at once: the rolled-back rows are
 * gone, the msg_ids free again), committed a second later (not at the
 * next batch: commit_interval_ms may be minutes). */
static void replies_after_commit(GwGateway *gw, bool ok)
{
	for (guint i = 0; i < gw->replies->len;) {
		struct reply *r = gw->replies->pdata[i];

		if (ok && r->in_txn) {
			g_ptr_array_remove_index(gw->replies, i);
			continue;
		}
		reply_put(gw, r);
		i++;
	}
	if (gw->replies->len && !gw->reply_retry && !gw->stopped)
		gw->reply_retry = g_timeout_add_seconds(1, reply_retry_cb, gw);
}

/* ---- messages the gateway makes ------------------------------------------- */

static gchar *build_gateway_status(GwGateway *gw, const char *msg_id)
{
	struct gw_outbox_stats os;
	struct rl_gateway_status s = { 0 };
	struct rl_envelope env;
	g_autoptr(GError) error = NULL;
	gchar *p;

	gw_store_outbox_stats(gw->store, &os);
	env_init(gw, &env, msg_id, RL_TIME_NONE, own_quality(gw));
	s.state = RL_GATEWAY_ONLINE;
	s.version = gw->version;
	s.uptime_s = (g_get_monotonic_time() - gw->started_mono_us) / G_USEC_PER_SEC;
	s.clock_synced = gw->clock_synced;
	s.outbox_depth = (int64_t)os.depth;
	s.oldest_age_s = os.depth && os.oldest_created_us != INT64_MIN
				 ? MAX(0, (wall_us() - os.oldest_created_us) / G_USEC_PER_SEC)
				 : RL_NONE;
	s.wearables = (int)gw->n_w;
	p = rl_payload_build_gateway_status(&s, &env, &error);
	if (!p)
		g_warning("gateway status: %s", error->message);
	return p;
}

static void queue_gateway_status(GwGateway *gw)
{
	g_autofree char *id = g_uuid_string_random();
	GError *error = NULL;
	gchar *p = build_gateway_status(gw, id);

	enqueue_or_warn(gw, RL_TOPIC_GATEWAY_STATUS, NULL, id, p, error);
	commit_now(gw);
}

static enum rl_link_state link_state_rl(enum gw_link_state s)
{
	switch (s) {
	case GW_LINK_STATE_SYNCING:
		return RL_LINK_SYNCING;
	case GW_LINK_STATE_LIVE:
		return RL_LINK_LIVE;
	case GW_LINK_STATE_NEEDS_REPAIR:
		return RL_LINK_NEEDS_REPAIR;
	case GW_LINK_STATE_RESOLVING:
	case GW_LINK_STATE_CHECKING_LAYOUT:
	case GW_LINK_STATE_SETTING_TIME:
	case GW_LINK_STATE_READING_INFO:
	case GW_LINK_STATE_SUBSCRIBING:
		return RL_LINK_CONNECTED;
	case GW_LINK_STATE_WAITING_ADAPTER:
	case GW_LINK_STATE_SCANNING:
	case GW_LINK_STATE_CONNECTING:
	case GW_LINK_STATE_DISCONNECTING:
	case GW_LINK_STATE_BACKOFF:
	case GW_LINK_STATE_DISABLED:
		break;
	}
	return RL_LINK_DISCONNECTED;
}

static void queue_wearable_status(GwGateway *gw, struct wearable *w, enum gw_link_state s)
{
	g_autofree char *id = g_uuid_string_random();
	struct rl_wearable_status ws = { 0 };
	struct rl_envelope env;
	GError *error = NULL;
	gchar *p;

	env_init(gw, &env, id, RL_TIME_NONE, own_quality(gw));
	ws.alias = w->alias;
	ws.link = link_state_rl(s);
	ws.battery_pct = w->battery;
	ws.last_seen_us = w->last_seen_us;
	ws.freshness_s = w->newest_event_us != RL_TIME_NONE && gw->clock_synced
				 ? MAX(0, (wall_us() - w->newest_event_us) / G_USEC_PER_SEC)
				 : RL_NONE;
	ws.last_seq = w->last_seq;
	ws.storage_pct = RL_NONE;
	p = rl_payload_build_wearable_status(&ws, &env, &error);
	enqueue_or_warn(gw, RL_TOPIC_WEARABLE_STATUS, w->alias, id, p, error);
	g_clear_error(&error);
}

static void queue_pain(GwGateway *gw, struct wearable *w, const struct wb_record *rec)
{
	g_autofree char *id = g_uuid_string_random();
	struct rl_pain pain = { w->alias, rec->seq, rec->u.pain.score, rec->u.pain.flags };
	struct rl_envelope env;
	enum rl_time_quality q;
	int64_t t;
	GError *error = NULL;
	gchar *p;

	if (!gw_clock_place(&w->ref, rec, &t, &q)) {
		/* a pain report is never held back: it goes out on the
		 * gateway's clock, saying how good that is */
		t = wall_us();
		q = gw->clock_synced ? RL_TIME_ESTIMATED : RL_TIME_UNSYNCED;
	}
	env_init(gw, &env, id, t, q);
	p = rl_payload_build_pain(&pain, &env, &error);
	enqueue_or_warn(gw, RL_TOPIC_PAIN, NULL, id, p, error);
	g_clear_error(&error);
	gw->st.pain_reports++;
}


/* ---- escalation (gateway/rules.c decides; this carries out) ------------------ */

static gboolean commit_idle_cb(gpointer ud);

/* Alerts are committed at once, but never from inside GwBle's op (the
 * links are told of commits from outside their callbacks): from an idle. */
static void commit_soon(GwGateway *gw)
{
	g_idle_add_full(G_PRIORITY_HIGH, commit_idle_cb, gw, NULL);
}

static gboolean commit_idle_cb(gpointer ud)
{
	commit_now(ud);
	return G_SOURCE_REMOVE;
}

static void rules_new_id(char *buf, size_t size, void *ud)
{
	g_autofree char *id = g_uuid_string_random();

	(void)ud;
	g_strlcpy(buf, id, size);
}

static gchar *build_alert(GwGateway *gw, const struct gw_rules_alert *a, const char *msg_id,
			  GError **error)
{
	struct rl_alert al = { 0 };
	struct rl_alert_trigger trig[GW_RULES_MAX_TRIGGERS];
	g_autofree struct rl_pain_point *pts = g_new0(struct rl_pain_point,
						      a->context.n_pain_24h + 1);
	struct rl_alert_ack_info ack = { 0 };
	struct rl_envelope env;

	for (unsigned int i = 0; i < a->n_trigger && i < G_N_ELEMENTS(trig); i++) {
		trig[i].name = a->trigger[i].name;
		trig[i].value = a->trigger[i].value;
	}
	for (unsigned int i = 0; i < a->context.n_pain_24h; i++) {
		pts[i].time_us = a->context.pain_24h[i].time_us;
		pts[i].score = a->context.pain_24h[i].score;
	}
	al.alert_id = a->alert_id;
	al.notification = a->notification;
	al.rule = a->rule;
	al.tier = (enum rl_alert_tier)a->tier;
	al.state = (enum rl_alert_state)a->state;
	al.raised_at_us = a->raised_at_us;
	al.trigger = trig;
	al.n_trigger = MIN(a->n_trigger, G_N_ELEMENTS(trig));
	al.context.pain_24h = pts;
	al.context.n_pain_24h = a->context.n_pain_24h;
	al.context.flexed_s_2h = a->context.flexed_s_2h;
	al.context.steps_today = a->context.steps_today;
	al.context.steps_yesterday = a->context.steps_yesterday;
	al.context.battery_pct = a->context.battery_pct;
	al.context.data_age_s = a->context.data_age_s;
	if (a->has_ack) {
		ack.by = a->ack_by;
		ack.at_us = a->ack_at_us;
		ack.note = a->has_note ? a->ack_note : NULL;
		al.ack = &ack;
	}
	env_init(gw, &env, msg_id, RL_TIME_NONE, own_quality(gw));
	if (a->patient[0])
		env.patient_id = a->patient;
	return rl_payload_build_alert(&al, &env, error);
}

struct fallback_run {
	GwGateway *gw;
	char alert_id[GW_RULES_ID_MAX];
};

static void fallback_exited(GPid pid, gint wait_status, gpointer ud)
{
	struct fallback_run *run = ud;
	g_autoptr(GError) error = NULL;
	int status = g_spawn_check_wait_status(wait_status, &error) ? 0
		     : (error && error->domain == G_SPAWN_EXIT_ERROR ? error->code : -ECHILD);

	g_spawn_close_pid(pid);
	g_message("alert %s: the local fallback ended with status %d", run->alert_id, status);
	if (run->gw)
		gw_rules_fallback_result(run->gw->rules, run->alert_id, status, wall_us());
	g_free(run);
}

static void run_fallback(GwGateway *gw, const struct gw_rules_alert *a)
{
	struct fallback_run *run;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) envp = g_get_environ();
	const char *argv[] = { "/bin/sh", "-c", gw->fallback_command, NULL };
	GPid pid;

	gw->st.fallbacks_run++;
	if (!gw->fallback_command) {
		g_warning("alert %s: no fallback command configured ([escalation] fallback_command)",
			  a->alert_id);
		gw_rules_fallback_result(gw->rules, a->alert_id, -ENOENT, rules_now(gw));
		return;
	}
	envp = g_environ_setenv(envp, "REHABLINK_ALERT_ID", a->alert_id, TRUE);
	envp = g_environ_setenv(envp, "REHABLINK_ALERT_RULE", a->rule, TRUE);
	envp = g_environ_setenv(envp, "REHABLINK_ALERT_TIER", gw_rules_tier_name(a->tier), TRUE);
	envp = g_environ_setenv(envp, "REHABLINK_GATEWAY", gw->gateway_id, TRUE);
	if (!g_spawn_async(NULL, (char **)argv, envp, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid,
			   &error)) {
		g_warning("alert %s: the local fallback could not start: %s", a->alert_id,
			  error->message);
		gw_rules_fallback_result(gw->rules, a->alert_id, -ENOEXEC, rules_now(gw));
		return;
	}
	run = g_new0(struct fallback_run, 1);
	run->gw = gw;
	g_strlcpy(run->alert_id, a->alert_id, sizeof(run->alert_id));
	g_child_watch_add(pid, fallback_exited, run);
	g_message("alert %s (%s, %s): running the local fallback", a->alert_id, a->rule,
		  gw_rules_tier_name(a->tier));
}

static void rules_event(const struct gw_rules_event *ev, void *ud)
{
	GwGateway *gw = ud;
	const struct gw_rules_alert *a = ev->alert;
	g_autoptr(GVariant) v = g_variant_ref_sink(gw_rules_alert_serialize(a));
	g_autofree char *json = g_variant_print(v, TRUE);
	struct gw_store_alert sa = { a->alert_id, a->rule, a->patient[0] ? a->patient : gw->patient_id,
				     (int)a->tier, (int)a->state, a->raised_at_us, ev->at_us, json };
	g_autoptr(GError) error = NULL;

	if (!gw_store_alert_put(gw->store, &sa, &error) ||
	    !gw_store_audit_append(gw->store, ev->at_us, a->alert_id,
				   gw_rules_event_kind_name(ev->kind), ev->detail, &error))
		g_warning("alert %s: %s", a->alert_id, error->message);
	g_clear_error(&error);
	/* the detail may carry health values (rules.audit_health_values):
	 * the audit keeps it, the log only with log_personal */
	g_message("alert %s: %s (rule=%s tier=%s notification=%u%s%s)", a->alert_id,
		  gw_rules_event_kind_name(ev->kind), a->rule, gw_rules_tier_name(a->tier),
		  a->notification, gw->cfg.log_personal && ev->detail ? " " : "",
		  gw->cfg.log_personal && ev->detail ? ev->detail : "");
	if (ev->kind == GW_RULES_EV_RAISED)
		gw->st.alerts_raised++;
	if (ev->publish) {
		g_autofree char *id = g_uuid_string_random();
		struct alert_row *row = g_new0(struct alert_row, 1);
		gchar *p = build_alert(gw, a, id, &error);
		int64_t oid = 0;

		if (!p || !enqueue_id(gw, RL_TOPIC_ALERT, NULL, id, p, &oid, &error)) {
			g_warning("alert %s: not queued: %s", a->alert_id, error->message);
			g_free(row);
		} else {
			g_strlcpy(row->alert_id, a->alert_id, sizeof(row->alert_id));
			row->notification = a->notification;
			g_hash_table_insert(gw->alert_rows, g_memdup2(&oid, sizeof(oid)), row);
			gw->st.alert_notifications++;
			if (gw->mono_pain_us && !g_hash_table_contains(gw->pain_arrival, a->alert_id))
				g_hash_table_insert(gw->pain_arrival, g_strdup(a->alert_id),
						    g_memdup2(&gw->mono_pain_us, sizeof(int64_t)));
		}
	}
	if (ev->kind == GW_RULES_EV_FALLBACK_STARTED)
		run_fallback(gw, a);
	gw->dirty = true;
	commit_soon(gw);
}

static const struct gw_rules_ops rules_ops = {
	.new_id = rules_new_id,
	.event = rules_event,
};

/* The outbox row of an alert notification was acknowledged by the broker. */
static void alert_delivered(GwGateway *gw, int64_t oid)
{
	struct alert_row *row = g_hash_table_lookup(gw->alert_rows, &oid);
	int64_t *arrival;

	if (!row)
		return;
	arrival = g_hash_table_lookup(gw->pain_arrival, row->alert_id);
	if (arrival) {
		int64_t lat = g_get_monotonic_time() - *arrival;

		g_array_append_val(gw->latencies, lat);
		gw->st.escalations_timed++;
		gw->st.escalation_us_sum += lat;
		gw->st.escalation_us_max = MAX(gw->st.escalation_us_max, lat);
		g_hash_table_remove(gw->pain_arrival, row->alert_id);
	}
	gw_rules_delivered(gw->rules, row->alert_id, row->notification, rules_now(gw));
	g_hash_table_remove(gw->alert_rows, &oid);
}

/* Steps and flexion per UTC minute, from the minute aggregates, for the
 * alert context (steps today and yesterday, flexed time in the last 2 h). */
struct minute_ctx {
	int64_t steps;
	int64_t flexed30_s;
};

#define CONTEXT_KEEP_S (50 * 3600)

static void context_minute(GwGateway *gw, const char *wearable, const struct rl_aggregate *a)
{
	g_autofree char *key = g_strdup_printf("%s:%" G_GINT64_FORMAT, wearable,
					       a->start_us / G_USEC_PER_SEC);
	struct minute_ctx *m = g_new0(struct minute_ctx, 1);

	m->steps = a->steps;
	m->flexed30_s = a->flexed_over_30_s;
	if (a->start_us / G_USEC_PER_SEC < wall_us() / G_USEC_PER_SEC - CONTEXT_KEEP_S) {
		g_free(m);	/* history beyond any context */
		return;
	}
	g_hash_table_replace(gw->minutes, g_steal_pointer(&key), m);
}

static gboolean minute_old(gpointer key, gpointer value, gpointer ud)
{
	const char *colon = strrchr(key, ':');
	int64_t cutoff = *(const int64_t *)ud;

	(void)value;
	return colon && g_ascii_strtoll(colon + 1, NULL, 10) < cutoff;
}

/* The context looks back to yesterday's local midnight - 1 h (at most
 * 49 h); minutes older than 50 h go once an hour, or they piled up on a
 * gateway that saw no pain report for days (2 MiB over 12 days). */
static void context_prune(GwGateway *gw, int64_t now_us)
{
	int64_t cutoff = now_us / G_USEC_PER_SEC - CONTEXT_KEEP_S;

	g_hash_table_foreach_remove(gw->minutes, minute_old, &cutoff);
	gw->minutes_pruned_mono_us = g_get_monotonic_time();
}

static void context_update(GwGateway *gw, int64_t now_us)
{
	g_autoptr(GDateTime) now = g_date_time_new_from_unix_utc(now_us / G_USEC_PER_SEC);
	g_autoptr(GDateTime) local = g_date_time_to_timezone(now, gw->cfg.agg.tz ? gw->cfg.agg.tz
										   : gw->tz_local);
	g_autoptr(GDateTime) midnight = g_date_time_new(g_date_time_get_timezone(local),
							g_date_time_get_year(local),
							g_date_time_get_month(local),
							g_date_time_get_day_of_month(local), 0, 0, 0);
	g_autoptr(GDateTime) yday = g_date_time_add_days(midnight, -1);
	int64_t today_s = g_date_time_to_unix(midnight), yday_s = g_date_time_to_unix(yday);
	int64_t now_s = now_us / G_USEC_PER_SEC, cutoff = yday_s - 3600;
	struct gw_rules_context ctx;
	GHashTableIter it;
	gpointer k, v;

	gw_rules_context_init(&ctx);
	ctx.steps_today = ctx.steps_yesterday = ctx.flexed_s_2h = 0;
	g_hash_table_foreach_remove(gw->minutes, minute_old, &cutoff);
	g_hash_table_iter_init(&it, gw->minutes);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		const struct minute_ctx *m = v;
		int64_t t = g_ascii_strtoll(strrchr(k, ':') + 1, NULL, 10);

		if (t >= today_s)
			ctx.steps_today += m->steps;
		else if (t >= yday_s)
			ctx.steps_yesterday += m->steps;
		if (t >= now_s - 7200 && t < now_s)
			ctx.flexed_s_2h += m->flexed30_s;
	}
	ctx.flexed_s_2h = MIN(ctx.flexed_s_2h, 7200);
	if (gw->cfg.agg.have_surgery_date) {
		GDate *d0 = g_date_new_dmy((GDateDay)gw->cfg.agg.surgery_day,
					   (GDateMonth)gw->cfg.agg.surgery_month,
					   (GDateYear)gw->cfg.agg.surgery_year);
		GDate *d1 = g_date_new_dmy((GDateDay)g_date_time_get_day_of_month(local),
					   (GDateMonth)g_date_time_get_month(local),
					   (GDateYear)g_date_time_get_year(local));
		int days = g_date_days_between(d0, d1);

		ctx.post_op_day = days >= 0 && days <= 3650 ? days : GW_RULES_NONE;
		g_date_free(d0);
		g_date_free(d1);
	}
	gw_rules_context_set(gw->rules, gw->patient_id, &ctx);
}

static void restore_alert_cb(const struct gw_store_alert *sa, void *ud)
{
	GwGateway *gw = ud;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) v = g_variant_parse(NULL, sa->json ? sa->json : "", NULL, NULL, &error);
	struct gw_rules_alert *a = g_new0(struct gw_rules_alert, 1);

	if (!v || !gw_rules_alert_deserialize(v, a, &error) ||
	    !gw_rules_restore(gw->rules, a, wall_us(), &error))
		g_warning("alert %s: not restored: %s", sa->alert_id, error->message);
	g_free(a);
}

/* ---- aggregation ------------------------------------------------------------ */

static char *agg_values(const struct gw_agg_window *win)
{
	const struct rl_aggregate *a = &win->day.agg;

	return g_strdup_printf("{\"steps\":%" G_GINT64_FORMAT ",\"walking_minutes\":%" G_GINT64_FORMAT
			       ",\"cadence\":%d,\"posture\":[%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT
			       ",%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT
			       "],\"flexed\":[%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT
			       "],\"still\":%" G_GINT64_FORMAT ",\"records\":%" G_GINT64_FORMAT
			       ",\"quality\":%d}",
			       a->steps, a->walking_minutes, a->cadence_spm, a->posture_s.upright,
			       a->posture_s.flexed, a->posture_s.reclined, a->posture_s.lying,
			       a->posture_s.unknown, a->flexed_over_30_s, a->flexed_over_60_s,
			       a->longest_still_s, a->records, (int)win->quality);
}

static void agg_emit(const struct gw_agg_window *win, void *user_data)
{
	struct wearable *w = user_data;
	GwGateway *gw = w->gw;
	g_autofree char *values = agg_values(win);
	g_autofree char *id = g_uuid_string_random();
	struct gw_store_aggregate sa = { 0 };
	struct rl_aggregate_day day = win->day;
	struct rl_envelope env;
	g_autoptr(GError) error = NULL;
	g_autofree char *old = gw_store_aggregate_json(gw->store, win->aggregate_id);
	gchar *p;

	/* after a restart the aggregator sees again what it had published:
	 * same values, no new revision */
	if (old && strcmp(old, values) == 0)
		goto mark;
	day.agg.aggregate_id = win->aggregate_id;
	day.agg.revision = gw_store_aggregate_next_revision(gw->store, win->aggregate_id);
	day.local_date = win->local_date;
	env_init(gw, &env, id, day.agg.start_us, win->quality);
	p = win->kind == GW_AGG_DAY ? rl_payload_build_aggregate_day(&day, &env, &error)
				    : rl_payload_build_aggregate_minute(&day.agg, &env, &error);
	if (!p) {
		g_warning("aggregate: %s", error->message);
		return;
	}
	sa.aggregate_id = win->aggregate_id;
	sa.wearable = w->id;
	sa.kind = win->kind;
	sa.start_us = day.agg.start_us;
	sa.end_us = day.agg.end_us;
	sa.revision = day.agg.revision;
	sa.json = values;
	if (!gw_store_put_aggregate(gw->store, &sa, &error) ||
	    !enqueue(gw, win->kind == GW_AGG_DAY ? RL_TOPIC_AGGREGATE_DAY : RL_TOPIC_AGGREGATE_MINUTE,
		     NULL, id, p, &error)) {
		g_warning("aggregate: %s", error->message);
		return;
	}
	gw->st.aggregates_queued++;
	if (win->kind == GW_AGG_MINUTE)
		context_minute(gw, w->alias, &day.agg);
mark:
	gw->dirty = true;
}

static const struct gw_agg_ops agg_ops = {
	.emit = agg_emit,
};

/* Places and aggregates one record; FALSE if it cannot be placed yet. */
static bool aggregate_record(struct wearable *w, const struct wb_record *rec)
{
	enum rl_time_quality q;
	int64_t t;

	if (!gw_clock_place(&w->ref, rec, &t, &q)) {
		if (!w->has_unplaced || wb_seq_after(w->unplaced_seq, rec->seq))
			w->unplaced_seq = rec->seq;
		w->has_unplaced = true;
		return false;
	}
	if (w->newest_event_us == RL_TIME_NONE || t > w->newest_event_us)
		w->newest_event_us = t;
	gw_agg_add(w->agg, rec, t, q, wall_us());
	return true;
}

static void replay_cb(const struct gw_store_record *r, void *user_data)
{
	struct wearable *w = user_data;

	gw_clock_ref_update(&w->ref, &r->rec);
	aggregate_record(w, &r->rec);
}

/* Feeds what the store holds unaggregated (after a start, or once records
 * can be placed that could not). The aggregator drops seqs it has. */
static void replay_wearable(struct wearable *w)
{
	g_autoptr(GError) error = NULL;

	w->has_unplaced = false;	/* set again by what still cannot be placed */
	if (!gw_store_foreach_unaggregated(w->gw->store, w->id, replay_cb, w, &error))
		g_warning("replay: %s", error->message);
}

/* Moves the store's watermark up to what a rebuilt aggregator would not
 * need again (gw_agg_needed_seq) and the clock has placed: marking by the
 * windows emitted let a restart re-create a window that could still be
 * revised from part of its records, which then went out again with fewer.
 * Once per commit, and only when it moved: one row. */
static void mark_aggregated(GwGateway *gw)
{
	for (size_t i = 0; i < gw->n_w; i++) {
		struct wearable *w = &gw->w[i];
		g_autoptr(GError) error = NULL;
		uint32_t need, mark;

		if (!gw_agg_needed_seq(w->agg, &need))
			continue;
		if (w->has_unplaced && wb_seq_after(need, w->unplaced_seq))
			need = w->unplaced_seq;
		mark = need - 1;
		if (w->has_marked && mark == w->marked_seq)
			continue;
		if (!gw_store_mark_aggregated(gw->store, w->id, mark, mark, &error)) {
			g_warning("aggregate: %s", error->message);
			continue;
		}
		w->has_marked = true;
		w->marked_seq = mark;
	}
}

static void replay(GwGateway *gw)
{
	for (size_t i = 0; i < gw->n_w; i++)
		replay_wearable(&gw->w[i]);
}

/* ---- the BLE sink ------------------------------------------------------------ */

static void escalate_pain(GwGateway *gw, struct wearable *w, const struct wb_record *r,
			  int64_t now)
{
	enum rl_time_quality q;
	int64_t t;

	if (!gw_clock_place(&w->ref, r, &t, &q))
		t = now;	/* never held back: judged at its arrival */
	context_update(gw, now);
	gw->mono_pain_us = g_get_monotonic_time();
	gw_rules_pain(gw->rules, gw->patient_id, w->alias, t, r->u.pain.score, r->u.pain.flags, now);
	gw->mono_pain_us = 0;
}


static gboolean sink_append(const char *address, const struct wb_record *recs, size_t n,
			    void *ud, GError **error)
{
	GwGateway *gw = ud;
	struct wearable *w = wearable_by_address(gw, address);
	struct gw_store_stamp stamp;
	int64_t now = rules_now(gw);
	bool replay_due = false;
	g_autofree bool *held = NULL;
	int added;

	if (!w) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no such wearable");
		return FALSE;
	}
	stamp.received_us = now;
	stamp.clock_synced = gw->clock_synced;
	stamp.mono_us = g_get_monotonic_time();
	stamp.boot_id = gw->boot_id;
	/* A pain report the store already holds (sent again after a restart,
	 * when the cursor stayed below a gap) was queued when it first came:
	 * queued again it would reach the clinic under a second msg_id. */
	for (size_t i = 0; i < n; i++)
		if (recs[i].type == WB_RECORD_PAIN &&
		    gw_store_has_record(gw->store, w->id, recs[i].seq)) {
			if (!held)
				held = g_new0(bool, n);
			held[i] = true;
		}
	added = gw_store_add_records(gw->store, w->id, recs, n, &stamp, error);
	if (added < 0) {
		/* not stored (the wearable keeps it and sends it again), but
		 * an escalation is never held back: a repeat is a no-op */
		for (size_t i = 0; i < n; i++)
			if (recs[i].type == WB_RECORD_PAIN)
				escalate_pain(gw, w, &recs[i], now);
		return FALSE;
	}
	gw->st.records_stored += (uint64_t)added;
	w->last_seen_us = gw->clock_synced ? now : RL_TIME_NONE;
	w->last_rx_mono_us = g_get_monotonic_time();
	for (size_t i = 0; i < n; i++) {
		const struct wb_record *r = &recs[i];

		if (w->last_seq == RL_NONE || wb_seq_after(r->seq, (uint32_t)w->last_seq))
			w->last_seq = r->seq;
		/* a new uptime mapping can place what was held back */
		replay_due |= gw_clock_ref_update(&w->ref, r);
		if (r->type == WB_RECORD_PAIN && !(held && held[i])) {
			queue_pain(gw, w, r);
			escalate_pain(gw, w, r, now);
		}
		if (r->type == WB_RECORD_STATUS) {
			w->battery = r->u.status.battery_pct;
			gw_rules_wearable_battery(gw->rules, w->alias, w->battery, now);
		}
		aggregate_record(w, r);
	}
	gw_rules_wearable_data(gw->rules, w->alias, w->newest_event_us == RL_TIME_NONE
				       ? GW_RULES_NEVER : w->newest_event_us, now);
	if (replay_due && w->has_unplaced)
		replay_wearable(w);
	return TRUE;
}

/* Fresh aggregators, fed what the store holds unaggregated: a window
 * published before comes out again only if its values changed (agg_emit). */
static void rebuild_aggregators(GwGateway *gw)
{
	gw->agg_stale = false;
	for (size_t i = 0; i < gw->n_w; i++) {
		struct wearable *w = &gw->w[i];

		gw_agg_free(w->agg);
		w->agg = gw_agg_new(w->alias, &gw->cfg.agg, &agg_ops, w);
	}
	g_message("aggregation: rebuilt from the store after a failed commit");
	replay(gw);
}

static gboolean sink_commit(void *ud, GError **error)
{
	GwGateway *gw = ud;
	gboolean ok;

	mark_aggregated(gw);
	ok = gw_store_commit(gw->store, error);

	if (ok) {
		gw->st.commits++;
		gw->dirty = false;
		gw->committed_id = INT64_MAX;
		replies_after_commit(gw, true);
		if (gw->agg_stale)
			rebuild_aggregators(gw);
		drain(gw);
	} else {
		replies_after_commit(gw, false);
		/* The windows emitted into the rolled-back transaction are gone
		 * with it, but their aggregators would drop those records as
		 * seen when the wearables send them again: they start again
		 * from the store once a commit succeeds. */
		gw->st.commit_failures++;
		gw->agg_stale = true;
		for (size_t i = 0; i < gw->n_w; i++)
			gw->w[i].has_marked = false;
	}
	return ok;
}

static void sink_set_cursor(const char *address, uint32_t seq, void *ud)
{
	GwGateway *gw = ud;
	struct wearable *w = wearable_by_address(gw, address);
	g_autoptr(GError) error = NULL;

	if (w && !gw_store_advance_cursor(gw->store, w->id, seq, &error))
		g_warning("cursor: %s", error->message);
	gw->dirty = true;
}

static bool sink_get_cursor(const char *address, uint32_t *ret, void *ud)
{
	GwGateway *gw = ud;
	struct wearable *w = wearable_by_address(gw, address);

	return w && gw_store_get_cursor(gw->store, w->id, ret);
}

static void commit_now(GwGateway *gw)
{
	g_autoptr(GError) error = NULL;

	if (!gw->dirty && gw_store_uncommitted(gw->store) == 0)
		return;
	if (sink_commit(gw, &error)) {
		if (gw->ble)
			gw_ble_sink_committed(gw->ble);
		return;
	}
	g_warning("store: %s", error->message);
	if (gw->ble)
		gw_ble_sink_lost(gw->ble);
}

/* ---- forwarding -------------------------------------------------------------- */

static bool take_token(GwGateway *gw)
{
	int64_t now = g_get_monotonic_time();
	double rate = gw->cfg.backlog_rate;

	if (rate <= 0)
		return true;
	gw->tokens = MIN(rate, gw->tokens + (double)(now - gw->tokens_at_us) * rate / G_USEC_PER_SEC);
	gw->tokens_at_us = now;
	if (gw->tokens < 1.0)
		return false;
	gw->tokens -= 1.0;
	return true;
}

static gboolean drain_later_cb(gpointer ud)
{
	GwGateway *gw = ud;

	g_clear_pointer(&gw->drain_later, g_source_unref);
	drain(gw);
	return G_SOURCE_REMOVE;
}

static void drain_after(GwGateway *gw, unsigned int ms)
{
	if (gw->drain_later)
		return;
	gw->drain_later = g_timeout_source_new(ms);
	g_source_set_callback(gw->drain_later, drain_later_cb, gw, NULL);
	g_source_attach(gw->drain_later, NULL);
}

static void drain(GwGateway *gw)
{
	g_autoptr(GPtrArray) msgs = NULL;
	g_autoptr(GError) error = NULL;
	unsigned int window, room;

	if (!gw->up || gw->draining || gw->stopped || !gw_uplink_is_connected(gw->up) ||
	    !gw->birth_sent)
		return;
	window = gw_uplink_window(gw->up);
	if (gw_uplink_in_flight(gw->up) >= window)
		return;
	room = window - gw_uplink_in_flight(gw->up);
	gw->draining = true;
	msgs = g_ptr_array_new_with_free_func((GDestroyNotify)gw_outbox_msg_free);
	if (!gw_store_outbox_peek(gw->store, room, gw->in_flight, msgs, &error)) {
		g_warning("outbox: %s", error->message);
		gw->draining = false;
		return;
	}
	for (guint i = 0; i < msgs->len; i++) {
		struct gw_outbox_msg *m = msgs->pdata[i];
		bool critical = m->priority >= GW_PRIO_PAIN;
		g_autoptr(GError) perr = NULL;
		unsigned int telemetry_max = window > gw->cfg.alert_slots ? window - gw->cfg.alert_slots : 1;

		if (m->id > gw->committed_id)
			continue;	/* not durable yet: the next commit drains it */

		if (!critical && m->priority == GW_PRIO_TELEMETRY) {
			/* the backlog: keeps slots free for alerts, and its rate */
			if (gw->in_flight_telemetry >= telemetry_max)
				break;
			if (!take_token(gw)) {
				drain_after(gw, 20);
				break;
			}
		}
		if (!gw_uplink_publish(gw->up, (uint64_t)m->id, m->topic, m->payload, m->payload_len,
				       m->qos, m->retain, m->expiry_s, &perr)) {
			/* the message names the topic, which holds the patient id */
			g_debug("publish of a %s message: not now (%s)", m->kind ? m->kind : "?",
				gw->cfg.log_personal ? perr->message : "see the broker state");
			break;
		}
		g_hash_table_add(gw->in_flight, g_memdup2(&m->id, sizeof(m->id)));
		g_hash_table_insert(gw->in_flight_prio, g_memdup2(&m->id, sizeof(m->id)),
				    GINT_TO_POINTER(m->priority + 1));
		if (m->priority == GW_PRIO_TELEMETRY)
			gw->in_flight_telemetry++;
		gw_store_outbox_attempted(gw->store, m->id, NULL);
		gw->dirty = true;
	}
	gw->draining = false;
}

static void forget_in_flight(GwGateway *gw, int64_t id)
{
	int prio = GPOINTER_TO_INT(g_hash_table_lookup(gw->in_flight_prio, &id)) - 1;

	if (prio == GW_PRIO_TELEMETRY && gw->in_flight_telemetry > 0)
		gw->in_flight_telemetry--;
	g_hash_table_remove(gw->in_flight_prio, &id);
	g_hash_table_remove(gw->in_flight, &id);
}

static void up_connected(int version, void *ud)
{
	GwGateway *gw = ud;
	g_autofree char *id = g_uuid_string_random();
	g_autofree char *p = build_gateway_status(gw, id);
	struct rl_topic_ids ids = { gw->gateway_id, NULL, NULL };
	char topic[RL_TOPIC_BUF_SIZE];
	g_autoptr(GError) error = NULL;

	g_message("broker: connected (MQTT %s)", version == 5 ? "5" : "3.1.1");
	gw_rules_broker(gw->rules, true, rules_now(gw));
	/* the birth: the retained online status, before anything else */
	if (!p || rl_topic_build(RL_TOPIC_GATEWAY_STATUS, &ids, topic, sizeof(topic)) < 0 ||
	    !gw_uplink_publish(gw->up, BIRTH_TAG, topic, p, strlen(p), 1, true, 0, &error))
		g_warning("birth: %s", error ? error->message : "not built");
	gw->birth_sent = true;
	drain(gw);
}

static void up_disconnected(const char *cause, void *ud)
{
	GwGateway *gw = ud;

	g_message("broker: not connected: %s", cause ? cause : "?");
	if (!gw->stopped)
		gw_rules_broker(gw->rules, false, rules_now(gw));
	gw->birth_sent = false;
}

static void up_published(uint64_t tag, void *ud)
{
	GwGateway *gw = ud;
	int64_t id = (int64_t)tag;
	g_autoptr(GError) error = NULL;

	if (tag == BIRTH_TAG)
		return;
	alert_delivered(gw, id);
	forget_in_flight(gw, id);
	gw->st.messages_published++;
	if (!gw_store_outbox_delete(gw->store, id, &error))
		g_warning("outbox: %s", error->message);
	gw->dirty = true;
	drain(gw);
}

static void up_publish_failed(uint64_t tag, const char *cause, void *ud)
{
	GwGateway *gw = ud;

	if (tag == BIRTH_TAG)
		return;
	g_debug("publish %" G_GUINT64_FORMAT " failed: %s", tag, cause ? cause : "?");
	forget_in_flight(gw, (int64_t)tag);
	gw->st.publish_failures++;
}

/* ---- clinic commands ---------------------------------------------------------- */

static void reject(GwGateway *gw, bool has_kind, enum rl_topic_kind kind, const char *data,
		   size_t len, enum rl_payload_error_code code, const char *detail)
{
	g_autofree char *id = g_uuid_string_random();
	g_autofree char *rejected = data ? rl_payload_peek_msg_id(data, len) : NULL;
	struct rl_error_report er = { has_kind, kind, rejected, code, detail };
	struct rl_envelope env;
	GError *error = NULL;
	gchar *p;

	gw->st.clinic_rejected++;
	g_message("clinic message refused (%s): %s", rl_payload_error_code_name(code), detail);
	env_init(gw, &env, id, RL_TIME_NONE, own_quality(gw));
	p = rl_payload_build_error(&er, &env, &error);
	queue_reply(gw, RL_TOPIC_ERROR, id, p, error);
	g_clear_error(&error);
	commit_now(gw);
	drain(gw);
}

static enum rl_payload_error_code err_code(const GError *e)
{
	if (e && e->domain == RL_PAYLOAD_ERROR && e->code >= 0 &&
	    e->code < RL_PAYLOAD_ERROR_INVALID)
		return (enum rl_payload_error_code)e->code;
	return RL_PAYLOAD_ERROR_BAD_VALUE;
}

static void handle_ack(GwGateway *gw, const char *data, size_t len)
{
	g_auto(RlAlertAck) ack = { 0 };
	g_autoptr(GError) error = NULL;
	g_autofree char *detail = NULL;

	if (!rl_payload_parse_alert_ack(data, len, &ack, &error)) {
		reject(gw, true, RL_TOPIC_ALERT_ACK, data, len, err_code(error), error->message);
		return;
	}
	if (strcmp(ack.gateway_id, gw->gateway_id) != 0) {
		reject(gw, true, RL_TOPIC_ALERT_ACK, data, len, RL_PAYLOAD_ERROR_BAD_VALUE,
		       "$.gateway_id: not this gateway");
		return;
	}
	switch (gw_rules_ack(gw->rules, ack.alert_id, (enum gw_rules_ack_action)ack.action, ack.by,
			     ack.at_us, ack.note, rules_now(gw))) {
	case GW_RULES_UNKNOWN_ALERT:
		reject(gw, true, RL_TOPIC_ALERT_ACK, data, len, RL_PAYLOAD_ERROR_UNKNOWN_ALERT,
		       "$.alert_id: not an alert of this gateway");
		return;
	case GW_RULES_ALREADY_RESOLVED:
		reject(gw, true, RL_TOPIC_ALERT_ACK, data, len, RL_PAYLOAD_ERROR_BAD_VALUE,
		       "$.alert_id: the alert is resolved already");
		return;
	case GW_RULES_INVALID:
		reject(gw, true, RL_TOPIC_ALERT_ACK, data, len, RL_PAYLOAD_ERROR_BAD_VALUE,
		       "$: not accepted by the escalation engine");
		return;
	case GW_RULES_OK:
	case GW_RULES_NOOP:
		break;
	}
	detail = g_strdup_printf("%s by %s", rl_ack_action_name(ack.action), ack.by);
	if (!gw_store_audit_append(gw->store, wall_us(), ack.alert_id, "clinic_ack", detail, &error))
		g_warning("audit: %s", error->message);
	gw->st.clinic_accepted++;
	gw->dirty = true;
	commit_now(gw);
}

/* The settings the clinic may change at run time (the rest of
 * config/rehablink.conf needs the file and a reload). */
static bool apply_setting(GwGateway *gw, const struct rl_config_entry *e, char **reason)
{
	if (strcmp(e->key, "uplink.backlog_rate") == 0) {
		if (e->value.type != RL_CONFIG_INT || e->value.u.i < 0 || e->value.u.i > 100000) {
			*reason = g_strdup("an integer 0..100000 (messages a second, 0: no limit)");
			return false;
		}
		gw->cfg.backlog_rate = (unsigned int)e->value.u.i;
		return true;
	}
	if (strcmp(e->key, "uplink.status_interval_s") == 0) {
		if (e->value.type != RL_CONFIG_INT || e->value.u.i < 10 || e->value.u.i > 86400) {
			*reason = g_strdup("an integer 10..86400 (seconds)");
			return false;
		}
		gw->cfg.status_interval_s = (unsigned int)e->value.u.i;
		return true;
	}
	if (g_str_has_prefix(e->key, "rules.")) {
		struct gw_rules_config rc = *gw_rules_get_config(gw->rules);
		g_autofree char *text = NULL;
		g_autoptr(GError) error = NULL;

		switch (e->value.type) {
		case RL_CONFIG_BOOL:
			text = g_strdup(e->value.u.b ? "true" : "false");
			break;
		case RL_CONFIG_INT:
			text = g_strdup_printf("%" G_GINT64_FORMAT, e->value.u.i);
			break;
		case RL_CONFIG_DOUBLE:
			text = g_strdup_printf("%.17g", e->value.u.d);
			break;
		case RL_CONFIG_STRING:
			text = g_strdup(e->value.u.s);
			break;
		}
		if (!gw_rules_config_set(&rc, e->key, text, &error) ||
		    !gw_rules_config_validate(&rc, &error) ||
		    !gw_rules_set_config(gw->rules, &rc, &error)) {
			*reason = g_utf8_make_valid(error->message, MIN(strlen(error->message),
									RL_CONFIG_REASON_MAX - 4));
			return false;
		}
		return true;
	}
	*reason = g_strdup("unknown setting");
	return false;
}

static void handle_config(GwGateway *gw, const char *data, size_t len)
{
	g_auto(RlConfigMsg) msg = { 0 };
	g_autoptr(GError) error = NULL;
	g_autofree struct rl_config_entry *applied = NULL;
	g_autofree struct rl_config_rejection *rejected = NULL;
	g_autofree char *id = g_uuid_string_random();
	struct rl_config_state cs = { 0 };
	struct rl_envelope env;
	size_t na = 0, nr = 0;
	GError *berr = NULL;
	gchar *p;

	if (!rl_payload_parse_config(data, len, &msg, &error)) {
		reject(gw, true, RL_TOPIC_CONFIG, data, len, err_code(error), error->message);
		return;
	}
	if (strcmp(msg.gateway_id, gw->gateway_id) != 0) {
		reject(gw, true, RL_TOPIC_CONFIG, data, len, RL_PAYLOAD_ERROR_BAD_VALUE,
		       "$.gateway_id: not this gateway");
		return;
	}
	applied = g_new0(struct rl_config_entry, msg.n_entries + 1);
	rejected = g_new0(struct rl_config_rejection, msg.n_entries + 1);
	g_autoptr(GPtrArray) reasons = g_ptr_array_new_with_free_func(g_free);

	for (size_t i = 0; i < msg.n_entries; i++) {
		char *reason = NULL;

		if (apply_setting(gw, &msg.entries[i], &reason)) {
			applied[na++] = msg.entries[i];
			g_free(reason);
		} else {
			g_ptr_array_add(reasons, reason);
			rejected[nr++] = (struct rl_config_rejection){ msg.entries[i].key, reason };
		}
	}
	gw->st.clinic_accepted++;
	cs.config_msg_id = msg.msg_id;
	cs.settings = applied;
	cs.n_settings = na;
	cs.rejected = rejected;
	cs.n_rejected = nr;
	env_init(gw, &env, id, RL_TIME_NONE, own_quality(gw));
	p = rl_payload_build_config_state(&cs, &env, &berr);
	queue_reply(gw, RL_TOPIC_CONFIG_STATE, id, p, berr);
	g_clear_error(&berr);
	commit_now(gw);
	drain(gw);
}

static void up_message(const char *topic, const void *payload, size_t len, void *ud)
{
	GwGateway *gw = ud;
	struct rl_topic t;
	int r = rl_topic_parse(topic, strlen(topic), &t, NULL);

	if (r == -EOPNOTSUPP) {
		reject(gw, false, RL_TOPIC_ERROR, payload, len, RL_PAYLOAD_ERROR_BAD_TOPIC,
		       "$: a command this gateway does not know");
		gw->dirty = true;
		commit_now(gw);
		return;
	}
	if (r < 0 || strcmp(t.gateway, gw->gateway_id) != 0)
		return;		/* not ours: the filter makes this impossible */
	switch (t.kind) {
	case RL_TOPIC_ALERT_ACK:
		handle_ack(gw, payload, len);
		break;
	case RL_TOPIC_CONFIG:
		handle_config(gw, payload, len);
		break;
	case RL_TOPIC_ERROR:
		return;		/* our own cmd/error echoed back (topic.h) */
	case RL_TOPIC_GATEWAY_STATUS:
	case RL_TOPIC_WEARABLE_STATUS:
	case RL_TOPIC_AGGREGATE_MINUTE:
	case RL_TOPIC_AGGREGATE_DAY:
	case RL_TOPIC_PAIN:
	case RL_TOPIC_ALERT:
	case RL_TOPIC_FHIR_OBSERVATION:
	case RL_TOPIC_CONFIG_STATE:
		break;
	}
	/* The broker forgets a QoS 1 message once paho took it: what it
	 * changed (an acknowledgement, a setting, an error reply) is made
	 * durable now, not at the next telemetry commit. */
	gw->dirty = true;
	commit_now(gw);
}

static const struct gw_uplink_ops uplink_ops = {
	.connected = up_connected,
	.disconnected = up_disconnected,
	.published = up_published,
	.publish_failed = up_publish_failed,
	.message = up_message,
};

/* ---- periodic ---------------------------------------------------------------- */

static gboolean commit_cb(gpointer ud)
{
	commit_now(ud);
	return G_SOURCE_CONTINUE;
}

static gboolean tick_cb(gpointer ud)
{
	GwGateway *gw = ud;
	bool synced = gw_clock_synced(gw->cfg.clock_mode);
	bool status_changed = false;
	int64_t now = rules_now(gw);

	gw_rules_clock(gw->rules, synced, now);
	gw_rules_tick(gw->rules, now);
	if (g_get_monotonic_time() - gw->minutes_pruned_mono_us >= INT64_C(3600) * G_USEC_PER_SEC)
		context_prune(gw, now);
	if (synced != gw->clock_synced) {
		g_message("clock: %s", synced ? "synchronised" : "not synchronised");
		gw->clock_synced = synced;
		if (gw->ble)
			gw_ble_set_clock_synced(gw->ble, synced);
		if (synced)
			for (size_t i = 0; i < gw->n_w; i++)
				if (gw->w[i].has_unplaced)
					replay_wearable(&gw->w[i]);
	}
	for (size_t i = 0; i < gw->n_w; i++) {
		struct wearable *w = &gw->w[i];
		GwLink *link = gw->ble ? gw_central_get_link(gw_ble_get_central(gw->ble), w->address)
				       : NULL;
		enum gw_link_state s = link ? gw_link_get_state(link) : GW_LINK_STATE_DISABLED;

		gw_agg_tick(w->agg, now);
		if (link_state_rl(s) != link_state_rl(w->last_state)) {
			w->last_state = s;
			queue_wearable_status(gw, w, s);
			status_changed = true;
		}
	}
	if (status_changed)
		commit_now(gw);
	drain(gw);
	return G_SOURCE_CONTINUE;
}

static gboolean status_cb(gpointer ud)
{
	queue_gateway_status(ud);
	return G_SOURCE_CONTINUE;
}

static gboolean budget_cb(gpointer ud)
{
	GwGateway *gw = ud;
	struct gw_store_shed shed = { 0 };
	g_autoptr(GError) error = NULL;

	if (gw->cfg.store_budget_bytes)
		gw_rules_store_usage(gw->rules,
				     (int)MIN(100, gw_store_size(gw->store) * 100 /
						   gw->cfg.store_budget_bytes), rules_now(gw));
	/* a checkpoint rewrites pages: only when the budget needs it */
	if (!gw->cfg.store_budget_bytes ||
	    gw_store_size(gw->store) < gw->cfg.store_budget_bytes / 10 * 9)
		return G_SOURCE_CONTINUE;
	commit_now(gw);
	if (!gw_store_enforce_budget(gw->store, &shed, &error))
		g_warning("store budget: %s", error->message);
	if (shed.records || shed.telemetry)
		g_message("store budget: shed %" G_GUINT64_FORMAT " raw records, %" G_GUINT64_FORMAT
			  " telemetry messages", shed.records, shed.telemetry);
	gw->st.shed_records += shed.records;
	gw->st.shed_telemetry += shed.telemetry;
	return G_SOURCE_CONTINUE;
}

/* ---- life cycle ---------------------------------------------------------------- */

void gw_gateway_config_init(struct gw_gateway_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->version = "0";
	cfg->commit_interval_ms = DEFAULT_COMMIT_MS;
	cfg->backlog_rate = DEFAULT_BACKLOG_RATE;
	cfg->alert_slots = DEFAULT_ALERT_SLOTS;
	cfg->status_interval_s = DEFAULT_STATUS_S;
	gw_uplink_config_init(&cfg->uplink);
	gw_agg_config_init(&cfg->agg);
}

static void strip_colons(const char *address, char *out, size_t size)
{
	size_t j = 0;

	for (size_t i = 0; address[i] && j + 1 < size; i++)
		if (address[i] != ':')
			out[j++] = g_ascii_toupper(address[i]);
	out[j] = '\0';
}

/* The addresses paired over the control API: "A;B;..." in the store's
 * device state of GW_PAIRED_OWNER. */
static GStrv paired_list(GwGateway *gw)
{
	g_autofree char *v = gw_store_device_get(gw->store, GW_PAIRED_OWNER, GW_PAIRED_KEY);

	return v && *v ? g_strsplit(v, ";", -1) : NULL;
}

struct pain_load {
	GwGateway *gw;
	unsigned int n;
};

static void pain_load_cb(const char *wearable, const struct gw_store_record *r, void *ud)
{
	struct pain_load *pl = ud;
	GwGateway *gw = pl->gw;
	enum rl_time_quality q;
	int64_t t;

	for (size_t i = 0; i < gw->n_w; i++) {
		if (strcmp(gw->w[i].id, wearable) != 0)
			continue;
		if (!gw_clock_place(&gw->w[i].ref, &r->rec, &t, &q)) {
			if (!r->stamp.clock_synced)
				return;	/* nowhere on the wall clock */
			t = r->stamp.received_us;
		}
		if (gw_rules_pain_load(gw->rules, gw->patient_id, t, r->rec.u.pain.score,
				       r->rec.u.pain.flags) == GW_RULES_OK)
			pl->n++;
		return;
	}
}

/* The rules' pain history (the rise rule's 24 h median, the persistent
 * rule's earlier report) from the store: the reports of the last 72 h. */
static void load_pain_history(GwGateway *gw)
{
	struct pain_load pl = { gw, 0 };
	g_autoptr(GError) e = NULL;

	if (!gw_store_foreach_record_since(gw->store, wall_us() - (int64_t)72 * 3600 * G_USEC_PER_SEC,
					   WB_RECORD_PAIN, pain_load_cb, &pl, &e))
		g_warning("rules: the pain history was not reloaded: %s", e->message);
	else if (pl.n)
		g_info("rules: %u pain report(s) of the last 72 h reloaded", pl.n);
}

GwGateway *gw_gateway_new(const struct gw_gateway_config *cfg, GError **error)
{
	g_autoptr(GwGateway) gw = NULL;
	struct gw_store_config scfg;
	struct gw_ble_config bcfg;
	struct gw_ble_sink sink = { sink_append, sink_commit, sink_set_cursor, sink_get_cursor, NULL };
	struct gw_uplink_config ucfg;
	g_autofree char *db = NULL;
	g_autofree char *will_id = g_uuid_string_random();
	struct rl_envelope env;
	struct rl_topic_ids ids;
	char topic[RL_TOPIC_BUF_SIZE];
	g_autoptr(GPtrArray) addrs = NULL;
	g_auto(GStrv) paired = NULL;

	if (!cfg->gateway_id || rl_topic_id_validate(cfg->gateway_id) < 0 || !cfg->patient_id ||
	    rl_topic_id_validate(cfg->patient_id) < 0 || !cfg->state_dir ||
	    cfg->n_wearables == 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "gateway: %s", !cfg->gateway_id || rl_topic_id_validate(cfg->gateway_id) < 0
						   ? "gateway id missing or not [A-Za-z0-9_-]{1,64}"
					   : !cfg->patient_id || rl_topic_id_validate(cfg->patient_id) < 0
						   ? "patient id missing or not [A-Za-z0-9_-]{1,64}"
					   : !cfg->state_dir ? "no state directory" : "no wearable");
		return NULL;
	}
	gw = g_new0(GwGateway, 1);
	gw->replies = g_ptr_array_new_with_free_func(reply_free);
	gw->cfg = *cfg;
	gw->gateway_id = g_strdup(cfg->gateway_id);
	gw->patient_id = g_strdup(cfg->patient_id);
	gw->version = g_strdup(cfg->version ? cfg->version : "0");
	gw->cfg.gateway_id = gw->gateway_id;
	gw->cfg.patient_id = gw->patient_id;
	gw->state_dir = g_strdup(cfg->state_dir);
	gw->adapter = g_strdup(cfg->adapter);
	gw->uri = g_strdup(cfg->uplink.uri);
	gw->cfg.state_dir = NULL;
	gw->cfg.wearables = NULL;
	gw->cfg.aliases = NULL;
	gw->cfg.adapter = NULL;
	gw->cfg.conn = NULL;
	gw->cfg.central = NULL;
	if (!gw->cfg.commit_interval_ms)
		gw->cfg.commit_interval_ms = DEFAULT_COMMIT_MS;
	if (!gw->cfg.status_interval_s)
		gw->cfg.status_interval_s = DEFAULT_STATUS_S;
	gw->started_mono_us = g_get_monotonic_time();
	gw->clock_synced = gw_clock_synced(cfg->clock_mode);
	gw_clock_boot_id(gw->boot_id);
	gw->in_flight = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	gw->in_flight_prio = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	gw->tokens_at_us = g_get_monotonic_time();
	gw->committed_id = INT64_MAX;

	if (g_mkdir_with_parents(cfg->state_dir, 0700) < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
			    "state directory %s: %s", cfg->state_dir, g_strerror(errno));
		return NULL;
	}
	db = g_build_filename(cfg->state_dir, "rehablink.db", NULL);
	gw_store_config_init(&scfg);
	scfg.path = db;
	scfg.budget_bytes = cfg->store_budget_bytes;
	gw->store = gw_store_open(&scfg, error);
	if (!gw->store)
		return NULL;
	gw->st.store_corrupt_aside = gw_store_corrupt_aside(gw->store);
	if (gw->st.store_corrupt_aside) {
		g_autoptr(GError) e = NULL;

		/* the technical alarm: audited, and said in every status */
		g_warning("store: the database was corrupt and was moved to %s; started fresh",
			  gw->st.store_corrupt_aside);
		if (!gw_store_audit_append(gw->store, wall_us(), "technical", "store_corrupt",
					   "moved aside, started fresh", &e))
			g_warning("audit: %s", e->message);
	}

	/* the wearables: the config's, then those paired over the control
	 * API (kept in the store) */
	paired = paired_list(gw);
	addrs = g_ptr_array_new();
	for (size_t i = 0; i < cfg->n_wearables; i++)
		g_ptr_array_add(addrs, (gpointer)cfg->wearables[i]);
	for (size_t i = 0; paired && paired[i]; i++) {
		char a[GW_BLUEZ_ADDR_SIZE];
		bool known = false;

		if (!gw_bluez_address_normalize(paired[i], a))
			continue;
		for (size_t j = 0; j < cfg->n_wearables; j++)
			known |= g_ascii_strcasecmp(cfg->wearables[j], a) == 0;
		if (!known)
			g_ptr_array_add(addrs, paired[i]);
	}
	gw->w = g_new0(struct wearable, addrs->len);
	gw->n_w = addrs->len;
	gw->n_w_config = cfg->n_wearables;
	for (size_t i = 0; i < gw->n_w; i++) {
		struct wearable *w = &gw->w[i];

		w->gw = gw;
		if (!gw_bluez_address_normalize(addrs->pdata[i], w->address)) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
				    "gateway: wearable %zu is not a Bluetooth address", i + 1);
			return NULL;
		}
		strip_colons(w->address, w->id, sizeof(w->id));
		w->alias = i < cfg->n_wearables && cfg->aliases && cfg->aliases[i]
				   ? g_strdup(cfg->aliases[i]) : g_strdup_printf("w%zu", i + 1);
		if (rl_topic_id_validate(w->alias) < 0) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
				    "gateway: alias of wearable %zu is not [A-Za-z0-9_-]{1,64}", i + 1);
			return NULL;
		}
		w->agg = gw_agg_new(w->alias, &cfg->agg, &agg_ops, w);
		w->battery = RL_NONE;
		w->last_seen_us = RL_TIME_NONE;
		w->newest_event_us = RL_TIME_NONE;
		w->last_seq = RL_NONE;
		w->last_state = GW_LINK_STATE_DISABLED;
	}
	/* the escalation engine: stored alerts first, then what is known */
	gw->tz_local = g_time_zone_new_local();
	gw->minutes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	gw->alert_rows = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
	gw->pain_arrival = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	gw->latencies = g_array_new(FALSE, FALSE, sizeof(int64_t));
	gw->fallback_command = g_strdup(cfg->fallback_command);
	gw->rules = gw_rules_new(&cfg->rules, &rules_ops, gw, error);
	if (!gw->rules)
		return NULL;
	if (!gw_store_alert_foreach(gw->store, restore_alert_cb, gw, error))
		return NULL;
	for (size_t i = 0; i < gw->n_w; i++)
		gw_rules_wearable_add(gw->rules, gw->w[i].alias, gw->patient_id, wall_us());
	gw->clock_offset_us = g_get_real_time() - g_get_monotonic_time();
	gw_rules_clock(gw->rules, gw->clock_synced, wall_us());
	gw_rules_broker(gw->rules, false, rules_now(gw));
	if (gw->st.store_corrupt_aside)
		gw_rules_store_corrupt(gw->rules, wall_us());
	load_pain_history(gw);
	gw_rules_tick(gw->rules, wall_us());
	replay(gw);

	/* the uplink: will = the offline status, retained */
	ids = (struct rl_topic_ids){ gw->gateway_id, NULL, NULL };
	if (rl_topic_build(RL_TOPIC_GATEWAY_STATUS, &ids, topic, sizeof(topic)) < 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "gateway: no status topic");
		return NULL;
	}
	gw->will_topic = g_strdup(topic);
	env_init(gw, &env, will_id, RL_TIME_NONE, own_quality(gw));
	gw->will_payload = rl_payload_build_gateway_will(gw->version, gw->clock_synced,
							 (int)gw->n_w, &env, error);
	if (!gw->will_payload)
		return NULL;
	rl_topic_filter_commands(gw->gateway_id, topic, sizeof(topic));
	gw->cmd_filter = g_strdup(topic);
	gw->subs[0] = gw->cmd_filter;
	gw->subs[1] = NULL;
	ucfg = cfg->uplink;
	if (!ucfg.client_id)
		ucfg.client_id = gw->gateway_id;
	ucfg.will_topic = gw->will_topic;
	ucfg.will_payload = gw->will_payload;
	ucfg.subscriptions = gw->subs;
	/* an acknowledgement sent while the gateway was away still arrives */
	if (!ucfg.session_expiry_s)
		ucfg.session_expiry_s = 86400;
	if (ucfg.uri) {
		gw->up = gw_uplink_new(&ucfg, &uplink_ops, gw, NULL, error);
		if (!gw->up)
			return NULL;
	}

	sink.user_data = gw;
	gw_ble_config_init(&bcfg);
	bcfg.adapter = cfg->adapter;
	bcfg.allowlist = (const char *const *)addrs->pdata;
	bcfg.n_allowlist = addrs->len;
	bcfg.sink = &sink;
	bcfg.log_personal = cfg->log_personal;
	bcfg.clock_synced = gw->clock_synced;
	bcfg.conn = cfg->conn;
	bcfg.central = cfg->central;
	bcfg.sync_delay_ms = gw->cfg.commit_interval_ms;
	gw->ble = gw_ble_new(&bcfg, error);
	if (!gw->ble)
		return NULL;

	{
		/* protocol 2.10: the configuration state at start-up (nothing
		 * set over MQTT yet: settings from MQTT do not outlive a restart) */
		g_autofree char *id = g_uuid_string_random();
		struct rl_config_state cs = { 0 };
		struct rl_envelope cenv;
		GError *berr = NULL;
		gchar *p;

		env_init(gw, &cenv, id, RL_TIME_NONE, own_quality(gw));
		p = rl_payload_build_config_state(&cs, &cenv, &berr);
		enqueue_or_warn(gw, RL_TOPIC_CONFIG_STATE, NULL, id, p, berr);
		g_clear_error(&berr);
		commit_now(gw);
	}
	gw->commit_timer = g_timeout_add(gw->cfg.commit_interval_ms, commit_cb, gw);
	gw->tick_timer = g_timeout_add(1000, tick_cb, gw);
	gw->status_timer = g_timeout_add_seconds(gw->cfg.status_interval_s, status_cb, gw);
	gw->budget_timer = g_timeout_add_seconds(BUDGET_CHECK_S, budget_cb, gw);
	if (gw->up)
		gw_uplink_start(gw->up);
	return g_steal_pointer(&gw);
}

static gboolean stop_wait_cb(gpointer ud)
{
	*(bool *)ud = true;
	return G_SOURCE_REMOVE;
}

static gint cmp_i64(gconstpointer a, gconstpointer b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The escalation path's latencies, for the log (and make bench). */
static void log_latencies(GwGateway *gw)
{
	g_autoptr(GArray) v = NULL;
	guint n = gw->latencies ? gw->latencies->len : 0;

	if (n == 0)
		return;
	v = g_array_copy(gw->latencies);
	g_array_sort(v, cmp_i64);
	g_message("escalation latency (pain report in to alert PUBACK): n %u p50 %" G_GINT64_FORMAT
		  " us p99 %" G_GINT64_FORMAT " us max %" G_GINT64_FORMAT " us", n,
		  g_array_index(v, int64_t, n / 2), g_array_index(v, int64_t, MIN(n - 1, n * 99 / 100)),
		  g_array_index(v, int64_t, n - 1));
}

void gw_gateway_stop(GwGateway *gw, unsigned int timeout_ms)
{
	g_return_if_fail(gw != NULL);
	if (gw->stopped)
		return;
	log_latencies(gw);
	/* the links first: what they handed over gets committed */
	g_clear_pointer(&gw->ble, gw_ble_free);
	for (size_t i = 0; i < gw->n_w; i++)
		gw_agg_tick(gw->w[i].agg, wall_us());
	commit_now(gw);
	if (gw->up && gw_uplink_is_connected(gw->up)) {
		/* the offline status, in place of the will */
		g_autofree char *id = g_uuid_string_random();
		struct rl_gateway_status s = { 0 };
		struct rl_envelope env;
		g_autofree char *p = NULL;
		bool timed_out = false;
		guint t;

		env_init(gw, &env, id, RL_TIME_NONE, own_quality(gw));
		s.state = RL_GATEWAY_OFFLINE;
		s.version = gw->version;
		s.uptime_s = (g_get_monotonic_time() - gw->started_mono_us) / G_USEC_PER_SEC;
		s.clock_synced = gw->clock_synced;
		s.outbox_depth = RL_NONE;
		s.oldest_age_s = RL_NONE;
		s.wearables = (int)gw->n_w;
		p = rl_payload_build_gateway_status(&s, &env, NULL);
		gw->stopped = true;	/* no more draining */
		if (p)
			gw_uplink_publish(gw->up, BIRTH_TAG, gw->will_topic, p, strlen(p), 1, true, 0,
					  NULL);
		t = g_timeout_add(timeout_ms, stop_wait_cb, &timed_out);
		while (!timed_out && gw_uplink_in_flight(gw->up) > 0)
			g_main_context_iteration(NULL, TRUE);
		if (!timed_out)
			g_source_remove(t);
		gw_uplink_stop(gw->up, timeout_ms);
	}
	gw->stopped = true;
	commit_now(gw);
}

void gw_gateway_free(GwGateway *gw)
{
	if (!gw)
		return;
	if (gw->store && !gw->stopped)
		gw_gateway_stop(gw, 2000);
	g_clear_pointer(&gw->ble, gw_ble_free);
	g_clear_pointer(&gw->up, gw_uplink_free);
	if (gw->drain_later) {
		g_source_destroy(gw->drain_later);
		g_clear_pointer(&gw->drain_later, g_source_unref);
	}
	g_clear_handle_id(&gw->commit_timer, g_source_remove);
	g_clear_handle_id(&gw->tick_timer, g_source_remove);
	g_clear_handle_id(&gw->status_timer, g_source_remove);
	g_clear_handle_id(&gw->budget_timer, g_source_remove);
	g_clear_handle_id(&gw->reply_retry, g_source_remove);
	while (g_idle_remove_by_data(gw))
		;
	for (size_t i = 0; i < gw->n_w; i++) {
		g_clear_pointer(&gw->w[i].agg, gw_agg_free);
		g_free(gw->w[i].alias);
	}
	g_clear_pointer(&gw->rules, gw_rules_free);
	g_clear_pointer(&gw->minutes, g_hash_table_unref);
	g_clear_pointer(&gw->alert_rows, g_hash_table_unref);
	g_clear_pointer(&gw->pain_arrival, g_hash_table_unref);
	g_clear_pointer(&gw->latencies, g_array_unref);
	g_clear_pointer(&gw->replies, g_ptr_array_unref);
	g_clear_pointer(&gw->tz_local, g_time_zone_unref);
	g_free(gw->fallback_command);
	g_free(gw->w);
	g_clear_pointer(&gw->store, gw_store_free);
	g_clear_pointer(&gw->in_flight, g_hash_table_unref);
	g_clear_pointer(&gw->in_flight_prio, g_hash_table_unref);
	g_free(gw->will_topic);
	g_free(gw->will_payload);
	g_free(gw->cmd_filter);
	g_free(gw->gateway_id);
	g_free(gw->patient_id);
	g_free(gw->state_dir);
	g_free(gw->adapter);
	g_free(gw->uri);
	g_free(gw->version);
	g_free(gw);
}

const GArray *gw_gateway_escalation_latencies(GwGateway *gw)
{
	return gw->latencies;
}

void gw_gateway_get_stats(GwGateway *gw, struct gw_gateway_stats *ret)
{
	*ret = gw->st;
	ret->in_flight = g_hash_table_size(gw->in_flight);
	ret->connected = gw->up && gw_uplink_is_connected(gw->up);
	ret->clock_synced = gw->clock_synced;
}

void gw_gateway_reconfigure(GwGateway *gw, const struct gw_gateway_config *cfg)
{
	g_autoptr(GError) error = NULL;

	g_return_if_fail(gw != NULL && cfg != NULL);
	if (!gw_rules_set_config(gw->rules, &cfg->rules, &error))
		g_warning("reload: the rules were not changed: %s", error->message);
	g_free(gw->fallback_command);
	gw->fallback_command = g_strdup(cfg->fallback_command);
	gw->cfg.store_budget_bytes = cfg->store_budget_bytes;
	gw_store_set_budget(gw->store, cfg->store_budget_bytes);
	gw->cfg.backlog_rate = cfg->backlog_rate;
	if (cfg->commit_interval_ms && cfg->commit_interval_ms != gw->cfg.commit_interval_ms) {
		gw->cfg.commit_interval_ms = cfg->commit_interval_ms;
		g_source_remove(gw->commit_timer);
		gw->commit_timer = g_timeout_add(gw->cfg.commit_interval_ms, commit_cb, gw);
	}
	if (cfg->status_interval_s && cfg->status_interval_s != gw->cfg.status_interval_s) {
		gw->cfg.status_interval_s = cfg->status_interval_s;
		g_source_remove(gw->status_timer);
		gw->status_timer = g_timeout_add_seconds(gw->cfg.status_interval_s, status_cb, gw);
	}
	/* a lowered budget is enforced now, not at the next check */
	budget_cb(gw);
}

/* ---- for gateway-query.c ---- */

int64_t gw_gateway_wall_us(void)
{
	return wall_us();
}

int64_t gw_gateway_rules_now(GwGateway *gw)
{
	return rules_now(gw);
}

void gw_gateway_commit_soon(GwGateway *gw)
{
	commit_soon(gw);
}

void gw_gateway_strip_colons(const char *address, char *out, size_t size)
{
	strip_colons(address, out, size);
}
