#!/usr/bin/python3
"""Render `make bench` results (key value lines) as docs/performance.md.

Each row names its ceiling, measured in the same run, and the goal as a
ratio to it; rows whose key is missing from the results are left out, so
later benchmarks only add rows here.
"""
import datetime
import platform
import subprocess
import sys

# key, what, unit, ceiling key (or None for a ceiling itself), goal ratio, note
ROWS = [
    ("dbus_ceiling_per_s", "D-Bus notification ceiling: bare GDBus subscriber, private dbus-daemon, 20-byte Value",
     "notifications/s", None, None, "ceiling"),
    ("paho_qos1_per_s", "paho QoS 1 ceiling: stop-and-wait publish to loopback mosquitto, 200 B",
     "msg/s", None, None, "ceiling"),
    ("paho_rtt_p50_us", "paho QoS 1 round trip to PUBACK, p50", "µs", None, None, "ceiling"),
    ("paho_rtt_p99_us", "paho QoS 1 round trip to PUBACK, p99", "µs", None, None, "ceiling"),
    ("bluez_ingest_per_s", "notifications ingested through the BlueZ adapter (GwBluez value op)",
     "notifications/s", "dbus_ceiling_per_s", 0.5, "same stream as the ceiling, through the ObjectManager client"),
    ("ble_sync_records_per_s", "history sync of 24 h at 1 Hz (posture + steps, ~172 k records) through GwBle into the journal",
     "records/s", "dbus_ceiling_per_s", 1.0, "batched: many records per notification, so above 1x is possible"),
    ("ble_sync_24h_s", "the same sync, gateway start to live with every record durable", "s",
     "", None, "fake bluetoothd, private bus"),
    ("ble_reconnect_p50_ms", "reconnect after link loss to live again, p50 (20 losses)", "ms",
     "", None, "mostly the deliberate 500 ms +-20% first backoff; the work is ~100-130 ms"),
    ("ble_reconnect_p95_ms", "reconnect after link loss to live again, p95", "ms", "", None, ""),
    ("wb_batch_decode_per_s", "wearable batch decode (4 records a batch)", "batches/s",
     "dbus_ceiling_per_s", 10.0, "the codec must never be what limits ingest"),
    ("wb_record_decode_per_s", "wearable record decode", "records/s",
     "dbus_ceiling_per_s", 10.0, ""),
    ("wb_batch_encode_per_s", "wearable batch encode (simulator side)", "batches/s",
     "dbus_ceiling_per_s", 10.0, ""),
    ("payload_pain_per_s", "pain report JSON build", "payloads/s",
     "paho_qos1_per_s", 5.0, "JSON must never be what limits publishing"),
    ("payload_aggregate_per_s", "per-minute aggregate JSON build", "payloads/s",
     "paho_qos1_per_s", 5.0, ""),
    ("payload_alert_per_s", "alert JSON build (24 h pain context)", "payloads/s",
     "paho_qos1_per_s", 1.0, "alerts are rare: what counts is the cost against the 50 ms escalation budget"),
    ("payload_ack_parse_per_s", "clinic alert acknowledgement parse", "messages/s",
     "paho_qos1_per_s", 5.0, ""),
    ("drain_72h_per_s", "outbox drain after a 72 h outage of one wearable (4 323 messages), rehablinkd to a loopback mosquitto",
     "msg/s", "paho_qos1_per_s", 0.5, "window 32, backlog_rate 0; first to last arrival at a subscriber"),
    ("drain_100k_per_s", "outbox drain of a 100 000-message backlog", "msg/s", "paho_qos1_per_s", 0.5, ""),
    ("day_sync_s", "a day at 1 Hz posture + per-minute steps (87 840 records) by one history sync: start to all durable and published",
     "s", "", None, "fake bluetoothd, SQLite, mosquitto"),
    ("disk_bytes_day_sync", "bytes written to disk for that day (/proc/PID/io write_bytes)", "bytes/day", "",
     20e6, "goal at most 20 MB a day"),
    ("disk_bytes_day_live", "bytes written to disk a day, the same rates arriving live (extrapolated)", "bytes/day", "",
     20e6, "goal at most 20 MB a day; telemetry commits every 5 min (the default); a fresh store and wearable, 330 s window (one commit)"),
    ("escalation_p50_us", "escalation latency, pain report in to the alert's PUBACK, p50 (red flags, emergency notifications)",
     "µs", "", 50000, "goal p99 ≤ 50 ms; compare paho's raw QoS 1 round trip above"),
    ("escalation_p99_us", "escalation latency, p99", "µs", "", 50000, ""),
    ("escalation_backlog_p50_us", "escalation latency behind a 100 000-message telemetry backlog, p50",
     "µs", "", 50000, "the backlog drains meanwhile at the default 1000/s"),
    ("escalation_backlog_p99_us", "escalation latency behind the backlog, p99", "µs", "", 50000, ""),
    ("cpu_us_per_record", "CPU per record, notification to PUBACK of its aggregates (user + system)", "µs", "",
     None, "the synced day above"),
]


def main():
    results = {}
    for line in open(sys.argv[1]):
        parts = line.split()
        if len(parts) == 2:
            results[parts[0]] = float(parts[1])
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=False).stdout.strip() or "unknown"
    except OSError:
        rev = "unknown"
    out = []
    out.append("# Performance\n")
    out.append("Written by `make bench` (tests/bench/run.sh); do not edit by hand. Every number is\n"
               "measured in the same run as the ceilings it is compared with: a bare GDBus\n"
               "subscriber on a private dbus-daemon (the most notifications BlueZ could hand\n"
               "us) and paho's QoS 1 stop-and-wait rate to a loopback mosquitto (the most\n"
               "messages the uplink could publish). Client, daemon and broker share the\n"
               "machine's cores, so these are CPU ceilings of this machine, not radio or\n"
               "network limits; a Raspberry Pi is several times slower per core, which the\n"
               "ratios carry over.\n")
    out.append(f"Last run: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
               f"commit {rev}, {platform.machine()}, {cpu}.\n")
    out.append("| measure | value | unit | ceiling | ratio | goal | note |")
    out.append("| --- | ---: | --- | --- | ---: | --- | --- |")
    for key, what, unit, ceil, goal, note in ROWS:
        if key not in results:
            continue
        v = results[key]
        if ceil is None:
            out.append(f"| {what} | {v:,.0f} | {unit} | (is one) | | | {note} |")
            continue
        if ceil == "":
            verdict = "" if goal is None else (f"≤ {goal:,.0f} " + ("met" if v <= goal else "**not met**"))
            out.append(f"| {what} | {v:,.3g} | {unit} | | | {verdict} | {note} |")
            continue
        c = results.get(ceil)
        ratio = f"{v / c:,.1f}×" if c else "n/a"
        verdict = ""
        if c and goal is not None:
            verdict = "met" if v / c >= goal else "**not met**"
        out.append(f"| {what} | {v:,.0f} | {unit} | {ceil} | {ratio} | ≥ {goal:g}× {verdict} | {note} |")
    out.append("")
    out.append("How to read it: a ratio of 10× against the D-Bus ceiling means the stage could\n"
               "handle ten times more notifications than the bus can deliver on this machine,\n"
               "so it is not the bottleneck. The rehablinkd rows run the whole daemon on the\n"
               "fake bluetoothd with a real SQLite file and a loopback mosquitto\n"
               "(tests/bench/bench-gateway.py).\n")
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
