/* SPDX-License-Identifier: MIT */
/*
 * rehablinkctl doctor: every check a technician would make, each with a
 * verdict (ok, warn, fail, skip), a one-line detail and a one-line hint
 * that says what to do. The checks that need no daemon (bluetoothd, its
 * main.conf, the adapter, the HCI counters, the clock, the broker's TCP
 * port, the certificates, the disk) read the config file (--config) and
 * the system directly, so that doctor still says something useful when
 * rehablinkd is down. The verdict is the worst of ok, warn and fail (a
 * skip does not count); any fail exits 1.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/timex.h>

#include <bluetooth/bluetooth.h>
#include <bluetooth/hci.h>
#include <bluetooth/hci_lib.h>

#include "ctl-common.h"

/* test seam: the bluetoothd config file to read */
#define BLUEZ_MAIN_CONF_ENV "REHABLINKCTL_BLUETOOTH_MAIN_CONF"
#define BLUEZ_MAIN_CONF "/etc/bluetooth/main.conf"

enum verdict { V_OK, V_SKIP, V_WARN, V_FAIL };

static const char *verdict_name(enum verdict v)
{
	switch (v) {
	case V_OK: return "ok";
	case V_SKIP: return "skip";
	case V_WARN: return "warn";
	case V_FAIL: return "fail";
	}
	return "?";
}

struct check {
	char *name;
	enum verdict v;
	char *detail;
	char *hint;
};

static void check_free(gpointer p)
{
	struct check *k = p;

	g_free(k->name);
	g_free(k->detail);
	g_free(k->hint);
	g_free(k);
}

struct doctor {
	struct ctl *c;
	GPtrArray *checks;
	GKeyFile *kf;			/* NULL: the config file is unreadable */
	JsonNode *status_node;
	JsonObject *status;		/* NULL: rehablinkd not reachable */
	bool bluez_running;
	char *adapter;			/* the adapter found on the bus */
	bool broker_reachable;
	bool broker_tls_refused;	/* our own handshake refused its certificate */
};

static void add(struct doctor *d, const char *name, enum verdict v, const char *hint,
		const char *fmt, ...) G_GNUC_PRINTF(5, 6);
static void add(struct doctor *d, const char *name, enum verdict v, const char *hint,
		const char *fmt, ...)
{
	struct check *k = g_new0(struct check, 1);
	va_list ap;

	va_start(ap, fmt);
	k->detail = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	k->name = g_strdup(name);
	k->v = v;
	k->hint = v == V_OK || !hint ? NULL : g_strdup(hint);
	g_ptr_array_add(d->checks, k);
}

static char *kf_string(struct doctor *d, const char *group, const char *key)
{
	char *v;

	if (!d->kf)
		return NULL;
	v = g_key_file_get_string(d->kf, group, key, NULL);
	if (v) {
		g_strstrip(v);
		if (!*v)
			g_clear_pointer(&v, g_free);
	}
	return v;
}

/* ---- rehablinkd, the config file ---- */

static void check_daemon(struct doctor *d)
{
	struct ctl *c = d->c;
	g_autoptr(GError) error = NULL;
	gboolean has = FALSE;
	g_autofree char *up = NULL;

	if (!ctl_name_has_owner(c, CTL_NAME, &has, &error)) {
		add(d, "daemon", V_FAIL, "is dbus running? systemctl status dbus",
		    "cannot reach the system bus: %s", error->message);
		return;
	}
	if (!has) {
		add(d, "daemon", V_FAIL,
		    "systemctl status rehablink; journalctl -u rehablink -n 50 (why it stopped); "
		    "systemctl start rehablink",
		    "rehablinkd is not running: nobody owns %s on the system bus", CTL_NAME);
		return;
	}
	d->status_node = ctl_call_full(c, "GetStatus", NULL, NULL, 0, &error);
	if (!d->status_node) {
		g_autofree char *remote = g_dbus_error_get_remote_error(error);

		g_dbus_error_strip_remote_error(error);
		add(d, "daemon", V_FAIL,
		    remote && strstr(remote, "AccessDenied")
		    ? "the D-Bus policy refused: run as root or as a member of the group rehablink"
		    : "rehablinkd owns its name but does not answer: journalctl -u rehablink -n 50; "
		      "systemctl restart rehablink",
		    "GetStatus failed: %s", error->message);
		return;
	}
	d->status = ctl_node_obj(d->status_node);
	up = ctl_age(ctl_num_or(d->status, "uptime_s", 0));
	add(d, "daemon", V_OK, NULL, "rehablinkd %s, gateway %s, pid %.0f, up %s",
	    ctl_str(d->status, "version") ? ctl_str(d->status, "version") : "?",
	    ctl_str(d->status, "gateway_id") ? ctl_str(d->status, "gateway_id") : "?",
	    ctl_num_or(d->status, "pid", 0), up);
}

static void check_config(struct doctor *d)
{
	const char *path = d->c->config_path;
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) error = NULL;
	g_autofree char *id = NULL;
	g_autofree char *uri = NULL;
	g_auto(GStrv) ws = NULL;

	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &error)) {
		add(d, "config", V_WARN,
		    "give the daemon's config file with --config FILE "
		    "(systemctl cat rehablink shows it); rehablinkd --check-config -c FILE checks it",
		    "cannot read %s: %s", path, error->message);
		return;
	}
	d->kf = g_steal_pointer(&kf);
	id = kf_string(d, "gateway", "id");
	uri = kf_string(d, "mqtt", "uri");
	ws = g_key_file_get_string_list(d->kf, "ble", "wearables", NULL, NULL);
	if (d->status && id && ctl_str(d->status, "gateway_id") &&
	    strcmp(id, ctl_str(d->status, "gateway_id")) != 0) {
		add(d, "config", V_WARN,
		    "give the running daemon's config file with --config FILE "
		    "(systemctl cat rehablink shows it)",
		    "%s is not the running daemon's config (gateway %s, the daemon's %s)",
		    path, id, ctl_str(d->status, "gateway_id"));
		return;
	}
	add(d, "config", V_OK, NULL, "%s: gateway %s, %u wearable%s, broker %s", path,
	    id ? id : "?", ws ? g_strv_length(ws) : 0, ws && g_strv_length(ws) == 1 ? "" : "s",
	    uri ? uri : "?");
}

/* ---- bluetoothd, its main.conf, the adapter, the HCI counters ---- */

