package pipelines

import (
	"time"
)

// Config is one whole configuration: every file of a folder merged.
// All fields are defaulted (see defaults.go) once Load returns.
type Config struct {
	Clusters    map[string]*Cluster `yaml:"clusters"`
	Checkpoints Checkpoints         `yaml:"checkpoints"`
	Pipelines   []*Pipeline         `yaml:"pipelines"`
	// Workers, when set, makes the daemon one of a group of daemons with
	// the same configuration that share the work; nil runs it alone.
	Workers *Workers `yaml:"workers,omitempty"`

	// Files lists the files the configuration was read from, in order.
	Files []string `yaml:"-"`
	// Warnings are legal but doubtful settings (a cluster no pipeline
	// uses, a password sent in clear), sorted by position; validate
	// prints them and still succeeds.
	Warnings Errors `yaml:"-"`
}

// Cluster is how to reach one Kafka-compatible cluster.
type Cluster struct {
	Name      string   `yaml:"-"` // the key under clusters:
	Bootstrap []string `yaml:"bootstrap"`
	ClientID  string   `yaml:"client_id,omitempty"`
	TLS       *TLS     `yaml:"tls,omitempty"`
	SASL      *SASL    `yaml:"sasl,omitempty"`
	Pos       Position `yaml:"-"` // where the cluster was defined
}

// TLS configures a TLS connection to a cluster.
type TLS struct {
	CAFile             string `yaml:"ca_file,omitempty"`
	CertFile           string `yaml:"cert_file,omitempty"`
	KeyFile            string `yaml:"key_file,omitempty"`
	ServerName         string `yaml:"server_name,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify,omitempty"`
}

// SASL configures authentication. Password is a Secret: it never prints.
type SASL struct {
	Mechanism string `yaml:"mechanism"` // PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
	Username  string `yaml:"username"`
	Password  Secret `yaml:"password"`
}

// Secret is a string that prints as "******" (String, MarshalYAML,
// MarshalJSON, slog.LogValuer); Reveal returns the value.
type Secret string

// Checkpoints selects the checkpoint store.
type Checkpoints struct {
	Store    string   `yaml:"store"` // kafka (default) | file
	Dir      string   `yaml:"dir,omitempty"`
	Topic    string   `yaml:"topic,omitempty"` // kafka store topic; default "__strait_checkpoints"
	Interval Duration `yaml:"interval"`        // default 1s
}

// Workers is the group membership several `strait mirror` daemons with
// the same configuration use to share the pipelines' partitions, through
// Kafka's own JoinGroup/SyncGroup/Heartbeat as Kafka Connect does.
type Workers struct {
	// Group is the membership group id; default "strait-" and a short
	// hash of the pipelines' names and clusters (see DefaultGroup).
	Group string `yaml:"group"`
	// Cluster is the configured cluster whose group coordinator hosts the
	// group; default the first pipeline's destination.
	Cluster           string   `yaml:"cluster"`
	SessionTimeout    Duration `yaml:"session_timeout"`    // default 10s
	RebalanceTimeout  Duration `yaml:"rebalance_timeout"`  // default 60s
	HeartbeatInterval Duration `yaml:"heartbeat_interval"` // default 3s
	Pos               Position `yaml:"-"`                  // where workers: was written
}

// Pipeline mirrors the topics of one source cluster into one destination.
type Pipeline struct {
	Name        string   `yaml:"name"`
	Source      string   `yaml:"source"`
	Destination string   `yaml:"destination"`
	Topics      Topics   `yaml:"topics"`
	Rename      string   `yaml:"rename"` // template with {topic} and {source}; default "{topic}"
	Mode        Mode     `yaml:"mode"`   // batch (default) | record
	Start       Start    `yaml:"start"`  // earliest (default) | latest | RFC 3339 time
	Sync        Sync     `yaml:"sync"`   //
	Producer    Producer `yaml:"producer"`
	Limits      Limits   `yaml:"limits"`
	Audit       Audit    `yaml:"audit"`
	Refresh     Duration `yaml:"refresh"` // topic discovery interval; default 10s
	Paused      bool     `yaml:"paused,omitempty"`
	// LoopProtection lets this pipeline be part of a cycle (active-active
	// with identical names): record mode stamps and checks the provenance
	// header, batch mode skips batches written by the configuration's own
	// producers on the source cluster. Every pipeline of a cycle needs it.
	LoopProtection bool      `yaml:"loop_protection"`
	Pos            Position  `yaml:"-"` // where the pipeline was defined
	Compiled       *Matchers `yaml:"-"`
}

// Topics selects source topics by anchored regular expressions.
type Topics struct {
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"` // default ["__.*"] is always added: internal topics never mirror
}

// Matchers holds the compiled, anchored include and exclude expressions,
// indexed for lookup by name.
type Matchers struct {
	include, exclude exprSet
}

// Mode is how records are copied.
type Mode string

const (
	ModeBatch  Mode = "batch"  // raw record batches, no recompression
	ModeRecord Mode = "record" // consume and re-produce records
)

// Start says where a pipeline without a checkpoint begins.
type Start struct {
	Kind StartKind `yaml:"-"`
	Time time.Time `yaml:"-"` // when Kind == StartTime
}

// StartKind enumerates Start forms.
type StartKind int

const (
	StartEarliest StartKind = iota
	StartLatest
	StartTime
)

// Sync says what else, besides records, a pipeline keeps in step.
type Sync struct {
	TopicConfigs bool     `yaml:"topic_configs"` // default true
	Partitions   bool     `yaml:"partitions"`    // default true
	Groups       []string `yaml:"groups"`        // anchored regexps of consumer groups
	Interval     Duration `yaml:"interval"`      // default 5s
	// ACLs copies the source's topic ACLs of mirrored topics (renamed) and
	// the group ACLs of synced groups to the destination, never widening
	// access (see mirror/aclsync.go); default false.
	ACLs bool `yaml:"acls,omitempty"`
}

// Producer tunes the destination producer.
type Producer struct {
	Acks        string   `yaml:"acks"`        // all (default) | leader | none; batch mode and exactly-once need all
	Compression string   `yaml:"compression"` // record mode: none | gzip | snappy | lz4 | zstd (default: none)
	Linger      Duration `yaml:"linger"`      // default 0
	BatchSize   Size     `yaml:"batch_size"`  // default 1MiB
}

// Limits bound a pipeline's resource use.
type Limits struct {
	BytesPerSecond Size `yaml:"bytes_per_second"` // 0 = unlimited
	Buffer         Size `yaml:"buffer"`           // max bytes fetched but not yet acknowledged; default 64MiB
}

// Audit tunes the daemon's continuous completeness audit: what the mirror
// reads is summed per partition and event-time bucket, and a sample of it
// is read back from the destination and compared.
type Audit struct {
	Disabled bool     `yaml:"disabled"` // default false: the audit runs
	Bucket   Duration `yaml:"bucket"`   // event-time bucket and audit cycle; default 1m
	// Sample is the share of the mirrored records audited (read back from
	// the destination), in (0, 1]; default 0.01. 1 audits everything.
	Sample float64 `yaml:"sample"`
}

// Duration is a time.Duration written as "5s", "1m30s".
type Duration time.Duration

// Size is a byte count written as "50MiB", "1KB", "4096".
type Size int64

// Position is a place in a configuration file.
type Position struct {
	File   string
	Line   int
	Column int
}
