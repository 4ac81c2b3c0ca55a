/* SPDX-License-Identifier: MIT */
/*
 * A real mosquitto and its command-line clients for the tests; see
 * broker.h. Every wait polls with a deadline and pumps the thread-default
 * main context, so a GwUplink in the same thread keeps running.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "broker.h"

#define MOSQUITTO	"/usr/sbin/mosquitto"
#define MOSQUITTO_SUB	"/usr/bin/mosquitto_sub"
#define MOSQUITTO_PUB	"/usr/bin/mosquitto_pub"
#define START_TIMEOUT_MS	10000
#define STOP_TIMEOUT_MS		5000
#define SUB_TIMEOUT_MS		10000
#define PORT_ATTEMPTS		5

struct broker {
	char *dir;
	char *conf_path;
	char *log_path;
	char *uri;
	bool tls;
	bool require_certificate;
	char *server_cert;
	GString *extra;
	uint16_t port;
	GPid pid;
	bool frozen;
	bool ran;		/* the port is fixed once a broker listened on it */
};

struct broker_sub {
	Broker *broker;
	GPid pid;
	char *id;
	char *out_path;
	char *err_path;
	int fd;
	unsigned int count;
};

static unsigned int client_serial;

/* ---- children ------------------------------------------------------------ */

struct child_io {
	const char *out;	/* stdout to this file (append) */
	const char *err;	/* stderr, NULL: the same file */
};

static void redirect(const char *path, int target)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (fd >= 0) {
		dup2(fd, target);
		close(fd);
	}
}

static void child_setup(gpointer data)
{
	const struct child_io *io = data;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	redirect(io->out, STDOUT_FILENO);
	redirect(io->err ? io->err : io->out, STDERR_FILENO);
}

/* Waits up to ms for the child to exit, then SIGKILL; *pid = 0. */
static int child_reap(GPid *pid, unsigned int ms)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)ms * 1000;
	int status = 0;

	if (*pid <= 0)
		return 0;
	while (waitpid(*pid, &status, WNOHANG) == 0) {
		if (g_get_monotonic_time() > deadline) {
			kill(*pid, SIGCONT);
			kill(*pid, SIGKILL);
			waitpid(*pid, &status, 0);
			break;
		}
		g_usleep(2000);
	}
	g_spawn_close_pid(*pid);
	*pid = 0;
	return status;
}

static bool child_exited(GPid *pid, int *status)
{
	if (*pid <= 0)
		return true;
	if (waitpid(*pid, status, WNOHANG) == *pid) {
		g_spawn_close_pid(*pid);
		*pid = 0;
		return true;
	}
	return false;
}

static void pump(void)
{
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_usleep(2000);
}

static char *file_tail(const char *path, size_t max)
{
	g_autofree char *text = NULL;
	size_t len = 0;

	if (!g_file_get_contents(path, &text, &len, NULL) || len == 0)
		return g_strdup("(empty)");
	if (len > max)
		return g_strdup(text + len - max);
	return g_steal_pointer(&text);
}

/* Runs argv (no shell) in dir and waits; stderr in the error. */
static gboolean run_sync(const char *dir, const char *const *argv, GError **error)
{
	g_autofree char *err = NULL;
	g_autoptr(GError) local = NULL;
	int status = 0;

	if (!g_spawn_sync(dir, (char **)argv, NULL,
			  G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
			  NULL, &err, &status, error)) {
		g_prefix_error(error, "%s: ", argv[0]);
		return FALSE;
	}
	if (!g_spawn_check_wait_status(status, &local)) {
		g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED, "%s %s: %s: %s",
			    argv[0], argv[1] ? argv[1] : "", local->message, err ? err : "");
		return FALSE;
	}
	return TRUE;
}

/* ---- certificates -------------------------------------------------------- */

gboolean broker_make_ca(const char *dir, const char *name, GError **error)
{
	g_autofree char *key = g_strdup_printf("%s.key", name);
	g_autofree char *crt = g_strdup_printf("%s.crt", name);
	g_autofree char *subj = g_strdup_printf("/CN=%s", name);
	g_autofree char *key_path = g_build_filename(dir, key, NULL);
	const char *argv[] = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
			       "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
			       "-out", crt, "-days", "30", "-subj", subj, "-addext",
			       "basicConstraints=critical,CA:TRUE", "-addext",
			       "keyUsage=critical,keyCertSign,cRLSign", NULL };

	if (!run_sync(dir, argv, error))
		return FALSE;
	g_chmod(key_path, 0644);
	return TRUE;
}

