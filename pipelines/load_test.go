package pipelines

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testEnv is the environment the testdata files see.
var testEnv = map[string]string{
	"EAST_BOOTSTRAP": "127.0.0.1:9092, 127.0.0.1:9093",
	"WEST_HOST":      "10.1.0.1",
	"WEST_USER":      "mirror",
	"WEST_PASSWORD":  "env-s3cret",
	"EU_PASSWORD":    "eu-s3cret",
	"US_PASSWORD":    "us-s3cret",
	"WEST_BOOTSTRAP": "127.0.0.1:9192",
}

// secrets must never show in printed configurations or errors.
var secrets = []string{"env-s3cret", "eu-s3cret", "us-s3cret", "file-s3cret"}

func lookup(name string) (string, bool) {
	v, ok := testEnv[name]
	return v, ok
}

// cases lists the .yaml files and folders of a testdata folder.
func cases(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() || filepath.Ext(e.Name()) == ".yaml" {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func checkNoSecrets(t *testing.T, out []byte) {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(out, []byte(s)) {
			t.Errorf("secret %q printed:\n%s", s, out)
		}
	}
}

// TestGood loads every good case and compares the defaulted configuration
// (validate --print) with its golden file NAME.golden.
func TestGood(t *testing.T) {
	for _, path := range cases(t, "testdata/good") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cfg, err := LoadEnv(path, lookup)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			var buf, out bytes.Buffer
			if err := cfg.WriteYAML(&buf); err != nil {
				t.Fatal(err)
			}
			for _, w := range cfg.Warnings {
				// Warnings lead the golden file as YAML comments.
				out.WriteString("# " + w.Error() + "\n")
			}
			out.Write(buf.Bytes())
			checkNoSecrets(t, out.Bytes())
			golden(t, strings.TrimSuffix(path, ".yaml")+".golden", out.Bytes())

			// The printed configuration is itself a valid configuration
			// that prints the same (defaults are idempotent). Secrets
			// print masked, so they stay masked.
			again, err := Parse("printed.yaml", buf.Bytes())
			if err != nil {
				t.Fatalf("reloading the printed configuration: %v", err)
			}
			var buf2 bytes.Buffer
			if err := again.WriteYAML(&buf2); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
				t.Errorf("printing is not stable:\n%s\n---\n%s", buf.Bytes(), buf2.Bytes())
			}
		})
	}
}

// TestBad loads every bad case and compares every error line with its
// golden file NAME.errors.
func TestBad(t *testing.T) {
	n := 0
	for _, path := range cases(t, "testdata/bad") {
		n++
		t.Run(filepath.Base(path), func(t *testing.T) {
			cfg, err := LoadEnv(path, lookup)
			if err == nil {
				t.Fatalf("Load accepted it: %+v", cfg)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is not an Errors list: %T %v", err, err)
			}
			for _, e := range errs {
				if !errors.Is(e, ErrInvalid) && !errors.Is(e, ErrRead) {
					t.Errorf("%v does not match ErrInvalid or ErrRead", e)
				}
				if e.Pos.File == "" {
					t.Errorf("%v has no file", e)
				}
			}
			out := []byte(err.Error() + "\n")
			checkNoSecrets(t, out)
			golden(t, strings.TrimSuffix(path, ".yaml")+".errors", out)
		})
	}
	if n < 30 {
		t.Errorf("only %d bad cases; the format's rules need at least 30", n)
	}
}

// TestExamples loads the shipped examples: they must stay valid.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		cfg, err := LoadEnv(f, lookup)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		var buf bytes.Buffer
		if err := cfg.WriteYAML(&buf); err != nil {
			t.Fatal(err)
		}
		checkNoSecrets(t, buf.Bytes())
	}
	// The folder loads as one configuration too, except that each example
	// defines its own clusters and checkpoints: the merge must say so.
	if _, err := LoadEnv("examples", lookup); err == nil || !strings.Contains(err.Error(), "defined twice") {
		t.Errorf("loading the examples folder as one configuration: %v", err)
	}
}

func TestLoadMissingPath(t *testing.T) {
	_, err := Load("testdata/no-such-file.yaml")
	if !errors.Is(err, ErrRead) {
		t.Fatalf("got %v, want ErrRead", err)
	}
	if !strings.HasPrefix(err.Error(), "testdata/no-such-file.yaml: cannot read") {
		t.Errorf("message: %v", err)
	}
}

// TestDemoCopy: the demo command embeds its own copy of examples/demo.yaml
// (go:embed cannot reach across folders); the two must not drift apart.
func TestDemoCopy(t *testing.T) {
	copyOf, err := os.ReadFile("../cmd/strait/demo.yaml")
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("the demo does not embed a copy")
	}
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile("examples/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(orig, copyOf) {
		t.Errorf("cmd/strait/demo.yaml differs from pipelines/examples/demo.yaml")
	}
}
