package brokerd

// SaslHandshake (key 17), versions 0–1; advertised only when
// Config.SASLUsers is set.
//
// Picks the mechanism for the SaslAuthenticate exchanges that follow:
// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; anything else gets
// UNSUPPORTED_SASL_MECHANISM with the list. A broker without SASL answers
// ILLEGAL_SASL_STATE. After version 1 the exchange travels in
// SaslAuthenticate requests; after version 0 it travels as raw SASL
// tokens outside Kafka framing (sasl.go, serveRawSASL), the framing
// librdkafka picks when it sees version 0 offered.
//
// Not supported: GSSAPI, OAUTHBEARER, re-authentication (KIP-368).

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
	cc.sasl.raw = req.Version == 0
	return resp
}
