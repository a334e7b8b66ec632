# mk/diagrams.mk: the book's diagrams (graphviz, figures/*.dot -> .png and .svg)
# and chapter 4's worked absorption example (figures/ch04-absorption.md). They
# draw the algorithms, not a run, so they are committed and `make book` does
# not redraw them; run this after editing a .dot file or the example's script.
.PHONY: diagrams
diagrams:
	@bash scripts/diagrams.sh
