#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
make bench: rehablinkd as a process (fake bluetoothd, SQLite, the loopback
mosquitto of run.sh), printing "key value" lines for report.py:

  ready_empty_p50_ms     exec of rehablinkd to READY=1 on a NOTIFY_SOCKET
                         this script listens on, p50 of BENCH_READY_N (10)
                         starts on an empty state directory
  ready_day_p50_ms       the same with a store holding a synced day (1 Hz
                         posture + per-minute steps, ~87 800 records)
  live_empty_p50_ms      exec to the wearable live (the log's "-> live"
  live_day_p50_ms        line, millisecond stamps), same starts
  hwm_day_sync_kib       VmHWM of the gateway that synced that day (commit
                         interval 1 s)
  rss_steady_kib         VmRSS after start-up, the first sync and
  hwm_steady_kib         BENCH_RSS_WARM (100 000) live records; VmHWM then
  rss_1m_kib             VmRSS / VmHWM after BENCH_RSS_N (1 000 000) more
  hwm_1m_kib             records
  rss_growth_kib         rss_1m_kib - rss_steady_kib
  heap_*_kib             glibc's bytes in use (malloc_stats() through gdb)
                         at the same points: live allocations, without what
                         malloc keeps after a transient peak (a D-Bus
                         backlog when the main loop falls behind)
  rss_records            records that passed in between (the gateway's
                         records_stored counter)
  ir_per_record          callgrind: rehablinkd's total Ir (instructions)
                         with N live records, minus an idle run of the same
                         length and set-up, over N
  ir_per_record_n        that N
  ir_dbus_ceiling        callgrind: the bare GDBus subscriber of
                         bench-dbus-ceiling, Ir per notification (20 000
                         minus 2 000 notifications, over 18 000)

The live records of the RSS and callgrind runs come from the fake at
--speed S (simulated seconds per real second) with a 1 Hz posture
scenario; the commit interval is scaled to 300 000 / S ms so that every
commit holds what the default 5-minute commit holds at 1 Hz (the store
keeps the open transaction's writes in memory, so an unscaled interval
would measure a 5-minute window at S times the rate).

usage: bench-daemon.py BINDIR BROKER_PORT
"""
import datetime
import glob
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "it"))
from itlib import Stack, wait_for  # noqa: E402

BIN = os.path.abspath(sys.argv[1])
PORT = int(sys.argv[2])
PHASES = os.environ.get("BENCH_DAEMON_PHASES", "ready rss callgrind").split()
READY_N = int(os.environ.get("BENCH_READY_N", "10"))
RSS_SPEED = float(os.environ.get("BENCH_RSS_SPEED", "4000"))
RSS_WARM = int(os.environ.get("BENCH_RSS_WARM", "100000"))
RSS_N = int(os.environ.get("BENCH_RSS_N", "1000000"))
CG_SPEED = float(os.environ.get("BENCH_CG_SPEED", "20"))
CG_S = float(os.environ.get("BENCH_CG_S", "60"))
CG_DBUS_LO, CG_DBUS_HI = 2000, 20000
W = "AA:BB:CC:DD:EE:01"


def config(state, commit_ms=None, extra="", clock="synced"):
    c = f"""[gateway]
id=gw-bench-daemon
patient=p-bench
state_dir={state}
clock={clock}
[ble]
wearables={W}
[mqtt]
uri=tcp://127.0.0.1:{PORT}
"""
    if commit_ms:
        c += f"[store]\ncommit_interval_ms={int(commit_ms)}\n"
    return c + extra


class Notify:
    """A NOTIFY_SOCKET: (monotonic arrival, line) of every datagram."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.path = path
        self.msgs = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            t = time.monotonic()
            with self.lock:
                self.msgs.extend((t, x) for x in data.decode(errors="replace").split("\n") if x)

    def first(self, line, since):
        with self.lock:
            for t, x in self.msgs:
                if t >= since and x == line:
                    return t
        return None

    def close(self):
        self.sock.close()


