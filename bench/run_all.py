"""Run every benchmark in bench/ one after the other and save each JSON under artifacts/bench/.

Usage: `.venv/bin/python bench/run_all.py [names...]` (default: all). Each script's stdout (one JSON
document) is written to artifacts/bench/<name>.json; a summary of exit codes is printed at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["bench_foundation", "bench_tokenizer", "bench_sampling", "bench_beam", "bench_chat", "bench_speed", "bench_load", "bench_page"]


def main() -> None:
    names = sys.argv[1:] or SCRIPTS
    out = ROOT / "artifacts" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for name in names:
        result = subprocess.run([sys.executable, str(ROOT / "bench" / f"{name}.py")], cwd=ROOT, capture_output=True, text=True)
        (out / f"{name}.json").write_text(result.stdout)
        (out / f"{name}.log").write_text(result.stderr)
        summary[name] = {"exit": result.returncode, "json": str(out / f"{name}.json")}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
