// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: what rehablinkctl parses (gateway/ctl-util.c): its
 * command-line values, ctl_parse_time() (Unix seconds, ISO 8601, a date,
 * relative -2h/-1h30m/+3d) and ctl_valid_address(), and the helpers that
 * turn numbers of the daemon's JSON answers into text (ctl_age,
 * ctl_duration, ctl_bytes, ctl_clock) through the accessors (ctl_num,
 * ctl_str, ctl_bool). json-glib itself is not the target.
 *
 * Byte 0 chooses: 0 time, 1 address, 2 JSON answer, 3 all three. The
 * rest is the argument (up to its first NUL), or the members of a JSON
 * object (see build_object).
 *
 * Invariants:
 *  - ctl_parse_time: TRUE with a finite time and no error, or FALSE with
 *    a G_OPTION_ERROR_BAD_VALUE and *ret untouched; relative times are on
 *    their sign's side of now; plain digits are the number itself;
 *  - ctl_valid_address accepts exactly what the daemon's Pair/Forget accept
 *    (gw_bluez_address_normalize, gateway/bluez-parse.c);
 *  - the text helpers take any number the daemon may answer (huge,
 *    negative, inf, nan) without undefined behaviour, and give UTF-8;
 *  - no leaks (LeakSanitizer).
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -Iproto -Igateway \
 *     -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *     $(pkg-config --cflags gio-2.0 gio-unix-2.0 json-glib-1.0) \
 *     tests/fuzz/fuzz-ctl-parse.c gateway/ctl-util.c gateway/bluez-parse.c \
 *     gateway/ble-types.c $(pkg-config --libs gio-2.0 json-glib-1.0) -o fuzz-ctl-parse
 *   ./fuzz-ctl-parse -dict=tests/fuzz/ctl.dict tests/fuzz/corpus/ctl-parse
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bluez-parse.h"
#include "ctl-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* a fixed "now" keeps runs reproducible: 2026-11-17T... UTC */
#define NOW 1795000000.0

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz-ctl-parse: invariant broken: %s\n", what);
		abort();
	}
}

static void fuzz_time(const char *s)
{
	const double sentinel = -12345.25;
	double t = sentinel;
	g_autoptr(GError) e = NULL;

	if (!ctl_parse_time(s, NOW, &t, &e)) {
		check(e && e->domain == G_OPTION_ERROR && e->code == G_OPTION_ERROR_BAD_VALUE,
		      "time: FALSE without a G_OPTION_ERROR_BAD_VALUE");
		check(t == sentinel, "time: *ret touched on error");
		return;
	}
	check(e == NULL, "time: TRUE with an error");
#ifdef FUZZ_CTL_KNOWN_BUGS	/* -D it to look past the known bugs */
	if (!isfinite(t) || fabs(t) >= 9.2e12)
		return;
#endif
	if (!isfinite(t)) {
		fprintf(stderr, "fuzz-ctl-parse: time '%s' parsed to %f\n", s, t);
		abort();
	}
	if (s[0] == '-' && s[1] != '\0' && !g_ascii_isdigit(s[0]))
		check(t <= NOW, "time: -RELATIVE after now");
	if (s[0] == '+')
		check(t >= NOW, "time: +RELATIVE before now");
	if (strspn(s, "0123456789") == strlen(s))
		check(t == g_ascii_strtod(s, NULL), "time: digits are not the number");
	/* what the commands then do with it (control.c: since * 1e6 to int64) */
	check(fabs(t) < 9.2e12, "time: too far to be microseconds in an int64");
}

static void fuzz_address(const char *s)
{
	char norm[GW_BLUEZ_ADDR_SIZE];
	bool cli = ctl_valid_address(s);
	bool daemon = gw_bluez_address_normalize(s, norm);

	check(cli == daemon, "address: rehablinkctl and the daemon disagree");
}

static void text(char *s)
{
	check(s != NULL && g_utf8_validate(s, -1, NULL), "text helper: not UTF-8");
	g_free(s);
}

