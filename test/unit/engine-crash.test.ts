import { expect } from 'chai';
import { appendFileSync, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { readState } from '../../engine/state/journal.js';
import { runCliSync, startCli, waitFor } from '../fixtures/engine/child.js';
import { createWorkspace, type Workspace } from '../fixtures/engine/plan-builder.js';
import { readEffects, type TestRecipeConfig } from '../fixtures/engine/test-recipe.js';

const STEP_NAMES = ['prepare', 'release', 'switch', 'verify'];

function expectedEffects(nodes: string[]): string[] {
  return nodes.flatMap((node) => STEP_NAMES.map((step) => `${node}/${step}`)).sort();
}

function expectAllDoneOnce(workspace: Workspace, nodes: string[]): void {
  expect(readEffects(workspace.effectsFile).sort()).to.deep.equal(expectedEffects(nodes));
  const state = readState(workspace.stateDir)!.state;
  for (const id of expectedEffects(nodes)) expect(state.steps[id]?.status, id).to.equal('succeeded');
}

describe('crash and resume', function () {
  this.timeout(60_000);

  for (const when of ['before-effect', 'after-effect'] as const) {
    for (const stepId of expectedEffects(['n0', 'n1'])) {
      it(`resumes after kill -9 in ${stepId} ${when}`, () => {
        const workspace = createWorkspace({ count: 2, parallelism: 2 });
        const recipe: TestRecipeConfig = { effectsFile: workspace.effectsFile, killAt: { stepId, when, markerFile: path.join(workspace.dir, 'killed') } };
        const killed = runCliSync(['apply', workspace.planFile], recipe);
        expect(killed.signal).to.equal('SIGKILL');
        // The state written up to the kill loads, and shows the killed step as running.
        expect(readState(workspace.stateDir)!.state.steps[stepId]?.status).to.equal('running');
        const status = runCliSync(['status', workspace.planFile, '-o', 'json'], recipe);
        expect(status.code, status.stderr).to.equal(0);
        expect(runCliSync(['unlock', workspace.planFile], recipe).stdout).to.include('cleared the lock of pid');
        const resumed = runCliSync(['apply', workspace.planFile], recipe);
        expect(resumed.code, resumed.stderr).to.equal(0);
        expectAllDoneOnce(workspace, ['n0', 'n1']);
      });
    }
  }

  it('resumes past a torn journal line', () => {
    const workspace = createWorkspace({ count: 2, parallelism: 1 });
    const recipe: TestRecipeConfig = { effectsFile: workspace.effectsFile, killAt: { stepId: 'n1/release', when: 'after-effect', markerFile: path.join(workspace.dir, 'killed') } };
    expect(runCliSync(['apply', workspace.planFile], recipe).signal).to.equal('SIGKILL');
    // What a kill in the middle of an append leaves behind.
    const journal = readdirSync(workspace.stateDir).find((name) => name.startsWith('journal-'))!;
    appendFileSync(path.join(workspace.stateDir, journal), '{"type":"step-succeeded","id":"n1/rel');
    expect(runCliSync(['unlock', workspace.planFile], recipe).code).to.equal(0);
    const resumed = runCliSync(['apply', workspace.planFile], recipe);
    expect(resumed.code, resumed.stderr).to.equal(0);
    expectAllDoneOnce(workspace, ['n0', 'n1']);
  });

  it('resumes after kill -9 at many moments', async () => {
    const workspace = createWorkspace({ count: 6, parallelism: 3 });
    const recipe: TestRecipeConfig = { effectsFile: workspace.effectsFile, delayMs: 3 };
    let kills = 0;
    for (let attempt = 0; attempt < 40; attempt++) {
      const before = readEffects(workspace.effectsFile).length;
      const { child, done } = startCli(['apply', workspace.planFile], recipe);
      let exited = false;
      void done.then(() => (exited = true));
      // Kill once this run has made progress, at a varying moment after it.
      await waitFor(() => exited || readEffects(workspace.effectsFile).length > before, 'progress');
      await new Promise((resolve) => setTimeout(resolve, attempt % 7));
      child.kill('SIGKILL');
      const result = await done;
      if (result.signal === 'SIGKILL') {
        kills++;
        expect(runCliSync(['unlock', workspace.planFile], recipe).code).to.equal(0);
        continue;
      }
      expect(result.code, result.stderr).to.equal(0);
      break;
    }
    expect(kills).to.be.greaterThan(2);
    const final = runCliSync(['apply', workspace.planFile], recipe);
    expect(final.code, final.stderr).to.equal(0);
    expectAllDoneOnce(workspace, ['n0', 'n1', 'n2', 'n3', 'n4', 'n5']);
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`exits 130 on ${signal} and resumes`, async () => {
      const workspace = createWorkspace({ count: 3, parallelism: 1 });
      const startedFile = path.join(workspace.dir, 'started');
      const recipe: TestRecipeConfig = { effectsFile: workspace.effectsFile, delayMs: 150, startedFile };
      const { child, done } = startCli(['apply', workspace.planFile], recipe);
      await waitFor(() => existsSync(startedFile), 'the first step');
      child.kill(signal);
      const result = await done;
      expect(result.code, result.stderr).to.equal(130);
      expect(result.stderr).to.include(`${signal} received`);
      expect(result.stdout).to.include('interrupted');
      // the running step finished and was recorded; nothing else started
      expect(readEffects(workspace.effectsFile)).to.deep.equal(['n0/prepare']);
      const state = readState(workspace.stateDir)!.state;
      expect(state.steps['n0/prepare']!.status).to.equal('succeeded');
      expect(state.runs[0]!.outcome).to.equal('interrupted');
      expect(existsSync(path.join(workspace.stateDir, 'lock'))).to.equal(false);
      const resumed = runCliSync(['apply', workspace.planFile], { ...recipe, delayMs: 0 });
      expect(resumed.code, resumed.stderr).to.equal(0);
      expectAllDoneOnce(workspace, ['n0', 'n1', 'n2']);
    });
  }
});
