package brokerd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"strait/brokerd/group"
	"strait/brokerd/plog"
	"strait/brokerd/txn"
)

// Config configures an embedded cluster. Zero values take the defaults
// noted on each field.
type Config struct {
	// Dir holds everything the cluster stores (required). A restart on
	// the same Dir finds every topic, config and record again.
	Dir string
	// Listen is the first broker's address (default "127.0.0.1:0").
	// Broker i listens on port+i; with port 0 the first port is any free
	// one and the others follow it. A restart may pass the previous
	// Addrs()[0] to get every previous address back.
	Listen string
	// Advertise, when set, holds one host:port per broker: the address
	// Metadata, FindCoordinator and DescribeCluster give clients for it
	// instead of where it listens (Kafka's advertised.listeners), for
	// brokers reached through a proxy or NAT.
	Advertise []string
	// Brokers is the number of brokers (default 3).
	Brokers int
	// Partitions is the partition count for auto-created topics and for
	// CreateTopics with NumPartitions -1 (default 3).
	Partitions int32
	// Fsync makes every acknowledged append reach stable storage first.
	Fsync bool
	// AutoCreateTopics lets Metadata requests that allow it create
	// missing topics (Kafka's auto.create.topics.enable).
	AutoCreateTopics bool
	// CopyFetch forces the copy path for fetch data (read into memory,
	// then write) instead of sendfile; for benchmarks and tests.
	CopyFetch bool
	// NoFetchWarm skips loading a fetch's cold pages before its response
	// is queued (a debugging switch for the isolation benchmark: the
	// writer's sendfile then waits on the disk itself).
	NoFetchWarm bool
	// NoColdWait makes a fetch read cold data directly (a pread that
	// holds its thread while the disk works) instead of waiting for it on
	// a timer (see awaitCold); a debugging switch for the isolation
	// benchmark, which measures the difference.
	NoColdWait bool
	// TLS, when set, makes every listener speak TLS. Fetch data then takes
	// the copy path: sendfile cannot encrypt.
	TLS *tls.Config
	// SASLUsers, when not empty, requires SASL authentication (PLAIN,
	// SCRAM-SHA-256 or SCRAM-SHA-512) with these user → password pairs
	// before any request but ApiVersions.
	SASLUsers map[string]string
	// MaxRequestBytes bounds one request (socket.request.max.bytes,
	// default 100 MiB); a larger one closes the connection.
	MaxRequestBytes int32
	// MaxOpenFiles bounds segment files open at once (default 1024).
	MaxOpenFiles int
	// MaintainInterval is how often retention and compaction run
	// (default 5s).
	MaintainInterval time.Duration
	// OffsetsRetention is how long committed offsets outlive a consumer
	// group's members (Kafka's offsets.retention.minutes; see package
	// group): 0 is Kafka's default of 7 days, negative keeps offsets until
	// the group is deleted.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is how often expired offsets are
	// looked for (Kafka's offsets.retention.check.interval.ms, default
	// 10 minutes).
	OffsetsRetentionCheckInterval time.Duration
	// GroupMinSessionTimeout is the shortest session a consumer group
	// member may ask for (Kafka's group.min.session.timeout.ms; 0 is
	// Kafka's default of 6 s). Tests that expire members quickly set it
	// lower.
	GroupMinSessionTimeout time.Duration
	// FetchSessionCacheSlots bounds each broker's incremental fetch
	// sessions (Kafka's max.incremental.fetch.session.cache.slots, default
	// 1000); negative turns sessions off, so every fetch is a full one.
	FetchSessionCacheSlots int
	// QuotaWindow is how far ahead of its quota a client may run (a
	// burst of one window's worth) before it is throttled; Kafka's
	// quota.window.size.seconds (default 1s). Quotas themselves are set
	// with AlterClientQuotas; none are set by default.
	QuotaWindow time.Duration
	// Authorizer turns on ACL checks of every request (off by default:
	// everything is allowed and the ACL requests answer
	// SECURITY_DISABLED). See acl.go.
	Authorizer bool
	// SuperUsers are principals ("User:admin") the authorizer allows
	// everything (Kafka's super.users).
	SuperUsers []string
	// AllowEveryoneIfNoACL allows an operation on a resource that no ACL
	// matches (allow.everyone.if.no.acl.found; default false).
	AllowEveryoneIfNoACL bool
	// Logger receives the broker's log lines (default: discarded).
	Logger *slog.Logger
	// Limits bounds connections and what clients can make brokers hold
	// (limits.go).
	Limits Limits
	// TxnMaxTimeout is the longest transaction timeout a producer may ask
	// for (Kafka's transaction.max.timeout.ms, default 15 minutes).
	TxnMaxTimeout time.Duration
}

