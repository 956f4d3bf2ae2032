import { Writable } from 'node:stream';
import { createLogger } from '../src/observe/log.ts';
import { AuditChain, lineHash } from '../src/observe/audit-chain.ts';
import { generateGatewayJwk, loadGatewayKeys, writeKeyFile } from '../src/identity/keys.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Per-line cost of the tamper-evident audit chain (issue 24 §5): the hash alone, and a chained
// decision line against the same line unchained, both through pino into a sink.
const N = Number(process.env['AUDIT_BENCH_LINES'] ?? 200_000);

function decision(i: number): Record<string, string | number | undefined> {
  return {
    event: 'decision', requestId: `req-${i}`, traceparent: undefined, upstream: 'files', httpMethod: 'POST', rpcMethod: 'tools/call',
    target: 'read_file', decision: 'allow', reason: undefined, rule: 'tools[0]', condition: undefined, conditionFault: undefined, status: 200,
    iss: 'https://idp.example.com', sub: 'alice@example.com', clientId: 'client-1234', durationMs: 3, upstreamMs: 1.25,
  };
}

function perLine(label: string, run: (i: number) => void): number {
  for (let i = 0; i < 20_000; i++) run(i); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) run(i);
  const us = Number(process.hrtime.bigint() - t0) / 1000 / N;
  process.stdout.write(`${label.padEnd(40)} ${us.toFixed(2)} µs/line\n`);
  return us;
}

const sink = new Writable({ write: (_c, _e, cb) => cb() });
const logger = createLogger({ level: 'info', destination: sink });
const dir = mkdtempSync(join(tmpdir(), 'audit-bench-'));
await writeKeyFile(join(dir, 'k.jwk'), await generateGatewayJwk('EdDSA'));
const keys = await loadGatewayKeys(join(dir, 'k.jwk'), 'bench');
const chain = new AuditChain({ logger, now: Date.now, signer: () => keys.signer, settings: () => ({ checkpointLines: 1_000_000_000, checkpointSeconds: 3600 }) });

const hashOnly = perLine('lineHash (canonical JSON + SHA-256)', (i) => void lineHash({ ...decision(i), chain: chain.id, seq: i, prev: 'x'.repeat(43), ts: 0 }));
const plain = perLine('pino line, unchained', (i) => logger.info(decision(i), 'decision'));
const chained = perLine('chained line', (i) => chain.append(decision(i), 'decision'));
// A checkpoint (one EdDSA signature by jose) is paid once per checkpointLines lines.
const t0 = process.hrtime.bigint();
for (let i = 0; i < 200; i++) await chain.seal();
process.stdout.write(`${'checkpoint (sign + write)'.padEnd(40)} ${(Number(process.hrtime.bigint() - t0) / 1000 / 200).toFixed(1)} µs each\n`);
process.stdout.write(`chain overhead per line: ${(chained - plain).toFixed(2)} µs (hash ${hashOnly.toFixed(2)} µs)\n`);
rmSync(dir, { recursive: true, force: true });
