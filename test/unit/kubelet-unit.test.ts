import { expect } from 'chai';

import { parseSystemctlCat } from '../../steps/kubelet-config.js';
import { splitWords, WordSplitError, type SplitMode } from '../../steps/kubelet-words.js';
import { catchLayoutError, layoutNames, loadLayout, systemctlCatOf } from '../fixtures/kubelet/load.js';

const UNIT = '/usr/lib/systemd/system/kubelet.service';
const DROP_IN = '/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf';

describe('splitWords', () => {
  const cases: Array<{ mode: SplitMode; text: string; words: string[] }> = [
    { mode: 'unit', text: '/usr/bin/kubelet  --v=2\t--x', words: ['/usr/bin/kubelet', '--v=2', '--x'] },
    { mode: 'unit', text: 'a "b c" \'d e\'', words: ['a', 'b c', 'd e'] },
    { mode: 'unit', text: 'a"b c"d', words: ['ab cd'] },
    { mode: 'unit', text: '\\x41\\s\\101 "\\t"', words: ['A A', '\t'] },
    { mode: 'unit', text: "'\\n' \\\"", words: ['\n', '"'] },
    { mode: 'unit', text: 'a \\\n    b', words: ['a', 'b'] },
    { mode: 'unit', text: 'a\\ b \\;', words: ['a b', ';'] },
    { mode: 'variable', text: '"--a=b c" d\\ e', words: ['--a=b c', 'd e'] },
    { mode: 'variable', text: '--a=\\n "open', words: ['--a=n', 'open'] },
    { mode: 'variable', text: '  ', words: [] },
  ];
  for (const { mode, text, words } of cases) {
    it(`splits ${JSON.stringify(text)} in ${mode} mode`, () => {
      expect(splitWords(text, mode).map((word) => word.text)).to.deep.equal(words);
    });
  }

  it('returns the written offsets', () => {
    expect(splitWords('a "b c"  d', 'unit')).to.deep.equal([
      { text: 'a', start: 0, end: 1 },
      { text: 'b c', start: 2, end: 7 },
      { text: 'd', start: 9, end: 10 },
    ]);
  });

  const invalid: Array<{ text: string; message: string }> = [
    { text: 'a "b', message: 'the quote " opened at offset 2 is never closed' },
    { text: 'a \\q', message: 'invalid escape \\q at offset 2' },
    { text: 'a \\', message: 'the text ends with a lone backslash' },
  ];
  for (const { text, message } of invalid) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      expect(() => splitWords(text, 'unit')).to.throw(WordSplitError).with.property('message', message);
    });
  }
});

