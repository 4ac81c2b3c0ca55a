// SPDX-License-Identifier: MIT
/*
 * proto/wearable: the wearable GATT profile codecs against docs/protocol.md,
 * part 1. Each vector is named after the section it comes from.
 *
 * Every decoder vector also checks the contract around it: outputs filled
 * with TEST_PATTERN stay untouched on error and struct wb_err untouched on
 * success; a valid vector re-encodes to the same bytes, and the encoder
 * returns -ENOBUFS at every shorter length without writing past it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "wearable.h"

#define BUF_MAX 1024

/* Checks rc of an encoder for every len below need, and that it leaves
 * buf[len..) alone: the "never write past len" rule. */
typedef ssize_t (*encode_fn)(const void *in, uint8_t *buf, size_t len);

static void check_enobufs(encode_fn enc, const void *in, size_t need)
{
	uint8_t buf[BUF_MAX];

	assert_true(need <= sizeof(buf));
	assert_int_equal(enc(in, NULL, 0), -ENOBUFS);
	for (size_t len = 0; len < need; len++) {
		test_fill(buf, sizeof(buf));
		assert_int_equal(enc(in, buf, len), -ENOBUFS);
		assert_true(test_is_pattern(buf + len, sizeof(buf) - len));
	}
}

/* Encodes in, expecting exactly the bytes want[n], with slack after them
 * left alone; then checks -ENOBUFS below n. */
static void check_encode(encode_fn enc, const void *in, const uint8_t *want,
			 size_t n)
{
	uint8_t buf[BUF_MAX];

	test_fill(buf, sizeof(buf));
	assert_int_equal(enc(in, buf, sizeof(buf)), (ssize_t) n);
	assert_memory_equal(buf, want, n);
	assert_true(test_is_pattern(buf + n, sizeof(buf) - n));
	check_enobufs(enc, in, n);
}

static ssize_t enc_record(const void *in, uint8_t *buf, size_t len)
{
	return wb_record_encode(in, buf, len);
}

static ssize_t enc_features(const void *in, uint8_t *buf, size_t len)
{
	return wb_features_encode(in, buf, len);
}

static ssize_t enc_hcp_request(const void *in, uint8_t *buf, size_t len)
{
	return wb_hcp_request_encode(in, buf, len);
}

static ssize_t enc_hcp_response(const void *in, uint8_t *buf, size_t len)
{
	return wb_hcp_response_encode(in, buf, len);
}

static ssize_t enc_current_time(const void *in, uint8_t *buf, size_t len)
{
	return wb_current_time_encode(in, buf, len);
}

/* A batch to encode: the records and their count. */
struct batch_in {
	const struct wb_record *recs;
	size_t n;
};

static ssize_t enc_batch(const void *in, uint8_t *buf, size_t len)
{
	const struct batch_in *b = in;

	return wb_batch_encode(b->recs, b->n, buf, len);
}

static void check_err(const struct wb_err *err, size_t offset, int record,
		      const char *field)
{
	assert_non_null(field);
	assert_non_null(err->field);
	assert_string_equal(err->field, field);
	assert_int_equal(err->offset, offset);
	assert_int_equal(err->record, record);
}

/* Field by field, so that a failure says which field. */
static void assert_record(const struct wb_record *got,
			  const struct wb_record *want)
{
	assert_int_equal(got->type, want->type);
	assert_int_equal(got->version, want->version);
	assert_int_equal(got->seq, want->seq);
	assert_int_equal(got->time, want->time);
	assert_int_equal(got->time_quality, want->time_quality);
	switch (want->type) {
	case WB_RECORD_POSTURE:
		assert_int_equal(got->u.posture.flexion_ddeg,
				 want->u.posture.flexion_ddeg);
		assert_int_equal(got->u.posture.tilt_ddeg,
				 want->u.posture.tilt_ddeg);
		assert_int_equal(got->u.posture.cls, want->u.posture.cls);
		assert_int_equal(got->u.posture.duration_s,
				 want->u.posture.duration_s);
		break;
	case WB_RECORD_STEPS:
		assert_int_equal(got->u.steps.steps, want->u.steps.steps);
		assert_int_equal(got->u.steps.duration_s,
				 want->u.steps.duration_s);
		break;
	case WB_RECORD_PAIN:
		assert_int_equal(got->u.pain.score, want->u.pain.score);
		assert_int_equal(got->u.pain.flags, want->u.pain.flags);
		break;
	case WB_RECORD_STATUS:
		assert_int_equal(got->u.status.battery_pct,
				 want->u.status.battery_pct);
		assert_int_equal(got->u.status.storage_pct,
				 want->u.status.storage_pct);
		assert_int_equal(got->u.status.flags, want->u.status.flags);
		assert_int_equal(got->u.status.uptime_s,
				 want->u.status.uptime_s);
		break;
	}
	assert_true(wb_record_equal(got, want));
}

/* ---- Records (1.3 - 1.7) ------------------------------------------------- */

struct rec_vec {
	const char *name;
	const char *hex;
	int rc;
	size_t used;			/* on success */
	struct wb_record want;		/* on success */
	size_t err_offset;		/* on error */
	const char *err_field;		/* on error */
};

/* Header of the edge vectors: version 1, seq 10, time 0x12345678, synced. */
#define HDR(type, plen)  type " 01 0a 00 00 00 78 56 34 12 01 " plen
#define POSTURE(p)       HDR("01", "07") " " p
#define STEPS(p)         HDR("02", "04") " " p
#define PAIN(p)          HDR("03", "03") " " p
#define STATUS(p)        HDR("04", "07") " " p

#define WANT_HDR(t) \
	.type = (t), .version = 1, .seq = 10, .time = 0x12345678, \
	.time_quality = WB_TIME_SYNCED

#define POSTURE_OK(n, p, fl, ti, c, d) \
	{ .name = n, .hex = POSTURE(p), .used = 19, .want = { \
	  WANT_HDR(WB_RECORD_POSTURE), .u.posture = { fl, ti, c, d } } }
#define STEPS_OK(n, p, s, d) \
	{ .name = n, .hex = STEPS(p), .used = 16, .want = { \
	  WANT_HDR(WB_RECORD_STEPS), .u.steps = { s, d } } }
#define PAIN_OK(n, p, s, f) \
	{ .name = n, .hex = PAIN(p), .used = 15, .want = { \
	  WANT_HDR(WB_RECORD_PAIN), .u.pain = { s, f } } }
#define STATUS_OK(n, p, bat, sto, fl, up) \
	{ .name = n, .hex = STATUS(p), .used = 19, .want = { \
	  WANT_HDR(WB_RECORD_STATUS), .u.status = { bat, sto, fl, up } } }
#define REC_ERR(n, h, r, off, f) \
	{ .name = n, .hex = h, .rc = r, .err_offset = off, .err_field = f }

static const struct rec_vec rec_vecs[] = {
	/* 1.4 posture: written out in full once */
	{ .name = "1.4-posture-example",
	  .hex = "01 01 0a 00 00 00 78 56 34 12 01 07 c2 01 dd ff 02 3c 00",
	  .used = 19,
	  .want = { .type = WB_RECORD_POSTURE, .version = 1, .seq = 10,
	    .time = 0x12345678, .time_quality = WB_TIME_SYNCED,
	    .u.posture = { 450, -35, WB_POSTURE_FLEXED, 60 } } },
	POSTURE_OK("1.4-posture-flexion-min", "f8 f8 00 00 01 3c 00",
		   -1800, 0, WB_POSTURE_UPRIGHT, 60),
	POSTURE_OK("1.4-posture-flexion-max", "08 07 00 00 01 3c 00",
		   1800, 0, WB_POSTURE_UPRIGHT, 60),
	REC_ERR("1.4-posture-flexion-min-1", POSTURE("f7 f8 00 00 01 3c 00"),
		-ERANGE, 12, "posture.flexion"),
	REC_ERR("1.4-posture-flexion-max+1", POSTURE("09 07 00 00 01 3c 00"),
		-ERANGE, 12, "posture.flexion"),
	REC_ERR("1.4-posture-flexion-s16-min", POSTURE("00 80 00 00 01 3c 00"),
		-ERANGE, 12, "posture.flexion"),
	POSTURE_OK("1.4-posture-tilt-min", "00 00 7c fc 04 3c 00",
		   0, -900, WB_POSTURE_LYING, 60),
	POSTURE_OK("1.4-posture-tilt-max", "00 00 84 03 03 3c 00",
		   0, 900, WB_POSTURE_RECLINED, 60),
	REC_ERR("1.4-posture-tilt-min-1", POSTURE("00 00 7b fc 01 3c 00"),
		-ERANGE, 14, "posture.tilt"),
	REC_ERR("1.4-posture-tilt-max+1", POSTURE("00 00 85 03 01 3c 00"),
		-ERANGE, 14, "posture.tilt"),
	POSTURE_OK("1.4-posture-class-min-unknown", "00 00 00 00 00 3c 00",
		   0, 0, WB_POSTURE_UNKNOWN, 60),
	POSTURE_OK("1.4-posture-class-max-lying", "00 00 00 00 04 3c 00",
		   0, 0, WB_POSTURE_LYING, 60),
	REC_ERR("1.4-posture-class-max+1", POSTURE("00 00 00 00 05 3c 00"),
		-ERANGE, 16, "posture.class"),
	REC_ERR("1.4-posture-class-ff", POSTURE("00 00 00 00 ff 3c 00"),
		-ERANGE, 16, "posture.class"),
	POSTURE_OK("1.4-posture-duration-min", "00 00 00 00 01 01 00",
		   0, 0, WB_POSTURE_UPRIGHT, 1),
	POSTURE_OK("1.4-posture-duration-max", "00 00 00 00 01 10 0e",
		   0, 0, WB_POSTURE_UPRIGHT, 3600),
	REC_ERR("1.4-posture-duration-min-1", POSTURE("00 00 00 00 01 00 00"),
		-ERANGE, 17, "posture.duration"),
	REC_ERR("1.4-posture-duration-max+1", POSTURE("00 00 00 00 01 11 0e"),
		-ERANGE, 17, "posture.duration"),
	REC_ERR("1.4-posture-first-bad-field-reported",
		POSTURE("00 00 85 03 05 00 00"), -ERANGE, 14, "posture.tilt"),
	REC_ERR("1.4-posture-payload-len-6",
		HDR("01", "06") " 00 00 00 00 01 3c",
		-EBADMSG, 11, "header.payload_len"),
	REC_ERR("1.4-posture-payload-len-8",
		HDR("01", "08") " 00 00 00 00 01 3c 00 00",
		-EBADMSG, 11, "header.payload_len"),
	REC_ERR("1.4-posture-payload-cut-in-duration",
		HDR("01", "07") " 00 00 00 00 01 3c", -EMSGSIZE, 17,
		"posture.duration"),

	/* 1.5 steps */
	{ .name = "1.5-steps-example",
	  .hex = "02 01 0b 00 00 00 b4 56 34 12 01 04 2c 01 3c 00",
	  .used = 16,
	  .want = { .type = WB_RECORD_STEPS, .version = 1, .seq = 11,
	    .time = 0x123456b4, .time_quality = WB_TIME_SYNCED,
	    .u.steps = { 300, 60 } } },
	STEPS_OK("1.5-steps-zero", "00 00 3c 00", 0, 60),
	REC_ERR("1.5-steps-rate-max+1", STEPS("2d 01 3c 00"), -ERANGE, 12,
		"steps.steps"),
	STEPS_OK("1.5-steps-duration-min-rate-max", "05 00 01 00", 5, 1),
	REC_ERR("1.5-steps-duration-min-rate-max+1", STEPS("06 00 01 00"),
		-ERANGE, 12, "steps.steps"),
	STEPS_OK("1.5-steps-duration-max-rate-max", "50 46 10 0e", 18000,
		 3600),
	REC_ERR("1.5-steps-duration-max-rate-max+1", STEPS("51 46 10 0e"),
		-ERANGE, 12, "steps.steps"),
	REC_ERR("1.5-steps-u16-max", STEPS("ff ff 10 0e"), -ERANGE, 12,
		"steps.steps"),
	REC_ERR("1.5-steps-duration-min-1", STEPS("00 00 00 00"), -ERANGE, 14,
		"steps.duration"),
	REC_ERR("1.5-steps-duration-max+1", STEPS("00 00 11 0e"), -ERANGE, 14,
		"steps.duration"),
	REC_ERR("1.5-steps-duration-checked-before-steps", STEPS("ff ff 00 00"),
		-ERANGE, 14, "steps.duration"),
	REC_ERR("1.5-steps-payload-len-3", HDR("02", "03") " 00 00 3c",
		-EBADMSG, 11, "header.payload_len"),
	REC_ERR("1.5-steps-payload-len-5", HDR("02", "05") " 00 00 3c 00 00",
		-EBADMSG, 11, "header.payload_len"),
	REC_ERR("1.5-steps-payload-cut-in-duration",
		HDR("02", "04") " 00 00 3c",
		-EMSGSIZE, 14, "steps.duration"),

	/* 1.6 pain */
	{ .name = "1.6-pain-example",
	  .hex = "03 01 0c 00 00 00 c0 56 34 12 01 03 07 21 00",
	  .used = 15,
	  .want = { .type = WB_RECORD_PAIN, .version = 1, .seq = 12,
	    .time = 0x123456c0, .time_quality = WB_TIME_SYNCED,
	    .u.pain = { 7, WB_PAIN_BREATHLESS | WB_PAIN_MEDICATION } } },
	PAIN_OK("1.6-pain-score-min", "00 00 00", 0, 0),
	PAIN_OK("1.6-pain-score-max", "0a 00 00", 10, 0),
	REC_ERR("1.6-pain-score-11-out-of-range", PAIN("0b 00 00"), -ERANGE, 12,
		"pain.score"),
	REC_ERR("1.6-pain-score-ff", PAIN("ff 00 00"), -ERANGE, 12,
		"pain.score"),
	PAIN_OK("1.6-pain-red-flags", "05 1f 00", 5, WB_PAIN_RED_FLAGS),
	PAIN_OK("1.6-pain-all-known-flags", "05 7f 00", 5, WB_PAIN_FLAGS_KNOWN),
	REC_ERR("1.6-pain-flag-bit-7-reserved", PAIN("05 80 00"), -EBADMSG, 13,
		"pain.flags"),
	REC_ERR("1.6-pain-flag-bit-15-reserved", PAIN("05 00 80"), -EBADMSG, 13,
		"pain.flags"),
	REC_ERR("1.6-pain-flags-all-ones", PAIN("05 ff ff"), -EBADMSG, 13,
		"pain.flags"),
	REC_ERR("1.6-pain-score-reported-before-flags", PAIN("0b ff ff"),
		-ERANGE, 12, "pain.score"),
	REC_ERR("1.6-pain-payload-len-2", HDR("03", "02") " 05 00", -EBADMSG,
		11, "header.payload_len"),
	REC_ERR("1.6-pain-payload-len-4", HDR("03", "04") " 05 00 00 00",
		-EBADMSG, 11, "header.payload_len"),
	REC_ERR("1.6-pain-payload-len-0", HDR("03", "00"), -EBADMSG, 11,
		"header.payload_len"),
	REC_ERR("1.6-pain-payload-len-ff", HDR("03", "ff") " 05 00 00",
		-EBADMSG, 11, "header.payload_len"),
	REC_ERR("1.6-pain-payload-missing", HDR("03", "03"), -EMSGSIZE, 12,
		"pain.score"),
	REC_ERR("1.6-pain-payload-cut-in-flags", HDR("03", "03") " 05 00",
		-EMSGSIZE, 13, "pain.flags"),
	REC_ERR("1.6-pain-truncation-before-values", HDR("03", "03") " 0b ff",
		-EMSGSIZE, 13, "pain.flags"),

	/* 1.7 status */
	{ .name = "1.7-status-example",
	  .hex = "04 01 0d 00 00 00 f0 56 34 12 02 07 55 32 05 10 0e 00 00",
	  .used = 19,
	  .want = { .type = WB_RECORD_STATUS, .version = 1, .seq = 13,
	    .time = 0x123456f0, .time_quality = WB_TIME_HOLDOVER,
	    .u.status = { 85, 50, WB_STATUS_CHARGING | WB_STATUS_STORAGE_FULL,
			  3600 } } },
	STATUS_OK("1.7-status-all-min", "00 00 00 00 00 00 00", 0, 0, 0, 0),
	STATUS_OK("1.7-status-all-max", "64 64 0f ff ff ff ff", 100, 100,
		  WB_STATUS_FLAGS_KNOWN, UINT32_MAX),
	REC_ERR("1.7-status-battery-max+1", STATUS("65 00 00 00 00 00 00"),
		-ERANGE, 12, "status.battery"),
	REC_ERR("1.7-status-storage-max+1", STATUS("00 65 00 00 00 00 00"),
		-ERANGE, 13, "status.storage"),
	REC_ERR("1.7-status-flag-bit-4-reserved",
		STATUS("00 00 10 00 00 00 00"),
		-EBADMSG, 14, "status.flags"),
	REC_ERR("1.7-status-flag-bit-7-reserved",
		STATUS("00 00 80 00 00 00 00"),
		-EBADMSG, 14, "status.flags"),
	REC_ERR("1.7-status-payload-len-6",
		HDR("04", "06") " 00 00 00 00 00 00",
		-EBADMSG, 11, "header.payload_len"),
	REC_ERR("1.7-status-payload-len-8",
		HDR("04", "08") " 00 00 00 00 00 00 00 00", -EBADMSG, 11,
		"header.payload_len"),
	REC_ERR("1.7-status-payload-cut-in-uptime",
		HDR("04", "07") " 00 00 00 00 00 00", -EMSGSIZE, 15,
		"status.uptime"),

	/* 1.3 record header, 1.2 time quality */
	{ .name = "1.2-record-unsynced-seq-max",
	  .hex = "03 01 ff ff ff ff 2c 01 00 00 00 03 00 00 00",
	  .used = 15,
	  .want = { .type = WB_RECORD_PAIN, .version = 1, .seq = UINT32_MAX,
	    .time = 300, .time_quality = WB_TIME_UNSYNCED,
	    .u.pain = { 0, 0 } } },
	{ .name = "1.2-record-holdover-time-max",
	  .hex = "03 01 00 00 00 00 ff ff ff ff 02 03 01 00 00",
	  .used = 15,
	  .want = { .type = WB_RECORD_PAIN, .version = 1, .seq = 0,
	    .time = UINT32_MAX, .time_quality = WB_TIME_HOLDOVER,
	    .u.pain = { 1, 0 } } },
	REC_ERR("1.2-record-time-quality-max+1",
		"03 01 0a 00 00 00 78 56 34 12 03 03 05 00 00", -EBADMSG, 10,
		"header.time_quality"),
	REC_ERR("1.2-record-time-quality-ff",
		"03 01 0a 00 00 00 78 56 34 12 ff 03 05 00 00", -EBADMSG, 10,
		"header.time_quality"),
	{ .name = "1.3-record-trailing-bytes-not-consumed",
	  .hex = PAIN("05 00 00") " ee ff 00",
	  .used = 15,
	  .want = { WANT_HDR(WB_RECORD_PAIN), .u.pain = { 5, 0 } } },
	REC_ERR("1.3-record-type-0-unknown", HDR("00", "03") " 05 00 00",
		-EOPNOTSUPP, 0, "header.type"),
	REC_ERR("1.3-record-type-max+1-unknown", HDR("05", "03") " 05 00 00",
		-EOPNOTSUPP, 0, "header.type"),
	REC_ERR("1.3-record-type-ff-unknown", HDR("ff", "03") " 05 00 00",
		-EOPNOTSUPP, 0, "header.type"),
	REC_ERR("1.3-record-version-0",
		"03 00 0a 00 00 00 78 56 34 12 01 03 05 00 00",
		-EPROTONOSUPPORT, 1, "header.version"),
	REC_ERR("1.3-record-version-2",
		"03 02 0a 00 00 00 78 56 34 12 01 03 05 00 00",
		-EPROTONOSUPPORT, 1, "header.version"),
	REC_ERR("1.3-record-empty", "", -EMSGSIZE, 0, "header.type"),
	REC_ERR("1.3-record-1-byte", "03", -EMSGSIZE, 1, "header.version"),
	REC_ERR("1.3-record-cut-in-seq", "03 01 0a 00", -EMSGSIZE, 2,
		"header.seq"),
	REC_ERR("1.3-record-cut-in-time", "03 01 0a 00 00 00 78", -EMSGSIZE, 6,
		"header.time"),
	REC_ERR("1.3-record-10-bytes", "03 01 0a 00 00 00 78 56 34 12",
		-EMSGSIZE, 10, "header.time_quality"),
	REC_ERR("1.3-record-11-bytes", "03 01 0a 00 00 00 78 56 34 12 01",
		-EMSGSIZE, 11, "header.payload_len"),
	/* check order: header length, type, version, quality, length, bytes */
	REC_ERR("1.3-record-order-short-before-type", "00 02 0a", -EMSGSIZE, 2,
		"header.seq"),
	REC_ERR("1.3-record-order-type-before-version",
		"00 02 0a 00 00 00 78 56 34 12 03 03 05 00 00", -EOPNOTSUPP, 0,
		"header.type"),
	REC_ERR("1.3-record-order-version-before-quality",
		"03 02 0a 00 00 00 78 56 34 12 03 09 05 00 00",
		-EPROTONOSUPPORT, 1, "header.version"),
	REC_ERR("1.3-record-order-quality-before-payload-len",
		"03 01 0a 00 00 00 78 56 34 12 03 09 05 00 00", -EBADMSG, 10,
		"header.time_quality"),
	REC_ERR("1.3-record-order-payload-len-before-bytes",
		HDR("03", "09") " 05", -EBADMSG, 11, "header.payload_len"),
};

