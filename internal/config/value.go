package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// SizeUnits documents the units ParseSize accepts, for help texts.
const SizeUnits = "B, KiB, MiB, GiB or TiB (powers of 1024)"

// sizeUnits lists the units of a size, largest first, so FormatSize picks
// the largest exact one.
var sizeUnits = []struct {
	name string
	mult int64
}{
	{"TiB", 1 << 40},
	{"GiB", 1 << 30},
	{"MiB", 1 << 20},
	{"KiB", 1 << 10},
	{"B", 1},
}

// ParseSize parses a byte size written as a non-negative integer and a unit:
// "512B", "64KiB", "1MiB", "1GiB", "2TiB". Units are powers of 1024 and
// case-sensitive; decimal units such as "KB" or "MB", bare numbers,
// fractions, signs and spaces are errors.
func ParseSize(s string) (int64, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], s[i:]
	if num == "" {
		return 0, fmt.Errorf("config: size %q: want an integer and a unit, %s", s, SizeUnits)
	}
	if unit == "" {
		return 0, fmt.Errorf("config: size %q: missing unit; want %s", s, SizeUnits)
	}
	for _, u := range sizeUnits {
		if unit != u.name {
			continue
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/u.mult {
			return 0, fmt.Errorf("config: size %q: too large", s)
		}
		return n * u.mult, nil
	}
	switch strings.ToUpper(unit) {
	case "KB", "MB", "GB", "TB":
		return 0, fmt.Errorf("config: size %q: %q is ambiguous; use %s", s, unit, SizeUnits)
	}
	return 0, fmt.Errorf("config: size %q: unknown unit %q; want %s", s, unit, SizeUnits)
}

// FormatSize writes n in the largest unit that holds it exactly: 65536 is
// "64KiB", 1000 is "1000B". ParseSize(FormatSize(n)) == n for n >= 0.
func FormatSize(n int64) string {
	for _, u := range sizeUnits {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// ParseDuration is time.ParseDuration without its one unitless form: "0"
// is an error, "0s" is zero.
func ParseDuration(s string) (time.Duration, error) {
	if strings.TrimLeft(s, "+-") == "0" {
		return 0, fmt.Errorf("config: duration %q: missing unit", s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("config: %w", err)
	}
	return d, nil
}

// FormatDuration writes d like time.Duration.String without trailing zero
// units: "10m" rather than "10m0s", "1h" rather than "1h0m0s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// parseValue converts v, a value decoded from TOML (string, bool, int64,
// float64, table, array, date) or, when text is true, a string from the
// environment or a flag, to a value of k's field type. Its errors say what
// was wanted and what came, and the caller prefixes the key. def is the
// key's default, shown as an example.
func parseValue(k *key, v any, text bool, def reflect.Value) (any, error) {
	var want string
	switch k.kind {
	case kindString:
		want = "a string"
		if s, ok := v.(string); ok {
			return convert(s, k.typ), nil
		}
	case kindBool:
		want = "true or false"
		switch x := v.(type) {
		case bool:
			return convert(x, k.typ), nil
		case string:
			if b, err := strconv.ParseBool(x); text && err == nil {
				return convert(b, k.typ), nil
			}
		}
	case kindInt:
		return parseInt(k, v, text, def)
	case kindList:
		return parseList(k, v, text)
	case kindTables:
		return parseTables(k, v, text)
	case kindDuration:
		want = "a duration like " + k.example(def)
		if s, ok := v.(string); ok {
			if d, err := ParseDuration(s); err == nil {
				return convert(d, k.typ), nil
			}
		}
	case kindSize:
		want = "a size like " + k.example(def)
		if s, ok := v.(string); ok {
			n, err := ParseSize(s)
			if err == nil && !reflect.Zero(k.typ).OverflowInt(n) {
				return convert(n, k.typ), nil
			}
			if s != "" && s[0] >= '0' && s[0] <= '9' {
				want += " in " + SizeUnits
			}
		}
	}
	return nil, fmt.Errorf("want %s, got %s", want, describe(v))
}

// parseList is parseValue for string lists: a TOML array of strings, or
// comma-separated text (spaces around items are trimmed, empty items
// dropped).
func parseList(k *key, v any, text bool) (any, error) {
	out := []string{}
	switch x := v.(type) {
	case string:
		if !text {
			break
		}
		for item := range strings.SplitSeq(x, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
		return convert(out, k.typ), nil
	case []string:
		return convert(append(out, x...), k.typ), nil
	case []any:
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("item %d: want a string, got %s", i, describe(e))
			}
			out = append(out, s)
		}
		return convert(out, k.typ), nil
	}
	if text {
		return nil, fmt.Errorf(`want a comma-separated list like "a,b", got %s`, describe(v))
	}
	return nil, fmt.Errorf(`want an array of strings like ["a", "b"], got %s`, describe(v))
}

// tables is a kindTables value before it is decoded: each table's values
// by key name, parsed. Keys a table leaves out are filled in by Load.
type tables []map[string]any

// parseTables is parseValue for arrays of tables, which only the file
// can set.
func parseTables(k *key, v any, text bool) (any, error) {
	if text {
		return nil, fmt.Errorf("set it in the config file as [[%s]] tables; it has no variable or flag", k.path)
	}
	list, ok := v.([]map[string]any)
	if !ok {
		arr, isArr := v.([]any)
		if !isArr {
			return nil, fmt.Errorf("want [[%s]] tables, got %s", k.path, describe(v))
		}
		for _, e := range arr {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("want [[%s]] tables, got an array holding %s", k.path, describe(e))
			}
			list = append(list, m)
		}
	}
	out := make(tables, 0, len(list))
	var errs []error
	for i, m := range list {
		parsed := make(map[string]any, len(m))
		for _, name := range sortedKeys(m) {
			ek := k.elemKey(name)
			if ek == nil {
				names := make([]string, len(k.elem))
				for j, e := range k.elem {
					names[j] = e.name
				}
				msg := fmt.Errorf("%s[%d].%s: unknown key", k.path, i, name)
				if hint := suggest(name, names); hint != "" {
					msg = fmt.Errorf("%w; did you mean %s?", msg, hint)
				}
				errs = append(errs, msg)
				continue
			}
			val, err := parseValue(ek, m[name], false, reflect.Zero(ek.typ))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s[%d].%s: %w", k.path, i, name, err))
				continue
			}
			parsed[name] = val
		}
		out = append(out, parsed)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, errTables{err}
	}
	return out, nil
}

