/* SPDX-License-Identifier: MIT */
/*
 * gateway/store.c: the SQLite store, on real files in a temporary
 * directory. A VFS shim registered as SQLite's default (so the store uses
 * it unchanged) plays a full disk: once the test sets a limit, a write
 * that would grow the store's files (database, -wal and .reserve
 * together) beyond it fails with SQLITE_FULL, as ENOSPC does in the unix
 * VFS. A "crash" is a forked child that SIGKILLs itself with the store
 * open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store.h"

#define KIB 1024u
#define W1 "AABBCCDDEE01"
#define W2 "AABBCCDDEE02"
#define W3 "AABBCCDDEE03"
#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

/* ---- the full-disk VFS shim ---- */

static struct {
	sqlite3_vfs vfs;
	sqlite3_vfs *real;
	char *db;		/* the store whose files count: db, -wal, .reserve */
	uint64_t limit;		/* 0: no limit */
	unsigned int refused;	/* writes failed with SQLITE_FULL */
	uint64_t wal_bytes;	/* written to the store's -wal */
	uint64_t db_bytes;	/* written to the database file */
} disk;

struct disk_file {
	sqlite3_file base;
	bool watched;
	bool wal;		/* the -wal of a watched store */
	sqlite3_file *real;	/* the unix VFS's file, right after this */
};

#define REAL(f) (((struct disk_file *) (f))->real)

static uint64_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t) st.st_size : 0;
}

static uint64_t disk_usage(void)
{
	g_autofree char *wal = g_strconcat(disk.db, "-wal", NULL);
	g_autofree char *reserve = g_strconcat(disk.db, ".reserve", NULL);

	return file_size(disk.db) + file_size(wal) + file_size(reserve);
}

static int d_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}

static int d_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int d_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	sqlite3_int64 size = 0;

	if (disk.limit && ((struct disk_file *) f)->watched &&
	    REAL(f)->pMethods->xFileSize(REAL(f), &size) == SQLITE_OK && off + n > size &&
	    disk_usage() + (uint64_t) (off + n - size) > disk.limit) {
		disk.refused++;
		return SQLITE_FULL;
	}
	if (((struct disk_file *) f)->watched)
		*(((struct disk_file *) f)->wal ? &disk.wal_bytes : &disk.db_bytes) +=
			(uint64_t) n;
	return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int d_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int d_sync(sqlite3_file *f, int flags)
{
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int d_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int d_lock(sqlite3_file *f, int lock)
{
	return REAL(f)->pMethods->xLock(REAL(f), lock);
}

static int d_unlock(sqlite3_file *f, int lock)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}

static int d_check_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int d_file_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int d_sector_size(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int d_device_chars(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int d_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), page, size, extend, out);
}

static int d_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}

static void d_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int d_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static const sqlite3_io_methods disk_io = {
	.iVersion = 2,		/* WAL's shared memory; no memory-mapped I/O */
	.xClose = d_close,
	.xRead = d_read,
	.xWrite = d_write,
	.xTruncate = d_truncate,
	.xSync = d_sync,
	.xFileSize = d_file_size,
	.xLock = d_lock,
	.xUnlock = d_unlock,
	.xCheckReservedLock = d_check_reserved,
	.xFileControl = d_file_control,
	.xSectorSize = d_sector_size,
	.xDeviceCharacteristics = d_device_chars,
	.xShmMap = d_shm_map,
	.xShmLock = d_shm_lock,
	.xShmBarrier = d_shm_barrier,
	.xShmUnmap = d_shm_unmap,
};

static int d_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
	struct disk_file *df = (struct disk_file *) f;
	int rc;

	(void) vfs;
	df->real = (sqlite3_file *) (void *) ((char *) f + sizeof(*df));
	df->watched = name && disk.db && g_str_has_prefix(name, disk.db);
	df->wal = df->watched && (flags & SQLITE_OPEN_WAL);
	rc = disk.real->xOpen(disk.real, name, df->real, flags, out);
	df->base.pMethods = df->real->pMethods ? &disk_io : NULL;
	return rc;
}

static void disk_register(void)
{
	disk.real = sqlite3_vfs_find(NULL);
	disk.vfs = *disk.real;
	disk.vfs.zName = "rehablink-test-disk";
	disk.vfs.szOsFile = (int) sizeof(struct disk_file) + disk.real->szOsFile;
	disk.vfs.xOpen = d_open;
	disk.vfs.pNext = NULL;
	sqlite3_vfs_register(&disk.vfs, 1);
}

/* ---- fixtures and helpers ---- */

struct fx {
	char *dir;
	char *path;
};

static int setup(void **state)
{
	struct fx *fx = g_new0(struct fx, 1);

	fx->dir = g_dir_make_tmp("rehablink-store-XXXXXX", NULL);
	if (!fx->dir) {
		g_free(fx);
		return -1;
	}
	fx->path = g_build_filename(fx->dir, "store.db", NULL);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	GDir *d = g_dir_open(fx->dir, 0, NULL);
	const char *name;

	disk.limit = 0;
	g_clear_pointer(&disk.db, g_free);
	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(fx->dir, name, NULL);

		g_unlink(p);
	}
	if (d)
		g_dir_close(d);
	g_rmdir(fx->dir);
	g_free(fx->dir);
	g_free(fx->path);
	g_free(fx);
	return 0;
}

static const struct gw_store_stamp stamp = {
	.received_us = INT64_C(1700000000000000),
	.clock_synced = true,
	.mono_us = INT64_C(123456789),
	.boot_id = "5f0c2a36-1d6e-4b8f-9a51-0c7e2d9b4a11",
};

static struct wb_record steps(uint32_t seq)
{
	struct wb_record r = {
		.type = WB_RECORD_STEPS, .version = WB_RECORD_VERSION, .seq = seq,
		.time = 1000 + seq, .time_quality = WB_TIME_SYNCED,
	};

	r.u.steps.steps = (uint16_t) (seq % 200);
	r.u.steps.duration_s = 60;
	return r;
}

static struct wb_record pain(uint32_t seq, int score)
{
	struct wb_record r = {
		.type = WB_RECORD_PAIN, .version = WB_RECORD_VERSION, .seq = seq,
		.time = 2000 + seq, .time_quality = WB_TIME_HOLDOVER,
	};

	r.u.pain.score = (uint8_t) score;
	r.u.pain.flags = WB_PAIN_CALF;
	return r;
}

static GwStore *try_open(const char *path, uint64_t budget, uint64_t reserve, GError **error)
{
	struct gw_store_config cfg;

	gw_store_config_init(&cfg);
	cfg.path = path;
	cfg.budget_bytes = budget;
	cfg.reserve_bytes = reserve;
	return gw_store_open(&cfg, error);
}

static GwStore *open_store(const struct fx *fx, uint64_t budget, uint64_t reserve)
{
	g_autoptr(GError) error = NULL;
	GwStore *s = try_open(fx->path, budget, reserve, &error);

	if (!s)
		fail_msg("open: %s", error->message);
	return s;
}

/* Overwrites the first 100 bytes of the file (the SQLite header) with
 * pattern ^ i. */
static void garble_header(const char *path, int pattern)
{
	FILE *f = fopen(path, "r+b");

	assert_non_null(f);
	for (int i = 0; i < 100; i++)
		fputc(pattern ^ i, f);
	fclose(f);
}

/* Adds steps records first..last; returns how many the store added. */
static int add(GwStore *s, const char *w, uint32_t first, uint32_t last)
{
	struct wb_record r[WB_BATCH_MAX];
	int total = 0;
	uint32_t seq = first;

	for (;;) {
		g_autoptr(GError) error = NULL;
		size_t n = 0;
		int added;

		while (n < G_N_ELEMENTS(r)) {
			r[n++] = steps(seq);
			if (seq++ == last)
				break;
		}
		added = gw_store_add_records(s, w, r, n, &stamp, &error);
		if (added < 0)
			fail_msg("add %s: %s", w, error->message);
		total += added;
		if (r[n - 1].seq == last)
			return total;
	}
}

static int add_rec(GwStore *s, const char *w, struct wb_record r, GError **error)
{
	return gw_store_add_records(s, w, &r, 1, &stamp, error);
}

static void commit(GwStore *s)
{
	g_autoptr(GError) error = NULL;

	if (!gw_store_commit(s, &error))
		fail_msg("commit: %s", error->message);
}

static uint32_t cursor_of(GwStore *s, const char *w)
{
	uint32_t seq = 0xdeadbeef;

	assert_true(gw_store_get_cursor(s, w, &seq));
	return seq;
}

static struct gw_outbox_msg *new_msg(const char *msg_id, int prio, size_t len, int64_t created)
{
	struct gw_outbox_msg *m = g_new0(struct gw_outbox_msg, 1);

	m->msg_id = g_strdup(msg_id);
	m->kind = g_strdup(prio == GW_PRIO_TELEMETRY ? "aggregate_minute" : "alert");
	m->priority = prio;
	m->topic = g_strdup_printf("rehablink/v1/test/%s", msg_id);
	m->payload = g_malloc(len + 1);
	for (size_t i = 0; i < len; i++)
		m->payload[i] = (char) (i % 7 == 3 ? 0 : 'a' + (int) (i % 26));
	m->payload[len] = '\0';
	m->payload_len = len;
	m->qos = 1;
	m->expiry_s = 3600;
	m->created_us = created;
	return m;
}

/* The id the store gave it, or -1 with error set. */
static int64_t put_msg(GwStore *s, const char *msg_id, int prio, size_t len, GError **error)
{
	g_autoptr(GwOutboxMsg) m = new_msg(msg_id, prio, len, 1000 + (int64_t) len);

	return gw_store_outbox_put(s, m, error) ? m->id : -1;
}

static GPtrArray *peek(GwStore *s, size_t max, GHashTable *skip)
{
	g_autoptr(GError) error = NULL;
	GPtrArray *ret = g_ptr_array_new_with_free_func((GDestroyNotify) gw_outbox_msg_free);

	if (!gw_store_outbox_peek(s, max, skip, ret, &error))
		fail_msg("peek: %s", error->message);
	return ret;
}

static bool msg_queued(GwStore *s, int64_t id)
{
	g_autoptr(GPtrArray) all = peek(s, 100000, NULL);

	for (guint i = 0; i < all->len; i++)
		if (((struct gw_outbox_msg *) all->pdata[i])->id == id)
			return true;
	return false;
}

static sqlite3 *raw_open(const char *path)
{
	sqlite3 *db = NULL;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		fail_msg("sqlite3_open %s: %s", path, sqlite3_errmsg(db));
	return db;
}

static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

static int64_t raw_int(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Every row of a one-column query, joined with newlines. */
static char *raw_text(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	sqlite3_stmt *st = NULL;
	GString *out = g_string_new(NULL);

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW)
		g_string_append_printf(out, "%s\n", (const char *) sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return g_string_free(out, FALSE);
}

static char *raw_hash(const char *path, int64_t seq)
{
	g_autofree char *sql = g_strdup_printf("SELECT hash FROM audit WHERE seq = %" PRId64, seq);
	char *hash = raw_text(path, sql);

	g_strchomp(hash);
	return hash;
}

/* The audit hash as store.h and docs specify it, written again here:
 * SHA-256 over prev | seq | at_us | alert_id | event | detail, integers
 * as 8 bytes big endian, strings as their length (8 bytes big endian,
 * all ones for NULL) and their bytes. */
static void spec_u64(GChecksum *c, uint64_t v)
{
	guint8 b[8];

	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (guint8) v;
	g_checksum_update(c, b, 8);
}

static void spec_str(GChecksum *c, const char *str)
{
	spec_u64(c, str ? strlen(str) : UINT64_MAX);
	if (str)
		g_checksum_update(c, (const guchar *) str, (gssize) strlen(str));
}

static char *spec_hash(const char *prev, int64_t seq, int64_t at_us, const char *alert_id,
		       const char *event, const char *detail)
{
	g_autoptr(GChecksum) c = g_checksum_new(G_CHECKSUM_SHA256);

	spec_str(c, prev);
	spec_u64(c, (uint64_t) seq);
	spec_u64(c, (uint64_t) at_us);
	spec_str(c, alert_id);
	spec_str(c, event);
	spec_str(c, detail);
	return g_strdup(g_checksum_get_string(c));
}

/* ---- opening ---- */

static void test_open_creates_wal_store(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 0, 64 * KIB);
	g_autofree char *reserve = g_strconcat(fx->path, ".reserve", NULL);
	g_autofree char *tables = NULL;
	struct gw_outbox_stats st;

	assert_null(gw_store_corrupt_aside(s));
	assert_false(gw_store_reserve_used(s));
	assert_int_equal(file_size(reserve), 64 * KIB);
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), GW_STORE_SCHEMA_VERSION);
	assert_int_equal(raw_int(fx->path, "PRAGMA auto_vacuum"), 2);	/* incremental */
	g_free(raw_text(fx->path, "SELECT 1"));
	tables = raw_text(fx->path, "PRAGMA journal_mode");
	assert_string_equal(tables, "wal\n");
	g_free(tables);
	tables = raw_text(fx->path, "SELECT name FROM sqlite_schema WHERE type = 'table'"
			  " AND name NOT LIKE 'sqlite_%' ORDER BY name");
	assert_string_equal(tables, "aggregates\nalerts\naudit\nboots\ncursors\ndevice_state\n"
			    "outbox\nrecords\nstore_meta\nwearables\n");
	g_free(tables);
	/* the records table keeps no index of its own */
	tables = raw_text(fx->path, "SELECT name FROM sqlite_schema WHERE tbl_name = 'records'");
	assert_string_equal(tables, "records\n");
	assert_true(gw_store_size(s) > 0);
	assert_int_equal(gw_store_uncommitted(s), 0);
	gw_store_outbox_stats(s, &st);
	assert_int_equal(st.depth, 0);
	assert_true(st.oldest_created_us == INT64_MIN);
	assert_int_equal(gw_store_audit_count(s), 0);
	assert_true(gw_store_audit_verify(s, NULL, NULL));
}

