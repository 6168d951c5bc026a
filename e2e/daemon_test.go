package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/checkpoint"
	"strait/daemon"
	"strait/mirror"
	"strait/pipelines"
)

func binProduce(t *testing.T, addr, topic string, parts int32, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, parts, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for p := int32(0); p < parts; p++ {
		for i := 0; i < n; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%s-%d-%d", topic, p, i)})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// lagSeries reads per-partition strait_mirror_lag values of a pipeline
// from a Prometheus text page.
func lagSeries(page, pipeline string) map[string]float64 {
	out := map[string]float64{}
	re := regexp.MustCompile(`^strait_mirror_lag\{([^}]*)\} (\S+)`)
	for _, l := range strings.Split(page, "\n") {
		m := re.FindStringSubmatch(l)
		if m == nil || !strings.Contains(m[1], `pipeline="`+pipeline+`"`) {
			continue
		}
		tm := regexp.MustCompile(`topic="([^"]*)"`).FindStringSubmatch(m[1])
		pm := regexp.MustCompile(`partition="([^"]*)"`).FindStringSubmatch(m[1])
		if tm == nil || pm == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		out[tm[1]+"/"+pm[1]] = v
	}
	return out
}

// TestDaemonBinary is issue 7's acceptance against the built binary and
// two `strait broker` processes.
func TestDaemonBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := binBuild(t)
	east, west := binBroker(t, bin, t.TempDir()), binBroker(t, bin, t.TempDir())
	cfgDir, ckDir := t.TempDir(), t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(cfgDir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("clusters.yaml", fmt.Sprintf("clusters:\n  east: {bootstrap: [%q]}\n  west: {bootstrap: [%q]}\ncheckpoints: {store: file, dir: %q, interval: 200ms}\n", east, west, ckDir))
	pipe := func(name, include string) string {
		return fmt.Sprintf("pipelines:\n  - name: %s\n    source: east\n    destination: west\n    topics: {include: [%q]}\n    refresh: 500ms\n", name, include)
	}
	write("one.yaml", pipe("one", `one\..*`))
	binProduce(t, east, "one.a", 3, 200)

	cmd, logs, exited := binMirror(t, bin, "mirror", "--config", cfgDir, "--http", "127.0.0.1:0", "--log-format", "json",
		"--watch-interval", "0", "--shutdown-timeout", "20s")

	// The admin address, from the daemon's JSON log.
	addr := binAdminAddr(t, logs, "the admin API address in the log")
	api := daemon.NewClient(addr, "")
	ctx := context.Background()
	get := func(path string) (string, error) {
		resp, err := http.Get(api.Base + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	post := func(path string) {
		t.Helper()
		if err := api.Do(ctx, http.MethodPost, path, nil); err != nil {
			t.Fatal(err)
		}
	}
	status := func(name string) (mirror.PipelineStatus, error) {
		var p mirror.PipelineStatus
		err := api.Do(ctx, http.MethodGet, "/v1/pipelines/"+name, &p)
		return p, err
	}
	offsets := func(name string) (map[int32]int64, error) {
		p, err := status(name)
		if err != nil {
			return nil, err
		}
		out := map[int32]int64{}
		for _, x := range p.Partitions {
			out[x.Partition] = x.SourceOffset
		}
		return out, nil
	}

	// /metrics: per-partition lag falls to 0 once every record is copied
	// (a task that has not yet seen the high watermark also shows 0, so
	// the copy is checked first).
	binWait(t, 60*time.Second, "the first 200 records of each partition to be copied", func() error {
		o, err := offsets("one")
		if err != nil {
			return err
		}
		if len(o) != 3 || o[0] != 200 || o[1] != 200 || o[2] != 200 {
			return fmt.Errorf("offsets %v", o)
		}
		return nil
	})
	binWait(t, 60*time.Second, "lag 0 on every partition in /metrics", func() error {
		page, err := get("/metrics")
		if err != nil {
			return err
		}
		lags := lagSeries(page, "one")
		if len(lags) != 3 {
			return fmt.Errorf("lag series %v", lags)
		}
		for k, v := range lags {
			if v != 0 {
				return fmt.Errorf("%s lag %v", k, v)
			}
		}
		return nil
	})

	// Pausing one partition stops it while the others continue.
	post("/v1/pipelines/one/partitions/one.a/0/pause")
	binWait(t, 10*time.Second, "partition 0 paused", func() error {
		p, err := status("one")
		if err != nil {
			return err
		}
		for _, x := range p.Partitions {
			if x.Partition == 0 && x.State != "paused" {
				return fmt.Errorf("state %s", x.State)
			}
		}
		return nil
	})
	binProduce(t, east, "one.a", 3, 100)
	binWait(t, 60*time.Second, "partitions 1 and 2 to copy the new records", func() error {
		o, err := offsets("one")
		if err != nil {
			return err
		}
		if o[1] != 300 || o[2] != 300 {
			return fmt.Errorf("offsets %v", o)
		}
		return nil
	})
	if o, _ := offsets("one"); o[0] != 200 {
		t.Fatalf("the paused partition moved: %v", o)
	}
	binWait(t, 10*time.Second, "lag 100 on the paused partition in /metrics", func() error {
		page, err := get("/metrics")
		if err != nil {
			return err
		}
		if l := lagSeries(page, "one"); l["one.a/0"] != 100 {
			return fmt.Errorf("lags %v", l)
		}
		return nil
	})
	// Resume catches it up.
	post("/v1/pipelines/one/partitions/one.a/0/resume")
	binWait(t, 60*time.Second, "partition 0 to catch up", func() error {
		o, err := offsets("one")
		if err != nil {
			return err
		}
		if o[0] != 300 {
			return fmt.Errorf("offsets %v", o)
		}
		return nil
	})
	binWait(t, 10*time.Second, "the resumed partition's lag back to 0 in /metrics", func() error {
		page, err := get("/metrics")
		if err != nil {
			return err
		}
		if l := lagSeries(page, "one"); len(l) != 3 || l["one.a/0"] != 0 || l["one.a/1"] != 0 || l["one.a/2"] != 0 {
			return fmt.Errorf("lags %v", l)
		}
		return nil
	})

	// `strait status` reads the same API: a table, and JSON.
	out, err := exec.Command(bin, "status", "--http", addr).CombinedOutput()
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, want := range []string{"PIPELINE", "one", "east→west", "one.a", "HIGH WM", "\nready\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command(bin, "status", "--http", addr, "--json").Output()
	if err != nil {
		t.Fatalf("status --json: %v", err)
	}
	var sj struct {
		Pipelines []mirror.PipelineStatus `json:"pipelines"`
	}
	if err := json.Unmarshal(out, &sj); err != nil || len(sj.Pipelines) != 1 || len(sj.Pipelines[0].Partitions) != 3 {
		t.Fatalf("status --json: %v\n%s", err, out)
	}

	// Watch mode refreshes until interrupted, then exits 0.
	watch := exec.Command(bin, "status", "--http", addr, "--watch", "--interval", "200ms")
	var wout lockedBuf
	watch.Stdout = &wout
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	binWait(t, 20*time.Second, "three status frames", func() error {
		if n := strings.Count(wout.String(), "PIPELINE"); n < 3 {
			return fmt.Errorf("%d frames", n)
		}
		return nil
	})
	_ = watch.Process.Signal(syscall.SIGINT)
	if err := watch.Wait(); err != nil {
		t.Fatalf("status --watch after SIGINT: %v", err)
	}

	// SIGHUP with an added pipeline starts it; the first keeps its tasks
	// (none of them starts again, per the engine's log).
	taskStarts := func(pipeline string) int {
		n := 0
		for _, l := range strings.Split(logs.String(), "\n") {
			var e struct {
				Msg        string `json:"msg"`
				Pipeline   string `json:"pipeline"`
				Partitions int    `json:"partitions"`
			}
			if json.Unmarshal([]byte(l), &e) == nil && e.Msg == "partition tasks started" && e.Pipeline == pipeline {
				n += e.Partitions
			}
		}
		return n
	}
	startsBefore := taskStarts("one")
	before, _ := status("one")
	binProduce(t, east, "two.b", 2, 50)
	write("two.yaml", pipe("two", `two\..*`))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	binWait(t, 60*time.Second, "pipeline two to mirror its topic", func() error {
		o, err := offsets("two")
		if err != nil {
			return err
		}
		if o[0] != 50 || o[1] != 50 {
			return fmt.Errorf("offsets %v", o)
		}
		return nil
	})
	after, err := status("one")
	if err != nil {
		t.Fatal(err)
	}
	if n := taskStarts("one"); startsBefore == 0 || n != startsBefore {
		t.Fatalf("pipeline one's tasks started %d times before the reload and %d after", startsBefore, n)
	}
	if taskStarts("two") == 0 {
		t.Fatal("pipeline two's task start is not in the log")
	}
	for i, x := range after.Partitions {
		if x.State != "running" || x.RecordsTotal < before.Partitions[i].RecordsTotal {
			t.Fatalf("pipeline one disturbed by the reload: before %+v after %+v", before.Partitions[i], x)
		}
	}

	// An invalid configuration by SIGHUP: every error logged with
	// file:line:col, the running pipelines untouched.
	write("bad.yaml", "pipelines:\n  - name: three\n    source: east\n    destination: nowhere\n    topics: {include: [\"x\"]}\n    mode: sideways\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	posRE := regexp.MustCompile(`bad\.yaml:\d+:\d+: `)
	binWait(t, 30*time.Second, "the rejected configuration's errors in the log", func() error {
		if n := len(posRE.FindAllString(logs.String(), -1)); n < 2 {
			return fmt.Errorf("%d positioned errors", n)
		}
		return nil
	})
	var list daemon.PipelineList
	if err := api.Do(ctx, http.MethodGet, "/v1/pipelines", &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Pipelines) != 2 || list.Pipelines[0].State != "running" || list.Pipelines[1].State != "running" {
		t.Fatalf("pipelines after a rejected reload: %+v", list.Pipelines)
	}

	// SIGTERM: exit 0 within the deadline, checkpoints saved.
	binProduce(t, east, "one.a", 3, 10)
	binWait(t, 60*time.Second, "the last records to be copied", func() error {
		o, err := offsets("one")
		if err != nil {
			return err
		}
		if o[0] != 310 || o[1] != 310 || o[2] != 310 {
			return fmt.Errorf("offsets %v", o)
		}
		return nil
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("mirror exited with %v; log:\n%s", err, logs.String())
		}
	case <-time.After(25 * time.Second):
		t.Fatalf("mirror did not exit within its 20s deadline; log:\n%s", logs.String())
	}
	store, err := checkpoint.OpenFile(ckDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Load(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 3; p++ {
		cp := st.Partitions[checkpoint.TP{Topic: "one.a", Partition: p}]
		if cp == nil || cp.Pos.Source != 310 || cp.Pos.Dest != 310 {
			t.Fatalf("checkpoint of one.a/%d = %+v, want 310/310", p, cp)
		}
	}
}

// TestMirrorInvalidConfigExit1: an invalid configuration at start prints
// each error as file:line:col and exits 1; a bad flag exits 2.
func TestMirrorInvalidConfigExit1(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := binBuild(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(path, []byte("clusters:\n  east: {bootstrap: [\"127.0.0.1:1\"]}\npipelines:\n  - name: p\n    source: east\n    destination: gone\n    topics: {include: [\"a\"]}\n    mode: sideways\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "mirror", "--config", path, "--http", "")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1\n%s", err, out)
	}
	if n := len(regexp.MustCompile(`(?m)^.*broken\.yaml:\d+:\d+: .+$`).FindAllString(string(out), -1)); n < 2 {
		t.Fatalf("want every error on its own file:line:col line:\n%s", out)
	}
	out, err = exec.Command(bin, "mirror", "--no-such-flag").CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("bad flag: exit %v, want 2\n%s", err, out)
	}
}

// TestDeployConfigValid: the example configuration folder loads.
func TestDeployConfigValid(t *testing.T) {
	cfg, err := pipelines.LoadEnv("../deploy/config", func(k string) (string, bool) {
		if k == "WEST_PASSWORD" {
			return "example", true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Pipelines) != 1 || cfg.Pipelines[0].Name != "east-to-west" || cfg.Cluster("west").SASL == nil {
		t.Fatalf("unexpected configuration: %+v", cfg)
	}
}
