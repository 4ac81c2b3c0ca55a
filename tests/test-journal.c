/* SPDX-License-Identifier: MIT */
/* gateway/journal.c: the durable record journal that stands in for the
 * SQLite store on the BLE path. Real files in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "journal.h"

static struct wb_record rec(uint32_t seq, int score)
{
	struct wb_record r = {
		.type = WB_RECORD_PAIN, .version = WB_RECORD_VERSION, .seq = seq,
		.time = 1000 + seq, .time_quality = WB_TIME_SYNCED,
	};
	r.u.pain.score = (uint8_t) score;
	return r;
}

static int setup(void **state)
{
	*state = g_dir_make_tmp("rehablink-journal-XXXXXX", NULL);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	g_autofree char *dir = *state;
	g_autofree char *path = g_strdup_printf("%s/w1.journal", dir);

	g_unlink(path);
	g_rmdir(dir);
	return 0;
}

static void test_durable_after_sync_only(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GwJournal) j = gw_journal_open(*state, "w1", &error);
	struct wb_record r[3] = { rec(10, 1), rec(11, 2), rec(12, 3) };
	uint32_t seq = 0;

	assert_non_null(j);
	assert_false(gw_journal_durable_seq(j, &seq));
	assert_int_equal(gw_journal_append(j, r, 3, &error), 3);
	/* queued is not durable: nothing may be deleted on the wearable yet */
	assert_false(gw_journal_durable_seq(j, &seq));
	assert_true(gw_journal_sync(j, &error));
	assert_true(gw_journal_durable_seq(j, &seq));
	assert_int_equal(seq, 12);
	assert_int_equal(gw_journal_count(j), 3);
}

static void test_duplicates_dropped(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GwJournal) j = gw_journal_open(*state, "w1", &error);
	struct wb_record a[2] = { rec(5, 1), rec(6, 2) };
	struct wb_record b[3] = { rec(6, 2), rec(7, 3), rec(5, 1) };

	assert_int_equal(gw_journal_append(j, a, 2, &error), 2);
	assert_true(gw_journal_sync(j, &error));
	assert_int_equal(gw_journal_append(j, b, 3, &error), 1);
	assert_int_equal(gw_journal_duplicates(j), 2);
	assert_true(gw_journal_sync(j, &error));
	assert_int_equal(gw_journal_count(j), 3);
}

static void count_cb(const struct wb_record *r, void *user_data)
{
	GArray *seqs = user_data;
	g_array_append_val(seqs, r->seq);
}

static void test_reopen_keeps_records_and_cuts_torn_tail(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = g_strdup_printf("%s/w1.journal", (char *) *state);
	struct wb_record r[2] = { rec(0xfffffffe, 4), rec(0xffffffff, 5) };
	struct wb_record wrapped = rec(0, 6);
	uint32_t seq = 0;

	GwJournal *j = gw_journal_open(*state, "w1", &error);
	assert_int_equal(gw_journal_append(j, r, 2, &error), 2);
	assert_int_equal(gw_journal_append(j, &wrapped, 1, &error), 1);
	assert_true(gw_journal_sync(j, &error));
	/* across the wrap, 0 is after 0xffffffff */
	assert_true(gw_journal_durable_seq(j, &seq));
	assert_int_equal(seq, 0);
	gw_journal_free(j);

	/* a power cut in the middle of an append: half an entry at the end */
	FILE *f = fopen(path, "ab");
	assert_non_null(f);
	fwrite("\x0f\x00\x03\x01", 1, 4, f);
	fclose(f);

	j = gw_journal_open(*state, "w1", &error);
	assert_non_null(j);
	assert_int_equal(gw_journal_count(j), 3);
	assert_true(gw_journal_has(j, 0xffffffff));
	assert_true(gw_journal_durable_seq(j, &seq));
	assert_int_equal(seq, 0);
	g_autoptr(GArray) seqs = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	assert_true(gw_journal_foreach(j, count_cb, seqs, &error));
	assert_int_equal(seqs->len, 3);
	assert_int_equal(g_array_index(seqs, uint32_t, 2), 0);
	/* appends after the cut continue a whole file */
	struct wb_record next = rec(1, 7);
	assert_int_equal(gw_journal_append(j, &next, 1, &error), 1);
	assert_true(gw_journal_sync(j, &error));
	gw_journal_free(j);
	j = gw_journal_open(*state, "w1", &error);
	assert_int_equal(gw_journal_count(j), 4);
	gw_journal_free(j);
}

static void test_invalid_record_refused(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GwJournal) j = gw_journal_open(*state, "w1", &error);
	struct wb_record bad = rec(3, 11);	/* score out of range */

	assert_int_equal(gw_journal_append(j, &bad, 1, &error), -1);
	assert_non_null(error);
	assert_non_null(strstr(error->message, "seq 3"));
	assert_false(gw_journal_has(j, 3));
}

/* the cursor (the link's no-gap durable seq) survives a restart, is not
 * the highest seq held, and a garbled cursor file is ignored */
static void test_cursor(void **state)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = g_strdup_printf("%s/w1.cursor", (char *) *state);
	struct wb_record live = rec(243, 5);
	uint32_t seq = 0;

	GwJournal *j = gw_journal_open(*state, "w1", &error);
	assert_false(gw_journal_get_cursor(j, &seq));
	assert_int_equal(gw_journal_append(j, &live, 1, &error), 1);
	assert_true(gw_journal_sync(j, &error));
	assert_true(gw_journal_set_cursor(j, 152, &error));
	gw_journal_free(j);

	j = gw_journal_open(*state, "w1", &error);
	assert_true(gw_journal_get_cursor(j, &seq));
	assert_int_equal(seq, 152);
	assert_true(gw_journal_durable_seq(j, &seq));
	assert_int_equal(seq, 243);	/* highest held: not where to resume */
	gw_journal_free(j);

	assert_true(g_file_set_contents(path, "15x2\n", -1, NULL));
	j = gw_journal_open(*state, "w1", &error);
	assert_non_null(j);
	assert_false(gw_journal_get_cursor(j, &seq));
	gw_journal_free(j);
	g_unlink(path);
}

static void test_unwritable_directory(void **state)
{
	g_autoptr(GError) error = NULL;
	(void) state;
	GwJournal *j = gw_journal_open("/proc/rehablink-no-such-dir", "w1", &error);

	assert_null(j);
	assert_non_null(error);
	assert_non_null(strstr(error->message, "/proc/rehablink-no-such-dir"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_durable_after_sync_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicates_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_records_and_cuts_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_record_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cursor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable_directory, setup, teardown),
	};
	return cmocka_run_group_tests_name("gateway/journal", tests, NULL, NULL);
}
