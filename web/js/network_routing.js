// The network page's route tables and remote access (WireGuard endpoints into a VPC, their
// peers). Part of NetworkPage (network.js), which loads every list in one refresh and hands
// them here: 'page.data' has route_tables, remote_access and the others.
//
// A peer's key pair is made in the browser (WebCrypto X25519) unless the user gives the
// device's public key: the API takes the public key only and answers the wg-quick
// configuration with a placeholder for the private key, which the page fills in. The private
// key never leaves the browser and nubo does not keep it, so the filled-in configuration can
// be downloaded this once only.

import { get, post, del } from './api.js';
import {
  $, h, actionButton, confirmAction, download, fillTable, onRowAction, option, showError, toast,
} from './dom.js';

const enc = encodeURIComponent;
const nameOf = (r) => (r.tags && r.tags.Name) || '';

// base64url (JWK) to the standard base64 WireGuard keys are written in.
function base64OfJwk(s) {
  const b = s.replace(/-/g, '+').replace(/_/g, '/');
  return b + '='.repeat((4 - (b.length % 4)) % 4);
}

// A WireGuard key pair: {privateKey, publicKey} in base64, or null when the browser cannot
// make one (no X25519 in WebCrypto, or a page not served over HTTPS or from localhost).
export async function wireguardKeyPair() {
  if (!window.isSecureContext || !crypto.subtle) return null;
  try {
    const k = await crypto.subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']);
    const jwk = await crypto.subtle.exportKey('jwk', k.privateKey);
    return { privateKey: base64OfJwk(jwk.d), publicKey: base64OfJwk(jwk.x) };
  } catch (e) {
    return null;
  }
}

export function routeText(r) {
  return `${r.destination} → ${r.gateway_id}${r.state === 'active' ? '' : ` (${r.state})`}`;
}

export class RoutingSections {
  constructor(page) {
    this.page = page; // NetworkPage: data, session, form(), guard(), remove(), reload()
    this.peersOf = null; // the endpoint whose peers the dialog shows
    this.peers = [];
    this.bind();
  }

  bind() {
    const p = this.page;
    p.form('#rtb-form', '#rtb-error', () => this.createTable());
    p.form('#route-form', '#rtb-error', () => this.addRoute());
    p.form('#assoc-form', '#rtb-error', () => this.associate());
    p.form('#ra-form', '#ra-error', () => this.createEndpoint());
    $('#route-table').onchange = () => this.fillTargets();
    $('#assoc-table').onchange = () => this.fillSubnets();
    onRowAction($('#rtbs'), (id, a, b) => this.tableAction(id, a, b));
    onRowAction($('#ras'), (id, a) => this.endpointAction(id, a));
    onRowAction($('#peers'), (id, a) => this.peerAction(id, a));
    $('#peer-form').onsubmit = (e) => {
      e.preventDefault();
      this.addPeer();
    };
    $('#peers-close').onclick = () => $('#peers-dialog').close();
    // The private key goes with the dialog: nothing of it stays in the page.
    $('#peers-dialog').addEventListener('close', () => this.forgetConfig());
    $('#peer-download').onclick = () => {
      if (this.config) download(this.config.name, this.config.text, 'text/plain');
    };
  }

  render() {
    const d = this.page.data;
    const reader = this.page.session.role === 'reader';
    fillTable($('#rtbs'), d.rtbs, (t) => {
      const subnets = t.associations.filter((a) => a.subnet_id);
      return h('tr', { dataset: { id: t.id, main: t.main ? 'yes' : 'no' } },
        h('td', { class: 'mono' }, t.id, h('span', { class: 'reason' }, nameOf(t))),
        h('td', { class: 'mono' }, t.vpc_id),
        h('td', null, t.main ? 'main' : 'no'),
        h('td', { class: 'routes', dataset: { count: t.routes.length } },
          h('span', { class: 'reason' }, `${t.routes.length} route${t.routes.length === 1 ? '' : 's'}`),
          h('ul', { class: 'rules' }, t.routes.map((r) => h('li',
            { dataset: { destination: r.destination, target: r.gateway_id, state: r.state } },
            h('span', { class: 'mono' }, routeText(r)),
            reader || r.gateway_id === 'local' ? null : h('button', {
              type: 'button', class: 'small quiet',
              dataset: { action: 'remove-route', destination: r.destination },
              title: 'Remove this route',
            }, '×'))))),
        h('td', null, h('ul', { class: 'rules' },
          t.main ? h('li', { class: 'reason' }, 'subnets without a table of their own') : null,
          subnets.map((a) => h('li', { dataset: { subnet: a.subnet_id, assoc: a.id } },
            h('span', { class: 'mono' }, a.subnet_id),
            reader ? null : h('button', {
              type: 'button', class: 'small quiet', dataset: { action: 'disassociate', assoc: a.id },
              title: `Disassociate ${a.subnet_id} (it uses the main table again)`,
            }, '×'))))),
        h('td', { class: 'actions' },
          t.main ? null : this.page.writeButton('delete', 'Delete', true)));
    }, $('#rtbs-empty'));
    fillTable($('#ras'), d.ras, (e) => h('tr', { dataset: { id: e.id, state: e.state } },
      h('td', { class: 'mono' }, e.id, h('span', { class: 'reason' }, e.description)),
      h('td', { class: 'mono' }, e.vpc_id, h('span', { class: 'reason' }, e.vpc_cidr)),
      h('td', { class: 'mono' }, e.client_cidr),
      h('td', { class: 'mono' }, `${e.outside_ip}:${e.listen_port}`),
      h('td', { class: 'mono key' }, e.public_key),
      h('td', null, e.state), h('td', { class: 'peers' }, e.peers),
      h('td', { class: 'actions' }, actionButton('peers', 'Peers'),
        this.page.writeButton('delete', 'Delete', true))), $('#ras-empty'));
    // The dialog's endpoint may be gone (deleted elsewhere).
    if (this.peersOf && !d.ras.some((e) => e.id === this.peersOf)) $('#peers-dialog').close();
  }

