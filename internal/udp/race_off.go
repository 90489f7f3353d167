//go:build !race

package udp

// raceEnabled is true in builds with the race detector.
const raceEnabled = false
