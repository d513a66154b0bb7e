// The steps that act on the kubelet of a host: finding its settings, switching it to the new
// name, restarting it without its old client certificate, and turning rotation back on.
import type { V1Lease } from '@kubernetes/client-node';
import type { StepDefinition, StepResult } from '../engine/step.js';
import { TransientStepError } from '../engine/step.js';
import { hostPathExists, listHostFiles, moveIntoBackup, readClientIdentity } from './host-files.js';
import { nodeReady } from './kube.js';
import {
  discoverKubelet,
  kubeletJournalTail,
  recordSettings,
  setKubeletFlag,
  setRotation,
  systemctl,
  unitActive,
  type FileChange,
  type RecordedSettings,
} from './kubelet-host.js';
import { backupDir, hostOf, RenameBlockedError, type RenameContext, type RenameServices } from './services.js';
import { API_RETRY } from './services.js';

type Step = StepDefinition<RenameServices>;

export function recordedHostSettings(ctx: RenameContext): RecordedSettings;
export function recordedHostSettings(ctx: RenameContext, optional: true): RecordedSettings | undefined;
export function recordedHostSettings(ctx: RenameContext, optional = false): RecordedSettings | undefined {
  const settings = ctx.outputs('preflight-host')?.settings;
  if (!settings || typeof settings !== 'object' || Array.isArray(settings)) {
    if (optional) return undefined;
    throw new Error(`the state has no kubelet settings from ${ctx.node.from}/preflight-host; start the plan over with --start-over`);
  }
  return settings as unknown as RecordedSettings;
}

function changesToJson(changes: (FileChange | undefined)[]) {
  return changes.filter((c): c is FileChange => c !== undefined).map((c) => ({ path: c.path, backup: c.backup }));
}

const preflightHost: Step = {
  name: 'preflight-host',
  description: 'reach the host, find the kubelet unit and where its settings live, and check which node it runs as',
  timeoutMs: 180_000,
  retry: API_RETRY,
  dryRun: (ctx) => `connect to ${ctx.node.host ?? `the InternalIP of ${ctx.node.from}`} and read "systemctl cat ${ctx.plan.spec.kubelet.unit}", its environment files and config file`,
  async run(ctx): Promise<StepResult> {
    const host = hostOf(ctx);
    const unit = ctx.plan.spec.kubelet.unit;
    const settings = await discoverKubelet(host, unit, ctx.signal, { originalsIn: `${backupDir(ctx)}/files` });
    const hostname = (await host.script('hostname', 'hostname')).stdout.trim().toLowerCase();
    const nodeName = settings.nodeNameOverride?.value ?? hostname;
    if (nodeName !== ctx.node.from && nodeName !== ctx.node.to) {
      throw new RenameBlockedError(
        `the kubelet on ${host.target} runs as node ${nodeName}, not ${ctx.node.from}: the address reaches another machine. Fix the host of ${ctx.node.from} in the plan`,
      );
    }
    const recorded = recordSettings(unit, settings, ctx.node.from);
    const renamedEarlier = ctx.outputs('preflight-cluster')?.renamedEarlier === true;
    return {
      kind: renamedEarlier ? 'already-done' : 'done',
      outputs: { settings: JSON.parse(JSON.stringify(recorded)), hostname },
      summary: `kubeconfig ${recorded.kubeconfig}, override in ${recorded.overrideLocation.path}, rotation ${recorded.rotation ? 'on' : 'off'}`,
    };
  },
};

const configureKubelet: Step = {
  name: 'configure-kubelet',
  description: 'set --hostname-override to the new name and turn certificate rotation off while the name changes',
  timeoutMs: 180_000,
  retry: API_RETRY,
  dryRun: (ctx) => {
    const settings = recordedHostSettings(ctx, true);
    const where = settings ? settings.overrideLocation.path : 'the file that holds the kubelet flags';
    const rotation = settings?.rotation ? '; set rotateCertificates to false' : '';
    return `set --hostname-override=${ctx.node.to} in ${where}${rotation}; back up each file before its first change`;
  },
  async run(ctx): Promise<StepResult> {
    const host = hostOf(ctx);
    const recorded = recordedHostSettings(ctx);
    const backups = backupDir(ctx);
    // Each edit reads the host afresh, so two edits of one ExecStart drop-in compose.
    const current = await discoverKubelet(host, recorded.unit, ctx.signal);
    const override = await setKubeletFlag(host, current.hostnameOverride, 'hostname-override', ctx.node.to, backups);
    // A kubelet that already holds a certificate for the new name needs no bootstrap, so rotation
    // stays as it is; this keeps a repeated run from restarting a renamed kubelet.
    const identity = await readClientIdentity(host, recorded.kubeconfig);
    const renamed = identity?.commonName === `system:node:${ctx.node.to}` && identity.notAfter > ctx.services.now();
    const rotationOff = recorded.rotation && !renamed;
    let rotation: FileChange | undefined;
    if (rotationOff) {
      const afterOverride = await discoverKubelet(host, recorded.unit, ctx.signal);
      rotation = await setRotation(host, afterOverride.rotateCertificates.edit, false, backups);
    }
    const result = await discoverKubelet(host, recorded.unit, ctx.signal);
    if (result.nodeNameOverride?.value !== ctx.node.to || (rotationOff && result.rotateCertificates.value)) {
      throw new RenameBlockedError(`the kubelet settings on ${host.target} did not take the change; inspect ${recorded.overrideLocation.path} and the backups in ${backups}`);
    }
    const changes = changesToJson([override, rotation]);
    return {
      kind: changes.length > 0 ? 'done' : 'already-done',
      outputs: { changes, rotationOff },
      summary: changes.length > 0 ? `changed ${changes.map((c) => c.path).join(', ')}` : 'the kubelet settings already name the new node',
    };
  },
};

