// SPDX-License-Identifier: MIT
/*
 * gateway/config: the key table, loaded from buffers. Table-driven: every
 * key of gw_config_keys() and of the rules engine's table is loaded valid,
 * invalid and missing, and diffed; a key added to the table without a
 * member mapping below (members[]) fails test_every_key_mapped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

#define FILE_NAME "test.conf"

static const char base_text[] =
	"[gateway]\n"
	"id=gw-1\n"
	"patient=p-1\n"
	"[ble]\n"
	"wearables=AA:BB:CC:DD:EE:01\n"
	"[mqtt]\n"
	"uri=tcp://127.0.0.1:1883\n";

/* base_text with group.name set to value (raw), or removed (NULL) */
static char *conf_with(const char *group, const char *name, const char *value)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();

	assert_true(g_key_file_load_from_data(kf, base_text, (gsize)-1, G_KEY_FILE_NONE, NULL));
	if (value)
		g_key_file_set_value(kf, group, name, value);
	else
		g_key_file_remove_key(kf, group, name, NULL);
	return g_key_file_to_data(kf, NULL, NULL);
}

static GwConfig *load(const char *text)
{
	return gw_config_load_data(FILE_NAME, text, -1, NULL);
}

static GwConfig *load_with(const char *group, const char *name, const char *value)
{
	g_autofree char *text = conf_with(group, name, value);

	return load(text);
}

static char *dotted(const struct gw_config_key *k)
{
	return g_strdup_printf("%s.%s", k->group, k->name);
}

/* the one error, and that it names file, group and key */
static void assert_one_error(const GwConfig *c, const char *group, const char *name)
{
	g_autofree char *prefix = g_strdup_printf(FILE_NAME ": [%s] %s: ", group, name);

	assert_false(gw_config_ok(c));
	if (c->errors->len != 1 || !g_str_has_prefix(c->errors->pdata[0], prefix)) {
		g_autofree char *f = gw_config_findings(c);

		print_error("expected one error starting \"%s\", got:\n%s", prefix, f);
		fail();
	}
}

/* ---- every key's member in struct gw_gateway_config, as text ---- */

struct member {
	const char *key;
	char *(*get)(const GwConfig *c);
};

static char *s(const char *v)
{
	return g_strdup(v ? v : "");
}

static char *u64(uint64_t v)
{
	return g_strdup_printf("%" G_GUINT64_FORMAT, v);
}

static char *b(bool v)
{
	return g_strdup(v ? "true" : "false");
}

static char *m_id(const GwConfig *c) { return s(c->gw.gateway_id); }
static char *m_patient(const GwConfig *c) { return s(c->gw.patient_id); }
static char *m_state(const GwConfig *c) { return s(c->gw.state_dir); }
static char *m_clock(const GwConfig *c) { return s(gw_clock_mode_name(c->gw.clock_mode)); }
static char *m_surgery(const GwConfig *c)
{
	if (!c->gw.agg.have_surgery_date)
		return s(NULL);
	return g_strdup_printf("%04d-%02d-%02d", c->gw.agg.surgery_year, c->gw.agg.surgery_month,
			       c->gw.agg.surgery_day);
}
static char *m_adapter(const GwConfig *c) { return s(c->gw.adapter); }
static char *m_wearables(const GwConfig *c)
{
	assert_int_equal(c->gw.n_wearables, g_strv_length((char **)c->gw.wearables));
	return g_strjoinv(";", (char **)c->gw.wearables);
}
static char *m_aliases(const GwConfig *c)
{
	return c->gw.aliases ? g_strjoinv(";", (char **)c->gw.aliases) : s(NULL);
}
static char *m_uri(const GwConfig *c) { return s(c->gw.uplink.uri); }
static char *m_ca(const GwConfig *c) { return s(c->gw.uplink.ca_file); }
static char *m_cert(const GwConfig *c) { return s(c->gw.uplink.cert_file); }
static char *m_key(const GwConfig *c) { return s(c->gw.uplink.key_file); }
static char *m_user(const GwConfig *c) { return s(c->gw.uplink.username); }
static char *m_pass(const GwConfig *c) { return s(c->gw.uplink.password); }
static char *m_plain(const GwConfig *c) { return b(c->gw.uplink.allow_plaintext); }
static char *m_keepalive(const GwConfig *c) { return u64((uint64_t)c->gw.uplink.keepalive_s); }
static char *m_version(const GwConfig *c) { return u64((uint64_t)c->gw.uplink.mqtt_version); }
static char *m_window(const GwConfig *c) { return u64(c->gw.uplink.window); }
static char *m_backlog(const GwConfig *c) { return u64(c->gw.backlog_rate); }
static char *m_status(const GwConfig *c) { return u64(c->gw.status_interval_s); }
static char *m_budget(const GwConfig *c) { return u64(c->gw.store_budget_bytes >> 20); }
static char *m_commit(const GwConfig *c) { return u64(c->gw.commit_interval_ms); }
static char *m_fallback(const GwConfig *c) { return s(c->gw.fallback_command); }
static char *m_level(const GwConfig *c) { return s(c->log_level); }

