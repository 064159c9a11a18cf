// The console's images, network, billing and operator pages in headless Chromium, driven by
// Playwright (playwright-core with Debian's /usr/bin/chromium).
//
// Run by tests/e2e/test_console_pages.py, which passes a JSON config in CONSOLE_FLOW_CONFIG:
//   {base, tenant: {account, user, password, id}, other_tenant_id,
//    operator: {account, user, password}, upload_file, upload_size, image_name, vhd_file,
//    vhd_name, host_id, public_image, shared_image, artifacts}
// and reads one line per step on stdout: "STEP <name> <json>", "IMPORTING <task id>" (the test
// then plays nubo-imaged), "SUBNET <subnet id>" (the test launches an instance named
// console-eip-target into it), "CHECK <what> <json>" (the test reads the REST API's answer
// while what the page made still exists, then writes "OK" on stdin), and at the end
// "DONE <json>" (what the browser saw, for the test to check against the REST API) or
// "FAIL <message>" (exit 1). A screenshot of every step goes to <artifacts>/NN-<step>.png.

'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require(process.env.NUBO_PLAYWRIGHT || 'playwright-core');

const cfg = JSON.parse(process.env.CONSOLE_FLOW_CONFIG);
const t0 = Date.now();
let shot = 0;
const seen = {}; // what the browser saw, handed to the test at the end

function say(kind, ...rest) {
  process.stdout.write(`${kind} ${rest.join(' ')}\n`);
}

// The test's answers to CHECK, one line each.
const stdin = require('readline').createInterface({ input: process.stdin });
const answers = stdin[Symbol.asyncIterator]();

async function askTest(what, data) {
  say('CHECK', what, JSON.stringify(data));
  const { value, done } = await answers.next();
  check(!done && value === 'OK', `the test answered CHECK ${what} with ${done ? 'EOF' : value}`);
}