  fillChoices(keep, vpcOpts) {
    const d = this.page.data;
    keep('#rtb-vpc', vpcOpts());
    keep('#ra-vpc', vpcOpts());
    const tables = d.rtbs.map((t) => option(t.id,
      `${t.id}${t.main ? ' (main)' : ''} ${nameOf(t)} in ${t.vpc_id}`));
    keep('#route-table', tables);
    keep('#assoc-table', d.rtbs.map((t) => option(t.id,
      `${t.id}${t.main ? ' (main)' : ''} ${nameOf(t)} in ${t.vpc_id}`)));
    this.fillTargets();
    this.fillSubnets();
  }

  table(sel) {
    return this.page.data.rtbs.find((t) => t.id === $(sel).value);
  }

  // The gateways a route of the chosen table may go through: those attached to its VPC.
  fillTargets() {
    const t = this.table('#route-table');
    const d = this.page.data;
    const el = $('#route-target');
    const was = el.value;
    const igws = t ? d.igws.filter((g) => g.vpc_id === t.vpc_id) : [];
    const vgws = t ? d.vgws.filter((g) => g.vpc_id === t.vpc_id && g.state !== 'deleted') : [];
    el.replaceChildren(
      ...igws.map((g) => option(g.id, `${g.id} (internet gateway)`)),
      ...vgws.map((g) => option(g.id, `${g.id} (VPN gateway)`)));
    if (!el.options.length) el.append(option('', t ? '(no gateway attached to its VPC)' : ''));
    if ([...el.options].some((o) => o.value === was)) el.value = was;
  }

  // The subnets of the chosen table's VPC.
  fillSubnets() {
    const t = this.table('#assoc-table');
    const el = $('#assoc-subnet');
    const was = el.value;
    el.replaceChildren(...(t ? this.page.data.subnets.filter((s) => s.vpc_id === t.vpc_id) : [])
      .map((s) => option(s.id, `${s.id} ${s.cidr_block}`)));
    if ([...el.options].some((o) => o.value === was)) el.value = was;
  }

  // --- route tables ---

  async createTable() {
    const body = { vpc_id: $('#rtb-vpc').value };
    const name = $('#rtb-name').value.trim();
    if (name) body.tags = { Name: name };
    const t = await post('/v1/route-tables', body);
    $('#rtb-name').value = '';
    toast(`Created ${t.id}`);
  }

  async addRoute() {
    const id = $('#route-table').value;
    const route = { destination: $('#route-destination').value.trim(),
      gateway_id: $('#route-target').value };
    if (!route.gateway_id) throw new Error('Attach an internet or VPN gateway to the VPC first.');
    await post(`/v1/route-tables/${enc(id)}/routes`, route);
    toast(`Added ${routeText({ ...route, state: 'active' })} to ${id}`);
  }

  async associate() {
    const id = $('#assoc-table').value;
    const subnet = $('#assoc-subnet').value;
    if (!subnet) throw new Error('The table\'s VPC has no subnet.');
    const a = await post(`/v1/route-tables/${enc(id)}/associations`, { subnet_id: subnet });
    toast(`Associated ${subnet} with ${id} (${a.id})`);
  }

  async tableAction(id, action, button) {
    const err = '#rtb-error';
    if (action === 'delete') {
      await this.page.remove(action, `/v1/route-tables/${enc(id)}`, `route table ${id}`, err);
      return;
    }
    showError($(err), '');
    try {
      if (action === 'remove-route') {
        const dest = button.dataset.destination;
        await del(`/v1/route-tables/${enc(id)}/routes`, { destination: dest });
        toast(`Removed the route to ${dest} from ${id}`);
      } else if (action === 'disassociate') {
        await del(`/v1/route-tables/${enc(id)}/associations/${enc(button.dataset.assoc)}`);
        toast(`Disassociated ${button.closest('li').dataset.subnet} from ${id}`);
      }
    } catch (e) {
      if (e.status !== 401) showError($(err), e.message);
    }
    await this.page.reload();
  }

