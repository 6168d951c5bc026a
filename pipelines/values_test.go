package pipelines

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Size
		bad  bool
	}{
		{"0", 0, false}, {"4096", 4096, false}, {"512B", 512, false},
		{"1KiB", 1024, false}, {"50MiB", 50 << 20, false}, {"1GB", 1e9, false},
		{"1gb", 1e9, false}, {"2 MB", 2e6, false}, {"1.5KiB", 1536, false},
		{"64M", 64 << 20, false}, {"1TiB", 1 << 40, false},
		{"", 0, true}, {"MiB", 0, true}, {"-1", 0, true}, {"1.5B", 0, true},
		{"1e3", 0, true}, {"0x10", 0, true}, {"lots", 0, true}, {"1 MiBs", 0, true},
		{"99999999999TiB", 0, true}, {"NaN", 0, true}, {"Inf", 0, true},
	} {
		got, err := ParseSize(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("ParseSize(%q) = %d, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, c := range []struct {
		in   Size
		want string
	}{{0, "0"}, {1000, "1000"}, {1024, "1KiB"}, {64 << 20, "64MiB"}, {3 << 30, "3GiB"}, {1536, "1536"}} {
		if got := c.in.String(); got != c.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(c.in), got, c.want)
		}
		back, err := ParseSize(c.want)
		if err != nil || back != c.in {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.want, back, err, c.in)
		}
	}
}

func TestParseDurationAndStart(t *testing.T) {
	if d, err := ParseDuration("1m30s"); err != nil || d.D() != 90*time.Second {
		t.Errorf("ParseDuration(1m30s) = %v, %v", d, err)
	}
	for _, bad := range []string{"5", "5 seconds", "-1s", "", "${X}"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		}
	}
	for in, kind := range map[string]StartKind{"earliest": StartEarliest, "latest": StartLatest, "2026-01-02T15:04:05+02:00": StartTime} {
		s, err := ParseStart(in)
		if err != nil || s.Kind != kind || s.String() != in {
			t.Errorf("ParseStart(%q) = %+v (%s), %v", in, s, s, err)
		}
	}
	for _, bad := range []string{"Earliest", "now", "2026-01-02", ""} {
		if _, err := ParseStart(bad); err == nil {
			t.Errorf("ParseStart(%q) succeeded", bad)
		}
	}
}

// TestSecretNeverPrints checks every way a secret could leak into output.
func TestSecretNeverPrints(t *testing.T) {
	const pw = "hunter2-s3cret"
	s := Secret(pw)
	sasl := SASL{Mechanism: "PLAIN", Username: "u", Password: s}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, sasl), fmt.Sprintf(verb, &sasl))
	}
	outs = append(outs, fmt.Sprint(s), s.String(), s.GoString())
	js, err := json.Marshal(sasl)
	if err != nil {
		t.Fatal(err)
	}
	ys, err := yaml.Marshal(sasl)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	log.Info("connect", "password", s, "sasl", sasl)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("connect", "password", s)
	outs = append(outs, string(js), string(ys), logs.String(), fmt.Errorf("wrapped: %v", s).Error())
	for _, o := range outs {
		if strings.Contains(o, pw) || strings.Contains(o, fmt.Sprintf("%x", pw)) {
			t.Errorf("secret leaked: %s", o)
		}
	}
	if !strings.Contains(string(js), mask) || !strings.Contains(logs.String(), mask) {
		t.Errorf("mask missing: %s %s", js, logs.String())
	}
	if s.Reveal() != pw {
		t.Errorf("Reveal = %q", s.Reveal())
	}
	if Secret("").String() != "" {
		t.Errorf("an empty secret should print empty, to show it is unset")
	}
}

