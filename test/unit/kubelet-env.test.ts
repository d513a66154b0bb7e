import { expect } from 'chai';

import { expandExecStart, parseEnvironmentFile, parseKubeletArgs, parseSystemctlCat, type ArgumentSource, type KubeletArgument } from '../../steps/kubelet-config.js';
import { catchLayoutError, loadLayout } from '../fixtures/kubelet/load.js';

const UNIT = '/etc/systemd/system/kubelet.service';
const DROP_IN = '/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf';
const FLAGS_ENV = '/var/lib/kubelet/kubeadm-flags.env';

function unitOf(service: string) {
  return parseSystemctlCat(`# ${UNIT}\n[Service]\n${service}\n`);
}

describe('parseEnvironmentFile', () => {
  const cases: Array<{ name: string; content: string; expected: Array<[string, string]> }> = [
    { name: 'double quotes', content: 'A="x y"\n', expected: [['A', 'x y']] },
    { name: 'single quotes keep backslashes', content: "A='x\\ny'\n", expected: [['A', 'x\\ny']] },
    { name: 'double-quote escapes', content: 'A="\\"q\\" \\$HOME \\n"\n', expected: [['A', '"q" $HOME \\n']] },
    { name: 'unquoted blanks trimmed', content: 'A =   x y  \n', expected: [['A', 'x y']] },
    { name: 'unquoted escapes', content: 'A=x\\ \\"y\n', expected: [['A', 'x "y']] },
    { name: 'continuation', content: 'A=x \\\ny\nB=2\n', expected: [['A', 'x y'], ['B', '2']] },
    { name: 'quoted parts joined', content: 'A="x" \'y\'\n', expected: [['A', 'xy']] },
    { name: 'empty value', content: 'A=\nB=""\n', expected: [['A', ''], ['B', '']] },
    { name: 'comments', content: '# A=1\n; B=2\n  # C=3 \\\nD=4\nE=5\n', expected: [['E', '5']] },
    { name: 'export tolerated', content: 'export A=1\n', expected: [['A', '1']] },
    { name: 'invalid lines skipped', content: 'no equals sign\n1A=2\nA-B=3\nC=4', expected: [['C', '4']] },
    { name: 'later assignment kept', content: 'A=1\nA=2\n', expected: [['A', '1'], ['A', '2']] },
  ];
  for (const { name, content, expected } of cases) {
    it(`reads ${name}`, () => {
      expect(parseEnvironmentFile(content).map(({ name: key, value }) => [key, value])).to.deep.equal(expected);
    });
  }

  it('returns lines and written offsets', () => {
    const content = '# flags\nA="--x y"  \nB=\nC= z\n';
    expect(parseEnvironmentFile(content)).to.deep.equal([
      { name: 'A', value: '--x y', line: 2, start: 10, end: 17 },
      { name: 'B', value: '', line: 3, start: 22, end: 22 },
      { name: 'C', value: 'z', line: 4, start: 26, end: 27 },
    ]);
    expect(content.slice(10, 17)).to.equal('"--x y"');
  });
});

