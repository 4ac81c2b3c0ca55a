#!/bin/sh
# The one list of Debian packages rehablink needs to build, test and demo.
# Run as root: installs what is missing (apt-get). Otherwise: prints the exact
# apt-get line and exits 1. Later parts add their packages to PKGS, nowhere else.
# PKGS are native packages; ARM64_PKGS are installed as pkg:arm64 (Debian
# multiarch: make check-arm64, make deb-arm64, make check-deb), which needs
# arm64 as a foreign dpkg architecture (added here when it is not one yet).
# Fast when nothing is missing: one dpkg-query call, no forks per package.
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
gdb
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
systemd
dpkg-dev
debhelper
fakeroot
glib-networking
man-db
adduser
lintian
crossbuild-essential-arm64
qemu-user
faketime
qemu-user-static
debootstrap
"

# the target side of the cross build: headers, libraries, and pkgconf:arm64
# for /usr/bin/aarch64-linux-gnu-pkg-config
ARM64_PKGS="
libc6-dev
pkgconf
libglib2.0-dev
libjson-glib-dev
libsqlite3-dev
libsystemd-dev
libcmocka-dev
libpaho-mqtt-dev
libbluetooth-dev
"

native=$(dpkg --print-architecture)
# on an arm64 machine the "cross" side is the native one
if [ "$native" = arm64 ]; then
	ARM64_PKGS=""
	PKGS=$(printf '%s\n' $PKGS | grep -v -e '^crossbuild-essential-arm64$' -e '^qemu-user')
fi

add_arch=""
if [ -n "$ARM64_PKGS" ]; then
	case " $(dpkg --print-foreign-architectures | tr '\n' ' ') " in
	*" arm64 "*) ;;
	*) add_arch="dpkg --add-architecture arm64" ;;
	esac
fi

# every installed instance, as " name:arch " (arch "all" counts as native)
# shellcheck disable=SC2086
installed=" $(dpkg-query -W -f='${db:Status-Abbrev}${Package}:${Architecture}\n' \
	$PKGS $(for p in $ARM64_PKGS; do printf '%s:arm64 ' "$p"; done) 2>/dev/null |
	sed -n 's/^ii *//p' | sed "s/:all\$/:$native/" | tr '\n' ' ') "

missing=""
for p in $PKGS; do
	case "$installed" in *" $p:$native "*) ;; *) missing="$missing $p" ;; esac
done
for p in $ARM64_PKGS; do
	case "$installed" in *" $p:arm64 "*) ;; *) missing="$missing $p:arm64" ;; esac
done

[ -z "$missing" ] && exit 0

line="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "rehablink: missing Debian packages:$missing" >&2
	echo "rehablink: install them as root with:" >&2
	echo "  ${add_arch:+$add_arch && }apt-get update && $line" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if [ -n "$add_arch" ]; then
	echo "rehablink: adding arm64 as a foreign dpkg architecture" >&2
	$add_arch
fi
echo "rehablink: installing missing Debian packages:$missing" >&2
apt-get update -q >&2
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >&2
