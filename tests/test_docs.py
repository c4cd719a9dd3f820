"""The documentation stays honest: the README is short and starts with the two commands a
newcomer runs (the second is what CI runs), every relative link resolves, every number in the
README's results table is one of bench/RESULTS.md's, RESULTS.md holds only script-written
sections, and no lab notes ("not adopted") sit in the package or its recipes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "bench" / "RESULTS.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))

TRAIN_COMMAND = ("bash setup.sh && .venv/bin/e2e train vision --set train.epochs=6 "
                 "--out runs/fashion-mnist")
TEST_COMMAND = "bash setup.sh && .venv/bin/python -m pytest -q"


def code_blocks(text: str) -> list[str]:
    return re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)


def without_code(text: str) -> str:
    """The prose of a Markdown file: fenced blocks and inline code removed."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def test_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= 160, f"README.md has {len(lines)} lines; move reference to docs/"


def test_readme_starts_with_the_two_commands():
    text = README.read_text()
    first = code_blocks(text)[0]
    assert text.index("```") < text.index("\n## "), "the commands come before any section"
    commands = [line.split("#")[0].strip() for line in first.splitlines() if line.strip()]
    assert commands == [TRAIN_COMMAND, TEST_COMMAND]


def test_ci_runs_the_readmes_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert TEST_COMMAND in [line.split("#")[0].strip() for line in ci]


def link_targets(path: Path) -> list[str]:
    prose = without_code(path.read_text())
    return re.findall(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", prose)


@pytest.mark.parametrize("page", [README, *DOCS, ROOT / "bench" / "NOTES.md", RESULTS],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_files_that_exist(page: Path):
    if not page.exists():
        pytest.fail(f"{page.relative_to(ROOT)} is missing")
    broken = []
    for target in link_targets(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a web address, or an anchor in the same page
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {broken}"


def test_the_docs_pages_exist_and_the_readme_links_them():
    names = {p.name for p in DOCS}
    for page in ("vision", "speech", "text", "driving", "configuration", "http-api",
                 "environment", "architecture", "running"):
        assert f"{page}.md" in names
    linked = {Path(t).name for t in link_targets(README) if t.startswith("docs/")}
    assert names <= linked, f"docs pages the README does not link: {sorted(names - linked)}"


def results_table(text: str) -> str:
    section = text.split("\n## Results", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("|"))


def decimals(text: str) -> list[str]:
    return re.findall(r"(?<![\w.])\d+\.\d+(?!\d|\.\d)", text)


def test_every_number_in_the_readmes_results_is_one_of_results_md():
    measured = [float(x) for x in decimals(RESULTS.read_text())]
    table = results_table(README.read_text())
    assert table, "README.md has a results table under '## Results'"
    missing = []
    for quoted in decimals(table):
        x, half = float(quoted), 0.5 * 10.0 ** -len(quoted.split(".")[1]) + 1e-9
        # the same number, rounded, or a fraction quoted as a percentage
        if not any(abs(y - x) <= half or abs(100 * y - x) <= half for y in measured):
            missing.append(quoted)
    assert not missing, f"README results not found in bench/RESULTS.md: {missing}"


def test_results_md_holds_only_script_written_sections():
    text = RESULTS.read_text()
    assert "kept by hand" not in text.lower()
    writers = set()
    for script in (ROOT / "bench").glob("*.py"):
        code = script.read_text()
        writers |= set(re.findall(r"write_section\(\s*\"([\w-]+)\"", code))
        # a script naming its sections by recipe declares their prefix: SECTION = "name"
        writers |= set(re.findall(r"^SECTION = \"([\w-]+)\"", code, re.M))
    tree = ast.parse((ROOT / "bench" / "results.py").read_text())
    header = next(ast.literal_eval(node.value) for node in tree.body
                  if isinstance(node, ast.Assign)
                  and getattr(node.targets[0], "id", None) == "HEADER")
    outside = text
    for name in re.findall(r"<!-- ([\w-]+):start -->", text):
        assert name in writers, f"section '{name}' of RESULTS.md is written by no bench script"
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        assert end in text, f"section '{name}' has no end marker"
        outside = outside[:outside.index(start)] + outside[outside.index(end) + len(end):]
    assert outside.strip() == header.strip(), (
        "RESULTS.md holds text outside the script-written sections (move notes to "
        f"bench/NOTES.md): {outside.replace(header, '').strip()[:200]!r}")


def test_no_lab_notes_in_the_package_or_its_recipes():
    found = []
    for folder in (ROOT / "src", ROOT / "configs"):
        for path in folder.rglob("*") if folder.exists() else ():
            if path.is_file() and path.suffix in (".py", ".yaml", ".yml", ".md", ".txt"):
                if "not adopted" in path.read_text(errors="replace").lower():
                    found.append(str(path.relative_to(ROOT)))
    assert not found, f"lab notes ('not adopted') belong in bench/NOTES.md: {found}"
