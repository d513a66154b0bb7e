import yaml from 'js-yaml';

import { KubeletLayoutError } from './kubelet-errors.js';
import { expandExecStart, findLast, type ArgumentSource, type KubeletCommand } from './kubelet-env.js';
import { describeSource, findFlag, parseKubeletArgs, type KubeletFlag } from './kubelet-flags.js';
import type { EnvironmentFileSetting, KubeletUnit } from './kubelet-unit.js';

export { KubeletEditError, KubeletLayoutError } from './kubelet-errors.js';
export { expandExecStart, parseEnvironmentFile } from './kubelet-env.js';
export type { ArgumentSource, EnvironmentFileAssignment, KubeletArgument, KubeletCommand } from './kubelet-env.js';
export { findFlag, parseKubeletArgs } from './kubelet-flags.js';
export type { KubeletFlag } from './kubelet-flags.js';
export { parseSystemctlCat } from './kubelet-unit.js';
export type { KubeletUnit } from './kubelet-unit.js';
export { renderExecStartDropIn, setConfigField, setFlagInEnvFile, setFlagInExecStart } from './kubelet-edit.js';
export type { EditResult } from './kubelet-edit.js';

/** The kubelet's client certificate directory when `--cert-dir` is not given. */
export const DEFAULT_CERT_DIR = '/var/lib/kubelet/pki';

/** File name of the drop-in that carries a changed ExecStart; it sorts after kubeadm's `10-kubeadm.conf`. */
export const DROP_IN_NAME = '99-kube-node-rename.conf';

/** Source of the effective `rotateCertificates` value. */
export type RotationSource =
  | { kind: 'flag'; source: ArgumentSource }
  | { kind: 'config-file'; file: string }
  | { kind: 'default' };

/** Location where a kubelet flag such as `--hostname-override` is or should be written. */
export type FlagLocation =
  | {
      kind: 'environment-file';
      /** The environment file to edit with setFlagInEnvFile; it may not exist yet. */
      path: string;
      variable: string;
      exists: boolean;
    }
  | {
      kind: 'exec-start-drop-in';
      /** The drop-in to write with renderExecStartDropIn; a `systemctl daemon-reload` must follow. */
      path: string;
      /** The ExecStart command line to edit with setFlagInExecStart, as written after `ExecStart=`. */
      commandLine: string;
      /** The file the command line is taken from. */
      sourceFile: string;
    };

/** The place to change the effective `rotateCertificates` value. */
export type RotationEdit =
  | { kind: 'config-file'; path: string; field: 'rotateCertificates' }
  | { kind: 'flag'; location: FlagLocation }
  | { kind: 'not-editable'; problem: string };

/** Locations and values of the kubelet's settings on one host. */
export interface KubeletSettings {
  executable: string;
  kubeconfig: string;
  /** The `--bootstrap-kubeconfig` path, or undefined when the flag is not given. */
  bootstrapKubeconfig: string | undefined;
  certDir: string;
  /** The `--config` path, or undefined when the kubelet runs on flags only. */
  configFile: string | undefined;
  /** The current `--hostname-override`, or undefined when the kubelet uses the host name. */
  nodeNameOverride: { value: string; source: ArgumentSource } | undefined;
  /**
   * The effective value, where it comes from, and where to change it: the config file
   * when the value comes from it or from the default, else the `--rotate-certificates` flag.
   */
  rotateCertificates: { value: boolean; source: RotationSource; edit: RotationEdit };
  hostnameOverride: FlagLocation;
  command: KubeletCommand;
  flags: KubeletFlag[];
}

const HOSTNAME_OVERRIDE = 'hostname-override';

/**
 * Finds where the kubelet's settings live from its unit (see parseSystemctlCat), the
 * contents of its environment files (undefined for an absent file) and the text of its
 * `--config` file.
 *
 * `--hostname-override` stays where it is when it is already set in an environment file
 * or in ExecStart. Otherwise the first match of this list receives it:
 * 1. `KUBELET_KUBEADM_ARGS` in `kubeadm-flags.env`,
 * 2. `KUBELET_EXTRA_ARGS` in `/etc/default/kubelet` or `/etc/sysconfig/kubelet`,
 * 3. a drop-in that replaces ExecStart.
 * The first two match only when the file is an EnvironmentFile and ExecStart uses the
 * variable as a word of its own (`$VAR`).
 *
 * A variable that ExecStart uses but nothing defines is accepted when the unit has at
 * least one EnvironmentFile, because an empty `/etc/default/kubelet` is normal there, and
 * rejected otherwise.
 */
