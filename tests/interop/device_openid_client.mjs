// A device that nobody at Bastion wrote: npm `openid-client` (v6) runs the Device Authorization
// Grant (RFC 8628) against Bastion through its own helpers.
// Usage (from tests/node): node --input-type=module -e "$(cat device_openid_client.mjs)" ISSUER CLIENT_ID SCOPE
// Prints one JSON line with the device authorization response, then (once the user approved)
// one JSON line with the token response and the ID token claims openid-client validated, or
// {"error": ...} when the grant ended otherwise.
import * as client from "openid-client";

const [issuer, clientId, scope] = process.argv.slice(-3);
// http is allowed for the loopback test server only.
const config = await client.discovery(new URL(issuer), clientId, undefined, client.None(), {
  execute: [client.allowInsecureRequests],
});
const started = await client.initiateDeviceAuthorization(config, { scope });
process.stdout.write(JSON.stringify(started) + "\n");
try {
  const tokens = await client.pollDeviceAuthorizationGrant(config, started);
  process.stdout.write(JSON.stringify({ tokens, claims: tokens.claims() ?? null }) + "\n");
} catch (error) {
  process.stdout.write(JSON.stringify({ error: error.error ?? error.code ?? String(error), description: error.error_description ?? null }) + "\n");
}
