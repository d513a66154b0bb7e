// Runs a compiled DAG against an open journal. Scheduling rules:
// - at most `parallelism` nodes are in flight; a node is in flight from its
//   first step until its chain ends;
// - a node is admitted only after the node whose old name it takes has been
//   admitted, so a node that waits for another always waits for one in flight;
// - nodes after the canaries are admitted only once every canary succeeded;
// - after more than `maxFailures` failed nodes no node is admitted, and nodes
//   in flight run to the end of their chains;
// - on stop (first signal) no step starts, and running steps finish or time out.
import { setMaxListeners } from 'node:events';
import type { Dag, DagNode, DagStep } from './dag.js';
import { MinHeap } from './heap.js';
import type { Logger } from './logger.js';
import { rollbackOne } from './rollback.js';
import { executeStep } from './step-executor.js';
import type { Journal } from './state/journal.js';
import type { RunOutcome } from './state/model.js';
import type { Plan, Recipe, StepDefinition } from './step.js';

export interface RunOptions<S> {
  plan: Plan;
  dag: Dag;
  recipe: Recipe<S>;
  services: S;
  journal: Journal;
  runId: string;
  logger: Logger;
  /** First signal: start no more steps. */
  stopSignal: AbortSignal;
  /** Second signal: abort running steps as well. */
  abortSignal: AbortSignal;
  now?: () => Date;
}

export type NodeOutcome =
  | { kind: 'succeeded' }
  | { kind: 'failed'; step: string; error: string }
  | { kind: 'blocked'; reason: string }
  | { kind: 'not-started'; reason: string }
  | { kind: 'stopped' };

export interface RunReport {
  runId: string;
  outcome: RunOutcome;
  nodes: { node: string; to: string; outcome: NodeOutcome }[];
  counts: Record<NodeOutcome['kind'], number>;
  /** Bytes written to the journal and snapshots by this run; set by applyPlan once the journal is closed. */
  checkpointBytes?: number;
}

type NodeProgress = 'waiting' | 'queued' | 'active' | 'ended';

interface NodeRun {
  dag: DagNode;
  progress: NodeProgress;
  outcome?: NodeOutcome;
  /** The node that takes this node's old name, if any. */
  dependent?: NodeRun;
  predecessor?: NodeRun;
}

export async function runDag<S>(options: RunOptions<S>): Promise<RunReport> {
  return new DagRun(options).run();
}

class DagRun<S> {
  private readonly nodes: NodeRun[];
  private readonly definitions: Map<string, StepDefinition<S>>;
  private readonly ready = new MinHeap<NodeRun>();
  private readonly stepWaiters = new Map<string, ((done: boolean) => void)[]>();
  private readonly now: () => Date;
  private active = 0;
  private failures = 0;
  private canaryLeft = 0;
  private canaryFailed: string | undefined;
  private finish!: () => void;

  constructor(private readonly options: RunOptions<S>) {
    this.now = options.now ?? (() => new Date());
    this.definitions = new Map(options.recipe.steps.map((definition) => [definition.name, definition]));
    this.nodes = options.dag.nodes.map((dag) => ({ dag, progress: 'waiting' }));
    for (const node of this.nodes) {
      if (node.dag.waitsForNode === undefined) continue;
      node.predecessor = this.nodes[node.dag.waitsForNode]!;
      node.predecessor.dependent = node;
    }
  }

  async run(): Promise<RunReport> {
    const { journal, logger } = this.options;
    // Every running step listens to these two signals.
    setMaxListeners(0, this.options.stopSignal, this.options.abortSignal);
    // Blocked nodes are judged again in this run. Appends made together share one fsync.
    await Promise.all(Object.keys(journal.state.blocked).map((node) => journal.append({ type: 'node-unblocked', node })));
    const count = this.nodes.length;
    for (const node of this.nodes) {
      if (node.dag.canary) this.canaryLeft++;
      if (node.predecessor === undefined) this.enqueue(node);
    }
    logger.info('run started', { nodes: count, steps: this.options.dag.order.length, parallelism: this.options.plan.spec.strategy.parallelism });
    const finished = new Promise<void>((resolve) => (this.finish = resolve));
    const onStop = (): void => {
      logger.warn('stop requested: no new step starts; running steps finish or time out');
      this.pump();
    };
    this.options.stopSignal.addEventListener('abort', onStop, { once: true });
    this.pump();
    await finished;
    this.options.stopSignal.removeEventListener('abort', onStop);
    await this.recordUnstarted();
    return this.report();
  }

  private isDone(node: NodeRun): boolean {
    return node.dag.steps.every((step) => this.stepSucceeded(step.id));
  }

  private stepSucceeded(id: string): boolean {
    return this.options.journal.state.steps[id]?.status === 'succeeded';
  }