async function step(page, name, extra = {}) {
  shot += 1;
  const file = path.join(cfg.artifacts, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  say('STEP', name, JSON.stringify({ t: (Date.now() - t0) / 1000, screenshot: file, ...extra }));
}

function check(cond, message) {
  if (!cond) throw new Error(message);
}

async function signIn(page, who) {
  await page.goto(`${cfg.base}/console/`);
  await page.locator('#signin-form').waitFor();
  await page.fill('#signin-account', who.account);
  await page.fill('#signin-user', who.user);
  await page.fill('#signin-password', who.password);
  await page.click('#signin-submit');
  await page.locator('#instances-view').waitFor();
}

async function go(page, route) {
  await page.click(`.topbar nav a[href="#${route}"]`);
  await page.locator(`#${route}-view`).waitFor();
}

// --- images ----------------------------------------------------------------------------------

async function images(page) {
  await go(page, 'images');
  // Besides its own, the tenant sees a public image and one shared with it, each marked so.
  await page.locator(`#images tbody tr[data-id="${cfg.public_image}"][data-whose="public"]`).waitFor();
  await page.locator(`#images tbody tr[data-id="${cfg.shared_image}"][data-whose="shared with me"]`)
    .waitFor();
  check(await page.locator(`#images tbody tr[data-id="${cfg.shared_image}"] button`).count() === 0,
    'an image of another tenant has actions');
  await step(page, 'images-list');
  await page.click('#upload-open');
  await page.locator('#upload-dialog').waitFor();
  await page.fill('#upload-name', cfg.image_name);
  await page.selectOption('#upload-format', 'raw');
  await page.fill('#upload-description', 'uploaded by the console test');
  await page.setInputFiles('#upload-file', cfg.upload_file);
  check(await page.locator('#upload-progress').evaluate((p) => p.value) === 0,
    'the progress bar does not start at 0');
  // Every value the bar takes, as the page sets them.
  await page.evaluate(() => {
    window.progressSeen = [];
    const bar = document.querySelector('#upload-progress');
    new MutationObserver(() => window.progressSeen.push(bar.value))
      .observe(document.querySelector('#upload-percent'), { childList: true, characterData: true, subtree: true });
  });
  await step(page, 'upload-form');
  // Over loopback the bytes would leave in one go: throttle the upload (Chromium's network
  // emulation) so that the bar has steps to show on the way.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 4 * 1024 * 1024,
  });
  await page.click('#upload-submit');
  await page.locator('#upload-percent').filter({ hasText: /^100%$/ }).waitFor({ timeout: 60000 });
  await page.locator('#upload-status').filter({ hasText: /^Uploaded:/ }).waitFor({ timeout: 60000 });
  const value = await page.locator('#upload-progress').evaluate((p) => p.value);
  check(value === 100, `the progress bar ends at ${value}, not 100`);
  check(await page.locator('#upload-error').isHidden(), 'the upload shows an error');
  seen.progress = await page.evaluate(() => window.progressSeen);
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1,
  });
  check(seen.progress.some((v) => v > 0 && v < 100),
    `the bar showed no step between 0 and 100: ${JSON.stringify(seen.progress)}`);
  await step(page, 'upload-done', { progress: seen.progress });
  await page.click('#upload-cancel');
  const row = page.locator('#images tbody tr').filter({ hasText: cfg.image_name });
  await row.waitFor();
  seen.image_id = await row.getAttribute('data-id');
  check(/^ami-[0-9a-f]{17}$/.test(seen.image_id || ''), `the new row's id: ${seen.image_id}`);
  check(await row.getAttribute('data-whose') === 'own', 'the uploaded image is not listed as own');
  await row.locator('.state[data-state="available"]').waitFor();
  await step(page, 'image-listed', { id: seen.image_id });

  // A name already used: the API's error shows in the form.
  await page.click('#upload-open');
  await page.fill('#upload-name', cfg.image_name);
  await page.setInputFiles('#upload-file', cfg.upload_file);
  await page.click('#upload-submit');
  await page.locator('#upload-error').filter({ hasText: 'could not be registered' }).waitFor();
  seen.upload_error = await page.locator('#upload-error').textContent();
  await step(page, 'upload-duplicate-refused', { error: seen.upload_error });
  await page.click('#upload-cancel');

  // Bytes that are not the format declared: the gateway refuses them at the end of the
  // upload; the page says so and takes the empty record back.
  await page.click('#upload-open');
  await page.fill('#upload-name', `${cfg.image_name}-bad`);
  await page.selectOption('#upload-format', 'qcow2');
  await page.setInputFiles('#upload-file', cfg.upload_file);
  await page.click('#upload-submit');
  await page.locator('#upload-error').filter({ hasText: 'record was removed' }).waitFor();
  seen.bad_format_error = await page.locator('#upload-error').textContent();
  await step(page, 'upload-wrong-format-refused', { error: seen.bad_format_error });
  await page.click('#upload-cancel');
  await page.click('#images-refresh');
  await page.locator('#images tbody tr').filter({ hasText: `${cfg.image_name}-bad` })
    .waitFor({ state: 'detached' });

  // Share it with the other tenant; a malformed id is refused in the page first.
  await row.locator('button[data-action="share"]').click();
  await page.locator('#share-dialog').waitFor();
  await page.fill('#share-add', '12345');
  await page.click('#share-submit');
  await page.locator('#share-error').filter({ hasText: '12-digit' }).waitFor();
  await page.fill('#share-add', cfg.other_tenant_id);
  await page.click('#share-submit');
  await page.locator(`#share-tenants li[data-tenant="${cfg.other_tenant_id}"]`).waitFor();
  check(await page.locator('#share-error').isHidden(), 'sharing shows an error');
  await step(page, 'image-shared', { with: cfg.other_tenant_id });
  await page.click('#share-cancel');

  // Import a VHD: uploaded, then converted by nubo-imaged (here the test plays it, moving the
  // task to 40% and then to completed when told IMPORTING); the page follows the task.
  await page.click('#upload-open');
  await page.fill('#upload-name', cfg.vhd_name);
  await page.selectOption('#upload-format', 'vhd');
  await page.setInputFiles('#upload-file', cfg.vhd_file);
  await page.evaluate(() => {
    window.importSeen = [];
    const bar = document.querySelector('#import-progress');
    new MutationObserver(() => window.importSeen.push(bar.value))
      .observe(document.querySelector('#import-percent'), { childList: true, characterData: true, subtree: true });
  });
  await page.click('#upload-submit');
  await page.locator('#import-row').waitFor();
  const status = page.locator('#upload-status').filter({ hasText: /import-ami-[0-9a-f]{17}/ });
  await status.waitFor();
  seen.import_task = (await status.textContent()).match(/import-ami-[0-9a-f]{17}/)[0];
  await step(page, 'import-started', { task: seen.import_task });
  say('IMPORTING', seen.import_task);
  await page.locator('#import-percent').filter({ hasText: /^40%$/ }).waitFor();
  await step(page, 'import-progress', { task: seen.import_task });
  await page.locator('#upload-status').filter({ hasText: /^Imported:/ }).waitFor();
  check(await page.locator('#import-progress').evaluate((p) => p.value) === 100,
    'the import bar does not end at 100');
  seen.import_progress = await page.evaluate(() => window.importSeen);
  await step(page, 'import-done', { task: seen.import_task, progress: seen.import_progress });
  await page.click('#upload-cancel');
  await page.locator('#images tbody tr').filter({ hasText: cfg.vhd_name }).waitFor();
}