static void test_open_errors_name_the_path(void **state)
{
	g_autoptr(GError) error = NULL;
	GwStore *s;

	(void) state;
	s = try_open("/proc/rehablink-no-such-dir/store.db", 0, 0, &error);
	assert_null(s);
	assert_true(g_error_matches(error, GW_STORE_ERROR, GW_STORE_ERROR_IO));
	assert_non_null(strstr(error->message, "/proc/rehablink-no-such-dir/store.db"));
	g_clear_error(&error);
	s = try_open(NULL, 0, 0, &error);
	assert_null(s);
	assert_true(g_error_matches(error, GW_STORE_ERROR, GW_STORE_ERROR_INVALID));
}

/* ---- records and the cursor ---- */

static void test_records_deduplicated(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 0, 0);
	g_autoptr(GError) error = NULL;
	struct wb_record bad = pain(9, 11);	/* score out of range */

	assert_int_equal(add(s, W1, 1, 5), 5);
	assert_int_equal(add(s, W1, 3, 7), 2);		/* 3..5 held */
	assert_int_equal(add(s, W2, 1, 3), 3);		/* another wearable's seqs */
	assert_int_equal(gw_store_record_count(s, W1), 7);
	assert_int_equal(gw_store_record_count(s, W2), 3);
	assert_int_equal(gw_store_record_count(s, NULL), 10);
	assert_true(gw_store_has_record(s, W1, 7));
	assert_false(gw_store_has_record(s, W1, 8));
	assert_false(gw_store_has_record(s, W3, 1));

	assert_int_equal(add_rec(s, W1, bad, &error), -1);
	assert_true(g_error_matches(error, GW_STORE_ERROR, GW_STORE_ERROR_INVALID));
	assert_non_null(strstr(error->message, "seq 9"));
	assert_false(gw_store_has_record(s, W1, 9));
	commit(s);
	gw_store_free(g_steal_pointer(&s));

	/* the columns and the wire encoding are both there */
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM records r"
				 " JOIN wearables w ON w.id = r.wearable_id"
				 " JOIN boots b ON b.id = r.boot WHERE w.name = '" W1 "'"
				 " AND r.type = 2 AND length(r.wire) = 16 AND r.flags = 1"
				 " AND r.received_us = 1700000000000000 AND r.mono_us = 123456789"
				 " AND b.boot_id = '5f0c2a36-1d6e-4b8f-9a51-0c7e2d9b4a11'"), 7);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM wearables"
				 " WHERE aggregated_seq IS NULL"), 2);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM boots"), 1);
}

static void test_cursor_contiguous(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 0, 0);
	g_autoptr(GError) error = NULL;
	uint32_t seq;

	add(s, W1, 1, 5);
	assert_int_equal(cursor_of(s, W1), 5);
	add(s, W1, 7, 7);
	assert_int_equal(cursor_of(s, W1), 5);		/* 6 is missing */
	add(s, W1, 6, 6);
	assert_int_equal(cursor_of(s, W1), 7);		/* filled: over 6 and 7 */

	/* no seq 1 held: nothing proves a start, so no cursor */
	add(s, W2, 3, 4);
	assert_false(gw_store_get_cursor(s, W2, &seq));
	/* a proven value (a verified report), then extension from there */
	assert_true(gw_store_advance_cursor(s, W2, 2, &error));
	assert_int_equal(cursor_of(s, W2), 4);
	assert_true(gw_store_advance_cursor(s, W2, 1, &error));
	assert_int_equal(cursor_of(s, W2), 4);		/* never backwards */
	assert_true(gw_store_advance_cursor(s, W2, 10, &error));
	assert_int_equal(cursor_of(s, W2), 10);
	add(s, W2, 12, 12);
	assert_int_equal(cursor_of(s, W2), 10);
	add(s, W2, 11, 11);
	assert_int_equal(cursor_of(s, W2), 12);
	/* at or before the cursor every record is held (or was, and shed) */
	assert_int_equal(add(s, W2, 9, 9), 0);
	assert_false(gw_store_has_record(s, W2, 9));

	/* seqs wrap at 2^32: serial order */
	assert_true(gw_store_advance_cursor(s, W3, UINT32_MAX - 1, &error));
	add(s, W3, 1, 1);
	assert_int_equal(cursor_of(s, W3), UINT32_MAX - 1);
	add(s, W3, UINT32_MAX, 0);
	assert_int_equal(cursor_of(s, W3), 1);
	assert_true(gw_store_advance_cursor(s, W3, UINT32_MAX, &error));
	assert_int_equal(cursor_of(s, W3), 1);		/* UINT32_MAX is before 1 */

	/* committed together with its records */
	commit(s);
	gw_store_free(g_steal_pointer(&s));
	s = open_store(fx, 0, 0);
	assert_int_equal(cursor_of(s, W1), 7);
	assert_int_equal(cursor_of(s, W2), 12);
	assert_int_equal(cursor_of(s, W3), 1);
}

static int child_writes(const char *path)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GwOutboxMsg) m = new_msg("m-uncommitted", GW_PRIO_ALERT, 10, 1);
	struct wb_record r[3] = { steps(1), steps(2), steps(3) };
	struct wb_record later[2] = { steps(4), pain(5, 8) };
	GwStore *s = try_open(path, 0, 0, &error);	/* never freed: killed */

	if (!s ||
	    gw_store_add_records(s, W1, r, 3, &stamp, &error) != 3 ||
	    !gw_store_commit(s, &error) ||
	    gw_store_add_records(s, W1, later, 2, &stamp, &error) != 2 ||
	    !gw_store_outbox_put(s, m, &error) ||
	    !gw_store_device_set(s, W1, "fw", "1.0", &error) ||
	    gw_store_uncommitted(s) == 0)
		return 1;
	return 0;
}

/* A process killed mid-transaction (SIGKILL: no commit, no close, no
 * exit handlers): what was committed is there, what was not is gone,
 * cursor included. */
static void test_crash_keeps_only_committed(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = NULL;
	struct gw_outbox_stats st;
	int status = 0, fds[2];
	char res = 'x';
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char c = (char) ('0' + child_writes(fx->path));

		if (write(fds[1], &c, 1) != 1)
			_exit(3);
		for (;;)
			pause();	/* until the parent kills it */
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &res, 1), 1);
	close(fds[0]);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(res, '0');
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);

	s = open_store(fx, 0, 0);
	assert_int_equal(gw_store_record_count(s, W1), 3);
	assert_true(gw_store_has_record(s, W1, 3));
	assert_false(gw_store_has_record(s, W1, 4));
	assert_false(gw_store_has_record(s, W1, 5));
	assert_int_equal(cursor_of(s, W1), 3);
	gw_store_outbox_stats(s, &st);
	assert_int_equal(st.depth, 0);
	assert_null(gw_store_device_get(s, W1, "fw"));
	assert_int_equal(gw_store_uncommitted(s), 0);
}

static void test_transactions(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 0, 0);

	add(s, W1, 1, 3);
	/* three records and the cursor row */
	assert_int_equal(gw_store_uncommitted(s), 4);
	add(s, W1, 1, 3);
	assert_int_equal(gw_store_uncommitted(s), 4);	/* nothing new */
	commit(s);
	assert_int_equal(gw_store_uncommitted(s), 0);
	commit(s);					/* nothing open: fine */

	/* not visible to another connection before the commit */
	add(s, W1, 4, 4);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM records"), 3);
	commit(s);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM records"), 4);

	/* gw_store_free commits what is open */
	add(s, W1, 5, 6);
	gw_store_free(g_steal_pointer(&s));
	s = open_store(fx, 0, 0);
	assert_int_equal(gw_store_record_count(s, W1), 6);
	assert_int_equal(cursor_of(s, W1), 6);
}

struct seen {
	GArray *recs;		/* struct wb_record */
	bool stamps_ok;
};

static void collect(const struct gw_store_record *r, void *user_data)
{
	struct seen *seen = user_data;

	g_array_append_val(seen->recs, r->rec);
	if (r->stamp.received_us != stamp.received_us || !r->stamp.clock_synced ||
	    r->stamp.mono_us != stamp.mono_us || !r->stamp.boot_id ||
	    strcmp(r->stamp.boot_id, stamp.boot_id) != 0)
		seen->stamps_ok = false;
}

static void test_unaggregated_and_mark(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 0, 0);
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) recs = g_array_new(FALSE, FALSE, sizeof(struct wb_record));
	struct seen seen = { .recs = recs, .stamps_ok = true };
	struct wb_record p = pain(11, 7);

	add(s, W1, 1, 10);
	assert_int_equal(add_rec(s, W1, p, &error), 1);
	assert_true(gw_store_mark_aggregated(s, W1, 1, 4, &error));
	assert_true(gw_store_foreach_unaggregated(s, W1, collect, &seen, &error));
	assert_int_equal(recs->len, 7);
	for (guint i = 0; i < 6; i++) {
		struct wb_record want = steps(5 + i);

		assert_true(wb_record_equal(&g_array_index(recs, struct wb_record, i), &want));
	}
	assert_true(wb_record_equal(&g_array_index(recs, struct wb_record, 6), &p));
	assert_true(seen.stamps_ok);

	/* a range the wrong way round */
	assert_false(gw_store_mark_aggregated(s, W1, 10, 5, &error));
	assert_true(g_error_matches(error, GW_STORE_ERROR, GW_STORE_ERROR_INVALID));
	g_clear_error(&error);
	assert_true(gw_store_mark_aggregated(s, W1, 5, 11, &error));
	g_array_set_size(recs, 0);
	assert_true(gw_store_foreach_unaggregated(s, W1, collect, &seen, &error));
	assert_int_equal(recs->len, 0);

	/* more than one page of them, in seq order */
	add(s, W2, 1, 700);
	assert_true(gw_store_foreach_unaggregated(s, W2, collect, &seen, &error));
	assert_int_equal(recs->len, 700);
	for (guint i = 0; i < recs->len; i++)
		assert_int_equal(g_array_index(recs, struct wb_record, i).seq, i + 1);

	/* across the wrap: serial order from the watermark, and a range
	 * across the wrap moves it (a watermark: what is before the range
	 * counts as aggregated too) */
	assert_true(gw_store_advance_cursor(s, W3, UINT32_MAX - 2, &error));
	add(s, W3, UINT32_MAX - 1, 2);
	assert_true(gw_store_mark_aggregated(s, W3, UINT32_MAX - 1, UINT32_MAX - 1, &error));
	g_array_set_size(recs, 0);
	assert_true(gw_store_foreach_unaggregated(s, W3, collect, &seen, &error));
	assert_int_equal(recs->len, 4);
	assert_int_equal(g_array_index(recs, struct wb_record, 0).seq, UINT32_MAX);
	assert_int_equal(g_array_index(recs, struct wb_record, 1).seq, 0);
	assert_int_equal(g_array_index(recs, struct wb_record, 2).seq, 1);
	assert_int_equal(g_array_index(recs, struct wb_record, 3).seq, 2);
	assert_true(gw_store_mark_aggregated(s, W3, UINT32_MAX, 1, &error));
	g_array_set_size(recs, 0);
	assert_true(gw_store_foreach_unaggregated(s, W3, collect, &seen, &error));
	assert_int_equal(recs->len, 1);
	assert_int_equal(g_array_index(recs, struct wb_record, 0).seq, 2);
	commit(s);
}

struct marking {
	GwStore *s;
	GArray *seqs;		/* uint32_t */
};

/* the aggregator publishing a window while it is replayed */
static void collect_and_mark(const struct gw_store_record *r, void *user_data)
{
	struct marking *m = user_data;

	g_array_append_val(m->seqs, r->rec.seq);
	if (m->s && r->rec.seq == 100 && !gw_store_mark_aggregated(m->s, W1, 100, 600, NULL))
		fail_msg("mark during foreach");
}

