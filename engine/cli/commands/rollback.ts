import { loadPlan } from '../../plan/load.js';
import { rollbackPlan, type RollbackReport } from '../../rollback.js';
import { openLogger, resolveStateDir, unlockCommand, write, type ClusterOptions, type LogOptions, type StateOptions } from '../environment.js';
import { ExitCode } from '../exit-codes.js';
import { addClusterOptions, addLogFormatOption, addStateDirOption } from '../options.js';
import type { CommandModule } from './command.js';

type RollbackCliOptions = StateOptions & LogOptions & ClusterOptions & { node?: string };

export const rollbackCommand: CommandModule = {
  register(program, env, setExitCode) {
    const command = program
      .command('rollback')
      .description('undo the rename of nodes that failed or stopped: restore the host from its backup and the old Node from its snapshot')
      .argument('<plan>', 'plan file (YAML)')
      .option('--node <name>', 'roll back only this node, by its current (old) name; default: every node that started and did not finish');
    addLogFormatOption(addClusterOptions(addStateDirOption(command))).action(async (planFile: string, options: RollbackCliOptions) => {
      const plan = loadPlan(planFile);
      const recipe = await env.createRecipe();
      const log = openLogger(env, options);
      const abort = new AbortController();
      const onSignal = (): void => abort.abort();
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const report = await rollbackPlan({
          plan,
          recipe,
          stateDir: resolveStateDir(plan, options),
          ...(options.node !== undefined ? { node: options.node } : {}),
          ...(options.kubeconfig !== undefined ? { kubeconfig: options.kubeconfig } : {}),
          ...(options.context !== undefined ? { context: options.context } : {}),
          log,
          signal: abort.signal,
          command: `${env.programName} rollback ${planFile}`,
          unlockCommand: unlockCommand(env, planFile, options),
        });
        write(env.stdout, formatRollback(report, `${env.programName} apply ${planFile}`));
        setExitCode(report.nodes.every((node) => node.record.outcome === 'rolled-back') ? ExitCode.ok : ExitCode.runFailed);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await log.close();
      }
    });
  },
};

function formatRollback(report: RollbackReport, applyCommand: string): string {
  if (report.nodes.length === 0) return 'nothing to roll back';
  const lines: string[] = [];
  for (const { node, to, record } of report.nodes) {
    if (record.outcome === 'rolled-back') {
      lines.push(`${node}: rolled back (the rename to ${to} is undone; "${applyCommand}" starts it again)`);
      for (const action of record.actions) lines.push(`  - ${action}`);
    } else {
      lines.push(`${node}: rollback ${record.outcome}: ${record.reason}`);
    }
  }
  return lines.join('\n');
}
