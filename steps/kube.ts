// The one module that speaks to the Kubernetes API. The rest of steps/ uses these functions in
// our own terms (node absent = undefined, server trouble = TransientStepError).
import { homedir } from 'node:os';
import {
  ApiException,
  AuthenticationV1Api,
  AuthorizationV1Api,
  CertificatesV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  VersionApi,
  Watch,
  setHeaderOptions,
  type V1CertificateSigningRequest,
  type V1Lease,
  type V1Node,
  type V1PersistentVolume,
  type V1Pod,
  type V1Secret,
} from '@kubernetes/client-node';
import { TransientStepError } from '../engine/step.js';

/** The API server returned a status the caller did not expect. */
export class KubeApiError extends Error {
  constructor(readonly operation: string, readonly status: number, detail: string, options?: { cause?: unknown }) {
    super(`${operation} failed: HTTP ${status}${detail ? `: ${detail}` : ''}`, options);
    this.name = 'KubeApiError';
  }
}

function statusOf(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

function detailOf(error: unknown): string {
  if (!(error instanceof ApiException)) return error instanceof Error ? error.message : String(error);
  const body: unknown = error.body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      return parsed.message ?? body.slice(0, 300);
    } catch {
      return body.slice(0, 300);
    }
  }
  if (body && typeof body === 'object' && 'message' in body) return String((body as { message: unknown }).message);
  return '';
}

/**
 * Turns a client error into ours: connection failures, 409, 429 and 5xx are transient (the API
 * server may be restarting); other 4xx responses are final and carry the server's message.
 */
export function translateError(operation: string, error: unknown): Error {
  const status = statusOf(error);
  // 409 Conflict: the object changed since it was read; a retry reads it again.
  if (status === undefined || status === 409 || status === 429 || status >= 500) {
    const detail = status === undefined ? `cannot reach the API server (${networkReason(error)})` : detailOf(error);
    return new TransientStepError(`${operation} failed: ${detail}`, { cause: error });
  }
  return new KubeApiError(operation, status, detailOf(error), { cause: error });
}

async function call<T>(operation: string, fn: () => Promise<T>, absentOn404 = false): Promise<T | undefined> {
  try {
    return await fn();
  } catch (error) {
    if (absentOn404 && statusOf(error) === 404) return undefined;
    throw translateError(operation, error);
  }
}

async function must<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  return (await call(operation, fn)) as T;
}

/** The kubeconfig does not get the tool to a working, permitted API server; nothing was changed. */
export class KubeconfigError extends Error {
  constructor(readonly file: string, problem: string, fix: string) {
    super(`kubeconfig ${file}${problem.startsWith(':') ? problem : ` ${problem}`}; ${fix}`);
    this.name = 'KubeconfigError';
  }
}

function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const message = error instanceof Error ? error.message : String(error);
  return cause?.code ?? cause?.message ?? message.replace(/^request to \S+ failed, reason: /, '');
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function describeAccess(check: AccessCheck): string {
  const resource = check.group ? `${check.resource}.${check.group}` : check.resource;
  const sub = check.subresource ? `/${check.subresource}` : '';
  const scope = check.namespace ? ` in namespace ${check.namespace}` : '';
  const name = check.name ? ` named ${check.name}` : '';
  return `${check.verb} ${resource}${sub}${name}${scope}`;
}

export interface AccessCheck {
  verb: string;
  resource: string;
  group?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

export interface WatchOptions<T> {
  description: string;
  timeoutMs: number;
  signal: AbortSignal;
  /** Reads the current state once before watching; undefined when absent. */
  read(): Promise<T | undefined>;
  /** Returns a value to stop waiting with, or undefined (or false) to keep waiting. */
  test(object: T | undefined): unknown;
}

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'kube-node-rename';

/** A typed façade over the parts of the API that a rename uses. */
export class KubeClient {
  readonly core: CoreV1Api;
  readonly certificates: CertificatesV1Api;
  readonly authorization: AuthorizationV1Api;
  readonly coordination: CoordinationV1Api;
  private readonly watcher: Watch;

  constructor(
    readonly config: KubeConfig,
    /** The kubeconfig file, for messages. */
    readonly file = '(in-memory kubeconfig)',
  ) {
    this.core = config.makeApiClient(CoreV1Api);
    this.certificates = config.makeApiClient(CertificatesV1Api);
    this.authorization = config.makeApiClient(AuthorizationV1Api);
    this.coordination = config.makeApiClient(CoordinationV1Api);
    this.watcher = new Watch(config);
  }

