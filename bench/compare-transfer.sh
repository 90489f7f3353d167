#!/usr/bin/env bash
# Moves one file of random data from /dev/shm to /dev/shm over 127.0.0.1
# with netkit send/recv, nc (OpenBSD) and socat, with cp (no network) as the
# ceiling, and prints a Markdown table: throughput, CPU seconds (sender +
# receiver, user + system) per GiB, and both as ratios to nc. Every run's
# output is compared with the input (cmp); a difference stops the script.
#
# Runs alternate between the tools, and which goes first rotates between
# repetitions. Wall time is from the sender's start to when both processes
# have exited (the receiver is started first and waits on its port).
#
#   bench/compare-transfer.sh            # 3 repetitions of a 2 GiB file
#   bench/compare-transfer.sh --quick    # 1 repetition of a 512 MiB file
#   bench/compare-transfer.sh --runs 5 --probes
#   bench/compare-transfer.sh --pin --size 1024   # two machines, simulated (below)
#
# Tools: cp (the ceiling), nc, socat, netkit (the default: the code
# exchange, then AES-256-GCM records; verified) and netkit-open (recv
# --open / send --open: plain TCP with sendfile and splice; verified).
#
# --pin simulates two machines on one: every sender runs under
# taskset -c 0 and every receiver under taskset -c 1 (cp under -c 0), so
# that each end has one core of its own, as on two machines, instead of
# both ends sharing two.
#
# --probes adds the standalone Go data paths of bench/transfer/probe (its
# own module, so its dependencies stay out of netkit's go.mod):
#   go-a  sendfile / splice, no hash
#   go-b  go-a plus BLAKE3 on both ends in parallel goroutines (pread)
#   go-c  BLAKE3; the receiver reads into a 1 MiB buffer, hashes, writes
#   go-d  go-b hashing through mmap instead of pread
#   go-e  go-d with XXH3-128 instead of BLAKE3
#   go-f  go-c with XXH3-128 (sender hashes through mmap)
#
# This machine is a VM whose balloon reports freed guest memory back to the
# host, so the first touch of a page costs several times a memcpy. Before
# each run the script fills and deletes a file as large as the output, so
# every tool writes into memory the host backs. Without it, figures vary 3x.
#
# Environment: OUT, the directory for the report and logs (default: a new
# one under /tmp); NETKIT_BIN, a netkit binary instead of building one;
# NETKIT_BASE_BIN, a second netkit binary (say, built from main before a
# change) measured in the same runs as rows netkit-base and
# netkit-open-base, for a before/after side by side;
# PORT, the first TCP port to use (default 19100; each run takes the next).
# Needs /usr/bin/time (apt-get install time), nc (netcat-openbsd), socat.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3 size_mib=2048 probes=0 pin=0
while [ $# -gt 0 ]; do
	case $1 in
	--quick) runs=1 size_mib=512 ;;
	--runs) runs=$2; shift ;;
	--size) size_mib=$2; shift ;; # MiB
	--probes) probes=1 ;;
	--pin) pin=1 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "compare-transfer.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done

die() { echo "compare-transfer.sh: $*" >&2; exit 1; }
for t in /usr/bin/time nc socat cmp ss taskset; do
	command -v "$t" >/dev/null || die "$t not found (apt-get install -y time netcat-openbsd socat util-linux)"
done
pin_send= pin_recv=
if [ "$pin" = 1 ]; then
	[ "$(nproc)" -ge 2 ] || die "--pin needs two cores"
	pin_send="taskset -c 0" pin_recv="taskset -c 1"
fi
code=7-abaci-abase-abbey # any code: both ends are given it
nc -h 2>&1 | grep -q OpenBSD || die "nc is not OpenBSD netcat (apt-get install -y netcat-openbsd)"

OUT=${OUT:-$(mktemp -d /tmp/netkit-transfer.XXXXXX)}
mkdir -p "$OUT"
port=${PORT:-19100}
bytes=$((size_mib << 20))
in=/dev/shm/netkit-bench-${size_mib}m
out=/dev/shm/netkit-bench-out
nkdir=/dev/shm/netkit-out
warm=/dev/shm/netkit-bench-warm