/* The aggregated state is one watermark per wearable. */
static void test_aggregated_watermark(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 0, 0);
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) seqs = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	g_autoptr(GPtrArray) ws = NULL;
	struct marking m = { .s = NULL, .seqs = seqs };
	uint64_t before;

	/* a wearable never stored: nothing to move, nothing written */
	assert_true(gw_store_mark_aggregated(s, W2, 1, 10, &error));
	assert_int_equal(gw_store_uncommitted(s), 0);
	ws = gw_store_wearables(s);
	assert_int_equal(ws->len, 0);

	/* first is no bound: 1..4 count as aggregated too */
	add(s, W1, 1, 20);
	assert_true(gw_store_mark_aggregated(s, W1, 5, 8, &error));
	assert_true(gw_store_foreach_unaggregated(s, W1, collect_and_mark, &m, &error));
	assert_int_equal(seqs->len, 12);
	assert_int_equal(g_array_index(seqs, uint32_t, 0), 9);
	/* a range ending before the watermark, or at it, changes nothing */
	before = gw_store_uncommitted(s);
	assert_true(gw_store_mark_aggregated(s, W1, 2, 6, &error));
	assert_true(gw_store_mark_aggregated(s, W1, 8, 8, &error));
	assert_int_equal(gw_store_uncommitted(s), before);
	g_array_set_size(seqs, 0);
	assert_true(gw_store_foreach_unaggregated(s, W1, collect_and_mark, &m, &error));
	assert_int_equal(seqs->len, 12);

	/* marked by the callback while it runs: the next page (256
	 * records) starts after the watermark */
	add(s, W1, 21, 700);
	m.s = s;
	g_array_set_size(seqs, 0);
	assert_true(gw_store_foreach_unaggregated(s, W1, collect_and_mark, &m, &error));
	assert_int_equal(seqs->len, 256 + 100);
	for (guint i = 0; i < seqs->len; i++)
		assert_int_equal(g_array_index(seqs, uint32_t, i), i < 256 ? 9 + i : 601 + i - 256);

	/* committed with the rest */
	commit(s);
	gw_store_free(g_steal_pointer(&s));
	s = open_store(fx, 0, 0);
	m.s = NULL;
	g_array_set_size(seqs, 0);
	assert_true(gw_store_foreach_unaggregated(s, W1, collect_and_mark, &m, &error));
	assert_int_equal(seqs->len, 100);
	assert_int_equal(g_array_index(seqs, uint32_t, 0), 601);
	assert_int_equal(raw_int(fx->path, "SELECT aggregated_seq FROM wearables WHERE name = '"
				 W1 "'"), 600);

	/* history stored behind live records already marked: back to
	 * unaggregated (replayed, not shed) until marked again */
	add(s, W2, 1, 10);
	add(s, W2, 20, 30);
	assert_true(gw_store_mark_aggregated(s, W2, 20, 30, &error));
	commit(s);
	assert_int_equal(raw_int(fx->path, "SELECT aggregated_seq FROM wearables WHERE name = '"
				 W2 "'"), 30);
	g_array_set_size(seqs, 0);
	assert_true(gw_store_foreach_unaggregated(s, W2, collect_and_mark, &m, &error));
	assert_int_equal(seqs->len, 0);
	add(s, W2, 11, 19);
	assert_int_equal(cursor_of(s, W2), 30);
	assert_true(gw_store_foreach_unaggregated(s, W2, collect_and_mark, &m, &error));
	assert_int_equal(seqs->len, 20);
	assert_int_equal(g_array_index(seqs, uint32_t, 0), 11);
	commit(s);
	assert_int_equal(raw_int(fx->path, "SELECT aggregated_seq FROM wearables WHERE name = '"
				 W2 "'"), 10);
	/* a record held already moves nothing */
	assert_true(gw_store_mark_aggregated(s, W2, 11, 30, &error));
	assert_int_equal(add(s, W2, 25, 25), 0);
	g_array_set_size(seqs, 0);
	assert_true(gw_store_foreach_unaggregated(s, W2, collect_and_mark, &m, &error));
	assert_int_equal(seqs->len, 0);

	/* pages across the wrap, in serial order from the watermark */
	assert_true(gw_store_advance_cursor(s, W3, UINT32_MAX - 300, &error));
	add(s, W3, UINT32_MAX - 299, 300);
	assert_true(gw_store_mark_aggregated(s, W3, UINT32_MAX - 299, UINT32_MAX - 290, &error));
	g_array_set_size(seqs, 0);
	assert_true(gw_store_foreach_unaggregated(s, W3, collect_and_mark, &m, &error));
	assert_int_equal(seqs->len, 290 + 301);
	for (guint i = 0; i < seqs->len; i++)
		assert_int_equal(g_array_index(seqs, uint32_t, i), UINT32_MAX - 289 + i);
	commit(s);
}

static void test_device_state_and_wearables(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 0, 0);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) ws = NULL;
	g_autofree char *v = NULL;

	assert_null(gw_store_device_get(s, W2, "firmware"));
	assert_true(gw_store_device_set(s, W2, "firmware", "1.2.0", &error));
	assert_true(gw_store_device_set(s, W2, "battery", "81", &error));
	assert_true(gw_store_device_set(s, W2, "firmware", "1.3.0", &error));
	v = gw_store_device_get(s, W2, "firmware");
	assert_string_equal(v, "1.3.0");
	assert_true(gw_store_device_set(s, W2, "battery", NULL, &error));
	assert_null(gw_store_device_get(s, W2, "battery"));
	assert_false(gw_store_device_set(s, W2, NULL, "x", &error));
	assert_true(g_error_matches(error, GW_STORE_ERROR, GW_STORE_ERROR_INVALID));
	g_clear_error(&error);

	add(s, W3, 1, 2);
	assert_true(gw_store_advance_cursor(s, W1, 40, &error));	/* a cursor only */
	commit(s);
	ws = gw_store_wearables(s);
	assert_int_equal(ws->len, 3);
	assert_string_equal(ws->pdata[0], W1);
	assert_string_equal(ws->pdata[1], W2);
	assert_string_equal(ws->pdata[2], W3);
}

static void test_aggregates_latest_revision(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 0, 0);
	g_autoptr(GError) error = NULL;
	g_autofree char *json = NULL;
	struct gw_store_aggregate a = {
		.aggregate_id = "agg-1", .wearable = W1, .kind = 0,
		.start_us = 60000000, .end_us = 120000000, .revision = 1, .json = "{\"steps\":1}",
	};

	assert_int_equal(gw_store_aggregate_revision(s, "agg-1"), 0);
	assert_true(gw_store_put_aggregate(s, &a, &error));
	a.revision = 3;
	a.json = "{\"steps\":3}";
	assert_true(gw_store_put_aggregate(s, &a, &error));
	a.revision = 2;			/* late and older: ignored */
	a.json = "{\"steps\":2}";
	assert_true(gw_store_put_aggregate(s, &a, &error));
	assert_int_equal(gw_store_aggregate_revision(s, "agg-1"), 3);
	json = gw_store_aggregate_json(s, "agg-1");
	assert_string_equal(json, "{\"steps\":3}");
	assert_null(gw_store_aggregate_json(s, "agg-2"));
	a.revision = 0;
	assert_false(gw_store_put_aggregate(s, &a, &error));
	assert_true(g_error_matches(error, GW_STORE_ERROR, GW_STORE_ERROR_INVALID));
	commit(s);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM aggregates WHERE"
				 " json = '{\"steps\":3}' AND revision = 3"), 1);
}

/* A lost database takes the published revisions with it; <path>.revisions
 * keeps the next ones above them (a consumer keeps the highest). */
static void test_revisions_outlive_a_lost_store(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 0, 0);
	g_autoptr(GError) error = NULL;
	g_autofree char *side = g_strconcat(fx->path, ".revisions", NULL);
	struct gw_store_aggregate a = {
		.aggregate_id = "agg-1", .wearable = W1, .kind = 0,
		.start_us = 60000000, .end_us = 120000000, .json = "{\"steps\":1}",
	};
	int floor1, floor2;

	/* a store never lost numbers from 1 */
	assert_int_equal(gw_store_aggregate_next_revision(s, "agg-1"), 1);
	for (int i = 0; i < 70; i++) {	/* past the first step of the bound */
		a.revision = gw_store_aggregate_next_revision(s, "agg-1");
		assert_int_equal(a.revision, i + 1);
		assert_true(gw_store_put_aggregate(s, &a, &error));
	}
	commit(s);
	assert_true(g_file_test(side, G_FILE_TEST_EXISTS));
	gw_store_free(g_steal_pointer(&s));

	/* corrupt: moved aside, the fresh store continues above 70 */
	garble_header(fx->path, 0x5a);
	s = open_store(fx, 0, 0);
	assert_non_null(gw_store_corrupt_aside(s));
	assert_int_equal(gw_store_aggregate_revision(s, "agg-1"), 0);
	floor1 = gw_store_aggregate_next_revision(s, "agg-1");
	assert_true(floor1 > 70);
	assert_int_equal(gw_store_aggregate_next_revision(s, "agg-new"), floor1);
	a.revision = floor1;
	assert_true(gw_store_put_aggregate(s, &a, &error));
	commit(s);
	gw_store_free(g_steal_pointer(&s));

	/* an ordinary restart keeps the floor and the stored revision */
	s = open_store(fx, 0, 0);
	assert_int_equal(gw_store_aggregate_next_revision(s, "agg-1"), floor1 + 1);
	assert_int_equal(gw_store_aggregate_next_revision(s, "agg-2"), floor1);
	gw_store_free(g_steal_pointer(&s));

	/* a garbled bound file: reported, rebuilt from the database */
	assert_true(g_file_set_contents(side, "[aggregates]\nreserved-revision=many\n", -1, NULL));
	s = open_store(fx, 0, 0);
	assert_int_equal(gw_store_aggregate_next_revision(s, "agg-1"), floor1 + 1);
	gw_store_free(g_steal_pointer(&s));

	/* the database deleted: still above everything published */
	assert_int_equal(g_unlink(fx->path), 0);
	s = open_store(fx, 0, 0);
	assert_null(gw_store_corrupt_aside(s));
	floor2 = gw_store_aggregate_next_revision(s, "agg-1");
	assert_true(floor2 > floor1);
	gw_store_free(g_steal_pointer(&s));

	/* a bound that cannot be written (here: a directory in its place)
	 * does not stop the store opening, but a revision above it is not
	 * stored, so it can never be published above a bound that would not
	 * outlive the database */
	assert_int_equal(g_unlink(side), 0);
	assert_int_equal(g_mkdir(side, 0700), 0);
	s = open_store(fx, 0, 0);
	a.aggregate_id = "agg-3";
	a.revision = gw_store_aggregate_next_revision(s, "agg-3");
	assert_false(gw_store_put_aggregate(s, &a, &error));
	assert_non_null(strstr(error->message, "revision bound"));
	g_clear_error(&error);
	assert_int_equal(gw_store_aggregate_revision(s, "agg-3"), 0);
	assert_int_equal(g_rmdir(side), 0);
	assert_true(gw_store_put_aggregate(s, &a, &error));
	commit(s);
	assert_int_equal(gw_store_aggregate_revision(s, "agg-3"), a.revision);
	assert_true(g_file_test(side, G_FILE_TEST_IS_REGULAR));
}

/* ---- reading back: records since, aggregates, kinds, audit, check ---- */

struct since_seen {
	GPtrArray *keys;	/* "wearable:seq:type" */
};

static void since_cb(const char *wearable, const struct gw_store_record *r, void *ud)
{
	struct since_seen *ss = ud;

	g_ptr_array_add(ss->keys, g_strdup_printf("%s:%u:%d:%" PRId64, wearable, r->rec.seq,
						  (int) r->rec.type, r->stamp.received_us));
}

static void test_records_since(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 0, 0);
	g_autoptr(GError) error = NULL;
	struct gw_store_stamp late = stamp;
	struct since_seen ss = { g_ptr_array_new_with_free_func(g_free) };
	struct wb_record r[600];
	g_autofree char *first = g_strdup_printf("%s:1:%d:%" PRId64, W1, WB_RECORD_STEPS,
						 stamp.received_us);

	/* W1's first ten earlier than the rest; W2 after W1 in the store's order */
	assert_int_equal(add(s, W1, 1, 10), 10);
	late.received_us = stamp.received_us + 1000;
	for (uint32_t i = 0; i < G_N_ELEMENTS(r); i++)
		r[i] = i % 100 == 7 ? pain(11 + i, 5) : steps(11 + i);
	for (size_t off = 0; off < G_N_ELEMENTS(r); off += WB_BATCH_MAX)
		assert_true(gw_store_add_records(s, W1, r + off,
						 MIN((size_t) WB_BATCH_MAX, G_N_ELEMENTS(r) - off),
						 &late, &error) > 0);
	assert_int_equal(gw_store_add_records(s, W2, r, 3, &late, &error), 3);
	commit(s);

	/* everything since the start: both wearables, in order, across pages */
	assert_true(gw_store_foreach_record_since(s, 0, -1, since_cb, &ss, &error));
	assert_int_equal(ss.keys->len, 10 + 600 + 3);
	assert_string_equal(ss.keys->pdata[0], first);
	assert_true(g_str_has_prefix(ss.keys->pdata[609], W1 ":610:"));
	assert_true(g_str_has_prefix(ss.keys->pdata[610], W2 ":11:"));
	g_ptr_array_set_size(ss.keys, 0);

	/* since the later stamp: the first ten are left out */
	assert_true(gw_store_foreach_record_since(s, late.received_us, -1, since_cb, &ss, &error));
	assert_int_equal(ss.keys->len, 603);
	assert_true(g_str_has_prefix(ss.keys->pdata[0], W1 ":11:"));
	g_ptr_array_set_size(ss.keys, 0);

	/* one type: the six pain reports of W1 (seq 18, 118, ...) and W2's none */
	assert_true(gw_store_foreach_record_since(s, 0, WB_RECORD_PAIN, since_cb, &ss, &error));
	assert_int_equal(ss.keys->len, 6);
	assert_true(g_str_has_prefix(ss.keys->pdata[0], W1 ":18:3:"));
	assert_true(g_str_has_prefix(ss.keys->pdata[5], W1 ":518:3:"));
	g_ptr_array_set_size(ss.keys, 0);

	/* nothing after the newest */
	assert_true(gw_store_foreach_record_since(s, late.received_us + 1, -1, since_cb, &ss,
						  &error));
	assert_int_equal(ss.keys->len, 0);

	/* a damaged row stops the walk with an error naming it */
	commit(s);
	g_clear_pointer(&s, gw_store_free);
	raw_exec(fx->path, "UPDATE records SET wire = x'00' WHERE seq = 5");
	s = open_store(fx, 0, 0);
	assert_false(gw_store_foreach_record_since(s, 0, -1, since_cb, &ss, &error));
	assert_true(g_error_matches(error, GW_STORE_ERROR, GW_STORE_ERROR_CORRUPT));
	assert_non_null(strstr(error->message, "seq 5"));
	assert_int_equal(ss.keys->len, 0);	/* the page with it was not handed out */
	g_ptr_array_unref(ss.keys);
}

