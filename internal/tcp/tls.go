package tcp

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/netkit/netkit/internal/tlsutil"
)

// SelfSigned returns a fresh self-signed ECDSA P-256 certificate and key,
// PEM-encoded, valid for 30 days for localhost, 127.0.0.1, ::1 and hosts,
// and usable as its own CA (so that --ca can name this very certificate).
func SelfSigned(hosts ...string) (certPEM, keyPEM []byte, err error) {
	cert, err := tlsutil.SelfSigned(tlsutil.Options{
		CommonName: "netkit tcp serve",
		Hosts:      append([]string{"localhost", "127.0.0.1", "::1"}, hosts...),
		CA:         true,
	})
	if err == nil {
		certPEM, keyPEM, err = tlsutil.PEM(cert)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("tcp: tls: %w", err)
	}
	return certPEM, keyPEM, nil
}

// ServerTLS returns a server TLS config with the certificate and key in
// the PEM files certFile and keyFile or, if both are "", a self-signed
// one. It also returns the certificate's SHA-256 fingerprint, to print.
func ServerTLS(certFile, keyFile string) (*tls.Config, string, error) {
	var cert tls.Certificate
	var err error
	switch {
	case certFile == "" && keyFile == "":
		var c, k []byte
		if c, k, err = SelfSigned(); err == nil {
			cert, err = tls.X509KeyPair(c, k)
		}
	case certFile == "" || keyFile == "":
		return nil, "", errors.New("tcp: tls: give both a certificate and a key file, or neither for a self-signed certificate")
	default:
		cert, err = tls.LoadX509KeyPair(certFile, keyFile)
	}
	if err != nil {
		return nil, "", fmt.Errorf("tcp: tls: %w", err)
	}
	sum := sha256.Sum256(cert.Certificate[0])
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	return cfg, hex.EncodeToString(sum[:]), nil
}

// ClientTLS returns a client TLS config for serverName. With insecure the
// server's certificate is not checked; with caFile only certificates
// signed by the PEM certificates in it are accepted; otherwise the
// system's roots are used.
func ClientTLS(serverName, caFile string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName, InsecureSkipVerify: insecure}
	if caFile == "" {
		return cfg, nil
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("tcp: tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("tcp: tls: %s: no PEM certificate in it", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}