static const struct member members[] = {
	{ "gateway.id", m_id },
	{ "gateway.patient", m_patient },
	{ "gateway.state_dir", m_state },
	{ "gateway.clock", m_clock },
	{ "gateway.surgery_date", m_surgery },
	{ "ble.adapter", m_adapter },
	{ "ble.wearables", m_wearables },
	{ "ble.aliases", m_aliases },
	{ "mqtt.uri", m_uri },
	{ "mqtt.ca_file", m_ca },
	{ "mqtt.cert_file", m_cert },
	{ "mqtt.key_file", m_key },
	{ "mqtt.username", m_user },
	{ "mqtt.password", m_pass },
	{ "mqtt.allow_plaintext", m_plain },
	{ "mqtt.keepalive_s", m_keepalive },
	{ "mqtt.version", m_version },
	{ "mqtt.window", m_window },
	{ "mqtt.backlog_rate", m_backlog },
	{ "mqtt.status_interval_s", m_status },
	{ "store.budget_mb", m_budget },
	{ "store.commit_interval_ms", m_commit },
	{ "escalation.fallback_command", m_fallback },
	{ "log.level", m_level },
};

static const struct member *member_of(const struct gw_config_key *k)
{
	g_autofree char *d = dotted(k);

	for (size_t i = 0; i < G_N_ELEMENTS(members); i++)
		if (strcmp(members[i].key, d) == 0)
			return &members[i];
	return NULL;
}

/* the key's effective value and its member both read expected */
static void assert_value(const GwConfig *c, const struct gw_config_key *k, const char *expected)
{
	g_autofree char *v = gw_config_value(c, k->group, k->name);
	g_autofree char *m = NULL;

	assert_non_null(v);
	assert_string_equal(v, expected);
	m = member_of(k)->get(c);
	assert_string_equal(m, expected);
}

/* ---- samples by type ---- */

struct sample {
	const char *text;	/* as written */
	const char *value;	/* its effective value */
};

#define MAX_SAMPLES 8

/* Valid values of k, with what they read back as. Every type is listed
 * (-Wswitch-enum): a new type needs its samples. */
