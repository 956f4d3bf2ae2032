// Every SSE stream the gateway proxies passes through this parser of the WHATWG HTML "Server-sent events" event stream
// format (§9.2.5 parsing, §9.2.6 interpretation) that re-emits every event it dispatched, rebuilt from
// the parsed fields, in one canonical form (LF line ends, `field: value`). The client therefore reads
// exactly the events the gateway read: whatever framing the upstream used (CR, LF, CRLF in any mix,
// a BOM, `data` without a colon, comments, unknown fields), nothing of the upstream's bytes passes
// unparsed. An event still incomplete when the stream ends is not dispatched by the spec, and is not
// forwarded here either. Two rewrites are applied to the parsed fields: event ids are bound to the
// caller (identity/session.ts, so a Last-Event-ID can only resume the caller's own events), and, on an
// upstream whose listings are filtered, each event's data goes through the listing filter.

/** What the gateway changes in each event it re-emits. */
export interface SseRewrite {
  /** The caller's id for an upstream event id; undefined drops the id (the event cannot be resumed from). */
  readonly id: (upstreamId: string) => string | undefined;
  /** The data as the client may see it; undefined drops the event. Absent: data passes as parsed. */
  readonly data?: (data: string) => string | undefined;
}

const LF = 10;
const CR = 13;

/** Thrown when one event grows past the bound: the stream is cut (headers are already sent). */
export class SseEventTooLarge extends Error {}

export class SseEvents {
  readonly #rewrite: SseRewrite;
  readonly #maxPending: number;
  /** Bytes of the line not yet ended (kept as bytes: a UTF-8 character may be split across chunks). */
  #partial: Buffer | undefined;
  #afterCr = false;
  #firstLine = true;
  // The event being built (§9.2.6 buffers).
  #data = '';
  #hasData = false;
  #type = '';
  #id: string | undefined;
  #retry: string | undefined;

  constructor(rewrite: SseRewrite, maxPending: number) {
    this.#rewrite = rewrite;
    this.#maxPending = maxPending;
  }

  /** One chunk of the upstream's stream → the complete events it finished, canonical ('' for none). */
  push(chunk: Buffer): string {
    let out = '';
    let at = 0;
    if (chunk.length === 0) return out;
    // A CR ending the previous chunk and an LF starting this one are one line end (§9.2.5 "end-of-line").
    if (this.#afterCr && chunk[0] === LF) at = 1;
    this.#afterCr = false;
    // Next LF and CR, each searched again only once passed (a chunk of many LF lines stays linear).
    let lf = -2;
    let cr = -2;
    while (at < chunk.length) {
      if (lf !== -1 && lf < at) lf = chunk.indexOf(LF, at);
      if (cr !== -1 && cr < at) cr = chunk.indexOf(CR, at);
      const eol = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
      if (eol < 0) {
        this.#partial = this.#partial === undefined ? Buffer.from(chunk.subarray(at)) : Buffer.concat([this.#partial, chunk.subarray(at)]);
        break;
      }
      const bytes = this.#partial === undefined ? chunk.subarray(at, eol) : Buffer.concat([this.#partial, chunk.subarray(at, eol)]);
      this.#partial = undefined;
      out += this.#line(bytes.toString('utf8'));
      at = eol + 1;
      if (chunk[eol] === CR) {
        if (at === chunk.length) this.#afterCr = true;
        else if (chunk[at] === LF) at++;
      }
    }
    if ((this.#partial?.length ?? 0) + this.#data.length > this.#maxPending) throw new SseEventTooLarge('SSE event too large to inspect');
    return out;
  }

  #line(text: string): string {
    // The UTF-8 decode of the stream strips one leading BOM (§9.2.5).
    let line = text;
    if (this.#firstLine) {
      this.#firstLine = false;
      if (line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    }
    if (line === '') return this.#dispatch();
    if (line.charCodeAt(0) === 0x3a) {
      // A comment: ignored by clients, so only a bare one is passed on, between events (keep-alive).
      return this.#empty() ? ':\n\n' : '';
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 0x20) value = value.slice(1);
    switch (field) {
      case 'data':
        this.#data += value + '\n';
        this.#hasData = true;
        break;
      case 'event':
        this.#type = value;
        break;
      case 'id':
        if (!value.includes('\u0000')) this.#id = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.#retry = value;
        break;
      default: // unknown fields are ignored (§9.2.6)
    }
    return '';
  }

  #empty(): boolean {
    return !this.#hasData && this.#type === '' && this.#id === undefined && this.#retry === undefined;
  }

  /** A blank line: the event as the client will see it, its data filtered; its id bound, its retry kept. */
  #dispatch(): string {
    let out = '';
    if (this.#id !== undefined) {
      // An empty id resets the client's last event id (WHATWG §9.2.6); there is nothing to bind in it.
      const id = this.#id === '' ? '' : this.#rewrite.id(this.#id);
      if (id !== undefined) out += `id: ${id}\n`;
    }
    if (this.#retry !== undefined) out += `retry: ${this.#retry}\n`;
    if (this.#hasData) {
      // On a filtered upstream an MCP event's data is one JSON-RPC message; one that holds a listing
      // field but is not JSON the gateway can read is dropped, never passed on unjudged.
      const parsed = this.#data.slice(0, -1);
      const data = this.#rewrite.data === undefined ? parsed : this.#rewrite.data(parsed);
      if (data !== undefined) {
        if (this.#type !== '') out += `event: ${this.#type}\n`;
        out += 'data: ' + data.split('\n').join('\ndata: ') + '\n';
      }
    }
    this.#data = '';
    this.#hasData = false;
    this.#type = '';
    this.#id = undefined;
    this.#retry = undefined;
    return out === '' ? '' : out + '\n';
  }
}
