#!/usr/bin/env bash
# Cluster mode, measured: the same fan-out load (--subscribers on node A,
# the publisher on node B, --rate messages per second of 100 bytes) through
#
#   netkit-memory-1   one netkit hub, memory broker (publisher and subscribers on it)
#   netkit-nats-1     one netkit hub, hub.broker = nats (the cost of cluster mode)
#   netkit-nats-2     two netkit hubs on one nats-server: every message crosses NATS
#   centrifugo-nats-2 two Centrifugo v6.9.1 nodes on the same nats-server (broker.type = nats)
#
# CPU is read from /proc before and after each run for every hub node and
# summed ("hub CPU/delivery"), the nats-server's CPU is reported apart.
# Latency is publish to delivery as the load generator measures it.
# netkit stores every message in JetStream (history and offsets); Centrifugo's
# NATS broker is PUB/SUB only, so its nodes run without history.
# CPU and p99 columns are the median and (min-max) over the runs.
# A fresh nats-server (JetStream, built from the nats-server module this
# repository requires) is started for every run. Runs alternate between
# servers; every case runs --runs times.
#
#   bench/compare-cluster.sh                 # 3 runs, 500 subscribers, 500 msg/s, 10 s
#   bench/compare-cluster.sh --quick         # 1 run, 3 s
#   bench/compare-cluster.sh --runs 5 --subscribers 1000 --rate 1000
#
# Environment: OUT (reports and logs; default a new /tmp directory),
# CENTRIFUGO_BIN (default ~/.cache/netkit-bench/bin/centrifugo).
# Ports 127.0.0.1:24222 (NATS), 29991-29992 (netkit), 28001-28002 (Centrifugo).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3 dur=10s subs=500 rate=500
while [ $# -gt 0 ]; do
	case $1 in
	--quick) runs=1 dur=3s ;;
	--runs) runs=$2; shift ;;
	--subscribers) subs=$2; shift ;;
	--rate) rate=$2; shift ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "compare-cluster.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done

OUT=${OUT:-$(mktemp -d /tmp/netkit-cluster.XXXXXX)}
mkdir -p "$OUT"
# Binaries go into $OUT/bin: another checkout may build into the shared
# cache at the same time. Centrifugo stays in the cache (compare-hub.sh
# installs it there).
bin=$OUT/bin
mkdir -p "$bin"
die() { echo "compare-cluster.sh: $*" >&2; exit 1; }

echo "building netkit, nats-server and the Centrifugo adapter ..." >&2
go build -o "$bin/netkit" ./cmd/netkit
go build -o "$bin/nats-server" github.com/nats-io/nats-server/v2
go build -o "$bin/centrifugo-bench" ./bench/centrifugo
centrifugo=${CENTRIFUGO_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/netkit-bench/bin/centrifugo}
[ -x "$centrifugo" ] || die "no Centrifugo at $centrifugo (bench/compare-hub.sh installs it)"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
	for _ in $(seq 100); do port_open "$1" && return 0; sleep 0.1; done
	die "nothing listens on 127.0.0.1:$1 after 10 s (see $OUT/*.log)"
}
for port in 24222 29991 29992 28001 28002; do
	! port_open $port || die "127.0.0.1:$port is in use"
done

pids=()
stop_all() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
}
trap 'for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done' EXIT

# cpu PID: user+system CPU seconds so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }

