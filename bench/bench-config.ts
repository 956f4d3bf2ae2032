import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';

// The gateway config of the single-question bench tools (cpu-ab, bench:stages, bench:verify,
// bench:alloc): the same issuer and upstream as `npm run bench` (run.ts adds its DPoP settings), one
// upstream with a required scope and two per-tool rules, the called tool matching one.

/** The scopes of the bench's tokens: the upstream's and the called tool's. */
export const BENCH_SCOPE = 'mcp:files mcp:files:read';
export const BENCH_PATH = '/files/mcp';

export function writeBenchConfig(file: string, o: { readonly port: number; readonly idp: { readonly issuer: string; readonly jwksUri: string }; readonly target: string; readonly keyFile: string }): void {
  writeFileSync(file, stringify({
    listen: { host: '127.0.0.1', port: o.port }, admin: { host: '127.0.0.1', port: 0 }, publicUrl: `http://127.0.0.1:${o.port}`,
    issuers: [{ name: 'bench-idp', issuer: o.idp.issuer, jwksUri: o.idp.jwksUri, algorithms: ['ES256'], jwks: { cacheMaxAgeSeconds: 3_600 } }],
    upstreams: [{ name: 'files', path: BENCH_PATH, target: o.target, issuers: ['bench-idp'], scopes: ['mcp:files'], tools: [{ name: 'delete_*', scopes: ['mcp:files:admin'] }, { name: 'search', scopes: ['mcp:files:read'] }] }],
    identity: { signingKeyFile: o.keyFile },
  }));
}
