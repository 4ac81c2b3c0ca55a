/* SPDX-License-Identifier: MIT */
/*
 * A real mosquitto for the tests (/usr/sbin/mosquitto, loopback only), and
 * mosquitto_sub / mosquitto_pub to look at it from outside the process.
 *
 * broker_new() makes a directory (removed by broker_free unless
 * REHABLINK_KEEP_BROKER=1), picks a free port and, for TLS, generates a CA,
 * a server certificate (CN localhost, SAN DNS:localhost, IP:127.0.0.1) and
 * a client certificate with the openssl CLI:
 *
 *   DIR/ca.crt ca.key server.crt server.key client.crt client.key
 *   DIR/mosquitto.conf  DIR/mosquitto.log  (the broker's stderr)
 *
 * broker_run() writes the config and starts the broker on that port, and
 * returns once the port accepts connections; broker_stop() sends SIGTERM
 * and reaps it, broker_restart() runs it again on the same port (outage
 * tests), broker_kill() is SIGKILL, broker_freeze()/broker_thaw() are
 * SIGSTOP/SIGCONT (publishes in flight with no PUBACK). Every child dies
 * with the test process (PR_SET_PDEATHSIG) and broker_free/sub_free kill
 * and reap what is left.
 *
 * The config: per_listener_settings true, persistence false,
 * max_queued_messages 100000, max_inflight_messages 0 (no MQTT 5 Receive
 * Maximum, see toolchain.md 2e), log types up to information plus
 * subscribe (broker_wait_log finds "CLIENT 1 FILTER"), allow_anonymous;
 * TLS: require_certificate true, use_identity_as_username true.
 *
 * Errors come back as GError, saying what failed and where the log is.
 */
#ifndef REHABLINK_TESTS_BROKER_H
#define REHABLINK_TESTS_BROKER_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct broker Broker;

/* Directory, port and (tls) certificates; nothing runs yet. */
Broker *broker_new(bool tls, GError **error);
/* broker_new + broker_run. */
Broker *broker_start(bool tls, GError **error);
/* Kills the broker if it runs and removes the directory. NULL-safe. */
void broker_free(Broker *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Broker, broker_free)

/* Before broker_run: the server certificate DIR/NAME.crt + DIR/NAME.key
 * (default "server"), whether clients must show a certificate (default
 * true with TLS), and lines appended to the config after the listener. */
void broker_set_server_cert(Broker *b, const char *name);
void broker_set_require_certificate(Broker *b, bool require);
void broker_add_config(Broker *b, const char *lines);

/* Starts it (again) on its port; waits up to 10 s for the port. */
gboolean broker_run(Broker *b, GError **error);
/* SIGTERM and reap (SIGKILL after 5 s). */
gboolean broker_stop(Broker *b, GError **error);
/* broker_stop if running, then broker_run on the same port. */
gboolean broker_restart(Broker *b, GError **error);
void broker_kill(Broker *b);
void broker_freeze(Broker *b);
void broker_thaw(Broker *b);
bool broker_running(Broker *b);

uint16_t broker_port(const Broker *b);
bool broker_tls(const Broker *b);
const char *broker_dir(const Broker *b);
/* "tcp://127.0.0.1:PORT" or "ssl://127.0.0.1:PORT" */
const char *broker_uri(const Broker *b);
/* DIR/name (g_free) */
char *broker_file(const Broker *b, const char *name);
const char *broker_log(const Broker *b);
/* Waits (pumping the thread-default main context) until the broker's log
 * has a line containing needle `times` times in all. */
gboolean broker_wait_log(Broker *b, const char *needle, unsigned int times,
			 unsigned int timeout_ms, GError **error);
unsigned int broker_log_count(Broker *b, const char *needle);

/* Certificates with the openssl CLI (EC P-256, 30 days), in dir:
 * a self-signed CA dir/NAME.crt + .key; a certificate dir/NAME.crt + .key
 * signed by dir/CA.crt, for a server (SAN given, e.g.
 * "DNS:localhost,IP:127.0.0.1") or, san NULL, a client. Keys are 0644
 * (mosquitto started as root reads them as user mosquitto). */
gboolean broker_make_ca(const char *dir, const char *name, GError **error);
gboolean broker_make_cert(const char *dir, const char *ca, const char *name,
			  const char *cn, const char *san, GError **error);

/* mosquitto_pub, QoS 1, to this broker (with the client certificate if
 * TLS); waits for it to exit. */
gboolean broker_pub(Broker *b, const char *topic, const char *payload, bool retain,
		    GError **error);

/* A mosquitto_sub child: one line per message in a file, format
 * "%t %p" unless given (mosquitto_sub -F, e.g. "%E %t %p" with
 * mqtt_version 5 for the message expiry). sub_start returns once the
 * broker has logged the subscription. */
typedef struct broker_sub BrokerSub;
struct sub_opts {
	const char *format;	/* NULL: "%t %p" */
	int mqtt_version;	/* 0: mosquitto_sub's default (3.1.1), or 5 */
};
BrokerSub *sub_start(Broker *b, const char *topic, const struct sub_opts *opts,
		     GError **error);
/* Complete lines so far. */
unsigned int sub_count(BrokerSub *s);
/* Waits (pumping the thread-default main context) for at least n lines. */
gboolean sub_wait_lines(BrokerSub *s, unsigned int n, unsigned int timeout_ms,
			GError **error);
/* The lines so far, without their newline (g_strfreev). */
char **sub_lines(BrokerSub *s);
const char *sub_output(const BrokerSub *s);
/* Kills and reaps mosquitto_sub. NULL-safe. */
void sub_free(BrokerSub *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BrokerSub, sub_free)

#endif
