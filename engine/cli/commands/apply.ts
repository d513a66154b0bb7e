import { applyPlan, clusterOptions, createServices } from '../../apply.js';
import { compileDag } from '../../dag.js';
import { describeRun } from '../../dry-run.js';
import { loadPlan } from '../../plan/load.js';
import type { RunReport } from '../../runner.js';
import { readState } from '../../state/journal.js';
import { openLogger, resolveStateDir, unlockCommand, write, type ClusterOptions, type LogOptions, type StateOptions } from '../environment.js';
import { ExitCode } from '../exit-codes.js';
import { addClusterOptions, addLogFormatOption, addStateDirOption } from '../options.js';
import type { CliEnvironment } from '../environment.js';
import type { CommandModule } from './command.js';

type ApplyCliOptions = StateOptions & LogOptions & ClusterOptions & { dryRun?: boolean; startOver?: boolean };

export const applyCommand: CommandModule = {
  register(program, env, setExitCode) {
    const command = program
      .command('apply')
      .description('run the plan, or resume it from its state; --dry-run prints what each step would do')
      .argument('<plan>', 'plan file (YAML)')
      .option('--dry-run', 'print, in order, what each step would do, and change nothing')
      .option('--start-over', 'archive the existing state (under <state-dir>/archive/) and run the plan from the beginning');
    addLogFormatOption(addClusterOptions(addStateDirOption(command))).action(async (planFile: string, options: ApplyCliOptions) => {
      setExitCode(options.dryRun === true ? await dryRun(env, planFile, options) : await apply(env, planFile, options));
    });
  },
};

async function dryRun(env: CliEnvironment, planFile: string, options: ApplyCliOptions): Promise<number> {
  const plan = loadPlan(planFile);
  const recipe = await env.createRecipe();
  const dag = compileDag(plan, recipe.steps);
  const log = openLogger(env, options);
  try {
    const services = await createServices(recipe, { plan, ...clusterOptions(options), logger: log.logger, dryRun: true });
    try {
      const state = readState(resolveStateDir(plan, options))?.state;
      const lines = await describeRun(plan, dag, recipe, services, state, log.logger);
      write(env.stdout, [`dry run of ${plan.metadata.name}: ${dag.order.length} steps; nothing is changed`, ...lines].join('\n'));
    } finally {
      await recipe.closeServices?.(services);
    }
  } finally {
    await log.close();
  }
  return ExitCode.ok;
}

async function apply(env: CliEnvironment, planFile: string, options: ApplyCliOptions): Promise<number> {
  const plan = loadPlan(planFile);
  const recipe = await env.createRecipe();
  const stateDir = resolveStateDir(plan, options);
  const log = openLogger(env, options);
  const stop = new AbortController();
  const abort = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      log.logger.warn(`${signal} received: finishing running steps; send it again to abort them`);
      stop.abort();
    } else if (signals === 2) {
      log.logger.warn(`${signal} received again: aborting running steps`);
      abort.abort();
    } else {
      process.exit(ExitCode.interrupted);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const report = await applyPlan({
      plan,
      recipe,
      stateDir,
      startOver: options.startOver === true,
      ...clusterOptions(options),
      log,
      stopSignal: stop.signal,
      abortSignal: abort.signal,
      command: `${env.programName} apply ${planFile}`,
      unlockCommand: unlockCommand(env, planFile, options),
    });
    write(env.stdout, formatReport(report));
    const failed = report.nodes.filter((node) => node.outcome.kind === 'failed');
    if (failed.length > 0 && plan.spec.strategy.onFailure === 'stop') {
      write(env.stdout, `fix the cause and run apply again to resume, or undo a failed node's rename with: ${env.programName} rollback ${planFile} --node ${failed[0]!.node}`);
    }
    if (report.outcome === 'succeeded') return ExitCode.ok;
    return report.outcome === 'interrupted' ? ExitCode.interrupted : ExitCode.runFailed;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await log.close();
  }
}

function formatReport(report: RunReport): string {
  const counts = Object.entries(report.counts)
    .filter(([, count]) => count > 0)
    .map(([kind, count]) => `${count} ${kind}`)
    .join(', ');
  const lines = [`run ${report.runId} ${report.outcome}: ${counts}`];
  const maxListed = 50;
  const unfinished = report.nodes.filter((node) => node.outcome.kind !== 'succeeded');
  for (const node of unfinished.slice(0, maxListed)) {
    const outcome = node.outcome;
    if (outcome.kind === 'failed') lines.push(`  ${node.node}: failed at ${outcome.step}: ${outcome.error}`);
    else if (outcome.kind === 'blocked' || outcome.kind === 'not-started') lines.push(`  ${node.node}: ${outcome.kind}: ${outcome.reason}`);
    else if (outcome.kind === 'stopped') lines.push(`  ${node.node}: stopped; resumes on the next apply`);
  }
  if (unfinished.length > maxListed) lines.push(`  ... and ${unfinished.length - maxListed} more; see the status command`);
  return lines.join('\n');
}
