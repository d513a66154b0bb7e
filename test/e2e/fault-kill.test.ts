// Fault matrix, part one: the tool killed with SIGKILL at every step boundary and inside every
// step of a rename, then unlocked and resumed. The kill points come from the DAG (`graph --format
// json`) and from a reference run that shows which log lines each step writes while it works and
// how long it takes. One host is renamed again and again (node-1 to node-1-v1 to node-1-v2 ...),
// and each rename carries several kill points, so the whole test stays within about ten minutes.
import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startCluster, type Cluster } from '../cluster/harness.js';
import {
  applyAndKillAt,
  applyWithHooks,
  decorate,
  expectRenamed,
  graphSteps,
  HostNames,
  renamedChecks,
  type KillPoint,
  type LogLine,
} from './fault-helpers.js';
import { FaultMatrix, type FaultRow } from './reliability-report.js';
import { leastPrivilegeKubeconfig, runCli, writePlan } from './support.js';

/** Renames that share the kill points; more renames means fewer kills per rename. */
const RENAMES = Number(process.env.KNR_FAULT_KILL_RENAMES ?? 6);
/** Steps shorter than this in the reference run get no delay point: the delay would land on a boundary. */
const MIN_MIDDLE_MS = 200;
const HOST = 'node-1';

/** Kill points of one node's chain: start, the step's own log lines or half its duration, end. */
function killPoints(steps: string[], reference: LogLine[]): KillPoint[] {
  const points: KillPoint[] = [];
  for (const step of steps) {
    points.push({ label: `${step} started`, step, at: { kind: 'line', message: 'step started' } });
    const own = reference.filter((line) => line.step === step && typeof line.message === 'string' && !String(line.message).startsWith('step '));
    for (const line of own) points.push({ label: `${step}: after "${String(line.message)}"`, step, at: { kind: 'line', message: String(line.message) } });
    const succeeded = reference.find((line) => line.step === step && line.message === 'step succeeded');
    const duration = typeof succeeded?.durationMs === 'number' ? succeeded.durationMs : 0;
    if (own.length === 0 && duration >= MIN_MIDDLE_MS) {
      const ms = Math.round(duration / 2);
      points.push({ label: `${step}: ${ms} ms in (half its reference duration)`, step, at: { kind: 'delay', ms } });
    }
    points.push({ label: `${step} succeeded`, step, at: { kind: 'line', message: 'step succeeded' } });
  }
  return points;
}

describe('fault matrix: SIGKILL at every point of a rename', function () {
  this.timeout(20 * 60_000);
  const matrix = new FaultMatrix('fault-kill');
  const names = new HostNames();
  let cluster: Cluster;
  let work: string;
  let toolKubeconfig: string;
  let points: KillPoint[] = [];

  before(async function () {
    this.timeout(10 * 60_000);
    cluster = await startCluster({ id: 'fault-kill', hosts: 1 });
    work = mkdtempSync(path.join(tmpdir(), 'knr-fault-kill-'));
    toolKubeconfig = await leastPrivilegeKubeconfig(cluster.kubeconfig, path.join(work, 'tool.kubeconfig'));
    await decorate(cluster.kubeconfig, HOST);
  });

  after(async function () {
    this.timeout(5 * 60_000);
    matrix.write();
    await cluster?.stop();
  });

  function planFor(name: string, from: string, to: string): string {
    return writePlan(work, { name, nodes: [{ from, to, host: HOST }], sshConfig: cluster.sshConfig, parallelism: 1 });
  }

  it('renames once without faults, as the reference', async () => {
    const from = names.name(HOST);
    const to = names.next(HOST);
    const plan = planFor('kill-reference', from, to);
    const steps = (await graphSteps(plan)).filter((s) => s.node === from).map((s) => s.step);
    expect(steps.length, 'steps in the DAG').to.be.greaterThan(5);

    const run = await applyWithHooks([plan, '--kubeconfig', toolKubeconfig]);
    expect(run.code, run.otherStderr).to.equal(0);
    names.renamed(HOST, to);
    await expectRenamed(cluster, { host: HOST, plan: 'kill-reference', from, to });

    points = killPoints(steps, run.lines);
    for (const step of steps) expect(points.filter((p) => p.step === step).length, `kill points of ${step}`).to.be.at.least(2);
  });

  for (let group = 0; group < RENAMES; group++) {
    it(`resumes after each kill, rename ${group + 1} of ${RENAMES}`, async function () {
      const mine = points.filter((_, index) => index % RENAMES === group);
      if (points.length === 0) this.skip();
      const from = names.name(HOST);
      const to = names.next(HOST);
      const planName = `kill-${group + 1}`;
      const plan = planFor(planName, from, to);
      const args = [plan, '--kubeconfig', toolKubeconfig];
      const rows: FaultRow[] = [];
      try {
        for (const point of mine) {
          const row = matrix.start('SIGKILL of apply', point.label);
          rows.push(row);
          const kill = await applyAndKillAt(args, point);
          row.injectedAt = kill.hit ? kill.killedAt : `${point.label}; killed at ${kill.killedAt}`;
          row.outcome = 'killed; unlock cleared the stale lock';
          const unlocked = await runCli(['unlock', plan]);
          expect(unlocked.code, `unlock after the kill at ${point.label}: ${unlocked.stderr}`).to.equal(0);
        }
        const finished = await runCli(['apply', ...args]);
        expect(finished.code, `apply after the last kill of ${planName}: ${finished.stderr}`).to.equal(0);
        names.renamed(HOST, to);
        await expectRenamed(cluster, { host: HOST, plan: planName, from, to });
        for (const row of rows) {
          row.outcome = `resumed (unlock, apply); ${from} renamed to ${to}`;
          row.checked = renamedChecks;
          row.lost = 'nothing';
        }
      } catch (error) {
        for (const row of rows.filter((r) => r.lost !== 'nothing')) matrix.fail(row, error);
        throw error;
      }
    });
  }
});
