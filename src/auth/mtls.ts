import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Config } from '../config/compile.ts';
import { rawHeader } from '../lib/raw-header.ts';

/**
 * The RFC 8705 §3.1 `x5t#S256` of the client certificate this request comes with (base64url SHA-256 of
 * its DER), or undefined when there is none the gateway can vouch for.
 */
export type CertificateThumbprint = (req: IncomingMessage) => string | undefined;

const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;
const B64URL_SHA256 = /^[A-Za-z0-9_-]{43}$/;
const MAX_FORWARDED_BYTES = 16_384;

/**
 * Where a client certificate is learnt: from a named trusted hop's header (a mesh that terminated TLS),
 * else from this connection's own TLS handshake. A connection from a trusted hop is judged by the header
 * alone: its own certificate is the hop's, not the client's. Nobody else's header is ever read.
 */
export function createCertificateSource(config: Config): CertificateThumbprint {
  const forwarded = config.mtls.forwarded;
  const hops = forwarded === undefined ? undefined : trustedHops(forwarded.trustedHops);
  const fromListener = config.listen.tls?.clientCaFile !== undefined;
  const bySocket = new WeakMap<object, string | undefined>();
  return (req) => {
    if (forwarded !== undefined && hops !== undefined && isTrustedHop(hops, req.socket.remoteAddress)) {
      const { count, value } = rawHeader(req, forwarded.header);
      // One copy only: two would mean someone before the hop set it too.
      if (count !== 1 || value === undefined || value.length > MAX_FORWARDED_BYTES) return undefined;
      return forwarded.format === 'xfcc' ? xfccThumbprint(value) : B64URL_SHA256.test(value) ? value : undefined;
    }
    if (!fromListener) return undefined;
    const socket = req.socket as TLSSocket;
    if (bySocket.has(socket)) return bySocket.get(socket);
    const thumbprint = socketThumbprint(socket);
    bySocket.set(socket, thumbprint);
    return thumbprint;
  };
}

// Only a certificate that chained to the configured CA counts (with clientCertificate: optional, Node
// still hands over one it did not verify).
function socketThumbprint(socket: TLSSocket): string | undefined {
  if (typeof socket.getPeerCertificate !== 'function' || socket.authorized !== true) return undefined;
  const raw = socket.getPeerCertificate().raw as Buffer | undefined;
  return raw === undefined || raw.length === 0 ? undefined : createHash('sha256').update(raw).digest('base64url');
}

/** Addresses and CIDRs as a BlockList (lint has checked every entry). */
export function trustedHops(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, prefix] = entry.split('/') as [string, string | undefined];
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return list;
}

/** Whether one trusted-hop entry is an IP address or CIDR BlockList can take. */
export function hopProblem(entry: string): string | undefined {
  const [address, prefix, extra] = entry.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || extra !== undefined) return 'must be an IP address or CIDR (10.0.0.0/8, fd00::/8)';
  if (prefix !== undefined && (!/^\d{1,3}$/.test(prefix) || Number(prefix) > (family === 4 ? 32 : 128))) return 'has an invalid prefix length';
  // A hop that is every address is every client: the header would be believed from anyone.
  if (prefix !== undefined && Number(prefix) === 0) return 'covers every address: the certificate header would be believed from any client';
  return undefined;
}

function isTrustedHop(hops: BlockList, remote: string | undefined): boolean {
  if (remote === undefined) return false;
  // An IPv4 peer on a dual-stack socket reads as ::ffff:a.b.c.d.
  const v4 = remote.startsWith('::ffff:') && isIP(remote.slice(7)) === 4 ? remote.slice(7) : undefined;
  if (v4 !== undefined) return hops.check(v4, 'ipv4');
  return hops.check(remote, isIP(remote) === 6 ? 'ipv6' : 'ipv4');
}

/**
 * Envoy x-forwarded-client-cert: comma-separated elements, one per proxy, of `;`-separated key=value
 * pairs (values may be quoted). The last element is the one the nearest hop (the trusted one) added about
 * its own client; its Hash is the hex SHA-256 of that certificate's DER, turned into x5t#S256.
 */
export function xfccThumbprint(value: string): string | undefined {
  const elements = splitOutsideQuotes(value, ',');
  const last = elements?.[elements.length - 1];
  if (last === undefined) return undefined;
  const pairs = splitOutsideQuotes(last, ';');
  if (pairs === undefined) return undefined;
  const hashes = pairs.map((p) => p.trim()).filter((p) => /^hash=/i.test(p)).map((p) => p.slice(5).replace(/^"(.*)"$/, '$1'));
  if (hashes.length !== 1 || !HEX_SHA256.test(hashes[0] as string)) return undefined;
  return Buffer.from(hashes[0] as string, 'hex').toString('base64url');
}

// Splits on `sep` outside double quotes (with \" escapes); undefined for an unterminated quote.
function splitOutsideQuotes(value: string, sep: string): string[] | undefined {
  const out: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (c === sep && !quoted) {
      out.push(value.slice(start, i));
      start = i + 1;
    }
  }
  if (quoted) return undefined;
  out.push(value.slice(start));
  return out;
}
