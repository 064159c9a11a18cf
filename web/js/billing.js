// The billing page: this period's usage as a bar chart (inline SVG, drawn here) with its lines,
// and the invoices with their CSV.

import { get } from './api.js';
import { $, h, svg, fillTable, money, showError, when } from './dom.js';

// The chart's geometry, in SVG user units (the SVG scales to the panel's width).
const W = 720;
const H = 240;
const PAD = { top: 16, right: 12, bottom: 56, left: 64 };

// Base units per meter, to show quantities as people read them.
const QUANTITY = {
  second: [3600, 'h'],
  'GiB-second': [3600, 'GiB-h'],
  'byte-second': [3600 * 1e9, 'GB-h'],
  byte: [1e9, 'GB'],
};
const BASE_UNIT = {
  'instance-running': 'second', 'instance-minimum': 'second', 'stopped-storage': 'GiB-second',
  'image-storage': 'byte-second', 'network-in': 'byte', 'network-out': 'byte',
  'eip-idle': 'second', 'eip-associated': 'second', 'vpn-connection': 'second',
};

function quantityText(meter, q) {
  const unit = BASE_UNIT[meter];
  const n = Number(q);
  if (!unit || !Number.isFinite(n)) return q;
  const [div, label] = QUANTITY[unit];
  return `${(n / div).toFixed(n / div < 10 ? 3 : 1)} ${label}`;
}

// Round numbers for the axis: a step of 1, 2 or 5 times a power of ten.
function niceStep(max, ticks) {
  const raw = max / ticks;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
}

export class BillingPage {
  constructor(session) {
    this.session = session;
    $('#billing-refresh').onclick = () => this.reload();
  }

  show() {
    $('#billing-view').hidden = false;
    this.reload();
  }

  hide() {
    $('#billing-view').hidden = true;
  }

  async reload() {
    const problems = [];
    const [usage, invoices] = await Promise.all([
      get('/v1/usage').catch((e) => { if (e.status !== 401) problems.push(`usage: ${e.message}`); }),
      get('/v1/invoices').catch((e) => { if (e.status !== 401) problems.push(`invoices: ${e.message}`); }),
    ]);
    showError($('#billing-error'), problems.length ? `Could not load ${problems.join('; ')}` : '');
    if (usage) this.renderUsage(usage);
    if (invoices) this.renderInvoices(invoices.invoices);
  }

  renderUsage(u) {
    $('#usage-period').textContent = `${u.period}: ${money(u.total_micros)} so far`;
    $('#usage-note').textContent = u.aggregated_until
      ? `Usage is counted hourly; counted up to ${when(u.aggregated_until)}.`
      : 'No usage has been counted yet.';
    $('#usage-chart').replaceChildren(u.meters.length ? this.chart(u.meters) : '');
    fillTable($('#usage-lines'), u.meters, (m) => h('tr', null,
      h('td', null, m.meter), h('td', null, m.sku || '—'),
      h('td', { title: `${m.quantity} base units` }, quantityText(m.meter, m.quantity)),
      h('td', null, m.unit), h('td', null, money(m.amount_micros))), $('#usage-empty'));
  }

  // One bar per line of usage, its height the line's amount. Amounts are the one measure all
  // meters share (seconds, bytes and byte-seconds do not compare); a line without a price has
  // no amount and a zero bar, marked as such.
  chart(meters) {
    const plotW = W - PAD.left - PAD.right;
    const plotH = H - PAD.top - PAD.bottom;
    const max = Math.max(...meters.map((m) => m.amount_micros || 0));
    const step = max > 0 ? niceStep(max, 4) : 1;
    const top = max > 0 ? Math.ceil(max / step) * step : 1;
    const y = (v) => PAD.top + plotH - (v / top) * plotH;
    const slot = plotW / meters.length;
    const barW = Math.min(64, slot * 0.6);
    const grid = [];
    for (let v = 0; v <= top + step / 2; v += step) {
      grid.push(svg('line', { class: 'gridline', x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }),
        svg('text', { class: 'axis', x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, money(v)));
    }
    const bars = meters.map((m, i) => {
      const amount = m.amount_micros || 0;
      const x = PAD.left + slot * i + (slot - barW) / 2;
      const label = m.sku ? `${m.meter} ${m.sku}` : m.meter;
      return svg('g', null,
        svg('rect', {
          class: m.amount_micros === null ? 'bar unpriced' : 'bar',
          x, y: y(amount), width: barW, height: Math.max(0, PAD.top + plotH - y(amount)),
          dataset: { meter: m.meter, sku: m.sku, amount: amount, quantity: m.quantity },
        }, svg('title', null, `${label}: ${money(m.amount_micros)} `
          + `(${quantityText(m.meter, m.quantity)})`)),
        svg('text', { class: 'value', x: x + barW / 2, y: y(amount) - 4, 'text-anchor': 'middle' },
          m.amount_micros === null ? 'no price' : money(amount)),
        svg('text', { class: 'axis', x: x + barW / 2, y: H - PAD.bottom + 16, 'text-anchor': 'middle' },
          m.meter),
        svg('text', { class: 'axis sku', x: x + barW / 2, y: H - PAD.bottom + 30, 'text-anchor': 'middle' },
          m.sku));
    });
    return svg('svg', {
      viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Usage this period by meter',
      dataset: { plotTop: PAD.top, plotBottom: PAD.top + plotH, scaleTop: top },
    }, grid, svg('line', {
      class: 'baseline', x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0),
    }), bars);
  }

  renderInvoices(list) {
    fillTable($('#invoices'), list, (inv) => {
      const csv = `/v1/invoices/${encodeURIComponent(inv.invoice_id)}?format=csv`;
      return h('tr', { dataset: { id: inv.invoice_id } },
        h('td', { class: 'mono' }, inv.invoice_id), h('td', null, inv.period),
        h('td', null, inv.state), h('td', null, money(inv.total_micros, inv.currency)),
        h('td', null, when(inv.created_at)),
        // A plain link: a GET with the session cookie, saved under the invoice's name.
        h('td', { class: 'actions' }, h('a', { href: csv, download: `${inv.invoice_id}.csv`,
          class: 'button small' }, 'CSV')));
    }, $('#invoices-empty'));
  }
}