func TestExpandVars(t *testing.T) {
	env := map[string]string{"A": "1", "B": "two", "EMPTY": ""}
	look := func(n string) (string, bool) { v, ok := env[n]; return v, ok }
	for in, want := range map[string]string{
		"plain":           "plain",
		"${A}":            "1",
		"x${A}y${B}z":     "x1ytwoz",
		"${EMPTY}":        "",
		"pa$$word":        "pa$$word",
		"$A and $":        "$A and $",
		"$${A}":           "${A}",
		"$${A}${A}":       "${A}1",
		"cost: $5 ${B}":   "cost: $5 two",
		"${file:missing}": "",
	} {
		got, err := expandVars(in, look, t.TempDir())
		if in == "${file:missing}" {
			if err == nil {
				t.Errorf("expandVars(%q) succeeded", in)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("expandVars(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"${UNSET}", "${", "${A", "${}", "${1A}", "${A B}", "${file:}", "${file:/dev/zero}", "${file:/}"} {
		if got, err := expandVars(bad, look, "."); err == nil {
			t.Errorf("expandVars(%q) = %q, want an error", bad, got)
		}
	}
}

func TestMatchesAndDestTopic(t *testing.T) {
	p := &Pipeline{
		Name: "p", Source: "east", Destination: "west",
		Topics: Topics{Include: []string{`orders\..*`, "payments"}, Exclude: []string{`orders\.tmp\..*`}},
		Rename: "{source}.{topic}",
	}
	for i := 0; i < 2; i++ { // without, then with Compiled
		for topic, want := range map[string]bool{
			"orders.eu":          true,
			"orders.":            true,
			"orders":             false,
			"payments":           true,
			"payments-old":       false, // anchored
			"old-payments":       false,
			"orders.tmp.x":       false,
			"__consumer_offsets": false,
			"":                   false,
		} {
			if got := p.Matches(topic); got != want {
				t.Errorf("compiled=%v Matches(%q) = %v, want %v", p.Compiled != nil, topic, got, want)
			}
		}
		if err := p.Compile(); err != nil {
			t.Fatal(err)
		}
	}
	// Internal topics never mirror, whatever the expressions say.
	all := &Pipeline{Topics: Topics{Include: []string{".*"}}}
	if all.Matches("__strait_checkpoints") || all.Matches("__transaction_state") || !all.Matches("_schemas") {
		t.Errorf("internal topic handling is wrong")
	}
	if got := p.DestTopic("orders.eu"); got != "east.orders.eu" {
		t.Errorf("DestTopic = %q", got)
	}
	if got := (&Pipeline{}).DestTopic("x"); got != "x" {
		t.Errorf("empty rename: DestTopic = %q", got)
	}
	if src, any, ok := p.sourceFor("east.orders.eu"); !ok || any || src != "orders.eu" {
		t.Errorf("sourceFor = %q %v %v", src, any, ok)
	}
	if _, _, ok := p.sourceFor("west.orders.eu"); ok {
		t.Errorf("sourceFor inverted a name the template cannot make")
	}
	twice := &Pipeline{Source: "s", Rename: "{topic}-{topic}"}
	if src, _, ok := twice.sourceFor("ab-ab"); !ok || src != "ab" {
		t.Errorf("sourceFor twice = %q %v", src, ok)
	}
	if p.SyncsGroup("billing") || !(&Pipeline{Sync: Sync{Groups: []string{"billing-.*"}}}).SyncsGroup("billing-eu") {
		t.Errorf("SyncsGroup is wrong")
	}
}

func TestSamples(t *testing.T) {
	p := &Pipeline{Topics: Topics{Include: []string{`orders\.(eu|us)`, `a[0-9]+`, `logs-.*`, `x{3}`, `(?i)Mixed`}}}
	got := strings.Join(p.samples(), " ")
	for _, want := range []string{"orders.eu", "orders.us", "a0", "logs-", "logs-x", "xxx", "mixed"} {
		if !strings.Contains(" "+strings.ToLower(got)+" ", " "+want+" ") {
			t.Errorf("samples %q lack %q", got, want)
		}
	}
	if !literal("orders") || literal("orders.*") || literal("(?i)orders") || !literal(`orders\.eu`) {
		t.Errorf("literal is wrong")
	}
}

func TestCheckTopicName(t *testing.T) {
	for name, ok := range map[string]bool{
		"orders": true, "a.b_c-D9": true, strings.Repeat("x", 249): true,
		"": false, ".": false, "..": false, strings.Repeat("x", 250): false, "a/b": false, "a b": false, "é": false,
	} {
		if err := CheckTopicName(name); (err == nil) != ok {
			t.Errorf("CheckTopicName(%q) = %v", name, err)
		} else if err != nil && !errors.Is(err, ErrTopicName) {
			t.Errorf("error %v is not ErrTopicName", err)
		}
	}
}

// TestNormalize checks that a configuration built in code gets the same
// defaults and checks as a file.
func TestNormalize(t *testing.T) {
	c := &Config{
		Clusters: map[string]*Cluster{
			"east": {Bootstrap: []string{"127.0.0.1:1,127.0.0.1:2"}},
			"west": {Bootstrap: []string{"127.0.0.1:3"}},
		},
		Pipelines: []*Pipeline{{Name: "p", Source: "east", Destination: "west", Topics: Topics{Include: []string{"t"}}}},
	}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	p := c.Pipeline("p")
	if p.Mode != ModeBatch || p.Rename != "{topic}" || !p.Sync.Partitions || p.Limits.Buffer != DefaultBuffer || p.Compiled == nil {
		t.Errorf("defaults missing: %+v", p)
	}
	if c.Cluster("east").Name != "east" || len(c.Cluster("east").Bootstrap) != 2 || c.Cluster("east").ClientID != "strait" {
		t.Errorf("cluster: %+v", c.Cluster("east"))
	}
	c.Pipelines = append(c.Pipelines, &Pipeline{Name: "back", Source: "west", Destination: "east", Topics: Topics{Include: []string{"t"}}})
	err := c.Normalize()
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 || !strings.Contains(errs[0].Msg, "form a loop") {
		t.Fatalf("want one loop error, got %v", err)
	}
}

// TestPlainDecoders: code that decodes with yaml.Unmarshal or
// encoding/json instead of Load still reads durations, sizes and starts.
func TestPlainDecoders(t *testing.T) {
	var p Pipeline
	if err := yaml.Unmarshal([]byte("refresh: 2s\nstart: latest\nlimits: {buffer: 2MiB}\n"), &p); err != nil {
		t.Fatal(err)
	}
	if p.Refresh.D() != 2*time.Second || p.Start.Kind != StartLatest || p.Limits.Buffer != 2<<20 {
		t.Errorf("yaml: %+v", p)
	}
	var q Pipeline
	if err := json.Unmarshal([]byte(`{"Refresh":"3s","Start":"2026-01-02T03:04:05Z","Limits":{"Buffer":4096}}`), &q); err != nil {
		t.Fatal(err)
	}
	if q.Refresh.D() != 3*time.Second || q.Start.Kind != StartTime || q.Limits.Buffer != 4096 {
		t.Errorf("json: %+v", q)
	}
	if err := yaml.Unmarshal([]byte("refresh: soon\n"), &p); err == nil {
		t.Errorf("a bad duration decoded")
	}
}
