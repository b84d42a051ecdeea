# SPDX-License-Identifier: MIT
# Man pages (cmake/man.cmake): generated into $(BUILD)/man from the headers'
# comments by tools/mangen.c; read one with `man -l $(BUILD)/man/<page>`.

.PHONY: man man-check

man: ## the man pages (one per public function, mempipe(7)) in $(BUILD)/man
	$(call configure,$(BUILD),test,)
	cmake --build $(BUILD) -j $(JOBS) --target mempipe_man

man-check: man ## render every generated man page with man --warnings; any warning fails
	@sh scripts/man-check.sh $(BUILD)/man
