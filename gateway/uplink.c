// SPDX-License-Identifier: MIT
/*
 * GwUplink: the gateway's MQTT client (paho MQTTAsync); see uplink.h.
 *
 *   struct session   one paho client = one connection attempt and, if it
 *                    succeeds, that connection. Created on the main
 *                    thread, destroyed on the main thread once the attempt
 *                    failed or the connection is gone (or at stop), so
 *                    every connection starts from an empty paho (no
 *                    commands or message ids left over from the last one).
 *                    The paho callbacks get the session as their context
 *                    and touch nothing else: they copy what they need
 *                    into a struct ev and push it to the uplink's
 *                    GAsyncQueue, then wake the one GSource.
 *   hop_dispatch     the main thread: pops the events in paho's order;
 *                    an event of a session that is no longer the current
 *                    one (its epoch) is dropped.
 *   in_flight        token (paho's message id) -> tag of every QoS 1/2
 *                    publish not yet acknowledged. Kept on the main
 *                    thread, so it only shrinks after the event arrived:
 *                    paho never holds more than `window`.
 *
 * Lifetimes. Every entry from the main loop and every public call that
 * can call back is bracketed by up_enter()/up_leave(); gw_uplink_free()
 * inside an ops callback tears paho down at once but frees the struct in
 * the last up_leave(). A destroyed session is kept until the next one is
 * destroyed (or the uplink is freed), so a paho thread that is still
 * returning from a callback never touches freed memory.
 */
#define G_LOG_DOMAIN "gw-uplink"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <MQTTAsync.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#include "uplink.h"

#define DEFAULT_KEEPALIVE_S		15
#define MAX_KEEPALIVE_S			20
#define DEFAULT_WINDOW			32
#define MAX_WINDOW			1024
#define DEFAULT_BACKOFF_MIN_MS		500
#define DEFAULT_BACKOFF_MAX_MS		30000
#define DEFAULT_CONNECT_TIMEOUT_S	10
/* a connection that lasted this long resets the backoff */
#define STABLE_CONNECTION_US		(60 * G_USEC_PER_SEC)
/* paho's own queue: publishes are bounded by the window, this is slack
 * for subscribes, QoS 0 and the disconnect */
#define BUFFERED_EXTRA			256
/* gw_uplink_stop waits this long for paho to send the DISCONNECT */
#define STOP_GRACE_MS			2000
/* TLS: the AEAD suites only exist from TLS 1.2 on, so with this list a
 * TLS 1.0/1.1 handshake finds no suite; TLS 1.3 suites are not affected
 * (paho's MQTT_SSL_VERSION_TLS_1_2 would pin exactly 1.2) */
#define TLS_CIPHERS	"ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL"

/* ---- events: paho threads -> main thread --------------------------------- */

enum ev_type {
	EV_CONNECTED,
	EV_CONNECT_FAILED,
	EV_LOST,
	EV_PUBLISHED,
	EV_PUBLISH_FAILED,
	EV_MESSAGE,
	EV_SUBSCRIBE_FAILED,
};

struct ev {
	enum ev_type type;
	unsigned int epoch;
	int token;		/* PUBLISHED, PUBLISH_FAILED */
	bool by_tag;		/* QoS 0: tag instead of token */
	uint64_t tag;
	int code;		/* paho's code, CONNACK/PUBACK/SUBACK reason code */
	int version;		/* CONNECTED */
	unsigned int receive_max; /* CONNECTED (MQTT 5), 0: none */
	char *text;		/* what paho said, or NULL */
	char *topic;		/* MESSAGE */
	void *payload;
	size_t len;
};

static struct ev *ev_new(enum ev_type type)
{
	struct ev *ev = g_new0(struct ev, 1);

	ev->type = type;
	return ev;
}

static void ev_free(gpointer p)
{
	struct ev *ev = p;

	g_free(ev->text);
	g_free(ev->topic);
	g_free(ev->payload);
	g_free(ev);
}

/* ---- the session: one paho client ---------------------------------------- */

struct session {
	MQTTAsync client;		/* NULL if paho refused to create it */
	unsigned int epoch;
	int version;			/* what it connects with: 5 or 4 */
	GAsyncQueue *queue;		/* the uplink's, a reference */
	GSource *source;		/* the uplink's, a reference */
	GMutex lock;			/* the rest, written on paho threads */
	GCond cond;
	bool disconnect_done;
	int server_reason;		/* an MQTT 5 DISCONNECT from the broker */
	char ssl_error[160];		/* OpenSSL's first complaint */
};

static void session_push(struct session *s, struct ev *ev)
{
	ev->epoch = s->epoch;
	g_async_queue_push(s->queue, ev);
	g_source_set_ready_time(s->source, 0);
}

static void session_free(struct session *s)
{
	if (!s)
		return;
	g_async_queue_unref(s->queue);
	g_source_unref(s->source);
	g_mutex_clear(&s->lock);
	g_cond_clear(&s->cond);
	g_free(s);
}

/* paho callbacks: on paho's threads, the context is the session */

static void on_connect_ok5(void *ctx, MQTTAsync_successData5 *r)
{
	struct ev *ev = ev_new(EV_CONNECTED);

	ev->version = 5;
	if (r && MQTTProperties_hasProperty(&r->properties, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM))
		ev->receive_max = (unsigned int)MQTTProperties_getNumericValue(
			&r->properties, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM);
	session_push(ctx, ev);
}

static void on_connect_ok(void *ctx, MQTTAsync_successData *r)
{
	struct ev *ev = ev_new(EV_CONNECTED);

	(void)r;
	ev->version = 4;
	session_push(ctx, ev);
}

static void on_connect_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
	struct ev *ev = ev_new(EV_CONNECT_FAILED);

	if (r) {
		/* paho puts the CONNACK reason code into code */
		ev->code = r->code ? r->code : (int)r->reasonCode;
		ev->text = g_strdup(r->message);
	}
	session_push(ctx, ev);
}

