// SPDX-License-Identifier: MIT
/*
 * rehablink wearable GATT profile codecs (docs/protocol.md, part 1).
 *
 * Every decoder reads into a local and copies to its ret_ outputs only on
 * success; on error it writes only the optional struct wb_err. Bytes are
 * read with the get_le helpers after a bounds check, never through a cast.
 * Offsets in struct wb_err count from the start of the buffer given to the
 * top-level call (for batches: from the batch header).
 */
#include <errno.h>
#include <string.h>

#include "wearable.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t) (p[0] | (uint16_t) p[1] << 8);
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 |
	       (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static inline void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
	p[2] = (uint8_t) (v >> 16);
	p[3] = (uint8_t) (v >> 24);
}

/* A field of a fixed layout: where it is and what wb_err calls it. */
struct field {
	uint8_t offset;
	uint8_t size;
	const char *name;
};

static int set_err(struct wb_err *ret_err, int rc, size_t offset,
		   const char *name)
{
	if (ret_err) {
		ret_err->offset = offset;
		ret_err->record = -1;
		ret_err->field = name;
	}
	return rc;
}

static int field_err(struct wb_err *ret_err, int rc, size_t base,
		     const struct field *f)
{
	return set_err(ret_err, rc, base + f->offset, f->name);
}

/*
 * -EMSGSIZE naming the first field of tab[n] that does not end within len
 * bytes; callers know that len is short of the last one.
 */
static int truncated(struct wb_err *ret_err, size_t base,
		     const struct field *tab, size_t n, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < n; i++)
		if ((size_t) tab[i].offset + tab[i].size > len)
			break;
	return field_err(ret_err, -EMSGSIZE, base, &tab[i]);
}

static bool in_range(long v, long min, long max)
{
	return v >= min && v <= max;
}

/* ---- 1.3 Records --------------------------------------------------------- */

enum { H_TYPE, H_VERSION, H_SEQ, H_TIME, H_QUALITY, H_PAYLOAD_LEN };
static const struct field header_fields[] = {
	[H_TYPE] = { 0, 1, "header.type" },
	[H_VERSION] = { 1, 1, "header.version" },
	[H_SEQ] = { 2, 4, "header.seq" },
	[H_TIME] = { 6, 4, "header.time" },
	[H_QUALITY] = { 10, 1, "header.time_quality" },
	[H_PAYLOAD_LEN] = { 11, 1, "header.payload_len" },
};

enum { P_FLEXION, P_TILT, P_CLASS, P_DURATION };
static const struct field posture_fields[] = {
	[P_FLEXION] = { 12, 2, "posture.flexion" },
	[P_TILT] = { 14, 2, "posture.tilt" },
	[P_CLASS] = { 16, 1, "posture.class" },
	[P_DURATION] = { 17, 2, "posture.duration" },
};

enum { S_STEPS, S_DURATION };
static const struct field steps_fields[] = {
	[S_STEPS] = { 12, 2, "steps.steps" },
	[S_DURATION] = { 14, 2, "steps.duration" },
};

enum { PAIN_SCORE, PAIN_FLAGS };
static const struct field pain_fields[] = {
	[PAIN_SCORE] = { 12, 1, "pain.score" },
	[PAIN_FLAGS] = { 13, 2, "pain.flags" },
};

enum { ST_BATTERY, ST_STORAGE, ST_FLAGS, ST_UPTIME };
static const struct field status_fields[] = {
	[ST_BATTERY] = { 12, 1, "status.battery" },
	[ST_STORAGE] = { 13, 1, "status.storage" },
	[ST_FLAGS] = { 14, 1, "status.flags" },
	[ST_UPTIME] = { 15, 4, "status.uptime" },
};

/* Payload length of a version 1 record of type t, or -1 if t is unknown. */
static int payload_len(enum wb_record_type t)
{
	switch (t) {
	case WB_RECORD_POSTURE:
		return WB_POSTURE_PAYLOAD_LEN;
	case WB_RECORD_STEPS:
		return WB_STEPS_PAYLOAD_LEN;
	case WB_RECORD_PAIN:
		return WB_PAIN_PAYLOAD_LEN;
	case WB_RECORD_STATUS:
		return WB_STATUS_PAYLOAD_LEN;
	}
	return -1;
}

/* The header and payload fields of a record of known type t. */
static size_t record_fields(enum wb_record_type t, struct field *tab)
{
	const struct field *p = NULL;
	size_t n = 0;

	switch (t) {
	case WB_RECORD_POSTURE:
		p = posture_fields;
		n = ARRAY_SIZE(posture_fields);
		break;
	case WB_RECORD_STEPS:
		p = steps_fields;
		n = ARRAY_SIZE(steps_fields);
		break;
	case WB_RECORD_PAIN:
		p = pain_fields;
		n = ARRAY_SIZE(pain_fields);
		break;
	case WB_RECORD_STATUS:
		p = status_fields;
		n = ARRAY_SIZE(status_fields);
		break;
	}
	memcpy(tab, header_fields, sizeof(header_fields));
	if (n)
		memcpy(tab + ARRAY_SIZE(header_fields), p, n * sizeof(*p));
	return ARRAY_SIZE(header_fields) + n;
}

/*
 * Checks the values of a record of known type. Reserved bits are -EBADMSG
 * on the wire (malformed input) and -EINVAL from a caller's struct.
 */
