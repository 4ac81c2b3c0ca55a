/* SPDX-License-Identifier: MIT */
/*
 * Fakes for the BLE core tests; see fake-ble-ops.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "fake-ble-ops.h"

/* ---- the call log ---- */

static struct fake_call *log_call(struct fake_ble *f, enum fake_op op, const char *dev)
{
	struct fake_call c;

	memset(&c, 0, sizeof(c));
	c.op = op;
	c.at = f->now;
	if (dev)
		g_strlcpy(c.dev, dev, sizeof(c.dev));
	g_array_append_val(f->calls, c);
	return &g_array_index(f->calls, struct fake_call, f->calls->len - 1);
}

static struct fake_ble *fb(void *ud)
{
	return ud;
}

static void op_connect(const char *dev, void *ud)
{
	log_call(fb(ud), FOP_CONNECT, dev);
}

static void op_disconnect(const char *dev, void *ud)
{
	log_call(fb(ud), FOP_DISCONNECT, dev);
}

static void op_remove_cache(const char *dev, void *ud)
{
	log_call(fb(ud), FOP_REMOVE_CACHE, dev);
}

static void op_read(const char *dev, enum gw_char ch, void *ud)
{
	log_call(fb(ud), FOP_READ, dev)->ch = ch;
}

static void op_write(const char *dev, enum gw_char ch, const uint8_t *val, size_t len,
		     void *ud)
{
	struct fake_call *c = log_call(fb(ud), FOP_WRITE, dev);

	assert_true(len <= sizeof(c->bytes));
	c->ch = ch;
	c->len = len;
	memcpy(c->bytes, val, len);
}

static void op_notify(const char *dev, enum gw_char ch, void *ud)
{
	log_call(fb(ud), FOP_NOTIFY, dev)->ch = ch;
}

static GHashTable *dev_table(struct fake_ble *f, const char *dev)
{
	GHashTable *t = g_hash_table_lookup(f->stored, dev);

	if (!t) {
		t = g_hash_table_new(g_direct_hash, g_direct_equal);
		g_hash_table_insert(f->stored, g_strdup(dev), t);
	}
	return t;
}

static gpointer seq_key(uint32_t seq)
{
	return GSIZE_TO_POINTER((gsize) seq + 1);	/* never NULL, even for seq 0 */
}

static void op_store(const char *dev, const struct wb_record *recs, size_t n, void *ud)
{
	struct fake_ble *f = fb(ud);
	struct fake_call *c = log_call(f, FOP_STORE, dev);
	GHashTable *t = dev_table(f, dev);
	struct fake_handover *h;

	assert_true(n >= 1);
	c->len = n;
	c->first_seq = recs[0].seq;
	c->last_seq = recs[n - 1].seq;
	for (size_t i = 0; i < n; i++) {
		struct wb_err werr;

		/* the core hands over only what decoded as valid */
		assert_int_equal(wb_record_validate(&recs[i], &werr), 0);
		if (g_hash_table_contains(t, seq_key(recs[i].seq))) {
			if (!f->allow_duplicates)
				fail_msg("%s: seq %u reached the store twice", dev, recs[i].seq);
			f->duplicates++;
		}
		g_hash_table_insert(t, seq_key(recs[i].seq), GINT_TO_POINTER(1));
	}
	h = g_new0(struct fake_handover, 1);
	g_strlcpy(h->dev, dev, sizeof(h->dev));
	h->n = n;
	h->seqs = g_new(uint32_t, n);
	for (size_t i = 0; i < n; i++)
		h->seqs[i] = recs[i].seq;
	g_queue_push_tail(&f->handovers, h);
	if (f->sync_commit)
		fake_commit_one(f);	/* back into the core from inside its op */
}

static void op_state(const char *dev, enum gw_link_state o, enum gw_link_state n, void *ud)
{
	struct fake_ble *f = fb(ud);
	struct fake_call *c = log_call(f, FOP_STATE, dev);

	c->a = o;
	c->b = n;
	if (f->on_state)
		f->on_state(f, dev, o, n);
}

static void op_error(const char *dev, enum gw_ble_err err, enum gw_link_state in, void *ud)
{
	struct fake_call *c = log_call(fb(ud), FOP_ERROR, dev);

	c->a = err;
	c->b = in;
}

static void op_repair(const char *dev, enum gw_link_repair why, void *ud)
{
	log_call(fb(ud), FOP_REPAIR, dev)->a = why;
}

static void op_info(const char *dev, enum gw_char which, const char *value, void *ud)
{
	struct fake_call *c = log_call(fb(ud), FOP_INFO, dev);

	c->ch = which;
	g_strlcpy(c->str, value, sizeof(c->str));
}

