// What the browser tests share: the botnest binary run with a replayed scenario, Debian's
// chromium driven by playwright-core, free loopback ports, and UDP export to the collector.

import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '../../..');
export const ARTIFACTS = path.join(REPO, 'target', 'browser-artifacts');

/** The botnest binary: BOTNEST_BIN, else the debug build of this checkout. */
export function botnestBinary() {
  return process.env.BOTNEST_BIN || path.join(REPO, 'target', 'debug', 'botnest');
}

export function chromiumPath() {
  return process.env.CHROMIUM || '/usr/bin/chromium';
}

/**
 * Why the suite cannot run here, or null. Under CI (CI=true) a missing browser or binary is a
 * failure, not a skip, so a broken runner cannot pass silently.
 */
export function missingPrerequisites() {
  const missing = [];
  if (!fs.existsSync(chromiumPath())) missing.push(`chromium (${chromiumPath()}; apt-get install chromium)`);
  if (!fs.existsSync(botnestBinary())) missing.push(`the botnest binary (${botnestBinary()}; cargo build -p botnest)`);
  if (missing.length === 0) return null;
  const why = `the browser tests need ${missing.join(' and ')}`;
  if (process.env.CI === 'true') throw new Error(`${why} (CI=true: failing instead of skipping)`);
  return why;
}

/** A port that was free a moment ago on 127.0.0.1 (TCP or UDP). */
export async function freePort(kind = 'tcp') {
  if (kind === 'udp') {
    const sock = dgram.createSocket('udp4');
    await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve));
    const { port } = sock.address();
    await new Promise((resolve) => sock.close(resolve));
    return port;
  }
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Polls `f` until it returns a truthy value; fails after `ms` with `what` in the message. */
export async function waitFor(what, f, ms = 30000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * `botnest run` with a replayed input, a UDP collector and HTTP on loopback. Its stderr is kept
 * in `dir/botnest.log`. `stop()` ends it.
 */
export async function startBotnest({ dir, config, replay, extraArgs = [] }) {
  const udp = await freePort('udp');
  const http = await freePort('tcp');
  const configPath = path.join(dir, 'botnest.toml');
  fs.writeFileSync(configPath, config);
  const args = [
    '--config', configPath,
    'run',
    '--listen', `udp://127.0.0.1:${udp}`,
    '--http', `127.0.0.1:${http}`,
    '--state-dir', path.join(dir, 'state'),
    '--alerts-json', path.join(dir, 'alerts.json'),
    ...(replay ? ['--replay', replay] : []),
    ...extraArgs,
  ];
  const log = fs.openSync(path.join(dir, 'botnest.log'), 'w');
  const child = spawn(botnestBinary(), args, { stdio: ['ignore', log, log] });
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = { code, signal };
  });
  const base = `http://127.0.0.1:${http}`;
  const logText = () => fs.readFileSync(path.join(dir, 'botnest.log'), 'utf8');
  // The startup line comes once any replay has been fed through the engine.
  await waitFor(
    'botnest to finish starting (its "web console on" line)',
    async () => {
      if (exited) throw new Error(`botnest exited (${JSON.stringify(exited)}): ${logText().slice(-2000)}`);
      return logText().includes(`web console on http://127.0.0.1:${http}/`);
    },
    120000,
  );
  return {
    base,
    udp,
    child,
    log: logText,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      await new Promise((resolve) => {
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, 10000);
        child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
    },
  };
}

/** GET a JSON document from the API (with a bearer token when given). */
export async function api(base, pathAndQuery, token) {
  const r = await fetch(base + pathAndQuery, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (!r.ok) throw new Error(`GET ${pathAndQuery}: ${r.status}`);
  return r.json();
}

/** Sends each datagram to the collector on 127.0.0.1:`port`, pacing them a little. */
export async function sendUdp(port, datagrams) {
  const sock = dgram.createSocket('udp4');
  try {
    for (const d of datagrams) {
      await new Promise((resolve, reject) => sock.send(d, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  } finally {
    sock.close();
  }
}

/** Flags the browser is started with: headless, no network of its own, a fresh profile. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * A fresh browser context (own profile directory) that records page errors, dialogs, console
 * errors and content-security-policy violations of every page it opens.
 */
export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  const profile = tempDir('botnest-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath(),
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1400, height: 1000 },
  });
  const events = { pageErrors: [], dialogs: [], consoleErrors: [], cspViolations: [] };
  context.on('page', (page) => watch(page, events));
  for (const page of context.pages()) watch(page, events);
  // Every page of the context reports what its content security policy blocked.
  await context.exposeBinding('__reportViolation', (_source, text) => events.cspViolations.push(text));
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__reportViolation(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  return {
    context,
    events,
    page: context.pages()[0] || (await context.newPage()),
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

function watch(page, events) {
  page.on('pageerror', (err) => events.pageErrors.push(err.message));
  page.on('dialog', (dialog) => {
    events.dialogs.push(dialog.message());
    dialog.dismiss().catch(() => {});
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error') events.consoleErrors.push(msg.text());
  });
}

/** Saves a full-page screenshot under target/browser-artifacts/. */
export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