static void check_bluetoothd(struct doctor *d)
{
	g_autoptr(GError) error = NULL;
	gboolean has = FALSE;
	bool daemon_sees = true;

	if (!ctl_name_has_owner(d->c, "org.bluez", &has, &error)) {
		add(d, "bluetoothd", V_SKIP, NULL, "no system bus: %s", error->message);
		return;
	}
	d->bluez_running = has;
	if (d->status)
		daemon_sees = ctl_bool(ctl_obj(d->status, "bluetoothd"), "running", true);
	if (!has) {
		add(d, "bluetoothd", V_FAIL,
		    "systemctl status bluetooth; journalctl -u bluetooth -n 50; "
		    "systemctl restart bluetooth",
		    "bluetoothd is not running (nobody owns org.bluez on the system bus)");
		return;
	}
	if (!daemon_sees) {
		add(d, "bluetoothd", V_WARN,
		    "rehablinkd watches org.bluez and should notice by itself; "
		    "if it stays so: systemctl restart rehablink",
		    "bluetoothd runs, but rehablinkd does not see it (yet)");
		return;
	}
	add(d, "bluetoothd", V_OK, NULL, "running (org.bluez owned)%s",
	    d->status ? ", rehablinkd sees it" : "");
}

static void check_bluez_conf(struct doctor *d)
{
	const char *path = getenv(BLUEZ_MAIN_CONF_ENV) ? getenv(BLUEZ_MAIN_CONF_ENV)
						       : BLUEZ_MAIN_CONF;
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) error = NULL;
	g_autofree char *mode = NULL;
	g_autofree char *autoen = NULL;
	g_autofree char *cache = NULL;
	g_autofree char *channels = NULL;
	g_autofree char *attempts = NULL;
	enum verdict v = V_OK;
	const char *hint = NULL;
	const char *what = "";

	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &error)) {
		if (g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			add(d, "bluez-config", V_OK, NULL, "no %s: BlueZ's defaults (ControllerMode "
			    "dual, AutoEnable true, GATT Cache always)", path);
		else
			add(d, "bluez-config", V_WARN,
			    "fix the file (bluetoothd ignores what it cannot parse), "
			    "then systemctl restart bluetooth",
			    "cannot read %s: %s", path, error->message);
		return;
	}
#define GET(var, group, key, def)                                                     \
	do {                                                                          \
		var = g_key_file_get_string(kf, group, key, NULL);                    \
		if (var)                                                              \
			g_strstrip(var);                                              \
		if (!var || !*var) {                                                  \
			g_free(var);                                                  \
			var = g_strdup(def);                                          \
		}                                                                     \
	} while (0)
	GET(mode, "General", "ControllerMode", "dual");
	GET(autoen, "Policy", "AutoEnable", "true");
	GET(cache, "GATT", "Cache", "always");
	GET(channels, "GATT", "Channels", "3");
	GET(attempts, "Policy", "ReconnectAttempts", "7");
#undef GET
	/* the worst first: each later one only if nothing worse was found */
	if (strcmp(mode, "bredr") == 0) {
		v = V_FAIL;
		what = ": the adapter cannot see LE wearables";
		hint = "set ControllerMode = le (or dual) in [General], then systemctl restart "
		       "bluetooth: in bredr mode the controller neither scans nor connects LE";
	} else if (g_ascii_strcasecmp(autoen, "true") != 0) {
		v = V_WARN;
		what = ": adapters stay off after a reboot or replug";
		hint = "set AutoEnable=true in [Policy]: otherwise the adapter stays powered off "
		       "after a reboot or a USB replug until something powers it on";
	} else if (strcmp(cache, "no") == 0) {
		v = V_WARN;
		what = ": every reconnect rediscovers all GATT services";
		hint = "set Cache = always (or yes: the wearables are bonded) in [GATT]: with no, "
		       "each reconnect rediscovers the services, slowing the history sync and "
		       "costing the wearable's battery";
	}
	/* [Policy] ReconnectAttempts/ReconnectIntervals are not judged: they
	 * drive the policy plugin's reconnection of the BR/EDR profiles in
	 * ReconnectUUIDs (audio); the LE links are rehablinkd's own (link.c
	 * backoff), whatever they say. Only shown. */
	add(d, "bluez-config", v, hint,
	    "%s: ControllerMode %s, AutoEnable %s, GATT Cache %s, ATT channels %s, "
	    "ReconnectAttempts %s (BR/EDR only)%s",
	    path, mode, autoen, cache, channels, attempts, what);
}

static void check_adapter(struct doctor *d)
{
	struct ctl *c = d->c;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) ret = NULL;
	g_autoptr(GVariantIter) objs = NULL;
	g_autofree char *want = kf_string(d, "ble", "adapter");
	g_autoptr(GString) names = g_string_new(NULL);
	const char *path;
	GVariant *ifaces;
	bool found = false, powered = false;
	g_autofree char *address = NULL;
	g_autofree char *first = NULL;
	GDBusConnection *bus;

	if (!want && d->status) {
		const char *n = ctl_str(ctl_obj(d->status, "adapter"), "name");

		if (n && g_str_has_prefix(n, "hci"))
			want = g_strdup(n);
	}
	if (!d->bluez_running) {
		add(d, "adapter", V_SKIP, NULL, "bluetoothd not running: no adapter to ask for");
		return;
	}
	bus = ctl_bus(c, &error);
	if (bus)
		ret = g_dbus_connection_call_sync(bus, "org.bluez", "/",
						  "org.freedesktop.DBus.ObjectManager",
						  "GetManagedObjects", NULL,
						  G_VARIANT_TYPE("(a{oa{sa{sv}}})"),
						  G_DBUS_CALL_FLAGS_NO_AUTO_START, c->timeout_ms,
						  NULL, &error);
	if (!ret) {
		add(d, "adapter", V_FAIL, "systemctl restart bluetooth; journalctl -u bluetooth",
		    "bluetoothd does not answer GetManagedObjects: %s", error->message);
		return;
	}
	g_variant_get(ret, "(a{oa{sa{sv}}})", &objs);
	while (g_variant_iter_next(objs, "{&o@a{sa{sv}}}", &path, &ifaces)) {
		g_autoptr(GVariant) props = g_variant_lookup_value(ifaces, "org.bluez.Adapter1",
								   G_VARIANT_TYPE("a{sv}"));
		const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

		if (props) {
			g_string_append_printf(names, "%s%s", names->len ? ", " : "", name);
			if (!first)
				first = g_strdup(name);
			if (!found && (!want || strcmp(want, name) == 0)) {
				gboolean p = FALSE;
				const char *addr = NULL;

				found = true;
				g_free(d->adapter);
				d->adapter = g_strdup(name);
				g_variant_lookup(props, "Powered", "b", &p);
				powered = p;
				if (g_variant_lookup(props, "Address", "&s", &addr))
					address = g_strdup(addr);
			}
		}
		g_variant_unref(ifaces);
	}
	if (!found && !first) {
		add(d, "adapter", V_FAIL,
		    "is the adapter there? dmesg | grep -i bluetooth; lsusb; rfkill list; "
		    "a Pi's built-in one needs its UART (hciuart.service)",
		    "bluetoothd has no adapter");
		return;
	}
	if (!found) {
		add(d, "adapter", V_FAIL,
		    "fix [ble] adapter in the config (empty: the first), or plug the adapter in",
		    "the configured adapter %s is not there (present: %s)", want, names->str);
		g_free(d->adapter);
		d->adapter = g_strdup(want);
		return;
	}
	if (!powered) {
		add(d, "adapter", V_FAIL,
		    "rfkill list (blocked?); rfkill unblock bluetooth; bluetoothctl power on; "
		    "[Policy] AutoEnable=true in /etc/bluetooth/main.conf",
		    "%s (%s) is present but NOT powered", d->adapter, address ? address : "?");
		return;
	}
	if (d->status && !ctl_bool(ctl_obj(d->status, "adapter"), "powered", true)) {
		add(d, "adapter", V_WARN, "if it stays so: systemctl restart rehablink",
		    "%s is powered, but rehablinkd sees it %s", d->adapter,
		    ctl_str(ctl_obj(d->status, "adapter"), "state")
		    ? ctl_str(ctl_obj(d->status, "adapter"), "state") : "not powered");
		return;
	}
	add(d, "adapter", V_OK, NULL, "%s (%s) powered%s%s", d->adapter, address ? address : "?",
	    names->len > strlen(d->adapter) ? "; adapters: " : "",
	    names->len > strlen(d->adapter) ? names->str : "");
}

