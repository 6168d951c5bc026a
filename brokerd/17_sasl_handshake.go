package brokerd

// SaslHandshake (key 17), version 1; advertised only when
// Config.SASLUsers is set.
//
// Picks the mechanism for the SaslAuthenticate exchanges that follow:
// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; anything else gets
// UNSUPPORTED_SASL_MECHANISM with the list. A broker without SASL answers
// ILLEGAL_SASL_STATE.
//
// Not supported: version 0 (raw SASL frames outside Kafka requests),
// GSSAPI, OAUTHBEARER, re-authentication (KIP-368).

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleSASLHandshake(req *kmsg.SASLHandshakeRequest) *kmsg.SASLHandshakeResponse {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	if len(cc.b.c.cfg.SASLUsers) == 0 || cc.sasl.authed {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp
	}
	resp.SupportedMechanisms = saslMechanisms
	if !slices.Contains(saslMechanisms, req.Mechanism) {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return resp
	}
	cc.sasl.mech = req.Mechanism
	cc.sasl.scram = nil
	return resp
}
