// The steps that give the kubelet a credential under its new name: a bootstrap token, the
// approval of its client CSR, and the clean-up of the token afterwards.
import type { V1CertificateSigningRequest, V1Node } from '@kubernetes/client-node';
import type { StepDefinition, StepResult } from '../engine/step.js';
import { TransientStepError } from '../engine/step.js';
import {
  bootstrapTokenSecret,
  generateBootstrapToken,
  readClusterEndpoint,
  renderBootstrapKubeconfig,
} from './bootstrap.js';
import { deniedOrFailed, isApproved, isForNode, kubeletCsrProblems } from './csr.js';
import type { HostRunner } from './host.js';
import { appendHostLine, backupHostFile, readClientIdentity, readHostFile, removeHostFile, writeHostFile } from './host-files.js';
import { nodeReady } from './kube.js';
import { recordedHostSettings } from './kubelet-steps.js';
import {
  backupDir,
  hostOf,
  RenameBlockedError,
  type RenameContext,
  type RenameServices,
} from './services.js';
import { API_RETRY } from './services.js';

type Step = StepDefinition<RenameServices>;

/** Returns true when the kubelet on the host already has a valid client certificate for the new name. */
async function hostHasNewIdentity(ctx: RenameContext): Promise<boolean> {
  const settings = recordedHostSettings(ctx);
  const identity = await readClientIdentity(hostOf(ctx), settings.kubeconfig);
  return identity?.commonName === `system:node:${ctx.node.to}` && identity.notAfter > ctx.services.now();
}

/** Returns the host file that lists the id of every bootstrap token this rename created, one per line. */
export function tokenIdsFile(ctx: { plan: { metadata: { name: string } }; node: { from: string } }): string {
  return `/var/lib/kube-node-rename/backup/${ctx.plan.metadata.name}/${ctx.node.from}/bootstrap-token-ids`;
}

/** Deletes the Secrets of the tokens listed on the host, then empties the list; returns the deleted names. */
export async function deleteRecordedTokens(
  ctx: { plan: { metadata: { name: string } }; node: { from: string }; services: RenameServices },
  host: HostRunner,
): Promise<string[]> {
  const file = tokenIdsFile(ctx);
  const ids = ((await readHostFile(host, file)) ?? '').split('\n').filter((id) => /^[a-z0-9]{6}$/.test(id));
  const deleted: string[] = [];
  for (const id of ids) {
    if (await ctx.services.kube.deleteSecret('kube-system', `bootstrap-token-${id}`)) deleted.push(`bootstrap-token-${id}`);
  }
  if (ids.length > 0) await writeHostFile(host, file, '', { mode: '600' });
  return deleted;
}

