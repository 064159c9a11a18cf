// Hash routes (#instances, #images, ...): one page shown at a time. A page is any object with
// show() and hide(); pages are made when signed in and dropped when signed out.

import { $ } from './dom.js';

export class Router {
  constructor(fallback) {
    this.fallback = fallback;
    this.pages = new Map();
    this.current = null;
    this.currentName = null;
    this.onHash = () => this.go();
  }

  // 'pages': name -> page; only these routes exist (the operator's only for the operator).
  start(pages) {
    this.stop();
    this.pages = new Map(Object.entries(pages));
    window.addEventListener('hashchange', this.onHash);
    this.go();
  }

  stop() {
    window.removeEventListener('hashchange', this.onHash);
    if (this.current) this.current.hide();
    this.current = null;
    this.currentName = null;
    this.pages = new Map();
  }

  go() {
    let name = window.location.hash.replace(/^#/, '');
    if (!this.pages.has(name)) {
      name = this.fallback;
      // Replace rather than push: "back" must not lead to a route that does not exist.
      if (window.location.hash !== `#${name}`) {
        window.history.replaceState(null, '', `#${name}`);
      }
    }
    if (name === this.currentName) return;
    if (this.current) this.current.hide();
    this.currentName = name;
    this.current = this.pages.get(name);
    for (const a of document.querySelectorAll('.topbar nav a')) {
      if (a.getAttribute('href') === `#${name}`) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    this.current.show();
    const h1 = $('h1', $(`#${name}-view`) || document);
    if (h1) document.title = `${h1.textContent} · nubo console`;
  }
}
