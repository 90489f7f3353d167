// Package config loads settings into a struct of section structs from, in
// increasing precedence, the struct's defaults, a TOML file, environment
// variables and command-line flags, and writes such a struct back as a
// commented TOML file (WriteTOML).
//
// The struct is the schema. Each exported field of the top-level struct is a
// section: a struct field with a koanf tag, the TOML table name. Each
// exported field of a section is a key with a koanf tag (its snake_case name)
// and a help tag (a one-line description for --help and WriteTOML). A key
// holds a string, a bool, a signed integer, a time.Duration (written "25s")
// or, tagged unit:"size", a byte size in an integer field (written "64KiB",
// see ParseSize). Bare numbers are not durations or sizes. A []string key
// is a TOML array of strings, or comma-separated text in the environment
// and flags. A slice of structs is an array of tables ([[hub.namespaces]]),
// set only in the file; each struct field is a key of one table, and a key
// a table leaves out takes the value of the section's key of the same name
// and type.
//
// Key hub.max_message_size is [hub] max_message_size in the file, the
// environment variable NETKIT_HUB_MAX_MESSAGE_SIZE (for prefix "NETKIT") and
// the flag --max-message-size (when hub is the bare section of BindFlags).
//
// Loading is strict: an unknown key in the file, an unknown variable under a
// section's prefix (NETKIT_HUB_*) and a value of the wrong type or form are
// errors that name the key and the expected form. Load reports all of them
// at once, then calls the Validate method of each section that has one.
package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	gotoml "github.com/pelletier/go-toml/v2"
	"github.com/spf13/pflag"
)

// Loader loads settings into the struct it was made for.
type Loader struct {
	schema    *schema
	dst       reflect.Value  // the top-level struct, settable
	defaults  reflect.Value  // a copy of *dst when New was called
	envPrefix string         // "NETKIT"
	flags     []*flagValue   // added by BindFlags
	defMap    map[string]any // defaults by key path
}

// New returns a Loader for dst, a pointer to a struct of section structs.
// The values in *dst when New is called are the defaults. envPrefix names
// the environment variables: with "NETKIT", NETKIT_<SECTION>_<KEY>.
func New(dst any, envPrefix string) (*Loader, error) {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil, fmt.Errorf("config: want a non-nil pointer to a struct, got %T", dst)
	}
	s, err := schemaOf(v.Elem().Type())
	if err != nil {
		return nil, err
	}
	l := &Loader{
		schema:    s,
		dst:       v.Elem(),
		defaults:  reflect.New(s.typ).Elem(),
		envPrefix: envPrefix,
		defMap:    make(map[string]any),
	}
	l.defaults.Set(v.Elem())
	for _, k := range s.keys {
		if k.kind != kindTables { // filled in after decoding: see fillTables
			l.defMap[k.path] = k.get(l.defaults).Interface()
		}
	}
	return l, nil
}

// Load merges the defaults, the TOML file at path (none if path is ""), the
// variables in env (os.Environ form) under the sections' prefixes, and the
// flags from BindFlags that were set, in that order; decodes the result;
// validates it; and on success stores it in the struct given to New. On
// failure the struct is unchanged and the error joins every problem found.
func (l *Loader) Load(path string, env []string) error {
	var errs []error
	layers := []map[string]any{l.defMap}
	if path != "" {
		m, err := l.fromFile(path)
		errs = append(errs, err)
		layers = append(layers, m)
	}
	m, err := l.fromEnv(env)
	errs = append(errs, err)
	layers = append(layers, m)
	m, err = l.fromFlags()
	errs = append(errs, err)
	layers = append(layers, m)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	tabled := make(map[string]tables)
	for _, m := range layers {
		for path, v := range m {
			if t, ok := v.(tables); ok {
				tabled[path] = t
				delete(m, path)
			}
		}
	}

	ko := koanf.New(".")
	for _, m := range layers {
		if err := ko.Load(confmap.Provider(m, "."), nil); err != nil {
			return fmt.Errorf("config: merge: %w", err)
		}
	}
	out := reflect.New(l.schema.typ)
	err = ko.UnmarshalWithConf("", out.Interface(), koanf.UnmarshalConf{
		Tag: "koanf",
		DecoderConfig: &mapstructure.DecoderConfig{
			// Values are already of their field's type; the hook is kept
			// for the day a layer passes a duration as a string.
			DecodeHook:  mapstructure.StringToTimeDurationHookFunc(),
			ErrorUnused: true,
			TagName:     "koanf",
		},
	})
	if err != nil {
		return fmt.Errorf("config: decode: %w", err)
	}
	l.fillTables(out.Elem(), tabled)
	if err := validate(out.Elem()); err != nil {
		return err
	}
	l.dst.Set(out.Elem())
	return nil
}

