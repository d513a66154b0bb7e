import { parseEnvironmentFile, VARIABLE_NAME } from './kubelet-env-file.js';
import { KubeletLayoutError } from './kubelet-errors.js';
import type { ExecStartSetting, KubeletUnit } from './kubelet-unit.js';
import { splitWords } from './kubelet-words.js';

export { parseEnvironmentFile, type EnvironmentFileAssignment } from './kubelet-env-file.js';

/** Returns the last item that matches, as Array.prototype.findLast does in ES2023. */
export function findLast<T>(items: readonly T[], predicate: (item: T) => boolean): T | undefined {
  for (let i = items.length - 1; i >= 0; i--) {
    if (predicate(items[i])) {
      return items[i];
    }
  }
  return undefined;
}

/** Origin of one word of the kubelet's command line. */
export type ArgumentSource =
  | { kind: 'exec-start'; file: string; line: number }
  | {
      kind: 'environment' | 'environment-file';
      /** The unit file with `Environment=`, or the environment file. */
      file: string;
      line: number;
      variable: string;
      /** The variable was used as a word of its own (`$VAR`), so its value was split into words. */
      split: boolean;
    };

export interface KubeletArgument {
  text: string;
  source: ArgumentSource;
}

/** The value of an environment variable as the kubelet's service receives it. */
export interface VariableDefinition {
  value: string;
  kind: 'environment' | 'environment-file';
  file: string;
  line: number;
}

/** The kubelet's command line as systemd starts it. */
export interface KubeletCommand {
  execStart: ExecStartSetting;
  executable: string;
  /** The arguments after argv[0]. */
  args: KubeletArgument[];
  /** Variables the command line uses that nothing defines; systemd expands them to nothing. */
  unsetVariables: string[];
  environment: Map<string, VariableDefinition>;
}

/**
 * Expands the unit's `ExecStart=` as current systemd does when it starts the service
 * (`replace_env_argv` in src/basic/env-util.c):
 * - `$VAR` as a word of its own becomes the value split into words, with quotes removed,
 *   or no word at all when VAR is unset.
 * - `${VAR}` inside or as a word is replaced by the value as one word, `$$` becomes `$`.
 *   `$VAR` inside a longer word and `${VAR:-default}` are left as written, as systemd does.
 * - `Environment=` assignments apply in order, then the environment files in order, and a
 *   file's values override `Environment=` ones, as systemd.exec(5) states.
 *
 * `envFiles` maps each `EnvironmentFile=` path to its content, or to undefined when the
 * file is absent. An absent file without the `-` prefix is a layout error, as systemd
 * would not start the service. With `@`, the second word is argv[0] and is skipped.
 */
export function expandExecStart(unit: KubeletUnit, envFiles: ReadonlyMap<string, string | undefined>): KubeletCommand {
  const execStart = effectiveExecStart(unit);
  const environment = collectEnvironment(unit, envFiles);
  const unsetVariables = new Set<string>();
  const skipped = execStart.prefixes.includes('@') ? 2 : 1;
  const args: KubeletArgument[] = [];

  for (const word of execStart.words.slice(skipped)) {
    args.push(...expandWord(word, execStart, environment, unsetVariables));
  }

  return { execStart, executable: execStart.words[0], args, unsetVariables: [...unsetVariables], environment };
}

function effectiveExecStart(unit: KubeletUnit): ExecStartSetting {
  const unitFile = unit.files[0].path;
  if (unit.execStart.length === 0) {
    throw new KubeletLayoutError(unitFile, `${unit.name} has no ExecStart= in [Service] after its drop-ins are applied; check the unit with "systemctl cat kubelet"`);
  }
  if (unit.execStart.length > 1) {
    const places = unit.execStart.map((setting) => `${setting.file} line ${setting.line}`).join(', ');
    throw new KubeletLayoutError(
      unit.execStart[1].file,
      `${unit.name} has ${unit.execStart.length} ExecStart= commands (${places}); a drop-in that replaces ExecStart must first clear it with an empty "ExecStart=" line`,
    );
  }
  return unit.execStart[0];
}

function collectEnvironment(unit: KubeletUnit, envFiles: ReadonlyMap<string, string | undefined>): Map<string, VariableDefinition> {
  const environment = new Map<string, VariableDefinition>();
  for (const setting of unit.environment) {
    environment.set(setting.name, { value: setting.value, kind: 'environment', file: setting.file, line: setting.line });
  }

  for (const reference of unit.environmentFiles) {
    const content = envFiles.get(reference.path);
    if (content === undefined) {
      if (reference.optional) {
        continue;
      }
      throw new KubeletLayoutError(
        reference.path,
        `the file is missing, but EnvironmentFile= in ${reference.file} line ${reference.line} requires it (no "-" prefix), so systemd would not start the kubelet; create the file or mark it optional`,
      );
    }
    for (const assignment of parseEnvironmentFile(content)) {
      environment.set(assignment.name, { value: assignment.value, kind: 'environment-file', file: reference.path, line: assignment.line });
    }
  }
  return environment;
}

function expandWord(
  word: string,
  execStart: ExecStartSetting,
  environment: Map<string, VariableDefinition>,
  unsetVariables: Set<string>,
): KubeletArgument[] {
  if (word.startsWith('$') && word[1] !== '{' && word[1] !== '$') {
    const name = word.slice(1);
    if (!VARIABLE_NAME.test(name)) {
      throw new KubeletLayoutError(execStart.file, `line ${execStart.line}: ExecStart= uses ${JSON.stringify(word)}, which is not a valid variable reference; write $NAME or \${NAME}`);
    }
    const definition = environment.get(name);
    if (definition === undefined) {
      unsetVariables.add(name);
      return [];
    }
    const source: ArgumentSource = { kind: definition.kind, file: definition.file, line: definition.line, variable: name, split: true };
    return splitWords(definition.value, 'variable').map((part) => ({ text: part.text, source }));
  }

  let source: ArgumentSource = { kind: 'exec-start', file: execStart.file, line: execStart.line };
  const text = word.replace(/\$\$|\$\{([^}]*)\}/g, (match, name: string | undefined) => {
    if (name === undefined) {
      return '$';
    }
    if (name.includes(':')) {
      return match;
    }
    if (!VARIABLE_NAME.test(name)) {
      throw new KubeletLayoutError(execStart.file, `line ${execStart.line}: ExecStart= uses \${${name}}, which is not a valid variable name; use letters, digits and _ only`);
    }
    const definition = environment.get(name);
    if (definition === undefined) {
      unsetVariables.add(name);
      return '';
    }
    if (source.kind === 'exec-start') {
      source = { kind: definition.kind, file: definition.file, line: definition.line, variable: name, split: false };
    }
    return definition.value;
  });
  return [{ text, source }];
}
