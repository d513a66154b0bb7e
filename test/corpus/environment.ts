// Helpers for the bad-environment and security tests on the test cluster: snapshots of what a
// rejected run must leave alone, and kubeconfigs for ServiceAccounts with chosen permissions.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { CertificatesV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import type { Cluster } from '../cluster/harness.js';
import { repoRoot } from './support.js';

/** The folders a rename reads or writes on a host, compared before and after a rejected run. */
export const HOST_FOLDERS = ['/etc/kubernetes', '/var/lib/kubelet', '/etc/default', '/etc/systemd/system', '/usr/lib/systemd/system', '/var/lib/kube-node-rename'];

export interface ClusterSnapshot {
  /** Node name to the fields a rename changes. */
  nodes: Record<string, { uid: string; labels: unknown; annotations: unknown; taints: unknown; unschedulable: boolean }>;
  /** Secret names in kube-system, where the tool creates bootstrap tokens. */
  secrets: string[];
  /** CSR name to its conditions. */
  csrs: Record<string, unknown>;
}

export function adminKubeConfig(kubeconfig: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromFile(kubeconfig);
  return config;
}

/** Reads the Nodes, kube-system Secrets and CSRs that a rename would touch. */
export async function snapshotCluster(kubeconfig: string): Promise<ClusterSnapshot> {
  const config = adminKubeConfig(kubeconfig);
  const core = config.makeApiClient(CoreV1Api);
  const certificates = config.makeApiClient(CertificatesV1Api);
  const nodes: ClusterSnapshot['nodes'] = {};
  for (const node of (await core.listNode()).items) {
    nodes[node.metadata!.name!] = {
      uid: node.metadata?.uid ?? '',
      labels: node.metadata?.labels ?? {},
      annotations: node.metadata?.annotations ?? {},
      taints: node.spec?.taints ?? [],
      unschedulable: node.spec?.unschedulable ?? false,
    };
  }
  const secrets = (await core.listNamespacedSecret({ namespace: 'kube-system' })).items.map((s) => s.metadata!.name!).sort();
  const csrs: ClusterSnapshot['csrs'] = {};
  for (const csr of (await certificates.listCertificateSigningRequest()).items) csrs[csr.metadata!.name!] = csr.status?.conditions ?? [];
  return { nodes, secrets, csrs };
}

/** Lists the SHA-256 of every regular file, the target of every symlink, and every mode and owner under HOST_FOLDERS. */
export async function snapshotHost(cluster: Cluster, host: string): Promise<string> {
  const folders = HOST_FOLDERS.join(' ');
  const script = [
    `for d in ${folders}; do [ -e "$d" ] || echo "absent $d"; done`,
    `find ${folders} -xdev -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum`,
    `find ${folders} -xdev -type l -printf '%p -> %l\\n' 2>/dev/null | sort`,
    `find ${folders} -xdev -printf '%m %u %p\\n' 2>/dev/null | sort -k3`,
  ].join('; ');
  return (await cluster.exec(host, script)).stdout;
}

/** Creates (or keeps) a ServiceAccount in kube-system and writes a kubeconfig (mode 0600) with a token for it. */
export async function serviceAccountKubeconfig(adminKubeconfig: string, name: string, outFile: string): Promise<string> {
  const admin = adminKubeConfig(adminKubeconfig);
  const objects = KubernetesObjectApi.makeApiClient(admin);
  try {
    await objects.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: 'kube-system' } } as KubernetesObject);
  } catch (error) {
    if ((error as { code?: number }).code !== 409) throw error;
  }
  const request = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    name,
    namespace: 'kube-system',
    body: { spec: { expirationSeconds: 3600, audiences: [] } },
  });
  return writeTokenKubeconfig(adminKubeconfig, request.status!.token, outFile);
}

/** Writes a kubeconfig for the cluster of `adminKubeconfig` that authenticates with `token`; `change` edits it first. */
export function writeTokenKubeconfig(adminKubeconfig: string, token: string, outFile: string, change: (config: TokenKubeconfig) => void = () => undefined): string {
  const cluster = adminKubeConfig(adminKubeconfig).getCurrentCluster()!;
  const config: TokenKubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server: cluster.server, 'certificate-authority-data': cluster.caData ?? readFileSync(cluster.caFile!).toString('base64') } }],
    users: [{ name: 'tool', user: { token } }],
    contexts: [{ name: 'tool', context: { cluster: 'test', user: 'tool' } }],
    'current-context': 'tool',
  };
  change(config);
  writeFileSync(outFile, yaml.dump(config), { mode: 0o600 });
  return outFile;
}

export interface TokenKubeconfig {
  apiVersion: 'v1';
  kind: 'Config';
  clusters: { name: string; cluster: { server: string; 'certificate-authority-data': string } }[];
  users: { name: string; user: { token: string } }[];
  contexts: { name: string; context: { cluster: string; user: string } }[];
  'current-context': string;
}

/** Reads the shipped ClusterRole and Roles from deploy/clusterrole.yaml. */
export function shippedRoles(): KubernetesObject[] {
  return yaml.loadAll(readFileSync(path.join(repoRoot, 'deploy/clusterrole.yaml'), 'utf8')) as KubernetesObject[];
}

/**
 * Binds copies of the shipped roles, named `name`, to the ServiceAccount `name`, after `trim`
 * removes rules from them, so a test can take away one permission of the least-privilege set.
 */
export async function bindTrimmedRoles(adminKubeconfig: string, name: string, trim: (role: KubernetesObject & { rules: Rule[] }) => void): Promise<void> {
  const objects = KubernetesObjectApi.makeApiClient(adminKubeConfig(adminKubeconfig));
  const subject = { kind: 'ServiceAccount', name, namespace: 'kube-system' };
  for (const role of shippedRoles() as (KubernetesObject & { rules: Rule[] })[]) {
    const copy = { ...role, metadata: { ...role.metadata, name }, rules: role.rules.map((rule) => ({ ...rule })) };
    trim(copy);
    const namespace = role.metadata?.namespace;
    await objects.create(copy as KubernetesObject);
    await objects.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: role.kind === 'ClusterRole' ? 'ClusterRoleBinding' : 'RoleBinding',
      metadata: namespace === undefined ? { name } : { name, namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: role.kind, name },
      subjects: [subject],
    } as KubernetesObject);
  }
}

export interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
