// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the parsers of what bluetoothd sends (gateway/bluez-parse.[ch]),
 * held to the promises of bluez-parse.h.
 *
 * Input: byte 0 chooses the function (low 4 bits) and, for the property
 * parsers, how the rest becomes a GVariant (bit 4): the GVariant text
 * format (g_variant_parse, any type: what is not a{sv} must be refused)
 * or serialised a{sv} bytes (g_variant_new_from_data, untrusted, then
 * g_variant_get_normal_form, as GDBus hands it over). Byte 1 is a length
 * where a second string is needed (adapter path, D-Bus error message).
 *
 * Invariants:
 *  - property parsers: TRUE and no error, or FALSE with a GW_BLUEZ_PARSE_ERROR
 *    of a known code and every output untouched (checked against a
 *    sentinel); on success addresses are "AA:BB:CC:DD:EE:FF" upper case
 *    and equal the dict's Address ignoring case, UUIDs are lower case
 *    8-4-4-4-12, the role is gw_char_from_uuid(uuid), flags are known
 *    bits only; device copy/clear round trip, clear is idempotent;
 *  - the error table: a class in range, the same for the same input;
 *    from a GError of a remote D-Bus error the name comes back as sent;
 *  - address/UUID normalisation: false leaves ret untouched; true gives a
 *    canonical string equal to the input ignoring case, stable when fed
 *    back;
 *  - paths: gw_bluez_path_device finds a "dev_XX_.." component whose
 *    prefix rebuilds with gw_bluez_device_path; basename and is_below agree
 *    with the text;
 *  - gw_bluez_redact: same length, only hex digits turned into 'X', no
 *    standalone address left unmasked; personal: unchanged copy;
 *  - no leaks (LeakSanitizer).
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -Iproto -Igateway \
 *     -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *     $(pkg-config --cflags gio-2.0) tests/fuzz/fuzz-bluez-parse.c \
 *     gateway/bluez-parse.c gateway/ble-types.c $(pkg-config --libs gio-2.0) \
 *     -o fuzz-bluez-parse
 *   ./fuzz-bluez-parse -dict=tests/fuzz/bluez.dict tests/fuzz/corpus/bluez-parse
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>

#include <gio/gio.h>

#include "bluez-parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define SENTINEL 0xa5

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz-bluez-parse: invariant broken: %s\n", what);
		abort();
	}
}

static bool untouched(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != SENTINEL)
			return false;
	return true;
}

static bool is_hex_upper(char c)
{
	return g_ascii_isdigit(c) || (c >= 'A' && c <= 'F');
}

static bool is_hex_lower(char c)
{
	return g_ascii_isdigit(c) || (c >= 'a' && c <= 'f');
}

static bool canonical_address(const char *s)
{
	if (strlen(s) != GW_BLUEZ_ADDR_SIZE - 1)
		return false;
	for (size_t i = 0; i < GW_BLUEZ_ADDR_SIZE - 1; i++)
		if (i % 3 == 2 ? s[i] != ':' : !is_hex_upper(s[i]))
			return false;
	return gw_bluez_address_valid(s);
}

static bool canonical_uuid(const char *s)
{
	if (strlen(s) != GW_BLUEZ_UUID_SIZE - 1)
		return false;
	for (size_t i = 0; i < GW_BLUEZ_UUID_SIZE - 1; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !is_hex_lower(s[i]))
			return false;
	}
	return true;
}

static void check_parse_error(const GError *e)
{
	check(e != NULL, "FALSE without an error");
	check(e->domain == GW_BLUEZ_PARSE_ERROR, "error domain");
	check(e->code >= GW_BLUEZ_PARSE_ERROR_NOT_DICT && e->code <= GW_BLUEZ_PARSE_ERROR_VALUE,
	      "error code");
	check(e->message && *e->message, "empty error message");
}

/* The dict's string under key, or NULL. */
static const char *dict_string(GVariant *props, const char *key, GVariant **hold)
{
	*hold = NULL;
	if (!props || !g_variant_is_of_type(props, G_VARIANT_TYPE_VARDICT))
		return NULL;
	*hold = g_variant_lookup_value(props, key, G_VARIANT_TYPE_STRING);
	return *hold ? g_variant_get_string(*hold, NULL) : NULL;
}

/* ---- property dicts ---- */

