import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { forwardedNames, upstreamRequestHeaders } from '../../src/identity/request-headers.ts';

function request(rawHeaders: string[]): IncomingMessage {
  const req = new IncomingMessage(new Socket());
  req.rawHeaders = rawHeaders;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    req.headers[name] = req.headers[name] === undefined ? rawHeaders[i + 1] : `${req.headers[name] as string}, ${rawHeaders[i + 1] as string}`;
  }
  return req;
}

describe('upstream request headers (allow-list)', () => {
  it('reads names in any case, the same on the first request and on every later one with those names', () => {
    const allowed = forwardedNames(['X-Tenant']);
    const raw = ['ACCEPT', 'application/json', 'X-TENANT', 't1', 'Mcp-Param-Query', 'q', 'X-MCP-Identity', 'forged', 'AUTHORIZATION', 'Bearer t', 'Impersonate-User', 'root'];
    for (let i = 0; i < 3; i++) {
      const out = upstreamRequestHeaders(request([...raw]), allowed);
      expect({ ...out }).toEqual({ accept: 'application/json', 'x-tenant': 't1', 'mcp-param-query': 'q' });
    }
  });

  it('still drops a header the client lists in Connection, and keeps the judged ones', () => {
    const out = upstreamRequestHeaders(request(['Connection', 'User-Agent, MCP-Protocol-Version', 'User-Agent', 'ua', 'MCP-Protocol-Version', '2025-06-18']), forwardedNames([]));
    expect({ ...out }).toEqual({ 'mcp-protocol-version': '2025-06-18' });
  });

  it('forwards a long or rare header name the same whether or not its lower-case form is kept', () => {
    const long = `Mcp-Param-${'X'.repeat(200)}`;
    const out = upstreamRequestHeaders(request([long, 'v', long, 'w']), forwardedNames([]));
    expect({ ...out }).toEqual({ [long.toLowerCase()]: ['v', 'w'] });
  });
});