static void check_hci(struct doctor *d)
{
	const char *name = d->adapter ? d->adapter : "hci0";
	struct hci_dev_info di;
	struct hci_dev_stats *st = &di.stat;
	int sk, dev_id, err;
	char *end;
	g_autofree char *rx = NULL;
	g_autofree char *tx = NULL;
	bool up, running;
	enum verdict v;

	sk = socket(AF_BLUETOOTH, SOCK_RAW | SOCK_CLOEXEC, BTPROTO_HCI);
	if (sk < 0) {
		err = errno;
		if (err == EAFNOSUPPORT)
			add(d, "hci", V_SKIP,
			    "expected in a container or a VM without Bluetooth; on the Pi: "
			    "lsmod | grep bluetooth, dmesg | grep -i bluetooth",
			    "no Bluetooth in this kernel: socket(AF_BLUETOOTH): %s", g_strerror(err));
		else
			add(d, "hci", V_WARN, "run as root to read the HCI counters",
			    "socket(AF_BLUETOOTH): %s", g_strerror(err));
		return;
	}
	close(sk);
	if (!g_str_has_prefix(name, "hci") ||
	    (dev_id = (int)strtol(name + 3, &end, 10)) < 0 || *end || end == name + 3) {
		add(d, "hci", V_SKIP, NULL, "adapter '%s' is not an HCI device name", name);
		return;
	}
	memset(&di, 0, sizeof(di));
	if (hci_devinfo(dev_id, &di) < 0) {
		err = errno;
		add(d, "hci", V_FAIL,
		    "dmesg | grep -i bluetooth; is the adapter plugged in (lsusb)?",
		    "%s: no HCI device info: %s", name, g_strerror(err));
		return;
	}
	up = hci_test_bit(HCI_UP, &di.flags);
	running = hci_test_bit(HCI_RUNNING, &di.flags);
	rx = ctl_bytes(st->byte_rx);
	tx = ctl_bytes(st->byte_tx);
	v = !up ? V_FAIL : st->err_rx || st->err_tx ? V_WARN : V_OK;
	add(d, "hci", v,
	    !up ? "bluetoothctl power on (or btmgmt --index N power on); rfkill list"
		: "HCI transport errors: a flaky USB/UART link or interference; dmesg | grep -i "
		  "bluetooth; use a USB 2 port away from USB 3 and the Wi-Fi router",
	    "%s %s%s: errors rx %u tx %u; events %u, commands %u; ACL rx %u tx %u; "
	    "SCO rx %u tx %u; bytes rx %s tx %s",
	    di.name, up ? "UP" : "DOWN", running ? " RUNNING" : "", st->err_rx, st->err_tx,
	    st->evt_rx, st->cmd_tx, st->acl_rx, st->acl_tx, st->sco_rx, st->sco_tx, rx, tx);
}

/* ---- the clock ---- */

static void check_clock(struct doctor *d)
{
	struct timex tx;
	int state;
	bool kernel_synced;
	bool have_daemon = false, daemon_synced = false;
	const char *mode = NULL;
	JsonObject *ck = d->status ? ctl_obj(d->status, "clock") : NULL;
	g_autofree char *daemon = NULL;

	memset(&tx, 0, sizeof(tx));
	state = adjtimex(&tx);
	if (state < 0) {
		add(d, "clock", V_WARN, NULL, "adjtimex: %s", g_strerror(errno));
		return;
	}
	kernel_synced = state != TIME_ERROR && !(tx.status & STA_UNSYNC);
	if (ck) {
		double steps = 0, last = 0;

		have_daemon = ctl_has_bool(ck, "synced", &daemon_synced);
		mode = ctl_str(ck, "mode");
		/* a step the daemon saw: NTP after a boot with a wrong clock, a
		 * bad RTC, someone with `date -s` */
		if (ctl_num(ck, "steps", &steps) && steps > 0 && ctl_num(ck, "last_step_s", &last)) {
			g_autofree char *by = ctl_duration(last < 0 ? -last : last);

			add(d, "clock-steps", V_WARN,
			    "a step at boot is NTP correcting a wrong clock (harmless once); steps "
			    "later: check timedatectl and who sets the time. Alert timers were "
			    "moved with it; records keep their monotonic time",
			    "the wall clock stepped %.0f time(s) while rehablinkd ran, the last "
			    "%s by %s", steps, last < 0 ? "back" : "forward", by);
		}
	}
	daemon = have_daemon ? g_strdup_printf("; rehablinkd: %s (clock=%s)",
					       daemon_synced ? "synced" : "unsynced",
					       mode ? mode : "?")
			     : g_strdup(d->status ? "" : "; rehablinkd not reachable");
	if (!kernel_synced && have_daemon && daemon_synced) {
		add(d, "clock", V_WARN,
		    "clock=synced is for a lab without NTP; in a patient's home set [gateway] "
		    "clock=auto and get NTP working (timedatectl timesync-info)",
		    "kernel clock NOT synchronised, but rehablinkd trusts it%s", daemon);
		return;
	}
	if (!kernel_synced) {
		add(d, "clock", V_WARN,
		    "timedatectl; systemctl status systemd-timesyncd; is the network up and NTP "
		    "(UDP 123) reachable? Until then times are estimated",
		    "kernel clock NOT synchronised (adjtimex: STA_UNSYNC)%s", daemon);
		return;
	}
	if (have_daemon && !daemon_synced) {
		add(d, "clock", V_WARN,
		    "set [gateway] clock=auto in the config, then rehablinkctl reload or a restart",
		    "kernel clock synchronised, but rehablinkd does not trust it%s", daemon);
		return;
	}
	add(d, "clock", V_OK, NULL, "synchronised (max error %ld ms)%s", tx.maxerror / 1000,
	    daemon);
}

