"""Presenter mode: large type and high contrast for a projector, results kept in sight, shortcuts.

A toggle in the header, or `present=1` in the URL (`playground.ui.links` sets it from a link),
puts the class `playground-present` on the page. Under it: the base type is 20 px and Gradio's text
sizes grow with it (token chips, tables, labels), the page uses the full width, the header is one
line, and every Plotly chart's text is raised to at least `CHART_FONT_PX` as it is drawn (the
charts are built once, for both modes, by `playground.plots`; here their fonts are raised in the
page, and the chart's height grows in proportion so rows keep their spacing).

Results come into view as they arrive: the result a link or a tab's first visit asked for is
scrolled to once it is drawn, and in presenter mode again whenever it changes while it is not
fully visible (never while the presenter is typing). Keyboard shortcuts (listed in the app, see
`SHORTCUTS`) press the selected tab's buttons; they never fire while a text box has the focus.

What it leaves out: the tabs' layouts (each tab module) and which result a link shows (links).
"""

from __future__ import annotations

CHART_FONT_PX = 20

# (keys, what it does, the button's elem_id): only the selected tab's buttons are on the page.
SHORTCUTS = (
    ("n", "Sampling lab: next token", "sampling-next"),
    ("u", "Sampling lab: undo the last token", "sampling-undo"),
    ("g", "Sampling lab: generate N tokens", "sampling-generate"),
    ("→", "Beam search: replay one step forward", "beam-step-forward"),
    ("←", "Beam search: replay one step back", "beam-step-back"),
    ("p", "Presenter mode on / off", "presenter-toggle"),
)


def shortcuts_markdown() -> str:
    rows = "\n".join(f"| `{keys}` | {what} |" for keys, what, _ in SHORTCUTS)
    return ("**Keyboard shortcuts** (when no text box has the focus)\n\n| key | does |\n|---|---|\n" + rows)


CSS = """
#app-header { align-items: center; gap: 0.5rem; flex-wrap: nowrap; }
#app-title h1 { margin: 0; font-size: 1.6rem; white-space: nowrap; }
#app-title p { margin: 0; }
#status-line { font-size: 0.95rem; }
#status-line p { margin: 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
#link-notice { border-left: 4px solid #b45309; padding-left: 0.6rem; }
.lecture-index { font-size: 1.1rem; }
.lecture-index h3 { margin: 1rem 0 0.3rem; }
.lecture-index li { margin: 0.25rem 0; }
.lecture-index .demo-needs { color: #8a4b00; font-size: 0.95em; }
.lecture-index a.demo-link { font-weight: 700; }
html.playground-present { font-size: 20px; }
html.playground-present body {
  --text-xxs: 14px; --text-xs: 16px; --text-sm: 18px; --text-md: 20px; --text-lg: 22px; --text-xl: 26px;
  --text-xxl: 30px; --block-label-text-size: 18px; --block-info-text-size: 17px; --block-title-text-size: 20px;
  --section-header-text-size: 20px; --button-large-text-size: 20px; --button-small-text-size: 18px;
  --input-text-size: 20px; --body-text-color: #000; --body-text-color-subdued: #222;
}
html.playground-present .gradio-container { max-width: 100% !important; padding: 0 8px !important; }
html.playground-present .app-intro { display: none; }
html.playground-present #app-title h1 { font-size: 1.3rem; }
html.playground-present #status-line { font-size: 16px; }
html.playground-present .gr-group, html.playground-present .block { border-color: #555; }
/* A result panel never grows past the screen: long text scrolls inside it, the panel stays in view. */
html.playground-present #chat-base-column, html.playground-present #chat-chat-column,
html.playground-present #chat-raw-column, html.playground-present #chat-templated-column,
html.playground-present #chat-base-conversation, html.playground-present #chat-template-view,
html.playground-present #chat-loss-view, html.playground-present #tok-view, html.playground-present #tok-bytes,
html.playground-present #tok-alternatives, html.playground-present #tok-compare, html.playground-present #tok-bpe,
html.playground-present #sampling-generated, html.playground-present #inside-card,
html.playground-present #fim-parts, html.playground-present #fim-psm {
  max-height: calc(100vh - 40px); overflow-y: auto;
}
"""

