/* SPDX-License-Identifier: MIT */
/*
 * gateway/rules.c: the escalation engine, through clinical scenarios and
 * unit tests.
 *
 * Scenarios are a table (docs/escalation.md, "Scenarios"): a timeline of
 * inputs over hours or days, and the exact list of alert events it gives
 * (time, kind, rule, tier, which alert) and no others. The driver plays
 * the timeline the way the daemon would: before each input it fires every
 * deadline due up to that time (gw_rules_next_deadline / gw_rules_tick),
 * and after the last it runs the clock to the scenario's end. By default
 * the fake broker acknowledges every notification at once from inside the
 * event op (a re-entrant gw_rules_delivered); while the broker is down the
 * acknowledgements wait for it to come back. Delivered events are audited
 * but left out of the comparison unless a scenario asks for them.
 *
 * Every event is also held to invariants: notification numbers of an
 * alert go up by one per published notification, an acknowledged alert
 * has its acknowledgement, trigger names and values are what the payload
 * builder accepts, the audit detail has no health values, and the next
 * deadline after a tick is in the future (no busy loop).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <glib.h>

#include "rules.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SEC(x) ((int64_t) (x) * G_USEC_PER_SEC)
#define T0 INT64_C(1714521600)		/* 2024-05-01T00:00:00Z */
#define M(x) ((int64_t) (x) * 60)
#define H(x) ((int64_t) (x) * 3600)
#define D(x) ((int64_t) (x) * 86400)
#define PATIENT "pt1"
#define WEARABLE "w1"

/* pain flags (docs/protocol.md 1.6) */
#define F_BREATH 0x01u
#define F_CHEST 0x02u
#define F_CALF 0x04u
#define F_MED 0x20u
#define F_ONE 0x40u

/* ---- the scenario language ---- */

enum step_kind {
	S_NONE = 0,		/* end of the list */
	S_PAIN,			/* a = score, b = flags, ev = event time (s) */
	S_CTX,			/* a = steps today, b = yesterday, c = flexed s, d = post-op day */
	S_ACK,			/* a = alert number, expect */
	S_RESOLVE,		/* a = alert number, expect */
	S_BROKER,		/* a = connected */
	S_CLOCK,		/* a = synced */
	S_BATTERY,		/* a = percent */
	S_DATA,			/* wearable data now */
	S_STORE,		/* a = percent */
	S_CORRUPT,
	S_DELIVER,		/* a = alert number, b = notification, expect */
	S_FB_RESULT,		/* a = alert number, b = status, expect */
	S_RESTART,		/* export, stop for c seconds, new engine, restore */
	S_JUMP,			/* the wall clock steps by c seconds, unreported */
	S_JUMP_REPORTED,	/* the same, reported with gw_rules_clock_step */
	S_WEARABLE_REMOVE,
};

struct step {
	int64_t at;		/* seconds from T0 */
	enum step_kind kind;
	int a, b;
	int64_t c, d;
	int64_t ev;
	enum gw_rules_result expect;
};

#define PAIN(t, s) { .at = (t), .kind = S_PAIN, .a = (s), .ev = (t) }
#define PAINF(t, s, f) { .at = (t), .kind = S_PAIN, .a = (s), .b = (f), .ev = (t) }
#define PAIN_AT(t, s, e) { .at = (t), .kind = S_PAIN, .a = (s), .ev = (e) }
#define CTX(t, today, yday, flexed, pod) { .at = (t), .kind = S_CTX, .a = (today), \
	.b = (yday), .c = (flexed), .d = (pod) }
#define ACK(t, n) { .at = (t), .kind = S_ACK, .a = (n) }
#define ACKR(t, n, r) { .at = (t), .kind = S_ACK, .a = (n), .expect = (r) }
#define RESOLVE(t, n) { .at = (t), .kind = S_RESOLVE, .a = (n) }
#define RESOLVER(t, n, r) { .at = (t), .kind = S_RESOLVE, .a = (n), .expect = (r) }
#define BROKER(t, up) { .at = (t), .kind = S_BROKER, .a = (up) }
#define CLOCK(t, synced) { .at = (t), .kind = S_CLOCK, .a = (synced) }
#define BATT(t, pct) { .at = (t), .kind = S_BATTERY, .a = (pct) }
#define DATA(t) { .at = (t), .kind = S_DATA }
#define STORE(t, pct) { .at = (t), .kind = S_STORE, .a = (pct) }
#define CORRUPT(t) { .at = (t), .kind = S_CORRUPT }
#define DELIVER(t, n, k) { .at = (t), .kind = S_DELIVER, .a = (n), .b = (k) }
#define FBRES(t, n, st) { .at = (t), .kind = S_FB_RESULT, .a = (n), .b = (st) }
#define RESTART(t, down) { .at = (t), .kind = S_RESTART, .c = (down) }
#define JUMP(t, delta) { .at = (t), .kind = S_JUMP, .c = (delta) }
#define JUMPR(t, delta) { .at = (t), .kind = S_JUMP_REPORTED, .c = (delta) }
#define WREMOVE(t) { .at = (t), .kind = S_WEARABLE_REMOVE }

struct expect {
	int64_t at;
	enum gw_rules_event_kind kind;
	const char *rule;	/* NULL: end of the list */
	enum gw_rules_tier tier;
	int alert;		/* "al-<n>" */
	uint32_t notification;	/* 0: not checked */
};

#define RAISED GW_RULES_EV_RAISED
#define UPDATED GW_RULES_EV_UPDATED
#define RENOTIFIED GW_RULES_EV_RENOTIFIED
#define TIER_UP GW_RULES_EV_TIER_UP
#define ACKED GW_RULES_EV_ACKNOWLEDGED
#define RESOLVED GW_RULES_EV_RESOLVED
#define FALLBACK GW_RULES_EV_FALLBACK_STARTED
#define FB_RESULT GW_RULES_EV_FALLBACK_RESULT
#define DELIVERED GW_RULES_EV_DELIVERED

#define INF GW_RULES_INFORMATIONAL
#define ROU GW_RULES_ROUTINE
#define URG GW_RULES_URGENT
#define EME GW_RULES_EMERGENCY

#define RED GW_RULE_PAIN_RED_FLAG
#define SEVERE GW_RULE_PAIN_SEVERE
#define RISE GW_RULE_PAIN_RISE
#define PERSIST GW_RULE_PAIN_PERSISTENT
#define NODATA GW_RULE_WEARABLE_NO_DATA
#define BATTERY GW_RULE_WEARABLE_BATTERY
#define STOREFULL GW_RULE_STORE_FULL
#define CORRUPTED GW_RULE_STORE_CORRUPT
#define CLOCKU GW_RULE_CLOCK_UNSYNCED
#define BROKERD GW_RULE_BROKER_DOWN

#define E(t, k, r, tier, n) { (t), (k), (r), (tier), (n), 0 }
#define EN(t, k, r, tier, n, notif) { (t), (k), (r), (tier), (n), (notif) }

enum {
	SC_WEARABLE = 1 << 0,		/* w1 of pt1 is watched from 0, data at 0 */
	SC_NO_PUBACK = 1 << 1,		/* the broker never acknowledges */
	SC_FB_SYNC = 1 << 2,		/* the fallback reports status 0 from inside the op */
	SC_CHECK_DELIVERED = 1 << 3,	/* compare delivered events too */
};

struct scenario {
	const char *name;
	void (*config)(struct gw_rules_config *c);
	unsigned int flags;
	int64_t end;			/* seconds */
	struct step steps[40];
	struct expect exp[48];
};

/* ---- configurations ---- */

static void cfg_rate30(struct gw_rules_config *c)
{
	c->min_notify_interval_min = 30;
}

static void cfg_slow_urgent(struct gw_rules_config *c)
{
	c->renotify_urgent_min = 240;
	c->fallback_enabled = false;
}

static void cfg_quiet_wearable(struct gw_rules_config *c)
{
	c->no_data_min = 10080;
}

static void cfg_long_hysteresis(struct gw_rules_config *c)
{
	c->tech_hysteresis_min = 40;
}

static void cfg_routine_moves_up(struct gw_rules_config *c)
{
	c->tier_up_after_routine = 2;
}

static void cfg_no_data_informational(struct gw_rules_config *c)
{
	c->no_data_tier = GW_RULES_INFORMATIONAL;
	c->no_data_min = 120;
}

static void cfg_no_medication_rule(struct gw_rules_config *c)
{
	c->medication_rule = false;
}

static void cfg_moderate6(struct gw_rules_config *c)
{
	c->moderate_pain_score = 6;
}

/* ---- the scenarios (docs/escalation.md lists them) ---- */