static void on_connect_fail(void *ctx, MQTTAsync_failureData *r)
{
	struct ev *ev = ev_new(EV_CONNECT_FAILED);

	if (r) {
		ev->code = r->code;
		ev->text = g_strdup(r->message);
	}
	session_push(ctx, ev);
}

static void on_lost(void *ctx, char *cause)
{
	struct ev *ev = ev_new(EV_LOST);

	ev->text = g_strdup(cause);
	session_push(ctx, ev);
}

static void on_server_disconnect(void *ctx, MQTTProperties *props, enum MQTTReasonCodes reason)
{
	struct session *s = ctx;

	(void)props;
	g_mutex_lock(&s->lock);
	s->server_reason = (int)reason;
	g_mutex_unlock(&s->lock);
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
	struct ev *ev = ev_new(EV_MESSAGE);
	size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);

	/* copies: paho's buffers are freed here */
	ev->topic = g_strndup(topic, tlen);
	ev->len = m->payloadlen > 0 ? (size_t)m->payloadlen : 0;
	ev->payload = g_memdup2(m->payload, ev->len);
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	session_push(ctx, ev);
	return 1;
}

static void on_publish_ok5(void *ctx, MQTTAsync_successData5 *r)
{
	struct ev *ev = ev_new(EV_PUBLISHED);

	ev->token = r->token;
	session_push(ctx, ev);
}

static void on_publish_ok(void *ctx, MQTTAsync_successData *r)
{
	struct ev *ev = ev_new(EV_PUBLISHED);

	ev->token = r->token;
	session_push(ctx, ev);
}

static void on_publish_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
	struct ev *ev = ev_new(EV_PUBLISH_FAILED);

	ev->token = r->token;
	ev->code = r->reasonCode >= 0x80 ? (int)r->reasonCode : r->code;
	ev->text = g_strdup(r->message);
	session_push(ctx, ev);
}

static void on_publish_fail(void *ctx, MQTTAsync_failureData *r)
{
	struct ev *ev = ev_new(EV_PUBLISH_FAILED);

	ev->token = r->token;
	ev->code = r->code;
	ev->text = g_strdup(r->message);
	session_push(ctx, ev);
}

static void on_subscribe_ok5(void *ctx, MQTTAsync_successData5 *r)
{
	struct ev *ev;

	if (!r || r->reasonCode < 0x80)
		return;
	ev = ev_new(EV_SUBSCRIBE_FAILED);
	ev->code = (int)r->reasonCode;
	session_push(ctx, ev);
}

static void on_subscribe_ok(void *ctx, MQTTAsync_successData *r)
{
	struct ev *ev;

	if (!r || r->alt.qos != 0x80)
		return;
	ev = ev_new(EV_SUBSCRIBE_FAILED);
	ev->code = 0x80;
	session_push(ctx, ev);
}

static void on_subscribe_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
	struct ev *ev = ev_new(EV_SUBSCRIBE_FAILED);

	ev->code = r->reasonCode >= 0x80 ? (int)r->reasonCode : r->code;
	session_push(ctx, ev);
}

static void on_subscribe_fail(void *ctx, MQTTAsync_failureData *r)
{
	struct ev *ev = ev_new(EV_SUBSCRIBE_FAILED);

	ev->code = r->code;
	session_push(ctx, ev);
}

static void disconnect_done(struct session *s)
{
	g_mutex_lock(&s->lock);
	s->disconnect_done = true;
	g_cond_broadcast(&s->cond);
	g_mutex_unlock(&s->lock);
}

static void on_disconnect_ok5(void *ctx, MQTTAsync_successData5 *r)
{
	(void)r;
	disconnect_done(ctx);
}

static void on_disconnect_ok(void *ctx, MQTTAsync_successData *r)
{
	(void)r;
	disconnect_done(ctx);
}

static void on_disconnect_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
	(void)r;
	disconnect_done(ctx);
}

static void on_disconnect_fail(void *ctx, MQTTAsync_failureData *r)
{
	(void)r;
	disconnect_done(ctx);
}

/* OpenSSL 3 prints "tid:error:code:library:function:reason:file:line:";
 * keeps "reason (function)", or the line as it is. */
static void ssl_reason(char *out, size_t size, const char *str, size_t len)
{
	g_autofree char *line = g_strchomp(g_strndup(str, len));
	g_auto(GStrv) f = g_strsplit(line, ":", 8);

	if (g_strv_length(f) >= 6 && !strcmp(f[1], "error") && f[5][0])
		g_snprintf(out, size, "%s (%s)", f[5], f[4]);
	else
		g_strlcpy(out, line, size);
}

static int on_ssl_error(const char *str, size_t len, void *u)
{
	struct session *s = u;

	g_mutex_lock(&s->lock);
	if (!s->ssl_error[0])
		ssl_reason(s->ssl_error, sizeof(s->ssl_error), str, len);
	g_mutex_unlock(&s->lock);
	return 1;
}

/* ---- the uplink ---------------------------------------------------------- */

enum up_state {
	UP_IDLE,		/* not started, or stopped */
	UP_WAITING,		/* for the reconnect timer */
	UP_CONNECTING,
	UP_CONNECTED,
};

struct in_flight {
	uint64_t tag;
	uint64_t seq;		/* publish order, for reporting failures */
};

struct hop_source {
	GSource base;
	GwUplink *up;
};

struct gw_uplink {
	GMainContext *context;
	struct gw_uplink_ops ops;
	void *user_data;

	/* the config, copied */
	char *uri;
	char *client_id;
	char *username;
	char *password;
	char *ca_file;
	char *cert_file;
	char *key_file;
	char *will_topic;
	char *will_payload;
	char **subscriptions;
	bool tls;
	int keepalive_s;
	unsigned int window_max;
	unsigned int backoff_min_ms;
	unsigned int backoff_max_ms;
	unsigned int connect_timeout_s;
	uint32_t session_expiry_s;
	MQTTProperties connect_props;	/* MQTT 5 CONNECT: session expiry */

