/* SPDX-License-Identifier: MIT */
/*
 * GwStore: the gateway's one durable store, an SQLite file in WAL mode
 * under the state directory (docs/architecture.md, "The store").
 *
 * What it holds: the wearables' records (deduplicated by wearable and seq),
 * each wearable's sync cursor, aggregates (latest revision per window),
 * the outbox of MQTT messages, alerts with their hash-chained audit trail,
 * and per-wearable device state.
 *
 * Transactions. Every write goes into one open transaction that the caller
 * ends with gw_store_commit() (one fsync: synchronous=FULL). The caller
 * batches telemetry (a commit every second or so: flash wear) and commits
 * at once before anything is acknowledged to a wearable or the clinic (a
 * pain report, an alert). Nothing written is visible to a power cut before
 * its commit returned TRUE.
 *
 * The sync cursor of a wearable (the seq up to which every record it held
 * is committed, no gap) moves in the same transaction as its records:
 * gw_store_add_records() extends it contiguously over the seqs now held,
 * gw_store_advance_cursor() moves it to a value the link proved (a
 * verified history report) and extends from there.
 *
 * Disk. A budget (bytes of database and WAL) is enforced by
 * gw_store_enforce_budget(): raw records already aggregated (up to the
 * aggregation watermark, never past the cursor) go first, oldest first,
 * then the oldest telemetry in the outbox; never pain reports, alerts or
 * audit.
 * Ordinary writes fail with GW_STORE_ERROR_FULL at the budget (the caller
 * holds back: a wearable keeps what it was not told to delete). Critical
 * writes (pain reports, alerts, audit, their outbox messages) may use a
 * reserve above the budget, and on a real ENOSPC the reserve file kept
 * beside the database is deleted to make room for them.
 *
 * Corruption. A file SQLite reports as corrupt (on open, or by
 * PRAGMA quick_check) is moved aside with its -wal and -shm to
 * "<path>.corrupt-<UTC YYYYmmddTHHMMSSZ>" and a fresh store is created;
 * gw_store_corrupt_aside() then names the file, for the technical alarm.
 *
 * Revisions. A consumer keeps the highest revision of an aggregate window,
 * so revisions must stay above what was published even when the database
 * is lost. "<path>.revisions" (a key file) keeps a bound above every
 * revision stored, raised before a revision above it is stored; a fresh
 * database numbers revisions above the bound it found.
 *
 * Not thread-safe: the main loop's thread owns it.
 */
#ifndef REHABLINK_GATEWAY_STORE_H
#define REHABLINK_GATEWAY_STORE_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "wearable.h"

#define GW_STORE_ERROR gw_store_error_quark()
GQuark gw_store_error_quark(void);
enum gw_store_error {
	GW_STORE_ERROR_IO,		/* SQLite or the file system failed */
	GW_STORE_ERROR_FULL,		/* the budget or the disk is full */
	GW_STORE_ERROR_CORRUPT,		/* found corrupt while running */
	GW_STORE_ERROR_SCHEMA,		/* a newer schema than this build knows */
	GW_STORE_ERROR_INVALID,		/* a bad argument */
	GW_STORE_ERROR_NOT_FOUND,
};

/* The schema version this build writes (PRAGMA user_version). */
#define GW_STORE_SCHEMA_VERSION 4

struct gw_store_config {
	const char *path;		/* the database file */
	uint64_t budget_bytes;		/* 0: no budget */
	uint64_t reserve_bytes;		/* for critical writes above the budget,
					 * and the size of <path>.reserve;
					 * default 1 MiB */
};
void gw_store_config_init(struct gw_store_config *cfg);

typedef struct gw_store GwStore;

/* Opens or creates the store, migrating an older schema. A corrupt file is
 * moved aside (see above) and a fresh store returned. Fails on a file it
 * cannot open or create, or a schema newer than GW_STORE_SCHEMA_VERSION. */
GwStore *gw_store_open(const struct gw_store_config *cfg, GError **error);
/* NULL-safe. Commits what is open. */
void gw_store_free(GwStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwStore, gw_store_free)

/* The path a corrupt file was moved to on open, or NULL. */
const char *gw_store_corrupt_aside(const GwStore *store);

/* Ends the open transaction durably. On failure the transaction is rolled
 * back: everything written since the last commit is gone, and the caller
 * must treat it as never stored. */
gboolean gw_store_commit(GwStore *store, GError **error);
/* Rows written since the last commit. */
uint64_t gw_store_uncommitted(const GwStore *store);

/* ---- records ---- */

/* How the gateway stamped a record's receipt. */
struct gw_store_stamp {
	int64_t received_us;		/* wall clock, Unix us */
	bool clock_synced;		/* received_us is from a synchronised clock */
	int64_t mono_us;		/* CLOCK_MONOTONIC at receipt */
	const char *boot_id;		/* /proc/sys/kernel/random/boot_id */
};

/* Adds records of one wearable (an id such as "AABBCCDDEEFF"); a seq
 * already held is skipped. Pain records are critical writes. Extends the
 * cursor. Returns the number added, or -1 with error set. */
