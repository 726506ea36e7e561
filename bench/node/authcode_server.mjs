// The peer for bench/authcode_bench.py: node-oidc-provider (v9, in-memory adapter) set up for the
// Authorization Code grant with PKCE (S256), refresh tokens with rotation, RS256 ID tokens and
// JWT access tokens (resourceIndicators, accessTokenFormat 'jwt', ES256) like Bastion's.
//
// The browser step is not what is measured: at start-up it mints COUNT authorization codes and
// COUNT refresh tokens through its own models (as its interaction flow would) and writes them to
// OUT as JSON, then listens. Env: BENCH_AUTHCODE = {"port","count","out","resource","challenge","mode"};
// mode "codes" or "refresh" mints only that kind: the in-memory adapter is an LRU of 1000 entries,
// so each phase gets a fresh process and at most ~200 items.
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';

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

const provider = new Provider(issuer, {
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
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  rotateRefreshToken: true,
  issueRefreshToken: () => true,
  ttl: { AccessToken: 600, AuthorizationCode: 3600, IdToken: 600, RefreshToken: 14 * 86400, Grant: 14 * 86400 },
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

async function grant() {
  const g = new provider.Grant({ accountId: 'bench-user', clientId: 'spa' });
  g.addOIDCScope(scope);
  g.addResourceScope(config.resource, 'openid offline_access');
  return g.save();
}

const codes = [];
const refreshTokens = [];
const client = await provider.Client.find('spa');
const now = Math.floor(Date.now() / 1000);
for (let i = 0; i < config.count; i += 1) {
  if (config.mode === 'refresh') {
    const rtGrant = await grant();
    refreshTokens.push(await new provider.RefreshToken({
      accountId: 'bench-user', client, grantId: rtGrant, scope, resource: config.resource, gty: 'authorization_code',
      authTime: now, iat: now, rotations: 0,
    }).save());
    continue;
  }
  const grantId = await grant();
  codes.push(await new provider.AuthorizationCode({
    accountId: 'bench-user', client, grantId, scope, redirectUri, resource: config.resource,
    codeChallenge: config.challenge, codeChallengeMethod: 'S256', nonce: `n${i}`, authTime: now,
  }).save());
}
writeFileSync(config.out, JSON.stringify({ codes, refresh_tokens: refreshTokens, redirect_uri: redirectUri }));
provider.listen(config.port, '127.0.0.1', () => { console.log('ready'); });
