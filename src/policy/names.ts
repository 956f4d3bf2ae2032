// The names the policy judges (JSON-RPC methods, tool and prompt names, resource URIs): which ones are
// judgeable at all, and the normalised form a restricting rule also sees (README "Names").

/**
 * Never part of a judgeable name: controls (C0, DEL, C1), format characters (zero-width U+200B..U+200D,
 * U+2060, U+FEFF, bidi controls U+061C, U+200E/F, U+202A..U+202E, U+2066..U+2069, tag characters),
 * line and paragraph separators, other default-ignorable code points (variation selectors, fillers),
 * noncharacters and lone surrogates. Each makes two names look alike, or one name read two ways (UTS 39,
 * Unicode TR36 §2.3).
 */
const FORBIDDEN = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]/u;
const EDGE_SPACE = /^\p{White_Space}|\p{White_Space}$/u;

/** A tool, prompt or resource name the policy can judge: not empty, no forbidden character, no white space at either end. */
export function nameIsSound(name: string): boolean {
  return isPlainName(name) || (name.length > 0 && !FORBIDDEN.test(name) && !EDGE_SPACE.test(name));
}

/**
 * Printable ASCII with no space at either end: sound without the Unicode property look-ups. No ASCII
 * character is in FORBIDDEN's classes but the controls (below U+0020, U+007F), and of ASCII white
 * space only U+0020 is printable.
 */
function isPlainName(name: string): boolean {
  const n = name.length;
  if (n === 0 || name.charCodeAt(0) === 0x20 || name.charCodeAt(n - 1) === 0x20) return false;
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// MCP method names, as every schema revision spells them (schema/2024-11-05 … 2026-07-28 schema.ts):
// lower-case segments joined by "/", words inside a segment joined by "_" (list_changed,
// input_response) or a capital (setLevel, createMessage). Nothing else: no upper-case start, no
// empty segment, no trailing "/", no white space or control character.
const SEGMENT = '[a-z][a-z0-9]*(?:_[a-z0-9]+|[A-Z][a-z0-9]+)*';
const METHOD = new RegExp(`^${SEGMENT}(?:/${SEGMENT})*$`);
const MAX_METHOD_LENGTH = 128;

const KNOWN_METHODS = [
  'initialize', 'ping', 'completion/complete', 'logging/setLevel', 'elicitation/create', 'sampling/createMessage', 'roots/list',
  'tools/list', 'tools/call', 'prompts/list', 'prompts/get',
  'resources/list', 'resources/read', 'resources/subscribe', 'resources/unsubscribe', 'resources/templates/list',
  'tasks/get', 'tasks/list', 'tasks/result', 'tasks/cancel', 'server/discover', 'subscriptions/listen',
  'notifications/initialized', 'notifications/cancelled', 'notifications/progress', 'notifications/message',
  'notifications/roots/list_changed', 'notifications/tools/list_changed', 'notifications/prompts/list_changed',
  'notifications/resources/list_changed', 'notifications/resources/updated', 'notifications/elicitation/complete',
  'notifications/tasks/status', 'notifications/subscriptions/acknowledged',
];
/** A method's spelling with case and word joints erased: `list_changed`, `listChanged` and `listchanged` meet. */
const loose = (method: string): string => method.toLowerCase().replaceAll('_', '');
const KNOWN_BY_LOOSE: ReadonlyMap<string, string> = new Map(KNOWN_METHODS.map((m) => [loose(m), m]));

/**
 * A method inside MCP's method grammar, and spelt exactly as MCP spells it when it loosely meets an MCP
 * method: `logging/setlevel`, `tools/cAll` or `notifications/roots/listChanged` could be read as the
 * real method by an upstream that compares case-insensitively or maps names to handlers, while the
 * policy saw an unknown one.
 */
export function methodIsSound(method: string): boolean {
  return SOUND_KNOWN.has(method) || isSoundMethod(method);
}

function isSoundMethod(method: string): boolean {
  if (method.length > MAX_METHOD_LENGTH || !METHOD.test(method)) return false;
  const known = KNOWN_BY_LOOSE.get(loose(method));
  return known === undefined || known === method;
}

/** The MCP methods that pass isSoundMethod, found once at start-up: a request's method is mostly one of them. */
const SOUND_KNOWN: ReadonlySet<string> = new Set(KNOWN_METHODS.filter(isSoundMethod));

/**
 * The normalised form of a name: Unicode NFKC (fullwidth letters, ligatures, compatibility signs)
 * then a locale-independent case fold. toUpperCase then toLowerCase folds what either an upper- or a
 * lower-casing upstream would merge (ß → ss, ı and ſ → i and s); the final sigma is made
 * context-free so that a pattern folds like the names it matches. Never toLocaleLowerCase: the host
 * locale (tr, az, lt) must not change a decision.
 */
export function fold(name: string): string {
  let upper = false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 0x7f) return name.normalize('NFKC').toUpperCase().toLowerCase().replaceAll('\u03c2', '\u03c3').normalize('NFKC');
    if (c >= 0x41 && c <= 0x5a) upper = true;
  }
  // ASCII: NFKC leaves it as it is and lower-casing is the whole fold; without an A-Z it changes nothing.
  return upper ? name.toLowerCase() : name;
}

const URI_PARTS = /^([A-Za-z][A-Za-z0-9+.-]*:)(\/\/[^/?#]*)?([^?#]*)(.*)$/s;
const ASCII_ESCAPE = /%([0-7][0-9A-Fa-f])/g;
const SLASHES = /\/{2,}/g;

/**
 * The form of a resource URI a rule also judges: ASCII percent-escapes decoded (RFC 3986 §6.2.2.2,
 * and %2F, %5C too: a file server may decode them), `\` read as `/`, repeated slashes merged and dot
 * segments removed from the path (RFC 3986 §5.2.4), then fold(). Coarser than any one server's
 * reading, so a deny on `file:///etc/` judges `file:///docs/..%2Fetc/shadow`, while an allow on
 * `file:///docs/` (which needs both forms) does not let it through.
 */
export function foldUri(uri: string): string {
  // MCP SDK servers look resources up by the WHATWG serialisation (new URL(uri).href), which turns
  // file:/etc/x, file:etc/x and file://localhost/etc/x into file:///etc/x and drops default ports;
  // the folded form starts from it, so a rule meets every spelling such a server resolves alike.
  const whatwg = URL.parse(uri)?.href ?? uri;
  const decoded = whatwg.replace(ASCII_ESCAPE, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))).replaceAll('\\', '/');
  const m = URI_PARTS.exec(decoded);
  if (m === null) return fold(decoded);
  const [, scheme = '', authority = '', path = '', rest = ''] = m;
  return fold(scheme + authority + removeDotSegments(path.replace(SLASHES, '/')) + rest);
}

/** RFC 3986 §5.2.4, on a path without repeated slashes. */
function removeDotSegments(path: string): string {
  if (!path.includes('.')) return path;
  const out: string[] = [];
  const segments = path.split('/');
  const absolute = path.startsWith('/');
  segments.forEach((s, i) => {
    if (s === '..') out.pop();
    else if (s !== '.' && !(i === 0 && absolute)) out.push(s);
    // A final "." or ".." leaves the path ending in "/".
    if ((s === '.' || s === '..') && i === segments.length - 1) out.push('');
  });
  return (absolute ? '/' : '') + out.join('/');
}
