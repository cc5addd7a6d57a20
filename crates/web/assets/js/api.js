// Access to botnest's HTTP API: the bearer token (when the server asks for one), the CSRF
// token of state-changing requests, and JSON errors turned into exceptions.

const TOKEN_KEY = 'botnest.token';

/** An API answer other than 2xx. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The token kept for this tab (sessionStorage: it does not outlive the tab). */
export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
  csrf = null;
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  csrf = null;
}

/** Headers every request carries. */
export function authHeaders() {
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  return headers;
}

const unauthorizedListeners = new Set();

/** Calls `f` whenever the server answers 401 (no token, or a wrong one). */
export function onUnauthorized(f) {
  unauthorizedListeners.add(f);
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== null && v !== undefined && v !== '') q.set(k, String(v));
  }
  const text = q.toString();
  return text ? `?${text}` : '';
}

async function check(response) {
  if (response.ok) return response;
  if (response.status === 401) {
    for (const f of unauthorizedListeners) f();
  }
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && typeof body.error === 'string') message = body.error;
  } catch {
    // Not JSON: keep the status line.
  }
  throw new ApiError(response.status, message);
}

/** GET a JSON document: `get('/api/botnests', {tenant: 'acme'})`. */
export async function get(path, params, init) {
  const response = await fetch(path + query(params), {
    headers: authHeaders(),
    credentials: 'same-origin',
    ...init,
  });
  await check(response);
  return response.json();
}

let csrf = null;

/** The CSRF token of this session, from GET /api/session. */
async function csrfToken() {
  if (!csrf) {
    const session = await get('/api/session');
    csrf = session.csrf || session.csrf_token || null;
    if (!csrf) throw new ApiError(0, 'the server sent no CSRF token');
  }
  return csrf;
}

/** POST JSON with the CSRF header; retries once with a fresh token when it was refused. */
export async function post(path, body) {
  for (let attempt = 0; ; attempt += 1) {
    const response = await fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: {
        ...authHeaders(),
        'Content-Type': 'application/json',
        'X-Botnest-CSRF': await csrfToken(),
      },
      body: JSON.stringify(body ?? {}),
    });
    if (response.status === 403 && attempt === 0) {
      csrf = null;
      continue;
    }
    await check(response);
    const type = response.headers.get('Content-Type') || '';
    return type.includes('json') ? response.json() : null;
  }
}

/** Fetches a file (with the token) and hands it to the browser as a download. */
export async function download(path, params, fallbackName) {
  const response = await fetch(path + query(params), {
    headers: { ...authHeaders(), Accept: '*/*' },
    credentials: 'same-origin',
  });
  await check(response);
  const disposition = response.headers.get('Content-Disposition') || '';
  const match = /filename="?([^";]+)"?/.exec(disposition);
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = match ? match[1] : fallbackName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
