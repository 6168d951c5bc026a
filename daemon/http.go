package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"strait/mirror"
)

// PipelineSummary is one entry of GET /v1/pipelines.
type PipelineSummary struct {
	Name             string        `json:"name"`
	Source           string        `json:"source"`
	Destination      string        `json:"destination"`
	Mode             string        `json:"mode"`
	State            mirror.State  `json:"state"`
	Connected        bool          `json:"connected"`
	LastError        string        `json:"last_error,omitempty"`
	Partitions       int           `json:"partitions"`
	PausedPartitions int           `json:"paused_partitions"`
	Lag              int64         `json:"lag"`         // sum over partitions
	TimeLag          time.Duration `json:"time_lag_ns"` // the largest partition time lag
	RecordsPerSec    float64       `json:"records_per_sec"`
	BytesPerSec      float64       `json:"bytes_per_sec"`
	RecordsTotal     int64         `json:"records_total"`
	GapRecords       int64         `json:"gap_records,omitempty"`
}

// PipelineList is the body of GET /v1/pipelines.
type PipelineList struct {
	Pipelines []PipelineSummary `json:"pipelines"`
}

// Readiness is the body of GET /readyz.
type Readiness struct {
	Ready   bool     `json:"ready"`
	Reasons []string `json:"reasons,omitempty"`
}

