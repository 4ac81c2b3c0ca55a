#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
The D-Bus policy of the control API (config/org.rehablink.Gateway.conf)
on a real dbus-daemon running the real system policy: a private bus built
from /usr/share/dbus-1/system.conf whose only included policy directory
holds our file. A tiny Gio service stands in for rehablinkd; callers run
under other uids through setpriv(1).

Checks, each as the uid it is about:
  - the daemon's user may own org.rehablink.Gateway; nobody and a
    technician may not;
  - root may call org.rehablink.Gateway1 and the standard interfaces;
  - a technician (group rehablink) may call org.rehablink.Gateway1,
    Introspectable, Properties and Peer, and nothing else on the object;
  - nobody (no group) is refused every call, by well-known and by unique
    name (AccessDenied), yet may still talk to the bus itself;
  - root may own the name once the daemon is gone.

Identities: the user and group rehablink when they exist (the policy file
is used as it is). On a machine without them (a fresh build machine) a
test-only copy of the policy names the system user "daemon" instead of the
user rehablink and the group "staff" instead of the group rehablink (the
technician is nobody's uid with the supplementary group staff, given by
setpriv); the file is otherwise byte for byte ours. Needs root (setpriv);
exits 77 otherwise.

usage: policy-it.py [POLICY_FILE]
"""
import grp
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time

NAME = "org.rehablink.Gateway"
PATH = "/org/rehablink/Gateway"
IFACE = "org.rehablink.Gateway1"
SELF = os.path.abspath(__file__)
PYTHON = "/usr/bin/python3"
DENIED = "org.freedesktop.DBus.Error.AccessDenied"

XML = f"""<node>
  <interface name="{IFACE}">
    <method name="GetStatus"><arg type="s" direction="out"/></method>
    <property name="Version" type="s" access="read"/>
  </interface>
  <interface name="org.rehablink.Test1">
    <method name="Secret"><arg type="s" direction="out"/></method>
  </interface>
