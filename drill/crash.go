package drill

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/brokerd"
)

// The crash scenarios: mirror-crash, network-partition and broker-crash.
// Each streams numbered records to the source at streamRate while it
// breaks something again and again, never restarts the mirror by hand
// except where the mirror is what was killed, and then checks every
// acknowledged record on the destination (and, for broker-crash, on the
// source): present once, in order per partition. rto_ms is the longest
// recovery the scenario saw, as its comment says.

const streamRate = 1000

// faultSizes are how many times each scenario breaks something; `strait
// drill` runs drillSizes, the tests a short form unless STRAIT_LONG=1.
type faultSizes struct {
	mirrorKills     int // mirror-crash: kill -9 of the mirror
	partitionRounds int // network-partition: rounds of cut, delay and reset
	brokerCrashes   int // broker-crash: rounds of source kill, destination kill
	settle          time.Duration
	outage          time.Duration // network-partition: how long a cut or a delay lasts
}

var drillSizes = faultSizes{mirrorKills: 10, partitionRounds: 2, brokerCrashes: 2, settle: 2 * time.Second, outage: 4 * time.Second}

func runMirrorCrash(ctx context.Context, dir string, log *slog.Logger) (*Result, error) {
	return mirrorCrash(ctx, dir, log, drillSizes)
}

func runNetworkPartition(ctx context.Context, dir string, log *slog.Logger) (*Result, error) {
	return networkPartition(ctx, dir, log, drillSizes)
}

func runBrokerCrash(ctx context.Context, dir string, log *slog.Logger) (*Result, error) {
	return brokerCrash(ctx, dir, log, drillSizes)
}

// endTotal sums a topic's end offsets (0 while it is unknown).
func endTotal(ctx context.Context, adm *kadm.Client, topic string) int64 {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			n += o.Offset
		}
	})
	return n
}

// waitGrowth polls until the topic holds more than from records, failing
// early when broken reports a reason (a process that died).
func waitGrowth(ctx context.Context, adm *kadm.Client, topic string, from int64, within time.Duration, broken func() error) error {
	deadline := time.Now().Add(within)
	for {
		if endTotal(ctx, adm, topic) > from {
			return nil
		}
		if broken != nil {
			if err := broken(); err != nil {
				return err
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: the mirror copied nothing new within %v", ErrVerify, within)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

func adminFor(addrs []string, opts ...kgo.Opt) (*kadm.Client, func(), error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrScenario, err)
	}
	return kadm.NewClient(cl), func() { closeBounded(cl.Close) }, nil
}

// mirrorCrash: the mirror runs as its own `strait mirror` process and is
// killed with SIGKILL at random moments while it copies (each time after
// it has copied something since its start), then started again on the
// same configuration. Its checkpoints and the destination's tail must
// bring every restart back to exactly where the killed one stopped.
// rto_ms: the longest time from a restart to the first record it copied.
func mirrorCrash(ctx context.Context, dir string, log *slog.Logger, sz faultSizes) (*Result, error) {
	bin, err := straitBinary()
	if err != nil {
		return nil, err
	}
	pair, err := StartPair(ctx, dir, 1, log)
	if err != nil {
		return nil, err
	}
	defer pair.Close()
	if _, err := EmbeddedConfig(dir, pair, "batch"); err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "drill.yaml")
	prod, err := producerFor(pair.East.Addrs())
	if err != nil {
		return nil, err
	}
	defer closeBounded(prod.Close)
	if err := createTopics(ctx, kadm.NewClient(prod), []TopicSpec{{Name: EmbeddedTopic, Partitions: 4}}); err != nil {
		return nil, err
	}
	west, closeWest, err := adminFor(pair.West.Addrs())
	if err != nil {
		return nil, err
	}
	defer closeWest()
	s := newStream(EmbeddedTopic)
	stopProd := s.start(ctx, prod, 1, streamRate)
	defer stopProd()

	res := &Result{}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13))
	var m *child
	defer func() {
		if m != nil {
			m.kill9()
		}
	}()
	for i := 0; ; i++ {
		before := endTotal(ctx, west, EmbeddedTopic)
		if m, err = startMirrorProc(bin, config, dir); err != nil {
			return res, err
		}
		began := time.Now()
		mm := m
		if err := waitGrowth(ctx, west, EmbeddedTopic, before, time.Minute, func() error {
			if mm.exited() {
				return fmt.Errorf("%w: strait mirror exited on its own: %s", ErrScenario, mm.tail())
			}
			return nil
		}); err != nil {
			return res, err
		}
		res.RTOMS = max(res.RTOMS, time.Since(began).Milliseconds())
		if i == sz.mirrorKills {
			break
		}
		// Kill at a random moment of its copying, up to 2 s in.
		if err := sleepCtx(ctx, time.Duration(rng.Int64N(int64(2*time.Second)))); err != nil {
			return res, err
		}
		m.kill9()
	}
	if err := sleepCtx(ctx, sz.settle); err != nil {
		return res, err
	}
	stopProd()
	if err := waitCount(ctx, pair.West.Addrs(), EmbeddedTopic, s.ackedCount(), 90*time.Second); err != nil {
		return res, err
	}
	// A duplicate would show as more records: give one a moment to land.
	_ = sleepCtx(ctx, time.Second)
	if err := m.stop(30 * time.Second); err != nil {
		return res, err
	}
	got, err := readAll(ctx, pair.West.Addrs(), EmbeddedTopic)
	if err != nil {
		return res, err
	}
	l, d, r := check(got, s.acked, classOf)
	return res, verdict(res, l, d, r)
}

