/* SPDX-License-Identifier: MIT */
/*
 * Test fakes for the pure BLE core (gateway/link.c, gateway/central.c):
 *
 *  - a recording ops table: every op call is logged as a struct fake_call;
 *  - a fake store that fails the running test if a seq reaches it twice
 *    and commits handovers in order when told to;
 *  - fake wearables: a flash of records with real seqs that answer the
 *    history control point with bytes made by proto/wearable.c's encoders,
 *    and refuse (fail the test) a delete of anything not yet committed;
 *  - a pump that answers the core's ops as BlueZ and the wearable would,
 *    delivering one value at a time so a test can drop the link anywhere.
 *
 * The pump feeds events through a struct fake_target, so the same fakes
 * drive a bare GwLink (test-link) and a GwCentral (test-central).
 * Include after <cmocka.h>.
 */
#ifndef REHABLINK_TESTS_FAKE_BLE_OPS_H
#define REHABLINK_TESTS_FAKE_BLE_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "central.h"
#include "link.h"
#include "wearable.h"

enum fake_op {
	FOP_CONNECT,
	FOP_DISCONNECT,
	FOP_REMOVE_CACHE,
	FOP_READ,
	FOP_WRITE,
	FOP_NOTIFY,
	FOP_STORE,
	FOP_STATE,
	FOP_ERROR,
	FOP_REPAIR,
	FOP_INFO,
	FOP_BATTERY,
	FOP_FEATURES,
	FOP_MALFORMED,
	FOP_START_DISCOVERY,
	FOP_STOP_DISCOVERY,
	FOP_SET_POWERED,
	FOP_ADAPTER_CHANGED,
	FOP_RECOVERY,
};

struct fake_call {
	enum fake_op op;
	char dev[24];
	enum gw_char ch;
	int a, b;		/* STATE old/new, ERROR class/state, REPAIR why, BATTERY pct,
				 * MALFORMED errno, SET_POWERED on, ADAPTER old/new, RECOVERY */
	size_t len;		/* WRITE bytes; STORE record count */
	uint8_t bytes[32];	/* WRITE */
	uint32_t first_seq;	/* STORE */
	uint32_t last_seq;	/* STORE */
	char str[72];		/* INFO value, START_DISCOVERY uuid */
	int64_t at;		/* fake->now when called */
};

/* Where the pump sends events: a link, or a central by address. */
struct fake_target {
	void (*connect_done)(void *t, const char *dev, enum gw_ble_err err, int64_t now);
	void (*connected)(void *t, const char *dev, bool on, int64_t now);
	void (*resolved)(void *t, const char *dev, bool on, int64_t now);
	void (*layout)(void *t, const char *dev, const struct gw_gatt_char *chars, size_t n,
		       int64_t now);
	void (*read_done)(void *t, const char *dev, enum gw_char ch, enum gw_ble_err err,
			  const uint8_t *val, size_t len, int64_t now);
	void (*write_done)(void *t, const char *dev, enum gw_char ch, enum gw_ble_err err,
			   int64_t now);
	void (*notify_started)(void *t, const char *dev, enum gw_char ch, enum gw_ble_err err,
			       int64_t now);
	void (*value)(void *t, const char *dev, enum gw_char ch, const uint8_t *val, size_t len,
		      int64_t now);
	void (*committed)(void *t, const char *dev, uint32_t seq, int64_t now);
	void (*powered)(void *t, bool on, int64_t now);	/* the adapter's Powered */
};

struct fake_value {
	enum gw_char ch;
	size_t len;
	uint8_t bytes[WB_ATT_MAX_VALUE];
};

struct fake_wearable {
	char address[24];
	GArray *flash;			/* struct wb_record, oldest first */
	uint32_t next_seq;
	uint8_t feature_flags;
	uint8_t battery;
	const char *devinfo[GW_CHAR_COUNT];	/* device information strings */
	GArray *layout;			/* struct gw_gatt_char reported after connecting */

	/* behaviour the pump follows */
	bool answer_connect;		/* connect: Connected, ServicesResolved, layout */
	enum gw_ble_err connect_err;	/* != OK: Connect() fails with it */
	unsigned int batch_records;	/* records per history batch, 1..32 */
	bool busy_next_report;
	bool corrupt_next_history;	/* the next history batch is malformed */
	bool drop_report_record;	/* a history notification gets lost */
	unsigned int drop_report_skip;	/* ... after this many batches got through */
	bool answer_before_last;	/* the report's answer overtakes its last
					 * batch (bluetoothd sends indications
					 * before notifications) */
	int lose_link_after;		/* values to deliver, then the link drops; -1: never */
	int stall_after;		/* values to deliver, then silence; -1: never */
	bool hold_values;		/* do not deliver values (the test does) */

	/* state and counters */
	bool connected;
	GQueue outbox;			/* struct fake_value, next to deliver first */
	unsigned int reports;
	unsigned int deletes;
	unsigned int aborts;
	unsigned int cache_drops;
	bool last_report_all;
	uint32_t last_report_after;
	uint8_t last_time[WB_CURRENT_TIME_LEN];
	bool time_written;
};

struct fake_handover {
	char dev[24];
	size_t n;
	uint32_t *seqs;
};

struct fake_ble {
	GArray *calls;			/* struct fake_call */
	guint pumped;			/* calls the pump has answered */
	int64_t now;