  // --- remote access ---

  async createEndpoint() {
    const body = { vpc_id: $('#ra-vpc').value, client_cidr: $('#ra-cidr').value.trim() };
    const description = $('#ra-description').value.trim();
    if (description) body.description = description;
    const e = await post('/v1/remote-access', body);
    $('#ra-cidr').value = '';
    $('#ra-description').value = '';
    toast(`Remote access ${e.id} on ${e.outside_ip}:${e.listen_port}`);
  }

  async endpointAction(id, action) {
    if (action === 'delete') {
      await this.page.remove(action, `/v1/remote-access/${enc(id)}`,
        `remote access ${id} and its peers`, '#ra-error');
      return;
    }
    if (action !== 'peers') return;
    this.peersOf = id;
    this.forgetConfig();
    $('#peers-endpoint').textContent = id;
    $('#peer-form').reset();
    $('#peer-form').querySelector('button[type="submit"]').disabled =
      this.page.session.role === 'reader';
    showError($('#peer-error'), '');
    fillTable($('#peers'), [], () => null, $('#peers-empty'));
    $('#peers-dialog').showModal();
    await this.loadPeers();
  }

  async loadPeers() {
    const id = this.peersOf;
    try {
      this.peers = (await get(`/v1/remote-access/${enc(id)}/peers`)).peers || [];
    } catch (e) {
      if (e.status !== 401) showError($('#peer-error'), e.message);
      return;
    }
    if (id !== this.peersOf) return;
    fillTable($('#peers'), this.peers, (p) => h('tr', { dataset: { id: p.id, address: p.address } },
      h('td', null, p.name), h('td', { class: 'mono' }, p.id),
      h('td', { class: 'mono' }, p.address), h('td', { class: 'mono key' }, p.public_key),
      h('td', { class: 'actions' }, this.page.writeButton('delete', 'Delete', true))),
    $('#peers-empty'));
  }

  async addPeer() {
    const button = $('#peer-add');
    button.disabled = true;
    showError($('#peer-error'), '');
    this.forgetConfig();
    const id = this.peersOf;
    try {
      let key = $('#peer-key').value.trim();
      let pair = null;
      if (!key) {
        pair = await wireguardKeyPair();
        if (!pair) {
          throw new Error('This browser cannot make a WireGuard key pair here (it needs HTTPS): '
            + 'paste the device\'s public key (wg genkey | wg pubkey).');
        }
        key = pair.publicKey;
      }
      const body = { public_key: key };
      const name = $('#peer-name').value.trim();
      if (name) body.name = name;
      const p = await post(`/v1/remote-access/${enc(id)}/peers`, body);
      let text = p.client_config;
      if (pair) {
        const filled = text.replace(/^PrivateKey = .*$/m, `PrivateKey = ${pair.privateKey}`);
        if (filled === text) throw new Error('The configuration answered has no PrivateKey line.');
        text = filled;
      }
      this.config = { name: `${p.name || p.id}.conf`.replace(/[^A-Za-z0-9._-]/g, '_'), text };
      $('#peer-config').value = text;
      $('#peer-config-note').textContent = pair
        ? `${p.id} (${p.address}): its private key was made in this browser and is not kept by `
          + 'nubo. This configuration is shown this once: download it now, and keep it secret.'
        : `${p.id} (${p.address}): replace the PrivateKey line with the device's private key.`;
      $('#peer-config-box').hidden = false;
      $('#peer-form').reset();
      toast(`Added peer ${p.id} at ${p.address}`);
    } catch (e) {
      if (e.status !== 401) showError($('#peer-error'), e.message);
    } finally {
      button.disabled = this.page.session.role === 'reader';
    }
    await this.loadPeers();
    await this.page.reload(); // the endpoint's peer count
  }

  forgetConfig() {
    this.config = null;
    $('#peer-config').value = '';
    $('#peer-config-box').hidden = true;
  }

  async peerAction(peer, action) {
    if (action !== 'delete') return;
    const id = this.peersOf;
    if (!(await confirmAction(`Remove peer ${peer} from ${id}? Its device can no longer connect.`,
      'Remove'))) return;
    showError($('#peer-error'), '');
    try {
      await del(`/v1/remote-access/${enc(id)}/peers/${enc(peer)}`);
      toast(`Removed peer ${peer}`);
    } catch (e) {
      if (e.status !== 401) showError($('#peer-error'), e.message);
    }
    await this.loadPeers();
    await this.page.reload();
  }
}
