// Durable storage of StateData: a snapshot (state.json) plus an append-only
// journal of events (journal-<generation>.jsonl).
//
// - Each append is one JSON line. Appends made in the same turn of the event
//   loop are written together and made durable with one fdatasync (group
//   commit), so a checkpoint costs one short write whatever the plan size.
// - A crash can tear only the last line; loading ignores a torn last line and
//   the writer cuts it off before appending.
// - Compaction writes the whole state to state.json.tmp, fsyncs it, renames it
//   over state.json and starts the next generation's journal. It runs once
//   the journal contains as many entries as the plan has steps (at least
//   COMPACT_MIN_ENTRIES), so its cost per event stays constant on average.
import { closeSync, existsSync, fdatasyncSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { applyEvent, type StateData, type StateEvent } from './model.js';

export const STATE_FILE = 'state.json';
const COMPACT_MIN_ENTRIES = 1000;
const JOURNAL_NAME = /^journal-([0-9]+)\.jsonl$/;

interface SnapshotFile {
  generation: number;
  state: StateData;
}

/** The state files exist but cannot be read back. */
export class StateCorruptError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`state file ${file} is unreadable: ${detail}; move the state directory aside (or use --start-over) to begin again`);
    this.name = 'StateCorruptError';
  }
}

/**
 * The state could not be written (disk full, read-only file system, permissions). The run stops
 * starting steps at once, because a step must not act without a record.
 */
export class StateWriteError extends Error {
  readonly code: string | undefined;

  constructor(
    readonly dir: string,
    readonly phase: 'lock' | 'create' | 'append' | 'compact',
    cause: unknown,
  ) {
    const code = (cause as NodeJS.ErrnoException).code;
    const reason = code === 'ENOSPC' ? 'the disk is full' : code === 'EROFS' ? 'the file system is read-only' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (cause as Error).message;
    const when = phase === 'lock' || phase === 'create' ? 'nothing ran' : 'the run stopped starting steps; steps already recorded as done stay done';
    super(`cannot write the state in ${dir} (${code ?? 'error'}: ${reason}); ${when}. Free space or make the folder writable, or pass --state-dir, then run apply again to resume`, { cause });
    this.name = 'StateWriteError';
    this.code = code;
  }
}

export interface LoadedState {
  state: StateData;
  generation: number;
  /** Journal entries replayed on top of the snapshot. */
  entries: number;
  /** Byte length of the journal's valid part; a torn last line lies beyond it. */
  validJournalBytes: number;
}

const journalFile = (dir: string, generation: number): string => path.join(dir, `journal-${generation}.jsonl`);

export function stateExists(dir: string): boolean {
  return existsSync(path.join(dir, STATE_FILE));
}

/** Reads the snapshot and replays its journal; returns undefined when there is no state. Never writes. */
export function readState(dir: string): LoadedState | undefined {
  const snapshotPath = path.join(dir, STATE_FILE);
  let snapshot: SnapshotFile;
  try {
    snapshot = JSON.parse(readFileSync(snapshotPath, 'utf8')) as SnapshotFile;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StateCorruptError(snapshotPath, (error as Error).message);
  }
  if (snapshot.state?.format !== 'kube-node-rename/state-v1' || typeof snapshot.generation !== 'number') {
    throw new StateCorruptError(snapshotPath, 'unknown format');
  }
  const state = snapshot.state;

  const file = journalFile(dir, snapshot.generation);
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new StateCorruptError(file, (error as Error).message);
  }

  let offset = 0;
  let entries = 0;
  while (offset < text.length) {
    const end = text.indexOf('\n', offset);
    const line = end === -1 ? text.slice(offset) : text.slice(offset, end);
    let event: StateEvent;
    try {
      event = JSON.parse(line) as StateEvent;
    } catch (error) {
      // Only the last line can be torn by a crash; anything else is damage.
      if (end === -1 || text.slice(end + 1).trim() === '') break;
      throw new StateCorruptError(file, `line ${entries + 1} is not JSON (${(error as Error).message})`);
    }
    if (end === -1) break; // complete JSON but no newline: the write was cut before its end
    applyEvent(state, event);
    entries++;
    offset = end + 1;
  }
  return { state, generation: snapshot.generation, entries, validJournalBytes: Buffer.byteLength(text.slice(0, offset)) };
}

/** The writer. Only one process may hold it; the caller takes the lock first. */
export class Journal {
  private fd: number;
  private pending: string[] = [];
  private flushing: Promise<void> | undefined;
  private bytes = 0;
  private closed = false;
  private failure: StateWriteError | undefined;

  private constructor(
    private readonly dir: string,
    private generation: number,
    private entries: number,
    readonly state: StateData,
    private readonly compactAfter: number,
  ) {
    this.fd = openSync(journalFile(dir, generation), 'a', 0o600);
  }

