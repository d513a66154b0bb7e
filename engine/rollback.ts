// Rollback of nodes whose rename failed or stopped: by `kube-node-rename rollback`, and by `apply`
// itself under `onFailure: rollback`. The recipe does the undoing; this module picks the nodes,
// hands the recipe what the state recorded, and records the result.
import path from 'node:path';
import { createServices, clusterOptions, newRunId, RUN_LOG } from './apply.js';
import { compileDag, type DagNode } from './dag.js';
import type { Logger, LoggerHandle } from './logger.js';
import { Journal, readState } from './state/journal.js';
import { StateLock } from './state/lock.js';
import type { RollbackRecord, StateData } from './state/model.js';
import { RollbackRefusedError, type NodeRecordView, type Plan, type Recipe } from './step.js';

/** The input names no node that rollback can act on; nothing was changed. */
export class RollbackInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RollbackInputError';
  }
}

export function nodeRecord(state: StateData, node: DagNode): NodeRecordView {
  const record = (step: string) => state.steps[`${node.plan.from}/${step}`];
  return {
    succeeded: (step) => record(step)?.status === 'succeeded',
    started: (step) => record(step) !== undefined,
    outputs: (step) => record(step)?.outputs,
  };
}

/** Returns true when a rollback can act on the node: some step ran and the chain did not finish. */
export function needsRollback(state: StateData, node: DagNode): boolean {
  const records = node.steps.map((step) => state.steps[step.id]);
  const started = records.some((record) => record !== undefined);
  const finished = records.every((record) => record?.status === 'succeeded');
  return started && !finished;
}

export interface RollbackOneOptions<S> {
  plan: Plan;
  recipe: Recipe<S>;
  services: S;
  journal: Journal;
  node: DagNode;
  runId: string;
  logger: Logger;
  signal: AbortSignal;
  now: () => Date;
}

/** Rolls one node back through the recipe and records the outcome in the journal. */
export async function rollbackOne<S>(options: RollbackOneOptions<S>): Promise<RollbackRecord> {
  const { recipe, journal, node, logger } = options;
  const log = logger.child({ node: node.plan.from, step: 'rollback' });
  if (recipe.rollback === undefined) throw new Error(`the ${recipe.name} recipe has no rollback`);
  log.warn('rollback started');
  let record: RollbackRecord;
  try {
    const result = await recipe.rollback({
      runId: options.runId,
      plan: options.plan,
      node: node.plan,
      record: nodeRecord(journal.state, node),
      log,
      signal: options.signal,
      services: options.services,
    });
    record = { outcome: 'rolled-back', at: options.now().toISOString(), runId: options.runId, actions: result.actions };
    log.warn('rollback succeeded', { actions: result.actions });
  } catch (error) {
    const refused = error instanceof RollbackRefusedError;
    const reason = (error as Error).message;
    record = { outcome: refused ? 'refused' : 'failed', at: options.now().toISOString(), runId: options.runId, actions: [], reason };
    log.error(refused ? 'rollback refused' : 'rollback failed', { error: reason });
  }
  await journal.append({ type: 'node-rollback', node: node.plan.from, stepIds: node.steps.map((step) => step.id), record });
  return record;
}

export interface RollbackPlanOptions<S> {
  plan: Plan;
  recipe: Recipe<S>;
  stateDir: string;
  /** Only this node, by its current (old) name; default: every node that needs it. */
  node?: string;
  kubeconfig?: string;
  context?: string;
  log: LoggerHandle;
  signal: AbortSignal;
  command: string;
  unlockCommand: string;
  now?: () => Date;
}

export interface RollbackReport {
  runId: string;
  nodes: { node: string; to: string; record: RollbackRecord }[];
}

export async function rollbackPlan<S>(options: RollbackPlanOptions<S>): Promise<RollbackReport> {
  const now = options.now ?? (() => new Date());
  const { plan, recipe, stateDir } = options;
  const dag = compileDag(plan, recipe.steps);
  let targets = dag.nodes;
  if (options.node !== undefined) {
    targets = dag.nodes.filter((node) => node.plan.from === options.node);
    if (targets.length === 0) {
      throw new RollbackInputError(`node ${options.node} is not in the plan ${plan.source.file}; give the current (old) name of a plan entry, as spec.nodes[].from`);
    }
  }
  const existing = readState(stateDir);
  if (existing === undefined) {
    throw new RollbackInputError(`no state in ${stateDir}: the plan never ran there, so there is nothing to roll back; pass --state-dir if the run used another folder`);
  }
  const lock = StateLock.acquire(stateDir, options.command, options.unlockCommand);
  try {
    const journal = Journal.open(stateDir, dag.order.length);
    const runId = newRunId(now());
    options.log.addFile(path.join(stateDir, RUN_LOG));
    const logger = options.log.logger.child({ run: runId });
    const report: RollbackReport = { runId, nodes: [] };
    try {
      const started = (node: DagNode) => node.steps.some((step) => journal.state.steps[step.id] !== undefined);
      const chosen = options.node !== undefined ? targets.filter(started) : targets.filter((node) => needsRollback(journal.state, node));
      if (options.node !== undefined && chosen.length === 0) {
        logger.info('nothing to roll back: no step of this node ran', { node: options.node });
        return report;
      }
      if (chosen.length === 0) {
        logger.info('no node needs a rollback: every node either finished or never started');
        return report;
      }
      const services = await createServices(recipe, { plan, ...clusterOptions(options), logger, dryRun: false });
      try {
        for (const node of chosen) {
          if (options.signal.aborted) break;
          const record = await rollbackOne({ plan, recipe, services, journal, node, runId, logger, signal: options.signal, now });
          report.nodes.push({ node: node.plan.from, to: node.plan.to, record });
        }
      } finally {
        await recipe.closeServices?.(services);
      }
    } finally {
      await journal.close();
    }
    return report;
  } finally {
    lock.release();
  }
}
