package brokerd

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestApiVersions(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	rc := dialRaw(t, c.Addrs()[0])
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
		resp := rc.roundTrip(req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: error %d", v, resp.ErrorCode)
		}
		got := map[int16]kmsg.ApiVersionsResponseApiKey{}
		for _, k := range resp.ApiKeys {
			got[k.ApiKey] = k
		}
		for _, key := range []int16{0, 1, 2, 3, 8, 9, 10, 11, 18, 19, 20, 22, 24, 25, 26, 28, 60, 65, 66} {
			if _, ok := got[key]; !ok {
				t.Errorf("v%d: key %d (%s) not advertised", v, key, kmsg.NameForKey(key))
			}
		}
		// WriteTxnMarkers is broker to broker; brokerd writes markers in process.
		if _, ok := got[int16(kmsg.WriteTxnMarkers)]; ok {
			t.Errorf("v%d: WriteTxnMarkers advertised", v)
		}
		if got[1].MaxVersion != 12 {
			t.Errorf("Fetch max version %d, want 12 (no topic IDs)", got[1].MaxVersion)
		}
	}
}

// A too-new ApiVersions is answered with UNSUPPORTED_VERSION and the v0
// body (header without tags), so the client can retry lower.
func TestApiVersionsDowngrade(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	rc := dialRaw(t, c.Addrs()[0])
	buf := make([]byte, 4, 64)
	buf = kbin.AppendInt16(buf, 18)
	buf = kbin.AppendInt16(buf, 99)
	buf = kbin.AppendInt32(buf, 7)
	buf = kbin.AppendNullableString(buf, nil)
	buf = append(buf, 0, 1, 2, 3) // a body nobody can parse
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	if _, err := rc.nc.Write(buf); err != nil {
		t.Fatal(err)
	}
	frame, err := rc.readFrame()
	if err != nil {
		t.Fatal(err)
	}
	if corr := int32(binary.BigEndian.Uint32(frame)); corr != 7 {
		t.Fatalf("correlation %d", corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(frame[4:]); err != nil {
		t.Fatalf("v0 body: %v", err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
		t.Fatalf("error %d with %d keys, want 35 with the key list", resp.ErrorCode, len(resp.ApiKeys))
	}
	// The connection stays usable.
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	if r := rc.roundTrip(req).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
		t.Fatalf("after downgrade: error %d", r.ErrorCode)
	}
}

func TestBadFramesCloseConnection(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1, MaxRequestBytes: 1 << 20})
	addr := c.Addrs()[0]
	header := func(key, version int16) []byte {
		b := kbin.AppendInt16(nil, key)
		b = kbin.AppendInt16(b, version)
		b = kbin.AppendInt32(b, 1)
		return kbin.AppendNullableString(b, nil)
	}
	frame := func(body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	cases := map[string][]byte{
		"oversized":       binary.BigEndian.AppendUint32(nil, 2<<20),
		"negative size":   binary.BigEndian.AppendUint32(nil, 0xffffffff),
		"short header":    frame([]byte{0, 3}),
		"unknown key":     frame(header(999, 0)),
		"unsupported ver": frame(header(3, 99)),
		"not advertised":  frame(header(24, 0)),                    // AddPartitionsToTxn
		"truncated body":  frame(append(header(3, 1), 0, 0, 0, 5)), // 5 topics, none present
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			rc := dialRaw(t, addr)
			if _, err := rc.nc.Write(data); err != nil {
				t.Fatal(err)
			}
			rc.expectClosed()
		})
	}
	// A frame cut short by the client closing its side.
	rc := dialRaw(t, addr)
	rc.nc.Write(frame(header(18, 0))[:6])
	rc.nc.(*net.TCPConn).CloseWrite()
	rc.expectClosed()

	// The broker still serves everyone else.
	rc = dialRaw(t, addr)
	req := kmsg.NewPtrApiVersionsRequest()
	if r := rc.roundTrip(req).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
		t.Fatalf("error %d", r.ErrorCode)
	}
}

// Requests written one byte at a time (split reads) and several in one
// write (pipelining) are answered in order.
func TestSplitAndPipelinedFrames(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	rc := dialRaw(t, c.Addrs()[0])
	var all []byte
	for i := int32(1); i <= 5; i++ {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = int16(i + 4)
		all = append(all, encodeRequest(req, i)...)
	}
	for i := range all {
		if _, err := rc.nc.Write(all[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	for i := int32(1); i <= 5; i++ {
		f, err := rc.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		if corr := int32(binary.BigEndian.Uint32(f)); corr != i {
			t.Fatalf("response %d has correlation %d", i, corr)
		}
	}
}
