// Reading of systemd unit files as systemd does it, for the test hosts'
// systemctl shim. Pure functions: file access goes through a `FileReader`.
//
// Covers what the kubeadm kubelet layout uses (systemd.unit(5),
// systemd.service(5), systemd.exec(5)): drop-ins, Environment=,
// EnvironmentFile= with the optional "-" prefix, ExecStart= resets, and
// variable expansion in command lines.

export interface FileReader {
  /** Returns the file's text, or undefined when it does not exist. */
  read(path: string): string | undefined;
  /** Returns the names in a folder, or an empty list when it does not exist. */
  list(path: string): string[];
}

/** One `Key=Value` line of a unit file, with where it came from. */
export interface UnitSetting {
  section: string;
  key: string;
  value: string;
  file: string;
}

export interface LoadedUnit {
  name: string;
  /** Path of the unit file itself. */
  fragmentPath: string;
  /** Paths of the drop-in files, in the order systemd applies them. */
  dropInPaths: string[];
  /** Text of each file, keyed by path, for `systemctl cat` and change detection. */
  sources: Record<string, string>;
  settings: UnitSetting[];
}

/** Folders searched for units, highest precedence first (systemd's system unit path, trimmed). */
export const UNIT_DIRS = ['/etc/systemd/system', '/run/systemd/system', '/usr/lib/systemd/system'];

export class UnitNotFoundError extends Error {
  constructor(readonly unit: string) {
    super(`Unit ${unit} not found.`);
    this.name = 'UnitNotFoundError';
  }
}

export class UnitSyntaxError extends Error {
  constructor(readonly file: string, readonly line: number, detail: string) {
    super(`${file}:${line}: ${detail}`);
    this.name = 'UnitSyntaxError';
  }
}

/** Adds `.service` to a bare unit name, as systemctl does. */
export function normalizeUnitName(name: string): string {
  return /\.[a-z]+$/.test(name) ? name : `${name}.service`;
}

function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

/** Loads a unit file and its `<unit>.d/*.conf` drop-ins from the unit folders. */
export function loadUnit(unitName: string, files: FileReader, dirs: string[] = UNIT_DIRS): LoadedUnit {
  const name = normalizeUnitName(unitName);

  let fragmentPath: string | undefined;
  let fragmentText: string | undefined;
  for (const dir of dirs) {
    const path = joinPath(dir, name);
    const text = files.read(path);
    if (text !== undefined) {
      fragmentPath = path;
      fragmentText = text;
      break;
    }
  }
  if (fragmentPath === undefined || fragmentText === undefined) throw new UnitNotFoundError(name);

  // A drop-in name in a folder earlier in the search path hides the same name
  // later in it; all drop-ins then apply in the order of their file names.
  const dropIns = new Map<string, string>();
  for (const dir of [...dirs].reverse()) {
    const dropInDir = joinPath(dir, `${name}.d`);
    for (const entry of files.list(dropInDir)) {
      if (entry.endsWith('.conf')) dropIns.set(entry, joinPath(dropInDir, entry));
    }
  }
  const dropInPaths = [...dropIns.keys()].sort().map((entry) => dropIns.get(entry) as string);

  const sources: Record<string, string> = { [fragmentPath]: fragmentText };
  const settings = parseUnitText(fragmentText, fragmentPath);
  for (const path of dropInPaths) {
    const text = files.read(path) ?? '';
    sources[path] = text;
    settings.push(...parseUnitText(text, path));
  }
  return { name, fragmentPath, dropInPaths, sources, settings };
}