// --- network ---------------------------------------------------------------------------------

async function network(page) {
  await go(page, 'network');
  await page.fill('#vpc-cidr', '10.77.0.0/16');
  await page.fill('#vpc-name', 'console-vpc');
  await page.click('#vpc-create');
  const vpcRow = page.locator('#vpcs tbody tr').filter({ hasText: '10.77.0.0/16' });
  await vpcRow.waitFor();
  seen.vpc_id = await vpcRow.getAttribute('data-id');
  check(await page.locator('#vpc-error').isHidden(), 'creating the VPC shows an error');

  // A subnet outside the VPC: the API's error is shown, nothing is added.
  await page.selectOption('#subnet-vpc', seen.vpc_id);
  await page.fill('#subnet-cidr', '10.99.1.0/24');
  await page.click('#subnet-create');
  await page.locator('#subnet-error:not([hidden])').waitFor();
  seen.subnet_error = await page.locator('#subnet-error').textContent();
  await step(page, 'subnet-refused', { error: seen.subnet_error });
  await page.fill('#subnet-cidr', '10.77.1.0/24');
  await page.click('#subnet-create');
  const subnetRow = page.locator('#subnets tbody tr').filter({ hasText: '10.77.1.0/24' });
  await subnetRow.waitFor();
  seen.subnet_id = await subnetRow.getAttribute('data-id');
  check(await page.locator('#subnet-error').isHidden(), 'the subnet error stayed');

  await page.selectOption('#sg-vpc', seen.vpc_id);
  await page.fill('#sg-name', 'console-web');
  await page.fill('#sg-description', 'web servers');
  await page.click('#sg-create');
  const sgRow = page.locator('#groups tbody tr').filter({ hasText: 'console-web' });
  await sgRow.waitFor();
  seen.group_id = await sgRow.getAttribute('data-id');
  for (const port of ['443', '8080']) {
    await page.selectOption('#rule-group', seen.group_id);
    await page.selectOption('#rule-direction', 'ingress');
    await page.selectOption('#rule-protocol', 'tcp');
    await page.fill('#rule-from', port);
    await page.fill('#rule-to', port);
    await page.fill('#rule-cidr', '203.0.113.0/24');
    await page.click('#rule-add');
    await sgRow.locator('ul.rules li').filter({ hasText: `in tcp:${port} from 203.0.113.0/24` })
      .waitFor();
  }
  check(await page.locator('#rule-error').isHidden(), 'adding rules shows an error');
  await step(page, 'rules-added', { group: seen.group_id });
  const rule8080 = sgRow.locator('ul.rules li').filter({ hasText: 'tcp:8080' });
  await rule8080.locator('button[data-action="remove-rule"]').click();
  await rule8080.waitFor({ state: 'detached' });
  await sgRow.locator('ul.rules li').filter({ hasText: 'tcp:443' }).waitFor();
  await step(page, 'rule-removed', { group: seen.group_id });

  // Elastic IPs: one to release, one to associate with an instance of the subnet (launched by
  // the test through the API when told SUBNET), through an internet gateway on the VPC.
  for (let n = 1; n <= 2; n += 1) {
    await page.click('#eip-allocate');
    await page.locator('#addresses tbody tr').nth(n - 1).waitFor();
  }
  check(await page.locator('#eip-error').isHidden(), 'allocating shows an error');
  const eips = await page.locator('#addresses tbody tr').evaluateAll(
    (rows) => rows.map((r) => ({ id: r.dataset.id, ip: r.dataset.ip })));
  await step(page, 'eip-allocated', { eips });
  const gone = page.locator(`#addresses tbody tr[data-id="${eips[1].id}"]`);
  await gone.locator('button[data-action="release"]').click();
  await page.click('#ask-ok');
  await gone.waitFor({ state: 'detached' });
  seen.eip = eips[0];
  seen.eip_released = eips[1];

  say('SUBNET', seen.subnet_id);
  const eipRow = page.locator(`#addresses tbody tr[data-id="${seen.eip.id}"]`);
  const target = eipRow.locator('select option').filter({ hasText: 'console-eip-target' });
  for (let i = 0; i < 50 && await target.count() === 0; i += 1) {
    await page.click('#network-refresh');
    await page.waitForTimeout(200);
  }
  seen.instance_id = await target.getAttribute('value');
  // Without an internet gateway on the VPC the API refuses: its error shows.
  await eipRow.locator('select').selectOption(seen.instance_id);
  await eipRow.locator('button[data-action="associate"]').click();
  await page.locator('#eip-error:not([hidden])').waitFor();
  seen.associate_error = await page.locator('#eip-error').textContent();
  await step(page, 'eip-needs-gateway', { error: seen.associate_error });
  await page.selectOption('#igw-vpc', seen.vpc_id);
  await page.click('#igw-create');
  await page.locator('#igws tbody tr').filter({ hasText: seen.vpc_id }).waitFor();
  await eipRow.locator('select').selectOption(seen.instance_id);
  await eipRow.locator('button[data-action="associate"]').click();
  await eipRow.locator('td').filter({ hasText: seen.instance_id }).waitFor();
  check(await page.locator('#eip-error').isHidden(), 'associating shows an error');
  seen.eip_private_ip = await eipRow.locator('td').nth(3).textContent();
  await step(page, 'eip-associated', { instance: seen.instance_id, ip: seen.eip_private_ip });
  await eipRow.locator('button[data-action="disassociate"]').click();
  await eipRow.locator('button[data-action="associate"]').waitFor();
  await step(page, 'eip-disassociated', { eip: seen.eip.id });

  // VPN: a customer gateway, a VPN gateway on the VPC, a connection, its configuration.
  await page.fill('#cgw-ip', '198.51.100.7');
  await page.click('#cgw-create');
  await page.locator('#vpn-cgw option').first().waitFor({ state: 'attached' });
  await page.selectOption('#vgw-vpc', seen.vpc_id);
  await page.click('#vgw-create');
  await page.locator('#vpn-vgw option').filter({ hasText: seen.vpc_id }).waitFor({ state: 'attached' });
  await page.click('#vpn-create');
  const vpnRow = page.locator('#vpns tbody tr').first();
  await vpnRow.waitFor();
  seen.vpn_id = await vpnRow.getAttribute('data-id');
  check(await page.locator('#vpn-error').isHidden(),
    `the VPN forms show an error: ${await page.locator('#vpn-error').textContent()}`);
  const [dl] = await Promise.all([
    page.waitForEvent('download'),
    vpnRow.locator('button[data-action="config"]').click(),
  ]);
  seen.vpn_config_file = path.join(cfg.artifacts, dl.suggestedFilename());
  await dl.saveAs(seen.vpn_config_file);
  await step(page, 'vpn-config-downloaded', { vpn: seen.vpn_id, file: seen.vpn_config_file });
}