int gw_store_add_records(GwStore *store, const char *wearable,
			 const struct wb_record *recs, size_t n,
			 const struct gw_store_stamp *stamp, GError **error);
gboolean gw_store_has_record(GwStore *store, const char *wearable, uint32_t seq);
uint64_t gw_store_record_count(GwStore *store, const char *wearable);

/* The cursor: false if the wearable has none yet. */
bool gw_store_get_cursor(GwStore *store, const char *wearable, uint32_t *ret_seq);
/* Moves the cursor to seq if seq is after it (or it has none), then
 * extends it contiguously over the seqs held. */
gboolean gw_store_advance_cursor(GwStore *store, const char *wearable, uint32_t seq,
				 GError **error);

struct gw_store_record {
	struct wb_record rec;
	struct gw_store_stamp stamp;	/* boot_id points into the store's
					 * buffer, valid during the callback */
};
/* Calls fn for each record of the wearable after its aggregation
 * watermark (see gw_store_mark_aggregated; every record while it has
 * none), in seq order: serial order from the watermark, plain integer
 * order without one (for the aggregator after a restart). fn may write to
 * the store; records it marks aggregated meanwhile are skipped from the
 * next page (256 records) on. */
gboolean gw_store_foreach_unaggregated(GwStore *store, const char *wearable,
				       void (*fn)(const struct gw_store_record *r,
						  void *user_data),
				       void *user_data, GError **error);
/* Marks the wearable's records up to last aggregated: no window that can
 * still be revised holds them (gw_agg_needed_seq), the raw rows may be
 * shed. One watermark per wearable moves
 * forward to last (serial order, never back), so every record up to it
 * counts as aggregated, including any before first. first is accepted for
 * API compatibility and only checked (last must not be before it); a
 * range ending at or before the watermark changes nothing, and so does a
 * wearable the store never held a record of. A record added later at or
 * before the watermark (history synced after the live records past it
 * were aggregated) moves the watermark back to just before it: it is not
 * aggregated until marked again. */
gboolean gw_store_mark_aggregated(GwStore *store, const char *wearable,
				  uint32_t first, uint32_t last, GError **error);
/* Calls fn for every record received (received_us) at or after
 * since_us, of one type (a WB_REC_* value) or of every type (type < 0),
 * by wearable then seq, read a page at a time; the wearable is its
 * store id ("AABBCCDDEEFF"). fn must not write to the store. A record
 * that does not decode stops the walk with GW_STORE_ERROR_CORRUPT. For
 * exports and for reloading the pain history at start. */
gboolean gw_store_foreach_record_since(GwStore *store, int64_t since_us, int type,
				       void (*fn)(const char *wearable,
						  const struct gw_store_record *r,
						  void *user_data),
				       void *user_data, GError **error);
/* The wearables the store holds records or state for, sorted. */
GPtrArray *gw_store_wearables(GwStore *store);

/* ---- aggregates: the latest revision of each window ---- */

struct gw_store_aggregate {
	const char *aggregate_id;	/* stable per window */
	const char *wearable;
	int kind;			/* the caller's: minute, day */
	int64_t start_us;
	int64_t end_us;
	int revision;			/* >= 1 */
	const char *json;		/* the values, as the caller encodes them */
};
gboolean gw_store_put_aggregate(GwStore *store, const struct gw_store_aggregate *agg,
				GError **error);
/* The revision stored for the id, 0 if none. */
int gw_store_aggregate_revision(GwStore *store, const char *aggregate_id);
/* The revision to publish next for the id: one above the stored one, and
 * above every revision published before the database was lost (see
 * "Revisions" above): 1 in a store that was never lost. */
int gw_store_aggregate_next_revision(GwStore *store, const char *aggregate_id);
/* The json stored for the id (free it), NULL if none. */
gchar *gw_store_aggregate_json(GwStore *store, const char *aggregate_id);

/* Calls fn for the latest revision of every window of the wearable (NULL:
 * every wearable) that ends after since_us, by kind then start. */
gboolean gw_store_foreach_aggregate(GwStore *store, const char *wearable, int64_t since_us,
				    void (*fn)(const struct gw_store_aggregate *a,
					       void *user_data),
				    void *user_data, GError **error);

/* ---- the outbox ---- */

/* Higher drains first; shedding takes GW_PRIO_TELEMETRY only. */
enum gw_prio {
	GW_PRIO_TELEMETRY = 0,		/* aggregates, wearable status, FHIR */
	GW_PRIO_STATUS = 1,		/* gateway status, config state, errors */
	GW_PRIO_PAIN = 2,		/* pain reports: critical */
	GW_PRIO_ALERT = 3,		/* alerts and their updates: critical */
};

struct gw_outbox_msg {
	int64_t id;			/* assigned by the store, increasing */
	char *msg_id;			/* the payload's UUID: unique */
	char *kind;			/* rl_topic_kind_name(), for counters */
	int priority;			/* enum gw_prio */
	char *topic;
	char *payload;
	size_t payload_len;
	int qos;
	bool retain;
	uint32_t expiry_s;		/* MQTT 5 message expiry, 0: none */
	int64_t created_us;		/* wall clock */
	int attempts;			/* publishes tried */
};
void gw_outbox_msg_free(struct gw_outbox_msg *m);
typedef struct gw_outbox_msg GwOutboxMsg;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwOutboxMsg, gw_outbox_msg_free)