HEAD = """
<script>
(() => {
  const FLOOR = %(floor)d;
  const root = document.documentElement;
  const presenting = () => root.classList.contains('playground-present');
  const setPresent = (on) => {
    root.classList.toggle('playground-present', !!on);
    document.body && document.body.classList.toggle('playground-present', !!on);
    const url = new URL(window.location.href);
    if (on) url.searchParams.set('present', '1'); else url.searchParams.delete('present');
    window.history.replaceState(null, '', url.toString());
    document.querySelectorAll('.js-plotly-plot').forEach((gd) => { gd.__presented = null; raise(gd); });
    const box = document.querySelector('#presenter-toggle input');
    if (box && box.checked !== !!on) box.checked = !!on;
  };
  window.playgroundSetPresent = setPresent;
  if (new URLSearchParams(window.location.search).get('present') === '1') root.classList.add('playground-present');

  // Raise every font of a chart to FLOOR px (a relayout/restyle on the chart itself, once per drawn layout).
  const small = (size) => size === undefined || size === null || size < FLOOR;
  // The chart's height: its layout's, or what Plotly drew (Gradio sometimes hands over a layout whose
  // height is unset while the chart is drawn at the figure's height).
  const drawnHeight = (gd) => gd.layout.height || (gd._fullLayout && gd._fullLayout.height) || 0;
  // The most a chart may be tall: the screen less its block's label and buttons (at least 320 px).
  const room = (gd) => {
    const block = gd.closest('.block');
    const extra = Math.max(56, block ? block.offsetHeight - gd.offsetHeight : 0);
    return Math.round(Math.max(320, window.innerHeight - extra - 8));
  };
  const raise = (gd) => {
    if (!presenting() || !window.Plotly || !gd.layout || gd.__presented === gd.layout) return;
    const layout = {}, layoutFonts = [];
    const walk = (obj, path) => {
      if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return;
      for (const [key, value] of Object.entries(obj)) {
        if (/font$/.test(key) && value && typeof value === 'object') {
          if (small(value.size)) { layout[path + key + '.size'] = Math.max(FLOOR, value.size || 0); layoutFonts.push(value.size || 12); }
        } else if (key !== 'template' && value && typeof value === 'object' && !Array.isArray(value)) {
          walk(value, path + key + '.');
        }
      }
    };
    walk(gd.layout, '');
    if (!gd.layout.font || small(gd.layout.font.size)) { layout['font.size'] = FLOOR; layoutFonts.push((gd.layout.font || {}).size || 12); }
    (gd.layout.annotations || []).forEach((a, i) => { if (small((a.font || {}).size)) { layout['annotations[' + i + '].font.size'] = FLOOR; layoutFonts.push((a.font || {}).size || 12); } });
    // Larger tick labels need room: axes push their titles out (automargin), colour bars put theirs aside.
    for (const key of Object.keys(gd.layout)) {
      if (/^[xy]axis\d*$/.test(key) && gd.layout[key] && gd.layout[key].visible !== false) layout[key + '.automargin'] = true;
    }
    for (const key of Object.keys(gd.layout)) {
      if (/^coloraxis\d*$/.test(key)) layout[key + '.colorbar.title.side'] = 'right';
    }
    const smallest = Math.min(12, ...layoutFonts);
    // Taller in proportion to the fonts, but never taller than the screen: a result must fit in view.
    const drawn = drawnHeight(gd);
    if (drawn) {
      const grown = drawn * Math.min(1.6, Math.max(1, FLOOR / Math.max(smallest, 14)));
      layout.height = Math.max(320, Math.min(Math.round(grown), room(gd)));
    }
    const traces = [], data = { 'textfont.size': [], constraintext: [] };
    (gd.data || []).forEach((trace, i) => {
      // A heatmap's cell text is sized to its cells: raising it would spill it over the neighbours.
      if (trace.type !== 'heatmap' && (trace.text !== undefined || trace.texttemplate) && small((trace.textfont || {}).size)) {
        traces.push(i); data['textfont.size'].push(FLOOR);
        data.constraintext.push('none');  // a bar's label keeps its size instead of shrinking to the bar
      }
    });
    gd.__presented = gd.layout;
    const relayout = () => Object.keys(layout).length ? window.Plotly.relayout(gd, layout) : null;
    if (traces.length) window.Plotly.restyle(gd, data, traces).then(relayout); else relayout();
  };
  const follow = () => {
    const id = window.playgroundFollow;
    const el = id && document.getElementById(id);
    if (!el || !presenting() || el.offsetParent === null) return;
    const active = document.activeElement;
    if (active && /INPUT|TEXTAREA/.test(active.tagName)) return;
    const box = el.getBoundingClientRect();
    if (box.top < 0 || box.bottom > window.innerHeight) el.scrollIntoView({ block: box.height > window.innerHeight ? 'start' : 'nearest' });
  };
  // A chart still taller than the screen once drawn (its layout came without a height, its first
  // fitting measured the block before it had its label and buttons, or the window changed) is fitted again.
  const fit = (gd) => {
    if (!presenting() || gd.__fitting || gd.offsetParent === null) return;
    const most = room(gd);
    if (Math.max(drawnHeight(gd), gd.offsetHeight) <= most + 2) return;
    if (gd.__fittedLayout === gd.layout && gd.__fittedRoom === most) return;  // tried already: never a loop
    gd.__fittedLayout = gd.layout; gd.__fittedRoom = most;
    gd.__fitting = true;
    Promise.resolve(window.Plotly.relayout(gd, { height: most })).finally(() => { gd.__fitting = false; });
  };
  setInterval(() => {
    document.querySelectorAll('.js-plotly-plot').forEach((gd) => {
      if (!gd.__presenterBound && typeof gd.on === 'function') {
        gd.__presenterBound = true;
        gd.on('plotly_afterplot', () => raise(gd));
      }
      raise(gd);
      if (gd.__presented === gd.layout) fit(gd);
    });
  }, 250);
  // The presenter scrolling (wheel, touch, keys) ends the following: the page never fights them.
  const letGo = () => { window.playgroundFollow = null; };
  window.addEventListener('wheel', letGo, { passive: true });
  window.addEventListener('touchmove', letGo, { passive: true });
  document.addEventListener('keydown', (e) => { if (/Page|Home|End|Arrow(Up|Down)/.test(e.key)) letGo(); });
  const observer = new MutationObserver(() => { if (window.playgroundFollow) window.requestAnimationFrame(follow); });
  const start = () => {
    document.body.classList.toggle('playground-present', presenting());
    observer.observe(document.body, { childList: true, subtree: true, characterData: true });
  };
  if (document.body) start(); else document.addEventListener('DOMContentLoaded', start);

  // Keyboard shortcuts: press the selected tab's button (never while typing).
  const keys = %(keys)s;
  document.addEventListener('keydown', (event) => {
    const t = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (t && (/INPUT|TEXTAREA|SELECT/.test(t.tagName) || t.isContentEditable)) return;
    const key = event.key === 'ArrowRight' ? '→' : event.key === 'ArrowLeft' ? '←' : event.key.toLowerCase();
    const id = keys[key];
    if (!id) return;
    if (id === 'presenter-toggle') { setPresent(!presenting()); event.preventDefault(); return; }
    const el = document.getElementById(id);
    if (!el || el.offsetParent === null) return;
    (el.tagName === 'BUTTON' ? el : (el.querySelector('button') || el)).click();
    event.preventDefault();
  });

  // A demo link keeps presenter mode.
  document.addEventListener('click', (event) => {
    const a = event.target.closest && event.target.closest('a.demo-link');
    if (!a || !presenting()) return;
    const url = new URL(a.href, window.location.href);
    url.searchParams.set('present', '1');
    a.href = url.toString();
  }, true);
})();
</script>
"""


def head() -> str:
    import json

    keys = {key: elem_id for key, _what, elem_id in SHORTCUTS}
    return HEAD % {"floor": CHART_FONT_PX, "keys": json.dumps(keys)}


TOGGLE_JS = "(on) => { window.playgroundSetPresent && window.playgroundSetPresent(on); return []; }"
