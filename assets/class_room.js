// Class rooms, the page's side (playground/ui/class_room.py).
// A student page (`/?join=CODE`) asks `class-api/room/CODE?since=V` once a second and swaps in the
// view the server drew when its version changed; the answer form posts to `class-api/answer` with a
// random id kept in this browser (no name). The presenter's page publishes its state through a
// gr.Timer; `playgroundClassQuery` gives it the selected tab's link query.
(() => {
  const PERIOD_MS = 1000;
  const params = new URLSearchParams(window.location.search);
  const code = (params.get('join') || '').trim().toUpperCase();
  let version = -1;
  let pollId = null;

  const studentId = () => {
    const key = 'playground-student-id';
    let id = null;
    try { id = window.localStorage.getItem(key); } catch (e) { id = null; }
    if (!id || !/^[A-Za-z0-9_-]{8,64}$/.test(id)) {
      const bytes = new Uint8Array(12);
      (window.crypto || window.msCrypto).getRandomValues(bytes);
      id = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
      try { window.localStorage.setItem(key, id); } catch (e) { /* a private window: this page only */ }
    }
    return id;
  };

  window.playgroundClassQuery = (values, spec, labels) => {
    const query = window.playgroundLinkQuery ? window.playgroundLinkQuery(values, spec, labels) : null;
    if (query) return query.toString();
    const selected = document.querySelector('button[role="tab"][aria-selected="true"]');
    const label = selected ? selected.textContent.trim().toLowerCase() : '';
    return 'tab=' + encodeURIComponent(label.split(' ')[0] || '');
  };

  const api = (path) => new URL('class-api/' + path, window.location.origin + window.location.pathname).toString();

  const showPoll = () => {
    const form = document.getElementById('class-answer-form');
    const poll = document.querySelector('#class-follow .class-poll');
    if (!form || !poll) return;
    const open = poll.dataset.open === '1';
    form.hidden = !open;
    const id = poll.dataset.poll || null;
    if (id !== pollId) {
      pollId = id;
      const status = document.getElementById('class-answer-status');
      if (status) status.textContent = '';
      const input = document.getElementById('class-answer');
      if (input) input.value = '';
    }
  };

  const follow = async () => {
    const box = document.getElementById('class-follow');
    if (!box) return;
    try {
      const response = await fetch(api('room/' + encodeURIComponent(code) + '?since=' + version), { cache: 'no-store' });
      const data = await response.json();
      if (data.error) {
        box.textContent = data.error;
        document.body.dataset.classVersion = 'error';
        return;
      }
      if (data.html !== undefined && data.version !== version) {
        box.innerHTML = data.html;
        version = data.version;
        document.body.dataset.classVersion = String(version);
        showPoll();
      }
    } catch (e) {
      /* the next tick tries again */
    }
  };

  const send = async (answer) => {
    const status = document.getElementById('class-answer-status');
    try {
      const response = await fetch(api('answer'), {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ code, student: studentId(), answer, poll: pollId }),
      });
      const data = await response.json();
      if (status) status.textContent = data.error || data.message || '';
      if (status) status.dataset.outcome = data.error ? 'refused' : 'received';
    } catch (e) {
      if (status) { status.textContent = 'The answer was not sent; try again.'; status.dataset.outcome = 'refused'; }
    }
  };

  document.addEventListener('submit', (event) => {
    if (event.target && event.target.id === 'class-answer-form') {
      event.preventDefault();
      const input = document.getElementById('class-answer');
      send(input ? input.value : '');
    }
  });
  document.addEventListener('click', (event) => {
    const chip = event.target && event.target.closest ? event.target.closest('.class-chip') : null;
    if (chip) {
      const input = document.getElementById('class-answer');
      if (input) input.value = chip.dataset.answer || '';
      send(chip.dataset.answer || '');
    }
  });

  if (code) {
    const tick = async () => { await follow(); setTimeout(tick, PERIOD_MS); };
    tick();
  }
})();