cleanup() {
	rm -rf "$out" "$nkdir" "$warm"
	for p in ${recv_pid:-} ${send_pid:-}; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# The input, created once and reused.
if [ "$(stat -c %s "$in" 2>/dev/null || echo 0)" != "$bytes" ]; then
	echo "creating $in ($size_mib MiB of random data)" >&2
	head -c "${size_mib}M" /dev/urandom >"$in.tmp"
	mv "$in.tmp" "$in"
fi
avail_kib=$(df --output=avail -k /dev/shm | tail -1)
[ "$avail_kib" -gt $(((size_mib + size_mib / 8 + 256) * 1024)) ] || die "/dev/shm lacks room for one output of $size_mib MiB"

# netkit, and whether its send/recv work yet (a 1 KiB trial transfer).
tools="cp nc socat"
have_netkit=0 nk=${NETKIT_BIN:-$OUT/netkit}
if [ -z "${NETKIT_BIN:-}" ] && ! go build -o "$nk" ./cmd/netkit 2>"$OUT/build.log"; then
	echo "NOTE: netkit does not build ($(head -c 300 "$OUT/build.log" | tr '\n' ' ')); measuring the others only." >&2
	nk=false
fi
trial=$OUT/trial
rm -rf "$trial" && mkdir -p "$trial/out" && head -c 1024 /dev/urandom >"$trial/one"
if [ "$nk" = false ]; then
	:
elif timeout 10 "$nk" recv --listen 127.0.0.1:$port --code $code --dir "$trial/out" --once --quiet >"$OUT/trial.log" 2>&1 &
	sleep 0.5 && timeout 10 "$nk" send --quiet --code $code "$trial/one" 127.0.0.1:$port >>"$OUT/trial.log" 2>&1 &&
	wait $! && cmp -s "$trial/one" "$trial/out/one"; then
	have_netkit=1 tools="$tools netkit netkit-open"
else
	wait || true
	echo "NOTE: netkit has no working send/recv yet ($(head -c 200 "$OUT/trial.log" | tr '\n' ' ')); measuring the others only." >&2
fi
port=$((port + 1))
base=${NETKIT_BASE_BIN:-}
if [ -n "$base" ] && [ "$have_netkit" = 1 ]; then
	[ -x "$base" ] || die "NETKIT_BASE_BIN=$base is not an executable"
	tools="$tools netkit-base netkit-open-base"
fi
if [ "$probes" = 1 ]; then
	(cd bench/transfer && go build -o "$OUT/probe" ./probe)
	tools="$tools go-a go-b go-c go-d go-e go-f"
fi

# receiver_cmd TOOL / sender_cmd TOOL print the command for the current port.
receiver_cmd() {
	case $1 in
	nc) echo "nc -l 127.0.0.1 $port" ;; # stdout goes to $out
	socat) echo "socat -u TCP-LISTEN:$port,reuseaddr,bind=127.0.0.1 OPEN:$out,creat,trunc" ;;
	netkit) echo "$nk recv --listen 127.0.0.1:$port --code $code --dir $nkdir --once --quiet" ;;
	netkit-open) echo "$nk recv --open --listen 127.0.0.1:$port --dir $nkdir --once --quiet" ;;
	netkit-base) echo "$base recv --listen 127.0.0.1:$port --code $code --dir $nkdir --once --quiet" ;;
	netkit-open-base) echo "$base recv --open --listen 127.0.0.1:$port --dir $nkdir --once --quiet" ;;
	go-?) echo "$OUT/probe recv -mode ${1#go-} -listen 127.0.0.1:$port -out $out" ;;
	esac
}
sender_cmd() {
	case $1 in
	cp) echo "cp $in $out" ;;
	nc) echo "nc -N 127.0.0.1 $port" ;; # stdin is $in
	socat) echo "socat -u OPEN:$in TCP:127.0.0.1:$port" ;;
	netkit) echo "$nk send --quiet --code $code $in 127.0.0.1:$port" ;;
	netkit-open) echo "$nk send --quiet --open $in 127.0.0.1:$port" ;;
	netkit-base) echo "$base send --quiet --code $code $in 127.0.0.1:$port" ;;
	netkit-open-base) echo "$base send --quiet --open $in 127.0.0.1:$port" ;;
	go-?) echo "$OUT/probe send -mode ${1#go-} -addr 127.0.0.1:$port $in" ;;
	esac
}
output_of() { case $1 in netkit*) echo "$nkdir/$(basename "$in")" ;; *) echo "$out" ;; esac; }

# run_one TOOL REP appends "tool rep wall_s cpu_s" to $OUT/runs.tsv.
run_one() {
	local tool=$1 rep=$2 rt=$OUT/$1.$2.recv.time st=$OUT/$1.$2.send.time
	rm -rf "$out" "$nkdir" && mkdir -p "$nkdir"
	# Touch as much memory as the output will take, then free it (see the
	# header). fallocate would not do: tmpfs allocates without zeroing.
	head -c $((bytes + bytes / 16)) /dev/zero >"$warm" && rm -f "$warm"
	: >"$rt"
	recv_pid=
	if [ "$tool" != cp ]; then
		if [ "$tool" = nc ]; then
			$pin_recv /usr/bin/time -o "$rt" -f "%e %U %S" $(receiver_cmd nc) >"$out" 2>"$OUT/$tool.$rep.recv.log" &
		else
			$pin_recv /usr/bin/time -o "$rt" -f "%e %U %S" $(receiver_cmd "$tool") >"$OUT/$tool.$rep.recv.log" 2>&1 &
		fi
		recv_pid=$!
		for _ in $(seq 100); do
			ss -Hltn "sport = :$port" | grep -q . && break
			sleep 0.05
		done
		ss -Hltn "sport = :$port" | grep -q . || die "$tool: receiver not listening on $port (see $OUT/$tool.$rep.recv.log)"
	fi
	local t0 t1 rc=0
	t0=$(date +%s%N)
	if [ "$tool" = nc ]; then
		timeout 300 $pin_send /usr/bin/time -o "$st" -f "%e %U %S" $(sender_cmd nc) <"$in" >"$OUT/$tool.$rep.send.log" 2>&1 || rc=$?
	else
		timeout 300 $pin_send /usr/bin/time -o "$st" -f "%e %U %S" $(sender_cmd "$tool") >"$OUT/$tool.$rep.send.log" 2>&1 || rc=$?
	fi
	send_pid=
	if [ -n "$recv_pid" ]; then wait "$recv_pid" || rc=$?; fi
	t1=$(date +%s%N)
	recv_pid=
	[ "$rc" = 0 ] || die "$tool run $rep failed (exit $rc); logs in $OUT/$tool.$rep.*"
	cmp "$in" "$(output_of "$tool")" || die "$tool run $rep: OUTPUT DIFFERS FROM INPUT"
	local scpu rcpu
	scpu=$(awk 'NF == 3 && $1 ~ /^[0-9.]+$/ { s += $2 + $3 } END { printf "%.3f", s }' "$st")
	rcpu=$(awk 'NF == 3 && $1 ~ /^[0-9.]+$/ { s += $2 + $3 } END { printf "%.3f", s }' "$rt")
	printf '%s\t%s\t%.3f\t%.3f\t%s\t%s\n' "$tool" "$rep" "$(echo "($t1 - $t0) / 1000000000" | bc -l)" \
		"$(echo "$scpu + $rcpu" | bc -l)" "$scpu" "$rcpu" >>"$OUT/runs.tsv"
	rm -rf "$out" "$nkdir"
	port=$((port + 1))
}

