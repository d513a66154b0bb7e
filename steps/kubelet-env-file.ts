/** One assignment in an environment file, with the position of its value. */
export interface EnvironmentFileAssignment {
  name: string;
  /** The value after systemd's unquoting. */
  value: string;
  /** 1-based line of the variable's name. */
  line: number;
  /** Offsets of the value as written, quotes included; equal when the value is empty. */
  start: number;
  end: number;
}

/** A valid environment variable name, as systemd accepts it (the character set of bash). */
export const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const WHITESPACE = ' \t\r';
const DOUBLE_QUOTE_ESCAPABLE = '"\\`$';

type State = 'pre-key' | 'key' | 'pre-value' | 'value' | 'value-escape' | 'single' | 'double' | 'double-escape' | 'comment';

/**
 * Parses an environment file as current systemd reads an `EnvironmentFile=` (the state
 * machine in src/basic/env-file.c; older releases differ in double-quote escapes):
 * - `KEY=VALUE` lines, with `#` and `;` starting comment lines.
 * - Unquoted values lose leading and trailing blanks, and a backslash takes the next
 *   character literally.
 * - Single quotes are literal. Double quotes decode `\"`, `\\`, `` \` `` and `\$` and keep
 *   other backslashes.
 * - A backslash before a newline continues the value, or the comment.
 * Lines without `=` and invalid names are skipped, as systemd skips them with a warning.
 * An `export ` before the name is tolerated because shells that source the file accept it.
 */
export function parseEnvironmentFile(content: string): EnvironmentFileAssignment[] {
  const assignments: EnvironmentFileAssignment[] = [];
  let state: State = 'pre-key';
  let key = '';
  let value = '';
  let line = 1;
  let keyLine = 1;
  let trailingBlanks = 0;
  let start = -1;
  let end = -1;

  const finish = (position: number): void => {
    let name = key.trim();
    if (/^export\s/.test(name)) {
      name = name.slice('export'.length).trim();
    }
    if (VARIABLE_NAME.test(name)) {
      const stripped = value.slice(0, value.length - trailingBlanks);
      const valueStart = start < 0 ? position : start;
      assignments.push({ name, value: stripped, line: keyLine, start: valueStart, end: end < 0 ? valueStart : end });
    }
    state = 'pre-key';
  };

  for (let i = 0; i < content.length; i++) {
    const c = content[i];
    const newline = c === '\n';
    const blank = WHITESPACE.includes(c);
    const mark = (): void => {
      if (start < 0) {
        start = i;
      }
      end = i + 1;
    };

    switch (state) {
      case 'pre-key':
        if (c === '#' || c === ';') {
          state = 'comment';
        } else if (!newline && !blank) {
          state = 'key';
          key = c;
          keyLine = line;
        }
        break;
      case 'key':
        if (newline) {
          state = 'pre-key';
        } else if (c === '=') {
          state = 'pre-value';
          value = '';
          trailingBlanks = 0;
          start = -1;
          end = -1;
        } else {
          key += c;
        }
        break;
      case 'pre-value':
        if (newline) {
          finish(i);
        } else if (c === "'" || c === '"') {
          mark();
          state = c === "'" ? 'single' : 'double';
        } else if (c === '\\') {
          mark();
          state = 'value-escape';
        } else if (!blank) {
          mark();
          value += c;
          state = 'value';
        }
        break;
      case 'value':
        if (newline) {
          finish(i);
        } else if (c === '\\') {
          mark();
          trailingBlanks = 0;
          state = 'value-escape';
        } else {
          value += c;
          if (blank) {
            trailingBlanks++;
          } else {
            trailingBlanks = 0;
            mark();
          }
        }
        break;
      case 'value-escape':
        mark();
        if (!newline) {
          value += c;
        }
        state = 'value';
        break;
      case 'single':
        mark();
        if (c === "'") {
          state = 'pre-value';
        } else {
          value += c;
        }
        break;
      case 'double':
        mark();
        if (c === '"') {
          state = 'pre-value';
        } else if (c === '\\') {
          state = 'double-escape';
        } else {
          value += c;
        }
        break;
      case 'double-escape':
        mark();
        if (DOUBLE_QUOTE_ESCAPABLE.includes(c)) {
          value += c;
        } else if (!newline) {
          value += `\\${c}`;
        }
        state = 'double';
        break;
      case 'comment':
        if (c === '\\' && content[i + 1] === '\n') {
          i++;
          line++;
        } else if (newline) {
          state = 'pre-key';
        }
        break;
    }
    if (newline) {
      line++;
    }
  }

  if (state !== 'pre-key' && state !== 'comment' && state !== 'key') {
    finish(content.length);
  }
  return assignments;
}