static void agg_cb(const struct gw_store_aggregate *a, void *ud)
{
	g_ptr_array_add(ud, g_strdup_printf("%s:%s:%d:%d", a->aggregate_id, a->wearable, a->kind,
					    a->revision));
}

static void test_aggregates_since(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 0, 0);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) got = g_ptr_array_new_with_free_func(g_free);
	struct gw_store_aggregate a = { .json = "{}", .revision = 1 };
	static const struct { const char *id, *w; int kind; int64_t start, end; } rows[] = {
		{ "m2", W1, 0, 120, 180 }, { "m1", W1, 0, 60, 120 }, { "d1", W1, 1, 0, 86400 },
		{ "m3", W2, 0, 60, 120 },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
		a.aggregate_id = rows[i].id;
		a.wearable = rows[i].w;
		a.kind = rows[i].kind;
		a.start_us = rows[i].start;
		a.end_us = rows[i].end;
		assert_true(gw_store_put_aggregate(s, &a, &error));
	}
	a.aggregate_id = "m1";
	a.wearable = W1;
	a.kind = 0;
	a.start_us = 60;
	a.end_us = 120;
	a.revision = 2;
	assert_true(gw_store_put_aggregate(s, &a, &error));
	assert_true(gw_store_foreach_aggregate(s, W1, 0, agg_cb, got, &error));
	assert_int_equal(got->len, 3);
	assert_string_equal(got->pdata[0], "m1:" W1 ":0:2");	/* kind, then start */
	assert_string_equal(got->pdata[1], "m2:" W1 ":0:1");
	assert_string_equal(got->pdata[2], "d1:" W1 ":1:1");
	g_ptr_array_set_size(got, 0);
	assert_true(gw_store_foreach_aggregate(s, W1, 120, agg_cb, got, &error));
	assert_int_equal(got->len, 2);		/* m1 ends at 120: not after it */
	assert_string_equal(got->pdata[0], "m2:" W1 ":0:1");
	g_ptr_array_set_size(got, 0);
	assert_true(gw_store_foreach_aggregate(s, NULL, 0, agg_cb, got, &error));
	assert_int_equal(got->len, 4);
}

static void audit_cb(int64_t at_us, const char *event, const char *detail, void *ud)
{
	g_ptr_array_add(ud, g_strdup_printf("%" PRId64 ":%s:%s", at_us, event,
					    detail ? detail : "-"));
}

static void test_outbox_kinds_audit_check(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 0, 0);
	g_autoptr(GError) error = NULL;
	g_autoptr(GHashTable) kinds = NULL;
	g_autoptr(GPtrArray) got = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *res = NULL;
	const char *kind_of[] = { "alert", "pain", "alert", NULL };

	for (size_t i = 0; i < G_N_ELEMENTS(kind_of); i++) {
		g_autofree char *id = g_strdup_printf("k%zu", i);
		g_autoptr(GwOutboxMsg) m = new_msg(id, GW_PRIO_STATUS, 4, 1);

		g_free(m->kind);
		m->kind = g_strdup(kind_of[i]);
		assert_true(gw_store_outbox_put(s, m, &error));
	}
	kinds = gw_store_outbox_kinds(s, &error);
	assert_non_null(kinds);
	assert_int_equal(g_hash_table_size(kinds), 3);
	assert_int_equal(GPOINTER_TO_UINT(g_hash_table_lookup(kinds, "alert")), 2);
	assert_int_equal(GPOINTER_TO_UINT(g_hash_table_lookup(kinds, "pain")), 1);
	assert_int_equal(GPOINTER_TO_UINT(g_hash_table_lookup(kinds, "unknown")), 1);

	assert_true(gw_store_audit_append(s, 10, "a-1", "raised", "tier=urgent", &error));
	assert_true(gw_store_audit_append(s, 11, "a-2", "raised", NULL, &error));
	assert_true(gw_store_audit_append(s, 12, "a-1", "acknowledged", "by=dr", &error));
	assert_true(gw_store_audit_foreach(s, "a-1", audit_cb, got, &error));
	assert_int_equal(got->len, 2);
	assert_string_equal(got->pdata[0], "10:raised:tier=urgent");
	assert_string_equal(got->pdata[1], "12:acknowledged:by=dr");
	assert_false(gw_store_audit_foreach(s, "", audit_cb, got, &error));
	g_clear_error(&error);

	assert_int_equal(gw_store_budget(s), 0);
	gw_store_set_budget(s, 1);
	assert_int_equal(gw_store_budget(s), 1);
	/* an ordinary write is refused at once under the new budget */
	assert_int_equal(add_rec(s, W1, steps(1), &error), -1);
	assert_true(g_error_matches(error, GW_STORE_ERROR, GW_STORE_ERROR_FULL));
	g_clear_error(&error);
	gw_store_set_budget(s, 0);
	assert_int_equal(add_rec(s, W1, steps(1), &error), 1);

	commit(s);
	assert_true(gw_store_check(s, &res, &error));
	assert_string_equal(res, "ok");
}

/* ---- the outbox ---- */

static void test_outbox(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 0, 0);
	g_autoptr(GError) error = NULL;
	g_autoptr(GHashTable) skip = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	g_autoptr(GPtrArray) got = NULL;
	g_autoptr(GwOutboxMsg) dup = new_msg("t1", GW_PRIO_ALERT, 1, 1);
	struct gw_outbox_stats st;
	const char *order[] = { "a1", "a2", "p1", "s1", "t1", "t2" };
	int64_t t1, a1, s1, p1, t2, a2, t3;

	t1 = put_msg(s, "t1", GW_PRIO_TELEMETRY, 30, &error);
	a1 = put_msg(s, "a1", GW_PRIO_ALERT, 20, &error);
	s1 = put_msg(s, "s1", GW_PRIO_STATUS, 10, &error);
	p1 = put_msg(s, "p1", GW_PRIO_PAIN, 0, &error);
	t2 = put_msg(s, "t2", GW_PRIO_TELEMETRY, 40, &error);
	a2 = put_msg(s, "a2", GW_PRIO_ALERT, 50, &error);
	assert_null(error);
	assert_true(t1 < a1 && a1 < s1 && s1 < p1 && p1 < t2 && t2 < a2);

	assert_false(gw_store_outbox_put(s, dup, &error));
	assert_true(g_error_matches(error, GW_STORE_ERROR, GW_STORE_ERROR_INVALID));
	assert_non_null(strstr(error->message, "t1"));
	g_clear_error(&error);

	got = peek(s, 10, NULL);
	assert_int_equal(got->len, 6);
	for (guint i = 0; i < got->len; i++) {
		struct gw_outbox_msg *m = got->pdata[i];
		g_autoptr(GwOutboxMsg) want = new_msg(order[i], m->priority, m->payload_len, 0);

		assert_string_equal(m->msg_id, order[i]);
		assert_string_equal(m->topic, want->topic);
		assert_memory_equal(m->payload, want->payload, want->payload_len + 1);
		assert_int_equal(m->qos, 1);
		assert_int_equal(m->expiry_s, 3600);
		assert_int_equal(m->attempts, 0);
		assert_int_equal(m->created_us, 1000 + (int64_t) m->payload_len);
	}
	g_clear_pointer(&got, g_ptr_array_unref);

	got = peek(s, 2, NULL);
	assert_int_equal(got->len, 2);
	assert_int_equal(((struct gw_outbox_msg *) got->pdata[1])->id, a2);
	g_clear_pointer(&got, g_ptr_array_unref);

	g_hash_table_add(skip, g_memdup2(&a1, sizeof(a1)));	/* in flight */
	g_hash_table_add(skip, g_memdup2(&p1, sizeof(p1)));
	got = peek(s, 3, skip);
	assert_int_equal(got->len, 3);
	assert_int_equal(((struct gw_outbox_msg *) got->pdata[0])->id, a2);
	assert_int_equal(((struct gw_outbox_msg *) got->pdata[1])->id, s1);
	assert_int_equal(((struct gw_outbox_msg *) got->pdata[2])->id, t1);
	g_clear_pointer(&got, g_ptr_array_unref);

	assert_true(gw_store_outbox_attempted(s, a2, &error));
	assert_true(gw_store_outbox_attempted(s, a2, &error));
	assert_false(gw_store_outbox_attempted(s, 9999, &error));
	assert_true(g_error_matches(error, GW_STORE_ERROR, GW_STORE_ERROR_NOT_FOUND));
	g_clear_error(&error);
	got = peek(s, 1, skip);
	assert_int_equal(((struct gw_outbox_msg *) got->pdata[0])->attempts, 2);
	g_clear_pointer(&got, g_ptr_array_unref);

	gw_store_outbox_stats(s, &st);
	assert_int_equal(st.depth, 6);
	assert_int_equal(st.depth_by_prio[GW_PRIO_TELEMETRY], 2);
	assert_int_equal(st.depth_by_prio[GW_PRIO_STATUS], 1);
	assert_int_equal(st.depth_by_prio[GW_PRIO_PAIN], 1);
	assert_int_equal(st.depth_by_prio[GW_PRIO_ALERT], 2);
	assert_int_equal(st.oldest_created_us, 1000);

	/* PUBACK; a replayed PUBACK is no error */
	assert_true(gw_store_outbox_delete(s, a1, &error));
	assert_true(gw_store_outbox_delete(s, a1, &error));
	assert_true(gw_store_outbox_delete(s, a2, &error));	/* the newest id */
	commit(s);
	gw_store_free(g_steal_pointer(&s));

	/* ids only increase, even after the newest was deleted */
	s = open_store(fx, 0, 0);
	t3 = put_msg(s, "t3", GW_PRIO_TELEMETRY, 5, &error);
	assert_true(t3 > a2);
	/* a msg_id no longer queued may come again */
	assert_true(put_msg(s, "a1", GW_PRIO_ALERT, 5, &error) > t3);
	got = peek(s, 10, NULL);
	assert_int_equal(got->len, 6);
	assert_string_equal(((struct gw_outbox_msg *) got->pdata[0])->msg_id, "a1");
	assert_int_equal(((struct gw_outbox_msg *) got->pdata[1])->id, p1);
	commit(s);
}

/* ---- alerts and audit ---- */

struct alert_seen {
	GString *ids;
	int64_t updated_us;
};

static void collect_alert(const struct gw_store_alert *a, void *user_data)
{
	struct alert_seen *seen = user_data;

	g_string_append_printf(seen->ids, "%s:%s:%d:%d;", a->alert_id, a->rule, a->tier, a->state);
	if (strcmp(a->alert_id, "al-2") == 0)
		seen->updated_us = a->updated_us;
}

static void test_alerts(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 0, 0);
	g_autoptr(GError) error = NULL;
	struct alert_seen seen = { .ids = g_string_new(NULL) };
	struct gw_store_alert a = {
		.alert_id = "al-2", .rule = "no_steps", .patient = "p1", .tier = 1, .state = 0,
		.opened_us = 200, .updated_us = 200, .json = "{}",
	};

	assert_true(gw_store_alert_put(s, &a, &error));
	a.alert_id = "al-1";
	a.rule = "red_flag";
	a.opened_us = 100;
	assert_true(gw_store_alert_put(s, &a, &error));
	a.alert_id = "al-2";		/* re-notified, acknowledged: replaced */
	a.rule = "no_steps";
	a.opened_us = 200;
	a.updated_us = 900;
	a.state = 2;
	assert_true(gw_store_alert_put(s, &a, &error));
	commit(s);
	assert_true(gw_store_alert_foreach(s, collect_alert, &seen, &error));
	assert_string_equal(seen.ids->str, "al-1:red_flag:1:0;al-2:no_steps:1:2;");
	assert_int_equal(seen.updated_us, 900);
	g_string_free(seen.ids, TRUE);
}

