package brokerd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// selfSigned returns a server config and a client config trusting it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "brokerd test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	client = &tls.Config{RootCAs: pool}
	return server, client
}

// Over TLS, fetch data takes the copy path and arrives intact.
func TestTLSListenerUsesCopyPath(t *testing.T) {
	srv, cli := selfSigned(t)
	c := startCluster(t, Config{Brokers: 2, TLS: srv})
	cl := newClient(t, c, kgo.DialTLSConfig(cli), kgo.ConsumeTopics("sec"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	createTopic(t, cl, "sec", 2, nil)
	ctx := context.Background()
	var rs []*kgo.Record
	for i := 0; i < 100; i++ {
		rs = append(rs, &kgo.Record{Topic: "sec", Key: []byte{byte(i)}, Value: []byte("secret")})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := 0
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for got < 100 {
		fs := cl.PollFetches(cctx)
		if cctx.Err() != nil {
			t.Fatalf("consumed %d of 100", got)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) != "secret" {
				t.Fatalf("value %q", r.Value)
			}
			got++
		})
	}
	if st := c.Stats(); st.SendfileBytes != 0 || st.CopyBytes == 0 {
		t.Fatalf("TLS fetches: %+v, want the copy path only", st)
	}
	// A plaintext client cannot talk to a TLS listener.
	rc := dialRaw(t, c.Addrs()[0])
	rc.nc.Write(encodeRequest(apiVersionsRequestForTest(), 1))
	if _, err := rc.readFrame(); err == nil {
		t.Fatal("plaintext request answered on a TLS listener")
	}
}

func apiVersionsRequestForTest() *kmsg.ApiVersionsRequest {
	r := kmsg.NewPtrApiVersionsRequest()
	r.Version = 3
	return r
}
