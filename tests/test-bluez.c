// SPDX-License-Identifier: MIT
/*
 * GwBluez (gateway/bluez.c) against the project's fake bluetoothd
 * (tests/fakes/fake-bluetoothd.c, manual in docs/simulator.md) on a
 * private dbus-daemon, one of each per test:
 *
 *   dbus-daemon --session --nofork --print-address=3 --address=unix:path=DIR/bus
 *   DBUS_SYSTEM_BUS_ADDRESS=<it> fake-bluetoothd ARGS
 *
 * Faults come from the fake's org.rehablink.FakeBluez1 interface; counts
 * are checked against its GetCounters. The agent test owns org.bluez
 * itself (a minimal bluetoothd in this file) so that it can call the
 * agent as bluetoothd would.
 *
 * Every wait pumps the main loop until a condition holds or a deadline
 * passes, and fails the test on the deadline: nothing hangs.
 *
 * The fake is found next to this binary (../bin/fake-bluetoothd, as the
 * Makefile lays out build/<variant>/) or at $REHABLINK_FAKE_BLUETOOTHD.
 * Debugging: TEST_BLUEZ_FILTER=<test name pattern> runs some tests only;
 * TEST_BLUEZ_KEEP=1 keeps each test's directory (the fake's log, with
 * every D-Bus call it served).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <gio/gio.h>

#include "bluez-parse.h"
#include "bluez.h"
#include "private-bus.h"
#include "wearable.h"

#define A1		"AA:BB:CC:DD:EE:01"
#define A2		"AA:BB:CC:DD:EE:02"
#define STRANGER	"11:22:33:44:55:66"
#define ADAPTER_ADDR	"00:1A:7D:DA:71:13"
#define FAKE_CTL_PATH	"/org/rehablink/fake"
#define FAKE_CTL_IFACE	"org.rehablink.FakeBluez1"
#define DBUS_NAME	"org.freedesktop.DBus"
#define DBUS_PATH	"/org/freedesktop/DBus"

/* generous: valgrind slows us down, and a deadline only matters on failure */
#define WAIT_MS		15000

static char *fake_path;

/* ---- what GwBluez reported ------------------------------------------------- */

struct result {
	enum gw_bluez_op op;
	char address[GW_BLUEZ_ADDR_SIZE];
	int ch;
	enum gw_ble_err err;
	char *dbus_error;
	char *message;
	GBytes *value;
};

struct value_ev {
	char address[GW_BLUEZ_ADDR_SIZE];
	enum gw_char ch;
	GBytes *bytes;
};

struct env {
	char *dir;
	char *bus_address;
	GPid bus_pid;
	GPid fake_pid;
	GDBusConnection *ctl;	/* the test's own connection */
	GDBusConnection *conn;	/* GwBluez's */
	GwBluez *bz;
	struct gw_bluez_config cfg;
	GSource *wakeup;
	const void *param;	/* the test's vector, if any */

	unsigned int events;	/* every callback */
	unsigned int present_events;
	bool present;
	unsigned int adapter_events;
	struct gw_bluez_adapter adapter;
	unsigned int device_events;
	GHashTable *devices;	/* address -> struct gw_bluez_device (copy) */
	GPtrArray *removed;	/* addresses */
	unsigned int layout_events;
	GArray *layout;		/* struct gw_bluez_gatt_char, the last layout */
	GPtrArray *values;	/* struct value_ev */
	GPtrArray *results;	/* struct result */
	GHashTable *allowed;	/* addresses the agent may accept */
	bool free_in_device_changed;
	unsigned int events_at_free;

	/* the minimal bluetoothd of the agent test */
	GPtrArray *agent_calls;	/* "Method path capability" strings */
	GHashTable *held_pairs;	/* device path -> GDBusMethodInvocation */
	unsigned int reg_ids[4];
};

static void result_free(gpointer p)
{
	struct result *r = p;

	g_free(r->dbus_error);
	g_free(r->message);
	if (r->value)
		g_bytes_unref(r->value);
	g_free(r);
}

static void value_free(gpointer p)
{
	struct value_ev *v = p;

	g_bytes_unref(v->bytes);
	g_free(v);
}

static void device_copy_free(gpointer p)
{
	struct gw_bluez_device *d = p;

	gw_bluez_device_clear(d);
	g_free(d);
}

static void on_present(bool present, void *user_data)
{
	struct env *e = user_data;

	e->events++;
	e->present_events++;
	e->present = present;
}

static void on_adapter(const struct gw_bluez_adapter *ad, void *user_data)
{
	struct env *e = user_data;

	e->events++;
	e->adapter_events++;
	e->adapter = *ad;
}

static void on_device(const struct gw_bluez_device *dev, void *user_data)
{
	struct env *e = user_data;
	struct gw_bluez_device *copy = g_new0(struct gw_bluez_device, 1);

	e->events++;
	e->device_events++;
	gw_bluez_device_copy(copy, dev);
	g_hash_table_replace(e->devices, g_strdup(dev->address), copy);
	if (e->free_in_device_changed && e->bz) {
		g_clear_pointer(&e->bz, gw_bluez_free);
		e->events_at_free = e->events;
	}
}

static void on_removed(const char *address, void *user_data)
{
	struct env *e = user_data;

	e->events++;
	g_ptr_array_add(e->removed, g_strdup(address));
	g_hash_table_remove(e->devices, address);
}

static void on_layout(const char *address, const struct gw_bluez_gatt_char *chars, size_t n,
		      void *user_data)
{
	struct env *e = user_data;

	(void)address;
	e->events++;
	e->layout_events++;
	g_array_set_size(e->layout, 0);
	g_array_append_vals(e->layout, chars, (guint)n);
}

static void on_value(const char *address, enum gw_char ch, const uint8_t *val, size_t len,
		     void *user_data)
{
	struct env *e = user_data;
	struct value_ev *v = g_new0(struct value_ev, 1);

	e->events++;
	g_strlcpy(v->address, address, sizeof(v->address));
	v->ch = ch;
	v->bytes = g_bytes_new(val, len);
	g_ptr_array_add(e->values, v);
}

static void on_done(const struct gw_bluez_result *res, void *user_data)
{
	struct env *e = user_data;
	struct result *r = g_new0(struct result, 1);

	e->events++;
	r->op = res->op;
	if (res->address)
		g_strlcpy(r->address, res->address, sizeof(r->address));
	r->ch = res->ch;
	r->err = res->err;
	r->dbus_error = g_strdup(res->dbus_error);
	r->message = g_strdup(res->message);
	if (res->op == GW_BLUEZ_OP_READ && res->err == GW_BLE_OK)
		r->value = g_bytes_new(res->value, res->len);
	g_ptr_array_add(e->results, r);
}

static bool on_allowed(const char *address, void *user_data)
{
	struct env *e = user_data;

	return g_hash_table_contains(e->allowed, address);
}

static const struct gw_bluez_ops test_ops = {
	.bluez_present = on_present,
	.adapter_changed = on_adapter,
	.device_changed = on_device,
	.device_removed = on_removed,
	.layout = on_layout,
	.value = on_value,
	.call_done = on_done,
	.allowed = on_allowed,
};

/* ---- waiting ------------------------------------------------------------------ */

static gboolean wakeup_cb(gpointer user_data)
{
	(void)user_data;
	return G_SOURCE_CONTINUE;
}

#include "loop-wait.h"

/* The result of the command issued when results had mark entries. */
static const struct result *wait_result(struct env *e, guint mark, unsigned int ms)
{
	WAIT_FOR_MS(e->results->len > mark, ms);
	return g_ptr_array_index(e->results, mark);
}

/* Fails unless the result is want_op with want_err; r is evaluated once. */
static void check_result(int line, const struct result *r, enum gw_bluez_op want_op,
			 enum gw_ble_err want_err)
{
	if (r->op != want_op || r->err != want_err)
		fail_msg("line %d: %s: %s (%s: %s), expected %s %s", line,
			 gw_bluez_op_name(r->op), gw_ble_err_name(r->err),
			 r->dbus_error ? r->dbus_error : "local", r->message ? r->message : "",
			 gw_bluez_op_name(want_op), gw_ble_err_name(want_err));
}
#define CHECK_RESULT(r, want_op, want_err) check_result(__LINE__, (r), (want_op), (want_err))

static const struct gw_bluez_device *dev_get(struct env *e, const char *address)
{
	return g_hash_table_lookup(e->devices, address);
}

static bool dev_connected(struct env *e, const char *address)
{
	const struct gw_bluez_device *d = dev_get(e, address);

	return d && d->connected && d->services_resolved;
}

static bool dev_disconnected(struct env *e, const char *address)
{
	const struct gw_bluez_device *d = dev_get(e, address);

	return d && !d->connected && !d->services_resolved;
}

