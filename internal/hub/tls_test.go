package hub_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/netkit/netkit/internal/hub"
	"github.com/netkit/netkit/internal/hubtest"
)

// testCert writes a self-signed certificate for 127.0.0.1 and its key as
// PEM files and returns their paths and a pool that trusts it.
func testCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "netkit test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true,

		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLS: with hub.tls_cert and hub.tls_key and the default transport
// (auto), wss:// works: the connection takes the goroutine path by itself.
func TestTLS(t *testing.T) {
	certFile, keyFile, pool := testCert(t)
	h := hubtest.Start(t, func(c *hub.Config) {
		c.TLSCert, c.TLSKey = certFile, keyFile
		c.Transport = hub.TransportAuto
	})
	d := &websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, HandshakeTimeout: 10 * time.Second}
	url := "wss://" + h.Addr + "/ws"
	sub := hubtest.DialWith(t, d, url)
	if w := sub.Read(); w["push"] != "welcome" {
		t.Fatalf("first object = %v, want welcome", w)
	}
	quiet(t, sub, subscribeCmd(1, "news"))
	pub := hubtest.DialWith(t, d, url)
	pub.Read()
	quiet(t, pub, publishCmd(2, "news", "over tls"))
	if m := sub.Expect("message"); m["data"] != "over tls" {
		t.Fatalf("message = %v, want data \"over tls\"", m)
	}

	t.Run("plain ws is refused", func(t *testing.T) {
		if ws, _, err := websocket.DefaultDialer.Dial("ws://"+h.Addr+"/ws", nil); err == nil {
			ws.Close()
			t.Fatal("plain ws:// dial to a TLS hub succeeded")
		}
	})
}

func TestTLSConfig(t *testing.T) {
	certFile, keyFile, _ := testCert(t)
	tests := []struct {
		name      string
		cert, key string
		want      string // in the error; "" for none
	}{
		{"neither", "", "", ""},
		{"both", certFile, keyFile, ""},
		{"only cert", certFile, "", "hub.tls_cert: want tls_cert and tls_key both set"},
		{"missing key file", certFile, filepath.Join(t.TempDir(), "nope.pem"), "hub.tls_key: want a readable PEM file"},
		{"key is not a key", certFile, certFile, "hub.tls_cert, hub.tls_key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := hub.DefaultConfig()
			cfg.TLSCert, cfg.TLSKey = tc.cert, tc.key
			_, err := hub.New(cfg, hub.Options{})
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
