package brokerd

import (
	"net"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAdvertise: a cluster started with Advertise names those addresses in
// Metadata, FindCoordinator and DescribeCluster, while it listens (and
// Addrs reports) where it always did.
func TestAdvertise(t *testing.T) {
	adv := []string{"proxy.example:19092", "proxy.example:19093"}
	c := startCluster(t, Config{Brokers: 2, Advertise: adv})
	want := map[int32]string{0: adv[0], 1: adv[1]}
	for _, a := range c.Addrs() {
		if a == adv[0] || a == adv[1] {
			t.Fatalf("Addrs() = %v: listening addresses expected", c.Addrs())
		}
	}
	// A raw connection: a client would follow the advertised addresses,
	// which lead nowhere here.
	rc := dialRaw(t, c.Addrs()[0])

	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 12
	mresp := rc.roundTrip(meta).(*kmsg.MetadataResponse)
	if len(mresp.Brokers) != 2 {
		t.Fatalf("Metadata brokers %+v", mresp.Brokers)
	}
	for _, b := range mresp.Brokers {
		if got := hostPort(b.Host, b.Port); got != want[b.NodeID] {
			t.Errorf("Metadata broker %d at %s, want %s", b.NodeID, got, want[b.NodeID])
		}
	}

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "g"
	fc.Version = 3
	fresp := rc.roundTrip(fc).(*kmsg.FindCoordinatorResponse)
	if got := hostPort(fresp.Host, fresp.Port); fresp.ErrorCode != 0 || got != want[fresp.NodeID] {
		t.Errorf("FindCoordinator: node %d at %s (error %d), want %s", fresp.NodeID, got, fresp.ErrorCode, want[fresp.NodeID])
	}

	dc := kmsg.NewPtrDescribeClusterRequest()
	dresp := rc.roundTrip(dc).(*kmsg.DescribeClusterResponse)
	if len(dresp.Brokers) != 2 {
		t.Fatalf("DescribeCluster brokers %+v", dresp.Brokers)
	}
	for _, b := range dresp.Brokers {
		if got := hostPort(b.Host, b.Port); got != want[b.NodeID] {
			t.Errorf("DescribeCluster broker %d at %s, want %s", b.NodeID, got, want[b.NodeID])
		}
	}
}

func hostPort(host string, port int32) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}
