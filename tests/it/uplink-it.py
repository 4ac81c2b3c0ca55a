#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The durable path end to end, on real parts: a private dbus-daemon, the fake
bluetoothd serving two simulated wearables, rehablinkd with its SQLite
store, a real mosquitto on a free loopback port, and a consumer
(mosquitto_sub) that checks every message.

Phases (each prints PASS/FAIL lines; exit 0 only if all pass):
  live      the birth, wearable status, a pain report within seconds,
            minute aggregates; every payload valid against its schema
  outage    the broker stopped for IT_OUTAGE_S (default 20) seconds while
            data and a pain report arrive, then started: everything
            queued arrives
  kills     a backlog of IT_BACKLOG (default 20000) messages in the
            outbox; rehablinkd SIGKILLed IT_KILLS (default 8) times while
            it drains, restarted each time: every message arrives, first
            arrivals in queue order, duplicates only under the same id;
            the last will (offline, retained) seen after a kill
  clinic    bad JSON (sent while the gateway is down: its persistent
            session keeps it), a bad schema and an unknown alert on cmd/
            topics are answered on cmd/error with the right code
  corrupt   garbage over the store's first page: the gateway moves it
            aside, starts fresh and pain reports still go out
  account   against the store (the ground truth of what was produced):
            every aggregate revision and every pain report delivered under
            one msg_id, the outbox empty, each wearable's records
            contiguous up to its cursor

usage: uplink-it.py BINDIR
"""
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itlib import (Broker, Consumer, Stack, Validators, fill_outbox, kind_of,  # noqa: E402
                   teardown, wait_for)

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/native/bin")
OUTAGE_S = float(os.environ.get("IT_OUTAGE_S", "20"))
BACKLOG = int(os.environ.get("IT_BACKLOG", "20000"))
KILLS = int(os.environ.get("IT_KILLS", "8"))
GW = "gw-it"
PATIENT = "p-it"
WEARABLES = ["AA:BB:CC:DD:EE:01", "AA:BB:CC:DD:EE:02"]
ALIASES = ["w1", "w2"]

failures = []


def say(verdict, what, detail=""):
    print(f"{verdict} {what}{': ' + detail if detail else ''}", flush=True)
    if verdict == "FAIL":
        failures.append(what)


def check(ok, what, detail=""):
    say("PASS" if ok else "FAIL", what, detail)
    return ok


def main():
    tmp = tempfile.mkdtemp(prefix="rehablink-it-")
    stack = broker = consumer = None
    try:
        stack = Stack(BIN, tmp, WEARABLES,
                      "posture-period 1s\nsteps-period 10s\nclock unsynced\n"
                      "default upright flexion 10\n"
                      "every 2m from 00:00 to 23:59 walk 1m cadence 80 flexion 35\n",
                      ["--start", time.strftime("%H:%M:%S", time.gmtime())])
        broker = Broker(tmp)
        broker.start()
        consumer = Consumer(broker.port, tmp)
        consumer.start()
        val = Validators()

        state = os.path.join(tmp, "state")
        stack.write_config(f"""[gateway]