static const struct scenario scenarios[] = {
	{ "calm recovery: pain 2-3 over three days, no alert", NULL, 0, D(3), {
		PAIN(H(8), 2), PAIN(H(12), 3), PAIN(H(20), 2),
		PAIN(D(1) + H(8), 3), PAIN(D(1) + H(14), 2), PAIN(D(1) + H(21), 3),
		PAIN(D(2) + H(9), 2), PAIN(D(2) + H(15), 3),
	}, { { 0 } } },
	{ "single 7: urgent, acknowledged", NULL, 0, H(3), {
		PAIN(0, 7), ACK(M(10), 1),
	}, {
		EN(0, RAISED, SEVERE, URG, 1, 1),
		EN(M(10), ACKED, SEVERE, URG, 1, 2),
	} },
	{ "8 acknowledged within 5 min: no re-notification", NULL, 0, H(6), {
		PAIN(0, 8), ACK(M(4), 1),
	}, {
		E(0, RAISED, SEVERE, URG, 1),
		E(M(4), ACKED, SEVERE, URG, 1),
	} },
	{ "8 never acknowledged: re-notified, emergency, fallback", NULL, 0, M(60), {
		PAIN(0, 8),
	}, {
		EN(0, RAISED, SEVERE, URG, 1, 1),
		EN(M(15), RENOTIFIED, SEVERE, URG, 1, 2),
		EN(M(30), TIER_UP, SEVERE, EME, 1, 3),
		E(M(30), FALLBACK, SEVERE, EME, 1),
		EN(M(35), RENOTIFIED, SEVERE, EME, 1, 4),
		EN(M(40), RENOTIFIED, SEVERE, EME, 1, 5),
		EN(M(45), RENOTIFIED, SEVERE, EME, 1, 6),
		EN(M(50), RENOTIFIED, SEVERE, EME, 1, 7),
		EN(M(55), RENOTIFIED, SEVERE, EME, 1, 8),
		EN(M(60), RENOTIFIED, SEVERE, EME, 1, 9),
	} },
	{ "red flag with score 2: emergency, fallback at once", NULL, SC_FB_SYNC, H(2), {
		PAINF(0, 2, F_BREATH), ACK(M(3), 1),
	}, {
		E(0, RAISED, RED, EME, 1),
		E(0, FALLBACK, RED, EME, 1),
		E(0, FB_RESULT, RED, EME, 1),
		E(M(3), ACKED, RED, EME, 1),
	} },
	{ "4 then 4 five hours later: routine", NULL, 0, H(5) + M(50), {
		PAIN(0, 4), PAIN(H(5), 4),
	}, {
		E(H(5), RAISED, PERSIST, ROU, 1),
	} },
	{ "4 then 4 one hour later: nothing", NULL, 0, H(6), {
		PAIN(0, 4), PAIN(H(1), 4),
	}, { { 0 } } },
	{ "4 then 4 thirty hours later: nothing (24 h window)", NULL, 0, H(32), {
		PAIN(0, 4), PAIN(H(30), 4),
	}, { { 0 } } },
	{ "4 after medication: routine", NULL, 0, M(50), {
		PAINF(0, 4, F_MED),
	}, {
		E(0, RAISED, PERSIST, ROU, 1),
	} },
	{ "4 after medication, medication rule off: nothing", cfg_no_medication_rule, 0, H(2), {
		PAINF(0, 4, F_MED),
	}, { { 0 } } },
	{ "2,2,2,2 then 6: urgent rise over the 24 h median", NULL, 0, H(10), {
		PAIN(0, 2), PAIN(H(2), 2), PAIN(H(4), 2), PAIN(H(6), 2),
		PAIN(H(8), 6), ACK(H(8) + M(5), 1),
	}, {
		E(H(8), RAISED, RISE, URG, 1),
		E(H(8) + M(5), ACKED, RISE, URG, 1),
	} },
	{ "3 then 5: urgent rise over the previous report", NULL, 0, H(5), {
		PAIN(0, 3), PAIN(H(3), 5), ACK(H(3) + M(10), 1),
	}, {
		E(H(3), RAISED, RISE, URG, 1),
		E(H(3) + M(10), ACKED, RISE, URG, 1),
	} },
	{ "2,2,2,4 then 5: a rise over the median, not over the previous", NULL, 0, H(6), {
		PAIN(0, 2), PAIN(H(1), 2), PAIN(H(2), 2), PAIN(H(4), 4), PAIN(H(5), 5),
		ACK(H(5) + M(3), 1),
	}, {
		E(H(5), RAISED, RISE, URG, 1),
		E(H(5) + M(3), ACKED, RISE, URG, 1),
	} },
	{ "1 then 4: a rise to below 5, nothing", NULL, 0, H(4), {
		PAIN(0, 1), PAIN(H(2), 4),
	}, { { 0 } } },
	{ "two 7s an hour apart: one alert, updated", NULL, 0, H(3), {
		PAIN(0, 7), ACK(M(5), 1), PAIN(H(1), 7),
	}, {
		EN(0, RAISED, SEVERE, URG, 1, 1),
		EN(M(5), ACKED, SEVERE, URG, 1, 2),
		EN(H(1), UPDATED, SEVERE, URG, 1, 3),
	} },
	{ "two 7s two minutes apart: the update waits for the rate limit", NULL, 0, H(2), {
		PAIN(0, 7), PAIN(M(2), 7), ACK(M(38), 1),
	}, {
		EN(0, RAISED, SEVERE, URG, 1, 1),
		EN(M(10), UPDATED, SEVERE, URG, 1, 2),
		EN(M(20), RENOTIFIED, SEVERE, URG, 1, 3),
		E(M(30), FALLBACK, SEVERE, URG, 1),
		EN(M(35), TIER_UP, SEVERE, EME, 1, 4),
		EN(M(38), ACKED, SEVERE, EME, 1, 5),
	} },
	{ "7 resolved by the clinic, a new 7 the next day: a new alert", NULL, 0, D(1) + H(2), {
		PAIN(0, 7), RESOLVE(M(10), 1),
		PAIN(D(1), 7), ACK(D(1) + M(5), 2), ACKR(D(1) + M(10), 1, GW_RULES_ALREADY_RESOLVED),
	}, {
		E(0, RAISED, SEVERE, URG, 1),
		E(M(10), RESOLVED, SEVERE, URG, 1),
		E(D(1), RAISED, SEVERE, URG, 2),
		E(D(1) + M(5), ACKED, SEVERE, URG, 2),
	} },
	{ "low steps on post-op day 3 raise persistent pain to urgent", NULL, 0, H(5), {
		CTX(0, 120, 300, 600, 3), PAIN(0, 4), PAIN(H(3), 4), ACK(H(3) + M(5), 1),
	}, {
		E(H(3), RAISED, PERSIST, URG, 1),
		E(H(3) + M(5), ACKED, PERSIST, URG, 1),
	} },
	{ "enough steps on post-op day 3: persistent pain stays routine", NULL, 0, H(3) + M(50), {
		CTX(0, 800, 2500, 600, 3), PAIN(0, 4), PAIN(H(3), 4),
	}, {
		E(H(3), RAISED, PERSIST, ROU, 1),
	} },
	{ "low steps on post-op day 1: no raise (floor from day 2)", NULL, 0, H(3) + M(50), {
		CTX(0, 50, 100, 600, 1), PAIN(0, 4), PAIN(H(3), 4),
	}, {
		E(H(3), RAISED, PERSIST, ROU, 1),
	} },
	{ "posture and steps alone never alert", NULL, 0, D(2), {
		CTX(0, 0, 0, 7200, 20), PAIN(H(2), 2), CTX(H(6), 10, 0, 7200, 20),
		PAIN(H(10), 3), CTX(D(1), 0, 10, 7200, 21), PAIN(D(1) + H(4), 2),
	}, { { 0 } } },
	{ "long flexion on post-op day 20 raises persistent pain to urgent", NULL, 0, H(3) + M(10), {
		CTX(0, 3000, 3500, 6000, 20), PAIN(0, 4), PAIN(H(3), 4),
	}, {
		E(H(3), RAISED, PERSIST, URG, 1),
	} },
	{ "flexion in the first week is expected: routine", NULL, 0, H(3) + M(10), {
		CTX(0, 3000, 3500, 7000, 5), PAIN(0, 4), PAIN(H(3), 4),
	}, {
		E(H(3), RAISED, PERSIST, ROU, 1),
	} },
	{ "no data for 30 min; data returns, cleared after the hysteresis", NULL, SC_WEARABLE, M(120), {
		DATA(M(50)), DATA(M(70)), DATA(M(90)), DATA(M(110)),
	}, {
		E(M(30), RAISED, NODATA, ROU, 1),
		E(M(60), RESOLVED, NODATA, ROU, 1),
	} },
	{ "no data, one record, silence again: a second alarm", NULL, SC_WEARABLE, M(90), {
		DATA(M(35)), DATA(M(70)),
	}, {
		E(M(30), RAISED, NODATA, ROU, 1),
		E(M(45), RESOLVED, NODATA, ROU, 1),
		E(M(65), RAISED, NODATA, ROU, 2),
		E(M(80), RESOLVED, NODATA, ROU, 2),
	} },
	{ "no data comes back within the hysteresis: one alarm stays", cfg_long_hysteresis,
	  SC_WEARABLE, M(150), {
		DATA(M(35)), DATA(M(100)), DATA(M(120)), DATA(M(140)),
	}, {
		E(M(30), RAISED, NODATA, ROU, 1),
		E(M(90), RENOTIFIED, NODATA, ROU, 1),
		E(M(140), RESOLVED, NODATA, ROU, 1),
	} },
	{ "no data as informational after 2 h (reference C8)", cfg_no_data_informational,
	  SC_WEARABLE, H(6), {
		DATA(M(10)),
	}, {
		E(M(130), RAISED, NODATA, INF, 1),
	} },
	{ "no data resolved by the clinic while the silence lasts: not raised again", NULL,
	  SC_WEARABLE, M(140), {
		RESOLVE(M(40), 1), DATA(M(100)),
	}, {
		E(M(30), RAISED, NODATA, ROU, 1),
		E(M(40), RESOLVED, NODATA, ROU, 1),
		E(M(130), RAISED, NODATA, ROU, 2),
	} },
	{ "wearable removed: its alarm clears", NULL, SC_WEARABLE, M(60), {
		WREMOVE(M(40)),
	}, {
		E(M(30), RAISED, NODATA, ROU, 1),
		E(M(50), RESOLVED, NODATA, ROU, 1),
	} },
	{ "battery low: routine, re-notified, charged", cfg_quiet_wearable, SC_WEARABLE, H(6), {
		BATT(0, 40), BATT(H(2), 15), ACK(H(3) + M(10), 1), BATT(H(5), 80),
	}, {
		EN(H(2), RAISED, BATTERY, ROU, 1, 1),
		EN(H(3), RENOTIFIED, BATTERY, ROU, 1, 2),
		EN(H(3) + M(10), ACKED, BATTERY, ROU, 1, 3),
		EN(H(5) + M(10), RESOLVED, BATTERY, ROU, 1, 4),
	} },
	{ "battery jitter at the threshold: one alarm", cfg_quiet_wearable, SC_WEARABLE, M(60), {
		BATT(0, 15), ACK(M(1), 1), BATT(M(2), 16), BATT(M(5), 15), BATT(M(20), 80),
	}, {
		E(0, RAISED, BATTERY, ROU, 1),
		E(M(1), ACKED, BATTERY, ROU, 1),
		E(M(30), RESOLVED, BATTERY, ROU, 1),
	} },
	{ "broker down 15 min: technical alarm, cleared when back", NULL, 0, M(60), {
		BROKER(0, 0), BROKER(M(40), 1),
	}, {
		E(M(15), RAISED, BROKERD, ROU, 1),
		E(M(50), RESOLVED, BROKERD, ROU, 1),
	} },
	{ "broker down 14 min 59 s: nothing", NULL, 0, M(60), {
		BROKER(0, 0), PAIN(M(14) + 30, 2), BROKER(M(15) - 1, 1),
	}, { { 0 } } },
	{ "broker flaps during the hysteresis: the wait restarts", NULL, 0, M(60), {
		BROKER(0, 0), BROKER(M(30), 1), BROKER(M(35), 0), BROKER(M(37), 1),
	}, {
		E(M(15), RAISED, BROKERD, ROU, 1),
		E(M(47), RESOLVED, BROKERD, ROU, 1),
	} },
	{ "urgent alert while the broker is down: fallback at once", NULL, 0, M(60), {
		BROKER(0, 0), PAIN(M(20), 8), BROKER(M(25), 1), ACK(M(27), 2),
	}, {
		E(M(15), RAISED, BROKERD, ROU, 1),
		E(M(20), RAISED, SEVERE, URG, 2),
		E(M(20), FALLBACK, SEVERE, URG, 2),
		E(M(27), ACKED, SEVERE, URG, 2),
		E(M(35), RESOLVED, BROKERD, ROU, 1),
	} },
	{ "broker blip shorter than the grace: no fallback", NULL, 0, M(60), {
		PAIN(0, 8), BROKER(M(5), 0), BROKER(M(5) + 30, 1), ACK(M(10), 1),
	}, {
		E(0, RAISED, SEVERE, URG, 1),
		E(M(10), ACKED, SEVERE, URG, 1),
	} },
	{ "broker lost while an urgent alert waits: fallback after the grace", NULL, 0, M(60), {
		PAIN(0, 8), BROKER(M(5), 0), BROKER(M(19), 1), ACK(M(22), 1),
	}, {
		E(0, RAISED, SEVERE, URG, 1),
		E(M(6), FALLBACK, SEVERE, URG, 1),
		E(M(15), RENOTIFIED, SEVERE, URG, 1),
		E(M(22), ACKED, SEVERE, URG, 1),
	} },
	{ "notification never acknowledged by the broker: fallback after 60 s", NULL,
	  SC_NO_PUBACK, M(30), {
		PAIN(0, 8), ACK(M(5), 1),
	}, {
		E(0, RAISED, SEVERE, URG, 1),
		E(M(1), FALLBACK, SEVERE, URG, 1),
		E(M(5), ACKED, SEVERE, URG, 1),
	} },
	{ "delivery is audited", NULL, SC_CHECK_DELIVERED, M(30), {
		PAIN(0, 7), ACK(M(5), 1),
		{ .at = M(6), .kind = S_DELIVER, .a = 1, .b = 2, .expect = GW_RULES_NOOP },
		{ .at = M(7), .kind = S_DELIVER, .a = 1, .b = 3, .expect = GW_RULES_INVALID },
		{ .at = M(8), .kind = S_DELIVER, .a = 5, .b = 1, .expect = GW_RULES_UNKNOWN_ALERT },
	}, {
		EN(0, RAISED, SEVERE, URG, 1, 1),
		EN(0, DELIVERED, SEVERE, URG, 1, 1),
		EN(M(5), ACKED, SEVERE, URG, 1, 2),
		EN(M(5), DELIVERED, SEVERE, URG, 1, 2),
	} },
	{ "clock unsynchronised for an hour", NULL, 0, M(120), {
		CLOCK(0, 0), CLOCK(M(90), 1),
	}, {
		E(M(60), RAISED, CLOCKU, ROU, 1),
		E(M(100), RESOLVED, CLOCKU, ROU, 1),
	} },
	{ "clock unsynchronised for 50 min: nothing", NULL, 0, H(3), {
		CLOCK(0, 0), CLOCK(M(50), 1),
	}, { { 0 } } },
	{ "ack for an unknown alert: refused, nothing changes", NULL, 0, M(14), {
		PAIN(0, 7), ACKR(M(2), 99, GW_RULES_UNKNOWN_ALERT), ACK(M(5), 1),
	}, {
		E(0, RAISED, SEVERE, URG, 1),
		E(M(5), ACKED, SEVERE, URG, 1),
	} },
	{ "duplicate ack: idempotent", NULL, 0, H(2), {
		PAIN(0, 7), ACK(M(5), 1), ACKR(M(6), 1, GW_RULES_NOOP),
	}, {
		EN(0, RAISED, SEVERE, URG, 1, 1),
		EN(M(5), ACKED, SEVERE, URG, 1, 2),
	} },
	{ "resolve before ack; later ack and resolve are refused", NULL, 0, H(2), {
		PAIN(0, 7), RESOLVE(M(5), 1), ACKR(M(6), 1, GW_RULES_ALREADY_RESOLVED),
		RESOLVER(M(7), 1, GW_RULES_NOOP),
	}, {
		E(0, RAISED, SEVERE, URG, 1),
		EN(M(5), RESOLVED, SEVERE, URG, 1, 2),
	} },
	{ "restart mid-alert: timers continue", NULL, 0, M(40), {
		PAIN(0, 8), RESTART(M(10), 0),
	}, {
		EN(0, RAISED, SEVERE, URG, 1, 1),
		EN(M(15), RENOTIFIED, SEVERE, URG, 1, 2),
		EN(M(30), TIER_UP, SEVERE, EME, 1, 3),
		E(M(30), FALLBACK, SEVERE, EME, 1),
		EN(M(35), RENOTIFIED, SEVERE, EME, 1, 4),
		EN(M(40), RENOTIFIED, SEVERE, EME, 1, 5),
	} },
	{ "restart with a 40 min outage: the overdue re-notification at once", NULL, 0, M(70), {
		PAIN(0, 8), RESTART(M(10), M(40)),
	}, {
		EN(0, RAISED, SEVERE, URG, 1, 1),
		EN(M(50), RENOTIFIED, SEVERE, URG, 1, 2),
		E(M(50), FALLBACK, SEVERE, URG, 1),
		EN(M(65), TIER_UP, SEVERE, EME, 1, 3),
		EN(M(70), RENOTIFIED, SEVERE, EME, 1, 4),
	} },
	{ "restart with an update pending", NULL, 0, M(30), {
		PAIN(0, 7), PAIN(M(2), 7), RESTART(M(5), 0), ACK(M(12), 1),
	}, {
		EN(0, RAISED, SEVERE, URG, 1, 1),
		EN(M(10), UPDATED, SEVERE, URG, 1, 2),
		EN(M(12), ACKED, SEVERE, URG, 1, 3),
	} },
	{ "restart keeps the pain history: persistent pain across it", NULL, 0, H(3) + M(10), {
		PAIN(0, 4), RESTART(H(1), 0), PAIN(H(3), 4),
	}, {
		E(H(3), RAISED, PERSIST, ROU, 1),
	} },
	{ "emergency is never rate-limited", cfg_rate30, 0, M(30), {
		PAINF(0, 3, F_CHEST), PAINF(M(16), 3, F_CHEST | F_CALF), ACK(M(17), 1),
	}, {
		E(0, RAISED, RED, EME, 1),
		E(0, FALLBACK, RED, EME, 1),
		E(M(5), RENOTIFIED, RED, EME, 1),
		E(M(10), RENOTIFIED, RED, EME, 1),
		E(M(15), RENOTIFIED, RED, EME, 1),
		E(M(16), UPDATED, RED, EME, 1),
		E(M(17), ACKED, RED, EME, 1),
	} },
	{ "urgent re-notification waits for the rate limit", cfg_rate30, 0, M(120), {
		PAIN(0, 8), ACK(M(62), 1),
	}, {
		E(0, RAISED, SEVERE, URG, 1),
		E(M(30), RENOTIFIED, SEVERE, URG, 1),
		E(M(30), FALLBACK, SEVERE, URG, 1),
		E(M(60), TIER_UP, SEVERE, EME, 1),
		E(M(62), ACKED, SEVERE, EME, 1),
	} },
	{ "store near its budget", NULL, 0, M(180), {
		STORE(0, 89), STORE(M(60), 90), STORE(M(70), 95), STORE(M(110), 50),
	}, {
		E(M(60), RAISED, STOREFULL, ROU, 1),
		E(M(120), RESOLVED, STOREFULL, ROU, 1),
	} },
	{ "store corrupt: raised once", NULL, 0, M(50), {
		CORRUPT(0), CORRUPT(M(5)), ACK(M(10), 1), CORRUPT(M(20)), RESOLVE(M(30), 1),
		CORRUPT(M(40)), ACK(M(45), 2),
	}, {
		E(0, RAISED, CORRUPTED, ROU, 1),
		E(M(10), ACKED, CORRUPTED, ROU, 1),
		E(M(30), RESOLVED, CORRUPTED, ROU, 1),
		E(M(40), RAISED, CORRUPTED, ROU, 2),
		E(M(45), ACKED, CORRUPTED, ROU, 2),
	} },
	{ "one-sided rise: emergency", NULL, 0, H(5), {
		PAIN(0, 2), PAIN(H(2), 2), PAINF(H(4), 6, F_ONE), ACK(H(4) + M(2), 1),
	}, {
		E(H(4), RAISED, RISE, EME, 1),
		E(H(4), FALLBACK, RISE, EME, 1),
		E(H(4) + M(2), ACKED, RISE, EME, 1),
	} },
	{ "red flag with a severe score: one alert, the red flag", NULL, 0, H(3), {
		PAIN(0, 2), PAINF(H(2), 9, F_CHEST), ACK(H(2) + M(1), 1),
	}, {
		E(H(2), RAISED, RED, EME, 1),
		E(H(2), FALLBACK, RED, EME, 1),
		E(H(2) + M(1), ACKED, RED, EME, 1),
	} },
	{ "acknowledged severe pain settles: resolved by itself", NULL, 0, H(8), {
		PAIN(0, 7), ACK(M(5), 1), PAIN(H(3), 3), PAIN(H(6), 2),
	}, {
		E(0, RAISED, SEVERE, URG, 1),
		E(M(5), ACKED, SEVERE, URG, 1),
		EN(H(6), RESOLVED, SEVERE, URG, 1, 3),
	} },
	{ "pain settles only on reports in a row, spanning the quiet period", cfg_moderate6, 0,
	  H(6), {
		PAIN(0, 7), ACK(M(5), 1), PAIN(H(1), 5), PAIN(H(2), 6), PAIN(H(3), 3),
		PAIN(H(4) + M(30), 3), PAIN(H(5) + M(10), 3),
	}, {
		E(0, RAISED, SEVERE, URG, 1),
		E(M(5), ACKED, SEVERE, URG, 1),
		E(H(5) + M(10), RESOLVED, SEVERE, URG, 1),
	} },
	{ "unacknowledged pain never resolves by itself", cfg_slow_urgent, 0, H(6), {
		PAIN(0, 7), PAIN(H(1), 3), PAIN(H(3) + M(30), 2), ACK(H(3) + M(50), 1),
		PAIN(H(5), 2),
	}, {
		E(0, RAISED, SEVERE, URG, 1),
		E(H(3) + M(50), ACKED, SEVERE, URG, 1),
		E(H(5), RESOLVED, SEVERE, URG, 1),
	} },
	{ "persistent pain unacknowledged: hourly, never moved up", NULL, 0, H(5) + M(30), {
		PAIN(0, 4), PAIN(H(2), 4),
	}, {
		EN(H(2), RAISED, PERSIST, ROU, 1, 1),
		EN(H(3), RENOTIFIED, PERSIST, ROU, 1, 2),
		EN(H(4), RENOTIFIED, PERSIST, ROU, 1, 3),
		EN(H(5), RENOTIFIED, PERSIST, ROU, 1, 4),
	} },
	{ "routine moved up when configured", cfg_routine_moves_up, 0, M(150), {
		PAINF(0, 4, F_MED),
	}, {
		E(0, RAISED, PERSIST, ROU, 1),
		E(M(60), RENOTIFIED, PERSIST, ROU, 1),
		E(M(120), TIER_UP, PERSIST, URG, 1),
		E(M(135), RENOTIFIED, PERSIST, URG, 1),
		E(M(150), TIER_UP, PERSIST, EME, 1),
		E(M(150), FALLBACK, PERSIST, EME, 1),
	} },
	{ "the tier never falls: steps recover, the alert stays urgent", NULL, 0, H(5), {
		CTX(0, 100, 200, 600, 3), PAIN(0, 4), PAIN(H(2), 4), ACK(H(2) + M(5), 1),
		CTX(H(3), 2000, 200, 600, 3), PAIN(H(4), 4),
	}, {
		E(H(2), RAISED, PERSIST, URG, 1),
		E(H(2) + M(5), ACKED, PERSIST, URG, 1),
		E(H(4), UPDATED, PERSIST, URG, 1),
	} },
	{ "a higher tier re-opens an acknowledged alert", NULL, 0, H(5), {
		CTX(0, 2000, 2500, 600, 3), PAIN(0, 4), PAIN(H(2), 4), ACK(H(2) + M(5), 1),
		CTX(H(3), 100, 200, 600, 3), PAIN(H(4), 5), ACK(H(4) + M(20), 1),
	}, {
		E(H(2), RAISED, PERSIST, ROU, 1),
		E(H(2) + M(5), ACKED, PERSIST, ROU, 1),
		E(H(4), UPDATED, PERSIST, URG, 1),
		E(H(4) + M(15), RENOTIFIED, PERSIST, URG, 1),
		E(H(4) + M(20), ACKED, PERSIST, URG, 1),
	} },
	{ "reports synced late: their own times count", NULL, 0, H(5) + M(30), {
		PAIN_AT(H(5), 4, 0), PAIN_AT(H(5), 4, H(3)),
	}, {
		E(H(5), RAISED, PERSIST, ROU, 1),
	} },
	{ "the same report twice: evaluated once", NULL, 0, H(1), {
		PAIN(0, 7), { .at = M(1), .kind = S_PAIN, .a = 7, .ev = 0, .expect = GW_RULES_NOOP },
		ACK(M(2), 1),
	}, {
		EN(0, RAISED, SEVERE, URG, 1, 1),
		EN(M(2), ACKED, SEVERE, URG, 1, 2),
	} },
	{ "wall clock steps back an hour: timers keep their elapsed time", NULL, 0, M(40), {
		PAIN(0, 8), JUMP(M(10), -H(1)),
	}, {
		E(0, RAISED, SEVERE, URG, 1),
		E(M(15), RENOTIFIED, SEVERE, URG, 1),
		E(M(30), TIER_UP, SEVERE, EME, 1),
		E(M(30), FALLBACK, SEVERE, EME, 1),
		E(M(35), RENOTIFIED, SEVERE, EME, 1),
		E(M(40), RENOTIFIED, SEVERE, EME, 1),
	} },
	{ "wall clock steps back an hour, reported: the same", NULL, 0, M(40), {
		PAIN(0, 8), JUMPR(M(10), -H(1)),
	}, {
		E(0, RAISED, SEVERE, URG, 1),
		E(M(15), RENOTIFIED, SEVERE, URG, 1),
		E(M(30), TIER_UP, SEVERE, EME, 1),
		E(M(30), FALLBACK, SEVERE, EME, 1),
		E(M(35), RENOTIFIED, SEVERE, EME, 1),
		E(M(40), RENOTIFIED, SEVERE, EME, 1),
	} },
	{ "wall clock steps forward, reported: timers keep their elapsed time", NULL, 0, M(40), {
		PAIN(0, 8), JUMPR(M(10), H(2)),
	}, {
		E(0, RAISED, SEVERE, URG, 1),
		E(M(15), RENOTIFIED, SEVERE, URG, 1),
		E(M(30), TIER_UP, SEVERE, EME, 1),
		E(M(30), FALLBACK, SEVERE, EME, 1),
		E(M(35), RENOTIFIED, SEVERE, EME, 1),
		E(M(40), RENOTIFIED, SEVERE, EME, 1),
	} },
	{ "wall clock steps forward, unreported: one early notification, no burst", NULL, 0, M(40), {
		PAIN(0, 8), JUMP(M(10), H(2)),
	}, {
		E(0, RAISED, SEVERE, URG, 1),
		E(M(10), RENOTIFIED, SEVERE, URG, 1),
		E(M(10), FALLBACK, SEVERE, URG, 1),
		E(M(25), TIER_UP, SEVERE, EME, 1),
		E(M(30), RENOTIFIED, SEVERE, EME, 1),
		E(M(35), RENOTIFIED, SEVERE, EME, 1),
		E(M(40), RENOTIFIED, SEVERE, EME, 1),
	} },
	{ "fallback result recorded; none after the acknowledgement", NULL, 0, M(95), {
		PAINF(0, 3, F_CALF), FBRES(M(1), 1, 0), ACK(M(3), 1),
		PAINF(H(1), 3, F_BREATH), FBRES(H(1) + M(1), 1, 3),
		ACKR(H(1) + M(30), 1, GW_RULES_NOOP),
	}, {
		E(0, RAISED, RED, EME, 1),
		E(0, FALLBACK, RED, EME, 1),
		E(M(1), FB_RESULT, RED, EME, 1),
		E(M(3), ACKED, RED, EME, 1),
		E(H(1), UPDATED, RED, EME, 1),
		E(H(1) + M(1), FB_RESULT, RED, EME, 1),
	} },
	{ "fallback repeat interval", NULL, SC_FB_SYNC, M(130), {
		PAIN(0, 8), ACK(M(122), 1),
	}, {
		E(0, RAISED, SEVERE, URG, 1),
		E(M(15), RENOTIFIED, SEVERE, URG, 1),
		E(M(30), TIER_UP, SEVERE, EME, 1),
		E(M(30), FALLBACK, SEVERE, EME, 1),
		E(M(30), FB_RESULT, SEVERE, EME, 1),
		E(M(35), RENOTIFIED, SEVERE, EME, 1), E(M(40), RENOTIFIED, SEVERE, EME, 1),
		E(M(45), RENOTIFIED, SEVERE, EME, 1), E(M(50), RENOTIFIED, SEVERE, EME, 1),
		E(M(55), RENOTIFIED, SEVERE, EME, 1), E(M(60), RENOTIFIED, SEVERE, EME, 1),
		E(M(65), RENOTIFIED, SEVERE, EME, 1), E(M(70), RENOTIFIED, SEVERE, EME, 1),
		E(M(75), RENOTIFIED, SEVERE, EME, 1), E(M(80), RENOTIFIED, SEVERE, EME, 1),
		E(M(85), RENOTIFIED, SEVERE, EME, 1), E(M(90), RENOTIFIED, SEVERE, EME, 1),
		E(M(90), FALLBACK, SEVERE, EME, 1), E(M(90), FB_RESULT, SEVERE, EME, 1),
		E(M(95), RENOTIFIED, SEVERE, EME, 1), E(M(100), RENOTIFIED, SEVERE, EME, 1),
		E(M(105), RENOTIFIED, SEVERE, EME, 1), E(M(110), RENOTIFIED, SEVERE, EME, 1),
		E(M(115), RENOTIFIED, SEVERE, EME, 1), E(M(120), RENOTIFIED, SEVERE, EME, 1),
		E(M(122), ACKED, SEVERE, EME, 1),
	} },
	{ "two rules for one patient: persistent then severe, two alerts", NULL, 0, H(3) + M(30), {
		PAIN(0, 4), PAIN(H(2), 4), ACK(H(2) + M(1), 1), PAIN(H(3), 7), ACK(H(3) + M(2), 2),
	}, {
		E(H(2), RAISED, PERSIST, ROU, 1),
		E(H(2) + M(1), ACKED, PERSIST, ROU, 1),
		E(H(3), RAISED, SEVERE, URG, 2),
		E(H(3) + M(2), ACKED, SEVERE, URG, 2),
	} },
};

