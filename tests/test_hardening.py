"""Issue 15: what an attacker or a careless user tried, each case refused cleanly.

Every error a user can cause ends in one line on stderr and a non-zero exit, never a
traceback; no checkpoint holds NaN or Inf; one process writes a run directory at a time.
"""

from __future__ import annotations

import argparse
import errno
import io
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib
from pathlib import Path

import pytest
import torch
from conftest import BlobsTask, blobs_config, run_cli, serve_process

import e2e
from e2e.cli import main
from e2e.engine.checkpoint import load_checkpoint, nonfinite_tensors, save_checkpoint
from e2e.engine.run import RunDir
from e2e.engine.trainer import fit
from e2e.errors import E2EError, NonFiniteLoss

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = ["--data", "digits", "--quiet", "--set", "model.widths=[8,16]", "--set",
         "train.batch_size=64"]


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height 1-bit pixels: its header is all a decoder sizes by."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    row = b"\0" * (1 + (width + 7) // 8)
    idat = zlib.compress(row * 64)  # the first rows; a decoder sizes its buffer by the header
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0,
                                                             0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hardening") / "digits"
    e2e.train("vision", data="digits", out=out, quiet=True,
              overrides=["train.epochs=1", "train.batch_size=64", "model.widths=[8,16]"])
    return out


def cli(capsys, *args: str) -> tuple[int, str]:
    """The real CLI, in this process: its exit code and its stderr."""
    code = main(list(args))
    return code, capsys.readouterr().err


# ---- 5. every error a user can cause: one line, non-zero exit, no traceback ----------------

def _file(tmp: Path, run: Path) -> list[str]:
    (tmp / "a-file").write_text("mine")
    return ["train", "vision", *SMALL, "--out", str(tmp / "a-file")]


def _users_folder(tmp: Path, run: Path) -> list[str]:
    mine = tmp / "mine"
    mine.mkdir()
    for name in ("report.md", "config.yaml", "results.json"):
        (mine / name).write_text(f"the user's own {name}")
    return ["train", "vision", *SMALL, "--out", str(mine)]


def _bomb(tmp: Path, run: Path) -> list[str]:
    (tmp / "bomb.png").write_bytes(png_header(20_000, 20_000))  # 400 MP in a few hundred bytes
    return ["predict", str(run), str(tmp / "bomb.png")]


def _unsafe_checkpoint(tmp: Path, run: Path) -> list[str]:
    copy = tmp / "copy"
    shutil.copytree(run, copy)
    ckpt = load_checkpoint(copy / "checkpoints/last.pt")
    ckpt["extra"] = argparse.Namespace(note="a pickled object")  # weights_only refuses it
    save_checkpoint(ckpt, copy / "checkpoints/last.pt")
    return ["train", "--resume", str(copy), "--quiet"]


def _set(item: str):
    return lambda tmp, run: ["train", "vision", *SMALL, "--out", str(tmp / "r"), "--set", item]


