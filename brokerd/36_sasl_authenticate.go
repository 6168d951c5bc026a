package brokerd

// SaslAuthenticate (key 36), versions 0–2; advertised only when
// Config.SASLUsers is set.
//
// Carries the mechanism's messages (sasl.go): one round for PLAIN, two for
// SCRAM. Success marks the connection authenticated; a failure answers
// SASL_AUTHENTICATION_FAILED with the reason, and the connection must
// start over with a new handshake. The session lifetime is 0 (no expiry).
//
// Not supported: re-authentication (KIP-368).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleSASLAuthenticate(req *kmsg.SASLAuthenticateRequest) *kmsg.SASLAuthenticateResponse {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	if len(cc.b.c.cfg.SASLUsers) == 0 || cc.sasl.authed || cc.sasl.mech == "" {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp
	}
	out, done, err := cc.b.c.saslStep(&cc.sasl, req.SASLAuthBytes)
	if err != nil {
		cc.sasl.mech, cc.sasl.scram = "", nil
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := err.Error()
		resp.ErrorMessage = &msg
		cc.logf("authentication failed", "err", err)
		return resp
	}
	resp.SASLAuthBytes = out
	if done {
		cc.sasl.authed = true
	}
	return resp
}
