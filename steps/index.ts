// Placeholder recipe, replaced by the real rename steps. Its two steps let
// `graph` and `apply --dry-run` show the DAG shape; running them fails on
// purpose, so no run can pass for a rename.
import type { Recipe, StepDefinition } from '../engine/step.js';

export type RenameServices = Record<string, never>;

function placeholder(name: string, description: string, flags: Pick<StepDefinition<RenameServices>, 'touchesHost' | 'releasesName'>): StepDefinition<RenameServices> {
  return {
    name,
    description,
    timeoutMs: 1000,
    ...flags,
    dryRun: (ctx) => `would ${description.toLowerCase()} for ${ctx.node.from} -> ${ctx.node.to}`,
    run: async () => {
      throw new Error(`step ${name} is a placeholder: this build has no rename steps`);
    },
  };
}

export function createRenameRecipe(): Recipe<RenameServices> {
  return {
    name: 'placeholder',
    steps: [
      placeholder('delete-old-node', 'Delete the old Node object', { releasesName: true }),
      placeholder('rename-host', 'Rename the host and restart the kubelet', { touchesHost: true }),
    ],
    createServices: async () => ({}),
  };
}
