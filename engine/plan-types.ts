// The plan as the engine and the steps see it: validated, with every default
// filled in. Durations are milliseconds; paths are absolute.

export interface PlanNode {
  /** Current Kubernetes node name. */
  from: string;
  /** New Kubernetes node name. */
  to: string;
  /** IPv4, IPv6 or DNS name (or ssh_config alias) used to reach the machine; when absent the steps use the old Node's InternalIP. */
  host?: string;
  /** SSH user for this node; overrides spec.access.user. */
  user?: string;
  /** SSH port for this node; overrides spec.access.port. */
  port?: number;
}

export type FailurePolicy = 'stop' | 'rollback';

export interface Strategy {
  /** Nodes in flight at once. @default 1 */
  parallelism: number;
  /** The first `canary` nodes of the list finish before any other node starts. @default 0 */
  canary: number;
  /** Failed nodes tolerated before no new node starts. @default 0 */
  maxFailures: number;
  /** `rollback` undoes a failed node's rename at once; `stop` leaves it for the operator. @default 'stop' */
  onFailure: FailurePolicy;
}

export interface Access {
  /** @default 'ssh' */
  transport: 'ssh' | 'local';
  user?: string;
  port?: number;
  /** Absolute path; `~/` expanded. */
  identityFile?: string;
  /** Absolute path passed as `ssh -F`. */
  sshConfig?: string;
  /** Extra `-o` options. @default [] */
  sshOptions: string[];
  /** Run host commands through `sudo -n`. @default false */
  sudo: boolean;
}

export interface KubeletSettings {
  /** systemd unit name. @default 'kubelet' */
  unit: string;
}

export interface RenameSettings {
  /** @default 'keep' */
  pods: 'keep' | 'cordon' | 'drain';
  /** @default 300000 (5m) */
  drainTimeoutMs: number;
  /** `auto`: the tool checks and approves the CSR; `controller`: wait for the controller-manager. @default 'auto' */
  csrApproval: 'auto' | 'controller';
  /** @default 3600000 (1h) */
  bootstrapTokenTTLMs: number;
  /** @default 300000 (5m) */
  readyTimeoutMs: number;
  /** @default 300000 (5m) */
  csrTimeoutMs: number;
}

export interface Plan {
  apiVersion: 'kube-node-rename/v1alpha1';
  kind: 'RenamePlan';
  metadata: { name: string };
  spec: {
    nodes: PlanNode[];
    strategy: Strategy;
    access: Access;
    kubelet: KubeletSettings;
    rename: RenameSettings;
  };
  /** Where the plan was read from. */
  source: { file: string; dir: string };
}