/* Adds a message (id is ignored and set); a msg_id already queued is an
 * error (GW_STORE_ERROR_INVALID). GW_PRIO_PAIN and GW_PRIO_ALERT are
 * critical writes. */
gboolean gw_store_outbox_put(GwStore *store, struct gw_outbox_msg *m, GError **error);
/* Up to max messages, priority first, then oldest first (id), skipping
 * those whose id is in skip (a GHashTable of int64 ids, may be NULL).
 * Appends struct gw_outbox_msg * to ret (which should free them). */
gboolean gw_store_outbox_peek(GwStore *store, size_t max, GHashTable *skip,
			      GPtrArray *ret, GError **error);
/* On PUBACK. Deleting an id not there is not an error (a crash replayed). */
gboolean gw_store_outbox_delete(GwStore *store, int64_t id, GError **error);
gboolean gw_store_outbox_attempted(GwStore *store, int64_t id, GError **error);
struct gw_outbox_stats {
	uint64_t depth;			/* messages waiting */
	uint64_t depth_by_prio[GW_PRIO_ALERT + 1];
	int64_t oldest_created_us;	/* RL_TIME_NONE-like INT64_MIN if empty */
};
void gw_store_outbox_stats(GwStore *store, struct gw_outbox_stats *ret);
/* Messages waiting per kind: a table kind (char *) -> count
 * (GUINT_TO_POINTER); NULL kinds count as "unknown". */
GHashTable *gw_store_outbox_kinds(GwStore *store, GError **error);

/* ---- alerts and audit ---- */

struct gw_store_alert {
	const char *alert_id;		/* UUID, stable across re-notifications */
	const char *rule;
	const char *patient;
	int tier;			/* enum rl_alert_tier */
	int state;			/* enum rl_alert_state */
	int64_t opened_us;
	int64_t updated_us;
	const char *json;		/* the engine's full alert state */
};
/* Inserts or replaces by alert_id. Critical. */
gboolean gw_store_alert_put(GwStore *store, const struct gw_store_alert *alert,
			    GError **error);
/* Calls fn for every alert in opened order; strings valid during the
 * callback. */
gboolean gw_store_alert_foreach(GwStore *store,
				void (*fn)(const struct gw_store_alert *a, void *user_data),
				void *user_data, GError **error);

/* Appends an audit entry chained to the previous one: hash =
 * SHA-256(previous hash | seq | at_us | alert_id | event | detail), hex.
 * Critical. */
gboolean gw_store_audit_append(GwStore *store, int64_t at_us, const char *alert_id,
			       const char *event, const char *detail, GError **error);
/* Walks the chain: TRUE if every entry's hash matches and no seq is
 * missing; else FALSE with *ret_bad_seq the first bad entry (or the one
 * after a gap) and error saying what. */
gboolean gw_store_audit_verify(GwStore *store, int64_t *ret_bad_seq, GError **error);
uint64_t gw_store_audit_count(GwStore *store);
/* Calls fn for each audit entry of one alert, in order. */
gboolean gw_store_audit_foreach(GwStore *store, const char *alert_id,
				void (*fn)(int64_t at_us, const char *event, const char *detail,
					   void *user_data),
				void *user_data, GError **error);

/* ---- device state: small key/values per wearable ---- */

gboolean gw_store_device_set(GwStore *store, const char *wearable, const char *key,
			     const char *value, GError **error);
/* The value (free it), or NULL. */
gchar *gw_store_device_get(GwStore *store, const char *wearable, const char *key);

/* ---- the disk budget ---- */

/* Bytes used by the database and its WAL. */
uint64_t gw_store_size(GwStore *store);
struct gw_store_shed {
	uint64_t records;		/* raw records removed */
	uint64_t telemetry;		/* outbox messages removed */
};
/* Sheds (committing) until the size is under the budget's low mark (90%),
 * in the order above, and recreates the reserve file if it was used.
 * TRUE also when nothing sheddable is left (say so in ret->...). */
gboolean gw_store_enforce_budget(GwStore *store, struct gw_store_shed *ret,
				 GError **error);
/* The reserve was needed (the budget or the disk was full for a critical
 * write) since the store opened. */
bool gw_store_reserve_used(const GwStore *store);
uint64_t gw_store_budget(const GwStore *store);
/* A new budget (0: none), e.g. from a reloaded config; applies to the
 * next write and the next gw_store_enforce_budget(). */
void gw_store_set_budget(GwStore *store, uint64_t budget_bytes);

/* SQLite's PRAGMA quick_check over the whole file: TRUE with *ret_result
 * "ok", or FALSE with what it found (or why it could not run) in
 * error; GW_STORE_ERROR_CORRUPT when the check found damage. */
gboolean gw_store_check(GwStore *store, char **ret_result, GError **error);

#endif