/* ---- the fixture ---- */

struct rec {
	int64_t at;			/* us from T0, scenario time */
	enum gw_rules_event_kind kind;
	char rule[GW_RULES_NAME_MAX];
	enum gw_rules_tier tier;
	enum gw_rules_state state;
	int alert;
	uint32_t notification;
	bool publish;
	char detail[512];
};

struct pending {
	char id[GW_RULES_ID_MAX];
	uint32_t n;
};

struct fed_pain {
	int64_t ev;
	int score;
	unsigned int flags;
};

struct fx {
	struct gw_rules_config cfg;
	GwRules *r;
	GArray *events;			/* struct rec */
	GArray *pending;		/* struct pending */
	GArray *pains;			/* struct fed_pain: the "store" */
	GHashTable *last_n;		/* alert id -> last published notification */
	int next_id;
	int64_t now;			/* us from T0, scenario time */
	int64_t offset;			/* engine time - scenario time, us */
	unsigned int flags;
	bool broker_up, clock_synced, wearable, have_ctx;
	struct gw_rules_context ctx;
};

static int64_t eng(const struct fx *f, int64_t scen_us)
{
	return SEC(T0) + scen_us + f->offset;
}

static int alert_number(const char *id)
{
	int n = -1;

	if (sscanf(id, "al-%d", &n) != 1)
		return -1;
	return n;
}

