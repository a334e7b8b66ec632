# Chapter 2: the dense baseline. Trains configs/ch02-dense.json on chapter 1's
# data and tokenizer (running chapter 1 first if its outputs are missing),
# writes runs/ch02/{model/,samples.txt,summary.txt,unigram.txt,accuracy.txt}
# and draws figures/ch02-*.png. Sequences of 64 tokens hold a problem and its
# worked answer (about 45 tokens), so more, cheaper steps beat longer windows.
CHAPTERS += ch2
CH02 := runs/ch02
CH02_STEPS ?= 800
CH02_SEQ ?= 64

.PHONY: ch2
ch2: $(CLI_BIN)
	@test -f runs/ch01/tokenizer.json -a -f runs/ch01/data/pretrain_train.txt || $(MAKE) --no-print-directory ch1
	@mkdir -p $(CH02)
	@rm -f $(CH02)/model/metrics.csv
	$(TS) pretrain --config configs/ch02-dense.json --data runs/ch01/data --tokenizer runs/ch01/tokenizer.json \
	    --out $(CH02)/model --steps $(CH02_STEPS) --seq $(CH02_SEQ) --eval-every 50 | tee $(CH02)/summary.txt
	@sed -n 's/.*unigram entropy \([0-9.]*\) nats.*/\1/p' $(CH02)/summary.txt > $(CH02)/unigram.txt
	@head -100 runs/ch01/data/rl_test.jsonl > $(CH02)/test100.jsonl
	@sed -n 's/.*"prompt": *"\([^"]*\)".*/\1/p' $(CH02)/test100.jsonl > $(CH02)/prompts.txt
	$(TS) generate --model $(CH02)/model --prompts $(CH02)/prompts.txt > $(CH02)/completions.txt
	@head -8 $(CH02)/completions.txt | tee $(CH02)/samples.txt
	@/usr/bin/python3 scripts/answer-accuracy.py $(CH02)/test100.jsonl $(CH02)/completions.txt | tee $(CH02)/accuracy.txt
	@bash scripts/figures.sh $(sort $(wildcard figures/ch02-*.gp))
