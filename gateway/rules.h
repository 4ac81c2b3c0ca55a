/* SPDX-License-Identifier: MIT */
/*
 * The escalation engine (docs/escalation.md): clinical rules over pain
 * reports, technical alarms, and the alert lifecycle (raised, re-notified,
 * moved up a tier, acknowledged by the clinic, resolved, local fallback).
 *
 * Pure: no I/O, no clock, no randomness, no logging. Every call carries
 * now_us; transitions leave through struct gw_rules_ops. The caller arms
 * one timer at gw_rules_next_deadline() and calls gw_rules_tick() when it
 * expires. Events are queued while a call runs and delivered when the
 * outermost gw_rules_* call finishes, in the order they were decided, so
 * an op may call back into the engine (a fallback that reports its result
 * at once); an op must not free the engine.
 *
 * Time. now_us and every stored time are the gateway's wall clock, Unix
 * microseconds: the same base as pain report times and as the alerts the
 * caller stores, so that a restored alert resumes its timers across a
 * restart. Durations (re-notification, hysteresis, no data) are measured
 * on it, so the engine needs to know when the wall clock steps: a now_us
 * smaller than the last one is taken as a backward step and every running
 * timer is shifted by it (elapsed time is kept); a forward step the caller
 * detects (an NTP correction) is reported with gw_rules_clock_step(),
 * otherwise it counts as elapsed time. Re-notification is always scheduled
 * from the time it happened, so a jump causes at most one early
 * notification per alert, never a burst.
 *
 * Ids. Patients (pseudonymous, [A-Za-z0-9_-]{1,64}) and wearables (aliases,
 * same form) are named by the caller; alert ids come from ops->new_id so
 * tests stay deterministic.
 *
 * The engine depends on GLib only. Its tiers, states and pain flags have
 * the values of proto/payload.h's enum rl_alert_tier, enum rl_alert_state
 * and enum rl_pain_flag, so the wiring may cast between them.
 */
#ifndef REHABLINK_GATEWAY_RULES_H
#define REHABLINK_GATEWAY_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#define GW_RULES_NO_DEADLINE     INT64_MAX
#define GW_RULES_NEVER           INT64_MIN	/* a time that is not set */
#define GW_RULES_NONE            (-1)		/* a count that is unknown */

#define GW_RULES_ID_MAX          129	/* alert id: [A-Za-z0-9_.:-]{1,128} + NUL */
#define GW_RULES_NAME_MAX        65	/* ids, rule names: up to 64 + NUL */
#define GW_RULES_TRIGGER_NAME_MAX 32
#define GW_RULES_NOTE_MAX        1121	/* 280 code points of UTF-8 + NUL */
#define GW_RULES_NOTE_CHARS      280
#define GW_RULES_MAX_TRIGGERS    16
#define GW_RULES_MAX_PAIN_POINTS 288	/* pain reports in the 24 h context */
#define GW_RULES_MAX_PATIENTS    64
#define GW_RULES_MAX_WEARABLES   64

/* = enum rl_alert_tier */
enum gw_rules_tier {
	GW_RULES_INFORMATIONAL = 0,
	GW_RULES_ROUTINE,
	GW_RULES_URGENT,
	GW_RULES_EMERGENCY,
};
#define GW_RULES_TIER_COUNT (GW_RULES_EMERGENCY + 1)

/* = enum rl_alert_state */
enum gw_rules_state {
	GW_RULES_OPEN = 0,
	GW_RULES_ACKNOWLEDGED,
	GW_RULES_RESOLVED,
};

/* = enum rl_pain_flag (docs/protocol.md 1.6) */
#define GW_RULES_FLAG_RED_FLAGS  0x001fu	/* breathlessness .. bleeding */
#define GW_RULES_FLAG_MEDICATION 0x0020u	/* pain medication in the last 4 h */
#define GW_RULES_FLAG_ONE_SIDED  0x0040u
#define GW_RULES_FLAGS_KNOWN     0x007fu

