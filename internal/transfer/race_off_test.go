//go:build !race

package transfer

// raceOn is true under the race detector, which slows the hashing and
// every read into a large buffer several times: tests then move less data.
const raceOn = false
