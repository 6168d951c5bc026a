package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"strait/internal/cli"
)

// exitCode is what main would exit with for a command's error.
func exitCode(err error) int { return cli.Code(err) }

func TestValidateExamples(t *testing.T) {
	t.Setenv("EU_PASSWORD", "eu-secret-value")
	t.Setenv("US_PASSWORD", "us-secret-value")
	t.Setenv("EAST_BOOTSTRAP", "127.0.0.1:9092")
	t.Setenv("WEST_BOOTSTRAP", "127.0.0.1:9192")
	for file, want := range map[string]string{
		"dr-pair.yaml":     "ok: 2 pipelines, 2 clusters in 1 file\n",
		"aggregation.yaml": "ok: 2 pipelines, 3 clusters in 1 file\n",
		"migration.yaml":   "ok: 1 pipeline, 2 clusters in 1 file\n",
		"demo.yaml":        "ok: 1 pipeline, 2 clusters in 1 file\n",
	} {
		var stdout, stderr bytes.Buffer
		err := validate([]string{filepath.Join("../../pipelines/examples", file)}, &stdout, &stderr)
		if err != nil || stdout.String() != want || stderr.Len() != 0 {
			t.Errorf("%s: %v, stdout %q, stderr %q", file, err, stdout.String(), stderr.String())
		}
	}
	// --print, before or after the path, shows defaults and masks secrets.
	for _, args := range [][]string{
		{"--print", "../../pipelines/examples/aggregation.yaml"},
		{"../../pipelines/examples/aggregation.yaml", "--print"},
	} {
		var stdout, stderr bytes.Buffer
		if err := validate(args, &stdout, &stderr); err != nil {
			t.Fatalf("%v: %v %s", args, err, stderr.String())
		}
		out := stdout.String()
		for _, want := range []string{"client_id: strait", "topic: __strait_checkpoints", "password: '******'", "buffer: 64MiB", "- __.*"} {
			if !strings.Contains(out, want) {
				t.Errorf("--print lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "secret-value") {
			t.Errorf("--print leaked a secret:\n%s", out)
		}
	}
}

func TestValidateErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(`clusters:
  east: {bootstrap: ["127.0.0.1:9092"]}
pipelines:
  - name: p
    source: east
    destination: west
    topics: {include: ["orders("]}
    mode: fast
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := validate([]string{bad}, &stdout, &stderr)
	if exitCode(err) != 1 {
		t.Fatalf("exit code %d (%v), want 1", exitCode(err), err)
	}
	want := bad + `:6:18: pipeline "p": destination: cluster "west" is not defined (clusters: east)
` + bad + `:7:24: pipeline "p": topics.include[0]: invalid regular expression 'orders(': missing closing )
` + bad + `:8:11: pipeline "p": mode: expected batch or record, got "fast"
`
	if stderr.String() != want || stdout.Len() != 0 {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}

	// Warnings print on stderr and do not fail.
	t.Setenv("WEST_PASSWORD", "pw")
	stdout.Reset()
	stderr.Reset()
	if err := validate([]string{"../../pipelines/testdata/good/warnings.yaml"}, &stdout, &stderr); err != nil {
		t.Fatalf("warnings failed validation: %v", err)
	}
	if !strings.Contains(stderr.String(), `warnings.yaml:9:3: warning: cluster "spare" is not used by any pipeline`) || stdout.String() != "ok: 1 pipeline, 3 clusters in 1 file\n" {
		t.Errorf("warnings: stdout %q stderr %q", stdout.String(), stderr.String())
	}

	for _, args := range [][]string{{}, {"a.yaml", "b.yaml"}, {"--bogus", "a.yaml"}} {
		if code := exitCode(validate(args, &stdout, &stderr)); code != exitUsage {
			t.Errorf("validate %v: exit %d, want %d", args, code, exitUsage)
		}
	}
	stderr.Reset()
	if code := exitCode(validate([]string{filepath.Join(dir, "missing.yaml")}, &stdout, &stderr)); code != 1 || !strings.Contains(stderr.String(), "missing.yaml: cannot read: no such file or directory") {
		t.Errorf("missing file: exit %d, %q", code, stderr.String())
	}
}