static void op_battery(const char *dev, unsigned int pct, void *ud)
{
	log_call(fb(ud), FOP_BATTERY, dev)->a = (int) pct;
}

static void op_features(const char *dev, const struct wb_features *feat, void *ud)
{
	struct fake_call *c = log_call(fb(ud), FOP_FEATURES, dev);

	c->first_seq = feat->first_seq;
	c->last_seq = feat->last_seq;
	c->a = feat->flags;
}

static void op_malformed(const char *dev, enum gw_char ch, int err,
			 const struct wb_err *where, void *ud)
{
	struct fake_call *c = log_call(fb(ud), FOP_MALFORMED, dev);

	assert_non_null(where);
	c->ch = ch;
	c->a = err;
	if (where->field)
		g_strlcpy(c->str, where->field, sizeof(c->str));
}

static uint32_t op_random(void *ud)
{
	struct fake_ble *f = fb(ud);
	uint64_t z;

	if (f->random_script->len > 0) {
		uint32_t v = g_array_index(f->random_script, uint32_t, 0);

		g_array_remove_index(f->random_script, 0);
		return v;
	}
	/* splitmix64 */
	z = (f->rng += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return (uint32_t) ((z ^ (z >> 31)) >> 32);
}

static void op_start_discovery(const char *uuid, void *ud)
{
	struct fake_call *c = log_call(fb(ud), FOP_START_DISCOVERY, NULL);

	g_strlcpy(c->str, uuid ? uuid : "", sizeof(c->str));
}

static void op_stop_discovery(void *ud)
{
	log_call(fb(ud), FOP_STOP_DISCOVERY, NULL);
}

static void op_set_powered(bool on, void *ud)
{
	log_call(fb(ud), FOP_SET_POWERED, NULL)->a = on;
}

static void op_adapter_changed(enum gw_central_adapter o, enum gw_central_adapter n, void *ud)
{
	struct fake_call *c = log_call(fb(ud), FOP_ADAPTER_CHANGED, NULL);

	c->a = o;
	c->b = n;
}

static void op_recovery(enum gw_central_recovery what, void *ud)
{
	log_call(fb(ud), FOP_RECOVERY, NULL)->a = what;
}

struct gw_link_ops fake_ble_link_ops(void)
{
	return (struct gw_link_ops) {
		.connect = op_connect,
		.disconnect = op_disconnect,
		.remove_device_cache = op_remove_cache,
		.read_char = op_read,
		.write_char = op_write,
		.start_notify = op_notify,
		.store_records = op_store,
		.state_changed = op_state,
		.error = op_error,
		.needs_repair = op_repair,
		.device_info = op_info,
		.battery = op_battery,
		.features = op_features,
		.malformed = op_malformed,
		.random = op_random,
		.may_connect = NULL,
	};
}

struct gw_central_ops fake_ble_central_ops(void)
{
	return (struct gw_central_ops) {
		.link = fake_ble_link_ops(),
		.start_discovery = op_start_discovery,
		.stop_discovery = op_stop_discovery,
		.set_powered = op_set_powered,
		.adapter_changed = op_adapter_changed,
		.recovery = op_recovery,
	};
}

/* ---- targets ---- */

static void lt_connect_done(void *t, const char *dev, enum gw_ble_err err, int64_t now)
{
	(void) dev;
	gw_link_connect_done(t, err, now);
}

static void lt_connected(void *t, const char *dev, bool on, int64_t now)
{
	(void) dev;
	gw_link_connected_changed(t, on, now);
}

static void lt_resolved(void *t, const char *dev, bool on, int64_t now)
{
	(void) dev;
	gw_link_services_resolved(t, on, now);
}

static void lt_layout(void *t, const char *dev, const struct gw_gatt_char *chars, size_t n,
		      int64_t now)
{
	(void) dev;
	gw_link_gatt_layout(t, chars, n, now);
}

static void lt_read_done(void *t, const char *dev, enum gw_char ch, enum gw_ble_err err,
			 const uint8_t *val, size_t len, int64_t now)
{
	(void) dev;
	gw_link_read_done(t, ch, err, val, len, now);
}

static void lt_write_done(void *t, const char *dev, enum gw_char ch, enum gw_ble_err err,
			  int64_t now)
{
	(void) dev;
	gw_link_write_done(t, ch, err, now);
}

static void lt_notify_started(void *t, const char *dev, enum gw_char ch, enum gw_ble_err err,
			      int64_t now)
{
	(void) dev;
	gw_link_notify_started(t, ch, err, now);
}

static void lt_value(void *t, const char *dev, enum gw_char ch, const uint8_t *val,
		     size_t len, int64_t now)
{
	(void) dev;
	gw_link_value(t, ch, val, len, now);
}

static void lt_committed(void *t, const char *dev, uint32_t seq, int64_t now)
{
	(void) dev;
	gw_link_store_committed(t, seq, now);
}

const struct fake_target fake_link_target = {
	.connect_done = lt_connect_done,
	.connected = lt_connected,
	.resolved = lt_resolved,
	.layout = lt_layout,
	.read_done = lt_read_done,
	.write_done = lt_write_done,
	.notify_started = lt_notify_started,
	.value = lt_value,
	.committed = lt_committed,
	.powered = NULL,
};

/* ---- lifetime ---- */

static void handover_free(gpointer p)
{
	struct fake_handover *h = p;

	g_free(h->seqs);
	g_free(h);
}

void fake_ble_init(struct fake_ble *f)
{
	memset(f, 0, sizeof(*f));
	f->calls = g_array_new(FALSE, TRUE, sizeof(struct fake_call));
	f->random_script = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	f->rng = 42;
	f->stored = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					  (GDestroyNotify) g_hash_table_unref);
	g_queue_init(&f->handovers);
	f->wearables = g_ptr_array_new();
	f->mute_op = -1;
	f->mute_ch = -1;
}