  /**
   * Creates a new state in `dir`, replacing any there. `stepCount` sizes the
   * compaction interval (compaction rewrites every step's record).
   */
  static create(dir: string, state: StateData, stepCount: number): Journal {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const snapshotBytes = writeSnapshot(dir, { generation: 0, state });
      removeStaleFiles(dir, 0);
      const journal = new Journal(dir, 0, 0, state, compactionInterval(stepCount));
      journal.bytes = snapshotBytes;
      return journal;
    } catch (error) {
      throw new StateWriteError(dir, 'create', error);
    }
  }

  /** Opens the existing state for writing: cuts a torn last line and removes files left by a crash. */
  static open(dir: string, stepCount: number): Journal {
    const loaded = readState(dir);
    if (loaded === undefined) throw new Error(`no state in ${dir}`);
    const file = journalFile(dir, loaded.generation);
    if (existsSync(file)) {
      const fd = openSync(file, 'r+');
      ftruncateSync(fd, loaded.validJournalBytes);
      fsyncSync(fd);
      closeSync(fd);
    }
    removeStaleFiles(dir, loaded.generation);
    return new Journal(dir, loaded.generation, loaded.entries, loaded.state, compactionInterval(stepCount));
  }

  /** Applies the event to the in-memory state at once and resolves when it is durable. */
  append(event: StateEvent): Promise<void> {
    if (this.closed) throw new Error('journal is closed');
    if (this.failure !== undefined) return Promise.reject(this.failure);
    applyEvent(this.state, event);
    this.pending.push(JSON.stringify(event));
    this.flushing ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.flushing = undefined;
        try {
          this.flush();
          resolve();
        } catch (error) {
          reject(error as Error);
        }
      });
    });
    return this.flushing;
  }

  /** The write error that stopped this journal, if any: nothing is appended after it. */
  get failed(): StateWriteError | undefined {
    return this.failure;
  }

  /** Bytes this writer has written to journals and snapshots. */
  get writtenBytes(): number {
    return this.bytes;
  }

  /** Writes what is pending, compacts, and closes the journal. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.flushing !== undefined) await this.flushing.catch(() => undefined);
    try {
      if (this.failure !== undefined) throw this.failure;
      this.flush();
      this.compact();
    } finally {
      closeSync(this.fd);
      this.closed = true;
    }
  }

  private flush(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.pending.length === 0) return;
    try {
      this.write();
    } catch (error) {
      // A partly written line stays last, where loading ignores it; nothing is written after it.
      this.failure = error instanceof StateWriteError ? error : new StateWriteError(this.dir, 'append', error);
      throw this.failure;
    }
  }

  private write(): void {
    const data = Buffer.from(`${this.pending.join('\n')}\n`);
    this.entries += this.pending.length;
    this.pending = [];
    let written = 0;
    while (written < data.length) written += writeSync(this.fd, data, written);
    fdatasyncSync(this.fd);
    this.bytes += data.length;
    if (this.entries >= this.compactAfter) this.compact();
  }

  private compact(): void {
    try {
      this.compactNow();
    } catch (error) {
      this.failure = new StateWriteError(this.dir, 'compact', error);
      throw this.failure;
    }
  }

  private compactNow(): void {
    const next = this.generation + 1;
    this.bytes += writeSnapshot(this.dir, { generation: next, state: this.state });
    const nextFd = openSync(journalFile(this.dir, next), 'a', 0o600);
    closeSync(this.fd);
    unlinkSync(journalFile(this.dir, this.generation));
    this.fd = nextFd;
    this.generation = next;
    this.entries = 0;
  }
}

function compactionInterval(stepCount: number): number {
  return Math.max(COMPACT_MIN_ENTRIES, stepCount);
}

/**
 * Writes the snapshot through a temporary file and a rename, so a crash
 * leaves the old or the new one. The step records are serialized in slices
 * rather than as one string, which keeps a 10,000-node snapshot from
 * allocating tens of megabytes at once. Returns the bytes written.
 */
function writeSnapshot(dir: string, snapshot: SnapshotFile): number {
  const target = path.join(dir, STATE_FILE);
  const temporary = `${target}.tmp`;
  const fd = openSync(temporary, 'w', 0o600);
  let bytes = 0;
  const write = (text: string): void => {
    const data = Buffer.from(text);
    let written = 0;
    while (written < data.length) written += writeSync(fd, data, written);
    bytes += data.length;
  };
  try {
    const { steps, ...rest } = snapshot.state;
    write(`{"generation":${snapshot.generation},"state":${JSON.stringify(rest).slice(0, -1)},"steps":{`);
    let slice: string[] = [];
    let first = true;
    for (const id in steps) {
      slice.push(`${JSON.stringify(id)}:${JSON.stringify(steps[id])}`);
      if (slice.length === 500) {
        write(`${first ? '' : ','}${slice.join(',')}`);
        first = false;
        slice = [];
      }
    }
    write(`${first || slice.length === 0 ? '' : ','}${slice.join(',')}}}}`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, target);
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
  return bytes;
}

function removeStaleFiles(dir: string, generation: number): void {
  for (const name of readdirSync(dir)) {
    const match = JOURNAL_NAME.exec(name);
    if ((match !== null && Number(match[1]) !== generation) || name === `${STATE_FILE}.tmp`) unlinkSync(path.join(dir, name));
  }
}
