import { Option } from 'commander';
import { compileDag } from '../../dag.js';
import { graphToDot, graphToJson, graphToText, type GraphFormat } from '../../graph-format.js';
import { loadPlan } from '../../plan/load.js';
import { write } from '../environment.js';
import { ExitCode } from '../exit-codes.js';
import type { CommandModule } from './command.js';

export const graphCommand: CommandModule = {
  register(program, env, setExitCode) {
    program
      .command('graph')
      .description('print the DAG of steps that apply would run')
      .argument('<plan>', 'plan file (YAML)')
      .addOption(new Option('--format <format>', 'output format').choices(['text', 'json', 'dot']).default('text'))
      .action(async (planFile: string, options: { format: GraphFormat }) => {
        const plan = loadPlan(planFile);
        const recipe = await env.createRecipe();
        const dag = compileDag(plan, recipe.steps);
        if (options.format === 'json') write(env.stdout, JSON.stringify(graphToJson(dag), null, 2));
        else if (options.format === 'dot') write(env.stdout, graphToDot(dag));
        else write(env.stdout, graphToText(dag, recipe.steps));
        setExitCode(ExitCode.ok);
      });
  },
};