static size_t valid_samples(const struct gw_config_key *k, struct sample *out, GPtrArray *keep)
{
	size_t n = 0;

	switch (k->type) {
	case GW_CONFIG_STRING:
		out[n++] = (struct sample){ "some text/with=signs", "some text/with=signs" };
		out[n++] = (struct sample){ "  padded  ", "padded" };
		break;
	case GW_CONFIG_ID:
		out[n++] = (struct sample){ "abc_1-X", "abc_1-X" };
		out[n++] = (struct sample){ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
					    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
		break;
	case GW_CONFIG_INT: {
		char *lo = g_strdup_printf("%" G_GINT64_FORMAT, k->min);
		char *hi = g_strdup_printf("%" G_GINT64_FORMAT, k->max);
		char *mid = g_strdup_printf("%" G_GINT64_FORMAT, k->min + (k->max - k->min) / 2);

		g_ptr_array_add(keep, lo);
		g_ptr_array_add(keep, hi);
		g_ptr_array_add(keep, mid);
		out[n++] = (struct sample){ lo, lo };
		out[n++] = (struct sample){ hi, hi };
		out[n++] = (struct sample){ mid, mid };
		if (k->def)
			out[n++] = (struct sample){ k->def, k->def };
		break;
	}
	case GW_CONFIG_BOOL:
		out[n++] = (struct sample){ "true", "true" };
		out[n++] = (struct sample){ "false", "false" };
		out[n++] = (struct sample){ "1", "true" };
		out[n++] = (struct sample){ "0", "false" };
		break;
	case GW_CONFIG_CHOICE:
		for (size_t i = 0; k->choices[i]; i++) {
			assert_true(n < MAX_SAMPLES);
			out[n++] = (struct sample){ k->choices[i], k->choices[i] };
		}
		break;
	case GW_CONFIG_DATE:
		out[n++] = (struct sample){ "2026-02-28", "2026-02-28" };
		out[n++] = (struct sample){ "2024-02-29", "2024-02-29" };
		break;
	case GW_CONFIG_ADDRESSES:
		out[n++] = (struct sample){ "aa:bb:cc:dd:ee:0f", "AA:BB:CC:DD:EE:0F" };
		out[n++] = (struct sample){ "AA:BB:CC:DD:EE:01;AA:BB:CC:DD:EE:02;",
					    "AA:BB:CC:DD:EE:01;AA:BB:CC:DD:EE:02" };
		break;
	case GW_CONFIG_IDS:
		out[n++] = (struct sample){ "trunk", "trunk" };	/* one per wearable */
		break;
	}
	return n;
}

/* Invalid values of k (each one error). */
static size_t invalid_samples(const struct gw_config_key *k, const char **out, GPtrArray *keep)
{
	size_t n = 0;

	switch (k->type) {
	case GW_CONFIG_STRING:
		break;	/* any text; required ones: test_missing_and_empty */
	case GW_CONFIG_ID:
		out[n++] = "bad id";
		out[n++] = "p/1";
		out[n++] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; /* 65 */
		break;
	case GW_CONFIG_INT: {
		char *lo = g_strdup_printf("%" G_GINT64_FORMAT, k->min - 1);
		char *hi = g_strdup_printf("%" G_GINT64_FORMAT, k->max + 1);

		g_ptr_array_add(keep, lo);
		g_ptr_array_add(keep, hi);
		out[n++] = lo;
		out[n++] = hi;
		out[n++] = "abc";
		out[n++] = "1.5";
		out[n++] = "0x10";
		out[n++] = "99999999999999999999999";
		break;
	}
	case GW_CONFIG_BOOL:
		out[n++] = "yes";
		out[n++] = "maybe";
		break;
	case GW_CONFIG_CHOICE:
		out[n++] = "bogus";
		out[n++] = "AUTO";
		break;
	case GW_CONFIG_DATE:
		out[n++] = "2026-02-30";
		out[n++] = "2026-13-01";
		out[n++] = "26-1-1";
		out[n++] = "2026-01-01x";
		out[n++] = "tomorrow";
		break;
	case GW_CONFIG_ADDRESSES:
		out[n++] = "AA:BB:CC:DD:EE";
		out[n++] = "AA:BB:CC:DD:EE:0G";
		out[n++] = "AA-BB-CC-DD-EE-01";
		out[n++] = "AA:BB:CC:DD:EE:01;aa:bb:cc:dd:ee:01";	/* a repeat */
		break;
	case GW_CONFIG_IDS:
		out[n++] = "bad id";
		out[n++] = "a;b";	/* two aliases for one wearable */
		break;
	}
	return n;
}

/* ---- tests ---- */

static void test_every_key_mapped(void **state)
{
	size_t n;
	const struct gw_config_key *keys = gw_config_keys(&n);

	(void)state;
	assert_true(n > 0);
	assert_int_equal(n, G_N_ELEMENTS(members));
	for (size_t i = 0; i < n; i++) {
		if (!member_of(&keys[i])) {
			print_error("key [%s] %s has no member mapping in tests/test-config.c\n",
				    keys[i].group, keys[i].name);
			fail();
		}
		assert_ptr_equal(gw_config_key_find(keys[i].group, keys[i].name), &keys[i]);
		assert_non_null(keys[i].help);
		/* a required key has no default */
		assert_false(keys[i].required && keys[i].def);
		if (keys[i].type == GW_CONFIG_INT)
			assert_true(keys[i].min <= keys[i].max);
		if (keys[i].type == GW_CONFIG_CHOICE)
			assert_non_null(keys[i].choices);
	}
	assert_null(gw_config_key_find("gateway", "nope"));
	assert_null(gw_config_key_find("rules", "severe_pain_score"));
}

static void test_minimal_defaults(void **state)
{
	g_autoptr(GwConfig) c = load(base_text);
	size_t n;
	const struct gw_config_key *keys = gw_config_keys(&n);

	(void)state;
	assert_true(gw_config_ok(c));
	assert_int_equal(c->warnings->len, 0);
	for (size_t i = 0; i < n; i++) {
		const struct gw_config_key *k = &keys[i];

		if (k->required)
			continue;
		assert_value(c, k, k->def ? k->def : "");
	}
	/* the defaults the daemon relies on */
	assert_int_equal(c->gw.uplink.window, 32);
	assert_int_equal(c->gw.store_budget_bytes, (uint64_t)512 << 20);
	assert_int_equal(c->gw.commit_interval_ms, 300000);
	assert_int_equal(c->gw.status_interval_s, 300);
	assert_int_equal(c->gw.clock_mode, GW_CLOCK_AUTO);
	assert_null(c->gw.aliases);
	assert_null(c->gw.fallback_command);
	assert_string_equal(c->log_level, "message");
	{
		g_autofree char *f = gw_config_findings(c);

		assert_string_equal(f, "");
	}
}

static void test_every_key_valid(void **state)
{
	size_t n, count = 0;
	const struct gw_config_key *keys = gw_config_keys(&n);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const struct gw_config_key *k = &keys[i];
		g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func(g_free);
		struct sample sm[MAX_SAMPLES];
		size_t ns = valid_samples(k, sm, keep);

		assert_true(ns > 0);
		for (size_t j = 0; j < ns; j++) {
			g_autoptr(GwConfig) c = load_with(k->group, k->name, sm[j].text);

			if (!gw_config_ok(c) || c->warnings->len) {
				g_autofree char *f = gw_config_findings(c);

				print_error("[%s] %s=%s: %s", k->group, k->name, sm[j].text, f);
				fail();
			}
			assert_value(c, k, sm[j].value);
			count++;
		}
	}
	assert_true(count > 60);
}

