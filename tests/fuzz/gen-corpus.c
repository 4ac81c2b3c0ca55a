// SPDX-License-Identifier: MIT
/*
 * Writes the seed corpora of the wearable fuzz targets:
 *
 *   gen-corpus DIR    creates DIR/wearable-{record,batch,hcp,misc}/<name>
 *
 * Valid seeds come from the encoders, so they follow the codec; malformed
 * ones are valid encodings with one thing broken. A test tool: stdio is
 * fine here, not in proto/.
 *
 *   cc -std=c11 -Iproto tests/fuzz/gen-corpus.c proto/wearable.c -o gen
 *   ./gen tests/fuzz/corpus
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wearable.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const char *root;
static const char *target;
static unsigned int written;

static void die(const char *what, const char *name)
{
	fprintf(stderr, "gen-corpus: %s %s/%s/%s: %s\n", what, root, target,
		name, strerror(errno));
	exit(1);
}

static void set_target(const char *name)
{
	char path[4096];

	target = name;
	snprintf(path, sizeof(path), "%s/%s", root, name);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die("mkdir", "");
}

static void put(const char *name, const uint8_t *buf, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
	f = fopen(path, "wb");
	if (!f)
		die("open", name);
	if ((len && fwrite(buf, 1, len, f) != len) || fclose(f) != 0)
		die("write", name);
	written++;
}

/* Encodes with any encoder; a failure here is a bug in this tool. */
static size_t must(ssize_t n, const char *name)
{
	if (n < 0) {
		fprintf(stderr, "gen-corpus: cannot encode %s: %zd\n", name, n);
		exit(1);
	}
	return (size_t) n;
}

static struct wb_record rec(enum wb_record_type type, uint32_t seq)
{
	struct wb_record r = {
		.type = type,
		.version = WB_RECORD_VERSION,
		.seq = seq,
		.time = 0x2d000000u + seq,
		.time_quality = WB_TIME_SYNCED,
	};

	switch (type) {
	case WB_RECORD_POSTURE:
		r.u.posture = (struct wb_posture){ 450, -35, WB_POSTURE_FLEXED,
						   60 };
		break;
	case WB_RECORD_STEPS:
		r.u.steps = (struct wb_steps){ 120, 60 };
		break;
	case WB_RECORD_PAIN:
		r.u.pain = (struct wb_pain){ 7, WB_PAIN_MEDICATION };
		break;
	case WB_RECORD_STATUS:
		r.u.status = (struct wb_status){ 85, 40, WB_STATUS_CHARGING,
						 86400 };
		break;
	}
	return r;
}

/* The valid records every target starts from, edges included. */
static size_t sample_records(struct wb_record *out)
{
	size_t n = 0;

	out[n++] = rec(WB_RECORD_POSTURE, 1);
	out[n] = rec(WB_RECORD_POSTURE, 2);
	out[n++].u.posture = (struct wb_posture){ WB_ANGLE_MIN, WB_TILT_MAX,
						  WB_POSTURE_LYING,
						  WB_PERIOD_MAX_S };
	out[n] = rec(WB_RECORD_POSTURE, 3);
	out[n++].u.posture = (struct wb_posture){ WB_ANGLE_MAX, WB_TILT_MIN,
						  WB_POSTURE_UNKNOWN,
						  WB_PERIOD_MIN_S };
	out[n++] = rec(WB_RECORD_STEPS, 4);
	out[n] = rec(WB_RECORD_STEPS, 5);
	out[n++].u.steps = (struct wb_steps){ 3600 * WB_STEPS_MAX_PER_S,
					      3600 };
	out[n++] = rec(WB_RECORD_PAIN, 6);
	out[n] = rec(WB_RECORD_PAIN, 7);
	out[n++].u.pain = (struct wb_pain){ WB_PAIN_SCORE_MAX,
					    WB_PAIN_FLAGS_KNOWN };
	out[n] = rec(WB_RECORD_PAIN, UINT32_MAX);
	out[n].time_quality = WB_TIME_UNSYNCED;
	out[n++].u.pain = (struct wb_pain){ 0, 0 };
	out[n++] = rec(WB_RECORD_STATUS, 8);
	out[n] = rec(WB_RECORD_STATUS, 0);
	out[n].time_quality = WB_TIME_HOLDOVER;
	out[n++].u.status = (struct wb_status){ 100, 100,
						WB_STATUS_FLAGS_KNOWN,
						UINT32_MAX };
	return n;
}