/** Parses the `[Section]` and `Key=Value` lines of one unit file. */
export function parseUnitText(text: string, file: string): UnitSetting[] {
  const settings: UnitSetting[] = [];
  let section = '';
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const lineNumber = index + 1;
    let line = lines[index].trim();
    // A trailing backslash continues the setting on the next line, joined by a space.
    while (line.endsWith('\\') && index + 1 < lines.length) {
      index++;
      line = `${line.slice(0, -1)} ${lines[index].trim()}`;
    }
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('[')) {
      if (!line.endsWith(']')) throw new UnitSyntaxError(file, lineNumber, `invalid section header "${line}"`);
      section = line.slice(1, -1);
      continue;
    }
    const equals = line.indexOf('=');
    if (equals <= 0) throw new UnitSyntaxError(file, lineNumber, `expected Key=Value, found "${line}"`);
    if (section === '') throw new UnitSyntaxError(file, lineNumber, 'setting outside of a section');
    settings.push({ section, key: line.slice(0, equals).trim(), value: line.slice(equals + 1).trim(), file });
  }
  return settings;
}

/** Returns the values of a setting in order, applying systemd's empty-assignment reset. */
export function settingValues(unit: LoadedUnit, section: string, key: string): string[] {
  let values: string[] = [];
  for (const setting of unit.settings) {
    if (setting.section !== section || setting.key !== key) continue;
    if (setting.value === '') values = [];
    else values.push(setting.value);
  }
  return values;
}

/** Returns the last value of a single-valued setting, or the default. */
export function lastSetting(unit: LoadedUnit, section: string, key: string, fallback: string): string {
  const values = settingValues(unit, section, key);
  return values.length > 0 ? values[values.length - 1] : fallback;
}

/**
 * Splits a string into words as systemd does for command lines and
 * Environment= values: whitespace separates words, and double or single
 * quotes group them, with C-style backslash escapes.
 */
export function splitQuoted(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    if (char === '\\' && index + 1 < text.length) {
      index++;
      const next = text[index];
      word += next === 'n' ? '\n' : next === 't' ? '\t' : next;
      inWord = true;
      continue;
    }
    if (quote !== undefined) {
      if (char === quote) quote = undefined;
      else word += char;
      continue;
    }
    if (char === '"' || char === "'") {
      quote = char;
      inWord = true;
      continue;
    }
    if (/\s/.test(char)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    word += char;
    inWord = true;
  }
  if (quote !== undefined) throw new Error(`unterminated ${quote} quote in: ${text}`);
  if (inWord) words.push(word);
  return words;
}

/** Parses an EnvironmentFile: `KEY=VALUE` lines, `#` and `;` comments, quoted values. */
export function parseEnvironmentFile(text: string): Record<string, string> {
  const variables: Record<string, string> = {};
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    let line = lines[index].trim();
    while (line.endsWith('\\') && index + 1 < lines.length) {
      index++;
      line = line.slice(0, -1) + lines[index].trim();
    }
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const equals = line.indexOf('=');
    if (equals <= 0) continue;
    const key = line.slice(0, equals).trim();
    let value = line.slice(equals + 1).trim();
    const first = value[0];
    if ((first === '"' || first === "'") && value.length >= 2 && value.endsWith(first)) {
      value = value.slice(1, -1);
      if (first === '"') value = value.replace(/\\(["\\$`])/g, '$1');
    }
    variables[key] = value;
  }
  return variables;
}

export class EnvironmentFileMissingError extends Error {
  constructor(readonly path: string) {
    super(`Failed to load environment files: ${path} not found (prefix the path with "-" in EnvironmentFile= to make it optional)`);
    this.name = 'EnvironmentFileMissingError';
  }
}

/**
 * Computes the service's environment: Environment= assignments first, then
 * EnvironmentFile= files in order, whose variables win over Environment=.
 * A file whose path starts with "-" may be missing.
 */
export function serviceEnvironment(unit: LoadedUnit, files: FileReader): Record<string, string> {
  const variables: Record<string, string> = {};
  for (const value of settingValues(unit, 'Service', 'Environment')) {
    for (const assignment of splitQuoted(value)) {
      const equals = assignment.indexOf('=');
      if (equals > 0) variables[assignment.slice(0, equals)] = assignment.slice(equals + 1);
    }
  }
  for (const value of settingValues(unit, 'Service', 'EnvironmentFile')) {
    const optional = value.startsWith('-');
    const path = optional ? value.slice(1) : value;
    const text = files.read(path);
    if (text === undefined) {
      if (optional) continue;
      throw new EnvironmentFileMissingError(path);
    }
    Object.assign(variables, parseEnvironmentFile(text));
  }
  return variables;
}

/** Replaces `$NAME` and `${NAME}` inside a word with the variable's value. */
function substituteInWord(word: string, variables: Record<string, string>): string {
  return word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_match, braced, bare) => {
    return variables[(braced ?? bare) as string] ?? '';
  });
}

