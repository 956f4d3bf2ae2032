import { isIP } from 'node:net';

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
