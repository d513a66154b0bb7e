import type { Command } from 'commander';
import type { CliEnvironment } from '../environment.js';

/**
 * One subcommand. `register` adds it to the program; its action returns the
 * exit code. Adding a command means one file here and one entry in index.ts.
 */
export interface CommandModule {
  register(program: Command, env: CliEnvironment, setExitCode: (code: number) => void): void;
}
