// Browser tests of the Custos web console, in Debian's headless Chromium driven by
// playwright-core. Starts `custos demo` (binary from $CUSTOS_BIN, default
// target/debug/custos) on a free loopback port with a small vault in a temporary data
// directory, then works the console as the demo's security analyst, support agent and a
// customer would. The tests run in order and share the demo: later ones look for what
// earlier ones did (the reveal in the customer's access list, the revealed phone numbers
// in the leaked file).
//
// Screenshots of the main pages go to $ARTIFACTS_DIR (default tests/browser/artifacts/);
// with UPDATE_DOCS_SCREENSHOTS=1 the laptop-width ones are also written to docs/console/
// (made smaller by pngquant where it is installed).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { freePort } from './support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const BIN = path.resolve(root, process.env.CUSTOS_BIN || 'target/debug/custos');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.resolve(process.env.ARTIFACTS_DIR || path.join(here, 'artifacts'));
const DOCS = process.env.UPDATE_DOCS_SCREENSHOTS === '1' ? path.join(root, 'docs', 'console') : null;
const CUSTOMERS = process.env.BROWSER_TEST_CUSTOMERS || '2000';
const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
/** Longest a screenshot may be (pages with long tables are cut there). */
const MAX_SHOT_HEIGHT = 2000;

/** What `custos demo` printed: base URL, tokens by staff id, the customer link, ... */
let demo;
let server;
let serverLog = '';
let dataDir;
let browser;
/** Every page (document) response of every context, for the header checks. */
const documents = [];
/** Every URL a browser asked for, for the check that no personal data travels in one. */
const requested = [];
/** Values revealed during the test: case id → phone number. */
const revealed = new Map();
/** The analyst's and the agent's pages, shared by the tests in order. */
let analyst;
let agent;

// ---------------------------------------------------------------------------------
// The demo server


/** The demo's environment: ours without CUSTOS_* (the server reads every CUSTOS_
 * variable as configuration, and refuses unknown ones such as CUSTOS_BIN). */
function demoEnv() {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CUSTOS_')));
  return { ...env, NO_COLOR: '1', RUST_LOG: process.env.RUST_LOG || 'warn' };
}

/** Starts `custos demo` and resolves with what it printed once it is serving. */
async function startDemo() {
  assert.ok(fs.existsSync(BIN), `no custos binary at ${BIN} (build it, or set CUSTOS_BIN)`);
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'custos-browser-'));
  const port = await freePort();
  server = spawn(
    BIN,
    ['demo', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--customers', CUSTOMERS],
    { stdio: ['ignore', 'pipe', 'pipe'], env: demoEnv() },
  );
  server.stderr.on('data', (d) => { serverLog += d; });
  let out = '';
  const printed = new Promise((resolve, reject) => {
    server.stdout.on('data', (d) => {
      out += d;
      serverLog += d;
      // The verify line is the last one the demo prints before serving on.
      if (/custos ledger verify --url \S+ --key \S+\n/.test(out)) resolve(out);
    });
    server.on('exit', (code, signal) => reject(new Error(
      `custos demo exited (${code ?? signal}) before it printed its tokens:\n${serverLog.slice(-4000)}`)));
    setTimeout(() => reject(new Error(`custos demo printed no tokens within 180 s:\n${serverLog.slice(-4000)}`)), 180_000).unref();
  });
  return parseDemo(await printed);
}

function parseDemo(out) {
  const base = out.match(/^Custos demo running at (http:\/\/\S+)$/m)?.[1];
  assert.ok(base, `no address in:\n${out}`);
  const tokens = {};
  for (const m of out.matchAll(/^ {4}(?:security analyst|support agent|partner agent|admin|CRM integration)\s+(\S+)\s+(cst_\S+)$/gm)) {
    tokens[m[1]] = m[2];
  }
  const link = out.match(/^ {2}customer link:\s+(\S+) \(customer (cus_\w+),/m);
  assert.ok(link, `no customer link in:\n${out}`);
  const curl = out.match(/X-Custos-Case: (case_\w+)' \S+\/v1\/customers\/(cus_\w+)$/m);
  assert.ok(curl, `no example request in:\n${out}`);
  const key = out.match(/--key (\S+)$/m)?.[1];
  const tokensFile = JSON.parse(fs.readFileSync(path.join(dataDir, 'demo-tokens.json'), 'utf8'));
  for (const id of ['custos.security_analyst.001', 'custos.support.001', 'huaxin-bpo.support.001', 'admin', 'crm']) {
    assert.match(tokens[id] ?? '', /^cst_/, `no token for ${id} in:\n${out}`);
  }
  return {
    base,
    tokens,
    analystToken: tokens['custos.security_analyst.001'],
    agentToken: tokens['custos.support.001'],
    customerLink: new URL(link[1]).pathname + new URL(link[1]).search,
    customer: link[2],
    linkCase: curl[1],
    verifierKey: key,
    staff: tokensFile.staff,
  };
}

async function stopDemo() {
  if (server && server.exitCode === null && server.signalCode === null) {
    server.kill('SIGTERM');
    const exited = once(server, 'exit');
    const timeout = new Promise((r) => setTimeout(r, 10_000).unref());
    if ((await Promise.race([exited.then(() => 'exited'), timeout])) !== 'exited') {
      server.kill('SIGKILL');
      await exited;
    }
  }
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  fs.writeFileSync(path.join(ARTIFACTS, 'custos-demo.log'), serverLog);
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------
// The browser

async function newPage(viewport = LAPTOP) {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  context.on('request', (r) => requested.push(r.url()));
  context.on('response', (r) => {
    if (r.request().resourceType() === 'document') {
      documents.push({ url: r.url(), status: r.status(), headers: r.headers() });
    }
  });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.setDefaultNavigationTimeout(30_000);
  return page;
}

const url = (p) => new URL(p, demo.base).href;

/** Runs `action` (a click that submits a form or follows a link) and waits for the page
 * it leads to, after any redirects; returns that page's response. */
async function navigate(page, action) {
  const [response] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), action()]);
  return response;
}