	int try_version;		/* the next connect's: 5, or 4 after a refusal */
	enum up_state state;
	bool started;
	int version;			/* connected with, else 0 */
	unsigned int window;		/* the effective one */
	unsigned int backoff_ms;	/* the next wait, before jitter */
	unsigned int next_epoch;
	struct session *session;	/* the current paho client */
	struct session *dead;		/* the previous one, freed a generation later */
	GSource *timer;			/* reconnect */
	GSource *source;		/* the hop */
	GAsyncQueue *queue;		/* of struct ev */
	GHashTable *in_flight;		/* token -> struct in_flight */
	uint64_t next_seq;

	unsigned int busy;		/* up_enter depth */
	bool quiet;			/* being freed: no more callbacks */
	bool free_pending;		/* freed inside a callback */
	struct gw_uplink_stats stats;
};

#define EMIT(up, cb, ...)							\
	do {									\
		if (!(up)->quiet && (up)->ops.cb)				\
			(up)->ops.cb(__VA_ARGS__, (up)->user_data);		\
	} while (0)

static void up_free_now(GwUplink *up);
static void attempt_connect(GwUplink *up);

static void up_enter(GwUplink *up)
{
	up->busy++;
}

static void up_leave(GwUplink *up)
{
	if (--up->busy == 0 && up->free_pending)
		up_free_now(up);
}

static void set_last_error(GwUplink *up, const char *text)
{
	g_strlcpy(up->stats.last_error, text, sizeof(up->stats.last_error));
}

static bool current(const GwUplink *up, const struct ev *ev)
{
	return up->session && up->session->epoch == ev->epoch;
}

/* ---- sessions ------------------------------------------------------------ */

static struct session *session_new(GwUplink *up, int version, GError **error)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
	struct session *s = g_new0(struct session, 1);
	int rc;

	s->epoch = ++up->next_epoch;
	s->version = version;
	s->queue = g_async_queue_ref(up->queue);
	s->source = g_source_ref(up->source);
	g_mutex_init(&s->lock);
	g_cond_init(&s->cond);

	/* the version is fixed here for MQTT 5 (paho refuses a v5 connect
	 * on a client created for 3.1.1) */
	co.MQTTVersion = version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
	co.sendWhileDisconnected = 0;
	co.maxBufferedMessages = (int)up->window_max + BUFFERED_EXTRA;
	rc = MQTTAsync_createWithOptions(&s->client, up->uri, up->client_id,
					 MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
	if (rc != MQTTASYNC_SUCCESS) {
		s->client = NULL;
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "uplink: paho refused uri \"%s\": %s (%d)", up->uri,
			    MQTTAsync_strerror(rc), rc);
		return s;
	}
	rc = MQTTAsync_setCallbacks(s->client, s, on_lost, on_message, NULL);
	if (rc == MQTTASYNC_SUCCESS && version == 5)
		rc = MQTTAsync_setDisconnected(s->client, s, on_server_disconnect);
	if (rc != MQTTASYNC_SUCCESS) {
		MQTTAsync_destroy(&s->client);
		s->client = NULL;
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "uplink: paho callbacks: %s (%d)", MQTTAsync_strerror(rc), rc);
	}
	return s;
}

/* Destroys the current session's paho client, on the main thread (never
 * from a paho callback: that deadlocks). Its late events are stale. */
static void session_kill(GwUplink *up)
{
	struct session *s = up->session;

	if (!s)
		return;
	up->session = NULL;
	if (s->client)
		MQTTAsync_destroy(&s->client);
	session_free(up->dead);
	up->dead = s;
}

/* ---- connecting ---------------------------------------------------------- */

static unsigned int jitter(unsigned int ms)
{
	/* +-20 % */
	return (unsigned int)((double)ms * g_random_double_range(0.8, 1.2));
}

static gboolean reconnect_cb(gpointer data)
{
	GwUplink *up = data;

	up_enter(up);
	g_source_unref(up->timer);
	up->timer = NULL;
	if (up->started && up->state == UP_WAITING && !up->session)
		attempt_connect(up);
	up_leave(up);
	return G_SOURCE_REMOVE;
}

static void timer_cancel(GwUplink *up)
{
	if (up->timer) {
		g_source_destroy(up->timer);
		g_source_unref(up->timer);
		up->timer = NULL;
	}
}

static void schedule_reconnect(GwUplink *up)
{
	unsigned int delay;

	if (!up->started || up->quiet || up->session || up->timer)
		return;
	delay = jitter(up->backoff_ms);
	up->backoff_ms = MIN(up->backoff_ms * 2, up->backoff_max_ms);
	up->state = UP_WAITING;
	g_debug("reconnect in %u ms", delay);
	up->timer = g_timeout_source_new(delay);
	g_source_set_callback(up->timer, reconnect_cb, up, NULL);
	g_source_attach(up->timer, up->context);
}

/* A failure before paho took the connect goes through the queue as well,
 * so callbacks never run inside gw_uplink_start. */
static void push_connect_failed(GwUplink *up, const char *text)
{
	struct ev *ev = ev_new(EV_CONNECT_FAILED);

	ev->code = MQTTASYNC_FAILURE;
	ev->text = g_strdup(text);
	session_push(up->session, ev);
}

