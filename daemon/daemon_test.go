package daemon

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"strait/brokerd"
	"strait/mirror"
)

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func startCluster(t *testing.T) *brokerd.Cluster {
	t.Helper()
	c, err := brokerd.Start(context.Background(), brokerd.Config{Dir: t.TempDir(), Brokers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// syncBuf is a log sink tests read while the daemon writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	t          *testing.T
	east, west *brokerd.Cluster
	dir        string // configuration folder
	d          *Daemon
	logs       *syncBuf
	cancel     context.CancelFunc
	done       chan error
	api        *Client
}

const clustersYAML = `clusters:
  east: {bootstrap: [%q]}
  west: {bootstrap: [%q]}
checkpoints: {store: file, dir: %q, interval: 200ms}
`

func pipelineYAML(name, include string) string {
	return fmt.Sprintf(`pipelines:
  - name: %s
    source: east
    destination: west
    topics: {include: [%q]}
    refresh: 500ms
`, name, include)
}

func newFixture(t *testing.T, token string) *fixture {
	t.Helper()
	return newFixtureWith(t, token, "")
}

// newFixtureWith is newFixture with extra top-level YAML (e.g. workers:)
// appended to clusters.yaml.
func newFixtureWith(t *testing.T, token, extra string) *fixture {
	t.Helper()
	f := &fixture{t: t, east: startCluster(t), west: startCluster(t), dir: t.TempDir(), logs: &syncBuf{}}
	f.write("clusters.yaml", fmt.Sprintf(clustersYAML, f.east.Addrs()[0], f.west.Addrs()[0], t.TempDir())+extra)
	f.write("one.yaml", pipelineYAML("one", "one\\..*"))
	f.produce("one.a", 2, 50)
	d, err := New(Options{
		ConfigPath:    f.dir,
		HTTPAddr:      "127.0.0.1:0",
		Token:         token,
		WatchInterval: -1, // reloads in these tests are explicit
		Logger:        slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.d = d
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan error, 1)
	go func() { f.done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-f.done:
		case <-time.After(40 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	f.api = NewClient(d.Addr(), token)
	return f
}

func (f *fixture) write(name, body string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, name), []byte(body), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// produce creates topic with parts partitions on east and writes n records
// to each partition.
func (f *fixture) produce(topic string, parts int32, n int) {
	f.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.east.Addrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		f.t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, parts, -1, nil, topic); err != nil && !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
		f.t.Fatal(err)
	}
	var recs []*kgo.Record
	for p := int32(0); p < parts; p++ {
		for i := 0; i < n; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d-%d", p, i)})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) get(path string, out any) (int, string) {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.api.Base+path, nil)
	return f.send(req, out)
}

func (f *fixture) post(path string, out any) (int, string) {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.api.Base+path, nil)
	return f.send(req, out)
}

func (f *fixture) send(req *http.Request, out any) (int, string) {
	f.t.Helper()
	if f.api.Token != "" {
		req.Header.Set("Authorization", "Bearer "+f.api.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			f.t.Fatalf("%s %s: %v in %s", req.Method, req.URL.Path, err, body)
		}
	}
	return resp.StatusCode, string(body)
}

func (f *fixture) pipeline(name string) (mirror.PipelineStatus, bool) {
	var p mirror.PipelineStatus
	code, _ := f.get("/v1/pipelines/"+name, &p)
	return p, code == http.StatusOK
}

// caughtUp: the pipeline has want partitions and every one mirrored to its
// source high watermark.
func (f *fixture) caughtUp(name string, want int, hw int64) bool {
	p, ok := f.pipeline(name)
	if !ok || len(p.Partitions) != want {
		return false
	}
	for _, t := range p.Partitions {
		if t.SourceOffset != hw || t.Lag != 0 {
			return false
		}
	}
	return true
}

// waitCaughtUp waits for caughtUp and, on a timeout, shows the status and
// the daemon's log.
func (f *fixture) waitCaughtUp(name string, want int, hw int64, what string) {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f.caughtUp(name, want, hw) {
		if time.Now().After(deadline) {
			_, body := f.get("/v1/pipelines/"+name, nil)
			f.t.Fatalf("timed out waiting for %s; status:\n%s\nlog:\n%s", what, body, f.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAdminAPI(t *testing.T) {
	f := newFixture(t, "")
	f.waitCaughtUp("one", 2, 50, "pipeline one to catch up")

	var list PipelineList
	if code, body := f.get("/v1/pipelines", &list); code != 200 || len(list.Pipelines) != 1 {
		t.Fatalf("list: %d %s", code, body)
	}
	if s := list.Pipelines[0]; s.Name != "one" || s.Partitions != 2 || s.Lag != 0 || s.Source != "east" {
		t.Fatalf("summary %+v", s)
	}

	var eb ErrorBody
	if code, _ := f.get("/v1/pipelines/nope", &eb); code != 404 || !strings.Contains(eb.Error, "nope") {
		t.Fatalf("unknown pipeline: %d %+v", code, eb)
	}
	if code, _ := f.post("/v1/pipelines/nope/pause", &eb); code != 404 {
		t.Fatalf("pause unknown pipeline: %d %+v", code, eb)
	}
	if code, _ := f.post("/v1/pipelines/one/partitions/one.a/x/pause", &eb); code != 400 {
		t.Fatalf("bad partition: %d %+v", code, eb)
	}
	if code, _ := f.post("/v1/pipelines/one/partitions/one.zzz/0/pause", &eb); code != 404 {
		t.Fatalf("unknown partition: %d %+v", code, eb)
	}
	if code, _ := f.post("/v1/pipelines/one/explode", &eb); code != 404 {
		t.Fatalf("unknown action: %d %+v", code, eb)
	}
	// The mux's own 404 and 405 answers are JSON too.
	if code, body := f.get("/v2/whatever", &eb); code != 404 || eb.Error == "" {
		t.Fatalf("no route: %d %s", code, body)
	}
	if code, body := f.post("/healthz", &eb); code != 405 || !strings.Contains(eb.Error, "GET") {
		t.Fatalf("wrong method: %d %s", code, body)
	}

	var h map[string]string
	if code, _ := f.get("/healthz", &h); code != 200 || h["status"] != "ok" {
		t.Fatalf("healthz: %d %v", code, h)
	}
	waitFor(t, 10*time.Second, "readyz 200", func() bool {
		var rd Readiness
		code, _ := f.get("/readyz", &rd)
		return code == 200 && rd.Ready
	})

	// Metrics: the engine's per-partition lag, through the exporter.
	code, metrics := f.get("/metrics", nil)
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	for _, want := range []string{`strait_mirror_lag{`, `pipeline="one"`, `topic="one.a"`, `partition="1"`, "go_goroutines"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// Pause a whole pipeline, then resume it.
	if code, body := f.post("/v1/pipelines/one/pause", nil); code != 200 {
		t.Fatalf("pause: %d %s", code, body)
	}
	waitFor(t, 10*time.Second, "pipeline paused", func() bool {
		p, _ := f.pipeline("one")
		return p.State == mirror.StatePaused
	})
	if code, body := f.post("/v1/pipelines/one/resume", nil); code != 200 {
		t.Fatalf("resume: %d %s", code, body)
	}
	waitFor(t, 10*time.Second, "pipeline running", func() bool {
		p, _ := f.pipeline("one")
		return p.State == mirror.StateRunning
	})

	// An invalid configuration through POST /v1/reload: 422 with
	// file:line:col errors, and the running pipeline is untouched.
	f.write("bad.yaml", "pipelines:\n  - name: two\n    sorce: east\n")
	var rej struct {
		Error  string   `json:"error"`
		Errors []string `json:"errors"`
	}
	if code, body := f.post("/v1/reload", &rej); code != 422 || len(rej.Errors) == 0 {
		t.Fatalf("invalid reload: %d %s", code, body)
	}
	pos := regexp.MustCompile(`bad\.yaml:\d+:\d+: `)
	for _, e := range rej.Errors {
		if !pos.MatchString(e) {
			t.Errorf("error without file:line:col: %q", e)
		}
	}
	if !pos.MatchString(f.logs.String()) {
		t.Errorf("log lacks file:line:col errors:\n%s", f.logs.String())
	}
	if p, ok := f.pipeline("one"); !ok || p.State != mirror.StateRunning {
		t.Fatalf("pipeline one after a rejected reload: %+v", p)
	}
	if err := os.Remove(filepath.Join(f.dir, "bad.yaml")); err != nil {
		t.Fatal(err)
	}
}

func TestToken(t *testing.T) {
	f := newFixture(t, "s3cret-token")
	// /healthz never needs the token.
	resp, err := http.Get(f.api.Base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz without token: %d", resp.StatusCode)
	}
	for _, tok := range []string{"", "wrong", "s3cret-token-but-longer"} {
		req, _ := http.NewRequest(http.MethodGet, f.api.Base+"/v1/pipelines", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(string(body), `"error"`) {
			t.Fatalf("token %q: %d %s", tok, resp.StatusCode, body)
		}
		if strings.Contains(string(body), "s3cret") {
			t.Fatal("the token leaked into an answer")
		}
	}
	if _, err := f.api.Pipelines(context.Background()); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	// metrics and readyz are protected too.
	req, _ := http.NewRequest(http.MethodGet, f.api.Base+"/metrics", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("metrics without token: %d", resp.StatusCode)
	}
}

func TestReloadAddsPipelineAndPausesPartition(t *testing.T) {
	f := newFixture(t, "")
	f.waitCaughtUp("one", 2, 50, "pipeline one to catch up")

	// Pause partition 0; new records reach both partitions; only 1 moves.
	if code, body := f.post("/v1/pipelines/one/partitions/one.a/0/pause", nil); code != 200 {
		t.Fatalf("pause partition: %d %s", code, body)
	}
	waitFor(t, 10*time.Second, "partition 0 paused", func() bool {
		p, _ := f.pipeline("one")
		for _, x := range p.Partitions {
			if x.Partition == 0 {
				return x.State == mirror.StatePaused
			}
		}
		return false
	})
	f.produce("one.a", 2, 30)
	waitFor(t, 30*time.Second, "partition 1 to catch up while 0 is paused", func() bool {
		p, _ := f.pipeline("one")
		for _, x := range p.Partitions {
			if x.Partition == 1 && x.SourceOffset != 80 {
				return false
			}
		}
		return len(p.Partitions) == 2
	})
	p, _ := f.pipeline("one")
	for _, x := range p.Partitions {
		if x.Partition == 0 && x.SourceOffset != 50 {
			t.Fatalf("paused partition moved: %+v", x)
		}
	}
	before := map[int32]int64{}
	for _, x := range p.Partitions {
		before[x.Partition] = x.RecordsTotal
	}

	// A second pipeline added by reload starts; the first keeps going
	// without a restart (its counters do not fall back).
	f.produce("two.b", 1, 20)
	f.write("two.yaml", pipelineYAML("two", "two\\..*"))
	if err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	f.waitCaughtUp("two", 1, 20, "pipeline two to catch up")
	p, _ = f.pipeline("one")
	for _, x := range p.Partitions {
		if x.RecordsTotal < before[x.Partition] {
			t.Fatalf("pipeline one restarted by the reload: partition %d mirrored %d, was %d", x.Partition, x.RecordsTotal, before[x.Partition])
		}
		if x.Partition == 0 && x.State != mirror.StatePaused {
			t.Fatalf("the reload cleared an operator pause: %+v", x)
		}
	}

	// Resume catches partition 0 up.
	if code, body := f.post("/v1/pipelines/one/partitions/one.a/0/resume", nil); code != 200 {
		t.Fatalf("resume partition: %d %s", code, body)
	}
	f.waitCaughtUp("one", 2, 80, "partition 0 to catch up after resume")

	// The client reads every pipeline, with its partitions, from the same
	// API (strait status prints what it returns).
	st, err := f.api.Pipelines(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range st {
		for _, x := range p.Partitions {
			got[p.Name] = p.Source + "→" + p.Destination + " " + x.Topic
		}
	}
	if got["one"] != "east→west one.a" || got["two"] != "east→west two.b" || len(got) != 2 {
		t.Errorf("client pipelines = %v, want one (east→west one.a) and two (east→west two.b)", got)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.yaml")
	if err := os.WriteFile(path, []byte("clusters:\n  east: {bootstrap: [\"127.0.0.1:1\"]}\npipelines:\n  - name: p\n    source: east\n    destination: nowhere\n    topics: {include: [\"a\"]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(Options{ConfigPath: path})
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("New = %v, want ErrConfig", err)
	}
	lines := ErrorLines(err)
	if len(lines) == 0 || !regexp.MustCompile(`x\.yaml:\d+:\d+: `).MatchString(lines[0]) {
		t.Fatalf("error lines %q", lines)
	}
	if _, err := New(Options{ConfigPath: path, Trace: "otlp"}); !errors.Is(err, ErrConfig) {
		t.Fatalf("config errors come first: %v", err)
	}
}

func TestWatchReloadsOnFileChange(t *testing.T) {
	east, west := startCluster(t), startCluster(t)
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("clusters.yaml", fmt.Sprintf(clustersYAML, east.Addrs()[0], west.Addrs()[0], t.TempDir()))
	write("one.yaml", pipelineYAML("one", "one\\..*"))
	d, err := New(Options{ConfigPath: dir, WatchInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	names := func() string {
		var n []string
		for _, p := range d.Engine().Status() {
			n = append(n, p.Name)
		}
		return strings.Join(n, ",")
	}
	waitFor(t, 10*time.Second, "pipeline one", func() bool { return strings.Contains(names(), "one") })
	write("two.yaml", pipelineYAML("two", "two\\..*"))
	waitFor(t, 10*time.Second, "pipeline two added by the watch", func() bool { return strings.Contains(names(), "two") })
	if err := os.Remove(filepath.Join(dir, "two.yaml")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "pipeline two removed by the watch", func() bool { return !strings.Contains(names(), "two") })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// TestTraceStdout: with Trace "stdout" the daemon's reconfiguration span
// reaches the exporter's writer; without it nothing is written.
func TestTraceStdout(t *testing.T) {
	east, west := startCluster(t), startCluster(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(clustersYAML, east.Addrs()[0], west.Addrs()[0], t.TempDir()) + pipelineYAML("one", "one\\..*")
	if err := os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"stdout", ""} {
		var out syncBuf
		d, err := New(Options{ConfigPath: dir, Trace: kind, TraceOutput: &out, WatchInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		if err := d.Reload(); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		has := strings.Contains(out.String(), `"Name":"daemon.reload"`)
		if has != (kind == "stdout") {
			t.Fatalf("trace %q: span written = %v:\n%s", kind, has, out.String())
		}
	}
	for _, o := range []Options{
		{ConfigPath: dir, Trace: "jaeger"},
		{ConfigPath: dir, Trace: "otlp", TraceEndpoint: "collector:4318"},
		{ConfigPath: dir, Trace: "stdout", TraceEndpoint: "http://127.0.0.1:4318"},
	} {
		if _, err := New(o); !errors.Is(err, ErrTrace) {
			t.Fatalf("trace %q endpoint %q: %v, want ErrTrace", o.Trace, o.TraceEndpoint, err)
		}
	}
}

// TestTraceOTLP: with Trace "otlp" spans reach an OTLP/HTTP collector as
// protobuf export requests: the daemon's reload span and the engine's task
// spans, under service.name strait.
func TestTraceOTLP(t *testing.T) {
	var mu sync.Mutex
	spans := map[string]bool{}
	service := ""
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.Key == "service.name" {
					service = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					spans[sp.Name] = true
				}
			}
		}
		mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	defer collector.Close()

	east, west := startCluster(t), startCluster(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(clustersYAML, east.Addrs()[0], west.Addrs()[0], t.TempDir()) + pipelineYAML("one", "one\\..*")
	if err := os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	(&fixture{t: t, east: east}).produce("one.a", 1, 10)
	d, err := New(Options{ConfigPath: dir, Trace: "otlp", TraceEndpoint: collector.URL, WatchInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	waitFor(t, 30*time.Second, "the task for one.a to start", func() bool {
		for _, ps := range d.engine.Status() {
			if len(ps.Partitions) > 0 {
				return true
			}
		}
		return false
	})
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	cancel() // a graceful stop flushes the batcher
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"daemon.reload", "mirror.tasks.start"} {
		if !spans[want] {
			t.Errorf("collector never got span %q (got %v)", want, spans)
		}
	}
	if service != "strait" {
		t.Errorf("service.name %q, want strait", service)
	}
}

// TestReadyzUnreachableSource: a pipeline whose source cannot be reached
// makes /readyz answer 503 with a reason naming it, while /healthz stays 200.
func TestReadyzUnreachableSource(t *testing.T) {
	west := startCluster(t)
	// A port nothing listens on: bind one, then close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf(clustersYAML, dead, west.Addrs()[0], t.TempDir()) + pipelineYAML("lonely", "x")
	if err := os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{ConfigPath: dir, HTTPAddr: "127.0.0.1:0", WatchInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	c := NewClient(d.Addr(), "")
	var rd Readiness
	waitFor(t, 10*time.Second, "readyz to answer", func() bool {
		var err error
		rd, err = c.Readiness(context.Background())
		return err == nil
	})
	if rd.Ready || !strings.Contains(strings.Join(rd.Reasons, "\n"), "pipeline lonely") {
		t.Fatalf("readiness with an unreachable source: %+v", rd)
	}
	if err := c.Do(context.Background(), http.MethodGet, "/healthz", nil); err != nil {
		t.Fatalf("healthz: %v", err)
	}
}

// TestSecretsNeverShown: a SASL password from the configuration appears in
// no admin API answer and no log line, even while its cluster fails.
func TestSecretsNeverShown(t *testing.T) {
	west := startCluster(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	const secret = "hunter2-very-secret"
	t.Setenv("STRAIT_TEST_PASSWORD", secret)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`clusters:
  east:
    bootstrap: [%q]
    sasl: {mechanism: PLAIN, username: u, password: "${STRAIT_TEST_PASSWORD}"}
  west: {bootstrap: [%q]}
checkpoints: {store: file, dir: %q}
`, dead, west.Addrs()[0], t.TempDir()) + pipelineYAML("p", "x")
	if err := os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuf{}
	d, err := New(Options{ConfigPath: dir, HTTPAddr: "127.0.0.1:0", WatchInterval: -1,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	// A reload that fails validation logs the file's errors.
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("pipelines:\n  - name: q\n    sorce: east\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = d.Reload()
	c := NewClient(d.Addr(), "")
	var bodies []string
	for _, path := range []string{"/v1/pipelines", "/v1/pipelines/p", "/readyz", "/metrics"} {
		req, _ := http.NewRequest(http.MethodGet, c.Base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		bodies = append(bodies, string(b))
	}
	cancel()
	<-done
	for i, b := range bodies {
		if strings.Contains(b, secret) {
			t.Fatalf("answer %d shows the password:\n%s", i, b)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("the log shows the password:\n%s", logs.String())
	}
}

// TestTraceOTLPCollectorHung: a collector that accepts connections and never
// answers does not hold up a stop beyond the bounded span flush (the
// exporter's own timeout would take 30 s).
func TestTraceOTLPCollectorHung(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // connections queue in the backlog, unanswered
	east, west := startCluster(t), startCluster(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(clustersYAML, east.Addrs()[0], west.Addrs()[0], t.TempDir()) + pipelineYAML("one", "one\\..*")
	if err := os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { traceFlushTimeout = d }(traceFlushTimeout)
	traceFlushTimeout = 500 * time.Millisecond
	d, err := New(Options{ConfigPath: dir, Trace: "otlp", TraceEndpoint: "http://" + ln.Addr().String(), WatchInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	if err := d.Reload(); err != nil { // queues a span for the hung collector
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run still stopping 20 s after cancel: the span flush is not bounded")
	}
}
