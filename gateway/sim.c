/* SPDX-License-Identifier: MIT */
/*
 * The wearable simulator core: scenario parser, flash ring, clock, record
 * generation, and the GATT server side of the rehablink profile. See
 * sim.h and docs/simulator.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "sim.h"
#include "wearable.h"

G_DEFINE_QUARK(gw-sim-error-quark, gw_sim_error)

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

/* ---- Characteristics ------------------------------------------------------- */

struct char_info {
	const char *name;
	const char *uuid;
	unsigned int props;
	enum gw_sim_service service;
};

#define P_R GW_SIM_PROP_READ
#define P_W GW_SIM_PROP_WRITE
#define P_N GW_SIM_PROP_NOTIFY
#define P_I GW_SIM_PROP_INDICATE

static const struct char_info chars[GW_SIM_CHAR_COUNT] = {
	[GW_SIM_CHAR_POSTURE] = { "posture", WB_UUID_POSTURE, P_N, GW_SIM_SERVICE_REHABLINK },
	[GW_SIM_CHAR_STEPS] = { "steps", WB_UUID_STEPS, P_N, GW_SIM_SERVICE_REHABLINK },
	[GW_SIM_CHAR_PAIN] = { "pain", WB_UUID_PAIN, P_I, GW_SIM_SERVICE_REHABLINK },
	[GW_SIM_CHAR_HISTORY_CP] = { "history-cp", WB_UUID_HISTORY_CP, P_W | P_I, GW_SIM_SERVICE_REHABLINK },
	[GW_SIM_CHAR_HISTORY_DATA] = { "history-data", WB_UUID_HISTORY_DATA, P_N, GW_SIM_SERVICE_REHABLINK },
	[GW_SIM_CHAR_FEATURES] = { "features", WB_UUID_FEATURES, P_R | P_N, GW_SIM_SERVICE_REHABLINK },
	[GW_SIM_CHAR_STATUS] = { "status", WB_UUID_STATUS, P_R | P_N, GW_SIM_SERVICE_REHABLINK },
	[GW_SIM_CHAR_BATTERY] = { "battery", WB_UUID_BATTERY_LEVEL, P_R | P_N, GW_SIM_SERVICE_BATTERY },
	[GW_SIM_CHAR_MANUFACTURER] = { "manufacturer", WB_UUID_MANUFACTURER, P_R, GW_SIM_SERVICE_DEVINFO },
	[GW_SIM_CHAR_MODEL] = { "model", WB_UUID_MODEL_NUMBER, P_R, GW_SIM_SERVICE_DEVINFO },
	[GW_SIM_CHAR_SERIAL] = { "serial", WB_UUID_SERIAL_NUMBER, P_R, GW_SIM_SERVICE_DEVINFO },
	[GW_SIM_CHAR_HARDWARE_REV] = { "hardware-rev", WB_UUID_HARDWARE_REV, P_R, GW_SIM_SERVICE_DEVINFO },
	[GW_SIM_CHAR_FIRMWARE_REV] = { "firmware-rev", WB_UUID_FIRMWARE_REV, P_R, GW_SIM_SERVICE_DEVINFO },
	[GW_SIM_CHAR_SOFTWARE_REV] = { "software-rev", WB_UUID_SOFTWARE_REV, P_R, GW_SIM_SERVICE_DEVINFO },
	[GW_SIM_CHAR_CURRENT_TIME] = { "current-time", WB_UUID_CURRENT_TIME, P_R | P_W | P_N, GW_SIM_SERVICE_CTS },
};

static bool char_valid(enum gw_sim_char c)
{
	return (unsigned int) c < GW_SIM_CHAR_COUNT;
}

const char *gw_sim_char_name(enum gw_sim_char c)
{
	return char_valid(c) ? chars[c].name : NULL;
}

const char *gw_sim_char_uuid(enum gw_sim_char c)
{
	return char_valid(c) ? chars[c].uuid : NULL;
}

unsigned int gw_sim_char_props(enum gw_sim_char c)
{
	return char_valid(c) ? chars[c].props : 0;
}

enum gw_sim_service gw_sim_char_service(enum gw_sim_char c)
{
	return char_valid(c) ? chars[c].service : GW_SIM_SERVICE_REHABLINK;
}

const char *gw_sim_service_uuid(enum gw_sim_service s)
{
	switch (s) {
	case GW_SIM_SERVICE_REHABLINK:
		return WB_UUID_SERVICE;
	case GW_SIM_SERVICE_BATTERY:
		return WB_UUID_BATTERY_SERVICE;
	case GW_SIM_SERVICE_DEVINFO:
		return WB_UUID_DEVINFO_SERVICE;
	case GW_SIM_SERVICE_CTS:
		return WB_UUID_CTS_SERVICE;
	}
	return NULL;
}

int gw_sim_char_from_name(const char *name)
{
	if (!name)
		return -1;
	for (unsigned int i = 0; i < GW_SIM_CHAR_COUNT; i++)
		if (strcmp(chars[i].name, name) == 0)
			return (int) i;
	return -1;
}

/* ---- Scenario: data ------------------------------------------------------- */

#define SC_MAX_LINE              1024
#define SC_MAX_WORDS             64
#define SC_MAX_EVENTS            100000
#define SC_MAX_DAY               3650
#define SC_MAX_DURATION_S        (366 * GW_SIM_DAY_S)
#define SC_MAX_CAPACITY          10000000u
#define SC_DEFAULT_CAPACITY      4096u
#define SC_DEFAULT_PERIOD_S      60
#define SC_DEFAULT_DATE_UNIX     INT64_C(1767571200)	/* 2026-01-05 */

/* The posture (and walking) of one activity. */
struct sc_posture {
	enum wb_posture_class cls;
	int16_t flexion_ddeg;
	int16_t tilt_ddeg;
	uint16_t jitter_ddeg;
	uint16_t cadence;	/* steps per minute; 0 when not walking */
};

/* A span of simulated time with what holds in it. */
struct sc_span {
	int64_t start_s;
	int64_t end_s;
	union {
		struct sc_posture posture;
		uint32_t rate_mpct_h;	/* charge: milli-percent per hour */
	} u;
};

enum sc_instant_kind {
	SC_INSTANT_PAIN,
	SC_INSTANT_BATTERY,
	SC_INSTANT_REBOOT,
};

struct sc_instant {
	int64_t time_s;
	unsigned int order;	/* keeps line order at equal times */
	enum sc_instant_kind kind;
	uint8_t score;		/* pain */
	uint16_t flags;		/* pain */
	unsigned int pct;	/* battery */
};

enum sc_span_kind {
	SC_SPAN_POSTURE,
	SC_SPAN_CHARGE,
	SC_SPAN_OUT_OF_RANGE,
	SC_SPAN_SENSOR_FAULT,
};
#define SC_SPAN_KINDS            (SC_SPAN_SENSOR_FAULT + 1)

/* A span event as parsed, before flattening. */
struct sc_span_event {
	enum sc_span_kind kind;
	unsigned int order;
	struct sc_span span;
};

struct gw_sim_scenario {
	gint ref;
	unsigned int first_day;
	int64_t end_s;
	int64_t date_unix;
	bool clock_synced;
	uint32_t capacity;
	uint16_t posture_period_s;
	uint16_t steps_period_s;
	unsigned int battery_pct;
	uint32_t drain_mpct_h;
	uint32_t charge_mpct_h;
	struct sc_posture rest;
	uint32_t seq_start;
	bool has_seed;
	uint64_t seed;
	size_t n_events;
	GArray *instants;		/* struct sc_instant, sorted */
	GArray *spans[SC_SPAN_KINDS];	/* struct sc_span, disjoint, sorted */
};

static struct sc_posture posture_default(enum wb_posture_class cls)
{
	struct sc_posture p = { .cls = cls, .jitter_ddeg = 20 };

	switch (cls) {
	case WB_POSTURE_LYING:
		p.flexion_ddeg = -850;
		break;
	case WB_POSTURE_RECLINED:
		p.flexion_ddeg = -350;
		break;
	case WB_POSTURE_UPRIGHT:
		p.flexion_ddeg = 50;
		break;
	case WB_POSTURE_FLEXED:
		p.flexion_ddeg = 350;
		break;
	case WB_POSTURE_UNKNOWN:
		p.flexion_ddeg = 0;
		break;
	}
	return p;
}

static GwSimScenario *scenario_alloc(void)
{
	GwSimScenario *sc = g_new0(GwSimScenario, 1);

	sc->ref = 1;
	sc->first_day = 1;
	sc->date_unix = SC_DEFAULT_DATE_UNIX;
	sc->capacity = SC_DEFAULT_CAPACITY;
	sc->posture_period_s = SC_DEFAULT_PERIOD_S;
	sc->steps_period_s = SC_DEFAULT_PERIOD_S;
	sc->battery_pct = 100;
	sc->drain_mpct_h = 1000;
	sc->charge_mpct_h = 20000;
	sc->rest = posture_default(WB_POSTURE_RECLINED);
	sc->seq_start = 1;
	sc->end_s = GW_SIM_DAY_S;
	sc->instants = g_array_new(FALSE, FALSE, sizeof(struct sc_instant));
	for (unsigned int i = 0; i < SC_SPAN_KINDS; i++)
		sc->spans[i] = g_array_new(FALSE, FALSE, sizeof(struct sc_span));
	return sc;
}

GwSimScenario *gw_sim_scenario_ref(GwSimScenario *sc)
{
	g_return_val_if_fail(sc, NULL);
	g_atomic_int_inc(&sc->ref);
	return sc;
}

void gw_sim_scenario_unref(GwSimScenario *sc)
{
	if (!sc || !g_atomic_int_dec_and_test(&sc->ref))
		return;
	g_clear_pointer(&sc->instants, g_array_unref);
	for (unsigned int i = 0; i < SC_SPAN_KINDS; i++)
		g_clear_pointer(&sc->spans[i], g_array_unref);
	g_free(sc);
}

int64_t gw_sim_scenario_get_end(const GwSimScenario *sc)
{
	return sc ? sc->end_s * GW_SIM_US_PER_S : 0;
}

unsigned int gw_sim_scenario_get_first_day(const GwSimScenario *sc)
{
	return sc ? sc->first_day : 0;
}

size_t gw_sim_scenario_get_n_events(const GwSimScenario *sc)
{
	return sc ? sc->n_events : 0;
}