// proxiedCluster is an embedded cluster whose every broker is reached
// through its own fault-injecting proxy: the brokers advertise the
// proxies' addresses, so a client that bootstraps anywhere ends up going
// through them. direct maps each proxy address to its broker's, for the
// drill's own clients, which must not suffer the faults.
type proxiedCluster struct {
	c       *brokerd.Cluster
	proxies []*proxy
	direct  map[string]string
}

func startProxied(ctx context.Context, dir string, brokers int, log *slog.Logger) (*proxiedCluster, error) {
	var lns []net.Listener
	var adv []string
	for range brokers {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("%w: proxy listener: %w", ErrScenario, err)
		}
		lns, adv = append(lns, ln), append(adv, ln.Addr().String())
	}
	c, err := brokerd.Start(ctx, brokerd.Config{Dir: dir, Brokers: brokers, Advertise: adv, Logger: log})
	if err != nil {
		for _, l := range lns {
			l.Close()
		}
		return nil, fmt.Errorf("%w: starting %s: %w", ErrScenario, filepath.Base(dir), err)
	}
	pc := &proxiedCluster{c: c, direct: make(map[string]string)}
	for i, ln := range lns {
		pc.proxies = append(pc.proxies, startProxy(ln, c.Addrs()[i]))
		pc.direct[adv[i]] = c.Addrs()[i]
	}
	return pc, nil
}

// addrs are the proxies' addresses: the ones the mirror is configured with.
func (pc *proxiedCluster) addrs() []string {
	out := make([]string, len(pc.proxies))
	for i, p := range pc.proxies {
		out[i] = p.addr()
	}
	return out
}

// bypass is a client option dialing brokers directly instead of through
// their proxies.
func (pc *proxiedCluster) bypass() kgo.Opt {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		if to, ok := pc.direct[host]; ok {
			host = to
		}
		return d.DialContext(ctx, network, host)
	})
}

func (pc *proxiedCluster) each(fn func(*proxy)) {
	for _, p := range pc.proxies {
		fn(p)
	}
}

func (pc *proxiedCluster) close() {
	pc.each((*proxy).close)
	_ = pc.c.Close()
}

