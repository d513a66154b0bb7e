import { isDeepStrictEqual } from 'node:util';

import yaml from 'js-yaml';

import { findLast, parseEnvironmentFile } from './kubelet-env.js';
import { KubeletEditError } from './kubelet-errors.js';
import { splitWords, type Word } from './kubelet-words.js';

/** The text after an edit, and whether it differs from the text before. */
export interface EditResult {
  text: string;
  changed: boolean;
}

/**
 * Characters allowed in a flag value written by these edits. They need no quoting in an
 * environment file, in ExecStart or in a shell, and are not `%` specifiers or `$` variables.
 */
const SAFE_VALUE = /^[A-Za-z0-9._:/@+,=-]+$/;
const FLAG_NAME = /^[a-z0-9][a-z0-9-]*$/;

/**
 * Sets `--flag=value` in the value of `variable` in an environment file, or removes the
 * flag when `value` is null. Only the flag's words change: other flags, the quotes, the
 * comments and the other lines stay as written. The last assignment of the variable is
 * edited because it is the one systemd uses. A missing variable gets a new line
 * `VARIABLE="--flag=value"` at the end of the file. The same call on its own output
 * returns `changed: false`.
 *
 * Throws KubeletEditError for an invalid flag or value, and for a value written with
 * backslashes, nested quotes or quoted blanks, which the tool does not rewrite.
 */
export function setFlagInEnvFile(content: string, variable: string, flag: string, value: string | null): EditResult {
  const name = checkFlag(flag, value, variable);
  const assignment = findLast(parseEnvironmentFile(content), (entry) => entry.name === variable);

  let text: string;
  if (assignment === undefined) {
    if (value === null) {
      return { text: content, changed: false };
    }
    const separator = content === '' || content.endsWith('\n') ? '' : '\n';
    text = `${content}${separator}${variable}="--${name}=${value}"\n`;
  } else {
    const region = valueRegion(content, assignment.start, assignment.end, variable);
    const words = splitWords(content.slice(region.start, region.end), 'variable').map((word) => ({
      text: word.text,
      start: word.start + region.start,
      end: word.end + region.start,
    }));
    for (const word of words) {
      if (/\s/.test(content.slice(word.start, word.end))) {
        throw new KubeletEditError(variable, `the word ${JSON.stringify(word.text)} contains quoted blanks; edit ${variable} by hand`);
      }
    }
    text = editFlagWords(content, words, region, name, value, ' ');
  }

  const edited = findLast(parseEnvironmentFile(text), (entry) => entry.name === variable);
  checkResult(splitWords(edited?.value ?? '', 'variable'), name, value, variable);
  return { text, changed: text !== content };
}

/**
 * Sets `--flag=value` in an ExecStart command line as written after `ExecStart=`, or
 * removes the flag when `value` is null. Continuation lines, quoting and the other words
 * stay as written. A new flag goes at the end, on a continuation line of its own when the
 * command already spans several lines.
 */
export function setFlagInExecStart(commandLine: string, flag: string, value: string | null): EditResult {
  const name = checkFlag(flag, value, 'ExecStart');
  let words: Word[];
  try {
    words = splitWords(commandLine, 'unit');
  } catch (error) {
    throw new KubeletEditError('ExecStart', `the command line cannot be split into words: ${(error as Error).message}`, { cause: error });
  }
  if (words.length === 0) {
    throw new KubeletEditError('ExecStart', 'the command line is empty');
  }

  const lastLine = commandLine.slice(commandLine.lastIndexOf('\n') + 1);
  const separator = commandLine.includes('\\\n') ? ` \\\n${/^\s*/.exec(lastLine)?.[0] ?? ''}` : ' ';
  const firstEditable = /^[-:+!]*@/.test(commandLine) ? 2 : 1;
  const text = editFlagWords(commandLine, words, { start: words[firstEditable - 1].end, end: commandLine.length }, name, value, separator, firstEditable);

  checkResult(splitWords(text, 'unit').slice(firstEditable), name, value, 'ExecStart');
  return { text, changed: text !== commandLine };
}