/**
 * Expands an ExecStart= command line into argv. A word that is exactly
 * `$NAME` becomes the value split at whitespace (no word when empty); `${NAME}`
 * and variables inside a longer word become the exact value in one word.
 */
export function expandCommandLine(line: string, variables: Record<string, string>): string[] {
  const argv: string[] = [];
  for (const word of splitQuoted(line)) {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (whole) {
      argv.push(...(variables[whole[1]] ?? '').split(/\s+/).filter((part) => part !== ''));
      continue;
    }
    argv.push(substituteInWord(word, variables));
  }
  return argv;
}

export interface ServiceCommand {
  /** Program to run. */
  path: string;
  /** argv including argv[0]. */
  argv: string[];
  /** Whether a non-zero exit counts as success (the "-" prefix). */
  ignoreFailure: boolean;
}

export class NoExecStartError extends Error {
  constructor(readonly unit: string) {
    super(`${unit} has no ExecStart= setting after applying its drop-ins; an empty ExecStart= clears the earlier ones, so add a command line after it.`);
    this.name = 'NoExecStartError';
  }
}

/** Returns the command the service runs: the last ExecStart= after resets, expanded. */
export function serviceCommand(unit: LoadedUnit, variables: Record<string, string>): ServiceCommand {
  const lines = settingValues(unit, 'Service', 'ExecStart');
  if (lines.length === 0) throw new NoExecStartError(unit.name);
  let line = lines[lines.length - 1];

  // Executable prefixes (systemd.service(5), "Table 1"): "-" ignores failure,
  // "@" passes the second word as argv[0]; "+", "!" and ":" change privileges
  // or expansion, which the shim does not model.
  let ignoreFailure = false;
  let customArgv0 = false;
  while (/^[-@+!:]/.test(line)) {
    if (line[0] === '-') ignoreFailure = true;
    if (line[0] === '@') customArgv0 = true;
    line = line.slice(1);
  }
  const words = expandCommandLine(line, variables);
  if (words.length === 0) throw new NoExecStartError(unit.name);
  if (customArgv0) {
    const [path, ...argv] = words;
    return { path, argv, ignoreFailure };
  }
  return { path: words[0], argv: words, ignoreFailure };
}

/** Renders `systemctl cat` output: each file under a `# path` header, blank lines between. */
export function renderCat(unit: LoadedUnit): string {
  const parts = [unit.fragmentPath, ...unit.dropInPaths].map((path) => {
    const text = unit.sources[path] ?? '';
    return `# ${path}\n${text.endsWith('\n') ? text : `${text}\n`}`;
  });
  return parts.join('\n');
}

/** Parses a systemd time span such as `10`, `10s`, `500ms` or `1min 30s` into milliseconds. */
export function parseTimeSpan(text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000 };
  let total = 0;
  const pattern = /(\d+(?:\.\d+)?)\s*([a-z]*)/g;
  let match: RegExpExecArray | null;
  let matched = false;
  while ((match = pattern.exec(text.trim())) !== null) {
    if (match[0] === '') break;
    const unit = match[2] === '' ? 's' : match[2];
    const factor = units[unit];
    if (factor === undefined) throw new Error(`invalid time span "${text}": unknown unit "${unit}"`);
    total += Number(match[1]) * factor;
    matched = true;
  }
  if (!matched) throw new Error(`invalid time span "${text}"`);
  return total;
}
