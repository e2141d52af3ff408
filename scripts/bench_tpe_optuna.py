#!/usr/bin/env python3
"""Optuna's multivariate TPE (the reference Paddock's TPE follows) on the protocol of
Paddock's unit test `tpe_beats_random_search_on_branin_and_a_log_scale_function`: N seeds x
50 trials, 10 start-up trials, 24 candidates; the median of the best value found.

    python3 -m venv /tmp/optuna && /tmp/optuna/bin/pip install optuna
    /tmp/optuna/bin/python scripts/bench_tpe_optuna.py 200
    NSEEDS=200 cargo test -p paddock --lib tpe_beats -- --nocapture     # Paddock's, same protocol
"""
import math
import statistics
import sys

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)
SEEDS = int(sys.argv[1]) if len(sys.argv) > 1 else 20


def branin(t):
    x1 = t.suggest_float("x1", -5, 10)
    x2 = t.suggest_float("x2", 0, 15)
    b, c, r, s, tt = 5.1 / (4 * math.pi**2), 5 / math.pi, 6, 10, 1 / (8 * math.pi)
    return (x2 - b * x1 * x1 + c * x1 - r) ** 2 + s * (1 - tt) * math.cos(x1) + s


def log_scale(t):
    return sum((math.log10(t.suggest_float(k, 1e-6, 1.0, log=True)) + 1 + i) ** 2 for i, k in enumerate("abcde"))


for name, f in [("branin", branin), ("5-D log scale", log_scale)]:
    for label, make in [
        ("TPE", lambda s: optuna.samplers.TPESampler(seed=s, multivariate=True, n_startup_trials=10, n_ei_candidates=24)),
        ("random", lambda s: optuna.samplers.RandomSampler(seed=s)),
    ]:
        best = []
        for seed in range(SEEDS):
            study = optuna.create_study(sampler=make(seed))
            study.optimize(f, n_trials=50)
            best.append(study.best_value)
        print(f"{name}: optuna {optuna.__version__} {label}, median best over {SEEDS} seeds: {statistics.median(best):.4f}")
