package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// handler builds the server of mode on the database at dsn; closeAll releases what it
// holds.
func handler(ctx context.Context, mode, dsn string, iso pgx.TxIsoLevel) (http.Handler, func(), error) {
	r := chi.NewRouter()
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	if mode == "nodb" {
		r.Get("/documents/{id}", noDatabase)
		return r, func() {}, nil
	}
	if dsn == "" {
		return nil, nil, fmt.Errorf("mode %s: DATABASE_URL is not set", mode)
	}
	switch mode {
	case "handwritten", "autocommit":
		p, err := pgxpool.New(ctx, dsn)
		if err != nil {
			return nil, nil, err
		}
		if mode == "handwritten" {
			r.Get("/documents/{id}", handWritten(p, strings.ToUpper(string(iso))))
		} else {
			r.Get("/documents/{id}", autocommit(p))
		}
		return r, p.Close, nil
	case "library":
		mgr, err := newManager(ctx, dsn, iso)
		if err != nil {
			return nil, nil, err
		}
		r.Group(func(r chi.Router) { withLibrary(r, mgr) })
		return r, mgr.Close, nil
	}
	return nil, nil, fmt.Errorf("unknown mode %q (want handwritten, autocommit, nodb, library or delay-proxy)", mode)
}

// parseIsolation reads an isolation level as the harness names it (read-committed).
func parseIsolation(s string) (pgx.TxIsoLevel, error) {
	level := pgx.TxIsoLevel(strings.ReplaceAll(strings.ToLower(s), "-", " "))
	switch level {
	case pgx.ReadCommitted, pgx.RepeatableRead, pgx.Serializable:
		return level, nil
	}
	return "", fmt.Errorf("unknown isolation level %q (want read-committed, repeatable-read or serializable)", s)
}
