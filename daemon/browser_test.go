package daemon

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"strait/mirror"
)

// The status page in a real browser: Debian's chromium, headless, driven
// over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON
// messages separated by NUL bytes on file descriptors 3 and 4), so the test
// needs nothing beyond the standard library.

// chromium starts a headless chromium for the test, or skips when none is
// installed (fails instead with STRAIT_REQUIRE_CHROMIUM set, as in CI).
func chromium(t *testing.T) *browser {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("STRAIT_REQUIRE_CHROMIUM") != "" {
			t.Fatal("chromium not installed, and STRAIT_REQUIRE_CHROMIUM is set")
		}
		t.Skip("chromium not installed (apt-get install chromium); the status page is not checked in a browser")
	}
	// Chromium reads commands from fd 3 and writes answers to fd 4.
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path,
		// This machine's network is closed: no background connections.
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--hide-scrollbars", "--force-color-profile=srgb",
		"--user-data-dir="+t.TempDir(), "--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{cmdR, outW}
	stderr := &syncBuf{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	cmdR.Close()
	outW.Close()
	b := &browser{t: t, w: cmdW, replies: map[int]chan cdpMessage{}, stderr: stderr}
	go b.readLoop(outR)
	t.Cleanup(func() {
		_ = cmdW.Close() // chromium exits when its command pipe closes
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		outR.Close()
	})
	return b
}

// browser is one chromium and the DevTools session of its one tab.
type browser struct {
	t       *testing.T
	w       *os.File
	session string
	stderr  *syncBuf

	mu struct {
		sync.Mutex
		next int
	}
	repliesMu sync.Mutex
	replies   map[int]chan cdpMessage
}

