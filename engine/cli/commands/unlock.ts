import { hostname } from 'node:os';
import { loadPlan } from '../../plan/load.js';
import { clearLock, inspectLock } from '../../state/lock.js';
import { resolveStateDir, write, type StateOptions } from '../environment.js';
import { ExitCode } from '../exit-codes.js';
import { addStateDirOption } from '../options.js';
import type { CommandModule } from './command.js';

export const unlockCommand: CommandModule = {
  register(program, env, setExitCode) {
    const command = program
      .command('unlock')
      .description("clear a plan's state lock left by a run that is gone")
      .argument('<plan>', 'plan file (YAML)')
      .option('--force', 'clear the lock even though its process still runs on this host');
    addStateDirOption(command).action((planFile: string, options: StateOptions & { force?: boolean }) => {
      const plan = loadPlan(planFile);
      const stateDir = resolveStateDir(plan, options);
      const lock = inspectLock(stateDir);
      if (lock.kind === 'free') {
        write(env.stdout, `${stateDir}: not locked`);
        setExitCode(ExitCode.ok);
        return;
      }
      if (lock.kind === 'held' && lock.owner.host === hostname() && options.force !== true) {
        write(env.stderr, `${stateDir}: the lock belongs to pid ${lock.owner.pid}, which is still running on this host (started ${lock.owner.startedAt}); stop that run first, or pass --force`);
        setExitCode(ExitCode.invalidInput);
        return;
      }
      clearLock(stateDir);
      const holder = lock.kind === 'unreadable' ? `an unreadable lock (${lock.detail})` : `the lock of pid ${lock.owner.pid} on ${lock.owner.host} (started ${lock.owner.startedAt})`;
      write(env.stdout, `${stateDir}: cleared ${holder}`);
      setExitCode(ExitCode.ok);
    });
  },
};
