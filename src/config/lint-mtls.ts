import type { RawConfig } from './schema.ts';
import { hopProblem } from '../lib/hops.ts';
import { forwardedNames } from '../identity/request-headers.ts';

type Report = (path: readonly (string | number)[], message: string) => void;

/**
 * RFC 8705 settings the schema cannot judge alone: `mtls` needs a source of client certificates, and a
 * forwarded-certificate header must never reach an upstream nor come from anyone but the named hops.
 */
export function lintMtls(raw: RawConfig, err: Report): void {
  const tls = raw.listen.tls;
  if (tls !== undefined && tls.clientCertificate === 'required' && tls.clientCaFile === undefined) {
    err(['listen', 'tls', 'clientCertificate'], 'required needs clientCaFile (the CA client certificates are verified against)');
  }
  const source = tls?.clientCaFile !== undefined || raw.mtls.forwarded !== undefined;
  const noSource = 'mtls needs client certificates: listen.tls.clientCaFile, or mtls.forwarded behind a mesh that terminates TLS';
  raw.issuers.forEach((i, n) => {
    if (i.senderConstraint === 'mtls' && !source) err(['issuers', n, 'senderConstraint'], noSource);
  });
  raw.upstreams.forEach((u, n) => {
    if (u.senderConstraint === 'mtls' && !source) err(['upstreams', n, 'senderConstraint'], noSource);
  });
  const forwarded = raw.mtls.forwarded;
  if (forwarded === undefined) return;
  const header = forwarded.header.toLowerCase();
  // Stripped before forwarding: the allow-list never carries it, and no upstream may ask for it.
  raw.upstreams.forEach((u, n) => {
    if (forwardedNames(u.forwardHeaders).has(header)) err(['upstreams', n, 'forwardHeaders'], `"${forwarded.header}" carries the client certificate (mtls.forwarded.header) and is never forwarded`);
  });
  // Mcp-* names are the MCP transport's (Mcp-Param-* reach every upstream as sent).
  if (['authorization', 'dpop', 'host', raw.identity.header.toLowerCase()].includes(header) || header.startsWith('mcp-')) err(['mtls', 'forwarded', 'header'], 'is a header the gateway reads or sets for another purpose');
  forwarded.trustedHops.forEach((hop, n) => {
    const problem = hopProblem(hop);
    if (problem !== undefined) err(['mtls', 'forwarded', 'trustedHops', n], `"${hop}" ${problem}`);
  });
}
