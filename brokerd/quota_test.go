package brokerd

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func alterQuota(t *testing.T, adm *kadm.Client, entity kadm.ClientQuotaEntity, ops ...kadm.AlterClientQuotaOp) error {
	t.Helper()
	res, err := adm.AlterClientQuotas(context.Background(), []kadm.AlterClientQuotaEntry{{Entity: entity, Ops: ops}})
	if err != nil {
		t.Fatal(err)
	}
	return res[0].Err
}

func TestClientQuotasAlterDescribePersist(t *testing.T) {
	dir := t.TempDir()
	c := startCluster(t, Config{Dir: dir, Brokers: 1})
	adm := kadm.NewClient(newClient(t, c))
	ctx := context.Background()

	client := kadm.ClientQuotaEntity{{Type: "client-id", Name: strp("limited")}}
	userDefault := kadm.ClientQuotaEntity{{Type: "user", Name: nil}}
	if err := alterQuota(t, adm, client, kadm.AlterClientQuotaOp{Key: QuotaProducerByteRate, Value: 1e6}); err != nil {
		t.Fatal(err)
	}
	if err := alterQuota(t, adm, userDefault, kadm.AlterClientQuotaOp{Key: QuotaRequestPercentage, Value: 50}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		entity kadm.ClientQuotaEntity
		op     kadm.AlterClientQuotaOp
	}{
		{client, kadm.AlterClientQuotaOp{Key: "no_such_quota", Value: 1}},
		{client, kadm.AlterClientQuotaOp{Key: QuotaProducerByteRate, Value: -1}},
		{kadm.ClientQuotaEntity{{Type: "ip", Name: strp("1.2.3.4")}}, kadm.AlterClientQuotaOp{Key: QuotaProducerByteRate, Value: 1}},
		{kadm.ClientQuotaEntity{{Type: "user", Name: strp("a")}, {Type: "user", Name: strp("b")}}, kadm.AlterClientQuotaOp{Key: QuotaProducerByteRate, Value: 1}},
	} {
		if err := alterQuota(t, adm, bad.entity, bad.op); !errors.Is(err, kerr.InvalidRequest) {
			t.Errorf("alter %v %v: %v, want INVALID_REQUEST", bad.entity, bad.op, err)
		}
	}

	describe := func(adm *kadm.Client) map[string]float64 {
		t.Helper()
		got, err := adm.DescribeClientQuotas(ctx, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, q := range got {
			for _, v := range q.Values {
				out[q.Entity.String()+" "+v.Key] = v.Value
			}
		}
		return out
	}
	want := map[string]float64{
		"{client-id=limited} producer_byte_rate": 1e6,
		"{user=<default>} request_percentage":    50,
	}
	check := func(got map[string]float64) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("described %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("described %v, want %v", got, want)
			}
		}
	}
	check(describe(adm))

	// Filters: an exact client id, strictly.
	got, err := adm.DescribeClientQuotas(ctx, true, []kadm.DescribeClientQuotaComponent{{Type: "client-id", MatchName: strp("limited"), MatchType: 0}})
	if err != nil || len(got) != 1 || got[0].Entity.String() != "{client-id=limited}" {
		t.Fatalf("exact describe: %v %v", got, err)
	}
	got, err = adm.DescribeClientQuotas(ctx, true, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: 1}})
	if err != nil || len(got) != 1 || got[0].Entity.String() != "{user=<default>}" {
		t.Fatalf("default describe: %v %v", got, err)
	}

	addr := c.Addrs()[0]
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c2 := startCluster(t, Config{Dir: dir, Brokers: 1, Listen: addr})
	check(describe(kadm.NewClient(newClient(t, c2))))

	// Removing the last value forgets the entity.
	adm2 := kadm.NewClient(newClient(t, c2))
	if err := alterQuota(t, adm2, client, kadm.AlterClientQuotaOp{Key: QuotaProducerByteRate, Remove: true}); err != nil {
		t.Fatal(err)
	}
	delete(want, "{client-id=limited} producer_byte_rate")
	check(describe(adm2))
}

