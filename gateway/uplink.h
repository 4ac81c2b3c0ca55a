/* SPDX-License-Identifier: MIT */
/*
 * GwUplink: the MQTT client (paho MQTTAsync, -lpaho-mqtt3as), an adapter
 * that carries out publishes and reports what happened; the outbox and its
 * policy live elsewhere (docs/architecture.md, "The uplink").
 *
 * Threads. paho calls back on its own threads; every callback copies what
 * it needs and hops into the GMainContext given at creation (one GSource
 * fed by a GAsyncQueue, woken with g_source_set_ready_time), so every
 * gw_uplink_ops callback runs on the main loop's thread, in the order paho
 * reported. Never destroyed from a paho thread.
 *
 * Connection. The version is set explicitly: MQTT 5 first; a CONNACK
 * refusing the protocol version makes it fall back to 3.1.1 (and remember
 * that for the next connects). Clean start unless session_expiry_s asks
 * for a persistent session (for the subscriptions only: what we publish is
 * the outbox's), paho persistence NONE (the outbox is ours), keepalive <= 20 s, a last will (retained, QoS 1) on the
 * gateway status topic. Reconnects are ours too (paho's automatic reconnect
 * is off): exponential backoff from backoff_min_ms to backoff_max_ms with
 * +-20% jitter, reset after a connection that lasted a minute.
 *
 * Security. "ssl://" or "mqtts://" use TLS with the CA file, the client
 * certificate and key if given, and the server's hostname checked against
 * its certificate (always on). "tcp://" or "mqtt://" to a host that is not
 * loopback (127.0.0.0/8, ::1, "localhost") is refused by gw_uplink_new
 * unless allow_plaintext is set.
 *
 * Flow control. At most `window` publishes are in paho at once
 * (gw_uplink_publish fails with G_IO_ERROR_WOULD_BLOCK beyond it): paho
 * stalls a second per refill when its own queue exceeds its in-flight
 * window. On MQTT 5 the window is also capped by the broker's Receive
 * Maximum. A publish is done when `published` reports it (PUBACK for
 * QoS 1); a connection lost with publishes in flight reports each of them
 * as failed, so the caller sends them again after the reconnect.
 */
#ifndef REHABLINK_GATEWAY_UPLINK_H
#define REHABLINK_GATEWAY_UPLINK_H

#include <gio/gio.h>
#include <stdbool.h>
#include <stdint.h>

struct gw_uplink_ops {
	/* connected: the birth message may be published now */
	void (*connected)(int mqtt_version, void *user_data);
	/* the connection is gone (or a connect failed); cause for the log */
	void (*disconnected)(const char *cause, void *user_data);
	/* a publish was acknowledged (QoS 1: PUBACK) */
	void (*published)(uint64_t tag, void *user_data);
	/* a publish will not be acknowledged on this connection */
	void (*publish_failed)(uint64_t tag, const char *cause, void *user_data);
	/* a message on a subscribed topic; payload not NUL-terminated */
	void (*message)(const char *topic, const void *payload, size_t len, void *user_data);
};

struct gw_uplink_config {
	const char *uri;		/* tcp://, mqtt://, ssl://, mqtts:// host:port */
	const char *client_id;
	const char *username;		/* NULL: none */
	const char *password;
	const char *ca_file;		/* TLS: required */
	const char *cert_file;		/* TLS client certificate, NULL: none */
	const char *key_file;
	bool allow_plaintext;		/* plaintext to a host off loopback */
	int keepalive_s;		/* 1..20, default 15 */
	int mqtt_version;		/* 5 (default, falls back) or 4 (3.1.1) */
	const char *will_topic;		/* NULL: no last will */
	const char *will_payload;
	const char *const *subscriptions;	/* NULL-terminated filters, QoS 1 */
	unsigned int window;		/* in flight at most, 1..1024, default 32 */
	unsigned int backoff_min_ms;	/* default 500 */
	unsigned int backoff_max_ms;	/* default 30000 */
	unsigned int connect_timeout_s;	/* default 10 */
	uint32_t session_expiry_s;	/* 0: clean start every time (default);
					 * else a persistent session kept this
					 * long by the broker, so the QoS 1
					 * commands sent while we were away
					 * arrive at the reconnect (3.1.1: clean
					 * session off) */
};
void gw_uplink_config_init(struct gw_uplink_config *cfg);

typedef struct gw_uplink GwUplink;

/* Validates the config (the plaintext rule, file names, ranges) and creates
 * the client; nothing connects before gw_uplink_start. ctx NULL: the
 * thread-default context. */
/* The checks gw_uplink_new makes of a config (the URI, plaintext off
 * loopback, the TLS files), for --check-config and reloads; a missing
 * client_id is not an error here. */
gboolean gw_uplink_config_check(const struct gw_uplink_config *cfg, GError **error);
GwUplink *gw_uplink_new(const struct gw_uplink_config *cfg, const struct gw_uplink_ops *ops,
			void *user_data, GMainContext *ctx, GError **error);
/* Stops, waits for paho's threads, frees. Main thread only. NULL-safe.
 * Does not publish anything: the last will is for deaths, a clean stop
 * publishes the offline status itself first. */
void gw_uplink_free(GwUplink *up);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwUplink, gw_uplink_free)

void gw_uplink_start(GwUplink *up);
/* Disconnects cleanly (the broker drops the will), waiting at most
 * timeout_ms for publishes in flight. */
void gw_uplink_stop(GwUplink *up, unsigned int timeout_ms);

bool gw_uplink_is_connected(const GwUplink *up);
int gw_uplink_mqtt_version(const GwUplink *up);	/* 5, 4, or 0 */
unsigned int gw_uplink_in_flight(const GwUplink *up);
unsigned int gw_uplink_window(const GwUplink *up);	/* the effective one */

/* Publishes; tag comes back in published or publish_failed. expiry_s is
 * the MQTT 5 message expiry (0: none; ignored on 3.1.1). Fails with
 * G_IO_ERROR_NOT_CONNECTED or G_IO_ERROR_WOULD_BLOCK (window full), or
 * what paho said. */
gboolean gw_uplink_publish(GwUplink *up, uint64_t tag, const char *topic,
			   const void *payload, size_t len, int qos, bool retain,
			   uint32_t expiry_s, GError **error);

struct gw_uplink_stats {
	uint64_t connects;
	uint64_t connect_failures;
	uint64_t disconnects;
	uint64_t published;
	uint64_t publish_failed;
	uint64_t messages;
	int64_t connected_since_us;	/* monotonic, 0 if not connected */
	char last_error[128];
};
struct gw_uplink_stats gw_uplink_get_stats(const GwUplink *up);

#endif
