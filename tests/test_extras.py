"""A vision-only install: `e2e train vision` works without any application's extra, and the
other applications name the extra they need."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from e2e.extras import EXTRAS

ROOT = Path(__file__).resolve().parent.parent
# Everything the extras install, less scipy (scikit-learn, a core dependency, needs it too).
ABSENT = sorted(set(EXTRAS) - {"scipy"})

SCRIPT = """
import sys
for name in {absent!r}:
    sys.modules[name] = None  # as if not installed: `import name` raises ImportError
from e2e.cli import main
out = sys.argv[1]
rc = main(["train", "vision", "--data", "digits", "--out", out, "--quiet", "--device", "cpu",
           "--set", "train.max_steps=2", "--set", "model.widths=[8,8]",
           "--set", "model.stem_pool=false"])
assert rc == 0, rc
from PIL import Image
Image.new("L", (8, 8), 255).save(out + "/x.png")
assert main(["predict", out, out + "/x.png"]) == 0
print("VISION OK", flush=True)
for app in ("text", "speech-mfcc"):
    print(app, "exit", main(["train", app, "--out", out + "-" + app, "--quiet"]), flush=True)
"""


def test_vision_trains_and_predicts_without_any_extra(tmp_path):
    env = {**os.environ, "E2E_DATA": str(tmp_path / "data")}  # speech would render here
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(absent=ABSENT),
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=300,
                          env=env)
    assert "VISION OK" in proc.stdout, proc.stderr[-3000:]
    # the others stop with one line naming their extra, not a traceback
    assert "text exit 0" not in proc.stdout and "speech-mfcc exit 0" not in proc.stdout
    assert 'pip install "e2e[text]"' in proc.stderr
    assert 'pip install "e2e[speech]"' in proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_extra_module_belongs_to_a_declared_extra():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = meta["optional-dependencies"]
    assert set(EXTRAS.values()) <= set(extras)
    assert {"speech", "text", "driving", "serve", "all"} <= set(extras)
    core = " ".join(meta["dependencies"]).lower()
    for heavy in ("librosa", "gymnasium", "box2d", "tokenizers", "fastapi", "onnx"):
        assert heavy not in core, f"{heavy} is a core dependency; it belongs in an extra"
    listed = " ".join(extras["all"])
    for name in extras:
        if name not in ("all", "dev", "bench"):
            assert name in listed, f"e2e[all] lacks the {name} extra"
