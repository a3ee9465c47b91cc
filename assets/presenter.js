// Presenter mode (playground/ui/presenter.py says what it does): the class `playground-present`,
// chart fonts raised to at least FLOOR px and charts fitted to the screen, the followed result kept
// in view, keyboard shortcuts. Its settings (FLOOR, the shortcut keys) come from
// window.playgroundPresenterSettings, which presenter.head() writes just before this script.
(() => {
  const { floor: FLOOR, keys, help, demos, views } = window.playgroundPresenterSettings;  // set by presenter.head()
  const root = document.documentElement;
  const presenting = () => root.classList.contains('playground-present');
  // Whether the keyboard is writing into a field: a text box, a number box, a list, an editable
  // element. A slider, a checkbox or a button that has the focus after a click is not typing, so the
  // shortcuts keep working after the presenter moved a slider.
  const typing = (el) => !!el && (el.isContentEditable || /TEXTAREA|SELECT/.test(el.tagName)
    || (el.tagName === 'INPUT' && !/^(range|checkbox|radio|button|submit|reset|color)$/.test(el.type)));
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
    // Larger tick labels need room: axes push their titles out (automargin), colour bars put theirs
    // aside. Automargin makes a redraw about five times as slow (170 ms against 35 ms for the
    // sampling chart at device scale 1.5), so a chart drawn again in the same place (a stream's next
    // chart) gets the margins the first one found, fixed, and no automargin.
    const holder = gd.closest('[id]') || gd;  // Gradio draws each new chart in a new element
    const kept = holder.__presenterMargins;
    if (kept) {
      for (const side of ['l', 'r', 't', 'b']) layout['margin.' + side] = kept[side];
    } else {
      for (const key of Object.keys(gd.layout)) {
        if (/^[xy]axis\d*$/.test(key) && gd.layout[key] && gd.layout[key].visible !== false) layout[key + '.automargin'] = true;
      }
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
    gd.__raising = true;  // until the update below is drawn
    // One Plotly.update (one redraw) for the traces' and the layout's changes: a restyle then a
    // relayout drew the chart twice more after each new chart, which starved a streaming page.
    Promise.resolve(traces.length || Object.keys(layout).length
      ? window.Plotly.update(gd, traces.length ? data : {}, layout, traces.length ? traces : undefined) : null)
      .then(() => {
        const size = gd._fullLayout && gd._fullLayout._size;
        // the margins automargin found, for the next chart of the same kind drawn here
        if (!kept && size) holder.__presenterMargins = { l: Math.ceil(size.l), r: Math.ceil(size.r), t: Math.ceil(size.t), b: Math.ceil(size.b) };
      })
      .finally(() => { gd.__raising = false; });
  };
  const follow = () => {
    const id = window.playgroundFollow;
    const el = id && document.getElementById(id);
    if (!el || !presenting() || el.offsetParent === null) return;
    if (typing(document.activeElement)) return;
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
  // Whether every chart under `root` (the page when left out) is as presenter mode draws it: raised
  // for its current layout, no restyle, relayout or fitting of it under way (the browser tests wait for it).
  window.playgroundChartsSettled = (root) => [...(root || document).querySelectorAll('.js-plotly-plot')]
    .every((gd) => !presenting() || gd.offsetParent === null
                   || (gd.layout && gd.__presented === gd.layout && !gd.__raising && !gd.__fitting));
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

  // The lecture's demos in order: from a demo's link, the previous and next one (presenter mode kept).
  const demoIndex = () => {
    const id = new URLSearchParams(window.location.search).get('demo');
    return demos.findIndex(([demoId]) => demoId === id);
  };
  const openDemo = (step) => {
    const at = demoIndex();
    const next = demos[at + step];
    if (at < 0 || !next) return;
    const url = new URL(window.location.href);
    url.search = new URLSearchParams([['demo', next[0]], ['present', '1']]).toString();
    window.location.assign(url.toString());
  };
  const drawDemoNav = () => {
    const at = demoIndex();
    let bar = document.getElementById('demo-nav');
    if (at < 0 || !presenting()) { if (bar) bar.remove(); return; }
    if (bar) return;
    bar = document.createElement('div');
    bar.id = 'demo-nav';
    const button = (id, text, step) => {
      const b = document.createElement('button');
      b.id = id; b.textContent = text; b.disabled = !demos[at + step];
      b.title = demos[at + step] ? demos[at + step][1] : '';
      b.addEventListener('click', () => openDemo(step));
      return b;
    };
    const title = document.createElement('span');
    title.className = 'demo-nav-title';
    title.textContent = `${at + 1}/${demos.length} · ${demos[at][1]}`;
    bar.append(button('demo-previous', '◀', -1), title, button('demo-next', '▶', 1));
    document.body.appendChild(bar);
  };
  // "?": the shortcuts over any tab (Escape or "?" again closes it)
  const toggleHelp = () => {
    const open = document.getElementById('shortcuts-help');
    if (open) { open.remove(); return; }
    const overlay = document.createElement('div');
    overlay.id = 'shortcuts-help';
    const box = document.createElement('div');
    const heading = document.createElement('h3');
    heading.textContent = 'Keyboard shortcuts (not while typing in a text box)';
    const table = document.createElement('table');
    for (const [key, what] of help) {
      const row = table.insertRow();
      const kbd = document.createElement('kbd');
      kbd.textContent = key;
      row.insertCell().appendChild(kbd);
      row.insertCell().textContent = what;
    }
    box.append(heading, table);
    overlay.appendChild(box);
    overlay.addEventListener('click', () => overlay.remove());
    document.body.appendChild(overlay);
  };
  setInterval(drawDemoNav, 500);
  // Keyboard shortcuts: press the selected tab's button (never while typing).
  document.addEventListener('keydown', (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) return;
    if (event.target.type === 'range' && /^Arrow/.test(event.key)) return;  // the arrows move the slider
    if (event.key === 'Escape' && document.getElementById('shortcuts-help')) { toggleHelp(); return; }
    const key = event.key === 'ArrowRight' ? '→' : event.key === 'ArrowLeft' ? '←' : event.key.toLowerCase();
    const id = keys[key];
    if (!id) return;
    if (id === 'presenter-toggle') { setPresent(!presenting()); event.preventDefault(); return; }
    if (id === 'shortcuts-help') { toggleHelp(); event.preventDefault(); return; }
    if (id === 'demo-next' || id === 'demo-previous') { openDemo(id === 'demo-next' ? 1 : -1); event.preventDefault(); return; }
    const el = document.getElementById(id);
    if (!el || el.offsetParent === null) return;
    (el.tagName === 'BUTTON' ? el : (el.querySelector('button') || el)).click();
    event.preventDefault();
    const view = views[id] && document.getElementById(views[id]);
    if (view && presenting()) {  // its result comes below this block: the block at the top, then followed
      view.scrollIntoView({ block: 'start', behavior: 'instant' });
      window.playgroundFollow = views[id];
    }
  });

  // A demo link keeps presenter mode, and the Lecture index keeps its place: the position is saved
  // when a demo opens and given back when the page returns to the index (Back), once the index is drawn
  // (the browser's own restoring came before Gradio had drawn the page, so it always showed the top).
  const PLACE = 'playgroundLectureScroll';
  document.addEventListener('click', (event) => {
    const a = event.target.closest && event.target.closest('a.demo-link');
    if (!a) return;
    try { sessionStorage.setItem(PLACE, String(Math.round(window.scrollY))); } catch (e) { /* storage off */ }
    if (!presenting()) return;
    const url = new URL(a.href, window.location.href);
    url.searchParams.set('present', '1');
    a.href = url.toString();
  }, true);
  const returnToPlace = (tries) => {
    let saved = null;
    try { saved = sessionStorage.getItem(PLACE); } catch (e) { return; }
    if (saved === null || new URLSearchParams(window.location.search).has('demo')) return;
    const index = document.getElementById('lecture-index');
    const ready = index && index.offsetParent !== null
      && document.documentElement.scrollHeight - window.innerHeight >= Number(saved);
    if (!ready) { if (tries > 0) setTimeout(() => returnToPlace(tries - 1), 200); return; }
    try { sessionStorage.removeItem(PLACE); } catch (e) { /* storage off */ }
    // held for 3 s while the page settles (late styles and fonts move it), unless the presenter scrolls
    let moved = false;
    const mine = () => { moved = true; };
    ['wheel', 'touchmove', 'keydown'].forEach((kind) => window.addEventListener(kind, mine, { once: true, passive: true }));
    const hold = (left) => {
      if (moved) return;
      if (Math.abs(window.scrollY - Number(saved)) > 2) window.scrollTo(0, Number(saved));
      if (left > 0) setTimeout(() => hold(left - 1), 200);
    };
    hold(15);
  };
  returnToPlace(150);  // a page loaded again (Back without the browser's page cache)
  window.addEventListener('pageshow', (event) => { if (event.persisted) returnToPlace(150); });
})();
