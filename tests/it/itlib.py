# SPDX-License-Identifier: MIT
"""
Parts for tests and benchmarks that run the real system: a free loopback
port, a real mosquitto, a consumer (mosquitto_sub) that keeps every
message, the JSON Schema validators, a private bus with the fake
bluetoothd, and rehablinkd with a config file. Used by tests/it/uplink-it.py
and tests/bench/bench-gateway.py.
"""
import json
import os
import shutil
import sqlite3
import sys
import uuid
import signal
import socket
import subprocess
import threading
import time

from jsonschema import Draft202012Validator, FormatChecker

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class Broker:
    def __init__(self, d):
        self.dir = d
        self.port = free_port()
        self.proc = None
        with open(os.path.join(d, "mosquitto.conf"), "w") as f:
            f.write(f"""per_listener_settings true
persistence false
max_queued_messages 1000000
max_inflight_messages 0
log_dest stderr
log_type error
log_type warning
log_type notice
log_type subscribe
connection_messages true
listener {self.port} 127.0.0.1
allow_anonymous true
""")

    def start(self):
        log = open(os.path.join(self.dir, "mosquitto.log"), "a")
        self.proc = subprocess.Popen(["/usr/sbin/mosquitto", "-c",
                                      os.path.join(self.dir, "mosquitto.conf")],
                                     stdout=log, stderr=log)

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return True
            except OSError:
                return False
        if not wait_for(up, 10):
            raise RuntimeError("mosquitto did not start")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class Consumer:
    """mosquitto_sub on rehablink/v1/#, every line parsed and kept."""

    def __init__(self, port, d, keep_raw=False):
        self.port = port
        self.dir = d
        self.keep_raw = keep_raw
        self.raw = []           # (monotonic arrival, msg_id), if keep_raw
        self.msgs = []          # (topic, retained, payload dict or None, raw)
        self.lock = threading.Lock()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.port), "-q", "1",
             "-t", "rehablink/v1/#", "-c", "-i", "it-consumer", "-F", "%r %t %p",
             "--will-topic", "it/none", "--will-payload", "x"],
            stdout=subprocess.PIPE, stderr=open(os.path.join(self.dir, "sub.log"), "a"),
            text=True)
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()

    def _read(self, proc):
        for line in proc.stdout:
            line = line.rstrip("\n")
            retained, topic, raw = line.split(" ", 2)
            try:
                p = json.loads(raw)
            except ValueError:
                p = None
            with self.lock:
                if self.keep_raw and isinstance(p, dict):
                    self.raw.append((time.monotonic(), p.get("msg_id")))
                if not self.keep_raw or kind_of(p) != "aggregate_minute":
                    self.msgs.append((topic, retained == "1", p, raw))

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def snapshot_raw(self):
        with self.lock:
            return list(self.raw)

    def snapshot(self):
        with self.lock:
            return list(self.msgs)

    def find(self, pred):
        return [m for m in self.snapshot() if m[2] is not None and pred(m)]


def kind_of(p):
    """The kind of a payload from its schema: \"pain\"."""
    return p.get("schema", "/").split("/")[1] if isinstance(p, dict) else None


class Validators:
    def __init__(self):
        self.v = {}
        for f in os.listdir(os.path.join(ROOT, "proto", "schema")):
            with open(os.path.join(ROOT, "proto", "schema", f)) as fh:
                s = json.load(fh)
            self.v[f.split(".")[0]] = Draft202012Validator(s, format_checker=FormatChecker())

    def errors(self, p):
        k = kind_of(p)
        if k not in self.v:
            return [f"no schema for {p.get('schema')!r}"]
        return [e.message for e in self.v[k].iter_errors(p)]


