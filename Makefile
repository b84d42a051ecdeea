# SPDX-License-Identifier: MIT
# Thin wrapper around CMake. Quick start:
#   make demo     build and run examples/demo
#   make test     build and run the whole test suite under CTest
# More: make asan, make tsan, make condvar, make bench, make format, make clean.

# The nested makes of CMake's generator need not announce every directory.
MAKEFLAGS  += --no-print-directory

BUILD      ?= build
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
CTEST_ARGS ?=

.PHONY: all demo test asan tsan condvar bench format format-check clean

all: $(BUILD)/.configured
	cmake --build $(BUILD) -j $(JOBS)

# $(1): build dir, $(2): deps level, $(3): extra cmake args
define configure
	@sh scripts/deps.sh $(2)
	cmake -S . -B $(1) -DMEMPIPE_WERROR=ON $(CMAKE_ARGS) $(3) >/dev/null
endef

$(BUILD)/.configured: CMakeLists.txt
	$(call configure,$(BUILD),test,)
	@touch $@

demo:
	@sh scripts/deps.sh build
	cmake -S . -B $(BUILD)-demo -DMEMPIPE_WERROR=ON -DMEMPIPE_BUILD_TESTS=OFF -DMEMPIPE_BUILD_BENCH=OFF -DMEMPIPE_BUILD_ADAPTERS=OFF $(CMAKE_ARGS) >/dev/null
	cmake --build $(BUILD)-demo -j $(JOBS) --target mempipe_example_demo
	./$(BUILD)-demo/examples/demo

test:
	$(call configure,$(BUILD),test,)
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

asan:
	$(call configure,$(BUILD)-asan,test,-DMEMPIPE_ASAN=ON -DCMAKE_BUILD_TYPE=Debug -DMEMPIPE_BUILD_BENCH=OFF)
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

tsan:
	$(call configure,$(BUILD)-tsan,test,-DMEMPIPE_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMPIPE_BUILD_BENCH=OFF)
	cmake --build $(BUILD)-tsan -j $(JOBS)
	cd $(BUILD)-tsan && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# The pthread mutex+condvar parker instead of futex.
condvar:
	$(call configure,$(BUILD)-condvar,test,-DMEMPIPE_USE_FUTEX=OFF -DMEMPIPE_BUILD_BENCH=OFF)
	cmake --build $(BUILD)-condvar -j $(JOBS)
	cd $(BUILD)-condvar && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

bench:
	$(call configure,$(BUILD)-bench,build,-DCMAKE_BUILD_TYPE=Release -DMEMPIPE_BUILD_TESTS=OFF)
	cmake --build $(BUILD)-bench -j $(JOBS)
	./$(BUILD)-bench/bench/mempipe_bench

# Each area adds its own targets in mk/<area>.mk.
-include mk/*.mk

# Tracked files plus new ones not yet added (but not ignored ones, such as
# build trees); files deleted from the work tree drop out. Outside a git
# checkout (a release tarball), every C file of the source folders.
FORMAT_FILES = $(sort $(wildcard $(shell \
	git ls-files --cached --others --exclude-standard -- '*.c' '*.h' 2>/dev/null || \
	find include src tests examples bench adapters fuzz -name '*.[ch]' 2>/dev/null)))

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	@echo "clang-format --dry-run --Werror on $(words $(FORMAT_FILES)) files"
	@clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf $(BUILD) $(BUILD)-demo $(BUILD)-asan $(BUILD)-tsan $(BUILD)-condvar $(BUILD)-bench build-ci-clang
