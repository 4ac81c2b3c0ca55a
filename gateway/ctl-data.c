/* SPDX-License-Identifier: MIT */
/*
 * rehablinkctl data: a wearable's minute aggregates (GetData) as terminal
 * charts: time per posture class as horizontal bars, steps per hour as a
 * column chart (Unicode blocks; ASCII when the locale is not UTF-8), and
 * the day summaries. rehablinkctl export: every stored record since a
 * time, written by the daemon into an anonymous file whose descriptor
 * goes with the call (Export), then copied to --output or stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "ctl-common.h"

static const char *const posture_classes[] = { "upright", "flexed", "reclined", "lying", "unknown" };
#define N_POSTURE G_N_ELEMENTS(posture_classes)

static bool iso_time(JsonObject *o, const char *key, double *ret)
{
	const char *s = ctl_str(o, key);
	g_autoptr(GDateTime) dt = s ? g_date_time_new_from_iso8601(s, NULL) : NULL;

	if (!dt)
		return false;
	*ret = (double)g_date_time_to_unix(dt) + g_date_time_get_microsecond(dt) / 1e6;
	return true;
}

/* one bar of width cells for the fraction f, in eighths */
static void hbar(struct ctl *c, GString *out, double f, int width)
{
	long e = ctl_lround(CLAMP(f, 0.0, 1.0) * width * 8);

	for (int i = 0; i < width; i++) {
		long left = e - (long)i * 8;

		g_string_append(out, ctl_block(c, (int)CLAMP(left, 0, 8)));
	}
}

static void posture_chart(struct ctl *c, GString *out, const double *secs, double flexed30,
			  double flexed60, double still)
{
	double total = 0;
	int width = MAX(10, MIN(40, c->cols - 40));

	for (size_t i = 0; i < N_POSTURE; i++)
		total += secs[i];
	g_string_append_printf(out, "%sposture%s\n", ctl_col(c, CTL_BOLD), ctl_col(c, CTL_RESET));
	for (size_t i = 0; i < N_POSTURE; i++) {
		g_autofree char *d = ctl_duration(secs[i]);
		double f = total > 0 ? secs[i] / total : 0;

		g_string_append(out, "  ");
		ctl_pad(out, posture_classes[i], 10);
		g_string_append(out, ctl_col(c, i == 1 ? CTL_YELLOW : CTL_GREEN));
		hbar(c, out, f, width);
		g_string_append_printf(out, "%s %12s %4.0f %%\n", ctl_col(c, CTL_RESET), d, 100 * f);
	}
	{
		g_autofree char *a = ctl_duration(flexed30);
		g_autofree char *b = ctl_duration(flexed60);
		g_autofree char *s = ctl_duration(still);

		g_string_append_printf(out, "  flexed over 30%s %s, over 60%s %s; longest still %s\n",
				       c->utf8 ? "\u00b0:" : " deg:", a, c->utf8 ? "\u00b0:" : " deg:",
				       b, s);
	}
}

#define CHART_ROWS 6
#define CHART_MAX_COLS 24

static void steps_chart(struct ctl *c, GString *out, const double *buckets, const double *starts,
			int n, int hours_per_bucket, double total, double walking)
{
	double max = 0;
	int gutter = 7;

	for (int i = 0; i < n; i++)
		max = MAX(max, buckets[i]);
	g_string_append_printf(out, "%ssteps per %s%s (total %.0f, %.0f min walking)\n",
			       ctl_col(c, CTL_BOLD), hours_per_bucket == 1 ? "hour" : "bucket",
			       ctl_col(c, CTL_RESET), total, walking);
	if (hours_per_bucket > 1)
		g_string_append_printf(out, "  (one column: %d h)\n", hours_per_bucket);
	for (int r = CHART_ROWS - 1; r >= 0; r--) {
		if (r == CHART_ROWS - 1)
			g_string_append_printf(out, "%*.0f ", gutter - 1, max);
		else if (r == 0)
			g_string_append_printf(out, "%*d ", gutter - 1, 0);
		else
			g_string_append_printf(out, "%*s", gutter, "");
		for (int i = 0; i < n; i++) {
			double h = max > 0 ? buckets[i] / max * CHART_ROWS * 8 : 0;
			long e = ctl_lround(h) - (long)r * 8;
			const char *b;

			if (r == 0 && buckets[i] > 0 && e < 1)
				e = 1;	/* a few steps still show */
			b = ctl_vblock(c, (int)CLAMP(e, 0, 8));
			g_string_append_printf(out, "%s%s%s%s ", ctl_col(c, CTL_GREEN), b, b,
					       ctl_col(c, CTL_RESET));
		}
		g_string_append_c(out, '\n');
	}
	g_string_append_printf(out, "%*s", gutter, "");
	for (int i = 0; i < n; i++) {
		if (i % 3 == 0) {
			g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local((gint64)starts[i]);
			g_autofree char *hh = dt ? g_date_time_format(dt, "%H") : g_strdup("??");

			g_string_append_printf(out, "%-9s", hh);
		}
	}
	while (out->len && out->str[out->len - 1] == ' ')
		g_string_truncate(out, out->len - 1);
	g_string_append(out, "\n");
}

