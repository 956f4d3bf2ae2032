import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

// No Docker engine here: the Dockerfile is proven by reading it, and by following the import graph
// of what it copies, so that the image never lacks a file or a runtime dependency it needs.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

/** Instructions in order: comments and blank lines dropped, `\` continuations joined. */
function instructions(text: string): Instruction[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [, keyword = '', args = ''] = /^(\S+)\s*([\s\S]*)$/.exec(line) ?? [];
      return { keyword: keyword.toUpperCase(), args };
    });
}

/** Stages, each starting at its FROM. */
function stages(all: readonly Instruction[]): Instruction[][] {
  const result: Instruction[][] = [];
  for (const i of all) {
    if (i.keyword === 'FROM') result.push([]);
    result.at(-1)?.push(i);
  }
  return result;
}

function jsonArgs(args: string): unknown {
  try {
    return JSON.parse(args);
  } catch {
    return undefined; // shell form: not what the contract asks for
  }
}

/**
 * .dockerignore as this repository writes it: plain paths, `*` for everything, `!` to re-include.
 * A pattern covers a path it equals or is an ancestor of; the last pattern that covers a path wins
 * (Docker's rule). Any other glob fails the test rather than being guessed at.
 */
function dockerignore(text: string): (path: string) => boolean {
  const patterns = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')).map((l) => {
    const negate = l.startsWith('!');
    const path = (negate ? l.slice(1) : l).replace(/^\/+|\/+$/g, '');
    if (path !== '*' && /[*?[\]]/.test(path)) throw new Error(`.dockerignore pattern not understood by this test: ${l}`);
    return { negate, path };
  });
  return (file: string): boolean => {
    let included = true;
    for (const p of patterns) if (p.path === '*' || file === p.path || file.startsWith(`${p.path}/`)) included = p.negate;
    return included;
  };
}

/**
 * Module specifiers a file may load at run time: static, side-effect and dynamic imports (every string
 * literal inside `import(…)`, so both arms of a conditional count); `import type` is erased.
 */
function runtimeImports(source: string): string[] {
  const statics = [...source.matchAll(/^\s*(?:import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm)]
    .filter((m) => m[1] === undefined)
    .map((m) => m[2] ?? '');
  const dynamics = [...source.matchAll(/\bimport\(([^()]*)\)/g)].flatMap((m) => [...(m[1] ?? '').matchAll(/['"]([^'"]+)['"]/g)].map((s) => s[1] ?? ''));
  return [...statics, ...dynamics];
}

// bin/mcp-warden.js loads the compiled dist/ only when installed under node_modules (an npm package);
// the image runs /app/bin, so it loads the sources, and dist/ is never built into it.
const NOT_IN_IMAGE = /^\.\.\/dist\//;

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? '');
}

/** Every repository file reachable from `entry` through relative imports, and every bare specifier met. */
function importGraph(entry: string): { files: string[]; packages: string[]; missing: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const missing: string[] = [];
  const queue = [entry];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    if (files.has(file)) continue;
    files.add(file);
    for (const spec of runtimeImports(read(file))) {
      if (file.startsWith('bin/') && NOT_IN_IMAGE.test(spec)) continue;
      if (spec.startsWith('.')) {
        const target = relative(ROOT, join(ROOT, dirname(file), spec));
        if (existsSync(join(ROOT, target))) queue.push(target);
        else missing.push(`${file} → ${spec}`);
      } else if (!spec.startsWith('node:') && !builtinModules.includes(spec)) {
        packages.add(packageName(spec));
      }
    }
  }
  return { files: [...files].sort(), packages: [...packages].sort(), missing };
}

const all = instructions(read('Dockerfile'));
const [build = [], ...later] = stages(all);
const runtime = later.at(-1) ?? [];
const pick = (stage: readonly Instruction[], keyword: string): Instruction[] => stage.filter((i) => i.keyword === keyword);
const pkg: unknown = JSON.parse(read('package.json'));
const dependencyNames = (field: string): string[] => {
  const deps: unknown = typeof pkg === 'object' && pkg !== null ? (pkg as Record<string, unknown>)[field] : undefined;
  return typeof deps === 'object' && deps !== null ? Object.keys(deps) : [];
};

