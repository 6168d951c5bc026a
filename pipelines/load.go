package pipelines

// CONTRACT STUB: the agreed loading API; the pipelines implementation
// replaces these bodies and keeps the signatures.

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Load reads a YAML file or a folder of them, applies defaults and
// validates. The error, if any, is an Errors list of file:line:col errors.
func Load(path string) (*Config, error) { return nil, errors.New("pipelines: not implemented") }

// Cluster returns the named cluster or nil.
func (c *Config) Cluster(name string) *Cluster { return c.Clusters[name] }

// Matches reports whether the pipeline mirrors the source topic.
func (p *Pipeline) Matches(topic string) bool { return false }

// DestTopic is the destination name of a source topic (the rename template).
func (p *Pipeline) DestTopic(source string) string { return source }

// ClientOptions are the franz-go options that reach the cluster (seeds,
// client id, TLS, SASL).
func (c *Cluster) ClientOptions() ([]kgo.Opt, error) {
	return []kgo.Opt{kgo.SeedBrokers(c.Bootstrap...)}, nil
}

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
