package pipelines

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultPlanTimeout bounds how long Plan waits for each cluster.
const DefaultPlanTimeout = 5 * time.Second

// Destination topic states in a plan.
const (
	DestExists   = "exists"   // the topic is there with as many partitions as the source
	DestCreate   = "create"   // the mirror would create it
	DestMismatch = "mismatch" // it is there with another partition count
	DestUnknown  = "unknown"  // the destination cluster could not be reached
	DestInvalid  = "invalid"  // the rename makes a name Kafka refuses
)

// PlanReport is what a configuration would mirror now. Plan fills it; it
// holds no secret (cluster settings are not copied into it).
type PlanReport struct {
	Clusters  []ClusterPlan  `json:"clusters"`
	Pipelines []PipelinePlan `json:"pipelines"`
	// Problems found on the real topics: two pipelines writing one topic,
	// loops, names Kafka refuses.
	Problems []string `json:"problems"`
}

// ClusterPlan is one cluster as Plan saw it.
type ClusterPlan struct {
	Name      string   `json:"name"`
	Bootstrap []string `json:"bootstrap"`
	Reachable bool     `json:"reachable"`
	ClusterID string   `json:"cluster_id,omitempty"`
	Error     string   `json:"error,omitempty"`
	Topics    int      `json:"topics"` // topics listed, internal ones included

	partitions map[string]int // topic -> partition count
}

// PipelinePlan is one pipeline's topics as they are now.
type PipelinePlan struct {
	Name        string      `json:"name"`
	Source      string      `json:"source"`
	Destination string      `json:"destination"`
	Mode        Mode        `json:"mode"`
	Paused      bool        `json:"paused,omitempty"`
	Topics      []TopicPlan `json:"topics"`
	// Error says why the topics are unknown (source unreachable).
	Error string `json:"error,omitempty"`
	// Checkpoints says where the pipeline's progress goes.
	Checkpoints string `json:"checkpoints"`
}

// TopicPlan is one source topic and its destination.
type TopicPlan struct {
	Source         string `json:"source"`
	Partitions     int    `json:"partitions"`
	Destination    string `json:"destination"`
	State          string `json:"state"` // DestExists, DestCreate, DestMismatch, DestUnknown, DestInvalid
	DestPartitions int    `json:"destination_partitions,omitempty"`
	Note           string `json:"note,omitempty"`
}

// OK reports whether every cluster was reached and no problem was found.
func (r *PlanReport) OK() bool {
	for _, c := range r.Clusters {
		if !c.Reachable {
			return false
		}
	}
	return len(r.Problems) == 0
}

