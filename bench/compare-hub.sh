#!/usr/bin/env bash
# Runs the netkit hub and Centrifugo v6.9.1 on this machine, one after the
# other, through the same load generator, and prints a Markdown table of
# their figures and ratios:
#
#   fanout1k  fanout to 1,000 subscribers, 100-byte messages, max rate, window 100
#   fanout5k  the same to 5,000 subscribers
#   idle10k   10,000 idle connections, one channel each (server RSS per connection)
#   echo      one client's publish to its own delivery, one at a time
#
# and with --cases (or --all) also:
#
#   fanout1k-h0, fanout5k-h0  fanout1k and fanout5k with history off in both servers
#                             (netkit --history-size 0; Centrifugo history_size 0)
#   paced20, paced200         fanout to 1,000 subscribers at 20 and 200 messages/s, 20 s
#                             (the --quick duration with --quick)
#   connect   5,000 clients connect with HS256 tokens (the same secret in both servers)
#   recover   1,000 subscribers leave, 100 messages are published, all reconnect at once
#             and recover them
#   bp100, bp100s, bp1k, bp1ks  backpressure: 100 or 1,000 readers, with s one stuck
#             subscriber too; the stuck cases publish for twice the run time (20 s),
#             past netkit's hub.write_timeout (10 s), so that they show the
#             publisher after the stuck subscriber is dropped, and wait up to 20 s
#             for messages in flight (netkit holds the publisher up to 10 s)
#
# History is on in both servers unless a case ends in -h0: netkit keeps 100
# messages for 10 minutes by default, and bench/centrifugo/config.json gives
# channels without a namespace history_size 100, history_ttl 600s and
# force_recovery.
#
# Each run starts its server fresh and passes its pid as --server-pid, so
# CPU time and memory come from /proc. Runs alternate between the servers,
# and which goes first alternates between repetitions.
#
#   bench/compare-hub.sh            # 3 repetitions, 10 s per run (about 10 minutes)
#   bench/compare-hub.sh --quick    # 1 repetition, 3 s per run (about 2 minutes)
#   bench/compare-hub.sh --runs 5
#   bench/compare-hub.sh --cases "connect recover"
#   bench/compare-hub.sh --all      # every case (about 11 minutes per repetition)
#   bench/compare-hub.sh --all --runs 1 --start 2   # only repetition 2 (file names
#                                   # and order as in a run of 3); with the same OUT,
#                                   # three such calls make one table of 3 runs
#
# Environment: OUT, the directory for reports and logs (default: a new one
# under /tmp); NETKIT_BIN, a netkit binary to use instead of building one;
# CENTRIFUGO_BIN, a Centrifugo binary (default: centrifugo on PATH, else
# ~/.cache/netkit-bench/bin/centrifugo, installed there with "go install
# github.com/centrifugal/centrifugo/v6@v6.9.1" if missing). netkit, the
# Centrifugo adapter and the table printer are built into $OUT/bin.
# NETKIT_PORT and CENTRIFUGO_PORT, the ports the servers listen on
# (default 9999 and 8000, free on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3 start=1 dur=10s stuckdur=20s hold=10s paced=20s
cases="fanout1k fanout5k idle10k echo"
# History on and off of one size run next to each other, so that the ratio
# between them sees the same load on the machine.
all="fanout1k fanout1k-h0 fanout5k fanout5k-h0 idle10k echo paced20 paced200 connect recover bp100 bp100s bp1k bp1ks"
while [ $# -gt 0 ]; do
	case $1 in
	--quick) runs=1 dur=3s stuckdur=3s hold=2s paced=3s ;;
	--runs) runs=$2; shift ;;
	--start) start=$2; shift ;;
	--cases) cases=$2; shift ;;
	--all) cases=$all ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "compare-hub.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done

OUT=${OUT:-$(mktemp -d /tmp/netkit-compare.XXXXXX)}
mkdir -p "$OUT"
# Binaries built from this tree go under $OUT (other checkouts build their
# own into the shared cache at the same time); only Centrifugo is cached.
cache=${XDG_CACHE_HOME:-$HOME/.cache}/netkit-bench/bin
bin=$OUT/bin
mkdir -p "$bin" "$cache"

die() { echo "compare-hub.sh: $*" >&2; exit 1; }

# --- binaries ---
netkit=${NETKIT_BIN:-}
if [ -z "$netkit" ]; then
	echo "building netkit ..." >&2
	go build -o "$bin/netkit" ./cmd/netkit
	netkit=$bin/netkit
fi
"$netkit" bench hub --help >/dev/null 2>&1 ||
	die "$netkit has no 'bench hub' command (newBenchCmd is not wired into internal/cli/root.go)"
echo "building the Centrifugo adapter ..." >&2
go build -o "$bin/centrifugo-bench" ./bench/centrifugo
go build -o "$bin/compare" ./bench/compare
centrifugo=${CENTRIFUGO_BIN:-$(command -v centrifugo || true)}
if [ -z "$centrifugo" ]; then
	centrifugo=$cache/centrifugo
	if [ ! -x "$centrifugo" ]; then
		echo "installing Centrifugo v6.9.1 (a few minutes) ..." >&2
		GOBIN=$cache go install github.com/centrifugal/centrifugo/v6@v6.9.1
	fi
fi

nport=${NETKIT_PORT:-9999} cport=${CENTRIFUGO_PORT:-8000}
# secret is the HS256 key of client tokens; bench/centrifugo/config.json has
# the same as client.token.hmac_secret_key.
secret=netkit-bench-secret

