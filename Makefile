# latch — build, test, demo. `make help` lists the targets.
# One internal library (build/liblatch.a) from src/<concern>/*.c; thin programs in src/cmd/.

CC      ?= cc
CSTD    := -std=c17 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes
OPT     ?= -O2 -g
PKGS    := openssl libsodium jansson yaml-0.1 libcurl hiredis libnghttp2
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS  += $(CSTD) $(WARN) $(OPT) -Isrc $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS  += $(PKG_LIBS) -lpthread -lm
BUILD   ?= build
PYTHON  ?= /usr/bin/python3
JOBS    ?= 3
# make install: PREFIX=/usr/local, DESTDIR for staging (packages, tests)
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/latch
UNITDIR ?= $(PREFIX)/lib/systemd/system

LIB_SRC  := $(sort $(filter-out src/cmd/%,$(wildcard src/*/*.c)))
LIB_OBJ  := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
# tests/unit/ mirrors src/: tests/unit/<folder>/test_<module>.c tests src/<folder>/<module>.c.
UNIT_SRC := $(sort $(wildcard tests/unit/*/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_REPLAY := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/replay/%)
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all deps demo test unit replay layers blackbox asan fuzz bench clean help format format-check install install-files deb
all: $(BUILD)/latchd $(BUILD)/latch

help:
	@echo "make          build build/latchd and build/latch"
	@echo "make demo     install what is missing, then run latchd on 127.0.0.1:8080 with examples/demo.yaml"
	@echo "make test     install what is missing, then the layers check, unit tests, fuzz-corpus replay, black-box tests"
	@echo "make asan     the whole suite under ASan+UBSan (build-asan/)"
	@echo "make fuzz     libFuzzer targets with clang (build/fuzz/)"
	@echo "make unit     the cmocka unit tests (tests/unit/<folder>/test_<module>.c); make replay: the fuzz corpora"
	@echo "make format   clang-format on the lines changed since the last commit; make format-check counts the rest"
	@echo "make bench    bench/run.sh, auth.sh, cli.sh: latchd against nginx and HAProxy, the CLI's costs"
	@echo "make install  latchd, latch, man pages, docs, examples, systemd unit under PREFIX=$(PREFIX) (DESTDIR aware)"
	@echo "make deb      the Debian package $(BUILD)/latch_<version>_<arch>.deb (dpkg-deb)"

deps:
	@scripts/deps.sh

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/liblatch.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/latchd: src/cmd/latchd.c $(BUILD)/liblatch.a
	$(CC) $(CFLAGS) $< $(BUILD)/liblatch.a $(LDLIBS) -o $@

# latch links only what it uses (libcurl is dlopen'ed when a login needs it): a fast start.
$(BUILD)/latch: src/cmd/latch.c $(BUILD)/liblatch.a
	$(CC) $(CFLAGS) $< $(BUILD)/liblatch.a -Wl,--as-needed $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(BUILD)/liblatch.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/liblatch.a $(LDLIBS) -lcmocka -o $@

# Corpus replay: the same fuzz target linked with a plain main() (no clang needed).
$(BUILD)/replay/%: fuzz/%.c fuzz/replay.c $(BUILD)/liblatch.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) fuzz/replay.c $< $(BUILD)/liblatch.a $(LDLIBS) -o $@

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

replay: $(FUZZ_REPLAY)
	@set -e; for t in $(FUZZ_REPLAY); do n=$$(basename $$t); $$t fuzz/corpus/$${n#fuzz_}; done

# Two passes: the suite on $(JOBS) processes, then the load tests (marker `serial`: wrk,
# HAProxy) alone, since they take every core. Exit status 5 is "no test selected" (PYTEST_ARGS).
BLACKBOX = LATCHD=$(abspath $(BUILD)/latchd) LATCH=$(abspath $(BUILD)/latch) $(PYTHON) -m pytest -q
blackbox: $(BUILD)/latchd $(BUILD)/latch
	$(BLACKBOX) -n $(JOBS) -m "not serial" tests/blackbox $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]
	$(BLACKBOX) -m serial tests/blackbox $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

# No two folders of src/ include each other, directly or through a longer loop.
layers:
	@scripts/layers.sh

test: deps
	@$(MAKE) --no-print-directory layers all unit replay
	@$(MAKE) --no-print-directory blackbox

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan CC=clang OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
	  LDLIBS="$(LDLIBS) -fsanitize=address,undefined" all unit replay
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(MAKE) --no-print-directory BUILD=build-asan CC=clang OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
	  LDLIBS="$(LDLIBS) -fsanitize=address,undefined" blackbox

$(BUILD)/fuzz/%: fuzz/%.c $(LIB_SRC)
	@mkdir -p $(dir $@)
	clang $(CSTD) -g -O1 -Isrc $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined $< $(LIB_SRC) $(PKG_LIBS) -lpthread -lm -o $@

fuzz: $(FUZZ_BIN)
	@echo "run e.g.: build/fuzz/fuzz_request fuzz/corpus/request -max_total_time=60"

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

bench: deps all
	bench/run.sh
	bench/auth.sh
	bench/cli.sh
	bench/tunnel.sh
	bench/h2.sh
	bench/grpc.sh

# The unit names the binary by its installed path: rewritten for another PREFIX/BINDIR.
install: all
	@$(MAKE) --no-print-directory install-files

install-files:
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)/examples/cluster
	install -m 0755 $(BUILD)/latchd $(BUILD)/latch $(DESTDIR)$(BINDIR)/
	install -m 0644 man/latch.1 $(DESTDIR)$(MANDIR)/man1/latch.1
	install -m 0644 man/latchd.8 $(DESTDIR)$(MANDIR)/man8/latchd.8
	sed 's|/usr/local/bin/latchd|$(BINDIR)/latchd|g' dist/systemd/latchd.service > $(DESTDIR)$(UNITDIR)/latchd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/latchd.service
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 examples/single-node.yaml examples/demo.yaml $(DESTDIR)$(DOCDIR)/examples/
	install -m 0644 examples/cluster/latch.yaml examples/cluster/haproxy.cfg examples/cluster/nginx.conf \
	  $(DESTDIR)$(DOCDIR)/examples/cluster/

# Formats what changed since the last commit (.clang-format), never the rest of the tree: the
# layout it keeps by hand is described there. `make format-check` lists what differs, whole tree.
format:
	@git clang-format --extensions c,h -- src tests/unit fuzz

format-check:
	@clang-format --dry-run src/*/*.c src/*/*.h tests/unit/*/*.c fuzz/*.c 2>&1 | grep -c 'warning:' | \
	  sed 's/$$/ places differ from .clang-format (see its comment for the kinds left as written)/'

clean:
	rm -rf build build-asan

# The Debian package (scripts/deb.sh, dist/debian/): what make install lays out under /usr, a
# system user `latch` made at install, /var/lib/latch owned by it.
deb: all
	@scripts/deb.sh $(BUILD) $(BUILD)
