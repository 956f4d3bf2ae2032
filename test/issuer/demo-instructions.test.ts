import { execFile } from 'node:child_process';
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

  it('runs mcp-warden through npx, which works where the bare node cannot load the TypeScript sources', async () => {
    const steps = demoSteps(demo.stack.config, demo.stack.issuer.url);
    const rehearse = steps.at(-1)?.commands ?? '';
    expect(rehearse).toBe(`npx mcp-warden rehearse --config ${demo.stack.config.file}`);
    expect(instructions(demo.stack.config, demo.stack.issuer.url)).not.toMatch(/node bin\/mcp-warden/);
    // The same launcher, with the command that answers at once: the project's CLI starts under the user's PATH.
    const { stdout } = await run('bash', ['-c', rehearse.replace(' rehearse ', ' validate ')], { env: userEnv, timeout: 60_000 });
    expect(stdout).toMatch(/: valid \(2 upstream\(s\), 1 issuer\(s\)\)/);
  }, 70_000);
});