static void gen_record(void)
{
	static const char *const names[] = {
		"posture", "posture-min", "posture-max", "steps", "steps-max",
		"pain", "pain-max", "pain-unsynced-seq-max", "status",
		"status-max",
	};
	/* one broken byte each: offset, value, name */
	static const struct {
		size_t offset;
		uint8_t value;
		const char *name;
	} breaks[] = {
		{ 0, 0x00, "bad-type-0" },
		{ 0, 0x05, "bad-type-5" },
		{ 1, 0x02, "bad-version-2" },
		{ 10, 0x03, "bad-time-quality" },
		{ 11, 0x04, "bad-payload-len" },
		{ 12, 0x0b, "bad-score-11" },
		{ 13, 0x80, "bad-flag-reserved" },
	};
	struct wb_record recs[16];
	uint8_t buf[64];
	size_t n = sample_records(recs), len;

	set_target("wearable-record");
	for (size_t i = 0; i < n; i++) {
		len = must(wb_record_encode(&recs[i], buf, sizeof(buf)),
			   names[i]);
		put(names[i], buf, len);
	}
	/* a pain record broken one way at a time */
	for (size_t i = 0; i < ARRAY_SIZE(breaks); i++) {
		struct wb_record r = rec(WB_RECORD_PAIN, 9);

		len = must(wb_record_encode(&r, buf, sizeof(buf)), "pain");
		buf[breaks[i].offset] = breaks[i].value;
		put(breaks[i].name, buf, len);
	}
	{
		struct wb_record r = rec(WB_RECORD_POSTURE, 10);

		len = must(wb_record_encode(&r, buf, sizeof(buf)), "posture");
		put("truncated-header", buf, 7);
		put("truncated-payload", buf, len - 1);
		buf[len] = 0xee;
		put("trailing-byte", buf, len + 1);
		buf[16] = 0x05;
		put("bad-posture-class", buf, len);
		buf[16] = 0x01;
		buf[17] = 0x00;
		buf[18] = 0x00;
		put("bad-duration-0", buf, len);
	}
	{
		struct wb_record r = rec(WB_RECORD_STEPS, 11);

		len = must(wb_record_encode(&r, buf, sizeof(buf)), "steps");
		buf[12] = 0xff;
		buf[13] = 0xff;
		put("bad-steps-rate", buf, len);
	}
	{
		struct wb_record r = rec(WB_RECORD_STATUS, 12);

		len = must(wb_record_encode(&r, buf, sizeof(buf)), "status");
		buf[12] = 101;
		put("bad-battery-101", buf, len);
	}
	put("empty", buf, 0);
}

static void gen_batch(void)
{
	struct wb_record recs[WB_BATCH_MAX], s[16];
	uint8_t buf[1024];
	size_t ns = sample_records(s), len, one;

	set_target("wearable-batch");
	for (size_t i = 0; i < ns; i++) {
		char name[32];

		snprintf(name, sizeof(name), "one-%02zu", i);
		put(name, buf, must(wb_batch_encode(&s[i], 1, buf,
						    sizeof(buf)), name));
	}
	put("all-samples", buf, must(wb_batch_encode(s, ns, buf, sizeof(buf)),
				     "all"));
	for (size_t i = 0; i < WB_BATCH_MAX; i++)
		recs[i] = rec((enum wb_record_type) (i % 4 + 1),
			      UINT32_MAX - 15 + (uint32_t) i);	/* wraps */
	put("32-mixed-seq-wrap", buf,
	    must(wb_batch_encode(recs, WB_BATCH_MAX, buf, sizeof(buf)), "32"));
	for (size_t i = 0; i < WB_BATCH_MAX; i++)
		recs[i] = rec(WB_RECORD_PAIN, (uint32_t) i);
	len = must(wb_batch_encode(recs, WB_BATCH_MAX, buf, sizeof(buf)),
		   "32 pain");
	put("32-pain", buf, len);
	one = wb_batch_fit(recs, WB_BATCH_MAX, WB_ATT_MIN_PAYLOAD);
	put("fit-default-mtu", buf,
	    must(wb_batch_encode(recs, one, buf, sizeof(buf)), "fit"));

	len = must(wb_batch_encode(s, 3, buf, sizeof(buf)), "three");
	put("three", buf, len);
	buf[1] = 4;
	put("count-lies-long", buf, len);
	buf[1] = 2;
	put("count-lies-short", buf, len);
	buf[1] = 0;
	put("count-0", buf, len);
	buf[1] = WB_BATCH_MAX + 1;
	put("count-33", buf, len);
	buf[1] = 3;
	buf[0] = 2;
	put("version-2", buf, len);
	buf[0] = WB_BATCH_VERSION;
	put("truncated-last-record", buf, len - 1);
	buf[len] = 0;
	put("trailing-byte", buf, len + 1);
	buf[2] = 9;
	put("first-record-bad-type", buf, len);
	put("header-only", buf, 1);
	put("empty", buf, 0);
}

