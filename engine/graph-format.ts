// Renders a compiled DAG for `kube-node-rename graph`: text, JSON or Graphviz dot.
import { allNeeds, type Dag, type StepShape } from './dag.js';

export type GraphFormat = 'text' | 'json' | 'dot';

export interface GraphJson {
  steps: { id: string; node: string; step: string; needs: string[] }[];
}

export function graphToJson(dag: Dag): GraphJson {
  return { steps: dag.order.map((step) => ({ id: step.id, node: step.node, step: step.step, needs: allNeeds(dag, step) })) };
}

/** Renders one block per node in plan order, listing each step and what it waits for beyond the previous step. */
export function graphToText(dag: Dag, recipeSteps: readonly StepShape[]): string {
  const descriptions = new Map(recipeSteps.map((step) => [step.name, step.description]));
  const width = Math.max(...dag.order.map((step) => step.id.length));
  const canaryCount = dag.canaryLastSteps.length;
  const lines = [`${dag.nodes.length} nodes, ${recipeSteps.length} steps each, ${dag.order.length} steps in all`];
  if (canaryCount > 0) lines.push(`canary: the first ${canaryCount} ${canaryCount === 1 ? 'node finishes' : 'nodes finish'} before any other node starts`);
  for (const node of dag.nodes) {
    lines.push('', `${node.plan.from} -> ${node.plan.to}${node.canary ? ' (canary)' : ''}`);
    for (const step of node.steps) {
      const waits = step.needs.filter((need) => !need.startsWith(`${step.node}/`));
      if (step.afterCanary) waits.push(`the ${canaryCount} canary ${canaryCount === 1 ? 'node' : 'nodes'}`);
      const suffix = waits.length > 0 ? `  [waits for ${waits.join(', ')}]` : '';
      lines.push(`  ${step.id.padEnd(width)}  ${descriptions.get(step.step) ?? ''}${suffix}`);
    }
  }
  return lines.join('\n');
}

/** Graphviz digraph; the canary barrier is one point node rather than c times n edges. */
export function graphToDot(dag: Dag): string {
  const quote = (text: string): string => JSON.stringify(text);
  const lines = ['digraph renameplan {', '  rankdir=LR;', '  node [shape=box, fontname="monospace"];'];
  const gate = 'canary finished';
  if (dag.canaryLastSteps.length > 0) {
    lines.push(`  ${quote(gate)} [shape=point, xlabel=${quote(gate)}];`);
    for (const id of dag.canaryLastSteps) lines.push(`  ${quote(id)} -> ${quote(gate)};`);
  }
  for (const node of dag.nodes) {
    lines.push(`  subgraph ${quote(`cluster_${node.index}`)} {`, `    label=${quote(`${node.plan.from} -> ${node.plan.to}`)};`);
    for (const step of node.steps) lines.push(`    ${quote(step.id)};`);
    lines.push('  }');
  }
  for (const step of dag.order) {
    for (const need of step.needs) lines.push(`  ${quote(need)} -> ${quote(step.id)};`);
    if (step.afterCanary) lines.push(`  ${quote(gate)} -> ${quote(step.id)};`);
  }
  lines.push('}');
  return lines.join('\n');
}
