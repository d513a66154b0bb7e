// The bad-plan corpus through the CLI: `validate FILE` and `apply FILE --dry-run` in child
// processes exit with code 2 and print exactly the errors of test/corpus/expected.json, with no
// stack trace. Each run starts a node process (about 0.3 s idle), so this suite takes longer than
// the in-process corpus test.
import { expect } from 'chai';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { corpusDir, formatExpected, mapLimit, readExpected, runCli, stackTraceLines, type CliResult, type ExpectedIssue } from '../corpus/support.js';

const expected = readExpected();
const files = readdirSync(corpusDir).filter((name) => name.endsWith('.yaml')).sort();
const stateDir = path.join(tmpdir(), `knr-corpus-state-${process.pid}`);

function expectUserError(result: CliResult, file: string, issues: ExpectedIssue[]): void {
  expect(result.signal, 'killed by the time bound').to.equal(null);
  expect(stackTraceLines(result.stderr), 'stack trace lines on stderr').to.deep.equal([]);
  expect(result.code, result.stderr).to.equal(2);
  expect(result.stderr.trimEnd()).to.equal(formatExpected(file, issues));
}

describe('bad plan corpus through the CLI', function () {
  this.timeout(60_000);
  // Each file through both commands, four child processes at a time; paths are relative to the
  // repository root, where runCli starts the CLI.
  const runs = files.flatMap((file) => [
    { file, args: ['validate', path.join('test/corpus/plans', file)] },
    { file, args: ['apply', path.join('test/corpus/plans', file), '--dry-run', '--state-dir', stateDir] },
  ]);
  let results: CliResult[];

  before(async function () {
    this.timeout(300_000);
    results = await mapLimit(runs, 4, (run) => runCli(run.args));
  });

  it('creates no state for a rejected plan', () => {
    expect(existsSync(stateDir), stateDir).to.equal(false);
  });

  runs.forEach((run, index) => {
    it(`${run.args[0]} ${run.file}`, () => {
      expectUserError(results[index]!, run.args[1]!, expected[run.file]!);
      expect(results[index]!.stdout, 'stdout').to.equal('');
    });
  });
});
