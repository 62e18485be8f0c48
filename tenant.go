// Package tenant makes schema-per-tenant PostgreSQL safe and boring for net/http and
// chi applications. One middleware does a request's whole lifecycle:
//
//	mgr, err := tenant.New(ctx, tenant.Config{DSN: dsn, Resolver: middleware.Subdomain("example.com")})
//	defer mgr.Close()
//	r.Use(tenant.Middleware(mgr))
//
//	func handler(w http.ResponseWriter, r *http.Request) {
//		db := tenantctx.Session(r.Context()) // the tenant's schema, in the request's transaction
//		...
//	}
//
// The middleware resolves the tenant from the request, validates the name (no SQL for
// a bad one), admits it (a tenant this library provisioned, or one provisioned now
// when the policy allows), and attaches a lazy session: the first query begins a
// transaction with SET LOCAL search_path, so it is safe behind PgBouncer in
// transaction mode. The handler's response is buffered; the transaction commits
// (status < 400) or rolls back before the client sees a byte; serialization failures
// run the handler again. Nothing a request leaves on its connection reaches another:
// statements are prepared per tenant and schema version, and the connection is reset
// in the round trip that commits. Manager.Run gives jobs and CLIs the same lifecycle
// without HTTP.
package tenant

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/text/language"

	"github.com/tenantkit/tenant/changes"
	"github.com/tenantkit/tenant/locale"
	"github.com/tenantkit/tenant/middleware"
	"github.com/tenantkit/tenant/pool"
	"github.com/tenantkit/tenant/schema"
)

// Defaults for Config's zero values.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultBufferBytes  = 1 << 20
	DefaultHitTTL       = time.Minute
	DefaultMissTTL      = 2 * time.Second
	// DefaultMaxTenantsPerConn is Config.MaxTenantsPerConn's default: above most
	// applications' tenant count, since a bound just below it costs the most (each
	// retired connection's tenants are cold on its successor), and low enough that a
	// backend of one-table tenants stays in tens of MB.
	DefaultMaxTenantsPerConn = 1000
)