# --- servers ---
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
	for _ in $(seq 100); do port_open "$1" && return 0; sleep 0.1; done
	die "nothing listens on 127.0.0.1:$1 after 10 s (see $OUT/*.log)"
}
for port in "$nport" "$cport"; do
	! port_open $port || die "127.0.0.1:$port is in use; stop what listens there"
done

server_pid=
start_server() { # netkit | centrifugo, history on | off
	case $1-$2 in
	netkit-on)
		"$netkit" hub --listen "127.0.0.1:$nport" --api-key bench --log-level warn --jwt-secret "$secret" >>"$OUT/netkit.log" 2>&1 &
		server_pid=$! ;;
	netkit-off)
		"$netkit" hub --listen "127.0.0.1:$nport" --api-key bench --log-level warn --jwt-secret "$secret" --history-size 0 >>"$OUT/netkit.log" 2>&1 &
		server_pid=$! ;;
	centrifugo-on)
		"$centrifugo" -c bench/centrifugo/config.json --http_server.port "$cport" >>"$OUT/centrifugo.log" 2>&1 &
		server_pid=$! ;;
	centrifugo-off)
		CENTRIFUGO_CHANNEL_WITHOUT_NAMESPACE_HISTORY_SIZE=0 CENTRIFUGO_CHANNEL_WITHOUT_NAMESPACE_HISTORY_TTL=0s \
			CENTRIFUGO_CHANNEL_WITHOUT_NAMESPACE_FORCE_RECOVERY=false \
			"$centrifugo" -c bench/centrifugo/config.json --http_server.port "$cport" >>"$OUT/centrifugo.log" 2>&1 &
		server_pid=$! ;;
	esac
	if [ "$1" = netkit ]; then wait_port "$nport"; else wait_port "$cport"; fi
}
stop_server() {
	kill -TERM "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=
}
trap 'if [ -n "$server_pid" ]; then kill -KILL "$server_pid" 2>/dev/null || true; fi' EXIT

# generate SERVER CASE RUN: one run of the load generator, its report in
# $OUT/SERVER-CASE-RUN.json.
generate() {
	local server=$1 case=$2 run=$3 args history=on
	case $case in
	fanout1k | fanout1k-h0) args=(fanout --subscribers 1000 --duration "$dur") ;;
	fanout5k | fanout5k-h0) args=(fanout --subscribers 5000 --duration "$dur") ;;
	idle10k) args=(idle --connections 10000 --duration "$hold" --source-ips 127.0.0.2-127.0.0.9) ;;
	echo) args=(echo --duration "$dur") ;;
	paced20) args=(fanout --subscribers 1000 --rate 20 --duration "$paced") ;;
	paced200) args=(fanout --subscribers 1000 --rate 200 --duration "$paced") ;;
	connect) args=(connect --connections 5000 --jwt-secret "$secret") ;;
	recover) args=(recover --subscribers 1000 --messages 100) ;;
	bp100) args=(backpressure --subscribers 100 --duration "$dur") ;;
	bp100s) args=(backpressure --subscribers 100 --stuck 1 --duration "$stuckdur" --drain 20s) ;;
	bp1k) args=(backpressure --subscribers 1000 --duration "$dur") ;;
	bp1ks) args=(backpressure --subscribers 1000 --stuck 1 --duration "$stuckdur" --drain 20s) ;;
	*) die "unknown case $case (see --help)" ;;
	esac
	case $case in *-h0) history=off ;; esac
	local name=$server-$case-$run
	echo "$(date -u +%H:%M:%S) run $run: $case on $server" >&2
	start_server "$server" "$history"
	local rc=0
	if [ "$server" = netkit ]; then
		"$netkit" bench hub "${args[@]}" --url "ws://127.0.0.1:$nport/ws" \
			--api "http://127.0.0.1:$nport" --api-key bench \
			--server-pid "$server_pid" --json >"$OUT/$name.json" 2>"$OUT/$name.err" || rc=$?
	else
		"$bin/centrifugo-bench" "${args[@]}" --url "ws://127.0.0.1:$cport/connection/websocket" \
			--server-pid "$server_pid" --json >"$OUT/$name.json" 2>"$OUT/$name.err" || rc=$?
	fi
	stop_server
	if [ $rc -ne 0 ]; then
		echo "  failed (exit $rc): $(tail -1 "$OUT/$name.err")" >&2
		[ -s "$OUT/$name.json" ] || rm -f "$OUT/$name.json"
	fi
	sleep 1
}

{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r)"
	echo "go: $(go version | cut -d' ' -f3-)"
	echo "netkit: $("$netkit" version), tree $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' with changes')"
	echo "centrifugo: $("$centrifugo" version) (go install github.com/centrifugal/centrifugo/v6@v6.9.1 reports v0.0.0), config bench/centrifugo/config.json"
	echo "runs: $start to $((start + runs - 1)), $dur per run (idle: held $hold, paced: $paced, stuck: $stuckdur), client and servers on the same machine"
	echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "cases: $cases"
} | tee -a "$OUT/machine.txt" >&2

for run in $(seq "$start" $((start + runs - 1))); do
	order="netkit centrifugo"
	[ $((run % 2)) -eq 1 ] || order="centrifugo netkit"
	for case in $cases; do
		for server in $order; do
			generate "$server" "$case" "$run"
		done
	done
done

echo >&2
echo "reports and logs: $OUT" >&2
"$bin/compare" "$OUT" | tee "$OUT/table.md"
