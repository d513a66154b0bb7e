import { VARIABLE_NAME } from './kubelet-env-file.js';
import { KubeletLayoutError } from './kubelet-errors.js';
import { splitWords, WordSplitError } from './kubelet-words.js';

/** One file printed by `systemctl cat`: the unit file or a drop-in. */
export interface UnitFileText {
  path: string;
  content: string;
}

/** An `ExecStart=` assignment that is still in effect after the resets of later files. */
export interface ExecStartSetting {
  file: string;
  /** 1-based line of `ExecStart=` in `file`. */
  line: number;
  /** The text after `ExecStart=` as written, with continuation lines and prefixes. */
  raw: string;
  /** Prefix characters before the executable (`-`, `@`, `:`, `+`, `!`). */
  prefixes: string;
  /** The command's words after unquoting, before variable expansion; words[0] is the executable. */
  words: string[];
}

/** One `NAME=VALUE` pair of an `Environment=` line. */
export interface EnvironmentSetting {
  file: string;
  line: number;
  name: string;
  value: string;
}

/** An `EnvironmentFile=` line. */
export interface EnvironmentFileSetting {
  file: string;
  line: number;
  path: string;
  /** The path had the `-` prefix, so systemd starts the service when the file is missing. */
  optional: boolean;
}

/** The kubelet unit's files and the `[Service]` settings the tool reads, in systemd's order. */
export interface KubeletUnit {
  /** The unit's name, such as `kubelet.service`. */
  name: string;
  files: UnitFileText[];
  execStart: ExecStartSetting[];
  environment: EnvironmentSetting[];
  environmentFiles: EnvironmentFileSetting[];
}

const SYSTEMCTL_CAT = 'output of systemctl cat kubelet';
const HEADER = /^# (\/\S+\.(?:service|conf))$/;

/**
 * Parses the output of `systemctl cat kubelet`: each file starts with a `# /path` line, the
 * unit file first and then its drop-ins in the order systemd applies them.
 *
 * Settings are read as systemd reads them: only the `[Service]` section, a trailing
 * backslash continues a line, comment lines inside a continuation are skipped, and an
 * empty assignment (`ExecStart=`, `Environment=`, `EnvironmentFile=`) clears that list.
 * Invalid `Environment=` assignments are skipped, as systemd skips them with a warning.
 * NOTE: specifiers such as `%n` are not expanded, except that `%%` becomes `%`.
 */
export function parseSystemctlCat(output: string): KubeletUnit {
  const files = splitFiles(output);
  const unit: KubeletUnit = {
    name: basename(files[0].path),
    files,
    execStart: [],
    environment: [],
    environmentFiles: [],
  };

  for (const file of files) {
    for (const assignment of readServiceAssignments(file)) {
      applyAssignment(unit, assignment);
    }
  }
  return unit;
}

function splitFiles(output: string): UnitFileText[] {
  const lines = output.split('\n');
  if (lines[lines.length - 1] === '') {
    lines.pop();
  }

  const files: Array<{ path: string; lines: string[] }> = [];
  for (const [index, line] of lines.entries()) {
    const header = HEADER.exec(line);
    const startsFile = header !== null && (files.length === 0 || lines[index - 1] === '');
    if (startsFile) {
      const previous = files.at(-1);
      if (previous?.lines.at(-1) === '') {
        previous.lines.pop();
      }
      files.push({ path: header[1], lines: [] });
    } else if (files.length > 0) {
      files[files.length - 1].lines.push(line);
    } else if (line.trim() !== '' && !line.startsWith('# Warning:')) {
      throw new KubeletLayoutError(
        SYSTEMCTL_CAT,
        `expected a "# /path/to/kubelet.service" header line first, found ${JSON.stringify(line)}; pass the unchanged output of "systemctl cat kubelet"`,
      );
    }
  }

  if (files.length === 0) {
    throw new KubeletLayoutError(SYSTEMCTL_CAT, 'no unit file found; check that the kubelet unit is installed');
  }
  return files.map((file) => ({
    path: file.path,
    content: file.lines.length === 0 ? '' : `${file.lines.join('\n')}\n`,
  }));
}

interface Assignment {
  file: string;
  line: number;
  key: string;
  /** The value as written, continuation lines joined with `\n` after their backslash. */
  raw: string;
}

function readServiceAssignments(file: UnitFileText): Assignment[] {
  const assignments: Assignment[] = [];
  const lines = file.content.split('\n');
  let section = '';
  let open: Assignment | undefined;

  for (const [index, line] of lines.entries()) {
    const trimmed = line.trim();
    if (open !== undefined) {
      if (trimmed.startsWith('#') || trimmed.startsWith(';')) {
        continue;
      }
      open.raw += `\n${line}`;
      if (!trimmed.endsWith('\\')) {
        open.raw = open.raw.trimEnd();
        open = undefined;
      }
      continue;
    }

    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) {
      continue;
    }
    if (trimmed.startsWith('[') && trimmed.endsWith(']')) {
      section = trimmed.slice(1, -1);
      continue;
    }

    const equals = trimmed.indexOf('=');
    if (equals < 0) {
      throw new KubeletLayoutError(file.path, `line ${index + 1} is neither a section, a comment nor a Key=Value assignment`);
    }
    const assignment = {
      file: file.path,
      line: index + 1,
      key: trimmed.slice(0, equals).trim(),
      raw: trimmed.slice(equals + 1).trimStart(),
    };
    if (section === 'Service') {
      assignments.push(assignment);
    }
    if (assignment.raw.endsWith('\\')) {
      open = assignment;
    }
  }
  return assignments;
}

function applyAssignment(unit: KubeletUnit, assignment: Assignment): void {
  const { file, line, key } = assignment;
  const raw = assignment.raw;
  const joined = unescapePercent(raw.replaceAll('\\\n', ' ').trim());

  switch (key) {
    case 'ExecStart': {
      if (joined === '') {
        unit.execStart = [];
        return;
      }
      const words = splitSetting(assignment, raw).map((word) => unescapePercent(word.text));
      if (words.includes(';')) {
        throw new KubeletLayoutError(file, `line ${line}: ExecStart= runs several commands separated by ";"; the kubelet's unit must run one command`);
      }
      const prefixes = /^[-@:+!]*/.exec(words[0])?.[0] ?? '';
      words[0] = words[0].slice(prefixes.length);
      unit.execStart.push({ file, line, raw, prefixes, words });
      return;
    }
    case 'Environment': {
      if (joined === '') {
        unit.environment = [];
        return;
      }
      for (const word of splitSetting(assignment, raw)) {
        const text = unescapePercent(word.text);
        const equals = text.indexOf('=');
        const name = text.slice(0, equals);
        if (equals > 0 && VARIABLE_NAME.test(name)) {
          unit.environment.push({ file, line, name, value: text.slice(equals + 1) });
        }
      }
      return;
    }
    case 'EnvironmentFile': {
      if (joined === '') {
        unit.environmentFiles = [];
        return;
      }
      const optional = joined.startsWith('-');
      unit.environmentFiles.push({ file, line, path: optional ? joined.slice(1) : joined, optional });
      return;
    }
    default:
      return;
  }
}

function splitSetting(assignment: Assignment, raw: string) {
  try {
    return splitWords(raw, 'unit');
  } catch (error) {
    if (error instanceof WordSplitError) {
      throw new KubeletLayoutError(
        assignment.file,
        `line ${assignment.line}: ${assignment.key}= cannot be split into words: ${error.message}`,
        { cause: error },
      );
    }
    throw error;
  }
}

function unescapePercent(text: string): string {
  return text.replaceAll('%%', '%');
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