static bool was_removed(struct env *e, const char *address)
{
	for (guint i = 0; i < e->removed->len; i++)
		if (!strcmp(g_ptr_array_index(e->removed, i), address))
			return true;
	return false;
}

static guint count_values(struct env *e, guint from, enum gw_char ch)
{
	guint n = 0;

	for (guint i = from; i < e->values->len; i++)
		n += ((struct value_ev *)g_ptr_array_index(e->values, i))->ch == ch;
	return n;
}

/* ---- processes ------------------------------------------------------------------ */

/* the private bus and children: tests/fakes/private-bus.c */
static void bus_start(struct env *e)
{
	g_autoptr(GError) error = NULL;

	e->bus_address = pb_bus_start(e->dir, WAIT_MS, &e->bus_pid, &error);
	if (!e->bus_address)
		fail_msg("%s", error->message);
}

static GDBusConnection *bus_connect(struct env *e)
{
	g_autoptr(GError) error = NULL;
	GDBusConnection *c = pb_bus_connect(e->bus_address, &error);

	if (!c)
		fail_msg("%s", error->message);
	return c;
}

static bool name_has_owner(struct env *e, const char *name)
{
	return pb_name_has_owner(e->ctl, name);
}

/* Starts the fake with the given options (NULL-terminated) and waits
 * until it owns org.bluez. */
static void fake_start(struct env *e, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autofree char *log = g_build_filename(e->dir, "fake-bluetoothd.log", NULL);
	g_auto(GStrv) envp = g_get_environ();
	g_autoptr(GError) error = NULL;
	va_list ap;
	const char *arg;

	g_ptr_array_add(argv, fake_path);
	va_start(ap, e);
	while ((arg = va_arg(ap, const char *)))
		g_ptr_array_add(argv, (gpointer)arg);
	va_end(ap);
	g_ptr_array_add(argv, NULL);
	envp = g_environ_setenv(envp, "DBUS_SYSTEM_BUS_ADDRESS", e->bus_address, TRUE);
	/* the fake is not under test here */
	envp = g_environ_unsetenv(envp, "G_DEBUG");
	envp = g_environ_unsetenv(envp, "G_SLICE");
	if (g_getenv("TEST_BLUEZ_KEEP"))
		envp = g_environ_setenv(envp, "G_MESSAGES_DEBUG", "all", TRUE);
	if (!g_spawn_async(NULL, (char **)argv->pdata, envp, G_SPAWN_DO_NOT_REAP_CHILD,
			   pb_child_setup, (gpointer) log, &e->fake_pid, &error))
		fail_msg("%s: %s", fake_path, error->message);
	WAIT_FOR(name_has_owner(e, GW_BLUEZ_BUS_NAME));
}

static void fake_stop(struct env *e)
{
	pb_child_stop(&e->fake_pid, SIGTERM);
}

static GVariant *fake_call(struct env *e, const char *method, GVariant *args,
			   const char *reply_type)
{
	g_autoptr(GError) error = NULL;
	GVariant *r = g_dbus_connection_call_sync(e->ctl, GW_BLUEZ_BUS_NAME, FAKE_CTL_PATH,
						  FAKE_CTL_IFACE, method, args,
						  reply_type ? G_VARIANT_TYPE(reply_type) : NULL,
						  G_DBUS_CALL_FLAGS_NONE, WAIT_MS, NULL, &error);

	if (!r)
		fail_msg("fake %s: %s", method, error->message);
	return r;
}

/* args: the a{sv} in GVariant text, e.g. "{'count': <uint32 2>}" */
static void fake_inject(struct env *e, const char *fault, const char *args)
{
	g_autoptr(GError) error = NULL;
	/* g_variant_parse gives a reference of our own, not a floating one */
	g_autoptr(GVariant) dict = g_variant_parse(G_VARIANT_TYPE_VARDICT,
						   args ? args : "@a{sv} {}", NULL, NULL, &error);
	g_autoptr(GVariant) r = NULL;

	if (!dict)
		fail_msg("fault args '%s': %s", args, error->message);
	r = fake_call(e, "Inject", g_variant_new("(s@a{sv})", fault, dict), NULL);
}

static guint32 fake_counter(struct env *e, const char *address, const char *key)
{
	g_autoptr(GVariant) r = fake_call(e, "GetCounters", g_variant_new("(s)", address),
					  "(a{sv})");
	g_autoptr(GVariant) dict = g_variant_get_child_value(r, 0);
	guint32 v = 0;

	if (!g_variant_lookup(dict, key, "u", &v))
		fail_msg("no counter '%s'", key);
	return v;
}

static void fake_advance(struct env *e, double seconds)
{
	g_variant_unref(fake_call(e, "Advance", g_variant_new("(d)", seconds), NULL));
}

/* ---- fixture --------------------------------------------------------------------- */

static int env_setup(void **state)
{
	struct env *e = g_new0(struct env, 1);

	e->param = *state;

	e->dir = g_dir_make_tmp("test-bluez-XXXXXX", NULL);
	assert_non_null(e->dir);
	e->devices = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, device_copy_free);
	e->removed = g_ptr_array_new_with_free_func(g_free);
	e->layout = g_array_new(FALSE, TRUE, sizeof(struct gw_bluez_gatt_char));
	e->values = g_ptr_array_new_with_free_func(value_free);
	e->results = g_ptr_array_new_with_free_func(result_free);
	e->allowed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	e->agent_calls = g_ptr_array_new_with_free_func(g_free);
	e->held_pairs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_object_unref);
	e->cfg.adapter = "hci0";
	e->cfg.call_timeout_ms = 5000;
	e->cfg.connect_timeout_ms = 10000;
	e->cfg.pair_timeout_ms = 10000;
	/* wake the loop now and then, so deadlines are checked */
	e->wakeup = g_timeout_source_new(20);
	g_source_set_callback(e->wakeup, wakeup_cb, NULL, NULL);
	g_source_attach(e->wakeup, NULL);
	*state = e;
	bus_start(e);
	e->ctl = bus_connect(e);
	e->conn = bus_connect(e);
	return 0;
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

static int env_teardown(void **state)
{
	struct env *e = *state;

	g_clear_pointer(&e->bz, gw_bluez_free);
	for (size_t i = 0; i < G_N_ELEMENTS(e->reg_ids); i++)
		if (e->reg_ids[i])
			g_dbus_connection_unregister_object(e->ctl, e->reg_ids[i]);
	g_hash_table_remove_all(e->held_pairs);
	fake_stop(e);
	if (e->conn)
		g_dbus_connection_close_sync(e->conn, NULL, NULL);
	if (e->ctl)
		g_dbus_connection_close_sync(e->ctl, NULL, NULL);
	g_clear_object(&e->conn);
	g_clear_object(&e->ctl);
	pb_child_stop(&e->bus_pid, SIGTERM);
	/* let GDBus deliver what it queued for the closed connections */
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_source_destroy(e->wakeup);
	g_source_unref(e->wakeup);
	if (g_getenv("TEST_BLUEZ_KEEP"))
		fprintf(stderr, "kept %s\n", e->dir);
	else
		rm_rf(e->dir);
	g_free(e->dir);
	g_free(e->bus_address);
	g_hash_table_unref(e->devices);
	g_ptr_array_unref(e->removed);
	g_array_unref(e->layout);
	g_ptr_array_unref(e->values);
	g_ptr_array_unref(e->results);
	g_hash_table_unref(e->allowed);
	g_ptr_array_unref(e->agent_calls);
	g_hash_table_unref(e->held_pairs);
	g_free(e);
	return 0;
}

static void env_bluez_new(struct env *e)
{
	g_autoptr(GError) error = NULL;

	e->bz = gw_bluez_new(e->conn, &e->cfg, &test_ops, e, &error);
	if (!e->bz)
		fail_msg("gw_bluez_new: %s", error->message);
}

/* GwBluez and the fake up, with the adapter present and the agent in. */
static void env_up(struct env *e)
{
	env_bluez_new(e);
	WAIT_FOR(e->present && e->adapter.present && gw_bluez_agent_registered(e->bz));
}

static void connect_ok(struct env *e, const char *address)
{
	guint mark = e->results->len;

	gw_bluez_connect(e->bz, address);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_CONNECT, GW_BLE_OK);
	WAIT_FOR(dev_connected(e, address));
}

static const struct result *run_read(struct env *e, const char *address, enum gw_char ch)
{
	guint mark = e->results->len;

	gw_bluez_read(e->bz, address, ch);
	return wait_result(e, mark, WAIT_MS);
}

static const struct result *run_write(struct env *e, const char *address, enum gw_char ch,
				      const uint8_t *val, size_t len)
{
	guint mark = e->results->len;

	gw_bluez_write(e->bz, address, ch, val, len);
	return wait_result(e, mark, WAIT_MS);
}

