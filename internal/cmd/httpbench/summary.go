package main

import "time"

// cell is one combination of the matrix: its settings and every round's samples,
// indexed [round][server], servers in the order of the run.
type cell struct {
	delay     time.Duration
	isolation string
	tenants   int
	servers   []kind
	rounds    [][]sample
}

// summary is one server's figures in a cell: medians across rounds, and ratios to the
// baseline as medians of the per-round ratios (so that a round the machine was busy
// for weighs on both sides of its ratio alike).
type summary struct {
	kind        kind
	throughput  float64 // requests per second
	ratio       float64 // throughput against the baseline's; 0 without a baseline
	p50, p99    time.Duration
	p50Ratio    float64 // p50 against the baseline's; 0 without a baseline
	failed      int     // over all rounds
	baselineSet bool
	// serverCPU and postgresCPU are the CPU time per request answered, of the server's
	// process and of its backends; 0 when not known.
	serverCPU, postgresCPU time.Duration
}

// summarize computes each server's summary; the baseline is the hand-written server
// when the cell has it.
func (c cell) summarize() []summary {
	base := -1
	for i, k := range c.servers {
		if k.baseline {
			base = i
		}
	}
	out := make([]summary, len(c.servers))
	for i, k := range c.servers {
		var tput, ratios, p50Ratios []float64
		var p50s, p99s, serverCPU, postgresCPU []time.Duration
		failed := 0
		for _, round := range c.rounds {
			s := round[i]
			tput = append(tput, s.throughput())
			p50s = append(p50s, s.p50)
			p99s = append(p99s, s.p99)
			failed += s.failed
			if s.cpuKnown && s.requests > 0 {
				serverCPU = append(serverCPU, s.cpu.server/time.Duration(s.requests))
				postgresCPU = append(postgresCPU, s.cpu.postgres/time.Duration(s.requests))
			}
			if base >= 0 {
				if b := round[base].throughput(); b > 0 {
					ratios = append(ratios, s.throughput()/b)
				}
				if b := round[base].p50; b > 0 {
					p50Ratios = append(p50Ratios, float64(s.p50)/float64(b))
				}
			}
		}
		out[i] = summary{kind: k, throughput: median(tput), ratio: median(ratios),
			p50: medianDuration(p50s), p99: medianDuration(p99s), p50Ratio: median(p50Ratios),
			failed: failed, baselineSet: base >= 0,
			serverCPU: medianDuration(serverCPU), postgresCPU: medianDuration(postgresCPU)}
	}
	return out
}
