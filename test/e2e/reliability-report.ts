// The fault matrix report. Each fault test fills one row, and each test file's `after` hook
// writes its rows into docs/reliability.md between markers named after the file. Several files
// therefore share one page, and a rerun of one file replaces only its own table.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './support.js';

export const reportFile = path.join(repoRoot, 'docs/reliability.md');

/** One fault tried: where it was injected, what happened, what the test checked and what was lost. */
export interface FaultRow {
  fault: string;
  injectedAt: string;
  outcome: string;
  checked: string;
  lost: string;
}

export class FaultMatrix {
  private readonly rows: FaultRow[] = [];

  constructor(readonly section: string) {}

  /**
   * Adds a row with the outcome "not finished". The test overwrites the fields as it learns
   * them, so a test that fails half way still leaves a true row.
   */
  start(fault: string, injectedAt: string): FaultRow {
    const row: FaultRow = { fault, injectedAt, outcome: 'not finished', checked: '', lost: 'unknown' };
    this.rows.push(row);
    return row;
  }

  /** Marks a row as failed with the assertion or error message, keeping what the test saw before. */
  fail(row: FaultRow, error: unknown): void {
    const message = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').trim();
    const seen = row.outcome === 'not finished' ? '' : ` Seen before: ${row.outcome}`;
    row.outcome = `TEST FAILED: ${message.slice(0, 600)}${seen}`;
    if (row.lost === '') row.lost = 'unknown';
  }

  /** Writes this file's table into the report, keeping the other sections and the header. */
  write(file = reportFile): void {
    const begin = `<!-- begin ${this.section} -->`;
    const end = `<!-- end ${this.section} -->`;
    const table = [
      begin,
      `### ${this.section}`,
      '',
      `Generated ${new Date().toISOString()} by \`test/e2e/${this.section}.test.ts\`.`,
      '',
      '| fault | where injected | outcome | what was checked | lost |',
      '| --- | --- | --- | --- | --- |',
      ...this.rows.map((row) => `| ${[row.fault, row.injectedAt, row.outcome, row.checked, row.lost].map(cell).join(' | ')} |`),
      end,
    ].join('\n');
    const current = existsSync(file) ? readFileSync(file, 'utf8') : '# Reliability\n';
    const start = current.indexOf(begin);
    const stop = current.indexOf(end);
    const next = start >= 0 && stop > start ? current.slice(0, start) + table + current.slice(stop + end.length) : `${current.trimEnd()}\n\n${table}\n`;
    writeFileSync(file, next);
  }
}

/** Escapes a value for one Markdown table cell. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}
