package group

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The shortest session a member may ask for is Kafka's 6 s unless the
// coordinator is configured lower; a journaled session below the minimum
// is restored at the minimum.
func TestMinSessionTimeout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		min     time.Duration
		session int32
		reject  bool
	}{
		{"default rejects 5.999 s", 0, 5999, true},
		{"default accepts 6 s", 0, 6000, false},
		{"configured 100 ms accepts 100 ms", 100 * time.Millisecond, 100, false},
		{"configured 100 ms rejects 99 ms", 100 * time.Millisecond, 99, true},
		{"configured 10 s rejects 6 s", 10 * time.Second, 6000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Config{Journal: &memJournal{}, MinSessionTimeout: tc.min})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			jr := joinReq("g", "", nil)
			jr.SessionTimeoutMillis = tc.session
			resp, err := c.Handle(context.Background(), jr)
			if err != nil {
				t.Fatal(err)
			}
			// Accepted, a first join gets MEMBER_ID_REQUIRED.
			got := resp.(*kmsg.JoinGroupResponse).ErrorCode
			if rejected := got == kerr.InvalidSessionTimeout.Code; rejected != tc.reject {
				t.Fatalf("join with a %d ms session: error %v, want rejected=%v", tc.session, kerr.ErrorForCode(got), tc.reject)
			}
		})
	}
	// A journal written under a lower minimum: the member comes back with
	// the configured minimum, not its short session.
	j := &memJournal{}
	s := journaled(j)
	s.minSession = 100 * time.Millisecond
	jr := joinReq("g", "", nil)
	jr.SessionTimeoutMillis = 200
	id := answer[*kmsg.JoinGroupResponse](t, send(s, jr, t0)).MemberID
	jr.MemberID = id
	answer[*kmsg.JoinGroupResponse](t, send(s, jr, t0))
	answer[*kmsg.SyncGroupResponse](t, send(s, syncReq("g", id, 1, nil), t0))
	s2, err := load(j, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if m := s2.groups["g"].members[id]; m == nil || m.sessionTimeout != DefaultMinSessionTimeout {
		t.Fatalf("restored member %+v, want a %v session", m, DefaultMinSessionTimeout)
	}
}
