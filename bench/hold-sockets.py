#!/usr/bin/env python3
# Holds N unaccepted loopback TCP connections (2N sockets) for S seconds, for
# timing "ss" and "netkit states" against each other with perf stat:
#   python3 bench/hold-sockets.py 5000 240 &
#   perf stat -r 20 ss -tan; perf stat -r 20 netkit states
import socket, sys, time, resource
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
n = int(sys.argv[1]); lns = []; cs = []
for i in range(n):
    if i % 3000 == 0:
        l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(4096); lns.append(l)
    c = socket.socket(); c.connect(lns[-1].getsockname()); cs.append(c)
print("ready", flush=True)
time.sleep(float(sys.argv[2]))
