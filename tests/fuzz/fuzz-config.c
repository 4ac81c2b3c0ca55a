// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: rehablinkd's config loader from a buffer,
 * gw_config_load_data() (gateway/config.[ch]).
 *
 * Invariants:
 *  - never NULL; either gw_config_ok() or at least one error, every finding
 *    one line naming the file ("fuzz.conf: ...");
 *  - when ok: every integer key (the table of gw_config_keys() and the
 *    [rules] table of gw_rules_config_keys()) is inside its range, both as
 *    text (gw_config_value) and in struct gw_gateway_config; ids, addresses,
 *    choices and the date are canonical; the rules pass their own
 *    validation; aliases match the wearables one to one;
 *  - findings naming a personal key ([gateway] patient, [ble] wearables,
 *    [mqtt] username/password) never echo its value (config.c promises
 *    "never echoed in findings");
 *  - loading twice gives the same findings and values; writing the
 *    effective values back out (GKeyFile) and loading that gives the same
 *    values and an empty gw_config_diff();
 *  - no leaks (LeakSanitizer).
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -Iproto -Igateway \
 *     -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *     $(pkg-config --cflags glib-2.0 json-glib-1.0) tests/fuzz/fuzz-config.c \
 *     gateway/config.c gateway/rules.c gateway/clock.c \
 *     $(pkg-config --libs glib-2.0) -o fuzz-config
 *   ./fuzz-config -dict=tests/fuzz/config.dict tests/fuzz/corpus/config
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#define FILE_NAME "fuzz.conf"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz-config: invariant broken: %s\n", what);
		abort();
	}
}