static void days_table(struct ctl *c, GString *out, JsonArray *days)
{
	guint n = days ? json_array_get_length(days) : 0;

	if (n == 0)
		return;
	g_string_append_printf(out, "\n%sDAY         POD  STEPS  WALK  UPRIGHT  FLEXED  RECLINED  LYING%s\n",
			       ctl_col(c, CTL_BOLD), ctl_col(c, CTL_RESET));
	for (guint i = 0; i < n; i++) {
		JsonObject *d = ctl_node_obj(json_array_get_element(days, i));
		JsonObject *p = ctl_obj(d, "posture_s");
		double pod;
		g_autofree char *podt = ctl_num(d, "post_op_day", &pod)
			? g_strdup_printf("%.0f", pod) : g_strdup("-");

		g_string_append_printf(out, "%-11s %4s %6.0f %4.0fm %7.1fh %6.1fh %8.1fh %5.1fh\n",
				       ctl_str(d, "local_date") ? ctl_str(d, "local_date") : "?",
				       podt, ctl_num_or(d, "steps", 0),
				       ctl_num_or(d, "walking_minutes", 0),
				       ctl_num_or(p, "upright", 0) / 3600,
				       ctl_num_or(p, "flexed", 0) / 3600,
				       ctl_num_or(p, "reclined", 0) / 3600,
				       ctl_num_or(p, "lying", 0) / 3600);
	}
}

