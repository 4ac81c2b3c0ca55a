/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"

struct gw_journal {
	int fd;
	char *path;
	GHashTable *seqs;	/* every seq held, durable or pending */
	GByteArray *pending;	/* encoded entries not yet written */
	bool has_pending_max;
	uint32_t pending_max;
	bool has_durable;
	uint32_t durable;
	uint64_t count;
	uint64_t duplicates;
	char *cursor_path;
	bool has_cursor;
	uint32_t cursor;
};

static void note_max(bool *has, uint32_t *max, uint32_t seq)
{
	if (!*has || wb_seq_after(seq, *max)) {
		*max = seq;
		*has = true;
	}
}

void gw_journal_free(GwJournal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	g_free(j->path);
	g_free(j->cursor_path);
	g_clear_pointer(&j->seqs, g_hash_table_unref);
	g_clear_pointer(&j->pending, g_byte_array_unref);
	g_free(j);
}

/* Walks the file's entries; returns the offset after the last whole,
 * decodable entry, so a torn or corrupt tail can be cut off. */
static gsize scan(GwJournal *j, const guint8 *data, gsize len,
		  void (*fn)(const struct wb_record *, void *), void *user_data)
{
	gsize pos = 0;

	while (len - pos >= 2) {
		gsize n = (gsize) data[pos] | (gsize) data[pos + 1] << 8;
		struct wb_record rec;
		size_t used;

		if (len - pos - 2 < n ||
		    wb_record_decode(data + pos + 2, n, &rec, &used, NULL) < 0 ||
		    used != n)
			break;
		if (fn)
			fn(&rec, user_data);
		else {
			g_hash_table_add(j->seqs, GUINT_TO_POINTER(rec.seq));
			note_max(&j->has_durable, &j->durable, rec.seq);
			j->count++;
		}
		pos += 2 + n;
	}
	return pos;
}

GwJournal *gw_journal_open(const char *dir, const char *name, GError **error)
{
	g_autoptr(GwJournal) j = g_new0(GwJournal, 1);
	g_autofree guint8 *data = NULL;
	gsize len = 0;

	j->fd = -1;
	j->seqs = g_hash_table_new(g_direct_hash, g_direct_equal);
	j->pending = g_byte_array_new();
	if (g_mkdir_with_parents(dir, 0700) < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "journal directory '%s': %s", dir, g_strerror(errno));
		return NULL;
	}
	j->path = g_strdup_printf("%s/%s.journal", dir, name);
	j->fd = open(j->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "journal '%s': %s", j->path, g_strerror(errno));
		return NULL;
	}
	if (!g_file_get_contents(j->path, (gchar **) &data, &len, error)) {
		g_prefix_error(error, "journal '%s': ", j->path);
		return NULL;
	}
	gsize good = scan(j, data, len, NULL, NULL);
	if (good != len && ftruncate(j->fd, (off_t) good) < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "journal '%s': cutting a torn tail at %" G_GSIZE_FORMAT ": %s",
			    j->path, good, g_strerror(errno));
		return NULL;
	}
	if (lseek(j->fd, (off_t) good, SEEK_SET) < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "journal '%s': %s", j->path, g_strerror(errno));
		return NULL;
	}
	j->cursor_path = g_strdup_printf("%s/%s.cursor", dir, name);
	g_autofree char *cur = NULL;
	if (g_file_get_contents(j->cursor_path, &cur, NULL, NULL)) {
		char *end = NULL;
		guint64 v = g_ascii_strtoull(cur, &end, 10);

		/* a cursor that does not parse is ignored: the sync then
		 * starts from the wearable's oldest record, and the journal
		 * drops what it already holds */
		if (end != cur && (*end == '\n' || *end == '\0') && v <= G_MAXUINT32) {
			j->has_cursor = true;
			j->cursor = (uint32_t) v;
		}
	}
	return g_steal_pointer(&j);
}

