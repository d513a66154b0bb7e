// Runs fuzz cases in a worker thread so the test can stop a case that hangs the loader. Posts a
// `start` message before each case, and `done` with the tallies and the broken cases at the end.
import { parentPort, workerData } from 'node:worker_threads';
import { basePlans, buildCase, checkCase } from './fuzz.js';

export interface FuzzWorkerInput {
  seed: number;
  count: number;
}

export interface BrokenCase {
  index: number;
  description: string;
  reason: string;
}

export type FuzzWorkerMessage =
  | { kind: 'start'; index: number; description: string }
  | { kind: 'done'; accepted: number; rejected: number; broken: BrokenCase[] };

const { seed, count } = workerData as FuzzWorkerInput;
const bases = basePlans();
const broken: BrokenCase[] = [];
let accepted = 0;
let rejected = 0;
for (let index = 0; index < count; index++) {
  const fuzzCase = buildCase(seed, index, bases);
  parentPort!.postMessage({ kind: 'start', index, description: fuzzCase.description } satisfies FuzzWorkerMessage);
  const outcome = checkCase(fuzzCase);
  if (outcome.kind === 'accepted') accepted++;
  else if (outcome.kind === 'rejected') rejected++;
  else broken.push({ index, description: fuzzCase.description, reason: outcome.reason });
}
parentPort!.postMessage({ kind: 'done', accepted, rejected, broken } satisfies FuzzWorkerMessage);
