package main

import (
	"fmt"
	"strings"
)

// kind is one of the servers the benchmark compares.
type kind struct {
	name     string // as -servers names it
	short    string // for the summary table
	label    string // for the report
	baseline bool   // what the others are measured against
	example  bool   // the example app (its own binary; tenants by subdomain)
}

// kinds are the servers, in the order of each round.
var kinds = []kind{
	{name: "handwritten", short: "hand-written (baseline)", baseline: true,
		label: "hand-written chi + pgx: `BEGIN ISOLATION LEVEL ...; SET LOCAL search_path` in one round trip, the SELECT, `COMMIT` (baseline)"},
	{name: "autocommit", short: "autocommit floor",
		label: "autocommit floor: one schema-qualified SELECT, no transaction (1 round trip)"},
	{name: "nodb", short: "no database",
		label: "no database: the chi route writes a constant body"},
	{name: "library", short: "tenant.Middleware",
		label: "`tenant.Middleware` + `tenantctx.Session(ctx).QueryRow`, minimal handler"},
	{name: "example", short: "example app", example: true,
		label: "the example app (`example-app serve`), `GET /documents/{id}` by subdomain"},
}

// kindNames lists the names -servers accepts.
func kindNames() string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.name
	}
	return strings.Join(names, ",")
}

// parseKinds reads a comma-separated list of server names; the servers keep the order
// of kinds.
func parseKinds(list string) ([]kind, error) {
	want := map[string]bool{}
	for _, n := range splitList(list) {
		found := false
		for _, k := range kinds {
			found = found || k.name == n
		}
		if !found {
			return nil, fmt.Errorf("unknown server %q (want some of %s)", n, kindNames())
		}
		want[n] = true
	}
	var out []kind
	for _, k := range kinds {
		if want[k.name] {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no server named (want some of %s)", kindNames())
	}
	return out, nil
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
