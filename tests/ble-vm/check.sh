#!/bin/sh
# tests/ble-vm/check.sh [BINDIR] [-- run-in-vm.sh options...]
#
# The real-BlueZ test: boots the ble-vm (../shared/ble-vm/run-in-vm.sh
# beside this checkout, as in CI) with three linked btvirt controllers and
# runs tests/ble-vm/guest.sh in it: rehablink-sim --backend bluez on hci1,
# BlueZ's example peripheral on hci2, tests/ble-vm/vm-central on hci0.
# BINDIR (default build/native/bin) holds rehablink-sim and vm-central.
#
# The controllers are LE-only (btvirt -L), like the wearable: with
# dual-mode controllers, LE Secure Connections pairing derives a BR/EDR
# link key too (CTKD), the peripheral's bluetoothd then tries a reverse
# SDP browse over BR/EDR, and closing that failed L2CAP socket hit
# "list_del corruption" in hci_chan_del in Debian 12's 6.1 kernel: a
# kernel BUG that killed bluetoothd ~1 s after every Pair.
# bluetoothd runs with [GATT] Channels = 1 (plain ATT on CID 4, as with
# most wearables); BLE_VM_EATT=1 keeps BlueZ's default EATT (passes too).
#
# Environment: BLE_VM_DIR (default <repo>/../shared/ble-vm), BLE_VM_OUT
# (guest logs, default <repo>/build/ble-vm; the VM's own logs go to
# $BLE_VM_OUT/vm-logs), BLE_VM_TIMEOUT (default 480 s).
# Exit status: 0 pass, 1 fail, 77 when the VM cannot run here (no qemu,
# no kernel image, no run-in-vm.sh): make may report that as skipped.
set -u

HERE=$(cd "$(dirname "$0")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)
BIN=${1:-build/native/bin}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
VMDIR=${BLE_VM_DIR:-$REPO/../shared/ble-vm}
OUT=${BLE_VM_OUT:-$REPO/build/ble-vm}
TIMEOUT=${BLE_VM_TIMEOUT:-480}

skip() { echo "check-ble-vm: SKIP: $*" >&2; exit 77; }

[ -f "$VMDIR/run-in-vm.sh" ] || skip "no $VMDIR/run-in-vm.sh"
command -v qemu-system-x86_64 >/dev/null 2>&1 ||
	skip "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
ls /boot/vmlinuz-* >/dev/null 2>&1 ||
	skip "no /boot/vmlinuz-* (apt-get install linux-image-amd64)"
[ -x /usr/bin/btvirt ] || [ -x /usr/bin/bluetoothctl ] ||
	skip "BlueZ missing (apt-get install bluez bluez-test-tools)"

case "$BIN" in /*) ;; *) BIN=$REPO/$BIN ;; esac
for b in rehablink-sim vm-central; do
	[ -x "$BIN/$b" ] || { echo "check-ble-vm: $BIN/$b not built" >&2; exit 1; }
done

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd -P)
CONF=
if [ "${BLE_VM_EATT:-0}" != 1 ]; then
	sed 's/^#Channels = 3$/Channels = 1/' /etc/bluetooth/main.conf >"$OUT/main.conf"
	grep -q '^Channels = 1$' "$OUT/main.conf" ||
		printf '[GATT]\nChannels = 1\n' >>"$OUT/main.conf"
	CONF=$OUT/main.conf
fi
cd "$REPO" || exit 1
start=$(date +%s)
bash "$VMDIR/run-in-vm.sh" --workdir "$REPO" --logdir "$OUT/vm-logs" \
	--controllers 3 --le-only --timeout "$TIMEOUT" ${CONF:+--main-conf "$CONF"} "$@" -- \
	sh tests/ble-vm/guest.sh "$BIN" "$OUT"
rc=$?
secs=$(( $(date +%s) - start ))
case $rc in
0) echo "check-ble-vm: PASS (${secs}s; logs in $OUT)" ;;
124) echo "check-ble-vm: FAIL: VM timed out after ${TIMEOUT}s (logs in $OUT)" ;;
125) echo "check-ble-vm: FAIL: the VM or its Bluetooth stack did not come up (logs in $OUT/vm-logs)" ;;
*) echo "check-ble-vm: FAIL: status $rc after ${secs}s (logs in $OUT)" ;;
esac
[ $rc = 0 ] || exit 1