/* Rule names (the alert's "rule" member). */
#define GW_RULE_PAIN_RED_FLAG     "pain.red_flag"
#define GW_RULE_PAIN_SEVERE       "pain.severe"
#define GW_RULE_PAIN_RISE         "pain.rise"
#define GW_RULE_PAIN_PERSISTENT   "pain.persistent"
#define GW_RULE_WEARABLE_NO_DATA  "wearable.no_data"
#define GW_RULE_WEARABLE_BATTERY  "wearable.battery_low"
#define GW_RULE_STORE_FULL        "gateway.store_full"
#define GW_RULE_STORE_CORRUPT     "gateway.store_corrupt"
#define GW_RULE_CLOCK_UNSYNCED    "gateway.clock_unsynced"
#define GW_RULE_BROKER_DOWN       "gateway.broker_unreachable"
#define GW_RULE_TEST              "gateway.test"

/*
 * Configuration. Each member is one key of docs/escalation.md (the key is
 * "rules." + the member's name); gw_rules_config_init() sets the defaults
 * and gw_rules_config_keys() lists names, types and ranges.
 */
struct gw_rules_config {
	/* pain.severe */
	int severe_pain_score;			/* 7, 1..10 */
	enum gw_rules_tier severe_tier;		/* urgent */
	/* pain.persistent */
	int moderate_pain_score;		/* 4, 1..10, below severe */
	int persistent_reports;			/* 2, 2..10 */
	int persistent_gap_min;			/* 120, 1..1440 */
	int persistent_window_h;		/* 24, 1..72 */
	bool medication_rule;			/* true: >= moderate with medication_taken */
	enum gw_rules_tier persistent_tier;	/* routine */
	/* pain.rise */
	int rise_over_median;			/* 3, 1..10 */
	int rise_median_min_reports;		/* 2, 1..50 */
	int rise_min_score;			/* 4, 0..10 (median branch) */
	int rise_over_previous;			/* 2, 1..10 */
	int rise_previous_min_score;		/* 5, 0..10 */
	int rise_window_h;			/* 24, 1..72 */
	bool one_sided_raises;			/* true */
	enum gw_rules_tier rise_tier;		/* urgent */
	/* pain.red_flag */
	int red_flag_mask;			/* 31, 1..31 */
	enum gw_rules_tier red_flag_tier;	/* emergency */
	/* modifiers: raise pain.persistent / pain.rise one tier */
	int low_steps_floor;			/* 500, 0..100000 (0: off) */
	int low_steps_from_pod;			/* 2, 0..365 */
	int flexed_raise_min_2h;		/* 90, 0..120 (0: off) */
	int flexed_raise_from_pod;		/* 14, 0..365 */
	/* pain alerts resolving by themselves */
	bool pain_auto_resolve;			/* true */
	int pain_clear_reports;			/* 2, 1..10 */
	int pain_clear_margin;			/* 2, 0..10, at most moderate */
	int pain_clear_quiet_min;		/* 120, 0..1440 */
	/* lifecycle */
	int renotify_emergency_min;		/* 5, 1..60 */
	int renotify_urgent_min;		/* 15, 1..1440 */
	int renotify_routine_min;		/* 60, 0..1440 (0: never) */
	int renotify_informational_min;		/* 0, 0..1440 */
	int tier_up_after_urgent;		/* 2, 0..20 (0: never) */
	int tier_up_after_routine;		/* 0, 0..20 */
	int tier_up_after_informational;	/* 0, 0..20 */
	int min_notify_interval_min;		/* 10, 0..60; not for emergencies */
	bool fallback_enabled;			/* true */
	int fallback_urgent_min;		/* 30, 0..1440 */
	int fallback_emergency_min;		/* 0, 0..1440 */
	int fallback_repeat_min;		/* 60, 0..1440 (0: once) */
	int unreachable_grace_s;		/* 60, 0..3600 */
	int delivery_timeout_s;			/* 60, 0..3600 (0: off) */
	int tech_hysteresis_min;		/* 10, 0..1440 */
	/* technical alarms */
	int no_data_min;			/* 30, 1..10080 */
	enum gw_rules_tier no_data_tier;	/* routine */
	int battery_low_pct;			/* 15, 1..99 */
	enum gw_rules_tier battery_tier;	/* routine */
	int store_full_pct;			/* 90, 1..100 */
	enum gw_rules_tier store_tier;		/* routine */
	enum gw_rules_tier store_corrupt_tier;	/* routine */
	int clock_unsynced_min;			/* 60, 1..10080 */
	enum gw_rules_tier clock_tier;		/* routine */
	int broker_down_min;			/* 15, 1..10080 */
	enum gw_rules_tier broker_tier;		/* routine */
	/* audit and memory */
	bool audit_health_values;		/* false */
	int resolved_keep_h;			/* 168, 1..720 */
};

