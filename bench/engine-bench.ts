// Engine benchmark: a plan of N nodes (default 10,000) with four steps that
// do no work, run at parallelism 100 with checkpointing and logging to
// run.log. Each size runs in a child process of its own, so that the peak
// RSS belongs to that size alone.
//
//   npm run bench               print the figures
//   npm run bench -- --write    also replace the "## Engine" section of docs/benchmarks.md
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { applyPlan } from '../engine/apply.js';
import { compileDag } from '../engine/dag.js';
import { createLogger } from '../engine/logger.js';
import { loadPlan } from '../engine/plan/load.js';
import type { Recipe, StepDefinition } from '../engine/step.js';

const PARALLELISM = 100;
const STEP_NAMES = ['cordon', 'release-name', 'rename-host', 'verify'];

interface Figures {
  nodes: number;
  steps: number;
  planBytes: number;
  loadMs: number;
  compileMs: number;
  runMs: number;
  checkpointBytes: number;
  stateFileBytes: number;
  peakRssMiB: number;
  outcome: string;
}

function planText(nodes: number): string {
  const lines = ['apiVersion: kube-node-rename/v1alpha1', 'kind: RenamePlan', 'metadata:', '  name: bench', 'spec:', '  nodes:'];
  for (let i = 0; i < nodes; i++) {
    const [a, b] = [Math.floor(i / 250), i % 250];
    lines.push(`    - { from: ip-10-0-${a}-${b}, to: worker-${i}.prod.example.com, host: 10.0.${a}.${b} }`);
  }
  lines.push('  strategy:', `    parallelism: ${PARALLELISM}`, '    canary: 1', '');
  return lines.join('\n');
}

function noOpRecipe(): Recipe<null> {
  const step = (name: string): StepDefinition<null> => ({
    name,
    description: `no-op ${name}`,
    timeoutMs: 60_000,
    touchesHost: name === 'rename-host',
    releasesName: name === 'release-name',
    dryRun: () => `would do nothing`,
    run: async () => ({ kind: 'done', outputs: { at: name } }),
  });
  return { name: 'bench', steps: STEP_NAMES.map(step), createServices: async () => null };
}

/** Measures one size in this process and prints the figures as JSON. */
async function measure(nodes: number): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'knr-bench-'));
  try {
    const planFile = path.join(dir, 'plan.yaml');
    const text = planText(nodes);
    writeFileSync(planFile, text);
    const recipe = noOpRecipe();

    let started = performance.now();
    const plan = loadPlan(planFile);
    const loadMs = performance.now() - started;

    started = performance.now();
    const dag = compileDag(plan, recipe.steps);
    const compileMs = performance.now() - started;

    const sink = new Writable({ write: (_chunk, _encoding, callback) => callback() });
    const log = createLogger({ format: 'json', stream: sink });
    const stateDir = path.join(dir, 'state');
    started = performance.now();
    const report = await applyPlan({
      plan,
      recipe,
      stateDir,
      startOver: false,
      log,
      stopSignal: new AbortController().signal,
      abortSignal: new AbortController().signal,
      command: 'bench',
      unlockCommand: 'unlock',
    });
    await log.close();
    const runMs = performance.now() - started;

    const figures: Figures = {
      nodes,
      steps: dag.order.length,
      planBytes: Buffer.byteLength(text),
      loadMs,
      compileMs,
      runMs,
      checkpointBytes: report.checkpointBytes ?? 0,
      stateFileBytes: readFileSync(path.join(stateDir, 'state.json')).length,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      outcome: report.outcome,
    };
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runChild(nodes: number): Figures {
  const result = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--measure', String(nodes)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (result.status !== 0) throw new Error(`benchmark of ${nodes} nodes failed: ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as Figures;
}

function machine(): string {
  const memory = execFileSync('free', ['-g'], { encoding: 'utf8' }).trim();
  return [`- nproc: ${cpus().length} (${cpus()[0]?.model ?? 'unknown CPU'})`, `- memory: ${(totalmem() / 2 ** 30).toFixed(1)} GiB; free -g:`, '', '```', memory, '```', '', `- Node.js ${process.version}, ${process.platform} ${process.arch}`].join('\n');
}

function table(rows: Figures[]): string {
  const kib = (bytes: number): string => `${(bytes / 1024).toFixed(0)} KiB`;
  const ms = (value: number): string => `${value.toFixed(0)} ms`;
  const lines = [
    '| nodes | steps | plan file | load and validate | compile DAG | run (parallelism 100) | checkpoint bytes written | state.json at end | checkpoint bytes per step | peak RSS |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of rows) {
    lines.push(`| ${row.nodes} | ${row.steps} | ${kib(row.planBytes)} | ${ms(row.loadMs)} | ${ms(row.compileMs)} | ${ms(row.runMs)} | ${kib(row.checkpointBytes)} | ${kib(row.stateFileBytes)} | ${(row.checkpointBytes / row.steps).toFixed(0)} B | ${row.peakRssMiB.toFixed(0)} MiB |`);
  }
  return lines.join('\n');
}

function section(rows: Figures[]): string {
  return `## Engine

Command: \`npm run bench\` (\`bench/engine-bench.ts\`; \`npm run bench -- --write\` rewrites this section). Each size runs in a fresh Node.js process: a generated plan (canary 1, parallelism ${PARALLELISM}), four steps per node that do no work and return a small output, the journal fsynced on every transition, and JSON log lines to run.log. "Checkpoint bytes written" counts every journal line and snapshot (compaction included) that the run wrote; peak RSS is \`process.resourceUsage().maxRSS\` of that process.

${table(rows)}

Targets for 10,000 nodes: compile under 1 s, the run under 10 s, memory under 300 MB.

Machine:

${machine()}
`;
}

function writeSection(text: string): void {
  const file = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url));
  let current = '';
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    current = '# Benchmarks\n';
  }
  const start = current.indexOf('## Engine');
  let next: string;
  if (start === -1) next = `${current.trimEnd()}\n\n${text}`;
  else {
    const end = current.indexOf('\n## ', start + 1);
    next = `${current.slice(0, start)}${text}${end === -1 ? '' : current.slice(end)}`;
  }
  writeFileSync(file, next.endsWith('\n') ? next : `${next}\n`);
}

const args = process.argv.slice(2);
if (args[0] === '--measure') {
  await measure(Number(args[1]));
} else {
  const rows = [1000, 10_000].map(runChild);
  const text = section(rows);
  process.stdout.write(`${text}\n`);
  if (args.includes('--write')) writeSection(text);
}
