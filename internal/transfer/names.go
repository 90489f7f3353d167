package transfer

import (
	"strings"
	"unicode/utf8"
)

// checkName returns why a manifest name is unsafe, or "" when it may be
// written under --dir. A safe name is relative, "/"-separated, valid UTF-8,
// with components of 1..255 bytes that are not "." or ".." and hold no NUL
// or control character, and does not start with the partial-file area.
func checkName(name string) string {
	switch {
	case name == "":
		return "empty name"
	case len(name) > maxNameLen:
		return "name too long"
	case strings.HasPrefix(name, "/"):
		return "absolute path"
	case !utf8.ValidString(name):
		return "name is not valid UTF-8"
	}
	for _, r := range name {
		if isControl(r) {
			if r == 0 {
				return "NUL character in name"
			}
			return "control character in name"
		}
	}
	for comp := range strings.SplitSeq(name, "/") {
		switch {
		case comp == "":
			return "empty path component"
		case comp == "." || comp == "..":
			return "\"" + comp + "\" path component"
		case len(comp) > maxComponent:
			return "path component longer than 255 bytes"
		}
	}
	if name == partialDirName || strings.HasPrefix(name, partialDirName+"/") {
		return "reserved name " + partialDirName
	}
	return ""
}

// checkClassicName is checkName for the classic protocol, which sends a
// base name only.
func checkClassicName(name string) string {
	if why := checkName(name); why != "" {
		return why
	}
	if strings.Contains(name, "/") {
		return "not a base name"
	}
	return ""
}

// manifestConflicts returns, per entry index, why the manifest itself
// makes an entry unsafe: a name listed twice, or a name that is a file and
// also a parent of another entry. Every entry involved is refused.
func manifestConflicts(entries []entry) map[int]string {
	bad := map[int]string{}
	first := make(map[string]int, len(entries))
	for i, e := range entries {
		if j, ok := first[e.Name]; ok {
			bad[i] = "duplicate name in manifest"
			bad[j] = "duplicate name in manifest"
			continue
		}
		first[e.Name] = i
	}
	for i, e := range entries {
		for dir := parentOf(e.Name); dir != ""; dir = parentOf(dir) {
			j, ok := first[dir]
			if ok && entries[j].Kind == kindFile {
				bad[i] = "parent " + dir + " is a file in the manifest"
				bad[j] = "both a file and a directory in the manifest"
			}
		}
	}
	return bad
}

// parentOf returns the "/"-separated parent of name, or "" at the top.
func parentOf(name string) string {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return ""
	}
	return name[:i]
}
