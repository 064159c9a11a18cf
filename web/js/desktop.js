// The desktop portal (desktop.html), the browser side of the VDI connection broker: a user of
// a service provider's tenant signs in, picks a desktop pool, gets a desktop assigned (an idle
// one, or one started or provisioned for them) and sees it in the page. Signing out of a
// desktop gives it back: a non-persistent pool resets it to its image, a persistent one keeps it
// for the same user. The broker is the REST API under /v1/vdi (docs/vdi.md).

import { call, get, onSignedOut, post, setCsrfToken } from './api.js';
import { $, h, showError } from './dom.js';
import { openScreen } from './screen.js';

const READY_TIMEOUT_MS = 5 * 60 * 1000;
const POLL_MS = 1000;

let rfb = null; // the screen on display, if any
let current = null; // the desktop on display

function status(state, text) {
  const s = $('#desktop-status');
  s.dataset.state = state;
  s.textContent = text;
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

function showSignIn(message) {
  setCsrfToken(null);
  closeScreen();
  $('#portal-bar').hidden = true;
  $('#portal-view').hidden = true;
  $('#portal-signin').hidden = false;
  showError($('#portal-signin-error'), message || '');
  const account = $('#portal-account');
  if (!account.value) account.value = localStorage.getItem('nubo.account') || '';
  (account.value ? $('#portal-user') : account).focus();
}

async function showPortal(session) {
  setCsrfToken(session.csrf_token);
  $('#portal-signin').hidden = true;
  $('#portal-bar').hidden = false;
  $('#portal-who').textContent = `${session.user_name} @ ${session.tenant_name}`;
  await showLists();
}

async function showLists(message) {
  closeScreen();
  $('#portal-main').hidden = false;
  $('#desktop-view').hidden = true;
  $('#desktop-leave').hidden = true;
  $('#desktop-signout').hidden = true;
  $('#portal-view').hidden = false;
  status('idle', message || '');
  showError($('#portal-error'), '');
  try {
    const [mine, pools] = await Promise.all([get('/v1/vdi/my-desktops'), get('/v1/vdi/pools')]);
    fill('#my-desktops', mine.desktops, (d) => h('tr', { dataset: { id: d.id, state: d.state } },
      h('td', null, d.pool_name),
      h('td', { class: 'mono' }, d.id),
      h('td', null, h('span', { class: 'state', dataset: { state: d.instance_state || d.state } },
        d.ready ? 'ready' : (d.instance_state || d.state))),
      h('td', { class: 'actions' },
        h('button', { type: 'button', class: 'small primary open', onclick: () => openOrSay(d) },
          'Open'),
        h('button', { type: 'button', class: 'small danger', onclick: () => signOutOf(d) },
          'Sign out'))));
    fill('#pools', pools.pools, (p) => h('tr', { dataset: { id: p.id } },
      h('td', null, p.name, p.description ? h('small', null, ` ${p.description}`) : null),
      h('td', null, p.persistent ? 'persistent (yours to keep)' : 'fresh at every sign-in'),
      h('td', { class: 'actions' },
        h('button', { type: 'button', class: 'small primary connect', onclick: () => connect(p) },
          'Connect'))));
  } catch (e) {
    if (e.status !== 401) showError($('#portal-error'), e.message);
  }
}

function fill(sel, items, row) {
  const tbody = $(`${sel} tbody`);
  tbody.replaceChildren(...items.map(row));
  $(`${sel}-empty`).hidden = items.length > 0;
}

// Asks the broker for a desktop of pool 'p', waits until it runs, and shows it.
async function connect(p) {
  showError($('#portal-error'), '');
  status('connecting', `Finding you a desktop in ${p.name}…`);
  try {
    const r = await post(`/v1/vdi/pools/${encodeURIComponent(p.id)}/connect`);
    await open(r.desktop);
  } catch (e) {
    status('failed', '');
    if (e.status !== 401) showError($('#portal-error'), e.message);
  }
}

async function openOrSay(d) {
  try {
    await open(d);
  } catch (e) {
    status('failed', '');
    if (e.status !== 401) showError($('#portal-error'), e.message);
  }
}

async function open(desktop) {
  let d = desktop;
  const until = Date.now() + READY_TIMEOUT_MS;
  while (!d.ready) {
    if (Date.now() > until) throw new Error('Your desktop did not start in time: try again.');
    status('connecting', `Starting your desktop (${d.instance_state || d.state})…`);
    await sleep(POLL_MS);
    d = await get(`/v1/vdi/desktops/${encodeURIComponent(d.id)}`);
  }
  const ticket = await post(`/v1/vdi/desktops/${encodeURIComponent(d.id)}/console`);
  current = d;
  $('#portal-main').hidden = true;
  $('#desktop-view').hidden = false;
  $('#desktop-leave').hidden = false;
  $('#desktop-signout').hidden = false;
  status('connecting', 'Connecting…');
  rfb = openScreen($('#desktop-screen'), ticket, (state, message) => {
    status(state, state === 'connected' ? `${d.pool_name}: ${d.id}` : message);
  });
}

function closeScreen() {
  if (rfb) {
    rfb.disconnect();
    rfb = null;
  }
  $('#desktop-screen').replaceChildren();
}

async function signOutOf(d) {
  try {
    await post(`/v1/vdi/desktops/${encodeURIComponent(d.id)}/sign-out`);
    await showLists(`Signed out of ${d.pool_name}.`);
  } catch (e) {
    if (e.status !== 401) showError($('#portal-error'), e.message);
  }
}

async function signIn(e) {
  e.preventDefault();
  const submit = $('#portal-signin-submit');
  submit.disabled = true;
  showError($('#portal-signin-error'), '');
  const account = $('#portal-account').value.trim();
  try {
    const session = await call('POST', '/v1/session', {
      account,
      user: $('#portal-user').value.trim(),
      password: $('#portal-password').value,
    });
    localStorage.setItem('nubo.account', account);
    $('#portal-password').value = '';
    await showPortal(session);
  } catch (err) {
    showError($('#portal-signin-error'),
      err.status === 401 ? 'Incorrect account, user name or password.' : err.message);
  } finally {
    submit.disabled = false;
  }
}

async function boot() {
  $('#portal-signin-form').addEventListener('submit', signIn);
  $('#portal-signout').onclick = async () => {
    try {
      await call('DELETE', '/v1/session');
    } catch (e) {
      /* signed out anyway */
    }
    showSignIn('You are signed out.');
  };
  $('#desktop-leave').onclick = () => showLists('Your desktop stays yours until you sign out of it.');
  $('#desktop-signout').onclick = () => { if (current) signOutOf(current); };
  onSignedOut(() => showSignIn('Your session has ended. Sign in again.'));
  try {
    await showPortal(await get('/v1/session'));
  } catch (e) {
    showSignIn(e.status === 401 ? '' : e.message);
  }
}

boot();
