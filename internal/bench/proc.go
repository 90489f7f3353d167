package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// procStats is what /proc says about a server process on this machine.
type procStats struct {
	cpu time.Duration // user + system time so far
	rss int64         // resident set size, bytes
}

// clockTick is the unit of the times in /proc/PID/stat: USER_HZ, which
// Linux fixes at 100 per second for user space whatever the kernel's HZ.
const clockTick = 10 * time.Millisecond

// readProc reads the CPU time and resident memory of process pid.
func readProc(pid int) (procStats, error) {
	var st procStats
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, fmt.Errorf("server process: %w", err)
	}
	// The command name, in parentheses, may hold spaces: count fields from
	// the last ")". utime and stime are fields 14 and 15 of the line.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return st, fmt.Errorf("server process: /proc/%d/stat: no ')'", pid)
	}
	fields := bytes.Fields(stat[end+1:])
	if len(fields) < 13 {
		return st, fmt.Errorf("server process: /proc/%d/stat: %d fields after the name, want 13 or more", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(string(fields[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(fields[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return st, fmt.Errorf("server process: /proc/%d/stat: bad utime %q or stime %q", pid, fields[11], fields[12])
	}
	st.cpu = time.Duration(utime+stime) * clockTick

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, fmt.Errorf("server process: %w", err)
	}
	st.rss, err = vmRSS(status)
	if err != nil {
		return st, fmt.Errorf("server process: /proc/%d/status: %w", pid, err)
	}
	return st, nil
}

// vmRSS returns the VmRSS line of /proc/PID/status in bytes.
func vmRSS(status []byte) (int64, error) {
	for line := range bytes.SplitSeq(status, []byte{'\n'}) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest) // "123456 kB"
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("VmRSS: want \"N kB\", got %q", bytes.TrimSpace(rest))
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS: %w", err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no VmRSS line")
}
