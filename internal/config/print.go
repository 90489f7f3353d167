package config

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"
)

// WriteTOML writes cfg, a struct of section structs or a pointer to one, as
// a TOML file that Load reads back to the same values: header as comment
// lines, then one table per section with each key preceded by its help tag
// as a comment. Sizes are written like "64KiB" and durations like "25s".
func WriteTOML(w io.Writer, cfg any, header string) error {
	v := reflect.Indirect(reflect.ValueOf(cfg))
	if !v.IsValid() {
		return fmt.Errorf("config: want a struct of section structs, got %T", cfg)
	}
	s, err := schemaOf(v.Type())
	if err != nil {
		return err
	}
	var b strings.Builder
	if header != "" {
		writeComment(&b, header)
	}
	for _, section := range s.sections {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		if err := writeKeys(&b, s, section, v); err != nil {
			return err
		}
		// Subsections and arrays of tables come after the section's keys,
		// as TOML wants.
		for _, sub := range s.subsections {
			if strings.HasPrefix(sub, section+".") {
				fmt.Fprintf(&b, "\n")
				if err := writeKeys(&b, s, sub, v); err != nil {
					return err
				}
			}
		}
		for _, k := range s.keys {
			if k.section != section || k.kind != kindTables {
				continue
			}
			if err := writeTables(&b, k, k.get(v)); err != nil {
				return err
			}
		}
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// writeKeys writes the table [section] with its plain keys, each after its
// help as a comment.
func writeKeys(b *strings.Builder, s *schema, section string, v reflect.Value) error {
	fmt.Fprintf(b, "[%s]\n", section)
	first := true
	for _, k := range s.keys {
		if k.section != section || k.kind == kindTables {
			continue
		}
		if !first {
			b.WriteString("\n")
		}
		first = false
		val, err := tomlValue(k, k.get(v))
		if err != nil {
			return err
		}
		writeComment(b, wrap(k.help, 76))
		fmt.Fprintf(b, "%s = %s\n", k.name, val)
	}
	return nil
}

// writeTables writes an array-of-tables key: its description and the
// keys a table takes as comments, then one [[section.key]] table per
// element.
func writeTables(b *strings.Builder, k *key, list reflect.Value) error {
	b.WriteString("\n")
	writeComment(b, wrap(fmt.Sprintf("[[%s]]: %s. Each table takes these keys; one left out takes the [%s] key of the same name when there is one:", k.path, k.help, k.section), 76))
	for _, ek := range k.elem {
		writeComment(b, wrap(fmt.Sprintf("  %s: %s", ek.name, ek.help), 76))
	}
	for i := range list.Len() {
		fmt.Fprintf(b, "\n[[%s]]\n", k.path)
		el := list.Index(i)
		for _, ek := range k.elem {
			val, err := tomlValue(ek, el.FieldByIndex(ek.index))
			if err != nil {
				return err
			}
			fmt.Fprintf(b, "%s = %s\n", ek.name, val)
		}
	}
	return nil
}

// tomlValue renders a key's value as a TOML value.
func tomlValue(k *key, v reflect.Value) (string, error) {
	text := formatValue(k, v)
	switch k.kind {
	case kindInt, kindBool:
		return text, nil
	case kindList:
		items := v.Convert(reflect.TypeFor[[]string]()).Interface().([]string)
		quoted := make([]string, len(items))
		for i, it := range items {
			if !utf8.ValidString(it) {
				return "", fmt.Errorf("config: %s: value is not valid UTF-8, which TOML cannot hold", k.path)
			}
			quoted[i] = quoteTOML(it)
		}
		return "[" + strings.Join(quoted, ", ") + "]", nil
	}
	if !utf8.ValidString(text) {
		return "", fmt.Errorf("config: %s: value is not valid UTF-8, which TOML cannot hold", k.path)
	}
	return quoteTOML(text), nil
}

// quoteTOML returns s as a TOML basic string: in double quotes, with
// quotes, backslashes and control characters escaped. s is valid UTF-8.
func quoteTOML(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// writeComment writes each line of text as a TOML comment.
func writeComment(b *strings.Builder, text string) {
	for line := range strings.SplitSeq(strings.TrimRight(text, "\n"), "\n") {
		if line == "" {
			b.WriteString("#\n")
		} else {
			b.WriteString("# " + line + "\n")
		}
	}
}

// wrap breaks text into lines of at most width bytes at spaces; a longer
// word stays whole.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for i, word := range strings.Fields(text) {
		if i > 0 && n+1+len(word) > width {
			b.WriteString("\n")
			n = 0
		} else if i > 0 {
			b.WriteString(" ")
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}
