package daemon

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"strait/mirror"
)

// The status page at / of the admin API: one server-rendered HTML page,
// embedded, with no external assets and no script; it refreshes itself (a
// meta refresh), and its pause and resume buttons are plain form posts to
// /page/pipelines/{name}/{action}, answered with a redirect back to /.
// With a token configured, / shows a login form first (pageauth.go).
//
//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Parse(pageHTML))

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>strait status: sign in</title>
<style>body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1b1f24; } .bad { color: #cf222e; }</style>
</head>
<body>
<h1>strait</h1>
<p>This admin API has a token. Enter it to see the status page; it is kept as a session cookie for this daemon's run.</p>
{{if .}}<p class="bad" id="login-error">{{.}}</p>{{end}}
<form method="post" action="/page/login">
<input type="password" name="token" autocomplete="current-password" aria-label="admin API token" autofocus>
<button type="submit">sign in</button>
</form>
</body>
</html>
`))

// writeLoginPage answers with the login form and a status (401: the
// request carried no valid credentials), with msg shown above the form.
func writeLoginPage(w http.ResponseWriter, code int, msg string) {
	var b bytes.Buffer
	if err := loginTmpl.Execute(&b, msg); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	setPageHeaders(w)
	w.Header().Set("WWW-Authenticate", `Bearer realm="strait"`)
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

// handlePageAction is the page's pause or resume button: the same action as
// POST /v1/pipelines/{name}/{action}, answered with a redirect to the page.
func (d *Daemon) handlePageAction(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	if err := d.act(action, name, "", -1); err != nil {
		writeActionError(w, err)
		return
	}
	d.log.Info("pipeline "+action+"d from the status page", "pipeline", name)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// pageRefresh is how often the page reloads, in seconds.
const pageRefresh = 2

type pagePipeline struct {
	Name, Source, Destination, Mode string
	State                           mirror.State
	Partitions                      int
	Lag                             int64
	TimeLag, Rate, Audit, RPO       string
	AuditBad                        bool
	Parts                           []pagePartition
}

type pagePartition struct {
	Topic                      string
	Partition                  int32
	State                      mirror.State
	Source, Dest, Lag          int64
	TimeLag, Rate, Audit, Note string
	AuditBad                   bool
}

type pageData struct {
	Now       string
	Refresh   int
	Ready     bool
	Reasons   []string
	Pipelines []pagePipeline
	Errors    []string
}

func pct(f float64) string { return fmt.Sprintf("%.2f%%", 100*f) }

func (d *Daemon) handlePage(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	data := pageData{Now: now.Format(time.TimeOnly), Refresh: pageRefresh}
	rd := d.Readiness(now)
	data.Ready, data.Reasons = rd.Ready, rd.Reasons
	for _, p := range d.engine.Status() {
		s := Summarize(p)
		pp := pagePipeline{Name: p.Name, Source: p.Source, Destination: p.Destination, Mode: p.Mode, State: p.State,
			Partitions: s.Partitions, Lag: s.Lag, TimeLag: s.TimeLag.Round(time.Millisecond).String(),
			Rate: fmt.Sprintf("%.0f", s.RecordsPerSec), Audit: "off", RPO: "-"}
		au, err := d.engine.Audit(p.Name)
		byPart := map[string]mirror.PartitionAudit{}
		if err == nil {
			if au.Enabled {
				pp.Audit, pp.AuditBad = pct(au.Completeness), au.Completeness < 1
			}
			pp.RPO = fmt.Sprintf("%d rec, %s", au.RPO.Records, au.RPO.Age.Round(time.Millisecond))
			for _, pa := range au.Partitions {
				byPart[fmt.Sprintf("%s/%d", pa.Topic, pa.Partition)] = pa
			}
		}
		if p.LastError != "" {
			data.Errors = append(data.Errors, p.Name+": "+p.LastError)
		}
		for _, t := range p.Partitions {
			pt := pagePartition{Topic: t.Topic, Partition: t.Partition, State: t.State, Source: t.SourceOffset,
				Dest: t.DestOffset, Lag: t.Lag, TimeLag: t.TimeLag.Round(time.Millisecond).String(),
				Rate: fmt.Sprintf("%.0f", t.RecordsPerSec), Audit: "-", Note: t.PausedReason}
			if pa, ok := byPart[fmt.Sprintf("%s/%d", t.Topic, t.Partition)]; ok && au.Enabled {
				pt.Audit, pt.AuditBad = pct(pa.Completeness), pa.Completeness < 1
			}
			if t.LastError != "" {
				data.Errors = append(data.Errors, fmt.Sprintf("%s %s/%d: %s", p.Name, t.Topic, t.Partition, t.LastError))
			}
			pp.Parts = append(pp.Parts, pt)
		}
		data.Pipelines = append(data.Pipelines, pp)
	}
	var b bytes.Buffer
	if err := pageTmpl.Execute(&b, data); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	setPageHeaders(w)
	_, _ = w.Write(b.Bytes())
}

// setPageHeaders marks an HTML answer: never cached, never framed (a page
// of buttons inside another site's frame could be clicked by a trick, and
// the post would carry this page's own Origin), no script at all, and forms
// that post only here.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	// Not no-referrer: under it browsers send "Origin: null" with the
	// page's own form posts, which the session check then refuses.
	h.Set("Referrer-Policy", "same-origin")
}
