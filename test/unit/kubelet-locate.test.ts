import { expect } from 'chai';

import { findConfigFile, locateKubeletSettings, parseSystemctlCat, type FlagLocation, type KubeletSettings } from '../../steps/kubelet-config.js';
import { catchLayoutError, layoutNames, loadLayout, systemctlCatOf } from '../fixtures/kubelet/load.js';

const KUBEADM_DROP_IN = '/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf';
const KUBEADM_FLAGS = '/var/lib/kubelet/kubeadm-flags.env';

type Summary = Omit<KubeletSettings, 'command' | 'flags'>;

const HANDMADE_DROP_IN: FlagLocation = {
  kind: 'exec-start-drop-in',
  path: '/etc/systemd/system/kubelet.service.d/99-kube-node-rename.conf',
  commandLine: [
    '/usr/local/bin/kubelet \\',
    '    --kubeconfig=/var/lib/kubelet/kubeconfig \\',
    '    --config /var/lib/kubelet/kubelet-config.yaml \\',
    '    --cert-dir=/var/lib/kubelet/certs \\',
    '    --hostname-override node-a \\',
    '    --rotate-certificates \\',
    '    --v=2',
  ].join('\n'),
  sourceFile: '/etc/systemd/system/kubelet.service',
};

const accepted: Array<{ layout: string; expected: Summary }> = [
  {
    layout: 'kubeadm-deb',
    expected: {
      executable: '/usr/bin/kubelet',
      kubeconfig: '/etc/kubernetes/kubelet.conf',
      bootstrapKubeconfig: '/etc/kubernetes/bootstrap-kubelet.conf',
      certDir: '/var/lib/kubelet/pki',
      configFile: '/var/lib/kubelet/config.yaml',
      nodeNameOverride: undefined,
      rotateCertificates: {
        value: true,
        source: { kind: 'config-file', file: '/var/lib/kubelet/config.yaml' },
        edit: { kind: 'config-file', path: '/var/lib/kubelet/config.yaml', field: 'rotateCertificates' },
      },
      hostnameOverride: { kind: 'environment-file', path: KUBEADM_FLAGS, variable: 'KUBELET_KUBEADM_ARGS', exists: true },
    },
  },
  {
    layout: 'kubeadm-deb-node-name',
    expected: {
      executable: '/usr/bin/kubelet',
      kubeconfig: '/etc/kubernetes/kubelet.conf',
      bootstrapKubeconfig: '/etc/kubernetes/bootstrap-kubelet.conf',
      certDir: '/var/lib/kubelet/pki',
      configFile: '/var/lib/kubelet/config.yaml',
      nodeNameOverride: {
        value: 'worker-a',
        source: { kind: 'environment-file', file: KUBEADM_FLAGS, line: 1, variable: 'KUBELET_KUBEADM_ARGS', split: true },
      },
      rotateCertificates: { value: false, source: { kind: 'default' }, edit: { kind: 'config-file', path: '/var/lib/kubelet/config.yaml', field: 'rotateCertificates' } },
      hostnameOverride: { kind: 'environment-file', path: KUBEADM_FLAGS, variable: 'KUBELET_KUBEADM_ARGS', exists: true },
    },
  },
  {
    layout: 'kubeadm-rpm',
    expected: {
      executable: '/usr/bin/kubelet',
      kubeconfig: '/etc/kubernetes/kubelet.conf',
      bootstrapKubeconfig: '/etc/kubernetes/bootstrap-kubelet.conf',
      certDir: '/var/lib/kubelet/pki',
      configFile: '/var/lib/kubelet/config.yaml',
      nodeNameOverride: undefined,
      rotateCertificates: {
        value: true,
        source: { kind: 'config-file', file: '/var/lib/kubelet/config.yaml' },
        edit: { kind: 'config-file', path: '/var/lib/kubelet/config.yaml', field: 'rotateCertificates' },
      },
      hostnameOverride: { kind: 'environment-file', path: KUBEADM_FLAGS, variable: 'KUBELET_KUBEADM_ARGS', exists: true },
    },
  },
  {
    layout: 'kubeadm-old-etc',
    expected: {
      executable: '/usr/bin/kubelet',
      kubeconfig: '/etc/kubernetes/kubelet.conf',
      bootstrapKubeconfig: '/etc/kubernetes/bootstrap-kubelet.conf',
      certDir: '/var/lib/kubelet/pki',
      configFile: undefined,
      nodeNameOverride: undefined,
      rotateCertificates: {
        value: true,
        source: {
          kind: 'flag',
          source: {
            kind: 'environment',
            file: '/etc/systemd/system/kubelet.service.d/10-kubeadm.conf',
            line: 8,
            variable: 'KUBELET_CERTIFICATE_ARGS',
            split: true,
          },
        },
        edit: {
          kind: 'not-editable',
          problem:
            '/etc/systemd/system/kubelet.service.d/10-kubeadm.conf: line 8: --rotate-certificates is set through Environment=KUBELET_CERTIFICATE_ARGS; the tool edits only environment files and ExecStart, so move the flag to an EnvironmentFile or to ExecStart',
        },
      },
      hostnameOverride: { kind: 'environment-file', path: '/etc/default/kubelet', variable: 'KUBELET_EXTRA_ARGS', exists: false },
    },
  },
  {
    layout: 'handmade',
    expected: {
      executable: '/usr/local/bin/kubelet',
      kubeconfig: '/var/lib/kubelet/kubeconfig',
      bootstrapKubeconfig: undefined,
      certDir: '/var/lib/kubelet/certs',
      configFile: '/var/lib/kubelet/kubelet-config.yaml',
      nodeNameOverride: { value: 'node-a', source: { kind: 'exec-start', file: '/etc/systemd/system/kubelet.service', line: 7 } },
      rotateCertificates: {
        value: true,
        source: { kind: 'flag', source: { kind: 'exec-start', file: '/etc/systemd/system/kubelet.service', line: 7 } },
        edit: { kind: 'flag', location: HANDMADE_DROP_IN },
      },
      hostnameOverride: HANDMADE_DROP_IN,
    },
  },
];