</node>"""


# ---- the helper roles (run under setpriv as another uid) ---------------------

def connect(address):
    from gi.repository import Gio
    flags = (Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
             | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION)
    return Gio.DBusConnection.new_for_address_sync(address, flags, None, None)


def error_name(e):
    from gi.repository import Gio
    return Gio.DBusError.get_remote_error(e) or f"{e.domain}:{e.code}:{e.message}"


def role_own(address):
    """Prints "owned" or the D-Bus error name of RequestName."""
    from gi.repository import GLib
    c = connect(address)
    try:
        r = c.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                        "RequestName", GLib.Variant("(su)", (NAME, 4)), None, 0, 5000, None)
        print("owned" if r.unpack()[0] in (1, 4) else f"reply {r.unpack()[0]}")
    except GLib.Error as e:
        print(error_name(e))


def role_call(address, dest, iface, method):
    """Prints "ok" or the D-Bus error name of one call."""
    from gi.repository import GLib
    c = connect(address)
    args = None
    if iface == "org.freedesktop.DBus.Properties":
        args = GLib.Variant("(s)", (IFACE,))
    try:
        c.call_sync(dest, PATH if dest != "org.freedesktop.DBus" else "/org/freedesktop/DBus",
                    iface, method, args, None, 0, 5000, None)
        print("ok")
    except GLib.Error as e:
        print(error_name(e))


def role_serve(address):
    """The stand-in rehablinkd: owns the name, prints "owned <unique>"."""
    from gi.repository import Gio, GLib
    c = connect(address)
    node = Gio.DBusNodeInfo.new_for_xml(XML)

    def on_call(conn, sender, path, iface, method, params, inv):
        inv.return_value(GLib.Variant("(s)", ('{"ok": true}',)))

    def on_get(conn, sender, path, iface, prop):
        return GLib.Variant("s", "test")

    for i in node.interfaces:
        c.register_object(PATH, i, on_call, on_get, None)
    try:
        r = c.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                        "RequestName", GLib.Variant("(su)", (NAME, 4)), None, 0, 5000, None)
        code = r.unpack()[0]
    except GLib.Error as e:
        print(error_name(e), flush=True)
        return
    print(f"owned {c.get_unique_name()}" if code == 1 else f"reply {code}", flush=True)
    GLib.MainLoop().run()


# ---- the test ------------------------------------------------------------------

class Failures:
    def __init__(self):
        self.n = 0
        self.total = 0

    def expect(self, what, got, want):
        self.total += 1
        ok = got == want
        if not ok:
            self.n += 1
        print(f"{'ok  ' if ok else 'FAIL'} {what}: {got}" + ("" if ok else f" (want {want})"),
              flush=True)


def as_user(uid, gid, groups):
    g = ",".join(str(x) for x in groups) if groups else None
    cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}"]
    cmd += [f"--groups={g}"] if g else ["--clear-groups"]
    return cmd


def run_as(ident, *args):
    if ident is None:		# root
        cmd = []
    else:
        cmd = as_user(*ident)
    out = subprocess.run(cmd + [PYTHON, SELF] + list(args), capture_output=True, text=True,
                         timeout=30)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        return f"helper failed ({out.returncode}): {out.stderr.strip()[-300:]}"
    return lines[-1]


def sysbus_conf(tmp, policy_dir):
    """The real system.conf, on a socket of ours, including only our dir."""
    text = open("/usr/share/dbus-1/system.conf").read()
    for pat, rep in [(r"<user>[^<]*</user>", ""), (r"<pidfile>[^<]*</pidfile>", ""),
                     (r"<fork/>", ""), (r"<syslog/>", ""),
                     (r"<listen>[^<]*</listen>", f"<listen>unix:path={tmp}/sysbus</listen>"),
                     # local overrides of this machine would make the result vary
                     (r"<include ignore_missing=\"yes\">[^<]*</include>", "")]:
        text, n = re.subn(pat, rep, text)
        if n == 0 and pat.startswith("<listen"):
            raise SystemExit("policy-it: system.conf has no <listen>")
    dirs = re.findall(r"<includedir>[^<]*</includedir>", text)
    if not dirs:
        raise SystemExit("policy-it: system.conf has no <includedir>")
    text = text.replace(dirs[0], f"<includedir>{policy_dir}</includedir>", 1)
    for d in dirs[1:]:
        text = text.replace(d, "", 1)
    path = os.path.join(tmp, "sysbus.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "--serve":
        return role_serve(sys.argv[2])
    if len(sys.argv) >= 3 and sys.argv[1] == "--own":
        return role_own(sys.argv[2])
    if len(sys.argv) >= 6 and sys.argv[1] == "--call":
        return role_call(*sys.argv[2:6])

    policy = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(SELF))), "config",
        "org.rehablink.Gateway.conf")
    if os.geteuid() != 0:
        print("policy-it: SKIP: needs root (setpriv to other uids)")
        return 77
    for tool in ("dbus-daemon", "setpriv"):
        if not shutil.which(tool):
            raise SystemExit(f"policy-it: {tool} is missing")

    text = open(policy).read()
    nobody = pwd.getpwnam("nobody")
    try:
        owner = pwd.getpwnam("rehablink")
    except KeyError:
        owner = pwd.getpwnam("daemon")
        text = text.replace('user="rehablink"', 'user="daemon"')
        print("policy-it: no user rehablink here: the test copy names the user daemon")
    try:
        tech_gid = grp.getgrnam("rehablink").gr_gid
    except KeyError:
        tech_gid = grp.getgrnam("staff").gr_gid
        text = text.replace('group="rehablink"', 'group="staff"')
        print("policy-it: no group rehablink here: the test copy names the group staff")
    OWNER = (owner.pw_uid, owner.pw_gid, [owner.pw_gid])
    NOBODY = (nobody.pw_uid, nobody.pw_gid, [])
    TECH = (nobody.pw_uid, nobody.pw_gid, [tech_gid])
    ROOT = None

    tmp = tempfile.mkdtemp(prefix="policy-it-")
    os.chmod(tmp, 0o755)		# other uids connect to the socket in it
    pdir = os.path.join(tmp, "system.d")
    os.mkdir(pdir)
    with open(os.path.join(pdir, "org.rehablink.Gateway.conf"), "w") as f:
        f.write(text)
    conf = sysbus_conf(tmp, pdir)
    log = open(os.path.join(tmp, "dbus.log"), "w+")
    bus = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork",
                            "--print-address=1"], stdout=subprocess.PIPE, stderr=log, text=True)
    serve = None
    fails = Failures()
    try:
        address = bus.stdout.readline().strip()
        if not address:
            log.seek(0)
            raise SystemExit(f"policy-it: dbus-daemon did not start:\n{log.read()}")
        log.seek(0)
        warnings = [w for w in log.read().splitlines()
                    if "fd limit" not in w and "Unknown" not in w]
        fails.expect("dbus-daemon loads the policy without complaint", warnings, [])

        # nobody and a technician cannot take the name, before and while it is free
        fails.expect("nobody owns the name", run_as(NOBODY, "--own", address), DENIED)
        fails.expect("technician owns the name", run_as(TECH, "--own", address), DENIED)
        # the bus itself still answers nobody: the refusals below are the policy's
        fails.expect("nobody calls the bus (ListNames)",
                     run_as(NOBODY, "--call", address, "org.freedesktop.DBus",
                            "org.freedesktop.DBus", "ListNames"), "ok")

        # the daemon's user owns it
        serve = subprocess.Popen(as_user(*OWNER) + [PYTHON, SELF, "--serve", address],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        got = serve.stdout.readline().strip()
        fails.expect(f"user {owner.pw_name} owns the name", got.split(" ")[0], "owned")
        unique = got.split(" ")[1] if got.startswith("owned ") else NAME

        calls = [
            ("GetStatus", IFACE, "GetStatus"),
            ("Introspect", "org.freedesktop.DBus.Introspectable", "Introspect"),
            ("Properties.GetAll", "org.freedesktop.DBus.Properties", "GetAll"),
            ("Peer.Ping", "org.freedesktop.DBus.Peer", "Ping"),
            ("another interface", "org.rehablink.Test1", "Secret"),
        ]
        for what, iface, method in calls:
            fails.expect(f"root calls {what}",
                         run_as(ROOT, "--call", address, NAME, iface, method), "ok")
        for what, iface, method in calls:
            want = DENIED if iface == "org.rehablink.Test1" else "ok"
            fails.expect(f"technician calls {what}",
                         run_as(TECH, "--call", address, NAME, iface, method), want)
        for what, iface, method in calls:
            fails.expect(f"nobody calls {what}",
                         run_as(NOBODY, "--call", address, NAME, iface, method), DENIED)
        fails.expect("nobody calls GetStatus by the unique name",
                     run_as(NOBODY, "--call", address, unique, IFACE, "GetStatus"), DENIED)
        fails.expect("technician calls another interface by the unique name",
                     run_as(TECH, "--call", address, unique, "org.rehablink.Test1", "Secret"),
                     DENIED)
        fails.expect("nobody owns the name while it is taken",
                     run_as(NOBODY, "--own", address), DENIED)

        # root may own it (manual runs, tests) once the daemon is gone
        serve.terminate()
        serve.wait(10)
        serve = None
        deadline = time.monotonic() + 5
        while True:
            got = run_as(ROOT, "--own", address)
            if got == "owned" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        fails.expect("root owns the name", got, "owned")
    finally:
        if serve:
            serve.kill()
            serve.wait()
        bus.terminate()
        bus.wait(10)
        if fails.n == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"policy-it: kept {tmp}")
    print(f"policy-it: {fails.total - fails.n}/{fails.total} passed")
    return 1 if fails.n else 0


if __name__ == "__main__":
    sys.exit(main())
