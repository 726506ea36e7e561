// A client nobody at Bastion wrote, in another language: the npm package `openid-client`
// discovers the server (RFC 8414), gets a client-credentials token, introspects it (RFC 7662),
// revokes it (RFC 7009) and introspects it again, authenticating every call with METHOD.
//
// Run from tests/node so that the packages resolve there:
//   node --input-type=module -e "$(cat openid_client.mjs)" ISSUER CLIENT_ID METHOD < credential.json
// where credential.json is {"client_secret": "..."} or {"private_jwk": {...}} (private_key_jwt).
// Prints one JSON line: {"token": {...}, "introspection": {...}, "after_revocation": {...}}.
import * as client from 'openid-client';
import { importJWK } from 'jose';

const [issuer, clientId, method] = process.argv.slice(-3);

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function clientAuth(credential) {
  switch (method) {
    case 'client_secret_basic':
      return client.ClientSecretBasic(credential.client_secret);
    case 'client_secret_post':
      return client.ClientSecretPost(credential.client_secret);
    case 'private_key_jwt': {
      const { kid, alg } = credential.private_jwk;
      return client.PrivateKeyJwt({ key: await importJWK(credential.private_jwk, alg), kid });
    }
    default:
      throw new Error(`unknown method ${method}`);
  }
}

const credential = await readStdin();
// Plain http is allowed for the loopback test server only; `oauth2` selects RFC 8414 discovery.
const config = await client.discovery(new URL(issuer), clientId, undefined, await clientAuth(credential), {
  algorithm: 'oauth2',
  execute: [client.allowInsecureRequests],
});
const token = await client.clientCredentialsGrant(config, { scope: 'read' });
const introspection = await client.tokenIntrospection(config, token.access_token);
await client.tokenRevocation(config, token.access_token, { token_type_hint: 'access_token' });
const afterRevocation = await client.tokenIntrospection(config, token.access_token);

process.stdout.write(
  JSON.stringify({
    token: { token_type: token.token_type, scope: token.scope, expires_in: token.expires_in, access_token: token.access_token },
    introspection,
    after_revocation: afterRevocation,
  }) + '\n',
);