void gw_rules_config_init(struct gw_rules_config *cfg);

enum gw_rules_key_type {
	GW_RULES_KEY_INT,
	GW_RULES_KEY_BOOL,
	GW_RULES_KEY_TIER,	/* "informational", "routine", "urgent", "emergency" */
};

struct gw_rules_key {
	const char *name;	/* "rules.severe_pain_score" */
	enum gw_rules_key_type type;
	int min, max;		/* GW_RULES_KEY_INT */
	size_t offset;		/* in struct gw_rules_config */
	const char *help;	/* one line, with the unit */
};
const struct gw_rules_key *gw_rules_config_keys(size_t *ret_n);

#define GW_RULES_ERROR (gw_rules_error_quark())
GQuark gw_rules_error_quark(void);
enum gw_rules_error {
	GW_RULES_ERROR_CONFIG,		/* message: "<key>: <what is wrong>" */
	GW_RULES_ERROR_RESTORE,
};

/* Sets one key from text ("7", "true", "urgent"): as read from the config
 * file, or a clinic config message's scalar printed as text. Refuses an
 * unknown key, a value of the wrong type or out of the key's range with a
 * message naming the key; cfg is unchanged then. Cross-key constraints are
 * checked by gw_rules_config_validate(). */
gboolean gw_rules_config_set(struct gw_rules_config *cfg, const char *key,
			     const char *value, GError **error);
/* The key's value as text (g_free), NULL for an unknown key. */
gchar *gw_rules_config_get(const struct gw_rules_config *cfg, const char *key);
/* Every key in range and the cross-key rules; the message names the key. */
gboolean gw_rules_config_validate(const struct gw_rules_config *cfg, GError **error);

/* ---- alerts ----------------------------------------------------------- */

struct gw_rules_trigger {
	char name[GW_RULES_TRIGGER_NAME_MAX];	/* [a-z0-9_]+ */
	double value;
};

struct gw_rules_pain_point {
	int64_t time_us;
	int score;
};

/* Context copied into the alert at each notification (docs/protocol.md 2.7). */
struct gw_rules_alert_context {
	struct gw_rules_pain_point pain_24h[GW_RULES_MAX_PAIN_POINTS];	/* oldest first */
	unsigned int n_pain_24h;
	int64_t flexed_s_2h;		/* or GW_RULES_NONE */
	int64_t steps_today;		/* or GW_RULES_NONE */
	int64_t steps_yesterday;	/* or GW_RULES_NONE */
	int battery_pct;		/* or GW_RULES_NONE */
	int64_t data_age_s;		/* or GW_RULES_NONE */
};

/*
 * One alert, as the engine keeps it: a plain value the caller may copy,
 * store (gw_rules_alert_serialize) and give back (gw_rules_restore). The
 * members under "bookkeeping" are the engine's timers; store them as they
 * are.
 */
struct gw_rules_alert {
	char alert_id[GW_RULES_ID_MAX];
	char rule[GW_RULES_NAME_MAX];
	char patient[GW_RULES_NAME_MAX];	/* "" for a gateway alarm */
	char wearable[GW_RULES_NAME_MAX];	/* "" if none */
	enum gw_rules_tier tier;
	enum gw_rules_state state;
	uint32_t notification;			/* of the latest notification, >= 1 */
	int64_t raised_at_us;
	struct gw_rules_trigger trigger[GW_RULES_MAX_TRIGGERS];
	unsigned int n_trigger;			/* 1..GW_RULES_MAX_TRIGGERS */
	struct gw_rules_alert_context context;

