# mk/teaching.mk: the teaching tools. Included by the Makefile (-include mk/*.mk),
# so every variable of the Makefile (CLI_BIN, BUILD, LIB_OBJ, CFLAGS, ...) is here.
#
#   make book           deps, build, every chapter's experiments in order, figures, book.md
#   make chN            one chapter's experiments (make ch1)
#   make pipeline       chapter 10: the whole R1 recipe in miniature, every stage scored (FULL=1: full sizes)
#   make figures        every figures/*.gp on the CSV files under runs/
#   make book-md        book.md from chapters/*.md and results/ (make book-check: is it up to
#                       date, has every measured number a source? scripts/book.py says how)
#   make docs           Doxygen HTML in docs/html; fails on any warning
#   make notebooks      executes notebooks/*.ipynb headless, quick profile
#   make notebooks-store  the full sizes, outputs stored in notebooks/*.ipynb
#   make gdb CH=N       gdb on the debug build, stopped in chapter N's key function
#                       (GDB_BATCH=1: scripted, prints a transcript)
#   make exercise EX=x  the library with exercises/x/student.c, then its tests
#   make exercise-check every exercise: the stub fails its tests, the solution passes
#   make solution EX=x  prints exercise x's solution (the library's own function)
#   make check-infra    the tools above fail when they must (scripts/check-infra.sh)
#
# Adding a chapter: create mk/chNN.mk with
#       CHAPTERS += chN
#       .PHONY: chN
#       chN: $(CLI_BIN)
#       	$(TS) ...              # runs under runs/chNN/, CSV for its figures
#       	@bash scripts/save-results.sh runs/chNN chNN summary.csv ...   # what the prose quotes
#       	@bash scripts/figures.sh figures/chNN-*.gp
# and a line per stop in scripts/gdb/chapters.txt. `make book` then runs it in
# order (mk/*.mk are included sorted, so ch02 comes after ch01, before chA).

PY3 := /usr/bin/python3
# The command every chapter runs: build/release/tinyseek by default.
TS := ./$(CLI_BIN)
# The debug build `make debug` writes (and `make gdb` uses).
DEBUG_BUILD := build/debug$(if $(filter 0,$(BLAS)),-noblas)

.PHONY: book book-md book-check book-selftest docs figures notebooks notebooks-store gdb gdb-prep exercise exercise-build \
        exercise-check solution check-infra chapters-list teaching-help

# ---- book.md -----------------------------------------------------------------
book-md:
	@$(PY3) scripts/book.py

# Fails, with "book.md is stale: run make book-md", when the committed book.md
# is not what the chapters and the code markers give now.
book-check:
	@$(PY3) scripts/book.py --check

# The generator's own tests: placeholders, the measured-number rule, save-results.sh.
book-selftest:
	@out=$$($(PY3) tests/book/test_book_numbers.py 2>&1) && echo "book-selftest: $$(echo "$$out" | grep -m1 '^Ran ')" \
	  || { echo "$$out" >&2; echo "book-selftest: FAILED (tests/book/test_book_numbers.py)" >&2; exit 1; }

# `make test` also checks the book (an extra prerequisite of the Makefile's test).
test: book-check book-selftest

# ---- chapters ---------------------------------------------------------------------
# Chapter 1 lives here; later chapters add mk/chNN.mk files. ch1 goes first
# whatever the include order.
CHAPTERS := ch1 $(CHAPTERS)

CH01 := runs/ch01
.PHONY: ch1
ch1: $(CLI_BIN)
	@mkdir -p $(CH01)
	$(TS) data --out $(CH01)/data --seed 1 --min-digits 2 --digits 3 --pretrain 50000 --rl 2000 --tagged-weight 2
	$(TS) tokenizer train --input $(CH01)/data/pretrain_train.txt --vocab-size 512 \
	    --out $(CH01)/tokenizer.json --log $(CH01)/merges.csv
	@bash scripts/ch01-vocab-sweep.sh $(TS) $(CH01)
	@t=$(CH01)/data/pretrain_train.txt; \
	  { echo "lines,bytes,tokens,words"; \
	    echo "$$(wc -l < $$t),$$(wc -c < $$t),$$($(TS) tokenizer encode --tokenizer $(CH01)/tokenizer.json \
	      --input $$t | wc -w),$$(grep -o '[A-Za-z]\+' $$t | sort -u | wc -l)"; } > $(CH01)/corpus.csv
	@bash scripts/ch01-counts.sh $(TS) $(CH01)
	@bash scripts/save-results.sh $(CH01) ch01 vocab-sweep.csv corpus.csv files.csv difficulties.csv forms.csv
	@bash scripts/figures.sh $(sort $(wildcard figures/ch01-*.gp))

