// The steps of a rename that act only on the Kubernetes API.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { StepDefinition, StepResult } from '../engine/step.js';
import { TransientStepError } from '../engine/step.js';
import { describeAccess, nodeReady, internalAddress, type AccessCheck } from './kube.js';
import { computeCarryOver, snapshotFromJson, snapshotNode, snapshotToJson } from './node-metadata.js';
import { evictPods, podsToEvict } from './pods.js';
import { recordedHostSettings } from './kubelet-steps.js';
import { kubeletJournalTail } from './kubelet-host.js';
import { hostOf, PREVIOUS_NAME_ANNOTATION, RenameBlockedError, requireOutputs, type RenameServices } from './services.js';
import { API_RETRY } from './services.js';

type Step = StepDefinition<RenameServices>;

/** The API calls a rename makes, checked with SelfSubjectAccessReview before anything changes. */
export const REQUIRED_ACCESS: AccessCheck[] = [
  { verb: 'get', resource: 'nodes' },
  { verb: 'watch', resource: 'nodes' },
  { verb: 'patch', resource: 'nodes' },
  { verb: 'delete', resource: 'nodes' },
  { verb: 'list', resource: 'pods' },
  { verb: 'create', resource: 'pods', subresource: 'eviction' },
  { verb: 'list', resource: 'persistentvolumes' },
  { verb: 'create', resource: 'secrets', namespace: 'kube-system' },
  { verb: 'delete', resource: 'secrets', namespace: 'kube-system' },
  { verb: 'list', resource: 'certificatesigningrequests', group: 'certificates.k8s.io' },
  { verb: 'watch', resource: 'certificatesigningrequests', group: 'certificates.k8s.io' },
  { verb: 'update', resource: 'certificatesigningrequests', group: 'certificates.k8s.io', subresource: 'approval' },
  { verb: 'watch', resource: 'leases', group: 'coordination.k8s.io', namespace: 'kube-node-lease' },
  { verb: 'approve', resource: 'signers', group: 'certificates.k8s.io', name: 'kubernetes.io/kube-apiserver-client-kubelet' },
];

/** True when the rename of this node finished in an earlier run: the old Node is gone and the new one names it. */
export function renamedEarlier(oldNode: V1Node | undefined, newNode: V1Node | undefined, from: string): boolean {
  return !oldNode && newNode?.metadata?.annotations?.[PREVIOUS_NAME_ANNOTATION] === from;
}

function isBarePod(pod: V1Pod): boolean {
  return (pod.metadata?.ownerReferences ?? []).length === 0 && !pod.metadata?.annotations?.['kubernetes.io/config.mirror'];
}

