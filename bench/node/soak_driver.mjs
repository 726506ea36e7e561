// The load generator of bench/soak.py: mixed traffic against one Bastion, at a fixed rate of
// operations (open loop) or as fast as CONCURRENCY loops go (closed loop, to measure capacity).
// Operations, picked at random by weight:
//   cc          POST /token, client_credentials (client_secret_basic)
//   code        GET /authorize with a signed-in session (remembered consent), then the code exchange
//   refresh     a refresh grant on one of the refresh chains (each chain used by one request at a time)
//   introspect  POST /introspect of a recent client_credentials token, by a resource server
//   userinfo    GET /userinfo with a recent user access token
//   login       a new browser: /authorize, the login form (Argon2id), then the code exchange
// Every INTERVAL seconds prints one JSON line: {"t","ops","ok","non2xx","s5xx","statuses","p50","p99",
// "dropped","first_5xx"} (latency of each request in ms over the interval; `dropped` = operations not
// started because MAX_IN_FLIGHT were already in flight: the generator, not the server, fell behind).
// Usage: node soak_driver.mjs CONFIG_JSON_FILE   (CONFIG: base, cc {id,secret}, rs {id,secret}, spa,
//   redirect_uri, users [...], password, weights {op: n}, rate (ops/s, 0 = closed loop), concurrency,
//   seconds, interval, browsers)
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const base = config.base;
const COOKIE = '__Host-bastion-session';
const MAX_IN_FLIGHT = 256;
const basic = (c) => `Basic ${Buffer.from(`${encodeURIComponent(c.id)}:${encodeURIComponent(c.secret)}`).toString('base64')}`;
const ccAuth = basic(config.cc);
const rsAuth = basic(config.rs);

let window = { latencies: [], ok: 0, non2xx: 0, s5xx: 0, statuses: {}, ops: 0, dropped: 0, first5xx: null };

// Every browser calls from its own loopback address (127.1.x.y), as people do from their own
// networks: one address for all of them would meet the server's per-address limit on anonymous
// sign-in requests (anonymous_requests_per_address, 60 a minute), which is there for attackers.
// Services (cc, refresh, introspect, userinfo) call from 127.0.0.1 over kept-alive connections.
const serviceAgent = new http.Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT });
let addresses = 0;
function newAddress() {
  addresses += 1;
  return `127.1.${(addresses >> 8) & 255}.${addresses & 255 || 1}`;
}

