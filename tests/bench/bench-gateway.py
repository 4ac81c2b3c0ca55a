#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
make bench: rehablinkd's durable path on real parts (fake bluetoothd, SQLite,
a loopback mosquitto), printing "key value" lines for report.py:

  drain_72h_per_s        the outbox after a 72 h broker outage of one
                         wearable (72 x 60 minute aggregates + 3 days), in
                         messages a second from the first to the last
                         arrival; backlog_rate 0 (no limit)
  drain_100k_per_s       the same for a backlog of 100 000 messages
  day_sync_s             a day of 1 Hz posture and per-minute steps records
                         (87 840), delivered by one history sync: gateway
                         start to every record durable and every aggregate
                         published
  disk_bytes_day_sync    bytes rehablinkd wrote to disk (/proc/PID/io
                         write_bytes) for that day
  disk_bytes_day_live    bytes written per simulated day at the same rates
                         live, on a fresh store: the fake at --speed
                         BENCH_LIVE_SPEED (60) and the commit interval
                         scaled to 300 000 / speed ms (each commit holds
                         what a default 5-minute commit holds at 1 Hz),
                         over BENCH_LIVE_COMMITS (36) commits (3 simulated
                         hours, several WAL checkpoints), from just after a
                         commit to just after the last one
  disk_live_sim_s        the simulated seconds of that window
  cpu_us_per_record      user + system CPU per record for the synced day,
                         from the notification to the PUBACK of its
                         aggregates

usage: bench-gateway.py BINDIR BROKER_PORT
"""
import datetime
import os
import shutil
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "it"))
from itlib import Consumer, Stack, fill_outbox, kind_of, wait_for  # noqa: E402

BIN = os.path.abspath(sys.argv[1])
PORT = int(sys.argv[2])
LIVE_SPEED = float(os.environ.get("BENCH_LIVE_SPEED", "60"))
LIVE_COMMITS = int(os.environ.get("BENCH_LIVE_COMMITS", "36"))
PHASES = os.environ.get("BENCH_PHASES", "day live drain").split()
W = "AA:BB:CC:DD:EE:01"


def config(state, backlog_rate=0, commit_ms=None, clock="synced"):
    return f"""[gateway]
id=gw-bench
patient=p-bench
state_dir={state}
clock={clock}
[ble]
wearables={W}
[mqtt]
uri=tcp://127.0.0.1:{PORT}
backlog_rate={backlog_rate}
""" + (f"[store]\ncommit_interval_ms={int(commit_ms)}\n" if commit_ms else "")


def proc_io(pid):
    with open(f"/proc/{pid}/io") as f:
        return {k: int(v) for k, v in (line.split(": ") for line in f)}


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain(stack, consumer, state, n):
    """n messages in the outbox, then the gateway started: the rate."""
    ids = set(fill_outbox(os.path.join(state, "rehablink.db"),
                          "rehablink/v1/gw-bench/patient/p-bench/aggregate/minute", n))
    stack.gw_start()

    def arrivals():
        return [m for m in consumer.snapshot_raw() if m[1] in ids]
    wait_for(lambda: len({m[1] for m in arrivals()}) >= n, 300, step=0.2)
    got = arrivals()
    stack.gw_stop()
    if len({m[1] for m in got}) < n:
        return None
    return (n - 1) / max(1e-6, got[-1][0] - got[0][0])


def main():
    tmp = tempfile.mkdtemp(prefix="rehablink-bench-gw-")
    stack = consumer = None
    out = {}
    try:
        yesterday = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)).date()
        stack = Stack(BIN, tmp, [W],
                      f"date {yesterday}\nclock synced\nposture-period 1s\nsteps-period 60s\n"
                      "capacity 100000\ndefault upright flexion 10\n"
                      "every 20m from 06:00 to 22:00 walk 5m cadence 80 flexion 20\n",
                      ["--start", "23:59:59"])
        consumer = Consumer(PORT, tmp, keep_raw=True)
        consumer.start()

        # ---- a day by history sync ----
        state = os.path.join(tmp, "day")
        stack.write_config(config(state))
        t0 = time.monotonic()
        p = stack.gw_start()
        db = os.path.join(state, "rehablink.db")

        def synced():
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
                n = con.execute("SELECT count(*) FROM records").fetchone()[0]
                con.close()
            except sqlite3.Error:
                return None
            days = [m for m in consumer.snapshot() if kind_of(m[2]) == "aggregate_day"]
            # every record durable, the day and its minutes published (the
            # outbox rows' deletes wait for the next commit: not counted)
            return n if n >= 87000 and days and len(consumer.snapshot_raw()) >= 1441 else None
        n = wait_for(synced, 600, step=0.5) if "day" in PHASES else None
        if n:
            out["day_sync_s"] = time.monotonic() - t0
            out["disk_bytes_day_sync"] = proc_io(p.pid)["write_bytes"]
            out["cpu_us_per_record"] = proc_cpu_s(p.pid) * 1e6 / n
            out["day_sync_records"] = n
        stack.gw_stop()

        # ---- the same rates live, on a fresh store (the synced day's
        # last commit and checkpoint would count otherwise) ----
        if "live" in PHASES:
            # a wearable of its own: the first one still holds the synced
            # day until a gateway tells it to delete, and a new store
            # would sync it all again
            d = os.path.join(tmp, "live")
            os.makedirs(d)
            # the wearable's day starts yesterday at 00:00 and runs at
            # LIVE_SPEED: its records stay in the past, so that their
            # minute windows close as they would live (the gateway runs
            # with clock=unsynced so that it never sets the wearable's
            # clock to now: records ahead of its clock would sit in open
            # windows and never be published)
            live = Stack(BIN, d, [W], f"date {yesterday}\nclock synced\nposture-period 1s\n"
                         "steps-period 60s\ncapacity 600\ndefault upright flexion 10\n",
                         ["--start", "00:00:01", "--speed", str(LIVE_SPEED)])
            try:
                commit_s = 300 / LIVE_SPEED
                live.write_config(config(os.path.join(d, "state"), commit_ms=commit_s * 1000,
                                         clock="unsynced"))
                t_start = time.monotonic()
                p = live.gw_start()
                # the commit timer runs from start-up: begin a quarter
                # interval after the 2nd commit, end as far after the last
                k0 = 2
                time.sleep(max(0.0, t_start + (k0 + 0.25) * commit_s - time.monotonic()))
                w0 = proc_io(p.pid)["write_bytes"]
                t1 = time.monotonic()
                time.sleep(max(0.0, t_start + (k0 + LIVE_COMMITS + 0.25) * commit_s - time.monotonic()))
                w1 = proc_io(p.pid)["write_bytes"]
                sim_s = (time.monotonic() - t1) * LIVE_SPEED
                out["disk_bytes_day_live"] = (w1 - w0) * 86400 / sim_s
                out["disk_live_sim_s"] = sim_s
                live.gw_stop()
            finally:
                live.close()

        # ---- drains ----
        for key, n in (("drain_72h_per_s", 72 * 60 + 3), ("drain_100k_per_s", 100000)):
            if "drain" not in PHASES:
                break
            state = os.path.join(tmp, key)
            stack.write_config(config(state))
            stack.gw_start()
            wait_for(lambda: os.path.exists(os.path.join(state, "rehablink.db")), 10)
            time.sleep(1)
            stack.gw_stop()
            r = drain(stack, consumer, state, n)
            if r:
                out[key] = r
    finally:
        if stack:
            stack.close()
        if consumer:
            consumer.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    for k, v in out.items():
        print(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}")


if __name__ == "__main__":
    main()