  /** Queues a node for admission; nodes with progress from an earlier run go first after the canaries. */
  private enqueue(node: NodeRun): void {
    if (node.progress !== 'waiting') return;
    node.progress = 'queued';
    this.ready.push(this.keyOf(node), node);
  }

  private admissionClosed(): boolean {
    // A journal that cannot be written stops admission: no step may act without a record.
    return this.options.stopSignal.aborted || this.failures > this.options.plan.spec.strategy.maxFailures || this.options.journal.failed !== undefined;
  }

  /** Admits queued nodes while there are free slots, then ends the run when nothing runs and nothing can start. */
  private pump(): void {
    const parallelism = this.options.plan.spec.strategy.parallelism;
    while (this.active < parallelism && !this.admissionClosed()) {
      const node = this.peekAdmissible();
      if (node === undefined) break;
      this.ready.pop();
      this.admit(node);
    }
    if (this.active === 0 && (this.admissionClosed() || this.peekAdmissible() === undefined)) this.finish();
  }

  /** Returns the next queued node if it may start now. Canary nodes sort first, so a gated node means none may start. */
  private peekAdmissible(): NodeRun | undefined {
    const node = this.ready.peek();
    if (node === undefined) return undefined;
    if (!node.dag.canary && (this.canaryLeft > 0 || this.canaryFailed !== undefined)) return undefined;
    return node;
  }

  private keyOf(node: NodeRun): number {
    const count = this.nodes.length;
    const started = node.dag.steps.some((step) => this.options.journal.state.steps[step.id] !== undefined);
    return node.dag.canary ? node.dag.index : (started ? count : 2 * count) + node.dag.index;
  }

  private admit(node: NodeRun): void {
    node.progress = 'active';
    if (node.dependent !== undefined) this.enqueue(node.dependent);
    if (this.isDone(node)) {
      this.endNode(node, { kind: 'succeeded' });
      return;
    }
    this.active++;
    void this.runNode(node).then(
      (outcome) => {
        this.active--;
        this.endNode(node, outcome);
        this.pump();
      },
      (error: unknown) => {
        // Journal write failures land here; without a journal the run cannot go on.
        this.active--;
        this.options.logger.error('node run crashed', { node: node.dag.plan.from, error: (error as Error).message });
        this.endNode(node, { kind: 'failed', step: '(engine)', error: (error as Error).message });
        this.pump();
      },
    );
  }

  private endNode(node: NodeRun, outcome: NodeOutcome): void {
    node.progress = 'ended';
    node.outcome = outcome;
    if (outcome.kind === 'failed') this.failures++;
    if (node.dag.canary) {
      if (outcome.kind === 'succeeded') this.canaryLeft--;
      else if (outcome.kind === 'failed' || outcome.kind === 'blocked') this.canaryFailed ??= node.dag.plan.from;
    }
    for (const step of node.dag.steps) this.notify(step.id, this.stepSucceeded(step.id));
    if (outcome.kind === 'failed' && this.failures > this.options.plan.spec.strategy.maxFailures) {
      this.options.logger.error('failure budget exceeded: no new node starts', { failedNodes: this.failures, maxFailures: this.options.plan.spec.strategy.maxFailures });
    }
  }

  private async runNode(node: NodeRun): Promise<NodeOutcome> {
    const { journal, logger, stopSignal } = this.options;
    const planNode = node.dag.plan;
    const block = async (step: DagStep, blocker: string): Promise<NodeOutcome> => {
      const reason = `${step.id} needs ${blocker}, which did not succeed (node ${this.options.dag.byId.get(blocker)!.node} ${this.describeEnd(blocker)})`;
      await journal.append({ type: 'node-blocked', node: planNode.from, runId: this.options.runId, at: this.now().toISOString(), reason });
      logger.warn('node blocked', { run: this.options.runId, node: planNode.from, reason });
      return { kind: 'blocked', reason };
    };
    // A node whose later step needs a step that can no longer succeed does not start at all.
    for (const step of node.dag.steps) {
      const lost = step.needs.find((need) => !this.stepSucceeded(need) && this.nodes[this.options.dag.byId.get(need)!.nodeIndex]!.progress === 'ended');
      if (lost !== undefined) return block(step, lost);
    }
    for (const step of node.dag.steps) {
      if (this.stepSucceeded(step.id)) continue;
      const blocker = await this.waitForNeeds(step);
      if (blocker !== undefined) return block(step, blocker);
      if (stopSignal.aborted) return { kind: 'stopped' };
      const outcome = await executeStep({
        runId: this.options.runId,
        plan: this.options.plan,
        node: planNode,
        step,
        definition: this.definitions.get(step.step)!,
        services: this.options.services,
        journal,
        logger: logger.child({ run: this.options.runId, node: planNode.from, step: step.step }),
        abortSignal: this.options.abortSignal,
        stopSignal,
        now: this.now,
      });
      if (outcome.kind === 'failed') return this.failNode(node, step.step, outcome.error.message);
      if (outcome.kind === 'interrupted') return { kind: 'stopped' };
      this.notify(step.id, true);
    }
    logger.info('node succeeded', { run: this.options.runId, node: planNode.from });
    return { kind: 'succeeded' };
  }

