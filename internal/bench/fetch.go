package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/internal/recordbatch"
)

// fillFetchTopic writes about total bytes to partition 0 of topic in
// batches of about 16 KiB.
func fillFetchTopic(ctx context.Context, seeds []string, topic string, total int64) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchMaxBytes(16<<10), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return fmt.Errorf("%w: %v", errBench, err)
	}
	defer cl.Close()
	value := make([]byte, 1000)
	var failed atomic.Pointer[error]
	for written := int64(0); written < total; written += int64(len(value)) {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("%w: %v", errBench, err)
	}
	if e := failed.Load(); e != nil {
		return fmt.Errorf("%w: fill fetch topic: %v", errBench, *e)
	}
	return nil
}

// kafkaConn is a bare Kafka-protocol client connection: one request at a
// time, responses read raw.
type kafkaConn struct {
	c    net.Conn
	fmt  *kmsg.RequestFormatter
	corr int32
	wbuf []byte
	rbuf []byte
}

func dialKafka(addr string) (*kafkaConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBench, err)
	}
	return &kafkaConn{c: c, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("strait-bench"))}, nil
}

// roundTrip sends req and returns the response body (after the header).
func (k *kafkaConn) roundTrip(req kmsg.Request) ([]byte, error) {
	k.corr++
	k.wbuf = k.fmt.AppendRequest(k.wbuf[:0], req, k.corr)
	if _, err := k.c.Write(k.wbuf); err != nil {
		return nil, fmt.Errorf("%w: write: %v", errBench, err)
	}
	var sz [4]byte
	if _, err := io.ReadFull(k.c, sz[:]); err != nil {
		return nil, fmt.Errorf("%w: read: %v", errBench, err)
	}
	n := int(binary.BigEndian.Uint32(sz[:]))
	if n < 4 || n > 256<<20 {
		return nil, fmt.Errorf("%w: response size %d", errBench, n)
	}
	if cap(k.rbuf) < n {
		k.rbuf = make([]byte, n)
	}
	b := k.rbuf[:n]
	if _, err := io.ReadFull(k.c, b); err != nil {
		return nil, fmt.Errorf("%w: read: %v", errBench, err)
	}
	if int32(binary.BigEndian.Uint32(b)) != k.corr {
		return nil, fmt.Errorf("%w: correlation id mismatch", errBench)
	}
	b = b[4:]
	if req.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		b = b[1:] // response header tags (empty)
	}
	return b, nil
}

// fetchRun reads total bytes of record batches from partition 0 of topic,
// fetchSize bytes per request (wrapping to the start at the end), and
// returns MB/s of record bytes received.
func fetchRun(addr, topic string, fetchSize int32, total int64, rcvbuf int) (float64, error) {
	k, err := dialKafka(addr)
	if err != nil {
		return 0, err
	}
	defer k.c.Close()
	if err := setRcvbuf(k.c, rcvbuf); err != nil {
		return 0, err
	}
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(11)
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = fetchSize
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = fetchSize
	rt.Partitions = []kmsg.FetchRequestTopicPartition{rp}
	req.Topics = []kmsg.FetchRequestTopic{rt}

	var got int64
	offset := int64(0)
	start := time.Now()
	for got < total {
		req.Topics[0].Partitions[0].FetchOffset = offset
		body, err := k.roundTrip(req)
		if err != nil {
			return 0, err
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(11)
		if err := resp.ReadFrom(body); err != nil {
			return 0, fmt.Errorf("%w: fetch response: %v", errBench, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return 0, fmt.Errorf("%w: fetch response without the partition", errBench)
		}
		p := &resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			return 0, fmt.Errorf("%w: fetch: %v", errBench, err)
		}
		recs := p.RecordBatches
		if len(recs) == 0 {
			if offset == 0 {
				return 0, fmt.Errorf("%w: fetch topic is empty", errBench)
			}
			offset = 0
			continue
		}
		got += int64(len(recs))
		// Continue after the last whole batch.
		for {
			h, err := recordbatch.ParseHeader(recs)
			if err != nil || h.Size() > int64(len(recs)) {
				break
			}
			offset = h.NextOffset()
			recs = recs[h.Size():]
		}
		if offset >= p.HighWatermark {
			offset = 0
		}
	}
	return float64(got) / 1e6 / time.Since(start).Seconds(), nil
}

// setRcvbuf gives a fetch client's socket a fixed receive buffer (0 keeps
// the kernel's autotuning). Both fetch clients get the same one. It
// matters for the fetch loop: one request at a time, each answered with up
// to a megabyte, and with the autotuned buffer the receive window of a new
// connection stays small enough that one response takes several round
// trips on some connections and not on others, so runs split into a slow
// and a fast group. The streaming copy suffers less from it. A consumer
// tuned for throughput sets this too (Kafka's receive.buffer.bytes).
func setRcvbuf(c net.Conn, n int) error {
	if n == 0 {
		return nil
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	if err := tc.SetReadBuffer(n); err != nil {
		return fmt.Errorf("%w: receive buffer: %v", errBench, err)
	}
	return nil
}

// segmentFiles lists the .log files of topic's partitions under dir.
func segmentFiles(dir, topic string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".log") && strings.HasPrefix(filepath.Base(filepath.Dir(path)), topic+"-") {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBench, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no segment files for %s under %s", errBench, topic, dir)
	}
	sort.Strings(out)
	return out, nil
}

// plainCopyRun is the fetch baseline: a server copies the segment files
// to a loopback socket with read(2) and write(2) in 1 MiB chunks (no
// protocol), a client reads total bytes. It returns MB/s.
func plainCopyRun(files []string, total int64, rcvbuf int) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errBench, err)
	}
	defer ln.Close()
	serveErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			serveErr <- err
			return
		}
		defer c.Close()
		buf := make([]byte, 1<<20)
		var sent int64
		for sent < total {
			for _, path := range files {
				f, err := os.Open(path)
				if err != nil {
					serveErr <- err
					return
				}
				for sent < total {
					// Read then Write, not io.Copy: io.Copy from a file
					// to a TCP socket would use sendfile itself.
					n, rerr := f.Read(buf)
					if n > 0 {
						if _, err := c.Write(buf[:n]); err != nil {
							f.Close()
							serveErr <- err
							return
						}
						sent += int64(n)
					}
					if rerr != nil {
						break
					}
				}
				f.Close()
				if sent >= total {
					break
				}
			}
		}
		serveErr <- nil
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errBench, err)
	}
	defer c.Close()
	if err := setRcvbuf(c, rcvbuf); err != nil {
		return 0, err
	}
	buf := make([]byte, 1<<20)
	var got int64
	start := time.Now()
	for got < total {
		n, err := c.Read(buf)
		got += int64(n)
		if err != nil {
			if err == io.EOF && got >= total {
				break
			}
			return 0, fmt.Errorf("%w: plain copy read: %v", errBench, err)
		}
	}
	elapsed := time.Since(start)
	if err := <-serveErr; err != nil {
		return 0, fmt.Errorf("%w: plain copy: %v", errBench, err)
	}
	return float64(got) / 1e6 / elapsed.Seconds(), nil
}
