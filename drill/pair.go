package drill

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"strait/brokerd"
)

// Pair is two embedded brokerd clusters, east and west, each in its own
// folder under Dir.
type Pair struct {
	Dir        string
	East, West *brokerd.Cluster

	mu         sync.Mutex
	eastClosed bool
	westClosed bool
}

// StartPair starts east and west with brokers brokers each, in folders under
// dir (created if needed).
func StartPair(ctx context.Context, dir string, brokers int, logger *slog.Logger) (*Pair, error) {
	p := &Pair{Dir: dir}
	var err error
	p.East, err = brokerd.Start(ctx, brokerd.Config{Dir: filepath.Join(dir, "east"), Brokers: brokers, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("%w: starting east: %w", ErrScenario, err)
	}
	p.West, err = brokerd.Start(ctx, brokerd.Config{Dir: filepath.Join(dir, "west"), Brokers: brokers, Logger: logger})
	if err != nil {
		_ = p.East.Close()
		return nil, fmt.Errorf("%w: starting west: %w", ErrScenario, err)
	}
	return p, nil
}

// StopEast stops the east cluster, as a disaster would; later calls do
// nothing.
func (p *Pair) StopEast() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.eastClosed {
		return nil
	}
	p.eastClosed = true
	return p.East.Close()
}

// StopWest stops the west cluster; later calls do nothing.
func (p *Pair) StopWest() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.westClosed {
		return nil
	}
	p.westClosed = true
	return p.West.Close()
}

// RestartEast starts east again, after StopEast, on its folder and at its
// addresses: the clients configured for it find it again.
func (p *Pair) RestartEast(ctx context.Context, logger *slog.Logger) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.eastClosed {
		return nil
	}
	c, err := brokerd.Start(ctx, brokerd.Config{Dir: filepath.Join(p.Dir, "east"), Listen: p.East.Addrs()[0], Brokers: len(p.East.Addrs()), Logger: logger})
	if err != nil {
		return fmt.Errorf("%w: restarting east: %w", ErrScenario, err)
	}
	p.East, p.eastClosed = c, false
	return nil
}

// RestartWest is RestartEast for west.
func (p *Pair) RestartWest(ctx context.Context, logger *slog.Logger) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.westClosed {
		return nil
	}
	c, err := brokerd.Start(ctx, brokerd.Config{Dir: filepath.Join(p.Dir, "west"), Listen: p.West.Addrs()[0], Brokers: len(p.West.Addrs()), Logger: logger})
	if err != nil {
		return fmt.Errorf("%w: restarting west: %w", ErrScenario, err)
	}
	p.West, p.westClosed = c, false
	return nil
}

// Close stops both clusters and removes Dir.
func (p *Pair) Close() error {
	errE := p.StopEast()
	errW := p.StopWest()
	errD := os.RemoveAll(p.Dir)
	for _, err := range []error{errE, errW, errD} {
		if err != nil {
			return err
		}
	}
	return nil
}