static const struct result *run_notify(struct env *e, const char *address, enum gw_char ch,
				       bool on)
{
	guint mark = e->results->len;

	if (on)
		gw_bluez_start_notify(e->bz, address, ch);
	else
		gw_bluez_stop_notify(e->bz, address, ch);
	return wait_result(e, mark, WAIT_MS);
}

/* ---- tests: presence, adapter, discovery --------------------------------------- */

/* bluetoothd starts after the gateway: absent is reported, commands fail
 * with BLUEZ_GONE, then everything appears by itself. */
static void test_bluez_late(void **state)
{
	struct env *e = *state;
	guint mark;

	env_bluez_new(e);
	WAIT_FOR(e->present_events == 1);
	assert_false(e->present);
	assert_false(gw_bluez_is_present(e->bz));
	assert_null(gw_bluez_get_adapter(e->bz));
	mark = e->results->len;
	gw_bluez_connect(e->bz, A1);
	/* never from inside the call */
	assert_int_equal(e->results->len, mark);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_CONNECT, GW_BLE_ERR_BLUEZ_GONE);

	fake_start(e, "--devices", "1", NULL);
	WAIT_FOR(e->present && e->adapter.present);
	assert_true(gw_bluez_is_present(e->bz));
	assert_true(e->adapter.powered);
	assert_string_equal(e->adapter.name, "hci0");
	assert_string_equal(e->adapter.address, ADAPTER_ADDR);
	assert_non_null(gw_bluez_get_adapter(e->bz));
	WAIT_FOR(gw_bluez_agent_registered(e->bz));
	/* not paired, no discovery: no device object yet */
	assert_int_equal(e->device_events, 0);
}

/* Only the configured adapter; with none configured, the first. */
static void test_adapter_choice(void **state)
{
	struct env *e = *state;
	guint mark;

	fake_start(e, "--adapter", "hci1", "--devices", "1", "--paired", NULL);
	env_bluez_new(e);
	WAIT_FOR(e->present && gw_bluez_agent_registered(e->bz));
	pump_ms(200);
	assert_int_equal(e->adapter_events, 0);
	assert_int_equal(e->device_events, 0);
	mark = e->results->len;
	gw_bluez_start_discovery(e->bz);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_START_DISCOVERY,
		     GW_BLE_ERR_NOT_READY);

	g_clear_pointer(&e->bz, gw_bluez_free);
	e->cfg.adapter = NULL;
	env_up(e);
	assert_string_equal(e->adapter.name, "hci1");
	/* the paired wearable exists without discovery */
	WAIT_FOR(dev_get(e, A1) != NULL);
	assert_true(dev_get(e, A1)->paired);
}

static void test_adapter_power(void **state)
{
	struct env *e = *state;
	guint mark;

	fake_start(e, "--unpowered", "--devices", "1", "--paired", NULL);
	env_up(e);
	assert_false(e->adapter.powered);
	mark = e->results->len;
	gw_bluez_start_discovery(e->bz);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_START_DISCOVERY,
		     GW_BLE_ERR_NOT_READY);
	mark = e->results->len;
	gw_bluez_connect(e->bz, A1);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_CONNECT, GW_BLE_ERR_NOT_READY);

	mark = e->results->len;
	gw_bluez_set_powered(e->bz, true);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_SET_POWERED, GW_BLE_OK);
	WAIT_FOR(e->adapter.powered);
	connect_ok(e, A1);

	/* powered off under us: links drop */
	fake_inject(e, "adapter-power-off", NULL);
	WAIT_FOR(!e->adapter.powered);
	WAIT_FOR(dev_disconnected(e, A1));
	fake_inject(e, "adapter-power-on", NULL);
	WAIT_FOR(e->adapter.powered);

	/* and through us */
	mark = e->results->len;
	gw_bluez_set_powered(e->bz, false);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_SET_POWERED, GW_BLE_OK);
	WAIT_FOR(!e->adapter.powered);

	/* the adapter vanishes with its devices, and comes back */
	fake_inject(e, "adapter-remove", NULL);
	WAIT_FOR(!e->adapter.present);
	assert_true(was_removed(e, A1));
	assert_null(gw_bluez_get_adapter(e->bz));
	assert_null(gw_bluez_get_device(e->bz, A1));
	mark = e->results->len;
	gw_bluez_connect(e->bz, A1);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_CONNECT, GW_BLE_ERR_NOT_READY);
	fake_inject(e, "adapter-add", NULL);
	WAIT_FOR(e->adapter.present && e->adapter.powered);
	WAIT_FOR(dev_get(e, A1) != NULL);
}

/* The filter is on our service UUID and LE: the wearable is found, the
 * stranger (heart rate, 180d) next to it is not. */
static void test_discovery(void **state)
{
	struct env *e = *state;
	const struct gw_bluez_device *d;
	const struct result *r;
	guint mark;

	fake_start(e, "--devices", "2", "--stranger", STRANGER, NULL);
	env_up(e);
	mark = e->results->len;
	gw_bluez_start_discovery(e->bz);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_START_DISCOVERY, GW_BLE_OK);
	WAIT_FOR(e->adapter.discovering);
	WAIT_FOR(dev_get(e, A1) && dev_get(e, A2));
	d = dev_get(e, A1);
	assert_true(d->address_random);
	assert_true(d->has_rssi);
	assert_false(d->connected);
	assert_false(d->paired);
	assert_true(g_strv_contains((const char *const *)d->uuids, WB_UUID_SERVICE));
	assert_non_null(gw_bluez_get_device(e->bz, "aa:bb:cc:dd:ee:01"));
	/* RSSI updates come about once a second: give the stranger time */
	pump_ms(1500);
	assert_null(dev_get(e, STRANGER));
	assert_null(gw_bluez_get_device(e->bz, STRANGER));
	assert_int_equal(fake_counter(e, STRANGER, "connects"), 0);

	mark = e->results->len;
	gw_bluez_stop_discovery(e->bz);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_STOP_DISCOVERY, GW_BLE_OK);
	WAIT_FOR(!e->adapter.discovering);
	mark = e->results->len;
	gw_bluez_stop_discovery(e->bz);
	r = wait_result(e, mark, WAIT_MS);
	CHECK_RESULT(r, GW_BLUEZ_OP_STOP_DISCOVERY, GW_BLE_ERR_FAILED);
	assert_string_equal(r->dbus_error, GW_BLUEZ_ERROR_FAILED);
	assert_string_equal(r->message, "No discovery started");
}

/* ---- tests: connection, layout, GATT -------------------------------------------- */

struct want_char {
	int role;
	const char *uuid;
	const char *service;
};

/* docs/simulator.md section 3: the fake's layout, in handle order */
static const struct want_char want_layout[] = {
	{ GW_CHAR_POSTURE, WB_UUID_POSTURE, WB_UUID_SERVICE },
	{ GW_CHAR_STEPS, WB_UUID_STEPS, WB_UUID_SERVICE },
	{ GW_CHAR_PAIN, WB_UUID_PAIN, WB_UUID_SERVICE },
	{ GW_CHAR_HISTORY_CP, WB_UUID_HISTORY_CP, WB_UUID_SERVICE },
	{ GW_CHAR_HISTORY_DATA, WB_UUID_HISTORY_DATA, WB_UUID_SERVICE },
	{ GW_CHAR_FEATURES, WB_UUID_FEATURES, WB_UUID_SERVICE },
	{ GW_CHAR_STATUS, WB_UUID_STATUS, WB_UUID_SERVICE },
	{ GW_CHAR_BATTERY, WB_UUID_BATTERY_LEVEL, WB_UUID_BATTERY_SERVICE },
	{ GW_CHAR_MANUFACTURER, WB_UUID_MANUFACTURER, WB_UUID_DEVINFO_SERVICE },
	{ GW_CHAR_MODEL, WB_UUID_MODEL_NUMBER, WB_UUID_DEVINFO_SERVICE },
	{ GW_CHAR_SERIAL, WB_UUID_SERIAL_NUMBER, WB_UUID_DEVINFO_SERVICE },
	{ -1, WB_UUID_HARDWARE_REV, WB_UUID_DEVINFO_SERVICE },
	{ GW_CHAR_FIRMWARE, WB_UUID_FIRMWARE_REV, WB_UUID_DEVINFO_SERVICE },
	{ -1, WB_UUID_SOFTWARE_REV, WB_UUID_DEVINFO_SERVICE },
	{ GW_CHAR_CURRENT_TIME, WB_UUID_CURRENT_TIME, WB_UUID_CTS_SERVICE },
};

