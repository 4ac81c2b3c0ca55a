/* SPDX-License-Identifier: MIT */
/*
 * rehablink wearable GATT profile: UUIDs, record formats and codecs.
 *
 * Plain C11: no allocation, no I/O, no logging, no GLib. Every decoder
 * takes any byte string and returns 0 with its outputs filled, or a
 * negative errno with its outputs untouched (only the optional
 * struct wb_err is written, to say what was wrong and where).
 * Encoders return the number of bytes written, or a negative errno when
 * the input is invalid (-ERANGE, -EINVAL) or the buffer too small
 * (-ENOBUFS); the buffer may be partly written on error.
 *
 * The byte-level specification is docs/protocol.md, part 1; the section
 * numbers in comments below refer to it. All integers are little endian.
 */
#ifndef REHABLINK_PROTO_WEARABLE_H
#define REHABLINK_PROTO_WEARABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- 1.1 Profile: UUIDs ------------------------------------------------ */

/* Custom service and characteristics: base a7c1xxxx-5e2b-4c8f-9d3a-1b6e0f2c4d58 */
#define WB_UUID_SERVICE          "a7c10000-5e2b-4c8f-9d3a-1b6e0f2c4d58"
#define WB_UUID_POSTURE          "a7c10001-5e2b-4c8f-9d3a-1b6e0f2c4d58" /* notify */
#define WB_UUID_STEPS            "a7c10002-5e2b-4c8f-9d3a-1b6e0f2c4d58" /* notify */
#define WB_UUID_PAIN             "a7c10003-5e2b-4c8f-9d3a-1b6e0f2c4d58" /* indicate */
#define WB_UUID_HISTORY_CP       "a7c10004-5e2b-4c8f-9d3a-1b6e0f2c4d58" /* write, indicate */
#define WB_UUID_HISTORY_DATA     "a7c10005-5e2b-4c8f-9d3a-1b6e0f2c4d58" /* notify */
#define WB_UUID_FEATURES         "a7c10006-5e2b-4c8f-9d3a-1b6e0f2c4d58" /* read, notify */
#define WB_UUID_STATUS           "a7c10007-5e2b-4c8f-9d3a-1b6e0f2c4d58" /* read, notify */

/* Standard services and characteristics (Bluetooth SIG assigned numbers) */
#define WB_UUID_BATTERY_SERVICE  "0000180f-0000-1000-8000-00805f9b34fb"
#define WB_UUID_BATTERY_LEVEL    "00002a19-0000-1000-8000-00805f9b34fb"
#define WB_UUID_DEVINFO_SERVICE  "0000180a-0000-1000-8000-00805f9b34fb"
#define WB_UUID_MANUFACTURER     "00002a29-0000-1000-8000-00805f9b34fb"
#define WB_UUID_MODEL_NUMBER     "00002a24-0000-1000-8000-00805f9b34fb"
#define WB_UUID_SERIAL_NUMBER    "00002a25-0000-1000-8000-00805f9b34fb"
#define WB_UUID_HARDWARE_REV     "00002a27-0000-1000-8000-00805f9b34fb"
#define WB_UUID_FIRMWARE_REV     "00002a26-0000-1000-8000-00805f9b34fb"
#define WB_UUID_SOFTWARE_REV     "00002a28-0000-1000-8000-00805f9b34fb"
#define WB_UUID_CTS_SERVICE      "00001805-0000-1000-8000-00805f9b34fb"
#define WB_UUID_CURRENT_TIME     "00002a2b-0000-1000-8000-00805f9b34fb"

/* Protocol version carried in the features characteristic (1.8). */
#define WB_PROTOCOL_VERSION      1

/* ATT limits: an attribute value is at most 512 bytes (Core 5.3 Vol 3
 * Part F 3.2.9); with the default MTU of 23 a notification carries 20. */
#define WB_ATT_MAX_VALUE         512
#define WB_ATT_MIN_PAYLOAD       20

/* ---- 1.2 Time ------------------------------------------------------------ */

