package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"strait/daemon"
	"strait/mirror"
)

// TestAuditBinary runs the daemon with a full continuous audit, then
// `strait audit` on what it mirrored: exit 0 while both sides agree, exit 1
// naming the record once a stranger wrote into the destination.
func TestAuditBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := binBuild(t)
	east, west := binBroker(t, bin, t.TempDir()), binBroker(t, bin, t.TempDir())
	cfgDir := t.TempDir()
	cfg := fmt.Sprintf(`clusters:
  east: {bootstrap: [%q]}
  west: {bootstrap: [%q]}
checkpoints: {store: file, dir: %q, interval: 200ms}
pipelines:
  - name: one
    source: east
    destination: west
    topics: {include: ["one\\..*"]}
    refresh: 500ms
    audit: {bucket: 200ms, sample: 1}
`, east, west, t.TempDir())
	if err := os.WriteFile(filepath.Join(cfgDir, "strait.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	binProduce(t, east, "one.a", 2, 300)

	cmd, logs, exited := binMirror(t, bin, "mirror", "--config", cfgDir, "--http", "127.0.0.1:0", "--log-format", "json", "--watch-interval", "0")
	addr := binAdminAddr(t, logs, "the admin API address in the log")
	api := daemon.NewClient(addr, "")
	ctx := context.Background()
	binWait(t, 60*time.Second, "the continuous audit to confirm every record", func() error {
		var st mirror.AuditStatus
		if err := api.Do(ctx, http.MethodGet, "/v1/pipelines/one/audit", &st); err != nil {
			return err
		}
		if st.Totals.Confirmed != 600 || st.Completeness != 1 {
			return fmt.Errorf("audit %+v", st.Totals)
		}
		return nil
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("daemon exit: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop")
	}

	audit := func() (string, int) {
		out, err := exec.Command(bin, "audit", "--config", cfgDir, "--pipeline", "one").CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	if out, code := audit(); code != 0 || !strings.Contains(out, "no differences") {
		t.Fatalf("audit of a clean mirror: exit %d\n%s", code, out)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(west), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "one.a", Partition: 1, Value: []byte("stranger")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	out, code := audit()
	if code != 1 || !strings.Contains(out, "extra    source -  dest 300") || !strings.Contains(out, "DIFFERENCES FOUND") {
		t.Fatalf("audit after a stranger's write: exit %d\n%s", code, out)
	}
}
