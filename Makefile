# Ferry's two commands: `make up` and `make test`. Both install what is
# missing (scripts/install-deps) and build first.
BUILD_DIR ?= build
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
JOBS ?= $(shell nproc)
# Lets ccache reuse objects across clones in other folders (CI clones afresh).
export CCACHE_BASEDIR := $(CURDIR)

.PHONY: all deps build up demo test check-thread-safety test-tsan bench clean

all: build

deps:
	@scripts/install-deps

build: deps
	@if [ ! -f $(BUILD_DIR)/build.ninja ]; then cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS); fi
	@cmake --build $(BUILD_DIR) -j $(JOBS)

up: build
	@scripts/ferry-up

demo: build
	@FERRY_BUILD_DIR=$(abspath $(BUILD_DIR)) scripts/ferry-demo

test: build
	@scripts/check-thread-safety $(BUILD_DIR)
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

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

bench: build
	@bench/run-all $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR)
