// The web UI in a real browser (Debian's chromium through playwright-core) against the real
// botnest binary replaying a recorded scenario, then fed live over UDP.
//
// Run: npm ci && npm test (from tests/browser), after `cargo build -p botnest`.
// BOTNEST_BIN and CHROMIUM override the binary and browser paths. Screenshots and the measured
// render times go to target/browser-artifacts/.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  ARTIFACTS,
  REPO,
  api,
  launchBrowser,
  missingPrerequisites,
  screenshot,
  sendUdp,
  startBotnest,
  tempDir,
  waitFor,
} from './lib/harness.js';
import {
  BENIGN,
  BOTS,
  BRUTE_BOT,
  C2,
  C2_PORT,
  CORE_BOT,
  SCANNER,
  TENANTS,
  config,
  largeFlows,
  liveFlows,
  messages,
  namedInterfaceMessages,
  scenarioFlows,
} from './lib/scenario.js';

const skip = missingPrerequisites();
if (skip) console.log(`# skipping: ${skip}`);

const key = (vlan, address) => `${TENANTS[vlan]}/${address}`;
const C2_KEY = `0/${C2}`;
const NEW_BOT = '10.1.0.16';

/** The graph's nodes and edges as plain data, read from the page's cytoscape instance. */
function graphData(page) {
  return page.evaluate(() => {
    const cy = window.botnestGraph;
    return {
      nodes: cy.nodes().map((n) => ({ id: n.id(), parent: n.data('parent') ?? null, role: n.data('role'), kind: n.data('kind') })),
      edges: cy.edges().map((e) => ({ source: e.data('source'), target: e.data('target'), port: e.data('port'), flows: e.data('flows') })),
    };
  });
}