// fillTables sets each array-of-tables key of v: from the file's tables
// when it had any, else the default. A key a table leaves out takes the
// value of the section's key of the same name and type, when there is
// one (a namespace inherits [hub] history_size), else its zero value.
func (l *Loader) fillTables(v reflect.Value, tabled map[string]tables) {
	for _, k := range l.schema.keys {
		if k.kind != kindTables {
			continue
		}
		t, ok := tabled[k.path]
		if !ok {
			k.get(v).Set(k.get(l.defaults))
			continue
		}
		section := v.Field(k.index[0])
		list := reflect.MakeSlice(k.typ, len(t), len(t))
		for i, m := range t {
			el := list.Index(i)
			for _, ek := range k.elem {
				f := el.FieldByIndex(ek.index)
				if val, ok := m[ek.name]; ok {
					f.Set(reflect.ValueOf(val))
					continue
				}
				if sk := l.schema.byPath[k.section+"."+ek.name]; sk != nil && sk.typ == ek.typ {
					f.Set(section.Field(sk.index[1]))
				}
			}
		}
		k.get(v).Set(list)
	}
}

// validate calls Validate on the top-level struct and each section that
// has the method, and joins their errors.
func validate(v reflect.Value) error {
	type validator interface{ Validate() error }
	var errs []error
	if x, ok := v.Addr().Interface().(validator); ok {
		errs = append(errs, x.Validate())
	}
	for i := range v.NumField() {
		f := v.Field(i)
		if !v.Type().Field(i).IsExported() || f.Kind() != reflect.Struct {
			continue
		}
		if x, ok := f.Addr().Interface().(validator); ok {
			errs = append(errs, x.Validate())
		}
	}
	return errors.Join(errs...)
}

// fromFile reads the TOML file at path and returns its values by key path.
func (l *Loader) fromFile(path string) (map[string]any, error) {
	b, err := file.Provider(path).ReadBytes()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	raw, err := toml.Parser().Unmarshal(b)
	if err != nil {
		var de *gotoml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("config: %s:%d:%d: %v", path, row, col, de)
		}
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	where := fmt.Sprintf(" (in %s)", path)
	out := make(map[string]any)
	var errs []error
	for _, name := range sortedKeys(raw) {
		table, ok := raw[name].(map[string]any)
		if !slices.Contains(l.schema.sections, name) || !ok {
			errs = append(errs, l.unknownFileKey(name, raw[name], where))
			continue
		}
		errs = append(errs, l.fromTable(name, table, where, out)...)
	}
	return out, errors.Join(errs...)
}

// fromTable adds the keys of the file's table [name] (a section or a
// subsection) to out.
func (l *Loader) fromTable(name string, table map[string]any, where string, out map[string]any) []error {
	var errs []error
	for _, kname := range sortedKeys(table) {
		path := name + "." + kname
		if slices.Contains(l.schema.subsections, path) {
			sub, ok := table[kname].(map[string]any)
			if !ok {
				errs = append(errs, fmt.Errorf("%s: want a table [%s], got %s%s", path, path, describe(table[kname]), where))
				continue
			}
			errs = append(errs, l.fromTable(path, sub, where, out)...)
			continue
		}
		k := l.schema.byPath[path]
		if k == nil {
			errs = append(errs, l.unknownFileKey(path, table[kname], where))
			continue
		}
		v, err := parseValue(k, table[kname], false, k.get(l.defaults))
		var named errTables
		switch {
		case errors.As(err, &named):
			errs = append(errs, fmt.Errorf("%w%s", named.error, where))
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w%s", path, err, where))
			continue
		}
		out[path] = v
	}
	return errs
}

