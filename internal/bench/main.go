package bench

import (
	"flag"
	"io"
	"os"

	"strait/internal/cli"
)

// Commands are the bench targets, for Main and for the test that checks
// the documentation's command lines against their flags.
func Commands(stdout io.Writer) []cli.Command {
	return []cli.Command{
		{
			Name:     "broker",
			Synopsis: "[flags]",
			Brief:    "brokerd's produce and fetch throughput against a null broker, franz-go's kfake and a plain file-to-socket copy, as ratios",
			Flags:    func() *flag.FlagSet { return newBrokerFlags(new(brokerFlags)) },
			Run:      func(args []string) error { return benchBroker(args, stdout) },
		},
		{
			Name:     "mirror",
			Synopsis: "[flags]",
			Brief:    "mirror throughput of batch and record mode against a plain franz-go loop, then end-to-end latency",
			Flags:    func() *flag.FlagSet { return newMirrorFlags(new(mirrorBenchConfig)) },
			Run:      func(args []string) error { return benchMirror(args, stdout) },
		},
		{
			Name:     "cost",
			Synopsis: "[flags]",
			Brief:    "mirror throughput and CPU per GB against the kernel-only floor (sendfile, splice), and brokerd's produce CPU per GB against a null broker and memcpy+CRC",
			Flags:    func() *flag.FlagSet { return newCostFlags(new(costConfig)) },
			Run:      func(args []string) error { return benchCost(args, stdout) },
		},
		{
			Name:     "isolation",
			Synopsis: "[flags]",
			Brief:    "produce latency while consumers read cold data from a read-throttled disk, against the same reads by cat (needs root)",
			Flags:    func() *flag.FlagSet { return newIsolationFlags(new(isolationConfig)) },
			Run:      func(args []string) error { return benchIsolation(args, stdout) },
		},
		{
			Name:     "consumer",
			Synopsis: "--seeds ADDR[,ADDR] --topic T [--partition N]",
			Brief:    "read one partition from its start to its end and print the bytes read (bench isolation's cold consumer)",
			Flags:    func() *flag.FlagSet { return newConsumerFlags(new(consumerFlags)) },
			Run:      func(args []string) error { return benchConsumer(args, stdout) },
		},
		{
			Name:     "producer",
			Synopsis: "--seeds ADDR[,ADDR] --topic T [flags]",
			Brief:    "one produce run with the bench's producer settings against any cluster, printing MB/s",
			Flags:    func() *flag.FlagSet { return newProducerFlags(new(producerFlags)) },
			Run:      func(args []string) error { return benchProducer(args, stdout) },
		},
	}
}

// Main runs `strait bench <target> [flags]` (args start with the target)
// and returns the exit code. cmd/strait-bench is this function.
func Main(args []string) int {
	if role := os.Getenv(RoleEnv); role != "" {
		return runRole(role, args)
	}
	return program(os.Stdout, os.Stderr).Main(args)
}

func program(stdout, stderr io.Writer) cli.Program {
	return cli.Program{Name: "strait bench", Noun: "target", Commands: Commands(stdout), Stdout: stdout, Stderr: stderr}
}
