"""Hyperparameter sweeps: `phalanx sweep` and `phalanx.sweep`, and `phalanx.report`.

One concern a module: `report` (the script's side), `space` (what to try), `groups` (where
trials run), `trial` (one launcher run, its output and reports), `results` (results.csv and
the ranking), `search` (grid/random and Optuna scheduling), `cli` (the command line).
"""