/* Record timestamps are u32 seconds. Their meaning depends on the quality:
 * SYNCED and HOLDOVER count UTC seconds since 2000-01-01T00:00:00Z
 * (WB_EPOCH_UNIX); UNSYNCED counts seconds since the wearable powered up
 * and is comparable only within one power-up. */
enum wb_time_quality {
	WB_TIME_UNSYNCED = 0,	/* never set since power-up: relative time */
	WB_TIME_SYNCED = 1,	/* set by the gateway within the last 24 h */
	WB_TIME_HOLDOVER = 2,	/* set, but more than 24 h ago: may drift */
};
#define WB_TIME_QUALITY_MAX      WB_TIME_HOLDOVER
#define WB_EPOCH_UNIX            INT64_C(946684800)

/* ---- 1.3 Records ---------------------------------------------------------- */

enum wb_record_type {
	WB_RECORD_POSTURE = 1,
	WB_RECORD_STEPS = 2,
	WB_RECORD_PAIN = 3,
	WB_RECORD_STATUS = 4,
};
#define WB_RECORD_TYPE_MAX       WB_RECORD_STATUS
#define WB_RECORD_VERSION        1

/* Header: type u8, version u8, seq u32, time u32, time quality u8,
 * payload length u8; then the payload. */
#define WB_RECORD_HEADER_LEN     12

enum wb_posture_class {
	WB_POSTURE_UNKNOWN = 0,
	WB_POSTURE_UPRIGHT = 1,
	WB_POSTURE_FLEXED = 2,
	WB_POSTURE_RECLINED = 3,	/* reclined or propped up */
	WB_POSTURE_LYING = 4,
};
#define WB_POSTURE_CLASS_MAX     WB_POSTURE_LYING

/* 1.4 Posture: the trunk over one sampling period. */
#define WB_POSTURE_PAYLOAD_LEN   7
#define WB_ANGLE_MIN             (-1800)	/* decidegrees */
#define WB_ANGLE_MAX             1800
#define WB_TILT_MIN              (-900)
#define WB_TILT_MAX              900
#define WB_PERIOD_MIN_S          1
#define WB_PERIOD_MAX_S          3600
struct wb_posture {
	int16_t flexion_ddeg;	/* trunk flexion from vertical, 0.1 deg, +forward */
	int16_t tilt_ddeg;	/* lateral tilt, 0.1 deg, +right */
	enum wb_posture_class cls;
	uint16_t duration_s;	/* period this sample covers, 1..3600 */
};

/* 1.5 Steps: steps counted over one period. */
#define WB_STEPS_PAYLOAD_LEN     4
#define WB_STEPS_MAX_PER_S       5	/* 300 steps/min: more is a sensor fault */
struct wb_steps {
	uint16_t steps;
	uint16_t duration_s;	/* 1..3600 */
};

/* 1.6 Pain report: entered by the patient on the wearable. */
#define WB_PAIN_PAYLOAD_LEN      3
#define WB_PAIN_SCORE_MAX        10
enum wb_pain_flag {
	WB_PAIN_BREATHLESS = 1u << 0,	/* red flag */
	WB_PAIN_CHEST = 1u << 1,	/* red flag */
	WB_PAIN_CALF = 1u << 2,		/* red flag: calf pain or swelling */
	WB_PAIN_FEVER = 1u << 3,	/* red flag */
	WB_PAIN_BLEEDING = 1u << 4,	/* red flag: bleeding or wound discharge */
	WB_PAIN_MEDICATION = 1u << 5,	/* pain medication taken in the last 4 h */
	WB_PAIN_ONE_SIDED = 1u << 6,	/* pain on one side only */
};
#define WB_PAIN_RED_FLAGS        0x001fu
#define WB_PAIN_FLAGS_KNOWN      0x007fu
struct wb_pain {
	uint8_t score;		/* 0..10 numeric rating scale */
	uint16_t flags;		/* enum wb_pain_flag; other bits must be 0 */
};

