// The console's entry point: find out whether a session is open, then show the sign-in form or
// the page the address names; sign in and out.

import { call, get, onSignedOut, setCsrfToken } from './api.js';
import { $, showError } from './dom.js';
import { InstancesPage } from './instances.js';
import { ImagesPage } from './images.js';
import { NetworkPage } from './network.js';
import { BillingPage } from './billing.js';
import { OperatorPage } from './operator.js';
import { Router } from './router.js';

const router = new Router('instances');

// The admin role is the operator's (only the operator's tenant holds it, and every
// /v1/admin route checks it): it alone gets the Operator section.
function isOperator(session) {
  return session.role === 'admin';
}

function showSignedIn(session) {
  setCsrfToken(session.csrf_token);
  $('#signin-view').hidden = true;
  $('#topbar').hidden = false;
  $('#who-name').textContent = `${session.user_name} @ ${session.tenant_name}`;
  $('#who-role').textContent = session.role;
  $('#nav-operator').hidden = !isOperator(session);
  const over = () => showSignIn('Your session has ended. Sign in again.');
  const pages = {
    instances: new InstancesPage(session, over),
    images: new ImagesPage(session),
    network: new NetworkPage(session),
    billing: new BillingPage(session),
  };
  if (isOperator(session)) pages.operator = new OperatorPage(session);
  router.start(pages);
}

// What a signed-in user saw must not show, even for a moment, to the next one to sign in here.
function forgetPages() {
  for (const dlg of document.querySelectorAll('dialog[open]')) dlg.close();
  for (const tbody of document.querySelectorAll('main table.grid tbody')) tbody.replaceChildren();
  $('#usage-chart').replaceChildren();
  $('#quota-form').hidden = true;
  for (const el of document.querySelectorAll('main .error')) showError(el, '');
}

function showSignIn(message) {
  setCsrfToken(null);
  router.stop();
  forgetPages();
  $('#topbar').hidden = true;
  $('#nav-operator').hidden = true;
  $('#signin-view').hidden = false;
  showError($('#signin-error'), message || '');
  $('#signin-password').value = '';
  $('#signin-key-secret').value = '';
  const account = $('#signin-account');
  if (!account.value) account.value = localStorage.getItem('nubo.account') || '';
  (account.value ? $('#signin-user') : account).focus();
}

async function signIn(e) {
  e.preventDefault();
  const submit = $('#signin-submit');
  submit.disabled = true;
  showError($('#signin-error'), '');
  const account = $('#signin-account').value.trim();
  try {
    const session = await call('POST', '/v1/session', {
      account,
      user: $('#signin-user').value.trim(),
      password: $('#signin-password').value,
    });
    localStorage.setItem('nubo.account', account);
    $('#signin-password').value = '';
    showSignedIn(session);
  } catch (err) {
    showError($('#signin-error'),
      err.status === 401 ? 'Incorrect account, user name or password.' : err.message);
  } finally {
    submit.disabled = false;
  }
}

// The same session from an access key pair (the CLI's credentials): the secret goes to the
// gateway once, over this connection, and is not kept by the page.
async function signInWithKey(e) {
  e.preventDefault();
  const submit = $('#signin-key-submit');
  submit.disabled = true;
  showError($('#signin-key-error'), '');
  try {
    const session = await call('POST', '/v1/session', {
      access_key_id: $('#signin-key-id').value.trim(),
      secret_access_key: $('#signin-key-secret').value,
    });
    $('#signin-key-secret').value = '';
    showSignedIn(session);
  } catch (err) {
    showError($('#signin-key-error'),
      err.status === 401 ? 'Incorrect access key id or secret.' : err.message);
  } finally {
    submit.disabled = false;
  }
}

function useKey(byKey) {
  $('#signin-form').hidden = byKey;
  $('#signin-key-form').hidden = !byKey;
  $(byKey ? '#signin-key-id' : '#signin-account').focus();
}

async function signOut() {
  try {
    await call('DELETE', '/v1/session');
  } catch (e) {
    /* signed out anyway */
  }
  showSignIn('You are signed out.');
}

async function boot() {
  $('#signin-form').addEventListener('submit', signIn);
  $('#signin-key-form').addEventListener('submit', signInWithKey);
  $('#signin-use-key').onclick = (e) => { e.preventDefault(); useKey(true); };
  $('#signin-use-password').onclick = (e) => { e.preventDefault(); useKey(false); };
  $('#signout').addEventListener('click', signOut);
  onSignedOut(() => showSignIn('Your session has ended. Sign in again.'));
  try {
    showSignedIn(await get('/v1/session'));
  } catch (e) {
    showSignIn(e.status === 401 ? '' : e.message);
  }
}

boot();
