// Package brokerd is strait's Kafka-protocol broker: N brokers in one
// process, each with its own listener and data folder, serving real Kafka
// clients (franz-go, librdkafka/kcat, …) from a durable segmented log
// (package plog) with a zero-copy fetch path.
//
// # Embedding
//
//	c, err := brokerd.Start(ctx, brokerd.Config{
//		Dir:              t.TempDir(),   // required; a restart on it keeps everything
//		Listen:           "127.0.0.1:0", // broker i listens on port+i; port 0: a free run of ports
//		Brokers:          3,             // default 3
//		Partitions:       3,             // default for auto-created topics and NumPartitions -1
//		Fsync:            false,         // fsync before every acknowledgement
//		AutoCreateTopics: true,          // Metadata may create missing topics
//		CopyFetch:        false,         // force the copy path instead of sendfile
//		MaxRequestBytes:  100 << 20,     // default; larger requests close the connection
//		TLS:              nil,           // a *tls.Config serves TLS (fetches then copy)
//		SASLUsers:        nil,           // user → password: require SASL PLAIN/SCRAM
//		Logger:           slog.Default(),
//	})
//	defer c.Close()
//	cl, _ := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...))
//
// Start returns once every listener accepts connections. Addrs lists the
// brokers' host:port, broker 0 first (node ids are 0..N-1); ClusterID is
// the id written on first start; Stats returns the fetch counters
// (bytes sent with sendfile, copied, warmed; fetch sessions held, opened,
// evicted, incremental fetches served); Close shuts everything down
// cleanly and may be called more than once. Errors wrap the sentinels in
// errors.go (ErrConfig, ErrMeta, ErrListen, …).
//
// # On disk
//
//	DIR/lock                         flock held while a cluster runs: a
//	                                 second Start fails with ErrInUse
//	DIR/cluster.json                 cluster id, producer-id mark, topics
//	                                 (partition → broker folder, configs);
//	                                 rewritten atomically on every change
//	DIR/broker-<i>/<topic>-<p>/      a partition's plog folder, in the
//	                                 folder of the broker that leads it
//	DIR/internal/__consumer_offsets-0/  the group coordinator's compacted
//	                                 journal, listed as an internal topic
//	DIR/quotas.json                  client quotas (AlterClientQuotas)
//	DIR/acls.json                    ACL bindings (CreateAcls, DeleteAcls)
//
// Partition p of a new topic is led by broker (k+p) mod N, k rotating over
// topics, so leaders spread round-robin; the assignment is stored, so a
// restart serves every partition from the same broker. Replication factor
// is 1.
//
// # Connections
//
// Each connection has a reader and a writer goroutine. The reader reads
// one frame (size, then the request header decoded once with kbin, the
// body with kmsg), handles it, and queues the response; so one request is
// processed at a time and responses leave in request order. The writer
// batches queued byte parts with net.Buffers (writev) and sends fetch
// record bytes with sendfile(2) from the partition's segment files; no lock
// is held across network I/O. A frame above MaxRequestBytes, a truncated or
// malformed frame, or an unknown key closes the connection with a log
// line; an unsupported ApiVersions version gets UNSUPPORTED_VERSION with
// the v0 body, as Kafka does. A panic in a handler is recovered, logged and
// closes that connection only. Config.Limits bounds what clients can make
// the broker hold: frame buffers that grow only as bytes arrive, a small
// frame limit and no decoding but ApiVersions and SASL before SASL
// authentication, connection counts, idle, frame and SASL deadlines, and
// fetch.max.bytes and message.max.bytes as Kafka has them (limits.go).
//
// # APIs
//
// One file per key, each opening with the versions served, the behaviour
// and what is not supported: Produce, Fetch, ListOffsets, Metadata,
// FindCoordinator, ApiVersions, CreateTopics, DeleteTopics, DeleteRecords,
// InitProducerId, OffsetForLeaderEpoch, DescribeConfigs, AlterConfigs, CreatePartitions,
// IncrementalAlterConfigs, DescribeCluster; the group keys (package group)
// go to one cluster-wide group.Coordinator; SaslHandshake and
// SaslAuthenticate (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) when
// Config.SASLUsers is set. Fetch sessions (KIP-227) are served from Fetch
// v7, each broker caching up to Config.FetchSessionCacheSlots of them (see
// fetch_session.go). No transactions, no topic IDs. With Config.TLS every listener serves TLS, and fetch data takes the
// copy path (sendfile cannot encrypt).
//
// # Quotas and ACLs
//
// Client quotas (quota.go) are Kafka's: bytes and request time per user
// and/or client id, answered with throttle_time_ms and a muted connection
// (KIP-219). With Config.Authorizer every request is checked against
// Kafka-style ACLs (acl.go, acl_groups.go), super users and deny-wins
// included; off, nothing is checked.
//
// # Cold reads
//
// A fetch of data that is not in the page cache never holds a thread
// while the disk works: the handler asks the kernel to read the range in
// the background (plog.Log.Advise, posix_fadvise WILLNEED) and waits on a
// timer until mincore reports it resident (awaitCold in 01_fetch.go),
// then reads batch headers and warms what is left before queuing the
// response, so the writer's sendfile never waits on the disk either. A
// goroutine blocked in a syscall keeps its thread and its scheduler slot
// until the runtime's monitor takes the slot back, which can take up to
// 10 ms; with a few cold readers on a small machine every slot can be
// held at once and every other connection waits. strait bench isolation
// measures it.
//
// # Background work
//
// One loop per cluster calls plog's Maintain on every log (retention,
// compaction) every Config.MaintainInterval; Close stops it.
package brokerd