/* 1.7 Device status record. */
#define WB_STATUS_PAYLOAD_LEN    7
enum wb_status_flag {
	WB_STATUS_CHARGING = 1u << 0,
	WB_STATUS_SENSOR_FAULT = 1u << 1,
	WB_STATUS_STORAGE_FULL = 1u << 2,	/* oldest records overwritten */
	WB_STATUS_CLOCK_LOST = 1u << 3,		/* time reset by a power loss */
};
#define WB_STATUS_FLAGS_KNOWN    0x0fu
struct wb_status {
	uint8_t battery_pct;	/* 0..100 */
	uint8_t storage_pct;	/* 0..100 */
	uint8_t flags;		/* enum wb_status_flag; other bits must be 0 */
	uint32_t uptime_s;	/* since power-up */
};

struct wb_record {
	enum wb_record_type type;
	uint8_t version;
	uint32_t seq;		/* per wearable, survives reboots, wraps at 2^32 */
	uint32_t time;		/* see enum wb_time_quality */
	enum wb_time_quality time_quality;
	union {
		struct wb_posture posture;
		struct wb_steps steps;
		struct wb_pain pain;
		struct wb_status status;
	} u;
};

/* Where and what, for a decoder's error. Optional everywhere (may be NULL). */
struct wb_err {
	size_t offset;		/* byte offset of the offending field */
	int record;		/* index of the record in its batch, -1 if none */
	const char *field;	/* static string naming the field */
};

/* Decodes one record at buf. On success, *ret_used is the number of bytes
 * consumed (header + payload). Errors: -EMSGSIZE (shorter than the header
 * or the length it declares), -EOPNOTSUPP (unknown type),
 * -EPROTONOSUPPORT (unknown version), -EBADMSG (payload length wrong for
 * the type, reserved bits set, bad time quality), -ERANGE (a value out of
 * its range). */
int wb_record_decode(const uint8_t *buf, size_t len, struct wb_record *ret_rec,
		     size_t *ret_used, struct wb_err *ret_err);
ssize_t wb_record_encode(const struct wb_record *rec, uint8_t *buf, size_t len);
/* The encoded length of rec, or a negative errno if it is invalid. */
ssize_t wb_record_encoded_len(const struct wb_record *rec);
/* 0 if rec is valid to send, else -ERANGE/-EINVAL with ret_err filled. */
int wb_record_validate(const struct wb_record *rec, struct wb_err *ret_err);
bool wb_record_equal(const struct wb_record *a, const struct wb_record *b);

/* ---- 1.3 Batches: one notification or indication value ---------------------
 * batch version u8 (1), record count u8 (1..WB_BATCH_MAX), then records. */
#define WB_BATCH_VERSION         1
#define WB_BATCH_HEADER_LEN      2
#define WB_BATCH_MAX             32

struct wb_batch_iter {
	const uint8_t *buf;
	size_t len;
	size_t pos;
	unsigned int count;	/* records declared in the header */
	unsigned int index;	/* records returned so far */
};

/* Checks the batch header. -EMSGSIZE (shorter than the header),
 * -EPROTONOSUPPORT (batch version), -EBADMSG (count 0 or above
 * WB_BATCH_MAX). On error *ret_it is untouched. */
int wb_batch_init(struct wb_batch_iter *ret_it, const uint8_t *buf, size_t len,
		  struct wb_err *ret_err);
/* Returns 1 with the next record in *ret_rec, 0 at the end of a well-formed
 * batch, or a negative errno: the record errors of wb_record_decode, and
 * -EMSGSIZE when the bytes end before the declared count, -EBADMSG when
 * bytes remain after it. Records already returned stay valid. After an
 * error the iterator keeps returning that error. */
int wb_batch_next(struct wb_batch_iter *it, struct wb_record *ret_rec,
		  struct wb_err *ret_err);
/* Decodes a whole batch into recs[max] all-or-nothing: returns the number
 * of records, or a negative errno with recs untouched. */
int wb_batch_decode(const uint8_t *buf, size_t len, struct wb_record *recs,
		    size_t max, struct wb_err *ret_err);
/* Encodes n records (1..WB_BATCH_MAX); -EINVAL for a bad n, -ENOBUFS. */
ssize_t wb_batch_encode(const struct wb_record *recs, size_t n, uint8_t *buf,
			size_t len);
/* How many of recs[0..n) fit, in order, in one value of at most mtu_payload
 * bytes (a packing helper for the wearable side); 0 if not even one. */
