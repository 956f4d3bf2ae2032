import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseDocument, stringify } from 'yaml';
import { loadConfigText } from '../../src/config/compile.ts';
import { ConfigError } from '../../src/config/errors.ts';

// No helm binary and no cluster here: the chart is proven by reading it. What Helm would compute is
// checked where it can be (values paths, template blocks, the YAML around the actions, the config the
// examples produce, run through the gateway's own validator); the checkers are themselves tested
// against broken input at the end, so that each of them can fail.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHART = join(ROOT, 'helm/mcp-warden');
const read = (...path: string[]): string => readFileSync(join(...path), 'utf8');

const templates = readdirSync(join(CHART, 'templates')).sort().map((name) => ({ name, text: read(CHART, 'templates', name) }));
const manifests = templates.filter((t) => t.name.endsWith('.yaml'));
const template = (name: string): string => {
  const found = templates.find((t) => t.name === name);
  if (found === undefined) throw new Error(`no template ${name}`);
  return found.text;
};
const values: unknown = parse(read(CHART, 'values.yaml'));

// ---- small helpers over parsed YAML (unknown all the way down; no casts to any) ----

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function at(node: unknown, ...path: readonly (string | number)[]): unknown {
  let current = node;
  for (const key of path) {
    if (typeof key === 'number') current = Array.isArray(current) ? current[key] : undefined;
    else current = isRecord(current) && Object.hasOwn(current, key) ? current[key] : undefined;
  }
  return current;
}

function list(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

/** Helm's values merge: maps merge key by key, anything else (lists included) is replaced. */
function helmMerge(base: unknown, override: unknown): unknown {
  if (!isRecord(base) || !isRecord(override)) return override === undefined ? base : override;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) merged[key] = helmMerge(base[key], value);
  return merged;
}

// ---- template checkers ----

const ACTION = /\{\{-?([\s\S]*?)-?\}\}/g;
const BLOCKS = new Set(['if', 'range', 'with', 'define', 'block']);
// Actions that write nothing where they stand (fail aborts rendering; $x := … only assigns).
const SILENT = new Set([...BLOCKS, 'else', 'end', 'fail']);

function firstWord(body: string): string {
  return /^[a-z]+/.exec(body.trim())?.[0] ?? '';
}

function isSilent(body: string): boolean {
  const b = body.trim();
  return b.startsWith('/*') || SILENT.has(firstWord(b)) || /^\$\w+\s*:?=/.test(b);
}

/** Unclosed or stray braces, and if/range/with/define/block not closed by end (else only inside one). */
function templateProblems(text: string): string[] {
  const problems: string[] = [];
  const lineOf = (index: number): number => text.slice(0, index).split('\n').length;
  const stack: { word: string; line: number }[] = [];
  const covered: [number, number][] = [];
  for (const m of text.matchAll(ACTION)) {
    const body = m[1] ?? '';
    const line = lineOf(m.index);
    covered.push([m.index, m.index + m[0].length]);
    if (body.includes('{{')) problems.push(`line ${line}: action not closed before the next {{`);
    if (body.trim().startsWith('/*')) {
      if (!body.trim().endsWith('*/')) problems.push(`line ${line}: comment not closed`);
      continue;
    }
    const word = firstWord(body);
    if (BLOCKS.has(word)) stack.push({ word, line });
    else if (word === 'else' && !['if', 'with', 'range'].includes(stack.at(-1)?.word ?? '')) problems.push(`line ${line}: else outside if/with/range`);
    else if (word === 'end' && stack.pop() === undefined) problems.push(`line ${line}: end without a block`);
  }
  for (const token of ['{{', '}}']) {
    for (let i = text.indexOf(token); i !== -1; i = text.indexOf(token, i + 1)) {
      if (!covered.some(([from, to]) => i >= from && i < to)) problems.push(`line ${lineOf(i)}: stray ${token}`);
    }
  }
  for (const open of stack) problems.push(`line ${open.line}: ${open.word} without end`);
  return problems;
}

/**
 * The YAML skeleton of a manifest template, by one substitution:
 *  1. a line holding only actions is removed. Silent actions (if/else/end/with/range/define/fail,
 *     comments, assignments) write nothing; an output action alone on its line must be written
 *     `{{- … | nindent N }}` (see wholeLineOutputProblems), and its output is YAML from toYaml or
 *     a labels helper, placed at an indentation the action states;
 *  2. every other action becomes the plain scalar x (a value, a key, part of a quoted string).
 * Both branches of an if/else stay in the skeleton, so a template may not set one key in both.
 */
function skeleton(text: string): string {
  return text
    .split('\n')
    .filter((line) => line.replace(ACTION, '').trim() !== '' || !line.includes('{{'))
    .map((line) => line.replace(ACTION, 'x'))
    .join('\n');
}

/** An output action alone on its line must chomp the newline before it and state its indentation. */
function wholeLineOutputProblems(text: string): string[] {
  return text.split('\n').flatMap((line, i) => {
    if (!line.includes('{{') || line.replace(ACTION, '').trim() !== '') return [];
    return [...line.matchAll(ACTION)]
      .filter((m) => !isSilent(m[1] ?? ''))
      .filter((m) => !m[0].startsWith('{{- ') || !/\|\s*nindent\s+\d+\s*$/.test(m[1] ?? ''))
      .map((m) => `line ${i + 1}: ${m[0]} must be {{- … | nindent N }}`);
  });
}

