package checkpoint

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Clusters names the two clusters a pipeline's checkpoints were taken
// between, by the cluster ids their Metadata answers report. Failover and
// failback compare it with the clusters a configuration reaches now, so a
// configuration pointed at the wrong cluster (a rebuilt one, a typo'd
// address) is refused instead of trusted.
type Clusters struct {
	Source string
	Dest   string
}

// kindClusters is the record kind of a pipeline's cluster identity. Its
// key, 'C' 0x00 pipeline, is not a checkpoint key to Load (keyPipeline
// refuses it), so stores written before it existed and readers that do not
// know it are unaffected.
const kindClusters = 'C'

func clustersKey(pipeline string) string {
	return string(rune(kindClusters)) + "\x00" + pipeline
}

// encodeClusters: version, kind 'C', pipeline, source id, dest id (strings),
// crc32c, as every other record.
func encodeClusters(pipeline string, c Clusters) []byte {
	b := []byte{recordVersion, kindClusters}
	b = appendString(b, pipeline)
	b = appendString(b, c.Source)
	b = appendString(b, c.Dest)
	return sealRecord(b)
}

func decodeClusters(pipeline string, v []byte) (Clusters, error) {
	bad := func(what string) error { return fmt.Errorf("%w: cluster identity: %s", ErrCorrupt, what) }
	if len(v) < 2+4 {
		return Clusters{}, bad("record too short")
	}
	body, sum := v[:len(v)-4], binary.BigEndian.Uint32(v[len(v)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return Clusters{}, bad("checksum mismatch")
	}
	if body[0] != recordVersion || body[1] != kindClusters {
		return Clusters{}, bad(fmt.Sprintf("version %d kind %#x", body[0], body[1]))
	}
	r := reader{b: body[2:]}
	pl, ok1 := r.bytes()
	src, ok2 := r.bytes()
	dst, ok3 := r.bytes()
	if !ok1 || !ok2 || !ok3 || len(r.b) != 0 {
		return Clusters{}, bad("truncated or trailing bytes")
	}
	if string(pl) != pipeline {
		return Clusters{}, bad(fmt.Sprintf("record of pipeline %q", pl))
	}
	return Clusters{Source: string(src), Dest: string(dst)}, nil
}

// SaveClusters records the cluster identity of a pipeline in the store.
func SaveClusters(ctx context.Context, s Store, pipeline string, c Clusters) error {
	v := encodeClusters(pipeline, c)
	switch s := s.(type) {
	case *KafkaStore:
		if s.readOnly {
			return fmt.Errorf("%w: store opened read-only", ErrConfig)
		}
		rec := &kgo.Record{Topic: s.topic, Key: []byte(clustersKey(pipeline)), Value: v}
		if err := s.prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
			return fmt.Errorf("%w: write cluster identity: %v", ErrIO, err)
		}
		return nil
	case *FileStore:
		return s.writeAtomic(s.clustersPath(pipeline), v)
	default:
		return fmt.Errorf("%w: store %T keeps no cluster identity", ErrConfig, s)
	}
}

// LoadClusters reads the cluster identity of a pipeline; ok is false when
// none was recorded (checkpoints taken before identities were kept).
func LoadClusters(ctx context.Context, s Store, pipeline string) (c Clusters, ok bool, err error) {
	var v []byte
	switch s := s.(type) {
	case *KafkaStore:
		v, err = s.latest(ctx, clustersKey(pipeline))
	case *FileStore:
		v, err = s.fs.ReadFile(s.clustersPath(pipeline))
		if errors.Is(err, os.ErrNotExist) {
			v, err = nil, nil
		} else if err != nil {
			err = fmt.Errorf("%w: read %s: %v", ErrIO, s.clustersPath(pipeline), err)
		}
	default:
		return Clusters{}, false, nil
	}
	if err != nil || v == nil {
		return Clusters{}, false, err
	}
	c, err = decodeClusters(pipeline, v)
	return c, err == nil, err
}

// ClusterID asks a cluster for its id (Metadata's cluster id; "" when the
// cluster reports none).
func ClusterID(ctx context.Context, cl *kgo.Client) (string, error) {
	m, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return "", fmt.Errorf("%w: metadata: %v", ErrIO, err)
	}
	return m.Cluster, nil
}

// RecordClusters asks both clusters for their ids and records them for the
// pipeline, unless the store already holds exactly these.
func RecordClusters(ctx context.Context, s Store, pipeline string, src, dst *kgo.Client) error {
	var c Clusters
	var err error
	if c.Source, err = ClusterID(ctx, src); err != nil {
		return err
	}
	if c.Dest, err = ClusterID(ctx, dst); err != nil {
		return err
	}
	if have, ok, err := LoadClusters(ctx, s, pipeline); err == nil && ok && have == c {
		return nil
	}
	return SaveClusters(ctx, s, pipeline, c)
}

// clustersPath is the identity file beside a pipeline's checkpoint file.
func (s *FileStore) clustersPath(pipeline string) string {
	return strings.TrimSuffix(s.Path(pipeline), ".ckpt") + ".clusters"
}

// latest returns the value of the newest record with key in the store's
// topic, nil when there is none.
func (s *KafkaStore) latest(ctx context.Context, key string) ([]byte, error) {
	adm := kadm.NewClient(s.prod)
	ends, err := adm.ListEndOffsets(ctx, s.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		if s.readOnly && errors.Is(err, kerr.UnknownTopicOrPartition) {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: list checkpoint topic ends: %v", ErrIO, err)
	}
	starts, err := adm.ListStartOffsets(ctx, s.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: list checkpoint topic starts: %v", ErrIO, err)
	}
	var out []byte
	var rerr error
	ends.Each(func(o kadm.ListedOffset) {
		start, _ := starts.Lookup(s.topic, o.Partition)
		if rerr != nil || o.Offset <= start.Offset {
			return
		}
		rerr = readPartition(ctx, s.base, s.topic, o.Partition, start.Offset, o.Offset, false, func(r *kgo.Record) bool {
			if !r.Attrs.IsControl() && string(r.Key) == key {
				out = r.Value // nil for a tombstone
			}
			return true
		})
	})
	return out, rerr
}
