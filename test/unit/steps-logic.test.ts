import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import yaml from 'js-yaml';
import type { V1CertificateSigningRequest, V1Node } from '@kubernetes/client-node';
import { bootstrapTokenSecret, generateBootstrapToken, renderBootstrapKubeconfig } from '../../steps/bootstrap.js';
import { decodeCsrRequest, isForNode, kubeletCsrProblems, KUBELET_CLIENT_SIGNER } from '../../steps/csr.js';
import { computeCarryOver, snapshotNode } from '../../steps/node-metadata.js';
import { PREVIOUS_NAME_ANNOTATION } from '../../steps/services.js';

/** A real PKCS#10 request made by openssl, base64-encoded as the API returns spec.request. */
function makeRequest(subject: string, extraArgs: string[] = []): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'knr-csr-'));
  try {
    const pem = execFileSync(
      'openssl',
      ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-subj', subject, ...extraArgs],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    );
    return Buffer.from(pem).toString('base64');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface CsrOptions {
  subject?: string;
  extraArgs?: string[];
  signer?: string;
  usages?: string[];
  username?: string;
  groups?: string[];
}

function csr(options: CsrOptions = {}): V1CertificateSigningRequest {
  return {
    metadata: { name: 'csr-test' },
    spec: {
      request: makeRequest(options.subject ?? '/O=system:nodes/CN=system:node:new-1', options.extraArgs),
      signerName: options.signer ?? KUBELET_CLIENT_SIGNER,
      usages: options.usages ?? ['digital signature', 'client auth'],
      username: options.username ?? 'system:bootstrap:abc123',
      groups: options.groups ?? ['system:bootstrappers', 'system:bootstrappers:kubeadm:default-node-token', 'system:authenticated'],
    },
  };
}

describe('kubelet CSR checks', () => {
  it('decodes subject and SANs from a real request', () => {
    const withSan = csr({ extraArgs: ['-addext', 'subjectAltName=DNS:evil.example.com'] });
    expect(decodeCsrRequest(withSan.spec.request)).to.deep.equal({
      commonName: ['system:node:new-1'],
      organization: ['system:nodes'],
      hasSubjectAltNames: true,
    });
  });

  it('accepts what a bootstrapping kubelet sends', () => {
    expect(kubeletCsrProblems(csr(), 'new-1')).to.deep.equal([]);
    expect(kubeletCsrProblems(csr(), 'new-1', 'system:bootstrap:abc123')).to.deep.equal([]);
    expect(isForNode(csr(), 'new-1')).to.equal(true);
    expect(isForNode(csr(), 'new-2')).to.equal(false);
  });

  const cases: { name: string; options: CsrOptions; expectedRequester?: string; problem: string }[] = [
    { name: 'another node name', options: { subject: '/O=system:nodes/CN=system:node:other' }, problem: 'subject CN is ["system:node:other"], expected ["system:node:new-1"]' },
    { name: 'a wrong organization', options: { subject: '/O=system:masters/CN=system:node:new-1' }, problem: 'subject O is ["system:masters"], expected ["system:nodes"]' },
    { name: 'a second organization', options: { subject: '/O=system:nodes/O=system:masters/CN=system:node:new-1' }, problem: 'subject O is ["system:nodes","system:masters"], expected ["system:nodes"]' },
    { name: 'subject alternative names', options: { extraArgs: ['-addext', 'subjectAltName=DNS:x.example.com'] }, problem: 'request carries subject alternative names; a kubelet client request has none' },
    { name: 'another signer', options: { signer: 'kubernetes.io/kube-apiserver-client' }, problem: 'signer is kubernetes.io/kube-apiserver-client, expected kubernetes.io/kube-apiserver-client-kubelet' },
    { name: 'server usage', options: { usages: ['digital signature', 'client auth', 'server auth'] }, problem: 'usages include server auth, which a kubelet client certificate does not need' },
    { name: 'no client auth', options: { usages: ['digital signature'] }, problem: 'usages lack "client auth"' },
    { name: 'an ordinary user', options: { username: 'alice', groups: ['system:authenticated'] }, problem: 'requested by alice, expected a bootstrap token user (system:bootstrap:<id>) or system:node:new-1' },
    { name: 'another bootstrap token', options: { username: 'system:bootstrap:zzz999' }, expectedRequester: 'system:bootstrap:abc123', problem: 'requested by system:bootstrap:zzz999, expected system:bootstrap:abc123, the bootstrap token this rename created' },
  ];
  for (const c of cases) {
    it(`rejects ${c.name}`, () => {
      expect(kubeletCsrProblems(csr(c.options), 'new-1', c.expectedRequester)).to.deep.equal([c.problem]);
    });
  }
});

function node(fields: { name: string; labels?: Record<string, string>; annotations?: Record<string, string>; taints?: V1Node['spec'] extends infer S ? S extends { taints?: infer T } ? T : never : never; unschedulable?: boolean }): V1Node {
  return {
    metadata: { name: fields.name, uid: `uid-${fields.name}`, resourceVersion: '42', labels: fields.labels ?? {}, annotations: fields.annotations ?? {} },
    spec: { taints: fields.taints ?? [], unschedulable: fields.unschedulable ?? false },
    status: { addresses: [{ type: 'InternalIP', address: '10.0.0.1' }] },
  };
}

describe('metadata carry-over', () => {
  const old = node({
    name: 'ip-10-0-0-1',
    labels: {
      'kubernetes.io/hostname': 'ip-10-0-0-1',
      'kubernetes.io/os': 'linux',
      'node-role.kubernetes.io/worker': '',
      'topology.kubernetes.io/zone': 'rack-3',
      'node-restriction.kubernetes.io/pool': 'gpu',
      team: 'payments',
    },
    annotations: {
      'node.alpha.kubernetes.io/ttl': '0',
      'volumes.kubernetes.io/controller-managed-attach-detach': 'true',
      'example.com/owner': 'ops',
    },
    taints: [
      { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' },
      { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' },
    ],
    unschedulable: true,
  });
  const snapshot = snapshotNode(old, new Date('2026-12-04T10:00:00Z'));
  const renamedAt = new Date('2026-12-04T10:05:00Z');

  it('carries user metadata and skips what the kubelet and controllers own', () => {
    const fresh = node({ name: 'worker-1.example.com', labels: { 'kubernetes.io/hostname': 'worker-1.example.com', 'kubernetes.io/os': 'linux' }, taints: [{ key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' }] });
    const carry = computeCarryOver(snapshot, fresh, renamedAt);
    expect(carry.patch).to.deep.equal({
      metadata: {
        resourceVersion: '42',
        labels: {
          'node-role.kubernetes.io/worker': '',
          'topology.kubernetes.io/zone': 'rack-3',
          'node-restriction.kubernetes.io/pool': 'gpu',
          team: 'payments',
        },
        annotations: {
          'example.com/owner': 'ops',
          [PREVIOUS_NAME_ANNOTATION]: 'ip-10-0-0-1',
          'kube-node-rename.io/renamed-at': '2026-12-04T10:05:00.000Z',
        },
      },
      spec: {
        taints: [
          { key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' },
          { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' },
        ],
        unschedulable: true,
      },
    });
    expect(carry.taints).to.deep.equal(['dedicated:NoSchedule']);
  });

  it('keeps a zone label the new Node already has', () => {
    const fresh = node({ name: 'n', labels: { 'topology.kubernetes.io/zone': 'cloud-zone-b' } });
    const carry = computeCarryOver(snapshot, fresh, renamedAt);
    expect(carry.labels).to.not.include('topology.kubernetes.io/zone');
  });

  it('has nothing to do once everything is carried', () => {
    const fresh = node({ name: 'n' });
    const first = computeCarryOver(snapshot, fresh, renamedAt);
    const patched = node({
      name: 'n',
      labels: (first.patch!.metadata as { labels: Record<string, string> }).labels,
      annotations: (first.patch!.metadata as { annotations: Record<string, string> }).annotations,
      taints: (first.patch!.spec as { taints: NonNullable<V1Node['spec']>['taints'] }).taints,
      unschedulable: true,
    });
    expect(computeCarryOver(snapshot, patched, renamedAt)).to.deep.equal({ patch: undefined, labels: [], annotations: [], taints: [] });
  });
});

describe('bootstrap credentials', () => {
  it('generates tokens in the bootstrap token format', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const token = generateBootstrapToken();
      expect(token.id).to.match(/^[a-z0-9]{6}$/);
      expect(token.secret).to.match(/^[a-z0-9]{16}$/);
      seen.add(token.id + token.secret);
    }
    expect(seen.size).to.equal(50);
  });

  it('renders a Secret the API server accepts for bootstrap authentication', () => {
    const secret = bootstrapTokenSecret({ id: 'abc123', secret: '0123456789abcdef' }, { node: 'old-1', plan: 'p', expiresAt: new Date('2026-12-04T11:00:00.123Z') });
    expect(secret.metadata?.name).to.equal('bootstrap-token-abc123');
    expect(secret.type).to.equal('bootstrap.kubernetes.io/token');
    expect(secret.stringData).to.include({ 'token-id': 'abc123', 'token-secret': '0123456789abcdef', expiration: '2026-12-04T11:00:00Z', 'usage-bootstrap-authentication': 'true' });
  });

  it('renders a bootstrap kubeconfig with the token and the cluster CA', () => {
    const text = renderBootstrapKubeconfig({ server: 'https://10.0.0.10:6443', caData: 'Q0E=' }, { id: 'abc123', secret: '0123456789abcdef' });
    const config = yaml.load(text) as { clusters: { cluster: Record<string, string> }[]; users: { user: { token: string } }[]; 'current-context': string };
    expect(config.clusters[0]!.cluster).to.deep.equal({ server: 'https://10.0.0.10:6443', 'certificate-authority-data': 'Q0E=' });
    expect(config.users[0]!.user.token).to.equal('abc123.0123456789abcdef');
    expect(config['current-context']).to.equal('tls-bootstrap-token-user@default-cluster');
  });
});
