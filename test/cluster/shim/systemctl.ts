// systemctl for the test hosts: manages units from their unit files and
// drop-ins as systemd does, without systemd. Installed as /usr/bin/systemctl
// in each host's mount namespace.
//
// Supported: start, stop, restart, try-restart, is-active, is-enabled,
// enable, disable, status, cat, show, daemon-reload, reset-failed.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostFiles, hostPath, isAlive, journalPath, readState, snapshotPath, STATE_DIR, writeState, type ServiceState } from './service-state.js';
import { supervise } from './supervisor.js';
import {
  lastSetting,
  loadUnit,
  normalizeUnitName,
  parseTimeSpan,
  renderCat,
  settingValues,
  UnitNotFoundError,
  UnitSyntaxError,
  type LoadedUnit,
} from './unit-file.js';

/** Exit codes of systemctl (systemctl(1), "Exit status"). */
const EXIT_NOT_ACTIVE = 3;
const EXIT_FAILURE = 1;
const EXIT_NO_SUCH_UNIT = 5;

const WANTS_DIR = '/etc/systemd/system/multi-user.target.wants';

interface Options {
  properties: string[];
  valueOnly: boolean;
  quiet: boolean;
  now: boolean;
  lines: number;
}

class UsageError extends Error {}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function sameSources(a: LoadedUnit, b: LoadedUnit): boolean {
  return JSON.stringify(a.sources) === JSON.stringify(b.sources);
}

/**
 * Returns the unit as systemd has it loaded: the definition read at the last
 * daemon-reload, or read now on first use. Warns as systemd does when the
 * files changed since.
 */
function loadedUnit(name: string): LoadedUnit {
  const path = snapshotPath(name);
  if (existsSync(path)) {
    const loaded = JSON.parse(readFileSync(path, 'utf8')) as LoadedUnit;
    let onDisk: LoadedUnit | undefined;
    try {
      onDisk = loadUnit(name, hostFiles);
    } catch (error) {
      if (!(error instanceof UnitNotFoundError)) throw error;
    }
    if (onDisk === undefined || !sameSources(loaded, onDisk)) {
      process.stderr.write(
        `Warning: The unit file, source configuration file or drop-ins of ${name} changed on disk. Run 'systemctl daemon-reload' to reload units.\n`,
      );
    }
    return loaded;
  }
  const unit = loadUnit(name, hostFiles);
  mkdirSync(hostPath(STATE_DIR), { recursive: true });
  writeFileSync(path, JSON.stringify(unit));
  return unit;
}

function daemonReload(): void {
  // Reread every unit that systemd has loaded; the others load on first use.
  const folder = hostPath(STATE_DIR);
  if (!existsSync(folder)) return;
  for (const entry of hostFiles.list(STATE_DIR)) {
    if (!entry.endsWith('.loaded.json')) continue;
    const name = entry.slice(0, -'.loaded.json'.length);
    try {
      writeFileSync(snapshotPath(name), JSON.stringify(loadUnit(name, hostFiles)));
    } catch (error) {
      if (!(error instanceof UnitNotFoundError)) throw error;
      rmSync(snapshotPath(name), { force: true });
    }
  }
}

function isRunning(state: ServiceState): boolean {
  return state.activeState === 'active' || state.activeState === 'activating' || state.activeState === 'deactivating';
}

async function start(name: string): Promise<void> {
  loadedUnit(name);
  if (isRunning(readState(name))) return;

  const entry = fileURLToPath(import.meta.url);
  const supervisor = spawn(process.execPath, [entry, '__supervise', name], {
    detached: true,
    stdio: 'ignore',
    cwd: '/',
    env: { ...process.env },
  });
  supervisor.unref();
  const pid = supervisor.pid;
  if (pid === undefined) throw new Error(`failed to start the supervisor of ${name}`);

  // Type=simple: systemd reports success once the process is forked.
  for (let attempt = 0; attempt < 100; attempt++) {
    const state = readState(name);
    if (state.supervisorPid === pid && state.activeState !== 'inactive') return;
    if (!isAlive(pid)) break;
    await sleep(50);
  }
  const state = readState(name);
  if (state.supervisorPid !== pid) {
    throw new Error(`Job for ${name} failed. See "journalctl -u ${name.replace(/\.service$/, '')}" for details.`);
  }
}

async function stop(name: string): Promise<void> {
  const unit = loadedUnit(name);
  const state = readState(name);
  const timeoutMs = parseTimeSpan(lastSetting(unit, 'Service', 'TimeoutStopSec', '90s')) + 5000;
  if (isAlive(state.supervisorPid)) {
    process.kill(state.supervisorPid as number, 'SIGTERM');
    const deadline = Date.now() + timeoutMs;
    while (isAlive(state.supervisorPid) && Date.now() < deadline) await sleep(50);
    if (isAlive(state.supervisorPid)) throw new Error(`Job for ${name} timed out while stopping.`);
    return;
  }
  if (isAlive(state.mainPid)) process.kill(state.mainPid as number, 'SIGKILL');
  if (state.activeState !== 'failed') writeState(name, { ...state, activeState: 'inactive', subState: 'dead', mainPid: undefined });
}

