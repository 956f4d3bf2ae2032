import type { IncomingMessage } from 'node:http';
import { rawHeader } from '../lib/raw-header.ts';
import { deny, type Denial } from '../reasons.ts';

export interface BearerToken {
  readonly kind: 'bearer';
  /** RFC 6750 `Bearer`, or RFC 9449 §7.1 `DPoP` (the token must then be proven with a DPoP proof). */
  readonly scheme: 'bearer' | 'dpop';
  readonly token: string;
}

// RFC 7515 §7.1 compact serialisation: three base64url segments, no padding (SC-004..007). The
// signature may not be empty: an unsecured JWS is never an access token (SC-019, SC-027).
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
// RFC 6750 §2.1 b64token, used for opaque (introspected) tokens.
const B64TOKEN = /^[A-Za-z0-9\-._~+\/]+=*$/;
// What `.` in a regular expression does not match: the characters that end the header's token text.
const LINE_TERMINATOR = /[\n\r\u2028\u2029]/;

/**
 * Header → token, no crypto (oauth4webapi habit: syntax before keys). Exactly one Authorization header
 * with the Bearer or DPoP scheme; any other carrier is ignored for authentication and, beside a header token,
 * refused as "more than one method" (RFC 6750 §3.1).
 */
export function readBearer(req: IncomingMessage, query: URLSearchParams | undefined, maxTokenBytes: number, allowOpaque: boolean): BearerToken | Denial {
  // Node keeps only the first Authorization header in req.headers: count the raw ones (SC-091).
  const { count, value } = rawHeader(req, 'authorization');
  const queryToken = query !== undefined && hasCredentialParameter(query);
  if (count > 1) return deny('token_duplicate');
  if (value === undefined) return deny('token_missing');
  // RFC 9110 §11.1: the scheme is case-insensitive; RFC 6750 §2.1: "Bearer" 1*SP b64token. The scheme
  // ends at the first space; only the two accepted names matter (toLowerCase maps no other
  // character onto their letters), so any other text before it, a scheme-less value or another scheme
  // (Basic, Token), carries no access token (SC-095, SC-183).
  const space = value.indexOf(' ');
  const scheme = (space === -1 ? value : value.slice(0, space)).toLowerCase();
  if (scheme !== 'bearer' && scheme !== 'dpop') return queryToken ? deny('credentials_conflict') : deny('token_missing');
  let start = space === -1 ? value.length : space;
  while (value.charCodeAt(start) === 0x20) start++;
  const token = value.slice(start);
  // One pass over the (long) token: a compact JWS has no line terminator, so it is also the rest of a
  // well-formed value; anything else is looked at again only off the JWT path.
  const jws = COMPACT_JWS.test(token);
  // The grammar's token is any text without a line terminator: with one, the value has no token at all.
  if (!jws && LINE_TERMINATOR.test(token)) return queryToken ? deny('credentials_conflict') : deny('token_missing');
  if (queryToken) return deny('credentials_conflict');
  if (token.length > maxTokenBytes) return deny('token_too_large');
  if (token === '') return deny('token_malformed');
  // RFC 9449 §7.1: the DPoP scheme's token68 has the b64token syntax of RFC 6750 §2.1.
  const kind = 'bearer';
  if (jws) return { kind, scheme, token };
  if (allowOpaque && B64TOKEN.test(token) && !token.includes('.')) return { kind, scheme, token };
  return deny('token_malformed');
}

// Query parameters named like a credential, in any case: never forwarded, never a second method.
const CREDENTIAL_PARAMETERS = new Set(['access_token', 'id_token', 'refresh_token', 'token', 'api_key', 'apikey', 'client_secret', 'assertion', 'bearer', 'authorization']);

function hasCredentialParameter(query: URLSearchParams): boolean {
  for (const [key, value] of query) {
    if (namesCredential(key)) return true;
    // Rack and older Python and Go parsers also split on ';': x=1;access_token=… names a credential there.
    if (!key.includes(';') && !value.includes(';')) continue;
    for (const part of `${key}=${value}`.split(';')) if (namesCredential(part.split('=', 1)[0] as string)) return true;
  }
  return false;
}

// qs (Express's query parser) and PHP read access_token[]=… and access_token[0]=… as access_token, and
// PHP makes leading spaces vanish and ".", " " and an unclosed "[" in a name into "_" (access.token,
// access+token, access[token → access_token): each of these names a credential to some upstream.
const NAME_PUNCTUATION = /[. []/;

function namesCredential(key: string): boolean {
  const name = key.toLowerCase();
  if (CREDENTIAL_PARAMETERS.has(name)) return true;
  if (!NAME_PUNCTUATION.test(name)) return false;
  const trimmed = name.replace(/^ +/, '');
  const bracket = trimmed.indexOf('[');
  const base = bracket === -1 ? trimmed : trimmed.slice(0, bracket);
  return CREDENTIAL_PARAMETERS.has(base.replace(/[. ]/g, '_')) || CREDENTIAL_PARAMETERS.has(trimmed.replace(/[. []/g, '_'));
}
