// journalctl for the test hosts: prints the journal entries that the
// systemctl shim's supervisor captured for a unit. Installed as
// /usr/bin/journalctl in each host's mount namespace.
//
// Supported: -u/--unit UNIT (repeatable), -n/--lines N, --no-pager, -q,
// -o short|cat, -b, -x, -e.

import { existsSync, readFileSync } from 'node:fs';
import { journalPath } from './service-state.js';
import { normalizeUnitName } from './unit-file.js';

interface Options {
  units: string[];
  lines: number | undefined;
  output: 'short' | 'cat';
  quiet: boolean;
}

function parseArguments(args: string[]): Options {
  const options: Options = { units: [], lines: undefined, output: 'short', quiet: false };
  for (let index = 0; index < args.length; index++) {
    const arg = args[index];
    const takeValue = (): string => {
      const value = args[++index];
      if (value === undefined) throw new Error(`option ${arg} requires a value`);
      return value;
    };
    if (arg === '-u' || arg === '--unit') options.units.push(normalizeUnitName(takeValue()));
    else if (arg.startsWith('--unit=')) options.units.push(normalizeUnitName(arg.slice('--unit='.length)));
    else if (arg.startsWith('-u') && arg.length > 2) options.units.push(normalizeUnitName(arg.slice(2)));
    else if (arg === '-n' || arg === '--lines') options.lines = Number(takeValue());
    else if (arg.startsWith('--lines=')) options.lines = Number(arg.slice('--lines='.length));
    else if (/^-n\d+$/.test(arg)) options.lines = Number(arg.slice(2));
    else if (arg === '-o' || arg === '--output') options.output = parseOutput(takeValue());
    else if (arg.startsWith('--output=')) options.output = parseOutput(arg.slice('--output='.length));
    else if (arg === '-q' || arg === '--quiet') options.quiet = true;
    else if (['--no-pager', '-b', '--boot', '-x', '--catalog', '-e', '--pager-end', '--no-hostname'].includes(arg)) continue;
    else throw new Error(`unsupported option '${arg}'; this test host supports -u, -n, -o short|cat, --no-pager, -q, -b, -x, -e`);
  }
  if (options.lines !== undefined && (!Number.isInteger(options.lines) || options.lines < 0)) {
    throw new Error('option --lines requires a non-negative whole number');
  }
  if (options.units.length === 0) throw new Error('no unit given; this test host keeps journals per unit, so pass -u UNIT');
  return options;
}

function parseOutput(value: string): 'short' | 'cat' {
  if (value === 'short' || value === 'cat') return value;
  throw new Error(`unsupported output mode '${value}'; use short or cat`);
}

/** Removes the `Mon DD HH:MM:SS host identifier[pid]: ` prefix for `-o cat`. */
function messageOnly(line: string): string {
  const match = /^\w{3} \d{2} \d{2}:\d{2}:\d{2} \S+ [^:]+: /.exec(line);
  return match ? line.slice(match[0].length) : line;
}

function main(): number {
  let options: Options;
  try {
    options = parseArguments(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`journalctl: ${(error as Error).message}\n`);
    return 1;
  }
  const entries: string[] = [];
  for (const unit of options.units) {
    const path = journalPath(unit);
    if (existsSync(path)) entries.push(...readFileSync(path, 'utf8').split('\n').filter((line) => line !== ''));
  }
  const printed = options.lines === undefined ? entries : entries.slice(entries.length - Math.min(options.lines, entries.length));
  if (printed.length === 0) {
    if (!options.quiet) process.stdout.write('-- No entries --\n');
    return 0;
  }
  for (const line of printed) process.stdout.write(`${options.output === 'cat' ? messageOnly(line) : line}\n`);
  return 0;
}

process.exitCode = main();
