"""Presenter mode: large type and high contrast for a projector, results kept in sight, shortcuts.

A toggle in the header, or `present=1` in the URL (`playground.ui.link_wiring` sets it from a link),
puts the class `playground-present` on the page. Under it: the base type is 20 px and Gradio's text
sizes grow with it (token chips, tables, labels), the page uses the full width, the header is one
line, and every Plotly chart's text is raised to at least `CHART_FONT_PX` as it is drawn (the
charts are built once, for both modes, by `playground.plots`; here their fonts are raised in the
page, and the chart's height grows in proportion so rows keep their spacing).

Results come into view as they arrive: the result a link or a tab's first visit asked for is
scrolled to once it is drawn, and in presenter mode again whenever it changes while it is not
fully visible (never while the presenter is typing). Keyboard shortcuts (listed in the app, see
`SHORTCUTS`; "?" shows them over any tab) press the selected tab's buttons; they never fire while a text box has the focus (a
slider, checkbox or button with the focus is not typing: the shortcuts work after a slider was
moved, except the arrows, which move the focused slider). A page opened from a demo's link shows a
small "◀ previous · title · next ▶" bar in presenter mode ("[" and "]" too): the lecture's demos in
order, each opened in presenter mode.

The script is `assets/presenter.js` (`head()` puts it in the page with its settings);
`window.playgroundChartsSettled(root)` says whether every chart under `root` is drawn as presenter
mode wants it (the browser tests wait for it).

What it leaves out: the tabs' layouts (each tab module) and which result a link shows (links).
"""

from __future__ import annotations

from playground import lecture
from playground.ui import page_scripts

CHART_FONT_PX = 20

# (keys, what it does, the button's elem_id): only the selected tab's buttons are on the page.
SHORTCUTS = (
    ("n", "Sampling lab: next token", "sampling-next"),
    ("u", "Sampling lab: undo the last token", "sampling-undo"),
    ("g", "Sampling lab: generate N tokens", "sampling-generate"),
    ("→", "Beam search: replay one step forward", "beam-step-forward"),
    ("←", "Beam search: replay one step back", "beam-step-back"),
    ("p", "Presenter mode on / off", "presenter-toggle"),
    ("]", "Lecture demos: the next demo (from a demo's link)", "demo-next"),
    ("[", "Lecture demos: the previous demo", "demo-previous"),
    ("?", "Show or hide this list of shortcuts", "shortcuts-help"),
)

# a shortcut's button -> the block presenter mode brings to the top of the screen when it is pressed
# (Generate N: its row, with Stop, and the generated text right below it)
SHORTCUT_VIEWS = {"sampling-generate": "sampling-generate-row"}


def shortcuts_markdown() -> str:
    rows = "\n".join(f"| `{keys}` | {what} |" for keys, what, _ in SHORTCUTS)
    return ("**Keyboard shortcuts** (when no text box has the focus)\n\n| key | does |\n|---|---|\n" + rows)