async function goto(page, p) {
  const response = await page.goto(url(p));
  assert.ok(response, `no response for ${p}`);
  return response;
}

async function text(page, selector) {
  return (await page.locator(selector).innerText()).trim();
}

async function signIn(page, token) {
  await goto(page, '/signin');
  await page.locator('#token').fill(token);
  const response = await navigate(page, () => page.getByRole('button', { name: 'Sign in' }).click());
  assert.equal(response.status(), 200, `sign-in answered ${response.status()}`);
  assert.doesNotMatch(new URL(page.url()).pathname, /^\/signin/, 'still on the sign-in page');
}

/** A screenshot into the artifacts (and, for laptop-width pages with
 * UPDATE_DOCS_SCREENSHOTS=1, into docs/console/). */
async function shot(page, name, { docs = true } = {}) {
  const size = page.viewportSize();
  const height = Math.min(
    MAX_SHOT_HEIGHT,
    await page.evaluate(() => document.documentElement.scrollHeight),
  );
  const clip = { x: 0, y: 0, width: size.width, height: Math.max(height, size.height) };
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true, clip });
  if (DOCS && docs && size.width === LAPTOP.width) {
    fs.mkdirSync(DOCS, { recursive: true });
    const doc = path.join(DOCS, `${name}.png`);
    fs.copyFileSync(file, doc);
    // Smaller files for the repository, where pngquant is installed.
    if (fs.existsSync('/usr/bin/pngquant')) {
      const q = spawnSync('/usr/bin/pngquant', ['--force', '--skip-if-larger', '--strip', '--output', doc, '--', doc]);
      // 98 and 99: the quantized image would be larger or too poor; the copy stays.
      assert.ok([0, 98, 99].includes(q.status), `pngquant ${doc}: ${q.status} ${q.stderr}`);
    }
  }
}

/** What is left of the "Field reveals this hour" quota, as the page shows it. */
async function revealsLeft(page) {
  const row = page.locator('#quotas tr', { hasText: 'Field reveals this hour' });
  return Number(await row.locator('strong').innerText());
}

/** A new customer access link for the demo's customer, issued by the CRM through the
 * API (a link opens the customer's page once); its path and query. */
async function newCustomerLink() {
  const response = await fetch(url(`/v1/customers/${demo.customer}/link`), {
    method: 'POST',
    headers: { authorization: `Bearer ${demo.tokens.crm}`, 'content-type': 'application/json' },
    body: '{}',
  });
  assert.equal(response.status, 201);
  return (await response.json()).path;
}

/** Whether the document is wider than the window (horizontal scrolling of the page),
 * and the ids on the page that are broken over lines (at a hyphen, say). */