// TestQuotaPrecedence checks Kafka's eight levels, each key on its own.
func TestQuotaPrecedence(t *testing.T) {
	q := &quotas{window: time.Second}
	q.mu.values = map[quotaEntity]map[string]float64{}
	set := func(e quotaEntity, v float64) { q.mu.values[e] = map[string]float64{QuotaProducerByteRate: v} }
	none := quotaPart{}
	levels := []quotaEntity{
		{named("u"), named("c")},
		{named("u"), defaultPart()},
		{named("u"), none},
		{defaultPart(), named("c")},
		{defaultPart(), defaultPart()},
		{defaultPart(), none},
		{none, named("c")},
		{none, defaultPart()},
	}
	// Set from the least specific up: each new level must win.
	for i := len(levels) - 1; i >= 0; i-- {
		set(levels[i], float64(i+1))
		rate, meter, ok := q.resolveLocked(QuotaProducerByteRate, "u", "c")
		if !ok || rate != float64(i+1) {
			t.Fatalf("level %d: rate %v ok %v", i+1, rate, ok)
		}
		// The meter names the request's user and client where the
		// entity has them, so defaults are metered per user/client.
		if meter.User.Set != levels[i].User.Set || meter.User.Set && meter.User.Name != "u" || meter.Client.Set && meter.Client.Name != "c" {
			t.Fatalf("level %d: meter %+v", i+1, meter)
		}
		if _, _, ok := q.resolveLocked(QuotaConsumerByteRate, "u", "c"); ok {
			t.Fatalf("level %d: consumer quota resolved from a producer one", i+1)
		}
	}
	// Another user and client fall to the defaults.
	if rate, _, _ := q.resolveLocked(QuotaProducerByteRate, "v", "d"); rate != 5 {
		t.Fatalf("other user and client: %v, want the <default>/<default> quota 5", rate)
	}
}

// throttleHook records the throttles a franz-go client is told of.
type throttleHook struct {
	mu    sync.Mutex
	times []time.Time // when each throttled response was read
	acked *atomic.Int64
	// ackedAtFirst is acked when the first throttle was read.
	ackedAtFirst int64
}

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	if d <= 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.times) == 0 && h.acked != nil {
		h.ackedAtFirst = h.acked.Load()
	}
	h.times = append(h.times, time.Now())
}

func (h *throttleHook) snapshot() (times []time.Time, ackedAtFirst int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.times), h.ackedAtFirst
}

