#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
make bench: the escalation path's latency, from a pain report arriving at
rehablinkd (its record handed to the store) to the broker's PUBACK of the
alert it raised or updated, as rehablinkd measures it (logged at stop).
Red-flag reports are used: every one is an emergency notification (no rate
limit), so each report is one measured escalation. Run twice: with an
empty outbox, and behind a backlog of 100 000 telemetry messages draining
at the default rate. Also measures the ceiling the escalation path cannot
beat: one durable SQLite commit (a one-row insert, WAL, synchronous=FULL,
as the store) in the same directory, so on the same file system and disk.
Prints "key value" lines for report.py.

usage: bench-escalation.py BINDIR BROKER_PORT [REPORTS]
"""
import os
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "it"))
from itlib import Consumer, Stack, fill_outbox, kind_of, wait_for  # noqa: E402

BIN = os.path.abspath(sys.argv[1])
PORT = int(sys.argv[2])
REPORTS = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
W = "AA:BB:CC:DD:EE:01"
FLAGS = ["breathlessness", "chest", "calf", "fever", "bleeding"]


def run(tmp, backlog):
    d = os.path.join(tmp, f"b{backlog}")
    os.makedirs(d)
    stack = Stack(BIN, d, [W], "posture-period 60s\nsteps-period 60s\n",
                  ["--start", time.strftime("%H:%M:%S", time.gmtime())])
    consumer = Consumer(PORT, d, keep_raw=True)
    try:
        consumer.start()
        state = os.path.join(d, "state")
        stack.write_config(f"""[gateway]
id=gw-bench-esc
patient=p-bench
state_dir={state}
clock=synced
[ble]
wearables={W}
[mqtt]
uri=tcp://127.0.0.1:{PORT}
[rules]
fallback_enabled=false
""")
        if backlog:
            stack.gw_start()
            wait_for(lambda: os.path.exists(os.path.join(state, "rehablink.db")), 10)
            time.sleep(1)
            stack.gw_stop()
            fill_outbox(os.path.join(state, "rehablink.db"),
                        "rehablink/v1/gw-bench-esc/patient/p-bench/aggregate/minute", backlog)
        stack.gw_start()
        wait_for(lambda: any(kind_of(m[2]) == "wearable_status" and m[2]["link"] == "live"
                             for m in consumer.snapshot()), 30)

        def n_alerts():
            return sum(1 for m in consumer.snapshot() if kind_of(m[2]) == "alert")
        logpath = os.path.join(d, "rehablinkd.log")
        logf = open(logpath, errors="replace")
        logf.seek(0, os.SEEK_END)
        delivered = [0]

        def puback():
            # rehablinkd logs "alert ID: delivered" on the alert's PUBACK
            for line in logf:
                if ": delivered (rule=pain.red_flag" in line:
                    delivered[0] += 1
            return delivered[0]
        for i in range(REPORTS):
            n = n_alerts()
            k = puback()
            stack.apply(f"pain {i % 11} flags {FLAGS[(i // 11) % 5]}")
            # the next report only after this one's PUBACK reached rehablinkd,
            # not merely its arrival at the consumer: rehablinkd times one
            # notification of an alert at a time, and a report sent while
            # the previous notification of the same alert awaits its PUBACK
            # is not timed (the old bench lost 66 of 1000 that way)
            wait_for(lambda: n_alerts() > n and puback() > k, 5, step=0.002)
            if i % 55 == 54:
                time.sleep(1.0)     # the wearable stamps whole seconds: new tuples
        logf.close()
        drained = sum(1 for _ in consumer.snapshot_raw())
        stack.gw_stop()
        log = open(os.path.join(d, "rehablinkd.log")).read()
        m = re.findall(r"escalation latency .*: n (\d+) p50 (\d+) us p99 (\d+) us max (\d+) us", log)
        return (m[-1] if m else None), drained
    finally:
        stack.close()
        consumer.stop()


def commit_ceiling(tmp, n=1000):
    """Latency of one durable commit of a one-row insert, as the store
    commits (WAL, synchronous=FULL, 1 KiB pages), in tmp's file system."""
    path = os.path.join(tmp, "ceiling.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA page_size = 1024")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
    lat = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        db.execute("BEGIN")
        db.execute("INSERT INTO t (v) VALUES (?)", (os.urandom(40),))
        db.execute("COMMIT")
        lat.append((time.perf_counter_ns() - t0) / 1000)
    db.close()
    q = statistics.quantiles(lat, n=100)
    return q[49], q[98]


def main():
    tmp = tempfile.mkdtemp(prefix="rehablink-bench-esc-")
    try:
        p50, p99 = commit_ceiling(tmp)
        print(f"commit_p50_us {p50:.0f}")
        print(f"commit_p99_us {p99:.0f}")
        for key, backlog in (("escalation", 0), ("escalation_backlog", 100000)):
            r, drained = run(tmp, backlog)
            if r:
                n, p50, p99, mx = (int(x) for x in r)
                print(f"{key}_n {n}")
                print(f"{key}_p50_us {p50}")
                print(f"{key}_p99_us {p99}")
                print(f"{key}_max_us {mx}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