const VALUES_PATH = /\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g;

function usedValuePaths(text: string): string[][] {
  return [...text.matchAll(VALUES_PATH)].map((m) => (m[1] ?? '').slice(1).split('.'));
}

function missingValuePaths(texts: readonly string[], root: unknown): string[] {
  return texts.flatMap(usedValuePaths).filter((path) => at(root, ...path) === undefined).map((p) => `.Values.${p.join('.')}`);
}

/** Leaves of values.yaml (scalars, lists, empty maps) that no template reads, nor any parent of. */
function unusedValues(texts: readonly string[], root: unknown): string[] {
  const used = texts.flatMap(usedValuePaths).map((p) => p.join('.'));
  const leaves = (node: unknown, path: string): string[] =>
    isRecord(node) && Object.keys(node).length > 0 ? Object.entries(node).flatMap(([k, v]) => leaves(v, path === '' ? k : `${path}.${k}`)) : [path];
  return leaves(root, '').filter((leaf) => !used.some((u) => leaf === u || leaf.startsWith(`${u}.`)));
}

function skeletonOf(name: string): unknown {
  const doc = parseDocument(skeleton(template(name)));
  if (doc.errors.length > 0) throw new Error(`${name}: ${doc.errors.map((e) => e.message).join('; ')}`);
  return doc.toJS();
}

function dockerfileUser(): { uid: number; gid: number } {
  const user = [...read(ROOT, 'Dockerfile').matchAll(/^USER\s+(\d+)(?::(\d+))?\s*$/gm)].at(-1);
  return { uid: Number(user?.[1]), gid: Number(user?.[2] ?? user?.[1]) };
}

// ---- the chart ----

describe('Helm chart: metadata and values', () => {
  it('Chart.yaml is a v2 application chart whose appVersion is the package version', () => {
    const chart: unknown = parse(read(CHART, 'Chart.yaml'));
    const pkg: unknown = JSON.parse(read(ROOT, 'package.json'));
    expect(at(chart, 'apiVersion')).toBe('v2');
    expect(at(chart, 'name')).toBe('mcp-warden');
    expect(at(chart, 'type')).toBe('application');
    expect(String(at(chart, 'version'))).toMatch(/^\d+\.\d+\.\d+$/);
    expect(at(chart, 'appVersion')).toBe(at(pkg, 'version'));
  });

  it('every .Values path a template reads exists in values.yaml', () => {
    const texts = templates.map((t) => t.text);
    expect(texts.flatMap(usedValuePaths).length).toBeGreaterThan(40);
    expect(missingValuePaths(texts, values)).toEqual([]);
  });

  it('every value in values.yaml is read by some template (no dead knobs)', () => {
    expect(unusedValues(templates.map((t) => t.text), values)).toEqual([]);
  });

  it('every key in values.yaml has a comment (on its line or just above), or sits under a commented parent', () => {
    const lines = read(CHART, 'values.yaml').split('\n');
    const undocumented = lines.flatMap((line, i) => {
      const key = /^( *)([A-Za-z][\w.-]*):/.exec(line);
      if (key === null) return [];
      const indent = (key[1] ?? '').length;
      const commented = line.includes(' # ') || /^\s*#/.test(lines[i - 1] ?? '');
      // A parent documents its children when it is commented and they are a small, obvious group.
      const parent = lines.slice(0, i).reverse().find((l) => /^ *[A-Za-z][\w.-]*:/.test(l) && (/^( *)/.exec(l)?.[1] ?? '').length < indent);
      const parentIndex = parent === undefined ? -1 : lines.lastIndexOf(parent, i);
      const parentCommented = parentIndex > 0 && /^\s*#/.test(lines[parentIndex - 1] ?? '');
      return commented || (indent > 0 && parentCommented) ? [] : [`values.yaml:${i + 1} ${key[2] ?? ''}`];
    });
    expect(undocumented).toEqual([]);
  });
});

