package pipelines

import (
	"strings"
	"testing"
	"time"
)

// fleetBase is a configuration the fingerprint cases edit one line of.
const fleetBase = `clusters:
  east: {bootstrap: ["127.0.0.1:9092", "127.0.0.1:9093"], client_id: a}
  west:
    bootstrap: ["127.0.0.1:9192"]
    sasl: {mechanism: SCRAM-SHA-512, username: mirror, password: one}
    tls: {ca_file: /etc/ca.pem}
checkpoints: {store: kafka, interval: 1s}
pipelines:
  - name: a
    source: east
    destination: west
    topics: {include: ["orders", "payments"]}
  - name: b
    source: west
    destination: east
    topics: {include: ["audit"]}
    rename: "west.{topic}"
workers: {}
`

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse("fleet.yaml", []byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return c
}

// TestFingerprint: what may differ between daemons of one group leaves the
// fingerprint alone; what changes what is written where changes it.
func TestFingerprint(t *testing.T) {
	base := mustParse(t, fleetBase)
	fp := base.Fingerprint()
	if len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
		t.Fatalf("fingerprint %q is not 64 hex digits", fp)
	}
	if again := mustParse(t, fleetBase).Fingerprint(); again != fp {
		t.Fatalf("same text, two fingerprints: %s %s", fp, again)
	}
	pipelineB := "  - name: b\n    source: west\n    destination: east\n    topics: {include: [\"audit\"]}\n    rename: \"west.{topic}\"\n"
	for _, tc := range []struct {
		name, old, new string
		same           bool
	}{
		// Moving b first would make east the default group cluster: the
		// case writes west, the default it had.
		{"pipeline order", pipelineB, "", true},
		{"bootstrap order and case", `["127.0.0.1:9092", "127.0.0.1:9093"]`, `["127.0.0.1:9093,127.0.0.1:9092"]`, true},
		{"client id", "client_id: a", "client_id: b", true},
		{"password", "password: one", "password: two", true},
		{"sasl user", "username: mirror", "username: other", true},
		{"tls file", "/etc/ca.pem", "/opt/ca.pem", true},
		{"checkpoint interval", "interval: 1s", "interval: 5s", true},
		{"include order", `["orders", "payments"]`, `["payments", "orders"]`, true},
		{"default written out", `workers: {}`, "workers: {session_timeout: 20s, heartbeat_interval: 5s}", true},
		{"start in another zone", `rename: "west.{topic}"`, "rename: \"west.{topic}\"\n    start: 2026-01-02T03:04:05Z", false},
		{"include", `["orders", "payments"]`, `["orders"]`, false},
		{"rename", `west.{topic}`, `w.{topic}`, false},
		{"mode", `rename: "west.{topic}"`, "rename: \"west.{topic}\"\n    mode: record", false},
		{"bootstrap", `"127.0.0.1:9192"`, `"127.0.0.2:9192"`, false},
		{"pipeline name", "name: b", "name: c", false},
		{"checkpoint topic", "store: kafka,", "store: kafka, topic: strait-ckpt,", false},
		{"group", `workers: {}`, "workers: {group: other}", false},
		{"group cluster", `workers: {}`, "workers: {cluster: east}", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(fleetBase, tc.old, tc.new, 1)
			if tc.name == "pipeline order" {
				src = strings.Replace(src, "pipelines:\n", "pipelines:\n"+pipelineB, 1)
				src = strings.Replace(src, "workers: {}", "workers: {cluster: west}", 1)
			}
			if src == fleetBase {
				t.Fatalf("the case changes nothing")
			}
			got := mustParse(t, src).Fingerprint()
			if (got == fp) != tc.same {
				t.Errorf("same fingerprint = %v, want %v", got == fp, tc.same)
			}
		})
	}
	// The same instant in another zone is the same start.
	withStart := func(s string) string {
		return strings.Replace(fleetBase, `rename: "west.{topic}"`, "rename: \"west.{topic}\"\n    start: "+s, 1)
	}
	if a, b := mustParse(t, withStart("2026-01-02T03:04:05Z")).Fingerprint(), mustParse(t, withStart("2026-01-02T05:04:05+02:00")).Fingerprint(); a != b {
		t.Errorf("one instant in two zones gives two fingerprints")
	}
}

// TestDefaultGroup: the derived id depends on pipeline names and clusters
// only, not on their order or on other settings.
func TestDefaultGroup(t *testing.T) {
	base := mustParse(t, fleetBase)
	g := base.Workers.Group
	if !strings.HasPrefix(g, "strait-") || len(g) != len("strait-")+12 || g != DefaultGroup(base) {
		t.Fatalf("default group %q", g)
	}
	if base.Workers.Cluster != "west" {
		t.Errorf("default cluster %q, want the first pipeline's destination west", base.Workers.Cluster)
	}
	if other := mustParse(t, strings.Replace(fleetBase, `["audit"]`, `["audit", "x"]`, 1)); other.Workers.Group != g {
		t.Errorf("changing topics changed the group: %s", other.Workers.Group)
	}
	if other := mustParse(t, strings.Replace(fleetBase, "name: b", "name: c", 1)); other.Workers.Group == g {
		t.Errorf("renaming a pipeline kept the group %s", g)
	}
}

// TestWorkersNormalize: code-built configurations get the same defaults,
// keep what they set, and run alone without a workers section.
func TestWorkersNormalize(t *testing.T) {
	build := func(w *Workers) *Config {
		return &Config{
			Clusters: map[string]*Cluster{
				"east": {Bootstrap: []string{"127.0.0.1:1"}},
				"west": {Bootstrap: []string{"127.0.0.1:3"}},
			},
			Pipelines: []*Pipeline{{Name: "p", Source: "east", Destination: "west", Topics: Topics{Include: []string{"t"}}}},
			Workers:   w,
		}
	}
	alone := build(nil)
	if err := alone.Normalize(); err != nil || alone.Workers != nil {
		t.Fatalf("no workers: %v %+v", err, alone.Workers)
	}
	c := build(&Workers{Cluster: "east", HeartbeatInterval: Duration(time.Second)})
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	w := c.Workers
	if w.Group != DefaultGroup(c) || w.Cluster != "east" || w.HeartbeatInterval != Duration(time.Second) ||
		w.SessionTimeout != DefaultSessionTimeout || w.RebalanceTimeout != DefaultRebalanceTimeout {
		t.Errorf("defaults: %+v", w)
	}
	bad := build(&Workers{Cluster: "nowhere", SessionTimeout: Duration(time.Second), HeartbeatInterval: Duration(2 * time.Second)})
	err := bad.Normalize()
	if err == nil || !strings.Contains(err.Error(), `cluster "nowhere" is not defined`) || !strings.Contains(err.Error(), "not shorter than session_timeout") {
		t.Errorf("want unknown cluster and heartbeat errors, got %v", err)
	}
}
