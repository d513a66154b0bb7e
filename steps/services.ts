// The services the rename steps are given (the Kubernetes client, a way to reach each host) and
// helpers that several steps share.
import type { Logger, PlanNode, StepContext, StepOutputs } from '../engine/step.js';
import { createHostRunner, type HostRunner, type SshAccess } from './host.js';
import type { KubeClient } from './kube.js';

export interface RenameServices {
  kube: KubeClient;
  access: SshAccess;
  /** Reaches one host; `address` is the plan's `host` or the old Node's InternalIP. */
  hostFor(node: PlanNode, address: string, log: Logger): HostRunner;
  now(): Date;
}

export type RenameContext = StepContext<RenameServices>;

/**
 * Retries for steps that call the API server or a host: about a minute of backoff in all
 * (1, 2, 4, 8, then 10 s), long enough to ride out an API server restart or an sshd restart.
 */
export const API_RETRY = { retries: 8, minTimeoutMs: 1000, maxTimeoutMs: 10_000 };

/** Annotation on the new Node that names the Node it was renamed from. */
export const PREVIOUS_NAME_ANNOTATION = 'kube-node-rename.io/previous-name';
/** Annotation on the new Node with the time the rename carried metadata over (RFC 3339). */
export const RENAMED_AT_ANNOTATION = 'kube-node-rename.io/renamed-at';
/** Label on bootstrap token Secrets that the tool creates, with the old node name as value. */
export const TOKEN_NODE_LABEL = 'kube-node-rename.io/node';

/** A rename that cannot go on until a person changes something; never retried. */
export class RenameBlockedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RenameBlockedError';
  }
}

export function defaultHostFor(access: SshAccess) {
  return (node: PlanNode, address: string, log: Logger): HostRunner =>
    createHostRunner({
      access,
      address,
      ...(node.user ? { user: node.user } : {}),
      ...(node.port ? { port: node.port } : {}),
      log,
    });
}

/** Outputs of an earlier step that must exist because the engine ran it first. */
export function requireOutputs(ctx: RenameContext, step: string): StepOutputs {
  const outputs = ctx.outputs(step);
  if (!outputs) {
    throw new Error(`the state has no outputs of step ${ctx.node.from}/${step}, which runs before ${ctx.stepId}; start the plan over with --start-over`);
  }
  return outputs;
}

/** The address the host is reached at: the plan's `host`, else the old Node's InternalIP. */
export function hostAddress(ctx: RenameContext): string {
  if (ctx.node.host) return ctx.node.host;
  const address = requireOutputs(ctx, 'preflight-cluster').address;
  if (typeof address !== 'string' || !address) {
    throw new Error(`node ${ctx.node.from} has no host in the plan and its Node had no InternalIP; add host: ADDRESS to its entry`);
  }
  return address;
}

export function hostOf(ctx: RenameContext): HostRunner {
  return ctx.services.hostFor(ctx.node, hostAddress(ctx), ctx.log);
}

/** Where the tool keeps copies of what it changes or moves on a host, per plan and node. */
export function backupDir(ctx: RenameContext): string {
  return `/var/lib/kube-node-rename/backup/${ctx.plan.metadata.name}/${ctx.node.from}`;
}
