package bench

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/internal/recordbatch"
)

// nullBroker is the produce baseline: a Kafka-protocol server that serves
// ApiVersions, Metadata, InitProducerId and Produce, acknowledging every
// batch with a running offset and storing nothing.
type nullBroker struct {
	ln         net.Listener
	partitions int32
	wg         sync.WaitGroup
	mu         sync.Mutex
	conns      map[net.Conn]struct{}
	offsets    sync.Map // "topic/partition" -> *atomic.Int64
}

func startNullBroker(partitions int32) (*nullBroker, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBench, err)
	}
	nb := &nullBroker{ln: ln, partitions: partitions, conns: map[net.Conn]struct{}{}}
	nb.wg.Add(1)
	go func() {
		defer nb.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			nb.mu.Lock()
			nb.conns[c] = struct{}{}
			nb.mu.Unlock()
			nb.wg.Add(1)
			go func() {
				defer nb.wg.Done()
				nb.serve(c)
				nb.mu.Lock()
				delete(nb.conns, c)
				nb.mu.Unlock()
				c.Close()
			}()
		}
	}()
	return nb, nil
}

func (nb *nullBroker) Addr() string { return nb.ln.Addr().String() }

func (nb *nullBroker) Close() {
	nb.ln.Close()
	nb.mu.Lock()
	for c := range nb.conns {
		c.Close()
	}
	nb.mu.Unlock()
	nb.wg.Wait()
}

// nullVersions are the requests the null broker serves, with the newest
// version of each.
var nullVersions = map[int16]int16{
	kmsg.Produce.Int16():        9,
	kmsg.Metadata.Int16():       12,
	kmsg.ApiVersions.Int16():    3,
	kmsg.InitProducerID.Int16(): 4,
}

// serve reads requests on one goroutine and writes responses on another,
// batching queued responses into one writev, as a real broker does; the
// baseline should not lose to brokerd for want of pipelining.
func (nb *nullBroker) serve(c net.Conn) {
	out := make(chan []byte, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var bufs net.Buffers
		failed := false
		for b := range out {
			if failed {
				continue // drain so the reader never blocks
			}
			bufs = append(bufs[:0], b)
		more:
			for {
				select {
				case b2, ok := <-out:
					if !ok {
						break more
					}
					bufs = append(bufs, b2)
				default:
					break more
				}
			}
			if _, err := bufs.WriteTo(c); err != nil {
				failed = true
				c.Close()
			}
		}
	}()
	defer func() {
		close(out)
		<-done
	}()
	br := bufio.NewReaderSize(c, 1<<20)
	var sz [4]byte
	// One frame buffer for the connection, reused: a request is decoded
	// and answered before the next is read, and the response is encoded
	// into its own bytes, so nothing of a frame outlives its turn. The
	// baseline neither allocates nor zeroes megabytes per request.
	var buf []byte
	for {
		if _, err := io.ReadFull(br, sz[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(sz[:]))
		if n < 8 || n > 128<<20 {
			return
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		frame := buf[:n]
		if _, err := io.ReadFull(br, frame); err != nil {
			return
		}
		r := kbin.Reader{Src: frame}
		key, version, corr := r.Int16(), r.Int16(), r.Int32()
		r.NullableString() // client id
		req := kmsg.RequestForKey(key)
		maxV, ok := nullVersions[key]
		if key == kmsg.ApiVersions.Int16() && req != nil {
			// Clients send their newest ApiVersions before they know
			// ours; answer any version kmsg can encode.
			maxV = req.MaxVersion()
		}
		if req == nil || !ok || version > maxV {
			return
		}
		req.SetVersion(version)
		if req.IsFlexible() {
			for n := r.Uvarint(); n > 0; n-- { // header tags
				r.Uvarint()
				r.Span(int(r.Uvarint()))
			}
		}
		if r.Complete() != nil {
			return
		}
		if err := req.ReadFrom(r.Src); err != nil {
			return
		}
		resp := nb.handle(req)
		if resp == nil {
			continue // acks=0
		}
		b := make([]byte, 8, 128)
		binary.BigEndian.PutUint32(b[4:], uint32(corr))
		if resp.IsFlexible() && key != kmsg.ApiVersions.Int16() {
			b = append(b, 0)
		}
		b = resp.AppendTo(b)
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		out <- b
	}
}

func (nb *nullBroker) handle(req kmsg.Request) kmsg.Response {
	switch req := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		for k, v := range nullVersions {
			ak := kmsg.NewApiVersionsResponseApiKey()
			ak.ApiKey, ak.MinVersion, ak.MaxVersion = k, 0, v
			resp.ApiKeys = append(resp.ApiKeys, ak)
		}
		return resp
	case *kmsg.MetadataRequest:
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		host, port, _ := net.SplitHostPort(nb.Addr())
		var p int32
		fmt.Sscan(port, &p)
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = 0, host, p
		resp.Brokers = []kmsg.MetadataResponseBroker{b}
		resp.ControllerID = 0
		for _, rt := range req.Topics {
			t := kmsg.NewMetadataResponseTopic()
			t.Topic = rt.Topic
			for i := int32(0); i < nb.partitions; i++ {
				mp := kmsg.NewMetadataResponseTopicPartition()
				mp.Partition, mp.Leader, mp.Replicas, mp.ISR = i, 0, []int32{0}, []int32{0}
				t.Partitions = append(t.Partitions, mp)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return resp
	case *kmsg.InitProducerIDRequest:
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ProducerID, resp.ProducerEpoch = 1, 0
		return resp
	case *kmsg.ProduceRequest:
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			t := kmsg.NewProduceResponseTopic()
			t.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				p := kmsg.NewProduceResponseTopicPartition()
				p.Partition = rp.Partition
				p.LogAppendTime = -1
				v, _ := nb.offsets.LoadOrStore(fmt.Sprintf("%s/%d", rt.Topic, rp.Partition), new(atomic.Int64))
				p.BaseOffset = v.(*atomic.Int64).Add(recordCount(rp.Records)) - recordCount(rp.Records)
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
		if req.Acks == 0 {
			return nil
		}
		return resp
	}
	return nil
}

// recordCount sums lastOffsetDelta+1 over the batches of a produce payload,
// stopping at the first batch that is not whole.
func recordCount(b []byte) int64 {
	var n int64
	for {
		h, err := recordbatch.ParseHeader(b)
		if err != nil || h.Size() > int64(len(b)) {
			return n
		}
		n += int64(h.LastOffsetDelta) + 1
		b = b[h.Size():]
	}
}