// Config configures a Manager. DSN or Pool is required, not both; Resolver is
// required for Middleware.
type Config struct {
	// DSN of the database; the Manager makes a pool (pool.New with PoolOptions) and
	// closes it on Close.
	DSN string
	// Pool is used instead of DSN; the application owns and closes it. New refuses a
	// Config with both, or with Pool and PoolOptions, rather than ignore one.
	Pool *pgxpool.Pool
	// PoolOptions apply when the Manager makes the pool from DSN.
	PoolOptions []pool.Option

	// Resolver finds the tenant in a request (middleware.Subdomain, PathPrefix, ...).
	Resolver middleware.Resolver
	// Admission decides about tenants whose schema does not exist. Default ExistingOnly.
	Admission Admission

	// Migrations, Extensions and Reserved configure provisioning (see schema.Config;
	// each defaults to none: pass schema.CommonExtensions() for the usual extensions).
	// The pool's role is reserved too.
	Migrations fs.FS
	Extensions []string
	Reserved   []string
	// Spares is schema.Config.Spares: how many migrated spare schemas to keep for fast
	// sign-up. Default 0, none; Close stops their background refill.
	Spares int
	// SharedMigrations is schema.Config.SharedMigrations: the tables of the "shared"
	// schema, which belong to no tenant. Requests read them qualified (shared.users);
	// writing one needs AllowSharedWrites first. Default none.
	SharedMigrations fs.FS

	// Locales the application serves; the first is the default. Each request gets one
	// of them (?locale=, locale cookie, Accept-Language, default), responses get
	// Content-Language and Vary. Empty: no negotiation, locale.FromContext is language.Und.
	Locales []language.Tag

	// Isolation of request transactions. Default pgx.Serializable.
	Isolation pgx.TxIsoLevel
	// RetryTimeout bounds how long a request keeps running again when its transaction
	// meets a conflict (serialization failure 40001, deadlock 40P01, stale plan) or
	// loses its connection before COMMIT: the request's context deadline if sooner,
	// else this long after its first attempt (default 5 s). Pauses between attempts
	// grow exponentially with full jitter. Spent: 409 (503 for a lost connection).
	RetryTimeout time.Duration
	// Attempts, when set, also bounds how often a request runs. Default 0: no bound but
	// RetryTimeout.
	Attempts int
	// MaxBodyBytes bounds how much of a request body is kept for an attempt that runs
	// again: the body is read as the handler reads it, and what it read is kept up to
	// this much. A handler that reads more runs once (a conflict then answers 409).
	// Default 1 MiB.
	MaxBodyBytes int64
	// BufferBytes of response held back before streaming: a larger response, or one
	// the handler flushes, ends its transaction first (see ReadOnly). Default 1 MiB.
	BufferBytes int

	// HitTTL and MissTTL bound how long admission remembers that a name is a tenant
	// (default 1 min) or is not (default 2 s). A remembered tenant is still checked by
	// every transaction (its version marker is locked when it begins), so a tenant
	// dropped, made again or migrated elsewhere is seen by the next request, whatever
	// the TTL.
	HitTTL, MissTTL time.Duration

	// MaxTenantsPerConn bounds how many distinct tenants one pooled connection serves:
	// the connection whose transaction makes it this many tenants' is closed after that
	// transaction (the pool opens another when it needs one). A PostgreSQL backend
	// keeps catalog data for every table it touched (about 10 KB each) and its
	// prepared plans until it exits, so without a bound each backend grows with the
	// number of tenants it ever served; with it, each holds at most this many
	// tenants' worth, whatever their number. Its cost: a tenant is cold (its catalog
	// data and plans loaded again) on the connection that replaces a retired one
	// (docs/pool.md). Default
	// DefaultMaxTenantsPerConn; negative: no bound (MaxConnLifetime still applies).
	// Behind PgBouncer a client connection is not a backend: the bound does not reach
	// the server (use PgBouncer's server_lifetime), and retiring costs only a
	// reconnect to PgBouncer; set -1 there.
	MaxTenantsPerConn int

	// AffinityGroups gives transactions connections of their own, apart from the
	// pool's (which keep admission, provisioning and migrations): this many groups,
	// each a pool with MaxConns / AffinityGroups connections, so up to twice MaxConns
	// in all. A tenant's transactions go to one group, picked by its schema. A backend
	// then holds catalog data for about one group's share of the tenants (more as
	// transactions fall back, below) rather than, in time, for every tenant, and a
	// tenant is more often warm where it runs (docs/pool.md). When the tenant's group
	// has no connection to give within a few milliseconds, one idle in another group
	// serves instead, so a busy tenant is not held to its share while others idle.
	// Default 0: the pool serves every transaction. From 1 to the pool's MaxConns;
	// not with Roles.
	AffinityGroups int

	// AfterCommitTimeout bounds the functions a request registers with
	// tenantctx.AfterCommit: they run after its response is on the wire, in order, on a
	// goroutine of their own, with a context that ends this long after they start
	// (default 1 min); Close waits for them as long. A function that ignores its
	// context keeps running past it.
	AfterCommitTimeout time.Duration

	// Roles, when set, runs each tenant's transactions as a login role of the
	// tenant's own, which may use its schema's tables and nothing else: the database
	// itself refuses a request's SQL (a qualified name built from input, an
	// injection) that reaches another tenant, the registry or DDL (docs/security.md).
	// Roles are made and granted with their tenants (schema.Roles has the
	// requirements); tenants made before are given theirs by
	// Provisioner.RepairRoles. Their connections are a warm set of at most
	// RoleConns, apart from the pool, which keeps admission, provisioning and
	// migrations. A request whose tenant has no warm connection opens one (a backend
	// start): the mode suits applications whose busy tenants fit in the warm set.
	// Default nil: every transaction runs as the pool's role, bound to its tenant by
	// search_path.
	Roles *schema.Roles
	// RoleConns bounds the connections of tenant roles, all tenants together: when
	// all are open, one idle of the least recently used tenant is closed for another.
	// Default: the pool's MaxConns.
	RoleConns int
	// RolesDSN is where tenant roles log in, when not where the pool does (PgBouncer
	// with auth_query, say); its user and password are ignored. Default: the pool's
	// connection settings.
	RolesDSN string

	// ChangesDSN is where Subscribe listens for change signals (package changes).
	// Listening needs a session that stays on one backend: behind PgBouncer in
	// transaction mode, give the server's own address here. Default: the pool's
	// connection settings.
	ChangesDSN string

	// Logger receives details of failures, with the tenant as attribute. Default
	// slog.Default().
	Logger *slog.Logger
	// ErrorHandler renders lifecycle errors. Default WriteError.
	ErrorHandler ErrorHandler
}