static void fuzz_adapter(const char *path, GVariant *props)
{
	struct gw_bluez_adapter ad;
	g_autoptr(GError) e = NULL;
	g_autoptr(GVariant) addr = NULL;

	memset(&ad, SENTINEL, sizeof(ad));
	if (!gw_bluez_parse_adapter(path, props, &ad, &e)) {
		check_parse_error(e);
		check(untouched(&ad, sizeof(ad)), "adapter: output touched on error");
		return;
	}
	check(!e, "adapter: TRUE with an error");
	check(ad.present, "adapter: not present");
	check(canonical_address(ad.address), "adapter: address not canonical");
	check(!g_ascii_strcasecmp(ad.address, dict_string(props, "Address", &addr)),
	      "adapter: address is not the dict's");
	check(gw_bluez_path_basename(path) && !strcmp(ad.name, gw_bluez_path_basename(path)),
	      "adapter: name is not the path's last component");
	check(*ad.name && !strchr(ad.name, '/'), "adapter: name");
}

static void fuzz_device(GVariant *props)
{
	struct gw_bluez_device dev, copy;
	g_autoptr(GError) e = NULL;
	g_autoptr(GVariant) addr = NULL;

	memset(&dev, SENTINEL, sizeof(dev));
	if (!gw_bluez_parse_device(props, &dev, &e)) {
		check_parse_error(e);
		check(untouched(&dev, sizeof(dev)), "device: output touched on error");
		return;
	}
	check(!e, "device: TRUE with an error");
	check(canonical_address(dev.address), "device: address not canonical");
	check(!g_ascii_strcasecmp(dev.address, dict_string(props, "Address", &addr)),
	      "device: address is not the dict's");
	check(dev.uuids != NULL, "device: uuids NULL");
	for (size_t i = 0; dev.uuids[i]; i++)
		check(canonical_uuid(dev.uuids[i]), "device: UUID not canonical");
	if (dev.name)
		check(g_utf8_validate(dev.name, -1, NULL), "device: name not UTF-8");
	if (!dev.has_rssi)
		check(dev.rssi == 0, "device: rssi without has_rssi");

	gw_bluez_device_copy(&copy, &dev);
	check(!strcmp(copy.address, dev.address) && g_strcmp0(copy.name, dev.name) == 0 &&
	      g_strv_length(copy.uuids) == g_strv_length(dev.uuids), "device: copy differs");
	gw_bluez_device_clear(&copy);
	gw_bluez_device_clear(&dev);
	check(!dev.uuids && !dev.name, "device: clear left pointers");
	gw_bluez_device_clear(&dev);	/* idempotent */
	gw_bluez_device_clear(NULL);
}

static void fuzz_char(GVariant *props, bool with_outputs)
{
	struct gw_bluez_gatt_char ch;
	bool notifying;
	char *service = (char *)&notifying;	/* a sentinel pointer */
	g_autoptr(GError) e = NULL;
	bool ok;

	memset(&ch, SENTINEL, sizeof(ch));
	memset(&notifying, SENTINEL, sizeof(notifying));
	ok = gw_bluez_parse_char(props, &ch, with_outputs ? &notifying : NULL,
				 with_outputs ? &service : NULL, &e);
	if (!ok) {
		check_parse_error(e);
		check(untouched(&ch, sizeof(ch)) && untouched(&notifying, sizeof(notifying)) &&
		      service == (char *)&notifying, "char: output touched on error");
		return;
	}
	check(!e, "char: TRUE with an error");
	check(canonical_uuid(ch.uuid), "char: UUID not canonical");
	check(ch.role == gw_char_from_uuid(ch.uuid), "char: role");
	check(ch.role == -1 || (ch.role >= 0 && ch.role < GW_CHAR_COUNT), "char: role range");
	check(ch.service_uuid[0] == '\0', "char: service_uuid not empty");
	check((ch.props & ~0x1fu) == 0, "char: unknown property bits");
	if (with_outputs) {
		uint8_t nb;

		memcpy(&nb, &notifying, 1);
		check(nb == 0 || nb == 1, "char: notifying not a bool");
		check(!service || g_variant_is_object_path(service), "char: service not a path");
		g_free(service);
	}
}

static void fuzz_service(GVariant *props)
{
	char uuid[GW_BLUEZ_UUID_SIZE];
	g_autoptr(GError) e = NULL;

	memset(uuid, SENTINEL, sizeof(uuid));
	if (!gw_bluez_parse_service(props, uuid, &e)) {
		check_parse_error(e);
		check(untouched(uuid, sizeof(uuid)), "service: output touched on error");
		return;
	}
	check(!e && canonical_uuid(uuid), "service: UUID not canonical");
}

