#!/usr/bin/env node
// Entry point of the `kube-node-rename` and `kubectl-node_rename` commands.
import { runCli } from './cli/program.js';

const code = await runCli(process.argv, {
  createRecipe: async () => (await import('../steps/index.js')).createRenameRecipe(),
});
process.exitCode = code;
// Open handles of a client library must not keep a finished command alive.
setTimeout(() => process.exit(code), 2000).unref();