static void check_layout(struct env *e, const struct want_char *want, size_t n)
{
	assert_int_equal(e->layout->len, n);
	for (size_t i = 0; i < n; i++) {
		const struct gw_bluez_gatt_char *c = &g_array_index(e->layout, struct gw_bluez_gatt_char, i);

		assert_int_equal(c->role, want[i].role);
		assert_string_equal(c->uuid, want[i].uuid);
		assert_string_equal(c->service_uuid, want[i].service);
		if (c->role >= 0) {
			unsigned int req = gw_char_required_props((enum gw_char)c->role);

			if ((c->props & req) != req)
				fail_msg("%s: props 0x%x lack 0x%x", c->uuid, c->props, req);
		}
	}
}

static void test_connect_layout(void **state)
{
	struct env *e = *state;
	const struct gw_bluez_device *d;
	guint mark;

	fake_start(e, "--devices", "1", "--paired", NULL);
	env_up(e);
	WAIT_FOR(dev_get(e, A1) != NULL);
	d = dev_get(e, A1);
	assert_true(d->paired);
	assert_true(d->has_bonded && d->bonded);
	assert_false(d->connected);
	assert_int_equal(e->layout_events, 0);

	connect_ok(e, A1);
	/* ServicesResolved came before the Connect reply, and the layout with it */
	assert_int_equal(e->layout_events, 1);
	check_layout(e, want_layout, G_N_ELEMENTS(want_layout));
	assert_int_equal(fake_counter(e, A1, "connects-ok"), 1);

	mark = e->results->len;
	gw_bluez_disconnect(e->bz, A1);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_DISCONNECT, GW_BLE_OK);
	WAIT_FOR(dev_disconnected(e, A1));
	/* the GATT objects stay (GATT cache "always"): no new layout */
	assert_int_equal(e->layout_events, 1);
	connect_ok(e, A1);
	assert_int_equal(e->layout_events, 2);
	check_layout(e, want_layout, G_N_ELEMENTS(want_layout));
}

/* Without the GATT cache the objects go with the link and come back
 * before ServicesResolved: the layout is reported once per connection. */
static void test_layout_no_cache(void **state)
{
	struct env *e = *state;
	guint mark;

	fake_start(e, "--devices", "1", "--paired", "--gatt-cache", "no", NULL);
	env_up(e);
	WAIT_FOR(dev_get(e, A1) != NULL);
	connect_ok(e, A1);
	WAIT_FOR(e->layout_events >= 1);
	check_layout(e, want_layout, G_N_ELEMENTS(want_layout));
	mark = e->results->len;
	gw_bluez_disconnect(e->bz, A1);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_DISCONNECT, GW_BLE_OK);
	WAIT_FOR(dev_disconnected(e, A1));
	mark = e->results->len;
	gw_bluez_read(e->bz, A1, GW_CHAR_FEATURES);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_READ, GW_BLE_ERR_DOES_NOT_EXIST);
	assert_int_equal(e->layout_events, 1);
	connect_ok(e, A1);
	WAIT_FOR(e->layout_events == 2);
	check_layout(e, want_layout, G_N_ELEMENTS(want_layout));
}

/* A characteristic vanishing while connected (Service Changed): the
 * layout is reported again, without it. */
static void test_layout_change(void **state)
{
	struct env *e = *state;
	struct want_char less[G_N_ELEMENTS(want_layout) - 1];
	const struct result *r;
	size_t n = 0;

	for (size_t i = 0; i < G_N_ELEMENTS(want_layout); i++)
		if (want_layout[i].role != GW_CHAR_STATUS)
			less[n++] = want_layout[i];
	fake_start(e, "--devices", "1", "--paired", NULL);
	env_up(e);
	WAIT_FOR(dev_get(e, A1) != NULL);
	connect_ok(e, A1);
	assert_int_equal(e->layout_events, 1);
	fake_inject(e, "char-missing", "{'char': <'status'>}");
	WAIT_FOR(e->layout_events == 2);
	check_layout(e, less, n);
	r = run_read(e, A1, GW_CHAR_STATUS);
	CHECK_RESULT(r, GW_BLUEZ_OP_READ, GW_BLE_ERR_DOES_NOT_EXIST);
	assert_null(r->dbus_error);
}

static void test_read_write(void **state)
{
	struct env *e = *state;
	const struct result *r;
	struct wb_features f;
	uint8_t pct;
	const uint8_t *val;
	gsize len;
	uint8_t time_buf[16];
	struct wb_current_time ct;
	ssize_t n;

	fake_start(e, "--devices", "1", "--paired", "--start", "08:00", NULL);
	env_up(e);
	WAIT_FOR(dev_get(e, A1) != NULL);
	connect_ok(e, A1);

	r = run_read(e, A1, GW_CHAR_FEATURES);
	CHECK_RESULT(r, GW_BLUEZ_OP_READ, GW_BLE_OK);
	assert_int_equal(r->ch, GW_CHAR_FEATURES);
	assert_string_equal(r->address, A1);
	val = g_bytes_get_data(r->value, &len);
	assert_int_equal(wb_features_decode(val, len, &f, NULL), 0);
	assert_int_equal(f.protocol_version, WB_PROTOCOL_VERSION);
	assert_true(f.stored > 0);
	assert_true(f.last_seq <= fake_counter(e, A1, "last-seq"));
	/* BlueZ also reports the Value a read brings */
	WAIT_FOR(count_values(e, 0, GW_CHAR_FEATURES) == 1);

	r = run_read(e, A1, GW_CHAR_BATTERY);
	CHECK_RESULT(r, GW_BLUEZ_OP_READ, GW_BLE_OK);
	val = g_bytes_get_data(r->value, &len);
	assert_int_equal(wb_battery_decode(val, len, &pct, NULL), 0);

	/* the wearable's Current Time, written with a write request */
	assert_int_equal(wb_current_time_from_unix(1772582400 /* 2026-03-04 */, &ct), 0);
	n = wb_current_time_encode(&ct, time_buf, sizeof(time_buf));
	assert_true(n > 0);
	r = run_write(e, A1, GW_CHAR_CURRENT_TIME, time_buf, (size_t)n);
	CHECK_RESULT(r, GW_BLUEZ_OP_WRITE, GW_BLE_OK);
	assert_int_equal(fake_counter(e, A1, "time-writes"), 1);

	/* what the profile does not allow comes back as BlueZ says it */
	r = run_read(e, A1, GW_CHAR_POSTURE);
	CHECK_RESULT(r, GW_BLUEZ_OP_READ, GW_BLE_ERR_NOT_SUPPORTED);
	assert_string_equal(r->dbus_error, GW_BLUEZ_ERROR_NOT_PERMITTED);
	r = run_write(e, A1, GW_CHAR_FEATURES, time_buf, 2);
	CHECK_RESULT(r, GW_BLUEZ_OP_WRITE, GW_BLE_ERR_NOT_SUPPORTED);
	r = run_write(e, A1, GW_CHAR_CURRENT_TIME, time_buf, 3);
	CHECK_RESULT(r, GW_BLUEZ_OP_WRITE, GW_BLE_ERR_NOT_SUPPORTED);	/* Invalid Length */
	assert_int_equal(fake_counter(e, A1, "reads"), 3);
	assert_int_equal(fake_counter(e, A1, "writes"), 3);
}

/* History sync through the control point: every record arrives, in
 * order, none twice; the indication says how many. */
