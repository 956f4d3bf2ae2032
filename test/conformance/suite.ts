// Runs the @modelcontextprotocol/conformance active server suite three ways against the same
// fixture server: direct, through the gateway with a valid token (injected by bearer-preload.ts),
// and through the gateway with no token. Returns what each run passed and every problem found.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFixtureServer } from './fixture-server.ts';
import { startGatewayStack, type AuditLine } from './stack.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CONFORMANCE_BIN = join(ROOT, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
const PRELOAD = fileURLToPath(new URL('./bearer-preload.ts', import.meta.url));
const TIMESTAMP = /-\d{4}-\d{2}-\d{2}T[\d-]+Z$/;

export interface Check {
  readonly id: string;
  readonly status: string;
  readonly errorMessage?: string;
}

export interface ModeResult {
  readonly mode: 'direct' | 'gateway' | 'no-token';
  /** Scenario → its checks; a scenario the runner announced but wrote no result for has none. */
  readonly scenarios: ReadonlyMap<string, readonly Check[]>;
  readonly passed: readonly string[];
  readonly durationMs: number;
  readonly stdout: string;
}

export interface ConformanceReport {
  readonly direct: ModeResult;
  readonly gateway: ModeResult;
  readonly noToken: ModeResult;
  /** Requests that reached the fixture through the gateway / without a token. */
  readonly upstream: { readonly gatewayRequests: number; readonly noTokenRequests: number; readonly noTokenBytes: number };
  /** Gateway answers in the no-token run, by status. */
  readonly noTokenStatuses: Readonly<Record<string, number>>;
  /** Empty when every expectation holds. */
  readonly problems: readonly string[];
}

/** A scenario passes when it reported at least one SUCCESS and no FAILURE (WARNING/INFO are neutral). */
export function scenarioPassed(checks: readonly Check[]): boolean {
  return checks.some((c) => c.status === 'SUCCESS') && !checks.some((c) => c.status === 'FAILURE');
}

async function runSuite(mode: ModeResult['mode'], url: string, env: Readonly<Record<string, string>>, timeoutMs: number): Promise<ModeResult> {
  const out = mkdtempSync(join(tmpdir(), `mcp-warden-conformance-${mode}-`));
  const started = performance.now();
  try {
    // A clean environment for the runner: no inherited preload or token, only what this mode adds.
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('WARDEN_BEARER_')));
    const child = spawn(process.execPath, [CONFORMANCE_BIN, 'server', '--url', url, '--output-dir', out], {
      env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`conformance (${mode}) did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      child.once('error', reject);
      child.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    const announced = [...stdout.matchAll(/^=== Running scenario: (\S+) ===$/gm)].map((m) => m[1] as string);
    const scenarios = new Map<string, readonly Check[]>(announced.map((name) => [name, []]));
    for (const entry of readdirSync(out)) {
      const name = entry.replace(/^server-/, '').replace(TIMESTAMP, '');
      const file = join(out, entry, 'checks.json');
      if (existsSync(file)) scenarios.set(name, JSON.parse(readFileSync(file, 'utf8')) as Check[]);
    }
    const passed = [...scenarios].filter(([, checks]) => scenarioPassed(checks)).map(([name]) => name);
    return { mode, scenarios, passed, durationMs: performance.now() - started, stdout };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

export async function runConformance(options: { timeoutMs?: number } = {}): Promise<ConformanceReport> {
  const timeoutMs = options.timeoutMs ?? 90_000;
  const fixture = await startFixtureServer();
  try {
    const direct = await runSuite('direct', fixture.url, {}, timeoutMs);
    const stack = await startGatewayStack(fixture.url);
    try {
      const problems: string[] = [];
      fixture.reset();
      const token = await stack.token();
      const gateway = await runSuite('gateway', stack.url, {
        NODE_OPTIONS: `--import=${PRELOAD}`, WARDEN_BEARER_TOKEN: token, WARDEN_BEARER_ORIGIN: new URL(stack.url).origin,
      }, timeoutMs);
      const gatewayRequests = fixture.requests.length;
      // Credentials never cross the gateway; its own signed assertion always does.
      const leaked = fixture.requests.filter((r) => r.headers['authorization'] !== undefined).length;
      const unasserted = fixture.requests.filter((r) => typeof r.headers['x-mcp-identity'] !== 'string').length;
      if (gatewayRequests === 0) problems.push('gateway run: nothing reached the fixture');
      if (leaked > 0) problems.push(`gateway run: ${leaked} upstream requests carried an Authorization header`);
      if (unasserted > 0) problems.push(`gateway run: ${unasserted} upstream requests had no identity assertion`);

      fixture.reset();
      const before = stack.decisions.length;
      const noToken = await runSuite('no-token', stack.url, {}, timeoutMs);
      const refusals = stack.decisions.slice(before);
      const noTokenStatuses = countStatuses(refusals);
      if (fixture.requests.length > 0 || fixture.bytes() > 0) {
        problems.push(`no-token run: ${fixture.requests.length} requests (${fixture.bytes()} bytes) reached the fixture`);
      }
      for (const line of refusals) {
        // 401 without a token; the one exception is the dns-rebinding probe's foreign Origin, refused first with 403.
        const expected = line.reason === 'origin_forbidden' ? 403 : 401;
        if (line.decision !== 'deny' || line.status !== expected) {
          problems.push(`no-token run: gateway answered ${line.status} (${line.decision}/${line.reason}) for ${line.rpcMethod ?? 'a request'}`);
        }
      }
      if (refusals.length === 0) problems.push('no-token run: the gateway saw no request');

      compare(direct, gateway, noToken, problems);
      return {
        direct, gateway, noToken, problems, noTokenStatuses,
        upstream: { gatewayRequests, noTokenRequests: fixture.requests.length, noTokenBytes: fixture.bytes() },
      };
    } finally {
      await stack.close();
    }
  } finally {
    await fixture.close();
  }
}

function compare(direct: ModeResult, gateway: ModeResult, noToken: ModeResult, problems: string[]): void {
  if (direct.scenarios.size === 0) problems.push('direct run: the runner announced no scenario');
  for (const [name] of direct.scenarios) {
    if (!direct.passed.includes(name)) problems.push(`direct run: ${name} fails against the fixture`);
    else if (!gateway.passed.includes(name)) problems.push(`gateway run: ${name} passes direct but fails through the gateway: ${failures(gateway, name)}`);
    if (noToken.passed.includes(name)) problems.push(`no-token run: ${name} passed without a token`);
  }
  for (const mode of [gateway, noToken]) {
    if (mode.scenarios.size !== direct.scenarios.size) problems.push(`${mode.mode} run: ran ${mode.scenarios.size} scenarios, direct ran ${direct.scenarios.size}`);
  }
}

function failures(result: ModeResult, name: string): string {
  const checks = result.scenarios.get(name) ?? [];
  if (checks.length === 0) return 'no result written';
  return checks.filter((c) => c.status === 'FAILURE').map((c) => `${c.id}: ${c.errorMessage ?? ''}`).join('; ');
}

function countStatuses(lines: readonly AuditLine[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of lines) out[String(l.status)] = (out[String(l.status)] ?? 0) + 1;
  return out;
}
