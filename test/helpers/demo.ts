import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from './ports.ts';

/** config/demo.yaml, moved to free ports and a temp key directory. */
export async function demoConfig(): Promise<string> {
  const [gateway, admin, issuer, server] = await freePorts(4);
  const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-demo-'));
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
