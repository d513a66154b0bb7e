// Validates the loaded YAML value against schemas/renameplan.v1alpha1.json
// with ajv and turns each ajv error into a located PlanIssue.
import { readFileSync } from 'node:fs';
import Ajv2020Module, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import type { IssueList } from './issues.js';
import { showValue } from './issues.js';
import { HOST_FIX } from './rules.js';
import type { PathSegment, YamlSource } from './yaml-source.js';

export const SCHEMA_URL = new URL('../../../schemas/renameplan.v1alpha1.json', import.meta.url);

// ajv is CommonJS; under NodeNext its default export arrives as the module object.
const Ajv2020 = ((Ajv2020Module as unknown as { default?: unknown }).default ?? Ajv2020Module) as typeof Ajv2020Module.default;

let validator: ValidateFunction | undefined;

function compileSchema(): ValidateFunction {
  if (validator === undefined) {
    const schema = JSON.parse(readFileSync(SCHEMA_URL, 'utf8')) as object;
    const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: true });
    validator = ajv.compile(schema);
  }
  return validator!;
}

/** Expectation and fix for each `$defs` entry of the schema, used in pattern and length errors. */
const FORMATS: Record<string, { expected: string; fix: string }> = {
  nodeName: {
    expected: 'a valid Kubernetes node name (DNS-1123 subdomain: at most 253 characters, lowercase letters, digits, "-" and ".", starting and ending with a letter or digit)',
    fix: 'use lowercase letters, digits, "-" and ".", for example "worker-12.prod.example.com"',
  },
  dns1123Label: {
    expected: 'a DNS-1123 label (at most 63 characters, lowercase letters, digits and "-", starting and ending with a letter or digit)',
    fix: 'use lowercase letters, digits and "-", for example "ip-to-fqdn"',
  },
  host: {
    expected: 'an IPv4 address, an IPv6 address or a DNS name',
    fix: HOST_FIX,
  },
  user: {
    expected: 'a user name (letters, digits, "_", "." and "-", at most 32 characters, not starting with a digit)',
    fix: 'write the login name, for example "root" or "ubuntu"',
  },
  duration: {
    expected: 'a duration such as "90s", "5m", "1h30m" or "500ms"',
    fix: 'write a number followed by ms, s, m or h',
  },
};

const PROPERTY_FORMATS: Record<string, { expected: string; fix: string }> = {
  sshOptions: {
    expected: 'an ssh option in the form Name=value',
    fix: 'write it as in ssh -o, for example "StrictHostKeyChecking=yes"',
  },
  identityFile: {
    expected: 'a path to an ssh private key file',
    fix: "write the path to the key, for example ~/.ssh/id_ed25519, or remove the field to use ssh's default keys",
  },
  sshConfig: {
    expected: 'a path to an ssh_config file',
    fix: "write the path to the file, for example ./ssh_config, or remove the field to use ssh's default configuration",
  },
  unit: {
    expected: 'a systemd unit name',
    fix: 'write the unit name, for example "kubelet" or "kubelet.service"',
  },
};

export function checkSchema(value: unknown, source: YamlSource, issues: IssueList): boolean {
  const validate = compileSchema();
  if (validate(value)) return true;
  for (const error of validate.errors ?? []) reportError(error, source, issues);
  return false;
}

