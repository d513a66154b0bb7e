// The surroundings of every command (recipe, output streams, program name),
// passed in so that tests can run the whole CLI with a recipe of test steps.
import path from 'node:path';
import { defaultStateDir } from '../apply.js';
import { createLogger, type LogFormat, type LoggerHandle } from '../logger.js';
import type { Plan, Recipe } from '../step.js';

export interface CliEnvironment {
  /** Loaded lazily: validate and --help never import the rename steps. */
  createRecipe(): Promise<Recipe<unknown>>;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** `kube-node-rename`, or `kubectl node-rename` when run as a kubectl plugin. */
  programName: string;
}

export interface StateOptions {
  stateDir?: string;
}

export interface LogOptions {
  logFormat: LogFormat;
}

export interface ClusterOptions {
  kubeconfig?: string;
  context?: string;
}

export function resolveStateDir(plan: Plan, options: StateOptions): string {
  return options.stateDir !== undefined ? path.resolve(options.stateDir) : defaultStateDir(plan);
}

export function openLogger(env: CliEnvironment, options: LogOptions): LoggerHandle {
  return createLogger({ format: options.logFormat, stream: env.stderr });
}

export function write(stream: NodeJS.WritableStream, text: string): void {
  stream.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Returns the command that clears the lock for this plan, for error messages. */
export function unlockCommand(env: CliEnvironment, planFile: string, options: StateOptions): string {
  const stateOption = options.stateDir !== undefined ? ` --state-dir ${options.stateDir}` : '';
  return `${env.programName} unlock ${planFile}${stateOption}`;
}
