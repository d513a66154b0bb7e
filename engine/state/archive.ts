import { mkdirSync, readdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { LOCK_FILE } from './lock.js';

export const ARCHIVE_DIR = 'archive';

/** Moves every state file except the lock into archive/<time>/ and returns that folder. Nothing is deleted. */
export function archiveState(dir: string, now: Date): string {
  const target = path.join(dir, ARCHIVE_DIR, now.toISOString().replace(/[:.]/g, '-'));
  mkdirSync(target, { recursive: true, mode: 0o700 });
  for (const name of readdirSync(dir)) {
    if (name === LOCK_FILE || name === ARCHIVE_DIR) continue;
    renameSync(path.join(dir, name), path.join(target, name));
  }
  return target;
}
