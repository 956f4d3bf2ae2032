import { AGENTIC } from './controls.ts';
import type { Drill, DrillContext } from './drill.ts';
import { challenge, mcpCall } from './http.ts';
import { clientCredentials, register, type Client } from './tokens.ts';

/** RFC 6750 §3: the scopes a 403 insufficient_scope challenge names. */
export function challengeScopes(header: string): string[] | undefined {
  return /\bscope="([^"]*)"/.exec(header)?.[1]?.split(' ').filter((s) => s !== '');
}

/**
 * Step-up (#18 point 3): a token with the upstream's base scopes calls the tool → 403
 * insufficient_scope naming a scope; a token asked for with that scope → 200. The tool is really
 * called the second time, so the operator names one that is safe to call (--step-up-tool).
 */
export const stepUp: Drill = {
  id: 'step-up', title: 'step-up', controls: [AGENTIC],
  async run(ctx) {
    const named = ctx.target.stepUpTool;
    if (named === undefined) return ctx.record(this.title, 'skip', 'not applicable: the drill calls a tool; name one that is safe to call with --step-up-tool <upstream>/<tool>');
    const u = ctx.config.upstreams.find((x) => x.name === named.upstream);
    if (u === undefined) return ctx.record(this.title, 'fail', `--step-up-tool: no upstream named ${named.upstream}`);
    const tokenEndpoint = (await ctx.metadata())?.token_endpoint;
    const client = await ownClient(ctx, u.allScopes);
    if (client === undefined || tokenEndpoint === undefined) return ctx.record(this.title, 'skip', 'no client to obtain tokens with');
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: named.tool, arguments: {} } });
    const base = await mcpCall(ctx.urlOf(u), await clientCredentials(tokenEndpoint, client, u.audience, u.scopes), body);
    const scopes = challengeScopes(challenge(base));
    if (base.status !== 403 || !challenge(base).includes('error="insufficient_scope"') || scopes === undefined) {
      return ctx.record(this.title, 'fail', `with the base scopes (${u.scopes.join(' ')}) ${named.tool} answered ${base.status}, not 403 insufficient_scope with a scope`);
    }
    let stepped: string;
    try {
      stepped = await clientCredentials(tokenEndpoint, client, u.audience, [...new Set([...u.scopes, ...scopes])]);
    } catch (err) {
      return ctx.record(this.title, 'fail', `403 named ${scopes.join(' ')}, but the issuer would not issue it: ${(err as Error).message}`);
    }
    const after = await mcpCall(ctx.urlOf(u), stepped, body);
    ctx.record(this.title, after.status === 200 ? 'pass' : 'fail', `403 insufficient_scope naming ${scopes.join(' ')} → token with it → ${after.status} from ${named.tool}`);
  },
};

/** A client of its own (its own rate-limit and quota budget) when the issuer registers; else the run's. */
async function ownClient(ctx: DrillContext, scopes: readonly string[]): Promise<Client | undefined> {
  const endpoint = (await ctx.metadata())?.registration_endpoint;
  if (ctx.target.client === undefined && endpoint !== undefined) {
    const registered = await register(endpoint, scopes, ctx.config.authorizationServer?.registration?.initialAccessToken);
    if (typeof registered !== 'string') return registered;
  }
  return (await ctx.client()).client;
}