/* The span of kind containing t, or NULL. Spans are disjoint and sorted. */
static const struct sc_span *span_at(GArray *spans, int64_t t)
{
	size_t lo = 0, hi = spans->len;

	while (lo < hi) {	/* first span with start > t */
		size_t mid = lo + (hi - lo) / 2;

		if (g_array_index(spans, struct sc_span, mid).start_s <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct sc_span *s = &g_array_index(spans, struct sc_span, lo - 1);
	return t < s->end_s ? s : NULL;
}

/* The first span edge (start or end) after t; INT64_MAX if none. */
static int64_t span_next_edge(GArray *spans, int64_t t)
{
	size_t lo = 0, hi = spans->len;

	while (lo < hi) {	/* first span with end > t */
		size_t mid = lo + (hi - lo) / 2;

		if (g_array_index(spans, struct sc_span, mid).end_s <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == spans->len)
		return INT64_MAX;
	const struct sc_span *s = &g_array_index(spans, struct sc_span, lo);
	return s->start_s > t ? s->start_s : s->end_s;
}

/*
 * Lays ev over the disjoint, sorted spans: the parts of earlier spans it
 * covers are cut away, what sticks out on either side remains.
 */
static void span_overlay(GArray *spans, const struct sc_span *ev)
{
	size_t lo = 0, hi = spans->len;

	while (lo < hi) {	/* first span with end > ev->start */
		size_t mid = lo + (hi - lo) / 2;

		if (g_array_index(spans, struct sc_span, mid).end_s <= ev->start_s)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t i = lo;
	bool have_right = false;
	struct sc_span right = { 0 };

	while (i < spans->len) {
		struct sc_span *s = &g_array_index(spans, struct sc_span, i);

		if (s->start_s >= ev->end_s)
			break;
		if (s->end_s > ev->end_s) {
			right = *s;
			right.start_s = ev->end_s;
			have_right = true;
		}
		if (s->start_s < ev->start_s) {
			s->end_s = ev->start_s;	/* keep the left part */
			i++;
		} else {
			g_array_remove_index(spans, i);
		}
	}
	g_array_insert_val(spans, i, *ev);
	if (have_right)
		g_array_insert_val(spans, i + 1, right);
}

/* ---- Scenario: parser ------------------------------------------------------- */

struct parser {
	const char *filename;
	unsigned int line;
	GwSimScenario *sc;
	GArray *span_events;	/* struct sc_span_event */
	unsigned int order;
	bool day_set;
	unsigned int day;
	unsigned int last_day;
	int64_t day_off_s;
	int64_t prev_at_s;
	bool end_set;
	unsigned int seen;	/* settings given, bit per enum setting */
};

enum setting {
	SET_DATE, SET_CLOCK, SET_CAPACITY, SET_POSTURE_PERIOD, SET_STEPS_PERIOD,
	SET_BATTERY, SET_DRAIN, SET_CHARGE_RATE, SET_DEFAULT, SET_SEQ_START,
	SET_SEED, SET_END,
};

/* A word, quoted and escaped for an error message. */
static char *quote(const char *w)
{
	g_autofree char *esc = g_strescape(w, NULL);

	if (strlen(esc) > 40)
		return g_strdup_printf("'%.40s...'", esc);
	return g_strdup_printf("'%s'", esc);
}

G_GNUC_PRINTF(3, 4)
static int perr(struct parser *p, GError **error, const char *fmt, ...)
{
	va_list ap;
	g_autofree char *msg = NULL;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(error, GW_SIM_ERROR, GW_SIM_ERROR_SCENARIO, "%s:%u: %s",
		    p->filename, p->line, msg);
	return -EINVAL;
}

/* Unsigned decimal (or 0x hex if hex_ok) into *ret, at most max. */
static bool parse_uint(const char *s, uint64_t max, bool hex_ok, uint64_t *ret)
{
	uint64_t v = 0;
	unsigned int base = 10;

	if (hex_ok && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned int d;

		if (*s >= '0' && *s <= '9')
			d = (unsigned int) (*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned int) (*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned int) (*s - 'A' + 10);
		else
			return false;
		if (v > (max - d) / base)
			return false;
		v = v * base + d;
	}
	*ret = v;
	return true;
}

/* A decimal number with an optional sign and up to 3 decimals, in
 * thousandths, within [min, max] thousandths. */
static bool parse_milli(const char *s, int64_t min, int64_t max, int64_t *ret)
{
	bool neg = false;
	int64_t v = 0;
	unsigned int frac = 0;
	bool digits = false;

	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	for (; *s >= '0' && *s <= '9'; s++) {
		digits = true;
		v = v * 10 + (*s - '0');
		if (v > INT64_C(1000000000))
			return false;
	}
	v *= 1000;
	if (*s == '.') {
		s++;
		for (; *s >= '0' && *s <= '9'; s++) {
			digits = true;
			if (frac < 3) {
				static const int scale[] = { 100, 10, 1 };

				v += (*s - '0') * scale[frac];
			}
			frac++;
		}
	}
	if (*s || !digits || frac > 9)
		return false;
	if (neg)
		v = -v;
	if (v < min || v > max)
		return false;
	*ret = v;
	return true;
}

/* "90s", "15m", "2h", "1h30m", "1d" into seconds (0..SC_MAX_DURATION_S). */
static bool parse_duration(const char *s, int64_t *ret_s)
{
	int64_t total = 0;

	if (!*s)
		return false;
	while (*s) {
		int64_t n = 0, unit;
		bool digits = false;

		for (; *s >= '0' && *s <= '9'; s++) {
			digits = true;
			n = n * 10 + (*s - '0');
			if (n > SC_MAX_DURATION_S)
				return false;
		}
		switch (*s) {
		case 'd':
			unit = GW_SIM_DAY_S;
			break;
		case 'h':
			unit = 3600;
			break;
		case 'm':
			unit = 60;
			break;
		case 's':
			unit = 1;
			break;
		default:
			return false;
		}
		if (!digits)
			return false;
		s++;
		total += n * unit;
		if (total > SC_MAX_DURATION_S)
			return false;
	}
	*ret_s = total;
	return true;
}

/* "HH:MM" or "HH:MM:SS" (24:00 allowed) into seconds of the day. */
static bool parse_clock(const char *s, int64_t *ret_s)
{
	unsigned int f[3] = { 0 }, n = 0;

	for (;;) {
		unsigned int v = 0, digits = 0;

		for (; *s >= '0' && *s <= '9' && digits < 3; s++, digits++)
			v = v * 10 + (unsigned int) (*s - '0');
		if (digits == 0 || digits > 2)
			return false;
		f[n++] = v;
		if (*s == ':' && n < 3) {
			s++;
			continue;
		}
		break;
	}
	if (*s || n < 2)
		return false;
	if (f[1] > 59 || f[2] > 59 || f[0] > 24)
		return false;
	if (f[0] == 24 && (f[1] || f[2]))
		return false;
	*ret_s = f[0] * 3600 + f[1] * 60 + f[2];
	return true;
}

gboolean gw_sim_parse_time(const char *s, int64_t *ret_us)
{
	int64_t v;

	if (!s)
		return FALSE;
	if (s[0] == '+') {
		if (!parse_duration(s + 1, &v))
			return FALSE;
	} else if (!parse_clock(s, &v)) {
		return FALSE;
	}
	*ret_us = v * GW_SIM_US_PER_S;
	return TRUE;
}

/* TIME of an event: clock time in the current day, or +DUR after the
 * previous `at`. */
static bool parse_event_time(struct parser *p, const char *s, int64_t *ret_s)
{
	int64_t v;

	if (s[0] == '+') {
		if (!parse_duration(s + 1, &v))
			return false;
		*ret_s = p->prev_at_s + v;
		return true;
	}
	if (!parse_clock(s, &v))
		return false;
	*ret_s = p->day_off_s + v;
	return true;
}

static int parse_posture_word(const char *w)
{
	static const struct {
		const char *name;
		enum wb_posture_class cls;
	} tab[] = {
		{ "lying", WB_POSTURE_LYING },
		{ "reclined", WB_POSTURE_RECLINED },
		{ "propped", WB_POSTURE_RECLINED },
		{ "upright", WB_POSTURE_UPRIGHT },
		{ "flexed", WB_POSTURE_FLEXED },
		{ "unknown", WB_POSTURE_UNKNOWN },
	};

	for (size_t i = 0; i < ARRAY_SIZE(tab); i++)
		if (strcmp(tab[i].name, w) == 0)
			return (int) tab[i].cls;
	return -1;
}

static const struct {
	const char *name;
	uint16_t bit;
} pain_flags[] = {
	{ "breathlessness", WB_PAIN_BREATHLESS },
	{ "chest", WB_PAIN_CHEST },
	{ "calf", WB_PAIN_CALF },
	{ "fever", WB_PAIN_FEVER },
	{ "bleeding", WB_PAIN_BLEEDING },
	{ "medication", WB_PAIN_MEDICATION },
	{ "one-sided", WB_PAIN_ONE_SIDED },
};

/* Posture options: flexion D, tilt D, jitter D, cadence N, class C. */
static int parse_posture_opts(struct parser *p, char **w, unsigned int n,
			      bool walk, struct sc_posture *pp, GError **error)
{
	bool class_given = false;

	for (unsigned int i = 0; i < n; i += 2) {
		const char *k = w[i];
		int64_t v;

		if (i + 1 >= n) {
			g_autofree char *q = quote(k);
			return perr(p, error, "%s needs a value", q);
		}
		const char *val = w[i + 1];
		g_autofree char *qv = quote(val);

		if (strcmp(k, "flexion") == 0) {
			if (!parse_milli(val, -180000, 180000, &v))
				return perr(p, error, "flexion %s: want degrees -180..180", qv);
			pp->flexion_ddeg = (int16_t) (v / 100);
		} else if (strcmp(k, "tilt") == 0) {
			if (!parse_milli(val, -90000, 90000, &v))
				return perr(p, error, "tilt %s: want degrees -90..90", qv);
			pp->tilt_ddeg = (int16_t) (v / 100);
		} else if (strcmp(k, "jitter") == 0) {
			if (!parse_milli(val, 0, 45000, &v))
				return perr(p, error, "jitter %s: want degrees 0..45", qv);
			pp->jitter_ddeg = (uint16_t) (v / 100);
		} else if (walk && strcmp(k, "cadence") == 0) {
			uint64_t c;

			if (!parse_uint(val, 250, false, &c))
				return perr(p, error, "cadence %s: want steps per minute 0..250", qv);
			pp->cadence = (uint16_t) c;
		} else if (walk && strcmp(k, "class") == 0) {
			if (strcmp(val, "upright") == 0)
				pp->cls = WB_POSTURE_UPRIGHT;
			else if (strcmp(val, "flexed") == 0)
				pp->cls = WB_POSTURE_FLEXED;
			else
				return perr(p, error, "class %s: want upright or flexed", qv);
			class_given = true;
		} else {
			g_autofree char *q = quote(k);
			return perr(p, error, "unknown option %s", q);
		}
	}
	if (walk && !class_given)
		pp->cls = pp->flexion_ddeg >= 200 ? WB_POSTURE_FLEXED :
						     WB_POSTURE_UPRIGHT;
	return 0;
}

static int add_span(struct parser *p, enum sc_span_kind kind, int64_t start,
		    int64_t dur, const struct sc_span *tmpl, GError **error)
{
	struct sc_span_event ev = { .kind = kind, .order = p->order++ };

	if (p->sc->n_events >= SC_MAX_EVENTS)
		return perr(p, error, "too many events (limit %u)", SC_MAX_EVENTS);
	if (tmpl)
		ev.span = *tmpl;
	ev.span.start_s = start;
	ev.span.end_s = start + dur;
	g_array_append_val(p->span_events, ev);
	p->sc->n_events++;
	return 0;
}

static int add_instant(struct parser *p, const struct sc_instant *tmpl,
		       int64_t t, GError **error)
{
	struct sc_instant in = *tmpl;

	if (p->sc->n_events >= SC_MAX_EVENTS)
		return perr(p, error, "too many events (limit %u)", SC_MAX_EVENTS);
	in.time_s = t;
	in.order = p->order++;
	g_array_append_val(p->sc->instants, in);
	p->sc->n_events++;
	return 0;
}

/* What is parsed from an event's WHAT, to be placed at one or more times. */
struct what {
	bool is_span;
	enum sc_span_kind span_kind;
	int64_t dur_s;
	struct sc_span span;
	struct sc_instant instant;
};

static int parse_what(struct parser *p, char **w, unsigned int n,
		      struct what *ret, GError **error)
{
	const char *verb = w[0];
	g_autofree char *qverb = quote(verb);
	int cls;

	memset(ret, 0, sizeof(*ret));
	if (n < 1)
		return perr(p, error, "missing event");

	cls = parse_posture_word(verb);
	if (cls >= 0 || strcmp(verb, "walk") == 0) {
		bool walk = cls < 0;

		if (n < 2)
			return perr(p, error, "%s needs a duration", qverb);
		if (!parse_duration(w[1], &ret->dur_s) || ret->dur_s <= 0) {
			g_autofree char *q = quote(w[1]);
			return perr(p, error, "bad duration %s", q);
		}
		ret->is_span = true;
		ret->span_kind = SC_SPAN_POSTURE;
		ret->span.u.posture = posture_default(walk ? WB_POSTURE_UPRIGHT :
							     (enum wb_posture_class) cls);
		if (walk) {
			ret->span.u.posture.flexion_ddeg = 80;
			ret->span.u.posture.cadence = 80;
		}
		return parse_posture_opts(p, w + 2, n - 2, walk,
					  &ret->span.u.posture, error);
	}
	if (strcmp(verb, "pain") == 0) {
		uint64_t score;

		if (n < 2 || !parse_uint(w[1], WB_PAIN_SCORE_MAX, false, &score)) {
			g_autofree char *q = quote(n < 2 ? "" : w[1]);
			return perr(p, error, "pain score %s: want 0..10", q);
		}
		ret->instant.kind = SC_INSTANT_PAIN;
		ret->instant.score = (uint8_t) score;
		if (n == 2)
			return 0;
		if (n != 4 || strcmp(w[2], "flags") != 0) {
			g_autofree char *q = quote(w[2]);
			return perr(p, error, "after the pain score: want 'flags F,F,...', got %s", q);
		}
		g_auto(GStrv) fl = g_strsplit(w[3], ",", -1);
		for (char **f = fl; *f; f++) {
			bool found = false;

			for (size_t i = 0; i < ARRAY_SIZE(pain_flags); i++) {
				if (strcmp(pain_flags[i].name, *f) == 0) {
					ret->instant.flags |= pain_flags[i].bit;
					found = true;
				}
			}
			if (!found) {
				g_autofree char *q = quote(*f);
				return perr(p, error, "unknown pain flag %s", q);
			}
		}
		return 0;
	}
	if (strcmp(verb, "battery") == 0) {
		uint64_t pct;

		if (n != 2 || !parse_uint(w[1], 100, false, &pct)) {
			g_autofree char *q = quote(n < 2 ? "" : w[1]);
			return perr(p, error, "battery %s: want percent 0..100", q);
		}
		ret->instant.kind = SC_INSTANT_BATTERY;
		ret->instant.pct = (unsigned int) pct;
		return 0;
	}
	if (strcmp(verb, "reboot") == 0) {
		if (n != 1)
			return perr(p, error, "reboot takes no arguments");
		ret->instant.kind = SC_INSTANT_REBOOT;
		return 0;
	}
	if (strcmp(verb, "charge") == 0 || strcmp(verb, "out-of-range") == 0 ||
	    strcmp(verb, "sensor-fault") == 0) {
		if (n < 2 || !parse_duration(w[1], &ret->dur_s) || ret->dur_s <= 0) {
			g_autofree char *q = quote(n < 2 ? "" : w[1]);
			return perr(p, error, "%s needs a duration, got %s", qverb, q);
		}
		ret->is_span = true;
		if (verb[0] == 'c') {
			ret->span_kind = SC_SPAN_CHARGE;
			ret->span.u.rate_mpct_h = p->sc->charge_mpct_h;
			if (n == 4 && strcmp(w[2], "rate") == 0) {
				int64_t v;

				if (!parse_milli(w[3], 0, 1000000, &v)) {
					g_autofree char *q = quote(w[3]);
					return perr(p, error, "charge rate %s: want percent per hour 0..1000", q);
				}
				ret->span.u.rate_mpct_h = (uint32_t) v;
			} else if (n != 2) {
				return perr(p, error, "charge: want 'charge DUR [rate R]'");
			}
		} else {
			ret->span_kind = verb[0] == 'o' ? SC_SPAN_OUT_OF_RANGE :
							  SC_SPAN_SENSOR_FAULT;
			if (n != 2)
				return perr(p, error, "%s takes only a duration", qverb);
		}
		return 0;
	}
	return perr(p, error, "unknown posture or event %s", qverb);
}

static int place_what(struct parser *p, const struct what *wh, int64_t t,
		      GError **error)
{
	if (wh->is_span)
		return add_span(p, wh->span_kind, t, wh->dur_s, &wh->span, error);
	return add_instant(p, &wh->instant, t, error);
}

static int setting_once(struct parser *p, enum setting s, const char *name,
			GError **error)
{
	if (p->seen & (1u << s))
		return perr(p, error, "'%s' given twice", name);
	p->seen |= 1u << s;
	return 0;
}

static void ensure_day(struct parser *p)
{
	if (!p->day_set) {
		p->day_set = true;
		p->day = p->last_day = p->sc->first_day = 1;
		p->day_off_s = 0;
		p->prev_at_s = 0;
	}
}

static int parse_statement(struct parser *p, char **w, unsigned int n,
			   GError **error)
{
	GwSimScenario *sc = p->sc;
	const char *k = w[0];
	uint64_t u;
	int64_t v;
	int rc;

	if (strcmp(k, "day") == 0) {
		if (n != 2 || !parse_uint(w[1], SC_MAX_DAY, false, &u)) {
			g_autofree char *q = quote(n < 2 ? "" : w[1]);
			return perr(p, error, "day %s: want a day number 0..%d", q, SC_MAX_DAY);
		}
		if (!p->day_set) {
			p->day_set = true;
			sc->first_day = p->day = p->last_day = (unsigned int) u;
			p->day_off_s = p->prev_at_s = 0;
			return 0;
		}
		if (u <= p->day)
			return perr(p, error, "day %u after day %u: days only increase",
				    (unsigned int) u, p->day);
		p->day = p->last_day = (unsigned int) u;
		p->day_off_s = (int64_t) (p->day - sc->first_day) * GW_SIM_DAY_S;
		p->prev_at_s = p->day_off_s;
		return 0;
	}
	if (strcmp(k, "at") == 0) {
		struct what wh;
		int64_t t;

		ensure_day(p);
		if (n < 3)
			return perr(p, error, "want 'at TIME WHAT'");
		if (!parse_event_time(p, w[1], &t)) {
			g_autofree char *q = quote(w[1]);
			return perr(p, error, "bad time %s: want HH:MM[:SS] or +DUR", q);
		}
		rc = parse_what(p, w + 2, n - 2, &wh, error);
		if (rc < 0)
			return rc;
		p->prev_at_s = t;
		return place_what(p, &wh, t, error);
	}
	if (strcmp(k, "every") == 0) {
		struct what wh;
		int64_t step, from, to;

		ensure_day(p);
		if (n < 7 || strcmp(w[2], "from") != 0 || strcmp(w[4], "to") != 0)
			return perr(p, error, "want 'every DUR from TIME to TIME WHAT'");
		if (!parse_duration(w[1], &step) || step <= 0) {
			g_autofree char *q = quote(w[1]);
			return perr(p, error, "bad duration %s", q);
		}
		if (!parse_event_time(p, w[3], &from) || !parse_event_time(p, w[5], &to)) {
			g_autofree char *q = quote(w[3]);
			g_autofree char *q2 = quote(w[5]);
			return perr(p, error, "bad time %s or %s: want HH:MM[:SS] or +DUR", q, q2);
		}
		if (to <= from) {
			g_autofree char *q = quote(w[5]);
			return perr(p, error, "every: the end %s is not after the start", q);
		}
		rc = parse_what(p, w + 6, n - 6, &wh, error);
		if (rc < 0)
			return rc;
		if ((to - from) / step >= SC_MAX_EVENTS)
			return perr(p, error, "too many events (limit %u)", SC_MAX_EVENTS);
		for (int64_t t = from; t < to; t += step) {
			rc = place_what(p, &wh, t, error);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	if (strcmp(k, "date") == 0) {
		struct wb_current_time ct = { 0 };
		unsigned int y, m, d;
		char tail;

		if ((rc = setting_once(p, SET_DATE, k, error)) < 0)
			return rc;
		if (n != 2 || strlen(w[1]) != 10 ||
		    sscanf(w[1], "%4u-%2u-%2u%c", &y, &m, &d, &tail) != 3 ||
		    y < 1970 || y > 2100 || m < 1 || m > 12 || d < 1 || d > 31) {
			g_autofree char *q = quote(n < 2 ? "" : w[1]);
			return perr(p, error, "date %s: want YYYY-MM-DD (1970..2100)", q);
		}
		ct.year = (uint16_t) y;
		ct.month = (uint8_t) m;
		ct.day = (uint8_t) d;
		if (wb_current_time_to_unix(&ct, &v) < 0) {
			g_autofree char *q = quote(w[1]);
			return perr(p, error, "date %s does not exist", q);
		}
		sc->date_unix = v;
		return 0;
	}
	if (strcmp(k, "clock") == 0) {
		if ((rc = setting_once(p, SET_CLOCK, k, error)) < 0)
			return rc;
		if (n == 2 && strcmp(w[1], "synced") == 0)
			sc->clock_synced = true;
		else if (n == 2 && strcmp(w[1], "unsynced") == 0)
			sc->clock_synced = false;
		else
			return perr(p, error, "want 'clock synced' or 'clock unsynced'");
		return 0;
	}
	if (strcmp(k, "capacity") == 0) {
		if ((rc = setting_once(p, SET_CAPACITY, k, error)) < 0)
			return rc;
		if (n != 2 || !parse_uint(w[1], SC_MAX_CAPACITY, false, &u) || u == 0) {
			g_autofree char *q = quote(n < 2 ? "" : w[1]);
			return perr(p, error, "capacity %s: want records 1..%u", q, SC_MAX_CAPACITY);
		}
		sc->capacity = (uint32_t) u;
		return 0;
	}
	if (strcmp(k, "posture-period") == 0 || strcmp(k, "steps-period") == 0) {
		bool posture = k[0] == 'p';

		if ((rc = setting_once(p, posture ? SET_POSTURE_PERIOD : SET_STEPS_PERIOD,
				       k, error)) < 0)
			return rc;
		if (n != 2 || !parse_duration(w[1], &v) || v < WB_PERIOD_MIN_S ||
		    v > WB_PERIOD_MAX_S) {
			g_autofree char *q = quote(n < 2 ? "" : w[1]);
			return perr(p, error, "%s %s: want a duration 1s..1h", k, q);
		}
		if (posture)
			sc->posture_period_s = (uint16_t) v;
		else
			sc->steps_period_s = (uint16_t) v;
		return 0;
	}
	if (strcmp(k, "battery") == 0) {
		if ((rc = setting_once(p, SET_BATTERY, k, error)) < 0)
			return rc;
		if (n != 2 || !parse_uint(w[1], 100, false, &u)) {
			g_autofree char *q = quote(n < 2 ? "" : w[1]);
			return perr(p, error, "battery %s: want percent 0..100", q);
		}
		sc->battery_pct = (unsigned int) u;
		return 0;
	}
	if (strcmp(k, "battery-drain") == 0 || strcmp(k, "charge-rate") == 0) {
		bool drain = k[0] == 'b';

		if ((rc = setting_once(p, drain ? SET_DRAIN : SET_CHARGE_RATE, k, error)) < 0)
			return rc;
		if (n != 2 || !parse_milli(w[1], 0, drain ? 100000 : 1000000, &v)) {
			g_autofree char *q = quote(n < 2 ? "" : w[1]);
			return perr(p, error, "%s %s: want percent per hour 0..%u", k, q,
				    drain ? 100 : 1000);
		}
		if (drain)
			sc->drain_mpct_h = (uint32_t) v;
		else
			sc->charge_mpct_h = (uint32_t) v;
		return 0;
	}
	if (strcmp(k, "default") == 0) {
		int cls;

		if ((rc = setting_once(p, SET_DEFAULT, k, error)) < 0)
			return rc;
		cls = n >= 2 ? parse_posture_word(w[1]) : -1;
		if (cls < 0) {
			g_autofree char *q = quote(n < 2 ? "" : w[1]);
			return perr(p, error, "unknown posture %s", q);
		}
		sc->rest = posture_default((enum wb_posture_class) cls);
		return parse_posture_opts(p, w + 2, n - 2, false, &sc->rest, error);
	}
	if (strcmp(k, "seq-start") == 0) {
		if ((rc = setting_once(p, SET_SEQ_START, k, error)) < 0)
			return rc;
		if (n != 2 || !parse_uint(w[1], UINT32_MAX, true, &u)) {
			g_autofree char *q = quote(n < 2 ? "" : w[1]);
			return perr(p, error, "seq-start %s: want 0..4294967295", q);
		}
		sc->seq_start = (uint32_t) u;
		return 0;
	}
	if (strcmp(k, "seed") == 0) {
		if ((rc = setting_once(p, SET_SEED, k, error)) < 0)
			return rc;
		if (n != 2 || !parse_uint(w[1], UINT64_MAX, true, &u)) {
			g_autofree char *q = quote(n < 2 ? "" : w[1]);
			return perr(p, error, "seed %s: want a number", q);
		}
		sc->seed = u;
		sc->has_seed = true;
		return 0;
	}
	if (strcmp(k, "end") == 0) {
		int64_t t;

		if ((rc = setting_once(p, SET_END, k, error)) < 0)
			return rc;
		ensure_day(p);
		if (n != 2 || !parse_event_time(p, w[1], &t) || t <= 0) {
			g_autofree char *q = quote(n < 2 ? "" : w[1]);
			return perr(p, error, "end %s: want HH:MM[:SS] or +DUR after the start", q);
		}
		sc->end_s = t;
		p->end_set = true;
		return 0;
	}
	/* a posture or event without `at`: the usual slip */
	if (parse_posture_word(k) >= 0 || strcmp(k, "walk") == 0 ||
	    strcmp(k, "pain") == 0 || strcmp(k, "reboot") == 0 ||
	    strcmp(k, "charge") == 0 || strcmp(k, "out-of-range") == 0 ||
	    strcmp(k, "sensor-fault") == 0) {
		g_autofree char *q = quote(k);
		return perr(p, error, "%s needs a time: 'at HH:MM %s ...'", q, k);
	}
	g_autofree char *q = quote(k);
	return perr(p, error, "unknown statement %s", q);
}

static gint instant_cmp(gconstpointer a, gconstpointer b)
{
	const struct sc_instant *x = a, *y = b;

	if (x->time_s != y->time_s)
		return x->time_s < y->time_s ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static gint span_event_cmp(gconstpointer a, gconstpointer b)
{
	const struct sc_span_event *x = a, *y = b;

	if (x->span.start_s != y->span.start_s)
		return x->span.start_s < y->span.start_s ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static void scenario_finish(struct parser *p)
{
	GwSimScenario *sc = p->sc;

	g_array_sort(sc->instants, instant_cmp);
	g_array_sort(p->span_events, span_event_cmp);
	for (guint i = 0; i < p->span_events->len; i++) {
		const struct sc_span_event *ev =
			&g_array_index(p->span_events, struct sc_span_event, i);

		span_overlay(sc->spans[ev->kind], &ev->span);
	}
	if (!p->end_set)
		sc->end_s = (int64_t) (p->last_day - sc->first_day + 1) * GW_SIM_DAY_S;
}

int gw_sim_scenario_parse(const char *text, size_t len, const char *filename,
			  GwSimScenario **ret_sc, GError **error)
{
	g_autoptr(GwSimScenario) sc = scenario_alloc();
	g_autoptr(GArray) span_events = g_array_new(FALSE, FALSE,
						    sizeof(struct sc_span_event));
	struct parser p = {
		.filename = filename ? filename : "scenario",
		.sc = sc,
		.span_events = span_events,
		.last_day = 1,
	};
	size_t pos = 0;

	g_return_val_if_fail(ret_sc, -EINVAL);
	if (!text)
		len = 0;
	while (pos < len) {
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t ll = nl ? (size_t) (nl - line) : len - pos;
		char buf[SC_MAX_LINE + 1];
		char *words[SC_MAX_WORDS];
		unsigned int n = 0;
		char *s;
		int rc;

		pos += ll + (nl ? 1 : 0);
		p.line++;
		if (ll > 0 && line[ll - 1] == '\r')
			ll--;
		if (ll > SC_MAX_LINE)
			return perr(&p, error, "line longer than %d bytes", SC_MAX_LINE);
		if (memchr(line, '\0', ll))
			return perr(&p, error, "NUL byte in the line");
		memcpy(buf, line, ll);
		buf[ll] = '\0';
		s = strchr(buf, '#');
		if (s)
			*s = '\0';
		for (s = buf; *s;) {
			while (*s == ' ' || *s == '\t')
				s++;
			if (!*s)
				break;
			if (n == SC_MAX_WORDS)
				return perr(&p, error, "more than %d words", SC_MAX_WORDS);
			words[n++] = s;
			while (*s && *s != ' ' && *s != '\t')
				s++;
			if (*s)
				*s++ = '\0';
		}
		if (n == 0)
			continue;
		rc = parse_statement(&p, words, n, error);
		if (rc < 0)
			return rc;
	}
	scenario_finish(&p);
	*ret_sc = g_steal_pointer(&sc);
	return 0;
}

GwSimScenario *gw_sim_scenario_load(const char *path, GError **error)
{
	g_autofree char *text = NULL;
	g_autofree char *base = NULL;
	GwSimScenario *sc = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &text, &len, error)) {
		g_prefix_error(error, "scenario: ");
		return NULL;
	}
	base = g_path_get_basename(path);
	if (gw_sim_scenario_parse(text, len, base, &sc, error) < 0)
		return NULL;
	return sc;
}

static const char default_scenario[] =
	"# built-in: a quiet day\n"
	"default reclined\n"
	"at 00:00 lying 7h\n"
	"at 07:30 walk 10m cadence 70 flexion 15\n"
	"at 09:00 upright 1h\n"
	"every 2h from 10:00 to 20:00 walk 10m cadence 75 flexion 12\n"
	"at 12:00 pain 2\n"
	"at 18:00 pain 3 flags medication\n"
	"at 22:00 lying 2h\n";

GwSimScenario *gw_sim_scenario_new_default(void)
{
	GwSimScenario *sc = NULL;
	g_autoptr(GError) error = NULL;

	if (gw_sim_scenario_parse(default_scenario, sizeof(default_scenario) - 1,
				  "built-in", &sc, &error) < 0)
		g_error("built-in scenario: %s", error->message);
	return sc;
}

/* ---- The wearable: state ------------------------------------------------- */

#define SLOT_LEN                 20	/* u8 length + the longest record (19) */
#define SEQ_RESERVE              4096u
#define TXQ_MAX                  65536u
#define UPCT                     INT64_C(1000000)	/* micro-percent per percent */
#define STATUS_EVERY_S           3600
#define HOLDOVER_AFTER_S         GW_SIM_DAY_S

struct gw_sim {
	GwSimScenario *sc;
	char *state_path;
	char *serial;
	uint64_t seed;
	void (*on_record)(const struct wb_record *rec, void *user_data);
	void *on_record_data;
	GError *pending_error;	/* a failed reservation write, for advance */

	/* flash: a ring of encoded records in fixed slots */
	uint8_t *slots;
	uint32_t capacity;
	uint32_t head;		/* slot of the oldest record */
	uint32_t count;
	uint32_t next_seq;
	uint32_t seq_reserved;	/* next_seq may reach it only after a save */
	uint32_t last_seq;
	bool any_written;
	bool dirty;

	/* time, in simulated seconds */
	int64_t now_us;
	int64_t t_s;		/* processed up to and including */
	int64_t powerup_s;
	int64_t next_posture_s;	/* end of the current posture period */
	int64_t next_steps_s;
	guint next_instant;	/* index into sc->instants */
	int64_t last_status_s;
	bool boot_status_pending;
	bool clock_lost;
	bool storage_full;
	bool has_last_status;
	struct wb_record last_status;

	/* clock */
	bool clock_set;
	int64_t clock_set_at_s;
	int64_t clock_base_s;	/* wearable seconds (since 2000) at set_at */

	/* battery */
	int64_t battery_upct;
	unsigned int battery_notified;

	/* run-time overrides (gw_sim_apply, gw_sim_set_out_of_range) */
	int64_t oor_until_s;
	int64_t ov_posture_from_s, ov_posture_until_s;
	struct sc_posture ov_posture;
	int64_t ov_charge_until_s;
	uint32_t ov_charge_rate;
	int64_t ov_fault_until_s;

	/* link */
	bool connected;
	unsigned int mtu;
	bool notify[GW_SIM_CHAR_COUNT];
	GQueue txq;

	/* history report procedure */
	bool report_running;
	bool report_from_start;
	uint32_t report_after;	/* last seq sent, or the request's N */
	uint32_t report_end;	/* newest seq when the request came */
	uint32_t report_count;
	uint32_t report_last;

	unsigned int hcp_busy_n;
	unsigned int hcp_storage_err_n;

	struct gw_sim_stats st;	/* the counters in it */
};

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
	       (uint32_t) p[3] << 24;
}

static inline uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t) get_le32(p) | (uint64_t) get_le32(p + 4) << 32;
}

static void put_le32(GByteArray *b, uint32_t v)
{
	uint8_t x[4] = { v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24 };

	g_byte_array_append(b, x, 4);
}

static void put_le64(GByteArray *b, uint64_t v)
{
	put_le32(b, (uint32_t) v);
	put_le32(b, (uint32_t) (v >> 32));
}

/* splitmix64 */
static uint64_t mix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* A uniform value in -range..range from the seed, a time and a salt. */
static int64_t noise(const GwSim *sim, int64_t t, unsigned int salt,
		     int64_t range)
{
	uint64_t r;

	if (range <= 0)
		return 0;
	r = mix64(sim->seed ^ mix64((uint64_t) t * 16 + salt));
	return (int64_t) (r % (uint64_t) (2 * range + 1)) - range;
}

/* ---- Flash ring --------------------------------------------------------------- */

static uint8_t *slot_at(const GwSim *sim, uint32_t i)
{
	return sim->slots + (size_t) ((sim->head + (uint64_t) i) % sim->capacity) *
			    SLOT_LEN;
}

static uint32_t slot_seq(const GwSim *sim, uint32_t i)
{
	return get_le32(slot_at(sim, i) + 1 + 2);
}

static bool flash_get(const GwSim *sim, uint32_t i, struct wb_record *rec)
{
	const uint8_t *s;
	size_t used;

	if (i >= sim->count)
		return false;
	s = slot_at(sim, i);
	return wb_record_decode(s + 1, s[0], rec, &used, NULL) == 0;
}

/* How many of the oldest records have seq up to n (serial order, 1.11):
 * also the index of the first record after n. */
static uint32_t flash_count_up_to(const GwSim *sim, uint32_t n)
{
	uint32_t first, dn, lo = 0, hi;

	if (sim->count == 0)
		return 0;
	first = slot_seq(sim, 0);
	dn = n - first;
	if (dn >= UINT32_C(0x80000000))
		return 0;	/* n is before the oldest */
	hi = sim->count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (slot_seq(sim, mid) - first <= dn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void flash_drop_oldest(GwSim *sim, uint32_t n)
{
	sim->head = (uint32_t) ((sim->head + (uint64_t) n) % sim->capacity);
	sim->count -= n;
	if (sim->count == 0)
		sim->head = 0;
}

static void flash_append(GwSim *sim, const uint8_t *enc, size_t len)
{
	uint8_t *s;

	if (sim->count == sim->capacity) {
		flash_drop_oldest(sim, 1);
		sim->st.overwritten++;
		sim->storage_full = true;
	}
	sim->count++;
	s = slot_at(sim, sim->count - 1);
	memset(s, 0, SLOT_LEN);
	s[0] = (uint8_t) len;
	memcpy(s + 1, enc, len);
}

/* ---- State file ------------------------------------------------------------ */

static const char state_magic[8] = { 'R', 'L', 'S', 'I', 'M', 'S', 'T', '1' };
#define STATE_VERSION            1u
#define STATE_HEADER_LEN         (8 + 4 * 6 + 4 + 8 * 6)
#define STATE_DIGEST_LEN         32

enum state_flag {
	SF_ANY_WRITTEN = 1u << 0,
	SF_CLOCK_SET = 1u << 1,
	SF_CLOCK_LOST = 1u << 2,
	SF_STORAGE_FULL = 1u << 3,
	SF_HAS_STATUS = 1u << 4,
};

static gboolean write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return FALSE;
		p += w;
		n -= (size_t) w;
	}
	return TRUE;
}

/* path.tmp, write, fsync, rename over path, fsync the directory. */
static gboolean write_atomic(const char *path, const uint8_t *data, size_t len,
			     GError **error)
{
	g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
	g_autofree char *dir = g_path_get_dirname(path);
	int fd, saved;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		saved = errno;
		g_set_error(error, GW_SIM_ERROR, GW_SIM_ERROR_IO,
			    "state file '%s': %s", tmp, g_strerror(saved));
		return FALSE;
	}
	if (!write_all(fd, data, len) || fsync(fd) < 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		g_set_error(error, GW_SIM_ERROR, GW_SIM_ERROR_IO,
			    "state file '%s': write: %s", tmp, g_strerror(saved));
		return FALSE;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		saved = errno;
		unlink(tmp);
		g_set_error(error, GW_SIM_ERROR, GW_SIM_ERROR_IO,
			    "state file '%s': rename: %s", path, g_strerror(saved));
		return FALSE;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return TRUE;
}

static gboolean state_write(GwSim *sim, uint32_t reserved, GError **error)
{
	g_autoptr(GByteArray) b = g_byte_array_sized_new(STATE_HEADER_LEN + 64 +
							 sim->count * SLOT_LEN);
	g_autoptr(GChecksum) ck = g_checksum_new(G_CHECKSUM_SHA256);
	uint8_t digest[STATE_DIGEST_LEN];
	gsize dlen = sizeof(digest);
	uint8_t st[SLOT_LEN];
	unsigned int flags = 0;
	ssize_t n = 0;

	if (!sim->state_path)
		return TRUE;
	if (sim->any_written)
		flags |= SF_ANY_WRITTEN;
	if (sim->clock_set)
		flags |= SF_CLOCK_SET;
	if (sim->clock_lost)
		flags |= SF_CLOCK_LOST;
	if (sim->storage_full)
		flags |= SF_STORAGE_FULL;
	if (sim->has_last_status) {
		n = wb_record_encode(&sim->last_status, st, sizeof(st));
		if (n > 0)
			flags |= SF_HAS_STATUS;
	}
	g_byte_array_append(b, (const uint8_t *) state_magic, sizeof(state_magic));
	put_le32(b, STATE_VERSION);
	put_le32(b, sim->capacity);
	put_le32(b, sim->next_seq);
	put_le32(b, reserved);
	put_le32(b, sim->last_seq);
	put_le32(b, flags);
	put_le32(b, sim->count);
	put_le64(b, (uint64_t) sim->t_s);
	put_le64(b, (uint64_t) sim->powerup_s);
	put_le64(b, (uint64_t) sim->clock_set_at_s);
	put_le64(b, (uint64_t) sim->clock_base_s);
	put_le64(b, (uint64_t) sim->battery_upct);
	put_le64(b, (uint64_t) sim->last_status_s);
	if (flags & SF_HAS_STATUS) {
		uint8_t l = (uint8_t) n;

		g_byte_array_append(b, &l, 1);
		g_byte_array_append(b, st, (guint) n);
	}
	for (uint32_t i = 0; i < sim->count; i++) {
		const uint8_t *s = slot_at(sim, i);

		g_byte_array_append(b, s, 1u + s[0]);
	}
	g_checksum_update(ck, b->data, b->len);
	g_checksum_get_digest(ck, digest, &dlen);
	g_byte_array_append(b, digest, STATE_DIGEST_LEN);
	if (!write_atomic(sim->state_path, b->data, b->len, error))
		return FALSE;
	sim->seq_reserved = reserved;
	sim->dirty = false;
	return TRUE;
}

G_GNUC_PRINTF(3, 4)
static gboolean state_err(GError **error, const char *path, const char *fmt, ...)
{
	va_list ap;
	g_autofree char *msg = NULL;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(error, GW_SIM_ERROR, GW_SIM_ERROR_STATE, "state file '%s': %s",
		    path, msg);
	return FALSE;
}

/* Reads one length-prefixed record at d[*pos] (bounds-checked). */
static bool state_take_record(const uint8_t *d, size_t len, size_t *pos,
			      struct wb_record *rec, const uint8_t **ret_enc)
{
	size_t used, l;

	if (*pos >= len)
		return false;
	l = d[*pos];
	if (l == 0 || l > SLOT_LEN - 1 || len - *pos - 1 < l)
		return false;
	if (wb_record_decode(d + *pos + 1, l, rec, &used, NULL) < 0 || used != l)
		return false;
	*ret_enc = d + *pos;
	*pos += 1 + l;
	return true;
}

/* Loads the state file; *ret_found false (and TRUE returned) if there is
 * none. */
static gboolean state_read(GwSim *sim, uint32_t want_capacity, bool *ret_found,
			   GError **error)
{
	g_autofree uint8_t *d = NULL;
	g_autoptr(GError) local = NULL;
	g_autoptr(GChecksum) ck = g_checksum_new(G_CHECKSUM_SHA256);
	uint8_t digest[STATE_DIGEST_LEN];
	gsize dlen = sizeof(digest), len = 0;
	const char *path = sim->state_path;
	uint32_t capacity, flags, count;
	size_t pos;

	*ret_found = false;
	if (!g_file_get_contents(path, (char **) &d, &len, &local)) {
		if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return TRUE;
		g_set_error(error, GW_SIM_ERROR, GW_SIM_ERROR_IO, "state file: %s",
			    local->message);
		return FALSE;
	}
	if (len < STATE_HEADER_LEN + STATE_DIGEST_LEN ||
	    memcmp(d, state_magic, sizeof(state_magic)) != 0)
		return state_err(error, path, "not a simulator state file");
	if (get_le32(d + 8) != STATE_VERSION)
		return state_err(error, path, "version %u, want %u",
				 get_le32(d + 8), STATE_VERSION);
	g_checksum_update(ck, d, len - STATE_DIGEST_LEN);
	g_checksum_get_digest(ck, digest, &dlen);
	if (memcmp(digest, d + len - STATE_DIGEST_LEN, STATE_DIGEST_LEN) != 0)
		return state_err(error, path, "checksum mismatch (torn or corrupt)");
	len -= STATE_DIGEST_LEN;

	capacity = get_le32(d + 12);
	if (capacity == 0 || capacity > SC_MAX_CAPACITY)
		return state_err(error, path, "capacity %u out of range", capacity);
	if (want_capacity && want_capacity != capacity)
		return state_err(error, path, "capacity %u, configured %u",
				 capacity, want_capacity);
	flags = get_le32(d + 28);
	count = get_le32(d + 32);
	if (count > capacity)
		return state_err(error, path, "%u records in a flash of %u", count,
				 capacity);

	sim->capacity = capacity;
	sim->slots = g_malloc0((size_t) capacity * SLOT_LEN);
	sim->next_seq = get_le32(d + 16);
	sim->seq_reserved = get_le32(d + 20);
	sim->last_seq = get_le32(d + 24);
	sim->any_written = flags & SF_ANY_WRITTEN;
	sim->clock_set = flags & SF_CLOCK_SET;
	sim->clock_lost = flags & SF_CLOCK_LOST;
	sim->storage_full = flags & SF_STORAGE_FULL;
	sim->t_s = (int64_t) get_le64(d + 36);
	sim->powerup_s = (int64_t) get_le64(d + 44);
	sim->clock_set_at_s = (int64_t) get_le64(d + 52);
	sim->clock_base_s = (int64_t) get_le64(d + 60);
	sim->battery_upct = (int64_t) get_le64(d + 68);
	sim->last_status_s = (int64_t) get_le64(d + 76);
	if (sim->t_s < 0 || sim->powerup_s < 0 || sim->powerup_s > sim->t_s ||
	    sim->t_s > INT64_MAX / GW_SIM_US_PER_S / 2 ||
	    sim->battery_upct < 0 || sim->battery_upct > 100 * UPCT ||
	    sim->last_status_s > sim->t_s)
		return state_err(error, path, "times or battery out of range");
	if (wb_seq_after(sim->next_seq, sim->seq_reserved))
		return state_err(error, path, "next seq %u after the reservation %u",
				 sim->next_seq, sim->seq_reserved);
	pos = STATE_HEADER_LEN;
	if (flags & SF_HAS_STATUS) {
		const uint8_t *enc;

		if (!state_take_record(d, len, &pos, &sim->last_status, &enc) ||
		    sim->last_status.type != WB_RECORD_STATUS)
			return state_err(error, path, "bad status record");
		sim->has_last_status = true;
	}
	for (uint32_t i = 0; i < count; i++) {
		struct wb_record rec;
		const uint8_t *enc;

		if (!state_take_record(d, len, &pos, &rec, &enc))
			return state_err(error, path, "record %u of %u is bad", i, count);
		if (i > 0 && !wb_seq_after(rec.seq, slot_seq(sim, i - 1)))
			return state_err(error, path, "record %u: seq %u not after %u",
					 i, rec.seq, slot_seq(sim, i - 1));
		if (wb_seq_after(rec.seq, sim->last_seq) ||
		    !wb_seq_after(sim->seq_reserved, rec.seq))
			return state_err(error, path, "record %u: seq %u beyond the counter",
					 i, rec.seq);
		flash_append(sim, enc + 1, enc[0]);
	}
	if (pos != len)
		return state_err(error, path, "%zu bytes left over", len - pos);
	sim->st.overwritten = 0;
	/* a restart resumes after every number that may have been used */
	sim->next_seq = sim->seq_reserved;
	*ret_found = true;
	return TRUE;
}

gboolean gw_sim_save(GwSim *sim, GError **error)
{
	uint32_t reserved;

	g_return_val_if_fail(sim, FALSE);
	reserved = sim->seq_reserved;
	if (wb_seq_after(sim->next_seq, reserved))
		reserved = sim->next_seq;
	return state_write(sim, reserved, error);
}

gboolean gw_sim_save_final(GwSim *sim, GError **error)
{
	g_return_val_if_fail(sim, FALSE);
	return state_write(sim, sim->next_seq, error);
}

bool gw_sim_is_dirty(const GwSim *sim)
{
	return sim && sim->dirty;
}

/* ---- Clock, battery, posture at a time ------------------------------------- */

static uint32_t clock_at(const GwSim *sim, int64_t t, enum wb_time_quality *ret_q)
{
	int64_t v;

	if (sim->clock_set) {
		*ret_q = t - sim->clock_set_at_s <= HOLDOVER_AFTER_S ?
				 WB_TIME_SYNCED : WB_TIME_HOLDOVER;
		v = sim->clock_base_s + (t - sim->clock_set_at_s);
	} else {
		*ret_q = WB_TIME_UNSYNCED;
		v = t - sim->powerup_s;
	}
	return (uint32_t) CLAMP(v, 0, (int64_t) UINT32_MAX);
}

uint32_t gw_sim_get_clock(const GwSim *sim, enum wb_time_quality *ret_q)
{
	enum wb_time_quality q;
	uint32_t v = clock_at(sim, sim->t_s, &q);

	if (ret_q)
		*ret_q = q;
	return v;
}

static unsigned int battery_pct(const GwSim *sim)
{
	return (unsigned int) (sim->battery_upct / UPCT);
}

static bool charging_at(const GwSim *sim, int64_t t, uint32_t *ret_rate)
{
	const struct sc_span *s;

	if (t < sim->ov_charge_until_s) {
		*ret_rate = sim->ov_charge_rate;
		return true;
	}
	s = span_at(sim->sc->spans[SC_SPAN_CHARGE], t);
	if (s)
		*ret_rate = s->u.rate_mpct_h;
	return s != NULL;
}

static bool fault_at(const GwSim *sim, int64_t t)
{
	return t < sim->ov_fault_until_s ||
	       span_at(sim->sc->spans[SC_SPAN_SENSOR_FAULT], t) != NULL;
}

static bool out_of_range_at(const GwSim *sim, int64_t t)
{
	return t < sim->oor_until_s ||
	       span_at(sim->sc->spans[SC_SPAN_OUT_OF_RANGE], t) != NULL;
}

static struct sc_posture posture_at(const GwSim *sim, int64_t t)
{
	const struct sc_span *s;

	if (t >= sim->ov_posture_from_s && t < sim->ov_posture_until_s)
		return sim->ov_posture;
	s = span_at(sim->sc->spans[SC_SPAN_POSTURE], t);
	return s ? s->u.posture : sim->sc->rest;
}

static uint8_t status_flags_at(const GwSim *sim, int64_t t)
{
	uint32_t rate;
	uint8_t f = 0;

	if (charging_at(sim, t, &rate))
		f |= WB_STATUS_CHARGING;
	if (fault_at(sim, t))
		f |= WB_STATUS_SENSOR_FAULT;
	if (sim->storage_full)
		f |= WB_STATUS_STORAGE_FULL;
	if (sim->clock_lost)
		f |= WB_STATUS_CLOCK_LOST;
	return f;
}

/* ---- tx queue --------------------------------------------------------------- */

static void tx_push(GwSim *sim, enum gw_sim_char ch, const uint8_t *data,
		   size_t len, unsigned int records)
{
	struct gw_sim_tx *tx;

	if (!sim->connected || !sim->notify[ch] || len > WB_ATT_MAX_VALUE)
		return;
	if (sim->txq.length >= TXQ_MAX) {
		g_free(g_queue_pop_head(&sim->txq));	/* a congested link drops */
	}
	tx = g_new(struct gw_sim_tx, 1);
	tx->ch = ch;
	tx->records = records;
	tx->len = len;
	memcpy(tx->data, data, len);
	g_queue_push_tail(&sim->txq, tx);
}

static void tx_clear(GwSim *sim)
{
	g_queue_clear_full(&sim->txq, g_free);
}

static enum gw_sim_char live_char(enum wb_record_type t)
{
	switch (t) {
	case WB_RECORD_POSTURE:
		return GW_SIM_CHAR_POSTURE;
	case WB_RECORD_STEPS:
		return GW_SIM_CHAR_STEPS;
	case WB_RECORD_PAIN:
		return GW_SIM_CHAR_PAIN;
	case WB_RECORD_STATUS:
		return GW_SIM_CHAR_STATUS;
	}
	return GW_SIM_CHAR_STATUS;
}

/* ---- Making records ---------------------------------------------------------- */

static void set_pending_error(GwSim *sim, GError *e)
{
	if (sim->pending_error)
		g_error_free(e);
	else
		sim->pending_error = e;
}

/* Gives rec the next seq and stores it; sends it live if subscribed. */
static void emit(GwSim *sim, struct wb_record *rec)
{
	uint8_t enc[SLOT_LEN];
	uint8_t batch[WB_BATCH_HEADER_LEN + SLOT_LEN];
	ssize_t n;

	if (sim->state_path && !wb_seq_after(sim->seq_reserved, sim->next_seq)) {
		GError *e = NULL;

		if (!state_write(sim, sim->next_seq + SEQ_RESERVE, &e))
			set_pending_error(sim, e);
	}
	rec->version = WB_RECORD_VERSION;
	rec->seq = sim->next_seq;
	n = wb_record_encode(rec, enc, sizeof(enc));
	if (n <= 0) {
		g_critical("sim: cannot encode a %s record: %s",
			   wb_record_type_name(rec->type), wb_strerror((int) n));
		return;
	}
	sim->next_seq++;
	flash_append(sim, enc, (size_t) n);
	sim->last_seq = rec->seq;
	sim->any_written = true;
	sim->dirty = true;
	sim->st.generated++;
	if (rec->type == WB_RECORD_STATUS) {
		sim->last_status = *rec;
		sim->has_last_status = true;
	}
	if (sim->on_record)
		sim->on_record(rec, sim->on_record_data);
	n = wb_batch_encode(rec, 1, batch, sizeof(batch));
	if (n > 0)
		tx_push(sim, live_char(rec->type), batch, (size_t) n, 1);
}

static void make_status(GwSim *sim, int64_t t)
{
	struct wb_record rec = { .type = WB_RECORD_STATUS };

	rec.time = clock_at(sim, t, &rec.time_quality);
	rec.u.status.battery_pct = (uint8_t) battery_pct(sim);
	rec.u.status.storage_pct =
		(uint8_t) ((uint64_t) sim->count * 100 / sim->capacity);
	rec.u.status.flags = status_flags_at(sim, t);
	rec.u.status.uptime_s = (uint32_t) CLAMP(t - sim->powerup_s, 0,
						 (int64_t) UINT32_MAX);
	emit(sim, &rec);
	sim->last_status_s = t;
	sim->boot_status_pending = false;
}

static void status_check(GwSim *sim, int64_t t)
{
	if (sim->boot_status_pending || !sim->has_last_status ||
	    status_flags_at(sim, t) != sim->last_status.u.status.flags ||
	    ABS((int) battery_pct(sim) - (int) sim->last_status.u.status.battery_pct) >= 5 ||
	    t - sim->last_status_s >= STATUS_EVERY_S)
		make_status(sim, t);
}

static void battery_notify(GwSim *sim)
{
	uint8_t pct = (uint8_t) battery_pct(sim);

	if (pct == sim->battery_notified)
		return;
	sim->battery_notified = pct;
	tx_push(sim, GW_SIM_CHAR_BATTERY, &pct, 1, 0);
}

/* Runs the battery from t_s to t (rates are constant in between: charge
 * span edges are step times). */
static void battery_to(GwSim *sim, int64_t t)
{
	int64_t dt = t - sim->t_s, rate;
	uint32_t crate;

	if (dt <= 0)
		return;
	if (charging_at(sim, sim->t_s, &crate))
		rate = (int64_t) crate * 1000;		/* µ%/h */
	else
		rate = -(int64_t) sim->sc->drain_mpct_h * 1000;
	sim->battery_upct += rate * dt / 3600;
	sim->battery_upct = CLAMP(sim->battery_upct, 0, 100 * UPCT);
}

static void make_posture(GwSim *sim, int64_t end)
{
	uint16_t p = sim->sc->posture_period_s;
	int64_t start = end - p;
	struct sc_posture pp = posture_at(sim, start + p / 2);
	struct wb_record rec = { .type = WB_RECORD_POSTURE };
	int64_t flex = pp.flexion_ddeg, tilt = pp.tilt_ddeg;
	uint32_t clock;

	if (fault_at(sim, start + p / 2)) {
		pp.cls = WB_POSTURE_UNKNOWN;
		flex = tilt = 0;
	} else {
		flex += noise(sim, start, 1, pp.jitter_ddeg);
		tilt += noise(sim, start, 2, pp.jitter_ddeg / 2);
	}
	clock = clock_at(sim, end, &rec.time_quality);
	rec.time = clock >= p ? clock - p : 0;
	rec.u.posture.flexion_ddeg = (int16_t) CLAMP(flex, WB_ANGLE_MIN, WB_ANGLE_MAX);
	rec.u.posture.tilt_ddeg = (int16_t) CLAMP(tilt, WB_TILT_MIN, WB_TILT_MAX);
	rec.u.posture.cls = pp.cls;
	rec.u.posture.duration_s = p;
	emit(sim, &rec);
}

static void make_steps(GwSim *sim, int64_t end)
{
	uint16_t p = sim->sc->steps_period_s;
	int64_t start = end - p, milli = 0, steps;
	struct wb_record rec = { .type = WB_RECORD_STEPS };
	uint32_t clock;

	for (int64_t s = start; s < end; s++)	/* cadence is per minute */
		milli += posture_at(sim, s).cadence * 1000 / 60;
	steps = milli / 1000;
	if (steps > 0)
		steps += steps * noise(sim, start, 3, 50) / 1000;	/* ±5 % */
	steps = CLAMP(steps, 0, (int64_t) p * WB_STEPS_MAX_PER_S);
	clock = clock_at(sim, end, &rec.time_quality);
	rec.time = clock >= p ? clock - p : 0;
	rec.u.steps.steps = (uint16_t) steps;
	rec.u.steps.duration_s = p;
	emit(sim, &rec);
}

static void make_pain(GwSim *sim, int64_t t, uint8_t score, uint16_t flags)
{
	struct wb_record rec = { .type = WB_RECORD_PAIN };

	rec.time = clock_at(sim, t, &rec.time_quality);
	rec.u.pain.score = score;
	rec.u.pain.flags = flags;
	emit(sim, &rec);
}

static void sim_drop_link(GwSim *sim);

static void power_up(GwSim *sim, int64_t t)
{
	sim->powerup_s = t;
	sim->next_posture_s = t + sim->sc->posture_period_s;
	sim->next_steps_s = t + sim->sc->steps_period_s;
	sim->boot_status_pending = true;
}

static void reboot_at(GwSim *sim, int64_t t)
{
	sim_drop_link(sim);
	sim->clock_set = false;
	sim->clock_lost = true;
	power_up(sim, t);
	sim->dirty = true;
}

static void set_battery(GwSim *sim, unsigned int pct)
{
	sim->battery_upct = (int64_t) MIN(pct, 100u) * UPCT;
	sim->dirty = true;
	battery_notify(sim);
}

static void apply_instant(GwSim *sim, const struct sc_instant *in, int64_t t)
{
	switch (in->kind) {
	case SC_INSTANT_PAIN:
		make_pain(sim, t, in->score, in->flags);
		break;
	case SC_INSTANT_BATTERY:
		set_battery(sim, in->pct);
		break;
	case SC_INSTANT_REBOOT:
		reboot_at(sim, t);
		break;
	}
}

static int64_t next_time(const GwSim *sim)
{
	const GwSimScenario *sc = sim->sc;
	int64_t t = MIN(sim->next_posture_s, sim->next_steps_s);

	if (sim->boot_status_pending)
		return sim->t_s;
	if (sim->next_instant < sc->instants->len)
		t = MIN(t, g_array_index(sc->instants, struct sc_instant,
					 sim->next_instant).time_s);
	t = MIN(t, span_next_edge(sc->spans[SC_SPAN_CHARGE], sim->t_s));
	t = MIN(t, span_next_edge(sc->spans[SC_SPAN_SENSOR_FAULT], sim->t_s));
	t = MIN(t, span_next_edge(sc->spans[SC_SPAN_OUT_OF_RANGE], sim->t_s));
	if (sim->ov_charge_until_s > sim->t_s)
		t = MIN(t, sim->ov_charge_until_s);
	if (sim->ov_fault_until_s > sim->t_s)
		t = MIN(t, sim->ov_fault_until_s);
	if (sim->oor_until_s > sim->t_s && sim->oor_until_s != INT64_MAX)
		t = MIN(t, sim->oor_until_s);
	t = MIN(t, sim->last_status_s + STATUS_EVERY_S);
	return t;
}

static void step(GwSim *sim, int64_t t)
{
	const GArray *inst = sim->sc->instants;

	battery_to(sim, t);
	sim->t_s = t;
	battery_notify(sim);
	if (t == sim->next_posture_s) {
		make_posture(sim, t);
		sim->next_posture_s += sim->sc->posture_period_s;
	}
	if (t == sim->next_steps_s) {
		make_steps(sim, t);
		sim->next_steps_s += sim->sc->steps_period_s;
	}
	while (sim->next_instant < inst->len &&
	       g_array_index(inst, struct sc_instant, sim->next_instant).time_s <= t) {
		const struct sc_instant *in =
			&g_array_index(inst, struct sc_instant, sim->next_instant);

		sim->next_instant++;
		apply_instant(sim, in, t);
	}
	status_check(sim, t);
	if (sim->connected && out_of_range_at(sim, t))
		sim_drop_link(sim);
}

gboolean gw_sim_advance(GwSim *sim, int64_t now_us, GError **error)
{
	int64_t target;

	g_return_val_if_fail(sim, FALSE);
	if (now_us > sim->now_us || sim->boot_status_pending) {
		target = MAX(now_us, sim->now_us) / GW_SIM_US_PER_S;
		for (;;) {
			int64_t t = next_time(sim);

			if (t > target)
				break;
			step(sim, t);
		}
		battery_to(sim, target);
		sim->t_s = target;
		sim->now_us = MAX(now_us, sim->now_us);
		battery_notify(sim);
		if (sim->connected && out_of_range_at(sim, target))
			sim_drop_link(sim);
	}
	if (sim->pending_error) {
		g_propagate_error(error, g_steal_pointer(&sim->pending_error));
		return FALSE;
	}
	return TRUE;
}

int64_t gw_sim_get_time(const GwSim *sim)
{
	return sim ? sim->now_us : 0;
}

/* ---- Creation --------------------------------------------------------------- */

GwSim *gw_sim_new(const struct gw_sim_config *cfg, GwSimScenario *sc,
		  int64_t now_us, GError **error)
{
	static const struct gw_sim_config defaults = { 0 };
	g_autoptr(GwSim) sim = g_new0(GwSim, 1);
	bool found = false;

	g_return_val_if_fail(sc, NULL);
	if (!cfg)
		cfg = &defaults;
	if (cfg->capacity > SC_MAX_CAPACITY) {
		g_set_error(error, GW_SIM_ERROR, GW_SIM_ERROR_INVALID,
			    "capacity %u above %u", cfg->capacity, SC_MAX_CAPACITY);
		return NULL;
	}
	sim->sc = gw_sim_scenario_ref(sc);
	sim->seed = sc->has_seed ? sc->seed : cfg->seed;
	sim->serial = g_strdup(cfg->serial ? cfg->serial : "RL-SIM-0001");
	sim->state_path = g_strdup(cfg->state_path);
	sim->on_record = cfg->on_record;
	sim->on_record_data = cfg->on_record_data;
	sim->mtu = 23;
	g_queue_init(&sim->txq);

	if (sim->state_path && !state_read(sim, cfg->capacity, &found, error))
		return NULL;
	if (found) {
		/* continue the schedule where the saved wearable stopped */
		int64_t up = sim->t_s - sim->powerup_s;
		uint16_t pp = sc->posture_period_s, sp = sc->steps_period_s;

		sim->next_posture_s = sim->powerup_s + (up / pp + 1) * pp;
		sim->next_steps_s = sim->powerup_s + (up / sp + 1) * sp;
		while (sim->next_instant < sc->instants->len &&
		       g_array_index(sc->instants, struct sc_instant,
				     sim->next_instant).time_s <= sim->t_s)
			sim->next_instant++;
		sim->now_us = sim->t_s * GW_SIM_US_PER_S;
	} else {
		sim->capacity = cfg->capacity ? cfg->capacity : sc->capacity;
		sim->slots = g_malloc0((size_t) sim->capacity * SLOT_LEN);
		sim->next_seq = sim->seq_reserved = sc->seq_start;
		sim->battery_upct = (int64_t) sc->battery_pct * UPCT;
		if (sc->clock_synced) {
			sim->clock_set = true;
			sim->clock_set_at_s = 0;
			sim->clock_base_s = sc->date_unix - WB_EPOCH_UNIX;
		}
		power_up(sim, 0);
		sim->now_us = 0;
		sim->dirty = true;
	}
	sim->battery_notified = battery_pct(sim);
	(void) now_us;	/* the first gw_sim_advance catches up to it */
	return g_steal_pointer(&sim);
}

void gw_sim_free(GwSim *sim)
{
	if (!sim)
		return;
	tx_clear(sim);
	g_clear_pointer(&sim->sc, gw_sim_scenario_unref);
	g_clear_error(&sim->pending_error);
	g_free(sim->slots);
	g_free(sim->state_path);
	g_free(sim->serial);
	g_free(sim);
}

/* ---- Run-time events ----------------------------------------------------------- */

void gw_sim_reboot(GwSim *sim)
{
	g_return_if_fail(sim);
	reboot_at(sim, sim->t_s);
	status_check(sim, sim->t_s);
}

void gw_sim_set_out_of_range(GwSim *sim, int64_t until_us)
{
	g_return_if_fail(sim);
	if (until_us <= 0) {
		sim->oor_until_s = 0;
		return;
	}
	sim->oor_until_s = until_us == INT64_MAX ? INT64_MAX :
						   until_us / GW_SIM_US_PER_S;
	if (sim->connected && out_of_range_at(sim, sim->t_s))
		sim_drop_link(sim);
}

bool gw_sim_in_range(const GwSim *sim)
{
	return sim && !out_of_range_at(sim, sim->t_s);
}

gboolean gw_sim_apply(GwSim *sim, const char *statement, GError **error)
{
	g_autoptr(GwSimScenario) sc = NULL;
	struct what wh;
	struct parser p = { .filename = "apply", .line = 1 };
	g_auto(GStrv) words = NULL;
	char *w[SC_MAX_WORDS];
	unsigned int n = 0;

	g_return_val_if_fail(sim && statement, FALSE);
	sc = scenario_alloc();
	p.sc = sc;
	sc->charge_mpct_h = sim->sc->charge_mpct_h;
	words = g_strsplit_set(statement, " \t", -1);
	for (char **s = words; *s && n < SC_MAX_WORDS; s++)
		if (**s)
			w[n++] = *s;
	if (n == 0) {
		g_set_error(error, GW_SIM_ERROR, GW_SIM_ERROR_INVALID, "empty statement");
		return FALSE;
	}
	if (parse_what(&p, w, n, &wh, error) < 0) {
		if (error && *error)
			(*error)->code = GW_SIM_ERROR_INVALID;
		return FALSE;
	}
	if (!wh.is_span) {
		apply_instant(sim, &wh.instant, sim->t_s);
	} else {
		int64_t until = sim->t_s + wh.dur_s;

		switch (wh.span_kind) {
		case SC_SPAN_POSTURE:
			sim->ov_posture = wh.span.u.posture;
			sim->ov_posture_from_s = sim->t_s;
			sim->ov_posture_until_s = until;
			break;
		case SC_SPAN_CHARGE:
			sim->ov_charge_rate = wh.span.u.rate_mpct_h;
			sim->ov_charge_until_s = until;
			break;
		case SC_SPAN_OUT_OF_RANGE:
			gw_sim_set_out_of_range(sim, until * GW_SIM_US_PER_S);
			break;
		case SC_SPAN_SENSOR_FAULT:
			sim->ov_fault_until_s = until;
			break;
		}
	}
	status_check(sim, sim->t_s);
	return TRUE;
}

/* ---- The link and the GATT server -------------------------------------------------- */

static void sim_drop_link(GwSim *sim)
{
	if (!sim->connected)
		return;
	sim->connected = false;
	sim->report_running = false;
	tx_clear(sim);
	memset(sim->notify, 0, sizeof(sim->notify));
}

void gw_sim_connect(GwSim *sim, unsigned int mtu)
{
	g_return_if_fail(sim);
	sim_drop_link(sim);
	sim->connected = true;
	sim->mtu = CLAMP(mtu, 23u, 517u);
}

void gw_sim_disconnect(GwSim *sim)
{
	g_return_if_fail(sim);
	sim_drop_link(sim);
}

bool gw_sim_is_connected(const GwSim *sim)
{
	return sim && sim->connected;
}

unsigned int gw_sim_get_mtu(const GwSim *sim)
{
	return sim ? sim->mtu : 0;
}

void gw_sim_set_mtu(GwSim *sim, unsigned int mtu)
{
	g_return_if_fail(sim);
	sim->mtu = CLAMP(mtu, 23u, 517u);
}

void gw_sim_set_notify(GwSim *sim, enum gw_sim_char ch, bool on)
{
	g_return_if_fail(sim && char_valid(ch));
	if (!sim->connected)
		return;
	sim->notify[ch] = on && (chars[ch].props & (P_N | P_I));
}

bool gw_sim_get_notify(const GwSim *sim, enum gw_sim_char ch)
{
	return sim && char_valid(ch) && sim->notify[ch];
}

void gw_sim_get_features(const GwSim *sim, struct wb_features *ret_f)
{
	memset(ret_f, 0, sizeof(*ret_f));
	ret_f->protocol_version = WB_PROTOCOL_VERSION;
	ret_f->flags = WB_FEATURE_HISTORY | WB_FEATURE_TIME_SET |
		       WB_FEATURE_PAIN_ENTRY | WB_FEATURE_STEPS | WB_FEATURE_POSTURE;
	ret_f->posture_period_s = sim->sc->posture_period_s;
	ret_f->steps_period_s = sim->sc->steps_period_s;
	ret_f->capacity = sim->capacity;
	ret_f->stored = sim->count;
	ret_f->first_seq = sim->count ? slot_seq(sim, 0) : 0;
	ret_f->last_seq = sim->any_written ? sim->last_seq : 0;
}

static size_t put_string(const char *s, uint8_t *buf, size_t size)
{
	size_t n = MIN(strlen(s), MIN(size, (size_t) WB_DEVINFO_MAX));

	memcpy(buf, s, n);
	return n;
}

int gw_sim_read(GwSim *sim, enum gw_sim_char ch, uint8_t *buf, size_t size,
		size_t *ret_len)
{
	ssize_t n = -1;

	g_return_val_if_fail(sim && buf && ret_len, GW_SIM_ATT_READ_NOT_PERMITTED);
	if (!char_valid(ch))
		return GW_SIM_ATT_READ_NOT_PERMITTED;
	switch (ch) {
	case GW_SIM_CHAR_POSTURE:
	case GW_SIM_CHAR_STEPS:
	case GW_SIM_CHAR_PAIN:
	case GW_SIM_CHAR_HISTORY_CP:
	case GW_SIM_CHAR_HISTORY_DATA:
		return GW_SIM_ATT_READ_NOT_PERMITTED;
	case GW_SIM_CHAR_FEATURES: {
		struct wb_features f;

		gw_sim_get_features(sim, &f);
		n = wb_features_encode(&f, buf, size);
		break;
	}
	case GW_SIM_CHAR_STATUS:
		if (!sim->has_last_status)
			make_status(sim, sim->t_s);
		n = wb_batch_encode(&sim->last_status, 1, buf, size);
		break;
	case GW_SIM_CHAR_BATTERY:
		if (size < 1)
			break;
		buf[0] = (uint8_t) battery_pct(sim);
		n = 1;
		break;
	case GW_SIM_CHAR_MANUFACTURER:
		n = (ssize_t) put_string("rehablink project", buf, size);
		break;
	case GW_SIM_CHAR_MODEL:
		n = (ssize_t) put_string("RL-W1 (simulated)", buf, size);
		break;
	case GW_SIM_CHAR_SERIAL:
		n = (ssize_t) put_string(sim->serial, buf, size);
		break;
	case GW_SIM_CHAR_HARDWARE_REV:
		n = (ssize_t) put_string("sim", buf, size);
		break;
	case GW_SIM_CHAR_FIRMWARE_REV:
		n = (ssize_t) put_string("1.0.0-sim", buf, size);
		break;
	case GW_SIM_CHAR_SOFTWARE_REV:
		n = (ssize_t) put_string("rehablink-sim 1", buf, size);
		break;
	case GW_SIM_CHAR_CURRENT_TIME: {
		struct wb_current_time ct;
		enum wb_time_quality q;
		uint32_t v = clock_at(sim, sim->t_s, &q);

		/* unsynced: an RTC that started at 2000-01-01 on power-up */
		if (wb_current_time_from_unix(WB_EPOCH_UNIX + v, &ct) < 0)
			break;
		ct.adjust_reason = q == WB_TIME_UNSYNCED ? 0 : ct.adjust_reason;
		n = wb_current_time_encode(&ct, buf, size);
		break;
	}
	}
	if (n < 0)
		return GW_SIM_ATT_INVALID_LENGTH;
	*ret_len = (size_t) n;
	return 0;
}

static void hcp_respond(GwSim *sim, uint8_t request, enum wb_hcp_code code,
			uint32_t count, uint32_t last)
{
	struct wb_hcp_response rsp = {
		.opcode = WB_HCP_RESPONSE_CODE,
		.request = (enum wb_hcp_opcode) request,
		.code = code,
		.count = count,
		.last_seq = last,
	};
	uint8_t buf[16];
	ssize_t n = wb_hcp_response_encode(&rsp, buf, sizeof(buf));

	if (n < 0) {
		/* an unknown request opcode, echoed as RACP does */
		buf[0] = WB_HCP_RESPONSE_CODE;
		buf[1] = request;
		buf[2] = (uint8_t) code;
		memset(buf + 3, 0, 8);
		n = 11;
	}
	tx_push(sim, GW_SIM_CHAR_HISTORY_CP, buf, (size_t) n, 0);
}

static void hcp_count_response(GwSim *sim, uint32_t count)
{
	struct wb_hcp_response rsp = { .opcode = WB_HCP_COUNT_RESPONSE,
				       .count = count };
	uint8_t buf[8];
	ssize_t n = wb_hcp_response_encode(&rsp, buf, sizeof(buf));

	if (n > 0)
		tx_push(sim, GW_SIM_CHAR_HISTORY_CP, buf, (size_t) n, 0);
}

static void report_finish(GwSim *sim, enum wb_hcp_code code)
{
	sim->report_running = false;
	if (code == WB_HCP_SUCCESS && sim->report_count == 0)
		code = WB_HCP_NO_RECORDS;
	hcp_respond(sim, WB_HCP_REPORT_RECORDS, code, sim->report_count,
		    sim->report_last);
}

static int hcp_write(GwSim *sim, const uint8_t *val, size_t len)
{
	struct wb_hcp_request req;
	uint8_t op;
	uint32_t k;

	if (!sim->notify[GW_SIM_CHAR_HISTORY_CP])
		return GW_SIM_ATT_CCC_IMPROPER;
	if (len == 0)
		return GW_SIM_ATT_INVALID_LENGTH;
	op = val[0];
	sim->st.hcp_requests++;
	if (op < WB_HCP_REPORT_COUNT || op > WB_HCP_ABORT) {
		hcp_respond(sim, op, WB_HCP_OPCODE_NOT_SUPPORTED, 0, 0);
		return 0;
	}
	if (wb_hcp_request_decode(val, len, &req, NULL) < 0) {
		hcp_respond(sim, op, WB_HCP_INVALID_FILTER, 0, 0);
		return 0;
	}
	if (req.opcode == WB_HCP_ABORT) {
		if (!sim->report_running) {
			hcp_respond(sim, op, WB_HCP_ABORT_FAILED, 0, 0);
			return 0;
		}
		report_finish(sim, WB_HCP_ABORTED);
		hcp_respond(sim, op, WB_HCP_SUCCESS, 0, 0);
		return 0;
	}
	if (req.opcode == WB_HCP_REPORT_RECORDS &&
	    !sim->notify[GW_SIM_CHAR_HISTORY_DATA])
		return GW_SIM_ATT_CCC_IMPROPER;
	if (sim->report_running || sim->hcp_busy_n) {
		if (!sim->report_running)
			sim->hcp_busy_n--;
		hcp_respond(sim, op, WB_HCP_BUSY, 0, 0);
		return 0;
	}
	switch (req.opcode) {
	case WB_HCP_REPORT_COUNT:
		k = req.filter == WB_HCP_ALL ? 0 : flash_count_up_to(sim, req.seq);
		hcp_count_response(sim, sim->count - k);
		return 0;
	case WB_HCP_REPORT_RECORDS:
		if (sim->hcp_storage_err_n) {
			sim->hcp_storage_err_n--;
			hcp_respond(sim, op, WB_HCP_STORAGE_ERROR, 0, 0);
			return 0;
		}
		k = req.filter == WB_HCP_ALL ? 0 : flash_count_up_to(sim, req.seq);
		if (k == sim->count) {
			hcp_respond(sim, op, WB_HCP_NO_RECORDS, 0, 0);
			return 0;
		}
		sim->report_running = true;
		sim->report_from_start = req.filter == WB_HCP_ALL;
		sim->report_after = req.seq;
		sim->report_end = slot_seq(sim, sim->count - 1);
		sim->report_count = 0;
		sim->report_last = 0;
		return 0;
	case WB_HCP_DELETE_RECORDS: {
		uint32_t last;

		sim->st.deletes++;
		if (sim->hcp_storage_err_n) {
			sim->hcp_storage_err_n--;
			hcp_respond(sim, op, WB_HCP_STORAGE_ERROR, 0, 0);
			return 0;
		}
		k = flash_count_up_to(sim, req.seq);
		if (k == 0) {
			hcp_respond(sim, op, WB_HCP_NO_RECORDS, 0, 0);
			return 0;
		}
		last = slot_seq(sim, k - 1);
		flash_drop_oldest(sim, k);
		sim->st.deleted += k;
		sim->dirty = true;
		if (sim->storage_full && sim->count < sim->capacity)
			sim->storage_full = false;
		hcp_respond(sim, op, WB_HCP_SUCCESS, k, last);
		status_check(sim, sim->t_s);
		return 0;
	}
	case WB_HCP_ABORT:
	case WB_HCP_COUNT_RESPONSE:
	case WB_HCP_RESPONSE_CODE:
		break;
	}
	hcp_respond(sim, op, WB_HCP_OPCODE_NOT_SUPPORTED, 0, 0);
	return 0;
}

static int time_write(GwSim *sim, const uint8_t *val, size_t len)
{
	struct wb_current_time ct;
	int64_t unix_s;
	int rc = wb_current_time_decode(val, len, &ct, NULL);

	if (rc == -EMSGSIZE || rc == -EBADMSG)
		return GW_SIM_ATT_INVALID_LENGTH;
	if (rc < 0 || wb_current_time_to_unix(&ct, &unix_s) < 0 ||
	    unix_s < WB_EPOCH_UNIX || unix_s - WB_EPOCH_UNIX > (int64_t) UINT32_MAX)
		return GW_SIM_ATT_VALUE_NOT_ALLOWED;
	sim->clock_set = true;
	sim->clock_set_at_s = sim->t_s;
	sim->clock_base_s = unix_s - WB_EPOCH_UNIX;
	sim->clock_lost = false;
	sim->dirty = true;
	sim->st.time_writes++;
	status_check(sim, sim->t_s);
	return 0;
}

int gw_sim_write(GwSim *sim, enum gw_sim_char ch, const uint8_t *val, size_t len)
{
	g_return_val_if_fail(sim && (val || len == 0), GW_SIM_ATT_WRITE_NOT_PERMITTED);
	if (!char_valid(ch))
		return GW_SIM_ATT_WRITE_NOT_PERMITTED;
	switch (ch) {
	case GW_SIM_CHAR_HISTORY_CP:
		return hcp_write(sim, val, len);
	case GW_SIM_CHAR_CURRENT_TIME:
		return time_write(sim, val, len);
	case GW_SIM_CHAR_POSTURE:
	case GW_SIM_CHAR_STEPS:
	case GW_SIM_CHAR_PAIN:
	case GW_SIM_CHAR_HISTORY_DATA:
	case GW_SIM_CHAR_FEATURES:
	case GW_SIM_CHAR_STATUS:
	case GW_SIM_CHAR_BATTERY:
	case GW_SIM_CHAR_MANUFACTURER:
	case GW_SIM_CHAR_MODEL:
	case GW_SIM_CHAR_SERIAL:
	case GW_SIM_CHAR_HARDWARE_REV:
	case GW_SIM_CHAR_FIRMWARE_REV:
	case GW_SIM_CHAR_SOFTWARE_REV:
		break;
	}
	return GW_SIM_ATT_WRITE_NOT_PERMITTED;
}

/* The next batch of the running report, or its final response. */
static bool report_next(GwSim *sim, struct gw_sim_tx *tx)
{
	struct wb_record recs[WB_BATCH_MAX];
	size_t n = 0, k;
	uint32_t i;
	ssize_t len;

	if (!sim->notify[GW_SIM_CHAR_HISTORY_DATA]) {
		report_finish(sim, WB_HCP_ABORTED);
		return false;
	}
	i = sim->report_from_start ? 0 : flash_count_up_to(sim, sim->report_after);
	for (; i < sim->count && n < WB_BATCH_MAX; i++) {
		if (wb_seq_after(slot_seq(sim, i), sim->report_end))
			break;
		if (!flash_get(sim, i, &recs[n]))
			continue;
		n++;
	}
	if (n == 0) {
		report_finish(sim, WB_HCP_SUCCESS);
		return false;
	}
	k = wb_batch_fit(recs, n, MIN(sim->mtu - 3u, (unsigned int) WB_ATT_MAX_VALUE));
	if (k == 0)
		k = 1;	/* an MTU too small for one record: send it anyway */
	len = wb_batch_encode(recs, k, tx->data, sizeof(tx->data));
	if (len < 0) {
		report_finish(sim, WB_HCP_STORAGE_ERROR);
		return false;
	}
	tx->ch = GW_SIM_CHAR_HISTORY_DATA;
	tx->len = (size_t) len;
	tx->records = (unsigned int) k;
	sim->report_from_start = false;
	sim->report_after = recs[k - 1].seq;
	sim->report_count += (uint32_t) k;
	sim->report_last = recs[k - 1].seq;
	sim->st.history_sent += k;
	return true;
}

bool gw_sim_pop_tx(GwSim *sim, struct gw_sim_tx *ret_tx)
{
	struct gw_sim_tx *tx;

	g_return_val_if_fail(sim && ret_tx, false);
	for (;;) {
		tx = g_queue_pop_head(&sim->txq);
		if (tx) {
			*ret_tx = *tx;
			g_free(tx);
			return true;
		}
		if (!sim->report_running || !sim->connected)
			return false;
		if (report_next(sim, ret_tx))
			return true;
		/* the report ended: its response is queued now */
	}
}

bool gw_sim_has_tx(const GwSim *sim)
{
	return sim && (sim->txq.length > 0 ||
		       (sim->report_running && sim->connected));
}

void __gw_sim_set_hcp_busy(GwSim *sim, unsigned int n)
{
	g_return_if_fail(sim);
	sim->hcp_busy_n = n;
}

void __gw_sim_set_hcp_storage_error(GwSim *sim, unsigned int n)
{
	g_return_if_fail(sim);
	sim->hcp_storage_err_n = n;
}

/* ---- Inspection -------------------------------------------------------------- */

void gw_sim_get_stats(const GwSim *sim, struct gw_sim_stats *ret)
{
	g_return_if_fail(sim && ret);
	*ret = sim->st;
	ret->capacity = sim->capacity;
	ret->stored = sim->count;
	ret->first_seq = sim->count ? slot_seq(sim, 0) : 0;
	ret->last_seq = sim->any_written ? sim->last_seq : 0;
	ret->next_seq = sim->next_seq;
	ret->battery_pct = battery_pct(sim);
	ret->status_flags = status_flags_at(sim, sim->t_s);
	(void) clock_at(sim, sim->t_s, &ret->time_quality);
	ret->uptime_s = (uint32_t) (sim->t_s - sim->powerup_s);
	ret->time_us = sim->now_us;
	ret->report_running = sim->report_running;
}

bool gw_sim_get_record(const GwSim *sim, uint32_t i, struct wb_record *ret_rec)
{
	return sim && ret_rec && flash_get(sim, i, ret_rec);
}

char *gw_sim_record_to_string(const struct wb_record *rec)
{
	switch (rec->type) {
	case WB_RECORD_POSTURE: {
		const struct wb_posture *p = &rec->u.posture;

		return g_strdup_printf("posture  %-8s flexion %6.1f tilt %5.1f %us",
				       wb_posture_class_name(p->cls),
				       p->flexion_ddeg / 10.0, p->tilt_ddeg / 10.0,
				       p->duration_s);
	}
	case WB_RECORD_STEPS:
		return g_strdup_printf("steps    %u in %us", rec->u.steps.steps,
				       rec->u.steps.duration_s);
	case WB_RECORD_PAIN: {
		g_autoptr(GString) s = g_string_new(NULL);

		g_string_printf(s, "pain     %u", rec->u.pain.score);
		if (rec->u.pain.flags) {
			bool first = true;

			g_string_append(s, " flags ");
			for (size_t i = 0; i < ARRAY_SIZE(pain_flags); i++) {
				if (!(rec->u.pain.flags & pain_flags[i].bit))
					continue;
				g_string_append_printf(s, "%s%s", first ? "" : ",",
						       pain_flags[i].name);
				first = false;
			}
		}
		if (rec->u.pain.flags & WB_PAIN_RED_FLAGS)
			g_string_append(s, " RED FLAG");
		return g_string_free(g_steal_pointer(&s), FALSE);
	}
	case WB_RECORD_STATUS: {
		const struct wb_status *st = &rec->u.status;

		return g_strdup_printf("status   battery %u%% storage %u%% flags %s%s%s%s%s uptime %u",
				       st->battery_pct, st->storage_pct,
				       st->flags ? "" : "-",
				       st->flags & WB_STATUS_CHARGING ? "charging " : "",
				       st->flags & WB_STATUS_SENSOR_FAULT ? "sensor-fault " : "",
				       st->flags & WB_STATUS_STORAGE_FULL ? "storage-full " : "",
				       st->flags & WB_STATUS_CLOCK_LOST ? "clock-lost " : "",
				       st->uptime_s);
	}
	}
	return g_strdup("unknown record");
}
