// One run at a time per state directory: a lock file created with O_EXCL that
// records who holds it. A lock whose process is gone (same host, pid not
// running) is stale; it is reported, and `unlock` clears it.
import { StateWriteError } from './journal.js';
import { mkdirSync, openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import path from 'node:path';

export const LOCK_FILE = 'lock';

export interface LockOwner {
  pid: number;
  host: string;
  user: string;
  startedAt: string;
  command: string;
}

export type LockState =
  | { kind: 'free' }
  | { kind: 'held'; owner: LockOwner }
  | { kind: 'stale'; owner: LockOwner }
  | { kind: 'unreadable'; detail: string };

/** Another process holds the state directory's lock, or left it behind. */
export class LockHeldError extends Error {
  constructor(
    readonly lockFile: string,
    readonly lock: Exclude<LockState, { kind: 'free' }>,
    unlockCommand: string,
  ) {
    super(describeLock(lockFile, lock, unlockCommand));
    this.name = 'LockHeldError';
  }
}

export function describeLock(lockFile: string, lock: Exclude<LockState, { kind: 'free' }>, unlockCommand: string): string {
  if (lock.kind === 'unreadable') return `lock file ${lockFile} exists but cannot be read (${lock.detail}); if no run is active, clear it with: ${unlockCommand}`;
  const owner = `pid ${lock.owner.pid} on ${lock.owner.host} (user ${lock.owner.user}, started ${lock.owner.startedAt}, command: ${lock.owner.command})`;
  if (lock.kind === 'stale') return `stale lock ${lockFile}: it was taken by ${owner}, and that process is gone; clear it with: ${unlockCommand}`;
  return `the state is locked by ${owner}; wait for that run to end or stop it. If it runs on another host and is gone, clear the lock with: ${unlockCommand}`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Reads the lock and decides whether its owner still runs; a lock from another host counts as held. */
export function inspectLock(dir: string): LockState {
  const file = path.join(dir, LOCK_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'free' };
    return { kind: 'unreadable', detail: (error as Error).message };
  }
  let owner: LockOwner;
  try {
    owner = JSON.parse(text) as LockOwner;
    if (typeof owner.pid !== 'number' || typeof owner.host !== 'string') throw new Error('missing pid or host');
  } catch (error) {
    return { kind: 'unreadable', detail: (error as Error).message };
  }
  if (owner.host === hostname() && !isAlive(owner.pid)) return { kind: 'stale', owner };
  return { kind: 'held', owner };
}

export class StateLock {
  private constructor(private readonly file: string) {}

  /** Takes the lock or throws LockHeldError describing the holder. */
  static acquire(dir: string, command: string, unlockCommand: string): StateLock {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new StateWriteError(dir, 'lock', error);
    }
    const file = path.join(dir, LOCK_FILE);
    const owner: LockOwner = { pid: process.pid, host: hostname(), user: userInfo().username, startedAt: new Date().toISOString(), command };
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new StateWriteError(dir, 'lock', error);
      const lock = inspectLock(dir);
      // The holder released it between our open and our read: try once more.
      if (lock.kind === 'free') return StateLock.acquire(dir, command, unlockCommand);
      throw new LockHeldError(file, lock, unlockCommand);
    }
    try {
      writeSync(fd, `${JSON.stringify(owner)}\n`);
    } catch (error) {
      closeSync(fd);
      unlinkSync(file);
      throw new StateWriteError(dir, 'lock', error);
    }
    closeSync(fd);
    return new StateLock(file);
  }

  release(): void {
    try {
      unlinkSync(this.file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}

/** Removes the lock file. Returns what it held, so the caller can report it. */
export function clearLock(dir: string): LockState {
  const lock = inspectLock(dir);
  if (lock.kind !== 'free') unlinkSync(path.join(dir, LOCK_FILE));
  return lock;
}
