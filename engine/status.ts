// `status`: per-node progress from the state, as a table or JSON.
import type { Dag } from './dag.js';
import type { LockState } from './state/lock.js';
import type { RunRecord, StateData, StepRecord } from './state/model.js';

export type NodeState = 'pending' | 'in-progress' | 'running' | 'succeeded' | 'failed' | 'blocked' | 'rolled-back';

export interface NodeStatus {
  node: string;
  to: string;
  state: NodeState;
  stepsDone: number;
  stepsTotal: number;
  /** The step that failed, runs, or comes next. */
  step: string | null;
  detail: string | null;
  steps: ({ step: string } & StepRecord)[];
}

export interface StatusReport {
  plan: string;
  stateDir: string;
  /** false when no run has written state yet */
  started: boolean;
  planChanged: boolean;
  lock: LockState;
  lastRun: RunRecord | null;
  counts: Record<NodeState, number>;
  nodes: NodeStatus[];
}

export function buildStatus(dag: Dag, planName: string, stateDir: string, state: StateData | undefined, fingerprint: string, lock: LockState): StatusReport {
  const counts: Record<NodeState, number> = { pending: 0, 'in-progress': 0, running: 0, succeeded: 0, failed: 0, blocked: 0, 'rolled-back': 0 };
  const nodes = dag.nodes.map((node): NodeStatus => {
    const steps = node.steps.map((step) => ({ step: step.step, ...(state?.steps[step.id] ?? { status: 'pending' as const, attempts: 0 }) }));
    const stepsDone = steps.filter((step) => step.status === 'succeeded').length;
    const failed = steps.find((step) => step.status === 'failed');
    const running = steps.find((step) => step.status === 'running');
    const next = steps.find((step) => step.status !== 'succeeded');
    const blocked = state?.blocked[node.plan.from];
    let nodeState: NodeState;
    let detail: string | null = null;
    if (stepsDone === steps.length) nodeState = 'succeeded';
    else if (failed !== undefined) {
      nodeState = 'failed';
      detail = failed.lastError?.message ?? null;
    } else if (running !== undefined) {
      nodeState = 'running';
      // A running step without a live lock holder was cut off by a crash; it runs again on resume.
      if (lock.kind !== 'held') detail = 'interrupted; runs again on resume';
    } else if (blocked !== undefined) {
      nodeState = 'blocked';
      detail = blocked.reason;
    } else nodeState = stepsDone > 0 ? 'in-progress' : 'pending';
    const rollback = state?.rollbacks?.[node.plan.from];
    if (rollback !== undefined && nodeState === 'pending' && rollback.outcome === 'rolled-back') {
      nodeState = 'rolled-back';
      detail = `rolled back ${rollback.at}; apply starts the rename again`;
    } else if (rollback !== undefined && rollback.outcome !== 'rolled-back' && detail === null) {
      detail = `rollback ${rollback.outcome}: ${rollback.reason ?? ''}`;
    }
    if (detail === null && next?.lastError !== undefined) detail = `last error: ${next.lastError.message}`;
    counts[nodeState]++;
    return { node: node.plan.from, to: node.plan.to, state: nodeState, stepsDone, stepsTotal: steps.length, step: (failed ?? running ?? next)?.step ?? null, detail, steps };
  });
  return {
    plan: planName,
    stateDir,
    started: state !== undefined,
    planChanged: state !== undefined && state.fingerprint !== fingerprint,
    lock,
    lastRun: state?.runs[state.runs.length - 1] ?? null,
    counts,
    nodes,
  };
}

export function formatStatus(report: StatusReport): string {
  const lines: string[] = [];
  lines.push(`plan ${report.plan}, state ${report.stateDir}`);
  if (!report.started) lines.push('no run yet: every node is pending');
  if (report.planChanged) lines.push('warning: the plan has changed since this state was written; apply will refuse it unless --start-over');
  if (report.lastRun !== null) {
    const run = report.lastRun;
    lines.push(`last run ${run.runId} started ${run.startedAt} by ${run.user}@${run.host}: ${run.outcome ?? (report.lock.kind === 'held' ? 'running' : 'ended without a record (crash or kill)')}`);
  }
  if (report.lock.kind === 'held') lines.push(`locked by pid ${report.lock.owner.pid} on ${report.lock.owner.host} since ${report.lock.owner.startedAt}`);
  if (report.lock.kind === 'stale') lines.push(`stale lock: pid ${report.lock.owner.pid} on ${report.lock.owner.host} is gone; run unlock to clear it`);
  const summary = Object.entries(report.counts)
    .filter(([, count]) => count > 0)
    .map(([state, count]) => `${count} ${state}`)
    .join(', ');
  lines.push(`${report.nodes.length} nodes: ${summary}`, '');
  const rows = [['NODE', 'NEW NAME', 'STATE', 'STEPS', 'STEP', 'DETAIL']];
  for (const node of report.nodes) rows.push([node.node, node.to, node.state, `${node.stepsDone}/${node.stepsTotal}`, node.step ?? '-', node.detail ?? '']);
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  for (const row of rows) lines.push(row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ').trimEnd());
  return lines.join('\n');
}
