#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
Fault injection end to end (issue 7): the whole system, faults injected at
random (seeded) moments, and every record accounted for from the
wearable's flash to the clinic's consumer.

  fake-bluetoothd  2 wearables on a private D-Bus, a scenario with 1 s
                   posture and steps records (2 records/s each), walks and
                   pain reports; --record-log: every record made, one line
  rehablinkd       under libfaketime (its wall clock only), a config and a
                   state dir on a small tmpfs (or a store budget, below)
  mosquitto        real, with persistence (sessions survive its restarts)
  consumer         mosquitto_sub -c on rehablink/v1/#: every message kept

usage: faults.py BINDIR --faults N [--seed S] [--kinds a,b,...] [--keep]
                        [--interval MIN:MAX] [--outage-scale F] [--no-ctl]
                        [--ctl-every K]
  make check: --faults 20 (about 2.5 min); a soak of 1000: --interval 0.5:2
  --outage-scale 0.5 --ctl-every 5 (about 4.5 s a fault, 75 min)

Fault kinds (--kinds; default all):
  gw-kill         SIGKILL rehablinkd, restart it 0-2 s later
  broker-restart  mosquitto stopped (SIGTERM), started 1-3 s later
  broker-outage   mosquitto down 20-40 s (a long outage)
  broker-flap     mosquitto stopped and started 3-6 times, 0.2-1 s apart
  bt-restart      fake-bluetoothd stopped (SIGTERM) and started again with
                  the same --state-dir (the flash continues; the downtime is
                  simulated on restart); rehablinkd must follow the owner
  adapter-off     fault adapter-power-off for 2-6 s, then adapter-power-on
  link-loss-sync  a wearable out of range 3-8 s (records pile up), then
                  fault link-loss after 5-60 records: the history sync of
                  the backlog is cut
  disk-full       the state dir's tmpfs shrunk to what it uses (ENOSPC)
                  for 4-12 s; without tmpfs: [store] budget_mb=1 + SIGHUP
  clock-fwd       rehablinkd's wall clock +24 h (libfaketime offset file)
  clock-back      rehablinkd's wall clock -24 h (the offset stays within
                  -24..+24 h; it is put back to 0 before the accounting)
  db-corrupt      SIGKILL rehablinkd, garbage over pages of rehablink.db,
                  restart: the store moves it aside and starts fresh
  malformed-ble   fault malformed (random char, kind, count 1-3)
  bad-clinic      garbage, bad-schema and bad-value JSON, an unknown alert,
                  an unknown cmd/ topic: each must get its cmd/error answer
                  and change nothing