static void test_history_notifications(void **state)
{
	struct env *e = *state;
	struct wb_hcp_request req = { .opcode = WB_HCP_REPORT_RECORDS, .filter = WB_HCP_ALL };
	struct wb_hcp_response rsp = { 0 };
	uint8_t buf[16];
	ssize_t n;
	guint first, base_notifications;
	uint32_t expect_seq = 0, records = 0;
	bool got_rsp = false;

	fake_start(e, "--devices", "1", "--paired", "--start", "08:00", "--mtu", "247", NULL);
	env_up(e);
	WAIT_FOR(dev_get(e, A1) != NULL);
	connect_ok(e, A1);
	/* the control point refuses writes without indications (ATT 0xFD) */
	n = wb_hcp_request_encode(&req, buf, sizeof(buf));
	assert_true(n > 0);
	CHECK_RESULT(run_write(e, A1, GW_CHAR_HISTORY_CP, buf, (size_t)n), GW_BLUEZ_OP_WRITE,
		     GW_BLE_ERR_FAILED);
	CHECK_RESULT(run_notify(e, A1, GW_CHAR_HISTORY_CP, true), GW_BLUEZ_OP_START_NOTIFY,
		     GW_BLE_OK);
	CHECK_RESULT(run_notify(e, A1, GW_CHAR_HISTORY_DATA, true), GW_BLUEZ_OP_START_NOTIFY,
		     GW_BLE_OK);
	/* hold time still: nothing but the history on the link */
	g_variant_unref(fake_call(e, "SetSpeed", g_variant_new("(d)", 0.1), NULL));
	first = e->values->len;
	base_notifications = fake_counter(e, A1, "notifications");
	CHECK_RESULT(run_write(e, A1, GW_CHAR_HISTORY_CP, buf, (size_t)n), GW_BLUEZ_OP_WRITE,
		     GW_BLE_OK);
	assert_int_equal(fake_counter(e, A1, "writes"), 2);
	assert_int_equal(fake_counter(e, A1, "start-notify"), 2);

	while (!got_rsp) {
		guint i;

		WAIT_FOR(e->values->len > first);
		for (i = first; i < e->values->len && !got_rsp; i++) {
			const struct value_ev *v = g_ptr_array_index(e->values, i);
			gsize len;
			const uint8_t *data = g_bytes_get_data(v->bytes, &len);

			if (v->ch == GW_CHAR_HISTORY_CP) {
				assert_int_equal(wb_hcp_response_decode(data, len, &rsp, NULL), 0);
				got_rsp = true;
				if (rsp.code != WB_HCP_SUCCESS)
					fail_msg("history: %s after %u records",
						 wb_hcp_code_name(rsp.code), records);
			} else if (v->ch == GW_CHAR_HISTORY_DATA) {
				struct wb_batch_iter it;
				struct wb_record rec;
				int rc;

				assert_int_equal(wb_batch_init(&it, data, len, NULL), 0);
				while ((rc = wb_batch_next(&it, &rec, NULL)) == 1) {
					if (records == 0)
						expect_seq = rec.seq;
					if (rec.seq != expect_seq)
						fail_msg("record %u: seq %u, expected %u",
							 records, rec.seq, expect_seq);
					expect_seq++;
					records++;
				}
				assert_int_equal(rc, 0);
			}
		}
		first = i;
	}
	assert_int_equal(rsp.opcode, WB_HCP_RESPONSE_CODE);
	assert_int_equal(rsp.code, WB_HCP_SUCCESS);
	assert_true(records > 500);	/* eight hours of minute records */
	assert_int_equal(rsp.count, records);
	assert_int_equal(rsp.last_seq, expect_seq - 1);
	assert_int_equal(fake_counter(e, A1, "history-records-sent"), records);
	/* one value per signal: we saw every notification the fake sent */
	pump_ms(100);
	{
		guint ours = 0;
		guint theirs = fake_counter(e, A1, "notifications") - base_notifications;

		for (guint i = 0; i < e->values->len; i++) {
			const struct value_ev *v = g_ptr_array_index(e->values, i);

			ours += v->ch == GW_CHAR_HISTORY_DATA || v->ch == GW_CHAR_HISTORY_CP;
		}
		assert_int_equal(ours, theirs);
	}
}

/* Equal values in a row are all delivered: three empty notifications. */
static void test_notify_equal_values(void **state)
{
	struct env *e = *state;
	guint first, empties = 0;

	fake_start(e, "--devices", "1", "--paired", NULL);
	env_up(e);
	WAIT_FOR(dev_get(e, A1) != NULL);
	connect_ok(e, A1);
	CHECK_RESULT(run_notify(e, A1, GW_CHAR_POSTURE, true), GW_BLUEZ_OP_START_NOTIFY,
		     GW_BLE_OK);
	first = e->values->len;
	fake_inject(e, "malformed", "{'char': <'posture'>, 'kind': <'empty'>, 'count': <uint32 3>}");
	WAIT_FOR(fake_counter(e, A1, "malformed-sent") == 3);
	WAIT_FOR(count_values(e, first, GW_CHAR_POSTURE) >= 3);
	for (guint i = first; i < e->values->len; i++) {
		const struct value_ev *v = g_ptr_array_index(e->values, i);

		if (v->ch == GW_CHAR_POSTURE && g_bytes_get_size(v->bytes) == 0)
			empties++;
	}
	assert_int_equal(empties, 3);

	/* live records keep coming after, then stop with StopNotify */
	fake_advance(e, 120);
	WAIT_FOR(count_values(e, first, GW_CHAR_POSTURE) >= 4);
	CHECK_RESULT(run_notify(e, A1, GW_CHAR_POSTURE, false), GW_BLUEZ_OP_STOP_NOTIFY,
		     GW_BLE_OK);
	CHECK_RESULT(run_notify(e, A1, GW_CHAR_POSTURE, false), GW_BLUEZ_OP_STOP_NOTIFY,
		     GW_BLE_ERR_FAILED);
}

/* A link lost under us is a device change, not an error. */
static void test_link_loss(void **state)
{
	struct env *e = *state;

	fake_start(e, "--devices", "1", "--paired", NULL);
	env_up(e);
	WAIT_FOR(dev_get(e, A1) != NULL);
	connect_ok(e, A1);
	fake_inject(e, "link-loss", "{'after': <uint32 0>}");
	WAIT_FOR(dev_disconnected(e, A1));
	CHECK_RESULT(run_read(e, A1, GW_CHAR_FEATURES), GW_BLUEZ_OP_READ, GW_BLE_ERR_FAILED);
	connect_ok(e, A1);
}

/* ---- tests: errors through the table --------------------------------------------- */

struct fault_vec {
	const char *name;
	const char *fault;
	const char *args;
	enum gw_bluez_op op;		/* CONNECT or PAIR */
	enum gw_ble_err want;
	const char *want_dbus;		/* NULL: local */
	unsigned int connect_timeout_ms;
};

static const struct fault_vec fault_vecs[] = {
	{ "fault/connect-in-progress", "connect-in-progress", NULL, GW_BLUEZ_OP_CONNECT,
	  GW_BLE_ERR_IN_PROGRESS, GW_BLUEZ_ERROR_IN_PROGRESS, 0 },
	{ "fault/connect-abort-by-local", "connect-abort", NULL, GW_BLUEZ_OP_CONNECT,
	  GW_BLE_ERR_ABORT_BY_LOCAL, GW_BLUEZ_ERROR_FAILED, 0 },
	{ "fault/connect-not-ready", "connect-not-ready", NULL, GW_BLUEZ_OP_CONNECT,
	  GW_BLE_ERR_NOT_READY, GW_BLUEZ_ERROR_NOT_READY, 0 },
	{ "fault/connect-failed", "connect-failed", NULL, GW_BLUEZ_OP_CONNECT,
	  GW_BLE_ERR_FAILED, GW_BLUEZ_ERROR_FAILED, 0 },
	{ "fault/connect-auth", "connect-auth", NULL, GW_BLUEZ_OP_CONNECT,
	  GW_BLE_ERR_AUTH, GW_BLUEZ_ERROR_AUTH_FAILED, 0 },
	{ "fault/key-missing-connect", "key-missing", "{'count': <uint32 1>}", GW_BLUEZ_OP_CONNECT,
	  GW_BLE_ERR_AUTH, GW_BLUEZ_ERROR_AUTH_FAILED, 0 },
	{ "fault/key-missing-pair", "key-missing", "{'count': <uint32 1>}", GW_BLUEZ_OP_PAIR,
	  GW_BLE_ERR_AUTH, GW_BLUEZ_ERROR_AUTH_FAILED, 0 },
	{ "fault/pair-reject", "pair-reject", NULL, GW_BLUEZ_OP_PAIR,
	  GW_BLE_ERR_AUTH, GW_BLUEZ_ERROR_AUTH_REJECTED, 0 },
	{ "fault/connect-timeout", "connect-timeout", NULL, GW_BLUEZ_OP_CONNECT,
	  GW_BLE_ERR_TIMEOUT, NULL, 400 },
};

static void test_fault(void **state)
{
	struct env *e = *state;
	const struct fault_vec *v = e->param;
	const struct result *r;
	guint mark;

	assert_non_null(v);
	if (v->connect_timeout_ms)
		e->cfg.connect_timeout_ms = v->connect_timeout_ms;
	if (v->op == GW_BLUEZ_OP_PAIR) {
		/* an unpaired wearable, found by discovery */
		fake_start(e, "--devices", "1", NULL);
		env_up(e);
		mark = e->results->len;
		gw_bluez_start_discovery(e->bz);
		CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_START_DISCOVERY, GW_BLE_OK);
	} else {
		fake_start(e, "--devices", "1", "--paired", NULL);
		env_up(e);
	}
	WAIT_FOR(dev_get(e, A1) != NULL);
	fake_inject(e, v->fault, v->args);
	mark = e->results->len;
	if (v->op == GW_BLUEZ_OP_PAIR)
		gw_bluez_pair(e->bz, A1);
	else
		gw_bluez_connect(e->bz, A1);
	r = wait_result(e, mark, WAIT_MS);
	CHECK_RESULT(r, v->op, v->want);
	assert_string_equal(r->address, A1);
	if (v->want_dbus)
		assert_string_equal(r->dbus_error, v->want_dbus);
	else
		assert_null(r->dbus_error);
	assert_non_null(r->message);
	if (v->connect_timeout_ms)
		return;
	/* with the fault gone (a lost bond stays lost until then) and after
	 * the disconnection it brought, if any, the next try goes through */
	g_variant_unref(fake_call(e, "Clear", g_variant_new("(s)", ""), NULL));
	WAIT_FOR(dev_get(e, A1) && !dev_get(e, A1)->connected);
	if (v->op == GW_BLUEZ_OP_PAIR) {
		mark = e->results->len;
		gw_bluez_pair(e->bz, A1);
		CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_PAIR, GW_BLE_OK);
		WAIT_FOR(dev_get(e, A1) && dev_get(e, A1)->paired);
	} else {
		connect_ok(e, A1);
	}
}

