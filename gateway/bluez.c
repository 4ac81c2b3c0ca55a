// SPDX-License-Identifier: MIT
/*
 * GwBluez: the gateway's client of bluetoothd; see bluez.h.
 *
 *   name watch (org.bluez)  -> one session per owner: an ObjectManager
 *                              client on that owner, the agent registered
 *   ObjectManager events    -> the selected adapter, its devices (by
 *                              path and by address) and characteristics
 *   commands                -> struct bz_call: one g_dbus_connection_call
 *                              to the owner, call_ready -> ops->call_done
 *   Agent1 object           -> agent_method_cb asks ops->allowed
 *
 * Lifetimes. Every D-Bus call takes bz->cancellable (cancelled in
 * gw_bluez_free); session-scoped calls take the session's cancellable
 * through a struct session_op that holds its own reference. A _ready
 * callback that sees cancellation returns at once without touching the
 * GwBluez. Every entry from the main loop is bracketed by bz_enter() and
 * bz_leave(), so gw_bluez_free() from inside an ops callback only marks
 * the object dying; BZ_EMIT never calls out after that and the last
 * bz_leave() frees it.
 */
#define G_LOG_DOMAIN "gw-bluez"

#include <string.h>

#include <gio/gio.h>

#include "bluez.h"
#include "bluez-parse.h"
#include "wearable.h"

#define DEFAULT_CONNECT_TIMEOUT_MS	20000
#define DEFAULT_PAIR_TIMEOUT_MS		30000
#define DEFAULT_CALL_TIMEOUT_MS		10000

struct bz_device {
	char *path;
	struct gw_bluez_device info;	/* info.address is the devices_by_addr key */
};

struct bz_char {
	char *path;
	char *dev_path;		/* the device object this characteristic is below */
	char *service_path;	/* NULL when BlueZ did not say */
	struct gw_bluez_gatt_char info;
};

struct gw_bluez {
	GDBusConnection *conn;
	GMainContext *context;
	struct gw_bluez_ops ops;
	void *user_data;

	char *adapter_name;		/* NULL: the first adapter */
	char *service_uuid;
	char *agent_path;
	unsigned int connect_timeout_ms;
	unsigned int pair_timeout_ms;
	unsigned int call_timeout_ms;
	bool log_personal;

	GCancellable *cancellable;	/* every command; cancelled in _free */
	unsigned int watch_id;
	unsigned int agent_object_id;
	bool reported_absent;

	/* while org.bluez has an owner */
	char *owner;
	GCancellable *session_cancellable;
	GDBusObjectManager *manager;
	bool present;			/* manager ready, bluez_present(true) sent */
	bool agent_registering;
	bool agent_registered;

	/* the selected adapter and what is below it */
	char *adapter_path;
	struct gw_bluez_adapter adapter;
	GHashTable *devices;		/* path -> struct bz_device */
	GHashTable *devices_by_addr;	/* address -> struct bz_device (borrowed) */
	GHashTable *chars;		/* path -> struct bz_char */
	GHashTable *layout_pending;	/* device paths (set) */
	GSource *layout_source;
	GHashTable *pairing;		/* address -> Pair calls in flight */

	GQueue failed;			/* struct bz_call to complete from an idle */
	GSource *failed_source;

	unsigned int busy;		/* main-loop entries on the stack */
	bool dying;
};

#define BZ_EMIT(bz, cb, ...)							\
	do {									\
		if (!(bz)->dying && (bz)->ops.cb)				\
			(bz)->ops.cb(__VA_ARGS__, (bz)->user_data);		\
	} while (0)

static void bz_destroy(GwBluez *bz);

static void bz_enter(GwBluez *bz)
{
	bz->busy++;
}

static void bz_leave(GwBluez *bz)
{
	if (--bz->busy == 0 && bz->dying)
		bz_destroy(bz);
}

static const char *mask(const GwBluez *bz, const char *address,
			char buf[GW_BLUEZ_ADDR_SIZE])
{
	return gw_bluez_address_mask(address, bz->log_personal, buf);
}

/* the (masked) address in an object path, for logs: paths carry addresses */
static const char *mask_path(const GwBluez *bz, const char *path,
			     char buf[GW_BLUEZ_ADDR_SIZE])
{
	char addr[GW_BLUEZ_ADDR_SIZE];

	if (!gw_bluez_path_device(path, addr, NULL)) {
		g_strlcpy(buf, "-", GW_BLUEZ_ADDR_SIZE);
		return buf;
	}
	return mask(bz, addr, buf);
}

/* A proxy's cached properties as one a{sv}, the input of bluez-parse. */
static GVariant *proxy_props(GDBusProxy *proxy)
{
	g_auto(GStrv) names = g_dbus_proxy_get_cached_property_names(proxy);
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	for (size_t i = 0; names && names[i]; i++) {
		g_autoptr(GVariant) v = g_dbus_proxy_get_cached_property(proxy, names[i]);

		if (v)
			g_variant_builder_add(&b, "{sv}", names[i], v);
	}
	return g_variant_ref_sink(g_variant_builder_end(&b));
}

/* ---- session-scoped async operations --------------------------------------- */

struct session_op {
	GwBluez *bz;
	GCancellable *cancellable;	/* a reference to the session's */
};

static struct session_op *session_op_new(GwBluez *bz)
{
	struct session_op *op = g_new0(struct session_op, 1);

	op->bz = bz;
	op->cancellable = g_object_ref(bz->session_cancellable);
	return op;
}

static void session_op_free(struct session_op *op)
{
	g_object_unref(op->cancellable);
	g_free(op);
}
typedef struct session_op session_op;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(session_op, session_op_free)

/* ---- devices and characteristics ------------------------------------------- */

static void bz_device_free(gpointer data)
{
	struct bz_device *dev = data;

	gw_bluez_device_clear(&dev->info);
	g_free(dev->path);
	g_free(dev);
}

static void bz_char_free(gpointer data)
{
	struct bz_char *c = data;

	g_free(c->path);
	g_free(c->dev_path);
	g_free(c->service_path);
	g_free(c);
}

static int char_cmp(gconstpointer a, gconstpointer b)
{
	const struct bz_char *ca = *(const struct bz_char *const *)a;
	const struct bz_char *cb = *(const struct bz_char *const *)b;

	return strcmp(ca->path, cb->path);
}

/* The device's characteristics, sorted by path (borrowed pointers). */
static GPtrArray *device_chars(GwBluez *bz, const char *dev_path)
{
	GPtrArray *out = g_ptr_array_new();
	GHashTableIter it;
	gpointer value;

	g_hash_table_iter_init(&it, bz->chars);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		struct bz_char *c = value;

		if (!strcmp(c->dev_path, dev_path))
			g_ptr_array_add(out, c);
	}
	g_ptr_array_sort(out, char_cmp);
	return out;
}

static void service_uuid(GwBluez *bz, const char *service_path,
			 char ret[GW_BLUEZ_UUID_SIZE])
{
	g_autoptr(GDBusInterface) iface = NULL;
	g_autoptr(GVariant) props = NULL;

	ret[0] = '\0';
	if (!service_path || !bz->manager)
		return;
	iface = g_dbus_object_manager_get_interface(bz->manager, service_path,
						    GW_BLUEZ_GATT_SERVICE_IFACE);
	if (!iface)
		return;
	props = proxy_props(G_DBUS_PROXY(iface));
	if (!gw_bluez_parse_service(props, ret, NULL))
		ret[0] = '\0';
}