static void test_record_decode(void **state)
{
	const struct rec_vec *v = *state;
	uint8_t buf[BUF_MAX];
	size_t n = test_hex(v->hex, buf, sizeof(buf));
	struct wb_record got, pristine;
	struct wb_err err, err_pristine;
	size_t used;
	int rc;

	test_fill(&got, sizeof(got));
	test_fill(&pristine, sizeof(pristine));
	test_fill(&used, sizeof(used));
	test_fill(&err, sizeof(err));
	test_fill(&err_pristine, sizeof(err_pristine));

	rc = wb_record_decode(buf, n, &got, &used, &err);
	assert_int_equal(rc, v->rc);
	if (rc < 0) {
		assert_memory_equal(&got, &pristine, sizeof(got));
		assert_true(test_is_pattern(&used, sizeof(used)));
		check_err(&err, v->err_offset, -1, v->err_field);
		/* the same error without the optional outputs */
		assert_int_equal(wb_record_decode(buf, n, NULL, NULL, NULL),
				 v->rc);
		return;
	}
	assert_memory_equal(&err, &err_pristine, sizeof(err));
	assert_int_equal(used, v->used);
	assert_record(&got, &v->want);
	assert_int_equal(wb_record_validate(&got, NULL), 0);
	assert_int_equal(wb_record_encoded_len(&got), (ssize_t) used);
	check_encode(enc_record, &got, buf, used);
}

/* ---- 1.3 Batches --------------------------------------------------------- */

#define POSTURE_EX  "01 01 0a 00 00 00 78 56 34 12 01 07 c2 01 dd ff 02 3c 00"
#define STEPS_EX    "02 01 0b 00 00 00 b4 56 34 12 01 04 2c 01 3c 00"
#define PAIN_EX     "03 01 0c 00 00 00 c0 56 34 12 01 03 07 21 00"
#define PAIN_EX_LEN 15
#define STATUS_EX   "04 01 0d 00 00 00 f0 56 34 12 02 07 55 32 05 10 0e 00 00"

#define POSTURE_EX_REC \
	{ .type = WB_RECORD_POSTURE, .version = 1, .seq = 10, \
	  .time = 0x12345678, .time_quality = WB_TIME_SYNCED, \
	  .u.posture = { 450, -35, WB_POSTURE_FLEXED, 60 } }
#define STEPS_EX_REC \
	{ .type = WB_RECORD_STEPS, .version = 1, .seq = 11, \
	  .time = 0x123456b4, .time_quality = WB_TIME_SYNCED, \
	  .u.steps = { 300, 60 } }
#define PAIN_EX_REC \
	{ .type = WB_RECORD_PAIN, .version = 1, .seq = 12, \
	  .time = 0x123456c0, .time_quality = WB_TIME_SYNCED, \
	  .u.pain = { 7, 0x21 } }
#define STATUS_EX_REC \
	{ .type = WB_RECORD_STATUS, .version = 1, .seq = 13, \
	  .time = 0x123456f0, .time_quality = WB_TIME_HOLDOVER, \
	  .u.status = { 85, 50, 0x05, 3600 } }

struct batch_vec {
	const char *name;
	const char *hex;
	int rc;				/* record count, or -errno */
	int before;			/* records the iterator returns first */
	struct wb_record want[3];
	size_t err_offset;
	int err_record;
	const char *err_field;
};

#define BATCH_ERR(n, h, r, off, rec, f) \
	{ .name = n, .hex = h, .rc = r, .err_offset = off, .err_record = rec, \
	  .err_field = f }
/* an error after the iterator returned the records given */
#define BATCH_ERR_AFTER(n, h, r, off, rec, f, k, ...) \
	{ .name = n, .hex = h, .rc = r, .err_offset = off, .err_record = rec, \
	  .err_field = f, .before = k, .want = { __VA_ARGS__ } }

static const struct batch_vec batch_vecs[] = {
	{ .name = "1.3-batch-one-pain", .hex = "01 01 " PAIN_EX, .rc = 1,
	  .want = { PAIN_EX_REC } },
	{ .name = "1.3-batch-three-mixed",
	  .hex = "01 03 " POSTURE_EX " " STEPS_EX " " STATUS_EX, .rc = 3,
	  .want = { POSTURE_EX_REC, STEPS_EX_REC, STATUS_EX_REC } },
	{ .name = "1.3-batch-seq-wrap",
	  .hex = "01 02 03 01 ff ff ff ff 00 00 00 00 00 03 01 00 00"
		 " 03 01 00 00 00 00 01 00 00 00 00 03 02 00 00",
	  .rc = 2,
	  .want = { { .type = WB_RECORD_PAIN, .version = 1, .seq = UINT32_MAX,
	      .u.pain = { 1, 0 } },
	    { .type = WB_RECORD_PAIN, .version = 1, .seq = 0, .time = 1,
	      .u.pain = { 2, 0 } } } },
	BATCH_ERR("1.3-batch-empty", "", -EMSGSIZE, 0, -1, "batch.version"),
	BATCH_ERR("1.3-batch-header-cut", "01", -EMSGSIZE, 1, -1,
		  "batch.count"),
	BATCH_ERR("1.3-batch-version-0", "00 01 " PAIN_EX, -EPROTONOSUPPORT, 0,
		  -1, "batch.version"),
	BATCH_ERR("1.3-batch-version-2", "02 01 " PAIN_EX, -EPROTONOSUPPORT, 0,
		  -1, "batch.version"),
	BATCH_ERR("1.3-batch-count-0", "01 00", -EBADMSG, 1, -1, "batch.count"),
	BATCH_ERR("1.3-batch-count-0-with-record", "01 00 " PAIN_EX, -EBADMSG,
		  1, -1, "batch.count"),
	BATCH_ERR("1.3-batch-count-33", "01 21 " PAIN_EX, -EBADMSG, 1, -1,
		  "batch.count"),
	BATCH_ERR("1.3-batch-count-ff", "01 ff " PAIN_EX, -EBADMSG, 1, -1,
		  "batch.count"),
	BATCH_ERR("1.3-batch-count-32-no-records", "01 20", -EMSGSIZE, 1, -1,
		  "batch.count"),
	BATCH_ERR_AFTER("1.3-batch-count-lies-long", "01 02 " PAIN_EX,
			-EMSGSIZE, 1, -1, "batch.count", 1, PAIN_EX_REC),
	BATCH_ERR_AFTER("1.3-batch-count-lies-short",
			"01 01 " PAIN_EX " " PAIN_EX, -EBADMSG,
			2 + PAIN_EX_LEN, -1, "batch.trailing", 1, PAIN_EX_REC),
	BATCH_ERR_AFTER("1.3-batch-trailing-byte", "01 01 " PAIN_EX " 00",
			-EBADMSG, 2 + PAIN_EX_LEN, -1, "batch.trailing", 1,
			PAIN_EX_REC),
	BATCH_ERR_AFTER("1.3-batch-record-1-cut-in-header",
			"01 02 " PAIN_EX " 03 01 0c 00 00", -EMSGSIZE,
			2 + PAIN_EX_LEN + 2, 1, "header.seq", 1, PAIN_EX_REC),
	BATCH_ERR_AFTER("1.3-batch-record-1-cut-in-payload",
			"01 02 " PAIN_EX
			" 03 01 0c 00 00 00 c0 56 34 12 01 03 07 21",
			-EMSGSIZE, 2 + PAIN_EX_LEN + 13, 1, "pain.flags", 1,
			PAIN_EX_REC),
	BATCH_ERR_AFTER("1.3-batch-record-1-pain-score-11",
			"01 02 " PAIN_EX
			" 03 01 0c 00 00 00 c0 56 34 12 01 03 0b 00 00",
			-ERANGE, 2 + PAIN_EX_LEN + 12, 1, "pain.score", 1,
			PAIN_EX_REC),
	BATCH_ERR("1.3-batch-record-0-unknown-type",
		  "01 01 05 01 0c 00 00 00 c0 56 34 12 01 03 07 21 00",
		  -EOPNOTSUPP, 2, 0, "header.type"),
	BATCH_ERR("1.3-batch-record-0-payload-len",
		  "01 01 03 01 0c 00 00 00 c0 56 34 12 01 04 07 21 00 00",
		  -EBADMSG, 13, 0, "header.payload_len"),
	BATCH_ERR_AFTER("1.3-batch-record-2-version-2",
			"01 03 " PAIN_EX " " PAIN_EX
			" 03 02 0c 00 00 00 c0 56 34 12 01 03 07 21 00",
			-EPROTONOSUPPORT, 2 + 2 * PAIN_EX_LEN + 1, 2,
			"header.version", 2, PAIN_EX_REC, PAIN_EX_REC),
	BATCH_ERR("1.3-batch-record-error-before-trailing",
		  "01 01 03 01 0c 00 00 00 c0 56 34 12 01 03 07 80 00 ee",
		  -EBADMSG, 15, 0, "pain.flags"),
};

