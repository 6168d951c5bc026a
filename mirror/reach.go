package mirror

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
)

// reach is what a pipeline knows of its two clusters. Each flag follows the
// last call made to that cluster: set when the cluster answered (a
// metadata, produce, fetch or producer-id request came back), cleared when
// it did not (unreachable, timed out, refused the credentials).
//
// Invariant: both start false. A pipeline is connected only once the source
// and the destination have each answered; one side answering proves nothing
// about the other, and a pipeline that never reached its source has no
// partitions, which would otherwise look "caught up".
type reach struct {
	src, dst atomic.Bool
}

func (r *reach) connected() bool { return r.src.Load() && r.dst.Load() }

// ErrAuth marks a cluster that refuses the configured SASL credentials or
// mechanism; a status's last error starts with it so that an operator tells
// a wrong password from an unreachable cluster.
var ErrAuth = errors.New("mirror: authentication failed")

// classify names the cause of a failed cluster call for the status.
func classify(err error) error {
	if errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.UnsupportedSaslMechanism) ||
		errors.Is(err, kerr.IllegalSaslState) {
		return fmt.Errorf("%w: %w", ErrAuth, err)
	}
	return err
}
