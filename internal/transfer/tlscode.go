package transfer

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/netkit/netkit/internal/tlsutil"
)

// ErrCodeMismatch means the receiver's certificate does not match the code
// given to Send.
var ErrCodeMismatch = errors.New("transfer: the receiver's certificate does not match the code (wrong code, or someone in the middle)")

// codeBytes is how much of the certificate's SHA-256 the code shows: 80
// bits, 16 base32 characters.
const codeBytes = 10

// serverTLS returns a TLS config with a fresh self-signed certificate,
// and the certificate's fingerprint code.
func serverTLS() (*tls.Config, string, error) {
	cert, err := tlsutil.SelfSigned(tlsutil.Options{CommonName: "netkit recv"})
	if err != nil {
		return nil, "", fmt.Errorf("transfer: tls: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}
	return cfg, certCode(cert.Certificate[0]), nil
}

// certCode returns the fingerprint code of a certificate: the first 10
// bytes of the SHA-256 of its DER, in base32, in groups of four.
func certCode(der []byte) string {
	sum := sha256.Sum256(der)
	s := base32.StdEncoding.EncodeToString(sum[:codeBytes])
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}

// normalizeCode upper-cases a code and drops separators, so "abcd efgh"
// and "ABCD-EFGH" compare equal.
func normalizeCode(code string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(code) {
		if r != '-' && r != ' ' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// clientTLS returns a TLS config that accepts only a certificate whose
// code is code, compared in constant time.
func clientTLS(code string) (*tls.Config, error) {
	want := normalizeCode(code)
	if len(want) != 16 {
		return nil, fmt.Errorf("transfer: --code %q: want the 16-character code the receiver printed, like ABCD-EFGH-IJKL-MNOP", code)
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // the code pins the certificate instead: VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrCodeMismatch
			}
			got := normalizeCode(certCode(cs.PeerCertificates[0].Raw))
			if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
				return ErrCodeMismatch
			}
			return nil
		},
	}, nil
}
