/* SPDX-License-Identifier: MIT */
/*
 * The escalation engine (see rules.h and docs/escalation.md). Pure: inputs
 * and the time come in as calls, transitions leave through ops->event.
 *
 * State. The engine holds its alerts (open, acknowledged, and resolved ones
 * for resolved_keep_h, so a late acknowledgement gets a clear answer), the
 * pain reports of each patient for 72 h, each patient's activity context,
 * its wearables (last data, battery) and three gateway conditions (broker,
 * clock, store). Every timer is a stored time plus a configured duration,
 * evaluated when asked: a new configuration applies to running timers, and
 * gw_rules_next_deadline() is the minimum of what is pending.
 *
 * Events are queued while a call runs and delivered when the outermost
 * call finishes (a flush keeps the depth above zero, so an op calling back
 * in queues behind the events already waiting and never reorders them).
 *
 * Conditions of the technical alarms have a raw state (broker
 * disconnected, clock unsynchronised, battery at or below the threshold,
 * store at or above it, no data) and an episode flag ("fired"): an alarm
 * is raised once per episode, when the raw condition has lasted its delay;
 * an episode ends when the raw condition clears. The alarm resolves itself
 * once the raw condition has stayed clear for the hysteresis; the raw
 * condition coming back meanwhile restarts that wait. An alarm the clinic
 * resolves while its episode lasts is not raised again until the
 * condition has cleared and come back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

#define MIN_US(x)      ((int64_t) (x) * 60 * G_USEC_PER_SEC)
#define HOUR_US(x)     ((int64_t) (x) * 3600 * G_USEC_PER_SEC)
#define SEC_US(x)      ((int64_t) (x) * G_USEC_PER_SEC)
#define PAIN_HORIZON_US HOUR_US(72)	/* the longest window a key allows */
#define PAIN_MAX_REPORTS 2048		/* per patient, oldest dropped */
#define CONTEXT_US     HOUR_US(24)	/* pain_24h */

G_DEFINE_QUARK(gw-rules-error-quark, gw_rules_error)

/* ---- names ---- */

static const char *const tier_names[GW_RULES_TIER_COUNT] = {
	"informational", "routine", "urgent", "emergency",
};

const char *gw_rules_tier_name(enum gw_rules_tier t)
{
	return (unsigned int) t < GW_RULES_TIER_COUNT ? tier_names[t] : "?";
}

bool gw_rules_tier_parse(const char *s, enum gw_rules_tier *ret)
{
	for (unsigned int i = 0; s && i < GW_RULES_TIER_COUNT; i++)
		if (strcmp(s, tier_names[i]) == 0) {
			*ret = (enum gw_rules_tier) i;
			return true;
		}
	return false;
}

const char *gw_rules_state_name(enum gw_rules_state s)
{
	switch (s) {
	case GW_RULES_OPEN:
		return "open";
	case GW_RULES_ACKNOWLEDGED:
		return "acknowledged";
	case GW_RULES_RESOLVED:
		return "resolved";
	}
	return "?";
}

const char *gw_rules_event_kind_name(enum gw_rules_event_kind k)
{
	switch (k) {
	case GW_RULES_EV_RAISED:
		return "raised";
	case GW_RULES_EV_UPDATED:
		return "updated";
	case GW_RULES_EV_RENOTIFIED:
		return "renotified";
	case GW_RULES_EV_TIER_UP:
		return "tier_up";
	case GW_RULES_EV_ACKNOWLEDGED:
		return "acknowledged";
	case GW_RULES_EV_RESOLVED:
		return "resolved";
	case GW_RULES_EV_FALLBACK_STARTED:
		return "fallback_started";
	case GW_RULES_EV_FALLBACK_RESULT:
		return "fallback_result";
	case GW_RULES_EV_DELIVERED:
		return "delivered";
	}
	return "?";
}

const char *gw_rules_result_name(enum gw_rules_result res)
{
	switch (res) {
	case GW_RULES_OK:
		return "ok";
	case GW_RULES_NOOP:
		return "noop";
	case GW_RULES_UNKNOWN_ALERT:
		return "unknown_alert";
	case GW_RULES_ALREADY_RESOLVED:
		return "already_resolved";
	case GW_RULES_INVALID:
		return "invalid";
	}
	return "?";
}

/* ---- rules ---- */

enum rule_class {
	CLASS_PAIN,		/* one alert per rule and patient */
	CLASS_WEARABLE,		/* per rule and wearable */
	CLASS_GATEWAY,		/* per rule */
};

static const struct {
	const char *name;
	enum rule_class cls;
} rule_table[] = {
	{ GW_RULE_PAIN_RED_FLAG, CLASS_PAIN },
	{ GW_RULE_PAIN_SEVERE, CLASS_PAIN },
	{ GW_RULE_PAIN_RISE, CLASS_PAIN },
	{ GW_RULE_PAIN_PERSISTENT, CLASS_PAIN },
	{ GW_RULE_WEARABLE_NO_DATA, CLASS_WEARABLE },
	{ GW_RULE_WEARABLE_BATTERY, CLASS_WEARABLE },
	{ GW_RULE_STORE_FULL, CLASS_GATEWAY },
	{ GW_RULE_STORE_CORRUPT, CLASS_GATEWAY },
	{ GW_RULE_CLOCK_UNSYNCED, CLASS_GATEWAY },
	{ GW_RULE_BROKER_DOWN, CLASS_GATEWAY },
	{ GW_RULE_TEST, CLASS_GATEWAY },
};

static bool rule_class_of(const char *rule, enum rule_class *ret)
{
	for (size_t i = 0; i < G_N_ELEMENTS(rule_table); i++)
		if (strcmp(rule, rule_table[i].name) == 0) {
			*ret = rule_table[i].cls;
			return true;
		}
	return false;
}

/* The patient, the wearable or "" by the rule's class. */
static const char *alert_subject(const struct gw_rules_alert *a)
{
	enum rule_class cls = CLASS_GATEWAY;

	(void) rule_class_of(a->rule, &cls);
	switch (cls) {
	case CLASS_PAIN:
		return a->patient;
	case CLASS_WEARABLE:
		return a->wearable;
	case CLASS_GATEWAY:
		break;
	}
	return "";
}

static bool is_technical(const struct gw_rules_alert *a)
{
	enum rule_class cls = CLASS_PAIN;

	return rule_class_of(a->rule, &cls) && cls != CLASS_PAIN;
}

/* ---- configuration ---- */

void gw_rules_config_init(struct gw_rules_config *c)
{
	memset(c, 0, sizeof(*c));
	c->severe_pain_score = 7;
	c->severe_tier = GW_RULES_URGENT;
	c->moderate_pain_score = 4;
	c->persistent_reports = 2;
	c->persistent_gap_min = 120;
	c->persistent_window_h = 24;
	c->medication_rule = true;
	c->persistent_tier = GW_RULES_ROUTINE;
	c->rise_over_median = 3;
	c->rise_median_min_reports = 2;
	c->rise_min_score = 4;
	c->rise_over_previous = 2;
	c->rise_previous_min_score = 5;
	c->rise_window_h = 24;
	c->one_sided_raises = true;
	c->rise_tier = GW_RULES_URGENT;
	c->red_flag_mask = GW_RULES_FLAG_RED_FLAGS;
	c->red_flag_tier = GW_RULES_EMERGENCY;
	c->low_steps_floor = 500;
	c->low_steps_from_pod = 2;
	c->flexed_raise_min_2h = 90;
	c->flexed_raise_from_pod = 14;
	c->pain_auto_resolve = true;
	c->pain_clear_reports = 2;
	c->pain_clear_margin = 2;
	c->pain_clear_quiet_min = 120;
	c->renotify_emergency_min = 5;
	c->renotify_urgent_min = 15;
	c->renotify_routine_min = 60;
	c->renotify_informational_min = 0;
	c->tier_up_after_urgent = 2;
	c->tier_up_after_routine = 0;
	c->tier_up_after_informational = 0;
	c->min_notify_interval_min = 10;
	c->fallback_enabled = true;
	c->fallback_urgent_min = 30;
	c->fallback_emergency_min = 0;
	c->fallback_repeat_min = 60;
	c->unreachable_grace_s = 60;
	c->delivery_timeout_s = 60;
	c->tech_hysteresis_min = 10;
	c->no_data_min = 30;
	c->no_data_tier = GW_RULES_ROUTINE;
	c->battery_low_pct = 15;
	c->battery_tier = GW_RULES_ROUTINE;
	c->store_full_pct = 90;
	c->store_tier = GW_RULES_ROUTINE;
	c->store_corrupt_tier = GW_RULES_ROUTINE;
	c->clock_unsynced_min = 60;
	c->clock_tier = GW_RULES_ROUTINE;
	c->broker_down_min = 15;
	c->broker_tier = GW_RULES_ROUTINE;
	c->audit_health_values = false;
	c->resolved_keep_h = 168;
}

#define KI(f, lo, hi, h) { "rules." #f, GW_RULES_KEY_INT, lo, hi, \
	offsetof(struct gw_rules_config, f), h }
#define KB(f, h) { "rules." #f, GW_RULES_KEY_BOOL, 0, 1, \
	offsetof(struct gw_rules_config, f), h }
#define KT(f, h) { "rules." #f, GW_RULES_KEY_TIER, 0, GW_RULES_TIER_COUNT - 1, \
	offsetof(struct gw_rules_config, f), h }

