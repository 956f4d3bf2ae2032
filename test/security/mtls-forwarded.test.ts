import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AUD, PUBLIC_URL, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { expectNothingForwarded } from '../helpers/refused.ts';
import { MCP_POST_HEADERS, RPC } from '../helpers/rpc.ts';
import { sendExact, type Reply } from '../helpers/wire.ts';
import { reasons, type Reason } from '../../src/reasons.ts';
import { stringify } from 'yaml';
import { configProblems } from '../helpers/config.ts';

// A sidecar behind a mesh that terminated TLS (RFC 8705 §3 via a trusted hop): the client certificate's
// hash comes in a header the mesh sets. `trusted` believes loopback peers (this test is that hop);
// `untrusted` names only 10.0.0.0/8, so the same header from this test is a client's forgery. The header
// never reaches the upstream, either way.

const HEADER = 'X-Forwarded-Client-Cert';

let idp: TestIdp;
let upstream: TestUpstream;
let trusted: StartedGateway;
let untrusted: StartedGateway;
let plainHash: StartedGateway;

/** A certificate's DER hash as Envoy's XFCC gives it (hex) and as a cnf carries it (base64url). */
function certHash(): { hex: string; x5t: string } {
  const digest = randomBytes(32);
  return { hex: digest.toString('hex'), x5t: digest.toString('base64url') };
}
const alice = certHash();
const bob = certHash();

const xfcc = (hex: string): string => `By=spiffe://mesh/ns/gw/sa/warden;Hash=${hex};Subject="CN=alice,O=Example, Inc";URI=spiffe://mesh/ns/a/sa/agent`;

function configWith(mtls: Record<string, unknown>): Record<string, unknown> {
  return twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url, { other: { senderConstraint: 'mtls' }, root: { mtls } });
}

beforeAll(async () => {
  idp = await TestIdp.start();
  upstream = await TestUpstream.start();
  trusted = await startGateway(configWith({ forwarded: { header: HEADER, format: 'xfcc', trustedHops: ['127.0.0.0/8', '::1'] } }));
  untrusted = await startGateway(configWith({ forwarded: { header: HEADER, format: 'xfcc', trustedHops: ['10.0.0.0/8'] } }));
  plainHash = await startGateway(configWith({ forwarded: { header: 'X-Client-Cert-Hash', format: 'x5t#S256', trustedHops: ['127.0.0.1'] } }));
});
afterAll(async () => {
  await Promise.all([trusted.close(), untrusted.close(), plainHash.close()]);
  await upstream.close();
  await idp.close();
});
beforeEach(() => upstream.reset());

function post(gw: StartedGateway, token: string, headers: readonly (readonly [string, string])[] = [], path = '/mcp'): Promise<Reply> {
  return sendExact(Number(new URL(gw.url).port), 'POST', path, [...Object.entries(MCP_POST_HEADERS), ['Authorization', `Bearer ${token}`], ...headers], RPC);
}

function expectRefused(reply: Reply, reason: Reason, path = '/mcp'): void {
  expect(reply.status, reply.text).toBe(401);
  expect(reply.headers['www-authenticate']).toBe(`Bearer resource_metadata="${PUBLIC_URL}/.well-known/oauth-protected-resource${path}", error="invalid_token", error_description="${reasons[reason].description}", scope="mcp:tools"`);
  expect(JSON.parse(reply.text)).toMatchObject({ reason });
  expectNothingForwarded(upstream);
}

const bound = (hash: { x5t: string }, aud = AUD): Promise<string> => idp.token(aud, { cnf: { 'x5t#S256': hash.x5t } });

