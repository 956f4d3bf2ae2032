import { writeFileSync } from 'node:fs';
import { evidenceHtml } from './evidence-html.ts';
import { controlSummary, countBy, runSpan, STATUSES, type Evidence } from './evidence-model.ts';
import { exitCode } from './report.ts';

/** `--report <file>`: Markdown and HTML side by side; a .md or .html name keeps its own, the other gets its sibling. */
export function reportFiles(file: string): { readonly markdown: string; readonly html: string } {
  const base = file.replace(/\.(md|markdown|html?)$/i, '');
  return { markdown: /\.(md|markdown)$/i.test(file) ? file : `${base}.md`, html: /\.html?$/i.test(file) ? file : `${base}.html` };
}

export function writeEvidence(file: string, evidence: Evidence): { readonly markdown: string; readonly html: string } {
  const files = reportFiles(file);
  writeFileSync(files.markdown, evidenceMarkdown(evidence));
  writeFileSync(files.html, evidenceHtml(evidence));
  return files;
}

/**
 * Text from the target (details, names, URLs) is escaped for HTML as well as for the table: Markdown
 * renderers pass raw HTML through, so a hostile upstream's answer must not become markup.
 */
export function mdCell(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\|/g, '\\|').replace(/`/g, '\\`').replace(/\r?\n/g, ' ');
}

export function evidenceMarkdown({ meta, results }: Evidence): string {
  const span = runSpan(results);
  const c = countBy(results);
  const lines = [
    '# mcp-warden rehearse: evidence report', '',
    '| | |', '|---|---|',
    `| Run | ${mdCell(span.start)} → ${mdCell(span.end)} |`,
    `| Result | ${c.pass} passed, ${c.fail} failed, ${c.skip} skipped, ${c.warn} warnings; exit code ${exitCode(results, false)} (--strict: ${exitCode(results, true)}) |`,
    `| Gateway version | ${mdCell(meta.gatewayVersion)} |`,
    `| Config | ${mdCell(meta.configFile)} |`,
    `| Config SHA-256 | \`${meta.configSha256}\` |`,
    ...meta.targets.map((t) => `| Target: ${mdCell(t.name)} | ${mdCell(t.url)} |`),
    `| Generated | ${mdCell(meta.generatedAt)} |`,
    '', '## Controls', '',
    '| Control | Framework | Passed | Failed | Skipped | Warnings |', '|---|---|---:|---:|---:|---:|',
    ...controlSummary(results).map((s) => `| ${s.id} | ${s.framework} | ${STATUSES.map((k) => s.counts[k]).join(' | ')} |`),
    '', '## Drills', '',
    '| # | Drill | Id | Controls | Result | Started | Ended | Detail |', '|---:|---|---|---|---|---|---|---|',
    ...results.map((r, i) => `| ${i + 1} | ${mdCell(r.drill)} | ${mdCell(r.id)} | ${r.controls.join(', ')} | ${r.status.toUpperCase()} | ${mdCell(r.startedAt)} | ${mdCell(r.endedAt)} | ${mdCell(r.detail)} |`),
    '',
  ];
  return lines.join('\n');
}
