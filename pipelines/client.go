package pipelines

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// ClientOptions are the franz-go options that reach the cluster: seed
// brokers, client id, TLS and SASL. Callers add their own options (producer,
// consumer settings) after these.
func (c *Cluster) ClientOptions() ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(seeds(c.Bootstrap)...)}
	id := c.ClientID
	if id == "" {
		id = DefaultClientID
	}
	opts = append(opts, kgo.ClientID(id))
	if c.TLS != nil {
		cfg, err := c.TLS.Config()
		if err != nil {
			return nil, fmt.Errorf("cluster %q: %w", c.Name, err)
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if c.SASL != nil {
		m, err := c.SASL.SASLMechanism()
		if err != nil {
			return nil, fmt.Errorf("cluster %q: %w", c.Name, err)
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// Config builds the TLS client configuration: the CA file (else the system
// roots), the client certificate and key (mutual TLS), the server name and
// insecure_skip_verify.
func (t *TLS) Config() (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // the user asked for it by name
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: ca_file: %v", ErrTLS, unwrapPath(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: ca_file %s: no PEM certificate in it", ErrTLS, t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: cert_file/key_file: %v", ErrTLS, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// SASLMechanism builds the franz-go SASL mechanism (PLAIN, SCRAM-SHA-256 or
// SCRAM-SHA-512). The password is revealed only here.
func (s *SASL) SASLMechanism() (sasl.Mechanism, error) {
	user, pass := s.Username, s.Password.Reveal()
	switch s.Mechanism {
	case "PLAIN", "plain":
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
	case "SCRAM-SHA-256", "scram-sha-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512", "scram-sha-512":
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("%w: unknown mechanism %q; expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", ErrSASL, s.Mechanism)
}
