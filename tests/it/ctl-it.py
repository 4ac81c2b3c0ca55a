#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
rehablinkctl end to end, on real parts: a private dbus-daemon (as the
system bus), the fake bluetoothd serving two simulated wearables,
rehablinkd with its store, a real mosquitto and a consumer playing the
clinic. Every command runs as a technician would run it, in text and with
--json (the JSON parsed and checked against what the test set up).

Phases (PASS/FAIL lines; exit 0 only if all pass):
  usage     bad command lines exit 2 with a usage line, --version, --help
  live      status, devices, queue, data (charts, UTF-8 and ASCII),
            test-alert (arrives at the clinic's broker), alerts list/show,
            export CSV and JSON (rows against the records stored), reload,
            pair/forget, doctor on a healthy gateway
  doctor    injected faults, each explained by its own check: a bluetoothd
            main.conf in bredr mode, certificates near expiry, a wearable
            gone silent, the broker stopped, the store over its budget,
            the daemon stopped (status exits 3, doctor's first check fails)

usage: ctl-it.py BINDIR
"""
import csv
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itlib import Broker, Consumer, Stack, kind_of, teardown, wait_for  # noqa: E402

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/native/bin")
CTL = os.path.join(BIN, "rehablinkctl")
GW = "gw-ctl"
PATIENT = "p-ctl"
WEARABLES = ["AA:BB:CC:DD:EE:01", "AA:BB:CC:DD:EE:02"]
ALIASES = ["w1", "w2"]
MASKED = ["XX:XX:XX:XX:EE:01", "XX:XX:XX:XX:EE:02"]

failures = []


def say(verdict, what, detail=""):
    print(f"{verdict} {what}{': ' + detail if detail else ''}", flush=True)
    if verdict == "FAIL":
        failures.append(what)


def check(ok, what, detail=""):
    say("PASS" if ok else "FAIL", what, detail)
    return ok


class Ctl:
    def __init__(self, env, conf):
        self.env = dict(env)
        self.env.pop("NO_COLOR", None)
        self.env["LANG"] = "C.UTF-8"
        self.env["LC_ALL"] = "C.UTF-8"
        self.conf = conf

    def run(self, *args, env=None, timeout=60, conf=True):
        e = dict(self.env)
        e.update(env or {})
        argv = [CTL] + (["--config", self.conf] if conf else []) + list(args)
        p = subprocess.run(argv, env=e, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def json(self, *args, **kw):
        rc, out, err = self.run("--json", *args, **kw)
        try:
            doc = json.loads(out)
        except ValueError:
            doc = None
        return rc, doc, out, err


def check_by_name(doc, name):
    for c in (doc or {}).get("checks", []):
        if c["name"] == name:
            return c
    return {}


def ascii_only(s):
    return all(ord(ch) < 128 for ch in s)


def max_width(s):
    return max((len(line) for line in s.splitlines()), default=0)


def phase_usage(ctl):
    bad = [
        [], ["bogus"], ["status", "extra"], ["status", "--bogus"], ["alerts", "show"],
        ["alerts", "frob"], ["data", "--since", "yesterday"], ["export", "--format", "xml"],
        ["pair"], ["pair", "not-an-address"], ["forget", "AA:BB:CC"], ["--timeout", "0", "status"],
        ["--timeout", "x", "status"], ["doctor", "now"],
    ]
    for args in bad:
        rc, out, err = ctl.run(*args)
        check(rc == 2 and "usage:" in err, f"usage: {' '.join(args) or '(nothing)'} exits 2",
              f"rc {rc}, stderr {err.strip().splitlines()[:1]}")
    rc, out, _ = ctl.run("--version")
    check(rc == 0 and out.startswith("rehablinkctl "), "usage: --version", out.strip())
    rc, out, _ = ctl.run("--help")
    check(rc == 0 and all(c in out for c in ("status", "doctor", "export", "test-alert")),
          "usage: --help lists the commands")
    rc, out, _ = ctl.run("data", "--help")
    check(rc == 0 and "--wearable" in out and "--since" in out, "usage: data --help")


def phase_live(stack, ctl, consumer, state):
    # status
    rc, st, out, err = ctl.json("status")
    check(st is not None and st.get("gateway_id") == GW, "status --json: the daemon's document",
          f"rc {rc} {err.strip()[:200]}")
    st = st or {}
    names = sorted(w.get("alias") for w in st.get("wearables", []))
    check(names == ALIASES, "status --json: the wearables configured", f"{names}")
    check(st.get("broker", {}).get("connected") is True, "status --json: broker connected")
    check(str(st.get("store", {}).get("path", "")).startswith(state),
          "status --json: the store in the state dir", st.get("store", {}).get("path", ""))
    check(rc == 0, "status: exit 0 on a healthy gateway", f"rc {rc}")
    rc, out, err = ctl.run("status")
    check(rc == 0 and "w1" in out and "w2" in out and "broker" in out and "no problems" in out,
          "status: text screen", f"rc {rc}")
    check(max_width(out) <= 80, "status: fits 80 columns", f"widest line {max_width(out)}")
    check("\033[" not in out, "status: no colour when stdout is not a tty")
    print("\n".join("    " + line for line in out.splitlines()))

    # devices
    rc, dv, out, _ = ctl.json("devices")
    ok = isinstance(dv, list) and sorted(d.get("address") for d in dv) == MASKED
    check(rc == 0 and ok, "devices --json: masked addresses", f"{[d.get('address') for d in dv or []]}")
    check(isinstance(dv, list) and all(d.get("records", 0) > 0 and d.get("fresh") for d in dv),
          "devices --json: records arriving, fresh",
          f"{[(d.get('alias'), d.get('records'), d.get('fresh')) for d in dv or []]}")
    rc, out, _ = ctl.run("devices")
    check(rc == 0 and MASKED[0] in out and MASKED[1] in out and max_width(out) <= 80,
          "devices: text table")

    # queue
    rc, q, out, _ = ctl.json("queue")
    check(rc == 0 and isinstance(q, dict) and isinstance(q.get("depth"), int)
          and isinstance(q.get("by_kind"), dict) and isinstance(q.get("head"), list),
          "queue --json", f"depth {q and q.get('depth')}")
    rc, out, _ = ctl.run("queue")
    check(rc == 0 and "depth" in out and "by kind" in out, "queue: text")

    # test-alert: through the whole path to the clinic's broker
    rc, ta, out, err = ctl.json("test-alert")
    aid = (ta or {}).get("alert_id")
    check(rc == 0 and bool(aid), "test-alert --json: an alert id", f"rc {rc} {aid} {err.strip()[:200]}")
    got = wait_for(lambda: consumer.find(lambda m: kind_of(m[2]) == "alert"
                                         and m[2].get("alert_id") == aid), 15)
    check(bool(got), "test-alert: the alert arrived at the broker",
          f"rule {got[0][2].get('rule')}, tier {got[0][2].get('tier')}" if got else "")
    rc, al, out, _ = ctl.json("alerts")
    ids = [a.get("alert_id") for a in al or []] if isinstance(al, list) else []
    rc2, al_all, _, _ = ctl.json("alerts", "list", "--all")
    ids_all = [a.get("alert_id") for a in al_all or []] if isinstance(al_all, list) else []
    check(rc == 0 and rc2 == 0 and aid in ids_all, "alerts --json: the test alert listed",
          f"open {len(ids)}, all {len(ids_all)}")
    rc, out, _ = ctl.run("alerts", "list", "--all")
    check(rc == 0 and aid in out and "test" in out, "alerts list --all: text")
    rc, one, out, _ = ctl.json("alerts", "show", aid)
    check(rc == 0 and isinstance(one, dict) and one.get("alert_id") == aid
          and isinstance(one.get("audit"), list) and len(one["audit"]) > 0,
          "alerts show --json: the alert with its audit",
          f"{len((one or {}).get('audit', []))} audit events")
    rc, out, _ = ctl.run("alerts", "show", aid)
    check(rc == 0 and aid in out and "audit" in out and "raised" in out, "alerts show: text")
    rc, out, err = ctl.run("alerts", "show", "no-such-alert")
    check(rc == 4 and "no-such-alert" not in out, "alerts show unknown: exit 4 (NotFound)",
          f"rc {rc} {err.strip()[:120]}")

    # data: minute aggregates of w1
    def minutes():
        rc, d, _, _ = ctl.json("data", "--wearable", "w1", "--since", "-1h")
        return d if rc == 0 and d and len(d.get("minutes", [])) >= 2 else None
    d = wait_for(minutes, 150, step=2)
    check(bool(d) and d.get("alias") == "w1" and all("posture_s" in m for m in d["minutes"]),
          "data --json: minute aggregates of w1",
          f"{len(d['minutes'])} minutes" if d else "none")
    rc, out, _ = ctl.run("data", "--wearable", "w1", "--since", "-1h")
    check(rc == 0 and "posture" in out and "steps per hour" in out and "\u2588" in out,
          "data: posture bars and steps chart (Unicode blocks)")
    check(max_width(out) <= 80, "data: fits 80 columns", f"widest line {max_width(out)}")
    print("\n".join("    " + line for line in out.splitlines()))
    rc, out, _ = ctl.run("data", "--since", str(int(time.time() - 3600)),
                         env={"LANG": "C", "LC_ALL": "C"})
    check(rc == 0 and "posture" in out and ascii_only(out), "data: ASCII charts without UTF-8")
    rc, out, err = ctl.run("data", "--wearable", "nobody")
    check(rc == 4, "data --wearable unknown: exit 4", f"rc {rc} {err.strip()[:120]}")

    # export: CSV and JSON lines, against the store
    time.sleep(1)
    csvf = os.path.join(state, "..", "export.csv")
    rc, ex, out, err = ctl.json("export", "--format", "csv", "--since", "-1h", "--output", csvf)
    n = (ex or {}).get("records", -1)
    with open(csvf, newline="") as f:
        rows = list(csv.reader(f))
    hdr = rows[0] if rows else []
    check(rc == 0 and hdr == ["wearable", "seq", "type", "event_time", "received_at",
                              "time_quality", "values"],
          "export csv: the header", f"rc {rc} {hdr} {err.strip()[:200]}")
    body = rows[1:]
    check(len(body) == n and n > 0, "export csv: one row per record", f"{len(body)} rows, {n} records")
    check({r[0] for r in body} == set(ALIASES) and all(json.loads(r[6]) is not None for r in body),
          "export csv: both wearables, values as JSON")
    check(oct(os.stat(csvf).st_mode & 0o777) == "0o600", "export: the file is 0600")
    db = os.path.join(state, "rehablink.db")

    def committed():
        con = sqlite3.connect(db, timeout=10)
        c = con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        con.close()
        return c
    # the export reads inside the daemon's open transaction, so it may
    # hold records this connection sees only after the next commit
    stored = wait_for(lambda: (lambda c: c if c >= n else None)(committed()), 15, step=0.5) \
        or committed()
    check(0 < n <= stored, "export csv: no more rows than the store holds (once committed)",
          f"{n} <= {stored}")
    seqs = {}
    for r in body:
        seqs.setdefault(r[0], []).append(int(r[1]))
    check(all(len(s) == len(set(s)) for s in seqs.values()),
          "export csv: no duplicate (wearable, seq)")
    rc, out, err = ctl.run("export", "--format", "json", "--since", "-1h")
    lines = [json.loads(x) for x in out.splitlines() if x.strip()]
    check(rc == 0 and len(lines) >= n and all("seq" in x and "wearable" in x for x in lines),
          "export json to stdout: one object per line", f"{len(lines)} lines; {err.strip()}")

    # reload, pair, forget
    rc, rl, out, _ = ctl.json("reload")
    check(rc == 0 and (rl or {}).get("ok") is True, "reload --json: ok", f"{rl}")
    rc, out, _ = ctl.run("reload")
    check(rc == 0 and "reloaded" in out, "reload: text")
    new = "AA:BB:CC:DD:EE:09"
    rc, pr, out, err = ctl.json("pair", new)
    check(rc == 0 and (pr or {}).get("changed") is True, "pair --json: a new wearable",
          f"rc {rc} {pr} {err.strip()[:160]}")
    # the daemon may restart in place to sync it: wait for the answer
    dv = wait_for(lambda: (lambda r: r[1] if r[0] == 0 and isinstance(r[1], list)
                           and len(r[1]) == 3 else None)(ctl.json("devices")), 20, step=0.5)
    check(bool(dv) and "XX:XX:XX:XX:EE:09" in [d.get("address") for d in dv],
          "pair: listed in devices", f"{len(dv or [])}")
    rc, out, err = ctl.run("forget", new)
    if rc == 3:  # restarting in place after the pair
        time.sleep(2)
        rc, out, err = ctl.run("forget", new)
    check(rc == 0 and "forgotten" in out, "forget: text", f"rc {rc} {out.strip()} {err.strip()[:160]}")
    wait_for(lambda: ctl.run("status")[0] != 3, 20, step=0.5)
    rc, out, err = ctl.run("forget", WEARABLES[0])
    check(rc == 4 and "config" in err, "forget a configured wearable: exit 4, edit the config",
          f"rc {rc} {err.strip()[:160]}")

    # doctor, healthy
    rc, doc, out, _ = ctl.json("doctor")
    fails = [c["name"] for c in (doc or {}).get("checks", []) if c["verdict"] == "fail"]
    check(rc == 0 and doc and doc.get("verdict") in ("ok", "warn") and not fails,
          "doctor --json: no fail on a healthy gateway", f"rc {rc}, verdict "
          f"{(doc or {}).get('verdict')}, fails {fails}")
    for name in ("daemon", "config", "bluetoothd", "adapter", "broker", "mqtt-session",
                 "store", "store-check", "wearable w1", "wearable w2", "outbox"):
        c = check_by_name(doc, name)
        check(c.get("verdict") == "ok", f"doctor: {name} ok", c.get("detail", "missing"))
    hci = check_by_name(doc, "hci")
    check(hci.get("verdict") == "skip" and "AF_BLUETOOTH" in hci.get("detail", ""),
          "doctor: hci skipped, no kernel Bluetooth here", hci.get("detail", ""))
    check(all(set(c) == {"name", "verdict", "detail", "hint"} for c in doc["checks"]),
          "doctor --json: every check has name, verdict, detail, hint")
    rc, out, _ = ctl.run("doctor")
    check(rc == 0 and "verdict:" in out and max_width(out) <= 80, "doctor: text, 80 columns")
    print("\n".join("    " + line for line in out.splitlines()))


def gdbus_fake(stack, method, *args):
    subprocess.run(["gdbus", "call", "--system", "--dest", "org.bluez", "--object-path",
                    "/org/rehablink/fake", "--method", f"org.rehablink.FakeBluez1.{method}"]
                   + list(args), env=stack.env, check=True, capture_output=True)


def fill_critical(db, topic, n, size):
    """n pain-priority messages of size bytes: never shed by the budget."""
    con = sqlite3.connect(db, timeout=10)
    now = int(time.time() * 1e6)
    rows = []
    for i in range(n):
        m = str(uuid.uuid4())
        p = json.dumps({"schema": "rehablink/pain/1", "msg_id": m, "pad": "x" * size})
        rows.append((m, "pain", 2, topic, p.encode(), 1, 0, 0, now, 0))
    con.executemany("INSERT INTO outbox (msg_id, kind, priority, topic, payload, qos, retain, "
                    "expiry_s, created_us, attempts) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    con.commit()
    con.close()


def phase_doctor(stack, ctl, broker, consumer, state, tmp, config):
    # bluetoothd's main.conf in bredr mode: the adapter cannot see LE wearables
    mc = os.path.join(tmp, "main.conf")
    with open(mc, "w") as f:
        f.write("[General]\nControllerMode = bredr\n[Policy]\nAutoEnable=true\n")
    rc, doc, _, _ = ctl.json("doctor", env={"REHABLINKCTL_BLUETOOTH_MAIN_CONF": mc})
    c = check_by_name(doc, "bluez-config")
    check(rc == 1 and c.get("verdict") == "fail" and "ControllerMode" in (c.get("hint") or ""),
          "fault bredr main.conf: bluez-config fails, the hint says ControllerMode",
          c.get("detail", ""))
    with open(mc, "w") as f:
        f.write("[GATT]\nCache = no\n")
    rc, doc, _, _ = ctl.json("doctor", env={"REHABLINKCTL_BLUETOOTH_MAIN_CONF": mc})
    c = check_by_name(doc, "bluez-config")
    check(c.get("verdict") == "warn" and "Cache" in (c.get("hint") or ""),
          "fault GATT Cache = no: bluez-config warns", c.get("detail", ""))

    # certificates: one near expiry (warn), one long valid
    ca, crt = os.path.join(tmp, "ca.crt"), os.path.join(tmp, "gw.crt")
    for path, days in ((ca, 400), (crt, 10)):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        path + ".key", "-out", path, "-days", str(days), "-subj", "/CN=it"],
                       check=True, capture_output=True)
    tls_conf = os.path.join(tmp, "tls.conf")
    with open(tls_conf, "w") as f:
        f.write(config.replace("keepalive_s=5\n", f"keepalive_s=5\nca_file={ca}\ncert_file={crt}\n"))
    rc, doc, _, _ = ctl.json("--config", tls_conf, "doctor", conf=False)
    c = check_by_name(doc, "tls")
    check(c.get("verdict") == "warn" and "gw.crt expires" in c.get("detail", "")
          and "renew" in (c.get("hint") or ""),
          "fault certificate expiring in 10 days: tls warns, renew", c.get("detail", ""))

    # a wearable gone silent (out of range until cleared; no_data_min = 1)
    gdbus_fake(stack, "Inject", "out-of-range", f"{{'device': <'{WEARABLES[1]}'>}}")
    t0 = time.monotonic()
    silent = wait_for(lambda: (lambda r: r[1] and any(
        w["alias"] == "w2" and w.get("fresh") is False for w in r[1].get("wearables", [])))(
        ctl.json("status")), 150, step=2)
    check(bool(silent), "fault w2 out of range: status shows it not fresh",
          f"after {time.monotonic() - t0:.0f} s")
    rc, out, _ = ctl.run("status")
    check(rc == 1 and "w2 silent" in out, "fault w2 out of range: status exits 1, says so",
          f"rc {rc}")
    rc, doc, _, _ = ctl.json("doctor")
    c = check_by_name(doc, "wearable w2")
    check(rc == 1 and c.get("verdict") == "fail" and "range" in (c.get("hint") or "")
          and check_by_name(doc, "wearable w1").get("verdict") == "ok",
          "fault w2 out of range: doctor fails wearable w2 (and only it), hint: range",
          c.get("detail", ""))
    gdbus_fake(stack, "Clear", "out-of-range")

    # the broker stopped
    broker.stop()
    down = wait_for(lambda: (lambda r: r[1] and r[1].get("broker", {}).get("connected") is False)(
        ctl.json("status")), 30)
    check(bool(down), "fault broker stopped: status shows it")
    rc, doc, _, _ = ctl.json("doctor")
    b, s = check_by_name(doc, "broker"), check_by_name(doc, "mqtt-session")
    check(rc == 1 and b.get("verdict") == "fail" and "cannot connect" in b.get("detail", "")
          and "broker" in (b.get("hint") or ""),
          "fault broker stopped: doctor's broker check fails with a hint", b.get("detail", ""))
    check(s.get("verdict") == "fail", "fault broker stopped: mqtt-session fails",
          s.get("detail", ""))
    rc, out, _ = ctl.run("status")
    check(rc == 1 and "broker not connected" in out, "fault broker stopped: status exits 1")

    # the store over its budget: critical rows (never shed) above budget_mb = 1
    stack.gw_stop()
    db = os.path.join(state, "rehablink.db")
    fill_critical(db, f"rehablink/v1/{GW}/patient/{PATIENT}/pain", 1500, 2000)
    stack.write_config(config.replace("budget_mb=64", "budget_mb=1"))
    stack.gw_start()
    over = wait_for(lambda: (lambda r: r[1] and r[1].get("store", {}).get("state") == "over_budget")(
        ctl.json("status")), 30)
    rc, st, _, _ = ctl.json("status")
    check(bool(over), "fault store over budget: status shows over_budget",
          f"{(st or {}).get('store')}")
    rc, doc, _, _ = ctl.json("doctor")
    c = check_by_name(doc, "store")
    check(rc == 1 and c.get("verdict") == "fail" and "budget" in c.get("detail", "")
          and "budget_mb" in (c.get("hint") or ""),
          "fault store over budget: doctor's store check fails, hint budget_mb",
          c.get("detail", ""))
    stack.write_config(config)

    # the daemon stopped
    stack.gw_stop()
    rc, out, err = ctl.run("status")
    check(rc == 3 and "not reachable" in err and "systemctl" in err,
          "fault daemon stopped: status exits 3 with a hint", f"rc {rc}")
    rc, doc, out, err = ctl.json("status")
    check(rc == 3 and (doc or {}).get("error", {}).get("exit") == 3,
          "fault daemon stopped: status --json prints an error document")
    for cmd in (["devices"], ["alerts"], ["queue"], ["test-alert"], ["reload"], ["data"],
                ["export", "--output", os.path.join(tmp, "x.csv")]):
        rc, _, _ = ctl.run(*cmd)
        check(rc == 3, f"fault daemon stopped: {cmd[0]} exits 3", f"rc {rc}")
    rc, doc, _, _ = ctl.json("doctor")
    first = (doc or {}).get("checks", [{}])[0]
    check(rc == 1 and first.get("name") == "daemon" and first.get("verdict") == "fail"
          and "systemctl" in (first.get("hint") or ""),
          "fault daemon stopped: doctor's first check fails, hint systemctl",
          first.get("detail", ""))
    local = [n for n in ("bluetoothd", "adapter", "disk", "clock")
             if check_by_name(doc, n).get("verdict") in ("ok", "warn")]
    check(len(local) == 4, "fault daemon stopped: doctor still checks the system", f"{local}")
    check(check_by_name(doc, "broker").get("verdict") == "fail",
          "fault daemon stopped: the broker (still down) checked from the config")
    rc, out, _ = ctl.run("doctor")
    check(rc == 1 and "fail  daemon" in out and "rehablinkd is not running" in out,
          "fault daemon stopped: doctor text")
    broker.start()


def main():
    if not os.access(CTL, os.X_OK):
        print(f"FAIL {CTL} not built")
        return 1
    tmp = tempfile.mkdtemp(prefix="rehablink-ctl-it-")
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
        state = os.path.join(tmp, "state")
        config = f"""[gateway]
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
[store]
commit_interval_ms=500
budget_mb=64
[rules]
no_data_min=1
"""
        stack.write_config(config)
        ctl = Ctl(stack.env, stack.conf)

        phase_usage(ctl)
        stack.gw_start()
        up = wait_for(lambda: (lambda r: r[0] != 3 and r[1] and all(
            w.get("fresh") and w.get("records", 0) > 0 for w in r[1].get("wearables", [{}])))(
            ctl.json("status")), 60, step=0.5)
        if not check(bool(up), "live: rehablinkd answers, both wearables fresh"):
            return 1
        phase_live(stack, ctl, consumer, state)
        phase_doctor(stack, ctl, broker, consumer, state, tmp, config)
    except Exception as e:
        import traceback
        traceback.print_exc()
        say("FAIL", "exception", repr(e))
    finally:
        teardown(tmp, bool(failures), [stack, consumer, broker])
    print(f"RESULT: {'FAIL' if failures else 'PASS'} ({len(failures)} failed)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
