// The instances page: the list with live state, the launch form, and the actions.

import { ApiError, base64Utf8, get, post } from './api.js';
import { $, h, option, showError, toast } from './dom.js';
import { EventStream } from './events.js';

// What each state allows, as EC2 does.
const ACTIONS = {
  pending: ['terminate'],
  running: ['console', 'stop', 'reboot', 'terminate'],
  stopping: ['terminate'],
  stopped: ['start', 'terminate'],
  'shutting-down': [],
  terminated: [],
};
const LABELS = {
  console: 'Console', start: 'Start', stop: 'Stop', reboot: 'Reboot', terminate: 'Terminate',
};
// Actions a reader may take too: watching the screen changes nothing.
const READER_ACTIONS = new Set(['console']);
const GONE_MS = 5000; // a terminated instance stays in view this long, unless shown anyway

export class InstancesPage {
  // 'onSessionOver' is called when the gateway says the session has ended.
  constructor(session, onSessionOver) {
    this.session = session;
    this.rows = new Map(); // instance id -> instance (as the REST API shows it)
    this.loading = null; // events received while the list loads: id -> event
    this.catalogue = null;
    this.stream = new EventStream({
      onOpen: () => this.reload(),
      onInstance: (ev) => this.onEvent(ev),
      onStatus: (s) => this.setLive(s),
      onRefused: () => get('/v1/session').catch((e) => {
        if (e.status === 401) onSessionOver();
      }),
    });
    this.tbody = $('#instances tbody');
    this.bind();
  }

  bind() {
    $('#refresh').onclick = () => this.reload();
    $('#show-terminated').onchange = () => this.render();
    $('#launch-open').onclick = () => this.openLaunch();
    $('#launch-cancel').onclick = () => $('#launch-dialog').close();
    $('#launch-form').onsubmit = (e) => {
      e.preventDefault();
      this.launch();
    };
    $('#launch-subnet').onchange = () => this.fillGroups();
    this.tbody.onclick = (e) => {
      const b = e.target.closest('button[data-action]');
      if (b) this.act(b.closest('tr').dataset.id, b.dataset.action, b);
    };
  }

  show() {
    $('#instances-view').hidden = false;
    this.stream.start(); // its 'open' loads the list
  }

  hide() {
    this.stream.stop();
    $('#instances-view').hidden = true;
    this.rows.clear();
    this.tbody.replaceChildren();
  }

  setLive(state) {
    const el = $('#live');
    el.dataset.live = state;
    el.textContent = { on: 'live', off: 'not live', connecting: 'connecting' }[state];
  }

  // Loads the whole list. Called when the stream (re)opens, so that nothing that happened while
  // it was closed is missed; events that arrive meanwhile win over the list (they are newer).
  async reload() {
    this.loading = new Map();
    try {
      const doc = await get('/v1/instances');
      const fresh = new Map(doc.instances.map((i) => [i.id, i]));
      for (const [id, old] of this.rows) {
        if (old.goneAt && fresh.has(id)) fresh.get(id).goneAt = old.goneAt;
      }
      this.rows = fresh;
      for (const ev of this.loading.values()) this.apply(ev);
      showError($('#instances-error'), '');
    } catch (e) {
      if (e.status !== 401) {
        showError($('#instances-error'), `Could not list instances: ${e.message}`);
      }
    } finally {
      this.loading = null;
      this.render();
    }
  }

  onEvent(ev) {
    // The operator's stream carries every tenant's events; this page lists its own tenant's.
    if (ev.type !== 'instance-state' || ev.tenant_id !== this.session.tenant_id) return;
    if (this.loading) {
      this.loading.set(ev.instance_id, ev);
      return;
    }
    this.apply(ev);
    this.render();
  }

