/* SPDX-License-Identifier: MIT */
/*
 * paho's QoS 1 ceiling on this machine: N publishes of 200-byte payloads to
 * the broker at argv[1] (a mosquitto on loopback started by
 * tests/bench/run.sh), stop-and-wait (the next publish is issued from the
 * previous one's onSuccess, so paho never holds more than one: see
 * toolchain.md 2e). MQTT 3.1.1, set explicitly. Also the PUBACK round trip
 * of each publish, for the latency rows.
 *
 * Prints: "paho_qos1_per_s <n>", "paho_rtt_p50_us <n>", "paho_rtt_p99_us <n>".
 */
#include <MQTTAsync.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static MQTTAsync client;
static int total, sent, acked, failed;
static gint64 *rtt;
static gint64 sent_at;
static GMutex lock;
static GCond cond;
static int connected = -1;
static char payload[200];

static void publish_next(void);
static void on_publish_fail_cb(void *ctx, MQTTAsync_failureData *resp);

static void on_publish(void *ctx, MQTTAsync_successData *resp)
{
	(void) ctx; (void) resp;
	gint64 now = g_get_monotonic_time();

	g_mutex_lock(&lock);
	rtt[acked] = now - sent_at;
	acked++;
	if (sent < total)
		publish_next();
	else
		g_cond_signal(&cond);
	g_mutex_unlock(&lock);
}

static void on_publish_fail(void *ctx, MQTTAsync_failureData *resp)
{
	(void) ctx; (void) resp;
	/* called with the lock held when MQTTAsync_send itself fails */
	failed++;
	g_cond_signal(&cond);
}

static void on_publish_fail_cb(void *ctx, MQTTAsync_failureData *resp)
{
	g_mutex_lock(&lock);
	on_publish_fail(ctx, resp);
	g_mutex_unlock(&lock);
}

static void publish_next(void)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	ro.onSuccess = on_publish;
	ro.onFailure = on_publish_fail_cb;
	sent++;
	sent_at = g_get_monotonic_time();
	if (MQTTAsync_send(client, "rehablink/v1/bench/ceiling", sizeof(payload),
			   payload, 1, 0, &ro) != MQTTASYNC_SUCCESS)
		on_publish_fail(NULL, NULL);
}

static void on_connect(void *ctx, MQTTAsync_successData *resp)
{
	(void) ctx; (void) resp;
	g_mutex_lock(&lock);
	connected = 1;
	g_cond_signal(&cond);
	g_mutex_unlock(&lock);
}

static void on_connect_fail(void *ctx, MQTTAsync_failureData *resp)
{
	(void) ctx; (void) resp;
	g_mutex_lock(&lock);
	connected = 0;
	g_cond_signal(&cond);
	g_mutex_unlock(&lock);
}

static int cmp64(const void *a, const void *b)
{
	gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench-paho-ceiling tcp://127.0.0.1:PORT [N]\n");
		return 2;
	}
	total = argc > 2 ? atoi(argv[2]) : 20000;
	rtt = g_new0(gint64, total);
	memset(payload, 'x', sizeof(payload));

	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
	co.MQTTVersion = MQTTVERSION_3_1_1;
	if (MQTTAsync_createWithOptions(&client, argv[1], "rehablink-bench-ceiling",
					MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) != MQTTASYNC_SUCCESS)
		return 1;
	MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
	opts.MQTTVersion = MQTTVERSION_3_1_1;
	opts.cleansession = 1;
	opts.keepAliveInterval = 20;
	opts.onSuccess = on_connect;
	opts.onFailure = on_connect_fail;
	if (MQTTAsync_connect(client, &opts) != MQTTASYNC_SUCCESS)
		return 1;
	g_mutex_lock(&lock);
	while (connected < 0)
		g_cond_wait(&cond, &lock);
	g_mutex_unlock(&lock);
	if (!connected) {
		fprintf(stderr, "bench-paho-ceiling: cannot connect to %s\n", argv[1]);
		return 1;
	}

	gint64 t0 = g_get_monotonic_time();
	g_mutex_lock(&lock);
	publish_next();
	while (acked < total && !failed)
		g_cond_wait(&cond, &lock);
	g_mutex_unlock(&lock);
	gint64 t1 = g_get_monotonic_time();
	if (failed) {
		fprintf(stderr, "bench-paho-ceiling: a publish failed\n");
		return 1;
	}
	qsort(rtt, total, sizeof(*rtt), cmp64);
	printf("paho_qos1_per_s %.0f\n", (double) total * 1e6 / (double) (t1 - t0));
	printf("paho_rtt_p50_us %" G_GINT64_FORMAT "\n", rtt[total / 2]);
	printf("paho_rtt_p99_us %" G_GINT64_FORMAT "\n", rtt[(total * 99) / 100]);
	MQTTAsync_disconnectOptions dopts = MQTTAsync_disconnectOptions_initializer;
	MQTTAsync_disconnect(client, &dopts);
	g_usleep(100000);
	MQTTAsync_destroy(&client);
	g_free(rtt);
	return 0;
}