describe('parseSystemctlCat', () => {
  for (const name of layoutNames()) {
    it(`matches the unit files of ${name}`, () => {
      const layout = loadLayout(name);
      const onDisk = layout.hostFiles().filter((path) => path.includes('/systemd/system/'));
      expect(layout.unit.files.map((file) => file.path).sort()).to.deep.equal(onDisk);
      for (const file of layout.unit.files) {
        expect(file.content, file.path).to.equal(layout.readHostFile(file.path));
      }
    });
  }

  it('reads the kubeadm drop-in', () => {
    const unit = loadLayout('kubeadm-deb').unit;
    expect(unit.name).to.equal('kubelet.service');
    expect(unit.execStart).to.deep.equal([
      {
        file: DROP_IN,
        line: 11,
        raw: '/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS',
        prefixes: '',
        words: ['/usr/bin/kubelet', '$KUBELET_KUBECONFIG_ARGS', '$KUBELET_CONFIG_ARGS', '$KUBELET_KUBEADM_ARGS', '$KUBELET_EXTRA_ARGS'],
      },
    ]);
    expect(unit.environment).to.deep.equal([
      {
        file: DROP_IN,
        line: 3,
        name: 'KUBELET_KUBECONFIG_ARGS',
        value: '--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf',
      },
      { file: DROP_IN, line: 4, name: 'KUBELET_CONFIG_ARGS', value: '--config=/var/lib/kubelet/config.yaml' },
    ]);
    expect(unit.environmentFiles).to.deep.equal([
      { file: DROP_IN, line: 6, path: '/var/lib/kubelet/kubeadm-flags.env', optional: true },
      { file: DROP_IN, line: 9, path: '/etc/default/kubelet', optional: true },
    ]);
  });

  it('joins continuation lines', () => {
    const [execStart] = loadLayout('handmade').unit.execStart;
    expect(execStart.line).to.equal(7);
    expect(execStart.raw.split('\n')).to.have.length(7);
    expect(execStart.words).to.deep.equal([
      '/usr/local/bin/kubelet',
      '--kubeconfig=/var/lib/kubelet/kubeconfig',
      '--config',
      '/var/lib/kubelet/kubelet-config.yaml',
      '--cert-dir=/var/lib/kubelet/certs',
      '--hostname-override',
      'node-a',
      '--rotate-certificates',
      '--v=2',
    ]);
  });

  it('skips comments inside a continuation', () => {
    const unit = parseSystemctlCat(systemctlCatOf({ [UNIT]: '[Service]\nExecStart=/usr/bin/kubelet \\\n# --v=9 \\\n  --v=2\n' }));
    expect(unit.execStart[0].words).to.deep.equal(['/usr/bin/kubelet', '--v=2']);
  });

  it('clears lists on empty assignments', () => {
    const unit = parseSystemctlCat(
      systemctlCatOf({
        [UNIT]: '[Service]\nEnvironment=A=1 "B=2 3"\nEnvironmentFile=/etc/a\nExecStart=/usr/bin/kubelet\n',
        [DROP_IN]: '[Service]\nEnvironment=\nEnvironmentFile=\nEnvironment=C=4\nEnvironmentFile=-/etc/b\n',
      }),
    );
    expect(unit.environment).to.deep.equal([{ file: DROP_IN, line: 4, name: 'C', value: '4' }]);
    expect(unit.environmentFiles).to.deep.equal([{ file: DROP_IN, line: 5, path: '/etc/b', optional: true }]);
    expect(unit.execStart.map((setting) => setting.file)).to.deep.equal([UNIT]);
  });

  it('splits several Environment assignments', () => {
    const unit = parseSystemctlCat(systemctlCatOf({ [UNIT]: '[Service]\nEnvironment=A=1 "B=2 3" not-valid 9X=1 C=\n' }));
    expect(unit.environment.map(({ name, value }) => [name, value])).to.deep.equal([
      ['A', '1'],
      ['B', '2 3'],
      ['C', ''],
    ]);
  });

  it('ignores settings outside [Service]', () => {
    const unit = parseSystemctlCat(systemctlCatOf({ [UNIT]: '[Unit]\nExecStart=/bin/false\n[Install]\nEnvironment=A=1\n' }));
    expect(unit.execStart).to.deep.equal([]);
    expect(unit.environment).to.deep.equal([]);
  });

  it('reads exec prefixes and %%', () => {
    const unit = parseSystemctlCat(systemctlCatOf({ [UNIT]: '[Service]\nExecStart=-@/usr/bin/kubelet kubelet --node-labels=a=50%%\n' }));
    expect(unit.execStart[0].prefixes).to.equal('-@');
    expect(unit.execStart[0].words).to.deep.equal(['/usr/bin/kubelet', 'kubelet', '--node-labels=a=50%']);
    expect(unit.execStart[0].raw).to.equal('-@/usr/bin/kubelet kubelet --node-labels=a=50%%');
  });

  it('keeps comment lines that look like paths', () => {
    const unit = parseSystemctlCat(`# ${UNIT}\n[Service]\n# /etc/kubernetes/kubelet.conf\nExecStart=/usr/bin/kubelet\n`);
    expect(unit.files.map((file) => file.path)).to.deep.equal([UNIT]);
  });

  it('tolerates a changed-on-disk warning', () => {
    const unit = parseSystemctlCat(`# Warning: kubelet.service changed on disk, the version systemd has loaded is outdated.\n# ${UNIT}\n[Service]\nExecStart=/usr/bin/kubelet\n`);
    expect(unit.files).to.have.length(1);
  });

  const invalid: Array<{ name: string; output: string; file: string; problem: string }> = [
    {
      name: 'empty output',
      output: '',
      file: 'output of systemctl cat kubelet',
      problem: 'no unit file found; check that the kubelet unit is installed',
    },
    {
      name: 'output without a header',
      output: 'No files found for kubelet.service.\n',
      file: 'output of systemctl cat kubelet',
      problem: 'expected a "# /path/to/kubelet.service" header line first, found "No files found for kubelet.service."; pass the unchanged output of "systemctl cat kubelet"',
    },
    {
      name: 'a line without =',
      output: systemctlCatOf({ [UNIT]: '[Service]\nExecStart /usr/bin/kubelet\n' }),
      file: UNIT,
      problem: 'line 2 is neither a section, a comment nor a Key=Value assignment',
    },
    {
      name: 'several commands',
      output: systemctlCatOf({ [UNIT]: '[Service]\nExecStart=/usr/bin/kubelet ; /bin/true\n' }),
      file: UNIT,
      problem: 'line 2: ExecStart= runs several commands separated by ";"; the kubelet\'s unit must run one command',
    },
    {
      name: 'an invalid escape',
      output: systemctlCatOf({ [UNIT]: '[Service]\nExecStart=/usr/bin/kubelet --x=\\q\n' }),
      file: UNIT,
      problem: 'line 2: ExecStart= cannot be split into words: invalid escape \\q at offset 21',
    },
  ];
  for (const { name, output, file, problem } of invalid) {
    it(`rejects ${name}`, () => {
      const error = catchLayoutError(() => parseSystemctlCat(output));
      expect(error.file).to.equal(file);
      expect(error.problem).to.equal(problem);
    });
  }
});
