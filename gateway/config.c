// SPDX-License-Identifier: MIT
/*
 * The config file through one table of keys (see config.h).
 */
#include <stdio.h>
#include <string.h>

#include "config.h"

static const char *const clock_choices[] = { "auto", "synced", "unsynced", NULL };
static const char *const level_choices[] = { "error", "warning", "message", "info", "debug",
					     NULL };

/* group, name, type, min, max, choices, default, required, reloadable, help */
#define K(g, n, t, lo, hi, ch, def, req, rel, h) \
	{ g, n, t, lo, hi, ch, def, req, rel, h }
#define STR(g, n, def, rel, h) K(g, n, GW_CONFIG_STRING, 0, 0, NULL, def, false, rel, h)
#define INT(g, n, lo, hi, def, rel, h) K(g, n, GW_CONFIG_INT, lo, hi, NULL, def, false, rel, h)

static const struct gw_config_key keys[] = {
	K("gateway", "id", GW_CONFIG_ID, 0, 0, NULL, NULL, true, false,
	  "this gateway's id in MQTT topics"),
	K("gateway", "patient", GW_CONFIG_ID, 0, 0, NULL, NULL, true, false,
	  "the patient's pseudonymous id in topics"),
	STR("gateway", "state_dir", "/var/lib/rehablink", false, "where the store lives"),
	K("gateway", "clock", GW_CONFIG_CHOICE, 0, 0, clock_choices, "auto", false, false,
	  "is the wall clock to be trusted"),
	K("gateway", "surgery_date", GW_CONFIG_DATE, 0, 0, NULL, NULL, false, false,
	  "the day of surgery (local date)"),
	STR("ble", "adapter", NULL, false, "the controller; unset: the first one"),
	K("ble", "wearables", GW_CONFIG_ADDRESSES, 0, 0, NULL, NULL, true, false,
	  "the patient's wearables by Bluetooth address"),
	K("ble", "aliases", GW_CONFIG_IDS, 0, 0, NULL, NULL, false, false,
	  "their ids in topics, one per wearable; unset: w1, w2, ..."),
	K("mqtt", "uri", GW_CONFIG_STRING, 0, 0, NULL, NULL, true, false, "the clinic broker"),
	STR("mqtt", "ca_file", NULL, false, "TLS: the CA of the broker's certificate"),
	STR("mqtt", "cert_file", NULL, false, "TLS: this gateway's client certificate"),
	STR("mqtt", "key_file", NULL, false, "TLS: its key"),
	STR("mqtt", "username", NULL, false, "MQTT user name"),
	STR("mqtt", "password", NULL, false, "MQTT password"),
	K("mqtt", "allow_plaintext", GW_CONFIG_BOOL, 0, 0, NULL, "false", false, false,
	  "plaintext MQTT to a broker off loopback"),
	INT("mqtt", "keepalive_s", 1, 20, "15", false, "keepalive, seconds"),
	INT("mqtt", "version", 4, 5, "5", false, "5 (MQTT 5, falls back) or 4 (3.1.1)"),
	INT("mqtt", "window", 1, 1024, "32", false, "publishes in flight at most"),
	INT("mqtt", "backlog_rate", 0, 100000, "1000", true,
	    "telemetry messages a second at most; 0: no limit"),
	INT("mqtt", "status_interval_s", 10, 86400, "300", true,
	    "seconds between gateway status messages"),
	INT("store", "budget_mb", 0, 1 << 20, "512", true, "disk budget of the store, MiB; 0: none"),
	INT("store", "commit_interval_ms", 10, 3600000, "300000", true,
	    "telemetry commit interval, ms"),
	STR("escalation", "fallback_command", NULL, true,
	    "run by /bin/sh -c when an alert is not acknowledged in time"),
	K("log", "level", GW_CONFIG_CHOICE, 0, 0, level_choices, "message", false, true,
	  "the least severe level logged (--log-level overrides it)"),
};