static void test_batch_decode(void **state)
{
	const struct batch_vec *v = *state;
	uint8_t buf[BUF_MAX];
	size_t n = test_hex(v->hex, buf, sizeof(buf));
	struct wb_record recs[4], pristine[4], rec;
	struct wb_batch_iter it, it_pristine;
	struct wb_err err, err2;
	int rc, i;

	test_fill(recs, sizeof(recs));
	test_fill(pristine, sizeof(pristine));
	test_fill(&err, sizeof(err));

	rc = wb_batch_decode(buf, n, recs, ARRAY_SIZE(recs), &err);
	assert_int_equal(rc, v->rc);
	if (rc < 0) {
		assert_memory_equal(recs, pristine, sizeof(recs));
		check_err(&err, v->err_offset, v->err_record, v->err_field);
	} else {
		assert_true(test_is_pattern(&err, sizeof(err)));
		for (i = 0; i < rc; i++)
			assert_record(&recs[i], &v->want[i]);
		/* untouched beyond the records returned */
		assert_true(test_is_pattern(&recs[rc],
					    sizeof(recs) - rc * sizeof(*recs)));
		check_encode(enc_batch, &(struct batch_in){ recs, (size_t) rc },
			     buf, n);
	}

	/* the iterator sees the same records, then the same end */
	test_fill(&it, sizeof(it));
	test_fill(&it_pristine, sizeof(it_pristine));
	rc = wb_batch_init(&it, buf, n, &err);
	if (rc < 0) {
		assert_int_equal(rc, v->rc);
		assert_memory_equal(&it, &it_pristine, sizeof(it));
		check_err(&err, v->err_offset, v->err_record, v->err_field);
		return;
	}
	for (i = 0; (rc = wb_batch_next(&it, &rec, &err)) == 1; i++) {
		assert_true(i < 3);
		assert_record(&rec, &v->want[i]);
	}
	assert_int_equal(i, v->rc >= 0 ? v->rc : v->before);
	if (v->rc >= 0) {
		assert_int_equal(rc, 0);
		assert_int_equal(i, v->rc);
		assert_int_equal(wb_batch_next(&it, &rec, NULL), 0);
		return;
	}
	assert_int_equal(rc, v->rc);
	check_err(&err, v->err_offset, v->err_record, v->err_field);
	/* sticky: the same error, and rec untouched */
	test_fill(&rec, sizeof(rec));
	test_fill(&err2, sizeof(err2));
	assert_int_equal(wb_batch_next(&it, &rec, &err2), v->rc);
	assert_true(test_is_pattern(&rec, sizeof(rec)));
	check_err(&err2, v->err_offset, v->err_record, v->err_field);
}

/* ---- 1.8 Features -------------------------------------------------------- */

struct features_vec {
	const char *name;
	const char *hex;
	int rc;
	struct wb_features want;
	size_t err_offset;
	const char *err_field;
};

/* version, flags, posture period, steps period, capacity, stored; then
 * first_seq 10 and last_seq 1009 */
#define FEAT(v, f, pp, sp, cap, st) \
	v " " f " " pp " " sp " " cap " " st " 0a 00 00 00 f1 03 00 00"
#define FEAT_OK(n, h, fl, pp, sp, cap, st) \
	{ .name = n, .hex = h, .want = { 1, fl, pp, sp, cap, st, 10, 1009 } }
#define FEAT_ERR(n, h, r, off, f) \
	{ .name = n, .hex = h, .rc = r, .err_offset = off, .err_field = f }
#define FEAT_BASE \
	FEAT("01", "1f", "3c 00", "0a 00", "00 00 01 00", "e8 03 00 00")

static const struct features_vec features_vecs[] = {
	{ .name = "1.8-features-example",
	  .hex = "01 1f 3c 00 0a 00 00 00 01 00 e8 03"
		 " 00 00 0a 00 00 00 f1 03 00 00",
	  .want = { WB_PROTOCOL_VERSION, 0x1f, 60, 10, 65536, 1000, 10,
		    1009 } },
	FEAT_OK("1.8-features-flags-none",
		FEAT("01", "00", "3c 00", "0a 00",
		     "00 00 01 00", "e8 03 00 00"),
		0, 60, 10, 65536, 1000),
	FEAT_ERR("1.8-features-flag-bit-5-reserved",
		 FEAT("01", "20", "3c 00", "0a 00",
		      "00 00 01 00", "e8 03 00 00"),
		 -EBADMSG, 1, "features.flags"),
	FEAT_ERR("1.8-features-flag-bit-7-reserved",
		 FEAT("01", "80", "3c 00", "0a 00",
		      "00 00 01 00", "e8 03 00 00"),
		 -EBADMSG, 1, "features.flags"),
	FEAT_ERR("1.8-features-version-0",
		 FEAT("00", "1f", "3c 00", "0a 00",
		      "00 00 01 00", "e8 03 00 00"),
		 -EPROTONOSUPPORT, 0, "features.protocol_version"),
	FEAT_ERR("1.8-features-version-2",
		 FEAT("02", "1f", "3c 00", "0a 00",
		      "00 00 01 00", "e8 03 00 00"),
		 -EPROTONOSUPPORT, 0, "features.protocol_version"),
	FEAT_OK("1.8-features-posture-period-min",
		FEAT("01", "1f", "01 00", "0a 00",
		     "00 00 01 00", "e8 03 00 00"),
		0x1f, 1, 10, 65536, 1000),
	FEAT_OK("1.8-features-posture-period-max",
		FEAT("01", "1f", "10 0e", "0a 00",
		     "00 00 01 00", "e8 03 00 00"),
		0x1f, 3600, 10, 65536, 1000),
	FEAT_ERR("1.8-features-posture-period-min-1",
		 FEAT("01", "1f", "00 00", "0a 00",
		      "00 00 01 00", "e8 03 00 00"),
		 -ERANGE, 2, "features.posture_period"),
	FEAT_ERR("1.8-features-posture-period-max+1",
		 FEAT("01", "1f", "11 0e", "0a 00",
		      "00 00 01 00", "e8 03 00 00"),
		 -ERANGE, 2, "features.posture_period"),
	FEAT_OK("1.8-features-steps-period-min",
		FEAT("01", "1f", "3c 00", "01 00",
		     "00 00 01 00", "e8 03 00 00"),
		0x1f, 60, 1, 65536, 1000),
	FEAT_OK("1.8-features-steps-period-max",
		FEAT("01", "1f", "3c 00", "10 0e",
		     "00 00 01 00", "e8 03 00 00"),
		0x1f, 60, 3600, 65536, 1000),
	FEAT_ERR("1.8-features-steps-period-min-1",
		 FEAT("01", "1f", "3c 00", "00 00",
		      "00 00 01 00", "e8 03 00 00"),
		 -ERANGE, 4, "features.steps_period"),
	FEAT_ERR("1.8-features-steps-period-max+1",
		 FEAT("01", "1f", "3c 00", "11 0e",
		      "00 00 01 00", "e8 03 00 00"),
		 -ERANGE, 4, "features.steps_period"),
	FEAT_ERR("1.8-features-capacity-0",
		 FEAT("01", "1f", "3c 00", "0a 00",
		      "00 00 00 00", "00 00 00 00"),
		 -ERANGE, 6, "features.capacity"),
	FEAT_OK("1.8-features-capacity-1-full",
		FEAT("01", "1f", "3c 00", "0a 00",
		     "01 00 00 00", "01 00 00 00"),
		0x1f, 60, 10, 1, 1),
	FEAT_OK("1.8-features-capacity-max-full",
		FEAT("01", "1f", "3c 00", "0a 00",
		     "ff ff ff ff", "ff ff ff ff"),
		0x1f, 60, 10, UINT32_MAX, UINT32_MAX),
	FEAT_OK("1.8-features-stored-0",
		FEAT("01", "1f", "3c 00", "0a 00",
		     "e8 03 00 00", "00 00 00 00"),
		0x1f, 60, 10, 1000, 0),
	FEAT_OK("1.8-features-stored-equals-capacity",
		FEAT("01", "1f", "3c 00", "0a 00",
		     "e8 03 00 00", "e8 03 00 00"),
		0x1f, 60, 10, 1000, 1000),
	FEAT_ERR("1.8-features-stored-capacity+1",
		 FEAT("01", "1f", "3c 00", "0a 00",
		      "e8 03 00 00", "e9 03 00 00"),
		 -ERANGE, 10, "features.stored"),
	/* lenient: first_seq/last_seq are not checked against stored */
	{ .name = "1.8-features-seqs-not-checked",
	  .hex = "01 1f 3c 00 0a 00 e8 03 00 00 05"
		 " 00 00 00 ff ff ff ff 00 00 00 00",
	  .want = { 1, 0x1f, 60, 10, 1000, 5, UINT32_MAX, 0 } },
	FEAT_ERR("1.8-features-empty", "", -EMSGSIZE, 0,
		 "features.protocol_version"),
	FEAT_ERR("1.8-features-1-byte", "01", -EMSGSIZE, 1, "features.flags"),
	FEAT_ERR("1.8-features-21-bytes",
		 "01 1f 3c 00 0a 00 00 00 01 00 e8"
		 " 03 00 00 0a 00 00 00 f1 03 00",
		 -EMSGSIZE, 18, "features.last_seq"),
	FEAT_ERR("1.8-features-23-bytes", FEAT_BASE " 00", -EBADMSG, 22,
		 "features.trailing"),
	FEAT_ERR("1.8-features-order-length-before-version",
		 "02 1f 3c 00", -EMSGSIZE, 4, "features.steps_period"),
};

static void test_features_decode(void **state)
{
	const struct features_vec *v = *state;
	uint8_t buf[BUF_MAX];
	size_t n = test_hex(v->hex, buf, sizeof(buf));
	struct wb_features got, pristine;
	struct wb_err err;
	int rc;

	test_fill(&got, sizeof(got));
	test_fill(&pristine, sizeof(pristine));
	test_fill(&err, sizeof(err));
	rc = wb_features_decode(buf, n, &got, &err);
	assert_int_equal(rc, v->rc);
	if (rc < 0) {
		assert_memory_equal(&got, &pristine, sizeof(got));
		check_err(&err, v->err_offset, -1, v->err_field);
		return;
	}
	assert_true(test_is_pattern(&err, sizeof(err)));
	assert_int_equal(got.protocol_version, v->want.protocol_version);
	assert_int_equal(got.flags, v->want.flags);
	assert_int_equal(got.posture_period_s, v->want.posture_period_s);
	assert_int_equal(got.steps_period_s, v->want.steps_period_s);
	assert_int_equal(got.capacity, v->want.capacity);
	assert_int_equal(got.stored, v->want.stored);
	assert_int_equal(got.first_seq, v->want.first_seq);
	assert_int_equal(got.last_seq, v->want.last_seq);
	check_encode(enc_features, &got, buf, n);
}

/* ---- 1.9 History control point ------------------------------------------- */

struct hcp_req_vec {
	const char *name;
	const char *hex;
	int rc;
	struct wb_hcp_request want;
	size_t err_offset;
	const char *err_field;
};

#define HCP_ERR(n, h, r, off, f) \
	{ .name = n, .hex = h, .rc = r, .err_offset = off, .err_field = f }

static const struct hcp_req_vec hcp_req_vecs[] = {
	{ .name = "1.9-hcp-count-all", .hex = "01 00",
	  .want = { WB_HCP_REPORT_COUNT, WB_HCP_ALL, 0 } },
	{ .name = "1.9-hcp-count-after-seq", .hex = "01 01 10 00 00 00",
	  .want = { WB_HCP_REPORT_COUNT, WB_HCP_AFTER_SEQ, 16 } },
	{ .name = "1.9-hcp-report-all", .hex = "02 00",
	  .want = { WB_HCP_REPORT_RECORDS, WB_HCP_ALL, 0 } },
	{ .name = "1.9-hcp-report-after-seq-max", .hex = "02 01 ff ff ff ff",
	  .want = { WB_HCP_REPORT_RECORDS, WB_HCP_AFTER_SEQ, UINT32_MAX } },
	{ .name = "1.9-hcp-delete-up-to-seq", .hex = "03 02 64 00 00 00",
	  .want = { WB_HCP_DELETE_RECORDS, WB_HCP_UP_TO_SEQ, 100 } },
	{ .name = "1.9-hcp-delete-up-to-seq-0", .hex = "03 02 00 00 00 00",
	  .want = { WB_HCP_DELETE_RECORDS, WB_HCP_UP_TO_SEQ, 0 } },
	{ .name = "1.9-hcp-abort", .hex = "04 00",
	  .want = { WB_HCP_ABORT, WB_HCP_ALL, 0 } },
	HCP_ERR("1.9-hcp-request-empty", "", -EMSGSIZE, 0, "hcp.opcode"),
	HCP_ERR("1.9-hcp-request-1-byte", "01", -EMSGSIZE, 1, "hcp.filter"),
	HCP_ERR("1.9-hcp-request-opcode-0", "00 00", -EOPNOTSUPP, 0,
		"hcp.opcode"),
	HCP_ERR("1.9-hcp-request-opcode-5", "05 00", -EOPNOTSUPP, 0,
		"hcp.opcode"),
	HCP_ERR("1.9-hcp-request-opcode-ff", "ff 00", -EOPNOTSUPP, 0,
		"hcp.opcode"),
	HCP_ERR("1.9-hcp-request-is-count-response", "10 00", -EOPNOTSUPP, 0,
		"hcp.opcode"),
	HCP_ERR("1.9-hcp-request-is-response-code", "11 00", -EOPNOTSUPP, 0,
		"hcp.opcode"),
	HCP_ERR("1.9-hcp-request-filter-3-unknown", "01 03", -EINVAL, 1,
		"hcp.filter"),
	HCP_ERR("1.9-hcp-request-filter-ff-unknown", "02 ff 00 00 00 00",
		-EINVAL, 1, "hcp.filter"),
	HCP_ERR("1.9-hcp-request-operand-cut", "01 01 10 00 00", -EMSGSIZE, 2,
		"hcp.operand"),
	HCP_ERR("1.9-hcp-request-operand-missing", "03 02", -EMSGSIZE, 2,
		"hcp.operand"),
	HCP_ERR("1.9-hcp-request-all-with-trailing", "01 00 00", -EBADMSG, 2,
		"hcp.trailing"),
	HCP_ERR("1.9-hcp-request-all-with-operand", "04 00 00 00 00 00",
		-EBADMSG, 2, "hcp.trailing"),
	HCP_ERR("1.9-hcp-request-operand-trailing", "01 01 10 00 00 00 00",
		-EBADMSG, 6, "hcp.trailing"),
	HCP_ERR("1.9-hcp-count-up-to-seq-invalid", "01 02 10 00 00 00",
		-EINVAL, 1, "hcp.filter"),
	HCP_ERR("1.9-hcp-report-up-to-seq-invalid", "02 02 10 00 00 00",
		-EINVAL, 1, "hcp.filter"),
	HCP_ERR("1.9-hcp-delete-all-invalid", "03 00", -EINVAL, 1,
		"hcp.filter"),
	HCP_ERR("1.9-hcp-delete-after-seq-invalid", "03 01 10 00 00 00",
		-EINVAL, 1, "hcp.filter"),
	HCP_ERR("1.9-hcp-abort-after-seq-invalid", "04 01 10 00 00 00",
		-EINVAL, 1, "hcp.filter"),
	HCP_ERR("1.9-hcp-abort-up-to-seq-invalid", "04 02 10 00 00 00",
		-EINVAL, 1, "hcp.filter"),
};