int gw_journal_append(GwJournal *j, const struct wb_record *recs, size_t n,
		      GError **error)
{
	int added = 0;

	for (size_t i = 0; i < n; i++) {
		guint8 buf[2 + 64];
		ssize_t len;

		if (g_hash_table_contains(j->seqs, GUINT_TO_POINTER(recs[i].seq))) {
			j->duplicates++;
			continue;
		}
		len = wb_record_encode(&recs[i], buf + 2, sizeof(buf) - 2);
		if (len < 0) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    "journal '%s': record seq %u: %s", j->path,
				    recs[i].seq, wb_strerror((int) len));
			return -1;
		}
		buf[0] = (guint8) len;
		buf[1] = (guint8) (len >> 8);
		g_byte_array_append(j->pending, buf, (guint) len + 2);
		g_hash_table_add(j->seqs, GUINT_TO_POINTER(recs[i].seq));
		note_max(&j->has_pending_max, &j->pending_max, recs[i].seq);
		added++;
	}
	return added;
}

gboolean gw_journal_sync(GwJournal *j, GError **error)
{
	gsize off = 0;

	while (off < j->pending->len) {
		ssize_t w = write(j->fd, j->pending->data + off, j->pending->len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = errno;

			/* drop the partial entry so the file stays whole; the
			 * records stay pending and the next sync tries again */
			off_t end = lseek(j->fd, 0, SEEK_CUR);
			if (end >= 0 && ftruncate(j->fd, end - (off_t) off) == 0)
				(void) lseek(j->fd, end - (off_t) off, SEEK_SET);
			g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e),
				    "journal '%s': write: %s", j->path, g_strerror(e));
			return FALSE;
		}
		off += (gsize) w;
	}
	if (fdatasync(j->fd) < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "journal '%s': fdatasync: %s", j->path, g_strerror(errno));
		return FALSE;
	}
	for (gsize pos = 0; pos + 2 <= j->pending->len;) {
		gsize n = (gsize) j->pending->data[pos] | (gsize) j->pending->data[pos + 1] << 8;
		j->count++;
		pos += 2 + n;
	}
	g_byte_array_set_size(j->pending, 0);
	if (j->has_pending_max)
		note_max(&j->has_durable, &j->durable, j->pending_max);
	j->has_pending_max = false;
	return TRUE;
}

gboolean gw_journal_set_cursor(GwJournal *j, uint32_t seq, GError **error)
{
	g_autofree char *text = g_strdup_printf("%u\n", seq);

	if (j->has_cursor && j->cursor == seq)
		return TRUE;
	/* g_file_set_contents writes a temporary file, fsyncs it and
	 * renames it over the old one */
	if (!g_file_set_contents(j->cursor_path, text, -1, error)) {
		g_prefix_error(error, "cursor '%s': ", j->cursor_path);
		return FALSE;
	}
	j->has_cursor = true;
	j->cursor = seq;
	return TRUE;
}

bool gw_journal_get_cursor(const GwJournal *j, uint32_t *ret_seq)
{
	if (j->has_cursor)
		*ret_seq = j->cursor;
	return j->has_cursor;
}

bool gw_journal_durable_seq(const GwJournal *j, uint32_t *ret_seq)
{
	if (j->has_durable)
		*ret_seq = j->durable;
	return j->has_durable;
}

uint64_t gw_journal_count(const GwJournal *j)
{
	return j->count;
}

uint64_t gw_journal_duplicates(const GwJournal *j)
{
	return j->duplicates;
}

bool gw_journal_has(const GwJournal *j, uint32_t seq)
{
	return g_hash_table_contains(j->seqs, GUINT_TO_POINTER(seq));
}

gboolean gw_journal_foreach(GwJournal *j,
			    void (*fn)(const struct wb_record *rec, void *user_data),
			    void *user_data, GError **error)
{
	g_autofree guint8 *data = NULL;
	gsize len = 0;

	if (!g_file_get_contents(j->path, (gchar **) &data, &len, error))
		return FALSE;
	scan(j, data, len, fn, user_data);
	return TRUE;
}