  apply(ev) {
    const row = this.rows.get(ev.instance_id);
    if (!row) {
      this.fetchOne(ev.instance_id); // launched elsewhere (the CLI, another browser)
      return;
    }
    row.state = ev.state;
    if (ev.state === 'terminated' && !row.goneAt) row.goneAt = Date.now();
    if (ev.state === 'running' || ev.reason) this.fetchOne(ev.instance_id); // addresses, reason
  }

  async fetchOne(id) {
    try {
      const inst = await get(`/v1/instances/${encodeURIComponent(id)}`);
      const old = this.rows.get(id);
      if (old && old.goneAt) inst.goneAt = old.goneAt;
      if (inst.state === 'terminated' && !inst.goneAt) inst.goneAt = Date.now();
      this.rows.set(id, inst);
      this.render();
    } catch (e) {
      /* gone, or not ours */
    }
  }

  visible(inst) {
    if (inst.state !== 'terminated' || $('#show-terminated').checked) return true;
    return inst.goneAt && Date.now() - inst.goneAt < GONE_MS;
  }

  render() {
    const list = [...this.rows.values()].filter((i) => this.visible(i));
    list.sort((a, b) => (b.launch_time || '').localeCompare(a.launch_time || '')
      || a.id.localeCompare(b.id));
    this.tbody.replaceChildren(...list.map((i) => this.rowOf(i)));
    $('#instances-empty').hidden = list.length > 0;
    // Terminated rows leave once their time is up.
    const next = list.filter((i) => i.state === 'terminated' && !$('#show-terminated').checked);
    if (next.length && !this.goneTimer) {
      this.goneTimer = setTimeout(() => {
        this.goneTimer = null;
        this.render();
      }, 1000);
    }
  }

  rowOf(i) {
    const name = (i.tags && i.tags.Name) || '';
    const reason = i.state_reason && i.state_reason.message;
    const busy = this.busy && this.busy.has(i.id);
    const gone = i.state === 'terminated' ? 'gone' : null;
    return h('tr', { dataset: { id: i.id, state: i.state }, class: gone },
      h('td', null, name),
      h('td', { class: 'mono' }, i.id),
      h('td', null,
        h('span', { class: 'state', dataset: { state: i.state } }, i.state),
        reason ? h('span', { class: 'reason' }, reason) : null),
      h('td', null, i.instance_type),
      h('td', { class: 'mono' }, i.image_id),
      h('td', { class: 'mono' }, i.private_ip || ''),
      h('td', null, i.launch_time ? new Date(i.launch_time).toLocaleString() : ''),
      h('td', { class: 'actions' },
        (ACTIONS[i.state] || []).map((a) => h('button', {
          type: 'button',
          class: a === 'terminate' ? 'small danger' : 'small',
          dataset: { action: a },
          disabled: busy || (this.session.role === 'reader' && !READER_ACTIONS.has(a)),
        }, LABELS[a]))));
  }

  async act(id, action, button) {
    if (action === 'console') {
      openConsole(id);
      return;
    }
    if (action === 'terminate' && !(await confirmTerminate(id))) return;
    this.busy = this.busy || new Set();
    this.busy.add(id);
    button.disabled = true;
    try {
      const r = await post(`/v1/instances/${encodeURIComponent(id)}/${action}`);
      const row = this.rows.get(id);
      if (row && r && r.state) {
        row.state = r.state;
        if (r.state === 'terminated' && !row.goneAt) row.goneAt = Date.now();
      }
    } catch (e) {
      if (e.status !== 401) toast(`${LABELS[action]} ${id}: ${e.message}`, true);
    } finally {
      this.busy.delete(id);
      this.render();
    }
  }

  // --- launch ---

  async loadCatalogue() {
    const [images, types, subnets, groups, keys] = await Promise.all([
      get('/v1/images'), get('/v1/instance-types'), get('/v1/subnets'),
      get('/v1/security-groups'), get('/v1/keypairs'),
    ]);
    return {
      images: images.images.filter((m) => m.image_type === 'machine' && m.state === 'available'),
      types: types.instance_types.filter((t) => t.enabled),
      subnets: subnets.subnets,
      groups: groups.security_groups || [],
      keys: keys.keypairs,
    };
  }

