// The network page: VPCs, subnets, security groups and their rules, elastic IPs, VPN
// connections (customer gateways, VPN gateways, connections, their configuration to download),
// and, in network_routing.js, route tables and remote access.
// One refresh loads every list, since the forms' choices (a VPC, a group) come from the others.

import { get, post, del } from './api.js';
import {
  $, h, actionButton, confirmAction, download, fillTable, onRowAction, option, showError, toast,
} from './dom.js';
import { RoutingSections } from './network_routing.js';

const enc = encodeURIComponent;
const nameOf = (r) => (r.tags && r.tags.Name) || '';

// A rule as the API names it when removing it: the fields that identify it, without its id.
function ruleKey(r) {
  const k = { direction: r.direction, protocol: r.protocol };
  if (r.from_port !== undefined && r.from_port !== null) k.from_port = r.from_port;
  if (r.to_port !== undefined && r.to_port !== null) k.to_port = r.to_port;
  if (r.cidr) k.cidr = r.cidr;
  if (r.group_id) k.group_id = r.group_id;
  return k;
}

function ruleText(r) {
  const proto = r.protocol === '-1' ? 'all' : r.protocol;
  let ports = '';
  if (r.protocol !== '-1' && r.from_port !== undefined && r.from_port !== null) {
    ports = r.from_port === r.to_port ? `:${r.from_port}` : `:${r.from_port}-${r.to_port}`;
  }
  const peer = r.cidr || r.group_id || '';
  return `${r.direction === 'ingress' ? 'in' : 'out'} ${proto}${ports} ${r.direction === 'ingress' ? 'from' : 'to'} ${peer}`;
}

export class NetworkPage {
  constructor(session) {
    this.session = session;
    this.data = {
      vpcs: [], subnets: [], groups: [], igws: [], addresses: [], instances: [], cgws: [],
      vgws: [], vpns: [], zones: [], rtbs: [], ras: [],
    };
    this.bind();
    this.routing = new RoutingSections(this);
  }

  bind() {
    $('#network-refresh').onclick = () => this.reload();
    this.form('#vpc-form', '#vpc-error', () => this.createVpc());
    this.form('#subnet-form', '#subnet-error', () => this.createSubnet());
    this.form('#sg-form', '#sg-error', () => this.createGroup());
    this.form('#rule-form', '#rule-error', () => this.addRule());
    this.form('#igw-form', '#igw-error', () => this.createIgw());
    this.form('#cgw-form', '#vpn-error', () => this.createCgw());
    this.form('#vgw-form', '#vpn-error', () => this.createVgw());
    this.form('#vpn-form', '#vpn-error', () => this.createVpn());
    $('#eip-allocate').onclick = () => this.guard($('#eip-allocate'), '#eip-error', async () => {
      const a = await post('/v1/addresses', {});
      toast(`Allocated ${a.public_ip}`);
    });
    onRowAction($('#vpcs'), (id, a) => this.remove(a, `/v1/vpcs/${enc(id)}`, `VPC ${id}`, '#vpc-error'));
    onRowAction($('#subnets'), (id, a) => this.remove(a, `/v1/subnets/${enc(id)}`, `subnet ${id}`,
      '#subnet-error'));
    onRowAction($('#groups'), (id, a, b) => this.groupAction(id, a, b));
    onRowAction($('#igws'), (id, a) => this.igwAction(id, a));
    onRowAction($('#addresses'), (id, a, b) => this.addressAction(id, a, b));
    onRowAction($('#vpns'), (id, a) => this.vpnAction(id, a));
  }

  // A form whose submit runs 'fn' with its button disabled and any API error shown in 'err'.
  form(sel, err, fn) {
    const f = $(sel);
    f.onsubmit = (e) => {
      e.preventDefault();
      this.guard(f.querySelector('button[type="submit"]'), err, fn);
    };
  }

  // The lists load again after a failure too: a two-step form (create, then attach) may have
  // done its first step.
  async guard(button, err, fn) {
    button.disabled = true;
    showError($(err), '');
    try {
      await fn();
    } catch (e) {
      if (e.status !== 401) showError($(err), e.message);
    } finally {
      button.disabled = false;
    }
    await this.reload();
  }

  show() {
    $('#network-view').hidden = false;
    this.reload();
  }

  hide() {
    $('#network-view').hidden = true;
  }

