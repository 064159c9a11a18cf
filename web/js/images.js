// The images page: every image the tenant may launch (its own, those shared with it, public
// ones), upload or import one with progress, share one, deregister one.

import { get, post, put, del, upload } from './api.js';
import {
  $, h, actionButton, bytes, confirmAction, fillTable, onRowAction, showError, toast, when,
} from './dom.js';

const IMPORTED = new Set(['vhd', 'vmdk', 'ova']); // nubo-imaged converts these after the upload
const TASK_POLL_MS = 1000;

export class ImagesPage {
  constructor(session) {
    this.session = session;
    this.images = [];
    this.pollTimer = null;
    this.uploading = false;
    this.bind();
  }

  bind() {
    $('#images-refresh').onclick = () => this.reload();
    $('#upload-open').onclick = () => this.openUpload();
    $('#upload-cancel').onclick = () => $('#upload-dialog').close();
    $('#upload-form').onsubmit = (e) => {
      e.preventDefault();
      this.upload();
    };
    $('#share-cancel').onclick = () => $('#share-dialog').close();
    $('#share-form').onsubmit = (e) => {
      e.preventDefault();
      this.saveShare();
    };
    onRowAction($('#images'), (id, action) => this.act(id, action));
  }

  show() {
    $('#images-view').hidden = false;
    this.reload();
  }

  hide() {
    $('#images-view').hidden = true;
    clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }

  // Own, shared with this tenant, or public: what the list says about whose an image is.
  whose(m) {
    if (m.owner_id === this.session.tenant_id) return m.public ? 'own, public' : 'own';
    return m.public ? 'public' : 'shared with me';
  }

  async reload() {
    try {
      const doc = await get('/v1/images');
      this.images = doc.images;
      showError($('#images-error'), '');
    } catch (e) {
      if (e.status !== 401) showError($('#images-error'), `Could not list images: ${e.message}`);
    }
    this.render();
    // Pending images change by themselves (an import, a copy): look again while there are any.
    clearTimeout(this.pollTimer);
    if (this.images.some((m) => m.state === 'pending') && !$('#images-view').hidden) {
      this.pollTimer = setTimeout(() => this.reload(), 5000);
    }
  }

  render() {
    const order = { own: 0, 'own, public': 0, 'shared with me': 1, public: 2 };
    const list = [...this.images].sort((a, b) => order[this.whose(a)] - order[this.whose(b)]
      || a.name.localeCompare(b.name));
    fillTable($('#images'), list, (m) => this.rowOf(m), $('#images-empty'));
  }

  rowOf(m) {
    const mine = m.owner_id === this.session.tenant_id;
    const canWrite = mine && this.session.role !== 'reader';
    return h('tr', { dataset: { id: m.id, whose: this.whose(m) } },
      h('td', null, m.name),
      h('td', { class: 'mono' }, m.id),
      h('td', null, h('span', { class: 'badge' }, this.whose(m)),
        mine ? null : h('span', { class: 'reason mono' }, m.owner_id)),
      h('td', null, h('span', { class: 'state', dataset: { state: m.state } }, m.state),
        m.state_reason ? h('span', { class: 'reason' }, m.state_reason) : null),
      h('td', null, m.disk_format || ''),
      h('td', null, m.size_bytes ? bytes(m.size_bytes) : ''),
      h('td', null, when(m.created_at)),
      h('td', { class: 'actions' },
        canWrite ? actionButton('share', 'Share') : null,
        canWrite ? actionButton('delete', 'Delete', { danger: true }) : null));
  }

  async act(id, action) {
    const m = this.images.find((x) => x.id === id);
    if (!m) return;
    if (action === 'share') {
      await this.openShare(m);
      return;
    }
    if (action === 'delete') {
      const ok = await confirmAction(`Deregister ${m.name} (${id})? Instances launched from it `
        + 'keep running; it can no longer be launched.', 'Deregister');
      if (!ok) return;
      try {
        await del(`/v1/images/${encodeURIComponent(id)}`);
        toast(`Deregistered ${id}`);
      } catch (e) {
        if (e.status !== 401) toast(`Deregister ${id}: ${e.message}`, true);
      }
      this.reload();
    }
  }

  // --- upload and import ---

  setProgress(bar, label, fraction) {
    const pct = Math.max(0, Math.min(100, Math.round(fraction * 100)));
    $(bar).value = pct;
    $(label).textContent = `${pct}%`;
  }

  openUpload() {
    // Closing the dialog does not stop an upload: opened again meanwhile, it shows that one.
    if (this.uploading) {
      $('#upload-dialog').showModal();
      return;
    }
    $('#upload-form').reset();
    this.setProgress('#upload-progress', '#upload-percent', 0);
    this.setProgress('#import-progress', '#import-percent', 0);
    $('#import-row').hidden = true;
    $('#upload-status').textContent = '';
    showError($('#upload-error'), '');
    $('#upload-submit').disabled = false;
    $('#upload-dialog').showModal();
  }

