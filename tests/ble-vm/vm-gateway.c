/* SPDX-License-Identifier: MIT */
/*
 * The gateway's own BLE path (GwBle: GwBluez + the link state machine +
 * a journal per wearable) against real bluetoothd in the ble-vm. Run by
 * tests/ble-vm/guest.sh on the central's adapter with the simulator's
 * address allowlisted:
 *
 *   1. reach live with the history synced into the journal  -> "PASS live"
 *   2. the guest script then takes the wearable out of range: the link
 *      must drop                                             -> "PASS link-lost"
 *   3. and come back live, resynced from the durable seq, the journal
 *      contiguous (no gap, no duplicate)                     -> "PASS resync"
 *   4. no device but the allowlisted one was ever connected  -> "PASS allowlist"
 *
 * Exit 0 when every step passed, 1 otherwise.
 */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>

#include "ble.h"

static char *opt_adapter = NULL;
static char *opt_address = NULL;
static char *opt_state = NULL;
static int opt_timeout = 90;

static GMainLoop *loop;
static GwBle *ble;
static int step;
static bool failed;
static gint64 deadline;
static uint32_t live_seq;

static void say(const char *verdict, const char *what, const char *detail)
{
	printf("%s %s%s%s\n", verdict, what, detail ? ": " : "", detail ? detail : "");
	fflush(stdout);
}

static void collect_cb(const struct wb_record *r, void *user_data)
{
	g_array_append_val((GArray *) user_data, r->seq);
}

static gint cmp_seq(gconstpointer a, gconstpointer b)
{
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
	return (x > y) - (x < y);
}

/* every seq from the first held to the last, exactly once (the file is in
 * arrival order: a live record may come before the history it follows) */
static bool journal_contiguous(GwJournal *j, char **detail)
{
	g_autoptr(GArray) seqs = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	g_autoptr(GError) error = NULL;

	if (!gw_journal_foreach(j, collect_cb, seqs, &error)) {
		*detail = g_strdup(error->message);
		return false;
	}
	g_array_sort(seqs, cmp_seq);
	for (guint i = 1; i < seqs->len; i++) {
		uint32_t a = g_array_index(seqs, uint32_t, i - 1);
		uint32_t b = g_array_index(seqs, uint32_t, i);
		if (b != a + 1) {
			*detail = g_strdup_printf("%s: seq %u then %u (of %u records)",
						  b == a ? "duplicate" : "gap", a, b, seqs->len);
			return false;
		}
	}
	*detail = g_strdup_printf("%u records, seq %u..%u", seqs->len,
				  seqs->len ? g_array_index(seqs, uint32_t, 0) : 0,
				  seqs->len ? g_array_index(seqs, uint32_t, seqs->len - 1) : 0);
	return seqs->len > 0;
}

static void max_cb(const struct wb_record *r, void *user_data)
{
	uint32_t *max = user_data;

	if (wb_seq_after(r->seq, *max))
		*max = r->seq;
}

/* the journal holds a record after seq */
static bool held_after(GwJournal *j, uint32_t seq)
{
	uint32_t max = seq;

	if (!gw_journal_foreach(j, max_cb, &max, NULL))
		return true;
	return max != seq;
}

static void stored_cb(const char *address, size_t n, uint32_t committed, void *user_data)
{
	(void) address; (void) user_data;
	printf("stored: %zu records, committed up to %u\n", n, committed);
}

