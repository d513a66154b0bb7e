import type { PathSegment, SourcePosition } from './yaml-source.js';
import { formatPath } from './yaml-source.js';

/** One problem in a plan file, located and explained. */
export interface PlanIssue {
  file: string;
  line: number;
  column: number;
  /** `spec.nodes[3].to`, or `(root)` */
  path: string;
  /** Description of the problem and of the expected value. */
  message: string;
  /** Suggested change. */
  fix: string;
}

/** The plan file cannot be used; `issues` lists every problem found, in file order. */
export class InvalidPlanError extends Error {
  constructor(
    readonly file: string,
    readonly issues: PlanIssue[],
  ) {
    super(`invalid plan ${file}: ${issues.length} ${issues.length === 1 ? 'error' : 'errors'}`);
    this.name = 'InvalidPlanError';
  }

  /** Renders the issues as `file:line:column: path: message` lines, each followed by its fix. */
  format(): string {
    const lines = [`${this.file}: ${this.issues.length} ${this.issues.length === 1 ? 'error' : 'errors'} in the plan`];
    for (const issue of this.issues) lines.push(formatIssue(issue));
    return lines.join('\n');
  }
}

export function formatIssue(issue: PlanIssue): string {
  return `${issue.file}:${issue.line}:${issue.column}: ${issue.path}: ${issue.message}\n    fix: ${issue.fix}`;
}

/** Collects issues against one file; the caller provides the position of each. */
export class IssueList {
  readonly issues: PlanIssue[] = [];

  constructor(readonly file: string) {}

  add(position: SourcePosition, path: readonly PathSegment[], message: string, fix: string): void {
    this.issues.push({ file: this.file, line: position.line, column: position.column, path: formatPath(path), message, fix });
  }

  sorted(): PlanIssue[] {
    return [...this.issues].sort((a, b) => a.line - b.line || a.column - b.column || a.path.localeCompare(b.path));
  }
}

/** Shows a value from the plan in a message, shortened when long. */
export function showValue(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
