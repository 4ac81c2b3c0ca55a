// SPDX-License-Identifier: MIT
/*
 * Pure helpers of the BlueZ adapter; see bluez-parse.h.
 */
#include <string.h>

#include <gio/gio.h>

#include "bluez-parse.h"

G_DEFINE_QUARK(gw-bluez-parse-error-quark, gw_bluez_parse_error)

/* ---- property dicts ------------------------------------------------------ */

static gboolean check_dict(GVariant *props, GError **error)
{
	if (!props || !g_variant_is_of_type(props, G_VARIANT_TYPE_VARDICT)) {
		g_set_error(error, GW_BLUEZ_PARSE_ERROR, GW_BLUEZ_PARSE_ERROR_NOT_DICT,
			    "properties are %s, not a{sv}",
			    props ? g_variant_get_type_string(props) : "missing");
		return FALSE;
	}
	return TRUE;
}

/*
 * Looks key up in an a{sv}: *ret is NULL when absent (an error only if
 * required), a new reference of the unboxed value otherwise. A value of
 * another type than type is an error.
 */
static gboolean lookup(GVariant *props, const char *key, const GVariantType *type,
		       bool required, GVariant **ret, GError **error)
{
	g_autoptr(GVariant) v = g_variant_lookup_value(props, key, NULL);

	*ret = NULL;
	if (!v) {
		if (!required)
			return TRUE;
		g_set_error(error, GW_BLUEZ_PARSE_ERROR, GW_BLUEZ_PARSE_ERROR_MISSING,
			    "'%s' is missing", key);
		return FALSE;
	}
	if (!g_variant_is_of_type(v, type)) {
		g_set_error(error, GW_BLUEZ_PARSE_ERROR, GW_BLUEZ_PARSE_ERROR_TYPE,
			    "'%s' is %s, not %s", key, g_variant_get_type_string(v),
			    g_variant_type_peek_string(type));
		return FALSE;
	}
	*ret = g_steal_pointer(&v);
	return TRUE;
}

static gboolean lookup_bool(GVariant *props, const char *key, bool required,
			    bool *ret, bool *ret_present, GError **error)
{
	g_autoptr(GVariant) v = NULL;

	if (!lookup(props, key, G_VARIANT_TYPE_BOOLEAN, required, &v, error))
		return FALSE;
	*ret = v ? g_variant_get_boolean(v) : false;
	if (ret_present)
		*ret_present = v != NULL;
	return TRUE;
}

gboolean gw_bluez_parse_adapter(const char *path, GVariant *props,
				struct gw_bluez_adapter *ret, GError **error)
{
	struct gw_bluez_adapter ad = { .present = true };
	g_autoptr(GVariant) address = NULL;
	const char *name;

	g_return_val_if_fail(ret != NULL, FALSE);

	if (!check_dict(props, error))
		return FALSE;
	name = gw_bluez_path_basename(path);
	if (!name || !*name || strlen(name) >= sizeof(ad.name)) {
		g_set_error(error, GW_BLUEZ_PARSE_ERROR, GW_BLUEZ_PARSE_ERROR_VALUE,
			    "adapter path '%s' is not usable", path ? path : "(null)");
		return FALSE;
	}
	g_strlcpy(ad.name, name, sizeof(ad.name));
	if (!lookup(props, "Address", G_VARIANT_TYPE_STRING, true, &address, error))
		return FALSE;
	if (!gw_bluez_address_normalize(g_variant_get_string(address, NULL), ad.address)) {
		g_set_error(error, GW_BLUEZ_PARSE_ERROR, GW_BLUEZ_PARSE_ERROR_VALUE,
			    "'Address' is not a device address");
		return FALSE;
	}
	if (!lookup_bool(props, "Powered", true, &ad.powered, NULL, error) ||
	    !lookup_bool(props, "Discovering", false, &ad.discovering, NULL, error))
		return FALSE;
	*ret = ad;
	return TRUE;
}

