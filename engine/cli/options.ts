// Options shared by several commands, defined once so their help text matches.
import { Option, type Command } from 'commander';

export function addStateDirOption(command: Command): Command {
  return command.option('--state-dir <dir>', 'state directory (default: .kube-node-rename/<metadata.name>/ next to the plan file)');
}

export function addLogFormatOption(command: Command): Command {
  return command.addOption(new Option('--log-format <format>', 'log lines on stderr: readable text or JSON lines').choices(['text', 'json']).default('text'));
}

export function addClusterOptions(command: Command): Command {
  return command.option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG or ~/.kube/config)').option('--context <name>', 'kubeconfig context (default: the current context)');
}
