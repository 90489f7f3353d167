// Package termtext makes untrusted bytes safe to print on a terminal: what
// peers send is shown, never obeyed as escape sequences.
package termtext

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Escape returns b as text safe for a terminal: printable UTF-8 is kept,
// control characters and invalid bytes are escaped like Go's %q does
// (\n, \x1b, \u200b).
func Escape(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && n <= 1:
			sb.WriteString(`\x`)
			sb.WriteString(strconv.FormatUint(uint64(b[0])|0x100, 16)[1:])
		case r == '\\':
			sb.WriteString(`\\`)
		case strconv.IsPrint(r):
			sb.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			sb.WriteString(q[1 : len(q)-1])
		}
		b = b[n:]
	}
	return sb.String()
}
