import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import winston from 'winston';
import { TransientStepError } from '../../engine/step.js';
import { createHostRunner, HostCommandError, remoteCommand, shellQuote, sshArgs, type SshAccess } from '../../steps/host.js';
import {
  appendHostLine,
  backupHostFile,
  listHostFiles,
  moveIntoBackup,
  readClientIdentity,
  readHostFile,
  restoreFromBackup,
  writeHostFile,
} from '../../steps/host-files.js';

const silent = winston.createLogger({ silent: true });
const local: SshAccess = { transport: 'local', sudo: false, sshOptions: [] };

function localHost() {
  return createHostRunner({ access: local, address: 'localhost', log: silent });
}

function runShell(command: string): string {
  return execFileSync('sh', ['-c', `printf '%s\\n' ${command}`], { encoding: 'utf8' });
}

describe('host command quoting', () => {
  const hostile = [
    'node-1',
    "it's",
    '$(touch /tmp/knr-pwned)',
    '`id`',
    'a b\tc',
    'semi;colon && rm -rf /',
    'new\nline',
    '*',
    '--option',
    '',
  ];
  for (const value of hostile) {
    it(`passes ${JSON.stringify(value)} through sh unchanged`, () => {
      expect(runShell(shellQuote(value))).to.equal(`${value}\n`);
    });
  }

  it('quotes every part of a remote command', () => {
    const command = remoteCommand('cat -- "$1"', ['/etc/x y'], true);
    expect(command).to.equal(`sudo -n -- sh -c 'cat -- "$1"' sh '/etc/x y'`);
  });

  it('builds ssh arguments from the access settings', () => {
    const access: SshAccess = {
      transport: 'ssh',
      user: 'ops',
      port: 2222,
      identityFile: '/keys/id',
      sshConfig: '/cfg/ssh_config',
      sshOptions: ['StrictHostKeyChecking=yes'],
      sudo: true,
    };
    const args = sshArgs(access, '10.0.0.5', 'root', 22);
    expect(args.slice(-2)).to.deep.equal(['--', '10.0.0.5']);
    expect(args.join(' ')).to.include('-F /cfg/ssh_config').and.include('-i /keys/id').and.include('-l root').and.include('-p 22');
    expect(args.join(' ')).to.include('-o StrictHostKeyChecking=yes').and.include('-o BatchMode=yes');
  });
});

describe('host runner', () => {
  it('runs a script with hostile arguments as data', async () => {
    const marker = path.join(tmpdir(), `knr-marker-${process.pid}`);
    const result = await localHost().script('echo', 'printf "%s" "$1"', [`$(touch ${marker})`]);
    expect(result.stdout).to.equal(`$(touch ${marker})`);
    expect(existsSync(marker)).to.equal(false);
  });

  it('reports the command, exit code and stderr on failure', async () => {
    const error = await localHost()
      .script('fail on purpose', 'echo "disk on fire" >&2; exit 7')
      .then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(HostCommandError);
    const failure = error as HostCommandError;
    expect(failure.code).to.equal(7);
    expect(failure.message).to.equal('command "fail on purpose" failed on host localhost (local transport) with exit code 7: disk on fire');
  });

  it('turns an unreachable SSH host into a retryable error', async () => {
    // Port 1 on loopback: nothing listens, so ssh exits with 255 at once.
    const runner = createHostRunner({
      access: { transport: 'ssh', sudo: false, sshOptions: ['StrictHostKeyChecking=no', 'UserKnownHostsFile=/dev/null'] },
      address: '127.0.0.1',
      port: 1,
      log: silent,
    });
    const error = await runner.script('true', 'true').then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(TransientStepError);
    expect((error as Error).message).to.match(/^cannot reach host 127\.0\.0\.1 over SSH \(exit code 255\)/);
  });
});

