// Secret hygiene and least privilege on the test cluster. A rename run with the shipped ClusterRole
// leaves no bootstrap token or private key in its state and log, no token in its host backups, and
// keeps credential files at mode 0600. A ServiceAccount missing one permission of that role is
// rejected before any step runs, with the permission named.
import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startCluster, type Cluster } from '../cluster/harness.js';
import { bindTrimmedRoles, serviceAccountKubeconfig, snapshotCluster, type Rule } from '../corpus/environment.js';
import { runCli, stackTraceLines } from '../corpus/support.js';
import { applyAndKillWhen, getNode, isReady, leastPrivilegeKubeconfig, writePlan } from './support.js';

/** A bootstrap token as kubeadm and the API server define it: `<6 chars>.<16 chars>`, lowercase letters and digits. */
const BOOTSTRAP_TOKEN = /\b[a-z0-9]{6}\.[a-z0-9]{16}\b/;
const PRIVATE_KEY = /PRIVATE KEY/;
/** File content that makes a file a credential: keys, certificates, tokens, kubeconfig credentials. */
const CREDENTIAL = /PRIVATE KEY|BEGIN CERTIFICATE|client-key-data|client-certificate-data|token:/;
const BACKUP_ROOT = '/var/lib/kube-node-rename/backup';
/** Shell command that lists the files under a folder holding a bootstrap token. */
const grepTokens = (folder: string): string => `grep -rlE '[a-z0-9]{6}\\.[a-z0-9]{16}' ${folder}; true`;

/** Lists every file and folder under `dir` with its mode bits. */
function walk(dir: string): { path: string; mode: number; isFile: boolean }[] {
  const entries: { path: string; mode: number; isFile: boolean }[] = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    const stats = statSync(full);
    entries.push({ path: full, mode: stats.mode & 0o777, isFile: stats.isFile() });
    if (stats.isDirectory()) entries.push(...walk(full));
  }
  return entries;
}