/* ---- the broker ---- */

struct uri {
	char *scheme;
	char *authority;	/* host[:port] */
	char *host;
	bool tls;
	guint16 port;
};

static void uri_clear(struct uri *u)
{
	g_free(u->scheme);
	g_free(u->authority);
	g_free(u->host);
}

static bool parse_uri(const char *s, struct uri *u, GError **error)
{
	const char *sep = strstr(s, "://");
	const char *a, *end, *at;
	g_autoptr(GNetworkAddress) na = NULL;

	memset(u, 0, sizeof(*u));
	if (!sep) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no scheme:// in '%s'", s);
		return false;
	}
	u->scheme = g_ascii_strdown(s, sep - s);
	if (strcmp(u->scheme, "ssl") == 0 || strcmp(u->scheme, "mqtts") == 0) {
		u->tls = true;
	} else if (strcmp(u->scheme, "tcp") != 0 && strcmp(u->scheme, "mqtt") != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "unknown scheme '%s' (tcp, mqtt, ssl, mqtts)", u->scheme);
		return false;
	}
	a = sep + 3;
	end = a + strcspn(a, "/?#");
	at = memchr(a, '@', end - a);
	if (at)
		a = at + 1;
	u->authority = g_strndup(a, end - a);
	na = G_NETWORK_ADDRESS(g_network_address_parse(u->authority, u->tls ? 8883 : 1883, error));
	if (!na)
		return false;
	u->host = g_strdup(g_network_address_get_hostname(na));
	u->port = g_network_address_get_port(na);
	return true;
}

static bool loopback_host(const char *h)
{
	g_autoptr(GInetAddress) ia = g_inet_address_new_from_string(h);

	if (ia)
		return g_inet_address_get_is_loopback(ia);
	return g_ascii_strcasecmp(h, "localhost") == 0 ||
	       g_str_has_suffix(h, ".localhost");
}

/* What is wrong with a certificate, in words. */
static void tls_flags_text(GTlsCertificateFlags f, const char *host, GString *out)
{
	static const struct { GTlsCertificateFlags flag; const char *text; } names[] = {
		{ G_TLS_CERTIFICATE_UNKNOWN_CA, "signed by a CA that is not [mqtt] ca_file" },
		{ G_TLS_CERTIFICATE_BAD_IDENTITY, "not issued for the host" },
		{ G_TLS_CERTIFICATE_NOT_ACTIVATED, "not valid yet (or this clock is behind)" },
		{ G_TLS_CERTIFICATE_EXPIRED, "expired (or this clock is ahead)" },
		{ G_TLS_CERTIFICATE_REVOKED, "revoked" },
		{ G_TLS_CERTIFICATE_INSECURE, "uses an insecure algorithm" },
		{ G_TLS_CERTIFICATE_GENERIC_ERROR, "could not be verified" },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
		if (f & names[i].flag)
			g_string_append_printf(out, "%s%s%s%s", out->len ? "; " : "", names[i].text,
					       names[i].flag == G_TLS_CERTIFICATE_BAD_IDENTITY ? " " : "",
					       names[i].flag == G_TLS_CERTIFICATE_BAD_IDENTITY ? host : "");
}

static gboolean tls_accept_cb(GTlsConnection *conn, GTlsCertificate *peer,
			      GTlsCertificateFlags errors, gpointer ud)
{
	(void)conn;
	(void)peer;
	*(GTlsCertificateFlags *)ud = errors;
	return FALSE;	/* as rehablinkd: nothing unverified is accepted */
}

/* The TLS handshake rehablinkd makes, with [mqtt] ca_file and the URI's
 * host as the identity: what paho reports as a bare "TLS connect failure"
 * gets its reason. FALSE with *why set when it was refused. */
static bool tls_probe(struct doctor *d, GIOStream *base, const struct uri *u, char **why)
{
	g_autofree char *ca = kf_string(d, "mqtt", "ca_file");
	g_autofree char *cert = kf_string(d, "mqtt", "cert_file");
	g_autofree char *key = kf_string(d, "mqtt", "key_file");
	g_autoptr(GSocketConnectable) id = g_network_address_new(u->host, u->port);
	g_autoptr(GTlsDatabase) db = NULL;
	g_autoptr(GIOStream) tls = NULL;
	g_autoptr(GError) error = NULL;
	GTlsCertificateFlags flags = 0;

	if (!g_tls_backend_supports_tls(g_tls_backend_get_default()))
		return true;	/* the tls check says so */
	if (ca && !(db = g_tls_file_database_new(ca, &error))) {
		*why = g_strdup_printf("ca_file %s: %s", ca, error->message);
		return false;
	}
	tls = g_tls_client_connection_new(base, id, &error);
	if (!tls) {
		*why = g_strdup(error->message);
		return false;
	}
	if (db)
		g_tls_connection_set_database(G_TLS_CONNECTION(tls), db);
	if (cert && key) {
		g_autoptr(GTlsCertificate) mine = g_tls_certificate_new_from_files(cert, key, NULL);

		if (mine)
			g_tls_connection_set_certificate(G_TLS_CONNECTION(tls), mine);
	}
	g_signal_connect(tls, "accept-certificate", G_CALLBACK(tls_accept_cb), &flags);
	if (g_tls_connection_handshake(G_TLS_CONNECTION(tls), NULL, &error)) {
		g_io_stream_close(tls, NULL, NULL);
		return true;
	}
	if (flags) {
		g_autoptr(GString) t = g_string_new("the broker's certificate is ");

		g_string_truncate(t, 0);
		tls_flags_text(flags, u->host, t);
		*why = g_strdup_printf("the broker's certificate: %s", t->str);
	} else {
		*why = g_strdup_printf("TLS handshake: %s", error->message);
	}
	return false;
}

static void check_broker(struct doctor *d)
{
	struct ctl *c = d->c;
	g_autofree char *uri_s = kf_string(d, "mqtt", "uri");
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocketClient) client = NULL;
	g_autoptr(GSocketConnection) conn = NULL;
	struct uri u;
	gint64 t0;

	if (!uri_s && d->status && ctl_str(ctl_obj(d->status, "broker"), "uri"))
		uri_s = g_strdup(ctl_str(ctl_obj(d->status, "broker"), "uri"));
	if (!uri_s) {
		add(d, "broker", V_SKIP, NULL, "no [mqtt] uri: neither the config nor the daemon");
		return;
	}
	if (!parse_uri(uri_s, &u, &error)) {
		add(d, "broker", V_FAIL, "fix [mqtt] uri: mqtts://HOST[:8883] (or tcp:// on loopback)",
		    "bad [mqtt] uri: %s", error->message);
		uri_clear(&u);
		return;
	}
	if (!u.tls && !loopback_host(u.host)) {
		add(d, "broker", V_FAIL,
		    "use mqtts:// with [mqtt] ca_file: health data must not cross the network "
		    "in clear",
		    "plaintext MQTT (%s) to %s, off loopback", u.scheme, u.host);
		uri_clear(&u);
		return;
	}
	client = g_socket_client_new();
	g_socket_client_set_timeout(client, (guint)MAX(1, (c->timeout_ms + 999) / 1000));
	t0 = g_get_monotonic_time();
	conn = g_socket_client_connect_to_host(client, u.authority, u.tls ? 8883 : 1883, NULL,
					       &error);
	if (!conn) {
		add(d, "broker", V_FAIL,
		    "is the broker up? Check the network (ip route; ping the host), DNS and the "
		    "firewall; the outbox keeps every message meanwhile",
		    "cannot connect to %s:%u: %s", u.host, u.port, error->message);
	} else {
		double ms = (double)(g_get_monotonic_time() - t0) / 1000.0;
		g_autofree char *why = NULL;

		d->broker_reachable = true;
		if (u.tls && !tls_probe(d, G_IO_STREAM(conn), &u, &why)) {
			d->broker_tls_refused = true;
			add(d, "broker", V_FAIL,
			    "the URI's host must be the name in the broker's certificate, and "
			    "[mqtt] ca_file the CA that signed it; renew an expired one; check "
			    "this clock (timedatectl)",
			    "%s:%u reachable in %.0f ms, but TLS refused: %s", u.host, u.port, ms, why);
		} else {
			add(d, "broker", V_OK, NULL, "%s:%u reachable in %.0f ms (%s)", u.host, u.port,
			    ms, u.tls ? "TLS, certificate verified" : "plaintext on loopback");
		}
		g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
	}
	uri_clear(&u);
}