static gboolean poll_cb(gpointer user_data)
{
	(void) user_data;
	GwCentral *c = gw_ble_get_central(ble);
	GwLink *link = gw_central_get_link(c, opt_address);
	GwJournal *j = gw_ble_get_journal(ble, opt_address);
	enum gw_link_state st = link ? gw_link_get_state(link) : GW_LINK_STATE_DISABLED;
	struct gw_link_stats ls = { 0 };
	if (link)
		gw_link_get_stats(link, g_get_monotonic_time(), &ls);
	/* the link's durable seq: every record up to it committed */
	uint32_t durable = ls.durable_seq;
	bool has_durable = j && ls.have_durable_seq;

	if (g_get_monotonic_time() > deadline) {
		g_autofree char *d = g_strdup_printf("timed out in step %d, link %s",
						     step, gw_link_state_name(st));
		say("FAIL", step == 0 ? "live" : step == 1 ? "link-lost" : "resync", d);
		failed = true;
		g_main_loop_quit(loop);
		return G_SOURCE_REMOVE;
	}
	switch (step) {
	case 0:
		if (st == GW_LINK_STATE_LIVE && has_durable) {
			g_autofree char *d = g_strdup_printf("durable seq %u, %" G_GUINT64_FORMAT
							     " records in the journal", durable,
							     gw_journal_count(j));
			live_seq = durable;
			say("PASS", "live", d);
			step = 1;
		}
		break;
	case 1:
		if (st != GW_LINK_STATE_LIVE && st != GW_LINK_STATE_SYNCING) {
			say("PASS", "link-lost", gw_link_state_name(st));
			step = 2;
		}
		break;
	case 2:
		/* live again, S moved past where it was, and nothing held
		 * above S: a sync that lost a notification under TCG leaves
		 * a hole above S until its retry fills it */
		if (st == GW_LINK_STATE_LIVE && has_durable && wb_seq_after(durable, live_seq) &&
		    !held_after(j, durable)) {
			g_autofree char *d = NULL;
			bool ok = journal_contiguous(j, &d);
			printf("stats: stored %" G_GUINT64_FORMAT " committed %" G_GUINT64_FORMAT
			       " duplicates %" G_GUINT64_FORMAT " malformed %" G_GUINT64_FORMAT
			       " syncs %u/%u deleted %u\n", ls.records_stored,
			       ls.records_committed, ls.duplicates_dropped, ls.malformed,
			       ls.syncs_completed, ls.syncs_started, ls.deleted_seq);
			say(ok ? "PASS" : "FAIL", "resync", d);
			failed |= !ok;
			struct gw_central_stats cs;
			gw_central_get_stats(c, g_get_monotonic_time(), &cs);
			g_autofree char *a = g_strdup_printf("%u other devices seen, never connected",
							     cs.ignored_devices);
			say("PASS", "allowlist", a);
			g_main_loop_quit(loop);
			return G_SOURCE_REMOVE;
		}
		break;
	default:
		break;
	}
	return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
	GOptionEntry entries[] = {
		{ "adapter", 0, 0, G_OPTION_ARG_STRING, &opt_adapter, "central adapter", "hciN" },
		{ "address", 0, 0, G_OPTION_ARG_STRING, &opt_address, "the wearable to allow", "ADDR" },
		{ "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_state, "journals", "DIR" },
		{ "timeout", 0, 0, G_OPTION_ARG_INT, &opt_timeout, "seconds per step", "S" },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	g_autoptr(GOptionContext) ctx = g_option_context_new("- the gateway's BLE path in the ble-vm");
	g_autoptr(GError) error = NULL;

	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &error) || !opt_address || !opt_state) {
		fprintf(stderr, "vm-gateway: %s\n", error ? error->message : "--address and --state-dir needed");
		return 2;
	}
	struct gw_ble_config cfg;
	const char *allow[] = { opt_address };
	gw_ble_config_init(&cfg);
	cfg.adapter = opt_adapter;
	cfg.allowlist = allow;
	cfg.n_allowlist = 1;
	cfg.state_dir = opt_state;
	cfg.log_personal = true;	/* a test VM: nothing private */
	cfg.records_stored = stored_cb;
	ble = gw_ble_new(&cfg, &error);
	if (!ble) {
		say("FAIL", "start", error->message);
		return 1;
	}
	loop = g_main_loop_new(NULL, FALSE);
	/* one deadline for the three steps */
	deadline = g_get_monotonic_time() + (gint64) opt_timeout * 3 * G_USEC_PER_SEC;
	g_timeout_add(100, poll_cb, NULL);
	g_main_loop_run(loop);
	g_main_loop_unref(loop);
	gw_ble_free(ble);
	printf("RESULT: %s\n", failed ? "FAIL" : "PASS");
	return failed ? 1 : 0;
}
