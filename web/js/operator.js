// The operator's page (admin role only; main.js does not make it for anyone else, and the
// gateway refuses /v1/admin to them anyway): hosts with capacity and load, tenants and their
// quotas, the request log, the price plans.

import { get, put, q } from './api.js';
import {
  $, h, actionButton, fillTable, onRowAction, showError, toast, when,
} from './dom.js';

const QUOTA_FIELDS = ['max_instances', 'max_vcpus', 'max_memory_mib', 'max_elastic_ips',
  'max_image_bytes'];

// "used / capacity" with the share, e.g. "6 / 16 (38%)"; what the scheduler may hand out is
// capacity less reserved, times the allocation ratio.
function usage(used, capacity, reserved, ratio, fmt = String) {
  const total = Math.max(0, (capacity - (reserved || 0)) * (ratio || 1));
  const pct = total > 0 ? Math.round((100 * used) / total) : 0;
  return h('span', { class: 'meter-cell', title: `${pct}% of what may be allocated` },
    `${fmt(used)} / ${fmt(Math.round(total))}`,
    h('meter', { min: 0, max: total || 1, value: used, high: total * 0.9, optimum: 0 }));
}

export class OperatorPage {
  constructor(session) {
    this.session = session;
    this.tenants = [];
    $('#operator-refresh').onclick = () => this.reload();
    $('#requests-form').onsubmit = (e) => {
      e.preventDefault();
      this.loadRequests();
    };
    $('#quota-form').onsubmit = (e) => {
      e.preventDefault();
      this.saveQuota();
    };
    onRowAction($('#tenants'), (id) => this.openQuota(id));
  }

  show() {
    $('#operator-view').hidden = false;
    this.reload();
  }

  hide() {
    $('#operator-view').hidden = true;
  }

  reload() {
    return Promise.all([this.loadHosts(), this.loadTenants(), this.loadRequests(),
      this.loadPrices()]);
  }

  // Every plan's prices, the plan in effect now first (plans come newest first).
  async loadPrices() {
    try {
      const doc = await get('/v1/admin/prices');
      const rows = [];
      for (const p of doc.plans) {
        for (const x of p.prices) rows.push({ plan: p, price: x });
      }
      fillTable($('#prices'), rows, ({ plan, price }) => h('tr', {
        dataset: { plan: plan.id, meter: price.meter, sku: price.sku },
        class: plan.current ? null : 'gone',
      },
      h('td', null, plan.name, plan.current ? h('span', { class: 'reason' }, 'in effect') : null),
      h('td', null, when(plan.effective_from)),
      h('td', { class: 'mono' }, price.meter),
      h('td', { class: 'mono' }, price.sku || 'any'),
      // Prices are fractions of a cent (5200 micros an hour): all six decimals.
      h('td', null, `${(price.price_micros / 1e6).toFixed(6)} ${plan.currency}`),
      h('td', null, price.unit)), $('#prices-empty'));
    } catch (e) {
      if (e.status !== 401) showError($('#operator-error'), `Could not read prices: ${e.message}`);
    }
  }

  async loadHosts() {
    try {
      const doc = await get('/v1/admin/hosts');
      showError($('#operator-error'), '');
      fillTable($('#hosts'), doc.hosts, (x) => this.hostRow(x), $('#hosts-empty'));
    } catch (e) {
      if (e.status !== 401) showError($('#operator-error'), `Could not list hosts: ${e.message}`);
    }
  }

