// Mocha helper for tests that need the test cluster: starts it with the
// `test/cluster/cluster` command, reaches hosts over SSH with the cluster's
// ssh_config, and tears it down.
//
//   let cluster: Cluster;
//   before(async () => { cluster = await startCluster({ hosts: 3, id: 'e2e' }); });
//   after(async () => { await cluster?.stop(); });

import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';

/** The `cluster` command; the compiled harness runs from dist/test/cluster. */
const CLUSTER_COMMAND = fileURLToPath(new URL('../../../test/cluster/cluster', import.meta.url));

export interface ClusterHost {
  /** Host name, which is also the Node name it joined with. */
  name: string;
  address: string;
  /**
   * Folder on this machine that contains the host's own files, laid out as on
   * the host: `<root>/etc/kubernetes`, `<root>/var/lib/kubelet`, and so on.
   */
  root: string;
}

export interface ExecOptions {
  /** Login user: `root` (default) or `knr`, who has passwordless sudo. */
  user?: 'root' | 'knr';
  /** Text written to the command's standard input. */
  input?: string;
  /** Resolve with the result instead of rejecting when the exit code is not 0. */
  allowFailure?: boolean;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface Cluster {
  id: string;
  dir: string;
  /** Admin kubeconfig (O=system:masters client certificate). */
  kubeconfig: string;
  /** ssh_config with a Host entry per host name. */
  sshConfig: string;
  /**
   * kube-apiserver audit log (JSON lines): every create of a Node or a
   * CertificateSigningRequest, with the response status and its message.
   */
  auditLog: string;
  hosts: ClusterHost[];
  /** Runs a shell command on a host through `ssh -F <sshConfig>`. */
  exec(host: string, command: string, options?: ExecOptions): Promise<ExecResult>;
  /** Creates a host, joins it as kubeadm does and returns it. */
  addHost(name: string): Promise<ClusterHost>;
  /** Stops every process and removes the namespaces, bridge and mounts. */
  stop(): Promise<void>;
}

export interface StartOptions {
  hosts: number;
  /** Cluster id: names the namespaces and the default folder. Default `test`. */
  id?: string;
  /** Cluster folder; default `$KNR_CLUSTER_DIR` or test/cluster/.run/<id>. */
  dir?: string;
  /** kube-apiserver feature gates, for example `{ AllowInsecureKubeletCertificateSigningRequests: true }`. */
  featureGates?: Record<string, boolean>;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly result: ExecResult,
  ) {
    const detail = result.stderr.trim().split('\n').slice(-15).join('\n');
    super(`${command} exited with code ${result.code}${detail === '' ? '' : `:\n${detail}`}`);
    this.name = 'CommandError';
  }
}

/** Runs a program without a shell and collects its output; `env` defaults to this process's environment. */
export function runProcess(program: string, args: string[], input?: string, env?: NodeJS.ProcessEnv): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ stdout, stderr, code: code ?? (signal === null ? 1 : 128) }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

async function runClusterCommand(args: string[]): Promise<ExecResult> {
  const result = await runProcess(CLUSTER_COMMAND, args);
  if (result.code !== 0) throw new CommandError(`test/cluster/cluster ${args.join(' ')}`, result);
  return result;
}

/** Parses the `export NAME=value` lines that `cluster up` and `cluster env` print. */
function parseExports(stdout: string): Record<string, string> {
  const exports: Record<string, string> = {};
  for (const match of stdout.matchAll(/^export ([A-Z_]+)=(.*)$/gm)) exports[match[1]] = match[2];
  return exports;
}

