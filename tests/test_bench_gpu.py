"""bench/gpu.sh, the GPU benchmark, kept from rotting on machines without a GPU."""

import re
import subprocess
from pathlib import Path

import pytest

from e2e.config import apply_override
from e2e.tasks import default_config

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "gpu.sh"


def test_gpu_script_parses_and_every_setting_it_uses_exists():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    text = SCRIPT.read_text()
    # the settings of each application's runs, as written in the script's arrays
    blocks = {"vision": ["VISION", "DEV", "STREAM", "STREAM_PREP"],
              "speech": ["SPEECH", "DEV", "TIMED"],
              "text": ["TEXT", "DEV", "TIMED"], "driving": ["DRIVE", "DEV", "TIMED"]}
    for task, arrays in blocks.items():
        cfg = default_config(task)
        settings = []
        for name in arrays:
            for body in re.findall(rf"\b{name}\+?=\(([^)]*)\)", text):
                settings += re.findall(r"--set\s+(\S+)", body)
        assert settings, task
        for item in settings:
            item = item.replace("$STEPS", "10").replace("$WARM", "2").replace('"', "")
            item = re.sub(r"\$\w+", "x", item)
            key, value = item.split("=", 1)
            if value == "x":  # a path or count filled in at run time
                value = "1" if key.endswith((".n", "n_val", "n_test")) else "some/path"
            apply_override(cfg, f"{key}={value}")  # raises on an unknown key or a bad type


@pytest.mark.slow
def test_gpu_script_tiny_mode_runs_on_cpu(tmp_path):
    proc = subprocess.run(["bash", str(SCRIPT), "--tiny"], env={
        "PATH": "/usr/bin:/bin", "OUT": str(tmp_path), "OMP_NUM_THREADS": "1"},
        capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = (tmp_path / "summary.md").read_text()
    for app in ("speech", "text", "driving", "vision, streamed from disk"):
        steps = float(re.search(rf"\| {app} \| ([\d.]+) \|", summary).group(1))
        assert steps > 0, summary
    assert summary.count("`e2e train vision --set train.epochs=") == 2