gboolean broker_make_cert(const char *dir, const char *ca, const char *name,
			  const char *cn, const char *san, GError **error)
{
	g_autofree char *key = g_strdup_printf("%s.key", name);
	g_autofree char *csr = g_strdup_printf("%s.csr", name);
	g_autofree char *crt = g_strdup_printf("%s.crt", name);
	g_autofree char *ext = g_strdup_printf("%s.ext", name);
	g_autofree char *ca_crt = g_strdup_printf("%s.crt", ca);
	g_autofree char *ca_key = g_strdup_printf("%s.key", ca);
	g_autofree char *subj = g_strdup_printf("/CN=%s", cn);
	g_autofree char *serial = g_strdup_printf("0x%08x%08x", g_random_int(), g_random_int());
	g_autofree char *ext_path = g_build_filename(dir, ext, NULL);
	g_autofree char *key_path = g_build_filename(dir, key, NULL);
	g_autofree char *ext_text = san
		? g_strdup_printf("subjectAltName=%s\nextendedKeyUsage=serverAuth\n", san)
		: g_strdup("extendedKeyUsage=clientAuth\n");
	const char *req[] = { "openssl", "req", "-newkey", "ec", "-pkeyopt",
			      "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
			      "-out", csr, "-subj", subj, NULL };
	const char *sign[] = { "openssl", "x509", "-req", "-in", csr, "-CA", ca_crt,
			       "-CAkey", ca_key, "-set_serial", serial, "-out", crt,
			       "-days", "30", "-extfile", ext, NULL };

	if (!g_file_set_contents(ext_path, ext_text, -1, error))
		return FALSE;
	if (!run_sync(dir, req, error) || !run_sync(dir, sign, error))
		return FALSE;
	g_chmod(key_path, 0644);
	return TRUE;
}

/* ---- the broker ---------------------------------------------------------- */

static uint16_t free_port(GError **error)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint16_t port = 0;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "picking a free port: %s", g_strerror(errno));
	else
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static bool port_accepts(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return false;
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static void set_uri(Broker *b)
{
	g_free(b->uri);
	b->uri = g_strdup_printf("%s://127.0.0.1:%u", b->tls ? "ssl" : "tcp", b->port);
}

Broker *broker_new(bool tls, GError **error)
{
	g_autoptr(Broker) b = g_new0(Broker, 1);

	b->tls = tls;
	b->require_certificate = tls;
	b->server_cert = g_strdup("server");
	b->extra = g_string_new(NULL);
	b->dir = g_dir_make_tmp("rehablink-broker-XXXXXX", error);
	if (!b->dir)
		return NULL;
	/* mosquitto started as root reads its files as user mosquitto */
	g_chmod(b->dir, 0755);
	b->conf_path = g_build_filename(b->dir, "mosquitto.conf", NULL);
	b->log_path = g_build_filename(b->dir, "mosquitto.log", NULL);
	b->port = free_port(error);
	if (!b->port)
		return NULL;
	set_uri(b);
	if (tls && (!broker_make_ca(b->dir, "ca", error) ||
		    !broker_make_cert(b->dir, "ca", "server", "localhost",
				      "DNS:localhost,IP:127.0.0.1", error) ||
		    !broker_make_cert(b->dir, "ca", "client", "gateway-01", NULL, error)))
		return NULL;
	return g_steal_pointer(&b);
}

Broker *broker_start(bool tls, GError **error)
{
	g_autoptr(Broker) b = broker_new(tls, error);

	if (!b || !broker_run(b, error))
		return NULL;
	return g_steal_pointer(&b);
}

void broker_set_server_cert(Broker *b, const char *name)
{
	g_free(b->server_cert);
	b->server_cert = g_strdup(name);
}

void broker_set_require_certificate(Broker *b, bool require)
{
	b->require_certificate = require;
}

void broker_add_config(Broker *b, const char *lines)
{
	g_string_append(b->extra, lines);
	g_string_append_c(b->extra, '\n');
}

static gboolean write_config(Broker *b, GError **error)
{
	g_autoptr(GString) c = g_string_new(NULL);

	g_string_append(c,
		"per_listener_settings true\n"
		"persistence false\n"
		"max_queued_messages 100000\n"
		"max_inflight_messages 0\n"
		"log_dest stderr\n"
		"log_type error\n"
		"log_type warning\n"
		"log_type notice\n"
		"log_type information\n"
		"log_type subscribe\n"
		"connection_messages true\n");
	g_string_append_printf(c, "listener %u 127.0.0.1\n", b->port);
	g_string_append(c, "allow_anonymous true\n");
	if (b->tls) {
		g_string_append_printf(c, "cafile %s/ca.crt\n", b->dir);
		g_string_append_printf(c, "certfile %s/%s.crt\n", b->dir, b->server_cert);
		g_string_append_printf(c, "keyfile %s/%s.key\n", b->dir, b->server_cert);
		g_string_append_printf(c, "require_certificate %s\n",
				       b->require_certificate ? "true" : "false");
		if (b->require_certificate)
			g_string_append(c, "use_identity_as_username true\n");
	}
	g_string_append(c, b->extra->str);
	return g_file_set_contents(b->conf_path, c->str, -1, error);
}

static gboolean spawn_broker(Broker *b, GError **error)
{
	const char *argv[] = { MOSQUITTO, "-c", b->conf_path, NULL };
	struct child_io io = { .out = b->log_path };

	if (!g_spawn_async(b->dir, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
			   child_setup, &io, &b->pid, error)) {
		g_prefix_error(error, "%s: ", MOSQUITTO);
		return FALSE;
	}
	b->frozen = false;
	return TRUE;
}

/* 1: listening, 0: exited (maybe the port was taken), -1: timed out */
static int wait_listening(Broker *b, int *status)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)START_TIMEOUT_MS * 1000;

	for (;;) {
		if (child_exited(&b->pid, status))
			return 0;
		if (port_accepts(b->port))
			return child_exited(&b->pid, status) ? 0 : 1;
		if (g_get_monotonic_time() > deadline)
			return -1;
		pump();
	}
}