function isEnabled(name: string): boolean {
  return existsSync(hostPath(join(WANTS_DIR, name)));
}

function enable(name: string): void {
  const unit = loadUnit(name, hostFiles);
  const link = hostPath(join(WANTS_DIR, name));
  if (existsSync(link)) return;
  mkdirSync(dirname(link), { recursive: true });
  symlinkSync(unit.fragmentPath, link);
  process.stderr.write(`Created symlink ${join(WANTS_DIR, name)} → ${unit.fragmentPath}.\n`);
}

function disable(name: string): void {
  const link = hostPath(join(WANTS_DIR, name));
  if (!existsSync(link)) return;
  rmSync(link);
  process.stderr.write(`Removed "${join(WANTS_DIR, name)}".\n`);
}

function journalTail(name: string, lines: number): string[] {
  const path = journalPath(name);
  if (!existsSync(path) || lines <= 0) return [];
  const all = readFileSync(path, 'utf8').split('\n').filter((line) => line !== '');
  return all.slice(-lines);
}

function formatSince(iso: string | undefined): string {
  if (iso === undefined) return '';
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return ` since ${new Date(iso).toUTCString()}; ${seconds}s ago`;
}

function commandName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

function renderStatus(name: string, unit: LoadedUnit, state: ServiceState, lines: number): string {
  const description = lastSetting(unit, 'Unit', 'Description', '');
  const enabled = isEnabled(name) ? 'enabled' : 'disabled';
  const bullet = state.activeState === 'failed' ? '×' : state.activeState === 'active' ? '●' : '○';
  const out = [`${bullet} ${name}${description === '' ? '' : ` - ${description}`}`];
  out.push(`     Loaded: loaded (${unit.fragmentPath}; ${enabled}; preset: enabled)`);
  if (unit.dropInPaths.length > 0) {
    const folders = [...new Set(unit.dropInPaths.map((path) => dirname(path)))];
    out.push(`    Drop-In: ${folders[0]}`);
    unit.dropInPaths.forEach((path, index) => {
      const last = index === unit.dropInPaths.length - 1;
      out.push(`             ${last ? '└─' : '├─'}${path.slice(path.lastIndexOf('/') + 1)}`);
    });
  }
  const since = state.activeState === 'active' ? formatSince(state.activeSince) : '';
  out.push(`     Active: ${state.activeState} (${state.subState})${since}`);
  if (state.mainPid !== undefined && isAlive(state.mainPid)) {
    out.push(`   Main PID: ${state.mainPid} (${commandName(state.mainPid)})`);
  } else if (state.lastExit !== undefined) {
    const exit = state.lastExit.signal ?? `status=${state.lastExit.code}`;
    out.push(`    Process: (code=${state.lastExit.signal === null ? 'exited' : 'killed'}, ${exit})`);
  }
  const journal = journalTail(name, lines);
  if (journal.length > 0) out.push('', ...journal);
  return out.join('\n') + '\n';
}

/** Properties of `systemctl show`, as systemd names and formats them. */
function properties(name: string, unit: LoadedUnit, state: ServiceState): Array<[string, string]> {
  const exec = settingValues(unit, 'Service', 'ExecStart');
  return [
    ['Id', name],
    ['Names', name],
    ['Description', lastSetting(unit, 'Unit', 'Description', name)],
    ['LoadState', 'loaded'],
    ['ActiveState', state.activeState],
    ['SubState', state.subState],
    ['MainPID', String(state.mainPid !== undefined && isAlive(state.mainPid) ? state.mainPid : 0)],
    ['ExecMainPID', String(state.mainPid ?? 0)],
    ['NRestarts', String(state.restarts)],
    ['Restart', lastSetting(unit, 'Service', 'Restart', 'no')],
    ['FragmentPath', unit.fragmentPath],
    ['DropInPaths', unit.dropInPaths.join(' ')],
    ['UnitFileState', isEnabled(name) ? 'enabled' : 'disabled'],
    ['Environment', settingValues(unit, 'Service', 'Environment').join(' ')],
    ['EnvironmentFiles', settingValues(unit, 'Service', 'EnvironmentFile').map((path) => `${path.replace(/^-/, '')} (ignore_errors=${path.startsWith('-') ? 'yes' : 'no'})`).join(' ')],
    ['ExecStart', exec.length === 0 ? '' : `{ argv[]=${exec[exec.length - 1]} }`],
    ['ActiveEnterTimestamp', state.activeSince === undefined ? '' : new Date(state.activeSince).toUTCString()],
  ];
}

