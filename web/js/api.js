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
  let doc = null;
  try {
    doc = text ? JSON.parse(text) : null;
  } catch (e) {
    doc = null;
  }
  if (!res.ok) {
    const err = (doc && doc.error) || {};
    const e = new ApiError(res.status, err.code || `HTTP${res.status}`,
      err.message || `${method} ${path} failed with HTTP ${res.status}`);
    if (res.status === 401 && path !== '/v1/session') listeners.forEach((fn) => fn(e));
    throw e;
  }
  return doc;
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body === undefined ? {} : body);
export const del = (path) => call('DELETE', path);

// Base64 of a string's UTF-8 bytes (EC2's user-data encoding).
export function base64Utf8(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}