type cdpMessage struct {
	ID     int             `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

func (b *browser) readLoop(r *os.File) {
	br := bufio.NewReader(r)
	for {
		msg, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		var m cdpMessage
		if json.Unmarshal(msg[:len(msg)-1], &m) != nil || m.ID == 0 {
			continue // an event: not needed here
		}
		b.repliesMu.Lock()
		ch := b.replies[m.ID]
		delete(b.replies, m.ID)
		b.repliesMu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// call sends one DevTools command (to the tab's session once attached)
// and decodes its result into out.
func (b *browser) call(method string, params, out any) error {
	b.mu.Lock()
	b.mu.next++
	id := b.mu.next
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if b.session != "" {
		msg["sessionId"] = b.session
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	ch := make(chan cdpMessage, 1)
	b.repliesMu.Lock()
	b.replies[id] = ch
	b.repliesMu.Unlock()
	if _, err := b.w.Write(append(body, 0)); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("%s: %s", method, m.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(m.Result, out)
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s: no answer from chromium in 30s; its stderr:\n%s", method, b.stderr.String())
	}
}

// open makes a tab of width×height showing url and attaches to it.
func (b *browser) open(url string, width, height int) {
	b.t.Helper()
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call("Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		b.t.Fatal(err)
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call("Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att); err != nil {
		b.t.Fatal(err)
	}
	b.session = att.SessionID
	if err := b.call("Emulation.setDeviceMetricsOverride", map[string]any{
		"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil); err != nil {
		b.t.Fatal(err)
	}
	if err := b.call("Page.navigate", map[string]any{"url": url}, nil); err != nil {
		b.t.Fatal(err)
	}
}

// eval runs a JavaScript expression in the tab and decodes its value.
func (b *browser) eval(expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := b.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res); err != nil {
		return err
	}
	if res.ExceptionDetails != nil {
		return errors.New(res.ExceptionDetails.Text)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(res.Result.Value, out)
}

// waitTrue polls a boolean expression (an error, e.g. while the page
// reloads, counts as not yet).
func (b *browser) waitTrue(what, expr string) {
	b.t.Helper()
	var last error
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		if last = b.eval(expr, &ok); last == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			var html string
			_ = b.eval("document.documentElement.outerHTML", &html)
			b.t.Fatalf("timed out waiting for %s (last error %v); page:\n%s", what, last, html)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pageRows is what the status page shows, read from its DOM.
type pageRows struct {
	Pipelines []struct {
		Name, State, Audit string
		Partitions         string
	}
	Partitions []struct {
		ID, State, Lag, Audit string
	}
}

const readRows = `(() => {
  const cells = tr => Array.from(tr.querySelectorAll("td")).map(td => td.textContent.trim());
  return {
    Pipelines: Array.from(document.querySelectorAll("tr[data-pipeline]")).map(tr => {
      const c = cells(tr);
      return {Name: tr.dataset.pipeline, State: c[1], Partitions: c[4], Audit: c[8]};
    }),
    Partitions: Array.from(document.querySelectorAll("tr[data-partition]")).map(tr => {
      const c = cells(tr);
      return {ID: tr.dataset.partition, State: c[2], Lag: c[5], Audit: c[8]};
    }),
  };
})()`

// TestStatusPageInBrowser opens the status page of a daemon mirroring
// between two brokerd clusters in headless chromium, reads pipelines,
// partitions, lag and audit completeness from the rendered page, presses
// pause and checks through the API that the pipeline paused. With a token,
// the page first asks for it.
func TestStatusPageInBrowser(t *testing.T) {
	for _, token := range []string{"", "s3cret-token"} {
		name := "open"
		if token != "" {
			name = "token"
		}
		t.Run(name, func(t *testing.T) { statusPageInBrowser(t, token) })
	}
}

func statusPageInBrowser(t *testing.T, token string) {
	b := chromium(t)
	f := auditedFixtureWith(t, token)
	b.open(f.api.Base+"/", 1000, 400)

	if token != "" {
		b.waitTrue("the login form", `document.querySelector("input[name=token]") !== null`)
		if err := b.eval(`document.querySelector("input[name=token]").value = "wrong"; document.querySelector("form button").click()`, nil); err != nil {
			t.Fatal(err)
		}
		b.waitTrue("the wrong token refused", `document.getElementById("login-error") !== null`)
		if err := b.eval(fmt.Sprintf(`document.querySelector("input[name=token]").value = %q; document.querySelector("form button").click()`, token), nil); err != nil {
			t.Fatal(err)
		}
	}
	b.waitTrue("pipeline one on the page", `document.querySelector('tr[data-pipeline="one"]') !== null`)

	var rows pageRows
	if err := b.eval(readRows, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows.Pipelines) != 1 || rows.Pipelines[0].Name != "one" || rows.Pipelines[0].State != "running" ||
		rows.Pipelines[0].Partitions != "2" || rows.Pipelines[0].Audit != "100.00%" {
		t.Fatalf("pipelines on the page: %+v", rows.Pipelines)
	}
	p, _ := f.pipeline("one")
	lag := map[string]int64{}
	for _, pt := range p.Partitions {
		lag[fmt.Sprintf("%s/%d", pt.Topic, pt.Partition)] = pt.Lag
	}
	if len(rows.Partitions) != 2 {
		t.Fatalf("partitions on the page: %+v", rows.Partitions)
	}
	for _, pt := range rows.Partitions {
		want, ok := lag[pt.ID]
		if !ok || pt.Lag != fmt.Sprint(want) || pt.State != "running" || pt.Audit != "100.00%" {
			t.Errorf("partition %+v on the page; the API says lag %d (known: %v)", pt, want, ok)
		}
	}

	if token == "" {
		shot := b.screenshot()
		if os.Getenv("STRAIT_UPDATE_SCREENSHOT") != "" {
			out := filepath.Join("..", "docs", "img", "status.png")
			if err := os.WriteFile(out, shot, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s (%d bytes)", out, len(shot))
		}
	}

	// Press pause: a form post, answered with a redirect back to the page.
	if err := b.eval(`document.querySelector('tr[data-pipeline="one"] form[action$="/pause"] button').click()`, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "pipeline one paused through the API", func() bool {
		p, ok := f.pipeline("one")
		return ok && p.State == mirror.StatePaused
	})
	b.waitTrue("the page showing one paused", `(() => { const tr = document.querySelector('tr[data-pipeline="one"]');
		return tr !== null && tr.querySelectorAll("td")[1].textContent.trim() === "paused"; })()`)
	if token != "" {
		// The session cookie never shows the token.
		var cookies struct {
			Cookies []struct{ Name, Value string } `json:"cookies"`
		}
		if err := b.call("Network.getCookies", map[string]any{}, &cookies); err != nil {
			t.Fatal(err)
		}
		if len(cookies.Cookies) != 1 || cookies.Cookies[0].Name != sessionCookie || strings.Contains(cookies.Cookies[0].Value, token) {
			t.Fatalf("cookies: %+v", cookies.Cookies)
		}
	}
}

// screenshot captures the tab as a PNG and checks it decodes.
func (b *browser) screenshot() []byte {
	b.t.Helper()
	var shot struct {
		Data string `json:"data"`
	}
	if err := b.call("Page.captureScreenshot", map[string]any{"format": "png"}, &shot); err != nil {
		b.t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		b.t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if sz := img.Bounds().Size(); sz.X != 1000 || sz.Y != 400 {
		b.t.Fatalf("screenshot is %v, want 1000x400", sz)
	}
	return raw
}

// TestPageSession checks the status page's login and session cookie with
// a plain HTTP client: the cookie stands in for the token, but a
// state-changing request carrying only the cookie must come from the page's
// own origin.
func TestPageSession(t *testing.T) {
	f := newFixture(t, "s3cret-token")
	f.waitCaughtUp("one", 2, 50, "pipeline one to catch up")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path, body string, hdr map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, f.api.Base+path, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if r := do("GET", "/", "", nil); r.StatusCode != 401 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page without a session: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	if r := do("POST", "/page/login", "token=wrong", form); r.StatusCode != 401 || len(r.Cookies()) != 0 {
		t.Fatalf("login with a wrong token: %d %v", r.StatusCode, r.Cookies())
	}
	r := do("POST", "/page/login", "token=s3cret-token", form)
	if r.StatusCode != http.StatusSeeOther || len(r.Cookies()) != 1 {
		t.Fatalf("login: %d %v", r.StatusCode, r.Cookies())
	}
	c := r.Cookies()[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || strings.Contains(c.Value, "s3cret") {
		t.Fatalf("session cookie: %+v", c)
	}
	cookie := c.Name + "=" + c.Value
	if r := do("GET", "/", "", map[string]string{"Cookie": cookie}); r.StatusCode != 200 ||
		r.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(r.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("page with the session: %d %v", r.StatusCode, r.Header)
	}
	if r := do("GET", "/", "", map[string]string{"Cookie": c.Name + "=forged"}); r.StatusCode != 401 {
		t.Fatalf("page with a forged session: %d", r.StatusCode)
	}
	own := f.api.Base // the listener's own origin
	for _, origin := range []string{"", "http://evil.example", "null"} {
		if r := do("POST", "/page/pipelines/one/pause", "", map[string]string{"Cookie": cookie, "Origin": origin}); r.StatusCode != 401 {
			t.Fatalf("pause with the cookie from origin %q: %d", origin, r.StatusCode)
		}
	}
	if p, _ := f.pipeline("one"); p.State == mirror.StatePaused {
		t.Fatal("a refused request paused the pipeline")
	}
	if r := do("POST", "/page/pipelines/one/pause", "", map[string]string{"Cookie": cookie, "Origin": own}); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
		t.Fatalf("pause from the page: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if p, _ := f.pipeline("one"); p.State != mirror.StatePaused {
		t.Fatalf("pipeline one is %s after the page paused it", p.State)
	}
}
