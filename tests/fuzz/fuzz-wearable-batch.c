// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: wb_batch_init/next, wb_batch_decode, wb_batch_encode
 * and wb_batch_fit.
 *
 * Invariants (abort() on violation): the iterator and the all-or-nothing
 * decoder agree on every record and on the error; errors are documented,
 * sticky, leave outputs untouched and fill struct wb_err; a decoded batch
 * re-encodes to the same bytes and decodes to equal records; too small a
 * recs[] is -ENOBUFS with recs untouched; the batch fits in its own length
 * and, one byte less, one record fewer fits.
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

static bool same_err(const struct wb_err *a, const struct wb_err *b)
{
	return a->offset == b->offset && a->record == b->record &&
	       a->field == b->field;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wb_record recs[WB_BATCH_MAX], again[WB_BATCH_MAX];
	static uint8_t buf[WB_BATCH_HEADER_LEN + WB_BATCH_MAX * 32];
	struct wb_batch_iter it;
	struct wb_record rec;
	struct wb_err err, it_err, err2;
	int rc, it_rc;
	unsigned int i;
	ssize_t n;

	memset(recs, PATTERN, sizeof(recs));
	memset(&err, PATTERN, sizeof(err));
	rc = wb_batch_decode(data, size, recs, WB_BATCH_MAX, &err);
	if (rc < 0) {
		check(documented(rc));
		check(is_pattern(recs, sizeof(recs)));
		check(err.field != NULL && err.offset <= size);
		check(err.record >= -1 && err.record < WB_BATCH_MAX);
	} else {
		check(rc >= 1 && rc <= WB_BATCH_MAX);
		check(is_pattern(&err, sizeof(err)));
		check(is_pattern(&recs[rc], (WB_BATCH_MAX - (size_t) rc) *
					     sizeof(*recs)));
	}

	/* the iterator tells the same story */
	memset(&it, PATTERN, sizeof(it));
	it_rc = wb_batch_init(&it, data, size, &it_err);
	if (it_rc < 0) {
		check(it_rc == rc && same_err(&it_err, &err));
		check(is_pattern(&it, sizeof(it)));
		return 0;
	}
	for (i = 0; (it_rc = wb_batch_next(&it, &rec, &it_err)) == 1; i++) {
		check(i < WB_BATCH_MAX);
		if (rc > 0)
			check(wb_record_equal(&rec, &recs[i]));
	}
	if (rc < 0) {
		check(it_rc == rc && same_err(&it_err, &err));
		/* sticky, and rec untouched */
		memset(&rec, PATTERN, sizeof(rec));
		check(wb_batch_next(&it, &rec, &err2) == rc);
		check(same_err(&err2, &err) && is_pattern(&rec, sizeof(rec)));
		return 0;
	}
	check(it_rc == 0 && i == (unsigned int) rc);
	check(wb_batch_next(&it, &rec, NULL) == 0);

	/* round trip, to the byte */
	n = wb_batch_encode(recs, (size_t) rc, buf, sizeof(buf));
	check(n == (ssize_t) size && memcmp(buf, data, size) == 0);
	check(wb_batch_encode(recs, (size_t) rc, buf, size - 1) == -ENOBUFS);
	check(wb_batch_decode(buf, (size_t) n, again, WB_BATCH_MAX, NULL) ==
	      rc);
	for (i = 0; i < (unsigned int) rc; i++)
		check(wb_record_equal(&again[i], &recs[i]));

	/* all or nothing */
	memset(again, PATTERN, sizeof(again));
	check(wb_batch_decode(data, size, again, (size_t) rc - 1, NULL) ==
	      -ENOBUFS);
	check(is_pattern(again, sizeof(again)));

	check(wb_batch_fit(recs, (size_t) rc, size) == (size_t) rc);
	check(wb_batch_fit(recs, (size_t) rc, size - 1) == (size_t) rc - 1);
	return 0;
}
