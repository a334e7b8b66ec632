# tinyseek — every entry point lives here.
#
#   make              build libtinyseek (static + shared) and the tinyseek command
#   make test         install missing packages, build, run every test suite
#                     against both matmul backends (OpenBLAS and plain C)
#   make asan         the tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make debug        -O0 -g3, single-threaded, for stepping through in gdb
#   make BLAS=0       use the project's own C loops instead of OpenBLAS
#   make WERROR=1     warnings are errors (CI sets this)
#   make help         this list, with the chapter targets

SHELL := /bin/bash

# ---- configuration ------------------------------------------------------
BLAS ?= $(shell pkg-config --exists openblas 2>/dev/null && echo 1 || echo 0)
OPENMP ?= $(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo 1 || echo 0)
MODE ?= release
WERROR ?= 0

ifeq ($(MODE),release)
  OPT := -O2 -g
  BUILD ?= build/release
else ifeq ($(MODE),debug)
  OPT := -O0 -g3
  OPENMP := 0
  BUILD ?= build/debug
else ifeq ($(MODE),asan)
  OPT := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
  BUILD ?= build/asan
else
  $(error MODE must be release, debug or asan, not '$(MODE)')
endif
ifeq ($(BLAS),0)
  BUILD := $(BUILD)-noblas
endif

CFLAGS_BASE := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wshadow -Wno-unused-parameter -fPIC -Isrc
ifeq ($(WERROR),1)
  CFLAGS_BASE += -Werror
endif
CFLAGS := $(CFLAGS_BASE) $(OPT) $(EXTRA_CFLAGS)
LDLIBS := -lm
ifeq ($(OPENMP),1)
  CFLAGS += -fopenmp
  LDLIBS += -fopenmp
endif
# OpenBLAS: prefer Debian's OpenMP build, so BLAS and our own loops share one
# thread pool (the default pthread build spins its own threads, which then
# fight the OpenMP ones for the same cores).
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
OPENBLAS_OMP := /usr/lib/$(MULTIARCH)/openblas-openmp
ifeq ($(BLAS),1)
  ifneq ($(wildcard $(OPENBLAS_OMP)/libopenblas.so),)
    CFLAGS += -DTS_USE_BLAS=1 -DTS_BLAS_OPENMP=1 -I/usr/include/$(MULTIARCH)/openblas-openmp
    LDLIBS += -L$(OPENBLAS_OMP) -Wl,-rpath,$(OPENBLAS_OMP) -lopenblas
  else
    CFLAGS += -DTS_USE_BLAS=1 $(shell pkg-config --cflags openblas)
    LDLIBS += $(shell pkg-config --libs openblas)
  endif
endif
CFLAGS += $(shell pkg-config --cflags libcjson 2>/dev/null)
LDLIBS += $(shell pkg-config --libs libcjson 2>/dev/null || echo -lcjson)
ifeq ($(MODE),asan)
  LDLIBS += -fsanitize=address,undefined
endif

# ---- sources ------------------------------------------------------------
LIB_SRC := $(sort $(wildcard src/core/*.c src/data/*.c src/io/*.c src/model/*.c src/train/*.c))
CLI_SRC := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
HEADERS := $(wildcard src/*/*.h)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
STATIC_LIB := $(BUILD)/libtinyseek.a
SHARED_LIB := $(BUILD)/libtinyseek.so
CLI_BIN := $(BUILD)/tinyseek

.PHONY: all deps test build-tests asan debug clean help lib check-tools
.DEFAULT_GOAL := all

all: $(STATIC_LIB) $(SHARED_LIB) $(CLI_BIN)
	@ln -sf $(CLI_BIN) tinyseek 2>/dev/null || true

lib: $(STATIC_LIB) $(SHARED_LIB)

$(BUILD)/%.o: %.c $(HEADERS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(STATIC_LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(SHARED_LIB): $(LIB_OBJ)
	$(CC) -shared -o $@ $^ $(LDLIBS)

$(CLI_BIN): $(CLI_OBJ) $(STATIC_LIB)
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(STATIC_LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/testutil.h tests/posttrain_fixtures.h tests/gradcheck_model.h $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(STATIC_LIB) $(LDLIBS) -lcmocka

# ---- packages -----------------------------------------------------------
deps:
	@bash scripts/install-deps.sh

# ---- tests ----------------------------------------------------------------
# build-tests: every suite and the CLI for one configuration (MODE, BLAS);
# some suites drive the command itself (bad-input cases).
build-tests: $(TEST_BIN) $(CLI_BIN)

# test: both matmul backends and the double-precision gradient checks
# (mk/f64.mk), then one summary line ("N passed, N failed").
test: deps
	@$(MAKE) --no-print-directory build-tests BLAS=1
	@$(MAKE) --no-print-directory build-tests BLAS=0
	@$(MAKE) --no-print-directory build-tests-f64
	@bash scripts/run-tests.sh build/release build/release-noblas build/release-f64

asan: deps
	@$(MAKE) --no-print-directory build-tests MODE=asan
	@$(MAKE) --no-print-directory build-tests-f64 MODE=asan
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 bash scripts/run-tests.sh build/asan build/asan-f64

debug:
	@$(MAKE) --no-print-directory all MODE=debug

clean:
	rm -rf build tinyseek

# Chapter experiments, the book, docs, notebooks and figures live in mk/*.mk.
-include $(sort $(wildcard mk/*.mk))

help:
	@sed -n '1,12p' Makefile | sed 's/^# \{0,1\}//'
	@$(MAKE) --no-print-directory teaching-help
