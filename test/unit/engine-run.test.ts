import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { PlanChangedError } from '../../engine/apply.js';
import { clearLock, LockHeldError, StateLock } from '../../engine/state/lock.js';
import { applyInProcess, eventIndex, maxNodesInFlight } from '../fixtures/engine/apply-harness.js';
import { createWorkspace, planYaml } from '../fixtures/engine/plan-builder.js';
import { readEffects } from '../fixtures/engine/test-recipe.js';

const STEP_NAMES = ['prepare', 'release', 'switch', 'verify'];

function allStepIds(count: number): string[] {
  return Array.from({ length: count }, (_, i) => STEP_NAMES.map((step) => `n${i}/${step}`)).flat();
}

describe('apply', function () {
  this.timeout(20_000);

  it('runs every step once', async () => {
    const workspace = createWorkspace({ count: 3 });
    const run = await applyInProcess(workspace);
    expect(run.report.outcome).to.equal('succeeded');
    expect(readEffects(workspace.effectsFile).sort()).to.deep.equal(allStepIds(3).sort());
    for (const id of allStepIds(3)) expect(run.state.steps[id]!.status, id).to.equal('succeeded');
    expect(run.state.runs).to.have.length(1);
    expect(run.state.runs[0]!.outcome).to.equal('succeeded');
  });

  it('logs run, node and step', async () => {
    const workspace = createWorkspace({ count: 1 });
    const run = await applyInProcess(workspace);
    const lines = run.logText.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const succeeded = lines.filter((line) => line['message'] === 'step succeeded');
    expect(succeeded).to.have.length(4);
    for (const line of succeeded) {
      expect(line['run']).to.equal(run.report.runId);
      expect(line['node']).to.equal('n0');
      expect(STEP_NAMES).to.include(line['step']);
    }
    const fileLines = readFileSync(path.join(workspace.stateDir, 'run.log'), 'utf8').trim().split('\n');
    expect(fileLines.length).to.equal(lines.length);
  });

  it('keeps nodes in flight within parallelism', async () => {
    const workspace = createWorkspace({ count: 12, parallelism: 3 });
    const run = await applyInProcess(workspace, { recipe: { delayMs: 3 } });
    expect(run.report.outcome).to.equal('succeeded');
    expect(maxNodesInFlight(run.services)).to.equal(3);
  });

  it('runs one node at a time at parallelism 1', async () => {
    const workspace = createWorkspace({ count: 4, parallelism: 1 });
    const run = await applyInProcess(workspace, { recipe: { delayMs: 1 } });
    expect(maxNodesInFlight(run.services)).to.equal(1);
  });

  it('waits for the old name to be released', async () => {
    const workspace = createWorkspace({ nodes: [['a', 'b'], ['b', 'c'], ['c', 'd']], parallelism: 3 });
    const run = await applyInProcess(workspace, { recipe: { delayMs: 2 } });
    expect(run.report.outcome).to.equal('succeeded');
    expect(eventIndex(run.services, 'b/release', 'end')).to.be.lessThan(eventIndex(run.services, 'a/switch', 'start'));
    expect(eventIndex(run.services, 'c/release', 'end')).to.be.lessThan(eventIndex(run.services, 'b/switch', 'start'));
  });

  it('does not deadlock a chain at parallelism 1', async () => {
    const workspace = createWorkspace({ nodes: [['a', 'b'], ['b', 'c']], parallelism: 1 });
    const run = await applyInProcess(workspace);
    expect(run.report.outcome).to.equal('succeeded');
    expect(eventIndex(run.services, 'b/release', 'end')).to.be.lessThan(eventIndex(run.services, 'a/switch', 'start'));
  });

  it('finishes canaries before other nodes start', async () => {
    const workspace = createWorkspace({ count: 6, canary: 2, parallelism: 4 });
    const run = await applyInProcess(workspace, { recipe: { delayMs: 2 } });
    const lastCanaryEnd = Math.max(eventIndex(run.services, 'n0/verify', 'end'), eventIndex(run.services, 'n1/verify', 'end'));
    for (let i = 2; i < 6; i++) expect(eventIndex(run.services, `n${i}/prepare`, 'start')).to.be.greaterThan(lastCanaryEnd);
  });

  it('blocks everything after a failed canary', async () => {
    const workspace = createWorkspace({ count: 3, canary: 1, maxFailures: 5 });
    const run = await applyInProcess(workspace, { recipe: { failing: ['n0/switch'] } });
    expect(run.report.outcome).to.equal('failed');
    expect(run.report.nodes.map((node) => node.outcome.kind)).to.deep.equal(['failed', 'blocked', 'blocked']);
    expect(run.state.blocked['n1']!.reason).to.equal('canary node n0 did not succeed');
    expect(readEffects(workspace.effectsFile)).to.not.include('n1/prepare');
  });

  it('retries transient errors', async () => {
    const workspace = createWorkspace({ count: 1 });
    const run = await applyInProcess(workspace, { recipe: { retries: 3, transientFailures: { 'n0/release': 2 } } });
    expect(run.report.outcome).to.equal('succeeded');
    expect(run.services.attempts.get('n0/release')).to.equal(3);
    expect(run.state.steps['n0/release']!.attempts).to.equal(3);
    expect(run.state.steps['n0/release']!.lastError!.message).to.equal('n0/release attempt 2 failed transiently: connection reset');
    expect(run.state.steps['n0/release']!.lastError!.transient).to.equal(true);
  });

  it('fails after the last retry', async () => {
    const workspace = createWorkspace({ count: 1 });
    const run = await applyInProcess(workspace, { recipe: { retries: 2, transientFailures: { 'n0/release': 5 } } });
    expect(run.report.outcome).to.equal('failed');
    expect(run.services.attempts.get('n0/release')).to.equal(3);
    expect(run.state.steps['n0/release']!.status).to.equal('failed');
    expect(run.state.steps['n0/switch']).to.equal(undefined);
  });

  it('does not retry other errors', async () => {
    const workspace = createWorkspace({ count: 1 });
    const run = await applyInProcess(workspace, { recipe: { retries: 3, failing: ['n0/prepare'] } });
    expect(run.services.attempts.get('n0/prepare')).to.equal(1);
    expect(run.report.nodes[0]!.outcome).to.deep.equal({ kind: 'failed', step: 'prepare', error: 'n0/prepare failed on purpose' });
  });

  it('times out a hanging step', async () => {
    const workspace = createWorkspace({ count: 1 });
    const run = await applyInProcess(workspace, { recipe: { retries: 2, timeoutMs: 50, hanging: ['n0/switch'] } });
    expect(run.report.outcome).to.equal('failed');
    expect(run.services.attempts.get('n0/switch')).to.equal(1);
    expect(run.state.steps['n0/switch']!.lastError).to.include({ message: 'timed out after 50 ms', timedOut: true, transient: false });
  });

  it('stops admitting nodes past maxFailures', async () => {
    const workspace = createWorkspace({ count: 5, parallelism: 1, maxFailures: 1 });
    const run = await applyInProcess(workspace, { recipe: { failing: ['n0/prepare', 'n1/prepare'] } });
    expect(run.report.outcome).to.equal('failed');
    expect(run.report.nodes.map((node) => node.outcome.kind)).to.deep.equal(['failed', 'failed', 'not-started', 'not-started', 'not-started']);
    expect(run.report.nodes[2]!.outcome).to.deep.equal({ kind: 'not-started', reason: 'failure budget exceeded (2 failed nodes, maxFailures 1)' });
    expect(readEffects(workspace.effectsFile)).to.deep.equal([]);
  });

  it('tolerates failures within maxFailures', async () => {
    const workspace = createWorkspace({ count: 4, parallelism: 1, maxFailures: 1 });
    const run = await applyInProcess(workspace, { recipe: { failing: ['n1/verify'] } });
    expect(run.report.outcome).to.equal('failed');
    expect(run.report.counts).to.include({ succeeded: 3, failed: 1 });
  });

  it('blocks the dependents of a failed node', async () => {
    // a takes b's name, b takes c's name; c fails before releasing its name.
    // The name is released after the host step here, so b cannot release its
    // name either and a is blocked in turn.
    const workspace = createWorkspace({ nodes: [['a', 'b'], ['b', 'c'], ['c', 'd'], ['e', 'f']], parallelism: 4, maxFailures: 3 });
    const run = await applyInProcess(workspace, { recipe: { steps: ['prepare', 'switch', 'release', 'verify'], failing: ['c/prepare'] } });
    const outcomes = Object.fromEntries(run.report.nodes.map((node) => [node.node, node.outcome]));
    expect(outcomes['c']!.kind).to.equal('failed');
    expect(outcomes['b']).to.deep.equal({ kind: 'blocked', reason: 'b/switch needs c/release, which did not succeed (node c failed at prepare)' });
    expect(outcomes['a']).to.deep.equal({ kind: 'blocked', reason: 'a/switch needs b/release, which did not succeed (node b is blocked)' });
    expect(outcomes['e']!.kind).to.equal('succeeded');
    expect(run.state.blocked['a']).to.not.equal(undefined);
    expect(readEffects(workspace.effectsFile)).to.not.include('a/switch');
    expect(readEffects(workspace.effectsFile)).to.not.include('b/switch');
  });

  it('does not start a node already blocked', async () => {
    // b fails before releasing its name, so a, which takes b's name, must not even prepare
    const workspace = createWorkspace({ nodes: [['b', 'c'], ['a', 'b']], parallelism: 1, maxFailures: 1 });
    const run = await applyInProcess(workspace, { recipe: { failing: ['b/prepare'] } });
    expect(run.report.nodes[1]!.outcome).to.deep.equal({ kind: 'blocked', reason: 'a/switch needs b/release, which did not succeed (node b failed at prepare)' });
    expect(readEffects(workspace.effectsFile)).to.deep.equal([]);
  });

  it('lets a node go on once its name is released', async () => {
    // b releases its name before it waits for c, so a need not wait for c's failure
    const workspace = createWorkspace({ nodes: [['a', 'b'], ['b', 'c'], ['c', 'd']], parallelism: 3, maxFailures: 3 });
    const run = await applyInProcess(workspace, { recipe: { failing: ['c/prepare'] } });
    expect(run.report.nodes.map((node) => node.outcome.kind)).to.deep.equal(['succeeded', 'blocked', 'failed']);
  });

  it('rejects outputs named like secrets', async () => {
    const workspace = createWorkspace({ count: 1 });
    const run = await applyInProcess(workspace, { recipe: { secretOutputs: ['n0/prepare'] } });
    expect(run.report.outcome).to.equal('failed');
    expect(run.state.steps['n0/prepare']!.lastError!.message).to.include('output "bootstrapToken" is named like a secret');
    expect(readFileSync(path.join(workspace.stateDir, 'state.json'), 'utf8')).to.not.include('abcdef.0123456789abcdef');
    expect(readdirSync(workspace.stateDir).filter((name) => name.startsWith('journal-')).map((name) => readFileSync(path.join(workspace.stateDir, name), 'utf8')).join('')).to.not.include('abcdef');
  });

  it('passes outputs to later steps', async () => {
    const workspace = createWorkspace({ count: 1 });
    const run = await applyInProcess(workspace);
    expect(run.state.steps['n0/release']!.outputs).to.deep.equal({ recordedBy: run.report.runId, previous: run.report.runId });
  });

  it('resumes after a failure without rerunning finished steps', async () => {
    const workspace = createWorkspace({ count: 3, parallelism: 3, maxFailures: 3 });
    const first = await applyInProcess(workspace, { recipe: { failing: ['n1/switch'] } });
    expect(first.report.outcome).to.equal('failed');
    const second = await applyInProcess(workspace);
    expect(second.report.outcome).to.equal('succeeded');
    expect(second.services.events.filter((event) => event.event === 'start').map((event) => event.stepId)).to.deep.equal(['n1/switch', 'n1/verify']);
    expect(readEffects(workspace.effectsFile).sort()).to.deep.equal(allStepIds(3).sort());
    expect(second.state.runs.map((run) => run.outcome)).to.deep.equal(['failed', 'succeeded']);
    // outputs recorded by the first run are still there for the resumed steps
    expect(second.state.steps['n1/switch']!.outputs!['previous']).to.equal(first.report.runId);
  });

  it('refuses a changed plan and shows the differences', async () => {
    const workspace = createWorkspace({ count: 2 });
    await applyInProcess(workspace, { recipe: { failing: ['n1/prepare'] }, });
    writeFileSync(workspace.planFile, planYaml({ nodes: [['n0', 'm0'], ['n1', 'z1'], ['n2', 'm2']] }));
    try {
      await applyInProcess(workspace);
      expect.fail('the changed plan was accepted');
    } catch (error) {
      expect(error).to.be.instanceOf(PlanChangedError);
      expect((error as PlanChangedError).differences).to.deep.equal(['spec.nodes: added n2 -> m2', 'spec.nodes[from=n1].to: "m1" -> "z1"']);
      expect((error as Error).message).to.include('--start-over');
    }
  });

  it('accepts a new parallelism on resume', async () => {
    const workspace = createWorkspace({ count: 2, parallelism: 1 });
    await applyInProcess(workspace, { recipe: { failing: ['n1/prepare'] } });
    writeFileSync(workspace.planFile, planYaml({ count: 2, parallelism: 2, maxFailures: 1 }));
    const run = await applyInProcess(workspace);
    expect(run.report.outcome).to.equal('succeeded');
  });

  it('archives the state on --start-over', async () => {
    const workspace = createWorkspace({ count: 2 });
    await applyInProcess(workspace);
    writeFileSync(workspace.planFile, planYaml({ nodes: [['n0', 'x0']] }));
    const run = await applyInProcess(workspace, { startOver: true });
    expect(run.report.outcome).to.equal('succeeded');
    const archives = readdirSync(path.join(workspace.stateDir, 'archive'));
    expect(archives).to.have.length(1);
    const archived = readdirSync(path.join(workspace.stateDir, 'archive', archives[0]!));
    expect(archived).to.include('state.json');
    expect(archived).to.include('run.log');
    expect(run.state.runs).to.have.length(1);
  });

  it('rejects a second run while locked', async () => {
    const workspace = createWorkspace({ count: 1 });
    const lock = StateLock.acquire(workspace.stateDir, 'other run', 'unlock');
    try {
      await applyInProcess(workspace);
      expect.fail('the locked state was used');
    } catch (error) {
      expect(error).to.be.instanceOf(LockHeldError);
      expect((error as LockHeldError).lock.kind).to.equal('held');
      expect((error as Error).message).to.include(`locked by pid ${process.pid} on ${hostname()}`);
    } finally {
      lock.release();
    }
    expect(existsSync(workspace.effectsFile)).to.equal(false);
  });

  it('reports a stale lock and runs after unlock', async () => {
    const workspace = createWorkspace({ count: 1 });
    const exitedChild = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const deadPid = Number(exitedChild.stdout.toString());
    const lock = StateLock.acquire(workspace.stateDir, 'old run', 'unlock');
    const lockFile = path.join(workspace.stateDir, 'lock');
    const owner = JSON.parse(readFileSync(lockFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(lockFile, JSON.stringify({ ...owner, pid: deadPid }));
    try {
      await applyInProcess(workspace);
      expect.fail('the stale lock was ignored');
    } catch (error) {
      expect((error as LockHeldError).lock.kind).to.equal('stale');
      expect((error as Error).message).to.include(`pid ${deadPid}`).and.include('that process is gone').and.include('kube-node-rename unlock plan.yaml');
    }
    expect(clearLock(workspace.stateDir).kind).to.equal('stale');
    void lock;
    const run = await applyInProcess(workspace);
    expect(run.report.outcome).to.equal('succeeded');
  });

  it('stops starting steps on stop', async () => {
    const workspace = createWorkspace({ count: 4, parallelism: 2 });
    const stop = new AbortController();
    const startedFile = path.join(workspace.dir, 'started');
    const pending = applyInProcess(workspace, { stop, recipe: { delayMs: 30, startedFile } });
    while (!existsSync(startedFile)) await new Promise((resolve) => setTimeout(resolve, 2));
    stop.abort();
    const run = await pending;
    expect(run.report.outcome).to.equal('interrupted');
    const starts = run.services.events.filter((event) => event.event === 'start').length;
    const ends = run.services.events.filter((event) => event.event === 'end').length;
    expect(starts).to.equal(ends);
    expect(starts).to.be.lessThan(16);
    for (const record of Object.values(run.state.steps)) expect(record.status).to.equal('succeeded');
    const resumed = await applyInProcess(workspace);
    expect(resumed.report.outcome).to.equal('succeeded');
    expect(readEffects(workspace.effectsFile).sort()).to.deep.equal(allStepIds(4).sort());
  });

  it('aborts running steps on the second signal', async () => {
    const workspace = createWorkspace({ count: 1 });
    const stop = new AbortController();
    const abort = new AbortController();
    const startedFile = path.join(workspace.dir, 'started');
    const pending = applyInProcess(workspace, { stop, abort, recipe: { hanging: ['n0/prepare'], startedFile } });
    while (!existsSync(startedFile)) await new Promise((resolve) => setTimeout(resolve, 2));
    stop.abort();
    abort.abort();
    const run = await pending;
    expect(run.report.outcome).to.equal('interrupted');
    expect(run.state.steps['n0/prepare']!.status).to.equal('pending');
  });
});
