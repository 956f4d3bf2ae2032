// `npm run bench:verify [src dir]`: the cold-verify row of `npm run bench` alone, in seconds: the gateway's
// verify stage (authenticate() on a new token each time, then with minting) against raw jose jwtVerify,
// in alternating 100 ms slices of one process (bench/jose-raw.ts `stage`), 50 in flight. N tokens
// (default 20000), S rounds (default 5). PROF=1 keeps a CPU profile of that process in PROF_DIR
// (default /tmp/mcp-warden-verify-prof).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startIdp } from './idp.ts';
import { freePort, killAllSync, NodeChild } from './proc.ts';
import { BENCH_PATH, BENCH_SCOPE, writeBenchConfig } from './bench-config.ts';

const SRC = resolve(process.argv[2] ?? join(import.meta.dirname, '..', 'src'));
// Cold means never cached: the pool must be at least twice the token cache (10,000 by default), cycled.
const TOKENS = Number(process.env['N'] ?? 20_000);
if (TOKENS < 20_000) throw new Error('N must be at least 20000: a smaller pool is served from the token cache, not verified');
const tmp = mkdtempSync(join(tmpdir(), 'mcp-warden-verify-'));
try {
  const idp = await startIdp();
  const port = await freePort();
  const audience = `http://127.0.0.1:${port}${BENCH_PATH}`;
  const configFile = join(tmp, 'mcp-warden.yaml');
  writeBenchConfig(configFile, { port, idp, target: 'http://127.0.0.1:9/mcp', keyFile: join(tmp, 'gateway.jwk') });
  const tokensFile = join(tmp, 'cold.txt');
  writeFileSync(tokensFile, (await idp.mintMany(TOKENS, audience, BENCH_SCOPE)).join('\n') + '\n');
  const profile = process.env['PROF'] ? ['--cpu-prof', `--cpu-prof-dir=${process.env['PROF_DIR'] ?? '/tmp/mcp-warden-verify-prof'}`] : [];
  const jose = await NodeChild.start('jose-raw', join(import.meta.dirname, 'jose-raw.ts'), [], { execArgv: profile });
  const r = await jose.call<{ verify: number; verifyAndMint: number; jose: number; verifyRatio: number; mintRatio: number; rounds: number; ratios: number[] }>('stage', { tokensFile, configFile, srcDir: SRC, seconds: Number(process.env['S'] ?? 5), concurrency: 50, jwk: idp.publicJwk, issuer: idp.issuer, audience }, 120_000);
  console.log(`raw jose ${r.jose.toFixed(0)} ops/s; verify stage ${r.verify.toFixed(0)} ops/s = ${r.verifyRatio.toFixed(3)}× (median of ${r.rounds} rounds); with minting ${r.verifyAndMint.toFixed(0)} ops/s = ${r.mintRatio.toFixed(3)}×`);
  console.log(`verify stage ÷ raw jose per round: ${r.ratios.map((x) => x.toFixed(2)).join(' ')}`);
  await jose.stop();
  await idp.close();
} finally {
  killAllSync();
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(0);