void fake_ble_fini(struct fake_ble *f)
{
	g_clear_pointer(&f->calls, g_array_unref);
	g_clear_pointer(&f->random_script, g_array_unref);
	g_clear_pointer(&f->stored, g_hash_table_unref);
	g_queue_clear_full(&f->handovers, handover_free);
	g_clear_pointer(&f->wearables, g_ptr_array_unref);
}

void fake_ble_set_target(struct fake_ble *f, const struct fake_target *t, void *data)
{
	f->target = t;
	f->target_data = data;
}

void fake_ble_add_wearable(struct fake_ble *f, struct fake_wearable *w)
{
	g_ptr_array_add(f->wearables, w);
}

void fake_ble_random_push(struct fake_ble *f, uint32_t v)
{
	g_array_append_val(f->random_script, v);
}

/* ---- reading the log ---- */

size_t fake_ncalls(const struct fake_ble *f)
{
	return f->calls->len;
}

const struct fake_call *fake_call_at(const struct fake_ble *f, size_t i)
{
	assert_true(i < f->calls->len);
	return &g_array_index(f->calls, struct fake_call, i);
}

static bool dev_match(const struct fake_call *c, const char *dev)
{
	return !dev || g_ascii_strcasecmp(c->dev, dev) == 0;
}

size_t fake_count(const struct fake_ble *f, enum fake_op op)
{
	return fake_count_dev(f, op, NULL);
}

size_t fake_count_dev(const struct fake_ble *f, enum fake_op op, const char *dev)
{
	size_t n = 0;

	for (guint i = 0; i < f->calls->len; i++) {
		const struct fake_call *c = &g_array_index(f->calls, struct fake_call, i);

		if (c->op == op && dev_match(c, dev))
			n++;
	}
	return n;
}

const struct fake_call *fake_last(const struct fake_ble *f, enum fake_op op, const char *dev)
{
	for (guint i = f->calls->len; i-- > 0;) {
		const struct fake_call *c = &g_array_index(f->calls, struct fake_call, i);

		if (c->op == op && dev_match(c, dev))
			return c;
	}
	return NULL;
}

long fake_find(const struct fake_ble *f, enum fake_op op, const char *dev, size_t from)
{
	for (guint i = (guint) from; i < f->calls->len; i++) {
		const struct fake_call *c = &g_array_index(f->calls, struct fake_call, i);

		if (c->op == op && dev_match(c, dev))
			return (long) i;
	}
	return -1;
}

void fake_clear_calls(struct fake_ble *f)
{
	g_array_set_size(f->calls, 0);
	f->pumped = 0;
}

const char *fake_op_name(enum fake_op op)
{
	static const char *const names[] = {
		"connect", "disconnect", "remove-cache", "read", "write", "notify",
		"store", "state", "error", "repair", "info", "battery", "features",
		"malformed", "start-discovery", "stop-discovery", "set-powered",
		"adapter-changed", "recovery",
	};

	return (size_t) op < G_N_ELEMENTS(names) ? names[op] : "?";
}

/* ---- the store ---- */

static int store_state(const struct fake_ble *f, const char *dev, uint32_t seq)
{
	GHashTable *t = g_hash_table_lookup(f->stored, dev);

	return t ? GPOINTER_TO_INT(g_hash_table_lookup(t, seq_key(seq))) : 0;
}

