// `npm run bench:dpop`: what sender-constraint checking costs per request, in process (no sockets):
// the plain Bearer warm path (an unbound token on an upstream without senderConstraint) and a full
// RFC 9449 proof check (ES256 and EdDSA), each beside a jose verify of one access token for scale.
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { DpopReplayCache } from '../src/auth/dpop-replay.ts';
import { principalFrom } from '../src/auth/principal.ts';
import { createSenderCheck } from '../src/auth/sender.ts';
import { loadConfigText } from '../src/config/compile.ts';

const config = loadConfigText(`publicUrl: https://gw.test
issuers: [{ name: idp, issuer: https://idp.test, jwksUri: https://idp.test/jwks, algorithms: [ES256] }]
upstreams: [{ name: mcp, path: /mcp, target: http://127.0.0.1:3001/mcp, issuers: [idp] }]
identity: { signingKeyFile: ./gateway.jwk }
`);
const upstream = config.upstreams[0] as (typeof config.upstreams)[number];
const issuer = config.issuers[0] as (typeof config.issuers)[number];
const sender = createSenderCheck(config, { now: Date.now, replay: new DpopReplayCache(10_000_000), nonceSecret: Buffer.alloc(32, 1) });

async function measure(name: string, runs: number, op: (i: number) => Promise<unknown> | unknown): Promise<void> {
  for (let i = 0; i < Math.min(runs, 1_000); i++) await op(i);
  const start = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) await op(i);
  const ns = Number(process.hrtime.bigint() - start) / runs;
  console.log(`${name.padEnd(58)} ${ns < 1_000 ? `${ns.toFixed(0)} ns` : `${(ns / 1_000).toFixed(1)} µs`} per request`);
}

const req = (headers: string[]): IncomingMessage => ({ method: 'POST', url: '/mcp', rawHeaders: headers }) as unknown as IncomingMessage;
const claims = { iss: issuer.issuer, sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3_600, scope: 'mcp:tools' };
const bearerPrincipal = principalFrom(claims, issuer, 'ab'.repeat(32));
if (bearerPrincipal === undefined) throw new Error('principal');
const bearerReq = req(['Authorization', 'Bearer x.y.z']);
await measure('Bearer warm path: readProof + check (unbound token)', 2_000_000, () => {
  const credential = { kind: 'bearer', scheme: 'bearer', token: 'x.y.z' } as const;
  const proof = sender.readProof(bearerReq, credential, upstream);
  return sender.check(bearerReq, credential, proof as undefined, bearerPrincipal, upstream);
});

for (const alg of ['ES256', 'EdDSA']) {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const jwk = await exportJWK(publicKey);
  const token = 'header.payload.signature';
  const tokenHash = createHash('sha256').update(token).digest('hex');
  const principal = principalFrom({ ...claims, cnf: { jkt: await calculateJwkThumbprint(jwk) } }, issuer, tokenHash);
  if (principal === undefined) throw new Error('principal');
  const ath = createHash('sha256').update(token).digest('base64url');
  const proofs: string[] = [];
  const runs = 5_000;
  for (let i = 0; i < runs + 1_000; i++) {
    proofs.push(await new SignJWT({ htm: 'POST', htu: 'https://gw.test/mcp', iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ath }).setProtectedHeader({ typ: 'dpop+jwt', alg, jwk }).sign(privateKey));
  }
  const credential = { kind: 'bearer', scheme: 'dpop', token } as const;
  let next = 0;
  await measure(`DPoP proof ${alg}: readProof + check (every §4.3 check)`, runs, async () => {
    const r = req(['Authorization', `DPoP ${token}`, 'DPoP', proofs[next++] as string]);
    const proof = sender.readProof(r, credential, upstream) as string;
    const denial = await sender.check(r, credential, proof, principal, upstream);
    if (denial !== undefined) throw new Error(denial.reason);
  });
  const at = await new SignJWT(claims).setProtectedHeader({ alg }).sign(privateKey);
  await measure(`for scale: jose jwtVerify of one ${alg} access token`, runs, () => jwtVerify(at, publicKey));
}
