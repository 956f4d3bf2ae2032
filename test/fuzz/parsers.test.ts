import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { IncomingMessage } from 'node:http';
import { readBearer } from '../../src/auth/bearer.ts';
import { createRouter, isSafePath } from '../../src/route/match.ts';
import type { UpstreamConfig } from '../../src/config/compile.ts';
import { RUNS, TIMEOUT_MS } from './runs.ts';
import { compileUpstreams } from '../helpers/policy.ts';

function fakeReq(rawHeaders: string[]): IncomingMessage {
  // readBearer reads rawHeaders only: the raw form is what the HTTP parser hands us.
  return { rawHeaders } as unknown as IncomingMessage;
}

const JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

describe('fuzz: Authorization header parser', () => {
  it('yields a token only for exactly one "Bearer <compact JWS>" or "DPoP <compact JWS>" header, and never throws', () => {
    const headerValue = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.tuple(fc.constantFrom('Bearer', 'bearer', 'BEARER', 'Basic', 'DPoP', 'Bearer:', ''), fc.constantFrom(' ', '  ', '', '\t'), fc.string({ maxLength: 120 })).map(([a, b, c]) => a + b + c),
      fc.tuple(fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/), fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/), fc.stringMatching(/^[A-Za-z0-9_-]{0,20}$/)).map(([h, p, s]) => `Bearer ${h}.${p}.${s}`),
    );
    fc.assert(fc.property(fc.array(headerValue, { maxLength: 3 }), fc.boolean(), (values, queryToken) => {
      const raw = values.flatMap((v) => ['Authorization', v]);
      const result = readBearer(fakeReq(raw), new URLSearchParams(queryToken ? 'access_token=x' : ''), 8192, false);
      if (result.kind === 'bearer') {
        expect(values).toHaveLength(1);
        expect(queryToken).toBe(false);
        const m = /^(bearer|dpop) +(.*)$/i.exec(values[0] as string);
        expect(m?.[2]).toBe(result.token);
        expect(m?.[1]?.toLowerCase()).toBe(result.scheme);
        expect(result.token).toMatch(JWS);
      } else if (values.length > 1) {
        expect(result.reason).toBe('token_duplicate');
      }
    }), { numRuns: RUNS });
  }, TIMEOUT_MS);
});

const route = createRouter(compileUpstreams(`
  - { name: mcp, path: /mcp, target: http://127.0.0.1:1/mcp, issuers: [idp] }
  - { name: other, path: /other-mcp, target: http://127.0.0.1:2/x, issuers: [idp] }
  - { name: deep, path: /a/b/mcp, target: http://127.0.0.1:3/, issuers: [idp] }
`));

describe('fuzz: path normaliser and router', () => {
  it('never routes a path to an upstream whose prefix it does not literally carry, nor a path with tricks', () => {
    const segment = fc.oneof(
      fc.constantFrom('mcp', 'other-mcp', 'a', 'b', '..', '.', '%2e%2e', '%2F', '%5C', '\\', ';x=y', 'MCP', '', '%00', '%c0%ae'),
      fc.stringMatching(/^[A-Za-z0-9._~%;\\-]{0,8}$/),
    );
    fc.assert(fc.property(fc.array(segment, { minLength: 1, maxLength: 6 }), fc.constantFrom('', '?x=1', '?access_token=t'), (segments, query) => {
      const target = '/' + segments.join('/') + query;
      const result = route(target);
      if (result.kind !== 'upstream') return;
      const path = target.split('?')[0] as string;
      const u: UpstreamConfig = result.upstream;
      expect(path === u.path || path.startsWith(u.path + '/')).toBe(true);
      expect(isSafePath(path)).toBe(true);
      expect(path).not.toMatch(/%|\\|;|\/\/|(^|\/)\.\.?(\/|$)/);
      // The upstream receives the target's path below the prefix, unchanged.
      expect(result.upstreamPath.split('?')[0]?.endsWith(path.slice(u.path.length))).toBe(true);
    }), { numRuns: RUNS * 3 });
  }, TIMEOUT_MS);
});
