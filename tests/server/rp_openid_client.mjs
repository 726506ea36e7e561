// A certified relying party (openid-client 6) against Bastion: discovery, authorization URL with
// PKCE and nonce, then (after the test performs the browser step and writes the callback URL on
// stdin) callback validation, code exchange, ID token validation, userinfo and refresh.
// Run from tests/node so the package resolves: node --input-type=module -e "$(cat ...)" ISSUER CLIENT_ID REDIRECT
import * as client from 'openid-client';
import * as readline from 'node:readline';

const [issuer, clientId, redirectUri] = process.argv.slice(-3);
const config = await client.discovery(new URL(issuer), clientId, undefined, client.None(), {
  execute: [client.allowInsecureRequests],
});
const codeVerifier = client.randomPKCECodeVerifier();
const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
const state = client.randomState();
const nonce = client.randomNonce();
const url = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: 'openid profile email offline_access',
  code_challenge: codeChallenge,
  code_challenge_method: 'S256',
  state,
  nonce,
});
console.log(JSON.stringify({ authorization_url: url.href }));

const lines = readline.createInterface({ input: process.stdin });
const callback = await new Promise((resolve) => lines.once('line', resolve));
lines.close();

const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
  pkceCodeVerifier: codeVerifier,
  expectedState: state,
  expectedNonce: nonce,
  idTokenExpected: true,
});
const claims = tokens.claims();
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
console.log(JSON.stringify({
  claims,
  userinfo,
  scope: tokens.scope,
  refreshed: { has_access_token: !!refreshed.access_token, rotated: refreshed.refresh_token !== tokens.refresh_token, sub: refreshed.claims()?.sub },
}));
