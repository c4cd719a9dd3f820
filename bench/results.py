"""Write one benchmark's section of bench/RESULTS.md, leaving the other sections alone.

    from results import write_section
    write_section("vision", text)  # replaces <!-- vision:start --> ... <!-- vision:end -->
"""

from __future__ import annotations

import fcntl
import platform
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = ("# Benchmark results\n\nEach section is written by the script named in it; rerun the "
          "command to reproduce. Sections are independent.\n")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from e2e.engine.trainer import cpu_has_amx

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    isa = torch.backends.cpu.get_cpu_capability().replace("AVX512", "AVX-512")
    isa += ", AMX" if cpu_has_amx() else ", no AMX"
    return (f"{cpu} ({isa}), {torch.get_num_threads()} threads, {gpu}; torch {torch.__version__}; "
            f"{time.strftime('%Y-%m-%d')}")


def write_section(name: str, body: str) -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    with open(RESULTS, "a+") as f:  # lock: several benchmarks may finish at once
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        text = f.read() or HEADER
        if start in text and end in text:
            text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
        f.seek(0)
        f.truncate()
        f.write(text)
