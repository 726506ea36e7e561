// A resource server nobody at Bastion wrote: the npm package `jose` validates an access token
// knowing nothing but the authorization server's discovery URL and its own audience.
//
// Run from tests/node so that `jose` resolves there (the package is ESM-only, and NODE_PATH does
// not apply to ES module imports):
//   node --input-type=module -e "$(cat verify_jose.mjs)" DISCOVERY_URL AUDIENCE < token
// Prints one JSON line: {"valid": true, "header": {...}, "payload": {...}} (exit 0), or
// {"valid": false, "code": "ERR_...", "message": "..."} (exit 1).
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [discoveryUrl, audience] = process.argv.slice(-2);

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8').trim();
}

const token = await readStdin();
const response = await fetch(discoveryUrl);
if (!response.ok) throw new Error(`discovery answered ${response.status}`);
const metadata = await response.json();
const JWKS = createRemoteJWKSet(new URL(metadata.jwks_uri));

try {
  const { payload, protectedHeader } = await jwtVerify(token, JWKS, {
    issuer: metadata.issuer,
    audience,
    // RFC 9068 §4: the resource server MUST check typ "at+jwt" and the claims of §2.2.
    typ: 'at+jwt',
    requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id'],
  });
  process.stdout.write(JSON.stringify({ valid: true, header: protectedHeader, payload }) + '\n');
} catch (error) {
  process.stdout.write(JSON.stringify({ valid: false, code: error.code ?? error.name, message: error.message }) + '\n');
  process.exitCode = 1;
}