// Route tables: one in the VPC, a route through its internet gateway (one inside the VPC
// refused first), the subnet associated; the test reads them through the API; then taken
// apart from the page.
async function routeTables(page) {
  const mainRow = page.locator(`#rtbs tbody tr[data-main="yes"]`).filter({ hasText: seen.vpc_id });
  await mainRow.waitFor();
  seen.main_rtb = await mainRow.getAttribute('data-id');
  await page.selectOption('#rtb-vpc', seen.vpc_id);
  await page.fill('#rtb-name', 'console-rtb');
  await page.click('#rtb-create');
  const row = page.locator('#rtbs tbody tr[data-main="no"]').filter({ hasText: 'console-rtb' });
  await row.waitFor();
  const id = await row.getAttribute('data-id');
  check(await page.locator('#rtb-error').isHidden(), 'creating the route table shows an error');
  seen.igw_id = await page.locator('#igws tbody tr').filter({ hasText: seen.vpc_id })
    .getAttribute('data-id');
  await page.selectOption('#route-table', id);
  // The targets offered: the gateways attached to the table's VPC (the IGW and the VGW).
  await page.locator(`#route-target option[value="${seen.igw_id}"]`).waitFor({ state: 'attached' });
  seen.route_targets = await page.locator('#route-target option').evaluateAll(
    (o) => o.map((x) => x.value));
  await page.selectOption('#route-target', seen.igw_id);
  await page.fill('#route-destination', '10.77.9.0/24');
  await page.click('#route-add');
  await page.locator('#rtb-error:not([hidden])').waitFor();
  seen.route_error = await page.locator('#rtb-error').textContent();
  await step(page, 'route-refused', { error: seen.route_error });
  await page.selectOption('#route-table', id);
  await page.selectOption('#route-target', seen.igw_id);
  await page.fill('#route-destination', '0.0.0.0/0');
  await page.click('#route-add');
  await row.locator('li[data-destination="0.0.0.0/0"]').waitFor();
  check(await page.locator('#rtb-error').isHidden(), 'adding the route shows an error');
  await page.selectOption('#assoc-table', id);
  await page.selectOption('#assoc-subnet', seen.subnet_id);
  await page.click('#assoc-add');
  const assoc = row.locator(`li[data-subnet="${seen.subnet_id}"]`);
  await assoc.waitFor();
  check(await page.locator('#rtb-error').isHidden(), 'associating shows an error');
  seen.rtb = {
    id,
    name: (await row.locator('td').first().innerText()),
    routes: await row.locator('td.routes li').evaluateAll((l) => l.map((x) => ({
      destination: x.dataset.destination, target: x.dataset.target, state: x.dataset.state }))),
    count: Number(await row.locator('td.routes').getAttribute('data-count')),
    association: await assoc.getAttribute('data-assoc'),
    subnets: await row.locator('li[data-subnet]').evaluateAll((l) => l.map((x) => x.dataset.subnet)),
  };
  await step(page, 'route-table', seen.rtb);
  await askTest('route-table', seen.rtb);

  await assoc.locator('button[data-action="disassociate"]').click();
  await assoc.waitFor({ state: 'detached' });
  const route = row.locator('li[data-destination="0.0.0.0/0"]');
  await route.locator('button[data-action="remove-route"]').click();
  await route.waitFor({ state: 'detached' });
  await row.locator('button[data-action="delete"]').click();
  await page.click('#ask-ok');
  await row.waitFor({ state: 'detached' });
  check(await page.locator('#rtb-error').isHidden(),
    `taking the route table apart shows an error: ${await page.locator('#rtb-error').textContent()}`);
  await step(page, 'route-table-deleted', { id });
}