/*
 * Services that never resolve. On a first connection bluetoothd 5.66
 * answers Connect once the link is up: Connect succeeds, ServicesResolved
 * never comes, no layout is reported. With the objects cached from an
 * earlier connection Connect waits for ServicesResolved: our timeout
 * ends it.
 */
static void test_services_unresolved(void **state)
{
	struct env *e = *state;
	const struct result *r;
	guint mark;

	e->cfg.connect_timeout_ms = 1000;
	fake_start(e, "--devices", "1", "--paired", NULL);
	env_up(e);
	WAIT_FOR(dev_get(e, A1) != NULL);
	fake_inject(e, "services-unresolved", NULL);
	mark = e->results->len;
	gw_bluez_connect(e->bz, A1);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_CONNECT, GW_BLE_OK);
	WAIT_FOR(dev_get(e, A1)->connected);
	pump_ms(300);
	assert_false(dev_get(e, A1)->services_resolved);
	assert_int_equal(e->layout_events, 0);
	CHECK_RESULT(run_read(e, A1, GW_CHAR_FEATURES), GW_BLUEZ_OP_READ,
		     GW_BLE_ERR_DOES_NOT_EXIST);
	mark = e->results->len;
	gw_bluez_disconnect(e->bz, A1);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_DISCONNECT, GW_BLE_OK);
	WAIT_FOR(dev_disconnected(e, A1));

	/* resolved once: the objects stay */
	connect_ok(e, A1);
	assert_int_equal(e->layout_events, 1);
	mark = e->results->len;
	gw_bluez_disconnect(e->bz, A1);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_DISCONNECT, GW_BLE_OK);
	WAIT_FOR(dev_disconnected(e, A1));
	fake_inject(e, "services-unresolved", NULL);
	mark = e->results->len;
	gw_bluez_connect(e->bz, A1);
	r = wait_result(e, mark, WAIT_MS);
	CHECK_RESULT(r, GW_BLUEZ_OP_CONNECT, GW_BLE_ERR_TIMEOUT);
	assert_null(r->dbus_error);
	assert_int_equal(e->layout_events, 1);
}

/* Errors found before calling, and BlueZ's answers to misuse. */
static void test_errors_misc(void **state)
{
	struct env *e = *state;
	const struct result *r;
	guint mark;

	fake_start(e, "--devices", "1", "--paired", NULL);
	env_up(e);
	WAIT_FOR(dev_get(e, A1) != NULL);

	mark = e->results->len;
	gw_bluez_disconnect(e->bz, A1);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_DISCONNECT,
		     GW_BLE_ERR_NOT_CONNECTED);
	/* a device BlueZ does not know: its answer, UnknownObject */
	mark = e->results->len;
	gw_bluez_connect(e->bz, "AA:BB:CC:DD:EE:99");
	r = wait_result(e, mark, WAIT_MS);
	CHECK_RESULT(r, GW_BLUEZ_OP_CONNECT, GW_BLE_ERR_DOES_NOT_EXIST);
	assert_non_null(r->dbus_error);
	/* the message names the object path: its address is masked */
	assert_null(strstr(r->message, "AA_BB_CC_DD"));
	mark = e->results->len;
	gw_bluez_remove_device(e->bz, "AA:BB:CC:DD:EE:99");
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_REMOVE_DEVICE,
		     GW_BLE_ERR_DOES_NOT_EXIST);
	/* no such address at all: local */
	mark = e->results->len;
	gw_bluez_connect(e->bz, "not-an-address");
	r = wait_result(e, mark, WAIT_MS);
	CHECK_RESULT(r, GW_BLUEZ_OP_CONNECT, GW_BLE_ERR_DOES_NOT_EXIST);
	assert_null(r->dbus_error);
	r = run_read(e, "AA:BB:CC:DD:EE:99", GW_CHAR_FEATURES);
	CHECK_RESULT(r, GW_BLUEZ_OP_READ, GW_BLE_ERR_DOES_NOT_EXIST);
	r = run_read(e, A1, (enum gw_char)GW_CHAR_COUNT);
	CHECK_RESULT(r, GW_BLUEZ_OP_READ, GW_BLE_ERR_DOES_NOT_EXIST);
	/* already paired: BlueZ's AlreadyExists, passed on by name */
	mark = e->results->len;
	gw_bluez_pair(e->bz, A1);
	r = wait_result(e, mark, WAIT_MS);
	CHECK_RESULT(r, GW_BLUEZ_OP_PAIR, GW_BLE_ERR_FAILED);
	assert_string_equal(r->dbus_error, GW_BLUEZ_ERROR_ALREADY_EXISTS);
	/* GATT on a cached but disconnected device */
	connect_ok(e, A1);
	mark = e->results->len;
	gw_bluez_disconnect(e->bz, A1);
	wait_result(e, mark, WAIT_MS);
	WAIT_FOR(dev_disconnected(e, A1));
	r = run_notify(e, A1, GW_CHAR_POSTURE, true);
	CHECK_RESULT(r, GW_BLUEZ_OP_START_NOTIFY, GW_BLE_ERR_FAILED);
	assert_string_equal(r->message, "Not connected");

	/* Trusted, and forgetting the device */
	mark = e->results->len;
	gw_bluez_set_trusted(e->bz, A1, true);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_SET_TRUSTED, GW_BLE_OK);
	WAIT_FOR(dev_get(e, A1)->trusted);
	mark = e->results->len;
	gw_bluez_remove_device(e->bz, A1);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_REMOVE_DEVICE, GW_BLE_OK);
	WAIT_FOR(was_removed(e, A1));
	assert_null(gw_bluez_get_device(e->bz, A1));
}

/* ---- tests: bluetoothd going away -------------------------------------------------- */

static void test_bluez_restart(void **state)
{
	struct env *e = *state;
	unsigned int present_events;

	fake_start(e, "--devices", "1", "--paired", NULL);
	env_up(e);
	WAIT_FOR(dev_get(e, A1) != NULL);
	connect_ok(e, A1);
	present_events = e->present_events;

	fake_inject(e, "bluetoothd-restart", "{'down-ms': <uint32 300>}");
	WAIT_FOR(!e->present);
	assert_true(was_removed(e, A1));
	assert_false(e->adapter.present);
	assert_false(gw_bluez_agent_registered(e->bz));
	assert_null(gw_bluez_get_device(e->bz, A1));
	/* the new bluetoothd: everything again, the agent registered anew */
	WAIT_FOR(e->present && e->adapter.present && gw_bluez_agent_registered(e->bz));
	assert_int_equal(e->present_events, present_events + 2);
	WAIT_FOR(dev_get(e, A1) != NULL);
	assert_false(dev_get(e, A1)->connected);
	connect_ok(e, A1);
}

/* bluetoothd dies with a call pending: the call ends as BLUEZ_GONE, at
 * once, not at its timeout; a new bluetoothd is picked up. */
static void test_bluez_exit(void **state)
{
	struct env *e = *state;
	const struct result *r;
	guint mark;
	int status = 0;

	e->cfg.connect_timeout_ms = 60000;
	fake_start(e, "--devices", "1", "--paired", NULL);
	env_up(e);
	WAIT_FOR(dev_get(e, A1) != NULL);
	fake_inject(e, "connect-timeout", NULL);
	mark = e->results->len;
	gw_bluez_connect(e->bz, A1);
	pump_ms(100);
	assert_int_equal(e->results->len, mark);
	fake_inject(e, "bluetoothd-exit", "{'code': <int32 1>}");
	r = wait_result(e, mark, 5000);
	CHECK_RESULT(r, GW_BLUEZ_OP_CONNECT, GW_BLE_ERR_BLUEZ_GONE);
	WAIT_FOR(!e->present);
	status = pb_child_reap(&e->fake_pid, 5000);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	mark = e->results->len;
	gw_bluez_connect(e->bz, A1);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_CONNECT, GW_BLE_ERR_BLUEZ_GONE);

	fake_start(e, "--devices", "1", "--paired", NULL);
	WAIT_FOR(e->present && e->adapter.present && gw_bluez_agent_registered(e->bz));
	WAIT_FOR(dev_get(e, A1) != NULL);
	connect_ok(e, A1);
}

