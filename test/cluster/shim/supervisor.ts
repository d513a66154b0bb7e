// The process that `systemctl start` leaves behind on a test host: it runs
// the unit's ExecStart, writes its output to the unit's journal file with
// journald's line prefix, restarts it as Restart= sets, and stops it on
// SIGTERM. It runs detached from the SSH session that started it.

import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { hostFiles, journalPath, readState, snapshotPath, writeState, type ServiceState } from './service-state.js';
import { lastSetting, parseTimeSpan, serviceCommand, serviceEnvironment, type LoadedUnit } from './unit-file.js';

/** PATH that systemd gives services. */
const SERVICE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function journalTimestamp(date: Date): string {
  const month = date.toLocaleString('en-US', { month: 'short' });
  const pad = (value: number) => String(value).padStart(2, '0');
  return `${month} ${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** Appends one journal entry in `journalctl`'s short output format. */
export function appendJournal(unit: string, identifier: string, pid: number, message: string): void {
  const path = journalPath(unit);
  mkdirSync(dirname(path), { recursive: true });
  appendFileSync(path, `${journalTimestamp(new Date())} ${hostname()} ${identifier}[${pid}]: ${message}\n`);
}

function describe(unit: LoadedUnit): string {
  const description = lastSetting(unit, 'Unit', 'Description', '');
  return description === '' ? unit.name : `${unit.name} - ${description}`;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** Runs the unit until SIGTERM; returns the process exit code for the supervisor. */
export async function supervise(unitName: string): Promise<number> {
  const unit = JSON.parse(readFileSync(snapshotPath(unitName), 'utf8')) as LoadedUnit;
  const restartPolicy = lastSetting(unit, 'Service', 'Restart', 'no');
  const restartDelayMs = parseTimeSpan(lastSetting(unit, 'Service', 'RestartSec', '100ms'));
  const stopTimeoutMs = parseTimeSpan(lastSetting(unit, 'Service', 'TimeoutStopSec', '90s'));
  const systemdLog = (message: string) => appendJournal(unitName, 'systemd', 1, message);

  let state: ServiceState = { ...readState(unitName), supervisorPid: process.pid, restarts: 0 };
  let child: ChildProcess | undefined;
  let stopping = false;
  let wakeRestartWait: (() => void) | undefined;

  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = true;
    systemdLog(`Stopping ${describe(unit)}...`);
    state = { ...state, activeState: 'deactivating', subState: 'stop-sigterm' };
    writeState(unitName, state);
    wakeRestartWait?.();
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      signalGroup(child.pid, 'SIGTERM');
      const pid = child.pid;
      setTimeout(() => signalGroup(pid, 'SIGKILL'), stopTimeoutMs).unref();
    }
  });

  for (;;) {
    // systemd reads EnvironmentFile= at every start, so a restart reads edits
    // to the files but not to the unit itself until daemon-reload.
    let command;
    try {
      command = serviceCommand(unit, serviceEnvironment(unit, hostFiles));
    } catch (error) {
      systemdLog(`${unit.name}: ${(error as Error).message}`);
      systemdLog(`${unit.name}: Failed with result 'resources'.`);
      systemdLog(`Failed to start ${describe(unit)}.`);
      writeState(unitName, { ...state, activeState: 'failed', subState: 'failed', mainPid: undefined, supervisorPid: undefined });
      return 1;
    }
    const environment = { ...serviceEnvironmentBase(), ...serviceEnvironment(unit, hostFiles) };

    const started = spawn(command.path, command.argv.slice(1), {
      argv0: command.argv[0],
      env: environment,
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: '/',
      // Its own process group, so that stopping reaches its children as
      // systemd's default KillMode=control-group does.
      detached: true,
    });
    child = started;
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
      started.on('error', (error) => {
        appendJournal(unitName, basename(command.path), process.pid, `Failed to execute ${command.path}: ${error.message}`);
        resolve({ code: 203, signal: null });
      });
      started.on('exit', (code, signal) => resolve({ code, signal }));
    });
    const identifier = basename(command.argv[0] ?? command.path);
    const pid = started.pid ?? process.pid;
    for (const stream of [started.stdout, started.stderr]) {
      if (stream === null) continue;
      const lines = createInterface({ input: stream, crlfDelay: Infinity });
      lines.on('line', (line) => appendJournal(unitName, identifier, pid, line));
    }

    if (started.pid !== undefined) {
      state = { ...state, activeState: 'active', subState: 'running', mainPid: started.pid, activeSince: new Date().toISOString() };
      writeState(unitName, state);
      if (state.restarts === 0) systemdLog(`Started ${describe(unit)}.`);
    }

    const result = await exited;
    // Like systemd with KillMode=control-group, end what the main process
    // left behind, because leftover children would keep its output pipes open.
    if (started.pid !== undefined) signalGroup(started.pid, 'SIGKILL');
    // Let the output readers drain before writing the exit entries.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const failed = !command.ignoreFailure && (result.code !== 0 || result.signal !== null);
    state = { ...state, mainPid: undefined, lastExit: result };
    if (stopping) {
      systemdLog(`${unit.name}: Deactivated successfully.`);
      systemdLog(`Stopped ${describe(unit)}.`);
      writeState(unitName, { ...state, activeState: 'inactive', subState: 'dead', supervisorPid: undefined });
      return 0;
    }
    const status = result.signal !== null ? `killed, signal=${result.signal}` : `exited, code=exited, status=${result.code}`;
    systemdLog(`${unit.name}: Main process ${status}`);

    const restart = restartPolicy === 'always' || (restartPolicy === 'on-failure' && failed);
    if (!restart) {
      const final = failed ? 'failed' : 'inactive';
      if (failed) systemdLog(`${unit.name}: Failed with result 'exit-code'.`);
      writeState(unitName, { ...state, activeState: final, subState: failed ? 'failed' : 'dead', supervisorPid: undefined });
      return 0;
    }

    state = { ...state, activeState: 'activating', subState: 'auto-restart' };
    writeState(unitName, state);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, restartDelayMs);
      wakeRestartWait = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    wakeRestartWait = undefined;
    if (stopping) {
      systemdLog(`Stopped ${describe(unit)}.`);
      writeState(unitName, { ...state, activeState: 'inactive', subState: 'dead', supervisorPid: undefined });
      return 0;
    }
    state = { ...state, restarts: state.restarts + 1 };
    systemdLog(`${unit.name}: Scheduled restart job, restart counter is at ${state.restarts}.`);
  }
}

/** Returns the variables that systemd passes to every system service. */
function serviceEnvironmentBase(): Record<string, string> {
  return { PATH: SERVICE_PATH, LANG: 'C.UTF-8' };
}
