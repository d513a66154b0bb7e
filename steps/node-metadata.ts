// What a new Node inherits from the old one: pure functions over Node fields, used by the
// snapshot and carry-over steps and by rollback.
import type { V1Node, V1Taint } from '@kubernetes/client-node';
import type { JsonValue } from '../engine/step.js';
import { PREVIOUS_NAME_ANNOTATION, RENAMED_AT_ANNOTATION } from './services.js';

export interface NodeSnapshot {
  name: string;
  uid: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  taints: SnapshotTaint[];
  unschedulable: boolean;
  internalIP: string | null;
  podCIDRs: string[];
  providerID: string | null;
  capturedAt: string;
}

export interface SnapshotTaint {
  key: string;
  value?: string;
  effect: string;
}

/** Labels the kubelet sets on every registration from facts about the host; never copied. */
const KUBELET_LABELS = new Set([
  'kubernetes.io/hostname',
  'kubernetes.io/os',
  'kubernetes.io/arch',
  'beta.kubernetes.io/os',
  'beta.kubernetes.io/arch',
]);

/**
 * Labels the kubelet (with a cloud provider) or the cloud controller manager set. Copied only when
 * the new Node lacks them, because on bare metal an operator sets them by hand.
 */
const PROVIDER_LABELS = new Set([
  'topology.kubernetes.io/zone',
  'topology.kubernetes.io/region',
  'failure-domain.beta.kubernetes.io/zone',
  'failure-domain.beta.kubernetes.io/region',
  'node.kubernetes.io/instance-type',
  'beta.kubernetes.io/instance-type',
]);

/** Annotations that the kubelet, the controllers or CSI drivers write for the Node they run as. */
const OWNED_ANNOTATIONS = new Set([
  'node.alpha.kubernetes.io/ttl',
  'volumes.kubernetes.io/controller-managed-attach-detach',
  'csi.volume.kubernetes.io/nodeid',
]);

/** Taints that the node lifecycle controller or cloud provider manage; the new Node gets its own. */
function isManagedTaint(key: string): boolean {
  return key.startsWith('node.kubernetes.io/') || key === 'node.cloudprovider.kubernetes.io/uninitialized';
}

export function snapshotNode(node: V1Node, capturedAt: Date): NodeSnapshot {
  const spec = node.spec ?? {};
  const podCIDRs = spec.podCIDRs ?? (spec.podCIDR ? [spec.podCIDR] : []);
  return {
    name: node.metadata?.name ?? '',
    uid: node.metadata?.uid ?? '',
    labels: { ...(node.metadata?.labels ?? {}) },
    annotations: { ...(node.metadata?.annotations ?? {}) },
    taints: (spec.taints ?? []).map((t) => ({ key: t.key, ...(t.value !== undefined ? { value: t.value } : {}), effect: t.effect })),
    unschedulable: spec.unschedulable ?? false,
    internalIP: node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address ?? null,
    podCIDRs,
    providerID: spec.providerID ?? null,
    capturedAt: capturedAt.toISOString(),
  };
}

export function snapshotToJson(snapshot: NodeSnapshot): JsonValue {
  return JSON.parse(JSON.stringify(snapshot)) as JsonValue;
}

export function snapshotFromJson(value: JsonValue | undefined): NodeSnapshot {
  if (!value || typeof value !== 'object' || Array.isArray(value) || typeof value.uid !== 'string') {
    throw new Error('the recorded Node snapshot is missing or damaged; restore the state file from its journal or start over');
  }
  return value as unknown as NodeSnapshot;
}

function sameTaint(a: SnapshotTaint, b: SnapshotTaint): boolean {
  return a.key === b.key && a.effect === b.effect;
}

export interface CarryOver {
  /** Merge patch for the new Node, or undefined when it already carries everything. */
  patch: Record<string, unknown> | undefined;
  labels: string[];
  annotations: string[];
  taints: string[];
}

/**
 * Computes what the new Node lacks of the old one's labels, annotations, taints and
 * schedulability. The new Node's own values win where the kubelet sets them; everything else
 * takes the old Node's value.
 */
export function computeCarryOver(snapshot: NodeSnapshot, current: V1Node, renamedAt: Date): CarryOver {
  const labels: Record<string, string> = {};
  const currentLabels = current.metadata?.labels ?? {};
  for (const [key, value] of Object.entries(snapshot.labels)) {
    if (KUBELET_LABELS.has(key)) continue;
    if (PROVIDER_LABELS.has(key) && key in currentLabels) continue;
    if (currentLabels[key] !== value) labels[key] = value;
  }

  const annotations: Record<string, string> = {};
  const currentAnnotations = current.metadata?.annotations ?? {};
  for (const [key, value] of Object.entries(snapshot.annotations)) {
    if (OWNED_ANNOTATIONS.has(key) || key.startsWith('kube-node-rename.io/')) continue;
    if (currentAnnotations[key] !== value) annotations[key] = value;
  }
  if (currentAnnotations[PREVIOUS_NAME_ANNOTATION] !== snapshot.name) {
    annotations[PREVIOUS_NAME_ANNOTATION] = snapshot.name;
    annotations[RENAMED_AT_ANNOTATION] = renamedAt.toISOString();
  }

  const currentTaints: V1Taint[] = current.spec?.taints ?? [];
  const missingTaints = snapshot.taints.filter(
    (t) => !isManagedTaint(t.key) && !currentTaints.some((c) => sameTaint(t, { key: c.key, effect: c.effect })),
  );

  const patch: Record<string, unknown> = {};
  const metadata: Record<string, unknown> = {};
  if (Object.keys(labels).length > 0) metadata.labels = labels;
  if (Object.keys(annotations).length > 0) metadata.annotations = annotations;
  const spec: Record<string, unknown> = {};
  if (missingTaints.length > 0) spec.taints = [...currentTaints, ...missingTaints];
  if ((current.spec?.unschedulable ?? false) !== snapshot.unschedulable) spec.unschedulable = snapshot.unschedulable;
  if (Object.keys(metadata).length > 0) {
    // The resourceVersion makes the patch fail with a conflict if the Node changed since it was
    // read, so the taint list is never replaced from a stale copy.
    metadata.resourceVersion = current.metadata?.resourceVersion;
    patch.metadata = metadata;
  }
  if (Object.keys(spec).length > 0) {
    patch.spec = spec;
    patch.metadata = { ...(patch.metadata as object | undefined), resourceVersion: current.metadata?.resourceVersion };
  }

  return {
    patch: Object.keys(patch).length > 0 ? patch : undefined,
    labels: Object.keys(labels),
    annotations: Object.keys(annotations),
    taints: missingTaints.map((t) => `${t.key}:${t.effect}`),
  };
}
