"""The driving commands of the `e2e` CLI: `e2e drive` and `e2e data driving`.

(`e2e train driving --dagger N` is the shared `train` verb with data.dagger_rounds=N: the
task's `train` hook runs DAgger.)
"""

from __future__ import annotations

import json
from pathlib import Path

from e2e.errors import E2EError, number
from e2e.tasks.driving.config import STEERING_NOISE


def add_parsers(sub, data_sub) -> None:
    p = sub.add_parser("drive", help="let a trained driving run (or the expert) drive unseen "
                                     "tracks in closed loop and score it")
    p.add_argument("run", help="a driving run directory, or 'expert'")
    p.add_argument("--seeds", default="1000-1019", help="track seeds, e.g. 1000-1019 or 3,7")
    p.add_argument("--episodes", type=number(int, 1),
                   help="drive the first K of the seeds (default all)")
    p.add_argument("--max-steps", type=number(int, 1), default=1000,
                   help="simulator steps per episode")
    p.add_argument("--workers", type=number(int, 1), default=2, help="episodes driven in parallel")
    p.add_argument("--video", metavar="GIF", help="save the first drive, controls drawn on it")
    p.add_argument("--checkpoint", default="best", help="best | last | a checkpoint file")
    p.add_argument("--json", action="store_true", help="print per-track results as JSON")
    p.add_argument("--look", choices=("usual", "random"), default="usual",
                   help="draw the tracks in the usual colours or each in randomized colours "
                        "(the simulator's domain_randomize; the same colours every time)")
    p.set_defaults(handler=cmd_drive)

    p = data_sub.add_parser("driving", help="record the expert driving CarRacing tracks "
                                            "(frames + actions, compressed)")
    p.add_argument("--out", required=True, help="folder for episode-SEED.npz + metadata.json")
    p.add_argument("--seeds", default="0-19", help="training track seeds, e.g. 0-19")
    p.add_argument("--episodes", type=number(int, 1),
                   help="record the first N of the seeds (default all)")
    p.add_argument("--max-steps", type=number(int, 1), default=1000)
    p.add_argument("--workers", type=number(int, 1), default=2,
                   help="episodes recorded in parallel")
    p.add_argument("--noise", type=number(float, 0), default=STEERING_NOISE,
                   help="perturb the executed steering by this much (std) while the labels "
                        "stay the expert's, so the data shows recoveries (DART); 0 = none")
    p.add_argument("--random-looks", type=number(float, 0, 1), default=0.0, metavar="SHARE",
                   help="draw this share of the tracks in randomized colours (which ones is a "
                        "property of the seed); the expert's labels are the same in any look")
    p.set_defaults(handler=cmd_data_driving)


def _seeds(text: str, episodes: int | None) -> list[int]:
    from e2e.tasks.driving.sim import parse_seeds

    seeds = parse_seeds(text)
    if episodes is not None:
        if not 1 <= episodes <= len(seeds):
            raise E2EError(f"--episodes {episodes} needs between 1 and {len(seeds)} seeds "
                           f"(--seeds {text} names {len(seeds)} tracks)")
        seeds = seeds[:episodes]
    return seeds


def cmd_drive(args) -> int:
    import time

    from e2e.tasks.driving.closed_loop import ExpertPolicy, drive, save_gif, summarize
    from e2e.tasks.driving.sim import make_env, track_name

    seeds = _seeds(args.seeds, args.episodes)
    tracks = [(s, args.look) for s in seeds]
    if args.run == "expert":
        make_env().close()  # a missing simulator is reported before any worker starts
        policy = ExpertPolicy()
    else:
        from e2e.engine.restore import load_run
        from e2e.tasks.driving.closed_loop import NetPolicy
        from e2e.tasks.driving.task import DrivingTask

        _, model, info, _ = load_run(DrivingTask(), args.run, checkpoint=args.checkpoint,
                                     command="drive")
        policy = NetPolicy(model, info, name=str(args.run))
        env = make_env()
        obs, _ = env.reset(seed=seeds[0])
        env.close()
        policy.check_frame(obs)
    t0 = time.time()

    def show(e):
        print(f"track {track_name(e.seed, e.look)}: score {e.score:7.1f}  tiles "
              f"{e.tiles}/{e.track_tiles}  lap {'yes' if e.lap else 'no '}  off-track "
              f"{e.offtrack_steps} steps  ({time.time() - t0:.0f}s)", flush=True)
    episodes, video = drive(policy, tracks, args.max_steps, args.workers,
                            video=bool(args.video), progress=None if args.json else show)
    s = summarize(episodes)
    if args.json:
        from dataclasses import asdict
        print(json.dumps({"summary": s, "episodes": [asdict(e) for e in episodes]}, indent=1))
    else:
        looks = " in randomized looks" if args.look == "random" else ""
        print(f"{policy.name} on {len(seeds)} tracks{looks}: mean score {s['score']:.1f}, min "
              f"{s['score_min']:.1f}, tiles {100 * s['tiles']:.1f}%, laps completed "
              f"{100 * s['laps']:.0f}%, off-track {100 * s['offtrack']:.1f}% of steps")
    if args.video:
        save_gif(video, Path(args.video))
        print(f"video: {args.video} (track {seeds[0]})")
    return 0


def cmd_data_driving(args) -> int:
    from e2e.tasks.driving.record import record
    from e2e.tasks.driving.sim import make_env

    seeds = _seeds(args.seeds, args.episodes)
    make_env().close()
    episodes = record(args.out, seeds, args.workers, args.max_steps, noise=args.noise,
                      random_looks=args.random_looks)
    frames = sum(e.steps for e in episodes) - 50 * len(episodes)
    print(f"recorded {len(episodes)} episodes, {frames} frames, mean expert score "
          f"{sum(e.score for e in episodes) / len(episodes):.1f} -> {args.out}")
    return 0
