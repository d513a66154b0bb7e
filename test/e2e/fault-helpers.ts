// Fault injection for the fault matrix. It runs `apply` with hooks on its JSON log lines, kills it
// at a step boundary or inside a step, restarts the API server, stops a host's sshd, and mounts
// small tmpfs file systems for the state directory. It also holds the end-state checks that
// every fault test shares.
import { expect } from 'chai';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { CoreV1Api, type V1Node, type V1Taint } from '@kubernetes/client-node';
import type { Cluster } from '../cluster/harness.js';
import { adminConfig, cliPath, getNode, isReady, onHost, runCli } from './support.js';

const execFileAsync = promisify(execFile);

export type LogLine = Record<string, unknown>;

export interface ApplyOutcome {
  code: number;
  stdout: string;
  /** The JSON log lines, in order. */
  lines: LogLine[];
  /** The lines of stderr that are not JSON (error messages printed by the CLI). */
  otherStderr: string;
  /** Set when a hook killed the process. */
  killed: boolean;
}

export interface ApplyHooks {
  /**
   * Called for every JSON log line, in order, with the running process. Awaited before the next
   * line is handled, so an injection finishes before the run's next line is looked at.
   */
  onLine?: (line: LogLine, child: ChildProcess) => Promise<void> | void;
  timeoutMs?: number;
}

/** Runs `apply ARGS --log-format json` to its end, calling the hook on each log line. */
export function applyWithHooks(args: string[], hooks: ApplyHooks = {}): Promise<ApplyOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, 'apply', ...args, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const outcome: ApplyOutcome = { code: -1, stdout: '', lines: [], otherStderr: '', killed: false };
    let buffer = '';
    let queue = Promise.resolve();
    const timer = setTimeout(() => {
      outcome.killed = true;
      child.kill('SIGKILL');
    }, hooks.timeoutMs ?? 600_000);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (outcome.stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const text = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          outcome.otherStderr += `${text}\n`;
          continue;
        }
        outcome.lines.push(line);
        if (hooks.onLine) queue = queue.then(() => hooks.onLine!(line, child)).catch(reject);
      }
    });
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      outcome.otherStderr += buffer;
      outcome.code = code ?? (signal === null ? -1 : 128 + 9);
      queue.then(() => resolve(outcome), reject);
    });
  });
}

/** Collects the log lines of a run at level warn or error, the other stderr lines and the run summary. */
export function failureText(run: ApplyOutcome): string {
  const logged = run.lines.filter((line) => line.level === 'error' || line.level === 'warn').map((line) => JSON.stringify(line));
  return [...logged, run.otherStderr, run.stdout].join('\n');
}

export function isStepLine(line: LogLine, step: string, message: 'step started' | 'step succeeded' | 'step failed'): boolean {
  return line.step === step && line.message === message;
}

/** Names the step ids of a plan in DAG order, from `graph --format json`. */
export async function graphSteps(plan: string): Promise<{ id: string; node: string; step: string }[]> {
  const result = await runCli(['graph', plan, '--format', 'json']);
  if (result.code !== 0) throw new Error(`graph ${plan} exited with ${result.code}: ${result.stderr}`);
  return (JSON.parse(result.stdout) as { steps: { id: string; node: string; step: string }[] }).steps;
}

/**
 * One place to kill the run: at a boundary (the step's "step started" or "step succeeded" line),
 * at a log line the step writes while it works, or a delay after the step started.
 */
export interface KillPoint {
  label: string;
  step: string;
  at: { kind: 'line'; message: string } | { kind: 'delay'; ms: number };
}

export interface KillResult {
  /** What actually ended the run: the matched line, or the line last seen before a delay ran out. */
  killedAt: string;
  /** False when the run ended, or went past the step, before the kill point came. */
  hit: boolean;
}

/**
 * Runs apply and kills it with SIGKILL at the point. A delay point kills when the delay after
 * "step started" runs out. When the step ends first, it kills at that step's next line instead,
 * so the run never gets past the step, and the result says the middle was missed.
 */