	/* the clinic's latest action (acknowledge, or resolve); has_ack is
	 * false while open, and for an alert resolved automatically without
	 * an acknowledgement */
	bool has_ack;
	char ack_by[GW_RULES_NAME_MAX];
	int64_t ack_at_us;			/* the clinician's time */
	bool has_note;
	char ack_note[GW_RULES_NOTE_MAX];
	bool resolved_by_clinic;
	int64_t resolved_at_us;			/* or GW_RULES_NEVER */

	/* local fallback */
	unsigned int fallback_runs;
	int64_t fallback_last_us;		/* or GW_RULES_NEVER */
	bool fallback_have_result;
	int fallback_status;			/* of the latest run: 0 ok */

	/* bookkeeping */
	int64_t last_notify_us;			/* the latest notification */
	int64_t last_escalation_us;		/* raised, re-notified, tier changed:
						 * the acknowledgement timer's start */
	int64_t tier_since_us;
	unsigned int renotify_count;		/* re-notifications at this tier */
	bool update_pending;			/* new trigger values wait for the rate limit */
	uint32_t delivered;			/* highest notification delivered (PUBACK) */
	int64_t undelivered_since_us;		/* or GW_RULES_NEVER */
	int64_t trigger_event_us;		/* pain: event time of the report
						 * that last triggered it */
	int clear_level;			/* pain: reports <= it count towards
						 * auto-resolution; -1 never */
	unsigned int clear_run;
	int64_t clear_first_us;			/* first report of the clear run */
	int64_t clear_since_us;			/* technical: condition clear since */
};

/* The value of a trigger, or false. */
bool gw_rules_alert_trigger(const struct gw_rules_alert *a, const char *name,
			    double *ret_value);

/* A versioned a{sv} with every member, for the store; and back. The
 * deserialiser checks types and ranges, and refuses what it cannot
 * read. */
GVariant *gw_rules_alert_serialize(const struct gw_rules_alert *a);
gboolean gw_rules_alert_deserialize(GVariant *v, struct gw_rules_alert *ret,
				    GError **error);

/* ---- events and ops ---------------------------------------------------- */

enum gw_rules_event_kind {
	GW_RULES_EV_RAISED = 0,		/* publish notification 1 */
	GW_RULES_EV_UPDATED,		/* new trigger values (tier may rise): publish */
	GW_RULES_EV_RENOTIFIED,		/* not acknowledged in time: publish */
	GW_RULES_EV_TIER_UP,		/* the K-th re-notification, one tier up: publish */
	GW_RULES_EV_ACKNOWLEDGED,	/* by the clinic: publish */
	GW_RULES_EV_RESOLVED,		/* by the clinic or by itself: publish */
	GW_RULES_EV_FALLBACK_STARTED,	/* run the local fallback command now */
	GW_RULES_EV_FALLBACK_RESULT,	/* its outcome was recorded */
	GW_RULES_EV_DELIVERED,		/* the broker acknowledged a notification */
};
#define GW_RULES_EV_COUNT (GW_RULES_EV_DELIVERED + 1)

struct gw_rules_event {
	enum gw_rules_event_kind kind;
	const struct gw_rules_alert *alert;	/* after the transition; valid
						 * during the call */
	bool publish;		/* a new notification: alert->notification */
	int64_t at_us;		/* now, when it happened */
	const char *detail;	/* for the audit trail: rule, tier and counters;
				 * health values only with audit_health_values */
};

struct gw_rules_ops {
	/* A fresh alert id, [A-Za-z0-9_.:-]{1,128}, NUL-terminated in buf.
	 * NULL, or a bad id: the engine makes "alert-<n>". */
	void (*new_id)(char *buf, size_t size, void *user_data);
	/* Every transition. The caller stores ev->alert (it changed),
	 * appends ev to the audit, publishes when ev->publish, and runs the
	 * fallback command on GW_RULES_EV_FALLBACK_STARTED. */
	void (*event)(const struct gw_rules_event *ev, void *user_data);
};

