/* SPDX-License-Identifier: MIT */
/*
 * A durable record journal: the stand-in store for the BLE path until the
 * SQLite store lands. One append-only file per wearable, holding its
 * records as the wire encoding (proto/wearable.h, 1.3) behind a u16
 * length. Appends are buffered and made durable by gw_journal_sync
 * (fdatasync); the caller then tells the link which handovers are
 * committed, and the link alone decides what the wearable may delete.
 *
 * Records are deduplicated by sequence number (a set of what the file
 * holds), so a history re-sent after a lost link is stored once. A torn
 * tail (power cut mid-append) is cut off on open.
 */
#ifndef REHABLINK_GATEWAY_JOURNAL_H
#define REHABLINK_GATEWAY_JOURNAL_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "wearable.h"

typedef struct gw_journal GwJournal;

/* Opens (creating) dir/<name>.journal; name is a wearable id made safe for
 * a file name by the caller. */
GwJournal *gw_journal_open(const char *dir, const char *name, GError **error);
void gw_journal_free(GwJournal *j);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwJournal, gw_journal_free)

/* Queues records; duplicates (a seq already held) are dropped and counted.
 * Returns the number of new records queued, or -1 with error set. */
int gw_journal_append(GwJournal *j, const struct wb_record *recs, size_t n,
		      GError **error);
/* Writes and fdatasyncs what is queued. */
gboolean gw_journal_sync(GwJournal *j, GError **error);

/* true and *ret_seq: the highest seq (serial order) among the durable
 * records; false if none yet. Not a claim that nothing below it is
 * missing: a live record may be stored before the history under it. The
 * link's durable seq (gw_link_get_stats) is the no-gap one. */
bool gw_journal_durable_seq(const GwJournal *j, uint32_t *ret_seq);
/* The sync cursor: the link's durable seq (every record up to it
 * committed, no gap), kept in <name>.cursor beside the journal, written
 * atomically (temporary file, fsync, rename). This, not the highest seq
 * held, is where a restarted gateway resumes the history sync: a live
 * record can be stored before the history below it. */
gboolean gw_journal_set_cursor(GwJournal *j, uint32_t seq, GError **error);
bool gw_journal_get_cursor(const GwJournal *j, uint32_t *ret_seq);

/* Records durable, duplicates dropped, and whether seq is held. */
uint64_t gw_journal_count(const GwJournal *j);
uint64_t gw_journal_duplicates(const GwJournal *j);
bool gw_journal_has(const GwJournal *j, uint32_t seq);
/* Calls fn for every durable record in file order. */
gboolean gw_journal_foreach(GwJournal *j,
			    void (*fn)(const struct wb_record *rec, void *user_data),
			    void *user_data, GError **error);

#endif
