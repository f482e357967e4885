// The API's access tokens from a real OpenID provider: the npm package oidc-provider (a
// certified implementation) on a free loopback port issues JWT access tokens to the
// CRM's client (client credentials, resource indicators), and `custos serve` (binary
// from $CUSTOS_BIN, default target/debug/custos), configured with its `[idp]`, takes
// them. Then what must not pass: a token of another audience, a forged signature, an
// expired token, a key the provider rotated away, a principal suspended in Custos.

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
import { freePort, signingKey } from './support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const BIN = path.resolve(root, process.env.CUSTOS_BIN || 'target/debug/custos');

const API = 'https://custos.example.com/api';
const OTHER = 'https://other.example.com/api';
const CRM_SECRET = crypto.randomBytes(24).toString('hex');

let idpPort;
let issuer;
let idpServer;
let custos;
let base;
let admin;
let dataDir;



/** Starts the provider on `idpPort` with `key`; access tokens are JWTs for the resource asked. */
async function startProvider(key) {
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'crm',
        client_secret: CRM_SECRET,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: [key] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => API,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => ({
          scope: 'api',
          audience: resource === OTHER ? 'other-api' : 'custos-api',
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
    ttl: { ClientCredentials: (ctx) => (ctx.oidc.params.scope === 'api short' ? 2 : 600) },
  });
  provider.proxy = false;
  idpServer = http.createServer(provider.callback());
  idpServer.listen(idpPort, '127.0.0.1');
  await once(idpServer, 'listening');
}

async function stopProvider() {
  idpServer.closeAllConnections();
  await new Promise((resolve) => idpServer.close(resolve));
}

/** An access token for the CRM's client from the provider. */
async function accessToken({ resource = API, scope = 'api' } = {}) {
  const ask = () => fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`crm:${CRM_SECRET}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }),
  });
  // A connection kept alive to a provider since restarted fails once: ask again.
  const r = await ask().catch(ask);
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  assert.equal(body.access_token.split('.').length, 3, 'a JWT access token');
  return body.access_token;
}

async function call(token, pathname, init = {}) {
  const r = await fetch(`${base}${pathname}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers || {}) },
  });
  const text = await r.text();
  let body = null;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, body, text };
}

function code(r) {
  return [r.status, r.body?.error?.code];
}

before(async () => {
  idpPort = await freePort();
  issuer = `http://127.0.0.1:${idpPort}`;
  await startProvider(signingKey());
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'custos-idp-'));
  const config = path.join(dataDir, 'custos.toml');
  fs.writeFileSync(config, [
    '[idp]',
    `jwks_url = "${issuer}/jwks"`,
    `issuer = "${issuer}"`,
    'audience = "custos-api"',
    'staff_claim = "sub"',
    'clock_skew_seconds = 0',
    'key_refetch_seconds = 1',
    '',
  ].join('\n'));
  custos = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', path.join(dataDir, 'data'), '--config', config], {
    stdio: ['ignore', 'pipe', 'ignore'],
    // CUSTOS_* would be read as configuration (CUSTOS_BIN, say): none of it is meant so.
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CUSTOS_'))),
  });
  const lines = readline.createInterface({ input: custos.stdout });
  const [first] = await once(lines, 'line');
  base = first.match(/listening on (\S+)/)[1];
  admin = fs.readFileSync(path.join(dataDir, 'data', 'admin.token'), 'utf8').trim();
  const made = await call(admin, '/v1/staff', {
    method: 'POST',
    body: JSON.stringify({ id: 'crm', name: 'The CRM', role: 'integration', org: 'custos' }),
  });
  assert.equal(made.status, 201, made.text);
});

after(async () => {
  custos?.kill('SIGTERM');
  if (custos) await once(custos, 'exit');
  if (idpServer?.listening) await stopProvider();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('the provider\'s access token speaks for the CRM; tokens that must not pass are refused', async () => {
  const token = await accessToken();
  const me = await call(token, '/v1/me');
  assert.equal(me.status, 200, me.text);
  assert.equal(me.body.id, 'crm');

  assert.deepEqual(code(await call(await accessToken({ resource: OTHER }), '/v1/me')), [401, 'token_wrong_audience']);
  const [header, claims, signature] = token.split('.');
  const other = (await accessToken()).split('.')[2];
  assert.notEqual(other, signature);
  assert.deepEqual(code(await call(`${header}.${claims}.${other}`, '/v1/me')), [401, 'token_bad_signature']);
  const forgedClaims = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(claims, 'base64url')), sub: 'admin' })).toString('base64url');
  assert.deepEqual(code(await call(`${header}.${forgedClaims}.${signature}`, '/v1/me')), [401, 'token_bad_signature']);

  const short = await accessToken({ scope: 'api short' });
  assert.equal((await call(short, '/v1/me')).status, 200);
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  assert.deepEqual(code(await call(short, '/v1/me')), [401, 'token_expired']);
});

test('a key rotation at the provider is followed; the old key\'s tokens stop passing', async () => {
  const old = await accessToken();
  assert.equal((await call(old, '/v1/me')).status, 200);
  await stopProvider();
  await startProvider(signingKey());
  const fresh = await accessToken();
  assert.notEqual(JSON.parse(Buffer.from(fresh.split('.')[0], 'base64url')).kid,
    JSON.parse(Buffer.from(old.split('.')[0], 'base64url')).kid);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await call(fresh, '/v1/me');
    if (r.status === 200) break;
    assert.deepEqual(code(r), [401, 'token_unknown_key'], r.text);
    assert.ok(Date.now() < deadline, 'the rotated key was not taken');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.deepEqual(code(await call(old, '/v1/me')), [401, 'token_unknown_key']);
});

test('a principal suspended in Custos gets nothing with a valid provider token', async () => {
  const suspended = await call(admin, '/v1/staff/crm/suspend', { method: 'POST' });
  assert.equal(suspended.status, 200, suspended.text);
  const r = await call(await accessToken(), '/v1/me');
  assert.equal(r.status, 403, r.text);
  assert.equal(r.body.error.policy, 'suspended');
});
