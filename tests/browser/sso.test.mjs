// Single sign-on to the console with a real OpenID provider: the npm package
// oidc-provider (a certified implementation) on a free loopback port, its development
// interactions (a login form taking any account id, then consent), and `custos serve`
// (binary from $CUSTOS_BIN, default target/debug/custos) configured with `[idp]` and
// `[idp.console]`, driven in Debian's headless Chromium through playwright-core.
//
// A provisioned support agent and a security analyst sign in and land on their pages;
// the agent's session ends at the next request once she is suspended. Then what must
// not open a session: a person the provider knows but Custos does not, a suspended
// person, a callback replayed (with and without the sign-in's cookie), a forged state,
// and the provider's own refusal.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import Provider from 'oidc-provider';
import { chromium } from 'playwright-core';
import { freePort, signingKey } from './support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const BIN = path.resolve(root, process.env.CUSTOS_BIN || 'target/debug/custos');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.resolve(process.env.ARTIFACTS_DIR || path.join(here, 'artifacts'));
const CLIENT_SECRET = crypto.randomBytes(24).toString('hex');
const PROVIDER = 'Example Login';

let issuer;
let idpServer;
let custos;
let custosLog = '';
let base;
let admin;
let dataDir;
let browser;


/** The provider: one confidential client, the console's, for the code flow with PKCE. */
async function startProvider(port, redirect) {
  const key = signingKey();
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'custos-console',
      client_secret: CLIENT_SECRET,
      redirect_uris: [redirect],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    }],
    jwks: { keys: [key] },
    cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => true },
  });
  provider.proxy = false;
  idpServer = http.createServer(provider.callback());
  idpServer.listen(port, '127.0.0.1');
  await once(idpServer, 'listening');
}

async function api(pathname, init = {}) {
  const r = await fetch(`${base}${pathname}`, {
    ...init,
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
  });
  return { status: r.status, text: await r.text() };
}

async function provision(id, role) {
  const made = await api('/v1/staff', {
    method: 'POST',
    body: JSON.stringify({ id, name: id, role, org: 'custos' }),
  });
  assert.equal(made.status, 201, made.text);
}

async function suspend(id) {
  const r = await api(`/v1/staff/${id}/suspend`, { method: 'POST' });
  assert.equal(r.status, 200, r.text);
}

/** A fresh browser (its own cookies, at Custos and at the provider). */
async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  // The provider's development pages ask for a web font: nothing leaves this machine.
  await context.route(/^https:\/\//, (route) => route.abort());
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.setDefaultNavigationTimeout(30_000);
  return page;
}

async function text(page, selector) {
  return (await page.locator(selector).first().innerText()).trim();
}

/**
 * Signs in as `account` at the provider from the console's sign-in page and returns the
 * response of the page the browser ends on, the callback's address, and the sign-in's
 * cookie as it was before the callback.
 */
async function signInWithProvider(page, account) {
  await page.goto(`${base}/signin`);
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(`${issuer}/interaction/`)),
    page.getByRole('link', { name: `Sign in with ${PROVIDER}` }).click(),
  ]);
  const flowCookie = (await page.context().cookies(`${base}/signin/oidc/callback`))
    .find((c) => c.name === 'custos_oidc');
  assert.ok(flowCookie, 'the sign-in keeps its secret in a cookie');
  assert.equal(flowCookie.httpOnly, true);
  assert.equal(flowCookie.sameSite, 'Lax');
  assert.equal(flowCookie.path, '/signin/oidc');
  await page.locator('input[name=login]').fill(account);
  await page.locator('input[name=password]').fill('any password');
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(`${issuer}/interaction/`) && !u.href.endsWith('/login')),
    page.getByRole('button', { name: 'Sign-in' }).click(),
  ]);
  let callback;
  const seen = (request) => {
    if (request.isNavigationRequest() && request.url().startsWith(`${base}/signin/oidc/callback`)) {
      callback = request.url();
    }
  };
  page.on('request', seen);
  const [response] = await Promise.all([
    page.waitForNavigation({ url: (u) => u.href.startsWith(base), waitUntil: 'load' }),
    page.getByRole('button', { name: 'Continue' }).click(),
  ]);
  await page.waitForLoadState('load');
  page.off('request', seen);
  assert.ok(callback, 'the provider sent the browser back to the callback');
  return { response, callback, flowCookie };
}

