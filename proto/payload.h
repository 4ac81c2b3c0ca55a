/* SPDX-License-Identifier: MIT */
/*
 * rehablink MQTT payloads: JSON builders and parsers (json-glib).
 *
 * The wire format is docs/protocol.md section 2; each kind has a JSON Schema
 * in proto/schema/<kind>.schema.json (kind names are rl_topic_kind_name()).
 *
 * Builders take a struct and, for gateway -> clinic kinds, the envelope, and
 * return a newly allocated compact JSON string (free with g_free), or NULL
 * with an RL_PAYLOAD_ERROR_INVALID error naming the offending field as a
 * JSON path ("$.score: 11 out of range 0..10"). Builders are deterministic:
 * they never read the clock or generate ids; the caller passes msg_id and
 * every time.
 *
 * Parsers (the clinic -> gateway kinds alert_ack and config) take any bytes
 * (not NUL-terminated, may contain anything) and return TRUE with their
 * output filled, or FALSE with an error whose code is the error payload's
 * code (bad_json, bad_schema, bad_value) and whose message names what was
 * wrong and where ("$.at: not an RFC 3339 time"). The output is written only
 * on success; clear it with its _clear function (NULL-safe, idempotent).
 * Parsers accept only strict RFC 8259 JSON (json-glib alone would accept
 * single quotes, hex numbers and silently wrap integer overflow) and reject
 * members the schema does not list. A member given twice counts once, with
 * its last value (json-glib's behaviour, which Python's json shares).
 *
 * Times are int64 microseconds since the Unix epoch, UTC, in
 * [0, RL_TIME_MAX]; on the wire they are RFC 3339 UTC with milliseconds
 * ("2024-05-01T08:30:00.123Z", microseconds truncated).
 */
#ifndef REHABLINK_PROTO_PAYLOAD_H
#define REHABLINK_PROTO_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "topic.h"

/* "rehablink/<kind>/<version>" in every payload's "schema" member. */
#define RL_PAYLOAD_SCHEMA_PREFIX "rehablink/"
#define RL_PAYLOAD_VERSION       1

/* Largest clinic message accepted, in bytes. */
#define RL_PAYLOAD_ACK_MAX       4096
#define RL_PAYLOAD_CONFIG_MAX    65536

#define RL_TIME_MAX              INT64_C(253402300799999999) /* 9999-12-31T23:59:59.999999Z */
#define RL_TIME_NONE             INT64_MIN	/* a nullable time that is null */
#define RL_NONE                  (-1)		/* a nullable count that is null */
/* Non-integral numbers (config doubles, alert trigger values) are 0 or of a
 * magnitude in [RL_NUMBER_MIN, RL_NUMBER_MAX]. */
#define RL_NUMBER_MIN            1e-4
#define RL_NUMBER_MAX            1e15

#define RL_UUID_LEN              36
#define RL_TOKEN_MAX             128	/* aggregate_id, alert_id */
#define RL_NAME_MAX              64	/* rule names, trigger names, versions */
#define RL_NOTE_MAX              280	/* characters (code points) in a note */
#define RL_DETAIL_MAX            512	/* bytes in an error detail */
#define RL_CONFIG_MAX_ENTRIES    64
#define RL_CONFIG_KEY_MAX        64
#define RL_CONFIG_STRING_MAX     256	/* bytes */
#define RL_CONFIG_REASON_MAX     256	/* bytes */
#define RL_ALERT_MAX_TRIGGERS    16
#define RL_ALERT_MAX_PAIN_POINTS 288	/* pain reports in the 24 h context */

/* ---- errors -------------------------------------------------------------- */

#define RL_PAYLOAD_ERROR (rl_payload_error_quark())
GQuark rl_payload_error_quark(void);

enum rl_payload_error_code {
	RL_PAYLOAD_ERROR_BAD_JSON,	/* not strict JSON, too deep, bad UTF-8 */
	RL_PAYLOAD_ERROR_BAD_SCHEMA,	/* wrong shape: type, missing or unknown
					 * member, unknown schema or version */
	RL_PAYLOAD_ERROR_BAD_VALUE,	/* right type, wrong value: range,
					 * length, syntax, time */
	RL_PAYLOAD_ERROR_UNKNOWN_ALERT,	/* set by the gateway, not the parser */
	RL_PAYLOAD_ERROR_BAD_TOPIC,	/* set by the gateway: unknown command */
	RL_PAYLOAD_ERROR_INVALID,	/* a builder's input is invalid */
};

