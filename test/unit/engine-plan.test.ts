import { expect } from 'chai';
import { InvalidPlanError, type PlanIssue } from '../../engine/plan/issues.js';
import { parsePlan } from '../../engine/plan/load.js';
import { parseDuration } from '../../engine/plan/duration.js';

const HEAD = ['apiVersion: kube-node-rename/v1alpha1', 'kind: RenamePlan', 'metadata:', '  name: test', 'spec:', '  nodes:'];

/** Builds a plan whose first six lines are HEAD, so node entries start on line 7. */
function plan(...rest: string[]): string {
  return [...HEAD, ...rest, ''].join('\n');
}

function issuesOf(text: string): PlanIssue[] {
  try {
    parsePlan(text, 'plan.yaml', { homeDir: '/home/test' });
  } catch (error) {
    if (error instanceof InvalidPlanError) return error.issues;
    throw error;
  }
  throw new Error('the plan was accepted');
}

interface BadPlanCase {
  name: string;
  text: string;
  /** `line:column path`, then a phrase the message must contain, for each issue in order. */
  expected: [string, string][];
}

const BAD_PLANS: BadPlanCase[] = [
  {
    name: 'wrong apiVersion',
    text: plan('    - { from: a, to: b }').replace('kube-node-rename/v1alpha1', 'v1'),
    expected: [['1:13 apiVersion', 'must be "kube-node-rename/v1alpha1"']],
  },
  {
    name: 'unknown node field (typo)',
    text: plan('    - { from: a, to: b, hots: 10.0.0.1 }'),
    expected: [['7:25 spec.nodes[0].hots', 'unknown field "hots"']],
  },
  {
    name: 'missing to',
    text: plan('    - { from: a }'),
    expected: [['7:7 spec.nodes[0].to', 'missing required field "to"']],
  },
  {
    name: 'node name not DNS-1123',
    text: plan('    - { from: Worker_1, to: b }'),
    expected: [['7:15 spec.nodes[0].from', 'valid Kubernetes node name']],
  },
  {
    name: 'new name too long',
    text: plan(`    - { from: a, to: ${'x'.repeat(254)} }`),
    expected: [['7:22 spec.nodes[0].to', 'at most 253']],
  },
  {
    name: 'block-style node with empty to',
    text: plan('    - from: a', '      to:', '      host: 10.0.0.1'),
    expected: [['8:7 spec.nodes[0].to', 'expected a string, got null']],
  },
  {
    name: 'duplicate from',
    text: plan('    - { from: a, to: b }', '    - { from: a, to: c }'),
    expected: [['8:15 spec.nodes[1].from', 'already the current name of spec.nodes[0] (line 7)']],
  },
  {
    name: 'duplicate to',
    text: plan('    - { from: a, to: c }', '    - { from: b, to: c }'),
    expected: [['8:22 spec.nodes[1].to', 'already the new name of spec.nodes[0] (line 7)']],
  },
  {
    name: 'rename cycle of two',
    text: plan('    - { from: a, to: b }', '    - { from: b, to: a }'),
    expected: [['7:22 spec.nodes[0].to', 'rename cycle: spec.nodes[0] a -> b, spec.nodes[1] b -> a']],
  },
  {
    name: 'rename cycle of three after a chain',
    text: plan('    - { from: x, to: a }', '    - { from: a, to: b }', '    - { from: b, to: c }', '    - { from: c, to: a2 }', '    - { from: a2, to: x2 }'),
    expected: [],
  },
  {
    name: 'same from and to',
    text: plan('    - { from: a, to: a }'),
    expected: [['7:22 spec.nodes[0].to', 'nothing to rename']],
  },
  {
    name: 'invalid host',
    text: plan('    - { from: a, to: b, host: "[fd00::1]" }'),
    expected: [['7:31 spec.nodes[0].host', 'an IPv4 address, an IPv6 address or a DNS name']],
  },
  {
    name: 'host label too long',
    text: plan(`    - { from: a, to: b, host: ${'h'.repeat(64)}.example.com }`),
    expected: [['7:31 spec.nodes[0].host', 'DNS host name']],
  },
  {
    name: 'parallelism zero and unknown onFailure',
    text: plan('    - { from: a, to: b }', '  strategy:', '    parallelism: 0', '    onFailure: retry'),
    expected: [
      ['9:18 spec.strategy.parallelism', 'must be at least 1; got 0'],
      ['10:16 spec.strategy.onFailure', 'must be one of "stop", "rollback"'],
    ],
  },
  {
    name: 'canary larger than the list',
    text: plan('    - { from: a, to: b }', '  strategy:', '    canary: 2'),
    expected: [['9:13 spec.strategy.canary', 'the plan lists only 1 nodes']],
  },
  {
    name: 'canary waits for a later node',
    text: plan('    - { from: a, to: b }', '    - { from: b, to: c }', '  strategy:', '    canary: 1'),
    expected: [['7:22 spec.nodes[0].to', 'not among the first 1 (canary) nodes']],
  },
  {
    name: 'bad duration and zero duration',
    text: plan('    - { from: a, to: b }', '  rename:', '    drainTimeout: 5 minutes', '    readyTimeout: 0s'),
    expected: [
      ['9:19 spec.rename.drainTimeout', 'a duration such as "90s"'],
      ['10:19 spec.rename.readyTimeout', 'longer than zero'],
    ],
  },
  {
    name: 'yes is not a boolean',
    text: plan('    - { from: a, to: b }', '  access:', '    sudo: yes'),
    expected: [['9:11 spec.access.sudo', 'expected true or false, got "yes"']],
  },
  {
    name: 'unknown top-level field',
    text: plan('    - { from: a, to: b }', 'status: {}'),
    expected: [['8:1 status', 'unknown field "status"']],
  },
  {
    name: 'empty node list',
    text: [...HEAD.slice(0, 5), '  nodes: []', ''].join('\n'),
    expected: [['6:10 spec.nodes', 'at least 1 entry']],
  },
  {
    name: 'metadata name with dots',
    text: plan('    - { from: a, to: b }').replace('name: test', 'name: my.plan'),
    expected: [['4:9 metadata.name', 'DNS-1123 label']],
  },
  {
    name: 'malformed YAML',
    text: plan('    - { from: a, to: b', '  strategy: {}'),
    expected: [['8:3 (root)', 'malformed YAML']],
  },
  {
    name: 'empty file',
    text: '',
    expected: [['1:1 (root)', 'the file is empty']],
  },
  {
    name: 'not a mapping',
    text: '- a\n- b\n',
    expected: [['1:1 (root)', 'expected a mapping, got ["a","b"]']],
  },
];