static void test_hcp_request_decode(void **state)
{
	const struct hcp_req_vec *v = *state;
	uint8_t buf[BUF_MAX];
	size_t n = test_hex(v->hex, buf, sizeof(buf));
	struct wb_hcp_request got, pristine;
	struct wb_err err;
	int rc;

	test_fill(&got, sizeof(got));
	test_fill(&pristine, sizeof(pristine));
	test_fill(&err, sizeof(err));
	rc = wb_hcp_request_decode(buf, n, &got, &err);
	assert_int_equal(rc, v->rc);
	if (rc < 0) {
		assert_memory_equal(&got, &pristine, sizeof(got));
		check_err(&err, v->err_offset, -1, v->err_field);
		return;
	}
	assert_true(test_is_pattern(&err, sizeof(err)));
	assert_int_equal(got.opcode, v->want.opcode);
	assert_int_equal(got.filter, v->want.filter);
	assert_int_equal(got.seq, v->want.seq);
	check_encode(enc_hcp_request, &got, buf, n);
}

struct hcp_rsp_vec {
	const char *name;
	const char *hex;
	int rc;
	struct wb_hcp_response want;
	size_t err_offset;
	const char *err_field;
};

static const struct hcp_rsp_vec hcp_rsp_vecs[] = {
	{ .name = "1.9-hcp-count-response", .hex = "10 05 00 00 00",
	  .want = { WB_HCP_COUNT_RESPONSE, 0, 0, 5, 0 } },
	{ .name = "1.9-hcp-count-response-max", .hex = "10 ff ff ff ff",
	  .want = { WB_HCP_COUNT_RESPONSE, 0, 0, UINT32_MAX, 0 } },
	{ .name = "1.9-hcp-response-code-report-success",
	  .hex = "11 02 01 0a 00 00 00 f1 03 00 00",
	  .want = { WB_HCP_RESPONSE_CODE, WB_HCP_REPORT_RECORDS,
		    WB_HCP_SUCCESS, 10, 1009 } },
	{ .name = "1.9-hcp-response-code-delete-success",
	  .hex = "11 03 01 64 00 00 00 ff ff ff ff",
	  .want = { WB_HCP_RESPONSE_CODE, WB_HCP_DELETE_RECORDS,
		    WB_HCP_SUCCESS, 100, UINT32_MAX } },
	{ .name = "1.9-hcp-response-code-max-storage-error",
	  .hex = "11 01 08 00 00 00 00 00 00 00 00",
	  .want = { WB_HCP_RESPONSE_CODE, WB_HCP_REPORT_COUNT,
		    WB_HCP_STORAGE_ERROR, 0, 0 } },
	{ .name = "1.9-hcp-response-code-abort-failed",
	  .hex = "11 04 07 00 00 00 00 00 00 00 00",
	  .want = { WB_HCP_RESPONSE_CODE, WB_HCP_ABORT, WB_HCP_ABORT_FAILED, 0,
		    0 } },
	HCP_ERR("1.9-hcp-response-empty", "", -EMSGSIZE, 0, "hcp.opcode"),
	HCP_ERR("1.9-hcp-response-opcode-request", "01 05 00 00 00",
		-EOPNOTSUPP, 0, "hcp.opcode"),
	HCP_ERR("1.9-hcp-response-opcode-12", "12 05 00 00 00", -EOPNOTSUPP, 0,
		"hcp.opcode"),
	HCP_ERR("1.9-hcp-response-opcode-0", "00", -EOPNOTSUPP, 0,
		"hcp.opcode"),
	HCP_ERR("1.9-hcp-count-response-4-bytes", "10 05 00 00", -EMSGSIZE, 1,
		"hcp.count"),
	HCP_ERR("1.9-hcp-count-response-6-bytes", "10 05 00 00 00 00",
		-EBADMSG, 5, "hcp.trailing"),
	HCP_ERR("1.9-hcp-response-code-1-byte", "11", -EMSGSIZE, 1,
		"hcp.request"),
	HCP_ERR("1.9-hcp-response-code-10-bytes",
		"11 02 01 0a 00 00 00 f1 03 00", -EMSGSIZE, 7, "hcp.last_seq"),
	HCP_ERR("1.9-hcp-response-code-12-bytes",
		"11 02 01 0a 00 00 00 f1 03 00 00 00", -EBADMSG, 11,
		"hcp.trailing"),
	HCP_ERR("1.9-hcp-response-code-min-1",
		"11 02 00 00 00 00 00 00 00 00 00",
		-ERANGE, 2, "hcp.code"),
	HCP_ERR("1.9-hcp-response-code-max+1",
		"11 02 09 00 00 00 00 00 00 00 00",
		-ERANGE, 2, "hcp.code"),
	HCP_ERR("1.9-hcp-response-code-ff", "11 02 ff 00 00 00 00 00 00 00 00",
		-ERANGE, 2, "hcp.code"),
	HCP_ERR("1.9-hcp-response-request-0",
		"11 00 01 00 00 00 00 00 00 00 00",
		-EOPNOTSUPP, 1, "hcp.request"),
	HCP_ERR("1.9-hcp-response-request-5",
		"11 05 01 00 00 00 00 00 00 00 00",
		-EOPNOTSUPP, 1, "hcp.request"),
	HCP_ERR("1.9-hcp-response-request-is-response",
		"11 10 01 00 00 00 00 00 00 00 00", -EOPNOTSUPP, 1,
		"hcp.request"),
};

static void test_hcp_response_decode(void **state)
{
	const struct hcp_rsp_vec *v = *state;
	uint8_t buf[BUF_MAX];
	size_t n = test_hex(v->hex, buf, sizeof(buf));
	struct wb_hcp_response got, pristine;
	struct wb_err err;
	int rc;

	test_fill(&got, sizeof(got));
	test_fill(&pristine, sizeof(pristine));
	test_fill(&err, sizeof(err));
	rc = wb_hcp_response_decode(buf, n, &got, &err);
	assert_int_equal(rc, v->rc);
	if (rc < 0) {
		assert_memory_equal(&got, &pristine, sizeof(got));
		check_err(&err, v->err_offset, -1, v->err_field);
		return;
	}
	assert_true(test_is_pattern(&err, sizeof(err)));
	assert_int_equal(got.opcode, v->want.opcode);
	assert_int_equal(got.request, v->want.request);
	assert_int_equal(got.code, v->want.code);
	assert_int_equal(got.count, v->want.count);
	assert_int_equal(got.last_seq, v->want.last_seq);
	check_encode(enc_hcp_response, &got, buf, n);
}

/* ---- 1.10 Standard characteristics: Current Time ------------------------- */

struct cts_vec {
	const char *name;
	const char *hex;
	int rc;
	struct wb_current_time want;
	size_t err_offset;
	const char *err_field;
};

/* year (2 bytes), month, day, hours, minutes, seconds, dow, 1/256, reason */
#define CTS_OK(n, h, ...) { .name = n, .hex = h, .want = { __VA_ARGS__ } }
#define CTS_ERR(n, h, r, off, f) \
	{ .name = n, .hex = h, .rc = r, .err_offset = off, .err_field = f }

static const struct cts_vec cts_vecs[] = {
	CTS_OK("1.10-cts-2024-02-29-leap-day", "e8 07 02 1d 0c 00 00 04 00 02",
	       2024, 2, 29, 12, 0, 0, 4, 0, 2),
	CTS_ERR("1.10-cts-2023-02-29-not-leap", "e7 07 02 1d 0c 00 00 03 00 02",
		-ERANGE, 3, "time.day"),
	CTS_OK("1.10-cts-2023-02-28", "e7 07 02 1c 00 00 00 02 00 00",
	       2023, 2, 28, 0, 0, 0, 2, 0, 0),
	CTS_OK("1.10-cts-2000-02-29-leap-400", "d0 07 02 1d 00 00 00 02 00 00",
	       2000, 2, 29, 0, 0, 0, 2, 0, 0),
	CTS_ERR("1.10-cts-1900-02-29-not-leap-100",
		"6c 07 02 1d 00 00 00 00 00 00", -ERANGE, 3, "time.day"),
	CTS_ERR("1.10-cts-2100-02-29-not-leap-100",
		"34 08 02 1d 00 00 00 00 00 00", -ERANGE, 3, "time.day"),
	CTS_OK("1.10-cts-year-min", "2e 06 0a 0f 00 00 00 05 00 00",
	       1582, 10, 15, 0, 0, 0, 5, 0, 0),
	CTS_ERR("1.10-cts-year-min-1", "2d 06 0a 0f 00 00 00 00 00 00",
		-ERANGE, 0, "time.year"),
	CTS_OK("1.10-cts-year-max", "0f 27 0c 1f 17 3b 3b 05 ff 0f",
	       9999, 12, 31, 23, 59, 59, 5, 255, 0x0f),
	CTS_ERR("1.10-cts-year-max+1", "10 27 01 01 00 00 00 00 00 00",
		-ERANGE, 0, "time.year"),
	CTS_ERR("1.10-cts-year-0-unknown", "00 00 01 01 00 00 00 00 00 00",
		-ERANGE, 0, "time.year"),
	CTS_OK("1.10-cts-month-min", "e8 07 01 1f 00 00 00 00 00 00",
	       2024, 1, 31, 0, 0, 0, 0, 0, 0),
	CTS_OK("1.10-cts-month-max", "e8 07 0c 1f 00 00 00 00 00 00",
	       2024, 12, 31, 0, 0, 0, 0, 0, 0),
	CTS_ERR("1.10-cts-month-min-1", "e8 07 00 01 00 00 00 00 00 00",
		-ERANGE, 2, "time.month"),
	CTS_ERR("1.10-cts-month-max+1", "e8 07 0d 01 00 00 00 00 00 00",
		-ERANGE, 2, "time.month"),
	CTS_ERR("1.10-cts-day-min-1", "e8 07 01 00 00 00 00 00 00 00",
		-ERANGE, 3, "time.day"),
	CTS_ERR("1.10-cts-january-32", "e8 07 01 20 00 00 00 00 00 00",
		-ERANGE, 3, "time.day"),
	CTS_OK("1.10-cts-april-30", "e8 07 04 1e 00 00 00 00 00 00",
	       2024, 4, 30, 0, 0, 0, 0, 0, 0),
	CTS_ERR("1.10-cts-april-31", "e8 07 04 1f 00 00 00 00 00 00",
		-ERANGE, 3, "time.day"),
	CTS_OK("1.10-cts-time-max", "e8 07 06 0f 17 3b 3b 06 80 01",
	       2024, 6, 15, 23, 59, 59, 6, 128, 1),
	CTS_OK("1.10-cts-day-of-week-max-sunday",
	       "e8 07 06 10 00 00 00 07 00 00",
	       2024, 6, 16, 0, 0, 0, 7, 0, 0),
	/* lenient: the day of week is redundant and not cross-checked */
	CTS_OK("1.10-cts-day-of-week-not-cross-checked",
	       "e8 07 06 0f 00 00 00 01 00 00", 2024, 6, 15, 0, 0, 0, 1, 0, 0),
	CTS_ERR("1.10-cts-hours-max+1", "e8 07 06 0f 18 00 00 00 00 00",
		-ERANGE, 4, "time.hours"),
	CTS_ERR("1.10-cts-minutes-max+1", "e8 07 06 0f 00 3c 00 00 00 00",
		-ERANGE, 5, "time.minutes"),
	CTS_ERR("1.10-cts-seconds-max+1-leap-second",
		"e8 07 06 0f 00 00 3c 00 00 00", -ERANGE, 6, "time.seconds"),
	CTS_ERR("1.10-cts-day-of-week-max+1", "e8 07 06 0f 00 00 00 08 00 00",
		-ERANGE, 7, "time.day_of_week"),
	CTS_ERR("1.10-cts-adjust-reason-bit-4-reserved",
		"e8 07 06 0f 00 00 00 06 00 10", -EBADMSG, 9,
		"time.adjust_reason"),
	CTS_ERR("1.10-cts-adjust-reason-bit-7-reserved",
		"e8 07 06 0f 00 00 00 06 00 80", -EBADMSG, 9,
		"time.adjust_reason"),
	CTS_ERR("1.10-cts-empty", "", -EMSGSIZE, 0, "time.year"),
	CTS_ERR("1.10-cts-cut-in-year", "e8", -EMSGSIZE, 0, "time.year"),
	CTS_ERR("1.10-cts-9-bytes", "e8 07 06 0f 00 00 00 06 00", -EMSGSIZE, 9,
		"time.adjust_reason"),
	CTS_ERR("1.10-cts-11-bytes", "e8 07 06 0f 00 00 00 06 00 00 00",
		-EBADMSG, 10, "time.trailing"),
};

static void test_cts_decode(void **state)
{
	const struct cts_vec *v = *state;
	uint8_t buf[BUF_MAX];
	size_t n = test_hex(v->hex, buf, sizeof(buf));
	struct wb_current_time got, pristine;
	struct wb_err err;
	int rc;

	test_fill(&got, sizeof(got));
	test_fill(&pristine, sizeof(pristine));
	test_fill(&err, sizeof(err));
	rc = wb_current_time_decode(buf, n, &got, &err);
	assert_int_equal(rc, v->rc);
	if (rc < 0) {
		assert_memory_equal(&got, &pristine, sizeof(got));
		check_err(&err, v->err_offset, -1, v->err_field);
		return;
	}
	assert_true(test_is_pattern(&err, sizeof(err)));
	assert_int_equal(got.year, v->want.year);
	assert_int_equal(got.month, v->want.month);
	assert_int_equal(got.day, v->want.day);
	assert_int_equal(got.hours, v->want.hours);
	assert_int_equal(got.minutes, v->want.minutes);
	assert_int_equal(got.seconds, v->want.seconds);
	assert_int_equal(got.day_of_week, v->want.day_of_week);
	assert_int_equal(got.fractions256, v->want.fractions256);
	assert_int_equal(got.adjust_reason, v->want.adjust_reason);
	check_encode(enc_current_time, &got, buf, n);
}

/* ---- 1.10 Battery Level -------------------------------------------------- */

struct battery_vec {
	const char *name;
	const char *hex;
	int rc;
	uint8_t want;
	size_t err_offset;
	const char *err_field;
};

#define BAT_ERR(n, h, r, off, f) \
	{ .name = n, .hex = h, .rc = r, .err_offset = off, .err_field = f }

static const struct battery_vec battery_vecs[] = {
	{ .name = "1.10-battery-min", .hex = "00", .want = 0 },
	{ .name = "1.10-battery-max", .hex = "64", .want = 100 },
	BAT_ERR("1.10-battery-max+1", "65", -ERANGE, 0, "battery.level"),
	BAT_ERR("1.10-battery-ff", "ff", -ERANGE, 0, "battery.level"),
	BAT_ERR("1.10-battery-empty", "", -EMSGSIZE, 0, "battery.level"),
	BAT_ERR("1.10-battery-2-bytes", "64 00", -EBADMSG, 1,
		"battery.trailing"),
	BAT_ERR("1.10-battery-long-before-range", "65 00", -EBADMSG, 1,
		"battery.trailing"),
};

static void test_battery_decode(void **state)
{
	const struct battery_vec *v = *state;
	uint8_t buf[16];
	size_t n = test_hex(v->hex, buf, sizeof(buf));
	uint8_t got = TEST_PATTERN;
	struct wb_err err;
	int rc;

	test_fill(&err, sizeof(err));
	rc = wb_battery_decode(buf, n, &got, &err);
	assert_int_equal(rc, v->rc);
	if (rc < 0) {
		assert_int_equal(got, TEST_PATTERN);
		check_err(&err, v->err_offset, -1, v->err_field);
		return;
	}
	assert_true(test_is_pattern(&err, sizeof(err)));
	assert_int_equal(got, v->want);
}

/* ---- 1.10 Device Information strings ------------------------------------- */

struct devinfo_vec {
	const char *name;
	const char *hex;
	size_t size;
	int rc;
	const char *want;
	size_t err_offset;
	const char *err_field;
};