bool fake_stored(const struct fake_ble *f, const char *dev, uint32_t seq)
{
	return store_state(f, dev, seq) != 0;
}

bool fake_committed(const struct fake_ble *f, const char *dev, uint32_t seq)
{
	return store_state(f, dev, seq) == 2;
}

size_t fake_stored_count(const struct fake_ble *f, const char *dev)
{
	GHashTable *t = g_hash_table_lookup(f->stored, dev);

	return t ? g_hash_table_size(t) : 0;
}

size_t fake_pending_handovers(const struct fake_ble *f)
{
	return f->handovers.length;
}

bool fake_commit_one(struct fake_ble *f)
{
	struct fake_handover *h = g_queue_pop_head(&f->handovers);
	GHashTable *t;
	uint32_t last;
	char dev[24];

	if (!h)
		return false;
	t = dev_table(f, h->dev);
	for (size_t i = 0; i < h->n; i++)
		g_hash_table_insert(t, seq_key(h->seqs[i]), GINT_TO_POINTER(2));
	last = h->seqs[h->n - 1];
	g_strlcpy(dev, h->dev, sizeof(dev));
	handover_free(h);
	if (f->target && f->target->committed)
		f->target->committed(f->target_data, dev, last, f->now);
	return true;
}

void fake_commit_all(struct fake_ble *f)
{
	while (fake_commit_one(f))
		;
}

void fake_store_preload(struct fake_ble *f, const char *dev, uint32_t from, uint32_t to)
{
	GHashTable *t = dev_table(f, dev);

	for (uint32_t s = from;; s++) {
		g_hash_table_insert(t, seq_key(s), GINT_TO_POINTER(2));
		if (s == to)
			break;
	}
}

void fake_store_drop_pending(struct fake_ble *f)
{
	struct fake_handover *h;

	while ((h = g_queue_pop_head(&f->handovers))) {
		GHashTable *t = dev_table(f, h->dev);

		for (size_t i = 0; i < h->n; i++)
			g_hash_table_remove(t, seq_key(h->seqs[i]));
		handover_free(h);
	}
}

/* ---- the wearable ---- */

static const unsigned int profile_props[GW_CHAR_COUNT] = {
	[GW_CHAR_POSTURE] = GW_PROP_NOTIFY,
	[GW_CHAR_STEPS] = GW_PROP_NOTIFY,
	[GW_CHAR_PAIN] = GW_PROP_INDICATE,
	[GW_CHAR_HISTORY_CP] = GW_PROP_WRITE | GW_PROP_INDICATE,
	[GW_CHAR_HISTORY_DATA] = GW_PROP_NOTIFY,
	[GW_CHAR_FEATURES] = GW_PROP_READ | GW_PROP_NOTIFY,
	[GW_CHAR_STATUS] = GW_PROP_READ | GW_PROP_NOTIFY,
	[GW_CHAR_BATTERY] = GW_PROP_READ | GW_PROP_NOTIFY,
	[GW_CHAR_CURRENT_TIME] = GW_PROP_READ | GW_PROP_WRITE | GW_PROP_NOTIFY,
	[GW_CHAR_MANUFACTURER] = GW_PROP_READ,
	[GW_CHAR_MODEL] = GW_PROP_READ,
	[GW_CHAR_SERIAL] = GW_PROP_READ,
	[GW_CHAR_FIRMWARE] = GW_PROP_READ,
};

void fake_wearable_init(struct fake_wearable *w, const char *address, uint32_t first_seq)
{
	memset(w, 0, sizeof(*w));
	g_strlcpy(w->address, address, sizeof(w->address));
	w->flash = g_array_new(FALSE, TRUE, sizeof(struct wb_record));
	w->layout = g_array_new(FALSE, TRUE, sizeof(struct gw_gatt_char));
	w->next_seq = first_seq;
	w->feature_flags = WB_FEATURE_HISTORY | WB_FEATURE_TIME_SET | WB_FEATURE_PAIN_ENTRY |
			   WB_FEATURE_STEPS | WB_FEATURE_POSTURE;
	w->battery = 87;
	w->devinfo[GW_CHAR_MANUFACTURER] = "Rehab Devices";
	w->devinfo[GW_CHAR_MODEL] = "RW-1";
	w->devinfo[GW_CHAR_SERIAL] = "SN0001";
	w->devinfo[GW_CHAR_FIRMWARE] = "1.3.0";
	w->answer_connect = true;
	w->connect_err = GW_BLE_OK;
	w->batch_records = 4;
	w->lose_link_after = -1;
	w->stall_after = -1;
	g_queue_init(&w->outbox);
	fake_wearable_full_layout(w);
}

