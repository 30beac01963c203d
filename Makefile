# fluidmem build. `make` builds everything into build/; `make test` runs the suite;
# `make SAN=1` builds a sanitized tree (AddressSanitizer + UBSan) into build-san/.
CC      ?= cc
SAN     ?=
BUILD   ?= $(if $(SAN),build-san,build)
PREFIX  ?= /usr/local
DESTDIR ?=

WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -fPIC -pthread -Iinclude -Isrc/common -D_GNU_SOURCE
ifneq ($(SAN),)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

STORE_LIBS := -lmemcached -lhiredis -lsodium -lxxhash
MON_LIBS   := -lmicrohttpd
CLI_LIBS   := -ljson-c
COMMON_SRC := $(wildcard src/common/*.c)
STORE_SRC  := $(wildcard src/store/*.c)
MON_SRC    := $(wildcard src/monitor/*.c)
CLIENT_SRC := $(filter-out src/client/preload.c,$(wildcard src/client/*.c))
CLI_SRC    := $(wildcard src/cli/*.c)
TEST_SRC   := $(wildcard tests/*.c)
BENCH_SRC  := $(wildcard bench/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

DAEMON  := $(BUILD)/fluidmemd
CLI     := $(BUILD)/fluidmem
LIB     := $(BUILD)/libfluidmem.so
LIBA    := $(BUILD)/libfluidmem.a
PRELOAD := $(BUILD)/libfluidmem-preload.so
TESTS   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

ALL := $(DAEMON) $(CLI) $(LIB) $(LIBA) $(TESTS) $(BENCHES)
ifeq ($(SAN),)
ALL += $(PRELOAD) # an ASan runtime cannot be preloaded into other programs
endif

all: $(ALL)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(DAEMON): $(call obj,$(MON_SRC) $(STORE_SRC) $(COMMON_SRC))
	$(CC) $(LDFLAGS) -pthread -o $@ $^ $(STORE_LIBS) $(MON_LIBS) -lm

$(CLI): $(call obj,$(CLI_SRC) $(COMMON_SRC))
	$(CC) $(LDFLAGS) -pthread -o $@ $^ $(CLI_LIBS) -lm

$(LIBA): $(call obj,$(CLIENT_SRC) $(COMMON_SRC))
	@rm -f $@
	ar rcs $@ $^

# -z now: every symbol bound at load. A fork child's handler runs before its
# heap (a region) is mapped again, and a lazy binding there (ld.so reading
# its tables in that heap) crashed PostgreSQL's checkpointer.
$(LIB): $(call obj,$(CLIENT_SRC) $(COMMON_SRC))
	$(CC) $(LDFLAGS) -shared -pthread -Wl,-z,defs -Wl,-z,now -Wl,--version-script=src/client/libfluidmem.map -o $@ $^

$(PRELOAD): $(call obj,src/client/preload.c $(CLIENT_SRC) $(COMMON_SRC))
	$(CC) $(LDFLAGS) -shared -pthread -Wl,-z,defs -Wl,-z,now -o $@ $^ -lmimalloc

# tests/store-*.c exercise the store backends directly, without a monitor.
$(BUILD)/tests/store-%: tests/store-%.c $(call obj,$(STORE_SRC) $(COMMON_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(STORE_LIBS) -lm

$(BUILD)/tests/%: tests/%.c $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBA) -lm

$(BUILD)/bench/%: bench/%.c $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBA) -lm

deps:
	./scripts/install-deps.sh

demo: all
	./examples/demo.sh

test: all
	$(MAKE) SAN=1 all
	./tests/run.sh

stress: all
	./tests/run.sh --stress

# Every fuzz/fuzz-*.c under libFuzzer (clang) for FUZZ_SECONDS (default 60)
# each, into build-fuzz/; fails on a crash. See fuzz/fuzz.mk, docs/fuzzing.md.
fuzz:
	$(MAKE) -f fuzz/fuzz.mk run

bench: all
	./bench/run.sh

# The configuration stays in /etc/fluidmem whatever PREFIX (fluidmemd reads it
# there); an existing one is the operator's and is never overwritten.
MANDIR  ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/fluidmem \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) $(DESTDIR)/etc/fluidmem
	install -m 755 $(DAEMON) $(CLI) $(DESTDIR)$(PREFIX)/bin/
	install -m 755 $(LIB) $(PRELOAD) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(LIBA) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/fluidmem/*.h $(DESTDIR)$(PREFIX)/include/fluidmem/
	install -m 644 man/fluidmem.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 man/fluidmemd.8 $(DESTDIR)$(MANDIR)/man8/
	sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' etc/fluidmemd.service >$(DESTDIR)$(UNITDIR)/fluidmemd.service
	chmod 644 $(DESTDIR)$(UNITDIR)/fluidmemd.service
	test -e $(DESTDIR)/etc/fluidmem/fluidmemd.conf || install -m 644 etc/fluidmemd.conf $(DESTDIR)/etc/fluidmem/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/fluidmemd $(DESTDIR)$(PREFIX)/bin/fluidmem \
		$(DESTDIR)$(PREFIX)/lib/libfluidmem.so $(DESTDIR)$(PREFIX)/lib/libfluidmem-preload.so \
		$(DESTDIR)$(PREFIX)/lib/libfluidmem.a $(DESTDIR)$(MANDIR)/man1/fluidmem.1 \
		$(DESTDIR)$(MANDIR)/man8/fluidmemd.8 $(DESTDIR)$(UNITDIR)/fluidmemd.service
	rm -rf $(DESTDIR)$(PREFIX)/include/fluidmem

clean:
	rm -rf build build-san

.PHONY: all deps demo test stress fuzz bench install uninstall clean
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