#define DEVINFO_SIZE (WB_DEVINFO_MAX + 1)
#define DI_OK(n, h, w) \
	{ .name = n, .hex = h, .size = DEVINFO_SIZE, .want = w }
#define DI_FIT(n, h, sz, w) { .name = n, .hex = h, .size = sz, .want = w }
#define DI_ERR(n, h, sz, r, off, f) \
	{ .name = n, .hex = h, .size = sz, .rc = r, .err_offset = off, \
	  .err_field = f }
#define DI_BAD(n, h, off) \
	{ .name = n, .hex = h, .size = DEVINFO_SIZE, .rc = -EBADMSG, \
	  .err_offset = off, .err_field = "devinfo.utf8" }

static const struct devinfo_vec devinfo_vecs[] = {
	DI_OK("1.10-devinfo-ascii", "52 65 68 61 62", "Rehab"),
	DI_OK("1.10-devinfo-empty", "", ""),
	DI_OK("1.10-devinfo-max-1-byte-u+007f", "7f", "\x7f"),
	DI_OK("1.10-devinfo-min-2-byte-u+0080", "c2 80", "\xc2\x80"),
	DI_OK("1.10-devinfo-2-byte-e-acute", "4d 6f 64 c3 a9 6c 65",
	      "Mod\xc3\xa9le"),
	DI_OK("1.10-devinfo-min-3-byte-u+0800", "e0 a0 80", "\xe0\xa0\x80"),
	DI_OK("1.10-devinfo-3-byte-euro", "e2 82 ac", "\xe2\x82\xac"),
	DI_OK("1.10-devinfo-u+d7ff-below-surrogates", "ed 9f bf",
	      "\xed\x9f\xbf"),
	DI_OK("1.10-devinfo-u+e000-above-surrogates", "ee 80 80",
	      "\xee\x80\x80"),
	DI_OK("1.10-devinfo-u+ffff", "ef bf bf", "\xef\xbf\xbf"),
	DI_OK("1.10-devinfo-min-4-byte-u+10000", "f0 90 80 80",
	      "\xf0\x90\x80\x80"),
	DI_OK("1.10-devinfo-4-byte-emoji", "f0 9f 98 80", "\xf0\x9f\x98\x80"),
	DI_OK("1.10-devinfo-max-u+10ffff", "f4 8f bf bf", "\xf4\x8f\xbf\xbf"),
	DI_BAD("1.10-devinfo-above-u+10ffff", "f4 90 80 80", 0),
	DI_BAD("1.10-devinfo-lead-f5", "f5 80 80 80", 0),
	DI_BAD("1.10-devinfo-lead-ff", "41 ff", 1),
	DI_BAD("1.10-devinfo-surrogate-d800", "ed a0 80", 0),
	DI_BAD("1.10-devinfo-surrogate-dfff", "41 ed bf bf", 1),
	DI_BAD("1.10-devinfo-overlong-nul-c0-80", "c0 80", 0),
	DI_BAD("1.10-devinfo-overlong-c1-bf", "c1 bf", 0),
	DI_BAD("1.10-devinfo-overlong-3-byte", "e0 9f bf", 0),
	DI_BAD("1.10-devinfo-overlong-4-byte", "f0 8f bf bf", 0),
	DI_BAD("1.10-devinfo-lone-continuation", "41 80 42", 1),
	DI_BAD("1.10-devinfo-cut-at-end", "41 e2 82", 1),
	DI_BAD("1.10-devinfo-2-byte-cut-at-end", "41 42 c3", 2),
	DI_BAD("1.10-devinfo-cut-before-ascii", "e2 82 41", 0),
	DI_BAD("1.10-devinfo-bad-4th-byte", "f0 9f 98 41", 0),
	DI_ERR("1.10-devinfo-embedded-nul", "41 00 42", DEVINFO_SIZE, -EBADMSG,
	       1, "devinfo.nul"),
	DI_ERR("1.10-devinfo-leading-nul", "00 41", DEVINFO_SIZE, -EBADMSG, 0,
	       "devinfo.nul"),
	DI_OK("1.10-devinfo-trailing-nul-padding", "41 42 00 00", "AB"),
	DI_OK("1.10-devinfo-all-nul", "00 00", ""),
	DI_FIT("1.10-devinfo-fits-exactly", "31 2e 30 2e 32", 6, "1.0.2"),
	DI_ERR("1.10-devinfo-one-byte-too-long", "31 2e 30 2e 32", 5,
	       -EMSGSIZE, 4, "devinfo.length"),
	DI_ERR("1.10-devinfo-size-0", "41", 0, -EMSGSIZE, 0, "devinfo.length"),
	DI_FIT("1.10-devinfo-empty-size-1", "", 1, ""),
	DI_ERR("1.10-devinfo-empty-size-0", "", 0, -EMSGSIZE, 0,
	       "devinfo.length"),
	DI_FIT("1.10-devinfo-padding-does-not-count", "41 00 00", 2, "A"),
	DI_ERR("1.10-devinfo-invalid-before-size", "ff", 0, -EBADMSG, 0,
	       "devinfo.utf8"),
};

static void test_devinfo_decode(void **state)
{
	const struct devinfo_vec *v = *state;
	uint8_t val[BUF_MAX];
	size_t n = test_hex(v->hex, val, sizeof(val));
	char buf[128];
	struct wb_err err;
	int rc;

	assert_true(v->size <= sizeof(buf));
	test_fill(buf, sizeof(buf));
	test_fill(&err, sizeof(err));
	rc = wb_devinfo_string_decode(val, n, buf, v->size, &err);
	assert_int_equal(rc, v->rc);
	if (rc < 0) {
		assert_true(test_is_pattern(buf, sizeof(buf)));
		check_err(&err, v->err_offset, -1, v->err_field);
		return;
	}
	assert_true(test_is_pattern(&err, sizeof(err)));
	assert_string_equal(buf, v->want);
	/* nothing written past the NUL */
	assert_true(test_is_pattern(buf + strlen(v->want) + 1,
				    sizeof(buf) - strlen(v->want) - 1));
}

/* ---- 1.11 Sequence numbers ----------------------------------------------- */

struct seq_vec {
	const char *name;
	uint32_t a, b;
	bool a_after_b, b_after_a;
	uint32_t distance;		/* wb_seq_distance(a, b) */
};

static const struct seq_vec seq_vecs[] = {
	{ "1.11-seq-1-after-0", 1, 0, true, false, 1 },
	{ "1.11-seq-equal-not-after", 5, 5, false, false, 0 },
	{ "1.11-seq-wrap-0-after-ffffffff", 0, 0xffffffff, true, false, 1 },
	{ "1.11-seq-wrap-10-after-fffffff0", 10, 0xfffffff0, true, false, 26 },
	{ "1.11-seq-distance-7fffffff-after", 0x7fffffff, 0, true, false,
	  0x7fffffff },
	{ "1.11-seq-distance-80000000-neither", 0x80000000, 0, false, false,
	  0x80000000 },
	{ "1.11-seq-distance-80000001-before", 0x80000001, 0, false, true,
	  0x80000001 },
	{ "1.11-seq-wrap-distance-7fffffff", 0x7ffffffe, 0xffffffff, true,
	  false, 0x7fffffff },
	{ "1.11-seq-wrap-distance-80000000-neither", 0x7fffffff, 0xffffffff,
	  false, false, 0x80000000 },
};

static void test_seq(void **state)
{
	const struct seq_vec *v = *state;

	assert_int_equal(wb_seq_after(v->a, v->b), v->a_after_b);
	assert_int_equal(wb_seq_after(v->b, v->a), v->b_after_a);
	assert_int_equal(wb_seq_distance(v->a, v->b), v->distance);
}

/* ---- Encoders: invalid input ------------------------------------------- */

struct rec_invalid_vec {
	const char *name;
	struct wb_record rec;
	int rc;
	size_t err_offset;
	const char *err_field;
};

#define INV(n, r, off, f, ...) \
	{ .name = n, .rc = r, .err_offset = off, .err_field = f, \
	  .rec = { __VA_ARGS__ } }
#define VHDR(t) .type = (t), .version = 1, .seq = 1, .time = 2

static const struct rec_invalid_vec rec_invalid_vecs[] = {
	INV("1.3-encode-type-0", -EINVAL, 0, "header.type", .type = 0,
	    .version = 1),
	INV("1.3-encode-type-max+1", -EINVAL, 0, "header.type", .type = 5,
	    .version = 1),
	INV("1.3-encode-version-0", -EINVAL, 1, "header.version",
	    .type = WB_RECORD_PAIN, .version = 0),
	INV("1.3-encode-version-2", -EINVAL, 1, "header.version",
	    .type = WB_RECORD_PAIN, .version = 2),
	INV("1.2-encode-time-quality-max+1", -EINVAL, 10,
	    "header.time_quality", VHDR(WB_RECORD_PAIN), .time_quality = 3),
	INV("1.4-encode-flexion-min-1", -ERANGE, 12, "posture.flexion",
	    VHDR(WB_RECORD_POSTURE), .u.posture = { -1801, 0, 1, 60 }),
	INV("1.4-encode-flexion-max+1", -ERANGE, 12, "posture.flexion",
	    VHDR(WB_RECORD_POSTURE), .u.posture = { 1801, 0, 1, 60 }),
	INV("1.4-encode-tilt-min-1", -ERANGE, 14, "posture.tilt",
	    VHDR(WB_RECORD_POSTURE), .u.posture = { 0, -901, 1, 60 }),
	INV("1.4-encode-tilt-max+1", -ERANGE, 14, "posture.tilt",
	    VHDR(WB_RECORD_POSTURE), .u.posture = { 0, 901, 1, 60 }),
	INV("1.4-encode-class-max+1", -ERANGE, 16, "posture.class",
	    VHDR(WB_RECORD_POSTURE), .u.posture = { 0, 0, 5, 60 }),
	INV("1.4-encode-duration-min-1", -ERANGE, 17, "posture.duration",
	    VHDR(WB_RECORD_POSTURE), .u.posture = { 0, 0, 1, 0 }),
	INV("1.4-encode-duration-max+1", -ERANGE, 17, "posture.duration",
	    VHDR(WB_RECORD_POSTURE), .u.posture = { 0, 0, 1, 3601 }),
	INV("1.5-encode-steps-rate-max+1", -ERANGE, 12, "steps.steps",
	    VHDR(WB_RECORD_STEPS), .u.steps = { 301, 60 }),
	INV("1.5-encode-duration-min-1", -ERANGE, 14, "steps.duration",
	    VHDR(WB_RECORD_STEPS), .u.steps = { 0, 0 }),
	INV("1.5-encode-duration-max+1", -ERANGE, 14, "steps.duration",
	    VHDR(WB_RECORD_STEPS), .u.steps = { 0, 3601 }),
	INV("1.6-encode-pain-score-11", -ERANGE, 12, "pain.score",
	    VHDR(WB_RECORD_PAIN), .u.pain = { 11, 0 }),
	INV("1.6-encode-pain-flag-reserved", -EINVAL, 13, "pain.flags",
	    VHDR(WB_RECORD_PAIN), .u.pain = { 1, 0x80 }),
	INV("1.7-encode-battery-max+1", -ERANGE, 12, "status.battery",
	    VHDR(WB_RECORD_STATUS), .u.status = { 101, 0, 0, 0 }),
	INV("1.7-encode-storage-max+1", -ERANGE, 13, "status.storage",
	    VHDR(WB_RECORD_STATUS), .u.status = { 0, 101, 0, 0 }),
	INV("1.7-encode-status-flag-reserved", -EINVAL, 14, "status.flags",
	    VHDR(WB_RECORD_STATUS), .u.status = { 0, 0, 0x10, 0 }),
};

static void test_record_invalid(void **state)
{
	const struct rec_invalid_vec *v = *state;
	const struct wb_record ok = { VHDR(WB_RECORD_PAIN),
				      .u.pain = { 1, 0 } };
	struct wb_record two[2] = { ok, v->rec };
	uint8_t buf[BUF_MAX];
	struct wb_err err;

	test_fill(&err, sizeof(err));
	assert_int_equal(wb_record_validate(&v->rec, &err), v->rc);
	check_err(&err, v->err_offset, -1, v->err_field);
	assert_int_equal(wb_record_validate(&v->rec, NULL), v->rc);
	assert_int_equal(wb_record_encoded_len(&v->rec), v->rc);
	assert_int_equal(wb_record_encode(&v->rec, buf, sizeof(buf)), v->rc);
	/* a too small buffer does not hide the invalid input */
	assert_int_equal(wb_record_encode(&v->rec, buf, 0), v->rc);
	assert_int_equal(wb_batch_encode(two, 2, buf, sizeof(buf)), v->rc);
	/* the packing helper stops before a record it cannot send */
	assert_int_equal(wb_batch_fit(two, 2, WB_ATT_MAX_VALUE), 1);
	assert_int_equal(wb_batch_fit(&two[1], 1, WB_ATT_MAX_VALUE), 0);
}

enum enc_kind { ENC_FEATURES, ENC_HCP_REQUEST, ENC_HCP_RESPONSE, ENC_CTS };

struct enc_invalid_vec {
	const char *name;
	enum enc_kind kind;
	int rc;
	union {
		struct wb_features f;
		struct wb_hcp_request req;
		struct wb_hcp_response rsp;
		struct wb_current_time t;
	} in;
};

/* version, flags, periods, capacity, stored; first_seq and last_seq 0 */
#define FEAT_INV(n, r, ...) \
	{ .name = n, .kind = ENC_FEATURES, .rc = r, \
	  .in.f = { __VA_ARGS__, 0, 0 } }
#define REQ_INV(n, ...) \
	{ .name = n, .kind = ENC_HCP_REQUEST, .rc = -EINVAL, \
	  .in.req = { __VA_ARGS__ } }
#define RSP_INV(n, r, ...) \
	{ .name = n, .kind = ENC_HCP_RESPONSE, .rc = r, \
	  .in.rsp = { __VA_ARGS__ } }
#define CTS_INV(n, r, ...) \
	{ .name = n, .kind = ENC_CTS, .rc = r, .in.t = { __VA_ARGS__ } }