static void gen_hcp(void)
{
	static const struct {
		struct wb_hcp_request req;
		const char *name;
	} reqs[] = {
		{ { WB_HCP_REPORT_COUNT, WB_HCP_ALL, 0 }, "req-count-all" },
		{ { WB_HCP_REPORT_COUNT, WB_HCP_AFTER_SEQ, 100 },
		  "req-count-after" },
		{ { WB_HCP_REPORT_RECORDS, WB_HCP_ALL, 0 }, "req-report-all" },
		{ { WB_HCP_REPORT_RECORDS, WB_HCP_AFTER_SEQ, UINT32_MAX },
		  "req-report-after-max" },
		{ { WB_HCP_DELETE_RECORDS, WB_HCP_UP_TO_SEQ, 0x7fffffff },
		  "req-delete-up-to" },
		{ { WB_HCP_ABORT, WB_HCP_ALL, 0 }, "req-abort" },
	};
	static const struct {
		struct wb_hcp_response rsp;
		const char *name;
	} rsps[] = {
		{ { WB_HCP_COUNT_RESPONSE, 0, 0, 1234, 0 }, "rsp-count" },
		{ { WB_HCP_RESPONSE_CODE, WB_HCP_REPORT_RECORDS,
		    WB_HCP_SUCCESS, 10, 1009 }, "rsp-report-success" },
		{ { WB_HCP_RESPONSE_CODE, WB_HCP_DELETE_RECORDS,
		    WB_HCP_SUCCESS, 10, 1009 }, "rsp-delete-success" },
		{ { WB_HCP_RESPONSE_CODE, WB_HCP_REPORT_COUNT,
		    WB_HCP_NO_RECORDS, 0, 0 }, "rsp-no-records" },
		{ { WB_HCP_RESPONSE_CODE, WB_HCP_ABORT, WB_HCP_ABORT_FAILED, 0,
		    0 }, "rsp-abort-failed" },
		{ { WB_HCP_RESPONSE_CODE, WB_HCP_REPORT_RECORDS,
		    WB_HCP_STORAGE_ERROR, 3, UINT32_MAX },
		  "rsp-storage-error" },
	};
	static const struct {
		const char *name;
		uint8_t len;
		uint8_t bytes[12];
	} raw[] = {
		{ "req-opcode-5", 2, { 0x05, 0x00 } },
		{ "req-bad-filter", 2, { 0x01, 0x03 } },
		{ "req-delete-all", 2, { 0x03, 0x00 } },
		{ "req-abort-after", 6, { 0x04, 0x01, 1, 0, 0, 0 } },
		{ "req-operand-cut", 4, { 0x02, 0x01, 1, 0 } },
		{ "req-trailing", 3, { 0x04, 0x00, 0x00 } },
		{ "rsp-code-0", 11, { 0x11, 0x02, 0x00 } },
		{ "rsp-code-9", 11, { 0x11, 0x02, 0x09 } },
		{ "rsp-request-0x10", 11, { 0x11, 0x10, 0x01 } },
		{ "rsp-count-cut", 4, { 0x10, 1, 0, 0 } },
		{ "rsp-code-long", 12, { 0x11, 0x01, 0x01 } },
		{ "opcode-only", 1, { 0x01 } },
	};
	uint8_t buf[16];

	set_target("wearable-hcp");
	for (size_t i = 0; i < ARRAY_SIZE(reqs); i++)
		put(reqs[i].name, buf,
		    must(wb_hcp_request_encode(&reqs[i].req, buf, sizeof(buf)),
			 reqs[i].name));
	for (size_t i = 0; i < ARRAY_SIZE(rsps); i++)
		put(rsps[i].name, buf,
		    must(wb_hcp_response_encode(&rsps[i].rsp, buf,
						sizeof(buf)), rsps[i].name));
	for (size_t i = 0; i < ARRAY_SIZE(raw); i++)
		put(raw[i].name, raw[i].bytes, raw[i].len);
	put("empty", buf, 0);
}