  /** Ends a failed node, first rolling it back when the plan says `onFailure: rollback`. */
  private async failNode(node: NodeRun, step: string, error: string): Promise<NodeOutcome> {
    const { plan, recipe } = this.options;
    if (plan.spec.strategy.onFailure !== 'rollback' || recipe.rollback === undefined) return { kind: 'failed', step, error };
    const record = await rollbackOne({
      plan,
      recipe,
      services: this.options.services,
      journal: this.options.journal,
      node: node.dag,
      runId: this.options.runId,
      logger: this.options.logger.child({ run: this.options.runId }),
      signal: this.options.abortSignal,
      now: this.now,
    });
    const rollback = record.outcome === 'rolled-back' ? 'rolled back' : `rollback ${record.outcome}: ${record.reason}`;
    return { kind: 'failed', step, error: `${error} (${rollback})` };
  }

  /** Waits until every need of `step` succeeded; returns the first need that never will in this run. */
  private async waitForNeeds(step: DagStep): Promise<string | undefined> {
    for (const need of step.needs) {
      if (this.stepSucceeded(need)) continue;
      const owner = this.nodes[this.options.dag.byId.get(need)!.nodeIndex]!;
      if (owner.progress === 'ended') return need;
      const done = await new Promise<boolean>((resolve) => {
        const list = this.stepWaiters.get(need);
        if (list === undefined) this.stepWaiters.set(need, [resolve]);
        else list.push(resolve);
      });
      if (!done) return need;
    }
    return undefined;
  }

  private notify(id: string, done: boolean): void {
    const waiters = this.stepWaiters.get(id);
    if (waiters === undefined) return;
    this.stepWaiters.delete(id);
    for (const resolve of waiters) resolve(done);
  }

  private describeEnd(stepId: string): string {
    const owner = this.nodes[this.options.dag.byId.get(stepId)!.nodeIndex]!;
    switch (owner.outcome?.kind) {
      case 'failed':
        return `failed at ${owner.outcome.step}`;
      case 'blocked':
        return 'is blocked';
      case 'stopped':
        return 'was stopped';
      default:
        return 'did not finish';
    }
  }

  /** Gives every node that never started the reason why, and records the blocked ones. */
  private async recordUnstarted(): Promise<void> {
    const { journal, plan } = this.options;
    const at = this.now().toISOString();
    const appends: Promise<void>[] = [];
    for (const node of this.nodes) {
      if (node.outcome !== undefined) continue;
      let outcome: NodeOutcome;
      const predecessor = node.predecessor;
      if (!node.dag.canary && this.canaryFailed !== undefined) {
        outcome = { kind: 'blocked', reason: `canary node ${this.canaryFailed} did not succeed` };
      } else if (predecessor !== undefined && (predecessor.outcome?.kind === 'failed' || predecessor.outcome?.kind === 'blocked')) {
        outcome = { kind: 'blocked', reason: `waits for node ${predecessor.dag.plan.from}, which ${predecessor.outcome.kind === 'failed' ? 'failed' : 'is blocked'}` };
      } else if (this.options.stopSignal.aborted) {
        outcome = { kind: 'not-started', reason: 'the run was stopped' };
      } else if (this.failures > plan.spec.strategy.maxFailures) {
        outcome = { kind: 'not-started', reason: `failure budget exceeded (${this.failures} failed nodes, maxFailures ${plan.spec.strategy.maxFailures})` };
      } else {
        outcome = { kind: 'not-started', reason: 'no step could start' };
      }
      node.outcome = outcome;
      if (outcome.kind === 'blocked') appends.push(journal.append({ type: 'node-blocked', node: node.dag.plan.from, runId: this.options.runId, at, reason: outcome.reason }));
    }
    await Promise.all(appends);
  }

  private report(): RunReport {
    const counts: RunReport['counts'] = { succeeded: 0, failed: 0, blocked: 0, 'not-started': 0, stopped: 0 };
    const nodes = this.nodes.map((node) => {
      const outcome = node.outcome!;
      counts[outcome.kind]++;
      return { node: node.dag.plan.from, to: node.dag.plan.to, outcome };
    });
    let outcome: RunOutcome = 'failed';
    if (counts.succeeded === nodes.length) outcome = 'succeeded';
    else if (this.options.stopSignal.aborted) outcome = 'interrupted';
    return { runId: this.options.runId, outcome, nodes, counts };
  }
}