/* The error payload's "code" string for an error code ("bad_json"), or NULL
 * for RL_PAYLOAD_ERROR_INVALID (never sent) and values outside the enum. */
const char *rl_payload_error_code_name(enum rl_payload_error_code code);

/* ---- 2.2 envelope -------------------------------------------------------- */

/* Mirrors enum wb_time_quality (same values), plus ESTIMATED for times the
 * gateway re-stamped (a record from an unsynced wearable placed on the
 * gateway's clock). */
enum rl_time_quality {
	RL_TIME_UNSYNCED = 0,
	RL_TIME_SYNCED = 1,
	RL_TIME_HOLDOVER = 2,
	RL_TIME_ESTIMATED = 3,
};

struct rl_envelope {
	const char *msg_id;		/* UUID, 36 characters, any hex case */
	int64_t event_time_us;		/* when it happened */
	enum rl_time_quality time_quality;	/* of event_time */
	int64_t received_at_us;		/* when the gateway received it */
	const char *gateway_id;		/* [A-Za-z0-9_-]{1,64} */
	const char *patient_id;		/* patient kinds (rl_topic_kind_has_patient);
					 * wearable_status: NULL = unassigned;
					 * other kinds: ignored */
};

const char *rl_time_quality_name(enum rl_time_quality q);	/* "synced" */

/* RFC 3339 UTC with milliseconds for t_us in [0, RL_TIME_MAX], else NULL. */
gchar *rl_payload_format_time(int64_t t_us);
/* Parses an RFC 3339 date-time ("T" or "t", fraction of 1..9 digits, "Z",
 * "z" or +hh:mm/-hh:mm; no leap second) into Unix microseconds (UTC,
 * fraction beyond microseconds truncated). */
gboolean rl_payload_parse_time(const char *s, int64_t *ret_us);

/* 0 if s is a UUID string (8-4-4-4-12 hex digits), else -EINVAL. */
int rl_payload_uuid_validate(const char *s);

/* ---- 2.3 gateway status -------------------------------------------------- */

enum rl_gateway_state {
	RL_GATEWAY_ONLINE,
	RL_GATEWAY_OFFLINE,
};

struct rl_gateway_status {
	enum rl_gateway_state state;
	const char *version;		/* software version [A-Za-z0-9._+~-]{1,64} */
	int64_t uptime_s;		/* >= 0, or RL_NONE */
	bool clock_synced;
	int64_t outbox_depth;		/* messages waiting, >= 0, or RL_NONE */
	int64_t oldest_age_s;		/* age of the oldest waiting, or RL_NONE */
	int wearables;			/* wearables configured, >= 0 */
};

gchar *rl_payload_build_gateway_status(const struct rl_gateway_status *st,
				       const struct rl_envelope *env,
				       GError **error);
/* The last will: state "offline", uptime_s, outbox_depth and oldest_age_s
 * null (they are unknown when the broker publishes it). */
gchar *rl_payload_build_gateway_will(const char *version, bool clock_synced,
				     int wearables,
				     const struct rl_envelope *env,
				     GError **error);

/* ---- 2.4 wearable status ------------------------------------------------- */

enum rl_link_state {
	RL_LINK_CONNECTED,	/* connected, services being resolved */
	RL_LINK_SYNCING,	/* history sync running */
	RL_LINK_LIVE,		/* synced, live notifications flowing */
	RL_LINK_DISCONNECTED,	/* out of range or off */
	RL_LINK_NEEDS_REPAIR,	/* bond lost: needs pairing again */
};
const char *rl_link_state_name(enum rl_link_state s);	/* "needs-repair" */

struct rl_wearable_status {
	const char *alias;		/* wearable alias, an id as in topics */
	enum rl_link_state link;
	int battery_pct;		/* 0..100 or RL_NONE */
	int64_t last_seen_us;		/* last contact, or RL_TIME_NONE */
	int64_t freshness_s;		/* age of the newest record, >= 0, or RL_NONE */
	int64_t last_seq;		/* newest stored seq 0..2^32-1, or RL_NONE */
	int storage_pct;		/* wearable flash fill 0..100, or RL_NONE */
};