/* ---- tests: the agent ----------------------------------------------------------- */

/*
 * A minimal bluetoothd owned by the test: ObjectManager with
 * /org/bluez (AgentManager1), hci0 and two devices; Pair is held until
 * the test has called the agent as bluetoothd does during pairing.
 */
static const char mini_xml[] =
	"<node>"
	" <interface name='org.freedesktop.DBus.ObjectManager'>"
	"  <method name='GetManagedObjects'>"
	"   <arg name='objects' type='a{oa{sa{sv}}}' direction='out'/>"
	"  </method>"
	" </interface>"
	" <interface name='" GW_BLUEZ_AGENT_MANAGER_IFACE "'>"
	"  <method name='RegisterAgent'>"
	"   <arg type='o' direction='in'/><arg type='s' direction='in'/>"
	"  </method>"
	"  <method name='RequestDefaultAgent'><arg type='o' direction='in'/></method>"
	"  <method name='UnregisterAgent'><arg type='o' direction='in'/></method>"
	" </interface>"
	" <interface name='" GW_BLUEZ_DEVICE_IFACE "'>"
	"  <method name='Pair'/>"
	" </interface>"
	"</node>";

#define DEV1 "/org/bluez/hci0/dev_AA_BB_CC_DD_EE_01"
#define DEV2 "/org/bluez/hci0/dev_AA_BB_CC_DD_EE_02"

static void mini_method_cb(GDBusConnection *conn, const char *sender, const char *path,
			   const char *iface, const char *method, GVariant *params,
			   GDBusMethodInvocation *inv, gpointer user_data)
{
	struct env *e = user_data;

	(void)conn;
	(void)sender;
	(void)iface;
	if (!strcmp(method, "GetManagedObjects")) {
		g_dbus_method_invocation_return_value(inv, g_variant_new_parsed(
			"({%o: {'" GW_BLUEZ_AGENT_MANAGER_IFACE "': @a{sv} {}},"
			"  %o: {'" GW_BLUEZ_ADAPTER_IFACE "': {'Address': <'" ADAPTER_ADDR "'>,"
			"        'Powered': <true>}},"
			"  %o: {'" GW_BLUEZ_DEVICE_IFACE "': {'Address': <'" A1 "'>, 'Paired': <false>}},"
			"  %o: {'" GW_BLUEZ_DEVICE_IFACE "': {'Address': <'" A2 "'>, 'Paired': <false>}}},)",
			GW_BLUEZ_AGENT_MANAGER_PATH, "/org/bluez/hci0", DEV1, DEV2));
		return;
	}
	if (!strcmp(method, "Pair")) {
		/* keeps the reference a reply would consume */
		g_hash_table_replace(e->held_pairs, g_strdup(path), inv);
		return;
	}
	if (!strcmp(method, "RegisterAgent")) {
		const char *agent, *cap;

		g_variant_get(params, "(&o&s)", &agent, &cap);
		g_ptr_array_add(e->agent_calls, g_strdup_printf("%s %s %s", method, agent, cap));
	} else {
		const char *agent;

		g_variant_get(params, "(&o)", &agent);
		g_ptr_array_add(e->agent_calls, g_strdup_printf("%s %s", method, agent));
	}
	g_dbus_method_invocation_return_value(inv, NULL);
}

static const GDBusInterfaceVTable mini_vtable = { .method_call = mini_method_cb };

static void mini_bluez_start(struct env *e)
{
	g_autoptr(GDBusNodeInfo) info = g_dbus_node_info_new_for_xml(mini_xml, NULL);
	g_autoptr(GVariant) r = NULL;
	guint32 ret = 0;

	assert_non_null(info);
	e->reg_ids[0] = g_dbus_connection_register_object(e->ctl, "/", info->interfaces[0],
							  &mini_vtable, e, NULL, NULL);
	e->reg_ids[1] = g_dbus_connection_register_object(e->ctl, GW_BLUEZ_AGENT_MANAGER_PATH,
							  info->interfaces[1], &mini_vtable, e,
							  NULL, NULL);
	e->reg_ids[2] = g_dbus_connection_register_object(e->ctl, DEV1, info->interfaces[2],
							  &mini_vtable, e, NULL, NULL);
	e->reg_ids[3] = g_dbus_connection_register_object(e->ctl, DEV2, info->interfaces[2],
							  &mini_vtable, e, NULL, NULL);
	for (size_t i = 0; i < G_N_ELEMENTS(e->reg_ids); i++)
		assert_true(e->reg_ids[i] != 0);
	r = g_dbus_connection_call_sync(e->ctl, DBUS_NAME, DBUS_PATH, DBUS_NAME, "RequestName",
					g_variant_new("(su)", GW_BLUEZ_BUS_NAME, 0),
					G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
					NULL);
	assert_non_null(r);
	g_variant_get(r, "(u)", &ret);
	assert_int_equal(ret, 1);	/* DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER */
}

struct agent_reply {
	bool done;
	char *error;	/* D-Bus error name, NULL for success */
};

static void agent_ready(GObject *src, GAsyncResult *res, gpointer user_data)
{
	struct agent_reply *a = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = g_dbus_connection_call_finish(G_DBUS_CONNECTION(src), res,
							      &error);

	if (!r)
		a->error = g_dbus_error_get_remote_error(error);
	a->done = true;
}

/* Calls our agent as bluetoothd would, from conn; returns the D-Bus
 * error name (owned) or NULL. Asynchronous: the agent runs on this loop. */
static char *agent_call(struct env *e, GDBusConnection *from, const char *method,
			GVariant *params)
{
	struct agent_reply a = { 0 };

	g_dbus_connection_call(from, g_dbus_connection_get_unique_name(e->conn),
			       GW_BLUEZ_AGENT_PATH, GW_BLUEZ_AGENT_IFACE, method, params, NULL,
			       G_DBUS_CALL_FLAGS_NONE, WAIT_MS, NULL, agent_ready, &a);
	WAIT_FOR(a.done);
	return a.error;
}

#define AGENT_OK(from, method, params)						\
	do {									\
		g_autofree char *err_ = agent_call(e, from, method, params);	\
		if (err_)							\
			fail_msg("line %d: %s refused: %s", __LINE__, method, err_); \
	} while (0)
#define AGENT_REJECTED(from, method, params)					\
	do {									\
		g_autofree char *err_ = agent_call(e, from, method, params);	\
		if (g_strcmp0(err_, GW_BLUEZ_ERROR_REJECTED))			\
			fail_msg("line %d: %s: %s, expected Rejected", __LINE__,	\
				 method, err_ ? err_ : "accepted");		\
	} while (0)

static void release_pair(struct env *e, const char *path, const char *error)
{
	GDBusMethodInvocation *inv;

	WAIT_FOR(g_hash_table_contains(e->held_pairs, path));
	inv = g_hash_table_lookup(e->held_pairs, path);
	if (error)
		g_dbus_method_invocation_return_dbus_error(g_object_ref(inv), error, "test");
	else
		g_dbus_method_invocation_return_value(g_object_ref(inv), NULL);
	g_hash_table_remove(e->held_pairs, path);
}