id={GW}
patient={PATIENT}
state_dir={state}
clock=synced
[ble]
wearables={';'.join(WEARABLES)}
aliases={';'.join(ALIASES)}
[mqtt]
uri=tcp://127.0.0.1:{broker.port}
keepalive_s=5
backlog_rate=2000
[store]
commit_interval_ms=500
""")
        gw_start, gw_stop, apply = stack.gw_start, stack.gw_stop, stack.apply

        # ---- live ----
        gw_start()
        online = wait_for(lambda: consumer.find(
            lambda m: kind_of(m[2]) == "gateway_status" and m[2]["state"] == "online"), 20)
        check(bool(online), "live: birth", "gateway status online")
        live = wait_for(lambda: len({m[2]["wearable"] for m in consumer.find(
            lambda m: kind_of(m[2]) == "wearable_status" and m[2]["link"] == "live")}) == 2, 30)
        check(live, "live: both wearables live")
        t0 = time.monotonic()
        apply("pain 8 flags chest")
        pains = wait_for(lambda: (lambda p: p if len(p) >= 2 else None)(
            consumer.find(lambda m: kind_of(m[2]) == "pain")), 10) or []
        check(len(pains) >= 2, "live: pain report",
              f"{len(pains)} pain messages {time.monotonic() - t0:.2f} s after the indication")
        aggs = wait_for(lambda: len({m[2]["aggregate_id"].split(":")[0] for m in consumer.find(
            lambda m: kind_of(m[2]) == "aggregate_minute")}) == 2, 90, step=0.5)
        check(aggs, "live: minute aggregates from both wearables")

        # ---- outage ----
        broker.stop()
        t_down = time.monotonic()
        apply("pain 6")
        time.sleep(OUTAGE_S)
        broker.start()
        consumer.stop()
        consumer.start()   # persistent session (-c): what was queued for it arrives
        pains_after = wait_for(lambda: len(consumer.find(lambda m: kind_of(m[2]) == "pain"
                                                          and m[2]["score"] == 6)) >= 2, 30)
        check(pains_after, "outage: the pain report made during the outage arrived",
              f"outage {time.monotonic() - t_down:.0f} s")

        # ---- kills ----
        gw_stop()
        db = os.path.join(state, "rehablink.db")
        sample = consumer.find(lambda m: kind_of(m[2]) == "aggregate_minute")[0]
        backlog_ids = fill_backlog(db, sample, BACKLOG)
        gw_start()
        kills = 0
        while kills < KILLS:
            time.sleep(random.uniform(0.3, 1.5))
            gw_stop(signal.SIGKILL)
            kills += 1
            gw_start()
        wills = wait_for(lambda: consumer.find(lambda m: kind_of(m[2]) == "gateway_status"
                                               and m[2]["state"] == "offline"), 10)
        check(bool(wills), "kills: the last will (offline status) seen after a kill",
              f"{len(wills)} offline status messages")

        def backlog_seen():
            seen = {m[2]["msg_id"] for m in consumer.find(lambda m: kind_of(m[2]) == "aggregate_minute")}
            return len(backlog_ids - seen) == 0
        t_drain = time.monotonic()
        ok = wait_for(backlog_seen, 180, step=0.5)
        got = consumer.find(lambda m: kind_of(m[2]) == "aggregate_minute" and m[2]["msg_id"] in backlog_ids)
        seen = {m[2]["msg_id"] for m in got}
        check(ok, "kills: every backlog message arrived",
              f"{len(seen)}/{len(backlog_ids)} after {KILLS} SIGKILLs, "
              f"{len(got) - len(seen)} duplicates (same msg_id), drain {time.monotonic() - t_drain:.1f} s")
        order = [backlog_index[m[2]["msg_id"]] for m in got]
        first, seen_i = [], set()
        for i in order:
            if i not in seen_i:
                seen_i.add(i)
                first.append(i)
        check(first == sorted(first), "kills: first arrivals in queue order")

        # ---- clinic ----
        cmd = f"rehablink/v1/{GW}/cmd/"

        def pub(topic, payload):
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
                            "-t", cmd + topic, "-m", payload], check=True)
        bad_ack = {"schema": "rehablink/alert_ack/1", "msg_id": str(uuid.uuid4()),
                   "event_time": "2026-11-27T10:00:00Z", "gateway_id": GW,
                   "alert_id": "no-such-alert", "action": "acknowledge", "by": "dr-x",
                   "at": "2026-11-27T10:00:00Z"}
        # the gateway away: its persistent session keeps the command
        gw_stop(signal.SIGKILL)
        pub("alert-ack", "{not json")
        gw_start()
        pub("config", json.dumps({"schema": "rehablink/config/1", "msg_id": str(uuid.uuid4()),
                                  "event_time": "2026-11-27T10:00:00Z", "gateway_id": GW,
                                  "settings": {"a": 1}, "extra": 1}))
        pub("alert-ack", json.dumps(bad_ack))
        errs = wait_for(lambda: (lambda e: e if len(e) >= 3 else None)(
            consumer.find(lambda m: kind_of(m[2]) == "error")), 15)
        codes = sorted(m[2]["code"] for m in (errs or []))
        check(codes == ["bad_json", "bad_schema", "unknown_alert"], "clinic: refused and answered",
              f"codes {codes}")
        ack_err = [m for m in (errs or []) if m[2]["code"] == "unknown_alert"]
        check(bool(ack_err) and ack_err[0][2]["rejected_msg_id"] == bad_ack["msg_id"],
              "clinic: the error names the refused message")

        # ---- account ----
        gw_stop()
        offline = consumer.find(lambda m: kind_of(m[2]) == "gateway_status" and m[2]["state"] == "offline")
        check(len(offline) > len(wills or []), "account: a clean stop publishes the offline status")
        time.sleep(1)
        account(db, consumer, val)

        # ---- corrupt ----
        with open(db, "r+b") as f:
            f.seek(0)
            f.write(os.urandom(4096))
        n_online = len(consumer.find(lambda m: kind_of(m[2]) == "gateway_status"
                                     and m[2]["state"] == "online"))
        gw_start()
        back = wait_for(lambda: len(consumer.find(lambda m: kind_of(m[2]) == "gateway_status"
                                                  and m[2]["state"] == "online")) > n_online, 20)
        aside = [f for f in os.listdir(state) if ".corrupt-" in f]
        check(back and aside, "corrupt: a corrupt store is moved aside and the gateway starts fresh",
              f"moved to {aside}")
        n_pain = len(consumer.find(lambda m: kind_of(m[2]) == "pain"))
        time.sleep(2)
        apply("pain 9 flags bleeding")
        p2 = wait_for(lambda: len(consumer.find(lambda m: kind_of(m[2]) == "pain")) >= n_pain + 2, 15)
        check(p2, "corrupt: pain reports still reach the clinic")
        gw_stop()
    finally:
        teardown(tmp, failures, (stack, broker, consumer))
    print("RESULT:", "FAIL" if failures else "PASS")
    return 1 if failures else 0


backlog_index = {}


def fill_backlog(db, sample, n):
    """n copies of a real minute aggregate in the outbox."""
    topic, _, p, _ = sample
    ids = fill_outbox(db, topic, n, payload=lambda i, m: dict(
        p, msg_id=m, aggregate_id=f"{p['aggregate_id']}:backlog{i}"))
    backlog_index.update(ids)
    return set(ids)


def account(db, consumer, val):
    # what the gateway published (the test's own cmd/ messages are inputs)
    msgs = [m for m in consumer.snapshot()
            if not m[0].endswith(("/cmd/alert-ack", "/cmd/config"))]
    bad = [(t, raw[:80]) for t, _, p, raw in msgs if p is None]
    invalid = []
    for t, _, p, raw in msgs:
        if p is not None:
            e = val.errors(p)
            if e:
                invalid.append((t, e[0]))
    check(not bad and not invalid, "account: every payload is JSON valid against its schema",
          f"{len(msgs)} messages, {len(bad)} not JSON, {len(invalid)} invalid"
          + (f"; first: {invalid[0]}" if invalid else ""))
    con = sqlite3.connect(db, timeout=10)
    # aggregates: every (id, revision) in the store delivered, under one msg_id
    by_key = {}
    for _, _, p, _ in msgs:
        if kind_of(p) in ("aggregate_minute", "aggregate_day"):
            by_key.setdefault((p["aggregate_id"], p["revision"]), set()).add(p["msg_id"])
    rows = con.execute("SELECT aggregate_id, revision FROM aggregates").fetchall()
    missing = [r for r in rows if (r[0], r[1]) not in by_key]
    multi = [k for k, v in by_key.items() if len(v) > 1]
    check(rows and not missing and not multi, "account: aggregates",
          f"{len(rows)} in the store, {len(missing)} never delivered, {len(multi)} under two ids")
    # pain: every pain record in the store delivered once per (wearable, seq)
    pains = {}
    for _, _, p, _ in msgs:
        if kind_of(p) == "pain":
            pains.setdefault((p["wearable"], p["seq"]), set()).add(p["msg_id"])
    stored = con.execute("SELECT w.name, r.seq FROM records r JOIN wearables w ON w.id = r.wearable_id "
                         "WHERE r.type = 3").fetchall()
    alias = {a.replace(":", ""): ALIASES[i] for i, a in enumerate(WEARABLES)}
    lost = [s for s in stored if (alias.get(s[0], s[0]), s[1]) not in pains]
    multi = [k for k, v in pains.items() if len(v) > 1]
    check(stored and not lost and not multi, "account: pain reports",
          f"{len(stored)} in the store, {len(lost)} never delivered, {len(multi)} under two ids")
    left = con.execute("SELECT count(*) FROM outbox").fetchone()[0]
    check(left == 0, "account: the outbox drained", f"{left} left")
    for w in WEARABLES:
        wid = w.replace(":", "")
        seqs = [r[0] for r in con.execute("SELECT r.seq FROM records r JOIN wearables w "
                                          "ON w.id = r.wearable_id WHERE w.name = ? ORDER BY r.seq",
                                          (wid,))]
        cur = con.execute("SELECT seq FROM cursors WHERE wearable = ?", (wid,)).fetchone()
        below = [s for s in seqs if cur and s <= cur[0]]
        gaps = sum(1 for a, b in zip(below, below[1:]) if b != a + 1)
        check(cur is not None and below and gaps == 0 and len(set(seqs)) == len(seqs),
              f"account: {alias[wid]} records contiguous up to the cursor",
              f"{len(seqs)} records, cursor {cur[0] if cur else None}, {gaps} gaps")
    con.close()


if __name__ == "__main__":
    sys.exit(main())