static int record_check_values(const struct wb_record *rec, bool wire,
			       size_t base, struct wb_err *ret_err)
{
	int bad_bits = wire ? -EBADMSG : -EINVAL;
	const struct wb_posture *p = &rec->u.posture;
	const struct wb_steps *s = &rec->u.steps;
	const struct wb_pain *pn = &rec->u.pain;
	const struct wb_status *st = &rec->u.status;

	switch (rec->type) {
	case WB_RECORD_POSTURE:
		if (!in_range(p->flexion_ddeg, WB_ANGLE_MIN, WB_ANGLE_MAX))
			return field_err(ret_err, -ERANGE, base,
					 &posture_fields[P_FLEXION]);
		if (!in_range(p->tilt_ddeg, WB_TILT_MIN, WB_TILT_MAX))
			return field_err(ret_err, -ERANGE, base,
					 &posture_fields[P_TILT]);
		if ((unsigned int) p->cls > WB_POSTURE_CLASS_MAX)
			return field_err(ret_err, -ERANGE, base,
					 &posture_fields[P_CLASS]);
		if (!in_range(p->duration_s, WB_PERIOD_MIN_S, WB_PERIOD_MAX_S))
			return field_err(ret_err, -ERANGE, base,
					 &posture_fields[P_DURATION]);
		return 0;
	case WB_RECORD_STEPS:
		/* the limit on steps depends on the duration: check it first */
		if (!in_range(s->duration_s, WB_PERIOD_MIN_S, WB_PERIOD_MAX_S))
			return field_err(ret_err, -ERANGE, base,
					 &steps_fields[S_DURATION]);
		if ((unsigned long) s->steps >
		    (unsigned long) s->duration_s * WB_STEPS_MAX_PER_S)
			return field_err(ret_err, -ERANGE, base,
					 &steps_fields[S_STEPS]);
		return 0;
	case WB_RECORD_PAIN:
		if (pn->score > WB_PAIN_SCORE_MAX)
			return field_err(ret_err, -ERANGE, base,
					 &pain_fields[PAIN_SCORE]);
		if (pn->flags & ~WB_PAIN_FLAGS_KNOWN)
			return field_err(ret_err, bad_bits, base,
					 &pain_fields[PAIN_FLAGS]);
		return 0;
	case WB_RECORD_STATUS:
		if (st->battery_pct > 100)
			return field_err(ret_err, -ERANGE, base,
					 &status_fields[ST_BATTERY]);
		if (st->storage_pct > 100)
			return field_err(ret_err, -ERANGE, base,
					 &status_fields[ST_STORAGE]);
		if (st->flags & ~WB_STATUS_FLAGS_KNOWN)
			return field_err(ret_err, bad_bits, base,
					 &status_fields[ST_FLAGS]);
		return 0;
	}
	return field_err(ret_err, wire ? -EOPNOTSUPP : -EINVAL, base,
			 &header_fields[H_TYPE]);
}

static int record_decode(const uint8_t *buf, size_t len, size_t base,
			 struct wb_record *ret_rec, size_t *ret_used,
			 struct wb_err *ret_err)
{
	struct field tab[ARRAY_SIZE(header_fields) + 4];
	struct wb_record rec;
	size_t n, need;
	int plen, rc;

	if (len < WB_RECORD_HEADER_LEN)
		return truncated(ret_err, base, header_fields,
				 ARRAY_SIZE(header_fields), len);
	memset(&rec, 0, sizeof(rec));
	rec.type = (enum wb_record_type) buf[0];
	rec.version = buf[1];
	rec.seq = get_le32(buf + 2);
	rec.time = get_le32(buf + 6);
	rec.time_quality = (enum wb_time_quality) buf[10];

	plen = payload_len(rec.type);
	if (plen < 0)
		return field_err(ret_err, -EOPNOTSUPP, base,
				 &header_fields[H_TYPE]);
	if (rec.version != WB_RECORD_VERSION)
		return field_err(ret_err, -EPROTONOSUPPORT, base,
				 &header_fields[H_VERSION]);
	if (buf[10] > WB_TIME_QUALITY_MAX)
		return field_err(ret_err, -EBADMSG, base,
				 &header_fields[H_QUALITY]);
	if (buf[11] != plen)
		return field_err(ret_err, -EBADMSG, base,
				 &header_fields[H_PAYLOAD_LEN]);
	need = WB_RECORD_HEADER_LEN + (size_t) plen;
	if (len < need) {
		n = record_fields(rec.type, tab);
		return truncated(ret_err, base, tab, n, len);
	}

	buf += WB_RECORD_HEADER_LEN;
	switch (rec.type) {
	case WB_RECORD_POSTURE:
		rec.u.posture.flexion_ddeg = (int16_t) get_le16(buf);
		rec.u.posture.tilt_ddeg = (int16_t) get_le16(buf + 2);
		rec.u.posture.cls = (enum wb_posture_class) buf[4];
		rec.u.posture.duration_s = get_le16(buf + 5);
		break;
	case WB_RECORD_STEPS:
		rec.u.steps.steps = get_le16(buf);
		rec.u.steps.duration_s = get_le16(buf + 2);
		break;
	case WB_RECORD_PAIN:
		rec.u.pain.score = buf[0];
		rec.u.pain.flags = get_le16(buf + 1);
		break;
	case WB_RECORD_STATUS:
		rec.u.status.battery_pct = buf[0];
		rec.u.status.storage_pct = buf[1];
		rec.u.status.flags = buf[2];
		rec.u.status.uptime_s = get_le32(buf + 3);
		break;
	}
	rc = record_check_values(&rec, true, base, ret_err);
	if (rc < 0)
		return rc;

	if (ret_rec)
		*ret_rec = rec;
	if (ret_used)
		*ret_used = need;
	return 0;
}

int wb_record_decode(const uint8_t *buf, size_t len, struct wb_record *ret_rec,
		     size_t *ret_used, struct wb_err *ret_err)
{
	if (!buf)
		len = 0;
	return record_decode(buf, len, 0, ret_rec, ret_used, ret_err);
}

