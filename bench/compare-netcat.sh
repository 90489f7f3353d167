#!/usr/bin/env bash
# Compares netkit's UDP and TCP echo servers with socat on this machine, in
# the same run, over 127.0.0.1, and prints a Markdown table.
#
#   UDP: "netkit udp bench" (the same client for both) at a high --rate
#        against "netkit udp serve --mode echo" and against
#        "socat -T1 UDP4-RECVFROM:PORT,fork PIPE"; datagrams/s echoed,
#        loss and round trip.
#   TCP: "netkit tcp dial" (the same client for both) pushes SIZE MiB of
#        random data through the echo server and reads it back at once,
#        checked with cmp: netkit tcp serve --mode echo vs
#        "socat TCP4-LISTEN:PORT,fork,reuseaddr PIPE"; MiB/s.
#
#   bench/compare-netcat.sh                 # 64-byte datagrams, 256 MiB TCP
#   RATE=200000 SIZE_MIB=1024 bench/compare-netcat.sh
#
# Environment: NETKIT_BIN, a netkit binary with the udp and tcp commands
# (default: go build ./cmd/netkit); RATE, the UDP target rate (default
# 100000); DURATION (default 5s); SIZE_MIB (default 256); PORT, the first
# port (default 19300). Needs socat, cmp and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "compare-netcat.sh: $*" >&2; exit 1; }
for t in socat cmp head; do
	command -v "$t" >/dev/null || die "$t not found (apt-get install -y socat)"
done
rate=${RATE:-100000} duration=${DURATION:-5s} size_mib=${SIZE_MIB:-256} port=${PORT:-19300}
work=$(mktemp -d /tmp/netkit-netcat.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

bin=${NETKIT_BIN:-$work/netkit}
[ -n "${NETKIT_BIN:-}" ] || go build -o "$bin" ./cmd/netkit
"$bin" udp --help >/dev/null 2>&1 || die "$bin has no udp command: wire newUDPCmd/newTCPCmd into root.go, or set NETKIT_BIN"

# start NAME CMD...: runs a server in the background.
start() { local name=$1; shift; "$@" >"$work/$name.out" 2>"$work/$name.err" & pids+=($!); }
stop_last() { kill "${pids[-1]}" 2>/dev/null || true; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; }
# wait_udp PORT: until an echo comes back.
wait_udp() { for _ in $(seq 50); do "$bin" udp dial "127.0.0.1:$1" --count 1 --timeout 100ms >/dev/null 2>&1 && return; done; die "no UDP echo on $1"; }
wait_tcp() { for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; die "nothing listening on TCP $1"; }

udp_row() { # NAME PORT
	local json
	json=$("$bin" udp bench "127.0.0.1:$2" --rate "$rate" --size 64 --duration "$duration" --json)
	echo "$json" >"$work/udp-$1.json"
	python3 -c 'import json,sys; r=json.load(sys.stdin); print("| UDP echo, %s | %.0f datagrams/s | loss %.2f%%, rtt p50 %.3f ms, p99 %.3f ms |" % (sys.argv[1], r["received"]/r["duration_s"], r["loss_percent"], r["rtt_p50_ms"], r["rtt_p99_ms"]))' "$1" <<<"$json"
}

tcp_row() { # NAME PORT
	local in=$work/in out=$work/out start end
	[ -f "$in" ] || head -c $((size_mib << 20)) /dev/urandom >"$in"
	start=$(date +%s.%N)
	"$bin" tcp dial "127.0.0.1:$2" <"$in" >"$out"
	end=$(date +%s.%N)
	cmp -s "$in" "$out" || die "TCP echo through $1 differs from its input"
	python3 -c 'import sys; print("| TCP echo, %s | %.0f MiB/s | %d MiB there and back |" % (sys.argv[1], float(sys.argv[2])/(float(sys.argv[4])-float(sys.argv[3])), int(sys.argv[2])))' "$1" "$size_mib" "$start" "$end"
}

echo "| Test | Throughput | Notes |"
echo "|---|---|---|"
start udp-netkit "$bin" udp serve --listen "127.0.0.1:$port" --mode echo
wait_udp "$port"; udp_row netkit "$port"; stop_last
port=$((port + 1))
start udp-socat socat -T1 "UDP4-RECVFROM:$port,bind=127.0.0.1,fork" PIPE
wait_udp "$port"; udp_row socat "$port"; stop_last
port=$((port + 1))
start tcp-netkit "$bin" tcp serve --listen "127.0.0.1:$port" --mode echo
wait_tcp "$port"; tcp_row netkit "$port"; stop_last
port=$((port + 1))
start tcp-socat socat "TCP4-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" PIPE
wait_tcp "$port"; tcp_row socat "$port"; stop_last
