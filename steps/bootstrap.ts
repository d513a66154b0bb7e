// Bootstrap tokens and the bootstrap kubeconfig that lets a kubelet request a client certificate
// under its new name. The token's secret half exists only in the Secret and in the 0600 file on
// the host; it never enters the state, a log line or a command line.
import { randomInt } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import yaml from 'js-yaml';
import type { HostRunner } from './host.js';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './kube.js';
import { TOKEN_NODE_LABEL } from './services.js';

const TOKEN_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

export interface BootstrapToken {
  id: string;
  secret: string;
}

function randomString(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += TOKEN_ALPHABET[randomInt(TOKEN_ALPHABET.length)];
  return out;
}

/** A new token in the format the API server accepts: 6 and 16 characters of [a-z0-9]. */
export function generateBootstrapToken(): BootstrapToken {
  return { id: randomString(6), secret: randomString(16) };
}

/** The Secret that makes a bootstrap token valid, as kubeadm creates it for node joins. */
export function bootstrapTokenSecret(token: BootstrapToken, options: { node: string; plan: string; expiresAt: Date }): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: `bootstrap-token-${token.id}`,
      namespace: 'kube-system',
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [TOKEN_NODE_LABEL]: options.node },
    },
    type: 'bootstrap.kubernetes.io/token',
    stringData: {
      description: `kube-node-rename: TLS bootstrap of node ${options.node} (plan ${options.plan})`,
      'token-id': token.id,
      'token-secret': token.secret,
      expiration: options.expiresAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      'usage-bootstrap-authentication': 'true',
      'auth-extra-groups': 'system:bootstrappers:kubeadm:default-node-token',
    },
  };
}

export interface ClusterEndpoint {
  server: string;
  /** Base64 PEM of the cluster CA, when the kubeconfig embeds it. */
  caData?: string;
  /** Path of the CA file on the host, when the kubeconfig names one. */
  caFile?: string;
}

/** Renders a bootstrap kubeconfig in the shape kubeadm writes to bootstrap-kubelet.conf. */
export function renderBootstrapKubeconfig(endpoint: ClusterEndpoint, token: BootstrapToken): string {
  const cluster: Record<string, string> = { server: endpoint.server };
  if (endpoint.caData) cluster['certificate-authority-data'] = endpoint.caData;
  else if (endpoint.caFile) cluster['certificate-authority'] = endpoint.caFile;
  return yaml.dump({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'default-cluster', cluster }],
    contexts: [{ name: 'tls-bootstrap-token-user@default-cluster', context: { cluster: 'default-cluster', user: 'tls-bootstrap-token-user' } }],
    'current-context': 'tls-bootstrap-token-user@default-cluster',
    preferences: {},
    users: [{ name: 'tls-bootstrap-token-user', user: { token: `${token.id}.${token.secret}` } }],
  });
}

/**
 * Reads the API server address and CA from a kubeconfig on the host. Only the lines for those
 * three fields leave the host, never a key or a token.
 */
export async function readClusterEndpoint(host: HostRunner, kubeconfig: string): Promise<ClusterEndpoint | undefined> {
  const script = [
    '[ -r "$1" ] || exit 3',
    "grep -E '^[[:space:]]*(server|certificate-authority|certificate-authority-data):' \"$1\" || exit 3",
  ].join('\n');
  const result = await host.script(`read cluster address from ${kubeconfig}`, script, [kubeconfig], { okCodes: [0, 3] });
  if (result.code === 3) return undefined;
  const field = (name: string) =>
    new RegExp(`^\\s*${name}:\\s*["']?([^"'\\s]+)`, 'm').exec(result.stdout)?.[1];
  const server = field('server');
  if (!server) return undefined;
  const caData = field('certificate-authority-data');
  const caFile = field('certificate-authority');
  return { server, ...(caData ? { caData } : {}), ...(caFile ? { caFile } : {}) };
}
