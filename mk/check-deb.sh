#!/bin/sh
# make check-deb: the arm64 .deb installed and run on arm64, on an amd64 host.
#
#   sh mk/check-deb.sh build/deb/rehablink_V_arm64.deb build/deb CACHE
#
# The real install: an arm64 Debian (debootstrap --variant=minbase, made
# once and kept in CACHE/arm64-base, ~3 min) gets the package with
# `dpkg -i` in a chroot, so its dependencies, its maintainer scripts (the
# system user, the config's group) and its binaries all run as arm64 code
# under qemu-user; then `dpkg --purge`. arm64 code inside the chroot runs
# through binfmt_misc, but never the host's: the chroot lives in its own user
# and mount namespace, with a private binfmt_misc instance (Linux >= 6.7)
# that knows qemu-aarch64-static. Nothing global is registered or mounted.
#
# Without that (an older kernel, or not root) it falls back to unpacking the
# package (dpkg-deb -x) and running its binaries with qemu-aarch64 directly,
# and to resolving its Depends against the host's :arm64 packages (apt-get
# -s); the maintainer scripts are then not run, and it says so.
# CHECK_DEB_UNPACK_ONLY=1 forces that path.
set -eu

deb=$1
dir=$2
# not under build/: the Makefile includes every build/**/*.d, and a Debian
# root is full of /etc/*.d directories
cache=$3
base=$cache/arm64-base
root=$cache/arm64-root
mirror=${DEB_MIRROR:-http://deb.debian.org/debian}
suite=${DEB_SUITE:-bookworm}
qemu_static=/usr/bin/qemu-aarch64-static
# aarch64 ELF, as in qemu's binfmt.d (F: the kernel holds the interpreter
# open, so the static qemu need not be inside the chroot)
magic='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
binfmt=":qemu-aarch64:M::$magic:$mask:$qemu_static:F"

say() { echo "check-deb: $*"; }
fail() { say "FAILED: $*"; exit 1; }

[ -f "$deb" ] || fail "no $deb"

# in_ns CMD...: CMD as root in a new user, mount and pid namespace where
# uids and gids 0..65535 are themselves (the packages chown to system users)
in_ns() {
	fifo=$(mktemp -u)
	mkfifo "$fifo"
	unshare --user --mount --pid --fork --kill-child \
		sh -c 'read _ < "$0"; shift; exec "$@"' "$fifo" x "$@" &
	pid=$!
	self=$(readlink /proc/self/ns/user)
	while [ "$(readlink "/proc/$pid/ns/user" 2>/dev/null)" = "$self" ]; do sleep 0.01; done
	if echo "0 0 65536" > "/proc/$pid/uid_map" && echo "0 0 65536" > "/proc/$pid/gid_map"; then
		echo go > "$fifo"
	else
		kill "$pid"
	fi
	rm -f "$fifo"
	wait "$pid"
}

# run in the namespace: a private binfmt_misc that knows qemu-aarch64-static,
# then "$@"
ns_script='set -e
b=$(mktemp -d)
mount -t binfmt_misc binfmt_misc "$b"
printf "%s" "$BINFMT" > "$b/register"
exec "$@"'

BINFMT=$binfmt
export BINFMT
ns_run() {
	in_ns sh -c "$ns_script" ns "$@"
}

# ---- fallback: unpack and run with qemu-aarch64 ---------------------------

unpack_only() {
	say "no private binfmt_misc here ($1): unpacking only, maintainer scripts NOT run"
	x=$dir/arm64-unpacked
	rm -rf "$x"
	dpkg-deb -x "$deb" "$x"
	apt-get -s -o Debug::NoLocking=1 install --no-install-recommends "./$deb" \
		> "$dir/check-deb-apt.log" 2>&1 || { cat "$dir/check-deb-apt.log"; fail "Depends do not resolve"; }
	say "Depends resolve on this host's :arm64 packages (apt-get -s)"
	run=qemu-aarch64
	file "$x/usr/sbin/rehablinkd" | grep -q 'ARM aarch64' || fail "rehablinkd is not aarch64"
	$run "$x/usr/sbin/rehablinkd" --version
	# the sample names the clinic's CA, which the technician installs
	# (docs/operations.md): here an empty stand-in
	: > "$dir/ca.crt"
	sed "s|^ca_file=.*|ca_file=$dir/ca.crt|" "$x/etc/rehablink/rehablink.conf" > "$dir/check.conf"
	$run "$x/usr/sbin/rehablinkd" --check-config --config "$dir/check.conf"
	if [ -e "$x/usr/bin/rehablinkctl" ]; then
		$run "$x/usr/bin/rehablinkctl" --help > /dev/null
		say "rehablinkctl --help: ok"
	fi
	$run "$x/usr/bin/rehablink-sim" --help > /dev/null
	say "rehablink-sim --help: ok"
	rm -rf "$x"
}

# ---- the real install ---------------------------------------------------------

[ "$(id -u)" -eq 0 ] || { unpack_only "not root"; exit 0; }
[ -z "${CHECK_DEB_UNPACK_ONLY:-}" ] || { unpack_only "CHECK_DEB_UNPACK_ONLY set"; exit 0; }
[ -x "$qemu_static" ] || fail "no $qemu_static (make deps)"
probe=$(ns_run true 2>&1) || { unpack_only "${probe:-mount failed}"; exit 0; }

# the base: minbase plus the package's Depends (so that `dpkg -i` checks them
# without apt); remade when that list changes
depends=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/[[:space:]]//g' |
	grep -v '^$' | sort | paste -sd, -)
