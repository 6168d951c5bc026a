package brokerd

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// hostileFetch is a Fetch v12 request listing n topic entries, each with
// an empty name and no partitions: three bytes apiece on the wire.
func hostileFetch(n int) kmsg.Request {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.Topics = make([]kmsg.FetchRequestTopic, n)
	return req
}

// hostileOffsetCommit is an OffsetCommit v2 request for one topic listing
// n partitions: fourteen bytes apiece on the wire.
func hostileOffsetCommit(n int) kmsg.Request {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 2
	req.Group = "g"
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	rt.Partitions = make([]kmsg.OffsetCommitRequestTopicPartition, n)
	for i := range rt.Partitions {
		rt.Partitions[i].Partition = int32(i)
	}
	req.Topics = []kmsg.OffsetCommitRequestTopic{rt}
	return req
}

// hostileProduce is a Produce v9 request for one topic listing n
// partitions without records: six bytes apiece on the wire.
func hostileProduce(n int) kmsg.Request {
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = -1
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	rt.Partitions = make([]kmsg.ProduceRequestTopicPartition, n)
	req.Topics = []kmsg.ProduceRequestTopic{rt}
	return req
}

// tagged is a DescribeConfigs v4 request whose n resources each carry one
// empty unknown tag: a map per resource for three bytes on the wire.
func tagged(n int) kmsg.Request {
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = 4
	req.Resources = make([]kmsg.DescribeConfigsRequestResource, n)
	for i := range req.Resources {
		req.Resources[i].UnknownTags.Set(0, nil)
	}
	return req
}

// decodeAlloc is what kmsg allocates decoding body into a fresh request
// like req.
func decodeAlloc(t *testing.T, req kmsg.Request, body []byte) uint64 {
	t.Helper()
	fresh := kmsg.RequestForKey(req.Key())
	fresh.SetVersion(req.GetVersion())
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := fresh.ReadFrom(body)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	runtime.KeepAlive(fresh)
	return after.TotalAlloc - before.TotalAlloc
}

// TestRequestDecodeBound: the bound checkBody applies is an upper bound on
// what kmsg really allocates for the shapes that decode to the most per
// byte (empty entries, small fixed-size entries, unknown tags), and those
// shapes are refused at the default limit well before their memory adds
// up.
func TestRequestDecodeBound(t *testing.T) {
	l := Limits{}.withDefaults(0)
	for _, tc := range []struct {
		name string
		req  kmsg.Request
	}{
		{"fetch of empty topics", hostileFetch(100_000)},
		{"offset commit of many partitions", hostileOffsetCommit(100_000)},
		{"produce of empty partitions", hostileProduce(100_000)},
		{"tags on every entry", tagged(20_000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.req.AppendTo(nil)
			key := kmsg.Key(tc.req.Key())
			bound := int64(len(body)) * requestDecodeBound(key, tc.req.IsFlexible())
			got := decodeAlloc(t, tc.req, body)
			t.Logf("%d bytes decode to %d bytes, bound %d", len(body), got, bound)
			if int64(got) > bound {
				t.Fatalf("%d bytes decoded to %d bytes, over the bound %d", len(body), got, bound)
			}
			// Ten times the entries (a few MB) is refused.
			big := tc.req
			switch r := big.(type) {
			case *kmsg.FetchRequest:
				big = hostileFetch(10 * len(r.Topics))
			case *kmsg.OffsetCommitRequest:
				big = hostileOffsetCommit(10 * len(r.Topics[0].Partitions))
			case *kmsg.ProduceRequest:
				big = hostileProduce(10 * len(r.Topics[0].Partitions))
			case *kmsg.DescribeConfigsRequest:
				big = tagged(10 * len(r.Resources))
			}
			h := header{key: big.Key(), version: big.GetVersion()}
			if err := l.checkBody(h, big.IsFlexible(), big.AppendTo(nil)); err == nil {
				t.Fatalf("a %s request ten times larger passed", key.Name())
			}
		})
	}
}

// TestLimitArrayAmplification: hostile array-heavy requests of several
// megabytes close the connection without being decoded, and the broker
// keeps serving; requests of ordinary shape, a Fetch of 10,000 partitions
// and a Produce of a megabyte batch (records do not count), are served.
func TestLimitArrayAmplification(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	cl := newClient(t, c)
	createTopic(t, cl, "big", 1, map[string]*string{"max.message.bytes": strp("2000000")})
	for _, tc := range []struct {
		name string
		req  kmsg.Request
	}{
		{"OffsetCommit of 700,000 partitions", hostileOffsetCommit(700_000)},
		{"Fetch of 3,000,000 empty topics", hostileFetch(3_000_000)},
		{"Produce of 1,500,000 empty partitions", hostileProduce(1_500_000)},
	} {
		frame := encodeRequest(tc.req, 1)
		t.Logf("%s: %d bytes", tc.name, len(frame))
		before := totalAlloc()
		rc := dialRaw(t, c.Addrs()[0])
		if _, err := rc.nc.Write(frame); err != nil {
			t.Fatal(err)
		}
		rc.expectClosed()
		// The frame itself is read into a buffer doubling as it fills;
		// decoded, these requests would take 40 to 150 MB and more.
		if d := totalAlloc() - before; d > 40<<20 {
			t.Fatalf("%s (%d MB) made the process allocate %d MiB", tc.name, len(frame)>>20, d>>20)
		}
	}

	rc := dialRaw(t, c.Addrs()[0])
	fr := kmsg.NewPtrFetchRequest()
	fr.Version = 12
	fr.MaxBytes = 1 << 20
	for i := range 100 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "absent" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		for p := range 100 {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition = int32(p)
			rp.PartitionMaxBytes = 1 << 20
			rt.Partitions = append(rt.Partitions, rp)
		}
		fr.Topics = append(fr.Topics, rt)
	}
	if resp := rc.roundTrip(fr).(*kmsg.FetchResponse); len(resp.Topics) != 100 {
		t.Fatalf("a Fetch of 10,000 partitions: %d topics in the response", len(resp.Topics))
	}
	batch := testBatch(1, bytes.Repeat([]byte("x"), 1_500_000), -1, -1, -1)
	if p := produceRaw(t, rc, "big", batch); p.ErrorCode != 0 {
		t.Fatalf("a 1.5 MB batch: error %d", p.ErrorCode)
	}
}

// FuzzProduceRecordBytes: the skim never panics and never counts more
// record bytes than the request has.
func FuzzProduceRecordBytes(f *testing.F) {
	req := hostileProduce(3).(*kmsg.ProduceRequest)
	req.Topics[0].Partitions[1].Records = []byte("records")
	f.Add(int16(9), req.AppendTo(nil))
	req.Version = 3
	f.Add(int16(3), req.AppendTo(nil))
	f.Add(int16(3), kbin.AppendArrayLen(nil, 1<<30))
	f.Fuzz(func(t *testing.T, version int16, body []byte) {
		if n := produceRecordBytes(version, version >= 9, body); n < 0 || n > int64(len(body)) {
			t.Fatalf("%d record bytes in %d", n, len(body))
		}
	})
}
