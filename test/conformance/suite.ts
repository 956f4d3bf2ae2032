// Runs the @modelcontextprotocol/conformance active server suite three ways against the same
// fixture server: direct, through the gateway with a valid token (injected by bearer-preload.ts),
// and through the gateway with no token. Returns what each run passed and every problem found.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFixtureServer, type FixtureServer } from './fixture-server.ts';
import { startFixtureServer2026 } from './fixture-2026.ts';
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

/**
 * Which scenarios run: the active suite of the 2025 era against the SDK v1 fixture, or exactly what
 * the 2026-07-28 revision requires (`--requirements 2026-07-28`, at the 2026 wire) plus the pending
 * and extension scenarios the runner adds, against the SDK v2 fixture.
 */
export type ConformanceEra = '2025-11-25' | '2026-07-28';

export interface ConformanceReport {
  readonly era: ConformanceEra;
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

async function runSuite(mode: ModeResult['mode'], url: string, env: Readonly<Record<string, string>>, timeoutMs: number, args: readonly string[]): Promise<ModeResult> {
  const out = mkdtempSync(join(tmpdir(), `mcp-warden-conformance-${mode}-`));
  const started = performance.now();
  try {
    // A clean environment for the runner: no inherited preload or token, only what this mode adds.
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('WARDEN_BEARER_')));
    const child = spawn(process.execPath, [CONFORMANCE_BIN, 'server', '--url', url, '--output-dir', out, ...args], {
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

const ERAS: Readonly<Record<ConformanceEra, { readonly fixture: () => Promise<FixtureServer>; readonly args: readonly string[] }>> = {
  '2025-11-25': { fixture: () => startFixtureServer(), args: [] },
  '2026-07-28': { fixture: () => startFixtureServer2026(), args: ['--requirements', '2026-07-28'] },
};

// `--requirements 2026-07-28`: the 37 server scenarios the revision requires, at the 2026 wire, plus
// the pending and extension ones the runner adds (50 in all), against the SDK v2 fixture
// (test/conformance/fixture-2026.ts). The fixture does not implement all of them (requestState
// round trips, the diagnostic tools of server-stateless, the tasks extension), so the comparison is
// check by check: no check that succeeds direct fails through the gateway, except these, which are
// the gateway's own answers given before the upstream is asked. (Methods the revision removed,
// resources/(un)subscribe, tasks/result and tasks/list among them, the gateway answers 404 / -32601
// itself, as the server does: policy/jsonrpc.ts.)
export const KNOWN_2026: ReadonlyMap<string, string> = new Map([
  // -32022 data.supported lists the gateway's revisions (all five it serves), not the fixture's.
  ['server-stateless/sep-2575-server-unsupported-version-error', 'supported = the gateway'],
]);


export interface ConformanceOptions {
  readonly timeoutMs?: number;
  readonly era?: ConformanceEra;
  /** `scenario/check` ids that succeed direct and are known to differ through the gateway (each with its reason, in the caller). */
  readonly knownDifferences?: ReadonlySet<string>;
}

export async function runConformance(options: ConformanceOptions = {}): Promise<ConformanceReport> {
  const timeoutMs = options.timeoutMs ?? 90_000;
  const era = options.era ?? '2025-11-25';
  const { args } = ERAS[era];
  const fixture = await ERAS[era].fixture();
  try {
    const direct = await runSuite('direct', fixture.url, {}, timeoutMs, args);
    const stack = await startGatewayStack(fixture.url);
    try {
      const problems: string[] = [];
      fixture.reset();
      const token = await stack.token();
      const gateway = await runSuite('gateway', stack.url, {
        NODE_OPTIONS: `--import=${PRELOAD}`, WARDEN_BEARER_TOKEN: token, WARDEN_BEARER_ORIGIN: new URL(stack.url).origin,
      }, timeoutMs, args);
      const gatewayRequests = fixture.requests.length;
      // Credentials never cross the gateway; its own signed assertion always does.
      const leaked = fixture.requests.filter((r) => r.headers['authorization'] !== undefined).length;
      const unasserted = fixture.requests.filter((r) => typeof r.headers['x-mcp-identity'] !== 'string').length;
      if (gatewayRequests === 0) problems.push('gateway run: nothing reached the fixture');
      if (leaked > 0) problems.push(`gateway run: ${leaked} upstream requests carried an Authorization header`);
      if (unasserted > 0) problems.push(`gateway run: ${unasserted} upstream requests had no identity assertion`);

      fixture.reset();
      const before = stack.decisions.length;
      const noToken = await runSuite('no-token', stack.url, {}, timeoutMs, args);
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

      compare(direct, gateway, noToken, problems, era === '2025-11-25', options.knownDifferences ?? new Set());
      return {
        era,
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

/**
 * Through the gateway, every scenario passing direct passes, and no check that succeeds direct fails
 * (so a scenario the fixture fails in part is still compared check by check). `allDirect`: every
 * scenario must pass direct (the 2025 fixture implements all of them; the 2026 one not all).
 */
function compare(direct: ModeResult, gateway: ModeResult, noToken: ModeResult, problems: string[], allDirect: boolean, known: ReadonlySet<string>): void {
  if (direct.scenarios.size === 0) problems.push('direct run: the runner announced no scenario');
  for (const [name, checks] of direct.scenarios) {
    if (!direct.passed.includes(name)) {
      if (allDirect) problems.push(`direct run: ${name} fails against the fixture`);
    } else if (!gateway.passed.includes(name) && !checks.some((c) => known.has(`${name}/${c.id}`))) {
      problems.push(`gateway run: ${name} passes direct but fails through the gateway: ${failures(gateway, name)}`);
    }
    const through = new Map((gateway.scenarios.get(name) ?? []).map((c) => [c.id, c.status]));
    for (const c of checks) {
      if (known.has(`${name}/${c.id}`)) {
        if (through.get(c.id) === 'SUCCESS') problems.push(`gateway run: check ${name}/${c.id} is listed as a known difference but succeeds through the gateway`);
        continue;
      }
      if (c.status === 'SUCCESS' && through.get(c.id) !== 'SUCCESS') problems.push(`gateway run: check ${name}/${c.id} succeeds direct, ${through.get(c.id) ?? 'absent'} through the gateway`);
    }
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