async function request(method, path, { headers = {}, form, cookie, from } = {}) {
  const h = { ...headers };
  if (cookie) h.cookie = `${COOKIE}=${cookie}`;
  let body;
  if (form) {
    h['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(form).toString();
  }
  // A browser's requests each open a connection from its address (closed after the answer).
  const via = from ? { agent: false, localAddress: from } : { agent: serviceAgent };
  const started = performance.now();
  const response = await new Promise((resolve, reject) => {
    const outgoing = http.request(base + path, { method, headers: h, ...via }, (incoming) => {
      const chunks = [];
      incoming.on('data', (chunk) => chunks.push(chunk));
      incoming.on('end', () => resolve({ incoming, text: Buffer.concat(chunks).toString('utf8') }));
      incoming.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
  const { incoming, text } = response;
  window.latencies.push(performance.now() - started);
  window.statuses[incoming.statusCode] = (window.statuses[incoming.statusCode] ?? 0) + 1;
  if (incoming.statusCode >= 500) {
    window.s5xx += 1;
    window.first5xx ??= `${method} ${path.split('?')[0]} ${incoming.statusCode} ${text.slice(0, 200)}`;
  }
  let newCookie = null;
  for (const value of incoming.headers['set-cookie'] ?? []) {
    if (value.startsWith(`${COOKIE}=`)) newCookie = value.slice(COOKIE.length + 1).split(';', 1)[0];
  }
  return { status: incoming.statusCode, text, location: incoming.headers.location ?? '', cookie: newCookie };
}

function hidden(html) {
  const fields = {};
  for (const match of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
    fields[match[1]] = match[2].replaceAll('&amp;', '&');
  }
  return fields;
}

// A browser's authorization: the pages it meets are filled in (login, consent); returns the tokens.
async function authorize(browser, username) {
  const verifier = randomBytes(36).toString('base64url');
  const query = new URLSearchParams({
    response_type: 'code', client_id: config.spa, redirect_uri: config.redirect_uri, scope: 'openid offline_access',
    state: 's', nonce: randomBytes(6).toString('hex'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
  });
  let page = await request('GET', `/authorize?${query}`, { cookie: browser.cookie, from: browser.address });
  for (let hop = 0; hop < 8; hop += 1) {
    if (page.cookie) browser.cookie = page.cookie;
    if (page.location.startsWith(config.redirect_uri)) break;
    if (page.status === 303 && page.location.startsWith('/')) {
      page = await request('GET', page.location, { cookie: browser.cookie, from: browser.address });
    } else if (page.status === 200 && page.text.includes('name="password"')) {
      page = await request('POST', '/login', { cookie: browser.cookie, from: browser.address, form: { ...hidden(page.text), username, password: config.password } });
    } else if (page.status === 200 && page.text.includes('name="decision"')) {
      page = await request('POST', '/consent', { cookie: browser.cookie, from: browser.address, form: { ...hidden(page.text), decision: 'approve' } });
    } else {
      throw new Error(`authorize: ${page.status} ${page.text.slice(0, 120)}`);
    }
  }
  const code = new URL(page.location || 'invalid:').searchParams.get('code');
  if (!code) throw new Error(`authorize: no code (${page.status})`);
  const answer = await request('POST', '/token', { from: browser.address, form: {
    grant_type: 'authorization_code', code, redirect_uri: config.redirect_uri, client_id: config.spa, code_verifier: verifier,
  } });
  if (answer.status !== 200) throw new Error(`exchange: ${answer.status} ${answer.text.slice(0, 120)}`);
  return JSON.parse(answer.text);
}

const browsers = [];
const chains = [];
let userToken = null;
let serviceToken = null;

const operations = {
  async cc() {
    const answer = await request('POST', '/token', { headers: { authorization: ccAuth }, form: { grant_type: 'client_credentials', scope: 'read' } });
    if (answer.status !== 200) throw new Error(`cc: ${answer.status} ${answer.text.slice(0, 120)}`);
    serviceToken = JSON.parse(answer.text).access_token;
  },
  async code() {
    const browser = browsers[Math.floor(Math.random() * browsers.length)];
    userToken = (await authorize(browser, browser.username)).access_token;
  },
  async refresh() {
    const chain = chains.pop();
    if (!chain) return operations.cc();
    try {
      const answer = await request('POST', '/token', { form: { grant_type: 'refresh_token', refresh_token: chain.token, client_id: config.spa } });
      if (answer.status !== 200) throw new Error(`refresh: ${answer.status} ${answer.text.slice(0, 120)}`);
      const tokens = JSON.parse(answer.text);
      chain.token = tokens.refresh_token;
      userToken = tokens.access_token;
    } finally {
      chains.unshift(chain);
    }
  },
  async introspect() {
    const answer = await request('POST', '/introspect', { headers: { authorization: rsAuth }, form: { token: serviceToken } });
    if (answer.status !== 200 || !answer.text.includes('"active":true')) throw new Error(`introspect: ${answer.status} ${answer.text.slice(0, 120)}`);
  },
  async userinfo() {
    const answer = await request('GET', '/userinfo', { headers: { authorization: `Bearer ${userToken}` } });
    if (answer.status !== 200) throw new Error(`userinfo: ${answer.status} ${answer.text.slice(0, 120)}`);
  },
  async login() {
    const username = config.users[Math.floor(Math.random() * config.users.length)];
    await authorize({ cookie: null, address: newAddress() }, username);
  },
};

const weighted = Object.entries(config.weights).flatMap(([op, n]) => Array(n).fill(op));
const failures = {};
async function one() {
  const op = weighted[Math.floor(Math.random() * weighted.length)];
  window.ops += 1;
  try {
    await operations[op]();
    window.ok += 1;
  } catch (error) {
    window.non2xx += 1;
    failures[op] ??= String(error).slice(0, 200);
  }
}

// Set-up (not reported): signed-in browsers (each consents once), their refresh chains, a token of each kind.
for (let i = 0; i < config.browsers; i += 1) {
  const browser = { cookie: null, address: newAddress(), username: config.users[i % config.users.length] };
  const tokens = await authorize(browser, browser.username);
  browsers.push(browser);
  chains.push({ token: tokens.refresh_token });
  userToken = tokens.access_token;
}
await operations.cc();
window = { latencies: [], ok: 0, non2xx: 0, s5xx: 0, statuses: {}, ops: 0, dropped: 0, first5xx: null };
console.log(JSON.stringify({ ready: true }));

const started = performance.now();
const end = started + config.seconds * 1000;
let inFlight = 0;
let reported = 0;

function report(final) {
  const w = window;
  window = { latencies: [], ok: 0, non2xx: 0, s5xx: 0, statuses: {}, ops: 0, dropped: 0, first5xx: null };
  w.latencies.sort((a, b) => a - b);
  const q = (p) => (w.latencies.length ? w.latencies[Math.min(w.latencies.length - 1, Math.floor(p * w.latencies.length))] : null);
  reported += 1;
  console.log(JSON.stringify({
    t: (performance.now() - started) / 1000, interval: reported, final, ops: w.ops, ok: w.ok, non2xx: w.non2xx,
    s5xx: w.s5xx, statuses: w.statuses, requests: w.latencies.length, p50: q(0.5), p99: q(0.99), dropped: w.dropped,
    first_5xx: w.first5xx, failures,
  }));
}
const ticker = setInterval(() => report(false), config.interval * 1000);

if (config.rate > 0) {
  // Open loop: operation k starts at k / rate seconds, whatever the answers take.
  let launched = 0;
  await new Promise((resolve) => {
    const pump = setInterval(() => {
      const now = performance.now();
      if (now >= end) {
        clearInterval(pump);
        resolve();
        return;
      }
      const due = Math.floor(((now - started) / 1000) * config.rate);
      while (launched < due) {
        launched += 1;
        if (inFlight >= MAX_IN_FLIGHT) {
          window.dropped += 1;
          continue;
        }
        inFlight += 1;
        one().finally(() => { inFlight -= 1; });
      }
    }, 5);
  });
  while (inFlight > 0) await new Promise((r) => setTimeout(r, 10));
} else {
  await Promise.all(Array.from({ length: config.concurrency }, async () => {
    while (performance.now() < end) await one();
  }));
}
clearInterval(ticker);
report(true);
