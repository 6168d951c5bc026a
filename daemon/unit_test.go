package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strait/mirror"
)

func TestJudgeReadiness(t *testing.T) {
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	stall := time.Minute
	running := func(parts ...mirror.PartitionStatus) mirror.PipelineStatus {
		return mirror.PipelineStatus{Name: "p", State: mirror.StateRunning, Connected: true, Partitions: parts}
	}
	part := func(state mirror.State, lag int64, last time.Time) mirror.PartitionStatus {
		return mirror.PartitionStatus{Topic: "t", Partition: 0, State: state, Lag: lag, LastProgressAt: last}
	}
	cases := []struct {
		name   string
		st     []mirror.PipelineStatus
		now    time.Time
		ready  bool
		reason string
	}{
		{"no pipelines", nil, since, true, ""},
		{"caught up", []mirror.PipelineStatus{running(part(mirror.StateRunning, 0, time.Time{}))}, since.Add(time.Hour), true, ""},
		{"behind but fresh", []mirror.PipelineStatus{running(part(mirror.StateRunning, 10, time.Time{}))}, since.Add(30 * time.Second), true, ""},
		{"behind and stalled", []mirror.PipelineStatus{running(part(mirror.StateRunning, 10, since.Add(time.Second)))}, since.Add(2 * time.Minute), false, "made no progress"},
		{"behind, progressing", []mirror.PipelineStatus{running(part(mirror.StateRunning, 10, since.Add(119*time.Second)))}, since.Add(2 * time.Minute), true, ""},
		{"operator paused partition", []mirror.PipelineStatus{running(part(mirror.StatePaused, 10, time.Time{}))}, since.Add(time.Hour), true, ""},
		{"auto-paused", []mirror.PipelineStatus{running(part(mirror.StateAutoPaused, 10, time.Time{}))}, since, false, "auto-paused"},
		{"gap", []mirror.PipelineStatus{running(part(mirror.StateGap, 10, time.Time{}))}, since, false, "retention"},
		{"failed partition", []mirror.PipelineStatus{running(part(mirror.StateFailed, 0, time.Time{}))}, since, false, "failed"},
		{"disconnected", []mirror.PipelineStatus{{Name: "p", State: mirror.StateRunning, LastError: "dial tcp: refused"}}, since, false, "dial tcp: refused"},
		{"starting", []mirror.PipelineStatus{{Name: "p", State: mirror.StateStarting}}, since, false, "starting"},
		{"starting, destination away", []mirror.PipelineStatus{{Name: "p", State: mirror.StateStarting, LastError: "destination init producer id: refused"}}, since, false, "starting: destination init producer id: refused"},
		{"source never answered", []mirror.PipelineStatus{{Name: "p", Source: "east", Destination: "west", State: mirror.StateRunning, DestinationConnected: true, LastError: "x"}}, since, false, "not connected to source east: x"},
		{"destination stopped answering", []mirror.PipelineStatus{{Name: "p", Source: "east", Destination: "west", State: mirror.StateRunning, SourceConnected: true, LastError: "y"}}, since, false, "not connected to destination west: y"},
		{"failed pipeline", []mirror.PipelineStatus{{Name: "p", State: mirror.StateFailed, LastError: "boom"}}, since, false, "boom"},
		{"paused pipeline", []mirror.PipelineStatus{{Name: "p", State: mirror.StatePaused}}, since, true, ""},
		{"stopped pipeline", []mirror.PipelineStatus{{Name: "p", State: mirror.StateStopped}}, since, false, "stopped"},
		{"one bad among good", []mirror.PipelineStatus{running(part(mirror.StateRunning, 0, time.Time{})), {Name: "q", State: mirror.StateFailed, LastError: "x"}}, since, false, "pipeline q failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := judgeReadiness(c.st, c.now, since, stall)
			if r.Ready != c.ready {
				t.Fatalf("ready = %v, want %v (reasons %q)", r.Ready, c.ready, r.Reasons)
			}
			if c.reason != "" && !strings.Contains(strings.Join(r.Reasons, "\n"), c.reason) {
				t.Fatalf("reasons %q lack %q", r.Reasons, c.reason)
			}
			if c.ready && len(r.Reasons) != 0 {
				t.Fatalf("ready with reasons %q", r.Reasons)
			}
		})
	}
}

