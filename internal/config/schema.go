package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// kind is how a key's value is written and parsed.
type kind int

const (
	kindString   kind = iota // a TOML string
	kindBool                 // true or false
	kindInt                  // a TOML integer; any signed integer field
	kindDuration             // a string like "25s"; a time.Duration field
	kindSize                 // a string like "64KiB"; an integer field tagged unit:"size"
	kindList                 // a TOML array of strings, or comma-separated text; a []string field
	kindTables               // a TOML array of tables (file only); a slice of structs whose fields are keys
)

var durationType = reflect.TypeFor[time.Duration]()

// key is one setting: a field of a section struct.
type key struct {
	path    string       // "hub.max_message_size"
	section string       // "hub", or "hub.nats" for a key of a subsection
	name    string       // "max_message_size"
	help    string       // the help tag
	kind    kind         //
	typ     reflect.Type // the field's type
	index   []int        // field index from the top-level struct
	elem    []*key       // kindTables: the keys of one table, indexed from the element struct
}

// schema is the list of sections and keys of a top-level struct, in field
// order.
type schema struct {
	typ         reflect.Type // the top-level struct
	sections    []string
	subsections []string // "hub.nats": a struct field of a section, the table [hub.nats]
	keys        []*key
	byPath      map[string]*key
}

// schemaOf reads the koanf, help and unit tags of t, a struct of section
// structs. A struct field of a section (other than a time.Duration) is a
// subsection: its fields are the keys of the table [section.name]. Its
// errors are programming errors in the struct definition.
func schemaOf(t reflect.Type) (*schema, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("config: want a struct of section structs, got %s", t)
	}
	s := &schema{typ: t, byPath: make(map[string]*key)}
	for _, sf := range reflect.VisibleFields(t) {
		if !sf.IsExported() || len(sf.Index) != 1 {
			continue
		}
		name, err := tagName(sf)
		if err != nil {
			return nil, err
		}
		if sf.Type.Kind() != reflect.Struct {
			return nil, fmt.Errorf("config: section %s: want a struct, got %s", name, sf.Type)
		}
		s.sections = append(s.sections, name)
		for _, kf := range reflect.VisibleFields(sf.Type) {
			if !kf.IsExported() || len(kf.Index) != 1 {
				continue
			}
			if kf.Type.Kind() == reflect.Struct {
				if err := s.addSubsection(name, sf.Index[0], kf); err != nil {
					return nil, err
				}
				continue
			}
			k, err := newKey(name, []int{sf.Index[0]}, kf)
			if err != nil {
				return nil, err
			}
			if err := s.add(k); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// addSubsection adds the keys of f, a struct field of section.
func (s *schema) addSubsection(section string, sectionIndex int, f reflect.StructField) error {
	name, err := tagName(f)
	if err != nil {
		return fmt.Errorf("config: section %s: %w", section, err)
	}
	sub := section + "." + name
	if s.byPath[sub] != nil {
		return fmt.Errorf("config: %s: defined twice", sub)
	}
	s.subsections = append(s.subsections, sub)
	for _, kf := range reflect.VisibleFields(f.Type) {
		if !kf.IsExported() || len(kf.Index) != 1 {
			continue
		}
		k, err := newKey(sub, []int{sectionIndex, f.Index[0]}, kf)
		if err != nil {
			return err
		}
		if k.kind == kindTables || kf.Type.Kind() == reflect.Struct {
			return fmt.Errorf("config: %s: only plain keys in a subsection", k.path)
		}
		if err := s.add(k); err != nil {
			return err
		}
	}
	return nil
}

func (s *schema) add(k *key) error {
	if s.byPath[k.path] != nil {
		return fmt.Errorf("config: %s: defined twice", k.path)
	}
	s.keys = append(s.keys, k)
	s.byPath[k.path] = k
	return nil
}

func tagName(f reflect.StructField) (string, error) {
	name := f.Tag.Get("koanf")
	if name == "" || strings.ContainsAny(name, ". ") || strings.ToLower(name) != name {
		return "", fmt.Errorf("config: field %s: want a lower-case koanf tag without dots, got %q", f.Name, name)
	}
	return name, nil
}

// newKey makes the key of field f of section, whose struct is at index
// (field indexes from the top-level struct).
func newKey(section string, index []int, f reflect.StructField) (*key, error) {
	name, err := tagName(f)
	if err != nil {
		return nil, fmt.Errorf("config: section %s: %w", section, err)
	}
	k := &key{
		path:    section + "." + name,
		section: section,
		name:    name,
		help:    f.Tag.Get("help"),
		typ:     f.Type,
		index:   append(slices.Clone(index), f.Index[0]),
	}
	if k.help == "" {
		return nil, fmt.Errorf("config: %s: missing help tag", k.path)
	}
	if err := k.setKind(f); err != nil {
		return nil, err
	}
	if k.kind == kindTables {
		et := f.Type.Elem()
		for _, ef := range reflect.VisibleFields(et) {
			if !ef.IsExported() || len(ef.Index) != 1 {
				continue
			}
			ek, err := newKey(k.path, nil, ef)
			if err != nil {
				return nil, err
			}
			if ek.kind == kindTables {
				return nil, fmt.Errorf("config: %s: tables inside tables are not supported", ek.path)
			}
			ek.index = ef.Index
			k.elem = append(k.elem, ek)
		}
	}
	return k, nil
}

// setKind sets k.kind from the field's type and unit tag.
func (k *key) setKind(f reflect.StructField) error {
	isInt := false
	switch f.Type.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		isInt = true
	}
	switch unit := f.Tag.Get("unit"); {
	case unit == "size" && isInt && f.Type != durationType:
		k.kind = kindSize
	case unit != "":
		return fmt.Errorf("config: %s: unit %q on a %s; want unit:\"size\" on an integer", k.path, unit, f.Type)
	case f.Type == durationType:
		k.kind = kindDuration
	case isInt:
		k.kind = kindInt
	case f.Type.Kind() == reflect.String:
		k.kind = kindString
	case f.Type.Kind() == reflect.Bool:
		k.kind = kindBool
	case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.String:
		k.kind = kindList
	case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
		k.kind = kindTables
	default:
		return fmt.Errorf("config: %s: unsupported type %s", k.path, f.Type)
	}
	return nil
}

// get returns k's value in the top-level struct v.
func (k *key) get(v reflect.Value) reflect.Value {
	return v.FieldByIndex(k.index)
}

// example returns a value of k's kind for error messages: the default when
// it is not the zero value, so that the message shows a typical value.
func (k *key) example(def reflect.Value) string {
	switch k.kind {
	case kindDuration:
		if d := time.Duration(def.Int()); d > 0 {
			return fmt.Sprintf("%q", FormatDuration(d))
		}
		return `"10s"`
	case kindSize:
		if n := def.Int(); n > 0 {
			return fmt.Sprintf("%q", FormatSize(n))
		}
		return `"64KiB"`
	case kindInt:
		if n := def.Int(); n > 0 {
			return fmt.Sprint(n)
		}
		return "100"
	}
	return ""
}

// envName returns the environment variable that sets k:
// NETKIT_HUB_MAX_MESSAGE_SIZE for hub.max_message_size,
// NETKIT_HUB_NATS_URL for hub.nats.url.
func (k *key) envName(prefix string) string {
	return prefix + "_" + strings.ToUpper(strings.ReplaceAll(k.section, ".", "_")+"_"+k.name)
}

// flagName returns the flag that sets k: the key alone, dashed, for the
// bare section (--max-message-size), the subsection and key for one of
// its subsections (--nats-url for hub.nats.url), else the section and key
// (--log-level).
func (k *key) flagName(bare string) string {
	n := k.name
	switch {
	case k.section == bare:
	case strings.HasPrefix(k.section, bare+"."):
		n = strings.TrimPrefix(k.section, bare+".") + "_" + n
	default:
		n = k.section + "_" + n
	}
	return strings.NewReplacer("_", "-", ".", "-").Replace(n)
}

// suggest returns the candidate closest to s, or "" when none is close
// enough to be a likely typo: at most one edit per three bytes of s.
func suggest(s string, candidates []string) string {
	best, limit := "", max(1, len(s)/3)
	for _, c := range candidates {
		if d := editDistance(s, c); d <= limit {
			best, limit = c, d-1
		}
	}
	return best
}

// editDistance is the number of single-byte insertions, deletions,
// substitutions and transpositions of adjacent bytes that turn a into b
// (optimal string alignment distance).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
