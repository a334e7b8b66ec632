# mk/crosscheck.mk: tinyseek against its PyTorch twin (tests/reference/).
#
#   make crosscheck           every variant in tests/reference/configs/ (random checkpoint
#                             and batch): logits, loss, every gradient, the KV-cache decode
#                             and 10 AdamW steps, compared tensor by tensor; fails beyond
#                             1e-4 relative to each tensor's largest value
#   make crosscheck-selftest  perturbs one gradient in tinyseek and expects the check to fail;
#                             then plants three bugs in the GRPO loss alone (no clip, no KL,
#                             no clip-higher) and expects each to fail the GRPO check only
#
# Needs PyTorch (scripts/install-deps.sh torch installs Debian's python3-torch);
# `make test` does not.
CROSSCHECK_DIR ?= build/crosscheck
CROSSCHECK_VARIANTS ?= $(basename $(notdir $(sort $(wildcard tests/reference/configs/*.json))))

.PHONY: crosscheck crosscheck-selftest deps-torch

deps-torch:
	@bash scripts/install-deps.sh torch

crosscheck: deps-torch
	@$(MAKE) --no-print-directory all
	@PY3=$(PY3) bash scripts/crosscheck.sh $(CLI_BIN) $(CROSSCHECK_DIR) $(CROSSCHECK_VARIANTS)

crosscheck-selftest: deps-torch
	@$(MAKE) --no-print-directory all
	@PY3=$(PY3) bash scripts/crosscheck.sh --selftest $(CLI_BIN) $(CROSSCHECK_DIR) dense