const restartKubelet: Step = {
  name: 'restart-kubelet',
  description: 'move the kubelet\'s client certificate and kubeconfig into the backup and restart it, so it bootstraps under the new name',
  timeoutMs: 180_000,
  retry: API_RETRY,
  dryRun: (ctx) => {
    const settings = recordedHostSettings(ctx, true);
    return `stop the kubelet, move ${settings?.kubeconfig ?? 'its kubeconfig'} and ${settings?.certDir ?? 'the cert dir'}/kubelet-client-*.pem into the backup folder, start the kubelet`;
  },
  async run(ctx): Promise<StepResult> {
    const host = hostOf(ctx);
    const settings = recordedHostSettings(ctx);
    const identity = await readClientIdentity(host, settings.kubeconfig);
    if (identity?.commonName === `system:node:${ctx.node.to}` && identity.notAfter > ctx.services.now()) {
      if (await unitActive(host, settings.unit)) return { kind: 'already-done', summary: 'the kubelet already runs with a certificate for the new name' };
      await systemctl(host, 'start', settings.unit);
      return { kind: 'done', outputs: { moved: [] }, summary: 'started the kubelet, which already had a certificate for the new name' };
    }
    if (!(await hostPathExists(host, settings.bootstrapKubeconfig))) {
      throw new RenameBlockedError(`the bootstrap kubeconfig ${settings.bootstrapKubeconfig} is missing on ${host.target}, so the kubelet could not get a new certificate; resume the run to write it again`);
    }
    await systemctl(host, 'stop', settings.unit);
    const certificates = await listHostFiles(host, settings.certDir, 'kubelet-client-*');
    const moved = (await moveIntoBackup(host, `${backupDir(ctx)}/credentials`, [settings.kubeconfig, ...certificates])).map((m) => ({ ...m }));
    await systemctl(host, 'start', settings.unit);
    ctx.log.info('restarted the kubelet without its old client certificate', { moved: moved.map((m) => m.path) });
    return { kind: 'done', outputs: { moved, restartedAt: ctx.services.now().toISOString() }, summary: `moved ${moved.length} file(s) into the backup and restarted` };
  },
};

function renewedSince(lease: V1Lease | undefined, since: Date): boolean {
  const renewed = lease?.spec?.renewTime;
  return renewed !== undefined && new Date(renewed).getTime() >= since.getTime();
}

const restoreRotation: Step = {
  name: 'restore-rotation',
  description: 'turn certificate rotation back on if it was on, restart the kubelet, and confirm the Node stays Ready',
  timeoutMs: 900_000,
  retry: API_RETRY,
  dryRun: (ctx) => {
    const settings = recordedHostSettings(ctx, true);
    if (settings && !settings.rotation) return 'nothing: rotation was off before the rename';
    return `set rotateCertificates back to true, restart the kubelet, and wait until Node ${ctx.node.to} renews its Lease and is Ready`;
  },
  async run(ctx): Promise<StepResult> {
    const settings = recordedHostSettings(ctx);
    if (!settings.rotation) return { kind: 'already-done', summary: 'rotation was off before the rename' };
    const host = hostOf(ctx);
    const { kube } = ctx.services;
    const current = await discoverKubelet(host, settings.unit, ctx.signal);
    if (current.rotateCertificates.value && ctx.outputs('configure-kubelet')?.rotationOff !== true) {
      return { kind: 'already-done', summary: 'rotation is on and this run did not turn it off' };
    }
    const change = await setRotation(host, current.rotateCertificates.edit, true, backupDir(ctx));
    // Restarting is safe to repeat, and a run that died between the edit and the restart must
    // still restart, so the kubelet restarts whether or not the edit changed the file.
    const restartedAt = ctx.services.now();
    await systemctl(host, 'restart', settings.unit);
    try {
      await kube.waitFor<V1Lease>(`/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases`, `metadata.name=${ctx.node.to}`, {
        description: `the kubelet of ${ctx.node.to} to renew its Lease after the restart`,
        timeoutMs: ctx.plan.spec.rename.readyTimeoutMs,
        signal: ctx.signal,
        read: () => kube.getLease(ctx.node.to),
        test: (lease) => renewedSince(lease, restartedAt),
      });
    } catch (error) {
      if (!(error instanceof TransientStepError)) throw error;
      const journal = await kubeletJournalTail(host, settings.unit, 5);
      throw new TransientStepError(`${error.message}${journal ? `; last lines of the kubelet log:\n${journal}` : ''}`, { cause: error });
    }
    const node = await kube.getNode(ctx.node.to);
    if (!nodeReady(node)) throw new TransientStepError(`Node ${ctx.node.to} is not Ready after the kubelet restarted with rotation on`);
    const identity = await readClientIdentity(host, settings.kubeconfig);
    if (identity?.commonName !== `system:node:${ctx.node.to}`) {
      throw new RenameBlockedError(`after turning rotation on, the kubelet on ${host.target} uses a certificate for ${identity?.commonName ?? 'nothing'}; inspect ${settings.kubeconfig}`);
    }
    return { kind: 'done', outputs: { changes: changesToJson([change]) }, summary: 'rotation on again; the Node renews its Lease and is Ready' };
  },
};

export const kubeletSteps = { preflightHost, configureKubelet, restartKubelet, restoreRotation };
