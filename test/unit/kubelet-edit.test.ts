import { expect } from 'chai';

import {
  KubeletEditError,
  locateKubeletSettings,
  parseSystemctlCat,
  renderExecStartDropIn,
  setConfigField,
  setFlagInEnvFile,
  setFlagInExecStart,
} from '../../steps/kubelet-config.js';
import { loadLayout } from '../fixtures/kubelet/load.js';

const FLAGS_ENV = '/var/lib/kubelet/kubeadm-flags.env';
const RUNTIME = '--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock';
const PAUSE = '--pod-infra-container-image=registry.k8s.io/pause:3.10';
const EXTRA_COMMENT = '# Extra kubelet flags for this host.\n';
const EXTRA_FLAGS = 'KUBELET_EXTRA_ARGS=--node-labels=topology.example.com/rack=r12 --max-pods=150';

const withOverride = loadLayout('kubeadm-deb-node-name');
const withoutOverride = loadLayout('kubeadm-deb');

const envFileCases: Array<{ name: string; content: string; variable: string; flag: string; value: string | null; expected: string }> = [
  {
    name: 'replaces the value inside quotes',
    content: withOverride.readHostFile(FLAGS_ENV)!,
    variable: 'KUBELET_KUBEADM_ARGS',
    flag: 'hostname-override',
    value: 'worker-b',
    expected: `KUBELET_KUBEADM_ARGS="${RUNTIME} --hostname-override=worker-b --node-ip=10.0.0.21 ${PAUSE}"\n`,
  },
  {
    name: 'removes the flag and one blank',
    content: withOverride.readHostFile(FLAGS_ENV)!,
    variable: 'KUBELET_KUBEADM_ARGS',
    flag: 'hostname-override',
    value: null,
    expected: `KUBELET_KUBEADM_ARGS="${RUNTIME} --node-ip=10.0.0.21 ${PAUSE}"\n`,
  },
  {
    name: 'adds the flag inside the quotes',
    content: withoutOverride.readHostFile(FLAGS_ENV)!,
    variable: 'KUBELET_KUBEADM_ARGS',
    flag: '--hostname-override',
    value: 'worker-b',
    expected: `KUBELET_KUBEADM_ARGS="${RUNTIME} ${PAUSE} --hostname-override=worker-b"\n`,
  },
  {
    name: 'adds the variable to an empty file',
    content: withoutOverride.readHostFile('/etc/default/kubelet')!,
    variable: 'KUBELET_EXTRA_ARGS',
    flag: 'hostname-override',
    value: 'worker-b',
    expected: 'KUBELET_EXTRA_ARGS="--hostname-override=worker-b"\n',
  },
  {
    name: 'adds the variable after a last line without newline',
    content: '# managed by hand\nOTHER=1',
    variable: 'KUBELET_EXTRA_ARGS',
    flag: 'hostname-override',
    value: 'worker-b',
    expected: '# managed by hand\nOTHER=1\nKUBELET_EXTRA_ARGS="--hostname-override=worker-b"\n',
  },
  {
    name: 'fills an empty unquoted value',
    content: loadLayout('kubeadm-rpm').readHostFile('/etc/sysconfig/kubelet')!,
    variable: 'KUBELET_EXTRA_ARGS',
    flag: 'hostname-override',
    value: 'worker-b',
    expected: 'KUBELET_EXTRA_ARGS=--hostname-override=worker-b\n',
  },
  {
    name: 'appends to an unquoted value',
    content: withOverride.readHostFile('/etc/default/kubelet')!,
    variable: 'KUBELET_EXTRA_ARGS',
    flag: 'rotate-certificates',
    value: 'false',
    expected: `${EXTRA_COMMENT}${EXTRA_FLAGS} --rotate-certificates=false\n`,
  },
  {
    name: 'replaces a separate value word',
    content: "KUBELET_EXTRA_ARGS='--hostname-override old --v=2'\n",
    variable: 'KUBELET_EXTRA_ARGS',
    flag: 'hostname-override',
    value: 'new',
    expected: "KUBELET_EXTRA_ARGS='--hostname-override new --v=2'\n",
  },
  {
    name: 'removes a leading flag and its value',
    content: 'KUBELET_EXTRA_ARGS="--hostname-override old --v=2"\n',
    variable: 'KUBELET_EXTRA_ARGS',
    flag: 'hostname-override',
    value: null,
    expected: 'KUBELET_EXTRA_ARGS="--v=2"\n',
  },
  {
    name: 'empties a value holding only the flag',
    content: 'KUBELET_EXTRA_ARGS="--hostname-override=old"\n',
    variable: 'KUBELET_EXTRA_ARGS',
    flag: 'hostname-override',
    value: null,
    expected: 'KUBELET_EXTRA_ARGS=""\n',
  },
  {
    name: 'keeps one of repeated flags',
    content: 'KUBELET_EXTRA_ARGS="--hostname-override=a  --v=2 --hostname-override=b"\n',
    variable: 'KUBELET_EXTRA_ARGS',
    flag: 'hostname-override',
    value: 'c',
    expected: 'KUBELET_EXTRA_ARGS="--hostname-override=c  --v=2"\n',
  },
  {
    name: 'removes repeated leading flags',
    content: 'KUBELET_EXTRA_ARGS="--hostname-override=a  --hostname-override=b --v=2"\n',
    variable: 'KUBELET_EXTRA_ARGS',
    flag: 'hostname-override',
    value: null,
    expected: 'KUBELET_EXTRA_ARGS="--v=2"\n',
  },
  {
    name: 'edits the last assignment only',
    content: '# old value\nKUBELET_EXTRA_ARGS=--v=1\n\n# current value\nKUBELET_EXTRA_ARGS="--v=2"\n',
    variable: 'KUBELET_EXTRA_ARGS',
    flag: 'hostname-override',
    value: 'a',
    expected: '# old value\nKUBELET_EXTRA_ARGS=--v=1\n\n# current value\nKUBELET_EXTRA_ARGS="--v=2 --hostname-override=a"\n',
  },
  {
    name: 'leaves an absent flag absent',
    content: withoutOverride.readHostFile(FLAGS_ENV)!,
    variable: 'KUBELET_KUBEADM_ARGS',
    flag: 'hostname-override',
    value: null,
    expected: withoutOverride.readHostFile(FLAGS_ENV)!,
  },
  {
    name: 'leaves an absent variable absent',
    content: '',
    variable: 'KUBELET_EXTRA_ARGS',
    flag: 'hostname-override',
    value: null,
    expected: '',
  },
];

