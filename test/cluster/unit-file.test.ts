// Tests of the test hosts' unit-file reading against systemd's documented
// rules, on in-memory files. Needs no root and no cluster.

import { expect } from 'chai';
import {
  EnvironmentFileMissingError,
  expandCommandLine,
  loadUnit,
  NoExecStartError,
  parseEnvironmentFile,
  parseTimeSpan,
  renderCat,
  serviceCommand,
  serviceEnvironment,
  splitQuoted,
  UnitNotFoundError,
  type FileReader,
} from './shim/unit-file.js';

function memoryFiles(files: Record<string, string>): FileReader {
  return {
    read: (path) => files[path],
    list: (folder) =>
      Object.keys(files)
        .filter((path) => path.startsWith(`${folder}/`) && !path.slice(folder.length + 1).includes('/'))
        .map((path) => path.slice(folder.length + 1)),
  };
}

const KUBELET_UNIT = '[Unit]\nDescription=kubelet\n[Service]\nExecStart=/usr/bin/kubelet\nRestart=always\n';
const KUBEADM_DROP_IN = [
  '[Service]',
  'Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"',
  'Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"',
  'EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env',
  'EnvironmentFile=-/etc/default/kubelet',
  'ExecStart=',
  'ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS',
  '',
].join('\n');

describe('unit file reading', function () {
  describe('splitQuoted', function () {
    const cases: Array<[string, string[]]> = [
      ['a b  c', ['a', 'b', 'c']],
      ['"A=x y" B=z', ['A=x y', 'B=z']],
      ["'single quoted' x", ['single quoted', 'x']],
      ['a\\ b', ['a b']],
      ['""', ['']],
      ['', []],
    ];
    for (const [input, expected] of cases) {
      it(`splits ${JSON.stringify(input)}`, function () {
        expect(splitQuoted(input)).to.deep.equal(expected);
      });
    }

    it('rejects an unterminated quote', function () {
      expect(() => splitQuoted('"open')).to.throw('unterminated " quote');
    });
  });

  describe('expandCommandLine', function () {
    const variables = { ARGS: '--one  --two', EMPTY: '', SPACED: 'a b' };
    const cases: Array<[string, string[]]> = [
      ['/bin/x $ARGS', ['/bin/x', '--one', '--two']],
      ['/bin/x ${ARGS}', ['/bin/x', '--one  --two']],
      ['/bin/x $EMPTY $UNSET end', ['/bin/x', 'end']],
      ['/bin/x --flag=$SPACED', ['/bin/x', '--flag=a b']],
      ['/bin/x "$SPACED"', ['/bin/x', 'a', 'b']],
    ];
    for (const [input, expected] of cases) {
      it(`expands ${JSON.stringify(input)}`, function () {
        expect(expandCommandLine(input, variables)).to.deep.equal(expected);
      });
    }
  });

  describe('parseEnvironmentFile', function () {
    it('reads quoted values, comments and continuations', function () {
      const text = '# comment\n; other comment\nA="--x --y"\nB=\'single\'\nC=plain value\nD=one\\\ntwo\n\nnot an assignment\n';
      expect(parseEnvironmentFile(text)).to.deep.equal({ A: '--x --y', B: 'single', C: 'plain value', D: 'onetwo' });
    });
  });

  describe('parseTimeSpan', function () {
    const cases: Array<[string, number]> = [
      ['10', 10_000],
      ['10s', 10_000],
      ['100ms', 100],
      ['1min 30s', 90_000],
    ];
    for (const [input, expected] of cases) {
      it(`reads ${JSON.stringify(input)} as ${expected} ms`, function () {
        expect(parseTimeSpan(input)).to.equal(expected);
      });
    }

    it('rejects an unknown unit', function () {
      expect(() => parseTimeSpan('5 fortnights')).to.throw('unknown unit "fortnights"');
    });
  });

  describe('loadUnit with the kubeadm layout', function () {
    const files = memoryFiles({
      '/usr/lib/systemd/system/kubelet.service': KUBELET_UNIT,
      '/etc/systemd/system/kubelet.service.d/10-kubeadm.conf': KUBEADM_DROP_IN,
      '/var/lib/kubelet/kubeadm-flags.env': 'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/c.sock"\n',
      '/etc/default/kubelet': 'KUBELET_EXTRA_ARGS="--node-ip=10.0.0.5 --hostname-override=new-name"\n',
    });

    it('builds the kubelet command line in kubeadm order', function () {
      const unit = loadUnit('kubelet', files);
      const command = serviceCommand(unit, serviceEnvironment(unit, files));
      expect(command.path).to.equal('/usr/bin/kubelet');
      expect(command.argv).to.deep.equal([
        '/usr/bin/kubelet',
        '--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf',
        '--kubeconfig=/etc/kubernetes/kubelet.conf',
        '--config=/var/lib/kubelet/config.yaml',
        '--container-runtime-endpoint=unix:///run/c.sock',
        '--node-ip=10.0.0.5',
        '--hostname-override=new-name',
      ]);
    });

    it('prints systemctl cat with path headers', function () {
      const unit = loadUnit('kubelet.service', files);
      expect(renderCat(unit)).to.equal(
        `# /usr/lib/systemd/system/kubelet.service\n${KUBELET_UNIT}\n# /etc/systemd/system/kubelet.service.d/10-kubeadm.conf\n${KUBEADM_DROP_IN}`,
      );
    });

    it('skips missing optional environment files', function () {
      const bare = memoryFiles({
        '/usr/lib/systemd/system/kubelet.service': KUBELET_UNIT,
        '/etc/systemd/system/kubelet.service.d/10-kubeadm.conf': KUBEADM_DROP_IN,
      });
      const unit = loadUnit('kubelet', bare);
      const command = serviceCommand(unit, serviceEnvironment(unit, bare));
      expect(command.argv).to.have.length(4);
    });
  });

  describe('loadUnit precedence and errors', function () {
    it('prefers /etc over /usr/lib for the unit and a same-named drop-in', function () {
      const files = memoryFiles({
        '/usr/lib/systemd/system/x.service': '[Service]\nExecStart=/usr/lib/x\n',
        '/etc/systemd/system/x.service': '[Service]\nExecStart=/etc/x\n',
        '/usr/lib/systemd/system/x.service.d/20-a.conf': '[Service]\nEnvironment=V=lib\n',
        '/etc/systemd/system/x.service.d/20-a.conf': '[Service]\nEnvironment=V=etc\n',
        '/usr/lib/systemd/system/x.service.d/10-b.conf': '[Service]\nEnvironment=W=lib\n',
      });
      const unit = loadUnit('x', files);
      expect(unit.fragmentPath).to.equal('/etc/systemd/system/x.service');
      expect(unit.dropInPaths).to.deep.equal(['/usr/lib/systemd/system/x.service.d/10-b.conf', '/etc/systemd/system/x.service.d/20-a.conf']);
      expect(serviceEnvironment(unit, files)).to.deep.equal({ V: 'etc', W: 'lib' });
    });

    it('lets environment files win over Environment=', function () {
      const files = memoryFiles({
        '/etc/systemd/system/y.service': '[Service]\nEnvironmentFile=/etc/y.env\nEnvironment=V=unit\nExecStart=/bin/y $V\n',
        '/etc/y.env': 'V=file\n',
      });
      const unit = loadUnit('y', files);
      expect(serviceCommand(unit, serviceEnvironment(unit, files)).argv).to.deep.equal(['/bin/y', 'file']);
    });

    it('reports a missing required environment file', function () {
      const files = memoryFiles({ '/etc/systemd/system/z.service': '[Service]\nEnvironmentFile=/etc/z.env\nExecStart=/bin/z\n' });
      expect(() => serviceEnvironment(loadUnit('z', files), files)).to.throw(EnvironmentFileMissingError, '/etc/z.env not found');
    });

    it('reports an ExecStart cleared without a replacement', function () {
      const files = memoryFiles({
        '/etc/systemd/system/w.service': '[Service]\nExecStart=/bin/w\n',
        '/etc/systemd/system/w.service.d/10-clear.conf': '[Service]\nExecStart=\n',
      });
      expect(() => serviceCommand(loadUnit('w', files), {})).to.throw(NoExecStartError, 'w.service has no ExecStart=');
    });

    it('reports a unit that does not exist', function () {
      expect(() => loadUnit('missing', memoryFiles({}))).to.throw(UnitNotFoundError, 'Unit missing.service not found.');
    });
  });
});
