package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"strait/brokerd"
	"strait/brokerd/group"
	"strait/internal/cli"
)

// brokerOpts are strait broker's flags.
type brokerOpts struct {
	dir, listen         string
	advertise           []string
	brokers, partitions int
	fsync, autoCreate   bool
	tlsCert, tlsKey     string
	saslUsers           map[string]string
	offsetsRetention    time.Duration
	minSession          time.Duration
	verbose             bool
	limits              brokerd.Limits
	maxRequest, unauth  int
	fetchMax, msgMax    int
	// Quotas and ACLs (brokerd/quota.go, brokerd/acl.go).
	authorizer, allowIfNoACL bool
	superUsers               []string
	quotaWindow              time.Duration
}

func brokerFlags(o *brokerOpts) *flag.FlagSet {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", "", "data folder (required)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:9092", "first broker's address; broker i listens on port+i (port 0: a free run of ports)")
	fs.IntVar(&o.brokers, "brokers", 3, "number of brokers")
	fs.Func("advertise", "host:port,... one per broker: the addresses clients are told in Metadata, as Kafka's advertised.listeners (default: where each listens)", func(v string) error {
		o.advertise = strings.Split(v, ",")
		return nil
	})
	fs.IntVar(&o.partitions, "partitions", 3, "default partition count for new topics")
	fs.BoolVar(&o.fsync, "fsync", false, "fsync every append before acknowledging it")
	fs.BoolVar(&o.autoCreate, "auto-create-topics", true, "create missing topics on Metadata requests that allow it")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate: serve TLS (with --tls-key)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key for --tls-cert")
	o.saslUsers = map[string]string{}
	fs.Func("sasl-user", "require SASL (PLAIN, SCRAM-SHA-256/512) and accept this user:password; repeatable", func(v string) error {
		user, pass, ok := strings.Cut(v, ":")
		if !ok || user == "" {
			return fmt.Errorf("want user:password, got %q", v)
		}
		o.saslUsers[user] = pass
		return nil
	})
	fs.DurationVar(&o.offsetsRetention, "offsets-retention", 7*24*time.Hour, "keep a group's committed offsets this long after it empties (or after each commit, without members); negative keeps them forever")
	lim := &o.limits
	fs.IntVar(&o.maxRequest, "max-request-bytes", 100<<20, "largest request accepted (Kafka's socket.request.max.bytes)")
	fs.IntVar(&lim.MaxConnections, "max-connections", 0, "open connections over all brokers (Kafka's max.connections); 0: 10000 or half the descriptor limit, negative: no limit")
	fs.IntVar(&lim.MaxConnectionsPerIP, "max-connections-per-ip", 0, "open connections from one client address (Kafka's max.connections.per.ip); 0: 1000, negative: no limit")
	fs.DurationVar(&lim.IdleTimeout, "idle-timeout", 0, "close connections idle this long (Kafka's connections.max.idle.ms); 0: 10m, negative: never")
	fs.DurationVar(&lim.FrameTimeout, "frame-timeout", 0, "time to send the rest of a request once it has started; 0: 30s, negative: none")
	fs.DurationVar(&lim.SASLTimeout, "sasl-timeout", 0, "time from connect to complete SASL authentication; 0: 30s, negative: none")
	fs.IntVar(&o.unauth, "max-unauth-request-bytes", 0, "largest request before SASL authentication (Kafka's sasl.server.max.receive.size); 0: 512 KiB")
	fs.IntVar(&o.fetchMax, "fetch-max-bytes", 0, "cap on a fetch response's record bytes (Kafka's fetch.max.bytes); 0: 55 MiB")
	fs.IntVar(&o.msgMax, "message-max-bytes", 0, "largest record batch unless a topic's max.message.bytes says otherwise (Kafka's message.max.bytes); 0: 1048588")
	fs.IntVar(&lim.MaxMetadataTopics, "max-metadata-topics", 0, "topic names one Metadata request may list; 0: 100000")
	fs.Int64Var(&lim.MaxDecodedRequestBytes, "max-decoded-request-bytes", 0, "memory one request may decode to, checked before decoding; 0: 128 MiB")
	fs.IntVar(&lim.MaxTransactionalIDs, "max-transactional-ids", 0, "transactional ids the transaction coordinator holds; InitProducerId for a new one beyond it gets POLICY_VIOLATION; 0: 100000, negative: no limit")
	fs.BoolVar(&o.authorizer, "authorizer", false, "check every request against the ACLs (managed with CreateAcls/DeleteAcls)")
	fs.Func("super-user", "a principal (User:NAME) the authorizer allows everything; repeatable", func(v string) error {
		if !strings.HasPrefix(v, "User:") || len(v) == len("User:") {
			return fmt.Errorf("want User:NAME, got %q", v)
		}
		o.superUsers = append(o.superUsers, v)
		return nil
	})
	fs.BoolVar(&o.allowIfNoACL, "allow-everyone-if-no-acl", false, "with --authorizer, allow operations on resources no ACL matches")
	fs.DurationVar(&o.quotaWindow, "quota-window", time.Second, "how far ahead of its quota a client may run before it is throttled")
	fs.DurationVar(&o.minSession, "group-min-session-timeout", group.DefaultMinSessionTimeout, "shortest session a consumer group member may ask for (Kafka's group.min.session.timeout.ms)")
	fs.BoolVar(&o.verbose, "v", false, "log at debug level")
	return fs
}

