// Command sender is a minimal sender for the classic teaching protocol,
// written the way students write it: send the file's base name, wait for
// "ok", send the bytes, close.
//
//	sender ADDR FILE
package main

import (
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: sender ADDR FILE")
	}
	f, err := os.Open(os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	conn, err := net.Dial("tcp", os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	if _, err := conn.Write([]byte(filepath.Base(os.Args[2]))); err != nil {
		log.Fatal(err)
	}
	reply := make([]byte, 2)
	if _, err := io.ReadFull(conn, reply); err != nil {
		log.Fatal(err)
	}
	if string(reply) != "ok" {
		log.Fatalf("receiver answered %q", reply)
	}
	if _, err := io.Copy(conn, f); err != nil {
		log.Fatal(err)
	}
}