const HANDMADE = loadLayout('handmade').locate().hostnameOverride;
const HANDMADE_LINE = HANDMADE.kind === 'exec-start-drop-in' ? HANDMADE.commandLine : '';
const handmadeLines = (...flags: string[]): string => ['/usr/local/bin/kubelet', ...flags.map((flag) => `    ${flag}`)].join(' \\\n');

const execStartCases: Array<{ name: string; commandLine: string; flag: string; value: string | null; expected: string }> = [
  {
    name: 'replaces a separate value word',
    commandLine: HANDMADE_LINE,
    flag: 'hostname-override',
    value: 'node-b',
    expected: handmadeLines(
      '--kubeconfig=/var/lib/kubelet/kubeconfig',
      '--config /var/lib/kubelet/kubelet-config.yaml',
      '--cert-dir=/var/lib/kubelet/certs',
      '--hostname-override node-b',
      '--rotate-certificates',
      '--v=2',
    ),
  },
  {
    name: 'removes a flag with its line',
    commandLine: HANDMADE_LINE,
    flag: 'hostname-override',
    value: null,
    expected: handmadeLines(
      '--kubeconfig=/var/lib/kubelet/kubeconfig',
      '--config /var/lib/kubelet/kubelet-config.yaml',
      '--cert-dir=/var/lib/kubelet/certs',
      '--rotate-certificates',
      '--v=2',
    ),
  },
  {
    name: 'replaces a bare boolean flag',
    commandLine: HANDMADE_LINE,
    flag: 'rotate-certificates',
    value: 'false',
    expected: handmadeLines(
      '--kubeconfig=/var/lib/kubelet/kubeconfig',
      '--config /var/lib/kubelet/kubelet-config.yaml',
      '--cert-dir=/var/lib/kubelet/certs',
      '--hostname-override node-a',
      '--rotate-certificates=false',
      '--v=2',
    ),
  },
  {
    name: 'adds a continuation line',
    commandLine: HANDMADE_LINE,
    flag: 'node-ip',
    value: '10.0.0.5',
    expected: handmadeLines(
      '--kubeconfig=/var/lib/kubelet/kubeconfig',
      '--config /var/lib/kubelet/kubelet-config.yaml',
      '--cert-dir=/var/lib/kubelet/certs',
      '--hostname-override node-a',
      '--rotate-certificates',
      '--v=2',
      '--node-ip=10.0.0.5',
    ),
  },
  {
    name: 'removes the last line',
    commandLine: HANDMADE_LINE,
    flag: 'v',
    value: null,
    expected: handmadeLines(
      '--kubeconfig=/var/lib/kubelet/kubeconfig',
      '--config /var/lib/kubelet/kubelet-config.yaml',
      '--cert-dir=/var/lib/kubelet/certs',
      '--hostname-override node-a',
      '--rotate-certificates',
    ),
  },
  {
    name: 'adds to a single line',
    commandLine: '-/usr/bin/kubelet --kubeconfig=/etc/kubernetes/kubelet.conf $KUBELET_ARGS',
    flag: 'hostname-override',
    value: 'node-b',
    expected: '-/usr/bin/kubelet --kubeconfig=/etc/kubernetes/kubelet.conf $KUBELET_ARGS --hostname-override=node-b',
  },
  {
    name: 'replaces a quoted word',
    commandLine: '/usr/bin/kubelet "--hostname-override=old name" --v=2',
    flag: 'hostname-override',
    value: 'new',
    expected: '/usr/bin/kubelet --hostname-override=new --v=2',
  },
  {
    name: 'skips argv0 after @',
    commandLine: '@/usr/bin/kubelet --hostname-override=x --v=2',
    flag: 'hostname-override',
    value: 'y',
    expected: '@/usr/bin/kubelet --hostname-override=x --v=2 --hostname-override=y',
  },
];

