/* SPDX-License-Identifier: MIT */
/*
 * GwStore (see store.h): one SQLite file in WAL mode, synchronous=FULL.
 *
 * Writes. Every public write runs inside the one open transaction (BEGIN
 * IMMEDIATE on the first write after a commit) and inside a SAVEPOINT of
 * its own, so a write that fails leaves the transaction as it was before
 * the call. Each write statement that changed a row is also kept in a log
 * (its SQL and bound values) until the commit. SQLite rolls the whole
 * transaction back on some errors (SQLITE_FULL in a statement without a
 * statement journal, any error in COMMIT); the log is replayed then, so
 *  - an ordinary write refused mid-transaction does not take the caller's
 *    earlier uncommitted writes (say a pain report) with it, and
 *  - a COMMIT that failed for a full disk can be retried after the
 *    reserve file was deleted: in WAL mode the pages reach the disk at
 *    COMMIT, and a failed COMMIT is always rolled back.
 * Replaying is exact: the log holds every change, reads inside a write
 * see the same state again, and AUTOINCREMENT hands out the same ids.
 *
 * The budget. An ordinary write is refused (GW_STORE_ERROR_FULL) before
 * it starts once gw_store_size() reached the budget, and PRAGMA
 * max_page_count caps the database at the budget while it runs. Critical
 * writes are never refused by the budget (the escalation path must not
 * stop because a backlog or a lowered budget filled it) and run without
 * the page cap: SQLite reports the cap and a full disk with the same SQLITE_FULL,
 * so for them SQLITE_FULL always means the disk, and the reserve file is
 * deleted and the write (or the COMMIT) retried once. Updates and deletes
 * (mark aggregated, cursors, outbox delete and attempts) are never
 * refused: shedding depends on them.
 *
 * Records and the cursor. A wearable without a cursor extends from 0 (its
 * seqs start at 1), so holding 1..k gives cursor k; otherwise only
 * advance_cursor() starts one. Records at or before the cursor are
 * skipped as held (they are, or were and have been shed). A batch holding
 * a pain report is critical as a whole. Shedding never deletes a record
 * after its wearable's cursor, so the cursor's run stays proven by rows.
 * gw_store_uncommitted() counts every row changed, cursor rows included,
 * but not the rows that only number a wearable or a boot id.
 *
 * The records table (schema 3) is lean because every live commit rewrites
 * the pages it touches, and the SD card wears by the bytes written: a
 * WITHOUT ROWID table keyed (wearable_id, seq), the wearable and the boot
 * id as small integers (tables wearables and boots), the record as its
 * wire encoding (version, time, quality and values are in it; type is
 * kept as a column for the pain guard), no secondary index. What has been
 * aggregated is one watermark per wearable (wearables.aggregated_seq): a
 * day's aggregation updates one row, not 86 400. mark_aggregated moves it
 * forward only; a record stored at or before it (history synced after
 * live records beyond it were aggregated) moves it back to just before
 * that record, which is then replayed and not shed before it is marked,
 * as with schema 2's per-row flag. A typical live commit (61
 * records of one wearable) appends about 11-12 pages of 1 KiB to the WAL
 * (schema 2: 23-29); tests/test-store.c, test_live_commit_cost.
 *
 * Seq wrap. The cursor (extension over seq + 1, "after" in serial number
 * arithmetic), the watermark and the shedding guard handle seqs wrapping
 * at 2^32. foreach_unaggregated goes in serial order from the watermark,
 * in plain integer order for a wearable that has none.
 *
 * Audit hash: SHA-256 over prev_hash, seq, at_us, alert_id, event, detail,
 * integers as 8 bytes big endian, strings (prev_hash too) as their length
 * in 8 bytes big endian (all ones for NULL) then their bytes; hex. The
 * first entry chains to 64 zeros.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "store.h"

G_DEFINE_QUARK(gw-store-error-quark, gw_store_error)

#define DEFAULT_RESERVE (UINT64_C(1) << 20)
#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define SHED_BATCH 64
#define FOREACH_PAGE 256
/* SQLite's page cache (default 2 000 KiB): it fills as the file grows, and
 * in a bounded RSS every KiB counts; the OS caches the file anyway. */
#define CACHE_KIB 512

/* ---- the schema: one step per version, never edited once released ---- */

static const char *const migrations[] = {
	/* 0 -> 1: the initial tables */
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
	" hash TEXT NOT NULL);",

	/* 1 -> 2: publish attempts per message, per-wearable device state */
	"ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE device_state ("
	" wearable TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" value TEXT NOT NULL,"
	" PRIMARY KEY (wearable, key)) WITHOUT ROWID;",

	/* 2 -> 3: lean records (flash wear: fewer pages per commit). The
	 * wearable and the boot id become small integers, the columns the
	 * wire encoding holds go, the per-row aggregated flag and both
	 * indexes give way to a per-wearable watermark: the highest seq
	 * such that every record up to it was aggregated (plain integer
	 * order, as schema 2's foreach_unaggregated read them), so an
	 * aggregated record after an unaggregated one counts as
	 * unaggregated again (replayed to the aggregator, which drops what
	 * it has; not sheddable until the watermark passes it). */
	"ALTER TABLE records RENAME TO records_v2;"
	"CREATE TABLE wearables ("
	" id INTEGER PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE,"
	" aggregated_seq INTEGER);"
	"CREATE TABLE boots ("
	" id INTEGER PRIMARY KEY,"
	" boot_id TEXT NOT NULL UNIQUE);"
	"CREATE TABLE records ("
	" wearable_id INTEGER NOT NULL,"
	" seq INTEGER NOT NULL,"
	" type INTEGER NOT NULL,"
	" wire BLOB NOT NULL,"
	" received_us INTEGER NOT NULL,"
	" flags INTEGER NOT NULL,"
	" mono_us INTEGER NOT NULL,"
	" boot INTEGER,"
	" PRIMARY KEY (wearable_id, seq)) WITHOUT ROWID;"
	"INSERT INTO wearables (name, aggregated_seq)"
	" SELECT wearable, (SELECT max(a.seq) FROM records_v2 a"
	"  WHERE a.wearable = r.wearable AND a.aggregated != 0 AND a.seq <"
	"  ifnull((SELECT min(u.seq) FROM records_v2 u"
	"   WHERE u.wearable = r.wearable AND u.aggregated = 0), 4294967296))"
	" FROM records_v2 r GROUP BY wearable ORDER BY min(id);"
	"INSERT INTO boots (boot_id) SELECT boot_id FROM records_v2"
	" WHERE boot_id IS NOT NULL GROUP BY boot_id ORDER BY min(id);"
	"INSERT INTO records (wearable_id, seq, type, wire, received_us, flags, mono_us, boot)"
	" SELECT w.id, r.seq, r.type, r.wire, r.received_us, r.clock_synced != 0, r.mono_us, b.id"
	" FROM records_v2 r JOIN wearables w ON w.name = r.wearable"
	" LEFT JOIN boots b ON b.boot_id = r.boot_id ORDER BY w.id, r.seq;"
	"DROP TABLE records_v2;",

	/* 3 -> 4: the store's own values (the aggregate revision floor) */
	"CREATE TABLE store_meta ("
	" key TEXT PRIMARY KEY,"
	" value INTEGER NOT NULL) WITHOUT ROWID;",
};
G_STATIC_ASSERT(G_N_ELEMENTS(migrations) == GW_STORE_SCHEMA_VERSION);

/* ---- bound values, and the log of a transaction's writes ---- */

enum val_type {
	V_INT,
	V_TEXT,			/* NULL binds SQL NULL */
	V_BLOB,
};

struct val {
	enum val_type type;
	int64_t i;
	const void *p;
	size_t len;
};

#define VI(x) ((struct val) { .type = V_INT, .i = (int64_t) (x) })
#define VT(x) ((struct val) { .type = V_TEXT, .p = (x) })
#define VB(x, n) ((struct val) { .type = V_BLOB, .p = (x), .len = (n) })
#define VALS(...) (struct val[]) { __VA_ARGS__ }, \
	(sizeof((struct val[]) { __VA_ARGS__ }) / sizeof(struct val))

/* One write statement that changed rows: enough to run it again. */
struct op {
	const char *what;
	const char *sql;		/* a literal: also the statement cache key */
	size_t n;
	struct val v[];			/* texts and blobs copied after v[n] */
};

enum wclass {
	W_ORDINARY,	/* refused at the budget */
	W_FREE,		/* updates and deletes: never refused */
	W_SHED,		/* enforce_budget's deletes: may also use the reserve */
	W_CRITICAL,	/* never refused by the budget; may use the reserve */
};

struct gw_store {
	sqlite3 *db;
	char *path;
	char *dir;
	char *wal_path;
	char *reserve_path;
	char *revisions_path;
	char *corrupt_aside;
	int64_t revision_floor;		/* aggregates start above it */
	int64_t revisions_reserved;	/* <path>.revisions: no revision above */
	uint64_t budget;
	uint64_t reserve;
	int64_t page_size;
	int64_t max_pages_default;	/* max_page_count as SQLite opened it */
	int64_t max_pages_set;		/* what we last asked for */
	GHashTable *stmts;		/* SQL literal -> prepared statement */

	bool in_txn;
	GPtrArray *log;			/* struct op: the open transaction's writes */
	GPtrArray *pending;		/* struct op: the running call's writes */
	uint64_t uncommitted;
	uint64_t pending_rows;
	bool txn_reserve;		/* the transaction holds a write that may
					 * use the reserve */
	bool reserve_present;
	bool reserve_used;
};

/* A statement from the cache; the cleanup resets it, it is not freed. */
typedef sqlite3_stmt StoreQuery;

static void query_done(StoreQuery *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreQuery, query_done)

static int error_code(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return GW_STORE_ERROR_FULL;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return GW_STORE_ERROR_CORRUPT;
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_TOOBIG:
	case SQLITE_RANGE:
		return GW_STORE_ERROR_INVALID;
	default:
		return GW_STORE_ERROR_IO;
	}
}

static void sql_error(GwStore *s, GError **error, int rc, const char *what)
{
	g_set_error(error, GW_STORE_ERROR, error_code(rc), "store '%s': %s: %s", s->path,
		    what, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
}

static void finalize_stmt(gpointer st)
{
	sqlite3_finalize(st);
}

static sqlite3_stmt *prep(GwStore *s, const char *what, const char *sql, GError **error)
{
	sqlite3_stmt *st = g_hash_table_lookup(s->stmts, sql);
	int rc;

	if (st)
		return st;
	rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK) {
		sql_error(s, error, rc, what);
		return NULL;
	}
	g_hash_table_insert(s->stmts, (gpointer) sql, st);
	return st;
}

static int bind_vals(sqlite3_stmt *st, const struct val *v, size_t n)
{
	int rc = SQLITE_OK;

	for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
		int k = (int) i + 1;

		switch (v[i].type) {
		case V_INT:
			rc = sqlite3_bind_int64(st, k, v[i].i);
			break;
		case V_TEXT:
			rc = v[i].p ? sqlite3_bind_text(st, k, v[i].p, -1, SQLITE_STATIC) :
				      sqlite3_bind_null(st, k);
			break;
		case V_BLOB:
			rc = v[i].len ?
			     sqlite3_bind_blob64(st, k, v[i].p, v[i].len, SQLITE_STATIC) :
			     sqlite3_bind_zeroblob(st, k, 0);
			break;
		}
	}
	return rc;
}

