import { Option } from 'commander';
import { compileDag } from '../../dag.js';
import { loadPlan } from '../../plan/load.js';
import { fingerprint, fingerprintedPlan } from '../../state/fingerprint.js';
import { readState } from '../../state/journal.js';
import { inspectLock } from '../../state/lock.js';
import { buildStatus, formatStatus } from '../../status.js';
import { resolveStateDir, write, type StateOptions } from '../environment.js';
import { ExitCode } from '../exit-codes.js';
import { addStateDirOption } from '../options.js';
import type { CommandModule } from './command.js';

export const statusCommand: CommandModule = {
  register(program, env, setExitCode) {
    const command = program
      .command('status')
      .description('print per-node progress from the state of a plan')
      .argument('<plan>', 'plan file (YAML)')
      .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'));
    addStateDirOption(command).action(async (planFile: string, options: StateOptions & { output: 'table' | 'json' }) => {
      const plan = loadPlan(planFile);
      const recipe = await env.createRecipe();
      const dag = compileDag(plan, recipe.steps);
      const stateDir = resolveStateDir(plan, options);
      const loaded = readState(stateDir);
      const report = buildStatus(dag, plan.metadata.name, stateDir, loaded?.state, fingerprint(fingerprintedPlan(plan)), inspectLock(stateDir));
      write(env.stdout, options.output === 'json' ? JSON.stringify(report, null, 2) : formatStatus(report));
      setExitCode(ExitCode.ok);
    });
  },
};
