// Runs one step of one node: attempts with a timeout each, retries of
// TransientStepError through p-retry, the secrets guard on outputs, and a
// journal event for every transition.
import pRetry, { AbortError } from 'p-retry';
import type { DagStep } from './dag.js';
import type { Logger } from './logger.js';
import { findSecretKey } from './secrets.js';
import type { Journal } from './state/journal.js';
import type { StepError } from './state/model.js';
import { TransientStepError, type Plan, type PlanNode, type StepContext, type StepDefinition, type StepResult } from './step.js';

export type StepOutcome =
  | { kind: 'succeeded'; result: StepResult }
  | { kind: 'failed'; error: StepError }
  | { kind: 'interrupted' };

export interface StepExecution<S> {
  runId: string;
  plan: Plan;
  node: PlanNode;
  step: DagStep;
  definition: StepDefinition<S>;
  services: S;
  journal: Journal;
  logger: Logger;
  /** Aborted by the second signal: running attempts are aborted too. */
  abortSignal: AbortSignal;
  /** Aborted by the first signal: no new attempt starts. */
  stopSignal: AbortSignal;
  now: () => Date;
}

class StepTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
    this.name = 'StepTimeoutError';
  }
}

class StepInterruptedError extends Error {
  constructor() {
    super('the run was stopped');
    this.name = 'StepInterruptedError';
  }
}

/** The step broke the step contract: an invalid result or a secret in its outputs. */
class StepContractError extends Error {
  override name = 'StepContractError';
}

export async function executeStep<S>(execution: StepExecution<S>): Promise<StepOutcome> {
  const { step, definition, journal, logger, now } = execution;
  const retry = definition.retry;
  const backoff = new AbortController();
  const onStop = (): void => backoff.abort(new StepInterruptedError());
  let waitingToRetry = false;
  const stopRetrying = (): void => {
    if (waitingToRetry) onStop();
  };
  execution.stopSignal.addEventListener('abort', stopRetrying);
  const started = performance.now();
  let lastAttempt = 1;

  try {
    const result = await pRetry(
      async (attempt) => {
        waitingToRetry = false;
        lastAttempt = attempt;
        if (attempt > 1 && execution.stopSignal.aborted) throw new AbortError(new StepInterruptedError());
        await journal.append({ type: 'step-running', id: step.id, runId: execution.runId, attempt, at: now().toISOString() });
        logger.info(attempt === 1 ? 'step started' : 'step retry started', { attempt });
        return await runAttempt(execution, attempt);
      },
      {
        retries: retry?.retries ?? 0,
        minTimeout: retry?.minTimeoutMs ?? 1000,
        maxTimeout: retry?.maxTimeoutMs ?? 30_000,
        factor: retry?.factor ?? 2,
        signal: backoff.signal,
        shouldRetry: ({ error }) => error instanceof TransientStepError,
        onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
          if (!(error instanceof TransientStepError) || retriesLeft === 0) return;
          waitingToRetry = true;
          if (execution.stopSignal.aborted) onStop();
          logger.warn('attempt failed, will retry', { attempt: attemptNumber, retriesLeft, error: error.message });
          await journal.append({ type: 'attempt-failed', id: step.id, attempt: attemptNumber, at: now().toISOString(), error: describeError(error) });
        },
      },
    );
    await journal.append({ type: 'step-succeeded', id: step.id, at: now().toISOString(), result: result.kind, ...optional('summary', result.summary), ...optional('outputs', result.outputs) });
    logger.info('step succeeded', { result: result.kind, attempt: lastAttempt, durationMs: Math.round(performance.now() - started), ...optional('summary', result.summary) });
    return { kind: 'succeeded', result };
  } catch (error) {
    if (error instanceof StepInterruptedError) {
      await journal.append({ type: 'step-interrupted', id: step.id, at: now().toISOString() });
      logger.warn('step interrupted; it runs again on resume', { attempt: lastAttempt });
      return { kind: 'interrupted' };
    }
    const described = describeError(error);
    await journal.append({ type: 'step-failed', id: step.id, attempt: lastAttempt, at: now().toISOString(), error: described });
    logger.error('step failed', { attempt: lastAttempt, error: described.message, durationMs: Math.round(performance.now() - started) });
    return { kind: 'failed', error: described };
  } finally {
    execution.stopSignal.removeEventListener('abort', stopRetrying);
  }
}

/** Calls the step's run() once, bounded by its timeout and by the abort signal. */
async function runAttempt<S>(execution: StepExecution<S>, attempt: number): Promise<StepResult> {
  const { definition, step, journal } = execution;
  // One controller per attempt, aborted by the timeout or by the run's abort
  // signal. AbortSignal.any would keep every attempt's signal reachable from
  // the run's signal until the run ends, which at 10,000 nodes costs memory.
  const controller = new AbortController();
  const signal = controller.signal;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new StepTimeoutError(definition.timeoutMs));
  }, definition.timeoutMs);
  const forwardAbort = (): void => controller.abort(new StepInterruptedError());
  if (execution.abortSignal.aborted) forwardAbort();
  else execution.abortSignal.addEventListener('abort', forwardAbort, { once: true });
  const context: StepContext<S> = {
    runId: execution.runId,
    plan: execution.plan,
    node: execution.node,
    stepId: step.id,
    step: step.step,
    attempt,
    outputs: (name) => journal.state.steps[`${step.node}/${name}`]?.outputs,
    log: execution.logger,
    signal,
    services: execution.services,
  };
  let onAbort: (() => void) | undefined;
  // A step that ignores its signal still ends at the timeout; the engine
  // stops waiting for it, though its promise may settle later.
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const result = await Promise.race([definition.run(context), aborted]);
    return checkResult(result);
  } catch (error) {
    // The step's own rejection after an abort is reported as the abort.
    if (signal.aborted) throw (timedOut ? signal.reason : new StepInterruptedError()) as Error;
    throw error;
  } finally {
    clearTimeout(timer);
    execution.abortSignal.removeEventListener('abort', forwardAbort);
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}

function checkResult(result: StepResult): StepResult {
  if (result === null || typeof result !== 'object' || (result.kind !== 'done' && result.kind !== 'already-done')) {
    throw new StepContractError(`the step returned ${JSON.stringify(result)}; expected { kind: "done" | "already-done" }`);
  }
  const secretKey = findSecretKey(result.outputs);
  if (secretKey !== undefined) {
    throw new StepContractError(`output "${secretKey}" is named like a secret or holds one, and outputs are written to the state file; the step must not return secrets as outputs`);
  }
  if (result.outputs !== undefined) result.outputs = JSON.parse(JSON.stringify(result.outputs)) as StepResult['outputs'];
  return result;
}

function describeError(error: unknown): StepError {
  if (error instanceof StepTimeoutError) return { message: error.message, transient: false, timedOut: true };
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return { message: `${error.message}${cause}`, transient: error instanceof TransientStepError };
  }
  return { message: String(error), transient: false };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
