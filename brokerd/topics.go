package brokerd

import (
	"fmt"
	"maps"

	"github.com/twmb/franz-go/pkg/kerr"
)

// maxTopicNameLen is Kafka's limit (249: room for a partition suffix and
// the ".deleted" marker within a 255-byte file name).
const maxTopicNameLen = 249

// maxPartitions bounds one topic, so a single request cannot make the
// broker create folders for minutes.
const maxPartitions = 10000

// validTopicName applies Kafka's rules: 1..249 characters of [a-zA-Z0-9._-],
// not "." or "..". The internal offsets topic is reserved.
func validTopicName(name string) error {
	if name == "" {
		return fmt.Errorf("topic name is empty")
	}
	if name == "." || name == ".." {
		return fmt.Errorf("topic name cannot be %q", name)
	}
	if len(name) > maxTopicNameLen {
		return fmt.Errorf("topic name is longer than %d characters", maxTopicNameLen)
	}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		ok := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '_' || ch == '-'
		if !ok {
			return fmt.Errorf("topic name %q contains characters other than ASCII alphanumerics, '.', '_' and '-'", name)
		}
	}
	if name == offsetsTopic || name == txnStateTopic {
		return fmt.Errorf("topic name %q is reserved", name)
	}
	return nil
}

// kafkaErr is a Kafka error code with the message that goes with it.
type kafkaErr struct {
	code int16
	msg  string
}

func (e *kafkaErr) Error() string { return e.msg }

// codeAndMessage gives a response's error code and message: 0 and nil for
// no error.
func (e *kafkaErr) codeAndMessage() (int16, *string) {
	if e == nil {
		return 0, nil
	}
	msg := e.msg
	return e.code, &msg
}

func kErr(e *kerr.Error, format string, args ...any) *kafkaErr {
	return &kafkaErr{code: e.Code, msg: fmt.Sprintf(format, args...)}
}

// createTopic creates a topic with n partitions (n <= 0: the default) and
// the given validated configs. validateOnly checks without creating.
func (c *Cluster) createTopic(name string, n int32, configs map[string]string, validateOnly bool) (int32, *kafkaErr) {
	if err := validTopicName(name); err != nil {
		return 0, kErr(kerr.InvalidTopicException, "%v", err)
	}
	if n <= 0 {
		n = c.cfg.Partitions
	}
	if n > maxPartitions {
		return 0, kErr(kerr.InvalidPartitions, "%d partitions: at most %d per topic", n, maxPartitions)
	}
	for k, v := range configs {
		if err := validateConfig(k, &v); err != nil {
			return 0, kErr(kerr.InvalidConfig, "%v", err)
		}
	}
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return 0, kErr(kerr.NotController, "cluster is shutting down")
	}
	if _, ok := c.mu.topics[name]; ok || c.mu.creating[name] {
		c.mu.Unlock()
		return 0, kErr(kerr.TopicAlreadyExists, "topic %q already exists", name)
	}
	if validateOnly {
		c.mu.Unlock()
		return n, nil
	}
	// Partition folders are made without the lock, so a large topic does
	// not stall every request's lookups; creating reserves the name.
	c.mu.creating[name] = true
	first := c.mu.nextLeader
	c.mu.nextLeader += n
	c.mu.Unlock()

	cfgs := maps.Clone(configs)
	if cfgs == nil {
		cfgs = map[string]string{}
	}
	t := &topic{name: name, configs: cfgs}
	mt := &metaTopic{Configs: cfgs}
	var openErr error
	for i := int32(0); i < n; i++ {
		folder := (first + i) % int32(len(c.brokers))
		p, err := c.openPartition(name, i, folder, cfgs)
		if err != nil {
			openErr = err
			break
		}
		t.parts = append(t.parts, p)
		mt.Folders = append(mt.Folders, folder)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.mu.creating, name)
	if openErr == nil && c.mu.closed {
		openErr = ErrClosed
	}
	if openErr == nil {
		c.mu.meta.Topics[name] = mt
		if openErr = saveMeta(c.cfg.Dir, c.mu.meta); openErr != nil {
			delete(c.mu.meta.Topics, name)
		}
	}
	if openErr != nil {
		for _, p := range t.parts {
			p.log.Remove()
		}
		return 0, kErr(kerr.KafkaStorageError, "%v", openErr)
	}
	c.mu.topics[name] = t
	c.log.Info("topic created", "topic", name, "partitions", n)
	return n, nil
}