/* A cached statement with its values bound, for reading: step it, and
 * let g_autoptr(StoreQuery) reset it. */
static StoreQuery *query(GwStore *s, const char *what, const char *sql,
			 const struct val *v, size_t n, GError **error)
{
	sqlite3_stmt *st = prep(s, what, sql, error);
	int rc;

	if (!st)
		return NULL;
	rc = bind_vals(st, v, n);
	if (rc != SQLITE_OK) {
		sql_error(s, error, rc, what);
		query_done(st);
		return NULL;
	}
	return st;
}

/* The first column of the first row of a query as an integer; FALSE with
 * error set if it failed, *ret = dflt if there was no row. */
static gboolean query_int(GwStore *s, const char *what, const char *sql,
			  const struct val *v, size_t n, int64_t dflt, int64_t *ret,
			  GError **error)
{
	g_autoptr(StoreQuery) st = query(s, what, sql, v, n, error);
	int rc;

	if (!st)
		return FALSE;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_type(st, 0) == SQLITE_NULL ? dflt :
		       sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		*ret = dflt;
	else {
		sql_error(s, error, rc, what);
		return FALSE;
	}
	return TRUE;
}

static char *col_strdup(sqlite3_stmt *st, int col)
{
	return g_strdup((const char *) sqlite3_column_text(st, col));
}

/* For the getters that have no GError: 0 (or dflt) if the query fails. */
static int64_t scalar_int(GwStore *s, const char *sql)
{
	int64_t v = 0;

	if (!query_int(s, sql, sql, NULL, 0, 0, &v, NULL))
		return 0;
	return v;
}

static gboolean exec_simple(GwStore *s, const char *sql, const char *what, GError **error)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		g_set_error(error, GW_STORE_ERROR, error_code(rc), "store '%s': %s: %s", s->path,
			    what, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return FALSE;
	}
	return TRUE;
}

static gboolean exec_vals(GwStore *s, const char *what, const char *sql,
			  const struct val *v, size_t n, int *ret_changes, GError **error)
{
	sqlite3_stmt *st = prep(s, what, sql, error);
	int rc;

	if (!st)
		return FALSE;
	rc = bind_vals(st, v, n);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		sql_error(s, error, rc, what);
		query_done(st);
		return FALSE;
	}
	*ret_changes = sqlite3_changes(s->db);
	query_done(st);
	return TRUE;
}

/* A statement run once per write (a savepoint): cached, not parsed again
 * each time as sqlite3_exec would (callgrind: about 19 k instructions a
 * live record went to parsing "SAVEPOINT w" and "RELEASE w"). */
static gboolean exec_cached(GwStore *s, const char *sql, const char *what, GError **error)
{
	int changes;

	return exec_vals(s, what, sql, NULL, 0, &changes, error);
}

static size_t val_bytes(const struct val *v)
{
	if (v->type == V_TEXT && v->p)
		return strlen(v->p) + 1;
	if (v->type == V_BLOB)
		return v->len;
	return 0;
}

static struct op *op_new(const char *what, const char *sql, const struct val *v, size_t n)
{
	size_t head = sizeof(struct op) + n * sizeof(struct val);
	size_t extra = 0;
	struct op *op;
	char *tail;

	for (size_t i = 0; i < n; i++)
		extra += val_bytes(&v[i]);
	op = g_malloc(head + extra);
	op->what = what;
	op->sql = sql;
	op->n = n;
	tail = (char *) op + head;
	for (size_t i = 0; i < n; i++) {
		size_t len = val_bytes(&v[i]);

		op->v[i] = v[i];
		if (len) {
			memcpy(tail, v[i].p, len);
			op->v[i].p = tail;
			tail += len;
		}
	}
	return op;
}

/* A write statement inside run_write(): runs it and logs it for replay. */
static gboolean write_sql(GwStore *s, const char *what, const char *sql,
			  const struct val *v, size_t n, int *ret_changes, GError **error)
{
	int changes = 0;

	if (!exec_vals(s, what, sql, v, n, &changes, error))
		return FALSE;
	if (changes > 0) {
		g_ptr_array_add(s->pending, op_new(what, sql, v, n));
		s->pending_rows += (uint64_t) changes;
	}
	if (ret_changes)
		*ret_changes = changes;
	return TRUE;
}

/* ---- transactions ---- */

static void pending_clear(GwStore *s)
{
	for (guint i = 0; i < s->pending->len; i++)
		g_free(s->pending->pdata[i]);
	g_ptr_array_set_size(s->pending, 0);
	s->pending_rows = 0;
}

static void txn_forget(GwStore *s)
{
	s->in_txn = false;
	g_ptr_array_set_size(s->log, 0);
	s->uncommitted = 0;
	s->txn_reserve = false;
}

static gboolean set_max_pages(GwStore *s, int64_t pages, GError **error)
{
	g_autofree char *sql = NULL;

	if (pages == s->max_pages_set)
		return TRUE;
	/* SQLite never sets it below the current page count */
	sql = g_strdup_printf("PRAGMA max_page_count = %" PRId64, pages);
	if (!exec_simple(s, sql, "setting max_page_count", error))
		return FALSE;
	s->max_pages_set = pages;
	return TRUE;
}

/* BEGIN again and run the log: the transaction as it was. */
static gboolean replay(GwStore *s, GError **error)
{
	if (!set_max_pages(s, s->max_pages_default, error) ||
	    !exec_simple(s, "BEGIN IMMEDIATE", "begin (replaying the open transaction)", error))
		return FALSE;
	s->in_txn = true;
	for (guint i = 0; i < s->log->len; i++) {
		const struct op *op = s->log->pdata[i];
		int changes;

		if (!exec_vals(s, op->what, op->sql, op->v, op->n, &changes, error)) {
			g_prefix_error(error, "replaying the open transaction: ");
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			s->in_txn = false;
			return FALSE;
		}
	}
	return TRUE;
}

/* Deletes the reserve file to make room on a full disk. */
static bool reserve_drop(GwStore *s)
{
	if (!s->reserve_present)
		return false;
	if (g_unlink(s->reserve_path) < 0 && errno != ENOENT)
		return false;
	s->reserve_present = false;
	s->reserve_used = true;
	g_message("store '%s': disk full: deleted the reserve file '%s' for a critical write",
		  s->path, s->reserve_path);
	return true;
}

static gboolean write_begin(GwStore *s, enum wclass wc, const char *what, GError **error)
{
	/* The budget is a policy for telemetry. Critical writes (pain,
	 * alerts, audit) are never refused by it, however far over it the
	 * store is (a budget lowered by a config change, a backlog): only a
	 * real full disk stops them, and then the reserve file goes first. */
	if (s->budget && wc == W_ORDINARY) {
		uint64_t size = gw_store_size(s);

		if (size >= s->budget) {
			g_set_error(error, GW_STORE_ERROR, GW_STORE_ERROR_FULL,
				    "store '%s': %s: the disk budget is used up (%" PRIu64 " of %"
				    PRIu64 " bytes)", s->path, what, size, s->budget);
			return FALSE;
		}
	}
	if (!set_max_pages(s, wc == W_ORDINARY && s->budget ?
			   MAX((int64_t) (s->budget / (uint64_t) s->page_size), 1) :
			   s->max_pages_default, error))
		return FALSE;
	if (!s->in_txn) {
		if (!exec_simple(s, "BEGIN IMMEDIATE", "begin", error))
			return FALSE;
		s->in_txn = true;
	}
	return exec_cached(s, "SAVEPOINT w", "savepoint", error);
}

static gboolean write_end(GwStore *s, enum wclass wc, GError **error)
{
	if (!exec_cached(s, "RELEASE w", "release", error))
		return FALSE;
	if (s->pending->len && wc >= W_SHED)
		s->txn_reserve = true;
	for (guint i = 0; i < s->pending->len; i++)
		g_ptr_array_add(s->log, s->pending->pdata[i]);
	g_ptr_array_set_size(s->pending, 0);
	s->uncommitted += s->pending_rows;
	s->pending_rows = 0;
	if (wc == W_CRITICAL && s->budget && gw_store_size(s) > s->budget)
		s->reserve_used = true;
	return TRUE;
}

/* After a failed call: back to the transaction as it was before it. */
static void write_undo(GwStore *s, GError **error)
{
	g_autoptr(GError) e = NULL;
	uint64_t lost = s->uncommitted;
	char *msg;

	pending_clear(s);
	if (!sqlite3_get_autocommit(s->db)) {
		if (exec_simple(s, "ROLLBACK TO w; RELEASE w", "rollback to savepoint", NULL))
			return;
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	}
	/* SQLite rolled the whole transaction back: run it again */
	s->in_txn = false;
	if (s->log->len == 0) {
		txn_forget(s);
		return;
	}
	if (replay(s, &e))
		return;
	txn_forget(s);
	if (error && *error) {
		msg = g_strdup_printf("%s; the open transaction was lost with it (%" PRIu64
				      " rows not committed): %s", (*error)->message, lost,
				      e->message);
		g_free((*error)->message);
		(*error)->message = msg;
	}
}

typedef gboolean (*write_fn)(GwStore *s, void *data, GError **error);

/* Runs fn as one write: all of it or none of it joins the open
 * transaction. A critical write failing for a full disk deletes the
 * reserve file and runs once more. */
static gboolean run_write(GwStore *s, enum wclass wc, const char *what,
			  write_fn fn, void *data, GError **error)
{
	for (int attempt = 0;; attempt++) {
		g_autoptr(GError) e = NULL;

		if (!write_begin(s, wc, what, &e)) {
			g_propagate_error(error, g_steal_pointer(&e));
			return FALSE;
		}
		if (fn(s, data, &e) && write_end(s, wc, &e))
			return TRUE;
		write_undo(s, &e);
		if (attempt == 0 && wc >= W_SHED &&
		    g_error_matches(e, GW_STORE_ERROR, GW_STORE_ERROR_FULL) && reserve_drop(s))
			continue;
		g_propagate_error(error, g_steal_pointer(&e));
		return FALSE;
	}
}

gboolean gw_store_commit(GwStore *s, GError **error)
{
	g_autoptr(GError) e = NULL;
	uint64_t lost;

	if (!s->in_txn)
		return TRUE;
	if (exec_simple(s, "COMMIT", "commit", &e))
		goto done;
	if (g_error_matches(e, GW_STORE_ERROR, GW_STORE_ERROR_FULL) && s->txn_reserve &&
	    reserve_drop(s)) {
		g_clear_error(&e);
		if (!sqlite3_get_autocommit(s->db)) {
			if (exec_simple(s, "COMMIT", "commit (after deleting the reserve)", &e))
				goto done;
		} else {
			s->in_txn = false;
			if (replay(s, &e) &&
			    exec_simple(s, "COMMIT", "commit (after deleting the reserve)", &e))
				goto done;
		}
	}
	lost = s->uncommitted;
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	txn_forget(s);
	g_set_error(error, e->domain, e->code, "%s; rolled back %" PRIu64
		    " rows written since the last commit", e->message, lost);
	return FALSE;
done:
	txn_forget(s);
	return TRUE;
}

uint64_t gw_store_uncommitted(const GwStore *s)
{
	return s->uncommitted;
}

/* ---- opening, corruption, migrations ---- */

void gw_store_config_init(struct gw_store_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->reserve_bytes = DEFAULT_RESERVE;
}

