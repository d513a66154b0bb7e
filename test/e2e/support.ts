// Helpers for the end-to-end tests: the tool's least-privilege identity, plan files, running the
// CLI as a user would, and reading a host's files over SSH.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import yaml from 'js-yaml';
import {
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  type KubernetesObject,
  type V1Node,
} from '@kubernetes/client-node';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (this file runs from dist/test/e2e). */
export const repoRoot = path.resolve(here, '../../..');
export const cliPath = path.join(repoRoot, 'dist/engine/cli.js');

export function adminConfig(kubeconfig: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromFile(kubeconfig);
  return config;
}

/** Creates an object, or replaces it when it exists, so a changed deploy file takes effect. */
async function createOrReplace(api: KubernetesObjectApi, object: KubernetesObject): Promise<void> {
  try {
    await api.create(object);
  } catch (error) {
    if ((error as { code?: number }).code !== 409) throw error;
    const current = await api.read({ apiVersion: object.apiVersion!, kind: object.kind!, metadata: { name: object.metadata!.name!, namespace: object.metadata?.namespace ?? '' } });
    await api.replace({ ...object, metadata: { ...object.metadata, resourceVersion: current.metadata?.resourceVersion } } as KubernetesObject);
  }
}

/**
 * Binds the shipped ClusterRole and Role (deploy/clusterrole.yaml) to a ServiceAccount and writes
 * a kubeconfig (mode 0600) that authenticates as it, so the tests run the tool with exactly the
 * permissions the README tells operators to grant.
 */
export async function leastPrivilegeKubeconfig(adminKubeconfig: string, outFile: string): Promise<string> {
  const admin = adminConfig(adminKubeconfig);
  const api = KubernetesObjectApi.makeApiClient(admin);
  const docs = yaml.loadAll(readFileSync(path.join(repoRoot, 'deploy/clusterrole.yaml'), 'utf8')) as KubernetesObject[];
  for (const doc of docs) await createOrReplace(api, doc);
  const core = admin.makeApiClient(CoreV1Api);
  const subject = { kind: 'ServiceAccount', name: 'kube-node-rename', namespace: 'kube-system' };
  await createOrReplace(api, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'kube-node-rename', namespace: 'kube-system' } } as KubernetesObject);
  await createOrReplace(api, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'kube-node-rename' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kube-node-rename' },
    subjects: [subject],
  } as KubernetesObject);
  for (const role of docs.filter((doc) => doc.kind === 'Role')) {
    await createOrReplace(api, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'kube-node-rename', namespace: role.metadata!.namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata!.name },
      subjects: [subject],
    } as KubernetesObject);
  }
  const request = await core.createNamespacedServiceAccountToken({
    name: 'kube-node-rename',
    namespace: 'kube-system',
    body: { spec: { expirationSeconds: 4 * 3600, audiences: [] } },
  });
  const cluster = admin.getCurrentCluster()!;
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server: cluster.server, 'certificate-authority-data': cluster.caData ?? Buffer.from(readFileSync(cluster.caFile!)).toString('base64') } }],
    users: [{ name: 'kube-node-rename', user: { token: request.status?.token } }],
    contexts: [{ name: 'kube-node-rename', context: { cluster: 'test', user: 'kube-node-rename' } }],
    'current-context': 'kube-node-rename',
  };
  writeFileSync(outFile, yaml.dump(kubeconfig), { mode: 0o600 });
  return outFile;
}

export interface PlanEntry {
  from: string;
  to: string;
  host?: string;
}

export interface PlanOptions {
  name: string;
  nodes: PlanEntry[];
  sshConfig: string;
  parallelism?: number;
  canary?: number;
  maxFailures?: number;
  extraSpec?: Record<string, unknown>;
  rename?: Record<string, unknown>;
}

/** Writes a plan file as an operator would, and returns its path. */
export function writePlan(dir: string, options: PlanOptions): string {
  const plan = {
    apiVersion: 'kube-node-rename/v1alpha1',
    kind: 'RenamePlan',
    metadata: { name: options.name },
    spec: {
      nodes: options.nodes,
      strategy: { parallelism: options.parallelism ?? 2, canary: options.canary ?? 0, maxFailures: options.maxFailures ?? 0 },
      access: { transport: 'ssh', sshConfig: options.sshConfig },
      rename: { readyTimeout: '2m', csrTimeout: '2m', ...options.rename },
      ...options.extraSpec,
    },
  };
  const file = path.join(dir, `${options.name}.yaml`);
  writeFileSync(file, yaml.dump(plan));
  return file;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI to completion. */
export async function runCli(args: string[], timeoutMs = 600_000): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cliPath, ...args], { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof failure.code === 'number' ? failure.code : -1, stdout: failure.stdout ?? '', stderr: failure.stderr ?? '' };
  }
}

/**
 * Starts `apply` with JSON logs and kills it with SIGKILL as soon as a log line matches, as a
 * crash at that instant would. Resolves with the matched line, or rejects when the run ends first.
 */
export function applyAndKillWhen(args: string[], match: (line: Record<string, unknown>) => boolean, timeoutMs = 600_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [cliPath, 'apply', ...args, '--log-format', 'json'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let buffer = '';
    let done = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      if (!done) reject(new Error(`no log line matched within ${timeoutMs} ms`));
      done = true;
    }, timeoutMs);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const text = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        let line: Record<string, unknown>;
        try {
          line = JSON.parse(text) as Record<string, unknown>;
        } catch {
          continue;
        }
        if (!done && match(line)) {
          done = true;
          child.kill('SIGKILL');
          clearTimeout(timer);
          child.once('exit', () => resolve(line));
          return;
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (!done) {
        done = true;
        reject(new Error(`apply exited with ${code} before the kill point`));
      }
    });
  });
}

/** Runs a shell command on a test host over SSH, the way the tool reaches it. */
export async function onHost(sshConfig: string, host: string, command: string): Promise<string> {
  const { stdout } = await run('ssh', ['-F', sshConfig, '-o', 'BatchMode=yes', host, command], { timeout: 60_000 });
  return stdout;
}

export async function getNode(kubeconfig: string, name: string): Promise<V1Node | undefined> {
  const core = adminConfig(kubeconfig).makeApiClient(CoreV1Api);
  try {
    return await core.readNode({ name });
  } catch (error) {
    if ((error as { code?: number }).code === 404) return undefined;
    throw error;
  }
}

export function isReady(node: V1Node | undefined): boolean {
  return node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

export async function waitUntil<T>(description: string, probe: () => Promise<T | undefined | false>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
