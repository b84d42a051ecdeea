# SPDX-License-Identifier: MIT
# Pollable fds (src/fd.c). `make fdpipe` builds and tests the whole suite with
# the pipe(2) fallback forced instead of eventfd (-DMEMPIPE_FD_PIPE=ON), in
# its own build directory, then runs the epoll example briefly over it.

.PHONY: fdpipe fdpipe-clean

fdpipe: ## the suite with pollable fds made by pipe(2) instead of eventfd ($(BUILD)-fdpipe/)
	$(call configure,$(BUILD)-fdpipe,test,-DMEMPIPE_FD_PIPE=ON -DMEMPIPE_BUILD_BENCH=OFF)
	cmake --build $(BUILD)-fdpipe -j $(JOBS)
	$(call ctest,$(BUILD)-fdpipe)
	@if [ -x $(BUILD)-fdpipe/examples/epoll_echo ]; then \
	    ./$(BUILD)-fdpipe/examples/epoll_echo 200 0.5; fi

fdpipe-clean: ## remove $(BUILD)-fdpipe/
	rm -rf $(BUILD)-fdpipe

clean: fdpipe-clean
