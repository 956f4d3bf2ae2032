/** A valid JSON-RPC request body for tests that only need a request the policy allows. */
export const RPC = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}';

export const MCP_POST_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' } as const;