if [ "$(cat "$base/.rehablink-depends" 2>/dev/null)" != "$depends" ]; then
	say "making the arm64 base (debootstrap $suite minbase + $depends; once)"
	rm -rf "$base"
	mkdir -p "$cache"
	t0=$(date +%s)
	debootstrap --arch=arm64 --variant=minbase --foreign --include="$depends" \
		"$suite" "$base" "$mirror" > "$dir/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$dir/debootstrap.log"; fail "debootstrap (first stage)"; }
	# container=lxc: debootstrap's mknod probe is refused in a user namespace;
	# the device nodes were made by the first stage
	ns_run env container=lxc chroot "$base" /debootstrap/debootstrap --second-stage \
		>> "$dir/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$dir/debootstrap.log"; rm -rf "$base"; fail "debootstrap (second stage)"; }
	echo "$depends" > "$base/.rehablink-depends"
	say "arm64 base made in $(( $(date +%s) - t0 )) s"
fi

mkdir -p "$cache"
rm -rf "$root"
cp -a "$base" "$root"
cp "$deb" "$root/tmp/rehablink.deb"
cat > "$root/tmp/check.sh" <<'EOF'
set -eu
say() { echo "check-deb: $*"; }
mount -t proc proc /proc
[ "$(uname -m)" = aarch64 ] || [ "$(dpkg --print-architecture)" = arm64 ]
say "in an arm64 chroot: dpkg --print-architecture = $(dpkg --print-architecture)"
# the postinst adds the user to bluetooth when the group exists (bluez's)
addgroup --system --quiet bluetooth
dpkg -i /tmp/rehablink.deb
dpkg-query -W -f='check-deb: installed ${Package} ${Version} ${Architecture}: ${Status}\n' rehablink
say "$(id rehablink)"
say "home: $(getent passwd rehablink | cut -d: -f6), shell $(getent passwd rehablink | cut -d: -f7)"
say "config: $(stat -c '%U:%G %a %n' /etc/rehablink /etc/rehablink/rehablink.conf | paste -sd' ' -)"
[ "$(stat -c '%G %a' /etc/rehablink/rehablink.conf)" = "rehablink 640" ]
id -nG rehablink | grep -qw bluetooth
grep -qx /etc/rehablink/rehablink.conf /var/lib/dpkg/info/rehablink.conffiles
say "conffiles: $(cat /var/lib/dpkg/info/rehablink.conffiles)"
test -f /lib/systemd/system/rehablink.service || say "no unit (config/rehablink.service missing)"
/usr/sbin/rehablinkd --version
# as the daemon's user: the packaged config is readable by it, and valid
# once the clinic's CA is in place (docs/operations.md; an empty stand-in)
touch /etc/rehablink/ca.crt
setpriv --reuid=rehablink --regid=rehablink --init-groups \
	/usr/sbin/rehablinkd --check-config --config /etc/rehablink/rehablink.conf
if [ -x /usr/bin/rehablinkctl ]; then
	/usr/bin/rehablinkctl --help > /dev/null
	say "rehablinkctl --help: ok ($(/usr/bin/rehablinkctl --version 2>&1 | head -n 1))"
fi
/usr/bin/rehablink-sim --help > /dev/null
say "rehablink-sim --help: ok"
dpkg --purge rehablink > /dev/null
[ ! -e /var/lib/rehablink ] && [ ! -e /etc/rehablink ] && ! dpkg-query -W rehablink 2>/dev/null
say "dpkg --purge: /etc/rehablink and /var/lib/rehablink gone"
EOF
t0=$(date +%s)
ns_run chroot "$root" /bin/sh /tmp/check.sh || fail "install in the arm64 chroot"
say "install, run and purge in the arm64 chroot: $(( $(date +%s) - t0 )) s"
rm -rf "$root"