static const struct gw_rules_key keys[] = {
	KI(severe_pain_score, 1, 10, "NRS at or above which pain.severe fires"),
	KT(severe_tier, "tier of pain.severe"),
	KI(moderate_pain_score, 1, 10, "NRS at or above which pain.persistent counts a report"),
	KI(persistent_reports, 2, 10, "reports at or above moderate in a row for pain.persistent"),
	KI(persistent_gap_min, 1, 1440, "minutes from the first to the last of those reports"),
	KI(persistent_window_h, 1, 72, "hours back pain.persistent looks"),
	KB(medication_rule, "a report at or above moderate with medication_taken fires pain.persistent"),
	KT(persistent_tier, "tier of pain.persistent"),
	KI(rise_over_median, 1, 10, "points over the median of the window for pain.rise"),
	KI(rise_median_min_reports, 1, 50, "earlier reports in the window needed for a median"),
	KI(rise_min_score, 0, 10, "the median branch fires only at or above this NRS"),
	KI(rise_over_previous, 1, 10, "points over the previous report for pain.rise"),
	KI(rise_previous_min_score, 0, 10, "the previous-report branch fires only at or above this NRS"),
	KI(rise_window_h, 1, 72, "hours of the median and of the previous report"),
	KB(one_sided_raises, "a one-sided rise is one tier higher"),
	KT(rise_tier, "tier of pain.rise"),
	KI(red_flag_mask, 1, 31, "flag bits (protocol 1.6, bits 0..4) that are red flags"),
	KT(red_flag_tier, "tier of pain.red_flag"),
	KI(low_steps_floor, 0, 100000, "steps (best of today and yesterday) below which a "
	   "pain.persistent or pain.rise alert is one tier higher; 0 off"),
	KI(low_steps_from_pod, 0, 365, "post-operative day from which the steps floor applies"),
	KI(flexed_raise_min_2h, 0, 120, "minutes flexed in the last 2 h from which a "
	   "pain.persistent or pain.rise alert is one tier higher; 0 off"),
	KI(flexed_raise_from_pod, 0, 365, "post-operative day from which flexion counts"),
	KB(pain_auto_resolve, "an acknowledged pain alert resolves once pain has settled"),
	KI(pain_clear_reports, 1, 10, "reports in a row at or below threshold - margin"),
	KI(pain_clear_margin, 0, 10, "points below the rule's threshold for a report to count"),
	KI(pain_clear_quiet_min, 0, 1440, "minutes those reports must span"),
	KI(renotify_emergency_min, 1, 60, "minutes without acknowledgement before re-notifying"),
	KI(renotify_urgent_min, 1, 1440, "minutes without acknowledgement before re-notifying"),
	KI(renotify_routine_min, 0, 1440, "minutes without acknowledgement before re-notifying; 0 never"),
	KI(renotify_informational_min, 0, 1440, "minutes without acknowledgement before "
	   "re-notifying; 0 never"),
	KI(tier_up_after_urgent, 0, 20, "the K-th re-notification goes out one tier up; 0 never"),
	KI(tier_up_after_routine, 0, 20, "the K-th re-notification goes out one tier up; 0 never"),
	KI(tier_up_after_informational, 0, 20, "the K-th re-notification goes out one tier up; "
	   "0 never"),
	KI(min_notify_interval_min, 0, 60, "minutes between notifications of one alert that "
	   "change no state (re-notifications, updates); not for emergencies"),
	KB(fallback_enabled, "run the local fallback for urgent and emergency alerts"),
	KI(fallback_urgent_min, 0, 1440, "minutes an urgent alert waits for acknowledgement "
	   "before the local fallback"),
	KI(fallback_emergency_min, 0, 1440, "minutes an emergency alert waits for "
	   "acknowledgement before the local fallback"),
	KI(fallback_repeat_min, 0, 1440, "minutes between fallback runs while unacknowledged; 0 once"),
	KI(unreachable_grace_s, 0, 3600, "seconds the broker is down before the clinic counts "
	   "as unreachable (fallback at once)"),
	KI(delivery_timeout_s, 0, 3600, "seconds a notification may wait for the broker's "
	   "acknowledgement before the fallback; 0 off"),
	KI(tech_hysteresis_min, 0, 1440, "minutes a technical condition stays clear before its "
	   "alarm resolves"),
	KI(no_data_min, 1, 10080, "minutes without data from a wearable"),
	KT(no_data_tier, "tier of wearable.no_data"),
	KI(battery_low_pct, 1, 99, "wearable battery percent at or below which it is low"),
	KT(battery_tier, "tier of wearable.battery_low"),
	KI(store_full_pct, 1, 100, "store percent of its budget at or above which it is full"),
	KT(store_tier, "tier of gateway.store_full"),
	KT(store_corrupt_tier, "tier of gateway.store_corrupt"),
	KI(clock_unsynced_min, 1, 10080, "minutes the clock is unsynchronised"),
	KT(clock_tier, "tier of gateway.clock_unsynced"),
	KI(broker_down_min, 1, 10080, "minutes the broker is unreachable"),
	KT(broker_tier, "tier of gateway.broker_unreachable"),
	KB(audit_health_values, "put trigger values (pain scores) in audit details"),
	KI(resolved_keep_h, 1, 720, "hours a resolved alert is remembered"),
};

const struct gw_rules_key *gw_rules_config_keys(size_t *ret_n)
{
	*ret_n = G_N_ELEMENTS(keys);
	return keys;
}

static const struct gw_rules_key *find_key(const char *name)
{
	for (size_t i = 0; name && i < G_N_ELEMENTS(keys); i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static void *key_field(const struct gw_rules_config *cfg, const struct gw_rules_key *k)
{
	return (char *) cfg + k->offset;
}

/* The value of a key as an int (bools 0/1, tiers their code). */
static int key_get(const struct gw_rules_config *cfg, const struct gw_rules_key *k)
{
	const void *p = key_field(cfg, k);

	switch (k->type) {
	case GW_RULES_KEY_INT:
		return *(const int *) p;
	case GW_RULES_KEY_BOOL:
		return *(const bool *) p ? 1 : 0;
	case GW_RULES_KEY_TIER:
		return (int) *(const enum gw_rules_tier *) p;
	}
	return 0;
}

static void key_put(struct gw_rules_config *cfg, const struct gw_rules_key *k, int v)
{
	void *p = key_field(cfg, k);

	switch (k->type) {
	case GW_RULES_KEY_INT:
		*(int *) p = v;
		break;
	case GW_RULES_KEY_BOOL:
		*(bool *) p = v != 0;
		break;
	case GW_RULES_KEY_TIER:
		*(enum gw_rules_tier *) p = (enum gw_rules_tier) v;
		break;
	}
}

gboolean gw_rules_config_set(struct gw_rules_config *cfg, const char *key,
			     const char *value, GError **error)
{
	const struct gw_rules_key *k = find_key(key);
	gint64 v;
	enum gw_rules_tier t;

	if (!k) {
		g_set_error(error, GW_RULES_ERROR, GW_RULES_ERROR_CONFIG, "%s: unknown setting",
			    key ? key : "(null)");
		return FALSE;
	}
	if (!value) {
		g_set_error(error, GW_RULES_ERROR, GW_RULES_ERROR_CONFIG, "%s: no value", k->name);
		return FALSE;
	}
	switch (k->type) {
	case GW_RULES_KEY_INT:
		if (!g_ascii_string_to_signed(value, 10, k->min, k->max, &v, NULL)) {
			g_set_error(error, GW_RULES_ERROR, GW_RULES_ERROR_CONFIG,
				    "%s: %s is not an integer in %d..%d", k->name, value,
				    k->min, k->max);
			return FALSE;
		}
		key_put(cfg, k, (int) v);
		return TRUE;
	case GW_RULES_KEY_BOOL:
		if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0) {
			key_put(cfg, k, value[0] == 't');
			return TRUE;
		}
		g_set_error(error, GW_RULES_ERROR, GW_RULES_ERROR_CONFIG,
			    "%s: %s is not true or false", k->name, value);
		return FALSE;
	case GW_RULES_KEY_TIER:
		if (gw_rules_tier_parse(value, &t)) {
			key_put(cfg, k, (int) t);
			return TRUE;
		}
		g_set_error(error, GW_RULES_ERROR, GW_RULES_ERROR_CONFIG,
			    "%s: %s is not one of informational, routine, urgent, emergency",
			    k->name, value);
		return FALSE;
	}
	return FALSE;
}

gchar *gw_rules_config_get(const struct gw_rules_config *cfg, const char *key)
{
	const struct gw_rules_key *k = find_key(key);
	int v;

	if (!k)
		return NULL;
	v = key_get(cfg, k);
	switch (k->type) {
	case GW_RULES_KEY_INT:
		return g_strdup_printf("%d", v);
	case GW_RULES_KEY_BOOL:
		return g_strdup(v ? "true" : "false");
	case GW_RULES_KEY_TIER:
		return g_strdup(gw_rules_tier_name((enum gw_rules_tier) v));
	}
	return NULL;
}

gboolean gw_rules_config_validate(const struct gw_rules_config *c, GError **error)
{
	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
		const struct gw_rules_key *k = &keys[i];
		int v = key_get(c, k);

		if (k->type == GW_RULES_KEY_BOOL)
			continue;
		if (v < k->min || v > k->max) {
			if (k->type == GW_RULES_KEY_TIER)
				g_set_error(error, GW_RULES_ERROR, GW_RULES_ERROR_CONFIG,
					    "%s: %d is not a tier", k->name, v);
			else
				g_set_error(error, GW_RULES_ERROR, GW_RULES_ERROR_CONFIG,
					    "%s: %d is not in %d..%d", k->name, v, k->min, k->max);
			return FALSE;
		}
	}
	if (c->moderate_pain_score >= c->severe_pain_score) {
		g_set_error(error, GW_RULES_ERROR, GW_RULES_ERROR_CONFIG,
			    "rules.moderate_pain_score: %d must be below rules.severe_pain_score (%d)",
			    c->moderate_pain_score, c->severe_pain_score);
		return FALSE;
	}
	if ((int64_t) c->persistent_gap_min >= (int64_t) c->persistent_window_h * 60) {
		g_set_error(error, GW_RULES_ERROR, GW_RULES_ERROR_CONFIG,
			    "rules.persistent_gap_min: %d min must be shorter than "
			    "rules.persistent_window_h (%d h)",
			    c->persistent_gap_min, c->persistent_window_h);
		return FALSE;
	}
	if (c->pain_clear_margin > c->moderate_pain_score) {
		g_set_error(error, GW_RULES_ERROR, GW_RULES_ERROR_CONFIG,
			    "rules.pain_clear_margin: %d must be at most rules.moderate_pain_score (%d)",
			    c->pain_clear_margin, c->moderate_pain_score);
		return FALSE;
	}
	return TRUE;
}

/* ---- the engine's state ---- */

struct pain_rec {
	int64_t t;
	int score;
	unsigned int flags;
};

struct patient {
	char id[GW_RULES_NAME_MAX];
	GArray *pain;			/* struct pain_rec, by time */
	struct gw_rules_context ctx;
};

struct wearable {
	char id[GW_RULES_NAME_MAX];
	char patient[GW_RULES_NAME_MAX];
	int64_t last_rx;		/* data last arrived (or the watch began) */
	int64_t newest_event;		/* GW_RULES_NEVER */
	int battery;			/* GW_RULES_NONE */
	bool no_data_fired;
	bool battery_fired;
};

struct cond {
	bool active;			/* the raw condition */
	int64_t since;
	bool fired;			/* alarm raised in this episode */
};

struct queued {
	enum gw_rules_event_kind kind;
	bool publish;
	int64_t at;
	gchar *detail;
	struct gw_rules_alert snap;
};

struct gw_rules {
	struct gw_rules_config cfg;
	struct gw_rules_ops ops;
	void *user_data;
	GPtrArray *alerts;		/* struct gw_rules_alert *, oldest first */
	GPtrArray *patients;		/* struct patient * */
	GPtrArray *wearables;		/* struct wearable * */
	struct cond broker, clock, store;
	int64_t last_now;
	uint64_t id_counter;
	GPtrArray *queue;		/* struct queued * */
	unsigned int depth;
	bool flushing;
};

static void queued_free(gpointer p)
{
	struct queued *q = p;

	g_free(q->detail);
	g_free(q);
}

