// `apply --dry-run`: every step's own description of what it would do, in
// DAG order. Reads the state when there is one, to mark steps that an
// earlier run finished; writes nothing.
import type { Dag } from './dag.js';
import type { Logger } from './logger.js';
import type { StateData } from './state/model.js';
import type { Plan, Recipe, StepContext } from './step.js';

export async function describeRun<S>(plan: Plan, dag: Dag, recipe: Recipe<S>, services: S, state: StateData | undefined, logger: Logger): Promise<string[]> {
  const definitions = new Map(recipe.steps.map((definition) => [definition.name, definition]));
  const lines: string[] = [];
  const signal = new AbortController().signal;
  let number = 0;
  for (const step of dag.order) {
    number++;
    const node = dag.nodes[step.nodeIndex]!.plan;
    const record = state?.steps[step.id];
    if (record?.status === 'succeeded') {
      lines.push(`${number}. ${step.id}: succeeded in an earlier run; skipped`);
      continue;
    }
    const context: StepContext<S> = {
      runId: 'dry-run',
      plan,
      node,
      stepId: step.id,
      step: step.step,
      attempt: 1,
      outputs: (name) => state?.steps[`${step.node}/${name}`]?.outputs,
      log: logger.child({ run: 'dry-run', node: step.node, step: step.step }),
      signal,
      services,
    };
    const description = await definitions.get(step.step)!.dryRun(context);
    lines.push(`${number}. ${step.id}: ${description}`);
  }
  return lines;
}
