// Rollback of one node's rename: the host's kubelet files and client certificate come back from
// the backup, the kubelet runs under its old name again, the old Node gets its recorded labels,
// annotations and taints back, and a half-registered new Node is removed.
import type { V1Node } from '@kubernetes/client-node';
import { RollbackRefusedError, TransientStepError, type NodeRecordView, type RollbackContext, type RollbackResult } from '../engine/step.js';
import type { HostRunner } from './host.js';
import { hostPathExists, listHostFiles, moveIntoBackup, restoreFromBackup, type MovedFile } from './host-files.js';
import { DROP_IN_NAME } from './kubelet-config.js';
import { deleteRecordedTokens } from './credential-steps.js';
import { nodeReady } from './kube.js';
import { systemctl } from './kubelet-host.js';
import type { RecordedSettings } from './kubelet-host.js';
import { snapshotFromJson, type NodeSnapshot } from './node-metadata.js';
import { PREVIOUS_NAME_ANNOTATION, type RenameServices } from './services.js';

export { RollbackRefusedError } from '../engine/step.js';

type RollbackInput = RollbackContext<RenameServices>;
type NodeRecord = NodeRecordView;

function backupRoot(plan: RollbackInput['plan'], node: RollbackInput['node']): string {
  return `/var/lib/kube-node-rename/backup/${plan.metadata.name}/${node.from}`;
}

/** Refuses when the rename went past the point of no return, with the reason and the way forward. */
export function checkRollbackSafe(node: RollbackInput['node'], record: NodeRecord): void {
  if (record.succeeded('delete-old-node')) {
    throw new RollbackRefusedError(
      `the rename of ${node.from} to ${node.to} already deleted Node ${node.from}, and its pods were garbage-collected; the workload now runs on ${node.to}. To go back, run a new plan that renames ${node.to} to ${node.from}`,
    );
  }
}

/** Labels, annotations, taints and schedulability of the old Node as recorded, as a merge patch. */
function restorePatch(snapshot: NodeSnapshot, current: V1Node): Record<string, unknown> {
  const labels: Record<string, string | null> = { ...snapshot.labels };
  for (const key of Object.keys(current.metadata?.labels ?? {})) if (!(key in labels)) labels[key] = null;
  const annotations: Record<string, string | null> = { ...snapshot.annotations };
  for (const key of Object.keys(current.metadata?.annotations ?? {})) {
    if (!(key in annotations) && key.startsWith('kube-node-rename.io/')) annotations[key] = null;
  }
  const managed = (current.spec?.taints ?? []).filter((t) => t.key.startsWith('node.kubernetes.io/'));
  const taints = [...managed, ...snapshot.taints.filter((t) => !t.key.startsWith('node.kubernetes.io/'))];
  return {
    metadata: { labels, annotations, resourceVersion: current.metadata?.resourceVersion },
    spec: { taints, unschedulable: snapshot.unschedulable },
  };
}

/** Lists regular files and links below a folder on the host, as absolute paths. */
async function listBackup(host: HostRunner, dir: string): Promise<string[]> {
  const result = await host.script(`list ${dir}`, '[ -d "$1" ] || exit 0\nfind "$1" \\( -type f -o -type l \\) -print', [dir]);
  return result.stdout.split('\n').filter(Boolean).sort();
}

/**
 * Puts the host back as the backup folder recorded it. The folder, not the state, drives this,
 * because a step that died between changing a file and recording the change still left its
 * backup copy there.
 */
async function restoreHost(input: RollbackInput, settings: RecordedSettings, actions: string[]): Promise<void> {
  const { services, plan, node, record, log } = input;
  const address = node.host ?? (record.outputs('preflight-cluster')?.address as string | undefined);
  if (!address) throw new RollbackRefusedError(`no address is recorded for ${node.from}; add host: ADDRESS to its plan entry and run rollback again`);
  const host = services.hostFor(node, address, log);
  const root = backupRoot(plan, node);
  const aside = `${root}/rollback-${services.now().toISOString().replace(/[:.]/g, '')}`;

  await systemctl(host, 'stop', settings.unit);
  actions.push(`stopped ${settings.unit} on ${host.target}`);

  // Credentials: the new name's go aside, the old ones (moved by restart-kubelet) come back.
  const saved = (await listBackup(host, `${root}/credentials`)).filter((file) => !/\.\d+$/.test(file));
  if (saved.length > 0) {
    const current = await listHostFiles(host, settings.certDir, 'kubelet-client-*');
    const setAside = await moveIntoBackup(host, aside, [settings.kubeconfig, ...current]);
    if (setAside.length > 0) actions.push(`moved the new name's credentials (${setAside.map((m) => m.path).join(', ')}) into ${aside}`);
    const kubeconfigName = settings.kubeconfig.slice(settings.kubeconfig.lastIndexOf('/') + 1);
    const moves: MovedFile[] = saved.map((backup) => {
      const name = backup.slice(backup.lastIndexOf('/') + 1);
      return { backup, path: name === kubeconfigName ? settings.kubeconfig : `${settings.certDir}/${name}` };
    });
    const restored = await restoreFromBackup(host, moves, aside);
    if (restored.length > 0) actions.push(`restored ${restored.map((m) => m.path).join(', ')} from the backup`);
  }

  // Files changed in place: each has its first copy under files/, at its own path.
  const filesRoot = `${root}/files`;
  const copies = await listBackup(host, filesRoot);
  let unitChanged = false;
  for (const copy of copies) {
    const original = copy.slice(filesRoot.length);
    await host.script(`restore ${original}`, 'set -e\ncp -p -- "$1" "$2"', [copy, original]);
    actions.push(`restored ${original} from ${copy}`);
    if (original.includes('/systemd/')) unitChanged = true;
  }

  // Files the rename created where none was before have no copy: set them aside.
  const unitFile = settings.unit.endsWith('.service') ? settings.unit : `${settings.unit}.service`;
  const dropIn = `/etc/systemd/system/${unitFile}.d/${DROP_IN_NAME}`;
  const created = [dropIn, settings.bootstrapKubeconfig].filter((path) => !copies.includes(`${filesRoot}${path}`));
  for (const path of created) {
    if (path === settings.bootstrapKubeconfig && !record.started('bootstrap-credentials')) continue;
    if (!(await hostPathExists(host, path))) continue;
    await moveIntoBackup(host, aside, [path]);
    actions.push(`moved ${path}, which the rename created, into ${aside}`);
    if (path === dropIn) unitChanged = true;
  }

  if (unitChanged) await host.script('systemctl daemon-reload', 'systemctl daemon-reload');
  await systemctl(host, 'start', settings.unit);
  actions.push(`started ${settings.unit} under the old name`);
}