// runBroker runs N embedded brokers until SIGTERM or SIGINT, then shuts
// them down cleanly (exit 0). It prints exactly one line on stdout,
// "ready <addr>,<addr>,...", once every broker accepts connections; logs go
// to stderr.
func runBroker(args []string) error {
	var o brokerOpts
	if _, err := cli.Parse(brokerFlags(&o), args, 0); err != nil {
		return err
	}
	if o.dir == "" {
		return fmt.Errorf("%w: --dir is required", errUsage)
	}
	if o.brokers < 1 || o.brokers > 1000 {
		return fmt.Errorf("%w: --brokers must be between 1 and 1000", errUsage)
	}
	if o.partitions < 1 {
		return fmt.Errorf("%w: --partitions must be at least 1", errUsage)
	}
	if o.advertise != nil && len(o.advertise) != o.brokers {
		return fmt.Errorf("%w: --advertise names %d addresses for %d brokers", errUsage, len(o.advertise), o.brokers)
	}
	for name, v := range map[string]int{"max-request-bytes": o.maxRequest, "max-unauth-request-bytes": o.unauth, "fetch-max-bytes": o.fetchMax, "message-max-bytes": o.msgMax} {
		if v < 0 || v > 1<<31-1 {
			return fmt.Errorf("%w: --%s must be between 0 and 2147483647", errUsage, name)
		}
	}
	lim := o.limits
	lim.MaxUnauthRequestBytes, lim.FetchMaxBytes, lim.MessageMaxBytes = int32(o.unauth), int32(o.fetchMax), int32(o.msgMax)
	if o.minSession <= 0 {
		return fmt.Errorf("%w: --group-min-session-timeout must be positive", errUsage)
	}
	if o.offsetsRetention == 0 {
		return fmt.Errorf("%w: --offsets-retention must be positive, or negative to keep offsets forever", errUsage)
	}
	if o.quotaWindow <= 0 {
		return fmt.Errorf("%w: --quota-window must be positive", errUsage)
	}
	if !o.authorizer && (len(o.superUsers) > 0 || o.allowIfNoACL) {
		return fmt.Errorf("%w: --super-user and --allow-everyone-if-no-acl need --authorizer", errUsage)
	}
	var tlsCfg *tls.Config
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return fmt.Errorf("%w: --tls-cert and --tls-key go together", errUsage)
	}
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return fmt.Errorf("broker: TLS key pair: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	c, err := brokerd.Start(ctx, brokerd.Config{
		Dir:                    o.dir,
		Listen:                 o.listen,
		Advertise:              o.advertise,
		Brokers:                o.brokers,
		Partitions:             int32(o.partitions),
		Fsync:                  o.fsync,
		AutoCreateTopics:       o.autoCreate,
		TLS:                    tlsCfg,
		SASLUsers:              o.saslUsers,
		OffsetsRetention:       o.offsetsRetention,
		MaxRequestBytes:        int32(o.maxRequest),
		Limits:                 lim,
		Authorizer:             o.authorizer,
		SuperUsers:             o.superUsers,
		AllowEveryoneIfNoACL:   o.allowIfNoACL,
		QuotaWindow:            o.quotaWindow,
		GroupMinSessionTimeout: o.minSession,
		Logger:                 logger,
	})
	if err != nil {
		return err
	}
	addrs := c.Addrs()
	// Listeners accept as soon as Start returns; dialing each one proves it
	// before the ready line promises it (a TCP connect, also under TLS).
	for _, a := range addrs {
		conn, err := net.DialTimeout("tcp", a, 5*time.Second)
		if err != nil {
			c.Close()
			return fmt.Errorf("broker %s not accepting: %w", a, err)
		}
		conn.Close()
	}
	fmt.Printf("ready %s\n", strings.Join(addrs, ","))
	<-ctx.Done()
	logger.Info("shutting down")
	if err := c.Close(); err != nil && !errors.Is(err, brokerd.ErrClosed) {
		return err
	}
	return nil
}