static void close_db(GwStore *s)
{
	g_hash_table_remove_all(s->stmts);
	if (s->db)
		sqlite3_close_v2(s->db);
	s->db = NULL;
	s->max_pages_set = 0;
}

void gw_store_free(GwStore *s)
{
	g_autoptr(GError) error = NULL;

	if (!s)
		return;
	if (s->db && !gw_store_commit(s, &error))
		g_warning("%s", error->message);
	close_db(s);
	g_hash_table_unref(s->stmts);
	g_ptr_array_unref(s->log);
	pending_clear(s);
	g_ptr_array_unref(s->pending);
	g_free(s->path);
	g_free(s->dir);
	g_free(s->wal_path);
	g_free(s->reserve_path);
	g_free(s->revisions_path);
	g_free(s->corrupt_aside);
	g_free(s);
}

const char *gw_store_corrupt_aside(const GwStore *s)
{
	return s->corrupt_aside;
}

static void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void) fsync(fd);
		close(fd);
	}
}

/* Creates <path>.reserve of reserve bytes if it is missing; with
 * check_space, only if the file system keeps twice that free. */
static void reserve_make(GwStore *s, bool check_space)
{
	struct stat st;
	struct statvfs vfs;
	int fd, r = 0;

	if (!s->reserve)
		return;
	if (stat(s->reserve_path, &st) == 0 && (uint64_t) st.st_size >= s->reserve) {
		s->reserve_present = true;
		return;
	}
	if (check_space && statvfs(s->dir, &vfs) == 0 &&
	    (uint64_t) vfs.f_bavail * vfs.f_frsize < 2 * s->reserve)
		return;
	fd = open(s->reserve_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		r = errno;
	else {
		r = posix_fallocate(fd, 0, (off_t) s->reserve);
		if (r == EOPNOTSUPP || r == EINVAL) {
			/* a file system without fallocate: write zeros */
			static const char zeros[65536];
			uint64_t done = 0;

			r = 0;
			while (done < s->reserve && r == 0) {
				size_t n = (size_t) MIN(s->reserve - done, sizeof(zeros));
				ssize_t w = pwrite(fd, zeros, n, (off_t) done);

				if (w < 0 && errno != EINTR)
					r = errno;
				else if (w > 0)
					done += (uint64_t) w;
			}
		}
		if (r == 0 && fsync(fd) < 0)
			r = errno;
		close(fd);
	}
	if (r) {
		(void) g_unlink(s->reserve_path);
		g_message("store '%s': no reserve file '%s': %s", s->path, s->reserve_path,
			  g_strerror(r));
		return;
	}
	s->reserve_present = true;
}

static char *aside_name(const char *path)
{
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autofree char *stamp = g_date_time_format(now, "%Y%m%dT%H%M%SZ");
	char *name = g_strdup_printf("%s.corrupt-%s", path, stamp);

	for (unsigned int n = 1;; n++) {
		g_autofree char *wal = g_strconcat(name, "-wal", NULL);
		g_autofree char *shm = g_strconcat(name, "-shm", NULL);

		if (!g_file_test(name, G_FILE_TEST_EXISTS) &&
		    !g_file_test(wal, G_FILE_TEST_EXISTS) &&
		    !g_file_test(shm, G_FILE_TEST_EXISTS))
			return name;
		g_free(name);
		name = g_strdup_printf("%s.corrupt-%s-%u", path, stamp, n);
	}
}

static gboolean move_aside(GwStore *s, const char *why, GError **error)
{
	/* the database last: a -wal left behind would be replayed into the
	 * fresh store */
	static const char *const suffix[] = { "-wal", "-shm", "" };
	g_autofree char *aside = aside_name(s->path);

	for (size_t i = 0; i < G_N_ELEMENTS(suffix); i++) {
		g_autofree char *from = g_strconcat(s->path, suffix[i], NULL);
		g_autofree char *to = g_strconcat(aside, suffix[i], NULL);

		if (rename(from, to) < 0 && !(*suffix[i] && errno == ENOENT)) {
			int err = errno;

			g_set_error(error, GW_STORE_ERROR, GW_STORE_ERROR_IO,
				    "store '%s': corrupt (%s), and moving it aside to '%s'"
				    " failed: %s", s->path, why, to, g_strerror(err));
			return FALSE;
		}
	}
	fsync_dir(s->dir);
	g_message("store '%s': corrupt (%s): moved aside to '%s', starting a fresh store",
		  s->path, why, aside);
	s->corrupt_aside = g_steal_pointer(&aside);
	return TRUE;
}

static gboolean quick_check(GwStore *s, GError **error)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *res = (const char *) sqlite3_column_text(st, 0);

		if (!res || strcmp(res, "ok") != 0) {
			g_set_error(error, GW_STORE_ERROR, GW_STORE_ERROR_CORRUPT,
				    "store '%s': quick_check: %s", s->path,
				    res ? res : "no result");
			sqlite3_finalize(st);
			return FALSE;
		}
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK && rc != SQLITE_DONE)
		sql_error(s, error, rc, "quick_check");
	sqlite3_finalize(st);
	return rc == SQLITE_OK || rc == SQLITE_DONE;
}

static gboolean migrate(GwStore *s, int64_t from, GError **error)
{
	for (int64_t v = from; v < GW_STORE_SCHEMA_VERSION; v++) {
		g_autofree char *sql = g_strdup_printf("BEGIN IMMEDIATE; %s PRAGMA user_version = %"
						       PRId64 "; COMMIT;", migrations[v], v + 1);
		g_autofree char *what = g_strdup_printf("migrating the schema from version %"
							PRId64 " to %" PRId64, v, v + 1);

		if (!exec_simple(s, sql, what, error)) {
			if (!sqlite3_get_autocommit(s->db))
				sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			return FALSE;
		}
	}
	return TRUE;
}

/* Opens s->path; *ret_corrupt says a failure was SQLite finding it
 * corrupt or not a database. */
static gboolean open_db(GwStore *s, bool *ret_corrupt, GError **error)
{
	g_autoptr(GError) e = NULL;
	g_autofree char *pragmas = NULL;
	int64_t version = 0, ckpt = 1000;
	const char *mode;
	sqlite3_stmt *st;
	int rc;

	*ret_corrupt = false;
	rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			     SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		sql_error(s, error, rc, "open");
		close_db(s);
		return FALSE;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, 5000);

	/* read before anything writes: a newer schema leaves the file as it is */
	if (!query_int(s, "reading the schema version", "PRAGMA user_version", NULL, 0, 0,
		       &version, &e) ||
	    !quick_check(s, &e)) {
		*ret_corrupt = g_error_matches(e, GW_STORE_ERROR, GW_STORE_ERROR_CORRUPT);
		goto fail;
	}
	if (version > GW_STORE_SCHEMA_VERSION || version < 0) {
		g_set_error(&e, GW_STORE_ERROR, GW_STORE_ERROR_SCHEMA,
			    "store '%s': schema version %" PRId64 " is newer than this build's %d",
			    s->path, version, GW_STORE_SCHEMA_VERSION);
		goto fail;
	}

	/* auto_vacuum and page_size only take on a database without tables
	 * yet. Small pages: a commit rewrites every page it touches, and a
	 * telemetry commit touches a few rows in many places, so bytes
	 * written to the SD card scale with the page size (docs/performance.md) */
	if (!exec_simple(s, "PRAGMA page_size = 1024", "setting page_size", &e) ||
	    !exec_simple(s, "PRAGMA auto_vacuum = INCREMENTAL", "setting auto_vacuum", &e))
		goto fail;
	rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	mode = rc == SQLITE_ROW ? (const char *) sqlite3_column_text(st, 0) : NULL;
	if (!mode || g_ascii_strcasecmp(mode, "wal") != 0) {
		if (rc == SQLITE_ROW)
			g_set_error(&e, GW_STORE_ERROR, GW_STORE_ERROR_IO,
				    "store '%s': journal_mode is '%s', not WAL", s->path,
				    mode ? mode : "?");
		else
			sql_error(s, &e, rc, "setting WAL mode");
		sqlite3_finalize(st);
		*ret_corrupt = g_error_matches(e, GW_STORE_ERROR, GW_STORE_ERROR_CORRUPT);
		goto fail;
	}
	sqlite3_finalize(st);
	if (!exec_simple(s, "PRAGMA synchronous = FULL", "setting synchronous", &e) ||
	    !exec_simple(s, "PRAGMA cache_size = -" G_STRINGIFY(CACHE_KIB), "setting cache_size", &e) ||
	    !migrate(s, version, &e))
		goto fail;

	s->page_size = scalar_int(s, "PRAGMA page_size");
	s->max_pages_default = scalar_int(s, "PRAGMA max_page_count");
	s->max_pages_set = s->max_pages_default;
	if (s->page_size <= 0 || s->max_pages_default <= 0) {
		g_set_error(&e, GW_STORE_ERROR, GW_STORE_ERROR_IO,
			    "store '%s': cannot read page_size and max_page_count", s->path);
		goto fail;
	}
	/* keep the WAL a small part of the budget (about 1/32): checkpoint
	 * sooner, and cut the file back to that after a checkpoint */
	if (s->budget)
		ckpt = CLAMP((int64_t) (s->budget / (uint64_t) s->page_size / 32), 8, 1000);
	pragmas = g_strdup_printf("PRAGMA wal_autocheckpoint = %" PRId64 ";"
				  "PRAGMA journal_size_limit = %" PRId64 ";", ckpt,
				  ckpt * (s->page_size + 24) + 32);
	if (!exec_simple(s, pragmas, "setting the WAL size", &e))
		goto fail;
	return TRUE;
fail:
	if (*ret_corrupt)
		/* leave a corrupt file as found: no checkpoint into it */
		sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	close_db(s);
	g_propagate_error(error, g_steal_pointer(&e));
	return FALSE;
}

/* ---- aggregate revisions that outlive the store ----
 *
 * A consumer keeps the highest revision of each aggregate window, so a
 * revision must never be published twice with different values. The
 * aggregates table knows the revisions published; a store moved aside as
 * corrupt (or deleted) takes that knowledge with it. So <path>.revisions,
 * a small key file beside the database, holds a bound no revision ever
 * stored exceeds, raised in steps of REVISIONS_STEP before a revision
 * above it is stored (rarely: revisions are small numbers). A database
 * created fresh takes that bound as its floor (store_meta
 * "revision-floor") and numbers every window's revisions above it. */

#define REVISIONS_STEP 64
#define REVISIONS_GROUP "aggregates"
#define REVISIONS_KEY "reserved-revision"
#define FLOOR_KEY "revision-floor"

/* The bound in <path>.revisions: 0 if it is missing; a file that cannot be
 * read or holds no valid bound is reported and counts as missing (the
 * caller raises it again from the database). */
static int64_t revisions_read(GwStore *s)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) e = NULL;
	gint64 v;

	if (!g_key_file_load_from_file(kf, s->revisions_path, G_KEY_FILE_NONE, &e)) {
		if (!g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			g_message("store '%s': revision bound '%s' unreadable (%s): taking it"
				  " from the database", s->path, s->revisions_path, e->message);
		return 0;
	}
	v = g_key_file_get_int64(kf, REVISIONS_GROUP, REVISIONS_KEY, &e);
	if (e || v < 0 || v > INT_MAX) {
		g_message("store '%s': revision bound '%s': [%s] %s %s: taking it from the"
			  " database", s->path, s->revisions_path, REVISIONS_GROUP, REVISIONS_KEY,
			  e ? e->message : "out of range");
		return 0;
	}
	return v;
}

