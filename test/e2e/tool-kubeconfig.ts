// Writes a kubeconfig for the tool's least-privilege ServiceAccount on a test cluster.
// Usage: node dist/test/e2e/tool-kubeconfig.js ADMIN_KUBECONFIG OUTPUT
import { leastPrivilegeKubeconfig } from './support.js';

const [admin, output] = process.argv.slice(2);
if (!admin || !output) {
  process.stderr.write('usage: node dist/test/e2e/tool-kubeconfig.js ADMIN_KUBECONFIG OUTPUT\n');
  process.exit(2);
}
try {
  await leastPrivilegeKubeconfig(admin, output);
  process.stdout.write(`wrote ${output} (ServiceAccount kube-system/kube-node-rename, ClusterRole kube-node-rename)\n`);
} catch (error) {
  process.stderr.write(`cannot create the tool's kubeconfig from ${admin}: ${(error as Error).message}\n`);
  process.exit(1);
}