static const struct enc_invalid_vec enc_invalid_vecs[] = {
	FEAT_INV("1.8-encode-features-version-0", -EINVAL, 0, 0, 60, 10, 100,
		 0),
	FEAT_INV("1.8-encode-features-version-2", -EINVAL, 2, 0, 60, 10, 100,
		 0),
	FEAT_INV("1.8-encode-features-flag-reserved", -EINVAL, 1, 0x20, 60, 10,
		 100, 0),
	FEAT_INV("1.8-encode-features-posture-period-0", -ERANGE, 1, 0, 0, 10,
		 100, 0),
	FEAT_INV("1.8-encode-features-posture-period-3601", -ERANGE, 1, 0,
		 3601, 10, 100, 0),
	FEAT_INV("1.8-encode-features-steps-period-0", -ERANGE, 1, 0, 60, 0,
		 100, 0),
	FEAT_INV("1.8-encode-features-steps-period-3601", -ERANGE, 1, 0, 60,
		 3601, 100, 0),
	FEAT_INV("1.8-encode-features-capacity-0", -ERANGE, 1, 0, 60, 10, 0, 0),
	FEAT_INV("1.8-encode-features-stored-over-capacity", -ERANGE, 1, 0, 60,
		 10, 100, 101),
	REQ_INV("1.9-encode-request-opcode-0", 0, WB_HCP_ALL, 0),
	REQ_INV("1.9-encode-request-opcode-5", 5, WB_HCP_ALL, 0),
	REQ_INV("1.9-encode-request-is-response", WB_HCP_COUNT_RESPONSE,
		WB_HCP_ALL, 0),
	REQ_INV("1.9-encode-request-filter-3", WB_HCP_REPORT_COUNT, 3, 0),
	REQ_INV("1.9-encode-request-count-up-to", WB_HCP_REPORT_COUNT,
		WB_HCP_UP_TO_SEQ, 1),
	REQ_INV("1.9-encode-request-delete-all", WB_HCP_DELETE_RECORDS,
		WB_HCP_ALL, 0),
	REQ_INV("1.9-encode-request-abort-after", WB_HCP_ABORT,
		WB_HCP_AFTER_SEQ, 1),
	REQ_INV("1.9-encode-request-all-with-seq", WB_HCP_REPORT_RECORDS,
		WB_HCP_ALL, 7),
	RSP_INV("1.9-encode-response-opcode-request", -EINVAL,
		WB_HCP_REPORT_COUNT, 0, 0, 0, 0),
	RSP_INV("1.9-encode-response-opcode-0x12", -EINVAL, 0x12, 0, 0, 0, 0),
	RSP_INV("1.9-encode-response-code-min-1", -ERANGE,
		WB_HCP_RESPONSE_CODE, WB_HCP_ABORT, 0, 0, 0),
	RSP_INV("1.9-encode-response-code-max+1", -ERANGE,
		WB_HCP_RESPONSE_CODE, WB_HCP_ABORT, 9, 0, 0),
	RSP_INV("1.9-encode-response-request-is-response", -EINVAL,
		WB_HCP_RESPONSE_CODE, WB_HCP_RESPONSE_CODE, WB_HCP_SUCCESS, 0,
		0),
	RSP_INV("1.9-encode-count-response-with-code", -EINVAL,
		WB_HCP_COUNT_RESPONSE, 0, WB_HCP_SUCCESS, 3, 0),
	RSP_INV("1.9-encode-count-response-with-last-seq", -EINVAL,
		WB_HCP_COUNT_RESPONSE, 0, 0, 3, 9),
	CTS_INV("1.10-encode-cts-2023-02-29", -ERANGE, 2023, 2, 29, 0, 0, 0, 0,
		0, 0),
	CTS_INV("1.10-encode-cts-year-0", -ERANGE, 0, 1, 1, 0, 0, 0, 0, 0, 0),
	CTS_INV("1.10-encode-cts-hours-24", -ERANGE, 2024, 1, 1, 24, 0, 0, 0,
		0, 0),
	CTS_INV("1.10-encode-cts-day-of-week-8", -ERANGE, 2024, 1, 1, 0, 0, 0,
		8, 0, 0),
	CTS_INV("1.10-encode-cts-adjust-reserved", -EINVAL, 2024, 1, 1, 0, 0,
		0, 1, 0, 0x10),
};

static void test_encode_invalid(void **state)
{
	const struct enc_invalid_vec *v = *state;
	uint8_t buf[BUF_MAX];

	switch (v->kind) {
	case ENC_FEATURES:
		assert_int_equal(wb_features_encode(&v->in.f, buf, sizeof(buf)),
				 v->rc);
		assert_int_equal(wb_features_encode(&v->in.f, buf, 0), v->rc);
		break;
	case ENC_HCP_REQUEST:
		assert_int_equal(wb_hcp_request_encode(&v->in.req, buf,
						       sizeof(buf)), v->rc);
		assert_int_equal(wb_hcp_request_encode(&v->in.req, buf, 0),
				 v->rc);
		break;
	case ENC_HCP_RESPONSE:
		assert_int_equal(wb_hcp_response_encode(&v->in.rsp, buf,
							sizeof(buf)), v->rc);
		assert_int_equal(wb_hcp_response_encode(&v->in.rsp, buf, 0),
				 v->rc);
		break;
	case ENC_CTS:
		assert_int_equal(wb_current_time_encode(&v->in.t, buf,
							sizeof(buf)), v->rc);
		assert_int_equal(wb_current_time_encode(&v->in.t, buf, 0),
				 v->rc);
		break;
	}
}

/* ---- 1.3 wb_batch_fit ---------------------------------------------------- */

struct fit_vec {
	const char *name;
	enum wb_record_type type;	/* all n records are of this type */
	size_t n;
	size_t mtu;
	int invalid_at;			/* index of an invalid record, or -1 */
	size_t want;
};

static const struct fit_vec fit_vecs[] = {
	{ "1.3-batch-fit-default-mtu-one-pain", WB_RECORD_PAIN, 5,
	  WB_ATT_MIN_PAYLOAD, -1, 1 },
	{ "1.3-batch-fit-default-mtu-no-posture", WB_RECORD_POSTURE, 5,
	  WB_ATT_MIN_PAYLOAD, -1, 0 },
	{ "1.3-batch-fit-exact-3-pain", WB_RECORD_PAIN, 5, 2 + 3 * 15, -1, 3 },
	{ "1.3-batch-fit-exact-minus-1", WB_RECORD_PAIN, 5, 2 + 3 * 15 - 1, -1,
	  2 },
	{ "1.3-batch-fit-att-max-capped-at-32", WB_RECORD_PAIN, 40,
	  WB_ATT_MAX_VALUE, -1, 32 },
	{ "1.3-batch-fit-att-max-posture", WB_RECORD_POSTURE, 40,
	  WB_ATT_MAX_VALUE, -1, 26 },
	{ "1.3-batch-fit-steps-all", WB_RECORD_STEPS, 3, WB_ATT_MAX_VALUE, -1,
	  3 },
	{ "1.3-batch-fit-status-one", WB_RECORD_STATUS, 3, 2 + 19, -1, 1 },
	{ "1.3-batch-fit-none-given", WB_RECORD_PAIN, 0, WB_ATT_MAX_VALUE, -1,
	  0 },
	{ "1.3-batch-fit-mtu-0", WB_RECORD_PAIN, 3, 0, -1, 0 },
	{ "1.3-batch-fit-mtu-header-only", WB_RECORD_PAIN, 3, 2, -1, 0 },
	{ "1.3-batch-fit-stops-at-invalid", WB_RECORD_PAIN, 5,
	  WB_ATT_MAX_VALUE, 2, 2 },
	{ "1.3-batch-fit-first-invalid", WB_RECORD_PAIN, 5, WB_ATT_MAX_VALUE,
	  0, 0 },
};

static void make_record(struct wb_record *rec, enum wb_record_type type,
			uint32_t seq)
{
	memset(rec, 0, sizeof(*rec));
	rec->type = type;
	rec->version = WB_RECORD_VERSION;
	rec->seq = seq;
	rec->time = 1000 + seq;
	rec->time_quality = WB_TIME_SYNCED;
	switch (type) {
	case WB_RECORD_POSTURE:
		rec->u.posture = (struct wb_posture){ 300, -20,
						      WB_POSTURE_UPRIGHT, 60 };
		break;
	case WB_RECORD_STEPS:
		rec->u.steps = (struct wb_steps){ 42, 60 };
		break;
	case WB_RECORD_PAIN:
		rec->u.pain = (struct wb_pain){ 4, WB_PAIN_ONE_SIDED };
		break;
	case WB_RECORD_STATUS:
		rec->u.status = (struct wb_status){ 90, 10, 0, 100 };
		break;
	}
}

static void test_batch_fit(void **state)
{
	const struct fit_vec *v = *state;
	struct wb_record recs[40];
	uint8_t buf[BUF_MAX];
	size_t k;

	assert_true(v->n <= ARRAY_SIZE(recs));
	for (size_t i = 0; i < v->n; i++)
		make_record(&recs[i], v->type, (uint32_t) i);
	if (v->invalid_at >= 0)
		recs[v->invalid_at].u.pain.score = 11;
	k = wb_batch_fit(recs, v->n, v->mtu);
	assert_int_equal(k, v->want);
	if (k > 0)
		assert_in_range(wb_batch_encode(recs, k, buf, v->mtu), 1,
				(ssize_t) v->mtu);
	/* one more would not fit (when there is a valid one more) */
	if (k < v->n && k < WB_BATCH_MAX && (int) k != v->invalid_at)
		assert_int_equal(wb_batch_encode(recs, k + 1, buf, v->mtu),
				 -ENOBUFS);
}

/* ---- Single tests -------------------------------------------------------- */

static void test_hex_helper(void **state)
{
	uint8_t buf[8];

	(void) state;
	assert_int_equal(test_hex("01 0a ff", buf, sizeof(buf)), 3);
	assert_int_equal(buf[0], 0x01);
	assert_int_equal(buf[1], 0x0a);
	assert_int_equal(buf[2], 0xff);
	assert_int_equal(test_hex("AbcD\n 00", buf, sizeof(buf)), 3);
	assert_int_equal(buf[0], 0xab);
	assert_int_equal(buf[1], 0xcd);
	assert_int_equal(buf[2], 0x00);
	assert_int_equal(test_hex("", buf, sizeof(buf)), 0);
}

static void test_strerror(void **state)
{
	(void) state;
	assert_string_equal(wb_strerror(-EMSGSIZE), "truncated");
	assert_string_equal(wb_strerror(-EBADMSG), "malformed");
	assert_string_equal(wb_strerror(-EOPNOTSUPP), "unknown type or opcode");
	assert_string_equal(wb_strerror(-EPROTONOSUPPORT),
			    "unsupported version");
	assert_string_equal(wb_strerror(-ERANGE), "value out of range");
	assert_string_equal(wb_strerror(-EINVAL), "invalid combination");
	assert_string_equal(wb_strerror(-ENOBUFS), "buffer too small");
	assert_string_equal(wb_strerror(0), "unknown error");
	assert_string_equal(wb_strerror(-EIO), "unknown error");
	assert_string_equal(wb_strerror(EMSGSIZE), "unknown error");
}

static void test_names(void **state)
{
	(void) state;
	assert_string_equal(wb_record_type_name(WB_RECORD_POSTURE), "posture");
	assert_string_equal(wb_record_type_name(WB_RECORD_STEPS), "steps");
	assert_string_equal(wb_record_type_name(WB_RECORD_PAIN), "pain");
	assert_string_equal(wb_record_type_name(WB_RECORD_STATUS), "status");
	assert_string_equal(wb_record_type_name(0), "invalid");
	assert_string_equal(wb_record_type_name(5), "invalid");
	assert_string_equal(wb_posture_class_name(WB_POSTURE_UNKNOWN),
			    "unknown");
	assert_string_equal(wb_posture_class_name(WB_POSTURE_UPRIGHT),
			    "upright");
	assert_string_equal(wb_posture_class_name(WB_POSTURE_FLEXED), "flexed");
	assert_string_equal(wb_posture_class_name(WB_POSTURE_RECLINED),
			    "reclined");
	assert_string_equal(wb_posture_class_name(WB_POSTURE_LYING), "lying");
	assert_string_equal(wb_posture_class_name(5), "invalid");
	assert_string_equal(wb_time_quality_name(WB_TIME_UNSYNCED), "unsynced");
	assert_string_equal(wb_time_quality_name(WB_TIME_SYNCED), "synced");
	assert_string_equal(wb_time_quality_name(WB_TIME_HOLDOVER), "holdover");
	assert_string_equal(wb_time_quality_name(3), "invalid");
	assert_string_equal(wb_hcp_code_name(WB_HCP_SUCCESS), "success");
	assert_string_equal(wb_hcp_code_name(WB_HCP_OPCODE_NOT_SUPPORTED),
			    "opcode not supported");
	assert_string_equal(wb_hcp_code_name(WB_HCP_INVALID_FILTER),
			    "invalid filter");
	assert_string_equal(wb_hcp_code_name(WB_HCP_NO_RECORDS), "no records");
	assert_string_equal(wb_hcp_code_name(WB_HCP_BUSY), "busy");
	assert_string_equal(wb_hcp_code_name(WB_HCP_ABORTED), "aborted");
	assert_string_equal(wb_hcp_code_name(WB_HCP_ABORT_FAILED),
			    "abort failed");
	assert_string_equal(wb_hcp_code_name(WB_HCP_STORAGE_ERROR),
			    "storage error");
	assert_string_equal(wb_hcp_code_name(0), "invalid");
	assert_string_equal(wb_hcp_code_name(9), "invalid");
}

static void test_record_equal(void **state)
{
	struct wb_record a, b;

	(void) state;
	for (int t = WB_RECORD_POSTURE; t <= WB_RECORD_TYPE_MAX; t++) {
		make_record(&a, (enum wb_record_type) t, 7);
		b = a;
		assert_true(wb_record_equal(&a, &b));
		b.seq++;
		assert_false(wb_record_equal(&a, &b));
		b = a;
		b.time++;
		assert_false(wb_record_equal(&a, &b));
		b = a;
		b.time_quality = WB_TIME_HOLDOVER;
		assert_false(wb_record_equal(&a, &b));
		b = a;
		b.version = 2;
		assert_false(wb_record_equal(&a, &b));
		b = a;
		b.type = t == WB_RECORD_PAIN ? WB_RECORD_STEPS : WB_RECORD_PAIN;
		assert_false(wb_record_equal(&a, &b));
	}

	/* each field of the active member counts */
	make_record(&a, WB_RECORD_POSTURE, 1);
	b = a;
	b.u.posture.flexion_ddeg++;
	assert_false(wb_record_equal(&a, &b));
	b = a;
	b.u.posture.tilt_ddeg++;
	assert_false(wb_record_equal(&a, &b));
	b = a;
	b.u.posture.cls = WB_POSTURE_LYING;
	assert_false(wb_record_equal(&a, &b));
	b = a;
	b.u.posture.duration_s++;
	assert_false(wb_record_equal(&a, &b));

	make_record(&a, WB_RECORD_STEPS, 1);
	b = a;
	b.u.steps.steps++;
	assert_false(wb_record_equal(&a, &b));
	b = a;
	b.u.steps.duration_s++;
	assert_false(wb_record_equal(&a, &b));
	/* bytes of the union beyond struct wb_steps do not count */
	b = a;
	b.u.posture.cls = WB_POSTURE_LYING;
	assert_true(wb_record_equal(&a, &b));

	make_record(&a, WB_RECORD_PAIN, 1);
	b = a;
	b.u.pain.score++;
	assert_false(wb_record_equal(&a, &b));
	b = a;
	b.u.pain.flags ^= WB_PAIN_FEVER;
	assert_false(wb_record_equal(&a, &b));
	b = a;
	b.u.status.uptime_s = 12345;	/* beyond struct wb_pain */
	assert_true(wb_record_equal(&a, &b));

	make_record(&a, WB_RECORD_STATUS, 1);
	b = a;
	b.u.status.battery_pct++;
	assert_false(wb_record_equal(&a, &b));
	b = a;
	b.u.status.storage_pct++;
	assert_false(wb_record_equal(&a, &b));
	b = a;
	b.u.status.flags ^= WB_STATUS_CHARGING;
	assert_false(wb_record_equal(&a, &b));
	b = a;
	b.u.status.uptime_s++;
	assert_false(wb_record_equal(&a, &b));
}

