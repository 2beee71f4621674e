// Package fielddiff is deitkd's one "name the first differing field" helper: the store's
// metadata diff (schema.Diff), a checkpoint's architecture check (student) and a resume's
// settings check (train) all walk two values with it and word the difference themselves.
//
// It knows nothing of deitkd's types: structs are walked field by field by their JSON names,
// in declaration order; objects decoded from JSON (map[string]any) key by key in sorted order,
// a key missing on one side compared as nil; anything else is compared whole as its JSON text,
// so slices differ as a whole and floats compare as written. It imports only the standard
// library.
package fielddiff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// A Field is one place where two values differ: its dotted path of JSON names below the path
// given to Walk, and the two values there (nil for a key one side lacks).
type Field struct {
	Path string
	A, B any
}

// Walk calls each for every field where a and b differ, in order, until each returns false.
func Walk(path string, a, b any, each func(Field) bool) {
	walk(path, reflect.ValueOf(a), reflect.ValueOf(b), each)
}

// First is the first field where a and b differ; ok is false when they agree.
func First(path string, a, b any) (f Field, ok bool) {
	Walk(path, a, b, func(d Field) bool { f, ok = d, true; return false })
	return f, ok
}

// All is every field where a and b differ, in order.
func All(path string, a, b any) []Field {
	var out []Field
	Walk(path, a, b, func(d Field) bool { out = append(out, d); return true })
	return out
}

// walk reports false once each has asked to stop.
func walk(path string, a, b reflect.Value, each func(Field) bool) bool {
	a, b = elem(a), elem(b)
	if a.IsValid() && b.IsValid() && a.Type() == b.Type() {
		switch {
		case a.Kind() == reflect.Struct:
			t := a.Type()
			for i := range t.NumField() {
				if !t.Field(i).IsExported() {
					continue
				}
				name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
				if name == "-" {
					continue
				}
				if name == "" {
					name = t.Field(i).Name
				}
				if !walk(join(path, name), a.Field(i), b.Field(i), each) {
					return false
				}
			}
			return true
		case a.Kind() == reflect.Map && a.Type().Key().Kind() == reflect.String && a.Type().Elem().Kind() == reflect.Interface:
			keys := map[string]bool{}
			for _, m := range []reflect.Value{a, b} {
				for _, k := range m.MapKeys() {
					keys[k.String()] = true
				}
			}
			sorted := make([]string, 0, len(keys))
			for k := range keys {
				sorted = append(sorted, k)
			}
			sort.Strings(sorted)
			for _, k := range sorted {
				key := reflect.ValueOf(k)
				if !walk(join(path, k), elem(a.MapIndex(key)), elem(b.MapIndex(key)), each) {
					return false
				}
			}
			return true
		}
	}
	if Text(value(a)) == Text(value(b)) {
		return true
	}
	return each(Field{Path: path, A: value(a), B: value(b)})
}

// elem unwraps an interface (a JSON object's values, a field of type any), so that it
// compares by what it holds.
func elem(v reflect.Value) reflect.Value {
	if v.IsValid() && v.Kind() == reflect.Interface {
		return v.Elem()
	}
	return v
}

func value(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	return v.Interface()
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// Text is v as compact JSON, HTML characters unescaped; a NaN or infinite float, which JSON
// cannot hold, as Go formats it.
func Text(v any) string {
	if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprintf("%v", v)
	}
	return strings.TrimSpace(buf.String())
}