int ctl_cmd_data(struct ctl *c, int argc, char **argv)
{
	g_autofree char *wearable = NULL;
	g_autofree char *since_s = NULL;
	const GOptionEntry entries[] = {
		{ "wearable", 'w', 0, G_OPTION_ARG_STRING, &wearable,
		  "The wearable (default: the first)", "ALIAS" },
		{ "since", 's', 0, G_OPTION_ARG_STRING, &since_s,
		  "From when (default 24 h ago)", "TIME" },
		{ NULL }
	};
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	JsonObject *o;
	JsonArray *minutes;
	double since, first = INFINITY, last = -INFINITY;
	double secs[N_POSTURE] = { 0 }, f30 = 0, f60 = 0, still = 0, steps = 0, walking = 0;
	double buckets[CHART_MAX_COLS] = { 0 }, starts[CHART_MAX_COLS];
	guint n;
	int rc;

	if (!ctl_parse_command(c, "data [--wearable ALIAS] [--since TIME]",
			       "Recent minute aggregates of one wearable: posture and steps charts.",
			       entries, &argc, &argv))
		return CTL_EXIT_USAGE;
	if (argc > 1)
		return ctl_usage_error("data: unexpected argument '%s'", argv[1]);
	since = c->now - 86400;
	if (since_s && !ctl_parse_time(since_s, c->now, &since, &error))
		return ctl_usage_error("data: --since: %s", error->message);
	root = ctl_call(c, "GetData", g_variant_new("(sd)", wearable ? wearable : "", since), &rc);
	if (!root)
		return rc;
	if (c->json) {
		ctl_print_json(root);
		return CTL_EXIT_OK;
	}
	o = ctl_node_obj(root);
	minutes = ctl_arr(o, "minutes");
	n = minutes ? json_array_get_length(minutes) : 0;
	for (guint i = 0; i < n; i++) {
		JsonObject *m = ctl_node_obj(json_array_get_element(minutes, i));
		JsonObject *p = ctl_obj(m, "posture_s");
		double t;

		for (size_t k = 0; k < N_POSTURE; k++)
			secs[k] += ctl_num_or(p, posture_classes[k], 0);
		f30 += ctl_num_or(m, "flexed_over_30_s", 0);
		f60 += ctl_num_or(m, "flexed_over_60_s", 0);
		still = MAX(still, ctl_num_or(m, "longest_still_s", 0));
		steps += ctl_num_or(m, "steps", 0);
		walking += ctl_num_or(m, "walking_minutes", 0);
		if (iso_time(m, "start", &t)) {
			first = MIN(first, t);
			last = MAX(last, t);
		}
	}
	{
		g_autofree char *from = ctl_clock(c, since);

		g_string_append_printf(out, "%s%s%s: %u minute aggregates since %s\n",
				       ctl_col(c, CTL_BOLD),
				       ctl_str(o, "alias") ? ctl_str(o, "alias") : "?",
				       ctl_col(c, CTL_RESET), n, from);
	}
	if (n == 0 || !isfinite(first)) {
		g_string_append(out, "no data in that time (is the wearable syncing? "
				"rehablinkctl devices)\n");
		days_table(c, out, ctl_arr(o, "days"));
		fputs(out->str, stdout);
		return CTL_EXIT_OK;
	}
	{
		g_autofree char *a = ctl_clock(c, first);
		g_autofree char *b = ctl_clock(c, last + 60);

		g_string_append_printf(out, "from %s to %s\n\n", a, b);
	}
	posture_chart(c, out, secs, f30, f60, still);
	g_string_append_c(out, '\n');

	/* steps per local hour; buckets of several hours over a long span */
	{
		g_autoptr(GDateTime) f = g_date_time_new_from_unix_local((gint64)first);
		double h0 = (double)g_date_time_to_unix(f) - g_date_time_get_minute(f) * 60 -
			    g_date_time_get_second(f);
		int hours = (int)ctl_ceil((last + 60 - h0) / 3600);
		int per = MAX(1, (hours + CHART_MAX_COLS - 1) / CHART_MAX_COLS);
		int cols = MAX(1, MIN(CHART_MAX_COLS, (hours + per - 1) / per));

		for (int i = 0; i < cols; i++)
			starts[i] = h0 + (double)i * per * 3600;
		for (guint i = 0; i < n; i++) {
			JsonObject *m = ctl_node_obj(json_array_get_element(minutes, i));
			double t;
			int k;

			if (!iso_time(m, "start", &t))
				continue;
			k = (int)ctl_floor((t - h0) / (per * 3600.0));
			if (k >= 0 && k < cols)
				buckets[k] += ctl_num_or(m, "steps", 0);
		}
		steps_chart(c, out, buckets, starts, cols, per, steps, walking);
	}
	days_table(c, out, ctl_arr(o, "days"));
	fputs(out->str, stdout);
	return CTL_EXIT_OK;
}

/* ---- export ---- */

static int anonymous_file(GError **error)
{
	int fd = memfd_create("rehablink-export", MFD_CLOEXEC);
	g_autofree char *path = NULL;

	if (fd >= 0)
		return fd;
	fd = g_file_open_tmp("rehablink-export-XXXXXX", &path, error);
	if (fd >= 0)
		unlink(path);
	return fd;
}

static bool write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		buf += w;
		len -= (size_t)w;
	}
	return true;
}

