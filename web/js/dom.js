// A tiny DOM builder: text always goes in as text, never as HTML.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// SVG elements need their namespace; otherwise as h().
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);

export function showError(el, message) {
  el.textContent = message || '';
  el.hidden = !message;
}

let toastTimer = null;
export function toast(message, bad = false) {
  const el = $('#toast');
  el.textContent = message;
  el.classList.toggle('bad', bad);
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, bad ? 8000 : 4000);
}

export function option(value, label, selected = false) {
  return h('option', { value, selected }, label);
}

// Fills a table's body with one row per item ('row' builds the <tr>) and shows the "empty"
// paragraph next to it when there is none.
export function fillTable(table, items, row, empty) {
  table.tBodies[0].replaceChildren(...items.map(row));
  if (empty) empty.hidden = items.length > 0;
}

// A small action button; 'action' lands in data-action for the table's click handler.
export function actionButton(action, label, opts = {}) {
  return h('button', {
    type: 'button',
    class: opts.danger ? 'small danger' : 'small',
    dataset: { action },
    disabled: opts.disabled,
  }, label);
}

// Calls 'fn(id, action, button)' for clicks on a row's [data-action] button; the row's
// data-id says which resource. The button stays disabled while the call runs. A property, not
// addEventListener: pages are made again at each sign-in and must not stack handlers.
export function onRowAction(table, fn) {
  table.tBodies[0].onclick = async (e) => {
    const b = e.target.closest('button[data-action]');
    if (!b) return;
    b.disabled = true;
    try {
      await fn(b.closest('tr').dataset.id, b.dataset.action, b);
    } finally {
      b.disabled = false;
    }
  };
}

// Saves 'text' as a file the user downloads: a Blob behind a temporary object URL (the text
// never becomes a data: URL or page content).
export function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// Asks a yes/no question in the shared confirmation dialog; resolves true for the OK button.
export function confirmAction(text, okLabel) {
  const dlg = $('#ask-dialog');
  $('#ask-text').textContent = text;
  $('#ask-ok').textContent = okLabel;
  dlg.returnValue = '';
  dlg.showModal();
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
  });
}

// Bytes in the largest binary unit that keeps the number at or above 1.
export function bytes(n) {
  if (n === undefined || n === null) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}

// Money in integer micro-units as "12.34 USD".
export function money(micros, currency = '') {
  if (micros === undefined || micros === null) return '—';
  return `${(Number(micros) / 1e6).toFixed(2)}${currency ? ` ${currency}` : ''}`;
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : '';
}
