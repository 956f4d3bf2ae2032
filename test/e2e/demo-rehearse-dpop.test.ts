import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/compile.ts';
import { startDemoStack, type DemoStack } from '../../src/demo/stack.ts';
import { createLogger } from '../../src/observe/log.ts';
import { dpopDrill } from '../../src/rehearse/dpop.ts';
import type { DrillResult } from '../../src/rehearse/report.ts';
import { asMetadata, register } from '../../src/rehearse/tokens.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { freePorts } from '../helpers/ports.ts';

// The rehearse DPoP drill (issue 20 point 5) against the one-command demo: its embedded issuer issues a
// DPoP-bound token by client_credentials with a proof, and the gateway must refuse the token without its
// key, with another key, with a reused proof and with a proof for another URL, and accept a valid proof.

/** config/demo.yaml on free ports, with its keys in a temp directory. */
async function demoConfig(): Promise<string> {
  const [gateway, admin, issuer, server] = await freePorts(4);
  const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-demo-dpop-'));
  const text = readFileSync('config/demo.yaml', 'utf8')
    .replaceAll('127.0.0.1:8080', `127.0.0.1:${gateway}`).replace('port: 8080', `port: ${gateway}`)
    .replace('port: 9090', `port: ${admin}`)
    .replaceAll('127.0.0.1:9400', `127.0.0.1:${issuer}`).replace('port: 9400', `port: ${issuer}`)
    .replaceAll('127.0.0.1:3001', `127.0.0.1:${server}`)
    .replaceAll('./.demo/', `${dir}/`);
  const file = join(dir, 'demo.yaml');
  writeFileSync(file, text);
  return file;
}

type Line = Pick<DrillResult, 'drill' | 'status' | 'detail'>;

function collect(): { results: Line[]; record: (drill: string, status: DrillResult['status'], detail: string) => void } {
  const results: Line[] = [];
  return { results, record: (drill, status, detail) => results.push({ drill, status, detail }) };
}

describe('rehearse dpop drill against the demo stack', () => {
  let stack: DemoStack;
  let configFile: string;
  beforeAll(async () => {
    configFile = await demoConfig();
    stack = await startDemoStack(configFile, createLogger({ destination: new Writable({ write: (_c: Buffer, _e, cb) => cb() }) }));
  });
  afterAll(async () => {
    await stack?.close();
    if (configFile !== undefined) rmSync(dirname(configFile), { recursive: true, force: true });
  });

  it('passes: a valid proof gets 200, and every replay of the DPoP-bound token without its proof of possession gets 401', async () => {
    const config = loadConfig(configFile);
    const meta = await asMetadata(stack.issuer.url);
    const client = await register(meta?.registration_endpoint as string, ['mcp:demo'], undefined);
    if (typeof client === 'string') throw new Error(client);
    const { results, record } = collect();
    await dpopDrill(config, config.publicUrl.origin, client, stack.issuer.url, record);
    expect(results).toEqual([{
      drill: 'dpop',
      status: 'pass',
      detail: 'valid proof 200 on demo; without the key (Bearer) 401 dpop_required, without a proof 401 dpop_invalid, another key 401 token_binding_mismatch, reused proof 401 dpop_replayed, another URL 401 dpop_invalid',
    }]);
  }, 60_000);
});

describe('rehearse dpop drill where the issuer has no DPoP', () => {
  const fx = useGatewayFixture();
  it('is skipped as not applicable, naming why', async () => {
    const { results, record } = collect();
    const config = loadConfig(fx.gw.configFile);
    await dpopDrill(config, fx.gw.url, { clientId: 'c', clientSecret: 's' }, fx.idp.issuer, record);
    expect(results).toEqual([{ drill: 'dpop', status: 'skip', detail: 'not applicable: the issuer advertises no ES256 DPoP (dpop_signing_alg_values_supported)' }]);
  });
});