// networkPartition: east and west run two brokers each, every broker
// behind a proxy, and the in-process mirror reaches both clusters only
// through the proxies while the drill's producer goes to east directly.
// Each round: every connection to east is cut and new ones refused for a
// while, then the same to west, then 150 ms is added to every chunk both
// ways, then three responses from each broker are cut in the middle. The
// mirror is never restarted: it must recover by itself. rto_ms: the
// longest time from a cut's end to the mirror copying again.
func networkPartition(ctx context.Context, dir string, log *slog.Logger, sz faultSizes) (*Result, error) {
	east, err := startProxied(ctx, filepath.Join(dir, "east"), 2, log)
	if err != nil {
		return nil, err
	}
	defer east.close()
	west, err := startProxied(ctx, filepath.Join(dir, "west"), 2, log)
	if err != nil {
		return nil, err
	}
	defer west.close()
	defer os.RemoveAll(dir)
	cfg, err := pairConfig(dir, east.addrs(), west.addrs(), "batch")
	if err != nil {
		return nil, err
	}
	prod, err := producerFor(east.addrs(), east.bypass())
	if err != nil {
		return nil, err
	}
	defer closeBounded(prod.Close)
	if err := createTopics(ctx, kadm.NewClient(prod), []TopicSpec{{Name: EmbeddedTopic, Partitions: 4}}); err != nil {
		return nil, err
	}
	westAdm, closeWest, err := adminFor(west.addrs(), west.bypass())
	if err != nil {
		return nil, err
	}
	defer closeWest()
	stopEng, err := runEngine(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer stopEng()
	s := newStream(EmbeddedTopic)
	stopProd := s.start(ctx, prod, 1, streamRate)
	defer stopProd()
	if err := waitGrowth(ctx, westAdm, EmbeddedTopic, 0, time.Minute, nil); err != nil {
		return nil, err
	}

	res := &Result{}
	for range sz.partitionRounds {
		for _, side := range []*proxiedCluster{east, west} {
			if err := sleepCtx(ctx, sz.settle); err != nil {
				return res, err
			}
			side.each((*proxy).cut)
			if err := sleepCtx(ctx, sz.outage); err != nil {
				return res, err
			}
			before := endTotal(ctx, westAdm, EmbeddedTopic)
			side.each((*proxy).heal)
			healed := time.Now()
			if err := waitGrowth(ctx, westAdm, EmbeddedTopic, before, time.Minute, nil); err != nil {
				return res, fmt.Errorf("after the cut: %w", err)
			}
			res.RTOMS = max(res.RTOMS, time.Since(healed).Milliseconds())
		}
		for _, side := range []*proxiedCluster{east, west} {
			side.each(func(p *proxy) { p.setDelay(150 * time.Millisecond) })
		}
		if err := sleepCtx(ctx, sz.outage); err != nil {
			return res, err
		}
		for _, side := range []*proxiedCluster{east, west} {
			side.each(func(p *proxy) { p.setDelay(0); p.resetResponses(3) })
		}
		// The cuts happen as responses flow: fetches from east, produce
		// acknowledgements and checkpoint reads from west. A broker that
		// answers nothing for a while (no partition it leads is busy)
		// keeps its cuts for the next round or the verification reads.
		if err := sleepCtx(ctx, sz.settle); err != nil {
			return res, err
		}
	}
	// A fault that found no connection tested nothing: each side must
	// have had mirror connections cut, and some response cut midway.
	var midway int
	for name, side := range map[string]*proxiedCluster{"east": east, "west": west} {
		var cut int
		side.each(func(p *proxy) { st := p.stats(); cut += st.Reset; midway += st.CutMidway })
		if cut == 0 {
			return res, fmt.Errorf("%w: the cuts of %s found no connection to break", ErrScenario, name)
		}
	}
	if midway == 0 {
		return res, fmt.Errorf("%w: no response was cut midway", ErrScenario)
	}
	stopProd()
	if err := waitCount(ctx, west.addrs(), EmbeddedTopic, s.ackedCount(), 90*time.Second); err != nil {
		return res, err
	}
	_ = sleepCtx(ctx, time.Second)
	if err := stopEng(); err != nil {
		return res, fmt.Errorf("%w: stopping the mirror: %w", ErrScenario, err)
	}
	// Reading back goes through the proxies too: cuts still pending (on a
	// broker that had nothing to answer) are dropped first.
	for _, side := range []*proxiedCluster{east, west} {
		side.each(func(p *proxy) { p.resetResponses(-p.pendingResets()) })
	}
	got, err := readAll(ctx, west.addrs(), EmbeddedTopic)
	if err != nil {
		return res, err
	}
	l, d, r := check(got, s.acked, classOf)
	return res, verdict(res, l, d, r)
}

// brokerCrash: east and west each run as one `strait broker --brokers 2`
// process with its own data folder; the in-process mirror copies east to
// west. Each round kills the whole east process with SIGKILL (both its
// brokers: the source as far as the mirror and the producer can see),
// starts it again two seconds later on the same ports and folder, waits
// for the mirror to copy again, then does the same to the west process.
// Every record either cluster acknowledged must survive (brokerd's
// promise for kill -9: an acknowledged write reached the file), and the
// mirror must copy each exactly once. rto_ms: the longest time from a
// kill to the mirror copying again (two seconds of which the process is
// down).
func brokerCrash(ctx context.Context, dir string, log *slog.Logger, sz faultSizes) (*Result, error) {
	bin, err := straitBinary()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	procs := map[string]*brokerProc{}
	defer func() {
		for _, p := range procs {
			_ = p.stop(30 * time.Second)
		}
	}()
	for _, name := range []string{"east", "west"} {
		p, err := startBrokerProc(ctx, bin, name, filepath.Join(dir, name), "127.0.0.1:0", 2)
		if err != nil {
			return nil, err
		}
		procs[name] = p
	}
	eastAddrs, westAddrs := procs["east"].addrs, procs["west"].addrs
	cfg, err := pairConfig(dir, eastAddrs, westAddrs, "batch")
	if err != nil {
		return nil, err
	}
	prod, err := producerFor(eastAddrs)
	if err != nil {
		return nil, err
	}
	defer closeBounded(prod.Close)
	if err := createTopics(ctx, kadm.NewClient(prod), []TopicSpec{{Name: EmbeddedTopic, Partitions: 4}}); err != nil {
		return nil, err
	}
	westAdm, closeWest, err := adminFor(westAddrs)
	if err != nil {
		return nil, err
	}
	defer closeWest()
	stopEng, err := runEngine(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer stopEng()
	s := newStream(EmbeddedTopic)
	stopProd := s.start(ctx, prod, 1, streamRate)
	defer stopProd()
	if err := waitGrowth(ctx, westAdm, EmbeddedTopic, 0, time.Minute, nil); err != nil {
		return nil, err
	}

	res := &Result{}
	for range sz.brokerCrashes {
		for _, name := range []string{"east", "west"} {
			if err := sleepCtx(ctx, sz.settle); err != nil {
				return res, err
			}
			old := procs[name]
			old.kill9()
			killed := time.Now()
			if err := sleepCtx(ctx, 2*time.Second); err != nil {
				return res, err
			}
			p, err := startBrokerProc(ctx, bin, name, filepath.Join(dir, name), old.addrs[0], 2)
			if err != nil {
				delete(procs, name)
				return res, err
			}
			procs[name] = p
			// Measured once both are up: the producer keeps going, so the
			// mirror has more to copy whenever it is back.
			before := endTotal(ctx, westAdm, EmbeddedTopic)
			if err := waitGrowth(ctx, westAdm, EmbeddedTopic, before, time.Minute, nil); err != nil {
				return res, fmt.Errorf("after restarting %s: %w", name, err)
			}
			res.RTOMS = max(res.RTOMS, time.Since(killed).Milliseconds())
		}
	}
	if err := sleepCtx(ctx, sz.settle); err != nil {
		return res, err
	}
	stopProd()
	if err := waitCount(ctx, westAddrs, EmbeddedTopic, s.ackedCount(), 90*time.Second); err != nil {
		return res, err
	}
	_ = sleepCtx(ctx, time.Second)
	if err := stopEng(); err != nil {
		return res, fmt.Errorf("%w: stopping the mirror: %w", ErrScenario, err)
	}
	// Both sides: the source must have kept what it acknowledged, the
	// destination must hold it once.
	for _, addrs := range [][]string{eastAddrs, westAddrs} {
		got, err := readAll(ctx, addrs, EmbeddedTopic)
		if err != nil {
			return res, err
		}
		l, d, r := check(got, s.acked, classOf)
		res.Lost, res.Duplicated, res.Reordered = res.Lost+l, res.Duplicated+d, res.Reordered+r
	}
	return res, verdict(res, 0, 0, 0)
}