CASES = {  # name: (argv builder, what the one line must say)
    "epochs -3": (_set("train.epochs=-3"), "train.epochs must be >= 1, got -3"),
    "epochs 0": (_set("train.epochs=0"), "train.epochs must be >= 1, got 0"),
    "batch_size 0": (_set("train.batch_size=0"), "train.batch_size must be >= 1, got 0"),
    "batch_size -8": (_set("train.batch_size=-8"), "train.batch_size must be >= 1, got -8"),
    "lr nan": (_set("train.lr=nan"), "train.lr must be >= 0, got nan"),
    "out is a file": (_file, "is a file, not a folder"),
    "out is a user's folder": (_users_folder, "is not an e2e run and is not empty"),
    "decompression bomb": (_bomb, "bomb.png"),
    "weights_only refuses": (_unsafe_checkpoint, "Unsupported global: GLOBAL argparse.Namespace"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_user_errors_end_in_one_line(case, run, tmp_path, capsys):
    build, fragment = CASES[case]
    argv = build(tmp_path, run)
    code, err = cli(capsys, *argv)
    assert code != 0
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and fragment in err, err
    if case == "out is a user's folder":  # and nothing of the user's was touched
        assert (tmp_path / "mine/report.md").read_text() == "the user's own report.md"
        assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == \
            ["config.yaml", "report.md", "results.json"]


def test_disk_full_is_one_line_and_keeps_the_last_checkpoint(run, tmp_path, capsys,
                                                            monkeypatch):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    good = (copy / "checkpoints/last.pt").read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "fsync", full)
    code, err = cli(capsys, "train", "--resume", str(copy), "--quiet", "--set", "train.epochs=2")
    assert code != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "no space left on the device" in err and "checkpoints" in err
    monkeypatch.undo()
    assert (copy / "checkpoints/last.pt").read_bytes() == good
    assert not list((copy / "checkpoints").glob(".*.tmp"))


@pytest.mark.slow
def test_disk_full_on_a_real_tiny_filesystem(tmp_path):
    """A 1 MB tmpfs (root only: skipped elsewhere); this model's checkpoint is bigger."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        proc = run_cli("train", "vision", "--data", "digits", "--quiet", "--out",
                       str(mnt / "run"), "--set", "train.max_steps=2", "--set",
                       "model.widths=[64,256]", "--set", "model.stem_pool=false", check=False)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert "no space left on the device" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# ---- 2. no poisoned checkpoint; the NaN message names the really last good one -------------

class InfBufferTask(BlobsTask):
    """The loss stays finite, but from step `poison_at` a buffer (like a BatchNorm running
    variance under a huge LR) holds Inf: the checkpoint must not be written."""

    poison_at = 7

    def build_model(self, cfg, info):
        model = super().build_model(cfg, info)
        model.register_buffer("running_var", torch.ones(3))
        return model

    def loss(self, model, batch, cfg, info):
        if self.steps + 1 >= self.poison_at:
            model.running_var.fill_(float("inf"))
        return super().loss(model, batch, cfg, info)


def test_nonfinite_weights_are_never_checkpointed(tmp_path):
    with pytest.raises(NonFiniteLoss) as err:
        fit(InfBufferTask(), blobs_config(checkpoint_every=3, eval_every=100), tmp_path / "r",
            quiet=True)
    message = str(err.value)
    assert "NaN or Inf (model.running_var) when checkpointed at step 9" in message
    assert f"last good checkpoint is {tmp_path / 'r/checkpoints/last.pt'} (step 6)" in message
    ckpt = load_checkpoint(tmp_path / "r/checkpoints/last.pt")
    assert ckpt["state"]["step"] == 6 and not nonfinite_tensors(ckpt)

    task = InfBufferTask()
    task.poison_at = 2
    with pytest.raises(NonFiniteLoss, match="there is no good checkpoint"):
        fit(task, blobs_config(checkpoint_every=5, eval_every=100), tmp_path / "r2", quiet=True)
    assert not (tmp_path / "r2/checkpoints/last.pt").exists()


def test_save_checkpoint_refuses_nan(tmp_path):
    with pytest.raises(E2EError, match=r"model\.w"):
        save_checkpoint({"model": {"w": torch.tensor([1.0, float("nan")])}}, tmp_path / "x.pt")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("checkpoint_every", [1, 0])
def test_huge_lr_leaves_only_finite_checkpoints(tmp_path, capsys, checkpoint_every):
    """The issue's case: vision on digits with train.lr=1e6."""
    out = tmp_path / "r"
    code, err = cli(capsys, "train", "vision", *SMALL, "--out", str(out), "--set",
                    "train.lr=1e6", "--set", f"train.checkpoint_every={checkpoint_every}")
    assert code != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for path in (out / "checkpoints").glob("*.pt"):
        assert not nonfinite_tensors(load_checkpoint(path)), path
    if (out / "checkpoints/last.pt").exists():
        step = load_checkpoint(out / "checkpoints/last.pt")["state"]["step"]
        assert f"last good checkpoint is {out / 'checkpoints/last.pt'} (step {step})" in err
    else:
        assert "there is no good checkpoint" in err


# ---- 3. values checked before anything runs ------------------------------------------------

def test_config_objects_are_checked_before_anything_runs(tmp_path):
    with pytest.raises(E2EError, match=r"train.epochs must be >= 1, got 0 \(allowed range"):
        fit(BlobsTask(), blobs_config(epochs=0), tmp_path / "r", quiet=True)
    assert not (tmp_path / "r").exists()


# ---- 4. one writer per run directory -------------------------------------------------------

def _steps(run: Path) -> int:
    try:
        return max((int(line.split(",")[0]) for line in
                    (run / "metrics.csv").read_text().splitlines()[1:]), default=0)
    except (OSError, ValueError):
        return 0


@pytest.mark.slow
def test_one_writer_per_run_and_a_dead_writers_lock_is_taken_over(tmp_path, capsys):
    """Real processes: a training run holds its directory; after a SIGKILL the next one
    takes the dead process's lock over and removes its half-written checkpoint."""
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "e2e", "train", "vision", "--out", str(run),
                             *SMALL, "--set", "train.epochs=200", "--set", "train.log_every=1",
                             "--set", "train.checkpoint_every=5"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while _steps(run) < 6 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read()
        for argv in (["train", "vision", *SMALL, "--out", str(run), "--set", "train.seed=1"],
                     ["train", "--resume", str(run), "--quiet"]):
            code, err = cli(capsys, *argv)
            assert code != 0 and f"e2e process {proc.pid} is training it" in err, err
            assert len(err.strip().splitlines()) == 1
        assert "seed: 0" in (run / "config.yaml").read_text()  # the second run wrote nothing
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (run / ".lock").read_text().strip() == str(proc.pid)  # a dead process's lock
    (run / "checkpoints" / ".last.pt.deadbeef.tmp").write_bytes(b"half a checkpoint")
    code, err = cli(capsys, "train", "--resume", str(run), "--quiet", "--set", "train.epochs=2")
    assert code == 0, err
    assert not list((run / "checkpoints").glob(".*.tmp"))  # leftovers of the kill removed
    assert (run / ".lock").read_text().strip() == str(os.getpid())


class LockProbeTask(BlobsTask):
    """Tries to open its own run directory for writing in the middle of training."""

    out: Path
    refused = ""

    def loss(self, model, batch, cfg, info):
        if self.steps == 5:
            try:
                with RunDir(self.out).writer(resume=True):
                    pass
            except E2EError as e:
                self.refused = str(e)
        return super().loss(model, batch, cfg, info)


def test_fit_holds_the_run_for_the_whole_run(tmp_path):
    task = LockProbeTask()
    task.out = tmp_path / "r"
    fit(task, blobs_config(epochs=1), task.out, quiet=True)
    assert f"process {os.getpid()} is training it" in task.refused
    with RunDir(task.out).writer(resume=True):  # released at the end
        pass


def test_writer_refuses_while_held(tmp_path):
    run = RunDir(tmp_path / "r")
    with run.writer():
        with pytest.raises(E2EError, match=f"process {os.getpid()} is training it"):
            with RunDir(tmp_path / "r").writer(resume=True):
                pass
    (run.path / "checkpoints").mkdir()
    leftovers = [run.path / "checkpoints/.last.pt.a1b2c3.tmp",
                 run.path / ".model.safetensors.x.tmp"]
    for p in leftovers:
        p.write_bytes(b"half written")
    (run.path / "checkpoints/keep.pt").write_bytes(b"not a temporary file")
    with run.writer(resume=True):  # released: free again, and the leftovers are gone
        assert not any(p.exists() for p in leftovers)
        assert (run.path / "checkpoints/keep.pt").exists()


# ---- 7. temporary files, umask, --resume --set ----------------------------------------------

@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_checkpoints_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        save_checkpoint({"w": torch.zeros(2)}, tmp_path / "c.pt")
    finally:
        os.umask(old)
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == mode


def test_resume_set_is_recorded_and_leftovers_are_removed(run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    leftover = copy / "checkpoints" / ".last.pt.k3j4h5.tmp"
    leftover.write_bytes(b"x" * 1000)
    code, err = cli(capsys, "train", "--resume", str(copy), "--quiet", "--set", "train.epochs=2")
    assert code == 0, err
    assert not leftover.exists()
    assert re.search(r"^  epochs: 2$", (copy / "config.yaml").read_text(), re.M)
    results = json.loads((copy / "results.json").read_text())
    assert results["epochs"] == 2.0


# ---- issue 14, item 1: the report describes the model results.json measured ----------------

def test_report_agrees_with_results(run):
    """Every number in report.md agrees with results.json (vision, digits). Before, the
    per-class table came from the model in training mode (BatchNorm on batch statistics)."""
    results = json.loads((run / "results.json").read_text())
    report = (run / "report.md").read_text()
    table = dict(re.findall(r"^\| ([^|]+?) \| ([-0-9.e]+) \|$", report, re.M))
    for key, value in results.items():
        if key in table:
            assert float(table[key]) == pytest.approx(value, abs=5e-5), key
    assert "test/accuracy" in table
    per_class = re.findall(r"^\| (\d+) \| ([0-9.]+) \| (\d+) \|$", report, re.M)
    assert len(per_class) == 10
    for name, acc, _ in per_class:  # the per-class table is results.json's, to 4 places
        assert float(acc) == pytest.approx(results[f"test/class_accuracy/{name}"], abs=5e-5)
    n = sum(int(count) for _, _, count in per_class)
    correct = sum(float(acc) * int(count) for _, acc, count in per_class)
    assert correct / n == pytest.approx(results["test/accuracy"], abs=1e-3)


# ---- 1 and 6. the demo server: nothing echoed becomes markup; bounded pixels, time, decodes --

MARK = "<img src=x onerror=alert(1)>"
CLASSES = ["<svg onload=alert(2)>", "plain", "quote\"'<b>"]
MARKUP = re.compile(r"<img src=x|<svg onload|<b>")  # the names above, had they become tags


def request(url: str, fields: dict[str, tuple[str, bytes, str]] | None = None,
            timeout: float = 60) -> tuple[int, str, str]:
    """GET, or a multipart POST of (filename, content, content type) per field:
    (status, content type, body text)."""
    data, headers = None, {}
    if fields is not None:
        boundary = uuid.uuid4().hex
        data = b""
        for name, (filename, content, ctype) in fields.items():
            data += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                     f"filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n").encode()
            data += content + b"\r\n"
        data += f"--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    req = urllib.request.Request(url, data=data, headers=headers,
                                 method="POST" if fields is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("content-type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read().decode()


def png(width: int, height: int, mode: str = "L") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, (width, height), 90).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> Path:
    """A vision run whose directory and class names are markup, as a careless or hostile
    user could name folders."""
    from PIL import Image

    root = tmp_path_factory.mktemp("hostile")
    g = torch.Generator().manual_seed(0)
    for c, name in enumerate(CLASSES):
        (root / "images" / name).mkdir(parents=True)
        for i in range(16):
            pixels = (torch.rand(8, 8, generator=g) * 80 + 80 * c).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(root / "images" / name / f"{i}.png")
    out = root / MARK
    e2e.train("vision", data=str(root / "images"), out=out, quiet=True,
              overrides=["train.epochs=1", "train.batch_size=8", "model.widths=[8,8]",
                         "data.image_size=8", "data.channels=1"])
    return out


@pytest.fixture(scope="module")
def hostile_server(hostile_run):
    with serve_process(str(hostile_run), "--timeout", "1") as (url, _):
        yield url


def test_nothing_echoed_is_markup(hostile_server):
    url = hostile_server
    if True:
        index = request(url + "/")
        name = re.search(r'href="/m/([^"]+)"', index[2])[1]
        good = png(8, 8)
        api = f"{url}/api/{name}"
        answers = {
            "index": index,
            "page": request(f"{url}/m/{name}"),
            "404 page": request(f"{url}/m/{urllib.parse.quote(MARK)}"),
            "404 api": request(f"{url}/api/{urllib.parse.quote(MARK)}",
                               {"file": ("a.png", good, "image/png")}),
            "415 filename": request(api, {"file": (MARK + ".png", b"text", "text/plain")}),
            "415 type": request(api, {"file": ("a.png", good, "image/<svg onload=alert(3)>")}),
            "400 filename": request(api, {"file": (MARK + ".png", good[:30], "image/png")}),
            "413 pixels": request(api, {"file": (MARK + ".png", png_header(12_000, 12_000),
                                                 "image/png")}),
            "answer": request(api, {"file": (MARK + ".png", good, "image/png")}),
        }
        for what, (_, _, body) in answers.items():
            assert not MARKUP.search(body), (what, body)
        assert answers["404 page"][0] == 404 and "text/html" in answers["404 page"][1]
        assert "&lt;img src=x onerror=alert(1)&gt;" in answers["404 page"][2]
        assert "&lt;svg onload=alert(2)&gt;" in answers["page"][2]
        assert "&lt;img src=x onerror=alert(1)&gt;" in answers["page"][2]  # the run's path
        assert [s for s, _, _ in answers.values()] == [200, 200, 404, 404, 415, 415, 400, 413,
                                                       200]
        top = json.loads(answers["answer"][2])["answer"]["top"]  # JSON parsers see the names
        assert {t["label"] for t in top} == set(CLASSES)
        assert "megapixels" in json.loads(answers["413 pixels"][2])["error"]


def test_half_open_connections_time_out(hostile_server):
    import socket

    url = hostile_server
    if True:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            started, data = time.time(), b""
            while chunk := s.recv(4096):
                data += chunk
            assert time.time() - started < 5
        assert data.startswith(b"HTTP/1.1 408")
        assert request(url + "/healthz")[0] == 200


def closed_within(sock, seconds: float) -> bool:
    """True once the server has closed `sock` (whatever it sent first), within `seconds`."""
    deadline = time.time() + seconds
    try:
        while time.time() < deadline:
            sock.settimeout(max(0.1, deadline - time.time()))
            if not sock.recv(4096):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    finally:
        sock.close()
    return False


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    kb = {k: int(v.split()[0]) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(.+)$", status, re.M)}
    return kb["VmRSS"] / 1024, kb["VmHWM"] / 1024


@pytest.mark.slow
def test_memory_stays_bounded_under_load(hostile_run):
    """The issue's load: ten 144-megapixel PNGs (a few hundred KB each) five at a time, then
    ten 12-megapixel photos-to-be five at a time, then 20 half-open connections; the server
    keeps answering and its peak memory grows by less than `ceiling_mb`: 2 decoders of at most
    16 MP (RGB, then the model's grayscale copy) and the server's buffers. Before the limits,
    the 144 MP uploads alone took the server from 0.38 to 1.64 GB."""
    from concurrent.futures import ThreadPoolExecutor

    ceiling_mb = 400
    bomb, photo = png(12_000, 12_000, "1"), png(4_000, 3_000, "RGB")
    with serve_process(str(hostile_run), "--timeout", "2") as (url, proc):
        name = re.search(r'href="/m/([^"]+)"', request(url + "/")[2])[1]
        api = f"{url}/api/{name}"
        assert request(api, {"file": ("warm.png", png(8, 8), "image/png")})[0] == 200
        baseline, _ = rss_mb(proc.pid)
        latencies: list[float] = []
        stop = False

        def probe():
            while not stop:
                started = time.time()
                assert request(url + "/healthz", timeout=10)[0] == 200
                latencies.append(time.time() - started)
                time.sleep(0.2)

        with ThreadPoolExecutor(6) as pool:
            prober = pool.submit(probe)
            bombs = list(pool.map(lambda _: request(api, {"file": ("b.png", bomb, "image/png")}),
                                  range(10)))
            after_bombs = rss_mb(proc.pid)[1]
            photos = list(pool.map(lambda _: request(api, {"file": ("p.png", photo,
                                                                    "image/png")}), range(10)))
            stop = True
            prober.result()
        assert [s for s, _, _ in bombs] == [413] * 10
        assert [s for s, _, _ in photos] == [200] * 10
        import socket

        port = int(url.rsplit(":", 1)[1])
        sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        for s in sockets:
            s.sendall(b"POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab")
        assert all(closed_within(s, 6) for s in sockets)  # the body never came: closed
        assert request(url + "/healthz")[0] == 200
        _, peak = rss_mb(proc.pid)
        print(f"server memory: baseline {baseline:.0f} MB, peak {after_bombs:.0f} MB after the "
              f"144 MP uploads, {peak:.0f} MB after all; healthz "
              f"latency max {max(latencies):.2f}s over {len(latencies)} probes")
        assert after_bombs - baseline < 50  # refused by their headers: nothing decoded
        assert peak - baseline < ceiling_mb
        assert max(latencies) < 5


# ==== Issue 38: no false messages, no foreign folders, signed metadata, fair server =========

def mounted_tmpfs(path: Path, size: str) -> bool:
    """A real tiny file system at `path` (needs root; False where it cannot be mounted)."""
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def fill_up(folder: Path) -> None:
    """Write a filler file into `folder` until its file system is full."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)


# ---- 1. disk full before the first checkpoint: no checkpoint claimed, no --resume offered ----

def test_disk_full_before_the_first_checkpoint_offers_no_resume(tmp_path):
    mnt = tmp_path / "small"
    if not mounted_tmpfs(mnt, "256k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:  # the command, with a model whose checkpoint (~1 MB) cannot fit
        proc = run_cli("train", "vision", "--data", "digits", "--quiet", "--out",
                       str(mnt / "run"), "--set", "train.max_steps=24", "train.batch_size=64",
                       "train.checkpoint_every=2", "model.widths=[32,64]", check=False)
        err = proc.stderr
        assert proc.returncode == 1 and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, err
        assert "no space left on the device" in err and "before the first checkpoint" in err
        assert "--resume" not in err and "intact" not in err, err
        assert not (mnt / "run/checkpoints/last.pt").exists()
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_disk_full_after_a_checkpoint_names_it_and_the_resume(run, tmp_path, capsys,
                                                              monkeypatch):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    real_fsync = os.fsync
    calls = []

    def full_after_config(fd):  # config.yaml is written, then the disk is full
        calls.append(fd)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", full_after_config)
    code, err = cli(capsys, "train", "--resume", str(copy), "--quiet", "--set", "train.epochs=3")
    monkeypatch.undo()
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert f"the last checkpoint {copy / 'checkpoints/last.pt'} is intact" in err
    assert f"e2e train --resume {copy}" in err


# ---- 2. another tool's folder is never taken for an e2e run ---------------------------------

FOREIGN = {  # what other tools leave in their run folders
    "checkpoints/best.pt": "w",
    ".lock": "1234\n",
    "config.yaml": "mine\n",
    "metrics.csv": "epoch,loss\n1,0.5\n",
}


@pytest.mark.parametrize("names", [["checkpoints/best.pt"], [".lock"], ["config.yaml"],
                                   ["config.yaml", "checkpoints/best.pt", ".lock",
                                    "metrics.csv"]])
def test_a_foreign_folder_is_not_taken_for_a_run(names, tmp_path, capsys):
    theirs = tmp_path / "u"
    for name in names:
        (theirs / name).parent.mkdir(parents=True, exist_ok=True)
        (theirs / name).write_text(FOREIGN[name])
    assert not RunDir(theirs).is_run()
    code, err = cli(capsys, "train", "vision", *SMALL, "--out", str(theirs))
    assert code == 1 and "is not an e2e run and is not empty" in err, err
    for name in names:  # nothing of theirs touched, nothing of ours added
        assert (theirs / name).read_text() == FOREIGN[name]
    assert sorted(str(p.relative_to(theirs)) for p in theirs.rglob("*") if p.is_file()) == \
        sorted(names)


def test_runs_are_told_by_their_marker_or_their_config(run, tmp_path):
    assert RunDir(run).is_run() and (run / ".e2e-run").exists()
    old = tmp_path / "old"  # a run of an e2e before the marker: an e2e config and metrics
    shutil.copytree(run, old)
    (old / ".e2e-run").unlink()
    assert RunDir(old).is_run()
    (old / "config.yaml").write_text("task: not-an-application\n")
    assert not RunDir(old).is_run()


# ---- 3. config.yaml written atomically; a damaged one is refused, not replaced by defaults ---

def test_config_yaml_survives_a_full_disk_whole(tmp_path):
    from e2e.tasks import default_config

    mnt = tmp_path / "small"
    if not mounted_tmpfs(mnt, "64k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        cfg = default_config("vision")
        cfg.save(mnt / "config.yaml")
        before = (mnt / "config.yaml").read_text()
        fill_up(mnt)
        cfg.data.source = "x" * 9000  # needs more pages than the old file frees
        with pytest.raises(OSError) as e:
            cfg.save(mnt / "config.yaml")
        assert e.value.errno == errno.ENOSPC and e.value.filename == str(mnt / "config.yaml")
        assert (mnt / "config.yaml").read_text() == before  # old file whole, no torn mix
        assert sorted(p.name for p in mnt.iterdir()) == ["config.yaml", "filler"]
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


@pytest.mark.parametrize("content, says", [
    ("", "is empty"),
    ("\n  \n", "is empty"),
    ("task: [unclosed\n", "cannot read"),
    (b"\xff\xfe\x00garbage", "cannot read"),
    ("- a list\n", "is not an e2e config"),
    ("train:\n  epochs: 3\n", "names no known application"),
    ("task: chess\n", "names no known application"),
])
def test_resume_refuses_a_damaged_config(content, says, run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    metrics = (copy / "metrics.csv").read_text()
    path = copy / "config.yaml"
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    code, err = cli(capsys, "train", "--resume", str(copy), "--quiet")
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f"{path} (the run's settings) {says}" in err or \
        f"cannot read {path} (the run's settings)" in err, err
    assert (copy / "metrics.csv").read_text() == metrics  # nothing trained with defaults


# ---- 4. resuming a finished run keeps one set of test/* rows -------------------------------

def _test_rows(run: Path) -> list[str]:
    return [line.split(",")[3] for line in (run / "metrics.csv").read_text().splitlines()[1:]
            if line.split(",")[3].startswith("test/")]


def test_resuming_a_finished_run_keeps_one_set_of_test_rows(run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    once = _test_rows(copy)
    assert once and len(once) == len(set(once))
    for extra in ([], ["--set", "train.epochs=2"]):  # finished as it is; then made longer
        code, err = cli(capsys, "train", "--resume", str(copy), "--quiet", *extra)
        assert code == 0, err
        assert sorted(_test_rows(copy)) == sorted(once)
    results = json.loads((copy / "results.json").read_text())
    rows = {line.split(",")[3]: float(line.split(",")[4]) for line in
            (copy / "metrics.csv").read_text().splitlines()[1:]}
    assert rows["test/accuracy"] == pytest.approx(results["test/accuracy"], abs=1e-5)


# ---- 5. one line, not a traceback: architecture changes on resume; CLI numbers -------------

def test_resume_with_another_architecture_is_one_line(run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    config = (copy / "config.yaml").read_text()
    code, err = cli(capsys, "train", "--resume", str(copy), "--quiet", "--set",
                    "model.widths=[8,8,8,8]")
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "do not fit the model the config builds" in err and "differ in shape" in err, err
    assert (copy / "config.yaml").read_text() == config  # the --set was not recorded


@pytest.mark.parametrize("argv, says", [
    (["predict", "RUN", "IMG", "--top-k", "-1"], "--top-k must be a finite number at least 1"),
    (["predict", "RUN", "IMG", "--top-k", "0"], "--top-k must be a finite number at least 1"),
    (["export", "RUN", "--tolerance", "nan"], "--tolerance must be a finite number"),
    (["export", "RUN", "--tolerance", "-1"], "--tolerance must be a finite number"),
    (["serve", "RUN", "--port", "70000"], "--port must be a finite number in [0, 65535]"),
    (["serve", "RUN", "--max-upload-mb", "inf"], "--max-upload-mb must be a finite number"),
    (["train", "vision", "--nproc", "-2"], "--nproc must be a finite number at least 0"),
])
def test_command_line_numbers_are_range_checked(argv, says, run, tmp_path, capsys):
    img = tmp_path / "x.png"
    img.write_bytes(png(8, 8))
    argv = [{"RUN": str(run), "IMG": str(img)}.get(a, a) for a in argv]
    code, err = cli(capsys, *argv)
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert says in err, err
    assert not (run / "export").exists()


@pytest.mark.parametrize("argv, says", [
    (["drive", "RUN", "--max-steps", "0"], "argument --max-steps: must be at least 1, got 0"),
    (["drive", "RUN", "--workers", "-1"], "argument --workers: must be at least 1, got -1"),
    (["data", "driving", "--out", "OUT", "--noise", "nan"], "argument --noise: must be at least 0"),
    (["transcribe", "RUN", "a.wav", "--threads", "-3"], "argument --threads: must be at least 0"),
    (["data", "speech-synth", "--out", "OUT", "--flite", "1.5"],
     "argument --flite: must be in [0, 1], got 1.5"),
    (["data", "speech-synth", "--out", "OUT", "--n", "ten"],
     "argument --n: expected a whole number, got 'ten'"),
    (["translate", "RUN", "hi", "--beam", "0"], "argument --beam: must be at least 1, got 0"),
    (["robustness", "RUN", "--limit", "-5"], "argument --limit: must be at least 0, got -5"),
])
def test_application_command_numbers_are_checked_where_declared(argv, says, tmp_path, capsys):
    argv = [{"RUN": str(tmp_path / "run"), "OUT": str(tmp_path / "out")}.get(a, a) for a in argv]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err and says in err, err
    assert not (tmp_path / "out").exists()  # refused before anything ran


# ---- 7. model.safetensors: metadata under the checksum; labels printed as plain text -------

def _edit(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert data.count(old) == 1
    path.write_bytes(data.replace(old, new))


@pytest.mark.parametrize("old, new", [  # as they stand in the header: JSON inside JSON
    (rb'\"classes\": [\"0\"', rb'\"classes\": [\"X\"'),  # a class name
    (rb'\"source\": \"digits\"', rb'\"source\": \"zigits\"'),  # data.source
])
def test_edited_weights_metadata_is_refused(old, new, run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    _edit(copy / "model.safetensors", old, new)
    img = tmp_path / "x.png"
    img.write_bytes(png(8, 8))
    code, err = cli(capsys, "predict", str(copy), str(img))
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "model.safetensors is corrupt" in err and "metadata" in err, err


def test_a_label_cannot_rewrite_the_terminal(tmp_path, capsys):
    from PIL import Image

    classes = ["\x1b[2J\x1b[31mred", "line\nbreak"]  # folder names can hold both
    g = torch.Generator().manual_seed(0)
    for c, name in enumerate(classes):
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(12):
            pixels = (torch.rand(8, 8, generator=g) * 80 + 120 * c).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(tmp_path / "images" / name / f"{i}.png")
    out = tmp_path / "run"
    e2e.train("vision", data=str(tmp_path / "images"), out=out, quiet=True,
              overrides=["train.epochs=1", "train.batch_size=8", "model.widths=[8,8]",
                         "data.image_size=8", "data.channels=1"])
    capsys.readouterr()
    assert main(["predict", str(out), str(tmp_path / "images/line\nbreak/0.png"),
                 "--top-k", "2"]) == 0
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and len(shown.strip().splitlines()) == 1, shown
    assert "\\x1b[2J\\x1b[31mred" in shown and "line\\nbreak" in shown


# ---- 8. one bad input among good ones: the good answered, the bad named --------------------

def test_predict_answers_the_good_files_and_names_the_bad(run, tmp_path, capsys):
    good, bad = tmp_path / "ok.png", tmp_path / "corrupt.png"
    good.write_bytes(png(8, 8))
    bad.write_bytes(png(8, 8)[:40])
    missing = tmp_path / "missing.png"
    code = main(["predict", str(run), str(good), str(bad), str(missing)])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    assert out.startswith(f"{good}: ") and len(out.strip().splitlines()) == 1, out
    assert f"cannot read image {bad}" in err and f"{missing} does not exist" in err, err
    assert "2 of 3 inputs could not be answered" in err
    assert "skip_bad" not in err
    code = main(["predict", str(run), str(good), str(bad), "--json"])
    answers = json.loads(capsys.readouterr().out)
    assert code == 1 and [a["input"] for a in answers] == [str(good), str(bad)]
    assert "top" in answers[0] and "cannot read image" in answers[1]["error"]


# ---- 9. one pixel limit for the CLI and the server ------------------------------------------

def test_predict_refuses_images_over_the_pixel_limit_before_decoding(run, tmp_path, capsys):
    from e2e.data.images import MAX_PIXELS
    from e2e.serve.app import Limits

    assert Limits().max_pixels == MAX_PIXELS == 16_000_000  # one limit, shared
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(12_000, 12_000))  # 144 MP in a few hundred bytes
    started = time.time()
    code, err = cli(capsys, "predict", str(run), str(bomb))
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert f"image {bomb} is 12000 x 12000 pixels (144.0 megapixels); the limit is 16 " \
           "megapixels" in err
    assert time.time() - started < 10  # refused by its header: nothing decoded


# ---- 10. export manifests stay in their folder; non-UTF-8 text gets 400 --------------------

@pytest.mark.parametrize("name", ["../../outside.onnx", "/etc/passwd", "sub/classifier.onnx",
                                  ".."])
def test_export_manifest_names_stay_in_the_export_folder(name, exported, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(exported, copy)
    manifest = json.loads((copy / "export/manifest.json").read_text())
    manifest["graphs"]["classifier"]["onnx"]["file"] = name
    (copy / "export/manifest.json").write_text(json.dumps(manifest))
    img = tmp_path / "x.png"
    img.write_bytes(png(8, 8))
    code, err = cli(capsys, "predict", str(copy), str(img), "--backend", "onnx")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert f"names the graph file {name!r}, which is not a file name inside the export " \
           "folder" in err, err


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory) -> Path:
    from e2e.export import export_run

    copy = tmp_path_factory.mktemp("exported") / "run"
    shutil.copytree(run, copy)
    export_run(copy, ["onnx"], quiet=True)
    return copy


def test_text_demo_answers_non_utf8_with_400(tmp_path):
    from test_text import TINY, write_copy_tsv

    e2e.train("text", data=str(write_copy_tsv(tmp_path / "copy.tsv", n=200)),
              out=tmp_path / "copy", quiet=True,
              overrides=[*TINY, "train.max_steps=2", "train.eval_every=2"])
    with serve_process(str(tmp_path / "copy")) as (url, _):
        status, _, body = request(f"{url}/api/copy", {"text": ("latin1.txt",
                                                                "caf\xe9".encode("latin-1"),
                                                                "text/plain")})
        assert status == 400, body
        assert json.loads(body)["error"] == ("latin1.txt is not UTF-8 text (byte 0xe9 at offset "
                                             "3); send the text as UTF-8")
        assert request(url + "/healthz")[0] == 200


# ---- 6. the demo server: security headers on every answer; one client cannot block others ---

HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY",
           "referrer-policy": "no-referrer"}


def raw_http(port: int, data: bytes, source: str = "127.0.0.1", timeout: float = 10
             ) -> tuple[int, dict[str, str], bytes]:
    """Send `data` on a fresh connection from `source` (any 127.x address is this machine);
    (status, headers, body) of the answer, status 0 if the server closed without one."""
    import socket

    with socket.socket() as s:
        s.bind((source, 0))
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        answer = b""
        try:
            s.sendall(data)
            while chunk := s.recv(65536):
                answer += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 "):
        return 0, {}, answer
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def form(field: str, filename: str, content: bytes, ctype: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n").encode() + content + \
        f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post_raw(path: str, body: bytes, ctype: str, chunked: bool = False) -> bytes:
    if chunked:
        body = b"".join(b"%x\r\n" % len(body[i:i + 65536]) + body[i:i + 65536] + b"\r\n"
                        for i in range(0, len(body), 65536)) + b"0\r\n\r\n"
        length = b"Transfer-Encoding: chunked"
    else:
        length = b"Content-Length: %d" % len(body)
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n".encode() + length
            + b"\r\nConnection: close\r\n\r\n" + body)


@pytest.fixture(scope="module")
def digits_server(run):
    with serve_process(str(run), "--timeout", "2") as (url, _):
        yield int(url.rsplit(":", 1)[1])


def test_every_answer_carries_the_security_headers(digits_server, run):
    port = digits_server
    api = f"/api/{run.name}"
    big, ctype = form("file", "big.png", b"\0" * (3 * 2**20), "image/png")
    answers = {
        "page": raw_http(port, f"GET /m/{run.name} HTTP/1.1\r\nHost: x\r\n"
                               "Connection: close\r\n\r\n".encode()),
        "healthz": raw_http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close"
                                  b"\r\n\r\n"),
        "404": raw_http(port, b"GET /m/nothing HTTP/1.1\r\nHost: x\r\nConnection: close"
                              b"\r\n\r\n"),
        "413 by length": raw_http(port, post_raw(api, big, ctype)),
        "413 chunked": raw_http(port, post_raw(api, big, ctype, chunked=True)),
        "415": raw_http(port, post_raw(api, *form("file", "a.txt", b"text", "text/plain"))),
        "400": raw_http(port, post_raw(api, *form("file", "a.png", b"\x89PNG", "image/png"))),
        "200": raw_http(port, post_raw(api, *form("file", "a.png", png(8, 8), "image/png"))),
    }
    statuses = {what: status for what, (status, _, _) in answers.items()}
    assert statuses == {"page": 200, "healthz": 200, "404": 404, "413 by length": 413,
                        "413 chunked": 413, "415": 415, "400": 400, "200": 200}
    for what, (_, headers, _) in answers.items():
        for name, value in HEADERS.items():
            assert headers.get(name) == value, (what, headers)
        csp = headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, (what, csp)
    assert b"upload too large" in answers["413 chunked"][2]


def test_one_client_cannot_block_the_others(digits_server):
    """One address (127.0.0.2) opens 40 idle connections, then 20 that send half a request
    and stall: its own are cut off or refused (503, with the headers), while /healthz from
    another address (127.0.0.1) is answered at once throughout."""
    import socket

    port = digits_server
    healthz = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

    def answered_quickly() -> bool:
        started = time.time()
        status, _, _ = raw_http(port, healthz, timeout=5)
        return status == 200 and time.time() - started < 1

    hog: list[socket.socket] = []
    try:
        for _ in range(40):
            hog.append(socket.create_connection(("127.0.0.1", port), source_address=(
                "127.0.0.2", 0)))
        assert answered_quickly()
        stalled = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the end of the headers
            stalled.append(s)
            hog.append(s)
        time.sleep(0.3)
        assert answered_quickly()
        status, headers, body = raw_http(port, b"GET / HTTP/1.1\r\nHost: x\r\n",
                                         source="127.0.0.2", timeout=5)
        assert status == 503 and b"too many connections from your address" in body
        assert headers.get("x-content-type-options") == "nosniff"
        assert sum(closed_within(s, 4) for s in stalled) == len(stalled)  # all cut off
        assert answered_quickly()
        for _ in range(3):
            assert raw_http(port, healthz, source="127.0.0.2")[0] == 200  # the hog, served
    finally:
        for s in hog:
            s.close()


def test_a_driving_recording_shorter_than_the_warm_up_is_refused(tmp_path, capsys):
    # the first steps (the camera zooming in) are never recorded: 30 steps would write no frame
    code, err = cli(capsys, "data", "driving", "--out", str(tmp_path / "out"), "--seeds", "0",
                    "--max-steps", "30")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "--max-steps 30 records no frame" in err, err
    assert not (tmp_path / "out").exists()