// deleteTopic removes a topic and its data.
func (c *Cluster) deleteTopic(name string) *kafkaErr {
	c.mu.Lock()
	t := c.mu.topics[name]
	if t == nil {
		c.mu.Unlock()
		return kErr(kerr.UnknownTopicOrPartition, "unknown topic %q", name)
	}
	if t.internal {
		c.mu.Unlock()
		return kErr(kerr.InvalidRequest, "topic %q is internal", name)
	}
	delete(c.mu.topics, name)
	mt := c.mu.meta.Topics[name]
	delete(c.mu.meta.Topics, name)
	if err := saveMeta(c.cfg.Dir, c.mu.meta); err != nil {
		c.mu.topics[name] = t
		c.mu.meta.Topics[name] = mt
		c.mu.Unlock()
		return kErr(kerr.KafkaStorageError, "%v", err)
	}
	// Keep the name reserved until the folders are gone, or a topic
	// re-created at once would open the old folders and lose its own.
	c.mu.creating[name] = true
	c.mu.Unlock()
	for _, p := range t.parts {
		if err := p.log.Remove(); err != nil {
			c.log.Warn("remove partition", "topic", name, "partition", p.index, "err", err)
		}
		// Wake long polls so they answer UNKNOWN_TOPIC_OR_PARTITION now.
		p.notify()
	}
	c.mu.Lock()
	delete(c.mu.creating, name)
	c.mu.Unlock()
	c.log.Info("topic deleted", "topic", name)
	return nil
}

// addPartitions grows a topic to count partitions.
func (c *Cluster) addPartitions(name string, count int32, validateOnly bool) *kafkaErr {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.mu.topics[name]
	if t == nil {
		return kErr(kerr.UnknownTopicOrPartition, "unknown topic %q", name)
	}
	if t.internal {
		return kErr(kerr.InvalidRequest, "topic %q is internal", name)
	}
	have := int32(len(t.parts))
	if count <= have {
		return kErr(kerr.InvalidPartitions, "topic %q has %d partitions; the new count %d must be larger", name, have, count)
	}
	if count > maxPartitions {
		return kErr(kerr.InvalidPartitions, "%d partitions: at most %d per topic", count, maxPartitions)
	}
	if validateOnly {
		return nil
	}
	parts := append([]*partition(nil), t.parts...)
	mt := c.mu.meta.Topics[name]
	folders := append([]int32(nil), mt.Folders...)
	for i := have; i < count; i++ {
		folder := (c.mu.nextLeader + i - have) % int32(len(c.brokers))
		p, err := c.openPartition(name, i, folder, t.configs)
		if err != nil {
			for _, p := range parts[have:] {
				p.log.Remove()
			}
			return kErr(kerr.KafkaStorageError, "%v", err)
		}
		parts = append(parts, p)
		folders = append(folders, folder)
	}
	old := mt.Folders
	mt.Folders = folders
	if err := saveMeta(c.cfg.Dir, c.mu.meta); err != nil {
		mt.Folders = old
		for _, p := range parts[have:] {
			p.log.Remove()
		}
		return kErr(kerr.KafkaStorageError, "%v", err)
	}
	c.mu.nextLeader += count - have
	t.parts = parts
	return nil
}

// setTopicConfigs replaces a topic's configs (already validated) and
// applies them to its open logs.
func (c *Cluster) setTopicConfigs(name string, cfgs map[string]string) *kafkaErr {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.mu.topics[name]
	if t == nil {
		return kErr(kerr.UnknownTopicOrPartition, "unknown topic %q", name)
	}
	if t.internal {
		return kErr(kerr.InvalidRequest, "topic %q is internal", name)
	}
	mt := c.mu.meta.Topics[name]
	old := mt.Configs
	mt.Configs = cfgs
	if err := saveMeta(c.cfg.Dir, c.mu.meta); err != nil {
		mt.Configs = old
		return kErr(kerr.KafkaStorageError, "%v", err)
	}
	t.configs = cfgs
	lc := c.logConfig(cfgs)
	for _, p := range t.parts {
		p.log.SetConfig(lc)
	}
	return nil
}

// topicConfigs returns a copy of a topic's configs, or nil if unknown.
func (c *Cluster) topicConfigs(name string) (map[string]string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := c.mu.topics[name]
	if t == nil {
		return nil, false
	}
	return maps.Clone(t.configs), true
}