describe('secret hygiene and least privilege', function () {
  this.timeout(10 * 60_000);
  let cluster: Cluster;
  let work: string;
  let toolKubeconfig: string;

  before(async function () {
    this.timeout(15 * 60_000);
    cluster = await startCluster({ id: 'security', hosts: 2 });
    work = mkdtempSync(path.join(tmpdir(), 'knr-security-'));
    toolKubeconfig = await leastPrivilegeKubeconfig(cluster.kubeconfig, path.join(work, 'tool.kubeconfig'));
  });

  after(async function () {
    this.timeout(5 * 60_000);
    await cluster?.stop();
  });

  describe('a rename with the shipped ClusterRole', () => {
    const stateDir = () => path.join(work, 'state');
    let token = '';
    let bootstrapMode = '';
    let applyOutput = '';
    let filesWithTokenMidRun = '';

    before(async function () {
      this.timeout(8 * 60_000);
      const plan = writePlan(work, { name: 'sec', nodes: [{ from: 'node-1', to: 'node-1.sec.example.com', host: 'node-1' }], sshConfig: cluster.sshConfig });
      const args = [plan, '--kubeconfig', toolKubeconfig, '--state-dir', stateDir()];
      // Stop the run while the bootstrap kubeconfig exists on the host, to read its mode and token.
      await applyAndKillWhen(args, (line) => line.step === 'bootstrap-credentials' && line.message === 'step succeeded');
      const bootstrap = await cluster.exec('node-1', 'stat -c %a /etc/kubernetes/bootstrap-kubelet.conf && cat /etc/kubernetes/bootstrap-kubelet.conf');
      bootstrapMode = bootstrap.stdout.split('\n')[0]!;
      token = /token: (\S+)/.exec(bootstrap.stdout)?.[1] ?? '';
      filesWithTokenMidRun = (await cluster.exec('node-1', grepTokens('/etc/kubernetes'))).stdout;

      const unlocked = await runCli(['unlock', plan, '--state-dir', stateDir()]);
      expect(unlocked.code, unlocked.stderr).to.equal(0);
      const finished = await runCli(['apply', ...args], { timeoutMs: 6 * 60_000 });
      applyOutput = `${finished.stdout}\n${finished.stderr}`;
      expect(finished.code, applyOutput).to.equal(0);
    });

    it('renames the node', async () => {
      expect(isReady(await getNode(cluster.kubeconfig, 'node-1.sec.example.com'))).to.equal(true);
      expect(await getNode(cluster.kubeconfig, 'node-1')).to.equal(undefined);
    });

    it('writes the bootstrap kubeconfig 0600', () => {
      expect(token, 'token in the bootstrap kubeconfig').to.match(BOOTSTRAP_TOKEN);
      expect(bootstrapMode).to.equal('600');
    });

    it('token search finds a live token', () => {
      // The search the backup check relies on must find the bootstrap kubeconfig while it exists.
      expect(filesWithTokenMidRun).to.include('/etc/kubernetes/bootstrap-kubelet.conf');
    });

    it('keeps secrets out of state and logs', () => {
      const files = walk(stateDir()).filter((entry) => entry.isFile);
      expect(files.map((file) => path.basename(file.path))).to.include.members(['state.json', 'run.log']);
      const secret = token.split('.')[1]!;
      for (const file of files) {
        const text = readFileSync(file.path, 'utf8');
        expect(text, `${file.path} contains the token secret`).to.not.include(secret);
        expect(text, `${file.path} contains a bootstrap token`).to.not.match(BOOTSTRAP_TOKEN);
        expect(text, `${file.path} contains a private key`).to.not.match(PRIVATE_KEY);
      }
      expect(applyOutput, 'apply output').to.not.include(secret);
      expect(stackTraceLines(applyOutput)).to.deep.equal([]);
    });

    it('keeps state files 0600 and folders 0700', () => {
      for (const entry of walk(stateDir())) {
        expect(entry.mode.toString(8), entry.path).to.equal(entry.isFile ? '600' : '700');
      }
      expect((statSync(stateDir()).mode & 0o777).toString(8), stateDir()).to.equal('700');
    });

    it('keeps tokens out of host backups', async () => {
      const secret = token.split('.')[1]!;
      const listing = await cluster.exec('node-1', `find ${BACKUP_ROOT} -type f | sort`);
      expect(listing.stdout, 'backup files').to.include('/credentials/');
      const withToken = await cluster.exec('node-1', `${grepTokens(BACKUP_ROOT)}; grep -rlF '${secret}' ${BACKUP_ROOT}; true`);
      expect(withToken.stdout.trim(), 'backup files with a bootstrap token').to.equal('');
    });

    it('keeps host credential backups 0600', async () => {
      const credentials = await cluster.exec('node-1', `grep -rlE '${CREDENTIAL.source}' ${BACKUP_ROOT} | sort | xargs -r stat -c '%a %n'`);
      const lines = credentials.stdout.trim().split('\n').filter((line) => line !== '');
      expect(lines.length, 'credential files in the backup').to.be.greaterThan(0);
      for (const line of lines) expect(line, 'mode of a backed-up credential').to.match(/^600 /);
      const folders = await cluster.exec('node-1', `find ${BACKUP_ROOT} -type d -perm /077 | sort`);
      expect(folders.stdout.trim(), 'backup folders open to group or others').to.equal('');
    });
  });

  describe('a ServiceAccount missing one permission', () => {
    interface Trim {
      missing: string;
      trim(kind: string, namespace: string | undefined, rules: Rule[]): Rule[];
    }
    const trims: Trim[] = [
      {
        missing: 'approve signers.certificates.k8s.io named kubernetes.io/kube-apiserver-client-kubelet',
        trim: (kind, _namespace, rules) => (kind === 'ClusterRole' ? rules.filter((rule) => !rule.resources.includes('signers')) : rules),
      },
      {
        missing: 'create secrets in namespace kube-system',
        trim: (kind, namespace, rules) => (namespace === 'kube-system' ? rules.map((rule) => ({ ...rule, verbs: rule.verbs.filter((verb) => verb !== 'create') })) : rules),
      },
      {
        missing: 'watch leases.coordination.k8s.io in namespace kube-node-lease',
        trim: (kind, namespace, rules) => (namespace === 'kube-node-lease' ? rules.map((rule) => ({ ...rule, verbs: rule.verbs.filter((verb) => verb !== 'watch') })) : rules),
      },
      {
        missing: 'create pods/eviction',
        trim: (kind, _namespace, rules) => (kind === 'ClusterRole' ? rules.filter((rule) => !rule.resources.includes('pods/eviction')) : rules),
      },
    ];

    for (const [index, trim] of trims.entries()) {
      it(`rejects without ${trim.missing}`, async () => {
        const account = `knr-partial-${index}`;
        await bindTrimmedRoles(cluster.kubeconfig, account, (role) => {
          role.rules = trim.trim(role.kind!, role.metadata?.namespace, role.rules);
        });
        const kubeconfig = await serviceAccountKubeconfig(cluster.kubeconfig, account, path.join(work, `${account}.kubeconfig`));
        const plan = writePlan(work, { name: `partial-${index}`, nodes: [{ from: 'node-2', to: `node-2.partial-${index}.example.com`, host: 'node-2' }], sshConfig: cluster.sshConfig });
        const before = await snapshotCluster(cluster.kubeconfig);

        const result = await runCli(['apply', plan, '--kubeconfig', kubeconfig, '--state-dir', path.join(work, `state-${account}`)], { timeoutMs: 5 * 60_000 });
        const output = `${result.stdout}\n${result.stderr}`;

        // The permission check runs before any step, so nothing ran: the input error code.
        expect(result.code, output).to.equal(2);
        expect(stackTraceLines(output)).to.deep.equal([]);
        expect(output).to.include(`system:serviceaccount:kube-system:${account} lacks permissions a rename needs: ${trim.missing};`);
        expect(output).to.include('deploy/clusterrole.yaml');
        expect(await snapshotCluster(cluster.kubeconfig), 'cluster objects').to.deep.equal(before);
      });
    }
  });
});
