package daemon

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
)

// How a browser reaches the status page when the admin API has a token.
//
// A browser cannot add an Authorization header to a page load or a form
// post, so the page offers a login form instead of a 401: POST /page/login
// with the token sets a session cookie, and the cookie stands in for the
// bearer token afterwards. The cookie holds no secret of its own: its value
// is an HMAC of the token under a key drawn at random when the daemon
// starts, so it proves the token was shown, cannot be turned back into the
// token, and stops working when the daemon restarts or its token changes.
// It is HttpOnly (scripts cannot read it), SameSite=Strict (a link or form
// on another site does not send it) and Secure when the listener is TLS.
//
// A cookie rides along with requests the user did not mean to make, so a
// request authenticated by the cookie alone may change state only when it
// comes from the page itself: its Origin must be this listener's own
// (scheme and Host). Bearer-token requests are unchanged, and without a
// token nothing here applies.

// sessionCookie is the status page's session cookie.
const sessionCookie = "strait_session"

// pageAuth checks the bearer token or the page's session cookie.
type pageAuth struct {
	token   []byte
	session string // "" when no token is configured
}

func newPageAuth(token string) *pageAuth {
	a := &pageAuth{token: []byte(token)}
	if token == "" {
		return a
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (it crashes the process instead)
	mac := hmac.New(sha256.New, key)
	mac.Write(a.token)
	a.session = base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	return a
}

// required says whether requests need credentials at all.
func (a *pageAuth) required() bool { return len(a.token) > 0 }

// tokenOK compares a presented token in constant time (it leaks only the
// length, which a guess learns nothing useful from).
func (a *pageAuth) tokenOK(got string) bool {
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), a.token) == 1
}

// allowed says whether r carries the bearer token, or the session cookie
// and, for a state-changing method, this listener's own Origin.
func (a *pageAuth) allowed(r *http.Request) bool {
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return a.tokenOK(got)
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || a.session == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(a.session)) != 1 {
		return false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return true
	}
	return sameOrigin(r)
}

// sameOrigin: the request's Origin header names this listener. Browsers
// send Origin with every POST, so a missing one is refused too.
func sameOrigin(r *http.Request) bool {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return r.Header.Get("Origin") == scheme+"://"+r.Host
}

// handleLogin is POST /page/login: a form with the token. Right, it sets
// the session cookie and sends the browser to the page; wrong, it shows the
// form again with 401.
func (a *pageAuth) handleLogin(w http.ResponseWriter, r *http.Request) {
	if !a.required() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil || !a.tokenOK(r.PostFormValue("token")) {
		writeLoginPage(w, http.StatusUnauthorized, "wrong token")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: a.session, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