int wb_record_validate(const struct wb_record *rec, struct wb_err *ret_err)
{
	if (!rec)
		return set_err(ret_err, -EINVAL, 0, "record");
	if (payload_len(rec->type) < 0)
		return field_err(ret_err, -EINVAL, 0, &header_fields[H_TYPE]);
	if (rec->version != WB_RECORD_VERSION)
		return field_err(ret_err, -EINVAL, 0,
				 &header_fields[H_VERSION]);
	if ((unsigned int) rec->time_quality > WB_TIME_QUALITY_MAX)
		return field_err(ret_err, -EINVAL, 0,
				 &header_fields[H_QUALITY]);
	return record_check_values(rec, false, 0, ret_err);
}

ssize_t wb_record_encoded_len(const struct wb_record *rec)
{
	int rc = wb_record_validate(rec, NULL);

	if (rc < 0)
		return rc;
	return WB_RECORD_HEADER_LEN + payload_len(rec->type);
}

/* Writes a validated record; buf holds wb_record_encoded_len(rec) bytes. */
static size_t record_write(const struct wb_record *rec, uint8_t *buf)
{
	int plen = payload_len(rec->type);
	uint8_t *p = buf + WB_RECORD_HEADER_LEN;

	buf[0] = (uint8_t) rec->type;
	buf[1] = rec->version;
	put_le32(buf + 2, rec->seq);
	put_le32(buf + 6, rec->time);
	buf[10] = (uint8_t) rec->time_quality;
	buf[11] = (uint8_t) plen;
	switch (rec->type) {
	case WB_RECORD_POSTURE:
		put_le16(p, (uint16_t) rec->u.posture.flexion_ddeg);
		put_le16(p + 2, (uint16_t) rec->u.posture.tilt_ddeg);
		p[4] = (uint8_t) rec->u.posture.cls;
		put_le16(p + 5, rec->u.posture.duration_s);
		break;
	case WB_RECORD_STEPS:
		put_le16(p, rec->u.steps.steps);
		put_le16(p + 2, rec->u.steps.duration_s);
		break;
	case WB_RECORD_PAIN:
		p[0] = rec->u.pain.score;
		put_le16(p + 1, rec->u.pain.flags);
		break;
	case WB_RECORD_STATUS:
		p[0] = rec->u.status.battery_pct;
		p[1] = rec->u.status.storage_pct;
		p[2] = rec->u.status.flags;
		put_le32(p + 3, rec->u.status.uptime_s);
		break;
	}
	return WB_RECORD_HEADER_LEN + (size_t) plen;
}

ssize_t wb_record_encode(const struct wb_record *rec, uint8_t *buf, size_t len)
{
	ssize_t need = wb_record_encoded_len(rec);

	if (need < 0)
		return need;
	if (!buf || len < (size_t) need)
		return -ENOBUFS;
	return (ssize_t) record_write(rec, buf);
}

bool wb_record_equal(const struct wb_record *a, const struct wb_record *b)
{
	if (a->type != b->type || a->version != b->version ||
	    a->seq != b->seq || a->time != b->time ||
	    a->time_quality != b->time_quality)
		return false;

	switch (a->type) {
	case WB_RECORD_POSTURE:
		return a->u.posture.flexion_ddeg == b->u.posture.flexion_ddeg &&
		       a->u.posture.tilt_ddeg == b->u.posture.tilt_ddeg &&
		       a->u.posture.cls == b->u.posture.cls &&
		       a->u.posture.duration_s == b->u.posture.duration_s;
	case WB_RECORD_STEPS:
		return a->u.steps.steps == b->u.steps.steps &&
		       a->u.steps.duration_s == b->u.steps.duration_s;
	case WB_RECORD_PAIN:
		return a->u.pain.score == b->u.pain.score &&
		       a->u.pain.flags == b->u.pain.flags;
	case WB_RECORD_STATUS:
		return a->u.status.battery_pct == b->u.status.battery_pct &&
		       a->u.status.storage_pct == b->u.status.storage_pct &&
		       a->u.status.flags == b->u.status.flags &&
		       a->u.status.uptime_s == b->u.status.uptime_s;
	}
	/* unknown type: no payload to compare */
	return true;
}

/* ---- 1.3 Batches --------------------------------------------------------- */

static const struct field batch_fields[] = {
	{ 0, 1, "batch.version" },
	{ 1, 1, "batch.count" },
};

int wb_batch_init(struct wb_batch_iter *ret_it, const uint8_t *buf, size_t len,
		  struct wb_err *ret_err)
{
	if (!buf)
		len = 0;
	if (len < WB_BATCH_HEADER_LEN)
		return truncated(ret_err, 0, batch_fields,
				 ARRAY_SIZE(batch_fields), len);
	if (buf[0] != WB_BATCH_VERSION)
		return field_err(ret_err, -EPROTONOSUPPORT, 0,
				 &batch_fields[0]);
	if (buf[1] < 1 || buf[1] > WB_BATCH_MAX)
		return field_err(ret_err, -EBADMSG, 0, &batch_fields[1]);

	ret_it->buf = buf;
	ret_it->len = len;
	ret_it->pos = WB_BATCH_HEADER_LEN;
	ret_it->count = buf[1];
	ret_it->index = 0;
	return 0;
}

/*
 * The iterator only advances on success, so after an error the same bytes
 * are decoded again and give the same error: errors are sticky without any
 * state of their own.
 */
int wb_batch_next(struct wb_batch_iter *it, struct wb_record *ret_rec,
		  struct wb_err *ret_err)
{
	struct wb_record rec;
	size_t used;
	int rc;

