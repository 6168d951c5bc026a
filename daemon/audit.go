package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"strait/mirror"
)

// handleAudit answers GET /v1/pipelines/{name}/audit: the pipeline's
// continuous audit (completeness, differences, live RPO) per topic and
// partition.
func (d *Daemon) handleAudit(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	st, err := d.engine.Audit(name)
	if errors.Is(err, mirror.ErrUnknownPipeline) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown pipeline %q", name))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// Audit fetches a pipeline's continuous audit.
func (c *Client) Audit(ctx context.Context, pipeline string) (mirror.AuditStatus, error) {
	var st mirror.AuditStatus
	err := c.Do(ctx, http.MethodGet, "/v1/pipelines/"+url.PathEscape(pipeline)+"/audit", &st)
	return st, err
}
