import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { TestIdp } from '../helpers/idp.ts';
import { AUD, AUD_OTHER, PUBLIC_URL, startGateway, type StartedGateway } from '../helpers/gateway.ts';

// SC-191 (issue 15, points 8-9): a listing answer reaches the client only parsed and filtered by the
// gateway, or as a 502. The upstream is a raw node:http server writing hand-crafted bytes; the client
// side reads the raw bytes and parses them with an independent SSE parser (eventsource-parser, the
// one under the MCP SDK client), and no hidden name may appear anywhere in what it received.

type Respond = (req: IncomingMessage, body: string, res: ServerResponse) => void;
let idp: TestIdp;
let upstream: Server;
let gw: StartedGateway;
let respond: Respond = (_req, _body, res) => res.end();
const received: { method: string; body: string }[] = [];

const HIDDEN = ['delete_repo', 'admin_reset', 'other_tool', 'secret_prompt', 'file:///etc/shadow', 'file:///{path}', 'file:///d{x}'];
const TOOLS = { tools: [{ name: 'search', description: 'finds things, café' }, { name: 'delete_repo', description: 'dé' }, { name: 'admin_reset' }, { name: 'other_tool' }] };
const PROMPTS = { prompts: [{ name: 'summarize' }, { name: 'secret_prompt' }] };
const RESOURCES = { resources: [{ uri: 'file:///docs/a.md', name: 'a' }, { uri: 'file:///etc/shadow', name: 'shadow' }] };
const TEMPLATES = { resourceTemplates: [{ uriTemplate: 'file:///docs/{name}', name: 'doc' }, { uriTemplate: 'file:///{path}', name: 'any' }, { uriTemplate: 'file:///d{x}', name: 'd' }, { uriTemplate: 'file:///docs/{+rest}', name: 'docs-deep' }] };
const listing = (id: unknown, result: unknown = TOOLS): string => JSON.stringify({ jsonrpc: '2.0', id, result });
const TOOLS_LIST = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}';

beforeAll(async () => {
  idp = await TestIdp.start();
  upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      received.push({ method: req.method ?? '', body });
      respond(req, body, res);
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const issuers = ['idp'];
  gw = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    publicUrl: PUBLIC_URL,
    issuers: [{ name: 'idp', issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'] }],
    limits: { maxListingBytes: 64 * 1024 },
    upstreams: [
      {
        name: 'mcp', path: '/mcp', target: `${url}/mcp`, issuers, scopes: ['mcp:tools'], default: 'deny',
        tools: [{ name: 'search' }, { name: 'delete_*', scopes: ['mcp:admin'] }, { name: 'admin_reset', deny: true }],
        rules: [
          { method: 'tools/list' }, { method: 'prompts/list' }, { method: 'resources/list' }, { method: 'resources/templates/list' },
          { method: 'prompts/get', prompt: 'summarize' }, { method: 'resources/read', resource: 'file:///docs/' },
        ],
      },
      // No rules, default allow: listings cannot differ per caller, so nothing is parsed.
      { name: 'other', path: '/other-mcp', target: `${url}/mcp`, issuers, scopes: ['mcp:tools'] },
    ],
    identity: { signingKeyFile: 'gateway.jwk' },
  });
});
afterAll(async () => {
  await gw?.close();
  upstream?.closeAllConnections();
  upstream?.close();
  await idp?.close();
});

interface Got { readonly status: number; readonly type: string; readonly text: string; readonly events: EventSourceMessage[] }