// Plan connects read-only (Metadata requests only, no topic creation) to
// every cluster the configuration's pipelines use, waiting at most timeout
// for each (0: DefaultPlanTimeout), and reports per pipeline the matching
// source topics with their partition counts, destination names, whether
// each destination topic exists or would be created, and partition-count
// mismatches. An unreachable cluster is reported in the result, not as an
// error; Plan never fails as a whole.
func Plan(ctx context.Context, cfg *Config, timeout time.Duration) *PlanReport {
	if timeout <= 0 {
		timeout = DefaultPlanTimeout
	}
	used := map[string]bool{}
	for _, p := range cfg.Pipelines {
		used[p.Source] = true
		used[p.Destination] = true
	}
	r := &PlanReport{Problems: []string{}}
	names := sortedKeys(used)
	r.Clusters = make([]ClusterPlan, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Clusters[i] = listCluster(ctx, cfg.Cluster(name), name, timeout)
		}()
	}
	wg.Wait()
	byName := map[string]*ClusterPlan{}
	for i := range r.Clusters {
		byName[r.Clusters[i].Name] = &r.Clusters[i]
	}

	type dest struct{ cluster, topic string }
	writers := map[dest]string{}
	for _, p := range cfg.Pipelines {
		pp := PipelinePlan{Name: p.Name, Source: p.Source, Destination: p.Destination, Mode: p.Mode, Paused: p.Paused, Topics: []TopicPlan{}}
		src, dst := byName[p.Source], byName[p.Destination]
		if dst == nil {
			dst = &ClusterPlan{Name: p.Destination}
		}
		pp.Checkpoints = checkpointsPlan(cfg, p, dst)
		if src != nil && src.Reachable && dst.Reachable && src.ClusterID != "" && src.ClusterID == dst.ClusterID {
			r.Problems = append(r.Problems, fmt.Sprintf("pipeline %q: %q and %q are the same cluster (id %s); it would copy the cluster into itself", p.Name, p.Source, p.Destination, src.ClusterID))
		}
		if src == nil || !src.Reachable {
			pp.Error = fmt.Sprintf("source cluster %q unreachable; topics unknown", p.Source)
			r.Pipelines = append(r.Pipelines, pp)
			continue
		}
		for _, t := range sortedKeys(src.partitions) {
			if !p.Matches(t) {
				continue
			}
			tp := TopicPlan{Source: t, Partitions: src.partitions[t], Destination: p.DestTopic(t)}
			switch n, ok := dst.partitions[tp.Destination]; {
			case CheckTopicName(tp.Destination) != nil || strings.HasPrefix(tp.Destination, "__"):
				tp.State = DestInvalid
				msg := "an internal topic name"
				if err := CheckTopicName(tp.Destination); err != nil {
					msg = topicErr(err)
				}
				tp.Note = msg
				r.Problems = append(r.Problems, fmt.Sprintf("pipeline %q: topic %q would become %q, which Kafka refuses: %s", p.Name, t, tp.Destination, msg))
			case !dst.Reachable:
				tp.State = DestUnknown
			case !ok:
				tp.State = DestCreate
			case n == tp.Partitions:
				tp.State = DestExists
				tp.DestPartitions = n
			default:
				tp.State = DestMismatch
				tp.DestPartitions = n
				tp.Note = mismatchNote(p, tp.Partitions, n)
				if n < tp.Partitions && !p.Sync.Partitions {
					r.Problems = append(r.Problems, fmt.Sprintf("pipeline %q: topic %q has %d partitions but %q on %q has %d, and sync.partitions is off", p.Name, t, tp.Partitions, tp.Destination, p.Destination, n))
				}
			}
			k := dest{p.Destination, tp.Destination}
			if other, ok := writers[k]; ok && other != p.Name {
				r.Problems = append(r.Problems, fmt.Sprintf("pipelines %q and %q both write topic %q on cluster %q", other, p.Name, tp.Destination, p.Destination))
			} else {
				writers[k] = p.Name
			}
			if cycle, back := findLoop(cfg, p, t); cycle != nil {
				protected := true
				names := make([]string, len(cycle))
				for i, q := range cycle {
					names[i] = q.Name
					protected = protected && q.LoopProtection
				}
				if !protected {
					r.Problems = append(r.Problems, fmt.Sprintf("pipelines %s form a loop: topic %q on %q comes back as %q", quoteList(names), t, p.Source, back))
				}
			}
			pp.Topics = append(pp.Topics, tp)
		}
		r.Pipelines = append(r.Pipelines, pp)
	}
	// One line per problem, in a stable order.
	sort.Strings(r.Problems)
	r.Problems = dedupe(r.Problems)
	return r
}

func dedupe(ss []string) []string {
	out := ss[:0]
	for i, s := range ss {
		if i == 0 || s != ss[i-1] {
			out = append(out, s)
		}
	}
	return out
}

func mismatchNote(p *Pipeline, src, dst int) string {
	if dst > src {
		return fmt.Sprintf("destination has %s more; they stay empty", count(dst-src, "partition"))
	}
	if p.Sync.Partitions {
		return fmt.Sprintf("sync.partitions will add %s", count(src-dst, "partition"))
	}
	return fmt.Sprintf("destination lacks %s and sync.partitions is off: those source partitions cannot be mirrored", count(src-dst, "partition"))
}

func checkpointsPlan(cfg *Config, p *Pipeline, dst *ClusterPlan) string {
	cp := cfg.Checkpoints
	if cp.Store == "file" {
		return "file store in " + cp.Dir
	}
	switch {
	case dst == nil || !dst.Reachable:
		return fmt.Sprintf("topic %s on %s (unknown: cluster unreachable)", cp.Topic, p.Destination)
	case dst.partitions[cp.Topic] > 0:
		return fmt.Sprintf("topic %s on %s exists", cp.Topic, p.Destination)
	}
	return fmt.Sprintf("topic %s on %s will be created", cp.Topic, p.Destination)
}

