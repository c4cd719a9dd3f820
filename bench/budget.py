"""What a benchmark may set on top of its application's default config: its budget.

Each application's default config (`e2e train APP`, `e2e config APP`) IS the system its
benchmark measures and the README quotes. A benchmark adds only the keys below: how long and
how it runs, where its data are, which tracks it drives; never what is trained.
`tests/test_recipes.py` runs each benchmark's `--print-config` and holds it to this list.
A curve part (CURVES) varies one declared key over its points, each recorded with its command.
"""

from __future__ import annotations

# key -> why a benchmark sets it
BUDGET_KEYS = {
    "train.time_limit": "the wall-clock budget",
    "train.max_steps": "a ceiling on steps derived from the time budget (the clock decides)",
    "train.schedule_by_time": "the LR schedule completes within the time budget",
    "train.eval_every": "validations spread over the budget",
    "train.precision": "fp32 emulates a plain CPU (no AMX, no bf16)",
    "train.seed": "repeats",
    "train.device": "where it runs",
    "train.num_workers": "how it loads",
}
# per application: where its data are, how many workers drive, which tracks test it
PLACES = {
    "speech": {"data.corpus": "where the synthetic corpus is rendered",
               "data.real": "where the real corpora are extracted"},
    "driving": {"data.source": "the benchmark's own recordings",
                "data.workers": "processes driving episodes",
                "data.test_seeds": "the 100 unseen test tracks",
                "data.test_random_seeds": "the unseen test tracks driven in randomized colours"},
}


# The experiments a benchmark's curve part runs on top of the recipe, one key per application:
# each point of the curve is its own run, recorded in RESULTS.md with the command that
# reproduces it alone (`--set KEY=VALUE`); the benchmark's main part never sets these.
CURVES = {
    "speech": {"data.real_fraction": "the data curve: nested shares of the real training hours"},
}


def allowed(app: str) -> dict[str, str]:
    """Every key a benchmark of `app` may set, with why."""
    return {**BUDGET_KEYS, **PLACES.get(app, {})}


def check(app: str, overrides: list[str]) -> list[str]:
    """`overrides` unchanged if each sets a budget key; else a SystemExit naming the first that
    does not (an experiment goes in --set, which the results' command line records)."""
    keys = allowed(app)
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key not in keys:
            raise SystemExit(f"bench: '{item}' changes what {app} trains; a benchmark sets only "
                             f"its budget ({', '.join(keys)}). Change the default in "
                             f"e2e/tasks/{app}/config.py, or pass it with --set as an experiment")
    return overrides


def curve_check(app: str, overrides: list[str]) -> list[str]:
    """`overrides` unchanged if each sets the application's declared curve key; else a
    SystemExit naming the first that does not."""
    keys = CURVES.get(app, {})
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key not in keys:
            raise SystemExit(f"bench: '{item}' is not {app}'s curve experiment "
                             f"({', '.join(keys) or 'none declared'}, bench/budget.py CURVES)")
    return overrides