/* Raises the bound in <path>.revisions to cover revision, durably. */
static gboolean revisions_reserve(GwStore *s, int64_t revision, GError **error)
{
	g_autoptr(GKeyFile) kf = NULL;
	g_autoptr(GError) e = NULL;
	g_autofree char *data = NULL;
	int64_t bound;
	gsize len;

	if (revision <= s->revisions_reserved)
		return TRUE;
	bound = (revision / REVISIONS_STEP + 1) * REVISIONS_STEP;
	kf = g_key_file_new();
	g_key_file_set_int64(kf, REVISIONS_GROUP, REVISIONS_KEY, bound);
	(void) g_key_file_set_comment(kf, NULL, NULL,
				      " rehablink: no aggregate revision this gateway published is"
				      " above this bound.\n Kept outside the database, so that"
				      " revisions continue above it if the database is lost.", NULL);
	data = g_key_file_to_data(kf, &len, NULL);
	if (!g_file_set_contents_full(s->revisions_path, data, (gssize) len,
				      G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
				      0600, &e)) {
		g_set_error(error, GW_STORE_ERROR,
			    g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOSPC) ?
				GW_STORE_ERROR_FULL : GW_STORE_ERROR_IO,
			    "store '%s': raising the revision bound: %s", s->path, e->message);
		return FALSE;
	}
	s->revisions_reserved = bound;
	return TRUE;
}

/* Writes the floor of a database that has none (a fresh one). */
static gboolean floor_fn(GwStore *s, void *data, GError **error)
{
	return write_sql(s, "store_meta: revision floor",
			 "INSERT INTO store_meta (key, value) VALUES ('" FLOOR_KEY "', ?1)",
			 VALS(VI(*(int64_t *) data)), NULL, error);
}

/* After open: the floor (set from the bound in a fresh database), and a
 * bound that covers every revision the database holds. */
static gboolean revisions_open(GwStore *s, GError **error)
{
	g_autoptr(GError) e = NULL;
	int64_t max_rev = 0;

	s->revisions_reserved = revisions_read(s);
	if (!query_int(s, "store_meta: revision floor",
		       "SELECT value FROM store_meta WHERE key = '" FLOOR_KEY "'", NULL, 0, -1,
		       &s->revision_floor, error))
		return FALSE;
	if (s->revision_floor < 0 || s->revision_floor > INT_MAX) {
		s->revision_floor = s->revisions_reserved;
		if (!run_write(s, W_CRITICAL, "store_meta: revision floor", floor_fn,
			       &s->revision_floor, error) ||
		    !gw_store_commit(s, error))
			return FALSE;
		if (s->revision_floor)
			g_message("store '%s': a new database: aggregate revisions continue above %"
				  PRId64 " ('%s')", s->path, s->revision_floor, s->revisions_path);
	}
	if (!query_int(s, "aggregates: highest revision", "SELECT max(revision) FROM aggregates",
		       NULL, 0, 0, &max_rev, error))
		return FALSE;
	/* a bound lost or never written (an older version's database); a
	 * full disk must not stop the gateway: storing a revision above the
	 * bound tries again, and fails while it cannot raise it */
	if (!revisions_reserve(s, MAX(max_rev, s->revision_floor), &e))
		g_message("%s", e->message);
	return TRUE;
}

int gw_store_aggregate_next_revision(GwStore *s, const char *aggregate_id)
{
	return (int) MAX(gw_store_aggregate_revision(s, aggregate_id), s->revision_floor) + 1;
}

GwStore *gw_store_open(const struct gw_store_config *cfg, GError **error)
{
	g_autoptr(GwStore) s = NULL;
	g_autoptr(GError) e = NULL;
	bool corrupt;

	if (!cfg || !cfg->path || !*cfg->path) {
		g_set_error(error, GW_STORE_ERROR, GW_STORE_ERROR_INVALID,
			    "store: no database path");
		return NULL;
	}
	s = g_new0(GwStore, 1);
	s->path = g_strdup(cfg->path);
	s->dir = g_path_get_dirname(cfg->path);
	s->wal_path = g_strconcat(cfg->path, "-wal", NULL);
	s->reserve_path = g_strconcat(cfg->path, ".reserve", NULL);
	s->revisions_path = g_strconcat(cfg->path, ".revisions", NULL);
	s->budget = cfg->budget_bytes;
	s->reserve = cfg->reserve_bytes;
	s->stmts = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, finalize_stmt);
	s->log = g_ptr_array_new_with_free_func(g_free);
	s->pending = g_ptr_array_new();

	if (!open_db(s, &corrupt, &e)) {
		if (!corrupt) {
			g_propagate_error(error, g_steal_pointer(&e));
			return NULL;
		}
		if (!move_aside(s, e->message, error))
			return NULL;
		if (!open_db(s, &corrupt, error))
			return NULL;
	}
	reserve_make(s, false);
	if (!revisions_open(s, error))
		return NULL;
	return g_steal_pointer(&s);
}

/* ---- records and cursors ---- */

/* records.flags */
#define REC_CLOCK_SYNCED 1

#define SEQ_MAX INT64_C(4294967295)
#define SEQ_HALF INT64_C(2147483648)

static gboolean valid_id(const char *what, const char *id, GError **error)
{
	if (id && *id)
		return TRUE;
	g_set_error(error, GW_STORE_ERROR, GW_STORE_ERROR_INVALID, "store: %s: no id", what);
	return FALSE;
}

/* The wearable's row: *ret_id 0 if the store never held a record of it;
 * *ret_has_wm says it has an aggregation watermark, *ret_wm. */
static gboolean wearable_read(GwStore *s, const char *wearable, int64_t *ret_id,
			      bool *ret_has_wm, uint32_t *ret_wm, GError **error)
{
	g_autoptr(StoreQuery) st = query(s, "wearables: read",
					 "SELECT id, aggregated_seq FROM wearables WHERE name = ?1",
					 VALS(VT(wearable)), error);
	int rc;

	if (!st)
		return FALSE;
	*ret_id = 0;
	*ret_has_wm = false;
	*ret_wm = 0;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*ret_id = sqlite3_column_int64(st, 0);
		*ret_has_wm = sqlite3_column_type(st, 1) != SQLITE_NULL;
		*ret_wm = (uint32_t) sqlite3_column_int64(st, 1);
	} else if (rc != SQLITE_DONE) {
		sql_error(s, error, rc, "wearables: read");
		return FALSE;
	}
	return TRUE;
}

static gboolean wearable_id(GwStore *s, const char *wearable, int64_t *ret_id, GError **error)
{
	bool has_wm;
	uint32_t wm;

	return wearable_read(s, wearable, ret_id, &has_wm, &wm, error);
}

/* A row that only numbers a name (wearables, boots): written and logged
 * like any other, but not counted by gw_store_uncommitted(). */
static gboolean name_row_add(GwStore *s, const char *what, const char *sql, const char *name,
			     int64_t *ret_id, GError **error)
{
	int changes = 0;

	if (!write_sql(s, what, sql, VALS(VT(name)), &changes, error))
		return FALSE;
	s->pending_rows -= (uint64_t) changes;
	*ret_id = sqlite3_last_insert_rowid(s->db);
	return TRUE;
}

/* The number of a boot id, its row made if missing. */
static gboolean boot_ref(GwStore *s, const char *boot_id, int64_t *ret_id, GError **error)
{
	if (!query_int(s, "boots: lookup", "SELECT id FROM boots WHERE boot_id = ?1",
		       VALS(VT(boot_id)), 0, ret_id, error))
		return FALSE;
	if (*ret_id)
		return TRUE;
	return name_row_add(s, "boots: add", "INSERT INTO boots (boot_id) VALUES (?1)", boot_id,
			    ret_id, error);
}

static gboolean cursor_read(GwStore *s, const char *wearable, bool *ret_has,
			    uint32_t *ret_seq, GError **error)
{
	int64_t v;

	if (!query_int(s, "cursors: read", "SELECT seq FROM cursors WHERE wearable = ?1",
		       VALS(VT(wearable)), -1, &v, error))
		return FALSE;
	*ret_has = v >= 0;
	*ret_seq = (uint32_t) v;
	return TRUE;
}

/* wid: the wearable's id, 0 for none (then nothing is held) */
static gboolean held(GwStore *s, int64_t wid, uint32_t seq, bool *ret, GError **error)
{
	int64_t v = 0;

	*ret = false;
	if (!wid)
		return TRUE;
	if (!query_int(s, "records: lookup",
		       "SELECT 1 FROM records WHERE wearable_id = ?1 AND seq = ?2",
		       VALS(VI(wid), VI(seq)), 0, &v, error))
		return FALSE;
	*ret = v == 1;
	return TRUE;
}

/* With move: the cursor goes to seq if that is after it. Then it extends
 * over seq + 1, + 2, ... as long as they are held. A wearable without a
 * cursor extends from 0: its seqs start at 1 (protocol 1.8). */
static gboolean cursor_update(GwStore *s, const char *wearable, int64_t wid, bool move,
			      uint32_t seq, GError **error)
{
	bool has, changed = false, next = false;
	uint32_t cur, start;

	if (!cursor_read(s, wearable, &has, &cur, error))
		return FALSE;
	if (move && (!has || wb_seq_after(seq, cur))) {
		cur = seq;
		has = changed = true;
	}
	start = has ? cur : 0;
	for (uint32_t c = start;; c++) {
		if (!held(s, wid, c + 1, &next, error))
			return FALSE;
		if (!next || c + 1 == start)
			break;
		cur = c + 1;
		has = changed = true;
	}
	if (!changed)
		return TRUE;
	return write_sql(s, "cursors: update",
			 "INSERT INTO cursors (wearable, seq) VALUES (?1, ?2)"
			 " ON CONFLICT (wearable) DO UPDATE SET seq = excluded.seq",
			 VALS(VT(wearable), VI(cur)), NULL, error);
}

struct add_ctx {
	const char *wearable;
	const struct wb_record *recs;
	size_t n;
	const struct gw_store_stamp *stamp;
	int added;
};

static gboolean add_fn(GwStore *s, void *data, GError **error)
{
	struct add_ctx *c = data;
	int64_t wid, boot = 0;
	bool has, has_wm, lower = false;
	uint32_t cur, wm;

	c->added = 0;
	if (!cursor_read(s, c->wearable, &has, &cur, error) ||
	    !wearable_read(s, c->wearable, &wid, &has_wm, &wm, error))
		return FALSE;
	for (size_t i = 0; i < c->n; i++) {
		const struct wb_record *r = &c->recs[i];
		uint8_t wire[WB_RECORD_HEADER_LEN + 32];
		ssize_t len;
		int changes;

		/* up to the cursor every record is held, or was and has
		 * been shed after its window was published */
		if (has && !wb_seq_after(r->seq, cur))
			continue;
		len = wb_record_encode(r, wire, sizeof(wire));
		if (len < 0) {
			g_set_error(error, GW_STORE_ERROR, GW_STORE_ERROR_INVALID,
				    "store '%s': record seq %" PRIu32 " of %s: %s", s->path,
				    r->seq, c->wearable, wb_strerror((int) len));
			return FALSE;
		}
		/* the small rows the records refer to, made with the first
		 * record that needs them */
		if (!wid && !name_row_add(s, "wearables: add",
					  "INSERT INTO wearables (name) VALUES (?1)", c->wearable,
					  &wid, error))
			return FALSE;
		if (!boot && c->stamp->boot_id && !boot_ref(s, c->stamp->boot_id, &boot, error))
			return FALSE;
		if (!write_sql(s, "records: insert",
			       "INSERT OR IGNORE INTO records (wearable_id, seq, type, wire,"
			       " received_us, flags, mono_us, boot)"
			       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
			       VALS(VI(wid), VI(r->seq), VI(r->type), VB(wire, (size_t) len),
				    VI(c->stamp->received_us),
				    VI(c->stamp->clock_synced ? REC_CLOCK_SYNCED : 0),
				    VI(c->stamp->mono_us), boot ? VI(boot) : VT(NULL)),
			       &changes, error))
			return FALSE;
		c->added += changes;
		/* stored after its range was marked (history behind live
		 * records): not aggregated, so the watermark goes back to
		 * just before it */
		if (changes && has_wm && !wb_seq_after(r->seq, wm)) {
			wm = r->seq - 1;
			lower = true;
		}
	}
	if (lower && !write_sql(s, "records: watermark back",
				"UPDATE wearables SET aggregated_seq = ?2 WHERE id = ?1",
				VALS(VI(wid), VI(wm)), NULL, error))
		return FALSE;
	return cursor_update(s, c->wearable, wid, false, 0, error);
}