async function overflow(page) {
  return page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    wide: [...document.querySelectorAll('main *')]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5
        && !e.closest('.scroll') && !e.closest('pre') && !e.closest('details:not([open])'))
      .slice(0, 5)
      .map((e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}${e.className ? '.' + e.className : ''}`),
    broken: [...document.querySelectorAll('main .id, main a[href^="/staff/"], main a[href^="/orgs/"], main a[href^="/cases/case_"]')]
      .filter((e) => !e.closest('details:not([open])') && !e.parentElement.closest('.id'))
      .flatMap((e) => {
        const walker = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
        const broken = [];
        for (let t = walker.nextNode(); t; t = walker.nextNode()) {
          if (!t.textContent.trim()) continue;
          const range = document.createRange();
          range.selectNodeContents(t);
          const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
          if (lines.size > 1) broken.push(t.textContent.trim());
        }
        return broken;
      })
      .slice(0, 5),
  }));
}

/** The ledger indexes the alert page at its current address lists, following its
 * "next" links to the last page. */
async function citedOnPages(page) {
  const indexes = [];
  for (;;) {
    indexes.push(...await page.locator('a[href^="/ledger/entry?index="]').evaluateAll((as) =>
      as.map((a) => Number(new URL(a.href).searchParams.get('index')))));
    const next = page.locator('a[rel=next]');
    if (await next.count() === 0) return indexes;
    await navigate(page, () => next.click());
  }
}

/** `GET path` of the API as `token`; the JSON answer. */
async function api(token, p) {
  const response = await fetch(url(p), { headers: { authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200, `${p}: ${response.status}`);
  return response.json();
}

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  demo = await startDemo();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, { timeout: 240_000 });

after(async () => {
  await browser?.close();
  await stopDemo();
});

// ---------------------------------------------------------------------------------
// The tests, in order

test('(a) analyst: alert queue, an alert, suspending and resuming its person', { timeout: 120_000 }, async () => {
  analyst = await newPage();
  await goto(analyst, '/signin');
  await shot(analyst, 'signin');
  await signIn(analyst, demo.analystToken);
  assert.equal(new URL(analyst.url()).pathname, '/alerts', 'an analyst starts at the alert queue');
  assert.match(await text(analyst, 'nav[aria-label=Main] .who'), /custos\.security_analyst\.001 · security_analyst/);

  // The demo's working day raised a canary hit (the person suspended by the detector), a
  // lowered quota and a step-up.
  const rows = analyst.locator('#alerts tbody tr');
  await rows.first().waitFor();
  const queue = await rows.evaluateAll((trs) => trs.map((tr) => {
    const td = [...tr.querySelectorAll('td')].map((c) => c.innerText.trim());
    return { severity: td[0], person: td[1], org: td[2], why: td[3], done: td[5], status: td[6],
      href: tr.querySelector('td:nth-child(4) a').getAttribute('href') };
  }));
  assert.ok(queue.length >= 3, `expected the demo's 3 alerts, got ${JSON.stringify(queue)}`);
  assert.ok(queue.every((a) => a.status === 'open'));
  const done = queue.map((a) => a.done);
  for (const d of ['suspended', 'quotas lowered', 'step-up required']) {
    assert.ok(done.includes(d), `no alert whose detector action is "${d}": ${done}`);
  }
  await shot(analyst, 'alerts');

  // An alert about a person the detector left active: the lowered quota. The queue says
  // what drove it in plain words, not only its score.
  const target = queue.find((a) => a.done === 'quotas lowered');
  assert.doesNotMatch(target.why, /risk score/, `the score line is for the alert page: ${target.why}`);
  assert.match(target.why, /customers .*today; peers' median/, `the drivers: ${target.why}`);
  await navigate(analyst, () => analyst.locator(`#alerts a[href="${target.href}"]`).click());
  assert.equal(new URL(analyst.url()).pathname, target.href);
  assert.match(await text(analyst, 'h1'), /^Alert: risk lower quota$/);
  assert.equal(await text(analyst, '#alert-status'), 'open');
  assert.match(await text(analyst, '#score'), /^risk score [\d.]+ reached the lower_quota threshold/);
  await shot(analyst, 'alert');
  // Every entry the alert cites is listed (a page at a time), oldest first.
  const cited = (await api(demo.analystToken, `/v1${target.href}`)).entries;
  assert.ok(cited.length > 1, `a risk alert cites the person's day: ${cited}`);
  assert.deepEqual(await citedOnPages(analyst), cited);
  await goto(analyst, target.href);

  // The org page.
  await navigate(analyst, () => analyst.locator('dl.fields a[href^="/orgs/"]').click());
  assert.equal(new URL(analyst.url()).pathname, `/orgs/${target.org}`);
  assert.ok(await analyst.locator('svg.chart').isVisible(), 'the org page draws its chart');
  assert.ok((await analyst.locator(`a[href="/staff/${target.person}"]`).count()) > 0,
    'the person behind the alert is among the org\'s active people');
  await shot(analyst, 'org');
  await analyst.goBack();

  // The person's page, with the chart; suspend, then resume. The demo's harvester may be
  // suspended already: their reveals on cases no contact vouches for are refused, and the
  // refusals count against them. An analyst resumes them first, to see the buttons work.
  await navigate(analyst, () => analyst.locator('dl.fields a[href^="/staff/"]').click());
  assert.equal(new URL(analyst.url()).pathname, `/staff/${target.person}`);
  if (await text(analyst, '#person-status') === 'suspended') {
    await navigate(analyst, () => analyst.getByRole('button', { name: 'Resume' }).click());
  }
  assert.equal(await text(analyst, '#person-status'), 'active');
  assert.ok(await analyst.locator('svg.chart').isVisible(), 'the person page draws the activity chart');
  assert.ok((await analyst.locator(`a[href="${target.href}"]`).count()) > 0, 'the person page lists the alert');
  await shot(analyst, 'person');

  let response = await navigate(analyst, () => analyst.getByRole('button', { name: 'Suspend' }).click());
  assert.equal(response.status(), 200);
  assert.equal(new URL(analyst.url()).pathname, `/staff/${target.person}`, 'back on the person page');
  assert.equal(await text(analyst, '#person-status'), 'suspended');
  assert.ok(await analyst.getByRole('button', { name: 'Resume' }).isVisible());
  await shot(analyst, 'person-suspended', { docs: false });

  response = await navigate(analyst, () => analyst.getByRole('button', { name: 'Resume' }).click());
  assert.equal(response.status(), 200);
  assert.equal(await text(analyst, '#person-status'), 'active');

  // Acknowledge the alert: it leaves the open queue.
  await goto(analyst, target.href);
  response = await navigate(analyst, () => analyst.getByRole('button', { name: 'Acknowledge' }).click());
  assert.equal(response.status(), 200);
  assert.equal(await text(analyst, '#alert-status'), 'acknowledged');
  await goto(analyst, '/alerts');
  assert.equal(await analyst.locator(`#alerts a[href="${target.href}"]`).count(), 0, 'acknowledged alert left the open queue');
  await goto(analyst, '/alerts?status=acknowledged');
  assert.equal(await analyst.locator(`#alerts a[href="${target.href}"]`).count(), 1);
});

