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
	brokers, partitions int
	fsync, autoCreate   bool
	tlsCert, tlsKey     string
	saslUsers           map[string]string
	offsetsRetention    time.Duration
	minSession          time.Duration
	verbose             bool
}

func brokerFlags(o *brokerOpts) *flag.FlagSet {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", "", "data folder (required)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:9092", "first broker's address; broker i listens on port+i (port 0: a free run of ports)")
	fs.IntVar(&o.brokers, "brokers", 3, "number of brokers")
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
	if o.minSession <= 0 {
		return fmt.Errorf("%w: --group-min-session-timeout must be positive", errUsage)
	}
	if o.offsetsRetention == 0 {
		return fmt.Errorf("%w: --offsets-retention must be positive, or negative to keep offsets forever", errUsage)
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
		Brokers:                o.brokers,
		Partitions:             int32(o.partitions),
		Fsync:                  o.fsync,
		AutoCreateTopics:       o.autoCreate,
		TLS:                    tlsCfg,
		SASLUsers:              o.saslUsers,
		OffsetsRetention:       o.offsetsRetention,
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
