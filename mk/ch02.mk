# Chapter 2: the dense baseline. Trains configs/ch02-dense.json on chapter 1's
# data and tokenizer (running chapter 1 first if its outputs are missing),
# writes runs/ch02/{model/,samples.txt,summary.txt,unigram.txt,accuracy.txt}
# and draws figures/ch02-*.png. A line of chapter 1's pretraining text is 47
# tokens on average, so windows of 64 tokens hold a line or two, and more,
# cheaper steps beat longer windows. Accuracy: the first CH02_ACC test problems
# of each difficulty, asked as the pretraining text writes them ("347+28="),
# the next number the model writes (greedy) against the answer.
CHAPTERS += ch2
CH02 := runs/ch02
CH02_STEPS ?= 800
CH02_SEQ ?= 64
CH02_ACC ?= 100

.PHONY: ch2
ch2: $(CLI_BIN)
	@test -f runs/ch01/tokenizer.json -a -f runs/ch01/data/pretrain_train.txt || $(MAKE) --no-print-directory ch1
	@mkdir -p $(CH02)
	@rm -f $(CH02)/model/metrics.csv
	$(TS) pretrain --config configs/ch02-dense.json --data runs/ch01/data --tokenizer runs/ch01/tokenizer.json \
	    --out $(CH02)/model --steps $(CH02_STEPS) --seq $(CH02_SEQ) --eval-every 50 | tee $(CH02)/summary.txt
	@sed -n 's/.*unigram entropy \([0-9.]*\) nats.*/\1/p' $(CH02)/summary.txt > $(CH02)/unigram.txt
	@rm -f $(CH02)/completions-*.txt
	@levels=$$(sed -n 's/.*"difficulty": *\([0-9]*\).*/\1/p' runs/ch01/data/test.jsonl | sort -un); \
	for d in $$levels; do \
	  /usr/bin/python3 scripts/answer-accuracy.py prompts runs/ch01/data/test.jsonl $(CH02_ACC) $$d > $(CH02)/prompts-$$d.txt && \
	  $(TS) generate --model $(CH02)/model --prompts $(CH02)/prompts-$$d.txt --max-new 12 > $(CH02)/completions-$$d.txt || exit 1; \
	done; \
	cat $(CH02)/completions-*.txt | awk 'NR % 50 == 1' | head -8 | tee $(CH02)/samples.txt; \
	/usr/bin/python3 scripts/answer-accuracy.py score runs/ch01/data/test.jsonl $(CH02_ACC) \
	    $$(for d in $$levels; do echo $(CH02)/completions-$$d.txt; done) | tee $(CH02)/accuracy.txt
	@bash scripts/figures.sh $(sort $(wildcard figures/ch02-*.gp))