static void test_agent(void **state)
{
	struct env *e = *state;
	g_autoptr(GDBusConnection) other = bus_connect(e);
	guint mark;

	mini_bluez_start(e);
	g_hash_table_add(e->allowed, g_strdup(A1));
	env_up(e);
	WAIT_FOR(e->agent_calls->len >= 2);
	assert_string_equal(g_ptr_array_index(e->agent_calls, 0),
			    "RegisterAgent " GW_BLUEZ_AGENT_PATH " " GW_BLUEZ_AGENT_CAPABILITY);
	assert_string_equal(g_ptr_array_index(e->agent_calls, 1),
			    "RequestDefaultAgent " GW_BLUEZ_AGENT_PATH);
	WAIT_FOR(dev_get(e, A1) && dev_get(e, A2));

	/* nobody asked to pair: an incoming Just Works request is refused,
	 * even from an allowed device (no silent re-pairing) */
	AGENT_REJECTED(e->ctl, "RequestAuthorization", g_variant_new("(o)", DEV1));
	AGENT_REJECTED(e->ctl, "RequestConfirmation", g_variant_new("(ou)", DEV1, 123456));

	/* our Pair of an allowed device: accepted while it runs */
	mark = e->results->len;
	gw_bluez_pair(e->bz, A1);
	WAIT_FOR(g_hash_table_contains(e->held_pairs, DEV1));
	AGENT_OK(e->ctl, "RequestConfirmation", g_variant_new("(ou)", DEV1, 123456));
	AGENT_OK(e->ctl, "RequestAuthorization", g_variant_new("(o)", DEV1));
	/* only bluetoothd may ask */
	AGENT_REJECTED(other, "RequestAuthorization", g_variant_new("(o)", DEV1));
	release_pair(e, DEV1, NULL);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_PAIR, GW_BLE_OK);
	AGENT_REJECTED(e->ctl, "RequestAuthorization", g_variant_new("(o)", DEV1));

	/* our Pair of a device the core does not allow: refused */
	mark = e->results->len;
	gw_bluez_pair(e->bz, A2);
	WAIT_FOR(g_hash_table_contains(e->held_pairs, DEV2));
	AGENT_REJECTED(e->ctl, "RequestConfirmation", g_variant_new("(ou)", DEV2, 1));
	AGENT_REJECTED(e->ctl, "RequestAuthorization", g_variant_new("(o)", DEV2));
	release_pair(e, DEV2, GW_BLUEZ_ERROR_AUTH_REJECTED);
	CHECK_RESULT(wait_result(e, mark, WAIT_MS), GW_BLUEZ_OP_PAIR, GW_BLE_ERR_AUTH);

	/* services of allowed devices only */
	AGENT_OK(e->ctl, "AuthorizeService", g_variant_new("(os)", DEV1, WB_UUID_SERVICE));
	AGENT_REJECTED(e->ctl, "AuthorizeService", g_variant_new("(os)", DEV2, WB_UUID_SERVICE));
	AGENT_REJECTED(e->ctl, "AuthorizeService",
		       g_variant_new("(os)", "/org/bluez/hci0/service0001", WB_UUID_SERVICE));
	/* NoInputNoOutput: nothing to type or show */
	AGENT_REJECTED(e->ctl, "RequestPinCode", g_variant_new("(o)", DEV1));
	AGENT_REJECTED(e->ctl, "RequestPasskey", g_variant_new("(o)", DEV1));
	AGENT_REJECTED(e->ctl, "DisplayPinCode", g_variant_new("(os)", DEV1, "0000"));
	AGENT_OK(e->ctl, "DisplayPasskey", g_variant_new("(ouq)", DEV1, 1, 0));
	AGENT_OK(e->ctl, "Cancel", NULL);
	/* bluetoothd lets go of the agent */
	assert_true(gw_bluez_agent_registered(e->bz));
	AGENT_OK(e->ctl, "Release", NULL);
	assert_false(gw_bluez_agent_registered(e->bz));
}

/* ---- tests: life cycle ------------------------------------------------------------ */

/* gw_bluez_free from inside a callback: nothing more is reported, and
 * nothing is touched afterwards (ASan, valgrind). */
static void test_free_in_callback(void **state)
{
	struct env *e = *state;

	fake_start(e, "--devices", "2", "--paired", NULL);
	e->free_in_device_changed = true;
	env_bluez_new(e);
	WAIT_FOR(e->bz == NULL);
	pump_ms(300);
	assert_int_equal(e->events, e->events_at_free);
}

/* Calls in flight when the object goes: cancelled, never reported. */
static void test_free_with_calls(void **state)
{
	struct env *e = *state;
	unsigned int events;

	fake_start(e, "--devices", "1", "--paired", NULL);
	env_up(e);
	WAIT_FOR(dev_get(e, A1) != NULL);
	fake_inject(e, "connect-timeout", NULL);
	gw_bluez_connect(e->bz, A1);
	gw_bluez_read(e->bz, A1, GW_CHAR_FEATURES);	/* fails from an idle */
	gw_bluez_start_discovery(e->bz);		/* a two-step call */
	events = e->events;
	g_clear_pointer(&e->bz, gw_bluez_free);
	pump_ms(300);
	assert_int_equal(e->events, events);
	gw_bluez_free(NULL);
}

/* With no connection given, the system bus: DBUS_SYSTEM_BUS_ADDRESS. */
static void test_system_bus(void **state)
{
	struct env *e = *state;
	g_autoptr(GDBusConnection) sys = NULL;
	g_autofree char *old = g_strdup(g_getenv("DBUS_SYSTEM_BUS_ADDRESS"));
	g_autoptr(GError) error = NULL;

	g_setenv("DBUS_SYSTEM_BUS_ADDRESS", e->bus_address, TRUE);
	sys = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
	if (old)
		g_setenv("DBUS_SYSTEM_BUS_ADDRESS", old, TRUE);
	else
		g_unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
	assert_non_null(sys);
	/* the singleton must not take the test down with the private bus */
	g_dbus_connection_set_exit_on_close(sys, FALSE);
	fake_start(e, "--devices", "1", NULL);
	e->bz = gw_bluez_new(NULL, &e->cfg, &test_ops, e, &error);
	assert_non_null(e->bz);
	WAIT_FOR(e->present && e->adapter.present && gw_bluez_agent_registered(e->bz));
	g_clear_pointer(&e->bz, gw_bluez_free);
	g_dbus_connection_close_sync(sys, NULL, NULL);
}

static void test_bad_config(void **state)
{
	struct env *e = *state;
	struct gw_bluez_config cfg = { .service_uuid = "180f" };
	g_autoptr(GError) error = NULL;
	GwBluez *bz;

	bz = gw_bluez_new(e->conn, &cfg, &test_ops, e, &error);
	assert_null(bz);
	assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	cfg.service_uuid = NULL;
	cfg.agent_path = "not/a/path";
	assert_null(gw_bluez_new(e->conn, &cfg, &test_ops, e, &error));
	assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT));
	g_clear_error(&error);
	/* the agent path is taken */
	cfg.agent_path = NULL;
	env_bluez_new(e);
	assert_null(gw_bluez_new(e->conn, &cfg, &test_ops, e, &error));
	assert_non_null(error);
}

/* ---- main ------------------------------------------------------------------------- */

static const char *resolve_fake(const char *argv0)
{
	const char *env = g_getenv("REHABLINK_FAKE_BLUETOOTHD");
	g_autofree char *dir = NULL;

	if (env)
		return g_strdup(env);
	dir = g_path_get_dirname(argv0);
	return g_build_filename(dir, "..", "bin", "fake-bluetoothd", NULL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, env_setup, env_teardown)

int main(int argc, char **argv)
{
	static struct CMUnitTest tests[64];
	size_t n = 0;
	int rc;

	(void)argc;
	fake_path = (char *)resolve_fake(argv[0]);
	if (!g_file_test(fake_path, G_FILE_TEST_IS_EXECUTABLE)) {
		fprintf(stderr, "test-bluez: no fake bluetoothd at %s "
			"(build it, or set REHABLINK_FAKE_BLUETOOTHD)\n", fake_path);
		g_free(fake_path);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	/* e.g. TEST_BLUEZ_FILTER=test_agent */
	if (g_getenv("TEST_BLUEZ_FILTER"))
		cmocka_set_test_filter(g_getenv("TEST_BLUEZ_FILTER"));

	tests[n++] = (struct CMUnitTest)T(test_bluez_late);
	tests[n++] = (struct CMUnitTest)T(test_adapter_choice);
	tests[n++] = (struct CMUnitTest)T(test_adapter_power);
	tests[n++] = (struct CMUnitTest)T(test_discovery);
	tests[n++] = (struct CMUnitTest)T(test_connect_layout);
	tests[n++] = (struct CMUnitTest)T(test_layout_no_cache);
	tests[n++] = (struct CMUnitTest)T(test_layout_change);
	tests[n++] = (struct CMUnitTest)T(test_read_write);
	tests[n++] = (struct CMUnitTest)T(test_history_notifications);
	tests[n++] = (struct CMUnitTest)T(test_notify_equal_values);
	tests[n++] = (struct CMUnitTest)T(test_link_loss);
	for (size_t i = 0; i < G_N_ELEMENTS(fault_vecs); i++) {
		tests[n] = (struct CMUnitTest)T(test_fault);
		tests[n].name = fault_vecs[i].name;
		tests[n].initial_state = (void *)&fault_vecs[i];
		n++;
	}
	tests[n++] = (struct CMUnitTest)T(test_services_unresolved);
	tests[n++] = (struct CMUnitTest)T(test_errors_misc);
	tests[n++] = (struct CMUnitTest)T(test_bluez_restart);
	tests[n++] = (struct CMUnitTest)T(test_bluez_exit);
	tests[n++] = (struct CMUnitTest)T(test_agent);
	tests[n++] = (struct CMUnitTest)T(test_free_in_callback);
	tests[n++] = (struct CMUnitTest)T(test_free_with_calls);
	tests[n++] = (struct CMUnitTest)T(test_system_bus);
	tests[n++] = (struct CMUnitTest)T(test_bad_config);
	g_assert(n <= G_N_ELEMENTS(tests));
	rc = _cmocka_run_group_tests("gateway/bluez", tests, n, NULL, NULL);
	g_free(fake_path);
	return rc;
}
