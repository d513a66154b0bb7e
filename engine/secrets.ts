// A guard against secrets in step outputs, which are written to the state
// file: any key whose name contains one of these words is rejected.
import type { JsonValue } from './step.js';

const SECRET_WORDS = new Set(['token', 'tokens', 'secret', 'secrets', 'key', 'keys', 'password', 'passwords', 'passwd', 'passphrase', 'credential', 'credentials', 'privatekey']);

/** Splits camelCase, snake_case, kebab-case and dotted names into lowercase words. */
function words(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter((word) => word !== '')
    .map((word) => word.toLowerCase());
}

/** Returns the path of the first key that names a secret, or undefined. */
export function findSecretKey(value: JsonValue | undefined, path = ''): string | undefined {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findSecretKey(value[i], `${path}[${i}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, child] of Object.entries(value)) {
    const keyPath = path === '' ? key : `${path}.${key}`;
    if (words(key).some((word) => SECRET_WORDS.has(word))) return keyPath;
    const found = findSecretKey(child, keyPath);
    if (found !== undefined) return found;
  }
  return undefined;
}
