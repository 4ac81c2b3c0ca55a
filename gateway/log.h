/* SPDX-License-Identifier: MIT */
/*
 * rehablinkd's logging: one GLib log writer (g_log_set_writer_func) that
 *
 *  - writes to the journal with structured fields (GLIB_DOMAIN, PRIORITY,
 *    CODE_*, SYSLOG_IDENTIFIER) when stderr is connected to it, and one
 *    line per message to stderr otherwise;
 *  - drops what is less severe than the level (error .. debug);
 *  - masks anything that looks like a full Bluetooth address
 *    (AA:BB:CC:DD:EE:FF, AA_BB_..., or the 12 upper-case hex digits of a
 *    store wearable id) to its last two bytes, unless personal info is on:
 *    a safety net; code masks with gw_log_address() itself;
 *  - keeps the last GW_LOG_RECENT warnings and errors (masked), whatever
 *    the level, for the control API (gw_log_recent).
 *
 * Thread-safe (paho's threads may log).
 */
#ifndef REHABLINK_GATEWAY_LOG_H
#define REHABLINK_GATEWAY_LOG_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>

#define GW_LOG_ADDR_SIZE 18	/* "XX:XX:XX:XX:EE:FF" + NUL */
#define GW_LOG_RECENT 16

/* Installs the writer (once; later calls do nothing). Level "message",
 * personal info off. */
void gw_log_init(void);

/* "error" (errors and criticals), "warning", "message", "info", "debug":
 * the least severe level written. false: not one of them. */
bool gw_log_level_parse(const char *s, GLogLevelFlags *ret);
const char *gw_log_level_name(GLogLevelFlags level);
void gw_log_set_level(GLogLevelFlags level);
GLogLevelFlags gw_log_get_level(void);

/* --log-personal-info: full addresses (and whatever the code logs only
 * then) are written. */
void gw_log_set_personal(bool personal);
bool gw_log_personal(void);

/* address as it may be logged: itself when personal, else
 * "XX:XX:XX:XX:EE:FF" (upper case); anything that is not an address
 * becomes "XX:XX:XX:XX:XX:XX". Returns buf. */
const char *gw_log_address(const char *address, char buf[GW_LOG_ADDR_SIZE]);
/* text with every address-like run masked (a copy even when personal;
 * g_free). */
char *gw_log_redact(const char *text);

/* The last warnings and errors, oldest first: a JSON array of
 * {"at": unix seconds, "where": log domain, "message": text}. */
JsonNode *gw_log_recent(void);

/* The writer itself, for tests. */
GLogWriterOutput gw_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
			       gpointer user_data);

#endif
