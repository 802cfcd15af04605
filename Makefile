# Ferry's two commands: `make up` and `make test`. Both install what is
# missing (scripts/install-deps) and build first.
BUILD_DIR ?= build
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
JOBS ?= $(shell nproc)
# Lets ccache reuse objects across clones in other folders (CI clones afresh).
export CCACHE_BASEDIR := $(CURDIR)

.PHONY: all deps build up demo test bench clean

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
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

bench: build
	@bench/run-all $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR)