static void gen_misc(void)
{
	static const struct wb_features feats[] = {
		{ 1, 0x1f, 60, 10, 65536, 1000, 10, 1009 },
		{ 1, 0x00, 1, 1, 1, 0, 0, 0 },
		{ 1, 0x1f, 3600, 3600, UINT32_MAX, UINT32_MAX, 1, 0 },
	};
	static const int64_t times[] = {
		0, 946684800, 951782400, 1700000000, 1709208000, 2147483647,
		4102444799, INT64_C(253402300799),
	};
	static const struct {
		const char *name;
		const char *s;
	} strings[] = {
		{ "devinfo-ascii", "Rehab Wear R1" },
		{ "devinfo-utf8-2", "Mod\xc3\xa9le" },
		{ "devinfo-utf8-3", "\xe2\x82\xac 1.0" },
		{ "devinfo-utf8-4", "\xf0\x9f\x98\x80" },
		{ "devinfo-max-code-point", "\xf4\x8f\xbf\xbf" },
		{ "devinfo-surrogate", "\xed\xa0\x80" },
		{ "devinfo-overlong", "\xc0\x80" },
		{ "devinfo-above-max", "\xf4\x90\x80\x80" },
		{ "devinfo-cut", "ab\xe2\x82" },
	};
	struct wb_current_time t;
	uint8_t buf[128];
	size_t len;

	set_target("wearable-misc");
	for (size_t i = 0; i < ARRAY_SIZE(feats); i++) {
		char name[32];

		snprintf(name, sizeof(name), "features-%zu", i);
		len = must(wb_features_encode(&feats[i], buf, sizeof(buf)),
			   name);
		put(name, buf, len);
	}
	len = must(wb_features_encode(&feats[0], buf, sizeof(buf)), "f");
	buf[0] = 2;
	put("features-version-2", buf, len);
	buf[0] = 1;
	buf[1] = 0x20;
	put("features-flag-reserved", buf, len);
	buf[1] = 0x1f;
	put("features-short", buf, len - 1);
	buf[len] = 0;
	put("features-long", buf, len + 1);
	memset(buf + 10, 0xff, 4);		/* stored > capacity */
	put("features-stored-over", buf, len);

	for (size_t i = 0; i < ARRAY_SIZE(times); i++) {
		char name[32];

		snprintf(name, sizeof(name), "cts-%lld",
			 (long long) times[i]);
		if (wb_current_time_from_unix(times[i], &t) < 0)
			must(-ERANGE, name);
		len = must(wb_current_time_encode(&t, buf, sizeof(buf)), name);
		put(name, buf, len);
	}
	wb_current_time_from_unix(1709208000, &t);	/* 2024-02-29 */
	len = must(wb_current_time_encode(&t, buf, sizeof(buf)), "cts");
	buf[0] = 0xe7;					/* 2023-02-29 */
	put("cts-2023-02-29", buf, len);
	buf[0] = 0xe8;
	buf[9] = 0x10;
	put("cts-adjust-reserved", buf, len);
	buf[9] = 0x02;
	put("cts-short", buf, len - 1);

	for (uint8_t pct = 0; pct <= 101; pct += 50) {
		char name[32];

		snprintf(name, sizeof(name), "battery-%u", pct);
		put(name, &pct, 1);
	}
	put("battery-101", (const uint8_t *) "\x65", 1);
	for (size_t i = 0; i < ARRAY_SIZE(strings); i++)
		put(strings[i].name, (const uint8_t *) strings[i].s,
		    strlen(strings[i].s));
	put("devinfo-nul-padded", (const uint8_t *) "R1\0\0", 4);
	put("devinfo-embedded-nul", (const uint8_t *) "R\0" "1", 3);
	put("empty", buf, 0);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS-DIR\n", argv[0]);
		return 2;
	}
	root = argv[1];
	if (mkdir(root, 0755) < 0 && errno != EEXIST) {
		perror(root);
		return 1;
	}
	gen_record();
	gen_batch();
	gen_hcp();
	gen_misc();
	printf("gen-corpus: %u seeds in %s\n", written, root);
	return 0;
}