int gw_store_add_records(GwStore *s, const char *wearable, const struct wb_record *recs,
			 size_t n, const struct gw_store_stamp *stamp, GError **error)
{
	struct add_ctx c = { .wearable = wearable, .recs = recs, .n = n, .stamp = stamp };
	enum wclass wc = W_ORDINARY;

	if (!valid_id("records", wearable, error))
		return -1;
	if (!stamp || (n && !recs)) {
		g_set_error(error, GW_STORE_ERROR, GW_STORE_ERROR_INVALID,
			    "store '%s': records of %s: no %s", s->path, wearable,
			    stamp ? "records" : "stamp");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct wb_err werr = { 0 };
		int r = wb_record_validate(&recs[i], &werr);

		if (r < 0) {
			g_set_error(error, GW_STORE_ERROR, GW_STORE_ERROR_INVALID,
				    "store '%s': record %zu (seq %" PRIu32 ") of %s: %s: %s",
				    s->path, i, recs[i].seq, wearable,
				    werr.field ? werr.field : "?", wb_strerror(r));
			return -1;
		}
		/* a batch holding a pain report is critical as a whole */
		if (recs[i].type == WB_RECORD_PAIN)
			wc = W_CRITICAL;
	}
	if (n == 0)
		return 0;
	if (!run_write(s, wc, "records: insert", add_fn, &c, error))
		return -1;
	return c.added;
}

gboolean gw_store_has_record(GwStore *s, const char *wearable, uint32_t seq)
{
	int64_t wid = 0;
	bool ret = false;

	return wearable && wearable_id(s, wearable, &wid, NULL) &&
	       held(s, wid, seq, &ret, NULL) && ret;
}

uint64_t gw_store_record_count(GwStore *s, const char *wearable)
{
	int64_t v = 0;

	if (!wearable)
		return (uint64_t) scalar_int(s, "SELECT count(*) FROM records");
	if (!query_int(s, "records: count",
		       "SELECT count(*) FROM records"
		       " WHERE wearable_id = (SELECT id FROM wearables WHERE name = ?1)",
		       VALS(VT(wearable)), 0, &v, NULL))
		return 0;
	return (uint64_t) v;
}

bool gw_store_get_cursor(GwStore *s, const char *wearable, uint32_t *ret_seq)
{
	bool has = false;
	uint32_t seq;

	if (!wearable || !cursor_read(s, wearable, &has, &seq, NULL) || !has)
		return false;
	*ret_seq = seq;
	return true;
}

struct cursor_ctx {
	const char *wearable;
	uint32_t seq;
};

static gboolean cursor_fn(GwStore *s, void *data, GError **error)
{
	struct cursor_ctx *c = data;
	int64_t wid;

	return wearable_id(s, c->wearable, &wid, error) &&
	       cursor_update(s, c->wearable, wid, true, c->seq, error);
}

gboolean gw_store_advance_cursor(GwStore *s, const char *wearable, uint32_t seq,
				 GError **error)
{
	struct cursor_ctx c = { .wearable = wearable, .seq = seq };

	if (!valid_id("cursor", wearable, error))
		return FALSE;
	return run_write(s, W_FREE, "cursors: advance", cursor_fn, &c, error);
}

/* One page of foreach_unaggregated: up to max records of wid with seq in
 * lo..hi (plain integers), in seq order, appended to recs; *last is the
 * last seq read. */
static gboolean unaggregated_page(GwStore *s, const char *wearable, int64_t wid,
				  int64_t lo, int64_t hi, guint max, GArray *recs,
				  GPtrArray *strs, int64_t *last, GError **error)
{
	g_autoptr(StoreQuery) st = NULL;
	const char *boot_copy = NULL;
	int rc;

	if (lo > hi || !max)
		return TRUE;
	st = query(s, "records: unaggregated",
		   "SELECT r.seq, r.wire, r.received_us, r.flags, r.mono_us, b.boot_id"
		   " FROM records r LEFT JOIN boots b ON b.id = r.boot"
		   " WHERE r.wearable_id = ?1 AND r.seq BETWEEN ?2 AND ?3 ORDER BY r.seq LIMIT ?4",
		   VALS(VI(wid), VI(lo), VI(hi), VI(max)), error);
	if (!st)
		return FALSE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct gw_store_record r = { 0 };
		int64_t seq = sqlite3_column_int64(st, 0);
		const void *wire = sqlite3_column_blob(st, 1);
		size_t len = (size_t) sqlite3_column_bytes(st, 1);
		const char *boot = (const char *) sqlite3_column_text(st, 5);
		size_t used = 0;
		int d;

		d = wire ? wb_record_decode(wire, len, &r.rec, &used, NULL) : -EMSGSIZE;
		if (d < 0 || used != len || r.rec.seq != (uint32_t) seq) {
			g_set_error(error, GW_STORE_ERROR, GW_STORE_ERROR_CORRUPT,
				    "store '%s': records: %s seq %" PRId64
				    ": the stored record does not decode: %s", s->path,
				    wearable, seq, d < 0 ? wb_strerror(d) : "length or seq");
			return FALSE;
		}
		*last = seq;
		r.stamp.received_us = sqlite3_column_int64(st, 2);
		r.stamp.clock_synced = (sqlite3_column_int64(st, 3) & REC_CLOCK_SYNCED) != 0;
		r.stamp.mono_us = sqlite3_column_int64(st, 4);
		if (boot) {
			/* one copy for a run of records of the same boot */
			if (!boot_copy || strcmp(boot_copy, boot) != 0) {
				char *b = g_strdup(boot);

				g_ptr_array_add(strs, b);
				boot_copy = b;
			}
			r.stamp.boot_id = boot_copy;
		}
		g_array_append_val(recs, r);
	}
	if (rc != SQLITE_DONE) {
		sql_error(s, error, rc, "records: unaggregated");
		return FALSE;
	}
	return TRUE;
}

/* The records after the watermark: for a watermark wm, the seqs after it
 * in serial order (wm + 1 .. wm + 2^31 - 1, modulo 2^32) in that order;
 * without one, every seq in plain integer order. Read a page at a time,
 * the statement reset before the callbacks (fn may write to the store);
 * each page starts after the last record passed, or after the watermark
 * if fn moved it further. */
gboolean gw_store_foreach_unaggregated(GwStore *s, const char *wearable,
				       void (*fn)(const struct gw_store_record *r,
						  void *user_data),
				       void *user_data, GError **error)
{
	int64_t wid, end, pos;
	bool has_wm, serial;
	uint32_t wm;

	if (!valid_id("records", wearable, error) ||
	    !wearable_read(s, wearable, &wid, &has_wm, &wm, error))
		return FALSE;
	if (!wid)
		return TRUE;
	/* pos: the last seq passed, -1 for none; end: the last seq to read */
	serial = has_wm;
	pos = has_wm ? (int64_t) wm : -1;
	end = has_wm ? (int64_t) (uint32_t) (wm + (uint32_t) (SEQ_HALF - 1)) : SEQ_MAX;
	for (bool first = true;; first = false) {
		g_autoptr(GArray) recs = g_array_new(FALSE, FALSE, sizeof(struct gw_store_record));
		g_autoptr(GPtrArray) strs = g_ptr_array_new_with_free_func(g_free);
		int64_t last = pos;

		if (!first) {
			int64_t id;

			if (!wearable_read(s, wearable, &id, &has_wm, &wm, error))
				return FALSE;
			if (has_wm && (serial ? wb_seq_after(wm, (uint32_t) pos) &&
						!wb_seq_after(wm, (uint32_t) end) :
					       (int64_t) wm > pos))
				pos = last = wm;
		}
		if (serial && pos == end)
			break;
		if (!serial || pos < end) {
			if (!unaggregated_page(s, wearable, wid, pos + 1, end, FOREACH_PAGE, recs,
					       strs, &last, error))
				return FALSE;
		} else {
			/* the window wraps through 0 */
			if (!unaggregated_page(s, wearable, wid, pos + 1, SEQ_MAX, FOREACH_PAGE,
					       recs, strs, &last, error) ||
			    !unaggregated_page(s, wearable, wid, 0, end,
					       FOREACH_PAGE - recs->len, recs, strs, &last, error))
				return FALSE;
		}
		pos = last;
		for (guint i = 0; i < recs->len; i++)
			fn(&g_array_index(recs, struct gw_store_record, i), user_data);
		if (recs->len < FOREACH_PAGE)
			break;
	}
	return TRUE;
}

/* ---- reading records back: exports, the pain history ---- */

struct since_row {
	int64_t wid;
	char *name;
	struct gw_store_record r;
	char *boot;
};

static void since_row_clear(gpointer p)
{
	struct since_row *row = p;

	g_free(row->name);
	g_free(row->boot);
}