def past_wearable(days_ago, posture, steps, capacity):
    """A scenario whose clock starts days_ago at 00:00 (with --start
    00:00:01): at a high --speed its records stay in the past for a while.
    The gateway runs with clock=unsynced so that it never sets the
    wearable's clock to now: records stamped ahead of the gateway's clock
    would sit in open aggregation windows (none due yet) and measure that
    instead of the daemon's steady state."""
    d = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days_ago)).date()
    return (f"date {d}\nclock synced\nposture-period {posture}\nsteps-period {steps}\n"
            f"capacity {capacity}\ndefault upright flexion 10\n")


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = v.strip()
    return out


def heap_in_use_kib(pid, logpath):
    """glibc's bytes in use over all arenas (live allocations, not what
    malloc keeps after a transient peak), from malloc_stats() called in
    the process by gdb; it prints to the process's stderr, the log."""
    if not shutil.which("gdb"):
        return None
    off = os.path.getsize(logpath)
    subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "call (void) malloc_stats()"],
                   capture_output=True, timeout=60, check=False)
    time.sleep(0.3)
    with open(logpath, errors="replace") as f:
        f.seek(off)
        text = f.read()
    m = re.search(r"Total \(incl. mmap\):\s*\nsystem bytes\s*=\s*\d+\s*\nin use bytes\s*=\s*(\d+)", text)
    return int(m[1]) // 1024 if m else None


def kib(v):
    return int(v.split()[0])


def ctl_status(stack):
    r = subprocess.run([os.path.join(BIN, "rehablinkctl"), "--json", "status"], env=stack.env,
                       capture_output=True, text=True, timeout=20)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


def counter(stack, name):
    s = ctl_status(stack)
    try:
        return int(s["counters"][name])
    except (TypeError, KeyError):
        return None


def log_live_after(logpath, offset, wall0):
    """Seconds from wall0 to the first "-> live" line after offset."""
    with open(logpath, errors="replace") as f:
        f.seek(offset)
        for line in f:
            m = re.search(r"(\d\d):(\d\d):(\d\d\.\d+): .* -> live$", line.rstrip("\n"))
            if m:
                d = datetime.datetime.fromtimestamp(wall0)
                t = d.replace(hour=int(m[1]), minute=int(m[2]), second=0, microsecond=0)
                t = t.timestamp() + float(m[3])
                if t < wall0 - 43200:
                    t += 86400
                return t - wall0
    return None


# ---- time from exec to READY=1 and to the wearable live ----

def ready_runs(stack, state, fresh, notify):
    ready, live = [], []
    logpath = os.path.join(stack.dir, "rehablinkd.log")
    for _ in range(READY_N):
        if fresh:
            shutil.rmtree(state, ignore_errors=True)
        env = dict(stack.env, NOTIFY_SOCKET=notify.path)
        off = os.path.getsize(logpath)
        stack.gwlog.flush()
        t0 = time.monotonic()
        w0 = time.time()
        p = subprocess.Popen([os.path.join(BIN, "rehablinkd"), "--config", stack.conf], env=env,
                             stdout=stack.gwlog, stderr=stack.gwlog)
        t = wait_for(lambda: notify.first("READY=1", t0), 30, step=0.002)
        lv = wait_for(lambda: log_live_after(logpath, off, w0), 30, step=0.01)
        p.send_signal(signal.SIGTERM)
        p.wait(30)
        if t:
            ready.append((t - t0) * 1000)
        if lv:
            live.append(lv * 1000)
        time.sleep(0.3)
    return ready, live


