// SPDX-License-Identifier: MIT
/*
 * bench-ble: GwBle (gateway/ble.c) against the fake bluetoothd
 * (docs/simulator.md) on a private dbus-daemon of its own, one simulated
 * wearable playing tests/data/scenarios/busy.txt (a posture and a steps
 * record every second, flash capacity 200000). Prints "key value" lines:
 *
 *   ble_sync_24h_s          gw_ble_new() to the link LIVE with the journal
 *                           durable up to the fake's last-seq (every record
 *                           the wearable holds, 1..last-seq, checked
 *                           contiguous afterwards)
 *   ble_sync_24h_records    records in the journal at that moment
 *   ble_sync_records_per_s  the two above divided
 *   ble_reconnect_p50_ms    over 20 link losses injected on the live link
 *   ble_reconnect_p95_ms    (fault link-loss after=1): the fake's Device1
 *                           Connected=false signal as received by this
 *                           process, to the link LIVE again
 *
 * The fake starts with --start +24h so a full simulated day (86400 posture
 * + 86400 steps + status and pain records) sits in the wearable's flash
 * before the gateway exists; the time the fake takes to generate them is
 * not measured. The gateway runs with the core's production defaults
 * (gw_central_config_init) except stable_us, shortened to 1 s so that each
 * link loss is measured as an isolated one (the benchmark waits past it
 * before the next injection): the reconnect time therefore includes the
 * NOT_CONNECTED backoff of the first error in a run (500 ms +-20 %).
 *
 * Run from the top of the tree (tests/bench/run.sh does): the fake is
 * build/native/bin/fake-bluetoothd, or $REHABLINK_FAKE_BLUETOOTHD.
 * Every wait has a deadline; on failure a message goes to stderr and the
 * exit status is 1. BENCH_BLE_VERBOSE=1 shows the gateway's log.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>

#include "ble.h"
#include "private-bus.h"

#define A1		"AA:BB:CC:DD:EE:01"
#define A1_PATH		"/org/bluez/hci0/dev_AA_BB_CC_DD_EE_01"
#define SCENARIO	"tests/data/scenarios/busy.txt"
#define FAKE_DEFAULT	"build/native/bin/fake-bluetoothd"
#define BLUEZ_NAME	"org.bluez"
#define FAKE_CTL_PATH	"/org/rehablink/fake"
#define FAKE_CTL_IFACE	"org.rehablink.FakeBluez1"
#define DBUS_NAME	"org.freedesktop.DBus"
#define DBUS_PATH	"/org/freedesktop/DBus"

#define WAIT_MS		20000	/* any single wait; only matters on failure */
#define SYNC_WAIT_MS	40000	/* the 24 h sync */
#define N_LOSSES	20
#define STABLE_US	1000000	/* see the header comment */
#define TOTAL_ALARM_S	150	/* last resort: never hang */

static const char *const allow[] = { A1 };

struct env {
	char *dir;
	char *bus_address;
	GPid bus_pid;
	GPid fake_pid;
	GDBusConnection *ctl;	/* the benchmark's own connection */
	GDBusConnection *conn;	/* the gateway's */
	GwBle *ble;
	GSource *wakeup;
	guint sub;
	gint64 drop_time;	/* last Connected=false of A1, 0: none since reset */
};

static struct env env;

/* ---- failure ------------------------------------------------------------------ */

static void env_cleanup(void);

G_GNUC_PRINTF(1, 2) G_GNUC_NORETURN
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bench-ble: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	env_cleanup();
	exit(1);
}

static void on_alarm(int sig)
{
	static const char msg[] = "bench-ble: overall deadline passed\n";

	(void)sig;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to do */
	}
	_exit(1);	/* the children die with us (PR_SET_PDEATHSIG) */
}

/* ---- waiting ------------------------------------------------------------------ */

static gboolean wakeup_cb(gpointer user_data)
{
	(void)user_data;
	return G_SOURCE_CONTINUE;
}

#define LOOP_WAIT_FAIL die
#include "loop-wait.h"

/* ---- processes (as tests/test-ble.c) ------------------------------------------ */

static void bus_start(struct env *e)
{
	g_autoptr(GError) error = NULL;

	e->bus_address = pb_bus_start(e->dir, WAIT_MS, &e->bus_pid, &error);
	if (!e->bus_address)
		die("%s", error->message);
}

static GDBusConnection *bus_connect(struct env *e)
{
	g_autoptr(GError) error = NULL;
	GDBusConnection *c = pb_bus_connect(e->bus_address, &error);

	if (!c)
		die("%s", error->message);
	return c;
}