  async reload() {
    const lists = {
      vpcs: ['/v1/vpcs', 'vpcs'],
      subnets: ['/v1/subnets', 'subnets'],
      groups: ['/v1/security-groups', 'security_groups'],
      igws: ['/v1/internet-gateways', 'internet_gateways'],
      addresses: ['/v1/addresses', 'addresses'],
      instances: ['/v1/instances?instance-state-name=pending,running,stopping,stopped', 'instances'],
      cgws: ['/v1/customer-gateways', 'customer_gateways'],
      vgws: ['/v1/vpn-gateways', 'vpn_gateways'],
      vpns: ['/v1/vpn-connections', 'vpn_connections'],
      zones: ['/v1/zones', 'zones'],
      rtbs: ['/v1/route-tables', 'route_tables'],
      ras: ['/v1/remote-access', 'remote_access'],
    };
    // Each list on its own: one that fails (an API not deployed) does not blank the others.
    const failed = [];
    await Promise.all(Object.entries(lists).map(async ([k, [path, field]]) => {
      try {
        this.data[k] = (await get(path))[field] || [];
      } catch (e) {
        if (e.status !== 401) failed.push(`${path}: ${e.message}`);
      }
    }));
    showError($('#network-error'), failed.length ? `Could not load ${failed.join('; ')}` : '');
    this.render();
  }

  render() {
    const d = this.data;
    fillTable($('#vpcs'), d.vpcs, (v) => h('tr', { dataset: { id: v.id } },
      h('td', null, nameOf(v)), h('td', { class: 'mono' }, v.id),
      h('td', { class: 'mono' }, v.cidr_block), h('td', null, v.state),
      h('td', { class: 'actions' }, this.writeButton('delete', 'Delete', true))), $('#vpcs-empty'));
    fillTable($('#subnets'), d.subnets, (s) => h('tr', { dataset: { id: s.id } },
      h('td', { class: 'mono' }, s.id), h('td', { class: 'mono' }, s.vpc_id),
      h('td', { class: 'mono' }, s.cidr_block), h('td', null, s.zone),
      h('td', null, s.available_ips),
      h('td', { class: 'actions' }, this.writeButton('delete', 'Delete', true))),
    $('#subnets-empty'));
    fillTable($('#groups'), d.groups, (g) => h('tr', { dataset: { id: g.id } },
      h('td', null, g.name, h('span', { class: 'reason' }, g.description)),
      h('td', { class: 'mono' }, g.id), h('td', { class: 'mono' }, g.vpc_id),
      h('td', null, h('ul', { class: 'rules' }, g.rules.map((r, i) => h('li',
        { dataset: { rule: i, direction: r.direction } }, h('span', { class: 'mono' }, ruleText(r)),
        this.session.role === 'reader' ? null : h('button', {
          type: 'button', class: 'small quiet', dataset: { action: 'remove-rule', rule: i },
          title: 'Remove this rule',
        }, '×'))))),
      h('td', { class: 'actions' },
        g.name === 'default' ? null : this.writeButton('delete', 'Delete', true))),
    $('#groups-empty'));
    fillTable($('#igws'), d.igws, (g) => h('tr', { dataset: { id: g.id } },
      h('td', { class: 'mono' }, g.id), h('td', { class: 'mono' }, g.vpc_id || '(detached)'),
      h('td', { class: 'actions' },
        g.vpc_id ? this.writeButton('detach', 'Detach') : this.writeButton('delete', 'Delete', true))),
    $('#igws-empty'));
    fillTable($('#addresses'), d.addresses, (a) => this.addressRow(a), $('#addresses-empty'));
    fillTable($('#vpns'), d.vpns, (v) => h('tr', { dataset: { id: v.id, state: v.state } },
      h('td', { class: 'mono' }, v.id), h('td', null, v.state),
      h('td', null, (v.tunnel && v.tunnel.status) || ''),
      h('td', { class: 'mono' }, v.customer_gateway_id, h('span', { class: 'reason' }, v.customer_ip)),
      h('td', { class: 'mono' }, v.vpn_gateway_id), h('td', { class: 'mono' }, v.outside_ip),
      h('td', { class: 'actions' },
        v.state === 'deleted' ? null : actionButton('config', 'Download configuration'),
        v.state === 'deleted' ? null : this.writeButton('delete', 'Delete', true))),
    $('#vpns-empty'));
    this.routing.render();
    this.fillChoices();
  }

  writeButton(action, label, danger) {
    return actionButton(action, label, { danger, disabled: this.session.role === 'reader' });
  }