// errTables carries errors that already name their key.
type errTables struct{ error }

func (e errTables) Unwrap() error { return e.error }

// elemKey returns the key of one table named name, or nil.
func (k *key) elemKey(name string) *key {
	for _, e := range k.elem {
		if e.name == name {
			return e
		}
	}
	return nil
}

// parseInt is parseValue for integer keys, which also checks the range of
// the field's type.
func parseInt(k *key, v any, text bool, def reflect.Value) (any, error) {
	var n int64
	ok, overflow := false, false
	switch x := v.(type) {
	case int64:
		n, ok = x, true
	case string:
		if text {
			var err error
			n, err = strconv.ParseInt(x, 10, 64)
			ok, overflow = err == nil, errors.Is(err, strconv.ErrRange)
		}
	}
	if overflow || ok && reflect.Zero(k.typ).OverflowInt(n) {
		hi := int64(uint64(1)<<(k.typ.Bits()-1) - 1)
		return nil, fmt.Errorf("want an integer from %d to %d, got %s", -hi-1, hi, describe(v))
	}
	if !ok {
		return nil, fmt.Errorf("want an integer like %s, got %s", k.example(def), describe(v))
	}
	return convert(n, k.typ), nil
}

// convert returns x as a value of type t, a named or plain type of x's kind.
func convert(x any, t reflect.Type) any {
	return reflect.ValueOf(x).Convert(t).Interface()
}

// describe renders a value the way a user wrote it: strings quoted, tables
// and arrays by name.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case map[string]any:
		return "a table"
	case []any:
		return "an array"
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// formatValue renders v, a key's value, the way the file, the environment
// and flags write it: "64KiB", "25s", "true".
func formatValue(k *key, v reflect.Value) string {
	switch k.kind {
	case kindDuration:
		return FormatDuration(time.Duration(v.Int()))
	case kindSize:
		return FormatSize(v.Int())
	case kindInt:
		return strconv.FormatInt(v.Int(), 10)
	case kindBool:
		return strconv.FormatBool(v.Bool())
	case kindList:
		return strings.Join(v.Convert(reflect.TypeFor[[]string]()).Interface().([]string), ",")
	case kindTables:
		return fmt.Sprintf("%d tables", v.Len())
	}
	return v.String()
}