static bool name_has_owner(struct env *e, const char *name)
{
	return pb_name_has_owner(e->ctl, name);
}

/* One wearable playing busy.txt, 24 h into it (the whole day already in
 * its flash), flash in memory (no state file), real time. */
static void fake_start(struct env *e, const char *fake_path)
{
	g_autofree char *log = g_build_filename(e->dir, "fake-bluetoothd.log", NULL);
	g_auto(GStrv) envp = g_get_environ();
	g_autoptr(GError) error = NULL;
	const char *argv[] = { fake_path, "--device", A1 ",scenario=" SCENARIO,
			       "--speed", "1", "--start", "+24h", NULL };

	envp = g_environ_setenv(envp, "DBUS_SYSTEM_BUS_ADDRESS", e->bus_address, TRUE);
	envp = g_environ_unsetenv(envp, "G_DEBUG");
	envp = g_environ_unsetenv(envp, "G_SLICE");
	if (!g_spawn_async(NULL, (char **)argv, envp, G_SPAWN_DO_NOT_REAP_CHILD,
			   pb_child_setup, (gpointer) log, &e->fake_pid, &error))
		die("%s: %s", fake_path, error->message);
	WAIT_FOR(pb_child_exited(&e->fake_pid) ? (die("%s exited (see its log)", fake_path), false)
					    : name_has_owner(e, BLUEZ_NAME));
}

static GVariant *fake_call(struct env *e, const char *method, GVariant *args,
			   const char *reply_type)
{
	g_autoptr(GError) error = NULL;
	GVariant *r = g_dbus_connection_call_sync(e->ctl, BLUEZ_NAME, FAKE_CTL_PATH,
						  FAKE_CTL_IFACE, method, args,
						  reply_type ? G_VARIANT_TYPE(reply_type) : NULL,
						  G_DBUS_CALL_FLAGS_NONE, WAIT_MS, NULL, &error);

	if (!r)
		die("fake %s: %s", method, error->message);
	return r;
}

static void fake_inject(struct env *e, const char *fault, const char *args)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) dict = g_variant_parse(G_VARIANT_TYPE_VARDICT,
						   args ? args : "@a{sv} {}", NULL, NULL, &error);

	if (!dict)
		die("fault args '%s': %s", args, error->message);
	g_variant_unref(fake_call(e, "Inject", g_variant_new("(s@a{sv})", fault, dict), NULL));
}

static guint32 fake_counter(struct env *e, const char *address, const char *key)
{
	g_autoptr(GVariant) r = fake_call(e, "GetCounters", g_variant_new("(s)", address),
					  "(a{sv})");
	g_autoptr(GVariant) dict = g_variant_get_child_value(r, 0);
	guint32 v = 0;

	if (!g_variant_lookup(dict, key, "u", &v))
		die("no counter '%s'", key);
	return v;
}

/* Device1 PropertiesChanged with Connected false: the fake dropped A1. */
static void on_props_changed(GDBusConnection *c, const gchar *sender, const gchar *path,
			     const gchar *iface, const gchar *signal, GVariant *params,
			     gpointer user_data)
{
	struct env *e = user_data;
	const char *which = NULL;
	g_autoptr(GVariant) changed = NULL;
	gboolean connected = TRUE;

	(void)c;
	(void)sender;
	(void)path;
	(void)iface;
	(void)signal;
	if (!g_variant_is_of_type(params, G_VARIANT_TYPE("(sa{sv}as)")))
		return;
	g_variant_get(params, "(&s@a{sv}@as)", &which, &changed, NULL);
	if (strcmp(which, "org.bluez.Device1") != 0)
		return;
	if (g_variant_lookup(changed, "Connected", "b", &connected) && !connected &&
	    e->drop_time == 0)
		e->drop_time = g_get_monotonic_time();
}

/* ---- the gateway -------------------------------------------------------------------- */

static void ble_start(struct env *e)
{
	struct gw_central_config cc;
	struct gw_ble_config cfg;
	g_autoptr(GError) error = NULL;

	gw_central_config_init(&cc);
	cc.link.stable_us = STABLE_US;
	gw_ble_config_init(&cfg);
	cfg.adapter = "hci0";
	cfg.allowlist = allow;
	cfg.n_allowlist = G_N_ELEMENTS(allow);
	cfg.state_dir = e->dir;
	cfg.conn = e->conn;
	cfg.central = &cc;
	e->ble = gw_ble_new(&cfg, &error);
	if (!e->ble)
		die("gw_ble_new: %s", error->message);
}

