package daemon

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"strait/mirror"
)

// auditedFixture is newFixture with pipeline one audited in full every
// 100ms, caught up.
func auditedFixture(t *testing.T) *fixture {
	t.Helper()
	return auditedFixtureWith(t, "")
}

// auditedFixtureWith is auditedFixture with an admin API token.
func auditedFixtureWith(t *testing.T, token string) *fixture {
	t.Helper()
	f := newFixture(t, token)
	f.write("one.yaml", pipelineYAML("one", "one\\..*")+"    audit: {bucket: 100ms, sample: 1}\n")
	if code, body := f.post("/v1/reload", nil); code != http.StatusOK {
		t.Fatalf("reload: %d %s", code, body)
	}
	f.waitCaughtUp("one", 2, 50, "pipeline one to catch up")
	waitFor(t, 30*time.Second, "every record audited", func() bool {
		var st mirror.AuditStatus
		code, _ := f.get("/v1/pipelines/one/audit", &st)
		return code == 200 && st.Totals.Compared == 100
	})
	return f
}

func TestAuditAPI(t *testing.T) {
	f := auditedFixture(t)
	var st mirror.AuditStatus
	if code, body := f.get("/v1/pipelines/one/audit", &st); code != 200 || !st.Enabled || st.Completeness != 1 ||
		st.Totals.Confirmed != 100 || len(st.Partitions) != 2 || len(st.Topics) != 1 || st.Sample != 1 {
		t.Fatalf("audit: %d %s", code, body)
	}
	var eb ErrorBody
	if code, _ := f.get("/v1/pipelines/nope/audit", &eb); code != 404 || !strings.Contains(eb.Error, "nope") {
		t.Fatalf("unknown pipeline: %d %+v", code, eb)
	}
	st, err := f.api.Audit(t.Context(), "one")
	if err != nil || st.Totals.Compared != 100 {
		t.Fatalf("client: %+v %v", st, err)
	}
	_, metrics := f.get("/metrics", nil)
	for _, want := range []string{`strait_mirror_audit_completeness_ratio{`, `strait_mirror_audit_compared_total{`,
		`strait_mirror_audit_missing_total{`, `strait_mirror_rpo_records{`, `strait_mirror_rpo_age_seconds{`, `strait_mirror_rpo_bytes{`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", metrics)
	}
}

// TestStatusPage renders / from a running daemon: every pipeline and each
// partition's lag and audit.
func TestStatusPage(t *testing.T) {
	f := auditedFixture(t)
	req, _ := http.NewRequest(http.MethodGet, f.api.Base+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{`data-pipeline="one"`, `data-partition="one.a/0"`, `data-partition="one.a/1"`,
		`east → west`, `100.00%`, `http-equiv="refresh"`, `action="/page/pipelines/one/pause"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if regexp.MustCompile(`(?i)<(script|link|img)[^>]+(src|href)=`).MatchString(page) {
		t.Errorf("page loads an external asset")
	}
	if t.Failed() {
		t.Logf("page:\n%s", page)
	}
}

// metricNames are the series names a Prometheus text exposition holds.
func metricNames(exposition string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(exposition, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		out[name] = true
	}
	return out
}

// referenced lists the strait_* names used in text (queries, rules).
func referenced(text string) []string {
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`\bstrait_[a-z0-9_]+`).FindAllString(text, -1) {
		seen[m] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestDashboardAndAlertsUseExportedMetrics reads the Grafana dashboard and
// the alert rules and checks every strait metric they query is one a
// running daemon exports.
func TestDashboardAndAlertsUseExportedMetrics(t *testing.T) {
	f := auditedFixture(t)
	_, exposition := f.get("/metrics", nil)
	have := metricNames(exposition)
	// The rebalance metrics exist only in a fleet: a daemon with a
	// workers: section, once it completed its first rebalance.
	fl := newFixtureWith(t, "", "workers: {group: strait-test, session_timeout: 6s, heartbeat_interval: 1s}\n")
	var fleetExposition string
	waitFor(t, 30*time.Second, "the fleet daemon's first rebalance", func() bool {
		_, fleetExposition = fl.get("/metrics", nil)
		return strings.Contains(fleetExposition, "strait_mirror_rebalance_duration_seconds_count")
	})
	for n := range metricNames(fleetExposition) {
		have[n] = true
	}
	// A counter appears once it has counted something (errors, gaps): those
	// must at least be documented metrics.
	doc, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(strait_[a-z0-9_]+)`").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	dash, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "strait.json"))
	if err != nil {
		t.Fatal(err)
	}
	var board struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(dash, &board); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	var exprs []string
	for _, p := range board.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	if len(exprs) < 6 {
		t.Fatalf("dashboard has %d queries", len(exprs))
	}
	rules, err := os.ReadFile(filepath.Join("..", "deploy", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for file, text := range map[string]string{"strait.json": strings.Join(exprs, "\n"), "alerts.yaml": string(rules)} {
		names := referenced(text)
		if len(names) == 0 {
			t.Errorf("%s references no strait metric", file)
		}
		for _, n := range names {
			// A histogram is documented under its name and exported
			// as _bucket, _sum and _count series.
			base := regexp.MustCompile(`_(bucket|sum|count)$`).ReplaceAllString(n, "")
			if !documented[n] && !documented[base] {
				t.Errorf("%s queries %s, which docs/operations.md does not list", file, n)
			}
			if !have[n] && !strings.HasSuffix(n, "_total") {
				t.Errorf("%s queries %s, which the daemon does not export", file, n)
			}
		}
	}
	if t.Failed() {
		t.Logf("exported: %v", referenced(exposition))
	}
}

// TestAlertRules checks the alert rules and runs their unit tests with
// promtool (Debian's prometheus package ships it).
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil && os.Getenv("STRAIT_REQUIRE_PROMTOOL") != "" {
		t.Fatal("promtool not installed, and STRAIT_REQUIRE_PROMTOOL is set")
	}
	if err != nil {
		t.Skip("promtool not installed (apt-get install prometheus); alert rules not checked")
	}
	dir := filepath.Join("..", "deploy", "prometheus")
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