static void attempt_connect(GwUplink *up)
{
	MQTTAsync_connectOptions o5 = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_connectOptions o4 = MQTTAsync_connectOptions_initializer;
	MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
	MQTTAsync_connectOptions *o;
	struct session *s = up->session;
	g_autoptr(GError) error = NULL;
	int rc;

	/* the one gw_uplink_new made is used if it has the right version */
	if (s && (s->version != up->try_version || !s->client)) {
		session_kill(up);
		s = NULL;
	}
	if (!s) {
		s = up->session = session_new(up, up->try_version, &error);
		if (!s->client) {
			up->state = UP_CONNECTING;
			push_connect_failed(up, error->message);
			return;
		}
	}
	g_mutex_lock(&s->lock);
	s->ssl_error[0] = '\0';
	s->server_reason = 0;
	g_mutex_unlock(&s->lock);

	if (s->version == 5) {
		o = &o5;
		o->cleanstart = up->session_expiry_s == 0;
		if (up->session_expiry_s) {
			MQTTProperty p = { .identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL };

			p.value.integer4 = up->session_expiry_s;
			MQTTProperties_free(&up->connect_props);
			MQTTProperties_add(&up->connect_props, &p);
			o->connectProperties = &up->connect_props;
		}
		o->onSuccess5 = on_connect_ok5;
		o->onFailure5 = on_connect_fail5;
	} else {
		o = &o4;
		o->MQTTVersion = MQTTVERSION_3_1_1;
		o->cleansession = up->session_expiry_s == 0;
		o->onSuccess = on_connect_ok;
		o->onFailure = on_connect_fail;
	}
	o->context = s;
	o->keepAliveInterval = up->keepalive_s;
	o->connectTimeout = (int)up->connect_timeout_s;
	/* >= the window: paho never queues a publish behind its own limit */
	o->maxInflight = (int)up->window_max;
	o->automaticReconnect = 0;
	o->retryInterval = 0;
	o->username = up->username;
	o->password = up->password;
	if (up->will_topic) {
		will.topicName = up->will_topic;
		will.message = up->will_payload;
		will.retained = 1;
		will.qos = 1;
		o->will = &will;
	}
	if (up->tls) {
		ssl.trustStore = up->ca_file;
		ssl.keyStore = up->cert_file;
		ssl.privateKey = up->key_file;
		ssl.enableServerCertAuth = 1;
		ssl.verify = 1;		/* the hostname against the certificate */
		ssl.sslVersion = MQTT_SSL_VERSION_DEFAULT;
		ssl.enabledCipherSuites = TLS_CIPHERS;
		ssl.disableDefaultTrustStore = 1;
		ssl.ssl_error_cb = on_ssl_error;
		ssl.ssl_error_context = s;
		o->ssl = &ssl;
	}
	up->state = UP_CONNECTING;
	g_debug("connecting to %s with MQTT %s", up->uri, s->version == 5 ? "5" : "3.1.1");
	rc = MQTTAsync_connect(s->client, o);
	if (rc != MQTTASYNC_SUCCESS) {
		g_autofree char *text = g_strdup_printf("paho refused the connect: %s (%d)",
							MQTTAsync_strerror(rc), rc);

		push_connect_failed(up, text);
	}
}

static void subscribe_all(GwUplink *up)
{
	struct session *s = up->session;

	for (char **f = up->subscriptions; f && *f; f++) {
		MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
		int rc;

		ro.context = s;
		if (s->version == 5) {
			ro.onSuccess5 = on_subscribe_ok5;
			ro.onFailure5 = on_subscribe_fail5;
		} else {
			ro.onSuccess = on_subscribe_ok;
			ro.onFailure = on_subscribe_fail;
		}
		rc = MQTTAsync_subscribe(s->client, *f, 1, &ro);
		if (rc != MQTTASYNC_SUCCESS) {
			g_autofree char *text = g_strdup_printf("subscribe %s: %s (%d)", *f,
								MQTTAsync_strerror(rc), rc);

			set_last_error(up, text);
			g_message("%s", text);
		}
	}
}

static const char *connack_text(int code)
{
	switch (code) {
	case 1: return "unacceptable protocol version";
	case 2: return "identifier rejected";
	case 3: return "server unavailable";
	case 4: return "bad user name or password";
	case 5: return "not authorized";
	default: return "refused";
	}
}

static char *describe_connect_failure(struct session *s, const struct ev *ev)
{
	GString *m = g_string_new("connect failed: ");

	if (ev->code >= 0x80)
		g_string_append_printf(m, "the broker refused: %s (0x%02x)",
				       MQTTReasonCode_toString(ev->code), (unsigned int)ev->code);
	else if (ev->code > 0)
		g_string_append_printf(m, "the broker refused: %s (%d)", connack_text(ev->code),
				       ev->code);
	else if (ev->text)
		g_string_append(m, ev->text);
	else
		g_string_append_printf(m, "%s (%d)", MQTTAsync_strerror(ev->code), ev->code);
	g_mutex_lock(&s->lock);
	if (s->ssl_error[0])
		g_string_append_printf(m, "; TLS: %s", s->ssl_error);
	g_mutex_unlock(&s->lock);
	return g_string_free(m, FALSE);
}

/* ---- the events, on the main thread -------------------------------------- */

