import { expect } from 'vitest';
import { jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { reasons, type Reason } from '../../src/reasons.ts';
import { PUBLIC_URL, type StartedGateway } from './gateway.ts';
import { gatewayKeySet } from './fixture.ts';
import { postMcp, type McpReply } from './http.ts';
import type { TestUpstream } from './upstream.ts';
import type { Reply } from './wire.ts';

/** The gateway under test and the upstream behind it (a GatewayFixture is one). */
export interface Target {
  readonly gw: StartedGateway;
  readonly upstream: TestUpstream;
}

/** RFC 6750 §3 challenge of a 401 invalid_token at `path`, with the RFC 9728 metadata URL and the upstream's scope. */
export function invalidTokenChallenge(reason: Reason, path = '/mcp'): string {
  return `Bearer resource_metadata="${PUBLIC_URL}/.well-known/oauth-protected-resource${path}", error="invalid_token", error_description="${reasons[reason].description}", scope="mcp:tools"`;
}

/** Not one request, not one byte at the upstream socket (since its last reset). */
export function expectNothingForwarded(upstream: TestUpstream): void {
  expect(upstream.received).toHaveLength(0);
  expect(upstream.bytes).toBe(0);
}

/** A refusal: status, exact challenge (null = none), the reason in the body, and nothing at the upstream socket. */
export function expectRefusedReply(upstream: TestUpstream, reply: Reply, status: number, reason: string, wwwAuthenticate: string | null): void {
  expect(reply.status).toBe(status);
  expect(reply.headers['www-authenticate'] ?? null).toBe(wwwAuthenticate);
  expect(JSON.parse(reply.text)).toMatchObject({ reason });
  expectNothingForwarded(upstream);
}

export interface ProbeOptions {
  /** The gateway's clock, against which the assertion's time claims are verified (default: the wall clock). */
  readonly now?: () => number;
  /** Clear the upstream's record before each refusal, for files whose tests forward and refuse in turn. */
  readonly resetBeforeRefusal?: boolean;
  /** The subject every forwarded assertion must carry. */
  readonly sub?: string;
}

export interface BearerProbe {
  /** POST `body` (default RPC) with the token (none when undefined) to `path` (default /mcp). */
  post(token: string | undefined, path?: string, body?: string): Promise<McpReply>;
  /** 401 invalid_token with the exact challenge and reason, and not one byte at the upstream socket. */
  expectRefused(token: string, reason: Reason, path?: string): Promise<void>;
  /** Positive control: 200; the upstream got exactly one gateway assertion for its own audience, and no token. */
  expectForwarded(token: string, path?: string): Promise<JWTPayload>;
}

/** The bearer-token checks the security tests share, bound to one gateway and its upstream. */
export function bearerProbe(at: Target, options: ProbeOptions = {}): BearerProbe {
  const now = options.now ?? Date.now;
  let gatewayKeys: JWTVerifyGetKey | undefined;
  const post = (token: string | undefined, path = '/mcp', body?: string): Promise<McpReply> => postMcp(at.gw.url, token, path, body);
  return {
    post,
    async expectRefused(token, reason, path = '/mcp') {
      if (options.resetBeforeRefusal === true) at.upstream.reset();
      const r = await post(token, path);
      expect(r.status, `${reason}: ${JSON.stringify(r.body)}`).toBe(401);
      expect(r.challenge).toBe(invalidTokenChallenge(reason, path));
      expect(r.body).toEqual({ error: 'invalid_token', error_description: reasons[reason].description, reason });
      expectNothingForwarded(at.upstream);
    },
    async expectForwarded(token, path = '/mcp') {
      at.upstream.reset();
      const r = await post(token, path);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(at.upstream.received).toHaveLength(1);
      const seen = at.upstream.received[0]?.headers;
      expect(seen?.has('authorization')).toBe(false);
      expect(seen?.get('x-mcp-identity')).toHaveLength(1);
      const assertion = seen?.get('x-mcp-identity')?.[0] as string;
      expect(assertion).not.toContain(token);
      gatewayKeys ??= await gatewayKeySet(at.gw);
      const { payload } = await jwtVerify(assertion, gatewayKeys, { issuer: PUBLIC_URL, audience: PUBLIC_URL + path, typ: 'mcp-identity+jwt', currentDate: new Date(now()) });
      if (options.sub !== undefined) expect(payload.sub).toBe(options.sub);
      return payload;
    },
  };
}
