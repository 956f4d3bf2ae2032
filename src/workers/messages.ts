// The primary ↔ worker protocol of `serve --workers` (cluster IPC). prom-client's metric requests
// travel on the same channel under their own types. Workers never read the config file: they load the
// text the primary validated, so every worker serves the same bytes, and a worker started while the
// file is broken (a restart) starts on the last good config.

export type ToWorker =
  | { readonly type: 'mcp-warden:status'; readonly id: number }
  | { readonly type: 'mcp-warden:reload'; readonly id: number; readonly text: string }
  | { readonly type: 'mcp-warden:config'; readonly text: string }
  | { readonly type: 'mcp-warden:shutdown' };

export type FromWorker =
  | { readonly type: 'mcp-warden:config-request' }
  | { readonly type: 'mcp-warden:listening'; readonly port: number }
  | { readonly type: 'mcp-warden:status'; readonly id: number; readonly ready: boolean; readonly readiness: Record<string, unknown> }
  | { readonly type: 'mcp-warden:reload'; readonly id: number; readonly ok: boolean };

export function isMessage<T extends { readonly type: string }>(raw: unknown): raw is T {
  return typeof raw === 'object' && raw !== null && typeof (raw as { type?: unknown }).type === 'string' && (raw as { type: string }).type.startsWith('mcp-warden:');
}
