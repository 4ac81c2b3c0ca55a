/* SPDX-License-Identifier: MIT */
/*
 * rehablinkd's config file (config/rehablink.conf documents every key): a
 * GKeyFile read through one table of keys with their types, ranges,
 * defaults, and whether a reload (SIGHUP, Reload()) applies them or they
 * need a restart. [rules] goes through the escalation engine's own table
 * (gw_rules_config_set); every rules key is reloadable.
 *
 * Loading never stops at the first problem: every error is collected,
 * each naming the file, the group, the key and what is wrong
 * ("FILE: [group] key: what"); unknown keys and groups are warnings (the
 * file still loads), except in [rules], where an unknown key is an error
 * (a misspelt clinical threshold must not fall back to its default
 * silently).
 *
 * Depends on GLib, rules.c and clock.c only (tests/test-config.c links
 * nothing else).
 */
#ifndef REHABLINK_GATEWAY_CONFIG_H
#define REHABLINK_GATEWAY_CONFIG_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "gateway.h"

enum gw_config_type {
	GW_CONFIG_STRING,	/* any text; empty is the same as unset */
	GW_CONFIG_ID,		/* a topic id: [A-Za-z0-9_-]{1,64} */
	GW_CONFIG_INT,		/* an integer in min..max */
	GW_CONFIG_BOOL,		/* true or false */
	GW_CONFIG_CHOICE,	/* one of choices */
	GW_CONFIG_DATE,		/* YYYY-MM-DD, a valid date */
	GW_CONFIG_ADDRESSES,	/* ';'-separated Bluetooth addresses, at least one */
	GW_CONFIG_IDS,		/* ';'-separated topic ids */
};

struct gw_config_key {
	const char *group, *name;
	enum gw_config_type type;
	int64_t min, max;		/* GW_CONFIG_INT */
	const char *const *choices;	/* GW_CONFIG_CHOICE: NULL-terminated */
	const char *def;		/* the default as text; NULL: unset */
	bool required;
	bool reloadable;		/* a reload applies it; else a restart */
	const char *help;		/* one line */
};

/* The table, in the order of config/rehablink.conf (without [rules]). */
const struct gw_config_key *gw_config_keys(size_t *ret_n);
const struct gw_config_key *gw_config_key_find(const char *group, const char *name);
/* "group.key" (rules keys included): does a reload apply it. */
bool gw_config_reloadable(const char *dotted);

/* One loaded file. Every pointer in gw points into this struct (or into
 * the base the loader was given). Read-only. */
typedef struct gw_config GwConfig;
struct gw_config {
	struct gw_gateway_config gw;	/* filled only if gw_config_ok() */
	const char *log_level;		/* [log] level: error .. debug */
	char *file;			/* as named in the findings */
	GPtrArray *errors;		/* char *: "FILE: [group] key: what is wrong" */
	GPtrArray *warnings;		/* char *: unknown keys and groups */

	/* owned storage */
	GKeyFile *kf;
	GHashTable *values;		/* "group.key" -> effective value as text */
	char **wearables, **aliases;
};

/*
 * Loads a config from text (data, len; len -1: NUL-terminated) or from a
 * file; file names it in the findings. base holds the members of struct
 * gw_gateway_config that no key sets (the caller's gw_gateway_config_init:
 * uplink and aggregation defaults, version, log_personal, conn); NULL:
 * zeroed. Never NULL: check gw_config_ok(). A file that cannot be read
 * or parsed is one error.
 */
GwConfig *gw_config_load_data(const char *file, const char *data, gssize len,
			      const struct gw_gateway_config *base);
GwConfig *gw_config_load_file(const char *path, const struct gw_gateway_config *base);
void gw_config_free(GwConfig *c);	/* NULL-safe */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwConfig, gw_config_free)

/* No errors (warnings allowed). */
bool gw_config_ok(const GwConfig *c);
/* Every error, then every warning, one a line ("" if none; g_free). */
char *gw_config_findings(const GwConfig *c);
/* The effective value of a key (its default if unset) as text, lists
 * joined by ';', "" for unset; "rules.*" keys too; NULL: unknown key or a
 * config that did not load (g_free). */
char *gw_config_value(const GwConfig *c, const char *group, const char *name);

/* The keys ("group.key", every table and rules key) whose effective
 * values differ between old and new, in table order, split into those a
 * reload applies and those that need a restart. Each array owns its
 * strings; free with g_ptr_array_unref. */
void gw_config_diff(const GwConfig *old, const GwConfig *new_, GPtrArray **ret_reloadable,
		    GPtrArray **ret_restart);

#endif