static void fuzz_bytes(GVariant *props, const char *key)
{
	const uint8_t *p = (const uint8_t *)&p;
	size_t n = 12345;
	g_autoptr(GVariant) v = gw_bluez_lookup_bytes(props, key, &p, &n);

	if (!v)
		return;
	check(g_variant_is_of_type(v, G_VARIANT_TYPE_BYTESTRING), "bytes: not ay");
	check(n == g_variant_get_size(v), "bytes: length");
	check(n ? p != NULL : p == NULL, "bytes: data/length");
	if (n) {
		volatile uint8_t sum = 0;

		for (size_t i = 0; i < n; i++)	/* readable (ASan) */
			sum += p[i];
		(void)sum;
	}
}

/* ---- errors ---- */

static void fuzz_error(const char *name, const char *message)
{
	enum gw_ble_err a = gw_bluez_error_from_name(name, message);
	enum gw_ble_err b = gw_bluez_error_from_name(name, message);

	check(a == b, "error: not deterministic");
	check(a > GW_BLE_OK && a < GW_BLE_ERR_COUNT, "error: class out of range");

	/* the same error as GDBus hands it over */
	if (name && g_dbus_is_error_name(name)) {
		g_autoptr(GError) ge = g_dbus_error_new_for_dbus_error(name, message ? message : "");
		g_autofree char *rname = NULL;
		g_autofree char *rmsg = NULL;
		enum gw_ble_err c = gw_bluez_error_from_gerror(ge, &rname, &rmsg);

		check(c > GW_BLE_OK && c < GW_BLE_ERR_COUNT, "gerror: class out of range");
		check(rmsg != NULL, "gerror: no message");
		if (g_dbus_error_is_remote_error(ge)) {
			check(rname && !strcmp(rname, name), "gerror: name not as sent");
			check(!strcmp(rmsg, message ? message : ""), "gerror: message not as sent");
			check(c == a, "gerror: class differs from the name's");
		}
	}
	check(gw_bluez_error_from_gerror(NULL, NULL, NULL) == GW_BLE_OK, "gerror: NULL");
}

/* ---- addresses, UUIDs, paths ---- */

static void fuzz_address(const char *s)
{
	char out[GW_BLUEZ_ADDR_SIZE], again[GW_BLUEZ_ADDR_SIZE];
	char mask[GW_BLUEZ_ADDR_SIZE];

	memset(out, SENTINEL, sizeof(out));
	if (!gw_bluez_address_normalize(s, out)) {
		check(untouched(out, sizeof(out)), "address: ret touched on false");
		check(!gw_bluez_address_valid(s), "address: valid but not normalisable");
		check(!strcmp(gw_bluez_address_mask(s, false, mask), "XX:XX:XX:XX:XX:XX"),
		      "mask of a non-address");
		return;
	}
	check(canonical_address(out), "address: not canonical");
	check(!g_ascii_strcasecmp(out, s), "address: differs from input beyond case");
	check(gw_bluez_address_valid(s) == (strcmp(out, s) == 0), "address_valid");
	check(gw_bluez_address_normalize(out, again) && !strcmp(out, again), "address: not stable");
	gw_bluez_address_mask(s, false, mask);
	check(!strncmp(mask, "XX:XX:XX:XX:", 12) && !strcmp(mask + 12, out + 12), "mask");
	gw_bluez_address_mask(s, true, mask);
	check(!strcmp(mask, out), "mask personal");
}

static void fuzz_uuid(const char *s)
{
	char out[GW_BLUEZ_UUID_SIZE], again[GW_BLUEZ_UUID_SIZE];

	memset(out, SENTINEL, sizeof(out));
	if (!gw_bluez_uuid_normalize(s, out)) {
		check(untouched(out, sizeof(out)), "uuid: ret touched on false");
		return;
	}
	check(canonical_uuid(out), "uuid: not canonical");
	check(!g_ascii_strcasecmp(out, s), "uuid: differs from input beyond case");
	check(gw_bluez_uuid_normalize(out, again) && !strcmp(out, again), "uuid: not stable");
	check(gw_char_from_uuid(out) == gw_char_from_uuid(out), "role");
}

