import { isIPv6 } from 'node:net';
import { loadConfigFile } from '../config/load.ts';

/**
 * `mcp-warden health --config <file>`: the container HEALTHCHECK. Asks /healthz on the admin listener
 * the config names, so the probe follows `admin.port` instead of a port baked into the image
 * (issue 24 §6). Only the YAML, ${ENV} and schema steps run: the admin section is all it needs.
 */
export async function probeHealth(configFile: string, timeoutMs = 3_000): Promise<{ readonly ok: boolean; readonly detail: string }> {
  const { admin } = loadConfigFile(configFile).raw;
  const url = `http://${probeHost(admin.host)}:${admin.port}/healthz`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    await res.body?.cancel();
    return { ok: res.status === 200, detail: `${url}: status ${res.status}` };
  } catch (err) {
    const cause = (err as { cause?: { code?: unknown } }).cause?.code;
    return { ok: false, detail: `${url}: ${typeof cause === 'string' ? cause : err instanceof Error && err.name === 'TimeoutError' ? 'timed out' : 'unreachable'}` };
  }
}

/** A wildcard listener is asked on loopback of its family; a named address on itself. */
function probeHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '[::1]';
  return isIPv6(host) ? `[${host}]` : host;
}
