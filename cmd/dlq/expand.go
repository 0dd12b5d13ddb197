// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// expand.go reads values of the collector's config the way the collector
// does: ${...} references expanded, a string where a list is due split at
// commas, and every value's path at hand for errors.

// asMap returns v as a string-keyed map; YAML maps with other keys are
// converted, nil is an empty map (`key:` with no value keeps defaults).
func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, val := range m {
			out[fmt.Sprint(k)] = val
		}
		return out, true
	case nil:
		return map[string]any{}, true
	}
	return nil, false
}

// node is a value of the config with its path (for errors), read with
// references expanded on access: only the values dlq uses are expanded, so
// a reference it does not understand elsewhere in the file is no error.
type node struct {
	v    any
	path string
	x    *expander
}

func (n node) child(key string) string {
	if n.path == "" {
		return key
	}
	return n.path + "::" + key
}

func (n node) keys() []string {
	m, _ := asMap(n.v)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// raw returns the value at key as written, unexpanded.
func (n node) raw(key string) (any, bool) {
	m, _ := asMap(n.v)
	v, ok := m[key]
	return v, ok
}

// get returns the expanded value at key.
func (n node) get(key string) (any, bool, error) {
	v, ok := n.raw(key)
	if !ok {
		return nil, false, nil
	}
	if s, isStr := v.(string); isStr {
		e, err := n.x.value(s, n.child(key))
		return e, true, err
	}
	return v, true, nil
}

// subIfSet returns the map at key and whether the key is there.
func (n node) subIfSet(key string) (node, bool, error) {
	v, ok, err := n.get(key)
	if err != nil {
		return node{}, false, err
	}
	m, isMap := asMap(v)
	if !isMap {
		return node{}, false, fmt.Errorf("%s must be a map, not %T", n.child(key), v)
	}
	return node{v: m, path: n.child(key), x: n.x}, ok, nil
}

// sub is subIfSet for callers to whom a missing map is an empty one.
func (n node) sub(key string) (node, error) {
	s, _, err := n.subIfSet(key)
	return s, err
}

func (n node) list(key string) ([]node, error) {
	v, ok, err := n.get(key)
	if err != nil || !ok || v == nil {
		return nil, err
	}
	l, isList := v.([]any)
	if !isList {
		return nil, fmt.Errorf("%s must be a list, not %T", n.child(key), v)
	}
	out := make([]node, len(l))
	for i, el := range l {
		out[i] = node{v: el, path: n.child(key), x: n.x}
	}
	return out, nil
}

func (n node) str(key, def string) (string, error) {
	v, ok, err := n.get(key)
	if err != nil || !ok || v == nil {
		return def, err
	}
	switch s := v.(type) {
	case string:
		return s, nil
	case int, bool, float64:
		return fmt.Sprint(s), nil
	}
	return "", fmt.Errorf("%s must be a string, not %T", n.child(key), v)
}

// secret is str for a value never to be printed.
func (n node) secret(key string) (string, error) {
	s, err := n.str(key, "")
	if s != "" {
		n.x.secrets = append(n.x.secrets, s)
	}
	return s, err
}

func (n node) boolean(key string, def bool) (bool, error) {
	v, ok, err := n.get(key)
	if err != nil || !ok || v == nil {
		return def, err
	}
	switch b := v.(type) {
	case bool:
		return b, nil
	case string:
		switch strings.ToLower(b) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, fmt.Errorf("%s must be true or false, not %v", n.child(key), v)
}

// strings reads a list of strings; a string is split at commas, as the
// collector's config decoder does.
func (n node) strings(key string, def []string) ([]string, error) {
	v, ok, err := n.get(key)
	if err != nil || !ok || v == nil {
		return def, err
	}
	switch l := v.(type) {
	case string:
		return strings.Split(l, ","), nil
	case []any:
		out := make([]string, 0, len(l))
		for i, el := range l {
			if s, isStr := el.(string); isStr {
				if el, err = n.x.value(s, fmt.Sprintf("%s[%d]", n.child(key), i)); err != nil {
					return nil, err
				}
			}
			switch s := el.(type) {
			case string:
				out = append(out, s)
			case int, float64, bool:
				out = append(out, fmt.Sprint(s))
			default:
				return nil, fmt.Errorf("%s[%d] must be a string, not %T", n.child(key), i, el)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s must be a list of strings, not %T", n.child(key), v)
}

// expander expands ${env:NAME:-default}, ${env:NAME}, ${NAME} (the
// collector's default scheme is env) and ${file:PATH}, and $$ to $, the way
// the collector's config resolver does.
type expander struct {
	lookup  func(string) (string, bool)
	secrets []string
}

var envName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// value expands the references in s. A value that is one reference and
// nothing else takes the referenced text's YAML type (a list, a bool), as
// in the collector.
func (x *expander) value(s, path string) (any, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	whole := strings.HasPrefix(s, "${") && strings.Index(s, "}") == len(s)-1
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "$$"):
			b.WriteByte('$')
			i++
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("%s: %q has an unclosed ${", path, s)
			}
			val, err := x.resolve(s[i+2:i+end], path)
			if err != nil {
				return nil, err
			}
			b.WriteString(val)
			i += end
		default:
			b.WriteByte(s[i])
		}
	}
	out := b.String()
	if whole {
		var typed any
		if yaml.Unmarshal([]byte(out), &typed) == nil {
			switch typed.(type) {
			case []any, bool, map[string]any:
				return typed, nil
			}
		}
	}
	return out, nil
}

func (x *expander) resolve(ref, path string) (string, error) {
	scheme, rest, hasScheme := strings.Cut(ref, ":")
	if !hasScheme {
		scheme, rest = "env", ref
	}
	switch scheme {
	case "env":
		name, def, _ := strings.Cut(rest, ":-")
		if !envName.MatchString(name) {
			return "", fmt.Errorf("%s: environment variable %q has an invalid name", path, name)
		}
		if v, ok := x.lookup(name); ok {
			return v, nil
		}
		// Unset without a default expands to "", as in the collector.
		return def, nil
	case "file":
		b, err := os.ReadFile(rest)
		if err != nil {
			return "", fmt.Errorf("%s: ${file:...}: %w", path, err)
		}
		return strings.TrimRight(string(b), "\n"), nil
	}
	return "", fmt.Errorf("%s: ${%s:...} references are not supported by dlq (only env and file): write the value into the config dlq reads", path, scheme)
}

// all expands every string under v (a tls section).
func (x *expander) all(v any, path string) (any, error) {
	switch t := v.(type) {
	case string:
		return x.value(t, path)
	case []any:
		out := make([]any, len(t))
		for i, el := range t {
			e, err := x.all(el, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	}
	if m, ok := asMap(v); ok {
		out := make(map[string]any, len(m))
		for k, el := range m {
			e, err := x.all(el, path+"::"+k)
			if err != nil {
				return nil, err
			}
			out[k] = e
		}
		return out, nil
	}
	return v, nil
}

// scrub replaces every secret in s.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}
