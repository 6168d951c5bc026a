package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strait/brokerd"
	"strait/mirror"
)

// deadAddr is an address nothing listens on: a port bound, then released.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startDaemon runs a daemon on the configuration cfg (one file) until the
// test ends.
func startDaemon(t *testing.T, cfg string, tweak ...func(*Options)) (*Daemon, *Client, *syncBuf) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuf{}
	opts := Options{ConfigPath: dir, HTTPAddr: "127.0.0.1:0", WatchInterval: -1,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, f := range tweak {
		f(&opts)
	}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	return d, NewClient(d.Addr(), ""), logs
}

// TestReadyzPerCause: a pipeline whose source or destination cannot be
// reached, or refuses the configured credentials, keeps /readyz at 503 with
// a reason naming the side and the cause, and its status says it is not
// connected, also once the pipeline got as far as it can (the error is
// recorded). The clusters that do answer work, so the pipeline gets past
// every step that needs only one side.
func TestReadyzPerCause(t *testing.T) {
	good := startCluster(t)
	sasl, err := brokerd.Start(context.Background(), brokerd.Config{Dir: t.TempDir(), Brokers: 1,
		SASLUsers: map[string]string{"mirror": "right"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sasl.Close() })
	wrongPass := func(addr string) string {
		return fmt.Sprintf("{bootstrap: [%q], sasl: {mechanism: SCRAM-SHA-256, username: mirror, password: wrong}}", addr)
	}
	plainAt := func(addr string) string { return fmt.Sprintf("{bootstrap: [%q]}", addr) }
	cases := []struct {
		name       string
		east, west string
		mode       string
		want       []string // every one in the reasons
	}{
		{"source unreachable", plainAt(deadAddr(t)), plainAt(good.Addrs()[0]), "batch", []string{"source", "not connected"}},
		{"source unreachable, record mode", plainAt(deadAddr(t)), plainAt(good.Addrs()[0]), "record", []string{"source", "not connected"}},
		{"destination unreachable", plainAt(good.Addrs()[0]), plainAt(deadAddr(t)), "batch", []string{"starting", "destination"}},
		{"source password wrong", wrongPass(sasl.Addrs()[0]), plainAt(good.Addrs()[0]), "batch", []string{"source", "authentication failed"}},
		{"destination password wrong", plainAt(good.Addrs()[0]), wrongPass(sasl.Addrs()[0]), "batch", []string{"destination", "authentication failed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := fmt.Sprintf(`clusters:
  east: %s
  west: %s
checkpoints: {store: file, dir: %q}
pipelines:
  - name: p
    source: east
    destination: west
    mode: %s
    topics: {include: ["x.*"]}
    refresh: 200ms
`, c.east, c.west, t.TempDir(), c.mode)
			_, api, logs := startDaemon(t, cfg)
			// Wait for the failure to be recorded: the pipeline retries,
			// so it never gets further than this. (The destination's
			// producer id request is retried by the client for up to
			// its retry timeout before the first error shows.)
			deadline := time.Now().Add(60 * time.Second)
			for {
				var p mirror.PipelineStatus
				err := api.Do(context.Background(), http.MethodGet, "/v1/pipelines/p", &p)
				if err == nil && p.LastError != "" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no error recorded: %+v %v\n%s", p, err, logs.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			last, err := api.Readiness(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if last.Ready {
				t.Fatalf("ready although %s:\n%s", c.name, logs.String())

			}
			reasons := strings.Join(last.Reasons, "\n")
			for _, w := range c.want {
				if !strings.Contains(reasons, w) {
					t.Fatalf("reasons %q lack %q", last.Reasons, w)
				}
			}
			t.Logf("reasons: %q", last.Reasons)
			var p mirror.PipelineStatus
			if err := api.Do(context.Background(), http.MethodGet, "/v1/pipelines/p", &p); err != nil {
				t.Fatal(err)
			}
			if p.Connected {
				t.Fatalf("status says connected: %+v", p)
			}
		})
	}
}