static void test_audit_chain(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 0, 0);
	g_autoptr(GError) error = NULL;
	g_autofree char *h1 = spec_hash(ZERO_HASH, 1, 100, "al-1", "opened", "tier=urgent");
	g_autofree char *h2 = spec_hash(h1, 2, 200, NULL, "gateway_start", NULL);
	g_autofree char *stored = NULL;
	g_autofree char *forged = NULL;
	g_autofree char *sql = NULL;
	g_autofree char *h3 = NULL;
	int64_t bad = 0;

	assert_true(gw_store_audit_append(s, 100, "al-1", "opened", "tier=urgent", &error));
	assert_true(gw_store_audit_append(s, 200, NULL, "gateway_start", NULL, &error));
	assert_true(gw_store_audit_append(s, 300, "al-1", "notified", "clinic", &error));
	assert_true(gw_store_audit_append(s, 400, "al-1", "acked", "nurse 7", &error));
	assert_true(gw_store_audit_append(s, 500, "al-1", "closed", "", &error));
	assert_false(gw_store_audit_append(s, 600, "al-1", NULL, "x", &error));
	g_clear_error(&error);
	assert_int_equal(gw_store_audit_count(s), 5);
	assert_true(gw_store_audit_verify(s, &bad, &error));
	commit(s);

	/* the chain is the specified one: from 64 zeros, over every field */
	stored = raw_text(fx->path, "SELECT hash FROM audit WHERE seq <= 2 ORDER BY seq");
	forged = g_strdup_printf("%s\n%s\n", h1, h2);
	assert_string_equal(stored, forged);
	g_clear_pointer(&forged, g_free);

	/* an entry changed behind the store's back */
	raw_exec(fx->path, "UPDATE audit SET detail = 'nurse 8' WHERE seq = 4");
	assert_false(gw_store_audit_verify(s, &bad, &error));
	assert_true(g_error_matches(error, GW_STORE_ERROR, GW_STORE_ERROR_CORRUPT));
	assert_int_equal(bad, 4);
	g_clear_error(&error);
	/* ... with its hash recomputed: the next entry no longer chains */
	h3 = raw_hash(fx->path, 3);
	forged = spec_hash(h3, 4, 400, "al-1", "acked", "nurse 8");
	sql = g_strdup_printf("UPDATE audit SET hash = '%s' WHERE seq = 4", forged);
	raw_exec(fx->path, sql);
	assert_false(gw_store_audit_verify(s, &bad, &error));
	assert_int_equal(bad, 5);
	g_clear_error(&error);
	/* put back: whole again */
	g_free(forged);
	g_free(sql);
	forged = spec_hash(h3, 4, 400, "al-1", "acked", "nurse 7");
	sql = g_strdup_printf("UPDATE audit SET detail = 'nurse 7', hash = '%s' WHERE seq = 4",
			      forged);
	raw_exec(fx->path, sql);
	assert_true(gw_store_audit_verify(s, &bad, &error));

	/* an entry deleted */
	raw_exec(fx->path, "DELETE FROM audit WHERE seq = 2");
	assert_false(gw_store_audit_verify(s, &bad, &error));
	assert_true(g_error_matches(error, GW_STORE_ERROR, GW_STORE_ERROR_CORRUPT));
	assert_int_equal(bad, 3);
	assert_non_null(strstr(error->message, "entry 2 is missing"));
	assert_non_null(strstr(error->message, fx->path));
}

/* ---- migrations ---- */

/* Version 1 as it was released: frozen here, like a file an older build
 * left behind. */
static const char v1_schema[] =
	"PRAGMA auto_vacuum = INCREMENTAL;"
	"PRAGMA journal_mode = WAL;"
	"BEGIN;"
	"CREATE TABLE records ("
	" id INTEGER PRIMARY KEY,"
	" wearable TEXT NOT NULL,"
	" seq INTEGER NOT NULL,"
	" type INTEGER NOT NULL,"
	" version INTEGER NOT NULL,"
	" time INTEGER NOT NULL,"
	" time_quality INTEGER NOT NULL,"
	" wire BLOB NOT NULL,"
	" received_us INTEGER NOT NULL,"
	" clock_synced INTEGER NOT NULL,"
	" mono_us INTEGER NOT NULL,"
	" boot_id TEXT,"
	" aggregated INTEGER NOT NULL DEFAULT 0,"
	" UNIQUE (wearable, seq));"
	"CREATE INDEX records_unaggregated ON records (wearable, seq) WHERE aggregated = 0;"
	"CREATE TABLE cursors ("
	" wearable TEXT PRIMARY KEY,"
	" seq INTEGER NOT NULL);"
	"CREATE TABLE aggregates ("
	" aggregate_id TEXT PRIMARY KEY,"
	" wearable TEXT NOT NULL,"
	" kind INTEGER NOT NULL,"
	" start_us INTEGER NOT NULL,"
	" end_us INTEGER NOT NULL,"
	" revision INTEGER NOT NULL,"
	" json TEXT NOT NULL);"
	"CREATE TABLE outbox ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" msg_id TEXT NOT NULL UNIQUE,"
	" kind TEXT,"
	" priority INTEGER NOT NULL,"
	" topic TEXT NOT NULL,"
	" payload BLOB NOT NULL,"
	" qos INTEGER NOT NULL,"
	" retain INTEGER NOT NULL,"
	" expiry_s INTEGER NOT NULL,"
	" created_us INTEGER NOT NULL);"
	"CREATE INDEX outbox_drain ON outbox (priority DESC, id);"
	"CREATE TABLE alerts ("
	" alert_id TEXT PRIMARY KEY,"
	" rule TEXT,"
	" patient TEXT,"
	" tier INTEGER NOT NULL,"
	" state INTEGER NOT NULL,"
	" opened_us INTEGER NOT NULL,"
	" updated_us INTEGER NOT NULL,"
	" json TEXT);"
	"CREATE TABLE audit ("
	" seq INTEGER PRIMARY KEY,"
	" at_us INTEGER NOT NULL,"
	" alert_id TEXT,"
	" event TEXT NOT NULL,"
	" detail TEXT,"
	" hash TEXT NOT NULL);"
	"PRAGMA user_version = 1;"
	"COMMIT;";

static void v1_store(const char *path)
{
	sqlite3 *db = raw_open(path);
	sqlite3_stmt *st = NULL;
	g_autofree char *h1 = spec_hash(ZERO_HASH, 1, 10, "al-9", "opened", "v1");
	g_autofree char *sql = NULL;
	char *msg = NULL;

	if (sqlite3_exec(db, v1_schema, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("v1 schema: %s", msg);
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO records (wearable, seq, type, version,"
					    " time, time_quality, wire, received_us, clock_synced,"
					    " mono_us, boot_id, aggregated) VALUES (?, ?, 2, 1, ?, 1,"
					    " ?, 5, 1, 6, 'b', ?)", -1, &st, NULL), SQLITE_OK);
	for (uint32_t seq = 1; seq <= 5; seq++) {
		struct wb_record r = steps(seq);
		uint8_t wire[64];
		ssize_t len = wb_record_encode(&r, wire, sizeof(wire));

		assert_true(len > 0);
		sqlite3_bind_text(st, 1, W1, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, seq);
		sqlite3_bind_int64(st, 3, r.time);
		sqlite3_bind_blob(st, 4, wire, (int) len, SQLITE_TRANSIENT);
		sqlite3_bind_int(st, 5, seq <= 2);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	sql = g_strdup_printf(
		"INSERT INTO cursors VALUES ('" W1 "', 5);"
		"INSERT INTO outbox (msg_id, kind, priority, topic, payload, qos, retain, expiry_s,"
		" created_us) VALUES ('old-1', 'alert', 3, 't/a', x'7b7d', 1, 0, 0, 77);"
		"INSERT INTO alerts VALUES ('al-9', 'r', 'p', 2, 0, 10, 10, '{}');"
		"INSERT INTO audit VALUES (1, 10, 'al-9', 'opened', 'v1', '%s');"
		"INSERT INTO aggregates VALUES ('agg-9', '" W1 "', 0, 0, 60, 4, '{}');", h1);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("v1 data: %s", msg);
	sqlite3_close(db);
}

static void test_migrate_from_v0(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = NULL;
	g_autoptr(GError) error = NULL;

	/* version 0: an empty file, and a database with nothing in it */
	assert_true(g_file_set_contents(fx->path, "", 0, NULL));
	s = open_store(fx, 0, 0);
	assert_int_equal(add(s, W1, 1, 2), 2);
	assert_true(gw_store_device_set(s, W1, "k", "v", &error));
	gw_store_free(g_steal_pointer(&s));
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), GW_STORE_SCHEMA_VERSION);
}

static void test_migrate_from_v1(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) recs = g_array_new(FALSE, FALSE, sizeof(struct wb_record));
	struct seen seen = { .recs = recs, .stamps_ok = true };
	g_autoptr(GPtrArray) got = NULL;
	g_autofree char *v = NULL;
	g_autofree char *migrated = NULL;
	g_autofree char *fresh = NULL;
	g_autofree char *fresh_path = g_build_filename(fx->dir, "fresh.db", NULL);
	struct gw_outbox_msg *m;

	v1_store(fx->path);
	s = open_store(fx, 0, 0);
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), GW_STORE_SCHEMA_VERSION);

	/* the data kept */
	assert_int_equal(gw_store_record_count(s, W1), 5);
	assert_int_equal(cursor_of(s, W1), 5);
	assert_true(gw_store_foreach_unaggregated(s, W1, collect, &seen, &error));
	assert_int_equal(recs->len, 3);
	assert_int_equal(g_array_index(recs, struct wb_record, 0).seq, 3);
	assert_int_equal(gw_store_aggregate_revision(s, "agg-9"), 4);
	assert_true(gw_store_audit_verify(s, NULL, &error));
	assert_true(gw_store_audit_append(s, 20, "al-9", "closed", NULL, &error));
	assert_true(gw_store_audit_verify(s, NULL, &error));

	/* the new parts work: attempts, device state */
	got = peek(s, 10, NULL);
	assert_int_equal(got->len, 1);
	m = got->pdata[0];
	assert_string_equal(m->msg_id, "old-1");
	assert_int_equal(m->attempts, 0);
	assert_int_equal(m->payload_len, 2);
	assert_true(gw_store_outbox_attempted(s, m->id, &error));
	assert_true(gw_store_device_set(s, W1, "firmware", "2.0", &error));
	v = gw_store_device_get(s, W1, "firmware");
	assert_string_equal(v, "2.0");
	commit(s);
	gw_store_free(g_steal_pointer(&s));
	assert_int_equal(raw_int(fx->path, "SELECT attempts FROM outbox"), 1);

	/* and the schema is the one a fresh store gets */
	s = try_open(fresh_path, 0, 0, &error);
	assert_non_null(s);
	gw_store_free(g_steal_pointer(&s));
	migrated = raw_text(fx->path, "SELECT type || ' ' || name || ' ' || ifnull(sql, '')"
			    " FROM sqlite_schema ORDER BY name");
	fresh = raw_text(fresh_path, "SELECT type || ' ' || name || ' ' || ifnull(sql, '')"
			 " FROM sqlite_schema ORDER BY name");
	assert_string_equal(migrated, fresh);
	assert_non_null(strstr(fresh, "attempts INTEGER NOT NULL DEFAULT 0"));
}

/* Step 1 -> 2 as it was released, frozen like v1_schema. */
static const char v2_step[] =
	"BEGIN;"
	"ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE device_state ("
	" wearable TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" value TEXT NOT NULL,"
	" PRIMARY KEY (wearable, key)) WITHOUT ROWID;"
	"PRAGMA user_version = 2;"
	"COMMIT;";

static void v2_store(const char *path)
{
	v1_store(path);
	raw_exec(path, v2_step);
	raw_exec(path, "UPDATE outbox SET attempts = 2;"
		 "INSERT INTO device_state VALUES ('" W1 "', 'firmware', '1.4');");
}

#define BOOT2 "0c3e9d7a-55b1-4c1e-8f7e-2a9d6b1c0e42"

/* A record as schemas 1 and 2 stored it. */
static void old_record(sqlite3 *db, const char *w, struct wb_record r, const char *boot,
		       int64_t received_us, int synced, int64_t mono_us, int aggregated)
{
	sqlite3_stmt *st = NULL;
	uint8_t wire[64];
	ssize_t len = wb_record_encode(&r, wire, sizeof(wire));

	assert_true(len > 0);
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO records (wearable, seq, type, version,"
					    " time, time_quality, wire, received_us, clock_synced,"
					    " mono_us, boot_id, aggregated) VALUES (?1, ?2, ?3, ?4,"
					    " ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)", -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, w, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, r.seq);
	sqlite3_bind_int(st, 3, r.type);
	sqlite3_bind_int(st, 4, r.version);
	sqlite3_bind_int64(st, 5, r.time);
	sqlite3_bind_int(st, 6, r.time_quality);
	sqlite3_bind_blob(st, 7, wire, (int) len, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 8, received_us);
	sqlite3_bind_int(st, 9, synced);
	sqlite3_bind_int64(st, 10, mono_us);
	if (boot)
		sqlite3_bind_text(st, 11, boot, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 12, aggregated);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

/* More records on top of v1_store's (W1 1..5, 1 and 2 aggregated, boot
 * "b"): W1 6 aggregated after unaggregated ones and W1 7 a pain report,
 * both from another boot with an unsynchronised clock; W2 1..4 all
 * aggregated, 3 a pain report, 1 without a boot id; W3 1..2 none
 * aggregated, without a cursor. */
static void old_records(const char *path)
{
	sqlite3 *db = raw_open(path);

	old_record(db, W1, steps(6), BOOT2, 7, 0, 8, 1);
	old_record(db, W1, pain(7, 8), BOOT2, 7, 0, 8, 0);
	old_record(db, W2, steps(1), NULL, 9, 1, 10, 1);
	old_record(db, W2, steps(2), BOOT2, 9, 1, 10, 1);
	old_record(db, W2, pain(3, 4), BOOT2, 9, 1, 10, 1);
	old_record(db, W2, steps(4), BOOT2, 9, 1, 10, 1);
	old_record(db, W3, steps(1), "b", 11, 1, 12, 0);
	old_record(db, W3, steps(2), "b", 11, 1, 12, 0);
	sqlite3_close(db);
	raw_exec(path, "INSERT INTO cursors VALUES ('" W2 "', 4)");
}

struct stamped {
	GArray *seqs;		/* uint32_t */
	GString *stamps;	/* "seq:received/synced/mono/boot;" */
	GArray *recs;		/* struct wb_record */
};

static void collect_stamped(const struct gw_store_record *r, void *user_data)
{
	struct stamped *st = user_data;

	g_array_append_val(st->seqs, r->rec.seq);
	g_array_append_val(st->recs, r->rec);
	g_string_append_printf(st->stamps, "%" PRIu32 ":%" PRId64 "/%d/%" PRId64 "/%s;",
			       r->rec.seq, r->stamp.received_us, r->stamp.clock_synced,
			       r->stamp.mono_us, r->stamp.boot_id ? r->stamp.boot_id : "-");
}

static char *unaggregated_stamps(GwStore *s, const char *w)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) seqs = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	g_autoptr(GArray) recs = g_array_new(FALSE, FALSE, sizeof(struct wb_record));
	struct stamped st = { .seqs = seqs, .stamps = g_string_new(NULL), .recs = recs };

	if (!gw_store_foreach_unaggregated(s, w, collect_stamped, &st, &error))
		fail_msg("foreach %s: %s", w, error->message);
	for (guint i = 0; i < recs->len; i++) {
		const struct wb_record *r = &g_array_index(recs, struct wb_record, i);
		struct wb_record want = r->type == WB_RECORD_PAIN ? pain(r->seq, 8) : steps(r->seq);

		assert_true(wb_record_equal(r, &want));
	}
	return g_string_free(st.stamps, FALSE);
}

