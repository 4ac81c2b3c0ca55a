// SPDX-License-Identifier: MIT
/*
 * GwUplink (gateway/uplink.c) against a real mosquitto on loopback
 * (tests/fakes/broker.c: one broker per test, mosquitto_sub/_pub to look
 * from outside), plus a fake TCP server that refuses MQTT 5 for the
 * 3.1.1 fallback, and a child process (this binary, --will-child) that
 * dies with a last will.
 *
 * Every wait pumps the main loop until a condition holds or a deadline
 * passes, and fails the test on the deadline: nothing hangs.
 *
 * Under valgrind (RUNNING_ON_VALGRIND) the drain test moves 1000 messages
 * instead of 5000 and the timing bounds are wider; nothing is skipped.
 * TEST_UPLINK_FILTER=<glob> runs some tests only; REHABLINK_KEEP_BROKER=1
 * keeps each broker's directory (config, log, certificates).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND_H 1
#endif
#endif

#include "broker.h"
#include "uplink.h"

/* generous, but bounded: only matters on failure */
#define WAIT_MS		20000
#define TOPIC		"rl/test/data"

static char *self_path;
static bool slow;		/* under valgrind */

struct env {
	Broker *broker;
	BrokerSub *sub;
	GwUplink *up;
	struct gw_uplink_config cfg;
	char *ca;
	char *cert;
	char *key;
	guint wakeup;

	unsigned int connected;
	int connected_version;
	unsigned int disconnected;
	GPtrArray *causes;		/* of disconnected */
	GArray *disconnected_at;	/* gint64, monotonic */
	GArray *published;		/* uint64_t tags */
	GArray *failed;			/* uint64_t tags */
	GPtrArray *messages;		/* "topic payload" */

	/* the sliding-window sender */
	bool refill;
	uint64_t to_send;
	uint64_t sent;
	unsigned int max_in_flight;
	uint32_t expiry_s;

	bool free_in_published;		/* gw_uplink_free from the callback */
};

/* ---- waiting ------------------------------------------------------------- */

#include "loop-wait.h"

