"""The page's JavaScript: every `assets/*.js` file parses (node's own parser, `node --check`), the
app's head carries each file whole, and every event's inline `js=` function (the glue that calls the
files' functions with its data) parses too.

What it leaves out: what the scripts do in a page (tests/browser/test_lecture_mode.py: presenter
mode, links, "Copy link", first visits, shortcuts).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "assets").glob("*.js"))


def node_check(source: str, tmp_path: Path, name: str = "script.js") -> subprocess.CompletedProcess:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: apt-get install -y nodejs (the page's scripts are checked with its parser)")
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return subprocess.run([node, "--check", str(path)], capture_output=True, text=True, timeout=120)


def test_the_checker_rejects_broken_javascript(tmp_path):
    result = node_check("(() => {\n  const x = ;\n", tmp_path)
    assert result.returncode != 0, "node --check accepted a broken script: the checks below would prove nothing"


def test_the_presenter_and_link_scripts_are_files():
    names = {path.name for path in SCRIPTS}
    assert {"presenter.js", "link_wiring.js"} <= names, names


@pytest.mark.parametrize("path", SCRIPTS, ids=[path.name for path in SCRIPTS])
def test_every_script_parses(path, tmp_path):
    result = node_check(path.read_text(encoding="utf-8"), tmp_path, path.name)
    assert result.returncode == 0, f"assets/{path.name} does not parse:\n{result.stderr}"


@pytest.mark.parametrize("path", SCRIPTS, ids=[path.name for path in SCRIPTS])
def test_the_app_head_carries_every_script_whole(path):
    from playground.ui.shell import launch_kwargs

    head = launch_kwargs()["head"]
    assert path.read_text(encoding="utf-8") in head, f"assets/{path.name} is not in the app's head as it is"


def test_every_event_js_parses(tmp_path):
    from playground.ui.shell import build_app

    config = build_app().get_config_file()
    functions = [dep["js"] for dep in config["dependencies"] if dep.get("js")]
    assert any("playgroundCopyLink" in js for js in functions) and any("playgroundVisit" in js for js in functions)
    # each as an expression (what Gradio does with it), one file for all of them
    source = "".join(f"const f{i} = (\n{js}\n);\n" for i, js in enumerate(functions))
    result = node_check(source, tmp_path, "events.js")
    assert result.returncode == 0, f"an event's js= does not parse:\n{result.stderr}"