  static fromFile(kubeconfig: string | undefined, context: string | undefined): KubeClient {
    const file = kubeconfig ?? process.env.KUBECONFIG ?? `${homedir()}/.kube/config`;
    const config = new KubeConfig();
    try {
      if (kubeconfig) config.loadFromFile(kubeconfig);
      else config.loadFromDefault();
    } catch (error) {
      throw new KubeconfigError(file, `cannot be read: ${(error as Error).message}`, 'pass a working kubeconfig with --kubeconfig FILE');
    }
    if (context) {
      if (config.getContextObject(context) === null) {
        throw new KubeconfigError(file, `has no context "${context}"`, `pick one of: ${config.getContexts().map((c) => c.name).join(', ') || '(none)'}`);
      }
      config.setCurrentContext(context);
    }
    if (config.getCurrentCluster() === null) {
      throw new KubeconfigError(file, 'names no cluster for its current context', 'pass a working kubeconfig with --kubeconfig FILE, or choose a context with --context');
    }
    return new KubeClient(config, file);
  }

  /**
   * Checks, before any step runs, that the API server is reachable with these credentials and
   * that they allow every call a rename makes. Each failure names the kubeconfig and the fix.
   */
  async checkConnection(required: AccessCheck[]): Promise<void> {
    const where = `the API server ${this.server} named in kubeconfig ${this.file}`;
    try {
      await withTimeout(this.config.makeApiClient(VersionApi).getCode(), 20_000);
    } catch (error) {
      const status = statusOf(error);
      if (status === undefined) {
        throw new KubeconfigError(this.file, `: cannot reach ${where} (${networkReason(error)})`, 'check the server address, the network path to it, and the certificate-authority of the cluster entry');
      }
      if (status === 401) {
        throw new KubeconfigError(this.file, `: ${where} rejected its credentials (401 Unauthorized)`, 'the token or client certificate is invalid or expired; get new credentials');
      }
    }
    let user = '(unknown user)';
    try {
      const review = await this.config.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
      user = review.status?.userInfo?.username ?? user;
    } catch (error) {
      if (statusOf(error) === 401) {
        throw new KubeconfigError(this.file, `: ${where} rejected its credentials (401 Unauthorized)`, 'the token or client certificate is invalid or expired; get new credentials');
      }
    }
    const denied = await this.deniedAccess(required).catch((error: unknown) => {
      throw new KubeconfigError(this.file, `: cannot check the permissions of ${user} on ${where} (${detailOf(error)})`, 'check that the credentials are valid');
    });
    if (denied.length > 0) {
      throw new KubeconfigError(
        this.file,
        `: ${user} lacks permissions a rename needs: ${denied.map(describeAccess).join('; ')}`,
        'bind the ClusterRole and Roles of deploy/clusterrole.yaml to this user or service account (see the README)',
      );
    }
  }

  get server(): string {
    return this.config.getCurrentCluster()?.server ?? '(no cluster in kubeconfig)';
  }

  getNode(name: string): Promise<V1Node | undefined> {
    return call(`get Node ${name}`, () => this.core.readNode({ name }), true);
  }

  getLease(nodeName: string): Promise<V1Lease | undefined> {
    return call(`get Lease ${nodeName}`, () => this.coordination.readNamespacedLease({ name: nodeName, namespace: 'kube-node-lease' }), true);
  }

  async mergePatchNode(name: string, patch: object): Promise<V1Node> {
    return must(`patch Node ${name}`, () =>
      this.core.patchNode({ name, body: patch }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)),
    );
  }

  /** Deletes a Node only if it still has this UID; returns false when it was already gone. */
  async deleteNode(name: string, uid: string): Promise<boolean> {
    const result = await call(
      `delete Node ${name}`,
      () => this.core.deleteNode({ name, body: { preconditions: { uid } } }),
      true,
    );
    return result !== undefined;
  }

  createNode(node: V1Node): Promise<V1Node> {
    return must(`create Node ${node.metadata?.name}`, () => this.core.createNode({ body: node }));
  }

