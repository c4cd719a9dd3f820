"""e2e works outside its checkout: build the wheel, install it into a fresh venv, and run the
README's commands in miniature from a folder that is not the checkout.

Runs in CI (not marked slow). It borrows the dependencies (torch and the rest) from the
project's own venv instead of installing them again; everything e2e itself needs, the
recipes and the demo server's templates included, must come from the wheel.
"""

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
from conftest import free_port
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "e2e"
TINY_TEXT = ["train.max_steps=5", "train.eval_every=5", "train.batch_size=8",
             "data.limit=400", "data.vocab_size=400", "data.val_decode=4", "data.test_limit=8",
             "model.d_model=32", "model.ff=64", "model.beam=1", "model.max_len=48",
             "data.max_source_tokens=32", "data.max_target_tokens=32", "train.device=cpu"]


def build_wheel(out: Path) -> Path:
    """The wheel of a snapshot of the sources (a copy: building in the checkout would leave
    build/ and egg-info there, and the tree may change under a running build)."""
    src = out / "src-copy"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "src", src / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(out / "dist"), str(src)], check=True)
    return next((out / "dist").glob("e2e-*.whl"))


def fresh_venv(path: Path, wheel: Path) -> Path:
    """A venv holding only the wheel; returns its bin/ folder."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                    "--no-deps", "--no-index", "--quiet", str(wheel)], check=True)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # The dependencies (torch alone is gigabytes, and this machine may be offline) come from
    # the project's venv: a .pth line appends its site-packages to sys.path, after the wheel's
    # own. Only directories are added: the checkout's editable-install hook (a .pth inside
    # that folder) is not run, so `import e2e` can only find the wheel.
    borrowed = [p for p in site.getsitepackages() if p.startswith(sys.prefix)] or \
        [sysconfig.get_paths()["purelib"]]
    Path(purelib, "borrowed-deps.pth").write_text("\n".join(borrowed) + "\n")
    return path / "bin"


def test_the_wheel_works_outside_the_checkout(tmp_path):
    started = time.time()
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [p.relative_to(PACKAGE.parent).as_posix()
               for folder in (PACKAGE / "recipes", PACKAGE / "serve" / "templates")
               for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert any(n.endswith(".yaml") for n in shipped) and any(n.endswith(".html") for n in shipped)
    missing = [n for n in shipped if n not in names]
    assert not missing, f"the wheel lacks {missing}"

    bin_dir = fresh_venv(tmp_path / "venv", wheel)
    work = tmp_path / "elsewhere"  # outside the checkout: no configs/, no src/
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", OMP_NUM_THREADS="1",
               E2E_DATA=str(tmp_path / "data"))

    def e2e(*args: str) -> str:
        proc = subprocess.run([str(bin_dir / "e2e"), *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"e2e {' '.join(args)}:\n{proc.stdout[-2000:]}\n" \
                                     f"{proc.stderr[-3000:]}"
        return proc.stdout

    where = subprocess.run([str(bin_dir / "python"), "-c", "import e2e; print(e2e.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(tmp_path / "venv")), where.stdout  # the wheel's e2e

    listing = e2e("config", "--list")
    assert "text bible" in listing and "vision accurate" in listing

    # the README's text commands: a packaged recipe found by name, trained for 5 steps
    e2e("train", "text", "--config", "bible", "--set", *TINY_TEXT, "--out", "runs/bible",
        "--quiet")
    cfg = (work / "runs" / "bible" / "config.yaml").read_text()
    assert "source: bible-en-es" in cfg and "encoder_layers: 2" in cfg  # the recipe's values

    # vision on scikit-learn's digits with a named recipe, then evaluate, predict, export
    e2e("train", "vision", "--data", "digits", "--config", "accurate", "--set",
        "train.epochs=1", "model.widths=[8,16]", "train.batch_size=64", "--out", "runs/digits",
        "--quiet")
    assert "test/accuracy" in e2e("evaluate", "runs/digits")
    Image.fromarray((np.eye(8)[::-1] * 255).astype(np.uint8)).save(work / "seven.png")
    answer = json.loads(e2e("predict", "runs/digits", "seven.png", "--json"))
    assert len(answer) == 1
    e2e("export", "runs/digits", "--format", "onnx")
    assert any((work / "runs" / "digits").rglob("*.onnx"))

    # the demo page renders the wheel's templates
    port = free_port()
    server = subprocess.Popen([str(bin_dir / "e2e"), "serve", "runs/digits", "--port", str(port)],
                              cwd=work, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        page = None
        for _ in range(300):
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.2)
        assert page and b"digits" in page
    finally:
        server.terminate()
        server.wait(timeout=20)

    report = e2e("compare", "vision", "--quick", "--data", "digits", "--out", "runs/compare",
                 "--set", "model.widths=[8,16]", "train.batch_size=64")
    assert "| end to end (CNN) |" in report and "| stepwise: HOG + logistic regression |" in report
    assert time.time() - started < 300  # the whole test: about a minute here