: >"$OUT/runs.tsv"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
set -- $tools
ntools=$#
for rep in $(seq "$runs"); do
	order=$(echo $tools | tr ' ' '\n' | awk -v k=$(((rep - 1) % ntools)) -v n=$ntools \
		'{ a[NR - 1] = $0 } END { for (i = 0; i < n; i++) print a[(i + k) % n] }')
	for tool in $order; do
		echo "run $rep/$runs: $tool" >&2
		run_one "$tool" "$rep"
	done
done

{
	pinned="both ends sharing the cores"
	[ "$pin" = 1 ] && pinned="sender on core 0, receiver on core 1 (taskset)"
	echo "## netkit send/recv vs nc and socat: $size_mib MiB, /dev/shm to /dev/shm over 127.0.0.1, $pinned, $runs run(s) each"
	echo
	echo "$(date -u +%Y-%m-%dT%H:%MZ); $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"
	echo "$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r); $(go version | cut -d' ' -f3);"
	echo "$(nc -h 2>&1 | head -1); socat $(socat -V | awk '/socat version/ { print $3 }'); $(cp --version | head -1)."
	echo "GB/s = 10^9 bytes per second of wall time; CPU = user + system of sender and receiver."
	[ -n "$base" ] && echo "netkit-base, netkit-open-base: $base (netkit, netkit-open: $nk), in the same runs."
	echo "Load average before the runs: $load0; after: $(cut -d' ' -f1-3 /proc/loadavg)."
	[ "$have_netkit" = 1 ] || echo "netkit: not measured (no build, or no working send/recv yet)."
	echo
	echo "| tool | GB/s (min–max) | CPU s per GiB (min–max) | sender + receiver | throughput vs nc | CPU per GiB vs nc |"
	echo "|---|---:|---:|---:|---:|---:|"
	awk -v bytes="$bytes" -v order="$tools" '
		function median(v, n,   i, j, t) {
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
			return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		}
		{
			k = ++n[$1]; gbs[$1, k] = bytes / $3 / 1e9; cpg[$1, k] = $4 / (bytes / 2^30)
			sc[$1, k] = $5 / (bytes / 2^30); rcp[$1, k] = $6 / (bytes / 2^30)
		}
		END {
			split(order, tl, " ")
			for (t in n) {
				delete a; delete b; delete c; delete d
				for (i = 1; i <= n[t]; i++) { a[i] = gbs[t, i]; b[i] = cpg[t, i]; c[i] = sc[t, i]; d[i] = rcp[t, i] }
				mg[t] = median(a, n[t]); mc[t] = median(b, n[t]); ms[t] = median(c, n[t]); mr[t] = median(d, n[t])
				lo[t] = a[1]; hi[t] = a[n[t]]; clo[t] = b[1]; chi[t] = b[n[t]]
			}
			for (i = 1; i in tl; i++) {
				t = tl[i]
				if (!(t in n)) continue
				printf "| %s | %.2f (%.2f–%.2f) | %.2f (%.2f–%.2f) | %.2f + %.2f | %.2f× | %.2f× |\n", t, mg[t], lo[t], hi[t], mc[t], clo[t], chi[t], ms[t], mr[t], mg[t] / mg["nc"], mc[t] / mc["nc"]
			}
		}' "$OUT/runs.tsv"
	echo
	echo "Figures are medians with the range in brackets; ratios are of medians. \"sender + receiver\" splits"
	echo "the CPU per GiB (medians of each end). Raw runs: $OUT/runs.tsv (tool, run, wall s, CPU s, sender, receiver)."
} | tee "$OUT/report.md"
