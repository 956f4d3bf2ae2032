import type { Config } from '../config/compile.ts';

export interface DemoStep {
  readonly title: string;
  /** Shell lines to paste verbatim; they must run on whatever `node` the user's PATH has (20 on most machines). */
  readonly commands: string;
  readonly note?: string;
}

/**
 * The copy-paste steps from client registration to a tool call. Only plain JavaScript reaches the
 * user's own `node`; mcp-warden itself runs through `npx`, which puts the project's Node 24 (the
 * `node` devDependency, needed to run the TypeScript sources) first on PATH.
 */
export function demoSteps(config: Config, issuerUrl: string): readonly DemoStep[] {
  const u = config.upstreams[0];
  if (u === undefined) return [];
  const mcp = u.audience;
  const json = (field: string): string => `node -pe 'JSON.parse(require("fs").readFileSync(0)).${field}'`;
  return [
    {
      title: 'Register a client (RFC 7591; open on loopback only; its secret expires, see README):',
      commands: `REG=$(curl -s ${issuerUrl}/reg -H 'content-type: application/json' \\
  -d '{"client_name":"me","grant_types":["client_credentials"],"response_types":[],"token_endpoint_auth_method":"client_secret_basic","scope":"${u.allScopes.join(' ')}"}')
CLIENT_ID=$(echo "$REG" | ${json('client_id')})
CLIENT_SECRET=$(echo "$REG" | ${json('client_secret')})`,
    },
    {
      title: 'Get a 5-minute token for this MCP server (RFC 8707 resource = its URL):',
      commands: `TOKEN=$(curl -s -u "$CLIENT_ID:$CLIENT_SECRET" ${issuerUrl}/token \\
  -d grant_type=client_credentials -d resource=${mcp} -d scope=${u.scopes.join('+')} \\
  | ${json('access_token')})`,
    },
    {
      title: 'Call a tool through the gateway:',
      commands: `curl -s ${mcp} -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
  -H 'accept: application/json, text/event-stream' \\
  -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'`,
      note: 'Without the token: 401 with resource_metadata; admin_reset without mcp:demo:admin: 403 naming the scope.',
    },
    {
      title: 'Or bind the token to a key (DPoP, RFC 9449), so a copied token is useless without it:',
      commands: `node examples/dpop-call.mjs ${issuerUrl} "$CLIENT_ID" "$CLIENT_SECRET" ${mcp} '${u.scopes.join(' ')}'`,
      note: 'A valid proof gets 200; the same proof replayed, or the token sent as Bearer, gets 401.',
    },
    {
      title: 'Connect a real MCP client with its own OAuth (mcp-remote registers, opens your browser, the demo issuer consents):',
      commands: `npx mcp-remote-client ${mcp}`,
      note: 'As a stdio server for an MCP host (Claude Desktop, an IDE): npx mcp-remote ' + mcp,
    },
    {
      title: 'Or the MCP Inspector 2.x CLI, also with its own OAuth (it prints the sign-in URL and opens your browser):',
      commands: `npx mcp-inspector --cli ${mcp} --method tools/call --tool-name whoami`,
      note: 'Add --protocol-era modern to speak MCP 2026-07-28; the demo server speaks 2025-11-25 only.',
    },
    {
      title: 'Drill the failure scenarios against this running demo, each upstream also directly, with an evidence report:',
      commands: rehearseCommand(config),
      note: 'Writes rehearse-evidence.md and rehearse-evidence.html; admin_reset is the tool the step-up drill may call.',
    },
  ];
}

/** Every drill: the direct-upstream ones need each upstream's own URL and the gateway's key file (read locally). */
function rehearseCommand(config: Config): string {
  const direct = config.upstreams.map((x) => `--direct-url ${x.name}=${x.target.href}`).join(' ');
  const stepUp = config.upstreams.find((x) => x.name === 'demo') === undefined ? '' : ' --step-up-tool demo/admin_reset';
  return `npx mcp-warden rehearse --config ${config.file} \\
  ${direct} \\
  --gateway-key ${config.identity.signingKeyFile}${stepUp} --report rehearse-evidence`;
}

/** What `npm start` prints. */
export function instructions(config: Config, issuerUrl: string): string {
  const u = config.upstreams[0];
  if (u === undefined) return '';
  const indent = (text: string, by: string): string => text.split('\n').map((line) => by + line).join('\n');
  const steps = demoSteps(config, issuerUrl).map((step, i) =>
    `${i + 1}. ${step.title}\n${indent(step.commands, '   ')}${step.note === undefined ? '' : `\n   ${step.note}`}`);
  return `
mcp-warden demo is running (Ctrl-C stops all three; SIGHUP reloads ${config.file}):
  issuer      ${issuerUrl}            (embedded OAuth 2.1 authorization server)
  gateway     ${config.publicUrl.origin}${u.path}   (every request verified, then forwarded)
  demo server ${u.target.href}     (loopback only; trusts the gateway's signed assertion)
  admin       http://${config.admin.host}:${config.admin.port}/metrics  /healthz  /readyz

${steps.join('\n\n')}

Every allow/deny decision is printed below as it happens: time, decision, upstream, method, target,
reason, subject, client, status, deciding rule. MCP_WARDEN_LOG_LEVEL=warn hides them (README "Log levels").
`;
}
