/* SPDX-License-Identifier: MIT */
/*
 * rehablink MQTT topic tree: builder, subscription filters and parser.
 *
 * Plain C11: no allocation, no I/O, no logging, no GLib. Builders write a
 * NUL-terminated topic into a caller buffer and return its length (without
 * the NUL), or -EINVAL for a bad kind or id, -ENOBUFS when the buffer is too
 * small (the buffer may then be partly written). The parser takes any byte
 * string and returns 0 with its output filled, or a negative errno with its
 * output untouched (only the optional struct rl_topic_err is written).
 *
 * The tree is specified in docs/protocol.md section 2.1. Topics carry no
 * personal data: only the pseudonymous gateway id, patient id and wearable
 * alias from the configuration, each [A-Za-z0-9_-]{1,64}.
 *
 *   rehablink/v1/G/status                      gateway status (retained, last will)
 *   rehablink/v1/G/wearable/W/status           wearable status (retained)
 *   rehablink/v1/G/patient/P/aggregate/minute  per-minute aggregate
 *   rehablink/v1/G/patient/P/aggregate/day     per-day summary
 *   rehablink/v1/G/patient/P/pain              pain report
 *   rehablink/v1/G/patient/P/alert             alert notifications
 *   rehablink/v1/G/patient/P/fhir/observation  FHIR R4 Observation (optional)
 *   rehablink/v1/G/cmd/alert-ack               clinic -> gateway
 *   rehablink/v1/G/cmd/config                  clinic -> gateway
 *   rehablink/v1/G/config/state                applied configuration (retained)
 *   rehablink/v1/G/cmd/error                   rejection of a clinic message
 */
#ifndef REHABLINK_PROTO_TOPIC_H
#define REHABLINK_PROTO_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RL_TOPIC_ROOT            "rehablink/v1/"
#define RL_TOPIC_VERSION         1
#define RL_TOPIC_ID_MAX          64	/* bytes in an id, without NUL */
/* Longest topic: root + G + "/patient/" + P + "/fhir/observation". */
#define RL_TOPIC_MAX_LEN         (13 + RL_TOPIC_ID_MAX + 9 + RL_TOPIC_ID_MAX + 17)
#define RL_TOPIC_BUF_SIZE        (RL_TOPIC_MAX_LEN + 1)

/* Every topic kind; also the payload kinds of proto/payload.h, whose
 * schema names are rl_topic_kind_name(). */
enum rl_topic_kind {
	RL_TOPIC_GATEWAY_STATUS,	/* G/status */
	RL_TOPIC_WEARABLE_STATUS,	/* G/wearable/W/status */
	RL_TOPIC_AGGREGATE_MINUTE,	/* G/patient/P/aggregate/minute */
	RL_TOPIC_AGGREGATE_DAY,		/* G/patient/P/aggregate/day */
	RL_TOPIC_PAIN,			/* G/patient/P/pain */
	RL_TOPIC_ALERT,			/* G/patient/P/alert */
	RL_TOPIC_FHIR_OBSERVATION,	/* G/patient/P/fhir/observation */
	RL_TOPIC_ALERT_ACK,		/* G/cmd/alert-ack (clinic -> gateway) */
	RL_TOPIC_CONFIG,		/* G/cmd/config (clinic -> gateway) */
	RL_TOPIC_CONFIG_STATE,		/* G/config/state */
	RL_TOPIC_ERROR,			/* G/cmd/error */
};
#define RL_TOPIC_KIND_COUNT      11

/* Ids for rl_topic_build(). gateway is always needed; patient only for the
 * patient kinds, wearable only for RL_TOPIC_WEARABLE_STATUS; ids a kind does
 * not use are ignored (may be NULL). */
struct rl_topic_ids {
	const char *gateway;
	const char *patient;
	const char *wearable;
};

/* A parsed topic: the kind and the ids it carries, NUL-terminated. Ids the
 * kind does not carry are empty strings. */
struct rl_topic {
	enum rl_topic_kind kind;
	char gateway[RL_TOPIC_ID_MAX + 1];
	char patient[RL_TOPIC_ID_MAX + 1];
	char wearable[RL_TOPIC_ID_MAX + 1];
};

/* Where and what, for a parser error. Optional (may be NULL). */
struct rl_topic_err {
	size_t offset;		/* byte offset of the offending level or byte */
	const char *reason;	/* static string, e.g. "invalid character in id" */
};

/* 0 if id is a valid gateway id, patient id or wearable alias
 * ([A-Za-z0-9_-]{1,64}), else -EINVAL (also for NULL). */
int rl_topic_id_validate(const char *id);
/* The same for a length-delimited id (may contain NUL: then invalid). */
int rl_topic_id_validate_n(const char *id, size_t len);

/* Builds the topic of kind for ids into buf[size]. */
ssize_t rl_topic_build(enum rl_topic_kind kind, const struct rl_topic_ids *ids,
		       char *buf, size_t size);

/* The gateway's subscription: "rehablink/v1/G/cmd/+". It also matches the
 * gateway's own cmd/error messages (an MQTT 3.1.1 broker echoes them back):
 * drop every kind that is not rl_topic_kind_is_command(). */
ssize_t rl_topic_filter_commands(const char *gateway_id, char *buf,
				 size_t size);
/* A dashboard's subscription: "rehablink/v1/+/#" for every gateway, or
 * "rehablink/v1/G/#" for one gateway when gateway_id is not NULL. */
ssize_t rl_topic_filter_dashboard(const char *gateway_id, char *buf,
				  size_t size);

/* Classifies topic[0..len) (not NUL-terminated; may contain anything).
 * Errors:
 *   -EINVAL           not a well-formed rehablink topic: empty, embedded NUL,
 *                     a wildcard, an empty level, not under "rehablink/",
 *                     a bad version level, an invalid or too long id
 *   -EPROTONOSUPPORT  "rehablink/vN/..." with N other than 1
 *   -EOPNOTSUPP       well-formed under "rehablink/v1/G/" but no known kind
 *                     (for instance a newer kind or an unknown command)
 * On error *ret_topic is untouched and *ret_err (if not NULL) says where. */
int rl_topic_parse(const char *topic, size_t len, struct rl_topic *ret_topic,
		   struct rl_topic_err *ret_err);

/* Static properties of a kind (docs/protocol.md 2.1). For a value outside
 * the enum: name NULL, the others false or 0. */
const char *rl_topic_kind_name(enum rl_topic_kind kind);	/* "alert_ack" */
bool rl_topic_kind_is_command(enum rl_topic_kind kind);	/* clinic -> gateway */
bool rl_topic_kind_is_retained(enum rl_topic_kind kind);
bool rl_topic_kind_has_patient(enum rl_topic_kind kind);
/* MQTT 5 message expiry interval in seconds, 0 for none. */
uint32_t rl_topic_kind_expiry_s(enum rl_topic_kind kind);
/* MQTT QoS to publish and subscribe with: 1 for every kind. */
int rl_topic_kind_qos(enum rl_topic_kind kind);

/* A short English name for a parser or builder errno. */
const char *rl_topic_strerror(int err);

#endif
