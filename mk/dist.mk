# mk/dist.mk: appendix C, scaling out over MPI (src/dist/). Built only where an
# MPI compiler wrapper is found (Debian: libopenmpi-dev + openmpi-bin, which
# `scripts/install-deps.sh mpi` installs); the rest of tinyseek never needs it.
#
#   make dist       build/<mode>/tinyseek-mpi (data- and expert-parallel pretraining)
#   make test-mpi   the equality tests under mpirun, at 1, 2 and 4 ranks:
#                   data parallel gives the same bits at every rank count,
#                   expert parallel the single-process MoE's logits and gradients;
#                   then tests/mpi/cli.sh: tinyseek-mpi's checkpoints, ledger and bad input
#   make appC       (mk/appC.mk) the measurement
#
# Without MPI each target says so and succeeds: nothing to build.
MPICC ?= $(shell command -v mpicc 2>/dev/null)
MPIRUN ?= $(shell command -v mpirun 2>/dev/null)
# As root Open MPI refuses to start unless told; more ranks than cores is the point here.
MPIRUN_FLAGS ?= $(if $(filter 0,$(shell id -u)),--allow-run-as-root) --oversubscribe
MPI_TEST_RANKS ?= 1 2 4

DIST_SRC := $(sort $(filter-out src/dist/main.c,$(wildcard src/dist/*.c)))
DIST_OBJ := $(DIST_SRC:%.c=$(BUILD)/%.o)
DIST_BIN := $(BUILD)/tinyseek-mpi
MPI_TEST_SRC := $(sort $(wildcard tests/mpi/test_*.c))
MPI_TEST_BIN := $(MPI_TEST_SRC:tests/mpi/%.c=$(BUILD)/tests/mpi/%)
HAVE_MPI := $(if $(and $(MPICC),$(MPIRUN)),1,0)
NO_MPI_MSG := MPI is not installed (no mpicc/mpirun): appendix C needs it; bash scripts/install-deps.sh mpi installs Open MPI

.PHONY: dist test-mpi
ifeq ($(HAVE_MPI),1)
$(BUILD)/src/dist/%.o: src/dist/%.c $(HEADERS) Makefile mk/dist.mk
	@mkdir -p $(dir $@)
	$(MPICC) $(CFLAGS) -c $< -o $@

$(DIST_BIN): $(DIST_OBJ) $(BUILD)/src/dist/main.o $(BUILD)/src/cli/args.o $(STATIC_LIB)
	$(MPICC) $(CFLAGS) -o $@ $(BUILD)/src/dist/main.o $(DIST_OBJ) $(BUILD)/src/cli/args.o $(STATIC_LIB) $(LDLIBS)

$(BUILD)/tests/mpi/%: tests/mpi/%.c tests/testutil.h $(DIST_OBJ) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(MPICC) $(CFLAGS) -Itests -o $@ $< $(DIST_OBJ) $(STATIC_LIB) $(LDLIBS) -lcmocka

dist: $(DIST_BIN)

# One thread per rank: the ranks share the two cores, and the suites compare bits.
test-mpi: deps
	@$(MAKE) --no-print-directory $(CLI_BIN) $(DIST_BIN) $(MPI_TEST_BIN)
	@fail=0; for n in $(MPI_TEST_RANKS); do for t in $(MPI_TEST_BIN); do \
	  echo "== mpirun -np $$n $$t"; \
	  OMP_NUM_THREADS=1 timeout 300 $(MPIRUN) $(MPIRUN_FLAGS) -np $$n $$t || fail=1; \
	done; done; \
	echo "== tests/mpi/cli.sh $(BUILD)"; MPIRUN=$(MPIRUN) bash tests/mpi/cli.sh $(BUILD) || fail=1; \
	if [ $$fail = 0 ]; then echo "test-mpi: all passed"; else echo "test-mpi: FAILED"; exit 1; fi
else
dist test-mpi:
	@echo "$@: $(NO_MPI_MSG); skipped"
endif
