// The peer for bench/token_bench.py: node-oidc-provider (npm `oidc-provider` v9) issuing
// RFC 9068-style JWT access tokens for the Client Credentials grant, signed ES256, on loopback.
//
// Configured the way its documentation asks for JWT access tokens: the `clientCredentials` and
// `resourceIndicators` features, a resource server whose `accessTokenFormat` is 'jwt' signed
// ES256, one client_secret_basic client, and the default in-memory adapter. The signing key is
// generated at start-up (nothing secret is committed).
//
// Usage: node oidc_server.mjs  (reads its configuration as JSON from the BENCH_OIDC env variable:
// {"port", "client_id", "client_secret", "scope", "resource"}). Prints "ready" when listening.
import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

const config = JSON.parse(process.env.BENCH_OIDC);
const issuer = `http://127.0.0.1:${config.port}`;

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-es256', alg: 'ES256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: config.client_id,
      client_secret: config.client_secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: config.scope,
      // Only an ES256 key exists; the client's (unused) ID-token algorithm must match it.
      id_token_signed_response_alg: 'ES256',
    },
  ],
  // A client may only register scopes the provider knows.
  scopes: config.scope.split(' '),
  jwks: { keys: [signingKey] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => config.resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => {
        if (resourceIndicator !== config.resource) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope: config.scope,
          audience: resourceIndicator,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
});

// Like Bastion, refuse to leak errors, and keep the console quiet under load.
provider.on('server_error', (ctx, err) => {
  console.error('server_error', err);
});

provider.listen(config.port, '127.0.0.1', () => {
  console.log('ready');
});