/* An "as" of UUIDs to a NULL-terminated, lower-case strv. */
static char **parse_uuid_list(GVariant *v, const char *key, GError **error)
{
	g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
	GVariantIter it;
	const char *s;

	g_variant_iter_init(&it, v);
	while (g_variant_iter_next(&it, "&s", &s)) {
		char uuid[GW_BLUEZ_UUID_SIZE];

		if (!gw_bluez_uuid_normalize(s, uuid)) {
			g_set_error(error, GW_BLUEZ_PARSE_ERROR, GW_BLUEZ_PARSE_ERROR_VALUE,
				    "'%s' entry %u is not a 128-bit UUID", key, out->len);
			return NULL;
		}
		g_ptr_array_add(out, g_strdup(uuid));
	}
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(g_steal_pointer(&out), FALSE);
}

gboolean gw_bluez_parse_device(GVariant *props, struct gw_bluez_device *ret,
			       GError **error)
{
	struct gw_bluez_device dev = { 0 };
	g_autoptr(GVariant) address = NULL;
	g_autoptr(GVariant) type = NULL;
	g_autoptr(GVariant) name = NULL;
	g_autoptr(GVariant) rssi = NULL;
	g_autoptr(GVariant) uuids = NULL;
	g_auto(GStrv) uuid_list = NULL;

	g_return_val_if_fail(ret != NULL, FALSE);

	if (!check_dict(props, error))
		return FALSE;
	if (!lookup(props, "Address", G_VARIANT_TYPE_STRING, true, &address, error))
		return FALSE;
	if (!gw_bluez_address_normalize(g_variant_get_string(address, NULL), dev.address)) {
		g_set_error(error, GW_BLUEZ_PARSE_ERROR, GW_BLUEZ_PARSE_ERROR_VALUE,
			    "'Address' is not a device address");
		return FALSE;
	}
	if (!lookup(props, "AddressType", G_VARIANT_TYPE_STRING, false, &type, error) ||
	    !lookup(props, "Name", G_VARIANT_TYPE_STRING, false, &name, error) ||
	    !lookup(props, "RSSI", G_VARIANT_TYPE_INT16, false, &rssi, error) ||
	    !lookup(props, "UUIDs", G_VARIANT_TYPE_STRING_ARRAY, false, &uuids, error) ||
	    !lookup_bool(props, "Paired", false, &dev.paired, NULL, error) ||
	    !lookup_bool(props, "Bonded", false, &dev.bonded, &dev.has_bonded, error) ||
	    !lookup_bool(props, "Connected", false, &dev.connected, NULL, error) ||
	    !lookup_bool(props, "Trusted", false, &dev.trusted, NULL, error) ||
	    !lookup_bool(props, "Blocked", false, &dev.blocked, NULL, error) ||
	    !lookup_bool(props, "ServicesResolved", false, &dev.services_resolved,
			 NULL, error))
		return FALSE;
	if (uuids) {
		uuid_list = parse_uuid_list(uuids, "UUIDs", error);
		if (!uuid_list)
			return FALSE;
	} else {
		uuid_list = g_new0(char *, 1);
	}
	dev.address_random = type && !strcmp(g_variant_get_string(type, NULL), "random");
	if (rssi) {
		dev.has_rssi = true;
		dev.rssi = g_variant_get_int16(rssi);
	}
	dev.name = name ? g_variant_dup_string(name, NULL) : NULL;
	dev.uuids = g_steal_pointer(&uuid_list);
	*ret = dev;
	return TRUE;
}

void gw_bluez_device_clear(struct gw_bluez_device *dev)
{
	if (!dev)
		return;
	g_clear_pointer(&dev->uuids, g_strfreev);
	g_clear_pointer(&dev->name, g_free);
}

