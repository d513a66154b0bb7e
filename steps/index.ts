// The rename recipe: the chain of steps that renames one node, and the services they share.
import type { Recipe } from '../engine/step.js';
import { clusterSteps, REQUIRED_ACCESS } from './cluster-steps.js';
import { credentialSteps } from './credential-steps.js';
import { KubeClient } from './kube.js';
import { kubeletSteps } from './kubelet-steps.js';
import { rollbackNode } from './rollback.js';
import { defaultHostFor, type RenameServices } from './services.js';

export type { RenameServices } from './services.js';

export function createRenameRecipe(): Recipe<RenameServices> {
  return {
    name: 'rename',
    steps: [
      clusterSteps.preflightCluster,
      kubeletSteps.preflightHost,
      clusterSteps.snapshotStep,
      credentialSteps.bootstrapCredentials,
      clusterSteps.podsStep,
      kubeletSteps.configureKubelet,
      kubeletSteps.restartKubelet,
      credentialSteps.approveCsr,
      clusterSteps.waitReady,
      clusterSteps.carryMetadata,
      kubeletSteps.restoreRotation,
      clusterSteps.deleteOldNode,
      credentialSteps.verifyCleanup,
    ],
    rollback: rollbackNode,
    async createServices({ plan, kubeconfig, context, dryRun }) {
      const access = plan.spec.access;
      const kube = KubeClient.fromFile(kubeconfig, context);
      if (!dryRun) await kube.checkConnection(REQUIRED_ACCESS);
      return {
        kube,
        access,
        hostFor: defaultHostFor(access),
        now: () => new Date(),
      };
    },
  };
}
