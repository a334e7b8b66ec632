# Appendix C: scaling out over MPI. Chapter 5's MoE model (configs/ch05-moe.json)
# pretrained on chapter 1's data (running chapter 1 first if its outputs are
# missing) by tinyseek-mpi under mpirun: data parallel at 1, 2 and 4 ranks
# (tokens/s, time in MPI, gradient bytes, the same bits at every rank count),
# expert parallel at 2 and 4 ranks with and without node-limited routing (bytes
# per collective, tokens crossing nodes). Writes runs/appC/ (dp.csv, ep.csv,
# traffic.csv, summary.txt, a folder per job), copies the summaries the appendix quotes
# into results/appC/, and draws figures/appC-traffic.png. A minute on two cores; APPC_STEPS=N to change
# the 30 steps per job. Without MPI it says so and succeeds (mk/dist.mk).
CHAPTERS += appC
APPC := runs/appC
APPC_STEPS ?= 30

.PHONY: appC
# HAVE_MPI and DIST_BIN come from mk/dist.mk, read after this file: only recipes may use them.
appC: $(CLI_BIN)
	@if [ "$(HAVE_MPI)" != 1 ]; then echo "appC: $(NO_MPI_MSG); skipped"; exit 0; fi; \
	set -e; $(MAKE) --no-print-directory dist; \
	test -f runs/ch01/tokenizer.json -a -f runs/ch01/data/pretrain_train.txt || $(MAKE) --no-print-directory ch1; \
	rm -rf $(APPC); \
	MPIRUN=$(MPIRUN) bash scripts/appC-runs.sh $(DIST_BIN) $(APPC) $(APPC_STEPS); \
	bash scripts/figures.sh figures/appC-traffic.gp