/* ---- the engine -------------------------------------------------------- */

typedef struct gw_rules GwRules;

/* NULL (and error) if cfg does not validate. */
GwRules *gw_rules_new(const struct gw_rules_config *cfg, const struct gw_rules_ops *ops,
		      void *user_data, GError **error);
void gw_rules_free(GwRules *r);			/* NULL-safe */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwRules, gw_rules_free)

/* A new configuration applies to every later decision; running timers
 * are measured with the new durations. Refused (nothing changes) if it
 * does not validate. */
gboolean gw_rules_set_config(GwRules *r, const struct gw_rules_config *cfg, GError **error);
const struct gw_rules_config *gw_rules_get_config(const GwRules *r);

enum gw_rules_result {
	GW_RULES_OK = 0,
	GW_RULES_NOOP,			/* a duplicate: nothing changed */
	GW_RULES_UNKNOWN_ALERT,		/* no alert with that id (nothing changed) */
	GW_RULES_ALREADY_RESOLVED,	/* acknowledge for a resolved alert */
	GW_RULES_INVALID,		/* a bad argument (nothing changed) */
};
const char *gw_rules_result_name(enum gw_rules_result res);
const char *gw_rules_tier_name(enum gw_rules_tier t);
bool gw_rules_tier_parse(const char *s, enum gw_rules_tier *ret);
const char *gw_rules_state_name(enum gw_rules_state s);
const char *gw_rules_event_kind_name(enum gw_rules_event_kind k);

/* ---- inputs ---- */

/* A pain report (docs/protocol.md 1.6): event_us is when the patient
 * entered it (placed on the wall clock), flags enum rl_pain_flag. It is
 * evaluated against the patient's earlier reports and kept for 72 h.
 * NOOP: the same report (time, score, flags) was seen before. Feed the
 * patient's context first (gw_rules_context_set) so a raised alert
 * carries it. */
enum gw_rules_result gw_rules_pain(GwRules *r, const char *patient, const char *wearable,
				   int64_t event_us, int score, unsigned int flags,
				   int64_t now_us);
/* A report from the store at start-up: history only, no rule runs. */
enum gw_rules_result gw_rules_pain_load(GwRules *r, const char *patient, int64_t event_us,
					int score, unsigned int flags);

/* The patient's activity context (from the aggregates). */
struct gw_rules_context {
	int64_t flexed_s_2h;		/* seconds flexed over 30 degrees in the last 2 h */
	int64_t steps_today;		/* since local midnight */
	int64_t steps_yesterday;
	int post_op_day;		/* 0 = day of surgery */
};
/* Every member GW_RULES_NONE. */
void gw_rules_context_init(struct gw_rules_context *ctx);
enum gw_rules_result gw_rules_context_set(GwRules *r, const char *patient,
					  const struct gw_rules_context *ctx);

/* Wearables: watched for data from gw_rules_wearable_add on. */
enum gw_rules_result gw_rules_wearable_add(GwRules *r, const char *wearable,
					   const char *patient, int64_t now_us);
/* Forgets it; its open alarms clear (and resolve after the hysteresis). */
enum gw_rules_result gw_rules_wearable_remove(GwRules *r, const char *wearable, int64_t now_us);
/* Data arrived now (any record); event_us its event time, or GW_RULES_NEVER. */
enum gw_rules_result gw_rules_wearable_data(GwRules *r, const char *wearable,
					    int64_t event_us, int64_t now_us);
enum gw_rules_result gw_rules_wearable_battery(GwRules *r, const char *wearable,
					       int pct, int64_t now_us);

/* The gateway. Until told, the broker counts as connected and the clock
 * as synchronised. */
void gw_rules_broker(GwRules *r, bool connected, int64_t now_us);
void gw_rules_clock(GwRules *r, bool synced, int64_t now_us);
/* The wall clock stepped by delta_us (new - old); running timers keep
 * their elapsed time. Call it with the first now_us after the step. */
