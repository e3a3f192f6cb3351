# Every developer command of reclaim. `make test` is the one test command (README, .ci/run).
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
CARGO ?= cargo

.PHONY: all install build vm vm-try crosscheck-vm test test-rust test-python test-fuzz lint docs fmt bench wheel clean demo fuzz fuzz-snapshot fuzz-traces fuzz-api fuzz-cov soak

all: test

## install: build the Rust engine and install the package with what the tests need
install:
	$(PIP) install --quiet --disable-pip-version-check ".[test]"

## build: the Rust core alone (no Python)
build:
	$(CARGO) build --release

## vm: the VM oracle's assets (docs/vm-oracle.md): QEMU and the s390x cross compiler (apt-get,
## root), Debian trixie's Linux 6.12 kernels and busybox for s390x and amd64, the in-guest agent
## compiled static for both (s390x-linux-gnu-gcc, gcc). Cached in ~/.cache/reclaim/vm.
RECLAIM_CLI = $(PYTHON) -c 'import sys; from reclaim.cli import main; sys.exit(main(sys.argv[1:]))'
vm:
	$(RECLAIM_CLI) vm fetch
# make test: the assets if they can be had; the guest tests skip with the reason otherwise
vm-try:
	-$(RECLAIM_CLI) vm fetch

## crosscheck-vm: the scenario library on both Linux 6.12 guests against the model
crosscheck-vm: vm
	$(RECLAIM_CLI) crosscheck --vm s390x
	$(RECLAIM_CLI) crosscheck --vm x86_64

## test: the whole suite: lints, Rust tests, Python tests (the VM oracle's guests included),
## a short coverage-guided fuzzing run (installs first)
test: install lint vm-try test-rust test-python test-fuzz

test-rust:
	$(CARGO) test --quiet --release --no-default-features

test-python:
	$(PYTHON) -m pytest -q

## docs: the documentation site (mkdocs.yml) into target/site, warnings as errors
docs:
	$(PYTHON) -m mkdocs build --strict --quiet

## lint: formatters and linters in check mode, and the documentation site (strict)
lint: docs
	$(CARGO) fmt --check
	$(CARGO) fmt --check --manifest-path fuzz/Cargo.toml
	$(CARGO) clippy --quiet --all-targets -- -D warnings
	$(CARGO) clippy --quiet --all-targets --features python -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --quiet --no-deps
	$(PYTHON) tools/import_cycles.py --with-kernel
	$(PYTHON) -m ruff check python tests examples benches
	$(PYTHON) -m ruff format --check python tests examples benches
	$(PYTHON) -m mypy
	$(PYTHON) -m mypy.stubtest reclaim._reclaim

## fmt: format Rust and Python
fmt:
	$(CARGO) fmt
	$(PYTHON) -m ruff format python tests examples benches
	$(PYTHON) -m ruff check --fix python tests examples benches

## bench: criterion benches (Rust), then the Python benchmarks (pytest-benchmark, benches/),
## whose JSON goes to BENCH_DIR (outside the tree); BENCH_ARGS for more pytest-benchmark options,
## e.g. BENCH_ARGS="--benchmark-compare" against the last saved run (BENCHMARKS.md)
BENCH_DIR ?= $(HOME)/.cache/reclaim/benchmarks
BENCH_ARGS ?=
bench: bench-rust bench-python
bench-rust:
	$(CARGO) bench
bench-python:
	$(PYTHON) -m pytest benches -q -p no:cacheprovider --benchmark-enable --benchmark-only \
		--benchmark-storage=file://$(BENCH_DIR) --benchmark-autosave $(BENCH_ARGS)

## fuzz-traces: a long run of the trace parsers' mutation fuzzer (FUZZ_ITERS inputs a format)
FUZZ_ITERS ?= 5000000
fuzz-traces:
	RECLAIM_FUZZ_ITERS=$(FUZZ_ITERS) $(CARGO) test --release --no-default-features --lib trace::fuzz -- --nocapture

## wheel: an abi3 wheel in DIST (default dist/)
DIST ?= dist
wheel:
	$(PYTHON) -m maturin build --release --quiet -o $(DIST)

demo:
	reclaim demo

clean:
	rm -rf target dist build .pytest_cache .mypy_cache .ruff_cache

## fuzz: the long runs of every fuzzer (short ones run in make test): the snapshot decoder,
## the trace parsers, the Python API (100,000 calls or more) and the coverage-guided targets
fuzz: fuzz-snapshot fuzz-traces fuzz-api fuzz-cov

## fuzz-cov: the coverage-guided targets (cargo-fuzz + libFuzzer on stable Rust, --sanitizer
## none: traces, snapshots, explorer step lists) for FUZZ_SECONDS each, from a time seed; the
## working corpora grow in FUZZ_CORPUS, seeded from fuzz/corpus/. Installs cargo-fuzz if needed.
## test-fuzz (in make test) is the short run: FUZZ_SHORT seconds a target, fixed seed.
FUZZ_CORPUS ?= target/fuzz-corpus
FUZZ_SHORT ?= 10
FUZZ_TARGETS = trace snapshot steps
cargo-fuzz:
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install --quiet --locked cargo-fuzz
# $(call fuzz_targets,SECONDS,EXTRA): each target for SECONDS, its output in a log shown on
# failure, the line of inputs done shown otherwise
fuzz_targets = fuzz/seed-corpora.sh $(FUZZ_CORPUS) && for t in $(FUZZ_TARGETS); do \
		$(CARGO) fuzz run --sanitizer none -O $$t $(FUZZ_CORPUS)/$$t -- -max_total_time=$(1) $(2) \
			>$(FUZZ_CORPUS)/$$t.log 2>&1 \
			|| { tail -40 $(FUZZ_CORPUS)/$$t.log; echo "fuzz target $$t failed (fuzz/artifacts/$$t/)"; exit 1; }; \
		echo "fuzz target $$t: $$(grep '^Done' $(FUZZ_CORPUS)/$$t.log)"; \
	done
fuzz-cov: cargo-fuzz
	$(call fuzz_targets,$(FUZZ_SECONDS),)
test-fuzz: cargo-fuzz
	$(call fuzz_targets,$(FUZZ_SHORT),-seed=1)

## fuzz-snapshot: the snapshot decoder under a mutation loop for FUZZ_SECONDS (default 300)
FUZZ_SECONDS ?= 300
fuzz-snapshot:
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CARGO) test --release --no-default-features --test fuzz_snapshot \
		-- --ignored fuzz_long --nocapture

## fuzz-api: hypothesis drives the whole Python API for FUZZ_CALLS calls (default 100000)
FUZZ_CALLS ?= 100000
fuzz-api:
	$(PYTHON) tests/fuzz_long.py --calls $(FUZZ_CALLS)

## soak: a long study with invariant checks, steps/s, peak RSS and RSS growth (not in make test;
## SOAK_ARGS="--hours 6" for a longer one)
SOAK_ARGS ?=
soak:
	$(PYTHON) tests/soak.py $(SOAK_ARGS)