// TestProducerByteRateHeld: a franz-go producer with a producer_byte_rate
// quota of 1 MiB/s set through AlterClientQuotas writes at that rate, within
// 10 %, and a client without a quota producing at the same time is never
// throttled. STRAIT_LONG=1 measures over 20 s, as the acceptance asks;
// otherwise over 3 s.
//
// The rate is measured from the first throttle on, not from the start: the
// quota lets a client run one window (1 s) ahead of it, so a client starts
// with a burst of a window's bytes at whatever speed it has, which in a
// 5 s run alone weighs 20 %. From the first throttle on, the broker's meter
// is a window ahead and every further byte is paid for at the quota's rate.
//
// The upper bound is the broker's enforcement and holds on any machine. The
// lower bound holds only for a client that keeps up with its quota: on a
// loaded machine a producer may fall below 1 MiB/s of its own accord. It is
// asserted when the broker was still throttling the client at the end of
// the measurement: a throttle means the meter was a window ahead then, as
// it was at the start, so the client had paid for the whole span in
// between at the quota's rate.
func TestProducerByteRateHeld(t *testing.T) {
	measure := 3 * time.Second
	if os.Getenv("STRAIT_LONG") != "" {
		measure = 20 * time.Second
	}
	c := startCluster(t, Config{Brokers: 1})
	adm := kadm.NewClient(newClient(t, c))
	ctx := context.Background()
	if _, err := adm.CreateTopics(ctx, 1, 1, nil, "q", "free"); err != nil {
		t.Fatal(err)
	}
	const rate = 1 << 20
	if err := alterQuota(t, adm, kadm.ClientQuotaEntity{{Type: "client-id", Name: strp("limited")}}, kadm.AlterClientQuotaOp{Key: QuotaProducerByteRate, Value: rate}); err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 1000)
	// Small batches keep the rate's granularity fine: each produce request
	// is at most 16 KiB, 1.6 % of a second's quota.
	opts := func(clientID, topic string, hook *throttleHook) []kgo.Opt {
		return []kgo.Opt{kgo.ClientID(clientID), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()),
			kgo.ProducerBatchMaxBytes(16 << 10), kgo.MaxBufferedBytes(256 << 10), kgo.WithHooks(hook)}
	}

	var acked atomic.Int64
	limitedHook := &throttleHook{acked: &acked}
	limited := newClient(t, c, opts("limited", "q", limitedHook)...)
	stop := make(chan struct{})
	produced := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				produced <- limited.Flush(ctx)
				return
			default:
			}
			limited.Produce(ctx, &kgo.Record{Value: value}, func(r *kgo.Record, err error) {
				if err != nil {
					t.Errorf("limited produce: %v", err)
					return
				}
				acked.Add(int64(len(r.Value)))
			})
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
			<-produced
		}
	}()

	waitFor(t, 30*time.Second, "the first throttle of the limited producer", func() bool {
		times, _ := limitedHook.snapshot()
		return len(times) > 0
	})
	times, ackedAtFirst := limitedHook.snapshot()
	first := times[0]

	// Meanwhile a producer without a quota writes 4 MiB, four windows of
	// the other client's quota, to a topic of its own: it must never be
	// throttled.
	freeHook := &throttleHook{}
	free := newClient(t, c, opts("free", "free", freeHook)...)
	freeStart := time.Now()
	const freeBytes = 4 << 20
	for range freeBytes / len(value) {
		free.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("free produce: %v", err)
			}
		})
	}
	if err := free.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("producer without a quota: %d bytes at %.1f MB/s", freeBytes, freeBytes/time.Since(freeStart).Seconds()/1e6)

	timer := time.NewTimer(time.Until(first.Add(measure)))
	<-timer.C
	end, ackedAtEnd := time.Now(), acked.Load()
	close(stop)
	if err := <-produced; err != nil {
		t.Fatal(err)
	}

	span := end.Sub(first)
	got := float64(ackedAtEnd-ackedAtFirst) / span.Seconds()
	times, _ = limitedHook.snapshot()
	last := first
	for _, at := range times {
		if !at.After(end) {
			last = at
		}
	}
	t.Logf("limited producer: %.0f B/s over %v from its first throttle (quota %d B/s, %.3f×); %d throttles, the last %v before the end",
		got, span.Round(time.Millisecond), rate, got/rate, len(times), end.Sub(last).Round(time.Millisecond))
	if got > 1.1*rate {
		t.Errorf("limited producer wrote %.0f B/s, more than 10 %% over its quota %d B/s", got, rate)
	}
	if keptUp := end.Sub(last) < span/20; keptUp && got < 0.9*rate {
		t.Errorf("limited producer wrote %.0f B/s while throttled to the end, more than 10 %% under its quota %d B/s", got, rate)
	} else if !keptUp {
		t.Logf("the limited producer was not throttled in the last %v: it fell behind its quota on its own, the lower bound is not checked", span/20)
	}

	if times, _ := freeHook.snapshot(); len(times) != 0 {
		t.Errorf("the producer without a quota was throttled %d times", len(times))
	}
	var limitedThrottle time.Duration
	for _, m := range c.QuotaMetrics() {
		switch m.ClientID {
		case "limited":
			limitedThrottle += m.Throttled
		case "free":
			if m.Throttled != 0 {
				t.Errorf("broker metered %v of throttle for the producer without a quota", m.Throttled)
			}
		}
	}
	if limitedThrottle == 0 {
		t.Error("broker metered no throttle time for the limited producer")
	}
}

