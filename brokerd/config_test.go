package brokerd

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	logger := slog.Default()
	tests := []struct {
		name string
		in   Config
		want Config // Logger is checked apart
	}{
		{"zero", Config{Dir: "d"}, Config{Dir: "d", Listen: "127.0.0.1:0", Brokers: 3, Partitions: 3,
			MaxRequestBytes: 100 << 20, MaxOpenFiles: 1024, MaintainInterval: 5 * time.Second}},
		{"set values kept", Config{Dir: "d", Listen: "0.0.0.0:9092", Brokers: 1, Partitions: 7, MaxRequestBytes: 1 << 20,
			MaxOpenFiles: 10, MaintainInterval: time.Second, OffsetsRetention: -1, Logger: logger},
			Config{Dir: "d", Listen: "0.0.0.0:9092", Brokers: 1, Partitions: 7, MaxRequestBytes: 1 << 20,
				MaxOpenFiles: 10, MaintainInterval: time.Second, OffsetsRetention: -1}},
		{"negative limits take the default", Config{Dir: "d", MaxRequestBytes: -1, MaxOpenFiles: -1, MaintainInterval: -time.Second},
			Config{Dir: "d", Listen: "127.0.0.1:0", Brokers: 3, Partitions: 3,
				MaxRequestBytes: 100 << 20, MaxOpenFiles: 1024, MaintainInterval: 5 * time.Second}},
		{"negative counts are left for validate", Config{Dir: "d", Brokers: -1, Partitions: -2},
			Config{Dir: "d", Listen: "127.0.0.1:0", Brokers: -1, Partitions: -2,
				MaxRequestBytes: 100 << 20, MaxOpenFiles: 1024, MaintainInterval: 5 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.withDefaults()
			if got.Logger == nil || (tc.in.Logger != nil && got.Logger != tc.in.Logger) {
				t.Fatalf("logger %v", got.Logger)
			}
			got.Logger = nil
			if got.Dir != tc.want.Dir || got.Listen != tc.want.Listen || got.Brokers != tc.want.Brokers ||
				got.Partitions != tc.want.Partitions || got.MaxRequestBytes != tc.want.MaxRequestBytes ||
				got.MaxOpenFiles != tc.want.MaxOpenFiles || got.MaintainInterval != tc.want.MaintainInterval ||
				got.OffsetsRetention != tc.want.OffsetsRetention {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want string // "" for a valid config, else part of the error
	}{
		{"defaults", Config{Dir: "d"}, ""},
		{"no dir", Config{}, "Dir is required"},
		{"negative brokers", Config{Dir: "d", Brokers: -1}, "Brokers -1 out of range"},
		{"too many brokers", Config{Dir: "d", Brokers: 1001}, "Brokers 1001 out of range"},
		{"most brokers", Config{Dir: "d", Brokers: 1000}, ""},
		{"negative partitions", Config{Dir: "d", Partitions: -1}, "Partitions -1 out of range"},
		{"listen without port", Config{Dir: "d", Listen: "localhost"}, `Listen "localhost"`},
		{"listen bad port", Config{Dir: "d", Listen: "127.0.0.1:x"}, "bad port"},
		{"last broker past 65535", Config{Dir: "d", Listen: "127.0.0.1:65534", Brokers: 3}, "bad port"},
		{"last broker at 65535", Config{Dir: "d", Listen: "127.0.0.1:65533", Brokers: 3}, ""},
		{"advertise one per broker", Config{Dir: "d", Brokers: 2, Advertise: []string{"proxy:1", "proxy:2"}}, ""},
		{"advertise too few", Config{Dir: "d", Brokers: 2, Advertise: []string{"proxy:1"}}, "1 addresses for 2 brokers"},
		{"advertise without port", Config{Dir: "d", Brokers: 1, Advertise: []string{"proxy"}}, `Advertise "proxy"`},
		{"advertise port 0", Config{Dir: "d", Brokers: 1, Advertise: []string{"proxy:0"}}, "port in 1..65535"},
		{"advertise no host", Config{Dir: "d", Brokers: 1, Advertise: []string{":9092"}}, "port in 1..65535"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.in.withDefaults().validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want ErrConfig with %q", err, tc.want)
			}
		})
	}
}

// Start refuses a bad config before touching the disk.
func TestStartRejectsBadConfig(t *testing.T) {
	dir := t.TempDir() + "/never"
	_, err := Start(context.Background(), Config{Dir: dir, Brokers: -1})
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("err %v, want ErrConfig", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Start created %s for a bad config: %v", dir, err)
	}
}