def phase_ready(tmp, out):
    d = os.path.join(tmp, "ready")
    os.makedirs(d)
    notify = Notify(os.path.join(d, "notify.sock"))
    # empty store; a wearable with little in its flash (per-minute records)
    stack = Stack(BIN, d, [W], "clock synced\nposture-period 60s\nsteps-period 60s\ncapacity 600\n",
                  ["--start", time.strftime("%H:%M:%S", time.gmtime())])
    try:
        state = os.path.join(d, "state")
        stack.write_config(config(state))
        r, lv = ready_runs(stack, state, True, notify)
        if r:
            out["ready_empty_p50_ms"] = statistics.median(r)
            out["ready_empty_n"] = len(r)
        if lv:
            out["live_empty_p50_ms"] = statistics.median(lv)
    finally:
        stack.close()

    # a store holding a synced day
    d2 = os.path.join(tmp, "ready-day")
    os.makedirs(d2)
    yesterday = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)).date()
    stack = Stack(BIN, d2, [W], f"date {yesterday}\nclock synced\nposture-period 1s\nsteps-period 60s\n"
                  "capacity 100000\ndefault upright flexion 10\n", ["--start", "23:59:59"])
    try:
        state = os.path.join(d2, "state")
        stack.write_config(config(state, commit_ms=1000))
        logpath = os.path.join(d2, "rehablinkd.log")
        w0 = time.time()
        stack.gw_start()
        wait_for(lambda: log_live_after(logpath, 0, w0), 120, step=0.2)
        time.sleep(3)
        n = counter(stack, "records_stored")
        out["hwm_day_sync_kib"] = kib(proc_status(stack.gw.pid)["VmHWM"])
        stack.gw_stop()
        stack.write_config(config(state))
        r, lv = ready_runs(stack, state, False, notify)
        if r:
            out["ready_day_p50_ms"] = statistics.median(r)
            out["ready_day_records"] = n or 0
        if lv:
            out["live_day_p50_ms"] = statistics.median(lv)
    finally:
        stack.close()
        notify.close()


# ---- RSS at steady state and after a million records ----

def phase_rss(tmp, out):
    d = os.path.join(tmp, "rss")
    os.makedirs(d)
    # the wearable's clock starts far enough back that the warm-up and the
    # million end more than 72 h (the aggregator's revise horizon) before
    # now: their windows are freed as soon as emitted. A last segment of
    # 72 simulated hours then ends near now, as a gateway running for 3
    # days would be, with the horizon's windows open in memory.
    per_day = 86400 + 1440
    days = int((RSS_WARM + RSS_N) / per_day) + 4
    stack = Stack(BIN, d, [W], past_wearable(days, "1s", "60s", 4096),
                  ["--start", "00:00:01", "--speed", str(RSS_SPEED)])
    try:
        state = os.path.join(d, "state")
        stack.write_config(config(state, commit_ms=max(10, 300000 / RSS_SPEED), clock="unsynced"))
        w0 = time.time()
        p = stack.gw_start()
        if not wait_for(lambda: log_live_after(os.path.join(d, "rehablinkd.log"), 0, w0), 60):
            return
        base = wait_for(lambda: counter(stack, "records_stored"), 20)
        if base is None:
            return

        def upto(n, timeout):
            return wait_for(lambda: (counter(stack, "records_stored") or 0) >= n, timeout, step=0.5)
        upto(base + RSS_WARM, 600)
        logpath = os.path.join(d, "rehablinkd.log")
        h0 = heap_in_use_kib(p.pid, logpath)
        s0 = proc_status(p.pid)
        n0 = counter(stack, "records_stored")
        t0 = time.monotonic()
        curve = []
        for k in range(1, 11):
            upto(n0 + RSS_N * k // 10, 900)
            curve.append(kib(proc_status(p.pid)["VmRSS"]))
        s1 = proc_status(p.pid)
        n1 = counter(stack, "records_stored")
        t1 = time.monotonic()
        h1 = heap_in_use_kib(p.pid, logpath)
        if h0 is not None and h1 is not None:
            out["heap_steady_kib"] = h0
            out["heap_1m_kib"] = h1
            out["heap_growth_kib"] = h1 - h0
        print("# rss every tenth of the million (KiB): " + " ".join(map(str, curve)), file=sys.stderr)
        out["rss_steady_kib"] = kib(s0["VmRSS"])
        out["hwm_steady_kib"] = kib(s0["VmHWM"])
        out["rss_1m_kib"] = kib(s1["VmRSS"])
        out["hwm_1m_kib"] = kib(s1["VmHWM"])
        out["rss_growth_kib"] = kib(s1["VmRSS"]) - kib(s0["VmRSS"])
        out["rss_records"] = n1 - n0
        out["rss_records_per_s"] = (n1 - n0) / (t1 - t0)
        # on to the last 72 h before now
        upto(n1 + 3 * per_day, 900)
        s2 = proc_status(p.pid)
        h2 = heap_in_use_kib(p.pid, logpath)
        if h2 is not None:
            out["heap_horizon_kib"] = h2
        out["rss_horizon_kib"] = kib(s2["VmRSS"])
        out["hwm_horizon_kib"] = kib(s2["VmHWM"])
        stack.gw_stop()
    finally:
        stack.close()


# ---- callgrind: instructions per record ----

def callgrind_total(path):
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    return None


def cg_run(tmp, name, scenario):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    stack = Stack(BIN, d, [W], scenario, ["--start", "00:00:01", "--speed", str(CG_SPEED)])
    try:
        state = os.path.join(d, "state")
        stack.write_config(config(state, commit_ms=300000 / CG_SPEED, clock="unsynced"))
        cg = os.path.join(d, "callgrind.out")
        stack.gw = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg}",
                                     os.path.join(BIN, "rehablinkd"), "--config", stack.conf],
                                    env=stack.env, stdout=stack.gwlog, stderr=stack.gwlog)
        # the same real length for both: from exec, CG_S seconds
        time.sleep(CG_S)
        stack.gw_stop()
        import sqlite3
        con = sqlite3.connect(f"file:{os.path.join(state, 'rehablink.db')}?mode=ro", uri=True)
        n = con.execute("SELECT count(*) FROM records").fetchone()[0]
        con.close()
        return callgrind_total(cg), n
    finally:
        stack.close()


