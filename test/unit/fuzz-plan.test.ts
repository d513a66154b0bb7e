// Fuzz test of the plan loader: random mutations of valid plans must each be accepted or rejected
// with located InvalidPlanError issues, never crash or hang. The seed is in the test name; set
// KNR_FUZZ_SEED to replay a run, and KNR_FUZZ_CASES to change the number of cases.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { basePlans, buildCase, checkCase } from '../corpus/fuzz.js';
import type { BrokenCase, FuzzWorkerInput, FuzzWorkerMessage } from '../corpus/fuzz-worker.js';
import { mapLimit, runCli, stackTraceLines } from '../corpus/support.js';

const SEED = Number(process.env['KNR_FUZZ_SEED'] ?? 0x5eed2026);
const CASES = Number(process.env['KNR_FUZZ_CASES'] ?? 3000);
/** A case still running after this long is reported as a hang; a normal case takes milliseconds. */
const CASE_BOUND_MS = 15_000;
const CLI_SAMPLE = 24;

interface FuzzRun {
  accepted: number;
  rejected: number;
  broken: BrokenCase[];
  hung?: { index: number; description: string };
}

/** Runs the cases in a worker thread and terminates it when one case exceeds CASE_BOUND_MS. */
function runCases(input: FuzzWorkerInput): Promise<FuzzRun> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('../corpus/fuzz-worker.js', import.meta.url), { workerData: input });
    let current = { index: -1, description: 'loading the worker' };
    let watchdog: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        void worker.terminate();
        resolve({ accepted: 0, rejected: 0, broken: [], hung: current });
      }, CASE_BOUND_MS);
    };
    arm();
    worker.on('message', (message: FuzzWorkerMessage) => {
      if (message.kind === 'start') {
        current = { index: message.index, description: message.description };
        arm();
        return;
      }
      clearTimeout(watchdog);
      resolve(message);
    });
    worker.on('error', (error) => {
      clearTimeout(watchdog);
      reject(new Error(`fuzz worker failed at case ${current.index} (${current.description}): ${error.message}`, { cause: error }));
    });
  });
}

describe(`plan loader fuzz, seed ${SEED}`, function () {
  this.timeout(120_000);

  it(`survives ${CASES} mutated plans`, async () => {
    const run = await runCases({ seed: SEED, count: CASES });
    expect(run.hung, `case hung for ${CASE_BOUND_MS} ms; replay with KNR_FUZZ_SEED=${SEED}`).to.equal(undefined);
    const report = run.broken.slice(0, 10).map((c) => `case ${c.index} (${c.description}): ${c.reason}`);
    expect(report, `broken cases of ${run.broken.length}; replay with KNR_FUZZ_SEED=${SEED}`).to.deep.equal([]);
    // Both outcomes must occur, or the mutations are not reaching the loader's checks.
    expect(run.rejected, 'rejected cases').to.be.greaterThan(CASES / 2);
    expect(run.accepted, 'accepted cases').to.be.greaterThan(0);
  });

  it('builds the same case from the same seed', () => {
    const bases = basePlans();
    expect(buildCase(SEED, 17, bases)).to.deep.equal(buildCase(SEED, 17, bases));
    expect(buildCase(SEED, 17, bases).text).to.not.equal(buildCase(SEED + 1, 17, bases).text);
  });

  describe('CLI sample', () => {
    let work: string;

    before(() => {
      work = mkdtempSync(path.join(tmpdir(), 'knr-fuzz-'));
    });

    after(() => {
      rmSync(work, { recursive: true, force: true });
    });

    it(`prints located errors for ${CLI_SAMPLE} cases`, async function () {
      this.timeout(180_000);
      const bases = basePlans();
      // Every 97th case, so the sample spreads over the mutations.
      const cases = Array.from({ length: CLI_SAMPLE }, (_, i) => buildCase(SEED, i * 97, bases));
      const results = await mapLimit(cases, 4, async (fuzzCase) => {
        const file = path.join(work, `case-${fuzzCase.index}.yaml`);
        writeFileSync(file, fuzzCase.text);
        return { fuzzCase, file, expected: checkCase(fuzzCase).kind, result: await runCli(['validate', file]) };
      });
      for (const { fuzzCase, file, expected, result } of results) {
        const name = `case ${fuzzCase.index} (${fuzzCase.description})`;
        expect(result.signal, `${name} killed by the time bound`).to.equal(null);
        expect(stackTraceLines(result.stderr), `${name} stack trace`).to.deep.equal([]);
        expect(result.code, `${name}: ${result.stderr}`).to.equal(expected === 'accepted' ? 0 : 2);
        if (result.code !== 2) continue;
        const lines = result.stderr.trimEnd().split('\n');
        expect(lines[0], name).to.match(new RegExp(`^${escape(file)}: \\d+ errors? in the plan$`));
        for (let i = 1; i < lines.length; i += 2) {
          expect(lines[i], `${name} issue line`).to.match(new RegExp(`^${escape(file)}:\\d+:\\d+: \\S+: \\S`));
          expect(lines[i + 1], `${name} fix line`).to.match(/^ {4}fix: \S/);
        }
      }
    });
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