describe('expandExecStart', () => {
  it('expands the kubeadm layout', () => {
    const layout = loadLayout('kubeadm-deb-node-name');
    const command = expandExecStart(layout.unit, layout.envFiles);
    const fromDropIn = (line: number, variable: string): ArgumentSource => ({ kind: 'environment', file: DROP_IN, line, variable, split: true });
    const fromFile = (file: string, variable: string): ArgumentSource => ({ kind: 'environment-file', file, line: file === FLAGS_ENV ? 1 : 2, variable, split: true });

    expect(command.executable).to.equal('/usr/bin/kubelet');
    expect(command.unsetVariables).to.deep.equal([]);
    expect(command.args).to.deep.equal([
      { text: '--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf', source: fromDropIn(3, 'KUBELET_KUBECONFIG_ARGS') },
      { text: '--kubeconfig=/etc/kubernetes/kubelet.conf', source: fromDropIn(3, 'KUBELET_KUBECONFIG_ARGS') },
      { text: '--config=/var/lib/kubelet/config.yaml', source: fromDropIn(4, 'KUBELET_CONFIG_ARGS') },
      { text: '--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock', source: fromFile(FLAGS_ENV, 'KUBELET_KUBEADM_ARGS') },
      { text: '--hostname-override=worker-a', source: fromFile(FLAGS_ENV, 'KUBELET_KUBEADM_ARGS') },
      { text: '--node-ip=10.0.0.21', source: fromFile(FLAGS_ENV, 'KUBELET_KUBEADM_ARGS') },
      { text: '--pod-infra-container-image=registry.k8s.io/pause:3.10', source: fromFile(FLAGS_ENV, 'KUBELET_KUBEADM_ARGS') },
      { text: '--node-labels=topology.example.com/rack=r12', source: fromFile('/etc/default/kubelet', 'KUBELET_EXTRA_ARGS') },
      { text: '--max-pods=150', source: fromFile('/etc/default/kubelet', 'KUBELET_EXTRA_ARGS') },
    ]);
  });

  it('lets environment files override Environment=', () => {
    const unit = unitOf('Environment=ARGS=--v=1\nEnvironmentFile=/etc/a\nEnvironmentFile=/etc/b\nExecStart=/usr/bin/kubelet $ARGS');
    const command = expandExecStart(unit, new Map([['/etc/a', 'ARGS=--v=2\n'], ['/etc/b', '# nothing\n']]));
    expect(command.args).to.deep.equal([{ text: '--v=2', source: { kind: 'environment-file', file: '/etc/a', line: 1, variable: 'ARGS', split: true } }]);
  });

  it('lets later files override earlier ones', () => {
    const unit = unitOf('EnvironmentFile=/etc/a\nEnvironmentFile=-/etc/b\nExecStart=/usr/bin/kubelet $ARGS');
    const command = expandExecStart(unit, new Map([['/etc/a', 'ARGS=--v=1\n'], ['/etc/b', '\nARGS=--v=2\n']]));
    expect(command.args.map((argument) => argument.text)).to.deep.equal(['--v=2']);
    expect(command.args[0].source).to.deep.include({ file: '/etc/b', line: 2 });
  });

  const words: Array<{ name: string; execStart: string; expected: string[]; unset?: string[] }> = [
    { name: '${VAR} as one word', execStart: '/usr/bin/kubelet ${TWO}', expected: ['--a=1 --b=2'] },
    { name: '${VAR} inside a word', execStart: '/usr/bin/kubelet --node-ip=${IP}', expected: ['--node-ip=10.0.0.5'] },
    { name: '$VAR inside a word kept', execStart: '/usr/bin/kubelet --node-ip=$IP', expected: ['--node-ip=$IP'] },
    { name: '$$ as a dollar', execStart: '/usr/bin/kubelet --x=$$IP', expected: ['--x=$IP'] },
    { name: '${VAR:-x} kept', execStart: '/usr/bin/kubelet --x=${IP:-1}', expected: ['--x=${IP:-1}'] },
    { name: 'quoted $VAR still split', execStart: '/usr/bin/kubelet "$TWO"', expected: ['--a=1', '--b=2'] },
    { name: 'quotes inside a value', execStart: '/usr/bin/kubelet $QUOTED', expected: ['--node-labels=a=b c', '--v=2'] },
    { name: 'unset $VAR', execStart: '/usr/bin/kubelet $NONE --v=1', expected: ['--v=1'], unset: ['NONE'] },
    { name: 'unset ${VAR}', execStart: '/usr/bin/kubelet --x=${NONE}', expected: ['--x='], unset: ['NONE'] },
    { name: 'argv0 after @', execStart: '@/usr/bin/kubelet kubelet-main --v=1', expected: ['--v=1'] },
  ];
  for (const { name, execStart, expected, unset } of words) {
    it(`expands ${name}`, () => {
      const unit = unitOf(`Environment="TWO=--a=1 --b=2" IP=10.0.0.5 'QUOTED=--node-labels="a=b c" --v=2'\nExecStart=${execStart}`);
      const command = expandExecStart(unit, new Map());
      expect(command.args.map((argument) => argument.text)).to.deep.equal(expected);
      expect(command.unsetVariables).to.deep.equal(unset ?? []);
    });
  }

  it('marks ${VAR} words as not split', () => {
    const command = expandExecStart(unitOf('Environment=IP=10.0.0.5\nExecStart=/usr/bin/kubelet --node-ip=${IP}'), new Map());
    expect(command.args[0].source).to.deep.equal({ kind: 'environment', file: UNIT, line: 2, variable: 'IP', split: false });
  });

  it('rejects an invalid $ reference', () => {
    const error = catchLayoutError(() => expandExecStart(unitOf('ExecStart=/usr/bin/kubelet $A-B'), new Map()));
    expect(error.file).to.equal(UNIT);
    expect(error.problem).to.equal('line 2: ExecStart= uses "$A-B", which is not a valid variable reference; write $NAME or ${NAME}');
  });
});

describe('parseKubeletArgs', () => {
  const source: ArgumentSource = { kind: 'exec-start', file: UNIT, line: 2 };
  const argsOf = (...texts: string[]): KubeletArgument[] => texts.map((text) => ({ text, source }));
  const cases: Array<{ args: string[]; expected: Array<[string, string | undefined]> }> = [
    { args: ['--kubeconfig=/k', '--config', '/c'], expected: [['kubeconfig', '/k'], ['config', '/c']] },
    { args: ['--rotate-certificates', '--v=2'], expected: [['rotate-certificates', undefined], ['v', '2']] },
    { args: ['--rotate-certificates=false'], expected: [['rotate-certificates', 'false']] },
    { args: ['--hostname-override', 'a', '--hostname-override=b'], expected: [['hostname-override', 'a'], ['hostname-override', 'b']] },
    { args: ['-v', '4', '-v=5', '-v6'], expected: [['v', '4'], ['v', '5'], ['v', '6']] },
    { args: ['--node-labels=a=b,c=d', '--unknown-flag'], expected: [['node-labels', 'a=b,c=d'], ['unknown-flag', undefined]] },
    { args: ['--max-pods', '--v=2'], expected: [['max-pods', undefined], ['v', '2']] },
    { args: ['--v=2', '--'], expected: [['v', '2']] },
  ];
  for (const { args, expected } of cases) {
    it(`reads ${args.join(' ')}`, () => {
      const flags = parseKubeletArgs(argsOf(...args));
      expect(flags.map((flag) => [flag.name, flag.value])).to.deep.equal(expected);
      expect(flags.every((flag) => flag.source === source)).to.equal(true);
    });
  }

  const stray: Array<{ args: string[]; word: string }> = [
    { args: ['--rotate-certificates', 'false'], word: 'false' },
    { args: ['kubelet'], word: 'kubelet' },
    { args: ['--v=2', '--', 'extra'], word: 'extra' },
  ];
  for (const { args, word } of stray) {
    it(`rejects the stray argument ${word}`, () => {
      const error = catchLayoutError(() => parseKubeletArgs(argsOf(...args)));
      expect(error.file).to.equal(UNIT);
      expect(error.problem).to.equal(
        `the kubelet's command line has the argument "${word}", which is not a flag (from ExecStart= in ${UNIT} line 2); the kubelet accepts only flags, so fix or remove it`,
      );
    });
  }
});