gchar *rl_payload_build_wearable_status(const struct rl_wearable_status *ws,
					const struct rl_envelope *env,
					GError **error);

/* ---- 2.5 aggregates ------------------------------------------------------ */

/* Seconds spent in each posture class (enum wb_posture_class). */
struct rl_posture_seconds {
	int64_t upright;
	int64_t flexed;
	int64_t reclined;
	int64_t lying;
	int64_t unknown;
};

/* One window. A late record revises a published window: the revision is a
 * new message (new msg_id) with the same aggregate_id and revision + 1. */
struct rl_aggregate {
	const char *aggregate_id;	/* [A-Za-z0-9_.:-]{1,128}, stable per window */
	int revision;			/* >= 1 */
	int64_t start_us;		/* window [start, end) */
	int64_t end_us;			/* minute: 1..60 s after start;
					 * day: 1 s..26 h after start */
	int64_t steps;			/* 0..5 per second of the window */
	int64_t walking_minutes;	/* 0..window minutes (rounded up) */
	int cadence_spm;		/* steps per minute while walking,
					 * 0..300, or RL_NONE (no walking) */
	struct rl_posture_seconds posture_s;	/* each 0..window seconds */
	int64_t flexed_over_30_s;	/* 0..window seconds */
	int64_t flexed_over_60_s;	/* 0..flexed_over_30_s */
	int64_t longest_still_s;	/* longest bout without steps or posture
					 * change inside the window */
	int64_t records;		/* wearable records aggregated, >= 0 */
};

struct rl_aggregate_day {
	struct rl_aggregate agg;
	int post_op_day;		/* 0 = day of surgery, 0..3650, or RL_NONE */
	const char *local_date;		/* "YYYY-MM-DD", the patient's local day */
	int utc_offset_min;		/* local time - UTC at start, -840..840 */
};

gchar *rl_payload_build_aggregate_minute(const struct rl_aggregate *agg,
					 const struct rl_envelope *env,
					 GError **error);
gchar *rl_payload_build_aggregate_day(const struct rl_aggregate_day *day,
				      const struct rl_envelope *env,
				      GError **error);

/* ---- 2.6 pain ------------------------------------------------------------ */

/* Same bits as enum wb_pain_flag. */
enum rl_pain_flag {
	RL_PAIN_BREATHLESSNESS = 1u << 0,	/* red flag */
	RL_PAIN_CHEST_PAIN = 1u << 1,		/* red flag */
	RL_PAIN_CALF_PAIN_SWELLING = 1u << 2,	/* red flag */
	RL_PAIN_FEVER = 1u << 3,		/* red flag */
	RL_PAIN_BLEEDING = 1u << 4,		/* red flag */
	RL_PAIN_MEDICATION_TAKEN = 1u << 5,
	RL_PAIN_ONE_SIDED = 1u << 6,
};
#define RL_PAIN_RED_FLAGS        0x001fu
#define RL_PAIN_FLAGS_KNOWN      0x007fu
#define RL_PAIN_SCORE_MAX        10
/* The JSON name of one flag bit ("calf_pain_swelling"), NULL if unknown. */
const char *rl_pain_flag_name(unsigned int flag);

struct rl_pain {
	const char *wearable;		/* alias of the wearable it came from */
	uint32_t seq;			/* the wearable's record sequence number */
	int score;			/* 0..10 */
	unsigned int flags;		/* enum rl_pain_flag; others must be 0 */
};

/* red_flag is derived: true when any RL_PAIN_RED_FLAGS bit is set. */
gchar *rl_payload_build_pain(const struct rl_pain *pain,
			     const struct rl_envelope *env, GError **error);

/* ---- 2.7 alert ----------------------------------------------------------- */

enum rl_alert_tier {
	RL_ALERT_INFORMATIONAL,
	RL_ALERT_ROUTINE,
	RL_ALERT_URGENT,
	RL_ALERT_EMERGENCY,
};
enum rl_alert_state {
	RL_ALERT_OPEN,
	RL_ALERT_ACKNOWLEDGED,
	RL_ALERT_RESOLVED,
};
const char *rl_alert_tier_name(enum rl_alert_tier t);
const char *rl_alert_state_name(enum rl_alert_state s);