before(async () => {
  assert.ok(fs.existsSync(BIN), `no custos binary at ${BIN} (build it, or set CUSTOS_BIN)`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const idpPort = await freePort();
  const custosPort = await freePort();
  issuer = `http://127.0.0.1:${idpPort}`;
  base = `http://127.0.0.1:${custosPort}`;
  await startProvider(idpPort, `${base}/signin/oidc/callback`);
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'custos-sso-'));
  const config = path.join(dataDir, 'custos.toml');
  fs.writeFileSync(config, [
    '[idp]',
    `jwks_url = "${issuer}/jwks"`,
    `issuer = "${issuer}"`,
    'audience = "custos-api"',
    'staff_claim = "sub"',
    'clock_skew_seconds = 5',
    '',
    '[idp.console]',
    'client_id = "custos-console"',
    'client_secret_env = "CONSOLE_OIDC_SECRET"',
    `redirect_url = "${base}/signin/oidc/callback"`,
    `provider_name = "${PROVIDER}"`,
    '',
  ].join('\n'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CUSTOS_')));
  custos = spawn(BIN, ['serve', '--listen', `127.0.0.1:${custosPort}`, '--data-dir', path.join(dataDir, 'data'), '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...env, CONSOLE_OIDC_SECRET: CLIENT_SECRET, RUST_LOG: 'info', NO_COLOR: '1' },
  });
  custos.stderr.on('data', (d) => { custosLog += d; });
  const lines = readline.createInterface({ input: custos.stdout });
  const exited = once(custos, 'exit').then(([code]) => { throw new Error(`custos serve exited (${code}):\n${custosLog.slice(-4000)}`); });
  await Promise.race([once(lines, 'line'), exited]);
  admin = fs.readFileSync(path.join(dataDir, 'data', 'admin.token'), 'utf8').trim();
  await provision('alice', 'support');
  await provision('ana', 'security_analyst');
  await provision('sam', 'support');
  await suspend('sam');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, { timeout: 120_000 });

after(async () => {
  await browser?.close();
  custos?.kill('SIGTERM');
  if (custos && custos.exitCode === null) await once(custos, 'exit');
  if (idpServer?.listening) {
    idpServer.closeAllConnections();
    await new Promise((resolve) => idpServer.close(resolve));
  }
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

test('a provisioned agent signs in with the provider; her session ends when she is suspended', { timeout: 120_000 }, async () => {
  const page = await newPage();
  const { response, callback, flowCookie } = await signInWithProvider(page, 'alice');
  assert.equal(response.status(), 200, await page.content());
  assert.equal(new URL(page.url()).pathname, '/cases', 'an agent starts at her cases');
  assert.equal(await text(page, 'h1'), 'My open cases');
  assert.match(await text(page, 'header.top'), /alice/);
  await page.screenshot({ path: path.join(ARTIFACTS, 'sso-agent.png') });
  const cookies = await page.context().cookies(base);
  const session = cookies.find((c) => c.name === 'custos_session');
  assert.ok(session, 'a console session');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.ok(!(await page.context().cookies(callback)).some((c) => c.name === 'custos_oidc'),
    'the sign-in cookie is cleared');

  // The sign-in is in the ledger, as a token's is: a GET /v1/me by alice.
  const records = await api('/v1/access?staff=alice');
  assert.equal(records.status, 200, records.text);
  assert.match(records.text, /"action":"me"/);

  // The callback again, in the same browser: its cookie is gone, nothing opens.
  const again = await newPage();
  let r = await again.goto(callback);
  assert.equal(r.status(), 400);
  assert.match(await text(again, '[role=alert]'), /not started in this browser/);
  // ... and with the sign-in's cookie put back: its code was exchanged already.
  await again.context().addCookies([{ ...flowCookie }]);
  r = await again.goto(callback);
  assert.equal(r.status(), 401);
  assert.match(await text(again, '[role=alert]'), /did not confirm the sign-in \(invalid_grant\)/);
  assert.ok(!(await again.context().cookies(base)).some((c) => c.name === 'custos_session'));

  // Suspended in Custos: the very next page is refused, by policy.
  await suspend('alice');
  r = await page.goto(`${base}/cases`);
  assert.equal(r.status(), 403);
  assert.match(await text(page, 'main'), /suspended/i);
});

test('a security analyst signs in with the provider and sees the alert queue', { timeout: 120_000 }, async () => {
  const page = await newPage();
  const { response } = await signInWithProvider(page, 'ana');
  assert.equal(response.status(), 200);
  assert.equal(new URL(page.url()).pathname, '/alerts');
  assert.equal(await text(page, 'h1'), 'Alerts');
  await page.screenshot({ path: path.join(ARTIFACTS, 'sso-analyst.png') });
});

test('someone the provider knows but Custos does not gets no session', { timeout: 120_000 }, async () => {
  const page = await newPage();
  const { response } = await signInWithProvider(page, 'mallory');
  assert.equal(response.status(), 401);
  assert.equal(new URL(page.url()).pathname, '/signin/oidc/callback');
  assert.match(await text(page, '[role=alert]'), /no staff entry for you/);
  assert.ok(!(await page.context().cookies(base)).some((c) => c.name === 'custos_session'));
});

test('a suspended person gets no session', { timeout: 120_000 }, async () => {
  const page = await newPage();
  const { response } = await signInWithProvider(page, 'sam');
  assert.equal(response.status(), 403);
  assert.match(await text(page, '[role=alert]'), /suspended/);
  assert.ok(!(await page.context().cookies(base)).some((c) => c.name === 'custos_session'));
  // The refused sign-in is in the ledger: sam's one request, denied by policy.
  const records = await api('/v1/access?staff=sam');
  assert.equal(records.status, 200, records.text);
  const mine = JSON.parse(records.text).records.filter((r) => r.staff_id === 'sam');
  assert.deepEqual(mine.map((r) => [r.action, r.decision, r.reason_code]), [['me', 'deny', 'forbidden']]);
});

test('a forged state, or the provider\'s refusal, opens nothing', { timeout: 120_000 }, async () => {
  const page = await newPage();
  await page.goto(`${base}/signin`);
  await page.screenshot({ path: path.join(ARTIFACTS, 'sso-signin.png') });
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(`${issuer}/interaction/`)),
    page.getByRole('link', { name: `Sign in with ${PROVIDER}` }).click(),
  ]);
  // A made-up state with this browser's sign-in cookie.
  let r = await page.goto(`${base}/signin/oidc/callback?code=made-up&state=forged`);
  assert.equal(r.status(), 400);
  assert.match(await text(page, '[role=alert]'), /does not belong to the sign-in/);
  // The cookie was cleared with that answer: start again, and the provider refuses.
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(`${issuer}/interaction/`)),
    (async () => { await page.goto(`${base}/signin`); await page.getByRole('link', { name: `Sign in with ${PROVIDER}` }).click(); })(),
  ]);
  // The person cancels at the provider: it sends back access_denied.
  const [resp] = await Promise.all([
    page.waitForNavigation({ url: (u) => u.href.startsWith(base) }),
    page.getByRole('link', { name: 'Cancel' }).click(),
  ]);
  assert.equal(resp.status(), 401);
  assert.match(await text(page, '[role=alert]'), /did not sign you in \(access_denied\)/);
  assert.ok(!(await page.context().cookies(base)).some((c) => c.name === 'custos_session'));
  // Nothing personal in the server's log.
  assert.doesNotMatch(custosLog, /mallory/);
});
