// Loaded with NODE_OPTIONS=--import=<this file> into MCP clients that cannot send a bearer token
// themselves (the conformance runner in server mode). It adds
// `Authorization: Bearer $WARDEN_BEARER_TOKEN` to every request to $WARDEN_BEARER_ORIGIN that has
// none, through global fetch, through undici's global dispatcher (which `undici.request` uses
// directly, e.g. the dns-rebinding scenario) and through node:http's `request` with an options
// object (the 2026-07-28 header-validation scenarios send header values fetch would refuse). Requests to any other origin are untouched, so
// the token never leaves for a server it was not issued for.
import http from 'node:http';
import { getGlobalDispatcher, setGlobalDispatcher, type Dispatcher } from 'undici';

const token = process.env['WARDEN_BEARER_TOKEN'];
const origin = process.env['WARDEN_BEARER_ORIGIN'];

type DispatchHeaders = Dispatcher.DispatchOptions['headers'];

function hasAuthorization(headers: DispatchHeaders): boolean {
  if (headers === undefined || headers === null) return false;
  if (Array.isArray(headers)) {
    // A flat [name, value, name, value, …] list.
    for (let i = 0; i < headers.length; i += 2) if (String(headers[i]).toLowerCase() === 'authorization') return true;
    return false;
  }
  if (Symbol.iterator in headers) {
    for (const [name] of headers as Iterable<[string, unknown]>) if (name.toLowerCase() === 'authorization') return true;
    return false;
  }
  return Object.keys(headers).some((name) => name.toLowerCase() === 'authorization');
}

function withAuthorization(headers: DispatchHeaders, value: string): DispatchHeaders {
  if (hasAuthorization(headers)) return headers;
  if (headers === undefined || headers === null) return { authorization: value };
  if (Array.isArray(headers)) return [...(headers as string[]), 'authorization', value];
  if (Symbol.iterator in headers) return [...(headers as Iterable<[string, string | string[]]>), ['authorization', value]] as unknown as DispatchHeaders;
  return { ...headers, authorization: value };
}

function originOf(value: string | URL | undefined): string | undefined {
  if (value === undefined) return undefined;
  return URL.parse(String(value))?.origin;
}

if (token !== undefined && token !== '' && origin !== undefined) {
  const bearer = `Bearer ${token}`;
  const target = new URL(origin).origin;

  const fetchOriginal = globalThis.fetch;
  globalThis.fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = input instanceof Request ? input.url : String(input);
    if (originOf(url) !== target) return fetchOriginal(input, init);
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    if (!headers.has('authorization')) headers.set('authorization', bearer);
    return fetchOriginal(input, { ...init, headers });
  };

  const base = getGlobalDispatcher();
  setGlobalDispatcher(base.compose((dispatch) => (options, handler) => {
    if (originOf(options.origin) !== target) return dispatch(options, handler);
    return dispatch({ ...options, headers: withAuthorization(options.headers, bearer) }, handler);
  }));

  const httpRequest = http.request;
  const patched = (...args: unknown[]): http.ClientRequest => {
    const [options] = args;
    if (typeof options === 'object' && options !== null && !(options instanceof URL)) {
      const o = options as http.RequestOptions;
      const at = `http://${o.hostname ?? o.host ?? 'localhost'}:${String(o.port ?? 80)}`;
      if (originOf(at) === target && !hasAuthorization(o.headers as DispatchHeaders)) {
        args[0] = { ...o, headers: { ...(o.headers as Record<string, string>), authorization: bearer } };
      }
    }
    return (httpRequest as (...a: unknown[]) => http.ClientRequest)(...args);
  };
  http.request = patched as typeof http.request;
}
