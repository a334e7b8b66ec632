# mk/bench.mk: how fast tinyseek trains, generates and post-trains, against its PyTorch twin.
#
#   make bench    for each config below, at 1 and 2 threads, BENCH_RUNS times:
#                 `tinyseek bench` and `tests/reference/twin.py bench` on the same
#                 model, batch (16 x 128) and prompt (16 tokens, 256 new), back to back;
#                 then post-training (DESIGN.md section 6) on chapter 8's model: N
#                 sequences sampled at once through each program's KV cache (rollout
#                 tokens/s; a 16-token prompt, 64 new tokens, temperature 1, no early
#                 stop) and GRPO steps on that rollout batch (reference forward, policy
#                 forward + backward of the clipped-ratio loss, AdamW; seconds per step).
#                 Checks that both sides did the same work (N x 64 tokens each, the
#                 weights moved, equal first gradient norms on the same batch) and
#                 stops if not. Prints the tables (with the kernels each side ran, and
#                 each measurement's CPU time / wall time and load average) and the
#                 targets; writes runs/bench/bench.csv (medians), runs/bench/bench_runs.csv
#                 (every run) and figures/bench-*.png.
#
# Fair by default: each side at its best. Both run OpenBLAS's AVX-512 kernels
# where the CPU has them, whatever OPENBLAS_CORETYPE the environment exports;
# tinyseek runs whichever of its matmul paths (OpenBLAS, its own C loops) a
# short trial finds faster here, per config; PyTorch runs whichever width of
# its own kernels (its default, AVX-512) a short trial finds faster, with its
# thread and malloc settings (scripts/bench.py).
#
#   BENCH_CONFIGS   LABEL=config.json ... (default: the fixed "bench" size, chapter 2's
#                   model, and chapter 5's MoE model once configs/ch05-moe.json exists)
#   BENCH_RUNS      measurements per point, medians reported (default 3)
#   BENCH_THREADS   default 1,2
#   BENCH_CORETYPE  OPENBLAS_CORETYPE for both sides: auto (default: the AVX-512 kernels
#                   when the CPU has AVX-512), env (the environment's), or a name:
#                   BENCH_CORETYPE=Haswell is the AVX2 comparison, on request only
#   BENCH_MATMUL    tinyseek's matmul path: auto (default: the faster here), c, openblas,
#                   default (the library's own choice)
#   BENCH_ATEN      PyTorch's ATEN_CPU_CAPABILITY: auto (default: the faster here), default
#                   (PyTorch's own choice), avx2, avx512
#   BENCH_WAIT      OMP_WAIT_POLICY for both sides (default passive: on a busy machine the
#                   default spinning makes 2 threads slower than 1, for both programs)
#   BENCH_ROLLOUT   1 (default): the post-training rows; 0 skips them
#   BENCH_ROLLOUT_CONFIG  the model sampled and trained (default configs/ch07-base.json,
#                   the model chapter 8 trains)
#   BENCH_ROLLOUT_N sequences sampled at once, one row each (default 64,256)
#
# Needs PyTorch (scripts/install-deps.sh torch). Numbers are only comparable
# on a quiet machine; the script prints the load average before and after
# and before every measurement.
BENCH_OUT ?= runs/bench
BENCH_RUNS ?= 3
BENCH_THREADS ?= 1,2
BENCH_WAIT ?= passive
BENCH_CORETYPE ?= auto
BENCH_MATMUL ?= auto
BENCH_ATEN ?= auto
BENCH_ROLLOUT ?= 1
BENCH_ROLLOUT_CONFIG ?= configs/ch07-base.json
BENCH_ROLLOUT_N ?= 64,256
BENCH_CONFIGS ?= bench=configs/bench.json ch02=configs/ch02-dense.json \
    $(if $(wildcard configs/ch05-moe.json),ch05-moe=configs/ch05-moe.json)

.PHONY: bench
bench: deps-torch
	@$(MAKE) --no-print-directory all
	@$(PY3) scripts/bench.py --ts $(CLI_BIN) --out $(BENCH_OUT) --runs $(BENCH_RUNS) --threads $(BENCH_THREADS) \
	    --coretype "$(BENCH_CORETYPE)" --ts-matmul "$(BENCH_MATMUL)" --pt-aten "$(BENCH_ATEN)" --wait-policy "$(BENCH_WAIT)" \
	    $(if $(filter 0,$(BENCH_ROLLOUT)),--no-rollout) --rollout-config $(BENCH_ROLLOUT_CONFIG) \
	    --rollout-n $(BENCH_ROLLOUT_N) $(BENCH_CONFIGS)
	@bash scripts/figures.sh $(sort $(wildcard figures/bench-*.gp))