const bootstrapCredentials: Step = {
  name: 'bootstrap-credentials',
  // A fresh token every time: checking a token already on the host would need read access to
  // every Secret in kube-system, which the tool's ClusterRole does not grant. Each token's id is
  // written to the host's backup folder before its Secret is created, so a token made by an
  // attempt that died before recording it is still found and deleted.
  description: 'create a short-lived bootstrap token and write the bootstrap kubeconfig on the host',
  timeoutMs: 180_000,
  retry: API_RETRY,
  touchesHost: true,
  dryRun: (ctx) => {
    const settings = recordedHostSettings(ctx, true);
    const path = settings?.bootstrapKubeconfig ?? 'the bootstrap kubeconfig';
    return `create a bootstrap token valid for ${ctx.plan.spec.rename.bootstrapTokenTTLMs / 1000} s and write ${path} (mode 0600, the previous file kept in the backup folder)`;
  },
  async run(ctx): Promise<StepResult> {
    const { kube } = ctx.services;
    const host = hostOf(ctx);
    const settings = recordedHostSettings(ctx);
    if (await hostHasNewIdentity(ctx)) {
      return { kind: 'already-done', outputs: { wroteFile: false, hadFile: false, bootstrapId: null }, summary: 'the kubelet already runs under the new name' };
    }
    const now = ctx.services.now();
    const endpoint =
      (await readClusterEndpoint(host, settings.kubeconfig)) ?? (await readClusterEndpoint(host, settings.bootstrapKubeconfig));
    if (!endpoint) {
      throw new RenameBlockedError(
        `neither ${settings.kubeconfig} nor ${settings.bootstrapKubeconfig} on ${host.target} names the API server, so no bootstrap kubeconfig can be written; restore the kubelet's kubeconfig or write the bootstrap kubeconfig by hand`,
      );
    }
    // Tokens of earlier attempts are no longer needed: the kubelet gets the new one.
    await deleteRecordedTokens(ctx, host);
    const token = generateBootstrapToken();
    const expiresAt = new Date(now.getTime() + ctx.plan.spec.rename.bootstrapTokenTTLMs);
    await appendHostLine(host, tokenIdsFile(ctx), token.id);
    await kube.createSecret('kube-system', bootstrapTokenSecret(token, { node: ctx.node.from, plan: ctx.plan.metadata.name, expiresAt }));
    const hadFile = (await backupHostFile(host, settings.bootstrapKubeconfig, backupDir(ctx))) !== undefined;
    await writeHostFile(host, settings.bootstrapKubeconfig, renderBootstrapKubeconfig(endpoint, token), { mode: '600', forceMode: true });
    ctx.log.info('wrote bootstrap kubeconfig', { path: settings.bootstrapKubeconfig, bootstrapId: token.id, expiresAt: expiresAt.toISOString() });
    return {
      kind: 'done',
      outputs: { wroteFile: true, hadFile, bootstrapId: token.id, expiresAt: expiresAt.toISOString() },
      summary: `bootstrap token ${token.id} valid until ${expiresAt.toISOString()}`,
    };
  },
};

function csrAge(csr: V1CertificateSigningRequest): number {
  return new Date(csr.metadata?.creationTimestamp ?? 0).getTime();
}

const approveCsr: Step = {
  name: 'approve-csr',
  description: 'find the kubelet\'s client CSR for the new name, check it, and approve it or wait for its approval',
  timeoutMs: 3_600_000,
  retry: API_RETRY,
  dryRun: (ctx) =>
    ctx.plan.spec.rename.csrApproval === 'auto'
      ? `find the CSR for system:node:${ctx.node.to}, check signer, subject, usages and requester, and approve it`
      : `wait for kube-controller-manager to approve the CSR for system:node:${ctx.node.to}`,
  async run(ctx): Promise<StepResult> {
    const { kube } = ctx.services;
    const approval = ctx.plan.spec.rename.csrApproval;
    const existing = await kube.getNode(ctx.node.to);
    if (existing && (await hostHasNewIdentity(ctx))) {
      return { kind: 'already-done', summary: 'the kubelet already holds a certificate for the new name' };
    }

    const bootstrapId = ctx.outputs('bootstrap-credentials')?.bootstrapId;
    // Only a CSR sent with the token this rename created is approved, never one from another token.
    const expectedRequester = typeof bootstrapId === 'string' ? `system:bootstrap:${bootstrapId}` : undefined;
    const rejected = new Map<string, string>();
    const approvedByUs: string[] = [];
    const findIssued = async (): Promise<V1CertificateSigningRequest | undefined> => {
      const candidates = (await kube.listKubeletClientCsrs()).filter((c) => isForNode(c, ctx.node.to)).sort((a, b) => csrAge(b) - csrAge(a));
      for (const csr of candidates) {
        const name = csr.metadata?.name ?? '';
        if (csr.status?.certificate && isApproved(csr)) return csr;
        const failure = deniedOrFailed(csr);
        if (failure) {
          rejected.set(name, failure);
          continue;
        }
        if (isApproved(csr) || approval !== 'auto' || approvedByUs.includes(name)) continue;
        const problems = kubeletCsrProblems(csr, ctx.node.to, expectedRequester);
        if (problems.length > 0) {
          if (!rejected.has(name)) ctx.log.warn('not approving a CSR that does not look like a bootstrapping kubelet', { csr: name, problems });
          rejected.set(name, problems.join('; '));
          continue;
        }
        await kube.approveCsr(csr, `kube-node-rename: rename of ${ctx.node.from} to ${ctx.node.to} (plan ${ctx.plan.metadata.name})`);
        approvedByUs.push(name);
        ctx.log.info('approved CSR', { csr: name, requester: csr.spec.username });
      }
      return undefined;
    };

    const issued = (await kube.waitFor<V1CertificateSigningRequest>('/apis/certificates.k8s.io/v1/certificatesigningrequests', undefined, {
      description: `an issued client certificate for system:node:${ctx.node.to}`,
      timeoutMs: ctx.plan.spec.rename.csrTimeoutMs,
      signal: ctx.signal,
      read: findIssued,
      test: (csr) => (csr && isForNode(csr, ctx.node.to) && csr.status?.certificate && isApproved(csr) ? csr : undefined),
    }).catch(async (error: unknown) => {
      if (!(error instanceof TransientStepError) || !error.message.startsWith('timed out')) throw error;
      // One last look, since approval may have raced with the deadline.
      const late = await findIssued();
      if (late) return late;
      const detail = [...rejected].map(([name, why]) => `${name}: ${why}`).join('; ');
      const hint =
        approval === 'auto'
          ? 'check the kubelet log on the host (journalctl -u kubelet) for why it sends no valid CSR'
          : 'check that kube-controller-manager runs the csrapproving controller and that the bootstrappers group is bound to the nodeclient ClusterRole, or set rename.csrApproval: auto';
      throw new RenameBlockedError(
        `no client certificate for system:node:${ctx.node.to} was issued within ${ctx.plan.spec.rename.csrTimeoutMs / 1000} s${detail ? ` (CSRs seen: ${detail})` : ''}; ${hint}, then resume or roll back`,
      );
    })) as V1CertificateSigningRequest;
    const name = issued.metadata?.name ?? '';
    return { kind: 'done', outputs: { csr: name, approvedByTool: approvedByUs.includes(name) }, summary: `CSR ${name} approved and issued` };
  },
};

