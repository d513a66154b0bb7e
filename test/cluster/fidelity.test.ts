// Fidelity tests of the test cluster: the behaviours of real Kubernetes that
// a node rename depends on, observed on the cluster's control plane and test
// kubelets. Hosts are reached only over SSH with the cluster's ssh_config.
//
// The tests share one cluster and run in order: each renames a different
// host, so none depends on what another changed. Needs root and the binaries
// of test/cluster/build.sh.

import { expect } from 'chai';
import {
  ApiException,
  CertificatesV1Api,
  CoordinationV1Api,
  CoreV1Api,
  type V1CertificateSigningRequest,
  type V1Node,
} from '@kubernetes/client-node';
import {
  adminKubeConfig,
  bootstrapKubeconfig,
  createBootstrapToken,
  readAuditEvents,
  runProcess,
  startCluster,
  waitFor,
  type AuditEvent,
  type Cluster,
} from './harness.js';

const KUBELET_CLIENT_SIGNER = 'kubernetes.io/kube-apiserver-client-kubelet';

/** Upper bounds for the cluster to act, not expectations of speed. */
const REGISTER_TIMEOUT_MS = 120_000;
/** Pod garbage collection checks every 20 s after a 40 s quarantine. */
const POD_GC_TIMEOUT_MS = 180_000;

function isNotFound(error: unknown): boolean {
  return error instanceof ApiException && error.code === 404;
}

/** Waits until reading an object fails with 404 Not Found. */
function waitForNotFound(description: string, read: () => Promise<unknown>): Promise<true> {
  return waitFor(description, POD_GC_TIMEOUT_MS, async () => {
    try {
      await read();
      return undefined;
    } catch (error) {
      if (isNotFound(error)) return true;
      throw error;
    }
  });
}

function isReady(node: V1Node): boolean {
  return node.status?.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True') ?? false;
}

/** Returns the subject of a PEM certificate request, in openssl's one-line form. */
async function requestSubject(csr: V1CertificateSigningRequest): Promise<string> {
  const pem = Buffer.from(csr.spec.request, 'base64').toString('utf8');
  const result = await runProcess('openssl', ['req', '-noout', '-subject', '-nameopt', 'RFC2253'], pem);
  if (result.code !== 0) throw new Error(`openssl could not read the request of CSR ${csr.metadata?.name}: ${result.stderr}`);
  return result.stdout.trim().replace(/^subject=/, '');
}

function csrCondition(csr: V1CertificateSigningRequest, type: string): boolean {
  return csr.status?.conditions?.some((condition) => condition.type === type && condition.status === 'True') ?? false;
}

