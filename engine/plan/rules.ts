// Checks that JSON Schema cannot express: names unique across the list,
// rename cycles, canary bounds, host syntax and positive durations.
import { isIP } from 'node:net';
import { parseDuration } from './duration.js';
import type { IssueList } from './issues.js';
import { showValue } from './issues.js';
import type { YamlSource } from './yaml-source.js';

interface RawNode {
  index: number;
  from: string;
  to: string;
  host?: unknown;
}

const HOST_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const HOST_CHARACTERS = /^[A-Za-z0-9.:_%-]+$/;
export const HOST_FIX = 'write an address such as 10.0.1.12 or fd00::12 (IPv6 without brackets), or a host name such as worker-12.example.com';

/** Checks whether `host` is an IPv4 or IPv6 address (an IPv6 zone such as %eth0 allowed) or a DNS host name. */
export function isValidHost(host: string): boolean {
  if (isIP(host) !== 0) return true;
  const zone = host.indexOf('%');
  if (zone > 0 && isIP(host.slice(0, zone)) === 6 && /^[A-Za-z0-9_.-]+$/.test(host.slice(zone + 1))) return true;
  if (host.length > 253 || /^[0-9.]+$/.test(host)) return false;
  return host.replace(/\.$/, '').split('.').every((label) => HOST_LABEL.test(label));
}

export function checkRules(value: unknown, source: YamlSource, issues: IssueList): void {
  const spec = asRecord(asRecord(value)?.['spec']);
  if (spec === undefined) return;
  const nodes = collectNodes(spec['nodes']);
  checkSelfRenames(nodes, source, issues);
  checkUnique(nodes, 'from', source, issues);
  checkUnique(nodes, 'to', source, issues);
  checkCycles(nodes, source, issues);
  checkHosts(nodes, source, issues);
  checkCanary(spec, nodes, source, issues);
  checkDurations(spec, source, issues);
}

function collectNodes(list: unknown): RawNode[] {
  if (!Array.isArray(list)) return [];
  const nodes: RawNode[] = [];
  list.forEach((item, index) => {
    const node = asRecord(item);
    if (node !== undefined && typeof node['from'] === 'string' && typeof node['to'] === 'string') {
      nodes.push({ index, from: node['from'], to: node['to'], host: node['host'] });
    }
  });
  return nodes;
}

function checkSelfRenames(nodes: RawNode[], source: YamlSource, issues: IssueList): void {
  for (const node of nodes) {
    if (node.from !== node.to) continue;
    const path = ['spec', 'nodes', node.index, 'to'];
    issues.add(source.valuePosition(path), path, `"to" is the same as "from" (${showValue(node.from)}), so there is nothing to rename`, 'remove this entry or give the node a new name');
  }
}

function checkUnique(nodes: RawNode[], field: 'from' | 'to', source: YamlSource, issues: IssueList): void {
  const first = new Map<string, RawNode>();
  for (const node of nodes) {
    const earlier = first.get(node[field]);
    if (earlier === undefined) {
      first.set(node[field], node);
      continue;
    }
    const path = ['spec', 'nodes', node.index, field];
    const line = source.valuePosition(['spec', 'nodes', earlier.index, field]).line;
    const role = field === 'from' ? 'current name' : 'new name';
    issues.add(source.valuePosition(path), path, `${showValue(node[field])} is already the ${role} of spec.nodes[${earlier.index}] (line ${line}); each ${role} may appear once`, field === 'from' ? 'remove the duplicate entry, or merge the two into one' : 'give each node its own new name');
  }
}

