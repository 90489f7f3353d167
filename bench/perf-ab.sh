#!/usr/bin/env bash
# Runs commands interleaved N times each, every run under "perf stat -e
# task-clock", and prints each command's median CPU time with the
# quartiles. Interleaving (A B C A B C ...) spreads a shared machine's
# changing load over every command alike; medians ignore the runs that
# another process's burst spoiled.
#
#   bench/perf-ab.sh 100 ./netkit-old\ version ./netkit\ version
#   bench/perf-ab.sh 40 "ss -tan" "netkit states" "ss -tanp" "netkit states -p"
#
# Each argument is one command line, split on spaces. Needs perf and python3.
set -euo pipefail
n=$1
shift
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq "$n"); do
	for c in "$@"; do
		# shellcheck disable=SC2086 # the command line is split on purpose
		t=$(perf stat -x, -e task-clock $c 2>&1 >/dev/null | awk -F, '$3 == "task-clock" { print $1 }')
		printf '%s|%s\n' "$c" "$t" >>"$out"
	done
done
python3 - "$out" "$@" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("|") for l in open(sys.argv[1])]
for c in sys.argv[2:]:
    v = sorted(float(t) for k, t in rows if k == c)
    q = statistics.quantiles(v, n=4)
    print("%-40s median %7.2f ms CPU (quartiles %.2f-%.2f, %d runs)" % (c, statistics.median(v), q[0], q[2], len(v)))
PY