static void emit_layout(GwBluez *bz, struct bz_device *dev)
{
	g_autoptr(GPtrArray) chars = device_chars(bz, dev->path);
	g_autofree struct gw_bluez_gatt_char *layout = g_new0(struct gw_bluez_gatt_char, chars->len + 1);
	char m[GW_BLUEZ_ADDR_SIZE];

	for (unsigned int i = 0; i < chars->len; i++) {
		const struct bz_char *c = g_ptr_array_index(chars, i);

		layout[i] = c->info;
		service_uuid(bz, c->service_path, layout[i].service_uuid);
	}
	g_debug("%s: layout of %u characteristics", mask(bz, dev->info.address, m),
		chars->len);
	BZ_EMIT(bz, layout, dev->info.address, layout, chars->len);
}

static gboolean layout_idle_cb(gpointer user_data)
{
	GwBluez *bz = user_data;
	g_autoptr(GHashTable) pending = NULL;
	GHashTableIter it;
	gpointer key;

	bz_enter(bz);
	g_clear_pointer(&bz->layout_source, g_source_unref);
	pending = g_steal_pointer(&bz->layout_pending);
	bz->layout_pending = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_hash_table_iter_init(&it, pending);
	while (!bz->dying && g_hash_table_iter_next(&it, &key, NULL)) {
		struct bz_device *dev = g_hash_table_lookup(bz->devices, key);

		if (dev && dev->info.services_resolved)
			emit_layout(bz, dev);
	}
	bz_leave(bz);
	return G_SOURCE_REMOVE;
}

/* A characteristic appeared or vanished: report the layout again once
 * the burst of object signals is processed, if the device is resolved. */
static void schedule_layout(GwBluez *bz, const char *dev_path)
{
	struct bz_device *dev = g_hash_table_lookup(bz->devices, dev_path);

	if (!dev || !dev->info.services_resolved)
		return;
	g_hash_table_add(bz->layout_pending, g_strdup(dev_path));
	if (bz->layout_source)
		return;
	bz->layout_source = g_idle_source_new();
	g_source_set_priority(bz->layout_source, G_PRIORITY_LOW);
	g_source_set_callback(bz->layout_source, layout_idle_cb, bz, NULL);
	g_source_attach(bz->layout_source, bz->context);
}

static void char_update(GwBluez *bz, const char *path, GDBusProxy *proxy,
			bool schedule)
{
	g_autoptr(GVariant) props = proxy_props(proxy);
	g_autoptr(GError) error = NULL;
	g_autofree char *service = NULL;
	struct gw_bluez_gatt_char info;
	struct bz_char *c;
	size_t dev_len;
	char m[GW_BLUEZ_ADDR_SIZE];

	if (!gw_bluez_path_device(path, NULL, &dev_len))
		return;
	if (!gw_bluez_parse_char(props, &info, NULL, &service, &error)) {
		g_message("%s: characteristic ignored: %s", mask_path(bz, path, m),
			  error->message);
		if (g_hash_table_remove(bz->chars, path) && schedule) {
			g_autofree char *dev_path = g_strndup(path, dev_len);

			schedule_layout(bz, dev_path);
		}
		return;
	}
	c = g_hash_table_lookup(bz->chars, path);
	if (!c) {
		c = g_new0(struct bz_char, 1);
		c->path = g_strdup(path);
		c->dev_path = g_strndup(path, dev_len);
		g_hash_table_insert(bz->chars, c->path, c);
	} else if (c->info.props == info.props && !strcmp(c->info.uuid, info.uuid)) {
		schedule = false;	/* nothing the layout shows changed */
	}
	c->info = info;
	g_free(c->service_path);
	c->service_path = g_steal_pointer(&service);
	if (schedule)
		schedule_layout(bz, c->dev_path);
}

static void char_remove(GwBluez *bz, const char *path)
{
	struct bz_char *c = g_hash_table_lookup(bz->chars, path);
	g_autofree char *dev_path = NULL;

	if (!c)
		return;
	dev_path = g_strdup(c->dev_path);
	g_hash_table_remove(bz->chars, path);
	schedule_layout(bz, dev_path);
}

/* The hot path: one PropertiesChanged per notification. One pass over
 * the changed properties; true if the characteristic needs parsing again. */
static bool char_changed(GwBluez *bz, const char *path, GVariant *changed)
{
	struct bz_char *c = g_hash_table_lookup(bz->chars, path);
	bool reparse = false;
	GVariantIter it;
	const char *key;
	GVariant *value;

	if (!c)
		return false;
	g_variant_iter_init(&it, changed);
	while (g_variant_iter_next(&it, "{&sv}", &key, &value)) {
		if (!strcmp(key, "Value")) {
			struct bz_device *dev = g_hash_table_lookup(bz->devices, c->dev_path);
			gsize len = 0;
			const uint8_t *data;

			if (dev && c->info.role >= 0 &&
			    g_variant_is_of_type(value, G_VARIANT_TYPE_BYTESTRING)) {
				data = g_variant_get_fixed_array(value, &len, sizeof(uint8_t));
				BZ_EMIT(bz, value, dev->info.address, (enum gw_char)c->info.role,
					len ? data : NULL, len);
			}
		} else if (!strcmp(key, "UUID") || !strcmp(key, "Flags")) {
			reparse = true;
		}
		g_variant_unref(value);
	}
	return reparse;
}

static void device_update(GwBluez *bz, const char *path, GDBusProxy *proxy)
{
	g_autoptr(GVariant) props = proxy_props(proxy);
	g_autoptr(GError) error = NULL;
	struct gw_bluez_device info;
	struct bz_device *dev;
	bool was_resolved = false;
	char m[GW_BLUEZ_ADDR_SIZE];

	if (!gw_bluez_parse_device(props, &info, &error)) {
		g_message("%s: device ignored: %s", mask_path(bz, path, m), error->message);
		return;
	}
	dev = g_hash_table_lookup(bz->devices, path);
	if (!dev) {
		dev = g_new0(struct bz_device, 1);
		dev->path = g_strdup(path);
		g_hash_table_insert(bz->devices, dev->path, dev);
		g_debug("%s: device added", mask(bz, info.address, m));
	} else {
		was_resolved = dev->info.services_resolved;
		if (strcmp(dev->info.address, info.address)) {
			/* an identity address resolved: the old key goes */
			char old[GW_BLUEZ_ADDR_SIZE];

			memcpy(old, dev->info.address, sizeof(old));
			if (g_hash_table_lookup(bz->devices_by_addr, old) == dev)
				g_hash_table_remove(bz->devices_by_addr, old);
			BZ_EMIT(bz, device_removed, old);
		}
		gw_bluez_device_clear(&dev->info);
	}
	dev->info = info;
	g_hash_table_replace(bz->devices_by_addr, dev->info.address, dev);
	BZ_EMIT(bz, device_changed, &dev->info);
	if (dev->info.services_resolved && !was_resolved)
		emit_layout(bz, dev);
}

