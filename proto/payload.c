// SPDX-License-Identifier: MIT
/*
 * rehablink MQTT payloads (docs/protocol.md section 2). See payload.h.
 *
 * Builders validate their whole input first, then emit with JsonBuilder in
 * a fixed member order. Parsers run a strict RFC 8259 syntax check over the
 * raw bytes before json-glib sees them, then walk the tree member by member.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "payload.h"

G_DEFINE_QUARK(rl-payload-error-quark, rl_payload_error)

/* Nesting deeper than this is never one of our kinds. */
#define JSON_MAX_DEPTH	8
#define MAX_SAFE_INT	INT64_C(9007199254740992)	/* 2^53 */

/* ---- names --------------------------------------------------------------- */

const char *rl_payload_error_code_name(enum rl_payload_error_code code)
{
	switch (code) {
	case RL_PAYLOAD_ERROR_BAD_JSON:
		return "bad_json";
	case RL_PAYLOAD_ERROR_BAD_SCHEMA:
		return "bad_schema";
	case RL_PAYLOAD_ERROR_BAD_VALUE:
		return "bad_value";
	case RL_PAYLOAD_ERROR_UNKNOWN_ALERT:
		return "unknown_alert";
	case RL_PAYLOAD_ERROR_BAD_TOPIC:
		return "bad_topic";
	case RL_PAYLOAD_ERROR_INVALID:
		return NULL;
	}
	return NULL;
}

const char *rl_time_quality_name(enum rl_time_quality q)
{
	switch (q) {
	case RL_TIME_UNSYNCED:
		return "unsynced";
	case RL_TIME_SYNCED:
		return "synced";
	case RL_TIME_HOLDOVER:
		return "holdover";
	case RL_TIME_ESTIMATED:
		return "estimated";
	}
	return NULL;
}

static const char *gateway_state_name(enum rl_gateway_state s)
{
	switch (s) {
	case RL_GATEWAY_ONLINE:
		return "online";
	case RL_GATEWAY_OFFLINE:
		return "offline";
	}
	return NULL;
}

const char *rl_link_state_name(enum rl_link_state s)
{
	switch (s) {
	case RL_LINK_CONNECTED:
		return "connected";
	case RL_LINK_SYNCING:
		return "syncing";
	case RL_LINK_LIVE:
		return "live";
	case RL_LINK_DISCONNECTED:
		return "disconnected";
	case RL_LINK_NEEDS_REPAIR:
		return "needs-repair";
	}
	return NULL;
}

const char *rl_pain_flag_name(unsigned int flag)
{
	switch (flag) {
	case RL_PAIN_BREATHLESSNESS:
		return "breathlessness";
	case RL_PAIN_CHEST_PAIN:
		return "chest_pain";
	case RL_PAIN_CALF_PAIN_SWELLING:
		return "calf_pain_swelling";
	case RL_PAIN_FEVER:
		return "fever";
	case RL_PAIN_BLEEDING:
		return "bleeding";
	case RL_PAIN_MEDICATION_TAKEN:
		return "medication_taken";
	case RL_PAIN_ONE_SIDED:
		return "one_sided";
	default:	/* not an enum switch: any unsigned value may come in */
		return NULL;
	}
}

const char *rl_alert_tier_name(enum rl_alert_tier t)
{
	switch (t) {
	case RL_ALERT_INFORMATIONAL:
		return "informational";
	case RL_ALERT_ROUTINE:
		return "routine";
	case RL_ALERT_URGENT:
		return "urgent";
	case RL_ALERT_EMERGENCY:
		return "emergency";
	}
	return NULL;
}

const char *rl_alert_state_name(enum rl_alert_state s)
{
	switch (s) {
	case RL_ALERT_OPEN:
		return "open";
	case RL_ALERT_ACKNOWLEDGED:
		return "acknowledged";
	case RL_ALERT_RESOLVED:
		return "resolved";
	}
	return NULL;
}

const char *rl_ack_action_name(enum rl_ack_action a)
{
	switch (a) {
	case RL_ACK_ACKNOWLEDGE:
		return "acknowledge";
	case RL_ACK_RESOLVE:
		return "resolve";
	}
	return NULL;
}

/* ---- strict JSON syntax check (defined below) ---------------------------- */

struct lex {
	const char *p;
	size_t len;
	size_t pos;
	const char *err;	/* static reason */
	enum rl_payload_error_code code;
};

/* true if lx->p[0..len) is one strict JSON value, else lx->err says why
 * and lx->pos where */
static bool lex_document(struct lex *lx);

/* ---- syntax helpers ------------------------------------------------------ */

enum {
	CH_LOWER = 1 << 0,
	CH_UPPER = 1 << 1,
	CH_DIGIT = 1 << 2,
};

/* s is 1..max bytes, each of the classes or in extra. */
static bool syntax_ok(const char *s, size_t max, unsigned int classes,
		      const char *extra)
{
	size_t n;

	if (!s)
		return false;
	n = strnlen(s, max + 1);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if ((classes & CH_LOWER) && c >= 'a' && c <= 'z')
			continue;
		if ((classes & CH_UPPER) && c >= 'A' && c <= 'Z')
			continue;
		if ((classes & CH_DIGIT) && c >= '0' && c <= '9')
			continue;
		if (strchr(extra, c))	/* c is not NUL here */
			continue;
		return false;
	}
	return true;
}

static bool token_ok(const char *s)
{
	return syntax_ok(s, RL_TOKEN_MAX, CH_LOWER | CH_UPPER | CH_DIGIT, "_.:-");
}

/* Doubles on the wire: 0, or a magnitude in [RL_NUMBER_MIN, RL_NUMBER_MAX].
 * In that range json-glib prints them without an exponent, always valid. */
static bool number_ok(double d)
{
	double a = d < 0 ? -d : d;

	return d == 0 || (a >= RL_NUMBER_MIN && a <= RL_NUMBER_MAX);
}

static bool id_ok(const char *s)
{
	return rl_topic_id_validate(s) == 0;
}

int rl_payload_uuid_validate(const char *s)
{
	if (!s || strnlen(s, RL_UUID_LEN + 1) != RL_UUID_LEN)
		return -EINVAL;
	for (size_t i = 0; i < RL_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
		} else if (!g_ascii_isxdigit(s[i])) {
			return -EINVAL;
		}
	}
	return 0;
}

int rl_payload_config_key_validate(const char *key)
{
	return syntax_ok(key, RL_CONFIG_KEY_MAX, CH_LOWER | CH_DIGIT, "_.") ?
	       0 : -EINVAL;
}

/* valid UTF-8 of 1..max bytes (no NUL inside by construction) */
static bool utf8_ok(const char *s, size_t max)
{
	size_t n;

	if (!s)
		return false;
	n = strnlen(s, max + 1);
	return n > 0 && n <= max && g_utf8_validate(s, (gssize) n, NULL);
}

/* ---- times --------------------------------------------------------------- */

static bool time_ok(int64_t t_us)
{
	return t_us >= 0 && t_us <= RL_TIME_MAX;
}

gchar *rl_payload_format_time(int64_t t_us)
{
	g_autoptr(GDateTime) dt = NULL;
	g_autofree gchar *base = NULL;

	if (!time_ok(t_us))
		return NULL;
	dt = g_date_time_new_from_unix_utc(t_us / G_USEC_PER_SEC);
	if (!dt)
		return NULL;
	base = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%S");
	if (!base)
		return NULL;
	return g_strdup_printf("%s.%03dZ", base,
			       (int) ((t_us % G_USEC_PER_SEC) / 1000));
}

/* n decimal digits at s into *ret; false if any is not a digit */
static bool digits(const char *s, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*ret = v;
	return true;
}

gboolean rl_payload_parse_time(const char *s, int64_t *ret_us)
{
	g_autoptr(GDateTime) dt = NULL;
	int year, mon, day, hour, min, sec, oh = 0, om = 0, sign = 0;
	int64_t frac_us = 0, t;
	size_t i;

	if (!s || strnlen(s, 20) < 20)
		return FALSE;
	/* YYYY-MM-DDThh:mm:ss */
	if (!digits(s, 4, &year) || s[4] != '-' || !digits(s + 5, 2, &mon) ||
	    s[7] != '-' || !digits(s + 8, 2, &day) ||
	    (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &hour) ||
	    s[13] != ':' || !digits(s + 14, 2, &min) || s[16] != ':' ||
	    !digits(s + 17, 2, &sec))
		return FALSE;
	i = 19;
	if (s[i] == '.') {
		int n = 0;

		for (i++; s[i] >= '0' && s[i] <= '9'; i++, n++) {
			if (n >= 9)
				return FALSE;
			if (n < 6)
				frac_us = frac_us * 10 + (s[i] - '0');
		}
		if (n == 0)
			return FALSE;
		for (; n < 6; n++)
			frac_us *= 10;
	}
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		sign = s[i] == '+' ? 1 : -1;
		if (strnlen(s + i, 6) < 6 || !digits(s + i + 1, 2, &oh) ||
		    s[i + 3] != ':' || !digits(s + i + 4, 2, &om))
			return FALSE;
		if (oh > 23 || om > 59)
			return FALSE;
		i += 6;
	} else {
		return FALSE;
	}
	if (s[i] != '\0')
		return FALSE;
	if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 ||
	    min > 59 || sec > 59)
		return FALSE;
	/* checks the day of the month, and year 1..9999 */
	dt = g_date_time_new_utc(year, mon, day, hour, min, sec);
	if (!dt)
		return FALSE;
	t = g_date_time_to_unix(dt) - (int64_t) sign * (oh * 3600 + om * 60);
	if (t < 0 || t > RL_TIME_MAX / G_USEC_PER_SEC)
		return FALSE;
	t = t * G_USEC_PER_SEC + frac_us;
	if (!time_ok(t))
		return FALSE;
	*ret_us = t;
	return TRUE;
}

