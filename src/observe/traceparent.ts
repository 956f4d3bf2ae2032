// W3C Trace Context (https://www.w3.org/TR/trace-context/), the part the gateway needs when tracing
// is off: it forwards the client's trace context only when it parses, so an upstream never reads a
// value the gateway did not understand (the invariant of ARCHITECTURE.md applies to headers too).

// §3.2.2: version 00 is exactly version-traceid-parentid-flags in lowercase hex. A later version may
// add fields this gateway cannot check; it is not forwarded.
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_PARENT = '0'.repeat(16);

// §3.3.1.3: a key is simple (lowercase, digits, _ - * /) or tenant@system; a value is printable ASCII
// without , and =, not ending in a space.
const MEMBER = /^(?:[a-z][_0-9a-z*/-]{0,255}|[a-z0-9][_0-9a-z*/-]{0,240}@[a-z][_0-9a-z*/-]{0,13})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}$/;
const MAX_MEMBERS = 32;
// §3.3.1.5: platforms keep at least 512 characters; longer lists are not forwarded at all.
const MAX_TRACESTATE = 512;

/** True for a version-00 traceparent whose trace id and parent id are not all zeros (§3.2.2.3, §3.2.2.4). */
export function validTraceparent(value: string): boolean {
  const m = TRACEPARENT.exec(value);
  return m !== null && m[1] !== ZERO_TRACE && m[2] !== ZERO_PARENT;
}

/** The tracestate list joined as one value when every member parses; undefined otherwise. */
export function validTracestate(values: string | readonly string[]): string | undefined {
  const joined = typeof values === 'string' ? values : values.join(',');
  if (joined.length > MAX_TRACESTATE) return undefined;
  // §3.3.1.1: empty members (",,") are allowed and dropped; at most 32 remain.
  const members = joined.split(',').map((m) => m.replace(/^[ \t]+|[ \t]+$/g, '')).filter((m) => m !== '');
  if (members.length > MAX_MEMBERS || !members.every((m) => MEMBER.test(m))) return undefined;
  const keys = new Set(members.map((m) => m.slice(0, m.indexOf('='))));
  // §3.3.1.1: each key at most once.
  return keys.size === members.length ? members.join(',') : undefined;
}

/**
 * Tracing off: the client's traceparent goes upstream only when it is one valid version-00 value, and
 * its tracestate only beside such a traceparent (§3.3.1: tracestate without a valid traceparent is
 * discarded). Anything else is removed rather than passed through.
 */
export function keepValidTraceContext(headers: Record<string, string | string[]>): void {
  const traceparent = headers['traceparent'];
  if (traceparent === undefined) {
    delete headers['tracestate'];
    return;
  }
  if (typeof traceparent !== 'string' || !validTraceparent(traceparent)) {
    delete headers['traceparent'];
    delete headers['tracestate'];
    return;
  }
  const tracestate = headers['tracestate'];
  if (tracestate === undefined) return;
  const kept = validTracestate(tracestate);
  if (kept === undefined) delete headers['tracestate'];
  else headers['tracestate'] = kept;
}