/* Records of two boots and three wearables, some aggregated and some not:
 * after the migration the records, stamps, cursors, the aggregated state
 * (as foreach_unaggregated and shedding see it) and the pain reports are
 * as they were, and the schema is a fresh store's. */
static void check_migrated_records(struct fx *fx, bool from_v2)
{
	g_autoptr(GwStore) s = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) ws = NULL;
	g_autoptr(GPtrArray) got = NULL;
	g_autofree char *stamps = NULL;
	g_autofree char *v = NULL;
	g_autofree char *migrated = NULL;
	g_autofree char *fresh = NULL;
	g_autofree char *fresh_path = g_build_filename(fx->dir, "fresh.db", NULL);
	struct gw_store_shed shed = { 0 };
	uint32_t seq;

	s = open_store(fx, 0, 0);
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), GW_STORE_SCHEMA_VERSION);
	assert_int_equal(gw_store_record_count(s, W1), 7);
	assert_int_equal(gw_store_record_count(s, W2), 4);
	assert_int_equal(gw_store_record_count(s, W3), 2);
	assert_int_equal(gw_store_record_count(s, NULL), 13);
	assert_int_equal(cursor_of(s, W1), 5);
	assert_int_equal(cursor_of(s, W2), 4);
	assert_false(gw_store_get_cursor(s, W3, &seq));
	assert_true(gw_store_has_record(s, W1, 7));	/* the pain reports */
	assert_true(gw_store_has_record(s, W2, 3));
	ws = gw_store_wearables(s);
	assert_int_equal(ws->len, 3);

	/* the watermark: up to the first unaggregated record; W1 6 was
	 * aggregated after it and comes back */
	stamps = unaggregated_stamps(s, W1);
	assert_string_equal(stamps, "3:5/1/6/b;4:5/1/6/b;5:5/1/6/b;"
			    "6:7/0/8/" BOOT2 ";7:7/0/8/" BOOT2 ";");
	g_free(stamps);
	stamps = unaggregated_stamps(s, W2);
	assert_string_equal(stamps, "");
	g_free(stamps);
	stamps = unaggregated_stamps(s, W3);
	assert_string_equal(stamps, "1:11/1/12/b;2:11/1/12/b;");

	if (from_v2) {
		v = gw_store_device_get(s, W1, "firmware");
		assert_string_equal(v, "1.4");
		got = peek(s, 10, NULL);
		assert_int_equal(got->len, 1);
		assert_int_equal(((struct gw_outbox_msg *) got->pdata[0])->attempts, 2);
	}

	/* and it goes on: the cursor over what is held, the watermark */
	assert_int_equal(add(s, W1, 8, 8), 1);
	assert_int_equal(cursor_of(s, W1), 8);
	assert_true(gw_store_mark_aggregated(s, W1, 3, 8, &error));
	commit(s);
	gw_store_free(g_steal_pointer(&s));

	/* shedding: everything aggregated up to the cursors, never a pain
	 * report, nothing of W3 (none aggregated) */
	s = open_store(fx, 8 * KIB, 0);
	assert_true(gw_store_enforce_budget(s, &shed, &error));
	assert_int_equal(shed.records, 7 + 3);
	assert_int_equal(gw_store_record_count(s, W1), 1);
	assert_true(gw_store_has_record(s, W1, 7));
	assert_int_equal(gw_store_record_count(s, W2), 1);
	assert_true(gw_store_has_record(s, W2, 3));
	assert_int_equal(gw_store_record_count(s, W3), 2);
	assert_true(gw_store_audit_verify(s, NULL, &error));
	gw_store_free(g_steal_pointer(&s));

	s = try_open(fresh_path, 0, 0, &error);
	assert_non_null(s);
	gw_store_free(g_steal_pointer(&s));
	migrated = raw_text(fx->path, "SELECT type || ' ' || name || ' ' || ifnull(sql, '')"
			    " FROM sqlite_schema ORDER BY name");
	fresh = raw_text(fresh_path, "SELECT type || ' ' || name || ' ' || ifnull(sql, '')"
			 " FROM sqlite_schema ORDER BY name");
	assert_string_equal(migrated, fresh);
	assert_non_null(strstr(fresh, "WITHOUT ROWID"));
	assert_null(strstr(fresh, "records_v2"));
}

static void test_migrate_records_from_v1(void **state)
{
	struct fx *fx = *state;

	v1_store(fx->path);
	old_records(fx->path);
	check_migrated_records(fx, false);
}

static void test_migrate_records_from_v2(void **state)
{
	struct fx *fx = *state;

	v2_store(fx->path);
	old_records(fx->path);
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), 2);
	check_migrated_records(fx, true);
}

/* Step 2 -> 3 failing half way (after the old table was renamed) leaves
 * schema 2 as it was. */
static void test_migration_2_to_3_is_atomic(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GError) error = NULL;
	g_autofree char *tables = NULL;
	GwStore *s;

	v2_store(fx->path);
	old_records(fx->path);
	raw_exec(fx->path, "CREATE TABLE boots (x)");		/* in the way of 2 -> 3 */
	s = try_open(fx->path, 0, 0, &error);
	assert_null(s);
	assert_non_null(strstr(error->message, "version 2 to 3"));
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), 2);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM records WHERE aggregated = 0"), 6);
	tables = raw_text(fx->path, "SELECT name FROM sqlite_schema WHERE type = 'table'"
			  " AND name NOT LIKE 'sqlite_%' ORDER BY name");
	assert_string_equal(tables, "aggregates\nalerts\naudit\nboots\ncursors\ndevice_state\n"
			    "outbox\nrecords\n");
}

/* A step that fails leaves the file at the version before it. */
static void test_migration_step_is_atomic(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GError) error = NULL;
	GwStore *s;

	v1_store(fx->path);
	raw_exec(fx->path, "CREATE TABLE device_state (x)");	/* in the way of 1 -> 2 */
	s = try_open(fx->path, 0, 0, &error);
	assert_null(s);
	assert_non_null(error);
	assert_non_null(strstr(error->message, "version 1 to 2"));
	assert_non_null(strstr(error->message, fx->path));
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), 1);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM pragma_table_info('outbox')"
				 " WHERE name = 'attempts'"), 0);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM records"), 5);
}

static void test_newer_schema_refused_untouched(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 0, 0);
	g_autoptr(GError) error = NULL;
	g_autofree char *before = NULL;
	g_autofree char *after = NULL;
	g_autofree char *newer = NULL;
	gsize before_len = 0, after_len = 0;

	add(s, W1, 1, 3);
	gw_store_free(g_steal_pointer(&s));
	newer = g_strdup_printf("PRAGMA user_version = %d", GW_STORE_SCHEMA_VERSION + 1);
	raw_exec(fx->path, newer);
	assert_true(g_file_get_contents(fx->path, &before, &before_len, NULL));

	s = try_open(fx->path, 0, 0, &error);
	assert_null(s);
	assert_true(g_error_matches(error, GW_STORE_ERROR, GW_STORE_ERROR_SCHEMA));
	assert_non_null(strstr(error->message, fx->path));
	assert_true(g_file_get_contents(fx->path, &after, &after_len, NULL));
	assert_int_equal(before_len, after_len);
	assert_memory_equal(before, after, before_len);
}

/* ---- corruption ---- */

static bool is_aside_of(const char *aside, const char *path, const char *suffix)
{
	g_autofree char *prefix = g_strconcat(path, ".corrupt-", NULL);
	const char *stamp_at = aside + strlen(prefix);

	if (!g_str_has_prefix(aside, prefix) || strlen(stamp_at) != 16 + strlen(suffix) ||
	    stamp_at[8] != 'T' || stamp_at[15] != 'Z' || strcmp(stamp_at + 16, suffix) != 0)
		return false;
	for (int i = 0; i < 15; i++)
		if (i != 8 && !g_ascii_isdigit(stamp_at[i]))
			return false;
	return true;
}

static void test_corrupt_header_moved_aside(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 0, 0);
	g_autoptr(GError) error = NULL;
	g_autofree char *wal = g_strconcat(fx->path, "-wal", NULL);
	g_autofree char *aside_wal = NULL;
	g_autofree char *content = NULL;
	g_autofree char *aside = NULL;
	gsize len = 0;

	add(s, W1, 1, 50);
	gw_store_free(g_steal_pointer(&s));
	garble_header(fx->path, 0xa5);
	assert_true(g_file_set_contents(wal, "not a wal either", -1, NULL));

	s = open_store(fx, 0, 0);
	aside = g_strdup(gw_store_corrupt_aside(s));
	assert_non_null(aside);
	assert_true(is_aside_of(aside, fx->path, ""));
	/* moved as found, -wal with it */
	assert_true(g_file_get_contents(aside, &content, &len, NULL));
	assert_int_equal((guint8) content[0], 0xa5);
	aside_wal = g_strconcat(aside, "-wal", NULL);
	g_clear_pointer(&content, g_free);
	assert_true(g_file_get_contents(aside_wal, &content, NULL, NULL));
	assert_string_equal(content, "not a wal either");
	/* and a fresh, working store in its place */
	assert_int_equal(gw_store_record_count(s, NULL), 0);
	assert_int_equal(add(s, W1, 1, 3), 3);
	commit(s);
	gw_store_free(g_steal_pointer(&s));
	s = open_store(fx, 0, 0);
	assert_null(gw_store_corrupt_aside(s));
	assert_int_equal(gw_store_record_count(s, W1), 3);
	gw_store_free(g_steal_pointer(&s));

	/* the name taken (same second): a -N suffix */
	assert_true(g_file_set_contents(fx->path, "garbage that is not SQLite at all, "
					"long enough to have a header........................"
					"............................................", -1, NULL));
	{
		g_autoptr(GDateTime) now = g_date_time_new_now_utc();

		for (int i = 0; i < 5; i++) {
			g_autoptr(GDateTime) t = g_date_time_add_seconds(now, i);
			g_autofree char *ts = g_date_time_format(t, "%Y%m%dT%H%M%SZ");
			g_autofree char *taken = g_strdup_printf("%s.corrupt-%s", fx->path, ts);

			assert_true(g_file_set_contents(taken, "x", -1, NULL));
		}
	}
	s = try_open(fx->path, 0, 0, &error);
	assert_non_null(s);
	assert_true(is_aside_of(gw_store_corrupt_aside(s), fx->path, "-1"));
}

static void test_corrupt_pages_moved_aside(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 0, 0);
	g_autoptr(GRand) rand = g_rand_new_with_seed(42);
	g_autofree char *content = NULL;
	gsize len = 0;

	add(s, W1, 1, 2000);
	gw_store_free(g_steal_pointer(&s));
	/* page 1 (the header and the schema) intact, the rest garbage */
	assert_true(g_file_get_contents(fx->path, &content, &len, NULL));
	assert_true(len > 8 * 4096);
	for (gsize i = 4096; i < len; i++)
		content[i] = (char) g_rand_int_range(rand, 0, 256);
	assert_true(g_file_set_contents(fx->path, content, (gssize) len, NULL));

	s = open_store(fx, 0, 0);
	assert_non_null(gw_store_corrupt_aside(s));
	assert_true(is_aside_of(gw_store_corrupt_aside(s), fx->path, ""));
	assert_int_equal(file_size(gw_store_corrupt_aside(s)), len);
	assert_int_equal(gw_store_record_count(s, NULL), 0);
	assert_int_equal(add(s, W1, 1, 3), 3);
	commit(s);
}

/* ---- the budget ---- */

/* Adds steps records to w from first on, committing now and then, until
 * the store refuses them for the budget; returns the last seq stored.
 * Leaves the store at the budget: no commit after the refusal (a commit
 * may cut the WAL back, and the size below the budget again). */
