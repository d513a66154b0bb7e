// Compiles a plan and a recipe into the DAG of steps. Pure: no I/O.
//
// Edges:
// - each step of a node needs the previous step of that node;
// - when node X's new name is node Y's current name, X's first step that
//   touches its host needs Y's step that releases the name (without such
//   steps in the recipe: X's first step needs Y's last step);
// - with a canary count c, the first step of every later node needs the last
//   step of each of the first c nodes. That edge set grows as c times the node
//   count, so it is kept as the flag `afterCanary` and expanded only for output.
import { MinHeap } from './heap.js';
import type { Plan, PlanNode } from './plan-types.js';
import type { StepDefinition } from './step.js';

export type StepShape = Pick<StepDefinition<unknown>, 'name' | 'description' | 'touchesHost' | 'releasesName'>;

export interface DagStep {
  /** `<from>/<step>` */
  id: string;
  /** The node's current name (`from`). */
  node: string;
  nodeIndex: number;
  step: string;
  stepIndex: number;
  /** Explicit needs: the previous step of the node and the chain-rule edge. */
  needs: string[];
  /** This step also needs the last step of every canary node. */
  afterCanary: boolean;
}

export interface DagNode {
  index: number;
  plan: PlanNode;
  canary: boolean;
  steps: DagStep[];
  /** Index of the node whose old name this node takes, when that node is in the plan. */
  waitsForNode?: number;
}

export interface Dag {
  nodes: DagNode[];
  /** All steps in a topological order that keeps each node's chain together where it can. */
  order: DagStep[];
  byId: Map<string, DagStep>;
  canaryLastSteps: string[];
}

const STEP_NAME = /^[a-z0-9]+(-[a-z0-9]+)*$/;

/** Checks a recipe's step list; a broken recipe is a programming error, so this throws a plain Error. */
export function checkRecipeSteps(steps: readonly StepShape[]): void {
  if (steps.length === 0) throw new Error('recipe has no steps');
  const seen = new Set<string>();
  for (const step of steps) {
    if (!STEP_NAME.test(step.name)) throw new Error(`recipe step name "${step.name}" is not kebab-case`);
    if (seen.has(step.name)) throw new Error(`recipe step name "${step.name}" appears twice`);
    seen.add(step.name);
  }
}

export function compileDag(plan: Plan, recipeSteps: readonly StepShape[]): Dag {
  checkRecipeSteps(recipeSteps);
  const canaryCount = plan.spec.strategy.canary;
  const touchIndex = Math.max(0, recipeSteps.findIndex((step) => step.touchesHost === true));
  const releaseIndex = recipeSteps.findIndex((step) => step.releasesName === true);
  const releaseStep = recipeSteps[releaseIndex === -1 ? recipeSteps.length - 1 : releaseIndex]!.name;
  const indexByFrom = new Map(plan.spec.nodes.map((node, index) => [node.from, index]));

  const byId = new Map<string, DagStep>();
  const nodes: DagNode[] = plan.spec.nodes.map((planNode, index) => {
    const waitsForNode = indexByFrom.get(planNode.to);
    const ids = recipeSteps.map((definition) => `${planNode.from}/${definition.name}`);
    const steps = recipeSteps.map((definition, stepIndex): DagStep => {
      const needs: string[] = stepIndex > 0 ? [ids[stepIndex - 1]!] : [];
      if (stepIndex === touchIndex && waitsForNode !== undefined) needs.push(`${planNode.to}/${releaseStep}`);
      return {
        id: ids[stepIndex]!,
        node: planNode.from,
        nodeIndex: index,
        step: definition.name,
        stepIndex,
        needs,
        afterCanary: stepIndex === 0 && canaryCount > 0 && index >= canaryCount,
      };
    });
    for (const step of steps) byId.set(step.id, step);
    const dagNode: DagNode = { index, plan: planNode, canary: index < canaryCount, steps };
    if (waitsForNode !== undefined) dagNode.waitsForNode = waitsForNode;
    return dagNode;
  });

  const canaryLastSteps = nodes.slice(0, canaryCount).map((node) => node.steps[node.steps.length - 1]!.id);
  const order = topologicalOrder(nodes, byId, canaryCount, recipeSteps.length);
  return { nodes, order, byId, canaryLastSteps };
}

/** Returns every step a step needs, with the canary edges expanded. */
export function allNeeds(dag: Dag, step: DagStep): string[] {
  return step.afterCanary ? [...step.needs, ...dag.canaryLastSteps] : step.needs;
}

/**
 * Kahn's algorithm, taking the ready step that comes first in plan order;
 * throws when a cycle remains. Steps are numbered nodeIndex * stepsPerNode +
 * stepIndex, so the counters fit in a typed array. Only needs on another
 * node's steps get an explicit list of dependents.
 */
function topologicalOrder(nodes: DagNode[], byId: Map<string, DagStep>, canaryCount: number, stepsPerNode: number): DagStep[] {
  const key = (step: DagStep): number => step.nodeIndex * stepsPerNode + step.stepIndex;
  const remaining = new Int32Array(nodes.length * stepsPerNode);
  const crossDependents = new Map<string, DagStep[]>();
  const ready = new MinHeap<DagStep>();
  const gated: DagStep[] = [];
  let canaryNodesLeft = canaryCount;
  const release = (step: DagStep): void => {
    if (step.afterCanary && canaryNodesLeft > 0) gated.push(step);
    else ready.push(key(step), step);
  };

  for (const node of nodes) {
    for (const step of node.steps) {
      remaining[key(step)] = step.needs.length;
      for (const need of step.needs) {
        // A need on the node's own previous step is satisfied through `next` below.
        if (byId.get(need)!.nodeIndex === step.nodeIndex) continue;
        const list = crossDependents.get(need);
        if (list === undefined) crossDependents.set(need, [step]);
        else list.push(step);
      }
      if (step.needs.length === 0) release(step);
    }
  }

  const order: DagStep[] = [];
  const satisfy = (dependent: DagStep): void => {
    if (--remaining[key(dependent)] === 0) release(dependent);
  };
  for (let step = ready.pop(); step !== undefined; step = ready.pop()) {
    order.push(step);
    if (step.nodeIndex < canaryCount && step.stepIndex === stepsPerNode - 1 && --canaryNodesLeft === 0) {
      for (const waiting of gated.splice(0)) ready.push(key(waiting), waiting);
    }
    const next = nodes[step.nodeIndex]!.steps[step.stepIndex + 1];
    if (next !== undefined) satisfy(next);
    for (const dependent of crossDependents.get(step.id) ?? []) satisfy(dependent);
  }
  if (order.length !== byId.size) {
    const placed = new Set(order);
    const stuck = [...byId.values()].filter((step) => !placed.has(step)).slice(0, 5).map((step) => step.id);
    throw new Error(`the step graph has a cycle through ${stuck.join(', ')}; the plan checks should have rejected it`);
  }
  return order;
}