void fake_wearable_fini(struct fake_wearable *w)
{
	g_clear_pointer(&w->flash, g_array_unref);
	g_clear_pointer(&w->layout, g_array_unref);
	g_queue_clear_full(&w->outbox, g_free);
}

void fake_wearable_full_layout(struct fake_wearable *w)
{
	g_array_set_size(w->layout, 0);
	/* something that is not ours first: the Generic Attribute service */
	fake_wearable_layout_add(w, -1, GW_PROP_INDICATE);
	for (int r = 0; r < GW_CHAR_COUNT; r++)
		fake_wearable_layout_add(w, r, profile_props[r]);
}

void fake_wearable_layout_add(struct fake_wearable *w, int role, unsigned int props)
{
	struct gw_gatt_char c = { role, props };

	g_array_append_val(w->layout, c);
}

void fake_wearable_layout_remove(struct fake_wearable *w, enum gw_char role)
{
	for (guint i = w->layout->len; i-- > 0;)
		if (g_array_index(w->layout, struct gw_gatt_char, i).role == (int) role)
			g_array_remove_index(w->layout, i);
}

void fake_wearable_layout_set_props(struct fake_wearable *w, enum gw_char role,
				    unsigned int props)
{
	for (guint i = 0; i < w->layout->len; i++) {
		struct gw_gatt_char *c = &g_array_index(w->layout, struct gw_gatt_char, i);

		if (c->role == (int) role)
			c->props = props;
	}
}

void fake_record(struct wb_record *r, enum wb_record_type type, uint32_t seq)
{
	memset(r, 0, sizeof(*r));
	r->type = type;
	r->version = WB_RECORD_VERSION;
	r->seq = seq;
	r->time = 0x2C000000u + (seq & 0xffffu);
	r->time_quality = WB_TIME_SYNCED;
	switch (type) {
	case WB_RECORD_POSTURE:
		r->u.posture = (struct wb_posture) { 300, -20, WB_POSTURE_FLEXED, 1 };
		break;
	case WB_RECORD_STEPS:
		r->u.steps = (struct wb_steps) { 12, 60 };
		break;
	case WB_RECORD_PAIN:
		r->u.pain = (struct wb_pain) { (uint8_t) (seq % 11), 0 };
		break;
	case WB_RECORD_STATUS:
		r->u.status = (struct wb_status) { 80, 10, 0, 1000 };
		break;
	}
}

uint32_t fake_wearable_make(struct fake_wearable *w, unsigned int n)
{
	uint32_t first = w->next_seq;

	for (unsigned int i = 0; i < n; i++) {
		struct wb_record r;
		uint32_t seq = w->next_seq++;

		fake_record(&r, (enum wb_record_type) (WB_RECORD_POSTURE + seq % 4), seq);
		g_array_append_val(w->flash, r);
	}
	return first;
}

const struct wb_record *fake_wearable_find(const struct fake_wearable *w, uint32_t seq)
{
	for (guint i = 0; i < w->flash->len; i++) {
		const struct wb_record *r = &g_array_index(w->flash, struct wb_record, i);

		if (r->seq == seq)
			return r;
	}
	return NULL;
}

static void push(struct fake_wearable *w, enum gw_char ch, const uint8_t *val, size_t len,
		 bool head)
{
	struct fake_value *v = g_new0(struct fake_value, 1);

	assert_true(len <= sizeof(v->bytes));
	v->ch = ch;
	v->len = len;
	memcpy(v->bytes, val, len);
	if (head)
		g_queue_push_head(&w->outbox, v);
	else
		g_queue_push_tail(&w->outbox, v);
}

void fake_wearable_push_value(struct fake_wearable *w, enum gw_char ch,
			      const uint8_t *val, size_t len, bool now)
{
	push(w, ch, val, len, now);
}

static enum gw_char live_char(enum wb_record_type t)
{
	switch (t) {
	case WB_RECORD_POSTURE:
		return GW_CHAR_POSTURE;
	case WB_RECORD_STEPS:
		return GW_CHAR_STEPS;
	case WB_RECORD_PAIN:
		return GW_CHAR_PAIN;
	case WB_RECORD_STATUS:
		return GW_CHAR_STATUS;
	}
	return GW_CHAR_POSTURE;
}

