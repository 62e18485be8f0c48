package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// writeReport prints the run as markdown, ready for BENCHMARKS.md: the command that
// reproduces it, where it ran, and a table per cell.
func writeReport(w io.Writer, cfg config, res result) {
	fmt.Fprintf(w, "    %s\n\n", commandLine(cfg))
	e := res.env
	at := ""
	if e.commit != "" {
		at = " at " + e.commit
	}
	names := make([]string, len(cfg.servers))
	for i, k := range cfg.servers {
		names[i] = k.name
	}
	fmt.Fprintf(w, "Measured %s%s: %s %s, %d CPUs, PostgreSQL %s on the same machine. "+
		"%d keep-alive clients, pools of %d connections, %s of %v after %v of warm-up, "+
		"the servers in turn in each round (%s). Medians across rounds; ratios are medians of "+
		"the per-round ratios to the hand-written baseline.\n",
		e.date, at, e.goVer, e.platform, e.cpus, e.postgres,
		cfg.clients, cfg.pool, plural(cfg.rounds, "round"), cfg.duration, cfg.warmup, strings.Join(names, ", "))
	fmt.Fprintln(w)
	writeRatioTable(w, cfg.servers, res.cells)
	for _, c := range res.cells {
		fmt.Fprintf(w, "\n%s\n\n", cellTitle(c))
		if c.delay > 0 {
			writeLatencyTable(w, c.summarize())
		} else {
			writeThroughputTable(w, c.summarize())
		}
	}
}

// writeRatioTable is the summary: a row per server, a column per cell, each the ratio
// to the baseline: of throughput (higher is better) without delay, of p50 latency
// (lower is better) with it.
func writeRatioTable(w io.Writer, servers []kind, cells []cell) {
	fmt.Fprint(w, "| server |")
	for _, c := range cells {
		fmt.Fprintf(w, " %s |", cellHeading(c))
	}
	fmt.Fprint(w, "\n|---|")
	fmt.Fprint(w, strings.Repeat("---:|", len(cells)))
	fmt.Fprintln(w)
	sums := make([][]summary, len(cells))
	for j, c := range cells {
		sums[j] = c.summarize()
	}
	for i, k := range servers {
		fmt.Fprintf(w, "| %s |", k.short)
		for j, c := range cells {
			s := sums[j][i]
			r := s.ratio
			if c.delay > 0 {
				r = s.p50Ratio
			}
			fmt.Fprintf(w, " %s |", formatRatio(r, s.baselineSet))
		}
		fmt.Fprintln(w)
	}
}

// cellHeading names a cell in a column heading, and what its ratios compare.
func cellHeading(c cell) string {
	h := plural(c.tenants, "tenant") + ", " + isolationLevels[c.isolation]
	if c.delay > 0 {
		return h + ", " + c.delay.String() + " delay: p50"
	}
	return h + ": requests/s"
}

// cellTitle names a cell's settings.
func cellTitle(c cell) string {
	t := isolationLevels[c.isolation] + ", " + plural(c.tenants, "tenant")
	if c.delay > 0 {
		t += fmt.Sprintf(", %v each way between the servers and PostgreSQL (p50 latency; lower is better)", c.delay)
	} else {
		t += " (throughput; higher is better)"
	}
	return "#### " + t
}

// writeThroughputTable compares throughput, for a cell without delay.
func writeThroughputTable(w io.Writer, rows []summary) {
	fmt.Fprintln(w, "| server | requests/s | vs hand-written | p50 | p99 | CPU/request: server, PostgreSQL | failed |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	for _, s := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %d |\n", s.kind.label, formatCount(s.throughput),
			formatRatio(s.ratio, s.baselineSet), formatMillis(s.p50), formatMillis(s.p99), formatCPU(s), s.failed)
	}
}

// formatCPU is the CPU time per request of the server and of its backends, in µs.
func formatCPU(s summary) string {
	if s.serverCPU == 0 && s.postgresCPU == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f µs, %.0f µs", float64(s.serverCPU)/float64(time.Microsecond), float64(s.postgresCPU)/float64(time.Microsecond))
}

// writeLatencyTable compares p50 latency, for a cell with delay.
func writeLatencyTable(w io.Writer, rows []summary) {
	fmt.Fprintln(w, "| server | p50 | vs hand-written | p99 | requests/s | failed |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, s := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %d |\n", s.kind.label, formatMillis(s.p50),
			formatRatio(s.p50Ratio, s.baselineSet), formatMillis(s.p99), formatCount(s.throughput), s.failed)
	}
}

// commandLine is the command that measures the same matrix again: every benchmark
// setting spelled out, the database and build tool left to the environment.
func commandLine(cfg config) string {
	names := make([]string, len(cfg.servers))
	for i, k := range cfg.servers {
		names[i] = k.name
	}
	tenants := make([]string, len(cfg.tenants))
	for i, n := range cfg.tenants {
		tenants[i] = strconv.Itoa(n)
	}
	delays := make([]string, len(cfg.delays))
	for i, d := range cfg.delays {
		delays[i] = d.String()
	}
	return fmt.Sprintf("go run ./internal/cmd/httpbench -servers %s -tenants %s -isolation %s -delay %s "+
		"-clients %d -pool %d -documents %d -duration %v -warmup %v -rounds %d",
		strings.Join(names, ","), strings.Join(tenants, ","), strings.Join(cfg.isolation, ","), strings.Join(delays, ","),
		cfg.clients, cfg.pool, cfg.documents, cfg.duration, cfg.warmup, cfg.rounds)
}

// plural writes n things: "1 round", "5 rounds".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}

// formatCount writes a rate as a whole number with thousands separators.
func formatCount(x float64) string {
	s := strconv.FormatInt(int64(x+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// formatRatio writes a ratio as "1.23×", or "n/a" without a baseline in the run.
func formatRatio(r float64, baseline bool) string {
	if !baseline {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", r)
}

// formatMillis writes a latency in milliseconds.
func formatMillis(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