const preflightCluster: Step = {
  name: 'preflight-cluster',
  description: 'check both Node names, the tool\'s permissions, and what the rename will disturb',
  timeoutMs: 120_000,
  retry: API_RETRY,
  dryRun: (ctx) => `check that Node ${ctx.node.from} exists, that ${ctx.node.to} is free, and that the tool's credentials allow every call of the rename`,
  async run(ctx): Promise<StepResult> {
    const { kube } = ctx.services;
    const { from, to } = ctx.node;
    const [oldNode, newNode] = await Promise.all([kube.getNode(from), kube.getNode(to)]);
    if (renamedEarlier(oldNode, newNode, from)) {
      return {
        kind: 'already-done',
        outputs: { address: ctx.node.host ?? internalAddress(newNode) ?? null, renamedEarlier: true },
        summary: `Node ${to} already carries ${PREVIOUS_NAME_ANNOTATION}=${from} and ${from} is gone`,
      };
    }
    if (!oldNode) {
      throw new RenameBlockedError(`Node ${from} not found on ${kube.server}; check the name with "kubectl get nodes" and fix the plan entry`);
    }
    const freedByPlan = ctx.plan.spec.nodes.some((n) => n.from === to);
    const ours = newNode?.metadata?.annotations?.[PREVIOUS_NAME_ANNOTATION] === from;
    if (newNode && !freedByPlan && !ours) {
      throw new RenameBlockedError(
        `Node ${to} already exists and is not a rename of ${from}; choose another new name, or delete Node ${to} first if it is stale`,
      );
    }

    const denied = await kube.deniedAccess(REQUIRED_ACCESS);
    if (denied.length > 0) {
      throw new RenameBlockedError(
        `the tool's credentials lack permissions the rename needs: ${denied.map(describeAccess).join('; ')}. Bind the ClusterRole in deploy/clusterrole.yaml to the user or service account of your kubeconfig`,
      );
    }

    const pods = await kube.podsOnNode(from);
    const bare = pods.filter(isBarePod).map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`);
    const volumes = (await kube.persistentVolumes())
      .filter((pv) => JSON.stringify(pv.spec?.nodeAffinity ?? {}).includes(`"${from}"`))
      .map((pv) => pv.metadata?.name ?? '');
    if (pods.length > 0) {
      ctx.log.warn('pods bound to the node will be stopped by the kubelet under its new name', { pods: pods.length, barePods: bare });
    }
    if (bare.length > 0) {
      ctx.log.warn('pods without a controller will be lost when the old Node is deleted', { barePods: bare });
    }
    if (volumes.length > 0) {
      ctx.log.warn('PersistentVolumes name the old node in their node affinity and will not follow the rename', { persistentVolumes: volumes });
    }
    const address = ctx.node.host ?? internalAddress(oldNode);
    if (!address) {
      throw new RenameBlockedError(`Node ${from} reports no InternalIP and the plan gives no host for it; add host: ADDRESS to its entry`);
    }
    return {
      kind: 'done',
      outputs: { address, oldUid: oldNode.metadata?.uid ?? '', boundPods: pods.length, barePods: bare, persistentVolumes: volumes },
      summary: `${pods.length} pod(s) bound, ${bare.length} without a controller, ${volumes.length} PersistentVolume(s) pinned to ${from}`,
    };
  },
};

const snapshotStep: Step = {
  name: 'snapshot-node',
  description: 'record the old Node\'s labels, annotations, taints and schedulability in the run state',
  timeoutMs: 60_000,
  retry: API_RETRY,
  dryRun: (ctx) => `read Node ${ctx.node.from} and record its labels, annotations, taints and schedulability`,
  async run(ctx): Promise<StepResult> {
    const { kube } = ctx.services;
    const oldNode = await kube.getNode(ctx.node.from);
    if (!oldNode) {
      const newNode = await kube.getNode(ctx.node.to);
      if (renamedEarlier(oldNode, newNode, ctx.node.from)) {
        return { kind: 'already-done', outputs: { snapshot: null }, summary: 'renamed in an earlier run; nothing to record' };
      }
      throw new RenameBlockedError(`Node ${ctx.node.from} disappeared before its snapshot was taken; nothing was changed, check who deleted it`);
    }
    const snapshot = snapshotNode(oldNode, ctx.services.now());
    return {
      kind: 'done',
      outputs: { snapshot: snapshotToJson(snapshot) },
      summary: `${Object.keys(snapshot.labels).length} labels, ${Object.keys(snapshot.annotations).length} annotations, ${snapshot.taints.length} taints`,
    };
  },
};

const podsStep: Step = {
  name: 'pods',
  description: 'keep, cordon or drain the pods of the old Node, as the plan says',
  timeoutMs: 3_600_000,
  retry: API_RETRY,
  dryRun: (ctx) => {
    const mode = ctx.plan.spec.rename.pods;
    if (mode === 'keep') return 'leave pods alone (the kubelet stops them once it runs under the new name)';
    if (mode === 'cordon') return `cordon Node ${ctx.node.from}`;
    return `cordon Node ${ctx.node.from} and evict its pods, honouring PodDisruptionBudgets, within ${ctx.plan.spec.rename.drainTimeoutMs / 1000} s`;
  },
  async run(ctx): Promise<StepResult> {
    const { kube } = ctx.services;
    const mode = ctx.plan.spec.rename.pods;
    if (mode === 'keep') return { kind: 'already-done', summary: 'pods: keep' };
    const node = await kube.getNode(ctx.node.from);
    if (!node) return { kind: 'already-done', summary: `Node ${ctx.node.from} is gone` };
    let cordoned = false;
    if (!node.spec?.unschedulable) {
      await kube.mergePatchNode(ctx.node.from, { spec: { unschedulable: true } });
      cordoned = true;
    }
    if (mode === 'cordon') return { kind: cordoned ? 'done' : 'already-done', outputs: { cordoned } };
    const pods = podsToEvict(await kube.podsOnNode(ctx.node.from));
    if (pods.length === 0) return { kind: cordoned ? 'done' : 'already-done', outputs: { cordoned, evicted: [] } };
    const evicted = await evictPods(ctx, pods);
    return { kind: 'done', outputs: { cordoned, evicted }, summary: `evicted ${evicted.length} pod(s)` };
  },
};

const waitReady: Step = {
  name: 'wait-ready',
  description: 'wait until the new Node is Ready',
  timeoutMs: 3_600_000,
  retry: API_RETRY,
  dryRun: (ctx) => `watch Node ${ctx.node.to} until it is Ready, at most ${ctx.plan.spec.rename.readyTimeoutMs / 1000} s`,
  async run(ctx): Promise<StepResult> {
    const { kube } = ctx.services;
    const current = await kube.getNode(ctx.node.to);
    if (nodeReady(current)) return { kind: 'already-done' };
    try {
      await kube.waitFor<V1Node>('/api/v1/nodes', `metadata.name=${ctx.node.to}`, {
        description: `Node ${ctx.node.to} to become Ready`,
        timeoutMs: ctx.plan.spec.rename.readyTimeoutMs,
        signal: ctx.signal,
        read: () => kube.getNode(ctx.node.to),
        test: (node) => nodeReady(node),
      });
    } catch (error) {
      if (!(error instanceof TransientStepError) || !error.message.startsWith('timed out')) throw error;
      // Waiting again would not help, and the kubelet's log shows why it did not come up.
      const settings = recordedHostSettings(ctx, true);
      const journal = settings ? await kubeletJournalTail(hostOf(ctx), settings.unit, 5) : '';
      throw new RenameBlockedError(`${error.message}; resume when the kubelet is fixed, or roll back${journal ? `. Last lines of the kubelet log:\n${journal}` : ''}`);
    }
    return { kind: 'done' };
  },
};

const carryMetadata: Step = {
  name: 'carry-metadata',
  description: 'copy labels, annotations, taints and schedulability to the new Node and mark it with its previous name',
  timeoutMs: 120_000,
  retry: API_RETRY,
  dryRun: (ctx) => `patch Node ${ctx.node.to} with the labels, annotations and taints recorded from ${ctx.node.from}, and annotate ${PREVIOUS_NAME_ANNOTATION}=${ctx.node.from}`,
  async run(ctx): Promise<StepResult> {
    const { kube } = ctx.services;
    const recorded = requireOutputs(ctx, 'snapshot-node').snapshot;
    if (recorded === null) return { kind: 'already-done', summary: 'renamed in an earlier run' };
    const snapshot = snapshotFromJson(recorded);
    const current = await kube.getNode(ctx.node.to);
    if (!current) throw new TransientStepError(`Node ${ctx.node.to} is not registered yet`);
    const carry = computeCarryOver(snapshot, current, ctx.services.now());
    if (!carry.patch) return { kind: 'already-done', summary: 'the new Node already carries everything' };
    await kube.mergePatchNode(ctx.node.to, carry.patch);
    return {
      kind: 'done',
      outputs: { labels: carry.labels, annotations: carry.annotations, taints: carry.taints },
      summary: `${carry.labels.length} labels, ${carry.annotations.length} annotations, ${carry.taints.length} taints carried over`,
    };
  },
};

const deleteOldNode: Step = {
  name: 'delete-old-node',
  description: 'delete the old Node object, only if it is still the one that was recorded',
  timeoutMs: 120_000,
  retry: API_RETRY,
  releasesName: true,
  dryRun: (ctx) => `delete Node ${ctx.node.from} with a precondition on its recorded UID`,
  async run(ctx): Promise<StepResult> {
    const { kube } = ctx.services;
    const recorded = requireOutputs(ctx, 'snapshot-node').snapshot;
    const oldNode = await kube.getNode(ctx.node.from);
    if (!oldNode) return { kind: 'already-done', summary: `Node ${ctx.node.from} is already gone` };
    if (recorded === null) {
      throw new RenameBlockedError(`Node ${ctx.node.from} exists again although an earlier run renamed it; inspect it and delete it by hand if it is stale`);
    }
    const snapshot = snapshotFromJson(recorded);
    if (oldNode.metadata?.uid !== snapshot.uid) {
      throw new RenameBlockedError(
        `Node ${ctx.node.from} has UID ${oldNode.metadata?.uid}, not the recorded ${snapshot.uid}: it was re-created since the snapshot, so the tool will not delete it; inspect it and delete it by hand if it is stale`,
      );
    }
    const newNode = await kube.getNode(ctx.node.to);
    if (!nodeReady(newNode) || newNode?.metadata?.annotations?.[PREVIOUS_NAME_ANNOTATION] !== ctx.node.from) {
      throw new RenameBlockedError(`Node ${ctx.node.to} is not Ready with its metadata carried over, so Node ${ctx.node.from} is kept; resume the run to finish the earlier steps`);
    }
    const deleted = await kube.deleteNode(ctx.node.from, snapshot.uid);
    return { kind: deleted ? 'done' : 'already-done', outputs: { deletedUid: snapshot.uid } };
  },
};

export const clusterSteps = { preflightCluster, snapshotStep, podsStep, waitReady, carryMetadata, deleteOldNode };