// withDefaults returns cfg with every unset field given its documented
// default. It is the one place defaults live.
func (cfg Config) withDefaults() Config {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Brokers == 0 {
		cfg.Brokers = 3
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 3
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 100 << 20
	}
	if cfg.MaxOpenFiles <= 0 {
		cfg.MaxOpenFiles = 1024
	}
	if cfg.MaintainInterval <= 0 {
		cfg.MaintainInterval = 5 * time.Second
	}
	if cfg.TxnMaxTimeout <= 0 {
		cfg.TxnMaxTimeout = 15 * time.Minute
	}
	if cfg.FetchSessionCacheSlots == 0 {
		cfg.FetchSessionCacheSlots = 1000
	}
	if cfg.QuotaWindow <= 0 {
		cfg.QuotaWindow = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg.Limits = cfg.Limits.withDefaults(descriptorLimit())
	return cfg
}

// validate checks a config that withDefaults has filled; every error wraps
// ErrConfig.
func (cfg Config) validate() error {
	if cfg.Dir == "" {
		return fmt.Errorf("%w: Dir is required", ErrConfig)
	}
	if cfg.Brokers < 0 || cfg.Brokers > 1000 {
		return fmt.Errorf("%w: Brokers %d out of range", ErrConfig, cfg.Brokers)
	}
	if cfg.Partitions < 0 {
		return fmt.Errorf("%w: Partitions %d out of range", ErrConfig, cfg.Partitions)
	}
	if len(cfg.Advertise) > 0 && len(cfg.Advertise) != cfg.Brokers {
		return fmt.Errorf("%w: Advertise has %d addresses for %d brokers", ErrConfig, len(cfg.Advertise), cfg.Brokers)
	}
	for i := range cfg.Advertise {
		if _, _, err := cfg.advertised(i); err != nil {
			return err
		}
	}
	_, _, err := cfg.listenAddr()
	return err
}

// advertised splits Advertise[i] into the host and port clients are told.
func (cfg Config) advertised(i int) (string, int32, error) {
	host, portStr, err := net.SplitHostPort(cfg.Advertise[i])
	if err != nil {
		return "", 0, fmt.Errorf("%w: Advertise %q: %w", ErrConfig, cfg.Advertise[i], err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || host == "" || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%w: Advertise %q: want host:port with a port in 1..65535", ErrConfig, cfg.Advertise[i])
	}
	return host, int32(port), nil
}

// listenAddr splits Listen into the host and the first broker's port,
// checking that every broker's port fits.
func (cfg Config) listenAddr() (host string, port int, err error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return "", 0, fmt.Errorf("%w: Listen %q: %w", ErrConfig, cfg.Listen, err)
	}
	port, err = strconv.Atoi(portStr)
	if err != nil || port < 0 || port+cfg.Brokers-1 > 65535 {
		return "", 0, fmt.Errorf("%w: Listen %q: bad port", ErrConfig, cfg.Listen)
	}
	return host, port, nil
}

// Cluster is a running set of brokers sharing one process and one
// metadata store.
//
// Lock order: Cluster.mu before partition.wmu; no lock is held across
// network I/O. Cluster.mu is held while cluster.json is rewritten (topic
// and config changes, one producer-id block per 1000 ids): rare, and it
// makes each metadata change and its persistence one atomic step.
type Cluster struct {
	cfg        Config
	log        *slog.Logger
	brokers    []*broker
	opts       plog.Options
	coord      *group.Coordinator
	journal    *journal
	txn        *txn.Coordinator
	txnJournal *journal // __transaction_state
	devnull    *os.File
	lock       *os.File // holds the Dir lock until Close
	addrs      []string // where broker i listens; its host and port are what it advertises
	quotas     *quotas
	authz      *authorizer // nil when Config.Authorizer is off

	// ctx ends when Close starts; connections and long polls watch it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	conns connCounter // open client connections, for Limits

	// idle holds, per broker, the long polls of quiet fetch sessions
	// (fetch_idle.go); made before any partition opens.
	idle []*idleWaiters

	sendfileBytes atomic.Int64
	copyBytes     atomic.Int64
	warmBytes     atomic.Int64
	coldWaits     atomic.Int64

	mu struct {
		sync.RWMutex
		meta   *metaState
		topics map[string]*topic
		// creating holds names whose partition folders are being made
		// or removed; CreateTopics answers TOPIC_ALREADY_EXISTS for them.
		creating map[string]bool
		// nextLeader rotates the first leader of each new topic so
		// partitions spread over brokers across topics too.
		nextLeader int32
		// pidNext is the next producer id to hand out.
		// Invariant: pidNext <= meta.ProducerIDMark.
		pidNext int64
		closed  bool
	}
}

type topic struct {
	name string
	// internal marks __consumer_offsets: listed in Metadata and readable,
	// but written only by the group coordinator's journal.
	internal bool
	// parts is replaced, never edited in place, when partitions are added,
	// so a reader holding the old slice under RLock stays consistent.
	parts   []*partition
	configs map[string]string // guarded by Cluster.mu
}

type partition struct {
	topic  string
	index  int32
	leader int32 // broker id serving it
	folder int32 // broker folder holding its data
	log    *plog.Log

	wmu     sync.Mutex
	waiters map[chan struct{}]struct{} // long polls to wake on append; guarded by wmu
	// idle is the leader's quiet long polls, also woken on append (nil
	// for the internal offsets partition).
	idle *idleWaiters
	// gone is set when the topic is deleted, so a fetch session holding
	// the partition looks it up again.
	gone atomic.Bool
}

// watch registers ch to be signalled on the next append.
func (p *partition) watch(ch chan struct{}) {
	p.wmu.Lock()
	if p.waiters == nil {
		p.waiters = make(map[chan struct{}]struct{})
	}
	p.waiters[ch] = struct{}{}
	p.wmu.Unlock()
}

func (p *partition) unwatch(ch chan struct{}) {
	p.wmu.Lock()
	delete(p.waiters, ch)
	p.wmu.Unlock()
}

// notify wakes every registered long poll; the channels have room for one
// signal, so a waiter already woken is not blocked on.
func (p *partition) notify() {
	p.wmu.Lock()
	for ch := range p.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
		delete(p.waiters, ch)
	}
	p.wmu.Unlock()
	p.idle.notify()
}

