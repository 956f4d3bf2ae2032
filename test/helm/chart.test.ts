import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { loadConfigText } from '../../src/config/compile.ts';

// No helm binary runs here: the chart is kept correct by reading it. These checks parse what can be
// parsed and make sure every value a template uses exists.
const CHART = 'helm/mcp-warden';
const templates = readdirSync(join(CHART, 'templates')).map((name) => ({ name, text: readFileSync(join(CHART, 'templates', name), 'utf8') }));
const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Record<string, unknown>;

function valueAt(path: readonly string[]): unknown {
  let node: unknown = values;
  for (const key of path) {
    if (typeof node !== 'object' || node === null || !(key in node)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/** The YAML a template leaves when its actions are removed: whole-line actions dropped, inline ones → x. */
function skeleton(text: string): string {
  return text
    .split('\n')
    .filter((line) => !/^\s*\{\{-?.*-?\}\}\s*$/.test(line))
    .map((line) => line.replace(/\{\{-?.*?-?\}\}/g, 'x'))
    .join('\n');
}

describe('Helm chart (static)', () => {
  it('Chart.yaml is a v2 application chart', () => {
    const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as Record<string, unknown>;
    expect(chart).toMatchObject({ apiVersion: 'v2', name: 'mcp-warden', type: 'application' });
    expect(String(chart['version'])).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('every .Values path a template uses exists in values.yaml', () => {
    const missing: string[] = [];
    let used = 0;
    for (const t of templates) {
      for (const m of t.text.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
        used++;
        const path = (m[1] as string).slice(1).split('.');
        if (valueAt(path) === undefined) missing.push(`${t.name}: .Values.${path.join('.')}`);
      }
    }
    expect(used).toBeGreaterThan(30);
    expect(missing).toEqual([]);
  });

  it('templates are well-formed: actions closed, if/range/with/define balanced with end', () => {
    for (const t of templates) {
      expect(t.text.split('{{').length, t.name).toBe(t.text.split('}}').length);
      let depth = 0;
      for (const m of t.text.matchAll(/\{\{-?\s*(if|range|with|define|end|else)\b/g)) {
        if (m[1] === 'end') depth--;
        else if (m[1] !== 'else') depth++;
        expect(depth, `${t.name}: end without a block`).toBeGreaterThanOrEqual(0);
      }
      expect(depth, `${t.name}: unclosed block`).toBe(0);
    }
  });

  it('every manifest template, stripped of its actions, is valid YAML of a Kubernetes kind', () => {
    const kinds: string[] = [];
    for (const t of templates.filter((x) => x.name.endsWith('.yaml'))) {
      const doc = parse(skeleton(t.text)) as { apiVersion?: string; kind?: string };
      expect(doc.apiVersion, t.name).toBeTypeOf('string');
      kinds.push(String(doc.kind));
    }
    expect(kinds.sort()).toEqual(['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'NetworkPolicy', 'PodDisruptionBudget', 'Secret', 'Service', 'ServiceMonitor']);
  });

  it('the default config in values.yaml is a valid mcp-warden config, on the ports the chart exposes', () => {
    const config = loadConfigText(stringify(values['config']), 'values.yaml#config');
    expect(config.listen.port).toBe(valueAt(['ports', 'traffic']));
    expect(config.admin.port).toBe(valueAt(['ports', 'admin']));
    expect(config.identity.signingKeyFile.startsWith('/etc/mcp-warden/keys/')).toBe(true);
  });

  it('pods run non-root, read-only, without privilege escalation or capabilities', () => {
    expect(valueAt(['podSecurityContext', 'runAsNonRoot'])).toBe(true);
    expect(valueAt(['podSecurityContext', 'runAsUser'])).toBeGreaterThan(0);
    expect(valueAt(['podSecurityContext', 'seccompProfile', 'type'])).toBe('RuntimeDefault');
    expect(valueAt(['securityContext'])).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    const deployment = templates.find((t) => t.name === 'deployment.yaml')?.text ?? '';
    expect(deployment).toContain('toYaml .Values.podSecurityContext');
    expect(deployment).toContain('toYaml .Values.securityContext');
  });

  it('probes use /healthz and /readyz on the admin port; a config change rolls the pods; the key is mounted read-only', () => {
    const d = parse(skeleton(templates.find((t) => t.name === 'deployment.yaml')?.text ?? '')) as {
      spec: { template: { metadata: { annotations: Record<string, unknown> }; spec: { containers: { livenessProbe: unknown; readinessProbe: unknown; volumeMounts: { name: string; readOnly: boolean }[] }[]; volumes: { name: string; secret?: { defaultMode: number } }[] } } };
    };
    const c = d.spec.template.spec.containers[0];
    expect(c?.livenessProbe).toMatchObject({ httpGet: { path: '/healthz', port: 'admin' } });
    expect(c?.readinessProbe).toMatchObject({ httpGet: { path: '/readyz', port: 'admin' } });
    expect(Object.keys(d.spec.template.metadata.annotations)).toContain('checksum/config');
    expect(c?.volumeMounts.every((m) => m.readOnly)).toBe(true);
    expect(d.spec.template.spec.volumes.find((v) => v.name === 'signing-key')?.secret?.defaultMode).toBe(0o400);
  });

  it('sidecar mode is documented with an example pod whose MCP server listens on loopback only', () => {
    const pod = parse(readFileSync(join(CHART, 'examples/sidecar-pod.yaml'), 'utf8')) as { spec: { containers: { name: string; ports?: unknown[]; env?: { name: string; value: string }[] }[] } };
    const server = pod.spec.containers.find((c) => c.name !== 'mcp-warden');
    expect(server?.ports).toBeUndefined();
    expect(server?.env?.find((e) => e.name === 'HOST')?.value).toBe('127.0.0.1');
    expect(pod.spec.containers.find((c) => c.name === 'mcp-warden')?.ports).toHaveLength(2);
    expect(readFileSync(join(CHART, 'README.md'), 'utf8')).toMatch(/Sidecar mode/);
  });
});
