import { createHmac, timingSafeEqual } from 'node:crypto';

const NONCE_LENGTH = 22; // 128 bits, base64url

export interface DpopNonces {
  /** The nonce to hand out now (DPoP-Nonce). */
  current(nowMs: number): string;
  /** True for the current nonce and the previous period's (a client that fetched one just before rotation). */
  accepts(nonce: string, nowMs: number): boolean;
}

/**
 * RFC 9449 §8 server nonces without state: the nonce of a period is a MAC of the period number under a
 * secret derived from the gateway key, so replicas that share the key file hand out and accept the same
 * nonces, and nobody without the key can predict the next one (§8: "unpredictable").
 */
export function createDpopNonces(gatewaySecret: Buffer, rotationSeconds: number): DpopNonces {
  const secret = createHmac('sha256', gatewaySecret).update('mcp-warden dpop-nonce key').digest();
  const periodMs = rotationSeconds * 1000;
  let memo: { period: number; current: string; previous: string } | undefined;
  const nonceOf = (period: number): string => createHmac('sha256', secret).update(`dpop-nonce ${period}`).digest('base64url').slice(0, NONCE_LENGTH);
  const pair = (nowMs: number): { current: string; previous: string } => {
    const period = Math.floor(nowMs / periodMs);
    if (memo?.period !== period) memo = { period, current: nonceOf(period), previous: nonceOf(period - 1) };
    return memo;
  };
  const same = (a: string, b: string): boolean => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
  return {
    current: (nowMs) => pair(nowMs).current,
    accepts(nonce, nowMs) {
      const { current, previous } = pair(nowMs);
      return same(nonce, current) || same(nonce, previous);
    },
  };
}
