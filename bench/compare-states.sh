#!/usr/bin/env bash
# Times one snapshot of every TCP socket with about 20,000 sockets open on
# loopback: netkit states through netlink sock_diag and through /proc (in
# process, as a library call; "+ table" adds sorting and printing the
# table to a discarded writer), against "ss -tan", "netstat -an" and
# "netstat -tan" run as commands with their output to /dev/null (process
# start included). All in one run of BenchmarkSnapshot in
# internal/states, printed as a Markdown table.
#
# The benchmark opens PAIRS loopback connections (default 9,990) to
# listeners that never accept them: the server ends sit ESTABLISHED in the
# accept queues and take no descriptor, so 9,990 pairs are 19,980 sockets
# plus 4 listeners for 9,994 descriptors, inside the 20,000 limit of one
# process. The listeners take 3,000 connections each, under somaxconn.
#
#   bench/compare-states.sh               # 9,990 pairs, 20 snapshots each
#   PAIRS=1000 RUNS=50 bench/compare-states.sh
#
# Needs iproute2 (ss) and net-tools (netstat); a missing tool is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

pairs=${PAIRS:-9990} runs=${RUNS:-20}
ulimit -n "$(ulimit -Hn)"
out=$(NETKIT_STATES_BENCH_PAIRS=$pairs go test -run '^$' -bench '^BenchmarkSnapshot$' \
	-benchtime "${runs}x" -count 1 ./internal/states)
echo "$out" >&2
echo "$out" | awk '
	BEGIN {
		name["netkit-netlink"] = "netkit states (netlink)"
		name["netkit-netlink-table"] = "netkit states (netlink) + table"
		name["netkit-proc"] = "netkit states (/proc)"
		name["netkit-proc-table"] = "netkit states (/proc) + table"
		name["ss-tan"] = "ss -tan"
		name["netstat-an"] = "netstat -an"
		name["netstat-tan"] = "netstat -tan"
	}
	/^BenchmarkSnapshot\// {
		split($1, p, "/"); sub(/-[0-9]+$/, "", p[2])
		for (i = 2; i <= NF; i++) {
			if ($(i+1) == "ns/op") ms = $i / 1e6
			if ($(i+1) == "sockets") n = $i
		}
		rows[++nr] = p[2]; t[p[2]] = ms
	}
	END {
		printf "| tool | sockets | ms per snapshot | vs ss -tan |\n|---|---:|---:|---:|\n"
		for (i = 1; i <= nr; i++) {
			k = rows[i]
			printf "| %s | %d | %.1f | %s |\n", (k in name ? name[k] : k), n, t[k], ("ss-tan" in t ? sprintf("%.2fx", t[k] / t["ss-tan"]) : "-")
		}
	}'
