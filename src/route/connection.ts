import type { IncomingMessage, ServerResponse } from 'node:http';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface ConnectionState {
  busy: boolean;
  /** A response said (or the client asked for) Connection: close: nothing after it is served. */
  closing: boolean;
  /** The response being written: once its headers say close, so does the connection. */
  current: ServerResponse | undefined;
  readonly waiting: (() => void)[];
}

const states = new WeakMap<object, ConnectionState>();
const CLOSE = /(?:^|,)\s*close\s*(?:,|$)/i;

/** Whether an answer already sent on this connection ended it: the parser's refusal is then not sent too. */
export function answeredClosing(socket: object): boolean {
  const current = states.get(socket)?.current;
  return current !== undefined && current.headersSent && endsConnection(current);
}

/**
 * One request at a time per connection. Node emits pipelined requests while an earlier one is still
 * being judged, so a request queued behind a refused one (answered with Connection: close) could reach
 * the upstream anyway. RFC 9112 §9.6: after a response with `close`, or a request asking for it, no
 * later request on that connection is processed; here it is not even looked at, and the connection ends.
 */
export function oneRequestAtATime(handle: Handler): Handler {
  return function serialised(req, res) {
    const socket = req.socket;
    let state = states.get(socket);
    if (state === undefined) {
      state = { busy: false, closing: false, current: undefined, waiting: [] };
      states.set(socket, state);
    }
    const conn = state;
    // A request that need not wait (the usual one) runs at once: no closure is made to queue it.
    if (conn.busy) conn.waiting.push(() => run(conn, req, res, handle));
    else run(conn, req, res, handle);
  };
}

function run(conn: ConnectionState, req: IncomingMessage, res: ServerResponse, handle: Handler): void {
  if (conn.closing) {
    // After the earlier answer is flushed, not before: destroy() would drop its unsent bytes.
    req.socket.destroySoon();
    return;
  }
  conn.busy = true;
  conn.current = res;
  if (req.headers.connection !== undefined && CLOSE.test(req.headers.connection)) conn.closing = true;
  res.on('close', () => {
    if (endsConnection(res) || !res.writableFinished) conn.closing = true;
    conn.busy = false;
    conn.current = undefined;
    conn.waiting.shift()?.();
  });
  handle(req, res);
}

/** Whether this response ends its connection (its own Connection: close, or Node's keep-alive rule). */
function endsConnection(res: ServerResponse): boolean {
  if (!res.shouldKeepAlive) return true;
  const header = res.getHeader('connection');
  return typeof header === 'string' && CLOSE.test(header);
}