static GwLink *link1(struct env *e)
{
	GwLink *l = gw_central_get_link(gw_ble_get_central(e->ble), A1);

	if (!l)
		die("no link for %s", A1);
	return l;
}

static bool is_live(struct env *e)
{
	return gw_link_get_state(link1(e)) == GW_LINK_STATE_LIVE;
}

static struct gw_link_stats link_stats(struct env *e)
{
	struct gw_link_stats st;

	gw_link_get_stats(link1(e), g_get_monotonic_time(), &st);
	return st;
}

static bool durable_at_least(struct env *e, uint32_t seq)
{
	uint32_t d;

	return gw_journal_durable_seq(gw_ble_get_journal(e->ble, A1), &d) && d >= seq;
}

static void collect_cb(const struct wb_record *rec, void *user_data)
{
	g_array_append_val((GArray *)user_data, rec->seq);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Every seq from 1 to last exactly once (more may have come live since). */
static void check_journal(struct env *e, uint32_t last)
{
	GwJournal *j = gw_ble_get_journal(e->ble, A1);
	g_autoptr(GArray) seqs = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	g_autoptr(GError) error = NULL;

	if (!gw_journal_foreach(j, collect_cb, seqs, &error))
		die("journal foreach: %s", error->message);
	if (seqs->len < last)
		die("journal holds %u records, expected at least %u", seqs->len, last);
	qsort(seqs->data, seqs->len, sizeof(uint32_t), cmp_u32);
	if (g_array_index(seqs, uint32_t, 0) != 1)
		die("first seq %u, expected 1", g_array_index(seqs, uint32_t, 0));
	for (guint i = 1; i < seqs->len; i++) {
		uint32_t a = g_array_index(seqs, uint32_t, i - 1);
		uint32_t b = g_array_index(seqs, uint32_t, i);

		if (b != a + 1)
			die("seq %u follows %u in the journal (%s)", b, a,
			    b == a ? "duplicate" : "gap");
	}
}

/* ---- setup / cleanup ---------------------------------------------------------------- */

static void quiet_log(const gchar *domain, GLogLevelFlags level, const gchar *message,
		      gpointer user_data)
{
	(void)domain;
	(void)level;
	(void)message;
	(void)user_data;
}

static void rm_rf(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(dir, name, NULL);

		if (g_file_test(p, G_FILE_TEST_IS_DIR))
			rm_rf(p);
		else
			unlink(p);
	}
	rmdir(dir);
}

