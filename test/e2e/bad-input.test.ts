// Bad environments on the test cluster: kubeconfigs that do not work, hosts whose kubelet the tool
// cannot find or read, and credentials without permissions. For each, `apply` exits non-zero with
// a message that names the input and the fix, prints no stack trace, and changes nothing on the
// cluster (Nodes, kube-system Secrets, CSRs) or on the hosts (files under HOST_FOLDERS).
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import yaml from 'js-yaml';
import { createBootstrapToken, startCluster, waitFor, type Cluster } from '../cluster/harness.js';
import { serviceAccountKubeconfig, snapshotCluster, snapshotHost, writeTokenKubeconfig, type ClusterSnapshot, type TokenKubeconfig } from '../corpus/environment.js';
import { runCli, stackTraceLines } from '../corpus/support.js';
import { leastPrivilegeKubeconfig, writePlan } from './support.js';

interface BadEnvironment {
  name: string;
  /** The host whose node the plan renames. */
  host: string;
  /** Prepares the environment and returns the kubeconfig to run with. */
  prepare(): Promise<string>;
  /** Undoes the host changes of `prepare`, so later cases see a working host. */
  restore?(): Promise<void>;
  /** Patterns the combined stdout and stderr must match: the input named, the problem, the fix. */
  expected: RegExp[];
  /** Secret names to leave out of the comparison, such as a token the controller-manager may clean up. */
  volatileSecrets?: () => string[];
}

const SAVED = '/root/knr-bad-input-saved';
const DROP_IN = '/etc/systemd/system/kubelet.service.d/10-kubeadm.conf';