static void new_id(char *buf, size_t size, void *user_data)
{
	struct fx *f = user_data;

	g_snprintf(buf, size, "al-%d", ++f->next_id);
}

/* what the payload builder and the audit need from every event */
static void check_event(struct fx *f, const struct gw_rules_event *ev)
{
	const struct gw_rules_alert *a = ev->alert;
	gpointer last;

	assert_true(a->notification >= 1);
	assert_true(a->n_trigger >= 1 && a->n_trigger <= GW_RULES_MAX_TRIGGERS);
	for (unsigned int i = 0; i < a->n_trigger; i++) {
		const char *name = a->trigger[i].name;
		double v = a->trigger[i].value;
		gchar *needle;

		assert_true(strlen(name) >= 1);
		for (const char *c = name; *c; c++)
			assert_true(g_ascii_islower(*c) || g_ascii_isdigit(*c) || *c == '_');
		assert_true(v == 0 || (v >= 1e-4 && v <= 1e15) || (v <= -1e-4 && v >= -1e15));
		for (unsigned int j = 0; j < i; j++)
			assert_string_not_equal(a->trigger[j].name, name);
		/* the audit detail is safe for logs: no trigger values */
		needle = g_strdup_printf(" %s=", name);
		if (!f->cfg.audit_health_values)
			assert_null(strstr(ev->detail, needle));
		g_free(needle);
	}
	if (a->state == GW_RULES_ACKNOWLEDGED)
		assert_true(a->has_ack);
	if (a->state == GW_RULES_OPEN)
		assert_false(a->has_ack);
	assert_true(a->context.n_pain_24h <= GW_RULES_MAX_PAIN_POINTS);
	for (unsigned int i = 1; i < a->context.n_pain_24h; i++)
		assert_true(a->context.pain_24h[i - 1].time_us <= a->context.pain_24h[i].time_us);
	assert_non_null(strstr(ev->detail, a->rule));
	if (a->has_note && a->ack_note[0])
		assert_null(strstr(ev->detail, a->ack_note));
	last = g_hash_table_lookup(f->last_n, a->alert_id);
	if (ev->publish) {
		assert_int_equal(a->notification, GPOINTER_TO_UINT(last) + 1);
		g_hash_table_insert(f->last_n, g_strdup(a->alert_id),
				    GUINT_TO_POINTER(a->notification));
	} else {
		assert_int_equal(a->notification, GPOINTER_TO_UINT(last));
	}
	switch (ev->kind) {
	case GW_RULES_EV_RAISED:
		assert_int_equal(a->notification, 1);
		assert_int_equal(a->state, GW_RULES_OPEN);
		/* fallthrough */
	case GW_RULES_EV_UPDATED:
	case GW_RULES_EV_RENOTIFIED:
	case GW_RULES_EV_TIER_UP:
	case GW_RULES_EV_ACKNOWLEDGED:
	case GW_RULES_EV_RESOLVED:
		assert_true(ev->publish);
		break;
	case GW_RULES_EV_FALLBACK_STARTED:
	case GW_RULES_EV_FALLBACK_RESULT:
	case GW_RULES_EV_DELIVERED:
		assert_false(ev->publish);
		break;
	}
	if (ev->kind == GW_RULES_EV_FALLBACK_STARTED)
		assert_true(a->tier >= GW_RULES_URGENT && a->state == GW_RULES_OPEN);
}

static void on_event(const struct gw_rules_event *ev, void *user_data)
{
	struct fx *f = user_data;
	struct rec rc = { 0 };

	check_event(f, ev);
	rc.at = ev->at_us - SEC(T0) - f->offset;
	rc.kind = ev->kind;
	g_strlcpy(rc.rule, ev->alert->rule, sizeof(rc.rule));
	rc.tier = ev->alert->tier;
	rc.state = ev->alert->state;
	rc.alert = alert_number(ev->alert->alert_id);
	rc.notification = ev->alert->notification;
	rc.publish = ev->publish;
	g_strlcpy(rc.detail, ev->detail, sizeof(rc.detail));
	g_array_append_val(f->events, rc);

	if (ev->publish && !(f->flags & SC_NO_PUBACK)) {
		if (f->broker_up) {
			assert_int_equal(gw_rules_delivered(f->r, ev->alert->alert_id,
							    ev->alert->notification, ev->at_us),
					 GW_RULES_OK);
		} else {
			struct pending p;

			g_strlcpy(p.id, ev->alert->alert_id, sizeof(p.id));
			p.n = ev->alert->notification;
			g_array_append_val(f->pending, p);
		}
	}
	if (ev->kind == GW_RULES_EV_FALLBACK_STARTED && (f->flags & SC_FB_SYNC))
		assert_int_equal(gw_rules_fallback_result(f->r, ev->alert->alert_id, 0, ev->at_us),
				 GW_RULES_OK);
}

static const struct gw_rules_ops fx_ops = {
	.new_id = new_id,
	.event = on_event,
};

static void fx_init(struct fx *f, const struct gw_rules_config *cfg, unsigned int flags)
{
	g_autoptr(GError) err = NULL;

	memset(f, 0, sizeof(*f));
	if (cfg)
		f->cfg = *cfg;
	else
		gw_rules_config_init(&f->cfg);
	f->flags = flags;
	f->events = g_array_new(FALSE, FALSE, sizeof(struct rec));
	f->pending = g_array_new(FALSE, FALSE, sizeof(struct pending));
	f->pains = g_array_new(FALSE, FALSE, sizeof(struct fed_pain));
	f->last_n = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	f->broker_up = true;
	f->clock_synced = true;
	gw_rules_context_init(&f->ctx);
	f->r = gw_rules_new(&f->cfg, &fx_ops, f, &err);
	assert_non_null(f->r);
	assert_null(err);
}

static void fx_fini(struct fx *f)
{
	gw_rules_free(f->r);
	g_array_unref(f->events);
	g_array_unref(f->pending);
	g_array_unref(f->pains);
	g_hash_table_unref(f->last_n);
}

