# Ferry's two commands: `make up` and `make test`. Both install what is
# missing (scripts/install-deps, which also runs every scripts/install-<tool>:
# helm and kubectl, grpcurl when the Go module proxy answers) and build
# first; `make test` also installs the tools only tests need
# (scripts/install-test-tools: the Kubernetes test bed's kube-apiserver and
# etcd, built once into .tools/kube/, and a Vault-API dev server). `make up` and `make demo` run with TLS and tokens on; for
# development only, `make up FERRY_INSECURE=1` runs without either.
BUILD_DIR ?= build
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
JOBS ?= $(shell nproc)
# Lets ccache reuse objects across clones in other folders (CI clones afresh).
export CCACHE_BASEDIR := $(CURDIR)

.PHONY: all deps test-tools build up up-kube demo test test-up-kube check-thread-safety test-tsan test-asan fuzz bench clean

all: build

deps:
	@scripts/install-deps

build: deps
	@if [ ! -f $(BUILD_DIR)/build.ninja ]; then cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS); fi
	@cmake --build $(BUILD_DIR) -j $(JOBS)

up: build
	@scripts/ferry-up

# As `make up`, plus a local Kubernetes cluster (scripts/kube-local) that the
# example deploys hello-kube to. Its first run builds the cluster's binaries.
up-kube: build
	@FERRY_KUBE=1 scripts/ferry-up

demo: build
	@FERRY_BUILD_DIR=$(abspath $(BUILD_DIR)) scripts/ferry-demo

# Tools only the tests need (the real kube-apiserver and etcd, a Vault-API
# server), installed once into .tools/.
test-tools: deps
	@scripts/install-test-tools

test: build test-tools
	@scripts/check-thread-safety $(BUILD_DIR)
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# `make up-kube` as the README's newcomer runs it (tests/scripts/make_up_kube_test.py):
# hello-kube rolled out by the real controllers and kwok, a commit applied, an
# unschedulable rollout rolled back with its audit events, Ctrl-C leaves no
# process. Not part of `make test`: it builds kube-controller-manager,
# kube-scheduler and kwok (docs/kubernetes-testbed.md) and runs for minutes.
test-up-kube: build
	@scripts/install-k8s-tools
	@scripts/install-kube-testbed --with-controllers
	@tests/scripts/make_up_kube_test.py $(CURDIR) $(BUILD_DIR)

# clang's -Wthread-safety over every source (part of `make test`).
check-thread-safety: build
	@scripts/check-thread-safety $(BUILD_DIR)

# The unit and postgres tiers built with ThreadSanitizer (not part of
# `make test`: a full second build). Any race report fails the test.
TSAN_BUILD_DIR ?= build-tsan
test-tsan: deps
	@if [ ! -f $(TSAN_BUILD_DIR)/build.ninja ]; then cmake -S . -B $(TSAN_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_SANITIZE=thread; fi
	@cmake --build $(TSAN_BUILD_DIR) -j $(JOBS)
	@cd $(TSAN_BUILD_DIR) && TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 suppressions=$(abspath tests/tsan.supp)" \
	  ctest -L 'unit|postgres' --output-on-failure -j $(JOBS)

# The unit and postgres tiers built with AddressSanitizer and
# UndefinedBehaviorSanitizer (not part of `make test`: a full second build).
# Any report (memory error, leak, undefined behaviour) fails the test.
ASAN_BUILD_DIR ?= build-asan
test-asan: deps
	@if [ ! -f $(ASAN_BUILD_DIR)/build.ninja ]; then cmake -S . -B $(ASAN_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_SANITIZE=address,undefined; fi
	@cmake --build $(ASAN_BUILD_DIR) -j $(JOBS)
	@cd $(ASAN_BUILD_DIR) && ASAN_OPTIONS="halt_on_error=1 detect_leaks=1 check_initialization_order=1 exitcode=66" \
	  UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1" LSAN_OPTIONS="suppressions=$(abspath tests/lsan.supp)" \
	  ctest -L 'unit|postgres' --output-on-failure -j $(JOBS)

# libFuzzer targets (fuzz/), built with clang, ASan and UBSan in their own
# folder and run FUZZ_SECONDS each from the committed seed corpus. Fails on
# any crash, leak, timeout or out-of-memory, naming the input. Not part of
# `make test`; `make test` replays the corpus and fuzz/regressions/.
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
fuzz: deps
	@if [ ! -f $(FUZZ_BUILD_DIR)/build.ninja ]; then CC=clang-14 CXX=clang++-14 cmake -S . -B $(FUZZ_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_FUZZ=ON; fi
	@cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target ferry_fuzzers
	@FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run-fuzzers $(FUZZ_BUILD_DIR)

bench: build
	@scripts/install-bench-deps
	@bench/run-all $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR)