CSS = """
#app-header { align-items: center; gap: 0.5rem; flex-wrap: nowrap; }
#app-title h1 { margin: 0; font-size: 1.6rem; white-space: nowrap; }
#app-title p { margin: 0; }
#status-line { font-size: 0.95rem; }
#status-line p { margin: 0; line-height: 1.25; }  /* wraps rather than cutting "2 models ready ..." */
/* the toggle takes its label's width, not a wide empty box */
#presenter-toggle { flex: 0 0 auto !important; width: auto !important; min-width: 0 !important; }
/* the link box appears once "Copy link" wrote a link: empty, it looked like an input to fill */
#link-output:has(textarea:placeholder-shown), #link-output:has(input:placeholder-shown) { display: none; }
/* "Models" opens over the page instead of pushing the tabs down */
#status-details-box { overflow: visible !important; position: relative; z-index: 60; }
#status-details-box > .label-wrap ~ div { position: absolute; right: 0; top: 100%; width: min(92vw, 720px);
  max-height: 70vh; overflow-y: auto; background: var(--background-fill-primary); border: 1px solid #888;
  border-radius: 6px; box-shadow: 0 8px 24px rgba(0, 0, 0, 0.25); padding: 0.5rem 1rem; }
#link-notice { border-left: 4px solid #b45309; padding-left: 0.6rem; }
.lecture-index { font-size: 1.1rem; }
.lecture-index h3 { margin: 1rem 0 0.3rem; }
.lecture-index li { margin: 0.25rem 0; }
.lecture-index .demo-needs { color: #8a4b00; font-size: 0.95em; }
.lecture-index .demo-poll { color: #1d4ed8; font-weight: 600; font-size: 0.95em; }
.lecture-index a.demo-link { font-weight: 700; }
/* on a projector the index is compact: titles only (the line is the link's hover text), two columns,
   about a screen and a half (it was 3,900 px long) */
html.playground-present .lecture-index { columns: 2; column-gap: 2.5rem; font-size: 16px; line-height: 1.28; }
html.playground-present .lecture-index .demo-line, html.playground-present .lecture-index .demo-needs,
html.playground-present .lecture-index .demo-tab-sep { display: none; }
html.playground-present .lecture-index h3 { margin: 0.3rem 0 0; font-size: 16px; break-after: avoid; }
html.playground-present .lecture-index ol { margin: 0; }
html.playground-present .lecture-index li { margin: 0; break-inside: avoid; }
html.playground-present .lecture-index .demo-poll { font-size: 15px; }
/* the previous / next demo bar (a demo's link in presenter mode) and the "?" list of shortcuts */
#demo-nav { position: fixed; right: 12px; bottom: 12px; z-index: 70; display: flex; gap: 6px; align-items: center;
  background: rgba(255, 255, 255, 0.95); border: 1px solid #888; border-radius: 8px; padding: 4px 8px;
  box-shadow: 0 4px 14px rgba(0, 0, 0, 0.2); font-size: 16px; max-width: 60vw; }
#demo-nav button { font-size: 16px; padding: 2px 10px; border: 1px solid #888; border-radius: 6px; background: #f3f4f6; }
#demo-nav button:disabled { opacity: 0.4; }
#demo-nav .demo-nav-title { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 36vw; }
#shortcuts-help { position: fixed; inset: 0; z-index: 80; background: rgba(0, 0, 0, 0.45); display: flex;
  align-items: center; justify-content: center; }
#shortcuts-help > div { background: #fff; color: #000; border-radius: 10px; padding: 1rem 1.5rem; font-size: 18px;
  max-height: 90vh; overflow-y: auto; }
#shortcuts-help kbd { border: 1px solid #888; border-radius: 4px; padding: 0 6px; font-family: monospace; }
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
  /* !important: Gradio's block style sets overflow visible, which let a long template spill 286 px
     over the "Loss mask" heading below it */
  max-height: calc(100vh - 40px); overflow-y: auto !important;
}
"""

def head() -> str:
    """The presenter script (`assets/presenter.js`) with its settings: the chart font floor, the
    shortcut keys (and what each does, for the "?" overlay) and the lecture's demos in order (for
    the previous / next demo controls)."""
    keys = {key: elem_id for key, _what, elem_id in SHORTCUTS}
    help_rows = [[key, what] for key, what, _ in SHORTCUTS]
    demos = [[demo.id, demo.title] for demo in lecture.DEMOS]
    settings = {"floor": CHART_FONT_PX, "keys": keys, "help": help_rows, "demos": demos, "views": SHORTCUT_VIEWS}
    return "\n".join([page_scripts.settings_tag("playgroundPresenterSettings", settings),
                      page_scripts.script_tag("presenter.js")])


TOGGLE_JS = "(on) => { window.playgroundSetPresent && window.playgroundSetPresent(on); return []; }"
