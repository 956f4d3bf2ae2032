// `npm run bench:stages [src dir]`: the stage-by-stage table of `npm run bench` (bench/stages.ts) alone, in
// seconds instead of the full bench's minutes: the bench IdP, the bench's gateway config and token pool
// (N cold tokens, default 4000), S seconds warm (default 2) and S/2 cold. PROF=1 keeps a CPU profile of
// the stages process in /tmp/mcp-warden-stages-prof.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startIdp } from './idp.ts';
import { freePort, killAllSync, NodeChild } from './proc.ts';
import { BENCH_PATH, BENCH_SCOPE, writeBenchConfig } from './bench-config.ts';
const SRC = resolve(process.argv[2] ?? join(import.meta.dirname, '..', 'src'));
const tmp = mkdtempSync(join(tmpdir(), 'mcp-warden-stages-'));
try {
  const idp = await startIdp();
  const port = await freePort();
  const audience = `http://127.0.0.1:${port}${BENCH_PATH}`;
  const file = join(tmp, 'mcp-warden.yaml');
  writeBenchConfig(file, { port, idp, target: `http://127.0.0.1:9/mcp`, keyFile: join(tmp, 'gateway.jwk') });
  const token = await idp.mint(audience, BENCH_SCOPE);
  const tokensFile = join(tmp, 'cold.txt');
  writeFileSync(tokensFile, (await idp.mintMany(Number(process.env['N'] ?? 4000), audience, BENCH_SCOPE)).join('\n') + '\n');
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