static void fuzz_path(const char *path, const char *other)
{
	char addr[GW_BLUEZ_ADDR_SIZE];
	size_t len = 0;
	const char *base = gw_bluez_path_basename(path);
	bool is_path = g_variant_is_object_path(path);

	check((base != NULL) == is_path, "basename: NULL iff not a path");
	if (base) {
		check(!strchr(base, '/'), "basename has a '/'");
		check(g_str_has_suffix(path, base), "basename not the end of the path");
	}
	if (gw_bluez_path_is_below(path, other)) {
		check(strlen(path) > strlen(other), "below: not longer than its parent");
		check(g_str_has_prefix(path, other) || !strcmp(other, "/"), "below: no prefix");
	}

	memset(addr, SENTINEL, sizeof(addr));
	if (!gw_bluez_path_device(path, addr, &len)) {
		check(untouched(addr, sizeof(addr)), "path_device: ret touched on false");
		return;
	}
	check(is_path, "path_device: found in a non-path");
	check(canonical_address(addr), "path_device: address not canonical");
	check(len >= 1 + 4 + 17 && len <= strlen(path), "path_device: length");
	check(path[len] == '\0' || path[len] == '/', "path_device: length not at a component end");
	check(path[len - 22] == '/' && !strncmp(path + len - 21, "dev_", 4),
	      "path_device: no dev_ component there");
	for (size_t i = 0; i < 17; i++) {
		char c = path[len - 17 + i];

		check(i % 3 == 2 ? c == '_' : g_ascii_toupper(c) == addr[i], "path_device: address");
	}
	/* the prefix rebuilds the same device path */
	{
		g_autofree char *prefix = len > 22 ? g_strndup(path, len - 22) : g_strdup("/");
		g_autofree char *dev = gw_bluez_device_path(prefix, addr);
		char addr2[GW_BLUEZ_ADDR_SIZE];
		size_t len2 = 0;

		check(dev != NULL, "device_path of a found device");
		check(gw_bluez_path_device(dev, addr2, &len2) && !strcmp(addr, addr2) &&
		      len2 == strlen(dev), "device_path round trip");
		check(g_ascii_strncasecmp(dev, path, len) == 0 && strlen(dev) == len,
		      "device_path differs from the path");
	}
}

static void fuzz_device_path(const char *adapter, const char *address)
{
	g_autofree char *dev = gw_bluez_device_path(adapter, address);
	char addr[GW_BLUEZ_ADDR_SIZE], norm[GW_BLUEZ_ADDR_SIZE];
	size_t len = 0;

	if (!dev) {
		check(!g_variant_is_object_path(adapter) ||
		      !gw_bluez_address_normalize(address, norm), "device_path refused valid input");
		return;
	}
	check(g_variant_is_object_path(dev), "device_path: not an object path");
	check(gw_bluez_address_normalize(address, norm), "device_path of a non-address");
	check(gw_bluez_path_device(dev, addr, &len), "device_path: not found back");
	if (!gw_bluez_path_device(adapter, NULL, NULL)) {
		/* (an adapter path with a dev_ component of its own finds that) */
		check(len == strlen(dev), "device_path: found a shorter device");
		check(!strcmp(addr, norm), "device_path: address differs");
	}
	check(gw_bluez_path_is_below(dev, adapter), "device_path: not below the adapter");
}

/* s[0..17) is six hex pairs joined by one separator, ':' or '_' */
static bool looks_like_address(const char *s)
{
	char sep = s[2];

	if (sep != ':' && sep != '_')
		return false;
	for (size_t i = 0; i < GW_BLUEZ_ADDR_SIZE - 1; i++)
		if (i % 3 == 2 ? s[i] != sep : !g_ascii_isxdigit(s[i]))
			return false;
	return true;
}