chapters-list:
	@echo $(CHAPTERS)

# deps, the build, every chapter in order (each timed), the figures, book.md.
book:
	@bash scripts/run-chapter.sh --book $(CHAPTERS)

# ---- figures -----------------------------------------------------------------------
figures:
	@bash scripts/figures.sh

# ---- Doxygen ------------------------------------------------------------------------
# Call graphs when graphviz's dot is installed; any warning that matters fails
# (scripts/docs.sh says which: all but "not documented" for a .c file's privates).
docs: deps
	@bash scripts/docs.sh

# ---- notebooks --------------------------------------------------------------------------
NOTEBOOKS ?= $(sort $(wildcard notebooks/*.ipynb))
notebooks:
	@bash scripts/install-deps.sh notebooks
	@$(MAKE) --no-print-directory all
	@TINYSEEK_BUILD=$(BUILD) bash scripts/run-notebooks.sh $(NOTEBOOKS)

# The full-size runs, each notebook written back to notebooks/ with its outputs (commit them):
# a reader sees what it showed without running it. make notebooks-store NOTEBOOKS=notebooks/01-*.ipynb
notebooks-store:
	@bash scripts/install-deps.sh notebooks
	@$(MAKE) --no-print-directory all
	@TINYSEEK_BUILD=$(BUILD) bash scripts/run-notebooks.sh --store $(NOTEBOOKS)

# ---- gdb --------------------------------------------------------------------------------
# make gdb CH=1 [GDB_BATCH=1]: the table of stops is scripts/gdb/chapters.txt.
gdb:
	@if [ -z "$(CH)" ]; then echo "gdb: which chapter? e.g. make gdb CH=1" >&2; bash scripts/gdb/run-gdb.sh --list >&2; exit 2; fi
	@$(MAKE) --no-print-directory all MODE=debug
	@GDB_BATCH=$(GDB_BATCH) bash scripts/gdb/run-gdb.sh $(CH) $(DEBUG_BUILD)/tinyseek

# The debug build and chapter N's tiny inputs, without starting gdb (VS Code's launch.json).
gdb-prep:
	@if [ -z "$(CH)" ]; then echo "gdb-prep: which chapter? e.g. make gdb-prep CH=1" >&2; exit 2; fi
	@$(MAKE) --no-print-directory all MODE=debug
	@bash scripts/gdb/run-gdb.sh --setup $(CH) $(DEBUG_BUILD)/tinyseek

# ---- exercises ----------------------------------------------------------------------------
# exercises/NAME/exercise.mk says which function of which source file the
# student writes and which suites test it:
#     EX_SOURCE   := src/data/bpe.c
#     EX_FUNCTION := bpe_apply_merge
#     EX_TESTS    := test_bpe_apply_merge test_ch01_bpe   (exercises/NAME/T.c or tests/T.c)
# The library is built as in `make debug` (-O0 -g3, so the student can step
# through their code). In a copy of EX_SOURCE's object the function becomes a
# weak symbol (objcopy --weaken-symbol), and the student's file, linked as an
# object ahead of the library, supplies the strong definition that wins, also
# for the calls from inside EX_SOURCE. No line of src/ changes.
# EX_STUDENT=path uses another file than exercises/NAME/student.c (exercise-check does).
exercise:
	@if [ -z "$(EX)" ]; then echo "exercise: which one? e.g. make exercise EX=bpe_apply_merge (exercises: $(notdir $(patsubst %/,%,$(dir $(wildcard exercises/*/exercise.mk)))))" >&2; exit 2; fi
	@$(MAKE) --no-print-directory exercise-build MODE=debug EX=$(EX) $(if $(EX_STUDENT),EX_STUDENT=$(EX_STUDENT))
	@bash scripts/exercise-run.sh $(DEBUG_BUILD)/exercise/$(EX)

exercise-check:
	@bash scripts/exercise-check.sh $(EXERCISES)