static void check_session(struct doctor *d)
{
	JsonObject *b = d->status ? ctl_obj(d->status, "broker") : NULL;
	double since, v;
	const char *err;

	if (!d->status) {
		add(d, "mqtt-session", V_SKIP, NULL, "rehablinkd not reachable");
		return;
	}
	err = ctl_str(b, "last_error");
	if (!ctl_bool(b, "connected", false)) {
		add(d, "mqtt-session", V_FAIL,
		    d->broker_tls_refused
		    ? "see the broker check: its certificate is refused"
		    : d->broker_reachable
		    ? "the broker is reachable but refuses rehablinkd: check [mqtt] username, "
		      "password, client certificate, the broker's ACL and its log"
		    : "see the broker check: rehablinkd reconnects by itself once it is reachable",
		    "rehablinkd NOT connected to the broker (%.0f connects, %.0f failed)%s%s",
		    ctl_num_or(b, "connects", 0), ctl_num_or(b, "connect_failures", 0),
		    err ? "; last error: " : "", err ? err : "");
		return;
	}
	{
		g_autofree char *age = ctl_num(b, "since", &since) ? ctl_age(d->c->now - since)
								   : g_strdup("?");
		g_autofree char *ver = ctl_num(b, "mqtt_version", &v)
			? g_strdup_printf(", MQTT %s", v == 5 ? "5" : v == 4 ? "3.1.1" : "?")
			: g_strdup("");

		add(d, "mqtt-session", V_OK, NULL, "connected for %s%s, %.0f connects, %.0f failed%s%s",
		    age, ver, ctl_num_or(b, "connects", 0), ctl_num_or(b, "connect_failures", 0),
		    err ? "; last error: " : "", err ? err : "");
	}
}

/* One certificate file: the earliest expiry of what it holds. */
static enum verdict cert_expiry(struct doctor *d, const char *key, const char *path,
				GString *detail, GString *hint)
{
	g_autoptr(GError) error = NULL;
	GList *list = g_tls_certificate_list_new_from_file(path, &error);
	GDateTime *worst = NULL, *earliest_start = NULL;
	enum verdict v = V_OK;
	double left;

	if (detail->len)
		g_string_append(detail, "; ");
	if (!list) {
		if (!error)
			g_set_error(&error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "no certificate");
		g_string_append_printf(detail, "%s %s: %s", key, path, error->message);
		g_string_append_printf(hint, "%sput a PEM certificate at [mqtt] %s", hint->len ? "; " : "",
				       key);
		return V_FAIL;
	}
	for (GList *l = list; l; l = l->next) {
		GDateTime *na = g_tls_certificate_get_not_valid_after(l->data);
		GDateTime *nb = g_tls_certificate_get_not_valid_before(l->data);

		if (na && (!worst || g_date_time_compare(na, worst) < 0)) {
			if (worst)
				g_date_time_unref(worst);
			worst = g_date_time_ref(na);
		}
		if (nb && (!earliest_start || g_date_time_compare(nb, earliest_start) > 0)) {
			if (earliest_start)
				g_date_time_unref(earliest_start);
			earliest_start = g_date_time_ref(nb);
		}
		if (na)
			g_date_time_unref(na);
		if (nb)
			g_date_time_unref(nb);
	}
	g_list_free_full(list, g_object_unref);
	if (!worst) {
		g_string_append_printf(detail, "%s %s: no expiry date readable", key, path);
		if (earliest_start)
			g_date_time_unref(earliest_start);
		return V_WARN;
	}
	left = (double)g_date_time_to_unix(worst) - d->c->now;
	{
		g_autofree char *date = g_date_time_format(worst, "%Y-%m-%d");
		g_autofree char *base = g_path_get_basename(path);
		g_autofree char *age = ctl_age(ABS(left));

		if (left < 0) {
			v = V_FAIL;
			g_string_append_printf(detail, "%s %s EXPIRED on %s (%s ago)", key, base,
					       date, age);
		} else if (left < 30 * 86400.0) {
			v = V_WARN;
			g_string_append_printf(detail, "%s %s expires %s (in %s)", key, base, date, age);
		} else {
			g_string_append_printf(detail, "%s %s valid until %s", key, base, date);
		}
		if (v != V_OK)
			g_string_append_printf(hint, "%srenew %s (the clinic's PKI), then systemctl "
					       "restart rehablink", hint->len ? "; " : "", path);
	}
	if (earliest_start && (double)g_date_time_to_unix(earliest_start) > d->c->now) {
		g_string_append(detail, ", NOT YET VALID");
		g_string_append_printf(hint, "%sis the clock right? (timedatectl)", hint->len ? "; " : "");
		v = V_FAIL;
	}
	g_date_time_unref(worst);
	if (earliest_start)
		g_date_time_unref(earliest_start);
	return v;
}

