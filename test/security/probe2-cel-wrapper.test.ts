import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, PUBLIC_URL, startGateway, type StartedGateway } from '../helpers/gateway.ts';

// Review probe (wip-review2), FAIL-OPEN: @bufbuild/cel's value conversion treats any JS object with a
// string `$typeName` as a protobuf message. A JSON argument object {"$typeName":"google.protobuf.StringValue",
// "value":"/docs/x"} is the string "/docs/x" to the condition, but an object to the upstream; a top-level
// {"$typeName":"google.protobuf.Struct","fields":{…},"path":"/etc/shadow"} shows the condition `fields`
// and the upstream `path`. So an allow rule's `when` holds for arguments the upstream reads otherwise,
// and a deny rule guarded by has() does not apply. The gateway must hand CEL plain data only.

let idp: TestIdp;
let upstream: TestUpstream;
let gw: StartedGateway;

beforeAll(async () => {
  idp = await TestIdp.start();
  upstream = await TestUpstream.start({ jsonResponse: true });
  gw = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    publicUrl: PUBLIC_URL,
    issuers: [{ name: 'idp', issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'], clockSkewSeconds: 0 }],
    upstreams: [{
      name: 'mcp', path: '/mcp', target: `${upstream.url}/mcp`, issuers: ['idp'], scopes: ['mcp:tools'], default: 'deny',
      rules: [
        { method: 'tools/call', tool: 'read_file', deny: true, when: 'has(args.recursive) && args.recursive == true' },
        { method: 'tools/call', tool: 'read_file', when: 'args.path.startsWith("/docs/")' },
      ],
    }],
    identity: { signingKeyFile: 'gateway.jwk' },
  });
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
  await idp?.close();
});

async function read(args: string): Promise<number> {
  const token = await idp.token(AUD, { scope: 'mcp:tools' });
  const res = await request(`${gw.url}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
    body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":${args}}}`,
  });
  await res.body.text();
  return res.statusCode;
}

describe('probe2: CEL sees the arguments the upstream reads ($typeName objects)', () => {
  it('control: a plain path outside /docs/ is refused', async () => {
    upstream.reset();
    expect(await read('{"path":"/etc/shadow"}')).toBe(403);
    expect(upstream.calls()).toEqual([]);
  });

  it('a top-level Struct-shaped arguments object does not let /etc/shadow through an allow rule for /docs/', async () => {
    upstream.reset();
    const status = await read('{"$typeName":"google.protobuf.Struct","fields":{"path":{"$typeName":"google.protobuf.Value","kind":{"case":"stringValue","value":"/docs/x"}}},"path":"/etc/shadow"}');
    expect(upstream.calls()).toEqual([]);
    expect(status).not.toBe(200);
  });

  it('a wrapper-shaped path value is not the string the condition compares', async () => {
    upstream.reset();
    const status = await read('{"path":{"$typeName":"google.protobuf.StringValue","value":"/docs/x"}}');
    expect(upstream.calls()).toEqual([]);
    expect(status).not.toBe(200);
  });

  it('a deny rule guarded by has() still applies when the arguments carry a $typeName', async () => {
    upstream.reset();
    const status = await read('{"$typeName":"google.protobuf.Struct","fields":{"path":{"$typeName":"google.protobuf.Value","kind":{"case":"stringValue","value":"/docs/x"}}},"path":"/docs/x","recursive":true}');
    expect(upstream.calls()).toEqual([]);
    expect(status).not.toBe(200);
  });
});
