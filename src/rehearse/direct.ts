import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import type { Config, UpstreamConfig } from '../config/compile.ts';
import { ConfigError, formatProblem } from '../config/errors.ts';
import { loadGatewayKeys, type GatewayKeys } from '../identity/keys.ts';
import { ASSERTION_TYP } from '../identity/upstream.ts';
import { AGENTIC, IAM } from './controls.ts';
import type { Drill, DrillContext } from './drill.ts';
import { judgeDirect, probeDirect } from './direct-probe.ts';

type Signer = GatewayKeys['signer'];

interface Probe {
  readonly name: string;
  /** undefined: send no assertion at all. */
  readonly assertion: string | undefined;
  readonly accepted: string;
}

/**
 * #19: upstreams proven to check the gateway's assertion. Each upstream given with --direct-url is
 * called directly (never anything else) with a valid assertion (the control: it must be accepted, or
 * the refusals prove nothing), then with none, one for another audience, an expired one and one signed
 * by a key the gateway does not publish: each must be refused (direct-probe.ts says what counts).
 */
export const directUpstream: Drill = {
  id: 'direct-upstream', title: 'direct upstream', controls: [AGENTIC, IAM],
  async run(ctx) {
    const { directUrls, gatewayKeyFile } = ctx.target;
    if (directUrls.size === 0) return ctx.record(this.title, 'skip', 'pass --direct-url <upstream>=<url> and --gateway-key <file> to prove upstreams check the assertion');
    const signer = gatewayKeyFile === undefined ? 'needs --gateway-key <file> (the identity.signingKeyFile of the gateway) to mint assertions' : await readSigner(gatewayKeyFile);
    for (const [name, url] of directUrls) {
      const u = ctx.config.upstreams.find((x) => x.name === name) as UpstreamConfig;
      await drillUpstream(ctx, u, url, signer);
    }
  },
};

async function readSigner(file: string): Promise<Signer | string> {
  // loadGatewayKeys creates an absent file; rehearse must only ever read one.
  if (!existsSync(file)) return `--gateway-key ${file}: no such file`;
  try {
    return (await loadGatewayKeys(file, file)).signer;
  } catch (err) {
    return err instanceof ConfigError ? err.problems.map(formatProblem).join('; ') : `--gateway-key ${file}: ${(err as Error).message}`;
  }
}

async function drillUpstream(ctx: DrillContext, u: UpstreamConfig, url: string, signer: Signer | string): Promise<void> {
  const line = (what: string): string => `direct ${u.name} ${what}`;
  const header = ctx.config.identity.header;
  const missing = await probeDirect(url, header, undefined);
  const verdict = judgeDirect(missing);
  ctx.record(line('no assertion'), verdict.refused ? 'pass' : 'fail', verdict.refused ? `refused: ${verdict.how}` : `${verdict.how}: accepted a call without any assertion, so anyone who reaches it bypasses the gateway`);
  if (typeof signer === 'string') {
    for (const what of ['valid assertion', 'other audience', 'expired assertion', 'foreign key']) ctx.record(line(what), 'skip', signer);
    return;
  }
  const control = judgeDirect(await probeDirect(url, header, await mint(ctx.config, signer, u, u.audience, 0)));
  if (control.refused || control.how.startsWith('inconclusive')) {
    ctx.record(line('valid assertion'), 'fail', `${control.how}: a valid assertion must be accepted, or refusing the others proves nothing (is ${url} this upstream, and the key file this gateway's?)`);
    return;
  }
  ctx.record(line('valid assertion'), 'pass', `accepted (${control.how}): the refusals below are the assertion's doing`);
  const other = otherAudience(ctx.config, u);
  const expiredAgo = 600 - lifetimeOf(ctx.config);
  const evil = await generateKeyPair(signer.alg === 'EdDSA' ? 'Ed25519' : 'ES256');
  const probes: Probe[] = [
    { name: 'other audience', assertion: await mint(ctx.config, signer, u, other, 0), accepted: `accepted an assertion for ${other}` },
    { name: 'expired assertion', assertion: await mint(ctx.config, signer, u, u.audience, -600), accepted: `accepted an assertion that expired ${expiredAgo} s ago` },
    // The gateway's own kid on a key it never had: a verifier must check the signature, not the kid.
    { name: 'foreign key', assertion: await mint(ctx.config, { ...signer, key: evil.privateKey as CryptoKey }, u, u.audience, 0), accepted: 'accepted an assertion signed by a key the gateway does not publish' },
  ];
  const verdicts = await Promise.all(probes.map(async (p) => judgeDirect(await probeDirect(url, header, p.assertion))));
  const signaturesChecked = verdicts[2]?.refused === true;
  probes.forEach((p, i) => {
    const v = verdicts[i] as ReturnType<typeof judgeDirect>;
    if (v.refused) return ctx.record(line(p.name), 'pass', `refused: ${v.how}`);
    const why = p.name === 'other audience' ? (signaturesChecked ? ': validates signatures but not audience' : ': checks neither audience nor signatures') : '';
    ctx.record(line(p.name), 'fail', `${v.how}: ${p.accepted}${why}`);
  });
}

/** Another configured upstream's audience; with a single upstream, one no upstream of this gateway has. */
function otherAudience(config: Config, u: UpstreamConfig): string {
  return config.upstreams.find((x) => x.audience !== u.audience)?.audience ?? `${config.publicUrl.origin}/rehearse-not-an-upstream/mcp`;
}

function lifetimeOf(config: Config): number {
  return Math.min(config.identity.ttlSeconds, 60);
}

/** An assertion shaped exactly like the gateway's (identity/assertion.ts), `shiftSeconds` in time. */
async function mint(config: Config, signer: Signer, u: UpstreamConfig, audience: string, shiftSeconds: number): Promise<string> {
  const iat = Math.floor(Date.now() / 1000) + shiftSeconds;
  const exp = iat + lifetimeOf(config);
  return new SignJWT({ sub: 'mcp-warden-rehearse', client_id: 'mcp-warden-rehearse', scope: u.scopes.join(' '), orig_iss: u.issuers[0]?.issuer ?? config.publicUrl.origin, orig_exp: exp })
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: ASSERTION_TYP })
    .setIssuer(config.publicUrl.origin)
    .setAudience(audience)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .setJti(randomUUID())
    .sign(signer.key);
}