struct rl_alert_trigger {
	const char *name;		/* [a-z0-9_]{1,64}, unique in the alert */
	double value;			/* 0 or |value| in [RL_NUMBER_MIN, RL_NUMBER_MAX];
					 * integral values print as integers */
};

struct rl_pain_point {
	int64_t time_us;
	int score;			/* 0..10 */
};

struct rl_alert_context {
	const struct rl_pain_point *pain_24h;	/* oldest first */
	size_t n_pain_24h;			/* 0..RL_ALERT_MAX_PAIN_POINTS */
	int64_t flexed_s_2h;		/* seconds flexed in the last 2 h, 0..7200, or RL_NONE */
	int64_t steps_today;		/* >= 0 or RL_NONE */
	int64_t steps_yesterday;	/* >= 0 or RL_NONE */
	int battery_pct;		/* 0..100 or RL_NONE */
	int64_t data_age_s;		/* age of the newest wearable data, or RL_NONE */
};

/* Who acknowledged or resolved, from the clinic's alert_ack. */
struct rl_alert_ack_info {
	const char *by;			/* clinician pseudonym, an id */
	int64_t at_us;
	const char *note;		/* NULL or up to RL_NOTE_MAX characters */
};

/* One notification of an alert. alert_id is stable for the alert's life;
 * notification counts its messages from 1 (raised, re-notified, tier
 * changed, acknowledged, resolved: each a new notification with a new
 * msg_id; a retransmission of the same notification reuses its msg_id). */
struct rl_alert {
	const char *alert_id;		/* [A-Za-z0-9_.:-]{1,128} */
	uint32_t notification;		/* >= 1 */
	const char *rule;		/* rule name [a-z0-9_.-]{1,64} */
	enum rl_alert_tier tier;
	enum rl_alert_state state;
	int64_t raised_at_us;
	const struct rl_alert_trigger *trigger;	/* the values that fired it */
	size_t n_trigger;			/* 1..RL_ALERT_MAX_TRIGGERS */
	struct rl_alert_context context;
	const struct rl_alert_ack_info *ack;	/* NULL while open; required
						 * when acknowledged */
};

gchar *rl_payload_build_alert(const struct rl_alert *alert,
			      const struct rl_envelope *env, GError **error);

/* ---- 2.8 alert ack (clinic -> gateway) ----------------------------------- */

enum rl_ack_action {
	RL_ACK_ACKNOWLEDGE,
	RL_ACK_RESOLVE,
};
const char *rl_ack_action_name(enum rl_ack_action a);

/* Clinic -> gateway messages carry a reduced envelope: schema, msg_id,
 * event_time (when the clinic sent it) and gateway_id (the addressee); no
 * time_quality or received_at. Filled by the parser, every string is owned
 * by the struct (freed by rl_alert_ack_clear); filled by a caller for the
 * builder, they are borrowed. */
struct rl_alert_ack {
	const char *msg_id;
	int64_t event_time_us;
	const char *gateway_id;
	const char *alert_id;		/* [A-Za-z0-9_.:-]{1,128} */
	const char *by;			/* clinician pseudonym, an id */
	int64_t at_us;			/* when the clinician acted */
	const char *note;		/* NULL if absent or null */
	enum rl_ack_action action;
};
typedef struct rl_alert_ack RlAlertAck;
void rl_alert_ack_clear(struct rl_alert_ack *ack);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(RlAlertAck, rl_alert_ack_clear)

gboolean rl_payload_parse_alert_ack(const char *data, size_t len,
				    struct rl_alert_ack *ret_ack,
				    GError **error);
/* For the clinic side, tests and tools. */
gchar *rl_payload_build_alert_ack(const struct rl_alert_ack *ack,
				  GError **error);

/* ---- 2.9 config (clinic -> gateway) -------------------------------------- */

enum rl_config_type {
	RL_CONFIG_BOOL,
	RL_CONFIG_INT,			/* a JSON number without fraction or exponent */
	RL_CONFIG_DOUBLE,		/* any other JSON number: 0 or |d| in
					 * [RL_NUMBER_MIN, RL_NUMBER_MAX] */
	RL_CONFIG_STRING,		/* UTF-8, up to RL_CONFIG_STRING_MAX bytes */
};