  hostRow(x) {
    const c = x.capacity || {};
    const r = x.reserved || {};
    const u = x.used || {};
    const ratios = x.ratios || {};
    return h('tr', { dataset: { id: x.id, state: x.state } },
      h('td', null, x.name, x.simulated ? h('span', { class: 'reason' }, 'simulated') : null),
      h('td', { class: 'mono' }, x.id),
      h('td', null, x.zone),
      h('td', null, h('span', { class: 'state', dataset: { state: x.state } }, x.state),
        x.state_reason ? h('span', { class: 'reason' }, x.state_reason) : null),
      h('td', null, usage(u.vcpus || 0, c.vcpus || 0, r.vcpus, ratios.cpu)),
      h('td', null, usage(u.memory_mib || 0, c.memory_mib || 0, r.memory_mib, ratios.memory,
        (v) => `${(v / 1024).toFixed(1)} GiB`)),
      h('td', null, usage(u.disk_gib || 0, c.disk_gib || 0, r.disk_gib, ratios.disk,
        (v) => `${v} GiB`)),
      h('td', null, u.instances || 0),
      h('td', null, x.cpu_load === undefined || x.cpu_load === null ? '' : Number(x.cpu_load).toFixed(2)),
      h('td', null, when(x.last_heartbeat)));
  }

  async loadTenants() {
    try {
      const doc = await get('/v1/admin/tenants');
      this.tenants = doc.tenants;
      fillTable($('#tenants'), doc.tenants, (t) => h('tr', { dataset: { id: t.tenant_id } },
        h('td', null, t.name), h('td', { class: 'mono' }, t.tenant_id),
        h('td', null, t.enabled ? 'yes' : 'no'), h('td', null, t.instances),
        h('td', { class: 'actions' }, actionButton('quota', 'Quota'))));
    } catch (e) {
      if (e.status !== 401) showError($('#operator-error'), `Could not list tenants: ${e.message}`);
    }
  }

  async openQuota(id) {
    showError($('#quota-error'), '');
    try {
      const quota = await get(`/v1/admin/tenants/${encodeURIComponent(id)}/quota`);
      const t = this.tenants.find((x) => x.tenant_id === id);
      this.quotaTenant = id;
      $('#quota-tenant').textContent = t ? `${t.name} (${id})` : id;
      for (const f of QUOTA_FIELDS) $(`#quota-${f}`).value = quota[f];
      $('#quota-form').hidden = false;
    } catch (e) {
      if (e.status !== 401) showError($('#quota-error'), e.message);
    }
  }

  async saveQuota() {
    const body = {};
    for (const f of QUOTA_FIELDS) {
      const v = $(`#quota-${f}`).value;
      if (v !== '') body[f] = Number(v);
    }
    $('#quota-save').disabled = true;
    try {
      const quota = await put(`/v1/admin/tenants/${encodeURIComponent(this.quotaTenant)}/quota`, body);
      for (const f of QUOTA_FIELDS) $(`#quota-${f}`).value = quota[f];
      showError($('#quota-error'), '');
      toast(`Saved the quota of ${this.quotaTenant}`);
    } catch (e) {
      if (e.status !== 401) showError($('#quota-error'), e.message);
    } finally {
      $('#quota-save').disabled = false;
    }
  }

  async loadRequests() {
    const path = q('/v1/admin/requests', {
      tenant_id: $('#requests-tenant').value.trim(),
      action: $('#requests-action').value.trim(),
      errors_only: $('#requests-errors').checked ? 'true' : '',
      limit: $('#requests-limit').value,
    });
    try {
      const doc = await get(path);
      showError($('#requests-error'), '');
      fillTable($('#requests'), doc.requests, (r) => h('tr',
        { dataset: { id: r.request_id }, class: r.error_code ? 'failed' : null },
        h('td', { title: r.time }, when(r.time)),
        h('td', { class: 'mono' }, r.tenant_id || ''),
        h('td', { class: 'mono' }, r.access_key_id || ''),
        h('td', { class: 'mono' }, r.action),
        h('td', null, r.http_status),
        h('td', null, r.error_code || ''),
        h('td', null, `${(r.latency_us / 1000).toFixed(1)} ms`)), $('#requests-empty'));
    } catch (e) {
      if (e.status !== 401) showError($('#requests-error'), e.message);
    }
  }
}
