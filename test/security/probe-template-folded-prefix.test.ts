import { describe, expect, it } from 'vitest';
import { decide } from '../../src/policy/decide.ts';
import { templateAllowed } from '../../src/policy/templates.ts';
import { compileUpstreams, principal } from '../helpers/policy.ts';

// Review finding (low): templateAllowed (policy/templates.ts) picks the rule prefixes that extend a
// template's literal with a raw `startsWith`, while decide() judges a URI literally AND folded. A
// template whose literal differs from a rule prefix only in case (`FILE:///{path}`) therefore gets no
// representative for the denied prefix and is shown, though every expansion under /etc/ is refused.
const [open] = compileUpstreams(`
  - name: open
    path: /mcp
    target: http://127.0.0.1:1/mcp
    issuers: [idp]
    default: allow
    rules: [{ method: resources/read, resource: "file:///etc/", deny: true }]
`);
const alice = principal('');

describe('a resource template is shown only when every URI it expands to may be read', () => {
  it('control: file:///{path} is hidden (it expands to file:///etc/...)', () => {
    expect(templateAllowed(alice, open!, 'file:///{path}')).toBe(false);
  });

  it('FILE:///{path}, which expands to FILE:///etc/shadow (refused), is hidden too', () => {
    expect(decide(alice, open!, { kind: 'rpc', method: 'resources/read', uri: 'FILE:///etc/shadow' }).kind).toBe('deny');
    expect(templateAllowed(alice, open!, 'FILE:///{path}')).toBe(false);
  });
});