describe('Dockerfile (static)', () => {
  it('is multi-stage, every stage on node:24-slim (pinned by major, optionally by digest)', () => {
    const froms = pick(all, 'FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) expect(f.args).toMatch(/^node:24-slim(@sha256:[0-9a-f]{64})?( AS \w+)?$/i);
  });

  it('installs production dependencies with npm ci --omit=dev in the build stage, and the runtime copies them', () => {
    expect(pick(build, 'RUN').some((r) => /\bnpm ci --omit=dev\b/.test(r.args))).toBe(true);
    for (const r of pick(all, 'RUN')) expect(r.args).not.toMatch(/\bnpm (install|i)\b/);
    expect(pick(runtime, 'RUN').some((r) => /\bnpm ci\b/.test(r.args))).toBe(false);
    const buildName = /\bAS (\w+)$/i.exec(pick(build, 'FROM')[0]?.args ?? '')?.[1];
    expect(pick(runtime, 'COPY').map((c) => c.args)).toContain(`--from=${String(buildName)} /app/node_modules ./node_modules`);
  });

  it('copies only what runs: bin/, src/, config/, package.json, package-lock.json, each of which exists', () => {
    const sources = pick(runtime, 'COPY')
      .filter((c) => !c.args.startsWith('--from='))
      .flatMap((c) => c.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1));
    expect(sources.sort()).toEqual(['bin', 'config', 'package-lock.json', 'package.json', 'src']);
    for (const s of sources) expect(existsSync(join(ROOT, s)), s).toBe(true);
    expect(pick(all, 'ADD')).toEqual([]);
    expect(pick(runtime, 'WORKDIR').map((w) => w.args)).toEqual(['/app']);
  });

  it('runs as a numeric non-root user, in production mode', () => {
    const user = pick(runtime, 'USER').at(-1)?.args ?? '';
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(':')[0])).toBeGreaterThan(0);
    expect(Number(user.split(':')[1] ?? 1)).toBeGreaterThan(0);
    expect(pick(runtime, 'ENV').map((e) => e.args)).toContain('NODE_ENV=production');
  });

  it('writes nothing at run time: no VOLUME, and no RUN after USER', () => {
    // A declared VOLUME would be a writable anonymous volume; a RUN after USER would hint at files
    // the unprivileged user must be able to write.
    expect(pick(all, 'VOLUME')).toEqual([]);
    const userAt = runtime.findIndex((i) => i.keyword === 'USER');
    expect(userAt).toBeGreaterThan(-1);
    expect(runtime.slice(userAt).filter((i) => i.keyword === 'RUN')).toEqual([]);
  });

  it('checks health with `mcp-warden health` on the same config file as CMD, so it follows the configured admin port, with a timeout', () => {
    const health = pick(runtime, 'HEALTHCHECK');
    expect(health).toHaveLength(1);
    const match = /^(.*?)\bCMD (\[.*\])$/.exec(health[0]?.args ?? '');
    expect(match?.[1]).toMatch(/--timeout=\d+s/);
    const cmd = pick(all, 'CMD').map((c) => jsonArgs(c.args))[0] as string[];
    const configAt = cmd.indexOf('--config');
    expect(jsonArgs(match?.[2] ?? '')).toEqual(['node', '/app/bin/mcp-warden.js', 'health', '--config', cmd[configAt + 1]]);
    expect(health[0]?.args).not.toContain('9090'); // the port comes from the config, not the image
  });

  it('starts `node /app/bin/mcp-warden.js serve --config /etc/mcp-warden/config.yaml`, the package bin', () => {
    expect(pick(all, 'ENTRYPOINT').map((e) => jsonArgs(e.args))).toEqual([['node', '/app/bin/mcp-warden.js']]);
    expect(pick(all, 'CMD').map((c) => jsonArgs(c.args))).toEqual([['serve', '--config', '/etc/mcp-warden/config.yaml']]);
    expect(typeof pkg === 'object' && pkg !== null ? (pkg as Record<string, unknown>)['bin'] : undefined).toEqual({ 'mcp-warden': 'bin/mcp-warden.js' });
  });

  it('exposes the traffic (8080) and admin (9090) ports', () => {
    expect(pick(runtime, 'EXPOSE').flatMap((e) => e.args.split(/\s+/)).sort()).toEqual(['8080', '9090']);
  });
});

describe('.dockerignore and what the image runs', () => {
  const included = dockerignore(read('.dockerignore'));

  it('lets in what the Dockerfile copies and keeps out keys, local modules, git, tests and the demo', () => {
    for (const path of ['bin/mcp-warden.js', 'src/cli.ts', 'config/example.yaml', 'package.json', 'package-lock.json']) expect(included(path), path).toBe(true);
    for (const path of ['keys/gateway.jwk', 'node_modules/jose/package.json', '.git/config', 'test/helm/chart.test.ts', 'helm/mcp-warden/values.yaml', '.env', 'src/demo/main.ts']) expect(included(path), path).toBe(false);
  });

  it('every file `mcp-warden` loads is in the image, and every package it loads is a runtime dependency', () => {
    const graph = importGraph('bin/mcp-warden.js');
    expect(graph.missing).toEqual([]);
    expect(graph.files).toContain('src/cli.ts');
    expect(graph.files.length).toBeGreaterThan(20);
    expect(graph.files.filter((f) => !included(f))).toEqual([]);
    const runtimeDeps = dependencyNames('dependencies');
    expect(graph.packages.filter((p) => !runtimeDeps.includes(p))).toEqual([]);
  });

  it('the checkers catch what they look for', () => {
    const ignore = dockerignore('*\n!src\nsrc/demo\n');
    expect([ignore('src/a.ts'), ignore('src/demo/b.ts'), ignore('keys/k')]).toEqual([true, false, false]);
    expect(() => dockerignore('**/*.log')).toThrow(/not understood/);
    expect(runtimeImports("import type { A } from 'vitest';\nimport { b } from 'jose';\nexport * from './x.ts';\nconst m = await import(c ? '../dist/a.js' : '../src/a.ts');")).toEqual(['jose', './x.ts', '../dist/a.js', '../src/a.ts']);
    expect(packageName('@modelcontextprotocol/sdk/server/mcp.js')).toBe('@modelcontextprotocol/sdk');
    expect(dependencyNames('devDependencies')).toContain('@modelcontextprotocol/sdk');
    expect(instructions('FROM a AS b\nRUN x \\\n  y\n# c\nUSER 1').map((i) => `${i.keyword} ${i.args}`)).toEqual(['FROM a AS b', 'RUN x    y', 'USER 1']);
  });
});