/** Parses the `# name address` host table that `cluster up` and `add-host` print. */
function parseHostTable(stdout: string): Array<{ name: string; address: string }> {
  const hosts: Array<{ name: string; address: string }> = [];
  for (const match of stdout.matchAll(/^# (\S+)\s+(\d+\.\d+\.\d+\.\d+)$/gm)) hosts.push({ name: match[1], address: match[2] });
  return hosts;
}

/** Starts a cluster with `hosts` joined hosts named node-1 .. node-N. */
export async function startCluster(options: StartOptions): Promise<Cluster> {
  const id = options.id ?? 'test';
  const locationArgs = ['--id', id, ...(options.dir === undefined ? [] : ['--dir', options.dir])];

  // A cluster of the same id left by an interrupted run would block `up`.
  await runClusterCommand(['down', ...locationArgs]);
  let up: ExecResult;
  try {
    const gates = Object.entries(options.featureGates ?? {}).map(([name, enabled]) => `${name}=${enabled}`);
    const gateArgs = gates.length === 0 ? [] : ['--feature-gates', gates.join(',')];
    up = await runClusterCommand(['up', '--hosts', String(options.hosts), ...locationArgs, ...gateArgs]);
  } catch (error) {
    // Leave nothing running when start-up fails half way.
    await runProcess(CLUSTER_COMMAND, ['down', ...locationArgs]);
    throw error;
  }
  const exports = parseExports(up.stdout);
  const kubeconfig = exports.KUBECONFIG;
  const sshConfig = exports.KNR_SSH_CONFIG;
  if (kubeconfig === undefined || sshConfig === undefined) {
    throw new Error(`test/cluster/cluster up printed no KUBECONFIG or KNR_SSH_CONFIG line; its output was:\n${up.stdout}`);
  }
  const dir = dirname(kubeconfig);
  const toHost = (host: { name: string; address: string }): ClusterHost => ({ ...host, root: `${dir}/hosts/${host.name}/fs` });
  const hosts = parseHostTable(up.stdout).map(toHost);

  const cluster: Cluster = {
    id,
    dir,
    kubeconfig,
    sshConfig,
    auditLog: `${dir}/logs/kube-apiserver-audit.log`,
    hosts,
    async exec(host, command, execOptions = {}) {
      const result = await runProcess('ssh', ['-F', sshConfig, '-l', execOptions.user ?? 'root', host, command], execOptions.input);
      if (result.code !== 0 && !execOptions.allowFailure) throw new CommandError(`ssh ${host} ${JSON.stringify(command)}`, result);
      return result;
    },
    async addHost(name) {
      const added = await runClusterCommand(['add-host', ...locationArgs, name]);
      const entry = parseHostTable(added.stdout).find((host) => host.name === name);
      if (entry === undefined) throw new Error(`test/cluster/cluster add-host printed no address for ${name}; its output was:\n${added.stdout}`);
      const host = toHost(entry);
      hosts.push(host);
      return host;
    },
    async stop() {
      await runClusterCommand(['down', ...locationArgs]);
    },
  };
  return cluster;
}

/** One event of the API server's audit log, with the fields tests read. */
export interface AuditEvent {
  verb: string;
  user: { username: string; groups?: string[] };
  objectRef?: { resource?: string; name?: string; apiGroup?: string };
  responseStatus?: { code?: number; message?: string; reason?: string };
  requestReceivedTimestamp: string;
}

/** Reads the audit events written so far. */
export function readAuditEvents(cluster: Pick<Cluster, 'auditLog'>): AuditEvent[] {
  let text: string;
  try {
    text = readFileSync(cluster.auditLog, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as AuditEvent);
}

/** Returns a KubeConfig for the cluster's admin (system:masters). */
export function adminKubeConfig(cluster: Pick<Cluster, 'kubeconfig'>): KubeConfig {
  const config = new KubeConfig();
  config.loadFromFile(cluster.kubeconfig);
  return config;
}

function randomLowercase(length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from({ length }, () => alphabet[randomInt(alphabet.length)]).join('');
}

/**
 * Creates a bootstrap token Secret as `kubeadm token create` does and returns
 * the token (`<id>.<secret>`). Lifetime in seconds, default one hour.
 */
export async function createBootstrapToken(cluster: Pick<Cluster, 'kubeconfig'>, lifetimeSeconds = 3600): Promise<string> {
  const id = randomLowercase(6);
  const secret = randomLowercase(16);
  const core = adminKubeConfig(cluster).makeApiClient(CoreV1Api);
  await core.createNamespacedSecret({
    namespace: 'kube-system',
    body: {
      metadata: { name: `bootstrap-token-${id}`, namespace: 'kube-system' },
      type: 'bootstrap.kubernetes.io/token',
      stringData: {
        'token-id': id,
        'token-secret': secret,
        expiration: new Date(Date.now() + lifetimeSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        'usage-bootstrap-authentication': 'true',
        'usage-bootstrap-signing': 'true',
        'auth-extra-groups': 'system:bootstrappers:kubeadm:default-node-token',
      },
    },
  });
  return `${id}.${secret}`;
}

/** Returns a bootstrap kubeconfig for the cluster, as kubeadm writes it, with the given token. */
export function bootstrapKubeconfig(cluster: Pick<Cluster, 'kubeconfig'>, token: string): string {
  const admin = adminKubeConfig(cluster).getCurrentCluster();
  if (admin === null) throw new Error(`${cluster.kubeconfig} has no current cluster`);
  const caData = admin.caData ?? (admin.caFile === undefined ? undefined : readFileSync(admin.caFile).toString('base64'));
  if (caData === undefined) throw new Error(`${cluster.kubeconfig} has no certificate authority for cluster ${admin.name}`);
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: kubernetes',
    '  cluster:',
    `    certificate-authority-data: ${caData}`,
    `    server: ${admin.server}`,
    'users:',
    '- name: tls-bootstrap-token-user',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: tls-bootstrap-token-user@kubernetes',
    '  context:',
    '    cluster: kubernetes',
    '    user: tls-bootstrap-token-user',
    'current-context: tls-bootstrap-token-user@kubernetes',
    '',
  ].join('\n');
}

/**
 * Polls `probe` every `intervalMs` until it returns a value other than
 * undefined, and returns that value. After `timeoutMs` it rejects with the
 * description and the last error that the probe threw.
 */
export async function waitFor<T>(description: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 1000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const cause = lastError === undefined ? '' : ` (last error: ${(lastError as Error).message})`;
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${description}${cause}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