const CONFIG = '/var/lib/kubelet/config.yaml';
const configCases: Array<{ name: string; text: string; value: boolean; expected: string }> = [
  {
    name: 'replaces the value in kubeadm output',
    text: withoutOverride.readHostFile(CONFIG)!,
    value: false,
    expected: withoutOverride.readHostFile(CONFIG)!.replace('rotateCertificates: true\n', 'rotateCertificates: false\n'),
  },
  {
    name: 'keeps the comment on the line',
    text: loadLayout('kubeadm-rpm').readHostFile(CONFIG)!,
    value: false,
    expected: [
      '# Written by kubeadm join, then tuned by hand.',
      'apiVersion: kubelet.config.k8s.io/v1beta1',
      'kind: KubeletConfiguration',
      'cgroupDriver: systemd',
      'clusterDNS:',
      '- 10.96.0.10',
      'clusterDomain: cluster.local',
      '# Renew the client certificate before it expires.',
      'rotateCertificates: false   # turned on for all workers',
      'serverTLSBootstrap: true',
      'staticPodPath: /etc/kubernetes/manifests',
      '',
    ].join('\n'),
  },
  {
    name: 'appends an absent field',
    text: withOverride.readHostFile(CONFIG)!,
    value: true,
    expected: [
      '# Kubelet configuration kept by hand on this worker.',
      'apiVersion: kubelet.config.k8s.io/v1beta1',
      'kind: KubeletConfiguration',
      "# Must match containerd's SystemdCgroup setting.",
      'cgroupDriver: systemd',
      'clusterDNS:',
      '  - 10.96.0.10',
      'clusterDomain: cluster.local',
      'authentication:',
      '  x509:',
      '    clientCAFile: /etc/kubernetes/pki/ca.crt',
      'rotateCertificates: true',
      '',
    ].join('\n'),
  },
  {
    name: 'appends after a last line without newline',
    text: 'kind: KubeletConfiguration',
    value: false,
    expected: 'kind: KubeletConfiguration\nrotateCertificates: false\n',
  },
  {
    name: 'replaces a quoted key',
    text: '"rotateCertificates": false\nkind: KubeletConfiguration\n',
    value: true,
    expected: '"rotateCertificates": true\nkind: KubeletConfiguration\n',
  },
];

