// Draining a node through the Eviction API, so PodDisruptionBudgets are honoured.
import { ApiException, type V1Pod } from '@kubernetes/client-node';
import { translateError } from './kube.js';
import { RenameBlockedError, type RenameContext } from './services.js';

function podName(pod: V1Pod): string {
  return `${pod.metadata?.namespace}/${pod.metadata?.name}`;
}

/** Pods a drain evicts: not DaemonSet pods (their controller puts them back), not mirror pods, not finished pods. */
export function podsToEvict(pods: V1Pod[]): V1Pod[] {
  return pods.filter((pod) => {
    if (pod.metadata?.annotations?.['kubernetes.io/config.mirror']) return false;
    if ((pod.metadata?.ownerReferences ?? []).some((o) => o.kind === 'DaemonSet')) return false;
    const phase = pod.status?.phase;
    return phase !== 'Succeeded' && phase !== 'Failed';
  });
}

/**
 * Evicts each pod, retrying those a PodDisruptionBudget protects (HTTP 429) until the drain
 * timeout, then fails naming the pods that still block it. Returns the evicted pods' names.
 */
export async function evictPods(ctx: RenameContext, pods: V1Pod[]): Promise<string[]> {
  const deadline = Date.now() + ctx.plan.spec.rename.drainTimeoutMs;
  const evicted: string[] = [];
  let pending = pods;
  while (pending.length > 0) {
    const blocked: V1Pod[] = [];
    for (const pod of pending) {
      try {
        await ctx.services.kube.evictPod(pod);
        evicted.push(podName(pod));
      } catch (error) {
        if (error instanceof ApiException && error.code === 404) continue;
        if (error instanceof ApiException && error.code === 429) {
          blocked.push(pod);
          continue;
        }
        throw translateError(`evict pod ${podName(pod)}`, error);
      }
    }
    pending = blocked;
    if (pending.length === 0) break;
    if (Date.now() >= deadline) {
      throw new RenameBlockedError(
        `drain of Node ${ctx.node.from} timed out after ${ctx.plan.spec.rename.drainTimeoutMs / 1000} s; PodDisruptionBudgets still block: ${pending.map(podName).join(', ')}. Scale up those workloads or relax their budgets, then resume`,
      );
    }
    ctx.log.info('eviction blocked by a PodDisruptionBudget, retrying', { pods: pending.map(podName) });
    await new Promise((resolve) => setTimeout(resolve, 5000));
    if (ctx.signal.aborted) throw ctx.signal.reason ?? new Error('aborted');
  }
  return evicted;
}
