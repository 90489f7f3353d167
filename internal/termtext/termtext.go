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

// Printable reports whether s is valid UTF-8 of printable characters
// only: safe to show as it is.
func Printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}

// Safe returns s as it is when Printable, else Escape(s): a name or a
// reason from a peer, shown without surprises.
func Safe(s string) string {
	if Printable(s) {
		return s
	}
	return Escape([]byte(s))
}

// Quote returns s as it is when Printable, else Escape(s) in double
// quotes, so that a reader sees where an odd name starts and ends.
func Quote(s string) string {
	if Printable(s) {
		return s
	}
	return `"` + strings.ReplaceAll(Escape([]byte(s)), `"`, `\"`) + `"`
}