describe('Helm chart: templates', () => {
  it('are well-formed: every {{ closed, if/range/with/define balanced with end', () => {
    const problems = templates.flatMap((t) => templateProblems(t.text).map((p) => `${t.name} ${p}`));
    expect(problems).toEqual([]);
  });

  it('write whole-line output as {{- … | nindent N }}, so the skeleton substitution is sound', () => {
    expect(manifests.flatMap((t) => wholeLineOutputProblems(t.text).map((p) => `${t.name} ${p}`))).toEqual([]);
  });

  it('include only helpers that _helpers.tpl or _sidecar.tpl defines, and only template files that exist', () => {
    const defined = new Set([...template('_helpers.tpl').matchAll(/define "([^"]+)"/g), ...template('_sidecar.tpl').matchAll(/define "([^"]+)"/g)].map((m) => m[1]));
    const all = templates.map((t) => t.text).join('\n');
    for (const m of all.matchAll(/include "([^"]+)"/g)) expect(defined, `include "${m[1]}"`).toContain(m[1]);
    for (const m of all.matchAll(/include \(print \$\.Template\.BasePath "\/([^"]+)"\)/g)) expect(existsSync(join(CHART, 'templates', m[1] ?? ''))).toBe(true);
  });

  it('each manifest, stripped of its actions, is YAML of the expected apiVersion and kind', () => {
    // NOTES.txt is text and _helpers.tpl only defines: neither is YAML, both are checked above.
    const kinds = Object.fromEntries(manifests.map((t) => {
      const doc = skeletonOf(t.name);
      return [t.name, `${String(at(doc, 'apiVersion'))} ${String(at(doc, 'kind'))}`];
    }));
    expect(kinds).toEqual({
      'configmap.yaml': 'v1 ConfigMap',
      'deployment.yaml': 'apps/v1 Deployment',
      'hpa.yaml': 'autoscaling/v2 HorizontalPodAutoscaler',
      'httproute.yaml': 'gateway.networking.k8s.io/v1 HTTPRoute',
      'ingress.yaml': 'networking.k8s.io/v1 Ingress',
      'networkpolicy.yaml': 'networking.k8s.io/v1 NetworkPolicy',
      'pdb.yaml': 'policy/v1 PodDisruptionBudget',
      'secret.yaml': 'v1 Secret',
      'service.yaml': 'v1 Service',
      'servicemonitor.yaml': 'monitoring.coreos.com/v1 ServiceMonitor',
      'sidecar-deployment.yaml': 'apps/v1 Deployment',
    });
  });

  it('sidecar mode renders the ConfigMap and the Secret, and its Deployment only with sidecar.container; optional resources hang on their value', () => {
    expect(template('sidecar-deployment.yaml').split('\n')[0]).toBe('{{- if and (eq .Values.mode "sidecar") .Values.sidecar.container }}');
    expect(at(values, 'sidecar', 'container')).toEqual({});
    const gate = (name: string): string => template(name).split('\n')[0] ?? '';
    for (const name of ['deployment.yaml', 'service.yaml', 'hpa.yaml', 'pdb.yaml', 'servicemonitor.yaml', 'networkpolicy.yaml', 'ingress.yaml', 'httproute.yaml']) {
      expect(gate(name), name).toMatch(/^\{\{- if .*eq \.Values\.mode "edge"/);
    }
    for (const name of ['configmap.yaml', 'secret.yaml']) expect(template(name), name).not.toContain('.Values.mode "edge"');
    expect(gate('hpa.yaml')).toContain('.Values.autoscaling.enabled');
    expect(gate('pdb.yaml')).toContain('.Values.podDisruptionBudget.enabled');
    expect(gate('servicemonitor.yaml')).toContain('.Values.serviceMonitor.enabled');
    expect(gate('networkpolicy.yaml')).toContain('.Values.networkPolicy.enabled');
    expect(gate('ingress.yaml')).toContain('.Values.ingress.enabled');
    expect(gate('httproute.yaml')).toContain('.Values.httpRoute.enabled');
    expect(gate('secret.yaml')).toBe('{{- if not .Values.signingKey.existingSecret }}');
    // A fixed replica count would fight the HPA.
    expect(template('deployment.yaml')).toMatch(/\{\{- if not \.Values\.autoscaling\.enabled \}\}\n\s+replicas: \{\{ \.Values\.replicaCount \}\}\n\s+\{\{- end \}\}/);
  });
});

describe('Helm chart: the Deployment', () => {
  const deployment = skeletonOf('deployment.yaml');
  const pod = at(deployment, 'spec', 'template', 'spec');
  const container = at(pod, 'containers', 0);
  const raw = template('deployment.yaml');

  it('runs non-root with a read-only root filesystem, no escalation, no capabilities, RuntimeDefault seccomp', () => {
    expect(at(pod, 'securityContext', 'runAsNonRoot')).toBe(true);
    expect(at(pod, 'securityContext', 'seccompProfile')).toEqual({ type: 'RuntimeDefault' });
    expect(Object.keys(at(pod, 'securityContext') ?? {})).toEqual(expect.arrayContaining(['runAsUser', 'runAsGroup', 'fsGroup']));
    expect(at(container, 'securityContext')).toEqual({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(at(pod, 'automountServiceAccountToken')).toBe(false);
  });

  it('runs as the image user, a non-root numeric id', () => {
    const { uid, gid } = dockerfileUser();
    expect(uid).toBeGreaterThan(0);
    expect(at(values, 'podSecurityContext', 'runAsUser')).toBe(uid);
    expect(at(values, 'podSecurityContext', 'runAsGroup')).toBe(gid);
    expect(at(values, 'podSecurityContext', 'fsGroup')).toBe(gid);
  });

  it('probes /healthz (liveness) and /readyz (readiness) on the admin port, which is config.admin.port', () => {
    expect(at(container, 'livenessProbe', 'httpGet')).toEqual({ path: '/healthz', port: 'admin' });
    expect(at(container, 'readinessProbe', 'httpGet')).toEqual({ path: '/readyz', port: 'admin' });
    expect(list(at(container, 'ports')).map((p) => at(p, 'name'))).toEqual(['http', 'admin']);
    expect(raw).toMatch(/- name: admin\n\s+containerPort: \{\{ \.Values\.config\.admin\.port \}\}/);
    expect(raw).toMatch(/- name: http\n\s+containerPort: \{\{ \.Values\.config\.listen\.port \}\}/);
  });

  it('drains on termination: a preStop sleep, then a grace period that covers it, the drain delay and the shutdown grace', () => {
    expect(at(container, 'lifecycle', 'preStop')).toEqual({ sleep: { seconds: 'x' } });
    expect(raw).toContain('seconds: {{ .Values.preStopSleepSeconds }}');
    const preStop = Number(at(values, 'preStopSleepSeconds'));
    const grace = Number(at(values, 'terminationGracePeriodSeconds'));
    // The gateway's own defaults for what the chart leaves to config.limits.
    const edge = at(helmMerge(values, parse(read(CHART, 'examples', 'values-edge.yaml'))), 'config');
    const defaults = loadConfigText(stringify(edge), 'values-edge.yaml#config').limits;
    expect(preStop).toBeGreaterThanOrEqual(5);
    expect(grace).toBeGreaterThanOrEqual(preStop + (defaults.drainDelayMs + defaults.shutdownGraceMs) / 1000 + 2);
    // Rendering refuses a grace period that would SIGKILL the drain, computed with those same defaults.
    expect(raw).toContain('{{- $drainMs := add (dig "limits" "drainDelayMs" 0 .Values.config) (dig "limits" "shutdownGraceMs" 10000 .Values.config) }}');
    expect(raw).toContain('{{- $needed := add .Values.preStopSleepSeconds (div (add $drainMs 999) 1000) 2 }}');
    expect(raw).toMatch(/\{\{- if lt \(int \.Values\.terminationGracePeriodSeconds\) \(int \$needed\) \}\}\n\s+\{\{- fail /);
    expect(defaults.drainDelayMs).toBe(0);
    expect(defaults.shutdownGraceMs).toBe(10_000);
  });

  it('rolls the pods when the ConfigMap changes (checksum of its rendered content)', () => {
    expect(Object.keys(at(deployment, 'spec', 'template', 'metadata', 'annotations') ?? {})).toContain('checksum/config');
    expect(raw).toContain('checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}');
    expect(template('configmap.yaml')).toMatch(/config\.yaml: \|\n\s+\{\{- toYaml \.Values\.config \| nindent 4 \}\}/);
  });

  it('sets resources from values, with the CPU request the HPA measures against', () => {
    expect(Object.keys(container ?? {})).toContain('resources');
    expect(raw).toContain('{{- toYaml .Values.resources | nindent 12 }}');
    expect(at(values, 'resources', 'requests', 'cpu')).toBeTypeOf('string');
  });

  it('has the memory limit the bench holds 5,000 SSE streams under', () => {
    // bench/run.ts runs each proxy's SSE phase in a memory cgroup of the chart's limit; the two move together.
    const limit = String(at(values, 'resources', 'limits', 'memory'));
    const benched = /num\('BENCH_SSE_MEMORY_MIB', (\d+)\)/.exec(read(ROOT, 'bench/run.ts'))?.[1];
    expect(limit).toBe(`${benched}Mi`);
  });

  it('starts serve with the config file the ConfigMap provides, as the image does', () => {
    const args = list(at(container, 'args'));
    const cmd: unknown = JSON.parse(/^CMD (.+)$/m.exec(read(ROOT, 'Dockerfile'))?.[1] ?? 'null');
    expect(args).toEqual(cmd);
    const configFile = String(args[2]);
    const mount = list(at(container, 'volumeMounts')).find((m) => at(m, 'name') === 'config');
    expect(at(mount, 'mountPath')).toBe(dirname(configFile));
    expect(at(mount, 'subPath')).toBeUndefined(); // a subPath mount never sees ConfigMap updates
    expect(Object.keys(at(skeletonOf('configmap.yaml'), 'data') ?? {})).toEqual([basename(configFile)]);
  });

  it('mounts the signing key Secret read-only, owner-only mode, at config.identity.signingKeyFile', () => {
    const volume = list(at(pod, 'volumes')).find((v) => at(v, 'name') === 'signing-key');
    const mode = Number(at(volume, 'secret', 'defaultMode'));
    expect([0o400, 0o600]).toContain(mode);
    const mount = list(at(container, 'volumeMounts')).find((m) => at(m, 'name') === 'signing-key');
    expect(at(mount, 'readOnly')).toBe(true);
    const keyFile = `${String(at(mount, 'mountPath'))}/${String(at(volume, 'secret', 'items', 0, 'path'))}`;
    expect(at(values, 'config', 'identity', 'signingKeyFile')).toBe(keyFile);
    // Values merged from elsewhere could move it: rendering refuses any other path.
    expect(raw).toContain(`{{- if ne .Values.config.identity.signingKeyFile "${keyFile}" }}`);
    expect(raw).toContain('secretName: {{ .Values.signingKey.existingSecret | default (include "mcp-warden.fullname" .) }}');
  });

  it('can write nowhere: every volume is a ConfigMap or Secret, mounted read-only', () => {
    const volumes = list(at(pod, 'volumes'));
    expect(volumes.length).toBeGreaterThan(0);
    for (const v of volumes) expect(Object.keys(v ?? {}).filter((k) => k !== 'name'), String(at(v, 'name'))).toEqual([expect.stringMatching(/^(configMap|secret)$/)]);
    for (const m of list(at(container, 'volumeMounts'))) expect(at(m, 'readOnly'), String(at(m, 'name'))).toBe(true);
  });

  it('the Secret the chart creates requires the key (no replica may generate its own)', () => {
    expect(template('secret.yaml')).toMatch(/\{\{ required "[^"]+" \.Values\.signingKey\.jwk \| b64enc \}\}/);
  });
});

describe('Helm chart: Service, HPA, ServiceMonitor, NetworkPolicy', () => {
  it('the Service carries the traffic port and, separately, the admin port named admin', () => {
    const ports = list(at(skeletonOf('service.yaml'), 'spec', 'ports'));
    expect(ports.map((p) => [at(p, 'name'), at(p, 'targetPort')])).toEqual([['http', 'http'], ['admin', 'admin']]);
    expect(template('service.yaml')).toMatch(/- name: admin\n\s+port: \{\{ \.Values\.config\.admin\.port \}\}/);
  });

  it('the HPA (autoscaling/v2) scales the Deployment on CPU', () => {
    const hpa = skeletonOf('hpa.yaml');
    expect(at(hpa, 'spec', 'scaleTargetRef')).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'x' });
    expect(at(hpa, 'spec', 'metrics', 0, 'resource', 'name')).toBe('cpu');
  });

  it('the ServiceMonitor scrapes /metrics on the admin port', () => {
    expect(list(at(skeletonOf('servicemonitor.yaml'), 'spec', 'endpoints')).map((e) => [at(e, 'port'), at(e, 'path')])).toEqual([['admin', '/metrics']]);
  });

  it('the NetworkPolicy admits named peers to the traffic port, the monitoring namespace to admin, DNS and listed egress out', () => {
    const policy = skeletonOf('networkpolicy.yaml');
    expect(at(policy, 'spec', 'policyTypes')).toEqual(['Ingress', 'Egress']);
    const ingress = list(at(policy, 'spec', 'ingress'));
    // A rule without `from` would admit every source.
    for (const rule of ingress) expect(Object.keys(rule ?? {})).toEqual(['from', 'ports']);
    expect(ingress.map((r) => at(r, 'ports'))).toEqual([[{ port: 'http' }], [{ port: 'admin' }]]);
    expect(at(ingress[1], 'from', 0, 'namespaceSelector', 'matchLabels', 'kubernetes.io/metadata.name')).toBe('x');
    const raw = template('networkpolicy.yaml');
    expect(raw).toMatch(/\{\{- with \.Values\.networkPolicy\.trafficFrom \}\}[\s\S]*- from:\n\s+\{\{- toYaml \. \| nindent 8 \}\}/);
    expect(raw).toContain('kubernetes.io/metadata.name: {{ .Values.networkPolicy.monitoringNamespace }}');
    expect(list(at(policy, 'spec', 'egress', 0, 'ports')).map((p) => at(p, 'port'))).toEqual([53, 53]);
    expect(raw).toMatch(/\{\{- with \.Values\.networkPolicy\.egress \}\}[\s\S]*\{\{- toYaml \. \| nindent 4 \}\}/);
  });
});

describe('Helm chart: Ingress and Gateway API HTTPRoute (issue 24 §6)', () => {
  const uncommented = (text: string): string => text.split('\n').filter((l) => !l.trim().startsWith('#')).join('\n');
  it('both are off by default, and rendering fails when enabled without hosts or parentRefs', () => {
    expect(at(values, 'ingress', 'enabled')).toBe(false);
    expect(at(values, 'httpRoute', 'enabled')).toBe(false);
    expect(template('ingress.yaml')).toMatch(/^\{\{- if and \(eq \.Values\.mode "edge"\) \.Values\.ingress\.enabled \}\}\n\{\{- if not \.Values\.ingress\.hosts \}\}\n\{\{- fail "ingress\.enabled needs ingress\.hosts/);
    expect(template('httproute.yaml')).toMatch(/^\{\{- if and \(eq \.Values\.mode "edge"\) \.Values\.httpRoute\.enabled \}\}\n\{\{- if not \.Values\.httpRoute\.parentRefs \}\}\n\{\{- fail "httpRoute\.enabled needs httpRoute\.parentRefs/);
  });

  it('the Ingress sends every path of each host to the Service port named http, never admin', () => {
    const ingress = skeletonOf('ingress.yaml');
    const rules = list(at(ingress, 'spec', 'rules'));
    expect(rules).toHaveLength(1); // the one rule inside range, once per host
    expect(at(rules[0], 'host')).toBe('x');
    expect(list(at(rules[0], 'http', 'paths'))).toEqual([{ path: '/', pathType: 'Prefix', backend: { service: { name: 'x', port: { name: 'http' } } } }]);
    const raw = template('ingress.yaml');
    expect(raw).toMatch(/\{\{- range \.Values\.ingress\.hosts \}\}\n\s+- host: \{\{ \. \| quote \}\}/);
    expect(raw).toContain('name: {{ include "mcp-warden.fullname" $ }}'); // $ inside range: the release, not the host
    expect(raw).toMatch(/\{\{- with \.Values\.ingress\.className \}\}\n\s+ingressClassName: \{\{ \. \}\}/);
    expect(raw).toMatch(/\{\{- with \.Values\.ingress\.tls \}\}\n\s+tls:\n\s+\{\{- toYaml \. \| nindent 4 \}\}/);
    expect(uncommented(raw)).not.toContain('admin');
  });

  it('the HTTPRoute attaches to the listed parents and sends every path to the Service traffic port (service.port)', () => {
    const route = skeletonOf('httproute.yaml');
    const rules = list(at(route, 'spec', 'rules'));
    expect(rules).toHaveLength(1);
    expect(at(rules[0], 'matches')).toEqual([{ path: { type: 'PathPrefix', value: '/' } }]);
    expect(at(rules[0], 'backendRefs')).toEqual([{ name: 'x', port: 'x' }]);
    const raw = template('httproute.yaml');
    expect(raw).toMatch(/- name: \{\{ include "mcp-warden\.fullname" \. \}\}\n\s+port: \{\{ \.Values\.service\.port \}\}/);
    expect(raw).toMatch(/parentRefs:\n\s+\{\{- toYaml \.Values\.httpRoute\.parentRefs \| nindent 4 \}\}/);
    expect(raw).toMatch(/\{\{- with \.Values\.httpRoute\.hostnames \}\}\n\s+hostnames:\n\s+\{\{- toYaml \. \| nindent 4 \}\}/);
    expect(raw).toMatch(/\{\{- with \.Values\.httpRoute\.timeouts \}\}\n\s+timeouts:\n\s+\{\{- toYaml \. \| nindent 8 \}\}/);
    expect(uncommented(raw)).not.toContain('admin');
  });
});

describe('Helm chart: the configuration it ships', () => {
  const config = (file: string): unknown => at(helmMerge(values, parse(read(CHART, 'examples', file))), 'config');

  it('has no default policy: values.yaml alone is refused by the gateway and by rendering', () => {
    expect(() => loadConfigText(stringify(at(values, 'config')), 'values.yaml#config')).toThrow(ConfigError);
    expect(template('configmap.yaml')).toMatch(/\{\{- if or \(not \.Values\.config\.publicUrl\) \(not \.Values\.config\.issuers\) \(not \.Values\.config\.upstreams\) \}\}\n\{\{- fail /);
  });

  it('examples/values-edge.yaml merged over values.yaml is a valid config, listening where the pod exposes it', () => {
    const loaded = loadConfigText(stringify(config('values-edge.yaml')), 'values-edge.yaml#config');
    // The Service reaches the traffic port and the kubelet probes the admin port on the pod IP.
    expect(loaded.listen).toMatchObject({ host: '0.0.0.0', port: 8080 });
    expect(loaded.admin).toEqual({ host: '0.0.0.0', port: 9090 });
    expect(loaded.identity.signingKeyFile).toBe(at(values, 'config', 'identity', 'signingKeyFile'));
    expect(loaded.upstreams.length).toBeGreaterThan(1);
  });

  it('examples/values-sidecar.yaml is a valid config whose upstreams are on loopback only', () => {
    const merged = helmMerge(values, parse(read(CHART, 'examples', 'values-sidecar.yaml')));
    expect(at(merged, 'mode')).toBe('sidecar');
    const loaded = loadConfigText(stringify(at(merged, 'config')), 'values-sidecar.yaml#config');
    expect(loaded.upstreams.map((u) => u.target.hostname)).toEqual(['127.0.0.1']);
  });

  it('examples/sidecar-pod.yaml: the MCP server binds loopback with no port; mcp-warden is the way in, mounted as the chart expects', () => {
    const pod: unknown = parse(read(CHART, 'examples', 'sidecar-pod.yaml'));
    const containers = list(at(pod, 'spec', 'containers'));
    const server = containers.find((c) => at(c, 'name') !== 'mcp-warden');
    const warden = containers.find((c) => at(c, 'name') === 'mcp-warden');
    const env = (name: string): unknown => at(list(at(server, 'env')).find((e) => at(e, 'name') === name), 'value');
    const target = loadConfigText(stringify(config('values-sidecar.yaml'))).upstreams[0]?.target;
    expect(at(server, 'ports')).toBeUndefined();
    expect(env('HOST')).toBe('127.0.0.1');
    expect(env('PORT')).toBe(target?.port);
    // Only mcp-warden's own listeners are declared, on the ports its config binds.
    expect(list(at(warden, 'ports')).map((p) => [at(p, 'name'), at(p, 'containerPort')])).toEqual([['http', 8080], ['admin', 9090]]);
    expect(at(warden, 'readinessProbe', 'httpGet')).toEqual({ path: '/readyz', port: 'admin' });
    expect(at(warden, 'securityContext', 'readOnlyRootFilesystem')).toBe(true);
    // Same paths as the Deployment, and the names the chart gives release "files".
    const mounts = Object.fromEntries(list(at(warden, 'volumeMounts')).map((m) => [String(at(m, 'name')), at(m, 'mountPath')]));
    expect(mounts).toEqual({ 'warden-config': '/etc/mcp-warden', 'warden-key': dirname(String(at(values, 'config', 'identity', 'signingKeyFile'))) });
    const volumes = list(at(pod, 'spec', 'volumes'));
    expect(volumes.map((v) => at(v, 'configMap', 'name') ?? at(v, 'secret', 'secretName'))).toEqual(['files-mcp-warden', 'files-mcp-warden']);
    expect(at(volumes[1], 'secret', 'defaultMode')).toBe(0o400);
    expect(at(pod, 'spec', 'securityContext', 'fsGroup')).toBe(dockerfileUser().gid);
    expect(read(CHART, 'README.md')).toMatch(/## Sidecar mode[\s\S]*examples\/sidecar-pod\.yaml/);
  });
});

describe('Helm chart: sidecar mode as a template (issue 24 §6)', () => {
  /** The body of `{{- define "<name>" -}} … {{- end -}}` in a .tpl file. */
  const defineBody = (file: string, name: string): string => {
    const text = template(file);
    const open = `{{- define "${name}" -}}`;
    const from = text.indexOf(open);
    const to = text.indexOf('{{- end -}}', from);
    if (from < 0 || to < 0) throw new Error(`${file} has no define "${name}"`);
    return text.slice(from + open.length, to);
  };
  const yamlOf = (text: string): unknown => {
    const doc = parseDocument(skeleton(text));
    if (doc.errors.length > 0) throw new Error(doc.errors.map((e) => e.message).join('; '));
    return doc.toJS();
  };
  const indented = (text: string, by: number): string => text.split('\n').filter((l) => l.trim() !== '').map((l) => ' '.repeat(by) + l).join('\n');
  /** sidecar-deployment.yaml with its three whole-line outputs written as Helm would, then the skeleton. */
  const rendered = (container: unknown): unknown => {
    const text = template('sidecar-deployment.yaml');
    const outputs: [RegExp, string][] = [
      [/^ *\{\{- toYaml \(list \.Values\.sidecar\.container\) \| nindent 8 \}\}$/m, stringify([container])],
      [/^ *\{\{- include "mcp-warden\.sidecar\.container" \. \| nindent 8 \}\}$/m, defineBody('_sidecar.tpl', 'mcp-warden.sidecar.container')],
      [/^ *\{\{- include "mcp-warden\.sidecar\.volumes" \. \| nindent 8 \}\}$/m, defineBody('_sidecar.tpl', 'mcp-warden.sidecar.volumes')],
    ];
    let out = text;
    for (const [pattern, replacement] of outputs) {
      expect(pattern.test(out), String(pattern)).toBe(true);
      out = out.replace(pattern, () => indented(replacement, 8));
    }
    return yamlOf(out);
  };
  const merged = helmMerge(helmMerge(values, parse(read(CHART, 'examples', 'values-sidecar.yaml'))), parse(read(CHART, 'examples', 'values-sidecar-workload.yaml')));
  const edgeContainer = list(at(skeletonOf('deployment.yaml'), 'spec', 'template', 'spec', 'containers'))[0];

  it('mode: sidecar with sidecar.container renders one Deployment whose pods run that MCP server, then mcp-warden', () => {
    const deployment = rendered(at(merged, 'sidecar', 'container'));
    expect([at(deployment, 'apiVersion'), at(deployment, 'kind')]).toEqual(['apps/v1', 'Deployment']);
    const pod = at(deployment, 'spec', 'template', 'spec');
    const containers = list(at(pod, 'containers'));
    expect(containers.map((c) => at(c, 'name'))).toEqual(['files-mcp', 'mcp-warden']);
    expect(at(containers[0], 'ports')).toBeUndefined();
    expect(list(at(containers[0], 'env')).find((e) => at(e, 'name') === 'HOST')).toEqual({ name: 'HOST', value: '127.0.0.1' });
    // Only mcp-warden's listeners are declared; its mounts are the pod's volumes.
    expect(list(at(containers[1], 'ports')).map((p) => at(p, 'name'))).toEqual(['http', 'admin']);
    const mounts = list(at(containers[1], 'volumeMounts')).map((m) => at(m, 'name'));
    expect(list(at(pod, 'volumes')).map((v) => at(v, 'name'))).toEqual(mounts);
    expect(at(pod, 'automountServiceAccountToken')).toBe(false);
    expect(at(pod, 'securityContext')).toEqual({ fsGroup: 'x', seccompProfile: { type: 'RuntimeDefault' } });
    expect(at(list(at(pod, 'volumes'))[1], 'secret', 'defaultMode')).toBe(0o400);
    expect(at(merged, 'sidecar', 'replicaCount')).toBe(2);
  });

  it("the sidecar container is the edge Deployment's container: same args, ports, probes, preStop, hardening and mount paths", () => {
    const sidecar = list(yamlOf(defineBody('_sidecar.tpl', 'mcp-warden.sidecar.container')))[0];
    for (const key of ['image', 'imagePullPolicy', 'args', 'ports', 'lifecycle', 'livenessProbe', 'readinessProbe', 'resources']) expect(at(sidecar, key), key).toEqual(at(edgeContainer, key));
    // On the container rather than the pod, so the workload beside it keeps its own user.
    expect(at(sidecar, 'securityContext')).toEqual({ ...(at(edgeContainer, 'securityContext') as object), runAsUser: 'x', runAsGroup: 'x' });
    const paths = (c: unknown): unknown[] => list(at(c, 'volumeMounts')).map((m) => [at(m, 'mountPath'), at(m, 'readOnly')]);
    expect(paths(sidecar)).toEqual(paths(edgeContainer));
    expect(list(at(sidecar, 'volumeMounts')).map((m) => at(m, 'name'))).toEqual(['mcp-warden-config', 'mcp-warden-signing-key']);
    const raw = defineBody('_sidecar.tpl', 'mcp-warden.sidecar.container');
    expect(raw).toContain('{{- toYaml .Values.resources | nindent 4 }}');
    expect(raw).toMatch(/\{\{- with \.Values\.env \}\}\n\s+env:\n\s+\{\{- toYaml \. \| nindent 4 \}\}/);
  });

  it('refuses to render a workload that declares ports, has no image, or an upstream off loopback', () => {
    const raw = template('sidecar-deployment.yaml');
    expect(raw).toMatch(/\{\{- if not \(get \.Values\.sidecar\.container "image"\) \}\}\n\{\{- fail /);
    expect(raw).toMatch(/\{\{- if hasKey \.Values\.sidecar\.container "ports" \}\}\n\{\{- fail /);
    expect(raw).toContain('config.identity.signingKeyFile must be /var/run/secrets/mcp-warden/gateway.jwk');
    // The loopback rule, as Go's regexp reads it (the template string unescaped), against targets.
    const go = /regexMatch "((?:[^"\\]|\\.)*)" \.target/.exec(raw)?.[1] ?? '';
    const loopback = new RegExp(go.replaceAll('\\\\', '\\'));
    expect(['http://127.0.0.1:3001/mcp', 'http://localhost:3001/mcp', 'http://[::1]:3001/mcp'].filter((t) => loopback.test(t))).toHaveLength(3);
    expect(['http://127.0.0.1.evil.example/mcp', 'http://files.default.svc:3001/mcp', 'https://10.0.0.5/mcp', 'http://0.0.0.0:3001/'].filter((t) => loopback.test(t))).toEqual([]);
    for (const u of list(at(merged, 'config', 'upstreams'))) expect(loopback.test(String(at(u, 'target')))).toBe(true);
  });

  it('_sidecar.tpl documents how another chart includes it, and the README names both ways', () => {
    expect(template('_sidecar.tpl')).toMatch(/include "mcp-warden\.sidecar\.container" \$ctx \| nindent 8\n.*include "mcp-warden\.sidecar\.volumes" \$ctx \| nindent 8\n/);
    const readme = read(CHART, 'README.md');
    expect(readme).toMatch(/## Sidecar mode[\s\S]*sidecar\.container[\s\S]*_sidecar\.tpl/);
  });

  const helm = spawnSync('helm', ['version', '--short'], { timeout: 10_000 }).status === 0;
  if (!helm) process.stderr.write('chart.test.ts: no helm binary: helm lint / helm template skipped, the static checks above stand in\n');
  it.skipIf(!helm)('helm lint passes and helm template renders the sidecar workload with mcp-warden beside it', () => {
    const args = ['-f', join(CHART, 'examples/values-sidecar.yaml'), '-f', join(CHART, 'examples/values-sidecar-workload.yaml'), '--set', 'signingKey.jwk={"kty":"OKP"}'];
    expect(spawnSync('helm', ['lint', CHART, ...args], { timeout: 60_000 }).status).toBe(0);
    const out = spawnSync('helm', ['template', 'files', CHART, ...args], { timeout: 60_000, encoding: 'utf8' });
    expect(out.status).toBe(0);
    const docs = out.stdout.split(/^---$/m).map((d) => parse(d) as unknown).filter((d) => d !== null);
    const deployment = docs.find((d) => at(d, 'kind') === 'Deployment');
    expect(list(at(deployment, 'spec', 'template', 'spec', 'containers')).map((c) => at(c, 'name'))).toEqual(['files-mcp', 'mcp-warden']);
  });
});

describe('the chart checkers catch what they look for', () => {
  it('templateProblems: unclosed action, stray braces, missing or extra end, else outside a block', () => {
    expect(templateProblems('a: {{ .Values.a }}\n{{- if .Values.b }}\nb: 1\n{{- end }}\n')).toEqual([]);
    expect(templateProblems('a: {{ .Values.a }\nb: {{ .Values.b }}\n')).toEqual(['line 1: action not closed before the next {{']);
    expect(templateProblems('a: .Values.a }}\n')).toEqual(['line 1: stray }}']);
    expect(templateProblems('{{- if .Values.b }}\nb: 1\n')).toEqual(['line 1: if without end']);
    expect(templateProblems('b: 1\n{{- end }}\n')).toEqual(['line 2: end without a block']);
    expect(templateProblems('{{- else }}\n')).toEqual(['line 1: else outside if/with/range']);
  });

  it('skeleton: drops whole-line actions, turns inline ones into x, keeps broken YAML broken', () => {
    const text = 'metadata:\n  labels:\n    {{- include "l" . | nindent 4 }}\n  name: {{ .Values.n }}\n';
    expect(parse(skeleton(text))).toEqual({ metadata: { labels: null, name: 'x' } });
    expect(parseDocument(skeleton('a:\n  b: {{ .Values.b }}\n c: 1\n')).errors.length).toBeGreaterThan(0);
  });

  it('wholeLineOutputProblems: output on its own line without nindent is reported', () => {
    expect(wholeLineOutputProblems('  {{- toYaml .Values.r | nindent 2 }}\n  {{- end }}\n')).toEqual([]);
    expect(wholeLineOutputProblems('  {{ toYaml .Values.r | indent 2 }}\n')).toHaveLength(1);
  });

  it('missingValuePaths and unusedValues: a path without a value, a value without a reader', () => {
    const root = { a: { b: 1 }, unused: { c: [] } };
    expect(missingValuePaths(['{{ .Values.a.b }} {{ $.Values.a.nope }}'], root)).toEqual(['.Values.a.nope']);
    expect(unusedValues(['{{ .Values.a }}'], root)).toEqual(['unused.c']);
  });

  it('helmMerge: maps merge, lists and scalars replace', () => {
    expect(helmMerge({ m: { a: 1, b: 2 }, l: [1, 2] }, { m: { b: 3 }, l: [9] })).toEqual({ m: { a: 1, b: 3 }, l: [9] });
  });
});