static void check_tls(struct doctor *d)
{
	g_autofree char *ca = kf_string(d, "mqtt", "ca_file");
	g_autofree char *cert = kf_string(d, "mqtt", "cert_file");
	g_autofree char *uri = kf_string(d, "mqtt", "uri");
	g_autoptr(GString) detail = g_string_new(NULL);
	g_autoptr(GString) hint = g_string_new(NULL);
	bool tls = uri && (g_str_has_prefix(uri, "ssl://") || g_str_has_prefix(uri, "mqtts://"));
	enum verdict v = V_OK;

	if (!d->kf) {
		add(d, "tls", V_SKIP, NULL, "config file not readable: no certificate paths");
		return;
	}
	if (!ca && !cert) {
		if (tls)
			add(d, "tls", V_FAIL, "set [mqtt] ca_file to the CA that signed the broker's "
			    "certificate", "TLS broker but no [mqtt] ca_file");
		else
			add(d, "tls", V_SKIP, NULL, "plaintext broker, no certificates configured");
		return;
	}
	if (!g_tls_backend_supports_tls(g_tls_backend_get_default())) {
		add(d, "tls", V_SKIP, "apt-get install glib-networking",
		    "no GIO TLS backend: certificates not checked");
		return;
	}
	if (ca) {
		enum verdict cv = cert_expiry(d, "ca_file", ca, detail, hint);

		v = MAX(v, cv);
	}
	if (cert) {
		enum verdict cv = cert_expiry(d, "cert_file", cert, detail, hint);

		v = MAX(v, cv);
	}
	add(d, "tls", v, hint->str, "%s", detail->str);
}

/* ---- the disk, the store ---- */

static char *state_dir(struct doctor *d)
{
	char *dir = kf_string(d, "gateway", "state_dir");
	const char *db;

	if (dir)
		return dir;
	db = d->status ? ctl_str(ctl_obj(d->status, "store"), "path") : NULL;
	if (db)
		return g_path_get_dirname(db);
	return g_strdup(CTL_DEFAULT_STATE_DIR);
}

static void check_disk(struct doctor *d)
{
	g_autofree char *dir = state_dir(d);
	struct statvfs vfs;
	double avail, total, budget = 0, size = 0;
	JsonObject *st = d->status ? ctl_obj(d->status, "store") : NULL;
	g_autofree char *a = NULL;
	g_autofree char *t = NULL;
	const char *hint = "free space: journalctl --vacuum-size=50M; apt-get clean; "
			   "du -xsh /var/* | sort -h";

	if (statvfs(dir, &vfs) < 0) {
		add(d, "disk", V_FAIL, "create it (owned by the user rehablink) or fix "
		    "[gateway] state_dir", "state dir %s: %s", dir, g_strerror(errno));
		return;
	}
	avail = (double)vfs.f_bavail * (double)vfs.f_frsize;
	total = (double)vfs.f_blocks * (double)vfs.f_frsize;
	a = ctl_bytes(avail);
	t = ctl_bytes(total);
	ctl_num(st, "budget_bytes", &budget);
	ctl_num(st, "size_bytes", &size);
	if (avail < 64.0 * 1024 * 1024) {
		add(d, "disk", V_FAIL, hint, "%s: only %s free of %s", dir, a, t);
		return;
	}
	if (avail < 256.0 * 1024 * 1024 || avail < 0.05 * total) {
		add(d, "disk", V_WARN, hint, "%s: %s free of %s (%.0f %%)", dir, a, t,
		    100 * avail / total);
		return;
	}
	if (budget > 0 && budget - size > avail) {
		g_autofree char *b = ctl_bytes(budget);

		add(d, "disk", V_WARN,
		    "lower [store] budget_mb below the free space, or free space: the store would "
		    "hit a full disk before its budget",
		    "%s: %s free, less than the store's budget (%s) still needs", dir, a, b);
		return;
	}
	add(d, "disk", V_OK, NULL, "%s: %s free of %s (%.0f %%)", dir, a, t, 100 * avail / total);
}

static void check_store(struct doctor *d)
{
	JsonObject *st = d->status ? ctl_obj(d->status, "store") : NULL;
	const char *state = ctl_str(st, "state");
	g_autofree char *size = NULL;
	g_autofree char *budget = NULL;
	double b = 0;
	const char *hint_full =
		"find why data does not leave (rehablinkctl queue; the broker checks), or raise "
		"[store] budget_mb if the disk allows, then rehablinkctl reload";

	if (!d->status) {
		add(d, "store", V_SKIP, NULL, "rehablinkd not reachable");
		return;
	}
	size = ctl_bytes(ctl_num_or(st, "size_bytes", 0));
	budget = ctl_num(st, "budget_bytes", &b) && b > 0 ? ctl_bytes(b) : g_strdup("no budget");
	if (!state || strcmp(state, "ok") == 0)
		add(d, "store", V_OK, NULL, "%s of %s (%.1f %%)", size, budget,
		    100 * ctl_num_or(st, "fill", 0));
	else if (strcmp(state, "near_budget") == 0)
		add(d, "store", V_WARN, hint_full, "%s of %s (%.1f %%): near its budget", size,
		    budget, 100 * ctl_num_or(st, "fill", 0));
	else if (strcmp(state, "over_budget") == 0)
		add(d, "store", V_FAIL, hint_full,
		    "%s of %s (%.0f %%): OVER its budget, shedding aggregated records and old "
		    "telemetry", size, budget, 100 * ctl_num_or(st, "fill", 0));
	else if (strcmp(state, "corrupt_moved_aside") == 0)
		add(d, "store", V_WARN,
		    "keep the old file for analysis; if it happens again the SD card is failing "
		    "(dmesg | grep -i mmc): replace it",
		    "the store was corrupt and moved aside to %s; a fresh one is in use",
		    ctl_str(st, "corrupt_aside") ? ctl_str(st, "corrupt_aside") : "?");
	else
		add(d, "store", V_WARN, NULL, "state %s, %s of %s", state, size, budget);
}

static void check_store_integrity(struct doctor *d)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) n = NULL;
	JsonObject *o;

	if (!d->status) {
		add(d, "store-check", V_SKIP, NULL, "rehablinkd not reachable");
		return;
	}
	n = ctl_call_full(d->c, "CheckStore", NULL, NULL, 0, &error);
	if (!n) {
		g_dbus_error_strip_remote_error(error);
		add(d, "store-check", V_WARN,
		    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)
		    ? "a large store on a slow card: run again with --timeout 120"
		    : "journalctl -u rehablink -n 50",
		    "CheckStore failed: %s", error->message);
		return;
	}
	o = ctl_node_obj(n);
	if (!ctl_bool(o, "ok", false)) {
		add(d, "store-check", V_FAIL,
		    "systemctl stop rehablink; copy the store aside for analysis; systemctl start "
		    "rehablink (it moves a corrupt store aside and starts fresh); replace the SD "
		    "card if it happens again",
		    "quick_check: %s", ctl_str(o, "result") ? ctl_str(o, "result") : "failed");
		return;
	}
	add(d, "store-check", V_OK, NULL, "quick_check %s in %.2f s",
	    ctl_str(o, "result") ? ctl_str(o, "result") : "ok", ctl_num_or(o, "seconds", 0));
}