// Stats are counters for tests and benchmarks.
type Stats struct {
	SendfileBytes int64 // fetch record bytes sent with sendfile(2)
	CopyBytes     int64 // fetch record bytes sent through the copy path
	WarmedBytes   int64 // bytes not cached that were loaded before queuing
	ColdWaits     int64 // fetches that waited (on a timer) for cold data to be read

	FetchSessions        int64 // fetch sessions held now, over every broker
	FetchSessionsCreated int64 // fetch sessions opened
	FetchSessionsEvicted int64 // fetch sessions evicted to make room
	IncrementalFetches   int64 // fetches served within a session
}

// Start opens (or creates) the cluster in cfg.Dir and starts its brokers.
// It returns once every listener accepts connections. ctx bounds the
// start only; the cluster runs until Close.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	host, port, _ := cfg.listenAddr()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	meta, err := loadMeta(cfg.Dir)
	if err != nil {
		lock.Close()
		return nil, err
	}
	// Persist at once so the cluster ID is stable from the first start.
	if err := saveMeta(cfg.Dir, meta); err != nil {
		lock.Close()
		return nil, err
	}

	c := &Cluster{cfg: cfg, log: cfg.Logger, lock: lock}
	c.opts = plog.Options{Fsync: cfg.Fsync, Files: plog.NewFileCache(cfg.MaxOpenFiles), Logger: cfg.Logger}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.mu.meta = meta
	c.mu.topics = make(map[string]*topic)
	c.mu.creating = make(map[string]bool)
	c.mu.pidNext = meta.ProducerIDMark
	c.idle = newIdleWaiters(cfg.Brokers)

	fail := func(err error) (*Cluster, error) {
		c.shutdown()
		return nil, err
	}
	if c.devnull, err = os.OpenFile(os.DevNull, os.O_WRONLY, 0); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrConfig, err))
	}

	if c.quotas, err = loadQuotas(cfg.Dir, cfg.QuotaWindow); err != nil {
		return fail(err)
	}
	if cfg.Authorizer {
		if c.authz, err = loadAuthorizer(cfg.Dir, cfg); err != nil {
			return fail(err)
		}
	}

	names := make([]string, 0, len(meta.Topics))
	for name := range meta.Topics {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		mt := meta.Topics[name]
		t := &topic{name: name, configs: mt.Configs}
		if t.configs == nil {
			t.configs = map[string]string{}
		}
		for i, folder := range mt.Folders {
			p, err := c.openPartition(name, int32(i), folder, t.configs)
			if err != nil {
				return fail(err)
			}
			t.parts = append(t.parts, p)
		}
		c.mu.topics[name] = t
		c.mu.nextLeader += int32(len(mt.Folders))
	}

	if c.journal, err = openJournal(filepath.Join(cfg.Dir, "internal", offsetsTopic+"-0"), c.opts); err != nil {
		return fail(err)
	}
	c.mu.topics[offsetsTopic] = &topic{
		name:     offsetsTopic,
		internal: true,
		configs:  map[string]string{"cleanup.policy": "compact"},
		parts:    []*partition{{topic: offsetsTopic, folder: -1, log: c.journal.log}},
	}
	c.journal.part = c.mu.topics[offsetsTopic].parts[0]
	if c.coord, err = group.New(group.Config{
		Journal:                c.journal,
		Logger:                 cfg.Logger,
		OffsetsRetention:       cfg.OffsetsRetention,
		RetentionCheckInterval: cfg.OffsetsRetentionCheckInterval,
		MinSessionTimeout:      cfg.GroupMinSessionTimeout,
	}); err != nil {
		return fail(fmt.Errorf("%w: group coordinator: %w", ErrJournal, err))
	}
	if err := c.startTxn(); err != nil {
		return fail(err)
	}

	lns, err := listenConsecutive(ctx, host, port, cfg.Brokers)
	if err != nil {
		return fail(err)
	}
	for i, ln := range lns {
		tcp := ln.Addr().(*net.TCPAddr)
		if cfg.TLS != nil {
			ln = tls.NewListener(ln, cfg.TLS)
		}
		b := &broker{c: c, id: int32(i), ln: ln, sessions: newFetchSessions(cfg.FetchSessionCacheSlots)}
		b.mu.conns = make(map[*conn]struct{})
		b.host, b.port = host, int32(tcp.Port)
		if b.host == "" || b.host == "0.0.0.0" || b.host == "::" {
			b.host = "127.0.0.1"
		}
		c.addrs = append(c.addrs, b.addr())
		if len(cfg.Advertise) > 0 {
			b.host, b.port, _ = cfg.advertised(i) // validated
		}
		c.brokers = append(c.brokers, b)
	}
	for _, b := range c.brokers {
		c.goTracked(b.acceptLoop)
	}
	c.goTracked(c.maintainLoop)
	return c, nil
}

