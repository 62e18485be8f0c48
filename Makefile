# tenant: make test (what CI runs), make lint, make bench, make stress, make run.
GO        ?= go
# An execution count, not a duration: a duration races Go's fuzz coordinator at the
# deadline (golang/go#75804, fixed in Go 1.27) and fails with "context deadline
# exceeded" on a busy machine. 150000 runs take about 10 s on two cores.
FUZZTIME  ?= 150000x
BENCHTIME ?= 1s
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2
# The example app and the tests of tenantsql with sqlx, bun and gorm (sqlclients/) are
# modules of their own (each go.mod replaces the library with this directory), so that
# their dependencies stay out of the library's go.mod. The root's ./... stops at them:
# every target below runs in each module, built by its own go.mod (there is
# deliberately no go.work, which a user's build would not have either).
EXAMPLE = example-app
MODULES = $(EXAMPLE) sqlclients

.PHONY: test mod-check fmt-check vet fuzz lint bench bench-go bench-http bench-fleet bench-scale bench-roles stress run stop

# go.mod and go.sum tidy, gofmt, go vet, every test under the race detector against
# PostgreSQL (DATABASE_URL, else the local server, else a throwaway cluster the tests
# start), in the library and, at the same time, in the other modules (their reports
# are printed after the library's). The example app's browser test runs when Chromium
# is installed (always in CI). Output is go test's, plus every skipped test with its
# reason (go test hides them without -v), through testreport.
#
# The fuzz targets' seed corpora run here as ordinary tests; the fuzzing itself is
# make fuzz (CI runs both). Fuzzing builds every package under coverage
# instrumentation, a build the race tests cannot share: on a cold cache that costs
# minutes, for ten seconds of fuzzing.
#
# On two cores make test is bound by CPU, half of it compiling on a cold cache, so:
# go test skips its own vet pass (vet has just run every check); test binaries are
# linked without DWARF tables (-ldflags=-w: stack traces keep their file:line);
# testreport is built -race, which reuses the standard library the tests compiled
# instead of compiling it once more (10 s). The race detector makes every process
# sleep a second at exit, in case another thread is still reporting a race: a tenth
# of that serves as well, and make test starts dozens of processes.
TESTREPORT = $(GO) run -race ./internal/cmd/testreport
GOTEST     = test -race -vet=off -ldflags=-w -count=1 -json ./...
test: export GORACE := atexit_sleep_ms=100 $(GORACE)
test: mod-check fmt-check vet
	$(TESTREPORT) $(addprefix -also ,$(MODULES)) $(GO) $(GOTEST)

# A go.mod that lists more (or less) than its module needs, e.g. an example-app
# dependency back in the library's go.mod.
mod-check:
	$(GO) mod tidy -diff
	for m in $(MODULES); do $(GO) -C $$m mod tidy -diff || exit 1; done

# gofmt walks directories, not modules: this covers example-app/ too.
fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# -race, because vet needs its dependencies compiled, and compiled as the race tests
# compile them they are built once for both: on a cold cache the tests' build then
# takes 40 s instead of 100 s. No file here depends on the race build tag, so vet
# checks the same code.
vet:
	$(GO) vet -race ./...
	for m in $(MODULES); do $(GO) -C $$m vet -race ./... || exit 1; done

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzValidate -fuzztime=$(FUZZTIME) -timeout=5m ./schema

lint: fmt-check vet
	$(GO) run $(STATICCHECK) ./...
	for m in $(MODULES); do $(GO) -C $$m run $(STATICCHECK) ./... || exit 1; done

# Benchmarks report ratios against a baseline measured in the same run; see BENCHMARKS.md.
# make bench runs all of them: the go benchmarks, the HTTP benchmark (8-9 minutes on two
# cores), the runs over many tenants (bench-scale, about 15 minutes more), then the
# mechanisms of database-enforced isolation (bench-roles, about 4 minutes).
bench: bench-go bench-http bench-scale bench-roles

bench-go:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./...