void gw_rules_clock_step(GwRules *r, int64_t delta_us, int64_t now_us);
/* Store size in percent of its budget, 0..100 (above: 100). */
void gw_rules_store_usage(GwRules *r, int pct, int64_t now_us);
/* The store was found corrupt and set aside: raised once (while an alarm
 * for it is not resolved, further calls change nothing). */
void gw_rules_store_corrupt(GwRules *r, int64_t now_us);

/* A technician's test (rehablinkctl test-alert): an informational alarm
 * with the rule GW_RULE_TEST that goes the whole way to the clinic. Its
 * condition is clear at once, so it resolves by itself after
 * tech_hysteresis_min unless the clinic resolves it first; while one is
 * open, another test notifies it again (GW_RULES_EV_UPDATED). The alert's
 * id goes to ret_id (GW_RULES_ID_MAX bytes). */
enum gw_rules_result gw_rules_test_alert(GwRules *r, int64_t now_us, char *ret_id);

/* ---- the clinic and the caller's reports ---- */

enum gw_rules_ack_action {
	GW_RULES_ACK_ACKNOWLEDGE = 0,	/* = enum rl_ack_action */
	GW_RULES_ACK_RESOLVE,
};
/*
 * The clinic's alert_ack (docs/protocol.md 2.8): by a clinician pseudonym
 * ([A-Za-z0-9_-]{1,64}) at at_us (their time), with a note (NULL or up to
 * 280 characters of UTF-8).
 *  - acknowledge an open alert: OK, it becomes acknowledged;
 *  - acknowledge an acknowledged one: NOOP (the first acknowledgement stays);
 *  - resolve an open or acknowledged alert: OK, resolved;
 *  - anything for a resolved alert: ALREADY_RESOLVED (acknowledge) or
 *    NOOP (resolve again); unknown id: UNKNOWN_ALERT; bad argument: INVALID.
 * Resolved alerts are remembered for resolved_keep_h.
 */
enum gw_rules_result gw_rules_ack(GwRules *r, const char *alert_id,
				  enum gw_rules_ack_action action, const char *by,
				  int64_t at_us, const char *note, int64_t now_us);
/* The broker acknowledged (PUBACK) notification n of the alert. A
 * notification of an urgent or emergency alert that is not delivered within
 * delivery_timeout_s starts the local fallback. NOOP for one already
 * delivered, INVALID for n above the alert's notification. */
enum gw_rules_result gw_rules_delivered(GwRules *r, const char *alert_id,
					uint32_t notification, int64_t now_us);
/* The fallback command of the alert's latest run ended: status 0 ok,
 * else its exit status or a negative errno. */
enum gw_rules_result gw_rules_fallback_result(GwRules *r, const char *alert_id,
					      int status, int64_t now_us);

/* ---- time ---- */

void gw_rules_tick(GwRules *r, int64_t now_us);
/* When gw_rules_tick next has something to do, or GW_RULES_NO_DEADLINE. */
int64_t gw_rules_next_deadline(const GwRules *r);

/* ---- the alerts held (open, acknowledged, recently resolved) ---- */

guint gw_rules_n_alerts(const GwRules *r);
const struct gw_rules_alert *gw_rules_alert_nth(const GwRules *r, guint i);
const struct gw_rules_alert *gw_rules_find(const GwRules *r, const char *alert_id);
/* The alert of rule for subject (the patient for pain rules, the wearable
 * for wearable rules, NULL for gateway rules) that is not resolved. */
const struct gw_rules_alert *gw_rules_find_open(const GwRules *r, const char *rule,
						const char *subject);

/* At start-up, before any input: an alert the caller stored. Its timers
 * resume from its stored times (times ahead of now_us are taken as now);
 * call gw_rules_tick(now) after restoring. Refused: a malformed alert, an
 * unknown rule, an id already held, or a second unresolved alert of the
 * same rule and subject. No event. */
gboolean gw_rules_restore(GwRules *r, const struct gw_rules_alert *a, int64_t now_us,
			  GError **error);

#endif
