// MCP 2026-07-28 transports "Value Encoding": Mcp-Name and Mcp-Param-{Name} carry a value that is not
// plain visible ASCII as `=?base64?{Base64 of its UTF-8}?=`. Intermediaries that inspect these values
// MUST decode them before comparing them with the body ("Server Validation").

const PREFIX = '=?base64?';
const SUFFIX = '?=';
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// RFC 9110 §5.5 field values as the transport allows them plain: visible ASCII, space, tab.
const PLAIN = /^[\x20-\x7e\t]*$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The value a header stands for, as the body would carry it; undefined when the header is invalid:
 * characters outside the plain set, a sentinel whose content is not canonical Base64 (one value must
 * have one spelling, or a header and a body could disagree unnoticed), or bytes that are not UTF-8.
 * A plain value shaped like the sentinel is invalid too: clients MUST encode such a value.
 */
export function decodeHeaderValue(raw: string): string | undefined {
  if (!PLAIN.test(raw)) return undefined;
  const sentinel = raw.startsWith(PREFIX) && raw.endsWith(SUFFIX) && raw.length >= PREFIX.length + SUFFIX.length;
  if (!sentinel) return raw;
  const encoded = raw.slice(PREFIX.length, raw.length - SUFFIX.length);
  if (!BASE64.test(encoded)) return undefined;
  const bytes = Buffer.from(encoded, 'base64');
  if (bytes.toString('base64') !== encoded) return undefined; // stray bits in the last character
  try {
    return UTF8.decode(bytes);
  } catch {
    return undefined;
  }
}
