// Random mutations of valid plans for the plan-loader fuzz test. Every case is a pure function of
// (seed, index), so a failing case can be rebuilt from the seed and index printed with it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { InvalidPlanError } from '../../engine/plan/issues.js';
import { parsePlan } from '../../engine/plan/load.js';
import { repoRoot } from './support.js';

/** mulberry32: a small, fast 32-bit PRNG; the same seed gives the same sequence on every platform. */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BLOCK_PLAN = `apiVersion: kube-node-rename/v1alpha1
kind: RenamePlan
metadata:
  name: fuzz
spec:
  nodes:
    - from: node-a
      to: node-a.example.com
      host: 10.0.0.1
      user: admin
      port: 2222
    - from: node-b
      to: node-a
      host: fd00::2
  strategy:
    parallelism: 2
    canary: 0
    maxFailures: 1
    onFailure: stop
  access:
    transport: ssh
    sshOptions: ["StrictHostKeyChecking=yes"]
    sudo: true
  kubelet:
    unit: kubelet.service
  rename:
    pods: cordon
    readyTimeout: 90s
`;

/** The valid plans that cases start from: the shipped example and a block-style plan. */
export function basePlans(): string[] {
  return [readFileSync(path.join(repoRoot, 'plans/example.yaml'), 'utf8'), BLOCK_PLAN];
}

/** YAML tokens and characters that change how the surrounding text parses. */
const SYNTAX = [': ', '- ', '[', ']', '{', '}', '"', "'", ',', '#', '&a ', '*a', '!!str ', '!!map ', '! ', '|', '>', '? ', '---\n', '...\n', '%YAML 1.1\n', '\t', '\n', '\r\n', '  ', '\\', '@', '`', '\u0000', '\uFEFF', '\u2028', '\uD800', '<<: *a\n'];
const SCALARS: unknown[] = [null, true, false, 0, -1, 1.5, 1e308, '', 'x', 'yes', '0x1F', '~', [], {}, [1, 2], { a: 1 }, 'Node_A', 'a;rm -rf /', '$(id)', '\u00e9', '9999999999999999999999'];

export interface FuzzCase {
  index: number;
  /** The mutations applied, for the failure report. */
  description: string;
  text: string;
}

type Mutation = { name: string; apply: (text: string, random: () => number) => string };

function pick<T>(items: readonly T[], random: () => number): T {
  return items[Math.floor(random() * items.length)]!;
}

/** Lists every path to a value in a loaded YAML document. */
function valuePaths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const paths: (string | number)[][] = [prefix];
  if (Array.isArray(value)) value.forEach((item, index) => paths.push(...valuePaths(item, [...prefix, index])));
  else if (typeof value === 'object' && value !== null) for (const [key, item] of Object.entries(value)) paths.push(...valuePaths(item, [...prefix, key]));
  return paths;
}

/** Loads the text, changes one value found by `change`, and dumps it back; returns the text unchanged when it does not load. */
function editValue(text: string, random: () => number, change: (parent: Record<string | number, unknown>, key: string | number) => void): string {
  let document: unknown;
  try {
    document = yaml.load(text, { schema: yaml.CORE_SCHEMA });
  } catch {
    return text;
  }
  const paths = valuePaths(document).filter((p) => p.length > 0);
  if (paths.length === 0) return text;
  const target = pick(paths, random);
  let parent = document as Record<string | number, unknown>;
  for (const segment of target.slice(0, -1)) parent = parent[segment] as Record<string | number, unknown>;
  change(parent, target.at(-1)!);
  return yaml.dump(document, { flowLevel: random() < 0.5 ? -1 : 3, lineWidth: -1 });
}

function nested(depth: number, random: () => number): unknown {
  let value: unknown = 'leaf';
  const asList = random() < 0.5;
  for (let i = 0; i < depth; i++) value = asList ? [value] : { k: value };
  return value;
}