void gw_bluez_device_copy(struct gw_bluez_device *dst, const struct gw_bluez_device *src)
{
	g_return_if_fail(dst != NULL && src != NULL);

	*dst = *src;
	dst->uuids = src->uuids ? g_strdupv(src->uuids) : g_new0(char *, 1);
	dst->name = g_strdup(src->name);
}

unsigned int gw_bluez_parse_flags(const char *const *flags)
{
	static const struct {
		const char *flag;
		unsigned int prop;
	} map[] = {
		{ "read", GW_PROP_READ },
		{ "write", GW_PROP_WRITE },
		{ "write-without-response", GW_PROP_WRITE_NO_RSP },
		{ "notify", GW_PROP_NOTIFY },
		{ "indicate", GW_PROP_INDICATE },
	};
	unsigned int props = 0;

	for (size_t i = 0; flags && flags[i]; i++)
		for (size_t j = 0; j < G_N_ELEMENTS(map); j++)
			if (!strcmp(flags[i], map[j].flag))
				props |= map[j].prop;
	return props;
}

gboolean gw_bluez_parse_char(GVariant *props, struct gw_bluez_gatt_char *ret,
			     bool *ret_notifying, char **ret_service,
			     GError **error)
{
	struct gw_bluez_gatt_char ch = { .role = -1 };
	g_autoptr(GVariant) uuid = NULL;
	g_autoptr(GVariant) flags = NULL;
	g_autoptr(GVariant) service = NULL;
	g_autofree const char **flag_list = NULL;
	bool notifying;

	g_return_val_if_fail(ret != NULL, FALSE);

	if (!check_dict(props, error))
		return FALSE;
	if (!lookup(props, "UUID", G_VARIANT_TYPE_STRING, true, &uuid, error))
		return FALSE;
	if (!gw_bluez_uuid_normalize(g_variant_get_string(uuid, NULL), ch.uuid)) {
		g_set_error(error, GW_BLUEZ_PARSE_ERROR, GW_BLUEZ_PARSE_ERROR_VALUE,
			    "'UUID' is not a 128-bit UUID");
		return FALSE;
	}
	if (!lookup(props, "Flags", G_VARIANT_TYPE_STRING_ARRAY, true, &flags, error) ||
	    !lookup(props, "Service", G_VARIANT_TYPE_OBJECT_PATH, false, &service, error) ||
	    !lookup_bool(props, "Notifying", false, &notifying, NULL, error))
		return FALSE;
	flag_list = g_variant_get_strv(flags, NULL);
	ch.props = gw_bluez_parse_flags(flag_list);
	ch.role = gw_char_from_uuid(ch.uuid);
	*ret = ch;
	if (ret_notifying)
		*ret_notifying = notifying;
	if (ret_service)
		*ret_service = service ? g_variant_dup_string(service, NULL) : NULL;
	return TRUE;
}

gboolean gw_bluez_parse_service(GVariant *props, char ret_uuid[GW_BLUEZ_UUID_SIZE],
				GError **error)
{
	g_autoptr(GVariant) uuid = NULL;
	char tmp[GW_BLUEZ_UUID_SIZE];

	g_return_val_if_fail(ret_uuid != NULL, FALSE);

	if (!check_dict(props, error) ||
	    !lookup(props, "UUID", G_VARIANT_TYPE_STRING, true, &uuid, error))
		return FALSE;
	if (!gw_bluez_uuid_normalize(g_variant_get_string(uuid, NULL), tmp)) {
		g_set_error(error, GW_BLUEZ_PARSE_ERROR, GW_BLUEZ_PARSE_ERROR_VALUE,
			    "'UUID' is not a 128-bit UUID");
		return FALSE;
	}
	memcpy(ret_uuid, tmp, sizeof(tmp));
	return TRUE;
}