/* ---- the wearables, the outbox, alerts, the clinic, errors ---- */

static void check_wearables(struct doctor *d)
{
	JsonArray *ws = d->status ? ctl_arr(d->status, "wearables") : NULL;
	guint n = ws ? json_array_get_length(ws) : 0;

	if (!d->status) {
		add(d, "wearables", V_SKIP, NULL, "rehablinkd not reachable");
		return;
	}
	if (n == 0) {
		add(d, "wearables", V_FAIL, "add the patient's wearable: [ble] wearables in the "
		    "config, or rehablinkctl pair ADDRESS", "no wearables configured");
		return;
	}
	for (guint i = 0; i < n; i++) {
		JsonObject *w = ctl_node_obj(json_array_get_element(ws, i));
		const char *alias = ctl_str(w, "alias") ? ctl_str(w, "alias") : "?";
		const char *state = ctl_str(w, "state") ? ctl_str(w, "state") : "?";
		const char *err = ctl_str(w, "last_error");
		g_autofree char *name = g_strdup_printf("wearable %s", alias);
		g_autofree char *last = NULL;
		g_autofree char *batt = NULL;
		g_autofree char *repair = NULL;
		double v, bp = -1;

		if (ctl_num(w, "last_record_age_s", &v))
			last = ctl_age(v);
		else if (ctl_num(w, "last_record_at", &v))
			last = ctl_age(d->c->now - v);
		ctl_num(w, "battery_pct", &bp);
		batt = bp >= 0 ? g_strdup_printf("battery %.0f %%", bp) : g_strdup("battery ?");
		if (strcmp(state, "needs-repair") == 0) {
			repair = g_strdup_printf("the bond is lost (wearable reset?): put it in "
						 "pairing mode, rehablinkctl forget %s; rehablinkctl "
						 "pair %s", ctl_str(w, "address"),
						 ctl_str(w, "address"));
			add(d, name, V_FAIL, repair, "needs re-pairing (%s), last record %s%s", batt,
			    last ? last : "never", last ? " ago" : "");
		} else if (!ctl_bool(w, "fresh", true)) {
			add(d, name, V_FAIL,
			    "is the wearable charged, worn and within range (same room, < 10 m)? "
			    "It keeps recording and syncs when back; rehablinkctl devices",
			    "SILENT: last record %s%s, link %s, %s%s%s", last ? last : "never",
			    last ? " ago" : "", state, batt, err ? ", last error " : "",
			    err ? err : "");
		} else if (!ctl_bool(w, "connected", true)) {
			add(d, name, V_WARN,
			    "it reconnects by itself; if it stays down check range and battery",
			    "link down (%s), last record %s%s, %s%s%s", state, last ? last : "never",
			    last ? " ago" : "", batt, err ? ", last error " : "", err ? err : "");
		} else if (ctl_num_or(w, "malformed", 0) > 0) {
			add(d, name, V_WARN,
			    "the wearable sent notifications that do not decode (firmware, or "
			    "interference): they were dropped and the records around them kept; "
			    "if it keeps rising, update or replace the wearable",
			    "%s, %.0f malformed notification(s) since start, last record %s%s",
			    state, ctl_num_or(w, "malformed", 0), last ? last : "never",
			    last ? " ago" : "");
		} else if (bp >= 0 && bp < 15) {
			add(d, name, V_WARN, "charge the wearable (the patient or a carer)",
			    "%s, battery LOW %.0f %%, last record %s%s", state, bp,
			    last ? last : "never", last ? " ago" : "");
		} else {
			add(d, name, V_OK, NULL, "%s, %s, last record %s%s, %.0f records", state, batt,
			    last ? last : "never", last ? " ago" : "", ctl_num_or(w, "records", 0));
		}
	}
}

static void check_outbox(struct doctor *d)
{
	JsonObject *o = d->status ? ctl_obj(d->status, "outbox") : NULL;
	double age = -1;
	g_autofree char *a = NULL;

	if (!d->status) {
		add(d, "outbox", V_SKIP, NULL, "rehablinkd not reachable");
		return;
	}
	ctl_num(o, "oldest_age_s", &age);
	a = age >= 0 ? ctl_age(age) : g_strdup("-");
	if (age > 600)
		add(d, "outbox", V_WARN,
		    "the clinic is not getting the data: see the broker checks; rehablinkctl queue",
		    "%.0f messages waiting, the oldest for %s", ctl_num_or(o, "depth", 0), a);
	else
		add(d, "outbox", V_OK, NULL, "%.0f messages, oldest %s, %.0f in flight",
		    ctl_num_or(o, "depth", 0), a, ctl_num_or(o, "in_flight", 0));
}

static void check_alerts(struct doctor *d)
{
	JsonObject *o = d->status ? ctl_obj(d->status, "alerts") : NULL;
	double open, unacked;

	if (!d->status) {
		add(d, "alerts", V_SKIP, NULL, "rehablinkd not reachable");
		return;
	}
	open = ctl_num_or(o, "open", 0);
	unacked = ctl_num_or(o, "unacknowledged", 0);
	if (unacked > 0)
		add(d, "alerts", V_WARN,
		    "rehablinkctl alerts; an urgent or emergency one: call the clinic",
		    "%.0f open alert%s not acknowledged by the clinic", unacked,
		    unacked == 1 ? "" : "s");
	else
		add(d, "alerts", V_OK, NULL, "%.0f open, all acknowledged", open);
}

static void check_counters(struct doctor *d)
{
	JsonObject *o = d->status ? ctl_obj(d->status, "counters") : NULL;
	double commits_failed, rejected, shed, pub_failed;

	if (!d->status) {
		add(d, "clinic", V_SKIP, NULL, "rehablinkd not reachable");
		return;
	}
	commits_failed = ctl_num_or(o, "commit_failures", 0);
	rejected = ctl_num_or(o, "clinic_rejected", 0);
	shed = ctl_num_or(o, "shed_records", 0);
	pub_failed = ctl_num_or(o, "publish_failures", 0);
	if (commits_failed > 0)
		add(d, "clinic", V_FAIL,
		    "the store cannot write: disk full or the SD card failing (dmesg | grep -i mmc)",
		    "%.0f store commits FAILED; %.0f clinic messages rejected", commits_failed,
		    rejected);
	else if (rejected > 0)
		add(d, "clinic", V_WARN,
		    "the clinic sends messages rehablinkd refuses (each answered on cmd/error): "
		    "see the errors check; check the dashboard's version and gateway id",
		    "%.0f clinic message%s rejected, %.0f accepted; %.0f publishes failed, "
		    "%.0f records shed", rejected, rejected == 1 ? "" : "s",
		    ctl_num_or(o, "clinic_accepted", 0), pub_failed, shed);
	else
		add(d, "clinic", V_OK, NULL, "%.0f clinic messages accepted, none rejected; "
		    "%.0f publishes failed, %.0f records shed", ctl_num_or(o, "clinic_accepted", 0),
		    pub_failed, shed);
}

