// A second, independent issuer for the guard's tests: node-oidc-provider with client
// credentials and JWT access tokens (resource indicators, RFC 8707). Run with
// `node --input-type=module -e "$(cat oidc_provider.mjs)" PORT AUDIENCE` from tests/node, so
// that the packages resolve there.
import Provider from 'oidc-provider';
import * as jose from 'jose';

const [portArg, audienceArg] = process.argv.slice(-2);
const port = Number(portArg);
const issuer = `http://127.0.0.1:${port}`;
const audience = audienceArg;

async function signingKey(alg, kid) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  return { ...(await jose.exportJWK(privateKey)), kid, alg, use: 'sig' };
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'guard-test',
    client_secret: 'guard-test-secret',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [await signingKey('RS256', 'rs-1'), await signingKey('ES256', 'es-1')] },
  scopes: ['notes:read'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'notes:read',
        audience,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});

provider.listen(port, '127.0.0.1', () => { console.log('ready'); });