static bool id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n < 1 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!g_ascii_isalnum(s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

static bool addr_ok(const char *s)
{
	if (!s || strlen(s) != 17)
		return false;
	for (size_t i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' : !(g_ascii_isdigit(s[i]) || (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

static int64_t int_value(const GwConfig *c, const char *group, const char *name)
{
	g_autofree char *v = gw_config_value(c, group, name);
	gint64 x = 0;

	check(v != NULL, "gw_config_value of a known key is NULL");
	check(g_ascii_string_to_signed(v, 10, G_MININT64, G_MAXINT64, &x, NULL),
	      "an integer key's value is not an integer");
	return x;
}

/* Whether a quoted part of a message ("..." as the loader quotes, or
 * “...” as GLib does) contains needle: a value is only ever shown quoted,
 * so the message's own words (which a fuzzed value may equal) do not count. */
static bool quoted_contains(const char *line, const char *needle)
{
	static const char *const open[] = { "\"", "\xe2\x80\x9c" };	/* " and left quote */
	static const char *const close[] = { "\"", "\xe2\x80\x9d" };

	for (size_t q = 0; q < G_N_ELEMENTS(open); q++) {
		const char *p = line;

		while ((p = strstr(p, open[q]))) {
			const char *from = p + strlen(open[q]);
			const char *to = strstr(from, close[q]);
			g_autofree char *inner = NULL;

			if (!to)
				break;
			inner = g_strndup(from, (gsize)(to - from));
			if (strcmp(inner, "(not shown)") != 0 && strstr(inner, needle))
				return true;
			p = to + strlen(close[q]);
		}
	}
	return false;
}

/* A finding naming a personal key does not contain its value, nor the
 * longest valid UTF-8 run of it (GLib's messages replace invalid bytes). */
static void check_not_echoed(const GwConfig *c, const char *group, const char *name)
{
	g_autofree char *raw = g_key_file_get_value(c->kf, group, name, NULL);
	g_autofree char *tag = g_strdup_printf("[%s] %s:", group, name);
	const char *end;

	if (!raw)
		return;
	g_strstrip(raw);
	if (!g_utf8_validate(raw, -1, &end))
		raw[end - raw] = '\0';	/* the valid run before the first bad byte */
	if (strlen(raw) < 8)	/* short values match message text by chance */
		return;
	for (guint i = 0; i < c->errors->len; i++) {
		const char *line = c->errors->pdata[i];

		/* a finding about this key: "FILE: [group] name: ..." (another
		 * key's quoted value may hold this one's text: not an echo) */
		if (g_str_has_prefix(line, "fuzz.conf: ") &&
		    g_str_has_prefix(line + strlen("fuzz.conf: "), tag) &&
		    quoted_contains(line, raw)) {
			fprintf(stderr, "fuzz-config: %s echoed: %s\n", tag, line);
			abort();
		}
	}
}

static void check_loaded(const GwConfig *c)
{
	const struct gw_gateway_config *g = &c->gw;
	const struct gw_config_key *keys;
	const struct gw_rules_key *rk;
	g_autoptr(GError) e = NULL;
	size_t n, nr;

	keys = gw_config_keys(&n);
	for (size_t i = 0; i < n; i++) {
		const struct gw_config_key *k = &keys[i];
		g_autofree char *v = gw_config_value(c, k->group, k->name);

		check(v != NULL, "value of a table key");
		switch (k->type) {
		case GW_CONFIG_INT: {
			int64_t x = int_value(c, k->group, k->name);

			check(x >= k->min && x <= k->max, "integer key out of its range");
			break;
		}
		case GW_CONFIG_ID:
			check(!*v || id_ok(v), "id key not an id");
			break;
		case GW_CONFIG_BOOL:
			check(!strcmp(v, "true") || !strcmp(v, "false"), "bool key");
			break;
		case GW_CONFIG_CHOICE: {
			bool found = false;

			for (size_t j = 0; k->choices[j]; j++)
				found = found || !strcmp(v, k->choices[j]);
			check(found, "choice key not one of its choices");
			break;
		}
		case GW_CONFIG_DATE:
			if (*v) {
				unsigned int y = 0, m = 0, d = 0;

				check(strlen(v) == 10 && v[4] == '-' && v[7] == '-' &&
				      sscanf(v, "%4u-%2u-%2u", &y, &m, &d) == 3, "date format");
				check(y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= 31 &&
				      g_date_valid_dmy((GDateDay)d, (GDateMonth)m, (GDateYear)y),
				      "date not valid");
			}
			break;
		case GW_CONFIG_ADDRESSES:
		case GW_CONFIG_IDS:
		case GW_CONFIG_STRING:
			check(g_utf8_validate(v, -1, NULL), "value not UTF-8");
			break;
		}
		if (k->required)
			check(*v != '\0', "required key empty");
	}

	/* the struct, member by member, against the table's ranges */
	check(id_ok(g->gateway_id) && id_ok(g->patient_id), "gateway/patient id");
	check(g->n_wearables >= 1 && g->wearables && !g->wearables[g->n_wearables],
	      "wearables");
	for (size_t i = 0; i < g->n_wearables; i++) {
		check(addr_ok(g->wearables[i]), "wearable address not normalised");
		for (size_t j = 0; j < i; j++)
			check(strcmp(g->wearables[i], g->wearables[j]) != 0, "wearable repeated");
	}
	if (g->aliases) {
		check(g_strv_length((char **)g->aliases) == g->n_wearables, "aliases count");
		for (size_t i = 0; i < g->n_wearables; i++)
			check(id_ok(g->aliases[i]), "alias not an id");
	}
	check(g->uplink.uri && *g->uplink.uri, "mqtt uri");
	check(g->clock_mode == GW_CLOCK_AUTO || g->clock_mode == GW_CLOCK_SYNCED ||
	      g->clock_mode == GW_CLOCK_UNSYNCED, "clock mode");
	check(g->uplink.keepalive_s == int_value(c, "mqtt", "keepalive_s"), "keepalive_s");
	check(g->uplink.mqtt_version == int_value(c, "mqtt", "version"), "version");
	check(g->uplink.window == int_value(c, "mqtt", "window"), "window");
	check(g->backlog_rate == int_value(c, "mqtt", "backlog_rate"), "backlog_rate");
	check(g->status_interval_s == int_value(c, "mqtt", "status_interval_s"),
	      "status_interval_s");
	check(g->store_budget_bytes == (uint64_t)int_value(c, "store", "budget_mb") << 20,
	      "store budget");
	check(g->commit_interval_ms == int_value(c, "store", "commit_interval_ms"),
	      "commit_interval_ms");
	if (g->agg.have_surgery_date)
		check(g_date_valid_dmy((GDateDay)g->agg.surgery_day,
				       (GDateMonth)g->agg.surgery_month,
				       (GDateYear)g->agg.surgery_year), "surgery date");
	check(c->log_level != NULL, "log level");

	/* [rules]: every key in range, as text and in the struct */
	rk = gw_rules_config_keys(&nr);
	for (size_t i = 0; i < nr; i++) {
		const char *name = rk[i].name + strlen("rules.");
		g_autofree char *v = gw_config_value(c, "rules", name);

		check(g_str_has_prefix(rk[i].name, "rules."), "rules key name");
		check(v != NULL, "rules value");
		if (rk[i].type == GW_RULES_KEY_INT) {
			int x;

			memcpy(&x, (const char *)&g->rules + rk[i].offset, sizeof(x));
			check(x >= rk[i].min && x <= rk[i].max, "rules key out of its range");
			check(int_value(c, "rules", name) == x, "rules key text != struct");
		}
	}
	check(gw_rules_config_validate(&g->rules, &e), "rules do not validate");
}

static void check_same(const GwConfig *a, const GwConfig *b)
{
	g_autoptr(GPtrArray) rel = NULL;
	g_autoptr(GPtrArray) res = NULL;
	const struct gw_config_key *keys;
	const struct gw_rules_key *rk;
	size_t n;

	check(gw_config_ok(a) == gw_config_ok(b), "ok differs");
	keys = gw_config_keys(&n);
	for (size_t i = 0; i < n; i++) {
		g_autofree char *va = gw_config_value(a, keys[i].group, keys[i].name);
		g_autofree char *vb = gw_config_value(b, keys[i].group, keys[i].name);

		check(g_strcmp0(va, vb) == 0, "a value differs");
	}
	rk = gw_rules_config_keys(&n);
	for (size_t i = 0; i < n; i++) {
		const char *name = rk[i].name + strlen("rules.");
		g_autofree char *va = gw_config_value(a, "rules", name);
		g_autofree char *vb = gw_config_value(b, "rules", name);

		check(g_strcmp0(va, vb) == 0, "a rules value differs");
	}
	gw_config_diff(a, b, &rel, &res);
	check(rel->len == 0 && res->len == 0, "diff of equal configs not empty");
}

/* The effective values written back as a config file. */
static char *serialize(const GwConfig *c)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	const struct gw_config_key *keys;
	const struct gw_rules_key *rk;
	size_t n;

	keys = gw_config_keys(&n);
	for (size_t i = 0; i < n; i++) {
		g_autofree char *v = gw_config_value(c, keys[i].group, keys[i].name);

		if (!*v)
			continue;
		if (keys[i].type == GW_CONFIG_ADDRESSES || keys[i].type == GW_CONFIG_IDS)
			g_key_file_set_value(kf, keys[i].group, keys[i].name, v);
		else
			g_key_file_set_string(kf, keys[i].group, keys[i].name, v);
	}
	rk = gw_rules_config_keys(&n);
	for (size_t i = 0; i < n; i++) {
		const char *name = rk[i].name + strlen("rules.");
		g_autofree char *v = gw_config_value(c, "rules", name);

		g_key_file_set_string(kf, "rules", name, v);
	}
	return g_key_file_to_data(kf, NULL, NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	/* GSlice (GLib < 2.76) hides leaks from LeakSanitizer; GLib reads
	 * G_SLICE when it is loaded, so start again with it set */
	if (!getenv("G_SLICE")) {
		setenv("G_SLICE", "always-malloc", 1);
		execv("/proc/self/exe", *argv);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GwConfig) c = NULL;
	g_autoptr(GwConfig) again = NULL;
	g_autofree char *findings = NULL;
	g_autofree char *findings2 = NULL;

	if (size > 64 * 1024)
		return 0;
	c = gw_config_load_data(FILE_NAME, (const char *)data, (gssize)size, NULL);
	check(c != NULL, "loader returned NULL");
	check(gw_config_ok(c) == (c->errors->len == 0), "ok but errors");
	findings = gw_config_findings(c);
	check(findings != NULL, "findings NULL");
	if (!gw_config_ok(c))
		check(*findings != '\0', "not ok and no findings");
	for (guint i = 0; i < c->errors->len; i++) {
		const char *l = c->errors->pdata[i];

		check(g_str_has_prefix(l, FILE_NAME ": "), "error does not name the file");
	}
	for (guint i = 0; i < c->warnings->len; i++)
		check(g_str_has_prefix(c->warnings->pdata[i], FILE_NAME ": "),
		      "warning does not name the file");
#ifndef FUZZ_CONFIG_NO_ECHO_CHECK	/* -D it to look past a known echo bug */
	check_not_echoed(c, "gateway", "patient");
	check_not_echoed(c, "ble", "wearables");
	check_not_echoed(c, "mqtt", "username");
	check_not_echoed(c, "mqtt", "password");
#endif

	/* twice: the same */
	again = gw_config_load_data(FILE_NAME, (const char *)data, (gssize)size, NULL);
	findings2 = gw_config_findings(again);
	check(strcmp(findings, findings2) == 0, "findings differ between two loads");
	if (!gw_config_ok(c)) {
		g_autofree char *v = gw_config_value(c, "mqtt", "window");

		check(v == NULL, "a config that did not load gives values");
		return 0;
	}
	check_loaded(c);
	check_same(c, again);

	/* the effective values, written out and loaded, are the same config */
	{
		g_autofree char *text = serialize(c);
		g_autoptr(GwConfig) round = gw_config_load_data(FILE_NAME, text, -1, NULL);

		if (!gw_config_ok(round)) {
			g_autofree char *f = gw_config_findings(round);

			fprintf(stderr, "fuzz-config: rewritten config refused:\n%s---\n%s", text, f);
			abort();
		}
		check_same(c, round);
	}
	return 0;
}
