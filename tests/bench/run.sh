#!/bin/sh
# make bench: measures the ceilings of this machine (a private dbus-daemon's
# notification rate, paho's QoS 1 rate to a loopback mosquitto) and then
# rehablink's own numbers in the same run, and writes the table to
# docs/performance.md. Benchmarks, not tests: nothing here passes or fails on
# a number.
set -eu
bin=$1
work=$(mktemp -d /tmp/rehablink-bench.XXXXXX)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM HUP PIPE

# private bus
dbus-daemon --session --nofork --nopidfile --print-address=3 \
	--address="unix:path=$work/bus" 3> "$work/bus.addr" &
pids="$pids $!"
i=0; while [ ! -s "$work/bus.addr" ]; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.05; done
DBUS_SYSTEM_BUS_ADDRESS=$(head -n1 "$work/bus.addr"); export DBUS_SYSTEM_BUS_ADDRESS

# loopback broker (max_inflight_messages 0: no v5 Receive Maximum stall)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/broker.conf" <<CONF
per_listener_settings true
persistence false
max_inflight_messages 0
max_queued_messages 1000000
log_dest stderr
listener $port 127.0.0.1
allow_anonymous true
CONF
mosquitto -c "$work/broker.conf" 2> "$work/broker.log" &
pids="$pids $!"
i=0; until mosquitto_pub -h 127.0.0.1 -p "$port" -t rehablink/v1/probe -n 2>/dev/null; do
	i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.05; done

out=$work/results
: > "$out"
# the machine's state, for the table's footer
echo "bench_start_epoch $(date +%s)" >> "$out"
read -r l1 l5 l15 _ < /proc/loadavg
printf 'loadavg_start %s\nloadavg5_start %s\nloadavg15_start %s\n' "$l1" "$l5" "$l15" >> "$out"
echo "bench: D-Bus notification ceiling..."
"$bin/bench-dbus-ceiling" 100000 >> "$out"
echo "bench: notifications through the gateway's BlueZ adapter..."
"$bin/bench-bluez-ingest" 100000 >> "$out"
echo "bench: the gateway's BLE path on the fake bluetoothd (24 h sync, reconnects)..."
REHABLINK_FAKE_BLUETOOTHD=$bin/fake-bluetoothd "$bin/bench-ble" >> "$out"
echo "bench: paho QoS 1 ceiling..."
"$bin/bench-paho-ceiling" "tcp://127.0.0.1:$port" 20000 >> "$out"
echo "bench: proto codecs and payloads..."
"$bin/bench-proto" >> "$out"
echo "bench: rehablinkd end to end (a synced day, live flash writes over 3 simulated hours, outbox drains; ~10 min)..."
/usr/bin/python3 tests/bench/bench-gateway.py "$bin" "$port" >> "$out"
echo "bench: escalation latency, with and without a 100 000-message backlog (~2 min)..."
/usr/bin/python3 tests/bench/bench-escalation.py "$bin" "$port" "${BENCH_REPORTS:-1000}" >> "$out"
echo "bench: rehablinkd start to ready, RSS over a million records, instructions per record (callgrind; ~8 min)..."
/usr/bin/python3 tests/bench/bench-daemon.py "$bin" "$port" >> "$out"
cat "$out"

/usr/bin/python3 tests/bench/report.py "$out" docs/performance.md
echo "bench: wrote docs/performance.md"
