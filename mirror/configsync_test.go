package mirror

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"strait/pipelines"
)

// destConfig is topic's value of config key on the cluster at addrs ("" if
// unset or unreadable).
func destConfig(t *testing.T, addrs []string, topic, key string) string {
	t.Helper()
	rcs, err := kadm.NewClient(client(t, addrs)).DescribeTopicConfigs(context.Background(), topic)
	if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
		return ""
	}
	for _, c := range rcs[0].Configs {
		if c.Key == key {
			return c.MaybeValue()
		}
	}
	return ""
}

// TestConfigChange: a config set or changed on a source topic after its
// destination topic exists reaches the destination (within configResync
// refreshes), and so does one set on a topic that had none; a config
// drifted on the destination is put back.
func TestConfigChange(t *testing.T) {
	src, dst := clusterPair(t)
	admin := kadm.NewClient(client(t, src.Addrs()))
	one := "3600000"
	createTopic(t, client(t, src.Addrs()), "c1", 1, map[string]*string{"retention.ms": &one})
	createTopic(t, client(t, src.Addrs()), "c2", 1, nil)
	cfg := config(t, src.Addrs(), dst.Addrs(), pipelines.ModeBatch, "c.")
	_, stop := runEngine(t, cfg, Options{})
	defer stop()
	waitFor(t, 30*time.Second, "c1 created with its config", func() bool {
		return destConfig(t, dst.Addrs(), "c1", "retention.ms") == one
	})

	two, bytes := "7200000", "123456789"
	if _, err := admin.AlterTopicConfigs(context.Background(),
		[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &two}}, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AlterTopicConfigs(context.Background(),
		[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.bytes", Value: &bytes}}, "c2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "changed configs copied", func() bool {
		return destConfig(t, dst.Addrs(), "c1", "retention.ms") == two &&
			destConfig(t, dst.Addrs(), "c2", "retention.bytes") == bytes
	})

	drift := "1000"
	if _, err := kadm.NewClient(client(t, dst.Addrs())).AlterTopicConfigs(context.Background(),
		[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &drift}}, "c1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "drifted config put back", func() bool {
		return destConfig(t, dst.Addrs(), "c1", "retention.ms") == two
	})
}
