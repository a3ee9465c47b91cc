"""Page bench: how responsive the sampling lab stays in Chromium while "Generate N" streams.

Starts the real app twice on loopback ports: once drawing the distribution chart with every token
(`PLAYGROUND_PLOT_INTERVAL=0`, how the lab streamed before) and once with the default pacing (the
chart at most every 0.5 s; the text, numbers and token list still follow every token). In each, a
headless Chromium page runs greedy "Generate N" (N = `--tokens`) and measures, while it streams:
- the page's animation frames over `--window` seconds, twice (early and late in the stream):
  frames per second and the p50/p90/max gap between frames (a gap is time the page could not paint
  or take a click);
- how long a click on Stop takes to land (Playwright waits until the page can take it).
Then "Draw K samples" (K x length = `--samples`, default 64 x 100): seconds until the view shows
step `--samples-step`, the frames from there, and the Stop click. Its figures from before the
running views were made light are in bench/results/page-cpu-run2.json's notes (the app has no
switch back to the old views).

JSON: both runs side by side, and `frames_per_s_x` (paced over every-token) for each window.
Usage: `.venv/bin/python bench/bench_page.py [--tokens 200] [--window 4]`.
What it leaves out: server-side speed (bench_speed, bench_load); other tabs (only the sampling lab
streams charts).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import CHROMIUM, CHROMIUM_ARGS, set_number, start_app, stop_app  # noqa: E402

TOKENS = "#sampling-generated .gen-tok"
FRAMES_JS = """(seconds) => new Promise(resolve => {
  const gaps = []; let last = performance.now(); const end = last + seconds * 1000;
  function frame(now) { gaps.push(now - last); last = now; if (now < end) requestAnimationFrame(frame); else resolve(gaps); }
  requestAnimationFrame(frame); })"""


def frame_stats(gaps: list[float], seconds: float) -> dict:
    ordered = sorted(gaps)
    return {"frames_per_s": round(len(gaps) / seconds, 1), "gap_p50_ms": round(ordered[len(ordered) // 2]),
            "gap_p90_ms": round(ordered[int(len(ordered) * 0.9)]), "gap_max_ms": round(ordered[-1])}


def open_lab(browser, url: str, greedy: bool, present: bool = False):
    """A new page on the sampling lab with the default prompt's distribution shown (in presenter
    mode at 1280x720, device scale 1.5, with `present`)."""
    if present:
        context = browser.new_context(viewport={"width": 1280, "height": 720}, device_scale_factor=1.5)
    else:
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(600_000)
    page.goto(url + ("?present=1" if present else ""))
    page.get_by_role("tab", name="Sampling lab").click()
    if greedy:
        page.locator("#sampling-preset-greedy").click()
    page.locator("#sampling-show").click()
    page.locator("#sampling-dist-plot .js-plotly-plot").wait_for()
    return context, page


def measure(browser, interval: str, tokens: int, window: float, present: bool = False) -> dict:
    url, process = start_app({"PLAYGROUND_PLOT_INTERVAL": interval}, log_name=f"bench-page-{interval}.log")
    try:
        context, page = open_lab(browser, url, greedy=True, present=present)
        set_number(page, "sampling-n", tokens)
        page.locator("#sampling-generate").click()
        windows = {}
        for at in (8, tokens // 2):
            page.wait_for_function(f"(n) => document.querySelectorAll('{TOKENS}').length >= n", arg=at)
            windows[f"from_token_{at}"] = frame_stats(page.evaluate(FRAMES_JS, window), window)
        started = time.perf_counter()
        page.locator("#sampling-stop-generate").click()
        click_s = time.perf_counter() - started
        context.close()
        return {"plot_interval_s": float(interval), "presenter_mode": present, "windows": windows,
                "stop_click_s": round(click_s, 2)}
    finally:
        stop_app(process)


def measure_samples(browser, k: int, length: int, window: float, at_step: int) -> dict:
    """ "Draw K samples": seconds until step `at_step` shows, frames over `window` from there, and
    how long a click on Stop takes to land."""
    url, process = start_app(log_name="bench-page-samples.log")
    try:
        context, page = open_lab(browser, url, greedy=False)
        page.get_by_text("Many samples: K continuations").click()
        set_number(page, "sampling-k", k)
        set_number(page, "sampling-length", length)
        started = time.perf_counter()
        page.locator("#sampling-samples").click()
        page.wait_for_function("""(n) => { const m = document.querySelector('#sampling-samples-view')?.innerText
                                  .match(/step (\\d+) of/); return m && +m[1] >= n; }""", arg=at_step)
        reached_s = time.perf_counter() - started
        frames = frame_stats(page.evaluate(FRAMES_JS, window), window)
        started = time.perf_counter()
        page.locator("#sampling-stop-samples").click()
        click_s = time.perf_counter() - started
        context.close()
        return {"k": k, "length": length, f"seconds_to_step_{at_step}": round(reached_s, 1),
                f"frames_from_step_{at_step}": frames, "stop_click_s": round(click_s, 2)}
    finally:
        stop_app(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--window", type=float, default=4.0)
    parser.add_argument("--samples", type=int, nargs=2, default=[64, 100], metavar=("K", "LENGTH"))
    parser.add_argument("--samples-step", type=int, default=10, help="measure from this samples step on")
    parser.add_argument("--only-samples", action="store_true", help="skip the Generate N comparison")
    parser.add_argument("--only-generate", action="store_true", help="skip Draw K samples")
    parser.add_argument("--present", action="store_true", help="presenter mode at 1280x720, device scale 1.5")
    parser.add_argument("--paced", default="0.5", help="the paced run's PLAYGROUND_PLOT_INTERVAL")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        report = {"bench": "page", "model": "default (sampling lab)"}
        if not args.only_generate:
            report["samples"] = measure_samples(browser, *args.samples, args.window, args.samples_step)
        if not args.only_samples:
            every = measure(browser, "0", args.tokens, args.window, args.present)
            paced = measure(browser, args.paced, args.tokens, args.window, args.present)
            ratios = {name: round(paced["windows"][name]["frames_per_s"]
                                  / max(every["windows"][name]["frames_per_s"], 0.1), 1) for name in every["windows"]}
            report.update({"tokens": args.tokens, "chart_every_token": every, "chart_paced": paced,
                           "frames_per_s_x": ratios,
                           "stop_click_x": round(every["stop_click_s"] / max(paced["stop_click_s"], 0.01), 1)})
        browser.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