/** One request through the gateway; the client's view: its raw bytes, decoded, and SSE-parsed. */
async function send(body: string | undefined, options: { path?: string; method?: 'GET' | 'POST'; headers?: Record<string, string> } = {}): Promise<Got> {
  const token = await idp.token(options.path === '/other-mcp' ? AUD_OTHER : AUD, { scope: 'mcp:tools' });
  const res = await request(gw.url + (options.path ?? '/mcp'), {
    method: options.method ?? 'POST',
    headers: { authorization: `Bearer ${token}`, accept: 'application/json, text/event-stream', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
    ...(body === undefined ? {} : { body }),
  });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  // The client's decoding (fetch / TextDecoderStream: UTF-8, one BOM stripped), then the SDK's SSE parser.
  const text = new TextDecoder().decode(bytes);
  const events: EventSourceMessage[] = [];
  createParser({ onEvent: (e) => events.push(e) }).feed(text);
  for (const name of HIDDEN) expect(bytes.toString('latin1')).not.toContain(name);
  for (const name of HIDDEN) expect(text).not.toContain(name);
  return { status: res.statusCode, type: String(res.headers['content-type'] ?? ''), text, events };
}

/** The upstream writes these pieces one by one, each after the previous one left (a few ms apart). */
function writes(pieces: readonly (string | Buffer)[], status = 200, headers: Record<string, string> = { 'content-type': 'text/event-stream' }): Respond {
  return (_req, _body, res) => {
    res.writeHead(status, headers);
    res.flushHeaders();
    let i = 0;
    const next = (): void => {
      if (i === pieces.length) return void res.end();
      res.write(pieces[i++] as string | Buffer);
      setTimeout(next, 2);
    };
    next();
  };
}

const resultOf = (data: string): Record<string, { name?: string; uri?: string; uriTemplate?: string }[]> => (JSON.parse(data) as { result: Record<string, { name?: string }[]> }).result;
const toolNames = (data: string): (string | undefined)[] => (resultOf(data)['tools'] ?? []).map((t) => t.name);

describe('listing filter: every SSE framing the WHATWG rules allow', () => {
  const j = listing(1);
  const pretty = JSON.stringify(JSON.parse(j), null, 2).split('\n');
  const framings: [string, (string | Buffer)[]][] = [
    ['LF line ends', [`event: message\nid: e1\ndata: ${j}\n\n`]],
    ['CRLF line ends', [`event: message\r\nid: e1\r\ndata: ${j}\r\n\r\n`]],
    ['CR line ends', [`event: message\rid: e1\rdata: ${j}\r\r`]],
    ['CR, LF and CRLF mixed in one event', [`id: e1\r\nevent: message\rdata: ${j}\n\r\n`]],
    // Read as two line ends, the CR/LF split would end the event after its first data line.
    ['a CR ending one write and the LF starting the next (one line end)', [`data: ${j.slice(0, 17)}\r`, `\ndata: ${j.slice(17)}\r`, '\n\r', '\n']],
    ['a UTF-8 BOM at stream start', [Buffer.concat([Buffer.from([0xef, 0xbb]), Buffer.from([0xbf])]), `data: ${j}\n\n`]],
    ['multi-line data, joined with LF', [pretty.map((l) => `data: ${l}\n`).join('') + '\n']],
    ['`data` without a colon and `data:` without a space', [`data\ndata:${j}\n\n`]],
    ['comments, one of them naming hidden tools', [': keep-alive\n', `: delete_repo\ndata: ${j}\n: admin_reset other_tool\n\n`]],
    ['id, retry, event fields and unknown fields (a capitalised DATA is unknown)', [`retry: 1500\nid: 42\nevent: message\nx-tool: delete_repo\nDATA: ${listing(9)}\ndata: ${j}\n\n`]],
    ['events with no data before the listing', ['id: only-id\n\n', 'event: ping\n\n', 'retry: 10\n\n', `data: ${j}\n\n`]],
  ];

  it.each(framings)('SC-191 %s: filtered, and nothing else reaches the client', async (_name, pieces) => {
    respond = writes(pieces);
    const before = received.length;
    const got = await send(TOOLS_LIST);
    expect(received.slice(before)).toEqual([{ method: 'POST', body: TOOLS_LIST }]);
    expect(got.status).toBe(200);
    expect(got.type).toBe('text/event-stream');
    expect(got.events.map((e) => toolNames(e.data))).toEqual([['search']]);
    // Multi-byte text survives the parse and re-emission intact.
    expect(resultOf(got.events[0]?.data ?? '{}')['tools']?.[0]).toEqual({ name: 'search', description: 'finds things, café' });
  });

  it('SC-191 an event split across writes at every byte, inside multi-byte characters too', async () => {
    const bytes = Buffer.from(`id: é1\r\nevent: résumé\r\ndata: ${j}\r\n\r\n`);
    respond = writes([...bytes].map((b) => Buffer.from([b])));
    const got = await send(TOOLS_LIST);
    expect(got.events).toHaveLength(1);
    expect(got.events[0]?.event).toBe('résumé');
    // An event id outside visible ASCII cannot be bound to the caller (nor sent back as Last-Event-ID):
    // it is dropped, so nobody can resume from it.
    expect(got.events[0]?.id).toBeUndefined();
    expect(toolNames(got.events[0]?.data ?? '')).toEqual(['search']);
  });

  it('SC-191 a final event without a trailing blank line is discarded, as the spec says, not forwarded unparsed', async () => {
    const tail = '{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"tail-marker"}}';
    respond = writes([`data: ${j}\n\n`, `data: ${tail}\n`, `data: ${listing(2)}`]);
    const got = await send(TOOLS_LIST);
    expect(got.events.map((e) => toolNames(e.data))).toEqual([['search']]);
    expect(got.text).not.toContain('tail-marker');
  });

  it('SC-191 an SSE event larger than maxListingBytes cuts the stream; nothing of it reaches the client', async () => {
    respond = writes([`data: ${j}\n\n`, `data: {"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"delete_repo","description":"${'x'.repeat(70 * 1024)}"}]}}`]);
    const res = await request(`${gw.url}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${await idp.token(AUD, { scope: 'mcp:tools' })}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: TOOLS_LIST });
    expect(res.statusCode).toBe(200);
    // Headers were already sent: the cut shows as a broken body. What arrived before it is the first event only.
    const chunks: Buffer[] = [];
    const outcome = await (async () => {
      for await (const c of res.body) chunks.push(c as Buffer);
      return 'ended';
    })().catch(() => 'cut');
    expect(outcome).toBe('cut');
    const text = Buffer.concat(chunks).toString('utf8');
    expect(text).toBe(`data: ${listing(1, { tools: [TOOLS.tools[0]] })}\n\n`);
    expect(text).not.toContain('xxxx');
  });

  it('SC-191 a filtered stream passes each event on as soon as it is complete (no buffering beyond the event)', async () => {
    let clientSaw: () => void = () => undefined;
    const seen = new Promise<void>((r) => {
      clientSaw = r;
    });
    respond = (_req, _b, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${j}\n\n`);
      // The second event only once the client has the first (or after 3 s, which fails the timing below).
      const late = setTimeout(clientSaw, 3_000);
      void seen.then(() => {
        clearTimeout(late);
        res.end(`data: ${listing(2)}\n\n`);
      });
    };
    const started = Date.now();
    const res = await request(`${gw.url}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${await idp.token(AUD, { scope: 'mcp:tools' })}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: TOOLS_LIST });
    let text = '';
    for await (const c of res.body) {
      text += (c as Buffer).toString('utf8');
      clientSaw();
    }
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(text.split('\n\n').filter(Boolean).map((e) => toolNames(e.slice('data: '.length)))).toEqual([['search'], ['search']]);
  });

  it('SC-191 a JSON answer larger than maxListingBytes streams on only while it cannot hold a listing key', async () => {
    const call = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{}}}';
    const big = `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"${'x'.repeat(100 * 1024)}"}]}}`;
    // No key could be a listing's: it passes intact, in pieces as they come.
    respond = writes([big.slice(0, 40 * 1024), big.slice(40 * 1024, 80 * 1024), big.slice(80 * 1024)], 200, { 'content-type': 'application/json' });
    expect((await send(call)).text).toBe(big);
    // A listing key within the bound, where nothing was sent yet: 502.
    respond = writes([`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"delete_repo","d":"${'x'.repeat(100 * 1024)}"}]}}`], 200, { 'content-type': 'application/json' });
    expect((await send(call)).status).toBe(502);
    // A listing key past the bound, split across two writes: the response is cut before its end.
    const late = `{"jsonrpc":"2.0","id":1,"result":{"content":"${'x'.repeat(70 * 1024)}","tools":[{"name":"delete_repo"}]}}`;
    const cut = late.indexOf('"tools"') + 3;
    respond = writes([late.slice(0, 66 * 1024), late.slice(66 * 1024, cut), late.slice(cut)], 200, { 'content-type': 'application/json' });
    const res = await request(`${gw.url}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${await idp.token(AUD, { scope: 'mcp:tools' })}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: call });
    expect(res.statusCode).toBe(200);
    const chunks: Buffer[] = [];
    const outcome = await (async () => {
      for await (const c of res.body) chunks.push(c as Buffer);
      return 'ended';
    })().catch(() => 'cut');
    const text = Buffer.concat(chunks).toString('utf8');
    expect(outcome).toBe('cut');
    expect(late.startsWith(text)).toBe(true);
    expect(text).not.toContain('"tools"');
    expect(text).not.toContain('delete_repo');
  });

  it('SC-191 an upstream without listing rules gets its events unfiltered, re-emitted canonically with the id bound to the caller', async () => {
    const data = listing(1, { tools: [{ name: 'search' }] });
    respond = writes([`: c\rid: 1\rdata: ${data}\r\r`]);
    const got = await send(TOOLS_LIST, { path: '/other-mcp' });
    expect(got.text).toMatch(/^:\n\nid: 1\.[A-Za-z0-9_-]{22}\ndata: /);
    expect(got.events).toHaveLength(1);
    expect(got.events[0]?.data).toBe(data);
  });
});

