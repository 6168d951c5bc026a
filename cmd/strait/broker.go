package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"strait/brokerd"
)

// runBroker runs N embedded brokers until SIGTERM or SIGINT, then shuts
// them down cleanly (exit 0). It prints exactly one line on stdout,
// "ready <addr>,<addr>,...", once every broker accepts connections; logs go
// to stderr.
func runBroker(args []string) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("dir", "", "data folder (required)")
	listen := fs.String("listen", "127.0.0.1:9092", "first broker's address; broker i listens on port+i (port 0: a free run of ports)")
	brokers := fs.Int("brokers", 3, "number of brokers")
	partitions := fs.Int("partitions", 3, "default partition count for new topics")
	fsync := fs.Bool("fsync", false, "fsync every append before acknowledging it")
	autoCreate := fs.Bool("auto-create-topics", true, "create missing topics on Metadata requests that allow it")
	tlsCert := fs.String("tls-cert", "", "PEM certificate: serve TLS (with --tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key for --tls-cert")
	saslUsers := map[string]string{}
	fs.Func("sasl-user", "require SASL (PLAIN, SCRAM-SHA-256/512) and accept this user:password; repeatable", func(v string) error {
		user, pass, ok := strings.Cut(v, ":")
		if !ok || user == "" {
			return fmt.Errorf("want user:password, got %q", v)
		}
		saslUsers[user] = pass
		return nil
	})
	offsetsRetention := fs.Duration("offsets-retention", 7*24*time.Hour, "keep a group's committed offsets this long after it empties (or after each commit, without members); negative keeps them forever")
	var lim brokerd.Limits
	maxRequest := fs.Int("max-request-bytes", 100<<20, "largest request accepted (Kafka's socket.request.max.bytes)")
	fs.IntVar(&lim.MaxConnections, "max-connections", 0, "open connections over all brokers (Kafka's max.connections); 0: 10000 or half the descriptor limit, negative: no limit")
	fs.IntVar(&lim.MaxConnectionsPerIP, "max-connections-per-ip", 0, "open connections from one client address (Kafka's max.connections.per.ip); 0: 1000, negative: no limit")
	fs.DurationVar(&lim.IdleTimeout, "idle-timeout", 0, "close connections idle this long (Kafka's connections.max.idle.ms); 0: 10m, negative: never")
	fs.DurationVar(&lim.FrameTimeout, "frame-timeout", 0, "time to send the rest of a request once it has started; 0: 30s, negative: none")
	fs.DurationVar(&lim.SASLTimeout, "sasl-timeout", 0, "time from connect to complete SASL authentication; 0: 30s, negative: none")
	unauth := fs.Int("max-unauth-request-bytes", 0, "largest request before SASL authentication (Kafka's sasl.server.max.receive.size); 0: 512 KiB")
	fetchMax := fs.Int("fetch-max-bytes", 0, "cap on a fetch response's record bytes (Kafka's fetch.max.bytes); 0: 55 MiB")
	messageMax := fs.Int("message-max-bytes", 0, "largest record batch unless a topic's max.message.bytes says otherwise (Kafka's message.max.bytes); 0: 1048588")
	fs.IntVar(&lim.MaxMetadataTopics, "max-metadata-topics", 0, "topic names one Metadata request may list; 0: 100000")
	verbose := fs.Bool("v", false, "log at debug level")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "usage: strait broker --dir DIR [flags]")
		fs.SetOutput(os.Stderr)
		fs.PrintDefaults()
		return nil
	} else if err != nil {
		return fmt.Errorf("%w: %v (flags: --dir DIR [--listen ADDR] [--brokers N] [--partitions P] [--fsync] [--tls-cert F --tls-key F] [--sasl-user U:P]... [--offsets-retention DURATION] [limits: --max-connections N ...; see --help])", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *dir == "" {
		return fmt.Errorf("%w: --dir is required", errUsage)
	}
	if *brokers < 1 || *brokers > 1000 {
		return fmt.Errorf("%w: --brokers must be between 1 and 1000", errUsage)
	}
	if *partitions < 1 {
		return fmt.Errorf("%w: --partitions must be at least 1", errUsage)
	}
	for name, v := range map[string]int{"max-request-bytes": *maxRequest, "max-unauth-request-bytes": *unauth, "fetch-max-bytes": *fetchMax, "message-max-bytes": *messageMax} {
		if v < 0 || v > 1<<31-1 {
			return fmt.Errorf("%w: --%s must be between 0 and 2147483647", errUsage, name)
		}
	}
	lim.MaxUnauthRequestBytes, lim.FetchMaxBytes, lim.MessageMaxBytes = int32(*unauth), int32(*fetchMax), int32(*messageMax)
	if *offsetsRetention == 0 {
		return fmt.Errorf("%w: --offsets-retention must be positive, or negative to keep offsets forever", errUsage)
	}
	var tlsCfg *tls.Config
	if (*tlsCert == "") != (*tlsKey == "") {
		return fmt.Errorf("%w: --tls-cert and --tls-key go together", errUsage)
	}
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return fmt.Errorf("broker: TLS key pair: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	c, err := brokerd.Start(ctx, brokerd.Config{
		Dir:              *dir,
		Listen:           *listen,
		Brokers:          *brokers,
		Partitions:       int32(*partitions),
		Fsync:            *fsync,
		AutoCreateTopics: *autoCreate,
		TLS:              tlsCfg,
		SASLUsers:        saslUsers,
		OffsetsRetention: *offsetsRetention,
		MaxRequestBytes:  int32(*maxRequest),
		Limits:           lim,
		Logger:           logger,
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
