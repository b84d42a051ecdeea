# SPDX-License-Identifier: MIT
# Thin wrapper around CMake. Quick start:
#   make demo     build and run examples/demo
#   make test     build and run the whole test suite under CTest
#   make help     every target, one line each
# Each target line carries its help text after `## ` (mk/*.mk too).

# The nested makes of CMake's generator need not announce every directory.
MAKEFLAGS  += --no-print-directory

BUILD      ?= build
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
CTEST_ARGS ?=
PREFIX     ?= /usr/local
DESTDIR    ?=

.PHONY: all demo test asan tsan condvar bench install help format format-check clean

all: ## build everything in $(BUILD)/
	$(call configure,$(BUILD),test,)
	cmake --build $(BUILD) -j $(JOBS)

# $(1): build dir, $(2): deps level, $(3): the target's own cmake args.
# Configures $(1) only when it never was or its arguments changed (CMAKE_ARGS
# is remembered per build dir), and shows the configure summary
# (scripts/configure.sh).
CMAKE_ARGS_GIVEN = $(filter command line environment,$(origin CMAKE_ARGS))
define configure
	@bash scripts/configure.sh $(1) $(2) '$(CMAKE_ARGS_GIVEN)' $(CMAKE_ARGS) -- $(3)
endef

# $(1): build dir. Runs its suite under CTest, then shows why each skipped
# test skipped (CTest itself only says "Skipped"; a test that exits with 77
# prints a "SKIPPED: why" line first).
define ctest
	cd $(1) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)
	@sed -n 's/^\(.*SKIPPED: .*\)/  skipped: \1/p' $(1)/Testing/Temporary/LastTest.log
endef

demo: ## build and run examples/demo ($(BUILD)-demo/)
	$(call configure,$(BUILD)-demo,build,-DMEMPIPE_BUILD_TESTS=OFF -DMEMPIPE_BUILD_BENCH=OFF -DMEMPIPE_BUILD_ADAPTERS=OFF)
	cmake --build $(BUILD)-demo -j $(JOBS) --target mempipe_example_demo
	./$(BUILD)-demo/examples/demo

test: ## build everything and run the test suite under CTest ($(BUILD)/)
	$(call configure,$(BUILD),test,)
	cmake --build $(BUILD) -j $(JOBS)
	$(call ctest,$(BUILD))

asan: ## the suite under AddressSanitizer + UBSan ($(BUILD)-asan/)
	$(call configure,$(BUILD)-asan,test,-DMEMPIPE_ASAN=ON -DCMAKE_BUILD_TYPE=Debug -DMEMPIPE_BUILD_BENCH=OFF)
	cmake --build $(BUILD)-asan -j $(JOBS)
	$(call ctest,$(BUILD)-asan)

tsan: ## the suite under ThreadSanitizer ($(BUILD)-tsan/)
	$(call configure,$(BUILD)-tsan,test,-DMEMPIPE_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMPIPE_BUILD_BENCH=OFF)
	cmake --build $(BUILD)-tsan -j $(JOBS)
	$(call ctest,$(BUILD)-tsan)

condvar: ## the suite with the mutex+condvar parker instead of futex ($(BUILD)-condvar/)
	$(call configure,$(BUILD)-condvar,test,-DMEMPIPE_USE_FUTEX=OFF -DMEMPIPE_BUILD_BENCH=OFF)
	cmake --build $(BUILD)-condvar -j $(JOBS)
	$(call ctest,$(BUILD)-condvar)

bench: ## the benchmarks, Release build ($(BUILD)-bench/); takes minutes
	$(call configure,$(BUILD)-bench,build,-DCMAKE_BUILD_TYPE=Release -DMEMPIPE_BUILD_TESTS=OFF)
	cmake --build $(BUILD)-bench -j $(JOBS)
	./$(BUILD)-bench/bench/mempipe_bench

# What `make` built in $(BUILD)/, so `make && sudo make install` works.
install: all ## install what `make` builds under PREFIX=$(PREFIX) (DESTDIR is honoured)
	DESTDIR='$(DESTDIR)' cmake --install $(BUILD) --prefix '$(PREFIX)'

# Each area adds its own targets in mk/<area>.mk.
-include mk/*.mk

# Every target declared .PHONY in the Makefile and mk/*.mk, with the text
# after `## ` on its rule line, or else its `#   make <target>  text` line in
# the file's header comment (continuation lines included).
help: ## every target, one line each
	@awk -v build='$(BUILD)' -v prefix='$(PREFIX)' ' \
	    /^\.PHONY:/ { for (i = 2; i <= NF; i++) if (!($$i in seen)) { seen[$$i] = 1; order[n++] = $$i } } \
	    /^[A-Za-z0-9_.-]+:.*## / { t = $$0; sub(/:.*/, "", t); d = $$0; sub(/^[^#]*## /, "", d); rule[t] = d } \
	    /^#   make [A-Za-z0-9_.-]+  / { cur = $$3; d = $$0; sub(/^#   make [^ ]+ +/, "", d); head[cur] = d; next } \
	    cur != "" && /^#      +[^ ]/ { d = $$0; sub(/^# +/, "", d); head[cur] = head[cur] " " d; next } \
	    { cur = "" } \
	    END { for (i = 0; i < n; i++) { t = order[i]; \
	            d = (t in rule) ? rule[t] : (t in head) ? head[t] : "(no description: add `## text` to its rule line)"; \
	            gsub(/\$$\(BUILD\)/, build, d); gsub(/\$$\(PREFIX\)/, prefix, d); \
	            printf "  make %-14s %s\n", t, d } }' \
	    $(MAKEFILE_LIST)

# Tracked files plus new ones not yet added (but not ignored ones, such as
# build trees); files deleted from the work tree drop out. Outside a git
# checkout (a release tarball), every C file of the source folders.
FORMAT_FILES = $(sort $(wildcard $(shell \
	git ls-files --cached --others --exclude-standard -- '*.c' '*.h' 2>/dev/null || \
	find include src tests examples bench adapters fuzz -name '*.[ch]' 2>/dev/null)))

format: ## apply .clang-format to every C file, tracked or new
	clang-format -i $(FORMAT_FILES)

format-check: ## check every C file against .clang-format
	@echo "clang-format --dry-run --Werror on $(words $(FORMAT_FILES)) files"
	@clang-format --dry-run --Werror $(FORMAT_FILES)

clean: ## remove the build directories
	rm -rf $(BUILD) $(BUILD)-demo $(BUILD)-asan $(BUILD)-tsan $(BUILD)-condvar $(BUILD)-bench build-ci-clang