static void test_every_key_invalid(void **state)
{
	size_t n, count = 0;
	const struct gw_config_key *keys = gw_config_keys(&n);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const struct gw_config_key *k = &keys[i];
		g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func(g_free);
		const char *bad[MAX_SAMPLES];
		size_t nb = invalid_samples(k, bad, keep);

		for (size_t j = 0; j < nb; j++) {
			g_autoptr(GwConfig) c = load_with(k->group, k->name, bad[j]);

			assert_one_error(c, k->group, k->name);
			/* what did not load is not readable */
			assert_null(gw_config_value(c, k->group, k->name));
			count++;
		}
	}
	assert_true(count > 40);
}

/* Personal values (the patient id, addresses, credentials) are never
 * echoed in findings. */
static void test_personal_not_echoed(void **state)
{
	static const struct {
		const char *group, *name, *value, *secret;
	} cases[] = {
		{ "gateway", "patient", "Jane Doe", "Jane" },
		{ "ble", "wearables", "12:34:56:78:9A:0G", "9A:0G" },
	};

	(void)state;
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GwConfig) c = load_with(cases[i].group, cases[i].name, cases[i].value);
		g_autofree char *f = gw_config_findings(c);

		assert_one_error(c, cases[i].group, cases[i].name);
		assert_null(strstr(f, cases[i].secret));
	}
}