test('(b) support agent: a case, a reveal with a reason, the quota drops by one', { timeout: 120_000 }, async () => {
  agent = await newPage();
  await signIn(agent, demo.agentToken);
  assert.equal(new URL(agent.url()).pathname, '/cases', 'an agent starts at their cases');
  const me = demo.staff.find((s) => s.id === 'custos.support.001');
  const caseLinks = await agent.locator('a[href^="/cases/case_"]').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  assert.deepEqual(new Set(caseLinks), new Set(me.cases.map(([c]) => `/cases/${c}`)), 'the page lists exactly my open cases');
  assert.ok(caseLinks.includes(`/cases/${demo.linkCase}`), 'the customer link\'s case is mine');
  // Each case says why it was opened (as the API does).
  const reasons = await agent.locator('#cases tbody tr').evaluateAll((trs) =>
    trs.map((tr) => [tr.querySelector('a').getAttribute('href').slice('/cases/'.length), tr.querySelector('td[data-label=Reason]').innerText.trim()]));
  const mine = (await api(demo.agentToken, '/v1/me')).open_cases;
  assert.deepEqual(reasons, mine.map((c) => [c.id, c.reason]));
  assert.ok(reasons.every(([, r]) => r.length > 0), `a reason per case: ${JSON.stringify(reasons)}`);
  await shot(agent, 'cases');

  // Reveal the phone number of each case's customer (the one with the customer link
  // first); the leak trace later uses them.
  const ordered = [demo.linkCase, ...me.cases.map(([c]) => c).filter((c) => c !== demo.linkCase)];
  for (const [i, caseId] of ordered.entries()) {
    await goto(agent, '/cases');
    await navigate(agent, () => agent.locator(`a[href="/cases/${caseId}"]`).click());
    assert.equal(new URL(agent.url()).pathname, `/cases/${caseId}`);
    assert.equal(await text(agent, 'h1'), 'Customer card');
    const masked = await text(agent, 'section.card dl.fields');
    assert.match(masked, /\*/, 'the card is masked');
    const before = await revealsLeft(agent);
    assert.ok(before > 0, 'reveals left before');
    if (i === 0) await shot(agent, 'card');

    await agent.locator('#field').selectOption('phone');
    await agent.locator('#reason').fill('Customer called back about a delivery; confirming the number.');
    const response = await navigate(agent, () => agent.getByRole('button', { name: 'Reveal' }).click());
    assert.equal(response.status(), 200);
    assert.equal(new URL(agent.url()).pathname, `/cases/${caseId}/reveal`);
    assert.equal(await text(agent, 'h1'), 'Revealed');
    const value = await text(agent, '#revealed-value');
    assert.doesNotMatch(value, /\*/, `revealed in full, not masked: ${value}`);
    assert.match(value.replace(/[\s+-]/g, ''), /^\d{8,15}$/, `a phone number: ${value}`);
    assert.ok(!masked.includes(value), 'the card showed it masked only');
    assert.equal(await revealsLeft(agent), before - 1, 'the reveal quota dropped by one');
    revealed.set(caseId, value);
    if (i === 0) await shot(agent, 'revealed');
  }
  assert.equal(new Set(revealed.values()).size, ordered.length, 'a different phone number per customer');

  // The card again: masked again, the quota as it was left.
  await goto(agent, `/cases/${demo.linkCase}`);
  assert.ok(!(await text(agent, 'main')).includes(revealed.get(demo.linkCase)), 'the card masks it again');
});