describe('listing filter: statuses, content types, ids, batches, duplicate keys', () => {
  it.each([201, 203, 299, 500])('a JSON listing under status %i is filtered like a 200', async (status) => {
    respond = writes([listing(1)], status, { 'content-type': 'application/json' });
    const got = await send(TOOLS_LIST);
    expect(got.status).toBe(status);
    expect(toolNames(got.text)).toEqual(['search']);
  });

  it('SC-191 an SSE listing under status 202 is filtered like a 200', async () => {
    respond = writes([`data: ${listing(1)}\n\n`], 202);
    const got = await send(TOOLS_LIST);
    expect(got.status).toBe(202);
    expect(got.events.map((e) => toolNames(e.data))).toEqual([['search']]);
  });

  it.each([
    ['text/plain', listing(1)],
    ['application/x-ndjson', listing(1) + '\n'],
    ['application/vnd.example+json', listing(1)],
    ['text/event-stream; profile=application/json', `data: ${listing(1)}\n\n`],
    ['application/json; charset=utf-16le', Buffer.from(listing(1), 'utf16le')],
    ['application/json; charset=iso-8859-1', listing(1)],
    [undefined, listing(1)],
  ] as const)('SC-191 an answer with content type %s the gateway cannot read with certainty is a 502', async (type, body) => {
    respond = (_req, _b, res) => {
      res.writeHead(200, type === undefined ? {} : { 'content-type': type });
      res.end(body);
    };
    const before = received.length;
    const got = await send(TOOLS_LIST);
    expect(received.length).toBe(before + 1);
    expect(got.status).toBe(502);
    expect(JSON.parse(got.text)).toMatchObject({ error: 'bad_gateway', reason: 'upstream_unavailable' });
  });

  it('SC-191 a compressed answer is a 502, and the gateway asked for none', async () => {
    let acceptEncoding: string | undefined;
    respond = (req, _b, res) => {
      acceptEncoding = req.headers['accept-encoding'];
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync(listing(1)));
    };
    const got = await send(TOOLS_LIST, { headers: { 'accept-encoding': 'gzip' } });
    expect(acceptEncoding).toBeUndefined();
    expect(got.status).toBe(502);
  });

  it('SC-191 a media type in capitals is still parsed and filtered', async () => {
    respond = writes([`data: ${listing(1)}\n\n`], 200, { 'content-type': 'Text/Event-Stream' });
    const got = await send(TOOLS_LIST);
    expect(got.events.map((e) => toolNames(e.data))).toEqual([['search']]);
  });

  it('SC-191 an answer under id "1" to request 1 (another id type), or an unknown id, is filtered all the same', async () => {
    respond = writes([listing('1')], 200, { 'content-type': 'application/json' });
    expect(toolNames((await send(TOOLS_LIST)).text)).toEqual(['search']);
    respond = writes([`data: ${listing('1')}\n\ndata: ${listing(77)}\n\n`]);
    expect((await send(TOOLS_LIST)).events.map((e) => toolNames(e.data))).toEqual([['search'], ['search']]);
  });

  it('SC-191 a batch answer (2025-03-26) has every listing in it filtered, JSON and SSE', async () => {
    const batch = JSON.stringify([1, 2, 3, 4].map((id, i) => ({ jsonrpc: '2.0', id, method: ['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list'][i] })));
    const answer = `[${listing(1)},${listing(2, PROMPTS)},${listing(3, RESOURCES)},${listing(4, TEMPLATES)}]`;
    const expected = [{ tools: [TOOLS.tools[0]] }, { prompts: [{ name: 'summarize' }] }, { resources: [RESOURCES.resources[0]] }, { resourceTemplates: [TEMPLATES.resourceTemplates[0], TEMPLATES.resourceTemplates[3]] }];
    const headers = { 'mcp-protocol-version': '2025-03-26' };
    respond = writes([answer], 200, { 'content-type': 'application/json' });
    const json = await send(batch, { headers });
    expect(json.status).toBe(200);
    expect((JSON.parse(json.text) as { result: unknown }[]).map((m) => m.result)).toEqual(expected);
    respond = writes([`data: ${answer}\n\n`]);
    const sse = await send(batch, { headers });
    expect((JSON.parse(sse.events[0]?.data ?? '[]') as { result: unknown }[]).map((m) => m.result)).toEqual(expected);
  });

  it('SC-191 a duplicate-key answer reaches the client only as the re-serialisation of what was filtered', async () => {
    const tricky = '{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"delete_repo"}]},"result":{"tools":[{"name":"admin_reset"}],"tools":[{"name":"other_tool","name":"search"}]}}';
    respond = writes([tricky], 200, { 'content-type': 'application/json' });
    const json = await send(TOOLS_LIST);
    expect(json.text).toBe('{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"}]}}');
    respond = writes([`data: ${tricky}\n\n`]);
    const sse = await send(TOOLS_LIST);
    expect(sse.text).toBe('data: {"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"}]}}\n\n');
  });

  it('SC-191 a listing JSON.parse would change (an integer beyond 2^53) is refused, not altered', async () => {
    respond = writes(['{"jsonrpc":"2.0","id":9007199254740993,"result":{"tools":[{"name":"search"}]}}'], 200, { 'content-type': 'application/json' });
    expect((await send(TOOLS_LIST)).status).toBe(502);
  });

  it('SC-191 resources/templates/list keeps a template only when every URI it expands to may be read', async () => {
    respond = writes([listing(1, TEMPLATES)], 200, { 'content-type': 'application/json' });
    const got = await send('{"jsonrpc":"2.0","id":1,"method":"resources/templates/list"}');
    expect(resultOf(got.text)['resourceTemplates']?.map((t) => t.uriTemplate)).toEqual(['file:///docs/{name}', 'file:///docs/{+rest}']);
  });
});

