import { describe, expect, it } from 'vitest';
import { definitionHash } from '../../src/policy/pins.ts';

// Review probe (wip-review2): a pinned tool redefined in members the pin does not hash. `execution`
// (2025-11-25 tasks: taskSupport forbidden → required changes how a call runs) and `_meta` (e.g. an
// MCP Apps UI resource the client renders) change what the tool does for the client, yet a listing
// with them changed passes `onChange: block` as the pinned definition. (`title` too: left out here,
// README and test/policy/pins.test.ts call it ignored on purpose; worth revisiting.)

const base = { name: 'search', description: 'd', inputSchema: { type: 'object', properties: { q: { type: 'string' } } } };

describe('probe2: a rug pull in tool members the pin does not cover', () => {
  it('changing execution.taskSupport changes the pinned hash', () => {
    expect(definitionHash({ ...base, execution: { taskSupport: 'required' } })).not.toBe(definitionHash({ ...base, execution: { taskSupport: 'forbidden' } }));
  });
  it('changing _meta (a UI resource the client renders) changes the pinned hash', () => {
    expect(definitionHash({ ...base, _meta: { ui: { resourceUri: 'ui://evil/app.html' } } })).not.toBe(definitionHash({ ...base, _meta: { ui: { resourceUri: 'ui://search/app.html' } } }));
  });
});
