"""torchrun / DistributedDataParallel glue. One process without torchrun is world size 1.

How the engine uses several processes (`torchrun --nproc-per-node N -m e2e train ...` or
`e2e train ... --nproc N`):

- `train.batch_size` is the *global* batch: each of the N processes takes
  `batch_size // N` examples of the same shuffled epoch order (`order[rank::N]`), so one
  optimizer step sees exactly the examples a single process would see, and DDP's gradient
  average over equal shards equals the single-process gradient. The same config gives the
  same training whatever N; a resumed run may use a different N (the position in the epoch
  is counted in global batches).
- Backend: NCCL on CUDA (one GPU per process, `LOCAL_RANK`), gloo on CPU.
- BatchNorm keeps per-process batch statistics (SyncBatchNorm needs CUDA); DDP broadcasts
  rank 0's running statistics at every forward, and `sync_buffers` does so before each
  evaluation, so every rank evaluates the same weights and takes the same decisions.
- Only rank 0 logs and writes the run directory.

Several machines (`e2e train ... --nproc N --nnodes M --node-rank R --rdzv-endpoint HOST:PORT`,
the same command on each): torchrun's c10d rendezvous at HOST:PORT (machine 0, which hosts it)
gathers the M launchers and numbers their processes; ranks, and so the machine rank 0 runs on,
are the rendezvous's choice. The weights are those of one machine running M x N processes.
`--max-restarts K`: when a process dies, torchrun stops the others and starts them all again
(up to K times); a restarted process resumes from RUN/checkpoints/last.pt (see `restarted`).
Every process reads that checkpoint, so RUN must be on a filesystem all machines share.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from e2e.errors import E2EError


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_env() -> DistEnv:
    """The process's place in a torchrun launch, read from the environment torchrun sets."""
    return DistEnv(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                   int(os.environ.get("LOCAL_RANK", 0)))


def setup(env: DistEnv, device: torch.device) -> None:
    if env.world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def local_batch_size(batch_size: int, env: DistEnv) -> int:
    """This process's share of the global `train.batch_size`."""
    if batch_size % env.world:
        raise E2EError(f"train.batch_size={batch_size} is the global batch and must divide "
                       f"evenly among {env.world} processes; use a multiple of {env.world}")
    return batch_size // env.world


def seed_rank(env: DistEnv, seed: int, step: int) -> None:
    """Give each rank its own random stream (augmentation, dropout) once weights are built.

    Single-process runs are left alone, so their exact resume is unaffected.
    """
    if env.world > 1:
        torch.manual_seed(seed * 1_000_003 + env.rank * 7_919 + step)