// unknownFileKey describes a top-level name or section key that is not in
// the schema, suggesting the closest key.
func (l *Loader) unknownFileKey(path string, v any, where string) error {
	_, isTable := v.(map[string]any)
	if !strings.Contains(path, ".") && isTable {
		if hint := suggest(path, l.schema.sections); hint != "" {
			return fmt.Errorf("%s: unknown section%s; did you mean [%s]?", path, where, hint)
		}
		return fmt.Errorf("%s: unknown section%s; want one of %s", path, where, strings.Join(l.schema.sections, ", "))
	}
	if !strings.Contains(path, ".") && slices.Contains(l.schema.sections, path) {
		return fmt.Errorf("%s: want a table [%s], got %s%s", path, path, describe(v), where)
	}
	var paths, leaves []string
	for _, k := range l.schema.keys {
		paths = append(paths, k.path)
		leaves = append(leaves, k.name)
	}
	hint := suggest(path, paths)
	if hint == "" && !strings.Contains(path, ".") {
		// A key outside its table: listen = ":9999" above [hub].
		if i := slices.Index(leaves, suggest(path, leaves)); i >= 0 {
			hint = paths[i]
		}
	}
	if hint != "" {
		return fmt.Errorf("%s: unknown key%s; did you mean %s?", path, where, hint)
	}
	return fmt.Errorf("%s: unknown key%s", path, where)
}

// fromEnv returns the values set by variables named after a section's
// prefix (NETKIT_HUB_*). Other variables are ignored; an unknown name under
// a section's prefix is an error.
func (l *Loader) fromEnv(env []string) (map[string]any, error) {
	byName := make(map[string]*key)
	var names []string
	for _, k := range l.schema.keys {
		byName[k.envName(l.envPrefix)] = k
		names = append(names, k.envName(l.envPrefix))
	}
	out := make(map[string]any)
	var errs []error
	for _, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !l.underSection(name) {
			continue
		}
		k := byName[name]
		if k == nil {
			if hint := suggest(name, names); hint != "" {
				errs = append(errs, fmt.Errorf("%s: unknown variable; did you mean %s?", name, hint))
			} else {
				errs = append(errs, fmt.Errorf("%s: unknown variable; no setting has this name", name))
			}
			continue
		}
		v, err := parseValue(k, val, true, k.get(l.defaults))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w (from %s)", k.path, err, name))
			continue
		}
		out[k.path] = v
	}
	return out, errors.Join(errs...)
}

// underSection reports whether an environment variable name starts with a
// section's prefix, like NETKIT_HUB_.
func (l *Loader) underSection(name string) bool {
	for _, s := range l.schema.sections {
		if strings.HasPrefix(name, l.envPrefix+"_"+strings.ToUpper(s)+"_") {
			return true
		}
	}
	return false
}

// BindFlags adds to fs one flag per key, named after the key alone for the
// section bare (hub.max_message_size is --max-message-size) and after the
// section and key for the others (log.level is --log-level). A flag's usage
// is the key's help tag and its default the key's default. Flags take the
// same text as the environment; Load applies those that were set.
func (l *Loader) BindFlags(fs *pflag.FlagSet, bare string) error {
	for _, k := range l.schema.keys {
		if k.kind == kindTables {
			continue // file only
		}
		v := &flagValue{key: k, name: k.flagName(bare), text: formatValue(k, k.get(l.defaults))}
		if fs.Lookup(v.name) != nil {
			return fmt.Errorf("config: flag --%s for %s is already defined", v.name, k.path)
		}
		f := fs.VarPF(v, v.name, "", k.help)
		if k.kind == kindBool {
			f.NoOptDefVal = "true"
		}
		l.flags = append(l.flags, v)
	}
	return nil
}

// fromFlags returns the values of the bound flags that were set.
func (l *Loader) fromFlags() (map[string]any, error) {
	out := make(map[string]any)
	var errs []error
	for _, f := range l.flags {
		if !f.set {
			continue
		}
		v, err := parseValue(f.key, f.text, true, f.key.get(l.defaults))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w (from --%s)", f.key.path, err, f.name))
			continue
		}
		out[f.key.path] = v
	}
	return out, errors.Join(errs...)
}

// flagValue is a pflag.Value that keeps the text it was set to; Load parses
// it, so that flag errors read like file and environment errors.
type flagValue struct {
	key  *key
	name string // without dashes
	text string // the default's text until Set
	set  bool
}

func (v *flagValue) String() string {
	if v == nil {
		return ""
	}
	return v.text
}

func (v *flagValue) Set(s string) error {
	v.text, v.set = s, true
	return nil
}

// Type names the value in --help: "--max-message-size size".
func (v *flagValue) Type() string {
	switch v.key.kind {
	case kindBool:
		return "bool"
	case kindInt:
		return "int"
	case kindDuration:
		return "duration"
	case kindSize:
		return "size"
	case kindList:
		return "list"
	}
	return "string"
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