static void device_remove(GwBluez *bz, const char *path)
{
	struct bz_device *dev = g_hash_table_lookup(bz->devices, path);
	char address[GW_BLUEZ_ADDR_SIZE];
	char m[GW_BLUEZ_ADDR_SIZE];
	GHashTableIter it;
	gpointer value;

	if (!dev)
		return;
	memcpy(address, dev->info.address, sizeof(address));
	if (g_hash_table_lookup(bz->devices_by_addr, address) == dev)
		g_hash_table_remove(bz->devices_by_addr, address);
	g_hash_table_remove(bz->layout_pending, path);
	/* BlueZ removes the GATT objects first; do not rely on it */
	g_hash_table_iter_init(&it, bz->chars);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		struct bz_char *c = value;

		if (!strcmp(c->dev_path, path))
			g_hash_table_iter_remove(&it);
	}
	g_hash_table_remove(bz->devices, path);
	g_debug("%s: device removed", mask(bz, address, m));
	BZ_EMIT(bz, device_removed, address);
}

/* ---- the adapter -------------------------------------------------------------- */

static void adapter_scan_below(GwBluez *bz)
{
	GList *objects = g_dbus_object_manager_get_objects(bz->manager);
	GList *l;

	/* characteristics first: a device reported resolved must have them */
	for (l = objects; l; l = l->next) {
		const char *path = g_dbus_object_get_object_path(l->data);
		g_autoptr(GDBusInterface) iface = NULL;

		if (!gw_bluez_path_is_below(path, bz->adapter_path))
			continue;
		iface = g_dbus_object_get_interface(l->data, GW_BLUEZ_GATT_CHAR_IFACE);
		if (iface)
			char_update(bz, path, G_DBUS_PROXY(iface), false);
	}
	for (l = objects; l && !bz->dying; l = l->next) {
		const char *path = g_dbus_object_get_object_path(l->data);
		g_autoptr(GDBusInterface) iface = NULL;

		if (!gw_bluez_path_is_below(path, bz->adapter_path))
			continue;
		iface = g_dbus_object_get_interface(l->data, GW_BLUEZ_DEVICE_IFACE);
		if (iface)
			device_update(bz, path, G_DBUS_PROXY(iface));
	}
	g_list_free_full(objects, g_object_unref);
}

static bool adapter_wanted(GwBluez *bz, const char *path)
{
	const char *name = gw_bluez_path_basename(path);

	return name && (!bz->adapter_name || !strcmp(name, bz->adapter_name));
}

static void adapter_select(GwBluez *bz, const char *path, GDBusProxy *proxy)
{
	g_autoptr(GVariant) props = proxy_props(proxy);
	g_autoptr(GError) error = NULL;
	struct gw_bluez_adapter ad;

	if (!gw_bluez_parse_adapter(path, props, &ad, &error)) {
		g_message("adapter %s ignored: %s", path, error->message);
		return;
	}
	bz->adapter_path = g_strdup(path);
	bz->adapter = ad;
	g_debug("adapter %s selected (powered %d)", ad.name, ad.powered);
	BZ_EMIT(bz, adapter_changed, &bz->adapter);
	if (!bz->dying)
		adapter_scan_below(bz);
}

static void adapter_update(GwBluez *bz, GDBusProxy *proxy)
{
	g_autoptr(GVariant) props = proxy_props(proxy);
	g_autoptr(GError) error = NULL;
	struct gw_bluez_adapter ad;

	if (!gw_bluez_parse_adapter(bz->adapter_path, props, &ad, &error)) {
		g_message("adapter %s: %s", bz->adapter_path, error->message);
		return;
	}
	if (!memcmp(&ad, &bz->adapter, sizeof(ad)))
		return;
	bz->adapter = ad;
	g_debug("adapter %s: powered %d discovering %d", ad.name, ad.powered,
		ad.discovering);
	BZ_EMIT(bz, adapter_changed, &bz->adapter);
}

/* Forgets the adapter and everything below it, reporting each removal. */
static void adapter_deselect(GwBluez *bz)
{
	g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter it;
	gpointer key;

	if (!bz->adapter_path)
		return;
	g_hash_table_remove_all(bz->chars);
	g_hash_table_iter_init(&it, bz->devices);
	while (g_hash_table_iter_next(&it, &key, NULL))
		g_ptr_array_add(paths, g_strdup(key));
	for (unsigned int i = 0; i < paths->len; i++)
		device_remove(bz, g_ptr_array_index(paths, i));
	g_debug("adapter %s gone", bz->adapter.name);
	g_clear_pointer(&bz->adapter_path, g_free);
	memset(&bz->adapter, 0, sizeof(bz->adapter));
	BZ_EMIT(bz, adapter_changed, &bz->adapter);
}

/* Picks the configured adapter, or the first by path, among the objects
 * (but not exclude, an adapter being removed). */
static void adapter_choose(GwBluez *bz, const char *exclude)
{
	GList *objects;
	GDBusProxy *best = NULL;
	const char *best_path = NULL;

	if (bz->adapter_path || !bz->manager)
		return;
	objects = g_dbus_object_manager_get_objects(bz->manager);
	for (GList *l = objects; l; l = l->next) {
		const char *path = g_dbus_object_get_object_path(l->data);
		GDBusInterface *iface;

		if (!g_strcmp0(path, exclude) || !adapter_wanted(bz, path))
			continue;
		iface = g_dbus_object_get_interface(l->data, GW_BLUEZ_ADAPTER_IFACE);
		if (!iface)
			continue;
		if (!best_path || strcmp(path, best_path) < 0) {
			g_clear_object(&best);
			best = G_DBUS_PROXY(iface);
			best_path = path;
		} else {
			g_object_unref(iface);
		}
	}
	if (best)
		adapter_select(bz, best_path, best);
	g_clear_object(&best);
	g_list_free_full(objects, g_object_unref);
}

/* ---- the agent --------------------------------------------------------------- */

static void default_agent_ready(GObject *src, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(session_op) op = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(src),
								  res, &error);

	if (g_cancellable_is_cancelled(op->cancellable))
		return;
	if (!reply)
		g_message("RequestDefaultAgent: %s", error->message);
	else
		g_debug("agent is the default agent");
}

static void register_agent_ready(GObject *src, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(session_op) op = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(src),
								  res, &error);
	g_autofree char *name = NULL;
	GwBluez *bz;

	if (g_cancellable_is_cancelled(op->cancellable))
		return;
	bz = op->bz;
	bz_enter(bz);
	bz->agent_registering = false;
	if (!reply) {
		gw_bluez_error_from_gerror(error, &name, NULL);
		if (g_strcmp0(name, GW_BLUEZ_ERROR_ALREADY_EXISTS)) {
			/* tried again when AgentManager1 shows up */
			g_message("RegisterAgent: %s", error->message);
			goto out;
		}
	}
	bz->agent_registered = true;
	g_debug("agent registered at %s", bz->agent_path);
	g_dbus_connection_call(bz->conn, bz->owner, GW_BLUEZ_AGENT_MANAGER_PATH,
			       GW_BLUEZ_AGENT_MANAGER_IFACE, "RequestDefaultAgent",
			       g_variant_new("(o)", bz->agent_path), NULL,
			       G_DBUS_CALL_FLAGS_NO_AUTO_START, (int)bz->call_timeout_ms,
			       bz->session_cancellable, default_agent_ready,
			       session_op_new(bz));
out:
	bz_leave(bz);
}

static void agent_register(GwBluez *bz)
{
	if (!bz->owner || bz->agent_registered || bz->agent_registering)
		return;
	bz->agent_registering = true;
	g_dbus_connection_call(bz->conn, bz->owner, GW_BLUEZ_AGENT_MANAGER_PATH,
			       GW_BLUEZ_AGENT_MANAGER_IFACE, "RegisterAgent",
			       g_variant_new("(os)", bz->agent_path,
					     GW_BLUEZ_AGENT_CAPABILITY),
			       NULL, G_DBUS_CALL_FLAGS_NO_AUTO_START,
			       (int)bz->call_timeout_ms, bz->session_cancellable,
			       register_agent_ready, session_op_new(bz));
}