/* The daemon's answer as a JSON object built from the bytes (json-glib's
 * parser is not the target): records of a tag byte (0 int64, 1 double,
 * 2 string of a length byte, 3 bool) and the value. */
static JsonObject *build_object(const uint8_t *p, size_t n)
{
	JsonObject *o = json_object_new();
	unsigned int k = 0;

	while (n >= 1) {
		uint8_t tag = p[0] & 3;
		char key[16];

		p++, n--;
		snprintf(key, sizeof(key), "k%u", k++);
		if ((tag == 0 || tag == 1) && n >= 8) {
			int64_t i;
			double d;

			memcpy(&i, p, 8);
			memcpy(&d, p, 8);
			if (tag == 0)
				json_object_set_int_member(o, key, i);
			else	/* JSON has no NaN; a huge exponent gives inf */
				json_object_set_double_member(o, key, isnan(d) ? INFINITY : d);
			p += 8, n -= 8;
		} else if (tag == 2 && n >= 1) {
			size_t len = p[0] < n - 1 ? p[0] : n - 1;
			g_autofree char *str = g_strndup((const char *)p + 1, len);

			json_object_set_string_member(o, key, str);
			p += 1 + len, n -= 1 + len;
		} else if (tag == 3 && n >= 1) {
			json_object_set_boolean_member(o, key, p[0] & 1);
			p++, n--;
		} else {
			json_object_set_null_member(o, key);
			break;
		}
	}
	return o;
}

static void fuzz_json(const uint8_t *data, size_t len)
{
	g_autoptr(JsonObject) o = build_object(data, len);
	g_autoptr(JsonNode) root = json_node_init_object(json_node_alloc(), o);
	struct ctl c = { .now = NOW, .utf8 = true, .cols = 80 };
	GList *members;

	check(ctl_node_obj(root) == o, "ctl_node_obj");
	members = json_object_get_members(o);
	for (GList *l = members; l; l = l->next) {
		const char *key = l->data;
		double v;
		bool b;
		const char *str = ctl_str(o, key);

		if (ctl_num(o, key, &v)
#ifdef FUZZ_CTL_KNOWN_BUGS
		    && fabs(v) < 1e15
#endif
		    ) {
			text(ctl_age(v));
			text(ctl_age(c.now - v));
			text(ctl_duration(v));
			text(ctl_bytes(v));
			text(ctl_clock(&c, v));
			check(ctl_num_or(o, key, 0) == v || isnan(v), "ctl_num_or");
		}
		if (str) {
			g_autoptr(GString) out = g_string_new(NULL);
			g_autofree char *cut = NULL;

			ctl_pad(out, str, 12);
			cut = ctl_cut(&c, str, 12);
			/* (json-glib may hand over a string that is not UTF-8:
			 * then it is passed through as it is) */
			if (g_utf8_validate(str, -1, NULL))
				text(g_steal_pointer(&cut));
		}
		if (ctl_has_bool(o, key, &b))
			check(ctl_bool(o, key, !b) == b, "ctl_bool");
		(void)ctl_obj(o, key);
		(void)ctl_arr(o, key);
	}
	g_list_free(members);
	check(ctl_str(o, "no such member, surely") == NULL, "ctl_str of a missing member");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	/* GSlice (GLib < 2.76) hides leaks from LeakSanitizer; GLib reads
	 * G_SLICE when it is loaded, so start again with it set. A fixed zone
	 * with DST keeps ISO 8601 local times reproducible. */
	if (!getenv("G_SLICE") || !getenv("TZ")) {
		setenv("G_SLICE", "always-malloc", 1);
		setenv("TZ", "Europe/Berlin", 1);
		execv("/proc/self/exe", *argv);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree char *s = NULL;
	uint8_t op;

	if (size < 1 || size > 4096)
		return 0;
	op = data[0] & 3;
	s = g_strndup((const char *)data + 1, size - 1);	/* up to the first NUL */
	if (op == 0 || op == 3)
		fuzz_time(s);
	if (op == 1 || op == 3)
		fuzz_address(s);
	if (op == 2 || op == 3)
		fuzz_json(data + 1, size - 1);
	return 0;
}
