#!/usr/bin/env bash
# Profiles both ends of one netkit transfer with perf and prints, per end,
# the CPU seconds per GiB and where they go: BLAKE3, AES-GCM, the rest of
# user space, the kernel; and the CPU per GiB without the hash (the
# issue 19 aim compares that with nc). Sender under taskset -c 0, receiver
# under taskset -c 1, as compare-transfer.sh --pin; a file of random data
# from /dev/shm to /dev/shm over 127.0.0.1.
#
#   bench/profile-transfer.sh                 # sealed (the code), 1 GiB
#   bench/profile-transfer.sh --open          # the spliced --open path
#   bench/profile-transfer.sh --size 512 --runs 3
#
# Environment: OUT (default: a new directory under /tmp) keeps perf.data
# and the reports; NETKIT_BIN, a netkit binary instead of building one;
# PORT (default 19700). Needs perf (apt-get install linux-perf) and
# /usr/bin/time. Sampling costs a few per cent; the shares are what count.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mib=1024 mode=code runs=1
while [ $# -gt 0 ]; do
	case $1 in
	--open) mode=open ;;
	--size) size_mib=$2; shift ;;
	--runs) runs=$2; shift ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "profile-transfer.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
die() { echo "profile-transfer.sh: $*" >&2; exit 1; }
for t in perf /usr/bin/time taskset ss cmp; do command -v "$t" >/dev/null || die "$t not found"; done

OUT=${OUT:-$(mktemp -d /tmp/netkit-profile.XXXXXX)}
mkdir -p "$OUT"
port=${PORT:-19700}
bytes=$((size_mib << 20))
in=/dev/shm/netkit-bench-${size_mib}m
dir=/dev/shm/netkit-profile-out
trap 'rm -rf "$dir"' EXIT
if [ "$(stat -c %s "$in" 2>/dev/null || echo 0)" != "$bytes" ]; then
	head -c "${size_mib}M" /dev/urandom >"$in.tmp" && mv "$in.tmp" "$in"
fi
nk=${NETKIT_BIN:-$OUT/netkit}
[ -n "${NETKIT_BIN:-}" ] || go build -o "$nk" ./cmd/netkit
code=7-abaci-abase-abbey
flags="--code $code"
[ "$mode" = open ] && flags=--open

# shares FILE prints "blake3 aes user kernel" as fractions of the samples.
shares() {
	perf report -i "$1" --no-children --sort dso,symbol --stdio 2>/dev/null | awk '
		/^ +[0-9.]+%/ {
			p = $1; sub("%", "", p); p /= 100
			if ($0 ~ /\[k\]/) k += p
			else if ($0 ~ /blake3/) b += p
			else if ($0 ~ /gcmAes|aes\.|gcm\./) a += p
			else u += p
		}
		END { printf "%.4f %.4f %.4f %.4f\n", b, a, u, k }'
}

echo "| run | end | CPU s per GiB | BLAKE3 | AES-GCM | other user | kernel | CPU s per GiB without BLAKE3 |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for rep in $(seq "$runs"); do
	rm -rf "$dir" && mkdir -p "$dir"
	head -c $((bytes + bytes / 16)) /dev/zero >"$dir.warm" && rm -f "$dir.warm"
	taskset -c 1 perf record -q -o "$OUT/recv.$rep.data" -- /usr/bin/time -o "$OUT/recv.$rep.time" -f "%U %S" \
		"$nk" recv --listen 127.0.0.1:$port $flags --dir "$dir" --once --quiet >"$OUT/recv.$rep.log" 2>&1 &
	rpid=$!
	for _ in $(seq 100); do ss -Hltn "sport = :$port" | grep -q . && break; sleep 0.05; done
	taskset -c 0 perf record -q -o "$OUT/send.$rep.data" -- /usr/bin/time -o "$OUT/send.$rep.time" -f "%U %S" \
		"$nk" send --quiet $flags "$in" 127.0.0.1:$port >"$OUT/send.$rep.log" 2>&1
	wait "$rpid"
	cmp "$in" "$dir/$(basename "$in")" || die "run $rep: output differs"
	for end in send recv; do
		# /usr/bin/time runs under perf and counts netkit alone (perf's own
		# CPU is not in it; the sampling interrupts are).
		cpu=$(awk '{ print $1 + $2 }' "$OUT/$end.$rep.time")
		read -r b a u k < <(shares "$OUT/$end.$rep.data")
		awk -v r="$rep" -v e="$end" -v c="$cpu" -v g="$((bytes))" -v b="$b" -v a="$a" -v u="$u" -v k="$k" 'BEGIN {
			c /= g / 2^30
			printf "| %s | %s | %.2f | %.0f%% | %.0f%% | %.0f%% | %.0f%% | %.2f |\n", r, e, c, 100*b, 100*a, 100*u, 100*k, c * (1 - b)
		}'
	done
	port=$((port + 1))
done
echo
echo "$mode, $size_mib MiB, $(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg); perf data in $OUT"
