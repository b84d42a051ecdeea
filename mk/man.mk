# SPDX-License-Identifier: MIT
# Man pages (cmake/man.cmake): generated into $(BUILD)/man from the headers'
# comments by tools/mangen.c; read one with `man -l $(BUILD)/man/<page>`.

.PHONY: man man-check

## Generate the man pages (one per public function, plus mempipe(7)) in $(BUILD)/man
man: $(BUILD)/.configured
	cmake --build $(BUILD) -j $(JOBS) --target mempipe_man

## Render every generated man page with man --warnings; any warning fails
man-check: man
	@sh scripts/man-check.sh $(BUILD)/man
