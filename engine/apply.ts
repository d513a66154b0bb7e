// `apply`: lock the state, check it belongs to this plan, run the DAG, and
// record the run. The CLI and the test fixtures both call applyPlan.
import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import path from 'node:path';
import { compileDag, type Dag } from './dag.js';
import type { LoggerHandle } from './logger.js';
import { runDag, type RunReport } from './runner.js';
import { archiveState } from './state/archive.js';
import { diffPlans, fingerprint, fingerprintedPlan } from './state/fingerprint.js';
import { Journal, readState } from './state/journal.js';
import { StateLock } from './state/lock.js';
import type { StateData } from './state/model.js';
import type { CreateServicesOptions, Plan, Recipe } from './step.js';

export const RUN_LOG = 'run.log';

/** The plan differs from the one the state was written for. */
export class PlanChangedError extends Error {
  constructor(
    readonly stateDir: string,
    readonly differences: string[],
  ) {
    const listed = differences.slice(0, 40).map((line) => `  ${line}`);
    if (differences.length > 40) listed.push(`  ... and ${differences.length - 40} more`);
    super(
      [
        `the plan has changed since the state in ${stateDir} was written:`,
        ...listed,
        'restore the plan to resume that run, or pass --start-over to archive the old state and start from the beginning',
      ].join('\n'),
    );
    this.name = 'PlanChangedError';
  }
}

/** The recipe could not set up its services (cluster client, host access); nothing ran. */
export class ServicesSetupError extends Error {
  constructor(recipeName: string, cause: unknown) {
    super(`could not set up the ${recipeName} recipe's services: ${cause instanceof Error ? cause.message : String(cause)}; check --kubeconfig, --context and spec.access`, { cause });
    this.name = 'ServicesSetupError';
  }
}

/** Calls the recipe's createServices and turns its failure into ServicesSetupError. */
export async function createServices<S>(recipe: Recipe<S>, options: CreateServicesOptions): Promise<S> {
  try {
    return await recipe.createServices(options);
  } catch (error) {
    throw new ServicesSetupError(recipe.name, error);
  }
}

export interface ApplyOptions<S> {
  plan: Plan;
  recipe: Recipe<S>;
  stateDir: string;
  startOver: boolean;
  kubeconfig?: string;
  context?: string;
  log: LoggerHandle;
  stopSignal: AbortSignal;
  abortSignal: AbortSignal;
  /** Recorded in the lock file. */
  command: string;
  /** Shown in lock errors. */
  unlockCommand: string;
  now?: () => Date;
}

/** Default state directory: .kube-node-rename/<metadata.name>/ next to the plan file. */
export function defaultStateDir(plan: Plan): string {
  return path.join(plan.source.dir, '.kube-node-rename', plan.metadata.name);
}

export function newRunId(now: Date): string {
  return `${now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}-${randomBytes(3).toString('hex')}`;
}

export async function applyPlan<S>(options: ApplyOptions<S>): Promise<RunReport> {
  const now = options.now ?? (() => new Date());
  const { plan, recipe, stateDir, log } = options;
  const dag = compileDag(plan, recipe.steps);
  const lock = StateLock.acquire(stateDir, options.command, options.unlockCommand);
  try {
    const journal = openJournal(options, dag, now());
    const runId = newRunId(now());
    log.addFile(path.join(stateDir, RUN_LOG));
    const logger = log.logger.child({ run: runId });
    let report: RunReport;
    try {
      const services = await createServices(recipe, { plan, ...clusterOptions(options), logger, dryRun: false });
      await journal.append({ type: 'run-started', run: { runId, startedAt: now().toISOString(), pid: process.pid, host: hostname(), user: userInfo().username } });
      try {
        report = await runDag({ plan, dag, recipe, services, journal, runId, logger, stopSignal: options.stopSignal, abortSignal: options.abortSignal, now });
      } finally {
        await recipe.closeServices?.(services);
      }
      await journal.append({ type: 'run-ended', runId, at: now().toISOString(), outcome: report.outcome });
      logger.info('run ended', { outcome: report.outcome, ...report.counts });
    } finally {
      await journal.close();
    }
    report.checkpointBytes = journal.writtenBytes;
    return report;
  } finally {
    lock.release();
  }
}

function openJournal<S>(options: ApplyOptions<S>, dag: Dag, now: Date): Journal {
  const planRecord = fingerprintedPlan(options.plan);
  const planFingerprint = fingerprint(planRecord);
  const existing = readState(options.stateDir);
  if (existing !== undefined && !options.startOver) {
    if (existing.state.fingerprint === planFingerprint) return Journal.open(options.stateDir, dag.order.length);
    throw new PlanChangedError(options.stateDir, diffPlans(existing.state.plan, planRecord));
  }
  if (existing !== undefined) {
    const archive = archiveState(options.stateDir, now);
    options.log.logger.warn('archived the old state; starting over', { archive });
  }
  const state: StateData = {
    format: 'kube-node-rename/state-v1',
    planName: options.plan.metadata.name,
    fingerprint: planFingerprint,
    plan: planRecord,
    createdAt: now.toISOString(),
    runs: [],
    steps: {},
    blocked: {},
  };
  return Journal.create(options.stateDir, state, dag.order.length);
}

/** Copies kubeconfig and context when set, leaving absent keys out. */
export function clusterOptions(options: { kubeconfig?: string; context?: string }): { kubeconfig?: string; context?: string } {
  const result: { kubeconfig?: string; context?: string } = {};
  if (options.kubeconfig !== undefined) result.kubeconfig = options.kubeconfig;
  if (options.context !== undefined) result.context = options.context;
  return result;
}