// Remote access: an endpoint in the VPC, a peer whose key pair the page makes, its
// configuration downloaded; the test reads them through the API; then both deleted.
async function remoteAccess(page) {
  await page.selectOption('#ra-vpc', seen.vpc_id);
  await page.fill('#ra-cidr', '100.64.8.0/24');
  await page.fill('#ra-description', 'console-ra');
  await page.click('#ra-create');
  const row = page.locator('#ras tbody tr').filter({ hasText: 'console-ra' });
  await row.waitFor();
  const id = await row.getAttribute('data-id');
  check(await page.locator('#ra-error').isHidden(),
    `creating the endpoint shows an error: ${await page.locator('#ra-error').textContent()}`);
  await row.locator('button[data-action="peers"]').click();
  await page.locator('#peers-dialog').waitFor();
  await page.locator('#peers-empty').waitFor();
  await page.fill('#peer-name', 'console-laptop');
  await page.click('#peer-add');
  await page.locator('#peer-config-box').waitFor();
  const peerRow = page.locator('#peers tbody tr').filter({ hasText: 'console-laptop' });
  await peerRow.waitFor();
  check(await page.locator('#peer-error').isHidden(),
    `adding the peer shows an error: ${await page.locator('#peer-error').textContent()}`);
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#peer-download')]);
  const file = path.join(cfg.artifacts, dl.suggestedFilename());
  await dl.saveAs(file);
  seen.ra = {
    id,
    peer: await peerRow.getAttribute('data-id'),
    peer_address: await peerRow.getAttribute('data-address'),
    config_file: file,
    shown: await page.locator('#peer-config').inputValue(),
    note: await page.locator('#peer-config-note').textContent(),
  };
  await step(page, 'remote-access-peer', { id, peer: seen.ra.peer });
  await askTest('remote-access', seen.ra);

  // Closing the dialog forgets the configuration; opening it again lists the peer without it.
  await page.click('#peers-close');
  await row.locator('td.peers').filter({ hasText: /^1$/ }).waitFor();
  await row.locator('button[data-action="peers"]').click();
  await peerRow.waitFor();
  seen.ra.config_after_reopen = await page.locator('#peer-config').inputValue();
  seen.ra.box_after_reopen = await page.locator('#peer-config-box').isVisible();
  await peerRow.locator('button[data-action="delete"]').click();
  await page.click('#ask-ok');
  await peerRow.waitFor({ state: 'detached' });
  await page.locator('#peers-empty').waitFor();
  await page.click('#peers-close');
  await row.locator('td.peers').filter({ hasText: /^0$/ }).waitFor();
  await row.locator('button[data-action="delete"]').click();
  await page.click('#ask-ok');
  await row.waitFor({ state: 'detached' });
  check(await page.locator('#ra-error').isHidden(), 'deleting the endpoint shows an error');
  await step(page, 'remote-access-deleted', { id });
}

