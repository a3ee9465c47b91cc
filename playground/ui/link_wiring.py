"""Deep links in the page: every tab's state into a URL ("Copy link"), and a URL back into the page.

Each tab's `build()` returns a `TabLink`: its link parameters, each bound to the component that
shows it (the kind, bounds, choices and default are read from the component), its actions (what
`run=` may ask for: buttons pressed in turn, each waiting for the previous one's result), the views
a link may bring into sight (`view=`), and aliases such as `preset=` that stand for several
parameters. `install` adds one page-load event: it reads the query (`?demo=<id>` expands to the
demo's query, `playground.lecture`), parses it per tab (`playground.link_query.parse`, which never
raises), sets the components, selects the tab, says in a notice what it could not use, and hands
the page a small plan: presenter mode, the buttons to press, the result to scroll into view.
Opening a tab for the first time without a link presses its default action, so every tab shows a
computed result for its defaults (on demand: nothing is computed at server start).

The "Copy link" button in the header writes the selected tab's state as a link (only the values
that differ from the defaults, so links stay short) and copies it to the clipboard.

The page's side (running a plan, first visits, "Copy link") is `assets/link_wiring.js`; here each event
calls it with its data. Every tab selection is counted on the page (`body[data-tab-visits]`), so a
test can wait for a tab's first visit to have been handled.

What it leaves out: the parameters themselves (each tab's module) and the demos (`playground.lecture`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

import gradio as gr

from playground import lecture, link_query
from playground.ui import page_scripts


@dataclass
class TabLink:
    """A tab's part in deep links.

    - `fields`: link parameter name -> the component that holds it.
    - `actions`: `run=` name -> steps, each (button elem_id, CSS selector(s) of the result to wait
      for before the next step, all of them); `default_run` is pressed on a first visit.
    - `views`: `view=` name -> elem_id of a result, or (elem_id, the closed accordion it is in, which
      a link opens); `default_view` is scrolled into view after a run.
    - `aliases`: parameter -> function(value) returning the parameters it stands for (None: unknown).
    - `visit_run`: what a first visit without a link presses (`default_run` unless set; None: nothing).
    - `states`: name -> a session's gr.State that other parts of the page read (a class room
      publishes the sampling lab's step from it).
    - `late`: parameters the tab applies itself once its action has run (the beam replay step, whose
      slider's range is known only then): name -> (Param, gr.State(LateValue()) the link fills,
      the component "Copy link" reads it from).
    - `copy_runs`: results "Copy link" keeps in the link when they are on the page: (run, view, CSS
      selector of the result), the first found wins (the Inside tab's logit lens: `run=lens&view=lens`).
    """

    tab: str
    fields: dict
    actions: dict = field(default_factory=dict)
    default_run: str | None = None
    views: dict = field(default_factory=dict)
    default_view: str | None = None
    aliases: dict[str, Callable[[str], dict | None]] = field(default_factory=dict)
    visit_run: str | None = "default"  # what a first visit presses ("default": `default_run`, None: nothing)
    late: dict = field(default_factory=dict)
    states: dict = field(default_factory=dict)  # session states other parts of the page read (the lab's)
    copy_runs: list = field(default_factory=list)  # (run, view, selector of its result) kept by Copy link

    def view_id(self, name: str | None) -> str | None:
        view = self.views.get(name)
        return view[0] if isinstance(view, tuple) else view

    def accordions(self) -> list:
        return [view[1] for view in self.views.values() if isinstance(view, tuple)]

    def params(self) -> list[link_query.Param]:
        return [param_for(name, component) for name, component in self.fields.items()]


class LateValue:
    """A link's value for a `late` parameter, kept in a session's `gr.State` until the tab takes it."""

    def __init__(self):
        self.value = None

    def take(self):
        value, self.value = self.value, None
        return value


def _choice_values(component) -> tuple:
    return tuple(value for _label, value in (component.choices or []))


def param_for(name: str, component) -> link_query.Param:
    """The link parameter `name` as `component` defines it: kind, bounds or choices, default."""
    default = component.value if not callable(component.value) else None
    if isinstance(component, gr.Checkbox):
        return link_query.Param(name, "bool", bool(default))
    if isinstance(component, gr.Slider):
        integral = float(component.step).is_integer() and float(component.minimum).is_integer()
        return link_query.Param(name, "int" if integral else "float", default, component.minimum, component.maximum)
    if isinstance(component, gr.Number):
        return link_query.Param(name, "int" if component.precision == 0 else "float", default,
                               component.minimum, component.maximum)
    if isinstance(component, gr.Dropdown) and component.multiselect:
        return link_query.Param(name, "choices", list(default or []), choices=_choice_values(component),
                               max_items=component.max_choices)
    if isinstance(component, (gr.Dropdown, gr.Radio)):
        return link_query.Param(name, "choice", default, choices=_choice_values(component))
    return link_query.Param(name, "text", default if default is not None else "")


def expanded_query(query: dict) -> tuple[dict, list[str]]:
    """`query` with `demo=<id>` replaced by that demo's query (explicit parameters win)."""
    query = {k: v for k, v in query.items() if isinstance(v, str)}
    demo_id = query.pop("demo", None)
    if demo_id is None:
        return query, []
    found = lecture.demo(demo_id)
    if found is None:
        return query, [f"There is no lecture demo “{demo_id[:60]}”; the Lecture tab lists them all."]
    return {"tab": found.tab, **found.query, **query}, []


@dataclass
class Plan:
    """What the page does after a link's values are set (sent to the page as JSON)."""

    tab: str | None = None
    steps: list = field(default_factory=list)
    view: str | None = None
    present: bool = False
    open: object = None  # the accordion to open for the view (not sent to the page)
    late: dict = field(default_factory=dict)  # values of the tab's `late` parameters (not sent)

    def as_json(self) -> str:
        return json.dumps({"tab": self.tab, "steps": self.steps, "view": self.view, "present": self.present})


def resolve(query: dict, tabs: dict[str, TabLink]) -> tuple[Plan, dict, list[str]]:
    """(plan, {param: value} of the plan's tab, notes) for a page's query string."""
    query, notes = expanded_query(query)
    plan = Plan(present=str(query.get("present", "")).lower() in link_query.TRUE)
    tab_id = query.get("tab") or _tab_of(query, tabs)
    if tab_id is None:
        return plan, {}, notes
    link = tabs.get(tab_id)
    if link is None:
        return plan, {}, [*notes, f"There is no tab “{tab_id[:40]}” (tabs: {', '.join(tabs)})."]
    plan.tab = tab_id
    for alias, expand in link.aliases.items():
        if alias in query:
            found = expand(query[alias])
            if found is None:
                notes.append(f"{alias}: “{query[alias][:40]}” is not one of this tab's presets")
            else:
                query = {**{k: str(v) for k, v in found.items()}, **{k: v for k, v in query.items() if k != alias}}
    late_params = [param for param, _state, _component in link.late.values()]
    values, parse_notes = link_query.parse({k: v for k, v in query.items() if k not in ("view", *link.aliases)},
                                          link.params() + late_params)
    notes += parse_notes
    plan.late = {k: v for k, v in values.items() if k in link.late}
    values = {k: v for k, v in values.items() if k in link.fields}
    run = query.get("run", link.default_run)
    if run not in link.actions and run not in (None, "none"):
        notes.append(f"run: “{str(run)[:40]}” is not an action of this tab ({', '.join(link.actions)})")
        run = link.default_run
    plan.steps = [list(step) for step in link.actions.get(run, [])] if run not in (None, "none") else []
    view = query.get("view", link.default_view)
    if view not in link.views:
        if "view" in query:
            notes.append(f"view: “{str(view)[:40]}” is not a view of this tab ({', '.join(link.views)})")
        view = link.default_view
    plan.view = link.view_id(view)
    plan.open = link.views[view][1] if isinstance(link.views.get(view), tuple) else None
    return plan, values, notes


def _tab_of(query: dict, tabs: dict[str, TabLink]) -> str | None:
    """The tab of a link without `tab=` (the tokenizer's older `?tokenizer=..&text=..` links): the
    only tab whose parameters include every one given."""
    names = set(query) - set(link_query.RESERVED)
    if not names:
        return None
    fitting = [tab for tab, link in tabs.items() if names <= set(link.fields) | set(link.aliases) | set(link.late)]
    return fitting[0] if len(fitting) == 1 else None


def notice_markdown(notes: list[str]) -> str:
    if not notes:
        return ""
    return "**This link was opened with some changes:** " + "; ".join(notes) + "."


@dataclass(frozen=True)
class LinkValues:
    """What "Copy link" reads: the components (in order), each tab's parameters and the tab labels;
    `window.playgroundLinkQuery(values, spec, labels)` turns their values into the selected tab's
    query (a class room publishes it)."""

    components: list
    spec: dict
    labels: dict


def install(tabs_component: gr.Tabs, tab_links: list[TabLink], notice: gr.Markdown, copy_button: gr.Button,
            copy_output: gr.Textbox) -> LinkValues:
    """The page-load event that opens a link, first-visit actions, and the header's "Copy link"."""
    by_tab = {link.tab: link for link in tab_links}
    components = [(link.tab, name, component) for link in tab_links for name, component in link.fields.items()]
    plan_box = gr.Textbox(visible="hidden", elem_id="link-plan")

    late_states = [(link.tab, name, state) for link in tab_links for name, (_p, state, _c) in link.late.items()]

    def open_link(request: gr.Request, *holders):  # Gradio puts the request first, the States after
        query = dict(request.query_params) if request is not None else {}
        plan, values, notes = resolve(query, by_tab)
        for (tab, name, _state), holder in zip(late_states, holders):
            if tab == plan.tab and name in plan.late and isinstance(holder, LateValue):
                holder.value = plan.late[name]
        updates = [gr.Tabs(selected=plan.tab) if plan.tab else gr.skip()]
        for tab, name, _component in components:
            updates.append(values[name] if tab == plan.tab and name in values else gr.skip())
        updates += [gr.Accordion(open=True) if box is plan.open else gr.skip() for box in accordions]
        message = notice_markdown(notes)
        updates += [gr.Markdown(message, visible=bool(message)), plan.as_json()]
        return updates

    accordions = [box for link in tab_links for box in link.accordions()]
    outputs = [tabs_component, *[c for _, _, c in components], *accordions, notice, plan_box]
    gr.on(None, open_link, [state for _, _, state in late_states], outputs, api_name=False, queue=False,
          show_progress="hidden").then(
        None, plan_box, None, js=OPEN_JS)
    for link in tab_links:
        visit = link.default_run if link.visit_run == "default" else link.visit_run
        first = Plan(tab=link.tab, steps=[list(s) for s in link.actions.get(visit, [])],
                     view=link.view_id(link.default_view))
        tab_item = _tab_item(tabs_component, link.tab)
        if tab_item is not None:
            tab_item.select(None, None, None, js=_visit_js(first))
    for child in getattr(tabs_component, "children", []):  # tabs without a link: counted visits only
        if getattr(child, "id", None) not in by_tab:
            child.select(None, None, None, js=_visit_js(Plan()))
    spec = {link.tab: [[p.name, p.kind, link_query.encode_value(p, p.default) if p.default is not None else None]
                       for p in [*link.params(), *(param for param, _s, _c in link.late.values())]]
            for link in tab_links}
    copied = [c for link in tab_links for c in [*link.fields.values(), *(c for _p, _s, c in link.late.values())]]
    labels = {child.label: child.id for child in getattr(tabs_component, "children", []) if child.id in by_tab}
    runs = {link.tab: [list(entry) for entry in link.copy_runs] for link in tab_links if link.copy_runs}
    copy_button.click(None, copied, copy_output,
                      js=f"(...values) => window.playgroundCopyLink(values, {json.dumps(spec)}, {json.dumps(labels)}, "
                         f"{json.dumps(runs)})")
    return LinkValues(copied, spec, labels)


def _visit_js(plan: Plan) -> str:
    return f"() => window.playgroundVisit && window.playgroundVisit({plan.as_json()})"


def _tab_item(tabs_component, tab_id):
    for child in getattr(tabs_component, "children", []):
        if getattr(child, "id", None) == tab_id:
            return child
    return None


# The page's side (`assets/link_wiring.js`): runs a plan after the load event set the values, a tab's first
# visit, "Copy link".
HEAD = page_scripts.script_tag("link_wiring.js")

OPEN_JS = "(text) => { window.playgroundOpenLink(text); return []; }"
