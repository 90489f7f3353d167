package transfer

import (
	"crypto/rand"
	_ "embed"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"sync"
)

// A code is what the two ends of a transfer share to find and trust each
// other: a room number and three words, like "7-tiger-lamp-cloud". The
// number (1..999) names a room on a relay, which therefore learns it; the
// whole code is the password of the key exchange (pake.go). Three words
// of a 2,048-word list are 33 bits that the relay never sees; the number
// adds almost 10 more on a direct connection. The exchange admits no
// offline guessing, and the receiver stops after MaxFailures wrong
// guesses, so an attacker's chance is MaxFailures in 2^33 at most.

//go:embed words/words.txt
var wordFile string

// codeWords returns the words of codes and an index to find them. The list
// is split on first use, not at start-up: every netkit command would pay
// for it otherwise (issue 18).
var codeWords = sync.OnceValues(func() ([]string, map[string]bool) { return loadWords(wordFile) })

const (
	codeWordCount = 3
	maxRoom       = 999
)

// ErrBadCode means a code is not a number and three words of the list.
var ErrBadCode = errors.New("transfer: not a netkit code (want a number and three words, like 7-tiger-lamp-cloud)")

func loadWords(file string) ([]string, map[string]bool) {
	var words []string
	index := map[string]bool{}
	for _, line := range strings.Split(file, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		words = append(words, line)
		index[line] = true
	}
	return words, index
}

// NewCode returns a fresh random code.
func NewCode() (string, error) {
	room, err := rand.Int(rand.Reader, big.NewInt(maxRoom))
	if err != nil {
		return "", fmt.Errorf("transfer: code: %w", err)
	}
	return newCodeInRoom(int(room.Int64()) + 1)
}

// newCodeInRoom returns a code with fresh random words for room.
func newCodeInRoom(room int) (string, error) {
	parts := []string{strconv.Itoa(room)}
	words, _ := codeWords()
	for range codeWordCount {
		i, err := rand.Int(rand.Reader, big.NewInt(int64(len(words))))
		if err != nil {
			return "", fmt.Errorf("transfer: code: %w", err)
		}
		parts = append(parts, words[i.Int64()])
	}
	return strings.Join(parts, "-"), nil
}

// ParseCode checks a code as typed (any case, dashes or spaces between
// the parts) and returns it in its canonical form and its room number.
func ParseCode(code string) (canonical string, room int, err error) {
	parts := strings.FieldsFunc(strings.ToLower(code), func(r rune) bool { return r == '-' || r == ' ' })
	if len(parts) != 1+codeWordCount {
		return "", 0, ErrBadCode
	}
	room, err = strconv.Atoi(parts[0])
	if err != nil || room < 1 || room > maxRoom || parts[0] != strconv.Itoa(room) {
		return "", 0, ErrBadCode
	}
	_, index := codeWords()
	for _, w := range parts[1:] {
		if !index[w] {
			return "", 0, fmt.Errorf("%w: %q is not one of its words", ErrBadCode, w)
		}
	}
	return strings.Join(parts, "-"), room, nil
}