static const char agent_xml[] =
	"<node>"
	" <interface name='" GW_BLUEZ_AGENT_IFACE "'>"
	"  <method name='Release'/>"
	"  <method name='RequestPinCode'>"
	"   <arg type='o' name='device' direction='in'/>"
	"   <arg type='s' name='pincode' direction='out'/>"
	"  </method>"
	"  <method name='DisplayPinCode'>"
	"   <arg type='o' name='device' direction='in'/>"
	"   <arg type='s' name='pincode' direction='in'/>"
	"  </method>"
	"  <method name='RequestPasskey'>"
	"   <arg type='o' name='device' direction='in'/>"
	"   <arg type='u' name='passkey' direction='out'/>"
	"  </method>"
	"  <method name='DisplayPasskey'>"
	"   <arg type='o' name='device' direction='in'/>"
	"   <arg type='u' name='passkey' direction='in'/>"
	"   <arg type='q' name='entered' direction='in'/>"
	"  </method>"
	"  <method name='RequestConfirmation'>"
	"   <arg type='o' name='device' direction='in'/>"
	"   <arg type='u' name='passkey' direction='in'/>"
	"  </method>"
	"  <method name='RequestAuthorization'>"
	"   <arg type='o' name='device' direction='in'/>"
	"  </method>"
	"  <method name='AuthorizeService'>"
	"   <arg type='o' name='device' direction='in'/>"
	"   <arg type='s' name='uuid' direction='in'/>"
	"  </method>"
	"  <method name='Cancel'/>"
	" </interface>"
	"</node>";

static bool device_address_for_path(GwBluez *bz, const char *path,
				    char ret[GW_BLUEZ_ADDR_SIZE])
{
	struct bz_device *dev = g_hash_table_lookup(bz->devices, path);

	if (dev) {
		memcpy(ret, dev->info.address, GW_BLUEZ_ADDR_SIZE);
		return true;
	}
	return gw_bluez_path_device(path, ret, NULL);
}

static bool is_allowed(GwBluez *bz, const char *address)
{
	if (bz->dying || !bz->ops.allowed)
		return false;
	return bz->ops.allowed(address, bz->user_data);
}

static void agent_handle(GwBluez *bz, const char *sender, const char *method,
			 GVariant *params, GDBusMethodInvocation *invocation)
{
	const char *device = NULL;
	char address[GW_BLUEZ_ADDR_SIZE];
	char m[GW_BLUEZ_ADDR_SIZE];
	bool ok;

	if (!bz->owner || g_strcmp0(sender, bz->owner)) {
		g_dbus_method_invocation_return_dbus_error(invocation,
				GW_BLUEZ_ERROR_REJECTED, "not from bluetoothd");
		return;
	}
	if (!strcmp(method, "Release")) {
		bz->agent_registered = false;
		g_debug("agent released by bluetoothd");
		g_dbus_method_invocation_return_value(invocation, NULL);
		return;
	}
	if (!strcmp(method, "Cancel") || !strcmp(method, "DisplayPasskey")) {
		g_debug("agent: %s", method);
		g_dbus_method_invocation_return_value(invocation, NULL);
		return;
	}
	if (strcmp(method, "RequestConfirmation") && strcmp(method, "RequestAuthorization") &&
	    strcmp(method, "AuthorizeService")) {
		/* RequestPinCode, RequestPasskey, DisplayPinCode: we have no
		 * input or output, by the capability we registered */
		g_debug("agent: %s rejected", method);
		g_dbus_method_invocation_return_dbus_error(invocation,
				GW_BLUEZ_ERROR_REJECTED, "NoInputNoOutput");
		return;
	}
	g_variant_get_child(params, 0, "&o", &device);
	if (!device_address_for_path(bz, device, address)) {
		g_dbus_method_invocation_return_dbus_error(invocation,
				GW_BLUEZ_ERROR_REJECTED, "unknown device");
		return;
	}
	/* bonding happens only through our own Pair, for allowed devices; a
	 * service authorization only needs the device to be allowed */
	if (!strcmp(method, "AuthorizeService"))
		ok = is_allowed(bz, address);
	else
		ok = g_hash_table_contains(bz->pairing, address) && is_allowed(bz, address);
	g_debug("%s: agent %s %s", mask(bz, address, m), method, ok ? "accepted" : "rejected");
	if (ok)
		g_dbus_method_invocation_return_value(invocation, NULL);
	else
		g_dbus_method_invocation_return_dbus_error(invocation,
				GW_BLUEZ_ERROR_REJECTED, "not allowed");
}

static void agent_method_cb(GDBusConnection *conn, const char *sender,
			    const char *path, const char *iface, const char *method,
			    GVariant *params, GDBusMethodInvocation *invocation,
			    gpointer user_data)
{
	GwBluez *bz = user_data;

	(void)conn;
	(void)path;
	(void)iface;
	bz_enter(bz);
	agent_handle(bz, sender, method, params, invocation);
	bz_leave(bz);
}

static const GDBusInterfaceVTable agent_vtable = {
	.method_call = agent_method_cb,
};

/* ---- ObjectManager events ------------------------------------------------------ */

static void iface_added(GwBluez *bz, const char *path, GDBusProxy *proxy)
{
	const char *name = g_dbus_proxy_get_interface_name(proxy);

	if (!strcmp(name, GW_BLUEZ_ADAPTER_IFACE)) {
		if (!bz->adapter_path && adapter_wanted(bz, path))
			adapter_select(bz, path, proxy);
		return;
	}
	if (!strcmp(name, GW_BLUEZ_AGENT_MANAGER_IFACE)) {
		agent_register(bz);
		return;
	}
	if (!bz->adapter_path || !gw_bluez_path_is_below(path, bz->adapter_path))
		return;
	if (!strcmp(name, GW_BLUEZ_DEVICE_IFACE))
		device_update(bz, path, proxy);
	else if (!strcmp(name, GW_BLUEZ_GATT_CHAR_IFACE))
		char_update(bz, path, proxy, true);
}

static void iface_removed(GwBluez *bz, const char *path, const char *name)
{
	if (!strcmp(name, GW_BLUEZ_ADAPTER_IFACE)) {
		if (!g_strcmp0(path, bz->adapter_path)) {
			adapter_deselect(bz);
			if (!bz->dying)
				adapter_choose(bz, path);
		}
		return;
	}
	if (!bz->adapter_path || !gw_bluez_path_is_below(path, bz->adapter_path))
		return;
	if (!strcmp(name, GW_BLUEZ_DEVICE_IFACE))
		device_remove(bz, path);
	else if (!strcmp(name, GW_BLUEZ_GATT_CHAR_IFACE))
		char_remove(bz, path);
}

static void object_added_cb(GDBusObjectManager *m, GDBusObject *obj, gpointer user_data)
{
	GwBluez *bz = user_data;
	const char *path = g_dbus_object_get_object_path(obj);
	GList *ifaces = g_dbus_object_get_interfaces(obj);

	(void)m;
	bz_enter(bz);
	for (GList *l = ifaces; l && !bz->dying; l = l->next)
		iface_added(bz, path, G_DBUS_PROXY(l->data));
	g_list_free_full(ifaces, g_object_unref);
	bz_leave(bz);
}