/**
 * Renders a drop-in that replaces the unit's ExecStart with `commandLine`. The empty
 * `ExecStart=` first clears the command of the unit and of earlier drop-ins, as systemd
 * requires. The text does not depend on where the command line came from, so rendering
 * it again from the drop-in itself gives the same file.
 */
export function renderExecStartDropIn(commandLine: string): string {
  return [
    '# Written by kube-node-rename. It replaces the kubelet command line so that its flags',
    '# can change without editing the packaged unit. Remove it to go back to the packaged command.',
    '[Service]',
    'ExecStart=',
    `ExecStart=${commandLine}`,
    '',
  ].join('\n');
}

/**
 * Sets a top-level scalar field of a YAML document, such as `rotateCertificates` in the
 * kubelet's config file, by replacing the value on the field's line or appending
 * `field: value` when the field is absent. Comments, ordering and formatting of the other
 * lines stay as written. The result is parsed again, and the edit is rejected with
 * KubeletEditError unless the field has the new value and every other field is unchanged.
 */
export function setConfigField(yamlText: string, field: string, value: boolean | number | string): EditResult {
  const before = loadMapping(yamlText, field);
  if (isDeepStrictEqual(before[field], value)) {
    return { text: yamlText, changed: false };
  }

  const rendered = typeof value === 'string' ? JSON.stringify(value) : String(value);
  const key = field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const line = new RegExp(`^(["']?)${key}\\1([ \\t]*:[ \\t]*)([^#\\n]*?)([ \\t]+#[^\\n]*)?$`, 'm');
  const match = line.exec(yamlText);

  let text: string;
  if (match !== null) {
    if (match[3] === '') {
      throw new KubeletEditError(field, `the value of ${field} is not on the field's line; set it by hand`);
    }
    const valueStart = match.index + match[1].length * 2 + field.length + match[2].length;
    text = yamlText.slice(0, valueStart) + rendered + yamlText.slice(valueStart + match[3].length);
  } else {
    const separator = yamlText === '' || yamlText.endsWith('\n') ? '' : '\n';
    text = `${yamlText}${separator}${field}: ${rendered}\n`;
  }

  const unsupported = `the field is not written as a plain "${field}: value" line at the top level; set it by hand`;
  let after: Record<string, unknown>;
  try {
    after = loadMapping(text, field);
  } catch (error) {
    throw new KubeletEditError(field, unsupported, { cause: error });
  }
  const { [field]: newValue, ...othersAfter } = after;
  const { [field]: _oldValue, ...othersBefore } = before;
  if (!isDeepStrictEqual(newValue, value) || !isDeepStrictEqual(othersAfter, othersBefore)) {
    throw new KubeletEditError(field, unsupported);
  }
  return { text, changed: true };
}

function checkFlag(flag: string, value: string | null, target: string): string {
  const name = flag.replace(/^--/, '');
  if (!FLAG_NAME.test(name)) {
    throw new KubeletEditError(target, `${JSON.stringify(flag)} is not a valid flag name; pass a name such as hostname-override`);
  }
  if (value !== null && !SAFE_VALUE.test(value)) {
    throw new KubeletEditError(target, `the value ${JSON.stringify(value)} for --${name} is empty or has characters that need quoting; use letters, digits and . _ : / @ + , = - only`);
  }
  return name;
}

function valueRegion(content: string, start: number, end: number, variable: string): { start: number; end: number } {
  const written = content.slice(start, end);
  const quote = written[0];
  if ((quote === '"' || quote === "'") && written.length >= 2 && written.endsWith(quote)) {
    const inner = written.slice(1, -1);
    if (!inner.includes(quote) && !inner.includes('\\')) {
      return { start: start + 1, end: end - 1 };
    }
  } else if (quote !== '"' && quote !== "'" && !written.includes('\\')) {
    return { start, end };
  }
  throw new KubeletEditError(variable, 'its value uses backslashes or several quoted parts, which the tool does not rewrite; edit it by hand');
}

/** A flag's words: `--flag=value`, or `--flag` and the word after it. */
interface Occurrence {
  start: number;
  end: number;
  /** The separate value word of `--flag value`. */
  valueWord: Word | undefined;
}