def wrap(model: nn.Module, env: DistEnv, device: torch.device) -> nn.Module:
    if env.world == 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def sync_buffers(model: nn.Module, env: DistEnv) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank."""
    if env.world > 1:
        for buffer in unwrap(model).buffers():
            dist.broadcast(buffer.data, src=0)


def mean_across(value: float, env: DistEnv, device: torch.device) -> float:
    if env.world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t) / env.world


def step_summary(loss: float, elapsed: float, env: DistEnv, device: torch.device
                 ) -> tuple[float, float]:
    """The mean over ranks of the loss and of the seconds elapsed, in one all-reduce.

    Every rank then takes the same decisions (stop on a NaN loss, on the time limit; the
    learning rate of a run scheduled by the clock), so none is left waiting in a collective
    that the others have abandoned, and no rank's weights drift from the others'.
    """
    if env.world == 1:
        return loss, elapsed
    t = torch.tensor([loss, elapsed], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t[0]) / env.world, float(t[1]) / env.world


def barrier(env: DistEnv) -> None:
    if env.world > 1:
        dist.barrier()


@contextmanager
def local_main_first(env: DistEnv) -> Iterator[None]:
    """Each machine's first process runs the block before the others on that machine.

    Data preparation renders and extracts caches on first use: one process per machine does
    the work, the others then find it done instead of repeating it beside it.
    """
    if env.local_rank != 0:
        barrier(env)
    yield
    if env.local_rank == 0:
        barrier(env)


def teardown(env: DistEnv) -> None:
    if env.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Nodes:
    """The machines of one run, as each launcher is told: how many, which one this is, where
    they meet (torchrun's c10d rendezvous), and how often a failed run is started again."""

    count: int = 1
    rank: int | None = None  # this machine's index; machine 0 hosts the rendezvous
    endpoint: str = ""  # HOST:PORT of the rendezvous; on one machine, a free local port
    run_id: str = "e2e"  # tells apart two runs that share an endpoint
    max_restarts: int = 0

    def check(self) -> None:
        """Refuse flags that cannot describe one run, with the fix, before anything starts."""
        if self.count < 1:
            raise E2EError(f"--nnodes must be at least 1, got {self.count}")
        if self.rank is not None and not 0 <= self.rank < self.count:
            raise E2EError(f"--node-rank {self.rank} is outside 0..{self.count - 1}: number "
                           f"the {self.count} machine(s) of --nnodes {self.count} from 0")
        if self.max_restarts < 0:
            raise E2EError(f"--max-restarts must be 0 or more, got {self.max_restarts}")
        if self.count > 1 and not self.endpoint:
            raise E2EError(f"--nnodes {self.count} needs --rdzv-endpoint HOST:PORT: machine "
                           "0's address and a free port, the same on every machine")
        if self.endpoint:
            parse_endpoint(self.endpoint)
        if not self.run_id or not all(c.isalnum() or c in "-_." for c in self.run_id):
            raise E2EError(f"--rdzv-id {self.run_id!r} must be letters, digits, '-', '_' or "
                           "'.', and the same on every machine (e.g. $SLURM_JOB_ID)")


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """HOST:PORT (or [IPv6]:PORT) -> (host, port), or a one-line E2EError."""
    host, sep, port = endpoint.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise E2EError(f"--rdzv-endpoint {endpoint!r} is not HOST:PORT: give machine 0's "
                       "address and a free port (1-65535), e.g. node0:29500")
    return host, int(port)


def torchrun_command(nproc: int, args: list[str], nodes: Nodes = Nodes()) -> list[str]:
    """The torchrun command line that runs `e2e ARGS` in `nproc` processes on this machine,
    one of `nodes.count` machines."""
    if nproc < 1:
        raise E2EError(f"--nproc must be at least 1, got {nproc}")
    nodes.check()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(nodes.count),
           "--nproc-per-node", str(nproc), "--rdzv-backend", "c10d",
           "--rdzv-endpoint", nodes.endpoint or f"127.0.0.1:{free_port()}",
           "--rdzv-id", nodes.run_id, "--max-restarts", str(nodes.max_restarts)]
    if nodes.rank is not None:
        # Say who hosts the rendezvous, rather than let torchrun guess from host names
        # (on one machine, or where HOST is an alias, every launcher would guess itself).
        cmd += ["--rdzv-conf", f"is_host={int(nodes.rank == 0)}"]
    return [*cmd, "-m", "e2e", *args]


def launch(nproc: int, args: list[str], nodes: Nodes = Nodes()) -> int:
    """Run `e2e ARGS` in `nproc` processes on this machine with torchrun; its exit status.

    With `nodes`, this machine is one of several: run the same command on each of them.
    """
    cmd = torchrun_command(nproc, args, nodes)
    env = {**os.environ}
    # torchrun would set 1 thread per process with a warning; share the cores out instead.
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    if nodes.max_restarts:
        # Restarted processes would otherwise meet in the store of the failed attempt and may
        # read its stale addresses: hang or fail (pytorch/pytorch#135712). This gives each
        # attempt a store of its own, hosted by its rank 0.
        env.setdefault("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1")
    return run_child(cmd, env)


def under_torchrun() -> bool:
    """True in a process that torchrun started."""
    return "TORCHELASTIC_RUN_ID" in os.environ


def restarted() -> int:
    """How many times torchrun has started this run's processes again after a failure
    (`--max-restarts`); 0 on the first attempt and without torchrun. A restarted process
    resumes from the run's last checkpoint, where there is one."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0))


def elastic() -> bool:
    """True under torchrun with `--max-restarts` above 0: this process may be started again."""
    return int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", 0)) > 0


def run_child(cmd: list[str], env: dict[str, str]) -> int:
    """Run `cmd` to the end; its exit status. A SIGTERM to this process stops it too.

    Python dies on SIGTERM without cleaning up, which would leave torchrun and its workers
    training on (and writing the run directory) after `kill` or a scheduler's timeout.
    torchrun, on SIGTERM, stops its workers before it exits.
    """
    child = subprocess.Popen(cmd, env=env)
    if threading.current_thread() is not threading.main_thread():
        return child.wait()  # signal handlers can only be set in the main thread

    # The handler only passes the signal on: it interrupts child.wait(), which holds a lock
    # that a second wait() inside the handler would deadlock on.
    received: list[int] = []

    def stop(signum, frame):
        received.append(signum)
        child.terminate()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        code = child.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if received:
        raise SystemExit(128 + received[0])
    return code