size_t wb_batch_fit(const struct wb_record *recs, size_t n, size_t mtu_payload);

/* ---- 1.8 Features characteristic (read) ------------------------------------ */
#define WB_FEATURES_LEN          22
enum wb_feature_flag {
	WB_FEATURE_HISTORY = 1u << 0,		/* history control point present */
	WB_FEATURE_TIME_SET = 1u << 1,		/* accepts Current Time writes */
	WB_FEATURE_PAIN_ENTRY = 1u << 2,	/* patient can enter pain reports */
	WB_FEATURE_STEPS = 1u << 3,
	WB_FEATURE_POSTURE = 1u << 4,
};
#define WB_FEATURE_FLAGS_KNOWN   0x1fu
struct wb_features {
	uint8_t protocol_version;	/* WB_PROTOCOL_VERSION */
	uint8_t flags;			/* enum wb_feature_flag */
	uint16_t posture_period_s;	/* 1..3600 */
	uint16_t steps_period_s;	/* 1..3600 */
	uint32_t capacity;		/* records the flash holds, > 0 */
	uint32_t stored;		/* records held now, <= capacity */
	uint32_t first_seq;		/* oldest held (meaningless if stored == 0) */
	uint32_t last_seq;		/* newest written (0 before the first) */
};
int wb_features_decode(const uint8_t *buf, size_t len, struct wb_features *ret_f,
		       struct wb_err *ret_err);
ssize_t wb_features_encode(const struct wb_features *f, uint8_t *buf, size_t len);
/* Storage fill in percent, 0..100. */
unsigned int wb_features_fill_pct(const struct wb_features *f);

/* ---- 1.9 History control point -------------------------------------------- */
enum wb_hcp_opcode {
	WB_HCP_REPORT_COUNT = 0x01,	/* request */
	WB_HCP_REPORT_RECORDS = 0x02,	/* request: records arrive on HISTORY_DATA */
	WB_HCP_DELETE_RECORDS = 0x03,	/* request */
	WB_HCP_ABORT = 0x04,		/* request */
	WB_HCP_COUNT_RESPONSE = 0x10,	/* response */
	WB_HCP_RESPONSE_CODE = 0x11,	/* response */
};
enum wb_hcp_filter {
	WB_HCP_ALL = 0x00,		/* no operand */
	WB_HCP_AFTER_SEQ = 0x01,	/* operand u32 N: records with seq after N */
	WB_HCP_UP_TO_SEQ = 0x02,	/* operand u32 N: records with seq up to N */
};
enum wb_hcp_code {
	WB_HCP_SUCCESS = 0x01,
	WB_HCP_OPCODE_NOT_SUPPORTED = 0x02,
	WB_HCP_INVALID_FILTER = 0x03,
	WB_HCP_NO_RECORDS = 0x04,
	WB_HCP_BUSY = 0x05,		/* another procedure is running */
	WB_HCP_ABORTED = 0x06,		/* a report was stopped by ABORT */
	WB_HCP_ABORT_FAILED = 0x07,	/* nothing to abort */
	WB_HCP_STORAGE_ERROR = 0x08,	/* flash read or erase failed */
};
#define WB_HCP_CODE_MAX          WB_HCP_STORAGE_ERROR

struct wb_hcp_request {
	enum wb_hcp_opcode opcode;	/* REPORT_COUNT .. ABORT */
	enum wb_hcp_filter filter;
	uint32_t seq;			/* operand; 0 when the filter has none */
};
/* Valid combinations: COUNT and REPORT with ALL or AFTER_SEQ; DELETE with
 * UP_TO_SEQ; ABORT with ALL. Request decode errors: -EMSGSIZE, -EBADMSG
 * (bad length for the filter), -EOPNOTSUPP (unknown or response opcode),
 * -EINVAL (filter not valid for the opcode). */
int wb_hcp_request_decode(const uint8_t *buf, size_t len,
			  struct wb_hcp_request *ret_req, struct wb_err *ret_err);
ssize_t wb_hcp_request_encode(const struct wb_hcp_request *req, uint8_t *buf,
			      size_t len);