const rejected: Array<{ layout: string; file: string; message: string }> = [
  {
    layout: 'reject-no-exec-start',
    file: '/usr/lib/systemd/system/kubelet.service',
    message: 'kubelet.service has no ExecStart= in [Service] after its drop-ins are applied; check the unit with "systemctl cat kubelet"',
  },
  {
    layout: 'reject-not-kubelet',
    file: '/etc/systemd/system/kubelet.service',
    message: 'line 5: ExecStart= runs /usr/local/bin/start-kubelet.sh, not a kubelet binary; the tool reads only units that start the kubelet directly',
  },
  {
    layout: 'reject-undefined-variable',
    file: '/etc/systemd/system/kubelet.service',
    message: 'line 5: ExecStart= uses $KUBELET_OPTS, but no Environment= or EnvironmentFile= defines it; define the variable or remove it from ExecStart',
  },
  {
    layout: 'reject-two-exec-start',
    file: '/etc/systemd/system/kubelet.service.d/10-kubeadm.conf',
    message:
      'kubelet.service has 2 ExecStart= commands (/usr/lib/systemd/system/kubelet.service line 5, /etc/systemd/system/kubelet.service.d/10-kubeadm.conf line 2); a drop-in that replaces ExecStart must first clear it with an empty "ExecStart=" line',
  },
  {
    layout: 'reject-env-file-missing',
    file: KUBEADM_FLAGS,
    message: `the file is missing, but EnvironmentFile= in ${KUBEADM_DROP_IN} line 2 requires it (no "-" prefix), so systemd would not start the kubelet; create the file or mark it optional`,
  },
  {
    layout: 'reject-override-twice',
    file: '/etc/default/kubelet',
    message: `--hostname-override is set in several places (variable KUBELET_KUBEADM_ARGS in ${KUBEADM_FLAGS} line 1; variable KUBELET_EXTRA_ARGS in /etc/default/kubelet line 1); keep only one of them`,
  },
  {
    layout: 'reject-config-kind',
    file: '/var/lib/kubelet/config.yaml',
    message: 'the config file has kind "KubeProxyConfiguration", expected KubeletConfiguration; check that --config names the kubelet\'s config file',
  },
  {
    layout: 'reject-standalone',
    file: '/etc/systemd/system/kubelet.service',
    message: "line 5: the kubelet's command line has no --kubeconfig, so the kubelet runs standalone and registers no Node to rename",
  },
];

