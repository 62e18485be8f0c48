# tenant: make test (what CI runs), make lint, make bench, make stress, make run.
GO        ?= go
# An execution count, not a duration: a duration races Go's fuzz coordinator at the
# deadline (golang/go#75804, fixed in Go 1.27) and fails with "context deadline
# exceeded" on a busy machine. 150000 runs take about 10 s on two cores.
FUZZTIME  ?= 150000x
BENCHTIME ?= 1s
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test fmt-check vet fuzz lint bench stress run

# gofmt, go vet, every test under the race detector against PostgreSQL (DATABASE_URL,
# else the local server, else a throwaway cluster the tests start), then a short fuzz.
# The example app's browser test runs when Chromium is installed (always in CI).
test: fmt-check vet
	$(GO) test -race -count=1 ./...
	$(MAKE) fuzz

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzValidate -fuzztime=$(FUZZTIME) -timeout=5m ./schema

lint: fmt-check vet
	$(GO) run $(STATICCHECK) ./...

# Benchmarks report ratios against a baseline measured in the same run; see BENCHMARKS.md.
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./...

# The reliability run of RELIABILITY.md: TestStress for minutes, with more restarts
# (make test runs it for seconds). It starts its own PostgreSQL cluster.
STRESS_DURATION ?= 3m
STRESS_RESTARTS ?= 8
stress:
	$(GO) test -race -count=1 -run='^TestStress$$' -v -timeout=30m . -args \
		-stress.duration=$(STRESS_DURATION) -stress.restarts=$(STRESS_RESTARTS)

# The example app on :8080. Without DATABASE_URL it runs a private PostgreSQL from the
# installed server binaries, data under .data/ (git-ignored), with demo tenants.
run:
	$(GO) build -o .data/bin/example-app ./example-app
	./.data/bin/example-app serve