static void test_missing_and_empty(void **state)
{
	size_t n;
	const struct gw_config_key *keys = gw_config_keys(&n);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const struct gw_config_key *k = &keys[i];
		g_autoptr(GwConfig) missing = load_with(k->group, k->name, NULL);
		g_autoptr(GwConfig) empty = load_with(k->group, k->name, "");

		if (k->required) {
			g_autofree char *m = NULL, *e = NULL;

			assert_one_error(missing, k->group, k->name);
			m = gw_config_findings(missing);
			assert_non_null(strstr(m, "missing (required)"));
			assert_one_error(empty, k->group, k->name);
			e = gw_config_findings(empty);
			assert_non_null(strstr(e, "empty (required)"));
		} else {
			assert_true(gw_config_ok(missing));
			assert_value(missing, k, k->def ? k->def : "");
			/* empty is unset: the default */
			assert_true(gw_config_ok(empty));
			assert_value(empty, k, k->def ? k->def : "");
		}
	}
}

static void test_unknown_warned(void **state)
{
	g_autofree char *text = g_strconcat(base_text, "colour=blue\n[mqtt]\nqos=2\n[extra]\nx=1\n",
					    NULL);
	g_autoptr(GwConfig) c = load(text);
	g_autofree char *f = NULL;

	(void)state;
	assert_true(gw_config_ok(c));
	assert_int_equal(c->warnings->len, 3);
	f = gw_config_findings(c);
	assert_non_null(strstr(f, FILE_NAME ": [mqtt] colour: unknown key (ignored)\n"));
	assert_non_null(strstr(f, FILE_NAME ": [mqtt] qos: unknown key (ignored)\n"));
	assert_non_null(strstr(f, FILE_NAME ": [extra]: unknown group (ignored)\n"));
	/* the rest loaded */
	assert_string_equal(c->gw.gateway_id, "gw-1");
}

static void test_findings_order(void **state)
{
	g_autofree char *text = g_strconcat(base_text, "zzz=1\nwindow=0\n", NULL);
	g_autoptr(GwConfig) c = load(text);
	g_autofree char *f = gw_config_findings(c);

	(void)state;
	assert_false(gw_config_ok(c));
	assert_int_equal(c->errors->len, 1);
	assert_int_equal(c->warnings->len, 1);
	/* errors first, one a line */
	assert_string_equal(f, FILE_NAME ": [mqtt] window: \"0\" is not an integer in 1..1024\n"
			       FILE_NAME ": [mqtt] zzz: unknown key (ignored)\n");
}

static void test_parse_errors(void **state)
{
	static const char *const bad[] = {
		"not a key file\n",
		"key=before any group\n[gateway]\n",
		"[gateway\nid=x\n",
	};

	(void)state;
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GwConfig) c = load(bad[i]);

		assert_false(gw_config_ok(c));
		assert_int_equal(c->errors->len, 1);
		assert_true(g_str_has_prefix(c->errors->pdata[0], FILE_NAME ": "));
	}
	{
		g_autoptr(GwConfig) c = gw_config_load_file("/nonexistent/rehablink.conf", NULL);

		assert_false(gw_config_ok(c));
		assert_true(g_str_has_prefix(c->errors->pdata[0], "/nonexistent/rehablink.conf: "));
	}
	{
		g_autoptr(GwConfig) c = gw_config_load_data(FILE_NAME, NULL, 0, NULL);

		assert_false(gw_config_ok(c));
	}
}