void fake_wearable_push_live(struct fake_wearable *w, uint32_t seq, unsigned int n, bool now)
{
	/* pushed at the head in reverse so they arrive in seq order */
	for (unsigned int k = 0; k < n; k++) {
		uint32_t s = now ? seq + (n - 1 - k) : seq + k;
		const struct wb_record *r = fake_wearable_find(w, s);
		uint8_t buf[64];
		ssize_t len;

		if (!r) {
			fail_msg("push_live: seq %u is not in the flash", s);
			return;
		}
		len = wb_batch_encode(r, 1, buf, sizeof(buf));
		assert_true(len > 0);
		push(w, live_char(r->type), buf, (size_t) len, now);
	}
}

size_t fake_wearable_features(const struct fake_wearable *w, uint8_t *buf, size_t size)
{
	struct wb_features feat = {
		.protocol_version = WB_PROTOCOL_VERSION,
		.flags = w->feature_flags,
		.posture_period_s = 1,
		.steps_period_s = 60,
		.capacity = 100000,
		.stored = w->flash->len,
		.first_seq = w->flash->len ? g_array_index(w->flash, struct wb_record, 0).seq : 0,
		.last_seq = w->next_seq - 1,
	};
	ssize_t n = wb_features_encode(&feat, buf, size);

	assert_int_equal(n, WB_FEATURES_LEN);
	return (size_t) n;
}

static void respond(struct fake_wearable *w, enum wb_hcp_opcode req, enum wb_hcp_code code,
		    uint32_t count, uint32_t last)
{
	struct wb_hcp_response rsp = { WB_HCP_RESPONSE_CODE, req, code, count, last };
	uint8_t buf[16];
	ssize_t n = wb_hcp_response_encode(&rsp, buf, sizeof(buf));

	assert_true(n > 0);
	push(w, GW_CHAR_HISTORY_CP, buf, (size_t) n, false);
}

static void hcp_report(struct fake_wearable *w, const struct wb_hcp_request *req)
{
	GArray *sel = g_array_new(FALSE, FALSE, sizeof(struct wb_record));
	uint32_t count = 0;

	w->reports++;
	w->last_report_all = req->filter == WB_HCP_ALL;
	w->last_report_after = req->seq;
	if (w->busy_next_report) {
		w->busy_next_report = false;
		respond(w, WB_HCP_REPORT_RECORDS, WB_HCP_BUSY, 0, 0);
		g_array_unref(sel);
		return;
	}
	for (guint i = 0; i < w->flash->len; i++) {
		const struct wb_record *r = &g_array_index(w->flash, struct wb_record, i);

		if (req->filter == WB_HCP_ALL || wb_seq_after(r->seq, req->seq))
			g_array_append_val(sel, *r);
	}
	if (sel->len == 0) {
		respond(w, WB_HCP_REPORT_RECORDS, WB_HCP_NO_RECORDS, 0, 0);
		g_array_unref(sel);
		return;
	}
	for (guint i = 0, n; i < sel->len; i += n) {
		/* as many as asked for that fit in one ATT value */
		size_t fit = wb_batch_fit(&g_array_index(sel, struct wb_record, i),
					  MIN(w->batch_records, sel->len - i), WB_ATT_MAX_VALUE);
		uint8_t buf[WB_ATT_MAX_VALUE];
		ssize_t len;

		assert_true(fit > 0);
		n = (guint) fit;
		len = wb_batch_encode(&g_array_index(sel, struct wb_record, i), n, buf, sizeof(buf));
		assert_true(len > 0);
		count += n;
		if (w->corrupt_next_history) {
			w->corrupt_next_history = false;
			buf[2] = 0x7f;	/* the first record's type: unknown */
		}
		if (w->drop_report_record && w->drop_report_skip > 0) {
			w->drop_report_skip--;
		} else if (w->drop_report_record) {
			w->drop_report_record = false;
			continue;	/* lost between bluetoothd and us */
		}
		if (w->answer_before_last && i + n >= sel->len) {
			respond(w, WB_HCP_REPORT_RECORDS, WB_HCP_SUCCESS, count,
				g_array_index(sel, struct wb_record, sel->len - 1).seq);
			push(w, GW_CHAR_HISTORY_DATA, buf, (size_t) len, false);
			g_array_unref(sel);
			return;
		}
		push(w, GW_CHAR_HISTORY_DATA, buf, (size_t) len, false);
	}
	respond(w, WB_HCP_REPORT_RECORDS, WB_HCP_SUCCESS, count,
		g_array_index(sel, struct wb_record, sel->len - 1).seq);
	g_array_unref(sel);
}