/* A random valid record, biased to the edges of every range. */
static void random_record(struct test_rng *rng, struct wb_record *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->type = (enum wb_record_type) test_rng_range(rng, 1,
							 WB_RECORD_TYPE_MAX);
	rec->version = WB_RECORD_VERSION;
	rec->seq = (uint32_t) test_rng_edge(rng, 0, UINT32_MAX);
	rec->time = (uint32_t) test_rng_edge(rng, 0, UINT32_MAX);
	rec->time_quality = (enum wb_time_quality)
		test_rng_edge(rng, 0, WB_TIME_QUALITY_MAX);
	switch (rec->type) {
	case WB_RECORD_POSTURE:
		rec->u.posture.flexion_ddeg = (int16_t)
			test_rng_edge(rng, WB_ANGLE_MIN, WB_ANGLE_MAX);
		rec->u.posture.tilt_ddeg = (int16_t)
			test_rng_edge(rng, WB_TILT_MIN, WB_TILT_MAX);
		rec->u.posture.cls = (enum wb_posture_class)
			test_rng_edge(rng, 0, WB_POSTURE_CLASS_MAX);
		rec->u.posture.duration_s = (uint16_t)
			test_rng_edge(rng, WB_PERIOD_MIN_S, WB_PERIOD_MAX_S);
		break;
	case WB_RECORD_STEPS:
		rec->u.steps.duration_s = (uint16_t)
			test_rng_edge(rng, WB_PERIOD_MIN_S, WB_PERIOD_MAX_S);
		rec->u.steps.steps = (uint16_t) test_rng_edge(rng, 0,
			rec->u.steps.duration_s * WB_STEPS_MAX_PER_S);
		break;
	case WB_RECORD_PAIN:
		rec->u.pain.score = (uint8_t)
			test_rng_edge(rng, 0, WB_PAIN_SCORE_MAX);
		rec->u.pain.flags = (uint16_t)
			test_rng_edge(rng, 0, WB_PAIN_FLAGS_KNOWN);
		break;
	case WB_RECORD_STATUS:
		rec->u.status.battery_pct = (uint8_t)
			test_rng_edge(rng, 0, 100);
		rec->u.status.storage_pct = (uint8_t)
			test_rng_edge(rng, 0, 100);
		rec->u.status.flags = (uint8_t)
			test_rng_edge(rng, 0, WB_STATUS_FLAGS_KNOWN);
		rec->u.status.uptime_s = (uint32_t)
			test_rng_edge(rng, 0, UINT32_MAX);
		break;
	}
}

#define ROUND_TRIP_RECORDS 100000

static void test_record_round_trip(void **state)
{
	struct test_rng rng;
	unsigned int per_type[WB_RECORD_TYPE_MAX + 1] = { 0 };
	unsigned int flex_min = 0, flex_max = 0, steps_max = 0, score_max = 0;
	unsigned int seq_max = 0;

	(void) state;
	test_rng_seed(&rng, 1);
	for (unsigned int i = 0; i < ROUND_TRIP_RECORDS; i++) {
		struct wb_record rec, got;
		uint8_t buf[64], again[64];
		ssize_t n;
		size_t used = 0;

		random_record(&rng, &rec);
		per_type[rec.type]++;
		flex_min += rec.type == WB_RECORD_POSTURE &&
			    rec.u.posture.flexion_ddeg == WB_ANGLE_MIN;
		flex_max += rec.type == WB_RECORD_POSTURE &&
			    rec.u.posture.flexion_ddeg == WB_ANGLE_MAX;
		steps_max += rec.type == WB_RECORD_STEPS &&
			     rec.u.steps.steps ==
			     rec.u.steps.duration_s * WB_STEPS_MAX_PER_S;
		score_max += rec.type == WB_RECORD_PAIN &&
			     rec.u.pain.score == WB_PAIN_SCORE_MAX;
		seq_max += rec.seq == UINT32_MAX;

		assert_int_equal(wb_record_validate(&rec, NULL), 0);
		n = wb_record_encode(&rec, buf, sizeof(buf));
		assert_int_equal(n, wb_record_encoded_len(&rec));
		assert_int_equal(wb_record_decode(buf, (size_t) n, &got, &used,
						  NULL), 0);
		assert_int_equal(used, (size_t) n);
		if (!wb_record_equal(&got, &rec))
			assert_record(&got, &rec);	/* says which field */
		assert_int_equal(wb_record_encode(&got, again, sizeof(again)),
				 n);
		assert_memory_equal(again, buf, (size_t) n);
	}
	/* the generator reached every type and the edges */
	for (int t = 1; t <= WB_RECORD_TYPE_MAX; t++)
		assert_true(per_type[t] > ROUND_TRIP_RECORDS / 8);
	assert_true(flex_min > 0 && flex_max > 0 && steps_max > 0);
	assert_true(score_max > 0 && seq_max > 0);
}

/* Random bytes near valid records: decode succeeds and is canonical, or
 * fails with a documented error and outputs untouched. */
static void test_record_mutations(void **state)
{
	struct test_rng rng;
	unsigned int ok = 0, bad = 0;

	(void) state;
	test_rng_seed(&rng, 2);
	for (unsigned int i = 0; i < 50000; i++) {
		struct wb_record rec, got, pristine;
		struct wb_err err;
		uint8_t buf[64], again[64];
		size_t n, used;
		int rc;

		random_record(&rng, &rec);
		n = (size_t) wb_record_encode(&rec, buf, sizeof(buf));
		switch (test_rng_range(&rng, 0, 3)) {
		case 0:
			buf[test_rng_range(&rng, 0, (uint32_t) n - 1)] =
				(uint8_t) test_rng_next(&rng);
			break;
		case 1:
			buf[test_rng_range(&rng, 0, (uint32_t) n - 1)] ^=
				(uint8_t) (1u << test_rng_range(&rng, 0, 7));
			break;
		case 2:
			n = test_rng_range(&rng, 0, (uint32_t) n - 1);
			break;
		default:
			buf[n++] = (uint8_t) test_rng_next(&rng);
			break;
		}
		test_fill(&got, sizeof(got));
		test_fill(&pristine, sizeof(pristine));
		test_fill(&used, sizeof(used));
		rc = wb_record_decode(buf, n, &got, &used, &err);
		if (rc == 0) {
			ok++;
			assert_true(used <= n);
			assert_int_equal(wb_record_encode(&got, again,
							  sizeof(again)),
					 (ssize_t) used);
			assert_memory_equal(again, buf, used);
			continue;
		}
		bad++;
		assert_true(rc == -EMSGSIZE || rc == -EBADMSG ||
			    rc == -EOPNOTSUPP || rc == -EPROTONOSUPPORT ||
			    rc == -ERANGE);
		assert_memory_equal(&got, &pristine, sizeof(got));
		assert_true(test_is_pattern(&used, sizeof(used)));
		assert_non_null(err.field);
		assert_true(err.offset <= n);
		assert_int_equal(err.record, -1);
	}
	assert_true(ok > 1000 && bad > 1000);
}

static void test_batch_round_trip(void **state)
{
	struct test_rng rng;

	(void) state;
	test_rng_seed(&rng, 3);
	for (unsigned int i = 0; i < 5000; i++) {
		struct wb_record recs[WB_BATCH_MAX], got[WB_BATCH_MAX], rec;
		struct wb_batch_iter it;
		uint8_t buf[BUF_MAX], again[BUF_MAX];
		size_t n = test_rng_range(&rng, 1, WB_BATCH_MAX), want = 2;
		size_t mtu, k, prefix = 2;
		ssize_t len;

		for (size_t j = 0; j < n; j++) {
			random_record(&rng, &recs[j]);
			want += (size_t) wb_record_encoded_len(&recs[j]);
		}
		len = wb_batch_encode(recs, n, buf, sizeof(buf));
		assert_int_equal(len, (ssize_t) want);
		assert_int_equal(wb_batch_decode(buf, (size_t) len, got, n,
						 NULL), (int) n);
		for (size_t j = 0; j < n; j++)
			if (!wb_record_equal(&got[j], &recs[j]))
				assert_record(&got[j], &recs[j]);
		assert_int_equal(wb_batch_encode(got, n, again, sizeof(again)),
				 len);
		assert_memory_equal(again, buf, (size_t) len);

		/* all-or-nothing: one slot short is -ENOBUFS, untouched */
		test_fill(got, sizeof(got));
		assert_int_equal(wb_batch_decode(buf, (size_t) len, got, n - 1,
						 NULL), -ENOBUFS);
		assert_true(test_is_pattern(got, sizeof(got)));

		assert_int_equal(wb_batch_init(&it, buf, (size_t) len, NULL),
				 0);
		for (size_t j = 0; j < n; j++) {
			assert_int_equal(wb_batch_next(&it, &rec, NULL), 1);
			assert_true(wb_record_equal(&rec, &recs[j]));
		}
		assert_int_equal(wb_batch_next(&it, &rec, NULL), 0);

		/* wb_batch_fit: the longest prefix within mtu */
		mtu = test_rng_range(&rng, 0, (uint32_t) want + 20);
		k = wb_batch_fit(recs, n, mtu);
		assert_true(k <= n);
		for (size_t j = 0; j < k; j++)
			prefix += (size_t) wb_record_encoded_len(&recs[j]);
		if (k > 0)
			assert_true(prefix <= mtu);
		if (k < n)
			assert_true(prefix + (size_t)
				    wb_record_encoded_len(&recs[k]) > mtu);
	}
}

static void test_batch_32_records(void **state)
{
	struct wb_record recs[WB_BATCH_MAX + 1], got[WB_BATCH_MAX + 1];
	uint8_t buf[BUF_MAX];
	ssize_t len;

	(void) state;
	for (size_t i = 0; i < ARRAY_SIZE(recs); i++)
		make_record(&recs[i], WB_RECORD_PAIN, (uint32_t) i);
	len = wb_batch_encode(recs, WB_BATCH_MAX, buf, sizeof(buf));
	assert_int_equal(len, 2 + WB_BATCH_MAX * 15);
	assert_int_equal(buf[0], WB_BATCH_VERSION);
	assert_int_equal(buf[1], WB_BATCH_MAX);
	assert_int_equal(wb_batch_decode(buf, (size_t) len, got,
					 ARRAY_SIZE(got), NULL), WB_BATCH_MAX);
	for (size_t i = 0; i < WB_BATCH_MAX; i++)
		assert_record(&got[i], &recs[i]);
	/* n outside 1..WB_BATCH_MAX */
	assert_int_equal(wb_batch_encode(recs, WB_BATCH_MAX + 1, buf,
					 sizeof(buf)), -EINVAL);
	assert_int_equal(wb_batch_encode(recs, 0, buf, sizeof(buf)), -EINVAL);
	/* -ENOBUFS at every length below the needed one */
	check_enobufs(enc_batch, &(struct batch_in){ recs, WB_BATCH_MAX },
		      (size_t) len);
}

static void test_batch_decode_max(void **state)
{
	uint8_t buf[BUF_MAX];
	size_t n = test_hex("01 03 " POSTURE_EX " " STEPS_EX " " STATUS_EX, buf,
			    sizeof(buf));
	struct wb_record recs[3], pristine[3];
	struct wb_err err;

	(void) state;
	test_fill(recs, sizeof(recs));
	test_fill(pristine, sizeof(pristine));
	assert_int_equal(wb_batch_decode(buf, n, recs, 2, &err), -ENOBUFS);
	assert_memory_equal(recs, pristine, sizeof(recs));
	check_err(&err, 1, -1, "batch.count");
	assert_int_equal(wb_batch_decode(buf, n, NULL, 0, NULL), -ENOBUFS);
	/* a malformed batch reports its own error, not -ENOBUFS */
	buf[1] = 4;
	assert_int_equal(wb_batch_decode(buf, n, recs, 0, NULL), -EMSGSIZE);
	buf[1] = 3;
	assert_int_equal(wb_batch_decode(buf, n, recs, 3, NULL), 3);
}

static void test_features_fill(void **state)
{
	static const struct {
		uint32_t capacity, stored;
		unsigned int pct;
	} v[] = {
		{ 1000, 0, 0 }, { 1000, 5, 0 }, { 1000, 10, 1 },
		{ 1000, 999, 99 }, { 1000, 1000, 100 }, { 3, 1, 33 },
		{ 3, 2, 66 }, { UINT32_MAX, UINT32_MAX, 100 },
		{ UINT32_MAX, UINT32_MAX - 1, 99 },
		{ UINT32_MAX, UINT32_MAX / 2, 49 },
		{ 0, 0, 0 }, { 10, 11, 100 },
	};

	(void) state;
	for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
		struct wb_features f = { 1, 0, 60, 60, v[i].capacity,
					 v[i].stored, 0, 0 };

		assert_int_equal(wb_features_fill_pct(&f), v[i].pct);
	}
}

static void test_features_round_trip(void **state)
{
	struct test_rng rng;

	(void) state;
	test_rng_seed(&rng, 4);
	for (unsigned int i = 0; i < 20000; i++) {
		struct wb_features f, got;
		uint8_t buf[WB_FEATURES_LEN];

		f.protocol_version = WB_PROTOCOL_VERSION;
		f.flags = (uint8_t) test_rng_edge(&rng, 0,
						  WB_FEATURE_FLAGS_KNOWN);
		f.posture_period_s = (uint16_t) test_rng_edge(&rng, 1, 3600);
		f.steps_period_s = (uint16_t) test_rng_edge(&rng, 1, 3600);
		f.capacity = (uint32_t) test_rng_edge(&rng, 1, UINT32_MAX);
		f.stored = (uint32_t) test_rng_edge(&rng, 0, f.capacity);
		f.first_seq = (uint32_t) test_rng_edge(&rng, 0, UINT32_MAX);
		f.last_seq = (uint32_t) test_rng_edge(&rng, 0, UINT32_MAX);
		assert_int_equal(wb_features_encode(&f, buf, sizeof(buf)),
				 WB_FEATURES_LEN);
		assert_int_equal(wb_features_decode(buf, sizeof(buf), &got,
						    NULL), 0);
		assert_int_equal(got.protocol_version, f.protocol_version);
		assert_int_equal(got.flags, f.flags);
		assert_int_equal(got.posture_period_s, f.posture_period_s);
		assert_int_equal(got.steps_period_s, f.steps_period_s);
		assert_int_equal(got.capacity, f.capacity);
		assert_int_equal(got.stored, f.stored);
		assert_int_equal(got.first_seq, f.first_seq);
		assert_int_equal(got.last_seq, f.last_seq);
		assert_in_range(wb_features_fill_pct(&got), 0, 100);
	}
}

static void test_hcp_round_trip(void **state)
{
	static const uint32_t seqs[] = { 0, 1, 0x7fffffff, 0x80000000,
					 UINT32_MAX };
	unsigned int valid = 0;

	(void) state;
	/* every opcode and filter byte: valid ones round-trip, others fail */
	for (unsigned int op = 0; op <= 0xff; op++) {
		for (unsigned int fl = 0; fl <= 3; fl++) {
			for (size_t s = 0; s < ARRAY_SIZE(seqs); s++) {
				struct wb_hcp_request req = {
					(enum wb_hcp_opcode) op,
					(enum wb_hcp_filter) fl,
					fl == WB_HCP_ALL ? 0 : seqs[s] };
				struct wb_hcp_request got;
				uint8_t buf[8];
				ssize_t n;

				n = wb_hcp_request_encode(&req, buf,
							  sizeof(buf));
				if (n < 0) {
					assert_int_equal(n, -EINVAL);
					continue;
				}
				valid++;
				assert_int_equal(wb_hcp_request_decode(buf,
					(size_t) n, &got, NULL), 0);
				assert_int_equal(got.opcode, req.opcode);
				assert_int_equal(got.filter, req.filter);
				assert_int_equal(got.seq, req.seq);
			}
		}
	}
	/* six valid combinations (count and report with all or after,
	 * delete up to, abort all), each tried with five seqs */
	assert_int_equal(valid, 6 * ARRAY_SIZE(seqs));

	for (unsigned int rq = WB_HCP_REPORT_COUNT; rq <= WB_HCP_ABORT; rq++) {
		for (unsigned int c = 1; c <= WB_HCP_CODE_MAX; c++) {
			for (size_t s = 0; s < ARRAY_SIZE(seqs); s++) {
				struct wb_hcp_response rsp = {
					WB_HCP_RESPONSE_CODE,
					(enum wb_hcp_opcode) rq,
					(enum wb_hcp_code) c, seqs[s],
					seqs[ARRAY_SIZE(seqs) - 1 - s] };
				struct wb_hcp_response got;
				uint8_t buf[16];

				assert_int_equal(wb_hcp_response_encode(&rsp,
						 buf, sizeof(buf)), 11);
				assert_int_equal(wb_hcp_response_decode(buf, 11,
						 &got, NULL), 0);
				assert_int_equal(got.opcode, rsp.opcode);
				assert_int_equal(got.request, rsp.request);
				assert_int_equal(got.code, rsp.code);
				assert_int_equal(got.count, rsp.count);
				assert_int_equal(got.last_seq, rsp.last_seq);
			}
		}
	}
}