function reportError(error: ErrorObject, source: YamlSource, issues: IssueList): void {
  const path = parsePointer(error.instancePath);
  const got = showValue(error.data);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required': {
      const field = String(params['missingProperty']);
      issues.add(source.valuePosition(path), [...path, field], `missing required field "${field}"`, `add "${field}:" to ${path.length === 0 ? 'the top level' : 'this mapping'}`);
      return;
    }
    case 'additionalProperties': {
      const field = String(params['additionalProperty']);
      const allowed = Object.keys((error.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      const suggestion = closest(field, allowed);
      const fix = suggestion !== undefined ? `did you mean "${suggestion}"? Otherwise remove it` : `remove it; allowed fields here: ${allowed.join(', ')}`;
      issues.add(source.keyPosition([...path, field]), [...path, field], `unknown field "${field}"`, fix);
      return;
    }
    case 'type':
      issues.add(source.valuePosition(path), path, `expected ${describeType(String(params['type']))}, got ${got}`, `write ${describeType(String(params['type']))} here`);
      return;
    case 'const':
      issues.add(source.valuePosition(path), path, `must be ${showValue(params['allowedValue'])}, got ${got}`, `write ${showValue(params['allowedValue'])}`);
      return;
    case 'enum': {
      const allowed = (params['allowedValues'] as unknown[]).map((v) => showValue(v)).join(', ');
      issues.add(source.valuePosition(path), path, `must be one of ${allowed}; got ${got}`, `write one of ${allowed}`);
      return;
    }
    case 'pattern':
    case 'maxLength':
    case 'minLength': {
      const format = formatOf(error, path);
      // An empty string breaks minLength and usually the pattern too: report it once, as the pattern.
      if (error.keyword === 'minLength' && error.data === '' && hasPattern(error)) return;
      const known = FORMATS[/^#\/\$defs\/([^/]+)\//.exec(error.schemaPath)?.[1] ?? ''] !== undefined || PROPERTY_FORMATS[String([...path].reverse().find((segment) => typeof segment === 'string'))] !== undefined;
      const detail = error.keyword === 'pattern' || (known && error.data === '') ? '' : ` (${error.message})`;
      issues.add(source.valuePosition(path), path, `must be ${format.expected}${detail}; got ${got}`, format.fix);
      return;
    }
    case 'minimum':
    case 'maximum':
      issues.add(source.valuePosition(path), path, `must be ${error.keyword === 'minimum' ? 'at least' : 'at most'} ${String(params['limit'])}; got ${got}`, `write a number ${error.keyword === 'minimum' ? '>=' : '<='} ${String(params['limit'])}`);
      return;
    case 'minItems':
      issues.add(source.valuePosition(path), path, `must list at least ${String(params['limit'])} ${params['limit'] === 1 ? 'entry' : 'entries'}`, 'add an entry such as "- { from: ip-10-0-1-12, to: worker-12.example.com }"');
      return;
    case 'maxItems':
      issues.add(source.valuePosition(path), path, `must list at most ${String(params['limit'])} entries`, 'split the list into several plans');
      return;
    default:
      issues.add(source.valuePosition(path), path, `${error.message ?? 'is invalid'}; got ${got}`, 'correct the value');
  }
}

function hasPattern(error: ErrorObject): boolean {
  return typeof (error.parentSchema as { pattern?: unknown } | undefined)?.pattern === 'string';
}

function formatOf(error: ErrorObject, path: PathSegment[]): { expected: string; fix: string } {
  const definition = /^#\/\$defs\/([^/]+)\//.exec(error.schemaPath)?.[1];
  if (definition !== undefined && FORMATS[definition] !== undefined) return FORMATS[definition];
  const property = [...path].reverse().find((segment) => typeof segment === 'string');
  if (property !== undefined && PROPERTY_FORMATS[property] !== undefined) return PROPERTY_FORMATS[property];
  return { expected: `a string matching ${String((error.params as Record<string, unknown>)['pattern'] ?? error.message)}`, fix: 'correct the value' };
}

function describeType(type: string): string {
  switch (type) {
    case 'object':
      return 'a mapping';
    case 'array':
      return 'a list';
    case 'integer':
      return 'a whole number';
    case 'boolean':
      return 'true or false';
    default:
      return `a ${type}`;
  }
}

/** Parses an ajv instancePath ("/spec/nodes/3") into path segments. */
function parsePointer(pointer: string): PathSegment[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^(0|[1-9][0-9]*)$/.test(part) ? Number(part) : part));
}

/** Returns the allowed name closest to `name` when it is near enough to be a typo. */
export function closest(name: string, allowed: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of allowed) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    previous = current;
  }
  return previous[b.length]!;
}
