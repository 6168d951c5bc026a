package brokerd

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fuzzCluster is shared by every fuzz input: starting a cluster per input
// would dominate the run.
var (
	fuzzOnce    sync.Once
	fuzzCluster *Cluster
	fuzzDir     string
	fuzzErr     error
)

// TestMain removes the shared fuzz cluster, which outlives single tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if fuzzCluster != nil {
		fuzzCluster.Close()
	}
	if fuzzDir != "" {
		os.RemoveAll(fuzzDir)
	}
	os.Exit(code)
}

// FuzzRequestFrames feeds arbitrary frames to a live broker, whole and one
// byte at a time, and checks the broker neither panics nor stops serving:
// parseRequest must never panic, and after each input a well-formed
// ApiVersions on a fresh connection is still answered.
func FuzzRequestFrames(f *testing.F) {
	seed := func(req kmsg.Request) { f.Add(encodeRequest(req, 1)[4:], false) }
	for v := int16(0); v <= 12; v++ {
		r := kmsg.NewPtrMetadataRequest()
		r.Version = v
		seed(r)
	}
	fr := kmsg.NewPtrFetchRequest()
	fr.Version = 12
	fr.Topics = []kmsg.FetchRequestTopic{{Topic: "fz", Partitions: []kmsg.FetchRequestTopicPartition{{PartitionMaxBytes: 100}}}}
	seed(fr)
	pr := kmsg.NewPtrProduceRequest()
	pr.Version = 9
	pr.Acks = 1
	pr.Topics = []kmsg.ProduceRequestTopic{{Topic: "fz", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: testBatch(2, []byte("v"), -1, -1, -1)}}}}
	seed(pr)
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version = 5
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "fz2", NumPartitions: 1, ReplicationFactor: 1}}
	seed(ct)
	f.Add([]byte{0, 18, 0, 9, 0, 0, 0, 1, 255, 255}, true)
	f.Add([]byte{0, 1}, true)

	f.Fuzz(func(t *testing.T, frame []byte, byteAtATime bool) {
		// The parser on its own: no panic, whatever the bytes.
		parseRequest(frame)

		fuzzOnce.Do(func() {
			fuzzDir, fuzzErr = os.MkdirTemp("", "brokerd-fuzz-")
			if fuzzErr != nil {
				return
			}
			fuzzCluster, fuzzErr = Start(context.Background(), Config{Dir: fuzzDir, Brokers: 1, Partitions: 1, AutoCreateTopics: true,
				MaxRequestBytes: 1 << 20, Logger: testLogger(t)})
		})
		if fuzzErr != nil {
			t.Fatal(fuzzErr)
		}
		addr := fuzzCluster.Addrs()[0]
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		data := binary.BigEndian.AppendUint32(nil, uint32(len(frame)))
		data = append(data, frame...)
		if byteAtATime {
			for i := range data {
				if _, err := nc.Write(data[i : i+1]); err != nil {
					break
				}
			}
		} else {
			nc.Write(data)
		}
		// Read whatever comes back until the broker answers or closes.
		nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		io.Copy(io.Discard, nc)

		rc := dialRaw(t, addr)
		req := kmsg.NewPtrApiVersionsRequest()
		if r := rc.roundTrip(req).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
			t.Fatalf("broker unhealthy after input: error %d", r.ErrorCode)
		}
	})
}