describe('setFlagInEnvFile', () => {
  for (const { name, content, variable, flag, value, expected } of envFileCases) {
    it(name, () => {
      const first = setFlagInEnvFile(content, variable, flag, value);
      expect(first.text).to.equal(expected);
      expect(first.changed).to.equal(expected !== content);

      const second = setFlagInEnvFile(first.text, variable, flag, value);
      expect(second.text).to.equal(expected);
      expect(second.changed).to.equal(false);
    });
  }

  const invalid: Array<{ name: string; content: string; value: string | null; flag?: string; message: string }> = [
    {
      name: 'rejects a value with a blank',
      content: '',
      value: 'a b',
      message: 'cannot edit KUBELET_EXTRA_ARGS: the value "a b" for --hostname-override is empty or has characters that need quoting; use letters, digits and . _ : / @ + , = - only',
    },
    {
      name: 'rejects an empty value',
      content: '',
      value: '',
      message: 'cannot edit KUBELET_EXTRA_ARGS: the value "" for --hostname-override is empty or has characters that need quoting; use letters, digits and . _ : / @ + , = - only',
    },
    {
      name: 'rejects an invalid flag name',
      content: '',
      value: 'a',
      flag: '--Bad Flag',
      message: 'cannot edit KUBELET_EXTRA_ARGS: "--Bad Flag" is not a valid flag name; pass a name such as hostname-override',
    },
    {
      name: 'rejects a value with backslashes',
      content: 'KUBELET_EXTRA_ARGS="--v=2 \\\n  --max-pods=10"\n',
      value: 'a',
      message: 'cannot edit KUBELET_EXTRA_ARGS: its value uses backslashes or several quoted parts, which the tool does not rewrite; edit it by hand',
    },
    {
      name: 'rejects quoted blanks in a word',
      content: 'KUBELET_EXTRA_ARGS=--node-labels="a=b c" --v=2\n',
      value: 'a',
      message: 'cannot edit KUBELET_EXTRA_ARGS: the word "--node-labels=a=b c" contains quoted blanks; edit KUBELET_EXTRA_ARGS by hand',
    },
  ];
  for (const { name, content, value, flag, message } of invalid) {
    it(name, () => {
      expect(() => setFlagInEnvFile(content, 'KUBELET_EXTRA_ARGS', flag ?? 'hostname-override', value))
        .to.throw(KubeletEditError)
        .with.property('message', message);
    });
  }
});

describe('setFlagInExecStart', () => {
  for (const { name, commandLine, flag, value, expected } of execStartCases) {
    it(name, () => {
      const first = setFlagInExecStart(commandLine, flag, value);
      expect(first.text).to.equal(expected);
      expect(first.changed).to.equal(true);

      const second = setFlagInExecStart(first.text, flag, value);
      expect(second.text).to.equal(expected);
      expect(second.changed).to.equal(false);
    });
  }

  it('rejects an unterminated quote', () => {
    expect(() => setFlagInExecStart('/usr/bin/kubelet "--v=2', 'hostname-override', 'a'))
      .to.throw(KubeletEditError)
      .with.property('message', 'cannot edit ExecStart: the command line cannot be split into words: the quote " opened at offset 17 is never closed');
  });
});