static int in_flight_cmp(gconstpointer a, gconstpointer b)
{
	const struct in_flight *x = *(struct in_flight *const *)a;
	const struct in_flight *y = *(struct in_flight *const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Every publish in flight failed (in publish order); in_flight is 0
 * before the first callback. */
static void fail_in_flight(GwUplink *up, const char *cause)
{
	g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter it;
	gpointer value;

	g_hash_table_iter_init(&it, up->in_flight);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		g_ptr_array_add(all, value);
		g_hash_table_iter_steal(&it);
	}
	g_ptr_array_sort(all, in_flight_cmp);
	for (guint i = 0; i < all->len; i++) {
		const struct in_flight *f = all->pdata[i];

		up->stats.publish_failed++;
		EMIT(up, publish_failed, f->tag, cause);
	}
}

static void handle_connected(GwUplink *up, const struct ev *ev)
{
	up->state = UP_CONNECTED;
	up->version = ev->version;
	up->window = up->window_max;
	if (ev->receive_max > 0 && ev->receive_max < up->window)
		up->window = ev->receive_max;
	up->stats.connects++;
	up->stats.connected_since_us = g_get_monotonic_time();
	g_info("connected to %s with MQTT %s, window %u", up->uri,
	       ev->version == 5 ? "5" : "3.1.1", up->window);
	subscribe_all(up);
	EMIT(up, connected, ev->version);
}

static void handle_connect_failed(GwUplink *up, const struct ev *ev)
{
	g_autofree char *cause = describe_connect_failure(up->session, ev);
	bool refused_version = up->session->version == 5 &&
		(ev->code == MQTTREASONCODE_UNSUPPORTED_PROTOCOL_VERSION ||
		 ev->code == 1 /* a 3.1.1 CONNACK: unacceptable protocol version */);

	up->stats.connect_failures++;
	set_last_error(up, cause);
	session_kill(up);
	up->state = UP_WAITING;
	if (refused_version && up->started) {
		/* for good: the next connects ask for 3.1.1 straight away */
		g_info("%s: the broker does not speak MQTT 5, trying 3.1.1", up->uri);
		up->try_version = 4;
		attempt_connect(up);
		return;
	}
	g_info("%s", cause);
	EMIT(up, disconnected, cause);
	schedule_reconnect(up);
}

static void connection_ended(GwUplink *up, const char *cause)
{
	gint64 since = up->stats.connected_since_us;

	if (since && g_get_monotonic_time() - since >= STABLE_CONNECTION_US)
		up->backoff_ms = up->backoff_min_ms;
	up->stats.disconnects++;
	up->stats.connected_since_us = 0;
	up->version = 0;
	session_kill(up);
	up->state = up->started ? UP_WAITING : UP_IDLE;
	fail_in_flight(up, cause);
	EMIT(up, disconnected, cause);
}

static void handle_lost(GwUplink *up, const struct ev *ev)
{
	g_autofree char *cause = NULL;
	int reason;

	g_mutex_lock(&up->session->lock);
	reason = up->session->server_reason;
	g_mutex_unlock(&up->session->lock);
	if (reason)
		cause = g_strdup_printf("connection lost: the broker disconnected: %s (0x%02x)",
					MQTTReasonCode_toString(reason), (unsigned int)reason);
	else
		cause = g_strdup_printf("connection lost%s%s", ev->text ? ": " : "",
					ev->text ? ev->text : "");
	set_last_error(up, cause);
	g_info("%s", cause);
	connection_ended(up, cause);
	schedule_reconnect(up);
}

static void handle_publish_done(GwUplink *up, const struct ev *ev)
{
	g_autofree struct in_flight *f = NULL;
	g_autofree char *cause = NULL;
	uint64_t tag;

	if (ev->by_tag) {
		tag = ev->tag;
	} else {
		if (!current(up, ev) ||
		    !g_hash_table_steal_extended(up->in_flight, GINT_TO_POINTER(ev->token),
						 NULL, (gpointer *)&f))
			return;
		tag = f->tag;
	}
	if (ev->type == EV_PUBLISHED) {
		up->stats.published++;
		EMIT(up, published, tag);
		return;
	}
	if (ev->code >= 0x80)
		cause = g_strdup_printf("the broker refused the publish: %s (0x%02x)",
					MQTTReasonCode_toString(ev->code), (unsigned int)ev->code);
	else
		cause = g_strdup_printf("publish failed: %s (%d)",
					ev->text ? ev->text : MQTTAsync_strerror(ev->code), ev->code);
	up->stats.publish_failed++;
	set_last_error(up, cause);
	EMIT(up, publish_failed, tag, cause);
}

static void handle_event(GwUplink *up, const struct ev *ev)
{
	switch (ev->type) {
	case EV_MESSAGE:
		up->stats.messages++;
		EMIT(up, message, ev->topic, ev->payload, ev->len);
		break;
	case EV_PUBLISHED:
	case EV_PUBLISH_FAILED:
		handle_publish_done(up, ev);
		break;
	case EV_CONNECTED:
		if (current(up, ev) && up->state == UP_CONNECTING)
			handle_connected(up, ev);
		break;
	case EV_CONNECT_FAILED:
		if (current(up, ev) && up->state == UP_CONNECTING)
			handle_connect_failed(up, ev);
		break;
	case EV_LOST:
		if (current(up, ev) && up->state == UP_CONNECTED)
			handle_lost(up, ev);
		break;
	case EV_SUBSCRIBE_FAILED:
		if (current(up, ev)) {
			g_autofree char *text = g_strdup_printf(
				"a subscription was refused: %s (%d)",
				ev->code >= 0x80 ? MQTTReasonCode_toString(ev->code)
						 : MQTTAsync_strerror(ev->code), ev->code);

			set_last_error(up, text);
			g_message("%s", text);
		}
		break;
	}
}

/* Handles what is queued; stops early if the uplink is being freed. */
static void drain(GwUplink *up)
{
	struct ev *ev;

	while (!up->free_pending && (ev = g_async_queue_try_pop(up->queue))) {
		handle_event(up, ev);
		ev_free(ev);
	}
}

static gboolean hop_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
	GwUplink *up = ((struct hop_source *)(void *)source)->up;

	(void)cb;
	(void)data;
	/* re-arm first, then drain: a push after the pop is not lost */
	g_source_set_ready_time(source, -1);
	up_enter(up);
	drain(up);
	up_leave(up);
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs hop_funcs = {
	.dispatch = hop_dispatch,
};

/* ---- the config ---------------------------------------------------------- */

static gboolean config_error(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static gboolean config_error(GError **error, const char *fmt, ...)
{
	g_autofree char *text = NULL;
	va_list ap;

	va_start(ap, fmt);
	text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "uplink config: %s", text);
	return FALSE;
}

/* The scheme and the host of "scheme://host:port" ("[v6]:port" too). */
static gboolean parse_uri(const char *uri, bool *tls, char **host, GError **error)
{
	static const struct { const char *prefix; bool tls; } schemes[] = {
		{ "tcp://", false }, { "mqtt://", false },
		{ "ssl://", true }, { "mqtts://", true },
	};
	const char *rest = NULL;
	const char *end;

	if (!uri || !*uri)
		return config_error(error, "uri is not set");
	/* user:password@ would be echoed by every message below: refused
	 * without showing it */
	if (strchr(uri, '@'))
		return config_error(error, "uri: user information (user:password@) is not "
				    "accepted; use [mqtt] username and password");
	for (size_t i = 0; i < G_N_ELEMENTS(schemes); i++)
		if (g_str_has_prefix(uri, schemes[i].prefix)) {
			rest = uri + strlen(schemes[i].prefix);
			*tls = schemes[i].tls;
			break;
		}
	if (!rest)
		return config_error(error, "uri \"%s\": the scheme must be tcp://, mqtt://, "
				    "ssl:// or mqtts://", uri);
	if (*rest == '[') {
		end = strchr(rest, ']');
		if (!end || (end[1] && end[1] != ':'))
			return config_error(error, "uri \"%s\": bad IPv6 address", uri);
		*host = g_strndup(rest + 1, (size_t)(end - rest - 1));
		end++;
	} else {
		end = rest + strcspn(rest, ":/");
		*host = g_strndup(rest, (size_t)(end - rest));
	}
	if (!**host) {
		g_clear_pointer(host, g_free);
		return config_error(error, "uri \"%s\": no host", uri);
	}
	if (*end == ':') {
		char *stop = NULL;
		guint64 port = g_ascii_strtoull(end + 1, &stop, 10);

		if (stop == end + 1 || port == 0 || port > 65535 || (*stop && *stop != '/')) {
			g_clear_pointer(host, g_free);
			return config_error(error, "uri \"%s\": bad port", uri);
		}
	}
	return TRUE;
}

/* 127.0.0.0/8, ::1, "localhost" */
static bool host_is_loopback(const char *host)
{
	g_autoptr(GInetAddress) a = NULL;

	if (!g_ascii_strcasecmp(host, "localhost") || !g_ascii_strcasecmp(host, "localhost."))
		return true;
	a = g_inet_address_new_from_string(host);
	return a && g_inet_address_get_is_loopback(a);
}

static gboolean check_file(const char *key, const char *path, GError **error)
{
	int e;

	if (!*path)
		return config_error(error, "%s is empty", key);
	if (g_access(path, R_OK) != 0) {
		e = errno;
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e),
			    "uplink config: %s \"%s\": %s", key, path, g_strerror(e));
		return FALSE;
	}
	if (g_file_test(path, G_FILE_TEST_IS_DIR))
		return config_error(error, "%s \"%s\" is a directory", key, path);
	return TRUE;
}