static void check_errors(struct doctor *d)
{
	JsonArray *e = d->status ? ctl_arr(d->status, "errors") : NULL;
	guint n = e ? json_array_get_length(e) : 0, recent = 0;
	JsonObject *last;
	double at = 0;
	g_autofree char *age = NULL;

	if (!d->status) {
		add(d, "errors", V_SKIP, "journalctl -u rehablink -n 50", "rehablinkd not reachable");
		return;
	}
	if (n == 0) {
		add(d, "errors", V_OK, NULL, "no warnings or errors logged");
		return;
	}
	for (guint i = 0; i < n; i++) {
		double t;

		if (ctl_num(ctl_node_obj(json_array_get_element(e, i)), "at", &t) &&
		    d->c->now - t < 3600)
			recent++;
	}
	last = ctl_node_obj(json_array_get_element(e, n - 1));
	ctl_num(last, "at", &at);
	age = ctl_age(d->c->now - at);
	add(d, "errors", recent ? V_WARN : V_OK,
	    "journalctl -u rehablink --since -1h for the context",
	    "%u in the last hour; newest %s ago: %s: %s", recent, age,
	    ctl_str(last, "where") ? ctl_str(last, "where") : "?",
	    ctl_str(last, "message") ? ctl_str(last, "message") : "?");
}

/* ---- output ---- */

static void wrap(GString *out, const char *text, int indent, int width)
{
	g_auto(GStrv) words = g_strsplit(text, " ", -1);
	int col = indent;

	for (int i = 0; words[i]; i++) {
		int w = (int)g_utf8_strlen(words[i], -1);

		if (col > indent && col + 1 + w > width) {
			g_string_append_printf(out, "\n%*s", indent, "");
			col = indent;
		}
		if (col > indent) {
			g_string_append_c(out, ' ');
			col++;
		}
		g_string_append(out, words[i]);
		col += w;
	}
	g_string_append_c(out, '\n');
}

static enum ctl_color verdict_color(enum verdict v)
{
	switch (v) {
	case V_OK: return CTL_GREEN;
	case V_SKIP: return CTL_DIM;
	case V_WARN: return CTL_YELLOW;
	case V_FAIL: return CTL_RED;
	}
	return CTL_RESET;
}

static void print_text(struct doctor *d, enum verdict worst, const unsigned *counts)
{
	struct ctl *c = d->c;
	g_autoptr(GString) out = g_string_new(NULL);
	int name_w = 12;
	int indent;

	for (guint i = 0; i < d->checks->len; i++) {
		struct check *k = d->checks->pdata[i];

		name_w = MAX(name_w, MIN(20, (int)g_utf8_strlen(k->name, -1)));
	}
	indent = 6 + name_w + 1;
	for (guint i = 0; i < d->checks->len; i++) {
		struct check *k = d->checks->pdata[i];
		g_string_append(out, ctl_col(c, verdict_color(k->v)));
		ctl_pad(out, verdict_name(k->v), 5);
		g_string_append_printf(out, "%s ", ctl_col(c, CTL_RESET));
		ctl_pad(out, k->name, name_w);
		g_string_append_c(out, ' ');
		wrap(out, k->detail, indent, MAX(indent + 20, c->cols - 1));
		if (k->hint && k->v != V_OK) {
			g_autofree char *h = g_strdup_printf("%s %s", c->utf8 ? "\u2192" : "->",
							     k->hint);

			g_string_append_printf(out, "%*s%s", indent, "", ctl_col(c, CTL_DIM));
			wrap(out, h, indent, MAX(indent + 20, c->cols - 1));
			if (c->color) {	/* the reset before the newline */
				g_string_truncate(out, out->len - 1);
				g_string_append_printf(out, "%s\n", ctl_col(c, CTL_RESET));
			}
		}
	}
	g_string_append_printf(out, "\n%sverdict: %s%s (%u fail, %u warn, %u ok, %u skipped)\n",
			       ctl_col(c, verdict_color(worst)), verdict_name(worst),
			       ctl_col(c, CTL_RESET), counts[V_FAIL], counts[V_WARN], counts[V_OK],
			       counts[V_SKIP]);
	fputs(out->str, stdout);
}

static void print_json(struct doctor *d, enum verdict worst)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonNode) root = NULL;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "verdict");
	json_builder_add_string_value(b, verdict_name(worst));
	json_builder_set_member_name(b, "checks");
	json_builder_begin_array(b);
	for (guint i = 0; i < d->checks->len; i++) {
		struct check *k = d->checks->pdata[i];

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "name");
		json_builder_add_string_value(b, k->name);
		json_builder_set_member_name(b, "verdict");
		json_builder_add_string_value(b, verdict_name(k->v));
		json_builder_set_member_name(b, "detail");
		json_builder_add_string_value(b, k->detail);
		json_builder_set_member_name(b, "hint");
		if (k->hint)
			json_builder_add_string_value(b, k->hint);
		else
			json_builder_add_null_value(b);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	ctl_print_json(root);
}

int ctl_cmd_doctor(struct ctl *c, int argc, char **argv)
{
	struct doctor d = { .c = c };
	enum verdict worst = V_OK;
	unsigned counts[4] = { 0 };

	if (!ctl_parse_command(c, "doctor", "Checks the gateway, each with a verdict (ok, warn, "
			       "fail, skip) and a hint; works with rehablinkd down (reads --config).",
			       NULL, &argc, &argv))
		return CTL_EXIT_USAGE;
	if (argc > 1)
		return ctl_usage_error("doctor: unexpected argument '%s'", argv[1]);
	d.checks = g_ptr_array_new_with_free_func(check_free);

	check_daemon(&d);
	check_config(&d);
	check_bluetoothd(&d);
	check_bluez_conf(&d);
	check_adapter(&d);
	check_hci(&d);
	check_clock(&d);
	check_broker(&d);
	check_session(&d);
	check_tls(&d);
	check_disk(&d);
	check_store(&d);
	check_store_integrity(&d);
	check_wearables(&d);
	check_outbox(&d);
	check_alerts(&d);
	check_counters(&d);
	check_errors(&d);

	for (guint i = 0; i < d.checks->len; i++) {
		struct check *k = d.checks->pdata[i];

		counts[k->v]++;
		if (k->v != V_SKIP && k->v > worst)
			worst = k->v;
	}
	if (c->json)
		print_json(&d, worst);
	else
		print_text(&d, worst, counts);

	g_ptr_array_unref(d.checks);
	if (d.kf)
		g_key_file_unref(d.kf);
	if (d.status_node)
		json_node_unref(d.status_node);
	g_free(d.adapter);
	return worst == V_FAIL ? CTL_EXIT_PROBLEM : CTL_EXIT_OK;
}