export function locateKubeletSettings(
  unit: KubeletUnit,
  envFiles: ReadonlyMap<string, string | undefined>,
  configFileText?: string,
): KubeletSettings {
  const command = expandExecStart(unit, envFiles);
  const { execStart } = command;

  const executableName = command.executable.slice(command.executable.lastIndexOf('/') + 1);
  if (executableName !== 'kubelet') {
    throw new KubeletLayoutError(execStart.file, `line ${execStart.line}: ExecStart= runs ${command.executable}, not a kubelet binary; the tool reads only units that start the kubelet directly`);
  }
  if (command.unsetVariables.length > 0 && unit.environmentFiles.length === 0) {
    throw new KubeletLayoutError(
      execStart.file,
      `line ${execStart.line}: ExecStart= uses ${command.unsetVariables.map((name) => `$${name}`).join(', ')}, but no Environment= or EnvironmentFile= defines it; define the variable or remove it from ExecStart`,
    );
  }

  const flags = parseKubeletArgs(command.args);
  const kubeconfig = findFlag(flags, 'kubeconfig')?.value;
  if (kubeconfig === undefined || kubeconfig === '') {
    throw new KubeletLayoutError(execStart.file, `line ${execStart.line}: the kubelet's command line has no --kubeconfig, so the kubelet runs standalone and registers no Node to rename`);
  }
  const configFile = nonEmpty(findFlag(flags, 'config')?.value);
  const override = findFlag(flags, HOSTNAME_OVERRIDE);
  const rotation = readRotation(flags, configFile, configFileText);

  return {
    executable: command.executable,
    kubeconfig,
    bootstrapKubeconfig: nonEmpty(findFlag(flags, 'bootstrap-kubeconfig')?.value),
    certDir: nonEmpty(findFlag(flags, 'cert-dir')?.value) ?? DEFAULT_CERT_DIR,
    configFile,
    nodeNameOverride: override?.value ? { value: override.value, source: override.source } : undefined,
    rotateCertificates: { ...rotation, edit: locateRotationEdit(unit, command, flags, envFiles, rotation.source, configFile) },
    hostnameOverride: locateFlag(unit, command, flags, envFiles, HOSTNAME_OVERRIDE),
    command,
    flags,
  };
}

/**
 * Returns the `--config` path of the kubelet's command line, or undefined when it has
 * none, so the caller can read that file before calling locateKubeletSettings.
 */
export function findConfigFile(unit: KubeletUnit, envFiles: ReadonlyMap<string, string | undefined>): string | undefined {
  const command = expandExecStart(unit, envFiles);
  return nonEmpty(findFlag(parseKubeletArgs(command.args), 'config')?.value);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === '' ? undefined : value;
}

const BOOLEAN_WORDS: Record<string, boolean> = {
  '1': true, t: true, T: true, true: true, TRUE: true, True: true,
  '0': false, f: false, F: false, false: false, FALSE: false, False: false,
};

function readRotation(flags: KubeletFlag[], configFile: string | undefined, configFileText: string | undefined): { value: boolean; source: RotationSource } {
  const flag = findFlag(flags, 'rotate-certificates');
  if (flag !== undefined) {
    const value = flag.value === undefined ? true : BOOLEAN_WORDS[flag.value];
    if (value === undefined) {
      throw new KubeletLayoutError(flag.source.file, `--rotate-certificates=${flag.value} (from ${describeSource(flag.source)}) is not a boolean; use true or false`);
    }
    return { value, source: { kind: 'flag', source: flag.source } };
  }

  if (configFile === undefined) {
    return { value: false, source: { kind: 'default' } };
  }
  const config = readConfigFile(configFile, configFileText);
  const value = config.rotateCertificates;
  if (value === undefined || value === null) {
    return { value: false, source: { kind: 'default' } };
  }
  if (typeof value !== 'boolean') {
    throw new KubeletLayoutError(configFile, `rotateCertificates is ${JSON.stringify(value)}, not a boolean; set it to true or false`);
  }
  return { value, source: { kind: 'config-file', file: configFile } };
}

function readConfigFile(path: string, text: string | undefined): Record<string, unknown> {
  if (text === undefined) {
    throw new KubeletLayoutError(path, 'the kubelet config file named by --config is missing; the kubelet cannot start without it');
  }
  let document: unknown;
  try {
    document = yaml.load(text, { filename: path });
  } catch (error) {
    const reason = error instanceof yaml.YAMLException ? error.message : String(error);
    throw new KubeletLayoutError(path, `the kubelet config file is not valid YAML: ${reason}`, { cause: error });
  }
  if (document === undefined || document === null) {
    return {};
  }
  if (typeof document !== 'object' || Array.isArray(document)) {
    throw new KubeletLayoutError(path, 'the kubelet config file is not a YAML mapping; it should hold a KubeletConfiguration');
  }
  const config = document as Record<string, unknown>;
  if (config.kind !== undefined && config.kind !== 'KubeletConfiguration') {
    throw new KubeletLayoutError(path, `the config file has kind ${JSON.stringify(config.kind)}, expected KubeletConfiguration; check that --config names the kubelet's config file`);
  }
  return config;
}