	if (it->pos > it->len)
		return set_err(ret_err, -EINVAL, it->len, "batch.iterator");
	if (it->index >= it->count) {
		if (it->pos < it->len)
			return set_err(ret_err, -EBADMSG, it->pos,
				       "batch.trailing");
		return 0;
	}
	if (it->pos == it->len)
		return field_err(ret_err, -EMSGSIZE, 0, &batch_fields[1]);

	rc = record_decode(it->buf + it->pos, it->len - it->pos, it->pos, &rec,
			   &used, ret_err);
	if (rc < 0) {
		if (ret_err)
			ret_err->record = (int) it->index;
		return rc;
	}
	it->pos += used;
	it->index++;
	if (ret_rec)
		*ret_rec = rec;
	return 1;
}

int wb_batch_decode(const uint8_t *buf, size_t len, struct wb_record *recs,
		    size_t max, struct wb_err *ret_err)
{
	struct wb_record tmp[WB_BATCH_MAX], rec;
	struct wb_batch_iter it;
	unsigned int n = 0;
	int rc;

	rc = wb_batch_init(&it, buf, len, ret_err);
	if (rc < 0)
		return rc;
	/* init caps the count at WB_BATCH_MAX, so n stays within tmp */
	while ((rc = wb_batch_next(&it, &rec, ret_err)) == 1)
		tmp[n++] = rec;
	if (rc < 0)
		return rc;
	/* the whole batch is well-formed, but does it fit? */
	if (!recs || n > max)
		return field_err(ret_err, -ENOBUFS, 0, &batch_fields[1]);
	memcpy(recs, tmp, n * sizeof(*tmp));
	return (int) n;
}

ssize_t wb_batch_encode(const struct wb_record *recs, size_t n, uint8_t *buf,
			size_t len)
{
	size_t need = WB_BATCH_HEADER_LEN, pos;

	if (!recs || n < 1 || n > WB_BATCH_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		ssize_t l = wb_record_encoded_len(&recs[i]);

		if (l < 0)
			return l;
		need += (size_t) l;
	}
	if (!buf || len < need)
		return -ENOBUFS;

	buf[0] = WB_BATCH_VERSION;
	buf[1] = (uint8_t) n;
	pos = WB_BATCH_HEADER_LEN;
	for (size_t i = 0; i < n; i++)
		pos += record_write(&recs[i], buf + pos);
	return (ssize_t) pos;
}

size_t wb_batch_fit(const struct wb_record *recs, size_t n, size_t mtu_payload)
{
	size_t used = WB_BATCH_HEADER_LEN, i;

	if (!recs)
		return 0;
	for (i = 0; i < n && i < WB_BATCH_MAX; i++) {
		ssize_t l = wb_record_encoded_len(&recs[i]);

		/* an invalid record cannot be sent: stop before it */
		if (l < 0 || used + (size_t) l > mtu_payload)
			break;
		used += (size_t) l;
	}
	return i;
}

/* ---- 1.8 Features -------------------------------------------------------- */

enum {
	F_VERSION, F_FLAGS, F_POSTURE_PERIOD, F_STEPS_PERIOD, F_CAPACITY,
	F_STORED, F_FIRST_SEQ, F_LAST_SEQ,
};
static const struct field features_fields[] = {
	[F_VERSION] = { 0, 1, "features.protocol_version" },
	[F_FLAGS] = { 1, 1, "features.flags" },
	[F_POSTURE_PERIOD] = { 2, 2, "features.posture_period" },
	[F_STEPS_PERIOD] = { 4, 2, "features.steps_period" },
	[F_CAPACITY] = { 6, 4, "features.capacity" },
	[F_STORED] = { 10, 4, "features.stored" },
	[F_FIRST_SEQ] = { 14, 4, "features.first_seq" },
	[F_LAST_SEQ] = { 18, 4, "features.last_seq" },
};

/* Version and flag errors are wire errors; from a struct they are -EINVAL. */
static int features_check(const struct wb_features *f, bool wire,
			  struct wb_err *ret_err)
{
	if (f->protocol_version != WB_PROTOCOL_VERSION)
		return field_err(ret_err, wire ? -EPROTONOSUPPORT : -EINVAL, 0,
				 &features_fields[F_VERSION]);
	if (f->flags & ~WB_FEATURE_FLAGS_KNOWN)
		return field_err(ret_err, wire ? -EBADMSG : -EINVAL, 0,
				 &features_fields[F_FLAGS]);
	if (!in_range(f->posture_period_s, WB_PERIOD_MIN_S, WB_PERIOD_MAX_S))
		return field_err(ret_err, -ERANGE, 0,
				 &features_fields[F_POSTURE_PERIOD]);
	if (!in_range(f->steps_period_s, WB_PERIOD_MIN_S, WB_PERIOD_MAX_S))
		return field_err(ret_err, -ERANGE, 0,
				 &features_fields[F_STEPS_PERIOD]);
	if (f->capacity == 0)
		return field_err(ret_err, -ERANGE, 0,
				 &features_fields[F_CAPACITY]);
	if (f->stored > f->capacity)
		return field_err(ret_err, -ERANGE, 0,
				 &features_fields[F_STORED]);
	return 0;
}

int wb_features_decode(const uint8_t *buf, size_t len,
		       struct wb_features *ret_f, struct wb_err *ret_err)
{
	struct wb_features f;
	int rc;

