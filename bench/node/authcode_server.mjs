// The peer for bench/authcode_bench.py and bench/soak.py's comparisons: node-oidc-provider (v9)
// set up for the Authorization Code grant with PKCE (S256), refresh tokens with rotation, RS256
// ID tokens and JWT access tokens (resourceIndicators, accessTokenFormat 'jwt', ES256, typ at+jwt)
// like Bastion's, signed session cookies (cookies.keys), and a storage adapter:
// - "memory": oidc-provider's own default in-memory adapter (an LRU of 1000 entries; its docs
//   call it a development adapter);
// - "redis": the Redis adapter of oidc-provider's own example (example/adapters/redis.js), on
//   ioredis, the production shape its documentation points to.
// Sign-in is the one step a real deployment would render: GET /interaction/:uid finishes the
// interaction at once (login as `bench-user`, consent to the requested scopes, the grant saved),
// so a browser that went through it once has a session and a remembered grant, and its next
// /authorize answers with a code straight away (what bench/authcode_bench.py measures).
// Env: BENCH_AUTHCODE = {"port","resource","adapter","redis_url"}. Prints "ready" when listening.
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const config = JSON.parse(process.env.BENCH_AUTHCODE);
const issuer = `http://127.0.0.1:${config.port}`;
const redirectUri = 'https://spa.bench.test/callback';
const scope = 'openid offline_access';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const keys = [
  { ...rsa.export({ format: 'jwk' }), kid: 'bench-rs256', alg: 'RS256', use: 'sig' },
  { ...ec.export({ format: 'jwk' }), kid: 'bench-es256', alg: 'ES256', use: 'sig' },
];

let adapter;
if (config.adapter === 'redis') {
  const { default: Redis } = await import('ioredis');
  const client = new Redis(config.redis_url, { keyPrefix: 'oidc:' });
  const grantable = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);
  const consumable = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);
  const grantKeyFor = (id) => `grant:${id}`;
  const uidKeyFor = (uid) => `uid:${uid}`;
  const userCodeKeyFor = (userCode) => `userCode:${userCode}`;
  adapter = class RedisAdapter {
    constructor(name) { this.name = name; }

    key(id) { return `${this.name}:${id}`; }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      const multi = client.multi();
      if (consumable.has(this.name)) {
        multi.hset(key, { payload: JSON.stringify(payload) });
      } else {
        multi.set(key, JSON.stringify(payload));
      }
      if (expiresIn) multi.expire(key, expiresIn);
      if (grantable.has(this.name) && payload.grantId) {
        const grantKey = grantKeyFor(payload.grantId);
        multi.rpush(grantKey, key);
        const ttl = await client.ttl(grantKey);
        if (expiresIn > ttl) multi.expire(grantKey, expiresIn);
      }
      if (payload.userCode) {
        multi.set(userCodeKeyFor(payload.userCode), id);
        multi.expire(userCodeKeyFor(payload.userCode), expiresIn);
      }
      if (payload.uid) {
        multi.set(uidKeyFor(payload.uid), id);
        multi.expire(uidKeyFor(payload.uid), expiresIn);
      }
      await multi.exec();
    }

    async find(id) {
      const data = consumable.has(this.name) ? await client.hgetall(this.key(id)) : await client.get(this.key(id));
      if (!data || (typeof data === 'object' && !Object.keys(data).length)) return undefined;
      if (typeof data === 'string') return JSON.parse(data);
      const { payload, ...rest } = data;
      return { ...rest, ...JSON.parse(payload) };
    }

    async findByUid(uid) { return this.find(await client.get(uidKeyFor(uid))); }

    async findByUserCode(userCode) { return this.find(await client.get(userCodeKeyFor(userCode))); }

    async destroy(id) { await client.del(this.key(id)); }

    async revokeByGrantId(grantId) {
      const multi = client.multi();
      const tokens = await client.lrange(grantKeyFor(grantId), 0, -1);
      // The list holds prefixed keys; ioredis adds the prefix again, so strip it.
      tokens.forEach((token) => multi.del(token.replace(/^oidc:/, '')));
      multi.del(grantKeyFor(grantId));
      await multi.exec();
    }

    async consume(id) { await client.hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000)); }
  };
}

const provider = new Provider(issuer, {
  ...(adapter ? { adapter } : {}),
  clients: [{
    client_id: 'spa',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [redirectUri],
    scope,
  }],
  scopes: ['openid', 'offline_access'],
  jwks: { keys },
  // Bastion's paths, so one driver sends the same requests to both.
  routes: { authorization: '/authorize' },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  rotateRefreshToken: true,
  issueRefreshToken: () => true,
  pkce: { required: () => true },
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, RefreshToken: 14 * 86400, Grant: 14 * 86400, Session: 43200, Interaction: 600 },
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => config.resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'openid offline_access',
        audience: config.resource,
        accessTokenTTL: 600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});
provider.on('server_error', (ctx, err) => { console.error('server_error', err); });

// The sign-in a deployment would render as pages, finished at once for `bench-user`.
provider.use(async (ctx, next) => {
  if (ctx.method !== 'GET' || !ctx.path.startsWith('/interaction/')) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const grant = new provider.Grant({ accountId: 'bench-user', clientId: details.params.client_id });
  grant.addOIDCScope(scope);
  grant.addResourceScope(config.resource, scope);
  const result = { login: { accountId: 'bench-user' }, consent: { grantId: await grant.save() } };
  const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  ctx.status = 303;
  ctx.set('location', to);
  return undefined;
});

provider.listen(config.port, '127.0.0.1', () => { console.log('ready'); });
