// An instance's screen in the page: noVNC's RFB client (Debian's novnc, served by the gateway
// under /console/novnc/) on the gateway's WebSocket proxy, opened with a single-use console
// ticket (POST /v1/instances/{id}/vnc, or the VDI broker's POST /v1/vdi/desktops/{id}/console).
// The proxy checks the ticket and logs in to the display itself: the page never knows the
// display's password. Used by the console page (vnc.js) and the desktop portal (desktop.js).

import RFB from '../novnc/core/rfb.js';

// Connects 'container' to the screen that 'ticket' opens. 'onState' is called with
// ('connected' | 'closed' | 'failed', message). Returns the RFB object (disconnect(),
// sendCtrlAltDel(), focus()).
export function openScreen(container, ticket, onState) {
  const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
  const url = `${scheme}://${window.location.host}${ticket.websocket}`;
  const rfb = new RFB(container, url, { shared: true });
  rfb.scaleViewport = true;
  rfb.resizeSession = false;
  rfb.focusOnClick = true;
  let connected = false;
  rfb.addEventListener('connect', () => {
    connected = true;
    onState('connected', 'Connected');
    rfb.focus();
  });
  rfb.addEventListener('securityfailure', (e) => {
    // The proxy reached no display: it says why in the RFB handshake.
    onState('failed', e.detail.reason || 'The instance\'s display cannot be reached.');
  });
  rfb.addEventListener('disconnect', (e) => {
    if (connected && e.detail.clean) {
      onState('closed', 'Disconnected.');
    } else if (connected) {
      onState('failed', 'The connection to the instance was lost.');
    } else {
      // A used or expired ticket is refused before the WebSocket opens: the browser only sees
      // the connection fail, so say what it most likely was.
      onState('failed',
        'Could not connect: the ticket may be used or expired, or the instance stopped.');
    }
  });
  return rfb;
}
