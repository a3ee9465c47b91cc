"""One settings object: every PLAYGROUND_* variable is read in playground/settings.py only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from playground import settings
from playground.errors import PlaygroundError

ROOT = Path(__file__).resolve().parents[2]


def test_no_module_reads_playground_variables_itself():
    readers = []
    for path in [*ROOT.glob("playground/**/*.py"), ROOT / "app.py"]:
        if path.name == "settings.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if re.search(r"environ(\.get)?\s*[\[(]\s*[\"']PLAYGROUND_", line) or "getenv(\"PLAYGROUND_" in line:
                readers.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not readers, "read these through playground.settings:\n" + "\n".join(readers)


def test_the_readme_lists_every_variable_with_its_default():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, (variable, default, _) in settings.FIELDS.items():
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{variable}`")), None)
        assert row is not None, f"README: no row for {variable}"
        shown = {True: "1", False: "0"}.get(default, default) if isinstance(default, bool) else default
        assert f"`{shown if shown != '' else '(unset)'}`" in row or (default == "" and "(unset)" in row), row


def test_environment_then_flags():
    environ = {"PLAYGROUND_QUEUE_WAIT": "7.5", "PLAYGROUND_BATCHING": "0", "PLAYGROUND_DEVICE": "cuda",
               "PLAYGROUND_LAB_DECODERS": "3"}
    built = settings.Settings.from_environment(environ, device="cpu")
    assert (built.queue_wait, built.batching, built.device, built.lab_decoders) == (7.5, False, "cpu", 3)
    assert settings.Settings.from_environment({}) == settings.Settings()
    with pytest.raises(PlaygroundError, match="PLAYGROUND_MAX_BATCH='many' is not a valid value"):
        settings.Settings.from_environment({"PLAYGROUND_MAX_BATCH": "many"})


def test_current_follows_the_environment(monkeypatch):
    first = settings.current()
    assert settings.current() is first  # built once while nothing changes
    monkeypatch.setenv("PLAYGROUND_FAULT_INJECTION", "forward:every=3")
    assert settings.current().fault_injection == "forward:every=3"
    monkeypatch.delenv("PLAYGROUND_FAULT_INJECTION")
    assert settings.current().fault_injection == ""
