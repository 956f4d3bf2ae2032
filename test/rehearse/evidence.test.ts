import { describe, expect, it } from 'vitest';
import { evidenceHtml } from '../../src/rehearse/evidence-html.ts';
import { evidenceMarkdown, reportFiles } from '../../src/rehearse/evidence.ts';
import type { Evidence } from '../../src/rehearse/evidence-model.ts';

const HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)> | `x` "q" \'s\n';
const evidence: Evidence = {
  meta: { generatedAt: '2026-12-01T00:00:01.000Z', gatewayVersion: 'mcp-warden 0.1.0', configFile: 'c.yaml', configSha256: '0'.repeat(64), targets: [{ name: 'upstream x (direct)', url: `http://127.0.0.1:1/${HOSTILE}` }] },
  results: [
    { drill: `direct x ${HOSTILE}`, status: 'fail', detail: `401 ${HOSTILE}`, id: 'direct-upstream', controls: ['OWASP Agentic A-02'], startedAt: '2026-12-01T00:00:00.000Z', endedAt: '2026-12-01T00:00:00.500Z' },
    { drill: 'no token', status: 'pass', detail: '401', id: 'no-token', controls: ['CSA MAESTRO IAM-01'], startedAt: '2026-12-01T00:00:00.500Z', endedAt: '2026-12-01T00:00:01.000Z' },
  ],
};

describe('the evidence report escapes what came from the target', () => {
  it('HTML: no markup from a drill name, detail or target URL survives', () => {
    const html = evidenceHtml(evidence);
    expect(html).not.toMatch(/<script|<img|onerror=alert\(2\)>/);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt; | `x` &quot;q&quot; &#39;s');
    expect(html.match(/<tr class="drill"/g)).toHaveLength(2);
  });

  it('Markdown: no raw HTML, no cell break, no line break inside a row', () => {
    const md = evidenceMarkdown(evidence);
    expect(md).not.toMatch(/<script|<img/);
    const row = md.split('\n').find((l) => l.startsWith('| 1 |')) as string;
    expect(row).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt; \\| \\`x\\` "q" \'s');
    expect(row.split(/(?<!\\)\|/).length).toBe(10);
  });

  it('--report names both files from one: by extension, or <file>.md and <file>.html', () => {
    expect(reportFiles('out/evidence')).toEqual({ markdown: 'out/evidence.md', html: 'out/evidence.html' });
    expect(reportFiles('r.md')).toEqual({ markdown: 'r.md', html: 'r.html' });
    expect(reportFiles('r.html')).toEqual({ markdown: 'r.md', html: 'r.html' });
  });
});
