package pipelines

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// mask is what a Secret prints as, wherever it is printed.
const mask = "******"

// Reveal returns the secret's value, for the one place that needs it (the
// SASL mechanism).
func (s Secret) Reveal() string { return string(s) }

func (s Secret) masked() string {
	if s == "" {
		return ""
	}
	return mask
}

// String masks the secret.
func (s Secret) String() string { return s.masked() }

// GoString masks the secret in %#v.
func (s Secret) GoString() string { return strconv.Quote(s.masked()) }

// Format masks the secret under every fmt verb (%d or %x would otherwise
// print its bytes).
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprint(f, strconv.Quote(s.masked()))
	default:
		fmt.Fprint(f, s.masked())
	}
}

// MarshalYAML masks the secret in validate --print.
func (s Secret) MarshalYAML() (any, error) { return s.masked(), nil }

// MarshalJSON masks the secret in plan --json and the admin API.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.masked()) }

// MarshalText masks the secret for any text encoder.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.masked()), nil }

// LogValue masks the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.masked()) }

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String prints the duration as time.Duration does ("5s", "1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML prints the duration as "5s".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON prints the duration as "5s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalYAML lets yaml.Unmarshal read "5s" too (Load has its own
// decoder; this serves code that decodes a Config directly).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	x, err := ParseDuration(n.Value)
	if err == nil {
		*d = x
	}
	return err
}

// UnmarshalJSON reads "5s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	x, err := ParseDuration(s)
	if err == nil {
		*d = x
	}
	return err
}

// ParseDuration parses a non-negative Go duration ("5s", "1m30s", "250ms").
// A bare "0" is zero; other bare numbers are refused because their unit
// would be a guess.
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("expected a duration such as 5s, 250ms or 1m30s, got %q", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("expected a non-negative duration, got %q", s)
	}
	return Duration(d), nil
}

// Size units, longest suffixes first so "MiB" is not read as "B".
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// ParseSize parses a byte count: "4096", "512B", "50MiB", "1GB", "1.5KiB".
// KiB/MiB/GiB/TiB (and K/M/G/T) are powers of 1024; KB/MB/GB/TB are powers
// of 1000, as in SI. Units are case-insensitive; the result must be a whole,
// non-negative number of bytes.
func ParseSize(s string) (Size, error) {
	bad := fmt.Errorf("expected a size such as 4096, 50MiB or 1GB, got %q", s)
	t := strings.TrimSpace(s)
	lower := strings.ToLower(t)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(lower, u.suffix) {
			mult = u.mult
			t = strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	if t == "" || strings.ContainsAny(t, "+eExX_") {
		return 0, bad
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("expected a non-negative size, got %q", s)
		}
		if n > math.MaxInt64/mult {
			return 0, fmt.Errorf("size %q is too large", s)
		}
		return Size(n * mult), nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, bad
	}
	if f < 0 {
		return 0, fmt.Errorf("expected a non-negative size, got %q", s)
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	if v != math.Trunc(v) {
		return 0, fmt.Errorf("size %q is not a whole number of bytes", s)
	}
	return Size(v), nil
}

// String prints the size in the largest binary unit that divides it exactly
// ("64MiB", "1000", "3KiB").
func (s Size) String() string {
	n := int64(s)
	if n != 0 {
		for _, u := range []struct {
			suffix string
			mult   int64
		}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
			if n%u.mult == 0 {
				return strconv.FormatInt(n/u.mult, 10) + u.suffix
			}
		}
	}
	return strconv.FormatInt(n, 10)
}

// MarshalYAML prints the size as "64MiB", or as a plain number of bytes.
func (s Size) MarshalYAML() (any, error) {
	if str := s.String(); str != strconv.FormatInt(int64(s), 10) {
		return str, nil
	}
	return int64(s), nil
}

// MarshalJSON prints the size as a plain byte count, for machines.
func (s Size) MarshalJSON() ([]byte, error) { return json.Marshal(int64(s)) }

// UnmarshalYAML reads "50MiB" or a byte count.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	x, err := ParseSize(n.Value)
	if err == nil {
		*s = x
	}
	return err
}

// UnmarshalJSON reads a byte count or a string such as "50MiB".
func (s *Size) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		str = string(b)
	}
	x, err := ParseSize(str)
	if err == nil {
		*s = x
	}
	return err
}

// ParseStart parses "earliest", "latest" or an RFC 3339 time.
func ParseStart(s string) (Start, error) {
	switch s {
	case "earliest":
		return Start{Kind: StartEarliest}, nil
	case "latest":
		return Start{Kind: StartLatest}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Start{}, fmt.Errorf("expected earliest, latest or an RFC 3339 time such as 2026-01-02T15:04:05Z, got %q", s)
	}
	return Start{Kind: StartTime, Time: t}, nil
}

// String prints the start as written in YAML.
func (s Start) String() string {
	switch s.Kind {
	case StartLatest:
		return "latest"
	case StartTime:
		return s.Time.Format(time.RFC3339Nano)
	default:
		return "earliest"
	}
}

// MarshalYAML prints the start as written in YAML.
func (s Start) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON prints the start as written in YAML.
func (s Start) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalYAML reads earliest, latest or an RFC 3339 time.
func (s *Start) UnmarshalYAML(n *yaml.Node) error {
	x, err := ParseStart(n.Value)
	if err == nil {
		*s = x
	}
	return err
}

// UnmarshalJSON reads earliest, latest or an RFC 3339 time.
func (s *Start) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return err
	}
	x, err := ParseStart(str)
	if err == nil {
		*s = x
	}
	return err
}
