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
