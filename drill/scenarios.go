package drill

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"
)

// Scenarios names every drill scenario, in the order `strait drill` runs
// them. Implemented lists the ones this build can run; the others are
// refused by name.
var Scenarios = []string{"planned-failover", "unplanned-failover", "failback", "mirror-crash", "network-partition", "broker-crash", "destination-outage"}

var scenarioFuncs = map[string]func(ctx context.Context, dir string, log *slog.Logger) (*Result, error){
	"planned-failover":   runPlanned,
	"unplanned-failover": runUnplanned,
	"failback":           runFailback,
	"mirror-crash":       runMirrorCrash,
	"network-partition":  runNetworkPartition,
	"broker-crash":       runBrokerCrash,
	"destination-outage": runDestinationOutage,
}

// Implemented reports whether the named scenario can run.
func Implemented(name string) bool { return scenarioFuncs[name] != nil }

// Result is one scenario's line of the drill report (JSON field names are
// the report's contract).
type Result struct {
	Scenario    string `json:"scenario"`
	Passed      bool   `json:"passed"`
	Lost        int64  `json:"lost"`
	Duplicated  int64  `json:"duplicated"`
	Reordered   int64  `json:"reordered"`
	Redelivered int64  `json:"redelivered"`
	RPORecords  int64  `json:"rpo_records"`
	RPOMS       int64  `json:"rpo_ms"`
	RTOMS       int64  `json:"rto_ms"`
	DurationMS  int64  `json:"duration_ms"`
	Error       string `json:"error,omitempty"`
}

// RunScenario runs one named scenario on embedded clusters under dir.
func RunScenario(ctx context.Context, name, dir string, log *slog.Logger) *Result {
	began := time.Now()
	fn := scenarioFuncs[name]
	res := &Result{Scenario: name}
	if fn == nil {
		res.Error = fmt.Sprintf("scenario %q is not implemented (implemented: %s)", name, strings.Join(implemented(), ", "))
	} else {
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		r, err := fn(ctx, filepath.Join(dir, name), log)
		if r != nil {
			res = r
			res.Scenario = name
		}
		if err != nil {
			res.Error = err.Error()
		}
		res.Passed = err == nil && res.Lost == 0 && res.Duplicated == 0 && res.Reordered == 0
	}
	res.DurationMS = time.Since(began).Milliseconds()
	return res
}

func implemented() []string {
	var out []string
	for _, s := range Scenarios {
		if Implemented(s) {
			out = append(out, s)
		}
	}
	return out
}

// runUnplanned is the story Scenario tells: the source cut mid-stream, the
// group moved from the checkpoints.
func runUnplanned(ctx context.Context, dir string, log *slog.Logger) (*Result, error) {
	pair, cfg, err := startEmbedded(ctx, dir, log)
	if err != nil {
		return nil, err
	}
	defer pair.Close()
	sc := &Scenario{
		Config: cfg, Pipeline: cfg.Pipelines[0].Name,
		Topics:    []TopicSpec{{Name: EmbeddedTopic, Partitions: 4}},
		Group:     "strait-drill",
		Rate:      1000,
		Backlog:   1000,
		Duration:  15 * time.Second,
		CutSource: pair.StopEast,
		Logger:    log,
	}
	rep, err := sc.Run(ctx)
	if rep == nil {
		return nil, err
	}
	res := &Result{
		Lost:        rep.Lost,
		Duplicated:  rep.MirrorDuplicates,
		Redelivered: rep.Duplicates,
		RPORecords:  rep.RPORecords,
		RPOMS:       rep.RPOWindow.Milliseconds(),
		RTOMS:       rep.RTO.Milliseconds(),
	}
	return res, err
}
