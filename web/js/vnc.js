// The VM console page (vnc.html): one instance's screen in a tab of its own. The page is
// opened with a single-use ticket (?instance=...&token=..., from the instances page), which is
// taken out of the address at once: the first connection spends it, and a reload needs a new
// one.

import { openScreen } from './screen.js';

const $ = (sel) => document.querySelector(sel);

function setStatus(state, text) {
  const s = $('#vnc-status');
  s.dataset.state = state;
  s.textContent = text;
}

function start() {
  const params = new URLSearchParams(window.location.search);
  const instance = params.get('instance') || '';
  const token = params.get('token');
  $('#vnc-instance').textContent = instance;
  document.title = `${instance || 'instance'} - nubo console`;
  window.history.replaceState(null, '', window.location.pathname +
    (instance ? `?instance=${encodeURIComponent(instance)}` : ''));
  if (!token) {
    setStatus('failed', 'No console ticket: open the console from the instances page.');
    return;
  }
  const ticket = { websocket: `/v1/console/websocket?token=${encodeURIComponent(token)}` };
  let rfb;
  const onState = (state, message) => {
    const live = state === 'connected';
    $('#vnc-cad').disabled = !live;
    $('#vnc-disconnect').disabled = !live;
    if (live) setStatus(state, `Connected to ${instance}`);
    else if (state === 'closed') {
      setStatus(state, 'Disconnected. Open the console again from the instances page.');
    } else setStatus(state, message);
  };
  try {
    rfb = openScreen($('#vnc-screen'), ticket, onState);
  } catch (e) {
    setStatus('failed', `Could not start the console: ${e.message}`);
    return;
  }
  $('#vnc-cad').onclick = () => rfb.sendCtrlAltDel();
  $('#vnc-disconnect').onclick = () => rfb.disconnect();
}

start();