static uint32_t fill_records(GwStore *s, const char *w, uint32_t first)
{
	for (uint32_t seq = first; seq < first + 200000; seq += WB_BATCH_MAX) {
		g_autoptr(GError) error = NULL;
		struct wb_record r[WB_BATCH_MAX];
		int n;

		for (uint32_t i = 0; i < WB_BATCH_MAX; i++)
			r[i] = steps(seq + i);
		n = gw_store_add_records(s, w, r, WB_BATCH_MAX, &stamp, &error);
		if (n < 0) {
			assert_true(g_error_matches(error, GW_STORE_ERROR, GW_STORE_ERROR_FULL));
			return seq - 1;
		}
		assert_int_equal(n, WB_BATCH_MAX);
		if (seq % (4 * WB_BATCH_MAX) == 1)
			commit(s);
	}
	fail_msg("the budget never filled");
	return 0;
}

/* Puts messages "<prefix>-N" of len bytes at prio, committing now and
 * then, until the store refuses one with FULL (and leaves it there, as
 * fill_records); returns how many went in. */
static int fill_outbox(GwStore *s, const char *prefix, int prio, size_t len)
{
	for (int i = 0; i < 10000; i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *id = g_strdup_printf("%s-%d", prefix, i);

		if (put_msg(s, id, prio, len, &error) < 0) {
			assert_true(g_error_matches(error, GW_STORE_ERROR, GW_STORE_ERROR_FULL));
			return i;
		}
		if (i % 8 == 7)
			commit(s);
	}
	fail_msg("the budget never filled");
	return 0;
}

static void assert_full(GError *error)
{
	assert_non_null(error);
	if (!g_error_matches(error, GW_STORE_ERROR, GW_STORE_ERROR_FULL))
		fail_msg("not FULL: %s", error->message);
}


static uint64_t low_mark(uint64_t budget)
{
	return budget - budget / 10;
}

/* Raw records already aggregated go first, oldest first, never a pain
 * report, never past the cursor; the outbox stays as it is while that
 * is enough. */
static void test_budget_sheds_aggregated_records(void **state)
{
	struct fx *fx = *state;
	const uint64_t budget = 768 * KIB, small = 512 * KIB;
	g_autoptr(GwStore) s = open_store(fx, budget, 64 * KIB);
	g_autoptr(GError) error = NULL;
	struct gw_store_aggregate agg = {
		.aggregate_id = "agg", .wearable = W1, .revision = 1, .json = "{}",
	};
	struct gw_store_shed shed = { 99, 99 };
	struct wb_record pains[3] = { pain(1, 5), pain(2, 6), pain(3, 9) };
	uint32_t last, first_kept = 0;
	int64_t t0;

	/* W2: 1..5, a gap, 7..10, all aggregated: only 1..5 may go */
	add(s, W2, 1, 5);
	add(s, W2, 7, 10);
	assert_true(gw_store_mark_aggregated(s, W2, 1, 10, &error));
	/* W3: pain reports, aggregated too */
	assert_int_equal(gw_store_add_records(s, W3, pains, 3, &stamp, &error), 3);
	assert_true(gw_store_mark_aggregated(s, W3, 1, 3, &error));
	t0 = put_msg(s, "t0", GW_PRIO_TELEMETRY, 100, &error);
	assert_true(t0 > 0);
	commit(s);

	last = fill_records(s, W1, 1);
	assert_true(gw_store_size(s) >= budget);
	assert_true(last > 2000);

	/* at the budget: ordinary writes are refused before they start ... */
	assert_int_equal(add_rec(s, W1, steps(last + 1), &error), -1);
	assert_full(error);
	assert_non_null(strstr(error->message, fx->path));
	g_clear_error(&error);
	assert_int_equal(put_msg(s, "t1", GW_PRIO_TELEMETRY, 10, &error), -1);
	assert_full(error);
	g_clear_error(&error);
	assert_false(gw_store_put_aggregate(s, &agg, &error));
	assert_full(error);
	g_clear_error(&error);
	assert_false(gw_store_device_set(s, W1, "k", "v", &error));
	assert_full(error);
	g_clear_error(&error);
	/* ... updates are not: shedding depends on them */
	assert_true(gw_store_mark_aggregated(s, W1, 1, last / 2, &error));
	assert_true(gw_store_outbox_attempted(s, t0, &error));
	commit(s);
	gw_store_free(g_steal_pointer(&s));

	/* checkpointing and vacuuming alone would do for this budget: a
	 * lower one (a configuration change) makes shedding needed */
	s = open_store(fx, small, 64 * KIB);
	assert_true(gw_store_enforce_budget(s, &shed, &error));
	assert_true(shed.records > 5);
	assert_int_equal(shed.telemetry, 0);
	assert_true(gw_store_size(s) <= low_mark(small));
	for (uint32_t seq = 1; seq <= 5; seq++)
		assert_false(gw_store_has_record(s, W2, seq));
	for (uint32_t seq = 7; seq <= 10; seq++)	/* past W2's cursor (5) */
		assert_true(gw_store_has_record(s, W2, seq));
	assert_int_equal(gw_store_record_count(s, W3), 3);
	/* W1 oldest first: what is left of the aggregated half is its end */
	for (uint32_t seq = 1; seq <= last / 2; seq++) {
		if (gw_store_has_record(s, W1, seq)) {
			if (!first_kept)
				first_kept = seq;
		} else {
			assert_int_equal(first_kept, 0);
		}
	}
	assert_true(first_kept > 1);
	assert_int_equal(gw_store_record_count(s, W1), last - (shed.records - 5));
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM records r JOIN wearables w"
				 " ON w.id = r.wearable_id WHERE r.seq > w.aggregated_seq"),
			 last - last / 2);	/* all of W1's second half */
	assert_true(msg_queued(s, t0));
	assert_false(gw_store_reserve_used(s));

	/* room again */
	assert_int_equal(add(s, W1, last + 1, last + 32), 32);
	assert_true(gw_store_put_aggregate(s, &agg, &error));
	commit(s);
}

/* Shedding across the wrap: the seqs before 0 are the oldest; up to the
 * watermark (here before the cursor) and never a pain report. */
static void test_budget_sheds_across_wrap(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 0, 0);
	g_autoptr(GError) error = NULL;
	struct gw_store_shed shed = { 0 };

	assert_true(gw_store_advance_cursor(s, W1, UINT32_MAX - 10, &error));
	add(s, W1, UINT32_MAX - 9, UINT32_MAX);
	assert_int_equal(add_rec(s, W1, pain(0, 6), &error), 1);
	add(s, W1, 1, 20);
	assert_int_equal(cursor_of(s, W1), 20);
	assert_true(gw_store_mark_aggregated(s, W1, UINT32_MAX - 9, 5, &error));
	commit(s);
	gw_store_free(g_steal_pointer(&s));

	s = open_store(fx, 8 * KIB, 0);
	assert_true(gw_store_enforce_budget(s, &shed, &error));
	assert_int_equal(shed.records, 10 + 5);
	assert_int_equal(gw_store_record_count(s, W1), 1 + 15);
	assert_true(gw_store_has_record(s, W1, 0));
	for (uint32_t seq = 1; seq <= 5; seq++)
		assert_false(gw_store_has_record(s, W1, seq));
	for (uint32_t seq = 6; seq <= 20; seq++)
		assert_true(gw_store_has_record(s, W1, seq));
	assert_false(gw_store_has_record(s, W1, UINT32_MAX));
}

/* Once no aggregated record is left, the oldest telemetry goes; status,
 * pain and alert messages, unaggregated records never. */
static void test_budget_sheds_oldest_telemetry(void **state)
{
	struct fx *fx = *state;
	const uint64_t budget = 256 * KIB, small = 192 * KIB;
	g_autoptr(GwStore) s = open_store(fx, budget, 64 * KIB);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) left = NULL;
	g_autoptr(GHashTable) names = g_hash_table_new(g_str_hash, g_str_equal);
	struct gw_store_shed shed = { 0 };
	int64_t s1, p1, a1;
	int n;

	add(s, W1, 1, 20);
	assert_true(gw_store_mark_aggregated(s, W1, 1, 20, &error));
	add(s, W2, 1, 20);
	s1 = put_msg(s, "s1", GW_PRIO_STATUS, 1500, &error);
	p1 = put_msg(s, "p1", GW_PRIO_PAIN, 1500, &error);
	a1 = put_msg(s, "a1", GW_PRIO_ALERT, 1500, &error);
	assert_true(gw_store_alert_put(s, &(struct gw_store_alert) {
		.alert_id = "al-1", .tier = 1, .opened_us = 1, .updated_us = 1 }, &error));
	assert_true(gw_store_audit_append(s, 1, "al-1", "opened", NULL, &error));
	commit(s);
	n = fill_outbox(s, "t", GW_PRIO_TELEMETRY, 1500);
	assert_true(n > 40);
	commit(s);
	gw_store_free(g_steal_pointer(&s));

	s = open_store(fx, small, 64 * KIB);
	assert_true(gw_store_enforce_budget(s, &shed, &error));
	assert_int_equal(shed.records, 20);
	assert_true(shed.telemetry > 0);
	assert_true(shed.telemetry < (uint64_t) n);
	assert_true(gw_store_size(s) <= low_mark(small));

	left = peek(s, 100000, NULL);
	for (guint i = 0; i < left->len; i++)
		g_hash_table_add(names, ((struct gw_outbox_msg *) left->pdata[i])->msg_id);
	for (int i = 0; i < n; i++) {
		g_autofree char *id = g_strdup_printf("t-%d", i);

		/* the oldest ones gone, the newest kept */
		assert_int_equal(g_hash_table_contains(names, id), (uint64_t) i >= shed.telemetry);
	}
	assert_true(msg_queued(s, s1) && msg_queued(s, p1) && msg_queued(s, a1));
	assert_int_equal(gw_store_record_count(s, W1), 0);
	assert_int_equal(gw_store_record_count(s, W2), 20);
	assert_int_equal(gw_store_audit_count(s), 1);
	assert_true(gw_store_audit_verify(s, NULL, &error));

	assert_true(put_msg(s, "t-again", GW_PRIO_TELEMETRY, 1500, &error) > 0);
	commit(s);
}

static void test_budget_nothing_to_shed(void **state)
{
	struct fx *fx = *state;
	g_autoptr(GwStore) s = open_store(fx, 256 * KIB, 64 * KIB);
	g_autoptr(GError) error = NULL;
	struct gw_store_shed shed = { 99, 99 };
	uint32_t last;

	assert_true(put_msg(s, "s1", GW_PRIO_STATUS, 100, &error) > 0);
	last = fill_records(s, W1, 1);
	assert_true(gw_store_enforce_budget(s, &shed, &error));
	assert_int_equal(shed.records, 0);
	assert_int_equal(shed.telemetry, 0);
	assert_int_equal(gw_store_record_count(s, W1), last);
}

/* Critical writes go above the budget into the reserve; an ordinary
 * write refused in between takes none of them with it. */
static void test_budget_reserve_for_critical(void **state)
{
	struct fx *fx = *state;
	const uint64_t budget = 256 * KIB, reserve = 64 * KIB;
	g_autoptr(GwStore) s = open_store(fx, budget, reserve);
	g_autoptr(GError) error = NULL;
	g_autofree char *reserve_path = g_strconcat(fx->path, ".reserve", NULL);
	struct gw_store_alert alert = {
		.alert_id = "al-1", .rule = "red_flag", .tier = 2, .opened_us = 5, .updated_us = 5,
	};
	struct alert_seen seen = { .ids = g_string_new(NULL) };
	struct gw_store_shed shed = { 0 };
	int64_t alert_msg, more[70];
	int i;

	/* under the budget, one statement too big for it: stopped by the
	 * page cap mid-statement, the pain report before it stays */
	assert_int_equal(add_rec(s, W3, pain(1, 8), &error), 1);
	assert_int_equal(put_msg(s, "huge", GW_PRIO_TELEMETRY, 400 * KIB, &error), -1);
	assert_full(error);
	g_clear_error(&error);
	assert_true(gw_store_has_record(s, W3, 1));
	assert_true(gw_store_uncommitted(s) >= 1);
	commit(s);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM records"), 1);

	fill_outbox(s, "t", GW_PRIO_TELEMETRY, 1500);
	assert_true(gw_store_size(s) >= budget);
	assert_false(gw_store_reserve_used(s));

	/* one transaction: critical, ordinary (refused), critical */
	assert_int_equal(add_rec(s, W3, pain(2, 9), &error), 1);
	assert_int_equal(add_rec(s, W1, steps(1), &error), -1);
	assert_full(error);
	g_clear_error(&error);
	assert_true(gw_store_has_record(s, W3, 2));
	assert_true(gw_store_alert_put(s, &alert, &error));
	assert_true(gw_store_audit_append(s, 6, "al-1", "opened", "calf", &error));
	alert_msg = put_msg(s, "alert-1", GW_PRIO_ALERT, 300, &error);
	assert_true(alert_msg > 0);
	assert_true(put_msg(s, "pain-1", GW_PRIO_PAIN, 300, &error) > 0);
	commit(s);
	assert_true(gw_store_reserve_used(s));
	/* the budget's reserve, not the file: the disk had room */
	assert_int_equal(file_size(reserve_path), reserve);

	/* the budget never stops the escalation path, however far over it
	 * the store goes: only the disk can (test_disk_full_uses_reserve_file) */
	for (i = 0; i < 70; i++) {
		g_autofree char *id = g_strdup_printf("pain-more-%d", i);

		more[i] = put_msg(s, id, GW_PRIO_PAIN, 1500, &error);
		if (more[i] < 0)
			break;
	}
	assert_int_equal(i, 70);
	assert_null(error);
	assert_true(gw_store_size(s) >= budget + reserve);
	commit(s);
	assert_int_equal(add_rec(s, W1, steps(2), &error), -1);	/* telemetry still not */
	assert_full(error);
	g_clear_error(&error);
	commit(s);

	/* shedding takes the telemetry, never the critical rows */
	assert_true(gw_store_enforce_budget(s, &shed, &error));
	assert_true(shed.telemetry > 0);
	for (i = 0; i < 70; i++)
		assert_true(msg_queued(s, more[i]));
	/* once the broker took them (PUBACK), the store shrinks below its
	 * low mark and telemetry is accepted again */
	for (i = 0; i < 70; i++)
		assert_true(gw_store_outbox_delete(s, more[i], &error));
	commit(s);
	assert_true(gw_store_enforce_budget(s, &shed, &error));
	assert_true(gw_store_size(s) <= low_mark(budget));
	assert_true(put_msg(s, "t-again", GW_PRIO_TELEMETRY, 1500, &error) > 0);
	commit(s);
	gw_store_free(g_steal_pointer(&s));

	s = open_store(fx, budget, reserve);
	assert_true(gw_store_has_record(s, W3, 1) && gw_store_has_record(s, W3, 2));
	assert_false(gw_store_has_record(s, W1, 1));
	assert_true(msg_queued(s, alert_msg));
	assert_true(gw_store_alert_foreach(s, collect_alert, &seen, &error));
	assert_string_equal(seen.ids->str, "al-1:red_flag:2:0;");
	assert_int_equal(gw_store_audit_count(s), 1);
	assert_true(gw_store_audit_verify(s, NULL, &error));
	g_string_free(seen.ids, TRUE);
}

