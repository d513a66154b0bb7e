// The command table. A new command is one more file in this folder and one
// more entry here.
import { applyCommand } from './apply.js';
import type { CommandModule } from './command.js';
import { graphCommand } from './graph.js';
import { rollbackCommand } from './rollback.js';
import { statusCommand } from './status.js';
import { unlockCommand } from './unlock.js';
import { validateCommand } from './validate.js';

export const COMMANDS: readonly CommandModule[] = [validateCommand, graphCommand, applyCommand, statusCommand, unlockCommand, rollbackCommand];