const MUTATIONS: Mutation[] = [
  { name: 'delete a field', apply: (text, random) => editValue(text, random, (parent, key) => (Array.isArray(parent) ? parent.splice(Number(key), 1) : delete parent[key])) },
  { name: 'retype a value', apply: (text, random) => editValue(text, random, (parent, key) => (parent[key] = pick(SCALARS, random))) },
  { name: 'add an unknown field', apply: (text, random) => editValue(text, random, (parent, key) => {
    const target = parent[key];
    if (typeof target === 'object' && target !== null && !Array.isArray(target)) (target as Record<string, unknown>)[pick(['extra', 'from', 'node', 'Spec', ''], random)] = pick(SCALARS, random);
    else parent[key] = { unexpected: target };
  }) },
  { name: 'duplicate a list item', apply: (text, random) => editValue(text, random, (parent, key) => {
    if (Array.isArray(parent)) parent.push(parent[Number(key)]);
    else parent[key] = [parent[key], parent[key]];
  }) },
  { name: 'nest deeply', apply: (text, random) => editValue(text, random, (parent, key) => (parent[key] = nested(1 + Math.floor(random() * 300), random))) },
  { name: 'long string', apply: (text, random) => editValue(text, random, (parent, key) => (parent[key] = pick(['a', 'Z', '-', '.', ' ', '\u00e9'], random).repeat(1 + Math.floor(random() * 200_000)))) },
  { name: 'duplicate a line', apply: (text, random) => {
    const lines = text.split('\n');
    const index = Math.floor(random() * lines.length);
    lines.splice(index, 0, lines[index]!);
    return lines.join('\n');
  } },
  { name: 'split into documents', apply: (text, random) => {
    const lines = text.split('\n');
    lines.splice(Math.floor(random() * (lines.length + 1)), 0, pick(['---', '...', '--- !!map', '---\n---'], random));
    return lines.join('\n');
  } },
  { name: 'cut the text', apply: (text, random) => text.slice(0, Math.floor(random() * text.length)) },
  { name: 'insert YAML syntax', apply: (text, random) => {
    const at = Math.floor(random() * (text.length + 1));
    return text.slice(0, at) + pick(SYNTAX, random) + text.slice(at);
  } },
  { name: 'insert random bytes', apply: (text, random) => {
    const at = Math.floor(random() * (text.length + 1));
    const bytes = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 16) }, () => Math.floor(random() * 256)));
    return text.slice(0, at) + bytes.toString('latin1') + text.slice(at);
  } },
  { name: 'replace a character', apply: (text, random) => {
    const at = Math.floor(random() * text.length);
    return text.slice(0, at) + String.fromCharCode(Math.floor(random() * 128)) + text.slice(at + 1);
  } },
  { name: 'deep flow nesting', apply: (text, random) => {
    const depth = 1 + Math.floor(random() * 2000);
    const open = random() < 0.5 ? '[' : '{a: ';
    const close = open === '[' ? ']' : '}';
    return `${text}\nextra: ${open.repeat(depth)}x${close.repeat(depth)}\n`;
  } },
];

/** Builds case `index` of the run with `seed`: one to three mutations of a base plan. */
export function buildCase(seed: number, index: number, bases: readonly string[]): FuzzCase {
  const random = createRandom((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  let text = pick(bases, random);
  const names: string[] = [];
  const count = 1 + Math.floor(random() * 3);
  for (let i = 0; i < count; i++) {
    const mutation = pick(MUTATIONS, random);
    text = mutation.apply(text, random);
    names.push(mutation.name);
  }
  return { index, description: names.join(', '), text };
}

export type FuzzOutcome = { kind: 'accepted' } | { kind: 'rejected'; issues: number } | { kind: 'broken'; reason: string };

/** Loads one case and classifies the result; `broken` means the loader failed in a way a user must never see. */
export function checkCase(fuzzCase: FuzzCase): FuzzOutcome {
  const file = `case-${fuzzCase.index}.yaml`;
  try {
    parsePlan(fuzzCase.text, file);
    return { kind: 'accepted' };
  } catch (error) {
    if (!(error instanceof InvalidPlanError)) {
      return { kind: 'broken', reason: `threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}` };
    }
    const lineCount = fuzzCase.text.split(/\r\n|\r|\n/).length;
    if (error.issues.length === 0) return { kind: 'broken', reason: 'InvalidPlanError with no issues' };
    for (const issue of error.issues) {
      const problem = issueProblem(issue, file, lineCount);
      if (problem !== undefined) return { kind: 'broken', reason: `${problem}: ${JSON.stringify(issue).slice(0, 300)}` };
    }
    return { kind: 'rejected', issues: error.issues.length };
  }
}

function issueProblem(issue: InvalidPlanError['issues'][number], file: string, lineCount: number): string | undefined {
  if (issue.file !== file) return 'issue names another file';
  if (!Number.isInteger(issue.line) || issue.line < 1 || issue.line > lineCount + 1) return `line outside the file (1..${lineCount + 1})`;
  if (!Number.isInteger(issue.column) || issue.column < 1) return 'column below 1';
  if (issue.path === '' || issue.message.trim() === '' || issue.fix.trim() === '') return 'empty path, message or fix';
  if (/\n\s+at\s/.test(issue.message)) return 'stack trace in the message';
  return undefined;
}