// listenConsecutive opens n listeners on ports port..port+n-1. With port
// 0 it picks a free first port and takes the next ones too, retrying
// elsewhere when one is taken, so a restart that passes the old first
// address gets every old address back.
func listenConsecutive(ctx context.Context, host string, port, n int) ([]net.Listener, error) {
	var lc net.ListenConfig
	closeAll := func(lns []net.Listener) {
		for _, ln := range lns {
			ln.Close()
		}
	}
	for attempt := 0; ; attempt++ {
		var lns []net.Listener
		first := port
		var err error
		for i := 0; i < n; i++ {
			p := first + i
			if port == 0 && i == 0 {
				p = 0
			}
			var ln net.Listener
			ln, err = lc.Listen(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(p)))
			if err != nil {
				err = fmt.Errorf("%w: %s: %v", ErrListen, net.JoinHostPort(host, strconv.Itoa(p)), err)
				break
			}
			if i == 0 {
				first = ln.Addr().(*net.TCPAddr).Port
				if first+n-1 > 65535 {
					ln.Close()
					err = fmt.Errorf("%w: no room for %d ports after %d", ErrListen, n, first)
					break
				}
			}
			lns = append(lns, ln)
		}
		if err == nil {
			return lns, nil
		}
		closeAll(lns)
		if port != 0 || attempt >= 50 {
			return nil, err
		}
	}
}

// lockDir takes an exclusive lock on dir, so two clusters (or processes)
// never share one folder. The kernel drops it when the process dies.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s is in use by another cluster: %v", ErrInUse, dir, err)
	}
	return f, nil
}

// goTracked starts fn as a goroutine Close waits for.
func (c *Cluster) goTracked(fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

func (c *Cluster) partitionDir(folder int32, topic string, index int32) string {
	return filepath.Join(c.cfg.Dir, fmt.Sprintf("broker-%d", folder), fmt.Sprintf("%s-%d", topic, index))
}

func (c *Cluster) openPartition(name string, index, folder int32, cfgs map[string]string) (*partition, error) {
	l, err := plog.Open(c.partitionDir(folder, name, index), c.logConfig(cfgs), c.opts)
	if err != nil {
		return nil, fmt.Errorf("brokerd: open %s-%d: %w", name, index, err)
	}
	leader := folder % int32(c.cfg.Brokers)
	return &partition{topic: name, index: index, folder: folder, leader: leader, log: l, idle: c.idle[leader]}, nil
}

// Addrs returns every broker's listening host:port, broker 0 first (not
// the advertised ones).
func (c *Cluster) Addrs() []string { return append([]string(nil), c.addrs...) }

// ClusterID returns the ID written on first start.
func (c *Cluster) ClusterID() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.mu.meta.ClusterID
}

