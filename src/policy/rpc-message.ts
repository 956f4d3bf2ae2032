// What inspecting a JSON-RPC body yields, in a file of its own so that jsonrpc.ts (which reads bodies)
// and mirror.ts (which checks headers against them) both name it without importing each other.
import type { Era } from './era.ts';

export interface RpcMessage {
  readonly kind: 'request' | 'notification' | 'response';
  /** JSON-RPC method; "response" for a client's response to a server request. */
  readonly method: string;
  readonly id: string | number | null;
  /** tools/call and prompts/get: params.name; resources/read: params.uri. */
  readonly name: string | undefined;
  readonly uri: string | undefined;
  /** params.arguments (tools/call, prompts/get): the Mcp-Param-* check and rule conditions (`args`). */
  readonly args: unknown;
  /** params._meta["io.modelcontextprotocol/protocolVersion"] when present (2026-07-28 carries it). */
  readonly metaVersion: unknown;
}

export interface Inspected {
  readonly body: Buffer;
  readonly messages: readonly RpcMessage[];
  readonly batch: boolean;
  /** The request's protocol era: its JSON-RPC errors are numbered by it. */
  readonly era: Era;
}
