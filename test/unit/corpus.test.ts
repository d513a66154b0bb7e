// The bad-plan corpus (test/corpus/plans), in-process: every file is rejected with exactly the
// errors listed in test/corpus/expected.json. corpus-cli.test.ts runs the same files through the CLI.
import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { InvalidPlanError } from '../../engine/plan/issues.js';
import { loadPlan, parsePlan } from '../../engine/plan/load.js';
import { corpusDir, readExpected, runCli, stackTraceLines } from '../corpus/support.js';

const expected = readExpected();
const files = readdirSync(corpusDir).filter((name) => name.endsWith('.yaml')).sort();

/** Loads a plan and returns the InvalidPlanError it throws; fails the test on any other outcome. */
function rejection(load: () => unknown): InvalidPlanError {
  let thrown: unknown;
  try {
    load();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, 'the plan was accepted').to.not.equal(undefined);
  if (!(thrown instanceof InvalidPlanError)) {
    expect.fail(`expected InvalidPlanError, got ${thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : String(thrown)}`);
  }
  return thrown;
}

/** Builds the text of a plan with `count` nodes of distinct valid names. */
function hugePlanText(count: number): string {
  const lines = ['apiVersion: kube-node-rename/v1alpha1', 'kind: RenamePlan', 'metadata:', '  name: huge', 'spec:', '  nodes:'];
  for (let i = 0; i < count; i++) lines.push(`    - { from: ip-10-${i >> 16}-${(i >> 8) & 255}-${i & 255}, to: worker-${i}.example.com }`);
  return `${lines.join('\n')}\n`;
}

describe('bad plan corpus', function () {
  this.timeout(60_000);

  it('table lists every corpus file', () => {
    expect(files.length, 'corpus files').to.be.greaterThan(50);
    expect(Object.keys(expected).sort()).to.deep.equal(files);
  });

  it('corpus files explain themselves', () => {
    for (const file of files) {
      const first = readFileSync(path.join(corpusDir, file), 'utf8').split('\n')[0]!;
      expect(first, `first line of ${file}`).to.match(/^# \S/);
    }
  });

  describe('loader', () => {
    for (const file of files) {
      it(`rejects ${file}`, () => {
        const planPath = path.join(corpusDir, file);
        const error = rejection(() => loadPlan(planPath));
        expect(error.issues.map(({ file: _file, ...issue }) => issue)).to.deep.equal(expected[file]);
        for (const issue of error.issues) expect(issue.file).to.equal(planPath);
      });
    }
  });

  describe('huge plan', () => {
    let work: string;

    before(() => {
      work = mkdtempSync(path.join(tmpdir(), 'knr-huge-'));
    });

    after(() => {
      rmSync(work, { recursive: true, force: true });
    });

    it('accepts 100,000 nodes, the schema maximum', () => {
      const plan = parsePlan(hugePlanText(100_000), 'huge.yaml');
      expect(plan.spec.nodes.length).to.equal(100_000);
      expect(plan.spec.nodes[99_999]).to.deep.equal({ from: 'ip-10-1-134-159', to: 'worker-99999.example.com' });
    });

    it('rejects 100,001 nodes with the limit', () => {
      const error = rejection(() => parsePlan(hugePlanText(100_001), 'huge.yaml'));
      expect(error.format()).to.equal(
        ['huge.yaml: 1 error in the plan', 'huge.yaml:7:5: spec.nodes: must list at most 100000 entries', '    fix: split the list into several plans'].join('\n'),
      );
    });

    it('validates both sizes in a 512 MiB heap', async () => {
      const valid = path.join(work, 'max.yaml');
      const tooMany = path.join(work, 'too-many.yaml');
      writeFileSync(valid, hugePlanText(100_000));
      writeFileSync(tooMany, hugePlanText(100_001));
      const nodeOptions = ['--max-old-space-size=512'];

      const accepted = await runCli(['validate', valid], { nodeOptions, timeoutMs: 60_000 });
      expect(accepted.code, accepted.stderr).to.equal(0);
      expect(accepted.stdout).to.include('valid RenamePlan huge: 100000 nodes');

      const rejected = await runCli(['validate', tooMany], { nodeOptions, timeoutMs: 60_000 });
      expect(stackTraceLines(rejected.stderr)).to.deep.equal([]);
      expect(rejected.code, rejected.stderr).to.equal(2);
      expect(rejected.stderr).to.include(`${tooMany}:7:5: spec.nodes: must list at most 100000 entries`);
    });
  });
});
