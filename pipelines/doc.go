// Package pipelines is strait's configuration: the YAML format, strict
// loading with file:line:col errors, defaults, validation, and the helpers
// the engine and commands use to act on a configuration.
//
// # Loading
//
// Load(path) reads one YAML file, or every *.yaml and *.yml file directly
// in a folder (name order, hidden files skipped) as one configuration. It
// returns a fully defaulted, validated *Config, or an Errors value listing
// every problem of every file, sorted by position, each printed as
// "file:line:col: message" and matching ErrInvalid (ErrRead when the path
// cannot be read at all):
//
//	cfg, err := pipelines.Load("strait.d")
//	var errs pipelines.Errors
//	if errors.As(err, &errs) { for _, e := range errs { fmt.Println(e) } }
//
// Loading is strict: unknown fields, wrong types ("expected a duration such
// as 5s", "expected a list of strings"), duplicate keys, a cluster or
// pipeline name defined twice (in one file or across files), and
// checkpoints set in two files are errors. A field written with no value
// ("exclude:") counts as unset. YAML anchors, aliases and merge keys
// ("<<: *shared") work; top-level keys starting with "x-" are ignored, as
// a place to define shared settings once. Parse loads from memory; LoadEnv
// takes another environment; (*Config).Normalize defaults and validates a
// configuration built in code.
//
// # Values
//
//   - ${NAME} in a string field is replaced by the environment variable
//     NAME; ${file:PATH} by the trimmed content of PATH. An unset variable
//     or unreadable file is an error at the value's position. "$${" writes a
//     literal "${"; a "$" elsewhere is kept. ${...} in a typed field
//     (duration, size, mode, start, boolean) is an error.
//   - Relative paths (${file:...}, tls files, checkpoints.dir) are relative
//     to the configuration file that holds them.
//   - A bootstrap entry may hold several comma-separated addresses, so one
//     variable can carry a whole list; Load returns one address per entry.
//   - Durations are Go durations: 250ms, 5s, 1m30s. Sizes are bytes: 4096,
//     512B, 50MiB (KiB, MiB, GiB, TiB and K, M, G, T are powers of 1024),
//     1GB (KB, MB, GB, TB are powers of 1000); units ignore case.
//   - start is earliest, latest or an RFC 3339 time.
//   - Secret values (sasl.password) print as "******" through fmt, slog,
//     YAML, JSON and text encoders; Reveal returns the value.
//
// # Defaults (defaults.go, the one place they are set)
//
// client_id "strait"; checkpoints store kafka, topic __strait_checkpoints,
// interval 1s; per pipeline rename "{topic}", mode batch, start earliest,
// "__.*" always added to topics.exclude, sync topic_configs and partitions
// true, sync interval 5s, refresh 10s, producer acks all, compression none,
// linger 0, batch_size 1MiB, limits buffer 64MiB, bytes_per_second 0
// (unlimited), loop_protection false, audit bucket 1m and sample 0.01
// (the continuous audit reads back 1% of the records). workers (only when the section is
// written; `workers: {}` takes every default): group DefaultGroup(c),
// cluster the first pipeline's destination, session_timeout 10s,
// rebalance_timeout 60s, heartbeat_interval 3s (Kafka Connect's values).
// `strait validate --print` shows them.
//
// # Workers
//
// Without a workers: section a daemon runs every pipeline alone. With one,
// several daemons started with the same configuration join the Kafka group
// workers.group on the cluster workers.cluster and share the pipelines'
// partitions (mirror/assign computes who owns what). The default group id
// is "strait-" and 12 hex digits of a SHA-256 over the sorted pipeline
// names, each with its source and destination cluster: daemons with the
// same pipelines meet without a setting, and adding or renaming a pipeline
// starts a new group; write a group id to keep one across such changes.
// (*Config).Fingerprint hashes what the daemons of a group must agree on
// (pipelines, the used clusters' names and bootstrap addresses, the
// checkpoint store and topic, the group id and cluster; never secrets,
// client ids, TLS files or timeouts); the leader gives no work to a daemon
// whose fingerprint differs from its own.
//
// # Checks
//
// Cluster names and pipeline names hold letters, digits, ".", "_", "-".
// Bootstrap addresses are host:port. tls cert_file and key_file go
// together. sasl mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, with a
// username and a password. A pipeline's source and destination are defined
// clusters and differ. topics.include is not empty; include, exclude and
// sync.groups expressions compile; they are anchored (they match whole
// names: "orders" does not match "orders-old"). The rename template uses
// only {topic} and {source} and characters Kafka allows; the names it makes
// from sample topics of the include expressions are valid topic names, not
// internal ("__") ones; without {topic} only a single literal include is
// allowed. Batch mode needs acks all and compression none (it forwards the
// source's batches as they are). Positive intervals and batch size; the
// buffer holds at least one batch. Two pipelines must not write the same
// topic of the same cluster (the mirror must be a destination partition's
// only writer). A custom checkpoints.topic is neither mirrored nor written
// by a pipeline.
//
// Loops: a configuration in which a record can come back to the cluster it
// was first written on (east→west and west→east with identical names, a
// longer cycle, or renames that keep growing) is refused unless every
// pipeline on the cycle sets loop_protection: true. That is the user's
// statement that the cycle is intended; the engine then keeps records from
// echoing: record mode stamps each copy with checkpoint.ProvenanceHeader
// ("<origin cluster>/<pipeline>") and does not copy a record back to its
// origin cluster; batch mode skips source batches written by the producer
// ids its own pipelines used on that cluster.
//
// workers: the group id holds 1 to 249 letters, digits, ".", "_", "-";
// the cluster is defined; the three durations are positive, at least 1ms
// and fit JoinGroup's int32 milliseconds; heartbeat_interval is shorter
// than session_timeout (a daemon would lose its membership between two
// heartbeats); the section is written in one file only.
//
// Warnings (Config.Warnings, printed by validate, never failing a load): a
// cluster no pipeline (or workers) uses, sasl PLAIN without tls (the
// password crosses the network in clear), tls insecure_skip_verify,
// workers.heartbeat_interval above a third of session_timeout (Kafka's
// advice), a session_timeout outside 6s to 30m (what brokers accept by
// default), and workers with checkpoints store: file (progress on one host
// does not follow a partition that moves, unless the folder is shared).
//
// Overlap, loop and rename checks that depend on real topic names are made
// on sample names derived from the include expressions (each optional part
// left out and put in once); `strait plan` repeats them on the topics that
// exist.
//
// # Helpers
//
// (*Pipeline).Matches(topic) (include and not exclude; "__" topics never),
// (*Pipeline).DestTopic(source) (the rename template), (*Pipeline).SyncsGroup,
// (*Config).Cluster(name), (*Config).Pipeline(name), (*Config).Fingerprint,
// DefaultGroup,
// (*Cluster).ClientOptions() (franz-go seeds, client id, TLS, SASL),
// CheckTopicName, Duration.D, Size (an int64 of bytes), Start.
//
// Plan connects read-only to the clusters of a configuration and reports,
// per pipeline, the topics it would mirror now (see plan.go); WriteYAML
// prints a configuration as `strait validate --print` does.
//
// # Errors
//
// ErrInvalid (every *Error of a configuration), ErrRead (the path cannot
// be read), ErrTopicName (CheckTopicName), ErrTLS and ErrSASL
// (ClientOptions: unreadable certificate files, unknown mechanism).
package pipelines
