import { describe, expect, it } from 'vitest';
import { AUD } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { rawExchange, type RawReply } from '../helpers/wire.ts';
import { RPC } from '../helpers/rpc.ts';

// Request framing the gateway and its upstream could disagree on. Node's http client normalises these
// away, so every request here is written byte for byte on a raw socket.

const fx = useGatewayFixture();

const raw = (payload: string, maxMs = 3_000): Promise<RawReply> => rawExchange(fx.port, payload, maxMs);

/** A request to another upstream, hidden in a body: it must never reach any upstream. */
const SMUGGLED = 'POST /other-mcp HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}';

function expectParserRefusal(reply: RawReply): void {
  expect(reply.statuses).toEqual([400]);
  expect(reply.text).toMatch(/\r\nconnection: close\r\n/i);
  expect(reply.closedByServer).toBe(true);
  expect(fx.upstream.bytes).toBe(0);
  expect(fx.upstream.received).toHaveLength(0);
}

describe('request smuggling', () => {
  it('SC-110 refuses Content-Length together with Transfer-Encoding (CL.TE and TE.CL) and closes the connection', async () => {
    const good = await fx.idp.token(AUD);
    const head = `POST /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${good}\r\nContent-Type: application/json\r\n`;
    for (const framing of [
      'Content-Length: 4\r\nTransfer-Encoding: chunked\r\n',
      'Transfer-Encoding: chunked\r\nContent-Length: 4\r\n',
    ]) {
      fx.upstream.reset();
      expectParserRefusal(await raw(`${head}${framing}\r\n0\r\n\r\n${SMUGGLED}`));
    }
  });

  it('SC-111 refuses obfuscated or ambiguous Transfer-Encoding and Content-Length headers', async () => {
    const good = await fx.idp.token(AUD);
    const head = `POST /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${good}\r\nContent-Type: application/json\r\n`;
    for (const framing of [
      'Transfer-Encoding: chunked, identity\r\n',
      'Transfer-Encoding : chunked\r\n', // CVE-2021-22959: space before the colon
      'Transfer-Encoding: xchunked\r\n',
      'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n',
      'Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n',
      'Transfer-Encoding: identity\r\n',
      'Content-Length : 4\r\n', // CVE-2024-27982: space before the colon
      'Content-Length: 4\r\nContent-Length: 40\r\n',
      'Content-Length: +4\r\n',
    ]) {
      fx.upstream.reset();
      expectParserRefusal(await raw(`${head}${framing}\r\n0\r\n\r\n${SMUGGLED}`));
    }
  });

  it('SC-111 reads Transfer-Encoding:<TAB>chunked (RFC 9110 §5.6.3 OWS) as exactly chunked: the hidden request is its own, refused request', async () => {
    // HTAB is legal whitespace, so this is plain chunked framing. What matters is that the gateway and the
    // upstream cannot disagree: the client's framing never crosses (the body is re-framed by the gateway),
    // and what follows the last chunk is parsed as the next request, authenticated like any other.
    const good = await fx.idp.token(AUD);
    fx.upstream.reset();
    const reply = await raw(
      `POST /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${good}\r\nContent-Type: application/json\r\nTransfer-Encoding:\tchunked\r\n\r\n` +
        `${Buffer.byteLength(RPC).toString(16)}\r\n${RPC}\r\n0\r\n\r\n${SMUGGLED}`,
    );
    expect(reply.statuses).toEqual([200, 401]);
    expect(reply.text).toContain('"reason":"token_missing"');
    expect(fx.upstream.received).toHaveLength(1);
    const received = fx.upstream.received[0];
    expect(received?.url).toBe('/echo');
    expect(received?.body).toBe(RPC);
    expect(received?.headers.has('transfer-encoding')).toBe(false);
    expect(received?.headers.get('content-length')).toEqual([String(Buffer.byteLength(RPC))]);
    expect(fx.upstream.received.some((r) => r.url.startsWith('/echo/other'))).toBe(false);
  });

  it('SC-115 refuses a second Host header or a Host with userinfo', async () => {
    const good = await fx.idp.token(AUD);
    for (const hosts of [
      'Host: gw.test\r\nHost: evil.test\r\n',
      'Host: evil.test\r\nhost: gw.test\r\n',
      'Host: gw.test@evil.test\r\n',
      'Host: evil.test:80@gw.test\r\n',
      'Host: gw.test/evil\r\n',
    ]) {
      fx.upstream.reset();
      const reply = await raw(`POST /mcp HTTP/1.1\r\n${hosts}Authorization: Bearer ${good}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(RPC)}\r\n\r\n${RPC}`);
      expect(reply.statuses).toEqual([400]);
      const body = reply.text.slice(reply.text.indexOf('\r\n\r\n') + 4);
      expect(JSON.parse(body)).toEqual({ error: 'invalid_request', error_description: 'invalid host header', reason: 'host_invalid' });
      expect(fx.upstream.bytes).toBe(0);
    }
    // Positive control: the same request with one plain Host goes through.
    fx.upstream.reset();
    const ok = await raw(`POST /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${good}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(RPC)}\r\nConnection: close\r\n\r\n${RPC}`);
    expect(ok.statuses).toEqual([200]);
    expect(fx.upstream.received).toHaveLength(1);
  });
});