const verifyCleanup: Step = {
  name: 'verify-cleanup',
  description: 'confirm the new Node is Ready and the old one gone, then remove the bootstrap token and kubeconfig the tool created',
  timeoutMs: 180_000,
  retry: API_RETRY,
  dryRun: (ctx) => `check Node ${ctx.node.to} is Ready and ${ctx.node.from} is gone; delete the bootstrap token Secret this rename created`,
  async run(ctx): Promise<StepResult> {
    const { kube } = ctx.services;
    const [newNode, oldNode] = await Promise.all([kube.getNode(ctx.node.to), kube.getNode(ctx.node.from)]);
    if (!nodeReady(newNode as V1Node | undefined)) throw new TransientStepError(`Node ${ctx.node.to} is not Ready`);
    // In a chain another node may already have registered under the old name, so only the
    // recorded Node counts.
    const snapshot = ctx.outputs('snapshot-node')?.snapshot;
    const recordedUid = snapshot && typeof snapshot === 'object' && !Array.isArray(snapshot) ? snapshot.uid : undefined;
    if (oldNode && (recordedUid === undefined || oldNode.metadata?.uid === recordedUid)) {
      throw new TransientStepError(`Node ${ctx.node.from} still exists`);
    }

    const credentials = ctx.outputs('bootstrap-credentials');
    const removed: string[] = [];
    if (typeof credentials?.bootstrapId === 'string') {
      const name = `bootstrap-token-${credentials.bootstrapId}`;
      if (await kube.deleteSecret('kube-system', name)) removed.push(name);
    }
    if (recordedHostSettings(ctx, true)) removed.push(...(await deleteRecordedTokens(ctx, hostOf(ctx))));
    let removedFile = false;
    if (credentials?.wroteFile === true && credentials.hadFile === false) {
      // kubeadm removes the bootstrap kubeconfig after a join; leave the host the way it was.
      const settings = recordedHostSettings(ctx);
      await removeHostFile(hostOf(ctx), settings.bootstrapKubeconfig);
      removedFile = true;
    }
    return {
      kind: removed.length > 0 || removedFile ? 'done' : 'already-done',
      outputs: { deletedObjects: removed, removedBootstrapKubeconfig: removedFile },
      summary: `removed ${removed.length} bootstrap token Secret(s)${removedFile ? ' and the bootstrap kubeconfig' : ''}`,
    };
  },
};

export const credentialSteps = { bootstrapCredentials, approveCsr, verifyCleanup };
