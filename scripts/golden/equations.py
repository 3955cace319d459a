"""Reference optimizers written from their papers' equations, for those with no public
implementation to compare against (see scripts/golden_optim.py)."""
