package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"strait/mirror"
)

// ErrAPI is what every error answer of the admin API matches (errors.Is).
var ErrAPI = errors.New("daemon: admin API error")

// APIError is an error answer of the admin API.
type APIError struct {
	Method, Path string
	Status       int
	Msg          string

	reasons []string // a 503 from /readyz carries them
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%v: %s %s: %d: %s", ErrAPI, e.Method, e.Path, e.Status, e.Msg)
}

// Is makes errors.Is(err, ErrAPI) hold.
func (e *APIError) Is(target error) bool { return target == ErrAPI }

// Client talks to a daemon's admin API (strait status, tests).
type Client struct {
	Base  string // e.g. http://127.0.0.1:7070
	Token string
	HTTP  *http.Client
}

// NewClient accepts "host:port" or a full http(s) URL.
func NewClient(addr, token string) *Client {
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &Client{Base: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// Do sends a request and decodes a JSON answer into out (nil: discard).
// An error status becomes ErrAPI with the server's message.
func (c *Client) Do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, nil)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		ae := &APIError{Method: method, Path: path, Status: resp.StatusCode, Msg: http.StatusText(resp.StatusCode)}
		var eb ErrorBody
		if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
			ae.Msg = eb.Error
		}
		var rd Readiness
		if json.Unmarshal(body, &rd) == nil && len(rd.Reasons) > 0 {
			ae.reasons = rd.Reasons
			ae.Msg = strings.Join(rd.Reasons, "; ")
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%w: %s %s: decoding answer: %w", ErrAPI, method, path, err)
	}
	return nil
}

// Readiness fetches /readyz; a 503 answer is a Readiness, not an error.
func (c *Client) Readiness(ctx context.Context) (Readiness, error) {
	var rd Readiness
	err := c.Do(ctx, http.MethodGet, "/readyz", &rd)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable {
		return Readiness{Ready: false, Reasons: ae.reasons}, nil
	}
	return rd, err
}

// Pipelines fetches every pipeline with its partitions.
func (c *Client) Pipelines(ctx context.Context) ([]mirror.PipelineStatus, error) {
	var list PipelineList
	if err := c.Do(ctx, http.MethodGet, "/v1/pipelines", &list); err != nil {
		return nil, err
	}
	out := make([]mirror.PipelineStatus, 0, len(list.Pipelines))
	for _, s := range list.Pipelines {
		var p mirror.PipelineStatus
		err := c.Do(ctx, http.MethodGet, "/v1/pipelines/"+url.PathEscape(s.Name), &p)
		if ae := (*APIError)(nil); errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			continue // removed by a reload between the two calls
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// WriteTable prints pipelines and their partitions as aligned columns.
func WriteTable(w io.Writer, st []mirror.PipelineStatus) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PIPELINE\tSTATE\tROUTE\tMODE\tPARTITIONS\tLAG\tTIME LAG\tRECORDS/S\tMIRRORED\tERROR")
	for _, p := range st {
		s := Summarize(p)
		parts := fmt.Sprint(s.Partitions)
		if s.PausedPartitions > 0 {
			parts += fmt.Sprintf(" (%d paused)", s.PausedPartitions)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s→%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\n",
			p.Name, p.State, p.Source, p.Destination, p.Mode, parts, s.Lag,
			FormatLag(s.TimeLag), FormatRate(s.RecordsPerSec), s.RecordsTotal, oneLine(p.LastError))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range st {
		if len(p.Partitions) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s\n", p.Name)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  TOPIC\tPART\tDEST TOPIC\tSTATE\tSOURCE\tDEST\tHIGH WM\tLAG\tTIME LAG\tRECORDS/S\tNOTE")
		for _, t := range p.Partitions {
			note := t.PausedReason
			if t.LastError != "" {
				note = strings.TrimSpace(note + " " + t.LastError)
			}
			if t.GapRecords > 0 {
				note = strings.TrimSpace(fmt.Sprintf("%s gap of %d records", note, t.GapRecords))
			}
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n",
				t.Topic, t.Partition, t.DestTopic, t.State, t.SourceOffset, t.DestOffset,
				t.HighWatermark, t.Lag, FormatLag(t.TimeLag), FormatRate(t.RecordsPerSec), oneLine(note))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// FormatLag prints a time lag compactly ("-" when caught up).
func FormatLag(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// FormatRate prints a per-second rate with a k/M suffix.
func FormatRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.1fM", r/1e6)
	case r >= 1e4:
		return fmt.Sprintf("%.1fk", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "\t", " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
