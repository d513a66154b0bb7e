// Helpers for the bad-input tests: the corpus table, running the built CLI as a child process
// with a time bound, and checks that output shown to a user carries no stack trace.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PlanIssue } from '../../engine/plan/issues.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (this file runs from dist/test/corpus). */
export const repoRoot = path.resolve(here, '../../..');
export const cliPath = path.join(repoRoot, 'dist/engine/cli.js');
export const corpusDir = path.join(repoRoot, 'test/corpus/plans');

/** One expected error of a corpus file; the file name is left out because it depends on the caller. */
export type ExpectedIssue = Omit<PlanIssue, 'file'>;

/** Reads test/corpus/expected.json: corpus file name to the errors the loader must report, in order. */
export function readExpected(): Record<string, ExpectedIssue[]> {
  return JSON.parse(readFileSync(path.join(repoRoot, 'test/corpus/expected.json'), 'utf8')) as Record<string, ExpectedIssue[]>;
}

/** Renders the issues as the CLI prints them for `file`: a count line, then each issue and its fix. */
export function formatExpected(file: string, issues: ExpectedIssue[]): string {
  const count = `${issues.length} ${issues.length === 1 ? 'error' : 'errors'}`;
  const lines = [`${file}: ${count} in the plan`];
  for (const issue of issues) lines.push(`${file}:${issue.line}:${issue.column}: ${issue.path}: ${issue.message}`, `    fix: ${issue.fix}`);
  return lines.join('\n');
}

export interface CliResult {
  /** Exit code, or -1 when the process was killed (for example by the time bound). */
  code: number;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Extra options for node itself, such as --max-old-space-size=512. */
  nodeOptions?: string[];
  /** Working directory; default the repository root, so corpus paths can be relative. */
  cwd?: string;
}

/** Runs `node dist/engine/cli.js ...args` to completion, killing it after `timeoutMs` (default 30 s). */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...(options.nodeOptions ?? []), cliPath, ...args],
      { cwd: options.cwd ?? repoRoot, timeout: options.timeoutMs ?? 30_000, killSignal: 'SIGKILL', maxBuffer: 256 * 1024 * 1024, env: options.env ?? process.env },
      (error, stdout, stderr) => {
        const failure = error as (Error & { code?: number | string; signal?: string | null }) | null;
        let code = 0;
        if (failure !== null) code = typeof failure.code === 'number' ? failure.code : -1;
        resolve({ code, signal: failure?.signal ?? null, stdout, stderr });
      },
    );
  });
}

/** Runs `work` on every item with at most `limit` running at once, and returns the results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * Returns the lines of `text` that look like a stack trace or an exception dump: `    at f (file:1:2)`
 * frames, `TypeError: ...` headers, and the CLI's own "internal error" prefix for bugs.
 */
export function stackTraceLines(text: string): string[] {
  return text.split('\n').filter((line) => /^\s+at\s/.test(line) || /^\s*(?:[A-Z][A-Za-z]*)?Error:\s/.test(line) || /internal error/i.test(line));
}
