#!/bin/sh
# The one list of Debian packages rehablink needs to build, test and demo.
# Run as root: installs what is missing (apt-get). Otherwise: prints the exact
# apt-get line and exits 1. Later parts add their packages to PKGS, nowhere else.
set -eu

PKGS="
build-essential
pkg-config
libglib2.0-dev
libjson-glib-dev
libsqlite3-dev
libsystemd-dev
libcmocka-dev
libpaho-mqtt-dev
libbluetooth-dev
clang
libclang-rt-14-dev
llvm
valgrind
python3
python3-jsonschema
mosquitto
mosquitto-clients
openssl
sqlite3
dbus
libglib2.0-bin
qemu-system-x86
linux-image-amd64
busybox-static
cpio
binutils
bluez
bluez-test-tools
bluez-test-scripts
python3-dbus
python3-gi
"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done

[ -z "$missing" ] && exit 0

line="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "rehablink: missing Debian packages:$missing" >&2
	echo "rehablink: install them as root with:" >&2
	echo "  apt-get update && $line" >&2
	exit 1
fi

echo "rehablink: installing missing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >&2
