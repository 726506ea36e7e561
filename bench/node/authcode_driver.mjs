// The load generator of bench/authcode_bench.py (and bench/soak.py's browser steps): virtual
// browsers over Node fetch's keep-alive connections, each with its own cookie jar, against either
// server. The same code drives Bastion and oidc-provider; only the sign-in differs (Bastion's
// login and consent forms; the peer's interaction, which bench/node/authcode_server.mjs finishes
// at once).
//
// Usage: node authcode_driver.mjs CONFIG_JSON_FILE COMMAND [ARG]
// CONFIG: {"base","kind": "bastion"|"peer","client_id","redirect_uri","scope","username","password",
//          "browsers","state"}   (state: a JSON file holding the browsers' cookies and refresh tokens)
// Commands (each prints one JSON line):
//   signin                 every browser signs in (and consents) once; its first code is exchanged and
//                          its refresh token kept as the start of its refresh chain
//   verify                 one extra browser signs in, exchanges its code, refreshes once, then replays
//                          the spent refresh token: {"first","second","replay_status","replay_body"}
//   mint N FILE            N codes from /authorize with each browser's session (remembered consent)
//   exchange FILE          POST /token once for each minted code
//   refresh N|Ss           `browsers` refresh chains, each grant sending the token the last one returned
//   authorize N|Ss         browsers loop: /authorize with the session, then the code exchange
// N is a count of grants shared by all browsers; "12s" runs for 12 seconds instead.
// Results: {"ok","bad","seconds","p50","p99","first_failure"} (latency in ms per grant or pair).
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';

const [configFile, command, arg, arg2] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configFile, 'utf8'));
const state = existsSync(config.state) ? JSON.parse(readFileSync(config.state, 'utf8')) : { browsers: [] };

class Browser {
  constructor(cookies = {}) { this.cookies = cookies; }

  async go(method, url, form) {
    const headers = {};
    const jar = Object.entries(this.cookies).map(([k, v]) => `${k}=${v}`).join('; ');
    if (jar) headers.cookie = jar;
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const response = await fetch(new URL(url, config.base), { method, headers, body, redirect: 'manual' });
    for (const value of response.headers.getSetCookie()) {
      const [pair, ...attributes] = value.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || /expires=Thu, 01 Jan 1970/i.test(a));
      if (expired) delete this.cookies[name]; else this.cookies[name] = pair.slice(eq + 1);
    }
    const text = await response.text();
    return { status: response.status, text, location: response.headers.get('location') ?? '' };
  }

  // GET /authorize and follow the server's own redirects until the one to the client; the pages
  // a first sign-in meets (Bastion's login and consent forms) are filled in when `signin`.
  async authorize(signin) {
    const verifier = randomBytes(36).toString('base64url');
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: config.client_id,
      redirect_uri: config.redirect_uri,
      scope: config.scope,
      state: randomBytes(8).toString('hex'),
      nonce: randomBytes(8).toString('hex'),
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    });
    if (signin && config.kind === 'bastion') query.set('prompt', 'consent');
    let page = await this.go('GET', `/authorize?${query}`);
    for (let hop = 0; hop < 10; hop += 1) {
      if (page.location.startsWith(config.redirect_uri)) {
        const code = new URL(page.location).searchParams.get('code');
        if (!code) throw new Error(`no code: ${page.location}`);
        return { code, verifier };
      }
      if (page.status >= 300 && page.status < 400 && page.location) {
        page = await this.go('GET', page.location);
      } else if (signin && page.status === 200 && page.text.includes('name="password"')) {
        page = await this.go('POST', '/login', { ...hidden(page.text), username: config.username, password: config.password });
      } else if (signin && page.status === 200 && page.text.includes('name="decision"')) {
        page = await this.go('POST', '/consent', { ...hidden(page.text), decision: 'approve' });
      } else {
        throw new Error(`authorize: ${page.status} ${page.text.slice(0, 200)}`);
      }
    }
    throw new Error('authorize: too many redirects');
  }
}

function hidden(html) {
  const fields = {};
  for (const match of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
    fields[match[1]] = match[2].replaceAll('&amp;', '&');
  }
  return fields;
}