gboolean broker_run(Broker *b, GError **error)
{
	for (int attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
		g_autofree char *tail = NULL;
		int status = 0;
		int r;

		if (b->pid > 0) {
			g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
				    "mosquitto already runs (pid %d)", b->pid);
			return FALSE;
		}
		if (!write_config(b, error) || !spawn_broker(b, error))
			return FALSE;
		r = wait_listening(b, &status);
		if (r == 1) {
			b->ran = true;
			return TRUE;
		}
		if (r < 0) {
			child_reap(&b->pid, 0);
			g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
				    "mosquitto did not listen on 127.0.0.1:%u within %u ms (log %s)",
				    b->port, START_TIMEOUT_MS, b->log_path);
			return FALSE;
		}
		tail = file_tail(b->log_path, 600);
		if (!strstr(tail, "in use")) {
			g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
				    "mosquitto exited (status %d) on port %u; log %s ends:\n%s",
				    status, b->port, b->log_path, tail);
			return FALSE;
		}
		/* the port was taken since we picked it: the same port again for a
		 * restart (a TIME_WAIT straggler goes away), else a new one */
		g_usleep(100000);
		if (attempt > 1 && !b->ran) {
			uint16_t port = free_port(error);

			if (!port)
				return FALSE;
			b->port = port;
			set_uri(b);
		}
	}
	g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
		    "mosquitto found no free port (log %s)", b->log_path);
	return FALSE;
}

gboolean broker_stop(Broker *b, GError **error)
{
	int status;

	if (b->pid <= 0)
		return TRUE;
	if (b->frozen)
		kill(b->pid, SIGCONT);
	kill(b->pid, SIGTERM);
	status = child_reap(&b->pid, STOP_TIMEOUT_MS);
	b->frozen = false;
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
		g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
			    "mosquitto ignored SIGTERM for %u ms (log %s)", STOP_TIMEOUT_MS,
			    b->log_path);
		return FALSE;
	}
	return TRUE;
}

gboolean broker_restart(Broker *b, GError **error)
{
	return broker_stop(b, error) && broker_run(b, error);
}

void broker_kill(Broker *b)
{
	if (b->pid <= 0)
		return;
	kill(b->pid, SIGKILL);
	child_reap(&b->pid, STOP_TIMEOUT_MS);
	b->frozen = false;
}

void broker_freeze(Broker *b)
{
	if (b->pid > 0 && kill(b->pid, SIGSTOP) == 0)
		b->frozen = true;
}

void broker_thaw(Broker *b)
{
	if (b->pid > 0 && kill(b->pid, SIGCONT) == 0)
		b->frozen = false;
}

