// The desktop portal (web/desktop.html) in headless Chromium, driven by Playwright: several
// desktop users of one provider sign in at once, each connects to the same pool and sees their
// desktop's screen; then the first one writes on their desktop's disk from the keyboard and
// signs out of it, and connects again.
//
// Run by tests/e2e/test_vdi_portal.py with a JSON config in VDI_FLOW_CONFIG:
//   {base, account, users: [{name, password}], pool_name, artifacts, timeout_s, marker}
// Lines on stdout: "STEP <name> <json>", "CONNECTED <json>" (one per user: the desktop the
// portal shows), "WROTE <json>", "SIGNED-OUT <json>", "RECONNECTED <json>", "DONE", or
// "FAIL <message>" (exit 1). After CONNECTED (all users), WROTE and SIGNED-OUT the flow waits
// for a line "GO ON" on stdin: the test checks the other side (instances, serial consoles,
// disks) meanwhile.

'use strict';

const path = require('path');
const readline = require('readline');
const { chromium } = require(process.env.NUBO_PLAYWRIGHT || 'playwright-core');

const cfg = JSON.parse(process.env.VDI_FLOW_CONFIG);
const t0 = Date.now();
let shot = 0;
const problems = [];

function say(kind, ...rest) {
  process.stdout.write(`${kind} ${rest.join(' ')}\n`);
}

function check(cond, message) {
  if (!cond) throw new Error(message);
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

const stdinLines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function waitForTest() {
  const { value, done } = await stdinLines.next();
  check(!done && value === 'GO ON', `the test said ${done ? 'nothing' : value}`);
}

async function step(page, name, extra = {}) {
  shot += 1;
  const file = path.join(cfg.artifacts, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file });
  say('STEP', name, JSON.stringify({ t: (Date.now() - t0) / 1000, screenshot: file, ...extra }));
}

// The desktop the portal shows for the page's user (the broker's own record of it).
async function myDesktop(page) {
  const r = await page.evaluate(async () => {
    const res = await fetch('/v1/vdi/my-desktops', { credentials: 'same-origin' });
    return res.json();
  });
  check(r.desktops && r.desktops.length === 1, `my desktops: ${JSON.stringify(r)}`);
  return r.desktops[0];
}

// Signs 'user' in on a page of its own and connects to the pool; resolves with the page once
// the desktop's screen is connected and has the guest's banner drawn.
async function connectUser(browser, user) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(cfg.timeout_s * 1000);
  page.on('pageerror', (e) => problems.push(`${user.name}: uncaught exception: ${e.message}`));
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) {
      problems.push(`${user.name}: console: ${m.text()}`);
    }
  });
  await page.goto(`${cfg.base}/console/desktop.html`);
  await page.fill('#portal-account', cfg.account);
  await page.fill('#portal-user', user.name);
  await page.fill('#portal-password', user.password);
  await page.click('#portal-signin-submit');
  await page.locator('#portal-view').waitFor();
  const row = page.locator('#pools tbody tr').filter({ hasText: cfg.pool_name });
  await row.locator('button.connect').click();
  await page.locator('#desktop-status[data-state="connected"]').waitFor();
  return page;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'],
  });
  try {
    // 1. Everyone at once: each gets a desktop and its screen.
    const pages = await Promise.all(cfg.users.map((u) => connectUser(browser, u)));
    for (let i = 0; i < pages.length; i += 1) {
      const d = await myDesktop(pages[i]);
      await step(pages[i], `connected-${cfg.users[i].name}`, { desktop: d.id });
      say('CONNECTED', JSON.stringify({ user: cfg.users[i].name, desktop: d }));
    }
    await waitForTest(); // the test has seen every guest draw its screen
    await sleep(1500);
    for (let i = 0; i < pages.length; i += 1) {
      await step(pages[i], `screen-${cfg.users[i].name}`);
    }

    // 2. The first user writes on their desktop's disk, from the keyboard, through the console.
    const page = pages[0];
    const before = await myDesktop(page);
    await page.locator('#desktop-screen canvas').click();
    await page.keyboard.type(`write-disk ${cfg.marker}`, { delay: 40 });
    await page.keyboard.press('Enter');
    await sleep(1000);
    await step(page, 'wrote-on-disk', { desktop: before.id });
    say('WROTE', JSON.stringify({ desktop: before }));
    await waitForTest();

    // 3. ... signs out of it (a non-persistent pool resets it), then connects again.
    await page.click('#desktop-signout');
    await page.locator('#portal-view').waitFor();
    check((await page.locator('#my-desktops tbody tr').count()) === 0,
      'the desktop is still listed as mine after signing out of it');
    await step(page, 'signed-out-of-desktop', { desktop: before.id });
    say('SIGNED-OUT', JSON.stringify({ desktop: before }));
    await waitForTest();
    const row = page.locator('#pools tbody tr').filter({ hasText: cfg.pool_name });
    await row.locator('button.connect').click();
    await page.locator('#desktop-status[data-state="connected"]').waitFor();
    const again = await myDesktop(page);
    await step(page, 'reconnected', { desktop: again.id });
    say('RECONNECTED', JSON.stringify({ desktop: again }));
    await waitForTest(); // the test has seen the guest draw its screen
    await sleep(1500);
    await step(page, 'reconnected-screen', { desktop: again.id });
    check(problems.length === 0, problems.join('; '));
    say('DONE', JSON.stringify({ t: (Date.now() - t0) / 1000 }));
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(0)).catch((e) => {
  say('FAIL', String(e && e.stack ? e.stack : e).replace(/\n/g, ' | '));
  process.exit(1);
});
