# Chapter 2: the dense baseline. Trains configs/ch02-dense.json on chapter 1's
# data and tokenizer (running chapter 1 first if its outputs are missing),
# writes runs/ch02/{model/,samples.txt,summary.txt,unigram.txt,accuracy.txt}
# and draws figures/ch02-*.png. A line of chapter 1's pretraining text is 36
# tokens on average, but its worked notes about 51 and its worked prose about 81
# (results/ch01/forms.csv), so windows of 64 tokens seldom hold a whole worked
# line; the chapter says what that does (chapter 7 pretrains on 128). Accuracy:
# the first CH02_ACC test problems of each difficulty, asked as the pretraining
# text writes them, greedily: "347+28=" (the next number must be the answer) and
# "347+28:" (the worked notes must end "so 347+28=375", and their steps are
# compared column by column with the scratchpad); scripts/answer-accuracy.py
# scores them.
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
	@rm -f $(CH02)/completions-*.txt $(CH02)/worked-*.txt
	@levels=$$(sed -n 's/.*"difficulty": *\([0-9]*\).*/\1/p' runs/ch01/data/test.jsonl | sort -un); \
	for d in $$levels; do \
	  /usr/bin/python3 scripts/answer-accuracy.py prompts runs/ch01/data/test.jsonl $(CH02_ACC) $$d > $(CH02)/prompts-$$d.txt && \
	  $(TS) generate --model $(CH02)/model --prompts $(CH02)/prompts-$$d.txt --max-new 12 > $(CH02)/completions-$$d.txt && \
	  /usr/bin/python3 scripts/answer-accuracy.py prompts --worked runs/ch01/data/test.jsonl $(CH02_ACC) $$d > $(CH02)/worked-prompts-$$d.txt && \
	  $(TS) generate --model $(CH02)/model --prompts $(CH02)/worked-prompts-$$d.txt --max-new 100 > $(CH02)/worked-$$d.txt || exit 1; \
	done; \
	cat $(CH02)/completions-*.txt | awk 'NR % 50 == 1' | head -8 | tee $(CH02)/samples.txt; \
	cat $(CH02)/worked-[0-9]*.txt | awk 'NR % 50 == 1' | head -4 | tee -a $(CH02)/samples.txt; \
	{ echo "direct (347+28=):"; \
	  /usr/bin/python3 scripts/answer-accuracy.py score runs/ch01/data/test.jsonl $(CH02_ACC) \
	    $$(for d in $$levels; do echo $(CH02)/completions-$$d.txt; done); \
	  echo "worked (347+28: ... so 347+28=375):"; \
	  /usr/bin/python3 scripts/answer-accuracy.py score --worked runs/ch01/data/test.jsonl $(CH02_ACC) \
	    $$(for d in $$levels; do echo $(CH02)/worked-$$d.txt; done); \
	  echo "worked, step by step (the columns before '; so' against the scratchpad):"; \
	  /usr/bin/python3 scripts/answer-accuracy.py steps runs/ch01/data/test.jsonl $(CH02_ACC) \
	    $$(for d in $$levels; do echo $(CH02)/worked-$$d.txt; done); } | tee $(CH02)/accuracy.txt
	@bash scripts/save-results.sh $(CH02) ch02 summary.txt unigram.txt accuracy.txt samples.txt model/metrics.csv
	@bash scripts/figures.sh $(sort $(wildcard figures/ch02-*.gp))
