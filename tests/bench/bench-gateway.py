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
  disk_bytes_day_live    bytes written per day at the same rates live, on a
                         fresh store, extrapolated from BENCH_LIVE_S (330)
                         seconds: one 5-minute commit
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
LIVE_S = int(os.environ.get("BENCH_LIVE_S", "330"))
PHASES = os.environ.get("BENCH_PHASES", "day live drain").split()
W = "AA:BB:CC:DD:EE:01"


def config(state, backlog_rate=0):
    return f"""[gateway]
id=gw-bench
patient=p-bench
state_dir={state}
clock=synced
[ble]
wearables={W}
[mqtt]
uri=tcp://127.0.0.1:{PORT}
backlog_rate={backlog_rate}
"""


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
            live = Stack(BIN, d, [W], "clock synced\nposture-period 1s\nsteps-period 60s\n"
                         "capacity 600\ndefault upright flexion 10\n",
                         ["--start", time.strftime("%H:%M:%S", time.gmtime())])
            try:
                live.write_config(config(os.path.join(d, "state")))
                p = live.gw_start()
                time.sleep(30)
                w0 = proc_io(p.pid)["write_bytes"]
                t1 = time.monotonic()
                time.sleep(LIVE_S)
                out["disk_bytes_day_live"] = ((proc_io(p.pid)["write_bytes"] - w0) * 86400 /
                                              (time.monotonic() - t1))
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