describe('host files', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'knr-host-files-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a file, or undefined when absent', async () => {
    writeFileSync(path.join(dir, 'a'), 'content\n');
    expect(await readHostFile(localHost(), path.join(dir, 'a'))).to.equal('content\n');
    expect(await readHostFile(localHost(), path.join(dir, 'missing'))).to.equal(undefined);
  });

  it('writes a new secret file with mode 0600', async () => {
    const target = path.join(dir, 'sub', 'bootstrap.conf');
    await writeHostFile(localHost(), target, 'token: x\n', { mode: '600', forceMode: true });
    expect(readFileSync(target, 'utf8')).to.equal('token: x\n');
    expect(statSync(target).mode & 0o777).to.equal(0o600);
  });

  it('writes an empty file without waiting', async () => {
    const target = path.join(dir, 'empty');
    writeFileSync(target, 'old\n');
    await writeHostFile(localHost(), target, '', { mode: '600' });
    expect(readFileSync(target, 'utf8')).to.equal('');
  });

  it('appends lines to a new private file', async () => {
    const target = path.join(dir, 'ids', 'list');
    await appendHostLine(localHost(), target, 'abc123');
    await appendHostLine(localHost(), target, 'def456');
    expect(readFileSync(target, 'utf8')).to.equal('abc123\ndef456\n');
    expect(statSync(target).mode & 0o777).to.equal(0o600);
  });

  it('keeps the mode of a file it replaces', async () => {
    const target = path.join(dir, 'kubeadm-flags.env');
    writeFileSync(target, 'old\n', { mode: 0o640 });
    await writeHostFile(localHost(), target, 'new\n', { mode: '600' });
    expect(readFileSync(target, 'utf8')).to.equal('new\n');
    expect(statSync(target).mode & 0o777).to.equal(0o640);
  });

  it('backs a file up once and keeps the first copy', async () => {
    const source = path.join(dir, 'etc', 'flags.env');
    mkdirSync(path.dirname(source));
    writeFileSync(source, 'first\n');
    const backups = path.join(dir, 'backup');
    const copy = await backupHostFile(localHost(), source, backups);
    expect(copy).to.equal(`${backups}/files${source}`);
    writeFileSync(source, 'second\n');
    await backupHostFile(localHost(), source, backups);
    expect(readFileSync(copy!, 'utf8')).to.equal('first\n');
    expect(await backupHostFile(localHost(), path.join(dir, 'absent'), backups)).to.equal(undefined);
  });

  it('moves certificates and their link into the backup without overwriting', async () => {
    const pki = path.join(dir, 'pki');
    mkdirSync(pki);
    writeFileSync(path.join(pki, 'kubelet-client-2026.pem'), 'cert');
    symlinkSync(path.join(pki, 'kubelet-client-2026.pem'), path.join(pki, 'kubelet-client-current.pem'));
    writeFileSync(path.join(pki, 'kubelet.crt'), 'serving');
    const backups = path.join(dir, 'credentials');
    mkdirSync(backups);
    writeFileSync(path.join(backups, 'kubelet-client-2026.pem'), 'from an earlier rename');

    const files = await listHostFiles(localHost(), pki, 'kubelet-client-*');
    expect(files.sort()).to.deep.equal([path.join(pki, 'kubelet-client-2026.pem'), path.join(pki, 'kubelet-client-current.pem')]);
    const moved = await moveIntoBackup(localHost(), backups, [...files, path.join(pki, 'absent.pem')]);
    expect(moved.map((m) => m.path).sort()).to.deep.equal(files.sort());
    expect(moved.find((m) => m.path.endsWith('kubelet-client-2026.pem'))?.backup).to.equal(path.join(backups, 'kubelet-client-2026.pem.1'));
    expect(existsSync(path.join(pki, 'kubelet.crt'))).to.equal(true);
    expect(readFileSync(path.join(backups, 'kubelet-client-2026.pem'), 'utf8')).to.equal('from an earlier rename');
    expect(readFileSync(path.join(backups, 'kubelet-client-2026.pem.1'), 'utf8')).to.equal('cert');
    expect(lstatSync(path.join(backups, 'kubelet-client-current.pem')).isSymbolicLink()).to.equal(true);
    expect(readlinkSync(path.join(backups, 'kubelet-client-current.pem'))).to.equal(path.join(pki, 'kubelet-client-2026.pem'));
    expect(statSync(backups).mode & 0o777).to.equal(0o700);

    writeFileSync(path.join(pki, 'kubelet-client-current.pem'), 'written by the new kubelet');
    const aside = path.join(dir, 'aside');
    const restored = await restoreFromBackup(localHost(), moved, aside);
    expect(restored).to.have.length(2);
    expect(readFileSync(path.join(pki, 'kubelet-client-2026.pem'), 'utf8')).to.equal('cert');
    expect(readlinkSync(path.join(pki, 'kubelet-client-current.pem'))).to.equal(path.join(pki, 'kubelet-client-2026.pem'));
    expect(readFileSync(path.join(aside, 'kubelet-client-current.pem'), 'utf8')).to.equal('written by the new kubelet');
  });

  it('reads the client identity without the private key', async () => {
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/O=system:nodes/CN=system:node:worker-1.example.com', '-keyout', key, '-out', cert,
    ], { stdio: 'ignore' });
    const combined = path.join(dir, 'kubelet-client-current.pem');
    writeFileSync(combined, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));
    const kubeconfig = path.join(dir, 'kubelet.conf');
    writeFileSync(kubeconfig, `users:\n- name: default-auth\n  user:\n    client-certificate: ${combined}\n    client-key: ${combined}\n`);

    const seen: string[] = [];
    const inner = localHost();
    const recording = {
      target: inner.target,
      script: async (...args: Parameters<typeof inner.script>) => {
        const result = await inner.script(...args);
        seen.push(result.stdout);
        return result;
      },
    };
    const identity = await readClientIdentity(recording, kubeconfig);
    expect(seen.join('')).to.include('BEGIN CERTIFICATE').and.not.include('PRIVATE KEY');
    expect(identity?.commonName).to.equal('system:node:worker-1.example.com');
    expect(identity!.notAfter.getTime()).to.be.greaterThan(Date.now());
    expect(await readClientIdentity(localHost(), path.join(dir, 'missing.conf'))).to.equal(undefined);
  });
});
