package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
)

func TestSelfSigned(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		ca   bool
		dns  int
		ips  int
	}{
		{"pinned", Options{CommonName: "netkit recv"}, false, 0, 0},
		{"served", Options{CommonName: "netkit tcp serve", CA: true, Hosts: []string{"localhost", "127.0.0.1", "::1", "example.org"}}, true, 2, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cert, err := SelfSigned(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			c, err := x509.ParseCertificate(cert.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject.CommonName != tc.opts.CommonName || c.IsCA != tc.ca || len(c.DNSNames) != tc.dns || len(c.IPAddresses) != tc.ips {
				t.Errorf("certificate %q CA %v, %d names, %d addresses; want %q, %v, %d, %d",
					c.Subject.CommonName, c.IsCA, len(c.DNSNames), len(c.IPAddresses), tc.opts.CommonName, tc.ca, tc.dns, tc.ips)
			}
			if got := c.NotAfter.Sub(c.NotBefore); got < Validity {
				t.Errorf("valid for %v, want at least %v", got, Validity)
			}
			certPEM, keyPEM, err := PEM(cert)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
				t.Errorf("PEM does not load back: %v", err)
			}
		})
	}
}

// TestHandshake: a certificate made for 127.0.0.1 as its own CA passes a
// real handshake on loopback.
func TestHandshake(t *testing.T) {
	cert, err := SelfSigned(Options{CommonName: "t", CA: true, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			err = c.(*tls.Conn).Handshake()
			c.Close()
		}
		done <- err
	}()
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.Close()
	if err := <-done; err != nil && !isClosed(err) {
		t.Errorf("server handshake: %v", err)
	}
}

func isClosed(err error) bool {
	_, ok := err.(net.Error)
	return ok
}
