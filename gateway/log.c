// SPDX-License-Identifier: MIT
/*
 * The log writer: journal or stderr, the level, masking, the ring of
 * recent warnings (see log.h).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

struct recent {
	double at;
	char *where;
	char *message;
};

static GMutex lock;
static GLogLevelFlags level_max = G_LOG_LEVEL_MESSAGE;
static bool personal;
static gsize installed;
static struct recent ring[GW_LOG_RECENT];
static unsigned int ring_next, ring_len;

static const struct {
	const char *name;
	GLogLevelFlags level;
} levels[] = {
	{ "error", G_LOG_LEVEL_CRITICAL },
	{ "warning", G_LOG_LEVEL_WARNING },
	{ "message", G_LOG_LEVEL_MESSAGE },
	{ "info", G_LOG_LEVEL_INFO },
	{ "debug", G_LOG_LEVEL_DEBUG },
};

bool gw_log_level_parse(const char *s, GLogLevelFlags *ret)
{
	for (size_t i = 0; s && i < G_N_ELEMENTS(levels); i++)
		if (strcmp(s, levels[i].name) == 0) {
			*ret = levels[i].level;
			return true;
		}
	return false;
}

const char *gw_log_level_name(GLogLevelFlags level)
{
	for (size_t i = 0; i < G_N_ELEMENTS(levels); i++)
		if (levels[i].level == level)
			return levels[i].name;
	return level & G_LOG_LEVEL_ERROR ? "error" : "?";
}

void gw_log_set_level(GLogLevelFlags level)
{
	g_mutex_lock(&lock);
	level_max = level;
	g_mutex_unlock(&lock);
}

GLogLevelFlags gw_log_get_level(void)
{
	GLogLevelFlags l;

	g_mutex_lock(&lock);
	l = level_max;
	g_mutex_unlock(&lock);
	return l;
}

void gw_log_set_personal(bool on)
{
	g_mutex_lock(&lock);
	personal = on;
	g_mutex_unlock(&lock);
}

bool gw_log_personal(void)
{
	bool p;

	g_mutex_lock(&lock);
	p = personal;
	g_mutex_unlock(&lock);
	return p;
}

/* ---- masking -------------------------------------------------------------------- */

/* s[0..17) is six hex pairs joined by one separator, ':' or '_' */
static bool looks_like_address(const char *s)
{
	char sep = s[2];

	if (sep != ':' && sep != '_')
		return false;
	for (size_t i = 0; i < 17; i++) {
		if (i % 3 == 2) {
			if (s[i] != sep)
				return false;
		} else if (!g_ascii_isxdigit(s[i])) {
			return false;
		}
	}
	return true;
}

/* s[0..12) is upper-case hex with at least one letter: an address
 * without its colons (the store's wearable ids) */
static bool looks_like_bare_address(const char *s)
{
	bool letter = false;

	for (size_t i = 0; i < 12; i++) {
		if (s[i] >= 'A' && s[i] <= 'F')
			letter = true;
		else if (!g_ascii_isdigit(s[i]))
			return false;
	}
	return letter;
}

const char *gw_log_address(const char *address, char buf[GW_LOG_ADDR_SIZE])
{
	if (!address || strlen(address) != 17 || !looks_like_address(address) ||
	    address[2] != ':') {
		g_strlcpy(buf, "XX:XX:XX:XX:XX:XX", GW_LOG_ADDR_SIZE);
		return buf;
	}
	for (size_t i = 0; i < 17; i++)
		buf[i] = g_ascii_toupper(address[i]);
	buf[17] = '\0';
	if (!gw_log_personal())
		memcpy(buf, "XX:XX:XX:XX", 11);
	return buf;
}

static char *redact(const char *text, bool keep)
{
	char *out = g_strdup(text ? text : "");
	size_t len = strlen(out);

	if (keep)
		return out;
	for (size_t i = 0; i < len; i++) {
		bool edge = i == 0 || !g_ascii_isalnum(out[i - 1]);

		if (!edge)
			continue;
		if (i + 17 <= len && (i + 17 == len || !g_ascii_isxdigit(out[i + 17])) &&
		    looks_like_address(out + i)) {
			for (size_t j = 0; j < 4; j++) {
				out[i + 3 * j] = 'X';
				out[i + 3 * j + 1] = 'X';
			}
			i += 16;
		} else if (i + 12 <= len && (i == 0 || out[i - 1] != '-') &&
			   (i + 12 == len || (!g_ascii_isalnum(out[i + 12]) && out[i + 12] != '-')) &&
			   looks_like_bare_address(out + i)) {
			memset(out + i, 'X', 8);
			i += 11;
		}
	}
	return out;
}