GVariant *gw_bluez_lookup_bytes(GVariant *dict, const char *key,
				const uint8_t **ret_data, size_t *ret_len)
{
	g_autoptr(GVariant) v = NULL;
	gsize n = 0;
	const uint8_t *data;

	g_return_val_if_fail(ret_data != NULL && ret_len != NULL, NULL);

	if (!dict || !key || !g_variant_is_of_type(dict, G_VARIANT_TYPE_VARDICT))
		return NULL;
	v = g_variant_lookup_value(dict, key, G_VARIANT_TYPE_BYTESTRING);
	if (!v)
		return NULL;
	data = g_variant_get_fixed_array(v, &n, sizeof(uint8_t));
	*ret_data = n ? data : NULL;
	*ret_len = n;
	return g_steal_pointer(&v);
}

/* ---- errors ------------------------------------------------------------ */

/*
 * The one table from D-Bus errors to classes. First match wins: rows
 * with a message substring come before the plain name rows. A NULL name
 * matches any name. Names not listed are GW_BLE_ERR_FAILED.
 */
static const struct {
	const char *name;
	const char *message;	/* substring of the message, or NULL */
	enum gw_ble_err err;
} error_table[] = {
	{ GW_BLUEZ_ERROR_FAILED, GW_BLUEZ_MSG_ABORT_BY_LOCAL, GW_BLE_ERR_ABORT_BY_LOCAL },
	/* HCI 0x06 "PIN or Key Missing": the peer lost its bond */
	{ NULL, GW_BLUEZ_MSG_KEY_MISSING, GW_BLE_ERR_AUTH },
	{ GW_BLUEZ_ERROR_IN_PROGRESS, NULL, GW_BLE_ERR_IN_PROGRESS },
	{ GW_BLUEZ_ERROR_FAILED, NULL, GW_BLE_ERR_FAILED },
	{ GW_BLUEZ_ERROR_CONNECTION_ATTEMPT_FAILED, NULL, GW_BLE_ERR_FAILED },
	{ GW_BLUEZ_ERROR_NOT_READY, NULL, GW_BLE_ERR_NOT_READY },
	{ GW_BLUEZ_ERROR_AUTH_FAILED, NULL, GW_BLE_ERR_AUTH },
	{ GW_BLUEZ_ERROR_AUTH_REJECTED, NULL, GW_BLE_ERR_AUTH },
	{ GW_BLUEZ_ERROR_AUTH_CANCELED, NULL, GW_BLE_ERR_AUTH },
	{ GW_BLUEZ_ERROR_AUTH_TIMEOUT, NULL, GW_BLE_ERR_AUTH },
	{ GW_BLUEZ_ERROR_NOT_CONNECTED, NULL, GW_BLE_ERR_NOT_CONNECTED },
	{ GW_BLUEZ_ERROR_DOES_NOT_EXIST, NULL, GW_BLE_ERR_DOES_NOT_EXIST },
	{ GW_DBUS_ERROR_UNKNOWN_OBJECT, NULL, GW_BLE_ERR_DOES_NOT_EXIST },
	{ GW_DBUS_ERROR_UNKNOWN_METHOD, NULL, GW_BLE_ERR_DOES_NOT_EXIST },
	{ GW_DBUS_ERROR_UNKNOWN_INTERFACE, NULL, GW_BLE_ERR_DOES_NOT_EXIST },
	{ GW_BLUEZ_ERROR_NOT_SUPPORTED, NULL, GW_BLE_ERR_NOT_SUPPORTED },
	{ GW_BLUEZ_ERROR_NOT_PERMITTED, NULL, GW_BLE_ERR_NOT_SUPPORTED },
	{ GW_BLUEZ_ERROR_NOT_AUTHORIZED, NULL, GW_BLE_ERR_NOT_SUPPORTED },
	/* the request does not fit the profile: not transient either */
	{ GW_BLUEZ_ERROR_INVALID_ARGUMENTS, NULL, GW_BLE_ERR_NOT_SUPPORTED },
	{ GW_BLUEZ_ERROR_INVALID_VALUE_LENGTH, NULL, GW_BLE_ERR_NOT_SUPPORTED },
	{ GW_BLUEZ_ERROR_INVALID_OFFSET, NULL, GW_BLE_ERR_NOT_SUPPORTED },
	/* "Message recipient disconnected from message bus without
	 * replying": bluetoothd died with our call */
	{ GW_DBUS_ERROR_NO_REPLY, GW_DBUS_MSG_RECIPIENT_GONE, GW_BLE_ERR_BLUEZ_GONE },
	{ GW_DBUS_ERROR_NO_REPLY, NULL, GW_BLE_ERR_TIMEOUT },
	{ GW_DBUS_ERROR_TIMEOUT, NULL, GW_BLE_ERR_TIMEOUT },
	{ GW_DBUS_ERROR_TIMED_OUT, NULL, GW_BLE_ERR_TIMEOUT },
	{ GW_DBUS_ERROR_SERVICE_UNKNOWN, NULL, GW_BLE_ERR_BLUEZ_GONE },
	{ GW_DBUS_ERROR_NAME_HAS_NO_OWNER, NULL, GW_BLE_ERR_BLUEZ_GONE },
	{ GW_DBUS_ERROR_DISCONNECTED, NULL, GW_BLE_ERR_BLUEZ_GONE },
};

