// The console's main path in headless Chromium, driven by Playwright (playwright-core with
// Debian's /usr/bin/chromium): sign in (a wrong password first), launch an instance from the
// form, see it reach "running" without reloading, open its console and see the guest's screen
// (and type on it), terminate it and see it go, sign out.
//
// Run by tests/e2e/test_console.py, which passes a JSON config in CONSOLE_FLOW_CONFIG:
//   {base, account, user, password, wrong_password, image, user_data, artifacts, timeout_s,
//    console}
// and reads one line per step on stdout: "STEP <name> <json>", "LAUNCHED <instance id>",
// "SCREEN <json>" (the console's pixels are in a file: the test compares them with the VM's own
// screenshot, then writes a line on our stdin to let us go on), "TERMINATING <instance id>",
// and at the end "DONE <json>" or "FAIL <message>" (exit 1). A screenshot of every step goes to
// <artifacts>/NN-<step>.png.

'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');
const { chromium } = require(process.env.NUBO_PLAYWRIGHT || 'playwright-core');

const cfg = JSON.parse(process.env.CONSOLE_FLOW_CONFIG);
const t0 = Date.now();
let shot = 0;

function say(kind, ...rest) {
  process.stdout.write(`${kind} ${rest.join(' ')}\n`);
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

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

// The next line the test writes on our stdin.
const stdinLines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function waitForTest() {
  const { value, done } = await stdinLines.next();
  check(!done && value === 'GO ON', `the test said ${done ? 'nothing' : value}`);
}

// Waits until the instance's serial console (GET /v1/instances/{id}/console, fetched by the page
// with its session) holds 'text'; returns the output.
async function waitSerial(page, id, text, timeoutMs) {
  const until = Date.now() + timeoutMs;
  let out = '';
  while (Date.now() < until) {
    out = await page.evaluate(async (iid) => {
      const r = await fetch(`/v1/instances/${iid}/console`, { credentials: 'same-origin' });
      return r.ok ? (await r.json()).output : `HTTP ${r.status}`;
    }, id);
    if (out.includes(text)) return out;
    await sleep(500);
  }
  throw new Error(`"${text}" never appeared on the serial console of ${id}: ...${out.slice(-400)}`);
}

// Watches a page for uncaught exceptions and Content-Security-Policy refusals.
function watch(page, problems) {
  page.on('pageerror', (e) => problems.push(`uncaught exception: ${e.message}`));
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) {
      problems.push(`console: ${m.text()}`);
    }
  });
}

