package bench

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBenchBrokerSmall runs the whole broker benchmark at a tiny size: every
// target (brokerd, the null broker, kfake, the plain copy, brokerd's copy
// path) must serve real clients and the table must have every row. With
// --split-cpus the producer is a child process (this test binary, standing
// in for strait through TestMain), so that path is exercised too.
func TestBenchBrokerSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts brokerd, kfake and a null broker")
	}
	for _, mode := range []struct{ name, flag, topology string }{
		{"colocated", "", "in one process"},
		{"split", "--split-cpus", "producer in its own process"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			args := []string{"--records", "2000", "--value-bytes", "100", "--fetch-mb", "2", "--rounds", "1", "--dir", t.TempDir()}
			if mode.flag != "" {
				args = append(args, mode.flag)
			}
			var out bytes.Buffer
			if err := benchBroker(args, &out); err != nil {
				t.Fatalf("bench broker: %v\n%s", err, out.String())
			}
			t.Log("\n" + out.String())
			for _, want := range []string{mode.topology, "null broker", "kfake", "file-to-socket", "16 KiB", "64 KiB", "1 MiB"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q", want)
				}
			}
		})
	}
}

// TestMain lets the test binary stand in for strait-bench where a test
// starts it as a child process of itself: bench broker --split-cpus runs its
// producer as `strait-bench producer` through os.Executable, which in a test
// is this binary.
func TestMain(m *testing.M) {
	if os.Getenv(ChildEnv) == "1" || os.Getenv(RoleEnv) != "" {
		os.Exit(Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// TestBenchUsage: a bad command line is exit 2 with the usage, generated
// from the target's flags, on stderr; -h prints it on stdout and exits 0.
func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"broker", "--records", "0"}, {"broker", "--bogus"}, {"broker", "stray"},
		{"producer"}, {"producer", "--seeds", "127.0.0.1:1"}, {"producer", "--seeds", "127.0.0.1:1", "--topic", "t", "--records", "0"},
		{"mirror", "--rounds", "0"}, {"cost", "--modes", "batch,fast"}, {"cost", "--records", "0"}} {
		var stdout, stderr bytes.Buffer
		if code := program(&stdout, &stderr).Main(args); code != 2 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "usage: strait bench") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and the usage on stderr", args, code, stdout.String(), stderr.String())
		}
	}
	for target, flags := range map[string][]string{
		"broker":   {"-records", "-fetch-data-mb", "-rcvbuf", "-split-cpus", "-dir", "-v"},
		"mirror":   {"-latency-time", "-cpuprofile", "-rounds"},
		"producer": {"-seeds", "-topic", "-value-bytes"},
		"cost":     {"-floor-mb", "-modes", "-produce-records", "-profile-dir"},
	} {
		var stdout, stderr bytes.Buffer
		if code := program(&stdout, &stderr).Main([]string{target, "-h"}); code != 0 || stderr.Len() != 0 {
			t.Errorf("%s -h: exit %d, stderr %q", target, code, stderr.String())
		}
		for _, f := range append(flags, "usage: strait bench "+target) {
			if !strings.Contains(stdout.String(), f) {
				t.Errorf("%s -h lacks %q:\n%s", target, f, stdout.String())
			}
		}
	}
}

// TestBenchProducerUnreachable: a cluster nobody answers for is a clear
// error after the warm-up deadline, not a hang.
func TestBenchProducerUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	defer func(d time.Duration) { warmUpTimeout = d }(warmUpTimeout)
	warmUpTimeout = time.Second
	var out bytes.Buffer
	err = benchProducer([]string{"--seeds", addr, "--topic", "t", "--records", "10"}, &out)
	if err == nil || !strings.Contains(err.Error(), "reachable") {
		t.Fatalf("bench producer against %s: %v, want an unreachable-cluster error", addr, err)
	}
}

// TestBenchCostSmall runs bench cost at a tiny size: the brokers, the
// mirror and the floor's sender, relay and sink are child processes (this
// test binary, through TestMain); every mode must copy the whole topic, the
// floor must deliver every byte, each process must report CPU time, and
// the profiles must be written.
func TestBenchCostSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts brokers and a mirror as child processes")
	}
	profiles := t.TempDir()
	var out bytes.Buffer
	err := benchCost([]string{"--records", "3000", "--partitions", "2", "--floor-mb", "8",
		"--produce-records", "3000", "--produce-rounds", "1", "--profile-dir", profiles, "--dir", t.TempDir()}, &out)
	if err != nil {
		t.Fatalf("bench cost: %v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	for _, want := range []string{"floor", "batch", "record", "memcpy + CRC-32C", "null broker", "brokerd", "≥ 0.7×", "≤ 4.0×"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, f := range []string{"batch-r0-mirror.pprof", "batch-r0-source.pprof", "record-r0-destination.pprof"} {
		if st, err := os.Stat(filepath.Join(profiles, f)); err != nil || st.Size() == 0 {
			t.Errorf("profile %s: %v", f, err)
		}
	}
}

// TestFloorRun: the floor's three processes move every byte of the files,
// as many times over as asked, and report CPU time.
func TestFloorRun(t *testing.T) {
	dir := t.TempDir()
	var files []string
	var size int64
	for i, n := range []int{1 << 20, 12345, 0} {
		p := filepath.Join(dir, fmt.Sprintf("%d.log", i))
		if err := os.WriteFile(p, bytes.Repeat([]byte{byte(i)}, n), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
		size += int64(n)
	}
	r, err := floorRun(files, 3)
	if err != nil {
		t.Fatal(err)
	}
	if r.bytes != 3*size || r.cpu <= 0 || r.wall <= 0 {
		t.Fatalf("floor moved %d bytes in %v with %v CPU; want %d bytes and positive times", r.bytes, r.wall, r.cpu, 3*size)
	}
}
