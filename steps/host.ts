// Host access: runs fixed shell scripts on a node's machine over the system's OpenSSH or locally.
// Every value reaches the remote shell as a positional parameter of `sh -c SCRIPT`, quoted with
// POSIX single quotes, so a node name or address never becomes shell syntax.
import { $, type ProcessOutput } from 'zx';
import type { Logger } from 'winston';
import { TransientStepError } from '../engine/step.js';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Bytes passed on standard input; the way file contents and secrets reach a host, never argv. */
  input?: string;
  /** Exit codes that count as success; default [0]. */
  okCodes?: number[];
  signal?: AbortSignal;
  /** Milliseconds before the command is killed; default 120000. */
  timeoutMs?: number;
}

/** Runs one script with its arguments on one host. */
export interface HostRunner {
  readonly target: string;
  script(description: string, script: string, args?: string[], options?: RunOptions): Promise<CommandResult>;
}

export interface SshAccess {
  transport: 'ssh' | 'local';
  user?: string;
  port?: number;
  identityFile?: string;
  sshConfig?: string;
  sshOptions?: string[];
  sudo: boolean;
}

/** A host command that exited with an unexpected code or could not be started. */
export class HostCommandError extends Error {
  constructor(
    readonly target: string,
    readonly description: string,
    readonly code: number,
    readonly stderrTail: string,
    readonly unreachable: boolean,
  ) {
    const what = unreachable
      ? `cannot reach host ${target} over SSH (exit code ${code})`
      : `command "${description}" failed on host ${target} with exit code ${code}`;
    super(stderrTail ? `${what}: ${stderrTail}` : what);
    this.name = 'HostCommandError';
  }
}

export function shellQuote(value: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

const STDERR_TAIL_CHARS = 600;

function tail(text: string): string {
  const trimmed = text.trim();
  return trimmed.length > STDERR_TAIL_CHARS ? '…' + trimmed.slice(-STDERR_TAIL_CHARS) : trimmed;
}

/** Builds the ssh argv (without the remote command) for one host. */
export function sshArgs(access: SshAccess, address: string, user?: string, port?: number): string[] {
  const args = ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=15', '-o', 'ServerAliveInterval=10', '-o', 'ServerAliveCountMax=3'];
  if (access.sshConfig) args.push('-F', access.sshConfig);
  if (access.identityFile) args.push('-i', access.identityFile);
  const login = user ?? access.user;
  if (login) args.push('-l', login);
  const sshPort = port ?? access.port;
  if (sshPort) args.push('-p', String(sshPort));
  for (const option of access.sshOptions ?? []) args.push('-o', option);
  args.push('--', address);
  return args;
}

/** Builds the remote command line `[sudo -n --] sh -c SCRIPT sh ARG...`, with every part quoted. */
export function remoteCommand(script: string, args: string[], sudo: boolean): string {
  const argv = ['sh', '-c', script, 'sh', ...args];
  return (sudo ? ['sudo', '-n', '--', ...argv] : argv).map(shellQuote).join(' ');
}

interface RunnerParams {
  access: SshAccess;
  address: string;
  user?: string;
  port?: number;
  log: Logger;
}

class ZxRunner implements HostRunner {
  readonly target: string;

  constructor(private readonly params: RunnerParams) {
    this.target = params.access.transport === 'local' ? 'localhost (local transport)' : params.address;
  }

  async script(description: string, script: string, args: string[] = [], options: RunOptions = {}): Promise<CommandResult> {
    const { access, address, user, port, log } = this.params;
    const okCodes = options.okCodes ?? [0];
    let argv: string[];
    if (access.transport === 'local') {
      argv = access.sudo ? ['sudo', '-n', '--', 'sh', '-c', script, 'sh', ...args] : ['sh', '-c', script, 'sh', ...args];
    } else {
      argv = ['ssh', ...sshArgs(access, address, user, port), remoteCommand(script, args, access.sudo)];
    }
    const started = Date.now();
    const shell = $({
      nothrow: true,
      quiet: true,
      verbose: false,
      // Without input, standard input is closed, so a command that reads it gets end-of-file at once.
      ...(options.input ? { input: options.input } : { stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'] }),
      timeout: options.timeoutMs ?? 120_000,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const output: ProcessOutput = await shell`${argv}`;
    const result: CommandResult = { code: output.exitCode ?? 255, stdout: output.stdout, stderr: output.stderr };
    const durationMs = Date.now() - started;
    const ok = okCodes.includes(result.code);
    log.log(ok ? 'debug' : 'warn', 'host command', { host: this.target, command: description, exitCode: result.code, durationMs });
    if (!ok) {
      // OpenSSH exits with 255 when the connection itself fails; the remote command never ran.
      const unreachable = access.transport === 'ssh' && result.code === 255;
      const error = new HostCommandError(this.target, description, result.code, tail(result.stderr), unreachable);
      // A host that cannot be reached may come back (a reboot, a network blip), so the engine
      // retries; a command that ran and failed is final.
      throw unreachable ? new TransientStepError(error.message, { cause: error }) : error;
    }
    return result;
  }
}

export function createHostRunner(params: RunnerParams): HostRunner {
  return new ZxRunner(params);
}