static void object_removed_cb(GDBusObjectManager *m, GDBusObject *obj, gpointer user_data)
{
	GwBluez *bz = user_data;
	const char *path = g_dbus_object_get_object_path(obj);
	GList *ifaces = g_dbus_object_get_interfaces(obj);

	(void)m;
	bz_enter(bz);
	for (GList *l = ifaces; l && !bz->dying; l = l->next)
		iface_removed(bz, path, g_dbus_proxy_get_interface_name(l->data));
	g_list_free_full(ifaces, g_object_unref);
	bz_leave(bz);
}

static void interface_added_cb(GDBusObjectManager *m, GDBusObject *obj,
			       GDBusInterface *iface, gpointer user_data)
{
	GwBluez *bz = user_data;

	(void)m;
	bz_enter(bz);
	iface_added(bz, g_dbus_object_get_object_path(obj), G_DBUS_PROXY(iface));
	bz_leave(bz);
}

static void interface_removed_cb(GDBusObjectManager *m, GDBusObject *obj,
				 GDBusInterface *iface, gpointer user_data)
{
	GwBluez *bz = user_data;

	(void)m;
	bz_enter(bz);
	iface_removed(bz, g_dbus_object_get_object_path(obj),
		      g_dbus_proxy_get_interface_name(G_DBUS_PROXY(iface)));
	bz_leave(bz);
}

static void properties_changed_cb(GDBusObjectManagerClient *m, GDBusObjectProxy *obj,
				  GDBusProxy *proxy, GVariant *changed,
				  const char *const *invalidated, gpointer user_data)
{
	GwBluez *bz = user_data;
	const char *name = g_dbus_proxy_get_interface_name(proxy);
	const char *path = g_dbus_proxy_get_object_path(proxy);

	(void)m;
	(void)obj;
	(void)invalidated;
	bz_enter(bz);
	if (!strcmp(name, GW_BLUEZ_GATT_CHAR_IFACE)) {
		if (char_changed(bz, path, changed) && !bz->dying)
			char_update(bz, path, proxy, true);
	} else if (!strcmp(name, GW_BLUEZ_DEVICE_IFACE)) {
		if (bz->adapter_path && gw_bluez_path_is_below(path, bz->adapter_path))
			device_update(bz, path, proxy);
	} else if (!strcmp(name, GW_BLUEZ_ADAPTER_IFACE)) {
		if (!g_strcmp0(path, bz->adapter_path))
			adapter_update(bz, proxy);
	}
	bz_leave(bz);
}

/* ---- the owner of org.bluez ----------------------------------------------------- */

static void manager_ready(GObject *src, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(session_op) op = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GDBusObjectManager) m = g_dbus_object_manager_client_new_finish(res, &error);
	GwBluez *bz;

	(void)src;
	if (g_cancellable_is_cancelled(op->cancellable))
		return;
	bz = op->bz;
	if (!m) {
		g_message("cannot enumerate the objects of %s: %s", GW_BLUEZ_BUS_NAME,
			  error->message);
		return;
	}
	bz_enter(bz);
	bz->manager = g_steal_pointer(&m);
	g_signal_connect(bz->manager, "object-added", G_CALLBACK(object_added_cb), bz);
	g_signal_connect(bz->manager, "object-removed", G_CALLBACK(object_removed_cb), bz);
	g_signal_connect(bz->manager, "interface-added", G_CALLBACK(interface_added_cb), bz);
	g_signal_connect(bz->manager, "interface-removed",
			 G_CALLBACK(interface_removed_cb), bz);
	g_signal_connect(bz->manager, "interface-proxy-properties-changed",
			 G_CALLBACK(properties_changed_cb), bz);
	bz->present = true;
	bz->reported_absent = false;
	g_debug("%s present", GW_BLUEZ_BUS_NAME);
	BZ_EMIT(bz, bluez_present, true);
	/* the agent first: AgentManager1 may not be listed by a minimal
	 * bluetoothd, and registering twice is harmless (AlreadyExists) */
	agent_register(bz);
	if (!bz->dying)
		adapter_choose(bz, NULL);
	bz_leave(bz);
}

static void session_begin(GwBluez *bz, const char *owner)
{
	bz->owner = g_strdup(owner);
	bz->session_cancellable = g_cancellable_new();
	g_debug("%s appeared", GW_BLUEZ_BUS_NAME);
	/* the unique name: a manager never outlives the bluetoothd it
	 * enumerated; a restart is a new session */
	g_dbus_object_manager_client_new(bz->conn,
					 G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_DO_NOT_AUTO_START,
					 owner, GW_BLUEZ_MANAGER_PATH, NULL, NULL, NULL,
					 bz->session_cancellable, manager_ready,
					 session_op_new(bz));
}

/* bluetoothd left (or was replaced): everything it exported is gone */
static void session_end(GwBluez *bz)
{
	bool was_present = bz->present;

	if (bz->session_cancellable)
		g_cancellable_cancel(bz->session_cancellable);
	g_clear_object(&bz->session_cancellable);
	if (bz->manager) {
		g_signal_handlers_disconnect_by_data(bz->manager, bz);
		g_clear_object(&bz->manager);
	}
	g_clear_pointer(&bz->owner, g_free);
	bz->present = false;
	bz->agent_registered = false;
	bz->agent_registering = false;
	adapter_deselect(bz);
	g_debug("%s gone", GW_BLUEZ_BUS_NAME);
	if (was_present) {
		bz->reported_absent = true;
		BZ_EMIT(bz, bluez_present, false);
	}
}

static void name_appeared_cb(GDBusConnection *conn, const char *name,
			     const char *owner, gpointer user_data)
{
	GwBluez *bz = user_data;

	(void)conn;
	(void)name;
	bz_enter(bz);
	if (g_strcmp0(bz->owner, owner)) {
		if (bz->owner)
			session_end(bz);
		if (!bz->dying)
			session_begin(bz, owner);
	}
	bz_leave(bz);
}

static void name_vanished_cb(GDBusConnection *conn, const char *name, gpointer user_data)
{
	GwBluez *bz = user_data;

	(void)conn;
	(void)name;
	bz_enter(bz);
	if (bz->owner)
		session_end(bz);
	if (!bz->reported_absent) {
		bz->reported_absent = true;
		BZ_EMIT(bz, bluez_present, false);
	}
	bz_leave(bz);
}

/* ---- commands ------------------------------------------------------------------ */

struct bz_call {
	GwBluez *bz;		/* valid unless the call was cancelled */
	enum gw_bluez_op op;
	char address[GW_BLUEZ_ADDR_SIZE];	/* "" for adapter operations */
	int ch;
	char *owner;		/* the bluetoothd the call went to */
	char *path;		/* START_DISCOVERY: the adapter, for the second step */
	bool filter_set;	/* START_DISCOVERY: SetDiscoveryFilter done */
	/* a failure found before calling: completed from an idle */
	enum gw_ble_err err;
	char *message;
};

static void bz_call_free(struct bz_call *call)
{
	g_free(call->owner);
	g_free(call->path);
	g_free(call->message);
	g_free(call);
}

static struct bz_call *call_new(GwBluez *bz, enum gw_bluez_op op, const char *address,
				int ch)
{
	struct bz_call *call = g_new0(struct bz_call, 1);

	call->bz = bz;
	call->op = op;
	call->ch = ch;
	if (address && !gw_bluez_address_normalize(address, call->address))
		g_strlcpy(call->address, address, sizeof(call->address));
	return call;
}

