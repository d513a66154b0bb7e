import { expect } from 'chai';
import { mkdtempSync, readFileSync, symlinkSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REAL_CLI, runCliSync, startCli, waitFor } from '../fixtures/engine/child.js';
import { createWorkspace } from '../fixtures/engine/plan-builder.js';
import type { TestRecipeConfig } from '../fixtures/engine/test-recipe.js';

describe('command line', function () {
  this.timeout(30_000);

  it('validates a good plan', () => {
    const workspace = createWorkspace({ count: 2 });
    const result = runCliSync(['validate', workspace.planFile]);
    expect(result.code).to.equal(0);
    expect(result.stdout).to.include('valid RenamePlan test: 2 nodes');
  });

  it('exits 2 on a bad plan without a stack trace', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'knr-cli-'));
    const planFile = path.join(dir, 'bad.yaml');
    writeFileSync(planFile, 'apiVersion: kube-node-rename/v1alpha1\nkind: RenamePlan\nmetadata: { name: x }\nspec:\n  nodes:\n    - { from: a, to: B }\n    - { from: a, to: c }\n');
    const result = runCliSync(['validate', planFile]);
    expect(result.code).to.equal(2);
    expect(result.stderr).to.include(`${planFile}: 2 errors in the plan`);
    expect(result.stderr).to.include(`${planFile}:6:22: spec.nodes[0].to: must be a valid Kubernetes node name`);
    expect(result.stderr).to.include(`${planFile}:7:15: spec.nodes[1].from: "a" is already the current name of spec.nodes[0] (line 6)`);
    expect(result.stderr).to.not.match(/\n\s+at /);
  });

  it('exits 2 on a missing plan file', () => {
    const result = runCliSync(['validate', '/nonexistent/plan.yaml']);
    expect(result.code).to.equal(2);
    expect(result.stderr).to.include('/nonexistent/plan.yaml:1:1: (root): cannot read the plan: file not found');
  });

  it('exits 2 on an unknown option', () => {
    const result = runCliSync(['graph', 'plan.yaml', '--format', 'svg']);
    expect(result.code).to.equal(2);
    expect(result.stderr).to.include("argument 'svg' is invalid");
  });

  it('prints the graph as JSON', () => {
    const workspace = createWorkspace({ nodes: [['a', 'b'], ['b', 'c']] });
    const result = runCliSync(['graph', workspace.planFile, '--format', 'json']);
    expect(result.code).to.equal(0);
    const graph = JSON.parse(result.stdout) as { steps: { id: string; needs: string[] }[] };
    expect(graph.steps.find((step) => step.id === 'a/switch')!.needs).to.deep.equal(['a/release', 'b/release']);
  });

  it('exits 1 when a node fails', () => {
    const workspace = createWorkspace({ count: 2, parallelism: 1 });
    const result = runCliSync(['apply', workspace.planFile], { effectsFile: workspace.effectsFile, failing: ['n0/switch'] });
    expect(result.code).to.equal(1);
    expect(result.stdout).to.include('n0: failed at switch: n0/switch failed on purpose');
    expect(result.stdout).to.include('n1: not-started: failure budget exceeded');
  });

  it('exits 2 when services fail', () => {
    const workspace = createWorkspace({ count: 1 });
    const result = runCliSync(['apply', workspace.planFile], { effectsFile: workspace.effectsFile, servicesError: 'kubeconfig /nope not found' });
    expect(result.code).to.equal(2);
    expect(result.stderr).to.include("error: could not set up the test recipe's services: kubeconfig /nope not found; check --kubeconfig");
    expect(result.stderr).to.not.match(/\n\s+at /);
    expect(existsSync(path.join(workspace.stateDir, 'lock'))).to.equal(false);
  });

  it('prints status as a table and JSON', () => {
    const workspace = createWorkspace({ count: 2, parallelism: 1, maxFailures: 1 });
    const recipe: TestRecipeConfig = { effectsFile: workspace.effectsFile, failing: ['n0/switch'] };
    runCliSync(['apply', workspace.planFile], recipe);
    const table = runCliSync(['status', workspace.planFile], recipe);
    expect(table.code).to.equal(0);
    expect(table.stdout).to.match(/n0\s+m0\s+failed\s+2\/4\s+switch\s+n0\/switch failed on purpose/);
    expect(table.stdout).to.match(/n1\s+m1\s+succeeded\s+4\/4/);
    const json = JSON.parse(runCliSync(['status', workspace.planFile, '-o', 'json'], recipe).stdout) as { counts: Record<string, number>; nodes: { node: string; state: string }[] };
    expect(json.counts).to.include({ failed: 1, succeeded: 1 });
    expect(json.nodes.map((node) => node.state)).to.deep.equal(['failed', 'succeeded']);
  });

  it('dry-run prints steps and writes nothing', () => {
    const workspace = createWorkspace({ count: 2 });
    const result = runCliSync(['apply', workspace.planFile, '--dry-run'], { effectsFile: workspace.effectsFile });
    expect(result.code).to.equal(0);
    expect(result.stdout).to.include('1. n0/prepare: would record n0/prepare');
    expect(result.stdout).to.include('8. n1/verify: would record n1/verify');
    expect(existsSync(workspace.stateDir)).to.equal(false);
    expect(existsSync(workspace.effectsFile)).to.equal(false);
  });

  it('uses --state-dir', () => {
    const workspace = createWorkspace({ count: 1 });
    const stateDir = path.join(workspace.dir, 'elsewhere');
    const result = runCliSync(['apply', workspace.planFile, '--state-dir', stateDir, '--log-format', 'json'], { effectsFile: workspace.effectsFile });
    expect(result.code, result.stderr).to.equal(0);
    expect(existsSync(path.join(stateDir, 'state.json'))).to.equal(true);
    const line = JSON.parse(result.stderr.trim().split('\n')[0]!) as Record<string, unknown>;
    expect(line['message']).to.equal('run started');
    expect(readFileSync(path.join(stateDir, 'run.log'), 'utf8')).to.include('"message":"step succeeded"');
  });

  it('exits 2 while another run holds the lock', async () => {
    const workspace = createWorkspace({ count: 1 });
    const startedFile = path.join(workspace.dir, 'started');
    const recipe: TestRecipeConfig = { effectsFile: workspace.effectsFile, hanging: ['n0/prepare'], timeoutMs: 20_000, startedFile };
    const first = startCli(['apply', workspace.planFile], recipe);
    try {
      await waitFor(() => existsSync(startedFile), 'the first run');
      const second = runCliSync(['apply', workspace.planFile], recipe);
      expect(second.code).to.equal(2);
      expect(second.stderr).to.include(`the state is locked by pid ${first.child.pid}`);
      const unlock = runCliSync(['unlock', workspace.planFile], recipe);
      expect(unlock.code).to.equal(2);
      expect(unlock.stderr).to.include('still running on this host');
    } finally {
      first.child.kill('SIGINT');
      await waitFor(() => first.stderr().includes('SIGINT received'), 'the first SIGINT');
      first.child.kill('SIGINT');
    }
    const result = await first.done;
    expect(result.code).to.equal(130);
    expect(result.stderr).to.include('SIGINT received again: aborting running steps');
  });

  it('names itself kubectl node-rename as a plugin', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'knr-plugin-'));
    const plugin = path.join(dir, 'kubectl-node_rename');
    symlinkSync(REAL_CLI, plugin);
    const result = runCliSync(['--help'], undefined, plugin);
    expect(result.code).to.equal(0);
    expect(result.stdout).to.include('Usage: kubectl node-rename [options] [command]');
    expect(result.stdout).to.include('Exit codes:');
  });
});