/* ---- builder validation -------------------------------------------------- */

static gboolean invalid(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static gboolean invalid(GError **error, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (error) {
		g_autofree gchar *msg = g_strdup_vprintf(fmt, ap);

		g_set_error_literal(error, RL_PAYLOAD_ERROR,
				    RL_PAYLOAD_ERROR_INVALID, msg);
	}
	va_end(ap);
	return FALSE;
}

static gboolean check_range(GError **error, const char *path, int64_t v,
			    int64_t min, int64_t max)
{
	if (v < min || v > max)
		return invalid(error, "%s: %" G_GINT64_FORMAT " out of range %"
			       G_GINT64_FORMAT "..%" G_GINT64_FORMAT,
			       path, v, min, max);
	return TRUE;
}

static gboolean check_nullable(GError **error, const char *path, int64_t v,
			       int64_t min, int64_t max)
{
	return v == RL_NONE || check_range(error, path, v, min, max);
}

static gboolean check_time(GError **error, const char *path, int64_t t)
{
	if (!time_ok(t))
		return invalid(error, "%s: time %" G_GINT64_FORMAT
			       " us out of range", path, t);
	return TRUE;
}

static gboolean check_id(GError **error, const char *path, const char *s)
{
	if (!id_ok(s))
		return invalid(error, "%s: not an id ([A-Za-z0-9_-]{1,64})", path);
	return TRUE;
}

static gboolean check_token(GError **error, const char *path, const char *s)
{
	if (!token_ok(s))
		return invalid(error, "%s: not a token ([A-Za-z0-9_.:-]{1,128})",
			       path);
	return TRUE;
}

static gboolean check_uuid(GError **error, const char *path, const char *s)
{
	if (rl_payload_uuid_validate(s) < 0)
		return invalid(error, "%s: not a UUID", path);
	return TRUE;
}

static gboolean check_note(GError **error, const char *path, const char *note)
{
	size_t n;

	if (!note)
		return TRUE;
	/* 4 bytes per character at most */
	n = strnlen(note, RL_NOTE_MAX * 4 + 1);
	if (n > RL_NOTE_MAX * 4 || !g_utf8_validate(note, (gssize) n, NULL) ||
	    g_utf8_strlen(note, -1) > RL_NOTE_MAX)
		return invalid(error, "%s: not UTF-8 of at most %d characters",
			       path, RL_NOTE_MAX);
	return TRUE;
}

/* the envelope for a gateway -> clinic kind */
static gboolean check_envelope(enum rl_topic_kind kind,
			       const struct rl_envelope *env, GError **error)
{
	if (!env)
		return invalid(error, "$: no envelope");
	if (!check_uuid(error, "$.msg_id", env->msg_id) ||
	    !check_time(error, "$.event_time", env->event_time_us) ||
	    !check_time(error, "$.received_at", env->received_at_us) ||
	    !check_id(error, "$.gateway_id", env->gateway_id))
		return FALSE;
	if (!rl_time_quality_name(env->time_quality))
		return invalid(error, "$.time_quality: %d unknown",
			       (int) env->time_quality);
	if (rl_topic_kind_has_patient(kind) &&
	    !check_id(error, "$.patient_id", env->patient_id))
		return FALSE;
	if (kind == RL_TOPIC_WEARABLE_STATUS && env->patient_id &&
	    !check_id(error, "$.patient_id", env->patient_id))
		return FALSE;
	return TRUE;
}

/* ---- emitting ------------------------------------------------------------ */

static void add_str(JsonBuilder *b, const char *name, const char *v)
{
	json_builder_set_member_name(b, name);
	if (v)
		json_builder_add_string_value(b, v);
	else
		json_builder_add_null_value(b);
}

static void add_int(JsonBuilder *b, const char *name, int64_t v)
{
	json_builder_set_member_name(b, name);
	json_builder_add_int_value(b, v);
}

static void add_nullable(JsonBuilder *b, const char *name, int64_t v)
{
	json_builder_set_member_name(b, name);
	if (v == RL_NONE)
		json_builder_add_null_value(b);
	else
		json_builder_add_int_value(b, v);
}

static void add_bool(JsonBuilder *b, const char *name, bool v)
{
	json_builder_set_member_name(b, name);
	json_builder_add_boolean_value(b, v);
}

/* integral values as JSON integers, others as doubles */
static void add_number_value(JsonBuilder *b, double v)
{
	if (v >= (double) -MAX_SAFE_INT && v <= (double) MAX_SAFE_INT &&
	    (double) (int64_t) v == v)
		json_builder_add_int_value(b, (int64_t) v);
	else
		json_builder_add_double_value(b, v);
}

static void add_time(JsonBuilder *b, const char *name, int64_t t_us)
{
	g_autofree gchar *s = rl_payload_format_time(t_us);

	add_str(b, name, s);	/* validated before: never null */
}

static void add_nullable_time(JsonBuilder *b, const char *name, int64_t t_us)
{
	if (t_us == RL_TIME_NONE)
		add_str(b, name, NULL);
	else
		add_time(b, name, t_us);
}

static gchar *schema_name(enum rl_topic_kind kind)
{
	return g_strdup_printf(RL_PAYLOAD_SCHEMA_PREFIX "%s/%d",
			       rl_topic_kind_name(kind), RL_PAYLOAD_VERSION);
}

static JsonBuilder *begin(enum rl_topic_kind kind)
{
	JsonBuilder *b = json_builder_new();
	g_autofree gchar *schema = schema_name(kind);

	json_builder_begin_object(b);
	add_str(b, "schema", schema);
	return b;
}

/* the common members of a gateway -> clinic kind, after "schema" */
static void add_envelope(JsonBuilder *b, enum rl_topic_kind kind,
			 const struct rl_envelope *env)
{
	add_str(b, "msg_id", env->msg_id);
	add_time(b, "event_time", env->event_time_us);
	add_str(b, "time_quality", rl_time_quality_name(env->time_quality));
	add_time(b, "received_at", env->received_at_us);
	add_str(b, "gateway_id", env->gateway_id);
	if (rl_topic_kind_has_patient(kind) || kind == RL_TOPIC_WEARABLE_STATUS)
		add_str(b, "patient_id", env->patient_id);
}

static JsonBuilder *begin_envelope(enum rl_topic_kind kind,
				   const struct rl_envelope *env)
{
	JsonBuilder *b = begin(kind);

	add_envelope(b, kind, env);
	return b;
}

/* Ends the payload object and generates it. The output goes through the
 * parsers' strict syntax check: json-glib 1.6 prints some doubles as
 * invalid JSON ("1e+22.0"); number_ok() keeps those out, and this check
 * makes sure no such quirk ever reaches the wire. */
/* json-glib (1.6) escapes only \b \f \n \r \t and '"' '\\' in strings and
 * writes the other control characters raw, which JSON forbids: a string
 * from outside holding one (a clinic's config value "\u001f", found by
 * fuzz-clinic-config) made the builder refuse its own output, and the
 * config_state answer was never sent. Unformatted output has no control
 * characters outside strings, so each one left is escaped as \u00XX. */
static gchar *escape_controls(gchar *json)
{
	GString *out;

	for (const char *p = json; *p; p++)
		if ((unsigned char) *p < 0x20)
			goto escape;
	return json;
escape:
	out = g_string_sized_new(strlen(json) + 16);
	for (const char *p = json; *p; p++) {
		if ((unsigned char) *p < 0x20)
			g_string_append_printf(out, "\\u%04x", (unsigned int) (unsigned char) *p);
		else
			g_string_append_c(out, *p);
	}
	g_free(json);
	return g_string_free(out, FALSE);
}

static gchar *finish(JsonBuilder *b, GError **error)
{
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autoptr(JsonNode) root = NULL;
	g_autofree gchar *json = NULL;
	struct lex lx = { 0 };

	json_builder_end_object(b);
	root = json_builder_get_root(b);
	json_generator_set_root(gen, root);
	json = escape_controls(json_generator_to_data(gen, NULL));
	lx.p = json;
	lx.len = strlen(json);
	if (!lex_document(&lx))
		return invalid(error, "$: generated JSON is invalid (%s at "
			       "offset %zu)", lx.err, lx.pos), NULL;
	return g_steal_pointer(&json);
}

/* ---- 2.3 gateway status -------------------------------------------------- */

static gboolean check_version(GError **error, const char *version)
{
	if (!syntax_ok(version, RL_NAME_MAX, CH_LOWER | CH_UPPER | CH_DIGIT,
		       "._+~-"))
		return invalid(error, "$.version: not [A-Za-z0-9._+~-]{1,64}");
	return TRUE;
}

gchar *rl_payload_build_gateway_status(const struct rl_gateway_status *st,
				       const struct rl_envelope *env,
				       GError **error)
{
	g_autoptr(JsonBuilder) b = NULL;

	if (!check_envelope(RL_TOPIC_GATEWAY_STATUS, env, error))
		return NULL;
	if (!st)
		return invalid(error, "$: no gateway status"), NULL;
	if (!gateway_state_name(st->state))
		return invalid(error, "$.state: %d unknown", (int) st->state), NULL;
	if (!check_version(error, st->version) ||
	    !check_nullable(error, "$.uptime_s", st->uptime_s, 0, INT64_MAX) ||
	    !check_nullable(error, "$.outbox_depth", st->outbox_depth, 0,
			    INT64_MAX) ||
	    !check_nullable(error, "$.oldest_age_s", st->oldest_age_s, 0,
			    INT64_MAX) ||
	    !check_range(error, "$.wearables", st->wearables, 0, 1000))
		return NULL;

	b = begin_envelope(RL_TOPIC_GATEWAY_STATUS, env);
	add_str(b, "state", gateway_state_name(st->state));
	add_str(b, "version", st->version);
	add_nullable(b, "uptime_s", st->uptime_s);
	add_bool(b, "clock_synced", st->clock_synced);
	add_nullable(b, "outbox_depth", st->outbox_depth);
	add_nullable(b, "oldest_age_s", st->oldest_age_s);
	add_int(b, "wearables", st->wearables);
	return finish(b, error);
}

gchar *rl_payload_build_gateway_will(const char *version, bool clock_synced,
				     int wearables,
				     const struct rl_envelope *env,
				     GError **error)
{
	const struct rl_gateway_status st = {
		.state = RL_GATEWAY_OFFLINE,
		.version = version,
		.uptime_s = RL_NONE,
		.clock_synced = clock_synced,
		.outbox_depth = RL_NONE,
		.oldest_age_s = RL_NONE,
		.wearables = wearables,
	};

	return rl_payload_build_gateway_status(&st, env, error);
}

/* ---- 2.4 wearable status ------------------------------------------------- */

gchar *rl_payload_build_wearable_status(const struct rl_wearable_status *ws,
					const struct rl_envelope *env,
					GError **error)
{
	g_autoptr(JsonBuilder) b = NULL;

	if (!check_envelope(RL_TOPIC_WEARABLE_STATUS, env, error))
		return NULL;
	if (!ws)
		return invalid(error, "$: no wearable status"), NULL;
	if (!check_id(error, "$.wearable", ws->alias))
		return NULL;
	if (!rl_link_state_name(ws->link))
		return invalid(error, "$.link: %d unknown", (int) ws->link), NULL;
	if (!check_nullable(error, "$.battery_pct", ws->battery_pct, 0, 100) ||
	    (ws->last_seen_us != RL_TIME_NONE &&
	     !check_time(error, "$.last_seen", ws->last_seen_us)) ||
	    !check_nullable(error, "$.freshness_s", ws->freshness_s, 0,
			    INT64_MAX) ||
	    !check_nullable(error, "$.last_seq", ws->last_seq, 0, UINT32_MAX) ||
	    !check_nullable(error, "$.storage_pct", ws->storage_pct, 0, 100))
		return NULL;

	b = begin_envelope(RL_TOPIC_WEARABLE_STATUS, env);
	add_str(b, "wearable", ws->alias);
	add_str(b, "link", rl_link_state_name(ws->link));
	add_nullable(b, "battery_pct", ws->battery_pct);
	add_nullable_time(b, "last_seen", ws->last_seen_us);
	add_nullable(b, "freshness_s", ws->freshness_s);
	add_nullable(b, "last_seq", ws->last_seq);
	add_nullable(b, "storage_pct", ws->storage_pct);
	return finish(b, error);
}

/* ---- 2.5 aggregates ------------------------------------------------------ */

static gboolean check_aggregate(const struct rl_aggregate *a, int64_t max_len_s,
				GError **error)
{
	int64_t len_s, max_steps, max_min;

	if (!a)
		return invalid(error, "$: no aggregate");
	if (!check_token(error, "$.aggregate_id", a->aggregate_id) ||
	    !check_range(error, "$.revision", a->revision, 1, INT32_MAX) ||
	    !check_time(error, "$.start", a->start_us) ||
	    !check_time(error, "$.end", a->end_us))
		return FALSE;
	if (a->end_us <= a->start_us ||
	    a->end_us - a->start_us > max_len_s * G_USEC_PER_SEC ||
	    (a->end_us - a->start_us) % G_USEC_PER_SEC != 0)
		return invalid(error, "$.end: window must be 1..%" G_GINT64_FORMAT
			       " whole seconds after $.start", max_len_s);
	len_s = (a->end_us - a->start_us) / G_USEC_PER_SEC;
	max_steps = len_s * 5;
	max_min = (len_s + 59) / 60;
	if (!check_range(error, "$.steps", a->steps, 0, max_steps) ||
	    !check_range(error, "$.walking_minutes", a->walking_minutes, 0,
			 max_min) ||
	    !check_nullable(error, "$.cadence_spm", a->cadence_spm, 0, 300) ||
	    !check_range(error, "$.posture_s.upright", a->posture_s.upright, 0,
			 len_s) ||
	    !check_range(error, "$.posture_s.flexed", a->posture_s.flexed, 0,
			 len_s) ||
	    !check_range(error, "$.posture_s.reclined", a->posture_s.reclined,
			 0, len_s) ||
	    !check_range(error, "$.posture_s.lying", a->posture_s.lying, 0,
			 len_s) ||
	    !check_range(error, "$.posture_s.unknown", a->posture_s.unknown, 0,
			 len_s) ||
	    !check_range(error, "$.flexed_over_30_s", a->flexed_over_30_s, 0,
			 len_s) ||
	    !check_range(error, "$.flexed_over_60_s", a->flexed_over_60_s, 0,
			 a->flexed_over_30_s) ||
	    !check_range(error, "$.longest_still_s", a->longest_still_s, 0,
			 len_s) ||
	    !check_range(error, "$.records", a->records, 0, INT32_MAX))
		return FALSE;
	return TRUE;
}

static void add_aggregate(JsonBuilder *b, const struct rl_aggregate *a)
{
	add_str(b, "aggregate_id", a->aggregate_id);
	add_int(b, "revision", a->revision);
	add_time(b, "start", a->start_us);
	add_time(b, "end", a->end_us);
	add_int(b, "steps", a->steps);
	add_int(b, "walking_minutes", a->walking_minutes);
	add_nullable(b, "cadence_spm", a->cadence_spm);
	json_builder_set_member_name(b, "posture_s");
	json_builder_begin_object(b);
	add_int(b, "upright", a->posture_s.upright);
	add_int(b, "flexed", a->posture_s.flexed);
	add_int(b, "reclined", a->posture_s.reclined);
	add_int(b, "lying", a->posture_s.lying);
	add_int(b, "unknown", a->posture_s.unknown);
	json_builder_end_object(b);
	add_int(b, "flexed_over_30_s", a->flexed_over_30_s);
	add_int(b, "flexed_over_60_s", a->flexed_over_60_s);
	add_int(b, "longest_still_s", a->longest_still_s);
	add_int(b, "records", a->records);
}

gchar *rl_payload_build_aggregate_minute(const struct rl_aggregate *agg,
					 const struct rl_envelope *env,
					 GError **error)
{
	g_autoptr(JsonBuilder) b = NULL;

	if (!check_envelope(RL_TOPIC_AGGREGATE_MINUTE, env, error) ||
	    !check_aggregate(agg, 60, error))
		return NULL;

	b = begin_envelope(RL_TOPIC_AGGREGATE_MINUTE, env);
	add_aggregate(b, agg);
	return finish(b, error);
}

static gboolean check_local_date(GError **error, const char *s)
{
	int y, m, d;

	if (!s || strnlen(s, 11) != 10 || !digits(s, 4, &y) || s[4] != '-' ||
	    !digits(s + 5, 2, &m) || s[7] != '-' || !digits(s + 8, 2, &d) ||
	    y < 1 || m < 1 || m > 12 || d < 1 ||
	    d > g_date_get_days_in_month((GDateMonth) m, (GDateYear) y))
		return invalid(error, "$.local_date: not a YYYY-MM-DD date");
	return TRUE;
}

gchar *rl_payload_build_aggregate_day(const struct rl_aggregate_day *day,
				      const struct rl_envelope *env,
				      GError **error)
{
	g_autoptr(JsonBuilder) b = NULL;
	int off;

	if (!check_envelope(RL_TOPIC_AGGREGATE_DAY, env, error))
		return NULL;
	if (!day)
		return invalid(error, "$: no day aggregate"), NULL;
	/* 26 h: a local day across a DST change is 23 or 25 h long */
	if (!check_aggregate(&day->agg, 26 * 3600, error) ||
	    !check_nullable(error, "$.post_op_day", day->post_op_day, 0, 3650) ||
	    !check_local_date(error, day->local_date) ||
	    !check_range(error, "$.utc_offset", day->utc_offset_min, -840, 840))
		return NULL;

	b = begin_envelope(RL_TOPIC_AGGREGATE_DAY, env);
	add_aggregate(b, &day->agg);
	add_nullable(b, "post_op_day", day->post_op_day);
	add_str(b, "local_date", day->local_date);
	off = day->utc_offset_min;
	{
		g_autofree gchar *s = g_strdup_printf("%c%02d:%02d",
						      off < 0 ? '-' : '+',
						      abs(off) / 60, abs(off) % 60);

		add_str(b, "utc_offset", s);
	}
	return finish(b, error);
}

/* ---- 2.6 pain ------------------------------------------------------------ */

gchar *rl_payload_build_pain(const struct rl_pain *pain,
			     const struct rl_envelope *env, GError **error)
{
	g_autoptr(JsonBuilder) b = NULL;

	if (!check_envelope(RL_TOPIC_PAIN, env, error))
		return NULL;
	if (!pain)
		return invalid(error, "$: no pain report"), NULL;
	if (!check_id(error, "$.wearable", pain->wearable) ||
	    !check_range(error, "$.score", pain->score, 0, RL_PAIN_SCORE_MAX))
		return NULL;
	if (pain->flags & ~RL_PAIN_FLAGS_KNOWN)
		return invalid(error, "$.flags: unknown bits 0x%x",
			       pain->flags & ~RL_PAIN_FLAGS_KNOWN), NULL;

	b = begin_envelope(RL_TOPIC_PAIN, env);
	add_str(b, "wearable", pain->wearable);
	add_int(b, "seq", pain->seq);
	add_int(b, "score", pain->score);
	json_builder_set_member_name(b, "flags");
	json_builder_begin_array(b);
	for (unsigned int bit = 1; bit & RL_PAIN_FLAGS_KNOWN; bit <<= 1)
		if (pain->flags & bit)
			json_builder_add_string_value(b, rl_pain_flag_name(bit));
	json_builder_end_array(b);
	add_bool(b, "red_flag", (pain->flags & RL_PAIN_RED_FLAGS) != 0);
	return finish(b, error);
}

/* ---- 2.7 alert ----------------------------------------------------------- */

static gboolean check_alert(const struct rl_alert *a, GError **error)
{
	const struct rl_alert_context *c;

	if (!a)
		return invalid(error, "$: no alert");
	c = &a->context;
	if (!check_token(error, "$.alert_id", a->alert_id) ||
	    !check_range(error, "$.notification", a->notification, 1,
			 UINT32_MAX))
		return FALSE;
	if (!syntax_ok(a->rule, RL_NAME_MAX, CH_LOWER | CH_DIGIT, "_.-"))
		return invalid(error, "$.rule: not [a-z0-9_.-]{1,64}");
	if (!rl_alert_tier_name(a->tier))
		return invalid(error, "$.tier: %d unknown", (int) a->tier);
	if (!rl_alert_state_name(a->state))
		return invalid(error, "$.state: %d unknown", (int) a->state);
	if (!check_time(error, "$.raised_at", a->raised_at_us))
		return FALSE;

	if (a->n_trigger < 1 || a->n_trigger > RL_ALERT_MAX_TRIGGERS ||
	    !a->trigger)
		return invalid(error, "$.trigger: needs 1..%d values",
			       RL_ALERT_MAX_TRIGGERS);
	for (size_t i = 0; i < a->n_trigger; i++) {
		const struct rl_alert_trigger *t = &a->trigger[i];

		if (!syntax_ok(t->name, RL_NAME_MAX, CH_LOWER | CH_DIGIT, "_"))
			return invalid(error, "$.trigger[%zu]: name not "
				       "[a-z0-9_]{1,64}", i);
		if (!number_ok(t->value))
			return invalid(error, "$.trigger.%s: not finite, or out "
				       "of range (0 or 1e-4..1e15 in magnitude)",
				       t->name);
		for (size_t j = 0; j < i; j++)
			if (strcmp(a->trigger[j].name, t->name) == 0)
				return invalid(error, "$.trigger.%s: given twice",
					       t->name);
	}

	if (c->n_pain_24h > RL_ALERT_MAX_PAIN_POINTS ||
	    (c->n_pain_24h && !c->pain_24h))
		return invalid(error, "$.context.pain_24h: more than %d points",
			       RL_ALERT_MAX_PAIN_POINTS);
	for (size_t i = 0; i < c->n_pain_24h; i++) {
		if (!time_ok(c->pain_24h[i].time_us))
			return invalid(error, "$.context.pain_24h[%zu].time: out "
				       "of range", i);
		if (c->pain_24h[i].score < 0 ||
		    c->pain_24h[i].score > RL_PAIN_SCORE_MAX)
			return invalid(error, "$.context.pain_24h[%zu].score: %d "
				       "out of range 0..10", i,
				       c->pain_24h[i].score);
	}
	if (!check_nullable(error, "$.context.flexed_s_2h", c->flexed_s_2h, 0,
			    7200) ||
	    !check_nullable(error, "$.context.steps_today", c->steps_today, 0,
			    INT32_MAX) ||
	    !check_nullable(error, "$.context.steps_yesterday",
			    c->steps_yesterday, 0, INT32_MAX) ||
	    !check_nullable(error, "$.context.battery_pct", c->battery_pct, 0,
			    100) ||
	    !check_nullable(error, "$.context.data_age_s", c->data_age_s, 0,
			    INT64_MAX))
		return FALSE;

	switch (a->state) {
	case RL_ALERT_OPEN:
		if (a->ack)
			return invalid(error, "$.ack: must be null while open");
		break;
	case RL_ALERT_ACKNOWLEDGED:
		if (!a->ack)
			return invalid(error, "$.ack: required when acknowledged");
		break;
	case RL_ALERT_RESOLVED:
		break;
	}
	if (a->ack && (!check_id(error, "$.ack.by", a->ack->by) ||
		       !check_time(error, "$.ack.at", a->ack->at_us) ||
		       !check_note(error, "$.ack.note", a->ack->note)))
		return FALSE;
	return TRUE;
}

gchar *rl_payload_build_alert(const struct rl_alert *alert,
			      const struct rl_envelope *env, GError **error)
{
	g_autoptr(JsonBuilder) b = NULL;
	const struct rl_alert_context *c;

	if (!check_envelope(RL_TOPIC_ALERT, env, error) ||
	    !check_alert(alert, error))
		return NULL;
	c = &alert->context;

	b = begin_envelope(RL_TOPIC_ALERT, env);
	add_str(b, "alert_id", alert->alert_id);
	add_int(b, "notification", alert->notification);
	add_str(b, "rule", alert->rule);
	add_str(b, "tier", rl_alert_tier_name(alert->tier));
	add_str(b, "state", rl_alert_state_name(alert->state));
	add_time(b, "raised_at", alert->raised_at_us);

	json_builder_set_member_name(b, "trigger");
	json_builder_begin_object(b);
	for (size_t i = 0; i < alert->n_trigger; i++) {
		json_builder_set_member_name(b, alert->trigger[i].name);
		add_number_value(b, alert->trigger[i].value);
	}
	json_builder_end_object(b);

	json_builder_set_member_name(b, "context");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "pain_24h");
	json_builder_begin_array(b);
	for (size_t i = 0; i < c->n_pain_24h; i++) {
		json_builder_begin_object(b);
		add_time(b, "time", c->pain_24h[i].time_us);
		add_int(b, "score", c->pain_24h[i].score);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	add_nullable(b, "flexed_s_2h", c->flexed_s_2h);
	add_nullable(b, "steps_today", c->steps_today);
	add_nullable(b, "steps_yesterday", c->steps_yesterday);
	add_nullable(b, "battery_pct", c->battery_pct);
	add_nullable(b, "data_age_s", c->data_age_s);
	json_builder_end_object(b);

	json_builder_set_member_name(b, "ack");
	if (alert->ack) {
		json_builder_begin_object(b);
		add_str(b, "by", alert->ack->by);
		add_time(b, "at", alert->ack->at_us);
		add_str(b, "note", alert->ack->note);
		json_builder_end_object(b);
	} else {
		json_builder_add_null_value(b);
	}
	return finish(b, error);
}

/* ---- 2.10 config state --------------------------------------------------- */

static gboolean check_config_value(GError **error, const char *key,
				   const struct rl_config_value *v)
{
	switch (v->type) {
	case RL_CONFIG_BOOL:
	case RL_CONFIG_INT:
		return TRUE;
	case RL_CONFIG_DOUBLE:
		if (!number_ok(v->u.d))
			return invalid(error, "$.settings.%s: not finite, or out "
				       "of range (0 or 1e-4..1e15 in magnitude)",
				       key);
		return TRUE;
	case RL_CONFIG_STRING:
		if (!v->u.s || strnlen(v->u.s, RL_CONFIG_STRING_MAX + 1) >
		    RL_CONFIG_STRING_MAX || !g_utf8_validate(v->u.s, -1, NULL))
			return invalid(error, "$.settings.%s: not UTF-8 of at "
				       "most %d bytes", key,
				       RL_CONFIG_STRING_MAX);
		return TRUE;
	}
	return invalid(error, "$.settings.%s: type %d unknown", key,
		       (int) v->type);
}

static gboolean check_settings(GError **error,
			       const struct rl_config_entry *e, size_t n)
{
	if (n > RL_CONFIG_MAX_ENTRIES || (n && !e))
		return invalid(error, "$.settings: more than %d entries",
			       RL_CONFIG_MAX_ENTRIES);
	for (size_t i = 0; i < n; i++) {
		if (rl_payload_config_key_validate(e[i].key) < 0)
			return invalid(error, "$.settings: key %zu not "
				       "[a-z0-9_.]{1,64}", i);
		if (!check_config_value(error, e[i].key, &e[i].value))
			return FALSE;
		for (size_t j = 0; j < i; j++)
			if (strcmp(e[j].key, e[i].key) == 0)
				return invalid(error, "$.settings.%s: given twice",
					       e[i].key);
	}
	return TRUE;
}

static void add_settings(JsonBuilder *b, const struct rl_config_entry *e,
			 size_t n)
{
	json_builder_set_member_name(b, "settings");
	json_builder_begin_object(b);
	for (size_t i = 0; i < n; i++) {
		const struct rl_config_value *v = &e[i].value;

		json_builder_set_member_name(b, e[i].key);
		switch (v->type) {
		case RL_CONFIG_BOOL:
			json_builder_add_boolean_value(b, v->u.b);
			break;
		case RL_CONFIG_INT:
			json_builder_add_int_value(b, v->u.i);
			break;
		case RL_CONFIG_DOUBLE:
			json_builder_add_double_value(b, v->u.d);
			break;
		case RL_CONFIG_STRING:
			json_builder_add_string_value(b, v->u.s);
			break;
		}
	}
	json_builder_end_object(b);
}

gchar *rl_payload_build_config_state(const struct rl_config_state *cs,
				     const struct rl_envelope *env,
				     GError **error)
{
	g_autoptr(JsonBuilder) b = NULL;

	if (!check_envelope(RL_TOPIC_CONFIG_STATE, env, error))
		return NULL;
	if (!cs)
		return invalid(error, "$: no config state"), NULL;
	if (cs->config_msg_id &&
	    !check_uuid(error, "$.config_msg_id", cs->config_msg_id))
		return NULL;
	if (!check_settings(error, cs->settings, cs->n_settings))
		return NULL;
	if (cs->n_rejected > RL_CONFIG_MAX_ENTRIES ||
	    (cs->n_rejected && !cs->rejected))
		return invalid(error, "$.rejected: more than %d entries",
			       RL_CONFIG_MAX_ENTRIES), NULL;
	for (size_t i = 0; i < cs->n_rejected; i++) {
		if (rl_payload_config_key_validate(cs->rejected[i].key) < 0)
			return invalid(error, "$.rejected[%zu].key: not "
				       "[a-z0-9_.]{1,64}", i), NULL;
		if (!utf8_ok(cs->rejected[i].reason, RL_CONFIG_REASON_MAX))
			return invalid(error, "$.rejected[%zu].reason: not 1..%d "
				       "bytes of UTF-8", i,
				       RL_CONFIG_REASON_MAX), NULL;
	}

	b = begin_envelope(RL_TOPIC_CONFIG_STATE, env);
	add_str(b, "config_msg_id", cs->config_msg_id);
	add_settings(b, cs->settings, cs->n_settings);
	json_builder_set_member_name(b, "rejected");
	json_builder_begin_array(b);
	for (size_t i = 0; i < cs->n_rejected; i++) {
		json_builder_begin_object(b);
		add_str(b, "key", cs->rejected[i].key);
		add_str(b, "reason", cs->rejected[i].reason);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	return finish(b, error);
}

/* ---- 2.11 error ---------------------------------------------------------- */

gchar *rl_payload_build_error(const struct rl_error_report *er,
			      const struct rl_envelope *env, GError **error)
{
	g_autoptr(JsonBuilder) b = NULL;

	if (!check_envelope(RL_TOPIC_ERROR, env, error))
		return NULL;
	if (!er)
		return invalid(error, "$: no error report"), NULL;
	if (er->has_topic_kind && !rl_topic_kind_is_command(er->topic_kind))
		return invalid(error, "$.topic_kind: %d is not a command kind",
			       (int) er->topic_kind), NULL;
	if (er->rejected_msg_id &&
	    !check_uuid(error, "$.rejected_msg_id", er->rejected_msg_id))
		return NULL;
	if (!rl_payload_error_code_name(er->code))
		return invalid(error, "$.code: %d is not sent", (int) er->code),
		       NULL;
	if (!utf8_ok(er->detail, RL_DETAIL_MAX))
		return invalid(error, "$.detail: not 1..%d bytes of UTF-8",
			       RL_DETAIL_MAX), NULL;

	b = begin_envelope(RL_TOPIC_ERROR, env);
	add_str(b, "topic_kind", er->has_topic_kind ?
		rl_topic_kind_name(er->topic_kind) : NULL);
	add_str(b, "rejected_msg_id", er->rejected_msg_id);
	add_str(b, "code", rl_payload_error_code_name(er->code));
	add_str(b, "detail", er->detail);
	return finish(b, error);
}

/* ---- 2.12 FHIR Observation ----------------------------------------------- */

#define FHIR_CATEGORY_SYSTEM "http://terminology.hl7.org/CodeSystem/observation-category"
#define LOINC_SYSTEM "http://loinc.org"
#define UCUM_SYSTEM "http://unitsofmeasure.org"

static void add_coding(JsonBuilder *b, const char *system, const char *code,
		       const char *display)
{
	json_builder_set_member_name(b, "coding");
	json_builder_begin_array(b);
	json_builder_begin_object(b);
	add_str(b, "system", system);
	add_str(b, "code", code);
	add_str(b, "display", display);
	json_builder_end_object(b);
	json_builder_end_array(b);
}

gchar *rl_payload_build_fhir_observation(const struct rl_fhir_observation *obs,
					 const struct rl_envelope *env,
					 GError **error)
{
	g_autoptr(JsonBuilder) b = NULL;
	g_autofree gchar *ident = NULL;
	bool pain;

	if (!check_envelope(RL_TOPIC_FHIR_OBSERVATION, env, error))
		return NULL;
	if (!obs)
		return invalid(error, "$: no observation"), NULL;
	if (!check_token(error, "$.resource.identifier[0].value",
			 obs->source_id))
		return NULL;
	if (obs->kind != RL_FHIR_PAIN && obs->kind != RL_FHIR_DAILY_STEPS)
		return invalid(error, "$.resource: kind %d unknown",
			       (int) obs->kind), NULL;
	pain = obs->kind == RL_FHIR_PAIN;
	switch (obs->kind) {
	case RL_FHIR_PAIN:
		if (!check_time(error, "$.resource.effectiveDateTime",
				obs->effective_us) ||
		    !check_range(error, "$.resource.valueInteger", obs->value,
				 0, RL_PAIN_SCORE_MAX))
			return NULL;
		break;
	case RL_FHIR_DAILY_STEPS:
		if (!check_time(error, "$.resource.effectivePeriod.start",
				obs->effective_us) ||
		    !check_time(error, "$.resource.effectivePeriod.end",
				obs->effective_end_us))
			return NULL;
		if (obs->effective_end_us <= obs->effective_us)
			return invalid(error, "$.resource.effectivePeriod: end "
				       "not after start"), NULL;
		if (!check_range(error, "$.resource.valueQuantity.value",
				 obs->value, 0, INT32_MAX))
			return NULL;
		break;
	}

	ident = g_strconcat(env->gateway_id, ":", obs->source_id, NULL);
	b = begin_envelope(RL_TOPIC_FHIR_OBSERVATION, env);
	json_builder_set_member_name(b, "resource");
	json_builder_begin_object(b);
	add_str(b, "resourceType", "Observation");
	json_builder_set_member_name(b, "identifier");
	json_builder_begin_array(b);
	json_builder_begin_object(b);
	add_str(b, "system", "urn:rehablink:observation");
	add_str(b, "value", ident);
	json_builder_end_object(b);
	json_builder_end_array(b);
	add_str(b, "status", "final");

	json_builder_set_member_name(b, "category");
	json_builder_begin_array(b);
	json_builder_begin_object(b);
	if (pain)
		add_coding(b, FHIR_CATEGORY_SYSTEM, "survey", "Survey");
	else
		add_coding(b, FHIR_CATEGORY_SYSTEM, "activity", "Activity");
	json_builder_end_object(b);
	json_builder_end_array(b);

	json_builder_set_member_name(b, "code");
	json_builder_begin_object(b);
	if (pain) {
		add_coding(b, LOINC_SYSTEM, "72514-3", "Pain severity - 0-10 "
			   "verbal numeric rating [Score] - Reported");
		add_str(b, "text", "Back pain score (0-10)");
	} else {
		add_coding(b, LOINC_SYSTEM, "41950-7",
			   "Number of steps in 24 hour Measured");
		add_str(b, "text", "Steps per day");
	}
	json_builder_end_object(b);

	json_builder_set_member_name(b, "subject");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "identifier");
	json_builder_begin_object(b);
	add_str(b, "value", env->patient_id);
	json_builder_end_object(b);
	json_builder_end_object(b);

	if (pain) {
		add_time(b, "effectiveDateTime", obs->effective_us);
		add_int(b, "valueInteger", obs->value);
	} else {
		json_builder_set_member_name(b, "effectivePeriod");
		json_builder_begin_object(b);
		add_time(b, "start", obs->effective_us);
		add_time(b, "end", obs->effective_end_us);
		json_builder_end_object(b);
		json_builder_set_member_name(b, "valueQuantity");
		json_builder_begin_object(b);
		add_int(b, "value", obs->value);
		add_str(b, "unit", "steps/day");
		add_str(b, "system", UCUM_SYSTEM);
		add_str(b, "code", "/d");
		json_builder_end_object(b);
	}
	json_builder_end_object(b);	/* resource */
	return finish(b, error);
}

/* ---- clinic -> gateway builders ------------------------------------------ */

static gboolean check_inbound(GError **error, const char *msg_id,
			      int64_t event_time_us, const char *gateway_id)
{
	return check_uuid(error, "$.msg_id", msg_id) &&
	       check_time(error, "$.event_time", event_time_us) &&
	       check_id(error, "$.gateway_id", gateway_id);
}

static JsonBuilder *begin_inbound(enum rl_topic_kind kind, const char *msg_id,
				  int64_t event_time_us, const char *gateway_id)
{
	JsonBuilder *b = begin(kind);

	add_str(b, "msg_id", msg_id);
	add_time(b, "event_time", event_time_us);
	add_str(b, "gateway_id", gateway_id);
	return b;
}

gchar *rl_payload_build_alert_ack(const struct rl_alert_ack *ack,
				  GError **error)
{
	g_autoptr(JsonBuilder) b = NULL;

	if (!ack)
		return invalid(error, "$: no alert ack"), NULL;
	if (!check_inbound(error, ack->msg_id, ack->event_time_us,
			   ack->gateway_id) ||
	    !check_token(error, "$.alert_id", ack->alert_id) ||
	    !check_id(error, "$.by", ack->by) ||
	    !check_time(error, "$.at", ack->at_us) ||
	    !check_note(error, "$.note", ack->note))
		return NULL;
	if (!rl_ack_action_name(ack->action))
		return invalid(error, "$.action: %d unknown", (int) ack->action),
		       NULL;

	b = begin_inbound(RL_TOPIC_ALERT_ACK, ack->msg_id, ack->event_time_us,
			  ack->gateway_id);
	add_str(b, "alert_id", ack->alert_id);
	add_str(b, "by", ack->by);
	add_time(b, "at", ack->at_us);
	if (ack->note)
		add_str(b, "note", ack->note);
	add_str(b, "action", rl_ack_action_name(ack->action));
	return finish(b, error);
}

gchar *rl_payload_build_config(const struct rl_config_msg *msg, GError **error)
{
	g_autoptr(JsonBuilder) b = NULL;

	if (!msg)
		return invalid(error, "$: no config message"), NULL;
	if (!check_inbound(error, msg->msg_id, msg->event_time_us,
			   msg->gateway_id) ||
	    !check_settings(error, msg->entries, msg->n_entries))
		return NULL;

	b = begin_inbound(RL_TOPIC_CONFIG, msg->msg_id, msg->event_time_us,
			  msg->gateway_id);
	add_settings(b, msg->entries, msg->n_entries);
	return finish(b, error);
}

/* ---- strict JSON syntax check -------------------------------------------- *
 * RFC 8259 exactly, over bytes already known to be UTF-8 without NUL:
 * json-glib's scanner alone accepts single-quoted strings, hex and
 * leading-zero numbers, ".5" and "1.", and wraps integers beyond 64 bits.
 * Additionally: integers (no fraction, no exponent) must fit in int64, the
 * escape \u0000 is refused (a C string cannot hold it), surrogate escapes
 * must pair, and nesting is at most JSON_MAX_DEPTH. Recursion is bounded by
 * that depth. */

static bool lex_fail(struct lex *lx, const char *why)
{
	lx->err = why;
	return false;
}

static int lex_peek(const struct lex *lx)
{
	return lx->pos < lx->len ? (unsigned char) lx->p[lx->pos] : -1;
}

static void lex_ws(struct lex *lx)
{
	while (lx->pos < lx->len) {
		char c = lx->p[lx->pos];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		lx->pos++;
	}
}

static int hex4(const struct lex *lx, size_t at)
{
	int v = 0;

	if (at + 4 > lx->len)
		return -1;
	for (size_t i = at; i < at + 4; i++) {
		int d = g_ascii_xdigit_value(lx->p[i]);

		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

static bool lex_string(struct lex *lx)
{
	lx->pos++;	/* opening quote */
	for (;;) {
		int c = lex_peek(lx);

		if (c < 0)
			return lex_fail(lx, "unterminated string");
		if (c == '"') {
			lx->pos++;
			return true;
		}
		if (c < 0x20)
			return lex_fail(lx, "control character in string");
		if (c != '\\') {
			lx->pos++;
			continue;
		}
		lx->pos++;
		c = lex_peek(lx);
		switch (c) {
		case '"': case '\\': case '/': case 'b': case 'f': case 'n':
		case 'r': case 't':
			lx->pos++;
			continue;
		case 'u':
			break;
		default:
			return lex_fail(lx, "bad escape in string");
		}
		{
			int u = hex4(lx, lx->pos + 1);

			if (u < 0)
				return lex_fail(lx, "bad \\u escape");
			if (u == 0)
				return lex_fail(lx, "\\u0000 in string");
			if (u >= 0xdc00 && u <= 0xdfff)
				return lex_fail(lx, "unpaired surrogate escape");
			lx->pos += 5;
			if (u >= 0xd800 && u <= 0xdbff) {
				int lo;

				if (lx->pos + 1 >= lx->len ||
				    lx->p[lx->pos] != '\\' ||
				    lx->p[lx->pos + 1] != 'u')
					return lex_fail(lx, "unpaired surrogate "
							"escape");
				lo = hex4(lx, lx->pos + 2);
				if (lo < 0xdc00 || lo > 0xdfff)
					return lex_fail(lx, "unpaired surrogate "
							"escape");
				lx->pos += 6;
			}
		}
	}
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool lex_number(struct lex *lx)
{
	bool neg = false, integer = true;
	uint64_t v = 0, limit;
	bool overflow = false;

	if (lex_peek(lx) == '-') {
		neg = true;
		lx->pos++;
	}
	if (!is_digit(lex_peek(lx)))
		return lex_fail(lx, "bad number");
	if (lex_peek(lx) == '0') {
		lx->pos++;
		if (is_digit(lex_peek(lx)))
			return lex_fail(lx, "leading zero in number");
	} else {
		while (is_digit(lex_peek(lx))) {
			unsigned int d = (unsigned int) (lex_peek(lx) - '0');

			if (v > (UINT64_MAX - d) / 10)
				overflow = true;
			else
				v = v * 10 + d;
			lx->pos++;
		}
	}
	if (lex_peek(lx) == '.') {
		integer = false;
		lx->pos++;
		if (!is_digit(lex_peek(lx)))
			return lex_fail(lx, "bad fraction in number");
		while (is_digit(lex_peek(lx)))
			lx->pos++;
	}
	if (lex_peek(lx) == 'e' || lex_peek(lx) == 'E') {
		integer = false;
		lx->pos++;
		if (lex_peek(lx) == '+' || lex_peek(lx) == '-')
			lx->pos++;
		if (!is_digit(lex_peek(lx)))
			return lex_fail(lx, "bad exponent in number");
		while (is_digit(lex_peek(lx)))
			lx->pos++;
	}
	limit = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
	if (integer && (overflow || v > limit)) {
		lx->code = RL_PAYLOAD_ERROR_BAD_VALUE;
		return lex_fail(lx, "integer beyond 64 bits");
	}
	return true;
}

static bool lex_literal(struct lex *lx, const char *word)
{
	size_t n = strlen(word);

	if (lx->len - lx->pos < n || memcmp(lx->p + lx->pos, word, n) != 0)
		return lex_fail(lx, "unexpected character");
	lx->pos += n;
	return true;
}

static bool lex_value(struct lex *lx, int depth);

static bool lex_container(struct lex *lx, int depth, bool object)
{
	char close = object ? '}' : ']';

	if (depth >= JSON_MAX_DEPTH)
		return lex_fail(lx, "nesting too deep");
	lx->pos++;
	lex_ws(lx);
	if (lex_peek(lx) == close) {
		lx->pos++;
		return true;
	}
	for (;;) {
		if (object) {
			if (lex_peek(lx) != '"')
				return lex_fail(lx, "expected a member name");
			if (!lex_string(lx))
				return false;
			lex_ws(lx);
			if (lex_peek(lx) != ':')
				return lex_fail(lx, "expected ':'");
			lx->pos++;
			lex_ws(lx);
		}
		if (!lex_value(lx, depth + 1))
			return false;
		lex_ws(lx);
		if (lex_peek(lx) == close) {
			lx->pos++;
			return true;
		}
		if (lex_peek(lx) != ',')
			return lex_fail(lx, object ? "expected ',' or '}'" :
					"expected ',' or ']'");
		lx->pos++;
		lex_ws(lx);
	}
}

static bool lex_value(struct lex *lx, int depth)
{
	switch (lex_peek(lx)) {
	case '{':
		return lex_container(lx, depth, true);
	case '[':
		return lex_container(lx, depth, false);
	case '"':
		return lex_string(lx);
	case 't':
		return lex_literal(lx, "true");
	case 'f':
		return lex_literal(lx, "false");
	case 'n':
		return lex_literal(lx, "null");
	case -1:
		return lex_fail(lx, "unexpected end");
	default:
		if (lex_peek(lx) == '-' || is_digit(lex_peek(lx)))
			return lex_number(lx);
		return lex_fail(lx, "unexpected character");
	}
}

static bool lex_document(struct lex *lx)
{
	lex_ws(lx);
	if (lex_value(lx, 0)) {
		lex_ws(lx);
		if (lx->pos != lx->len)
			lex_fail(lx, "data after the JSON value");
	}
	return lx->err == NULL;
}

static gboolean fail(GError **error, enum rl_payload_error_code code,
		     const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static gboolean fail(GError **error, enum rl_payload_error_code code,
		     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (error) {
		g_autofree gchar *msg = g_strdup_vprintf(fmt, ap);

		g_set_error_literal(error, RL_PAYLOAD_ERROR, (int) code, msg);
	}
	va_end(ap);
	return FALSE;
}

/* Checks the raw bytes and parses them; the root is returned only if it is
 * an object. */
static JsonParser *load(const char *data, size_t len, size_t max,
			JsonObject **ret_root, GError **error)
{
	g_autoptr(JsonParser) parser = NULL;
	g_autofree gchar *copy = NULL;
	struct lex lx = { .p = data, .len = len,
			  .code = RL_PAYLOAD_ERROR_BAD_JSON };
	const gchar *end;
	JsonNode *root;

	if (!data || len == 0)
		return fail(error, RL_PAYLOAD_ERROR_BAD_JSON, "$: empty message"),
		       NULL;
	if (len > max)
		return fail(error, RL_PAYLOAD_ERROR_BAD_VALUE, "$: message of "
			    "%zu bytes, more than %zu", len, max), NULL;
	end = memchr(data, '\0', len);
	if (end)
		return fail(error, RL_PAYLOAD_ERROR_BAD_JSON, "$: NUL byte at "
			    "offset %td", end - data), NULL;
	if (!g_utf8_validate_len(data, len, &end))
		return fail(error, RL_PAYLOAD_ERROR_BAD_JSON, "$: invalid UTF-8 "
			    "at offset %td", end - data), NULL;

	if (!lex_document(&lx))
		return fail(error, lx.code, "$: %s at offset %zu", lx.err,
			    lx.pos), NULL;

	/* json-glib gets its own NUL-terminated copy: it must not read past
	 * len, and the check above guarantees no NUL inside */
	copy = g_strndup(data, len);
	parser = json_parser_new_immutable();
	if (!json_parser_load_from_data(parser, copy, (gssize) len, NULL))
		return fail(error, RL_PAYLOAD_ERROR_BAD_JSON,
			    "$: not valid JSON"), NULL;
	root = json_parser_get_root(parser);
	if (!root || !JSON_NODE_HOLDS_OBJECT(root))
		return fail(error, RL_PAYLOAD_ERROR_BAD_SCHEMA,
			    "$: not an object"), NULL;
	*ret_root = json_node_get_object(root);
	return g_steal_pointer(&parser);
}

/* "$.name" for a plain name, else "$[\"escaped\"]" (at most 64 bytes of
 * the name, escaped to ASCII), so a detail never carries raw input. */
static gchar *member_path(const char *prefix, const char *name)
{
	g_autofree gchar *cut = NULL;
	g_autofree gchar *esc = NULL;

	if (syntax_ok(name, RL_CONFIG_KEY_MAX, CH_LOWER | CH_UPPER | CH_DIGIT,
		      "_.-"))
		return g_strdup_printf("%s.%s", prefix, name);
	cut = g_strndup(name, RL_CONFIG_KEY_MAX);
	esc = g_strescape(cut, NULL);
	return g_strdup_printf("%s[\"%s\"]", prefix, esc);
}

static gboolean only_members(JsonObject *obj, const char *const *allowed,
			     GError **error)
{
	g_autoptr(GList) names = json_object_get_members(obj);

	for (GList *l = names; l; l = l->next) {
		const char *name = l->data;
		bool ok = false;

		for (size_t i = 0; allowed[i]; i++)
			if (strcmp(name, allowed[i]) == 0)
				ok = true;
		if (!ok) {
			g_autofree gchar *path = member_path("$", name);

			return fail(error, RL_PAYLOAD_ERROR_BAD_SCHEMA,
				    "%s: unknown member", path);
		}
	}
	return TRUE;
}

/* A string member: missing or not a string (null only if nullable) is a
 * schema error. *ret is borrowed from the tree, NULL for null or absent. */
static gboolean get_string(JsonObject *obj, const char *name, bool required,
			   bool nullable, const char **ret, GError **error)
{
	JsonNode *n = json_object_get_member(obj, name);

	*ret = NULL;
	if (!n) {
		if (required)
			return fail(error, RL_PAYLOAD_ERROR_BAD_SCHEMA,
				    "$.%s: missing", name);
		return TRUE;
	}
	if (JSON_NODE_HOLDS_NULL(n) && nullable)
		return TRUE;
	if (!JSON_NODE_HOLDS_VALUE(n) ||
	    json_node_get_value_type(n) != G_TYPE_STRING)
		return fail(error, RL_PAYLOAD_ERROR_BAD_SCHEMA,
			    "$.%s: not a string", name);
	*ret = json_node_get_string(n);
	return TRUE;
}

static gboolean check_schema(JsonObject *obj, enum rl_topic_kind kind,
			     GError **error)
{
	g_autofree gchar *want = schema_name(kind);
	g_autofree gchar *family = g_strdup_printf(RL_PAYLOAD_SCHEMA_PREFIX
						   "%s/",
						   rl_topic_kind_name(kind));
	const char *schema;

	if (!get_string(obj, "schema", true, false, &schema, error))
		return FALSE;
	if (strcmp(schema, want) == 0)
		return TRUE;
	if (g_str_has_prefix(schema, family))
		return fail(error, RL_PAYLOAD_ERROR_BAD_SCHEMA,
			    "$.schema: unsupported version (expected %s)", want);
	return fail(error, RL_PAYLOAD_ERROR_BAD_SCHEMA,
		    "$.schema: wrong kind (expected %s)", want);
}

static gboolean get_uuid(JsonObject *obj, const char *name, const char **ret,
			 GError **error)
{
	if (!get_string(obj, name, true, false, ret, error))
		return FALSE;
	if (rl_payload_uuid_validate(*ret) < 0)
		return fail(error, RL_PAYLOAD_ERROR_BAD_VALUE,
			    "$.%s: not a UUID", name);
	return TRUE;
}

static gboolean get_id(JsonObject *obj, const char *name, const char **ret,
		       GError **error)
{
	if (!get_string(obj, name, true, false, ret, error))
		return FALSE;
	if (!id_ok(*ret))
		return fail(error, RL_PAYLOAD_ERROR_BAD_VALUE,
			    "$.%s: not an id ([A-Za-z0-9_-]{1,64})", name);
	return TRUE;
}

static gboolean get_time(JsonObject *obj, const char *name, int64_t *ret,
			 GError **error)
{
	const char *s;

	if (!get_string(obj, name, true, false, &s, error))
		return FALSE;
	if (!rl_payload_parse_time(s, ret))
		return fail(error, RL_PAYLOAD_ERROR_BAD_VALUE,
			    "$.%s: not an RFC 3339 time", name);
	return TRUE;
}

/* msg_id, event_time, gateway_id of a clinic message */
static gboolean get_inbound(JsonObject *obj,
			    const char **ret_msg_id, int64_t *ret_time,
			    const char **ret_gateway, GError **error)
{
	return get_uuid(obj, "msg_id", ret_msg_id, error) &&
	       get_time(obj, "event_time", ret_time, error) &&
	       get_id(obj, "gateway_id", ret_gateway, error);
}

/* ---- 2.8 alert ack parser ------------------------------------------------ */

void rl_alert_ack_clear(struct rl_alert_ack *ack)
{
	if (!ack)
		return;
	/* owned when parsed: see payload.h */
	g_free((gchar *) ack->msg_id);
	g_free((gchar *) ack->gateway_id);
	g_free((gchar *) ack->alert_id);
	g_free((gchar *) ack->by);
	g_free((gchar *) ack->note);
	memset(ack, 0, sizeof(*ack));
}

gboolean rl_payload_parse_alert_ack(const char *data, size_t len,
				    struct rl_alert_ack *ret_ack,
				    GError **error)
{
	static const char *const allowed[] = {
		"schema", "msg_id", "event_time", "gateway_id", "alert_id",
		"by", "at", "note", "action", NULL
	};
	g_autoptr(JsonParser) parser = NULL;
	JsonObject *obj = NULL;
	const char *msg_id, *gateway_id, *alert_id, *by, *note, *action;
	int64_t event_time, at;
	enum rl_ack_action act;

	g_return_val_if_fail(ret_ack, FALSE);
	parser = load(data, len, RL_PAYLOAD_ACK_MAX, &obj, error);
	if (!parser)
		return FALSE;
	if (!check_schema(obj, RL_TOPIC_ALERT_ACK, error) ||
	    !only_members(obj, allowed, error) ||
	    !get_inbound(obj, &msg_id, &event_time, &gateway_id, error))
		return FALSE;

	if (!get_string(obj, "alert_id", true, false, &alert_id, error))
		return FALSE;
	if (!token_ok(alert_id))
		return fail(error, RL_PAYLOAD_ERROR_BAD_VALUE, "$.alert_id: not "
			    "a token ([A-Za-z0-9_.:-]{1,128})");
	if (!get_id(obj, "by", &by, error) || !get_time(obj, "at", &at, error))
		return FALSE;
	if (!get_string(obj, "note", false, true, &note, error))
		return FALSE;
	if (note && g_utf8_strlen(note, -1) > RL_NOTE_MAX)
		return fail(error, RL_PAYLOAD_ERROR_BAD_VALUE, "$.note: more "
			    "than %d characters", RL_NOTE_MAX);
	if (!get_string(obj, "action", true, false, &action, error))
		return FALSE;
	if (strcmp(action, "acknowledge") == 0)
		act = RL_ACK_ACKNOWLEDGE;
	else if (strcmp(action, "resolve") == 0)
		act = RL_ACK_RESOLVE;
	else
		return fail(error, RL_PAYLOAD_ERROR_BAD_VALUE, "$.action: not "
			    "\"acknowledge\" or \"resolve\"");

	*ret_ack = (struct rl_alert_ack){
		.msg_id = g_strdup(msg_id),
		.event_time_us = event_time,
		.gateway_id = g_strdup(gateway_id),
		.alert_id = g_strdup(alert_id),
		.by = g_strdup(by),
		.at_us = at,
		.note = g_strdup(note),
		.action = act,
	};
	return TRUE;
}

/* ---- 2.9 config parser --------------------------------------------------- */

void rl_config_msg_clear(struct rl_config_msg *msg)
{
	if (!msg)
		return;
	for (size_t i = 0; i < msg->n_entries && msg->entries; i++) {
		g_free((gchar *) msg->entries[i].key);
		if (msg->entries[i].value.type == RL_CONFIG_STRING)
			g_free((gchar *) msg->entries[i].value.u.s);
	}
	g_free(msg->entries);
	g_free((gchar *) msg->msg_id);
	g_free((gchar *) msg->gateway_id);
	memset(msg, 0, sizeof(*msg));
}

/* one setting value into *v (strings borrowed from the tree) */
static gboolean get_setting(JsonNode *n, const char *path,
			    struct rl_config_value *v, GError **error)
{
	if (JSON_NODE_HOLDS_NULL(n))
		return fail(error, RL_PAYLOAD_ERROR_BAD_SCHEMA,
			    "%s: null is not a setting value", path);
	if (!JSON_NODE_HOLDS_VALUE(n))
		return fail(error, RL_PAYLOAD_ERROR_BAD_SCHEMA,
			    "%s: not a boolean, number or string", path);
	switch (json_node_get_value_type(n)) {
	case G_TYPE_BOOLEAN:
		v->type = RL_CONFIG_BOOL;
		v->u.b = json_node_get_boolean(n);
		return TRUE;
	case G_TYPE_INT64:
		v->type = RL_CONFIG_INT;
		v->u.i = json_node_get_int(n);
		return TRUE;
	case G_TYPE_DOUBLE:
		v->type = RL_CONFIG_DOUBLE;
		v->u.d = json_node_get_double(n);
		if (!number_ok(v->u.d))
			return fail(error, RL_PAYLOAD_ERROR_BAD_VALUE,
				    "%s: number out of range (0 or 1e-4..1e15 "
				    "in magnitude)", path);
		return TRUE;
	case G_TYPE_STRING:
		v->type = RL_CONFIG_STRING;
		v->u.s = json_node_get_string(n);
		if (strlen(v->u.s) > RL_CONFIG_STRING_MAX)
			return fail(error, RL_PAYLOAD_ERROR_BAD_VALUE,
				    "%s: string longer than %d bytes", path,
				    RL_CONFIG_STRING_MAX);
		return TRUE;
	default:
		return fail(error, RL_PAYLOAD_ERROR_BAD_SCHEMA,
			    "%s: not a boolean, number or string", path);
	}
}

gboolean rl_payload_parse_config(const char *data, size_t len,
				 struct rl_config_msg *ret_msg, GError **error)
{
	static const char *const allowed[] = {
		"schema", "msg_id", "event_time", "gateway_id", "settings", NULL
	};
	g_autoptr(JsonParser) parser = NULL;
	g_autoptr(GList) names = NULL;
	g_autofree struct rl_config_entry *entries = NULL;
	JsonObject *obj = NULL, *settings;
	JsonNode *sn;
	const char *msg_id, *gateway_id;
	int64_t event_time;
	size_t n = 0;

	g_return_val_if_fail(ret_msg, FALSE);
	parser = load(data, len, RL_PAYLOAD_CONFIG_MAX, &obj, error);
	if (!parser)
		return FALSE;
	if (!check_schema(obj, RL_TOPIC_CONFIG, error) ||
	    !only_members(obj, allowed, error) ||
	    !get_inbound(obj, &msg_id, &event_time, &gateway_id, error))
		return FALSE;

	sn = json_object_get_member(obj, "settings");
	if (!sn)
		return fail(error, RL_PAYLOAD_ERROR_BAD_SCHEMA,
			    "$.settings: missing");
	if (!JSON_NODE_HOLDS_OBJECT(sn))
		return fail(error, RL_PAYLOAD_ERROR_BAD_SCHEMA,
			    "$.settings: not an object");
	settings = json_node_get_object(sn);
	if (json_object_get_size(settings) > RL_CONFIG_MAX_ENTRIES)
		return fail(error, RL_PAYLOAD_ERROR_BAD_VALUE, "$.settings: "
			    "more than %d entries", RL_CONFIG_MAX_ENTRIES);

	/* validate everything before copying anything */
	names = json_object_get_members(settings);
	entries = g_new0(struct rl_config_entry, RL_CONFIG_MAX_ENTRIES);
	for (GList *l = names; l; l = l->next) {
		const char *key = l->data;
		g_autofree gchar *path = member_path("$.settings", key);

		if (n == RL_CONFIG_MAX_ENTRIES)	/* never: size checked */
			break;
		if (rl_payload_config_key_validate(key) < 0)
			return fail(error, RL_PAYLOAD_ERROR_BAD_VALUE,
				    "%s: key not [a-z0-9_.]{1,64}", path);
		entries[n].key = key;
		if (!get_setting(json_object_get_member(settings, key), path,
				 &entries[n].value, error))
			return FALSE;
		n++;
	}

	for (size_t i = 0; i < n; i++) {
		entries[i].key = g_strdup(entries[i].key);
		if (entries[i].value.type == RL_CONFIG_STRING)
			entries[i].value.u.s = g_strdup(entries[i].value.u.s);
	}
	*ret_msg = (struct rl_config_msg){
		.msg_id = g_strdup(msg_id),
		.event_time_us = event_time,
		.gateway_id = g_strdup(gateway_id),
		.entries = n ? g_steal_pointer(&entries) : NULL,
		.n_entries = n,
	};
	return TRUE;
}

/* ---- msg_id of a rejected message ---------------------------------------- */

gchar *rl_payload_peek_msg_id(const char *data, size_t len)
{
	g_autoptr(JsonParser) parser = NULL;
	JsonObject *obj = NULL;
	const char *msg_id;

	parser = load(data, len, RL_PAYLOAD_CONFIG_MAX, &obj, NULL);
	if (!parser || !get_string(obj, "msg_id", true, false, &msg_id, NULL) ||
	    rl_payload_uuid_validate(msg_id) < 0)
		return NULL;
	return g_strdup(msg_id);
}