	if (!buf)
		len = 0;
	if (len < WB_FEATURES_LEN)
		return truncated(ret_err, 0, features_fields,
				 ARRAY_SIZE(features_fields), len);
	if (len > WB_FEATURES_LEN)
		return set_err(ret_err, -EBADMSG, WB_FEATURES_LEN,
			       "features.trailing");
	f.protocol_version = buf[0];
	f.flags = buf[1];
	f.posture_period_s = get_le16(buf + 2);
	f.steps_period_s = get_le16(buf + 4);
	f.capacity = get_le32(buf + 6);
	f.stored = get_le32(buf + 10);
	f.first_seq = get_le32(buf + 14);
	f.last_seq = get_le32(buf + 18);
	rc = features_check(&f, true, ret_err);
	if (rc < 0)
		return rc;
	if (ret_f)
		*ret_f = f;
	return 0;
}

ssize_t wb_features_encode(const struct wb_features *f, uint8_t *buf,
			   size_t len)
{
	int rc;

	if (!f)
		return -EINVAL;
	rc = features_check(f, false, NULL);
	if (rc < 0)
		return rc;
	if (!buf || len < WB_FEATURES_LEN)
		return -ENOBUFS;
	buf[0] = f->protocol_version;
	buf[1] = f->flags;
	put_le16(buf + 2, f->posture_period_s);
	put_le16(buf + 4, f->steps_period_s);
	put_le32(buf + 6, f->capacity);
	put_le32(buf + 10, f->stored);
	put_le32(buf + 14, f->first_seq);
	put_le32(buf + 18, f->last_seq);
	return WB_FEATURES_LEN;
}

unsigned int wb_features_fill_pct(const struct wb_features *f)
{
	if (!f || f->capacity == 0)
		return 0;
	if (f->stored >= f->capacity)
		return 100;
	/* rounded down: 100 only when full */
	return (unsigned int) ((uint64_t) f->stored * 100 / f->capacity);
}

/* ---- 1.9 History control point ------------------------------------------ */

enum { HQ_OPCODE, HQ_FILTER, HQ_OPERAND };
static const struct field hcp_request_fields[] = {
	[HQ_OPCODE] = { 0, 1, "hcp.opcode" },
	[HQ_FILTER] = { 1, 1, "hcp.filter" },
	[HQ_OPERAND] = { 2, 4, "hcp.operand" },
};

enum { HR_OPCODE, HR_COUNT };
static const struct field hcp_count_fields[] = {
	[HR_OPCODE] = { 0, 1, "hcp.opcode" },
	[HR_COUNT] = { 1, 4, "hcp.count" },
};

enum { HC_OPCODE, HC_REQUEST, HC_CODE, HC_COUNT, HC_LAST_SEQ };
static const struct field hcp_code_fields[] = {
	[HC_OPCODE] = { 0, 1, "hcp.opcode" },
	[HC_REQUEST] = { 1, 1, "hcp.request" },
	[HC_CODE] = { 2, 1, "hcp.code" },
	[HC_COUNT] = { 3, 4, "hcp.count" },
	[HC_LAST_SEQ] = { 7, 4, "hcp.last_seq" },
};

#define HCP_COUNT_RESPONSE_LEN   5
#define HCP_RESPONSE_CODE_LEN    11

static bool hcp_is_request(enum wb_hcp_opcode op)
{
	switch (op) {
	case WB_HCP_REPORT_COUNT:
	case WB_HCP_REPORT_RECORDS:
	case WB_HCP_DELETE_RECORDS:
	case WB_HCP_ABORT:
		return true;
	case WB_HCP_COUNT_RESPONSE:
	case WB_HCP_RESPONSE_CODE:
		return false;
	}
	return false;
}

/* Operand length of a filter, or -1 if the filter is unknown. */
static int hcp_operand_len(enum wb_hcp_filter f)
{
	switch (f) {
	case WB_HCP_ALL:
		return 0;
	case WB_HCP_AFTER_SEQ:
	case WB_HCP_UP_TO_SEQ:
		return 4;
	}
	return -1;
}

static bool hcp_combination_ok(enum wb_hcp_opcode op, enum wb_hcp_filter f)
{
	switch (op) {
	case WB_HCP_REPORT_COUNT:
	case WB_HCP_REPORT_RECORDS:
		return f == WB_HCP_ALL || f == WB_HCP_AFTER_SEQ;
	case WB_HCP_DELETE_RECORDS:
		return f == WB_HCP_UP_TO_SEQ;
	case WB_HCP_ABORT:
		return f == WB_HCP_ALL;
	case WB_HCP_COUNT_RESPONSE:
	case WB_HCP_RESPONSE_CODE:
		return false;
	}
	return false;
}

int wb_hcp_request_decode(const uint8_t *buf, size_t len,
			  struct wb_hcp_request *ret_req,
			  struct wb_err *ret_err)
{
	struct wb_hcp_request req;
	size_t need;
	int olen;

	if (!buf)
		len = 0;
	if (len < 2)
		return truncated(ret_err, 0, hcp_request_fields,
				 ARRAY_SIZE(hcp_request_fields), len);
	req.opcode = (enum wb_hcp_opcode) buf[0];
	req.filter = (enum wb_hcp_filter) buf[1];
	req.seq = 0;
	if (!hcp_is_request(req.opcode))
		return field_err(ret_err, -EOPNOTSUPP, 0,
				 &hcp_request_fields[HQ_OPCODE]);
	olen = hcp_operand_len(req.filter);
	if (olen < 0)
		return field_err(ret_err, -EINVAL, 0,
				 &hcp_request_fields[HQ_FILTER]);
	need = 2 + (size_t) olen;
	if (len < need)
		return truncated(ret_err, 0, hcp_request_fields,
				 ARRAY_SIZE(hcp_request_fields), len);
	if (len > need)
		return set_err(ret_err, -EBADMSG, need, "hcp.trailing");
	if (!hcp_combination_ok(req.opcode, req.filter))
		return field_err(ret_err, -EINVAL, 0,
				 &hcp_request_fields[HQ_FILTER]);
	if (olen)
		req.seq = get_le32(buf + 2);
	if (ret_req)
		*ret_req = req;
	return 0;
}