describe('client certificate from a trusted hop (mesh sidecar)', () => {
  it('takes the Hash of the XFCC element the trusted hop added, and strips the header before forwarding', async () => {
    const reply = await post(trusted, await bound(alice), [[HEADER, `Hash=${bob.hex};Subject="CN=from-the-client", ${xfcc(alice.hex)}`]]);
    expect(reply.status, reply.text).toBe(200);
    expect(upstream.received).toHaveLength(1);
    expect(upstream.last()?.headers.get(HEADER.toLowerCase())).toBeUndefined();
  });

  it('refuses when the trusted hop vouches for another certificate', async () => {
    expectRefused(await post(trusted, await bound(alice), [[HEADER, xfcc(bob.hex)]]), 'certificate_mismatch');
  });

  it('refuses a certificate-bound token when the hop sent no header, two headers, or a malformed one', async () => {
    const token = await bound(alice);
    expectRefused(await post(trusted, token), 'certificate_missing');
    expectRefused(await post(trusted, token, [[HEADER, xfcc(alice.hex)], [HEADER, xfcc(alice.hex)]]), 'certificate_missing');
    expectRefused(await post(trusted, token, [[HEADER, `Hash=${alice.hex.slice(2)}`]]), 'certificate_missing');
    expectRefused(await post(trusted, token, [[HEADER, `Hash=${alice.hex};Subject="unterminated`]]), 'certificate_missing');
  });

  it('never believes the header from a peer that is not a trusted hop, and strips it there too', async () => {
    expectRefused(await post(untrusted, await bound(alice), [[HEADER, xfcc(alice.hex)]]), 'certificate_missing');
    const plain = await post(untrusted, await idp.token(AUD), [[HEADER, xfcc(alice.hex)]]);
    expect(plain.status, plain.text).toBe(200);
    expect(upstream.last()?.headers.get(HEADER.toLowerCase())).toBeUndefined();
  });

  it('reads a plain x5t#S256 header, and senderConstraint mtls needs a certificate-bound token', async () => {
    const reply = await post(plainHash, await bound(alice, `${PUBLIC_URL}/other-mcp`), [['X-Client-Cert-Hash', alice.x5t]], '/other-mcp');
    expect(reply.status, reply.text).toBe(200);
    expect(upstream.last()?.headers.get('x-client-cert-hash')).toBeUndefined();
    upstream.reset();
    expectRefused(await post(plainHash, await idp.token(`${PUBLIC_URL}/other-mcp`), [['X-Client-Cert-Hash', alice.x5t]], '/other-mcp'), 'mtls_required', '/other-mcp');
  });
});

describe('mTLS configuration', () => {
  const base = (extra: Record<string, unknown>): string => stringify({
    publicUrl: 'http://127.0.0.1:8080',
    issuers: [{ name: 'idp', issuer: 'http://127.0.0.1:9400', algorithms: ['ES256'] }],
    upstreams: [{ name: 'u', path: '/mcp', target: 'http://127.0.0.1:3000/mcp', issuers: ['idp'], ...(extra['upstream'] as object) }],
    identity: { signingKeyFile: '/tmp/never-read.jwk' },
    ...(extra['root'] as object),
  });
    it('refuses senderConstraint mtls with no source of client certificates', () => {
    expect(configProblems(base({ upstream: { senderConstraint: 'mtls' } }))).toEqual([expect.stringMatching(/^upstreams\.0\.senderConstraint: mtls needs client certificates/)]);
  });

  it('refuses a forwarded-certificate header an upstream would receive, and a trusted hop that is no address', () => {
    const found = configProblems(base({ upstream: { forwardHeaders: ['x-cert-hash'] }, root: { mtls: { forwarded: { header: 'X-Cert-Hash', format: 'x5t#S256', trustedHops: ['mesh.local'] } } } }));
    expect(found).toEqual([expect.stringMatching(/^upstreams\.0\.forwardHeaders: "X-Cert-Hash" carries the client certificate/), expect.stringMatching(/^mtls\.forwarded\.trustedHops\.0: "mesh.local" must be an IP address or CIDR/)]);
  });

  // Attack: `trustedHops: [0.0.0.0/0]` (or ::/0) believed the header from every client, and a header
  // named Mcp-Param-* passed the forwarding allow-list by its prefix, reaching every upstream.
  it('refuses a trusted hop that covers every address, and a certificate header named like an MCP header', () => {
    const hops = configProblems(base({ upstream: { senderConstraint: 'mtls' }, root: { mtls: { forwarded: { header: 'X-Cert-Hash', format: 'x5t#S256', trustedHops: ['0.0.0.0/0', '::/0', '10.0.0.0/8'] } } } }));
    expect(hops).toEqual([
      expect.stringMatching(/^mtls\.forwarded\.trustedHops\.0: "0\.0\.0\.0\/0" covers every address/),
      expect.stringMatching(/^mtls\.forwarded\.trustedHops\.1: "::\/0" covers every address/),
    ]);
    const named = configProblems(base({ root: { mtls: { forwarded: { header: 'Mcp-Param-Client-Cert', format: 'x5t#S256', trustedHops: ['10.0.0.1'] } } } }));
    expect(named).toEqual([expect.stringMatching(/^mtls\.forwarded\.header: is a header the gateway reads or sets for another purpose/)]);
  });
});