enum gw_ble_err gw_bluez_error_from_name(const char *name, const char *message)
{
	for (size_t i = 0; i < G_N_ELEMENTS(error_table); i++) {
		if (error_table[i].name && g_strcmp0(name, error_table[i].name))
			continue;
		if (error_table[i].message &&
		    (!message || !strstr(message, error_table[i].message)))
			continue;
		return error_table[i].err;
	}
	return GW_BLE_ERR_FAILED;
}

enum gw_ble_err gw_bluez_error_from_gerror(const GError *error, char **ret_name,
					   char **ret_message)
{
	g_autofree char *name = NULL;
	g_autofree char *message = NULL;
	enum gw_ble_err err;

	if (ret_name)
		*ret_name = NULL;
	if (ret_message)
		*ret_message = NULL;
	if (!error)
		return GW_BLE_OK;

	if (g_dbus_error_is_remote_error(error)) {
		g_autoptr(GError) copy = g_error_copy(error);

		name = g_dbus_error_get_remote_error(error);
		g_dbus_error_strip_remote_error(copy);
		message = g_strdup(copy->message);
		err = gw_bluez_error_from_name(name, message);
	} else if (error->domain == G_IO_ERROR) {
		/* local: our call timeout, or the bus connection went away */
		message = g_strdup(error->message);
		if (error->code == G_IO_ERROR_TIMED_OUT)
			err = GW_BLE_ERR_TIMEOUT;
		else if (error->code == G_IO_ERROR_CLOSED)
			err = GW_BLE_ERR_BLUEZ_GONE;
		else
			err = GW_BLE_ERR_FAILED;
	} else if (error->domain == G_DBUS_ERROR) {
		/* well-known bus errors GDBus maps to its own domain */
		name = g_dbus_error_encode_gerror(error);
		message = g_strdup(error->message);
		err = gw_bluez_error_from_name(name, message);
	} else {
		message = g_strdup(error->message);
		err = GW_BLE_ERR_FAILED;
	}
	if (ret_name)
		*ret_name = g_steal_pointer(&name);
	if (ret_message)
		*ret_message = g_steal_pointer(&message);
	return err;
}

const char *gw_bluez_op_name(enum gw_bluez_op op)
{
	switch (op) {
	case GW_BLUEZ_OP_SET_POWERED:
		return "set-powered";
	case GW_BLUEZ_OP_START_DISCOVERY:
		return "start-discovery";
	case GW_BLUEZ_OP_STOP_DISCOVERY:
		return "stop-discovery";
	case GW_BLUEZ_OP_REMOVE_DEVICE:
		return "remove-device";
	case GW_BLUEZ_OP_CONNECT:
		return "connect";
	case GW_BLUEZ_OP_DISCONNECT:
		return "disconnect";
	case GW_BLUEZ_OP_PAIR:
		return "pair";
	case GW_BLUEZ_OP_SET_TRUSTED:
		return "set-trusted";
	case GW_BLUEZ_OP_READ:
		return "read";
	case GW_BLUEZ_OP_WRITE:
		return "write";
	case GW_BLUEZ_OP_START_NOTIFY:
		return "start-notify";
	case GW_BLUEZ_OP_STOP_NOTIFY:
		return "stop-notify";
	}
	return "unknown";
}