struct wb_hcp_response {
	enum wb_hcp_opcode opcode;	/* COUNT_RESPONSE or RESPONSE_CODE */
	enum wb_hcp_opcode request;	/* RESPONSE_CODE: the request answered */
	enum wb_hcp_code code;		/* RESPONSE_CODE */
	uint32_t count;			/* COUNT_RESPONSE: records matching;
					 * RESPONSE_CODE: records sent or deleted */
	uint32_t last_seq;		/* RESPONSE_CODE: last seq sent or deleted */
};
/* COUNT_RESPONSE is 5 bytes (opcode, u32 count); RESPONSE_CODE 11 bytes
 * (opcode, request opcode, code, u32 count, u32 last seq). Errors as for
 * requests, plus -ERANGE for an unknown code. */
int wb_hcp_response_decode(const uint8_t *buf, size_t len,
			   struct wb_hcp_response *ret_rsp, struct wb_err *ret_err);
ssize_t wb_hcp_response_encode(const struct wb_hcp_response *rsp, uint8_t *buf,
			       size_t len);

/* ---- 1.10 Standard characteristics ----------------------------------------- */

/* Battery Level 0x2A19: one byte, 0..100 (-EMSGSIZE, -EBADMSG long, -ERANGE). */
int wb_battery_decode(const uint8_t *buf, size_t len, uint8_t *ret_pct,
		      struct wb_err *ret_err);

/* Current Time 0x2A2B (CTS 1.1, 3.1): Exact Time 256 + Adjust Reason. */
#define WB_CURRENT_TIME_LEN      10
struct wb_current_time {
	uint16_t year;		/* 1582..9999 (0 = unknown is rejected) */
	uint8_t month;		/* 1..12 */
	uint8_t day;		/* 1..days in month */
	uint8_t hours;		/* 0..23 */
	uint8_t minutes;	/* 0..59 */
	uint8_t seconds;	/* 0..59 */
	uint8_t day_of_week;	/* 0 unknown, 1 Monday .. 7 Sunday */
	uint8_t fractions256;	/* 1/256 s */
	uint8_t adjust_reason;	/* bit0 manual, bit1 external reference,
				 * bit2 time zone change, bit3 DST change */
};
int wb_current_time_decode(const uint8_t *buf, size_t len,
			   struct wb_current_time *ret_t, struct wb_err *ret_err);
ssize_t wb_current_time_encode(const struct wb_current_time *t, uint8_t *buf,
			       size_t len);
/* Converts between Unix seconds (UTC) and the CTS fields. from_unix fills
 * day_of_week, sets fractions256 = 0 and adjust_reason = external reference;
 * -ERANGE outside 1970..9999. */
int wb_current_time_from_unix(int64_t unix_s, struct wb_current_time *ret_t);
int wb_current_time_to_unix(const struct wb_current_time *t, int64_t *ret_unix);

/* Device Information strings (UTF-8, not NUL-terminated on the wire):
 * copies into buf[size] with a NUL; -EMSGSIZE if it does not fit,
 * -EBADMSG for an embedded NUL or invalid UTF-8. */
#define WB_DEVINFO_MAX           64
int wb_devinfo_string_decode(const uint8_t *val, size_t len, char *buf,
			     size_t size, struct wb_err *ret_err);

/* ---- Sequence numbers: serial number arithmetic (RFC 1982, 32 bits) -------- */
/* true if a comes after b (a - b in 1..2^31-1 modulo 2^32) */
static inline bool wb_seq_after(uint32_t a, uint32_t b)
{
	return a != b && (uint32_t) (a - b) < UINT32_C(0x80000000);
}
/* records from b (exclusive) to a (inclusive), when a is after b */
static inline uint32_t wb_seq_distance(uint32_t a, uint32_t b)
{
	return (uint32_t) (a - b);
}

/* A short English name for a decoder's errno ("truncated", ...). */
const char *wb_strerror(int err);
const char *wb_record_type_name(enum wb_record_type t);
const char *wb_posture_class_name(enum wb_posture_class c);
const char *wb_time_quality_name(enum wb_time_quality q);
const char *wb_hcp_code_name(enum wb_hcp_code c);

#endif
