// Start-up: filters, routing between the pages, the live event stream, and the sign-in form.

import { clearToken, get, onUnauthorized, setToken, token } from './api.js';
import { h, hostHref, replace } from './dom.js';
import { openEvents } from './events.js';
import { hideTooltip } from './tooltip.js';
import { alertFeed, renderBotnest, renderGraph, renderHost, renderHosts, renderOverview, updateStatus } from './views.js';

const FILTERS_KEY = 'botnest.filters';
const MAX_ALERTS = 500;

const ctx = {
  filters: loadFilters(),
  alerts: [],
  tenants: new Set(),
  openHost(tenant, address) {
    location.hash = hostHref(tenant, address);
  },
  learnTenants(nests, hosts) {
    const before = ctx.tenants.size;
    for (const n of nests || []) for (const t of n.tenants || []) ctx.tenants.add(t);
    for (const x of hosts || []) if (x.tenant !== undefined) ctx.tenants.add(String(x.tenant));
    if (ctx.tenants.size !== before) fillTenants();
  },
};

let current = null;
let stopEvents = null;

function loadFilters() {
  try {
    return { tenant: '', since: '', until: '', min_score: '', ...JSON.parse(sessionStorage.getItem(FILTERS_KEY) || '{}') };
  } catch {
    return { tenant: '', since: '', until: '', min_score: '' };
  }
}

// datetime-local inputs hold UTC here, shown without a zone; the API takes RFC 3339.
function toInput(rfc3339) {
  return rfc3339 ? rfc3339.replace(/Z$/, '').slice(0, 19) : '';
}

function fromInput(value) {
  return value ? `${value.length === 16 ? `${value}:00` : value}Z` : '';
}

function fillTenants() {
  const select = document.querySelector('#filters select[name="tenant"]');
  const chosen = ctx.filters.tenant;
  const names = new Set([...ctx.tenants, ...(chosen ? [chosen] : [])]);
  replace(
    select,
    h('option', { value: '' }, 'all'),
    [...names].sort().map((t) => h('option', { value: t, selected: t === chosen }, t)),
  );
}

function setUpFilters() {
  const form = document.getElementById('filters');
  form.elements.since.value = toInput(ctx.filters.since);
  form.elements.until.value = toInput(ctx.filters.until);
  form.elements.min_score.value = ctx.filters.min_score;
  fillTenants();
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    ctx.filters = {
      tenant: form.elements.tenant.value,
      since: fromInput(form.elements.since.value),
      until: fromInput(form.elements.until.value),
      min_score: form.elements.min_score.value,
    };
    sessionStorage.setItem(FILTERS_KEY, JSON.stringify(ctx.filters));
    route();
  });
  document.getElementById('filters-clear').addEventListener('click', () => {
    form.reset();
    ctx.filters = { tenant: '', since: '', until: '', min_score: '' };
    sessionStorage.removeItem(FILTERS_KEY);
    fillTenants();
    route();
  });
}

async function route() {
  const view = document.getElementById('view');
  hideTooltip();
  if (current && current.destroy) current.destroy();
  current = null;
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const page = parts[0] || 'overview';
  for (const a of document.querySelectorAll('nav a')) {
    a.classList.toggle('current', a.dataset.route === page);
  }
  const root = h('div', { class: 'page', 'data-page': page });
  replace(view, root);
  let render;
  if (page === 'botnest' && parts[1]) render = renderBotnest(root, ctx, parts[1]);
  else if (page === 'host' && parts.length >= 3) render = renderHost(root, ctx, parts[1], parts.slice(2).join('/'));
  else if (page === 'graph') render = renderGraph(root, ctx);
  else if (page === 'hosts') render = renderHosts(root, ctx);
  else render = renderOverview(root, ctx);
  const rendered = await render;
  if (view.firstChild === root) {
    current = rendered;
    root.dataset.loaded = 'true';
  } else if (rendered && rendered.destroy) {
    rendered.destroy();
  }
}

// Detections arrive in bursts (one detector pass yields many): refresh once per burst.
let refreshTimer = null;
function scheduleRefresh() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    if (current && current.refresh) current.refresh();
  }, 1000);
}

function onEvent(type, data) {
  if (type === 'alert' && data && typeof data === 'object' && data.evidence) {
    ctx.alerts.unshift(data);
    if (ctx.alerts.length > MAX_ALERTS) ctx.alerts.length = MAX_ALERTS;
    const feed = document.getElementById('feed');
    if (feed) replace(feed, alertFeed(ctx.alerts));
    document.body.dataset.alerts = String(ctx.alerts.length);
    scheduleRefresh();
  } else if (type === 'botnest') {
    scheduleRefresh();
  } else if (type === 'status' && data && typeof data === 'object') {
    updateStatus(data);
  }
}

function setLive(state) {
  const el = document.getElementById('live');
  el.dataset.state = state;
  el.textContent = { connecting: 'connecting', live: 'live', retrying: 'reconnecting', unauthorized: 'signed out' }[state] || state;
  if (state === 'unauthorized') askForToken();
}

function startEvents() {
  if (stopEvents) stopEvents();
  stopEvents = openEvents('/api/events', onEvent, setLive);
}

function askForToken(message) {
  const dialog = document.getElementById('login');
  const error = document.getElementById('login-error');
  error.hidden = !message;
  error.textContent = message || '';
  if (!dialog.open) dialog.showModal();
}

function setUpLogin() {
  const dialog = document.getElementById('login');
  const form = document.getElementById('login-form');
  const logout = document.getElementById('logout');
  logout.hidden = !token();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setToken(form.elements.token.value);
    form.elements.token.value = '';
    try {
      await get('/api/status');
    } catch (err) {
      clearToken();
      askForToken(err.status === 401 ? 'That token was refused.' : `Sign-in failed: ${err.message}`);
      return;
    }
    dialog.close();
    logout.hidden = false;
    startEvents();
    route();
  });
  dialog.addEventListener('cancel', (ev) => ev.preventDefault());
  logout.addEventListener('click', () => {
    clearToken();
    logout.hidden = true;
    if (stopEvents) stopEvents();
    askForToken();
  });
  onUnauthorized(() => askForToken(token() ? 'The token was refused.' : null));
}

async function start() {
  setUpFilters();
  setUpLogin();
  window.addEventListener('hashchange', route);
  // Ask for the token first when the server needs one we do not have (or have wrong).
  try {
    const session = await get('/api/session');
    if (session.token_required && !session.authenticated) {
      askForToken(token() ? 'The saved token was refused.' : null);
      return;
    }
  } catch (err) {
    console.warn('no session information', err);
  }
  route();
  startEvents();
}

start();