function locateRotationEdit(
  unit: KubeletUnit,
  command: KubeletCommand,
  flags: KubeletFlag[],
  envFiles: ReadonlyMap<string, string | undefined>,
  source: RotationSource,
  configFile: string | undefined,
): RotationEdit {
  if (source.kind !== 'flag' && configFile !== undefined) {
    return { kind: 'config-file', path: configFile, field: 'rotateCertificates' };
  }
  try {
    return { kind: 'flag', location: locateFlag(unit, command, flags, envFiles, 'rotate-certificates') };
  } catch (error) {
    if (error instanceof KubeletLayoutError) {
      return { kind: 'not-editable', problem: error.message };
    }
    throw error;
  }
}

/** Finds where the flag `name` is written, or where it should be added when it is absent. */
function locateFlag(
  unit: KubeletUnit,
  command: KubeletCommand,
  flags: KubeletFlag[],
  envFiles: ReadonlyMap<string, string | undefined>,
  name: string,
): FlagLocation {
  const present = flags.filter((flag) => flag.name === name);
  if (present.length > 0) {
    return locationOfExisting(unit, command, present, name);
  }

  const candidates: Array<{ variable: string; matches: (path: string) => boolean }> = [
    { variable: 'KUBELET_KUBEADM_ARGS', matches: (path) => path.endsWith('/kubeadm-flags.env') },
    { variable: 'KUBELET_EXTRA_ARGS', matches: (path) => path === '/etc/default/kubelet' || path === '/etc/sysconfig/kubelet' },
  ];
  for (const { variable, matches } of candidates) {
    const reference = findLast(unit.environmentFiles, (setting) => matches(setting.path));
    if (reference === undefined || !command.execStart.words.includes(`$${variable}`)) {
      continue;
    }
    const location = environmentFileLocation(command, variable, reference, envFiles);
    if (location !== undefined) {
      return location;
    }
  }
  return dropInLocation(unit, command);
}

function locationOfExisting(unit: KubeletUnit, command: KubeletCommand, present: KubeletFlag[], name: string): FlagLocation {
  const sources = new Set(present.map((flag) => describeSource(flag.source)));
  const { source } = present[present.length - 1];
  if (sources.size > 1) {
    throw new KubeletLayoutError(source.file, `--${name} is set in several places (${[...sources].join('; ')}); keep only one of them`);
  }

  switch (source.kind) {
    case 'exec-start':
      return dropInLocation(unit, command);
    case 'environment-file':
      if (source.split) {
        return { kind: 'environment-file', path: source.file, variable: source.variable, exists: true };
      }
      throw new KubeletLayoutError(source.file, `--${name} comes from \${${source.variable}}, which ExecStart passes as a single argument; use $${source.variable} in ExecStart so the tool can edit the flag`);
    case 'environment':
      throw new KubeletLayoutError(source.file, `line ${source.line}: --${name} is set through Environment=${source.variable}; the tool edits only environment files and ExecStart, so move the flag to an EnvironmentFile or to ExecStart`);
  }
}

function environmentFileLocation(
  command: KubeletCommand,
  variable: string,
  reference: EnvironmentFileSetting,
  envFiles: ReadonlyMap<string, string | undefined>,
): FlagLocation | undefined {
  const definition = command.environment.get(variable);
  if (definition?.kind === 'environment') {
    // A new assignment in the file would replace the whole Environment= value and lose its flags.
    return undefined;
  }
  const path = definition?.file ?? reference.path;
  return { kind: 'environment-file', path, variable, exists: envFiles.get(path) !== undefined };
}

function dropInLocation(unit: KubeletUnit, command: KubeletCommand): FlagLocation {
  const path = `/etc/systemd/system/${unit.name}.d/${DROP_IN_NAME}`;
  const later = unit.files.find((file) => file.path !== path && file.path.endsWith('.conf') && basename(file.path) > DROP_IN_NAME && /^\s*ExecStart\s*=/m.test(file.content));
  if (later !== undefined) {
    throw new KubeletLayoutError(later.path, `this drop-in sets ExecStart= and sorts after ${DROP_IN_NAME}, so a changed ExecStart in ${path} would not take effect; rename the drop-in or move its ExecStart`);
  }
  return { kind: 'exec-start-drop-in', path, commandLine: command.execStart.raw, sourceFile: command.execStart.file };
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