bool broker_running(Broker *b)
{
	int status;

	return !child_exited(&b->pid, &status);
}

static void rm_rf(const char *path)
{
	GDir *dir = g_dir_open(path, 0, NULL);
	const char *name;

	if (dir) {
		while ((name = g_dir_read_name(dir))) {
			g_autofree char *p = g_build_filename(path, name, NULL);

			if (g_file_test(p, G_FILE_TEST_IS_DIR) &&
			    !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
				rm_rf(p);
			else
				g_unlink(p);
		}
		g_dir_close(dir);
	}
	g_rmdir(path);
}

void broker_free(Broker *b)
{
	if (!b)
		return;
	broker_kill(b);
	if (b->dir && !g_getenv("REHABLINK_KEEP_BROKER"))
		rm_rf(b->dir);
	else if (b->dir)
		g_printerr("broker: kept %s\n", b->dir);
	g_free(b->dir);
	g_free(b->conf_path);
	g_free(b->log_path);
	g_free(b->uri);
	g_free(b->server_cert);
	if (b->extra)
		g_string_free(b->extra, TRUE);
	g_free(b);
}

uint16_t broker_port(const Broker *b)
{
	return b->port;
}

bool broker_tls(const Broker *b)
{
	return b->tls;
}

const char *broker_dir(const Broker *b)
{
	return b->dir;
}

const char *broker_uri(const Broker *b)
{
	return b->uri;
}

char *broker_file(const Broker *b, const char *name)
{
	return g_build_filename(b->dir, name, NULL);
}

const char *broker_log(const Broker *b)
{
	return b->log_path;
}

unsigned int broker_log_count(Broker *b, const char *needle)
{
	g_autofree char *text = NULL;
	unsigned int n = 0;

	if (!g_file_get_contents(b->log_path, &text, NULL, NULL))
		return 0;
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

gboolean broker_wait_log(Broker *b, const char *needle, unsigned int times,
			 unsigned int timeout_ms, GError **error)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	unsigned int n;

	while ((n = broker_log_count(b, needle)) < times) {
		if (g_get_monotonic_time() > deadline) {
			g_autofree char *tail = file_tail(b->log_path, 800);

			g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
				    "the broker's log had \"%s\" %u times, not %u, after %u ms; it ends:\n%s",
				    needle, n, times, timeout_ms, tail);
			return FALSE;
		}
		pump();
	}
	return TRUE;
}

/* ---- mosquitto_pub and mosquitto_sub ------------------------------------- */

static void add_client_args(Broker *b, GPtrArray *argv, const char *id)
{
	g_ptr_array_add(argv, g_strdup("-h"));
	g_ptr_array_add(argv, g_strdup("127.0.0.1"));
	g_ptr_array_add(argv, g_strdup("-p"));
	g_ptr_array_add(argv, g_strdup_printf("%u", b->port));
	g_ptr_array_add(argv, g_strdup("-i"));
	g_ptr_array_add(argv, g_strdup(id));
	g_ptr_array_add(argv, g_strdup("-q"));
	g_ptr_array_add(argv, g_strdup("1"));
	if (b->tls) {
		g_ptr_array_add(argv, g_strdup("--cafile"));
		g_ptr_array_add(argv, broker_file(b, "ca.crt"));
		g_ptr_array_add(argv, g_strdup("--cert"));
		g_ptr_array_add(argv, broker_file(b, "client.crt"));
		g_ptr_array_add(argv, g_strdup("--key"));
		g_ptr_array_add(argv, broker_file(b, "client.key"));
	}
}

gboolean broker_pub(Broker *b, const char *topic, const char *payload, bool retain,
		    GError **error)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *id = g_strdup_printf("pub-%d-%u", (int)getpid(), ++client_serial);

	g_ptr_array_add(argv, g_strdup(MOSQUITTO_PUB));
	add_client_args(b, argv, id);
	g_ptr_array_add(argv, g_strdup("-t"));
	g_ptr_array_add(argv, g_strdup(topic));
	g_ptr_array_add(argv, g_strdup("-m"));
	g_ptr_array_add(argv, g_strdup(payload));
	if (retain)
		g_ptr_array_add(argv, g_strdup("-r"));
	g_ptr_array_add(argv, NULL);
	return run_sync(b->dir, (const char *const *)argv->pdata, error);
}

