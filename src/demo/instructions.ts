import type { Config } from '../config/compile.ts';

/** What `npm start` prints: copy-paste steps from client registration to a tool call. */
export function instructions(config: Config, issuerUrl: string): string {
  const u = config.upstreams[0];
  if (u === undefined) return '';
  const mcp = u.audience;
  const scope = u.scopes.join(' ');
  return `
mcp-warden demo is running (Ctrl-C stops all three):
  issuer      ${issuerUrl}            (embedded OAuth 2.1 authorization server)
  gateway     ${config.publicUrl.origin}${u.path}   (every request verified, then forwarded)
  demo server ${u.target.href}     (loopback only; trusts the gateway's signed assertion)
  admin       http://${config.admin.host}:${config.admin.port}/metrics  /healthz  /readyz

1. Register a client (RFC 7591; open on loopback only):
   REG=$(curl -s ${issuerUrl}/reg -H 'content-type: application/json' \\
     -d '{"client_name":"me","grant_types":["client_credentials"],"response_types":[],"token_endpoint_auth_method":"client_secret_basic","scope":"${u.allScopes.join(' ')}"}')
   CLIENT_ID=$(echo "$REG" | node -pe 'JSON.parse(require("fs").readFileSync(0)).client_id')
   CLIENT_SECRET=$(echo "$REG" | node -pe 'JSON.parse(require("fs").readFileSync(0)).client_secret')

2. Get a 5-minute token for this MCP server (RFC 8707 resource = its URL):
   TOKEN=$(curl -s -u "$CLIENT_ID:$CLIENT_SECRET" ${issuerUrl}/token \\
     -d grant_type=client_credentials -d resource=${mcp} -d scope=${scope} \\
     | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')

3. Call a tool through the gateway:
   curl -s ${mcp} -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
     -H 'accept: application/json, text/event-stream' \\
     -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'
   Without the token: 401 with resource_metadata; admin_reset without mcp:demo:admin: 403 naming the scope.

4. Drill the failure scenarios against this running demo:
   node bin/mcp-warden.js rehearse --config config/demo.yaml
`;
}
