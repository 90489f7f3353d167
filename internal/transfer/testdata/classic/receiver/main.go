// Command receiver is a minimal receiver for the classic teaching
// protocol, written the way students write it: accept one connection,
// read the file name with one read, answer "ok", copy everything until EOF
// into the file, close.
//
//	receiver 127.0.0.1:0 DIR   (prints the address it listens on)
package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: receiver ADDR DIR")
	}
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr())
	conn, err := ln.Accept()
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	buf := make([]byte, 1024)
	n, err := conn.Read(buf)
	if err != nil {
		log.Fatal(err)
	}
	name := filepath.Base(string(buf[:n]))
	f, err := os.Create(filepath.Join(os.Args[2], name))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := conn.Write([]byte("ok")); err != nil {
		log.Fatal(err)
	}
	if _, err := io.Copy(f, conn); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}