/* ---- addresses, UUIDs, paths -------------------------------------------- */

/* s is groups of hex digits (groups[] long) separated by sep and nothing
 * else; copies it to out in upper or lower case with out_sep between the
 * groups. out may be written even when this fails. */
static bool convert_hex_groups(const char *s, const size_t *groups, size_t ngroups,
			       char sep, bool upper, char out_sep, char *out)
{
	size_t pos = 0;

	for (size_t g = 0; g < ngroups; g++) {
		for (size_t i = 0; i < groups[g]; i++, pos++) {
			char c = s[pos];

			if (!g_ascii_isxdigit(c))
				return false;
			out[pos] = upper ? g_ascii_toupper(c) : g_ascii_tolower(c);
		}
		if (g + 1 < ngroups) {
			if (s[pos] != sep)
				return false;
			out[pos++] = out_sep;
		}
	}
	if (s[pos] != '\0')
		return false;
	out[pos] = '\0';
	return true;
}

static const size_t addr_groups[] = { 2, 2, 2, 2, 2, 2 };
static const size_t uuid_groups[] = { 8, 4, 4, 4, 12 };

bool gw_bluez_address_normalize(const char *s, char ret[GW_BLUEZ_ADDR_SIZE])
{
	char tmp[GW_BLUEZ_ADDR_SIZE];

	if (!s || strnlen(s, GW_BLUEZ_ADDR_SIZE) != GW_BLUEZ_ADDR_SIZE - 1)
		return false;
	if (!convert_hex_groups(s, addr_groups, G_N_ELEMENTS(addr_groups), ':', true,
				':', tmp))
		return false;
	memcpy(ret, tmp, sizeof(tmp));
	return true;
}

bool gw_bluez_address_valid(const char *s)
{
	char tmp[GW_BLUEZ_ADDR_SIZE];

	return gw_bluez_address_normalize(s, tmp) && !strcmp(s, tmp);
}

bool gw_bluez_uuid_normalize(const char *s, char ret[GW_BLUEZ_UUID_SIZE])
{
	char tmp[GW_BLUEZ_UUID_SIZE];

	if (!s || strnlen(s, GW_BLUEZ_UUID_SIZE) != GW_BLUEZ_UUID_SIZE - 1)
		return false;
	if (!convert_hex_groups(s, uuid_groups, G_N_ELEMENTS(uuid_groups), '-', false,
				'-', tmp))
		return false;
	memcpy(ret, tmp, sizeof(tmp));
	return true;
}

char *gw_bluez_device_path(const char *adapter_path, const char *address)
{
	char addr[GW_BLUEZ_ADDR_SIZE];

	if (!adapter_path || !g_variant_is_object_path(adapter_path) ||
	    !gw_bluez_address_normalize(address, addr))
		return NULL;
	g_strdelimit(addr, ":", '_');
	if (!strcmp(adapter_path, "/"))
		return g_strconcat("/" GW_BLUEZ_DEVICE_PREFIX, addr, NULL);
	return g_strconcat(adapter_path, "/" GW_BLUEZ_DEVICE_PREFIX, addr, NULL);
}

