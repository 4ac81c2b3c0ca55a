/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "private-bus.h"

void pb_child_setup(gpointer log_path)
{
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
}

int pb_child_reap(GPid *pid, unsigned int ms)
{
	gint64 deadline = g_get_monotonic_time() + (gint64) ms * 1000;
	int status = 0;

	if (*pid <= 0)
		return 0;
	while (waitpid(*pid, &status, WNOHANG) == 0) {
		if (g_get_monotonic_time() > deadline) {
			kill(*pid, SIGKILL);
			waitpid(*pid, &status, 0);
			break;
		}
		g_usleep(5000);
	}
	g_spawn_close_pid(*pid);
	*pid = 0;
	return status;
}

void pb_child_stop(GPid *pid, int sig)
{
	if (*pid <= 0)
		return;
	kill(*pid, sig);
	pb_child_reap(pid, 5000);
}

bool pb_child_exited(GPid *pid)
{
	int status;

	if (*pid <= 0)
		return true;
	if (waitpid(*pid, &status, WNOHANG) == *pid) {
		g_spawn_close_pid(*pid);
		*pid = 0;
		return true;
	}
	return false;
}

char *pb_bus_start(const char *dir, unsigned int timeout_ms, GPid *ret_pid,
		   GError **error)
{
	g_autofree char *addr_arg = g_strdup_printf("--address=unix:path=%s/bus", dir);
	g_autofree char *log = g_build_filename(dir, "dbus-daemon.log", NULL);
	const char *argv[] = { "dbus-daemon", "--session", "--nofork", "--nopidfile",
			       "--print-address=3", addr_arg, NULL };
	g_autoptr(GString) addr = g_string_new(NULL);
	int pipefd[2];
	int target = 3;

	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
			    "pipe: %s", g_strerror(errno));
		return NULL;
	}
	if (!g_spawn_async_with_pipes_and_fds(NULL, argv, NULL,
					      G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
					      pb_child_setup, log, -1, -1, -1, &pipefd[1], &target,
					      1, ret_pid, NULL, NULL, NULL, error)) {
		close(pipefd[0]);
		close(pipefd[1]);
		g_prefix_error(error, "dbus-daemon: ");
		return NULL;
	}
	close(pipefd[1]);
	for (;;) {
		struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
		char c = 0;

		if (poll(&pfd, 1, (int) timeout_ms) != 1 || read(pipefd[0], &c, 1) != 1) {
			close(pipefd[0]);
			pb_child_stop(ret_pid, SIGKILL);
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
				    "dbus-daemon printed no address (log: %s)", log);
			return NULL;
		}
		if (c == '\n')
			break;
		g_string_append_c(addr, c);
	}
	close(pipefd[0]);
	return g_string_free(g_steal_pointer(&addr), FALSE);
}

GDBusConnection *pb_bus_connect(const char *address, GError **error)
{
	GDBusConnection *c = g_dbus_connection_new_for_address_sync(
		address,
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
		G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, error);

	if (!c)
		g_prefix_error(error, "connect to the private bus: ");
	return c;
}

bool pb_name_has_owner(GDBusConnection *c, const char *name)
{
	g_autoptr(GVariant) r = g_dbus_connection_call_sync(c, "org.freedesktop.DBus",
		"/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
		g_variant_new("(s)", name), G_VARIANT_TYPE("(b)"),
		G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
	gboolean has = FALSE;

	if (r)
		g_variant_get(r, "(b)", &has);
	return has;
}
