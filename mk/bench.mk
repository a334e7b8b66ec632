# mk/bench.mk: how fast tinyseek trains and generates, against its PyTorch twin.
#
#   make bench    for each config below, at 1 and 2 threads, BENCH_RUNS times:
#                 `tinyseek bench` and `tests/reference/twin.py bench` on the same
#                 model, batch (16 x 128) and prompt (16 tokens, 256 new), back to back.
#                 Prints the table and the targets; writes runs/bench/bench.csv
#                 (medians), runs/bench/bench_runs.csv (every run) and figures/bench-*.png.
#
#   BENCH_CONFIGS  LABEL=config.json ... (default: the fixed "bench" size, chapter 2's
#                  model, and chapter 5's MoE model once configs/ch05-moe.json exists)
#   BENCH_RUNS     measurements per point, medians reported (default 3)
#   BENCH_THREADS  default 1,2
#   BENCH_CORETYPE OPENBLAS_CORETYPE for both sides (default: the environment's)
#   BENCH_WAIT     OMP_WAIT_POLICY for both sides (default passive: on a busy machine the
#                  default spinning makes 2 threads slower than 1, for both programs)
#
# Needs PyTorch (scripts/install-deps.sh torch). Numbers are only comparable
# on a quiet machine; the script prints the load average before and after.
BENCH_OUT ?= runs/bench
BENCH_RUNS ?= 3
BENCH_THREADS ?= 1,2
BENCH_WAIT ?= passive
BENCH_CONFIGS ?= bench=configs/bench.json ch02=configs/ch02-dense.json \
    $(if $(wildcard configs/ch05-moe.json),ch05-moe=configs/ch05-moe.json)

.PHONY: bench
bench: deps-torch
	@$(MAKE) --no-print-directory all
	@$(PY3) scripts/bench.py --ts $(CLI_BIN) --out $(BENCH_OUT) --runs $(BENCH_RUNS) --threads $(BENCH_THREADS) \
	    $(if $(BENCH_CORETYPE),--coretype $(BENCH_CORETYPE)) --wait-policy "$(BENCH_WAIT)" $(BENCH_CONFIGS)
	@bash scripts/figures.sh $(sort $(wildcard figures/bench-*.gp))
