package pipelines

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Sentinel errors. Every *Error wraps ErrInvalid, so errors.Is(err,
// ErrInvalid) tells a configuration mistake from an I/O failure.
var (
	// ErrInvalid marks a configuration that does not load: a syntax error, an
	// unknown field, a wrong type or a failed semantic check.
	ErrInvalid = errors.New("pipelines: invalid configuration")
	// ErrRead marks a configuration path that cannot be read at all.
	ErrRead = errors.New("pipelines: cannot read configuration")
	// ErrTLS marks TLS files that cannot be loaded when building client options.
	ErrTLS = errors.New("pipelines: tls")
	// ErrSASL marks an unusable SASL setting when building client options.
	ErrSASL = errors.New("pipelines: sasl")
)

// String prints the position as file:line:col (file alone when the line is
// unknown).
func (p Position) String() string {
	if p.Line == 0 {
		return p.File
	}
	col := p.Column
	if col == 0 {
		col = 1
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, col)
}

// Error is one problem in a configuration, at a position.
type Error struct {
	Pos Position
	Msg string

	sentinel error // ErrInvalid when nil
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Unwrap makes a configuration error match ErrInvalid, and an unreadable
// path ErrRead.
func (e *Error) Unwrap() error {
	if e.sentinel != nil {
		return e.sentinel
	}
	return ErrInvalid
}

// Errors is every problem found in a configuration, sorted by position.
// Load returns it (as error) so a user sees all mistakes at once.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the individual errors to errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sortErrors orders errors by file, line and column, keeping the order in
// which they were found for errors at the same place, and drops exact
// duplicates (the same message at the same place).
func sortErrors(es Errors) Errors {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Pos, es[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	out := es[:0]
	for _, e := range es {
		if n := len(out); n > 0 && e.Pos == out[n-1].Pos && e.Msg == out[n-1].Msg {
			continue
		}
		out = append(out, e)
	}
	return out
}
