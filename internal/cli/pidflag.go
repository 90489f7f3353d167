package cli

import (
	"fmt"
	"strconv"
	"strings"
)

// pidValue is a flag holding one process id, such as --server-pid. Its
// errors say what went wrong in the terms of the command line people type,
// "$(pgrep -f 'netkit hub')" included.
type pidValue int

// String returns the pid, or "" for none.
func (p *pidValue) String() string {
	if *p == 0 {
		return ""
	}
	return strconv.Itoa(int(*p))
}

// Type names the value in --help.
func (p *pidValue) Type() string { return "pid" }

// Set reads one process id.
func (p *pidValue) Set(s string) error {
	fields := strings.Fields(s)
	switch {
	case len(fields) == 0:
		return fmt.Errorf("empty: want a process id (did pgrep or pidof find no process? is the server running?)")
	case len(fields) > 1:
		return fmt.Errorf("%d process ids (%s): want one; under \"go run\" both the go command and the program it started match pgrep -f, so use \"pgrep -x netkit\" or \"pidof netkit\"",
			len(fields), strings.Join(fields, ", "))
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n <= 0 {
		return fmt.Errorf("want a process id, a number like 4242")
	}
	*p = pidValue(n)
	return nil
}