/* The disk itself full (the VFS shim): an ordinary commit fails and is
 * rolled back; critical writes delete the reserve file and go in. */
static void test_disk_full_uses_reserve_file(void **state)
{
	struct fx *fx = *state;
	const uint64_t reserve = 256 * KIB;
	g_autoptr(GwStore) s = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *reserve_path = g_strconcat(fx->path, ".reserve", NULL);
	struct gw_store_alert alert = {
		.alert_id = "al-1", .rule = "red_flag", .tier = 2, .opened_us = 5, .updated_us = 5,
	};
	struct gw_store_shed shed = { 0 };
	int64_t alert_msg;

	disk.db = g_strdup(fx->path);
	s = open_store(fx, 4096 * KIB, reserve);
	add(s, W1, 1, 100);
	commit(s);
	assert_true(gw_store_enforce_budget(s, &shed, &error));	/* the WAL truncated */
	assert_int_equal(file_size(reserve_path), reserve);

	disk.limit = disk_usage();		/* not a byte more */
	disk.refused = 0;

	assert_int_equal(add_rec(s, W1, steps(101), &error), 1);
	assert_false(gw_store_commit(s, &error));
	assert_full(error);
	assert_non_null(strstr(error->message, fx->path));
	assert_non_null(strstr(error->message, "rolled back"));
	g_clear_error(&error);
	assert_true(disk.refused > 0);
	assert_int_equal(gw_store_uncommitted(s), 0);
	assert_false(gw_store_has_record(s, W1, 101));
	assert_int_equal(file_size(reserve_path), reserve);	/* not for telemetry */
	assert_false(gw_store_reserve_used(s));

	disk.refused = 0;
	assert_int_equal(add_rec(s, W3, pain(1, 9), &error), 1);
	assert_true(gw_store_alert_put(s, &alert, &error));
	assert_true(gw_store_audit_append(s, 6, "al-1", "opened", "calf", &error));
	alert_msg = put_msg(s, "alert-1", GW_PRIO_ALERT, 300, &error);
	assert_true(alert_msg > 0);
	assert_true(gw_store_commit(s, &error));
	assert_true(disk.refused > 0);		/* it did hit the full disk */
	assert_false(g_file_test(reserve_path, G_FILE_TEST_EXISTS));
	assert_true(gw_store_reserve_used(s));

	/* no reserve left: what does not fit fails, and is rolled back */
	assert_true(put_msg(s, "pain-big", GW_PRIO_PAIN, 512 * KIB, &error) > 0);
	assert_false(gw_store_commit(s, &error));
	assert_full(error);
	g_clear_error(&error);

	/* room on the disk again: the reserve comes back */
	disk.limit = 0;
	assert_true(gw_store_enforce_budget(s, &shed, &error));
	assert_int_equal(file_size(reserve_path), reserve);
	assert_int_equal(add_rec(s, W1, steps(101), &error), 1);
	commit(s);
	gw_store_free(g_steal_pointer(&s));

	s = open_store(fx, 4096 * KIB, reserve);
	assert_true(gw_store_has_record(s, W3, 1));
	assert_true(gw_store_has_record(s, W1, 101));
	assert_true(msg_queued(s, alert_msg));
	assert_int_equal(gw_store_audit_count(s), 1);
	assert_true(gw_store_audit_verify(s, NULL, &error));
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM outbox"), 1);
}

/* A write bigger than the page cache goes to the WAL before the commit,
 * so a full disk fails the statement itself: an ordinary one fails
 * (taking nothing else with it), a critical one deletes the reserve file
 * and runs again. */
static void test_disk_full_mid_statement(void **state)
{
	struct fx *fx = *state;
	const uint64_t reserve = 4096 * KIB, big = 3072 * KIB;
	g_autoptr(GwStore) s = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *reserve_path = g_strconcat(fx->path, ".reserve", NULL);
	g_autoptr(GPtrArray) got = NULL;
	struct gw_store_shed shed = { 0 };
	int64_t id;

	disk.db = g_strdup(fx->path);
	s = open_store(fx, 64 * 1024 * KIB, reserve);
	add(s, W1, 1, 10);
	commit(s);
	assert_true(gw_store_enforce_budget(s, &shed, &error));	/* the WAL truncated */
	disk.limit = disk_usage();
	disk.refused = 0;

	assert_int_equal(add_rec(s, W3, pain(1, 7), &error), 1);	/* not committed yet */
	assert_int_equal(put_msg(s, "big-t", GW_PRIO_TELEMETRY, big, &error), -1);
	assert_full(error);
	g_clear_error(&error);
	assert_true(disk.refused > 0);
	assert_int_equal(file_size(reserve_path), reserve);
	assert_true(gw_store_has_record(s, W3, 1));

	id = put_msg(s, "big-p", GW_PRIO_PAIN, big, &error);
	assert_true(id > 0);
	assert_false(g_file_test(reserve_path, G_FILE_TEST_EXISTS));
	assert_true(gw_store_reserve_used(s));
	commit(s);
	gw_store_free(g_steal_pointer(&s));

	disk.limit = 0;
	s = open_store(fx, 64 * 1024 * KIB, reserve);
	assert_true(gw_store_has_record(s, W3, 1));
	got = peek(s, 10, NULL);
	assert_int_equal(got->len, 1);
	assert_int_equal(((struct gw_outbox_msg *) got->pdata[0])->id, id);
	assert_int_equal(((struct gw_outbox_msg *) got->pdata[0])->payload_len, big);
	assert_int_equal(file_size(reserve_path), reserve);	/* made again on open */
}

/* ---- what a commit writes ---- */

static struct wb_record posture(uint32_t seq)
{
	struct wb_record r = {
		.type = WB_RECORD_POSTURE, .version = WB_RECORD_VERSION, .seq = seq,
		.time = 1000 + seq, .time_quality = WB_TIME_SYNCED,
	};

	r.u.posture.flexion_ddeg = (int16_t) (100 + seq % 300);
	r.u.posture.tilt_ddeg = (int16_t) (seq % 50) - 25;
	r.u.posture.cls = (enum wb_posture_class) (1 + seq % 4);
	r.u.posture.duration_s = 1;
	return r;
}

/* One live minute of one wearable as the gateway stores it: 60 posture
 * records at 1 Hz, one per call as they arrive, and the minute's steps
 * record, each stamped on arrival; then the commit. */
static void live_minute(GwStore *s, uint32_t *seq, int64_t *t_us)
{
	for (int i = 0; i <= 60; i++) {
		g_autoptr(GError) error = NULL;
		struct gw_store_stamp st = stamp;
		struct wb_record r = i < 60 ? posture(*seq) : steps(*seq);

		st.received_us = *t_us;
		st.mono_us = *t_us - INT64_C(1699990000000000);
		if (gw_store_add_records(s, W1, &r, 1, &st, &error) != 1)
			fail_msg("add seq %" PRIu32 ": %s", *seq, error ? error->message : "held");
		(*seq)++;
		*t_us += 1000000;
	}
	commit(s);
}

/* Checkpoints the WAL into the database and truncates it (another
 * connection, as sqlite3 would), then zeroes the write counters. */
static void wal_reset(const char *path)
{
	raw_exec(path, "PRAGMA wal_checkpoint(TRUNCATE)");
	disk.wal_bytes = disk.db_bytes = 0;
}

/* WAL frames written since wal_reset(), checking that nothing else was:
 * no checkpoint in between, only frames and the WAL header. */
static uint64_t wal_frames(void)
{
	const uint64_t frame = 1024 + 24;

	assert_int_equal(disk.db_bytes, 0);
	assert_true(disk.wal_bytes % frame == 0 || disk.wal_bytes % frame == 32);
	return disk.wal_bytes / frame;
}

/* The SD card's wear: what a typical live commit appends to the WAL
 * (every page it touches, whole, with a 24-byte frame header; the same
 * pages once more at the checkpoint), counted by the VFS shim, not timed.
 * Schema 2 at page size 1024 (a rowid table with the wearable as text, a
 * 36-byte boot id per row, a UNIQUE index and a partial index) took 22.9
 * frames a commit in a new store and 26.6 in one holding a day of
 * records, and marking that day aggregated wrote 12 490 frames (and 12 MB
 * more at the checkpoints on the way); schema 3 takes 10.7, 11.6 and 1.
 * The bounds fail schema 2 by far. */
static void test_live_commit_cost(void **state)
{
	struct fx *fx = *state;
	const uint64_t commits = 10, day = 86400;
	g_autoptr(GwStore) s = NULL;
	g_autoptr(GError) error = NULL;
	uint32_t seq = 1, day_first;
	int64_t t_us = stamp.received_us;
	uint64_t frames;

	disk.db = g_strdup(fx->path);
	s = open_store(fx, 0, 0);
	assert_int_equal(raw_int(fx->path, "PRAGMA page_size"), 1024);
	/* the first minutes make the wearable's rows (cursor, ids) */
	for (int i = 0; i < 3; i++)
		live_minute(s, &seq, &t_us);
	wal_reset(fx->path);
	for (uint64_t i = 0; i < commits; i++)
		live_minute(s, &seq, &t_us);
	frames = wal_frames();
	print_message("live commit of 61 records, new store: %.1f WAL frames\n",
		      (double) frames / (double) commits);
	assert_true(frames < 12 * commits);

	/* a day of records held (the store keeps them until the budget
	 * sheds them): a deeper tree, the same cost */
	day_first = seq;
	for (uint64_t n = 0; n < day; n += WB_BATCH_MAX) {
		struct wb_record r[WB_BATCH_MAX];

		for (size_t i = 0; i < WB_BATCH_MAX; i++)
			r[i] = posture(seq++);
		if (gw_store_add_records(s, W1, r, WB_BATCH_MAX, &stamp, &error) != WB_BATCH_MAX)
			fail_msg("add: %s", error ? error->message : "held");
		if (n % (64 * WB_BATCH_MAX) == 0)
			commit(s);
	}
	commit(s);
	wal_reset(fx->path);
	for (uint64_t i = 0; i < commits; i++)
		live_minute(s, &seq, &t_us);
	frames = wal_frames();
	print_message("live commit of 61 records, a day held: %.1f WAL frames\n",
		      (double) frames / (double) commits);
	assert_true(frames < 13 * commits);

	/* the day aggregated: one watermark */
	wal_reset(fx->path);
	assert_true(gw_store_mark_aggregated(s, W1, day_first, seq - 1, &error));
	commit(s);
	frames = wal_frames();
	print_message("marking a day aggregated: %" PRIu64 " WAL frames\n", frames);
	assert_true(frames <= 2);
	assert_int_equal(gw_store_record_count(s, W1), seq - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates_wal_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors_name_the_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_records_deduplicated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cursor_contiguous, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_keeps_only_committed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unaggregated_and_mark, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aggregated_watermark, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_state_and_wearables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aggregates_latest_revision, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revisions_outlive_a_lost_store, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_outbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_records_since, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aggregates_since, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_kinds_audit_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alerts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_from_v0, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_records_from_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_records_from_v2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_step_is_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_2_to_3_is_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused_untouched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_header_moved_aside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_pages_moved_aside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_sheds_aggregated_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_sheds_across_wrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_sheds_oldest_telemetry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_nothing_to_shed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_reserve_for_critical, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full_uses_reserve_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full_mid_statement, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_commit_cost, setup, teardown),
	};

	disk_register();
	return cmocka_run_group_tests_name("gateway/store", tests, NULL, NULL);
}