static void note(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* TEST_UPLINK_VERBOSE=1: timings and causes */
static void note(const char *fmt, ...)
{
	va_list ap;

	if (!g_getenv("TEST_UPLINK_VERBOSE"))
		return;
	va_start(ap, fmt);
	fputs("# ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static gboolean wakeup_cb(gpointer data)
{
	(void)data;
	return G_SOURCE_CONTINUE;
}

#define CHECK_GERROR(expr)							\
	do {									\
		g_autoptr(GError) error_ = NULL;				\
		GError **error = &error_;					\
		if (!(expr))							\
			fail_msg("line %d: %s: %s", __LINE__, #expr,		\
				 error_ ? error_->message : "(no error)");	\
	} while (0)

/* ---- the uplink's callbacks ---------------------------------------------- */

static void fill(struct env *e);

static void on_connected(int version, void *data)
{
	struct env *e = data;

	e->connected++;
	e->connected_version = version;
}

static void on_disconnected(const char *cause, void *data)
{
	struct env *e = data;
	gint64 now = g_get_monotonic_time();

	assert_non_null(cause);
	assert_true(cause[0] != '\0');
	e->disconnected++;
	g_ptr_array_add(e->causes, g_strdup(cause));
	g_array_append_val(e->disconnected_at, now);
}

static void on_published(uint64_t tag, void *data)
{
	struct env *e = data;

	g_array_append_val(e->published, tag);
	if (e->free_in_published) {
		gw_uplink_free(e->up);
		e->up = NULL;
		return;
	}
	if (e->refill)
		fill(e);
}

static void on_publish_failed(uint64_t tag, const char *cause, void *data)
{
	struct env *e = data;

	assert_non_null(cause);
	g_array_append_val(e->failed, tag);
}

static void on_message(const char *topic, const void *payload, size_t len, void *data)
{
	struct env *e = data;

	g_ptr_array_add(e->messages, g_strdup_printf("%s %.*s", topic, (int)len,
						     (const char *)payload));
}

static const struct gw_uplink_ops ops = {
	.connected = on_connected,
	.disconnected = on_disconnected,
	.published = on_published,
	.publish_failed = on_publish_failed,
	.message = on_message,
};

/* Publishes "m<n>" with tag n until the window is full or all are sent. */
static void fill(struct env *e)
{
	while (e->sent < e->to_send) {
		g_autoptr(GError) error = NULL;
		char payload[32];
		int len = g_snprintf(payload, sizeof(payload), "m%" G_GUINT64_FORMAT, e->sent);
		unsigned int n;

		if (!gw_uplink_publish(e->up, e->sent, TOPIC, payload, (size_t)len, 1, false,
				       e->expiry_s, &error)) {
			if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
				fail_msg("publish %" G_GUINT64_FORMAT ": %s", e->sent,
					 error->message);
			assert_int_equal(gw_uplink_in_flight(e->up), gw_uplink_window(e->up));
			return;
		}
		e->sent++;
		n = gw_uplink_in_flight(e->up);
		e->max_in_flight = MAX(e->max_in_flight, n);
		assert_true(n <= gw_uplink_window(e->up));
	}
}

static uint64_t tag_at(GArray *a, guint i)
{
	return g_array_index(a, uint64_t, i);
}

/* ---- setup --------------------------------------------------------------- */

static int env_setup(void **state)
{
	struct env *e = g_new0(struct env, 1);

	e->causes = g_ptr_array_new_with_free_func(g_free);
	e->disconnected_at = g_array_new(FALSE, FALSE, sizeof(gint64));
	e->published = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	e->failed = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	e->messages = g_ptr_array_new_with_free_func(g_free);
	e->wakeup = g_timeout_add(5, wakeup_cb, NULL);
	gw_uplink_config_init(&e->cfg);
	e->cfg.client_id = "gw-test";
	e->cfg.backoff_min_ms = 100;
	e->cfg.backoff_max_ms = 800;
	*state = e;
	return 0;
}

static int env_teardown(void **state)
{
	struct env *e = *state;

	gw_uplink_free(e->up);
	sub_free(e->sub);
	broker_free(e->broker);
	g_source_remove(e->wakeup);
	/* what the uplink's sources still had queued */
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_ptr_array_unref(e->causes);
	g_array_unref(e->disconnected_at);
	g_array_unref(e->published);
	g_array_unref(e->failed);
	g_ptr_array_unref(e->messages);
	g_free(e->ca);
	g_free(e->cert);
	g_free(e->key);
	g_free(e);
	return 0;
}

static void start_broker(struct env *e, bool tls)
{
	CHECK_GERROR(e->broker = broker_start(tls, error));
	e->cfg.uri = broker_uri(e->broker);
	if (tls) {
		e->ca = broker_file(e->broker, "ca.crt");
		e->cert = broker_file(e->broker, "client.crt");
		e->key = broker_file(e->broker, "client.key");
		e->cfg.ca_file = e->ca;
		e->cfg.cert_file = e->cert;
		e->cfg.key_file = e->key;
	}
}

static void start_sub(struct env *e, const char *topic, const struct sub_opts *opts)
{
	CHECK_GERROR(e->sub = sub_start(e->broker, topic, opts, error));
}

static void new_uplink(struct env *e)
{
	CHECK_GERROR(e->up = gw_uplink_new(&e->cfg, &ops, e, NULL, error));
}

static void connect_uplink(struct env *e)
{
	unsigned int before = e->connected;

	new_uplink(e);
	gw_uplink_start(e->up);
	WAIT_FOR(e->connected > before || e->disconnected > 0);
	if (e->connected == before)
		fail_msg("not connected: %s", (const char *)e->causes->pdata[0]);
	assert_true(gw_uplink_is_connected(e->up));
}

/* Expects gw_uplink_new to refuse cfg with a message containing each of
 * the NULL-terminated needles. */
static void expect_refused(const struct gw_uplink_config *cfg, int code, ...)
{
	g_autoptr(GError) error = NULL;
	GwUplink *up = gw_uplink_new(cfg, &ops, NULL, NULL, &error);
	const char *needle;
	va_list ap;

	if (up) {
		gw_uplink_free(up);
		fail_msg("gw_uplink_new accepted uri %s", cfg->uri);
	}
	assert_non_null(error);
	if (!g_error_matches(error, G_IO_ERROR, code))
		fail_msg("error code %d, not %d: %s", error->code, code, error->message);
	va_start(ap, code);
	while ((needle = va_arg(ap, const char *)))
		if (!strstr(error->message, needle))
			fail_msg("\"%s\" does not say \"%s\"", error->message, needle);
	va_end(ap);
}

static void expect_accepted(const struct gw_uplink_config *cfg)
{
	g_autoptr(GError) error = NULL;
	GwUplink *up = gw_uplink_new(cfg, &ops, NULL, NULL, &error);

	if (!up)
		fail_msg("uri %s refused: %s", cfg->uri, error->message);
	assert_false(gw_uplink_is_connected(up));
	assert_int_equal(gw_uplink_mqtt_version(up), 0);
	gw_uplink_free(up);
}

/* ---- the config ---------------------------------------------------------- */

static void test_config_keepalive(void **state)
{
	struct env *e = *state;

	e->cfg.uri = "tcp://127.0.0.1:1883";
	e->cfg.keepalive_s = 30;
	expect_refused(&e->cfg, G_IO_ERROR_INVALID_ARGUMENT, "keepalive_s", "30", NULL);
	e->cfg.keepalive_s = 0;
	expect_refused(&e->cfg, G_IO_ERROR_INVALID_ARGUMENT, "keepalive_s", NULL);
	e->cfg.keepalive_s = 20;
	expect_accepted(&e->cfg);
	e->cfg.keepalive_s = 1;
	expect_accepted(&e->cfg);
}

static void test_config_plaintext(void **state)
{
	static const char *const loopback[] = {
		"tcp://127.0.0.1:1883", "mqtt://localhost:1883", "tcp://127.8.9.10:1",
		"tcp://[::1]:1883", "tcp://LOCALHOST", "mqtt://127.255.255.254:65535",
	};
	static const char *const remote[] = {
		"tcp://192.0.2.1:1883", "mqtt://example.com:1883", "tcp://[2001:db8::1]:1883",
		"tcp://localhost.example.com:1883", "tcp://128.0.0.1:1883", "tcp://0.0.0.0:1883",
	};
	struct env *e = *state;

	for (size_t i = 0; i < G_N_ELEMENTS(loopback); i++) {
		e->cfg.uri = loopback[i];
		expect_accepted(&e->cfg);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(remote); i++) {
		e->cfg.uri = remote[i];
		expect_refused(&e->cfg, G_IO_ERROR_INVALID_ARGUMENT, "plaintext",
			       "allow_plaintext", NULL);
	}
	e->cfg.uri = "tcp://192.0.2.1:1883";
	expect_refused(&e->cfg, G_IO_ERROR_INVALID_ARGUMENT, "192.0.2.1", "off loopback", NULL);
	e->cfg.allow_plaintext = true;
	for (size_t i = 0; i < G_N_ELEMENTS(remote); i++) {
		e->cfg.uri = remote[i];
		expect_accepted(&e->cfg);
	}
	/* not MQTT over TCP at all */
	e->cfg.uri = "ws://127.0.0.1:9001";
	expect_refused(&e->cfg, G_IO_ERROR_INVALID_ARGUMENT, "scheme", NULL);
	e->cfg.uri = "tcp://:1883";
	expect_refused(&e->cfg, G_IO_ERROR_INVALID_ARGUMENT, "no host", NULL);
	e->cfg.uri = "tcp://127.0.0.1:99999";
	expect_refused(&e->cfg, G_IO_ERROR_INVALID_ARGUMENT, "port", NULL);
}

static void test_config_tls(void **state)
{
	struct env *e = *state;
	g_autofree char *dir = NULL;
	g_autofree char *ca = NULL;

	CHECK_GERROR(dir = g_dir_make_tmp("rehablink-uplink-XXXXXX", error));
	ca = g_build_filename(dir, "ca.crt", NULL);
	CHECK_GERROR(g_file_set_contents(ca, "not checked here\n", -1, error));

	e->cfg.uri = "ssl://192.0.2.1:8883";
	expect_refused(&e->cfg, G_IO_ERROR_INVALID_ARGUMENT, "ca_file", "not set", NULL);
	e->cfg.uri = "mqtts://broker.example.com:8883";
	expect_refused(&e->cfg, G_IO_ERROR_INVALID_ARGUMENT, "ca_file", NULL);
	e->cfg.ca_file = "/nonexistent/rehablink/ca.crt";
	expect_refused(&e->cfg, G_IO_ERROR_NOT_FOUND, "ca_file", "/nonexistent/rehablink/ca.crt",
		       NULL);
	/* TLS is fine off loopback */
	e->cfg.ca_file = ca;
	expect_accepted(&e->cfg);
	e->cfg.uri = "ssl://192.0.2.1:8883";
	expect_accepted(&e->cfg);
	e->cfg.cert_file = ca;
	expect_refused(&e->cfg, G_IO_ERROR_INVALID_ARGUMENT, "key_file", NULL);
	e->cfg.key_file = "/nonexistent/rehablink/client.key";
	expect_refused(&e->cfg, G_IO_ERROR_NOT_FOUND, "key_file",
		       "/nonexistent/rehablink/client.key", NULL);
	e->cfg.key_file = ca;
	expect_accepted(&e->cfg);
	e->cfg.ca_file = dir;
	expect_refused(&e->cfg, G_IO_ERROR_INVALID_ARGUMENT, "ca_file", "directory", NULL);

	g_unlink(ca);
	g_rmdir(dir);
}

static void test_config_ranges(void **state)
{
	struct env *e = *state;
	const char *const bad_subs[] = { "rl/ok/#", "", NULL };

	e->cfg.uri = "tcp://127.0.0.1:1883";
	e->cfg.window = 0;
	expect_refused(&e->cfg, G_IO_ERROR_INVALID_ARGUMENT, "window", NULL);
	e->cfg.window = 1025;
	expect_refused(&e->cfg, G_IO_ERROR_INVALID_ARGUMENT, "window", NULL);
	e->cfg.window = 1024;
	expect_accepted(&e->cfg);
	e->cfg.mqtt_version = 3;
	expect_refused(&e->cfg, G_IO_ERROR_INVALID_ARGUMENT, "mqtt_version", NULL);
	e->cfg.mqtt_version = 4;
	expect_accepted(&e->cfg);
	e->cfg.backoff_max_ms = 50;
	expect_refused(&e->cfg, G_IO_ERROR_INVALID_ARGUMENT, "backoff", NULL);
	e->cfg.backoff_max_ms = 800;
	e->cfg.client_id = NULL;
	expect_refused(&e->cfg, G_IO_ERROR_INVALID_ARGUMENT, "client_id", NULL);
	e->cfg.client_id = "gw-test";
	e->cfg.password = "secret";
	expect_refused(&e->cfg, G_IO_ERROR_INVALID_ARGUMENT, "username", NULL);
	e->cfg.password = NULL;
	e->cfg.will_topic = "rl/gw/+/status";
	expect_refused(&e->cfg, G_IO_ERROR_INVALID_ARGUMENT, "will_topic", "wildcard", NULL);
	e->cfg.will_topic = NULL;
	e->cfg.subscriptions = bad_subs;
	expect_refused(&e->cfg, G_IO_ERROR_INVALID_ARGUMENT, "subscriptions", NULL);
}

/* ---- publishing ---------------------------------------------------------- */

static void test_publish_v5(void **state)
{
	struct env *e = *state;
	const unsigned int n = 300;
	g_auto(GStrv) lines = NULL;
	struct gw_uplink_stats st;
	g_autoptr(GError) err = NULL;

	start_broker(e, false);
	start_sub(e, "rl/test/#", NULL);
	connect_uplink(e);
	assert_int_equal(e->connected_version, 5);
	assert_int_equal(gw_uplink_mqtt_version(e->up), 5);
	assert_int_equal(gw_uplink_window(e->up), 32);
	st = gw_uplink_get_stats(e->up);
	assert_true(st.connected_since_us > 0);
	assert_int_equal(st.connects, 1);

	/* not a topic to publish to */
	assert_false(gw_uplink_publish(e->up, 0, "rl/test/#", "x", 1, 1, false, 0, &err));
	assert_true(g_error_matches(err, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT));

	e->refill = true;
	e->to_send = n;
	fill(e);
	WAIT_FOR(e->published->len == n);
	assert_int_equal(e->failed->len, 0);
	for (guint i = 0; i < n; i++)
		assert_int_equal(tag_at(e->published, i), i);
	assert_int_equal(gw_uplink_in_flight(e->up), 0);
	assert_int_equal(e->max_in_flight, 32);

	CHECK_GERROR(sub_wait_lines(e->sub, n, WAIT_MS, error));
	lines = sub_lines(e->sub);
	assert_int_equal(g_strv_length(lines), n);
	for (guint i = 0; i < n; i++) {
		g_autofree char *want = g_strdup_printf(TOPIC " m%u", i);

		assert_string_equal(lines[i], want);
	}
	st = gw_uplink_get_stats(e->up);
	assert_int_equal(st.published, n);
	assert_int_equal(st.publish_failed, 0);
	assert_int_equal(e->disconnected, 0);
}

static void test_window_would_block(void **state)
{
	struct env *e = *state;
	g_autoptr(GError) err = NULL;

	start_broker(e, false);
	e->cfg.window = 8;
	new_uplink(e);
	/* before the connection */
	assert_false(gw_uplink_publish(e->up, 99, TOPIC, "x", 1, 1, false, 0, &err));
	assert_true(g_error_matches(err, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED));
	g_clear_error(&err);
	gw_uplink_start(e->up);
	WAIT_FOR(e->connected == 1);

	/* the main loop does not run in between: nothing is acknowledged yet */
	for (uint64_t i = 0; i < 8; i++)
		CHECK_GERROR(gw_uplink_publish(e->up, i, TOPIC, "x", 1, 1, false, 0, error));
	assert_int_equal(gw_uplink_in_flight(e->up), 8);
	assert_false(gw_uplink_publish(e->up, 8, TOPIC, "x", 1, 1, false, 0, &err));
	assert_true(g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK));
	g_clear_error(&err);
	assert_int_equal(gw_uplink_in_flight(e->up), 8);
	/* QoS 0 does not count against the window */
	CHECK_GERROR(gw_uplink_publish(e->up, 100, TOPIC, "q0", 2, 0, false, 0, error));
	assert_int_equal(gw_uplink_in_flight(e->up), 8);

	WAIT_FOR(e->published->len == 9);
	assert_int_equal(gw_uplink_in_flight(e->up), 0);
	CHECK_GERROR(gw_uplink_publish(e->up, 8, TOPIC, "x", 1, 1, false, 0, error));
	WAIT_FOR(e->published->len == 10);
	assert_int_equal(e->failed->len, 0);
}

/* paho stalls a second per refill when its queue exceeds its window
 * (toolchain.md 2e): N / window refills would take N / window seconds. */
static void drain_and_time(struct env *e, unsigned int n, double max_s)
{
	gint64 t0 = g_get_monotonic_time();
	double took;

	e->refill = true;
	e->to_send = n;
	fill(e);
	WAIT_FOR_MS(e->published->len == n, (unsigned int)(max_s * 1000) + 30000);
	took = (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
	assert_int_equal(e->failed->len, 0);
	assert_true(e->max_in_flight <= gw_uplink_window(e->up));
	assert_int_equal(e->max_in_flight, gw_uplink_window(e->up));
	for (guint i = 0; i < n; i++)
		assert_int_equal(tag_at(e->published, i), i);
	if (took > max_s)
		fail_msg("%u messages through a window of %u took %.2f s (bound %.2f s, a 1 s "
			 "stall per refill would take %.0f s)", n, gw_uplink_window(e->up), took,
			 max_s, (double)n / gw_uplink_window(e->up));
	note("%u messages, window %u: %.3f s", n, gw_uplink_window(e->up), took);
}

static void test_drain_no_stall(void **state)
{
	struct env *e = *state;
	unsigned int n = slow ? 1000 : 5000;

	start_broker(e, false);
	start_sub(e, "rl/test/#", NULL);
	connect_uplink(e);
	/* natively ~0.5 s; the stall would be 156 s */
	drain_and_time(e, n, slow ? (double)n / 32 * 0.25 : 5.0);
	CHECK_GERROR(sub_wait_lines(e->sub, n, WAIT_MS, error));
}

static void test_receive_maximum(void **state)
{
	struct env *e = *state;
	g_autoptr(GError) err = NULL;
	unsigned int n = slow ? 200 : 1000;

	CHECK_GERROR(e->broker = broker_new(false, error));
	/* the broker's Receive Maximum */
	broker_add_config(e->broker, "max_inflight_messages 10");
	CHECK_GERROR(broker_run(e->broker, error));
	e->cfg.uri = broker_uri(e->broker);
	e->cfg.window = 32;
	connect_uplink(e);
	assert_int_equal(gw_uplink_window(e->up), 10);
	for (uint64_t i = 0; i < 10; i++)
		CHECK_GERROR(gw_uplink_publish(e->up, 1000 + i, TOPIC, "x", 1, 1, false, 0, error));
	assert_false(gw_uplink_publish(e->up, 1010, TOPIC, "x", 1, 1, false, 0, &err));
	assert_true(g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK));
	WAIT_FOR(e->published->len == 10);
	g_array_set_size(e->published, 0);
	/* a window of 32 over a Receive Maximum of 10 would stall */
	drain_and_time(e, n, slow ? (double)n / 10 * 0.25 : 3.0);
}

static void test_expiry(void **state)
{
	struct env *e = *state;
	const struct sub_opts v5 = { .format = "[%E] %t %p", .mqtt_version = 5 };
	g_auto(GStrv) lines = NULL;

	start_broker(e, false);
	start_sub(e, "rl/exp/#", &v5);
	connect_uplink(e);
	CHECK_GERROR(gw_uplink_publish(e->up, 1, "rl/exp/a", "a", 1, 1, false, 60, error));
	CHECK_GERROR(gw_uplink_publish(e->up, 2, "rl/exp/b", "b", 1, 1, false, 0, error));
	WAIT_FOR(e->published->len == 2);
	gw_uplink_free(e->up);
	e->up = NULL;

	/* 3.1.1 has no expiry: ignored */
	e->cfg.mqtt_version = 4;
	connect_uplink(e);
	assert_int_equal(e->connected_version, 4);
	assert_int_equal(gw_uplink_mqtt_version(e->up), 4);
	CHECK_GERROR(gw_uplink_publish(e->up, 3, "rl/exp/c", "c", 1, 1, false, 60, error));
	WAIT_FOR(e->published->len == 3);

	CHECK_GERROR(sub_wait_lines(e->sub, 3, WAIT_MS, error));
	lines = sub_lines(e->sub);
	/* the remaining expiry: 60, or 59 if the broker held it a while */
	if (strcmp(lines[0], "[60] rl/exp/a a") && strcmp(lines[0], "[59] rl/exp/a a"))
		fail_msg("expiry not seen: \"%s\"", lines[0]);
	assert_string_equal(lines[1], "[] rl/exp/b b");
	assert_string_equal(lines[2], "[] rl/exp/c c");
}

/* ---- a fake MQTT server -------------------------------------------------- */

/*
 * A TCP server that speaks just enough MQTT: a CONNECT at protocol level
 * 5 gets a refusal (an MQTT 5 CONNACK with reason 0x84, or the 3.1.1
 * CONNACK "unacceptable protocol version" an old broker sends), a level 4
 * one is accepted. The first accepted connection is dropped after 200 ms
 * to see the next connect go straight to 3.1.1. In close_at_once mode it
 * accepts and closes at once, noting the time of each connect (the
 * reconnect backoff).
 */
struct fake {
	int fd;
	uint16_t port;
	bool old_style;
	bool close_at_once;
	GThread *thread;
	GMutex lock;
	int levels[8];
	int n;
	gint64 times[8];	/* close_at_once: when each connect came */
	int n_times;
	gint stop;
};

static bool fake_read(struct fake *f, int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (g_atomic_int_get(&f->stop))
			return false;
		if (poll(&p, 1, 100) <= 0)
			continue;
		n = read(fd, (char *)buf + got, len - got);
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

/* One packet: its type byte and body (g_free); false on EOF. */
static bool fake_packet(struct fake *f, int fd, uint8_t *type, uint8_t **body, size_t *len)
{
	size_t rl = 0;
	uint8_t b;

	if (!fake_read(f, fd, type, 1))
		return false;
	for (int shift = 0; shift < 28; shift += 7) {
		if (!fake_read(f, fd, &b, 1))
			return false;
		rl |= (size_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			break;
	}
	*body = g_malloc(rl + 1);
	*len = rl;
	if (!fake_read(f, fd, *body, rl)) {
		g_clear_pointer(body, g_free);
		return false;
	}
	return true;
}

static int fake_accept(struct fake *f)
{
	while (!g_atomic_int_get(&f->stop)) {
		struct pollfd p = { .fd = f->fd, .events = POLLIN };

		if (poll(&p, 1, 100) == 1)
			return accept4(f->fd, NULL, NULL, SOCK_CLOEXEC);
	}
	return -1;
}

static gpointer fake_thread(gpointer data)
{
	static const uint8_t refuse5[] = { 0x20, 3, 0, 0x84, 0 };
	static const uint8_t refuse311[] = { 0x20, 2, 0, 1 };
	static const uint8_t accept311[] = { 0x20, 2, 0, 0 };
	static const uint8_t pingresp[] = { 0xd0, 0 };
	struct fake *f = data;
	int accepted = 0;

	while (!g_atomic_int_get(&f->stop)) {
		g_autofree uint8_t *body = NULL;
		int c = fake_accept(f);
		uint8_t type;
		size_t len;
		int level;

		if (c < 0)
			break;
		if (f->close_at_once) {
			g_mutex_lock(&f->lock);
			if (f->n_times < (int)G_N_ELEMENTS(f->times))
				f->times[f->n_times++] = g_get_monotonic_time();
			g_mutex_unlock(&f->lock);
			close(c);
			continue;
		}
		if (!fake_packet(f, c, &type, &body, &len) || type != 0x10 || len < 7) {
			close(c);
			continue;
		}
		/* 00 04 'M' 'Q' 'T' 'T' level */
		level = body[6];
		g_mutex_lock(&f->lock);
		if (f->n < (int)G_N_ELEMENTS(f->levels))
			f->levels[f->n++] = level;
		g_mutex_unlock(&f->lock);
		if (level != 4) {
			if (f->old_style)
				(void)!write(c, refuse311, sizeof(refuse311));
			else
				(void)!write(c, refuse5, sizeof(refuse5));
			close(c);
			continue;
		}
		(void)!write(c, accept311, sizeof(accept311));
		if (accepted++ == 0) {
			g_usleep(200000);
			close(c);
			continue;
		}
		/* answer pings until the client goes away */
		for (;;) {
			g_autofree uint8_t *pkt = NULL;

			if (!fake_packet(f, c, &type, &pkt, &len))
				break;
			if (type == 0xc0)
				(void)!write(c, pingresp, sizeof(pingresp));
		}
		close(c);
	}
	return NULL;
}

/* port 0: any */
static void fake_start(struct fake *f, uint16_t port, bool old_style, bool close_at_once)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	socklen_t sl = sizeof(sa);
	int one = 1;

	memset(f, 0, sizeof(*f));
	f->old_style = old_style;
	f->close_at_once = close_at_once;
	g_mutex_init(&f->lock);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->fd >= 0);
	setsockopt(f->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		fail_msg("fake server: bind 127.0.0.1:%u: %s", port, g_strerror(errno));
	assert_int_equal(listen(f->fd, 4), 0);
	assert_int_equal(getsockname(f->fd, (struct sockaddr *)&sa, &sl), 0);
	f->port = ntohs(sa.sin_port);
	f->thread = g_thread_new("fake-mqtt", fake_thread, f);
}

static void fake_stop(struct fake *f)
{
	g_atomic_int_set(&f->stop, 1);
	g_thread_join(f->thread);
	close(f->fd);
	g_mutex_clear(&f->lock);
}

static int fake_times(struct fake *f, gint64 *out)
{
	int n;

	g_mutex_lock(&f->lock);
	n = f->n_times;
	memcpy(out, f->times, sizeof(f->times));
	g_mutex_unlock(&f->lock);
	return n;
}

static int fake_levels(struct fake *f, int *out)
{
	int n;

	g_mutex_lock(&f->lock);
	n = f->n;
	memcpy(out, f->levels, sizeof(f->levels));
	g_mutex_unlock(&f->lock);
	return n;
}

/* ---- outages ------------------------------------------------------------- */

static void test_outage(void **state)
{
	struct env *e = *state;
	g_autoptr(GError) err = NULL;
	struct gw_uplink_stats st;
	double slack_ms = slow ? 300 : 60;
	double delay[3];
	gint64 a[8];
	struct fake f;

	start_broker(e, false);
	e->cfg.window = 8;
	e->cfg.backoff_min_ms = 200;
	e->cfg.backoff_max_ms = 1600;
	connect_uplink(e);

	/* PUBLISHes sent, never acknowledged: the broker is frozen, then dies */
	broker_freeze(e->broker);
	for (uint64_t i = 0; i < 8; i++)
		CHECK_GERROR(gw_uplink_publish(e->up, i, TOPIC, "x", 1, 1, false, 0, error));
	pump_ms(200);
	assert_int_equal(e->published->len, 0);
	assert_int_equal(gw_uplink_in_flight(e->up), 8);
	broker_kill(e->broker);
	/* in its place, a server that notes when the reconnects come */
	fake_start(&f, broker_port(e->broker), false, true);

	WAIT_FOR(e->disconnected >= 1);
	assert_int_equal(e->failed->len, 8);
	for (guint i = 0; i < 8; i++)
		assert_int_equal(tag_at(e->failed, i), i);
	assert_int_equal(e->published->len, 0);
	assert_int_equal(gw_uplink_in_flight(e->up), 0);
	assert_false(gw_uplink_is_connected(e->up));
	assert_int_equal(gw_uplink_mqtt_version(e->up), 0);
	assert_non_null(strstr(e->causes->pdata[0], "connection lost"));
	assert_false(gw_uplink_publish(e->up, 9, TOPIC, "x", 1, 1, false, 0, &err));
	assert_true(g_error_matches(err, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED));
	st = gw_uplink_get_stats(e->up);
	assert_int_equal(st.disconnects, 1);
	assert_int_equal(st.publish_failed, 8);
	assert_int_equal(st.connected_since_us, 0);

	/* reconnects, backing off ~200, ~400, ~800 ms (+-20 %) after each
	 * failure */
	WAIT_FOR(fake_times(&f, a) >= 3 && e->disconnected >= 3);
	for (int i = 0; i < 3; i++) {
		gint64 failed_at = g_array_index(e->disconnected_at, gint64, i);
		double base = 200 << i;

		delay[i] = (double)(a[i] - failed_at) / 1000;
		note("reconnect %d came %.0f ms after the failure", i + 1, delay[i]);
		if (delay[i] < base * 0.8 - 2 || delay[i] > base * 1.2 + slack_ms)
			fail_msg("attempt %d came %.0f ms after the last failure, not %.0f +-20 %%",
				 i + 1, delay[i], base);
	}
	/* at least x1.33 each time, whatever the jitter */
	assert_true(delay[1] > delay[0] * 1.2);
	assert_true(delay[2] > delay[1] * 1.2);
	fake_stop(&f);
	st = gw_uplink_get_stats(e->up);
	assert_true(st.connect_failures >= 2);
	assert_int_equal(e->connected, 1);
	assert_true(st.last_error[0] != '\0');

	CHECK_GERROR(broker_restart(e->broker, error));
	WAIT_FOR(e->connected == 2);
	assert_true(gw_uplink_is_connected(e->up));
	/* the caller sends the failed ones again */
	for (uint64_t i = 0; i < 8; i++)
		CHECK_GERROR(gw_uplink_publish(e->up, i, TOPIC, "x", 1, 1, false, 0, error));
	WAIT_FOR(e->published->len == 8);
	assert_int_equal(e->failed->len, 8);
}

static void test_stop_waits_for_acks(void **state)
{
	struct env *e = *state;

	start_broker(e, false);
	connect_uplink(e);
	/* no main loop in between: the PUBACKs come while stop waits */
	for (uint64_t i = 0; i < 16; i++)
		CHECK_GERROR(gw_uplink_publish(e->up, i, TOPIC, "x", 1, 1, false, 0, error));
	gw_uplink_stop(e->up, 5000);
	assert_int_equal(e->published->len, 16);
	for (guint i = 0; i < 16; i++)
		assert_int_equal(tag_at(e->published, i), i);
	assert_int_equal(e->failed->len, 0);
	assert_int_equal(e->disconnected, 1);
	assert_string_equal(e->causes->pdata[0], "stopped");
	assert_int_equal(gw_uplink_in_flight(e->up), 0);
	assert_int_equal(gw_uplink_get_stats(e->up).connected_since_us, 0);
	pump_ms(200);
	assert_int_equal(e->published->len, 16);
	assert_int_equal(e->disconnected, 1);
}

static void test_stop_gives_up(void **state)
{
	struct env *e = *state;
	gint64 t0;
	double took;

	start_broker(e, false);
	connect_uplink(e);
	broker_freeze(e->broker);
	for (uint64_t i = 0; i < 4; i++)
		CHECK_GERROR(gw_uplink_publish(e->up, i, TOPIC, "x", 1, 1, false, 0, error));
	t0 = g_get_monotonic_time();
	gw_uplink_stop(e->up, 300);
	took = (double)(g_get_monotonic_time() - t0) / 1000;
	note("stop with a frozen broker took %.0f ms", took);
	/* 300 ms for the acks, then the DISCONNECT */
	assert_true(took >= 280 && took < 300 + (slow ? 2500 : 1200));
	assert_int_equal(e->published->len, 0);
	assert_int_equal(e->failed->len, 4);
	for (guint i = 0; i < 4; i++)
		assert_int_equal(tag_at(e->failed, i), i);
	assert_int_equal(e->disconnected, 1);
	assert_string_equal(e->causes->pdata[0], "stopped");
	broker_thaw(e->broker);
	pump_ms(300);
	assert_int_equal(e->connected, 1);
	assert_int_equal(e->disconnected, 1);
}

static void test_stop_while_connecting(void **state)
{
	struct env *e = *state;
	gint64 t0;

	start_broker(e, false);
	/* the kernel completes the TCP handshake, the CONNACK never comes */
	broker_freeze(e->broker);
	new_uplink(e);
	gw_uplink_start(e->up);
	pump_ms(300);
	assert_int_equal(e->connected, 0);
	assert_false(gw_uplink_is_connected(e->up));
	t0 = g_get_monotonic_time();
	gw_uplink_stop(e->up, 1000);
	assert_true(g_get_monotonic_time() - t0 < 1500 * 1000);
	broker_thaw(e->broker);
	pump_ms(500);
	/* no connection, and no reconnect after the stop */
	assert_int_equal(e->connected, 0);
	assert_int_equal(gw_uplink_get_stats(e->up).connects, 0);
	assert_false(gw_uplink_is_connected(e->up));
}

static void test_free_in_callback(void **state)
{
	struct env *e = *state;

	start_broker(e, false);
	start_sub(e, "rl/test/#", NULL);
	connect_uplink(e);
	e->free_in_published = true;
	for (uint64_t i = 0; i < 8; i++)
		CHECK_GERROR(gw_uplink_publish(e->up, i, TOPIC, "x", 1, 1, false, 0, error));
	/* no main loop until all PUBACKs are queued, so the free happens
	 * amid a batch */
	for (gint64 end = g_get_monotonic_time() + WAIT_MS * 1000; sub_count(e->sub) < 8;) {
		if (g_get_monotonic_time() > end)
			fail_msg("the subscriber got %u of 8", sub_count(e->sub));
		g_usleep(2000);
	}
	g_usleep(100000);
	WAIT_FOR(e->published->len > 0);
	assert_null(e->up);
	pump_ms(200);
	assert_int_equal(e->published->len, 1);
	assert_int_equal(e->failed->len, 0);
	assert_int_equal(e->disconnected, 0);
}

/* A gateway process with a last will: prints "connected", then waits to
 * be killed. */
static int will_child(const char *uri, const char *topic, const char *payload)
{
	struct gw_uplink_config cfg;
	g_autoptr(GError) error = NULL;
	struct env e = { 0 };
	GwUplink *up;

	gw_uplink_config_init(&cfg);
	cfg.uri = uri;
	cfg.client_id = "gw-will-child";
	cfg.will_topic = topic;
	cfg.will_payload = payload;
	e.causes = g_ptr_array_new_with_free_func(g_free);
	e.disconnected_at = g_array_new(FALSE, FALSE, sizeof(gint64));
	up = gw_uplink_new(&cfg, &ops, &e, NULL, &error);
	if (!up) {
		fprintf(stderr, "will child: %s\n", error->message);
		return 1;
	}
	gw_uplink_start(up);
	for (gint64 end = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
	     g_get_monotonic_time() < end;) {
		g_main_context_iteration(NULL, TRUE);
		if (e.connected == 1) {
			printf("connected\n");
			fflush(stdout);
			e.connected++;
		}
	}
	return 1;
}

static void child_die_with_parent(gpointer data)
{
	(void)data;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static void test_will_on_death(void **state)
{
	struct env *e = *state;
	const struct sub_opts retained = { .format = "%r %t %p" };
	/* REHABLINK_TEST_WRAPPER: the emulator the child runs under (make check-arm64) */
	const char *wrapper = g_getenv("REHABLINK_TEST_WRAPPER");
	const char *argv[] = { self_path, self_path, "--will-child", NULL, "rl/gw/status", "offline",
			       NULL };
	const char **av = wrapper && *wrapper ? argv : argv + 1;
	g_auto(GStrv) lines = NULL;
	GPid pid = 0;
	int out = -1;
	char buf[64] = "";
	size_t got = 0;
	gint64 deadline = g_get_monotonic_time() + WAIT_MS * 1000;
	int status;

	start_broker(e, false);
	argv[0] = wrapper;
	argv[3] = broker_uri(e->broker);
	CHECK_GERROR(g_spawn_async_with_pipes(NULL, (char **)av, NULL,
					      G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH,
					      child_die_with_parent,
					      NULL, &pid, NULL, &out, NULL, error));
	while (!strchr(buf, '\n')) {
		struct pollfd p = { .fd = out, .events = POLLIN };
		ssize_t n;

		if (g_get_monotonic_time() > deadline || poll(&p, 1, 100) < 0)
			break;
		if (!(p.revents & (POLLIN | POLLHUP)))
			continue;
		n = read(out, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
	}
	close(out);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	g_spawn_close_pid(pid);
	assert_string_equal(buf, "connected\n");

	/* retained: a subscriber that comes later still sees it */
	start_sub(e, "rl/gw/status", &retained);
	CHECK_GERROR(sub_wait_lines(e->sub, 1, WAIT_MS, error));
	lines = sub_lines(e->sub);
	assert_string_equal(lines[0], "1 rl/gw/status offline");
}

static void test_clean_stop_no_will(void **state)
{
	struct env *e = *state;
	g_autoptr(BrokerSub) later = NULL;
	g_autofree char *gone = NULL;

	start_broker(e, false);
	start_sub(e, "rl/gw/#", NULL);
	e->cfg.will_topic = "rl/gw/status";
	e->cfg.will_payload = "offline";
	connect_uplink(e);
	CHECK_GERROR(gw_uplink_publish(e->up, 1, "rl/gw/status", "online", 6, 1, true, 0, error));
	WAIT_FOR(e->published->len == 1);
	CHECK_GERROR(sub_wait_lines(e->sub, 1, WAIT_MS, error));

	gw_uplink_stop(e->up, 1000);
	assert_false(gw_uplink_is_connected(e->up));
	assert_int_equal(e->disconnected, 1);
	assert_string_equal(e->causes->pdata[0], "stopped");
	gone = g_strdup_printf("Client %s disconnected.", e->cfg.client_id);
	CHECK_GERROR(broker_wait_log(e->broker, gone, 1, WAIT_MS, error));
	pump_ms(300);
	/* the broker dropped the will: no "offline", live or retained */
	assert_int_equal(sub_count(e->sub), 1);
	CHECK_GERROR(later = sub_start(e->broker, "rl/gw/status", NULL, error));
	pump_ms(300);
	assert_int_equal(sub_count(later), 1);
	{
		g_auto(GStrv) lines = sub_lines(later);

		assert_string_equal(lines[0], "rl/gw/status online");
	}

	/* and it starts again */
	gw_uplink_start(e->up);
	WAIT_FOR(e->connected == 2);
	assert_int_equal(gw_uplink_get_stats(e->up).disconnects, 1);
}

static void test_subscriptions(void **state)
{
	struct env *e = *state;
	const char *const subs[] = { "rl/cmd/#", "rl/cfg", NULL };
	g_autofree char *subscribed = NULL;

	start_broker(e, false);
	e->cfg.subscriptions = subs;
	connect_uplink(e);
	subscribed = g_strdup_printf(": %s 1 rl/cmd/#", e->cfg.client_id);
	CHECK_GERROR(broker_wait_log(e->broker, subscribed, 1, WAIT_MS, error));
	CHECK_GERROR(broker_wait_log(e->broker, ": gw-test 1 rl/cfg\n", 1, WAIT_MS, error));
	CHECK_GERROR(broker_pub(e->broker, "rl/cmd/a", "hello", false, error));
	CHECK_GERROR(broker_pub(e->broker, "rl/other", "not for us", false, error));
	CHECK_GERROR(broker_pub(e->broker, "rl/cfg", "{}", false, error));
	WAIT_FOR(e->messages->len == 2);
	assert_string_equal(e->messages->pdata[0], "rl/cmd/a hello");
	assert_string_equal(e->messages->pdata[1], "rl/cfg {}");

	/* made again after each connect (clean start) */
	CHECK_GERROR(broker_restart(e->broker, error));
	WAIT_FOR(e->connected == 2);
	CHECK_GERROR(broker_wait_log(e->broker, subscribed, 2, WAIT_MS, error));
	CHECK_GERROR(broker_pub(e->broker, "rl/cmd/b", "again", false, error));
	WAIT_FOR(e->messages->len == 3);
	assert_string_equal(e->messages->pdata[2], "rl/cmd/b again");
	assert_int_equal(gw_uplink_get_stats(e->up).messages, 3);
}

/* ---- TLS ----------------------------------------------------------------- */

static void test_tls_ok(void **state)
{
	struct env *e = *state;
	g_auto(GStrv) lines = NULL;

	start_broker(e, true);
	start_sub(e, "rl/test/#", NULL);
	connect_uplink(e);
	assert_int_equal(e->connected_version, 5);
	e->to_send = 20;
	e->refill = true;
	fill(e);
	WAIT_FOR(e->published->len == 20);
	CHECK_GERROR(sub_wait_lines(e->sub, 20, WAIT_MS, error));
	lines = sub_lines(e->sub);
	assert_string_equal(lines[19], TOPIC " m19");
	/* the broker saw the client certificate */
	CHECK_GERROR(broker_wait_log(e->broker, "u'gateway-01'", 1, WAIT_MS, error));
}

/* Refused: disconnected with a cause, a few times, never connected. */
static void expect_tls_refused(struct env *e, const char *needle)
{
	new_uplink(e);
	gw_uplink_start(e->up);
	WAIT_FOR(e->disconnected >= 2);
	assert_int_equal(e->connected, 0);
	assert_false(gw_uplink_is_connected(e->up));
	assert_true(gw_uplink_get_stats(e->up).connect_failures >= 2);
	assert_int_equal(gw_uplink_get_stats(e->up).connects, 0);
	note("cause: %s", (const char *)e->causes->pdata[0]);
	if (needle && !strstr(e->causes->pdata[0], needle))
		fail_msg("the cause \"%s\" does not say \"%s\"",
			 (const char *)e->causes->pdata[0], needle);
}

static void test_tls_wrong_ca(void **state)
{
	struct env *e = *state;

	start_broker(e, true);
	CHECK_GERROR(broker_make_ca(broker_dir(e->broker), "other-ca", error));
	g_free(e->ca);
	e->ca = broker_file(e->broker, "other-ca.crt");
	e->cfg.ca_file = e->ca;
	expect_tls_refused(e, "certificate verify failed");
}

static void test_tls_wrong_host(void **state)
{
	struct env *e = *state;

	CHECK_GERROR(e->broker = broker_new(true, error));
	/* signed by the right CA, for another name */
	CHECK_GERROR(broker_make_cert(broker_dir(e->broker), "ca", "wronghost",
				      "elsewhere.invalid", "DNS:elsewhere.invalid", error));
	broker_set_server_cert(e->broker, "wronghost");
	CHECK_GERROR(broker_run(e->broker, error));
	e->cfg.uri = broker_uri(e->broker);
	e->ca = broker_file(e->broker, "ca.crt");
	e->cert = broker_file(e->broker, "client.crt");
	e->key = broker_file(e->broker, "client.key");
	e->cfg.ca_file = e->ca;
	e->cfg.cert_file = e->cert;
	e->cfg.key_file = e->key;
	expect_tls_refused(e, NULL);
}

static void test_tls_no_client_cert(void **state)
{
	struct env *e = *state;

	start_broker(e, true);
	e->cfg.cert_file = NULL;
	e->cfg.key_file = NULL;
	expect_tls_refused(e, NULL);
}

/* ---- MQTT 5 -> 3.1.1 ----------------------------------------------------- */

static void check_fallback(struct env *e, bool old_style)
{
	g_autofree char *uri = NULL;
	struct fake f;
	int levels[8];

	fake_start(&f, 0, old_style, false);
	uri = g_strdup_printf("tcp://127.0.0.1:%u", f.port);
	e->cfg.uri = uri;
	new_uplink(e);
	gw_uplink_start(e->up);
	WAIT_FOR(e->connected == 1 || e->disconnected > 0);
	assert_int_equal(e->connected, 1);
	assert_int_equal(e->connected_version, 4);
	assert_int_equal(gw_uplink_mqtt_version(e->up), 4);
	/* the refusal was part of connecting, not a disconnection */
	assert_int_equal(e->disconnected, 0);
	assert_int_equal(gw_uplink_get_stats(e->up).connect_failures, 1);

	/* dropped by the server: the next connect asks for 3.1.1 at once */
	WAIT_FOR(e->disconnected == 1);
	WAIT_FOR(e->connected == 2);
	assert_int_equal(e->connected_version, 4);
	assert_int_equal(fake_levels(&f, levels), 3);
	assert_int_equal(levels[0], 5);
	assert_int_equal(levels[1], 4);
	assert_int_equal(levels[2], 4);
	gw_uplink_free(e->up);
	e->up = NULL;
	fake_stop(&f);
}

static void test_fallback_reason_0x84(void **state)
{
	check_fallback(*state, false);
}

static void test_fallback_connack_311(void **state)
{
	check_fallback(*state, true);
}

/* ---- main ---------------------------------------------------------------- */

static bool is_slow(void)
{
#ifdef HAVE_VALGRIND_H
	if (RUNNING_ON_VALGRIND)
		return true;
#endif
	return g_getenv("LD_PRELOAD") && strstr(g_getenv("LD_PRELOAD"), "vgpreload");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, env_setup, env_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_config_keepalive),
		T(test_config_plaintext),
		T(test_config_tls),
		T(test_config_ranges),
		T(test_publish_v5),
		T(test_window_would_block),
		T(test_drain_no_stall),
		T(test_receive_maximum),
		T(test_expiry),
		T(test_outage),
		T(test_stop_waits_for_acks),
		T(test_stop_gives_up),
		T(test_stop_while_connecting),
		T(test_free_in_callback),
		T(test_will_on_death),
		T(test_clean_stop_no_will),
		T(test_subscriptions),
		T(test_tls_ok),
		T(test_tls_wrong_ca),
		T(test_tls_wrong_host),
		T(test_tls_no_client_cert),
		T(test_fallback_reason_0x84),
		T(test_fallback_connack_311),
	};
	int rc;

	if (argc == 5 && !strcmp(argv[1], "--will-child"))
		return will_child(argv[2], argv[3], argv[4]);

	/* a broker that dies under us is a test failure, not our death */
	signal(SIGPIPE, SIG_IGN);
	self_path = strchr(argv[0], '/') ? g_canonicalize_filename(argv[0], NULL)
					 : g_find_program_in_path(argv[0]);
	slow = is_slow();
	if (g_getenv("TEST_UPLINK_FILTER"))
		cmocka_set_test_filter(g_getenv("TEST_UPLINK_FILTER"));
	rc = cmocka_run_group_tests_name("gateway/uplink", tests, NULL, NULL);
	g_free(self_path);
	return rc;
}
