import { describe, expect, it } from 'vitest';
import { fold, methodIsSound, nameIsSound } from '../../src/policy/names.ts';

// names.ts takes printable ASCII names, ASCII keys and the MCP methods without its Unicode look-ups:
// each such shortcut must answer exactly as the full checks do (these references are those checks).
const FORBIDDEN = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]/u;
const EDGE_SPACE = /^\p{White_Space}|\p{White_Space}$/u;
const soundByProperties = (name: string): boolean => name.length > 0 && !FORBIDDEN.test(name) && !EDGE_SPACE.test(name);
const foldByNormalising = (name: string): string =>
  name.normalize('NFKC').toUpperCase().toLowerCase().replaceAll('\u03c2', '\u03c3').normalize('NFKC');

/** Every unit up to U+00FF alone, and at the start, inside and at the end of a name. */
function spellings(): string[] {
  const out: string[] = [];
  for (let c = 0; c <= 0xff; c++) {
    const u = String.fromCharCode(c);
    out.push(u, `${u}ab`, `a${u}b`, `ab${u}`, `${u}${u}`);
  }
  return out;
}

describe('names: the shortcuts answer as the full checks do', () => {
  it('judges every name made of ASCII and Latin-1 units as the Unicode property checks do', () => {
    for (const name of ['', ...spellings()]) expect(nameIsSound(name), JSON.stringify(name)).toBe(soundByProperties(name));
  });

  it('folds every such name as NFKC and the case fold do', () => {
    for (const name of [...spellings(), 'Tools/Call', 'KELVIN\u212a', 'ﬁle', 'ΣΑΣ']) expect(fold(name), JSON.stringify(name)).toBe(foldByNormalising(name));
  });

  it('takes the MCP methods as spelt, and refuses their loose spellings', () => {
    for (const method of ['tools/call', 'logging/setLevel', 'notifications/roots/list_changed', 'tasks/get', 'x/y']) expect(methodIsSound(method), method).toBe(true);
    for (const method of ['tools/cAll', 'logging/setlevel', 'notifications/roots/listChanged', 'Tools/call', 'tools/', '']) expect(methodIsSound(method), method).toBe(false);
  });
});
