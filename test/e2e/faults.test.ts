// Fault matrix, part two. The faults: the API server restarted during a run; SSH to a host cut
// during a step and from the start; the kubelet failing to come up under the new name (bad
// bootstrap token, CSR denied, CSR never approved), followed by rollback; the state directory
// read-only or full at a checkpoint; and two runs of apply on the same state. Each test asserts
// the end state of the cluster and of the host files, and fills one row of docs/reliability.md.
import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CertificatesV1Api, CoreV1Api, RbacAuthorizationV1Api, type V1ClusterRoleBinding } from '@kubernetes/client-node';
import { startCluster, type Cluster } from '../cluster/harness.js';
import {
  applyAndKillAt,
  applyWithHooks,
  decorate,
  expectHostUntouched,
  expectNotRenamed,
  expectRenamed,
  failureText,
  fillUp,
  HostNames,
  isStepLine,
  managedTokens,
  mountTmpfs,
  remount,
  renamedChecks,
  restartApiServer,
  startSshd,
  stopSshd,
  unmountIfMounted,
  type ApplyOutcome,
  type LogLine,
} from './fault-helpers.js';
import { FaultMatrix, type FaultRow } from './reliability-report.js';
import { adminConfig, leastPrivilegeKubeconfig, onHost, runCli, writePlan, type PlanEntry } from './support.js';

const AUTO_APPROVE_BINDING = 'kubeadm:node-autoapprove-bootstrap';
const rolledBackChecks = 'old Node Ready with labels, annotation, taint, schedulable; new Node absent; no token Secret; kubeadm-flags.env, rotateCertificates, client certificate CN';

const errorText = failureText;
/** A line of a JavaScript stack trace, which the CLI must not print for an environment error. */
const STACK_TRACE = /^\s+at .+\(.+:\d+:\d+\)$/m;