ssize_t wb_hcp_request_encode(const struct wb_hcp_request *req, uint8_t *buf,
			      size_t len)
{
	size_t need;
	int olen;

	if (!req || !hcp_is_request(req->opcode))
		return -EINVAL;
	olen = hcp_operand_len(req->filter);
	if (olen < 0 || !hcp_combination_ok(req->opcode, req->filter))
		return -EINVAL;
	/* no operand on the wire: the field must say so */
	if (olen == 0 && req->seq != 0)
		return -EINVAL;
	need = 2 + (size_t) olen;
	if (!buf || len < need)
		return -ENOBUFS;
	buf[0] = (uint8_t) req->opcode;
	buf[1] = (uint8_t) req->filter;
	if (olen)
		put_le32(buf + 2, req->seq);
	return (ssize_t) need;
}

int wb_hcp_response_decode(const uint8_t *buf, size_t len,
			   struct wb_hcp_response *ret_rsp,
			   struct wb_err *ret_err)
{
	struct wb_hcp_response rsp;

	if (!buf)
		len = 0;
	if (len < 1)
		return truncated(ret_err, 0, hcp_code_fields,
				 ARRAY_SIZE(hcp_code_fields), len);
	memset(&rsp, 0, sizeof(rsp));
	rsp.opcode = (enum wb_hcp_opcode) buf[0];
	switch (buf[0]) {
	case WB_HCP_COUNT_RESPONSE:
		if (len < HCP_COUNT_RESPONSE_LEN)
			return truncated(ret_err, 0, hcp_count_fields,
					 ARRAY_SIZE(hcp_count_fields), len);
		if (len > HCP_COUNT_RESPONSE_LEN)
			return set_err(ret_err, -EBADMSG,
				       HCP_COUNT_RESPONSE_LEN, "hcp.trailing");
		rsp.count = get_le32(buf + 1);
		break;
	case WB_HCP_RESPONSE_CODE:
		if (len < HCP_RESPONSE_CODE_LEN)
			return truncated(ret_err, 0, hcp_code_fields,
					 ARRAY_SIZE(hcp_code_fields), len);
		if (len > HCP_RESPONSE_CODE_LEN)
			return set_err(ret_err, -EBADMSG,
				       HCP_RESPONSE_CODE_LEN, "hcp.trailing");
		rsp.request = (enum wb_hcp_opcode) buf[1];
		rsp.code = (enum wb_hcp_code) buf[2];
		rsp.count = get_le32(buf + 3);
		rsp.last_seq = get_le32(buf + 7);
		if (!hcp_is_request(rsp.request))
			return field_err(ret_err, -EOPNOTSUPP, 0,
					 &hcp_code_fields[HC_REQUEST]);
		if (buf[2] < WB_HCP_SUCCESS || buf[2] > WB_HCP_CODE_MAX)
			return field_err(ret_err, -ERANGE, 0,
					 &hcp_code_fields[HC_CODE]);
		break;
	default:
		return field_err(ret_err, -EOPNOTSUPP, 0,
				 &hcp_code_fields[HC_OPCODE]);
	}
	if (ret_rsp)
		*ret_rsp = rsp;
	return 0;
}

ssize_t wb_hcp_response_encode(const struct wb_hcp_response *rsp, uint8_t *buf,
			       size_t len)
{
	if (!rsp)
		return -EINVAL;
	switch (rsp->opcode) {
	case WB_HCP_COUNT_RESPONSE:
		/* fields without a place on the wire must be 0 */
		if (rsp->request != 0 || rsp->code != 0 || rsp->last_seq != 0)
			return -EINVAL;
		if (!buf || len < HCP_COUNT_RESPONSE_LEN)
			return -ENOBUFS;
		buf[0] = WB_HCP_COUNT_RESPONSE;
		put_le32(buf + 1, rsp->count);
		return HCP_COUNT_RESPONSE_LEN;
	case WB_HCP_RESPONSE_CODE:
		if (!hcp_is_request(rsp->request))
			return -EINVAL;
		if ((unsigned int) rsp->code < WB_HCP_SUCCESS ||
		    (unsigned int) rsp->code > WB_HCP_CODE_MAX)
			return -ERANGE;
		if (!buf || len < HCP_RESPONSE_CODE_LEN)
			return -ENOBUFS;
		buf[0] = WB_HCP_RESPONSE_CODE;
		buf[1] = (uint8_t) rsp->request;
		buf[2] = (uint8_t) rsp->code;
		put_le32(buf + 3, rsp->count);
		put_le32(buf + 7, rsp->last_seq);
		return HCP_RESPONSE_CODE_LEN;
	case WB_HCP_REPORT_COUNT:
	case WB_HCP_REPORT_RECORDS:
	case WB_HCP_DELETE_RECORDS:
	case WB_HCP_ABORT:
		return -EINVAL;
	}
	return -EINVAL;
}

/* ---- 1.10 Standard characteristics --------------------------------------- */

int wb_battery_decode(const uint8_t *buf, size_t len, uint8_t *ret_pct,
		      struct wb_err *ret_err)
{
	if (!buf || len < 1)
		return set_err(ret_err, -EMSGSIZE, 0, "battery.level");
	if (len > 1)
		return set_err(ret_err, -EBADMSG, 1, "battery.trailing");
	if (buf[0] > 100)
		return set_err(ret_err, -ERANGE, 0, "battery.level");
	if (ret_pct)
		*ret_pct = buf[0];
	return 0;
}