  // The forms' selects, keeping what was chosen when it is still there.
  fillChoices() {
    const d = this.data;
    const keep = (sel, opts) => {
      const el = $(sel);
      const was = el.value;
      el.replaceChildren(...opts);
      if ([...el.options].some((o) => o.value === was)) el.value = was;
    };
    const vpcOpts = () => d.vpcs.map((v) => option(v.id, `${v.id} ${v.cidr_block} ${nameOf(v)}`));
    keep('#subnet-vpc', vpcOpts());
    keep('#sg-vpc', vpcOpts());
    keep('#vgw-vpc', [option('', '(none)'), ...vpcOpts()]);
    // A VPC has at most one internet gateway: offer those without one.
    const withIgw = new Set(d.igws.map((g) => g.vpc_id).filter(Boolean));
    keep('#igw-vpc', [option('', '(none)'), ...d.vpcs.filter((v) => !withIgw.has(v.id))
      .map((v) => option(v.id, `${v.id} ${v.cidr_block} ${nameOf(v)}`))]);
    keep('#subnet-zone', [option('', '(default)'), ...d.zones.map((z) => option(z.name, z.name))]);
    keep('#rule-group', d.groups.map((g) => option(g.id, `${g.name} (${g.id})`)));
    keep('#vpn-cgw', d.cgws.filter((c) => c.state !== 'deleted')
      .map((c) => option(c.id, `${c.id} ${c.ip_address}`)));
    keep('#vpn-vgw', d.vgws.filter((v) => v.state !== 'deleted')
      .map((v) => option(v.id, `${v.id}${v.vpc_id ? ` in ${v.vpc_id}` : ' (detached)'}`)));
    this.routing.fillChoices(keep, vpcOpts);
  }

  // --- VPCs, subnets, groups ---

  async createVpc() {
    const body = { cidr_block: $('#vpc-cidr').value.trim() };
    const name = $('#vpc-name').value.trim();
    if (name) body.tags = { Name: name };
    const v = await post('/v1/vpcs', body);
    $('#vpc-form').reset();
    toast(`Created ${v.id}`);
  }

  async createSubnet() {
    const body = { vpc_id: $('#subnet-vpc').value, cidr_block: $('#subnet-cidr').value.trim() };
    if ($('#subnet-zone').value) body.zone = $('#subnet-zone').value;
    const s = await post('/v1/subnets', body);
    $('#subnet-cidr').value = '';
    toast(`Created ${s.id}`);
  }

  async createGroup() {
    const g = await post('/v1/security-groups', {
      vpc_id: $('#sg-vpc').value,
      name: $('#sg-name').value.trim(),
      description: $('#sg-description').value.trim(),
    });
    $('#sg-name').value = '';
    $('#sg-description').value = '';
    toast(`Created ${g.id}`);
    this.pendingGroup = g.id; // chosen in the rule form once the list is back
  }

  async addRule() {
    const rule = {
      direction: $('#rule-direction').value,
      protocol: $('#rule-protocol').value,
      cidr: $('#rule-cidr').value.trim(),
    };
    if (rule.protocol !== '-1') {
      rule.from_port = Number($('#rule-from').value);
      rule.to_port = Number($('#rule-to').value);
    }
    const id = $('#rule-group').value;
    await post(`/v1/security-groups/${enc(id)}/rules`, { rules: [rule] });
    toast(`Added ${ruleText(rule)} to ${id}`);
  }

  async groupAction(id, action, button) {
    if (action === 'delete') {
      await this.remove(action, `/v1/security-groups/${enc(id)}`, `security group ${id}`, '#sg-error');
      return;
    }
    const g = this.data.groups.find((x) => x.id === id);
    const r = g && g.rules[Number(button.dataset.rule)];
    if (!r) return;
    showError($('#rule-error'), '');
    try {
      await del(`/v1/security-groups/${enc(id)}/rules`, { rules: [ruleKey(r)] });
      toast(`Removed ${ruleText(r)} from ${id}`);
    } catch (e) {
      if (e.status !== 401) showError($('#rule-error'), e.message);
    }
    await this.reload();
  }

  // Deletes after asking; errors (a VPC with subnets...) show next to the list's form.
  async remove(action, path, what, err) {
    if (action !== 'delete') return;
    if (!(await confirmAction(`Delete ${what}?`, 'Delete'))) return;
    showError($(err), '');
    try {
      await del(path);
      toast(`Deleted ${what}`);
    } catch (e) {
      if (e.status !== 401) showError($(err), e.message);
    }
    await this.reload();
  }

  // --- internet gateways ---

  async createIgw() {
    const g = await post('/v1/internet-gateways', {});
    const vpc = $('#igw-vpc').value;
    if (vpc) await post(`/v1/internet-gateways/${enc(g.id)}/attach`, { vpc_id: vpc });
    toast(`Internet gateway ${g.id}${vpc ? ` attached to ${vpc}` : ''}`);
  }

