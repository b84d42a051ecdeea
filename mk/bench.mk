# SPDX-License-Identifier: MIT
# Benchmark targets (the full run is `make bench` in the Makefile).
#   make bench-quick   every workload, small sizes, one run (seconds)
#   make callgrind     W3 under callgrind: instructions per write+read pair
#                      and where they go, per source file:function
#
# callgrind runs W3 (mempipe only) for CG_N and 2*CG_N pairs after the same
# fixed warm-up; the difference of the two instruction totals, divided by
# CG_N, is the cost of one pair with start-up and warm-up cancelled out. It
# is the stable metric on a noisy shared machine: wall time moves with the
# neighbours, instruction counts do not.

CG_N     ?= 100000
CG_BUILD  = $(BUILD)-callgrind
CG_BENCH  = ./$(CG_BUILD)/bench/mempipe_bench --only W3 --impl mempipe --runs 1

.PHONY: bench-quick callgrind

bench-quick:
	$(call configure,$(BUILD)-bench,build,-DCMAKE_BUILD_TYPE=Release -DMEMPIPE_BUILD_TESTS=OFF)
	cmake --build $(BUILD)-bench -j $(JOBS) --target mempipe_bench
	./$(BUILD)-bench/bench/mempipe_bench --quick

# Release flags plus -g, so that callgrind_annotate can name inlined code by
# the file it came from (ring.h, pipe.h, ...).
callgrind:
	@command -v valgrind >/dev/null || { echo "callgrind: valgrind is not installed (sudo apt-get install -y valgrind)" >&2; exit 1; }
	$(call configure,$(CG_BUILD),build,-DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-g -DMEMPIPE_BUILD_TESTS=OFF)
	cmake --build $(CG_BUILD) -j $(JOBS) --target mempipe_bench
	valgrind -q --tool=callgrind --callgrind-out-file=$(CG_BUILD)/w3.n.out $(CG_BENCH) --w3-iters $(CG_N) >/dev/null
	valgrind -q --tool=callgrind --callgrind-out-file=$(CG_BUILD)/w3.2n.out $(CG_BENCH) --w3-iters $$(( 2 * $(CG_N) )) >/dev/null
	callgrind_annotate --auto=no --inclusive=no --threshold=100 $(CG_BUILD)/w3.n.out > $(CG_BUILD)/w3.n.txt
	callgrind_annotate --auto=no --inclusive=no --threshold=100 $(CG_BUILD)/w3.2n.out > $(CG_BUILD)/w3.2n.txt
	@echo
	@echo "W3 instructions per write+read pair, (Ir(2N) - Ir(N)) / N, N = $(CG_N):"
	@awk -v n=$(CG_N) '/^totals:/ { t[FILENAME] = $$2 } \
	    END { split("$(CG_BUILD)/w3.n.out $(CG_BUILD)/w3.2n.out", f, " "); \
	          printf "  total %.1f instructions/pair (target <= 60)\n", (t[f[2]] - t[f[1]]) / n }' \
	    $(CG_BUILD)/w3.n.out $(CG_BUILD)/w3.2n.out
	@echo "Per file:function (self cost; bench/ lines are the loop around the calls):"
	@awk -v n=$(CG_N) ' \
	    /^ *[0-9,]+ \( *[0-9.]+%\) / { v = $$1; gsub(",", "", v); k = $$0; \
	        sub(/^ *[0-9,]+ \( *[0-9.]+%\) +/, "", k); sub(/ \[.*\]$$/, "", k); \
	        if (FILENAME ~ /2n/) b[k] += v; else a[k] += v } \
	    END { for (k in b) { d = (b[k] - a[k]) / n; if (d >= 0.05) printf "  %7.2f  %s\n", d, k } }' \
	    $(CG_BUILD)/w3.n.txt $(CG_BUILD)/w3.2n.txt | sort -rn
	@echo "Line-level detail: callgrind_annotate --auto=yes $(CG_BUILD)/w3.2n.out"
