// A guard against secrets in step outputs, which are written to the state file. Output names
// chosen by a step are checked for secret words; values anywhere in the outputs are checked
// for the shapes of a bootstrap token and of a PEM private key. Keys below the top level are
// data (a Node's label and annotation names, for example), so their names are not checked.
import type { JsonValue } from './step.js';

const SECRET_WORDS = new Set(['token', 'tokens', 'secret', 'secrets', 'key', 'keys', 'password', 'passwords', 'passwd', 'passphrase', 'credential', 'credentials', 'privatekey']);

/** A bootstrap token (`<id>.<secret>`, 6 and 16 characters of [a-z0-9]) or a PEM private key. */
const SECRET_VALUE = /(?:^|[^a-z0-9])[a-z0-9]{6}\.[a-z0-9]{16}(?:$|[^a-z0-9])|-----BEGIN [A-Z ]*PRIVATE KEY-----/;

/** Splits camelCase, snake_case, kebab-case and dotted names into lowercase words. */
function words(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter((word) => word !== '')
    .map((word) => word.toLowerCase());
}

function findSecretValue(value: JsonValue | undefined, path: string): string | undefined {
  if (typeof value === 'string') return SECRET_VALUE.test(value) ? path : undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findSecretValue(value[i], `${path}[${i}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, child] of Object.entries(value)) {
    const found = findSecretValue(child, path === '' ? key : `${path}.${key}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** Returns the path of the first output that names or holds a secret, or undefined. */
export function findSecretKey(outputs: JsonValue | undefined): string | undefined {
  if (outputs !== null && typeof outputs === 'object' && !Array.isArray(outputs)) {
    for (const key of Object.keys(outputs)) {
      if (words(key).some((word) => SECRET_WORDS.has(word))) return key;
    }
  }
  return findSecretValue(outputs, '');
}