static gboolean check_topic(const char *key, const char *topic, bool filter, GError **error)
{
	if (!*topic)
		return config_error(error, "%s is empty", key);
	if (!g_utf8_validate(topic, -1, NULL))
		return config_error(error, "%s is not UTF-8", key);
	if (!filter && strpbrk(topic, "+#"))
		return config_error(error, "%s \"%s\" has a wildcard", key, topic);
	return TRUE;
}

static gboolean check_config(const struct gw_uplink_config *cfg, bool *tls, GError **error)
{
	g_autofree char *host = NULL;

	if (!parse_uri(cfg->uri, tls, &host, error))
		return FALSE;
	if (!*tls && !cfg->allow_plaintext && !host_is_loopback(host))
		return config_error(error, "uri \"%s\": plaintext MQTT to %s, a host off loopback, "
				    "is refused (use ssl:// or mqtts://, or set allow_plaintext)",
				    cfg->uri, host);
	if (*tls && !cfg->ca_file)
		return config_error(error, "uri \"%s\" is TLS but ca_file is not set", cfg->uri);
	if (*tls && !check_file("ca_file", cfg->ca_file, error))
		return FALSE;
	if (*tls && (!cfg->cert_file) != (!cfg->key_file))
		return config_error(error, "cert_file and key_file go together (%s is not set)",
				    cfg->cert_file ? "key_file" : "cert_file");
	if (*tls && cfg->cert_file && (!check_file("cert_file", cfg->cert_file, error) ||
				       !check_file("key_file", cfg->key_file, error)))
		return FALSE;
	if (!cfg->client_id || !*cfg->client_id)
		return config_error(error, "client_id is not set");
	if (cfg->password && !cfg->username)
		return config_error(error, "password is set but username is not");
	if (cfg->keepalive_s < 1 || cfg->keepalive_s > MAX_KEEPALIVE_S)
		return config_error(error, "keepalive_s %d is out of range 1..%d", cfg->keepalive_s,
				    MAX_KEEPALIVE_S);
	if (cfg->mqtt_version != 5 && cfg->mqtt_version != 4)
		return config_error(error, "mqtt_version %d: 5 or 4 (3.1.1)", cfg->mqtt_version);
	if (cfg->will_topic && !check_topic("will_topic", cfg->will_topic, false, error))
		return FALSE;
	for (const char *const *f = cfg->subscriptions; f && *f; f++)
		if (!check_topic("subscriptions", *f, true, error))
			return FALSE;
	if (cfg->window < 1 || cfg->window > MAX_WINDOW)
		return config_error(error, "window %u is out of range 1..%d", cfg->window,
				    MAX_WINDOW);
	if (cfg->backoff_min_ms < 1 || cfg->backoff_max_ms < cfg->backoff_min_ms ||
	    cfg->backoff_max_ms > 24 * 3600 * 1000)
		return config_error(error, "backoff_min_ms %u / backoff_max_ms %u: need "
				    "1 <= min <= max <= 1 day", cfg->backoff_min_ms,
				    cfg->backoff_max_ms);
	if (cfg->connect_timeout_s < 1 || cfg->connect_timeout_s > 300)
		return config_error(error, "connect_timeout_s %u is out of range 1..300",
				    cfg->connect_timeout_s);
	return TRUE;
}

gboolean gw_uplink_config_check(const struct gw_uplink_config *cfg, GError **error)
{
	struct gw_uplink_config c = *cfg;
	bool tls = false;

	if (!c.client_id)
		c.client_id = "check";	/* the gateway sets it */
	return check_config(&c, &tls, error);
}

