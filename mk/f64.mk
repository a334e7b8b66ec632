# mk/f64.mk: the double-precision test build (tests/f64/).
#
#   make build-tests-f64   compile the library's core and model once more with
#                          tests/f64/f64.h force-included (`float` read as `double`)
#                          into build/$(MODE)-f64/, and link the suites of tests/f64/
#                          against it; `make test` and `make asan` run them.
#
# The whole-model gradient checks run there: in double the finite differences
# have no float32 noise floor (see tests/f64/f64.h). No BLAS (cblas_sgemm is
# float32), no OpenMP (tiny shapes), and none of the code that reads or writes
# float32 files (src/io but fileio.c, the checkpoint loader). The archive holds
# the rest of the library; a test links only what it calls.
F64_BUILD := build/$(MODE)-f64
F64_LIB_SRC := $(filter-out src/io/% src/model/checkpoint.c src/model/inspect.c,$(LIB_SRC)) src/io/fileio.c
F64_TEST_SRC := $(sort $(wildcard tests/f64/test_*.c))
F64_LIB := $(F64_BUILD)/libtinyseek-f64.a
F64_TEST_BIN := $(F64_TEST_SRC:tests/f64/%.c=$(F64_BUILD)/tests/%)
F64_CFLAGS := $(CFLAGS_BASE) $(OPT) $(EXTRA_CFLAGS) $(shell pkg-config --cflags libcjson 2>/dev/null) -include tests/f64/f64.h
# Under ASan the checks run ~20x slower: two seeds per variant, 16 entries per
# tensor, find memory errors as well as twenty seeds would.
ifeq ($(MODE),asan)
  F64_CFLAGS += -DGC_SEEDS=2 -DGC_FULL_SEEDS=0
endif
F64_LDLIBS := -lcmocka $(shell pkg-config --libs libcjson 2>/dev/null || echo -lcjson) -lm $(filter -fsanitize=%,$(LDLIBS))

.PHONY: build-tests-f64

build-tests-f64: $(F64_TEST_BIN)

$(F64_BUILD)/%.o: %.c $(HEADERS) tests/f64/f64.h Makefile mk/f64.mk
	@mkdir -p $(dir $@)
	$(CC) $(F64_CFLAGS) -c $< -o $@

$(F64_LIB): $(F64_LIB_SRC:%.c=$(F64_BUILD)/%.o)
	@rm -f $@
	ar rcs $@ $^

$(F64_BUILD)/tests/%: tests/f64/%.c tests/testutil.h tests/gradcheck_model.h $(F64_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(F64_CFLAGS) -Itests -o $@ $< $(F64_LIB) $(F64_LDLIBS)
