// SPDX-License-Identifier: MIT
/*
 * rehablink MQTT topic tree (docs/protocol.md 2.1). See topic.h.
 */
#include <errno.h>
#include <string.h>

#include "topic.h"

#define ROOT_PREFIX	"rehablink/"
#define EXPIRY_WEEK	(7u * 24u * 3600u)
#define EXPIRY_DAY	(24u * 3600u)

/* ---- ids ----------------------------------------------------------------- */

static bool id_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int rl_topic_id_validate_n(const char *id, size_t len)
{
	if (!id || len == 0 || len > RL_TOPIC_ID_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (!id_char(id[i]))
			return -EINVAL;
	return 0;
}

int rl_topic_id_validate(const char *id)
{
	if (!id)
		return -EINVAL;
	/* strnlen: never read more than one byte past the longest id */
	return rl_topic_id_validate_n(id, strnlen(id, RL_TOPIC_ID_MAX + 1));
}

/* ---- kinds --------------------------------------------------------------- */

const char *rl_topic_kind_name(enum rl_topic_kind kind)
{
	switch (kind) {
	case RL_TOPIC_GATEWAY_STATUS:
		return "gateway_status";
	case RL_TOPIC_WEARABLE_STATUS:
		return "wearable_status";
	case RL_TOPIC_AGGREGATE_MINUTE:
		return "aggregate_minute";
	case RL_TOPIC_AGGREGATE_DAY:
		return "aggregate_day";
	case RL_TOPIC_PAIN:
		return "pain";
	case RL_TOPIC_ALERT:
		return "alert";
	case RL_TOPIC_FHIR_OBSERVATION:
		return "fhir_observation";
	case RL_TOPIC_ALERT_ACK:
		return "alert_ack";
	case RL_TOPIC_CONFIG:
		return "config";
	case RL_TOPIC_CONFIG_STATE:
		return "config_state";
	case RL_TOPIC_ERROR:
		return "error";
	}
	return NULL;
}

/* The levels after "rehablink/v1/G/" (or after the patient id, or the
 * wearable alias), joined by '/'. */
static const char *kind_suffix(enum rl_topic_kind kind)
{
	switch (kind) {
	case RL_TOPIC_GATEWAY_STATUS:
		return "status";
	case RL_TOPIC_WEARABLE_STATUS:
		return "status";
	case RL_TOPIC_AGGREGATE_MINUTE:
		return "aggregate/minute";
	case RL_TOPIC_AGGREGATE_DAY:
		return "aggregate/day";
	case RL_TOPIC_PAIN:
		return "pain";
	case RL_TOPIC_ALERT:
		return "alert";
	case RL_TOPIC_FHIR_OBSERVATION:
		return "fhir/observation";
	case RL_TOPIC_ALERT_ACK:
		return "cmd/alert-ack";
	case RL_TOPIC_CONFIG:
		return "cmd/config";
	case RL_TOPIC_CONFIG_STATE:
		return "config/state";
	case RL_TOPIC_ERROR:
		return "cmd/error";
	}
	return NULL;
}

bool rl_topic_kind_is_command(enum rl_topic_kind kind)
{
	switch (kind) {
	case RL_TOPIC_ALERT_ACK:
	case RL_TOPIC_CONFIG:
		return true;
	case RL_TOPIC_GATEWAY_STATUS:
	case RL_TOPIC_WEARABLE_STATUS:
	case RL_TOPIC_AGGREGATE_MINUTE:
	case RL_TOPIC_AGGREGATE_DAY:
	case RL_TOPIC_PAIN:
	case RL_TOPIC_ALERT:
	case RL_TOPIC_FHIR_OBSERVATION:
	case RL_TOPIC_CONFIG_STATE:
	case RL_TOPIC_ERROR:
		return false;
	}
	return false;
}

bool rl_topic_kind_is_retained(enum rl_topic_kind kind)
{
	switch (kind) {
	case RL_TOPIC_GATEWAY_STATUS:
	case RL_TOPIC_WEARABLE_STATUS:
	case RL_TOPIC_CONFIG_STATE:
		return true;
	case RL_TOPIC_AGGREGATE_MINUTE:
	case RL_TOPIC_AGGREGATE_DAY:
	case RL_TOPIC_PAIN:
	case RL_TOPIC_ALERT:
	case RL_TOPIC_FHIR_OBSERVATION:
	case RL_TOPIC_ALERT_ACK:
	case RL_TOPIC_CONFIG:
	case RL_TOPIC_ERROR:
		return false;
	}
	return false;
}

bool rl_topic_kind_has_patient(enum rl_topic_kind kind)
{
	switch (kind) {
	case RL_TOPIC_AGGREGATE_MINUTE:
	case RL_TOPIC_AGGREGATE_DAY:
	case RL_TOPIC_PAIN:
	case RL_TOPIC_ALERT:
	case RL_TOPIC_FHIR_OBSERVATION:
		return true;
	case RL_TOPIC_GATEWAY_STATUS:
	case RL_TOPIC_WEARABLE_STATUS:
	case RL_TOPIC_ALERT_ACK:
	case RL_TOPIC_CONFIG:
	case RL_TOPIC_CONFIG_STATE:
	case RL_TOPIC_ERROR:
		return false;
	}
	return false;
}

uint32_t rl_topic_kind_expiry_s(enum rl_topic_kind kind)
{
	switch (kind) {
	case RL_TOPIC_AGGREGATE_MINUTE:
	case RL_TOPIC_AGGREGATE_DAY:
	case RL_TOPIC_FHIR_OBSERVATION:
		return EXPIRY_WEEK;
	case RL_TOPIC_ERROR:
		return EXPIRY_DAY;
	case RL_TOPIC_GATEWAY_STATUS:
	case RL_TOPIC_WEARABLE_STATUS:
	case RL_TOPIC_PAIN:
	case RL_TOPIC_ALERT:
	case RL_TOPIC_ALERT_ACK:
	case RL_TOPIC_CONFIG:
	case RL_TOPIC_CONFIG_STATE:
		return 0;
	}
	return 0;
}

int rl_topic_kind_qos(enum rl_topic_kind kind)
{
	return rl_topic_kind_name(kind) ? 1 : 0;
}

/* ---- builders ------------------------------------------------------------ */

struct out {
	char *buf;
	size_t size;
	size_t len;
};

static void out_add(struct out *o, const char *s)
{
	size_t n = strlen(s);

	/* keep room for the NUL; count what does not fit */
	if (o->len < o->size && o->size - o->len > n)
		memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static ssize_t out_finish(struct out *o)
{
	if (o->len >= o->size)
		return -ENOBUFS;
	o->buf[o->len] = '\0';
	return (ssize_t) o->len;
}

ssize_t rl_topic_build(enum rl_topic_kind kind, const struct rl_topic_ids *ids,
		       char *buf, size_t size)
{
	struct out o = { .buf = buf, .size = buf ? size : 0, .len = 0 };
	const char *suffix = kind_suffix(kind);

	if (!suffix || !ids || rl_topic_id_validate(ids->gateway) < 0)
		return -EINVAL;
	if (rl_topic_kind_has_patient(kind) &&
	    rl_topic_id_validate(ids->patient) < 0)
		return -EINVAL;
	if (kind == RL_TOPIC_WEARABLE_STATUS &&
	    rl_topic_id_validate(ids->wearable) < 0)
		return -EINVAL;

	out_add(&o, RL_TOPIC_ROOT);
	out_add(&o, ids->gateway);
	out_add(&o, "/");
	if (rl_topic_kind_has_patient(kind)) {
		out_add(&o, "patient/");
		out_add(&o, ids->patient);
		out_add(&o, "/");
	} else if (kind == RL_TOPIC_WEARABLE_STATUS) {
		out_add(&o, "wearable/");
		out_add(&o, ids->wearable);
		out_add(&o, "/");
	}
	out_add(&o, suffix);
	return out_finish(&o);
}

ssize_t rl_topic_filter_commands(const char *gateway_id, char *buf,
				 size_t size)
{
	struct out o = { .buf = buf, .size = buf ? size : 0, .len = 0 };

	if (rl_topic_id_validate(gateway_id) < 0)
		return -EINVAL;
	out_add(&o, RL_TOPIC_ROOT);
	out_add(&o, gateway_id);
	out_add(&o, "/cmd/+");
	return out_finish(&o);
}

ssize_t rl_topic_filter_dashboard(const char *gateway_id, char *buf,
				  size_t size)
{
	struct out o = { .buf = buf, .size = buf ? size : 0, .len = 0 };

	if (gateway_id && rl_topic_id_validate(gateway_id) < 0)
		return -EINVAL;
	out_add(&o, RL_TOPIC_ROOT);
	out_add(&o, gateway_id ? gateway_id : "+");
	out_add(&o, "/#");
	return out_finish(&o);
}

/* ---- parser -------------------------------------------------------------- */

#define MAX_LEVELS	8	/* the deepest topic has 7 levels */

struct level {
	const char *p;
	size_t len;
	size_t offset;
};

static bool level_is(const struct level *l, const char *s)
{
	size_t n = strlen(s);

	return l->len == n && memcmp(l->p, s, n) == 0;
}

static int fail(struct rl_topic_err *ret_err, int err, size_t offset,
		const char *reason)
{
	if (ret_err) {
		ret_err->offset = offset;
		ret_err->reason = reason;
	}
	return err;
}

static void copy_id(char *dst, const struct level *l)
{
	memcpy(dst, l->p, l->len);
	dst[l->len] = '\0';
}

/* "v" followed by 1..9 digits without a leading zero: the version number,
 * else -1. */
static long parse_version(const struct level *l)
{
	long v = 0;

	if (l->len < 2 || l->len > 10 || l->p[0] != 'v' || l->p[1] == '0')
		return -1;
	for (size_t i = 1; i < l->len; i++) {
		if (l->p[i] < '0' || l->p[i] > '9')
			return -1;
		v = v * 10 + (l->p[i] - '0');
	}
	return v;
}

int rl_topic_parse(const char *topic, size_t len, struct rl_topic *ret_topic,
		   struct rl_topic_err *ret_err)
{
	struct level lv[MAX_LEVELS];
	struct rl_topic t = { 0 };
	size_t n = 0, start = 0;
	long version;

	if (!topic || len == 0)
		return fail(ret_err, -EINVAL, 0, "empty topic");
	if (len > RL_TOPIC_MAX_LEN)
		return fail(ret_err, -EINVAL, RL_TOPIC_MAX_LEN, "topic too long");
	for (size_t i = 0; i < len; i++) {
		if (topic[i] == '\0')
			return fail(ret_err, -EINVAL, i, "embedded NUL");
		if (topic[i] == '+' || topic[i] == '#')
			return fail(ret_err, -EINVAL, i, "wildcard in topic");
	}
	if (len < strlen(ROOT_PREFIX) ||
	    memcmp(topic, ROOT_PREFIX, strlen(ROOT_PREFIX)) != 0)
		return fail(ret_err, -EINVAL, 0, "not a rehablink topic");

	/* split into levels */
	for (size_t i = 0; i <= len; i++) {
		if (i < len && topic[i] != '/')
			continue;
		if (i == start)
			return fail(ret_err, -EINVAL, start, "empty level");
		/* keep the first MAX_LEVELS; count the rest (never a kind) */
		if (n < MAX_LEVELS)
			lv[n] = (struct level){ topic + start, i - start, start };
		n++;
		start = i + 1;
	}

	/* lv[0] is "rehablink" */
	if (n < 2)
		return fail(ret_err, -EINVAL, len, "no version level");
	version = parse_version(&lv[1]);
	if (version < 0)
		return fail(ret_err, -EINVAL, lv[1].offset, "bad version level");
	if (version != RL_TOPIC_VERSION)
		return fail(ret_err, -EPROTONOSUPPORT, lv[1].offset,
			    "unsupported version");
	if (n < 3)
		return fail(ret_err, -EINVAL, len, "no gateway id");
	if (rl_topic_id_validate_n(lv[2].p, lv[2].len) < 0)
		return fail(ret_err, -EINVAL, lv[2].offset, "invalid gateway id");
	copy_id(t.gateway, &lv[2]);
	if (n < 4)
		return fail(ret_err, -EOPNOTSUPP, len, "unknown topic");

	if (n == 4 && level_is(&lv[3], "status")) {
		t.kind = RL_TOPIC_GATEWAY_STATUS;
	} else if (level_is(&lv[3], "wearable")) {
		if (n < 5)
			return fail(ret_err, -EOPNOTSUPP, len, "unknown topic");
		if (rl_topic_id_validate_n(lv[4].p, lv[4].len) < 0)
			return fail(ret_err, -EINVAL, lv[4].offset,
				    "invalid wearable alias");
		if (n != 6 || !level_is(&lv[5], "status"))
			return fail(ret_err, -EOPNOTSUPP, n > 5 ? lv[5].offset : len,
				    "unknown topic");
		copy_id(t.wearable, &lv[4]);
		t.kind = RL_TOPIC_WEARABLE_STATUS;
	} else if (level_is(&lv[3], "patient")) {
		if (n < 5)
			return fail(ret_err, -EOPNOTSUPP, len, "unknown topic");
		if (rl_topic_id_validate_n(lv[4].p, lv[4].len) < 0)
			return fail(ret_err, -EINVAL, lv[4].offset,
				    "invalid patient id");
		if (n == 6 && level_is(&lv[5], "pain"))
			t.kind = RL_TOPIC_PAIN;
		else if (n == 6 && level_is(&lv[5], "alert"))
			t.kind = RL_TOPIC_ALERT;
		else if (n == 7 && level_is(&lv[5], "aggregate") &&
			 level_is(&lv[6], "minute"))
			t.kind = RL_TOPIC_AGGREGATE_MINUTE;
		else if (n == 7 && level_is(&lv[5], "aggregate") &&
			 level_is(&lv[6], "day"))
			t.kind = RL_TOPIC_AGGREGATE_DAY;
		else if (n == 7 && level_is(&lv[5], "fhir") &&
			 level_is(&lv[6], "observation"))
			t.kind = RL_TOPIC_FHIR_OBSERVATION;
		else
			return fail(ret_err, -EOPNOTSUPP,
				    n > 5 ? lv[5].offset : len, "unknown topic");
		copy_id(t.patient, &lv[4]);
	} else if (n == 5 && level_is(&lv[3], "cmd") &&
		   level_is(&lv[4], "alert-ack")) {
		t.kind = RL_TOPIC_ALERT_ACK;
	} else if (n == 5 && level_is(&lv[3], "cmd") &&
		   level_is(&lv[4], "config")) {
		t.kind = RL_TOPIC_CONFIG;
	} else if (n == 5 && level_is(&lv[3], "cmd") &&
		   level_is(&lv[4], "error")) {
		t.kind = RL_TOPIC_ERROR;
	} else if (n == 5 && level_is(&lv[3], "config") &&
		   level_is(&lv[4], "state")) {
		t.kind = RL_TOPIC_CONFIG_STATE;
	} else {
		return fail(ret_err, -EOPNOTSUPP, lv[3].offset, "unknown topic");
	}

	if (ret_topic)
		*ret_topic = t;
	return 0;
}

const char *rl_topic_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case -EINVAL:
		return "invalid topic or id";
	case -EPROTONOSUPPORT:
		return "unsupported topic version";
	case -EOPNOTSUPP:
		return "unknown topic kind";
	case -ENOBUFS:
		return "buffer too small";
	default:
		return "unknown error";
	}
}