Accounting (after the faults stop: the wearables frozen with SetSpeed(0),
the clock offset 0, every part up, the outbox empty and each cursor at the
wearable's last seq):
  pain       every pain record in the record log arrives as a pain message
             with its (wearable, seq); repeats only under the same msg_id
  telemetry  each record (any type) counts in every UTC minute window its
             [time, time + max(duration, 1)) touches (gateway/aggregate.c);
             per (wearable, minute), the `records` of the highest revision
             delivered (ties: the last to arrive) must equal that count.
             Windows that may not be closed and committed when the
             harness last read the store (end + 8 s after it) are "pending"
  corrupt    a damaged store loses what lived only in it: records the
             wearable had already deleted (seq <= its first-seq - 1 when
             the gateway was killed) whose messages had not reached the
             consumer. Those are counted as "lost to corruption", not as
             lost; a pain record the wearable still held may come again
             under a new msg_id (the fresh store has no memory of it)
  alerts     rise and persistent are made unreachable by config (the
             harness draws scores 0-3 and 7-9, no 10, a low report at least
             every third one); so a red-flag report must raise pain.red_flag
             (emergency at notification 1), a score >= 7 without red flag
             pain.severe (urgent), and no other pain.* rule; one alert_id
             per rule (plus one per store corruption), one rule per alert_id
Exit 0 only if nothing is lost, duplicates only under the same msg_id,
every payload valid against its schema, clinic errors answered, and
alerts as expected. rehablinkctl (if built) is asked `--json doctor` and
`--json status` during each fault; which check explained it is tabled
(informational: never fails the run).
"""
import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "it"))
from itlib import Broker, Consumer, Validators, kind_of, wait_for  # noqa: E402

KINDS = ["gw-kill", "broker-restart", "broker-outage", "broker-flap", "bt-restart",
         "adapter-off", "link-loss-sync", "disk-full", "clock-fwd", "clock-back",
         "db-corrupt", "malformed-ble", "bad-clinic"]
GW = "gw-faults"
PATIENT = "p-faults"
WEARABLES = ["AA:BB:CC:DD:EE:01", "AA:BB:CC:DD:EE:02"]
ALIASES = ["w1", "w2"]
WB_EPOCH = 946684800
FAKETIME_LIBS = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
                 "/usr/lib/faketime/libfaketimeMT.so.1"]
# doctor checks that may explain each fault kind
EXPLAINS = {
    "gw-kill": ["daemon", "mqtt-session"],
    "broker-restart": ["broker", "mqtt-session", "outbox", "queue"],
    "broker-outage": ["broker", "mqtt-session", "outbox", "queue"],
    "broker-flap": ["broker", "mqtt-session", "outbox", "queue"],
    "bt-restart": ["bluetoothd", "adapter", "wearable", "link", "devices"],
    "adapter-off": ["adapter", "bluetoothd", "wearable", "link", "devices"],
    "link-loss-sync": ["wearable", "link", "devices"],
    "disk-full": ["disk", "store", "commit", "errors"],
    "clock-fwd": ["clock"],
    "clock-back": ["clock"],
    "db-corrupt": ["store", "corrupt", "daemon"],
    "malformed-ble": ["wearable", "ble", "errors", "devices"],
    "bad-clinic": ["clinic", "commands", "errors", "rejected"],
}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class PersistentBroker(Broker):
    """itlib's Broker with persistence, so that the consumer's session and
    the messages queued for it survive a restart (stopped with SIGTERM)."""

    def __init__(self, d):
        super().__init__(d)
        with open(os.path.join(d, "mosquitto.conf"), "a") as f:
            f.write(f"persistence true\npersistence_location {d}/\nautosave_interval 1\n")
            # Started as root, mosquitto drops to the user "mosquitto",
            # which cannot write into our 0700 temp dir: every autosave
            # then fails ("Error: Permission denied") and a restart forgets
            # every session, so messages published while a client is
            # away (a clinic command to rehablinkd, a message to the
            # consumer) are dropped by the broker, not by rehablinkd.
            if os.geteuid() == 0:
                f.write("user root\n")
        conf = open(os.path.join(d, "mosquitto.conf")).read()
        conf = conf.replace("persistence false\n", "", 1)
        with open(os.path.join(d, "mosquitto.conf"), "w") as f:
            f.write(conf)

    def up(self):
        return self.proc is not None


class Rig:
    def __init__(self, args, tmp):
        self.args = args
        self.bindir = args.bindir
        self.tmp = tmp
        self.state = os.path.join(tmp, "state")
        os.makedirs(self.state)
        self.fbdir = os.path.join(tmp, "fake")
        os.makedirs(self.fbdir)
        self.reclog = os.path.join(tmp, "records.log")
        self.env = dict(os.environ)
        self.env.pop("LD_PRELOAD", None)
        self.procs = []
        self.fake = None
        self.gw = None
        self.jump = 0
        self.budget_mode = None
        self.tmpfs = False
        self.corruptions = []       # (time, {address: (deleted_up_to, last_seq)})
        self.bad_sent = []          # (msg_id or None, expected code, topic)
        self.gwlog = open(os.path.join(tmp, "rehablinkd.log"), "a")
        self.ft_file = os.path.join(tmp, "faketime.rc")
        self.ft_lib = next((p for p in FAKETIME_LIBS if os.path.exists(p)), None)
        self.ctl = os.path.join(self.bindir, "rehablinkctl")
        if args.no_ctl or not os.access(self.ctl, os.X_OK):
            self.ctl = None

    # ---- the state dir: a small tmpfs if mount works ----
    def mount_state(self):
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g,mode=0700", "tmpfs",
                            self.state], capture_output=True, text=True)
        self.tmpfs = r.returncode == 0
        self.budget_mode = None if self.tmpfs else "budget"
        log("state dir: " + ("tmpfs of 1 GiB (disk-full: shrink it, a real ENOSPC)" if self.tmpfs
                             else f"no tmpfs ({r.stderr.strip()}): disk-full = budget_mb=1 + SIGHUP"))

    def umount_state(self):
        if self.tmpfs:
            if self.args.keep:
                shutil.copytree(self.state, self.state + "-copy", dirs_exist_ok=True)
            subprocess.run(["umount", "-l", self.state], capture_output=True)
            self.tmpfs = False

    # ---- bus and fake ----
    def start_bus(self):
        r, w = os.pipe()
        bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile",
                                f"--print-address={w}", f"--address=unix:path={self.tmp}/bus"],
                               pass_fds=(w,))
        self.procs.append(bus)
        os.close(w)
        self.env["DBUS_SYSTEM_BUS_ADDRESS"] = os.read(r, 4096).decode().strip()
        os.close(r)

    def write_scenario(self, hours):
        today = time.strftime("%Y-%m-%d", time.gmtime())
        lines = ["# tests/faults: dense records, walks", "day 3", f"date {today}",
                 "clock synced", "capacity 2000000", "posture-period 1s", "steps-period 1s",
                 "battery 100", "battery-drain 0.5", "default reclined flexion -35"]
        for d in range(int(hours / 24) + 3):
            if d:
                lines.append(f"day {3 + d}")
            lines.append("every 5m from 00:00 to 23:59 walk 90s cadence 70 flexion 25")
            lines.append("every 7m from 00:02 to 23:59 upright 60s")
        with open(os.path.join(self.tmp, "scenario.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def fake_start(self, start=None):
        cmd = [os.path.join(self.bindir, "fake-bluetoothd"), "--paired", "--print-ready",
               "--state-dir", self.fbdir, "--record-log", self.reclog,
               "--scenario", os.path.join(self.tmp, "scenario.txt"), "--seed", str(self.args.seed)]
        if start is not None:
            cmd += ["--start", f"+{int(start)}s"]
        cmd += [f"--device={a}" for a in WEARABLES]
        self.fake = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE,
                                     stderr=open(os.path.join(self.tmp, "fake.log"), "a"), text=True)
        if self.fake.stdout.readline().strip() != "READY":
            raise RuntimeError("fake-bluetoothd did not start")

    def fake_stop(self):
        if self.fake:
            self.fake.terminate()
            self.fake.wait(20)
            self.fake = None

    def fb(self, method, *args, check=False, timeout=10):
        r = subprocess.run(["gdbus", "call", "--system", "--dest", "org.bluez", "--object-path",
                            "/org/rehablink/fake", "--timeout", str(timeout), "--method",
                            f"org.rehablink.FakeBluez1.{method}", *args],
                           env=self.env, capture_output=True, text=True, timeout=timeout + 5)
        if check and r.returncode:
            raise RuntimeError(f"{method}: {r.stderr.strip()}")
        return r.stdout if r.returncode == 0 else None

    def inject(self, fault, args="{}"):
        return self.fb("Inject", fault, args)

    def counters(self, address):
        out = self.fb("GetCounters", address)
        if not out:
            return None
        c = {}
        for key in ("first-seq", "last-seq", "stored", "next-seq", "generated", "overwritten",
                    "malformed-sent"):
            i = out.find(f"'{key}': <")
            if i >= 0:
                v = out[i + len(key) + 5:].split(">", 1)[0].replace("uint32", "").strip()
                c[key] = int(v)
        return c

    def sim_time_s(self):
        out = self.fb("GetTime")
        if not out:
            return None
        return int(out.strip("()\n ,").replace("int64", "").strip()) / 1e6

    # ---- the gateway ----
    def write_config(self, budget_mb=0):
        self.conf = os.path.join(self.tmp, "rehablink.conf")
        with open(self.conf, "w") as f:
            f.write(f"""[gateway]
id={GW}
patient={PATIENT}
state_dir={self.state}
clock=synced
[ble]
wearables={';'.join(WEARABLES)}
aliases={';'.join(ALIASES)}
[mqtt]
uri=tcp://127.0.0.1:{self.broker.port}
keepalive_s=5
backlog_rate=2000
[store]
commit_interval_ms=1000
budget_mb={budget_mb}
[escalation]
fallback_command=echo "$REHABLINK_ALERT_ID $REHABLINK_ALERT_RULE $REHABLINK_ALERT_TIER" >> {self.tmp}/fallback.log
[rules]
rise_over_median=10
rise_over_previous=10
medication_rule=false
persistent_reports=10
""")

    def set_jump(self, j):
        self.jump = j
        with open(self.ft_file + ".tmp", "w") as f:
            f.write(f"{'+' if j >= 0 else ''}{j}\n")
        os.rename(self.ft_file + ".tmp", self.ft_file)

    def gw_start(self):
        env = dict(self.env, TZ="UTC")
        if self.ft_lib:
            env.update(LD_PRELOAD=self.ft_lib, FAKETIME_TIMESTAMP_FILE=self.ft_file,
                       FAKETIME_NO_CACHE="1", FAKETIME_DONT_FAKE_MONOTONIC="1")
        self.gw = subprocess.Popen([os.path.join(self.bindir, "rehablinkd"), "--config", self.conf],
                                   env=env, stdout=self.gwlog, stderr=self.gwlog)

    def gw_stop(self, sig=signal.SIGTERM):
        if not self.gw:
            return None
        self.gw.send_signal(sig)
        try:
            self.gw.wait(30)
        except subprocess.TimeoutExpired:
            log("rehablinkd did not stop in 30 s: SIGKILL")
            self.gw.kill()
            self.gw.wait()
        rc = self.gw.returncode
        self.gw = None
        return rc

    def gw_check_alive(self):
        if self.gw and self.gw.poll() is not None:
            log(f"BUG? rehablinkd exited by itself with {self.gw.returncode}: restarting it")
            self.crashes.append(self.gw.returncode)
            self.gw = None
            self.gw_start()

    # ---- broker and consumer ----
    def broker_stop(self):
        self.broker.stop()

    def broker_start(self):
        self.broker.start()
        self.consumer.stop()
        self.consumer.start()

    def db(self):
        return os.path.join(self.state, "rehablink.db")

    def store_query(self, sql):
        try:
            con = sqlite3.connect(f"file:{self.db()}?mode=ro", uri=True, timeout=5)
            try:
                return con.execute(sql).fetchall()
            finally:
                con.close()
        except sqlite3.Error:
            return None

    def ctl_run(self, *cmd):
        if not self.ctl:
            return None
        try:
            r = subprocess.run([self.ctl, "--json", "--timeout", "3", "--config", self.conf, *cmd],
                               env=self.env, capture_output=True, text=True, timeout=20)
        except subprocess.TimeoutExpired:
            return {"exit": "timeout"}
        try:
            j = json.loads(r.stdout) if r.stdout.strip() else None
        except ValueError:
            j = None
        return {"exit": r.returncode, "json": j, "stderr": r.stderr.strip()[:200]}

    def close(self):
        for p in [self.gw, self.fake] + self.procs:
            if p and p.poll() is None:
                p.kill()
                p.wait()
        for x in (self.consumer, self.broker):
            try:
                x.stop()
            except Exception:
                pass
        self.umount_state()


# ---- faults ---------------------------------------------------------------------------------

class Faults:
    def __init__(self, rig, rnd):
        self.rig = rig
        self.rnd = rnd
        self.count = Counter()
        self.doctor = defaultdict(Counter)   # kind -> Counter of explanations

    def before(self):
        """doctor's checks just before a fault: a check explains the fault
        only if it got worse, or its detail changed while not ok."""
        self.base = {}
        if self.rig.ctl and self.rig.gw and self.diag_on:
            d = self.rig.ctl_run("doctor")
            for c in (((d or {}).get("json") or {}).get("checks") or []):
                self.base[c.get("name")] = (c.get("verdict"), c.get("detail"))

    def diagnose(self, kind, delay=0.5):
        """While the fault is in effect: what do doctor and status say?"""
        rig = self.rig
        time.sleep(delay)
        if not rig.ctl or not self.diag_on:
            return
        d = rig.ctl_run("doctor")
        s = rig.ctl_run("status")
        rec = {"kind": kind, "doctor": d, "status": s}
        with open(os.path.join(rig.tmp, "doctor.jsonl"), "a") as f:
            f.write(json.dumps(rec) + "\n")
        want = EXPLAINS.get(kind, [])
        checks = (d or {}).get("json") or {}
        rank = {"ok": 0, "skip": 0, "warn": 1, "fail": 2}
        bad, hit = [], []
        for c in checks.get("checks", []):
            n, v, det = c.get("name") or "", c.get("verdict"), c.get("detail")
            if v not in ("fail", "warn"):
                continue
            bad.append((n, v))
            bv, bdet = self.base.get(n, ("ok", None))
            worse = rank.get(v, 0) > rank.get(bv, 0)
            changed = bdet is not None and det != bdet and not n.startswith("wearable")
            if any(w in n for w in want) and (worse or changed):
                hit.append((n, v))
        if hit:
            self.doctor[kind][f"{hit[0][0]} ({hit[0][1]})"] += 1
        elif d and d.get("exit") == 3 and "daemon" in want:
            self.doctor[kind]["daemon unreachable (exit 3)"] += 1
        else:
            others = ",".join(f"{n}:{v}" for n, v in bad) or "all ok"
            self.doctor[kind][f"NOT EXPLAINED [{others}]"] += 1

    def run(self, kind):
        self.count[kind] += 1
        self.diag_on = sum(self.count.values()) % self.rig.args.ctl_every == 0
        self.before()
        getattr(self, "f_" + kind.replace("-", "_"))()

    def f_gw_kill(self):
        rig = self.rig
        rig.gw_stop(signal.SIGKILL)
        self.diagnose("gw-kill", 0)
        time.sleep(self.rnd.uniform(0, 2))
        rig.gw_start()

    def f_broker_restart(self):
        rig = self.rig
        rig.broker_stop()
        self.diagnose("broker-restart", 0.8)
        time.sleep(self.rnd.uniform(0.2, 2))
        rig.broker_start()

    def f_broker_outage(self):
        rig = self.rig
        rig.broker_stop()
        t = self.rnd.uniform(20, 40) * self.rig.args.outage_scale
        self.diagnose("broker-outage", min(5, t / 2))
        time.sleep(max(0, t - 5))
        rig.broker_start()

    def f_broker_flap(self):
        rig = self.rig
        n = self.rnd.randint(3, 6)
        for i in range(n):
            rig.broker.stop()
            if i == 0:
                self.diagnose("broker-flap", 0.5)
            time.sleep(self.rnd.uniform(0.2, 1))
            rig.broker.start()
            time.sleep(self.rnd.uniform(0.2, 1))
        rig.consumer.stop()
        rig.consumer.start()

    def f_bt_restart(self):
        rig = self.rig
        t = rig.sim_time_s()
        t0 = time.monotonic()
        rig.fake_stop()
        self.diagnose("bt-restart", 0.5)
        time.sleep(self.rnd.uniform(0.5, 3))
        rig.fake_start(None if t is None else t + time.monotonic() - t0)

    def f_adapter_off(self):
        rig = self.rig
        rig.inject("adapter-power-off")
        self.diagnose("adapter-off", 1.5)
        time.sleep(self.rnd.uniform(0.5, 4.5))
        rig.inject("adapter-power-on")

    def f_link_loss_sync(self):
        rig = self.rig
        a = self.rnd.choice(WEARABLES)
        ms = self.rnd.randint(3000, 8000)
        rig.inject("out-of-range", f"{{'device': <'{a}'>, 'ms': <uint32 {ms}>}}")
        time.sleep(ms / 1000 - 0.5)
        after = self.rnd.randint(5, 60)
        rig.inject("link-loss", f"{{'device': <'{a}'>, 'after': <uint32 {after}>}}")
        self.diagnose("link-loss-sync", 1.5)

    def f_disk_full(self):
        rig = self.rig
        hold = self.rnd.uniform(4, 12)
        if rig.tmpfs:
            st = os.statvfs(rig.state)
            used_k = (st.f_blocks - st.f_bfree) * st.f_frsize // 1024
            ok = False
            for slack in (8, 16, 64, 256):
                r = subprocess.run(["mount", "-o", f"remount,size={used_k + slack}k", rig.state],
                                   capture_output=True)
                if r.returncode == 0:
                    ok = True
                    break
            self.diagnose("disk-full", 1.5)
            time.sleep(hold)
            subprocess.run(["mount", "-o", "remount,size=1g", rig.state], check=True)
            if not ok:
                log("disk-full: remount refused")
        else:
            rig.write_config(budget_mb=1)
            if rig.gw:
                rig.gw.send_signal(signal.SIGHUP)
            self.diagnose("disk-full", 1.5)
            time.sleep(hold)
            rig.write_config(budget_mb=0)
            if rig.gw:
                rig.gw.send_signal(signal.SIGHUP)

    def f_clock_fwd(self):
        rig = self.rig
        if rig.jump >= 86400:
            self.count["clock-fwd"] -= 1
            self.count["clock-back"] += 1
            return self.f_clock_back()
        rig.set_jump(rig.jump + 86400)
        self.diagnose("clock-fwd", 2)

    def f_clock_back(self):
        rig = self.rig
        if rig.jump <= -86400:
            self.count["clock-back"] -= 1
            self.count["clock-fwd"] += 1
            return self.f_clock_fwd()
        rig.set_jump(rig.jump - 86400)
        self.diagnose("clock-back", 2)

    def f_db_corrupt(self):
        rig = self.rig
        rig.gw_stop(signal.SIGKILL)
        held = {}
        for a in WEARABLES:
            c = rig.counters(a) or {}
            first = c.get("first-seq", 0)
            last = c.get("last-seq", 0)
            held[a] = (first - 1 if c.get("stored") else last, last)
        rig.corruptions.append((time.time(), held))
        db = rig.db()
        size = os.path.getsize(db) if os.path.exists(db) else 0
        how = self.rnd.choice(["header", "pages"])
        with open(db, "r+b") as f:
            if how == "header" or size < 8192:
                f.seek(0)
                f.write(os.urandom(4096))
            else:
                for _ in range(self.rnd.randint(1, 8)):
                    f.seek(self.rnd.randrange(1, size // 1024) * 1024)
                    f.write(os.urandom(1024))
        log(f"db-corrupt: {how}, wearable deleted up to {held}")
        self.diagnose("db-corrupt", 0)
        rig.gw_start()

    def f_malformed_ble(self):
        rig = self.rig
        ch = self.rnd.choice(["posture", "steps", "pain", "status", "history-data", "battery"])
        kind = self.rnd.choice(["random", "truncated", "bad-version", "reserved-bits", "empty"])
        n = self.rnd.randint(1, 3)
        a = self.rnd.choice(WEARABLES)
        rig.inject("malformed", f"{{'device': <'{a}'>, 'char': <'{ch}'>, 'kind': <'{kind}'>, "
                                f"'count': <uint32 {n}>}}")
        self.diagnose("malformed-ble", 2)

    def f_bad_clinic(self):
        rig = self.rig
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

        def env(**kw):
            m = {"schema": "rehablink/alert_ack/1", "msg_id": str(uuid.uuid4()),
                 "event_time": now, "gateway_id": GW, "alert_id": "al-none-1",
                 "by": "dr-faults", "at": now, "action": "acknowledge"}
            m.update(kw)
            return m
        cfg = {"schema": "rehablink/config/1", "msg_id": str(uuid.uuid4()), "event_time": now,
               "gateway_id": GW, "settings": {"rules.severe_pain_score": 1}, "extra": True}
        cases = [
            ("alert-ack", "{not json", None, "bad_json"),
            ("alert-ack", "\x00\x01garbage", None, "bad_json"),
            ("alert-ack", "[1,2]", None, "bad_schema"),
            ("config", json.dumps(cfg), cfg["msg_id"], "bad_schema"),
        ]
        m = env(schema="rehablink/alert_ack/9")
        cases.append(("alert-ack", json.dumps(m), m["msg_id"], "bad_schema"))
        m = env(at="yesterday")
        cases.append(("alert-ack", json.dumps(m), m["msg_id"], "bad_value"))
        m = env(action="resolve")
        cases.append(("alert-ack", json.dumps(m), m["msg_id"], "unknown_alert"))
        cases.append(("bogus", "{}", None, "bad_topic"))
        picks = self.rnd.sample(cases, self.rnd.randint(2, 4))
        for topic, payload, mid, code in picks:
            r = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(rig.broker.port),
                                "-q", "1", "-t", f"rehablink/v1/{GW}/cmd/{topic}", "-s"],
                               input=payload.encode(), capture_output=True)
            if r.returncode == 0:
                rig.bad_sent.append((mid, code, topic))
        self.diagnose("bad-clinic", 1.5)


# ---- pain reports, drawn by the harness ----------------------------------------------------

class Pain:
    CHOICES_HIGH = ["pain 7", "pain 8", "pain 9", "pain 8 flags medication",
                    "pain 9 flags chest", "pain 7 flags breathlessness,one-sided"]
    CHOICES_LOW = ["pain 0", "pain 1", "pain 2", "pain 3", "pain 3 flags calf",
                   "pain 2 flags fever,medication"]

    def __init__(self, rig, rnd):
        self.rig = rig
        self.rnd = rnd
        self.n = 0
        self.next_at = time.monotonic() + 3

    def maybe(self):
        if time.monotonic() < self.next_at or not self.rig.fake:
            return
        self.next_at = time.monotonic() + self.rnd.uniform(5, 20)
        low = self.n % 3 == 2 or self.rnd.random() < 0.4
        stmt = self.rnd.choice(self.CHOICES_LOW if low else self.CHOICES_HIGH)
        a = self.rnd.choice(WEARABLES + [""])
        if self.rig.fb("Apply", a, stmt) is not None:
            self.n += 1


# ---- accounting -----------------------------------------------------------------------------

def read_records(path):
    recs = defaultdict(dict)    # address -> seq -> (type, time, q, v1, v2)
    dup_seq = 0
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) != 7:
                continue
            a, seq = p[0], int(p[1])
            if seq in recs[a]:
                dup_seq += 1
            recs[a][seq] = tuple(int(x) for x in p[2:])
    return recs, dup_seq


def minutes_of(rtype, t, v1):
    s0 = WB_EPOCH + t
    d = min(max(v1, 1), 3600) if rtype in (1, 2) else 0
    span = max(d, 1)
    m = (s0 // 60) * 60
    out = []
    while m < s0 + span:
        out.append(m)
        m += 60
    return out


def settle(rig, timeout):
    """Faults off, wearables frozen, wait for the outbox and cursors."""
    rig.fb("Clear", "")
    rig.inject("adapter-power-on")
    rig.set_jump(0)
    if rig.tmpfs:
        subprocess.run(["mount", "-o", "remount,size=1g", rig.state])
    if rig.budget_mode:
        rig.write_config(0)
    if not rig.broker.proc:
        rig.broker_start()
    if not rig.fake:
        rig.fake_start()
    if not rig.gw:
        rig.gw_start()
    rig.gw_check_alive()
    # the wearables stop making records; reconnect so that their clocks are
    # written again now that the offset is 0
    rig.fb("SetSpeed", "0")
    time.sleep(2)
    last = {a: (rig.counters(a) or {}).get("last-seq") for a in WEARABLES}
    rig.gw_stop()
    rig.gw_start()
    t0 = time.monotonic()
    ok = False
    while time.monotonic() - t0 < timeout:
        rig.gw_check_alive()
        curs = rig.store_query("SELECT wearable, seq FROM cursors") or []
        cur = {w: s for w, s in curs}
        out = rig.store_query("SELECT count(*) FROM outbox")
        done = all(cur.get(a.replace(":", "")) == last[a] for a in WEARABLES)
        if done and out and out[0][0] == 0:
            ok = True
            break
        time.sleep(1)
    # the last windows close 5 s after their end, then a commit: wait until
    # every aggregate revision the store holds has reached the consumer
    time.sleep(8)
    for _ in range(60):
        # a window that closed (its end + 5 s, at a 1 s tick) and was
        # committed (1 s) before this read is in it: account() counts the
        # windows closing later as pending, not as missing
        rig.verified_at = time.time()
        rows = rig.store_query("SELECT aggregate_id, revision FROM aggregates") or []
        seen = {(m[2]["aggregate_id"], m[2]["revision"]) for m in rig.consumer.snapshot()
                if kind_of(m[2]) in ("aggregate_minute", "aggregate_day")}
        missing = [(a, r) for a, r in rows if (a, r) not in seen]
        if not missing:
            break
        time.sleep(1)
    else:
        log(f"aggregate revisions in the store never seen by the consumer: {missing[:6]}")
    for _ in range(30):
        out = rig.store_query("SELECT count(*) FROM outbox")
        if out and out[0][0] == 0:
            break
        time.sleep(1)
    log(f"settled: {ok} in {time.monotonic() - t0:.0f} s; cursors {rig.store_query('SELECT * FROM cursors')}, "
        f"wearables' last seq {last}")
    return ok, last


def account(rig, faults, t_run, settled):
    val = Validators()
    failures = []
    with open(os.path.join(rig.tmp, "messages.jsonl"), "w") as f:
        for t, ret, p, raw in rig.consumer.snapshot():
            f.write(json.dumps({"topic": t, "retained": ret, "raw": raw}) + "\n")
    msgs = [m for m in rig.consumer.snapshot() if "/cmd/alert-ack" not in m[0]
            and "/cmd/config" not in m[0] and "/cmd/bogus" not in m[0]]
    notjson = [m for m in msgs if m[2] is None and m[3] != ""]
    invalid = []
    for t, _, p, raw in msgs:
        if p is not None:
            e = val.errors(p)
            if e:
                invalid.append((t, e[0]))
    recs, dup_log = read_records(rig.reclog)
    alias = {a: ALIASES[i] for i, a in enumerate(WEARABLES)}
    now_s = time.time()

    # corruption exposure: seqs the wearable had deleted before a corruption
    exposed = defaultdict(set)
    for _, held in rig.corruptions:
        for a, (dele, _) in held.items():
            exposed[a].update(s for s in recs[a] if s <= dele)
    refetch_ok = defaultdict(set)
    for _, held in rig.corruptions:
        for a, (dele, last) in held.items():
            refetch_ok[a].update(s for s in recs[a] if dele < s <= last)

    # pain
    pains = defaultdict(set)
    pain_n = Counter()
    for _, _, p, _ in msgs:
        if kind_of(p) == "pain":
            pains[(p["wearable"], p["seq"])].add(p["msg_id"].lower())
            pain_n[(p["wearable"], p["seq"])] += 1
    rows = {}
    for a in WEARABLES:
        r = {"produced": 0, "delivered": 0, "lost": 0, "lost_corrupt": 0, "dups": 0,
             "dups_other_id": 0, "dups_other_id_corrupt": 0}
        for seq, (ty, t, q, v1, v2) in recs[a].items():
            if ty != 3:
                continue
            r["produced"] += 1
            k = (alias[a], seq)
            if k not in pains:
                if seq in exposed[a]:
                    r["lost_corrupt"] += 1
                else:
                    r["lost"] += 1
                    failures.append(f"pain {k} never delivered")
                continue
            r["delivered"] += 1
            r["dups"] += pain_n[k] - 1
            if len(pains[k]) > 1:
                if seq in refetch_ok[a] or seq in exposed[a]:
                    r["dups_other_id_corrupt"] += 1
                else:
                    r["dups_other_id"] += 1
                    failures.append(f"pain {k} under {len(pains[k])} msg_ids")
        rows[("pain", a)] = r

    # telemetry: minute windows
    agg = {}
    agg_ids = defaultdict(set)
    arrivals = 0
    regress = 0
    for i, (_, _, p, _) in enumerate(msgs):
        if kind_of(p) != "aggregate_minute":
            continue
        arrivals += 1
        w = p["aggregate_id"].split(":")[0]
        start = int(time.mktime(time.strptime(p["start"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone)
        key = (w, start)
        agg_ids[(p["aggregate_id"], p["revision"])].add(p["msg_id"].lower())
        cur = agg.get(key)
        if cur and p["revision"] < cur[0]:
            regress += 1
        if cur is None or p["revision"] >= cur[0]:
            agg[key] = (p["revision"], p["records"])
    multi_rev_ids = sum(1 for v in agg_ids.values() if len(v) > 1)
    for a in WEARABLES:
        expect = Counter()
        seqs_in = defaultdict(list)
        ex_corrupt = set()
        unplaced = 0
        n_tel = 0
        for seq, (ty, t, q, v1, v2) in recs[a].items():
            n_tel += ty != 3
            if q == 0:
                unplaced += 1
                continue
            for m in minutes_of(ty, t, v1):
                expect[m] += 1
                seqs_in[m].append(seq)
                if seq in exposed[a] or seq in refetch_ok[a]:
                    ex_corrupt.add(m)
        r = {"produced": n_tel, "windows": len(expect), "ok": 0, "short": 0, "over": 0,
             "missing": 0, "pending": 0, "corrupt_affected": 0, "unplaced": unplaced,
             "records_short": 0}
        for m, n in expect.items():
            got = agg.get((alias[a], m))
            if m + 60 + 8 > min(now_s, getattr(rig, "verified_at", now_s)):
                r["pending"] += 1
                continue
            have = got[1] if got else 0
            if have == n:
                r["ok"] += 1
                continue
            if m in ex_corrupt:
                r["corrupt_affected"] += 1
                continue
            if not got:
                r["missing"] += 1
            elif have < n:
                r["short"] += 1
            else:
                r["over"] += 1
            r["records_short"] += max(0, n - have)
            if len(failures) < 40:
                aid = f"{alias[a]}:minute:{m}"
                row = rig.store_query("SELECT revision, json FROM aggregates WHERE aggregate_id = '"
                                      + aid + "'") or []
                held = rig.store_query("SELECT count(*) FROM records WHERE wearable_id ="
                                       " (SELECT id FROM wearables WHERE name = '"
                                       + a.replace(":", "") + "') AND seq IN ("
                                       + ",".join(str(x) for x in seqs_in[m]) + ")") or [(None,)]
                in_store = (f"store: rev {row[0][0]} records {json.loads(row[0][1]).get('records')}"
                            if row else "store: no row")
                failures.append(f"window {alias[a]} {time.strftime('%m-%dT%H:%M', time.gmtime(m))}:"
                                f" {have} records delivered, {n} produced (rev {got[0] if got else '-'};"
                                f" {in_store}; its raw records held {held[0][0]})")
        rows[("telemetry", a)] = r
    if multi_rev_ids:
        failures.append(f"{multi_rev_ids} aggregate (id, revision) pairs under several msg_ids")

    # alerts
    alerts = defaultdict(list)
    for _, _, p, _ in msgs:
        if kind_of(p) == "alert":
            alerts[p["alert_id"]].append(p)
    by_rule = defaultdict(set)
    rule_of = {}
    mixed = 0
    first_tier = {}
    notif_ids = defaultdict(set)
    for aid, ns in alerts.items():
        rules = {n["rule"] for n in ns}
        mixed += len(rules) > 1
        rule_of[aid] = ns[0]["rule"]
        by_rule[ns[0]["rule"]].add(aid)
        one = [n for n in ns if n["notification"] == 1]
        first_tier[aid] = one[0]["tier"] if one else None
        for n in ns:
            notif_ids[(aid, n["notification"])].add(n["msg_id"].lower())
    notif_multi = sum(1 for v in notif_ids.values() if len(v) > 1)
    red = sev = 0
    for a in WEARABLES:
        for seq, (ty, t, q, v1, v2) in recs[a].items():
            if ty == 3:
                if v2 & 0x1F:
                    red += 1
                elif v1 >= 7:
                    sev += 1
    expected = {"pain.red_flag": ("emergency", red), "pain.severe": ("urgent", sev)}
    n_corrupt = len(rig.corruptions)
    alert_rows = []
    for rule in sorted(set(expected) | {r for r in by_rule if r.startswith("pain.")}):
        tier, reports = expected.get(rule, (None, 0))
        ids = by_rule.get(rule, set())
        tiers = Counter(first_tier[i] for i in ids)
        want = "1" if reports else "0"
        if reports:
            want += f"..{1 + n_corrupt}" if n_corrupt else ""
            ok = 1 <= len(ids) <= 1 + n_corrupt and all(first_tier[i] in (tier, None) for i in ids)
        else:
            ok = not ids
        alert_rows.append((rule, reports, want, len(ids), dict(tiers), ok))
        if not ok:
            failures.append(f"alerts {rule}: {len(ids)} raised ({dict(tiers)}), expected {want}"
                            f" ({tier}) from {reports} reports")
    tech = {r: len(v) for r, v in by_rule.items() if not r.startswith("pain.")}
    if mixed:
        failures.append(f"{mixed} alert_ids with more than one rule")
    if notif_multi:
        failures.append(f"{notif_multi} alert notifications under several msg_ids")

    # the broker must have kept its sessions across restarts (see
    # PersistentBroker), else a lost message may be the harness's fault
    try:
        blog = open(os.path.join(rig.tmp, "mosquitto.log")).read()
    except OSError:
        blog = ""
    if ("Error: Permission denied" in blog
            or not os.path.exists(os.path.join(rig.tmp, "mosquitto.db"))):
        failures.append("broker: persistence not working (see mosquitto.log): sessions did not"
                        " survive its restarts, messages in transit may be lost by the harness")

    # clinic errors
    errs = [p for _, _, p, _ in msgs if kind_of(p) == "error"]
    by_mid = {e["rejected_msg_id"].lower(): e["code"] for e in errs if e.get("rejected_msg_id")}
    codes = Counter(e["code"] for e in errs)
    sent_codes = Counter(c for _, c, _ in rig.bad_sent)
    wrong = [(m, c, by_mid.get(m)) for m, c, _ in rig.bad_sent if m and by_mid.get(m.lower()) != c]
    short_codes = {c: n - codes.get(c, 0) for c, n in sent_codes.items() if codes.get(c, 0) < n}
    refused = {m.lower() for m, _, _ in rig.bad_sent if m}
    cfg_answers = [p for _, ret, p, _ in msgs if kind_of(p) == "config_state" and not ret
                   and (p.get("config_msg_id") or "").lower() in refused]
    cfg_changed = [p for p in cfg_answers if "rules.severe_pain_score" in (p.get("settings") or {})]
    if wrong or short_codes or cfg_changed:
        failures.append(f"clinic: {len(wrong)} answered wrongly {wrong[:3]}, unanswered by code "
                        f"{short_codes}, {len(cfg_changed)} config states from refused messages")
    if notjson or invalid:
        failures.append(f"payloads: {len(notjson)} not JSON, {len(invalid)} invalid; first {invalid[:1]}")
    if rig.crashes:
        failures.append(f"rehablinkd exited by itself {len(rig.crashes)} times: {rig.crashes}")
    if not settled:
        failures.append("the system did not settle (outbox / cursors)")

    # ---- tables ----
    print()
    print(f"== faults.py seed {rig.args.seed}: {sum(faults.count.values())} faults in {t_run:.0f} s"
          f" (total with settling {time.monotonic() - T_START:.0f} s)")
    print("fault kind        injected")
    for k in KINDS:
        if faults.count[k]:
            print(f"  {k:<16} {faults.count[k]:>5}")
    print()
    print("records per wearable        produced delivered   lost lost-to-corrupt dups(same id) dups(new id: corrupt/other)")
    for a in WEARABLES:
        r = rows[("pain", a)]
        print(f"  pain {alias[a]:<22}{r['produced']:>8} {r['delivered']:>9} {r['lost']:>6} {r['lost_corrupt']:>15}"
              f" {r['dups']:>13}   {r['dups_other_id_corrupt']}/{r['dups_other_id']}")
    print("telemetry per wearable      records  windows  ok  short over missing pending corrupt-affected unplaced")
    for a in WEARABLES:
        r = rows[("telemetry", a)]
        print(f"  {alias[a]:<26}{r['produced']:>8} {r['windows']:>8} {r['ok']:>4} {r['short']:>5} {r['over']:>4}"
              f" {r['missing']:>7} {r['pending']:>7} {r['corrupt_affected']:>16} {r['unplaced']:>8}")
    lost_tel = sum(rows[("telemetry", a)]["records_short"] for a in WEARABLES)
    print(f"  minute aggregates received {arrivals}, (id, revision) under 2+ msg_ids {multi_rev_ids}, "
          f"revision going back on arrival {regress}; records short in bad windows {lost_tel}")
    print("alerts: rule            reports  expected  raised  first tier  ok")
    for rule, reports, want, n, tiers, ok in alert_rows:
        print(f"  {rule:<22}{reports:>7}  {want:>8}  {n:>6}  {str(tiers):<22} {'yes' if ok else 'NO'}")
    print(f"  technical alerts: {tech or 'none'}; notifications under 2+ msg_ids {notif_multi}")
    print(f"clinic garbage: sent {dict(sent_codes)}, error answers {dict(codes)}; config states "
          f"answering a refused config message {len(cfg_answers)} (settings applied: {len(cfg_changed)})")
    print(f"payloads: {len(msgs)} messages, {len(notjson)} not JSON, {len(invalid)} schema-invalid; "
          f"record log seq repeats {dup_log}; rehablinkd crashes {len(rig.crashes)}")
    if rig.ctl:
        print()
        print("fault kind       -> doctor check that explained it (times)")
        for k in KINDS:
            for expl, n in faults.doctor.get(k, Counter()).most_common():
                print(f"  {k:<16} -> {expl} x{n}")
    print()
    for f in failures[:40]:
        print("FAIL", f)
    print("RESULT:", "FAIL" if failures else "PASS")
    return not failures


T_START = time.monotonic()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bindir")
    ap.add_argument("--faults", type=int, default=20)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--interval", default="1:4", help="seconds between faults, MIN:MAX")
    ap.add_argument("--outage-scale", type=float, default=1.0,
                    help="scales the long broker outage (20-40 s)")
    ap.add_argument("--settle", type=float, default=180, help="seconds to wait for settling")
    ap.add_argument("--no-ctl", action="store_true", help="do not run rehablinkctl")
    ap.add_argument("--ctl-every", type=int, default=1,
                    help="run rehablinkctl on every K-th fault only (a soak: 5)")
    args = ap.parse_args()
    args.bindir = os.path.abspath(args.bindir)
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(2), "little")
    kinds = [k for k in args.kinds.split(",") if k]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        ap.error(f"unknown kinds {bad}; known: {','.join(KINDS)}")
    lo, hi = (float(x) for x in args.interval.split(":"))
    rnd = random.Random(args.seed)
    log(f"seed {args.seed} (rerun: --seed {args.seed}), {args.faults} faults of {','.join(kinds)}")
    tmp = tempfile.mkdtemp(prefix="rehablink-faults-")
    rig = Rig(args, tmp)
    rig.crashes = []
    ok = False
    try:
        if not rig.ft_lib:
            log("libfaketime not found (apt-get install faketime): clock faults are skipped")
            kinds = [k for k in kinds if not k.startswith("clock")]
        rig.mount_state()
        rig.set_jump(0)
        rig.write_scenario(hours=args.faults * 10 / 3600 + 1)
        rig.start_bus()
        rig.fake_start()
        rig.broker = PersistentBroker(tmp)
        rig.broker.start()
        rig.consumer = Consumer(rig.broker.port, tmp)
        rig.consumer.start()
        rig.write_config()
        rig.gw_start()
        live = wait_for(lambda: len({m[2]["wearable"] for m in rig.consumer.find(
            lambda m: kind_of(m[2]) == "wearable_status" and m[2]["link"] == "live")}) == 2, 60)
        log(f"both wearables live: {bool(live)}")
        faults = Faults(rig, rnd)
        pain = Pain(rig, rnd)
        t0 = time.monotonic()
        for i in range(args.faults):
            end = time.monotonic() + rnd.uniform(lo, hi)
            while time.monotonic() < end:
                pain.maybe()
                rig.gw_check_alive()
                time.sleep(0.2)
            kind = rnd.choice(kinds)
            log(f"fault {i + 1}/{args.faults}: {kind}")
            faults.run(kind)
            pain.maybe()
        t_run = time.monotonic() - t0
        log(f"faults done in {t_run:.0f} s; settling")
        settled, _ = settle(rig, args.settle)
        ok = account(rig, faults, t_run, settled)
        rig.gw_stop()
    finally:
        try:
            rig.close()
        except Exception as e:
            print(f"cleanup: {e}")
        if args.keep or not ok:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