/* keys whose values are never echoed in findings */
static bool personal_key(const struct gw_config_key *k)
{
	return (strcmp(k->group, "gateway") == 0 && strcmp(k->name, "patient") == 0) ||
	       (strcmp(k->group, "ble") == 0 && strcmp(k->name, "wearables") == 0) ||
	       (strcmp(k->group, "mqtt") == 0 && (strcmp(k->name, "password") == 0 ||
						   strcmp(k->name, "username") == 0));
}

const struct gw_config_key *gw_config_keys(size_t *ret_n)
{
	*ret_n = G_N_ELEMENTS(keys);
	return keys;
}

const struct gw_config_key *gw_config_key_find(const char *group, const char *name)
{
	for (size_t i = 0; group && name && i < G_N_ELEMENTS(keys); i++)
		if (strcmp(keys[i].group, group) == 0 && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static bool rules_key_exists(const char *dotted)
{
	size_t n;
	const struct gw_rules_key *rk = gw_rules_config_keys(&n);

	for (size_t i = 0; i < n; i++)
		if (strcmp(rk[i].name, dotted) == 0)
			return true;
	return false;
}

bool gw_config_reloadable(const char *dotted)
{
	const char *dot = dotted ? strchr(dotted, '.') : NULL;
	g_autofree char *group = NULL;
	const struct gw_config_key *k;

	if (!dot)
		return false;
	if (g_str_has_prefix(dotted, "rules."))
		return rules_key_exists(dotted);
	group = g_strndup(dotted, (gsize)(dot - dotted));
	k = gw_config_key_find(group, dot + 1);
	return k && k->reloadable;
}

static bool group_known(const char *group)
{
	if (strcmp(group, "rules") == 0)
		return true;
	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
		if (strcmp(keys[i].group, group) == 0)
			return true;
	return false;
}

/* ---- checks ----------------------------------------------------------------- */

G_GNUC_PRINTF(2, 3)
static void add_error(GwConfig *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_ptr_array_add(c->errors, g_strdup_vprintf(fmt, ap));
	va_end(ap);
}

G_GNUC_PRINTF(2, 3)
static void add_warning(GwConfig *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_ptr_array_add(c->warnings, g_strdup_vprintf(fmt, ap));
	va_end(ap);
}

static bool id_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!g_ascii_isalnum(s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

/* "aa:bb:cc:dd:ee:ff" -> "AA:BB:CC:DD:EE:FF" in ret[18] */
static bool address_normalize(const char *s, char ret[18])
{
	if (strlen(s) != 17)
		return false;
	for (size_t i = 0; i < 17; i++) {
		if (i % 3 == 2 ? s[i] != ':' : !g_ascii_isxdigit(s[i]))
			return false;
		ret[i] = g_ascii_toupper(s[i]);
	}
	ret[17] = '\0';
	return true;
}

static char *join_choices(const char *const *ch)
{
	return g_strjoinv(", ", (char **)ch);
}

/* The key's value, checked; its canonical text, or NULL (an error was
 * added). raw is the value as written (unescaped), not empty. */
static char *check_value(GwConfig *c, const struct gw_config_key *k, const char *raw)
{
	g_autofree char *v = g_strstrip(g_strdup(raw));
	gint64 x;

	switch (k->type) {
	case GW_CONFIG_STRING:
		return g_steal_pointer(&v);
	case GW_CONFIG_ID:
		if (id_valid(v))
			return g_steal_pointer(&v);
		add_error(c, "%s: [%s] %s: \"%s\" is not an id [A-Za-z0-9_-]{1,64}", c->file,
			  k->group, k->name, personal_key(k) ? "(not shown)" : v);
		return NULL;
	case GW_CONFIG_INT:
		if (g_ascii_string_to_signed(v, 10, k->min, k->max, &x, NULL))
			return g_strdup_printf("%" G_GINT64_FORMAT, x);
		add_error(c, "%s: [%s] %s: \"%s\" is not an integer in %" G_GINT64_FORMAT "..%"
			  G_GINT64_FORMAT, c->file, k->group, k->name, v, k->min, k->max);
		return NULL;
	case GW_CONFIG_BOOL:
		if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
			return g_strdup("true");
		if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
			return g_strdup("false");
		add_error(c, "%s: [%s] %s: \"%s\" is not true or false", c->file, k->group,
			  k->name, v);
		return NULL;
	case GW_CONFIG_CHOICE: {
		g_autofree char *all = NULL;

		for (size_t i = 0; k->choices[i]; i++)
			if (strcmp(v, k->choices[i]) == 0)
				return g_steal_pointer(&v);
		all = join_choices(k->choices);
		add_error(c, "%s: [%s] %s: \"%s\" is not one of %s", c->file, k->group, k->name,
			  v, all);
		return NULL;
	}
	case GW_CONFIG_DATE: {
		unsigned int y, m, d;
		char extra;

		if (strlen(v) == 10 && sscanf(v, "%4u-%2u-%2u%c", &y, &m, &d, &extra) == 3 &&
		    v[4] == '-' && v[7] == '-' && y >= 1 && y <= 9999 && m >= 1 && m <= 12 &&
		    d >= 1 && d <= 31 &&
		    g_date_valid_dmy((GDateDay)d, (GDateMonth)m, (GDateYear)y))
			return g_strdup_printf("%04u-%02u-%02u", y, m, d);
		add_error(c, "%s: [%s] %s: \"%s\" is not a date YYYY-MM-DD", c->file, k->group,
			  k->name, v);
		return NULL;
	}
	case GW_CONFIG_ADDRESSES:
	case GW_CONFIG_IDS:
		break;	/* lists: check_list */
	}
	return NULL;
}

/* A list key: its items checked, canonical text "a;b", and the items in
 * *ret_items; NULL if an error was added. */
static char *check_list(GwConfig *c, const struct gw_config_key *k, char ***ret_items)
{
	g_autoptr(GError) e = NULL;
	gsize n = 0;
	g_auto(GStrv) items = g_key_file_get_string_list(c->kf, k->group, k->name, &n, &e);
	g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
	bool ok = true;

	if (!items) {
		/* GLib's message quotes the whole value (others' too, for a
		 * line it read wrongly): never echoed */
		add_error(c, "%s: [%s] %s: not a list of valid UTF-8 text", c->file, k->group,
			  k->name);
		return NULL;
	}
	for (gsize i = 0; i < n; i++) {
		char *item = g_strstrip(items[i]);
		char addr[18];

		if (k->type == GW_CONFIG_ADDRESSES) {
			if (!address_normalize(item, addr)) {
				/* not echoed: it may be most of a real address */
				add_error(c, "%s: [%s] %s: item %zu is not a Bluetooth address "
					  "(AA:BB:CC:DD:EE:FF)", c->file, k->group, k->name,
					  (size_t)i + 1);
				ok = false;
				continue;
			}
			for (guint j = 0; j < out->len; j++)
				if (strcmp(out->pdata[j], addr) == 0) {
					add_error(c, "%s: [%s] %s: item %zu repeats item %u", c->file,
						  k->group, k->name, (size_t)i + 1, j + 1);
					ok = false;
				}
			g_ptr_array_add(out, g_strdup(addr));
		} else {
			if (!id_valid(item)) {
				add_error(c, "%s: [%s] %s: item %zu, \"%s\", is not an id "
					  "[A-Za-z0-9_-]{1,64}", c->file, k->group, k->name,
					  (size_t)i + 1, item);
				ok = false;
				continue;
			}
			g_ptr_array_add(out, g_strdup(item));
		}
	}
	if (ok && out->len == 0 && k->required) {
		add_error(c, "%s: [%s] %s: empty (required)", c->file, k->group, k->name);
		return NULL;
	}
	if (!ok)
		return NULL;
	if (out->len == 0)
		return g_strdup("");	/* empty: unset */
	g_ptr_array_add(out, NULL);
	*ret_items = (char **)g_ptr_array_steal(out, NULL);
	return g_strjoinv(";", *ret_items);
}

static void check_key(GwConfig *c, const struct gw_config_key *k)
{
	g_autoptr(GError) e = NULL;
	g_autofree char *raw = NULL;
	char *canon = NULL;

	if (!g_key_file_has_key(c->kf, k->group, k->name, NULL)) {
		if (k->required)
			add_error(c, "%s: [%s] %s: missing (required)", c->file, k->group, k->name);
		g_hash_table_insert(c->values, g_strdup_printf("%s.%s", k->group, k->name),
				    g_strdup(k->def ? k->def : ""));
		return;
	}
	if (k->type == GW_CONFIG_ADDRESSES || k->type == GW_CONFIG_IDS) {
		char **items = NULL;

		canon = check_list(c, k, &items);
		if (items && k->type == GW_CONFIG_ADDRESSES)
			c->wearables = items;
		else if (items)
			c->aliases = items;
	} else {
		raw = g_key_file_get_string(c->kf, k->group, k->name, &e);
		if (!raw) {
			add_error(c, "%s: [%s] %s: not valid UTF-8 text", c->file, k->group,
				  k->name);	/* GLib's message would quote it */
			return;
		}
		g_strstrip(raw);
		if (!*raw) {
			if (k->required)
				add_error(c, "%s: [%s] %s: empty (required)", c->file, k->group,
					  k->name);
			canon = g_strdup(k->def ? k->def : "");
		} else {
			canon = check_value(c, k, raw);
		}
	}
	if (canon)
		g_hash_table_insert(c->values, g_strdup_printf("%s.%s", k->group, k->name), canon);
}

/* "rules.name: what" -> "what" */
static const char *strip_key(const char *msg, const char *dotted)
{
	size_t n = strlen(dotted);

	if (strncmp(msg, dotted, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
		return msg + n + 2;
	return msg;
}

static void load_rules(GwConfig *c)
{
	g_auto(GStrv) names = g_key_file_get_keys(c->kf, "rules", NULL, NULL);
	g_autoptr(GError) e = NULL;
	bool ok = true;

	gw_rules_config_init(&c->gw.rules);
	for (size_t n = 0; names && names[n]; n++) {
		g_autofree char *key = g_strconcat("rules.", names[n], NULL);
		g_autofree char *v = g_key_file_get_string(c->kf, "rules", names[n], NULL);
		g_autoptr(GError) ke = NULL;

		if (v)
			g_strstrip(v);
		if (!v || !gw_rules_config_set(&c->gw.rules, key, v, &ke)) {
			add_error(c, "%s: [rules] %s: %s", c->file, names[n],
				  ke ? strip_key(ke->message, key) : "not valid UTF-8");
			ok = false;
		}
	}
	if (ok && !gw_rules_config_validate(&c->gw.rules, &e)) {
		const char *m = e->message;

		/* the engine names the key: "rules.<name>: what" */
		if (g_str_has_prefix(m, "rules.") && strstr(m, ": ")) {
			const char *colon = strstr(m, ": ");

			add_error(c, "%s: [rules] %.*s: %s", c->file, (int)(colon - m - 6), m + 6,
				  colon + 2);
		} else {
			add_error(c, "%s: [rules]: %s", c->file, m);
		}
	}
}

static void check_unknown(GwConfig *c)
{
	g_auto(GStrv) groups = g_key_file_get_groups(c->kf, NULL);

	for (size_t g = 0; groups && groups[g]; g++) {
		g_auto(GStrv) names = NULL;

		if (!group_known(groups[g])) {
			add_warning(c, "%s: [%s]: unknown group (ignored)", c->file, groups[g]);
			continue;
		}
		if (strcmp(groups[g], "rules") == 0)
			continue;	/* load_rules: unknown is an error there */
		names = g_key_file_get_keys(c->kf, groups[g], NULL, NULL);
		for (size_t n = 0; names && names[n]; n++)
			if (!gw_config_key_find(groups[g], names[n]))
				add_warning(c, "%s: [%s] %s: unknown key (ignored)", c->file,
					    groups[g], names[n]);
	}
}

/* ---- filling struct gw_gateway_config ---------------------------------------------- */

static const char *val(const GwConfig *c, const char *dotted)
{
	const char *v = g_hash_table_lookup(c->values, dotted);

	return v && *v ? v : NULL;
}

static int64_t val_int(const GwConfig *c, const char *dotted)
{
	const char *v = val(c, dotted);

	return v ? g_ascii_strtoll(v, NULL, 10) : 0;
}

static void fill(GwConfig *c)
{
	struct gw_gateway_config *g = &c->gw;
	const char *date = val(c, "gateway.surgery_date");

	g->gateway_id = val(c, "gateway.id");
	g->patient_id = val(c, "gateway.patient");
	g->state_dir = val(c, "gateway.state_dir");
	if (!gw_clock_mode_parse(val(c, "gateway.clock"), &g->clock_mode))
		add_error(c, "%s: [gateway] clock: not auto, synced or unsynced", c->file);
	if (date) {
		g->agg.have_surgery_date = true;
		g->agg.surgery_year = (int)g_ascii_strtoll(date, NULL, 10);
		g->agg.surgery_month = (int)g_ascii_strtoll(date + 5, NULL, 10);
		g->agg.surgery_day = (int)g_ascii_strtoll(date + 8, NULL, 10);
	} else {
		g->agg.have_surgery_date = false;
	}
	g->adapter = val(c, "ble.adapter");
	g->wearables = (const char *const *)c->wearables;
	g->n_wearables = c->wearables ? g_strv_length(c->wearables) : 0;
	g->aliases = (const char *const *)c->aliases;
	g->uplink.uri = val(c, "mqtt.uri");
	g->uplink.ca_file = val(c, "mqtt.ca_file");
	g->uplink.cert_file = val(c, "mqtt.cert_file");
	g->uplink.key_file = val(c, "mqtt.key_file");
	g->uplink.username = val(c, "mqtt.username");
	g->uplink.password = val(c, "mqtt.password");
	g->uplink.allow_plaintext = g_strcmp0(val(c, "mqtt.allow_plaintext"), "true") == 0;
	g->uplink.keepalive_s = (int)val_int(c, "mqtt.keepalive_s");
	g->uplink.mqtt_version = (int)val_int(c, "mqtt.version");
	g->uplink.window = (unsigned int)val_int(c, "mqtt.window");
	g->backlog_rate = (unsigned int)val_int(c, "mqtt.backlog_rate");
	g->status_interval_s = (unsigned int)val_int(c, "mqtt.status_interval_s");
	g->store_budget_bytes = (uint64_t)val_int(c, "store.budget_mb") << 20;
	g->commit_interval_ms = (unsigned int)val_int(c, "store.commit_interval_ms");
	g->fallback_command = val(c, "escalation.fallback_command");
	c->log_level = val(c, "log.level");
}

/* ---- loading ------------------------------------------------------------------ */

static GwConfig *config_new(const char *file, const struct gw_gateway_config *base)
{
	GwConfig *c = g_new0(GwConfig, 1);

	if (base)
		c->gw = *base;
	c->file = g_strdup(file ? file : "(config)");
	c->errors = g_ptr_array_new_with_free_func(g_free);
	c->warnings = g_ptr_array_new_with_free_func(g_free);
	c->kf = g_key_file_new();
	c->values = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	return c;
}

static void load(GwConfig *c)
{
	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
		check_key(c, &keys[i]);
	load_rules(c);
	check_unknown(c);
	if (c->wearables && c->aliases &&
	    g_strv_length(c->aliases) != g_strv_length(c->wearables))
		add_error(c, "%s: [ble] aliases: %u aliases for %u wearables", c->file,
			  g_strv_length(c->aliases), g_strv_length(c->wearables));
	if (c->errors->len == 0)
		fill(c);
}

/* The first line GKeyFile cannot take (1-based; 0 if none is found):
 * neither blank, a # comment, a [group] nor key=value, or not UTF-8. */
static unsigned int bad_line(const char *data, gssize len)
{
	size_t n = len < 0 ? strlen(data) : (size_t)len;
	unsigned int line = 1;
	const char *p = data, *end = data + n;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t l = eol ? (size_t)(eol - p) : (size_t)(end - p);
		g_autofree char *t = g_strndup(p, l);

		g_strstrip(t);
		if (!g_utf8_validate(p, (gssize)l, NULL) || memchr(p, '\0', l) ||
		    (*t && *t != '#' && *t != '[' && !strchr(t, '=')) ||
		    (*t == '[' && t[strlen(t) - 1] != ']'))
			return line;
		line++;
		p += l + 1;
	}
	return 0;
}

GwConfig *gw_config_load_data(const char *file, const char *data, gssize len,
			      const struct gw_gateway_config *base)
{
	GwConfig *c = config_new(file, base);
	g_autoptr(GError) e = NULL;

	if (!data || !g_key_file_load_from_data(c->kf, data, (gsize)len, G_KEY_FILE_NONE, &e)) {
		/* GLib's message quotes the offending line, which may hold a
		 * patient id or a password: say where it is instead */
		if (!data)
			add_error(c, "%s: no data", c->file);
		else
			add_error(c, "%s: line %u is not key=value, a [group] or a # comment "
				  "(or not UTF-8)", c->file, bad_line(data, len));
		return c;
	}
	load(c);
	return c;
}

GwConfig *gw_config_load_file(const char *path, const struct gw_gateway_config *base)
{
	g_autofree char *data = NULL;
	g_autoptr(GError) e = NULL;
	gsize len = 0;
	GwConfig *c;

	if (!g_file_get_contents(path, &data, &len, &e)) {
		c = config_new(path, base);
		add_error(c, "%s: %s", c->file, e->message);
		return c;
	}
	return gw_config_load_data(path, data, (gssize)len, base);
}

void gw_config_free(GwConfig *c)
{
	if (!c)
		return;
	g_free(c->file);
	g_ptr_array_unref(c->errors);
	g_ptr_array_unref(c->warnings);
	g_key_file_unref(c->kf);
	g_hash_table_unref(c->values);
	g_strfreev(c->wearables);
	g_strfreev(c->aliases);
	g_free(c);
}

bool gw_config_ok(const GwConfig *c)
{
	return c && c->errors->len == 0;
}

char *gw_config_findings(const GwConfig *c)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < c->errors->len; i++)
		g_string_append_printf(s, "%s\n", (const char *)c->errors->pdata[i]);
	for (guint i = 0; i < c->warnings->len; i++)
		g_string_append_printf(s, "%s\n", (const char *)c->warnings->pdata[i]);
	return g_string_free(s, FALSE);
}

char *gw_config_value(const GwConfig *c, const char *group, const char *name)
{
	g_autofree char *dotted = NULL;
	const char *v;

	if (!gw_config_ok(c) || !group || !name)
		return NULL;
	dotted = g_strdup_printf("%s.%s", group, name);
	if (strcmp(group, "rules") == 0)
		return gw_rules_config_get(&c->gw.rules, dotted);
	if (!gw_config_key_find(group, name))
		return NULL;
	v = g_hash_table_lookup(c->values, dotted);
	return g_strdup(v ? v : "");
}

void gw_config_diff(const GwConfig *old, const GwConfig *new_, GPtrArray **ret_reloadable,
		    GPtrArray **ret_restart)
{
	GPtrArray *rel = g_ptr_array_new_with_free_func(g_free);
	GPtrArray *res = g_ptr_array_new_with_free_func(g_free);
	const struct gw_rules_key *rk;
	size_t n;

	if (gw_config_ok(old) && gw_config_ok(new_)) {
		for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
			const struct gw_config_key *k = &keys[i];
			g_autofree char *dotted = g_strdup_printf("%s.%s", k->group, k->name);

			if (g_strcmp0(g_hash_table_lookup(old->values, dotted),
				      g_hash_table_lookup(new_->values, dotted)) != 0)
				g_ptr_array_add(k->reloadable ? rel : res, g_steal_pointer(&dotted));
		}
		rk = gw_rules_config_keys(&n);
		for (size_t i = 0; i < n; i++) {
			g_autofree char *a = gw_rules_config_get(&old->gw.rules, rk[i].name);
			g_autofree char *b = gw_rules_config_get(&new_->gw.rules, rk[i].name);

			if (g_strcmp0(a, b) != 0)
				g_ptr_array_add(rel, g_strdup(rk[i].name));
		}
	}
	*ret_reloadable = rel;
	*ret_restart = res;
}