// Manager wires the pool, provisioning, admission and the session lifecycle. It is
// safe for concurrent use; make one per database.
type Manager struct {
	pool        *pgxpool.Pool
	ownPool     bool
	provisioner *schema.Provisioner
	admission   *admitter
	resolver    middleware.Resolver
	negotiator  *locale.Negotiator // nil without Config.Locales
	// locales are the locales a request may get (the supported ones; without
	// Config.Locales, only language.Und), each with the context attempts answer
	// locale's key from, made once.
	locales      []localeEntry
	isolation    string
	attempts     int
	retryTimeout time.Duration
	maxBody      int64
	bufferBytes  int
	maxTenants   int // Config.MaxTenantsPerConn as resolved; 0: no bound
	log          *slog.Logger
	onError      ErrorHandler
	hooks        *hooks
	feed         *changes.Feed
	roles        *rolePools      // Config.Roles; nil without
	affinity     *affinityGroups // Config.AffinityGroups; nil without
}

// New checks cfg and returns a Manager. It does not connect: the first request does.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	m := &Manager{
		resolver:     cfg.Resolver,
		attempts:     cfg.Attempts,
		retryTimeout: cfg.RetryTimeout,
		maxBody:      cfg.MaxBodyBytes,
		bufferBytes:  cfg.BufferBytes,
		log:          cfg.Logger,
		onError:      cfg.ErrorHandler,
	}
	iso := cfg.Isolation
	if iso == "" {
		iso = pgx.Serializable
	}
	var err error
	if m.isolation, err = isolationSQL(iso); err != nil {
		return nil, err
	}
	if len(cfg.Locales) > 0 {
		m.negotiator = locale.NewNegotiator(cfg.Locales...)
	}
	m.locales = localeEntries(m.negotiator)
	if m.retryTimeout <= 0 {
		m.retryTimeout = DefaultRetryTimeout
	}
	if m.maxBody <= 0 {
		m.maxBody = DefaultMaxBodyBytes
	}
	if m.bufferBytes <= 0 {
		m.bufferBytes = DefaultBufferBytes
	}
	switch m.maxTenants = cfg.MaxTenantsPerConn; {
	case m.maxTenants == 0:
		m.maxTenants = DefaultMaxTenantsPerConn
	case m.maxTenants < 0:
		m.maxTenants = 0
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.onError == nil {
		m.onError = WriteError
	}
	m.hooks = &hooks{timeout: cfg.AfterCommitTimeout, log: m.log}
	if m.hooks.timeout <= 0 {
		m.hooks.timeout = DefaultAfterCommitTimeout
	}
	switch {
	case cfg.AffinityGroups != 0 && cfg.Roles != nil:
		return nil, errAffinityWithRoles
	case cfg.Pool != nil && (cfg.DSN != "" || len(cfg.PoolOptions) > 0):
		return nil, errors.New("tenant: Config has both Pool and DSN or PoolOptions: set DSN (and PoolOptions) for a pool the Manager makes, or Pool alone")
	case cfg.Pool != nil:
		m.pool = cfg.Pool
	case cfg.DSN != "":
		p, err := pool.New(ctx, cfg.DSN, cfg.PoolOptions...)
		if err != nil {
			return nil, err
		}
		m.pool, m.ownPool = p, true
	default:
		return nil, errors.New("tenant: Config needs DSN or Pool")
	}
	if m.feed, err = newFeed(m.pool, cfg.ChangesDSN, m.log); err != nil {
		m.Close()
		return nil, err
	}
	prov, err := schema.NewProvisioner(m.pool, schema.Config{
		Extensions: cfg.Extensions, Migrations: cfg.Migrations, SharedMigrations: cfg.SharedMigrations, Reserved: append(roles(m.pool), cfg.Reserved...), Logger: m.log,
		Spares: cfg.Spares, Roles: cfg.Roles,
	})
	if err != nil {
		m.Close()
		return nil, err
	}
	m.provisioner = prov
	if cfg.Roles != nil {
		if m.roles, err = newRoleConns(m.pool, prov, cfg); err != nil {
			m.Close()
			return nil, err
		}
	}
	if cfg.AffinityGroups != 0 {
		if m.affinity, err = newAffinityGroups(m.pool, cfg.AffinityGroups); err != nil {
			m.Close()
			return nil, err
		}
	}
	isolation := m.isolation
	m.admission = newAdmitter(prov, cfg.Admission, func(t schema.Tenant) *binding { return newBinding(t, isolation) },
		cfg.HitTTL, cfg.MissTTL)
	return m, nil
}

