import { readFileSync } from 'node:fs';
import { loadConfig } from '../config/compile.ts';
import { ConfigError } from '../config/errors.ts';
import { loadPolicyTests } from './cases.ts';
import { describeJudgement, evaluate, formatResults, runCase } from './run.ts';

export interface CommandResult {
  readonly output: string;
  readonly code: number;
}

/** `policy test <file> [--config <file>]`: 0 when every case passes, 1 otherwise. */
export function policyTest(file: string, configOverride?: string): CommandResult {
  const tests = loadPolicyTests(file, configOverride);
  const config = loadConfig(tests.configFile);
  const results = tests.cases.map((c) => runCase(config, c));
  return { output: formatResults(file, results), code: results.every((r) => r.passed) ? 0 : 1 };
}

/**
 * `policy explain --config <file> --claims <json|@file> --call <json|@file> [--upstream <name>]`:
 * the decision for one call, the entry that made it, and the entries that met it without deciding.
 * --call is a JSON-RPC request (`{"method":"tools/call","params":{"name":…,"arguments":{…}}}`).
 */
export function policyExplain(configFile: string, claimsArg: string, callArg: string, upstream: string | undefined): CommandResult {
  const config = loadConfig(configFile);
  const claims = jsonArg('--claims', claimsArg);
  const call = jsonArg('--call', callArg);
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) throw argError('--claims', 'must be a JSON object of token claims');
  if (typeof call !== 'object' || call === null || typeof (call as { method?: unknown }).method !== 'string') throw argError('--call', 'must be a JSON-RPC request with a method');
  const { method, params } = call as { method: string; params?: { name?: unknown; uri?: unknown; arguments?: unknown } };
  const name = typeof params?.name === 'string' ? params.name : undefined;
  const result = evaluate(config, {
    upstream,
    claims: claims as Record<string, unknown>,
    method,
    ...(method === 'prompts/get' ? { prompt: name } : { tool: name }),
    uri: typeof params?.uri === 'string' ? params.uri : undefined,
    arguments: params?.arguments,
  });
  if (typeof result === 'string') return { output: `cannot explain: ${result}\n`, code: 1 };
  const j = result.judgement;
  const rule = result.upstream.rules.find((r) => r.source === j.rule);
  const lines = [
    `upstream:  ${result.upstream.name}`,
    `call:      ${method}${result.call.name === undefined ? '' : ` ${result.call.name}`}${result.call.uri === undefined ? '' : ` ${result.call.uri}`}`,
    `decision:  ${describeJudgement(j)}`,
    `why:       ${why(j.by, j.decision.kind)}`,
    ...(rule?.condition === undefined ? [] : [`condition: ${rule.condition.id} = ${rule.condition.source}`]),
    ...result.notes.map((n) => `passed:    ${n}`),
  ];
  return { output: lines.join('\n') + '\n', code: 0 };
}

function why(by: string, kind: 'allow' | 'deny'): string {
  switch (by) {
    case 'clients': return 'the token\'s client is not in the upstream\'s clients list';
    case 'scopes': return kind === 'allow' ? 'the call needs only the upstream\'s scopes, and the token has them' : 'the token lacks a scope the upstream requires';
    case 'name': return 'the method or name cannot be judged (outside MCP\'s grammar or with forbidden characters)';
    case 'rule': return kind === 'allow' ? 'the first entry meeting the call exactly allowed it' : 'an entry meeting the call refused it (deny, claims, scopes or an undecidable condition)';
    case 'housekeeping': return 'protocol housekeeping no entry names passes with the upstream\'s scopes';
    default: return `no entry decided: the upstream's default applies`;
  }
}

function jsonArg(flag: string, value: string): unknown {
  try {
    return JSON.parse(value.startsWith('@') ? readFileSync(value.slice(1), 'utf8') : value) as unknown;
  } catch {
    throw argError(flag, 'is neither JSON nor @<file with JSON>');
  }
}

function argError(flag: string, message: string): ConfigError {
  return new ConfigError([{ file: flag, line: undefined, key: '', message }]);
}