void gw_uplink_config_init(struct gw_uplink_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->keepalive_s = DEFAULT_KEEPALIVE_S;
	cfg->mqtt_version = 5;
	cfg->window = DEFAULT_WINDOW;
	cfg->backoff_min_ms = DEFAULT_BACKOFF_MIN_MS;
	cfg->backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
	cfg->connect_timeout_s = DEFAULT_CONNECT_TIMEOUT_S;
}

/* ---- the API ------------------------------------------------------------- */

GwUplink *gw_uplink_new(const struct gw_uplink_config *cfg, const struct gw_uplink_ops *ops,
			void *user_data, GMainContext *ctx, GError **error)
{
	GwUplink *up;
	bool tls = false;

	g_return_val_if_fail(cfg != NULL, NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);
	if (!check_config(cfg, &tls, error))
		return NULL;

	up = g_new0(GwUplink, 1);
	up->context = ctx ? g_main_context_ref(ctx) : g_main_context_ref_thread_default();
	if (ops)
		up->ops = *ops;
	up->user_data = user_data;
	up->uri = g_strdup(cfg->uri);
	up->client_id = g_strdup(cfg->client_id);
	up->username = g_strdup(cfg->username);
	up->password = g_strdup(cfg->password);
	up->tls = tls;
	if (tls) {
		up->ca_file = g_strdup(cfg->ca_file);
		up->cert_file = g_strdup(cfg->cert_file);
		up->key_file = g_strdup(cfg->key_file);
	}
	up->will_topic = g_strdup(cfg->will_topic);
	up->will_payload = g_strdup(cfg->will_topic && cfg->will_payload ? cfg->will_payload : "");
	up->subscriptions = g_strdupv((char **)cfg->subscriptions);
	up->keepalive_s = cfg->keepalive_s;
	up->window_max = cfg->window;
	up->window = cfg->window;
	up->backoff_min_ms = cfg->backoff_min_ms;
	up->backoff_max_ms = cfg->backoff_max_ms;
	up->backoff_ms = cfg->backoff_min_ms;
	up->connect_timeout_s = cfg->connect_timeout_s;
	up->session_expiry_s = cfg->session_expiry_s;
	up->try_version = cfg->mqtt_version;
	up->state = UP_IDLE;
	up->in_flight = g_hash_table_new_full(NULL, NULL, NULL, g_free);
	up->queue = g_async_queue_new_full(ev_free);
	up->source = g_source_new(&hop_funcs, sizeof(struct hop_source));
	((struct hop_source *)(void *)up->source)->up = up;
	g_source_set_name(up->source, "gw-uplink hop");
	g_source_set_ready_time(up->source, -1);
	g_source_attach(up->source, up->context);

	/* the first client now: paho's own checks of the uri */
	up->session = session_new(up, up->try_version, error);
	if (!up->session->client) {
		gw_uplink_free(up);
		return NULL;
	}
	return up;
}

void gw_uplink_start(GwUplink *up)
{
	g_return_if_fail(up != NULL);
	if (up->started || up->quiet)
		return;
	up_enter(up);
	up->started = true;
	up->backoff_ms = up->backoff_min_ms;
	attempt_connect(up);
	up_leave(up);
}

/* Handles events until nothing is in flight or timeout_ms passed (the
 * acknowledgements, or the connection lost). paho's own disconnect
 * timeout is not used: with a silent broker it took 3 s for 300 ms. */
static void wait_in_flight(GwUplink *up, unsigned int timeout_ms)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * G_TIME_SPAN_MILLISECOND;

	while (g_hash_table_size(up->in_flight) > 0 && up->state == UP_CONNECTED &&
	       !up->free_pending) {
		gint64 left = deadline - g_get_monotonic_time();
		struct ev *ev;

		if (left <= 0)
			break;
		ev = g_async_queue_timeout_pop(up->queue, (guint64)left);
		if (!ev)
			break;
		handle_event(up, ev);
		ev_free(ev);
	}
}

/* Sends the DISCONNECT and waits for paho to have done it. */
static void disconnect_and_wait(GwUplink *up)
{
	MQTTAsync_disconnectOptions d5 = MQTTAsync_disconnectOptions_initializer5;
	MQTTAsync_disconnectOptions d4 = MQTTAsync_disconnectOptions_initializer;
	MQTTAsync_disconnectOptions *d;
	struct session *s = up->session;
	gint64 deadline;
	int rc;

	if (s->version == 5) {
		d = &d5;
		d->onSuccess5 = on_disconnect_ok5;
		d->onFailure5 = on_disconnect_fail5;
	} else {
		d = &d4;
		d->onSuccess = on_disconnect_ok;
		d->onFailure = on_disconnect_fail;
	}
	d->context = s;
	d->timeout = 0;
	rc = MQTTAsync_disconnect(s->client, d);
	if (rc != MQTTASYNC_SUCCESS) {
		g_info("disconnect: %s (%d)", MQTTAsync_strerror(rc), rc);
		return;
	}
	deadline = g_get_monotonic_time() + STOP_GRACE_MS * G_TIME_SPAN_MILLISECOND;
	g_mutex_lock(&s->lock);
	while (!s->disconnect_done)
		if (!g_cond_wait_until(&s->cond, &s->lock, deadline))
			break;
	if (!s->disconnect_done)
		g_info("disconnect: paho did not finish within %u ms", STOP_GRACE_MS);
	g_mutex_unlock(&s->lock);
}