/**
 * Rolls one node back. Safe to run again: each action checks the current state first. Throws
 * RollbackRefusedError when rolling back would do harm.
 */
export async function rollbackNode(input: RollbackInput): Promise<RollbackResult> {
  const { services, node, record } = input;
  const { kube } = services;
  checkRollbackSafe(node, record);
  const actions: string[] = [];

  const settings = record.outputs('preflight-host')?.settings as unknown as RecordedSettings | undefined;
  if (settings && record.started('configure-kubelet')) await restoreHost(input, settings, actions);
  else actions.push('the host was not changed: the rename stopped before it read the host');

  const recorded = record.outputs('snapshot-node')?.snapshot;
  const snapshot = recorded ? snapshotFromJson(recorded) : undefined;

  // The new Node is removed only when it is this rename's: it names the old node, or it did not
  // exist when the rename started (a Node of another plan entry is never touched).
  const newNode = await kube.getNode(node.to);
  const takenByChain = input.plan.spec.nodes.some((other) => other.from === node.to);
  const ours = newNode?.metadata?.annotations?.[PREVIOUS_NAME_ANNOTATION] === node.from;
  if (newNode && (ours || (!takenByChain && snapshot && newNode.metadata?.creationTimestamp && new Date(newNode.metadata.creationTimestamp) >= new Date(snapshot.capturedAt)))) {
    await kube.deleteNode(node.to, newNode.metadata?.uid ?? '');
    actions.push(`deleted Node ${node.to} (UID ${newNode.metadata?.uid}), which the rename had registered`);
  }

  if (snapshot) {
    let oldNode = await kube.getNode(node.from);
    if (!oldNode) {
      oldNode = await kube.createNode({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: node.from, labels: snapshot.labels, annotations: snapshot.annotations },
        spec: { taints: snapshot.taints, unschedulable: snapshot.unschedulable },
      }).catch(async (error: unknown) => {
        // The kubelet may register the Node first; then restore its metadata below.
        const existing = await kube.getNode(node.from);
        if (existing) return existing;
        throw error;
      });
      actions.push(`re-created Node ${node.from} from its snapshot`);
    }
    // The kubelet updates its Node all the time, so a patch based on a stale read may conflict.
    for (let attempt = 1; ; attempt++) {
      try {
        await kube.mergePatchNode(node.from, restorePatch(snapshot, oldNode));
        break;
      } catch (error) {
        if (!(error instanceof TransientStepError) || attempt >= 10) throw error;
        await new Promise((resolve) => setTimeout(resolve, 1000));
        oldNode = (await kube.getNode(node.from)) ?? oldNode;
      }
    }
    actions.push(`restored the labels, annotations, taints and schedulability of Node ${node.from} from its snapshot`);
    if (record.started('configure-kubelet')) {
      await kube.waitFor<V1Node>('/api/v1/nodes', `metadata.name=${node.from}`, {
        description: `Node ${node.from} to be Ready again`,
        timeoutMs: input.plan.spec.rename.readyTimeoutMs,
        signal: input.signal,
        read: () => kube.getNode(node.from),
        test: (current) => nodeReady(current),
      });
      actions.push(`Node ${node.from} is Ready`);
    }
  } else if (record.succeeded('pods') && record.outputs('pods')?.cordoned === true) {
    await kube.mergePatchNode(node.from, { spec: { unschedulable: false } });
    actions.push(`uncordoned Node ${node.from}`);
  }

  const bootstrapId = record.outputs('bootstrap-credentials')?.bootstrapId;
  if (typeof bootstrapId === 'string' && (await kube.deleteSecret('kube-system', `bootstrap-token-${bootstrapId}`))) {
    actions.push(`deleted bootstrap token Secret bootstrap-token-${bootstrapId}`);
  }
  const address = node.host ?? (record.outputs('preflight-cluster')?.address as string | undefined);
  if (address && record.started('bootstrap-credentials')) {
    const deleted = await deleteRecordedTokens(input, services.hostFor(node, address, input.log));
    if (deleted.length > 0) actions.push(`deleted bootstrap token Secrets ${deleted.join(', ')}`);
  }
  return { actions };
}
