# Chapter 3: sharing keys and values. MHA, GQA (4 and 2 key/value heads) and
# MQA at matched parameter count, trained on chapter 1's data with the same
# steps and seeds (three seeds each; running chapter 1 first if its outputs are missing); the KV
# cache and decode speed of each as the context grows from 64 to 1024 tokens.
# Writes runs/ch03/ (a checkpoint, metrics.csv and decode.csv per model,
# summary.csv/.txt) and draws figures/ch03-*.png. CH03_STEPS=N for longer runs.
CHAPTERS += ch3
CH03 := runs/ch03
CH03_STEPS ?= 250

.PHONY: ch3
ch3: $(CLI_BIN)
	@test -f runs/ch01/tokenizer.json -a -f runs/ch01/data/pretrain_train.txt || $(MAKE) --no-print-directory ch1
	@rm -rf $(CH03)
	@bash scripts/ch03-runs.sh $(TS) $(CH03) $(CH03_STEPS)
	@bash scripts/figures.sh $(sort $(wildcard figures/ch03-*.gp))