export async function applyAndKillAt(args: string[], point: KillPoint): Promise<KillResult> {
  let result: KillResult | undefined;
  let timer: NodeJS.Timeout | undefined;
  const kill = (child: ChildProcess, killedAt: string, hit: boolean): void => {
    if (result) return;
    result = { killedAt, hit };
    child.kill('SIGKILL');
  };
  const outcome = await applyWithHooks(args, {
    onLine(line, child) {
      if (result || line.step !== point.step) return;
      if (point.at.kind === 'line') {
        if (line.message === point.at.message) kill(child, `${point.step}: "${point.at.message}"`, true);
        return;
      }
      if (line.message === 'step started') {
        const ms = point.at.ms;
        timer = setTimeout(() => kill(child, `${point.step}: ${ms} ms after "step started"`, true), ms);
      } else if (timer) {
        clearTimeout(timer);
        kill(child, `${point.step}: "${String(line.message)}" (the step ended before the delay)`, false);
      }
    },
  });
  if (timer) clearTimeout(timer);
  if (!result) {
    throw new Error(`apply ${args[0]} exited with ${outcome.code} before kill point ${point.label}: ${failureText(outcome).slice(-1500)}`);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// The control plane

function readPid(file: string): number {
  const pid = Number(readFileSync(file, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${file} holds no process id`);
  return pid;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

/** Sends SIGTERM, and SIGKILL when the process is still there after `graceMs`. */
async function stopProcess(pid: number, what: string, graceMs: number): Promise<void> {
  process.kill(pid, 'SIGTERM');
  if (await waitGone(pid, graceMs)) return;
  process.kill(pid, 'SIGKILL');
  if (!(await waitGone(pid, 10_000))) throw new Error(`${what} (pid ${pid}) did not exit after SIGKILL`);
}

/**
 * Stops kube-apiserver, leaves it down for `downMs`, and starts it again with the command line
 * it had, read from /proc before stopping it. The new process id goes into the cluster's pid
 * file and its output is appended to the same log, so `cluster down` still stops it. It is
 * started again even when stopping it failed, so one failed test does not break the next.
 */
export async function restartApiServer(cluster: Pick<Cluster, 'dir' | 'kubeconfig'>, downMs: number): Promise<void> {
  const pidFile = `${cluster.dir}/pids/kube-apiserver.pid`;
  const pid = readPid(pidFile);
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((part) => part !== '');
  if (argv.length === 0) throw new Error(`/proc/${pid}/cmdline of kube-apiserver is empty`);
  try {
    // kube-apiserver drains its requests on SIGTERM, which can take a minute with watches open.
    await stopProcess(pid, 'kube-apiserver', 5000);
    await new Promise((resolve) => setTimeout(resolve, downMs));
  } finally {
    if (!alive(pid)) {
      const log = openSync(`${cluster.dir}/logs/kube-apiserver.log`, 'a');
      try {
        const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', log, log] });
        child.unref();
        writeFileSync(pidFile, `${child.pid}\n`);
      } finally {
        closeSync(log);
      }
    }
  }
  await waitApiReady(cluster.kubeconfig, 120_000);
}

/** Waits until a list request with the admin credentials succeeds. */
export async function waitApiReady(kubeconfig: string, timeoutMs: number): Promise<void> {
  const core = adminConfig(kubeconfig).makeApiClient(CoreV1Api);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await core.listNode();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`the API server did not respond within ${timeoutMs} ms after its restart: ${(error as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Hosts

/** Stops the host's sshd listener, so new SSH connections are refused; open ones go on. */
export async function stopSshd(cluster: Pick<Cluster, 'dir'>, host: string): Promise<void> {
  const pidFile = `${cluster.dir}/hosts/${host}/fs/run/sshd.pid`;
  const pid = readPid(pidFile);
  await stopProcess(pid, `sshd of ${host}`, 10_000);
}

/** Starts the host's sshd again inside the host's namespaces, as the cluster command does. */
export async function startSshd(cluster: Pick<Cluster, 'dir'>, host: string): Promise<void> {
  const dir = `${cluster.dir}/hosts/${host}`;
  const pidFile = `${dir}/fs/run/sshd.pid`;
  if (existsSync(pidFile) && alive(readPid(pidFile))) return;
  const anchor = readPid(`${dir}/anchor.pid`);
  await execFileAsync('nsenter', [
    '--target', String(anchor), '--net', '--mount', '--uts', '--',
    'env', '-i', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', 'LANG=C.UTF-8',
    '/usr/sbin/sshd', '-f', `${dir}/ssh/sshd_config`, '-E', '/var/log/sshd.log',
  ]);
}

// ---------------------------------------------------------------------------------------------
// Small file systems for the state directory

/** Mounts a tmpfs of `size` (for example `512k`) at `dir`, mode 0700. */
export async function mountTmpfs(dir: string, size: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await execFileAsync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
}

export async function remount(dir: string, mode: 'ro' | 'rw'): Promise<void> {
  await execFileAsync('mount', ['-o', `remount,${mode}`, dir]);
}

/**
 * Unmounts `dir` when something is mounted there; safe to call twice. A process that is still
 * exiting can keep the mount busy for a moment, so it retries for 10 s and then detaches the
 * mount lazily (`umount -l`), which the kernel completes once the last file is closed.
 */
export async function unmountIfMounted(dir: string): Promise<void> {
  const mounted = (): boolean => readFileSync('/proc/self/mounts', 'utf8').split('\n').some((line) => line.split(' ')[1] === dir);
  for (let attempt = 0; attempt < 20 && mounted(); attempt++) {
    try {
      await execFileAsync('umount', [dir]);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  if (mounted()) await execFileAsync('umount', ['-l', dir]);
}

/** Fills the file system holding `dir` with one file until no byte is left, and returns the file. */
export async function fillUp(dir: string): Promise<string> {
  const filler = `${dir}/filler`;
  // dd stops with "No space left on device" and a non-zero exit: that is the point.
  await execFileAsync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k']).catch(() => undefined);
  const { stdout } = await execFileAsync('df', ['--output=avail', '-B1', dir]);
  const available = Number(stdout.trim().split('\n').at(-1));
  if (available !== 0) throw new Error(`${dir} still has ${available} bytes free after filling it`);
  return filler;
}

// ---------------------------------------------------------------------------------------------
// Node names and what a rename must carry over

/**
 * Current Node name of each test host. Tests rename the same hosts again and again
 * (node-1 to node-1-v1 to node-1-v2 ...), so each test takes the next free name from here.
 */
export class HostNames {
  private readonly current = new Map<string, string>();
  private readonly versions = new Map<string, number>();

  name(host: string): string {
    return this.current.get(host) ?? host;
  }

  /** The name a rename of this host should give it next; not taken until `renamed` is called. */
  next(host: string): string {
    return `${host}-v${(this.versions.get(host) ?? 0) + 1}`;
  }

  renamed(host: string, to: string): void {
    this.versions.set(host, (this.versions.get(host) ?? 0) + 1);
    this.current.set(host, to);
  }
}

/** The labels, annotation and taint the tests put on every Node, which each rename must keep. */
export const decoration = {
  labels: { team: 'payments', 'topology.kubernetes.io/zone': 'rack-7', 'node-role.kubernetes.io/worker': '' },
  annotations: { 'example.com/asset-tag': 'asset-4711' },
  taint: { key: 'example.com/dedicated', value: 'payments', effect: 'NoSchedule' } as V1Taint,
};

export async function decorate(kubeconfig: string, name: string): Promise<void> {
  const core = adminConfig(kubeconfig).makeApiClient(CoreV1Api);
  const node = await core.readNode({ name });
  const taints = (node.spec?.taints ?? []).filter((t) => t.key !== decoration.taint.key);
  await core.replaceNode({
    name,
    body: {
      ...node,
      metadata: { ...node.metadata, labels: { ...node.metadata?.labels, ...decoration.labels }, annotations: { ...node.metadata?.annotations, ...decoration.annotations } },
      spec: { ...node.spec, taints: [...taints, decoration.taint] },
    },
  });
}

/**
 * Names of the bootstrap token Secrets the tool created and has not removed yet: all of them, or
 * those it created for the rename of one node (labelled with the node's old name).
 */
export async function managedTokens(kubeconfig: string, node?: string): Promise<string[]> {
  const core = adminConfig(kubeconfig).makeApiClient(CoreV1Api);
  const selector = `app.kubernetes.io/managed-by=kube-node-rename${node === undefined ? '' : `,kube-node-rename.io/node=${node}`}`;
  const secrets = await core.listNamespacedSecret({ namespace: 'kube-system', labelSelector: selector });
  return secrets.items.map((secret) => secret.metadata?.name ?? '');
}

/** Reads --hostname-override from a kubeadm-flags.env; undefined when the flag is absent. */
export function hostnameOverride(flags: string): string | undefined {
  return /--hostname-override[= ]([^\s"']+)/.exec(flags)?.[1];
}

function expectDecorated(node: V1Node, what: string): void {
  for (const [key, value] of Object.entries(decoration.labels)) expect(node.metadata?.labels?.[key], `${what}: label ${key}`).to.equal(value);
  for (const [key, value] of Object.entries(decoration.annotations)) expect(node.metadata?.annotations?.[key], `${what}: annotation ${key}`).to.equal(value);
  const taint = node.spec?.taints?.find((t) => t.key === decoration.taint.key);
  expect(taint, `${what}: taint ${decoration.taint.key}`).to.deep.include({ value: decoration.taint.value, effect: decoration.taint.effect });
}

export interface RenameExpectation {
  host: string;
  plan: string;
  from: string;
  to: string;
}

/** What `expectRenamed` checks, for the report. */
export const renamedChecks =
  'new Node Ready with labels, annotation and taint; old Node gone; no token Secret; kubeadm-flags.env, rotateCertificates, client certificate CN; backup folder';

/**
 * Asserts the end state of a finished rename. The new Node is Ready and carries the test's
 * labels, annotation, taint and the previous name. The old Node is gone, and no bootstrap token
 * Secret of this rename is left. The host runs under the new name with certificate rotation on,
 * and the backup folder keeps the old credentials.
 */
export async function expectRenamed(cluster: Pick<Cluster, 'kubeconfig' | 'sshConfig'>, expected: RenameExpectation): Promise<void> {
  const { host, plan, from, to } = expected;
  const node = await getNode(cluster.kubeconfig, to);
  expect(node, `Node ${to}`).to.not.equal(undefined);
  expect(isReady(node), `Node ${to} Ready`).to.equal(true);
  expectDecorated(node!, `Node ${to}`);
  expect(node!.metadata?.labels?.['kubernetes.io/hostname'], `hostname label of ${to}`).to.equal(to);
  expect(node!.metadata?.annotations?.['kube-node-rename.io/previous-name'], `previous name on ${to}`).to.equal(from);
  expect(await getNode(cluster.kubeconfig, from), `old Node ${from}`).to.equal(undefined);
  expect(await managedTokens(cluster.kubeconfig, from), `bootstrap token Secrets left by the rename of ${from}`).to.deep.equal([]);

  const flags = await onHost(cluster.sshConfig, host, 'cat /var/lib/kubelet/kubeadm-flags.env');
  expect(hostnameOverride(flags), `--hostname-override in kubeadm-flags.env on ${host}`).to.equal(to);
  const config = await onHost(cluster.sshConfig, host, 'cat /var/lib/kubelet/config.yaml');
  expect(config, `config.yaml on ${host}`).to.match(/^rotateCertificates: true$/m);
  const subject = await onHost(cluster.sshConfig, host, 'openssl x509 -noout -subject -in /var/lib/kubelet/pki/kubelet-client-current.pem');
  expect(subject, `client certificate on ${host}`).to.include(`CN = system:node:${to}`);
  const backup = await onHost(cluster.sshConfig, host, `ls /var/lib/kube-node-rename/backup/${plan}/${from}/credentials`);
  expect(backup, `backup folder of ${from} on ${host}`).to.include('kubelet.conf').and.include('kubelet-client-current.pem');
}

/** Asserts that a host and its Node are as before a rename: the old name everywhere, new Node absent. */
export async function expectNotRenamed(cluster: Pick<Cluster, 'kubeconfig' | 'sshConfig'>, host: string, name: string, to: string): Promise<void> {
  const node = await getNode(cluster.kubeconfig, name);
  expect(node, `Node ${name}`).to.not.equal(undefined);
  expect(isReady(node), `Node ${name} Ready`).to.equal(true);
  expectDecorated(node!, `Node ${name}`);
  expect(node!.spec?.unschedulable ?? false, `Node ${name} schedulable`).to.equal(false);
  expect(await getNode(cluster.kubeconfig, to), `half-registered Node ${to}`).to.equal(undefined);
  expect(await managedTokens(cluster.kubeconfig, name), `bootstrap token Secrets left by the rename of ${name}`).to.deep.equal([]);
  const flags = await onHost(cluster.sshConfig, host, 'cat /var/lib/kubelet/kubeadm-flags.env');
  // A host that joined under its host name has no override; a renamed one has its current name.
  expect(hostnameOverride(flags) ?? host, `--hostname-override in kubeadm-flags.env on ${host}`).to.equal(name);
  const config = await onHost(cluster.sshConfig, host, 'cat /var/lib/kubelet/config.yaml');
  expect(config, `config.yaml on ${host}`).to.match(/^rotateCertificates: true$/m);
  const subject = await onHost(cluster.sshConfig, host, 'openssl x509 -noout -subject -in /var/lib/kubelet/pki/kubelet-client-current.pem');
  expect(subject, `client certificate on ${host}`).to.include(`CN = system:node:${name}`);
}

/** Asserts that the host still runs under `name`: its kubeconfig and client certificate are untouched. */
export async function expectHostUntouched(cluster: Pick<Cluster, 'sshConfig'>, host: string, name: string): Promise<void> {
  const kubeconfig = await onHost(cluster.sshConfig, host, 'test -e /etc/kubernetes/kubelet.conf && echo present || echo absent');
  expect(kubeconfig.trim(), `/etc/kubernetes/kubelet.conf on ${host}`).to.equal('present');
  const subject = await onHost(cluster.sshConfig, host, 'openssl x509 -noout -subject -in /var/lib/kubelet/pki/kubelet-client-current.pem');
  expect(subject, `client certificate on ${host}`).to.include(`CN = system:node:${name}`);
}