test('(c) denied: another agent\'s case and the analyst pages, with reason and help', { timeout: 60_000 }, async () => {
  const other = demo.staff.find((s) => s.id === 'custos.support.002');
  const [otherCase] = other.cases[0];
  let response = await goto(agent, `/cases/${otherCase}`);
  assert.equal(response.status(), 403);
  assert.equal(await text(agent, 'h1'), 'Access denied');
  const problem = agent.locator('section.problem[role=alert]');
  assert.match(await problem.innerText(), /not open and assigned to you/);
  assert.equal(await text(agent, 'section.problem code'), 'no_open_case');
  assert.ok(await problem.locator('a[href="/cases"]').isVisible(), 'help links to My cases');
  assert.match(await problem.innerText(), /ask for a case to be opened in the CRM/);
  assert.doesNotMatch(await text(agent, 'main'), /\d{11}|@/, 'no customer data on the denied page');
  await shot(agent, 'denied');

  // Revealing on it is refused the same way (with a valid CSRF token).
  const csrf = await agent.locator('nav input[name=csrf]').inputValue();
  response = await agent.request.post(url(`/cases/${otherCase}/reveal`), {
    form: { csrf, field: 'phone', reason: 'not mine' }, maxRedirects: 0,
  });
  assert.equal(response.status(), 403);
  assert.match(await response.text(), /no_open_case/);

  // An analyst page is not part of an agent's console.
  response = await goto(agent, '/alerts');
  assert.equal(response.status(), 403);
  assert.match(await text(agent, 'section.problem'), /not part of your role's console/);
  assert.equal(await text(agent, 'section.problem code'), 'console_forbidden');
});

test('(d) leak trace: an uploaded file, its suspects and the evidence bundle', { timeout: 120_000 }, async () => {
  assert.ok(revealed.size > 0, 'needs the phone numbers revealed in (b)');
  const phones = [...revealed.values()];
  const noise = [
    'Wang Fang,19900000017,Shanghai',
    'Li Na,not a number,Beijing',
    ',,',
    'Chen Jie,10000000000,Shenzhen',
    'Zhao Lei,nobody@example.invalid,Hangzhou',
  ];
  const csv = ['name,phone,city', ...phones.map((p, i) => `Leaked ${i},${p},Guangzhou`), ...noise].join('\n') + '\n';
  const file = path.join(ARTIFACTS, 'leak.csv');
  fs.writeFileSync(file, csv);

  // The form says what the reader decodes, and takes the window of the accesses: today
  // (UTC), when the reveals were made.
  await goto(analyst, '/trace');
  assert.match(await text(analyst, '#file-help'),
    /UTF-8 \(with or without a byte-order mark\), UTF-16 with a byte-order mark, or GB18030/);
  const today = new Date().toISOString().slice(0, 10);
  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
  await analyst.locator('#since').fill(today);
  await analyst.locator('#until').fill(tomorrow);
  // The reveals are a moment old; the trace waits for the checkpoint that covers them
  // (the ledger signs one about once a second) rather than refuse the evidence.
  await analyst.locator('#file').setInputFiles(file);
  const response = await navigate(analyst, () => analyst.getByRole('button', { name: 'Trace' }).click());
  assert.equal(response.status(), 200);
  assert.equal(await text(analyst, 'h1'), 'Leak trace: suspects');
  assert.equal(await text(analyst, '#window'), `from ${today} 00:00:00 UTC up to ${tomorrow} 00:00:00 UTC`);
  // Rows: records other than the header and blank lines (delimiters only).
  const records = phones.length + noise.filter((l) => /[^,\s]/.test(l)).length;
  assert.equal(Number(await text(analyst, '#rows')), records, 'rows read');
  assert.match(await text(analyst, '#matched'), new RegExp(`^${phones.length} \\(${phones.length} customers\\)$`));
  const suspects = await analyst.locator('#suspects tbody tr').evaluateAll((trs) =>
    trs.map((tr) => [...tr.querySelectorAll('td')].map((c) => c.innerText.trim())));
  const agentRow = suspects.find((r) => r[1] === 'custos.support.001');
  assert.ok(agentRow, `custos.support.001 among the suspects: ${JSON.stringify(suspects)}`);
  assert.equal(Number(agentRow[4]), phones.length, 'they had every leaked record');
  assert.equal(Number(agentRow[5]), phones.length, 'they revealed every leaked record');
  assert.equal(suspects[0][1], 'custos.support.001', `the one who revealed them all ranks first: ${JSON.stringify(suspects)}`);
  await shot(analyst, 'trace');

  // The evidence bundle downloads, and checks offline.
  const link = analyst.locator('a#evidence');
  assert.equal(await link.getAttribute('href'), '/trace/evidence.json');
  const [download] = await Promise.all([analyst.waitForEvent('download'), link.click()]);
  assert.equal(download.suggestedFilename(), 'evidence.json');
  const saved = path.join(ARTIFACTS, 'evidence.json');
  await download.saveAs(saved);
  const bundle = JSON.parse(fs.readFileSync(saved, 'utf8'));
  assert.equal(bundle.format, 'custos-evidence/v1');
  const subject = bundle.subjects.find((s) => s.subject === 'custos.support.001');
  assert.ok(subject && subject.entries.length > 0, 'the bundle cites the agent\'s entries');
  if (demo.verifierKey) {
    const out = execFileSync(BIN, ['ledger', 'check-evidence', saved, '--key', demo.verifierKey], { encoding: 'utf8' });
    assert.match(out, /^evidence verified: /m);
  }

  // The same download with a plain request of the session gives JSON, not a page.
  const direct = await analyst.request.get(url('/trace/evidence.json'));
  assert.equal(direct.status(), 200);
  assert.match(direct.headers()['content-type'], /^application\/json/);
  assert.match(direct.headers()['content-disposition'], /attachment/);
});

test('(e) ledger: verify now, an entry with its inclusion proof', { timeout: 120_000 }, async () => {
  await goto(analyst, '/ledger');
  await analyst.locator('#ledger-size').waitFor();
  const size = Number(await text(analyst, '#ledger-size'));
  assert.ok(size > 100, `the demo's ledger has entries: ${size}`);
  await shot(analyst, 'ledger');

  const response = await navigate(analyst, () => analyst.getByRole('button', { name: 'Verify now' }).click());
  assert.equal(response.status(), 200);
  assert.equal(new URL(analyst.url()).pathname, '/ledger/verify');
  const verification = analyst.locator('#verification');
  assert.match(await verification.innerText(), /Verified: the ledger is intact\./);
  const verified = Number(await verification.locator('dt:text-is("Entries") + dd').innerText());
  assert.ok(verified >= size, `verified ${verified} entries, at least the ${size} of the checkpoint`);
  await shot(analyst, 'ledger-verified');

  await goto(analyst, '/ledger');
  const index = size - 1;
  await analyst.locator('#index').fill(String(index));
  await navigate(analyst, () => analyst.getByRole('button', { name: 'Show the entry and its proof' }).click());
  assert.equal(new URL(analyst.url()).pathname + new URL(analyst.url()).search, `/ledger/entry?index=${index}`);
  assert.equal(await text(analyst, 'h1'), `Ledger entry ${index}`);
  assert.equal(await text(analyst, 'table tbody tr td:first-child'), String(index));
  const proof = await analyst.locator('#proof').textContent();
  assert.match(proof, /^c2sp\.org\/tlog-proof@v1\n/, `a tlog-proof: ${proof.slice(0, 80)}`);
  await shot(analyst, 'ledger-entry');
  if (demo.verifierKey) {
    const file = path.join(ARTIFACTS, 'entry.proof');
    fs.writeFileSync(file, proof.endsWith('\n') ? proof : proof + '\n');
    const out = execFileSync(BIN, ['ledger', 'check-proof', file, '--key', demo.verifierKey], { encoding: 'utf8' });
    assert.match(out, /^proof verified: entry /m);
  }
});

test('(f) customer: the access link in a fresh browser shows the accesses made today', { timeout: 60_000 }, async () => {
  assert.ok(revealed.has(demo.linkCase), 'needs the reveal from (b)');
  const customer = await newPage();
  const response = await goto(customer, demo.customerLink);
  assert.equal(response.status(), 200);
  assert.equal(new URL(customer.url()).pathname, '/customer', 'the link token leaves the address bar');
  assert.equal(new URL(customer.url()).search, '');
  assert.equal(await text(customer, 'h1'), 'Who accessed my data');
  const rows = await customer.locator('#accesses tbody tr').evaluateAll((trs) =>
    trs.map((tr) => [...tr.querySelectorAll('td')].map((c) => c.innerText.trim())));
  // When, Organisation, Role, Person, What, Why (case)
  const reveal = rows.find((r) => r[1] === 'custos' && r[2] === 'support' && r[4] === 'saw in full: phone');
  assert.ok(reveal, `the support agent's reveal is listed: ${JSON.stringify(rows)}`);
  assert.ok(rows.some((r) => r[3] === reveal[3] && r[4] === 'viewed your record (masked)'),
    'the same person\'s masked view is listed');
  // The case behind it: opened by the CRM, or by the customer's own call.
  assert.ok(rows.some((r) => r[4] === 'opened a case about you' || r[4].startsWith('you contacted us by')),
    'the case is listed');
  assert.notEqual(reveal[5], 'no case', 'the reveal names its case');
  const page = await text(customer, 'main');
  assert.ok(!page.includes('custos.support.001'), 'staff ids are pseudonymous for the customer');
  assert.ok(!page.includes(revealed.get(demo.linkCase)), 'their phone number is not on the page');
  await shot(customer, 'customer');

  // A customer is not staff.
  const denied = await goto(customer, '/cases');
  assert.equal(denied.status(), 403);
  // The link opens the page once: in another browser it opens nothing.
  const again = await newPage();
  const used = await goto(again, demo.customerLink);
  assert.equal(used.status(), 401);
  assert.equal(await text(again, 'section.problem code'), 'link_used');
  await again.context().close();
  // A tampered link opens nothing.
  const fresh = await newPage();
  const bad = await goto(fresh, demo.customerLink.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')));
  assert.equal(bad.status(), 401);
  assert.equal(await text(fresh, 'h1'), 'Access denied');
  await fresh.context().close();
  await customer.context().close();
});

test('(g) headers, cookies and CSRF', { timeout: 60_000 }, async () => {
  // Every page any browser got in these tests carried the strict policy.
  assert.ok(documents.length >= 30, `pages seen: ${documents.length}`);
  for (const d of documents) {
    const csp = d.headers['content-security-policy'] ?? '';
    assert.match(csp, /(^|;\s*)default-src 'none'(;|$)/, `CSP of ${d.status} ${d.url}: ${csp}`);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, d.url);
    assert.equal(d.headers['x-frame-options'], 'DENY', d.url);
    assert.equal(d.headers['cache-control'], 'no-store', d.url);
  }

  // The session cookie: HttpOnly, SameSite=Strict, and not readable by the page.
  const cookies = await analyst.context().cookies(demo.base);
  const session = cookies.find((c) => c.name === 'custos_session');
  assert.ok(session, `a session cookie: ${cookies.map((c) => c.name)}`);
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.equal(session.path, '/');
  assert.equal(await analyst.evaluate(() => document.cookie), '', 'no cookie visible to the page');

  // A form with a wrong CSRF token is refused, and does nothing.
  const person = 'custos.support.002';
  await goto(analyst, `/staff/${person}`);
  assert.equal(await text(analyst, '#person-status'), 'active');
  await analyst.locator('form[action$="/suspend"] input[name=csrf]').evaluate((el) => { el.value = 'forged-token'; });
  let response = await navigate(analyst, () => analyst.getByRole('button', { name: 'Suspend' }).click());
  assert.equal(response.status(), 403);
  assert.equal(await text(analyst, 'section.problem code'), 'csrf_failed');
  await goto(analyst, `/staff/${person}`);
  assert.equal(await text(analyst, '#person-status'), 'active', 'the forged form suspended no one');

  // The same for a reveal, and for a form without any token.
  await goto(agent, `/cases/${demo.linkCase}`);
  const left = await revealsLeft(agent);
  await agent.locator('form[action$="/reveal"] input[name=csrf]').evaluate((el) => { el.value = 'forged-token'; });
  await agent.locator('#reason').fill('forged');
  response = await navigate(agent, () => agent.getByRole('button', { name: 'Reveal' }).click());
  assert.equal(response.status(), 403);
  assert.equal(await text(agent, 'section.problem code'), 'csrf_failed');
  assert.equal(await agent.locator('#revealed-value').count(), 0);
  await goto(agent, `/cases/${demo.linkCase}`);
  assert.equal(await revealsLeft(agent), left, 'the forged reveal used no quota');
  response = await analyst.request.post(url('/ledger/verify'), { form: { csrf: '' }, maxRedirects: 0 });
  assert.equal(response.status(), 403);
  assert.match(await response.text(), /csrf_failed/);
  response = await analyst.request.post(url('/staff/custos.support.002/suspend'), {
    form: { back: '/alerts' }, maxRedirects: 0,
  });
  assert.ok([400, 403, 422].includes(response.status()), `a form without a token: ${response.status()}`);
  await goto(analyst, `/staff/${person}`);
  assert.equal(await text(analyst, '#person-status'), 'active', 'the token-less form suspended no one');

  // The sign-in form's own token: a sign-in posted from elsewhere is refused.
  const stranger = await newPage();
  response = await stranger.request.post(url('/signin'), {
    form: { token: demo.agentToken, signin: 'forged' }, maxRedirects: 0,
  });
  assert.equal(response.status(), 403);
  assert.equal((await stranger.context().cookies(demo.base)).find((c) => c.name === 'custos_session'), undefined);
  await stranger.context().close();

  // Signing out ends the session: the old cookie opens nothing.
  const before = (await analyst.context().cookies(demo.base)).find((c) => c.name === 'custos_session');
  await navigate(analyst, () => analyst.getByRole('button', { name: 'Sign out' }).click());
  assert.equal(new URL(analyst.url()).pathname, '/signin');
  assert.equal((await analyst.context().cookies(demo.base)).find((c) => c.name === 'custos_session'), undefined);
  const replay = await analyst.request.get(url('/alerts'), {
    headers: { cookie: `custos_session=${before.value}` }, maxRedirects: 0,
  });
  assert.equal(replay.status(), 303);
  assert.equal(replay.headers().location, '/signin');

  // No personal data or credential travelled in an address.
  for (const u of requested) {
    assert.ok(!u.includes('cst_'), `a token in ${u}`);
    for (const phone of revealed.values()) assert.ok(!decodeURIComponent(u).includes(phone), `a phone number in ${u}`);
  }
});

test('(h) phone width and keyboard-only sign-in', { timeout: 120_000 }, async () => {
  const phone = await newPage(PHONE);
  await goto(phone, '/signin');
  // Keyboard only: Tab to the token field, type, Enter.
  let focused = '';
  for (let i = 0; i < 6 && focused !== 'token'; i++) {
    await phone.keyboard.press('Tab');
    focused = await phone.evaluate(() => document.activeElement?.id ?? '');
  }
  assert.equal(focused, 'token', 'Tab reaches the token field');
  await phone.keyboard.type(demo.agentToken);
  await navigate(phone, () => phone.keyboard.press('Enter'));
  assert.equal(new URL(phone.url()).pathname, '/cases', 'Enter signs in');

  const problems = [];
  const check = async (name, page = phone) => {
    const o = await overflow(page);
    assert.equal(o.innerWidth, PHONE.width);
    if (o.scrollWidth > o.innerWidth) problems.push(`${name}: ${o.scrollWidth}px > ${o.innerWidth}px (${o.wide.join(', ')})`);
    if (o.broken.length > 0) problems.push(`${name}: ids broken over lines: ${o.broken.join(', ')}`);
    await shot(page, `phone-${name}`);
  };
  await check('cases');
  await goto(phone, `/cases/${demo.linkCase}`);
  assert.equal(await text(phone, 'h1'), 'Customer card');
  await check('card');
  await phone.locator('#field').selectOption('name');
  await phone.locator('#reason').fill('Customer asked how their name is spelled.');
  await navigate(phone, () => phone.getByRole('button', { name: 'Reveal' }).click());
  await phone.locator('#revealed-value').waitFor();
  await check('revealed');
  await goto(phone, '/cases/case_0000000000000000');
  await check('denied');

  await phone.context().clearCookies();
  await goto(phone, '/signin');
  await check('signin');
  await signIn(phone, demo.analystToken);
  await check('alerts');
  await goto(phone, '/alerts?status=all');
  await check('alerts-all');
  for (const alertHref of await phone.locator('#alerts tbody tr a[href^="/alerts/"]').evaluateAll((as) => as.map((a) => a.getAttribute('href')))) {
    await goto(phone, alertHref);
    await check(`alert-${alertHref.slice('/alerts/'.length)}`);
  }
  const person = await phone.locator('dl.fields a[href^="/staff/"]').getAttribute('href');
  await goto(phone, person);
  await check('person');
  await goto(phone, await phone.locator('main a[href^="/orgs/"]').first().getAttribute('href'));
  await check('org');
  await goto(phone, '/ledger');
  await check('ledger');
  await navigate(phone, () => phone.getByRole('button', { name: 'Verify now' }).click());
  await phone.locator('#verification').waitFor();
  await check('ledger-verified');
  await goto(phone, '/ledger/entry?index=1');
  await phone.locator('#proof').waitFor();
  await check('ledger-entry');
  await goto(phone, '/trace');
  await check('trace');
  await phone.locator('#file').setInputFiles(path.join(ARTIFACTS, 'leak.csv'));
  await navigate(phone, () => phone.getByRole('button', { name: 'Trace' }).click());
  await phone.locator('#suspects').waitFor();
  await check('trace-suspects');

  // The demo's link was used in (f) and opens the page once: the CRM issues a new one.
  const customer = await newPage(PHONE);
  await goto(customer, await newCustomerLink());
  await customer.locator('#accesses').waitFor();
  await check('customer', customer);
  await customer.context().close();
  await phone.context().close();

  assert.deepEqual(problems, [], 'pages wider than a 390px phone');
});
