// Command udptextbook is the UDP echo server of a textbook, for
// bench/compare-udp.sh to measure netkit udp serve against: one
// ReadFromUDP and one WriteToUDP per datagram. It asks for the same 4 MiB
// socket buffers as netkit, so that the two differ only in how they read
// and write.
//
//	go run ./bench/udptextbook -listen 127.0.0.1:19400
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:19400", "HOST:PORT to listen on")
	flag.Parse()
	addr, err := net.ResolveUDPAddr("udp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		log.Fatal(err)
	}
	_ = conn.SetReadBuffer(4 << 20)
	_ = conn.SetWriteBuffer(4 << 20)
	fmt.Println("listening on", conn.LocalAddr())
	buf := make([]byte, 64<<10)
	for {
		n, peer, err := conn.ReadFromUDP(buf)
		if err != nil {
			continue // an ICMP error for an earlier echo
		}
		conn.WriteToUDP(buf[:n], peer)
	}
}