static void hcp_delete(struct fake_ble *f, struct fake_wearable *w,
		       const struct wb_hcp_request *req)
{
	uint32_t count = 0;

	guint keep = 0;

	w->deletes++;
	for (guint i = 0; i < w->flash->len; i++) {
		const struct wb_record *r = &g_array_index(w->flash, struct wb_record, i);

		if (wb_seq_after(r->seq, req->seq)) {
			g_array_index(w->flash, struct wb_record, keep++) = *r;
			continue;
		}
		/* the one rule the whole durable path rests on */
		if (!fake_committed(f, w->address, r->seq))
			fail_msg("%s: delete up to %u before seq %u was committed",
				 w->address, req->seq, r->seq);
		count++;
	}
	g_array_set_size(w->flash, keep);
	respond(w, WB_HCP_DELETE_RECORDS, count ? WB_HCP_SUCCESS : WB_HCP_NO_RECORDS,
		count, req->seq);
}

static void hcp_abort(struct fake_wearable *w)
{
	bool running = false;
	GList *l = w->outbox.head;

	w->aborts++;
	while (l) {
		GList *next = l->next;
		struct fake_value *v = l->data;

		if (v->ch == GW_CHAR_HISTORY_DATA ||
		    (v->ch == GW_CHAR_HISTORY_CP && v->len > 1 &&
		     v->bytes[1] == WB_HCP_REPORT_RECORDS)) {
			running = true;
			g_free(v);
			g_queue_delete_link(&w->outbox, l);
		}
		l = next;
	}
	if (running) {
		respond(w, WB_HCP_REPORT_RECORDS, WB_HCP_ABORTED, 0, 0);
		respond(w, WB_HCP_ABORT, WB_HCP_SUCCESS, 0, 0);
	} else {
		respond(w, WB_HCP_ABORT, WB_HCP_ABORT_FAILED, 0, 0);
	}
}

static void hcp_request(struct fake_ble *f, struct fake_wearable *w, const uint8_t *val,
			size_t len)
{
	struct wb_hcp_request req;

	/* the gateway's requests must be valid, byte for byte */
	assert_int_equal(wb_hcp_request_decode(val, len, &req, NULL), 0);
	switch (req.opcode) {
	case WB_HCP_REPORT_RECORDS:
		hcp_report(w, &req);
		break;
	case WB_HCP_DELETE_RECORDS:
		hcp_delete(f, w, &req);
		break;
	case WB_HCP_ABORT:
		hcp_abort(w);
		break;
	case WB_HCP_REPORT_COUNT:
	case WB_HCP_COUNT_RESPONSE:
	case WB_HCP_RESPONSE_CODE:
		fail_msg("unexpected HCP opcode %d", req.opcode);
		break;
	}
}

/* ---- the pump ---- */

static struct fake_wearable *find_wearable(const struct fake_ble *f, const char *dev)
{
	for (guint i = 0; i < f->wearables->len; i++) {
		struct fake_wearable *w = g_ptr_array_index(f->wearables, i);

		if (g_ascii_strcasecmp(w->address, dev) == 0)
			return w;
	}
	return NULL;
}

void fake_wearable_drop_link(struct fake_ble *f, struct fake_wearable *w)
{
	/* the wearable forgets a running procedure with the link */
	g_queue_clear_full(&w->outbox, g_free);
	w->stall_after = -1;
	if (!w->connected)
		return;
	w->connected = false;
	f->target->connected(f->target_data, w->address, false, f->now);
}

bool fake_wearable_deliver_one(struct fake_ble *f, struct fake_wearable *w)
{
	struct fake_value *v;

	if (!w->connected || g_queue_is_empty(&w->outbox))
		return false;
	if (w->lose_link_after == 0) {
		w->lose_link_after = -1;
		fake_wearable_drop_link(f, w);
		return true;
	}
	if (w->stall_after == 0)
		return false;
	if (w->stall_after > 0)
		w->stall_after--;
	if (w->lose_link_after > 0)
		w->lose_link_after--;
	v = g_queue_pop_head(&w->outbox);
	f->target->value(f->target_data, w->address, v->ch, v->bytes, v->len, f->now);
	g_free(v);
	return true;
}