  async podsOnNode(name: string): Promise<V1Pod[]> {
    const list = await must(`list pods on Node ${name}`, () =>
      this.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${name}` }),
    );
    return list.items;
  }

  async persistentVolumes(): Promise<V1PersistentVolume[]> {
    return (await must('list PersistentVolumes', () => this.core.listPersistentVolume())).items;
  }

  evictPod(pod: V1Pod): Promise<unknown> {
    const name = pod.metadata?.name ?? '';
    const namespace = pod.metadata?.namespace ?? 'default';
    return this.core.createNamespacedPodEviction({
      name,
      namespace,
      body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace } },
    });
  }

  createSecret(namespace: string, secret: V1Secret): Promise<V1Secret> {
    return must(`create Secret ${namespace}/${secret.metadata?.name}`, () =>
      this.core.createNamespacedSecret({ namespace, body: secret }),
    );
  }

  async deleteSecret(namespace: string, name: string): Promise<boolean> {
    const result = await call(`delete Secret ${namespace}/${name}`, () => this.core.deleteNamespacedSecret({ name, namespace }), true);
    return result !== undefined;
  }

  async listKubeletClientCsrs(): Promise<V1CertificateSigningRequest[]> {
    const list = await must('list CertificateSigningRequests', () => this.certificates.listCertificateSigningRequest());
    return list.items.filter((csr) => csr.spec.signerName === 'kubernetes.io/kube-apiserver-client-kubelet');
  }

  approveCsr(csr: V1CertificateSigningRequest, message: string): Promise<V1CertificateSigningRequest> {
    const name = csr.metadata?.name ?? '';
    const conditions = [
      ...(csr.status?.conditions ?? []),
      { type: 'Approved', status: 'True', reason: 'KubeNodeRenameApproved', message, lastUpdateTime: new Date() },
    ];
    return must(`approve CertificateSigningRequest ${name}`, () =>
      this.certificates.replaceCertificateSigningRequestApproval({ name, body: { ...csr, status: { ...csr.status, conditions } } }),
    );
  }

  /** Returns the checks that the API server denies for this client's own identity. */
  async deniedAccess(checks: AccessCheck[]): Promise<AccessCheck[]> {
    const denied: AccessCheck[] = [];
    for (const check of checks) {
      const review = await must('create SelfSubjectAccessReview', () =>
        this.authorization.createSelfSubjectAccessReview({
          body: { spec: { resourceAttributes: { ...check, group: check.group ?? '' } } },
        }),
      );
      if (!review.status?.allowed) denied.push(check);
    }
    return denied;
  }

  /**
   * Waits on a watch until `test` returns a value. It reads the object first, then watches; a
   * watch without a resourceVersion starts with the current objects, so no change between the
   * read and the watch is missed. The watch restarts when the server closes it.
   */
  async waitFor<T extends { metadata?: { name?: string } }>(
    path: string,
    fieldSelector: string | undefined,
    options: WatchOptions<T>,
  ): Promise<unknown> {
    const deadline = Date.now() + options.timeoutMs;
    const accepted = (value: unknown) => value !== undefined && value !== false;
    while (Date.now() < deadline) {
      if (options.signal.aborted) throw options.signal.reason ?? new Error('aborted');
      let current: unknown;
      try {
        current = options.test(await options.read());
      } catch (error) {
        // The API server may be restarting: keep waiting until the deadline.
        if (!(error instanceof TransientStepError)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 2000));
        continue;
      }
      if (accepted(current)) return current;
      const result = await new Promise<{ value?: unknown; done: boolean; error?: unknown }>((resolve) => {
        let controller: AbortController | undefined;
        let settled = false;
        const finish = (outcome: { value?: unknown; done: boolean; error?: unknown }) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          options.signal.removeEventListener('abort', onAbort);
          controller?.abort();
          resolve(outcome);
        };
        const onAbort = () => finish({ done: false, error: options.signal.reason ?? new Error('aborted') });
        const timer = setTimeout(() => finish({ done: false }), Math.max(0, deadline - Date.now()));
        options.signal.addEventListener('abort', onAbort, { once: true });
        const query: Record<string, string | number | boolean> = { allowWatchBookmarks: false, timeoutSeconds: 60 };
        if (fieldSelector) query.fieldSelector = fieldSelector;
        this.watcher
          .watch(
            path,
            query,
            (phase, object: T) => {
              const value = options.test(phase === 'DELETED' ? undefined : object);
              if (accepted(value)) finish({ value, done: true });
            },
            (error) => finish({ done: false, error }),
          )
          .then((c) => {
            controller = c;
            if (settled) c.abort();
          })
          .catch((error) => finish({ done: false, error }));
      });
      if (result.done) return result.value;
      if (options.signal.aborted) throw options.signal.reason ?? new Error('aborted');
      if (result.error) await new Promise((r) => setTimeout(r, 1000));
    }
    throw new TransientStepError(`timed out after ${Math.round(options.timeoutMs / 1000)} s waiting for ${options.description}`);
  }
}

export function nodeReady(node: V1Node | undefined): boolean {
  return node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

export function internalAddress(node: V1Node | undefined): string | undefined {
  return node?.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
}