def phase_callgrind(tmp, out):
    busy, n = cg_run(tmp, "cg-busy", past_wearable(1, "1s", "60s", 60))
    idle, n_idle = cg_run(tmp, "cg-idle", past_wearable(1, "1h", "1h", 60))
    if busy and idle and n > n_idle:
        out["ir_per_record"] = (busy - idle) / (n - n_idle)
        out["ir_per_record_n"] = n - n_idle
        out["ir_busy_total"] = busy
        out["ir_idle_total"] = idle
    # the ceiling's subscriber (the parent; the emitter is a forked child),
    # on a private dbus-daemon of its own
    d = os.path.join(tmp, "cg-dbus")
    os.makedirs(d)
    r, w = os.pipe()
    bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile",
                            f"--print-address={w}", f"--address=unix:path={d}/bus"], pass_fds=(w,))
    os.close(w)
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=os.read(r, 4096).decode().strip())
    os.close(r)
    irs = {}
    try:
        for n in (CG_DBUS_LO, CG_DBUS_HI):
            files = f"{d}/cg-{n}"
            subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={files}.%p",
                            os.path.join(BIN, "bench-dbus-ceiling"), str(n)],
                           env=env, capture_output=True, check=False, timeout=900)
            got = sorted(glob.glob(f"{files}.*"), key=lambda f: int(f.rsplit(".", 1)[1]))
            irs[n] = callgrind_total(got[0]) if got else None     # the parent: lowest pid
    finally:
        bus.terminate()
        bus.wait(10)
    if irs.get(CG_DBUS_LO) and irs.get(CG_DBUS_HI):
        out["ir_dbus_ceiling"] = (irs[CG_DBUS_HI] - irs[CG_DBUS_LO]) / (CG_DBUS_HI - CG_DBUS_LO)


def main():
    tmp = tempfile.mkdtemp(prefix="rehablink-bench-daemon-")
    out = {}
    try:
        if "ready" in PHASES:
            phase_ready(tmp, out)
        if "rss" in PHASES:
            phase_rss(tmp, out)
        if "callgrind" in PHASES:
            phase_callgrind(tmp, out)
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"# kept {tmp}", file=sys.stderr)
    for k, v in out.items():
        print(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}")


if __name__ == "__main__":
    main()