/* Fires every deadline up to scenario time `to` (us), as the daemon's timer
 * would; a deadline in the past fires now. */
static void fx_advance(struct fx *f, int64_t to)
{
	for (unsigned int guard = 0;; guard++) {
		int64_t d = gw_rules_next_deadline(f->r), at;

		assert_true(guard < 100000);
		if (d == GW_RULES_NO_DEADLINE)
			break;
		at = d - SEC(T0) - f->offset;
		if (at > to)
			break;
		if (at < f->now)
			at = f->now;
		f->now = at;
		gw_rules_tick(f->r, eng(f, f->now));
		/* no busy loop: what was due is done */
		assert_true(gw_rules_next_deadline(f->r) > eng(f, f->now));
	}
	if (to > f->now)
		f->now = to;
}

/* The daemon stops (the alerts are in its store), and starts again
 * down_us later: a new engine, the pain history reloaded, the alerts
 * restored, the inputs it learns at start-up fed again. */
static void fx_restart(struct fx *f, int64_t down_us)
{
	g_autoptr(GPtrArray) saved = g_ptr_array_new_with_free_func((GDestroyNotify) g_variant_unref);
	g_autoptr(GError) err = NULL;

	for (guint i = 0; i < gw_rules_n_alerts(f->r); i++) {
		GVariant *v = gw_rules_alert_serialize(gw_rules_alert_nth(f->r, i));
		GBytes *bytes = g_variant_get_data_as_bytes(v);

		/* through bytes, as the store would keep it */
		g_ptr_array_add(saved, g_variant_ref_sink(
					g_variant_new_from_bytes(G_VARIANT_TYPE_VARDICT, bytes, FALSE)));
		g_bytes_unref(bytes);
		g_variant_unref(v);
	}
	gw_rules_free(f->r);
	f->now += down_us;
	f->r = gw_rules_new(&f->cfg, &fx_ops, f, &err);
	assert_non_null(f->r);
	for (guint i = 0; i < f->pains->len; i++) {
		const struct fed_pain *p = &g_array_index(f->pains, struct fed_pain, i);

		assert_int_equal(gw_rules_pain_load(f->r, PATIENT, p->ev, p->score, p->flags),
				 GW_RULES_OK);
	}
	if (f->have_ctx)
		assert_int_equal(gw_rules_context_set(f->r, PATIENT, &f->ctx), GW_RULES_OK);
	for (guint i = 0; i < saved->len; i++) {
		struct gw_rules_alert a;

		assert_true(gw_rules_alert_deserialize(g_ptr_array_index(saved, i), &a, &err));
		assert_true(gw_rules_restore(f->r, &a, eng(f, f->now), &err));
	}
	assert_int_equal(gw_rules_n_alerts(f->r), saved->len);
	if (f->wearable)
		assert_int_equal(gw_rules_wearable_add(f->r, WEARABLE, PATIENT, eng(f, f->now)),
				 GW_RULES_OK);
	if (!f->broker_up)
		gw_rules_broker(f->r, false, eng(f, f->now));
	if (!f->clock_synced)
		gw_rules_clock(f->r, false, eng(f, f->now));
	gw_rules_tick(f->r, eng(f, f->now));
}

static void alert_name(char *buf, size_t size, int n)
{
	g_snprintf(buf, size, "al-%d", n);
}

static void fx_step(struct fx *f, const struct step *s)
{
	char id[32];
	int64_t now;

	fx_advance(f, SEC(s->at));
	now = eng(f, f->now);
	alert_name(id, sizeof(id), s->a);
	switch (s->kind) {
	case S_NONE:
		break;
	case S_PAIN: {
		struct fed_pain p = { eng(f, SEC(s->ev)), s->a, (unsigned int) s->b };

		assert_int_equal(gw_rules_pain(f->r, PATIENT, WEARABLE, p.ev, p.score, p.flags, now),
				 s->expect);
		if (s->expect == GW_RULES_OK)
			g_array_append_val(f->pains, p);
		break;
	}
	case S_CTX:
		f->ctx.steps_today = s->a;
		f->ctx.steps_yesterday = s->b;
		f->ctx.flexed_s_2h = s->c;
		f->ctx.post_op_day = (int) s->d;
		f->have_ctx = true;
		assert_int_equal(gw_rules_context_set(f->r, PATIENT, &f->ctx), GW_RULES_OK);
		break;
	case S_ACK:
		assert_int_equal(gw_rules_ack(f->r, id, GW_RULES_ACK_ACKNOWLEDGE, "clin-17",
					      now - SEC(5), NULL, now), s->expect);
		break;
	case S_RESOLVE:
		assert_int_equal(gw_rules_ack(f->r, id, GW_RULES_ACK_RESOLVE, "clin-17",
					      now - SEC(5), "Called the patient.", now), s->expect);
		break;
	case S_BROKER:
		f->broker_up = s->a != 0;
		gw_rules_broker(f->r, f->broker_up, now);
		if (f->broker_up) {
			/* the outbox drains: PUBACKs for what waited */
			for (guint i = 0; i < f->pending->len; i++) {
				const struct pending *p = &g_array_index(f->pending, struct pending, i);
				enum gw_rules_result res = gw_rules_delivered(f->r, p->id, p->n, now);

				assert_true(res == GW_RULES_OK || res == GW_RULES_NOOP);
			}
			g_array_set_size(f->pending, 0);
		}
		break;
	case S_CLOCK:
		f->clock_synced = s->a != 0;
		gw_rules_clock(f->r, f->clock_synced, now);
		break;
	case S_BATTERY:
		assert_int_equal(gw_rules_wearable_battery(f->r, WEARABLE, s->a, now), GW_RULES_OK);
		break;
	case S_DATA:
		assert_int_equal(gw_rules_wearable_data(f->r, WEARABLE, now - SEC(2), now),
				 GW_RULES_OK);
		break;
	case S_STORE:
		gw_rules_store_usage(f->r, s->a, now);
		break;
	case S_CORRUPT:
		gw_rules_store_corrupt(f->r, now);
		break;
	case S_DELIVER:
		assert_int_equal(gw_rules_delivered(f->r, id, (uint32_t) s->b, now), s->expect);
		break;
	case S_FB_RESULT:
		assert_int_equal(gw_rules_fallback_result(f->r, id, s->b, now), s->expect);
		break;
	case S_RESTART:
		fx_restart(f, SEC(s->c));
		break;
	case S_JUMP:
		/* the daemon calls the engine often (every record): the last
		 * call before the step, then the first after it */
		gw_rules_tick(f->r, now);
		f->offset += SEC(s->c);
		gw_rules_tick(f->r, eng(f, f->now));
		break;
	case S_JUMP_REPORTED:
		f->offset += SEC(s->c);
		gw_rules_clock_step(f->r, SEC(s->c), eng(f, f->now));
		break;
	case S_WEARABLE_REMOVE:
		f->wearable = false;
		assert_int_equal(gw_rules_wearable_remove(f->r, WEARABLE, now), GW_RULES_OK);
		break;
	}
}

static void dump(const struct scenario *sc, const struct fx *f)
{
	print_error("scenario: %s\n  expected:\n", sc->name);
	for (const struct expect *e = sc->exp; e->rule; e++)
		print_error("    %4" G_GINT64_FORMAT " min %-16s %-28s %-13s al-%d n%u\n",
			    e->at / 60, gw_rules_event_kind_name(e->kind), e->rule,
			    gw_rules_tier_name(e->tier), e->alert, e->notification);
	print_error("  got:\n");
	for (guint i = 0; i < f->events->len; i++) {
		const struct rec *r = &g_array_index(f->events, struct rec, i);

		print_error("    %4" G_GINT64_FORMAT " min %-16s %-28s %-13s al-%d n%u (%" G_GINT64_FORMAT
			    " s) %s\n", r->at / SEC(60), gw_rules_event_kind_name(r->kind), r->rule,
			    gw_rules_tier_name(r->tier), r->alert, r->notification,
			    r->at / G_USEC_PER_SEC, r->detail);
	}
}

static void test_scenario(void **state)
{
	const struct scenario *sc = *state;
	struct gw_rules_config cfg;
	struct fx f;
	guint n_exp = 0, j = 0;
	bool ok = true;

	gw_rules_config_init(&cfg);
	if (sc->config)
		sc->config(&cfg);
	fx_init(&f, &cfg, sc->flags);
	if (sc->flags & SC_WEARABLE) {
		f.wearable = true;
		assert_int_equal(gw_rules_wearable_add(f.r, WEARABLE, PATIENT, eng(&f, 0)), GW_RULES_OK);
		assert_int_equal(gw_rules_wearable_data(f.r, WEARABLE, eng(&f, 0), eng(&f, 0)),
				 GW_RULES_OK);
	}
	for (const struct step *s = sc->steps; s < sc->steps + ARRAY_SIZE(sc->steps) &&
	     s->kind != S_NONE; s++) {
		assert_true(SEC(s->at) >= f.now);	/* the table is in time order */
		fx_step(&f, s);
	}
	assert_true(SEC(sc->end) >= f.now);
	fx_advance(&f, SEC(sc->end));

	for (const struct expect *e = sc->exp; e->rule; e++)
		n_exp++;
	for (guint i = 0; i < f.events->len; i++) {
		const struct rec *r = &g_array_index(f.events, struct rec, i);
		const struct expect *e;

		if (r->kind == GW_RULES_EV_DELIVERED && !(sc->flags & SC_CHECK_DELIVERED))
			continue;
		if (j >= n_exp) {
			ok = false;
			break;
		}
		e = &sc->exp[j++];
		if (r->at != SEC(e->at) || r->kind != e->kind || strcmp(r->rule, e->rule) != 0 ||
		    r->tier != e->tier || r->alert != e->alert ||
		    (e->notification && r->notification != e->notification)) {
			ok = false;
			break;
		}
	}
	if (j != n_exp)
		ok = false;
	if (!ok)
		dump(sc, &f);
	assert_true(ok);
	fx_fini(&f);
}

/* ---- unit tests ---- */

static void test_config_defaults(void **state)
{
	struct gw_rules_config c;
	g_autoptr(GError) err = NULL;
	size_t n;
	const struct gw_rules_key *keys = gw_rules_config_keys(&n);

	(void) state;
	gw_rules_config_init(&c);
	assert_true(gw_rules_config_validate(&c, &err));
	assert_int_equal(c.severe_pain_score, 7);
	assert_int_equal(c.moderate_pain_score, 4);
	assert_int_equal(c.persistent_gap_min, 120);
	assert_int_equal(c.rise_over_median, 3);
	assert_int_equal(c.renotify_urgent_min, 15);
	assert_int_equal(c.renotify_emergency_min, 5);
	assert_int_equal(c.renotify_routine_min, 60);
	assert_int_equal(c.tier_up_after_urgent, 2);
	assert_int_equal(c.no_data_min, 30);
	assert_int_equal(c.battery_low_pct, 15);
	assert_int_equal(c.store_full_pct, 90);
	assert_int_equal(c.clock_unsynced_min, 60);
	assert_int_equal(c.broker_down_min, 15);
	assert_int_equal(c.tech_hysteresis_min, 10);
	assert_int_equal(c.red_flag_tier, GW_RULES_EMERGENCY);
	assert_true(n >= 50);
	/* every key round-trips through text, and its default is in range */
	for (size_t i = 0; i < n; i++) {
		struct gw_rules_config d;
		gchar *v = gw_rules_config_get(&c, keys[i].name);

		assert_non_null(v);
		assert_true(g_str_has_prefix(keys[i].name, "rules."));
		assert_non_null(keys[i].help);
		gw_rules_config_init(&d);
		assert_true(gw_rules_config_set(&d, keys[i].name, v, NULL));
		assert_memory_equal(&c, &d, sizeof(c));
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(keys[i].name, keys[j].name);
		g_free(v);
	}
}

