// The login driver for bench/authcode_bench.py: CONCURRENCY virtual browsers run complete logins
// for SECONDS: GET /authorize (PKCE S256, nonce, prompt=consent), the login form, the consent form
// (approve), then the code exchange. Each login is a new person: no session cookie, so every step
// runs every time, and its own loopback address (127.1.x.y) with its own kept-alive connection,
// as people sign in from their own networks (from one address the logins would meet the server's
// anonymous_requests_per_address limit, 60 a minute, which is there for attackers). The browser
// step is driven from Node, like the other loads of this bench, so the load generator's own CPU
// stays small.
// Prints {"done","failed","seconds","first_failure"}.
// Usage: node logins.mjs BASE_URL CLIENT_ID REDIRECT_URI USER1,USER2,... PASSWORD SECONDS CONCURRENCY
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';

const [base, clientId, redirectUri, userList, password, secondsArg, concurrencyArg] = process.argv.slice(2);
const users = userList.split(',');
const seconds = Number(secondsArg);
const concurrency = Number(concurrencyArg);
const COOKIE = '__Host-bastion-session';

function hiddenFields(html) {
  const fields = {};
  for (const match of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
    fields[match[1]] = match[2].replaceAll('&amp;', '&');
  }
  return fields;
}

let addresses = 0;
function newAddress() {
  addresses = (addresses % 65000) + 1;
  return `127.1.${(addresses >> 8) & 255}.${addresses & 255 || 1}`;
}

function send(agent, method, path, headers, body) {
  return new Promise((resolve, reject) => {
    const outgoing = http.request(base + path, { method, headers, agent }, (incoming) => {
      const chunks = [];
      incoming.on('data', (chunk) => chunks.push(chunk));
      incoming.on('end', () => resolve({ incoming, text: Buffer.concat(chunks).toString('utf8') }));
      incoming.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

async function login(username) {
  const verifier = randomBytes(36).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress: newAddress() });
  let cookie = null;

  async function go(method, path, form) {
    const headers = {};
    if (cookie) headers.cookie = `${COOKIE}=${cookie}`;
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const { incoming, text } = await send(agent, method, path, headers, body);
    for (const value of incoming.headers['set-cookie'] ?? []) {
      if (value.startsWith(`${COOKIE}=`)) cookie = value.slice(COOKIE.length + 1).split(';', 1)[0];
    }
    const location = incoming.headers.location ?? '';
    if (incoming.statusCode === 303 && location.startsWith('/')) return go('GET', location);
    return { status: incoming.statusCode, text, location };
  }
  try {
    return await steps(go, username, verifier, challenge);
  } finally {
    agent.destroy();
  }
}

async function steps(go, username, verifier, challenge) {
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope: 'openid',
    state: 's',
    nonce: 'n',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    prompt: 'consent',
  });
  let page = await go('GET', `/authorize?${query}`);
  page = await go('POST', '/login', { ...hiddenFields(page.text), username, password });
  page = await go('POST', '/consent', { ...hiddenFields(page.text), decision: 'approve' });
  const code = new URL(page.location || 'invalid:').searchParams.get('code');
  if (!code) return `no code: ${page.status} ${page.text.slice(0, 200)}`;
  const token = await go('POST', '/token', {
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri,
    client_id: clientId,
    code_verifier: verifier,
  });
  return token.status === 200 && token.text.includes('"id_token"') ? null : `token: ${token.status} ${token.text.slice(0, 200)}`;
}

let done = 0;
let failed = 0;
let firstFailure = null;
const deadline = performance.now() + seconds * 1000;

async function browser(index) {
  while (performance.now() < deadline) {
    const failure = await login(users[index % users.length]);
    if (failure === null) {
      done += 1;
    } else {
      failed += 1;
      firstFailure ??= failure;
    }
  }
}

const started = performance.now();
await Promise.all(Array.from({ length: concurrency }, (_, index) => browser(index)));
const elapsed = (performance.now() - started) / 1000;
console.log(JSON.stringify({ done, failed, seconds: elapsed, first_failure: firstFailure }));