function summarize(settings: KubeletSettings): Summary {
  const { command: _command, flags: _flags, ...summary } = settings;
  return summary;
}

describe('locateKubeletSettings', () => {
  for (const { layout, expected } of accepted) {
    it(`locates settings in ${layout}`, () => {
      expect(summarize(loadLayout(layout).locate())).to.deep.equal(expected);
    });
  }

  for (const { layout, file, message } of rejected) {
    it(`rejects ${layout}`, () => {
      const fixture = loadLayout(layout);
      const error = catchLayoutError(() => fixture.locate());
      expect(error.file).to.equal(file);
      expect(error.problem).to.equal(message);
      expect(error.message).to.equal(`${file}: ${message}`);
    });
  }

  it('covers every fixture layout', () => {
    const covered = [...accepted, ...rejected].map((entry) => entry.layout).sort();
    expect(covered).to.deep.equal(layoutNames());
  });

  it('finds the config file path', () => {
    const handmade = loadLayout('handmade');
    const old = loadLayout('kubeadm-old-etc');
    expect(findConfigFile(handmade.unit, handmade.envFiles)).to.equal('/var/lib/kubelet/kubelet-config.yaml');
    expect(findConfigFile(old.unit, old.envFiles)).to.equal(undefined);
  });

  it('reads the flag before the config file', () => {
    const fixture = loadLayout('handmade');
    expect(fixture.readHostFile('/var/lib/kubelet/kubelet-config.yaml')).to.contain('rotateCertificates: false');
    expect(fixture.locate().rotateCertificates.value).to.equal(true);
  });

  it('accepts an absent kubeadm-flags.env', () => {
    const fixture = loadLayout('kubeadm-deb');
    const envFiles = new Map(fixture.envFiles);
    envFiles.set(KUBEADM_FLAGS, undefined);
    const settings = locateKubeletSettings(fixture.unit, envFiles, fixture.readHostFile('/var/lib/kubelet/config.yaml'));
    expect(settings.hostnameOverride).to.deep.equal({ kind: 'environment-file', path: KUBEADM_FLAGS, variable: 'KUBELET_KUBEADM_ARGS', exists: false });
    expect(settings.command.unsetVariables).to.deep.equal(['KUBELET_KUBEADM_ARGS', 'KUBELET_EXTRA_ARGS']);
  });

  it('keeps a drop-in it wrote earlier', () => {
    const dropIn = '/etc/systemd/system/kubelet.service.d/99-kube-node-rename.conf';
    const fixture = loadLayout('handmade');
    const output = systemctlCatOf({
      '/etc/systemd/system/kubelet.service': fixture.readHostFile('/etc/systemd/system/kubelet.service')!,
      [dropIn]: '[Service]\nExecStart=\nExecStart=/usr/local/bin/kubelet --kubeconfig=/var/lib/kubelet/kubeconfig --hostname-override=node-b\n',
    });
    const settings = locateKubeletSettings(parseSystemctlCat(output), new Map());
    expect(settings.nodeNameOverride).to.deep.equal({ value: 'node-b', source: { kind: 'exec-start', file: dropIn, line: 3 } });
    expect(settings.hostnameOverride).to.deep.equal({
      kind: 'exec-start-drop-in',
      path: dropIn,
      commandLine: '/usr/local/bin/kubelet --kubeconfig=/var/lib/kubelet/kubeconfig --hostname-override=node-b',
      sourceFile: dropIn,
    });
  });

  it('rejects a later drop-in that sets ExecStart', () => {
    const late = '/etc/systemd/system/kubelet.service.d/zz-local.conf';
    const output = systemctlCatOf({
      '/etc/systemd/system/kubelet.service': '[Service]\nExecStart=/usr/bin/kubelet --kubeconfig=/etc/kubernetes/kubelet.conf\n',
      [late]: '[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --kubeconfig=/etc/kubernetes/kubelet.conf --v=4\n',
    });
    const error = catchLayoutError(() => locateKubeletSettings(parseSystemctlCat(output), new Map()));
    expect(error.file).to.equal(late);
    expect(error.problem).to.equal(
      'this drop-in sets ExecStart= and sorts after 99-kube-node-rename.conf, so a changed ExecStart in /etc/systemd/system/kubelet.service.d/99-kube-node-rename.conf would not take effect; rename the drop-in or move its ExecStart',
    );
  });

  it('skips a variable set by Environment=', () => {
    const output = systemctlCatOf({
      '/usr/lib/systemd/system/kubelet.service': [
        '[Service]',
        'Environment="KUBELET_EXTRA_ARGS=--max-pods=150"',
        'EnvironmentFile=-/etc/default/kubelet',
        'ExecStart=/usr/bin/kubelet --kubeconfig=/etc/kubernetes/kubelet.conf $KUBELET_EXTRA_ARGS',
        '',
      ].join('\n'),
    });
    const settings = locateKubeletSettings(parseSystemctlCat(output), new Map([['/etc/default/kubelet', undefined]]));
    expect(settings.hostnameOverride.kind).to.equal('exec-start-drop-in');
  });

  it('edits rotation through a flag without config', () => {
    const output = systemctlCatOf({
      '/usr/lib/systemd/system/kubelet.service': [
        '[Service]',
        'EnvironmentFile=-/etc/default/kubelet',
        'ExecStart=/usr/bin/kubelet --kubeconfig=/etc/kubernetes/kubelet.conf $KUBELET_EXTRA_ARGS',
        '',
      ].join('\n'),
    });
    const settings = locateKubeletSettings(parseSystemctlCat(output), new Map([['/etc/default/kubelet', '']]));
    expect(settings.rotateCertificates).to.deep.equal({
      value: false,
      source: { kind: 'default' },
      edit: { kind: 'flag', location: { kind: 'environment-file', path: '/etc/default/kubelet', variable: 'KUBELET_EXTRA_ARGS', exists: true } },
    });
  });

  it('rejects an override set by Environment=', () => {
    const unitFile = '/etc/systemd/system/kubelet.service';
    const output = systemctlCatOf({
      [unitFile]: '[Service]\nEnvironment="ARGS=--kubeconfig=/etc/kubernetes/kubelet.conf --hostname-override=a"\nExecStart=/usr/bin/kubelet $ARGS\n',
    });
    const error = catchLayoutError(() => locateKubeletSettings(parseSystemctlCat(output), new Map()));
    expect(error.file).to.equal(unitFile);
    expect(error.problem).to.equal(
      'line 2: --hostname-override is set through Environment=ARGS; the tool edits only environment files and ExecStart, so move the flag to an EnvironmentFile or to ExecStart',
    );
  });

  it('rejects a non-boolean --rotate-certificates', () => {
    const unitFile = '/etc/systemd/system/kubelet.service';
    const output = systemctlCatOf({ [unitFile]: '[Service]\nExecStart=/usr/bin/kubelet --kubeconfig=/k --rotate-certificates=yes\n' });
    const error = catchLayoutError(() => locateKubeletSettings(parseSystemctlCat(output), new Map()));
    expect(error.message).to.equal(
      `${unitFile}: --rotate-certificates=yes (from ExecStart= in ${unitFile} line 2) is not a boolean; use true or false`,
    );
  });

  it('rejects invalid config YAML', () => {
    const fixture = loadLayout('kubeadm-deb');
    const error = catchLayoutError(() => locateKubeletSettings(fixture.unit, fixture.envFiles, 'rotateCertificates: [true\n'));
    expect(error.file).to.equal('/var/lib/kubelet/config.yaml');
    expect(error.problem).to.match(/^the kubelet config file is not valid YAML: /);
  });

  it('rejects a missing config file', () => {
    const fixture = loadLayout('kubeadm-deb');
    const error = catchLayoutError(() => locateKubeletSettings(fixture.unit, fixture.envFiles, undefined));
    expect(error.message).to.equal(
      '/var/lib/kubelet/config.yaml: the kubelet config file named by --config is missing; the kubelet cannot start without it',
    );
  });
});
