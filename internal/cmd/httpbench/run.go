package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// result is what a run measured, and where.
type result struct {
	cells []cell
	env   environment
}

// run builds the servers, prepares the database, and measures every cell of the
// matrix (delay × isolation × tenants), printing progress to progress. Every process
// it starts is stopped before it returns, also when ctx ends (Ctrl-C) or it fails.
func run(ctx context.Context, cfg config, progress io.Writer) (result, error) {
	root, err := repoRoot(ctx, cfg.goTool)
	if err != nil {
		return result{}, err
	}
	dir, err := os.MkdirTemp("", "httpbench-")
	if err != nil {
		return result{}, err
	}
	defer func() { _ = os.RemoveAll(dir) }()

	fmt.Fprintln(progress, "httpbench: building the servers")
	withExample := false
	for _, k := range cfg.servers {
		withExample = withExample || k.example
	}
	bins, err := build(ctx, cfg.goTool, root, dir, withExample, cfg.race)
	if err != nil {
		return result{}, err
	}
	fmt.Fprintf(progress, "httpbench: provisioning %d tenants\n", cfg.maxTenants())
	dsn, version, err := prepareDatabase(ctx, cfg, root)
	if err != nil {
		return result{}, err
	}
	res := result{env: describeEnvironment(ctx, root, version)}

	meter := newCPUMeter(ctx, dsn)
	defer meter.close(context.WithoutCancel(ctx))
	var cs children
	defer cs.stopAll()
	for _, delay := range cfg.delays {
		serverDSN := dsn
		var proxy *child
		if delay > 0 {
			if proxy, serverDSN, err = startProxy(ctx, &cs, bins, dsn, delay); err != nil {
				return result{}, err
			}
		}
		serverDSN = withParam(serverDSN, "pool_max_conns", strconv.Itoa(cfg.pool))
		for _, iso := range cfg.isolation {
			cells, err := measureLevel(ctx, &cs, meter, cfg, bins, serverDSN, delay, iso, progress)
			if err != nil {
				return result{}, err
			}
			res.cells = append(res.cells, cells...)
		}
		if proxy != nil {
			proxy.Stop()
		}
	}
	return res, nil
}

// measureLevel starts the servers at one isolation level and measures each tenant
// count with them, then stops them.
func measureLevel(ctx context.Context, cs *children, meter *cpuMeter, cfg config, bins binaries, dsn string, delay time.Duration, iso string, progress io.Writer) ([]cell, error) {
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for _, k := range cfg.servers {
		s, err := startServer(ctx, cs, cfg, bins, k, dsn, iso)
		if err != nil {
			return nil, err
		}
		servers = append(servers, s)
	}
	var cells []cell
	for _, n := range cfg.tenants {
		c, err := measure(ctx, meter, cfg, servers, cell{delay: delay, isolation: iso, tenants: n, servers: cfg.servers}, progress)
		if err != nil {
			return nil, err
		}
		cells = append(cells, c)
	}
	return cells, nil
}

// measure warms every server up, then runs the rounds: in each, every server in turn
// gets the load for the configured duration.
func measure(ctx context.Context, meter *cpuMeter, cfg config, servers []*server, c cell, progress io.Writer) (cell, error) {
	fmt.Fprintf(progress, "httpbench: %s, %d tenants, delay %v: warming up\n", isolationLevels[c.isolation], c.tenants, c.delay)
	seed := uint64(time.Now().UnixNano())
	turn := func(s *server, d time.Duration) (sample, error) {
		seed++
		before, known := meter.read(ctx, s.proc.pid, appName(s.kind))
		smp, err := load(ctx, s, cfg.clients, c.tenants, cfg.documents, d, seed)
		if after, ok := meter.read(ctx, s.proc.pid, appName(s.kind)); known && ok {
			smp.cpu = cpuTimes{server: after.server - before.server, postgres: after.postgres - before.postgres}
			smp.cpuKnown = true
		}
		if err == nil && smp.requests == 0 {
			err = s.proc.failed(fmt.Errorf("no request answered 200 in %v; %d failed, the first: %s", d, smp.failed, smp.failure))
		}
		return smp, err
	}
	if cfg.warmup > 0 {
		for _, s := range servers {
			if _, err := turn(s, cfg.warmup); err != nil {
				return cell{}, err
			}
		}
	}
	for r := range cfg.rounds {
		round := make([]sample, len(servers))
		line := fmt.Sprintf("httpbench: round %d/%d:", r+1, cfg.rounds)
		for i, s := range servers {
			smp, err := turn(s, cfg.duration)
			if err != nil {
				return cell{}, err
			}
			round[i] = smp
			line += fmt.Sprintf(" %s %.0f/s p50 %s", s.kind.name, smp.throughput(), formatMillis(smp.p50))
			if smp.failed > 0 {
				line += fmt.Sprintf(" (%d failed: %s)", smp.failed, smp.failure)
			}
		}
		fmt.Fprintln(progress, line)
		c.rounds = append(c.rounds, round)
	}
	return c, nil
}