start_nats() {
	rm -rf "$OUT/js"
	"$bin/nats-server" -a 127.0.0.1 -p 24222 -js -sd "$OUT/js" >>"$OUT/nats.log" 2>&1 &
	pids+=($!); nats_pid=$!
	wait_port 24222
}
start_netkit() { # PORT BROKER
	local extra=()
	[ "$2" = nats ] && extra=(--broker nats --nats-url nats://127.0.0.1:24222)
	"$bin/netkit" hub --listen "127.0.0.1:$1" --api-key bench --node-id "n$1" --log-level warn "${extra[@]}" >>"$OUT/netkit.log" 2>&1 &
	pids+=($!)
	wait_port "$1"
}
start_centrifugo() { # PORT
	python3 - "$1" >"$OUT/centrifugo-$1.json" <<'PY'
import json, sys
c = json.load(open("bench/centrifugo/config.json"))
c["http_server"]["port"] = int(sys.argv[1])
c["broker"] = {"enabled": True, "type": "nats", "nats": {"url": "nats://127.0.0.1:24222"}}
# Centrifugo's NATS broker is PUB/SUB only: no history, so no recovery
# (a subscribe with history or force_recovery fails "108: not available").
ns = c["channel"]["without_namespace"]
for k in ("history_size", "history_ttl", "force_recovery"):
    ns.pop(k, None)
print(json.dumps(c))
PY
	"$centrifugo" -c "$OUT/centrifugo-$1.json" >>"$OUT/centrifugo.log" 2>&1 &
	pids+=($!)
	wait_port "$1"
}

# run CASE N: one run; writes $OUT/CASE-N.json (the generator's report)
# and $OUT/CASE-N.cpu ("hub_cpu nats_cpu").
run() {
	local case=$1 n=$2 gen url pub
	echo "run $n/$runs: $case" >&2
	start_nats
	case $case in
	netkit-memory-1) start_netkit 29991 memory; url=ws://127.0.0.1:29991/ws; pub=$url; gen=("$bin/netkit" bench hub) ;;
	netkit-nats-1) start_netkit 29991 nats; url=ws://127.0.0.1:29991/ws; pub=$url; gen=("$bin/netkit" bench hub) ;;
	netkit-nats-2) start_netkit 29991 nats; start_netkit 29992 nats; url=ws://127.0.0.1:29991/ws; pub=ws://127.0.0.1:29992/ws; gen=("$bin/netkit" bench hub) ;;
	centrifugo-nats-2) start_centrifugo 28001; start_centrifugo 28002; url=ws://127.0.0.1:28001/connection/websocket; pub=ws://127.0.0.1:28002/connection/websocket; gen=("$bin/centrifugo-bench") ;;
	esac
	local hubs=("${pids[@]:1}") before=0 after=0 nb na
	sleep 1 # let the nodes finish starting (JetStream setup, NATS subscriptions)
	for p in "${hubs[@]}"; do before=$(echo "$before + $(cpu "$p")" | bc -l); done
	nb=$(cpu "$nats_pid")
	"${gen[@]}" fanout --subscribers "$subs" --rate "$rate" --duration "$dur" --drain 5s \
		--url "$url" --publish-url "$pub" --json >"$OUT/$case-$n.json" 2>"$OUT/$case-$n.err" || echo "  failed: $(tail -1 "$OUT/$case-$n.err")" >&2
	for p in "${hubs[@]}"; do after=$(echo "$after + $(cpu "$p")" | bc -l); done
	na=$(cpu "$nats_pid")
	echo "$(echo "$after - $before" | bc -l) $(echo "$na - $nb" | bc -l)" >"$OUT/$case-$n.cpu"
	stop_all
	sleep 1
}

{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r)"
	echo "load: $subs subscribers on node A, 1 publisher on node B (same node for the 1-node cases), $rate msg/s of 100 B, $dur per run, $runs runs"
	echo "netkit: $(git rev-parse --short HEAD); centrifugo: $("$centrifugo" version); nats-server: $("$bin/nats-server" --version)"
} | tee "$OUT/machine.txt" >&2

cases="netkit-memory-1 netkit-nats-1 netkit-nats-2 centrifugo-nats-2"
for n in $(seq "$runs"); do
	order=$cases
	[ $((n % 2)) -eq 1 ] || order=$(echo "$cases" | tr ' ' '\n' | tac | tr '\n' ' ')
	for c in $order; do run "$c" "$n"; done
done

python3 - "$OUT" $cases <<'PY' | tee "$OUT/table.md"
import json, sys, glob, statistics as st
out, cases = sys.argv[1], sys.argv[2:]
print("| case | published/s | delivered/s | lost | hub CPU µs/delivery (sum of nodes) | nats-server CPU µs/delivery | p50 ms | p99 ms | runs |")
print("|---|---|---|---|---|---|---|---|---|")
rows = {}
for c in cases:
    d = []
    for f in sorted(glob.glob(f"{out}/{c}-*.json")):
        try:
            r = json.load(open(f))
        except Exception:
            continue
        hub, nats = map(float, open(f[:-5] + ".cpu").read().split())
        n = r["delivered"] or 1
        d.append(dict(pub=r["published_per_second"], rate=r["delivered_per_second"], lost=(r.get("loss") or {}).get("lost", 0),
                      cpu=hub / n * 1e6, ncpu=nats / n * 1e6,
                      p50=r["latency"]["p50_us"] / 1e3, p99=r["latency"]["p99_us"] / 1e3))
    if not d:
        print(f"| {c} | failed | | | | | | | 0 |"); continue
    m = {k: st.median(x[k] for x in d) for k in d[0]}
    rows[c] = m
    def rng(k, f):  # median (min-max over the runs)
        lo, hi = min(x[k] for x in d), max(x[k] for x in d)
        return f"{m[k]:.{f}f} ({lo:.{f}f}-{hi:.{f}f})" if len(d) > 1 else f"{m[k]:.{f}f}"
    print(f"| {c} | {rng('pub', 0)} | {m['rate']:.0f} | {m['lost']:.0f} | {rng('cpu', 2)} | {rng('ncpu', 2)} | {m['p50']:.2f} | {rng('p99', 2)} | {len(d)} |")
def ratio(a, b, k):
    if a in rows and b in rows and rows[b][k]:
        print(f"- {a} / {b}, {k}: {rows[a][k] / rows[b][k]:.2f}x")
print()
ratio("netkit-nats-2", "centrifugo-nats-2", "cpu")
ratio("netkit-nats-2", "centrifugo-nats-2", "p99")
ratio("netkit-nats-1", "netkit-memory-1", "cpu")
ratio("netkit-nats-1", "netkit-memory-1", "p99")
PY
echo "reports and logs: $OUT" >&2