describe('test cluster fidelity', function () {
  this.timeout(300_000);

  let cluster: Cluster;
  let core: CoreV1Api;
  let certificates: CertificatesV1Api;
  let coordination: CoordinationV1Api;

  before(async function () {
    this.timeout(1_800_000);
    cluster = await startCluster({ hosts: 3, id: 'fidelity' });
    const config = adminKubeConfig(cluster);
    core = config.makeApiClient(CoreV1Api);
    certificates = config.makeApiClient(CertificatesV1Api);
    coordination = config.makeApiClient(CoordinationV1Api);
  });

  after(async function () {
    this.timeout(120_000);
    await cluster?.stop();
  });

  async function readNode(name: string): Promise<V1Node | undefined> {
    try {
      return await core.readNode({ name });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async function kubeletCsrs(): Promise<Array<{ csr: V1CertificateSigningRequest; subject: string }>> {
    const list = await certificates.listCertificateSigningRequest();
    const kubelet = list.items.filter((csr) => csr.spec.signerName === KUBELET_CLIENT_SIGNER);
    return Promise.all(kubelet.map(async (csr) => ({ csr, subject: await requestSubject(csr) })));
  }

  /** Returns the subject of the kubelet's current client certificate on a host. */
  async function clientCertificateSubject(host: string): Promise<string> {
    const result = await cluster.exec(host, 'openssl x509 -noout -subject -nameopt RFC2253 -in /var/lib/kubelet/pki/kubelet-client-current.pem');
    return result.stdout.trim().replace(/^subject=/, '');
  }

  /** Sets rotateCertificates in the host's KubeletConfiguration. */
  async function setRotation(host: string, enabled: boolean): Promise<void> {
    await cluster.exec(host, `sed -i 's/^rotateCertificates: .*/rotateCertificates: ${enabled}/' /var/lib/kubelet/config.yaml`);
    const config = await cluster.exec(host, 'grep ^rotateCertificates: /var/lib/kubelet/config.yaml');
    expect(config.stdout.trim(), `rotateCertificates in ${host}'s config.yaml`).to.equal(`rotateCertificates: ${enabled}`);
  }

  /** Adds --hostname-override to KUBELET_EXTRA_ARGS in the host's /etc/default/kubelet. */
  async function setHostnameOverride(host: string, name: string): Promise<void> {
    await cluster.exec(host, `sed -i 's/^KUBELET_EXTRA_ARGS="\\(.*\\)"$/KUBELET_EXTRA_ARGS="\\1 --hostname-override=${name}"/' /etc/default/kubelet`);
    const flags = await cluster.exec(host, 'cat /etc/default/kubelet');
    expect(flags.stdout, `${host}'s /etc/default/kubelet`).to.contain(`--hostname-override=${name}`);
  }

  /**
   * Renames a host by the manual procedure, as plain shell commands run by the `knr`
   * login with `sudo -n`: a bootstrap kubeconfig with a fresh token, the new
   * name as --hostname-override, rotation off, no client certificate or
   * kubeconfig, and a restart. Returns the bootstrap token id.
   */
  async function renameByHand(host: string, newName: string): Promise<string> {
    const token = await createBootstrapToken(cluster);
    const run = (command: string, input?: string) => cluster.exec(host, command, { user: 'knr', input });
    await run('sudo -n tee /etc/kubernetes/bootstrap-kubelet.conf >/dev/null && sudo -n chmod 600 /etc/kubernetes/bootstrap-kubelet.conf', bootstrapKubeconfig(cluster, token));
    await run(`sudo -n sed -i 's/^KUBELET_EXTRA_ARGS="\\(.*\\)"$/KUBELET_EXTRA_ARGS="\\1 --hostname-override=${newName}"/' /etc/default/kubelet`);
    await run("sudo -n sed -i 's/^rotateCertificates: .*/rotateCertificates: false/' /var/lib/kubelet/config.yaml");
    await run('sudo -n sh -c "rm -f /var/lib/kubelet/pki/kubelet-client-* /etc/kubernetes/kubelet.conf"');
    await run('sudo -n systemctl restart kubelet');
    return token.split('.')[0];
  }

  it('joins three hosts through approved CSRs', async function () {
    const names = ['node-1', 'node-2', 'node-3'];
    expect(cluster.hosts.map((host) => host.name)).to.deep.equal(names);

    const csrs = await kubeletCsrs();
    for (const name of names) {
      const node = await readNode(name);
      expect(node, `Node ${name}`).to.not.equal(undefined);
      expect(isReady(node as V1Node), `Node ${name} is Ready`).to.equal(true);

      const own = csrs.filter(({ subject }) => subject === `CN=system:node:${name},O=system:nodes`);
      expect(own, `kubelet client CSRs for ${name}`).to.have.length(1);
      const csr = own[0].csr;
      expect(csr.spec.username, `requester of ${name}'s CSR`).to.match(/^system:bootstrap:[a-z0-9]{6}$/);
      expect(csrCondition(csr, 'Approved'), `${name}'s CSR is approved`).to.equal(true);
      const approval = csr.status?.conditions?.find((condition) => condition.type === 'Approved');
      expect(approval?.reason, `approver of ${name}'s CSR`).to.equal('AutoApproved');
      expect(csr.status?.certificate, `${name}'s CSR has a certificate`).to.be.a('string').and.not.equal('');

      expect(await clientCertificateSubject(name), `client certificate on ${name}`).to.equal(`CN=system:node:${name},O=system:nodes`);
      const kubeconfig = await cluster.exec(name, 'cat /etc/kubernetes/kubelet.conf');
      expect(kubeconfig.stdout, `${name}'s kubelet.conf`).to.contain('client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem');
      const active = await cluster.exec(name, 'systemctl is-active kubelet');
      expect(active.stdout.trim(), `kubelet on ${name}`).to.equal('active');
      const bootstrapConfig = await cluster.exec(name, 'test -e /etc/kubernetes/bootstrap-kubelet.conf', { allowFailure: true });
      expect(bootstrapConfig.code, `bootstrap-kubelet.conf on ${name} is removed after the join, as kubeadm does`).to.equal(1);
    }
  });

  /** Returns the kubelet's journal lines since its last restart. */
  async function journalSinceRestart(host: string): Promise<string[]> {
    const result = await cluster.exec(host, 'journalctl -u kubelet --no-pager');
    const lines = result.stdout.split('\n');
    const restart = lines.map((line) => line.includes('Stopped kubelet.service')).lastIndexOf(true);
    return lines.slice(restart + 1);
  }

  /** Waits for the audit log to show a rejected create by a node's credentials. */
  async function rejectedCreate(resource: string, node: string, message: string): Promise<AuditEvent> {
    return waitFor(`an audit event of a rejected ${resource} create by system:node:${node}`, REGISTER_TIMEOUT_MS, async () => {
      return readAuditEvents(cluster).find(
        (event) =>
          event.verb === 'create' &&
          event.objectRef?.resource === resource &&
          event.user.username === `system:node:${node}` &&
          event.responseStatus?.code === 403 &&
          (event.responseStatus.message ?? '').includes(message),
      );
    });
  }

  it('rejects a new name with the old certificate', async function () {
    const host = 'node-2';
    const newName = 'node-2-renamed';
    await setRotation(host, false);
    await setHostnameOverride(host, newName);
    await cluster.exec(host, 'systemctl restart kubelet');

    // The API server rejects the Node create in NodeRestriction admission.
    const rejection = await rejectedCreate('nodes', host, `node "${host}" is not allowed to modify node "${newName}"`);
    expect(rejection.objectRef?.name ?? newName, 'rejected Node name').to.equal(newName);

    // After a Forbidden create, the v1.36 kubelet (tryRegisterWithAPIServer
    // in pkg/kubelet/kubelet_node_status.go) reads the Node and logs only the
    // Node authorizer's rejection of that read, not the admission message.
    const readRejection = `node '${host}' cannot read '${newName}', only its own Node object`;
    const failure = await waitFor(`${host}'s kubelet to report the failed registration`, REGISTER_TIMEOUT_MS, async () => {
      const lines = await journalSinceRestart(host);
      return lines.find((line) => line.includes('Unable to register node with API server') && line.includes(readRejection));
    });
    expect(failure, 'the registration failure names the new Node').to.contain(`node="${newName}"`);

    expect(await readNode(newName), `Node ${newName}`).to.equal(undefined);
    expect(await readNode(host), `old Node ${host}`).to.not.equal(undefined);
    expect(await clientCertificateSubject(host), `client certificate on ${host}`).to.equal(`CN=system:node:${host},O=system:nodes`);
    const mainPid = await cluster.exec(host, 'systemctl show -p MainPID --value kubelet');
    const cmdline = await cluster.exec(host, `tr '\\0' ' ' </proc/${mainPid.stdout.trim()}/cmdline`);
    expect(cmdline.stdout, 'the running kubelet has the new override').to.contain(`--hostname-override=${newName}`);
  });

  it('rejects a rotation CSR for a new name', async function () {
    const host = 'node-3';
    const newName = 'node-3-renamed';
    const config = await cluster.exec(host, 'grep ^rotateCertificates: /var/lib/kubelet/config.yaml');
    expect(config.stdout.trim(), 'kubeadm turns rotation on').to.equal('rotateCertificates: true');
    await setHostnameOverride(host, newName);
    await cluster.exec(host, 'systemctl restart kubelet');

    // The certificate manager requests at once a certificate with the new
    // CN, authenticated by the old one. NodeRestriction in v1.36 (admitCSR in
    // plugin/pkg/admission/noderestriction/admission.go) rejects a node's
    // kubelet CSR whose CN is not its own name, unless the feature gate
    // AllowInsecureKubeletCertificateSigningRequests is on, so no CSR exists
    // to stay pending.
    const message = `can only create a node CSR with CN=system:node:${host}`;
    await rejectedCreate('certificatesigningrequests', host, message);
    const journal = await waitFor(`${host}'s kubelet to report the rejected CSR`, REGISTER_TIMEOUT_MS, async () => {
      const lines = await journalSinceRestart(host);
      return lines.some((line) => line.includes(message)) ? lines : undefined;
    });
    expect(journal.find((line) => line.includes(message)), 'the certificate manager reports the rejection').to.contain('Failed while requesting a signed certificate');

    const forNewName = (await kubeletCsrs()).filter(({ subject }) => subject === `CN=system:node:${newName},O=system:nodes`);
    expect(forNewName, `CSRs for ${newName}`).to.deep.equal([]);
    expect(await readNode(newName), `Node ${newName}`).to.equal(undefined);
    expect(await clientCertificateSubject(host), `client certificate on ${host}`).to.equal(`CN=system:node:${host},O=system:nodes`);
  });

  it('registers the new name after a manual rename', async function () {
    const host = 'node-1';
    const newName = 'node-1-renamed';
    const tokenId = await renameByHand(host, newName);

    const node = await waitFor(`Node ${newName} to be Ready`, REGISTER_TIMEOUT_MS, async () => {
      const found = await readNode(newName);
      return found !== undefined && isReady(found) ? found : undefined;
    });
    expect(node.metadata?.labels?.['kubernetes.io/hostname'], 'hostname label set by the kubelet').to.equal(newName);

    const csr = (await kubeletCsrs()).find(({ subject }) => subject === `CN=system:node:${newName},O=system:nodes`);
    expect(csr, `CSR for ${newName}`).to.not.equal(undefined);
    expect(csr?.csr.spec.username, 'the CSR is made with the fresh token').to.equal(`system:bootstrap:${tokenId}`);
    expect(csrCondition(csr?.csr as V1CertificateSigningRequest, 'Approved'), 'the CSR is approved').to.equal(true);

    expect(await clientCertificateSubject(host), `client certificate on ${host}`).to.equal(`CN=system:node:${newName},O=system:nodes`);
    const kubeconfig = await cluster.exec(host, 'cat /etc/kubernetes/kubelet.conf');
    expect(kubeconfig.stdout, 'the kubelet wrote a new kubelet.conf').to.contain('kubelet-client-current.pem');
    const old = await readNode(host);
    expect(old, `old Node ${host} stays until deleted`).to.not.equal(undefined);
  });

  it('garbage-collects pods of a deleted Node', async function () {
    const host = await cluster.addHost('node-4');
    const oldName = host.name;
    const newName = 'node-4-renamed';
    const podName = 'bound-to-node-4';

    // The default ServiceAccount appears shortly after the namespace does.
    await waitFor('the default ServiceAccount', 60_000, async () => {
      return core.createNamespacedPod({
        namespace: 'default',
        body: {
          metadata: { name: podName },
          spec: { nodeName: oldName, containers: [{ name: 'pause', image: 'registry.k8s.io/pause:3.10' }] },
        },
      });
    });
    const running = await waitFor(`pod ${podName} to run on ${oldName}`, REGISTER_TIMEOUT_MS, async () => {
      const pod = await core.readNamespacedPod({ name: podName, namespace: 'default' });
      return pod.status?.phase === 'Running' ? pod : undefined;
    });
    expect(running.spec?.nodeName, 'pod is bound to the old name').to.equal(oldName);
    expect(running.status?.hostIP, 'pod runs on the host being renamed').to.equal(host.address);

    // The kubelet creates its Lease, owned by its Node, some seconds after registering.
    const lease = await waitFor(`Lease ${oldName} owned by its Node`, REGISTER_TIMEOUT_MS, async () => {
      const found = await coordination.readNamespacedLease({ name: oldName, namespace: 'kube-node-lease' });
      return found.metadata?.ownerReferences?.some((owner) => owner.kind === 'Node' && owner.name === oldName) ? found : undefined;
    });
    expect(lease.spec?.holderIdentity, `holder of Lease ${oldName}`).to.equal(oldName);

    await renameByHand(oldName, newName);
    await waitFor(`Node ${newName} to be Ready`, REGISTER_TIMEOUT_MS, async () => {
      const found = await readNode(newName);
      return found !== undefined && isReady(found) ? found : undefined;
    });

    await core.deleteNode({ name: oldName });
    await waitForNotFound(`pod ${podName} to be garbage-collected`, () => core.readNamespacedPod({ name: podName, namespace: 'default' }));
    await waitForNotFound(`Lease ${oldName} to be garbage-collected with its Node`, () =>
      coordination.readNamespacedLease({ name: oldName, namespace: 'kube-node-lease' }),
    );

    expect(await readNode(oldName), `Node ${oldName}`).to.equal(undefined);
    expect(isReady((await readNode(newName)) as V1Node), `Node ${newName} is still Ready`).to.equal(true);
    const active = await cluster.exec(oldName, 'systemctl is-active kubelet');
    expect(active.stdout.trim(), `kubelet on host ${oldName}`).to.equal('active');
    expect(await clientCertificateSubject(oldName), `client certificate on host ${oldName}`).to.equal(`CN=system:node:${newName},O=system:nodes`);
  });
  describe('with insecure kubelet CSRs allowed', function () {
    // The same rename as above on a cluster whose API server has the feature
    // gate AllowInsecureKubeletCertificateSigningRequests on, which turns off
    // NodeRestriction's CN check: then the CSR for the new name is created
    // and matches neither auto-approval rule.
    let gated: Cluster;

    before(async function () {
      this.timeout(600_000);
      gated = await startCluster({
        hosts: 1,
        id: 'fidelity-gate',
        featureGates: { AllowInsecureKubeletCertificateSigningRequests: true },
      });
    });

    after(async function () {
      this.timeout(120_000);
      await gated?.stop();
    });

    it('leaves a rotation CSR pending', async function () {
      const host = 'node-1';
      const newName = 'node-1-renamed';
      const gatedCertificates = adminKubeConfig(gated).makeApiClient(CertificatesV1Api);
      await gated.exec(host, `sed -i 's/^KUBELET_EXTRA_ARGS="\\(.*\\)"$/KUBELET_EXTRA_ARGS="\\1 --hostname-override=${newName}"/' /etc/default/kubelet`);
      await gated.exec(host, 'systemctl restart kubelet');

      const expectedSubject = `CN=system:node:${newName},O=system:nodes`;
      const found = await waitFor(`a CSR for ${newName}`, REGISTER_TIMEOUT_MS, async () => {
        const list = await gatedCertificates.listCertificateSigningRequest();
        for (const csr of list.items) {
          if (csr.spec.signerName === KUBELET_CLIENT_SIGNER && (await requestSubject(csr)) === expectedSubject) return csr;
        }
        return undefined;
      });
      expect(found.spec.username, 'the CSR is made with the old certificate').to.equal(`system:node:${host}`);

      // The approver decides when the CSR is created; read it again after
      // several of the controller's sync periods.
      await new Promise((resolve) => setTimeout(resolve, 20_000));
      const again = await gatedCertificates.readCertificateSigningRequest({ name: found.metadata?.name as string });
      expect(again.status?.conditions ?? [], `conditions of CSR ${again.metadata?.name}`).to.deep.equal([]);
      expect(again.status?.certificate, 'no certificate is issued').to.equal(undefined);

      const subject = await gated.exec(host, 'openssl x509 -noout -subject -nameopt RFC2253 -in /var/lib/kubelet/pki/kubelet-client-current.pem');
      expect(subject.stdout.trim(), `client certificate on ${host}`).to.equal(`subject=CN=system:node:${host},O=system:nodes`);
    });
  });
});