function checkCycles(nodes: RawNode[], source: YamlSource, issues: IssueList): void {
  const byFrom = new Map<string, RawNode>();
  for (const node of nodes) if (!byFrom.has(node.from)) byFrom.set(node.from, node);
  // 0: not visited, 1: on the current walk, 2: finished
  const mark = new Map<RawNode, number>();
  for (const start of nodes) {
    if (mark.get(start) !== undefined) continue;
    const walk: RawNode[] = [];
    let current: RawNode | undefined = start;
    while (current !== undefined && mark.get(current) === undefined && current.from !== current.to) {
      mark.set(current, 1);
      walk.push(current);
      current = byFrom.get(current.to);
    }
    if (current !== undefined && mark.get(current) === 1) reportCycle(walk.slice(walk.indexOf(current)), source, issues);
    for (const node of walk) mark.set(node, 2);
  }
}

function reportCycle(cycle: RawNode[], source: YamlSource, issues: IssueList): void {
  const first = cycle[0]!;
  const chain = cycle.map((node) => `spec.nodes[${node.index}] ${node.from} -> ${node.to}`).join(', ');
  const path = ['spec', 'nodes', first.index, 'to'];
  issues.add(
    source.valuePosition(path),
    path,
    `rename cycle: ${chain}. Every new name in the cycle is still the current name of another node in it, so no node can go first`,
    `break the cycle with a temporary name: in this plan rename ${first.from} -> ${first.from}-tmp instead of ${first.to}, and once it has run, rename ${first.from}-tmp -> ${first.to} in a second plan`,
  );
}

function checkHosts(nodes: RawNode[], source: YamlSource, issues: IssueList): void {
  for (const node of nodes) {
    // Characters outside the schema's pattern are reported by the schema check.
    if (typeof node.host !== 'string' || !HOST_CHARACTERS.test(node.host) || isValidHost(node.host)) continue;
    const path = ['spec', 'nodes', node.index, 'host'];
    issues.add(source.valuePosition(path), path, `must be an IPv4 address, an IPv6 address or a DNS host name; got ${showValue(node.host)}`, HOST_FIX);
  }
}

function checkCanary(spec: Record<string, unknown>, nodes: RawNode[], source: YamlSource, issues: IssueList): void {
  const canary = asRecord(spec['strategy'])?.['canary'];
  const listLength = Array.isArray(spec['nodes']) ? spec['nodes'].length : 0;
  if (typeof canary !== 'number' || !Number.isInteger(canary) || canary <= 0) return;
  if (canary > listLength) {
    const path = ['spec', 'strategy', 'canary'];
    issues.add(source.valuePosition(path), path, `is ${canary}, but the plan lists only ${listLength} nodes`, `set canary to at most ${listLength}`);
    return;
  }
  // A canary node whose new name is held by a later node would wait for a
  // node that may not start until the canaries finish: a deadlock.
  const byFrom = new Map(nodes.map((node) => [node.from, node]));
  for (const node of nodes) {
    if (node.index >= canary) continue;
    const holder = byFrom.get(node.to);
    if (holder === undefined || holder.index < canary) continue;
    const path = ['spec', 'nodes', node.index, 'to'];
    issues.add(
      source.valuePosition(path),
      path,
      `canary node ${node.from} takes the name ${node.to}, which spec.nodes[${holder.index}] holds until it is renamed, but that node is not among the first ${canary} (canary) nodes, so it cannot start before the canaries finish`,
      `move spec.nodes[${holder.index}] into the first ${canary} entries, or raise spec.strategy.canary to ${holder.index + 1}`,
    );
  }
}

function checkDurations(spec: Record<string, unknown>, source: YamlSource, issues: IssueList): void {
  const rename = asRecord(spec['rename']);
  if (rename === undefined) return;
  for (const field of ['drainTimeout', 'bootstrapTokenTTL', 'readyTimeout', 'csrTimeout']) {
    const text = rename[field];
    if (typeof text !== 'string' || parseDuration(text) !== 0) continue;
    const path = ['spec', 'rename', field];
    issues.add(source.valuePosition(path), path, `must be longer than zero; got ${showValue(text)}`, 'write a positive duration such as "5m"');
  }
}

export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
