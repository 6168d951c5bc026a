package brokerd

import (
	"fmt"
	"os"
	"testing"
)

// skipUnlessRequired skips the test for a reason of the environment (a
// tool or a kernel feature missing), unless the environment variable env
// is set: then the test fails, so CI, which installs what the tests need
// and sets these variables, never skips silently. docs/testing.md lists
// the variables.
func skipUnlessRequired(t testing.TB, env, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if os.Getenv(env) != "" {
		t.Fatalf("%s (required: %s is set)", why, env)
	}
	t.Skip(why)
}