// --- billing ---------------------------------------------------------------------------------

async function billing(page) {
  await go(page, 'billing');
  await page.locator('#usage-chart svg rect.bar').first().waitFor();
  // Each bar as drawn: its data, its height in the SVG and on the screen.
  seen.chart = await page.evaluate(() => {
    const svgEl = document.querySelector('#usage-chart svg');
    return {
      plot_top: Number(svgEl.dataset.plotTop),
      plot_bottom: Number(svgEl.dataset.plotBottom),
      scale_top: Number(svgEl.dataset.scaleTop),
      bars: [...svgEl.querySelectorAll('rect.bar')].map((r) => ({
        meter: r.dataset.meter,
        sku: r.dataset.sku,
        amount: Number(r.dataset.amount),
        y: Number(r.getAttribute('y')),
        height: Number(r.getAttribute('height')),
        screen_height: r.getBoundingClientRect().height,
      })),
    };
  });
  check(seen.chart.bars.some((b) => b.screen_height > 10), 'no bar is visible on the screen');
  await step(page, 'usage-chart', { bars: seen.chart.bars.length });

  const inv = page.locator('#invoices tbody tr').first();
  await inv.waitFor();
  seen.invoice_id = await inv.getAttribute('data-id');
  const [dl] = await Promise.all([page.waitForEvent('download'), inv.locator('a').click()]);
  seen.invoice_csv_file = path.join(cfg.artifacts, dl.suggestedFilename());
  await dl.saveAs(seen.invoice_csv_file);
  check(fs.statSync(seen.invoice_csv_file).size > 0, 'the invoice CSV is empty');
  await step(page, 'invoice-downloaded', { invoice: seen.invoice_id });
}

