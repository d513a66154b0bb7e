// The contract between the engine and the steps of a recipe. The real rename
// steps live in steps/; tests use recipes of their own.
import type { Logger } from 'winston';
import type { Plan, PlanNode } from './plan-types.js';

export type { Logger } from 'winston';
export type { Plan, PlanNode } from './plan-types.js';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };
export type StepOutputs = Record<string, JsonValue>;

export interface StepContext<S> {
  runId: string;
  plan: Plan;
  node: PlanNode;
  /** `<from>/<step>` */
  stepId: string;
  step: string;
  /** 1 for the first attempt of this run; retries count up. */
  attempt: number;
  /** Outputs recorded by an earlier step of this node. They come from the state, so they survive a resume. */
  outputs(step: string): StepOutputs | undefined;
  /** Child logger carrying run, node and step. */
  log: Logger;
  /** Aborted when the step times out or when the run is stopped by a second signal. */
  signal: AbortSignal;
  /** Injected by the recipe (Kubernetes client, host runner, clock). */
  services: S;
}

export interface StepRetryPolicy {
  /** Retries after the first attempt; only TransientStepError is retried. */
  retries: number;
  /** @default 1000 */
  minTimeoutMs?: number;
  /** @default 30000 */
  maxTimeoutMs?: number;
  /** @default 2 */
  factor?: number;
}

export interface StepDefinition<S> {
  /** kebab-case, unique in the recipe */
  name: string;
  /** One line for `graph` and `apply --dry-run`. */
  description: string;
  /** Per attempt, in milliseconds. */
  timeoutMs: number;
  retry?: StepRetryPolicy;
  /** The first such step of a node waits until the node holding its new name has released it. */
  touchesHost?: boolean;
  /** Once this step succeeds, the node's old name (node.from) is free: the old Node object is gone. */
  releasesName?: boolean;
  /** Describes what this step would do; must change nothing. */
  dryRun(ctx: StepContext<S>): Promise<string> | string;
  /** Must check whether its work is already done before acting. */
  run(ctx: StepContext<S>): Promise<StepResult>;
}

export type StepResult = { kind: 'done' | 'already-done'; outputs?: StepOutputs; summary?: string };

/** The only error the engine retries. Pass the original error as `cause`. */
export class TransientStepError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientStepError';
  }
}

export interface CreateServicesOptions {
  plan: Plan;
  kubeconfig?: string;
  context?: string;
  logger: Logger;
  dryRun: boolean;
}

/** The state's record of one node's steps, as rollback reads it. */
export interface NodeRecordView {
  succeeded(step: string): boolean;
  /** True when the step ran at least once in any run, whatever its outcome. */
  started(step: string): boolean;
  outputs(step: string): StepOutputs | undefined;
}

export interface RollbackContext<S> {
  runId: string;
  plan: Plan;
  node: PlanNode;
  record: NodeRecordView;
  log: Logger;
  signal: AbortSignal;
  services: S;
}

export interface RollbackResult {
  /** The rollback's actions, in order, for the state and the operator. */
  actions: string[];
}

/** Rolling back would do more harm than good. The message gives the reason and what to do instead. */
export class RollbackRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RollbackRefusedError';
  }
}

export interface Recipe<S> {
  name: string;
  /** One node's chain, in order. */
  steps: StepDefinition<S>[];
  createServices(opts: CreateServicesOptions): Promise<S>;
  closeServices?(services: S): Promise<void>;
  /**
   * Undoes what the node's steps did, as far as the record allows. Throws RollbackRefusedError
   * when that would be unsafe. Called by `rollback` and, with `onFailure: rollback`, by `apply`.
   */
  rollback?(ctx: RollbackContext<S>): Promise<RollbackResult>;
}
