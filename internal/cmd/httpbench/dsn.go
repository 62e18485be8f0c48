package main

import (
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// isURL tells a postgres:// connection string from the keyword/value form.
func isURL(dsn string) (*url.URL, bool) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, false
	}
	return u, true
}

// withDatabase returns dsn naming database db instead.
func withDatabase(dsn, db string) string {
	if u, ok := isURL(dsn); ok {
		u.Path = "/" + db
		return u.String()
	}
	return dsn + " dbname=" + quoteKeyword(db)
}

// withParam returns dsn with the setting key=value (e.g. pool_max_conns=8).
func withParam(dsn, key, value string) string {
	if u, ok := isURL(dsn); ok {
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + key + "=" + quoteKeyword(value)
}

// withHostPort returns dsn connecting to host:port over TCP instead.
func withHostPort(dsn, host string, port int) string {
	if u, ok := isURL(dsn); ok {
		q := u.Query()
		q.Del("host") // a Unix socket named as a parameter
		q.Del("port")
		u.RawQuery = q.Encode()
		u.Host = net.JoinHostPort(host, strconv.Itoa(port))
		return u.String()
	}
	return dsn + " host=" + quoteKeyword(host) + " port=" + strconv.Itoa(port)
}

// upstream returns where dsn connects, as the network ("tcp" or "unix") and address
// the delaying proxy dials.
func upstream(dsn string) (network, addr string, err error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "", "", err
	}
	port := strconv.Itoa(int(cfg.Port))
	if strings.HasPrefix(cfg.Host, "/") {
		return "unix", filepath.Join(cfg.Host, ".s.PGSQL."+port), nil
	}
	return "tcp", net.JoinHostPort(cfg.Host, port), nil
}

// quoteKeyword quotes a value for the keyword/value form.
func quoteKeyword(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