/* ---- 1.10 CTS and Unix time ---------------------------------------------- */

struct unix_vec {
	int64_t unix_s;
	uint16_t year;
	uint8_t month, day, hours, minutes, seconds, dow;
};

static const struct unix_vec unix_vecs[] = {
	{ 0, 1970, 1, 1, 0, 0, 0, 4 },
	{ 1700000000, 2023, 11, 14, 22, 13, 20, 2 },
	{ 946684800, 2000, 1, 1, 0, 0, 0, 6 },		/* WB_EPOCH_UNIX */
	{ 951782400, 2000, 2, 29, 0, 0, 0, 2 },
	{ 1709208000, 2024, 2, 29, 12, 0, 0, 4 },
	{ 2147483647, 2038, 1, 19, 3, 14, 7, 2 },
	{ 2147483648, 2038, 1, 19, 3, 14, 8, 2 },
	{ 4102444799, 2099, 12, 31, 23, 59, 59, 4 },
	{ 4107542400, 2100, 3, 1, 0, 0, 0, 1 },
	{ 253402300799, 9999, 12, 31, 23, 59, 59, 5 },
};

static void test_cts_unix_known(void **state)
{
	(void) state;
	assert_int_equal(WB_EPOCH_UNIX, unix_vecs[2].unix_s);
	for (size_t i = 0; i < ARRAY_SIZE(unix_vecs); i++) {
		const struct unix_vec *v = &unix_vecs[i];
		struct wb_current_time t;
		int64_t back = -1;

		assert_int_equal(wb_current_time_from_unix(v->unix_s, &t), 0);
		assert_int_equal(t.year, v->year);
		assert_int_equal(t.month, v->month);
		assert_int_equal(t.day, v->day);
		assert_int_equal(t.hours, v->hours);
		assert_int_equal(t.minutes, v->minutes);
		assert_int_equal(t.seconds, v->seconds);
		assert_int_equal(t.day_of_week, v->dow);
		assert_int_equal(t.fractions256, 0);
		assert_int_equal(t.adjust_reason, 0x02);	/* external */
		assert_int_equal(wb_current_time_to_unix(&t, &back), 0);
		assert_int_equal(back, v->unix_s);
	}
}

static void test_cts_unix_limits(void **state)
{
	static const int64_t bad[] = { -1, INT64_MIN, 253402300800,
				       INT64_MAX };
	struct wb_current_time t, pristine;
	struct wb_current_time before = { 1969, 12, 31, 23, 59, 59, 3, 0, 0 };
	struct wb_current_time gregorian = { 1582, 10, 15, 0, 0, 0, 5, 0, 0 };
	struct wb_current_time leap_bad = { 2023, 2, 29, 0, 0, 0, 0, 0, 0 };
	struct wb_current_time odd_fields = { 2024, 2, 29, 12, 0, 0, 1, 200,
					      0xff };
	int64_t s = 42;

	(void) state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		test_fill(&t, sizeof(t));
		test_fill(&pristine, sizeof(pristine));
		assert_int_equal(wb_current_time_from_unix(bad[i], &t),
				 -ERANGE);
		assert_memory_equal(&t, &pristine, sizeof(t));
	}
	assert_int_equal(wb_current_time_to_unix(&before, &s), 0);
	assert_int_equal(s, -1);
	assert_int_equal(wb_current_time_to_unix(&gregorian, &s), 0);
	assert_int_equal(s, INT64_C(-12219292800));
	s = 42;
	assert_int_equal(wb_current_time_to_unix(&leap_bad, &s), -ERANGE);
	assert_int_equal(s, 42);
	/* day of week, fractions and reason do not change the instant */
	assert_int_equal(wb_current_time_to_unix(&odd_fields, &s), 0);
	assert_int_equal(s, 1709208000);
}

/*
 * Every day from 1970-01-01 to 2100-12-31 against a plain calendar walk
 * (an oracle independent of the eras arithmetic), and a stride over the
 * whole range to 9999 for the round trip.
 */
static void test_cts_unix_round_trip(void **state)
{
	static const uint8_t mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30,
					   31, 30, 31 };
	unsigned int y = 1970, m = 1, d = 1, dow = 4;
	bool seen_2000 = false, seen_2038 = false, seen_2099 = false;

	(void) state;
	for (int64_t day = 0; y <= 2100; day++) {
		int64_t s = day * 86400 + (day * 3607) % 86400, back;
		struct wb_current_time t;
		uint8_t buf[WB_CURRENT_TIME_LEN];
		struct wb_current_time dec;
		bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

		assert_int_equal(wb_current_time_from_unix(s, &t), 0);
		assert_int_equal(t.year, y);
		assert_int_equal(t.month, m);
		assert_int_equal(t.day, d);
		assert_int_equal(t.day_of_week, dow);
		assert_int_equal(t.hours * 3600 + t.minutes * 60 + t.seconds,
				 s % 86400);
		assert_int_equal(wb_current_time_to_unix(&t, &back), 0);
		assert_int_equal(back, s);
		assert_int_equal(wb_current_time_encode(&t, buf, sizeof(buf)),
				 WB_CURRENT_TIME_LEN);
		assert_int_equal(wb_current_time_decode(buf, sizeof(buf), &dec,
							NULL), 0);
		assert_memory_equal(&dec, &t, sizeof(t));

		seen_2000 |= y == 2000 && m == 1 && d == 1;
		seen_2038 |= y == 2038 && m == 1 && d == 19;
		seen_2099 |= y == 2099 && m == 12 && d == 31;

		dow = dow % 7 + 1;
		if (++d > mdays[m - 1] + (unsigned int) (m == 2 && leap)) {
			d = 1;
			if (++m > 12) {
				m = 1;
				y++;
			}
		}
	}
	assert_true(seen_2000 && seen_2038 && seen_2099);

	for (int64_t s = 0; s <= INT64_C(253402300799); s += 999983) {
		struct wb_current_time t;
		int64_t back;

		assert_int_equal(wb_current_time_from_unix(s, &t), 0);
		assert_int_equal(wb_current_time_to_unix(&t, &back), 0);
		assert_int_equal(back, s);
	}
}

/* NULL buffers are empty byte strings; NULL outputs mean "only check". */
static void test_null_arguments(void **state)
{
	static const uint8_t pain[] = { 0x03, 0x01, 0x0c, 0, 0, 0, 0xc0, 0x56,
					0x34, 0x12, 0x01, 0x03, 0x07, 0x21,
					0x00 };
	static const uint8_t batch[] = { 0x01, 0x01, 0x03, 0x01, 0x0c, 0, 0, 0,
					 0xc0, 0x56, 0x34, 0x12, 0x01, 0x03,
					 0x07, 0x21, 0x00 };
	static const uint8_t feat[WB_FEATURES_LEN] = { 1, 0x1f, 60, 0, 10, 0,
						       0, 0, 1, 0 };
	static const uint8_t cts[] = { 0xe8, 0x07, 2, 29, 12, 0, 0, 4, 0, 2 };
	static const uint8_t req[] = { 0x04, 0x00 };
	static const uint8_t rsp[] = { 0x10, 5, 0, 0, 0 };
	struct wb_batch_iter it;
	struct wb_record a, b;
	struct wb_err err;
	char s[8];
	uint8_t out[32];

	(void) state;
	assert_int_equal(wb_record_decode(NULL, 15, NULL, NULL, &err),
			 -EMSGSIZE);
	check_err(&err, 0, -1, "header.type");
	assert_int_equal(wb_batch_init(&it, NULL, 2, NULL), -EMSGSIZE);
	assert_int_equal(wb_batch_decode(NULL, 2, &a, 1, NULL), -EMSGSIZE);
	assert_int_equal(wb_features_decode(NULL, 22, NULL, NULL), -EMSGSIZE);
	assert_int_equal(wb_hcp_request_decode(NULL, 2, NULL, NULL),
			 -EMSGSIZE);
	assert_int_equal(wb_hcp_response_decode(NULL, 5, NULL, NULL),
			 -EMSGSIZE);
	assert_int_equal(wb_current_time_decode(NULL, 10, NULL, NULL),
			 -EMSGSIZE);
	assert_int_equal(wb_battery_decode(NULL, 1, NULL, NULL), -EMSGSIZE);
	/* NULL with length 0 is the empty string, which fits */
	assert_int_equal(wb_devinfo_string_decode(NULL, 3, s, sizeof(s), NULL),
			 0);
	assert_string_equal(s, "");
	assert_int_equal(wb_devinfo_string_decode(pain, 1, NULL, 8, NULL),
			 -EMSGSIZE);

	assert_int_equal(wb_record_decode(pain, sizeof(pain), NULL, NULL,
					  NULL), 0);
	assert_int_equal(wb_batch_decode(batch, sizeof(batch), NULL, 1, NULL),
			 -ENOBUFS);
	assert_int_equal(wb_batch_init(&it, batch, sizeof(batch), NULL), 0);
	assert_int_equal(wb_batch_next(&it, NULL, NULL), 1);
	assert_int_equal(wb_batch_next(&it, NULL, NULL), 0);
	assert_int_equal(wb_features_decode(feat, sizeof(feat), NULL, NULL), 0);
	assert_int_equal(wb_hcp_request_decode(req, sizeof(req), NULL, NULL),
			 0);
	assert_int_equal(wb_hcp_response_decode(rsp, sizeof(rsp), NULL, NULL),
			 0);
	assert_int_equal(wb_current_time_decode(cts, sizeof(cts), NULL, NULL),
			 0);
	assert_int_equal(wb_battery_decode(rsp + 1, 1, NULL, NULL), 0);
	assert_int_equal(wb_current_time_from_unix(0, NULL), 0);

	assert_int_equal(wb_record_validate(NULL, &err), -EINVAL);
	assert_int_equal(wb_record_encoded_len(NULL), -EINVAL);
	assert_int_equal(wb_record_encode(NULL, out, sizeof(out)), -EINVAL);
	assert_int_equal(wb_batch_encode(NULL, 1, out, sizeof(out)), -EINVAL);
	assert_int_equal(wb_batch_fit(NULL, 3, WB_ATT_MAX_VALUE), 0);
	assert_int_equal(wb_features_encode(NULL, out, sizeof(out)), -EINVAL);
	assert_int_equal(wb_features_fill_pct(NULL), 0);
	assert_int_equal(wb_hcp_request_encode(NULL, out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(wb_hcp_response_encode(NULL, out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(wb_current_time_encode(NULL, out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(wb_current_time_to_unix(NULL, NULL), -EINVAL);

	/* records of an unknown type compare by header only */
	memset(&a, 0, sizeof(a));
	memset(&b, 0xff, sizeof(b));
	b.type = a.type = 9;
	b.version = a.version;
	b.seq = a.seq;
	b.time = a.time;
	b.time_quality = a.time_quality;
	assert_true(wb_record_equal(&a, &b));
}

/* ---- main ---------------------------------------------------------------- */

struct single_test {
	const char *name;
	CMUnitTestFunction fn;
};

static const struct single_test single_tests[] = {
	{ "helpers-test-hex", test_hex_helper },
	{ "1.3-null-arguments", test_null_arguments },
	{ "1.3-strerror-names", test_strerror },
	{ "1.3-enum-names", test_names },
	{ "1.3-record-equal-compares-active-member", test_record_equal },
	{ "1.3-round-trip-100000-records", test_record_round_trip },
	{ "1.3-mutated-records-decode-or-fail-cleanly", test_record_mutations },
	{ "1.3-round-trip-batches", test_batch_round_trip },
	{ "1.3-batch-32-records-and-enobufs", test_batch_32_records },
	{ "1.3-batch-decode-max-too-small", test_batch_decode_max },
	{ "1.8-features-fill-pct", test_features_fill },
	{ "1.8-round-trip-features", test_features_round_trip },
	{ "1.9-round-trip-hcp", test_hcp_round_trip },
	{ "1.10-cts-unix-known-vectors", test_cts_unix_known },
	{ "1.10-cts-unix-limits", test_cts_unix_limits },
	{ "1.10-cts-unix-round-trip-1970-2100-9999", test_cts_unix_round_trip },
};

#define ADD_VECS(tab, fn)						\
	do {								\
		for (size_t i_ = 0; i_ < ARRAY_SIZE(tab); i_++)		\
			tests[n++] = (struct CMUnitTest){		\
				.name = (tab)[i_].name,			\
				.test_func = (fn),			\
				.initial_state = (void *) &(tab)[i_],	\
			};						\
	} while (0)

#define N_TESTS (ARRAY_SIZE(rec_vecs) + ARRAY_SIZE(batch_vecs) +	\
		 ARRAY_SIZE(features_vecs) + ARRAY_SIZE(hcp_req_vecs) +	\
		 ARRAY_SIZE(hcp_rsp_vecs) + ARRAY_SIZE(cts_vecs) +	\
		 ARRAY_SIZE(battery_vecs) + ARRAY_SIZE(devinfo_vecs) +	\
		 ARRAY_SIZE(seq_vecs) + ARRAY_SIZE(rec_invalid_vecs) +	\
		 ARRAY_SIZE(enc_invalid_vecs) + ARRAY_SIZE(fit_vecs) +	\
		 ARRAY_SIZE(single_tests))

int main(void)
{
	static struct CMUnitTest tests[N_TESTS];
	size_t n = 0;

	ADD_VECS(rec_vecs, test_record_decode);
	ADD_VECS(batch_vecs, test_batch_decode);
	ADD_VECS(features_vecs, test_features_decode);
	ADD_VECS(hcp_req_vecs, test_hcp_request_decode);
	ADD_VECS(hcp_rsp_vecs, test_hcp_response_decode);
	ADD_VECS(cts_vecs, test_cts_decode);
	ADD_VECS(battery_vecs, test_battery_decode);
	ADD_VECS(devinfo_vecs, test_devinfo_decode);
	ADD_VECS(seq_vecs, test_seq);
	ADD_VECS(rec_invalid_vecs, test_record_invalid);
	ADD_VECS(enc_invalid_vecs, test_encode_invalid);
	ADD_VECS(fit_vecs, test_batch_fit);
	for (size_t i = 0; i < ARRAY_SIZE(single_tests); i++)
		tests[n++] = (struct CMUnitTest){
			.name = single_tests[i].name,
			.test_func = single_tests[i].fn,
		};
	if (n != N_TESTS)
		return 1;
	return cmocka_run_group_tests_name("proto/wearable", tests, NULL, NULL);
}