// ActionResult is the body answering a pause, resume or reload.
type ActionResult struct {
	Pipeline  string `json:"pipeline,omitempty"`
	Topic     string `json:"topic,omitempty"`
	Partition *int32 `json:"partition,omitempty"`
	Action    string `json:"action"`
	OK        bool   `json:"ok"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
}

// Summarize condenses a pipeline's status into its list entry.
func Summarize(p mirror.PipelineStatus) PipelineSummary {
	s := PipelineSummary{
		Name: p.Name, Source: p.Source, Destination: p.Destination, Mode: p.Mode,
		State: p.State, Connected: p.Connected, LastError: p.LastError,
		Partitions: len(p.Partitions),
	}
	for _, t := range p.Partitions {
		if t.State == mirror.StatePaused || t.State == mirror.StateAutoPaused {
			s.PausedPartitions++
		}
		s.Lag += t.Lag
		s.TimeLag = max(s.TimeLag, t.TimeLag)
		s.RecordsPerSec += t.RecordsPerSec
		s.BytesPerSec += t.BytesPerSec
		s.RecordsTotal += t.RecordsTotal
		s.GapRecords += t.GapRecords
	}
	return s
}

// Handler is the admin API (see the package documentation for routes).
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", d.handleReady)
	mux.Handle("GET /metrics", d.tel.metricsHandler())
	mux.HandleFunc("GET /v1/pipelines", d.handleList)
	mux.HandleFunc("GET /v1/pipelines/{name}", d.handleGet)
	mux.HandleFunc("GET /v1/pipelines/{name}/audit", d.handleAudit)
	mux.HandleFunc("GET /{$}", d.handlePage)
	mux.HandleFunc("POST /v1/pipelines/{name}/{action}", d.handlePipelineAction)
	mux.HandleFunc("POST /v1/pipelines/{name}/partitions/{topic}/{partition}/{action}", d.handlePartitionAction)
	mux.HandleFunc("POST /v1/reload", d.handleReload)
	// The status page's own form posts (see pageauth.go).
	auth := newPageAuth(d.opts.Token)
	mux.HandleFunc("POST /page/login", auth.handleLogin)
	mux.HandleFunc("POST /page/pipelines/{name}/{action}", d.handlePageAction)
	return d.guard(mux, auth)
}

// guard applies the bearer token (or the status page's session cookie),
// bounds request bodies, and turns the mux's own plain-text 404 and 405
// answers into JSON errors.
//
// Without a token, a request that changes state (any method but GET and
// HEAD) must come from this host as a browser would not send it for another
// site: see sameHostOnly. Reads stay open to other hosts so that Prometheus
// can scrape a daemon listening beyond loopback; a token closes them too.
func (d *Daemon) guard(mux *http.ServeMux, auth *pageAuth) http.Handler {
	port := ""
	if d.ln != nil {
		if ta, ok := d.ln.Addr().(*net.TCPAddr); ok {
			port = strconv.Itoa(ta.Port)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		if r.ContentLength > maxRequestBody {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes; the admin API takes at most %d and no route needs one", r.ContentLength, maxRequestBody))
			return
		}
		login := r.Method == http.MethodPost && r.URL.Path == "/page/login"
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !login {
			// No route but the sign-in form reads a body; one sent
			// anyway is drained here, within the bound, so that a
			// chunked body is refused too.
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				var tooBig *http.MaxBytesError
				if errors.As(err, &tooBig) {
					writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes; the admin API takes none", maxRequestBody))
				} else {
					writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
				}
				return
			}
		}
		if !auth.required() && r.Method != http.MethodGet && r.Method != http.MethodHead {
			if why := sameHostOnly(r, port); why != "" {
				writeError(w, http.StatusForbidden, why)
				return
			}
		}
		if auth.required() && r.URL.Path != "/healthz" && !auth.allowed(r) {
			switch {
			case r.Method == http.MethodGet && r.URL.Path == "/":
				writeLoginPage(w, http.StatusUnauthorized, "")
				return
			case login:
				// The form carries the token; handleLogin checks it.
			default:
				w.Header().Set("WWW-Authenticate", `Bearer realm="strait"`)
				writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
				return
			}
		}
		if _, pattern := mux.Handler(r); pattern == "" {
			// No route: let the mux decide 404 or 405 (it sets Allow),
			// but answer in JSON.
			mux.ServeHTTP(&jsonErrorWriter{ResponseWriter: w, path: r.URL.Path}, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// jsonErrorWriter replaces the body of an error status with a JSON error.
type jsonErrorWriter struct {
	http.ResponseWriter
	path    string
	wrote   bool
	isError bool
}

func (j *jsonErrorWriter) WriteHeader(code int) {
	if j.wrote {
		return
	}
	j.wrote = true
	if code >= 400 {
		j.isError = true
		msg := http.StatusText(code)
		switch code {
		case http.StatusNotFound:
			msg = "no such route: " + j.path
		case http.StatusMethodNotAllowed:
			msg = "method not allowed; allowed: " + j.Header().Get("Allow")
		}
		j.Header().Del("X-Content-Type-Options")
		writeError(j.ResponseWriter, code, msg)
		return
	}
	j.ResponseWriter.WriteHeader(code)
}

func (j *jsonErrorWriter) Write(b []byte) (int, error) {
	if !j.wrote {
		j.WriteHeader(http.StatusOK)
	}
	if j.isError {
		return len(b), nil // the mux's plain-text body is replaced
	}
	return j.ResponseWriter.Write(b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorBody{Error: msg})
}

func (d *Daemon) handleList(w http.ResponseWriter, r *http.Request) {
	st := d.engine.Status()
	out := PipelineList{Pipelines: make([]PipelineSummary, 0, len(st))}
	for _, p := range st {
		out.Pipelines = append(out.Pipelines, Summarize(p))
	}
	sort.Slice(out.Pipelines, func(i, j int) bool { return out.Pipelines[i].Name < out.Pipelines[j].Name })
	writeJSON(w, http.StatusOK, out)
}

func (d *Daemon) handleGet(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	for _, p := range d.engine.Status() {
		if p.Name == name {
			if p.Partitions == nil {
				p.Partitions = []mirror.PartitionStatus{}
			}
			writeJSON(w, http.StatusOK, p)
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("unknown pipeline %q", name))
}

func (d *Daemon) handlePipelineAction(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	if err := d.act(action, name, "", -1); err != nil {
		writeActionError(w, err)
		return
	}
	d.log.Info("pipeline "+action+"d over the admin API", "pipeline", name)
	writeJSON(w, http.StatusOK, ActionResult{Pipeline: name, Action: action, OK: true})
}

func (d *Daemon) handlePartitionAction(w http.ResponseWriter, r *http.Request) {
	name, topic, action := r.PathValue("name"), r.PathValue("topic"), r.PathValue("action")
	p, err := strconv.ParseInt(r.PathValue("partition"), 10, 32)
	if err != nil || p < 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("partition %q is not a partition number", r.PathValue("partition")))
		return
	}
	part := int32(p)
	if err := d.act(action, name, topic, part); err != nil {
		writeActionError(w, err)
		return
	}
	d.log.Info("partition "+action+"d over the admin API", "pipeline", name, "topic", topic, "partition", part)
	writeJSON(w, http.StatusOK, ActionResult{Pipeline: name, Topic: topic, Partition: &part, Action: action, OK: true})
}

// errBadAction marks an action other than pause or resume.
var errBadAction = errors.New("daemon: unknown action")

func (d *Daemon) act(action, name, topic string, partition int32) error {
	switch action {
	case "pause":
		return d.engine.Pause(name, topic, partition)
	case "resume":
		return d.engine.Resume(name, topic, partition)
	}
	return fmt.Errorf("%w %q (want pause or resume)", errBadAction, action)
}

func writeActionError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errBadAction):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, mirror.ErrUnknownPipeline), errors.Is(err, mirror.ErrUnknownPartition):
		writeError(w, http.StatusNotFound, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func (d *Daemon) handleReload(w http.ResponseWriter, r *http.Request) {
	err := d.Reload()
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, ActionResult{Action: "reload", OK: true})
	case errors.Is(err, ErrConfig):
		writeJSON(w, http.StatusUnprocessableEntity, struct {
			ErrorBody
			Errors []string `json:"errors"`
		}{ErrorBody{"configuration rejected; the running one is kept"}, ErrorLines(err)})
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func (d *Daemon) handleReady(w http.ResponseWriter, r *http.Request) {
	rd := d.Readiness(time.Now())
	code := http.StatusOK
	if !rd.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rd)
}

// Readiness judges, at now, whether every pipeline is connected and
// progressing (see the package documentation).
func (d *Daemon) Readiness(now time.Time) Readiness {
	d.mu.Lock()
	running, since := d.mu.running, d.mu.startedAt
	d.mu.Unlock()
	if !running {
		return Readiness{Reasons: []string{"engine not running"}}
	}
	return judgeReadiness(d.engine.Status(), now, since, d.opts.StallAfter)
}

// judgeReadiness is the pure rule behind /readyz: since is when the current
// configuration started, so a fresh pipeline is not called stalled before it
// had StallAfter to make progress.
func judgeReadiness(st []mirror.PipelineStatus, now, since time.Time, stallAfter time.Duration) Readiness {
	var reasons []string
	for _, p := range st {
		if p.Fleet != nil && p.Fleet.Mismatch != "" {
			reasons = append(reasons, fmt.Sprintf("pipeline %s: this daemon gets no work from workers group %s: %s", p.Name, p.Fleet.Group, p.Fleet.Mismatch))
			continue
		}
		switch p.State {
		case mirror.StateFailed:
			reasons = append(reasons, fmt.Sprintf("pipeline %s failed: %s", p.Name, orUnknown(p.LastError)))
			continue
		case mirror.StateStarting:
			// A pipeline stays starting while a cluster it needs first
			// (the destination, for its producer id) does not answer:
			// the error says which.
			if p.LastError != "" {
				reasons = append(reasons, fmt.Sprintf("pipeline %s is starting: %s", p.Name, p.LastError))
			} else {
				reasons = append(reasons, fmt.Sprintf("pipeline %s is starting", p.Name))
			}
			continue
		case mirror.StateStopped:
			reasons = append(reasons, fmt.Sprintf("pipeline %s is stopped", p.Name))
			continue
		case mirror.StatePaused:
			// An operator's choice, not a fault.
			continue
		}
		if !p.Connected {
			reasons = append(reasons, fmt.Sprintf("pipeline %s is not connected to %s: %s", p.Name, unanswered(p), orUnknown(p.LastError)))
			continue
		}
		for _, t := range p.Partitions {
			where := fmt.Sprintf("pipeline %s partition %s/%d", p.Name, t.Topic, t.Partition)
			switch t.State {
			case mirror.StateFailed:
				reasons = append(reasons, fmt.Sprintf("%s failed: %s", where, orUnknown(t.LastError)))
				continue
			case mirror.StateGap:
				reasons = append(reasons, fmt.Sprintf("%s lost %d records to source retention (resume to continue)", where, t.GapRecords))
				continue
			case mirror.StateAutoPaused:
				reasons = append(reasons, fmt.Sprintf("%s auto-paused: %s", where, orUnknown(t.PausedReason)))
				continue
			case mirror.StatePaused:
				continue
			}
			if t.Lag <= 0 {
				continue
			}
			last := t.LastProgressAt
			if last.Before(since) {
				last = since
			}
			if idle := now.Sub(last); idle > stallAfter {
				reasons = append(reasons, fmt.Sprintf("%s is %d records behind and made no progress for %s", where, t.Lag, idle.Round(time.Second)))
			}
		}
	}
	return Readiness{Ready: len(reasons) == 0, Reasons: reasons}
}

// unanswered names the clusters of p that did not answer their last call.
func unanswered(p mirror.PipelineStatus) string {
	var sides []string
	if !p.SourceConnected {
		sides = append(sides, "source "+p.Source)
	}
	if !p.DestinationConnected {
		sides = append(sides, "destination "+p.Destination)
	}
	if len(sides) == 0 {
		return "its clusters" // a status from before the sides were told apart
	}
	return strings.Join(sides, " and ")
}

func orUnknown(s string) string {
	if s == "" {
		return "no error recorded"
	}
	return s
}
