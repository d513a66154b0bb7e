import { loadPlan } from '../../plan/load.js';
import { write } from '../environment.js';
import { ExitCode } from '../exit-codes.js';
import type { CommandModule } from './command.js';

export const validateCommand: CommandModule = {
  register(program, env, setExitCode) {
    program
      .command('validate')
      .description('check a plan file without contacting any cluster')
      .argument('<plan>', 'plan file (YAML)')
      .action((planFile: string) => {
        const plan = loadPlan(planFile);
        const strategy = plan.spec.strategy;
        write(env.stdout, `${planFile}: valid RenamePlan ${plan.metadata.name}: ${plan.spec.nodes.length} nodes, parallelism ${strategy.parallelism}, canary ${strategy.canary}, maxFailures ${strategy.maxFailures}`);
        setExitCode(ExitCode.ok);
      });
  },
};
