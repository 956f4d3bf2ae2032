import { loadConfigText } from '../../src/config/compile.ts';
import { ConfigError } from '../../src/config/errors.ts';

/** A config text's problems as `key: message` lines; none when it loads. Any other error is thrown. */
export function configProblems(text: string): string[] {
  try {
    loadConfigText(text);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.map((p) => `${p.key}: ${p.message}`);
  }
}
