package brokerd

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// metaFile is the cluster's persisted metadata: the cluster ID, the
// producer-id high mark and every topic with its partitions and configs.
// It is rewritten whole (temp file, fsync, rename, fsync folder) on every
// change, so a crash leaves either the old or the new version.
const metaFile = "cluster.json"

// producerIDBlock is how many producer ids are reserved per metadata write:
// a restart resumes after the reserved block, so ids are never reused while
// InitProducerId rarely touches the disk.
const producerIDBlock = 1000

type metaState struct {
	ClusterID string `json:"cluster_id"`
	// ProducerIDMark is the first producer id not yet reserved.
	ProducerIDMark int64                 `json:"producer_id_mark"`
	Topics         map[string]*metaTopic `json:"topics"`
}

type metaTopic struct {
	// Folders holds, per partition, the index of the broker whose data
	// folder holds the partition; it is also the partition's leader
	// (modulo the broker count, should a restart use fewer brokers).
	Folders []int32           `json:"folders"`
	Configs map[string]string `json:"configs,omitempty"`
}

func newClusterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func loadMeta(dir string) (*metaState, error) {
	raw, err := os.ReadFile(filepath.Join(dir, metaFile))
	if os.IsNotExist(err) {
		return &metaState{ClusterID: newClusterID(), Topics: map[string]*metaTopic{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMeta, err)
	}
	var m metaState
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMeta, metaFile, err)
	}
	if m.ClusterID == "" {
		return nil, fmt.Errorf("%w: %s: no cluster id", ErrMeta, metaFile)
	}
	if m.Topics == nil {
		m.Topics = map[string]*metaTopic{}
	}
	return &m, nil
}

// saveMeta writes m atomically (saveJSON, which the quota and ACL stores
// share).
func saveMeta(dir string, m *metaState) error { return saveJSON(dir, metaFile, m) }
