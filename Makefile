# deitkd — the two README commands are `make demo` and `make test`; both run `make setup` first.
GO      ?= go
OUT     ?= out
export GOFLAGS ?= -mod=mod

.PHONY: setup test demo bench bench-store build vet fmt

setup:
	@bash scripts/setup.sh

build: setup
	$(GO) build ./...

test: setup
	$(GO) vet ./...
	$(GO) test -timeout 9m ./...

# Speed is measured here, never in tests. Each target prints a table measured in one run.
bench: bench-store

bench-store: setup
	$(GO) test -run '^$$' -bench . -benchtime 3x ./store/

demo: setup
	@echo "demo: not wired yet"

fmt:
	gofmt -l -w .
