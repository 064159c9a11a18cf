// The console's main path in headless Chromium, driven by Playwright (playwright-core with
// Debian's /usr/bin/chromium): sign in (a wrong password first), launch an instance from the
// form, see it reach "running" without reloading, terminate it and see it go, sign out.
//
// Run by tests/e2e/test_console.py, which passes a JSON config in CONSOLE_FLOW_CONFIG:
//   {base, account, user, password, wrong_password, image, user_data, artifacts, timeout_s}
// and reads one line per step on stdout: "STEP <name> <json>", "LAUNCHED <instance id>",
// "TERMINATING <instance id>", and at the end "DONE <json>" or "FAIL <message>" (exit 1).
// A screenshot of every step goes to <artifacts>/NN-<step>.png.

'use strict';

const path = require('path');
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
    page.on('pageerror', (e) => problems.push(`uncaught exception: ${e.message}`));
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) {
        problems.push(`console: ${m.text()}`);
      }
    });

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

    // 3. Terminate, confirm, and see it go.
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

    // 4. Sign out; the cookie the browser had is handed to the test, which checks it is dead.
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

main().catch((e) => {
  say('FAIL', String(e && e.stack ? e.stack : e).replace(/\n/g, ' | '));
  process.exit(1);
});
