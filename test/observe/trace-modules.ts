// Run as a child process by traces.test.ts: builds a gateway with tracing off or on (argv[2]) and
// prints, as JSON, the @opentelemetry packages its module graph resolved.
import { registerHooks } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const packages = new Set<string>();
registerHooks({
  resolve(specifier, context, next) {
    const resolved = next(specifier, context);
    const m = /node_modules\/(@opentelemetry\/[^/]+)\//.exec(resolved.url);
    if (m?.[1] !== undefined) packages.add(m[1]);
    return resolved;
  },
});
const { loadConfigText } = await import('../../src/config/compile.ts');
const { createGateway } = await import('../../src/gateway.ts');
const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-trace-modules-'));
const yaml = [
  'publicUrl: http://127.0.0.1:8080',
  'issuers: [{ name: idp, issuer: http://127.0.0.1:1, jwksUri: http://127.0.0.1:1/jwks, algorithms: [ES256] }]',
  'upstreams: [{ name: mcp, path: /mcp, target: http://127.0.0.1:2/mcp, issuers: [idp] }]',
  `identity: { signingKeyFile: ${join(dir, 'gateway.jwk')} }`,
  ...(process.argv[2] === 'on' ? ['telemetry: { traces: { otlpEndpoint: http://127.0.0.1:3/v1/traces } }'] : []),
  '',
].join('\n');
const gateway = await createGateway(loadConfigText(yaml));
await gateway.close();
rmSync(dir, { recursive: true, force: true });
process.stdout.write(JSON.stringify([...packages].sort()));