describe('listing filter: answers that move to another stream', () => {
  it('SC-191 a tools/list answer on the GET stream is filtered by its shape', async () => {
    respond = writes([': open\n\n', `id: g1\ndata: ${listing(1)}\n\n`, `data: ${listing(2, PROMPTS)}\n\n`]);
    const before = received.length;
    const got = await send(undefined, { method: 'GET', headers: { accept: 'text/event-stream' } });
    expect(received.slice(before)).toEqual([{ method: 'GET', body: '' }]);
    expect(got.status).toBe(200);
    expect(got.events.map((e) => resultOf(e.data))).toEqual([{ tools: [TOOLS.tools[0]] }, { prompts: [{ name: 'summarize' }] }]);
  });

  it('SC-191 a listing inside the JSON answer to a tools/call is filtered by its shape', async () => {
    const callBody = '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"search","arguments":{}}}';
    respond = writes([`[${listing(1)},{"jsonrpc":"2.0","id":5,"result":{"content":[]}}]`], 200, { 'content-type': 'application/json' });
    const got = await send(callBody);
    expect(got.status).toBe(200);
    expect((JSON.parse(got.text) as { result: unknown }[]).map((m) => m.result)).toEqual([{ tools: [TOOLS.tools[0]] }, { content: [] }]);
  });

  it('SC-191 an answer that holds no listing field passes byte for byte, big integers and all', async () => {
    const text = '{"jsonrpc":"2.0","id":5,"result":{"content":[{"type":"text","text":"n"}],"n":9007199254740993}}';
    respond = writes([text], 200, { 'content-type': 'application/json' });
    const got = await send('{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"search","arguments":{}}}');
    expect(got.text).toBe(text);
  });
});
