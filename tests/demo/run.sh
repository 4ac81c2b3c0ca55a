#!/bin/sh
# make demo: a simulated recovery day through both wire contracts and a real
# mosquitto on loopback. The demo program plays wearable and gateway (encode
# -> BLE bytes -> decode -> clinic JSON); mosquitto_sub plays the clinic.
set -eu
demo=$1
work=$(mktemp -d /tmp/rehablink-demo.XXXXXX)
broker_pid=""
sub_pid=""
cleanup() {
	[ -n "$sub_pid" ] && kill "$sub_pid" 2>/dev/null || true
	[ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM HUP PIPE

# a free loopback port for our own broker (never the system's 1883)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/broker.conf" <<CONF
per_listener_settings true
persistence false
log_dest stderr
listener $port 127.0.0.1
allow_anonymous true
CONF
mosquitto -c "$work/broker.conf" 2> "$work/broker.log" &
broker_pid=$!
i=0
until mosquitto_pub -h 127.0.0.1 -p "$port" -t rehablink/v1/probe -n 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 50 ] || { cat "$work/broker.log"; echo "demo: broker did not start" >&2; exit 1; }
	sleep 0.1
done
echo "demo: mosquitto listening on 127.0.0.1:$port"

# 1. the wearable side and the gateway side, in one program for now
"$demo" --messages "$work/messages.tsv"
n=$(wc -l < "$work/messages.tsv")

# 2. the clinic subscribes, then the gateway publishes (QoS 1)
mosquitto_sub -h 127.0.0.1 -p "$port" -q 1 -t 'rehablink/v1/#' -v -C "$n" -W 30 \
	> "$work/clinic.log" &
sub_pid=$!
sleep 0.3
tab=$(printf '\t')
while IFS="$tab" read -r topic retain json; do
	if [ "$retain" = retained ]; then r=-r; else r=; fi
	mosquitto_pub -h 127.0.0.1 -p "$port" -q 1 $r -t "$topic" -m "$json"
done < "$work/messages.tsv"
wait "$sub_pid" || { echo "demo: the clinic did not receive all $n messages" >&2; exit 1; }
sub_pid=""

# 3. what the clinic saw
echo
echo "== the clinic received $(wc -l < "$work/clinic.log") messages:"
awk '{ split($1, t, "/"); k = t[4]; for (i = 5; i <= length(t); i++) if (t[i] !~ /^(gw|p|w)-/) k = k "/" t[i]; c[k]++ }
     END { for (k in c) printf "   %3d  %s\n", c[k], k }' "$work/clinic.log" | sort -k2
echo
echo "== a pain report, as the clinic received it:"
grep -m1 '/pain ' "$work/clinic.log" | cut -d' ' -f2- | /usr/bin/python3 -m json.tool
echo
echo "== the escalation, as the clinic received it:"
grep -m1 '/alert ' "$work/clinic.log" | cut -d' ' -f2- | /usr/bin/python3 -m json.tool
echo
echo "== the day summary:"
grep -m1 '/aggregate/day ' "$work/clinic.log" | cut -d' ' -f2- | /usr/bin/python3 -m json.tool
echo
echo "demo: done"