static void expect_config_error(const struct gw_rules_config *c, const char *key)
{
	g_autoptr(GError) err = NULL;
	GwRules *r;

	assert_false(gw_rules_config_validate(c, &err));
	assert_non_null(err);
	assert_true(g_error_matches(err, GW_RULES_ERROR, GW_RULES_ERROR_CONFIG));
	if (!g_str_has_prefix(err->message, key))
		print_error("message \"%s\" does not start with %s\n", err->message, key);
	assert_true(g_str_has_prefix(err->message, key));
	g_clear_error(&err);
	r = gw_rules_new(c, NULL, NULL, &err);
	assert_null(r);
	assert_true(g_str_has_prefix(err->message, key));
}

static void test_config_validation(void **state)
{
	struct gw_rules_config c;
	g_autoptr(GError) err = NULL;
	gchar *v;

	(void) state;
	gw_rules_config_init(&c);
	c.severe_pain_score = 11;
	expect_config_error(&c, "rules.severe_pain_score:");
	gw_rules_config_init(&c);
	c.renotify_urgent_min = 0;
	expect_config_error(&c, "rules.renotify_urgent_min:");
	gw_rules_config_init(&c);
	c.renotify_emergency_min = 61;
	expect_config_error(&c, "rules.renotify_emergency_min:");
	gw_rules_config_init(&c);
	c.no_data_tier = (enum gw_rules_tier) 7;
	expect_config_error(&c, "rules.no_data_tier:");
	gw_rules_config_init(&c);
	c.red_flag_mask = 0;
	expect_config_error(&c, "rules.red_flag_mask:");
	gw_rules_config_init(&c);
	c.moderate_pain_score = 7;
	expect_config_error(&c, "rules.moderate_pain_score:");
	gw_rules_config_init(&c);
	c.persistent_gap_min = 24 * 60;
	expect_config_error(&c, "rules.persistent_gap_min:");
	gw_rules_config_init(&c);
	c.pain_clear_margin = 5;
	expect_config_error(&c, "rules.pain_clear_margin:");
	gw_rules_config_init(&c);
	c.min_notify_interval_min = -1;
	expect_config_error(&c, "rules.min_notify_interval_min:");

	/* by name, from text */
	gw_rules_config_init(&c);
	assert_false(gw_rules_config_set(&c, "rules.severe_pain_score", "7.5", &err));
	assert_string_equal(err->message, "rules.severe_pain_score: 7.5 is not an integer in 1..10");
	g_clear_error(&err);
	assert_false(gw_rules_config_set(&c, "rules.severe_pain_score", "11", &err));
	assert_string_equal(err->message, "rules.severe_pain_score: 11 is not an integer in 1..10");
	g_clear_error(&err);
	assert_false(gw_rules_config_set(&c, "rules.bogus", "1", &err));
	assert_string_equal(err->message, "rules.bogus: unknown setting");
	g_clear_error(&err);
	assert_false(gw_rules_config_set(&c, "rules.severe_tier", "high", &err));
	assert_true(g_str_has_prefix(err->message, "rules.severe_tier: high is not one of"));
	g_clear_error(&err);
	assert_false(gw_rules_config_set(&c, "rules.fallback_enabled", "yes", &err));
	assert_string_equal(err->message, "rules.fallback_enabled: yes is not true or false");
	g_clear_error(&err);
	assert_false(gw_rules_config_set(&c, "rules.no_data_min", " 30", &err));
	g_clear_error(&err);
	assert_true(gw_rules_config_set(&c, "rules.severe_pain_score", "8", &err));
	assert_true(gw_rules_config_set(&c, "rules.severe_tier", "emergency", &err));
	assert_true(gw_rules_config_set(&c, "rules.fallback_enabled", "false", &err));
	assert_int_equal(c.severe_pain_score, 8);
	assert_int_equal(c.severe_tier, GW_RULES_EMERGENCY);
	assert_false(c.fallback_enabled);
	v = gw_rules_config_get(&c, "rules.severe_tier");
	assert_string_equal(v, "emergency");
	g_free(v);
	assert_null(gw_rules_config_get(&c, "rules.bogus"));
}

static void test_set_config_at_runtime(void **state)
{
	struct fx f;
	struct gw_rules_config c;
	g_autoptr(GError) err = NULL;

	(void) state;
	fx_init(&f, NULL, 0);
	c = f.cfg;
	c.severe_pain_score = 0;
	assert_false(gw_rules_set_config(f.r, &c, &err));
	assert_int_equal(gw_rules_get_config(f.r)->severe_pain_score, 7);
	/* a running timer is measured with the new duration */
	assert_int_equal(gw_rules_pain(f.r, PATIENT, WEARABLE, eng(&f, 0), 8, 0, eng(&f, 0)),
			 GW_RULES_OK);
	assert_int_equal(gw_rules_next_deadline(f.r), eng(&f, SEC(M(15))));
	c = f.cfg;
	c.renotify_urgent_min = 20;
	assert_true(gw_rules_set_config(f.r, &c, NULL));
	assert_int_equal(gw_rules_next_deadline(f.r), eng(&f, SEC(M(20))));
	fx_fini(&f);
}

static void test_deadlines(void **state)
{
	struct fx f;
	const struct gw_rules_alert *a;

	(void) state;
	fx_init(&f, NULL, SC_NO_PUBACK);
	assert_int_equal(gw_rules_next_deadline(f.r), GW_RULES_NO_DEADLINE);
	gw_rules_tick(f.r, eng(&f, 0));
	assert_int_equal(f.events->len, 0);

	/* a wearable is watched from its add */
	assert_int_equal(gw_rules_wearable_add(f.r, WEARABLE, PATIENT, eng(&f, 0)), GW_RULES_OK);
	assert_int_equal(gw_rules_wearable_add(f.r, WEARABLE, PATIENT, eng(&f, 0)), GW_RULES_NOOP);
	assert_int_equal(gw_rules_next_deadline(f.r), eng(&f, SEC(M(30))));
	assert_int_equal(gw_rules_wearable_data(f.r, WEARABLE, eng(&f, 0), eng(&f, SEC(M(10)))),
			 GW_RULES_OK);
	assert_int_equal(gw_rules_next_deadline(f.r), eng(&f, SEC(M(40))));

	/* urgent: the delivery timeout first, then the re-notification */
	assert_int_equal(gw_rules_pain(f.r, PATIENT, WEARABLE, eng(&f, SEC(M(10))), 8, 0,
				       eng(&f, SEC(M(10)))), GW_RULES_OK);
	assert_int_equal(gw_rules_next_deadline(f.r), eng(&f, SEC(M(11))));
	a = gw_rules_find_open(f.r, GW_RULE_PAIN_SEVERE, PATIENT);
	assert_non_null(a);
	assert_int_equal(gw_rules_delivered(f.r, a->alert_id, 1, eng(&f, SEC(M(10)) + 1)),
			 GW_RULES_OK);
	assert_int_equal(gw_rules_delivered(f.r, a->alert_id, 1, eng(&f, SEC(M(10)) + 2)),
			 GW_RULES_NOOP);
	assert_int_equal(gw_rules_delivered(f.r, a->alert_id, 2, eng(&f, SEC(M(10)) + 2)),
			 GW_RULES_INVALID);
	assert_int_equal(gw_rules_delivered(f.r, "al-77", 1, eng(&f, SEC(M(10)) + 2)),
			 GW_RULES_UNKNOWN_ALERT);
	assert_int_equal(gw_rules_next_deadline(f.r), eng(&f, SEC(M(25))));
	/* a tick before it does nothing */
	g_array_set_size(f.events, 0);
	gw_rules_tick(f.r, eng(&f, SEC(M(24))));
	assert_int_equal(f.events->len, 0);
	/* acknowledged: only the wearable's timer is left */
	assert_int_equal(gw_rules_ack(f.r, "al-1", GW_RULES_ACK_ACKNOWLEDGE, "clin-1",
				      eng(&f, SEC(M(24))), NULL, eng(&f, SEC(M(24)))), GW_RULES_OK);
	assert_int_equal(gw_rules_next_deadline(f.r), eng(&f, SEC(M(40))));
	/* the broker goes: its alarm in 15 min, sooner than the wearable's */
	gw_rules_broker(f.r, false, eng(&f, SEC(M(24))));
	assert_int_equal(gw_rules_next_deadline(f.r), eng(&f, SEC(M(39))));
	gw_rules_broker(f.r, true, eng(&f, SEC(M(25))));
	assert_int_equal(gw_rules_next_deadline(f.r), eng(&f, SEC(M(40))));
	assert_int_equal(gw_rules_wearable_remove(f.r, WEARABLE, eng(&f, SEC(M(26)))), GW_RULES_OK);
	assert_int_equal(gw_rules_next_deadline(f.r), GW_RULES_NO_DEADLINE);
	fx_fini(&f);
}