# The solution is the library's own function, which the book never prints (the
# chapters give its equations and declaration): printed from EX_SOURCE by name.
solution:
	@if [ -z "$(EX)" ]; then echo "solution: which one? e.g. make solution EX=bpe_apply_merge (exercises: $(notdir $(patsubst %/,%,$(dir $(wildcard exercises/*/exercise.mk)))))" >&2; exit 2; fi
	@$(PY3) scripts/exercise-solution.py --print $(EX_SOURCE) $(EX_FUNCTION)

.PHONY: print-exercise-build
print-exercise-build:
	@echo $(DEBUG_BUILD)

ifneq ($(EX),)
EX_HOME := exercises/$(EX)
ifeq ($(wildcard $(EX_HOME)/exercise.mk),)
  $(error exercise: no exercise '$(EX)' (expected $(EX_HOME)/exercise.mk; exercises: $(notdir $(patsubst %/,%,$(dir $(wildcard exercises/*/exercise.mk))))))
endif
include $(EX_HOME)/exercise.mk
EX_STUDENT ?= $(EX_HOME)/student.c
EX_OUT := $(BUILD)/exercise/$(EX)
EX_OBJ := $(BUILD)/$(EX_SOURCE:.c=.o)
EX_MISSING := $(strip $(foreach t,$(EX_TESTS),$(if $(wildcard $(EX_HOME)/$(t).c tests/$(t).c),,$(t))))
ifneq ($(EX_MISSING),)
  $(error exercise $(EX): no suite $(EX_MISSING) (looked for $(EX_HOME)/T.c and tests/T.c; see $(EX_HOME)/exercise.mk))
endif
EX_TEST_BIN := $(EX_TESTS:%=$(EX_OUT)/tests/%)

exercise-build: $(EX_OUT)/tinyseek $(EX_TEST_BIN)
	@rm -f $(filter-out $(EX_TEST_BIN),$(wildcard $(EX_OUT)/tests/*))
	@echo "exercise: $(EX_FUNCTION)() from $(EX_STUDENT) replaces the one in $(EX_SOURCE); suites: $(EX_TESTS)"

.PHONY: ex-force
ex-force:

# The student's function: always recompiled (milliseconds), so switching
# EX_STUDENT can never link a stale object.
$(EX_OUT)/student.o: $(EX_STUDENT) $(HEADERS) ex-force
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@
	@nm -g --defined-only $@ | grep -qw 'T $(EX_FUNCTION)' || \
	  { echo "exercise: $(EX_STUDENT) does not define $(EX_FUNCTION)() (keep its name and signature)" >&2; exit 1; }

$(EX_OUT)/weak.o: $(EX_OBJ)
	@mkdir -p $(dir $@)
	@nm -g --defined-only $< | grep -qw 'T $(EX_FUNCTION)' || \
	  { echo "exercise: $(EX_SOURCE) has no global function $(EX_FUNCTION)() (static, renamed, or not written yet?)" >&2; exit 1; }
	objcopy --weaken-symbol=$(EX_FUNCTION) $< $@

$(EX_OUT)/libtinyseek.a: $(filter-out $(EX_OBJ),$(LIB_OBJ)) $(EX_OUT)/weak.o
	@rm -f $@
	ar rcs $@ $^

$(EX_OUT)/tinyseek: $(CLI_OBJ) $(EX_OUT)/student.o $(EX_OUT)/libtinyseek.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(EX_OUT)/student.o $(EX_OUT)/libtinyseek.a $(LDLIBS)

# An exercise's own suite first, else the chapter suite of the same name.
$(EX_OUT)/tests/%: $(EX_HOME)/%.c tests/testutil.h $(EX_OUT)/student.o $(EX_OUT)/libtinyseek.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(EX_OUT)/student.o $(EX_OUT)/libtinyseek.a $(LDLIBS) -lcmocka

$(EX_OUT)/tests/%: tests/%.c tests/testutil.h tests/posttrain_fixtures.h $(EX_OUT)/student.o $(EX_OUT)/libtinyseek.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(EX_OUT)/student.o $(EX_OUT)/libtinyseek.a $(LDLIBS) -lcmocka
endif

# ---- checks of the tools themselves ---------------------------------------------------
check-infra:
	@bash scripts/check-infra.sh

teaching-help:
	@sed -n '3,16p' mk/teaching.mk | sed 's/^# \{0,1\}//'
