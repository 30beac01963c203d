# fuzz.mk - the libFuzzer targets fuzz/fuzz-*.c, run by `make fuzz`, and the
# same targets as plain corpus replays (fuzz/run-corpus.c) for the test suite.
# Each target names what it links in its header comment (" * sources: ...",
# " * libs: ..."), so adding a target is adding a file.
#
#   make -f fuzz/fuzz.mk run      build with clang and fuzz every target for
#                                 FUZZ_SECONDS (default 60) each; fails on a crash
#   make -f fuzz/fuzz.mk replay   build with gcc + ASan/UBSan, replay fuzz/corpus
#   FUZZ_TARGETS="url size"       only these targets
FUZZ_CC      ?= clang
REPLAY_CC    ?= gcc
FUZZ_SECONDS ?= 60
FUZZ_DIR     ?= build-fuzz
FUZZ_TARGETS ?= $(patsubst fuzz/fuzz-%.c,%,$(wildcard fuzz/fuzz-*.c))

INC    := -std=gnu11 -D_GNU_SOURCE -Iinclude -Isrc/common -Isrc/store -Isrc/monitor -Ifuzz
WARN   := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
SAN    := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
srcs    = $(shell sed -n 's/^ \* sources: \([^*]*\).*/\1/p' fuzz/fuzz-$(1).c)
libs    = $(shell sed -n 's/^ \* libs: \([^*]*\).*/\1/p' fuzz/fuzz-$(1).c)

# a link cut short (a killed test run) leaves no binary behind
.DELETE_ON_ERROR:

fuzzers: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz-%)
replays: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/replay/fuzz-%)

.SECONDEXPANSION:
$(FUZZ_DIR)/fuzz-%: fuzz/fuzz-%.c fuzz/fuzz.h $$(call srcs,$$*)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -g -O1 $(INC) $(WARN) $(SAN) -fsanitize=fuzzer -o $@ $< $(call srcs,$*) $(call libs,$*)

$(FUZZ_DIR)/replay/fuzz-%: fuzz/fuzz-%.c fuzz/fuzz.h fuzz/run-corpus.c $$(call srcs,$$*)
	@mkdir -p $(dir $@)
	$(REPLAY_CC) -g -O1 $(INC) $(WARN) $(SAN) -o $@ $< fuzz/run-corpus.c $(call srcs,$*) $(call libs,$*)

# The binary seeds of fuzz/corpus, written by fuzz/seeds.c.
seeds:
	@mkdir -p $(FUZZ_DIR)
	$(REPLAY_CC) -g $(INC) $(WARN) -o $(FUZZ_DIR)/seeds fuzz/seeds.c src/store/seal.c -lxxhash -lsodium -lsodium
	$(FUZZ_DIR)/seeds

# One target after the other (libFuzzer uses one core each); new inputs go
# to $(FUZZ_DIR)/corpus/T, crashes to $(FUZZ_DIR)/artifacts/T-*, the output
# to $(FUZZ_DIR)/logs/T.log.
run: fuzzers
	@mkdir -p $(FUZZ_DIR)/artifacts $(FUZZ_DIR)/logs; fail=0; \
	for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_DIR)/corpus/$$t; \
		dict=; [ -f fuzz/$$t.dict ] && dict=-dict=fuzz/$$t.dict; \
		if $(FUZZ_DIR)/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$dict \
			-artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- $(FUZZ_DIR)/corpus/$$t fuzz/corpus/$$t \
			>$(FUZZ_DIR)/logs/$$t.log 2>&1; then r=ok; else r=CRASHED; fail=1; fi; \
		n=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_DIR)/logs/$$t.log); \
		printf 'fuzz %-10s %-8s %12s executions in %ss  (%s)\n' $$t $$r "$$n" $(FUZZ_SECONDS) $(FUZZ_DIR)/logs/$$t.log; \
		[ $$r = ok ] || grep -m3 -A3 'ERROR\|invariant failed' $(FUZZ_DIR)/logs/$$t.log | sed 's/^/    | /'; \
	done; exit $$fail

replay: replays
	@for t in $(FUZZ_TARGETS); do $(FUZZ_DIR)/replay/fuzz-$$t fuzz/corpus/$$t || exit 1; done

.PHONY: fuzzers replays run replay seeds
