package brokerd

// Batched topic changes: CreateTopics, CreatePartitions and DeleteTopics
// apply every topic of one request and persist cluster.json once, so a
// request naming 1,000 topics costs one metadata rewrite (temp file, fsync,
// rename, fsync folder), not 1,000 rewrites of a growing file. Each topic
// still gets its own result; a failed metadata write fails every topic that
// was to be changed by it and undoes their in-memory and on-disk effects.

import (
	"maps"

	"github.com/twmb/franz-go/pkg/kerr"
)

// topicSpec is one topic to create: n <= 0 takes Config.Partitions.
type topicSpec struct {
	name    string
	n       int32
	configs map[string]string
}

// topicResult is one topic's outcome: its partition count, or an error.
type topicResult struct {
	n   int32
	err *kafkaErr
}

// createTopics creates every topic of specs (validateOnly: checks only) and
// returns one result per spec, in order.
func (c *Cluster) createTopics(specs []topicSpec, validateOnly bool) []topicResult {
	res := make([]topicResult, len(specs))
	for i := range specs {
		res[i].n, res[i].err = checkTopicSpec(&specs[i], c.cfg.Partitions)
	}

	// Reserve the names under the lock; partition folders are made
	// without it, so a large request does not stall every lookup.
	type pending struct {
		i     int
		first int32
		t     *topic
		mt    *metaTopic
	}
	var todo []pending
	c.mu.Lock()
	for i := range specs {
		if res[i].err != nil {
			continue
		}
		s := &specs[i]
		switch {
		case c.mu.closed:
			res[i].err = kErr(kerr.NotController, "cluster is shutting down")
			continue
		case c.mu.topics[s.name] != nil || c.mu.creating[s.name]:
			res[i].err = kErr(kerr.TopicAlreadyExists, "topic %q already exists", s.name)
			continue
		}
		if validateOnly {
			continue
		}
		c.mu.creating[s.name] = true
		todo = append(todo, pending{i: i, first: c.mu.nextLeader})
		c.mu.nextLeader += res[i].n
	}
	c.mu.Unlock()
	if len(todo) == 0 {
		return res
	}

	opened := todo[:0]
	for _, pd := range todo {
		s := &specs[pd.i]
		t, mt, err := c.openTopic(s.name, res[pd.i].n, pd.first, s.configs)
		if err != nil {
			res[pd.i].err = kErr(kerr.KafkaStorageError, "%v", err)
			c.mu.Lock()
			delete(c.mu.creating, s.name)
			c.mu.Unlock()
			continue
		}
		pd.t, pd.mt = t, mt
		opened = append(opened, pd)
	}
	if len(opened) == 0 {
		return res
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	var saveErr error
	if c.mu.closed {
		saveErr = ErrClosed
	} else {
		for _, pd := range opened {
			c.mu.meta.Topics[pd.t.name] = pd.mt
		}
		saveErr = saveMeta(c.cfg.Dir, c.mu.meta)
	}
	for _, pd := range opened {
		delete(c.mu.creating, pd.t.name)
		if saveErr != nil {
			delete(c.mu.meta.Topics, pd.t.name)
			for _, p := range pd.t.parts {
				p.log.Remove()
			}
			res[pd.i].err = kErr(kerr.KafkaStorageError, "%v", saveErr)
			continue
		}
		c.mu.topics[pd.t.name] = pd.t
		c.log.Debug("topic created", "topic", pd.t.name, "partitions", len(pd.t.parts))
	}
	if saveErr == nil {
		c.log.Info("topics created", "topics", len(opened), "first", opened[0].t.name)
	}
	return res
}

// checkTopicSpec validates s and returns its partition count (def when s
// asks for the default).
func checkTopicSpec(s *topicSpec, def int32) (int32, *kafkaErr) {
	if err := validTopicName(s.name); err != nil {
		return 0, kErr(kerr.InvalidTopicException, "%v", err)
	}
	n := s.n
	if n <= 0 {
		n = def
	}
	if n > maxPartitions {
		return 0, kErr(kerr.InvalidPartitions, "%d partitions: at most %d per topic", n, maxPartitions)
	}
	for k, v := range s.configs {
		if err := validateConfig(k, &v); err != nil {
			return 0, kErr(kerr.InvalidConfig, "%v", err)
		}
	}
	return n, nil
}

// openTopic makes a new topic's n partition logs, the first led by broker
// first (mod the broker count); on error nothing is left on disk.
func (c *Cluster) openTopic(name string, n, first int32, configs map[string]string) (*topic, *metaTopic, error) {
	cfgs := maps.Clone(configs)
	if cfgs == nil {
		cfgs = map[string]string{}
	}
	t := &topic{name: name, configs: cfgs, parts: make([]*partition, 0, n)}
	mt := &metaTopic{Configs: cfgs, Folders: make([]int32, 0, n)}
	for i := int32(0); i < n; i++ {
		folder := (first + i) % int32(len(c.brokers))
		p, err := c.openPartition(name, i, folder, cfgs)
		if err != nil {
			for _, p := range t.parts {
				p.log.Remove()
			}
			return nil, nil, err
		}
		t.parts = append(t.parts, p)
		mt.Folders = append(mt.Folders, folder)
	}
	return t, mt, nil
}

// deleteTopics removes every named topic and its data, with one metadata
// write, and returns one error (nil: deleted) per name.
func (c *Cluster) deleteTopics(names []string) []*kafkaErr {
	errs := make([]*kafkaErr, len(names))
	type gone struct {
		t  *topic
		mt *metaTopic
	}
	var del []gone
	c.mu.Lock()
	for i, name := range names {
		t := c.mu.topics[name]
		switch {
		case t == nil:
			errs[i] = kErr(kerr.UnknownTopicOrPartition, "unknown topic %q", name)
			continue
		case t.internal:
			errs[i] = kErr(kerr.InvalidRequest, "topic %q is internal", name)
			continue
		}
		del = append(del, gone{t, c.mu.meta.Topics[name]})
		delete(c.mu.topics, name)
		delete(c.mu.meta.Topics, name)
	}
	if len(del) == 0 {
		c.mu.Unlock()
		return errs
	}
	if err := saveMeta(c.cfg.Dir, c.mu.meta); err != nil {
		for _, g := range del {
			c.mu.topics[g.t.name] = g.t
			c.mu.meta.Topics[g.t.name] = g.mt
		}
		c.mu.Unlock()
		for i, name := range names {
			if errs[i] == nil {
				errs[i] = kErr(kerr.KafkaStorageError, "delete %q: %v", name, err)
			}
		}
		return errs
	}
	// Keep the names reserved until the folders are gone, or a topic
	// re-created at once would open the old folders and lose its own.
	for _, g := range del {
		c.mu.creating[g.t.name] = true
	}
	c.mu.Unlock()
	for _, g := range del {
		for _, p := range g.t.parts {
			if err := p.log.Remove(); err != nil {
				c.log.Warn("remove partition", "topic", g.t.name, "partition", p.index, "err", err)
			}
			// Wake long polls so they answer UNKNOWN_TOPIC_OR_PARTITION now.
			p.gone.Store(true)
			p.notify()
		}
		c.log.Info("topic deleted", "topic", g.t.name)
	}
	c.mu.Lock()
	for _, g := range del {
		delete(c.mu.creating, g.t.name)
	}
	c.mu.Unlock()
	return errs
}

// partitionGrowth is one topic of a CreatePartitions request.
type partitionGrowth struct {
	name  string
	count int32
}

// addPartitionsBatch grows every topic of gs to its count (validateOnly:
// checks only), with one metadata write, and returns one error per topic.
// A topic named twice in one request gets INVALID_REQUEST.
func (c *Cluster) addPartitionsBatch(gs []partitionGrowth, validateOnly bool) []*kafkaErr {
	errs := make([]*kafkaErr, len(gs))
	seen := make(map[string]int, len(gs))
	for _, g := range gs {
		seen[g.name]++
	}
	type grown struct {
		i          int
		t          *topic
		mt         *metaTopic
		parts      []*partition
		oldFolders []int32
		have       int32
	}
	var done []grown
	c.mu.Lock()
	defer c.mu.Unlock()
	undo := func() {
		for _, g := range done {
			g.mt.Folders = g.oldFolders
			for _, p := range g.parts[g.have:] {
				p.log.Remove()
			}
		}
	}
	next := c.mu.nextLeader
	for i, g := range gs {
		t := c.mu.topics[g.name]
		switch {
		case seen[g.name] > 1:
			errs[i] = kErr(kerr.InvalidRequest, "topic %q appears more than once in the request", g.name)
			continue
		case t == nil:
			errs[i] = kErr(kerr.UnknownTopicOrPartition, "unknown topic %q", g.name)
			continue
		case t.internal:
			errs[i] = kErr(kerr.InvalidRequest, "topic %q is internal", g.name)
			continue
		}
		have := int32(len(t.parts))
		switch {
		case g.count <= have:
			errs[i] = kErr(kerr.InvalidPartitions, "topic %q has %d partitions; the new count %d must be larger", g.name, have, g.count)
			continue
		case g.count > maxPartitions:
			errs[i] = kErr(kerr.InvalidPartitions, "%d partitions: at most %d per topic", g.count, maxPartitions)
			continue
		}
		if validateOnly {
			continue
		}
		mt := c.mu.meta.Topics[g.name]
		gr := grown{i: i, t: t, mt: mt, have: have, oldFolders: mt.Folders,
			parts: append([]*partition(nil), t.parts...)}
		folders := append([]int32(nil), mt.Folders...)
		var openErr error
		for j := have; j < g.count; j++ {
			folder := (next + j - have) % int32(len(c.brokers))
			p, err := c.openPartition(g.name, j, folder, t.configs)
			if err != nil {
				openErr = err
				break
			}
			gr.parts = append(gr.parts, p)
			folders = append(folders, folder)
		}
		if openErr != nil {
			for _, p := range gr.parts[have:] {
				p.log.Remove()
			}
			errs[i] = kErr(kerr.KafkaStorageError, "%v", openErr)
			continue
		}
		mt.Folders = folders
		next += g.count - have
		done = append(done, gr)
	}
	if len(done) == 0 {
		return errs
	}
	if err := saveMeta(c.cfg.Dir, c.mu.meta); err != nil {
		undo()
		for _, g := range done {
			errs[g.i] = kErr(kerr.KafkaStorageError, "%v", err)
		}
		return errs
	}
	c.mu.nextLeader = next
	for _, g := range done {
		g.t.parts = g.parts
	}
	return errs
}
