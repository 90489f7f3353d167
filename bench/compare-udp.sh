#!/usr/bin/env bash
# Compares "netkit udp serve --mode echo" (recvmmsg/sendmmsg batches on
# Linux) with the textbook echo loop, one ReadFromUDP and one WriteToUDP
# per datagram (bench/udptextbook), side by side in one run on 127.0.0.1.
# The same client drives both: "netkit udp bench", 64-byte datagrams, at
# each rate of RATES for DURATION (above 10,000/s it sends runs of
# datagrams, on Linux each run as one UDP GSO send, so that the client is
# not the limit). For each run it prints the rate the
# client reached, the loss, and the server's CPU time (user + system, from
# /proc/PID/stat) per million datagrams echoed. The servers alternate
# which goes first at each rate; each is started fresh per run.
#
#   bench/compare-udp.sh                          # rates 50k 100k 200k 400k, 5 s, 2 rounds
#   RATES="60000 200000" DURATION=3s ROUNDS=1 bench/compare-udp.sh
#   CLIENTS=4 RATES="100000 200000" bench/compare-udp.sh   # 4 clients at once, RATE/4 each
#
# With CLIENTS, the rate, loss and CPU per echo are the clients' totals.
# Environment: NETKIT_BIN, a netkit binary (default: go build ./cmd/netkit);
# PORT, the first port (default 19400); CLIENTS, clients at once (default 1).
# Needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "compare-udp.sh: $*" >&2; exit 1; }
command -v python3 >/dev/null || die "python3 not found"
rates=${RATES:-"50000 100000 200000 400000"} duration=${DURATION:-5s} rounds=${ROUNDS:-2} port=${PORT:-19400}
clients=${CLIENTS:-1}
work=$(mktemp -d /tmp/netkit-udp.XXXXXX)
pid=
cleanup() { [ -z "$pid" ] || kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

bin=${NETKIT_BIN:-$work/netkit}
[ -n "${NETKIT_BIN:-}" ] || go build -o "$bin" ./cmd/netkit
go build -o "$work/textbook" ./bench/udptextbook
ticks=$(getconf CLK_TCK)

# cpu PID: user + system CPU seconds of the process so far.
cpu() { awk -v t="$ticks" '{ sub(/^.*\) /, ""); print ($12 + $13) / t }' "/proc/$1/stat"; }

# run NAME RATE: starts the server, drives it, prints a table row.
run() {
	local name=$1 rate=$2 json c0 c1
	port=$((port + 1))
	case $name in
	netkit) "$bin" udp serve --listen "127.0.0.1:$port" --mode echo >"$work/srv.out" 2>&1 & ;;
	textbook) "$work/textbook" -listen "127.0.0.1:$port" >"$work/srv.out" 2>&1 & ;;
	esac
	pid=$!
	for _ in $(seq 50); do "$bin" udp dial "127.0.0.1:$port" --count 1 --timeout 100ms >/dev/null 2>&1 && break; done
	c0=$(cpu "$pid")
	# CLIENTS clients at once, each at RATE/CLIENTS, each its own socket.
	local cpids=()
	for c in $(seq "$clients"); do
		"$bin" udp bench "127.0.0.1:$port" --rate $((rate / clients)) --size 64 --duration "$duration" --json >"$work/bench.$c.json" &
		cpids+=($!)
	done
	wait "${cpids[@]}"
	c1=$(cpu "$pid")
	kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
	python3 -c '
import json, sys
rs = [json.load(open(f)) for f in sys.argv[5:]]
sent = sum(r["sent"] for r in rs); received = sum(r["received"] for r in rs)
cpu = float(sys.argv[3]) - float(sys.argv[2])
per = cpu / received * 1e6 if received else float("nan")
loss = 100 * (sent - received) / sent if sent else float("nan")
print("| %s | %s | %.0f | %.2f%% | %.2f | %.2f |" % (sys.argv[1], sys.argv[4], sum(r["rate"] for r in rs), loss, cpu, per))
' "$rate" "$c0" "$c1" "$name" "$work"/bench.*.json
	rm -f "$work"/bench.*.json
}

echo "| target rate | server | client sent/s | loss | server CPU s | CPU s per 1M echoed |"
echo "|---:|---|---:|---:|---:|---:|"
for round in $(seq "$rounds"); do
	for rate in $rates; do
		if [ $((round % 2)) -eq 1 ]; then order="textbook netkit"; else order="netkit textbook"; fi
		for name in $order; do run "$name" "$rate"; done
	done
done
