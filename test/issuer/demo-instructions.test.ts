import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { delimiter } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSteps, instructions } from '../../src/demo/instructions.ts';
import { startTestDemo } from './demo-stack.ts';

const run = promisify(execFile);
// The user's shell: PATH without the node_modules/.bin that npm scripts (and vitest) put first,
// so `node` is the machine's own (20 here), as in a terminal next to `npm start`.
const userPath = (process.env['PATH'] ?? '').split(delimiter).filter((p) => !p.includes('node_modules')).join(delimiter);
const userEnv = { ...process.env, PATH: userPath };

describe('the steps the demo prints', () => {
  let demo: Awaited<ReturnType<typeof startTestDemo>>;

  beforeAll(async () => {
    demo = await startTestDemo();
  });
  afterAll(async () => demo?.close());

  it('register, token and tool call work verbatim in a shell whose node is the machine’s own', async () => {
    const steps = demoSteps(demo.stack.config, demo.stack.issuer.url);
    const script = steps.slice(0, 3).map((s) => s.commands).join('\n');
    // Every printed step is also in the printed text, character for character.
    for (const step of steps) expect(instructions(demo.stack.config, demo.stack.issuer.url)).toContain(step.commands.split('\n')[0]);
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', `node --version >&2\n${script}`], { env: userEnv, timeout: 30_000 });
    const answer = JSON.parse(stdout) as { result: { content: { text: string }[] } };
    const whoami = JSON.parse(answer.result.content[0]?.text ?? '{}') as { sub: string; scopes: string[] };
    expect(whoami.scopes).toEqual(['mcp:demo']);
    expect(whoami.sub).toMatch(/.+/);
  }, 40_000);

  it('the DPoP step works verbatim on the machine’s node: a proof gets 200, its replay and the token as Bearer 401', async () => {
    const steps = demoSteps(demo.stack.config, demo.stack.issuer.url);
    const dpop = steps.find((s) => s.commands.startsWith('node examples/dpop-call.mjs'));
    expect(dpop).toBeDefined();
    const script = [...steps.slice(0, 1).map((s) => s.commands), dpop?.commands ?? 'false'].join('\n');
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', script], { env: userEnv, timeout: 30_000 });
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^DPoP token with its proof: 200 /);
    expect(lines[1]).toMatch(/^the same proof again: +401 DPoP .*error="invalid_dpop_proof"/);
    expect(lines[2]).toMatch(/^the token as Bearer: +401 /);
  }, 40_000);

  it('runs mcp-warden through npx, which works where the bare node cannot load the TypeScript sources: every drill passes', async () => {
    const steps = demoSteps(demo.stack.config, demo.stack.issuer.url);
    const rehearse = steps.at(-1)?.commands ?? '';
    expect(rehearse.startsWith(`npx mcp-warden rehearse --config ${demo.stack.config.file} \\\n`)).toBe(true);
    expect(instructions(demo.stack.config, demo.stack.issuer.url)).not.toMatch(/node bin\/mcp-warden/);
    // The printed command verbatim, under the user's PATH: every drill, the direct ones and step-up included.
    try {
      const { stdout } = await run('bash', ['-c', rehearse], { env: userEnv, timeout: 150_000 });
      expect(stdout).toMatch(/\n(\d+) passed, 0 failed, 0 skipped, 0 warnings\n$/);
      expect(stdout).toMatch(/PASS +direct demo other audience/);
      expect(stdout).toMatch(/PASS +step-up/);
      expect(readFileSync('rehearse-evidence.html', 'utf8')).toContain('<svg');
    } finally {
      rmSync('rehearse-evidence.md', { force: true });
      rmSync('rehearse-evidence.html', { force: true });
    }
  }, 160_000);
});