static void env_cleanup(void)
{
	static bool done;
	struct env *e = &env;

	if (done)
		return;
	done = true;
	g_clear_pointer(&e->ble, gw_ble_free);
	if (e->sub && e->ctl)
		g_dbus_connection_signal_unsubscribe(e->ctl, e->sub);
	pb_child_stop(&e->fake_pid, SIGTERM);
	if (e->conn)
		g_dbus_connection_close_sync(e->conn, NULL, NULL);
	if (e->ctl)
		g_dbus_connection_close_sync(e->ctl, NULL, NULL);
	g_clear_object(&e->conn);
	g_clear_object(&e->ctl);
	pb_child_stop(&e->bus_pid, SIGTERM);
	while (g_main_context_iteration(NULL, FALSE))
		;
	if (e->wakeup) {
		g_source_destroy(e->wakeup);
		g_source_unref(e->wakeup);
	}
	if (e->dir) {
		if (g_getenv("BENCH_BLE_KEEP"))
			fprintf(stderr, "bench-ble: kept %s\n", e->dir);
		else
			rm_rf(e->dir);
	}
	g_free(e->dir);
	g_free(e->bus_address);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* nearest-rank percentile of sorted v[n] */
static double percentile_ms(const int64_t *v, size_t n, unsigned int pct)
{
	size_t rank = (pct * n + 99) / 100;

	if (rank < 1)
		rank = 1;
	return (double)v[rank - 1] / 1000.0;
}

int main(int argc, char **argv)
{
	struct env *e = &env;
	const char *fake_env = g_getenv("REHABLINK_FAKE_BLUETOOTHD");
	const char *fake_path = fake_env ? fake_env : FAKE_DEFAULT;
	int64_t samples[N_LOSSES];
	gint64 t0, t_end = 0, next_poll = 0;
	uint32_t last_seq = 0;
	uint64_t records;
	double secs;

	(void)argc;
	(void)argv;
	if (!g_file_test(fake_path, G_FILE_TEST_IS_EXECUTABLE))
		die("no fake bluetoothd at %s (make build/native/bin/fake-bluetoothd; run "
		    "from the top of the tree, or set REHABLINK_FAKE_BLUETOOTHD)", fake_path);
	if (!g_file_test(SCENARIO, G_FILE_TEST_IS_REGULAR))
		die("no %s: run from the top of the tree", SCENARIO);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm(TOTAL_ALARM_S);
	if (!g_getenv("BENCH_BLE_VERBOSE")) {
		g_log_set_handler("gw-ble", G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO |
			G_LOG_LEVEL_DEBUG, quiet_log, NULL);
		g_log_set_handler("gw-bluez", G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO |
			G_LOG_LEVEL_DEBUG, quiet_log, NULL);
	}

	e->dir = g_dir_make_tmp("bench-ble-XXXXXX", NULL);
	if (!e->dir)
		die("cannot make a temporary directory");
	e->wakeup = g_timeout_source_new(20);
	g_source_set_callback(e->wakeup, wakeup_cb, NULL, NULL);
	g_source_attach(e->wakeup, NULL);
	bus_start(e);
	e->ctl = bus_connect(e);
	e->conn = bus_connect(e);
	e->sub = g_dbus_connection_signal_subscribe(e->ctl, NULL,
						    "org.freedesktop.DBus.Properties",
						    "PropertiesChanged", A1_PATH, NULL,
						    G_DBUS_SIGNAL_FLAGS_NONE,
						    on_props_changed, e, NULL);
	fake_start(e, fake_path);
	if (fake_counter(e, A1, "stored") < 86400)
		die("the wearable holds only %u records at start",
		    fake_counter(e, A1, "stored"));

	/* ---- 24 h history sync ---- */
	t0 = g_get_monotonic_time();
	ble_start(e);
	for (;;) {
		gint64 now = g_get_monotonic_time();

		if (now - t0 > (gint64)SYNC_WAIT_MS * 1000)
			die("24 h sync: not done after %d ms (state %s)", SYNC_WAIT_MS,
			    gw_link_state_name(gw_link_get_state(link1(e))));
		if (is_live(e)) {
			/* the fake's newest record, asked at most every 20 ms
			 * (a synchronous call) */
			if (last_seq == 0 || now >= next_poll) {
				last_seq = fake_counter(e, A1, "last-seq");
				next_poll = g_get_monotonic_time() + 20000;
			}
			if (durable_at_least(e, last_seq)) {
				t_end = g_get_monotonic_time();
				break;
			}
		}
		g_main_context_iteration(NULL, TRUE);
	}
	records = gw_journal_count(gw_ble_get_journal(e->ble, A1));
	secs = (double)(t_end - t0) / 1e6;
	check_journal(e, last_seq);
	printf("ble_sync_24h_s %.3f\n", secs);
	printf("ble_sync_24h_records %" G_GUINT64_FORMAT "\n", records);
	printf("ble_sync_records_per_s %.0f\n", (double)records / secs);
	fflush(stdout);

	/* ---- reconnects after link loss ---- */
	for (int i = 0; i < N_LOSSES; i++) {
		unsigned int reconnects;
		gint64 t_live;

		/* isolated losses: past stable_us on this connection */
		pump_ms(STABLE_US / 1000 + 100);
		if (!is_live(e))
			die("link %d not live before the injection", i);
		reconnects = link_stats(e).reconnects;
		e->drop_time = 0;
		/* after 1, not 0: see tests/test-ble.c test_key_missing */
		fake_inject(e, "link-loss", "{'device': <'" A1 "'>, 'after': <uint32 1>}");
		WAIT_FOR(e->drop_time != 0 && link_stats(e).reconnects > reconnects &&
			 is_live(e));
		t_live = g_get_monotonic_time();
		samples[i] = t_live - e->drop_time;
	}
	qsort(samples, N_LOSSES, sizeof(samples[0]), cmp_i64);
	printf("ble_reconnect_p50_ms %.1f\n", percentile_ms(samples, N_LOSSES, 50));
	printf("ble_reconnect_p95_ms %.1f\n", percentile_ms(samples, N_LOSSES, 95));
	fflush(stdout);

	/* nothing lost or duplicated across the 20 losses either */
	last_seq = fake_counter(e, A1, "last-seq");
	WAIT_FOR(durable_at_least(e, last_seq));
	check_journal(e, last_seq);
	env_cleanup();
	return 0;
}