// Stats returns the fetch counters.
func (c *Cluster) Stats() Stats {
	st := Stats{SendfileBytes: c.sendfileBytes.Load(), CopyBytes: c.copyBytes.Load(), WarmedBytes: c.warmBytes.Load(), ColdWaits: c.coldWaits.Load()}
	for _, b := range c.brokers {
		ss := b.sessions.stats()
		st.FetchSessions += ss.live
		st.FetchSessionsCreated += ss.created
		st.FetchSessionsEvicted += ss.evicted
		st.IncrementalFetches += ss.incremental
	}
	return st
}

// Close stops the brokers, waits for connections to end and closes every
// log cleanly. It is safe to call more than once.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	c.mu.Unlock()
	return c.shutdown()
}

func (c *Cluster) shutdown() error {
	c.cancel()
	for _, b := range c.brokers {
		b.ln.Close()
		b.closeConns()
	}
	c.wg.Wait()
	var errs []error
	// The transaction coordinator writes through the group coordinator:
	// it stops first.
	if c.txn != nil {
		errs = append(errs, c.txn.Close())
	}
	if c.coord != nil {
		errs = append(errs, c.coord.Close())
	}
	c.mu.Lock()
	for _, t := range c.mu.topics {
		if t.internal {
			continue // the journal closes its own log
		}
		for _, p := range t.parts {
			errs = append(errs, p.log.Close())
		}
	}
	c.mu.topics = map[string]*topic{}
	c.mu.Unlock()
	if c.journal != nil {
		errs = append(errs, c.journal.close())
	}
	if c.txnJournal != nil {
		errs = append(errs, c.txnJournal.close())
	}
	if c.devnull != nil {
		c.devnull.Close()
	}
	if c.lock != nil {
		c.lock.Close() // releases the flock
	}
	return errors.Join(errs...)
}

// maintainLoop runs retention and compaction on every log periodically,
// off the produce and fetch paths.
func (c *Cluster) maintainLoop() {
	t := time.NewTicker(c.cfg.MaintainInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case now := <-t.C:
			for _, p := range c.allPartitions() {
				if c.ctx.Err() != nil {
					return
				}
				if err := p.log.Maintain(now); err != nil && !errors.Is(err, plog.ErrClosed) {
					c.log.Warn("maintain", "topic", p.topic, "partition", p.index, "err", err)
				}
			}
		}
	}
}

func (c *Cluster) allPartitions() []*partition {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*partition
	for _, t := range c.mu.topics {
		out = append(out, t.parts...)
	}
	return out
}

// lookup returns the partition, or nil when the topic or partition does
// not exist; topicKnown reports whether the topic exists.
func (c *Cluster) lookup(topicName string, index int32) (p *partition, topicKnown bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := c.mu.topics[topicName]
	if t == nil {
		return nil, false
	}
	if index < 0 || int(index) >= len(t.parts) {
		return nil, true
	}
	return t.parts[index], true
}

// exists reports whether the partition exists.
func (c *Cluster) exists(topicName string, index int32) bool {
	p, _ := c.lookup(topicName, index)
	return p != nil
}

// coordinatorFor picks the broker that answers FindCoordinator for key.
func (c *Cluster) coordinatorFor(key string) *broker {
	h := fnv.New32a()
	h.Write([]byte(key))
	return c.brokers[int(h.Sum32()%uint32(len(c.brokers)))]
}

// allocProducerID hands out a never-used producer id, reserving a new block
// on disk when the current one is spent.
func (c *Cluster) allocProducerID() (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.pidNext >= c.mu.meta.ProducerIDMark {
		c.mu.meta.ProducerIDMark = c.mu.pidNext + producerIDBlock
		if err := saveMeta(c.cfg.Dir, c.mu.meta); err != nil {
			c.mu.meta.ProducerIDMark = c.mu.pidNext
			return 0, err
		}
	}
	id := c.mu.pidNext
	c.mu.pidNext++
	return id, nil
}