func TestErrorLines(t *testing.T) {
	a := errors.New("a.yaml:3:5: unknown field \"sorce\"")
	b := errors.New("a.yaml:9:1: cluster \"north\" is not defined")
	joined := errors.Join(a, b)
	got := ErrorLines(fmt.Errorf("%w: %w", ErrConfig, joined))
	want := []string{a.Error(), b.Error()}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("ErrorLines = %q, want %q", got, want)
	}
	// A single error whose text spans lines is split too.
	got = ErrorLines(errors.New("x.yaml:1:1: one\nx.yaml:2:1: two\n"))
	if len(got) != 2 || got[1] != "x.yaml:2:1: two" {
		t.Fatalf("ErrorLines = %q", got)
	}
	if ErrorLines(nil) != nil {
		t.Fatal("nil error has lines")
	}
}

func TestFingerprint(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "a.yaml")
	if got := fingerprint(f); got != "missing" {
		t.Fatalf("missing file: %q", got)
	}
	if err := os.WriteFile(f, []byte("x: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d0, f0 := fingerprint(dir), fingerprint(f)
	// Files other than YAML do not count.
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fingerprint(dir) != d0 {
		t.Fatal("a non-YAML file changed the folder fingerprint")
	}
	if err := os.WriteFile(filepath.Join(dir, "b.yml"), []byte("y: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fingerprint(dir) == d0 {
		t.Fatal("an added file did not change the folder fingerprint")
	}
	if err := os.WriteFile(f, []byte("x: 12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fingerprint(f) == f0 {
		t.Fatal("a rewritten file kept its fingerprint")
	}
}

// TestRoutingWithoutEngine covers the routes that never reach the engine:
// health, JSON 404/405, the token guard and metrics.
func TestRoutingWithoutEngine(t *testing.T) {
	tel, err := newTelemetry("", nil, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer tel.shutdown(context.Background())
	for _, token := range []string{"", "tok"} {
		d := &Daemon{opts: Options{Token: token}, tel: tel}
		srv := httptest.NewServer(d.Handler())
		do := func(method, path, tok string) (int, http.Header, string) {
			req, _ := http.NewRequest(method, srv.URL+path, nil)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, resp.Header, string(b)
		}
		if code, _, body := do("GET", "/healthz", ""); code != 200 || !strings.Contains(body, `"ok"`) {
			t.Fatalf("healthz: %d %s", code, body)
		}
		code, hdr, body := do("GET", "/nope", token)
		if code != 404 || hdr.Get("Content-Type") != "application/json" || !strings.Contains(body, `"error": "no such route: /nope"`) {
			t.Fatalf("404: %d %v %s", code, hdr, body)
		}
		code, hdr, body = do("DELETE", "/v1/pipelines/x", token)
		if code != 405 || hdr.Get("Allow") == "" || !strings.Contains(body, `"error"`) {
			t.Fatalf("405: %d %v %s", code, hdr, body)
		}
		code, _, body = do("GET", "/metrics", token)
		if code != 200 || !strings.Contains(body, "go_goroutines") {
			t.Fatalf("metrics: %d", code)
		}
		// No engine running: /readyz is 503, which the client reads as an
		// answer, not an error.
		rd, err := NewClient(srv.URL, token).Readiness(context.Background())
		if err != nil || rd.Ready || len(rd.Reasons) != 1 || rd.Reasons[0] != "engine not running" {
			t.Fatalf("readiness: %+v %v", rd, err)
		}
		code, _, body = do("GET", "/metrics", "bad")
		if token != "" && (code != 401 || !strings.Contains(body, `"error"`)) {
			t.Fatalf("metrics with a wrong token: %d %s", code, body)
		}
		srv.Close()
	}
}