static void stop_internal(GwUplink *up, unsigned int timeout_ms)
{
	up->started = false;
	timer_cancel(up);
	if (up->session && up->state == UP_CONNECTED)
		wait_in_flight(up, timeout_ms);
	if (up->session && up->state == UP_CONNECTED && up->session->client)
		disconnect_and_wait(up);
	/* what paho reported until then: acknowledgements, messages; a
	 * connection lost meanwhile is reported as such */
	drain(up);
	if (up->state == UP_CONNECTED) {
		connection_ended(up, "stopped");
	} else {
		session_kill(up);
		up->state = UP_IDLE;
		/* nothing can be in flight without a connection */
		fail_in_flight(up, "stopped");
	}
	up->state = UP_IDLE;
}

void gw_uplink_stop(GwUplink *up, unsigned int timeout_ms)
{
	g_return_if_fail(up != NULL);
	if (up->quiet)
		return;
	up_enter(up);
	stop_internal(up, timeout_ms);
	up_leave(up);
}

static void up_free_now(GwUplink *up)
{
	session_kill(up);
	session_free(up->dead);
	timer_cancel(up);
	g_source_destroy(up->source);
	g_source_unref(up->source);
	g_async_queue_unref(up->queue);
	g_hash_table_destroy(up->in_flight);
	g_main_context_unref(up->context);
	g_free(up->uri);
	g_free(up->client_id);
	g_free(up->username);
	if (up->password)
		memset(up->password, 0, strlen(up->password));
	g_free(up->password);
	g_free(up->ca_file);
	g_free(up->cert_file);
	g_free(up->key_file);
	g_free(up->will_topic);
	g_free(up->will_payload);
	g_strfreev(up->subscriptions);
	MQTTProperties_free(&up->connect_props);
	g_free(up);
}

void gw_uplink_free(GwUplink *up)
{
	if (!up || up->free_pending)
		return;
	/* a clean disconnect, no callbacks any more */
	up->quiet = true;
	stop_internal(up, 0);
	if (up->busy) {
		up->free_pending = true;
		return;
	}
	up_free_now(up);
}

bool gw_uplink_is_connected(const GwUplink *up)
{
	return up && up->state == UP_CONNECTED;
}

int gw_uplink_mqtt_version(const GwUplink *up)
{
	return up && up->state == UP_CONNECTED ? up->version : 0;
}

unsigned int gw_uplink_in_flight(const GwUplink *up)
{
	return up ? g_hash_table_size(up->in_flight) : 0;
}

unsigned int gw_uplink_window(const GwUplink *up)
{
	return up ? up->window : 0;
}

static GIOErrorEnum paho_io_error(int rc)
{
	switch (rc) {
	case MQTTASYNC_DISCONNECTED:
		return G_IO_ERROR_NOT_CONNECTED;
	case MQTTASYNC_MAX_MESSAGES_INFLIGHT:
	case MQTTASYNC_MAX_BUFFERED_MESSAGES:
	case MQTTASYNC_NO_MORE_MSGIDS:
		return G_IO_ERROR_WOULD_BLOCK;
	case MQTTASYNC_BAD_UTF8_STRING:
	case MQTTASYNC_NULL_PARAMETER:
	case MQTTASYNC_TOPICNAME_TRUNCATED:
	case MQTTASYNC_BAD_QOS:
		return G_IO_ERROR_INVALID_ARGUMENT;
	default:
		return G_IO_ERROR_FAILED;
	}
}

gboolean gw_uplink_publish(GwUplink *up, uint64_t tag, const char *topic,
			   const void *payload, size_t len, int qos, bool retain,
			   uint32_t expiry_s, GError **error)
{
	MQTTAsync_message msg = MQTTAsync_message_initializer;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	struct session *s;
	struct in_flight *f;
	int rc;

	g_return_val_if_fail(up != NULL, FALSE);
	g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
	if (!topic || !*topic || strpbrk(topic, "+#") || !g_utf8_validate(topic, -1, NULL)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "publish: bad topic \"%s\"", topic ? topic : "(null)");
		return FALSE;
	}
	if (qos < 0 || qos > 2 || len > INT_MAX || (len && !payload)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "publish %s: bad qos %d or payload", topic, qos);
		return FALSE;
	}
	if (up->state != UP_CONNECTED || up->quiet) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
			    "publish %s: not connected to the broker", topic);
		return FALSE;
	}
	if (qos > 0 && g_hash_table_size(up->in_flight) >= up->window) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
			    "publish %s: the window is full (%u in flight)", topic, up->window);
		return FALSE;
	}
	s = up->session;
	msg.payload = (void *)payload;
	msg.payloadlen = (int)len;
	msg.qos = qos;
	msg.retained = retain;
	if (s->version == 5 && expiry_s) {
		MQTTProperty p = {
			.identifier = MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL,
			.value.integer4 = expiry_s,
		};

		MQTTProperties_add(&msg.properties, &p);
	}
	ro.context = s;
	if (qos > 0 && s->version == 5) {
		ro.onSuccess5 = on_publish_ok5;
		ro.onFailure5 = on_publish_fail5;
	} else if (qos > 0) {
		ro.onSuccess = on_publish_ok;
		ro.onFailure = on_publish_fail;
	}
	rc = MQTTAsync_sendMessage(s->client, topic, &msg, &ro);
	MQTTProperties_free(&msg.properties);
	if (rc != MQTTASYNC_SUCCESS) {
		g_set_error(error, G_IO_ERROR, paho_io_error(rc), "publish %s: %s (%d)", topic,
			    MQTTAsync_strerror(rc), rc);
		return FALSE;
	}
	if (qos == 0) {
		/* fire and forget: done once paho has it; reported from the loop */
		struct ev *ev = ev_new(EV_PUBLISHED);

		ev->by_tag = true;
		ev->tag = tag;
		session_push(s, ev);
		return TRUE;
	}
	f = g_new(struct in_flight, 1);
	f->tag = tag;
	f->seq = up->next_seq++;
	g_hash_table_replace(up->in_flight, GINT_TO_POINTER(ro.token), f);
	return TRUE;
}

struct gw_uplink_stats gw_uplink_get_stats(const GwUplink *up)
{
	struct gw_uplink_stats st = { 0 };

	if (up)
		st = up->stats;
	return st;
}
