/* SPDX-License-Identifier: MIT */
/*
 * A durable record journal: the stand-in store for the BLE path until the
 * SQLite store lands. One append-only file per wearable, holding its
 * records as the wire encoding (proto/wearable.h, 1.3) behind a u16
 * length. Appends are buffered and made durable by gw_journal_sync
 * (fdatasync), which returns the highest sequence number whose records are
 * all on disk: the number the link may tell the wearable to delete up to.
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

/* true and *ret_seq: the highest seq S such that every record the journal
 * was given up to S (in arrival order) is durable; false if none yet. */
bool gw_journal_durable_seq(const GwJournal *j, uint32_t *ret_seq);
/* Records durable, duplicates dropped, and whether seq is held. */
uint64_t gw_journal_count(const GwJournal *j);
uint64_t gw_journal_duplicates(const GwJournal *j);
bool gw_journal_has(const GwJournal *j, uint32_t seq);
/* Calls fn for every durable record in file order. */
gboolean gw_journal_foreach(GwJournal *j,
			    void (*fn)(const struct wb_record *rec, void *user_data),
			    void *user_data, GError **error);

#endif