describe('fault matrix: control plane, SSH, kubelet, state directory and lock', function () {
  this.timeout(30 * 60_000);
  const matrix = new FaultMatrix('faults');
  const names = new HostNames();
  let cluster: Cluster;
  let work: string;
  let toolKubeconfig: string;
  let row: FaultRow | undefined;

  before(async function () {
    this.timeout(10 * 60_000);
    cluster = await startCluster({ id: 'faults', hosts: 6 });
    work = mkdtempSync(path.join(tmpdir(), 'knr-faults-'));
    toolKubeconfig = await leastPrivilegeKubeconfig(cluster.kubeconfig, path.join(work, 'tool.kubeconfig'));
    for (const host of cluster.hosts) await decorate(cluster.kubeconfig, host.name);
  });

  afterEach(function () {
    if (row && this.currentTest?.state === 'failed') matrix.fail(row, this.currentTest.err);
    row = undefined;
  });

  after(async function () {
    this.timeout(5 * 60_000);
    matrix.write();
    // Each test restarts the sshd it stopped. This is the fallback for a test that failed half way.
    for (const host of cluster?.hosts ?? []) await startSshd(cluster, host.name).catch(() => undefined);
    await cluster?.stop();
  });

  interface Renames {
    plan: string;
    planName: string;
    entries: (PlanEntry & { host: string })[];
    args: string[];
  }

  /** Writes a plan that renames each host from its current name to its next one. */
  function renamePlan(planName: string, hosts: string[], options: { rename?: Record<string, unknown>; strategy?: Record<string, unknown>; stateDir?: string } = {}): Renames {
    const entries = hosts.map((host) => ({ from: names.name(host), to: names.next(host), host }));
    const strategy = { parallelism: hosts.length, canary: 0, maxFailures: hosts.length - 1, ...options.strategy };
    const plan = writePlan(work, {
      name: planName,
      nodes: entries,
      sshConfig: cluster.sshConfig,
      rename: { readyTimeout: '2m', csrTimeout: '2m', ...options.rename },
      extraSpec: { strategy },
    });
    const args = [plan, '--kubeconfig', toolKubeconfig, ...(options.stateDir ? ['--state-dir', options.stateDir] : [])];
    return { plan, planName, entries, args };
  }

  async function expectAllRenamed(renames: Renames): Promise<void> {
    for (const entry of renames.entries) {
      await expectRenamed(cluster, { host: entry.host, plan: renames.planName, from: entry.from, to: entry.to });
      names.renamed(entry.host, entry.to);
    }
  }

  async function resume(renames: Renames, what: string): Promise<void> {
    const resumed = await runCli(['apply', ...renames.args]);
    expect(resumed.code, `apply after ${what}: ${resumed.stderr}\n${resumed.stdout}`).to.equal(0);
  }

  // -------------------------------------------------------------------------------------------
  // The API server

  for (const step of ['restart-kubelet', 'carry-metadata']) {
    it(`survives an API server restart at ${step}`, async () => {
      row = matrix.start('kube-apiserver stopped for 5 s and started again', `"step started" of ${step}`);
      const renames = renamePlan(`api-restart-${step}`, ['node-1']);
      let restarted = false;
      const run = await applyWithHooks(renames.args, {
        async onLine(line) {
          if (restarted || !isStepLine(line, step, 'step started')) return;
          restarted = true;
          await restartApiServer(cluster, 5000);
        },
      });
      expect(restarted, `the run reached ${step}`).to.equal(true);
      if (run.code === 0) {
        row.outcome = 'the run completed: steps retried the transient errors';
      } else {
        row.outcome = `the run ended with exit code ${run.code}; the resume completed`;
        await resume(renames, 'the API server restart');
      }
      await expectAllRenamed(renames);
      row.checked = renamedChecks;
      row.lost = 'nothing';
    });
  }

  // -------------------------------------------------------------------------------------------
  // SSH

  it('fails a node whose SSH is cut mid-step', async () => {
    row = matrix.start('sshd of the host stopped until the run ended', '"step started" of configure-kubelet');
    const renames = renamePlan('ssh-cut', ['node-2', 'node-3']);
    const [cut, other] = renames.entries as [Renames['entries'][0], Renames['entries'][0]];
    let stopped = false;
    try {
      const run = await applyWithHooks(renames.args, {
        async onLine(line) {
          if (stopped || line.node !== cut.from || !isStepLine(line, 'configure-kubelet', 'step started')) return;
          stopped = true;
          await stopSshd(cluster, cut.host);
        },
      });
      expect(stopped, 'the run reached configure-kubelet').to.equal(true);
      expect(run.code, errorText(run)).to.equal(1);
      expect(run.stdout, 'run summary').to.include(`${cut.from}: failed at configure-kubelet`);
      expect(errorText(run), 'the failure names the host and SSH').to.match(/cannot reach host node-2 over SSH|node-2.*ssh|ssh.*node-2/i);
      await expectRenamed(cluster, { host: other.host, plan: renames.planName, from: other.from, to: other.to });

      await startSshd(cluster, cut.host);
      await resume(renames, 'sshd came back');
      await expectAllRenamed(renames);
    } finally {
      await startSshd(cluster, cut.host);
    }
    row.outcome = `${cut.from} failed with "cannot reach host" and ${other.from} finished; after sshd came back the resume completed`;
    row.checked = `${renamedChecks}, for both nodes`;
    row.lost = 'nothing';
  });

  it('fails a node unreachable from the start', async () => {
    row = matrix.start('sshd of the host stopped before the run', 'before preflight-host');
    const renames = renamePlan('ssh-down', ['node-3', 'node-2']);
    const [down, other] = renames.entries as [Renames['entries'][0], Renames['entries'][0]];
    await stopSshd(cluster, down.host);
    try {
      const run = await applyWithHooks(renames.args);
      expect(run.code, errorText(run)).to.equal(1);
      expect(run.stdout, 'run summary').to.include(`${down.from}: failed at preflight-host`);
      expect(errorText(run), 'the failure names the host and SSH').to.include(`cannot reach host ${down.host} over SSH`);
      await expectRenamed(cluster, { host: other.host, plan: renames.planName, from: other.from, to: other.to });
      expect(await managedTokens(cluster.kubeconfig, down.from), `token Secrets for ${down.from}`).to.deep.equal([]);

      await startSshd(cluster, down.host);
      await resume(renames, 'sshd came back');
      await expectAllRenamed(renames);
    } finally {
      await startSshd(cluster, down.host);
    }
    row.outcome = `${down.from} failed at preflight-host with "cannot reach host" and ${other.from} finished; the resume completed`;
    row.checked = `${renamedChecks}, for both nodes`;
    row.lost = 'nothing';
  });

  // -------------------------------------------------------------------------------------------
  // The kubelet under its new name

  async function withoutAutoApproval<T>(body: () => Promise<T>): Promise<T> {
    const rbac = adminConfig(cluster.kubeconfig).makeApiClient(RbacAuthorizationV1Api);
    const binding: V1ClusterRoleBinding = await rbac.readClusterRoleBinding({ name: AUTO_APPROVE_BINDING });
    await rbac.deleteClusterRoleBinding({ name: AUTO_APPROVE_BINDING });
    try {
      return await body();
    } finally {
      await rbac.createClusterRoleBinding({ body: { ...binding, metadata: { name: AUTO_APPROVE_BINDING, labels: binding.metadata?.labels, annotations: binding.metadata?.annotations } } });
    }
  }

  async function rollback(renames: Renames, node: string): Promise<void> {
    const result = await runCli(['rollback', renames.plan, '--node', node, '--kubeconfig', toolKubeconfig]);
    expect(result.code, `rollback ${renames.planName} --node ${node}: ${result.stderr}\n${result.stdout}`).to.equal(0);
  }

  it('fails on a deleted bootstrap token and rolls back', async () => {
    row = matrix.start('bootstrap token Secret deleted', '"step succeeded" of bootstrap-credentials');
    const renames = renamePlan('bad-token', ['node-4'], { rename: { csrTimeout: '40s' } });
    const entry = renames.entries[0]!;
    const core = adminConfig(cluster.kubeconfig).makeApiClient(CoreV1Api);
    let deleted: string[] = [];
    const run = await applyWithHooks(renames.args, {
      async onLine(line) {
        if (deleted.length > 0 || !isStepLine(line, 'bootstrap-credentials', 'step succeeded')) return;
        deleted = await managedTokens(cluster.kubeconfig, entry.from);
        for (const name of deleted) await core.deleteNamespacedSecret({ name, namespace: 'kube-system' });
      },
    });
    expect(deleted, 'token Secrets deleted by the test').to.have.length(1);
    expect(run.code, errorText(run)).to.equal(1);
    expect(run.stdout, 'run summary').to.match(new RegExp(`${entry.from}: failed at (approve-csr|wait-ready)`));
    expect(run.stdout, 'the failure names the missing certificate').to.include(`system:node:${entry.to}`);
    row.outcome = `failed at ${/failed at (\S+)/.exec(run.stdout)?.[1] ?? '?'} after the CSR timeout (40 s); \`rollback --node\` restored the node`;

    await rollback(renames, entry.from);
    await expectNotRenamed(cluster, entry.host, entry.from, entry.to);
    row.checked = rolledBackChecks;
    row.lost = 'nothing';
  });

  it('fails on a denied CSR and rolls back', async () => {
    row = matrix.start('the kubelet\'s CSR denied by an admin (csrApproval: controller, auto-approval binding removed)', 'the CSR for the new name, during approve-csr');
    const renames = renamePlan('csr-denied', ['node-5'], { rename: { csrApproval: 'controller', csrTimeout: '90s' } });
    const entry = renames.entries[0]!;
    const certificates = adminConfig(cluster.kubeconfig).makeApiClient(CertificatesV1Api);
    let denied: string | undefined;
    const run = await withoutAutoApproval(() =>
      applyWithHooks(renames.args, {
        async onLine(line) {
          if (denied || !isStepLine(line, 'approve-csr', 'step started')) return;
          denied = await denyKubeletCsr(certificates, 60_000);
        },
      }),
    );
    expect(denied, 'the CSR denied by the test').to.be.a('string');
    expect(run.code, errorText(run)).to.equal(1);
    expect(run.stdout, 'run summary').to.include(`${entry.from}: failed at approve-csr`);
    expect(run.stdout, 'the failure names the denial').to.match(/denied/i);
    row.outcome = `failed at approve-csr naming the denied CSR; \`rollback --node\` restored the node`;

    await rollback(renames, entry.from);
    await expectNotRenamed(cluster, entry.host, entry.from, entry.to);
    row.checked = rolledBackChecks;
    row.lost = 'nothing';
  });

  it('times out on a CSR never approved and rolls back by itself', async () => {
    row = matrix.start('the kubelet\'s CSR never approved (csrApproval: controller, auto-approval binding removed)', 'the whole approve-csr step');
    const renames = renamePlan('csr-never', ['node-6'], { rename: { csrApproval: 'controller', csrTimeout: '30s' }, strategy: { onFailure: 'rollback' } });
    const entry = renames.entries[0]!;
    const run = await withoutAutoApproval(() => applyWithHooks(renames.args));
    expect(run.code, errorText(run)).to.equal(1);
    expect(run.stdout, 'run summary').to.include(`${entry.from}: failed at approve-csr`);
    expect(run.stdout, 'the failure names the timeout').to.include(`no client certificate for system:node:${entry.to} was issued within 30 s`);
    row.outcome = 'failed at approve-csr after 30 s; onFailure: rollback restored the node in the same run';

    await expectNotRenamed(cluster, entry.host, entry.from, entry.to);
    row.checked = rolledBackChecks;
    row.lost = 'nothing';
  });

  // -------------------------------------------------------------------------------------------
  // The state directory

  /**
   * Asserts that every step that reported success after the fault is recorded as succeeded in
   * the state, read with `status -o json`: the run did not act without a record.
   */
  async function expectRecorded(renames: Renames, stateDir: string, finished: string[]): Promise<void> {
    const status = await runCli(['status', renames.plan, '--state-dir', stateDir, '-o', 'json']);
    expect(status.code, `status: ${status.stderr}`).to.equal(0);
    const report = JSON.parse(status.stdout) as { nodes: { steps: { step: string; status: string }[] }[] };
    const recorded = new Map(report.nodes[0]!.steps.map((step) => [step.step, step.status]));
    for (const step of finished) expect(recorded.get(step), `state record of ${step}, which reported success after the fault`).to.equal('succeeded');
  }

  it('stops when the state directory is read-only', async () => {
    // A file system with files open for writing cannot be remounted read-only (EBUSY), so the
    // run is killed at the checkpoint, the directory turns read-only, and the resume meets it.
    row = matrix.start('state directory remounted read-only while the run was stopped', '"step succeeded" of configure-kubelet (SIGKILL, unlock, remount read-only, apply)');
    const stateDir = path.join(work, 'state-ro');
    await mountTmpfs(stateDir, '4m');
    try {
      const renames = renamePlan('state-ro', ['node-1'], { stateDir });
      const entry = renames.entries[0]!;
      await applyAndKillAt(renames.args, { label: 'configure-kubelet succeeded', step: 'configure-kubelet', at: { kind: 'line', message: 'step succeeded' } });
      const unlocked = await runCli(['unlock', renames.plan, '--state-dir', stateDir]);
      expect(unlocked.code, `unlock: ${unlocked.stderr}`).to.equal(0);
      await remount(stateDir, 'ro');

      const run = await applyWithHooks(renames.args);
      const started = run.lines.filter((line) => line.message === 'step started').map((line) => String(line.step));
      row.outcome = `exit code ${run.code}, first error "${firstError(run)}", steps started: ${started.join(', ') || 'none'}`;
      expect(run.code, 'exit code of the run on a read-only state directory').to.not.equal(0);
      expect(errorText(run), 'the error names the read-only file system').to.match(/read-only|EROFS/i);
      expect(started, 'steps started without a record').to.deep.equal([]);
      await expectHostUntouched(cluster, entry.host, entry.from);
      row.outcome = `stopped (exit code ${run.code}) with "${firstError(run)}" before any step; the host kept its credentials`;
      const stackShown = STACK_TRACE.test(errorText(run));
      if (stackShown) row.outcome += '; the CLI printed a stack trace';

      await remount(stateDir, 'rw');
      await runCli(['unlock', renames.plan, '--state-dir', stateDir]);
      await resume(renames, 'the state directory became writable');
      await expectAllRenamed(renames);
      row.outcome += '; after remounting read-write, apply completed';
      row.checked = `no step started on the read-only state; kubelet.conf and client certificate untouched; then ${renamedChecks}`;
      row.lost = 'nothing';
      expect(stackShown, `stack trace printed for a read-only state directory:\n${errorText(run)}`).to.equal(false);
    } finally {
      await unmountIfMounted(stateDir);
    }
  });

  it('stops when the state directory is full', async () => {
    row = matrix.start('state directory on a full tmpfs', '"step succeeded" of snapshot-node');
    const stateDir = path.join(work, 'state-full');
    await mountTmpfs(stateDir, '2m');
    try {
      const renames = renamePlan('state-full', ['node-2'], { stateDir });
      let filler: string | undefined;
      const after: LogLine[] = [];
      const run = await applyWithHooks(renames.args, {
        async onLine(line) {
          if (filler) after.push(line);
          else if (isStepLine(line, 'snapshot-node', 'step succeeded')) filler = await fillUp(stateDir);
        },
      });
      expect(filler, 'the run reached the checkpoint').to.be.a('string');
      const finished = after.filter((line) => line.message === 'step succeeded').map((line) => String(line.step));
      row.outcome = `exit code ${run.code}, first error "${firstError(run)}", steps finished after the fault: ${finished.join(', ') || 'none'}`;
      expect(run.code, 'exit code of the run whose disk filled up').to.not.equal(0);
      expect(errorText(run), 'the error names the full disk').to.match(/no space|ENOSPC/i);
      // A step may still finish when its journal line fits in the journal's last tmpfs page.
      await expectRecorded(renames, stateDir, finished);
      row.outcome = `stopped (exit code ${run.code}) with "${firstError(run)}"; steps finished after the fault, each recorded: ${finished.join(', ') || 'none'}`;
      const stackShown = STACK_TRACE.test(errorText(run));
      if (stackShown) row.outcome += '; the CLI printed a stack trace';

      await rm(filler!);
      await runCli(['unlock', renames.plan, '--state-dir', stateDir]);
      await resume(renames, 'space was freed');
      await expectAllRenamed(renames);
      row.outcome += '; after freeing space, unlock and apply completed';
      row.checked = `every step that finished after the fault is in the state (status -o json); then ${renamedChecks}`;
      row.lost = 'nothing';
      expect(stackShown, `stack trace printed for a full disk:\n${errorText(run)}`).to.equal(false);
    } finally {
      await unmountIfMounted(stateDir);
    }
  });

  // -------------------------------------------------------------------------------------------
  // The lock

  it('refuses a second apply on the same state and names the holder', async () => {
    row = matrix.start('a second apply on the same state', 'while the first runs preflight-cluster');
    const renames = renamePlan('two-runs', ['node-3']);
    let second: Awaited<ReturnType<typeof runCli>> | undefined;
    let holder: number | undefined;
    const first = await applyWithHooks(renames.args, {
      async onLine(line, child) {
        if (second || !isStepLine(line, 'preflight-cluster', 'step started')) return;
        holder = child.pid;
        second = await runCli(['apply', ...renames.args]);
      },
    });
    expect(second, 'the second run started').to.not.equal(undefined);
    expect(second!.code, `second apply: ${second!.stderr}`).to.equal(2);
    expect(second!.stderr, 'the refusal names the holder').to.include(`locked by pid ${holder}`);
    expect(first.code, errorText(first)).to.equal(0);
    await expectAllRenamed(renames);
    row.outcome = `the second run exited with 2: "${second!.stderr.trim().split('\n')[0]!.slice(0, 160)}"; the first completed`;
    row.checked = renamedChecks;
    row.lost = 'nothing';
  });
});

function firstError(run: ApplyOutcome): string {
  const line = run.lines.find((l) => l.level === 'error');
  const text = line ? String(line.error ?? line.message) : run.otherStderr.trim().split('\n')[0] ?? '';
  return text.replace(/\s+/g, ' ').slice(0, 300);
}

/** Waits for a pending kubelet client CSR sent with a bootstrap token and denies it as admin. */
async function denyKubeletCsr(certificates: CertificatesV1Api, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const list = await certificates.listCertificateSigningRequest();
    const pending = list.items.find(
      (csr) =>
        csr.spec.signerName === 'kubernetes.io/kube-apiserver-client-kubelet' &&
        csr.spec.username?.startsWith('system:bootstrap:') &&
        (csr.status?.conditions ?? []).length === 0,
    );
    if (pending) {
      const name = pending.metadata!.name!;
      await certificates.replaceCertificateSigningRequestApproval({
        name,
        body: {
          ...pending,
          status: { conditions: [{ type: 'Denied', status: 'True', reason: 'FaultMatrix', message: 'denied by the fault matrix test' }] },
        },
      });
      return name;
    }
    if (Date.now() > deadline) throw new Error(`no pending kubelet client CSR appeared within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
