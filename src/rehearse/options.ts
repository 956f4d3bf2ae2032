import type { Config } from '../config/compile.ts';

/**
 * `--direct-url <upstream>=<url>`, repeatable: where each upstream's MCP server answers without the
 * gateway. A bare URL names the first upstream (the flag's older form). Returns the problem otherwise.
 */
export function parseDirectUrls(values: readonly string[], config: Config): Map<string, string> | string {
  const out = new Map<string, string>();
  for (const value of values) {
    const eq = value.indexOf('=');
    const bare = eq < 0 || /^[a-z][a-z0-9+.-]*:\/\//i.test(value);
    const name = bare ? config.upstreams[0]?.name : value.slice(0, eq);
    const url = bare ? value : value.slice(eq + 1);
    if (name === undefined || !config.upstreams.some((u) => u.name === name)) return `--direct-url ${value}: no upstream named ${name ?? '(none)'}`;
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) return `--direct-url ${value}: not an http(s) URL`;
    if (out.has(name)) return `--direct-url: upstream ${name} given twice`;
    out.set(name, url);
  }
  return out;
}

/** `--step-up-tool <upstream>/<tool>`: the tool the step-up drill may call (an unknown upstream fails the drill). */
export function parseStepUpTool(value: string | undefined): { upstream: string; tool: string } | undefined {
  if (value === undefined) return undefined;
  const slash = value.indexOf('/');
  return slash < 0 ? { upstream: '', tool: value } : { upstream: value.slice(0, slash), tool: value.slice(slash + 1) };
}