static void answer_read(struct fake_ble *f, struct fake_wearable *w, enum gw_char ch)
{
	uint8_t buf[WB_ATT_MAX_VALUE];
	size_t len = 0;

	switch (ch) {
	case GW_CHAR_FEATURES:
		len = fake_wearable_features(w, buf, sizeof(buf));
		break;
	case GW_CHAR_BATTERY:
		buf[0] = w->battery;
		len = 1;
		break;
	case GW_CHAR_MANUFACTURER:
	case GW_CHAR_MODEL:
	case GW_CHAR_SERIAL:
	case GW_CHAR_FIRMWARE:
		if (!w->devinfo[ch]) {
			f->target->read_done(f->target_data, w->address, ch,
					     GW_BLE_ERR_NOT_SUPPORTED, NULL, 0, f->now);
			return;
		}
		len = strlen(w->devinfo[ch]);
		memcpy(buf, w->devinfo[ch], len);
		break;
	case GW_CHAR_POSTURE:
	case GW_CHAR_STEPS:
	case GW_CHAR_PAIN:
	case GW_CHAR_HISTORY_CP:
	case GW_CHAR_HISTORY_DATA:
	case GW_CHAR_STATUS:
	case GW_CHAR_CURRENT_TIME:
		fail_msg("unexpected read of %s", gw_char_name(ch));
		return;
	}
	f->target->read_done(f->target_data, w->address, ch, GW_BLE_OK, buf, len, f->now);
}

static void pump_call(struct fake_ble *f, const struct fake_call *c)
{
	struct fake_wearable *w = c->dev[0] ? find_wearable(f, c->dev) : NULL;

	if ((int) c->op == f->mute_op && (f->mute_ch < 0 || (int) c->ch == f->mute_ch))
		return;

	switch (c->op) {
	case FOP_CONNECT:
		if (!w)
			break;
		if (w->connect_err != GW_BLE_OK) {
			f->target->connect_done(f->target_data, c->dev, w->connect_err, f->now);
		} else if (w->answer_connect) {
			w->connected = true;
			f->target->connected(f->target_data, c->dev, true, f->now);
			f->target->connect_done(f->target_data, c->dev, GW_BLE_OK, f->now);
			f->target->resolved(f->target_data, c->dev, true, f->now);
			f->target->layout(f->target_data, c->dev,
					  (const struct gw_gatt_char *) (void *) w->layout->data,
					  w->layout->len, f->now);
		}
		break;
	case FOP_DISCONNECT:
		if (w)
			fake_wearable_drop_link(f, w);
		break;
	case FOP_REMOVE_CACHE:
		if (w)
			w->cache_drops++;
		break;
	case FOP_READ:
		if (w && w->connected)
			answer_read(f, w, c->ch);
		break;
	case FOP_WRITE:
		if (!w || !w->connected)
			break;
		if (c->ch == GW_CHAR_CURRENT_TIME) {
			struct wb_current_time t;

			assert_int_equal(wb_current_time_decode(c->bytes, c->len, &t, NULL), 0);
			memcpy(w->last_time, c->bytes, WB_CURRENT_TIME_LEN);
			w->time_written = true;
			f->target->write_done(f->target_data, c->dev, c->ch, GW_BLE_OK, f->now);
		} else if (c->ch == GW_CHAR_HISTORY_CP) {
			f->target->write_done(f->target_data, c->dev, c->ch, GW_BLE_OK, f->now);
			if (w->connected)
				hcp_request(f, w, c->bytes, c->len);
		}
		break;
	case FOP_NOTIFY:
		if (w && w->connected)
			f->target->notify_started(f->target_data, c->dev, c->ch, GW_BLE_OK,
						  f->now);
		break;
	case FOP_SET_POWERED:
		if (f->answer_power && f->target->powered)
			f->target->powered(f->target_data, c->a != 0, f->now);
		break;
	case FOP_STORE:
	case FOP_STATE:
	case FOP_ERROR:
	case FOP_REPAIR:
	case FOP_INFO:
	case FOP_BATTERY:
	case FOP_FEATURES:
	case FOP_MALFORMED:
	case FOP_START_DISCOVERY:
	case FOP_STOP_DISCOVERY:
	case FOP_ADAPTER_CHANGED:
	case FOP_RECOVERY:
		break;
	}
}

void fake_ble_pump(struct fake_ble *f)
{
	assert_non_null(f->target);
	for (int guard = 0; guard < 1000000; guard++) {
		bool moved = false;

		if (f->pumped < f->calls->len) {
			/* copied: answering appends to the log */
			struct fake_call c = g_array_index(f->calls, struct fake_call, f->pumped);

			f->pumped++;
			pump_call(f, &c);
			continue;
		}
		for (guint i = 0; i < f->wearables->len && !moved; i++) {
			struct fake_wearable *w = g_ptr_array_index(f->wearables, i);

			if (!w->hold_values)
				moved = fake_wearable_deliver_one(f, w);
		}
		if (moved)
			continue;
		if (f->auto_commit && fake_commit_one(f))
			continue;
		return;
	}
	fail_msg("pump: no quiescence");
}