static void patient_free(gpointer p)
{
	struct patient *pt = p;

	g_array_unref(pt->pain);
	g_free(pt);
}

/* ---- small helpers ---- */

static bool valid_id(const char *s)
{
	size_t n;

	if (!s)
		return false;
	n = strlen(s);
	if (n < 1 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!g_ascii_isalnum(s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

static bool valid_alert_id(const char *s, size_t max)
{
	size_t n;

	if (!s)
		return false;
	n = strnlen(s, max);
	if (n < 1 || n > 128 || n == max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!g_ascii_isalnum(s[i]) && !strchr("_.:-", s[i]))
			return false;
	return true;
}

static bool valid_note(const char *s)
{
	return !s || (strlen(s) < GW_RULES_NOTE_MAX && g_utf8_validate(s, -1, NULL) &&
		      g_utf8_strlen(s, -1) <= GW_RULES_NOTE_CHARS);
}

/* t + d, or GW_RULES_NO_DEADLINE when t is not set or it would overflow */
static int64_t after(int64_t t, int64_t d)
{
	if (t == GW_RULES_NEVER || t > INT64_MAX - d)
		return GW_RULES_NO_DEADLINE;
	return t + d;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static void shift(int64_t *t, int64_t delta)
{
	if (*t == GW_RULES_NEVER)
		return;
	if (delta > 0 && *t > INT64_MAX - delta)
		*t = INT64_MAX - 1;
	else if (delta < 0 && *t < INT64_MIN + 1 - delta)
		*t = INT64_MIN + 1;
	else
		*t += delta;
}

static enum gw_rules_tier tier_plus(enum gw_rules_tier t, int n)
{
	int v = (int) t + n;

	return (enum gw_rules_tier) (v > GW_RULES_EMERGENCY ? GW_RULES_EMERGENCY : v);
}

static int64_t renotify_us(const struct gw_rules_config *c, enum gw_rules_tier t)
{
	switch (t) {
	case GW_RULES_INFORMATIONAL:
		return MIN_US(c->renotify_informational_min);
	case GW_RULES_ROUTINE:
		return MIN_US(c->renotify_routine_min);
	case GW_RULES_URGENT:
		return MIN_US(c->renotify_urgent_min);
	case GW_RULES_EMERGENCY:
		return MIN_US(c->renotify_emergency_min);
	}
	return 0;
}

static int tier_up_after(const struct gw_rules_config *c, enum gw_rules_tier t)
{
	switch (t) {
	case GW_RULES_INFORMATIONAL:
		return c->tier_up_after_informational;
	case GW_RULES_ROUTINE:
		return c->tier_up_after_routine;
	case GW_RULES_URGENT:
		return c->tier_up_after_urgent;
	case GW_RULES_EMERGENCY:
		break;
	}
	return 0;
}

/* ---- triggers ---- */

struct trig_list {
	struct gw_rules_trigger t[GW_RULES_MAX_TRIGGERS];
	unsigned int n;
};

static void trig_add(struct trig_list *tl, const char *name, double value)
{
	if (tl->n >= GW_RULES_MAX_TRIGGERS)
		return;
	g_strlcpy(tl->t[tl->n].name, name, sizeof(tl->t[tl->n].name));
	tl->t[tl->n].value = value;
	tl->n++;
}

static void set_triggers(struct gw_rules_alert *a, const struct trig_list *tl)
{
	memcpy(a->trigger, tl->t, sizeof(tl->t[0]) * tl->n);
	a->n_trigger = tl->n;
}

bool gw_rules_alert_trigger(const struct gw_rules_alert *a, const char *name,
			    double *ret_value)
{
	for (unsigned int i = 0; i < a->n_trigger && i < GW_RULES_MAX_TRIGGERS; i++)
		if (strcmp(a->trigger[i].name, name) == 0) {
			if (ret_value)
				*ret_value = a->trigger[i].value;
			return true;
		}
	return false;
}

/* ---- lookups ---- */

static struct gw_rules_alert *alert_at(const GwRules *r, guint i)
{
	return g_ptr_array_index(r->alerts, i);
}

static struct gw_rules_alert *find_alert(const GwRules *r, const char *id)
{
	for (guint i = 0; id && i < r->alerts->len; i++)
		if (strcmp(alert_at(r, i)->alert_id, id) == 0)
			return alert_at(r, i);
	return NULL;
}

static struct gw_rules_alert *find_open(const GwRules *r, const char *rule, const char *subject)
{
	for (guint i = 0; i < r->alerts->len; i++) {
		struct gw_rules_alert *a = alert_at(r, i);

		if (a->state != GW_RULES_RESOLVED && strcmp(a->rule, rule) == 0 &&
		    strcmp(alert_subject(a), subject ? subject : "") == 0)
			return a;
	}
	return NULL;
}

static struct patient *find_patient(const GwRules *r, const char *id)
{
	for (guint i = 0; id && i < r->patients->len; i++) {
		struct patient *p = g_ptr_array_index(r->patients, i);

		if (strcmp(p->id, id) == 0)
			return p;
	}
	return NULL;
}

static struct patient *get_patient(GwRules *r, const char *id)
{
	struct patient *p = find_patient(r, id);

	if (p || !valid_id(id) || r->patients->len >= GW_RULES_MAX_PATIENTS)
		return p;
	p = g_new0(struct patient, 1);
	g_strlcpy(p->id, id, sizeof(p->id));
	p->pain = g_array_new(FALSE, FALSE, sizeof(struct pain_rec));
	gw_rules_context_init(&p->ctx);
	g_ptr_array_add(r->patients, p);
	return p;
}

static struct wearable *find_wearable(const GwRules *r, const char *id)
{
	for (guint i = 0; id && i < r->wearables->len; i++) {
		struct wearable *w = g_ptr_array_index(r->wearables, i);

		if (strcmp(w->id, id) == 0)
			return w;
	}
	return NULL;
}

/* ---- events ---- */

static void flush(GwRules *r)
{
	if (r->flushing)
		return;
	r->flushing = true;
	r->depth++;
	while (r->queue->len > 0) {
		struct queued *q = g_ptr_array_steal_index(r->queue, 0);
		struct gw_rules_event ev = {
			.kind = q->kind,
			.alert = &q->snap,
			.publish = q->publish,
			.at_us = q->at,
			.detail = q->detail,
		};

		if (r->ops.event)
			r->ops.event(&ev, r->user_data);
		queued_free(q);
	}
	r->depth--;
	r->flushing = false;
}

static void shift_all(GwRules *r, int64_t delta);
static void process(GwRules *r, int64_t now_us);

static void enter(GwRules *r, int64_t now)
{
	r->depth++;
	if (r->last_now != GW_RULES_NEVER && now < r->last_now)
		shift_all(r, now - r->last_now);	/* the wall clock went back */
	r->last_now = now;
}

static void leave(GwRules *r)
{
	if (--r->depth == 0)
		flush(r);
}

static void queue_event(GwRules *r, const struct gw_rules_alert *a,
			enum gw_rules_event_kind kind, bool publish, int64_t now,
			const char *extra)
{
	struct queued *q = g_new0(struct queued, 1);
	GString *d = g_string_new(NULL);

	q->kind = kind;
	q->publish = publish;
	q->at = now;
	q->snap = *a;
	g_string_append_printf(d, "%s rule=%s tier=%s state=%s notification=%u",
			       gw_rules_event_kind_name(kind), a->rule, gw_rules_tier_name(a->tier),
			       gw_rules_state_name(a->state), a->notification);
	if (extra && *extra)
		g_string_append_printf(d, " %s", extra);
	if (r->cfg.audit_health_values)
		for (unsigned int i = 0; i < a->n_trigger; i++)
			g_string_append_printf(d, " %s=%g", a->trigger[i].name,
					       a->trigger[i].value);
	q->detail = g_string_free(d, FALSE);
	g_ptr_array_add(r->queue, q);
}

/* ---- context ---- */

static void snapshot_context(const GwRules *r, struct gw_rules_alert *a, int64_t now)
{
	struct gw_rules_alert_context *c = &a->context;
	const struct patient *p = a->patient[0] ? find_patient(r, a->patient) : NULL;
	int64_t newest = GW_RULES_NEVER;

	memset(c, 0, sizeof(*c));
	c->flexed_s_2h = c->steps_today = c->steps_yesterday = GW_RULES_NONE;
	c->battery_pct = GW_RULES_NONE;
	c->data_age_s = GW_RULES_NONE;
	if (p) {
		guint first = 0, n;

		while (first < p->pain->len &&
		       g_array_index(p->pain, struct pain_rec, first).t < now - CONTEXT_US)
			first++;
		n = p->pain->len - first;
		if (n > GW_RULES_MAX_PAIN_POINTS) {
			first += n - GW_RULES_MAX_PAIN_POINTS;
			n = GW_RULES_MAX_PAIN_POINTS;
		}
		for (guint i = 0; i < n; i++) {
			const struct pain_rec *pr = &g_array_index(p->pain, struct pain_rec, first + i);

			c->pain_24h[i].time_us = pr->t;
			c->pain_24h[i].score = pr->score;
		}
		c->n_pain_24h = n;
		c->flexed_s_2h = p->ctx.flexed_s_2h;
		c->steps_today = p->ctx.steps_today;
		c->steps_yesterday = p->ctx.steps_yesterday;
	}
	for (guint i = 0; i < r->wearables->len; i++) {
		const struct wearable *w = g_ptr_array_index(r->wearables, i);

		if (!((a->patient[0] && strcmp(w->patient, a->patient) == 0) ||
		      (a->wearable[0] && strcmp(w->id, a->wearable) == 0)))
			continue;
		if (w->battery != GW_RULES_NONE &&
		    (c->battery_pct == GW_RULES_NONE || w->battery < c->battery_pct))
			c->battery_pct = w->battery;
		newest = max64(newest, w->newest_event);
	}
	if (newest != GW_RULES_NEVER)
		c->data_age_s = now > newest ? (now - newest) / G_USEC_PER_SEC : 0;
}

/* ---- transitions ---- */

/* A new notification of a: published by the caller. */
static void notify(GwRules *r, struct gw_rules_alert *a, enum gw_rules_event_kind kind,
		   int64_t now, const char *extra)
{
	a->notification++;
	a->last_notify_us = now;
	a->update_pending = false;
	if (a->undelivered_since_us == GW_RULES_NEVER)
		a->undelivered_since_us = now;
	snapshot_context(r, a, now);
	queue_event(r, a, kind, true, now, extra);
}

static void alert_init(struct gw_rules_alert *a)
{
	memset(a, 0, sizeof(*a));
	a->resolved_at_us = GW_RULES_NEVER;
	a->fallback_last_us = GW_RULES_NEVER;
	a->last_notify_us = GW_RULES_NEVER;
	a->last_escalation_us = GW_RULES_NEVER;
	a->tier_since_us = GW_RULES_NEVER;
	a->undelivered_since_us = GW_RULES_NEVER;
	a->trigger_event_us = GW_RULES_NEVER;
	a->clear_level = -1;
	a->clear_first_us = GW_RULES_NEVER;
	a->clear_since_us = GW_RULES_NEVER;
	a->ack_at_us = GW_RULES_NEVER;
}

static void make_id(GwRules *r, char *buf, size_t size)
{
	buf[0] = '\0';
	if (r->ops.new_id) {
		r->ops.new_id(buf, size, r->user_data);
		buf[size - 1] = '\0';
	}
	if (!valid_alert_id(buf, size) || find_alert(r, buf)) {
		do {
			g_snprintf(buf, size, "alert-%" G_GUINT64_FORMAT, ++r->id_counter);
		} while (find_alert(r, buf));
	}
}

static struct gw_rules_alert *raise_alert(GwRules *r, const char *rule, const char *patient,
					  const char *wearable, enum gw_rules_tier tier,
					  const struct trig_list *tl, int64_t now)
{
	struct gw_rules_alert *a = g_new(struct gw_rules_alert, 1);

	alert_init(a);
	make_id(r, a->alert_id, sizeof(a->alert_id));
	g_strlcpy(a->rule, rule, sizeof(a->rule));
	g_strlcpy(a->patient, patient ? patient : "", sizeof(a->patient));
	g_strlcpy(a->wearable, wearable ? wearable : "", sizeof(a->wearable));
	a->tier = tier;
	a->state = GW_RULES_OPEN;
	a->raised_at_us = now;
	a->tier_since_us = now;
	a->last_escalation_us = now;
	set_triggers(a, tl);
	g_ptr_array_add(r->alerts, a);
	notify(r, a, GW_RULES_EV_RAISED, now, NULL);
	return a;
}

static void resolve_auto(GwRules *r, struct gw_rules_alert *a, int64_t now, const char *reason)
{
	gchar *extra = g_strdup_printf("by=auto reason=%s", reason);

	a->state = GW_RULES_RESOLVED;
	a->resolved_by_clinic = false;
	a->resolved_at_us = now;
	notify(r, a, GW_RULES_EV_RESOLVED, now, extra);
	g_free(extra);
}

/* A new trigger for an alert that is not resolved: values replaced, the tier
 * may rise (never falls); a rise re-opens an acknowledged alert. */
static void update_alert(GwRules *r, struct gw_rules_alert *a, enum gw_rules_tier tier,
			 const struct trig_list *tl, const char *wearable, int64_t now)
{
	set_triggers(a, tl);
	if (wearable && *wearable)
		g_strlcpy(a->wearable, wearable, sizeof(a->wearable));
	if (tier > a->tier) {
		gchar *extra = g_strdup_printf("from=%s", gw_rules_tier_name(a->tier));

		a->tier = tier;
		a->tier_since_us = now;
		a->last_escalation_us = now;
		a->renotify_count = 0;
		if (a->state == GW_RULES_ACKNOWLEDGED) {
			a->state = GW_RULES_OPEN;
			a->has_ack = false;
			a->has_note = false;
			a->ack_by[0] = '\0';
			a->ack_note[0] = '\0';
			a->ack_at_us = GW_RULES_NEVER;
		}
		notify(r, a, GW_RULES_EV_UPDATED, now, extra);
		g_free(extra);
	} else if (a->tier == GW_RULES_EMERGENCY ||
		   now >= after(a->last_notify_us, MIN_US(r->cfg.min_notify_interval_min))) {
		notify(r, a, GW_RULES_EV_UPDATED, now, NULL);
	} else {
		a->update_pending = true;
	}
}

/* ---- deadlines of one alert ---- */

static int64_t renotify_due(const GwRules *r, const struct gw_rules_alert *a)
{
	int64_t t = renotify_us(&r->cfg, a->tier), due;

	if (a->state != GW_RULES_OPEN || t <= 0)
		return GW_RULES_NO_DEADLINE;
	due = after(a->last_escalation_us, t);
	if (a->tier != GW_RULES_EMERGENCY)
		due = max64(due, after(a->last_notify_us, MIN_US(r->cfg.min_notify_interval_min)));
	return due;
}

static int64_t update_due(const GwRules *r, const struct gw_rules_alert *a)
{
	if (!a->update_pending || a->state == GW_RULES_RESOLVED)
		return GW_RULES_NO_DEADLINE;
	if (a->tier == GW_RULES_EMERGENCY)
		return a->last_notify_us;
	return after(a->last_notify_us, MIN_US(r->cfg.min_notify_interval_min));
}

static int64_t fallback_due(const GwRules *r, const struct gw_rules_alert *a,
			    const char **ret_reason)
{
	const struct gw_rules_config *c = &r->cfg;
	int64_t ack, unreach = GW_RULES_NO_DEADLINE, undeliv = GW_RULES_NO_DEADLINE, first;
	const char *reason = "ack_timeout";

	if (!c->fallback_enabled || a->state != GW_RULES_OPEN || a->tier < GW_RULES_URGENT)
		return GW_RULES_NO_DEADLINE;
	ack = after(a->tier_since_us, MIN_US(a->tier == GW_RULES_EMERGENCY ?
					      c->fallback_emergency_min : c->fallback_urgent_min));
	if (r->broker.active)
		unreach = after(r->broker.since, SEC_US(c->unreachable_grace_s));
	if (c->delivery_timeout_s > 0)
		undeliv = after(a->undelivered_since_us, SEC_US(c->delivery_timeout_s));
	first = ack;
	if (unreach < first) {
		first = unreach;
		reason = "unreachable";
	}
	if (undeliv < first) {
		first = undeliv;
		reason = "undelivered";
	}
	if (ret_reason)
		*ret_reason = reason;
	if (first == GW_RULES_NO_DEADLINE || a->fallback_runs == 0)
		return first;
	if (c->fallback_repeat_min == 0)
		return GW_RULES_NO_DEADLINE;
	return max64(first, after(a->fallback_last_us, MIN_US(c->fallback_repeat_min)));
}

static int64_t tech_resolve_due(const GwRules *r, const struct gw_rules_alert *a)
{
	if (a->state == GW_RULES_RESOLVED || !is_technical(a))
		return GW_RULES_NO_DEADLINE;
	return after(a->clear_since_us, MIN_US(r->cfg.tech_hysteresis_min));
}

static int64_t alert_deadline(const GwRules *r, const struct gw_rules_alert *a)
{
	int64_t d = tech_resolve_due(r, a);

	d = min64(d, renotify_due(r, a));
	d = min64(d, update_due(r, a));
	return min64(d, fallback_due(r, a, NULL));
}

/* ---- technical conditions ---- */

static void tech_active(GwRules *r, const char *rule, const char *patient, const char *wearable,
			enum gw_rules_tier tier, const struct trig_list *tl, int64_t now)
{
	enum rule_class cls = CLASS_GATEWAY;
	struct gw_rules_alert *a;

	(void) rule_class_of(rule, &cls);
	a = find_open(r, rule, cls == CLASS_WEARABLE ? wearable : "");
	if (a)
		a->clear_since_us = GW_RULES_NEVER;
	else
		raise_alert(r, rule, patient, wearable, tier, tl, now);
}

/* The raw condition of rule for subject cleared: the hysteresis starts. */
static void tech_clear(GwRules *r, const char *rule, const char *subject, int64_t now)
{
	struct gw_rules_alert *a = find_open(r, rule, subject);

	if (a && a->clear_since_us == GW_RULES_NEVER)
		a->clear_since_us = now;
}

/* The raw condition is back before the alarm resolved. */
static void tech_unclear(GwRules *r, const char *rule, const char *subject)
{
	struct gw_rules_alert *a = find_open(r, rule, subject);

	if (a)
		a->clear_since_us = GW_RULES_NEVER;
}

static void check_conditions(GwRules *r, int64_t now)
{
	const struct gw_rules_config *c = &r->cfg;
	struct trig_list tl;

	for (guint i = 0; i < r->wearables->len; i++) {
		struct wearable *w = g_ptr_array_index(r->wearables, i);

		if (w->no_data_fired || now < after(w->last_rx, MIN_US(c->no_data_min)))
			continue;
		w->no_data_fired = true;
		tl.n = 0;
		trig_add(&tl, "silence_min", (double) ((now - w->last_rx) / MIN_US(1)));
		trig_add(&tl, "threshold_min", c->no_data_min);
		tech_active(r, GW_RULE_WEARABLE_NO_DATA, w->patient, w->id, c->no_data_tier, &tl, now);
	}
	if (r->broker.active && !r->broker.fired &&
	    now >= after(r->broker.since, MIN_US(c->broker_down_min))) {
		r->broker.fired = true;
		tl.n = 0;
		trig_add(&tl, "down_min", (double) ((now - r->broker.since) / MIN_US(1)));
		trig_add(&tl, "threshold_min", c->broker_down_min);
		tech_active(r, GW_RULE_BROKER_DOWN, "", "", c->broker_tier, &tl, now);
	}
	if (r->clock.active && !r->clock.fired &&
	    now >= after(r->clock.since, MIN_US(c->clock_unsynced_min))) {
		r->clock.fired = true;
		tl.n = 0;
		trig_add(&tl, "unsynced_min", (double) ((now - r->clock.since) / MIN_US(1)));
		trig_add(&tl, "threshold_min", c->clock_unsynced_min);
		tech_active(r, GW_RULE_CLOCK_UNSYNCED, "", "", c->clock_tier, &tl, now);
	}
}

static int64_t conditions_deadline(const GwRules *r)
{
	const struct gw_rules_config *c = &r->cfg;
	int64_t d = GW_RULES_NO_DEADLINE;

	for (guint i = 0; i < r->wearables->len; i++) {
		const struct wearable *w = g_ptr_array_index(r->wearables, i);

		if (!w->no_data_fired)
			d = min64(d, after(w->last_rx, MIN_US(c->no_data_min)));
	}
	if (r->broker.active && !r->broker.fired)
		d = min64(d, after(r->broker.since, MIN_US(c->broker_down_min)));
	if (r->clock.active && !r->clock.fired)
		d = min64(d, after(r->clock.since, MIN_US(c->clock_unsynced_min)));
	return d;
}

/* every running timer keeps its elapsed time across a wall-clock step */
static void shift_all(GwRules *r, int64_t delta)
{
	for (guint i = 0; i < r->alerts->len; i++) {
		struct gw_rules_alert *a = alert_at(r, i);

		shift(&a->last_notify_us, delta);
		shift(&a->last_escalation_us, delta);
		shift(&a->tier_since_us, delta);
		shift(&a->undelivered_since_us, delta);
		shift(&a->clear_since_us, delta);
		shift(&a->fallback_last_us, delta);
		shift(&a->resolved_at_us, delta);
	}
	for (guint i = 0; i < r->wearables->len; i++) {
		struct wearable *w = g_ptr_array_index(r->wearables, i);

		shift(&w->last_rx, delta);
	}
	shift(&r->broker.since, delta);
	shift(&r->clock.since, delta);
	shift(&r->store.since, delta);
}

/* ---- the engine ---- */

GwRules *gw_rules_new(const struct gw_rules_config *cfg, const struct gw_rules_ops *ops,
		      void *user_data, GError **error)
{
	GwRules *r;

	if (!gw_rules_config_validate(cfg, error))
		return NULL;
	r = g_new0(GwRules, 1);
	r->cfg = *cfg;
	if (ops)
		r->ops = *ops;
	r->user_data = user_data;
	r->alerts = g_ptr_array_new_with_free_func(g_free);
	r->patients = g_ptr_array_new_with_free_func(patient_free);
	r->wearables = g_ptr_array_new_with_free_func(g_free);
	r->queue = g_ptr_array_new_with_free_func(queued_free);
	r->broker.since = r->clock.since = r->store.since = GW_RULES_NEVER;
	r->last_now = GW_RULES_NEVER;
	return r;
}

void gw_rules_free(GwRules *r)
{
	if (!r)
		return;
	g_ptr_array_unref(r->alerts);
	g_ptr_array_unref(r->patients);
	g_ptr_array_unref(r->wearables);
	g_ptr_array_unref(r->queue);
	g_free(r);
}

gboolean gw_rules_set_config(GwRules *r, const struct gw_rules_config *cfg, GError **error)
{
	if (!gw_rules_config_validate(cfg, error))
		return FALSE;
	r->cfg = *cfg;
	return TRUE;
}

const struct gw_rules_config *gw_rules_get_config(const GwRules *r)
{
	return &r->cfg;
}

/* ---- pain ---- */

struct match {
	bool valid;
	const char *rule;
	enum gw_rules_tier tier;
	int clear_level;
	struct trig_list tl;
};

static void consider(struct match *best, const struct match *m)
{
	if (!best->valid || m->tier > best->tier)
		*best = *m;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *) a, y = *(const int *) b;

	return (x > y) - (x < y);
}

/* Steps and posture raise a pain.persistent or pain.rise alert one tier
 * (at most one, both together). */
static int activity_raise(const GwRules *r, const struct patient *p, struct trig_list *tl)
{
	const struct gw_rules_config *c = &r->cfg;
	const struct gw_rules_context *x = &p->ctx;
	bool low = false, flexed = false;

	if (x->post_op_day == GW_RULES_NONE)
		return 0;
	if (c->low_steps_floor > 0 && x->post_op_day >= c->low_steps_from_pod &&
	    x->steps_today != GW_RULES_NONE) {
		int64_t best = x->steps_today;

		if (x->steps_yesterday != GW_RULES_NONE && x->steps_yesterday > best)
			best = x->steps_yesterday;
		low = best < c->low_steps_floor;
	}
	if (c->flexed_raise_min_2h > 0 && x->post_op_day >= c->flexed_raise_from_pod &&
	    x->flexed_s_2h != GW_RULES_NONE)
		flexed = x->flexed_s_2h >= (int64_t) c->flexed_raise_min_2h * 60;
	if (!low && !flexed)
		return 0;
	trig_add(tl, "post_op_day", x->post_op_day);
	if (low) {
		trig_add(tl, "low_steps", 1);
		trig_add(tl, "steps_today", (double) x->steps_today);
	}
	if (flexed) {
		trig_add(tl, "long_flexed", 1);
		trig_add(tl, "flexed_s_2h", (double) x->flexed_s_2h);
	}
	return 1;
}

static void pain_evaluate(GwRules *r, struct patient *p, const char *wearable,
			  const struct pain_rec *rep, int64_t now)
{
	const struct gw_rules_config *c = &r->cfg;
	GArray *h = p->pain;
	guint idx = h->len;
	struct match best = { 0 }, m;
	struct gw_rules_alert *touched = NULL;

	while (idx > 0 && g_array_index(h, struct pain_rec, idx - 1).t >= rep->t)
		idx--;
	/* now h[0..idx) are the earlier reports */

	if (rep->flags & (unsigned int) c->red_flag_mask) {
		memset(&m, 0, sizeof(m));
		m.valid = true;
		m.rule = GW_RULE_PAIN_RED_FLAG;
		m.tier = c->red_flag_tier;
		m.clear_level = -1;		/* the clinic resolves red flags */
		trig_add(&m.tl, "score", rep->score);
		trig_add(&m.tl, "red_flags", rep->flags & (unsigned int) c->red_flag_mask);
		trig_add(&m.tl, "flags", rep->flags);
		consider(&best, &m);
	}
	if (rep->score >= c->severe_pain_score) {
		memset(&m, 0, sizeof(m));
		m.valid = true;
		m.rule = GW_RULE_PAIN_SEVERE;
		m.tier = c->severe_tier;
		m.clear_level = c->severe_pain_score - c->pain_clear_margin;
		trig_add(&m.tl, "score", rep->score);
		trig_add(&m.tl, "threshold", c->severe_pain_score);
		consider(&best, &m);
	}
	{
		int64_t from = rep->t - HOUR_US(c->rise_window_h);
		int scores[PAIN_MAX_REPORTS];
		guint n = 0;
		bool by_median = false, by_prev = false;
		double median = 0;
		int prev = 0, threshold = 0;

		for (guint i = 0; i < idx; i++) {
			const struct pain_rec *e = &g_array_index(h, struct pain_rec, i);

			if (e->t >= from && n < PAIN_MAX_REPORTS)
				scores[n++] = e->score;
		}
		if (n > 0)
			prev = scores[n - 1];	/* the newest earlier report in the window */
		if (n >= (guint) c->rise_median_min_reports) {
			qsort(scores, n, sizeof(scores[0]), cmp_int);
			median = n % 2 ? scores[n / 2] : (scores[n / 2 - 1] + scores[n / 2]) / 2.0;
			by_median = rep->score >= c->rise_min_score &&
				rep->score - median >= c->rise_over_median;
		}
		if (n > 0)
			by_prev = rep->score >= c->rise_previous_min_score &&
				rep->score - prev >= c->rise_over_previous;
		if (by_median || by_prev) {
			memset(&m, 0, sizeof(m));
			m.valid = true;
			m.rule = GW_RULE_PAIN_RISE;
			trig_add(&m.tl, "score", rep->score);
			if (by_median) {
				double need = median + c->rise_over_median;

				threshold = (int) need;
				if (threshold < need)
					threshold++;
				if (threshold < c->rise_min_score)
					threshold = c->rise_min_score;
				trig_add(&m.tl, "median_24h", median);
				trig_add(&m.tl, "rise", rep->score - median);
			} else {
				threshold = prev + c->rise_over_previous;
				if (threshold < c->rise_previous_min_score)
					threshold = c->rise_previous_min_score;
				trig_add(&m.tl, "previous", prev);
				trig_add(&m.tl, "rise", rep->score - prev);
			}
			trig_add(&m.tl, "threshold", threshold);
			m.clear_level = threshold - c->pain_clear_margin;
			m.tier = c->rise_tier;
			if (c->one_sided_raises && (rep->flags & GW_RULES_FLAG_ONE_SIDED)) {
				trig_add(&m.tl, "one_sided", 1);
				m.tier = tier_plus(m.tier, 1);
			}
			m.tier = tier_plus(m.tier, activity_raise(r, p, &m.tl));
			consider(&best, &m);
		}
	}
	if (rep->score >= c->moderate_pain_score) {
		int64_t from = rep->t - HOUR_US(c->persistent_window_h);
		int64_t earliest = rep->t;
		unsigned int run = 1;
		bool medication = c->medication_rule && (rep->flags & GW_RULES_FLAG_MEDICATION);

		for (guint i = idx; i > 0; i--) {
			const struct pain_rec *e = &g_array_index(h, struct pain_rec, i - 1);

			if (e->t < from || e->score < c->moderate_pain_score)
				break;
			run++;
			earliest = e->t;
		}
		if (medication || (run >= (unsigned int) c->persistent_reports &&
				   rep->t - earliest >= MIN_US(c->persistent_gap_min))) {
			memset(&m, 0, sizeof(m));
			m.valid = true;
			m.rule = GW_RULE_PAIN_PERSISTENT;
			m.clear_level = c->moderate_pain_score - c->pain_clear_margin;
			trig_add(&m.tl, "score", rep->score);
			trig_add(&m.tl, "threshold", c->moderate_pain_score);
			trig_add(&m.tl, "reports", run);
			trig_add(&m.tl, "span_min", (double) ((rep->t - earliest) / MIN_US(1)));
			trig_add(&m.tl, "medication", medication ? 1 : 0);
			m.tier = tier_plus(c->persistent_tier, activity_raise(r, p, &m.tl));
			consider(&best, &m);
		}
	}

	if (best.valid) {
		touched = find_open(r, best.rule, p->id);
		if (!touched)
			touched = raise_alert(r, best.rule, p->id, wearable, best.tier, &best.tl, now);
		else
			update_alert(r, touched, best.tier, &best.tl, wearable, now);
		touched->trigger_event_us = max64(touched->trigger_event_us, rep->t);
		touched->clear_level = best.clear_level;
		touched->clear_run = 0;
		touched->clear_first_us = GW_RULES_NEVER;
	}

	/* pain settling: the other pain alerts of this patient */
	for (guint i = 0; i < r->alerts->len; i++) {
		struct gw_rules_alert *a = alert_at(r, i);
		enum rule_class cls = CLASS_GATEWAY;

		if (a == touched || a->state == GW_RULES_RESOLVED || a->clear_level < 0 ||
		    !rule_class_of(a->rule, &cls) || cls != CLASS_PAIN ||
		    strcmp(a->patient, p->id) != 0 || rep->t <= a->trigger_event_us)
			continue;
		if (rep->score <= a->clear_level) {
			if (a->clear_run++ == 0)
				a->clear_first_us = rep->t;
		} else {
			a->clear_run = 0;
			a->clear_first_us = GW_RULES_NEVER;
		}
		if (c->pain_auto_resolve && a->state == GW_RULES_ACKNOWLEDGED &&
		    a->clear_run >= (unsigned int) c->pain_clear_reports &&
		    rep->t - a->clear_first_us >= MIN_US(c->pain_clear_quiet_min))
			resolve_auto(r, a, now, "pain_settled");
	}
}

/* Inserts in time order; false if the same report is there. */
static bool pain_insert(struct patient *p, const struct pain_rec *rep)
{
	GArray *h = p->pain;
	guint i = h->len;
	int64_t newest;

	while (i > 0 && g_array_index(h, struct pain_rec, i - 1).t > rep->t)
		i--;
	for (guint j = i; j > 0 && g_array_index(h, struct pain_rec, j - 1).t == rep->t; j--) {
		const struct pain_rec *e = &g_array_index(h, struct pain_rec, j - 1);

		if (e->score == rep->score && e->flags == rep->flags)
			return false;
	}
	g_array_insert_val(h, i, *rep);
	newest = g_array_index(h, struct pain_rec, h->len - 1).t;
	i = 0;
	while (i < h->len && (g_array_index(h, struct pain_rec, i).t < newest - PAIN_HORIZON_US ||
			      h->len - i > PAIN_MAX_REPORTS))
		i++;
	if (i > 0)
		g_array_remove_range(h, 0, i);
	return true;
}

static bool pain_args_ok(const char *patient, int score, unsigned int flags)
{
	return valid_id(patient) && score >= 0 && score <= 10 && !(flags & ~GW_RULES_FLAGS_KNOWN);
}

enum gw_rules_result gw_rules_pain(GwRules *r, const char *patient, const char *wearable,
				   int64_t event_us, int score, unsigned int flags,
				   int64_t now_us)
{
	struct pain_rec rep = { event_us, score, flags };
	struct patient *p;
	enum gw_rules_result res = GW_RULES_OK;

	if (!pain_args_ok(patient, score, flags) || (wearable && *wearable && !valid_id(wearable)) ||
	    event_us == GW_RULES_NEVER)
		return GW_RULES_INVALID;
	enter(r, now_us);
	p = get_patient(r, patient);
	if (!p) {
		res = GW_RULES_INVALID;
	} else if (!pain_insert(p, &rep)) {
		res = GW_RULES_NOOP;
	} else {
		/* in the history first, so that a notification's pain_24h has it */
		pain_evaluate(r, p, wearable, &rep, now_us);
		process(r, now_us);
	}
	leave(r);
	return res;
}

enum gw_rules_result gw_rules_pain_load(GwRules *r, const char *patient, int64_t event_us,
					int score, unsigned int flags)
{
	struct pain_rec rep = { event_us, score, flags };
	struct patient *p;

	if (!pain_args_ok(patient, score, flags) || event_us == GW_RULES_NEVER)
		return GW_RULES_INVALID;
	p = get_patient(r, patient);
	if (!p)
		return GW_RULES_INVALID;
	return pain_insert(p, &rep) ? GW_RULES_OK : GW_RULES_NOOP;
}

void gw_rules_context_init(struct gw_rules_context *ctx)
{
	ctx->flexed_s_2h = GW_RULES_NONE;
	ctx->steps_today = GW_RULES_NONE;
	ctx->steps_yesterday = GW_RULES_NONE;
	ctx->post_op_day = GW_RULES_NONE;
}

enum gw_rules_result gw_rules_context_set(GwRules *r, const char *patient,
					  const struct gw_rules_context *ctx)
{
	struct patient *p;

	if (!ctx || (ctx->flexed_s_2h < 0 && ctx->flexed_s_2h != GW_RULES_NONE) ||
	    ctx->flexed_s_2h > 7200 ||
	    (ctx->steps_today < 0 && ctx->steps_today != GW_RULES_NONE) ||
	    (ctx->steps_yesterday < 0 && ctx->steps_yesterday != GW_RULES_NONE) ||
	    (ctx->post_op_day < 0 && ctx->post_op_day != GW_RULES_NONE))
		return GW_RULES_INVALID;
	p = get_patient(r, patient);
	if (!p)
		return GW_RULES_INVALID;
	p->ctx = *ctx;
	return GW_RULES_OK;
}

/* ---- wearables and the gateway ---- */

enum gw_rules_result gw_rules_wearable_add(GwRules *r, const char *wearable,
					   const char *patient, int64_t now_us)
{
	struct wearable *w;

	if (!valid_id(wearable) || (patient && *patient && !valid_id(patient)))
		return GW_RULES_INVALID;
	w = find_wearable(r, wearable);
	if (w) {
		g_strlcpy(w->patient, patient ? patient : "", sizeof(w->patient));
		return GW_RULES_NOOP;
	}
	if (r->wearables->len >= GW_RULES_MAX_WEARABLES)
		return GW_RULES_INVALID;
	enter(r, now_us);
	w = g_new0(struct wearable, 1);
	g_strlcpy(w->id, wearable, sizeof(w->id));
	g_strlcpy(w->patient, patient ? patient : "", sizeof(w->patient));
	w->last_rx = now_us;
	w->newest_event = GW_RULES_NEVER;
	w->battery = GW_RULES_NONE;
	g_ptr_array_add(r->wearables, w);
	process(r, now_us);
	leave(r);
	return GW_RULES_OK;
}

enum gw_rules_result gw_rules_wearable_remove(GwRules *r, const char *wearable, int64_t now_us)
{
	struct wearable *w = find_wearable(r, wearable);

	if (!w)
		return GW_RULES_INVALID;
	enter(r, now_us);
	tech_clear(r, GW_RULE_WEARABLE_NO_DATA, w->id, now_us);
	tech_clear(r, GW_RULE_WEARABLE_BATTERY, w->id, now_us);
	g_ptr_array_remove(r->wearables, w);
	process(r, now_us);
	leave(r);
	return GW_RULES_OK;
}

enum gw_rules_result gw_rules_wearable_data(GwRules *r, const char *wearable,
					    int64_t event_us, int64_t now_us)
{
	struct wearable *w = find_wearable(r, wearable);

	if (!w)
		return GW_RULES_INVALID;
	enter(r, now_us);
	w->last_rx = now_us;
	if (event_us != GW_RULES_NEVER)
		w->newest_event = max64(w->newest_event, event_us);
	w->no_data_fired = false;
	tech_clear(r, GW_RULE_WEARABLE_NO_DATA, w->id, now_us);
	process(r, now_us);
	leave(r);
	return GW_RULES_OK;
}

enum gw_rules_result gw_rules_wearable_battery(GwRules *r, const char *wearable,
					       int pct, int64_t now_us)
{
	struct wearable *w = find_wearable(r, wearable);
	const struct gw_rules_config *c = &r->cfg;

	if (!w || pct < 0 || pct > 100)
		return GW_RULES_INVALID;
	enter(r, now_us);
	w->battery = pct;
	if (pct <= c->battery_low_pct) {
		if (!w->battery_fired) {
			struct trig_list tl = { .n = 0 };

			w->battery_fired = true;
			trig_add(&tl, "battery_pct", pct);
			trig_add(&tl, "threshold", c->battery_low_pct);
			tech_active(r, GW_RULE_WEARABLE_BATTERY, w->patient, w->id,
				    c->battery_tier, &tl, now_us);
		} else {
			tech_unclear(r, GW_RULE_WEARABLE_BATTERY, w->id);
		}
	} else {
		w->battery_fired = false;
		tech_clear(r, GW_RULE_WEARABLE_BATTERY, w->id, now_us);
	}
	process(r, now_us);
	leave(r);
	return GW_RULES_OK;
}

/* broker and clock: raised in check_conditions after their delay */
static void timed_condition(GwRules *r, struct cond *cd, const char *rule, bool active,
			    int64_t now)
{
	if (active) {
		if (!cd->active) {
			cd->active = true;
			cd->since = now;
			cd->fired = false;
		}
		tech_unclear(r, rule, "");
	} else {
		cd->active = false;
		cd->fired = false;
		cd->since = GW_RULES_NEVER;
		tech_clear(r, rule, "", now);
	}
}

void gw_rules_broker(GwRules *r, bool connected, int64_t now_us)
{
	enter(r, now_us);
	timed_condition(r, &r->broker, GW_RULE_BROKER_DOWN, !connected, now_us);
	process(r, now_us);
	leave(r);
}

void gw_rules_clock(GwRules *r, bool synced, int64_t now_us)
{
	enter(r, now_us);
	timed_condition(r, &r->clock, GW_RULE_CLOCK_UNSYNCED, !synced, now_us);
	process(r, now_us);
	leave(r);
}

void gw_rules_clock_step(GwRules *r, int64_t delta_us, int64_t now_us)
{
	r->depth++;
	shift_all(r, delta_us);
	r->last_now = now_us;
	process(r, now_us);
	leave(r);
}

void gw_rules_store_usage(GwRules *r, int pct, int64_t now_us)
{
	const struct gw_rules_config *c = &r->cfg;

	if (pct < 0)
		pct = 0;
	if (pct > 100)
		pct = 100;
	enter(r, now_us);
	if (pct >= c->store_full_pct) {
		if (!r->store.fired) {
			struct trig_list tl = { .n = 0 };

			r->store.active = r->store.fired = true;
			r->store.since = now_us;
			trig_add(&tl, "store_pct", pct);
			trig_add(&tl, "threshold", c->store_full_pct);
			tech_active(r, GW_RULE_STORE_FULL, "", "", c->store_tier, &tl, now_us);
		} else {
			tech_unclear(r, GW_RULE_STORE_FULL, "");
		}
	} else {
		r->store.active = r->store.fired = false;
		r->store.since = GW_RULES_NEVER;
		tech_clear(r, GW_RULE_STORE_FULL, "", now_us);
	}
	process(r, now_us);
	leave(r);
}

void gw_rules_store_corrupt(GwRules *r, int64_t now_us)
{
	enter(r, now_us);
	if (!find_open(r, GW_RULE_STORE_CORRUPT, "")) {
		struct trig_list tl = { .n = 0 };

		trig_add(&tl, "corrupt", 1);
		raise_alert(r, GW_RULE_STORE_CORRUPT, "", "", r->cfg.store_corrupt_tier, &tl, now_us);
	}
	process(r, now_us);
	leave(r);
}

/* ---- the clinic ---- */

enum gw_rules_result gw_rules_test_alert(GwRules *r, int64_t now_us, char *ret_id)
{
	struct trig_list tl = { .n = 0 };
	struct gw_rules_alert *a;

	enter(r, now_us);
	trig_add(&tl, "test", 1);
	a = find_open(r, GW_RULE_TEST, "");
	if (a) {
		set_triggers(a, &tl);
		notify(r, a, GW_RULES_EV_UPDATED, now_us, "by=technician");
	} else {
		a = raise_alert(r, GW_RULE_TEST, "", "", GW_RULES_INFORMATIONAL, &tl, now_us);
	}
	a->clear_since_us = now_us;
	g_strlcpy(ret_id, a->alert_id, GW_RULES_ID_MAX);
	leave(r);
	return GW_RULES_OK;
}

enum gw_rules_result gw_rules_ack(GwRules *r, const char *alert_id,
				  enum gw_rules_ack_action action, const char *by,
				  int64_t at_us, const char *note, int64_t now_us)
{
	struct gw_rules_alert *a;

	if (!alert_id || !valid_id(by) || !valid_note(note) ||
	    (action != GW_RULES_ACK_ACKNOWLEDGE && action != GW_RULES_ACK_RESOLVE))
		return GW_RULES_INVALID;
	a = find_alert(r, alert_id);
	if (!a)
		return GW_RULES_UNKNOWN_ALERT;
	if (a->state == GW_RULES_RESOLVED)
		return action == GW_RULES_ACK_RESOLVE ? GW_RULES_NOOP : GW_RULES_ALREADY_RESOLVED;
	if (action == GW_RULES_ACK_ACKNOWLEDGE && a->state == GW_RULES_ACKNOWLEDGED)
		return GW_RULES_NOOP;

	enter(r, now_us);
	{
		gchar *extra = g_strdup_printf("by=%s note=%s", by, note ? "yes" : "no");

		a->has_ack = true;
		g_strlcpy(a->ack_by, by, sizeof(a->ack_by));
		a->ack_at_us = at_us;
		a->has_note = note != NULL;
		g_strlcpy(a->ack_note, note ? note : "", sizeof(a->ack_note));
		if (action == GW_RULES_ACK_ACKNOWLEDGE) {
			a->state = GW_RULES_ACKNOWLEDGED;
			notify(r, a, GW_RULES_EV_ACKNOWLEDGED, now_us, extra);
		} else {
			a->state = GW_RULES_RESOLVED;
			a->resolved_by_clinic = true;
			a->resolved_at_us = now_us;
			notify(r, a, GW_RULES_EV_RESOLVED, now_us, extra);
		}
		g_free(extra);
	}
	process(r, now_us);
	leave(r);
	return GW_RULES_OK;
}

enum gw_rules_result gw_rules_delivered(GwRules *r, const char *alert_id,
					uint32_t notification, int64_t now_us)
{
	struct gw_rules_alert *a = find_alert(r, alert_id);

	if (!a)
		return GW_RULES_UNKNOWN_ALERT;
	if (notification == 0 || notification > a->notification)
		return GW_RULES_INVALID;
	if (notification <= a->delivered)
		return GW_RULES_NOOP;
	enter(r, now_us);
	{
		gchar *extra = g_strdup_printf("delivered=%u", notification);

		a->delivered = notification;
		if (a->delivered >= a->notification)
			a->undelivered_since_us = GW_RULES_NEVER;
		queue_event(r, a, GW_RULES_EV_DELIVERED, false, now_us, extra);
		g_free(extra);
	}
	process(r, now_us);
	leave(r);
	return GW_RULES_OK;
}

enum gw_rules_result gw_rules_fallback_result(GwRules *r, const char *alert_id,
					      int status, int64_t now_us)
{
	struct gw_rules_alert *a = find_alert(r, alert_id);

	if (!a)
		return GW_RULES_UNKNOWN_ALERT;
	if (a->fallback_runs == 0)
		return GW_RULES_INVALID;
	enter(r, now_us);
	{
		gchar *extra = g_strdup_printf("status=%d run=%u", status, a->fallback_runs);

		a->fallback_have_result = true;
		a->fallback_status = status;
		queue_event(r, a, GW_RULES_EV_FALLBACK_RESULT, false, now_us, extra);
		g_free(extra);
	}
	process(r, now_us);
	leave(r);
	return GW_RULES_OK;
}

/* ---- time ---- */

/* everything due at now: inputs run it too, so "at once" is at once */
static void process(GwRules *r, int64_t now_us)
{
	const struct gw_rules_config *c = &r->cfg;

	for (guint i = 0; i < r->alerts->len;) {
		struct gw_rules_alert *a = alert_at(r, i);

		if (a->state == GW_RULES_RESOLVED &&
		    now_us >= after(a->resolved_at_us, HOUR_US(c->resolved_keep_h)))
			g_ptr_array_remove_index(r->alerts, i);
		else
			i++;
	}
	check_conditions(r, now_us);
	for (guint i = 0; i < r->alerts->len; i++) {
		struct gw_rules_alert *a = alert_at(r, i);
		const char *reason = NULL;

		if (a->state == GW_RULES_RESOLVED)
			continue;
		if (tech_resolve_due(r, a) <= now_us) {
			resolve_auto(r, a, now_us, "condition_cleared");
			continue;
		}
		if (renotify_due(r, a) <= now_us) {
			int k = tier_up_after(c, a->tier);
			gchar *extra;

			a->last_escalation_us = now_us;
			if (a->tier < GW_RULES_EMERGENCY && k > 0 &&
			    a->renotify_count + 1 >= (unsigned int) k) {
				extra = g_strdup_printf("from=%s", gw_rules_tier_name(a->tier));
				a->tier = tier_plus(a->tier, 1);
				a->tier_since_us = now_us;
				a->renotify_count = 0;
				notify(r, a, GW_RULES_EV_TIER_UP, now_us, extra);
			} else {
				a->renotify_count++;
				extra = g_strdup_printf("renotify=%u", a->renotify_count);
				notify(r, a, GW_RULES_EV_RENOTIFIED, now_us, extra);
			}
			g_free(extra);
		}
		if (update_due(r, a) <= now_us)
			notify(r, a, GW_RULES_EV_UPDATED, now_us, NULL);
		if (fallback_due(r, a, &reason) <= now_us) {
			gchar *extra;

			a->fallback_runs++;
			a->fallback_last_us = now_us;
			a->fallback_have_result = false;
			extra = g_strdup_printf("reason=%s run=%u", reason, a->fallback_runs);
			queue_event(r, a, GW_RULES_EV_FALLBACK_STARTED, false, now_us, extra);
			g_free(extra);
		}
	}
}

void gw_rules_tick(GwRules *r, int64_t now_us)
{
	enter(r, now_us);
	process(r, now_us);
	leave(r);
}

int64_t gw_rules_next_deadline(const GwRules *r)
{
	int64_t d = conditions_deadline(r);

	for (guint i = 0; i < r->alerts->len; i++)
		d = min64(d, alert_deadline(r, alert_at(r, i)));
	return d;
}

/* ---- the alerts held ---- */

guint gw_rules_n_alerts(const GwRules *r)
{
	return r->alerts->len;
}

const struct gw_rules_alert *gw_rules_alert_nth(const GwRules *r, guint i)
{
	return i < r->alerts->len ? alert_at(r, i) : NULL;
}

const struct gw_rules_alert *gw_rules_find(const GwRules *r, const char *alert_id)
{
	return find_alert(r, alert_id);
}

const struct gw_rules_alert *gw_rules_find_open(const GwRules *r, const char *rule,
						const char *subject)
{
	return rule ? find_open(r, rule, subject) : NULL;
}

static bool str_ok(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static gboolean check_alert(const struct gw_rules_alert *a, GError **error)
{
	enum rule_class cls;
	const char *what = NULL;

	if (!str_ok(a->alert_id, sizeof(a->alert_id)) ||
	    !valid_alert_id(a->alert_id, sizeof(a->alert_id)))
		what = "alert_id";
	else if (!str_ok(a->rule, sizeof(a->rule)) || !rule_class_of(a->rule, &cls))
		what = "rule";
	else if (!str_ok(a->patient, sizeof(a->patient)) ||
		 (a->patient[0] && !valid_id(a->patient)) ||
		 (cls == CLASS_PAIN && !a->patient[0]))
		what = "patient";
	else if (!str_ok(a->wearable, sizeof(a->wearable)) ||
		 (a->wearable[0] && !valid_id(a->wearable)) ||
		 (cls == CLASS_WEARABLE && !a->wearable[0]))
		what = "wearable";
	else if ((unsigned int) a->tier >= GW_RULES_TIER_COUNT)
		what = "tier";
	else if ((unsigned int) a->state > GW_RULES_RESOLVED)
		what = "state";
	else if (a->notification < 1)
		what = "notification";
	else if (a->n_trigger < 1 || a->n_trigger > GW_RULES_MAX_TRIGGERS)
		what = "trigger";
	else if (a->context.n_pain_24h > GW_RULES_MAX_PAIN_POINTS)
		what = "context";
	else if (!str_ok(a->ack_by, sizeof(a->ack_by)) ||
		 (a->has_ack && !valid_id(a->ack_by)))
		what = "ack_by";
	else if (!str_ok(a->ack_note, sizeof(a->ack_note)) || !valid_note(a->ack_note))
		what = "ack_note";
	else if (a->state == GW_RULES_ACKNOWLEDGED && !a->has_ack)
		what = "has_ack";
	else if (a->delivered > a->notification)
		what = "delivered";
	else if (a->raised_at_us == GW_RULES_NEVER || a->last_notify_us == GW_RULES_NEVER ||
		 a->last_escalation_us == GW_RULES_NEVER || a->tier_since_us == GW_RULES_NEVER)
		what = "times";
	else if (a->state == GW_RULES_RESOLVED && a->resolved_at_us == GW_RULES_NEVER)
		what = "resolved_at";
	for (unsigned int i = 0; !what && i < a->n_trigger; i++)
		if (!str_ok(a->trigger[i].name, sizeof(a->trigger[i].name)) ||
		    !a->trigger[i].name[0])
			what = "trigger";
	if (what) {
		g_set_error(error, GW_RULES_ERROR, GW_RULES_ERROR_RESTORE, "alert: bad %s", what);
		return FALSE;
	}
	return TRUE;
}

gboolean gw_rules_restore(GwRules *r, const struct gw_rules_alert *a, int64_t now_us,
			  GError **error)
{
	struct gw_rules_alert *n;

	if (!check_alert(a, error))
		return FALSE;
	if (find_alert(r, a->alert_id)) {
		g_set_error(error, GW_RULES_ERROR, GW_RULES_ERROR_RESTORE,
			    "alert %s: already held", a->alert_id);
		return FALSE;
	}
	if (a->state != GW_RULES_RESOLVED && find_open(r, a->rule, alert_subject(a))) {
		g_set_error(error, GW_RULES_ERROR, GW_RULES_ERROR_RESTORE,
			    "alert %s: another %s alert is open for the same subject",
			    a->alert_id, a->rule);
		return FALSE;
	}
	n = g_new(struct gw_rules_alert, 1);
	*n = *a;
	/* a time ahead of now (the clock was ahead when it was stored) would
	 * hold a timer back: take it as now */
	n->last_notify_us = min64(n->last_notify_us, now_us);
	n->last_escalation_us = min64(n->last_escalation_us, now_us);
	n->tier_since_us = min64(n->tier_since_us, now_us);
	if (n->undelivered_since_us != GW_RULES_NEVER)
		n->undelivered_since_us = min64(n->undelivered_since_us, now_us);
	if (n->clear_since_us != GW_RULES_NEVER)
		n->clear_since_us = min64(n->clear_since_us, now_us);
	if (n->fallback_last_us != GW_RULES_NEVER)
		n->fallback_last_us = min64(n->fallback_last_us, now_us);
	if (n->resolved_at_us != GW_RULES_NEVER)
		n->resolved_at_us = min64(n->resolved_at_us, now_us);
	g_ptr_array_add(r->alerts, n);
	if (r->last_now == GW_RULES_NEVER || now_us > r->last_now)
		r->last_now = now_us;
	return TRUE;
}

/* ---- serialisation ---- */

#define SER_VERSION 1u

GVariant *gw_rules_alert_serialize(const struct gw_rules_alert *a)
{
	GVariantBuilder b, t, p;
	const struct gw_rules_alert_context *c = &a->context;

	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_init(&t, G_VARIANT_TYPE("a(sd)"));
	for (unsigned int i = 0; i < a->n_trigger && i < GW_RULES_MAX_TRIGGERS; i++)
		g_variant_builder_add(&t, "(sd)", a->trigger[i].name, a->trigger[i].value);
	g_variant_builder_init(&p, G_VARIANT_TYPE("a(xi)"));
	for (unsigned int i = 0; i < c->n_pain_24h && i < GW_RULES_MAX_PAIN_POINTS; i++)
		g_variant_builder_add(&p, "(xi)", (gint64) c->pain_24h[i].time_us,
				      (gint32) c->pain_24h[i].score);

#define PUT(k, fmt, v) g_variant_builder_add(&b, "{sv}", k, g_variant_new(fmt, v))
	PUT("version", "u", (guint32) SER_VERSION);
	PUT("alert_id", "s", a->alert_id);
	PUT("rule", "s", a->rule);
	PUT("patient", "s", a->patient);
	PUT("wearable", "s", a->wearable);
	PUT("tier", "s", gw_rules_tier_name(a->tier));
	PUT("state", "s", gw_rules_state_name(a->state));
	PUT("notification", "u", (guint32) a->notification);
	PUT("raised_at", "x", (gint64) a->raised_at_us);
	g_variant_builder_add(&b, "{sv}", "trigger", g_variant_builder_end(&t));
	g_variant_builder_add(&b, "{sv}", "pain_24h", g_variant_builder_end(&p));
	PUT("flexed_s_2h", "x", (gint64) c->flexed_s_2h);
	PUT("steps_today", "x", (gint64) c->steps_today);
	PUT("steps_yesterday", "x", (gint64) c->steps_yesterday);
	PUT("battery_pct", "i", (gint32) c->battery_pct);
	PUT("data_age_s", "x", (gint64) c->data_age_s);
	PUT("has_ack", "b", (gboolean) a->has_ack);
	PUT("ack_by", "s", a->ack_by);
	PUT("ack_at", "x", (gint64) a->ack_at_us);
	PUT("has_note", "b", (gboolean) a->has_note);
	PUT("ack_note", "s", a->ack_note);
	PUT("resolved_by_clinic", "b", (gboolean) a->resolved_by_clinic);
	PUT("resolved_at", "x", (gint64) a->resolved_at_us);
	PUT("fallback_runs", "u", (guint32) a->fallback_runs);
	PUT("fallback_last", "x", (gint64) a->fallback_last_us);
	PUT("fallback_have_result", "b", (gboolean) a->fallback_have_result);
	PUT("fallback_status", "i", (gint32) a->fallback_status);
	PUT("last_notify", "x", (gint64) a->last_notify_us);
	PUT("last_escalation", "x", (gint64) a->last_escalation_us);
	PUT("tier_since", "x", (gint64) a->tier_since_us);
	PUT("renotify_count", "u", (guint32) a->renotify_count);
	PUT("update_pending", "b", (gboolean) a->update_pending);
	PUT("delivered", "u", (guint32) a->delivered);
	PUT("undelivered_since", "x", (gint64) a->undelivered_since_us);
	PUT("trigger_event", "x", (gint64) a->trigger_event_us);
	PUT("clear_level", "i", (gint32) a->clear_level);
	PUT("clear_run", "u", (guint32) a->clear_run);
	PUT("clear_first", "x", (gint64) a->clear_first_us);
	PUT("clear_since", "x", (gint64) a->clear_since_us);
#undef PUT
	return g_variant_ref_sink(g_variant_builder_end(&b));
}

struct reader {
	GVariant *v;
	const char *bad;	/* the first member missing or of the wrong type */
};

static GVariant *get(struct reader *rd, const char *key, const char *type)
{
	GVariant *x;

	if (rd->bad)
		return NULL;
	x = g_variant_lookup_value(rd->v, key, G_VARIANT_TYPE(type));
	if (!x)
		rd->bad = key;
	return x;
}

static void get_s(struct reader *rd, const char *key, char *buf, size_t size)
{
	GVariant *x = get(rd, key, "s");
	gsize len = 0;
	const char *s;

	buf[0] = '\0';
	if (!x)
		return;
	s = g_variant_get_string(x, &len);
	if (len >= size)
		rd->bad = key;
	else
		memcpy(buf, s, len + 1);
	g_variant_unref(x);
}

static int64_t get_x(struct reader *rd, const char *key)
{
	GVariant *x = get(rd, key, "x");
	int64_t v = 0;

	if (x) {
		v = g_variant_get_int64(x);
		g_variant_unref(x);
	}
	return v;
}

static uint32_t get_u(struct reader *rd, const char *key)
{
	GVariant *x = get(rd, key, "u");
	uint32_t v = 0;

	if (x) {
		v = g_variant_get_uint32(x);
		g_variant_unref(x);
	}
	return v;
}

static int get_i(struct reader *rd, const char *key)
{
	GVariant *x = get(rd, key, "i");
	int v = 0;

	if (x) {
		v = g_variant_get_int32(x);
		g_variant_unref(x);
	}
	return v;
}

static bool get_b(struct reader *rd, const char *key)
{
	GVariant *x = get(rd, key, "b");
	bool v = false;

	if (x) {
		v = g_variant_get_boolean(x);
		g_variant_unref(x);
	}
	return v;
}

gboolean gw_rules_alert_deserialize(GVariant *v, struct gw_rules_alert *ret, GError **error)
{
	struct reader rd = { v, NULL };
	struct gw_rules_alert a;
	char tier[16], state[16];
	GVariant *x;

	if (!v || !g_variant_is_of_type(v, G_VARIANT_TYPE_VARDICT)) {
		g_set_error(error, GW_RULES_ERROR, GW_RULES_ERROR_RESTORE, "alert: not an a{sv}");
		return FALSE;
	}
	if (get_u(&rd, "version") != SER_VERSION && !rd.bad) {
		g_set_error(error, GW_RULES_ERROR, GW_RULES_ERROR_RESTORE,
			    "alert: unknown version");
		return FALSE;
	}
	alert_init(&a);
	get_s(&rd, "alert_id", a.alert_id, sizeof(a.alert_id));
	get_s(&rd, "rule", a.rule, sizeof(a.rule));
	get_s(&rd, "patient", a.patient, sizeof(a.patient));
	get_s(&rd, "wearable", a.wearable, sizeof(a.wearable));
	get_s(&rd, "tier", tier, sizeof(tier));
	if (!rd.bad && !gw_rules_tier_parse(tier, &a.tier))
		rd.bad = "tier";
	get_s(&rd, "state", state, sizeof(state));
	if (!rd.bad) {
		if (strcmp(state, "open") == 0)
			a.state = GW_RULES_OPEN;
		else if (strcmp(state, "acknowledged") == 0)
			a.state = GW_RULES_ACKNOWLEDGED;
		else if (strcmp(state, "resolved") == 0)
			a.state = GW_RULES_RESOLVED;
		else
			rd.bad = "state";
	}
	a.notification = get_u(&rd, "notification");
	a.raised_at_us = get_x(&rd, "raised_at");
	x = get(&rd, "trigger", "a(sd)");
	if (x) {
		gsize n = g_variant_n_children(x);

		if (n > GW_RULES_MAX_TRIGGERS) {
			rd.bad = "trigger";
		} else {
			for (gsize i = 0; i < n; i++) {
				const char *name;
				double value;

				g_variant_get_child(x, i, "(&sd)", &name, &value);
				if (strlen(name) >= sizeof(a.trigger[i].name)) {
					rd.bad = "trigger";
					break;
				}
				g_strlcpy(a.trigger[i].name, name, sizeof(a.trigger[i].name));
				a.trigger[i].value = value;
			}
			a.n_trigger = (unsigned int) n;
		}
		g_variant_unref(x);
	}
	x = get(&rd, "pain_24h", "a(xi)");
	if (x) {
		gsize n = g_variant_n_children(x);

		if (n > GW_RULES_MAX_PAIN_POINTS) {
			rd.bad = "pain_24h";
		} else {
			for (gsize i = 0; i < n; i++) {
				gint64 t;
				gint32 s;

				g_variant_get_child(x, i, "(xi)", &t, &s);
				a.context.pain_24h[i].time_us = t;
				a.context.pain_24h[i].score = s;
			}
			a.context.n_pain_24h = (unsigned int) n;
		}
		g_variant_unref(x);
	}
	a.context.flexed_s_2h = get_x(&rd, "flexed_s_2h");
	a.context.steps_today = get_x(&rd, "steps_today");
	a.context.steps_yesterday = get_x(&rd, "steps_yesterday");
	a.context.battery_pct = get_i(&rd, "battery_pct");
	a.context.data_age_s = get_x(&rd, "data_age_s");
	a.has_ack = get_b(&rd, "has_ack");
	get_s(&rd, "ack_by", a.ack_by, sizeof(a.ack_by));
	a.ack_at_us = get_x(&rd, "ack_at");
	a.has_note = get_b(&rd, "has_note");
	get_s(&rd, "ack_note", a.ack_note, sizeof(a.ack_note));
	a.resolved_by_clinic = get_b(&rd, "resolved_by_clinic");
	a.resolved_at_us = get_x(&rd, "resolved_at");
	a.fallback_runs = get_u(&rd, "fallback_runs");
	a.fallback_last_us = get_x(&rd, "fallback_last");
	a.fallback_have_result = get_b(&rd, "fallback_have_result");
	a.fallback_status = get_i(&rd, "fallback_status");
	a.last_notify_us = get_x(&rd, "last_notify");
	a.last_escalation_us = get_x(&rd, "last_escalation");
	a.tier_since_us = get_x(&rd, "tier_since");
	a.renotify_count = get_u(&rd, "renotify_count");
	a.update_pending = get_b(&rd, "update_pending");
	a.delivered = get_u(&rd, "delivered");
	a.undelivered_since_us = get_x(&rd, "undelivered_since");
	a.trigger_event_us = get_x(&rd, "trigger_event");
	a.clear_level = get_i(&rd, "clear_level");
	a.clear_run = get_u(&rd, "clear_run");
	a.clear_first_us = get_x(&rd, "clear_first");
	a.clear_since_us = get_x(&rd, "clear_since");
	if (rd.bad) {
		g_set_error(error, GW_RULES_ERROR, GW_RULES_ERROR_RESTORE,
			    "alert: %s missing or of the wrong type or size", rd.bad);
		return FALSE;
	}
	if (!check_alert(&a, error))
		return FALSE;
	*ret = a;
	return TRUE;
}
