# mk/fuzz.mk: libFuzzer harnesses for every reader of untrusted files (fuzz/).
#
#   make fuzz                    build the harnesses (clang, ASan + UBSan), make a
#                                seed corpus from the project's own files, and run
#                                each harness for FUZZ_SECONDS (default 60)
#   make fuzz FUZZ_SECONDS=10    the short run CI does
#   make fuzz FUZZ_TARGETS="config tokenizer"   only some harnesses
#   make fuzz-build              only build them (build/fuzz/fuzz_NAME)
#
# Harnesses: safetensors (the reader), config (config.json), tokenizer
# (tokenizer.json), trainstate (training_state.safetensors), checkpoint (a whole
# folder through ts_checkpoint_load). Each checks oracles beyond crashes: a parse
# that succeeds round-trips, an error is one non-empty line, a failed load leaves
# its output unchanged. Seeds (build/fuzz/seeds/NAME) are generated: configs/,
# a tokenizer trained on `tinyseek data` output, and checkpoints and training
# states of two tiny models (fuzz/tiny-*.json) pretrained for a step.
# The corpus grows in build/fuzz/corpus/NAME; a failing input is saved as
# build/fuzz/artifacts/NAME-crash-*, reproduce with build/fuzz/fuzz_NAME FILE.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_TARGETS ?= safetensors config tokenizer trainstate checkpoint
FUZZ_DIR := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wno-unused-parameter -Isrc -Ifuzz -g -O1 \
               $(FUZZ_SAN) $(shell pkg-config --cflags libcjson 2>/dev/null)
FUZZ_LIBS := $(shell pkg-config --libs libcjson 2>/dev/null || echo -lcjson) -lm
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-seeds deps-fuzz

deps-fuzz:
	@bash scripts/install-deps.sh fuzz

# The library with coverage instrumentation (no OpenMP, no BLAS: plain C loops).
$(FUZZ_DIR)/obj/%.o: %.c $(HEADERS) mk/fuzz.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_util.h $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJ) $(FUZZ_LIBS)

fuzz-build: deps-fuzz
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

# Seeds from the project's own files, made by the release command.
fuzz-seeds:
	@$(MAKE) --no-print-directory all
	@bash fuzz/make-seeds.sh $(CLI_BIN) $(FUZZ_DIR)

fuzz: fuzz-build fuzz-seeds
	@bash fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)
