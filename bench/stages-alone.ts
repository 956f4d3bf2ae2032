// `npm run bench:stages [src dir]`: the stage-by-stage table of `npm run bench` (bench/stages.ts) alone, in
// seconds instead of the full bench's minutes: the bench IdP, the bench's gateway config and token pool
// (N cold tokens, default 4000), S seconds warm (default 2) and S/2 cold. PROF=1 keeps a CPU profile of
// the stages process in /tmp/mcp-warden-stages-prof.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { startIdp } from './idp.ts';
import { freePort, killAllSync, NodeChild } from './proc.ts';
const SRC = resolve(process.argv[2] ?? join(import.meta.dirname, '..', 'src'));
const tmp = mkdtempSync(join(tmpdir(), 'mcp-warden-stages-'));
try {
  const idp = await startIdp();
  const port = await freePort();
  const audience = `http://127.0.0.1:${port}/files/mcp`;
  const file = join(tmp, 'mcp-warden.yaml');
  writeFileSync(file, stringify({
    listen: { host: '127.0.0.1', port }, admin: { host: '127.0.0.1', port: 0 }, publicUrl: `http://127.0.0.1:${port}`,
    issuers: [{ name: 'bench-idp', issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['ES256'], jwks: { cacheMaxAgeSeconds: 3_600 } }],
    upstreams: [{ name: 'files', path: '/files/mcp', target: `http://127.0.0.1:9/mcp`, issuers: ['bench-idp'], scopes: ['mcp:files'], tools: [{ name: 'delete_*', scopes: ['mcp:files:admin'] }, { name: 'search', scopes: ['mcp:files:read'] }] }],
    identity: { signingKeyFile: join(tmp, 'gateway.jwk') },
  }));
  const token = await idp.mint(audience, 'mcp:files mcp:files:read');
  const tokensFile = join(tmp, 'cold.txt');
  writeFileSync(tokensFile, (await idp.mintMany(Number(process.env['N'] ?? 4000), audience, 'mcp:files mcp:files:read')).join('\n') + '\n');
  const stages = await NodeChild.start('stages', join(import.meta.dirname, 'stages.ts'), [], process.env['PROF'] ? { execArgv: ['--cpu-prof', '--cpu-prof-dir=' + (process.env['PROF_DIR'] ?? '/tmp/mcp-warden-stages-prof')] } : {});
  const r = await stages.call<{ stages: string[]; warm: { n: number; nsPerOp: Record<string, number> }; cold: { n: number; nsPerOp: Record<string, number> }; timerNs: number }>('run', { configFile: file, srcDir: SRC, token, tokensFile, seconds: Number(process.env['S'] ?? 2) }, 120_000);
  console.log(`median ns per call; warm: ${r.warm.n} requests, cold: ${r.cold.n}; the timer adds ${r.timerNs} ns`);
  console.log(`${'stage'.padEnd(20)} ${'warm'.padStart(10)} ${'cold'.padStart(12)}`);
  for (const s of r.stages) console.log(s.padEnd(20), String(r.warm.nsPerOp[s]).padStart(10), String(r.cold.nsPerOp[s]).padStart(12));
  await stages.stop();
  await idp.close();
} finally {
  killAllSync();
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(0);
