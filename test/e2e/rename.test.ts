// End-to-end renames on a real test cluster: a real API server and controller-manager, hosts
// with sshd and the real kubelet code, reached over SSH exactly as a fleet would be.
import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CoreV1Api, CertificatesV1Api, type V1Node } from '@kubernetes/client-node';
import { startCluster, type Cluster as TestCluster } from '../cluster/harness.js';
import {
  adminConfig,
  applyAndKillWhen,
  getNode,
  isReady,
  leastPrivilegeKubeconfig,
  onHost,
  runCli,
  writePlan,
  type PlanEntry,
} from './support.js';

const PREVIOUS = 'kube-node-rename.io/previous-name';

interface Decoration {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  taint: { key: string; value: string; effect: string };
}

function decorationFor(name: string): Decoration {
  return {
    labels: { team: `team-${name}`, 'topology.kubernetes.io/zone': 'rack-7', 'node-role.kubernetes.io/worker': '' },
    annotations: { 'example.com/asset-tag': `asset-${name}` },
    taint: { key: 'example.com/dedicated', value: name, effect: 'NoSchedule' },
  };
}

async function decorate(kubeconfig: string, name: string): Promise<void> {
  const core = adminConfig(kubeconfig).makeApiClient(CoreV1Api);
  const decoration = decorationFor(name);
  const node = await core.readNode({ name });
  await core.replaceNode({
    name,
    body: {
      ...node,
      metadata: { ...node.metadata, labels: { ...node.metadata?.labels, ...decoration.labels }, annotations: { ...node.metadata?.annotations, ...decoration.annotations } },
      spec: { ...node.spec, taints: [...(node.spec?.taints ?? []), decoration.taint] },
    },
  });
}

function expectCarried(node: V1Node | undefined, from: string): void {
  const decoration = decorationFor(from);
  expect(node, `new Node for ${from}`).to.not.equal(undefined);
  expect(isReady(node), `${node?.metadata?.name} Ready`).to.equal(true);
  for (const [key, value] of Object.entries(decoration.labels)) {
    expect(node!.metadata?.labels?.[key], `label ${key} on ${node!.metadata?.name}`).to.equal(value);
  }
  expect(node!.metadata?.labels?.['kubernetes.io/hostname']).to.equal(node!.metadata?.name);
  expect(node!.metadata?.annotations?.['example.com/asset-tag']).to.equal(`asset-${from}`);
  expect(node!.metadata?.annotations?.[PREVIOUS]).to.equal(from);
  const taint = node!.spec?.taints?.find((t) => t.key === decoration.taint.key);
  expect(taint, `taint on ${node!.metadata?.name}`).to.deep.include({ value: from, effect: 'NoSchedule' });
}

async function expectHostRenamed(cluster: TestCluster, host: string, to: string): Promise<void> {
  const flags = await onHost(cluster.sshConfig, host, 'cat /var/lib/kubelet/kubeadm-flags.env');
  expect(flags).to.include(`--hostname-override=${to}`);
  const subject = await onHost(cluster.sshConfig, host, 'openssl x509 -noout -subject -in /var/lib/kubelet/pki/kubelet-client-current.pem');
  expect(subject).to.include(`CN = system:node:${to}`);
  const bootstrap = await onHost(cluster.sshConfig, host, 'test -e /etc/kubernetes/bootstrap-kubelet.conf && echo present || echo absent');
  expect(bootstrap.trim(), 'bootstrap kubeconfig removed as kubeadm leaves it').to.equal('absent');
}

async function bootstrapTokens(kubeconfig: string): Promise<string[]> {
  const core = adminConfig(kubeconfig).makeApiClient(CoreV1Api);
  const secrets = await core.listNamespacedSecret({ namespace: 'kube-system', labelSelector: 'app.kubernetes.io/managed-by=kube-node-rename' });
  return secrets.items.map((s) => s.metadata?.name ?? '');
}

async function csrNames(kubeconfig: string): Promise<string[]> {
  const certificates = adminConfig(kubeconfig).makeApiClient(CertificatesV1Api);
  return (await certificates.listCertificateSigningRequest()).items.map((c) => c.metadata?.name ?? '').sort();
}

