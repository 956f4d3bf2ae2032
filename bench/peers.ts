import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { register, stopProcess, waitPort } from './proc.ts';

// The peers users compare with: nginx as a plain reverse proxy (proxy_buffering off), and HAProxy
// checking the same ES256 tokens with jwt_verify. Both get the same worker count as Node's one event
// loop by default (BENCH_PEER_WORKERS), so req/s compare per core; both keep upstream connections alive.

export interface Peer {
  readonly name: string;
  readonly version: string;
  readonly port: number;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

function version(cmd: string, args: string[], pattern: RegExp): string | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error !== undefined) return undefined;
  return pattern.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)?.[1];
}

async function launch(name: string, v: string, port: number, child: ChildProcess, exitSignal: NodeJS.Signals): Promise<Peer> {
  register(child, exitSignal);
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString('utf8')).slice(-4_000)));
  child.stdout?.on('data', (d: Buffer) => (log = (log + d.toString('utf8')).slice(-4_000)));
  const exited = new Promise<boolean>((resolve) => child.once('exit', () => resolve(false)));
  const up = await Promise.race([waitPort(port, 10_000), exited]);
  if (!up) {
    await stopProcess(child, 1_000);
    throw new Error(`${name} did not start: ${log}`);
  }
  return { name, version: v, port, process: child, stop: () => stopProcess(child, 3_000) };
}

export function nginxVersion(): string | undefined {
  return version('nginx', ['-v'], /nginx\/(\S+)/);
}

export async function startNginx(dir: string, port: number, upstreamPort: number, workers: number): Promise<Peer> {
  const v = nginxVersion() as string;
  const prefix = join(dir, 'nginx');
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(conf, `${process.getuid?.() === 0 ? 'user root;\n' : ''}daemon off;
worker_processes ${workers};
worker_rlimit_nofile 65536;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 65s;
  upstream mcp { server 127.0.0.1:${upstreamPort}; keepalive 256; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://mcp;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 3600s;
    }
  }
}
`);
  const child = spawn('nginx', ['-p', prefix, '-c', conf, '-e', join(prefix, 'logs', 'error.log')], { stdio: ['ignore', 'pipe', 'pipe'] });
  return launch('nginx', v, port, child, 'SIGTERM');
}

export function haproxyVersion(): string | undefined {
  return version('haproxy', ['-v'], /version (\d+\.\d+[.\d]*)/i);
}

export function haproxyHasJwt(v: string | undefined): boolean {
  if (v === undefined) return false;
  const [major, minor] = v.split('.').map(Number) as [number, number];
  return major > 2 || (major === 2 && minor >= 6);
}

/** HAProxy with jwt_verify (ES256, PEM public key) plus iss, aud, exp and scope from jwt_payload_query. */
export async function startHaproxy(dir: string, port: number, upstreamPort: number, workers: number, jwt: { pem: string; issuer: string; audience: string; scope: string }): Promise<Peer> {
  const v = haproxyVersion() as string;
  const base = join(dir, 'haproxy');
  mkdirSync(base, { recursive: true });
  const pemFile = join(base, 'idp-es256.pem');
  writeFileSync(pemFile, jwt.pem);
  const conf = join(base, 'haproxy.cfg');
  writeFileSync(conf, `global
  nbthread ${workers}
  maxconn 4096

defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 3600s
  timeout http-keep-alive 65s

frontend mcp
  bind 127.0.0.1:${port}
  # cheap checks first, then the ES256 signature with the IdP's public key
  http-request set-var(txn.bearer) http_auth_bearer
  http-request deny deny_status 401 unless { var(txn.bearer) -m found }
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
  http-request deny deny_status 401 unless { var(txn.alg) -m str ES256 }
  http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('$.iss')
  http-request deny deny_status 401 unless { var(txn.iss) -m str ${jwt.issuer} }
  http-request set-var(txn.aud) var(txn.bearer),jwt_payload_query('$.aud')
  http-request deny deny_status 401 unless { var(txn.aud) -m str ${jwt.audience} }
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
  http-request set-var(txn.now) date()
  http-request deny deny_status 401 if { var(txn.exp),sub(txn.now) -m int le 0 }
  http-request set-var(txn.scope) var(txn.bearer),jwt_payload_query('$.scope')
  http-request deny deny_status 403 unless { var(txn.scope) -m sub ${jwt.scope} }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"${pemFile}") -m int 1 }
  http-request del-header authorization
  default_backend mcp

backend mcp
  http-reuse always
  server upstream 127.0.0.1:${upstreamPort}
`);
  const check = spawnSync('haproxy', ['-c', '-q', '-f', conf], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`haproxy config rejected: ${check.stderr}${check.stdout}`);
  const child = spawn('haproxy', ['-db', '-f', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  return launch('haproxy', v, port, child, 'SIGKILL');
}