/* Copies the whole of src (from offset 0) to dst; the bytes copied, or -1. */
static gint64 copy_fd(int src, int dst)
{
	char buf[65536];
	gint64 total = 0;
	off_t off = 0;

	for (;;) {
		ssize_t r = pread(src, buf, sizeof(buf), off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return total;
		if (!write_all(dst, buf, (size_t)r))
			return -1;
		off += r;
		total += r;
	}
}

int ctl_cmd_export(struct ctl *c, int argc, char **argv)
{
	g_autofree char *format = NULL;
	g_autofree char *since_s = NULL;
	g_autofree char *output = NULL;
	const GOptionEntry entries[] = {
		{ "format", 'f', 0, G_OPTION_ARG_STRING, &format,
		  "csv (default) or json (one object per line)", "csv|json" },
		{ "since", 's', 0, G_OPTION_ARG_STRING, &since_s,
		  "From when (default 24 h ago)", "TIME" },
		{ "output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
		  "Write to FILE (mode 0600) instead of stdout", "FILE" },
		{ NULL }
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(GUnixFDList) fds = NULL;
	g_autoptr(JsonNode) root = NULL;
	double since;
	int fd, out_fd = STDOUT_FILENO, idx;
	gint64 copied;
	double want;
	FILE *summary;
	int rc = CTL_EXIT_OK;

	if (!ctl_parse_command(c, "export [--format csv|json] [--since TIME] [--output FILE]",
			       "Every stored record since a time, as CSV or JSON lines. "
			       "The summary goes to stdout with --output, else to stderr.",
			       entries, &argc, &argv))
		return CTL_EXIT_USAGE;
	if (argc > 1)
		return ctl_usage_error("export: unexpected argument '%s'", argv[1]);
	if (format && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0)
		return ctl_usage_error("export: --format: '%s' is not csv or json", format);
	since = c->now - 86400;
	if (since_s && !ctl_parse_time(since_s, c->now, &since, &error))
		return ctl_usage_error("export: --since: %s", error->message);

	fd = anonymous_file(&error);
	if (fd < 0) {
		fprintf(stderr, "rehablinkctl: export: no temporary file: %s\n", error->message);
		return CTL_EXIT_PROBLEM;
	}
	fds = g_unix_fd_list_new();
	idx = g_unix_fd_list_append(fds, fd, &error);
	if (idx < 0) {
		close(fd);
		fprintf(stderr, "rehablinkctl: export: %s\n", error->message);
		return CTL_EXIT_PROBLEM;
	}
	/* the export may take a while on a large store: at least 60 s */
	root = ctl_call_full(c, "Export", g_variant_new("(hsd)", idx, format ? format : "csv", since),
			     fds, MAX(c->timeout_ms, 60000), &error);
	if (!root) {
		close(fd);
		return ctl_fail(c, "Export", error);
	}
	if (output) {
		out_fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (out_fd < 0) {
			fprintf(stderr, "rehablinkctl: export: %s: %s\n", output, g_strerror(errno));
			close(fd);
			return CTL_EXIT_PROBLEM;
		}
	}
	fflush(stdout);
	copied = copy_fd(fd, out_fd);
	close(fd);
	if (output && close(out_fd) < 0)
		copied = -1;
	if (copied < 0 && errno == EPIPE)
		return CTL_EXIT_PROBLEM;	/* | head: quietly, as after SIGPIPE */
	if (copied < 0) {
		fprintf(stderr, "rehablinkctl: export: writing %s: %s\n",
			output ? output : "stdout", g_strerror(errno));
		return CTL_EXIT_PROBLEM;
	}
	want = ctl_num_or(ctl_node_obj(root), "bytes", (double)copied);
	if ((double)copied != want) {
		fprintf(stderr, "rehablinkctl: export: %" G_GINT64_FORMAT " bytes copied, "
			"the daemon wrote %.0f\n", copied, want);
		rc = CTL_EXIT_PROBLEM;
	}
	summary = output ? stdout : stderr;
	if (c->json) {
		g_autoptr(JsonGenerator) gen = json_generator_new();
		g_autofree char *text = NULL;

		json_generator_set_pretty(gen, TRUE);
		json_generator_set_root(gen, root);
		text = json_generator_to_data(gen, NULL);
		fprintf(summary, "%s\n", text);
	} else {
		fprintf(summary, "exported %.0f records (%" G_GINT64_FORMAT " bytes) to %s\n",
			ctl_num_or(ctl_node_obj(root), "records", 0), copied,
			output ? output : "stdout");
	}
	return rc;
}
