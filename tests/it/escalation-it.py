#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The escalation path end to end on real parts (fake bluetoothd, rehablinkd,
SQLite, a real mosquitto, a subscriber playing the clinic):

  backlog   100 000 telemetry messages wait in the outbox (a long outage);
            a pain 8 is reported: its urgent alert reaches the clinic
            within seconds, ahead of the backlog
  renotify  nobody acknowledges: the same alert_id is re-notified after
            rules.renotify_urgent_min (1 min here), then moved up to
            emergency at the second (rules.tier_up_after_urgent = 2)
  ack       the clinic acknowledges and then resolves: the gateway
            publishes both states, and no further re-notification comes
  fallback  the broker is down; a red flag is reported: the local fallback
            command runs (it writes the alert id to a file)
  full      the store is far over its budget (1 MiB against the backlog):
            a pain 8 still raises an alert that reaches the clinic

usage: escalation-it.py BINDIR
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itlib import (Broker, Consumer, Stack, Validators, fill_outbox, kind_of,  # noqa: E402
                   teardown, wait_for)

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/native/bin")
BACKLOG = int(os.environ.get("IT_BACKLOG", "100000"))
GW = "gw-esc"
W = "AA:BB:CC:DD:EE:01"
failures = []


def check(ok, what, detail=""):
    print(f"{'PASS' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}", flush=True)
    if not ok:
        failures.append(what)
    return ok


def alerts(consumer, pred=lambda a: True):
    return [m[2] for m in consumer.snapshot() if kind_of(m[2]) == "alert" and pred(m[2])]


def fill_backlog(db, n):
    fill_outbox(db, f"rehablink/v1/{GW}/patient/p-esc/aggregate/minute", n)


def main():
    tmp = tempfile.mkdtemp(prefix="rehablink-esc-")
    stack = broker = consumer = None
    try:
        broker = Broker(tmp)
        broker.start()
        consumer = Consumer(broker.port, tmp)
        consumer.start()
        stack = Stack(BIN, tmp, [W], "posture-period 10s\nsteps-period 60s\nclock unsynced\n",
                      ["--start", time.strftime("%H:%M:%S", time.gmtime())])
        state = os.path.join(tmp, "state")

        def config(budget_mb=0):
            stack.write_config(f"""[gateway]
id={GW}
patient=p-esc
state_dir={state}
clock=synced
[ble]
wearables={W}
[mqtt]
uri=tcp://127.0.0.1:{broker.port}
keepalive_s=5
backlog_rate=1000
[store]
commit_interval_ms=1000
budget_mb={budget_mb}
[rules]
renotify_urgent_min=1
tier_up_after_urgent=2
min_notify_interval_min=0
unreachable_grace_s=5
fallback_urgent_min=0
[escalation]
fallback_command=echo "$REHABLINK_ALERT_ID $REHABLINK_ALERT_TIER" >> {tmp}/fallback.log
""")
        config()
        stack.gw_start()
        wait_for(lambda: os.path.exists(os.path.join(state, "rehablink.db")), 10)
        time.sleep(2)
        stack.gw_stop()
        fill_backlog(os.path.join(state, "rehablink.db"), BACKLOG)
        stack.gw_start()
        wait_for(lambda: any(kind_of(m[2]) == "wearable_status" and m[2]["link"] == "live"
                             for m in consumer.snapshot()), 30)

        # ---- backlog ----
        t0 = time.monotonic()
        stack.apply("pain 8")
        first = wait_for(lambda: alerts(consumer, lambda a: a["rule"] == "pain.severe"), 15)
        n_backlog = sum(1 for m in consumer.snapshot() if kind_of(m[2]) == "aggregate_minute")
        check(bool(first), "backlog: the urgent alert arrives ahead of the backlog",
              f"{time.monotonic() - t0:.2f} s after the report, {n_backlog} of {BACKLOG} backlog "
              "messages delivered by then")
        if not first:
            return 1
        aid = first[0]["alert_id"]

        # ---- renotify and tier-up ----
        def notes():
            return sorted({a["notification"]: a for a in alerts(consumer, lambda a: a["alert_id"] == aid)}.items())
        n2 = wait_for(lambda: len(notes()) >= 3, 200, step=1)
        ns = notes()
        check(n2 and ns[1][1]["tier"] == "urgent" and ns[2][1]["tier"] == "emergency",
              "renotify: re-notified, then moved up a tier, under the same alert_id",
              ", ".join(f"#{n} {a['tier']} {a['state']}" for n, a in ns))

        # ---- ack and resolve ----
        def ack(action):
            msg = {"schema": "rehablink/alert_ack/1", "msg_id": str(uuid.uuid4()),
                   "event_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "gateway_id": GW, "alert_id": aid, "action": action, "by": "dr-esc",
                   "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
                            "-t", f"rehablink/v1/{GW}/cmd/alert-ack", "-m", json.dumps(msg)],
                           check=True)
        ack("acknowledge")
        acked = wait_for(lambda: alerts(consumer, lambda a: a["alert_id"] == aid
                                        and a["state"] == "acknowledged"), 10)
        check(bool(acked) and acked[0]["ack"]["by"] == "dr-esc", "ack: acknowledged, who recorded")
        ack("resolve")
        res = wait_for(lambda: alerts(consumer, lambda a: a["alert_id"] == aid
                                      and a["state"] == "resolved"), 10)
        n_after = len(notes())
        time.sleep(70)
        check(bool(res) and len(notes()) == n_after, "ack: resolved, and no re-notification after",
              f"{n_after} notifications")

        # ---- fallback ----
        broker.stop()
        time.sleep(1)
        stack.apply("pain 2 flags chest")
        fb = os.path.join(tmp, "fallback.log")
        ran = wait_for(lambda: os.path.exists(fb) and "emergency" in open(fb).read(), 30)
        check(bool(ran), "fallback: the local command ran for the red flag while the broker was down",
              open(fb).read().strip().replace("\n", "; ") if os.path.exists(fb) else "no file")
        broker.start()
        consumer.stop()
        consumer.start()
        red = wait_for(lambda: alerts(consumer, lambda a: a["rule"] == "pain.red_flag"), 30)
        check(bool(red), "fallback: the emergency alert reaches the clinic once the broker is back")

        # ---- full ----
        stack.gw_stop()
        db = os.path.join(state, "rehablink.db")
        fill_backlog(db, BACKLOG // 4)
        config(budget_mb=1)
        stack.gw_start()
        time.sleep(3)
        n_sev = len(alerts(consumer, lambda a: a["rule"] == "pain.severe"))
        stack.apply("pain 9")
        got = wait_for(lambda: len(alerts(consumer, lambda a: a["rule"] == "pain.severe")) > n_sev, 20)
        size = sum(os.path.getsize(os.path.join(state, f)) for f in os.listdir(state)
                   if f.startswith("rehablink.db"))
        check(bool(got), "full: an alert still goes out with the store over its budget",
              f"store {size / 1e6:.1f} MB against a budget of 1 MiB")
        stack.gw_stop(signal.SIGTERM)

        val = Validators()
        bad = [(m[0], val.errors(m[2])[0]) for m in consumer.snapshot()
               if m[2] is not None and "/cmd/" not in m[0] and kind_of(m[2]) == "alert"
               and val.errors(m[2])]
        check(not bad, "every alert payload valid against its schema", str(bad[:1]))
    finally:
        teardown(tmp, failures, (stack, broker, consumer))
    print("RESULT:", "FAIL" if failures else "PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