static void test_aliases_count(void **state)
{
	g_autofree char *text = conf_with("ble", "wearables", "AA:BB:CC:DD:EE:01;AA:BB:CC:DD:EE:02");
	g_autofree char *two = g_strconcat(text, "[ble]\naliases=a;b\n", NULL);
	g_autofree char *one = g_strconcat(text, "[ble]\naliases=a\n", NULL);
	g_autoptr(GwConfig) ok = load(two);
	g_autoptr(GwConfig) bad = load(one);

	(void)state;
	assert_true(gw_config_ok(ok));
	assert_int_equal(ok->gw.n_wearables, 2);
	assert_string_equal(ok->gw.aliases[1], "b");
	assert_null(ok->gw.aliases[2]);
	assert_one_error(bad, "ble", "aliases");
	assert_string_equal(bad->errors->pdata[0],
			    FILE_NAME ": [ble] aliases: 1 aliases for 2 wearables");
}

static void test_base_kept(void **state)
{
	struct gw_gateway_config base;
	g_autoptr(GwConfig) c = NULL;

	(void)state;
	memset(&base, 0, sizeof(base));
	base.version = "9.9.9";
	base.alert_slots = 7;
	base.log_personal = true;
	base.uplink.backoff_max_ms = 1234;
	base.agg.walking_min_steps = 11;
	c = gw_config_load_data(FILE_NAME, base_text, -1, &base);
	assert_true(gw_config_ok(c));
	assert_string_equal(c->gw.version, "9.9.9");
	assert_int_equal(c->gw.alert_slots, 7);
	assert_true(c->gw.log_personal);
	assert_int_equal(c->gw.uplink.backoff_max_ms, 1234);
	assert_int_equal(c->gw.agg.walking_min_steps, 11);
	assert_string_equal(c->gw.uplink.uri, "tcp://127.0.0.1:1883");
}

static void test_surgery_date(void **state)
{
	g_autoptr(GwConfig) c = load_with("gateway", "surgery_date", "2026-11-24");

	(void)state;
	assert_true(gw_config_ok(c));
	assert_true(c->gw.agg.have_surgery_date);
	assert_int_equal(c->gw.agg.surgery_year, 2026);
	assert_int_equal(c->gw.agg.surgery_month, 11);
	assert_int_equal(c->gw.agg.surgery_day, 24);
}

/* ---- [rules]: the engine's table ---- */

static void test_rules_every_key(void **state)
{
	size_t n;
	const struct gw_rules_key *rk = gw_rules_config_keys(&n);

	(void)state;
	assert_true(n > 40);
	for (size_t i = 0; i < n; i++) {
		const char *name = rk[i].name + strlen("rules.");
		const char *good[4], *bad[4];
		size_t ng = 0, nb = 0;
		char lo[16], hi[16], below[16], above[16];

		switch (rk[i].type) {
		case GW_RULES_KEY_INT:
			snprintf(lo, sizeof(lo), "%d", rk[i].min);
			snprintf(hi, sizeof(hi), "%d", rk[i].max);
			snprintf(below, sizeof(below), "%d", rk[i].min - 1);
			snprintf(above, sizeof(above), "%d", rk[i].max + 1);
			good[ng++] = lo;
			good[ng++] = hi;
			bad[nb++] = below;
			bad[nb++] = above;
			bad[nb++] = "7.5";
			break;
		case GW_RULES_KEY_BOOL:
			good[ng++] = "true";
			good[ng++] = "false";
			bad[nb++] = "yes";
			break;
		case GW_RULES_KEY_TIER:
			good[ng++] = "informational";
			good[ng++] = "emergency";
			bad[nb++] = "critical";
			break;
		}
		for (size_t j = 0; j < ng; j++) {
			g_autoptr(GwConfig) c = load_with("rules", name, good[j]);
			struct gw_rules_config rc;
			bool engine_ok;

			/* the engine alone decides (cross-key rules) */
			gw_rules_config_init(&rc);
			engine_ok = gw_rules_config_set(&rc, rk[i].name, good[j], NULL) &&
				    gw_rules_config_validate(&rc, NULL);
			if (engine_ok) {
				g_autofree char *v = NULL;

				assert_true(gw_config_ok(c));
				v = gw_config_value(c, "rules", name);
				assert_string_equal(v, good[j]);
				assert_true(gw_config_reloadable(rk[i].name));
			} else {
				assert_false(gw_config_ok(c));
				assert_int_equal(c->errors->len, 1);
				assert_true(g_str_has_prefix(c->errors->pdata[0],
							     FILE_NAME ": [rules] "));
			}
		}
		for (size_t j = 0; j < nb; j++) {
			g_autoptr(GwConfig) c = load_with("rules", name, bad[j]);

			assert_one_error(c, "rules", name);
		}
	}
}

