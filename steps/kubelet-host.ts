// Reading and changing the kubelet's settings on a host: the I/O around the pure functions of
// kubelet-config.ts.
import type { HostRunner } from './host.js';
import { backupHostFile, readHostFile, writeHostFile } from './host-files.js';
import {
  findConfigFile,
  KubeletLayoutError,
  locateKubeletSettings,
  parseSystemctlCat,
  renderExecStartDropIn,
  setConfigField,
  setFlagInEnvFile,
  setFlagInExecStart,
  type KubeletSettings,
} from './kubelet-config.js';
import type { FlagLocation, RotationEdit } from './kubelet-config.js';
import { RenameBlockedError } from './services.js';

/**
 * Reads the unit as systemd does, then the environment files and config file it names. Unit
 * names reach systemctl without `--`, which is safe because the plan schema rejects a name
 * that starts with a hyphen.
 */
export async function discoverKubelet(
  host: HostRunner,
  unitName: string,
  signal?: AbortSignal,
  options: { originalsIn?: string } = {},
): Promise<KubeletSettings> {
  const cat = await host.script(`systemctl cat ${unitName}`, 'systemctl cat "$1"', [unitName], { okCodes: [0, 1, 4, 5] });
  if (cat.code !== 0 || !cat.stdout.trim()) {
    throw new RenameBlockedError(
      `host ${host.target} has no systemd unit ${unitName} (systemctl cat exited with ${cat.code}: ${cat.stderr.trim() || 'no output'}); set kubelet.unit in the plan to the kubelet's unit name`,
    );
  }
  try {
    const unit = parseSystemctlCat(cat.stdout);
    // With originalsIn, a file's first backup copy stands for the file: the settings as they were
    // before any run of this rename changed them, even when the state of that run is lost.
    const read = async (path: string) =>
      (options.originalsIn ? await readHostFile(host, `${options.originalsIn}${path}`, signal) : undefined) ?? readHostFile(host, path, signal);
    const envFiles = new Map<string, string | undefined>();
    for (const file of unit.environmentFiles) envFiles.set(file.path, await read(file.path));
    const configFile = findConfigFile(unit, envFiles);
    const configText = configFile ? await read(configFile) : undefined;
    return locateKubeletSettings(unit, envFiles, configText);
  } catch (error) {
    if (error instanceof KubeletLayoutError) {
      throw new RenameBlockedError(`the kubelet layout on host ${host.target} is not one the tool can edit safely: ${error.message}`);
    }
    throw error;
  }
}

/** The parts of KubeletSettings that later steps and rollback need, as recorded in the state. */
export interface RecordedSettings {
  unit: string;
  kubeconfig: string;
  bootstrapKubeconfig: string;
  certDir: string;
  configFile: string | null;
  /** The node name the kubelet ran under before the rename. */
  nodeName: string;
  /** rotateCertificates before the rename. */
  rotation: boolean;
  rotationEdit: RotationEdit;
  overrideLocation: FlagLocation;
  previousOverride: string | null;
}

export function recordSettings(unit: string, settings: KubeletSettings, nodeName: string): RecordedSettings {
  if (!settings.bootstrapKubeconfig) {
    throw new RenameBlockedError(
      `the kubelet has no --bootstrap-kubeconfig, so it cannot request a certificate under a new name; add --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf to its flags (kubeadm's layout has it) and run again`,
    );
  }
  return {
    unit,
    kubeconfig: settings.kubeconfig,
    bootstrapKubeconfig: settings.bootstrapKubeconfig,
    certDir: settings.certDir,
    configFile: settings.configFile ?? null,
    nodeName,
    rotation: settings.rotateCertificates.value,
    rotationEdit: settings.rotateCertificates.edit,
    overrideLocation: settings.hostnameOverride,
    previousOverride: settings.nodeNameOverride?.value ?? null,
  };
}

export interface FileChange {
  path: string;
  backup: string | null;
}

/**
 * Sets one kubelet flag at its location: an environment file variable, or a drop-in that
 * replaces ExecStart. Backs the file up before its first change. Returns the change, or
 * undefined when the flag already had the value.
 */
export async function setKubeletFlag(
  host: HostRunner,
  location: FlagLocation,
  flag: string,
  value: string | null,
  backupDir: string,
): Promise<FileChange | undefined> {
  if (location.kind === 'environment-file') {
    const current = (await readHostFile(host, location.path)) ?? '';
    const edit = setFlagInEnvFile(current, location.variable, flag, value);
    if (!edit.changed) return undefined;
    const backup = (await backupHostFile(host, location.path, backupDir)) ?? null;
    await writeHostFile(host, location.path, edit.text, { mode: '644' });
    return { path: location.path, backup };
  }
  const edit = setFlagInExecStart(location.commandLine, flag, value);
  if (!edit.changed) return undefined;
  const backup = (await backupHostFile(host, location.path, backupDir)) ?? null;
  await writeHostFile(host, location.path, renderExecStartDropIn(edit.text), { mode: '644' });
  await host.script('systemctl daemon-reload', 'systemctl daemon-reload');
  return { path: location.path, backup };
}

/** Sets rotateCertificates where the kubelet reads it. */
export async function setRotation(host: HostRunner, edit: RotationEdit, value: boolean, backupDir: string): Promise<FileChange | undefined> {
  if (edit.kind === 'not-editable') {
    throw new RenameBlockedError(`cannot change the kubelet's certificate rotation on ${host.target}: ${edit.problem}`);
  }
  if (edit.kind === 'flag') return setKubeletFlag(host, edit.location, 'rotate-certificates', String(value), backupDir);
  const current = await readHostFile(host, edit.path);
  if (current === undefined) throw new RenameBlockedError(`the kubelet config file ${edit.path} on ${host.target} is gone; restore it from ${backupDir}`);
  const change = setConfigField(current, edit.field, value);
  if (!change.changed) return undefined;
  const backup = (await backupHostFile(host, edit.path, backupDir)) ?? null;
  await writeHostFile(host, edit.path, change.text, { mode: '644' });
  return { path: edit.path, backup };
}

export async function systemctl(host: HostRunner, verb: 'start' | 'stop' | 'restart', unit: string): Promise<void> {
  await host.script(`systemctl ${verb} ${unit}`, 'systemctl "$1" "$2"', [verb, unit]);
}

export async function unitActive(host: HostRunner, unit: string): Promise<boolean> {
  const result = await host.script(`systemctl is-active ${unit}`, 'systemctl is-active --quiet "$1"', [unit], { okCodes: [0, 1, 2, 3, 4] });
  return result.code === 0;
}

/** Returns the end of the kubelet's journal for error messages, or an empty string when it cannot be read. */
export async function kubeletJournalTail(host: HostRunner, unit: string, lines = 15): Promise<string> {
  try {
    const result = await host.script(`journalctl -u ${unit}`, 'journalctl -u "$1" -n "$2" --no-pager 2>&1 || true', [unit, String(lines)]);
    return result.stdout.trim();
  } catch {
    return '';
  }
}
