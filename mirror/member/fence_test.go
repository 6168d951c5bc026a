package member

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestFenceDecision(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name               string
		session, heartbeat time.Duration
		since              time.Duration // now - lastHeard
		fence              bool
		left               time.Duration
	}{
		// margin = max(3s, 10s/5) = 3s: fence 7s after the last answer.
		{"connect defaults, just heard", 10 * time.Second, 3 * time.Second, 0, false, 7 * time.Second},
		{"connect defaults, one beat missed", 10 * time.Second, 3 * time.Second, 6 * time.Second, false, time.Second},
		{"connect defaults, at the deadline", 10 * time.Second, 3 * time.Second, 7 * time.Second, true, 0},
		{"connect defaults, stopped for a minute", 10 * time.Second, 3 * time.Second, time.Minute, true, 0},
		// margin = max(3s, 45s/5) = 9s: the session fifth dominates.
		{"kafka consumer defaults", 45 * time.Second, 3 * time.Second, 35 * time.Second, false, time.Second},
		{"kafka consumer defaults, late", 45 * time.Second, 3 * time.Second, 36 * time.Second, true, 0},
		// margin = max(400ms, 200ms) = 400ms.
		{"short session, heartbeat dominates", time.Second, 400 * time.Millisecond, 599 * time.Millisecond, false, time.Millisecond},
		{"short session, due", time.Second, 400 * time.Millisecond, 600 * time.Millisecond, true, 0},
		// A clock that went backwards never fences early.
		{"clock behind last answer", 10 * time.Second, 3 * time.Second, -2 * time.Second, false, 9 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fence, left := fenceDecision(t0.Add(tc.since), t0, tc.session, tc.heartbeat)
			if fence != tc.fence || left != tc.left {
				t.Fatalf("fenceDecision = %v, %v; want %v, %v", fence, left, tc.fence, tc.left)
			}
			// The fence always comes before the coordinator could
			// expire the session, by at least one heartbeat interval.
			if at := fenceAt(t0, tc.session, tc.heartbeat); !at.Add(tc.heartbeat).Before(t0.Add(tc.session)) && at.Add(tc.heartbeat) != t0.Add(tc.session) {
				t.Fatalf("fence at %v leaves less than a heartbeat before the session ends at %v", at, t0.Add(tc.session))
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{
		Group:    "g",
		Metadata: func() []byte { return nil },
		Assign:   func([]Member) (map[string][]byte, error) { return nil, nil },
		Assigned: func(context.Context, int32, []byte) bool { return false },
		Fenced:   func() {},
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		err  bool
	}{
		{"defaults", func(*Config) {}, false},
		{"no group", func(c *Config) { c.Group = "" }, true},
		{"no fenced callback", func(c *Config) { c.Fenced = nil }, true},
		{"no assign callback", func(c *Config) { c.Assign = nil }, true},
		{"heartbeat half the session", func(c *Config) { c.SessionTimeout, c.HeartbeatInterval = time.Second, 500*time.Millisecond }, true},
		{"heartbeat just under half", func(c *Config) { c.SessionTimeout, c.HeartbeatInterval = time.Second, 499*time.Millisecond }, false},
		{"negative session", func(c *Config) { c.SessionTimeout = -time.Second }, true},
		{"session beyond int32 millis", func(c *Config) { c.SessionTimeout = 1000 * time.Hour }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			err := c.withDefaults().validate()
			if (err != nil) != tc.err {
				t.Fatalf("validate = %v, want error %v", err, tc.err)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v is not ErrConfig", err)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err   error
		want  verdict
		fatal error
	}{
		{kerr.NotCoordinator, vRetry, nil},
		{kerr.CoordinatorNotAvailable, vRetry, nil},
		{kerr.CoordinatorLoadInProgress, vRetry, nil},
		{kerr.MemberIDRequired, vRetry, nil},
		{errors.New("dial tcp: connection refused"), vRetry, nil},
		{kerr.RebalanceInProgress, vRejoin, nil},
		{kerr.UnknownMemberID, vLostMember, nil},
		{kerr.IllegalGeneration, vLostGeneration, nil},
		{kerr.FencedInstanceID, vFatal, ErrFencedInstance},
		{kerr.GroupAuthorizationFailed, vFatal, ErrAuthorization},
		{kerr.InconsistentGroupProtocol, vFatal, ErrInconsistentProtocol},
		{kerr.InvalidSessionTimeout, vFatal, ErrRejected},
		{kerr.GroupMaxSizeReached, vFatal, ErrRejected},
	} {
		v, fatal := classify(tc.err)
		if v != tc.want {
			t.Errorf("classify(%v) = %d, want %d", tc.err, v, tc.want)
		}
		if tc.fatal != nil && (!errors.Is(fatal, tc.fatal) || !errors.Is(fatal, tc.err)) {
			t.Errorf("classify(%v) fatal error %v, want %v wrapping it", tc.err, fatal, tc.fatal)
		}
	}
}