	/* random(): scripted values first, then splitmix64 */
	GArray *random_script;		/* uint32_t */
	uint64_t rng;

	/* the store */
	GHashTable *stored;		/* dev -> GHashTable seq -> 1 stored, 2 committed */
	GQueue handovers;		/* struct fake_handover, oldest first */
	bool auto_commit;		/* the pump commits everything */
	bool sync_commit;		/* commit inside store_records (re-entrancy) */
	uint64_t duplicates;		/* only if allow_duplicates */
	bool allow_duplicates;

	/* the devices */
	GPtrArray *wearables;		/* struct fake_wearable (not owned) */
	const struct fake_target *target;
	void *target_data;

	/* set_powered: the pump reports the new Powered at once */
	bool answer_power;
	/* the pump leaves calls of this op (and char, unless -1) unanswered;
	 * -1: answers everything */
	int mute_op;
	int mute_ch;
	/* called on every state_changed, to check transitions */
	void (*on_state)(struct fake_ble *f, const char *dev, enum gw_link_state old_state,
			 enum gw_link_state new_state);
};

void fake_ble_init(struct fake_ble *f);
void fake_ble_fini(struct fake_ble *f);
/* Ops with user_data = the struct fake_ble. */
struct gw_link_ops fake_ble_link_ops(void);
struct gw_central_ops fake_ble_central_ops(void);
/* t = GwLink *; test-central.c has the GwCentral one, so that this file
 * needs only link.c to link */
extern const struct fake_target fake_link_target;

void fake_ble_set_target(struct fake_ble *f, const struct fake_target *t, void *data);
void fake_ble_add_wearable(struct fake_ble *f, struct fake_wearable *w);
void fake_ble_random_push(struct fake_ble *f, uint32_t v);

/* The call log. */
size_t fake_ncalls(const struct fake_ble *f);
const struct fake_call *fake_call_at(const struct fake_ble *f, size_t i);
size_t fake_count(const struct fake_ble *f, enum fake_op op);
size_t fake_count_dev(const struct fake_ble *f, enum fake_op op, const char *dev);
/* The last call of that op (for dev, if not NULL), or NULL. */
const struct fake_call *fake_last(const struct fake_ble *f, enum fake_op op, const char *dev);
/* Index of the first call of op at or after `from` (for dev, if not NULL), or -1. */
long fake_find(const struct fake_ble *f, enum fake_op op, const char *dev, size_t from);
/* Forgets the log (the pump's position too); the store stays. */
void fake_clear_calls(struct fake_ble *f);
const char *fake_op_name(enum fake_op op);

/* The store. */
bool fake_stored(const struct fake_ble *f, const char *dev, uint32_t seq);
bool fake_committed(const struct fake_ble *f, const char *dev, uint32_t seq);
size_t fake_stored_count(const struct fake_ble *f, const char *dev);
size_t fake_pending_handovers(const struct fake_ble *f);
/* Commits the oldest handover: marks it and calls target->committed.
 * Returns false if none is pending. */
bool fake_commit_one(struct fake_ble *f);
void fake_commit_all(struct fake_ble *f);
/* The store lost everything not committed. */
void fake_store_drop_pending(struct fake_ble *f);
/* Seqs from..to (serial order) are in the store already, committed: what a
 * gateway restarted with a durable seq has. */
void fake_store_preload(struct fake_ble *f, const char *dev, uint32_t from, uint32_t to);

/* The fake wearable. */
void fake_wearable_init(struct fake_wearable *w, const char *address, uint32_t first_seq);
void fake_wearable_fini(struct fake_wearable *w);
/* The full profile, every characteristic with its profile properties. */
void fake_wearable_full_layout(struct fake_wearable *w);
void fake_wearable_layout_remove(struct fake_wearable *w, enum gw_char role);
void fake_wearable_layout_set_props(struct fake_wearable *w, enum gw_char role,
				    unsigned int props);
void fake_wearable_layout_add(struct fake_wearable *w, int role, unsigned int props);
/* Appends n valid records (types cycling posture, steps, pain, status),
 * returns the first seq. */
uint32_t fake_wearable_make(struct fake_wearable *w, unsigned int n);
const struct wb_record *fake_wearable_find(const struct fake_wearable *w, uint32_t seq);
/* Queues a live notification of the records seq..seq+n-1 (from the flash)
 * at the head (now = true) or tail of the outbox. */
void fake_wearable_push_live(struct fake_wearable *w, uint32_t seq, unsigned int n,
			     bool now);
void fake_wearable_push_value(struct fake_wearable *w, enum gw_char ch,
			      const uint8_t *val, size_t len, bool now);
size_t fake_wearable_features(const struct fake_wearable *w, uint8_t *buf, size_t size);
/* A valid record of type for seq. */
void fake_record(struct wb_record *r, enum wb_record_type type, uint32_t seq);

/* Answers every new op call and delivers queued values, one at a time,
 * until nothing moves (bounded). */
void fake_ble_pump(struct fake_ble *f);
/* Delivers the next queued value of w; false if none. */
bool fake_wearable_deliver_one(struct fake_ble *f, struct fake_wearable *w);
/* Drops the link from the wearable's side. */
void fake_wearable_drop_link(struct fake_ble *f, struct fake_wearable *w);

#endif