static void test_rules_cross_and_unknown(void **state)
{
	g_autofree char *cross = g_strconcat(base_text, "[rules]\nmoderate_pain_score=7\n", NULL);
	g_autofree char *unknown = g_strconcat(base_text, "[rules]\nsevere_pain_scor=5\n", NULL);
	g_autoptr(GwConfig) a = load(cross);
	g_autoptr(GwConfig) u = load(unknown);
	g_autoptr(GwConfig) d = load(base_text);

	(void)state;
	assert_one_error(a, "rules", "moderate_pain_score");
	/* a misspelt clinical key is an error, not a warning */
	assert_one_error(u, "rules", "severe_pain_scor");
	/* the engine's defaults when [rules] is absent */
	{
		g_autofree char *v = gw_config_value(d, "rules", "severe_pain_score");

		assert_string_equal(v, "7");
		assert_int_equal(d->gw.rules.severe_pain_score, 7);
	}
	assert_null(gw_config_value(d, "rules", "nope"));
	assert_null(gw_config_value(d, "nope", "nope"));
}

/* ---- the diff ---- */

static bool has(GPtrArray *a, const char *s)
{
	return g_ptr_array_find_with_equal_func(a, s, g_str_equal, NULL);
}

static void test_diff_every_key(void **state)
{
	size_t n;
	const struct gw_config_key *keys = gw_config_keys(&n);
	g_autoptr(GwConfig) old = load(base_text);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const struct gw_config_key *k = &keys[i];
		g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func(g_free);
		struct sample sm[MAX_SAMPLES];
		size_t ns = valid_samples(k, sm, keep);
		g_autofree char *d = dotted(k);
		g_autofree char *oldv = gw_config_value(old, k->group, k->name);
		bool tested = false;

		assert_int_equal(gw_config_reloadable(d), k->reloadable);
		for (size_t j = 0; j < ns; j++) {
			g_autoptr(GwConfig) c = load_with(k->group, k->name, sm[j].text);
			g_autoptr(GPtrArray) rel = NULL, res = NULL;

			gw_config_diff(old, c, &rel, &res);
			if (strcmp(oldv, sm[j].value) == 0) {
				/* set to what it was: no change */
				assert_int_equal(rel->len + res->len, 0);
				continue;
			}
			assert_int_equal(rel->len + res->len, 1);
			assert_true(has(k->reloadable ? rel : res, d));
			tested = true;
		}
		assert_true(tested);
	}
}

