// The REST API as the console calls it: same-origin fetch with the session cookie, the CSRF
// token on every call that changes something, JSON in and out, errors as ApiError.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let csrfToken = null;
const listeners = new Set();

export function setCsrfToken(token) {
  csrfToken = token;
}

// 'fn' is called when a call finds the session over (401): the console signs out.
export function onSignedOut(fn) {
  listeners.add(fn);
}

// The error an answer carries: the API's {"error": {code, message}} when there is one.
function errorOf(status, text, method, path) {
  let doc = null;
  try {
    doc = text ? JSON.parse(text) : null;
  } catch (e) {
    doc = null;
  }
  const err = (doc && doc.error) || {};
  const e = new ApiError(status, err.code || `HTTP${status}`,
    err.message || `${method} ${path} failed with HTTP ${status}`);
  if (status === 401 && path !== '/v1/session') listeners.forEach((fn) => fn(e));
  return e;
}

export async function call(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'NetworkError', 'the gateway cannot be reached');
  }
  const text = await res.text();
  if (!res.ok) throw errorOf(res.status, text, method, path);
  try {
    return text ? JSON.parse(text) : null;
  } catch (e) {
    return null;
  }
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body === undefined ? {} : body);
export const put = (path, body) => call('PUT', path, body === undefined ? {} : body);
export const del = (path, body) => call('DELETE', path, body);

// GET of a text that is not JSON (an invoice as CSV): the text, or an ApiError.
export async function getText(path, accept) {
  let res;
  try {
    res = await fetch(path, { headers: { Accept: accept }, credentials: 'same-origin' });
  } catch (e) {
    throw new ApiError(0, 'NetworkError', 'the gateway cannot be reached');
  }
  const text = await res.text();
  if (!res.ok) throw errorOf(res.status, text, 'GET', path);
  return text;
}

// A path with its query: q(path, {a: 1, b: ''}) leaves out empty values and encodes the rest.
export function q(path, args) {
  const parts = Object.entries(args || {})
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  return parts.length ? `${path}?${parts.join('&')}` : path;
}

// PUT of a file's bytes (the streamed image upload, PUT /v1/images/{id}/file). fetch() cannot
// report upload progress, XMLHttpRequest can: 'onProgress(sent, total)' is called as the bytes
// leave. The bytes are not hashed here (a whole image read twice in the browser): the request
// says UNSIGNED-PAYLOAD, as the API allows, and TCP plus the format check guard them.
export function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', path);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.setRequestHeader('x-amz-content-sha256', 'UNSIGNED-PAYLOAD');
    if (csrfToken) xhr.setRequestHeader('X-CSRF-Token', csrfToken);
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) onProgress(e.loaded, e.total);
    });
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(file.size, file.size);
        try {
          resolve(xhr.responseText ? JSON.parse(xhr.responseText) : null);
        } catch (e) {
          resolve(null);
        }
      } else {
        reject(errorOf(xhr.status, xhr.responseText, 'PUT', path));
      }
    });
    xhr.addEventListener('error', () => {
      reject(new ApiError(0, 'NetworkError', 'the upload was cut off'));
    });
    xhr.send(file);
  });
}

// Base64 of a string's UTF-8 bytes (EC2's user-data encoding).
export function base64Utf8(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}