// --- operator --------------------------------------------------------------------------------

async function notOperator(page) {
  check(await page.locator('#nav-operator').isHidden(), 'a tenant sees the Operator section');
  await page.evaluate(() => { window.location.hash = '#operator'; });
  await page.locator('#instances-view').waitFor();
  check(await page.locator('#operator-view').isHidden(), 'a tenant reached the operator page');
  check(await page.evaluate(() => window.location.hash) === '#instances',
    'the address still names the operator page');
  // And the API refuses it whatever the page shows.
  seen.tenant_admin_call = await page.evaluate(async () => {
    const r = await fetch('/v1/admin/hosts', { credentials: 'same-origin' });
    return { status: r.status, body: await r.json() };
  });
  await step(page, 'tenant-no-operator', seen.tenant_admin_call);
}

async function operator(page) {
  await page.click('#signout');
  await page.locator('#signin-view').waitFor();
  await signIn(page, cfg.operator);
  check(await page.locator('#nav-operator').isVisible(), 'the operator has no Operator section');
  await go(page, 'operator');
  const host = page.locator(`#hosts tbody tr[data-id="${cfg.host_id}"]`);
  await host.waitFor();
  seen.host_row = await host.innerText();
  await step(page, 'operator-hosts', { host: cfg.host_id });
  // The price plan in effect: one row per price, the t3.nano hour among them.
  const nano = page.locator('#prices tbody tr[data-meter="instance-running"][data-sku="t3.nano"]');
  await nano.first().waitFor();
  seen.prices = {
    rows: await page.locator('#prices tbody tr').count(),
    t3_nano: await nano.first().innerText(),
  };

  // The request log: the VPC the tenant created from the browser.
  await page.fill('#requests-tenant', cfg.tenant.id);
  await page.fill('#requests-action', 'POST /v1/vpcs');
  await page.click('#requests-search');
  const req = page.locator('#requests tbody tr').filter({ hasText: 'POST /v1/vpcs' }).first();
  await req.waitFor();
  seen.request_row = { id: await req.getAttribute('data-id'), text: await req.innerText() };
  await step(page, 'operator-request-log', seen.request_row);

  // Quota: read one, change it, see the answer.
  await page.locator(`#tenants tbody tr[data-id="${cfg.tenant.id}"] button[data-action="quota"]`).click();
  await page.locator('#quota-form').waitFor();
  await page.fill('#quota-max_instances', '33');
  await page.click('#quota-save');
  await page.locator('#toast').filter({ hasText: 'Saved the quota' }).waitFor();
  await page.fill('#quota-max_vcpus', '-5');
  await page.locator('#quota-max_vcpus').evaluate((i) => i.removeAttribute('min'));
  await page.click('#quota-save');
  await page.locator('#quota-error:not([hidden])').waitFor();
  seen.quota_error = await page.locator('#quota-error').textContent();
  await step(page, 'operator-quota', { error: seen.quota_error });
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'],
  });
  const problems = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 },
      acceptDownloads: true });
    const page = await context.newPage();
    page.setDefaultTimeout(20000);
    page.on('pageerror', (e) => problems.push(`uncaught exception: ${e.message}`));
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) {
        problems.push(`console: ${m.text()}`);
      }
    });
    await signIn(page, cfg.tenant);
    await step(page, 'signed-in');
    await images(page);
    await network(page);
    await routeTables(page);
    await remoteAccess(page);
    await billing(page);
    await notOperator(page);
    await operator(page);
    check(problems.length === 0, problems.join('; '));
    say('DONE', JSON.stringify(seen));
  } finally {
    stdin.close();
    await browser.close();
  }
}

main().catch((e) => {
  say('FAIL', String(e && e.stack ? e.stack : e).replace(/\n/g, ' | '));
  process.exit(1);
});
