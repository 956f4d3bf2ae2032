import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';

// No Docker engine runs here: the Dockerfile is checked by reading it.
const lines = readFileSync('Dockerfile', 'utf8').split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
const instr = (name: string): string[] => lines.filter((l) => l.startsWith(name + ' '));

describe('Dockerfile (static)', () => {
  it('is multi-stage on Node 24 slim, with production dependencies only', () => {
    const froms = instr('FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) expect(f).toMatch(/^FROM node:24-slim\b/);
    expect(instr('RUN').some((r) => r.includes('npm ci --omit=dev'))).toBe(true);
    expect(instr('COPY').some((c) => /\b(test|bench)\b/.test(c))).toBe(false);
  });

  it('runs as a numeric non-root user and checks /healthz on the admin port', () => {
    const user = instr('USER').at(-1) ?? '';
    const uid = Number(/^USER (\d+)/.exec(user)?.[1]);
    expect(uid).toBeGreaterThan(0);
    const health = lines.join('\n');
    expect(health).toMatch(/HEALTHCHECK[\s\S]*127\.0\.0\.1:9090\/healthz/);
  });

  it('starts `mcp-warden serve --config /etc/mcp-warden/config.yaml`', () => {
    expect(instr('ENTRYPOINT')).toEqual(['ENTRYPOINT ["node", "/app/bin/mcp-warden.js"]']);
    expect(instr('CMD').at(-1)).toBe('CMD ["serve", "--config", "/etc/mcp-warden/config.yaml"]');
    expect(instr('EXPOSE')).toEqual(['EXPOSE 8080 9090']);
  });
});
