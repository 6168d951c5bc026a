package txn

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txn is one transactional id.
//
// Invariant: parts is empty unless state is Ongoing, PrepareCommit or
// PrepareAbort; start is set whenever state is Ongoing.
type txn struct {
	id      string
	pid     int64
	epoch   int16
	timeout time.Duration
	state   kmsg.TransactionState
	parts   map[TopicPartition]struct{}
	start   time.Time // the first add of the open transaction
	updated time.Time
	// retryAt is when markers of a Prepare* transaction are tried
	// again (zero: not waiting).
	retryAt time.Time
}

func (t *txn) partList() []TopicPartition {
	out := make([]TopicPartition, 0, len(t.parts))
	for tp := range t.parts {
		out = append(out, tp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

type state struct {
	cfg  Config
	txns map[string]*txn
	// refusedLogAt and refused rate-limit the log of new ids refused
	// by MaxTransactionalIDs: one line a minute, with the count held back.
	refusedLogAt time.Time
	refused      int
}

// refuseNewID logs, at most once a minute, that a new transactional id was
// refused because the coordinator holds MaxTransactionalIDs.
func (s *state) refuseNewID(id string, now time.Time) {
	s.refused++
	if now.Before(s.refusedLogAt) {
		return
	}
	s.cfg.Logger.Warn("txn: InitProducerId for a new transactional id refused: the coordinator holds the maximum number of transactional ids",
		"transactional_id", id, "ids", len(s.txns), "max_transactional_ids", s.cfg.MaxTransactionalIDs, "refused", s.refused)
	s.refusedLogAt, s.refused = now.Add(time.Minute), 0
}

func newState(cfg Config) *state {
	return &state{cfg: cfg, txns: make(map[string]*txn)}
}

// key and value encode the journal record of t (layout in doc.go).
func txnKey(id string) []byte {
	k := kmsg.TxnMetadataKey{Version: 0, TransactionalID: id}
	return k.AppendTo(nil)
}

func txnValue(t *txn) []byte {
	v := kmsg.NewTxnMetadataValue()
	v.Version = 0
	v.ProducerID, v.ProducerEpoch = t.pid, t.epoch
	v.TimeoutMillis = int32(t.timeout / time.Millisecond)
	v.State = t.state
	byTopic := map[string][]int32{}
	for _, tp := range t.partList() {
		byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
	}
	topics := make([]string, 0, len(byTopic))
	for tp := range byTopic {
		topics = append(topics, tp)
	}
	sort.Strings(topics)
	for _, tp := range topics {
		v.Topics = append(v.Topics, kmsg.TxnMetadataValueTopic{Topic: tp, Partitions: byTopic[tp]})
	}
	v.LastUpdateTimestamp = t.updated.UnixMilli()
	v.StartTimestamp = -1
	if !t.start.IsZero() {
		v.StartTimestamp = t.start.UnixMilli()
	}
	return v.AppendTo(nil)
}

// replay applies one journal record; the last record of an id wins.
func (s *state) replay(key, value []byte) error {
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return fmt.Errorf("%w: key: %w", ErrCorruptJournal, err)
	}
	if k.Version != 0 {
		return nil // a record kind this version does not know
	}
	if value == nil {
		delete(s.txns, k.TransactionalID)
		return nil
	}
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(value); err != nil {
		return fmt.Errorf("%w: %q: %w", ErrCorruptJournal, k.TransactionalID, err)
	}
	t := &txn{
		id: k.TransactionalID, pid: v.ProducerID, epoch: v.ProducerEpoch,
		timeout: time.Duration(v.TimeoutMillis) * time.Millisecond,
		state:   v.State,
		updated: time.UnixMilli(v.LastUpdateTimestamp),
		parts:   map[TopicPartition]struct{}{},
	}
	if v.StartTimestamp >= 0 {
		t.start = time.UnixMilli(v.StartTimestamp)
	}
	for _, tp := range v.Topics {
		for _, p := range tp.Partitions {
			t.parts[TopicPartition{tp.Topic, p}] = struct{}{}
		}
	}
	if t.state == kmsg.TransactionStateOngoing && t.start.IsZero() {
		t.start = t.updated
	}
	s.txns[t.id] = t
	return nil
}

// persist journals t as it is now; the caller applies nothing visible
// before it returned nil.
func (s *state) persist(t *txn) error {
	if s.cfg.Journal == nil {
		return nil
	}
	if err := s.cfg.Journal.Append([]KV{{Key: txnKey(t.id), Value: txnValue(t)}}); err != nil {
		s.cfg.Logger.Error("txn: journal append failed", "transactional_id", t.id, "err", err)
		return fmt.Errorf("%w: %w", ErrJournal, err)
	}
	return nil
}

// fencedCode is PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH for request
// versions from before KIP-588 introduced it.
func fencedCode(version, fencedFrom int16) int16 {
	if version >= fencedFrom {
		return kerr.ProducerFenced.Code
	}
	return kerr.InvalidProducerEpoch.Code
}

// check validates the producer of a request against its transactional
// id: 0, INVALID_PRODUCER_ID_MAPPING, or the fenced code.
func (s *state) check(id string, pid int64, epoch int16, version, fencedFrom int16) (*txn, int16) {
	t := s.txns[id]
	switch {
	case t == nil || t.pid != pid:
		return nil, kerr.InvalidProducerIDMapping.Code
	case epoch != t.epoch:
		return nil, fencedCode(version, fencedFrom)
	}
	return t, 0
}

func (s *state) initProducerID(r *kmsg.InitProducerIDRequest, now time.Time) *kmsg.InitProducerIDResponse {
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	id := *r.TransactionalID
	timeout := time.Duration(r.TransactionTimeoutMillis) * time.Millisecond
	if timeout <= 0 || timeout > s.cfg.MaxTimeout {
		resp.ErrorCode = kerr.InvalidTransactionTimeout.Code
		return resp
	}
	t := s.txns[id]
	if t == nil {
		if m := s.cfg.MaxTransactionalIDs; m > 0 && len(s.txns) >= m {
			s.refuseNewID(id, now)
			resp.ErrorCode = kerr.PolicyViolation.Code
			return resp
		}
		pid, err := s.cfg.AllocProducerID()
		if err != nil {
			resp.ErrorCode = kerr.KafkaStorageError.Code
			return resp
		}
		nt := &txn{id: id, pid: pid, epoch: 0, timeout: timeout, state: kmsg.TransactionStateEmpty, parts: map[TopicPartition]struct{}{}, updated: now}
		if err := s.persist(nt); err != nil {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return resp
		}
		s.txns[id] = nt
		resp.ProducerID, resp.ProducerEpoch = nt.pid, nt.epoch
		return resp
	}
	if t.state == kmsg.TransactionStatePrepareCommit || t.state == kmsg.TransactionStatePrepareAbort {
		s.complete(t, now)
		if t.state == kmsg.TransactionStatePrepareCommit || t.state == kmsg.TransactionStatePrepareAbort {
			resp.ErrorCode = kerr.ConcurrentTransactions.Code
			return resp
		}
	}
	if r.Version >= 3 && r.ProducerID >= 0 {
		switch {
		case r.ProducerID == t.pid && r.ProducerEpoch == t.epoch:
			// KIP-360: bump below.
		case r.ProducerID == t.pid && r.ProducerEpoch == t.epoch-1 && t.state != kmsg.TransactionStateOngoing:
			// A retry whose answer was lost.
			resp.ProducerID, resp.ProducerEpoch = t.pid, t.epoch
			return resp
		default:
			resp.ErrorCode = fencedCode(r.Version, 4)
			return resp
		}
	}
	code := s.bump(t, timeout, now)
	resp.ErrorCode = code
	if code == 0 {
		resp.ProducerID, resp.ProducerEpoch = t.pid, t.epoch
	}
	return resp
}

// bump gives t's producer a new epoch (a new id at the last epoch),
// aborting an open transaction with the new epoch first so the previous
// producer is fenced on every partition it touched.
func (s *state) bump(t *txn, timeout time.Duration, now time.Time) int16 {
	nt := *t
	if nt.epoch >= math.MaxInt16-1 {
		pid, err := s.cfg.AllocProducerID()
		if err != nil {
			return kerr.KafkaStorageError.Code
		}
		if t.state == kmsg.TransactionStateOngoing {
			// End the old id's transaction with its own last epoch.
			if code := s.abort(t, t.epoch, now); code != 0 {
				return code
			}
			if t.state == kmsg.TransactionStatePrepareAbort {
				return kerr.ConcurrentTransactions.Code // markers pending
			}
			nt = *t
		}
		nt.pid, nt.epoch = pid, 0
	} else {
		nt.epoch++
		if t.state == kmsg.TransactionStateOngoing {
			if code := s.abort(t, nt.epoch, now); code != 0 {
				return code
			}
			if t.state == kmsg.TransactionStatePrepareAbort {
				return kerr.ConcurrentTransactions.Code // markers pending
			}
			nt = *t
		}
	}
	nt.timeout = timeout
	nt.state = kmsg.TransactionStateEmpty
	nt.parts = map[TopicPartition]struct{}{}
	nt.start = time.Time{}
	nt.updated = now
	if err := s.persist(&nt); err != nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	*t = nt
	return 0
}

// abort ends t's open transaction with an abort written with epoch
// (bumped when fencing). It returns a kerr code when the decision could
// not be journaled.
func (s *state) abort(t *txn, epoch int16, now time.Time) int16 {
	nt := *t
	nt.epoch = epoch
	nt.state = kmsg.TransactionStatePrepareAbort
	nt.updated = now
	if err := s.persist(&nt); err != nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	*t = nt
	s.complete(t, now)
	return 0
}

// complete writes the markers of a Prepare* transaction and journals its
// end; on failure it stays in Prepare* and is retried by tick.
func (s *state) complete(t *txn, now time.Time) {
	commit := t.state == kmsg.TransactionStatePrepareCommit
	if err := s.cfg.Markers.WriteMarkers(t.pid, t.epoch, commit, t.partList()); err != nil {
		s.cfg.Logger.Warn("txn: writing markers failed; will retry", "transactional_id", t.id, "commit", commit, "err", err)
		t.retryAt = now.Add(s.cfg.RetryInterval)
		return
	}
	nt := *t
	nt.state = kmsg.TransactionStateCompleteAbort
	if commit {
		nt.state = kmsg.TransactionStateCompleteCommit
	}
	nt.parts = map[TopicPartition]struct{}{}
	nt.start, nt.retryAt, nt.updated = time.Time{}, time.Time{}, now
	if err := s.persist(&nt); err != nil {
		// The markers are written; a replay finds Prepare* and writes
		// them again, which is harmless.
		t.retryAt = now.Add(s.cfg.RetryInterval)
		return
	}
	*t = nt
}

func (s *state) addPartitions(r *kmsg.AddPartitionsToTxnRequest, now time.Time) *kmsg.AddPartitionsToTxnResponse {
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	t, code := s.check(r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Version, 2)
	if code == 0 {
		code = s.ready(t, now)
	}
	var unknown bool
	for _, rt := range r.Topics {
		for _, p := range rt.Partitions {
			if !s.cfg.PartitionExists(rt.Topic, p) {
				unknown = true
			}
		}
	}
	answer := func(topic string, p int32) int16 {
		switch {
		case code != 0:
			return code
		case !s.cfg.PartitionExists(topic, p):
			return kerr.UnknownTopicOrPartition.Code
		case unknown:
			return kerr.OperationNotAttempted.Code
		}
		return 0
	}
	for _, rt := range r.Topics {
		st := kmsg.NewAddPartitionsToTxnResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			sp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			sp.Partition = p
			sp.ErrorCode = answer(rt.Topic, p)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if code != 0 || unknown {
		return resp
	}
	var add []TopicPartition
	for _, rt := range r.Topics {
		for _, p := range rt.Partitions {
			add = append(add, TopicPartition{rt.Topic, p})
		}
	}
	if code := s.add(t, add, now); code != 0 {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
	}
	return resp
}

// ready finishes a Prepare* transaction if it can and says whether t can
// take part in a new one: CONCURRENT_TRANSACTIONS while markers are
// pending.
func (s *state) ready(t *txn, now time.Time) int16 {
	if t.state == kmsg.TransactionStatePrepareCommit || t.state == kmsg.TransactionStatePrepareAbort {
		s.complete(t, now)
	}
	if t.state == kmsg.TransactionStatePrepareCommit || t.state == kmsg.TransactionStatePrepareAbort {
		return kerr.ConcurrentTransactions.Code
	}
	return 0
}

// add puts partitions into t's transaction, starting it if needed.
func (s *state) add(t *txn, add []TopicPartition, now time.Time) int16 {
	nt := *t
	nt.parts = make(map[TopicPartition]struct{}, len(t.parts)+len(add))
	for tp := range t.parts {
		nt.parts[tp] = struct{}{}
	}
	grew := false
	for _, tp := range add {
		if _, ok := nt.parts[tp]; !ok {
			nt.parts[tp] = struct{}{}
			grew = true
		}
	}
	if t.state != kmsg.TransactionStateOngoing {
		nt.state = kmsg.TransactionStateOngoing
		nt.start = now
		grew = true
	}
	if !grew {
		return 0
	}
	nt.updated = now
	if err := s.persist(&nt); err != nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	*t = nt
	return 0
}

func (s *state) addOffsets(r *kmsg.AddOffsetsToTxnRequest, now time.Time) *kmsg.AddOffsetsToTxnResponse {
	resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	t, code := s.check(r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Version, 2)
	if code == 0 {
		code = s.ready(t, now)
	}
	if code == 0 {
		code = s.add(t, []TopicPartition{{OffsetsTopic, 0}}, now)
	}
	resp.ErrorCode = code
	return resp
}

func (s *state) endTxn(r *kmsg.EndTxnRequest, now time.Time) *kmsg.EndTxnResponse {
	resp := r.ResponseKind().(*kmsg.EndTxnResponse)
	t, code := s.check(r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Version, 2)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	switch t.state {
	case kmsg.TransactionStateOngoing:
		nt := *t
		nt.state = kmsg.TransactionStatePrepareAbort
		if r.Commit {
			nt.state = kmsg.TransactionStatePrepareCommit
		}
		nt.updated = now
		if err := s.persist(&nt); err != nil {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return resp
		}
		*t = nt
		// The outcome is decided and durable: a marker failure is
		// retried, not reported.
		s.complete(t, now)
	case kmsg.TransactionStatePrepareCommit, kmsg.TransactionStatePrepareAbort:
		if (t.state == kmsg.TransactionStatePrepareCommit) != r.Commit {
			resp.ErrorCode = kerr.InvalidTxnState.Code
			break
		}
		s.complete(t, now)
	case kmsg.TransactionStateCompleteCommit, kmsg.TransactionStateCompleteAbort:
		// A retry of the EndTxn that got here is answered as it was.
		if (t.state == kmsg.TransactionStateCompleteCommit) != r.Commit {
			resp.ErrorCode = kerr.InvalidTxnState.Code
		}
	default:
		resp.ErrorCode = kerr.InvalidTxnState.Code
	}
	return resp
}

// verify: see Coordinator.Verify.
func (s *state) verify(id string, pid int64, epoch int16, parts []TopicPartition) []int16 {
	codes := make([]int16, len(parts))
	t, code := s.check(id, pid, epoch, math.MaxInt16, 0)
	for i, tp := range parts {
		switch {
		case code != 0:
			codes[i] = code
		case t.state != kmsg.TransactionStateOngoing:
			codes[i] = kerr.InvalidTxnState.Code
		default:
			if _, ok := t.parts[tp]; !ok {
				codes[i] = kerr.InvalidTxnState.Code
			}
		}
	}
	return codes
}

// tick aborts transactions past their timeout and retries pending markers.
func (s *state) tick(now time.Time) {
	for _, id := range s.sortedIDs() {
		t := s.txns[id]
		switch t.state {
		case kmsg.TransactionStateOngoing:
			if !now.Before(t.start.Add(t.timeout)) {
				s.cfg.Logger.Info("txn: aborting timed-out transaction", "transactional_id", id, "producer_id", t.pid, "timeout", t.timeout)
				// Bump the epoch: the producer that let it run out is
				// fenced, as Kafka does.
				epoch := t.epoch
				if epoch < math.MaxInt16-1 {
					epoch++
				}
				s.abort(t, epoch, now)
			}
		case kmsg.TransactionStatePrepareCommit, kmsg.TransactionStatePrepareAbort:
			if !now.Before(t.retryAt) {
				s.complete(t, now)
			}
		}
	}
}

func (s *state) sortedIDs() []string {
	ids := make([]string, 0, len(s.txns))
	for id := range s.txns {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// nextDeadline is the earliest time tick has something to do.
func (s *state) nextDeadline(now time.Time) (time.Time, bool) {
	var dl time.Time
	for _, t := range s.txns {
		var at time.Time
		switch t.state {
		case kmsg.TransactionStateOngoing:
			at = t.start.Add(t.timeout)
		case kmsg.TransactionStatePrepareCommit, kmsg.TransactionStatePrepareAbort:
			at = t.retryAt
			if at.IsZero() {
				at = now
			}
		default:
			continue
		}
		if dl.IsZero() || at.Before(dl) {
			dl = at
		}
	}
	return dl, !dl.IsZero()
}

func (s *state) describe(r *kmsg.DescribeTransactionsRequest) *kmsg.DescribeTransactionsResponse {
	resp := r.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range r.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		t := s.txns[id]
		if t == nil {
			st.ErrorCode = kerr.TransactionalIDNotFound.Code
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		st.State = t.state.String()
		st.TimeoutMillis = int32(t.timeout / time.Millisecond)
		st.StartTimestamp = -1
		if !t.start.IsZero() {
			st.StartTimestamp = t.start.UnixMilli()
		}
		st.ProducerID, st.ProducerEpoch = t.pid, t.epoch
		var cur *kmsg.DescribeTransactionsResponseTransactionStateTopic
		for _, tp := range t.partList() {
			if cur == nil || cur.Topic != tp.Topic {
				st.Topics = append(st.Topics, kmsg.NewDescribeTransactionsResponseTransactionStateTopic())
				cur = &st.Topics[len(st.Topics)-1]
				cur.Topic = tp.Topic
			}
			cur.Partitions = append(cur.Partitions, tp.Partition)
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp
}

func (s *state) list(r *kmsg.ListTransactionsRequest, now time.Time) *kmsg.ListTransactionsResponse {
	resp := r.ResponseKind().(*kmsg.ListTransactionsResponse)
	var re *regexp.Regexp
	if r.TransactionalIDPattern != nil && *r.TransactionalIDPattern != "" {
		var err error
		if re, err = regexp.Compile(*r.TransactionalIDPattern); err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp
		}
	}
	for _, f := range r.StateFilters {
		if !slices.Contains(kmsg.TransactionStateStrings(), f) {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, f)
		}
	}
	for _, id := range s.sortedIDs() {
		t := s.txns[id]
		if len(r.StateFilters) > 0 && !slices.Contains(r.StateFilters, t.state.String()) {
			continue
		}
		if len(r.ProducerIDFilters) > 0 && !slices.Contains(r.ProducerIDFilters, t.pid) {
			continue
		}
		if r.DurationFilterMillis >= 0 && r.Version >= 1 {
			// Only transactions running longer than the filter.
			if t.state != kmsg.TransactionStateOngoing || now.Sub(t.start) < time.Duration(r.DurationFilterMillis)*time.Millisecond {
				continue
			}
		}
		if re != nil && !re.MatchString(id) {
			continue
		}
		ts := kmsg.NewListTransactionsResponseTransactionState()
		ts.TransactionalID, ts.ProducerID, ts.TransactionState = id, t.pid, t.state.String()
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return resp
}
