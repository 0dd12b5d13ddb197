// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package stack

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRepoRootFindsTheRootModule(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !declaresModule(b) {
		t.Fatalf("%s/go.mod does not declare %s (%v)", root, ModulePath, err)
	}
	if !declaresModule([]byte("// c\r\nmodule github.com/otelfailover/otelcol-failover\r\n\r\ngo 1.26\r\n")) {
		t.Fatal("declaresModule missed the module line")
	}
	if declaresModule([]byte("module github.com/otelfailover/otelcol-failover/tools\n")) {
		t.Fatal("declaresModule matched a nested module")
	}
}

func TestFreePortNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