async function token(form) {
  const response = await fetch(new URL('/token', config.base), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: config.client_id, ...form }).toString(),
  });
  const text = await response.text();
  return { status: response.status, text, json: response.status === 200 ? JSON.parse(text) : null };
}

const exchange = ({ code, verifier }) => token({
  grant_type: 'authorization_code', code, redirect_uri: config.redirect_uri, code_verifier: verifier,
});
const refresh = (refreshToken) => token({ grant_type: 'refresh_token', refresh_token: refreshToken });

function granted(answer) {
  return answer.status === 200 && answer.json.access_token && answer.json.id_token && answer.json.refresh_token;
}

// Run `step(worker)` from each of `workers` loops until `limit` (a count, or "Ns") is reached.
async function run(workers, limit, step) {
  const seconds = String(limit).endsWith('s') ? Number(String(limit).slice(0, -1)) : null;
  const count = seconds === null ? Number(limit) : Infinity;
  const deadline = seconds === null ? Infinity : performance.now() + seconds * 1000;
  const latencies = [];
  let issued = 0;
  let bad = 0;
  let firstFailure = null;
  async function loop(worker) {
    while (issued < count && performance.now() < deadline) {
      issued += 1;
      const started = performance.now();
      let failure;
      try {
        failure = await step(worker);
      } catch (error) {
        failure = String(error);
      }
      if (failure) {
        bad += 1;
        firstFailure ??= failure;
      } else {
        latencies.push(performance.now() - started);
      }
    }
  }
  const started = performance.now();
  await Promise.all(Array.from({ length: workers }, (_, index) => loop(index)));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : NaN);
  return { ok: latencies.length, bad, seconds: elapsed, p50: q(0.5), p99: q(0.99), first_failure: firstFailure };
}

const browsers = state.browsers.map((b) => new Browser(b.cookies));
const save = () => writeFileSync(config.state, JSON.stringify({
  browsers: browsers.map((b, i) => ({ cookies: b.cookies, refresh_token: state.browsers[i]?.refresh_token })),
}));

let result;
if (command === 'signin') {
  state.browsers = [];
  for (let i = 0; i < config.browsers; i += 1) {
    const browser = new Browser();
    const answer = await exchange(await browser.authorize(true));
    if (!granted(answer)) throw new Error(`signin exchange: ${answer.status} ${answer.text.slice(0, 300)}`);
    browsers.push(browser);
    state.browsers.push({ refresh_token: answer.json.refresh_token });
  }
  save();
  result = { browsers: browsers.length };
} else if (command === 'verify') {
  const browser = new Browser();
  const first = await exchange(await browser.authorize(true));
  const second = first.json ? await refresh(first.json.refresh_token) : null;
  const replay = first.json ? await refresh(first.json.refresh_token) : null;
  result = {
    first: first.json ?? first.text, second: second?.json ?? second?.text, replay_status: replay?.status, replay_body: replay?.text,
  };
} else if (command === 'mint') {
  const minted = [];
  result = await run(browsers.length, arg, async (worker) => { minted.push(await browsers[worker].authorize(false)); });
  writeFileSync(arg2, JSON.stringify(minted));
} else if (command === 'exchange') {
  const minted = JSON.parse(readFileSync(arg, 'utf8'));
  let next = 0;
  result = await run(browsers.length, minted.length, async () => {
    const answer = await exchange(minted[next++]);
    return granted(answer) ? null : `${answer.status} ${answer.text.slice(0, 200)}`;
  });
} else if (command === 'refresh') {
  result = await run(browsers.length, arg, async (worker) => {
    const answer = await refresh(state.browsers[worker].refresh_token);
    if (!granted(answer)) return `${answer.status} ${answer.text.slice(0, 200)}`;
    state.browsers[worker].refresh_token = answer.json.refresh_token;
    return null;
  });
  save();
} else if (command === 'authorize') {
  result = await run(browsers.length, arg, async (worker) => {
    const answer = await exchange(await browsers[worker].authorize(false));
    return granted(answer) ? null : `${answer.status} ${answer.text.slice(0, 200)}`;
  });
  save();
} else {
  throw new Error(`unknown command ${command}`);
}
console.log(JSON.stringify(result));