describe('plan validation', () => {
  for (const testCase of BAD_PLANS.filter((c) => c.expected.length > 0)) {
    it(`rejects: ${testCase.name}`, () => {
      const issues = issuesOf(testCase.text);
      expect(issues.map((issue) => `${issue.line}:${issue.column} ${issue.path}`)).to.deep.equal(testCase.expected.map(([where]) => where));
      testCase.expected.forEach(([, phrase], index) => {
        expect(issues[index]!.message).to.include(phrase);
        expect(issues[index]!.fix).to.not.equal('');
        expect(issues[index]!.file).to.equal('plan.yaml');
      });
    });
  }

  it('accepts a long chain without a cycle', () => {
    const chain = BAD_PLANS.find((c) => c.name === 'rename cycle of three after a chain')!;
    expect(() => parsePlan(chain.text, 'plan.yaml')).to.not.throw();
  });

  it('reports a three-node cycle once', () => {
    const issues = issuesOf(plan('    - { from: a, to: b }', '    - { from: b, to: c }', '    - { from: c, to: a }', '    - { from: d, to: e }'));
    expect(issues).to.have.length(1);
    expect(issues[0]!.message).to.include('spec.nodes[0] a -> b, spec.nodes[1] b -> c, spec.nodes[2] c -> a');
    expect(issues[0]!.fix).to.include('a-tmp');
  });

  it('reports every error at once', () => {
    const issues = issuesOf(plan('    - { from: A, to: b }', '    - { from: c, to: b, extra: 1 }', '  strategy:', '    parallelism: -1'));
    expect(issues.map((issue) => issue.path)).to.deep.equal(['spec.nodes[0].from', 'spec.nodes[1].to', 'spec.nodes[1].extra', 'spec.strategy.parallelism']);
  });

  it('formats errors with file, position, path and fix', () => {
    try {
      parsePlan(plan('    - { from: a, to: a }'), 'plans/x.yaml');
      expect.fail('the plan was accepted');
    } catch (error) {
      const text = (error as InvalidPlanError).format();
      expect(text).to.include('plans/x.yaml:7:22: spec.nodes[0].to: "to" is the same as "from"');
      expect(text).to.include('\n    fix: remove this entry');
      expect(text).to.not.include('    at ');
    }
  });

  it('fills in defaults', () => {
    const loaded = parsePlan(plan('    - { from: a, to: b, host: fd00::1, port: 2222 }'), '/plans/p.yaml');
    expect(loaded.spec.strategy).to.deep.equal({ parallelism: 1, canary: 0, maxFailures: 0, onFailure: 'stop' });
    expect(loaded.spec.access).to.deep.equal({ transport: 'ssh', sshOptions: [], sudo: false });
    expect(loaded.spec.kubelet).to.deep.equal({ unit: 'kubelet' });
    expect(loaded.spec.rename).to.deep.equal({ pods: 'keep', drainTimeoutMs: 300_000, csrApproval: 'auto', bootstrapTokenTTLMs: 3_600_000, readyTimeoutMs: 300_000, csrTimeoutMs: 300_000 });
    expect(loaded.spec.nodes).to.deep.equal([{ from: 'a', to: 'b', host: 'fd00::1', port: 2222 }]);
    expect(loaded.source).to.deep.equal({ file: '/plans/p.yaml', dir: '/plans' });
  });

  it('resolves access paths', () => {
    const loaded = parsePlan(plan('    - { from: a, to: b }', '  access:', '    identityFile: ~/.ssh/id', '    sshConfig: ./ssh_config'), '/plans/p.yaml', { homeDir: '/home/test' });
    expect(loaded.spec.access.identityFile).to.equal('/home/test/.ssh/id');
    expect(loaded.spec.access.sshConfig).to.equal('/plans/ssh_config');
  });

  it('accepts the example plan', async () => {
    const { loadPlan } = await import('../../engine/plan/load.js');
    const example = loadPlan(new URL('../../../plans/example.yaml', import.meta.url).pathname);
    expect(example.spec.nodes).to.have.length(6);
    expect(example.spec.strategy.canary).to.equal(1);
  });
});

describe('durations', () => {
  const cases: [string, number | undefined][] = [
    ['90s', 90_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['500ms', 500],
    ['1.5s', 1500],
    ['5 minutes', undefined],
    ['', undefined],
    ['10', undefined],
  ];
  for (const [text, expected] of cases) {
    it(`parses ${JSON.stringify(text)}`, () => {
      expect(parseDuration(text)).to.equal(expected);
    });
  }
});