describe('rename on a test cluster', function () {
  this.timeout(30 * 60_000);
  let cluster: TestCluster;
  let work: string;
  let toolKubeconfig: string;

  before(async function () {
    this.timeout(15 * 60_000);
    cluster = await startCluster({ id: 'e2e', hosts: 7 });
    work = mkdtempSync(path.join(tmpdir(), 'knr-e2e-'));
    toolKubeconfig = await leastPrivilegeKubeconfig(cluster.kubeconfig, path.join(work, 'tool.kubeconfig'));
    for (const host of cluster.hosts) await decorate(cluster.kubeconfig, host.name);
  });

  after(async function () {
    this.timeout(5 * 60_000);
    await cluster?.stop();
  });

  function apply(plan: string, ...extra: string[]) {
    return runCli(['apply', plan, '--kubeconfig', toolKubeconfig, ...extra]);
  }

  const fleet: PlanEntry[] = [
    { from: 'node-1', to: 'node-1.e2e.example.com', host: 'node-1' },
    { from: 'node-2', to: 'node-2.e2e.example.com', host: 'node-2' },
    { from: 'node-3', to: 'node-3.e2e.example.com', host: 'node-3' },
  ];

  it('renames three nodes, canary first', async () => {
    const plan = writePlan(work, { name: 'fleet', nodes: fleet, sshConfig: cluster.sshConfig, parallelism: 2, canary: 1 });
    const result = await apply(plan);
    expect(result.code, result.stderr).to.equal(0);

    for (const entry of fleet) {
      expectCarried(await getNode(cluster.kubeconfig, entry.to), entry.from);
      expect(await getNode(cluster.kubeconfig, entry.from), `old Node ${entry.from}`).to.equal(undefined);
      await expectHostRenamed(cluster, entry.host!, entry.to);
    }
    expect(await bootstrapTokens(cluster.kubeconfig)).to.deep.equal([]);

    const status = JSON.parse((await runCli(['status', plan, '-o', 'json'])).stdout) as {
      nodes: { node: string; state: string; steps: { step: string; startedAt?: string; finishedAt?: string }[] }[];
    };
    expect(status.nodes.map((n) => n.state)).to.deep.equal(['succeeded', 'succeeded', 'succeeded']);
    const canaryDone = Date.parse(status.nodes[0]!.steps.at(-1)!.finishedAt!);
    for (const other of status.nodes.slice(1)) {
      expect(Date.parse(other.steps[0]!.startedAt!), `${other.node} starts after the canary`).to.be.at.least(canaryDone);
    }
  });

  it('changes nothing when the plan runs again', async () => {
    const plan = path.join(work, 'fleet.yaml');
    const before = await Promise.all(fleet.map((e) => getNode(cluster.kubeconfig, e.to)));
    const csrsBefore = await csrNames(cluster.kubeconfig);

    const resumed = await apply(plan);
    expect(resumed.code, resumed.stderr).to.equal(0);
    // A new state folder forces every step to check the cluster and hosts again.
    const fresh = await apply(plan, '--state-dir', path.join(work, 'fresh-state'));
    expect(fresh.code, fresh.stderr).to.equal(0);
    expect(fresh.stderr).to.not.match(/result=done|"result":"done"/);

    const after = await Promise.all(fleet.map((e) => getNode(cluster.kubeconfig, e.to)));
    for (let i = 0; i < fleet.length; i++) {
      expect(after[i]!.metadata?.uid).to.equal(before[i]!.metadata?.uid);
      expect(after[i]!.metadata?.labels).to.deep.equal(before[i]!.metadata?.labels);
      expect(after[i]!.metadata?.annotations?.[PREVIOUS]).to.equal(fleet[i]!.from);
      expect(after[i]!.spec?.taints).to.deep.equal(before[i]!.spec?.taints);
    }
    expect(await csrNames(cluster.kubeconfig)).to.deep.equal(csrsBefore);
    expect(await bootstrapTokens(cluster.kubeconfig)).to.deep.equal([]);
  });

  it('renames a chain in order', async () => {
    // node-4 takes node-5's name while node-5 moves on: node-5 must be gone first.
    const nodes: PlanEntry[] = [
      { from: 'node-4', to: 'node-5', host: 'node-4' },
      { from: 'node-5', to: 'node-5.e2e.example.com', host: 'node-5' },
    ];
    const address4 = cluster.hosts.find((h) => h.name === 'node-4')!.address;
    const address5 = cluster.hosts.find((h) => h.name === 'node-5')!.address;
    const plan = writePlan(work, { name: 'chain', nodes, sshConfig: cluster.sshConfig, parallelism: 2 });
    const result = await apply(plan);
    expect(result.code, result.stderr).to.equal(0);

    const moved = await getNode(cluster.kubeconfig, 'node-5.e2e.example.com');
    expectCarried(moved, 'node-5');
    expect(moved!.status?.addresses?.find((a) => a.type === 'InternalIP')?.address).to.equal(address5);
    const reused = await getNode(cluster.kubeconfig, 'node-5');
    expectCarried(reused, 'node-4');
    expect(reused!.status?.addresses?.find((a) => a.type === 'InternalIP')?.address).to.equal(address4);
    expect(await getNode(cluster.kubeconfig, 'node-4')).to.equal(undefined);
    await expectHostRenamed(cluster, 'node-4', 'node-5');
  });

  it('resumes after kill -9 at each point of a rename', async () => {
    const nodes: PlanEntry[] = [{ from: 'node-6', to: 'node-6.e2e.example.com', host: 'node-6' }];
    const plan = writePlan(work, { name: 'killed', nodes, sshConfig: cluster.sshConfig });
    const args = [plan, '--kubeconfig', toolKubeconfig];
    const points: { name: string; match: (line: Record<string, unknown>) => boolean }[] = [
      { name: 'before the kubelet restart', match: (l) => l.step === 'configure-kubelet' && l.message === 'step succeeded' },
      { name: 'during the kubelet restart', match: (l) => l.step === 'restart-kubelet' && l.message === 'step started' },
      { name: 'after the kubelet restart', match: (l) => l.step === 'approve-csr' && l.message === 'step started' },
      { name: 'between carrying labels and deleting the old Node', match: (l) => l.step === 'carry-metadata' && l.message === 'step succeeded' },
    ];
    for (const [index, point] of points.entries()) {
      const line = await applyAndKillWhen(args, point.match);
      expect(line.step, point.name).to.be.a('string');
      if (index === 0) {
        // The killed run left its lock; apply reports it instead of running beside a ghost.
        const refused = await runCli(['apply', ...args]);
        expect(refused.code).to.equal(2);
        expect(refused.stderr).to.include('stale lock');
      }
      const unlocked = await runCli(['unlock', plan]);
      expect(unlocked.code, `unlock after the kill ${point.name}: ${unlocked.stderr}`).to.equal(0);
    }
    const finished = await runCli(['apply', ...args]);
    expect(finished.code, finished.stderr).to.equal(0);

    expectCarried(await getNode(cluster.kubeconfig, 'node-6.e2e.example.com'), 'node-6');
    expect(await getNode(cluster.kubeconfig, 'node-6')).to.equal(undefined);
    await expectHostRenamed(cluster, 'node-6', 'node-6.e2e.example.com');
    expect(await bootstrapTokens(cluster.kubeconfig)).to.deep.equal([]);
    // Every old credential is kept in the backup folder, none deleted.
    const backup = await onHost(cluster.sshConfig, 'node-6', 'ls /var/lib/kube-node-rename/backup/killed/node-6/credentials');
    expect(backup).to.include('kubelet.conf').and.include('kubelet-client-current.pem');
  });

  it('fails an unreachable host and finishes the others', async () => {
    const unreachable = cluster.hosts.find((h) => h.name === 'node-7')!;
    const bogus = unreachable.address.replace(/\.\d+$/, '.250');
    const nodes: PlanEntry[] = [
      { from: 'node-7', to: 'node-7.e2e.example.com', host: bogus },
      { from: 'node-1.e2e.example.com', to: 'node-1.again.example.com', host: 'node-1' },
    ];
    const plan = writePlan(work, { name: 'unreachable', nodes, sshConfig: cluster.sshConfig, parallelism: 2, maxFailures: 1 });
    const result = await apply(plan);
    expect(result.code).to.equal(1);
    expect(result.stderr).to.include(`cannot reach host ${bogus} over SSH`);
    expect(isReady(await getNode(cluster.kubeconfig, 'node-1.again.example.com'))).to.equal(true);
    expect(isReady(await getNode(cluster.kubeconfig, 'node-7'))).to.equal(true);
    expect(await getNode(cluster.kubeconfig, 'node-7.e2e.example.com')).to.equal(undefined);
  });
});
