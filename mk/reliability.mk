# SPDX-License-Identifier: MIT
# Reliability targets (docs/RELIABILITY.md):
#   make fuzz          libFuzzer target for FUZZ_SECONDS (default 60), after
#                      replaying fuzz/regressions/ and the seed corpus
#   make fuzz-regress  replay fuzz/regressions/ and fuzz/corpus/ only
#   make fuzz-shm      the shm pipes' scribbling peer (fuzz/shm_fuzz.c) for
#                      FUZZ_SECONDS, after replaying fuzz/shm-corpus/ (and
#                      fuzz/shm-regressions/, once it has inputs)
#   make stress        stress/stress.c for STRESS_SECONDS (default 60)
#   make stress-tsan   the same under ThreadSanitizer
#   make valgrind      memcheck + helgrind over the test executables
# The differential (tests/diff_test.c) and allocation-failure
# (tests/alloc_test.c) tests are ordinary CTest tests: make test runs them.

FUZZ_SECONDS    ?= 60
STRESS_SECONDS  ?= 60
STRESS_RUNNERS  ?= 4
FUZZ_BUILD      ?= $(BUILD)-fuzz
STRESS_CFLAGS   ?= -std=c11 -O2 -g -Wall -Wextra -Wpedantic -Werror -D_GNU_SOURCE

.PHONY: fuzz fuzz-build fuzz-regress fuzz-shm fuzz-shm-build fuzz-shm-regress stress stress-tsan valgrind

fuzz-build: ## build the libFuzzer target only ($(BUILD)-fuzz/, needs clang)
	@sh scripts/deps.sh build
	@command -v clang >/dev/null || { echo "make fuzz needs clang and libclang-rt-14-dev (scripts/deps.sh ci)"; exit 1; }
	sh fuzz/build.sh $(FUZZ_BUILD)

# Files given on the command line are run once each: a crash fails the target.
fuzz-regress: fuzz-build
	@./$(FUZZ_BUILD)/mempipe_fuzz $(wildcard fuzz/regressions/*) $(wildcard fuzz/corpus/*) \
	    >$(FUZZ_BUILD)/regress.log 2>&1 || { tail -n 40 $(FUZZ_BUILD)/regress.log; exit 1; }
	@echo "fuzz: $(words $(wildcard fuzz/regressions/*)) regression and $(words $(wildcard fuzz/corpus/*)) corpus inputs replayed clean"

# The first directory collects new inputs; fuzz/corpus/ is only read.
fuzz: fuzz-regress
	mkdir -p $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/artifacts
	./$(FUZZ_BUILD)/mempipe_fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/artifacts/ $(FUZZ_BUILD)/corpus fuzz/corpus

# The shm target the same way. -timeout: a call of ours that a hostile peer
# made hang is a crash (every call is non-blocking or has timeout 0).
SHM_FUZZ_FLAGS ?= -timeout=20
fuzz-shm-build: ## build the shm scribbler target only ($(BUILD)-fuzz/shm_fuzz)
	@sh scripts/deps.sh build
	@command -v clang >/dev/null || { echo "make fuzz-shm needs clang and libclang-rt-14-dev (scripts/deps.sh ci)"; exit 1; }
	sh fuzz/build.sh $(FUZZ_BUILD) shm_fuzz

fuzz-shm-regress: fuzz-shm-build ## replay fuzz/shm-regressions/ and fuzz/shm-corpus/ only
	@./$(FUZZ_BUILD)/shm_fuzz $(SHM_FUZZ_FLAGS) $(wildcard fuzz/shm-regressions/*) $(wildcard fuzz/shm-corpus/*) \
	    >$(FUZZ_BUILD)/shm-regress.log 2>&1 || { tail -n 40 $(FUZZ_BUILD)/shm-regress.log; exit 1; }
	@echo "fuzz-shm: $(words $(wildcard fuzz/shm-regressions/*)) regression and $(words $(wildcard fuzz/shm-corpus/*)) corpus inputs replayed clean"

fuzz-shm: fuzz-shm-regress
	mkdir -p $(FUZZ_BUILD)/shm-corpus $(FUZZ_BUILD)/shm-artifacts
	./$(FUZZ_BUILD)/shm_fuzz $(SHM_FUZZ_FLAGS) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/shm-artifacts/ $(FUZZ_BUILD)/shm-corpus fuzz/shm-corpus

# $(1): build dir, $(2): cmake args, $(3): extra compiler flags
define stress_build
	@sh scripts/deps.sh build
	cmake -S . -B $(1) -DMEMPIPE_BUILD_TESTS=OFF -DMEMPIPE_BUILD_EXAMPLES=OFF -DMEMPIPE_BUILD_BENCH=OFF $(CMAKE_ARGS) $(2) >/dev/null
	cmake --build $(1) -j $(JOBS) --target mempipe_static
	$(CC) $(STRESS_CFLAGS) $(3) -DMEMPIPE_STATIC -Iinclude stress/stress.c $(1)/libmempipe.a -lpthread -o $(1)/stress
endef

stress:
	$(call stress_build,$(BUILD)-stress,-DCMAKE_BUILD_TYPE=RelWithDebInfo,)
	./$(BUILD)-stress/stress $(STRESS_SECONDS) $(STRESS_RUNNERS)

stress-tsan:
	$(call stress_build,$(BUILD)-stress-tsan,-DMEMPIPE_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo,-fsanitize=thread)
	TSAN_OPTIONS="halt_on_error=1 $(TSAN_OPTIONS)" ./$(BUILD)-stress-tsan/stress $(STRESS_SECONDS) $(STRESS_RUNNERS)

valgrind:
	bash .ci/steps/75-valgrind.sh
