"""Named recipes, shipped in the package: `recipes/<app>/<name>.yaml`.

An application's default config (its dataclasses) IS its measured recipe; a named recipe is a
YAML overlay on it that holds only what differs, each value with a one-line why, and its
first comment line says what it is for (`e2e config --list` shows it). `--config NAME` finds
the application's recipe by name; a path (a YAML file or a run directory) that exists wins.
Nothing here imports torch.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from e2e.errors import E2EError

ROOT = Path(__file__).parent


def names(app: str) -> list[str]:
    """The application's named recipes, sorted."""
    return sorted(p.stem for p in (ROOT / app).glob("*.yaml"))


def apps() -> list[str]:
    """The applications that ship named recipes."""
    return sorted(p.name for p in ROOT.iterdir() if p.is_dir() and any(p.glob("*.yaml")))


def describe(path: Path) -> str:
    """A recipe's first comment line: what it is for."""
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return ""


def listing() -> list[tuple[str, str, str]]:
    """(application, recipe name, description) for every named recipe."""
    return [(app, name, describe(ROOT / app / f"{name}.yaml"))
            for app in apps() for name in names(app)]


def find(config: str | Path, app: str | None = None) -> Path:
    """The file `--config` means: an existing path as given, else the application's recipe
    of that name (`bible`, or `bible.yaml`). Without `app`, a name must be unique."""
    path = Path(config).expanduser()
    if path.exists():
        return path
    text = str(config)
    name = text.removesuffix(".yaml").removesuffix(".yml")
    if "/" not in text and "\\" not in text:  # a name, not a path
        owners = [a for a in ([app] if app else apps()) if name in names(a)]
        if len(owners) == 1:
            return ROOT / owners[0] / f"{name}.yaml"
        if len(owners) > 1:
            raise E2EError(f"recipe '{name}' exists for several applications "
                           f"({', '.join(owners)}): name one, e.g. e2e train {owners[0]} "
                           f"--config {name}")
    raise E2EError(_unknown(text, name, app))


def _unknown(text: str, name: str, app: str | None) -> str:
    stem = Path(name).name  # configs/text/bible.yaml (the old place) -> bible
    candidates = {(a, n) for a in ([app] if app else apps()) for n in names(a)}
    close = difflib.get_close_matches(stem, [n for _, n in candidates], n=1, cutoff=0.6)
    hint = f" Did you mean --config {close[0]}?" if close else ""
    if app:
        known = ", ".join(names(app)) or "none"
        return f"no config file or {app} recipe named '{text}'.{hint} {app}'s recipes: {known}"
    known = ", ".join(f"{a}/{n}" for a, n in sorted(candidates))
    return f"no config file or recipe named '{text}'.{hint} Recipes: {known}"