  async openLaunch() {
    const dlg = $('#launch-dialog');
    showError($('#launch-error'), '');
    $('#launch-submit').disabled = true;
    dlg.showModal();
    try {
      this.catalogue = await this.loadCatalogue();
    } catch (e) {
      showError($('#launch-error'), `Could not load the choices: ${e.message}`);
      return;
    }
    const c = this.catalogue;
    $('#launch-image').replaceChildren(...c.images.map((m) => option(m.id, `${m.name} (${m.id})`)));
    const types = [...c.types].sort((a, b) => a.vcpus - b.vcpus || a.memory_mib - b.memory_mib);
    $('#launch-type').replaceChildren(...types.map((t) => option(t.name,
      `${t.name} (${t.vcpus} vCPU, ${t.memory_mib} MiB)`, t.name === 't3.nano')));
    $('#launch-subnet').replaceChildren(option('', '(none)'),
      ...c.subnets.map((s) => option(s.id, `${s.id}: ${s.cidr_block} in ${s.vpc_id}, ${s.zone}`)));
    $('#launch-key').replaceChildren(option('', '(none)'),
      ...c.keys.map((k) => option(k.name, k.name)));
    this.fillGroups();
    $('#launch-submit').disabled = c.images.length === 0;
    if (c.images.length === 0) {
      showError($('#launch-error'), 'There is no machine image to launch.');
    }
  }

  fillGroups() {
    const sel = $('#launch-groups');
    const id = $('#launch-subnet').value;
    const subnet = this.catalogue && this.catalogue.subnets.find((s) => s.id === id);
    const groups = subnet ? this.catalogue.groups.filter((g) => g.vpc_id === subnet.vpc_id) : [];
    sel.replaceChildren(...groups.map((g) => option(g.id, `${g.name} (${g.id})`)));
    sel.disabled = !subnet;
  }

  async launch() {
    const body = {
      image_id: $('#launch-image').value,
      instance_type: $('#launch-type').value,
      count: Number($('#launch-count').value) || 1,
    };
    const name = $('#launch-name').value.trim();
    if (name) body.tags = { Name: name };
    const subnet = $('#launch-subnet').value;
    if (subnet) body.subnet_id = subnet;
    const groups = [...$('#launch-groups').selectedOptions].map((o) => o.value);
    if (subnet && groups.length) body.security_group_ids = groups;
    const key = $('#launch-key').value;
    if (key) body.key_name = key;
    const userData = $('#launch-user-data').value;
    if (userData) body.user_data = base64Utf8(userData);
    $('#launch-submit').disabled = true;
    try {
      const doc = await post('/v1/instances', body);
      for (const i of doc.instances) this.rows.set(i.id, i);
      $('#launch-dialog').close();
      $('#launch-form').reset();
      toast(`Launched ${doc.instances.map((i) => i.id).join(', ')}`);
      this.render();
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 401) showError($('#launch-error'), e.message);
    } finally {
      $('#launch-submit').disabled = false;
    }
  }
}

function confirmTerminate(id) {
  const dlg = $('#confirm-dialog');
  $('#confirm-text').textContent = `Terminate ${id}? Its disks are deleted; this cannot be undone.`;
  dlg.returnValue = '';
  dlg.showModal();
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
  });
}

// Opens the instance's screen in a tab of its own (vnc.html), with a single-use ticket asked for
// now: the tab is opened first, inside the click, so that pop-up blockers let it through.
async function openConsole(id) {
  const tab = window.open('', `console-${id}`);
  try {
    const t = await post(`/v1/instances/${encodeURIComponent(id)}/vnc`);
    if (tab) tab.location.replace(t.viewer);
    else window.location.assign(t.viewer);
  } catch (e) {
    if (tab) tab.close();
    if (e.status !== 401) toast(`Console ${id}: ${e.message}`, true);
  }
}
