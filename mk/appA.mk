# Appendix A: the decode attention of absorbed MLA in CUDA (src/cuda/).
#
#   make cuda       compile src/cuda/mla_decode.cu (every kernel version) and its harness,
#                   linked with libtinyseek for the C reference; one architecture,
#                   CUDA_ARCH (default sm_90: H100/H200/H800). Without nvcc it says so and succeeds.
#   make cuda-run   run it: every version on every shape, checked against the C absorbed
#                   decode, timed (CUDA_ARGS="3 --reps 50" to pick). Without a GPU it says so and succeeds.
#   make appA       cuda-run into runs/appA/results.csv, saved to results/appA/, and the roofline
#                   figure; without nvcc or a GPU it measures nothing and leaves results/appA/ alone.
#   make cuda-emu   no nvcc, no GPU: the same kernels compiled by g++ against src/cuda/cuda_emu.hpp
#                   (each block's threads as fibers taking turns at every barrier) and checked against
#                   the C absorbed decode on small shapes. Part of make test.
#
# nvcc: the one on PATH, else /usr/local/cuda/bin/nvcc (these machines have it, with no driver).
CHAPTERS += appA
ifndef NVCC
  NVCC := $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
endif
CUDA_ARCH ?= sm_90
# Where libcudart_static.a lies, as nvcc itself reports it (its LIBRARIES line, the -L that is not
# stubs/): /usr/local/bin/nvcc may be a wrapper script, so the path of nvcc alone does not tell.
# Expanded only when the link runs (=, not :=), so other targets never start nvcc.
CUDA_LIBDIR = $(if $(NVCC),$(lastword $(shell $(NVCC) -dryrun -o /dev/null x.cu 2>&1 | \
                 sed -n 's/^\#\$$ LIBRARIES=//p' | tr -d '"' | tr ' ' '\n' | sed -n 's/^-L//p' | grep -v '/stubs$$')))
CUDA_BUILD := $(BUILD)/cuda
CUDA_BIN := $(CUDA_BUILD)/mla_decode
CUDA_ARGS ?=
# Host code warning-free, -Werror always (not -Wshadow: CUDA 13's cuda_awbarrier.h trips it).
NVCCFLAGS := -O3 -std=c++17 -arch=$(CUDA_ARCH) -lineinfo -Isrc -Werror all-warnings \
             -Xcompiler -Wall,-Wextra,-Werror
NO_NVCC_MSG := nvcc not found (not on PATH, no /usr/local/cuda/bin/nvcc)
APPA := runs/appA

CUDA_EMU_BIN := $(CUDA_BUILD)/mla_decode_emu

.PHONY: cuda cuda-run appA cuda-emu cuda-emu-run

cuda:
	@if [ -z "$(NVCC)" ]; then echo "cuda: $(NO_NVCC_MSG): appendix A's kernel not built"; exit 0; fi; \
	$(MAKE) --no-print-directory $(CUDA_BIN)

cuda-run:
	@if [ -z "$(NVCC)" ]; then echo "cuda-run: $(NO_NVCC_MSG): nothing run"; exit 0; fi; \
	set -e; $(MAKE) --no-print-directory $(CUDA_BIN); ./$(CUDA_BIN) $(CUDA_ARGS)

appA:
	@if [ -z "$(NVCC)" ]; then echo "appA: $(NO_NVCC_MSG): nothing measured"; exit 0; fi; \
	set -eo pipefail; $(MAKE) --no-print-directory $(CUDA_BIN); \
	mkdir -p $(APPA); rm -f $(APPA)/results.csv; \
	./$(CUDA_BIN) --csv $(APPA)/results.csv $(CUDA_ARGS) | tee $(APPA)/log.txt; \
	if [ ! -f $(APPA)/results.csv ]; then echo "appA: no GPU: nothing measured, results/appA/ left as it is"; exit 0; fi; \
	bash scripts/save-results.sh $(APPA) appA results.csv; \
	bash scripts/figures.sh figures/appA-roofline.gp

$(CUDA_BUILD)/mla_decode.o: src/cuda/mla_decode.cu src/cuda/mla_decode_math.h src/cuda/mla_ref.h mk/appA.mk
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(CUDA_BUILD)/mla_ref.o: src/cuda/mla_ref.c src/cuda/mla_ref.h $(HEADERS) mk/appA.mk
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# Linked by the C++ driver: the library's OpenBLAS/OpenMP flags ($(LDLIBS)) and the static CUDA runtime.
$(CUDA_BIN): $(CUDA_BUILD)/mla_decode.o $(CUDA_BUILD)/mla_ref.o $(STATIC_LIB)
	$(CXX) -o $@ $^ -L$(CUDA_LIBDIR) -lcudart_static -ldl -lrt -lpthread $(LDLIBS)

# The kernels on the CPU. -Wno-unknown-pragmas: g++ ignores nvcc's `#pragma unroll`;
# -Wno-unused-function: the GPU harness's helpers that the emulation does not call.
# (A sub-make, so that a fresh machine's flags are read after deps has installed the packages.)
cuda-emu: deps
	@$(MAKE) --no-print-directory cuda-emu-run

cuda-emu-run: $(CUDA_EMU_BIN)
	@./$(CUDA_EMU_BIN)

# `make test` runs it too (no nvcc needed).
test: cuda-emu

$(CUDA_EMU_BIN): src/cuda/mla_decode_emu.cpp src/cuda/mla_decode.cu src/cuda/cuda_emu.hpp src/cuda/mla_decode_math.h \
                 src/cuda/mla_ref.h $(CUDA_BUILD)/mla_ref.o $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CXX) -std=c++20 -O1 -g -Wall -Wextra -Werror -Wno-unknown-pragmas -Wno-unused-function -Isrc -o $@ $< \
	    $(CUDA_BUILD)/mla_ref.o $(STATIC_LIB) $(LDLIBS)