// 3. The instance's console in a tab of its own: connected, the guest's screen in the canvas,
// keys typed there reach the guest (its serial console says so), and the canvas holds the same
// pixels as the VM's display (compared by the test with libvirt's screenshot).
async function openConsole(context, page, r, id, problems) {
  const [tab] = await Promise.all([
    context.waitForEvent('page'),
    r.locator('button[data-action="console"]').click(),
  ]);
  watch(tab, problems);
  tab.setDefaultTimeout(30000);
  await tab.locator('#vnc-status[data-state="connected"]').waitFor();
  check(!tab.url().includes('token='), `the ticket stayed in the address bar: ${tab.url()}`);
  // The guest says on its serial console when its screen is up (banner and prompt drawn).
  await waitSerial(page, id, 'NUBO-GUEST-SCREEN', cfg.timeout_s * 1000);
  await sleep(1500);
  await step(tab, 'console-open', { id });
  const canvas = tab.locator('#vnc-screen canvas');
  await canvas.click();
  const typed = `hello-${Math.random().toString(36).slice(2, 10)}`;
  await tab.keyboard.type(typed, { delay: 40 });
  await tab.keyboard.press('Enter');
  await waitSerial(page, id, `NUBO-TYPED ${typed}`, 30000);
  await sleep(1500); // the screen's update after the echo
  await step(tab, 'console-typed', { id, typed });
  const screen = await tab.evaluate(() => {
    const c = document.querySelector('#vnc-screen canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let bin = '';
    for (let i = 0; i < d.length; i += 0x8000) {
      bin += String.fromCharCode(...d.subarray(i, i + 0x8000));
    }
    return { width: c.width, height: c.height, rgba: btoa(bin) };
  });
  const file = path.join(cfg.artifacts, 'console-canvas.rgba');
  fs.writeFileSync(file, Buffer.from(screen.rgba, 'base64'));
  say('SCREEN', JSON.stringify({ id, file, width: screen.width, height: screen.height, typed }));
  await waitForTest();
  await tab.locator('#vnc-disconnect').click();
  await tab.locator('#vnc-status[data-state="closed"]').waitFor();
  await step(tab, 'console-closed', { id });
  await tab.close();
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
    const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    const page = await context.newPage();
    page.setDefaultTimeout(20000);
    watch(page, problems);

    // 1. Sign in: a wrong password is refused, the right one opens the instances page.
    await page.goto(`${cfg.base}/console/`);
    await page.locator('#signin-form').waitFor();
    await step(page, 'sign-in-form');
    await page.fill('#signin-account', cfg.account);
    await page.fill('#signin-user', cfg.user);
    await page.fill('#signin-password', cfg.wrong_password);
    await page.click('#signin-submit');
    await page.locator('#signin-error').filter({ hasText: 'Incorrect' }).waitFor();
    check(await page.locator('#instances-view').isHidden(), 'a wrong password opened the console');
    await step(page, 'wrong-password-refused');

    await page.fill('#signin-password', cfg.password);
    await page.click('#signin-submit');
    await page.locator('#instances-view').waitFor();
    await page.locator('#live[data-live="on"]').waitFor();
    const who = await page.locator('#who-name').textContent();
    check(who.includes(cfg.user), `the top bar shows "${who}", not the user`);
    await step(page, 'signed-in', { who });

    // From here on the page must never load again: everything comes live.
    let navigations = 0;
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations += 1; });
    await page.evaluate(() => { window.nuboTestMarker = 'same page'; });

    // 2. Launch from the form.
    await page.click('#launch-open');
    await page.locator(`#launch-image option[value="${cfg.image}"]`).waitFor({ state: 'attached' });
    await page.selectOption('#launch-image', cfg.image);
    await page.selectOption('#launch-type', 't3.nano');
    await page.fill('#launch-name', 'console-e2e');
    await page.fill('#launch-user-data', cfg.user_data);
    await step(page, 'launch-form');
    const before = new Set(await page.locator('#instances tbody tr').evaluateAll(
      (rows) => rows.map((r) => r.dataset.id)));
    await page.click('#launch-submit');
    await page.locator('#launch-dialog').waitFor({ state: 'hidden' });
    const row = page.locator('#instances tbody tr').filter({ hasText: 'console-e2e' });
    await row.first().waitFor();
    const id = await row.first().getAttribute('data-id');
    check(id && !before.has(id), `no new row after the launch (${id})`);
    say('LAUNCHED', id);
    const r = page.locator(`#instances tbody tr[data-id="${id}"]`);
    await step(page, 'launched', { id, state: await r.locator('.state').textContent() });

    await r.locator('.state[data-state="running"]').waitFor({ timeout: cfg.timeout_s * 1000 });
    check(navigations === 0, `the page loaded again ${navigations} time(s) on the way to running`);
    const marker = await page.evaluate(() => window.nuboTestMarker);
    check(marker === 'same page', 'the page was reloaded');
    await step(page, 'running', { id });

    if (cfg.console) await openConsole(context, page, r, id, problems);

    // 4. Terminate, confirm, and see it go.
    await r.locator('button[data-action="terminate"]').click();
    await page.locator('#confirm-dialog').waitFor();
    await step(page, 'confirm-terminate', { id });
    await page.click('#confirm-ok');
    say('TERMINATING', id);
    await r.locator('.state[data-state="shutting-down"], .state[data-state="terminated"]')
      .first().waitFor({ timeout: cfg.timeout_s * 1000 });
    await step(page, 'terminating', { id, state: await r.locator('.state').textContent() });
    await r.locator('.state[data-state="terminated"]').waitFor({ timeout: cfg.timeout_s * 1000 })
      .catch(() => {}); // it may already have left the list
    await r.waitFor({ state: 'detached', timeout: cfg.timeout_s * 1000 });
    check(navigations === 0, `the page loaded again ${navigations} time(s)`);
    await step(page, 'gone', { id });

    // 5. Sign out; the cookie the browser had is handed to the test, which checks it is dead.
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name.endsWith('nubo-session'));
    check(session, 'no session cookie in the browser');
    check(session.httpOnly && session.sameSite === 'Strict',
      `cookie flags: ${JSON.stringify(session)}`);
    check(!(await page.evaluate(() => document.cookie)).includes('nubo-session'),
      'the session cookie is readable from JavaScript');
    await page.click('#signout');
    await page.locator('#signin-view').waitFor();
    await step(page, 'signed-out');
    check(problems.length === 0, problems.join('; '));
    const cookie = `${session.name}=${session.value}`;
    say('DONE', JSON.stringify({ id, cookie, t: (Date.now() - t0) / 1000 }));
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(0)).catch((e) => {
  say('FAIL', String(e && e.stack ? e.stack : e).replace(/\n/g, ' | '));
  process.exit(1);
});