// dialErrors remembers the last connection failure, so that an unreachable
// cluster is reported with the reason (connection refused, TLS, SASL)
// rather than only "context deadline exceeded".
type dialErrors struct {
	mu   sync.Mutex
	last error
}

func (h *dialErrors) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.mu.Lock()
		h.last = err
		h.mu.Unlock()
	}
}

func (h *dialErrors) get() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// listCluster lists every topic of one cluster with its partition count.
func listCluster(ctx context.Context, cl *Cluster, name string, timeout time.Duration) ClusterPlan {
	cp := ClusterPlan{Name: name}
	if cl == nil {
		cp.Error = "not defined"
		return cp
	}
	cp.Bootstrap = seeds(cl.Bootstrap)
	opts, err := cl.ClientOptions()
	if err != nil {
		cp.Error = err.Error()
		return cp
	}
	hook := &dialErrors{}
	opts = append(opts, kgo.DialTimeout(timeout), kgo.WithHooks(hook), kgo.RetryTimeout(timeout))
	client, err := kgo.NewClient(opts...)
	if err != nil {
		cp.Error = err.Error()
		return cp
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	md, err := kadm.NewClient(client).Metadata(ctx)
	if err != nil {
		if last := hook.get(); last != nil && ctx.Err() != nil {
			err = last
		}
		cp.Error = err.Error()
		return cp
	}
	cp.Reachable = true
	cp.ClusterID = md.Cluster
	cp.partitions = map[string]int{}
	for t, d := range md.Topics {
		if d.Err != nil {
			continue
		}
		cp.partitions[t] = len(d.Partitions)
	}
	cp.Topics = len(cp.partitions)
	return cp
}

// WriteJSON writes the report as indented JSON.
func (r *PlanReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for people: clusters, then a table per
// pipeline, then problems.
func (r *PlanReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "clusters:")
	for _, c := range r.Clusters {
		state := fmt.Sprintf("reachable, %d topics", c.Topics)
		if !c.Reachable {
			state = "UNREACHABLE: " + c.Error
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Name, strings.Join(c.Bootstrap, ","), state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range r.Pipelines {
		paused := ""
		if p.Paused {
			paused = ", paused"
		}
		fmt.Fprintf(w, "\npipeline %s (%s -> %s, %s mode%s)\n", p.Name, p.Source, p.Destination, p.Mode, paused)
		if p.Error != "" {
			fmt.Fprintf(w, "  %s\n", p.Error)
		} else if len(p.Topics) == 0 {
			fmt.Fprintln(w, "  no source topic matches now")
		} else {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  SOURCE TOPIC\tPARTITIONS\tDESTINATION TOPIC\tDESTINATION")
			parts, counts := 0, map[string]int{}
			for _, t := range p.Topics {
				parts += t.Partitions
				counts[t.State]++
				fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\n", t.Source, t.Partitions, t.Destination, destText(t))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(w, "  %s, %s: %d exist, %d to create, %s",
				count(len(p.Topics), "topic"), count(parts, "partition"), counts[DestExists], counts[DestCreate], count(counts[DestMismatch], "partition mismatch"))
			if n := counts[DestUnknown]; n > 0 {
				fmt.Fprintf(w, ", %d unknown", n)
			}
			if n := counts[DestInvalid]; n > 0 {
				fmt.Fprintf(w, ", %s", count(n, "invalid name"))
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "  checkpoints: %s\n", p.Checkpoints)
	}
	if len(r.Problems) > 0 {
		fmt.Fprintln(w, "\nproblems:")
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
	return nil
}

func destText(t TopicPlan) string {
	switch t.State {
	case DestExists:
		return "exists, " + count(t.DestPartitions, "partition")
	case DestCreate:
		return "will be created with " + count(t.Partitions, "partition")
	case DestMismatch:
		return fmt.Sprintf("exists, %s: MISMATCH (%s)", count(t.DestPartitions, "partition"), t.Note)
	case DestInvalid:
		return "INVALID NAME: " + t.Note
	}
	return "unknown (destination unreachable)"
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if strings.HasSuffix(what, "ch") {
		return fmt.Sprintf("%d %ses", n, what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}
