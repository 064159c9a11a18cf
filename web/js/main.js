// The console's entry point: find out whether a session is open, then show the sign-in form or
// the instances page; sign in and out.

import { call, get, onSignedOut, setCsrfToken } from './api.js';
import { $, showError } from './dom.js';
import { InstancesPage } from './instances.js';

let page = null;

function showSignedIn(session) {
  setCsrfToken(session.csrf_token);
  $('#signin-view').hidden = true;
  $('#topbar').hidden = false;
  $('#who-name').textContent = `${session.user_name} @ ${session.tenant_name}`;
  $('#who-role').textContent = session.role;
  if (page) page.hide();
  page = new InstancesPage(session, () => showSignIn('Your session has ended. Sign in again.'));
  page.show();
}

function showSignIn(message) {
  setCsrfToken(null);
  if (page) page.hide();
  page = null;
  $('#topbar').hidden = true;
  $('#signin-view').hidden = false;
  showError($('#signin-error'), message || '');
  $('#signin-password').value = '';
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
  $('#signout').addEventListener('click', signOut);
  onSignedOut(() => showSignIn('Your session has ended. Sign in again.'));
  try {
    showSignedIn(await get('/v1/session'));
  } catch (e) {
    showSignIn(e.status === 401 ? '' : e.message);
  }
}

boot();
