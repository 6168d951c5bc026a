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
	r := c.createTopics([]topicSpec{{name: name, n: n, configs: configs}}, validateOnly)[0]
	return r.n, r.err
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
