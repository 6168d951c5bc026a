package main

import (
	"bytes"
	"strings"
	"testing"

	"strait/mirror"
	"strait/mirror/audit"
)

func TestStatusAuditColumn(t *testing.T) {
	au := map[string]mirror.AuditStatus{
		"clean": {Enabled: true, Completeness: 1},
		"bad":   {Enabled: true, Completeness: 0.995, Totals: audit.Counts{Missing: 2, Extra: 1}},
		"off":   {},
	}
	for name, want := range map[string]string{"clean": "100%", "bad": "99.50% (2 missing, 1 extra)", "off": "off", "gone": "-"} {
		if got := formatAudit(au, name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	var b bytes.Buffer
	st := []mirror.PipelineStatus{{Name: "bad", State: mirror.StateRunning, Source: "a", Destination: "b", Mode: "batch"}}
	if err := writeTable(&b, st, au); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "AUDIT") || !strings.Contains(b.String(), "99.50% (2 missing, 1 extra)") {
		t.Fatalf("table:\n%s", b.String())
	}
}