static void call_emit(GwBluez *bz, struct bz_call *call, enum gw_ble_err err,
		      const char *dbus_error, const char *message,
		      const uint8_t *value, size_t len)
{
	/* error texts may carry object paths, hence addresses */
	g_autofree char *text = gw_bluez_redact(message, bz->log_personal);
	struct gw_bluez_result res = {
		.op = call->op,
		.address = call->address[0] ? call->address : NULL,
		.ch = call->ch,
		.err = err,
		.dbus_error = dbus_error,
		.message = text,
		.value = value,
		.len = len,
	};
	char m[GW_BLUEZ_ADDR_SIZE];

	if (call->op == GW_BLUEZ_OP_PAIR) {
		unsigned int n = GPOINTER_TO_UINT(g_hash_table_lookup(bz->pairing,
								      call->address));

		if (n > 1)
			g_hash_table_insert(bz->pairing, g_strdup(call->address),
					    GUINT_TO_POINTER(n - 1));
		else
			g_hash_table_remove(bz->pairing, call->address);
	}
	if (err == GW_BLE_OK)
		g_debug("%s %s: ok", gw_bluez_op_name(call->op),
			call->address[0] ? mask(bz, call->address, m) : "adapter");
	else
		g_debug("%s %s: %s (%s: %s)", gw_bluez_op_name(call->op),
			call->address[0] ? mask(bz, call->address, m) : "adapter",
			gw_ble_err_name(err), dbus_error ? dbus_error : "local",
			text ? text : "");
	BZ_EMIT(bz, call_done, &res);
}

static gboolean failed_idle_cb(gpointer user_data)
{
	GwBluez *bz = user_data;
	struct bz_call *call;

	bz_enter(bz);
	g_clear_pointer(&bz->failed_source, g_source_unref);
	while (!bz->dying && (call = g_queue_pop_head(&bz->failed))) {
		call_emit(bz, call, call->err, NULL, call->message, NULL, 0);
		bz_call_free(call);
	}
	bz_leave(bz);
	return G_SOURCE_REMOVE;
}

/* Completes the call from an idle: never from inside the command. */
static void call_fail(GwBluez *bz, struct bz_call *call, enum gw_ble_err err,
		      const char *message)
{
	call->err = err;
	call->message = g_strdup(message);
	g_queue_push_tail(&bz->failed, call);
	if (bz->failed_source)
		return;
	bz->failed_source = g_idle_source_new();
	g_source_set_callback(bz->failed_source, failed_idle_cb, bz, NULL);
	g_source_attach(bz->failed_source, bz->context);
}

static void call_finish(GwBluez *bz, struct bz_call *call, GVariant *reply,
			const GError *error)
{
	g_autofree char *name = NULL;
	g_autofree char *message = NULL;
	enum gw_ble_err err = gw_bluez_error_from_gerror(error, &name, &message);
	const uint8_t *value = NULL;
	gsize len = 0;
	g_autoptr(GVariant) bytes = NULL;

	/* the bluetoothd that had the call is gone: whatever the bus said
	 * (typically NoReply), the reason is that */
	if (err != GW_BLE_OK && g_strcmp0(call->owner, bz->owner))
		err = GW_BLE_ERR_BLUEZ_GONE;
	if (err == GW_BLE_OK && call->op == GW_BLUEZ_OP_READ) {
		bytes = g_variant_get_child_value(reply, 0);
		value = g_variant_get_fixed_array(bytes, &len, sizeof(uint8_t));
	}
	call_emit(bz, call, err, name, message, value, len);
}

static void call_ready(GObject *src, GAsyncResult *res, gpointer user_data);

static void call_send(GwBluez *bz, struct bz_call *call, const char *path,
		      const char *iface, const char *method, GVariant *params,
		      const GVariantType *reply_type, unsigned int timeout_ms)
{
	g_free(call->owner);
	call->owner = g_strdup(bz->owner);
	g_dbus_connection_call(bz->conn, bz->owner, path, iface, method, params,
			       reply_type, G_DBUS_CALL_FLAGS_NO_AUTO_START,
			       (int)timeout_ms, bz->cancellable, call_ready, call);
}

static GVariant *discovery_filter(GwBluez *bz)
{
	const char *uuids[] = { bz->service_uuid, NULL };
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&b, "{sv}", "UUIDs", g_variant_new_strv(uuids, -1));
	g_variant_builder_add(&b, "{sv}", "Transport", g_variant_new_string("le"));
	g_variant_builder_add(&b, "{sv}", "DuplicateData", g_variant_new_boolean(FALSE));
	return g_variant_new("(a{sv})", &b);
}

static void call_ready(GObject *src, GAsyncResult *res, gpointer user_data)
{
	struct bz_call *call = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(src),
								  res, &error);
	GwBluez *bz;

	if (!reply && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		/* gw_bluez_free ran: the GwBluez is gone, the call is ours */
		bz_call_free(call);
		return;
	}
	bz = call->bz;
	bz_enter(bz);
	if (reply && call->op == GW_BLUEZ_OP_START_DISCOVERY && !call->filter_set &&
	    !g_strcmp0(call->owner, bz->owner)) {
		call->filter_set = true;
		call_send(bz, call, call->path, GW_BLUEZ_ADAPTER_IFACE, "StartDiscovery",
			  NULL, NULL, bz->call_timeout_ms);
	} else {
		call_finish(bz, call, reply, error);
		bz_call_free(call);
	}
	bz_leave(bz);
}

/* The checks every command starts with; false: the call is failed. */
static bool call_ready_to_send(GwBluez *bz, struct bz_call *call)
{
	if (!bz->present) {
		call_fail(bz, call, GW_BLE_ERR_BLUEZ_GONE, "bluetoothd is not running");
		return false;
	}
	if (!bz->adapter_path) {
		call_fail(bz, call, GW_BLE_ERR_NOT_READY, "no adapter");
		return false;
	}
	return true;
}

/* The device's object path: the one BlueZ exported, or the one it would
 * have (BlueZ then answers UnknownObject). NULL: the call is failed. */
static const char *call_device_path(GwBluez *bz, struct bz_call *call,
				    char **ret_owned)
{
	struct bz_device *dev;

	*ret_owned = NULL;
	if (!call_ready_to_send(bz, call))
		return NULL;
	if (!gw_bluez_address_valid(call->address)) {
		call_fail(bz, call, GW_BLE_ERR_DOES_NOT_EXIST, "not a device address");
		return NULL;
	}
	dev = g_hash_table_lookup(bz->devices_by_addr, call->address);
	if (dev)
		return dev->path;
	*ret_owned = gw_bluez_device_path(bz->adapter_path, call->address);
	return *ret_owned;
}

/* The characteristic with that role (the first by handle if the device
 * has several). NULL: the call is failed. */
static const char *call_char_path(GwBluez *bz, struct bz_call *call, enum gw_char ch)
{
	struct bz_device *dev;
	g_autoptr(GPtrArray) chars = NULL;

	if (!call_ready_to_send(bz, call))
		return NULL;
	if (!gw_char_uuid(ch)) {
		call_fail(bz, call, GW_BLE_ERR_DOES_NOT_EXIST, "not a characteristic role");
		return NULL;
	}
	dev = g_hash_table_lookup(bz->devices_by_addr, call->address);
	if (!dev) {
		call_fail(bz, call, GW_BLE_ERR_DOES_NOT_EXIST, "unknown device");
		return NULL;
	}
	chars = device_chars(bz, dev->path);
	for (unsigned int i = 0; i < chars->len; i++) {
		const struct bz_char *c = g_ptr_array_index(chars, i);

		if (c->info.role == (int)ch)
			return c->path;
	}
	call_fail(bz, call, GW_BLE_ERR_DOES_NOT_EXIST, "characteristic not resolved");
	return NULL;
}

