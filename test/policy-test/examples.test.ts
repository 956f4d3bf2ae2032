import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { policyTest } from '../../src/policy-test/command.ts';

// Every example config ships with its policy tests (config/policy-tests/<same name>), run here.
const examples = readdirSync('config').filter((f) => f.endsWith('.yaml'));

describe('the example policies in config/ pass their policy tests', () => {
  it('has at least the CEL example', () => {
    expect(examples).toContain('sql-analytics.yaml');
  });
  for (const example of examples) {
    it(`config/${example}`, () => {
      const tests = join('config', 'policy-tests', example);
      expect(readdirSync(join('config', 'policy-tests')), `${tests} is missing`).toContain(example);
      const result = policyTest(tests);
      expect(result.output).toMatch(/\n\d+ passed, 0 failed\n$/);
      expect(result.code).toBe(0);
    });
  }
});
