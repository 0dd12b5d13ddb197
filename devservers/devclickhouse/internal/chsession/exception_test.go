// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chsession

import (
	"errors"
	"testing"
)

func TestEngineException(t *testing.T) {
	e := EngineException("Code: 469. DB::Exception: Code: 469. DB::Exception: Constraint `c` is violated. (VIOLATED_CONSTRAINT)")
	if e.Code != 469 || e.Text != "Code: 469. DB::Exception: Constraint `c` is violated. (VIOLATED_CONSTRAINT)" {
		t.Errorf("nested: %+v", e)
	}
	e = EngineException("Code: 27. DB::Exception: Cannot parse input: expected '\\t'. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)\n")
	if e.Code != 27 {
		t.Errorf("parse: %+v", e)
	}
	e = EngineException("something odd")
	if e.Code != 1001 || e.Text != "Code: 1001. DB::Exception: something odd. (STD_EXCEPTION)" {
		t.Errorf("no code: %+v", e)
	}
	if e := AsException(errors.New("Code: 60. DB::Exception: x. (UNKNOWN_TABLE)")); e.Code != 60 {
		t.Errorf("AsException: %+v", e)
	}
	own := NewException(CodeReadonly, "READONLY", "no")
	if AsException(own) != own {
		t.Error("AsException does not keep an Exception")
	}
}

func TestTidyVersionSuffix(t *testing.T) {
	e := EngineException("Code: 115. DB::Exception: Unknown setting 'nosuch'. (UNKNOWN_SETTING) (version 26.7.2.1). (UNKNOWN_SETTING)")
	if e.Code != 115 || e.Text != "Code: 115. DB::Exception: Unknown setting 'nosuch'. (UNKNOWN_SETTING) (version 26.7.2.1)" {
		t.Errorf("%+v", e)
	}
	for _, text := range []string{
		"Code: 60. DB::Exception: Unknown table. (UNKNOWN_TABLE)",
		"Code: 60. DB::Exception: Unknown table 'x (version 1)'. (UNKNOWN_TABLE)",
	} {
		if e := EngineException(text); e.Text != text {
			t.Errorf("%q tidied to %q", text, e.Text)
		}
	}
}

func TestMessage(t *testing.T) {
	for text, want := range map[string]string{
		"Code: 60. DB::Exception: Unknown table expression identifier 'nope' in scope SELECT * FROM nope. (UNKNOWN_TABLE) (version 26.7.2.1)": "DB::Exception: Unknown table expression identifier 'nope' in scope SELECT * FROM nope.",
		"Code: 115. DB::Exception: Unknown setting 'nosuch'. (UNKNOWN_SETTING)":                                                               "DB::Exception: Unknown setting 'nosuch'.",
		"Code: 62. DB::Exception: Syntax error (x (y)). (SYNTAX_ERROR)":                                                                       "DB::Exception: Syntax error (x (y)).",
		"odd text (not a name)": "DB::Exception: odd text (not a name)",
	} {
		if got := (&Exception{Text: text}).Message(); got != want {
			t.Errorf("%q: %q, want %q", text, got, want)
		}
	}
}