// TestThrottleMutesConnection: a client that ignores throttle_time_ms is
// held back all the same, since its connection is muted (KIP-219).
func TestThrottleMutesConnection(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1, QuotaWindow: time.Millisecond})
	adm := kadm.NewClient(newClient(t, c))
	// The raw connection's client id is "test" (see encodeRequest).
	if err := alterQuota(t, adm, kadm.ClientQuotaEntity{{Type: "client-id", Name: strp("test")}}, kadm.AlterClientQuotaOp{Key: QuotaRequestPercentage, Value: 0.1}); err != nil {
		t.Fatal(err)
	}
	rc := dialRaw(t, c.Addrs()[0])
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 9
	first := rc.roundTrip(req).(*kmsg.MetadataResponse)
	// 0.1% of a thread: any handling time beyond a millisecond's
	// window of 1µs is throttled, so the first answer already is.
	if first.ThrottleMillis <= 0 {
		t.Fatalf("throttle %d ms, want > 0", first.ThrottleMillis)
	}
	// The next request, sent at once, is not read until the throttle has
	// passed: its answer cannot arrive sooner.
	sent := time.Now()
	rc.roundTrip(req)
	if waited := time.Since(sent); waited < time.Duration(first.ThrottleMillis-1)*time.Millisecond {
		t.Fatalf("second answer after %v, throttle was %d ms", waited, first.ThrottleMillis)
	}
}

// TestRequestPercentageHoldsFlood: a client flooding cheap Metadata
// requests without honouring throttle_time_ms is held to its share of
// request-handling time, since its connection is muted; the handling time
// charged can exceed the quota by at most one window and one request.
// Another client's produce latency is logged, alone and during the flood.
func TestRequestPercentageHoldsFlood(t *testing.T) {
	c := startCluster(t, Config{Brokers: 1})
	adm := kadm.NewClient(newClient(t, c))
	ctx := context.Background()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "q"); err != nil {
		t.Fatal(err)
	}
	const pct = 1.0
	// The raw connection's client id is "test" (see encodeRequest).
	if err := alterQuota(t, adm, kadm.ClientQuotaEntity{{Type: "client-id", Name: strp("test")}}, kadm.AlterClientQuotaOp{Key: QuotaRequestPercentage, Value: pct}); err != nil {
		t.Fatal(err)
	}
	prod := newClient(t, c, kgo.ClientID("producer"), kgo.DefaultProduceTopic("q"), kgo.ProducerLinger(0))
	p99 := func(n int) time.Duration {
		lats := make([]time.Duration, 0, n)
		for range n {
			start := time.Now()
			if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			lats = append(lats, time.Since(start))
		}
		slices.Sort(lats)
		return lats[len(lats)*99/100]
	}
	alone := p99(300)

	rc := dialRaw(t, c.Addrs()[0])
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 9
	start := time.Now()
	done := make(chan int)
	go func() {
		n := 0
		for time.Since(start) < 2*time.Second {
			rc.roundTrip(req)
			n++
		}
		done <- n
	}()
	loaded := p99(300)
	served := <-done
	elapsed := time.Since(start)
	t.Logf("produce p99 alone %v, during the flood %v; flood served %d requests in %v", alone, loaded, served, elapsed.Round(time.Millisecond))

	var used float64
	var throttled time.Duration
	for _, m := range c.QuotaMetrics() {
		if m.ClientID == "test" && m.Key == QuotaRequestPercentage {
			used, throttled = m.Used, m.Throttled
		}
		if m.ClientID == "producer" && m.Throttled > 0 {
			t.Errorf("the producer without a quota was throttled %v", m.Throttled)
		}
	}
	if throttled == 0 {
		t.Fatal("the flood was never throttled")
	}
	window := time.Second.Seconds()
	if limit := pct / 100 * (elapsed.Seconds() + window); used > limit+0.05 {
		t.Fatalf("flood charged %.3fs of handling in %v, quota allows %.3fs (+ one request)", used, elapsed, limit)
	}
}