describe('renderExecStartDropIn', () => {
  it('renders the handmade command', () => {
    const edited = setFlagInExecStart(HANDMADE_LINE, 'hostname-override', 'node-b').text;
    expect(renderExecStartDropIn(edited)).to.equal(
      [
        '# Written by kube-node-rename. It replaces the kubelet command line so that its flags',
        '# can change without editing the packaged unit. Remove it to go back to the packaged command.',
        '[Service]',
        'ExecStart=',
        `ExecStart=${edited}`,
        '',
      ].join('\n'),
    );
  });

  it('round-trips through systemctl cat', () => {
    const fixture = loadLayout('handmade');
    const location = fixture.locate().hostnameOverride;
    if (location.kind !== 'exec-start-drop-in') {
      throw new Error(`expected a drop-in location, got ${location.kind}`);
    }
    const dropIn = renderExecStartDropIn(setFlagInExecStart(location.commandLine, 'hostname-override', 'node-b').text);
    const output = `${fixture.systemctlCat}\n# ${location.path}\n${dropIn}`;
    const configText = fixture.readHostFile('/var/lib/kubelet/kubelet-config.yaml');

    const settings = locateKubeletSettings(parseSystemctlCat(output), new Map(), configText);
    expect(settings.nodeNameOverride?.value).to.equal('node-b');
    expect(settings.hostnameOverride).to.deep.include({ kind: 'exec-start-drop-in', path: location.path, sourceFile: location.path });
    expect(settings.kubeconfig).to.equal('/var/lib/kubelet/kubeconfig');

    const again = renderExecStartDropIn(setFlagInExecStart(HANDMADE_LINE.replace('node-a', 'node-b'), 'hostname-override', 'node-b').text);
    expect(again).to.equal(dropIn);
  });
});

describe('setConfigField', () => {
  for (const { name, text, value, expected } of configCases) {
    it(name, () => {
      const first = setConfigField(text, 'rotateCertificates', value);
      expect(first.text).to.equal(expected);
      expect(first.changed).to.equal(true);

      const second = setConfigField(first.text, 'rotateCertificates', value);
      expect(second.text).to.equal(expected);
      expect(second.changed).to.equal(false);
    });
  }

  it('leaves an equal value alone', () => {
    const text = 'rotateCertificates: false # off\n';
    expect(setConfigField(text, 'rotateCertificates', false)).to.deep.equal({ text, changed: false });
  });

  const invalid: Array<{ name: string; text: string; message: string }> = [
    {
      name: 'rejects a flow mapping',
      text: '{kind: KubeletConfiguration, rotateCertificates: true}\n',
      message: 'cannot edit rotateCertificates: the field is not written as a plain "rotateCertificates: value" line at the top level; set it by hand',
    },
    {
      name: 'rejects a value on the next line',
      text: 'rotateCertificates:\n  true\n',
      message: "cannot edit rotateCertificates: the value of rotateCertificates is not on the field's line; set it by hand",
    },
    {
      name: 'rejects a document end marker',
      text: 'kind: KubeletConfiguration\n...\n',
      message: 'cannot edit rotateCertificates: the field is not written as a plain "rotateCertificates: value" line at the top level; set it by hand',
    },
    {
      name: 'rejects a list document',
      text: '- rotateCertificates: true\n',
      message: 'cannot edit rotateCertificates: the YAML document is not a mapping',
    },
  ];
  for (const { name, text, message } of invalid) {
    it(name, () => {
      expect(() => setConfigField(text, 'rotateCertificates', false))
        .to.throw(KubeletEditError)
        .with.property('message', message);
    });
  }
});