gboolean gw_store_foreach_record_since(GwStore *s, int64_t since_us, int type,
				       void (*fn)(const char *wearable,
						  const struct gw_store_record *r,
						  void *user_data),
				       void *user_data, GError **error)
{
	int64_t wid = -1, seq = -1;

	for (;;) {
		g_autoptr(GArray) rows = g_array_new(FALSE, TRUE, sizeof(struct since_row));
		g_autoptr(StoreQuery) st = NULL;
		int rc;

		g_array_set_clear_func(rows, since_row_clear);
		st = query(s, "records: since",
			   "SELECT r.wearable_id, w.name, r.seq, r.wire, r.received_us, r.flags,"
			   " r.mono_us, b.boot_id FROM records r"
			   " JOIN wearables w ON w.id = r.wearable_id"
			   " LEFT JOIN boots b ON b.id = r.boot"
			   " WHERE (r.wearable_id, r.seq) > (?1, ?2) AND r.received_us >= ?3"
			   " AND (?4 < 0 OR r.type = ?4)"
			   " ORDER BY r.wearable_id, r.seq LIMIT ?5",
			   VALS(VI(wid), VI(seq), VI(since_us), VI(type), VI(FOREACH_PAGE)), error);
		if (!st)
			return FALSE;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct since_row row = { 0 };
			const void *wire = sqlite3_column_blob(st, 3);
			size_t len = (size_t) sqlite3_column_bytes(st, 3), used = 0;
			int64_t rseq = sqlite3_column_int64(st, 2);
			int d;

			row.wid = sqlite3_column_int64(st, 0);
			row.name = col_strdup(st, 1);
			d = wire ? wb_record_decode(wire, len, &row.r.rec, &used, NULL) : -EMSGSIZE;
			if (d < 0 || used != len || row.r.rec.seq != (uint32_t) rseq) {
				g_set_error(error, GW_STORE_ERROR, GW_STORE_ERROR_CORRUPT,
					    "store '%s': records: %s seq %" PRId64
					    ": the stored record does not decode: %s", s->path,
					    row.name, rseq, d < 0 ? wb_strerror(d) : "length or seq");
				g_free(row.name);
				return FALSE;
			}
			row.r.stamp.received_us = sqlite3_column_int64(st, 4);
			row.r.stamp.clock_synced =
				(sqlite3_column_int64(st, 5) & REC_CLOCK_SYNCED) != 0;
			row.r.stamp.mono_us = sqlite3_column_int64(st, 6);
			row.boot = col_strdup(st, 7);
			wid = row.wid;
			seq = rseq;
			g_array_append_val(rows, row);
		}
		if (rc != SQLITE_DONE) {
			sql_error(s, error, rc, "records: since");
			return FALSE;
		}
		g_clear_pointer(&st, query_done);
		for (guint i = 0; i < rows->len; i++) {
			struct since_row *row = &g_array_index(rows, struct since_row, i);

			row->r.stamp.boot_id = row->boot;
			fn(row->name, &row->r, user_data);
		}
		if (rows->len < FOREACH_PAGE)
			return TRUE;
	}
}

struct mark_ctx {
	const char *wearable;
	uint32_t first, last;
};

static gboolean mark_fn(GwStore *s, void *data, GError **error)
{
	struct mark_ctx *c = data;
	int64_t wid;
	bool has_wm;
	uint32_t wm;

	if (!wearable_read(s, c->wearable, &wid, &has_wm, &wm, error))
		return FALSE;
	/* never held a record: no watermark to move; never backwards */
	if (!wid || (has_wm && !wb_seq_after(c->last, wm)))
		return TRUE;
	return write_sql(s, "records: mark aggregated",
			 "UPDATE wearables SET aggregated_seq = ?2 WHERE id = ?1",
			 VALS(VI(wid), VI(c->last)), NULL, error);
}

gboolean gw_store_mark_aggregated(GwStore *s, const char *wearable, uint32_t first,
				  uint32_t last, GError **error)
{
	struct mark_ctx c = { .wearable = wearable, .first = first, .last = last };

	if (!valid_id("records", wearable, error))
		return FALSE;
	if (first != last && !wb_seq_after(last, first)) {
		g_set_error(error, GW_STORE_ERROR, GW_STORE_ERROR_INVALID,
			    "store '%s': mark aggregated %s: %" PRIu32 " is not after %" PRIu32,
			    s->path, wearable, last, first);
		return FALSE;
	}
	return run_write(s, W_FREE, "records: mark aggregated", mark_fn, &c, error);
}

GPtrArray *gw_store_wearables(GwStore *s)
{
	GPtrArray *ret = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(StoreQuery) st = query(s, "wearables",
					 "SELECT name FROM wearables w WHERE EXISTS"
					 " (SELECT 1 FROM records WHERE wearable_id = w.id) UNION"
					 " SELECT wearable FROM cursors UNION"
					 " SELECT wearable FROM device_state ORDER BY 1",
					 NULL, 0, NULL);

	while (st && sqlite3_step(st) == SQLITE_ROW)
		g_ptr_array_add(ret, g_strdup((const char *) sqlite3_column_text(st, 0)));
	return ret;
}

/* ---- aggregates ---- */

static gboolean aggregate_fn(GwStore *s, void *data, GError **error)
{
	const struct gw_store_aggregate *a = data;

	return write_sql(s, "aggregates: put",
			 "INSERT INTO aggregates (aggregate_id, wearable, kind, start_us, end_us,"
			 " revision, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
			 " ON CONFLICT (aggregate_id) DO UPDATE SET wearable = excluded.wearable,"
			 " kind = excluded.kind, start_us = excluded.start_us,"
			 " end_us = excluded.end_us, revision = excluded.revision,"
			 " json = excluded.json WHERE excluded.revision > aggregates.revision",
			 VALS(VT(a->aggregate_id), VT(a->wearable), VI(a->kind), VI(a->start_us),
			      VI(a->end_us), VI(a->revision), VT(a->json)), NULL, error);
}

gboolean gw_store_put_aggregate(GwStore *s, const struct gw_store_aggregate *agg,
				GError **error)
{
	if (!agg || !valid_id("aggregates", agg->aggregate_id, error) ||
	    !valid_id("aggregates", agg->wearable, error))
		return FALSE;
	if (agg->revision < 1 || !agg->json) {
		g_set_error(error, GW_STORE_ERROR, GW_STORE_ERROR_INVALID,
			    "store '%s': aggregate %s: %s", s->path, agg->aggregate_id,
			    agg->json ? "revision below 1" : "no json");
		return FALSE;
	}
	if (!revisions_reserve(s, agg->revision, error))
		return FALSE;
	/* an older revision than the one stored changes nothing */
	return run_write(s, W_ORDINARY, "aggregates: put", aggregate_fn, (void *) agg, error);
}

int gw_store_aggregate_revision(GwStore *s, const char *aggregate_id)
{
	int64_t v = 0;

	if (!aggregate_id ||
	    !query_int(s, "aggregates: revision",
		       "SELECT revision FROM aggregates WHERE aggregate_id = ?1",
		       VALS(VT(aggregate_id)), 0, &v, NULL))
		return 0;
	return (int) v;
}

gchar *gw_store_aggregate_json(GwStore *s, const char *aggregate_id)
{
	g_autoptr(StoreQuery) st = NULL;

	if (!aggregate_id)
		return NULL;
	st = query(s, "aggregates: json", "SELECT json FROM aggregates WHERE aggregate_id = ?1",
		   VALS(VT(aggregate_id)), NULL);
	if (!st || sqlite3_step(st) != SQLITE_ROW)
		return NULL;
	return col_strdup(st, 0);
}

gboolean gw_store_foreach_aggregate(GwStore *s, const char *wearable, int64_t since_us,
				    void (*fn)(const struct gw_store_aggregate *a,
					       void *user_data),
				    void *user_data, GError **error)
{
	g_autoptr(GArray) aggs = g_array_new(FALSE, FALSE, sizeof(struct gw_store_aggregate));
	g_autoptr(GPtrArray) strs = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(StoreQuery) st = NULL;
	int rc;

	st = query(s, "aggregates: since",
		   "SELECT aggregate_id, wearable, kind, start_us, end_us, revision, json"
		   " FROM aggregates WHERE (?1 IS NULL OR wearable = ?1) AND end_us > ?2"
		   " ORDER BY kind, start_us", VALS(VT(wearable), VI(since_us)), error);
	if (!st)
		return FALSE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct gw_store_aggregate a = {
			.kind = sqlite3_column_int(st, 2),
			.start_us = sqlite3_column_int64(st, 3),
			.end_us = sqlite3_column_int64(st, 4),
			.revision = sqlite3_column_int(st, 5),
		};
		char *str[3] = { col_strdup(st, 0), col_strdup(st, 1), col_strdup(st, 6) };

		for (size_t i = 0; i < G_N_ELEMENTS(str); i++)
			g_ptr_array_add(strs, str[i]);
		a.aggregate_id = str[0];
		a.wearable = str[1];
		a.json = str[2];
		g_array_append_val(aggs, a);
	}
	if (rc != SQLITE_DONE) {
		sql_error(s, error, rc, "aggregates: since");
		return FALSE;
	}
	g_clear_pointer(&st, query_done);
	for (guint i = 0; i < aggs->len; i++)
		fn(&g_array_index(aggs, struct gw_store_aggregate, i), user_data);
	return TRUE;
}

/* ---- the outbox ---- */

void gw_outbox_msg_free(struct gw_outbox_msg *m)
{
	if (!m)
		return;
	g_free(m->msg_id);
	g_free(m->kind);
	g_free(m->topic);
	g_free(m->payload);
	g_free(m);
}

static gboolean outbox_put_fn(GwStore *s, void *data, GError **error)
{
	struct gw_outbox_msg *m = data;

	if (!write_sql(s, "outbox: put",
		       "INSERT INTO outbox (msg_id, kind, priority, topic, payload, qos, retain,"
		       " expiry_s, created_us, attempts)"
		       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
		       VALS(VT(m->msg_id), VT(m->kind), VI(m->priority), VT(m->topic),
			    VB(m->payload, m->payload_len), VI(m->qos), VI(m->retain),
			    VI(m->expiry_s), VI(m->created_us), VI(m->attempts)), NULL, error))
		return FALSE;
	m->id = sqlite3_last_insert_rowid(s->db);
	return TRUE;
}

gboolean gw_store_outbox_put(GwStore *s, struct gw_outbox_msg *m, GError **error)
{
	int64_t dup = 0;

	if (!m || !valid_id("outbox", m->msg_id, error) || !valid_id("outbox", m->topic, error))
		return FALSE;
	if (m->priority < GW_PRIO_TELEMETRY || m->priority > GW_PRIO_ALERT ||
	    m->qos < 0 || m->qos > 2 || (m->payload_len && !m->payload)) {
		g_set_error(error, GW_STORE_ERROR, GW_STORE_ERROR_INVALID,
			    "store '%s': outbox: message %s: bad priority %d, qos %d or payload",
			    s->path, m->msg_id, m->priority, m->qos);
		return FALSE;
	}
	if (!query_int(s, "outbox: lookup", "SELECT 1 FROM outbox WHERE msg_id = ?1",
		       VALS(VT(m->msg_id)), 0, &dup, error))
		return FALSE;
	if (dup) {
		g_set_error(error, GW_STORE_ERROR, GW_STORE_ERROR_INVALID,
			    "store '%s': outbox: msg_id %s is already queued", s->path, m->msg_id);
		return FALSE;
	}
	return run_write(s, m->priority >= GW_PRIO_PAIN ? W_CRITICAL : W_ORDINARY,
			 "outbox: put", outbox_put_fn, m, error);
}

gboolean gw_store_outbox_peek(GwStore *s, size_t max, GHashTable *skip, GPtrArray *ret,
			      GError **error)
{
	g_autoptr(StoreQuery) st = NULL;
	size_t n = 0;
	int rc = SQLITE_DONE;

	if (!max)
		return TRUE;
	st = query(s, "outbox: peek",
		   "SELECT id, msg_id, kind, priority, topic, payload, qos, retain, expiry_s,"
		   " created_us, attempts FROM outbox ORDER BY priority DESC, id",
		   NULL, 0, error);
	if (!st)
		return FALSE;
	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		gint64 id = sqlite3_column_int64(st, 0);
		struct gw_outbox_msg *m;
		const void *payload;

		if (skip && g_hash_table_contains(skip, &id))
			continue;
		m = g_new0(struct gw_outbox_msg, 1);
		m->id = id;
		m->msg_id = col_strdup(st, 1);
		m->kind = col_strdup(st, 2);
		m->priority = sqlite3_column_int(st, 3);
		m->topic = col_strdup(st, 4);
		payload = sqlite3_column_blob(st, 5);
		m->payload_len = (size_t) sqlite3_column_bytes(st, 5);
		m->payload = g_malloc(m->payload_len + 1);
		if (m->payload_len)
			memcpy(m->payload, payload, m->payload_len);
		m->payload[m->payload_len] = '\0';
		m->qos = sqlite3_column_int(st, 6);
		m->retain = sqlite3_column_int(st, 7) != 0;
		m->expiry_s = (uint32_t) sqlite3_column_int64(st, 8);
		m->created_us = sqlite3_column_int64(st, 9);
		m->attempts = sqlite3_column_int(st, 10);
		g_ptr_array_add(ret, m);
		n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		sql_error(s, error, rc, "outbox: peek");
		return FALSE;
	}
	return TRUE;
}