class Stack:
    """A private dbus-daemon and the fake bluetoothd serving wearables."""

    def __init__(self, bindir, d, wearables, scenario, extra=()):
        self.dir = d
        self.bindir = bindir
        self.env = dict(os.environ)
        self.procs = []
        with open(os.path.join(d, "scenario.txt"), "w") as f:
            f.write(scenario)
        r, w = os.pipe()
        bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile",
                                f"--print-address={w}", f"--address=unix:path={d}/bus"],
                               pass_fds=(w,))
        self.procs.append(bus)
        os.close(w)
        self.env["DBUS_SYSTEM_BUS_ADDRESS"] = os.read(r, 4096).decode().strip()
        os.close(r)
        fake = subprocess.Popen([os.path.join(bindir, "fake-bluetoothd"), "--paired",
                                 "--print-ready", "--state-dir", d,
                                 "--scenario", os.path.join(d, "scenario.txt")]
                                + list(extra) + [f"--device={a}" for a in wearables],
                                env=self.env, stdout=subprocess.PIPE,
                                stderr=open(os.path.join(d, "fake.log"), "w"), text=True)
        self.procs.append(fake)
        if fake.stdout.readline().strip() != "READY":
            raise RuntimeError("fake-bluetoothd did not start")
        self.gw = None
        self.gwlog = open(os.path.join(d, "rehablinkd.log"), "a")

    def apply(self, stmt, address=""):
        subprocess.run(["gdbus", "call", "--system", "--dest", "org.bluez",
                        "--object-path", "/org/rehablink/fake", "--method",
                        "org.rehablink.FakeBluez1.Apply", address, stmt],
                       env=self.env, check=True, capture_output=True)

    def write_config(self, text):
        self.conf = os.path.join(self.dir, "rehablink.conf")
        with open(self.conf, "w") as f:
            f.write(text)

    def gw_start(self):
        self.gw = subprocess.Popen([os.path.join(self.bindir, "rehablinkd"), "--config", self.conf],
                                   env=self.env, stdout=self.gwlog, stderr=self.gwlog)
        return self.gw

    def gw_stop(self, sig=signal.SIGTERM):
        p = self.gw
        if not p:
            return None
        p.send_signal(sig)
        p.wait(30)
        self.gw = None
        return p.returncode

    def close(self):
        for p in [self.gw] + self.procs:
            if p and p.poll() is None:
                p.kill()
                p.wait()


def fill_outbox(db, topic, n, kind="aggregate_minute", payload=None):
    """n telemetry messages in the outbox of the store at db, as the gateway
    would have queued them during an outage; returns {msg_id: index}.
    payload(i, msg_id) gives each one's JSON object (default: a stub)."""
    con = sqlite3.connect(db, timeout=10)
    now = int(time.time() * 1e6)
    ids = {}
    rows = []
    for i in range(n):
        m = str(uuid.uuid4())
        p = payload(i, m) if payload else {"schema": f"rehablink/{kind}/1", "msg_id": m}
        ids[m] = i
        rows.append((m, kind, 0, topic, json.dumps(p).encode(), 1, 0, 0, now, 0))
    con.executemany("INSERT INTO outbox (msg_id, kind, priority, topic, payload, qos, retain, "
                    "expiry_s, created_us, attempts) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    con.commit()
    con.close()
    return ids


def teardown(tmp, failed, parts, logs=("rehablinkd.log", "mosquitto.log", "fake.log")):
    """Stops what runs (a Stack is closed, the rest stopped); on failure
    keeps tmp and prints the tail of each log, else removes tmp."""
    for x in parts:
        try:
            if isinstance(x, Stack):
                x.close()
            elif x:
                x.stop()
        except Exception as e:
            print(f"cleanup: {e}")
    if not failed:
        shutil.rmtree(tmp, ignore_errors=True)
        return
    print(f"logs kept in {tmp}")
    for f in logs:
        try:
            with open(os.path.join(tmp, f)) as fh:
                lines = fh.readlines()[-25:]
            print(f"--- {f}, last lines")
            sys.stdout.writelines(lines)
        except OSError:
            pass