void gw_bluez_set_powered(GwBluez *bz, bool powered)
{
	struct bz_call *call;

	g_return_if_fail(bz != NULL);
	if (bz->dying)
		return;
	call = call_new(bz, GW_BLUEZ_OP_SET_POWERED, NULL, -1);
	if (!call_ready_to_send(bz, call))
		return;
	g_debug("set powered %d", powered);
	call_send(bz, call, bz->adapter_path, GW_DBUS_PROPERTIES_IFACE, "Set",
		  g_variant_new("(ssv)", GW_BLUEZ_ADAPTER_IFACE, "Powered",
				g_variant_new_boolean(powered)),
		  NULL, bz->call_timeout_ms);
}

void gw_bluez_start_discovery(GwBluez *bz)
{
	struct bz_call *call;

	g_return_if_fail(bz != NULL);
	if (bz->dying)
		return;
	call = call_new(bz, GW_BLUEZ_OP_START_DISCOVERY, NULL, -1);
	if (!call_ready_to_send(bz, call))
		return;
	call->path = g_strdup(bz->adapter_path);
	g_debug("start discovery for %s", bz->service_uuid);
	call_send(bz, call, bz->adapter_path, GW_BLUEZ_ADAPTER_IFACE,
		  "SetDiscoveryFilter", discovery_filter(bz), NULL, bz->call_timeout_ms);
}

void gw_bluez_stop_discovery(GwBluez *bz)
{
	struct bz_call *call;

	g_return_if_fail(bz != NULL);
	if (bz->dying)
		return;
	call = call_new(bz, GW_BLUEZ_OP_STOP_DISCOVERY, NULL, -1);
	if (!call_ready_to_send(bz, call))
		return;
	call_send(bz, call, bz->adapter_path, GW_BLUEZ_ADAPTER_IFACE, "StopDiscovery",
		  NULL, NULL, bz->call_timeout_ms);
}

void gw_bluez_remove_device(GwBluez *bz, const char *address)
{
	g_autofree char *owned = NULL;
	struct bz_call *call;
	const char *path;

	g_return_if_fail(bz != NULL && address != NULL);
	if (bz->dying)
		return;
	call = call_new(bz, GW_BLUEZ_OP_REMOVE_DEVICE, address, -1);
	path = call_device_path(bz, call, &owned);
	if (!path)
		return;
	call_send(bz, call, bz->adapter_path, GW_BLUEZ_ADAPTER_IFACE, "RemoveDevice",
		  g_variant_new("(o)", path), NULL, bz->call_timeout_ms);
}

static void device_call(GwBluez *bz, enum gw_bluez_op op, const char *address,
			const char *method, unsigned int timeout_ms)
{
	g_autofree char *owned = NULL;
	struct bz_call *call;
	const char *path;
	char m[GW_BLUEZ_ADDR_SIZE];

	if (bz->dying)
		return;
	call = call_new(bz, op, address, -1);
	path = call_device_path(bz, call, &owned);
	if (!path)
		return;
	g_debug("%s %s", method, mask(bz, call->address, m));
	if (op == GW_BLUEZ_OP_PAIR) {
		unsigned int n = GPOINTER_TO_UINT(g_hash_table_lookup(bz->pairing,
								      call->address));

		g_hash_table_insert(bz->pairing, g_strdup(call->address),
				    GUINT_TO_POINTER(n + 1));
	}
	call_send(bz, call, path, GW_BLUEZ_DEVICE_IFACE, method, NULL, NULL, timeout_ms);
}

void gw_bluez_connect(GwBluez *bz, const char *address)
{
	g_return_if_fail(bz != NULL && address != NULL);
	device_call(bz, GW_BLUEZ_OP_CONNECT, address, "Connect", bz->connect_timeout_ms);
}

void gw_bluez_disconnect(GwBluez *bz, const char *address)
{
	g_return_if_fail(bz != NULL && address != NULL);
	device_call(bz, GW_BLUEZ_OP_DISCONNECT, address, "Disconnect", bz->call_timeout_ms);
}

void gw_bluez_pair(GwBluez *bz, const char *address)
{
	g_return_if_fail(bz != NULL && address != NULL);
	device_call(bz, GW_BLUEZ_OP_PAIR, address, "Pair", bz->pair_timeout_ms);
}

void gw_bluez_set_trusted(GwBluez *bz, const char *address, bool trusted)
{
	g_autofree char *owned = NULL;
	struct bz_call *call;
	const char *path;

	g_return_if_fail(bz != NULL && address != NULL);
	if (bz->dying)
		return;
	call = call_new(bz, GW_BLUEZ_OP_SET_TRUSTED, address, -1);
	path = call_device_path(bz, call, &owned);
	if (!path)
		return;
	call_send(bz, call, path, GW_DBUS_PROPERTIES_IFACE, "Set",
		  g_variant_new("(ssv)", GW_BLUEZ_DEVICE_IFACE, "Trusted",
				g_variant_new_boolean(trusted)),
		  NULL, bz->call_timeout_ms);
}

static GVariant *empty_options(void)
{
	return g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0);
}

void gw_bluez_read(GwBluez *bz, const char *address, enum gw_char ch)
{
	struct bz_call *call;
	const char *path;

	g_return_if_fail(bz != NULL && address != NULL);
	if (bz->dying)
		return;
	call = call_new(bz, GW_BLUEZ_OP_READ, address, (int)ch);
	path = call_char_path(bz, call, ch);
	if (!path)
		return;
	call_send(bz, call, path, GW_BLUEZ_GATT_CHAR_IFACE, "ReadValue",
		  g_variant_new("(@a{sv})", empty_options()), G_VARIANT_TYPE("(ay)"),
		  bz->call_timeout_ms);
}

void gw_bluez_write(GwBluez *bz, const char *address, enum gw_char ch,
		    const uint8_t *val, size_t len)
{
	struct bz_call *call;
	const char *path;
	GVariantBuilder opts;

	g_return_if_fail(bz != NULL && address != NULL && (val != NULL || len == 0));
	if (bz->dying)
		return;
	call = call_new(bz, GW_BLUEZ_OP_WRITE, address, (int)ch);
	path = call_char_path(bz, call, ch);
	if (!path)
		return;
	g_variant_builder_init(&opts, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&opts, "{sv}", "type", g_variant_new_string("request"));
	call_send(bz, call, path, GW_BLUEZ_GATT_CHAR_IFACE, "WriteValue",
		  g_variant_new("(@aya{sv})",
				g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE,
							  len ? val : (const uint8_t *)"",
							  len, sizeof(uint8_t)),
				&opts),
		  NULL, bz->call_timeout_ms);
}

static void notify_call(GwBluez *bz, enum gw_bluez_op op, const char *address,
			enum gw_char ch, const char *method)
{
	struct bz_call *call;
	const char *path;