function findOccurrences(words: readonly Word[], name: string, first: number): Array<Occurrence & { index: number; last: number }> {
  const occurrences: Array<Occurrence & { index: number; last: number }> = [];
  for (let i = first; i < words.length; i++) {
    const word = words[i];
    if (word.text.startsWith(`--${name}=`)) {
      occurrences.push({ start: word.start, end: word.end, valueWord: undefined, index: i, last: i });
    } else if (word.text === `--${name}`) {
      const next = words[i + 1];
      const valueWord = next !== undefined && !next.text.startsWith('-') ? next : undefined;
      occurrences.push({ start: word.start, end: (valueWord ?? word).end, valueWord, index: i, last: valueWord ? i + 1 : i });
      if (valueWord !== undefined) {
        i++;
      }
    }
  }
  return occurrences;
}

/**
 * Replaces the first occurrence of the flag, removes the others, or appends the flag at
 * `region.end`. A removed flag takes the blanks before it along, or the blanks after it
 * when it is the first word.
 */
function editFlagWords(
  source: string,
  words: readonly Word[],
  region: { start: number; end: number },
  name: string,
  value: string | null,
  separator: string,
  first = 0,
): string {
  const occurrences = findOccurrences(words, name, first);
  const assignment = `--${name}=${value}`;

  if (occurrences.length === 0) {
    if (value === null) {
      return source;
    }
    const hasWords = words.length > first;
    return source.slice(0, region.end) + (hasWords ? separator : '') + assignment + source.slice(region.end);
  }

  const removed = new Set<number>();
  for (const occurrence of occurrences.slice(value === null ? 0 : 1)) {
    for (let i = occurrence.index; i <= occurrence.last; i++) {
      removed.add(i);
    }
  }

  const edits: Array<{ from: number; to: number; replacement: string }> = [];
  for (const [k, occurrence] of occurrences.entries()) {
    if (k === 0 && value !== null) {
      const target = occurrence.valueWord ?? occurrence;
      edits.push({ from: target.start, to: target.end, replacement: occurrence.valueWord ? value : assignment });
      continue;
    }
    const previous = words[occurrence.index - 1];
    const next = words.find((word, i) => i > occurrence.last && !removed.has(i));
    if (previous !== undefined) {
      edits.push({ from: previous.end, to: occurrence.end, replacement: '' });
    } else if (next !== undefined) {
      edits.push({ from: occurrence.start, to: next.start, replacement: '' });
    } else {
      edits.push({ from: region.start, to: region.end, replacement: '' });
    }
  }
  return applyEdits(source, edits);
}

/** Applies edits given in offsets of `source`; overlapping removals are merged. */
function applyEdits(source: string, edits: Array<{ from: number; to: number; replacement: string }>): string {
  const sorted = [...edits].sort((a, b) => a.from - b.from);
  const merged: typeof edits = [];
  for (const edit of sorted) {
    const last = merged.at(-1);
    if (last !== undefined && edit.from < last.to && last.replacement === '' && edit.replacement === '') {
      last.to = Math.max(last.to, edit.to);
    } else {
      merged.push({ ...edit });
    }
  }

  let text = source;
  for (const edit of merged.reverse()) {
    text = text.slice(0, edit.from) + edit.replacement + text.slice(edit.to);
  }
  return text;
}

function checkResult(words: readonly Word[], name: string, value: string | null, target: string): void {
  const occurrences = findOccurrences(words, name, 0);
  const values = occurrences.map((occurrence) => occurrence.valueWord?.text ?? words[occurrence.index].text.slice(name.length + 3));
  const expected = value === null ? [] : [value];
  if (!isDeepStrictEqual(values, expected)) {
    throw new KubeletEditError(target, `after the edit --${name} reads ${JSON.stringify(values)}, expected ${JSON.stringify(expected)}; edit it by hand`);
  }
}

function loadMapping(text: string, field: string): Record<string, unknown> {
  let document: unknown;
  try {
    document = yaml.load(text);
  } catch (error) {
    throw new KubeletEditError(field, `the YAML document is invalid: ${(error as Error).message}`, { cause: error });
  }
  if (document === undefined || document === null) {
    return {};
  }
  if (typeof document !== 'object' || Array.isArray(document)) {
    throw new KubeletEditError(field, 'the YAML document is not a mapping');
  }
  return document as Record<string, unknown>;
}