// TestRequestPercentageProduceP99 (STRAIT_LONG=1) measures what a client
// flooding Metadata on four connections, held to 1 % of a request thread,
// costs another client's produce latency: the produce p99 during the flood
// against the p99 alone, over three rounds of 3 s each, alternated so a
// change in the machine's load falls on both. A phase is much longer than
// the quota window, so the flood's first burst (a window's share of handling
// time, taken at full speed) is a small part of it. It fails when the ratio passes 2×
// (the acceptance); it is no unit test, since a latency on a shared machine
// is a measurement, not a property of the code.
func TestRequestPercentageProduceP99(t *testing.T) {
	if os.Getenv("STRAIT_LONG") == "" {
		t.Skip("STRAIT_LONG=1 measures produce p99 under a request-percentage flood")
	}
	c := startCluster(t, Config{Brokers: 1})
	adm := kadm.NewClient(newClient(t, c))
	ctx := context.Background()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "q"); err != nil {
		t.Fatal(err)
	}
	const pct = 1.0
	// The raw connections' client id is "test" (see encodeRequest).
	if err := alterQuota(t, adm, kadm.ClientQuotaEntity{{Type: "client-id", Name: strp("test")}}, kadm.AlterClientQuotaOp{Key: QuotaRequestPercentage, Value: pct}); err != nil {
		t.Fatal(err)
	}
	prod := newClient(t, c, kgo.ClientID("producer"), kgo.DefaultProduceTopic("q"), kgo.ProducerLinger(0))
	sample := func(d time.Duration) []time.Duration {
		var lats []time.Duration
		for begin := time.Now(); time.Since(begin) < d; {
			start := time.Now()
			if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			lats = append(lats, time.Since(start))
		}
		return lats
	}
	p99 := func(lats []time.Duration) time.Duration {
		s := slices.Clone(lats)
		slices.Sort(s)
		return s[len(s)*99/100]
	}
	sample(time.Second) // warm the connection and the partition

	const conns, rounds, phase = 4, 3, 3 * time.Second
	flooders := make([]*rawConn, conns)
	for i := range flooders {
		flooders[i] = dialRaw(t, c.Addrs()[0])
	}
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 9
	// flooded samples the produce latency for one phase while the
	// flooders send Metadata as fast as they are answered; it returns the
	// latencies and the flood's requests per second.
	flooded := func() ([]time.Duration, float64) {
		stop := make(chan struct{})
		counts := make(chan int, conns)
		for _, rc := range flooders {
			go func() {
				n := 0
				for {
					select {
					case <-stop:
						counts <- n
						return
					default:
					}
					rc.roundTrip(req)
					n++
				}
			}()
		}
		start := time.Now()
		lats := sample(phase)
		close(stop)
		n := 0
		for range conns {
			n += <-counts
		}
		return lats, float64(n) / time.Since(start).Seconds()
	}
	var alone, loaded []time.Duration
	for round := range rounds {
		a := sample(phase)
		l, perSec := flooded()
		t.Logf("round %d: produce p99 alone %v, during the flood %v (%.2f×); flood served %.0f requests/s",
			round+1, p99(a), p99(l), float64(p99(l))/float64(p99(a)), perSec)
		alone, loaded = append(alone, a...), append(loaded, l...)
	}
	ratio := float64(p99(loaded)) / float64(p99(alone))
	t.Logf("produce p99 over %d rounds: alone %v, during the flood %v: %.2f× (acceptance: within 2×)", rounds, p99(alone), p99(loaded), ratio)

	var throttled time.Duration
	for _, m := range c.QuotaMetrics() {
		if m.ClientID == "test" && m.Key == QuotaRequestPercentage {
			throttled = m.Throttled
		}
	}
	if throttled == 0 {
		t.Fatal("the flood was never throttled")
	}
	if ratio > 2 {
		t.Errorf("produce p99 during the flood is %.2f× its value alone, more than 2×", ratio)
	}

	// For scale, the same flood without its quota.
	if err := alterQuota(t, adm, kadm.ClientQuotaEntity{{Type: "client-id", Name: strp("test")}}, kadm.AlterClientQuotaOp{Key: QuotaRequestPercentage, Remove: true}); err != nil {
		t.Fatal(err)
	}
	l, perSec := flooded()
	t.Logf("without the quota: produce p99 during the flood %v (%.2f× alone); flood served %.0f requests/s", p99(l), float64(p99(l))/float64(p99(alone)), perSec)
}
