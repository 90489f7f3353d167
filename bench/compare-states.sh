#!/usr/bin/env bash
# Times one snapshot of every TCP socket with about 10,000 sockets open on
# loopback: the netkit binary run as a command ("netkit states", "-p" and
# "--summary") against "ss -tan", "ss -tanp", "ss -s", "netstat -an" and
# "netstat -tan", all with their output to /dev/null (process start
# included), and netkit's snapshot in process, as a library call, through
# netlink sock_diag and through /proc ("+ table" adds sorting and printing
# the table to a discarded writer). All in one run of BenchmarkSnapshot in
# internal/states, printed as a Markdown table.
#
# The benchmark opens PAIRS loopback connections (default 5,000) to
# listeners that never accept them: the server ends sit ESTABLISHED in the
# accept queues and take no descriptor, so 5,000 pairs are 10,000 sockets
# plus 2 listeners for 5,002 descriptors. The listeners take 3,000
# connections each, under somaxconn.
#
#   bench/compare-states.sh               # 5,000 pairs, 20 snapshots each
#   PAIRS=9990 RUNS=50 bench/compare-states.sh
#
# Needs iproute2 (ss) and net-tools (netstat); a missing tool is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

pairs=${PAIRS:-5000} runs=${RUNS:-20}
ulimit -n "$(ulimit -Hn)"
bin=$(mktemp /tmp/netkit-states.XXXXXX)
trap 'rm -f "$bin"' EXIT
# Built as scripts/release.sh builds it: static (CGO_ENABLED=0), which
# starts in 13 ms of CPU against 20 ms for the default cgo build here.
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin" ./cmd/netkit
out=$(NETKIT_STATES_BENCH_BIN=$bin NETKIT_STATES_BENCH_PAIRS=$pairs go test -run '^$' -bench '^BenchmarkSnapshot$' \
	-benchtime "${runs}x" -count 1 ./internal/states)
echo "$out" >&2
echo "$out" | awk '
	BEGIN {
		name["netkit-netlink"] = "netkit states (netlink)"
		name["netkit-netlink-table"] = "netkit states (netlink) + table"
		name["netkit-proc"] = "netkit states (/proc)"
		name["netkit-proc-table"] = "netkit states (/proc) + table"
		name["ss-tan"] = "ss -tan"
		name["ss-tanp"] = "ss -tanp"
		name["ss-s"] = "ss -s"
		name["netkit-states"] = "netkit states (command)"
		name["netkit-states-p"] = "netkit states -p (command)"
		name["netkit-states-summary"] = "netkit states --summary (command)"
		name["netstat-an"] = "netstat -an"
		name["netstat-tan"] = "netstat -tan"
	}
	/^BenchmarkSnapshot\// {
		split($1, p, "/"); sub(/-[0-9]+$/, "", p[2])
		for (i = 2; i <= NF; i++) {
			if ($(i+1) == "ns/op") ms = $i / 1e6
			if ($(i+1) == "sockets") n = $i
			if ($(i+1) == "cpu-ms/op") cpu[p[2]] = $i
		}
		rows[++nr] = p[2]; t[p[2]] = ms
	}
	END {
		printf "| tool | sockets | wall ms per snapshot | vs ss -tan | vs ss -tanp | CPU ms (commands) | CPU vs ss -tan | CPU vs ss -tanp |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
		for (i = 1; i <= nr; i++) {
			k = rows[i]
			printf "| %s | %d | %.1f | %s | %s | %s | %s | %s |\n", (k in name ? name[k] : k), n, t[k],
				("ss-tan" in t ? sprintf("%.2fx", t[k] / t["ss-tan"]) : "-"),
				("ss-tanp" in t ? sprintf("%.2fx", t[k] / t["ss-tanp"]) : "-"),
				(k in cpu ? sprintf("%.1f", cpu[k]) : "-"),
				((k in cpu) && cpu["ss-tan"] > 0 ? sprintf("%.2fx", cpu[k] / cpu["ss-tan"]) : "-"),
				((k in cpu) && cpu["ss-tanp"] > 0 ? sprintf("%.2fx", cpu[k] / cpu["ss-tanp"]) : "-")
		}
	}'