static void fuzz_redact(const char *text, bool personal)
{
	g_autofree char *out = gw_bluez_redact(text, personal);
	size_t n = strlen(text);

	check(out != NULL && strlen(out) == n, "redact: length changed");
	if (personal) {
		check(!strcmp(out, text), "redact: personal copy changed");
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (out[i] != text[i])
			check(out[i] == 'X' && g_ascii_isxdigit(text[i]), "redact: changed a non-hex char");
	/* no address left that is not part of a longer run of hex digits, or
	 * of hex pairs ("AA:BB:CC:DD:EE:FF:11:22", "AA_BB_CC_DD_EE_FF:11:22:..":
	 * which six are the address is a guess, redact masks the first six) */
	for (size_t i = 0; i + GW_BLUEZ_ADDR_SIZE - 1 <= n; i++) {
		size_t end = i + GW_BLUEZ_ADDR_SIZE - 1;

		if (i > 0 && g_ascii_isxdigit(text[i - 1]))
			continue;
		if (end < n && g_ascii_isxdigit(text[end]))
			continue;
		if (i >= 2 && (text[i - 1] == ':' || text[i - 1] == '_') &&
		    g_ascii_isxdigit(text[i - 2]))
			continue;
		if (end + 1 < n && (text[end] == ':' || text[end] == '_') &&
		    g_ascii_isxdigit(text[end + 1]))
			continue;
		if (looks_like_address(text + i) && looks_like_address(out + i)) {
			fprintf(stderr, "fuzz-bluez-parse: unmasked address at %zu: %s\n", i, out);
			abort();
		}
	}
	gw_bluez_redact(NULL, personal);
}

/* ---- input ---- */

static GVariant *make_variant(const uint8_t *data, size_t size, bool text)
{
	GVariant *v;

	if (text) {
		g_autofree char *s = g_strndup((const char *)data, size);
		const char *end = NULL;

		/* GLib's text parser wants UTF-8 (it hits a critical otherwise);
		 * bluetoothd's strings reach us as valid UTF-8 anyway */
		if (!g_utf8_validate(s, -1, NULL))
			return NULL;
		/* a non-floating reference already */
		return g_variant_parse(NULL, s, s + strlen(s), &end, NULL);
	} else {
		gpointer copy = g_memdup2(data, size);
		g_autoptr(GVariant) raw = g_variant_ref_sink(
			g_variant_new_from_data(G_VARIANT_TYPE_VARDICT, copy, size, FALSE, g_free,
						copy));

		return g_variant_get_normal_form(raw);	/* transfer full, not floating */
	}
}

static void log_abort(const char *domain, GLogLevelFlags level, const char *message,
		      gpointer ud)
{
	(void)ud;
	g_log_default_handler(domain, level, message, NULL);
	if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	/* a GLib critical or warning (a g_return_if_fail that failed, a misused
	 * GVariant) is a bug: abort, so that libFuzzer keeps the input */
	g_log_set_default_handler(log_abort, NULL);
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
	uint8_t op, arg;
	g_autofree char *s1 = NULL;
	g_autofree char *s2 = NULL;
	const uint8_t *rest;
	size_t n1, nrest;

	if (size < 2 || size > 8192)
		return 0;
	op = data[0];
	arg = data[1];
	rest = data + 2;
	nrest = size - 2;
	/* two strings: the first arg bytes (capped), then the rest */
	n1 = arg < nrest ? arg : nrest;
	s1 = g_strndup((const char *)rest, n1);
	s2 = g_strndup((const char *)rest + n1, nrest - n1);

	switch (op & 0x0f) {
	case 0: case 1: case 2: case 3: case 4: case 5: {
		bool text = op & 0x10;
		/* adapter: s1 is the path, the dict follows it */
		const uint8_t *d = (op & 0x0f) == 0 ? rest + n1 : rest;
		size_t nd = (op & 0x0f) == 0 ? nrest - n1 : nrest;
		g_autoptr(GVariant) props = make_variant(d, nd, text);

		switch (op & 0x0f) {
		case 0: fuzz_adapter(s1, props); break;
		case 1: fuzz_device(props); break;
		case 2: fuzz_char(props, true); break;
		case 3: fuzz_char(props, false); break;
		case 4: fuzz_service(props); break;
		default: fuzz_bytes(props, "Value"); break;
		}
		break;
	}
	case 6:
		fuzz_error(s1, s2);
		break;
	case 7:
		fuzz_error(s1, NULL);
		fuzz_error(NULL, s2);
		break;
	case 8:
		fuzz_address(s2);
		break;
	case 9:
		fuzz_uuid(s2);
		break;
	case 10:
		fuzz_path(s2, s1);
		break;
	case 11:
		fuzz_device_path(s1, s2);
		break;
	case 12:
		fuzz_redact(s2, false);
		break;
	case 13:
		fuzz_redact(s2, true);
		break;
	default: {
		/* every string function on one input */
		fuzz_address(s2);
		fuzz_uuid(s2);
		fuzz_path(s2, s1);
		fuzz_redact(s2, false);
		break;
	}
	}
	return 0;
}