struct rl_config_value {
	enum rl_config_type type;
	union {
		bool b;
		int64_t i;
		double d;
		const char *s;
	} u;
};

struct rl_config_entry {
	const char *key;		/* [a-z0-9_.]{1,64} */
	struct rl_config_value value;
};

/* A config message; entries in message order. Filled by the parser, every
 * string (and the entries array) is owned by the struct (freed by
 * rl_config_msg_clear); filled by a caller for the builder, borrowed. */
struct rl_config_msg {
	const char *msg_id;
	int64_t event_time_us;
	const char *gateway_id;
	struct rl_config_entry *entries;
	size_t n_entries;		/* 0..RL_CONFIG_MAX_ENTRIES */
};
typedef struct rl_config_msg RlConfigMsg;
void rl_config_msg_clear(struct rl_config_msg *msg);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(RlConfigMsg, rl_config_msg_clear)

/* Checks the shape only: an object "settings" of at most 64 scalar values
 * (boolean, number, string) with keys [a-z0-9_.]{1,64}. Applying them is
 * the caller's business. */
gboolean rl_payload_parse_config(const char *data, size_t len,
				 struct rl_config_msg *ret_msg, GError **error);
gchar *rl_payload_build_config(const struct rl_config_msg *msg,
			       GError **error);

/* 0 if key is a valid setting key, else -EINVAL. */
int rl_payload_config_key_validate(const char *key);

/* The msg_id of a clinic message that failed to parse, for the error
 * payload: the "msg_id" member of a JSON object if it is a UUID string, else
 * NULL. Never fails otherwise. */
gchar *rl_payload_peek_msg_id(const char *data, size_t len);

/* ---- 2.10 config state --------------------------------------------------- */

struct rl_config_rejection {
	const char *key;		/* as sent (up to 64 bytes of valid UTF-8) */
	const char *reason;		/* up to RL_CONFIG_REASON_MAX bytes */
};

struct rl_config_state {
	const char *config_msg_id;	/* the cmd/config message applied last,
					 * NULL before any (defaults and file) */
	const struct rl_config_entry *settings;	/* the applied settings */
	size_t n_settings;			/* 0..RL_CONFIG_MAX_ENTRIES */
	const struct rl_config_rejection *rejected;
	size_t n_rejected;			/* 0..RL_CONFIG_MAX_ENTRIES */
};

gchar *rl_payload_build_config_state(const struct rl_config_state *cs,
				     const struct rl_envelope *env,
				     GError **error);

/* ---- 2.11 error ---------------------------------------------------------- */

struct rl_error_report {
	bool has_topic_kind;		/* false: the topic was no known command */
	enum rl_topic_kind topic_kind;	/* a command kind */
	const char *rejected_msg_id;	/* NULL if none could be read */
	enum rl_payload_error_code code;	/* not RL_PAYLOAD_ERROR_INVALID */
	const char *detail;		/* 1..RL_DETAIL_MAX bytes of UTF-8 */
};

gchar *rl_payload_build_error(const struct rl_error_report *er,
			      const struct rl_envelope *env, GError **error);

/* ---- 2.12 FHIR Observation ----------------------------------------------- */

enum rl_fhir_kind {
	RL_FHIR_PAIN,		/* LOINC 72514-3, valueInteger 0..10 */
	RL_FHIR_DAILY_STEPS,	/* LOINC 41950-7, valueQuantity steps/day */
};

/* The Observation's identifier is {"system": "urn:rehablink:observation",
 * "value": "<gateway_id>:<source_id>"}: stable across retransmissions and
 * revisions, so that a FHIR server's conditional create or update keeps one
 * resource per observation. */
struct rl_fhir_observation {
	enum rl_fhir_kind kind;
	const char *source_id;		/* [A-Za-z0-9_.:-]{1,128}: the day
					 * aggregate's aggregate_id, or for pain
					 * e.g. "<wearable>:<seq>" */
	int64_t effective_us;		/* pain: time of the report;
					 * steps: start of the day */
	int64_t effective_end_us;	/* steps: end of the day; pain: ignored */
	int64_t value;			/* pain 0..10; steps >= 0 */
};

gchar *rl_payload_build_fhir_observation(const struct rl_fhir_observation *obs,
					 const struct rl_envelope *env,
					 GError **error);

#endif