static void test_triggers_and_context(void **state)
{
	struct gw_rules_config cfg;
	struct fx f;
	struct gw_rules_context ctx;
	const struct gw_rules_alert *a;
	double v;

	(void) state;
	gw_rules_config_init(&cfg);
	cfg.no_data_min = 10080;
	fx_init(&f, &cfg, 0);
	assert_int_equal(gw_rules_wearable_add(f.r, WEARABLE, PATIENT, eng(&f, 0)), GW_RULES_OK);
	assert_int_equal(gw_rules_wearable_add(f.r, "w2", PATIENT, eng(&f, 0)), GW_RULES_OK);
	assert_int_equal(gw_rules_wearable_battery(f.r, WEARABLE, 80, eng(&f, 0)), GW_RULES_OK);
	assert_int_equal(gw_rules_wearable_battery(f.r, "w2", 60, eng(&f, 0)), GW_RULES_OK);
	gw_rules_context_init(&ctx);
	ctx.steps_today = 1240;
	ctx.steps_yesterday = 2980;
	ctx.flexed_s_2h = 2400;
	ctx.post_op_day = 4;
	assert_int_equal(gw_rules_context_set(f.r, PATIENT, &ctx), GW_RULES_OK);
	/* one report 25 h before the alert, four in the last 24 h */
	assert_int_equal(gw_rules_pain(f.r, PATIENT, WEARABLE, eng(&f, 0), 3, 0, eng(&f, 0)),
			 GW_RULES_OK);
	for (int i = 0; i < 4; i++)
		assert_int_equal(gw_rules_pain(f.r, PATIENT, WEARABLE, eng(&f, SEC(H(3 + 4 * i))), 2,
					       0, eng(&f, SEC(H(3 + 4 * i)))), GW_RULES_OK);
	assert_int_equal(gw_rules_wearable_data(f.r, WEARABLE, eng(&f, SEC(H(25) - 4)),
						eng(&f, SEC(H(25)))), GW_RULES_OK);
	assert_int_equal(gw_rules_pain(f.r, PATIENT, WEARABLE, eng(&f, SEC(H(25))), 6, 0,
				       eng(&f, SEC(H(25)))), GW_RULES_OK);
	a = gw_rules_find_open(f.r, GW_RULE_PAIN_RISE, PATIENT);
	assert_non_null(a);
	assert_string_equal(a->alert_id, "al-1");
	assert_string_equal(a->patient, PATIENT);
	assert_string_equal(a->wearable, WEARABLE);
	assert_int_equal(a->tier, GW_RULES_URGENT);
	assert_int_equal(a->raised_at_us, eng(&f, SEC(H(25))));
	assert_true(gw_rules_alert_trigger(a, "score", &v) && v == 6);
	assert_true(gw_rules_alert_trigger(a, "median_24h", &v) && v == 2);
	assert_true(gw_rules_alert_trigger(a, "rise", &v) && v == 4);
	assert_true(gw_rules_alert_trigger(a, "threshold", &v) && v == 5);
	assert_false(gw_rules_alert_trigger(a, "low_steps", NULL));
	assert_int_equal(a->context.n_pain_24h, 5);	/* 2, 2, 2, 2 and the 6 itself */
	assert_int_equal(a->context.pain_24h[0].time_us, eng(&f, SEC(H(3))));
	assert_int_equal(a->context.pain_24h[4].score, 6);
	assert_int_equal(a->context.steps_today, 1240);
	assert_int_equal(a->context.steps_yesterday, 2980);
	assert_int_equal(a->context.flexed_s_2h, 2400);
	assert_int_equal(a->context.battery_pct, 60);		/* the lower one */
	assert_int_equal(a->context.data_age_s, 4);
	/* the audit detail has the rule and tier, not the score */
	{
		const struct rec *r = &g_array_index(f.events, struct rec, 0);

		assert_int_equal(r->kind, GW_RULES_EV_RAISED);
		assert_non_null(strstr(r->detail, "rule=pain.rise"));
		assert_non_null(strstr(r->detail, "tier=urgent"));
		assert_null(strstr(r->detail, "score"));
		assert_null(strstr(r->detail, "=6"));
	}

	/* an even number of reports: the median is the mean of the middle two */
	assert_int_equal(gw_rules_pain(f.r, "pt2", NULL, eng(&f, SEC(H(30))), 2, 0,
				       eng(&f, SEC(H(30)))), GW_RULES_OK);
	assert_int_equal(gw_rules_pain(f.r, "pt2", NULL, eng(&f, SEC(H(31))), 3, 0,
				       eng(&f, SEC(H(31)))), GW_RULES_OK);
	assert_int_equal(gw_rules_pain(f.r, "pt2", NULL, eng(&f, SEC(H(32))), 6, 0,
				       eng(&f, SEC(H(32)))), GW_RULES_OK);
	a = gw_rules_find_open(f.r, GW_RULE_PAIN_RISE, "pt2");
	assert_non_null(a);
	assert_true(gw_rules_alert_trigger(a, "median_24h", &v) && v == 2.5);
	assert_true(gw_rules_alert_trigger(a, "rise", &v) && v == 3.5);
	assert_true(gw_rules_alert_trigger(a, "threshold", &v) && v == 6);
	assert_int_equal(a->context.battery_pct, GW_RULES_NONE);
	fx_fini(&f);

	/* with audit_health_values the values go in */
	{
		struct gw_rules_config c;

		gw_rules_config_init(&c);
		c.audit_health_values = true;
		fx_init(&f, &c, 0);
		assert_int_equal(gw_rules_pain(f.r, PATIENT, NULL, eng(&f, 0), 8, 0, eng(&f, 0)),
				 GW_RULES_OK);
		assert_non_null(strstr(g_array_index(f.events, struct rec, 0).detail, " score=8"));
		fx_fini(&f);
	}

	/* low steps and long flexion show in the trigger */
	fx_init(&f, NULL, 0);
	gw_rules_context_init(&ctx);
	ctx.steps_today = 120;
	ctx.steps_yesterday = 300;
	ctx.flexed_s_2h = 6000;
	ctx.post_op_day = 15;
	assert_int_equal(gw_rules_context_set(f.r, PATIENT, &ctx), GW_RULES_OK);
	assert_int_equal(gw_rules_pain(f.r, PATIENT, NULL, eng(&f, 0), 4, F_MED, eng(&f, 0)),
			 GW_RULES_OK);
	a = gw_rules_find_open(f.r, GW_RULE_PAIN_PERSISTENT, PATIENT);
	assert_non_null(a);
	assert_int_equal(a->tier, GW_RULES_URGENT);	/* one tier, not two */
	assert_true(gw_rules_alert_trigger(a, "low_steps", &v) && v == 1);
	assert_true(gw_rules_alert_trigger(a, "steps_today", &v) && v == 120);
	assert_true(gw_rules_alert_trigger(a, "long_flexed", &v) && v == 1);
	assert_true(gw_rules_alert_trigger(a, "medication", &v) && v == 1);
	assert_true(gw_rules_alert_trigger(a, "post_op_day", &v) && v == 15);
	assert_int_equal(a->context.battery_pct, GW_RULES_NONE);
	assert_int_equal(a->context.data_age_s, GW_RULES_NONE);
	fx_fini(&f);
}

static void test_inputs_refused(void **state)
{
	struct fx f;
	struct gw_rules_context ctx;
	char note[GW_RULES_NOTE_MAX + 8];
	GString *long_note = g_string_new(NULL);

	(void) state;
	fx_init(&f, NULL, SC_NO_PUBACK);
	assert_int_equal(gw_rules_pain(f.r, PATIENT, NULL, eng(&f, 0), 11, 0, eng(&f, 0)),
			 GW_RULES_INVALID);
	assert_int_equal(gw_rules_pain(f.r, PATIENT, NULL, eng(&f, 0), -1, 0, eng(&f, 0)),
			 GW_RULES_INVALID);
	assert_int_equal(gw_rules_pain(f.r, PATIENT, NULL, eng(&f, 0), 3, 0x80, eng(&f, 0)),
			 GW_RULES_INVALID);
	assert_int_equal(gw_rules_pain(f.r, "pt/1", NULL, eng(&f, 0), 3, 0, eng(&f, 0)),
			 GW_RULES_INVALID);
	assert_int_equal(gw_rules_pain(f.r, NULL, NULL, eng(&f, 0), 3, 0, eng(&f, 0)),
			 GW_RULES_INVALID);
	assert_int_equal(gw_rules_pain(f.r, PATIENT, "w 1", eng(&f, 0), 3, 0, eng(&f, 0)),
			 GW_RULES_INVALID);
	assert_int_equal(gw_rules_pain_load(f.r, PATIENT, eng(&f, 0), 12, 0), GW_RULES_INVALID);
	assert_int_equal(gw_rules_wearable_battery(f.r, "nope", 50, eng(&f, 0)), GW_RULES_INVALID);
	assert_int_equal(gw_rules_wearable_data(f.r, "nope", 0, eng(&f, 0)), GW_RULES_INVALID);
	assert_int_equal(gw_rules_wearable_add(f.r, "", PATIENT, eng(&f, 0)), GW_RULES_INVALID);
	gw_rules_context_init(&ctx);
	ctx.flexed_s_2h = 7201;
	assert_int_equal(gw_rules_context_set(f.r, PATIENT, &ctx), GW_RULES_INVALID);
	assert_int_equal(f.events->len, 0);

	assert_int_equal(gw_rules_pain(f.r, PATIENT, NULL, eng(&f, 0), 7, 0, eng(&f, 0)),
			 GW_RULES_OK);
	assert_int_equal(f.events->len, 1);
	/* acknowledgements with bad arguments change nothing */
	assert_int_equal(gw_rules_ack(f.r, "al-1", GW_RULES_ACK_ACKNOWLEDGE, "Dr Smith", 0, NULL,
				      eng(&f, 1)), GW_RULES_INVALID);
	assert_int_equal(gw_rules_ack(f.r, "al-1", GW_RULES_ACK_ACKNOWLEDGE, NULL, 0, NULL,
				      eng(&f, 1)), GW_RULES_INVALID);
	assert_int_equal(gw_rules_ack(f.r, NULL, GW_RULES_ACK_ACKNOWLEDGE, "c1", 0, NULL,
				      eng(&f, 1)), GW_RULES_INVALID);
	assert_int_equal(gw_rules_ack(f.r, "al-1", (enum gw_rules_ack_action) 5, "c1", 0, NULL,
				      eng(&f, 1)), GW_RULES_INVALID);
	for (int i = 0; i < 281; i++)
		g_string_append(long_note, "é");
	assert_int_equal(gw_rules_ack(f.r, "al-1", GW_RULES_ACK_ACKNOWLEDGE, "c1", 0,
				      long_note->str, eng(&f, 1)), GW_RULES_INVALID);
	memset(note, 0, sizeof(note));
	note[0] = '\xff';
	assert_int_equal(gw_rules_ack(f.r, "al-1", GW_RULES_ACK_ACKNOWLEDGE, "c1", 0, note,
				      eng(&f, 1)), GW_RULES_INVALID);
	assert_int_equal(gw_rules_fallback_result(f.r, "al-1", 0, eng(&f, 1)), GW_RULES_INVALID);
	assert_int_equal(gw_rules_fallback_result(f.r, "al-9", 0, eng(&f, 1)),
			 GW_RULES_UNKNOWN_ALERT);
	assert_int_equal(gw_rules_find(f.r, "al-1")->state, GW_RULES_OPEN);
	/* 280 characters of two bytes each are fine, and kept whole */
	g_string_truncate(long_note, 560);
	assert_int_equal(gw_rules_ack(f.r, "al-1", GW_RULES_ACK_ACKNOWLEDGE, "c1", eng(&f, 0),
				      long_note->str, eng(&f, 1)), GW_RULES_OK);
	assert_string_equal(gw_rules_find(f.r, "al-1")->ack_note, long_note->str);
	assert_string_equal(gw_rules_find(f.r, "al-1")->ack_by, "c1");
	/* the note is never in the audit detail */
	assert_null(strstr(g_array_index(f.events, struct rec, f.events->len - 1).detail, "é"));
	assert_non_null(strstr(g_array_index(f.events, struct rec, f.events->len - 1).detail,
			       "note=yes"));
	g_string_free(long_note, TRUE);
	assert_string_equal(gw_rules_result_name(GW_RULES_UNKNOWN_ALERT), "unknown_alert");
	fx_fini(&f);
}

