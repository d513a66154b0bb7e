// The plan fingerprint that ties a state to its plan, and the differences
// shown when a changed plan is refused. parallelism and maxFailures are left
// out: they steer a run without changing what the steps do, so they may be
// changed between a run and its resume.
import { createHash } from 'node:crypto';
import type { Plan } from '../plan-types.js';
import type { JsonValue } from '../step.js';

/** Returns the part of the plan that a state belongs to, as plain JSON. */
export function fingerprintedPlan(plan: Plan): JsonValue {
  const { parallelism: _parallelism, maxFailures: _maxFailures, ...strategy } = plan.spec.strategy;
  return JSON.parse(JSON.stringify({ metadata: plan.metadata, spec: { ...plan.spec, strategy } })) as JsonValue;
}

export function fingerprint(planRecord: JsonValue): string {
  return `sha256:${createHash('sha256').update(canonicalJson(planRecord)).digest('hex')}`;
}

/** JSON with object keys sorted, so equal values give equal text. */
export function canonicalJson(value: JsonValue): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key]!)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Lists how `next` differs from `previous`, one line per difference; nodes are matched by their current name. */
export function diffPlans(previous: JsonValue, next: JsonValue): string[] {
  const lines: string[] = [];
  diffValues(previous, next, '', lines);
  return lines;
}

function diffValues(previous: JsonValue | undefined, next: JsonValue | undefined, path: string, lines: string[]): void {
  if (path === 'spec.nodes' && Array.isArray(previous) && Array.isArray(next)) {
    diffNodes(previous, next, lines);
    return;
  }
  if (isObject(previous) && isObject(next)) {
    const keys = new Set([...Object.keys(previous), ...Object.keys(next)]);
    for (const key of [...keys].sort()) diffValues(previous[key], next[key], path === '' ? key : `${path}.${key}`, lines);
    return;
  }
  if (canonical(previous) === canonical(next)) return;
  lines.push(`${path}: ${show(previous)} -> ${show(next)}`);
}

function diffNodes(previous: JsonValue[], next: JsonValue[], lines: string[]): void {
  const keyOf = (node: JsonValue): string => (isObject(node) ? String(node['from']) : canonical(node));
  const before = new Map(previous.map((node) => [keyOf(node), node]));
  const after = new Map(next.map((node) => [keyOf(node), node]));
  for (const [from, node] of before) if (!after.has(from)) lines.push(`spec.nodes: removed ${describeNode(node)}`);
  for (const [from, node] of after) if (!before.has(from)) lines.push(`spec.nodes: added ${describeNode(node)}`);
  for (const [from, node] of after) {
    const old = before.get(from);
    if (old !== undefined) diffValues(old, node, `spec.nodes[from=${from}]`, lines);
  }
  const sharedBefore = [...before.keys()].filter((from) => after.has(from));
  const sharedAfter = [...after.keys()].filter((from) => before.has(from));
  if (sharedBefore.join('\n') !== sharedAfter.join('\n')) lines.push('spec.nodes: the order of the nodes changed');
}

function describeNode(node: JsonValue): string {
  return isObject(node) ? `${String(node['from'])} -> ${String(node['to'])}` : canonical(node);
}

function isObject(value: JsonValue | undefined): value is { [key: string]: JsonValue } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function canonical(value: JsonValue | undefined): string {
  return value === undefined ? 'undefined' : canonicalJson(value);
}

function show(value: JsonValue | undefined): string {
  return value === undefined ? '(absent)' : canonicalJson(value);
}