test('the console inserts no markup from strings and evaluates no code', () => {
  const dir = path.join(REPO, 'crates', 'web', 'assets', 'js');
  const sinks = /\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\(\s*['"](style|on)/;
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.js'));
  assert.ok(files.length >= 5);
  for (const f of files) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    assert.doesNotMatch(text, sinks, `${f} uses a markup or code sink`);
  }
});

describe('web UI', { skip: Boolean(skip) }, () => {
  let dir;
  let botnest;
  let browser;
  let page;
  let nestId;

  before(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    dir = tempDir('botnest-ui-');
    const blocklist = path.join(dir, 'blocklist.txt');
    fs.writeFileSync(blocklist, `# the scenario's C2\n${C2}\n`);
    const recording = path.join(dir, 'scenario.ipfix');
    fs.writeFileSync(recording, Buffer.concat(messages(scenarioFlows()).messages));
    botnest = await startBotnest({ dir, config: config(blocklist), replay: recording });
    const nest = await waitFor('the replayed botnest in the API', async () => {
      const { botnests } = await api(botnest.base, '/api/botnests');
      return botnests.find((b) => (b.c2 || []).includes(`${C2}:${C2_PORT}`));
    });
    nestId = nest.id;
    browser = await launchBrowser();
    page = browser.page;
  });

  after(async () => {
    if (browser) await browser.close();
    if (botnest) {
      await botnest.stop();
      fs.writeFileSync(path.join(ARTIFACTS, 'botnest.log'), botnest.log());
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('overview shows the botnests by tenant, the timeline and the exporters', async () => {
    await page.goto(`${botnest.base}/`);
    await page.waitForSelector('.page[data-page="overview"][data-loaded="true"]');
    await page.waitForSelector('#live[data-state="live"]');
    const tenants = await page.$$eval('table.by-tenant tbody tr', (rows) => rows.map((r) => r.dataset.tenant));
    assert.ok(tenants.includes('acme') && tenants.includes('globex'), `tenants: ${tenants}`);
    const row = await page.$eval(`table.botnests tr[data-botnest="${nestId}"]`, (r) => r.textContent);
    assert.match(row, new RegExp(`${C2.replaceAll('.', '\\.')}:${C2_PORT}`));
    const detections = Number(await page.$eval('svg.timeline', (s) => s.dataset.detections));
    assert.ok(detections >= 8 * 3, `timeline holds ${detections} detections`);
    await screenshot(page, '01-overview');
  });

  test('the botnest is a group in the property graph, bots and C2 styled by role', async () => {
    await page.goto(`${botnest.base}/#/botnest/${nestId}`);
    await page.waitForSelector('#graph[data-ready="true"]');
    const { nodes, edges } = await graphData(page);
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const group = byId.get(`b:${nestId}`);
    assert.equal(group?.kind, 'botnest');
    for (const [vlan, bots] of Object.entries(BOTS)) {
      for (const bot of bots) {
        const n = byId.get(`h:${key(vlan, bot)}`);
        assert.ok(n, `node of ${key(vlan, bot)}`);
        assert.equal(n.role, 'bot');
        assert.equal(n.parent, `b:${nestId}`);
        const toC2 = edges.find((e) => e.source === n.id && e.target === `h:${C2_KEY}`);
        assert.ok(toC2, `channel ${n.id} -> C2`);
        assert.equal(toC2.port, C2_PORT);
        assert.ok(toC2.flows >= 8);
      }
    }
    assert.equal(byId.get(`h:${C2_KEY}`)?.role, 'c2');
    for (const [vlan, hosts] of Object.entries(BENIGN)) {
      for (const h of hosts) assert.ok(!byId.has(`h:${key(vlan, h)}`), `benign ${h} not drawn`);
    }
    // The core bot's scan of 120 addresses is one node for its targets, not 120.
    const fan = await page.evaluate(
      (id) => window.botnestGraph.getElementById(id).data(),
      `f:${key(CORE_BOT.vlan, CORE_BOT.address)}>2323/6`,
    );
    assert.equal(fan?.count, 120);
    assert.ok(!byId.has('h:0/198.51.100.1'));

    // Hovering a channel shows its properties.
    const edgeId = `e:${key(CORE_BOT.vlan, CORE_BOT.address)}>${C2_KEY}:${C2_PORT}/6`;
    const tip = await page.evaluate((id) => {
      window.botnestGraph.getElementById(id).emit('mouseover');
      const el = document.getElementById('tooltip');
      return { hidden: el.hidden, lines: [...el.children].map((c) => c.textContent) };
    }, edgeId);
    assert.equal(tip.hidden, false);
    assert.equal(tip.lines[0], `10.1.0.11 (acme) → ${C2}`);
    assert.ok(tip.lines.includes(`port ${C2_PORT} / TCP`), tip.lines.join(' | '));
    assert.ok(tip.lines.some((l) => /^flows \d+, failed 0%$/.test(l)), tip.lines.join(' | '));
    assert.ok(tip.lines.some((l) => /^interval \d+(\.\d+)? s \(cv 0\.\d+\)$/.test(l)), tip.lines.join(' | '));
    assert.ok(tip.lines.some((l) => l.startsWith('first seen 2026-03-02 10:0')), tip.lines.join(' | '));
    await screenshot(page, '02-botnest-graph');

    // Tapping a host node opens its page.
    await page.evaluate((id) => window.botnestGraph.getElementById(id).emit('tap'), `h:${key(200, '10.1.0.13')}`);
    await page.waitForURL('**/#/host/globex/10.1.0.13');
    await page.goBack();
    await page.waitForSelector('#graph[data-ready="true"]');
  });

  test('the Euler diagram puts the core bots where the behaviours overlap', async () => {
    await page.waitForSelector('#euler svg.euler .euler-host');
    const dots = await page.$$eval('#euler .euler-host', (els) =>
      els.map((e) => ({ host: e.dataset.host, sets: e.dataset.sets.split(' '), placed: e.dataset.placed })),
    );
    const dot = (k) => dots.find((d) => d.host === k);
    const core = dot(key(CORE_BOT.vlan, CORE_BOT.address));
    assert.deepEqual(core.sets, ['beaconing', 'shared_c2', 'scanning', 'blocklisted']);
    assert.deepEqual(dot(key(BRUTE_BOT.vlan, BRUTE_BOT.address)).sets, ['beaconing', 'shared_c2', 'brute_force', 'blocklisted']);
    assert.deepEqual(dot(key(200, '10.1.0.13')).sets, ['beaconing', 'shared_c2', 'blocklisted']);
    assert.equal(dots.length, 8, 'one dot per accused member of the botnest');
    assert.ok(dots.every((d) => d.placed === 'inside'), JSON.stringify(dots));

    // Only non-empty regions are drawn, each with the number of its hosts.
    const regions = await page.$$eval('#euler .euler-region', (els) => els.map((e) => ({ sets: e.dataset.sets, count: Number(e.dataset.count) })));
    assert.deepEqual(
      regions.map((r) => `${r.sets}:${r.count}`).sort(),
      [
        'beaconing shared_c2 blocklisted:6',
        'beaconing shared_c2 brute_force blocklisted:1',
        'beaconing shared_c2 scanning blocklisted:1',
      ],
    );
    await screenshot(page, '03-botnest-euler');
  });

  test('the botnest exports as GraphML and STIX from its page', async () => {
    for (const [format, check] of [
      ['graphml', (text) => text.includes('<graphml') && text.includes(C2)],
      ['stix', (text) => JSON.parse(text).type === 'bundle' && text.includes(`${C2}`)],
    ]) {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click(`.exports button[data-format="${format}"]`)]);
      const file = path.join(dir, `export.${format}`);
      await download.saveAs(file);
      assert.ok(check(fs.readFileSync(file, 'utf8')), `${format} export holds the botnest`);
    }
  });

  test('a host opened from the Euler diagram shows its evidence with the numbers', async () => {
    const k = key(CORE_BOT.vlan, CORE_BOT.address);
    await page.click(`#euler .euler-host[data-host="${k}"]`);
    await page.waitForURL(`**/#/host/${encodeURIComponent(TENANTS[CORE_BOT.vlan])}/${CORE_BOT.address}`);
    await page.waitForSelector('.page[data-page="host"][data-loaded="true"] table.evidence');
    assert.equal(await page.$eval('#verdict', (e) => e.dataset.accused), 'true');
    const evidence = await page.$$eval('table.evidence tbody tr', (rows) =>
      rows.map((r) => ({ kind: r.dataset.kind, text: r.textContent })),
    );
    const kinds = evidence.map((e) => e.kind);
    for (const kind of ['beaconing', 'shared_c2', 'scanning', 'blocklisted']) assert.ok(kinds.includes(kind), `${kind} in ${kinds}`);
    const scanning = evidence.find((e) => e.kind === 'scanning').text;
    assert.match(scanning, /120 targets on 2323\/tcp/);
    const beacon = evidence.find((e) => e.kind === 'beaconing').text;
    assert.match(beacon, new RegExp(`${C2.replaceAll('.', '\\.')}:${C2_PORT}`));
    assert.match(beacon, /every \d+(\.\d+)? s/);
    const botnestLink = await page.$eval('#verdict a', (a) => a.getAttribute('href'));
    assert.equal(botnestLink, `#/botnest/${nestId}`);
    await screenshot(page, '04-host');
  });

  test('the tenant filter narrows the accused hosts', async () => {
    await page.goto(`${botnest.base}/#/hosts`);
    await page.waitForSelector('table.hosts');
    await page.selectOption('#filters select[name="tenant"]', 'globex');
    await page.click('#filters button[type="submit"]');
    await waitFor('only globex hosts listed', async () => {
      const hosts = await page.$$eval('table.hosts tbody tr', (rows) => rows.map((r) => r.dataset.host));
      return hosts.length === BOTS[200].length && hosts.every((h) => h.startsWith('globex/'));
    });
    await page.click('#filters-clear');
    await page.waitForSelector(`table.hosts tr[data-host="${key(SCANNER.vlan, SCANNER.address)}"]`);
  });

  test('score and time filters reach the API: the page lists what it answers', async () => {
    await page.goto(`${botnest.base}/#/hosts`);
    await page.waitForSelector('table.hosts');
    await page.fill('#filters input[name="min_score"]', '0.97');
    await page.fill('#filters input[name="since"]', '2026-03-02T10:12:00');
    await page.click('#filters button[type="submit"]');
    const { hosts } = await api(botnest.base, '/api/hosts?min_score=0.97&since=2026-03-02T10:12:00Z');
    const expected = hosts.map((h) => `${h.tenant}/${h.address}`).sort();
    assert.ok(expected.length > 0 && expected.length < 10, `the filters select some hosts: ${expected}`);
    assert.ok(hosts.every((h) => h.score >= 0.97));
    await waitFor('the filtered list', async () => {
      const shown = await page.$$eval('table.hosts tbody tr', (rows) => rows.map((r) => r.dataset.host));
      return JSON.stringify(shown.sort()) === JSON.stringify(expected);
    });
    await page.click('#filters-clear');
    await page.waitForSelector(`table.hosts tr[data-host="${key(SCANNER.vlan, SCANNER.address)}"]`);
  });

  test('acknowledging a botnest sends the CSRF token; a request without it is refused', async () => {
    await page.goto(`${botnest.base}/#/botnest/${nestId}`);
    await page.waitForSelector('#acknowledge');
    assert.equal(await page.textContent('[data-stat="acknowledged"] .value'), 'no');
    await page.click('#acknowledge');
    await page.click('#acknowledge');
    await page.waitForFunction(() => document.querySelector('[data-stat="acknowledged"] .value')?.textContent === 'yes');
    const { acknowledged } = await api(botnest.base, `/api/botnests/${nestId}`);
    assert.equal(acknowledged, true);

    const forged = await page.evaluate(async (id) => {
      const r = await fetch(`/api/botnests/${id}/acknowledge`, { method: 'POST' });
      return r.status;
    }, nestId);
    assert.equal(forged, 403, 'a POST without the CSRF header is refused');
  });

  test('a detection arriving live shows up in the graph and the feed', async () => {
    await page.goto(`${botnest.base}/#/botnest/${nestId}`);
    await page.waitForSelector('#graph[data-ready="true"]');
    await page.waitForSelector('#live[data-state="live"]');
    const newKey = key(100, NEW_BOT);
    assert.ok(!(await graphData(page)).nodes.some((n) => n.id === `h:${newKey}`));
    await sendUdp(botnest.udp, messages(liveFlows(NEW_BOT), { domain: 1 }).messages);
    await page.waitForFunction(
      (id) => window.botnestGraph && window.botnestGraph.getElementById(id).nonempty(),
      `h:${newKey}`,
      { timeout: 60000 },
    );
    const node = (await graphData(page)).nodes.find((n) => n.id === `h:${newKey}`);
    assert.equal(node.parent, `b:${nestId}`);
    assert.ok(Number(await page.evaluate(() => document.body.dataset.alerts)) >= 1);
    await screenshot(page, '05-live-graph');
    await page.click('nav a[data-route="overview"]');
    await page.waitForSelector(`#feed li[data-host="${newKey}"]`);
    await screenshot(page, '06-live-feed');
  });

  test('interface names an exporter sends are shown as text, never run', async () => {
    const name = '<img src=x onerror="window.__pwned=1;alert(1)">';
    const description = '<script>window.__pwned=2;alert(2)</script>';
    const host = '10.1.0.77';
    await sendUdp(
      botnest.udp,
      namedInterfaceMessages({
        named: { ifindex: 7, name, description: 'uplink' },
        described: { ifindex: 8, description },
        host,
        vlan: 100,
      }),
    );
    // The collector keeps one text per interface: its name, else its description.
    await waitFor('the named interfaces in the API', async () => {
      const { exporters } = await api(botnest.base, '/api/exporters');
      const texts = exporters.flatMap((e) => (e.interfaces || []).map((i) => i.name));
      return texts.includes(name) && texts.includes(description);
    });

    await page.goto(`${botnest.base}/`);
    await page.waitForSelector('table.exporters li[data-index="8"]');
    const shown = await page.$$eval('table.exporters li[data-index="7"], table.exporters li[data-index="8"]', (items) =>
      items.map((li) => ({ text: li.querySelector('.ifname').textContent, elements: li.querySelectorAll('*').length })),
    );
    assert.deepEqual(shown.map((x) => x.text).sort(), [description, name].sort());
    assert.ok(shown.every((x) => x.elements === 1), 'no element made from the names');

    await page.goto(`${botnest.base}/#/host/acme/${host}`);
    await page.waitForSelector('table.flows tbody tr');
    const cells = await page.$$eval('table.flows .ifname', (els) => els.map((e) => e.textContent));
    assert.ok(cells.includes(name) && cells.includes(description), `interface cells: ${cells}`);
    assert.equal(await page.$$eval('main img, main script', (els) => els.length), 0);
    await screenshot(page, '07-interface-name');

    assert.equal(await page.evaluate(() => window.__pwned), undefined, 'no injected script ran');
    assert.deepEqual(browser.events.dialogs, [], 'no dialog opened');
    // On every page opened so far.
    assert.deepEqual(browser.events.cspViolations, [], 'nothing the policy had to block');
    assert.deepEqual(browser.events.pageErrors, [], 'no uncaught error in the page');
  });
});

describe('web UI with a few thousand hosts', { skip: Boolean(skip) }, () => {
  let dir;
  let botnest;
  let browser;
  // BOTNEST_UI_LARGE="NESTS,BOTS" measures another size (default: 60 botnests of 40 bots).
  const [NESTS, BOTS_PER_NEST] = (process.env.BOTNEST_UI_LARGE || '60,40').split(',').map(Number);

  before(async () => {
    dir = tempDir('botnest-ui-large-');
    const recording = path.join(dir, 'large.ipfix');
    fs.writeFileSync(recording, Buffer.concat(messages(largeFlows(NESTS, BOTS_PER_NEST)).messages));
    const blocklist = path.join(dir, 'blocklist.txt');
    fs.writeFileSync(blocklist, '');
    botnest = await startBotnest({ dir, config: config(blocklist), replay: recording });
    await waitFor(
      'every botnest of the large recording',
      async () => (await api(botnest.base, '/api/botnests')).botnests.length >= NESTS,
      120000,
    );
    browser = await launchBrowser();
  });

  after(async () => {
    if (browser) await browser.close();
    if (botnest) await botnest.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('draws every botnest and its hosts, and reports the time it took', async () => {
    const { page } = browser;
    const started = Date.now();
    await page.goto(`${botnest.base}/#/graph`);
    await page.waitForSelector('#graph[data-ready="true"]', { timeout: 300000 });
    const wall = Date.now() - started;
    const timings = await page.evaluate(() => ({
      graph: window.botnestGraph.nodes('[kind = "host"]').length,
      text: document.getElementById('graph-timing').textContent,
      euler_ms: Number(document.querySelector('#euler svg.euler').dataset.layoutMs),
      euler_hosts: document.querySelectorAll('#euler .euler-host').length,
    }));
    const hosts = NESTS * (BOTS_PER_NEST + 1);
    assert.equal(timings.graph, hosts, 'every bot and C2 is a node');
    assert.equal(timings.euler_hosts, NESTS * BOTS_PER_NEST, 'every accused bot is a dot');
    const groups = await page.evaluate(() => window.botnestGraph.nodes('[kind = "botnest"]').length);
    assert.equal(groups, NESTS);
    const graph = await page.evaluate(() => ({ ...document.getElementById('graph').dataset }));
    const report = {
      hosts,
      botnests: NESTS,
      page_load_to_graph_ready_ms: wall,
      graph: timings.text,
      graph_layout_ms: Number(graph.layoutMs),
      graph_total_ms: Number(graph.totalMs),
      euler_layout_and_draw_ms: timings.euler_ms,
    };
    console.log(`# large graph: ${JSON.stringify(report)}`);
    fs.writeFileSync(path.join(ARTIFACTS, `large-graph-timings-${hosts}.json`), `${JSON.stringify(report, null, 2)}\n`);
    await screenshot(page, '08-large-graph');

    // Finding a host among thousands: the matches and their neighbours stay, the rest fade.
    await page.fill('.finder input[name="find"]', '10.100.1.2');
    await page.press('.finder input[name="find"]', 'Enter');
    const found = await page.evaluate(() => {
      const cy = window.botnestGraph;
      const matches = cy.nodes('[kind = "host"]').filter((n) => n.data('address').startsWith('10.100.1.2'));
      return {
        text: document.querySelector('.finder [role="status"]').textContent,
        matches: matches.length,
        matchesFaded: matches.filter((n) => n.hasClass('faded')).length,
        faded: cy.nodes('.faded').length,
      };
    });
    assert.ok(found.matches >= 1);
    assert.equal(found.text, `${found.matches} host${found.matches === 1 ? '' : 's'} found`);
    assert.equal(found.matchesFaded, 0);
    assert.ok(found.faded > hosts / 2, `${found.faded} nodes faded`);
    await screenshot(page, '09-large-graph-find');
  });
});

describe('web UI behind a token', { skip: Boolean(skip) }, () => {
  let dir;
  let botnest;
  let browser;
  const TOKEN = 'correct-horse-battery-staple';

  before(async () => {
    dir = tempDir('botnest-ui-token-');
    const blocklist = path.join(dir, 'blocklist.txt');
    fs.writeFileSync(blocklist, '');
    botnest = await startBotnest({ dir, config: config(blocklist), extraArgs: ['--token', TOKEN] });
    browser = await launchBrowser();
  });

  after(async () => {
    if (browser) await browser.close();
    if (botnest) await botnest.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('asks for the token, refuses a wrong one, then sends it as a bearer token', async () => {
    const { page } = browser;
    const apiRequests = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname.startsWith('/api/')) apiRequests.push(r.headers().authorization ?? null);
    });
    await page.goto(`${botnest.base}/`);
    await page.waitForSelector('#login[open]');
    await page.fill('#login input[name="token"]', 'wrong');
    await page.click('#login button[type="submit"]');
    await page.waitForSelector('#login-error:not([hidden])');
    await screenshot(page, '10-login');

    await page.fill('#login input[name="token"]', TOKEN);
    await page.click('#login button[type="submit"]');
    await page.waitForSelector('.page[data-page="overview"][data-loaded="true"] #status');
    await page.waitForSelector('#live[data-state="live"]');
    assert.equal(await page.evaluate(() => document.getElementById('login').open), false);
    const stored = await page.evaluate(() => [sessionStorage.getItem('botnest.token'), localStorage.length]);
    assert.deepEqual(stored, [TOKEN, 0], 'kept for the tab only');
    assert.ok(apiRequests.includes(`Bearer ${TOKEN}`), 'requests carry the token');
    assert.deepEqual(browser.events.pageErrors, []);
  });
});
