// config/demo.yaml on free ports with a temporary key directory: the real demo stack for tests.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { startDemoStack, type DemoStack } from '../../src/demo/stack.ts';
import { createLogger } from '../../src/observe/log.ts';
import { freePorts } from '../helpers/ports.ts';

/** `append`: YAML added at the end, which is inside demo.yaml's last section (authorizationServer). */
export async function demoConfigFile(append = ''): Promise<string> {
  const [gateway, admin, issuer, server] = await freePorts(4);
  const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-issuer-demo-'));
  const text = readFileSync('config/demo.yaml', 'utf8')
    .replaceAll('127.0.0.1:8080', `127.0.0.1:${gateway}`).replace('port: 8080', `port: ${gateway}`)
    .replace('port: 9090', `port: ${admin}`)
    .replaceAll('127.0.0.1:9400', `127.0.0.1:${issuer}`).replace('port: 9400', `port: ${issuer}`)
    .replaceAll('127.0.0.1:3001', `127.0.0.1:${server}`)
    .replaceAll('./.demo/', `${dir}/`);
  const file = join(dir, 'demo.yaml');
  writeFileSync(file, text + append);
  return file;
}

export async function startTestDemo(append = ''): Promise<{ readonly stack: DemoStack; close(): Promise<void> }> {
  const file = await demoConfigFile(append);
  const stack = await startDemoStack(file, createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }) }));
  return {
    stack,
    async close() {
      await stack.close();
      rmSync(dirname(file), { recursive: true, force: true });
    },
  };
}
