// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: wb_record_decode and the record encoder.
 *
 * Invariants (abort() on violation): decode succeeds or returns a
 * documented errno with its outputs untouched and struct wb_err filled;
 * on success the record re-encodes to the very bytes consumed, decodes to
 * an equal record, and a one byte shorter buffer gives -ENOBUFS. The input
 * is also read as a struct: wb_record_validate agrees with the encoder, and
 * what validates round-trips.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "wearable.h"

#define PATTERN 0xa5

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

static bool is_pattern(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != PATTERN)
			return false;
	return true;
}

static bool documented(int rc)
{
	return rc == -EMSGSIZE || rc == -EBADMSG || rc == -EOPNOTSUPP ||
	       rc == -EPROTONOSUPPORT || rc == -ERANGE;
}

/* Reads the fuzz input as a stream of fields; 0 when it runs out. */
struct reader {
	const uint8_t *p;
	size_t n;
};

static uint32_t take(struct reader *r, size_t bytes)
{
	uint32_t v = 0;

	for (size_t i = 0; i < bytes; i++) {
		if (r->n) {
			v |= (uint32_t) *r->p++ << (8 * i);
			r->n--;
		}
	}
	return v;
}

static void check_decode(const uint8_t *data, size_t size)
{
	struct wb_record rec, again;
	struct wb_err err;
	uint8_t buf[64];
	size_t used, used2;
	ssize_t n;
	int rc;

	memset(&rec, PATTERN, sizeof(rec));
	memset(&used, PATTERN, sizeof(used));
	memset(&err, PATTERN, sizeof(err));
	rc = wb_record_decode(data, size, &rec, &used, &err);
	if (rc < 0) {
		check(documented(rc));
		check(is_pattern(&rec, sizeof(rec)));
		check(is_pattern(&used, sizeof(used)));
		check(err.field != NULL && err.offset <= size);
		check(err.record == -1);
		check(wb_record_decode(data, size, NULL, NULL, NULL) == rc);
		return;
	}
	check(rc == 0);
	check(is_pattern(&err, sizeof(err)));
	check(used >= WB_RECORD_HEADER_LEN && used <= size);
	check(wb_record_validate(&rec, NULL) == 0);
	check(wb_record_encoded_len(&rec) == (ssize_t) used);
	n = wb_record_encode(&rec, buf, sizeof(buf));
	check(n == (ssize_t) used && memcmp(buf, data, used) == 0);
	check(wb_record_encode(&rec, buf, used - 1) == -ENOBUFS);
	check(wb_record_decode(buf, (size_t) n, &again, &used2, NULL) == 0);
	check(used2 == used && wb_record_equal(&rec, &again));
}

static void check_struct(const uint8_t *data, size_t size)
{
	struct reader r = { data, size };
	struct wb_record rec, back;
	struct wb_err err;
	uint8_t buf[64];
	ssize_t n;
	int rc;

	memset(&rec, 0, sizeof(rec));
	rec.type = (enum wb_record_type) (take(&r, 1) % 6);
	rec.version = (uint8_t) (take(&r, 1) % 3);
	rec.seq = take(&r, 4);
	rec.time = take(&r, 4);
	rec.time_quality = (enum wb_time_quality) (take(&r, 1) % 4);
	switch (rec.type) {
	case WB_RECORD_POSTURE:
		rec.u.posture.flexion_ddeg = (int16_t) take(&r, 2);
		rec.u.posture.tilt_ddeg = (int16_t) take(&r, 2);
		rec.u.posture.cls = (enum wb_posture_class) take(&r, 1);
		rec.u.posture.duration_s = (uint16_t) take(&r, 2);
		break;
	case WB_RECORD_STEPS:
		rec.u.steps.steps = (uint16_t) take(&r, 2);
		rec.u.steps.duration_s = (uint16_t) take(&r, 2);
		break;
	case WB_RECORD_PAIN:
		rec.u.pain.score = (uint8_t) take(&r, 1);
		rec.u.pain.flags = (uint16_t) take(&r, 2);
		break;
	case WB_RECORD_STATUS:
		rec.u.status.battery_pct = (uint8_t) take(&r, 1);
		rec.u.status.storage_pct = (uint8_t) take(&r, 1);
		rec.u.status.flags = (uint8_t) take(&r, 1);
		rec.u.status.uptime_s = take(&r, 4);
		break;
	}

	memset(&err, PATTERN, sizeof(err));
	rc = wb_record_validate(&rec, &err);
	n = wb_record_encode(&rec, buf, sizeof(buf));
	check(wb_record_encoded_len(&rec) == (rc < 0 ? rc : n));
	if (rc < 0) {
		check(rc == -EINVAL || rc == -ERANGE);
		check(n == rc);
		check(err.field != NULL && err.record == -1);
		check(wb_batch_encode(&rec, 1, buf, sizeof(buf)) == rc);
		check(wb_batch_fit(&rec, 1, WB_ATT_MAX_VALUE) == 0);
		return;
	}
	check(is_pattern(&err, sizeof(err)));
	check(n > 0);
	check(wb_record_decode(buf, (size_t) n, &back, NULL, NULL) == 0);
	check(wb_record_equal(&rec, &back));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_decode(data, size);
	check_struct(data, size);
	return 0;
}