bool gw_bluez_path_device(const char *path, char ret_address[GW_BLUEZ_ADDR_SIZE],
			  size_t *ret_dev_path_len)
{
	static const size_t plen = sizeof(GW_BLUEZ_DEVICE_PREFIX) - 1;
	const char *p;

	if (!path || !g_variant_is_object_path(path))
		return false;
	for (p = strchr(path, '/'); p; p = strchr(p + 1, '/')) {
		const char *comp = p + 1;
		const char *end = strchr(comp, '/');
		char addr[GW_BLUEZ_ADDR_SIZE];
		char comp_copy[GW_BLUEZ_ADDR_SIZE];

		if (!end)
			end = comp + strlen(comp);
		if ((size_t)(end - comp) != plen + GW_BLUEZ_ADDR_SIZE - 1 ||
		    strncmp(comp, GW_BLUEZ_DEVICE_PREFIX, plen))
			continue;
		/* convert_hex_groups wants the string to end after the last
		 * group: work on a copy of the component */
		memcpy(comp_copy, comp + plen, GW_BLUEZ_ADDR_SIZE - 1);
		comp_copy[GW_BLUEZ_ADDR_SIZE - 1] = '\0';
		if (!convert_hex_groups(comp_copy, addr_groups, G_N_ELEMENTS(addr_groups),
					'_', true, ':', addr))
			continue;
		if (ret_address)
			memcpy(ret_address, addr, sizeof(addr));
		if (ret_dev_path_len)
			*ret_dev_path_len = (size_t)(end - path);
		return true;
	}
	return false;
}

bool gw_bluez_path_is_below(const char *path, const char *parent)
{
	size_t n;

	if (!path || !parent)
		return false;
	if (!strcmp(parent, "/"))
		return path[0] == '/' && path[1] != '\0';
	n = strlen(parent);
	return !strncmp(path, parent, n) && path[n] == '/' && path[n + 1] != '\0';
}

const char *gw_bluez_path_basename(const char *path)
{
	const char *slash;

	if (!path || !g_variant_is_object_path(path))
		return NULL;
	slash = strrchr(path, '/');
	return slash + 1;
}

const char *gw_bluez_address_mask(const char *address, bool personal,
				  char buf[GW_BLUEZ_ADDR_SIZE])
{
	char addr[GW_BLUEZ_ADDR_SIZE];

	if (!gw_bluez_address_normalize(address, addr)) {
		g_strlcpy(buf, "XX:XX:XX:XX:XX:XX", GW_BLUEZ_ADDR_SIZE);
		return buf;
	}
	if (!personal)
		memcpy(addr, "XX:XX:XX:XX", 11);
	memcpy(buf, addr, sizeof(addr));
	return buf;
}

/* s[0..17) is six hex pairs joined by one separator, ':' or '_' */
static bool looks_like_address(const char *s)
{
	char sep = s[2];

	if (sep != ':' && sep != '_')
		return false;
	for (size_t i = 0; i < GW_BLUEZ_ADDR_SIZE - 1; i++) {
		if (i % 3 == 2) {
			if (s[i] != sep)
				return false;
		} else if (!g_ascii_isxdigit(s[i])) {
			return false;
		}
	}
	return true;
}

char *gw_bluez_redact(const char *text, bool personal)
{
	char *out;
	size_t len;

	if (!text)
		return NULL;
	out = g_strdup(text);
	if (personal)
		return out;
	len = strlen(out);
	for (size_t i = 0; i + GW_BLUEZ_ADDR_SIZE - 1 <= len; i++) {
		/* not in the middle of a longer run of hex digits */
		if (i > 0 && g_ascii_isxdigit(out[i - 1]))
			continue;
		if (i + GW_BLUEZ_ADDR_SIZE - 1 < len &&
		    g_ascii_isxdigit(out[i + GW_BLUEZ_ADDR_SIZE - 1]))
			continue;
		if (!looks_like_address(out + i))
			continue;
		for (size_t j = 0; j < 4; j++) {
			out[i + 3 * j] = 'X';
			out[i + 3 * j + 1] = 'X';
		}
		i += GW_BLUEZ_ADDR_SIZE - 2;
	}
	return out;
}
