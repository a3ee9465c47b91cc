"""Downloads in the page: every chart as PNG or SVG, and the data behind a view as CSV or JSON.

- Charts: `HEAD` puts a small "PNG · SVG" bar above every Plotly chart of the page (it looks for new
  charts every half second, once per chart block) whose buttons call Plotly's own image export,
  `Plotly.downloadImage`, at slide resolution: the chart as drawn on the page, scaled to
  `SLIDE_WIDTH` (1920) pixels wide, text and lines scaled with it, named after the chart's elem_id
  (or its label). The server is never asked.
- Data: `data_downloads(label, fn, inputs, filename_stem, elem_prefix)` lays out a small row
  "label: CSV · JSON" for one view. A click runs `fn(*inputs, fmt)` on the server (no queue, no
  model call beyond a cache miss: it reads the view's state), which returns the text
  (`playground.exports`); a `PlaygroundError` ("Show a distribution first") becomes a message
  beside the buttons (`common.user_errors` words it). The page then saves that text as a file from
  a Blob: nothing is written on the server. A CSV file starts with a UTF-8 byte-order mark, so
  spreadsheet programs read the token text right.

`CSS` styles both. What it leaves out: the tables themselves (`playground.exports`) and which view
offers which data (each tab's `build()`).
"""

from __future__ import annotations

import functools
import html
import json

import gradio as gr

from playground.exports import FORMATS, MEDIA_TYPES
from playground.ui.common import user_errors

SLIDE_WIDTH = 1920

# The text of the hidden box saved as a file in the browser (a Blob and an <a download>).
SAVE_JS = """
(text) => {
  if (typeof text !== 'string' || !text) return [];
  const parts = MEDIA === 'text/csv' ? ['\\ufeff', text] : [text];
  const url = URL.createObjectURL(new Blob(parts, { type: MEDIA + ';charset=utf-8' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = FILENAME;
  link.style.display = 'none';
  document.body.appendChild(link);
  link.click();
  setTimeout(() => { URL.revokeObjectURL(url); link.remove(); }, 2000);
  return [];
}
"""


def _save_js(filename: str, media_type: str) -> str:
    return SAVE_JS.replace("FILENAME", json.dumps(filename)).replace("MEDIA", json.dumps(media_type))


def _download(handler, fmt: str, *values):
    """(the text to save, "") or, when the view cannot be exported yet, ("", the message beside the buttons).

    Without the queue Gradio shows no message for an error (only a red badge on the hidden box), so
    the message is written next to the buttons instead."""
    try:
        return handler(*values, fmt), ""
    except gr.Error as exc:
        return "", f'<span class="data-downloads-note" role="status">{html.escape(str(exc.message))}</span>'


def data_downloads(label: str, fn, inputs: list, filename_stem: str, elem_prefix: str) -> dict:
    """A row "label: CSV · JSON" whose buttons download `fn(*inputs, fmt)` as `<filename_stem>.<fmt>`.

    Buttons `#<elem_prefix>-csv` and `#<elem_prefix>-json`; the text travels through the hidden
    textbox `#<elem_prefix>-data`; a message ("Run it first") appears in `#<elem_prefix>-note`.
    Returns {fmt: button}."""
    handler = user_errors(fn)
    with gr.Row(elem_classes=["data-downloads"], elem_id=f"{elem_prefix}-downloads"):
        gr.HTML(f'<span class="data-downloads-label">{html.escape(label)}:</span>', padding=False,
                container=False, scale=0, min_width=0, js_on_load=None)
        buttons = {fmt: gr.Button(fmt.upper(), size="sm", scale=0, min_width=64, elem_id=f"{elem_prefix}-{fmt}",
                                  elem_classes=["data-download"]) for fmt in FORMATS}
        note = gr.HTML("", padding=False, container=False, min_width=0, js_on_load=None, elem_id=f"{elem_prefix}-note",
                       elem_classes=["data-downloads-message"])
        text = gr.Textbox(visible="hidden", elem_id=f"{elem_prefix}-data")
    for fmt, button in buttons.items():
        button.click(functools.partial(_download, handler, fmt), inputs, [text, note], queue=False, api_name=False,
                     show_progress="hidden").success(
            None, text, None, js=_save_js(f"{filename_stem}.{fmt}", MEDIA_TYPES[fmt]))
    return buttons


