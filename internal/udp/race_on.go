//go:build race

package udp

// raceEnabled is true in builds with the race detector, which marks every
// read buffer as written on each recvmmsg: 2 MiB per read with full
// batches, too slow for the tests' rates.
const raceEnabled = true