struct id_ctx {
	int64_t id;
};

static gboolean outbox_delete_fn(GwStore *s, void *data, GError **error)
{
	struct id_ctx *c = data;

	return write_sql(s, "outbox: delete", "DELETE FROM outbox WHERE id = ?1",
			 VALS(VI(c->id)), NULL, error);
}

gboolean gw_store_outbox_delete(GwStore *s, int64_t id, GError **error)
{
	struct id_ctx c = { .id = id };

	return run_write(s, W_FREE, "outbox: delete", outbox_delete_fn, &c, error);
}

static gboolean outbox_attempted_fn(GwStore *s, void *data, GError **error)
{
	struct id_ctx *c = data;
	int changes = 0;

	if (!write_sql(s, "outbox: attempted",
		       "UPDATE outbox SET attempts = attempts + 1 WHERE id = ?1",
		       VALS(VI(c->id)), &changes, error))
		return FALSE;
	if (changes == 0) {
		g_set_error(error, GW_STORE_ERROR, GW_STORE_ERROR_NOT_FOUND,
			    "store '%s': outbox: no message %" PRId64, s->path, c->id);
		return FALSE;
	}
	return TRUE;
}

gboolean gw_store_outbox_attempted(GwStore *s, int64_t id, GError **error)
{
	struct id_ctx c = { .id = id };

	return run_write(s, W_FREE, "outbox: attempted", outbox_attempted_fn, &c, error);
}

void gw_store_outbox_stats(GwStore *s, struct gw_outbox_stats *ret)
{
	g_autoptr(StoreQuery) st = query(s, "outbox: stats",
					 "SELECT priority, count(*), min(created_us) FROM outbox"
					 " GROUP BY priority", NULL, 0, NULL);

	memset(ret, 0, sizeof(*ret));
	ret->oldest_created_us = INT64_MIN;
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		int64_t prio = sqlite3_column_int64(st, 0);
		uint64_t n = (uint64_t) sqlite3_column_int64(st, 1);
		int64_t oldest = sqlite3_column_int64(st, 2);

		ret->depth += n;
		if (prio >= 0 && prio < (int64_t) G_N_ELEMENTS(ret->depth_by_prio))
			ret->depth_by_prio[prio] += n;
		if (ret->oldest_created_us == INT64_MIN || oldest < ret->oldest_created_us)
			ret->oldest_created_us = oldest;
	}
}

GHashTable *gw_store_outbox_kinds(GwStore *s, GError **error)
{
	g_autoptr(StoreQuery) st = query(s, "outbox: kinds",
					 "SELECT kind, count(*) FROM outbox GROUP BY kind", NULL, 0,
					 error);
	g_autoptr(GHashTable) t = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	int rc;

	if (!st)
		return NULL;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *) sqlite3_column_text(st, 0);

		g_hash_table_insert(t, g_strdup(k ? k : "unknown"),
				    GUINT_TO_POINTER((guint) sqlite3_column_int64(st, 1)));
	}
	if (rc != SQLITE_DONE) {
		sql_error(s, error, rc, "outbox: kinds");
		return NULL;
	}
	return g_steal_pointer(&t);
}

/* ---- alerts and audit ---- */

static gboolean alert_fn(GwStore *s, void *data, GError **error)
{
	const struct gw_store_alert *a = data;

	return write_sql(s, "alerts: put",
			 "INSERT INTO alerts (alert_id, rule, patient, tier, state, opened_us,"
			 " updated_us, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
			 " ON CONFLICT (alert_id) DO UPDATE SET rule = excluded.rule,"
			 " patient = excluded.patient, tier = excluded.tier,"
			 " state = excluded.state, opened_us = excluded.opened_us,"
			 " updated_us = excluded.updated_us, json = excluded.json",
			 VALS(VT(a->alert_id), VT(a->rule), VT(a->patient), VI(a->tier),
			      VI(a->state), VI(a->opened_us), VI(a->updated_us), VT(a->json)),
			 NULL, error);
}

gboolean gw_store_alert_put(GwStore *s, const struct gw_store_alert *alert, GError **error)
{
	if (!alert || !valid_id("alerts", alert->alert_id, error))
		return FALSE;
	return run_write(s, W_CRITICAL, "alerts: put", alert_fn, (void *) alert, error);
}

gboolean gw_store_alert_foreach(GwStore *s,
				void (*fn)(const struct gw_store_alert *a, void *user_data),
				void *user_data, GError **error)
{
	g_autoptr(GArray) alerts = g_array_new(FALSE, FALSE, sizeof(struct gw_store_alert));
	g_autoptr(GPtrArray) strs = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(StoreQuery) st = NULL;
	int rc;

	st = query(s, "alerts: read",
		   "SELECT alert_id, rule, patient, tier, state, opened_us, updated_us, json"
		   " FROM alerts ORDER BY opened_us, rowid", NULL, 0, error);
	if (!st)
		return FALSE;
	/* all read before the callbacks (alerts are few): fn may write */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct gw_store_alert a = {
			.tier = sqlite3_column_int(st, 3),
			.state = sqlite3_column_int(st, 4),
			.opened_us = sqlite3_column_int64(st, 5),
			.updated_us = sqlite3_column_int64(st, 6),
		};
		char *str[4] = {
			col_strdup(st, 0), col_strdup(st, 1), col_strdup(st, 2), col_strdup(st, 7),
		};

		for (size_t i = 0; i < G_N_ELEMENTS(str); i++)
			g_ptr_array_add(strs, str[i]);
		a.alert_id = str[0];
		a.rule = str[1];
		a.patient = str[2];
		a.json = str[3];
		g_array_append_val(alerts, a);
	}
	if (rc != SQLITE_DONE) {
		sql_error(s, error, rc, "alerts: read");
		return FALSE;
	}
	g_clear_pointer(&st, query_done);
	for (guint i = 0; i < alerts->len; i++)
		fn(&g_array_index(alerts, struct gw_store_alert, i), user_data);
	return TRUE;
}

static void hash_u64(GChecksum *c, uint64_t v)
{
	guint8 b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (guint8) (v >> (56 - 8 * i));
	g_checksum_update(c, b, sizeof(b));
}

/* A string as its length (u64, big endian; all ones for NULL) and its
 * bytes: no two field lists hash the same bytes. */
static void hash_str(GChecksum *c, const char *str)
{
	size_t len = str ? strlen(str) : 0;

	hash_u64(c, str ? (uint64_t) len : UINT64_MAX);
	if (len)
		g_checksum_update(c, (const guchar *) str, (gssize) len);
}

static char *audit_hash(const char *prev, int64_t seq, int64_t at_us, const char *alert_id,
			const char *event, const char *detail)
{
	g_autoptr(GChecksum) c = g_checksum_new(G_CHECKSUM_SHA256);

	hash_str(c, prev);
	hash_u64(c, (uint64_t) seq);
	hash_u64(c, (uint64_t) at_us);
	hash_str(c, alert_id);
	hash_str(c, event);
	hash_str(c, detail);
	return g_strdup(g_checksum_get_string(c));
}

struct audit_ctx {
	int64_t at_us;
	const char *alert_id;
	const char *event;
	const char *detail;
};

static gboolean audit_last(GwStore *s, int64_t *ret_seq, char **ret_hash, GError **error)
{
	g_autoptr(StoreQuery) st = query(s, "audit: last",
					 "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
					 NULL, 0, error);
	int rc;

	if (!st)
		return FALSE;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		*ret_seq = 0;
		*ret_hash = g_strdup(ZERO_HASH);
		return TRUE;
	}
	if (rc != SQLITE_ROW) {
		sql_error(s, error, rc, "audit: last");
		return FALSE;
	}
	*ret_seq = sqlite3_column_int64(st, 0);
	*ret_hash = col_strdup(st, 1);
	return TRUE;
}

static gboolean audit_fn(GwStore *s, void *data, GError **error)
{
	const struct audit_ctx *c = data;
	g_autofree char *prev = NULL;
	g_autofree char *hash = NULL;
	int64_t seq;

	if (!audit_last(s, &seq, &prev, error))
		return FALSE;
	seq++;
	hash = audit_hash(prev, seq, c->at_us, c->alert_id, c->event, c->detail);
	return write_sql(s, "audit: append",
			 "INSERT INTO audit (seq, at_us, alert_id, event, detail, hash)"
			 " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
			 VALS(VI(seq), VI(c->at_us), VT(c->alert_id), VT(c->event),
			      VT(c->detail), VT(hash)), NULL, error);
}

gboolean gw_store_audit_append(GwStore *s, int64_t at_us, const char *alert_id,
			       const char *event, const char *detail, GError **error)
{
	struct audit_ctx c = {
		.at_us = at_us, .alert_id = alert_id, .event = event, .detail = detail,
	};

	if (!valid_id("audit event", event, error))
		return FALSE;
	return run_write(s, W_CRITICAL, "audit: append", audit_fn, &c, error);
}

gboolean gw_store_audit_verify(GwStore *s, int64_t *ret_bad_seq, GError **error)
{
	g_autoptr(StoreQuery) st = NULL;
	char prev[sizeof(ZERO_HASH)] = ZERO_HASH;
	int64_t expect = 1;
	int rc;

	st = query(s, "audit: verify",
		   "SELECT seq, at_us, alert_id, event, detail, hash FROM audit ORDER BY seq",
		   NULL, 0, error);
	if (!st)
		return FALSE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0);
		const char *stored = (const char *) sqlite3_column_text(st, 5);
		g_autofree char *hash = NULL;

		if (seq != expect) {
			if (ret_bad_seq)
				*ret_bad_seq = seq;
			g_set_error(error, GW_STORE_ERROR, GW_STORE_ERROR_CORRUPT,
				    "store '%s': audit: entry %" PRId64 " is missing (the chain"
				    " goes on at %" PRId64 ")", s->path, expect, seq);
			return FALSE;
		}
		hash = audit_hash(prev, seq, sqlite3_column_int64(st, 1),
				  (const char *) sqlite3_column_text(st, 2),
				  (const char *) sqlite3_column_text(st, 3),
				  (const char *) sqlite3_column_text(st, 4));
		if (!stored || strcmp(hash, stored) != 0) {
			if (ret_bad_seq)
				*ret_bad_seq = seq;
			g_set_error(error, GW_STORE_ERROR, GW_STORE_ERROR_CORRUPT,
				    "store '%s': audit: entry %" PRId64 " does not match its hash"
				    " (changed, or the entry before it was)", s->path, seq);
			return FALSE;
		}
		g_strlcpy(prev, stored, sizeof(prev));
		expect++;
	}
	if (rc != SQLITE_DONE) {
		sql_error(s, error, rc, "audit: verify");
		return FALSE;
	}
	return TRUE;
}