static void test_serialize(void **state)
{
	struct fx f;
	const struct gw_rules_alert *a;
	struct gw_rules_alert b;
	g_autoptr(GError) err = NULL;
	GVariant *v, *w;
	GVariantDict dict;

	(void) state;
	fx_init(&f, NULL, 0);
	assert_int_equal(gw_rules_wearable_add(f.r, WEARABLE, PATIENT, eng(&f, 0)), GW_RULES_OK);
	assert_int_equal(gw_rules_wearable_battery(f.r, WEARABLE, 77, eng(&f, 0)), GW_RULES_OK);
	assert_int_equal(gw_rules_pain(f.r, PATIENT, WEARABLE, eng(&f, 0), 2, 0, eng(&f, 0)),
			 GW_RULES_OK);
	assert_int_equal(gw_rules_pain(f.r, PATIENT, WEARABLE, eng(&f, SEC(60)), 9, F_ONE,
				       eng(&f, SEC(60))), GW_RULES_OK);
	assert_int_equal(gw_rules_ack(f.r, "al-1", GW_RULES_ACK_ACKNOWLEDGE, "clin-3",
				      eng(&f, SEC(90)), "ok ✓", eng(&f, SEC(100))), GW_RULES_OK);
	a = gw_rules_find(f.r, "al-1");
	assert_non_null(a);
	v = gw_rules_alert_serialize(a);
	assert_true(gw_rules_alert_deserialize(v, &b, &err));
	assert_string_equal(b.alert_id, a->alert_id);
	assert_string_equal(b.rule, a->rule);
	assert_string_equal(b.ack_note, "ok ✓");
	assert_int_equal(b.state, GW_RULES_ACKNOWLEDGED);
	assert_int_equal(b.context.n_pain_24h, 2);
	assert_int_equal(b.context.battery_pct, 77);
	assert_int_equal(b.n_trigger, a->n_trigger);
	w = gw_rules_alert_serialize(&b);
	assert_true(g_variant_equal(v, w));
	g_variant_unref(w);

	/* what it refuses */
	w = g_variant_ref_sink(g_variant_new_int32(3));
	assert_false(gw_rules_alert_deserialize(w, &b, &err));
	g_clear_error(&err);
	g_variant_unref(w);
	assert_false(gw_rules_alert_deserialize(NULL, &b, &err));
	g_clear_error(&err);
	g_variant_dict_init(&dict, v);
	g_variant_dict_insert(&dict, "tier", "s", "severe");
	w = g_variant_ref_sink(g_variant_dict_end(&dict));
	assert_false(gw_rules_alert_deserialize(w, &b, &err));
	assert_non_null(strstr(err->message, "tier"));
	g_clear_error(&err);
	g_variant_unref(w);
	g_variant_dict_init(&dict, v);
	g_variant_dict_remove(&dict, "clear_since");
	w = g_variant_ref_sink(g_variant_dict_end(&dict));
	assert_false(gw_rules_alert_deserialize(w, &b, &err));
	assert_non_null(strstr(err->message, "clear_since"));
	g_clear_error(&err);
	g_variant_unref(w);
	g_variant_dict_init(&dict, v);
	g_variant_dict_insert(&dict, "notification", "i", 3);
	w = g_variant_ref_sink(g_variant_dict_end(&dict));
	assert_false(gw_rules_alert_deserialize(w, &b, &err));
	g_clear_error(&err);
	g_variant_unref(w);
	g_variant_dict_init(&dict, v);
	g_variant_dict_insert(&dict, "alert_id", "s", "bad id");
	w = g_variant_ref_sink(g_variant_dict_end(&dict));
	assert_false(gw_rules_alert_deserialize(w, &b, &err));
	assert_non_null(strstr(err->message, "alert_id"));
	g_clear_error(&err);
	g_variant_unref(w);
	g_variant_dict_init(&dict, v);
	g_variant_dict_insert(&dict, "rule", "s", "pain.unknown");
	w = g_variant_ref_sink(g_variant_dict_end(&dict));
	assert_false(gw_rules_alert_deserialize(w, &b, &err));
	g_clear_error(&err);
	g_variant_unref(w);
	g_variant_dict_init(&dict, v);
	g_variant_dict_insert(&dict, "version", "u", 2);
	w = g_variant_ref_sink(g_variant_dict_end(&dict));
	assert_false(gw_rules_alert_deserialize(w, &b, &err));
	g_clear_error(&err);
	g_variant_unref(w);

	/* restore refuses a duplicate id and a second open alert of the key */
	assert_true(gw_rules_alert_deserialize(v, &b, &err));
	assert_false(gw_rules_restore(f.r, &b, eng(&f, SEC(200)), &err));
	assert_non_null(strstr(err->message, "already held"));
	g_clear_error(&err);
	g_strlcpy(b.alert_id, "al-other", sizeof(b.alert_id));
	assert_false(gw_rules_restore(f.r, &b, eng(&f, SEC(200)), &err));
	assert_non_null(strstr(err->message, "open"));
	g_clear_error(&err);
	b.state = GW_RULES_RESOLVED;
	b.resolved_at_us = eng(&f, SEC(150));
	assert_true(gw_rules_restore(f.r, &b, eng(&f, SEC(200)), &err));
	assert_int_equal(gw_rules_ack(f.r, "al-other", GW_RULES_ACK_ACKNOWLEDGE, "c1", 0, NULL,
				      eng(&f, SEC(201))), GW_RULES_ALREADY_RESOLVED);
	b.notification = 0;
	g_strlcpy(b.alert_id, "al-third", sizeof(b.alert_id));
	assert_false(gw_rules_restore(f.r, &b, eng(&f, SEC(200)), &err));
	g_clear_error(&err);
	g_variant_unref(v);
	fx_fini(&f);
}

/* a restored alert whose stored times are ahead of the clock (the clock was
 * ahead when it was stored) is not held back */
static void test_restore_future_times(void **state)
{
	struct fx f, g;
	struct gw_rules_alert a;

	(void) state;
	fx_init(&f, NULL, 0);
	assert_int_equal(gw_rules_pain(f.r, PATIENT, NULL, eng(&f, SEC(H(10))), 8, 0,
				       eng(&f, SEC(H(10)))), GW_RULES_OK);
	a = *gw_rules_find(f.r, "al-1");
	fx_init(&g, NULL, 0);
	assert_true(gw_rules_restore(g.r, &a, eng(&g, 0), NULL));
	assert_int_equal(gw_rules_next_deadline(g.r), eng(&g, SEC(M(15))));
	fx_fini(&g);
	fx_fini(&f);
}

/* resolved alerts are forgotten after resolved_keep_h */
static void test_resolved_kept(void **state)
{
	struct fx f;

	(void) state;
	fx_init(&f, NULL, 0);
	assert_int_equal(gw_rules_pain(f.r, PATIENT, NULL, eng(&f, 0), 8, 0, eng(&f, 0)),
			 GW_RULES_OK);
	assert_int_equal(gw_rules_ack(f.r, "al-1", GW_RULES_ACK_RESOLVE, "c1", 0, NULL,
				      eng(&f, SEC(60))), GW_RULES_OK);
	gw_rules_tick(f.r, eng(&f, SEC(60) + SEC(H(168)) - 1));
	assert_int_equal(gw_rules_n_alerts(f.r), 1);
	assert_int_equal(gw_rules_ack(f.r, "al-1", GW_RULES_ACK_ACKNOWLEDGE, "c1", 0, NULL,
				      eng(&f, SEC(60) + SEC(H(168)) - 1)), GW_RULES_ALREADY_RESOLVED);
	gw_rules_tick(f.r, eng(&f, SEC(60) + SEC(H(168))));
	assert_int_equal(gw_rules_n_alerts(f.r), 0);
	assert_int_equal(gw_rules_ack(f.r, "al-1", GW_RULES_ACK_ACKNOWLEDGE, "c1", 0, NULL,
				      eng(&f, SEC(60) + SEC(H(168)) + 1)), GW_RULES_UNKNOWN_ALERT);
	fx_fini(&f);
}

/* without ops->new_id (or with a bad id) the engine names alerts itself */
static void bad_id(char *buf, size_t size, void *user_data)
{
	(void) user_data;
	g_strlcpy(buf, "no spaces allowed", size);
}

static void test_ids(void **state)
{
	struct gw_rules_config c;
	struct gw_rules_ops ops = { .new_id = bad_id };
	GwRules *r;

	(void) state;
	gw_rules_config_init(&c);
	r = gw_rules_new(&c, &ops, NULL, NULL);
	assert_int_equal(gw_rules_pain(r, PATIENT, NULL, SEC(T0), 8, 0, SEC(T0)), GW_RULES_OK);
	assert_non_null(gw_rules_find(r, "alert-1"));
	gw_rules_free(r);
	r = gw_rules_new(&c, NULL, NULL, NULL);
	assert_int_equal(gw_rules_pain(r, PATIENT, NULL, SEC(T0), 8, 0, SEC(T0)), GW_RULES_OK);
	assert_int_equal(gw_rules_pain(r, PATIENT, NULL, SEC(T0), 9, F_BREATH, SEC(T0)),
			 GW_RULES_OK);
	assert_non_null(gw_rules_find(r, "alert-1"));
	assert_non_null(gw_rules_find(r, "alert-2"));
	assert_int_equal(gw_rules_n_alerts(r), 2);
	gw_rules_free(r);
	gw_rules_free(NULL);
}

/* the technician's test alert: informational, the whole way, once open */
static void count_event(const struct gw_rules_event *ev, void *user_data)
{
	GString *log = user_data;

	g_string_append_printf(log, "%s:%s:%s:%u:%d;", gw_rules_event_kind_name(ev->kind),
			       ev->alert->rule, gw_rules_tier_name(ev->alert->tier),
			       ev->alert->notification, ev->publish);
}

static void test_test_alert(void **state)
{
	struct gw_rules_config c;
	struct gw_rules_ops ops = { .event = count_event };
	g_autoptr(GString) log = g_string_new(NULL);
	char id[GW_RULES_ID_MAX], id2[GW_RULES_ID_MAX];
	GwRules *r;

	(void) state;
	gw_rules_config_init(&c);
	c.tech_hysteresis_min = 10;
	r = gw_rules_new(&c, &ops, log, NULL);
	assert_int_equal(gw_rules_test_alert(r, SEC(T0), id), GW_RULES_OK);
	assert_string_equal(log->str, "raised:gateway.test:informational:1:1;");
	assert_non_null(gw_rules_find_open(r, GW_RULE_TEST, ""));
	assert_string_equal(gw_rules_find(r, id)->rule, GW_RULE_TEST);
	/* a second test while it is open notifies the same alert again */
	g_string_truncate(log, 0);
	assert_int_equal(gw_rules_test_alert(r, SEC(T0 + 60), id2), GW_RULES_OK);
	assert_string_equal(id, id2);
	assert_string_equal(log->str, "updated:gateway.test:informational:2:1;");
	assert_int_equal(gw_rules_n_alerts(r), 1);
	/* it resolves by itself after the hysteresis from the last test */
	g_string_truncate(log, 0);
	gw_rules_tick(r, SEC(T0 + 60 + 10 * 60) - 1);
	assert_string_equal(log->str, "");
	gw_rules_tick(r, SEC(T0 + 60 + 10 * 60));
	assert_string_equal(log->str, "resolved:gateway.test:informational:3:1;");
	assert_int_equal(gw_rules_find(r, id)->state, GW_RULES_RESOLVED);
	/* the clinic may resolve a new one first */
	assert_int_equal(gw_rules_test_alert(r, SEC(T0 + 3600), id2), GW_RULES_OK);
	assert_string_not_equal(id, id2);
	assert_int_equal(gw_rules_ack(r, id2, GW_RULES_ACK_RESOLVE, "c1", SEC(T0 + 3601), NULL,
				      SEC(T0 + 3601)), GW_RULES_OK);
	assert_int_equal(gw_rules_find(r, id2)->state, GW_RULES_RESOLVED);
	gw_rules_free(r);
}

/* many patients and a long history stay bounded */
static void test_bounds(void **state)
{
	struct fx f;
	char id[16];
	const struct gw_rules_alert *a;

	(void) state;
	fx_init(&f, NULL, 0);
	for (int i = 0; i < GW_RULES_MAX_PATIENTS; i++) {
		g_snprintf(id, sizeof(id), "p%d", i);
		assert_int_equal(gw_rules_pain(f.r, id, NULL, eng(&f, 0), 1, 0, eng(&f, 0)),
				 GW_RULES_OK);
	}
	assert_int_equal(gw_rules_pain(f.r, "one-more", NULL, eng(&f, 0), 1, 0, eng(&f, 0)),
			 GW_RULES_INVALID);
	/* 400 reports in 20 h: the context keeps the newest 288 */
	for (int i = 0; i < 400; i++)
		assert_int_equal(gw_rules_pain(f.r, "p0", NULL, eng(&f, SEC(180 * (i + 1))), i % 3,
					       0, eng(&f, SEC(180 * (i + 1)))), GW_RULES_OK);
	assert_int_equal(gw_rules_pain(f.r, "p0", NULL, eng(&f, SEC(180 * 401)), 9, 0,
				       eng(&f, SEC(180 * 401))), GW_RULES_OK);
	a = gw_rules_find_open(f.r, GW_RULE_PAIN_SEVERE, "p0");
	assert_non_null(a);
	assert_int_equal(a->context.n_pain_24h, GW_RULES_MAX_PAIN_POINTS);
	assert_int_equal(a->context.pain_24h[GW_RULES_MAX_PAIN_POINTS - 1].score, 9);
	fx_fini(&f);
}

int main(void)
{
	static const struct CMUnitTest units[] = {
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_validation),
		cmocka_unit_test(test_set_config_at_runtime),
		cmocka_unit_test(test_deadlines),
		cmocka_unit_test(test_triggers_and_context),
		cmocka_unit_test(test_inputs_refused),
		cmocka_unit_test(test_serialize),
		cmocka_unit_test(test_restore_future_times),
		cmocka_unit_test(test_resolved_kept),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_test_alert),
		cmocka_unit_test(test_bounds),
	};
	struct CMUnitTest tests[ARRAY_SIZE(scenarios) + ARRAY_SIZE(units)];
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(scenarios); i++) {
		tests[n] = (struct CMUnitTest) cmocka_unit_test_prestate(test_scenario,
									(void *) &scenarios[i]);
		tests[n].name = scenarios[i].name;
		n++;
	}
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		tests[n++] = units[i];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
