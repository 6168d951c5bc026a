package brokerd

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

func TestSASL(t *testing.T) {
	c := startCluster(t, Config{Brokers: 2, AutoCreateTopics: true, SASLUsers: map[string]string{"mirror": "s3cret", "o,ther=": "pw"}})
	mechs := map[string]sasl.Mechanism{
		"PLAIN":         plain.Auth{User: "mirror", Pass: "s3cret"}.AsMechanism(),
		"SCRAM-SHA-256": scram.Auth{User: "mirror", Pass: "s3cret"}.AsSha256Mechanism(),
		"SCRAM-SHA-512": scram.Auth{User: "o,ther=", Pass: "pw"}.AsSha512Mechanism(),
	}
	for name, m := range mechs {
		t.Run(name, func(t *testing.T) {
			cl := newClient(t, c, kgo.SASL(m), kgo.AllowAutoTopicCreation(), kgo.ConsumeTopics("auth-"+name[:5]),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auth-" + name[:5], Value: []byte("ok")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			fs := cl.PollFetches(ctx)
			if fs.NumRecords() == 0 {
				t.Fatalf("no records: %v", fs.Errors())
			}
		})
	}
	for name, m := range map[string]sasl.Mechanism{
		"bad plain": plain.Auth{User: "mirror", Pass: "nope"}.AsMechanism(),
		"bad scram": scram.Auth{User: "mirror", Pass: "nope"}.AsSha512Mechanism(),
		"no user":   scram.Auth{User: "ghost", Pass: "s3cret"}.AsSha256Mechanism(),
	} {
		t.Run(name, func(t *testing.T) {
			cl := newClient(t, c, kgo.SASL(m), kgo.RequestRetries(0))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := cl.Ping(ctx); err == nil {
				t.Fatal("wrong credentials accepted")
			}
		})
	}
	// Without authenticating, only ApiVersions is answered.
	rc := dialRaw(t, c.Addrs()[0])
	av := rc.roundTrip(apiVersionsRequestForTest()).(*kmsg.ApiVersionsResponse)
	found := false
	for _, k := range av.ApiKeys {
		found = found || k.ApiKey == 36
	}
	if !found {
		t.Fatal("SaslAuthenticate not advertised")
	}
	rc.send(kmsg.NewPtrMetadataRequest())
	rc.expectClosed()
}