enum {
	T_YEAR, T_MONTH, T_DAY, T_HOURS, T_MINUTES, T_SECONDS, T_DAY_OF_WEEK,
	T_FRACTIONS, T_ADJUST,
};
static const struct field cts_fields[] = {
	[T_YEAR] = { 0, 2, "time.year" },
	[T_MONTH] = { 2, 1, "time.month" },
	[T_DAY] = { 3, 1, "time.day" },
	[T_HOURS] = { 4, 1, "time.hours" },
	[T_MINUTES] = { 5, 1, "time.minutes" },
	[T_SECONDS] = { 6, 1, "time.seconds" },
	[T_DAY_OF_WEEK] = { 7, 1, "time.day_of_week" },
	[T_FRACTIONS] = { 8, 1, "time.fractions256" },
	[T_ADJUST] = { 9, 1, "time.adjust_reason" },
};

#define CTS_YEAR_MIN             1582
#define CTS_YEAR_MAX             9999
#define CTS_DAY_OF_WEEK_MAX      7
#define CTS_ADJUST_KNOWN         0x0fu
#define CTS_ADJUST_EXTERNAL      0x02u
#define SECONDS_PER_DAY          INT64_C(86400)
/* 9999-12-31T23:59:59Z */
#define CTS_UNIX_MAX             INT64_C(253402300799)

static bool is_leap(unsigned int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned int days_in_month(unsigned int y, unsigned int m)
{
	static const uint8_t days[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};

	if (m == 2 && is_leap(y))
		return 29;
	return days[m - 1];
}

/* The date and time of day: what to_unix needs. */
static int cts_check_date(const struct wb_current_time *t,
			  struct wb_err *ret_err)
{
	if (!in_range(t->year, CTS_YEAR_MIN, CTS_YEAR_MAX))
		return field_err(ret_err, -ERANGE, 0, &cts_fields[T_YEAR]);
	if (!in_range(t->month, 1, 12))
		return field_err(ret_err, -ERANGE, 0, &cts_fields[T_MONTH]);
	if (!in_range(t->day, 1, days_in_month(t->year, t->month)))
		return field_err(ret_err, -ERANGE, 0, &cts_fields[T_DAY]);
	if (t->hours > 23)
		return field_err(ret_err, -ERANGE, 0, &cts_fields[T_HOURS]);
	if (t->minutes > 59)
		return field_err(ret_err, -ERANGE, 0, &cts_fields[T_MINUTES]);
	if (t->seconds > 59)
		return field_err(ret_err, -ERANGE, 0, &cts_fields[T_SECONDS]);
	return 0;
}

/*
 * The day of week is range-checked only: it is redundant with the date,
 * and a wearable that gets it wrong still has a usable clock.
 */
static int cts_check(const struct wb_current_time *t, bool wire,
		     struct wb_err *ret_err)
{
	int rc = cts_check_date(t, ret_err);

	if (rc < 0)
		return rc;
	if (t->day_of_week > CTS_DAY_OF_WEEK_MAX)
		return field_err(ret_err, -ERANGE, 0,
				 &cts_fields[T_DAY_OF_WEEK]);
	if (t->adjust_reason & ~CTS_ADJUST_KNOWN)
		return field_err(ret_err, wire ? -EBADMSG : -EINVAL, 0,
				 &cts_fields[T_ADJUST]);
	return 0;
}

int wb_current_time_decode(const uint8_t *buf, size_t len,
			   struct wb_current_time *ret_t,
			   struct wb_err *ret_err)
{
	struct wb_current_time t;
	int rc;

	if (!buf)
		len = 0;
	if (len < WB_CURRENT_TIME_LEN)
		return truncated(ret_err, 0, cts_fields, ARRAY_SIZE(cts_fields),
				 len);
	if (len > WB_CURRENT_TIME_LEN)
		return set_err(ret_err, -EBADMSG, WB_CURRENT_TIME_LEN,
			       "time.trailing");
	t.year = get_le16(buf);
	t.month = buf[2];
	t.day = buf[3];
	t.hours = buf[4];
	t.minutes = buf[5];
	t.seconds = buf[6];
	t.day_of_week = buf[7];
	t.fractions256 = buf[8];
	t.adjust_reason = buf[9];
	rc = cts_check(&t, true, ret_err);
	if (rc < 0)
		return rc;
	if (ret_t)
		*ret_t = t;
	return 0;
}

ssize_t wb_current_time_encode(const struct wb_current_time *t, uint8_t *buf,
			       size_t len)
{
	int rc;

	if (!t)
		return -EINVAL;
	rc = cts_check(t, false, NULL);
	if (rc < 0)
		return rc;
	if (!buf || len < WB_CURRENT_TIME_LEN)
		return -ENOBUFS;
	put_le16(buf, t->year);
	buf[2] = t->month;
	buf[3] = t->day;
	buf[4] = t->hours;
	buf[5] = t->minutes;
	buf[6] = t->seconds;
	buf[7] = t->day_of_week;
	buf[8] = t->fractions256;
	buf[9] = t->adjust_reason;
	return WB_CURRENT_TIME_LEN;
}

/*
 * Days since 1970-01-01 of a proleptic Gregorian date, and back: Howard
 * Hinnant's days_from_civil/civil_from_days, in eras of 400 years.
 */
static int64_t days_from_civil(int64_t y, unsigned int m, unsigned int d)
{
	int64_t era;
	unsigned int yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned int) (y - era * 400);			/* 0..399 */
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;	/* 0..365 */
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;		/* 0..146096 */
	return era * 146097 + (int64_t) doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *ret_y, unsigned int *ret_m,
			    unsigned int *ret_d)
{
	int64_t era;
	unsigned int doe, yoe, doy, mp, m;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned int) (z - era * 146097);		/* 0..146096 */
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);		/* 0..365 */
	mp = (5 * doy + 2) / 153;				/* 0..11 */
	m = mp < 10 ? mp + 3 : mp - 9;
	*ret_d = doy - (153 * mp + 2) / 5 + 1;
	*ret_m = m;
	*ret_y = (int64_t) yoe + era * 400 + (m <= 2);
}