  async igwAction(id, action) {
    if (action === 'delete') {
      await this.remove(action, `/v1/internet-gateways/${enc(id)}`, `internet gateway ${id}`,
        '#igw-error');
      return;
    }
    const g = this.data.igws.find((x) => x.id === id);
    if (action !== 'detach' || !g || !g.vpc_id) return;
    showError($('#igw-error'), '');
    try {
      await post(`/v1/internet-gateways/${enc(id)}/detach`, { vpc_id: g.vpc_id });
      toast(`Detached ${id} from ${g.vpc_id}`);
    } catch (e) {
      if (e.status !== 401) showError($('#igw-error'), e.message);
    }
    await this.reload();
  }

  // --- elastic IPs ---

  addressRow(a) {
    const reader = this.session.role === 'reader';
    const cells = [
      h('td', { class: 'mono' }, a.public_ip), h('td', { class: 'mono' }, a.id),
      h('td', { class: 'mono' }, a.instance_id || a.network_interface_id || ''),
      h('td', { class: 'mono' }, a.private_ip || ''),
    ];
    let actions;
    if (a.association_id) {
      actions = [actionButton('disassociate', 'Disassociate', { disabled: reader })];
    } else {
      // The instances an address can go to: those with a network interface (in a subnet).
      const choices = this.data.instances.filter((i) => i.subnet_id || i.private_ip);
      actions = [
        h('select', { class: 'small', 'aria-label': `Instance for ${a.public_ip}` },
          option('', choices.length ? '(instance)' : '(no instance in a subnet)'),
          choices.map((i) => option(i.id, `${nameOf(i) || i.id} ${i.private_ip || ''}`))),
        actionButton('associate', 'Associate', { disabled: reader || !choices.length }),
        actionButton('release', 'Release', { danger: true, disabled: reader }),
      ];
    }
    return h('tr', { dataset: { id: a.id, ip: a.public_ip } }, cells,
      h('td', { class: 'actions' }, actions));
  }

  async addressAction(id, action, button) {
    showError($('#eip-error'), '');
    try {
      if (action === 'associate') {
        const instance = button.closest('tr').querySelector('select').value;
        if (!instance) {
          showError($('#eip-error'), 'Choose the instance to associate the address with.');
          return;
        }
        await post(`/v1/addresses/${enc(id)}/associate`, { instance_id: instance });
      } else if (action === 'disassociate') {
        await post(`/v1/addresses/${enc(id)}/disassociate`, {});
      } else if (action === 'release') {
        if (!(await confirmAction(`Release ${id}? Its address goes back to the pool.`, 'Release'))) {
          return;
        }
        await del(`/v1/addresses/${enc(id)}`);
      }
      toast(`${{ associate: 'Associated', disassociate: 'Disassociated', release: 'Released' }[action]} ${id}`);
    } catch (e) {
      if (e.status !== 401) showError($('#eip-error'), e.message);
    }
    await this.reload();
  }

  // --- VPN ---

  async createCgw() {
    const body = { ip_address: $('#cgw-ip').value.trim() };
    const asn = $('#cgw-asn').value;
    if (asn) body.bgp_asn = Number(asn);
    const c = await post('/v1/customer-gateways', body);
    $('#cgw-ip').value = '';
    toast(`Customer gateway ${c.id}`);
  }

  async createVgw() {
    const g = await post('/v1/vpn-gateways', {});
    const vpc = $('#vgw-vpc').value;
    if (vpc) await post(`/v1/vpn-gateways/${enc(g.id)}/attach`, { vpc_id: vpc });
    toast(`VPN gateway ${g.id}${vpc ? ` attached to ${vpc}` : ''}`);
  }

  async createVpn() {
    const v = await post('/v1/vpn-connections', {
      customer_gateway_id: $('#vpn-cgw').value,
      vpn_gateway_id: $('#vpn-vgw').value,
      static_routes_only: true,
    });
    toast(`VPN connection ${v.id}`);
  }

  async vpnAction(id, action) {
    if (action === 'delete') {
      await this.remove(action, `/v1/vpn-connections/${enc(id)}`, `VPN connection ${id}`, '#vpn-error');
      return;
    }
    showError($('#vpn-error'), '');
    try {
      // The list may not carry the document; the connection itself does.
      const v = await get(`/v1/vpn-connections/${enc(id)}`);
      if (!v.customer_gateway_configuration) {
        showError($('#vpn-error'), `${id} has no configuration (it is ${v.state}).`);
        return;
      }
      download(`${id}.xml`, v.customer_gateway_configuration, 'application/xml');
    } catch (e) {
      if (e.status !== 401) showError($('#vpn-error'), e.message);
    }
  }
}
