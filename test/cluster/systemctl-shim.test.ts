// Tests of the test hosts' systemctl and journalctl shims, run as real
// processes on a temporary folder that stands for the host's `/`. The
// service is a small shell script, so no root and no cluster are needed.

import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runProcess, waitFor, type ExecResult } from './harness.js';

const SHIM_DIR = fileURLToPath(new URL('./shim/', import.meta.url));

describe('systemctl shim', function () {
  this.timeout(60_000);

  let root: string;

  function shim(program: 'systemctl' | 'journalctl', args: string[]): Promise<ExecResult> {
    return runProcess(process.execPath, [join(SHIM_DIR, `${program}.js`), ...args], undefined, { ...process.env, KNR_SHIM_ROOT: root });
  }

  function writeHostFile(path: string, text: string): void {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }

  /** Reads the PID file the service script writes, once it exists. */
  function servicePid(): number | undefined {
    try {
      return Number(readFileSync(join(root, 'service.pid'), 'utf8'));
    } catch {
      return undefined;
    }
  }

  beforeEach(function () {
    root = mkdtempSync(join(tmpdir(), 'knr-shim-'));
    // The service prints its arguments, records its PID, and keeps a child
    // process, as the kubelet keeps helpers, until it is stopped.
    writeHostFile(
      '/usr/lib/systemd/system/demo.service',
      `[Unit]\nDescription=demo service\n[Service]\nExecStart=/bin/sh -c 'echo "args: $*"; echo $$ > ${root}/service.pid; sleep 300 & wait' demo $ARGS\nRestart=always\nRestartSec=1\n`,
    );
    writeHostFile('/etc/systemd/system/demo.service.d/10-env.conf', '[Service]\nEnvironmentFile=-/etc/default/demo\n');
    writeHostFile('/etc/default/demo', 'ARGS="--first --second"\n');
  });

  afterEach(async function () {
    await shim('systemctl', ['stop', 'demo']);
    rmSync(root, { recursive: true, force: true });
  });

  it('starts and stops a service', async function () {
    const start = await shim('systemctl', ['start', 'demo']);
    const pid = await waitFor('the service PID', 10_000, async () => servicePid(), 100);
    expect(start.code, start.stderr).to.equal(0);
    const active = await shim('systemctl', ['is-active', 'demo']);
    expect(active.stdout).to.equal('active\n');
    expect(active.code).to.equal(0);

    const journal = await waitFor('the service output in the journal', 10_000, async () => {
      const result = await shim('journalctl', ['-u', 'demo', '--no-pager']);
      return result.stdout.includes('args: --first --second') ? result.stdout : undefined;
    }, 100);
    expect(journal).to.match(/systemd\[1\]: Started demo\.service - demo service\./);

    const stop = await shim('systemctl', ['stop', 'demo']);
    expect(stop.code, stop.stderr).to.equal(0);
    const inactive = await shim('systemctl', ['is-active', 'demo']);
    expect(inactive.stdout).to.equal('inactive\n');
    expect(inactive.code).to.equal(3);
    // The service leads its own process group, so this finds its children
    // too. Zombies are dead already; reaping them is up to their new parent.
    const group = await runProcess('ps', ['-o', 'pid=,stat=,args=', '-g', String(pid)]);
    const living = group.stdout.split('\n').filter((line) => line.trim() !== '' && !/^\s*\d+\s+Z/.test(line));
    expect(living, 'processes of the stopped service').to.deep.equal([]);
  });

  it('rereads environment files on restart', async function () {
    await shim('systemctl', ['start', 'demo']);
    writeHostFile('/etc/default/demo', 'ARGS="--changed"\n');
    const restart = await shim('systemctl', ['restart', 'demo']);
    expect(restart.code, restart.stderr).to.equal(0);
    expect(restart.stderr, 'an environment file edit needs no daemon-reload').to.equal('');

    const journal = await waitFor('the restarted service output', 10_000, async () => {
      const result = await shim('journalctl', ['-u', 'demo', '-o', 'cat']);
      return result.stdout.includes('args: --changed') ? result.stdout : undefined;
    }, 100);
    expect(journal).to.contain('args: --first --second');
  });

  it('warns when a drop-in changes without daemon-reload', async function () {
    await shim('systemctl', ['start', 'demo']);
    writeHostFile('/etc/systemd/system/demo.service.d/20-more.conf', '[Service]\nEnvironment=EXTRA=1\n');
    const stale = await shim('systemctl', ['restart', 'demo']);
    expect(stale.stderr).to.contain("changed on disk. Run 'systemctl daemon-reload' to reload units.");

    const reload = await shim('systemctl', ['daemon-reload']);
    expect(reload.code).to.equal(0);
    const fresh = await shim('systemctl', ['restart', 'demo']);
    expect(fresh.stderr).to.equal('');
    const show = await shim('systemctl', ['show', '-p', 'DropInPaths', '--value', 'demo']);
    expect(show.stdout.trim()).to.equal(`/etc/systemd/system/demo.service.d/10-env.conf /etc/systemd/system/demo.service.d/20-more.conf`);
  });

  it('restarts a killed service', async function () {
    await shim('systemctl', ['start', 'demo']);
    const first = await waitFor('the first service PID', 10_000, async () => servicePid(), 100);
    process.kill(first, 'SIGKILL');

    const second = await waitFor('a restarted service', 15_000, async () => {
      const pid = servicePid();
      return pid !== undefined && pid !== first ? pid : undefined;
    }, 200);
    expect(second).to.not.equal(first);
    const restarts = await shim('systemctl', ['show', '-p', 'NRestarts', 'demo']);
    expect(restarts.stdout).to.equal('NRestarts=1\n');
  });

  it('prints unit and drop-ins for cat', async function () {
    const cat = await shim('systemctl', ['cat', 'demo']);
    const headers = cat.stdout.split('\n').filter((line) => line.startsWith('# /'));
    expect(headers).to.deep.equal(['# /usr/lib/systemd/system/demo.service', '# /etc/systemd/system/demo.service.d/10-env.conf']);
  });

  it('reports a missing unit with code 5', async function () {
    const result = await shim('systemctl', ['start', 'missing']);
    expect(result.code).to.equal(5);
    expect(result.stderr).to.equal('Unit missing.service could not be found.\n');
  });
});