uint64_t gw_store_audit_count(GwStore *s)
{
	return (uint64_t) scalar_int(s, "SELECT count(*) FROM audit");
}

gboolean gw_store_audit_foreach(GwStore *s, const char *alert_id,
				void (*fn)(int64_t at_us, const char *event, const char *detail,
					   void *user_data),
				void *user_data, GError **error)
{
	g_autoptr(StoreQuery) st = NULL;
	int rc;

	if (!valid_id("audit", alert_id, error))
		return FALSE;
	st = query(s, "audit: read", "SELECT at_us, event, detail FROM audit"
		   " WHERE alert_id = ?1 ORDER BY seq", VALS(VT(alert_id)), error);
	if (!st)
		return FALSE;
	/* fn must not write: the statement is open */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn(sqlite3_column_int64(st, 0), (const char *) sqlite3_column_text(st, 1),
		   (const char *) sqlite3_column_text(st, 2), user_data);
	if (rc != SQLITE_DONE) {
		sql_error(s, error, rc, "audit: read");
		return FALSE;
	}
	return TRUE;
}

/* ---- device state ---- */

struct device_ctx {
	const char *wearable, *key, *value;
};

static gboolean device_fn(GwStore *s, void *data, GError **error)
{
	const struct device_ctx *c = data;

	if (!c->value)
		return write_sql(s, "device_state: delete",
				 "DELETE FROM device_state WHERE wearable = ?1 AND key = ?2",
				 VALS(VT(c->wearable), VT(c->key)), NULL, error);
	return write_sql(s, "device_state: set",
			 "INSERT INTO device_state (wearable, key, value) VALUES (?1, ?2, ?3)"
			 " ON CONFLICT (wearable, key) DO UPDATE SET value = excluded.value"
			 " WHERE value IS NOT excluded.value",
			 VALS(VT(c->wearable), VT(c->key), VT(c->value)), NULL, error);
}

/* value NULL deletes the key */
gboolean gw_store_device_set(GwStore *s, const char *wearable, const char *key,
			     const char *value, GError **error)
{
	struct device_ctx c = { .wearable = wearable, .key = key, .value = value };

	if (!valid_id("device_state", wearable, error) || !valid_id("device_state", key, error))
		return FALSE;
	return run_write(s, value ? W_ORDINARY : W_FREE, "device_state: set", device_fn, &c,
			 error);
}

gchar *gw_store_device_get(GwStore *s, const char *wearable, const char *key)
{
	g_autoptr(StoreQuery) st = NULL;

	if (!wearable || !key)
		return NULL;
	st = query(s, "device_state: get",
		   "SELECT value FROM device_state WHERE wearable = ?1 AND key = ?2",
		   VALS(VT(wearable), VT(key)), NULL);
	if (!st || sqlite3_step(st) != SQLITE_ROW)
		return NULL;
	return col_strdup(st, 0);
}

/* ---- the disk budget ---- */

uint64_t gw_store_size(GwStore *s)
{
	struct stat st;
	uint64_t size = (uint64_t) scalar_int(s, "PRAGMA page_count") * (uint64_t) s->page_size;

	if (stat(s->wal_path, &st) == 0)
		size += (uint64_t) st.st_size;
	return size;
}

/* Pages in use, as bytes: the database's size once vacuumed and its WAL
 * checkpointed. */
static uint64_t used_bytes(GwStore *s)
{
	int64_t pages = scalar_int(s, "PRAGMA page_count") - scalar_int(s, "PRAGMA freelist_count");

	return (uint64_t) MAX(pages, 0) * (uint64_t) s->page_size;
}

bool gw_store_reserve_used(const GwStore *s)
{
	return s->reserve_used;
}

uint64_t gw_store_budget(const GwStore *s)
{
	return s->budget;
}

void gw_store_set_budget(GwStore *s, uint64_t budget_bytes)
{
	s->budget = budget_bytes;
}

gboolean gw_store_check(GwStore *s, char **ret_result, GError **error)
{
	g_autoptr(GString) res = g_string_new(NULL);
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(10)", -1, &st, NULL);

	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *r = (const char *) sqlite3_column_text(st, 0);

		g_string_append_printf(res, "%s%s", res->len ? "; " : "", r ? r : "");
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		sql_error(s, error, rc, "quick_check");
		return FALSE;
	}
	if (strcmp(res->str, "ok") != 0) {
		g_set_error(error, GW_STORE_ERROR, GW_STORE_ERROR_CORRUPT,
			    "store '%s': quick_check: %s", s->path, res->str);
		return FALSE;
	}
	if (ret_result)
		*ret_result = g_string_free(g_steal_pointer(&res), FALSE);
	return TRUE;
}

/* Checkpoints the WAL and truncates it, and gives free pages back to the
 * file system: the file then is as big as what it holds. */
static gboolean compact(GwStore *s, GError **error)
{
	if (!set_max_pages(s, s->max_pages_default, error) ||
	    !exec_simple(s, "PRAGMA wal_checkpoint(TRUNCATE)", "checkpoint", error))
		return FALSE;
	if (scalar_int(s, "PRAGMA freelist_count") == 0)
		return TRUE;
	return exec_simple(s, "PRAGMA incremental_vacuum", "incremental vacuum", error) &&
	       exec_simple(s, "PRAGMA wal_checkpoint(TRUNCATE)", "checkpoint", error);
}

struct shed_ctx {
	const char *what;
	write_fn fn;
	int n;			/* rows the last batch deleted */
};

/* The oldest telemetry in the outbox. */
static gboolean telemetry_shed_fn(GwStore *s, void *data, GError **error)
{
	struct shed_ctx *c = data;

	G_STATIC_ASSERT(GW_PRIO_TELEMETRY == 0);
	return write_sql(s, c->what, "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
			 " WHERE priority = 0 ORDER BY id LIMIT ?1)",
			 VALS(VI(SHED_BATCH)), &c->n, error);
}

struct shed_bound {
	int64_t wid;
	int64_t seq;		/* min(watermark, cursor), serial order */
};

struct shed_pick {
	int64_t wid;
	int64_t lo, hi;		/* the seqs to shed from, oldest first */
	int64_t boot, mono_us;	/* when the oldest of them was received */
};

/* Raw records already aggregated: a wearable's seqs up to its watermark,
 * never past its cursor (the cursor's run of seqs stays proven by rows),
 * oldest first in serial order; never a pain report. A batch takes the
 * oldest of one wearable: the one whose oldest sheddable record was
 * received first (boot, then CLOCK_MONOTONIC: wall-clock steps do not
 * reorder it; ties by the wearable first stored). */
static gboolean records_shed_fn(GwStore *s, void *data, GError **error)
{
	struct shed_ctx *c = data;
	g_autoptr(GArray) bounds = g_array_new(FALSE, FALSE, sizeof(struct shed_bound));
	g_autoptr(StoreQuery) st = NULL;
	struct shed_pick best = { 0 };
	int rc;

	G_STATIC_ASSERT(WB_RECORD_PAIN == 3);
	c->n = 0;
	st = query(s, c->what, "SELECT w.id, w.aggregated_seq, c.seq FROM wearables w"
		   " JOIN cursors c ON c.wearable = w.name"
		   " WHERE w.aggregated_seq IS NOT NULL ORDER BY w.id", NULL, 0, error);
	if (!st)
		return FALSE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint32_t wm = (uint32_t) sqlite3_column_int64(st, 1);
		uint32_t cur = (uint32_t) sqlite3_column_int64(st, 2);
		struct shed_bound b = {
			.wid = sqlite3_column_int64(st, 0), .seq = wb_seq_after(wm, cur) ? cur : wm,
		};

		g_array_append_val(bounds, b);
	}
	if (rc != SQLITE_DONE) {
		sql_error(s, error, rc, c->what);
		return FALSE;
	}
	g_clear_pointer(&st, query_done);

	for (guint i = 0; i < bounds->len; i++) {
		const struct shed_bound *b = &g_array_index(bounds, struct shed_bound, i);
		/* up to the bound in serial order: bound - 2^31 + 1 .. bound,
		 * the part before 0 first if it wraps */
		int64_t ranges[2][2] = {
			{ b->seq - SEQ_HALF + 1, b->seq }, { 1, 0 },
		};

		if (ranges[0][0] < 0) {
			ranges[1][0] = 0;
			ranges[1][1] = b->seq;
			ranges[0][0] += SEQ_MAX + 1;
			ranges[0][1] = SEQ_MAX;
		}
		for (int r = 0; r < 2; r++) {
			g_autoptr(StoreQuery) q = NULL;
			int64_t boot, mono;

			if (ranges[r][0] > ranges[r][1])
				continue;
			q = query(s, c->what, "SELECT ifnull(boot, 0), mono_us FROM records"
				  " WHERE wearable_id = ?1 AND seq BETWEEN ?2 AND ?3 AND type != 3"
				  " ORDER BY seq LIMIT 1",
				  VALS(VI(b->wid), VI(ranges[r][0]), VI(ranges[r][1])), error);
			if (!q)
				return FALSE;
			rc = sqlite3_step(q);
			if (rc == SQLITE_DONE)
				continue;
			if (rc != SQLITE_ROW) {
				sql_error(s, error, rc, c->what);
				return FALSE;
			}
			boot = sqlite3_column_int64(q, 0);
			mono = sqlite3_column_int64(q, 1);
			if (!best.wid || boot < best.boot || (boot == best.boot && mono < best.mono_us))
				best = (struct shed_pick) {
					.wid = b->wid, .lo = ranges[r][0], .hi = ranges[r][1],
					.boot = boot, .mono_us = mono,
				};
			break;
		}
	}
	if (!best.wid)
		return TRUE;
	return write_sql(s, c->what,
			 "DELETE FROM records WHERE wearable_id = ?1 AND seq IN (SELECT seq"
			 " FROM records WHERE wearable_id = ?1 AND seq BETWEEN ?2 AND ?3"
			 " AND type != 3 ORDER BY seq LIMIT ?4)",
			 VALS(VI(best.wid), VI(best.lo), VI(best.hi), VI(SHED_BATCH)), &c->n, error);
}

/* Deletes with c's function, a batch at a time, until the pages in use
 * are at most low or nothing is left to delete; then commits. */
static gboolean shed(GwStore *s, struct shed_ctx *c, uint64_t low, uint64_t *count,
		     GError **error)
{
	while (used_bytes(s) > low) {
		if (!run_write(s, W_SHED, c->what, c->fn, c, error))
			return FALSE;
		if (c->n == 0)
			break;
		*count += (uint64_t) c->n;
	}
	return gw_store_commit(s, error);
}

gboolean gw_store_enforce_budget(GwStore *s, struct gw_store_shed *ret, GError **error)
{
	struct shed_ctx records = { .what = "records: shed", .fn = records_shed_fn };
	struct shed_ctx telemetry = { .what = "outbox: shed", .fn = telemetry_shed_fn };
	struct gw_store_shed done = { 0 };
	uint64_t low = s->budget - s->budget / 10;
	gboolean ok = TRUE;

	if (!gw_store_commit(s, error))
		return FALSE;
	if (s->budget) {
		ok = compact(s, error);
		if (ok && used_bytes(s) > low)
			ok = shed(s, &records, low, &done.records, error) &&
			     shed(s, &telemetry, low, &done.telemetry, error) &&
			     compact(s, error);
	}
	if (ok && !s->reserve_present)
		reserve_make(s, true);
	if (ret)
		*ret = done;
	return ok;
}
