// A DPoP client in plain JavaScript (RFC 9449), runnable on the machine's own Node (20+) with jose:
//   node examples/dpop-call.mjs <issuer URL> <client_id> <client_secret> <MCP URL> <scope>
// It gets a DPoP-bound token by client_credentials (the proof at the token endpoint, §5), calls
// `whoami` through the gateway with a fresh proof bound to that token (§7: ath), then replays the
// same proof, and sends the token as Bearer, both of which the gateway must refuse (401).
import { createHash, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

const [issuer, clientId, clientSecret, mcpUrl, scope] = process.argv.slice(2);
if (scope === undefined) {
  console.error('usage: node examples/dpop-call.mjs <issuer URL> <client_id> <client_secret> <MCP URL> <scope>');
  process.exit(2);
}

// The client's proof-of-possession key: the token is bound to its thumbprint (cnf.jkt).
const { privateKey, publicKey } = await generateKeyPair('ES256');
const jwk = await exportJWK(publicKey);

function proof(htm, htu, token, nonce) {
  return new SignJWT({
    htm,
    htu,
    iat: Math.floor(Date.now() / 1000),
    jti: randomUUID(),
    ...(token === undefined ? {} : { ath: createHash('sha256').update(token).digest('base64url') }),
    ...(nonce === undefined ? {} : { nonce }),
  }).setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk }).sign(privateKey);
}

const meta = await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json();
const tokenUrl = meta.token_endpoint;
const form = new URLSearchParams({ grant_type: 'client_credentials', resource: mcpUrl, scope });
const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64');
async function askToken(nonce) {
  return fetch(tokenUrl, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', dpop: await proof('POST', tokenUrl, undefined, nonce) },
    body: form,
  });
}
let answer = await askToken();
// §8: the authorization server may first ask for its nonce.
if (answer.status === 400 && answer.headers.get('dpop-nonce') !== null) answer = await askToken(answer.headers.get('dpop-nonce'));
const issued = await answer.json();
if (issued.token_type?.toLowerCase() !== 'dpop') {
  console.error(`no DPoP-bound token: ${answer.status} ${JSON.stringify(issued)}`);
  process.exit(1);
}
const token = issued.access_token;

const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } });
const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
async function call(authorization, dpop) {
  const res = await fetch(mcpUrl, { method: 'POST', headers: { ...mcpHeaders, authorization, ...(dpop === undefined ? {} : { dpop }) }, body });
  return { status: res.status, challenge: res.headers.get('www-authenticate'), text: await res.text() };
}

const once = await proof('POST', mcpUrl, token);
const valid = await call(`DPoP ${token}`, once);
console.log(`DPoP token with its proof: ${valid.status} ${valid.text.trim()}`);
const replayed = await call(`DPoP ${token}`, once);
console.log(`the same proof again:      ${replayed.status} ${replayed.challenge}`);
const bearer = await call(`Bearer ${token}`);
console.log(`the token as Bearer:       ${bearer.status} ${bearer.challenge}`);
process.exit(valid.status === 200 && replayed.status === 401 && bearer.status === 401 ? 0 : 1);
