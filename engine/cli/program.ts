// Builds the commander program from the command table and maps errors to
// exit codes. Input errors print their message only, never a stack trace.
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { PlanChangedError, ServicesSetupError } from '../apply.js';
import { InvalidPlanError } from '../plan/issues.js';
import { RollbackInputError } from '../rollback.js';
import { StateCorruptError, StateWriteError } from '../state/journal.js';
import { LockHeldError } from '../state/lock.js';
import { COMMANDS } from './commands/index.js';
import { write, type CliEnvironment } from './environment.js';
import { ExitCode } from './exit-codes.js';

export type CliSetup = Omit<CliEnvironment, 'programName' | 'stdout' | 'stderr'> & Partial<Pick<CliEnvironment, 'stdout' | 'stderr'>>;

/** `kubectl node-rename` when started through the kubectl-node_rename name, else `kube-node-rename`. */
export function programNameFor(scriptPath: string | undefined): string {
  return path.basename(scriptPath ?? '').startsWith('kubectl-') ? 'kubectl node-rename' : 'kube-node-rename';
}

export function buildProgram(env: CliEnvironment, setExitCode: (code: number) => void): Command {
  const program = new Command(env.programName)
    .description('Rename Kubernetes nodes in place across a fleet, following a resumable, checkpointed plan.')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (text) => env.stdout.write(text),
      writeErr: (text) => env.stderr.write(text),
    })
    .addHelpText(
      'after',
      `
Exit codes:
  ${ExitCode.ok}    success
  ${ExitCode.runFailed}    apply ran and a node failed, was blocked or did not start; or rollback refused or failed for a node
  ${ExitCode.invalidInput}    invalid input or state (plan, options, changed plan, held lock); nothing ran
  ${ExitCode.interrupted}  apply was interrupted by SIGINT or SIGTERM; run it again to resume`,
    );
  for (const command of COMMANDS) command.register(program, env, setExitCode);
  return program;
}

/** Runs the CLI on `argv` (process.argv layout) and returns the exit code. */
export async function runCli(argv: string[], setup: CliSetup): Promise<number> {
  const env: CliEnvironment = {
    stdout: process.stdout,
    stderr: process.stderr,
    ...setup,
    programName: programNameFor(argv[1]),
  };
  let exitCode: number = ExitCode.ok;
  const program = buildProgram(env, (code) => (exitCode = code));
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (error) {
    return reportError(env, error);
  }
}

function reportError(env: CliEnvironment, error: unknown): number {
  if (error instanceof CommanderError) {
    // Commander has printed the message; help and --version end with code 0.
    return error.exitCode === 0 ? ExitCode.ok : ExitCode.invalidInput;
  }
  if (error instanceof InvalidPlanError) {
    write(env.stderr, error.format());
    return ExitCode.invalidInput;
  }
  if (error instanceof PlanChangedError || error instanceof LockHeldError || error instanceof StateCorruptError || error instanceof ServicesSetupError || error instanceof RollbackInputError) {
    write(env.stderr, `error: ${error.message}`);
    return ExitCode.invalidInput;
  }
  if (error instanceof StateWriteError) {
    write(env.stderr, `error: ${error.message}`);
    return error.phase === 'lock' || error.phase === 'create' ? ExitCode.invalidInput : ExitCode.runFailed;
  }
  // Anything else is a bug or an environment failure: keep the stack for the report.
  write(env.stderr, `internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return ExitCode.runFailed;
}
