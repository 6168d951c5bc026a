package drill

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/pipelines"
)

// EmbeddedTopic is the source topic an embedded drill mirrors.
const EmbeddedTopic = "strait.drill"

// EmbeddedConfig writes and loads the configuration of a drill between the
// two clusters of p: one pipeline "drill" mirroring EmbeddedTopic in mode,
// checkpointed in west.
func EmbeddedConfig(dir string, p *Pair, mode string) (*pipelines.Config, error) {
	return pairConfig(dir, p.East.Addrs(), p.West.Addrs(), mode)
}

// pairConfig is EmbeddedConfig for clusters at the given addresses.
func pairConfig(dir string, east, west []string, mode string) (*pipelines.Config, error) {
	if mode == "" {
		mode = "batch"
	}
	yaml := fmt.Sprintf(`clusters:
  east: {bootstrap: [%s]}
  west: {bootstrap: [%s]}
checkpoints: {store: kafka, interval: 500ms}
pipelines:
  - name: drill
    source: east
    destination: west
    topics: {include: [%q]}
    mode: %s
    start: earliest
    refresh: 1s
`, quoteList(east), quoteList(west), regexp.QuoteMeta(EmbeddedTopic), mode)
	path := filepath.Join(dir, "drill.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	cfg, err := pipelines.Load(path)
	if err != nil {
		return nil, fmt.Errorf("%w: drill configuration: %w", ErrScenario, err)
	}
	return cfg, nil
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

// RealConfig derives, from a loaded configuration, a drill of the named
// pipeline (the first when name is ""): the same clusters, client settings,
// mode and producer, but mirroring only topic, syncing no consumer group,
// and checkpointing in a file store under ckptDir, so the drill writes
// nothing on the real clusters except its own topic and group.
func RealConfig(cfg *pipelines.Config, name, topic, ckptDir string) (*pipelines.Config, error) {
	var src *pipelines.Pipeline
	for _, p := range cfg.Pipelines {
		if name == "" || p.Name == name {
			src = p
			break
		}
	}
	if src == nil {
		return nil, fmt.Errorf("%w: no pipeline %q in the configuration", ErrScenario, name)
	}
	p := *src
	p.Name = src.Name + "-drill"
	p.Topics = pipelines.Topics{Include: []string{regexp.QuoteMeta(topic)}, Exclude: src.Topics.Exclude}
	if err := p.Compile(); err != nil {
		return nil, fmt.Errorf("%w: drill topic %q: %w", ErrScenario, topic, err)
	}
	p.Sync.Groups = nil
	p.Start = pipelines.Start{Kind: pipelines.StartEarliest}
	p.Paused = false
	out := &pipelines.Config{
		Clusters:    cfg.Clusters,
		Checkpoints: pipelines.Checkpoints{Store: "file", Dir: ckptDir, Interval: pipelines.Duration(500 * time.Millisecond)},
		Pipelines:   []*pipelines.Pipeline{&p},
		Files:       cfg.Files,
	}
	return out, nil
}

// Cleanup deletes what a drill on real clusters created: its topic on the
// source, the mirrored topic on the destination, and its consumer group on
// both. Errors are collected, not fatal: cleanup tries everything.
func Cleanup(ctx context.Context, cfg *pipelines.Config, topic, group string) []error {
	p := cfg.Pipelines[0]
	var errs []error
	for _, side := range []struct {
		cluster, topic string
	}{{p.Source, topic}, {p.Destination, p.DestTopic(topic)}} {
		opts, err := clientOpts(cfg, side.cluster)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		adm := kadm.NewClient(cl)
		if _, err := adm.DeleteGroups(ctx, group); err != nil {
			errs = append(errs, fmt.Errorf("deleting group %s on %s: %w", group, side.cluster, err))
		}
		resp, err := adm.DeleteTopics(ctx, side.topic)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("deleting topic %s on %s: %w", side.topic, side.cluster, err))
		}
		cl.Close()
	}
	return errs
}

// startEmbedded starts the embedded pair in dir and the batch-mode
// configuration between them, as most scenarios begin; the caller closes
// the pair.
func startEmbedded(ctx context.Context, dir string, log *slog.Logger) (*Pair, *pipelines.Config, error) {
	pair, err := StartPair(ctx, dir, 1, log)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := EmbeddedConfig(dir, pair, "batch")
	if err != nil {
		pair.Close()
		return nil, nil, err
	}
	return pair, cfg, nil
}
