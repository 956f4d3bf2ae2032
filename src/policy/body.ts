// A JSON-RPC request body is UTF-8 JSON (RFC 8259 §8.1) and nothing else: the gateway admits only a
// body it reads exactly as any upstream parser will, and tells the upstream so with a bare
// `application/json` (README "What the upstream receives is what was judged: request bodies").
import type { IncomingMessage } from 'node:http';
import { rawHeader } from '../lib/raw-header.ts';
import { deny, type Denial, type Reason } from '../reasons.ts';
import { scanJson } from './json-scan.ts';

/** The Content-Type every forwarded body carries: no charset or other parameter to read it otherwise. */
export const FORWARDED_CONTENT_TYPE = 'application/json';

/** Containers nested deeper than this in a message are refused (a bound on the scanner's stack). */
export const MAX_JSON_DEPTH = 128;

// RFC 9110 §5.6.2 token, §5.6.4 quoted-string; one parameter per match, from a `;` on (§5.6.6).
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]|\\\\[\\t \\x20-\\x7e\\x80-\\xff])*"';
const PARAMETER = new RegExp(`[ \\t]*;[ \\t]*(?:(${TOKEN})=(${TOKEN}|${QUOTED}))?`, 'y');
const JSON_MEDIA_TYPE = /^application\/json/i;

/**
 * Header checks before any body byte is read (cheap first): no Content-Encoding on any request, and a
 * POST declares `application/json` once, with no parameter but an optional charset of utf-8.
 */
export function admitBody(req: IncomingMessage): Denial | undefined {
  // RFC 9110 §8.4, §15.5.16: the gateway never forwards a body it did not read. express.json() inflates
  // gzip, deflate and br bodies (and takes "identity", which is no content coding: RFC 9110 §8.4.1),
  // so any Content-Encoding at all is refused, also on a GET or DELETE that should carry no body.
  if (rawHeader(req, 'content-encoding').count > 0) return deny('content_encoding_unsupported');
  if (req.method !== 'POST') return undefined;
  const type = rawHeader(req, 'content-type');
  // Node keeps the first of several Content-Type headers; an upstream may keep another.
  if (type.count !== 1 || type.value === undefined || !isJsonUtf8(type.value)) return deny('media_type_unsupported');
  return undefined;
}

/**
 * `application/json`, any case, then only empty parameters or one `charset` whose value (token or
 * quoted-string) is utf-8 in any case. A charset of utf-7, utf-16 or latin1 makes body-parser decode the
 * same bytes to other text (SC-185); any other parameter is refused rather than guessed at.
 */
export function isJsonUtf8(value: string): boolean {
  if (value === FORWARDED_CONTENT_TYPE) return true; // what nearly every client sends: no parameter to read
  if (!JSON_MEDIA_TYPE.test(value)) return false;
  let at = 'application/json'.length;
  let charset = false;
  while (at < value.length) {
    PARAMETER.lastIndex = at;
    const m = PARAMETER.exec(value);
    if (m === null || m[0].length === 0) return false;
    at += m[0].length;
    const name = m[1];
    if (name === undefined) continue; // an empty parameter: ";" alone (RFC 9110 §5.6.6)
    if (name.toLowerCase() !== 'charset' || charset) return false;
    charset = true;
    if (unquote(m[2] as string).toLowerCase() !== 'utf-8') return false;
  }
  return true;
}

function unquote(v: string): string {
  return v.startsWith('"') ? v.slice(1, -1).replace(/\\(.)/gs, '$1') : v;
}

// fatal: invalid UTF-8 (overlong forms, encoded surrogates, truncated sequences) throws instead of
// becoming U+FFFD; ignoreBOM: a BOM is kept in the text rather than silently dropped, so it can be refused.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The body as text, or undefined when it is not exactly UTF-8 text without a BOM (RFC 8259 §8.1). */
export function decodeBody(body: Buffer): string | undefined {
  // RFC 8259 §8.1: implementations MUST NOT add a byte order mark; one that reads it as text sees U+FEFF.
  if (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) return undefined;
  try {
    return UTF8.decode(body);
  } catch {
    return undefined;
  }
}

/**
 * The faults that let two JSON parsers read one accepted text differently: a repeated key anywhere in
 * the message (first-wins and last-wins parsers see another method, tool or argument), a lone
 * surrogate escape, an escaped U+0000 (where C-string parsers cut a key or value short), a key
 * "__proto__" (which JavaScript copies turn into a prototype), a nesting past MAX_JSON_DEPTH.
 * Refused rather than re-serialised, so the upstream receives the exact bytes the policy judged,
 * big integers included.
 */
export function bodyFault(text: string): { readonly reason: Reason; readonly idUnknown: boolean } | undefined {
  const fault = scanJson(text, MAX_JSON_DEPTH);
  if (fault === undefined) return undefined;
  switch (fault.kind) {
    case 'duplicate_key':
      return { reason: 'json_duplicate_key', idUnknown: fault.key === 'id' };
    case 'lone_surrogate':
    case 'nul':
      return { reason: 'body_encoding_invalid', idUnknown: false };
    case 'proto_key':
      return { reason: 'json_proto_key', idUnknown: false };
    case 'too_deep':
      return { reason: 'rpc_invalid', idUnknown: false };
  }
}
