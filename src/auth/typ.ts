/**
 * RFC 8725 §3.11 explicit typing. By default a token may be untyped, `JWT` or an RFC 9068 access
 * token (`at+jwt`); every other explicit type names a JWT meant for something else — the gateway's
 * own `mcp-identity+jwt` assertion, `secevent+jwt` (RFC 8417), `logout+jwt`, `id+jwt`, `dpop+jwt`
 * (RFC 9449) — and is refused. With the issuer's `typ: at+jwt` only `at+jwt` passes (RFC 9068 §4).
 * Compared case-insensitively with any `application/` prefix removed (RFC 7515 §4.1.9).
 */
export function typAccepted(typ: unknown, required: 'at+jwt' | undefined): boolean {
  if (typ === undefined) return required === undefined;
  if (typeof typ !== 'string') return false;
  const lower = typ.toLowerCase();
  const media = lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
  if (required !== undefined) return media === required;
  return media === 'jwt' || media === 'at+jwt';
}