static void test_diff_mixed(void **state)
{
	g_autoptr(GwConfig) a = load(base_text);
	g_autofree char *t1 = conf_with("mqtt", "uri", "tcp://127.0.0.1:1884");
	g_autofree char *text = g_strconcat(t1, "backlog_rate=10\nwindow=32\n"
					    "[log]\nlevel=debug\n"
					    "[rules]\nsevere_pain_score=8\nno_data_min=30\n", NULL);
	g_autoptr(GwConfig) b = load(text);
	g_autoptr(GPtrArray) rel = NULL, res = NULL, rel0 = NULL, res0 = NULL;
	g_autoptr(GwConfig) broken = load("[gateway]\n");
	g_autoptr(GPtrArray) relx = NULL, resx = NULL;

	(void)state;
	assert_true(gw_config_ok(b));
	gw_config_diff(a, b, &rel, &res);
	/* in table order, then the rules; a key set to its default is no change */
	assert_int_equal(rel->len, 3);
	assert_string_equal(rel->pdata[0], "mqtt.backlog_rate");
	assert_string_equal(rel->pdata[1], "log.level");
	assert_string_equal(rel->pdata[2], "rules.severe_pain_score");
	assert_int_equal(res->len, 1);
	assert_string_equal(res->pdata[0], "mqtt.uri");
	gw_config_diff(b, b, &rel0, &res0);
	assert_int_equal(rel0->len + res0->len, 0);
	/* a config that did not load differs in nothing */
	gw_config_diff(a, broken, &relx, &resx);
	assert_int_equal(relx->len + resx->len, 0);
	assert_false(gw_config_reloadable("mqtt.nope"));
	assert_false(gw_config_reloadable("rules.nope"));
	assert_false(gw_config_reloadable("nodot"));
	assert_false(gw_config_reloadable(NULL));
}

/* ---- the sample file: loads, and documents every key ---- */

static void test_sample_documents_every_key(void **state)
{
	static const char *const paths[] = { "config/rehablink.conf", "../config/rehablink.conf",
					     "../../config/rehablink.conf" };
	g_autofree char *text = NULL;
	const char *path = NULL;
	size_t n, nr;
	const struct gw_config_key *keys = gw_config_keys(&n);
	const struct gw_rules_key *rk = gw_rules_config_keys(&nr);

	(void)state;
	for (size_t i = 0; i < G_N_ELEMENTS(paths) && !text; i++)
		if (g_file_get_contents(paths[i], &text, NULL, NULL))
			path = paths[i];
	if (!text) {
		skip();
		return;
	}
	{
		g_autoptr(GwConfig) c = gw_config_load_data(path, text, -1, NULL);

		assert_true(gw_config_ok(c));
		assert_int_equal(c->warnings->len, 0);
	}
	for (size_t i = 0; i < n + nr; i++) {
		const char *group = i < n ? keys[i].group : "rules";
		const char *name = i < n ? keys[i].name : rk[i - n].name + strlen("rules.");
		g_autofree char *hdr = g_strdup_printf("\n[%s]\n", group);
		g_autofree char *set = g_strdup_printf("\n%s=", name);
		g_autofree char *commented = g_strdup_printf("\n#%s=", name);
		const char *g = strstr(text, hdr);
		const char *next, *at;

		assert_non_null(g);
		next = strstr(g + 1, "\n[");
		at = strstr(g, set);
		if (!at || (next && at > next))
			at = strstr(g, commented);
		if (!at || (next && at > next)) {
			print_error("%s does not document [%s] %s\n", path, group, name);
			fail();
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_key_mapped),
		cmocka_unit_test(test_minimal_defaults),
		cmocka_unit_test(test_every_key_valid),
		cmocka_unit_test(test_every_key_invalid),
		cmocka_unit_test(test_personal_not_echoed),
		cmocka_unit_test(test_missing_and_empty),
		cmocka_unit_test(test_unknown_warned),
		cmocka_unit_test(test_findings_order),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_aliases_count),
		cmocka_unit_test(test_base_kept),
		cmocka_unit_test(test_surgery_date),
		cmocka_unit_test(test_rules_every_key),
		cmocka_unit_test(test_rules_cross_and_unknown),
		cmocka_unit_test(test_diff_every_key),
		cmocka_unit_test(test_diff_mixed),
		cmocka_unit_test(test_sample_documents_every_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
