package brokerd

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// SASL: when Config.SASLUsers is set, a connection must authenticate
// before any request other than ApiVersions. Mechanisms: PLAIN and
// SCRAM-SHA-256/512 (RFC 5802/7677, without channel binding).
//
// Two framings (KIP-152): after SaslHandshake v1 the mechanism's messages
// travel in SaslAuthenticate requests; after SaslHandshake v0 they travel
// raw, each a 4-byte length and the token with no Kafka header, answered
// the same way (an empty token answers the last PLAIN or SCRAM message), and
// a failure closes the connection, there being no response to carry it.
// Kafka requests resume once authentication succeeds.

var saslMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// errSASL is a failed authentication; its text goes back to the client.
var errSASL = errors.New("authentication failed")

const scramIterations = 4096

// saslState is one connection's authentication progress; only the
// connection's reader touches it.
type saslState struct {
	mech   string // chosen by SaslHandshake
	authed bool
	// raw is set by a SaslHandshake v0: the frames that follow are raw
	// SASL tokens until authentication completes.
	raw  bool
	user string
	// SCRAM between the client's first and final messages.
	scram *scramExchange
}

type scramExchange struct {
	newHash         func() hash.Hash
	user            string
	password        string
	salt            []byte
	nonce           string // client nonce + server nonce
	clientFirstBare string
	serverFirst     string
}

// saslStep consumes one SaslAuthenticate payload and returns the reply.
// done reports a completed, successful authentication.
func (c *Cluster) saslStep(st *saslState, in []byte) (out []byte, done bool, err error) {
	switch st.mech {
	case "PLAIN":
		// [authzid] NUL user NUL password
		parts := strings.Split(string(in), "\x00")
		if len(parts) != 3 {
			return nil, false, fmt.Errorf("%w: malformed PLAIN message", errSASL)
		}
		user, pass := parts[1], parts[2]
		if parts[0] != "" && parts[0] != user {
			return nil, false, fmt.Errorf("%w: authorization id differs from user", errSASL)
		}
		want, ok := c.cfg.SASLUsers[user]
		if !ok || subtle.ConstantTimeCompare([]byte(want), []byte(pass)) != 1 {
			return nil, false, fmt.Errorf("%w: invalid user or password", errSASL)
		}
		st.user = user
		return nil, true, nil
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
		if st.scram == nil {
			return c.scramFirst(st, string(in))
		}
		return c.scramFinal(st, string(in))
	}
	return nil, false, fmt.Errorf("%w: no SASL handshake", errSASL)
}

func scramAttrs(msg string) map[byte]string {
	m := map[byte]string{}
	for _, kv := range strings.Split(msg, ",") {
		if len(kv) >= 2 && kv[1] == '=' {
			m[kv[0]] = kv[2:]
		}
	}
	return m
}

func (c *Cluster) scramFirst(st *saslState, msg string) ([]byte, bool, error) {
	// gs2 header: "n,," (no channel binding, no authzid) or "y,,".
	if !strings.HasPrefix(msg, "n,") && !strings.HasPrefix(msg, "y,") {
		return nil, false, fmt.Errorf("%w: channel binding is not supported", errSASL)
	}
	i := strings.Index(msg[2:], ",")
	if i < 0 {
		return nil, false, fmt.Errorf("%w: malformed client-first message", errSASL)
	}
	bare := msg[2+i+1:]
	a := scramAttrs(bare)
	user := strings.NewReplacer("=2C", ",", "=3D", "=").Replace(a['n'])
	if a['r'] == "" || user == "" {
		return nil, false, fmt.Errorf("%w: malformed client-first message", errSASL)
	}
	pass, ok := c.cfg.SASLUsers[user]
	if !ok {
		return nil, false, fmt.Errorf("%w: invalid user or password", errSASL)
	}
	x := &scramExchange{newHash: sha256.New, user: user, password: pass, clientFirstBare: bare}
	if st.mech == "SCRAM-SHA-512" {
		x.newHash = sha512.New
	}
	x.salt = make([]byte, 16)
	rand.Read(x.salt)
	nonce := make([]byte, 18)
	rand.Read(nonce)
	x.nonce = a['r'] + base64.RawStdEncoding.EncodeToString(nonce)
	x.serverFirst = "r=" + x.nonce + ",s=" + base64.StdEncoding.EncodeToString(x.salt) + ",i=" + strconv.Itoa(scramIterations)
	st.scram = x
	return []byte(x.serverFirst), false, nil
}

func (c *Cluster) scramFinal(st *saslState, msg string) ([]byte, bool, error) {
	x := st.scram
	st.scram = nil // one attempt per exchange
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, false, fmt.Errorf("%w: malformed client-final message", errSASL)
	}
	withoutProof := msg[:i]
	a := scramAttrs(msg)
	// The nonce must end with the one the server sent, as Kafka checks:
	// librdkafka sends its own nonce again in front of it.
	if !strings.HasSuffix(a['r'], x.nonce) {
		return nil, false, fmt.Errorf("%w: nonce mismatch", errSASL)
	}
	proof, err := base64.StdEncoding.DecodeString(a['p'])
	if err != nil {
		return nil, false, fmt.Errorf("%w: malformed proof", errSASL)
	}
	mac := func(key []byte, s string) []byte {
		h := hmac.New(x.newHash, key)
		h.Write([]byte(s))
		return h.Sum(nil)
	}
	salted, err := pbkdf2.Key(x.newHash, x.password, x.salt, scramIterations, x.newHash().Size())
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", errSASL, err)
	}
	clientKey := mac(salted, "Client Key")
	h := x.newHash()
	h.Write(clientKey)
	storedKey := h.Sum(nil)
	authMsg := x.clientFirstBare + "," + x.serverFirst + "," + withoutProof
	clientSig := mac(storedKey, authMsg)
	if len(proof) != len(clientSig) {
		return nil, false, fmt.Errorf("%w: invalid user or password", errSASL)
	}
	// The proof is ClientKey XOR ClientSignature: recover the key and
	// check it hashes to StoredKey.
	got := make([]byte, len(proof))
	for i := range proof {
		got[i] = proof[i] ^ clientSig[i]
	}
	h = x.newHash()
	h.Write(got)
	if subtle.ConstantTimeCompare(h.Sum(nil), storedKey) != 1 {
		return nil, false, fmt.Errorf("%w: invalid user or password", errSASL)
	}
	serverSig := mac(mac(salted, "Server Key"), authMsg)
	st.user = x.user
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSig)), true, nil
}

// serveRawSASL consumes one raw SASL token (after SaslHandshake v0) and
// answers with a raw token; a failure closes the connection.
func (cc *conn) serveRawSASL(token []byte) (*response, error) {
	out, done, err := cc.b.c.saslStep(&cc.sasl, token)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	if done {
		cc.sasl.authed, cc.sasl.raw = true, false
	}
	return rawSASLFrame(out), nil
}
