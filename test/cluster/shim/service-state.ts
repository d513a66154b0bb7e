// Shared state of the test hosts' systemd shims: where units, state and
// journal files live on a host, and how a unit's state file reads.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FileReader } from './unit-file.js';

/**
 * Folder that stands for `/` on the host. Hosts see their own files at the
 * real paths through their mount namespace, so this is `/` there; the shim's
 * own tests point it at a temporary folder.
 */
export function hostRoot(): string {
  return process.env.KNR_SHIM_ROOT ?? '/';
}

export function hostPath(path: string): string {
  return join(hostRoot(), path);
}

export const STATE_DIR = '/run/knr-systemd';
export const JOURNAL_DIR = '/var/log/knr-journal';

export const hostFiles: FileReader = {
  read(path) {
    try {
      return readFileSync(hostPath(path), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  },
  list(path) {
    try {
      return readdirSync(hostPath(path));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  },
};

/**
 * Lifecycle of a service as `systemctl is-active` names it: `activating`
 * covers the wait before an automatic restart.
 */
export type ActiveState = 'inactive' | 'activating' | 'active' | 'deactivating' | 'failed';

export interface ServiceState {
  activeState: ActiveState;
  /** systemd's finer state: running, auto-restart, dead, failed, stop-sigterm. */
  subState: string;
  supervisorPid?: number;
  mainPid?: number;
  /** ISO time of the last transition to active. */
  activeSince?: string;
  /** Exit status of the last main process, when it has exited. */
  lastExit?: { code: number | null; signal: string | null };
  restarts: number;
}

export function statePath(unit: string): string {
  return hostPath(join(STATE_DIR, `${unit}.json`));
}

export function journalPath(unit: string): string {
  return hostPath(join(JOURNAL_DIR, `${unit}.log`));
}

/** Path of the unit definition as loaded at the last daemon-reload or first use. */
export function snapshotPath(unit: string): string {
  return hostPath(join(STATE_DIR, `${unit}.loaded.json`));
}

export function isAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still accepts signal 0, so check the state letter in /proc too.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Reads a unit's state, treating a dead supervisor as a stopped service. */
export function readState(unit: string): ServiceState {
  const path = statePath(unit);
  if (!existsSync(path)) return { activeState: 'inactive', subState: 'dead', restarts: 0 };
  const state = JSON.parse(readFileSync(path, 'utf8')) as ServiceState;
  const supervised = state.activeState === 'active' || state.activeState === 'activating' || state.activeState === 'deactivating';
  if (supervised && !isAlive(state.supervisorPid)) {
    return { ...state, activeState: 'failed', subState: 'failed', supervisorPid: undefined, mainPid: undefined };
  }
  return state;
}

export function writeState(unit: string, state: ServiceState): void {
  const path = statePath(unit);
  mkdirSync(hostPath(STATE_DIR), { recursive: true });
  writeFileSync(`${path}.tmp`, JSON.stringify(state));
  renameSync(`${path}.tmp`, path);
}
