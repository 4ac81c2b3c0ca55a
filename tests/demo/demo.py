#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
make demo: the real gateway on an embedded default. A private bus with the
fake bluetoothd serving one simulated wearable (post-operative day 3), a
mosquitto on a free loopback port, rehablinkd, and a subscriber playing the
clinic, which prints what arrives and acknowledges alerts like a surgeon's
dashboard would. During the run the patient reports pain 8, then a red
flag; the clinic sees the pain reports and the alerts, acknowledges them,
and sees the acknowledgement come back.

usage: demo.py BINDIR [SECONDS]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "it"))
from itlib import Broker, Consumer, Stack, Validators, kind_of  # noqa: E402

BIN = os.path.abspath(sys.argv[1])
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 75
GW = "gw-demo"
W = "AA:BB:CC:DD:EE:01"


def line(p):
    k = kind_of(p)
    if k == "gateway_status":
        return f"gateway {p['gateway_id']} {p['state']}, clock synced: {p['clock_synced']}"
    if k == "wearable_status":
        return (f"wearable {p['wearable']}: link {p['link']}, battery {p['battery_pct']}, "
                f"last seq {p['last_seq']}")
    if k == "aggregate_minute":
        ps = p["posture_s"]
        return (f"minute {p['start'][11:16]} UTC: {p['steps']} steps, upright {ps['upright']} s, "
                f"flexed {ps['flexed']} s, >30 deg {p['flexed_over_30_s']} s (rev {p['revision']})")
    if k == "aggregate_day":
        return f"day {p['local_date']}: {p['steps']} steps (rev {p['revision']})"
    if k == "pain":
        flags = ",".join(p["flags"]) or "none"
        return f"PAIN {p['score']}/10 from {p['wearable']} (flags: {flags}, red flag: {p['red_flag']})"
    if k == "alert":
        trig = ", ".join(f"{k}={v}" for k, v in p["trigger"].items())
        c = p["context"]
        ctx = (f"; context: {len(c['pain_24h'])} pain reports in 24 h, steps today "
               f"{c['steps_today']}, flexed {c['flexed_s_2h']} s in 2 h, battery {c['battery_pct']}%")
        return (f"ALERT {p['tier'].upper()} {p['rule']} #{p['notification']} state {p['state']} "
                f"[{trig}]" + (f" acknowledged by {p['ack']['by']}" if p.get("ack") else ctx))
    if k == "error":
        return f"error reply: {p['code']}: {p['detail']}"
    if k == "config_state":
        return f"config state: {len(p['settings'])} settings"
    return k or "?"


def main():
    tmp = tempfile.mkdtemp(prefix="rehablink-demo-")
    stack = broker = consumer = None
    ok = True
    try:
        broker = Broker(tmp)
        broker.start()
        print(f"demo: mosquitto on 127.0.0.1:{broker.port}; fake bluetoothd with one wearable; "
              "rehablinkd", flush=True)
        consumer = Consumer(broker.port, tmp)
        consumer.start()
        stack = Stack(BIN, tmp, [W],
                      "day 3\nposture-period 5s\nsteps-period 60s\nclock unsynced\n"
                      "default reclined flexion -35\n"
                      "every 4m from 00:00 to 23:59 walk 2m cadence 70 flexion 25\n",
                      ["--start", time.strftime("%H:%M:%S", time.gmtime())])
        stack.write_config(f"""[gateway]
id={GW}
patient=p-demo
state_dir={tmp}/state
clock=synced
[ble]
wearables={W}
aliases=trunk
[mqtt]
uri=tcp://127.0.0.1:{broker.port}
[store]
commit_interval_ms=2000
""")
        stack.gw_start()
        val = Validators()
        shown = 0
        acked = set()
        t0 = time.monotonic()
        recent = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 180))
        history = 0
        events = [(15, "pain 8 flags medication", "the patient reports pain 8"),
                  (35, "pain 3 flags breathlessness", "the patient reports breathlessness (a red flag)")]
        while time.monotonic() - t0 < SECONDS:
            el = time.monotonic() - t0
            while events and el >= events[0][0]:
                _, stmt, what = events.pop(0)
                print(f"[{el:5.1f}s] wearable: {what}", flush=True)
                stack.apply(stmt)
            msgs = consumer.snapshot()
            for topic, retained, p, raw in msgs[shown:]:
                if p is None:
                    continue
                errs = val.errors(p)
                if errs:
                    ok = False
                    print(f"[{el:5.1f}s] clinic: INVALID {topic}: {errs[0]}")
                if "/cmd/" in topic and kind_of(p) != "error":
                    continue
                if kind_of(p) == "aggregate_minute" and p["start"] < recent:
                    history += 1    # synced from the wearable's flash
                    continue
                print(f"[{el:5.1f}s] clinic: {line(p)}", flush=True)
                if kind_of(p) == "alert" and p["state"] == "open" and p["alert_id"] not in acked:
                    acked.add(p["alert_id"])
                    ack = {"schema": "rehablink/alert_ack/1", "msg_id": str(uuid.uuid4()),
                           "event_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "gateway_id": GW, "alert_id": p["alert_id"], "action": "acknowledge",
                           "by": "dr-demo", "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "note": "called the patient"}
                    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port),
                                    "-q", "1", "-t", f"rehablink/v1/{GW}/cmd/alert-ack",
                                    "-m", json.dumps(ack)], check=True)
                    print(f"[{el:5.1f}s] clinic: acknowledging {p['rule']} as dr-demo", flush=True)
            shown = len(msgs)
            if history and el > 10:
                print(f"[{el:5.1f}s] clinic: (and {history} minute aggregates of earlier hours, "
                      "synced from the wearable's memory)", flush=True)
                history = 0
            time.sleep(0.2)
        ctl = os.path.join(BIN, "rehablinkctl")
        if os.path.exists(ctl):
            print("demo: what a technician sees over SSH: rehablinkctl status", flush=True)
            r = subprocess.run([ctl, "--no-color", "status"], env=stack.env, capture_output=True,
                               text=True, timeout=30)
            for ln in (r.stdout + r.stderr).splitlines():
                print(f"    {ln}")
            if r.returncode not in (0, 1) or "rehablinkd" not in r.stdout:
                ok = False
                print(f"demo: FAILED: rehablinkctl status exited {r.returncode}")
        stack.gw_stop()
        time.sleep(0.5)
        msgs = [m for m in consumer.snapshot() if m[2] is not None]
        kinds = [kind_of(m[2]) for m in msgs]
        pains = kinds.count("pain")
        alerts = [m[2] for m in msgs if kind_of(m[2]) == "alert"]
        print(f"demo: the clinic received {len(msgs)} messages: {pains} pain reports, "
              f"{kinds.count('aggregate_minute')} minute aggregates, {len(alerts)} alert messages")
        if pains < 2:
            ok = False
            print("demo: FAILED: the pain reports did not reach the clinic")
        tiers = {(a["rule"], a["tier"], a["state"]) for a in alerts}
        for want in (("pain.severe", "urgent", "open"), ("pain.severe", "urgent", "acknowledged"),
                     ("pain.red_flag", "emergency", "open"),
                     ("pain.red_flag", "emergency", "acknowledged")):
            if want not in tiers:
                ok = False
                print(f"demo: FAILED: no {want[0]} alert, {want[1]}, {want[2]}, reached the clinic")
    finally:
        for x in (stack, broker, consumer):
            if x:
                x.close() if x is stack else x.stop()
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"demo: logs in {tmp}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