CSS = """
.row.data-downloads { align-items: center; gap: 8px; flex-wrap: wrap; justify-content: flex-start; margin: 2px 0; }
.row.data-downloads > * { flex: 0 0 auto !important; width: auto !important; min-width: 0 !important; }
.row.data-downloads > .data-downloads-message { flex: 1 1 240px !important; }
.row.data-downloads > .form:has(> .hidden) { display: none !important; }
.data-downloads-label { color: var(--body-text-color-subdued); font-size: 0.95rem; white-space: nowrap; }
.data-downloads-note { color: #8a4b00; font-size: 0.95rem; }
.data-downloads button.data-download { flex: 0 0 auto; min-width: 64px; padding: 2px 12px; font-size: 0.9rem; }
.chart-export { display: flex; justify-content: flex-end; align-items: center; gap: 4px;
                margin: 2px 6px 2px auto; position: relative; z-index: 5; min-height: 26px; }
.chart-export-label { color: var(--body-text-color-subdued); font-size: 0.85rem; margin-right: 2px; }
.chart-export button { font-size: 0.85rem; line-height: 1.2; padding: 2px 10px; border-radius: 4px; cursor: pointer;
                       border: 1px solid var(--border-color-primary); background: var(--background-fill-primary);
                       color: var(--body-text-color); }
.chart-export button:hover { border-color: var(--color-accent); color: var(--color-accent); }
.block:not(:has(.js-plotly-plot)) > .chart-export { display: none; }
"""

# A "PNG · SVG" bar above every Plotly chart (once per chart block; charts arrive and are redrawn at any
# time, so it looks every half second); Plotly draws the file at SLIDE_WIDTH pixels wide.
HEAD = """
<script>
(() => {
  const WIDTH = SLIDE_WIDTH;
  const nameOf = (host) => {  // the chart's elem_id, else its label as a slug
    if (host.id) return host.id;
    const label = host.querySelector('[data-testid="block-label"]');
    const slug = (label ? label.textContent : '').trim().toLowerCase().replace(/[^a-z0-9]+/g, '-');
    return slug.replace(/^-+|-+$/g, '').slice(0, 60) || 'chart';
  };
  const save = (host, format) => {
    const gd = host.querySelector('.js-plotly-plot');
    if (!gd || !gd._fullLayout || !window.Plotly || !window.Plotly.downloadImage) return;
    const width = Math.max(1, Math.round(gd._fullLayout.width));
    const height = Math.max(1, Math.round(gd._fullLayout.height));
    window.Plotly.downloadImage(gd, { format, width, height, scale: WIDTH / width, filename: nameOf(host) });
  };
  const bar = (host) => {
    const div = document.createElement('div');
    div.className = 'chart-export';
    div.setAttribute('role', 'group');
    div.setAttribute('aria-label', 'Download this chart');
    const label = document.createElement('span');
    label.className = 'chart-export-label';
    label.textContent = 'chart:';
    div.appendChild(label);
    for (const format of ['png', 'svg']) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'chart-export-' + format;
      button.textContent = format.toUpperCase();
      button.setAttribute('aria-label', 'Download chart as ' + format.toUpperCase());
      button.title = 'Download this chart as ' + format.toUpperCase() + ' (' + WIDTH + ' pixels wide)';
      button.addEventListener('click', (event) => {
        event.preventDefault();
        event.stopPropagation();
        save(host, format);
      });
      div.appendChild(button);
    }
    return div;
  };
  const bind = () => document.querySelectorAll('.js-plotly-plot').forEach((gd) => {
    const host = gd.closest('.block') || gd.parentElement;
    if (!host || host.querySelector(':scope > .chart-export')) return;
    host.insertBefore(bar(host), host.firstChild);
  });
  setInterval(bind, 500);
})();
</script>
""".replace("SLIDE_WIDTH", str(SLIDE_WIDTH))