BrokerSub *sub_start(Broker *b, const char *topic, const struct sub_opts *opts,
		     GError **error)
{
	g_autoptr(BrokerSub) s = g_new0(BrokerSub, 1);
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *needle = NULL;
	struct child_io io;
	gint64 deadline;

	s->fd = -1;
	s->broker = b;
	s->id = g_strdup_printf("sub-%d-%u", (int)getpid(), ++client_serial);
	s->out_path = g_strdup_printf("%s/%s.out", b->dir, s->id);
	s->err_path = g_strdup_printf("%s/%s.err", b->dir, s->id);
	if (!g_file_set_contents(s->out_path, "", 0, error))
		return NULL;
	s->fd = open(s->out_path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s",
			    s->out_path, g_strerror(errno));
		return NULL;
	}
	g_ptr_array_add(argv, g_strdup(MOSQUITTO_SUB));
	add_client_args(b, argv, s->id);
	g_ptr_array_add(argv, g_strdup("-t"));
	g_ptr_array_add(argv, g_strdup(topic));
	g_ptr_array_add(argv, g_strdup("-F"));
	g_ptr_array_add(argv, g_strdup(opts && opts->format ? opts->format : "%t %p"));
	if (opts && opts->mqtt_version == 5) {
		g_ptr_array_add(argv, g_strdup("-V"));
		g_ptr_array_add(argv, g_strdup("5"));
	}
	g_ptr_array_add(argv, NULL);
	io.out = s->out_path;
	io.err = s->err_path;
	if (!g_spawn_async(b->dir, (char **)argv->pdata, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
			   child_setup, &io, &s->pid, error)) {
		g_prefix_error(error, "%s: ", MOSQUITTO_SUB);
		return NULL;
	}
	/* subscribed once the broker logged "ID 1 FILTER" */
	needle = g_strdup_printf(": %s 1 %s\n", s->id, topic);
	deadline = g_get_monotonic_time() + (gint64)SUB_TIMEOUT_MS * 1000;
	while (broker_log_count(b, needle) == 0) {
		int status;

		if (child_exited(&s->pid, &status)) {
			g_autofree char *err = file_tail(s->err_path, 600);

			g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
				    "mosquitto_sub exited (status %d) before subscribing: %s",
				    status, err);
			return NULL;
		}
		if (g_get_monotonic_time() > deadline) {
			g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
				    "mosquitto_sub %s not subscribed to %s after %u ms (log %s)",
				    s->id, topic, SUB_TIMEOUT_MS, b->log_path);
			return NULL;
		}
		pump();
	}
	return g_steal_pointer(&s);
}

unsigned int sub_count(BrokerSub *s)
{
	char buf[4096];
	ssize_t n;

	while ((n = read(s->fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			s->count += buf[i] == '\n';
	return s->count;
}

gboolean sub_wait_lines(BrokerSub *s, unsigned int n, unsigned int timeout_ms,
			GError **error)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	while (sub_count(s) < n) {
		int status;

		if (child_exited(&s->pid, &status)) {
			g_autofree char *err = file_tail(s->err_path, 600);

			sub_count(s);
			if (s->count >= n)
				return TRUE;
			g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
				    "mosquitto_sub exited (status %d) after %u of %u lines: %s",
				    status, s->count, n, err);
			return FALSE;
		}
		if (g_get_monotonic_time() > deadline) {
			g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
				    "mosquitto_sub had %u of %u lines after %u ms (%s)",
				    s->count, n, timeout_ms, s->out_path);
			return FALSE;
		}
		pump();
	}
	return TRUE;
}

char **sub_lines(BrokerSub *s)
{
	g_autofree char *text = NULL;
	char **lines;
	guint n;

	if (!g_file_get_contents(s->out_path, &text, NULL, NULL))
		return g_new0(char *, 1);
	lines = g_strsplit(text, "\n", -1);
	/* the part after the last newline is not a line (yet) */
	n = g_strv_length(lines);
	if (n > 0) {
		g_free(lines[n - 1]);
		lines[n - 1] = NULL;
	}
	return lines;
}

const char *sub_output(const BrokerSub *s)
{
	return s->out_path;
}

void sub_free(BrokerSub *s)
{
	if (!s)
		return;
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		child_reap(&s->pid, STOP_TIMEOUT_MS);
	}
	if (s->fd >= 0)
		close(s->fd);
	g_free(s->id);
	g_free(s->out_path);
	g_free(s->err_path);
	g_free(s);
}