char *gw_log_redact(const char *text)
{
	return redact(text, gw_log_personal());
}

/* ---- the ring ------------------------------------------------------------------- */

static void ring_add(const char *where, const char *message)
{
	struct recent *r;

	g_mutex_lock(&lock);
	r = &ring[ring_next];
	g_free(r->where);
	g_free(r->message);
	r->at = (double)g_get_real_time() / G_USEC_PER_SEC;
	r->where = g_strdup(where ? where : "");
	r->message = g_strdup(message);
	ring_next = (ring_next + 1) % GW_LOG_RECENT;
	if (ring_len < GW_LOG_RECENT)
		ring_len++;
	g_mutex_unlock(&lock);
}

JsonNode *gw_log_recent(void)
{
	JsonArray *a = json_array_new();
	JsonNode *n = json_node_new(JSON_NODE_ARRAY);

	g_mutex_lock(&lock);
	for (unsigned int i = 0; i < ring_len; i++) {
		const struct recent *r =
			&ring[(ring_next + GW_LOG_RECENT - ring_len + i) % GW_LOG_RECENT];
		JsonObject *o = json_object_new();

		json_object_set_double_member(o, "at", r->at);
		json_object_set_string_member(o, "where", r->where);
		json_object_set_string_member(o, "message", r->message);
		json_array_add_object_element(a, o);
	}
	g_mutex_unlock(&lock);
	json_node_take_array(n, a);
	return n;
}

/* ---- the writer ----------------------------------------------------------------- */

/* the most severe level in flags */
static GLogLevelFlags severity(GLogLevelFlags flags)
{
	flags &= G_LOG_LEVEL_MASK;
	for (GLogLevelFlags l = G_LOG_LEVEL_ERROR; l <= G_LOG_LEVEL_DEBUG; l <<= 1)
		if (flags & l)
			return l;
	return G_LOG_LEVEL_DEBUG;
}

static char *field_text(const GLogField *f)
{
	if (f->length < 0)
		return g_strdup(f->value);
	return g_strndup(f->value, (gsize)f->length);
}

GLogWriterOutput gw_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
			       gpointer user_data)
{
	GLogLevelFlags sev = severity(level);
	bool keep = gw_log_personal();
	g_autofree char *message = NULL;
	g_autofree char *domain = NULL;
	g_autofree GLogField *out = g_new0(GLogField, n_fields + 1);
	gsize n_out = 0;
	bool have_ident = false;
	GLogWriterOutput r = G_LOG_WRITER_UNHANDLED;

	(void)user_data;
	for (gsize i = 0; i < n_fields; i++) {
		out[n_out] = fields[i];
		if (strcmp(fields[i].key, "MESSAGE") == 0) {
			g_autofree char *m = field_text(&fields[i]);

			g_free(message);
			message = redact(m, keep);
			out[n_out].value = message;
			out[n_out].length = -1;
		} else if (strcmp(fields[i].key, "GLIB_DOMAIN") == 0) {
			g_free(domain);
			domain = field_text(&fields[i]);
		} else if (strcmp(fields[i].key, "SYSLOG_IDENTIFIER") == 0) {
			have_ident = true;
		}
		n_out++;
	}
	if (!message)
		message = g_strdup("");
	if (!have_ident && g_get_prgname())
		out[n_out++] = (GLogField){ "SYSLOG_IDENTIFIER", g_get_prgname(), -1 };

	if (sev <= G_LOG_LEVEL_WARNING)
		ring_add(domain, message);
	if (sev > gw_log_get_level() && !(level & G_LOG_LEVEL_ERROR))
		return G_LOG_WRITER_HANDLED;

	if (g_log_writer_is_journald(fileno(stderr)))
		r = g_log_writer_journald(level, out, n_out, NULL);
	if (r != G_LOG_WRITER_HANDLED) {
		g_autofree char *line = g_log_writer_format_fields(level, out, n_out, FALSE);

		fprintf(stderr, "%s\n", line);
		fflush(stderr);
		r = G_LOG_WRITER_HANDLED;
	}
	return r;
}

void gw_log_init(void)
{
	if (g_once_init_enter(&installed)) {
		g_log_set_writer_func(gw_log_writer, NULL, NULL);
		g_once_init_leave(&installed, 1);
	}
}