describe('bad environments on a test cluster', function () {
  this.timeout(10 * 60_000);
  let cluster: Cluster;
  let work: string;
  let toolKubeconfig: string;
  let expiredTokenSecret = '';

  before(async function () {
    this.timeout(15 * 60_000);
    cluster = await startCluster({ id: 'badinput', hosts: 3 });
    work = mkdtempSync(path.join(tmpdir(), 'knr-bad-input-'));
    toolKubeconfig = await leastPrivilegeKubeconfig(cluster.kubeconfig, path.join(work, 'tool.kubeconfig'));
    // Freshly joined Nodes carry a not-ready taint for a while; wait until the cluster settles, so
    // that the before and after snapshots compare only what apply could have changed.
    await waitFor('every Node Ready without taints', 5 * 60_000, async () => {
      const nodes = Object.values((await snapshotCluster(cluster.kubeconfig)).nodes);
      return nodes.length === cluster.hosts.length && nodes.every((node) => (node.taints as unknown[]).length === 0) ? true : undefined;
    });
  });

  after(async function () {
    this.timeout(5 * 60_000);
    await cluster?.stop();
  });

  /** Writes the tool's kubeconfig with one field changed. */
  function brokenKubeconfig(name: string, change: Parameters<typeof writeTokenKubeconfig>[3]): string {
    const token = (yaml.load(readFileSync(toolKubeconfig, 'utf8')) as TokenKubeconfig).users[0]!.user.token;
    return writeTokenKubeconfig(cluster.kubeconfig, token, path.join(work, `${name}.kubeconfig`), change);
  }

  /**
   * Saves the kubelet's drop-ins and wants links of `host` under SAVED, then runs `command` there.
   * Only these are touched: /etc/systemd/system is a bind mount of the host's own folder, while
   * /usr/lib/systemd/system is an overlay in which only kubelet.service is the host's (bind-mounted).
   */
  async function editHost(host: string, command: string): Promise<void> {
    await cluster.exec(host, `rm -rf ${SAVED} && mkdir -p ${SAVED} && cp -a /etc/systemd/system/kubelet.service.d ${SAVED}/drop-ins && cp -a /etc/systemd/system/multi-user.target.wants ${SAVED}/wants && ${command}`);
  }

  async function restoreHost(host: string): Promise<void> {
    const root = cluster.hosts.find((h) => h.name === host)!.root;
    const unit = '/usr/lib/systemd/system/kubelet.service';
    const rebind = `if ! mountpoint -q ${unit}; then touch ${unit} && mount --bind ${root}${unit} ${unit}; fi`;
    const copyBack = `rm -rf /etc/systemd/system/kubelet.service.d /etc/systemd/system/multi-user.target.wants && cp -a ${SAVED}/drop-ins /etc/systemd/system/kubelet.service.d && cp -a ${SAVED}/wants /etc/systemd/system/multi-user.target.wants`;
    await cluster.exec(host, `${rebind} && ${copyBack} && rm -rf ${SAVED} /usr/local/bin/kubelet-wrapper.sh`);
  }

  const cases: BadEnvironment[] = [
    {
      name: 'missing kubeconfig file',
      host: 'node-1',
      prepare: async () => path.join(work, 'does-not-exist.kubeconfig'),
      expected: [/does-not-exist\.kubeconfig/, /--kubeconfig/],
    },
    {
      name: 'kubeconfig with a wrong server',
      host: 'node-1',
      prepare: async () =>
        brokenKubeconfig('wrong-server', (config) => {
          // The API server's own address on a port where nothing listens.
          config.clusters[0]!.cluster.server = config.clusters[0]!.cluster.server.replace(/:\d+$/, ':1');
        }),
      expected: [/https:\/\/[0-9.]+:1\b/, /ECONNREFUSED|connection refused/i, /wrong-server\.kubeconfig/],
    },
    {
      name: 'kubeconfig with a wrong CA',
      host: 'node-1',
      prepare: async () =>
        brokenKubeconfig('wrong-ca', (config) => {
          const pem = execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=not-the-cluster-ca', '-days', '1'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
          config.clusters[0]!.cluster['certificate-authority-data'] = Buffer.from(pem).toString('base64');
        }),
      expected: [/certificate/i, /wrong-ca\.kubeconfig/],
    },
    {
      name: 'kubeconfig with a garbage token',
      host: 'node-1',
      prepare: async () =>
        brokenKubeconfig('garbage-token', (config) => {
          config.users[0]!.user.token = 'not-a-token';
        }),
      expected: [/Unauthorized|401/, /garbage-token\.kubeconfig/],
    },
    {
      name: 'kubeconfig with an expired token',
      host: 'node-1',
      prepare: async () => {
        // A bootstrap token whose expiration is an hour past: the API server rejects it.
        const token = await createBootstrapToken(cluster, -3600);
        expiredTokenSecret = `bootstrap-token-${token.split('.')[0]}`;
        return brokenKubeconfig('expired-token', (config) => {
          config.users[0]!.user.token = token;
        });
      },
      volatileSecrets: () => [expiredTokenSecret],
      expected: [/Unauthorized|401/, /expired-token\.kubeconfig/],
    },
    {
      name: 'ServiceAccount with no bindings',
      host: 'node-1',
      prepare: () => serviceAccountKubeconfig(cluster.kubeconfig, 'knr-no-permissions', path.join(work, 'no-permissions.kubeconfig')),
      expected: [/system:serviceaccount:kube-system:knr-no-permissions/, /deploy\/clusterrole\.yaml/],
    },
    {
      name: 'host without a kubelet unit',
      host: 'node-1',
      prepare: async () => {
        const unit = '/usr/lib/systemd/system/kubelet.service';
        await editHost('node-1', `umount ${unit} && rm -f ${unit} && rm -rf /etc/systemd/system/kubelet.service.d /etc/systemd/system/multi-user.target.wants/kubelet.service`);
        return toolKubeconfig;
      },
      restore: () => restoreHost('node-1'),
      expected: [/node-1/, /no systemd unit kubelet/, /kubelet\.unit/],
    },
    {
      name: 'kubelet started by a wrapper script',
      host: 'node-2',
      prepare: async () => {
        const wrapper = 'printf "#!/bin/sh\\nexec /usr/bin/kubelet \\"\\$@\\"\\n" >/usr/local/bin/kubelet-wrapper.sh && chmod 755 /usr/local/bin/kubelet-wrapper.sh';
        await editHost('node-2', `mkdir -p /usr/local/bin && ${wrapper} && sed -i 's#^ExecStart=/usr/bin/kubelet #ExecStart=/usr/local/bin/kubelet-wrapper.sh #' ${DROP_IN}`);
        return toolKubeconfig;
      },
      restore: () => restoreHost('node-2'),
      expected: [/node-2/, /kubelet-wrapper\.sh/, /not a kubelet binary|directly/],
    },
    {
      name: 'kubelet flags in a variable nothing defines',
      host: 'node-3',
      prepare: async () => {
        // Without its EnvironmentFile lines the unit still names $KUBELET_KUBEADM_ARGS and
        // $KUBELET_EXTRA_ARGS, but nothing defines them, so the kubelet's flags cannot be found.
        await editHost('node-3', `sed -i '/^EnvironmentFile=/d' ${DROP_IN}`);
        return toolKubeconfig;
      },
      restore: () => restoreHost('node-3'),
      expected: [/node-3/, /KUBELET_KUBEADM_ARGS|KUBELET_EXTRA_ARGS|not defined|undefined|nothing defines/],
    },
  ];

  for (const [index, badCase] of cases.entries()) {
    it(`rejects ${badCase.name}`, async () => {
      const kubeconfig = await badCase.prepare();
      try {
        const to = `${badCase.host}.bad-input-${index}.example.com`;
        const plan = writePlan(work, { name: `bad-${index}`, nodes: [{ from: badCase.host, to, host: badCase.host }], sshConfig: cluster.sshConfig });
        const volatile = new Set(badCase.volatileSecrets?.() ?? []);
        const withoutVolatile = (snapshot: ClusterSnapshot): ClusterSnapshot => ({ ...snapshot, secrets: snapshot.secrets.filter((name) => !volatile.has(name)) });
        const clusterBefore = withoutVolatile(await snapshotCluster(cluster.kubeconfig));
        const hostsBefore = await Promise.all(cluster.hosts.map((host) => snapshotHost(cluster, host.name)));

        const result = await runCli(['apply', plan, '--kubeconfig', kubeconfig, '--state-dir', path.join(work, `state-${index}`)], { timeoutMs: 5 * 60_000 });
        const output = `${result.stdout}\n${result.stderr}`;

        expect(result.signal, `apply was killed by the time bound:\n${output}`).to.equal(null);
        expect(result.code, output).to.be.oneOf([1, 2]);
        expect(stackTraceLines(output), 'stack trace lines').to.deep.equal([]);
        expect(output, 'raw HTTP client dump').to.not.match(/HTTP-Code:|Headers: \{|Body: /);
        for (const pattern of badCase.expected) expect(output, `output names ${pattern}:\n${output}\n`).to.match(pattern);
        expect(withoutVolatile(await snapshotCluster(cluster.kubeconfig)), 'cluster objects').to.deep.equal(clusterBefore);
        const hostsAfter = await Promise.all(cluster.hosts.map((host) => snapshotHost(cluster, host.name)));
        cluster.hosts.forEach((host, i) => expect(hostsAfter[i], `files on ${host.name}`).to.equal(hostsBefore[i]));
      } finally {
        await badCase.restore?.();
      }
    });
  }
});