// roles are the names the pool's connections run as. No tenant may take one: outside a
// tenant's transaction (a statement a handler sends after its own COMMIT, in the same
// message) the search path starts with "$user", the schema named like the role.
func roles(p *pgxpool.Pool) []string {
	cfg := p.Config().ConnConfig
	names := []string{cfg.User}
	if role := cfg.RuntimeParams["role"]; role != "" {
		names = append(names, role)
	}
	return names
}

// Close waits for after-commit functions still running (at most AfterCommitTimeout),
// stops the refill of the spare schemas (Spares), then closes the pools the Manager made:
// those of Config.Roles and Config.AffinityGroups (each waits for its connections in
// use), and its pool unless passed in Config.Pool.
func (m *Manager) Close() {
	if !m.hooks.wait() {
		m.log.Warn("tenant: after-commit functions still running at Close", slog.Duration("waited", m.hooks.timeout))
	}
	if m.feed != nil {
		m.feed.Close()
	}
	if m.roles != nil {
		m.roles.close()
	}
	if m.affinity != nil {
		m.affinity.close()
	}
	if m.provisioner != nil {
		m.provisioner.Close()
	}
	if m.ownPool {
		m.pool.Close()
	}
}

// WithResolver returns a Manager that shares everything with m (pool, provisioning,
// admission cache) but resolves tenants with r: for an application that finds the
// tenant differently on different routes. Close only the original.
func (m *Manager) WithResolver(r middleware.Resolver) *Manager {
	c := *m
	c.resolver = r
	c.ownPool = false
	return &c
}

// Pool returns the Manager's pool: the one sessions use, but with
// Config.AffinityGroups, whose groups are pools of their own.
func (m *Manager) Pool() *pgxpool.Pool { return m.pool }

// Provisioner returns the Manager's provisioner (ensure, create, migrate, list
// tenants). Drop tenants with Manager.Drop, which also updates admission.
func (m *Manager) Provisioner() *schema.Provisioner { return m.provisioner }

// DefaultLocale is the first configured locale, or language.Und.
func (m *Manager) DefaultLocale() language.Tag {
	if m.negotiator == nil {
		return language.Und
	}
	return m.negotiator.Default()
}

// localeEntry is one locale a request may get: the tag, its Content-Language value,
// and a context carrying it (and the default) for the locale package, alone.
type localeEntry struct {
	tag  language.Tag
	name string
	ctx  context.Context
}

// localeEntries makes the entries of n's locales, or of language.Und without n. Each
// context is made over context.Background, which answers nothing else: an attempt's
// context asks it for any key before its parent (attemptContext.Value), instead of
// adding a node of its own for every request.
func localeEntries(n *locale.Negotiator) []localeEntry {
	tags, def := []language.Tag{language.Und}, language.Und
	if n != nil {
		tags, def = n.Supported(), n.Default()
	}
	entries := make([]localeEntry, len(tags))
	for i, tag := range tags {
		entries[i] = localeEntry{tag: tag, name: tag.String(), ctx: locale.NewContext(context.Background(), tag, def)}
	}
	return entries
}

// localeEntry returns the entry of tag, or nil when tag is not one of m.locales.
func (m *Manager) localeEntry(tag language.Tag) *localeEntry {
	for i := range m.locales {
		if m.locales[i].tag == tag {
			return &m.locales[i]
		}
	}
	return nil
}

// localeContext returns a context carrying tag (and the default locale) for the
// locale package, and answering nothing else.
func (m *Manager) localeContext(tag language.Tag) context.Context {
	if e := m.localeEntry(tag); e != nil {
		return e.ctx
	}
	return locale.NewContext(context.Background(), tag, m.DefaultLocale()) // Run's WithLocale of another tag
}

// check validates and admits a tenant: the shared front half of Middleware and Run.
// It also returns when the lifecycle starts (what RetryTimeout counts from): now, the
// time of the call, unless admission had to ask the database.
func (m *Manager) check(ctx context.Context, name string, now time.Time) (*binding, time.Time, error) {
	if err := m.provisioner.Validate(name); err != nil {
		return nil, now, fmt.Errorf("%w: %w", ErrUnknownTenant, err)
	}
	b, cached, err := m.admission.admitAt(ctx, name, now)
	if !cached {
		now = time.Now()
	}
	return b, now, err
}