  // Two calls, as the CLI makes them: register the record with the format its bytes will
  // have, then stream the bytes into it.
  async upload() {
    const file = $('#upload-file').files[0];
    if (!file) {
      showError($('#upload-error'), 'Choose a file to upload.');
      return;
    }
    const format = $('#upload-format').value;
    const body = { name: $('#upload-name').value.trim(), source_format: format };
    const description = $('#upload-description').value.trim();
    if (description) body.description = description;
    showError($('#upload-error'), '');
    this.setProgress('#upload-progress', '#upload-percent', 0);
    this.setProgress('#import-progress', '#import-percent', 0);
    $('#import-row').hidden = true;
    $('#upload-submit').disabled = true;
    this.uploading = true;
    let image = null;
    let uploaded = false;
    try {
      image = await post('/v1/images', body);
      $('#upload-status').textContent = `Uploading ${file.name} into ${image.id}…`;
      const path = `/v1/images/${encodeURIComponent(image.id)}/file`;
      const result = await upload(path, file, (sent, total) => {
        this.setProgress('#upload-progress', '#upload-percent', total ? sent / total : 1);
      });
      uploaded = true;
      this.setProgress('#upload-progress', '#upload-percent', 1);
      if (result && result.import_task_id) {
        $('#upload-status').textContent = `Uploaded; ${image.id} is being imported `
          + `(${result.import_task_id}).`;
        this.reload();
        await this.followTask(result.import_task_id);
      } else {
        $('#upload-status').textContent = `Uploaded: ${image.id} is ${result ? result.state : 'stored'}.`;
        toast(`Uploaded ${image.id}`);
      }
    } catch (e) {
      if (e.status === 401) return;
      let what = 'The image could not be registered';
      if (image && !uploaded) {
        // A record without bytes would stay pending for good and keep its name: take it back,
        // so that trying again with the same name works.
        what = `The upload into ${image.id} failed`;
        await del(`/v1/images/${encodeURIComponent(image.id)}`).then(
          () => { what += ' (the record was removed)'; }, () => {});
      } else if (image) {
        what = `The import of ${image.id} failed`;
      }
      $('#upload-status').textContent = '';
      showError($('#upload-error'), `${what}: ${e.message}`);
    } finally {
      this.uploading = false;
      $('#upload-submit').disabled = false;
      this.reload();
    }
  }

  // Follows an import task until it completes or fails. Its progress comes live on the event
  // stream (GET /v1/events, "event: task"); the task itself is read when the stream opens (for
  // what happened before) and every TASK_POLL_MS only while the stream is not connected.
  followTask(taskId) {
    $('#import-row').hidden = false;
    return new Promise((resolve, reject) => {
      const es = new EventSource('/v1/events', { withCredentials: true });
      let over = false;
      let timer = null;
      const finish = (err) => {
        if (over) return;
        over = true;
        es.close();
        clearInterval(timer);
        if (err) reject(err);
        else resolve();
      };
      const show = (t) => {
        if (over) return;
        this.setProgress('#import-progress', '#import-percent', (t.progress || 0) / 100);
        if (t.state === 'completed') {
          this.setProgress('#import-progress', '#import-percent', 1);
          $('#upload-status').textContent = `Imported: ${t.image_id} is available.`;
          toast(`Imported ${t.image_id}`);
          finish();
        } else if (t.state === 'failed') {
          finish(new Error(`the import failed: ${t.status_message || t.message}`));
        } else if (!$('#upload-dialog').open) {
          finish(); // closed: the list shows the image as pending
        }
      };
      const read = () => get(`/v1/image-tasks/${encodeURIComponent(taskId)}`)
        .then(show, (e) => finish(e));
      es.addEventListener('open', read);
      es.addEventListener('task', (m) => {
        let ev;
        try {
          ev = JSON.parse(m.data);
        } catch (e) {
          return;
        }
        if (ev.task_id === taskId) show(ev);
      });
      timer = setInterval(() => {
        if (es.readyState !== EventSource.OPEN) read();
      }, TASK_POLL_MS);
    });
  }

  // --- sharing ---

  async openShare(m) {
    this.sharing = m;
    $('#share-image').textContent = `${m.name} (${m.id})`;
    $('#share-add').value = '';
    $('#share-tenants').replaceChildren();
    showError($('#share-error'), '');
    $('#share-dialog').showModal();
    try {
      this.showPermissions(await get(`/v1/images/${encodeURIComponent(m.id)}/launch-permissions`));
    } catch (e) {
      if (e.status !== 401) showError($('#share-error'), e.message);
    }
  }

  showPermissions(p) {
    this.removing = new Set();
    $('#share-public').checked = p.public;
    $('#share-tenants').replaceChildren(...(p.tenants.length ? p.tenants.map((t) => h('li',
      { class: 'chip', dataset: { tenant: t } }, h('span', { class: 'mono' }, t),
      h('button', {
        type: 'button',
        class: 'small quiet',
        title: `Stop sharing with ${t}`,
        onclick: (e) => {
          // Marked here, removed when saved: one PUT makes every change at once.
          const li = e.target.closest('li');
          li.classList.toggle('removed');
          if (this.removing.has(t)) this.removing.delete(t);
          else this.removing.add(t);
        },
      }, '×'))) : [h('li', { class: 'none' }, 'nobody yet')]));
  }

  async saveShare() {
    const m = this.sharing;
    const add = $('#share-add').value.split(/[\s,]+/).filter(Boolean);
    const bad = add.filter((t) => !/^\d{12}$/.test(t));
    if (bad.length) {
      showError($('#share-error'), `Not a 12-digit tenant id: ${bad.join(', ')}`);
      return;
    }
    $('#share-submit').disabled = true;
    try {
      const p = await put(`/v1/images/${encodeURIComponent(m.id)}/launch-permissions`, {
        add, remove: [...this.removing], public: $('#share-public').checked,
      });
      this.showPermissions(p);
      $('#share-add').value = '';
      showError($('#share-error'), '');
      toast(`Shared ${m.id} with ${p.tenants.length} tenant(s)${p.public ? ', public' : ''}`);
      this.reload();
    } catch (e) {
      if (e.status !== 401) showError($('#share-error'), e.message);
    } finally {
      $('#share-submit').disabled = false;
    }
  }
}
