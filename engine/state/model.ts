// The checkpointed state of a plan's runs, and the journal events that change
// it. `applyEvent` is the only writer. Every event carries absolute values, so
// applying an event twice leaves the same state; compaction relies on that.
import type { JsonValue, StepOutputs } from '../step.js';

export type StepStatus = 'pending' | 'running' | 'succeeded' | 'failed';

export interface StepError {
  message: string;
  /** true when the step marked the error as transient (TransientStepError) */
  transient: boolean;
  timedOut?: boolean;
}

export interface StepRecord {
  status: StepStatus;
  /** Attempts made in the latest run that ran this step. */
  attempts: number;
  runId?: string;
  startedAt?: string;
  finishedAt?: string;
  result?: 'done' | 'already-done';
  summary?: string;
  outputs?: StepOutputs;
  lastError?: StepError & { at: string; attempt: number };
}

export interface RunRecord {
  runId: string;
  startedAt: string;
  pid: number;
  host: string;
  user: string;
  endedAt?: string;
  outcome?: RunOutcome;
}

export type RunOutcome = 'succeeded' | 'failed' | 'interrupted';

export interface BlockedRecord {
  reason: string;
  at: string;
  runId: string;
}

export type RollbackOutcome = 'rolled-back' | 'refused' | 'failed';

export interface RollbackRecord {
  outcome: RollbackOutcome;
  at: string;
  runId: string;
  actions: string[];
  /** Why it was refused or failed. */
  reason?: string;
}

export interface StateData {
  format: 'kube-node-rename/state-v1';
  planName: string;
  fingerprint: string;
  /** The fingerprinted part of the plan, kept to show what changed. */
  plan: JsonValue;
  createdAt: string;
  runs: RunRecord[];
  steps: Record<string, StepRecord>;
  /** Nodes that did not run because something they wait for failed, by current name. */
  blocked: Record<string, BlockedRecord>;
  /** The latest rollback of each node, by current name; absent in states written before rollback existed. */
  rollbacks?: Record<string, RollbackRecord>;
}

export type StateEvent =
  | { type: 'run-started'; run: RunRecord }
  | { type: 'run-ended'; runId: string; at: string; outcome: RunOutcome }
  | { type: 'step-running'; id: string; runId: string; attempt: number; at: string }
  | { type: 'attempt-failed'; id: string; attempt: number; at: string; error: StepError }
  | { type: 'step-succeeded'; id: string; at: string; result: 'done' | 'already-done'; summary?: string; outputs?: StepOutputs }
  | { type: 'step-failed'; id: string; attempt: number; at: string; error: StepError }
  /** The run stopped while the step waited to retry or after it was aborted; it runs again on resume. */
  | { type: 'step-interrupted'; id: string; at: string }
  | { type: 'node-blocked'; node: string; runId: string; at: string; reason: string }
  | { type: 'node-unblocked'; node: string }
  /** A rollback ended; when it rolled the node back, the node's steps start over on the next apply. */
  | { type: 'node-rollback'; node: string; stepIds: string[]; record: RollbackRecord };

export function applyEvent(state: StateData, event: StateEvent): void {
  switch (event.type) {
    case 'run-started': {
      const index = state.runs.findIndex((run) => run.runId === event.run.runId);
      if (index === -1) state.runs.push({ ...event.run });
      else state.runs[index] = { ...event.run };
      return;
    }
    case 'run-ended': {
      const run = state.runs.find((candidate) => candidate.runId === event.runId);
      if (run !== undefined) {
        run.endedAt = event.at;
        run.outcome = event.outcome;
      }
      return;
    }
    case 'step-running': {
      const previous = state.steps[event.id];
      const record: StepRecord = { status: 'running', attempts: event.attempt, runId: event.runId, startedAt: event.at };
      if (previous?.lastError !== undefined) record.lastError = previous.lastError;
      state.steps[event.id] = record;
      return;
    }
    case 'attempt-failed': {
      const record = stepRecord(state, event.id);
      record.lastError = { ...event.error, at: event.at, attempt: event.attempt };
      return;
    }
    case 'step-succeeded': {
      const record = stepRecord(state, event.id);
      record.status = 'succeeded';
      record.finishedAt = event.at;
      record.result = event.result;
      if (event.summary !== undefined) record.summary = event.summary;
      if (event.outputs !== undefined) record.outputs = event.outputs;
      return;
    }
    case 'step-failed': {
      const record = stepRecord(state, event.id);
      record.status = 'failed';
      record.finishedAt = event.at;
      record.attempts = event.attempt;
      record.lastError = { ...event.error, at: event.at, attempt: event.attempt };
      return;
    }
    case 'step-interrupted': {
      const record = stepRecord(state, event.id);
      record.status = 'pending';
      record.finishedAt = event.at;
      return;
    }
    case 'node-blocked':
      state.blocked[event.node] = { reason: event.reason, at: event.at, runId: event.runId };
      return;
    case 'node-unblocked':
      delete state.blocked[event.node];
      return;
    case 'node-rollback':
      state.rollbacks ??= {};
      state.rollbacks[event.node] = { ...event.record, actions: [...event.record.actions] };
      if (event.record.outcome === 'rolled-back') for (const id of event.stepIds) delete state.steps[id];
      return;
    default: {
      const unknown: never = event;
      throw new Error(`unknown state event ${JSON.stringify(unknown)}`);
    }
  }
}

function stepRecord(state: StateData, id: string): StepRecord {
  let record = state.steps[id];
  if (record === undefined) {
    record = { status: 'pending', attempts: 0 };
    state.steps[id] = record;
  }
  return record;
}