function parseArguments(args: string[]): { verb: string; units: string[]; options: Options } {
  const options: Options = { properties: [], valueOnly: false, quiet: false, now: false, lines: 10 };
  const positional: string[] = [];
  for (let index = 0; index < args.length; index++) {
    const arg = args[index];
    if (arg === '-p' || arg === '--property') {
      const value = args[++index];
      if (value === undefined) throw new UsageError(`option ${arg} requires a property name`);
      options.properties.push(...value.split(','));
    } else if (arg.startsWith('--property=')) {
      options.properties.push(...arg.slice('--property='.length).split(','));
    } else if (arg === '-n' || arg === '--lines') {
      options.lines = Number(args[++index]);
    } else if (arg.startsWith('--lines=')) {
      options.lines = Number(arg.slice('--lines='.length));
    } else if (arg === '--value') {
      options.valueOnly = true;
    } else if (arg === '-q' || arg === '--quiet') {
      options.quiet = true;
    } else if (arg === '--now') {
      options.now = true;
    } else if (['--no-pager', '--no-legend', '--no-block', '--system', '-l', '--full', '--plain', '--no-ask-password'].includes(arg)) {
      // Output and job options that make no difference here.
    } else if (arg.startsWith('-')) {
      throw new UsageError(`unrecognized option '${arg}'`);
    } else {
      positional.push(arg);
    }
  }
  if (Number.isNaN(options.lines)) throw new UsageError('option --lines requires a number');
  const [verb, ...units] = positional;
  if (verb === undefined) throw new UsageError('missing command, for example: systemctl status kubelet');
  return { verb, units: units.map(normalizeUnitName), options };
}

function requireUnits(verb: string, units: string[]): void {
  if (units.length === 0) throw new UsageError(`too few arguments: ${verb} needs a unit name`);
}

async function run(args: string[]): Promise<number> {
  if (args[0] === '__supervise') {
    // Exit at once: output pipes of a killed service may still be open.
    process.exit(await supervise(args[1]));
  }

  const { verb, units, options } = parseArguments(args);
  switch (verb) {
    case 'daemon-reload':
      daemonReload();
      return 0;
    case 'start':
    case 'stop':
    case 'restart':
    case 'try-restart': {
      requireUnits(verb, units);
      for (const name of units) {
        if (verb === 'try-restart' && !isRunning(readState(name))) continue;
        if (verb !== 'start') await stop(name);
        if (verb !== 'stop') await start(name);
      }
      return 0;
    }
    case 'is-active': {
      requireUnits(verb, units);
      let code = 0;
      for (const name of units) {
        const state = readState(name);
        if (!options.quiet) process.stdout.write(`${state.activeState}\n`);
        if (state.activeState !== 'active') code = EXIT_NOT_ACTIVE;
      }
      return code;
    }
    case 'is-enabled': {
      requireUnits(verb, units);
      let code = 0;
      for (const name of units) {
        loadUnit(name, hostFiles);
        const enabled = isEnabled(name);
        if (!options.quiet) process.stdout.write(`${enabled ? 'enabled' : 'disabled'}\n`);
        if (!enabled) code = EXIT_FAILURE;
      }
      return code;
    }
    case 'enable':
    case 'disable': {
      requireUnits(verb, units);
      for (const name of units) {
        if (verb === 'enable') enable(name);
        else disable(name);
        if (options.now && verb === 'enable') await start(name);
        if (options.now && verb === 'disable') await stop(name);
      }
      return 0;
    }
    case 'reset-failed': {
      for (const name of units) {
        const state = readState(name);
        if (state.activeState === 'failed') writeState(name, { ...state, activeState: 'inactive', subState: 'dead' });
      }
      return 0;
    }
    case 'cat': {
      requireUnits(verb, units);
      process.stdout.write(units.map((name) => renderCat(loadUnit(name, hostFiles))).join('\n'));
      return 0;
    }
    case 'status': {
      requireUnits(verb, units);
      let code = 0;
      for (const name of units) {
        const state = readState(name);
        process.stdout.write(renderStatus(name, loadedUnit(name), state, options.lines));
        if (state.activeState !== 'active') code = EXIT_NOT_ACTIVE;
      }
      return code;
    }
    case 'show': {
      requireUnits(verb, units);
      for (const name of units) {
        const all = properties(name, loadedUnit(name), readState(name));
        const selected = options.properties.length === 0 ? all : all.filter(([key]) => options.properties.includes(key));
        for (const [key, value] of selected) process.stdout.write(options.valueOnly ? `${value}\n` : `${key}=${value}\n`);
      }
      return 0;
    }
    default:
      throw new UsageError(`unknown command verb '${verb}'; this test host supports start, stop, restart, try-restart, is-active, is-enabled, enable, disable, status, cat, show, daemon-reload, reset-failed`);
  }
}

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UnitNotFoundError) {
      process.stderr.write(`Unit ${error.unit} could not be found.\n`);
      process.exitCode = EXIT_NO_SUCH_UNIT;
      return;
    }
    if (error instanceof UsageError || error instanceof UnitSyntaxError) {
      process.stderr.write(`systemctl: ${error.message}\n`);
      process.exitCode = EXIT_FAILURE;
      return;
    }
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = EXIT_FAILURE;
  },
);
