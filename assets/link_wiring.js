// Deep links in the page (playground/ui/link_wiring.py says what they do). After the page-load event set a
// link's values, `playgroundOpenLink` runs its plan: presenter mode, the plan's buttons in turn (a
// tab's content is mounted only once it is selected, so each button is waited for), then the view.
// A tab's first visit runs its default plan (`playgroundVisit`); "Copy link" writes the selected
// tab's values as a link (`playgroundCopyLink`). `document.body.dataset.linkState` says whether a
// plan is running; `document.body.dataset.tabVisits` counts the tab selections the page has seen.
// A generated token with a "why?" link (`data-why`, playground/html/generated.py), or a chart bar with
// one as its customdata (teacher forcing, playground/plots/chat.py), opens it in a new browser tab on
// a click, so the page's own state stays as it was.
(() => {
  const opened = {};
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const waitFor = async (selector, seconds) => {
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      const found = document.querySelector(selector);
      if (found) return found;
      await sleep(100);
    }
    return null;
  };
  const bringIntoView = (id) => {
    const el = id && document.getElementById(id);
    if (el) el.scrollIntoView({ block: 'start', behavior: 'instant' });
  };
  window.playgroundBringIntoView = bringIntoView;
  window.playgroundRun = async (plan) => {
    if (!plan || !plan.tab) { document.body.dataset.linkState = 'done'; return; }
    opened[plan.tab] = true;
    document.body.dataset.linkState = 'running';
    for (const [button, waitSelector] of plan.steps || []) {
      const el = await waitFor('#' + button, 20);
      if (!el) break;
      await sleep(150);
      const target = el.tagName === 'BUTTON' ? el : (el.querySelector('button') || el);
      target.click();
      for (const selector of [].concat(waitSelector || [])) await waitFor(selector, 180);
    }
    if (plan.view) {
      const view = await waitFor('#' + plan.view, 20);
      if (view) {
        await sleep(300);
        bringIntoView(plan.view);
        window.playgroundFollow = plan.view;  // the presenter script keeps it in sight as it fills
      }
    }
    document.body.dataset.linkState = 'done';
  };
  window.playgroundVisit = (plan) => {
    document.body.dataset.tabVisits = String((Number(document.body.dataset.tabVisits) || 0) + 1);
    if (!plan || !plan.tab || opened[plan.tab]) return [];
    // A first visit scrolls to its result only in presenter mode (at a desk the controls stay in sight).
    const present = document.documentElement.classList.contains('playground-present');
    window.playgroundRun(present ? plan : { ...plan, view: null });
    return [];
  };
  window.playgroundOpenLink = (text) => {
    let plan = null;
    try { plan = JSON.parse(text || '{}'); } catch (e) { return []; }
    if (plan.present) document.body.classList.add('playground-present');
    window.playgroundRun(plan);
    return [];
  };

  // The header's "Copy link": the selected tab's values (`values`: all tabs' values, in `spec` order;
  // `spec`: tab -> [[name, kind, default as the link writes it]]; `labels`: tab label -> tab id).
  // The selected tab's state as a query (URLSearchParams), or null on a tab without a link.
  window.playgroundLinkQuery = (values, spec, labels) => {
    const selected = document.querySelector('button[role="tab"][aria-selected="true"]');
    const tab = selected ? labels[selected.textContent.trim()] : null;
    if (!tab || !spec[tab]) return null;
    let i = 0;
    const query = new URLSearchParams([['tab', tab]]);
    for (const [id, fields] of Object.entries(spec)) {
      for (const [name, kind, dflt] of fields) {
        if (id === tab) {
          const value = values[i];
          let text;
          if (kind === 'bool') text = value ? '1' : '0';
          else if (kind === 'choices') text = (value || []).join(',');
          // token ids: a list, or a view's details whose `generated` records carry them (the sampling lab's)
          else if (kind === 'ids') text = (Array.isArray(value) ? value : ((value && value.generated) || []).map((r) => r.id)).join(',');
          else if (kind === 'int' || kind === 'float') text = (value === null || value === undefined || value === '') ? '' : String(Number(value));
          else text = value === null || value === undefined ? '' : String(value);
          if (dflt === null || text !== dflt) query.set(name, text);
        }
        i += 1;
      }
    }
    return query;
  };
  window.playgroundCopyLink = (values, spec, labels, runs) => {
    const query = window.playgroundLinkQuery(values, spec, labels);
    if (!query) return 'Open a tab with results (not the Lecture tab) to copy its link.';
    // a result on the page that the tab's default run would not bring back (the logit lens): run it again
    for (const [run, view, selector] of (runs || {})[query.get('tab')] || []) {
      if (document.querySelector(selector)) { query.set('run', run); query.set('view', view); break; }
    }
    if (document.body.classList.contains('playground-present')) query.set('present', '1');
    const url = new URL(window.location.href);
    url.search = query.toString();
    const link = url.toString();
    if (navigator.clipboard) navigator.clipboard.writeText(link).catch(() => {});
    return link;
  };
  const openWhy = (query) => {
    const url = new URL(window.location.href);
    url.search = query;
    window.open(url.toString(), '_blank', 'noopener');
  };
  document.addEventListener('click', (event) => {
    const token = event.target.closest && event.target.closest('.gen-tok[data-why]');
    if (token) openWhy(token.dataset.why);
  });
  // a chart whose bars carry a "why?" link as customdata (teacher forcing): bound once per drawn chart
  setInterval(() => {
    document.querySelectorAll('.js-plotly-plot').forEach((plot) => {
      if (plot.dataset.whyClick || typeof plot.on !== 'function') return;
      plot.dataset.whyClick = '1';
      plot.on('plotly_click', (event) => {
        const point = event && event.points && event.points[0];
        const link = point && point.customdata;
        if (typeof link === 'string' && link.startsWith('?tab=why')) openWhy(link);
      });
    });
  }, 300);
})();