int wb_current_time_from_unix(int64_t unix_s, struct wb_current_time *ret_t)
{
	struct wb_current_time t;
	int64_t days, secs, y;
	unsigned int m, d, wday;

	if (unix_s < 0 || unix_s > CTS_UNIX_MAX)
		return -ERANGE;
	days = unix_s / SECONDS_PER_DAY;
	secs = unix_s % SECONDS_PER_DAY;
	civil_from_days(days, &y, &m, &d);
	wday = (unsigned int) ((days + 4) % 7);	/* 1970-01-01: Thursday */

	t.year = (uint16_t) y;
	t.month = (uint8_t) m;
	t.day = (uint8_t) d;
	t.hours = (uint8_t) (secs / 3600);
	t.minutes = (uint8_t) (secs / 60 % 60);
	t.seconds = (uint8_t) (secs % 60);
	t.day_of_week = (uint8_t) (wday == 0 ? 7 : wday);	/* Sunday: 7 */
	t.fractions256 = 0;
	t.adjust_reason = CTS_ADJUST_EXTERNAL;
	if (ret_t)
		*ret_t = t;
	return 0;
}

int wb_current_time_to_unix(const struct wb_current_time *t, int64_t *ret_unix)
{
	int64_t s;
	int rc;

	if (!t)
		return -EINVAL;
	rc = cts_check_date(t, NULL);
	if (rc < 0)
		return rc;
	s = days_from_civil(t->year, t->month, t->day) * SECONDS_PER_DAY +
	    t->hours * 3600 + t->minutes * 60 + t->seconds;
	if (ret_unix)
		*ret_unix = s;
	return 0;
}

/*
 * Length of the UTF-8 sequence at p[0..n), or 0 if it is invalid: overlong,
 * a surrogate, above U+10FFFF, or cut short (RFC 3629, section 4).
 */
static size_t utf8_seq_len(const uint8_t *p, size_t n)
{
	uint8_t lo = 0x80, hi = 0xbf;
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;	/* continuation byte, C0, C1 or F5..FF */

	if (p[0] == 0xe0)
		lo = 0xa0;	/* overlong */
	else if (p[0] == 0xed)
		hi = 0x9f;	/* surrogates */
	else if (p[0] == 0xf0)
		lo = 0x90;	/* overlong */
	else if (p[0] == 0xf4)
		hi = 0x8f;	/* above U+10FFFF */

	if (n < len)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

int wb_devinfo_string_decode(const uint8_t *val, size_t len, char *buf,
			     size_t size, struct wb_err *ret_err)
{
	size_t i = 0, n;

	if (!val)
		len = 0;
	/* some firmware pads with NULs: only an embedded NUL is an error */
	while (len > 0 && val[len - 1] == 0)
		len--;
	while (i < len) {
		if (val[i] == 0)
			return set_err(ret_err, -EBADMSG, i, "devinfo.nul");
		n = utf8_seq_len(val + i, len - i);
		if (n == 0)
			return set_err(ret_err, -EBADMSG, i, "devinfo.utf8");
		i += n;
	}
	if (!buf || len >= size)
		return set_err(ret_err, -EMSGSIZE, size ? size - 1 : 0,
			       "devinfo.length");
	if (len)
		memcpy(buf, val, len);
	buf[len] = '\0';
	return 0;
}

/* ---- Names --------------------------------------------------------------- */

const char *wb_strerror(int err)
{
	switch (err) {
	case -EMSGSIZE:
		return "truncated";
	case -EBADMSG:
		return "malformed";
	case -EOPNOTSUPP:
		return "unknown type or opcode";
	case -EPROTONOSUPPORT:
		return "unsupported version";
	case -ERANGE:
		return "value out of range";
	case -EINVAL:
		return "invalid combination";
	case -ENOBUFS:
		return "buffer too small";
	}
	return "unknown error";
}

const char *wb_record_type_name(enum wb_record_type t)
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
	return "invalid";
}

const char *wb_posture_class_name(enum wb_posture_class c)
{
	switch (c) {
	case WB_POSTURE_UNKNOWN:
		return "unknown";
	case WB_POSTURE_UPRIGHT:
		return "upright";
	case WB_POSTURE_FLEXED:
		return "flexed";
	case WB_POSTURE_RECLINED:
		return "reclined";
	case WB_POSTURE_LYING:
		return "lying";
	}
	return "invalid";
}

const char *wb_time_quality_name(enum wb_time_quality q)
{
	switch (q) {
	case WB_TIME_UNSYNCED:
		return "unsynced";
	case WB_TIME_SYNCED:
		return "synced";
	case WB_TIME_HOLDOVER:
		return "holdover";
	}
	return "invalid";
}

const char *wb_hcp_code_name(enum wb_hcp_code c)
{
	switch (c) {
	case WB_HCP_SUCCESS:
		return "success";
	case WB_HCP_OPCODE_NOT_SUPPORTED:
		return "opcode not supported";
	case WB_HCP_INVALID_FILTER:
		return "invalid filter";
	case WB_HCP_NO_RECORDS:
		return "no records";
	case WB_HCP_BUSY:
		return "busy";
	case WB_HCP_ABORTED:
		return "aborted";
	case WB_HCP_ABORT_FAILED:
		return "abort failed";
	case WB_HCP_STORAGE_ERROR:
		return "storage error";
	}
	return "invalid";
}
