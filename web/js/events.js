// The live event stream (GET /v1/events, Server-Sent Events) with the state shown in the
// toolbar. EventSource reconnects by itself after a network error; when the gateway refuses the
// stream (the session is over) it stops, and so do we, after asking whether we are signed out.

export class EventStream {
  constructor({ onOpen, onInstance, onStatus, onRefused }) {
    this.handlers = { onOpen, onInstance, onStatus, onRefused };
    this.source = null;
    this.retry = null;
  }

  start() {
    this.stop();
    this.handlers.onStatus('connecting');
    const es = new EventSource('/v1/events', { withCredentials: true });
    this.source = es;
    es.addEventListener('open', () => {
      this.handlers.onStatus('on');
      this.handlers.onOpen();
    });
    // Back after a break, EventSource sends the last id it had and the gateway replays what was
    // missed; when that is too much it says 'gap' instead, and we read the lists again.
    es.addEventListener('gap', () => this.handlers.onOpen());
    es.addEventListener('instance', (m) => {
      let ev;
      try {
        ev = JSON.parse(m.data);
      } catch (e) {
        return;
      }
      this.handlers.onInstance(ev);
    });
    es.addEventListener('error', () => {
      if (this.source !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        // Refused (401, 503...): ask why, then try again later if still signed in.
        this.handlers.onStatus('off');
        this.handlers.onRefused();
        this.retry = setTimeout(() => this.start(), 5000);
      } else {
        this.handlers.onStatus('connecting');
      }
    });
  }

  stop() {
    clearTimeout(this.retry);
    if (this.source) this.source.close();
    this.source = null;
  }
}