	if (bz->dying)
		return;
	call = call_new(bz, op, address, (int)ch);
	path = call_char_path(bz, call, ch);
	if (!path)
		return;
	call_send(bz, call, path, GW_BLUEZ_GATT_CHAR_IFACE, method, NULL, NULL,
		  bz->call_timeout_ms);
}

void gw_bluez_start_notify(GwBluez *bz, const char *address, enum gw_char ch)
{
	g_return_if_fail(bz != NULL && address != NULL);
	notify_call(bz, GW_BLUEZ_OP_START_NOTIFY, address, ch, "StartNotify");
}

void gw_bluez_stop_notify(GwBluez *bz, const char *address, enum gw_char ch)
{
	g_return_if_fail(bz != NULL && address != NULL);
	notify_call(bz, GW_BLUEZ_OP_STOP_NOTIFY, address, ch, "StopNotify");
}

/* ---- state --------------------------------------------------------------------- */

bool gw_bluez_is_present(const GwBluez *bz)
{
	g_return_val_if_fail(bz != NULL, false);
	return bz->present;
}

bool gw_bluez_agent_registered(const GwBluez *bz)
{
	g_return_val_if_fail(bz != NULL, false);
	return bz->agent_registered;
}

const struct gw_bluez_adapter *gw_bluez_get_adapter(const GwBluez *bz)
{
	g_return_val_if_fail(bz != NULL, NULL);
	return bz->adapter_path ? &bz->adapter : NULL;
}

const struct gw_bluez_device *gw_bluez_get_device(const GwBluez *bz, const char *address)
{
	char addr[GW_BLUEZ_ADDR_SIZE];
	const struct bz_device *dev;

	g_return_val_if_fail(bz != NULL, NULL);
	if (!gw_bluez_address_normalize(address, addr))
		return NULL;
	dev = g_hash_table_lookup(bz->devices_by_addr, addr);
	return dev ? &dev->info : NULL;
}

/* ---- life cycle ---------------------------------------------------------------- */

GwBluez *gw_bluez_new(GDBusConnection *conn, const struct gw_bluez_config *cfg,
		      const struct gw_bluez_ops *ops, void *user_data, GError **error)
{
	static const struct gw_bluez_config defaults = { 0 };
	g_autoptr(GwBluez) bz = NULL;
	g_autoptr(GDBusNodeInfo) info = NULL;
	char uuid[GW_BLUEZ_UUID_SIZE];

	g_return_val_if_fail(ops != NULL, NULL);

	if (!cfg)
		cfg = &defaults;
	if (!gw_bluez_uuid_normalize(cfg->service_uuid ? cfg->service_uuid : WB_UUID_SERVICE,
				     uuid)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "service UUID '%s' is not a 128-bit UUID", cfg->service_uuid);
		return NULL;
	}
	if (cfg->agent_path && !g_variant_is_object_path(cfg->agent_path)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "agent path '%s' is not an object path", cfg->agent_path);
		return NULL;
	}

	bz = g_new0(GwBluez, 1);
	bz->context = g_main_context_ref_thread_default();
	bz->ops = *ops;
	bz->user_data = user_data;
	bz->adapter_name = cfg->adapter && *cfg->adapter ? g_strdup(cfg->adapter) : NULL;
	bz->service_uuid = g_strdup(uuid);
	bz->agent_path = g_strdup(cfg->agent_path ? cfg->agent_path : GW_BLUEZ_AGENT_PATH);
	bz->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms
							 : DEFAULT_CONNECT_TIMEOUT_MS;
	bz->pair_timeout_ms = cfg->pair_timeout_ms ? cfg->pair_timeout_ms
						   : DEFAULT_PAIR_TIMEOUT_MS;
	bz->call_timeout_ms = cfg->call_timeout_ms ? cfg->call_timeout_ms
						   : DEFAULT_CALL_TIMEOUT_MS;
	bz->log_personal = cfg->log_personal;
	bz->cancellable = g_cancellable_new();
	bz->devices = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, bz_device_free);
	bz->devices_by_addr = g_hash_table_new(g_str_hash, g_str_equal);
	bz->chars = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, bz_char_free);
	bz->layout_pending = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	bz->pairing = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_queue_init(&bz->failed);

	if (conn)
		bz->conn = g_object_ref(conn);
	else
		bz->conn = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, error);
	if (!bz->conn) {
		g_prefix_error(error, "system bus: ");
		return NULL;
	}

	info = g_dbus_node_info_new_for_xml(agent_xml, error);
	if (!info)
		return NULL;
	bz->agent_object_id = g_dbus_connection_register_object(bz->conn, bz->agent_path,
								info->interfaces[0],
								&agent_vtable, bz, NULL,
								error);
	if (!bz->agent_object_id) {
		g_prefix_error(error, "agent %s: ", bz->agent_path);
		return NULL;
	}

	bz->watch_id = g_bus_watch_name_on_connection(bz->conn, GW_BLUEZ_BUS_NAME,
						      G_BUS_NAME_WATCHER_FLAGS_NONE,
						      name_appeared_cb, name_vanished_cb,
						      bz, NULL);
	return g_steal_pointer(&bz);
}

static void bz_destroy(GwBluez *bz)
{
	bz->dying = true;
	g_cancellable_cancel(bz->cancellable);
	if (bz->watch_id)
		g_bus_unwatch_name(bz->watch_id);
	if (bz->agent_registered && bz->owner)
		/* no reply wanted: we are going */
		g_dbus_connection_call(bz->conn, bz->owner, GW_BLUEZ_AGENT_MANAGER_PATH,
				       GW_BLUEZ_AGENT_MANAGER_IFACE, "UnregisterAgent",
				       g_variant_new("(o)", bz->agent_path), NULL,
				       G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, NULL, NULL, NULL);
	if (bz->agent_object_id)
		g_dbus_connection_unregister_object(bz->conn, bz->agent_object_id);
	if (bz->session_cancellable)
		g_cancellable_cancel(bz->session_cancellable);
	g_clear_object(&bz->session_cancellable);
	if (bz->manager)
		g_signal_handlers_disconnect_by_data(bz->manager, bz);
	g_clear_object(&bz->manager);
	if (bz->layout_source)
		g_source_destroy(bz->layout_source);
	g_clear_pointer(&bz->layout_source, g_source_unref);
	if (bz->failed_source)
		g_source_destroy(bz->failed_source);
	g_clear_pointer(&bz->failed_source, g_source_unref);
	g_queue_clear_full(&bz->failed, (GDestroyNotify)bz_call_free);
	g_clear_pointer(&bz->chars, g_hash_table_unref);
	g_clear_pointer(&bz->devices_by_addr, g_hash_table_unref);
	g_clear_pointer(&bz->devices, g_hash_table_unref);
	g_clear_pointer(&bz->layout_pending, g_hash_table_unref);
	g_clear_pointer(&bz->pairing, g_hash_table_unref);
	g_clear_object(&bz->cancellable);
	g_clear_object(&bz->conn);
	g_clear_pointer(&bz->context, g_main_context_unref);
	g_free(bz->owner);
	g_free(bz->adapter_path);
	g_free(bz->adapter_name);
	g_free(bz->service_uuid);
	g_free(bz->agent_path);
	g_free(bz);
}

void gw_bluez_free(GwBluez *bz)
{
	if (!bz)
		return;
	if (bz->busy) {
		/* inside one of our callbacks: finish when it unwinds */
		bz->dying = true;
		g_cancellable_cancel(bz->cancellable);
		return;
	}
	bz_destroy(bz);
}
