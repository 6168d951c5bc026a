package pipelines

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader: it must never panic, every
// error must carry a position, and an accepted configuration must print as
// YAML that loads back to the same print (defaults are idempotent).
//
//	go test -run '^$' -fuzz FuzzLoad -fuzztime 60s ./pipelines/
func FuzzLoad(f *testing.F) {
	for _, glob := range []string{"testdata/good/*.yaml", "testdata/bad/*.yaml", "examples/*.yaml"} {
		files, _ := filepath.Glob(glob)
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte("clusters: {a: {bootstrap: [\"h:1\"]}, b: {bootstrap: [\"h:2\"]}}\npipelines: [{name: p, source: a, destination: b, topics: {include: [\"(a|b)*c{2,5}\"]}}]\n"))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte("clusters: {a: {bootstrap: [\"h:1\"]}, b: {bootstrap: [\"h:2\"]}}\npipelines: [{name: p, source: a, destination: b, topics: {include: [t]}}]\nworkers: {group: g, cluster: a, session_timeout: 9s, heartbeat_interval: 3s, rebalance_timeout: 1ms}\n"))
	f.Add([]byte("pipelines: [{name: p, topics: {include: [\"${X}\"]}, rename: \"{topic}{topic}{source}\"}]"))
	look := func(name string) (string, bool) {
		if name == "X" {
			return "x,y", true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := load([]source{{"fuzz.yaml", data}}, look)
		if err != nil {
			errs, ok := err.(Errors)
			if !ok || len(errs) == 0 {
				t.Fatalf("error is not a non-empty Errors: %T %v", err, err)
			}
			for _, e := range errs {
				if e.Pos.File != "fuzz.yaml" || e.Pos.Line < 1 {
					t.Fatalf("error without a position: %v", e)
				}
			}
			return
		}
		var buf bytes.Buffer
		if err := cfg.WriteYAML(&buf); err != nil {
			t.Fatalf("WriteYAML: %v", err)
		}
		again, err := load([]source{{"fuzz.yaml", buf.Bytes()}}, look)
		if err != nil {
			t.Fatalf("the printed configuration does not load: %v\n%s", err, buf.Bytes())
		}
		var buf2 bytes.Buffer
		if err := again.WriteYAML(&buf2); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
			t.Fatalf("print is not stable:\n%s\n---\n%s", buf.Bytes(), buf2.Bytes())
		}
		// The fingerprint survives printing: a daemon given the printed
		// configuration joins the same group with the same fingerprint.
		if a, b := cfg.Fingerprint(), again.Fingerprint(); a != b {
			t.Fatalf("fingerprint changes through printing: %s %s\n%s", a, b, buf.Bytes())
		}
		for _, p := range cfg.Pipelines {
			for _, s := range p.samples() {
				p.Matches(s)
				p.DestTopic(s)
			}
		}
	})
}