# The HTTP benchmark: every server in a process of its own, the load from another
# (internal/cmd/httpbench). It uses the database tenant_bench (made when missing) on
# DATABASE_URL's server, else on 127.0.0.1:5432. First throughput (about 6 minutes),
# then latency with 1 ms added each way between the servers and PostgreSQL (about 1
# minute). HTTPBENCH_FLAGS adds flags to both, e.g. HTTPBENCH_FLAGS='-rounds 3'.
HTTPBENCH = $(GO) run ./internal/cmd/httpbench -go $(GO)
bench-http:
	$(HTTPBENCH) $(HTTPBENCH_FLAGS)
	$(HTTPBENCH) -delay 1ms -clients 8 -tenants 200 -isolation serializable -rounds 3 -duration 2s -warmup 5s $(HTTPBENCH_FLAGS)

# Operations over many tenants (BENCHMARKS.md, "Many tenants"): makes the database
# tenant_fleet with FLEET_TENANTS one-table tenants when they are missing (a few minutes
# for 10,000, once: the fixture is kept), then times a no-op MigrateAll and one ADD
# COLUMN over every tenant, serial and in parallel. make test runs it at 200 tenants.
FLEET_TENANTS ?= 10000
bench-fleet:
	$(GO) run ./internal/cmd/fleetbench -tenants $(FLEET_TENANTS)

# Everything over many tenants (BENCHMARKS.md, "Many tenants", "Backend memory", "Fast
# signup"): the fleet, then throughput spread and backend memory over 10,000 tenants
# (TestTenantSpread provisions its own, and drops them), then sign-up latency from the
# stock of spares.
bench-scale: bench-fleet
	$(GO) test -count=1 -run='^TestTenantSpread$$' -v -timeout=40m . -args -spread.tenants=10000 -spread.duration=3s -spread.rounds=3 -spread.max=1000
	$(GO) test -count=1 -v -run='TestStock/SignupLatency' ./schema -args -signup.samples=100 -signup.tables=20

# Database-enforced isolation (BENCHMARKS.md, "Database-enforced isolation:
# mechanisms"; docs/security.md): connection, first-query and role setup costs, then
# the one-query transaction for random tenants under the default, SET LOCAL ROLE and
# per-tenant login roles (directly and through PgBouncer), at ROLES_TENANTS tenants.
# It makes the database tenant_rolebench and a login role per tenant, and drops both
# (about 4 minutes on two cores, one of them making 10,000 roles). Then the library's
# own mode (Config.Roles) against its default, TestRolesCost, which provisions the
# tenants with their roles and drops them (about 10 minutes more).
ROLES_TENANTS ?= 1,200,10000
bench-roles:
	$(GO) run ./internal/cmd/rolebench -tenants $(ROLES_TENANTS) $(ROLEBENCH_FLAGS)
	$(GO) test -count=1 -run='^TestRolesCost$$' -v -timeout=60m . -args -rolescost.tenants=$(ROLES_TENANTS) -rolescost.duration=3s -rolescost.rounds=3

# The reliability run of RELIABILITY.md: TestStress for minutes, with more restarts
# (make test runs it for seconds). It starts its own PostgreSQL cluster.
STRESS_DURATION ?= 3m
STRESS_RESTARTS ?= 8
stress:
	$(GO) test -race -count=1 -run='^TestStress$$' -v -timeout=30m . -args \
		-stress.duration=$(STRESS_DURATION) -stress.restarts=$(STRESS_RESTARTS)

# The example app on ADDR (make run ADDR=:9090). Without DATABASE_URL it runs a private
# PostgreSQL from the installed server binaries, data under DATA_DIR (git-ignored when
# .data), with demo tenants; with DATABASE_URL, `example-app seed` makes them. The
# binary stays in DATA_DIR/bin/ for the tenant commands (README.md). make stop stops a
# private PostgreSQL that a killed make run left running.
ADDR     ?= :8080
DATA_DIR ?= .data
run:
	$(GO) -C $(EXAMPLE) build -o $(abspath $(DATA_DIR))/bin/example-app .
	ADDR='$(ADDR)' DATA_DIR='$(DATA_DIR)' $(abspath $(DATA_DIR))/bin/example-app serve

stop:
	$(GO) -C $(EXAMPLE) build -o $(abspath $(DATA_DIR))/bin/example-app .
	DATA_DIR='$(DATA_DIR)' $(abspath $(DATA_DIR))/bin/example-app stop
