"""DAgger (Ross, Gordon & Bagnell, 2011): behavior cloning's answer to covariate shift.

A network trained on the expert's states drifts, at test time, into states the expert
never visited, and has no idea how to recover. DAgger lets the network drive, has the
expert label every state the network visits, adds those frames to the training data and
retrains. In early rounds the expert takes a share of the steps (beta^r in round r),
so a weak network still reaches the states it will face next. Round 0 is plain behavior
cloning; each round trains through the one engine
(`e2e.engine.fit`), from scratch, on the aggregated recordings (or fine-tunes the previous
round's network with `data.dagger_finetune`), and reports its closed-loop score.

This is the driving task's `train` when `data.dagger_rounds` > 0; the task is passed in,
so this module imports nothing of the task's.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

from e2e.config import Config
from e2e.engine.results import headline
from e2e.errors import E2EError
from e2e.tasks.base import Task
from e2e.tasks.driving.closed_loop import MixedPolicy, NetPolicy, drive, summarize
from e2e.tasks.driving.sim import WARMUP, parse_seeds, tracks


def load_policy(task: Task, run: str | Path, device: str = "cpu") -> NetPolicy:
    from e2e.engine.restore import load_run

    _, model, info, _ = load_run(task, run, device)
    return NetPolicy(model, info, name=f"network {run}")


def run_dagger(task: Task, cfg: Config, out: str | Path, rounds: int, quiet: bool = False,
               budget_s: float = 0.0, on_round: Callable[[dict], None] | None = None) -> dict:
    """Round 0 = behavior cloning; rounds 1..N = roll out, label with the expert, retrain.

    With `budget_s`, no new round starts once that many seconds have passed; `on_round`
    gets each round's results as soon as the round ends. A round that an earlier call with
    the same `out` finished (its run holds results.json, dagger.json its row) is kept, not
    redone: `rounds=3` on a finished 2-round run only adds round 3.
    """
    import time

    from e2e.engine import fit

    if rounds < 1:
        raise E2EError(f"--dagger needs at least 1 round, got {rounds}")
    out = Path(out)
    d = cfg.data
    seeds = parse_seeds(d.dagger_seeds)
    if len(seeds) < rounds * d.dagger_episodes:
        raise E2EError(f"data.dagger_seeds={d.dagger_seeds} has {len(seeds)} tracks; "
                       f"{rounds} rounds x data.dagger_episodes={d.dagger_episodes} need "
                       f"{rounds * d.dagger_episodes}")
    history, stopped, started = [], "", time.time()
    earlier = out / "dagger.json"

    def save() -> dict:
        # after every round, so that an interrupted call keeps the rounds it finished
        summary = {"rounds": history, "test_seeds": d.test_seeds, "stopped": stopped,
                   "final_run": history[-1]["run"] if history else ""}
        partial = earlier.with_suffix(".json.tmp")
        partial.write_text(json.dumps(summary, indent=1))
        partial.replace(earlier)  # atomic: a crash mid-write leaves the previous summary
        return summary

    finished = {row["round"]: row for row in
                (json.loads(earlier.read_text())["rounds"] if earlier.exists() else [])
                if (Path(row["run"]) / "results.json").exists()}
    cfg = copy.deepcopy(cfg)
    cfg.data.dagger_rounds = 0  # each round is one plain fit (and resumes as one)
    for r in range(rounds + 1):
        run, added = out / f"round-{r}", 0
        if r in finished:  # done by an earlier call: its data joins the mix, its row is kept
            if r > 0:
                cfg.data.more = [*cfg.data.more, str(out / "visited" / f"round-{r}")]
            history.append(finished[r])
            if on_round:
                on_round(finished[r])
            if not quiet:
                print(f"dagger round {r}: kept from {earlier}")
            continue
        if budget_s and r > 0 and time.time() - started > budget_s:
            stopped = f"stopped before round {r}: the {budget_s:.0f}s budget was spent"
            if not quiet:
                print(stopped)
            break
        if r > 0:
            # the previous round's network drives (the expert takes a share beta^r of the
            # steps); the expert labels every state visited
            policy = load_policy(task, out / f"round-{r - 1}")
            if d.dagger_beta > 0:
                policy = MixedPolicy(policy, d.dagger_beta ** r, seed=r)
            visited = out / "visited" / f"round-{r}"
            round_seeds = seeds[(r - 1) * d.dagger_episodes: r * d.dagger_episodes]
            # a share data.random_looks of them in randomized colours (the expert's labels
            # are the same in any look: it reads the state)
            episodes, _ = drive(policy, tracks(round_seeds, d.random_looks), d.max_steps,
                                d.workers, record_dir=visited)
            rollout = summarize(episodes)
            added = sum(e.steps - WARMUP for e in episodes)
            if not quiet:
                print(f"dagger round {r}: the network drove tracks {round_seeds[0]}-"
                      f"{round_seeds[-1]} (score {rollout['score']:.1f}); "
                      f"{added} frames labelled by the expert")
            cfg.data.more = [*cfg.data.more, str(visited)]
            if d.dagger_finetune:  # start from the previous network instead of from scratch
                cfg.model.init, cfg.train.epochs = str(out / f"round-{r - 1}"), d.dagger_epochs
        results = fit(task, copy.deepcopy(cfg), run, quiet=quiet)
        row = {"round": r, "run": str(run), "added_frames": added,
               **headline(results),
               "best_val_score": results.get(f"best_{cfg.train.monitor}")}
        history.append(row)
        save()
        if on_round:
            on_round(row)
        if not quiet:
            print(f"dagger round {r}: test/score {row.get('test/score', float('nan')):.1f} "
                  f"(min {row.get('test/score_min', float('nan')):.1f}) on tracks "
                  f"{d.test_seeds}")
    summary = save()
    if not quiet:
        for row in history:
            print(f"round {row['round']}: " + ", ".join(
                f"{k} {v:.1f}" for k, v in headline(row).items() if k.startswith("test/"))
                + f"  ({row['run']})")
    return summary
