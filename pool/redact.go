package pool

import (
	"errors"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// ConfigError reports a connection string that pgx could not parse. Its message
// never contains the connection string's password; errors.As still reaches pgx's
// *pgconn.ParseConfigError (whose ConnString field is unredacted: do not log it).
type ConfigError struct {
	// Redacted is the connection string with its password masked.
	Redacted string
	err      error
	dsn      string
}

// Error describes the problem with the password masked.
func (e *ConfigError) Error() string {
	return "pool: invalid connection string " + e.Redacted + ": " + reason(e.err, e.dsn)
}

// Unwrap returns pgx's parse error.
func (e *ConfigError) Unwrap() error { return e.err }

// reason is pgx's complaint without the connection string that pgx's own message
// and net/url's errors quote.
func reason(err error, dsn string) string {
	var pce *pgconn.ParseConfigError
	if errors.As(err, &pce) {
		if inner := errors.Unwrap(pce); inner != nil {
			err = inner
		} else {
			_, msg, _ := strings.Cut(pce.Error(), "`: ")
			return scrubText(msg, dsn)
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return scrubText(err.Error(), dsn)
}

var (
	kvPassword  = regexp.MustCompile(`(?i)\b(password|sslpassword)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]*)`)
	urlUserinfo = regexp.MustCompile(`(?i)(postgres(?:ql)?://[^:/@\s]*):[^@\s]*@`)
	anyUserinfo = regexp.MustCompile(`://[^:/@\s]*:([^@\s]*)@`)
)

// Redact masks the passwords in a connection string, in URL or keyword/value form,
// for log lines and error messages.
func Redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		for _, k := range []string{"password", "sslpassword"} {
			if q.Has(k) {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	// Malformed or keyword/value: mask by pattern, erring on the side of masking.
	dsn = urlUserinfo.ReplaceAllString(dsn, "$1:xxxxx@")
	return kvPassword.ReplaceAllString(dsn, "$1=xxxxx")
}

// scrub wraps err so that its message has the DSN's passwords removed, while
// errors.Is/As still see the original.
func scrub(err error, dsn string) error {
	msg := scrubText(err.Error(), dsn)
	if msg == err.Error() {
		return err
	}
	return &scrubbed{msg: msg, err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// scrubText removes from s every password found in dsn and the DSN itself.
func scrubText(s, dsn string) string {
	for _, pw := range passwords(dsn) {
		if pw != "" {
			s = strings.ReplaceAll(s, pw, "xxxxx")
		}
	}
	return s
}

// passwords finds the password values in dsn, parsed or by pattern.
func passwords(dsn string) []string {
	var out []string
	if cfg, err := pgconn.ParseConfig(dsn); err == nil && cfg.Password != "" {
		out = append(out, cfg.Password)
	}
	if u, err := url.Parse(dsn); err == nil {
		if pw, ok := u.User.Password(); ok {
			out = append(out, pw)
		}
	}
	for _, m := range kvPassword.FindAllStringSubmatch(dsn, -1) {
		out = append(out, strings.Trim(m[2], "'"))
	}
	for _, m := range anyUserinfo.FindAllStringSubmatch(dsn, -1) {
		out = append(out, m[1])
		if dec, err := url.PathUnescape(m[1]); err == nil {
			out = append(out, dec)
		}
	}
	return out
}
