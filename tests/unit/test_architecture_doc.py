"""ARCHITECTURE.md's module list matches the code: every module and package of `playground/` is
listed, nothing listed is gone, and every module of a subpackage is named in its package's entry."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "playground"


def _tree() -> str:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    return text.split("```", 2)[1]  # the first code block: the layout


def _listed_top_level() -> set[str]:
    """Names at the package's own level of the tree: two spaces in, `name.py` or `name/`."""
    return {m.group(1) for m in re.finditer(r"^  ([a-z_]+(?:\.py|/))\s", _tree(), re.M)}


def test_every_module_and_package_is_listed_and_nothing_listed_is_gone():
    actual = {p.name for p in PACKAGE.glob("*.py") if not p.name.startswith("__")}
    actual |= {f"{p.name}/" for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    listed = _listed_top_level()
    assert not actual - listed, f"ARCHITECTURE.md does not list: {sorted(actual - listed)}"
    assert not listed - actual, f"ARCHITECTURE.md lists what is not there: {sorted(listed - actual)}"


def test_every_module_of_a_subpackage_is_named_in_its_entry():
    tree = _tree()
    missing = []
    for package in sorted(p for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        start = re.search(rf"^  {package.name}/\s", tree, re.M)
        following = re.search(r"^(  [a-z_]+(?:\.py|/)|[a-z])", tree[start.end():], re.M) if start else None
        entry = tree[start.end(): start.end() + following.start()] if following else tree[start.end():] if start else ""
        for module in sorted(package.glob("*.py")):
            if module.name.startswith("__"):
                continue
            if not re.search(rf"\b{re.escape(module.stem)}\b", entry):
                missing.append(f"{package.name}/{module.name}")
    assert not missing, f"ARCHITECTURE.md's package entries do not name: {missing}"
