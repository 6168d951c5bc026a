// Command strait-bench is strait's benchmark harness (package
// strait/internal/bench): `strait bench <target>` runs it, found next to
// the strait binary, on $PATH, or built from the source tree. It is a
// binary of its own so that the harness, its null broker and franz-go's
// kfake stay out of the strait binary.
package main

import (
	"os"

	"strait/internal/bench"
)

func main() {
	os.Exit(bench.Main(os.Args[1:]))
}
