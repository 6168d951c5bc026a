package pipelines

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// listTopics connects with the cluster's client options and lists topics,
// giving up after a few seconds.
func listTopics(t *testing.T, cl *Cluster) (kadm.TopicDetails, error) {
	t.Helper()
	opts, err := cl.ClientOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.RetryTimeout(3*time.Second))
	c, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return kadm.NewClient(c).ListTopics(ctx)
}

// oneCluster loads a configuration whose cluster "c" has the given YAML
// body, with a second cluster so that the pipeline is valid.
func oneCluster(t *testing.T, dir, body string) *Cluster {
	t.Helper()
	cfgFile := filepath.Join(dir, "strait.yaml")
	yaml := "clusters:\n  c:\n" + body + "  d: {bootstrap: [\"127.0.0.1:1\"]}\n" +
		"pipelines:\n  - {name: p, source: c, destination: d, topics: {include: [x]}}\n"
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(cfgFile)
	if err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	return cfg.Cluster("c")
}

func TestClientOptionsSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser(mech, "mirror", "pa$$ word"), kfake.SeedTopics(2, "orders"))
			if err != nil {
				t.Fatal(err)
			}
			defer kc.Close()
			t.Setenv("TEST_SASL_PASSWORD", "pa$$ word")
			body := "    bootstrap: [\"" + strings.Join(kc.ListenAddrs(), ",") + "\"]\n" +
				"    sasl: {mechanism: " + strings.ToLower(mech) + ", username: mirror, password: \"${TEST_SASL_PASSWORD}\"}\n"
			cl := oneCluster(t, t.TempDir(), body)
			topics, err := listTopics(t, cl)
			if err != nil {
				t.Fatalf("list topics with SASL %s: %v", mech, err)
			}
			if len(topics["orders"].Partitions) != 2 {
				t.Fatalf("topics: %v", topics.Names())
			}
			cl.SASL.Password = "wrong"
			if _, err := listTopics(t, cl); err == nil {
				t.Fatalf("a wrong password was accepted")
			}
		})
	}
}

// TestClientOptionsTLS runs a TLS cluster that requires client
// certificates, and reaches it with ca_file, cert_file and key_file given
// relative to the configuration file.
func TestClientOptionsTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	serverCert := newLeaf(t, ca, caKey, "server", x509.ExtKeyUsageServerAuth)
	clientCert := newLeaf(t, ca, caKey, "client", x509.ExtKeyUsageClientAuth)
	writePEM(t, filepath.Join(dir, "client.pem"), "CERTIFICATE", clientCert.Certificate[0])
	der, err := x509.MarshalECPrivateKey(clientCert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "client-key.pem"), "EC PRIVATE KEY", der)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "payments"), kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	addr := kc.ListenAddrs()[0]

	cl := oneCluster(t, dir, "    bootstrap: [\""+addr+"\"]\n    tls: {ca_file: ca.pem, cert_file: client.pem, key_file: client-key.pem, server_name: localhost}\n")
	if cl.TLS.CAFile != filepath.Join(dir, "ca.pem") {
		t.Errorf("ca_file not resolved against the configuration's folder: %s", cl.TLS.CAFile)
	}
	topics, err := listTopics(t, cl)
	if err != nil {
		t.Fatalf("list topics over mutual TLS: %v", err)
	}
	if len(topics["payments"].Partitions) != 3 {
		t.Fatalf("topics: %v", topics.Names())
	}

	// Without the client certificate the server refuses the handshake.
	noCert := oneCluster(t, dir, "    bootstrap: [\""+addr+"\"]\n    tls: {ca_file: ca.pem, server_name: localhost}\n")
	if _, err := listTopics(t, noCert); err == nil {
		t.Errorf("connected without a client certificate")
	}
	// Without the CA the server's certificate is not trusted.
	noCA := oneCluster(t, dir, "    bootstrap: [\""+addr+"\"]\n    tls: {cert_file: client.pem, key_file: client-key.pem, server_name: localhost}\n")
	if _, err := listTopics(t, noCA); err == nil {
		t.Errorf("trusted an unknown certificate authority")
	}
	// Unreadable files are an ErrTLS from ClientOptions, not a panic.
	bad := &Cluster{Name: "x", Bootstrap: []string{addr}, TLS: &TLS{CAFile: filepath.Join(dir, "missing.pem")}}
	if _, err := bad.ClientOptions(); !errors.Is(err, ErrTLS) {
		t.Errorf("missing ca_file: %v", err)
	}
	notPEM := filepath.Join(dir, "strait.yaml")
	bad.TLS.CAFile = notPEM
	if _, err := bad.ClientOptions(); !errors.Is(err, ErrTLS) {
		t.Errorf("ca_file without PEM: %v", err)
	}
	bad.TLS = nil
	bad.SASL = &SASL{Mechanism: "GSSAPI"}
	if _, err := bad.ClientOptions(); !errors.Is(err, ErrSASL) {
		t.Errorf("unknown mechanism: %v", err)
	}
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "strait test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

func newLeaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
