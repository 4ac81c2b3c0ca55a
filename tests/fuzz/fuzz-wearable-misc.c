// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the features characteristic, Current Time (with the
 * Unix conversions), Battery Level and Device Information strings. Every
 * input goes through all of them.
 *
 * Invariants (abort() on violation): each decoder succeeds or returns a
 * documented errno with its output untouched and struct wb_err filled; on
 * success encoders reproduce the input bytes and decoders the value; a
 * Current Time in the Unix range converts to Unix seconds and back to the
 * same calendar fields; a decoded device string is NUL-terminated, fits,
 * and decodes to itself again.
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

static void check_err(const struct wb_err *err, size_t size)
{
	check(err->field != NULL && err->offset <= size && err->record == -1);
}

static void check_features(const uint8_t *data, size_t size)
{
	struct wb_features f, back;
	struct wb_err err;
	uint8_t buf[WB_FEATURES_LEN];
	int rc;

	memset(&f, PATTERN, sizeof(f));
	memset(&err, PATTERN, sizeof(err));
	rc = wb_features_decode(data, size, &f, &err);
	if (rc < 0) {
		check(rc == -EMSGSIZE || rc == -EBADMSG ||
		      rc == -EPROTONOSUPPORT || rc == -ERANGE);
		check(is_pattern(&f, sizeof(f)));
		check_err(&err, size);
		return;
	}
	check(rc == 0 && is_pattern(&err, sizeof(err)));
	check(wb_features_encode(&f, buf, sizeof(buf)) == WB_FEATURES_LEN);
	check(size == WB_FEATURES_LEN && memcmp(buf, data, size) == 0);
	check(wb_features_encode(&f, buf, sizeof(buf) - 1) == -ENOBUFS);
	check(wb_features_decode(buf, sizeof(buf), &back, NULL) == 0);
	check(memcmp(&back, &f, sizeof(f)) == 0);
	check(wb_features_fill_pct(&f) <= 100);
}

static bool same_instant(const struct wb_current_time *a,
			 const struct wb_current_time *b)
{
	return a->year == b->year && a->month == b->month &&
	       a->day == b->day && a->hours == b->hours &&
	       a->minutes == b->minutes && a->seconds == b->seconds;
}

static void check_current_time(const uint8_t *data, size_t size)
{
	struct wb_current_time t, back;
	struct wb_err err;
	uint8_t buf[WB_CURRENT_TIME_LEN];
	int64_t s;
	int rc;

	memset(&t, PATTERN, sizeof(t));
	memset(&err, PATTERN, sizeof(err));
	rc = wb_current_time_decode(data, size, &t, &err);
	if (rc < 0) {
		check(rc == -EMSGSIZE || rc == -EBADMSG || rc == -ERANGE);
		check(is_pattern(&t, sizeof(t)));
		check_err(&err, size);
		return;
	}
	check(rc == 0 && is_pattern(&err, sizeof(err)));
	check(wb_current_time_encode(&t, buf, sizeof(buf)) ==
	      WB_CURRENT_TIME_LEN);
	check(size == WB_CURRENT_TIME_LEN && memcmp(buf, data, size) == 0);
	check(wb_current_time_encode(&t, buf, sizeof(buf) - 1) == -ENOBUFS);

	check(wb_current_time_to_unix(&t, &s) == 0);
	if (t.year < 1970) {
		check(s < 0 && wb_current_time_from_unix(s, &back) == -ERANGE);
		return;
	}
	check(wb_current_time_from_unix(s, &back) == 0);
	check(same_instant(&back, &t));
	check(back.day_of_week >= 1 && back.day_of_week <= 7);
}

static void check_unix(const uint8_t *data, size_t size)
{
	struct wb_current_time t;
	int64_t s = 0, back;
	uint8_t buf[WB_CURRENT_TIME_LEN];

	if (size < 8)
		return;
	for (int i = 0; i < 8; i++)
		s = (int64_t) ((uint64_t) s << 8 | data[i]);
	memset(&t, PATTERN, sizeof(t));
	if (wb_current_time_from_unix(s, &t) < 0) {
		check(s < 0 || s > INT64_C(253402300799));
		check(is_pattern(&t, sizeof(t)));
		return;
	}
	check(wb_current_time_to_unix(&t, &back) == 0 && back == s);
	check(wb_current_time_encode(&t, buf, sizeof(buf)) ==
	      WB_CURRENT_TIME_LEN);
}

static void check_battery(const uint8_t *data, size_t size)
{
	struct wb_err err;
	uint8_t pct = PATTERN;
	int rc;

	memset(&err, PATTERN, sizeof(err));
	rc = wb_battery_decode(data, size, &pct, &err);
	if (rc < 0) {
		check(rc == -EMSGSIZE || rc == -EBADMSG || rc == -ERANGE);
		check(pct == PATTERN);
		check_err(&err, size);
		return;
	}
	check(rc == 0 && size == 1 && pct == data[0] && pct <= 100);
	check(is_pattern(&err, sizeof(err)));
}

/*
 * An independent UTF-8 oracle: decode each sequence to its code point and
 * reject overlongs, surrogates and values above U+10FFFF by value rather
 * than by the lead/continuation byte ranges the codec uses.
 */
static bool oracle_utf8(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
		uint32_t cp;
		size_t len;

		if (p[i] == 0)
			return false;
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0)
			len = 2;
		else if ((p[i] & 0xf0) == 0xe0)
			len = 3;
		else if ((p[i] & 0xf8) == 0xf0)
			len = 4;
		else
			return false;	/* continuation byte or F8..FF */
		cp = p[i] & (0x7fu >> len);
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min_cp[len] || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static void check_devinfo(const uint8_t *data, size_t size, size_t bufsize)
{
	char buf[WB_DEVINFO_MAX + 1 + 16], again[sizeof(buf)];
	struct wb_err err;
	size_t len, text = size;
	int rc;

	/* trailing NULs are padding; the rest must be valid text */
	while (text > 0 && data[text - 1] == 0)
		text--;
	memset(buf, PATTERN, sizeof(buf));
	memset(&err, PATTERN, sizeof(err));
	rc = wb_devinfo_string_decode(data, size, buf, bufsize, &err);
	check((rc == -EBADMSG) == !oracle_utf8(data, text));
	if (rc < 0) {
		check(rc == -EMSGSIZE || rc == -EBADMSG);
		check(is_pattern(buf, sizeof(buf)));
		check(err.field != NULL && err.record == -1);
		check(err.offset <= size || rc == -EMSGSIZE);
		return;
	}
	check(rc == 0 && is_pattern(&err, sizeof(err)));
	len = strnlen(buf, bufsize);
	check(len < bufsize && len <= size && memcmp(buf, data, len) == 0);
	check(is_pattern(buf + len + 1, sizeof(buf) - len - 1));
	/* only NUL padding was dropped */
	for (size_t i = len; i < size; i++)
		check(data[i] == 0);
	/* valid text stays valid */
	check(wb_devinfo_string_decode((const uint8_t *) buf, len, again,
				       sizeof(again), NULL) == 0);
	check(strcmp(again, buf) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_features(data, size);
	check_current_time(data, size);
	check_unix(data, size);
	check_battery(data, size);
	check_devinfo(data, size, WB_DEVINFO_MAX + 1);
	if (size > 0)
		check_devinfo(data + 1, size - 1,
			      data[0] % (WB_DEVINFO_MAX + 1 + 16));
	return 0;
}
